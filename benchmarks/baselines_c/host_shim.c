/* host_shim.c - the harness functions driver.c uses, for a host build (tests): printing to
 * stdout, and no stack measurement. */
#include <stdint.h>
#include <stdio.h>

#include "semihost.h"
#include "stack.h"

void tb_print(const char *s)
{
    fputs(s, stdout);
}

void tb_print_int(int32_t v)
{
    printf("%ld", (long)v);
}

void tb_print_hex(uint32_t v)
{
    printf("0x%08lx", (unsigned long)v);
}

void tb_stack_paint(void)
{
}

size_t tb_stack_peak(void)
{
    return 0;
}
