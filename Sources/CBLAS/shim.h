// OpenBLAS's CBLAS interface (Debian: libopenblas-dev).
#include <cblas.h>

// LAPACK's Cholesky factorisation, which OpenBLAS implements itself (blocked, on its own
// kernels) and exports under the Fortran name; Debian's package installs no LAPACK header.
void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info);
