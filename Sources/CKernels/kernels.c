#include "CKernels.h"

#include <immintrin.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "team.h"

// MARK: - Float approximations

// exp(x) = 2^n * e^r with n = round(x / ln 2) and |r| <= ln(2) / 2. The Taylor polynomial of
// degree 7 truncates at |r|^8 / 8! < 1e-9 relative; ln 2 is split in two parts so that r is
// exact. Inputs are clamped to [-87.3, 88.3] so that 2^n stays a normal float; comparisons
// with NaN are false, so NaN passes the clamps and propagates through the polynomial.
static inline __attribute__((always_inline)) float rl_expf(float x) {
  x = x > 88.3f ? 88.3f : x;
  x = x < -87.3f ? -87.3f : x;
  // Adding and subtracting 1.5 * 2^23 rounds to the nearest integer in the current rounding
  // mode, without a libm call, so the loop vectorizes on any x86-64.
  float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = x - n * 0.693145751953125f;
  r = r - n * 1.42860682030941723e-6f;
  float p = 1.0f / 5040.0f;
  p = p * r + 1.0f / 720.0f;
  p = p * r + 1.0f / 120.0f;
  p = p * r + 1.0f / 24.0f;
  p = p * r + 1.0f / 6.0f;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  int32_t bits = ((int32_t)n + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

static inline __attribute__((always_inline)) float rl_sigmoidf(float x) {
  return 1.0f / (1.0f + rl_expf(-x));
}

// tanh(x) = 1 - 2 / (exp(2x) + 1): absolute error a few ulp of 1, bounded for all x.
static inline __attribute__((always_inline)) float rl_tanhf(float x) {
  return 1.0f - 2.0f / (rl_expf(2.0f * x) + 1.0f);
}

static inline __attribute__((always_inline)) double rl_sigmoid(double x) {
  return 1.0 / (1.0 + exp(-x));
}

// MARK: - Float kernels, three times: AVX-512, AVX2+FMA and baseline, chosen once at run time

#define REAL float
#define OPTIMIZER_ARGS rl_optimizer_update
#define EXP rl_expf
#define TANH rl_tanhf
#define SIGMOID rl_sigmoidf
#define SQRT sqrtf

#define KERNEL static __attribute__((target("avx512f,avx512bw,avx512dq,avx512vl,avx2,fma")))
#define NAME(x) x##_avx512
#define SMALLGEMM_AVX512
#include "smallgemm.inc"
#include "kernels.inc"
#include "lstm.inc"
#include "gru.inc"
#include "rnn.inc"
#undef SMALLGEMM_AVX512
#undef KERNEL
#undef NAME

#define KERNEL static __attribute__((target("avx2,fma")))
#define NAME(x) x##_avx2
#define SMALLGEMM_AVX2
#include "smallgemm.inc"
#include "kernels.inc"
#include "lstm.inc"
#include "gru.inc"
#include "rnn.inc"
#undef SMALLGEMM_AVX2
#undef KERNEL
#undef NAME

#define KERNEL static
#define NAME(x) x##_base
#define SMALLGEMM_PORTABLE
#include "smallgemm.inc"
#include "kernels.inc"
#include "lstm.inc"
#include "gru.inc"
#include "rnn.inc"
#undef KERNEL
#undef NAME

#undef REAL
#undef OPTIMIZER_ARGS
#undef EXP
#undef TANH
#undef SIGMOID
#undef SQRT

static int rl_cpu_level(void) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return 0;
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return 2;
  return 1;
}

int rl_kernels_level(void) {
  static int level = -1;
  if (level < 0) level = rl_cpu_level();
  return level;
}


#define DISPATCH(name, ...) DISPATCH_AT(rl_kernels_level(), name, __VA_ARGS__)
#define DISPATCH_AT(level, name, ...) \
  ((level) >= 2 ? name##_avx512(__VA_ARGS__) : (level) == 1 ? name##_avx2(__VA_ARGS__) : name##_base(__VA_ARGS__))

// The level a test asks for, capped at what this CPU runs.
static int rl_capped_level(int level) {
  int supported = rl_kernels_level();
  return level < 0 ? 0 : (level > supported ? supported : level);
}

// MARK: The cells' time loops (lstm.inc, gru.inc, rnn.inc) and their test entry points

void rl_lstm_forward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, float *hs, float *cs,
                            float *tanh_c) {
  DISPATCH(lstm_forward_loop, RL_MAX_THREADS, steps, n, h, w_hh, gates, hs, cs, tanh_c);
}
void rl_lstm_backward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, const float *cs,
                             const float *tanh_c, const float *dh_out, const float *dc_out, float *dh, float *dc,
                             float *dh_hist) {
  DISPATCH(lstm_backward_loop, RL_MAX_THREADS, steps, n, h, w_hh, gates, cs, tanh_c, dh_out, dc_out, dh, dc,
           dh_hist);
}
int rl_test_lstm_forward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh,
                                float *gates, float *hs, float *cs, float *tanh_c) {
  return DISPATCH_AT(rl_capped_level(level), lstm_forward_loop, max_threads, steps, n, h, w_hh, gates, hs, cs,
                     tanh_c);
}
int rl_test_lstm_backward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh,
                                 float *gates, const float *cs, const float *tanh_c, const float *dh_out, float *dh,
                                 float *dc) {
  return DISPATCH_AT(rl_capped_level(level), lstm_backward_loop, max_threads, steps, n, h, w_hh, gates, cs, tanh_c,
                     dh_out, NULL, dh, dc, NULL);
}

