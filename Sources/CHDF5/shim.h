#ifndef QUANTA_CHDF5_SHIM_H
#define QUANTA_CHDF5_SHIM_H
#include <hdf5.h>

/* HDF5's constants are macros (several call H5open()): Swift cannot import them. */
static inline hid_t quanta_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
static inline hid_t quanta_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
static inline hid_t quanta_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
static inline hid_t quanta_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
static inline hid_t quanta_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
static inline hid_t quanta_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
static inline hid_t quanta_H5T_C_S1(void) { return H5T_C_S1; }
static inline hid_t quanta_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
static inline hid_t quanta_H5P_DEFAULT(void) { return H5P_DEFAULT; }
static inline hid_t quanta_H5S_ALL(void) { return H5S_ALL; }
static inline hid_t quanta_H5E_DEFAULT(void) { return H5E_DEFAULT; }
static inline unsigned quanta_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
static inline unsigned quanta_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
static inline void quanta_H5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
#endif
