#ifndef QUANTA_CHDF5_H
#define QUANTA_CHDF5_H
/* The HDF5 functions Quanta calls, with HDF5's own declarations. They are defined in HDF5.c,
 * which opens the library on the first call. */
#if __has_include(<hdf5/serial/hdf5.h>)
#include <hdf5/serial/hdf5.h>
#else
#include <hdf5.h>
#endif

/** Why HDF5 could not be opened, or NULL when it is open (opening it if needed). */
const char *quanta_hdf5_load_error(void);

/* HDF5's constants are macros (several call H5open() and read a global): Swift cannot import them. */
hid_t quanta_H5T_NATIVE_FLOAT(void);
hid_t quanta_H5T_NATIVE_DOUBLE(void);
hid_t quanta_H5T_NATIVE_INT64(void);
hid_t quanta_H5T_IEEE_F32LE(void);
hid_t quanta_H5T_IEEE_F64LE(void);
hid_t quanta_H5T_STD_I64LE(void);
hid_t quanta_H5T_C_S1(void);
hid_t quanta_H5P_DATASET_CREATE(void);
hid_t quanta_H5P_DEFAULT(void);
hid_t quanta_H5S_ALL(void);
hid_t quanta_H5E_DEFAULT(void);
unsigned quanta_H5F_ACC_TRUNC(void);
unsigned quanta_H5F_ACC_RDONLY(void);
void quanta_H5_silence_errors(void);
size_t quanta_H5T_VARIABLE(void);

/* Link kinds through H5Lget_info / H5Lget_info_by_idx, which are version-alias macros in
 * HDF5 >= 1.12 (H5L_info_t has a `type` in every version). 1: a hard link, 0: absent or a
 * soft/external link (never followed: an external link would open another file),
 * negative: HDF5 failed. */
int quanta_H5L_is_hard(hid_t loc, const char *name);
int quanta_H5L_is_hard_by_idx(hid_t loc, hsize_t n);
#endif