void rl_gru_forward_loop_f(int steps, int n, int h, const float *w_hh, const float *b_hn, float *gates, float *un,
                           float *hs) {
  DISPATCH(gru_forward_loop, RL_MAX_THREADS, steps, n, h, w_hh, b_hn, gates, un, hs);
}
void rl_gru_backward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, float *un, const float *hs,
                            const float *dh_out, float *dh, float *dh_hist) {
  DISPATCH(gru_backward_loop, RL_MAX_THREADS, steps, n, h, w_hh, gates, un, hs, dh_out, dh, dh_hist);
}
int rl_test_gru_forward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh,
                               const float *b_hn, float *gates, float *un, float *hs) {
  return DISPATCH_AT(rl_capped_level(level), gru_forward_loop, max_threads, steps, n, h, w_hh, b_hn, gates, un, hs);
}
int rl_test_gru_backward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh, float *gates,
                                float *un, const float *hs, const float *dh_out, float *dh) {
  return DISPATCH_AT(rl_capped_level(level), gru_backward_loop, max_threads, steps, n, h, w_hh, gates, un, hs, dh_out,
                     dh, NULL);
}

void rl_rnn_forward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, float *hs) {
  DISPATCH(rnn_forward_loop, RL_MAX_THREADS, steps, n, h, w_hh, gates, hs);
}
void rl_rnn_backward_loop_f(int steps, int n, int h, const float *w_hh, float *gates, const float *hs,
                            const float *dh_out, float *dh, float *dh_hist) {
  DISPATCH(rnn_backward_loop, RL_MAX_THREADS, steps, n, h, w_hh, gates, hs, dh_out, dh, dh_hist);
}
int rl_test_rnn_forward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh, float *gates,
                               float *hs) {
  return DISPATCH_AT(rl_capped_level(level), rnn_forward_loop, max_threads, steps, n, h, w_hh, gates, hs);
}
int rl_test_rnn_backward_loop_f(int level, int max_threads, int steps, int n, int h, const float *w_hh, float *gates,
                                const float *hs, const float *dh_out, float *dh) {
  return DISPATCH_AT(rl_capped_level(level), rnn_backward_loop, max_threads, steps, n, h, w_hh, gates, hs, dh_out, dh,
                     NULL);
}

void rl_test_small_gemm_nt_add_f(int level, int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                                 float *c, int ldc) {
  DISPATCH_AT(rl_capped_level(level), gemm_nt_add, m, n, k, a, lda, b, ldb, c, ldc);
}
void rl_test_small_gemm_nn_f(int level, int accumulate, int m, int n, int k, const float *a, int lda, const float *b,
                             int ldb, float *c, int ldc) {
  DISPATCH_AT(rl_capped_level(level), gemm_nn, accumulate, m, n, k, a, lda, b, ldb, c, ldc);
}

// MARK: Elementwise kernels

