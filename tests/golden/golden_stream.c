/*
 * golden_stream.c - weights and glue of a model compiled by tinybnn 0.1.0.
 *
 *   command:    tinybnn compile golden_stream.pt -o golden --name golden_stream --streaming
 *   model file: (a model object, not a file)
 *   sha256:     -
 *
 * Shapes are written as the C holds them: TxC, "b" for packed bits (1 bit = -1).
 * Weights and thresholds: 665 bytes; arena: 188 bytes.
 */
#include "golden_stream.h"
#include "tinybnn_kernels.h"

/* Hooks for profiling and tests; they compile to nothing by default. */
#ifndef TB_STAGE_BEGIN
#define TB_STAGE_BEGIN(index) ((void)0)
#endif
#ifndef TB_STAGE_END
#define TB_STAGE_END(index, buffer, bytes) ((void)0)
#endif

const char *const golden_stream_class_names[GOLDEN_STREAM_NUM_CLASSES] = {
    "tap",
    "double tap",
    "none",
};

/* L0 input_conv1d: 17x3 int16 -> 15x8b, k=3 s=1 pad=0, binary weights, |acc| <= 2065743 */
static const uint32_t golden_stream_l0_w[8] = { /* binary, tap-major */
    0x0000007fu, 0x000000a1u, 0x00000113u, 0x00000055u, 0x0000019au, 0x00000048u,
    0x000000deu, 0x000001fdu
};
static const int16_t golden_stream_l0_offset[3] = {
    10, -20, 30
};
static const int16_t golden_stream_l0_mult[3] = {
    5, 7, 9
};
static const int32_t golden_stream_l0_th[8] = { /* thresholds */
    -485555, 576888, 532089, 378868, -58891, -1778112, -586194, 78409
};
static const uint32_t golden_stream_l0_neg[1] = { /* 1 = output is -1 above th */
    0x0000006eu
};
static const tb_iconv1d_t golden_stream_l0 = {
    .c_in = 3,
    .t_in = 17,
    .c_out = 8,
    .t_out = 15,
    .kernel_size = 3,
    .stride = 1,
    .pad = 0,
    .pool_k = 1,
    .pool_s = 1,
    .lo = -32768,
    .hi = 32767,
    .offset = golden_stream_l0_offset,
    .mult = golden_stream_l0_mult,
    .wb = golden_stream_l0_w,
    .th = { .th32 = golden_stream_l0_th, .neg = golden_stream_l0_neg },
};

/* L1 bconv1d: 15x8b -> 7x33b, k=3 s=2 pad=0x(-1) */
static const uint32_t golden_stream_l1_pad[1] = { /* pad value -1 */
    0x000000ffu
};
static const uint32_t golden_stream_l1_w[99] = { /* [33][3][1] */
    0x000000b3u, 0x0000002eu, 0x000000ccu, 0x000000b5u, 0x00000034u, 0x000000e8u,
    0x0000000fu, 0x00000096u, 0x000000f0u, 0x00000084u, 0x000000c9u, 0x000000c3u,
    0x0000009au, 0x00000068u, 0x000000adu, 0x00000005u, 0x000000e9u, 0x00000086u,
    0x000000b1u, 0x00000072u, 0x00000087u, 0x000000cfu, 0x00000087u, 0x000000bbu,
    0x00000016u, 0x00000063u, 0x00000053u, 0x00000016u, 0x000000e7u, 0x00000085u,
    0x00000020u, 0x00000030u, 0x00000089u, 0x00000058u, 0x00000008u, 0x00000079u,
    0x00000045u, 0x00000097u, 0x000000d1u, 0x00000018u, 0x00000098u, 0x00000032u,
    0x000000f8u, 0x00000025u, 0x000000cfu, 0x0000007bu, 0x000000b8u, 0x0000008bu,
    0x00000099u, 0x000000a1u, 0x00000095u, 0x00000004u, 0x0000009fu, 0x00000056u,
    0x00000001u, 0x00000028u, 0x00000032u, 0x000000bbu, 0x0000002eu, 0x000000a7u,
    0x00000008u, 0x000000e7u, 0x000000dau, 0x000000d7u, 0x000000e4u, 0x00000091u,
    0x000000bfu, 0x000000a4u, 0x000000bau, 0x000000f3u, 0x00000063u, 0x00000037u,
    0x000000b4u, 0x0000000eu, 0x0000001fu, 0x00000051u, 0x000000a7u, 0x00000056u,
    0x00000027u, 0x000000c5u, 0x000000d5u, 0x0000007du, 0x0000006du, 0x000000d6u,
    0x000000fdu, 0x00000056u, 0x000000b8u, 0x000000abu, 0x0000002au, 0x000000a6u,
    0x000000c1u, 0x00000058u, 0x000000bfu, 0x00000023u, 0x00000077u, 0x00000052u,
    0x0000000eu, 0x0000008eu, 0x00000017u
};
static const int16_t golden_stream_l1_th[33] = { /* thresholds */
    25, 0, 8, 7, -5, -5, -1, -10, -3, -4, 1, 1,
    24, -4, -3, 3, -10, 5, 10, 6, -14, -7, 12, 5,
    -24, 12, -2, 0, 11, 3, 13, 24, 5
};
static const uint32_t golden_stream_l1_neg[2] = { /* 1 = output is -1 above th */
    0xe032f43au, 0x00000000u
};
static const tb_bconv1d_t golden_stream_l1 = {
    .c_in = 8,
    .t_in = 15,
    .c_out = 33,
    .t_out = 7,
    .kernel_size = 3,
    .stride = 2,
    .pad = 0,
    .pool_k = 1,
    .pool_s = 1,
    .pad_word = golden_stream_l1_pad,
    .w = golden_stream_l1_w,
    .th = { .th16 = golden_stream_l1_th, .neg = golden_stream_l1_neg },
};

