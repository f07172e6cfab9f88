/* test_readme.c: every command in README.md's code blocks runs as written, on synthetic stand-ins.
 *
 * The commands are read from the README itself (each line of a ```sh block), so the test follows the README:
 * a command this file has no rule for fails the test until a rule says how to run it. Each rule is one of
 *   run as written, in a scratch folder with the stand-in inputs the command expects under the names it uses
 *     (BAIR-like TFRecords made from the synthetic set, a start image, small LPIPS source files);
 *   run scaled down: the same command with a documented change that keeps it within make test's time (the
 *     tiny config instead of bair, a few steps, the demo at a hundredth of its steps);
 *   skipped, with the reason (make test itself; a tool or data that is not here).
 * ./i2v and tools/ are the repository's, reached by absolute paths. Runs in the float build only (the program
 * is the same in both). */
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "datasets/synth.h"
#include "formats/files.h"
#include "program/prepare.h"
#include "shell.h"

static char dir[256], repo[1024];

/* Runs a shell command line in dir (I2V_THREADS=1), output into dir/out.txt; returns the exit status. */
static int sh(const char *fmt, ...) I2V_PRINTF(1, 2);
static int sh(const char *fmt, ...) {
    char setup[300];
    snprintf(setup, sizeof setup, "cd '%s' && export I2V_THREADS=1 &&", dir);
    va_list ap;
    va_start(ap, fmt);
    int rc = shell_vrun("out.txt", setup, fmt, ap);   /* the redirection runs after the cd */
    va_end(ap);
    return rc;
}

static void show_output(void) {
    char cmd[400];
    snprintf(cmd, sizeof cmd, "tail -5 %s/out.txt", dir);
    if (system(cmd) != 0) printf("(no output)\n");
}

/* How one README command is run. */
typedef struct Rule {
    const char *prefix;    /* the command starts with this */
    const char *from, *to; /* scaled down: replace `from` by `to` (NULL: as written) */
    const char *append;    /* scaled down: appended arguments (NULL: none) */
    const char *skip;      /* not run, for this reason */
} Rule;

static const Rule rules[] = {
    {"make && ./i2v demo", "make && ./i2v demo", "./i2v demo", " --scale 0.01", NULL},
    {"make test", NULL, NULL, NULL, "make test is what runs this test"},
    {"./i2v prepare bair", NULL, NULL, NULL, NULL},
    {"./i2v train-", "--config bair", "--config tiny Data.dataset=BAIR", " --steps 2 --eval-batches 1", NULL},
    {"./i2v sample", NULL, NULL, NULL, NULL},
    {"mkdir -p data/iPER", NULL, NULL, NULL, "needs ffmpeg and iPER's videos"},
    {"python3 tools/convert_official.py lpips", NULL, NULL, " --widths 3,4,5,6,7", NULL},
};

/* The stand-ins: BAIR-like TFRecords (three record files of 16 trajectories), LPIPS source files (the small
 * ones of the converter's tests, hence --widths above), and a start image made once the data is prepared. */
static int make_stand_ins(void) {
    char path[1400];
    SynthConfig sc;
    DataConfig dc;
    data_config_default(&dc);
    synth_config_from(&dc, &sc);
    I2vError e;
    snprintf(path, sizeof path, "%s/bair_robot_pushing_dataset_v0", dir);
    if (synth_export_tfrecords(&sc, 5, DATA_TRAIN, 48, 16, path, &e)) {
        printf("stand-in TFRecords: %s\n", e.msg);
        return -1;
    }
    return sh("cp %s/tests/data/convert/lpips_lin.pth vgg.pth && cp %s/tests/data/convert/vgg16_small.pth "
              "vgg16-397923af.pth && mkdir -p models", repo, repo);
}

/* What the README asks the reader to do by hand between commands, done here. */
static void after(const char *cmd) {
    if (!strncmp(cmd, "./i2v prepare bair", 18)) {
        /* "then move records to eval/ and test/", and a start frame for sample */
        check(sh("mkdir -p data/bair/eval data/bair/test && mv data/bair/train/traj_16_to_31 data/bair/eval/ && "
                 "mv data/bair/train/traj_32_to_47 data/bair/test/ && cp data/bair/test/traj_32_to_47/1/0.png "
                 "start.png") == 0,
              "the README's moves of records to eval/ and test/");
    }
}

