#include "CCollectives.h"

#include <limits.h>
#include <mpi.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>

int rl_mpi_init(int *rank, int *size, int *serialized) {
  int provided = 0;
  int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_SERIALIZED, &provided);
  if (rc != MPI_SUCCESS) return rc;
  *serialized = provided >= MPI_THREAD_SERIALIZED;
  rc = MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  if (rc != MPI_SUCCESS) return rc;
  rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
  if (rc != MPI_SUCCESS) return rc;
  return MPI_Comm_size(MPI_COMM_WORLD, size);
}

int rl_mpi_finalize(void) { return MPI_Finalize(); }

int rl_mpi_sum_floats(float *values, size_t count) {
  const size_t chunk = (size_t)1 << 30;
  for (size_t start = 0; start < count; start += chunk) {
    size_t n = count - start < chunk ? count - start : chunk;
    int rc = MPI_Allreduce(MPI_IN_PLACE, values + start, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    if (rc != MPI_SUCCESS) return rc;
  }
  return MPI_SUCCESS;
}

int rl_mpi_sum_doubles(double *values, int count) {
  return MPI_Allreduce(MPI_IN_PLACE, values, count, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
}

int rl_mpi_broadcast_doubles(double *values, int count) {
  return MPI_Bcast(values, count, MPI_DOUBLE, 0, MPI_COMM_WORLD);
}

int rl_mpi_broadcast_bytes(void *bytes, int count) { return MPI_Bcast(bytes, count, MPI_BYTE, 0, MPI_COMM_WORLD); }

int rl_mpi_all_gather_u64(const uint64_t *mine, int count, uint64_t *all) {
  return MPI_Allgather(mine, count, MPI_UINT64_T, all, count, MPI_UINT64_T, MPI_COMM_WORLD);
}

int rl_mpi_all_gather_floats(const float *mine, int count, float *all) {
  return MPI_Allgather(mine, count, MPI_FLOAT, all, count, MPI_FLOAT, MPI_COMM_WORLD);
}

int rl_mpi_barrier(void) { return MPI_Barrier(MPI_COMM_WORLD); }

double rl_mpi_wtime(void) { return MPI_Wtime(); }

void rl_mpi_error_text(int code, char *text, int capacity) {
  char buffer[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, buffer, &length) != MPI_SUCCESS) length = 0;
  if (capacity <= 0) return;
  if (length >= capacity) length = capacity - 1;
  memcpy(text, buffer, (size_t)length);
  text[length] = 0;
}

// Two message buffers: the handler reads the one `current` points at, the setter fills the other
// and then swaps, so a signal never sees a half-written message.
static char messages[2][2048];
static _Atomic int current = 0;
static volatile sig_atomic_t termination_status = 1;

static void on_termination(int signal_number) {
  (void)signal_number;
  const char *message = messages[atomic_load(&current)];
  size_t length = strlen(message);
  while (length > 0) {
    ssize_t written = write(STDERR_FILENO, message, length);
    if (written <= 0) break;
    message += written;
    length -= (size_t)written;
  }
  _exit(termination_status);
}

void rl_set_termination_message(const char *message) {
  int next = 1 - atomic_load(&current);
  strncpy(messages[next], message, sizeof messages[next] - 1);
  messages[next][sizeof messages[next] - 1] = 0;
  atomic_store(&current, next);
}

void rl_end_on_termination(int status) {
  termination_status = status;
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_termination;
  sigemptyset(&action.sa_mask);
  sigaction(SIGTERM, &action, NULL);
}