/* L2 global sum pooling: 7x33b -> 33 int32 counts */
static const tb_globalsum_t golden_stream_l2 = {
    .c = 33,
    .t = 7,
};

/* L3 classifier: 33 counts -> 3 scores, int8 weights */
static const int8_t golden_stream_l3_w[99] = { /* int8 */
    102, 104, -36, 85, -76, -8, 115, -22, 66, 127, -54, 54,
    -50, -35, 94, 40, -111, 119, 90, 71, 14, 59, -40, -44,
    67, 20, 122, 2, -7, 74, -62, -113, 4, 125, -97, 20,
    -83, -109, -1, -45, -30, 42, -30, 14, -3, 97, 44, -46,
    -96, 84, -14, 51, -55, 90, 86, 6, 33, 26, 48, -16,
    -110, -89, 20, -127, -121, -70, 66, -10, -90, -85, -49, -94,
    119, -82, -67, -89, -46, 101, 47, 9, -126, 51, 119, -2,
    87, -41, -119, -3, 51, -56, 7, 21, 122, -66, -111, -59,
    92, -59, -8
};
static const int32_t golden_stream_l3_bias[3] = {
    5, -14, -11
};
static const tb_classifier_t golden_stream_l3 = {
    .num_classes = 3,
    .in_features = 33,
    .in_c = 33,
    .in_t = 1,
    .wq = golden_stream_l3_w,
    .bias = golden_stream_l3_bias,
};

int golden_stream_classify(const int16_t *samples, int32_t *scores, uint32_t *arena)
{
    unsigned char *a = (unsigned char *)arena;
    TB_STAGE_BEGIN(0);
    tb_iconv1d_s16(&golden_stream_l0, samples, (uint32_t *)(void *)(a + 0));
    TB_STAGE_END(0, a + 0, 60);
    TB_STAGE_BEGIN(1);
    tb_bconv1d_b32(&golden_stream_l1, (const uint32_t *)(const void *)(a + 0), (uint32_t *)(void *)(a + 132));
    TB_STAGE_END(1, a + 132, 56);
    TB_STAGE_BEGIN(2);
    tb_globalsum_b32(&golden_stream_l2, (const uint32_t *)(const void *)(a + 132), (int32_t *)(void *)(a + 0));
    TB_STAGE_END(2, a + 0, 132);
    TB_STAGE_BEGIN(3);
    tb_classifier_q8_s32(&golden_stream_l3, (const int32_t *)(const void *)(a + 0), scores);
    TB_STAGE_END(3, scores, 12);
    (void)a;
    return tb_argmax_s32(scores, GOLDEN_STREAM_NUM_CLASSES);
}

int golden_stream_classify_static(const int16_t *samples, int32_t *scores)
{
    static uint32_t arena[(GOLDEN_STREAM_ARENA_BYTES + 3) / 4];
    return golden_stream_classify(samples, scores, arena);
}

/*
 * Streaming: each layer's output column is computed once, not once per window; the column
 * stages run once per hop (docs/lowering.md, "Streaming"). The state, 388
 * bytes, word-aligned:
 *   [0, +4) samples until the next hop (uint32)
 *   [4, +4) hops until the first decision (uint32)
 *   [8, +8) L0 columns held, to skip (tb_stream_buf_t)
 *   [16, +24) L0 input columns: at most 4 (span 3, 2 per hop)
 *   [40, +8) L1 columns held, to skip (tb_stream_buf_t)
 *   [48, +16) L1 input columns: at most 4 (span 3, 2 per hop)
 *   [64, +4) L2 oldest column of the window (uint32)
 *   [68, +132) L2 set bits per channel over the window
 *   [200, +56) L2 the window's last 7 columns
 *   [256, +132) transient: a column and the kernels' scratch, or a decision's buffers
 */

