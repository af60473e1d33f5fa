/* OpenBLAS and LAPACKE, opened on first use (see CLibraryLoader.h). The definitions are hidden:
 * they bind Quanta's own calls at link time and never interpose on the libraries' symbols. */
#pragma GCC visibility push(hidden)
#include "CBLAS.h"
#pragma GCC visibility pop
#include "CLibraryLoader.h"

static const char *const openblas_names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib", NULL};
static const char *const lapacke_names[] = {"liblapacke.so.3", "liblapacke.so", "liblapacke.dylib", NULL};
static const char hint[] = "install OpenBLAS and LAPACKE (bash Scripts/setup.sh, or apt-get install libopenblas0 liblapacke)";
/* Global, so that LAPACKE, opened after it, takes its LAPACK routines from OpenBLAS as it did
 * when both were linked (the numbers of GPTQ's factorization depend on it). */
static const quanta_library openblas = {"OpenBLAS", openblas_names, hint, 1};
static const quanta_library lapacke = {"LAPACKE", lapacke_names, hint, 0};

#pragma GCC visibility push(hidden)

static const quanta_library *lapack(void) {
    quanta_library_handle(&openblas);
    return &lapacke;
}

QUANTA_FORWARD_VOID(&openblas, cblas_sgemm,
    (const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE transA, const enum CBLAS_TRANSPOSE transB, const blasint m, const blasint n,
     const blasint k, const float alpha, const float *a, const blasint lda, const float *b, const blasint ldb, const float beta, float *c,
     const blasint ldc),
    (order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
QUANTA_FORWARD_VOID(&openblas, cblas_dgemm,
    (const enum CBLAS_ORDER order, const enum CBLAS_TRANSPOSE transA, const enum CBLAS_TRANSPOSE transB, const blasint m, const blasint n,
     const blasint k, const double alpha, const double *a, const blasint lda, const double *b, const blasint ldb, const double beta,
     double *c, const blasint ldc),
    (order, transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc))
QUANTA_FORWARD_VOID(&openblas, cblas_ssyrk,
    (const enum CBLAS_ORDER order, const enum CBLAS_UPLO uplo, const enum CBLAS_TRANSPOSE trans, const blasint n, const blasint k,
     const float alpha, const float *a, const blasint lda, const float beta, float *c, const blasint ldc),
    (order, uplo, trans, n, k, alpha, a, lda, beta, c, ldc))
QUANTA_FORWARD_VOID(&openblas, openblas_set_num_threads, (int threads), (threads))
QUANTA_FORWARD(&openblas, char *, openblas_get_corename, (void), ())
QUANTA_FORWARD(lapack(), lapack_int, LAPACKE_dpotrf, (int layout, char uplo, lapack_int n, double *a, lapack_int lda), (layout, uplo, n, a, lda))
QUANTA_FORWARD(lapack(), lapack_int, LAPACKE_dpotri, (int layout, char uplo, lapack_int n, double *a, lapack_int lda), (layout, uplo, n, a, lda))

#pragma GCC visibility pop