// The passes over the large buffers run on the team. Each is cut into blocks whose size depends
// only on the problem (never on the thread count), and sums are added block by block in order,
// so results are the same on any number of threads.

enum { RL_MAX_BLOCKS = 1024 };

/// Rows per block for `rows` rows: at least `minimum`, and at most RL_MAX_BLOCKS blocks.
static long rl_block_size(long total, long minimum) {
  long block = (total + RL_MAX_BLOCKS - 1) / RL_MAX_BLOCKS;
  return block < minimum ? minimum : block;
}

typedef struct {
  int rows, cols, block;
  float *scores;
  const int32_t *targets;
  float grad_scale;
  double partial[RL_MAX_BLOCKS];
} rl_softmax_job;

static void rl_softmax_task(void *context, int index, int count) {
  rl_softmax_job *j = context;
  int begin, end;
  rl_split(j->rows, j->block, index, count, &begin, &end);
  for (int b = begin; b < end; b += j->block) {
    int e = b + j->block < end ? b + j->block : end;
    j->partial[b / j->block] =
        DISPATCH(softmax_xent, e - b, j->cols, j->scores + (long)b * j->cols, j->targets + b, j->grad_scale);
  }
}

double rl_softmax_xent_f(int rows, int cols, float *scores, const int32_t *targets, float grad_scale) {
  rl_softmax_job job = {rows, cols, (int)rl_block_size(rows, 8), scores, targets, grad_scale, {0}};
  rl_parallel(RL_MAX_THREADS, rl_softmax_task, &job);
  double total = 0;
  for (int b = 0; b * job.block < rows; b++) total += job.partial[b];
  return total;
}

typedef struct {
  int rows, cols;
  const float *x;
  float *out;
} rl_column_sums_job;

static void rl_column_sums_task(void *context, int index, int count) {
  rl_column_sums_job *j = context;
  int begin, end;
  rl_split(j->cols, 64, index, count, &begin, &end);
  if (end > begin) DISPATCH(column_sums_add, j->rows, end - begin, j->cols, j->x + begin, j->out + begin);
}

void rl_column_sums_add_f(int rows, int cols, const float *x, float *out) {
  rl_column_sums_job job = {rows, cols, x, out};
  rl_parallel(RL_MAX_THREADS, rl_column_sums_task, &job);
}

typedef struct {
  long n, block;
  const float *x;
  double partial[RL_MAX_BLOCKS];
} rl_vector_job;

static void rl_sum_squares_task(void *context, int index, int count) {
  rl_vector_job *j = context;
  long begin, end;
  rl_split_long(j->n, j->block, index, count, &begin, &end);
  for (long b = begin; b < end; b += j->block) {
    long e = b + j->block < end ? b + j->block : end;
    j->partial[b / j->block] = DISPATCH(sum_squares, e - b, j->x + b);
  }
}

double rl_sum_squares_f(long n, const float *x) {
  rl_vector_job job = {n, rl_block_size(n, 1 << 14), x, {0}};
  // One block (a row of an embedding, say): the same sum, without waking the team.
  if (n <= job.block) return DISPATCH(sum_squares, n, x);
  rl_parallel(RL_MAX_THREADS, rl_sum_squares_task, &job);
  double total = 0;
  for (long b = 0; b * job.block < n; b++) total += job.partial[b];
  return total;
}

typedef struct {
  long n;
  float alpha;
  const float *x;
  float *y;
} rl_axpy_job;

static void rl_axpy_task(void *context, int index, int count) {
  rl_axpy_job *j = context;
  long begin, end;
  rl_split_long(j->n, 1 << 14, index, count, &begin, &end);
  if (end > begin) DISPATCH(axpy, end - begin, j->alpha, j->x + begin, j->y + begin);
}

static void rl_optimizer_task(void *context, int index, int count) {
  const rl_optimizer_update *u = context;
  long begin, end;
  rl_split_long(u->n, 1 << 14, index, count, &begin, &end);
  if (end > begin) DISPATCH(optimizer_update, u, begin, end);
}

void rl_optimizer_update_f(const rl_optimizer_update *u) {
  rl_parallel(u->n >= 1 << 16 ? RL_MAX_THREADS : 1, rl_optimizer_task, (void *)u);
}

