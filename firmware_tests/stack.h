/* Stack high-water measurement by painting.
 *
 * The reset handler fills the unused stack [__stack_bottom, sp) with a
 * pattern before main runs; tb_stack_peak() then finds the deepest word
 * that no longer holds it. */
#ifndef TB_STACK_H
#define TB_STACK_H

#include <stddef.h>

/* Fill the stack below the caller's frame with the paint pattern. */
void tb_stack_paint(void);
/* Deepest stack use since reset, in bytes below __stack_top. */
size_t tb_stack_peak(void);

#endif
