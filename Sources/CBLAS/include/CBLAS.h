#ifndef QUANTA_CBLAS_H
#define QUANTA_CBLAS_H
/* The CBLAS and LAPACKE functions Quanta calls, with OpenBLAS's and LAPACKE's own declarations.
 * They are defined in BLAS.c, which opens OpenBLAS and LAPACKE on the first call: runs that
 * multiply no matrices never load them. */
#include <cblas.h>
#include <lapacke.h>

#endif
