/* safetensors.h: checkpoints in the safetensors format (huggingface/safetensors), read and written.
 *
 * What it is: a reader that parses a whole file (or a buffer) into a table of named tensors and a
 * metadata map, checks everything a hostile file could get wrong, and converts stored values into i2v
 * tensors; a writer that stores named tensors and metadata atomically; loading and saving ParamSets.
 * What it is not: a general JSON library (the parser knows exactly the safetensors header), nor a lazy
 * or memory-mapped reader (st_open reads the whole file; a checkpoint fits in memory twice).
 *
 * The format: 8 bytes little-endian header length N, N bytes of UTF-8 JSON
 *   {"__metadata__": {"key": "value", ...}, "name": {"dtype": "F32", "shape": [2, 3],
 *    "data_offsets": [begin, end]}, ...}
 * then the raw little-endian data; offsets count from the first byte after the header.
 *
 * Dtypes: the file may hold any of the 15 safetensors dtypes. Loading converts
 *   into DT_REAL: F32, F64, F16, BF16            into DT_I64: I64, I32, I16, I8, U32, U16, U8
 *   into DT_I32:  I32, I16, I8, U16, U8          into DT_U8: U8, BOOL      into DT_BOOL: BOOL, U8 (!= 0)
 * (only lossless conversions, besides rounding F64 to float in the float build). Writing stores DT_REAL
 * as F32 (also in the double build, so both builds write the same files), DT_U8/I32/I64/BOOL as
 * U8/I32/I64/BOOL.
 *
 * Errors (err.h): every function that reads a file or writes one returns non-zero and fills the
 * I2vError with a message that starts with the file name and says what is wrong and what was expected.
 * Bad input never crashes and never causes an allocation larger than the file itself.
 */
#ifndef I2V_SAFETENSORS_H
#define I2V_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "base/base.h"
#include "tensor.h"

#define ST_MAXDIM 8                         /* dimensions a file tensor may have (i2v tensors: 5) */
#define ST_MAX_HEADER ((size_t)100000000)   /* header bytes, the same limit as the reference reader */

/* The file's dtypes, in the reference implementation's order (increasing alignment). */
typedef enum StDType {
    ST_BOOL, ST_U8, ST_I8, ST_F8_E5M2, ST_F8_E4M3, ST_I16, ST_U16, ST_F16, ST_BF16, ST_I32, ST_U32, ST_F32,
    ST_F64, ST_I64, ST_U64, ST_NDTYPES
} StDType;

const char *st_dtype_name(StDType dt);       /* "F32", "BF16", ... */
size_t st_dtype_size(StDType dt);            /* bytes per element */
int st_can_convert(StDType from, DType to);  /* 1 if values of `from` load into a `to` tensor */

/* A metadata entry (string to string, as the format allows). */
typedef struct StMeta {
    const char *key;
    const char *value;
} StMeta;

/* One tensor of a parsed file. */
typedef struct StEntry {
    const char *name;                /* UTF-8, NUL-terminated (a name with an embedded NUL is rejected) */
    StDType dtype;
    int ndim;                        /* 0..ST_MAXDIM; 0 is a scalar with one element */
    size_t shape[ST_MAXDIM];         /* each at most INT_MAX */
    size_t numel;
    size_t nbytes;                   /* numel * st_dtype_size(dtype) == end - begin */
    size_t begin, end;               /* data_offsets, relative to the first byte after the header */
    const unsigned char *data;       /* the raw little-endian bytes, inside the file buffer; not aligned */
} StEntry;

/* A parsed file. Tensors are sorted by name (st_find is a binary search), metadata by key. */
typedef struct StFile {
    char *path;                      /* the name used in messages */
    unsigned char *owned;            /* the file contents (st_open); NULL when st_parse borrowed a buffer */
    const unsigned char *bytes;      /* the whole file: header length, header, data */
    size_t size;
    size_t header_len;               /* N */
    StEntry *entries;                /* (n) */
    size_t n;
    StMeta *meta;                    /* (nmeta) */
    size_t nmeta;
    char *pool;                      /* the decoded strings that names and metadata point into */
} StFile;

/* Reads and parses a file. On failure f is left empty (st_close is still safe). */
int st_open(StFile *f, const char *path, I2vError *e);
/* Parses a file image already in memory; f borrows `bytes`, which must outlive f. `label` names the
 * buffer in messages. This is the whole validation: st_open only reads the file and calls it. */
int st_parse(StFile *f, const void *bytes, size_t size, const char *label, I2vError *e);
void st_close(StFile *f);

const StEntry *st_find(const StFile *f, const char *name);   /* NULL if absent */
const char *st_meta_get(const StFile *f, const char *key);   /* NULL if absent */

