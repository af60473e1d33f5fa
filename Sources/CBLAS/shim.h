#ifndef QUANTA_CBLAS_SHIM_H
#define QUANTA_CBLAS_SHIM_H
#include <cblas.h>
#include <lapacke.h>
#endif
