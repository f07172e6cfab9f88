/* tfrecord.h: TFRecord files and tf.train.Example messages, read and written without TensorFlow. */
#ifndef I2V_TFRECORD_H
#define I2V_TFRECORD_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/base.h"

/* CRC-32C (Castagnoli, reflected polynomial 0x82F63B78); start from 0. */
uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n);
/* TFRecord's masked CRC: ((c >> 15) | (c << 17)) + 0xa282ead8 of crc32c. */
uint32_t tfr_masked_crc(const uint8_t *p, size_t n);

/* Records in memory: uint64 length, uint32 masked crc of the length, data, uint32 masked crc of the data.
 * Returns 1 and the next record at *pos, 0 at the clean end, -1 (err names `name`, the record number and
 * offset) on truncation or a bad CRC. */
int tfr_next(const uint8_t *buf, size_t n, size_t *pos, const uint8_t **rec, size_t *len, const char *name,
             I2vError *err);
/* The same, streamed from a file: one record in memory at a time, a length beyond the file's end is
 * rejected before anything is allocated. */
typedef struct TfrReader {
    FILE *f;
    char path[1024];
    uint64_t size, pos;      /* file size, offset of the next record */
    size_t index;            /* records read */
    uint8_t *buf;
    size_t cap;
} TfrReader;
int tfr_open(TfrReader *r, const char *path, I2vError *err);
int tfr_read(TfrReader *r, const uint8_t **rec, size_t *len, I2vError *err);   /* 1, 0 or -1 as tfr_next */
void tfr_close(TfrReader *r);
/* Appends one framed record to a growing buffer. */
void tfr_append(uint8_t **buf, size_t *n, size_t *cap, const uint8_t *rec, size_t len);

typedef enum TfKind { TF_NONE = 0, TF_BYTES = 1, TF_FLOAT = 2, TF_INT64 = 3 } TfKind;
typedef struct TfFeature {
    const char *key;         /* points into the record (not NUL-terminated) */
    size_t key_len;
    TfKind kind;             /* the oneof that was set (the last one, as protobuf merges) */
    size_t count;            /* values in the list */
    const uint8_t *list;     /* the serialised BytesList / FloatList / Int64List */
    size_t list_len;
} TfFeature;
typedef struct TfExample {
    TfFeature *f;
    size_t n;
} TfExample;
/* Parses a serialised tf.train.Example (Features map<string, Feature>; bytes, float and int64 lists,
 * packed or not; unknown fields skipped; groups rejected). The whole message is validated here, so the
 * getters below cannot fail on content. */
int tf_example_parse(const uint8_t *buf, size_t n, const char *name, TfExample *ex, I2vError *err);
void tf_example_free(TfExample *ex);
const TfFeature *tf_example_find(const TfExample *ex, const char *key);   /* the last entry with this key */
int tf_feature_bytes(const TfFeature *f, size_t i, const uint8_t **p, size_t *len);   /* -1 if i >= count */
size_t tf_feature_floats(const TfFeature *f, float *out, size_t cap);      /* copies min(count, cap) */
size_t tf_feature_int64s(const TfFeature *f, int64_t *out, size_t cap);

/* Writer (packed lists), for the synthetic TFRecord export and the tests. */
typedef struct TfBuilder {
    uint8_t *buf;            /* the Features message being built */
    size_t n, cap;
} TfBuilder;
void tf_builder_bytes(TfBuilder *b, const char *key, const uint8_t *const *values, const size_t *lens, size_t count);
void tf_builder_floats(TfBuilder *b, const char *key, const float *v, size_t count);
void tf_builder_int64s(TfBuilder *b, const char *key, const int64_t *v, size_t count);
uint8_t *tf_builder_finish(TfBuilder *b, size_t *n);   /* the serialised Example; resets the builder */

#endif
