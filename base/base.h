/* base.h: what every file of i2v may include, and nothing more.
 *
 * The scalar type `real`, the always-on invariant check I2V_ASSERT, allocation that fails loudly, and the
 * error record that file and user-input errors travel in. It includes no other i2v header, so it sits at
 * the bottom of the layers (program -> models -> op layer -> kernels -> base).
 *
 * Errors: a function that reads a file or user input takes an `I2vError *` and, on failure, fills it with
 * one message that names the file, the field and what was expected (plus a hint when one helps), then
 * returns a non-zero value. The caller decides: the program prints the message and exits non-zero, a test
 * checks it. Invariants of the library itself use I2V_ASSERT instead.
 */
#ifndef I2V_BASE_H
#define I2V_BASE_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

#ifdef __cplusplus   /* the CUDA files (C++) include this header too */
extern "C" {
#endif

/* I2V_CUDA is 1 in the GPU build (make CUDA=1), else 0. Code that calls the GPU backend tests it in a plain
 * `if`, so the plain build compiles the same lines and the compiler drops the calls it can never make. */
#ifndef I2V_CUDA
#define I2V_CUDA 0
#endif

/* `real` is float, or double when compiled with -DI2V_DOUBLE (the build the gradient checks use, so central
 * differences are accurate to about 1e-8). SIMD kernels are float-only. */
#ifdef I2V_DOUBLE
typedef double real;
#else
typedef float real;
#endif

/* Marks a function whose argument fmt_index is a printf format and whose arguments from first_arg on are
 * its values, so the compiler checks every call (-Wformat); nothing on compilers without the attribute. */
#if defined(__GNUC__) || defined(__clang__)
#define I2V_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define I2V_PRINTF(fmt_index, first_arg)
#endif

/* ---- invariants ------------------------------------------------------------------------------------ */
/* Always on (unlike assert, which -DNDEBUG removes). For broken preconditions inside the library only;
 * errors caused by files or user input are reported by the functions that read them. */
void i2v_fail(const char *file, int line, const char *cond, const char *fmt, ...) I2V_PRINTF(4, 5);
#define I2V_ASSERT(cond, ...) \
    do { if (!(cond)) i2v_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); } while (0)

void *xmalloc(size_t bytes);            /* malloc that aborts with a message when memory runs out */
void *xcalloc(size_t n, size_t size);

/* ---- errors from files and user input ---------------------------------------------------------------- */
typedef struct I2vError {
    char msg[1024];
} I2vError;

/* Fills e (if not NULL) and returns -1, so a reader can write `return err_set(e, "...", ...);`. */
static inline int err_set(I2vError *e, const char *fmt, ...) I2V_PRINTF(2, 3);
static inline int err_set(I2vError *e, const char *fmt, ...) {
    if (e) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

#ifdef __cplusplus
}
#endif

#endif
