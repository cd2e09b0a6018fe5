/*
 * tinybnn_kernels.h - the portable kernels of tinybnn's integer program (C99).
 *
 * The arithmetic contract (docs/lowering.md, tinybnn/compiler/contract.py):
 *   - a binary value is one bit: bit 1 means -1, bit 0 means +1;
 *   - channel c of a time step lives in word c / 32, bit c % 32; a [C, T] activation is
 *     stored [T][TB_WORDS(C)] and the unused bits of a last, partial word are 0;
 *   - for K real bits, dot = K - 2 * popcount(x ^ w) (padding bits are 0 on both sides);
 *   - output bit = (acc > th) where the channel's direction bit is 1, else (acc < th);
 *   - max pooling before the sign pools the integer accumulator (its scale is positive).
 *
 * Every function is static: several compiled models link into one firmware without clashes,
 * and unused kernels cost no flash. No malloc, no stdio, no float.
 */
#ifndef TINYBNN_KERNELS_H
#define TINYBNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#if defined(__ARM_FEATURE_SIMD32)
#include <arm_acle.h> /* __smlad: the compiler's own header */
#endif

#define TB_WORDS(bits) (((bits) + 31) / 32)

/* Limits shared with the compiler, which reads them from here (tinybnn/compiler/kernels.py)
 * and guards each one a generated model relies on with #error. */
#define TB_VSL_MAX_SLICES 16 /* bit-sliced counts: the most slices (bits) of a count */
#define TB_SLICES_MIN 5      /* ... and the fewest: 4 carry-save slices and one more */
#define TB_VST_GROUP_BITS 3  /* subset tables: input bits per lookup (8 patterns) */
#define TB_SST_MAX_SPAN 16   /* subset-sum first layer: the most input steps of one output */
#define TB_SST_MAX_IN 8      /* ... and the most input channels (2^c_in sums per step) */
#define TB_SUM_MAX 32767     /* shortcuts: the largest |sum| of an int16 sum buffer */
#define TB_RQ_MAX_SHIFT 31   /* requantisation to int8: the largest right shift */
#define TB_VSTQ_MAX_SLICES 8 /* codes out by subset tables: a count's slices (one byte) */
#define TB_GSUM_VSL_MAX_T 255 /* bit-sliced global sum: the most steps (a count in a byte) */

#if TB_VSL_MAX_SLICES < TB_SLICES_MIN || TB_SLICES_MIN != 5
#error "the bit-sliced kernels keep exactly 4 carry-save slices below the high ones"
#endif
#if TB_VST_GROUP_BITS != 3
#error "the subset-table kernels read 3 input bits per lookup (masks of 7, 8 entries)"
#endif
#if TB_VSTQ_MAX_SLICES > 8 || TB_VSTQ_MAX_SLICES > TB_VSL_MAX_SLICES
#error "tb_bconv1d_q8_vst_b32 transposes at most 8 slices of counts into bytes"
#endif
#if TB_GSUM_VSL_MAX_T > 255
#error "tb_globalsum_vsl_b32 transposes 8 slices of counts into bytes"
#endif

/* Number of set bits; portable SWAR (GCC's __builtin_popcount calls libgcc on Cortex-M). */
static inline int32_t tb_popcount32(uint32_t x)
{
    x = x - ((x >> 1) & 0x55555555u);
    x = (x & 0x33333333u) + ((x >> 2) & 0x33333333u);
    x = (x + (x >> 4)) & 0x0f0f0f0fu;
    return (int32_t)((x * 0x01010101u) >> 24);
}

/* Bit i of a packed vector. */
static inline uint32_t tb_bit(const uint32_t *v, int i)
{
    return (v[i >> 5] >> (i & 31)) & 1u;
}

/* Per-channel thresholds: th16 or th32 is set (the other NULL); neg: [TB_WORDS(C)]. */
typedef struct {
    const int16_t *th16;
    const int32_t *th32;
    const uint32_t *neg;
} tb_threshold_t;

/* Output bit of channel o for accumulator acc (1 = -1). */
static inline uint32_t tb_threshold_bit(const tb_threshold_t *t, int o, int32_t acc)
{
    int32_t th = t->th16 ? (int32_t)t->th16[o] : t->th32[o];
    return tb_bit(t->neg, o) ? (uint32_t)(acc > th) : (uint32_t)(acc < th);
}

/* The int32 whose two's complement is u (no implementation-defined conversion). */
static inline int32_t tb_s32(uint32_t u)
{
    return u <= (uint32_t)INT32_MAX ? (int32_t)u : -(int32_t)(~u) - 1;
}

/* Requantisation of an accumulator to an int8 code, per channel o (docs/lowering.md):
 *   q = clamp(floor((acc * mult + bias) / 2^shift), lo, hi),   0 <= shift <= TB_RQ_MAX_SHIFT.
 * acc is first clamped to [amin, amax], outside which q saturates (the clamp changes no q),
 * and the compiler proves |a * mult + bias| <= 2^31 - 1 over [amin, amax]: so the product
 * and the sum, taken modulo 2^32, are exact, and the floor shift of a negative value is done
 * on its complement (no implementation-defined signed shift). */
typedef struct {
    const int32_t *mult;   /* [c_out] */
    const int32_t *bias;   /* [c_out]: the offset and the rounding (+1/2), times 2^shift */
    const uint8_t *shift;  /* [c_out] */
    const int32_t *amin;   /* [c_out] */
    const int32_t *amax;   /* [c_out] */
    int lo, hi;            /* the codes: [0, 127] after a ReLU, else [-128, 127] */
} tb_requant_t;

/* The code of channel o for accumulator acc, in [lo, hi]. */
static inline int32_t tb_requant(const tb_requant_t *r, int o, int32_t acc)
{
    int32_t a = acc < r->amin[o] ? r->amin[o] : (acc > r->amax[o] ? r->amax[o] : acc);
    uint32_t v = (uint32_t)a * (uint32_t)r->mult[o] + (uint32_t)r->bias[o];
    uint32_t m = 0u - (v >> 31); /* all ones where v < 0 */
    int32_t q = tb_s32(((v ^ m) >> r->shift[o]) ^ m);
    return q < r->lo ? r->lo : (q > r->hi ? r->hi : q);
}

/* First layer: int16 samples, binary (wb) or int8 (wq) weights, [max-pool], sign. */
typedef struct {
    int c_in, t_in, c_out, t_out;  /* t_out after pooling */
    int kernel_size, stride, pad;  /* pad: steps of x' = 0 on each side */
    int pool_k, pool_s;            /* 1, 1 when there is no pooling */
    int16_t lo, hi;                /* samples are clamped to [lo, hi] */
    const int16_t *offset;         /* [c_in] */
    const int16_t *mult;           /* [c_in] */
    const uint32_t *wb;            /* [c_out][TB_WORDS(k * c_in)] bits, tap-major, or NULL */
    const int8_t *wq;              /* [c_out][k][c_in] or NULL */
    tb_threshold_t th;
    /* Fast variants only (0 / NULL for the reference loop): */
    int ring;                      /* steps cached in the scratch, a power of two */
    const uint8_t *tap_index;      /* sst: [c_out][k], the c_in weight bits of each tap */
    const int8_t *wq4;             /* xq: [ceil(c_out/4)][k][c_in][4], wq in blocks of 4 */
    const uint32_t *wp;            /* xs: [ceil(c_out/4)][k][cp/2][4] int16 pairs of w * mult */
    const uint32_t *bias;          /* xs: where each output's sum starts, see xs */
    int flat;                      /* xs: 1 = rows of c_in samples unpadded, pairs read unaligned */
    const uint32_t *wm;            /* xm: [ceil(c_out/4)][k * c_in][4] words s * w, see xm */
    int lookups;                   /* sso: table lookups per output channel and position */
    const uint32_t *table_rec;     /* sso: per output channel its bias and table offsets, see sso */
} tb_iconv1d_t;

/* Normalised sample x' = (clamp(x) - offset) * mult, |x'| < 2^31 by construction. */
static inline int32_t tb_input_value(const tb_iconv1d_t *L, int16_t x, int c)
{
    int32_t v = x < L->lo ? L->lo : (x > L->hi ? L->hi : x);
    return (v - L->offset[c]) * L->mult[c];
}

/* Accumulator of output channel o at conv position t; the bound was proved at compile time. */
static inline int32_t tb_iconv1d_acc(const tb_iconv1d_t *L, const int16_t *x, int o, int t)
{
    int32_t acc = 0;
    for (int k = 0; k < L->kernel_size; k++) {
        int ti = t * L->stride + k - L->pad;
        if (ti < 0 || ti >= L->t_in)
            continue; /* padding: x' = 0 */
        for (int c = 0; c < L->c_in; c++) {
            int32_t v = tb_input_value(L, x[ti * L->c_in + c], c);
            if (L->wb) {
                uint32_t negative = tb_bit(L->wb + o * TB_WORDS(L->kernel_size * L->c_in), k * L->c_in + c);
                acc += negative ? -v : v;
            } else {
                acc += (int32_t)L->wq[(o * L->kernel_size + k) * L->c_in + c] * v;
            }
        }
    }
    return acc;
}

/* The walk every reference convolution shares: for each pooled output step p and output
 * channel o, the largest accumulator over the pool window, thresholded into bit o of row p.
 * acc(layer, x, o, t) is the accumulator of channel o at conv position t.
 * out: [t_out][TB_WORDS(c_out)] packed. */
typedef int32_t (*tb_acc_fn)(const void *layer, const void *x, int o, int t);

static inline void tb_conv1d_walk(const void *layer, const void *x, tb_acc_fn acc, int c_out,
                                  int t_out, int pool_k, int pool_s, const tb_threshold_t *th,
                                  uint32_t *y)
{
    int ow = TB_WORDS(c_out);
    memset(y, 0, (size_t)(t_out * ow) * sizeof(uint32_t));
    for (int p = 0; p < t_out; p++) {
        for (int o = 0; o < c_out; o++) {
            int32_t best = INT32_MIN;
            for (int j = 0; j < pool_k; j++) {
                int32_t a = acc(layer, x, o, p * pool_s + j);
                best = a > best ? a : best;
            }
            y[p * ow + (o >> 5)] |= tb_threshold_bit(th, o, best) << (o & 31);
        }
    }
}

/* As tb_conv1d_walk, but the pooled accumulators leave as sums, each within +-TB_SUM_MAX
 * (the compiler proves it): out: int16 [t_out][c_out]. */
static inline void tb_conv1d_walk_sum(const void *layer, const void *x, tb_acc_fn acc, int c_out,
                                      int t_out, int pool_k, int pool_s, int16_t *y)
{
    for (int p = 0; p < t_out; p++) {
        for (int o = 0; o < c_out; o++) {
            int32_t best = INT32_MIN;
            for (int j = 0; j < pool_k; j++) {
                int32_t a = acc(layer, x, o, p * pool_s + j);
                best = a > best ? a : best;
            }
            y[p * c_out + o] = (int16_t)best;
        }
    }
}

/* As tb_conv1d_walk, but with int8 codes out: for each pooled step p and channel o, the
 * largest code over the pool window (the codes are requantised, then max-pooled: exact for
 * either sign of the multiplier). out: int8 [t_out][c_out]. */
static inline void tb_conv1d_walk_q8(const void *layer, const void *x, tb_acc_fn acc, int c_out,
                                     int t_out, int pool_k, int pool_s, const tb_requant_t *rq,
                                     int8_t *y)
{
    for (int p = 0; p < t_out; p++) {
        for (int o = 0; o < c_out; o++) {
            int32_t best = rq->lo;
            for (int j = 0; j < pool_k; j++) {
                int32_t q = tb_requant(rq, o, acc(layer, x, o, p * pool_s + j));
                best = q > best ? q : best;
            }
            y[p * c_out + o] = (int8_t)best;
        }
    }
}

static inline int32_t tb_iconv1d_acc_any(const void *L, const void *x, int o, int t)
{
    return tb_iconv1d_acc((const tb_iconv1d_t *)L, (const int16_t *)x, o, t);
}

/* in: int16 [t_in][c_in] (interleaved, as an IMU FIFO delivers); out: [t_out][TB_WORDS(c_out)]. */
static inline void tb_iconv1d_s16(const tb_iconv1d_t *L, const int16_t *x, uint32_t *y)
{
    tb_conv1d_walk(L, x, tb_iconv1d_acc_any, L->c_out, L->t_out, L->pool_k, L->pool_s, &L->th, y);
}

/* Binary convolution with a declared pad value, [max-pool], sign. */
typedef struct {
    int c_in, t_in, c_out, t_out;  /* t_out after pooling */
    int kernel_size, stride, pad;
    int pool_k, pool_s;
    const uint32_t *pad_word;      /* [TB_WORDS(c_in)]: the pad value's bits */
    const uint32_t *w;             /* [c_out][kernel_size][TB_WORDS(c_in)] */
    tb_threshold_t th;             /* bits out */
    tb_requant_t rq;               /* int8 codes out (tb_bconv1d_q8_*) */
    /* The bit-sliced variants only (NULL, 0 for the others); wt for vsl alone: */
    const uint32_t *wt;            /* [TB_WORDS(c_out)][kernel_size][c_in], bit b = channel 32g+b */
    const uint32_t *ge;            /* [TB_WORDS(c_out)][slices]: bound U per channel, bit-sliced */
    int slices;                    /* bits of a count in [0, k*c_in + 1] */
    /* The subset-table variant only (NULL otherwise), with ge and slices as above: */
    const uint32_t *tab;           /* [TB_WORDS(c_out)][kernel_size][groups][8][2], see vst */
} tb_bconv1d_t;

/* dot of output channel o at conv position t, in [-k*c_in, k*c_in]. */
static inline int32_t tb_bconv1d_acc(const tb_bconv1d_t *L, const uint32_t *x, int o, int t)
{
    int cw = TB_WORDS(L->c_in);
    int32_t ones = 0;
    for (int k = 0; k < L->kernel_size; k++) {
        int ti = t * L->stride + k - L->pad;
        const uint32_t *row = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
        const uint32_t *w = L->w + (o * L->kernel_size + k) * cw;
        for (int i = 0; i < cw; i++)
            ones += tb_popcount32(row[i] ^ w[i]);
    }
    return L->kernel_size * L->c_in - 2 * ones;
}

static inline int32_t tb_bconv1d_acc_any(const void *L, const void *x, int o, int t)
{
    return tb_bconv1d_acc((const tb_bconv1d_t *)L, (const uint32_t *)x, o, t);
}

/* in: [t_in][TB_WORDS(c_in)] packed; out: [t_out][TB_WORDS(c_out)] packed. */
static inline void tb_bconv1d_b32(const tb_bconv1d_t *L, const uint32_t *x, uint32_t *y)
{
    tb_conv1d_walk(L, x, tb_bconv1d_acc_any, L->c_out, L->t_out, L->pool_k, L->pool_s, &L->th, y);
}

/* The same convolution and pooling without the sign, for a shortcut (binary_residual1d)
 * that adds to its sums (th unused).
 * in: [t_in][TB_WORDS(c_in)] packed; out: int16 [t_out][c_out], |sum| <= kernel_size*c_in. */
static inline void tb_bconv1d_sum_b32(const tb_bconv1d_t *L, const uint32_t *x, int16_t *y)
{
    tb_conv1d_walk_sum(L, x, tb_bconv1d_acc_any, L->c_out, L->t_out, L->pool_k, L->pool_s, y);
}

/* The same convolution with int8 codes out ("1a8"): each dot product requantised
 * (tb_requant, the rq record), then max-pooled (th unused).
 * in: [t_in][TB_WORDS(c_in)] packed; out: int8 [t_out][c_out], codes in [rq.lo, rq.hi]. */
static inline void tb_bconv1d_q8_b32(const tb_bconv1d_t *L, const uint32_t *x, int8_t *y)
{
    tb_conv1d_walk_q8(L, x, tb_bconv1d_acc_any, L->c_out, L->t_out, L->pool_k, L->pool_s, &L->rq, y);
}

/* A real-valued shortcut around a binary convolution (Bi-Real / ReActNet), on integers:
 * out = maxpool(x + bconv(sign(bn(x)))), where x are sums of +-1 products (the unit every
 * binary convolution shares, so the add needs no scale). The block's batchnorm_sign is
 * in_th; the batchnorm_sign after the block, when there is one, is th (out_bits = 1). */
typedef struct {
    tb_bconv1d_t conv;    /* c_in = c_out = c, t_in = t, stride 1, 'same' padding (k odd);
                           * pool_k, pool_s: max-pool after the add; t_out after pooling */
    tb_threshold_t in_th; /* sign of the input sums: its bits feed conv */
    tb_threshold_t th;    /* out_bits only: sign of the pooled output sums */
    int out_bits;         /* 1: packed bits out; 0: int16 sums out */
} tb_bresidual1d_t;

/* What the residual's accumulator reads: the input sums and their signs. */
typedef struct {
    const int16_t *sums;  /* [t][c] */
    const uint32_t *bits; /* [t][TB_WORDS(c)] */
} tb_bresidual1d_in_t;

