#ifndef RNNLM_TEAM_H
#define RNNLM_TEAM_H

// Internal to CKernels: the thread team behind the parallel kernels (see team.c).

#include <stdatomic.h>

#include "include/CKernels.h"

enum { RL_MAX_THREADS = 64 };

/// A job's body: called once per thread with index in 0..<count.
typedef void (*rl_task)(void *context, int index, int count);

/// Runs task(context, i, count) for every i in 0..<count on count threads (the caller is i = 0)
/// and returns count when all are done; count = min(team size, max_count), or 1 when the team is
/// busy.
int rl_parallel(int max_count, rl_task task, void *context);

/// A reusable barrier for the threads of one job; initialise it before `rl_parallel`.
typedef struct {
  _Atomic int arrived;
  _Atomic int sense;
} rl_barrier;

void rl_barrier_init(rl_barrier *b);
/// Waits until all `count` threads of the job have arrived; `local_sense` starts at 0 in each.
void rl_barrier_wait(rl_barrier *b, int count, int *local_sense);

/// Thread `index` of `count` gets [begin, end) of 0..<total, cut at multiples of `granule`.
void rl_split(int total, int granule, int index, int count, int *begin, int *end);
/// rl_split for long vectors (the flat parameter buffers).
void rl_split_long(long total, long granule, int index, int count, long *begin, long *end);

#endif
