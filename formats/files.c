/* files.c: whole-file reads (bounded) and writes (through a temporary file renamed into place). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/files.h"

#define MAX_FILE_BYTES ((size_t)1 << 30)

int read_file_bytes(const char *path, uint8_t **buf, size_t *n, I2vError *err) {
    *buf = NULL;
    *n = 0;
    FILE *f = fopen(path, "rb");
    if (!f) return err_set(err, "%s: cannot open for reading: %s", path, strerror(errno));
    size_t cap = 1 << 16, len = 0;
    uint8_t *b = xmalloc(cap);
    for (;;) {
        if (len == cap) {
            if (cap >= MAX_FILE_BYTES) {
                free(b);
                fclose(f);
                return err_set(err, "%s: file is larger than 1 GiB, the most the codecs read", path);
            }
            cap *= 2;
            uint8_t *nb = realloc(b, cap);
            I2V_ASSERT(nb, "out of memory reading %s (%zu bytes)", path, cap);
            b = nb;
        }
        size_t got = fread(b + len, 1, cap - len, f);
        len += got;
        if (got == 0) break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        free(b);
        return err_set(err, "%s: read error", path);
    }
    *buf = b;
    *n = len;
    return 0;
}

int write_file_bytes(const char *path, const uint8_t *buf, size_t n, I2vError *err) {
    size_t pl = strlen(path);
    char *tmp = xmalloc(pl + 5);
    memcpy(tmp, path, pl);
    memcpy(tmp + pl, ".tmp", 5);
    FILE *f = fopen(tmp, "wb");
    if (!f) {
        err_set(err, "%s: cannot open %s for writing: %s", path, tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    size_t put = fwrite(buf, 1, n, f);
    int bad = put != n || fflush(f) != 0;
    if (fclose(f) != 0) bad = 1;
    if (bad || rename(tmp, path) != 0) {
        err_set(err, "%s: write failed (%zu of %zu bytes to %s): %s", path, put, n, tmp, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
