/* key_value.h: the value of `key` in a file of key=value lines (a report, an expected-values file), as the
 * tests that read i2v's reports and committed references look it up. NaN when the file or the key is missing. */
#ifndef I2V_KEY_VALUE_H
#define I2V_KEY_VALUE_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static inline double key_value_in(const char *path, const char *key) {
    FILE *f = fopen(path, "r");
    char line[1024];
    double v = NAN;
    size_t k = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, key, k) && line[k] == '=') v = atof(line + k + 1);
    if (f) fclose(f);
    return v;
}

#endif
