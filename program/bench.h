/* bench.h: `i2v bench` and `make bench`: speed measurements, one key=value line per result. */
#ifndef I2V_BENCH_H
#define I2V_BENCH_H

/* argv[0] is "bench"; argv[1], if given, picks a sub-benchmark (gemm, conv, ...). Returns the exit status. */
int bench_main(int argc, char **argv);
/* gpubench.c: training steps on the GPU and where their time goes; the memory a stage-1 config needs.
 * argv holds the arguments after the sub-benchmark's name. */
int bench_gpu(int argc, char **argv);
int bench_memory(int argc, char **argv);

#endif
