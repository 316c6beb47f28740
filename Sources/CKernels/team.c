// A small team of worker threads for all parallel work: the LSTM time loops (one job per layer
// and direction, with a barrier per time step) and the blocks of each large matrix product
// (blas.c). One job runs at a time; a caller that finds the team busy (another thread is
// using it) runs its job alone, so every job must be correct for any count >= 1.

#include "team.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define RL_PAUSE() _mm_pause()
#else
#define RL_PAUSE() ((void)0)
#endif

// Spins before a waiting thread starts yielding its core: long enough for the other threads of
// a time step to arrive (microseconds), short enough not to starve OpenBLAS's threads or run
// badly when there are more threads than cores.
enum { RL_SPINS_BEFORE_YIELD = 4000 };

static struct {
  pthread_mutex_t busy;  // held by the caller for the whole of one job
  pthread_mutex_t lock;  // guards the fields below and the condition
  pthread_cond_t wake;
  int threads;  // team size wanted, including the caller; 0 = not yet chosen
  int started;  // workers created
  unsigned long generation;
  rl_task task;
  void *context;
  int count;
  _Atomic int remaining;
} team = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

static void rl_wait_spin(int *spins) {
  if (++*spins < RL_SPINS_BEFORE_YIELD)
    RL_PAUSE();
  else
    sched_yield();
}

static void *rl_worker(void *arg) {
  int index = (int)(long)arg;
  unsigned long seen = 0;
  for (;;) {
    pthread_mutex_lock(&team.lock);
    while (team.generation == seen) pthread_cond_wait(&team.wake, &team.lock);
    seen = team.generation;
    rl_task task = team.task;
    void *context = team.context;
    int count = team.count;
    pthread_mutex_unlock(&team.lock);
    if (index < count) {
      task(context, index, count);
      atomic_fetch_sub_explicit(&team.remaining, 1, memory_order_acq_rel);
    }
  }
  return NULL;
}

static int rl_env_threads(const char *name) {
  const char *s = getenv(name);
  if (!s) return 0;
  int n = atoi(s);
  return n > 0 ? n : 0;
}

// The default: OpenBLAS's own variables if set (so that OPENBLAS_NUM_THREADS=1 means one thread
// everywhere), else the number of online processors.
static int rl_default_threads(void) {
  int n = rl_env_threads("OPENBLAS_NUM_THREADS");
  if (!n) n = rl_env_threads("OMP_NUM_THREADS");
  if (!n) n = (int)sysconf(_SC_NPROCESSORS_ONLN);
  return n;
}

static int rl_clamp_threads(int n) { return n < 1 ? 1 : (n > RL_MAX_THREADS ? RL_MAX_THREADS : n); }

void rl_set_threads(int n) {
  pthread_mutex_lock(&team.lock);
  team.threads = rl_clamp_threads(n);
  pthread_mutex_unlock(&team.lock);
}

int rl_threads(void) {
  pthread_mutex_lock(&team.lock);
  if (team.threads == 0) team.threads = rl_clamp_threads(rl_default_threads());
  int n = team.threads;
  pthread_mutex_unlock(&team.lock);
  return n;
}

int rl_parallel(int max_count, rl_task task, void *context) {
  int count = rl_threads();
  if (max_count < count) count = max_count;
  if (count <= 1 || pthread_mutex_trylock(&team.busy) != 0) {
    task(context, 0, 1);
    return 1;
  }
  pthread_mutex_lock(&team.lock);
  while (team.started < count - 1) {
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int failed = pthread_create(&thread, &attr, rl_worker, (void *)(long)(team.started + 1));
    pthread_attr_destroy(&attr);
    if (failed) break;
    team.started++;
  }
  if (count > team.started + 1) count = team.started + 1;
  if (count <= 1) {
    pthread_mutex_unlock(&team.lock);
    pthread_mutex_unlock(&team.busy);
    task(context, 0, 1);
    return 1;
  }
  team.task = task;
  team.context = context;
  team.count = count;
  atomic_store_explicit(&team.remaining, count - 1, memory_order_relaxed);
  team.generation++;
  pthread_cond_broadcast(&team.wake);
  pthread_mutex_unlock(&team.lock);

  task(context, 0, count);
  int spins = 0;
  while (atomic_load_explicit(&team.remaining, memory_order_acquire) != 0) rl_wait_spin(&spins);
  pthread_mutex_unlock(&team.busy);
  return count;
}

void rl_barrier_init(rl_barrier *b) {
  atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
  atomic_store_explicit(&b->sense, 0, memory_order_relaxed);
}

void rl_barrier_wait(rl_barrier *b, int count, int *local_sense) {
  if (count <= 1) return;
  int sense = !*local_sense;
  *local_sense = sense;
  if (atomic_fetch_add_explicit(&b->arrived, 1, memory_order_acq_rel) == count - 1) {
    atomic_store_explicit(&b->arrived, 0, memory_order_relaxed);
    atomic_store_explicit(&b->sense, sense, memory_order_release);
  } else {
    int spins = 0;
    while (atomic_load_explicit(&b->sense, memory_order_acquire) != sense) rl_wait_spin(&spins);
  }
}

void rl_split_long(long total, long granule, int index, int count, long *begin, long *end) {
  long blocks = (total + granule - 1) / granule;
  long b0 = blocks * index / count;
  long b1 = blocks * (index + 1) / count;
  *begin = b0 * granule < total ? b0 * granule : total;
  *end = b1 * granule < total ? b1 * granule : total;
}

void rl_split(int total, int granule, int index, int count, int *begin, int *end) {
  long b, e;
  rl_split_long(total, granule, index, count, &b, &e);
  *begin = (int)b;
  *end = (int)e;
}
