#ifndef QUANTA_CBLAS_H
#define QUANTA_CBLAS_H
/* The CBLAS and LAPACKE functions Quanta calls, with OpenBLAS's and LAPACKE's own declarations.
 * They are defined in BLAS.c, which opens OpenBLAS and LAPACKE on the first call: runs that
 * multiply no matrices never load them. */
#include <cblas.h>
#include <lapacke.h>

/** Why OpenBLAS could not be opened, or NULL when it is open (opening it if needed). */
const char *quanta_blas_load_error(void);

/** Whether OpenBLAS has been opened: a later OPENBLAS_CORETYPE has no effect once it has. */
int quanta_blas_loaded(void);

#endif