/* The shortcut's sum of channel o at step t, in [-TB_SUM_MAX, TB_SUM_MAX]. */
static inline int32_t tb_bresidual1d_acc_any(const void *layer, const void *x, int o, int t)
{
    const tb_bresidual1d_t *L = (const tb_bresidual1d_t *)layer;
    const tb_bresidual1d_in_t *in = (const tb_bresidual1d_in_t *)x;
    return (int32_t)in->sums[t * L->conv.c_in + o] + tb_bconv1d_acc(&L->conv, in->bits, o, t);
}

/* The block's signs of its input sums x [t][c]: bits [t][TB_WORDS(c)] packed. */
static inline void tb_bresidual1d_signs(const tb_bresidual1d_t *L, const int16_t *x, uint32_t *bits)
{
    int c = L->conv.c_in, cw = TB_WORDS(c), t = L->conv.t_in;
    memset(bits, 0, (size_t)(t * cw) * sizeof(uint32_t));
    for (int s = 0; s < t; s++)
        for (int ch = 0; ch < c; ch++)
            bits[s * cw + (ch >> 5)] |= tb_threshold_bit(&L->in_th, ch, x[s * c + ch]) << (ch & 31);
}

/* in: int16 [t][c] sums, |x| + kernel_size*c <= TB_SUM_MAX (the compiler proves it);
 * out: int16 [t_out][c] sums, or [t_out][TB_WORDS(c)] packed bits when out_bits;
 * scratch: [t][TB_WORDS(c)] words, the signs of the input. */
static inline void tb_bresidual1d_s16(const tb_bresidual1d_t *L, const int16_t *x, void *y,
                                      int32_t *scratch)
{
    int c = L->conv.c_in;
    uint32_t *bits = (uint32_t *)scratch;
    tb_bresidual1d_signs(L, x, bits);
    tb_bresidual1d_in_t in = {x, bits};
    if (L->out_bits)
        tb_conv1d_walk(L, &in, tb_bresidual1d_acc_any, c, L->conv.t_out, L->conv.pool_k,
                       L->conv.pool_s, &L->th, (uint32_t *)y);
    else
        tb_conv1d_walk_sum(L, &in, tb_bresidual1d_acc_any, c, L->conv.t_out, L->conv.pool_k,
                           L->conv.pool_s, (int16_t *)y);
}

/* int8 convolution of binary activations: +-1 inputs (a declared pad value), int8 weights,
 * [max-pool], sign. The accumulator is an integer sum, |acc| <= 127 * kernel_size * c_in. */
typedef struct {
    int c_in, t_in, c_out, t_out;  /* t_out after pooling */
    int kernel_size, stride, pad;
    int pool_k, pool_s;
    const uint32_t *pad_word;      /* [TB_WORDS(c_in)]: the pad value's bits */
    const int8_t *w;               /* [c_out][kernel_size][c_in] int8 codes in [-127, 127] */
    tb_threshold_t th;
    /* The xs variant only (NULL otherwise): */
    const uint32_t *wp;            /* [ceil(c_out/4)][k * cp/2][4] int16 pairs of s * w, see xs */
    const uint32_t *bias;          /* xs, xm: [ceil(c_out/4) * 4]: -s * th, where each sum starts */
    /* The xm variant only (NULL otherwise), with bias as above: */
    const uint32_t *wm;            /* [ceil(c_out/4)][k * c_in][4] words s * w, see xm */
} tb_i8conv1d_t;

/* sum of w * x of output channel o at conv position t. */
static inline int32_t tb_i8conv1d_acc(const tb_i8conv1d_t *L, const uint32_t *x, int o, int t)
{
    int cw = TB_WORDS(L->c_in);
    int32_t acc = 0;
    for (int k = 0; k < L->kernel_size; k++) {
        int ti = t * L->stride + k - L->pad;
        const uint32_t *row = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
        const int8_t *w = L->w + (o * L->kernel_size + k) * L->c_in;
        for (int c = 0; c < L->c_in; c++)
            acc += tb_bit(row, c) ? -(int32_t)w[c] : (int32_t)w[c];
    }
    return acc;
}

static inline int32_t tb_i8conv1d_acc_any(const void *L, const void *x, int o, int t)
{
    return tb_i8conv1d_acc((const tb_i8conv1d_t *)L, (const uint32_t *)x, o, t);
}

/* in: [t_in][TB_WORDS(c_in)] packed; out: [t_out][TB_WORDS(c_out)] packed. */
static inline void tb_i8conv1d_b32(const tb_i8conv1d_t *L, const uint32_t *x, uint32_t *y)
{
    tb_conv1d_walk(L, x, tb_i8conv1d_acc_any, L->c_out, L->t_out, L->pool_k, L->pool_s, &L->th, y);
}

/* Binary dense layer and sign over a packed vector. */
typedef struct {
    int in_words, in_features, c_out;
    const uint32_t *w;  /* [c_out][in_words], in the input buffer's bit layout, or NULL */
    tb_threshold_t th;
    /* The subset-table variant only (NULL, 0 for the others), as in tb_bconv1d_t: */
    const uint32_t *ge;
    int slices;
    const uint32_t *tab; /* [TB_WORDS(c_out)][in_words][11][8][2], see tb_bdense_vst_b32 */
} tb_bdense_t;

/* in: [in_words] packed; out: [TB_WORDS(c_out)] packed. */
static inline void tb_bdense_b32(const tb_bdense_t *L, const uint32_t *x, uint32_t *y)
{
    memset(y, 0, (size_t)TB_WORDS(L->c_out) * sizeof(uint32_t));
    for (int o = 0; o < L->c_out; o++) {
        int32_t ones = 0;
        for (int i = 0; i < L->in_words; i++)
            ones += tb_popcount32(x[i] ^ L->w[o * L->in_words + i]);
        y[o >> 5] |= tb_threshold_bit(&L->th, o, L->in_features - 2 * ones) << (o & 31);
    }
}

/* Max pooling of binary activations over time: +1 wins, so the bits are ANDed. */
typedef struct {
    int c, t_in, t_out, kernel_size, stride;
} tb_maxpool1d_t;

/* in: [t_in][TB_WORDS(c)]; out: [t_out][TB_WORDS(c)] (global pooling: t_out = 1). */
static inline void tb_maxpool1d_b32(const tb_maxpool1d_t *L, const uint32_t *x, uint32_t *y)
{
    int cw = TB_WORDS(L->c);
    for (int p = 0; p < L->t_out; p++) {
        for (int i = 0; i < cw; i++) {
            uint32_t v = 0xffffffffu;
            for (int j = 0; j < L->kernel_size; j++)
                v &= x[(p * L->stride + j) * cw + i];
            y[p * cw + i] = v;
        }
    }
}

/* Global sum pooling: count_c = sum over t of +-1 = t - 2 * (steps where the bit is 1). */
typedef struct {
    int c, t;
} tb_globalsum_t;

/* in: [t][TB_WORDS(c)] packed; out: int32 [c], each in [-t, t]. */
static inline void tb_globalsum_b32(const tb_globalsum_t *L, const uint32_t *x, int32_t *y)
{
    int cw = TB_WORDS(L->c);
    for (int c = 0; c < L->c; c++) {
        int32_t ones = 0;
        for (int t = 0; t < L->t; t++)
            ones += (int32_t)tb_bit(x + t * cw, c);
        y[c] = L->t - 2 * ones;
    }
}

/* Global sum pooling of int8 codes: y_c = sum over t of x[t][c].
 * in: int8 [t][c]; out: int32 [c], each within t * 128 (the compiler checks int32). */
static inline void tb_globalsum_s8(const tb_globalsum_t *L, const int8_t *x, int32_t *y)
{
    for (int c = 0; c < L->c; c++) {
        int32_t sum = 0;
        for (int t = 0; t < L->t; t++)
            sum += x[t * L->c + c];
        y[c] = sum;
    }
}

/* The classifier: integer scores = dot(input, weights) + bias. */
typedef struct {
    int num_classes;
    int in_features;           /* real inputs */
    int in_c, in_t;            /* binary input read as [in_t][TB_WORDS(in_c)] */
    const uint32_t *wb;        /* binary weights [num_classes][in words] in the input's layout, or NULL */
    const int8_t *wq;          /* int8 weights [num_classes][in_t][in_c] (or [in_features]), or NULL */
    const int32_t *bias;       /* [num_classes] */
} tb_classifier_t;

/* Binary input (packed) and binary weights. */
static inline void tb_classifier_b32(const tb_classifier_t *L, const uint32_t *x, int32_t *scores)
{
    int n = L->in_t * TB_WORDS(L->in_c);
    for (int k = 0; k < L->num_classes; k++) {
        int32_t ones = 0;
        for (int i = 0; i < n; i++)
            ones += tb_popcount32(x[i] ^ L->wb[k * n + i]);
        scores[k] = L->in_features - 2 * ones + L->bias[k];
    }
}

/* Binary input (packed) and int8 weights. */
static inline void tb_classifier_q8_b32(const tb_classifier_t *L, const uint32_t *x, int32_t *scores)
{
    int cw = TB_WORDS(L->in_c);
    for (int k = 0; k < L->num_classes; k++) {
        int32_t acc = L->bias[k];
        const int8_t *w = L->wq + k * L->in_t * L->in_c;
        for (int t = 0; t < L->in_t; t++)
            for (int c = 0; c < L->in_c; c++) {
                int32_t q = w[t * L->in_c + c];
                acc += tb_bit(x + t * cw, c) ? -q : q;
            }
        scores[k] = acc;
    }
}

/* Integer counts and int8 weights. */
static inline void tb_classifier_q8_s32(const tb_classifier_t *L, const int32_t *x, int32_t *scores)
{
    for (int k = 0; k < L->num_classes; k++) {
        int32_t acc = L->bias[k];
        for (int i = 0; i < L->in_features; i++)
            acc += (int32_t)L->wq[k * L->in_features + i] * x[i];
        scores[k] = acc;
    }
}

/* Integer counts and binary weights. */
static inline void tb_classifier_b_s32(const tb_classifier_t *L, const int32_t *x, int32_t *scores)
{
    int n = TB_WORDS(L->in_features);
    for (int k = 0; k < L->num_classes; k++) {
        int32_t acc = L->bias[k];
        for (int i = 0; i < L->in_features; i++)
            acc += tb_bit(L->wb + k * n, i) ? -x[i] : x[i];
        scores[k] = acc;
    }
}

/* ======================================================================================
 * Fast variants. Each computes exactly what the reference kernel of the same op computes
 * (tests/test_kernels.py runs both on the same vectors); the compiler picks one per stage
 * and target (each op module in tinybnn/ops lists its variants; tinybnn/compiler/variants.py
 * selects). Names: tb_<op>_<variant>_<type>.
 * ====================================================================================== */

/* Fast kernels are inlined into each call site, where the layer's descriptor is a constant:
 * the compiler then knows every shape and unrolls the short loops (code per layer). */
#if defined(__GNUC__)
#define TB_SPECIALISE static inline __attribute__((always_inline))
#else
#define TB_SPECIALISE static inline
#endif
/* Unroll the next loop (its trip count is a layer constant once specialised); GCC only. */
#if defined(__GNUC__) && !defined(__clang__)
#define TB_UNROLL _Pragma("GCC unroll 16")
#else
#define TB_UNROLL
#endif
/* Unroll the next loop whatever its trip count (a layer constant), GCC only. */
#if defined(__GNUC__) && !defined(__clang__)
#define TB_UNROLL_ALL _Pragma("GCC unroll 256")
#else
#define TB_UNROLL_ALL
#endif
/* The same where registers are plentiful; ARMv6-M's 8 low registers spill an unrolled body. */
#if defined(__ARM_ARCH_6M__)
#define TB_UNROLL_WIDE
#else
#define TB_UNROLL_WIDE TB_UNROLL
#endif

/* Sum over n words of popcount(a[i] ^ b[i]). Byte lanes: each word adds its 4 byte counts
 * (<= 8) to 4 lane sums, deferred over up to 31 words (<= 248 < 256), then one fold. */
TB_SPECIALISE int32_t tb_xorpop_lanes_b32(const uint32_t *a, const uint32_t *b, int n)
{
    int32_t ones = 0;
    while (n > 0) {
        int m = n < 31 ? n : 31;
        uint32_t lanes = 0;
        for (int i = 0; i < m; i++) {
            uint32_t v = a[i] ^ b[i];
            v = v - ((v >> 1) & 0x55555555u);
            v = (v & 0x33333333u) + ((v >> 2) & 0x33333333u);
            lanes += (v + (v >> 4)) & 0x0f0f0f0fu;
        }
        lanes = (lanes & 0x00ff00ffu) + ((lanes >> 8) & 0x00ff00ffu); /* 2 lanes <= 496 */
        ones += (int32_t)((lanes + (lanes >> 16)) & 0xffffu);
        a += m;
        b += m;
        n -= m;
    }
    return ones;
}

/* Threshold of channel o (th16 or th32). */
static inline int32_t tb_threshold_at(const tb_threshold_t *t, int o)
{
    return t->th16 ? (int32_t)t->th16[o] : t->th32[o];
}

/* Output bit (1 = -1) for accumulator acc, threshold th and direction bit neg (0 or 1). */
static inline uint32_t tb_sign_bit(int32_t acc, int32_t th, uint32_t neg)
{
    return neg ? (uint32_t)(acc > th) : (uint32_t)(acc < th);
}

/* Binary convolution, byte-lane popcount; the window of an interior position is contiguous
 * ([k][TB_WORDS(c_in)] words of x), so it is one dot product of k*TB_WORDS(c_in) words;
 * positions touching the padding go tap by tap. Output words are built in a register.
 * in: [t_in][TB_WORDS(c_in)] packed; out: [t_out][TB_WORDS(c_out)] packed. No scratch. */
TB_SPECIALISE void tb_bconv1d_lanes_b32(const tb_bconv1d_t *L, const uint32_t *x, uint32_t *y)
{
    int cw = TB_WORDS(L->c_in), ow = TB_WORDS(L->c_out), n = L->kernel_size * cw;
    int32_t k_bits = L->kernel_size * L->c_in;
    for (int p = 0; p < L->t_out; p++) {
        for (int g = 0; g < ow; g++) {
            uint32_t bits = 0, negw = L->th.neg[g];
            int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            for (int b = 0; b < count; b++) {
                int o = 32 * g + b;
                const uint32_t *w = L->w + o * n;
                int32_t best = INT32_MIN;
                for (int j = 0; j < L->pool_k; j++) {
                    int t0 = (p * L->pool_s + j) * L->stride - L->pad;
                    int32_t ones = 0;
                    if (t0 >= 0 && t0 + L->kernel_size <= L->t_in) {
                        ones = tb_xorpop_lanes_b32(x + t0 * cw, w, n);
                    } else {
                        for (int k = 0; k < L->kernel_size; k++) {
                            int ti = t0 + k;
                            const uint32_t *row = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
                            ones += tb_xorpop_lanes_b32(row, w + k * cw, cw);
                        }
                    }
                    int32_t acc = k_bits - 2 * ones;
                    best = acc > best ? acc : best;
                }
                bits |= tb_sign_bit(best, tb_threshold_at(&L->th, o), (negw >> b) & 1u) << b;
            }
            y[p * ow + g] = bits;
        }
    }
}

/* dot of output channel o at conv position t, as tb_bconv1d_acc, by byte-lane popcounts over
 * one contiguous run of k*TB_WORDS(c_in) words where the window is interior. */
TB_SPECIALISE int32_t tb_bconv1d_dot_lanes(const tb_bconv1d_t *L, const uint32_t *x, int o, int t)
{
    int cw = TB_WORDS(L->c_in), n = L->kernel_size * cw;
    const uint32_t *w = L->w + o * n;
    int t0 = t * L->stride - L->pad;
    int32_t ones = 0;
    if (t0 >= 0 && t0 + L->kernel_size <= L->t_in) {
        ones = tb_xorpop_lanes_b32(x + t0 * cw, w, n);
    } else {
        for (int k = 0; k < L->kernel_size; k++) {
            int ti = t0 + k;
            const uint32_t *row = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
            ones += tb_xorpop_lanes_b32(row, w + k * cw, cw);
        }
    }
    return L->kernel_size * L->c_in - 2 * ones;
}

/* tb_bconv1d_sum_b32 by byte-lane popcounts. in: [t_in][TB_WORDS(c_in)] packed; out: int16
 * [t_out][c_out], |sum| <= kernel_size*c_in. No scratch. */
TB_SPECIALISE void tb_bconv1d_sum_lanes_b32(const tb_bconv1d_t *L, const uint32_t *x, int16_t *y)
{
    for (int p = 0; p < L->t_out; p++) {
        for (int o = 0; o < L->c_out; o++) {
            int32_t best = INT32_MIN;
            for (int j = 0; j < L->pool_k; j++) {
                int32_t a = tb_bconv1d_dot_lanes(L, x, o, p * L->pool_s + j);
                best = a > best ? a : best;
            }
            y[p * L->c_out + o] = (int16_t)best;
        }
    }
}

