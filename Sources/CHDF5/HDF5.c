/* HDF5, opened on first use (see CLibraryLoader.h): only `quanta calibrate` and the commands
 * reading its statistics need it. The definitions are hidden: they bind Quanta's own calls at
 * link time and never interpose on the library's symbols. */
#pragma GCC visibility push(hidden)
#include "CHDF5.h"
#include "CLibraryLoader.h"

static const char *const hdf5_names[] = {"libhdf5_serial.so", "libhdf5.so", "libhdf5_serial.so.103", "libhdf5.so.103", "libhdf5.dylib", NULL};
static const quanta_library hdf5 = {"HDF5", hdf5_names, "install HDF5 (bash Scripts/setup.sh, or apt-get install libhdf5-dev)", 0};

const char *quanta_hdf5_load_error(void) {
    return quanta_library_handle(&hdf5) ? NULL : quanta_library_error(&hdf5);
}

QUANTA_FORWARD(&hdf5, herr_t, H5Aclose, (hid_t attr_id), (attr_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Acreate2, (hid_t loc_id, const char *attr_name, hid_t type_id, hid_t space_id, hid_t acpl_id, hid_t aapl_id), (loc_id, attr_name, type_id, space_id, acpl_id, aapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Adelete, (hid_t loc_id, const char *attr_name), (loc_id, attr_name))
QUANTA_FORWARD(&hdf5, htri_t, H5Aexists, (hid_t obj_id, const char *attr_name), (obj_id, attr_name))
QUANTA_FORWARD(&hdf5, ssize_t, H5Aget_name, (hid_t attr_id, size_t buf_size, char *buf), (attr_id, buf_size, buf))
QUANTA_FORWARD(&hdf5, hid_t, H5Aget_space, (hid_t attr_id), (attr_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Aget_type, (hid_t attr_id), (attr_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Aopen_by_idx, (hid_t loc_id, const char *obj_name, H5_index_t idx_type, H5_iter_order_t order, hsize_t n, hid_t aapl_id, hid_t lapl_id), (loc_id, obj_name, idx_type, order, n, aapl_id, lapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Aread, (hid_t attr_id, hid_t type_id, void *buf), (attr_id, type_id, buf))
QUANTA_FORWARD(&hdf5, herr_t, H5Awrite, (hid_t attr_id, hid_t type_id, const void *buf), (attr_id, type_id, buf))
QUANTA_FORWARD(&hdf5, herr_t, H5Dclose, (hid_t dset_id), (dset_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Dcreate2, (hid_t loc_id, const char *name, hid_t type_id, hid_t space_id, hid_t lcpl_id, hid_t dcpl_id, hid_t dapl_id), (loc_id, name, type_id, space_id, lcpl_id, dcpl_id, dapl_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Dget_space, (hid_t dset_id), (dset_id))
QUANTA_FORWARD(&hdf5, hsize_t, H5Dget_storage_size, (hid_t dset_id), (dset_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Dget_type, (hid_t dset_id), (dset_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Dopen2, (hid_t loc_id, const char *name, hid_t dapl_id), (loc_id, name, dapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Dread, (hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id, hid_t dxpl_id, void *buf), (dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf))
QUANTA_FORWARD(&hdf5, herr_t, H5Dwrite, (hid_t dset_id, hid_t mem_type_id, hid_t mem_space_id, hid_t file_space_id, hid_t dxpl_id, const void *buf), (dset_id, mem_type_id, mem_space_id, file_space_id, dxpl_id, buf))
QUANTA_FORWARD(&hdf5, herr_t, H5Fclose, (hid_t file_id), (file_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Fcreate, (const char *filename, unsigned flags, hid_t fcpl_id, hid_t fapl_id), (filename, flags, fcpl_id, fapl_id))
QUANTA_FORWARD(&hdf5, htri_t, H5Fis_hdf5, (const char *filename), (filename))
QUANTA_FORWARD(&hdf5, hid_t, H5Fopen, (const char *filename, unsigned flags, hid_t fapl_id), (filename, flags, fapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Gclose, (hid_t group_id), (group_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Gcreate2, (hid_t loc_id, const char *name, hid_t lcpl_id, hid_t gcpl_id, hid_t gapl_id), (loc_id, name, lcpl_id, gcpl_id, gapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Gget_info, (hid_t loc_id, H5G_info_t *ginfo), (loc_id, ginfo))
QUANTA_FORWARD(&hdf5, hid_t, H5Gopen2, (hid_t loc_id, const char *name, hid_t gapl_id), (loc_id, name, gapl_id))
QUANTA_FORWARD(&hdf5, htri_t, H5Lexists, (hid_t loc_id, const char *name, hid_t lapl_id), (loc_id, name, lapl_id))
QUANTA_FORWARD(&hdf5, ssize_t, H5Lget_name_by_idx, (hid_t loc_id, const char *group_name, H5_index_t idx_type, H5_iter_order_t order, hsize_t n, char *name , size_t size, hid_t lapl_id), (loc_id, group_name, idx_type, order, n, name, size, lapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Oget_info2, (hid_t loc_id, H5O_info_t *oinfo, unsigned fields), (loc_id, oinfo, fields))
QUANTA_FORWARD(&hdf5, herr_t, H5Oget_info_by_idx2, (hid_t loc_id, const char *group_name, H5_index_t idx_type, H5_iter_order_t order, hsize_t n, H5O_info_t *oinfo, unsigned fields, hid_t lapl_id), (loc_id, group_name, idx_type, order, n, oinfo, fields, lapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Oget_info_by_name2, (hid_t loc_id, const char *name, H5O_info_t *oinfo, unsigned fields, hid_t lapl_id), (loc_id, name, oinfo, fields, lapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Pclose, (hid_t plist_id), (plist_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Pcreate, (hid_t cls_id), (cls_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Pset_chunk, (hid_t plist_id, int ndims, const hsize_t dim[]), (plist_id, ndims, dim))
QUANTA_FORWARD(&hdf5, herr_t, H5Pset_deflate, (hid_t plist_id, unsigned level), (plist_id, level))
QUANTA_FORWARD(&hdf5, herr_t, H5Pset_shuffle, (hid_t plist_id), (plist_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Sclose, (hid_t space_id), (space_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Screate, (H5S_class_t type), (type))
QUANTA_FORWARD(&hdf5, hid_t, H5Screate_simple, (int rank, const hsize_t dims[], const hsize_t maxdims[]), (rank, dims, maxdims))
QUANTA_FORWARD(&hdf5, int, H5Sget_simple_extent_dims, (hid_t space_id, hsize_t dims[], hsize_t maxdims[]), (space_id, dims, maxdims))
QUANTA_FORWARD(&hdf5, int, H5Sget_simple_extent_ndims, (hid_t space_id), (space_id))
QUANTA_FORWARD(&hdf5, H5S_class_t, H5Sget_simple_extent_type, (hid_t space_id), (space_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Tclose, (hid_t type_id), (type_id))
QUANTA_FORWARD(&hdf5, hid_t, H5Tcopy, (hid_t type_id), (type_id))
QUANTA_FORWARD(&hdf5, H5T_class_t, H5Tget_class, (hid_t type_id), (type_id))
QUANTA_FORWARD(&hdf5, H5T_cset_t, H5Tget_cset, (hid_t type_id), (type_id))
QUANTA_FORWARD(&hdf5, H5T_sign_t, H5Tget_sign, (hid_t type_id), (type_id))
QUANTA_FORWARD(&hdf5, size_t, H5Tget_size, (hid_t type_id), (type_id))
QUANTA_FORWARD(&hdf5, htri_t, H5Tis_variable_str, (hid_t type_id), (type_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Tset_cset, (hid_t type_id, H5T_cset_t cset), (type_id, cset))
QUANTA_FORWARD(&hdf5, herr_t, H5Tset_size, (hid_t type_id, size_t size), (type_id, size))
QUANTA_FORWARD(&hdf5, herr_t, H5free_memory, (void *mem), (mem))
QUANTA_FORWARD(&hdf5, herr_t, H5open, (void), ())
QUANTA_FORWARD(&hdf5, herr_t, H5Eset_auto2, (hid_t estack_id, H5E_auto2_t func, void *client_data), (estack_id, func, client_data))
QUANTA_FORWARD(&hdf5, herr_t, H5Lget_info, (hid_t loc_id, const char *name, H5L_info_t *linfo, hid_t lapl_id), (loc_id, name, linfo, lapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5Lget_info_by_idx, (hid_t loc_id, const char *group_name, H5_index_t idx_type, H5_iter_order_t order, hsize_t n, H5L_info_t *linfo, hid_t lapl_id), (loc_id, group_name, idx_type, order, n, linfo, lapl_id))
QUANTA_FORWARD(&hdf5, herr_t, H5check_version, (unsigned majnum, unsigned minnum, unsigned relnum), (majnum, minnum, relnum))

/* HDF5's predefined types and property classes are global variables behind macros such as
 * H5T_NATIVE_FLOAT, which expands to (H5open(), H5T_NATIVE_FLOAT_g). */
#define QUANTA_H5_GLOBAL(name) (*(hid_t *)quanta_library_symbol(&hdf5, #name))
#define H5T_NATIVE_FLOAT_g QUANTA_H5_GLOBAL(H5T_NATIVE_FLOAT_g)
#define H5T_NATIVE_DOUBLE_g QUANTA_H5_GLOBAL(H5T_NATIVE_DOUBLE_g)
#define H5T_NATIVE_INT64_g QUANTA_H5_GLOBAL(H5T_NATIVE_INT64_g)
#define H5T_IEEE_F32LE_g QUANTA_H5_GLOBAL(H5T_IEEE_F32LE_g)
#define H5T_IEEE_F64LE_g QUANTA_H5_GLOBAL(H5T_IEEE_F64LE_g)
#define H5T_STD_I64LE_g QUANTA_H5_GLOBAL(H5T_STD_I64LE_g)
#define H5T_C_S1_g QUANTA_H5_GLOBAL(H5T_C_S1_g)
#define H5P_CLS_DATASET_CREATE_ID_g QUANTA_H5_GLOBAL(H5P_CLS_DATASET_CREATE_ID_g)

hid_t quanta_H5T_NATIVE_FLOAT(void) { return H5T_NATIVE_FLOAT; }
hid_t quanta_H5T_NATIVE_DOUBLE(void) { return H5T_NATIVE_DOUBLE; }
hid_t quanta_H5T_NATIVE_INT64(void) { return H5T_NATIVE_INT64; }
hid_t quanta_H5T_IEEE_F32LE(void) { return H5T_IEEE_F32LE; }
hid_t quanta_H5T_IEEE_F64LE(void) { return H5T_IEEE_F64LE; }
hid_t quanta_H5T_STD_I64LE(void) { return H5T_STD_I64LE; }
hid_t quanta_H5T_C_S1(void) { return H5T_C_S1; }
hid_t quanta_H5P_DATASET_CREATE(void) { return H5P_DATASET_CREATE; }
hid_t quanta_H5P_DEFAULT(void) { return H5P_DEFAULT; }
hid_t quanta_H5S_ALL(void) { return H5S_ALL; }
hid_t quanta_H5E_DEFAULT(void) { return H5E_DEFAULT; }
unsigned quanta_H5F_ACC_TRUNC(void) { return H5F_ACC_TRUNC; }
unsigned quanta_H5F_ACC_RDONLY(void) { return H5F_ACC_RDONLY; }
void quanta_H5_silence_errors(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }
size_t quanta_H5T_VARIABLE(void) { return H5T_VARIABLE; }

int quanta_H5L_is_hard(hid_t loc, const char *name) {
    htri_t exists = H5Lexists(loc, name, H5P_DEFAULT);
    if (exists <= 0) return (int)exists;
    H5L_info_t info;
    if (H5Lget_info(loc, name, &info, H5P_DEFAULT) < 0) return -1;
    return info.type == H5L_TYPE_HARD;
}

int quanta_H5L_is_hard_by_idx(hid_t loc, hsize_t n) {
    H5L_info_t info;
    if (H5Lget_info_by_idx(loc, ".", H5_INDEX_NAME, H5_ITER_INC, n, &info, H5P_DEFAULT) < 0) return -1;
    return info.type == H5L_TYPE_HARD;
}

#pragma GCC visibility pop
