/* shell.h: how the tests that drive ./i2v, make or a Python tool as a user would run a command line, send
 * its output to a file and read that file back. One copy for test_program, test_demo, test_readme,
 * test_protocols and test_convert_nets. */
#ifndef I2V_TESTS_SHELL_H
#define I2V_TESTS_SHELL_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "base/base.h"
#include "formats/files.h"

/* Runs `setup` (an export or a cd, or "") and then the command line fmt..., stdout and stderr into out_path;
 * returns the command's exit status, 128 when it was killed by a signal. */
static inline int shell_vrun(const char *out_path, const char *setup, const char *fmt, va_list ap) {
    char cmd[4096], full[5200];
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    snprintf(full, sizeof full, "%s { %s ; } > '%s' 2>&1", setup, cmd, out_path);
    int st = system(full);
    return st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : 128;
}

static inline int shell_run(const char *out_path, const char *setup, const char *fmt, ...) I2V_PRINTF(3, 4);
static inline int shell_run(const char *out_path, const char *setup, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int rc = shell_vrun(out_path, setup, fmt, ap);
    va_end(ap);
    return rc;
}

/* A whole text file, NUL-terminated (free it); NULL when it cannot be read. */
static inline char *shell_read_text(const char *path) {
    uint8_t *buf;
    size_t n;
    I2vError e;
    if (read_file_bytes(path, &buf, &n, &e)) return NULL;
    char *t = xmalloc(n + 1);
    memcpy(t, buf, n);
    t[n] = 0;
    if (n) free(buf);
    return t;
}

/* Does the file at path contain s? */
static inline int shell_file_has(const char *path, const char *s) {
    char *t = shell_read_text(path);
    int found = t && strstr(t, s) != NULL;
    free(t);
    return found;
}

#endif
