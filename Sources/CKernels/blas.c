// The toolkit's matrix product: OpenBLAS's sgemm/dgemm, run single-threaded inside each thread
// of the team on a block of C's rows or columns. One pool of threads then owns the cores: with
// OpenBLAS's own threads, its idle workers spin for up to 2^28 cycles after every call and take
// half a core from the LSTM time loops, which run on the team (measured: the loops took 2.3x
// as long). Splitting C also lets each thread read the operands it needs and nothing else; on
// the model's shapes it measured faster than OpenBLAS's threading (Benchmarks/README.md).

#include <cblas.h>
#include <pthread.h>

#include "team.h"

// Products below this many FLOPs run on the calling thread: waking the team costs microseconds.
static const double rl_gemm_parallel_min_flops = 8e6;

// Granule of the split: whole cache lines of C's rows or columns.
enum { RL_GEMM_GRANULE = 16 };

static void rl_openblas_set_one_thread(void) { openblas_set_num_threads(1); }

static void rl_openblas_single_threaded(void) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  pthread_once(&once, rl_openblas_set_one_thread);
}

#define RL_GEMM_DEFINE(REAL, PREFIX, CBLAS)                                                                        \
  typedef struct {                                                                                                 \
    int trans_a, trans_b, m, n, k, split_rows;                                                                     \
    REAL alpha, beta;                                                                                              \
    const REAL *a, *b;                                                                                             \
    REAL *c;                                                                                                       \
    int lda, ldb, ldc;                                                                                             \
  } PREFIX##_job;                                                                                                  \
                                                                                                                   \
  static void PREFIX##_call(const PREFIX##_job *j, int m0, int m1, int n0, int n1) {                              \
    if (m1 <= m0 || n1 <= n0) return;                                                                              \
    const REAL *a = j->trans_a ? j->a + m0 : j->a + (long)m0 * j->lda;                                             \
    const REAL *b = j->trans_b ? j->b + (long)n0 * j->ldb : j->b + n0;                                             \
    CBLAS(CblasRowMajor, j->trans_a ? CblasTrans : CblasNoTrans, j->trans_b ? CblasTrans : CblasNoTrans, m1 - m0, \
          n1 - n0, j->k, j->alpha, a, j->lda, b, j->ldb, j->beta, j->c + (long)m0 * j->ldc + n0, j->ldc);          \
  }                                                                                                                \
                                                                                                                   \
  static void PREFIX##_task(void *context, int index, int count) {                                                 \
    const PREFIX##_job *j = context;                                                                               \
    int begin, end;                                                                                                \
    if (j->split_rows) {                                                                                           \
      rl_split(j->m, RL_GEMM_GRANULE, index, count, &begin, &end);                                                 \
      PREFIX##_call(j, begin, end, 0, j->n);                                                                       \
    } else {                                                                                                       \
      rl_split(j->n, RL_GEMM_GRANULE, index, count, &begin, &end);                                                 \
      PREFIX##_call(j, 0, j->m, begin, end);                                                                       \
    }                                                                                                              \
  }                                                                                                                \
                                                                                                                   \
  void PREFIX(int trans_a, int trans_b, int m, int n, int k, REAL alpha, const REAL *a, int lda, const REAL *b,    \
              int ldb, REAL beta, REAL *c, int ldc) {                                                              \
    rl_openblas_single_threaded();                                                                                 \
    PREFIX##_job job = {trans_a, trans_b, m, n, k, m >= n, alpha, beta, a, b, c, lda, ldb, ldc};                   \
    double flops = 2.0 * m * n * k;                                                                                \
    int pieces = (job.split_rows ? m : n) / RL_GEMM_GRANULE;                                                       \
    if (flops < rl_gemm_parallel_min_flops || pieces < 2)                                                          \
      PREFIX##_call(&job, 0, m, 0, n);                                                                             \
    else                                                                                                           \
      rl_parallel(pieces, PREFIX##_task, &job);                                                                    \
  }

RL_GEMM_DEFINE(float, rl_sgemm, cblas_sgemm)
RL_GEMM_DEFINE(double, rl_dgemm, cblas_dgemm)
