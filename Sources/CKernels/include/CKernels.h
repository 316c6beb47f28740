#ifndef RNNLM_CKERNELS_H
#define RNNLM_CKERNELS_H

#include <stdint.h>

// Kernels of the recurrent models, in float (the fast path) and in double (the same code, used by
// the central-difference gradient checks).
//
// Gate layouts, fixed here and used everywhere (PyTorch's orders): a row of the LSTM's
// pre-activations A has 4H entries, i (input), f (forget), g (cell candidate), o (output); the
// GRU's has 3H, r (reset), z (update), n (candidate); the plain RNN's has H. Each cell's formulas
// sit beside its loops: lstm.inc, gru.inc, rnn.inc. All matrices are row-major.

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
/// (steps*n, h), the gradient of the outputs. dc_out: NULL, or (steps*n, h), a gradient reaching
/// each c_t from outside the layer (a decoder started from an encoder's cell state at step t).
/// dh, dc: (n, h), zero on entry (scratch for the carried gradients; dc ends holding the gradient
/// reaching c_{-1}). dh_hist: NULL, or (steps*n, h) receiving the whole gradient reaching each h_t
/// (dh_out plus the carried part).
void rl_lstm_backward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, const float *cs,
                             const float *tanh_c, const float *dh_out, const float *dc_out, float *dh, float *dc,
                             float *dh_hist);
void rl_lstm_backward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, const double *cs,
                             const double *tanh_c, const double *dh_out, const double *dc_out, double *dh,
                             double *dc, double *dh_hist);

/// The GRU's forward time loop. gates: (steps*n, 3h), holding X·W_ihᵀ + b_ih + [b_hr, b_hz, 0] on
/// entry, the activations r, z, n on return. w_hh: (3h, h); b_hn: (h). un: (steps*n, h) receives
/// h_{t-1}·W_hnᵀ + b_hn. hs: ((steps+1)*n, h), slot 0 holding h_{-1}; slot t+1 receives h_t.
void rl_gru_forward_loop_f(int steps, int n, int h, const float *w_hh, const float *b_hn, float *gates, float *un,
                           float *hs);
void rl_gru_forward_loop_d(int steps, int n, int h, const double *w_hh, const double *b_hn, double *gates,
                           double *un, double *hs);
/// The GRU's backward time loop. gates: activations on entry, the gradient of the pre-activations
/// (dA_r, dA_z, dA_n) on return; un: U_n on entry, its gradient dU_n on return; hs as the forward
/// loop left it; dh_out: (steps*n, h); dh: (n, h), zero on entry; dh_hist as for the LSTM.
void rl_gru_backward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, float *un, const float *hs,
                            const float *dh_out, float *dh, float *dh_hist);
void rl_gru_backward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, double *un, const double *hs,
                            const double *dh_out, double *dh, double *dh_hist);

/// The plain (tanh) RNN's forward time loop. gates: (steps*n, h), X·W_ihᵀ + b on entry, the
/// pre-activations with the recurrent sums added on return. w_hh: (h, h). hs as for the GRU.
void rl_rnn_forward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, float *hs);
void rl_rnn_forward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, double *hs);
/// The plain RNN's backward time loop: gates receives dA; hs as the forward loop left it;
/// dh_out, dh, dh_hist as for the GRU.
void rl_rnn_backward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, const float *hs,
                            const float *dh_out, float *dh, float *dh_hist);
void rl_rnn_backward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, const double *hs,
                            const double *dh_out, double *dh, double *dh_hist);

/// For tests: the float loops and their matrix products in a chosen variant (`level`, see
/// rl_kernels_level; capped at what this CPU runs) and on at most `max_threads` threads. The loops
/// return the number of threads that ran (1 when the team was busy with another caller's job).
/// nt_add: C (m, n) += A (m, k) · Bᵀ with B stored (n, k). nn: C (m, n) = A (m, k) · B, or += when
/// `accumulate`. Row-major.
int rl_test_lstm_forward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh,
                                float *gates, float *hs, float *cs, float *tanh_c);
int rl_test_lstm_backward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh,
                                 float *gates, const float *cs, const float *tanh_c, const float *dh_out, float *dh,
                                 float *dc);
int rl_test_gru_forward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh,
                               const float *b_hn, float *gates, float *un, float *hs);
int rl_test_gru_backward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh, float *gates,
                                float *un, const float *hs, const float *dh_out, float *dh);
int rl_test_rnn_forward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh, float *gates,
                               float *hs);
int rl_test_rnn_backward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh, float *gates,
                                const float *hs, const float *dh_out, float *dh);
void rl_test_small_gemm_nt_add_f(int level, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                                 float *c, int ldc);
void rl_test_small_gemm_nn_f(int level, int accumulate, int m, int n, int k, const float *a, int lda, const float *b,
                             int ldb, float *c, int ldc);

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

/// out[j] += sum_i x[i * cols + j]: bias gradients. The float version splits the columns over
/// the team; softmax_xent and sum_squares split rows and blocks over it too, with block sizes and
/// summation orders that do not depend on the number of threads.
void rl_column_sums_add_f(int rows, int cols, const float *x, float *out);
void rl_column_sums_add_d(int rows, int cols, const double *x, double *out);

/// Sum of squares, accumulated in double (global-norm gradient clipping).
double rl_sum_squares_f(long n, const float *x);
double rl_sum_squares_d(long n, const double *x);

/// The update rules, PyTorch's formulas (torch.optim.SGD, Adam, RMSprop without momentum):
/// with g = scale * grad + weight_decay * theta (scale: global-norm clipping),
///   kind 0, SGD:     theta -= lr * g
///   kind 1, Adam:    m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g²;
///                    theta -= lr * (m / c1) / (sqrt(v / c2) + eps), c1 = 1 - b1^t, c2 = 1 - b2^t
///   kind 2, RMSprop: v = b2 v + (1 - b2) g²;  theta -= lr * g / (sqrt(v) + eps)
/// m and v may be NULL when the kind does not use them. The float version runs on the team for
/// long vectors; every element is computed the same way on any number of threads.
typedef struct {
  int kind;
  long n;
  float lr, scale, weight_decay, beta1, beta2, eps, c1, c2;
  const float *grad;
  float *m, *v, *theta;
} rl_optimizer_update;
typedef struct {
  int kind;
  long n;
  double lr, scale, weight_decay, beta1, beta2, eps, c1, c2;
  const double *grad;
  double *m, *v, *theta;
} rl_optimizer_update_d_args;
void rl_optimizer_update_f(const rl_optimizer_update *u);
void rl_optimizer_update_d(const rl_optimizer_update_d_args *u);

/// y += alpha * x (the SGD step), on the team for long vectors.
void rl_axpy_f(long n, float alpha, const float *x, float *y);
void rl_axpy_d(long n, double alpha, const double *x, double *y);

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
