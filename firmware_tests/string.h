/* Minimal <string.h> for the firmware harness: the toolchain is used
 * without a C library, so this declares only what libc_min.c defines. */
#ifndef TB_STRING_H
#define TB_STRING_H

#include <stddef.h>

void *memset(void *dst, int c, size_t n);
void *memcpy(void *restrict dst, const void *restrict src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);

#endif
