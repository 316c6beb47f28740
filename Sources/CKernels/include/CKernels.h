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

/// C = alpha * op(A) * op(B) + beta * C, row-major (op = transpose when trans_x != 0): OpenBLAS's
/// sgemm/dgemm, single-threaded, on a block of C per thread of the team. The first call sets
/// OpenBLAS to one thread for the whole process.
void rl_sgemm(int trans_a, int trans_b, int m, int n, int k, float alpha, const float *a, int lda, const float *b,
              int ldb, float beta, float *c, int ldc);
void rl_dgemm(int trans_a, int trans_b, int m, int n, int k, double alpha, const double *a, int lda,
              const double *b, int ldb, double beta, double *c, int ldc);

/// The whole time loop of an LSTM layer's forward pass, on the thread team (see rl_set_threads).
/// gates: (steps*n, 4h), holding X·W_ihᵀ + b on entry; each step adds h_{t-1}·W_hhᵀ and turns
/// the sums into activations. w_hh: (4h, h). hs, cs: ((steps+1)*n, h), slot 0 holding h_{-1} and
/// c_{-1}; slot t+1 receives h_t, c_t. tanh_c: (steps*n, h). Results do not depend on the
/// number of threads.
void rl_lstm_forward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, float *hs, float *cs,
                            float *tanh_c);
void rl_lstm_forward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, double *hs, double *cs,
                            double *tanh_c);

/// The whole time loop of an LSTM layer's backward pass, from step steps-1 down to 0.
/// gates: (steps*n, 4h), the activations the forward loop left on entry, the gradient of the
/// pre-activations on return (in place). cs, tanh_c as the forward loop left them; dh_out:
/// (steps*n, h), the gradient of the outputs. dh, dc: (n, h), zero on entry (scratch for the
/// carried gradients; dc ends holding the gradient reaching c_{-1}).
void rl_lstm_backward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, const float *cs,
                             const float *tanh_c, const float *dh_out, float *dh, float *dc);
void rl_lstm_backward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, const double *cs,
                             const double *tanh_c, const double *dh_out, double *dh, double *dc);

/// For tests: the float loops and their matrix products in a chosen variant (`level`, see
/// rl_kernels_level; capped at what this CPU runs) and on at most `max_threads` threads. The loops
/// return the number of threads that ran (1 when the team was busy with another caller's job).
/// nt_add: C (m, n) += A (m, k) · Bᵀ with B stored (n, k). nn: C (m, n) = A (m, k) · B. Row-major.
int rl_test_lstm_forward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh,
                                float *gates, float *hs, float *cs, float *tanh_c);
int rl_test_lstm_backward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh,
                                 float *gates, const float *cs, const float *tanh_c, const float *dh_out, float *dh,
                                 float *dc);
void rl_test_small_gemm_nt_add_f(int level, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                                 float *c, int ldc);
void rl_test_small_gemm_nn_f(int level, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                             float *c, int ldc);

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

/// The float kernels' variant on this CPU: 2 AVX-512, 1 AVX2+FMA, 0 portable C.
int rl_kernels_level(void);

/// The thread team's size (the caller included) for the time loops and the matrix products;
/// clamped to 1...64.
/// Defaults to OPENBLAS_NUM_THREADS, else OMP_NUM_THREADS, else the number of online CPUs.
void rl_set_threads(int n);
int rl_threads(void);

#ifdef __cplusplus
}
#endif
#endif