/* tb_bconv1d_q8_b32 by byte-lane popcounts, one requantisation per pooled output: the code
 * is monotone in acc (non-decreasing where mult >= 0, non-increasing where mult < 0), so the
 * largest code of a pool window is the code of its largest acc, or of its smallest.
 * in: [t_in][TB_WORDS(c_in)] packed; out: int8 [t_out][c_out], codes in [rq.lo, rq.hi].
 * No scratch. */
TB_SPECIALISE void tb_bconv1d_q8_lanes_b32(const tb_bconv1d_t *L, const uint32_t *x, int8_t *y)
{
    for (int p = 0; p < L->t_out; p++) {
        for (int o = 0; o < L->c_out; o++) {
            int down = L->rq.mult[o] < 0; /* the code falls as acc rises */
            int32_t best = tb_bconv1d_dot_lanes(L, x, o, p * L->pool_s);
            for (int j = 1; j < L->pool_k; j++) {
                int32_t a = tb_bconv1d_dot_lanes(L, x, o, p * L->pool_s + j);
                best = (down ? a < best : a > best) ? a : best;
            }
            y[p * L->c_out + o] = (int8_t)tb_requant(&L->rq, o, best);
        }
    }
}

/* tb_bresidual1d_s16 by byte-lane popcounts: in, out and scratch as there. */
TB_SPECIALISE void tb_bresidual1d_lanes_s16(const tb_bresidual1d_t *L, const int16_t *x, void *y,
                                            int32_t *scratch)
{
    const tb_bconv1d_t *C = &L->conv;
    int c = C->c_in, cw = TB_WORDS(c);
    uint32_t *bits = (uint32_t *)scratch;
    uint32_t *yb = (uint32_t *)y;
    int16_t *ys = (int16_t *)y;
    tb_bresidual1d_signs(L, x, bits);
    if (L->out_bits)
        memset(yb, 0, (size_t)(C->t_out * cw) * sizeof(uint32_t));
    for (int p = 0; p < C->t_out; p++) {
        for (int o = 0; o < c; o++) {
            int32_t best = INT32_MIN;
            for (int j = 0; j < C->pool_k; j++) {
                int s = p * C->pool_s + j;
                int32_t a = (int32_t)x[s * c + o] + tb_bconv1d_dot_lanes(C, bits, o, s);
                best = a > best ? a : best;
            }
            if (L->out_bits)
                yb[p * cw + (o >> 5)] |= tb_threshold_bit(&L->th, o, best) << (o & 31);
            else
                ys[p * c + o] = (int16_t)best;
        }
    }
}

/* Carry-save adder on 32 lanes: (h, l) = the 2-bit sums a + b + c. */
#define TB_CSA(h, l, a, b, c)                                                                  \
    do {                                                                                       \
        uint32_t tb_a_ = (a), tb_b_ = (b), tb_c_ = (c), tb_u_ = tb_a_ ^ tb_b_;                 \
        (h) = (tb_a_ & tb_b_) | (tb_u_ & tb_c_);                                               \
        (l) = tb_u_ ^ tb_c_;                                                                   \
    } while (0)

/* The sign bits of 32 channels from their bit-sliced mismatch counts, ones + 2 twos +
 * 4 fours + 8 eights + 16 sixteens (sixteens[0..high-1] hold bits 4 and up): (count >= U)
 * xor the direction neg, with U per channel in ge[slices]. The comparison is the borrow of
 * count - U, from the lowest slice up. */
static inline uint32_t tb_sliced_sign(const uint32_t *ge, uint32_t ones, uint32_t twos, uint32_t fours,
                                      uint32_t eights, const uint32_t *sixteens, int high, uint32_t neg)
{
    uint32_t borrow = ge[0] & ~ones;
    borrow = (ge[1] & ~twos) | (~(twos ^ ge[1]) & borrow);
    borrow = (ge[2] & ~fours) | (~(fours ^ ge[2]) & borrow);
    borrow = (ge[3] & ~eights) | (~(eights ^ ge[3]) & borrow);
#if defined(__ARM_ARCH_6M__) && !defined(__OPTIMIZE_SIZE__)
    TB_UNROLL /* GCC keeps the loop on ARMv6-M (12 instructions a slice); elsewhere it costs */
#endif
    for (int s = 0; s < high; s++)
        borrow = (ge[4 + s] & ~sixteens[s]) | (~(sixteens[s] ^ ge[4 + s]) & borrow);
    return ~borrow ^ neg;
}

/* Adds carry (weight 16) into the high slices sixteens[0..high-1], stopping when it is 0. */
static inline void tb_sliced_ripple(uint32_t *sixteens, int high, uint32_t carry)
{
    for (int s = 0; carry && s < high; s++) {
        uint32_t c2 = sixteens[s] & carry;
        sixteens[s] ^= carry;
        carry = c2;
    }
}

/* Harley-Seal step: the 8 mismatch words of input bits v & 0xff against weight words
 * w[0..7] go into the carry-save counters (ones, twos, fours); returns the carry of weight 8. */
static inline uint32_t tb_hs8(uint32_t *ones, uint32_t *twos, uint32_t *fours, const uint32_t *w, uint32_t v)
{
    uint32_t twos_a, twos_b, fours_a, fours_b, eights;
#define TB_MISMATCH(b) (w[b] ^ (0u - ((v >> (b)) & 1u))) /* lanes where input bit b differs */
    TB_CSA(twos_a, *ones, *ones, TB_MISMATCH(0), TB_MISMATCH(1));
    TB_CSA(twos_b, *ones, *ones, TB_MISMATCH(2), TB_MISMATCH(3));
    TB_CSA(fours_a, *twos, *twos, twos_a, twos_b);
    TB_CSA(twos_a, *ones, *ones, TB_MISMATCH(4), TB_MISMATCH(5));
    TB_CSA(twos_b, *ones, *ones, TB_MISMATCH(6), TB_MISMATCH(7));
    TB_CSA(fours_b, *twos, *twos, twos_a, twos_b);
    TB_CSA(eights, *fours, *fours, fours_a, fours_b);
#undef TB_MISMATCH
    return eights;
}

/* Binary convolution, bit-sliced across output channels: one word holds one input bit's
 * mismatches with 32 output channels (wt ^ the input bit spread to all lanes), and
 * Harley-Seal carry-save adders count them per lane, 16 inputs at a time, into a
 * bit-sliced count of mismatches `ones` (acc = k*c_in - 2*ones). The sign is a bit-sliced
 * comparison ones >= U with U per channel (from th, see codegen), XOR the direction;
 * pooling before the sign is an AND (direction 0) or OR (direction 1) of the window's bits.
 * Needs c_in % 8 == 0 and TB_SLICES_MIN <= slices <= TB_VSL_MAX_SLICES (the compiler checks).
 * in: [t_in][TB_WORDS(c_in)] packed; out: [t_out][TB_WORDS(c_out)] packed. No scratch. */
TB_SPECIALISE void tb_bconv1d_vsl_b32(const tb_bconv1d_t *L, const uint32_t *x, uint32_t *y)
{
    int cw = TB_WORDS(L->c_in), ow = TB_WORDS(L->c_out), high = L->slices - 4;
    for (int p = 0; p < L->t_out; p++) {
        for (int g = 0; g < ow; g++) {
            uint32_t neg = L->th.neg[g], pooled = ~neg; /* AND where neg is 0, OR where 1 */
            const uint32_t *ge = L->ge + g * L->slices;
            for (int j = 0; j < L->pool_k; j++) {
                int t0 = (p * L->pool_s + j) * L->stride - L->pad;
                uint32_t ones = 0, twos = 0, fours = 0, eights = 0, carry;
                uint32_t sixteens[TB_VSL_MAX_SLICES - 4]; /* the count's bits 4 and up */
                for (int s = 0; s < high; s++)
                    sixteens[s] = 0;
                for (int k = 0; k < L->kernel_size; k++) {
                    int ti = t0 + k;
                    const uint32_t *row = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
                    const uint32_t *w = L->wt + (g * L->kernel_size + k) * L->c_in;
                    for (int c = 0; c < L->c_in; c += 16, w += 16) {
                        uint32_t v = row[c >> 5] >> (c & 31);
                        uint32_t e = tb_hs8(&ones, &twos, &fours, w, v);
                        if (c + 8 < L->c_in) { /* 16 inputs: carry of weight 16 */
                            uint32_t f = tb_hs8(&ones, &twos, &fours, w + 8, v >> 8);
                            TB_CSA(carry, eights, eights, e, f);
                        } else { /* the last 8 of c_in % 16 == 8 */
                            carry = eights & e;
                            eights ^= e;
                        }
                        tb_sliced_ripple(sixteens, high, carry);
                    }
                }
                uint32_t bits = tb_sliced_sign(ge, ones, twos, fours, eights, sixteens, high, neg);
                pooled = (pooled & (bits | neg)) | (bits & neg);
            }
            y[p * ow + g] = pooled;
        }
    }
}

/* Subset-sum tables ("vst"). A row word of m valid input bits splits into
 * TB_VST_GROUPS(m) groups of 3 bits (bits 3q..3q+2). For each group and each of its 8 input
 * patterns, the table holds the bit-sliced sum of the group's mismatches with 32 output
 * channels, in [0, 3]: a pair of words (l, h), weights 1 and 2. So one lookup replaces three
 * mismatch words, and two words go into the carry-save counters instead of three. */
#define TB_VST_GROUPS(m) (((m) + TB_VST_GROUP_BITS - 1) / TB_VST_GROUP_BITS)

/* v, made to depend on after: the compiler cannot hoist work on v above the code that
 * computes after. Keeps the scheduler from loading a whole word's table entries at once
 * (more live values than registers, so spills), and the address arithmetic in the form
 * add + load pair. Emits no instruction. */
#if defined(__GNUC__)
#define TB_AFTER(v, after) __asm__("" : "+r"(v) : "r"(after))
#define TB_OPAQUE(v) __asm__("" : "+r"(v))
#else
#define TB_AFTER(v, after) ((void)(after))
#define TB_OPAQUE(v) ((void)0)
#endif

/* The entry (l, h) of group q of word v; t: the word's first group's table. TB_OPAQUE
 * keeps the address in the form add + load pair: left alone, the compiler folds the group's
 * offset into the index and needs two more instructions per group. */
#define TB_VST_FETCH(l, h, t, v, q)                                                            \
    do {                                                                                       \
        const uint32_t *tb_e_ = (t) + 2 * (((v) >> (3 * (q))) & 7u);                           \
        TB_OPAQUE(tb_e_);                                                                      \
        (l) = tb_e_[16 * (q)];                                                                 \
        (h) = tb_e_[16 * (q) + 1];                                                             \
    } while (0)

/* Groups q and q+1 of *v into (ones, twos, fours); returns the carry of weight 8. */
static inline uint32_t tb_vst_pair(uint32_t *ones, uint32_t *twos, uint32_t *fours, const uint32_t *t,
                                   uint32_t *v, int q)
{
    uint32_t l0, h0, l1, h1, c1, c2, c3;
    TB_AFTER(*v, *fours);
    TB_VST_FETCH(l0, h0, t, *v, q);
    TB_VST_FETCH(l1, h1, t, *v, q + 1);
    TB_CSA(c1, *ones, *ones, l0, l1);  /* c1: weight 2 */
    TB_CSA(c2, *twos, *twos, h0, h1);  /* c2: weight 4 */
    uint32_t c1b = *twos & c1;         /* twos + c1 */
    *twos ^= c1;
    TB_CSA(c3, *fours, *fours, c2, c1b);
    return c3;
}

/* One word v of m valid input bits into the bit-sliced counts (ones, twos, fours, eights,
 * sixteens[0..high-1]) of 32 output channels' mismatches; t: the word's tables,
 * TB_VST_GROUPS(m) of 16 words. Groups go four at a time (two pairs, one carry of weight
 * 16), then a pair, then one. */
TB_SPECIALISE void tb_vst_word(uint32_t *ones, uint32_t *twos, uint32_t *fours, uint32_t *eights,
                               uint32_t *sixteens, int high, const uint32_t *t, uint32_t v, int m)
{
    int groups = TB_VST_GROUPS(m), q = 0;
    uint32_t carry;
    TB_UNROLL
    for (; q + 4 <= groups; q += 4) {
        uint32_t a = tb_vst_pair(ones, twos, fours, t, &v, q);
        uint32_t b = tb_vst_pair(ones, twos, fours, t, &v, q + 2);
        TB_CSA(carry, *eights, *eights, a, b);
        tb_sliced_ripple(sixteens, high, carry);
    }
    if (q + 2 <= groups) {
        uint32_t a = tb_vst_pair(ones, twos, fours, t, &v, q);
        carry = *eights & a;
        *eights ^= a;
        tb_sliced_ripple(sixteens, high, carry);
        q += 2;
    }
    if (q < groups) { /* the last, single group */
        uint32_t l, h, c1, c2, c3;
        TB_VST_FETCH(l, h, t, v, q);
        c1 = *ones & l;
        *ones ^= l;
        TB_CSA(c2, *twos, *twos, h, c1);
        c3 = *fours & c2;
        *fours ^= c2;
        carry = *eights & c3;
        *eights ^= c3;
        tb_sliced_ripple(sixteens, high, carry);
    }
}

#if defined(__ARM_ARCH_6M__) && defined(__GNUC__) && !defined(__clang__)
#define TB_VST_V6M 1
/* tb_vst_word over a window's rows in ARMv6-M assembly. GCC, left with eight low registers
 * for the counters, the table pointer, the input word and the looked-up words, spilled and
 * shuffled about as many instructions again as the counting needs; here the counting keeps
 * ones, twos, the tables t and the word v in r0-r3, the looked-up words in r4-r7, fours and
 * eights in r8, r9. Thumb-1 logic is two-operand, so each carry-save adder works in place:
 * with o the counter and x, y the words, x ^= o, y ^= o, y ^= x, x &= ~y, x ^= o, o ^= y
 * leaves o = o ^ x ^ y and the carry maj(o, x, y) in x (six instructions, no scratch); a half
 * adder is o ^= x, x &= ~o. A pair takes the groups at bits 0-5 of v and the tables at t
 * (16 words a group), then shifts v down by 6 and moves t past them, so every offset is an
 * immediate; its carry of weight 8 is left in r4. */
#define TB_V6M_CSA(o, x, y)                                                                    \
    "eors " x ", " o "\n\t"                                                                    \
    "eors " y ", " o "\n\t"                                                                    \
    "eors " y ", " x "\n\t"                                                                    \
    "bics " x ", " y "\n\t"                                                                    \
    "eors " x ", " o "\n\t"                                                                    \
    "eors " o ", " y "\n\t"
#define TB_V6M_PAIR                                                                            \
    "lsls r4, r3, #29\n\t" /* (v & 7) * 8: the first group's entry (l, h) */                   \
    "lsrs r4, r4, #26\n\t"                                                                     \
    "adds r4, r4, r2\n\t"                                                                      \
    "ldr r5, [r4, #0]\n\t"                                                                     \
    "ldr r4, [r4, #4]\n\t"                                                                     \
    "movs r6, #0x38\n\t" /* v & 0x38: the second group's, 16 words on */                       \
    "ands r6, r3\n\t"                                                                          \
    "adds r6, r6, r2\n\t"                                                                      \
    "ldr r7, [r6, #64]\n\t"                                                                    \
    "ldr r6, [r6, #68]\n\t"                                                                    \
    "lsrs r3, r3, #6\n\t"                                                                      \
    "adds r2, #128\n\t"                                                                        \
    TB_V6M_CSA("r0", "r5", "r7") /* ones + l0 + l1; r5: the carry, weight 2 */                 \
    TB_V6M_CSA("r1", "r4", "r6") /* twos + h0 + h1; r4: weight 4 */                            \
    "eors r1, r5\n\t"            /* twos + r5; r5: weight 4 */                                 \
    "bics r5, r1\n\t"                                                                          \
    "mov r6, r8\n\t"                                                                           \
    TB_V6M_CSA("r6", "r4", "r5") /* fours + r4 + r5; r4: weight 8 */                           \
    "mov r8, r6\n\t"
/* r4, of weight 16, into sixteens[] (its address at sp + 4), until no carry is left (the
 * compiler sizes the slices for the largest count, so it never runs past them) */
#define TB_V6M_RIPPLE                                                                          \
    "ldr r7, [sp, #4]\n\t"                                                                     \
    "1:\n\t"                                                                                   \
    "ldr r5, [r7]\n\t"                                                                         \
    "eors r5, r4\n\t"                                                                          \
    "bics r4, r5\n\t"                                                                          \
    "stmia r7!, {r5}\n\t"                                                                      \
    "bne 1b\n\t"
/* four groups: two pairs, their carries added to eights, weight 16 rippled */
#define TB_V6M_QUAD                                                                            \
    TB_V6M_PAIR                                                                                \
    "mov r12, r4\n\t"                                                                          \
    TB_V6M_PAIR                                                                                \
    "mov r5, r12\n\t"                                                                          \
    "mov r6, r9\n\t"                                                                           \
    TB_V6M_CSA("r6", "r4", "r5")                                                               \
    "mov r9, r6\n\t"                                                                           \
    TB_V6M_RIPPLE
