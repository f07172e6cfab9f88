/* i2v.c: the command line of i2v. One binary, one subcommand per job of the official repository.
 *
 * What it is: argument parsing, --help for every command, and the small drivers (inspect, prepare, bench)
 * that need nothing but the libraries. The training loops, sampling, transfer, control, evaluation and the
 * demo live in run.c (they share the model folder and the checkpoint logic).
 * What it is not: where any network or kernel is defined.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "safetensors.h"

/* ---- inspect: what a checkpoint holds ----------------------------------------------------------------- */

static int cmd_inspect(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        printf("usage: i2v inspect FILE.safetensors [--values]\n"
               "  Lists the tensors (name, dtype, shape), the parameter count, the metadata (config, training\n"
               "  state) of a checkpoint or model file. --values also prints the first values of each tensor.\n");
        return argc < 2 ? 2 : 0;
    }
    int values = argc > 2 && !strcmp(argv[2], "--values");
    StFile f;
    I2vError e;
    if (st_open(&f, argv[1], &e)) {
        fprintf(stderr, "i2v inspect: %s\n", e.msg);
        return 1;
    }
    size_t total = 0;
    printf("%s: %zu tensors, %zu bytes\n", argv[1], f.n, f.size);
    for (size_t i = 0; i < f.n; i++) {
        const StEntry *t = &f.entries[i];
        char shape[128] = "(";
        size_t k = 1;
        for (int d = 0; d < t->ndim && k < sizeof shape - 16; d++)
            k += (size_t)snprintf(shape + k, sizeof shape - k, d ? ", %zu" : "%zu", t->shape[d]);
        snprintf(shape + k, sizeof shape - k, ")");
        printf("  %-60s %-5s %s\n", t->name, st_dtype_name(t->dtype), shape);
        if (t->dtype == ST_F32 || t->dtype == ST_F16 || t->dtype == ST_BF16 || t->dtype == ST_F64) total += t->numel;
        if (values && t->numel) {
            Tensor *v = st_read_new(&f, t->name, t->dtype == ST_I64 ? DT_I64 : DT_REAL, &e);
            if (v) {
                printf("      ");
                for (size_t j = 0; j < v->numel && j < 6; j++) {
                    if (v->dtype == DT_I64) printf(" %lld", (long long)((int64_t *)v->ibuf)[j]);
                    else printf(" %.6g", (double)v->data[j]);
                }
                printf("%s\n", v->numel > 6 ? " ..." : "");
                tensor_free(v);
            }
        }
    }
    printf("floating-point elements: %zu\n", total);
    if (f.nmeta) printf("metadata:\n");
    for (size_t i = 0; i < f.nmeta; i++) {
        const char *v = f.meta[i].value;
        if (strchr(v, '\n')) printf("  %s:\n    %.*s...\n", f.meta[i].key, (int)(strchr(v, '\n') - v), v);
        else printf("  %s: %s\n", f.meta[i].key, v);
    }
    st_close(&f);
    return 0;
}

/* ---- the command table ------------------------------------------------------------------------------------ */

typedef struct Command {
    const char *name;
    int (*run)(int argc, char **argv);   /* argv[0] is the command's name */
    const char *summary;
} Command;

static int cmd_bench(int argc, char **argv) { return bench_main(argc, argv); }

static const Command commands[] = {
    {"inspect", cmd_inspect, "list the tensors, config and training state of a checkpoint"},
    {"bench", cmd_bench, "speed benchmarks (gemm, conv, cinn, ae), one key=value line per result"},
};

static void usage(FILE *f) {
    fprintf(f,
            "i2v: stochastic image-to-video synthesis with cINNs (Dorkenwald et al., CVPR 2021), in C.\n"
            "\n"
            "usage: i2v <command> [options]      (i2v <command> --help for each)\n"
            "\n"
            "commands:\n");
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        fprintf(f, "  %-10s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "help") || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        usage(stdout);
        return argc < 2 ? 2 : 0;
    }
    for (size_t i = 0; i < sizeof commands / sizeof *commands; i++)
        if (!strcmp(argv[1], commands[i].name)) return commands[i].run(argc - 1, argv + 1);
    fprintf(stderr, "i2v: unknown command '%s'; run 'i2v help' for the list of commands\n", argv[1]);
    return 2;
}