/* L0 input_conv1d: 3x3 int16 -> 1x8b, k=3 s=1 pad=0, binary weights, |acc| <= 2065743; streamed: windows of 3 columns, one every 1, 2 per hop */
static const tb_iconv1d_t golden_stream_l0_stream = {
    .c_in = 3,
    .t_in = 3,
    .c_out = 8,
    .t_out = 1,
    .kernel_size = 3,
    .stride = 1,
    .pad = 0,
    .pool_k = 1,
    .pool_s = 1,
    .lo = -32768,
    .hi = 32767,
    .offset = golden_stream_l0_offset,
    .mult = golden_stream_l0_mult,
    .wb = golden_stream_l0_w,
    .th = { .th32 = golden_stream_l0_th, .neg = golden_stream_l0_neg },
};

/* L1 bconv1d: 3x8b -> 1x33b, k=3 s=2 pad=0x(-1); streamed: windows of 3 columns, one every 2, 1 per hop */
static const tb_bconv1d_t golden_stream_l1_stream = {
    .c_in = 8,
    .t_in = 3,
    .c_out = 33,
    .t_out = 1,
    .kernel_size = 3,
    .stride = 2,
    .pad = 0,
    .pool_k = 1,
    .pool_s = 1,
    .pad_word = golden_stream_l1_pad,
    .w = golden_stream_l1_w,
    .th = { .th16 = golden_stream_l1_th, .neg = golden_stream_l1_neg },
};

/* A hop: each column stage runs its kernel once, on every output its held columns complete,
 * and passes them on; the last one's go into the window of the global pooling. */
static void golden_stream_stream_hop(unsigned char *s)
{
    uint32_t p;
    p = tb_stream_ready((const tb_stream_buf_t *)(const void *)(s + 8), 3u, 1u);
    if (!p)
        return;
    {
        tb_iconv1d_t d = golden_stream_l0_stream;
        d.t_in = (int)((p - 1u) * 1u + 3u);
        d.t_out = (int)p;
        tb_iconv1d_s16(&d, (const int16_t *)(const void *)(s + 16), (uint32_t *)(void *)(s + 256));
    }
    tb_stream_drop((tb_stream_buf_t *)(void *)(s + 8), s + 16, 6u, p * 1u);
    tb_stream_append((tb_stream_buf_t *)(void *)(s + 40), s + 48, s + 256, 4u, p);
    p = tb_stream_ready((const tb_stream_buf_t *)(const void *)(s + 40), 3u, 2u);
    if (!p)
        return;
    {
        tb_bconv1d_t d = golden_stream_l1_stream;
        d.t_in = (int)((p - 1u) * 2u + 3u);
        d.t_out = (int)p;
        tb_bconv1d_b32(&d, (const uint32_t *)(const void *)(s + 48), (uint32_t *)(void *)(s + 256));
    }
    tb_stream_drop((tb_stream_buf_t *)(void *)(s + 40), s + 48, 4u, p * 2u);
    for (uint32_t j = 0; j < p; j++)
        tb_globalsum_push_b32(&golden_stream_l2, (uint32_t *)(void *)(s + 200), (uint32_t *)(void *)(s + 64), (int32_t *)(void *)(s + 68), (const uint32_t *)(const void *)(s + 256) + j * 2u);
}

/* A decision: the window's pooling, then the stages after it, into the caller's scores. */
static void golden_stream_stream_decide(unsigned char *s, int32_t *scores)
{
    tb_globalsum_read_b32(&golden_stream_l2, (const int32_t *)(const void *)(s + 68), (int32_t *)(void *)(s + 256));
    tb_classifier_q8_s32(&golden_stream_l3, (const int32_t *)(const void *)(s + 256), scores);
}

void golden_stream_stream_reset(void *state)
{
    unsigned char *s = (unsigned char *)state;
    memset(s, 0, GOLDEN_STREAM_STATE_BYTES);
    *(uint32_t *)(void *)(s + 0) = 1u;
    *(uint32_t *)(void *)(s + 4) = 8u;
}

int golden_stream_stream_push(void *state, const int16_t *samples, size_t n, int32_t *scores)
{
    unsigned char *s = (unsigned char *)state;
    uint32_t *until = (uint32_t *)(void *)(s + 0), *warm = (uint32_t *)(void *)(s + 4);
    int decisions = 0;
    while (n) {
        uint32_t k = n < *until ? (uint32_t)n : *until; /* samples up to the hop's end */
        tb_stream_append((tb_stream_buf_t *)(void *)(s + 8), s + 16, samples, 6u, k);
        samples += k * GOLDEN_STREAM_IN_CHANNELS;
        n -= k;
        if ((*until -= k) != 0)
            break;
        *until = GOLDEN_STREAM_DECISION_HOP;
        golden_stream_stream_hop(s);
        if (*warm) {
            --*warm;
            continue;
        }
        golden_stream_stream_decide(s, scores);
        if (decisions < 0x7fffffff)
            decisions++;
    }
    return decisions;
}

int golden_stream_stream_class(const int32_t *scores)
{
    return tb_argmax_s32(scores, GOLDEN_STREAM_NUM_CLASSES);
}
