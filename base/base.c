/* base.c: the invariant check and the allocators of base.h. */
#include "base/base.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

void i2v_fail(const char *file, int line, const char *cond, const char *fmt, ...) {
    fprintf(stderr, "i2v: internal error at %s:%d: %s\n  ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    abort();
}

void *xmalloc(size_t bytes) {
    void *p = malloc(bytes ? bytes : 1);
    I2V_ASSERT(p, "out of memory allocating %zu bytes", bytes);
    return p;
}

void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size ? size : 1);
    I2V_ASSERT(p, "out of memory allocating %zu x %zu bytes", n, size);
    return p;
}
