/* kernels_f32.h - float32 reference kernels of the conventional baseline
 * (benchmarks/baselines.py).
 *
 * What TensorFlow Lite Micro's float reference kernels compute, as plain loops. Each sum
 * runs in a fixed order (taps, then input channels; bias added last) that the numpy
 * reference repeats, so with -ffp-contract=off the outputs are equal, not close.
 * Layout [T][C]: time-major, channels inner. Weights [C_out][K][C_in].
 * Included by the emitted network; every function is static inline, with the prefix bl_.
 */
#include <stdint.h>

static inline float bl_relu(float v)
{
    return v > 0.0f ? v : 0.0f;
}

/* Normalise int16 samples per channel: (x - offset_c) * scale_c. */
static inline void bl_input_f32(const int16_t *x, int t_len, int c_len, const int32_t *offset,
                         const float *scale, float *y)
{
    for (int t = 0; t < t_len; t++)
        for (int c = 0; c < c_len; c++)
            y[t * c_len + c] = (float)((int32_t)x[t * c_len + c] - offset[c]) * scale[c];
}

/* Convolution over time with zero padding (padded taps are skipped), bias, ReLU. */
static inline void bl_conv_f32(const float *x, int t_in, int c_in, const float *w, const float *bias,
                        int k_len, int stride, int pad, int c_out, int t_out, float *y)
{
    for (int t = 0; t < t_out; t++)
        for (int o = 0; o < c_out; o++) {
            float acc = 0.0f;
            for (int k = 0; k < k_len; k++) {
                int ti = t * stride - pad + k;
                if (ti < 0 || ti >= t_in)
                    continue;
                const float *xr = x + ti * c_in;
                const float *wr = w + (o * k_len + k) * c_in;
                for (int i = 0; i < c_in; i++)
                    acc += xr[i] * wr[i];
            }
            y[t * c_out + o] = bl_relu(acc + bias[o]);
        }
}

/* Max pooling over time (no padding). */
static inline void bl_maxpool_f32(const float *x, int c_len, int k_len, int stride, int t_out, float *y)
{
    for (int t = 0; t < t_out; t++)
        for (int c = 0; c < c_len; c++) {
            const float *xr = x + t * stride * c_len + c;
            float m = xr[0];
            for (int k = 1; k < k_len; k++)
                if (xr[k * c_len] > m)
                    m = xr[k * c_len];
            y[t * c_len + c] = m;
        }
}

/* Global average pooling: the sum over time divided by T. */
static inline void bl_avgpool_f32(const float *x, int t_len, int c_len, float *y)
{
    for (int c = 0; c < c_len; c++) {
        float sum = 0.0f;
        for (int t = 0; t < t_len; t++)
            sum += x[t * c_len + c];
        y[c] = sum / (float)t_len;
    }
}

/* Fully connected: sum(x * w) + bias, then ReLU unless it is the classifier. */
static inline void bl_fc_f32(const float *x, int n_in, const float *w, const float *bias, int n_out,
                      int relu, float *y)
{
    for (int o = 0; o < n_out; o++) {
        const float *wr = w + o * n_in;
        float acc = 0.0f;
        for (int i = 0; i < n_in; i++)
            acc += x[i] * wr[i];
        acc += bias[o];
        y[o] = relu ? bl_relu(acc) : acc;
    }
}
