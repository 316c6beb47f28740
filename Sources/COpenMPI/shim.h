// Open MPI's C interface; pkg-config (ompi-c) supplies Debian's include path.
#include <mpi.h>
