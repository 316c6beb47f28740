#ifndef RNNLM_ALLOCATION_COUNTER_H
#define RNNLM_ALLOCATION_COUNTER_H

// Counts heap allocations in this process: malloc, calloc, realloc, posix_memalign,
// aligned_alloc and memalign are interposed (glibc) and forwarded to glibc's own
// implementations. Linked only into throughput-bench, never into the library.

/// Allocation calls made so far, by any thread.
unsigned long rl_allocation_count(void);

#endif
