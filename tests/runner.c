/* runner.c: runs every test program given on the command line, shows their output, adds up the
 * "N passed, N failed" line each one ends with, and prints the total. A program that crashes or ends
 * without its summary line counts as one failure. Exit status: 0 only if nothing failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

int main(int argc, char **argv) {
    long passed = 0, failed = 0;
    for (int i = 1; i < argc; i++) {
        printf("== %s\n", argv[i]);
        fflush(stdout);
        FILE *p = popen(argv[i], "r");
        if (!p) { printf("cannot run %s\n", argv[i]); failed++; continue; }
        char line[4096];
        long np = -1, nf = -1;
        while (fgets(line, sizeof line, p)) {
            fputs(line, stdout);
            fflush(stdout);
            long a, b;
            if (sscanf(line, "%ld passed, %ld failed", &a, &b) == 2) { np = a; nf = b; }
        }
        int status = pclose(p);
        if (np < 0 || status == -1 || !WIFEXITED(status) || (WEXITSTATUS(status) != 0 && nf == 0)) {
            printf("%s: crashed or ended without its summary line (status %d)\n", argv[i], status);
            failed++;
            if (np > 0) passed += np;
            if (nf > 0) failed += nf;
            continue;
        }
        passed += np;
        failed += nf;
    }
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed ? 1 : 0;
}