/* two groups, the carry added to eights */
#define TB_V6M_PAIR_ALONE                                                                      \
    TB_V6M_PAIR                                                                                \
    "mov r6, r9\n\t"                                                                           \
    "eors r6, r4\n\t"                                                                          \
    "bics r4, r6\n\t"                                                                          \
    "mov r9, r6\n\t"                                                                           \
    TB_V6M_RIPPLE
/* one group, bits 0-2 of v */
#define TB_V6M_SINGLE                                                                          \
    "lsls r4, r3, #29\n\t"                                                                     \
    "lsrs r4, r4, #26\n\t"                                                                     \
    "adds r4, r4, r2\n\t"                                                                      \
    "ldr r5, [r4, #0]\n\t"                                                                     \
    "ldr r4, [r4, #4]\n\t"                                                                     \
    "adds r2, #64\n\t"                                                                         \
    "eors r0, r5\n\t" /* ones + l; r5: weight 2 */                                             \
    "bics r5, r0\n\t"                                                                          \
    TB_V6M_CSA("r1", "r4", "r5") /* twos + h + r5; r4: weight 4 */                             \
    "mov r6, r8\n\t"                                                                           \
    "eors r6, r4\n\t"                                                                          \
    "bics r4, r6\n\t"                                                                          \
    "mov r8, r6\n\t"                                                                           \
    "mov r6, r9\n\t"                                                                           \
    "eors r6, r4\n\t"                                                                          \
    "bics r4, r6\n\t"                                                                          \
    "mov r9, r6\n\t"                                                                           \
    TB_V6M_RIPPLE

/* The counts s (ones, twos, fours, eights, then sixteens[12]), zeroed first if `fresh`,
 * plus those of k rows of input words, one after the other at x: each row `full` words of
 * 32 bits and, if `groups` > 0, a last word of that many groups; t: the rows' tables, one
 * after the other, as tb_vst_word reads them. shape = k | full << 16 | groups << 27 |
 * fresh << 31 (k < 2^16 and full < 2^11, as the count k * c_in fits 16 slices). */
#if TB_VSL_MAX_SLICES != 16
#error "tb_vst_rows_v6m zeroes 12 high slices"
#endif
#define TB_VST_V6M_FRESH 0x80000000u
#define TB_ARG __attribute__((unused)) /* read by the assembly, in r0-r3 */
__attribute__((naked, noinline, unused)) static void tb_vst_rows_v6m(uint32_t *s TB_ARG, const uint32_t *t TB_ARG,
                                                                     const uint32_t *x TB_ARG,
                                                                     uint32_t shape TB_ARG)
{
    __asm__(".syntax unified\n\t"
            "push {r4, r5, r6, r7, lr}\n\t"
            "mov r4, r8\n\t"
            "mov r5, r9\n\t"
            "push {r4, r5}\n\t"
            "sub sp, #20\n\t" /* x, sixteens, rows left, full, groups */
            "str r2, [sp, #0]\n\t"
            "uxth r4, r3\n\t"
            "str r4, [sp, #8]\n\t"
            "lsls r4, r3, #5\n\t"
            "lsrs r4, r4, #21\n\t"
            "str r4, [sp, #12]\n\t"
            "lsls r4, r3, #1\n\t"
            "lsrs r4, r4, #28\n\t"
            "str r4, [sp, #16]\n\t"
            "movs r2, r1\n\t" /* t */
            "cmp r3, #0\n\t"
            "bge 12f\n\t"
            "movs r4, #0\n\t" /* fresh: zero counts */
            "movs r5, #0\n\t"
            "movs r6, #0\n\t"
            "movs r7, #0\n\t"
            "adds r0, #16\n\t"
            "str r0, [sp, #4]\n\t"
            "stmia r0!, {r4, r5, r6, r7}\n\t"
            "stmia r0!, {r4, r5, r6, r7}\n\t"
            "stmia r0!, {r4, r5, r6, r7}\n\t"
            "b 13f\n\t"
            "12:\n\t"
            "ldmia r0!, {r4, r5, r6, r7}\n\t"
            "str r0, [sp, #4]\n\t"
            "13:\n\t"
            "movs r0, r4\n\t" /* ones */
            "movs r1, r5\n\t" /* twos */
            "mov r8, r6\n\t"  /* fours */
            "mov r9, r7\n\t"  /* eights */
            "2:\n\t"          /* a row: its words of 32 bits, 11 groups each */
            "ldr r4, [sp, #12]\n\t"
            "cmp r4, #0\n\t"
            "bne 3f\n\t"
            "b 5f\n\t"
            "3:\n\t"
            "mov lr, r4\n\t"
            "ldr r5, [sp, #0]\n\t"
            "ldmia r5!, {r3}\n\t"
            "str r5, [sp, #0]\n\t"
            TB_V6M_QUAD TB_V6M_QUAD TB_V6M_PAIR_ALONE TB_V6M_SINGLE
            "mov r4, lr\n\t"
            "subs r4, #1\n\t"
            "beq 5f\n\t"
            "b 3b\n\t"
            "5:\n\t" /* then a last word of fewer groups */
            "ldr r4, [sp, #16]\n\t"
            "cmp r4, #0\n\t"
            "bne 6f\n\t"
            "b 9f\n\t"
            "6:\n\t"
            "ldr r5, [sp, #0]\n\t"
            "ldmia r5!, {r3}\n\t"
            "str r5, [sp, #0]\n\t"
            "subs r4, #4\n\t"
            "blt 8f\n\t"
            "7:\n\t"
            "mov lr, r4\n\t"
            TB_V6M_QUAD
            "mov r4, lr\n\t"
            "subs r4, #4\n\t"
            "bge 7b\n\t"
            "8:\n\t"
            "adds r4, #4\n\t" /* 0-3 groups left */
            "cmp r4, #2\n\t"
            "blt 10f\n\t"
            "mov lr, r4\n\t"
            TB_V6M_PAIR_ALONE
            "mov r4, lr\n\t"
            "10:\n\t"
            "lsrs r4, r4, #1\n\t" /* carry: an odd group left */
            "bcc 9f\n\t"
            TB_V6M_SINGLE
            "9:\n\t" /* the next row */
            "ldr r4, [sp, #8]\n\t"
            "subs r4, #1\n\t"
            "str r4, [sp, #8]\n\t"
            "beq 11f\n\t"
            "b 2b\n\t"
            "11:\n\t"
            "ldr r4, [sp, #4]\n\t"
            "subs r4, #16\n\t"
            "mov r6, r8\n\t"
            "mov r7, r9\n\t"
            "stmia r4!, {r0, r1, r6, r7}\n\t"
            "add sp, #20\n\t"
            "pop {r4, r5}\n\t"
            "mov r8, r4\n\t"
            "mov r9, r5\n\t"
            "pop {r4, r5, r6, r7, pc}");
}

/* The counts of one window of k rows of c_in bits from input step t0 (rows outside
 * [0, t_in) read pad) into s: [TB_VSL_MAX_SLICES] words, ones, twos, fours, eights, then
 * sixteens[]. A window inside the input is one run of words, one call (rows of whole words
 * as one long row); one at an edge, a call a row. */
static inline void tb_vst_window_v6m(uint32_t *s, const uint32_t *t, const uint32_t *x, int t0, int t_in, int k,
                                     int c_in, const uint32_t *pad)
{
    int cw = TB_WORDS(c_in), row_groups = (c_in / 32) * TB_VST_GROUPS(32) + TB_VST_GROUPS(c_in % 32);
    uint32_t shape = (uint32_t)(c_in / 32) << 16 | (uint32_t)TB_VST_GROUPS(c_in % 32) << 27;
    if (t0 >= 0 && t0 + k <= t_in) {
        if (c_in % 32 == 0)
            shape = (uint32_t)(k * cw) << 16 | 1u;
        else
            shape |= (uint32_t)k;
        tb_vst_rows_v6m(s, t, x + t0 * cw, shape | TB_VST_V6M_FRESH);
        return;
    }
    for (int j = 0; j < k; j++, t += 16 * row_groups) {
        int ti = t0 + j;
        tb_vst_rows_v6m(s, t, (ti < 0 || ti >= t_in) ? pad : x + ti * cw,
                        shape | 1u | (j == 0 ? TB_VST_V6M_FRESH : 0u));
    }
}
#endif

/* Binary convolution with subset-sum tables, bit-sliced across output channels as
 * tb_bconv1d_vsl_b32 (same counts, same comparison with U) but three input bits per
 * lookup. Tables: L->tab, [TB_WORDS(c_out)][kernel_size][groups of a row][8][2] words
 * (flash: 16/3 words per input bit and output word, 5.3 times the packed weights).
 * Needs TB_SLICES_MIN <= slices <= TB_VSL_MAX_SLICES (the compiler checks). On ARMv6-M
 * (GCC) a window's counting is tb_vst_rows_v6m's assembly, the same counts.
 * in: [t_in][TB_WORDS(c_in)] packed; out: [t_out][TB_WORDS(c_out)] packed. No scratch. */
TB_SPECIALISE void tb_bconv1d_vst_b32(const tb_bconv1d_t *L, const uint32_t *x, uint32_t *y)
{
    int cw = TB_WORDS(L->c_in), ow = TB_WORDS(L->c_out), high = L->slices - 4;
    int row_groups = 0; /* groups of one tap's row of c_in bits */
    for (int i = 0; i < cw; i++)
        row_groups += TB_VST_GROUPS(i < cw - 1 ? 32 : L->c_in - 32 * i);
    for (int p = 0; p < L->t_out; p++) {
        for (int g = 0; g < ow; g++) {
            uint32_t neg = L->th.neg[g], pooled = ~neg; /* AND where neg is 0, OR where 1 */
            const uint32_t *ge = L->ge + g * L->slices;
            for (int j = 0; j < L->pool_k; j++) {
                int t0 = (p * L->pool_s + j) * L->stride - L->pad;
                const uint32_t *t = L->tab + g * L->kernel_size * row_groups * 16;
#if defined(TB_VST_V6M)
                uint32_t s[TB_VSL_MAX_SLICES]; /* ones, twos, fours, eights, sixteens */
                tb_vst_window_v6m(s, t, x, t0, L->t_in, L->kernel_size, L->c_in, L->pad_word);
                uint32_t bits = tb_sliced_sign(ge, s[0], s[1], s[2], s[3], s + 4, high, neg);
#else
                uint32_t ones = 0, twos = 0, fours = 0, eights = 0;
                uint32_t sixteens[TB_VSL_MAX_SLICES - 4]; /* the count's bits 4 and up */
                for (int s = 0; s < high; s++)
                    sixteens[s] = 0;
                for (int k = 0; k < L->kernel_size; k++) {
                    int ti = t0 + k;
                    const uint32_t *row = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
                    TB_UNROLL
                    for (int i = 0; i < cw; i++) {
                        int m = i < cw - 1 ? 32 : L->c_in - 32 * i;
                        tb_vst_word(&ones, &twos, &fours, &eights, sixteens, high, t, row[i], m);
                        t += 16 * TB_VST_GROUPS(m);
                    }
                }
                uint32_t bits = tb_sliced_sign(ge, ones, twos, fours, eights, sixteens, high, neg);
#endif
                pooled = (pooled & (bits | neg)) | (bits & neg);
            }
            y[p * ow + g] = pooled;
        }
    }
}

/* Transposes the 8 slices s[0..7] of 32 lanes' counts (bit b of s[i]: bit i of lane b's
 * count) in place, so that byte q of s[i] is the count of lane 8q + i: three rounds of
 * block swaps, an 8x8 bit transpose within each byte position. */
static inline void tb_slices_to_bytes(uint32_t *s)
{
    uint32_t t;
    for (int i = 0; i < 4; i++) {
        t = ((s[i] >> 4) ^ s[i + 4]) & 0x0f0f0f0fu;
        s[i + 4] ^= t;
        s[i] ^= t << 4;
    }
    for (int i = 0; i < 8; i += (i % 2) ? 3 : 1) { /* i = 0, 1, 4, 5 */
        t = ((s[i] >> 2) ^ s[i + 2]) & 0x33333333u;
        s[i + 2] ^= t;
        s[i] ^= t << 2;
    }
    for (int i = 0; i < 8; i += 2) {
        t = ((s[i] >> 1) ^ s[i + 1]) & 0x55555555u;
        s[i + 1] ^= t;
        s[i] ^= t << 1;
    }
}

/* tb_globalsum_b32 bit-sliced: for each word of 32 channels, the t words of the window go
 * into a ripple counter of 8 slices (the channels' set bits, t <= TB_GSUM_VSL_MAX_T: the
 * compiler checks), transposed into one byte per channel (tb_slices_to_bytes); then
 * count = t - 2 * ones, as there. in: [t][TB_WORDS(c)] packed; out: int32 [c]. */
#if defined(__GNUC__)
/* Called once per inference: not inlined, as inlined it moved GCC's register allocation
 * of the binary convolutions around it (ARMv6-M: +5 % there); unused where no stage
 * calls it. */
__attribute__((noinline, unused))
#endif
static void tb_globalsum_vsl_b32(const tb_globalsum_t *L, const uint32_t *x, int32_t *y)
{
    int cw = TB_WORDS(L->c);
    for (int i = 0; i < cw; i++) {
        uint32_t s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int t = 0; t < L->t; t++)
            tb_sliced_ripple(s, 8, x[t * cw + i]); /* each step's bits into the count */
        tb_slices_to_bytes(s); /* byte q of s[j]: the set bits of channel 32i + 8q + j */
        int n = L->c - 32 * i < 32 ? L->c - 32 * i : 32;
        for (int b = 0; b < n; b++)
            y[32 * i + b] = L->t - 2 * (int32_t)((s[b & 7] >> (8 * (b >> 3))) & 0xffu);
    }
}

/* tb_bconv1d_q8_b32 by subset tables: the mismatch counts of 32 output channels at once,
 * counted as tb_bconv1d_vst_b32 counts them (bit-sliced, three input bits per lookup),
 * transposed into one byte per channel (tb_slices_to_bytes), then each channel's
 * acc = k*c_in - 2*count requantised (tb_requant) once per pooled output: the code is
 * monotone in acc, non-decreasing where mult >= 0 and non-increasing where mult < 0 (the
 * clamps keep that), so the largest code of a pool window is the code of its smallest
 * count (mult >= 0) or of its largest (mult < 0), exactly the max of the codes. Needs
 * slices <= TB_VSTQ_MAX_SLICES (the compiler checks). Tables: L->tab as tb_bconv1d_vst_b32.
 * in: [t_in][TB_WORDS(c_in)] packed; out: int8 [t_out][c_out]. No scratch. */
TB_SPECIALISE void tb_bconv1d_q8_vst_b32(const tb_bconv1d_t *L, const uint32_t *x, int8_t *y)
{
    int cw = TB_WORDS(L->c_in), ow = TB_WORDS(L->c_out), high = L->slices - 4;
    int32_t k_bits = L->kernel_size * L->c_in;
    int row_groups = 0; /* groups of one tap's row of c_in bits */
    for (int i = 0; i < cw; i++)
        row_groups += TB_VST_GROUPS(i < cw - 1 ? 32 : L->c_in - 32 * i);
    for (int p = 0; p < L->t_out; p++) {
        for (int g = 0; g < ow; g++) {
            int lanes = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            int8_t *out = y + p * L->c_out + 32 * g;
            uint8_t best[32]; /* per lane: the count of the pool window's largest code */
            for (int j = 0; j < L->pool_k; j++) {
                int t0 = (p * L->pool_s + j) * L->stride - L->pad;
                const uint32_t *t = L->tab + g * L->kernel_size * row_groups * 16;
#if defined(TB_VST_V6M)
                uint32_t s8[TB_VSL_MAX_SLICES]; /* ones, twos, fours, eights, sixteens */
                tb_vst_window_v6m(s8, t, x, t0, L->t_in, L->kernel_size, L->c_in, L->pad_word);
                (void)high; /* the slices past it are 0 */
#else
                uint32_t ones = 0, twos = 0, fours = 0, eights = 0;
                uint32_t sixteens[TB_VSL_MAX_SLICES - 4]; /* the count's bits 4 and up */
                for (int s = 0; s < high; s++)
                    sixteens[s] = 0;
                for (int k = 0; k < L->kernel_size; k++) {
                    int ti = t0 + k;
                    const uint32_t *row = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
                    TB_UNROLL
                    for (int i = 0; i < cw; i++) {
                        int m = i < cw - 1 ? 32 : L->c_in - 32 * i;
                        tb_vst_word(&ones, &twos, &fours, &eights, sixteens, high, t, row[i], m);
                        t += 16 * TB_VST_GROUPS(m);
                    }
                }
                uint32_t s8[8] = {ones, twos, fours, eights, 0, 0, 0, 0};
                for (int s = 0; s < high; s++)
                    s8[4 + s] = sixteens[s];
#endif
                tb_slices_to_bytes(s8);
                for (int b = 0; b < lanes; b++) {
                    uint32_t count = (s8[b & 7] >> (8 * (b >> 3))) & 0xffu;
                    uint32_t up = (uint32_t)(L->rq.mult[32 * g + b] < 0);
                    if (j == 0 || (up ? count > best[b] : count < best[b]))
                        best[b] = (uint8_t)count;
                }
            }
            for (int b = 0; b < lanes; b++)
                out[b] = (int8_t)tb_requant(&L->rq, 32 * g + b, k_bits - 2 * (int32_t)best[b]);
        }
    }
}

