/* check.h: the tiny test harness every test program uses.
 *
 * check(ok, fmt, ...) counts one test; a failure prints its message with the source line. check_close
 * compares numbers with a tolerance that is safe near zero: |got - want| <= atol + rtol * max(|got|, |want|).
 * check_summary() prints the closing "N passed, N failed" line and returns the exit status.
 * quick_mode() is true when I2V_QUICK=1: slow learning tests skip themselves (SAN and PORTABLE runs). */
#ifndef I2V_CHECK_H
#define I2V_CHECK_H

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static int check_npassed, check_nfailed;

#if defined(__GNUC__) || defined(__clang__)
__attribute__((format(printf, 4, 5)))
#endif
static inline int check_at(const char *file, int line, int ok, const char *fmt, ...) {
    if (ok) { check_npassed++; return 1; }
    check_nfailed++;
    printf("FAIL %s:%d: ", file, line);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return 0;
}
#define check(ok, ...) check_at(__FILE__, __LINE__, (ok), __VA_ARGS__)

static inline int close_enough(double got, double want, double atol, double rtol) {
    if (isnan(got) || isnan(want)) return 0;
    double m = fabs(got) > fabs(want) ? fabs(got) : fabs(want);
    return fabs(got - want) <= atol + rtol * m;
}
#define check_close(got, want, atol, rtol, what) \
    check_at(__FILE__, __LINE__, close_enough((got), (want), (atol), (rtol)), \
             "%s: got %.9g, want %.9g", (what), (double)(got), (double)(want))

static inline int quick_mode(void) {
    const char *q = getenv("I2V_QUICK");
    return q && q[0] == '1';
}

static inline int is_double_build(void) {
#ifdef I2V_DOUBLE
    return 1;
#else
    return 0;
#endif
}

static inline double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + 1e-9 * ts.tv_nsec;
}

static inline int check_summary(const char *program) {
    printf("%d passed, %d failed (%s, %s)\n", check_npassed, check_nfailed, program,
           is_double_build() ? "double" : "float");
    return check_nfailed ? 1 : 0;
}

#endif
