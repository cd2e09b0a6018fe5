/*
 * stream_main.c - firmware test driver of the streaming API: pushes a sample stream through
 * a compiled model under QEMU and compares every decision with the integer reference's,
 * exactly.
 *
 * tinybnn/firmware/streaming.py builds it with -DTB_NAME=<name> and an include path holding
 * <name>.h, tinybnn_kernels.h and tb_stream_vectors.h, which defines:
 *   TB_STATE_BYTES, TB_IN_CHANNELS, TB_NUM_CLASSES  (the model's macros)
 *   TB_NUM_SAMPLES, tb_samples: int16 [TB_NUM_SAMPLES * TB_IN_CHANNELS], [n][C]
 *   TB_NUM_CHUNKS, tb_chunks: the samples of each push, in turn, cycled
 *   TB_NUM_EXPECTED, tb_expected: int32 [TB_NUM_EXPECTED][3 + TB_NUM_CLASSES], per push that
 *       decides: samples pushed so far, decisions it made, the latest scores, their class
 *   TB_WARM, TB_MEASURE: the measured push (below)
 *
 * First, on a fresh state, TB_WARM samples are pushed, then TB_MEASURE more in one call on a
 * painted stack, between TB_MARK() and TB_MARK_END() when profiling (-DTB_PROFILE): the
 * instruction-count plugin reports that call alone. Then the whole stream is checked from a
 * reset state in the chunks of tb_chunks.
 *
 * Output (semihosting), one line each:
 *   MEASURED <decisions>                                 decisions of the measured call
 *   STACK push=<bytes>                                   its stack use below main's frame
 *   MISMATCH push <p> <what>: got <g> expected <e>       first difference; exit 1
 *   OK <n> decisions                                     all matched; exit 0
 */
#include <stddef.h>
#include <stdint.h>

#include "semihost.h"
#include "stack.h"
#include "tb_markers.h"
#include "tb_stream_vectors.h"

#define TB_CAT2(a, b) a##b
#define TB_CAT(a, b) TB_CAT2(a, b)
#define TB_FN(suffix) TB_CAT(TB_NAME, suffix)

#ifndef TB_NAME
#error "build with -DTB_NAME=<name>, the model's C prefix"
#endif

/* The caller owns the state: static uint32_t words. */
static uint32_t tb_stream_state[(TB_STATE_BYTES + 3) / 4];

extern uint32_t __stack_top[]; /* boards/common.ld */

/* Print one difference (what: -1 the sample count, -2 the decisions, -3 the class, else a
 * score's class index). Returns 1. */
static int tb_stream_mismatch(int push, int what, int32_t got, int32_t expected)
{
    tb_print("MISMATCH push ");
    tb_print_int(push);
    if (what >= 0) {
        tb_print(" score ");
        tb_print_int(what);
    } else {
        tb_print(what == -1 ? " samples" : what == -2 ? " decisions" : " class");
    }
    tb_print(": got ");
    tb_print_int(got);
    tb_print(" expected ");
    tb_print_int(expected);
    tb_print("\n");
    return 1;
}

static int tb_stream_measure(void)
{
    int32_t scores[TB_NUM_CLASSES];
    uintptr_t sp;
    size_t frame;
    int decisions;

    TB_FN(_stream_reset)(tb_stream_state);
    TB_FN(_stream_push)(tb_stream_state, tb_samples, TB_WARM, scores);
    tb_stack_paint();
    __asm__ volatile("mov %0, sp" : "=r"(sp));
    frame = (size_t)((uintptr_t)__stack_top - sp);
    TB_MARK();
    decisions = TB_FN(_stream_push)(tb_stream_state, tb_samples + TB_WARM * TB_IN_CHANNELS,
                                    TB_MEASURE, scores);
    TB_MARK_END();
    tb_print("MEASURED ");
    tb_print_int(decisions);
    tb_print("\nSTACK push=");
    tb_print_int((int32_t)(tb_stack_peak() - frame));
    tb_print("\n");
    return 0;
}

int main(void)
{
    int32_t scores[TB_NUM_CLASSES];
    int32_t pushed = 0;
    int e = 0;

    tb_stream_measure();
    TB_FN(_stream_reset)(tb_stream_state);
    for (int p = 0; pushed < TB_NUM_SAMPLES; p++) {
        int32_t n = tb_chunks[p % TB_NUM_CHUNKS];
        if (n > TB_NUM_SAMPLES - pushed)
            n = TB_NUM_SAMPLES - pushed;
        int decisions = TB_FN(_stream_push)(tb_stream_state, tb_samples + pushed * TB_IN_CHANNELS,
                                            (size_t)n, scores);
        pushed += n;
        if (!decisions)
            continue;
        if (e == TB_NUM_EXPECTED)
            return tb_stream_mismatch(p, -2, decisions, 0);
        const int32_t *want = tb_expected[e++];
        if (pushed != want[0])
            return tb_stream_mismatch(p, -1, pushed, want[0]);
        if (decisions != want[1])
            return tb_stream_mismatch(p, -2, decisions, want[1]);
        for (int k = 0; k < TB_NUM_CLASSES; k++)
            if (scores[k] != want[2 + k])
                return tb_stream_mismatch(p, k, scores[k], want[2 + k]);
        if (TB_FN(_stream_class)(scores) != want[2 + TB_NUM_CLASSES])
            return tb_stream_mismatch(p, -3, TB_FN(_stream_class)(scores), want[2 + TB_NUM_CLASSES]);
    }
    if (e != TB_NUM_EXPECTED)
        return tb_stream_mismatch(-1, -2, e, TB_NUM_EXPECTED);
    tb_print("OK ");
    tb_print_int(e);
    tb_print(" decisions\n");
    return 0;
}
