/* kernels_int8.h - int8 reference kernels of the conventional baseline (benchmarks/baselines.py).
 *
 * What TensorFlow Lite Micro's reference kernels compute, written as plain loops: int8
 * activations with a per-tensor zero point, int8 weights with one scale per output channel,
 * int32 accumulators and biases, and gemmlowp's fixed-point requantization (a Q31
 * multiplier and a shift per output channel; doubling high multiply, then a rounding right
 * shift). ReLU is fused: a ReLU output has zero point -128, so its clamp is the int8 range.
 * Layout [T][C]: time-major, channels inner. Weights [C_out][K][C_in].
 * Included by the emitted network; every function is static inline, with the prefix bl_.
 */
#include <stdint.h>

/* round(x * multiplier * 2^(shift - 31)), as gemmlowp's MultiplyByQuantizedMultiplier; a
 * multiplier >= 1 (shift > 0) saturates x * 2^shift where TFLM's would overflow. */
static inline int32_t bl_requantize(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 0) {
        int32_t limit = INT32_MAX >> shift;
        x = x > limit ? INT32_MAX : x < -limit ? -INT32_MAX : x * (1 << shift);
        shift = 0;
    }
    int64_t ab = (int64_t)x * multiplier;
    int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    int32_t high = (int32_t)((ab + nudge) / ((int64_t)1 << 31));
    int32_t mask = (int32_t)((1u << -shift) - 1u);
    int32_t remainder = high & mask;
    int32_t threshold = (mask >> 1) + (high < 0);
    return (high >> -shift) + (remainder > threshold);
}

static inline int8_t bl_sat8(int32_t v)
{
    return (int8_t)(v < -128 ? -128 : v > 127 ? 127 : v);
}

/* Normalise int16 samples per channel, (x - offset_c) * scale_c, and quantize the result
 * with one per-tensor multiplier (zero point 0). */
static inline void bl_input_s8(const int16_t *x, int t_len, int c_len, const int32_t *offset,
                        const int32_t *scale, int32_t mult, int32_t shift, int8_t *y)
{
    for (int t = 0; t < t_len; t++)
        for (int c = 0; c < c_len; c++) {
            int32_t v = ((int32_t)x[t * c_len + c] - offset[c]) * scale[c];
            y[t * c_len + c] = bl_sat8(bl_requantize(v, mult, shift));
        }
}

/* Convolution over time with zero padding (padded taps are skipped), then requantize to
 * int8: y = sat8(requantize(sum(w * (x + in_off)) + bias) + out_off). */
static inline void bl_conv_s8(const int8_t *x, int t_in, int c_in, int32_t in_off, const int8_t *w,
                       const int32_t *bias, const int32_t *mult, const int32_t *shift, int k_len,
                       int stride, int pad, int c_out, int t_out, int32_t out_off, int8_t *y)
{
    for (int t = 0; t < t_out; t++)
        for (int o = 0; o < c_out; o++) {
            int32_t acc = 0;
            for (int k = 0; k < k_len; k++) {
                int ti = t * stride - pad + k;
                if (ti < 0 || ti >= t_in)
                    continue;
                const int8_t *xr = x + ti * c_in;
                const int8_t *wr = w + (o * k_len + k) * c_in;
                for (int i = 0; i < c_in; i++)
                    acc += (int32_t)wr[i] * ((int32_t)xr[i] + in_off);
            }
            acc += bias[o];
            y[t * c_out + o] = bl_sat8(bl_requantize(acc, mult[o], shift[o]) + out_off);
        }
}

/* Max pooling over time (no padding); the output keeps the input's quantization. */
static inline void bl_maxpool_s8(const int8_t *x, int c_len, int k_len, int stride, int t_out, int8_t *y)
{
    for (int t = 0; t < t_out; t++)
        for (int c = 0; c < c_len; c++) {
            const int8_t *xr = x + t * stride * c_len + c;
            int8_t m = xr[0];
            for (int k = 1; k < k_len; k++)
                if (xr[k * c_len] > m)
                    m = xr[k * c_len];
            y[t * c_len + c] = m;
        }
}

/* Global average pooling: the sum over time, requantized by 1/T (same quantization). */
static inline void bl_avgpool_s8(const int8_t *x, int t_len, int c_len, int32_t mult, int32_t shift,
                          int8_t *y)
{
    for (int c = 0; c < c_len; c++) {
        int32_t sum = 0;
        for (int t = 0; t < t_len; t++)
            sum += x[t * c_len + c];
        y[c] = bl_sat8(bl_requantize(sum, mult, shift));
    }
}

/* Fully connected hidden layer: as the convolution, one position. */
static inline void bl_fc_s8(const int8_t *x, int n_in, int32_t in_off, const int8_t *w,
                     const int32_t *bias, const int32_t *mult, const int32_t *shift, int n_out,
                     int32_t out_off, int8_t *y)
{
    for (int o = 0; o < n_out; o++) {
        const int8_t *wr = w + o * n_in;
        int32_t acc = 0;
        for (int i = 0; i < n_in; i++)
            acc += (int32_t)wr[i] * ((int32_t)x[i] + in_off);
        acc += bias[o];
        y[o] = bl_sat8(bl_requantize(acc, mult[o], shift[o]) + out_off);
    }
}

/* The classifier: int32 scores, sum(w * (x + in_off)) + bias. */
static inline void bl_fc_s8_scores(const int8_t *x, int n_in, int32_t in_off, const int8_t *w,
                            const int32_t *bias, int n_out, int32_t *y)
{
    for (int o = 0; o < n_out; o++) {
        const int8_t *wr = w + o * n_in;
        int32_t acc = 0;
        for (int i = 0; i < n_in; i++)
            acc += (int32_t)wr[i] * ((int32_t)x[i] + in_off);
        y[o] = acc + bias[o];
    }
}