/* Binary dense layer with subset-sum tables, as tb_bconv1d_vst_b32 over the in_words words
 * of the input buffer, all 32 bits of each (its padding bits are 0 on both sides, so they
 * count nothing). Tables: L->tab, [TB_WORDS(c_out)][in_words][11][8][2] words.
 * in: [in_words] packed; out: [TB_WORDS(c_out)] packed. */
TB_SPECIALISE void tb_bdense_vst_b32(const tb_bdense_t *L, const uint32_t *x, uint32_t *y)
{
    int high = L->slices - 4;
    for (int g = 0; g < TB_WORDS(L->c_out); g++) {
        const uint32_t *t = L->tab + g * L->in_words * 16 * TB_VST_GROUPS(32);
#if defined(TB_VST_V6M)
        uint32_t s[TB_VSL_MAX_SLICES]; /* ones, twos, fours, eights, sixteens */
        tb_vst_window_v6m(s, t, x, 0, 1, 1, 32 * L->in_words, x);
        y[g] = tb_sliced_sign(L->ge + g * L->slices, s[0], s[1], s[2], s[3], s + 4, high, L->th.neg[g]);
#else
        uint32_t ones = 0, twos = 0, fours = 0, eights = 0;
        uint32_t sixteens[TB_VSL_MAX_SLICES - 4];
        for (int s = 0; s < high; s++)
            sixteens[s] = 0;
        for (int i = 0; i < L->in_words; i++, t += 16 * TB_VST_GROUPS(32))
            tb_vst_word(&ones, &twos, &fours, &eights, sixteens, high, t, x[i], 32);
        y[g] = tb_sliced_sign(L->ge + g * L->slices, ones, twos, fours, eights, sixteens, high,
                              L->th.neg[g]);
#endif
    }
}

/* Binary dense layer, byte-lane popcount. in: [in_words] packed; out: [TB_WORDS(c_out)]. */
TB_SPECIALISE void tb_bdense_lanes_b32(const tb_bdense_t *L, const uint32_t *x, uint32_t *y)
{
    for (int g = 0; g < TB_WORDS(L->c_out); g++) {
        uint32_t bits = 0, negw = L->th.neg[g];
        int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
        for (int b = 0; b < count; b++) {
            int o = 32 * g + b;
            int32_t acc = L->in_features - 2 * tb_xorpop_lanes_b32(x, L->w + o * L->in_words, L->in_words);
            bits |= tb_sign_bit(acc, tb_threshold_at(&L->th, o), (negw >> b) & 1u) << b;
        }
        y[g] = bits;
    }
}

/* Classifier on packed input with binary weights, byte-lane popcount. */
TB_SPECIALISE void tb_classifier_lanes_b32(const tb_classifier_t *L, const uint32_t *x, int32_t *scores)
{
    int n = L->in_t * TB_WORDS(L->in_c);
    for (int k = 0; k < L->num_classes; k++)
        scores[k] = L->in_features - 2 * tb_xorpop_lanes_b32(x, L->wb + k * n, n) + L->bias[k];
}

/* The first layer's step cache: `ring` (a power of two) slots of `width` int32 values in
 * the scratch after `ring` tags (the step a slot holds, -1 for none). Returns the slot of
 * step ti; *fresh is 1 when it held another step, and the caller must fill it. */
static inline int32_t *tb_iconv1d_slot(const tb_iconv1d_t *L, int32_t *scratch, int width, int ti, int *fresh)
{
    int s = ti & (L->ring - 1);
    *fresh = scratch[s] != ti;
    scratch[s] = ti;
    return scratch + L->ring + s * width;
}

/* Subset-sum table of step ti: tab[m] = sum over c of (bit c of m ? -x'_c : x'_c), for all
 * 2^c_in masks m. Each entry is bounded by sum_c max|x'_c| <= the proved accumulator bound. */
static inline void tb_iconv1d_sst_fill(const tb_iconv1d_t *L, const int16_t *x, int ti, int32_t *tab)
{
    int32_t v[TB_SST_MAX_IN], sum = 0; /* c_in <= TB_SST_MAX_IN */
    for (int c = 0; c < L->c_in; c++) {
        v[c] = tb_input_value(L, x[ti * L->c_in + c], c);
        sum += v[c];
    }
    tab[0] = sum;
    for (int c = 0; c < L->c_in; c++) {
        const int32_t *lo = tab, *end = tab + (1 << c);
        int32_t *hi = tab + (1 << c), d = v[c];
        while (lo < end) /* entries with bit c set: x'_c counted -1 instead of +1 */
            *hi++ = (*lo++ - d) - d; /* never 2 * d: that alone may overflow */
    }
}

/* First layer, binary weights, c_in <= 8: subset-sum tables. Per input step, the 2^c_in
 * signed sums of its normalised channels are computed once (cached for `ring` steps); each
 * filter tap of each output channel is then one lookup at its weight bits (tap_index), and
 * padding steps look up a table of zeros. span = (pool_k - 1) * stride + k steps feed one
 * output; the compiler keeps span <= TB_SST_MAX_SPAN and ring >= span.
 * in: int16 [t_in][c_in]; out: [t_out][TB_WORDS(c_out)] packed.
 * scratch: int32 [ring + ring * 2^c_in + 2^c_in] (tags, tables, the zero table). */
TB_SPECIALISE void tb_iconv1d_sst_s16(const tb_iconv1d_t *L, const int16_t *x, uint32_t *y, int32_t *scratch)
{
    int width = 1 << L->c_in, ow = TB_WORDS(L->c_out);
    int span = (L->pool_k - 1) * L->stride + L->kernel_size;
    int32_t *zero = scratch + L->ring * (1 + width);
    const int32_t *tabs[TB_SST_MAX_SPAN];
    for (int s = 0; s < L->ring; s++)
        scratch[s] = -1;
    for (int m = 0; m < width; m++)
        zero[m] = 0;
    for (int p = 0; p < L->t_out; p++) {
        int t0 = p * L->pool_s * L->stride - L->pad;
        for (int s = 0; s < span; s++) {
            int ti = t0 + s, fresh;
            if (ti < 0 || ti >= L->t_in) {
                tabs[s] = zero; /* padding: x' = 0 */
                continue;
            }
            int32_t *tab = tb_iconv1d_slot(L, scratch, width, ti, &fresh);
            if (fresh)
                tb_iconv1d_sst_fill(L, x, ti, tab);
            tabs[s] = tab;
        }
        for (int g = 0; g < ow; g++) {
            uint32_t bits = 0, negw = L->th.neg[g];
            int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            for (int b = 0; b < count; b++) {
                int o = 32 * g + b;
                const uint8_t *idx = L->tap_index + o * L->kernel_size;
                int32_t best = INT32_MIN;
                for (int j = 0; j < L->pool_k; j++) {
                    const int32_t *const *tj = tabs + j * L->stride;
                    int32_t a = 0;
                    TB_UNROLL
                    for (int k = 0; k < L->kernel_size; k++)
                        a += tj[k][idx[k]];
                    best = a > best ? a : best;
                }
                bits |= tb_sign_bit(best, tb_threshold_at(&L->th, o), (negw >> b) & 1u) << b;
            }
            y[p * ow + g] = bits;
        }
    }
}

/* The last input step output p reads. */
static inline int tb_iconv1d_last_step(const tb_iconv1d_t *L, int p)
{
    return (p * L->pool_s + L->pool_k - 1) * L->stride - L->pad + L->kernel_size - 1;
}

/* x' of the steps from *next to the last one output p reads, into the ring of x' rows:
 * scratch [2 * ring][c_in], step ti in slot ti % ring and again ring slots later, so the rows
 * of any window of up to ring steps lie in one run. Steps outside the input (padding) are
 * rows of zeros. Outputs go forward, so each step is computed once. */
static inline void tb_iconv1d_x_steps(const tb_iconv1d_t *L, const int16_t *x, int p, int *next, int32_t *scratch)
{
    for (int last = tb_iconv1d_last_step(L, p); *next <= last; ++*next) {
        int ti = *next, inside = ti >= 0 && ti < L->t_in;
        int32_t *row = scratch + (ti & (L->ring - 1)) * L->c_in, *twin = row + L->ring * L->c_in;
        if (inside) {
            TB_UNROLL
            for (int c = 0; c < L->c_in; c++)
                row[c] = twin[c] = tb_input_value(L, x[ti * L->c_in + c], c);
        } else {
            for (int c = 0; c < L->c_in; c++)
                row[c] = twin[c] = 0;
        }
    }
}

/* First layer, binary weights, any c_in: x' computed once per input step (cached for
 * `ring` steps), not once per output channel and tap.
 * in: int16 [t_in][c_in]; out: [t_out][TB_WORDS(c_out)] packed.
 * scratch: int32 [2 * ring * c_in] (tb_iconv1d_x_steps). */
TB_SPECIALISE void tb_iconv1d_xn_s16(const tb_iconv1d_t *L, const int16_t *x, uint32_t *y, int32_t *scratch)
{
    int ow = TB_WORDS(L->c_out), kc = L->kernel_size * L->c_in;
    int next = -L->pad; /* the first step not yet in the ring */
    for (int p = 0; p < L->t_out; p++) {
        tb_iconv1d_x_steps(L, x, p, &next, scratch);
        for (int g = 0; g < ow; g++) {
            uint32_t bits = 0, negw = L->th.neg[g];
            int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            for (int b = 0; b < count; b++) {
                int o = 32 * g + b;
                int32_t best = INT32_MIN;
                for (int j = 0; j < L->pool_k; j++) {
                    int t0 = (p * L->pool_s + j) * L->stride - L->pad;
                    int32_t a = 0;
                    for (int k = 0; k < L->kernel_size; k++) {
                        int ti = t0 + k;
                        if (ti < 0 || ti >= L->t_in)
                            continue;
                        const int32_t *row = scratch + (ti & (L->ring - 1)) * L->c_in;
                        const uint32_t *w = L->wb + o * TB_WORDS(kc);
                        for (int c = 0; c < L->c_in; c++) {
                            int32_t m = -(int32_t)tb_bit(w, k * L->c_in + c); /* 0 or -1 */
                            a += (row[c] ^ m) - m;                            /* +-x' */
                        }
                    }
                    best = a > best ? a : best;
                }
                bits |= tb_sign_bit(best, tb_threshold_at(&L->th, o), (negw >> b) & 1u) << b;
            }
            y[p * ow + g] = bits;
        }
    }
}

/* First layer, int8 weights: x' once per input step, as xn, then four output channels at a
 * time, so each x' is loaded once for four multiply-accumulates and the weights are read in
 * order. Weights: L->wq4, [ceil(c_out/4)][k][c_in][4] int8, channels past c_out 0.
 * in: int16 [t_in][c_in]; out: [t_out][TB_WORDS(c_out)] packed.
 * scratch: int32 [2 * ring * c_in], as xn. */
TB_SPECIALISE void tb_iconv1d_xq_s16(const tb_iconv1d_t *L, const int16_t *x, uint32_t *y, int32_t *scratch)
{
    int ow = TB_WORDS(L->c_out), kc = L->kernel_size * L->c_in;
    int next = -L->pad; /* the first step not yet in the ring */
    for (int p = 0; p < L->t_out; p++) {
        tb_iconv1d_x_steps(L, x, p, &next, scratch);
        for (int g = 0; g < ow; g++) {
            uint32_t bits = 0, negw = L->th.neg[g];
            int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            for (int b = 0; b < count; b += 4) {
                const int8_t *w4 = L->wq4 + (32 * g + b) * kc; /* 4 * kc per block of 4 */
                int32_t best[4] = {INT32_MIN, INT32_MIN, INT32_MIN, INT32_MIN};
                for (int j = 0; j < L->pool_k; j++) {
                    int t0 = (p * L->pool_s + j) * L->stride - L->pad;
                    int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
                    /* the window's k rows of x' in one run (padding rows are 0) */
                    const int32_t *xw = scratch + (t0 & (L->ring - 1)) * L->c_in;
                    TB_UNROLL_WIDE
                    for (int k = 0; k < L->kernel_size; k++) {
                        TB_UNROLL_WIDE
                        for (int c = 0; c < L->c_in; c++) {
                            int i = k * L->c_in + c;
                            int32_t v = xw[i];
                            a0 += w4[4 * i] * v;
                            a1 += w4[4 * i + 1] * v;
                            a2 += w4[4 * i + 2] * v;
                            a3 += w4[4 * i + 3] * v;
                        }
                    }
                    best[0] = a0 > best[0] ? a0 : best[0];
                    best[1] = a1 > best[1] ? a1 : best[1];
                    best[2] = a2 > best[2] ? a2 : best[2];
                    best[3] = a3 > best[3] ? a3 : best[3];
                }
                for (int i = 0; i < 4 && b + i < count; i++) {
                    int o = 32 * g + b + i;
                    bits |= tb_sign_bit(best[i], tb_threshold_at(&L->th, o), (negw >> (b + i)) & 1u) << (b + i);
                }
            }
            y[p * ow + g] = bits;
        }
    }
}

/* acc + lo16(w) * lo16(v) + hi16(w) * hi16(v), modulo 2^32: one SMLAD where the core has it. */
#if defined(__ARM_FEATURE_SIMD32)
static inline uint32_t tb_dot2(uint32_t w, uint32_t v, uint32_t acc)
{
    return (uint32_t)__smlad((int32_t)w, (int32_t)v, (int32_t)acc);
}
#else
static inline uint32_t tb_dot2(uint32_t w, uint32_t v, uint32_t acc)
{
    int32_t lo = (int32_t)(int16_t)(w & 0xffffu) * (int16_t)(v & 0xffffu);
    int32_t hi = (int32_t)(int16_t)(w >> 16) * (int16_t)(v >> 16);
    return acc + (uint32_t)lo + (uint32_t)hi;
}
#endif

/* Four sums of one sample pair: v = LOAD(q) (the pair at q: TB_WORD_AT for an aligned word,
 * TB_PAIR_AT for two samples at any alignment), q += 4 bytes; then a_o = tb_dot2(w[o], v,
 * a_o) for the words w[0..3] (four output channels' weight pairs), w += 4. The xs kernels'
 * inner step. On little-endian Thumb-2 cores with SMLAD, one asm: the pair by a
 * post-indexed LDR (unaligned where TB_PAIR_AT allows it), the four weights by one LDMIA
 * (r4-r6 and r8 clobbered: LDM's register list is fixed), four SMLADs. Loading the pair
 * inside keeps GCC from hoisting every load of a window above the sums (more live values
 * than registers). It reads the ring or the expanded rows that C stores just before: the
 * kernel passes their base pointer through TB_STORED(rows) after storing them, a compiler
 * barrier that completes the stores and that every address the asm reads from derives from,
 * so no asm can come before them. The loops that store are inlined with their kernel
 * (TB_STORES), so no call lets the barrier's clobber reach the layer's descriptor. (A
 * memory clobber on each asm instead made the streaming push 18 % slower; a memory operand
 * per load needs registers Cortex-M7's build did not have.) Elsewhere TB_STORED is
 * nothing. */
#define TB_WORD_AT(q) (*(const uint32_t *)(const void *)(q))
#define TB_PAIR_AT(q) tb_sample_pair((q), 0)
#if defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__thumb2__) && defined(__ARM_FEATURE_SIMD32) && \
    defined(__ARMEL__) /* unoptimised builds (-O0) have too few free registers for it */
#define TB_DOT2X4(w, q, LOAD, a0, a1, a2, a3)                                                  \
    do {                                                                                       \
        uint32_t tb_v_;                                                                        \
        __asm__("ldr %[x], [%[q]], #4\n\t"                                                     \
                "ldmia %[p]!, {r4, r5, r6, r8}\n\t"                                            \
                "smlad %[s0], r4, %[x], %[s0]\n\t"                                             \
                "smlad %[s1], r5, %[x], %[s1]\n\t"                                             \
                "smlad %[s2], r6, %[x], %[s2]\n\t"                                             \
                "smlad %[s3], r8, %[x], %[s3]"                                                  \
                : [x] "=&r"(tb_v_), [q] "+r"(q), [p] "+r"(w), [s0] "+r"(a0), [s1] "+r"(a1),   \
                  [s2] "+r"(a2), [s3] "+r"(a3)                                                 \
                :                                                                              \
                : "r4", "r5", "r6", "r8");                                                     \
    } while (0)
