/* bench.c: the benchmarks behind `i2v bench`. Placeholder until the GEMM benchmark lands. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

int bench_main(int argc, char **argv) {
    (void)argc; (void)argv;
    fprintf(stderr, "i2v bench: no benchmarks yet\n");
    return 0;
}
