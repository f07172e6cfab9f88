/* npy.h: NumPy's .npy arrays (format versions 1.0, 2.0 and 3.0), read and write. */
#ifndef I2V_NPY_H
#define I2V_NPY_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

#define NPY_MAX_DIMS 8
typedef enum NpyDtype { NPY_F32 = 0, NPY_U8 = 1, NPY_F64 = 2 } NpyDtype;   /* '<f4', '|u1' and '<f8' */
typedef struct NpyArray {
    NpyDtype dtype;
    int ndim;                          /* 0..NPY_MAX_DIMS */
    size_t shape[NPY_MAX_DIMS];
    size_t count;                      /* product of shape (1 for 0-d) */
    void *data;                        /* count float, uint8_t or double values, C order */
} NpyArray;
/* Little-endian float32, float64 or uint8, C order. Fortran order, big-endian and other dtypes are errors that say so. */
int npy_decode(const uint8_t *buf, size_t n, const char *name, NpyArray *out, I2vError *err);
int npy_read(const char *path, NpyArray *out, I2vError *err);
/* Version 1.0 header (at most 8 dimensions always fit), padded to 64 bytes. data: count values of dtype. */
uint8_t *npy_encode(NpyDtype dtype, int ndim, const size_t *shape, const void *data, size_t *n);
int npy_write(const char *path, NpyDtype dtype, int ndim, const size_t *shape, const void *data, I2vError *err);
void npy_free(NpyArray *a);

#endif