void rl_axpy_f(long n, float alpha, const float *x, float *y) {
  if (n < 1 << 16) {
    DISPATCH(axpy, n, alpha, x, y);
    return;
  }
  rl_axpy_job job = {n, alpha, x, y};
  rl_parallel(RL_MAX_THREADS, rl_axpy_task, &job);
}
void rl_dropout_f(long n, const float *x, const uint32_t *bits, uint32_t threshold, float scale, float *mask,
                  float *out) {
  DISPATCH(dropout, n, x, bits, threshold, scale, mask, out);
}
void rl_multiply_f(long n, const float *a, const float *b, float *out) { DISPATCH(multiply, n, a, b, out); }
void rl_exp_f(long n, const float *x, float *y) { DISPATCH(map_exp, n, x, y); }
void rl_tanh_f(long n, const float *x, float *y) { DISPATCH(map_tanh, n, x, y); }
void rl_sigmoid_f(long n, const float *x, float *y) { DISPATCH(map_sigmoid, n, x, y); }

// MARK: - Double kernels: libm, for gradient checks

#define REAL double
#define OPTIMIZER_ARGS rl_optimizer_update_d_args
#define EXP exp
#define TANH tanh
#define SIGMOID rl_sigmoid
#define SQRT sqrt
#define KERNEL static __attribute__((unused))
#define NAME(x) x##_dbl
#define SMALLGEMM_PORTABLE
#include "smallgemm.inc"
#include "kernels.inc"
#include "lstm.inc"
#include "gru.inc"
#include "rnn.inc"

void rl_lstm_forward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, double *hs, double *cs,
                            double *tanh_c) {
  lstm_forward_loop_dbl(RL_MAX_THREADS, steps, n, h, w_hh, gates, hs, cs, tanh_c);
}
void rl_lstm_backward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, const double *cs,
                             const double *tanh_c, const double *dh_out, const double *dc_out, double *dh,
                             double *dc, double *dh_hist) {
  lstm_backward_loop_dbl(RL_MAX_THREADS, steps, n, h, w_hh, gates, cs, tanh_c, dh_out, dc_out, dh, dc, dh_hist);
}
void rl_gru_forward_loop_d(int steps, int n, int h, const double *w_hh, const double *b_hn, double *gates,
                           double *un, double *hs) {
  gru_forward_loop_dbl(RL_MAX_THREADS, steps, n, h, w_hh, b_hn, gates, un, hs);
}
void rl_gru_backward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, double *un, const double *hs,
                            const double *dh_out, double *dh, double *dh_hist) {
  gru_backward_loop_dbl(RL_MAX_THREADS, steps, n, h, w_hh, gates, un, hs, dh_out, dh, dh_hist);
}
void rl_rnn_forward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, double *hs) {
  rnn_forward_loop_dbl(RL_MAX_THREADS, steps, n, h, w_hh, gates, hs);
}
void rl_rnn_backward_loop_d(int steps, int n, int h, const double *w_hh, double *gates, const double *hs,
                            const double *dh_out, double *dh, double *dh_hist) {
  rnn_backward_loop_dbl(RL_MAX_THREADS, steps, n, h, w_hh, gates, hs, dh_out, dh, dh_hist);
}
double rl_softmax_xent_d(int rows, int cols, double *scores, const int32_t *targets,
                         double grad_scale) {
  return softmax_xent_dbl(rows, cols, scores, targets, grad_scale);
}
void rl_column_sums_add_d(int rows, int cols, const double *x, double *out) {
  column_sums_add_dbl(rows, cols, cols, x, out);
}
void rl_axpy_d(long n, double alpha, const double *x, double *y) { axpy_dbl(n, alpha, x, y); }
void rl_optimizer_update_d(const rl_optimizer_update_d_args *u) { optimizer_update_dbl(u, 0, u->n); }
double rl_sum_squares_d(long n, const double *x) { return sum_squares_dbl(n, x); }
void rl_dropout_d(long n, const double *x, const uint32_t *bits, uint32_t threshold, double scale, double *mask,
                  double *out) {
  dropout_dbl(n, x, bits, threshold, scale, mask, out);
}
void rl_multiply_d(long n, const double *a, const double *b, double *out) { multiply_dbl(n, a, b, out); }
