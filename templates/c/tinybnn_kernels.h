/*
 * tinybnn_kernels.h - the portable kernels of tinybnn's integer program (C99).
 *
 * The arithmetic contract (docs/lowering.md, tinybnn/lowering.py):
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

#define TB_WORDS(bits) (((bits) + 31) / 32)

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

/* in: int16 [t_in][c_in] (interleaved, as an IMU FIFO delivers); out: [t_out][TB_WORDS(c_out)]. */
static inline void tb_iconv1d_s16(const tb_iconv1d_t *L, const int16_t *x, uint32_t *y)
{
    int ow = TB_WORDS(L->c_out);
    memset(y, 0, (size_t)(L->t_out * ow) * sizeof(uint32_t));
    for (int p = 0; p < L->t_out; p++) {
        for (int o = 0; o < L->c_out; o++) {
            int32_t best = INT32_MIN;
            for (int j = 0; j < L->pool_k; j++) {
                int32_t acc = tb_iconv1d_acc(L, x, o, p * L->pool_s + j);
                best = acc > best ? acc : best;
            }
            y[p * ow + (o >> 5)] |= tb_threshold_bit(&L->th, o, best) << (o & 31);
        }
    }
}

/* Binary convolution with a declared pad value, [max-pool], sign. */
typedef struct {
    int c_in, t_in, c_out, t_out;  /* t_out after pooling */
    int kernel_size, stride, pad;
    int pool_k, pool_s;
    const uint32_t *pad_word;      /* [TB_WORDS(c_in)]: the pad value's bits */
    const uint32_t *w;             /* [c_out][kernel_size][TB_WORDS(c_in)] */
    tb_threshold_t th;
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

/* in: [t_in][TB_WORDS(c_in)] packed; out: [t_out][TB_WORDS(c_out)] packed. */
static inline void tb_bconv1d_b32(const tb_bconv1d_t *L, const uint32_t *x, uint32_t *y)
{
    int ow = TB_WORDS(L->c_out);
    memset(y, 0, (size_t)(L->t_out * ow) * sizeof(uint32_t));
    for (int p = 0; p < L->t_out; p++) {
        for (int o = 0; o < L->c_out; o++) {
            int32_t best = INT32_MIN;
            for (int j = 0; j < L->pool_k; j++) {
                int32_t acc = tb_bconv1d_acc(L, x, o, p * L->pool_s + j);
                best = acc > best ? acc : best;
            }
            y[p * ow + (o >> 5)] |= tb_threshold_bit(&L->th, o, best) << (o & 31);
        }
    }
}

/* Binary dense layer and sign over a packed vector. */
typedef struct {
    int in_words, in_features, c_out;
    const uint32_t *w;  /* [c_out][in_words], in the input buffer's bit layout */
    tb_threshold_t th;
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