#define TB_STORED(q) __asm__("" : "+r"(q) : : "memory")
#define TB_STORES TB_SPECIALISE /* a loop that stores what TB_DOT2X4 then reads */
#else
#define TB_STORED(q) ((void)0)
#define TB_STORES static inline /* forced, it cost the M0 streaming push 35 % */
#define TB_DOT2X4(w, q, LOAD, a0, a1, a2, a3)                                                  \
    do {                                                                                       \
        uint32_t tb_v_ = LOAD(q);                                                              \
        (q) += 4;                                                                              \
        (a0) = tb_dot2((w)[0], tb_v_, (a0));                                                   \
        (a1) = tb_dot2((w)[1], tb_v_, (a1));                                                   \
        (a2) = tb_dot2((w)[2], tb_v_, (a2));                                                   \
        (a3) = tb_dot2((w)[3], tb_v_, (a3));                                                   \
        (w) += 4;                                                                              \
    } while (0)
#endif

/* memcpy that the compiler expands inline even under -ffreestanding (which implies
 * -fno-builtin): a 2- or 4-byte copy is one load or store. */
#if defined(__GNUC__)
#define TB_COPY(dst, src, n) __builtin_memcpy(dst, src, n)
#else
#define TB_COPY(dst, src, n) memcpy(dst, src, n)
#endif

/* The clamped samples of the steps from *next to the last one output p reads, in a ring of
 * rows, each step in two slots as tb_iconv1d_x_steps. Steps outside the input hold the
 * offsets, whose products the bias cancels. Rows are int16 [c_in] with L->flat (so a window
 * is k * c_in samples in one run, read in pairs at any alignment), else [cp / 2] words of
 * pairs, cp = c_in rounded up to even (channel c_in of an odd c_in is 0). With the asm step,
 * inlined always into its kernel (TB_STORES): a call would take the descriptor's address out
 * of the kernel, and TB_STORED's memory clobber would then make GCC reload every field of a
 * streaming hop's descriptor (a local copy) from the stack (M4 push: 12 % more instructions,
 * 164 B more stack). Without it, forcing the inlining made the M0 push 35 % slower. */
TB_STORES void tb_iconv1d_s_steps(const tb_iconv1d_t *L, const int16_t *x, int p, int *next, uint32_t *rows)
{
    int half = (L->c_in + 1) / 2;
    for (int last = tb_iconv1d_last_step(L, p); *next <= last; ++*next) {
        int ti = *next, inside = ti >= 0 && ti < L->t_in, slot = ti & (L->ring - 1);
        uint32_t *row = rows + slot * half, *twin = row + L->ring * half;
        unsigned char *bytes = (unsigned char *)rows + 2 * slot * L->c_in;
        for (int h = 0; h < half; h++) {
            uint32_t pair = 0;
            for (int e = 0; e < 2 && 2 * h + e < L->c_in; e++) {
                int c = 2 * h + e;
                int16_t v = L->offset[c];
                if (inside) {
                    int16_t xv = x[ti * L->c_in + c];
                    v = xv < L->lo ? L->lo : (xv > L->hi ? L->hi : xv);
                }
                if (L->flat) { /* bytes, not an int16 lvalue: the arena is uint32_t */
                    TB_COPY(bytes + 2 * c, &v, 2);
                    TB_COPY(bytes + 2 * c + 2 * L->ring * L->c_in, &v, 2);
                } else {
                    pair |= ((uint32_t)(uint16_t)v) << (16 * e);
                }
            }
            if (!L->flat)
                row[h] = twin[h] = pair;
        }
    }
}

/* Samples i and i + 1 of a window that starts at byte b, as one word (i even): the first in
 * the low half, as tb_dot2 takes them. */
static inline uint32_t tb_sample_pair(const unsigned char *b, int i)
{
    uint32_t v;
    TB_COPY(&v, b + 2 * i, 4); /* one unaligned load where the core has them */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    v = (v << 16) | (v >> 16);
#endif
    return v;
}

/* First layer, int8 weights, with the input multipliers folded into int16 weights
 * w' = w * mult_c (|w'| <= 32767, the compiler checks), so acc = sum of w' * clamp(x) - bias,
 * bias = sum of w' * offset_c over the window (padding steps hold the offsets). The
 * threshold is folded in too, with the direction: a = s * (acc - th), s = -1 where the output
 * is -1 above th, else 1, so the output bit is the sign of a; the compiler stores s * w' and
 * -s * (bias + th) and checks |acc - th| < 2^31. Pooling before the sign is the AND (s = 1)
 * or OR (s = -1) of the window's bits. Samples go in pairs, two products per tb_dot2 (one
 * SMLAD on cores with the DSP extension), four output channels at a time so each sample pair
 * is loaded once for four. With L->flat the pairs run over the window's k * c_in samples
 * (cores that load words at any alignment), else over each row's channels, an odd c_in
 * padded by a zero. The sums are taken modulo 2^32: a fits int32, so it is exact in any
 * order.
 * L->wp: [ceil(c_out/4)][pairs][4] words, pairs = ceil(k * c_in / 2) with L->flat, else
 * k * cp / 2 (cp = c_in rounded up to even): (s*w', s*w') of the pair's two samples in the
 * low and high halves, zero where no sample; L->bias: [ceil(c_out/4) * 4], where the sums
 * start, -s * (bias + th); channels past c_out are 0.
 * in: int16 [t_in][c_in]; out: [t_out][TB_WORDS(c_out)] packed.
 * scratch: 4 * ring * cp bytes (tb_iconv1d_s_steps). */
TB_SPECIALISE void tb_iconv1d_xs_s16(const tb_iconv1d_t *L, const int16_t *x, uint32_t *y, int32_t *scratch)
{
    int ow = TB_WORDS(L->c_out), half = (L->c_in + 1) / 2;
    int pairs = L->flat ? (L->kernel_size * L->c_in + 1) / 2 : L->kernel_size * half;
    uint32_t *rows = (uint32_t *)scratch;
    int next = -L->pad; /* the first step not yet in the ring */
    if (L->flat) /* a window of odd length reads one sample past it, times a zero weight */
        memset(rows, 0, (size_t)(4 * L->ring * L->c_in));
    for (int p = 0; p < L->t_out; p++) {
        tb_iconv1d_s_steps(L, x, p, &next, rows);
        TB_STORED(rows); /* the steps just stored, before the sums read them */
        for (int g = 0; g < ow; g++) {
            uint32_t neg = L->th.neg[g], pooled = ~neg; /* AND where neg is 0, OR where 1 */
            int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            for (int j = 0; j < L->pool_k; j++) {
                int slot = ((p * L->pool_s + j) * L->stride - L->pad) & (L->ring - 1);
                const uint32_t *xw = rows + slot * half; /* the k rows in one run */
                const unsigned char *xb = (const unsigned char *)rows + 2 * slot * L->c_in;
                uint32_t bits = 0;
                for (int b = 0; b < count; b += 4) {
                    const uint32_t *w4 = L->wp + (32 * g + b) * pairs; /* 4 * pairs per block */
                    const uint32_t *bias = L->bias + 32 * g + b;
                    uint32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
                    if (L->flat) {
                        const unsigned char *q = xb;
                        TB_UNROLL_WIDE
                        for (int i = 0; i < pairs; i++)
                            TB_DOT2X4(w4, q, TB_PAIR_AT, a0, a1, a2, a3);
                    } else { /* row by row: the loop nest compiles better on ARMv6-M */
                        const unsigned char *q = (const unsigned char *)xw;
                        TB_UNROLL_WIDE
                        for (int k = 0; k < L->kernel_size; k++) {
                            TB_UNROLL_WIDE
                            for (int h = 0; h < half; h++)
                                TB_DOT2X4(w4, q, TB_WORD_AT, a0, a1, a2, a3);
                        }
                    }
                    /* sign bits; blocks past c_out have zero weights and bias: bit 0 */
                    bits |= (a0 >> 31) << b | (a1 >> 31) << (b + 1) | (a2 >> 31) << (b + 2) |
                            (a3 >> 31) << (b + 3);
                }
                pooled = (pooled & (bits | neg)) | (bits & neg);
            }
            y[p * ow + g] = pooled;
        }
    }
}

/* int8 convolution of binary activations with int16 pairs (one SMLAD per two products on
 * cores with the DSP extension), as tb_iconv1d_xs_s16: the input is expanded once into rows
 * of +-1 int16 pairs (the pad rows hold the pad value, the channel past an odd c_in is 0),
 * so a window is k * cp / 2 words in one run (cp = c_in rounded up to even), and four output
 * channels at a time share each pair. The threshold is folded in with its direction:
 * a = s * (acc - th), s = -1 where the output is -1 above th, so the output bit is the sign
 * of a (|acc - th| < 2^31, the compiler checks); pooling before the sign is the AND (s = 1)
 * or OR (s = -1) of the window's bits.
 * L->wp: [ceil(c_out/4)][k * cp/2][4] words (s*w, s*w) of the pair's two channels, zero past
 * c_in and past c_out; L->bias: [ceil(c_out/4) * 4], -s * th, 0 past c_out.
 * in: [t_in][TB_WORDS(c_in)] packed; out: [t_out][TB_WORDS(c_out)] packed.
 * scratch: 4 * (t_in + 2 * pad) * cp / 2 bytes. */
TB_SPECIALISE void tb_i8conv1d_xs_b32(const tb_i8conv1d_t *L, const uint32_t *x, uint32_t *y, int32_t *scratch)
{
    int ow = TB_WORDS(L->c_out), cw = TB_WORDS(L->c_in), half = (L->c_in + 1) / 2;
    int pairs = L->kernel_size * half;
    uint32_t *rows = (uint32_t *)scratch;
    for (int r = 0; r < L->t_in + 2 * L->pad; r++) {
        int ti = r - L->pad;
        const uint32_t *bits = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
        for (int h = 0; h < half; h++) {
            uint32_t pair = 0;
            for (int e = 0; e < 2 && 2 * h + e < L->c_in; e++)
                pair |= (tb_bit(bits, 2 * h + e) ? 0xffffu : 1u) << (16 * e); /* -1 or +1 */
            rows[r * half + h] = pair;
        }
    }
    TB_STORED(rows); /* the rows just stored, before the sums read them */
    for (int p = 0; p < L->t_out; p++) {
        for (int g = 0; g < ow; g++) {
            uint32_t neg = L->th.neg[g], pooled = ~neg; /* AND where neg is 0, OR where 1 */
            int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            for (int j = 0; j < L->pool_k; j++) {
                const uint32_t *xw = rows + (p * L->pool_s + j) * L->stride * half;
                uint32_t bits = 0;
                for (int b = 0; b < count; b += 4) {
                    const uint32_t *w4 = L->wp + (32 * g + b) * pairs; /* 4 * pairs per block */
                    const uint32_t *bias = L->bias + 32 * g + b;
                    uint32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
                    const unsigned char *q = (const unsigned char *)xw;
                    TB_UNROLL_WIDE
                    for (int i = 0; i < pairs; i++)
                        TB_DOT2X4(w4, q, TB_WORD_AT, a0, a1, a2, a3);
                    /* sign bits; blocks past c_out have zero weights and bias: bit 0 */
                    bits |= (a0 >> 31) << b | (a1 >> 31) << (b + 1) | (a2 >> 31) << (b + 2) |
                            (a3 >> 31) << (b + 3);
                }
                pooled = (pooled & (bits | neg)) | (bits & neg);
            }
            y[p * ow + g] = pooled;
        }
    }
}

/* Four sums a_j = bias[j] + w[j] * v over the n samples of one window, modulo 2^32 (xw: [n]
 * words of x', w4: [n][4] words), and their sign bits after `bits` shifted up by 4: returns
 * bits << 4 | sign(a_3) << 3 | sign(a_2) << 2 | sign(a_1) << 1 | sign(a_0). On ARMv6-M (no
 * multiply-accumulate) the sums live in r8-r11: one LDM loads the four biases and, per
 * sample, the four weights into r0-r3, so each product costs a MULS and an ADD and the
 * weights a quarter of a load, and each sign bit a MOV, an LSLS and an ADCS; pinned, as
 * GCC left to choose moves them between high registers from one step's asm statement to
 * the next. Elsewhere (and at -Os, where GCC has no high registers for inline asm) plain C,
 * the same sums. */
TB_SPECIALISE uint32_t tb_mac4_signs(const uint32_t *xw, const uint32_t *w4, int n, const uint32_t *bias,
                                     uint32_t bits)
{
#if defined(__ARM_ARCH_6M__) && defined(__GNUC__) && !defined(__clang__) && \
    !defined(__OPTIMIZE_SIZE__) /* at -Os GCC gives inline asm no high registers */
    register uint32_t a0 __asm__("r8");
    register uint32_t a1 __asm__("r9");
    register uint32_t a2 __asm__("r10");
    register uint32_t a3 __asm__("r11");
    __asm__(".syntax unified\n\t"
            "ldmia %[b]!, {r0, r1, r2, r3}\n\t"
            "mov %[a0], r0\n\t"
            "mov %[a1], r1\n\t"
            "mov %[a2], r2\n\t"
            "mov %[a3], r3"
            : [b] "+l"(bias), [a0] "=h"(a0), [a1] "=h"(a1), [a2] "=h"(a2), [a3] "=h"(a3)
            :
            : "r0", "r1", "r2", "r3", "memory");
    TB_UNROLL_ALL
    for (int i = 0; i < n; i++) {
        uint32_t v;
        __asm__(".syntax unified\n\t"
                "ldmia %[x]!, {%[v]}\n\t"
                "ldmia %[w]!, {r0, r1, r2, r3}\n\t"
                "muls r0, %[v], r0\n\t"
                "add %[a0], r0\n\t"
                "muls r1, %[v], r1\n\t"
                "add %[a1], r1\n\t"
                "muls r2, %[v], r2\n\t"
                "add %[a2], r2\n\t"
                "muls r3, %[v], r3\n\t"
                "add %[a3], r3"
                : [x] "+l"(xw), [w] "+l"(w4), [v] "=&l"(v), [a0] "+h"(a0), [a1] "+h"(a1),
                  [a2] "+h"(a2), [a3] "+h"(a3)
                :
                : "r0", "r1", "r2", "r3", "cc", "memory");
    }
    uint32_t t;
    __asm__(".syntax unified\n\t"
            "mov %[t], %[a3]\n\t"
            "lsls %[t], %[t], #1\n\t"
            "adcs %[bits], %[bits]\n\t"
            "mov %[t], %[a2]\n\t"
            "lsls %[t], %[t], #1\n\t"
            "adcs %[bits], %[bits]\n\t"
            "mov %[t], %[a1]\n\t"
            "lsls %[t], %[t], #1\n\t"
            "adcs %[bits], %[bits]\n\t"
            "mov %[t], %[a0]\n\t"
            "lsls %[t], %[t], #1\n\t"
            "adcs %[bits], %[bits]"
            : [bits] "+l"(bits), [t] "=&l"(t)
            : [a0] "h"(a0), [a1] "h"(a1), [a2] "h"(a2), [a3] "h"(a3)
            : "cc");
    return bits;
#else
    uint32_t a0 = bias[0], a1 = bias[1], a2 = bias[2], a3 = bias[3];
    TB_UNROLL_WIDE
    for (int i = 0; i < n; i++) {
        uint32_t v = xw[i];
        a0 += w4[4 * i] * v;
        a1 += w4[4 * i + 1] * v;
        a2 += w4[4 * i + 2] * v;
        a3 += w4[4 * i + 3] * v;
    }
    return bits << 4 | (a3 >> 31) << 3 | (a2 >> 31) << 2 | (a1 >> 31) << 1 | a0 >> 31;
#endif
}

/* int8 convolution of binary activations for cores without SMLAD (ARMv6-M, M3): each
 * window's k * c_in inputs expanded once into words of +-1 (the pad value outside the
 * input), then four output channels at a time through tb_mac4_signs (on ARMv6-M one LDM of
 * four weights, a MULS and an ADD per MAC). The threshold is folded in with its direction
 * as in xs: a = s * (acc - th), the output bit is its sign bit (|acc - th| < 2^31, the
 * compiler checks); pooling before the sign is the AND (s = 1) or OR (s = -1) of the bits.
 * L->wm: [ceil(c_out/4)][k * c_in][4] words s * w, zero past c_out; L->bias: -s * th.
 * in: [t_in][TB_WORDS(c_in)] packed; out: [t_out][TB_WORDS(c_out)] packed.
 * scratch: 4 * k * c_in bytes (one window of +-1 words). */
