/* The four <string.h> functions that generated model code (and GCC itself,
 * for struct copies and zeroing) may call. Simple byte loops: small, and
 * correct for any alignment. */
#include <stddef.h>
#include <string.h>

/* Built without -ffreestanding, GCC would recognise the loops below as
 * memset/memcpy and compile them into calls to themselves; this keeps them
 * loops whatever the flags. */
#pragma GCC optimize("no-tree-loop-distribute-patterns")

void *memset(void *dst, int c, size_t n)
{
    unsigned char *d = dst;

    while (n--)
        *d++ = (unsigned char)c;
    return dst;
}

void *memcpy(void *restrict dst, const void *restrict src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    while (n--)
        *d++ = *s++;
    return dst;
}

void *memmove(void *dst, const void *src, size_t n)
{
    unsigned char *d = dst;
    const unsigned char *s = src;

    if (d < s) {
        while (n--)
            *d++ = *s++;
    } else {
        while (n--)
            d[n] = s[n];
    }
    return dst;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *p = a;
    const unsigned char *q = b;

    for (; n--; p++, q++) {
        if (*p != *q)
            return *p - *q;
    }
    return 0;
}