static int starts(const char *s, const char *prefix) { return !strncmp(s, prefix, strlen(prefix)); }

int main(void) {
    if (is_double_build()) {   /* the program is the same in both builds: run once */
        check(1, "run in the float build");
        return check_summary("test_readme");
    }
    if (!getcwd(repo, sizeof repo) || access("./i2v", X_OK) != 0) {
        check(0, "./i2v exists (make test builds it first)");
        return check_summary("test_readme");
    }
    snprintf(dir, sizeof dir, "/tmp/i2v_test_readme_%d", (int)getpid());
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rm -rf %s && mkdir -p %s", dir, dir);
    if (system(cmd) != 0 || !check(make_stand_ins() == 0, "stand-in inputs")) return check_summary("test_readme");
    int python = system("python3 -c 'import zipfile' >/dev/null 2>&1") == 0;

    FILE *f = fopen("README.md", "r");
    if (!check(f != NULL, "README.md is readable")) return check_summary("test_readme");
    char line[4096];
    int in_sh = 0, ncommands = 0, nrun = 0, lpips_made = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\r\n")] = 0;
        if (starts(line, "```")) {
            in_sh = !in_sh && (!strcmp(line, "```sh") || !strcmp(line, "```bash"));
            continue;
        }
        if (!in_sh || !line[0]) continue;
        char *hash = strstr(line, "  #");   /* a trailing comment */
        if (hash) *hash = 0;
        for (size_t n = strlen(line); n && line[n - 1] == ' '; n--) line[n - 1] = 0;
        ncommands++;
        /* the official configs train with LPIPS: their stage-1 and conditioning-AE commands give the weights,
         * made by a command above them (once the README's first train command lacked --lpips) */
        if ((starts(line, "./i2v train-stage1") || starts(line, "./i2v train-cond-ae")) && !strstr(line, "--config tiny"))
            check(strstr(line, "--lpips ") != NULL, "a paper config trains with LPIPS: --lpips in: %s", line);
        const char *lp = strstr(line, "--lpips ");
        if (lp && !starts(line, "python3"))
            check(lpips_made, "the LPIPS weights %s are made by a README command above their first use", lp + 8);
        if (strstr(line, "convert_official.py lpips")) lpips_made = 1;
        const Rule *r = NULL;
        for (size_t i = 0; i < sizeof rules / sizeof *rules && !r; i++)
            if (starts(line, rules[i].prefix)) r = &rules[i];
        if (!check(r != NULL, "README command without a rule in test_readme.c (add one): %s", line)) continue;
        if (r->skip || (starts(line, "python3") && !python)) {
            printf("skipped: %s (%s)\n", line, r->skip ? r->skip : "no python3");
            continue;
        }
        /* the command, scaled down where the rule says, with the repository's ./i2v and tools/ */
        char scaled[2048], final[4096];
        const char *at = r->from ? strstr(line, r->from) : NULL;
        if (r->from && !check(at != NULL, "the rule's '%s' is in: %s", r->from, line)) continue;
        if (at)
            snprintf(scaled, sizeof scaled, "%.*s%s%s%s", (int)(at - line), line, r->to, at + strlen(r->from),
                     r->append ? r->append : "");
        else
            snprintf(scaled, sizeof scaled, "%s%s", line, r->append ? r->append : "");
        size_t k = 0;
        for (const char *p = scaled; *p && k + 1100 < sizeof final;) {
            if (starts(p, "./i2v ") && (p == scaled || p[-1] == ' ')) {
                k += (size_t)snprintf(final + k, sizeof final - k, "%s/i2v ", repo);
                p += 6;
            } else if (starts(p, "tools/") && (p == scaled || p[-1] == ' ')) {
                k += (size_t)snprintf(final + k, sizeof final - k, "%s/tools/", repo);
                p += 6;
            } else {
                final[k++] = *p++;
            }
        }
        final[k] = 0;
        int rc = sh("%s", final);
        if (!check(rc == 0, "README command runs (exit %d): %s", rc, final)) show_output();
        nrun++;
        after(line);
    }
    fclose(f);
    check(ncommands >= 5 && nrun >= 5, "the README's commands were found and run (%d of %d)", nrun, ncommands);
    if (check_nfailed == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
        if (system(cmd) != 0) printf("could not remove %s\n", dir);
    } else {
        printf("test_readme: the files are kept in %s\n", dir);
    }
    return check_summary("test_readme");
}
