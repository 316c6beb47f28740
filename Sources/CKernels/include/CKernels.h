#ifndef RNNLM_CKERNELS_H
#define RNNLM_CKERNELS_H

#include <stdint.h>

// Elementwise kernels of the LSTM language model, in float (the fast path) and in double
// (the same code, used by the central-difference gradient checks).
//
// Gate layout, fixed here and used everywhere: a row of the LSTM's pre-activations A has 4H
// entries, ordered i (input), f (forget), g (cell candidate), o (output) -- PyTorch's order.
// All matrices are row-major.

#ifdef __cplusplus
extern "C" {
#endif

/// One LSTM time step after the affine part.
/// a: (n, 4h) pre-activations in, activations (sigmoid i, f, o; tanh g) out.
/// c_prev: (n, h). Writes c = f*c_prev + i*g, tanh_c = tanh(c), h_out = o*tanh_c, each (n, h).
void rl_lstm_forward_step_f(int n, int h, float *a, const float *c_prev, float *c, float *tanh_c,
                            float *h_out);
void rl_lstm_forward_step_d(int n, int h, double *a, const double *c_prev, double *c,
                            double *tanh_c, double *h_out);

/// Backward of one LSTM time step.
/// acts: (n, 4h) activations from the forward step; c_prev, tanh_c: (n, h).
/// dh = dh_out + dh_rec: gradient reaching h_t (from the output, and from step t+1).
/// dc: (n, h), in: gradient reaching c_t from step t+1; out: gradient reaching c_{t-1}.
/// da: (n, 4h) out: gradient of the pre-activations.
void rl_lstm_backward_step_f(int n, int h, const float *acts, const float *c_prev,
                             const float *tanh_c, const float *dh_out, const float *dh_rec,
                             float *dc, float *da);
void rl_lstm_backward_step_d(int n, int h, const double *acts, const double *c_prev,
                             const double *tanh_c, const double *dh_out, const double *dh_rec,
                             double *dc, double *da);

/// Softmax with cross-entropy over `rows` rows of `cols` scores, numerically stable (the row
/// maximum is subtracted). Returns the SUM over rows of -log softmax(row)[target], in double.
/// `scores` is overwritten: with (softmax - onehot(target)) * grad_scale when grad_scale != 0,
/// otherwise with unspecified values. Targets must lie in [0, cols).
double rl_softmax_xent_f(int rows, int cols, float *scores, const int32_t *targets,
                         float grad_scale);
double rl_softmax_xent_d(int rows, int cols, double *scores, const int32_t *targets,
                         double grad_scale);

/// Inverted dropout over n elements: mask[i] = bits[i] >= threshold ? scale : 0 and
/// out[i] = x[i] * mask[i]. `bits` are uniform random 32-bit words.
void rl_dropout_f(long n, const float *x, const uint32_t *bits, uint32_t threshold, float scale, float *mask,
                  float *out);
void rl_dropout_d(long n, const double *x, const uint32_t *bits, uint32_t threshold, double scale, double *mask,
                  double *out);

/// out[i] = a[i] * b[i].
void rl_multiply_f(long n, const float *a, const float *b, float *out);
void rl_multiply_d(long n, const double *a, const double *b, double *out);

/// out[j] += sum_i x[i * cols + j]: bias gradients.
void rl_column_sums_add_f(int rows, int cols, const float *x, float *out);
void rl_column_sums_add_d(int rows, int cols, const double *x, double *out);

/// Sum of squares, accumulated in double (global-norm gradient clipping).
double rl_sum_squares_f(long n, const float *x);
double rl_sum_squares_d(long n, const double *x);

/// The float approximations used by the kernels above, applied to arrays (exposed for tests).
/// exp: relative error about 1e-7 on [-87.3, 88.3], clamped outside; NaN propagates.
/// tanh and sigmoid: absolute error below 1e-6.
void rl_exp_f(long n, const float *x, float *y);
void rl_tanh_f(long n, const float *x, float *y);
void rl_sigmoid_f(long n, const float *x, float *y);

/// 1 when the float kernels run their AVX2+FMA variants on this CPU, else 0.
int rl_kernels_use_avx2(void);

#ifdef __cplusplus
}
#endif
#endif