TB_SPECIALISE void tb_i8conv1d_xm_b32(const tb_i8conv1d_t *L, const uint32_t *x, uint32_t *y, int32_t *scratch)
{
    int ow = TB_WORDS(L->c_out), cw = TB_WORDS(L->c_in), n = L->kernel_size * L->c_in;
    uint32_t *win = (uint32_t *)scratch;
    for (int p = 0; p < L->t_out; p++) {
        for (int g = 0; g < ow; g++)
            y[p * ow + g] = ~L->th.neg[g]; /* AND where neg is 0, OR where 1 */
        for (int j = 0; j < L->pool_k; j++) {
            int t0 = (p * L->pool_s + j) * L->stride - L->pad;
            for (int k = 0; k < L->kernel_size; k++) {
                int ti = t0 + k;
                const uint32_t *bits = (ti < 0 || ti >= L->t_in) ? L->pad_word : x + ti * cw;
                for (int c = 0; c < L->c_in; c++)
                    win[k * L->c_in + c] = 1u - 2u * tb_bit(bits, c); /* +1, or -1 mod 2^32 */
            }
            for (int g = 0; g < ow; g++) {
                uint32_t neg = L->th.neg[g], bits = 0;
                int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
                /* the blocks from the last, as tb_iconv1d_xm_s16 */
                for (int b = (count - 1) & ~3; b >= 0; b -= 4)
                    bits = tb_mac4_signs(win, L->wm + (32 * g + b) * n, n, L->bias + 32 * g + b, bits);
                y[p * ow + g] = (y[p * ow + g] & (bits | neg)) | (bits & neg);
            }
        }
    }
}

/* First layer, int8 weights, for cores without SMLAD (ARMv6-M, M3): x' once per input step
 * (tb_iconv1d_x_steps, padding steps 0), four output channels at a time (tb_mac4_signs), with
 * the threshold and its direction folded in as xs does: a = s * (acc - th), s = -1 where
 * the output is -1 above th, else 1, so the output bit is the sign bit of a; the compiler
 * stores s * w as words and -s * th where each sum starts, and checks |acc - th| < 2^31, so
 * the sums taken modulo 2^32 are exact. Pooling before the sign is the AND (s = 1) or OR
 * (s = -1) of the window's bits.
 * L->wm: [ceil(c_out/4)][k * c_in][4] words s * w (channels past c_out 0); L->bias:
 * [ceil(c_out/4) * 4], -s * th (0 past c_out).
 * in: int16 [t_in][c_in]; out: [t_out][TB_WORDS(c_out)] packed.
 * scratch: int32 [2 * ring * c_in], as xn. */
TB_SPECIALISE void tb_iconv1d_xm_s16(const tb_iconv1d_t *L, const int16_t *x, uint32_t *y, int32_t *scratch)
{
    int ow = TB_WORDS(L->c_out), kc = L->kernel_size * L->c_in;
    int next = -L->pad; /* the first step not yet in the ring */
    for (int p = 0; p < L->t_out; p++) {
        tb_iconv1d_x_steps(L, x, p, &next, scratch);
        for (int g = 0; g < ow; g++) {
            uint32_t neg = L->th.neg[g], pooled = ~neg; /* AND where neg is 0, OR where 1 */
            int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            for (int j = 0; j < L->pool_k; j++) {
                int t0 = (p * L->pool_s + j) * L->stride - L->pad;
                /* the window's k rows of x' in one run */
                const uint32_t *xw = (const uint32_t *)scratch + (t0 & (L->ring - 1)) * L->c_in;
                uint32_t bits = 0;
                /* the blocks from the last: each shifts the bits so far up by 4 and adds
                 * its sign bits below (blocks past c_out have zero weights and bias: 0) */
                for (int b = (count - 1) & ~3; b >= 0; b -= 4)
                    bits = tb_mac4_signs(xw, L->wm + (32 * g + b) * kc, kc, L->bias + 32 * g + b, bits);
                pooled = (pooled & (bits | neg)) | (bits & neg);
            }
            y[p * ow + g] = pooled;
        }
    }
}

/* ======================================================================================
 * int8 activations between layers: an int8 convolution that reads int8 codes or +-1 bits
 * and writes int8 codes (requantised) or bits (thresholded). The reference loops and the
 * xs variant (int16 pairs, SMLAD on cores with the DSP extension).
 * ====================================================================================== */

/* int8 convolution with int8 activations in or out: reads +-1 bits (a declared pad value)
 * or int8 codes (padding steps hold 0), int8 weights; writes int8 codes (requantised, then
 * max-pooled: the max of the codes) or bits ([max-pool of the accumulator], sign).
 * |acc| <= 127 * k * c_in for bits in, 128 * 127 * k * c_in for codes in (within int32: the
 * compiler checks). */
typedef struct {
    int c_in, t_in, c_out, t_out;  /* t_out after pooling */
    int kernel_size, stride, pad;
    int pool_k, pool_s;
    const uint32_t *pad_word;      /* bits in: [TB_WORDS(c_in)], the pad value's bits; else NULL */
    const int8_t *w;               /* [c_out][kernel_size][c_in] int8 codes in [-127, 127] */
    tb_threshold_t th;             /* bits out */
    tb_requant_t rq;               /* codes out */
    /* The xs variant only (NULL otherwise): */
    const uint32_t *wp;            /* [ceil(c_out/4)][k * cp/2][4] int16 pairs of s * w, see xs */
    const uint32_t *bias;          /* [ceil(c_out/4) * 4]: where each sum starts, see xs */
} tb_i8aconv1d_t;

/* sum of w * x of output channel o at conv position t, over int8 codes [t_in][c_in]. */
static inline int32_t tb_i8aconv1d_acc_s8(const void *layer, const void *x, int o, int t)
{
    const tb_i8aconv1d_t *L = (const tb_i8aconv1d_t *)layer;
    int32_t acc = 0;
    for (int k = 0; k < L->kernel_size; k++) {
        int ti = t * L->stride + k - L->pad;
        if (ti < 0 || ti >= L->t_in)
            continue; /* padding: code 0 */
        const int8_t *row = (const int8_t *)x + ti * L->c_in;
        const int8_t *w = L->w + (o * L->kernel_size + k) * L->c_in;
        for (int c = 0; c < L->c_in; c++)
            acc += (int32_t)w[c] * row[c];
    }
    return acc;
}

/* The same over packed +-1 bits [t_in][TB_WORDS(c_in)], padding steps the pad word. */
static inline int32_t tb_i8aconv1d_acc_b32(const void *layer, const void *x, int o, int t)
{
    const tb_i8aconv1d_t *L = (const tb_i8aconv1d_t *)layer;
    int cw = TB_WORDS(L->c_in);
    int32_t acc = 0;
    for (int k = 0; k < L->kernel_size; k++) {
        int ti = t * L->stride + k - L->pad;
        const uint32_t *row = (ti < 0 || ti >= L->t_in) ? L->pad_word : (const uint32_t *)x + ti * cw;
        const int8_t *w = L->w + (o * L->kernel_size + k) * L->c_in;
        for (int c = 0; c < L->c_in; c++)
            acc += tb_bit(row, c) ? -(int32_t)w[c] : (int32_t)w[c];
    }
    return acc;
}

/* in: int8 [t_in][c_in]; out: int8 [t_out][c_out]. */
static inline void tb_i8aconv1d_q8_s8(const tb_i8aconv1d_t *L, const int8_t *x, int8_t *y)
{
    tb_conv1d_walk_q8(L, x, tb_i8aconv1d_acc_s8, L->c_out, L->t_out, L->pool_k, L->pool_s, &L->rq, y);
}

/* in: [t_in][TB_WORDS(c_in)] packed; out: int8 [t_out][c_out]. */
static inline void tb_i8aconv1d_q8_b32(const tb_i8aconv1d_t *L, const uint32_t *x, int8_t *y)
{
    tb_conv1d_walk_q8(L, x, tb_i8aconv1d_acc_b32, L->c_out, L->t_out, L->pool_k, L->pool_s, &L->rq, y);
}

/* in: int8 [t_in][c_in]; out: [t_out][TB_WORDS(c_out)] packed. */
static inline void tb_i8aconv1d_s8(const tb_i8aconv1d_t *L, const int8_t *x, uint32_t *y)
{
    tb_conv1d_walk(L, x, tb_i8aconv1d_acc_s8, L->c_out, L->t_out, L->pool_k, L->pool_s, &L->th, y);
}

/* xs, as tb_i8conv1d_xs_b32: the input is expanded once into rows of int16 pairs (codes, or
 * +-1 for bits; pad rows hold 0 or the pad value; the channel past an odd c_in is 0), so a
 * window is k * cp / 2 words in one run (cp = c_in rounded up to even), and four output
 * channels at a time share each pair, two products per tb_dot2 (one SMLAD on cores with the
 * DSP extension). Bits out: the threshold is folded in with its direction, a = s * (acc -
 * th), the output bit its sign (|acc - th| < 2^31, the compiler checks), pooling the AND
 * (s = 1) or OR (s = -1) of the window's bits. Codes out: s = 1 and the sums start at 0, so
 * a = acc (exact modulo 2^32, |acc| < 2^31), requantised by tb_requant, pooled by max.
 * L->wp: [ceil(c_out/4)][k * cp/2][4] words (s*w, s*w) of the pair's two channels, zero past
 * c_in and past c_out; L->bias: [ceil(c_out/4) * 4], -s * th (bits out) or 0; the arrays
 * of L->rq (codes out) hold ceil(c_out/4) * 4 channels, the padding zeros.
 * x: int8 [t_in][c_in] (bits_in 0) or [t_in][TB_WORDS(c_in)] packed (bits_in 1); y: int8
 * [t_out][c_out] (bits_out 0) or [t_out][TB_WORDS(c_out)] packed (bits_out 1).
 * scratch: 4 * (t_in + 2 * pad) * cp / 2 bytes. */
TB_SPECIALISE void tb_i8aconv1d_xs(const tb_i8aconv1d_t *L, const void *x, int bits_in, void *y,
                                   int bits_out, int32_t *scratch)
{
    int cw = TB_WORDS(L->c_in), half = (L->c_in + 1) / 2;
    int pairs = L->kernel_size * half;
    uint32_t *rows = (uint32_t *)scratch;
    for (int r = 0; r < L->t_in + 2 * L->pad; r++) {
        int ti = r - L->pad, inside = ti >= 0 && ti < L->t_in;
        const uint32_t *bits = L->pad_word;
        const int8_t *codes = NULL; /* codes in: NULL on a pad row (0) */
        if (inside && bits_in)
            bits = (const uint32_t *)x + ti * cw;
        else if (inside)
            codes = (const int8_t *)x + ti * L->c_in;
        for (int h = 0; h < half; h++) {
            uint32_t pair = 0;
            for (int e = 0; e < 2 && 2 * h + e < L->c_in; e++) {
                int c = 2 * h + e;
                uint32_t v = bits_in ? (tb_bit(bits, c) ? 0xffffu : 1u) /* -1 or +1 */
                                     : (codes ? (uint32_t)(uint16_t)(int16_t)codes[c] : 0u);
                pair |= v << (16 * e);
            }
            rows[r * half + h] = pair;
        }
    }
    TB_STORED(rows); /* the rows just stored, before the sums read them */
    for (int p = 0; p < L->t_out; p++) {
        for (int b = 0; b < L->c_out; b += 4) {
            const uint32_t *w4 = L->wp + b * pairs; /* 4 * pairs per block */
            int32_t q0 = L->rq.lo, q1 = q0, q2 = q0, q3 = q0; /* codes out: the pool's max */
            uint32_t pooled = 0; /* bits out: the block's 4 bits, the pool's AND or OR by neg */
            for (int j = 0; j < L->pool_k; j++) {
                const uint32_t *xw = rows + (p * L->pool_s + j) * L->stride * half;
                uint32_t a0 = L->bias[b], a1 = L->bias[b + 1], a2 = L->bias[b + 2], a3 = L->bias[b + 3];
                const uint32_t *w = w4; /* the block's weights again for each pool step */
                const unsigned char *q = (const unsigned char *)xw;
                TB_UNROLL_WIDE
                for (int i = 0; i < pairs; i++)
                    TB_DOT2X4(w, q, TB_WORD_AT, a0, a1, a2, a3);
                if (bits_out) {
                    uint32_t neg = (L->th.neg[b >> 5] >> (b & 31)) & 15u;
                    uint32_t bits = (a0 >> 31) | (a1 >> 31) << 1 | (a2 >> 31) << 2 | (a3 >> 31) << 3;
                    pooled = j == 0 ? bits : (pooled & (bits | neg)) | (bits & neg);
                } else { /* the requantisation arrays are padded to whole blocks of 4 */
                    int32_t r0 = tb_requant(&L->rq, b, tb_s32(a0));
                    int32_t r1 = tb_requant(&L->rq, b + 1, tb_s32(a1));
                    int32_t r2 = tb_requant(&L->rq, b + 2, tb_s32(a2));
                    int32_t r3 = tb_requant(&L->rq, b + 3, tb_s32(a3));
                    q0 = r0 > q0 ? r0 : q0, q1 = r1 > q1 ? r1 : q1;
                    q2 = r2 > q2 ? r2 : q2, q3 = r3 > q3 ? r3 : q3;
                }
            }
            if (bits_out) { /* blocks of 4 never straddle a word; bits past c_out are 0 */
                uint32_t *row = (uint32_t *)y + p * TB_WORDS(L->c_out);
                uint32_t keep = (b & 31) ? row[b >> 5] : 0u;
                uint32_t valid = L->c_out - b >= 4 ? 15u : (1u << (L->c_out - b)) - 1u;
                row[b >> 5] = keep | (pooled & valid) << (b & 31);
            } else {
                int8_t *out = (int8_t *)y + p * L->c_out + b;
                int32_t q[4] = {q0, q1, q2, q3};
                for (int e = 0; e < 4 && b + e < L->c_out; e++)
                    out[e] = (int8_t)q[e];
            }
        }
    }
}

/* The typed entries of xs: codes in, codes out; bits in, codes out; codes in, bits out. */
TB_SPECIALISE void tb_i8aconv1d_xs_q8_s8(const tb_i8aconv1d_t *L, const int8_t *x, int8_t *y, int32_t *scratch)
{
    tb_i8aconv1d_xs(L, x, 0, y, 0, scratch);
}

TB_SPECIALISE void tb_i8aconv1d_xs_q8_b32(const tb_i8aconv1d_t *L, const uint32_t *x, int8_t *y, int32_t *scratch)
{
    tb_i8aconv1d_xs(L, x, 1, y, 0, scratch);
}

TB_SPECIALISE void tb_i8aconv1d_xs_s8(const tb_i8aconv1d_t *L, const int8_t *x, uint32_t *y, int32_t *scratch)
{
    tb_i8aconv1d_xs(L, x, 0, y, 1, scratch);
}

/* ======================================================================================
 * A hidden dense layer with int8 weights over binary activations or counts, and its sign.
 * ====================================================================================== */
typedef struct {
    int in_features, in_c, in_t, c_out; /* bits in: read as [in_t][TB_WORDS(in_c)] */
    const int8_t *w;                    /* [c_out][in_features]: [c_out][in_t][in_c] on bits */
    tb_threshold_t th;
} tb_i8dense_t;

/* in: [in_t][TB_WORDS(in_c)] packed, |acc| <= 127 * in_features; out: [TB_WORDS(c_out)]. */
static inline void tb_i8dense_b32(const tb_i8dense_t *L, const uint32_t *x, uint32_t *y)
{
    int cw = TB_WORDS(L->in_c);
    memset(y, 0, (size_t)TB_WORDS(L->c_out) * sizeof(uint32_t));
    for (int o = 0; o < L->c_out; o++) {
        const int8_t *w = L->w + o * L->in_features;
        int32_t acc = 0;
        for (int t = 0; t < L->in_t; t++)
            for (int c = 0; c < L->in_c; c++) {
                int32_t q = w[t * L->in_c + c];
                acc += tb_bit(x + t * cw, c) ? -q : q;
            }
        y[o >> 5] |= tb_threshold_bit(&L->th, o, acc) << (o & 31);
    }
}

/* in: int32 counts [in_features], each in [-T, T], |acc| <= 127 * in_features * T within
 * int32 (the compiler checks); out: [TB_WORDS(c_out)] packed. */
static inline void tb_i8dense_s32(const tb_i8dense_t *L, const int32_t *x, uint32_t *y)
{
    memset(y, 0, (size_t)TB_WORDS(L->c_out) * sizeof(uint32_t));
    for (int o = 0; o < L->c_out; o++) {
        const int8_t *w = L->w + o * L->in_features;
        int32_t acc = 0;
        for (int i = 0; i < L->in_features; i++)
            acc += (int32_t)w[i] * x[i];
        y[o >> 5] |= tb_threshold_bit(&L->th, o, acc) << (o & 31);
    }
}

/*
 * First layer, binary or ternary weights: subset-sum tables read at precomputed offsets (sso).
 */

/* The subset-sum tables of the steps from *next to the last one output p reads, in a ring
 * kept twice: scratch [2 * ring][2^c_in] words, step ti in slot ti % ring and again ring
 * slots later, so the tables of any window of up to ring steps lie in one run. tab[m] =
 * sum over c of (bit c of m ? -x'_c : x'_c), as tb_iconv1d_sst_fill, computed modulo 2^32
 * (one subtraction of 2 * x'_c per entry) and exact, since |tab[m]| <= sum_c max|x'_c|
 * <= the proved accumulator bound; steps outside the input (padding, x' = 0) hold tables
 * of zeros. Outputs go forward, so each step is filled once. */
