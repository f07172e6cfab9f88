/* i2v.c: the command line of i2v. For now: usage and the benchmarks. */
#include <stdio.h>
#include <string.h>

#include "bench.h"

static void usage(FILE *f) {
    fprintf(f,
            "i2v: stochastic image-to-video synthesis with cINNs (Dorkenwald et al., CVPR 2021), in C.\n"
            "\n"
            "usage: i2v <command> [options]\n"
            "\n"
            "commands:\n"
            "  bench [gemm|conv|...]   speed benchmarks, one key=value line per result\n"
            "  help                    this text\n");
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return 0;
    }
    if (!strcmp(argv[1], "bench")) return bench_main(argc - 1, argv + 1);
    fprintf(stderr, "i2v: unknown command '%s'; run 'i2v help' for the list of commands\n", argv[1]);
    return 2;
}
