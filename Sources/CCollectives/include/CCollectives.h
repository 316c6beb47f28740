#ifndef CCOLLECTIVES_H
#define CCOLLECTIVES_H

#include <stddef.h>
#include <stdint.h>

// The few MPI operations data-parallel training needs, as plain C functions: Open MPI's handles
// (MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM) are macros Swift cannot import. Every function works on
// MPI_COMM_WORLD and returns 0 or MPI's error code; rl_mpi_error_text describes a code.

/// Initialises MPI with errors returned rather than fatal; writes this process's rank, the
/// world's size, and whether MPI lets any one thread at a time communicate (serialized threads:
/// a communication thread may sum gradients while the main thread computes), else only the
/// thread that initialised it.
int rl_mpi_init(int *rank, int *size, int *serialized);
/// Ends MPI once every rank calls it (a barrier); after a failure call nothing, exit instead.
int rl_mpi_finalize(void);
/// Sums `count` floats over the ranks, in place (in chunks below 2^31 elements).
int rl_mpi_sum_floats(float *values, size_t count);
/// Sums `count` doubles over the ranks, in place.
int rl_mpi_sum_doubles(double *values, int count);
/// Copies `count` doubles from rank 0 to every rank.
int rl_mpi_broadcast_doubles(double *values, int count);
/// Copies `count` bytes from rank 0 to every rank.
int rl_mpi_broadcast_bytes(void *bytes, int count);
/// Every rank's `count` words, in rank order, into `all` (size × count).
int rl_mpi_all_gather_u64(const uint64_t *mine, int count, uint64_t *all);
/// Every rank's `count` floats, in rank order, into `all` (size × count).
int rl_mpi_all_gather_floats(const float *mine, int count, float *all);
/// Waits until every rank arrives.
int rl_mpi_barrier(void);
/// MPI's wall clock in seconds.
double rl_mpi_wtime(void);
/// MPI's text for an error code, into `text` (at most `capacity` bytes, NUL-terminated).
void rl_mpi_error_text(int code, char *text, int capacity);

/// On SIGTERM (what mpirun sends every rank when the job ends abnormally: another rank died or
/// failed, or mpirun itself was interrupted), writes the current termination message to standard
/// error and ends the process at once with `status`, without waiting for a collective that will
/// never finish. Installs the handler; `rl_set_termination_message` changes the message (the
/// last checkpoint it names), safely against a signal arriving meanwhile.
void rl_end_on_termination(int status);
void rl_set_termination_message(const char *message);

#endif
