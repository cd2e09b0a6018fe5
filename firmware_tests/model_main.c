/*
 * model_main.c - firmware test driver: runs a compiled model on test vectors under QEMU
 * and compares every score and class with the integer reference's, exactly.
 *
 * tinybnn/profile.py builds it with -DTB_NAME=<name> (the model's C prefix) and an include
 * path holding <name>.h, tinybnn_kernels.h and tb_vectors.h, which defines:
 *   TB_ARENA_BYTES, TB_IN_LENGTH, TB_IN_CHANNELS, TB_NUM_CLASSES  (the model's macros)
 *   TB_NUM_WINDOWS
 *   tb_windows:          int16 [TB_NUM_WINDOWS][TB_IN_LENGTH * TB_IN_CHANNELS], [T][C]
 *   tb_expected_scores:  int32 [TB_NUM_WINDOWS][TB_NUM_CLASSES]
 *   tb_expected_classes: int32 [TB_NUM_WINDOWS]
 *
 * Output (semihosting), one line each:
 *   MISMATCH window <w> score <k>: got <g> expected <e>    first wrong score; exit 1
 *   MISMATCH window <w> class: got <g> expected <e>        wrong class; exit 1
 *   STACK classify=<bytes> peak=<bytes>                    stack use of the first call
 *   OK <n> windows                                         all matched; exit 0
 *
 * Window 0 is classified first on a freshly painted stack: "classify" is that call's stack
 * use below main's frame, "peak" the whole depth. Then every window is checked.
 *
 * Profile mode (-DTB_PROFILE, -include tb_markers.h, -D'TB_STAGE_BEGIN(index)=TB_MARK()'):
 * that first call sits between TB_MARK() and TB_MARK_END(), with the model's hook putting
 * a checkpoint at each stage's start, so the instruction-count plugin reports the call
 * overhead, then each stage (the last one including the argmax and the return). The
 * checking calls' checkpoints come after the end marker and start later segments.
 */
#include <stddef.h>
#include <stdint.h>

#include "semihost.h"
#include "stack.h"
#include "tb_markers.h"
#include "tb_vectors.h"

#define TB_CAT2(a, b) a##b
#define TB_CAT(a, b) TB_CAT2(a, b)
#define TB_FN(suffix) TB_CAT(TB_NAME, suffix)

#ifndef TB_NAME
#error "build with -DTB_NAME=<name>, the model's C prefix"
#endif

/* The caller owns the arena: static uint32_t words, as <name>_classify takes it. */
static uint32_t tb_main_arena[(TB_ARENA_BYTES + 3) / 4];

/* Print one difference; score is a class index, or -1 for the class itself. Returns 1. */
static int tb_main_mismatch(int window, int score, int32_t got, int32_t expected)
{
    tb_print("MISMATCH window ");
    tb_print_int(window);
    if (score >= 0) {
        tb_print(" score ");
        tb_print_int(score);
    } else {
        tb_print(" class");
    }
    tb_print(": got ");
    tb_print_int(got);
    tb_print(" expected ");
    tb_print_int(expected);
    tb_print("\n");
    return 1;
}

/* 0 when window w's scores and class equal the expected ones; else prints the first
 * difference and returns 1. */
static int tb_main_check(int w, const int32_t *scores, int cls)
{
    for (int k = 0; k < TB_NUM_CLASSES; k++)
        if (scores[k] != tb_expected_scores[w][k])
            return tb_main_mismatch(w, k, scores[k], tb_expected_scores[w][k]);
    if (cls != tb_expected_classes[w])
        return tb_main_mismatch(w, -1, cls, tb_expected_classes[w]);
    return 0;
}

extern uint32_t __stack_top[]; /* boards/common.ld */

/* Classify window 0 on a painted stack (between markers when profiling); print its stack
 * use; check it. */
static int tb_main_first_call(void)
{
    int32_t scores[TB_NUM_CLASSES];
    uintptr_t sp;
    size_t frame, peak;
    int cls;

    tb_stack_paint();
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    frame = (size_t)((uintptr_t)__stack_top - sp); /* depth at the call, main's frame */
    TB_MARK();
    cls = TB_FN(_classify)(tb_windows[0], scores, tb_main_arena);
    TB_MARK_END();
    peak = tb_stack_peak();
    tb_print("STACK classify=");
    tb_print_int((int32_t)(peak - frame));
    tb_print(" peak=");
    tb_print_int((int32_t)peak);
    tb_print("\n");
    return tb_main_check(0, scores, cls);
}

int main(void)
{
    int32_t scores[TB_NUM_CLASSES];

    if (tb_main_first_call() != 0)
        return 1;
    for (int w = 0; w < TB_NUM_WINDOWS; w++) {
        int cls = TB_FN(_classify)(tb_windows[w], scores, tb_main_arena);
        if (tb_main_check(w, scores, cls) != 0)
            return 1;
    }
    tb_print("OK ");
    tb_print_int(TB_NUM_WINDOWS);
    tb_print(" windows\n");
    return 0;
}
