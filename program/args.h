/* args.h: numbers on the command line. Each function takes the whole argument or refuses it with a one-line
 * message on stderr naming the command, the option and the range, and returns 2 (a usage error) so that the
 * caller can return it: no silent wrap-around (4294967297 frames), no trailing text ("12x"), no NaN or
 * infinity, where atoi would have read 0 or a prefix. On success they store the value and return 0. */
#ifndef I2V_ARGS_H
#define I2V_ARGS_H

#include <stdint.h>

int arg_int(const char *cmd, const char *opt, const char *s, long long min, long long max, long long *out);
int arg_u64(const char *cmd, const char *opt, const char *s, uint64_t *out);   /* 0 to UINT64_MAX */
int arg_real(const char *cmd, const char *opt, const char *s, double min, double max, double *out);

#endif
