/* fuzz_tfrecord.c: TFRecord framing (lengths, masked CRC-32C), tf.Example protobufs in each record, and a
 * BAIR trajectory decoded from each Example as `prepare bair` does. The whole input is also parsed as one
 * Example, so mutations reach the protobuf reader without having to keep the records' CRCs right. fuzz.h
 * says how it runs. */
#include "tests/fuzz/fuzz.h"

#include "program/prepare.h"

/* One Example: parsed, then read as a BAIR trajectory. 1 if every refusal named the input. */
static int example(const uint8_t *rec, size_t len) {
    static uint8_t frames[30 * 64 * 64 * 3];
    static double positions[30 * 3];
    TfExample ex;
    I2vError e;
    if (tf_example_parse(rec, len, "fuzz.tfrecords", &ex, &e)) return fuzz_names(&e, "fuzz.tfrecords");
    int ok = 1;
    if (bair_example_decode(&ex, "fuzz.tfrecords", frames, positions, &e)) ok = fuzz_names(&e, "fuzz.tfrecords");
    tf_example_free(&ex);
    return ok;
}

int fuzz_tfrecord(const uint8_t *data, size_t n) {
    size_t pos = 0;
    const uint8_t *rec;
    size_t len;
    I2vError e;
    int rc, ok = 1;
    while ((rc = tfr_next(data, n, &pos, &rec, &len, "fuzz.tfrecords", &e)) == 1) {
        ok &= rec >= data && len <= n && rec + len <= data + n;
        ok &= example(rec, len);
    }
    if (rc < 0) ok &= fuzz_names(&e, "fuzz.tfrecords");
    ok &= example(data, n);
    return ok ? 0 : -1;
}

FUZZ_TARGET(fuzz_tfrecord)
