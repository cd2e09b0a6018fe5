/* Stack painting; the stack region comes from the board linker script. */
#include <stdint.h>

#include "stack.h"

#define STACK_PAINT 0xa5a5a5a5u

extern uint32_t __stack_bottom[], __stack_top[];

void tb_stack_paint(void)
{
    uint32_t *p = __stack_bottom;
    uint32_t *sp;

    /* Everything below the current stack pointer is unused. */
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    while (p < sp)
        *p++ = STACK_PAINT;
}

size_t tb_stack_peak(void)
{
    const uint32_t *p = __stack_bottom;

    while (p < __stack_top && *p == STACK_PAINT)
        p++;
    return (size_t)((const char *)__stack_top - (const char *)p);
}