static inline void tb_iconv1d_sso_steps(const tb_iconv1d_t *L, const int16_t *x, int p, int *next, uint32_t *scratch)
{
    int width = 1 << L->c_in, twin = L->ring * width;
    for (int last = tb_iconv1d_last_step(L, p); *next <= last; ++*next) {
        int ti = *next;
        uint32_t *tab = scratch + (ti & (L->ring - 1)) * width;
        if (ti < 0 || ti >= L->t_in) {
            for (int m = 0; m < width; m++)
                tab[m] = tab[twin + m] = 0;
            continue;
        }
        uint32_t d2[TB_SST_MAX_IN], sum = 0; /* c_in <= TB_SST_MAX_IN */
        TB_UNROLL
        for (int c = 0; c < L->c_in; c++) {
            uint32_t v = (uint32_t)tb_input_value(L, x[ti * L->c_in + c], c);
            sum += v;
            d2[c] = 2u * v;
        }
        tab[0] = tab[twin] = sum;
        TB_UNROLL
        for (int c = 0; c < L->c_in; c++) {
            int h = 1 << c; /* entries with bit c set: x'_c counted -1 instead of +1 */
            TB_UNROLL
            for (int m = 0; m < h; m++)
                tab[h + m] = tab[twin + h + m] = tab[m] - d2[c];
        }
    }
}

/* Table word at byte offset off from base. */
static inline uint32_t tb_sso_word(const unsigned char *base, uint32_t off)
{
    return *(const uint32_t *)(const void *)(base + off);
}

/* The AND of the sign bits of two windows' sums (b0, b1: their first tables) for `count`
 * output channels, as bits: the record of the last channel comes first and its bit ends at
 * the top. A record is `1 + (n + 1) / 2` words: the bias, where both sums start, then the
 * n byte offsets of the table entries as halfwords (the last one alone in its word where n
 * is odd). Sums are taken modulo 2^32. On ARMv6-M the loop over a group is assembly: one
 * LDRH and two LDR per offset, 2.5 instructions per lookup plus 1.5 per pair of offsets,
 * and 9 per channel (GCC spills the C to the stack); elsewhere (and at -O0, -Os, or with
 * fewer than 2 offsets) plain C. */
static inline uint32_t tb_sso_bits(const unsigned char *b0, const unsigned char *b1, const uint32_t *rec,
                                   int count, int n)
{
#if defined(__ARM_ARCH_6M__) && defined(__GNUC__) && !defined(__clang__) && \
    defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__) /* -O1..-O3: 7 low registers */ && \
    !defined(__ARM_BIG_ENDIAN) /* LDRH reads the offsets in the words' order */
    if (n >= 2) {
        /* bits starts with a sentinel that the count-th shift carries out: the loop's end */
        uint32_t a0, a1, t, u, bits = 1u << (32 - count);
        const unsigned char *e;
        uint32_t pairs = 4u * (uint32_t)(n / 2); /* bytes of the offsets that come in pairs */
#define TB_SSO_PAIRS                                                                               \
    ".syntax unified\n\t"                                                                          \
    "0:\n\t"                                                                                       \
    "ldmia %[o]!, {%[a0]}\n\t" /* the bias */                                                      \
    "mov %[a1], %[a0]\n\t"                                                                         \
    "mov %[e], %[o]\n\t"                                                                           \
    "add %[e], %[n4]\n"                                                                            \
    "1:\n\t"                                                                                       \
    "ldrh %[t], [%[o]]\n\t"                                                                        \
    "ldr %[u], [%[b0], %[t]]\n\t"                                                                  \
    "ldr %[t], [%[b1], %[t]]\n\t"                                                                  \
    "adds %[a0], %[a0], %[u]\n\t"                                                                  \
    "add %[a1], %[t]\n\t"                                                                          \
    "ldrh %[t], [%[o], #2]\n\t"                                                                    \
    "ldr %[u], [%[b0], %[t]]\n\t"                                                                  \
    "ldr %[t], [%[b1], %[t]]\n\t"                                                                  \
    "adds %[a0], %[a0], %[u]\n\t"                                                                  \
    "add %[a1], %[t]\n\t"                                                                          \
    "adds %[o], #4\n\t"                                                                            \
    "cmp %[o], %[e]\n\t"                                                                           \
    "bne 1b\n\t"
#define TB_SSO_SIGN /* the AND's sign bit into the carry, and bits = 2 * bits + carry */           \
    "mov %[t], %[a1]\n\t"                                                                          \
    "ands %[t], %[a0]\n\t"                                                                         \
    "lsls %[t], %[t], #1\n\t"                                                                      \
    "adcs %[bits], %[bits]\n\t"                                                                    \
    "bcc 0b"
#define TB_SSO_OPERANDS                                                                            \
    : [o] "+l"(rec), [a0] "=&l"(a0), [a1] "=&h"(a1), [t] "=&l"(t), [u] "=&l"(u), [e] "=&h"(e),    \
      [bits] "+l"(bits)                                                                            \
    : [b0] "l"(b0), [b1] "l"(b1), [n4] "h"(pairs)                                                  \
    : "cc", "memory"
        if (n & 1)
            __asm__(TB_SSO_PAIRS
                    "ldrh %[t], [%[o]]\n\t"
                    "ldr %[u], [%[b0], %[t]]\n\t"
                    "ldr %[t], [%[b1], %[t]]\n\t"
                    "adds %[a0], %[a0], %[u]\n\t"
                    "add %[a1], %[t]\n\t"
                    "adds %[o], #4\n\t" TB_SSO_SIGN TB_SSO_OPERANDS);
        else
            __asm__(TB_SSO_PAIRS TB_SSO_SIGN TB_SSO_OPERANDS);
#undef TB_SSO_PAIRS
#undef TB_SSO_SIGN
#undef TB_SSO_OPERANDS
        return bits;
    }
#endif
    uint32_t bits = 0;
    for (int r = 0; r < count; r++, rec += 1 + (n + 1) / 2) {
        uint32_t a0 = rec[0], a1 = a0;
        TB_UNROLL
        for (int i = 0; i < n; i++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            uint16_t off; /* one halfword load */
            TB_COPY(&off, (const unsigned char *)(rec + 1) + 2 * i, sizeof off);
#else
            uint32_t off = rec[1 + i / 2] >> (16 * (i & 1)) & 0xFFFFu;
#endif
            a0 += tb_sso_word(b0, off);
            a1 += tb_sso_word(b1, off);
        }
        bits = bits << 1 | (a0 & a1) >> 31;
    }
    return bits;
}

/* tb_sso_bits for one window (b0): the sign bits of its sums, 1.5 instructions per lookup
 * plus 1.5 per pair of offsets and 6 per channel on ARMv6-M. */
static inline uint32_t tb_sso_bits1(const unsigned char *b0, const uint32_t *rec, int count, int n)
{
#if defined(__ARM_ARCH_6M__) && defined(__GNUC__) && !defined(__clang__) && \
    defined(__OPTIMIZE__) && !defined(__OPTIMIZE_SIZE__) && !defined(__ARM_BIG_ENDIAN)
    if (n >= 2) {
        uint32_t a0, t, u, bits = 1u << (32 - count); /* the sentinel, as tb_sso_bits */
        const unsigned char *e;
        uint32_t pairs = 4u * (uint32_t)(n / 2);
#define TB_SSO1_PAIRS                                                                              \
    ".syntax unified\n\t"                                                                          \
    "0:\n\t"                                                                                       \
    "ldmia %[o]!, {%[a0]}\n\t"                                                                     \
    "mov %[e], %[o]\n\t"                                                                           \
    "add %[e], %[n4]\n"                                                                            \
    "1:\n\t"                                                                                       \
    "ldrh %[t], [%[o]]\n\t"                                                                        \
    "ldrh %[u], [%[o], #2]\n\t"                                                                    \
    "ldr %[t], [%[b0], %[t]]\n\t"                                                                  \
    "ldr %[u], [%[b0], %[u]]\n\t"                                                                  \
    "adds %[a0], %[a0], %[t]\n\t"                                                                  \
    "adds %[a0], %[a0], %[u]\n\t"                                                                  \
    "adds %[o], #4\n\t"                                                                            \
    "cmp %[o], %[e]\n\t"                                                                           \
    "bne 1b\n\t"
#define TB_SSO1_SIGN                                                                               \
    "lsls %[t], %[a0], #1\n\t"                                                                     \
    "adcs %[bits], %[bits]\n\t"                                                                    \
    "bcc 0b"
#define TB_SSO1_OPERANDS                                                                           \
    : [o] "+l"(rec), [a0] "=&l"(a0), [t] "=&l"(t), [u] "=&l"(u), [e] "=&h"(e), [bits] "+l"(bits)  \
    : [b0] "l"(b0), [n4] "h"(pairs)                                                                \
    : "cc", "memory"
        if (n & 1)
            __asm__(TB_SSO1_PAIRS
                    "ldrh %[t], [%[o]]\n\t"
                    "ldr %[t], [%[b0], %[t]]\n\t"
                    "adds %[a0], %[a0], %[t]\n\t"
                    "adds %[o], #4\n\t" TB_SSO1_SIGN TB_SSO1_OPERANDS);
        else
            __asm__(TB_SSO1_PAIRS TB_SSO1_SIGN TB_SSO1_OPERANDS);
#undef TB_SSO1_PAIRS
#undef TB_SSO1_SIGN
#undef TB_SSO1_OPERANDS
        return bits;
    }
#endif
    uint32_t bits = 0;
    for (int r = 0; r < count; r++, rec += 1 + (n + 1) / 2) {
        uint32_t a0 = rec[0];
        TB_UNROLL
        for (int i = 0; i < n; i++) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
            uint16_t off;
            TB_COPY(&off, (const unsigned char *)(rec + 1) + 2 * i, sizeof off);
#else
            uint32_t off = rec[1 + i / 2] >> (16 * (i & 1)) & 0xFFFFu;
#endif
            a0 += tb_sso_word(b0, off);
        }
        bits = bits << 1 | a0 >> 31;
    }
    return bits;
}

/* First layer, c_in <= TB_SST_MAX_IN, weights in {-1, +1} (binary) or {-1, 0, +1} (ternary):
 * subset-sum tables (tb_iconv1d_sso_steps), each output channel a sum of `lookups` table
 * entries at byte offsets from its window's first table (tap k's table is k tables on, the
 * entry is the tap's weight bits). A binary weight row is one lookup per tap; a ternary one
 * two, w = (u + v) / 2 with u, v in {-1, +1} (u = v = w where w is +-1, u = +1, v = -1
 * where w is 0), so the lookups sum to P * acc (P = 1 or 2 lookups per tap). The threshold
 * and its direction are folded in: each sum starts at the bias -P * (th + neg), so it is
 * P * (acc - th - neg), negative exactly where (neg = 0) acc < th, or (neg = 1) acc <= th,
 * i.e. the output is not -1; the compiler checks P * (|acc| + |th| + 1) < 2^31, so the
 * sums taken modulo 2^32 are exact. Max-pooling before the sign: the output is -1 where
 * max acc < th (neg = 0), or max acc > th (neg = 1), so it is the AND over the pooling
 * positions of these sign bits, XOR neg. Two positions at a time share each offset
 * (tb_sso_bits); an odd last one, or the only one, goes alone (tb_sso_bits1).
 * span = (pool_k - 1) * stride + k <= ring <= TB_SST_MAX_SPAN.
 * L->table_rec: [ceil(c_out/32)][channels of the group, last first][1 + (lookups + 1) / 2]
 * words (tb_sso_bits); L->bias: NULL.
 * in: int16 [t_in][c_in]; out: [t_out][TB_WORDS(c_out)] packed.
 * scratch: [2 * ring * 2^c_in] words (the tables, each step twice). */
TB_SPECIALISE void tb_iconv1d_sso_s16(const tb_iconv1d_t *L, const int16_t *x, uint32_t *y, int32_t *scratch)
{
    int ow = TB_WORDS(L->c_out), width = 1 << L->c_in, n = L->lookups;
    uint32_t *tabs = (uint32_t *)scratch;
    int next = -L->pad; /* the first step not yet in the ring */
    for (int p = 0; p < L->t_out; p++) {
        tb_iconv1d_sso_steps(L, x, p, &next, tabs);
        for (int g = 0; g < ow; g++) {
            uint32_t pooled = 0xFFFFFFFFu; /* the AND of the sign bits */
            int count = L->c_out - 32 * g < 32 ? L->c_out - 32 * g : 32;
            const uint32_t *rec = L->table_rec + 32 * g * (1 + (n + 1) / 2);
            for (int j = 0; j < L->pool_k; j += 2) {
                int t0 = (p * L->pool_s + j) * L->stride - L->pad;
                const unsigned char *b0 = (const unsigned char *)(tabs + (t0 & (L->ring - 1)) * width);
                if (j + 1 < L->pool_k)
                    pooled &= tb_sso_bits(b0, (const unsigned char *)(tabs + ((t0 + L->stride) & (L->ring - 1)) * width),
                                          rec, count, n);
                else
                    pooled &= tb_sso_bits1(b0, rec, count, n);
            }
            uint32_t valid = count == 32 ? 0xFFFFFFFFu : (1u << count) - 1u;
            y[p * ow + g] = (pooled ^ L->th.neg[g]) & valid;
        }
    }
}

/*
 * Streaming (docs/lowering.md, "Streaming"). A column stage holds the input columns from
 * the start of its next output's window on, oldest first: `fill` of them, at most the span
 * of its kernel, pooling and stride plus one hop's inputs. Once per hop it runs its
 * windowed kernel on them for every output they complete, then drops the columns no later
 * output reads (or counts in `skip` those still to come that none reads).
 */
typedef struct {
    uint32_t fill; /* columns held */
    uint32_t skip; /* columns to drop as they come (a stride longer than the span) */
} tb_stream_buf_t;

/* b: the counters; buf: bytes [capacity][col_bytes]; cols: n new columns, contiguous. */
static inline void tb_stream_append(tb_stream_buf_t *b, unsigned char *buf, const void *cols,
                                    size_t col_bytes, uint32_t n)
{
    const unsigned char *c = (const unsigned char *)cols;
    uint32_t k = n < b->skip ? n : b->skip;
    b->skip -= k;
    memcpy(buf + b->fill * col_bytes, c + k * col_bytes, (n - k) * col_bytes);
    b->fill += n - k;
}

/* Outputs the held columns complete: windows of `span` columns, one every `every`. */
static inline uint32_t tb_stream_ready(const tb_stream_buf_t *b, uint32_t span, uint32_t every)
{
    return b->fill < span ? 0 : (b->fill - span) / every + 1;
}

/* After outputs were computed: the next output's window starts `drop` columns on. */
static inline void tb_stream_drop(tb_stream_buf_t *b, unsigned char *buf, size_t col_bytes,
                                  uint32_t drop)
{
    if (drop >= b->fill) {
        b->skip = drop - b->fill;
        b->fill = 0;
        return;
    }
    memmove(buf, buf + drop * col_bytes, (b->fill - drop) * col_bytes);
    b->fill -= drop;
}

/* Streamed global sum pooling: a running count of each channel's set bits over the last
 * L->t columns. ring: [L->t][TB_WORDS(L->c)] those columns, *pos the oldest; ones: int32
 * [L->c], each in [0, L->t]; col: the new column, which replaces the oldest. */
static inline void tb_globalsum_push_b32(const tb_globalsum_t *L, uint32_t *ring, uint32_t *pos,
                                         int32_t *ones, const uint32_t *col)
{
    int cw = TB_WORDS(L->c);
    uint32_t *old = ring + *pos * (uint32_t)cw;
    for (int c = 0; c < L->c; c++)
        ones[c] += (int32_t)tb_bit(col, c) - (int32_t)tb_bit(old, c);
    memcpy(old, col, (size_t)cw * sizeof *col);
    *pos = *pos + 1 == (uint32_t)L->t ? 0 : *pos + 1;
}

/* ones: int32 [L->c] (above) -> out: the counts L->t - 2 * ones, as tb_globalsum_b32 gives. */
static inline void tb_globalsum_read_b32(const tb_globalsum_t *L, const int32_t *ones, int32_t *y)
{
    for (int c = 0; c < L->c; c++)
        y[c] = L->t - 2 * ones[c];
}

/* Streamed global max pooling: ring [L->t_in][TB_WORDS(L->c)] the last t_in columns, *pos
 * the oldest, which col replaces. Read it with tb_maxpool1d_b32 (kernel_size = t_in): an AND
 * over all of them, in any order. */
static inline void tb_maxpool1d_push_b32(const tb_maxpool1d_t *L, uint32_t *ring, uint32_t *pos,
                                         const uint32_t *col)
{
    int cw = TB_WORDS(L->c);
    memcpy(ring + *pos * (uint32_t)cw, col, (size_t)cw * sizeof *col);
    *pos = *pos + 1 == (uint32_t)L->t_in ? 0 : *pos + 1;
}

/* Index of the largest score; ties go to the lowest index. */
static inline int tb_argmax_s32(const int32_t *scores, int n)
{
    int best = 0;
    for (int i = 1; i < n; i++)
        if (scores[i] > scores[best])
            best = i;
    return best;
}

#endif /* TINYBNN_KERNELS_H */
