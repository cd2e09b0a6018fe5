/*
 * driver.c - runs one inference of an emitted baseline (bl_net.c) and checks its outputs.
 *
 * bl_vectors.h, written by benchmarks/baselines.py, defines BL_OUT_T (int32_t or float),
 * BL_NUM_OUT, tb_window (int16 [T][C]) and tb_expected_bits (int32 [BL_NUM_OUT]: the numpy
 * reference's outputs, a float's bits for float32). Output (semihosting), one line each:
 *   STACK run=<bytes>                                 bl_run's stack use (0 on the host)
 *   MISMATCH out <k>: got <bits> expected <bits>      first differing output; exit 1
 *   OK                                                all equal; exit 0
 * With -DTB_PROFILE the call sits between TB_MARK() and TB_MARK_END(); bl_run marks each
 * layer, so the counts are: the call overhead, then one per layer (the last with the return).
 */
#include <stddef.h>
#include <stdint.h>

#include "bl_vectors.h"
#include "semihost.h"
#include "stack.h"
#include "tb_markers.h"

void bl_run(const int16_t *x, BL_OUT_T *out);

static BL_OUT_T tb_out[BL_NUM_OUT];

static int32_t tb_bits(BL_OUT_T v)
{
    union {
        BL_OUT_T v;
        int32_t i;
    } u;
    u.v = v;
    return u.i;
}

#if defined(__arm__)
extern uint32_t __stack_top[]; /* boards/common.ld */
#endif

int main(void)
{
    size_t frame = 0, peak;

    tb_stack_paint();
#if defined(__arm__)
    uintptr_t sp;
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    frame = (size_t)((uintptr_t)__stack_top - sp);
#endif
    TB_MARK();
    bl_run(tb_window, tb_out);
    TB_MARK_END();
    peak = tb_stack_peak();
    tb_print("STACK run=");
    tb_print_int(peak > frame ? (int32_t)(peak - frame) : 0);
    tb_print("\n");
    for (int k = 0; k < BL_NUM_OUT; k++)
        if (tb_bits(tb_out[k]) != tb_expected_bits[k]) {
            tb_print("MISMATCH out ");
            tb_print_int(k);
            tb_print(": got ");
            tb_print_hex((uint32_t)tb_bits(tb_out[k]));
            tb_print(" expected ");
            tb_print_hex((uint32_t)tb_expected_bits[k]);
            tb_print("\n");
            return 1;
        }
    tb_print("OK\n");
    return 0;
}
