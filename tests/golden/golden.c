/*
 * golden.c - weights and glue of a model compiled by tinybnn 0.1.0.
 *
 *   command:    tinybnn compile golden.pt -o golden --name golden
 *   model file: (a model object, not a file)
 *   sha256:     -
 *
 * Shapes are written as the C holds them: TxC, "b" for packed bits (1 bit = -1).
 * Weights and thresholds: 665 bytes; arena: 196 bytes.
 */
#include "golden.h"
#include "tinybnn_kernels.h"

/* Hooks for profiling and tests; they compile to nothing by default. */
#ifndef TB_STAGE_BEGIN
#define TB_STAGE_BEGIN(index) ((void)0)
#endif
#ifndef TB_STAGE_END
#define TB_STAGE_END(index, buffer, bytes) ((void)0)
#endif

const char *const golden_class_names[GOLDEN_NUM_CLASSES] = {
    "tap",
    "double tap",
    "none",
};

/* L0 input_conv1d: 16x3 int16 -> 16x8b, k=3 s=1 pad=1, binary weights, |acc| <= 2065743 */
static const uint32_t golden_l0_w[8] = { /* binary, tap-major */
    0x0000007fu, 0x000000a1u, 0x00000113u, 0x00000055u, 0x0000019au, 0x00000048u,
    0x000000deu, 0x000001fdu
};
static const int16_t golden_l0_offset[3] = {
    10, -20, 30
};
static const int16_t golden_l0_mult[3] = {
    5, 7, 9
};
static const int32_t golden_l0_th[8] = { /* thresholds */
    -485555, 576888, 532089, 378868, -58891, -1778112, -586194, 78409
};
static const uint32_t golden_l0_neg[1] = { /* 1 = output is -1 above th */
    0x0000006eu
};
static const tb_iconv1d_t golden_l0 = {
    .c_in = 3,
    .t_in = 16,
    .c_out = 8,
    .t_out = 16,
    .kernel_size = 3,
    .stride = 1,
    .pad = 1,
    .pool_k = 1,
    .pool_s = 1,
    .lo = -32768,
    .hi = 32767,
    .offset = golden_l0_offset,
    .mult = golden_l0_mult,
    .wb = golden_l0_w,
    .th = { .th32 = golden_l0_th, .neg = golden_l0_neg },
};

/* L1 bconv1d: 16x8b -> 8x33b, k=3 s=2 pad=1x(-1) */
static const uint32_t golden_l1_pad[1] = { /* pad value -1 */
    0x000000ffu
};
static const uint32_t golden_l1_w[99] = { /* [33][3][1] */
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
static const int16_t golden_l1_th[33] = { /* thresholds */
    25, 0, 8, 7, -5, -5, -1, -10, -3, -4, 1, 1,
    24, -4, -3, 3, -10, 5, 10, 6, -14, -7, 12, 5,
    -24, 12, -2, 0, 11, 3, 13, 24, 5
};
static const uint32_t golden_l1_neg[2] = { /* 1 = output is -1 above th */
    0xe032f43au, 0x00000000u
};
static const tb_bconv1d_t golden_l1 = {
    .c_in = 8,
    .t_in = 16,
    .c_out = 33,
    .t_out = 8,
    .kernel_size = 3,
    .stride = 2,
    .pad = 1,
    .pool_k = 1,
    .pool_s = 1,
    .pad_word = golden_l1_pad,
    .w = golden_l1_w,
    .th = { .th16 = golden_l1_th, .neg = golden_l1_neg },
};

/* L2 global sum pooling: 8x33b -> 33 int32 counts */
static const tb_globalsum_t golden_l2 = {
    .c = 33,
    .t = 8,
};

/* L3 classifier: 33 counts -> 3 scores, int8 weights */
static const int8_t golden_l3_w[99] = { /* int8 */
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
static const int32_t golden_l3_bias[3] = {
    5, -14, -11
};
static const tb_classifier_t golden_l3 = {
    .num_classes = 3,
    .in_features = 33,
    .in_c = 33,
    .in_t = 1,
    .wq = golden_l3_w,
    .bias = golden_l3_bias,
};

int golden_classify(const int16_t *samples, int32_t *scores, uint32_t *arena)
{
    unsigned char *a = (unsigned char *)arena;
    TB_STAGE_BEGIN(0);
    tb_iconv1d_s16(&golden_l0, samples, (uint32_t *)(void *)(a + 0));
    TB_STAGE_END(0, a + 0, 64);
    TB_STAGE_BEGIN(1);
    tb_bconv1d_b32(&golden_l1, (const uint32_t *)(const void *)(a + 0), (uint32_t *)(void *)(a + 132));
    TB_STAGE_END(1, a + 132, 64);
    TB_STAGE_BEGIN(2);
    tb_globalsum_b32(&golden_l2, (const uint32_t *)(const void *)(a + 132), (int32_t *)(void *)(a + 0));
    TB_STAGE_END(2, a + 0, 132);
    TB_STAGE_BEGIN(3);
    tb_classifier_q8_s32(&golden_l3, (const int32_t *)(const void *)(a + 0), scores);
    TB_STAGE_END(3, scores, 12);
    (void)a;
    return tb_argmax_s32(scores, GOLDEN_NUM_CLASSES);
}

int golden_classify_static(const int16_t *samples, int32_t *scores)
{
    static uint32_t arena[(GOLDEN_ARENA_BYTES + 3) / 4];
    return golden_classify(samples, scores, arena);
}
