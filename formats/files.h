/* files.h: whole files in and out: a bounded read, and a write that never leaves a partial file under the
 * final name. */
#ifndef I2V_FILES_H
#define I2V_FILES_H

#include <stddef.h>
#include <stdint.h>
#include "base/base.h"

/* Reads a whole file (at most 1 GiB) into an xmalloc'd buffer. */
int read_file_bytes(const char *path, uint8_t **buf, size_t *n, I2vError *err);
/* Writes path + ".tmp" then renames it to path. */
int write_file_bytes(const char *path, const uint8_t *buf, size_t n, I2vError *err);

#endif
