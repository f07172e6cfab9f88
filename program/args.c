/* args.c: numbers on the command line, taken whole and in range or refused by name (args.h).
 * What it is not: an option parser; each command walks its own arguments. */
#include "program/args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int arg_int(const char *cmd, const char *opt, const char *s, long long min, long long max, long long *out) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < min || v > max) {
        fprintf(stderr, "i2v %s: %s expects an integer from %lld to %lld, got '%s'\n", cmd, opt, min, max, s);
        return 2;
    }
    *out = v;
    return 0;
}

int arg_u64(const char *cmd, const char *opt, const char *s, uint64_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (end == s || *end || errno == ERANGE || s[strspn(s, " \t")] == '-') {
        fprintf(stderr, "i2v %s: %s expects an integer from 0 to %llu, got '%s'\n", cmd, opt, (unsigned long long)UINT64_MAX,
                s);
        return 2;
    }
    *out = v;
    return 0;
}

int arg_real(const char *cmd, const char *opt, const char *s, double min, double max, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || !isfinite(v) || v < min || v > max) {
        fprintf(stderr, "i2v %s: %s expects a finite number from %g to %g, got '%s'\n", cmd, opt, min, max, s);
        return 2;
    }
    *out = v;
    return 0;
}
