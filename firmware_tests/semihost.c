/* Semihosting via `bkpt 0xab`: r0 = operation, r1 = parameter. */
#include "semihost.h"

#define SYS_WRITE0 0x04
#define SYS_EXIT_EXTENDED 0x20
#define ADP_STOPPED_APPLICATION_EXIT 0x20026

static int semihost_call(int op, const void *arg)
{
    register int r0 __asm__("r0") = op;
    register const void *r1 __asm__("r1") = arg;
    __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
    return r0;
}

void tb_print(const char *s)
{
    semihost_call(SYS_WRITE0, s);
}

void tb_print_int(int32_t v)
{
    char buf[12]; /* "-2147483648" plus NUL */
    char *p = buf + sizeof buf - 1;
    uint32_t u = v < 0 ? 0u - (uint32_t)v : (uint32_t)v;

    *p = '\0';
    do {
        *--p = (char)('0' + u % 10u);
        u /= 10u;
    } while (u != 0u);
    if (v < 0)
        *--p = '-';
    tb_print(p);
}

void tb_print_hex(uint32_t v)
{
    char buf[11]; /* "0x" + 8 digits + NUL */
    int i;

    buf[0] = '0';
    buf[1] = 'x';
    for (i = 0; i < 8; i++)
        buf[2 + i] = "0123456789abcdef"[(v >> (28 - 4 * i)) & 0xfu];
    buf[10] = '\0';
    tb_print(buf);
}

void tb_exit(int status)
{
    /* SYS_EXIT_EXTENDED takes a two-word block; QEMU 7.2 only passes the
     * status through to its own exit code with this call, not SYS_EXIT. */
    const uint32_t block[2] = {ADP_STOPPED_APPLICATION_EXIT, (uint32_t)status};

    for (;;)
        semihost_call(SYS_EXIT_EXTENDED, block);
}
