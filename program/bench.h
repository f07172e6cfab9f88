/* bench.h: `i2v bench` and `make bench`: speed measurements, one key=value line per result. */
#ifndef I2V_BENCH_H
#define I2V_BENCH_H

/* argv[0] is "bench"; argv[1], if given, picks a sub-benchmark (gemm, conv, ...). Returns the exit status. */
int bench_main(int argc, char **argv);

#endif