/* Copies the tensor `name` into dst (allocated, with exactly the file's shape; dtype convertible). */
int st_read(const StFile *f, const char *name, Tensor *dst, I2vError *e);
/* Copies `numel` elements of tensor `name` (any shape with that many elements) into out, a buffer of
 * numel elements of type dt (real for DT_REAL). For flat arrays, e.g. optimiser moments. */
int st_read_flat(const StFile *f, const char *name, DType dt, void *out, size_t numel, I2vError *e);
/* A new tensor (tensor_alloc_dtype; free with tensor_free) holding `name` converted to dt; NULL on error
 * (also when the file tensor has more than I2V_MAXDIM dimensions). */
Tensor *st_read_new(const StFile *f, const char *name, DType dt, I2vError *e);

/* ---- loading a ParamSet -------------------------------------------------------------------------- */
typedef struct StLoadOpts {
    const char *prefix;   /* the file name of set tensor "x" is prefix + "x"; NULL or "" for none */
    int strict;           /* 1: every tensor of the set must be in the file, and file tensors under the
                             prefix that the set lacks are an error unless allow_extra */
    int allow_extra;      /* with strict: ignore file tensors under the prefix that the set lacks */
} StLoadOpts;

/* Loads the tensors of ps (allocated) from f. Names, shapes and dtypes are all checked before anything
 * is written, so a failed load leaves ps untouched; the message lists every missing name, unexpected
 * name, shape mismatch (both shapes) and dtype mismatch (cut short with "and N more" if long).
 * Shape and dtype mismatches are errors even when not strict. opts NULL means strict, no prefix.
 * Returns the number of tensors loaded (== ps->n when strict), or -1. */
int st_load_paramset(const StFile *f, ParamSet *ps, const StLoadOpts *opts, I2vError *e);
int st_load_paramset_file(const char *path, ParamSet *ps, const StLoadOpts *opts, I2vError *e);

/* ---- writing -------------------------------------------------------------------------------------- */
/* Collects tensors (borrowed: their data must stay valid until the save) and metadata (copied), then
 * writes them in one go. Usage:
 *   StWriter w; st_writer_init(&w);
 *   st_writer_add_paramset(&w, &flow_params, "flow.");
 *   st_writer_add_paramset(&w, &adam_m, "adam.m.");
 *   st_writer_add_array(&w, "train.step", DT_I64, 0, NULL, &step);
 *   st_writer_meta(&w, "config", yaml_text);
 *   if (st_writer_save(&w, path, &err)) ...;
 *   st_writer_free(&w);
 * Names must be unique, valid UTF-8, not "__metadata__"; a violation is reported by the save. */
typedef struct StItem {
    char *name;
    DType dtype;
    int ndim;
    int shape[I2V_MAXDIM];
    size_t numel;
    const void *data;     /* real * for DT_REAL, else the integer buffer */
} StItem;

typedef struct StWriter {
    StItem *items;
    size_t n, cap;
    char **mkey, **mval;  /* metadata, in insertion order */
    size_t nmeta, mcap;
} StWriter;

void st_writer_init(StWriter *w);
void st_writer_free(StWriter *w);
void st_writer_add(StWriter *w, const char *name, const Tensor *t);
/* A bare array: data holds numel(shape) values of dt (real for DT_REAL); ndim 0 is a scalar. */
void st_writer_add_array(StWriter *w, const char *name, DType dt, int ndim, const int *shape, const void *data);
/* Every tensor of ps (parameters and buffers) under prefix + its name; prefix may be NULL. */
void st_writer_add_paramset(StWriter *w, const ParamSet *ps, const char *prefix);
/* Sets a metadata entry (a second call with the same key replaces the value). */
void st_writer_meta(StWriter *w, const char *key, const char *value);

/* Writes `path` atomically: the bytes go to "<path>.tmp.<pid>", which is flushed, fsync'ed and renamed
 * over path only if every write succeeded; on failure the temporary file is removed and an existing
 * file at path is untouched. */
int st_writer_save(const StWriter *w, const char *path, I2vError *e);
/* The same bytes in memory: *out is malloc'ed (caller frees), *size its length. */
int st_writer_serialize(const StWriter *w, unsigned char **out, size_t *size, I2vError *e);

/* Conveniences over the writer. */
int st_save(const char *path, size_t n, const char *const *names, const Tensor *const *tensors,
            size_t nmeta, const StMeta *meta, I2vError *e);
int st_save_paramset(const char *path, const ParamSet *ps, const char *prefix, size_t nmeta,
                     const StMeta *meta, I2vError *e);

#endif
