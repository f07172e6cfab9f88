/* err.h: how errors caused by files and user input travel back to the program's boundary.
 *
 * A function that reads a file or user input takes an `I2vError *` and, on failure, fills it with one
 * message that names the file, the field and what was expected (plus a hint when one helps), then returns
 * a non-zero value. The caller decides: the program prints the message and exits non-zero, a test checks
 * it. Invariants of the library itself use I2V_ASSERT instead (tensor.h). */
#ifndef I2V_ERR_H
#define I2V_ERR_H

#include <stdarg.h>
#include <stdio.h>

typedef struct I2vError {
    char msg[1024];
} I2vError;

/* Marks a function whose argument fmt_index is a printf format and whose arguments from first_arg on are
 * its values, so the compiler checks every call (-Wformat); nothing on compilers without the attribute. */
#if defined(__GNUC__) || defined(__clang__)
#define I2V_PRINTF(fmt_index, first_arg) __attribute__((format(printf, fmt_index, first_arg)))
#else
#define I2V_PRINTF(fmt_index, first_arg)
#endif

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

#endif
