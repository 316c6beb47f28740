#include "AllocationCounter.h"

#include <errno.h>
#include <stddef.h>

// glibc's implementations, which the wrappers below forward to.
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

static unsigned long count;

unsigned long rl_allocation_count(void) { return __atomic_load_n(&count, __ATOMIC_RELAXED); }

static inline void counted(void) { __atomic_add_fetch(&count, 1, __ATOMIC_RELAXED); }

void *malloc(size_t n) {
  counted();
  return __libc_malloc(n);
}

void *calloc(size_t n, size_t size) {
  counted();
  return __libc_calloc(n, size);
}

void *realloc(void *p, size_t n) {
  counted();
  return __libc_realloc(p, n);
}

void *memalign(size_t alignment, size_t n) {
  counted();
  return __libc_memalign(alignment, n);
}

void *aligned_alloc(size_t alignment, size_t n) {
  counted();
  return __libc_memalign(alignment, n);
}

int posix_memalign(void **out, size_t alignment, size_t n) {
  counted();
  if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(alignment, n);
  if (!p && n) return ENOMEM;
  *out = p;
  return 0;
}
