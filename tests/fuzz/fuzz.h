/* fuzz.h: what the fuzz targets share.
 *
 * Each tests/fuzz/fuzz_<name>.c defines `int fuzz_<name>(const uint8_t *data, size_t n)`, which feeds one
 * input to one parser and returns 0, or -1 when the parser broke a promise that is not a crash (a refusal
 * whose message does not name the input, a result that contradicts itself, a round trip that changes the
 * text). Built alone with -DI2V_LIBFUZZER (make fuzz: clang, libFuzzer, AddressSanitizer and
 * UndefinedBehaviorSanitizer) the file is a libFuzzer target that aborts on -1; tests/test_fuzz_replay.c
 * includes every one of them and replays the seed corpora and the saved findings in make test. */
#ifndef I2V_FUZZ_H
#define I2V_FUZZ_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base.h"

/* The refusal names the input (every parser prefixes its messages with the name it is given). */
static inline int fuzz_names(const I2vError *e, const char *name) { return strstr(e->msg, name) != NULL; }

#ifdef I2V_LIBFUZZER
#define FUZZ_TARGET(fn)                                                    \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n);             \
    int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n) {           \
        if (fn(data, n)) abort();                                          \
        return 0;                                                          \
    }
#else
#define FUZZ_TARGET(fn)
#endif

#endif
