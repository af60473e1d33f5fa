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
static inline size_t quanta_H5T_VARIABLE(void) { return H5T_VARIABLE; }

/* Link kinds through H5Lget_info / H5Lget_info_by_idx, which are version-alias macros in
 * HDF5 >= 1.12 (H5L_info_t has a `type` in every version). 1: a hard link, 0: absent or a
 * soft/external link (never followed: an external link would open another file),
 * negative: HDF5 failed. */
static inline int quanta_H5L_is_hard(hid_t loc, const char *name) {
    htri_t exists = H5Lexists(loc, name, H5P_DEFAULT);
    if (exists <= 0) return (int)exists;
    H5L_info_t info;
    if (H5Lget_info(loc, name, &info, H5P_DEFAULT) < 0) return -1;
    return info.type == H5L_TYPE_HARD;
}
static inline int quanta_H5L_is_hard_by_idx(hid_t loc, hsize_t n) {
    H5L_info_t info;
    if (H5Lget_info_by_idx(loc, ".", H5_INDEX_NAME, H5_ITER_INC, n, &info, H5P_DEFAULT) < 0) return -1;
    return info.type == H5L_TYPE_HARD;
}
#endif
