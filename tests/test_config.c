/* test_config.c: the YAML subset reader: every official config parses, values come out typed, overrides
 * replace values, unknown keys and malformed input give errors that name the file, line and key. */
#include <stddef.h>
#include <sys/resource.h>

#include "check.h"
#include "program/config.h"
#include "tensor.h"

typedef struct Demo {
    int n_epochs, bs, spectral, nch;
    double lr, w_kl;
    int channels[8];
    char dataset[32];
} Demo;

static const ConfigField demo_fields[] = {
    {"Training.n_epochs", F_INT, offsetof(Demo, n_epochs), 0, 0},
    {"Training.bs", F_INT, offsetof(Demo, bs), 0, 0},
    {"Training.lr", F_DOUBLE, offsetof(Demo, lr), 0, 0},
    {"Training.w_kl", F_DOUBLE, offsetof(Demo, w_kl), 0, 0},
    {"Decoder.spectral_norm", F_BOOL, offsetof(Demo, spectral), 0, 0},
    {"Encoder.channels", F_INT_LIST, offsetof(Demo, channels), 8, offsetof(Demo, nch)},
    {"Data.dataset", F_STRING, offsetof(Demo, dataset), 32, 0},
};

static const char *official[] = {
    "configs/stage1_VAE/bair_config.yaml",       "configs/stage1_VAE/iPER_config.yaml",
    "configs/stage1_VAE/landscape_config.yaml",  "configs/stage1_VAE/DTDB_clouds_config.yaml",
    "configs/stage1_VAE/DTDB_fire_config.yaml",  "configs/stage1_VAE/DTDB_vegetation_config.yaml",
    "configs/stage1_VAE/DTDB_waterfall_config.yaml", "configs/stage2_cINN/bair_config.yaml",
    "configs/stage2_cINN/iPER_config.yaml",      "configs/stage2_cINN/landscape_config.yaml",
    "configs/stage2_cINN/DTDB_fire_config.yaml", "configs/stage2_cINN_AE/bair_config.yaml",
    "configs/stage2_cINN_AE/landscape_config.yaml", "configs/stage2_cINN_AE/DTDB_waterfall_config.yaml",
};

static void test_official_configs(void) {
    int ok = 1;
    for (size_t i = 0; i < sizeof official / sizeof *official; i++) {
        Config cfg;
        I2vError e;
        if (config_load(&cfg, official[i], &e)) {
            check(0, "%s", e.msg);
            ok = 0;
            continue;
        }
        /* a round trip through config_to_yaml gives the same tree */
        char *text = config_to_yaml(&cfg);
        Config again;
        int same = !config_parse(&again, text, "round trip", &e);
        if (same) {
            char *text2 = config_to_yaml(&again);
            same = !strcmp(text, text2);
            free(text2);
            config_free(&again);
        }
        check(same, "%s: serialising and re-reading gives the same config", official[i]);
        free(text);
        config_free(&cfg);
    }
    check(ok, "every official config parses");
}

static void test_values(void) {
    Config cfg;
    I2vError e;
    check(!config_load(&cfg, "configs/stage1_VAE/bair_config.yaml", &e), "load bair stage-1 config");
    Demo d = {0};
    check(!config_bind(&cfg, demo_fields, 7, &d, &e), "bind: %s", e.msg);
    check(d.n_epochs == 55 && d.bs == 10 && d.lr == 2e-4 && d.w_kl == 1e-5 && d.spectral == 1,
          "scalars: n_epochs %d bs %d lr %g w_kl %g spectral %d", d.n_epochs, d.bs, d.lr, d.w_kl, d.spectral);
    check(d.nch == 5 && d.channels[0] == 64 && d.channels[4] == 512, "a flow list of ints");
    check(!strcmp(d.dataset, "BAIR"), "a quoted string ('%s')", d.dataset);
    CfgNode *hue = config_find(&cfg, "Data.Augmentation.hue");
    check(hue && !strcmp(hue->text, "0"), "a three-level path");
    check(config_check_unused(&cfg, &e) != 0 && strstr(e.msg, "unknown key"), "keys no binding read are reported");
    /* overrides */
    check(!config_override(&cfg, "Training.lr=1e-4", &e), "override an existing key");
    check(!config_override(&cfg, "Encoder.channels=[16, 32, 64, 64, 64]", &e), "override a list");
    check(!config_bind(&cfg, demo_fields, 7, &d, &e) && d.lr == 1e-4 && d.channels[0] == 16, "overrides are bound");
    check(!config_override(&cfg, "Training.bs=ten", &e), "a non-numeric override is stored");
    check(config_bind(&cfg, demo_fields, 7, &d, &e) != 0 && strstr(e.msg, "Training.bs") &&
              strstr(e.msg, "expected an integer") && strstr(e.msg, "ten"),
          "and then rejected by name: %s", e.msg);
    check(config_override(&cfg, "T:raining.lr=1", &e) != 0 && strstr(e.msg, "not a key name"),
          "an override whose key is not a name is refused (it would not write back): %s", e.msg);
    check(config_override(&cfg, "Training.lr", &e) != 0 && strstr(e.msg, "Section.key=value"),
          "an override without '=' says what to type");
    config_free(&cfg);
}

static void test_unknown_and_malformed(void) {
    Config cfg;
    I2vError e;
    const char *text = "Training:\n  n_epochs: 3\n  lr: 2e-4   # comment\n  bs: 4\n  w_kl: 1e-6\n  n_epoch: 5\n";
    check(!config_parse(&cfg, text, "t.yaml", &e), "parse: %s", e.msg);
    Demo d = {0};
    config_bind(&cfg, demo_fields, 7, &d, &e);
    check(config_check_unused(&cfg, &e) != 0 && strstr(e.msg, "Training.n_epoch") && strstr(e.msg, "t.yaml:6"),
          "a misspelt key is rejected by name and line: %s", e.msg);
    config_free(&cfg);
    struct {
        const char *text, *want;
    } bad[] = {
        {"A:\n\tb: 1\n", "tabs"},
        {"A:\n  b: 1\n   c: 2\n", "indentation"},
        {"A: [1, 2\n", "']'"},
        {"A:\n  b: 1\n  - 1\n", "must follow"},
        {"A:\n  - [1]\n", "single values"},
        {"A: 1\nA: 2\n", "twice"},
        {"just text\n", "key: value"},
        {"A: 'open\n", "unterminated"},
        {"a b: 1\n", "not a key name"},
        {"A:\n  b:\n  - 1\n   c: 2\n", "inside the list"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        int rc = config_parse(&cfg, bad[i].text, "bad.yaml", &e);
        check(rc != 0 && strstr(e.msg, bad[i].want) && strstr(e.msg, "bad.yaml:"), "malformed input %zu: %s", i,
              rc ? e.msg : "accepted");
        if (!rc) config_free(&cfg);
    }
    check(config_load(&cfg, "tests/no/such/file.yaml", &e) != 0 && strstr(e.msg, "no/such"),
          "a missing file names the file: %s", e.msg);
}

/* OmegaConf.save writes lists as block lists: they read as the flow lists of the official files */
static void test_block_lists(void) {
    Config cfg;
    I2vError e;
    const char *text = "Encoder:\n  channels:\n  - 64\n  - 128\n  z_dim: 64\nData:\n  dataset: BAIR\n";
    check(!config_parse(&cfg, text, "omegaconf.yaml", &e), "a block list parses: %s", e.msg);
    CfgNode *ch = config_find(&cfg, "Encoder.channels"), *z = config_find(&cfg, "Encoder.z_dim");
    check(ch && ch->kind == CFG_LIST && ch->n == 2 && !strcmp(ch->items[1]->text, "128") && z && !strcmp(z->text, "64"),
          "its items, and the key after it, are read");
    config_free(&cfg);
}

/* Peak memory of this process so far, in MB. */
static double peak_mb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss / 1024.0;
}

/* Input a hostile user could type: nested lists where integers belong (once a crash), lists nested tens of
 * thousands deep (once gigabytes of copies), sections too deep or too wide. */
static void test_hostile(void) {
    Config cfg;
    I2vError e;
    Demo d = {0};
    check(!config_parse(&cfg, "Encoder:\n  channels: [[1]]\n", "nested.yaml", &e), "a nested list parses: %s", e.msg);
    check(config_bind(&cfg, demo_fields, 7, &d, &e) != 0 && strstr(e.msg, "Encoder.channels") &&
              strstr(e.msg, "item 1") && strstr(e.msg, "got a list") && strstr(e.msg, "nested.yaml:2"),
          "a list where an integer belongs is refused by name: %s", e.msg);
    config_free(&cfg);
    config_new(&cfg, "override");
    check(!config_override(&cfg, "Encoder.channels=[7, [1]]", &e) && config_bind(&cfg, demo_fields, 7, &d, &e) != 0 &&
              strstr(e.msg, "item 2") && strstr(e.msg, "command line"),
          "the same on the command line: %s", e.msg);
    config_free(&cfg);
    /* nested lists read as nested lists, quotes keep their commas and brackets, and they write back */
    const char *text = "A: [1, [2, [3, 4]], 'a,b]', \"x\\\"y\", []]\n";
    if (check(!config_parse(&cfg, text, "lists.yaml", &e), "nested flow lists parse: %s", e.msg)) {
        CfgNode *a = config_find(&cfg, "A");
        check(a && a->n == 5 && a->items[1]->kind == CFG_LIST && a->items[1]->n == 2 &&
                  a->items[1]->items[1]->kind == CFG_LIST && !strcmp(a->items[1]->items[1]->items[1]->text, "4") &&
                  !strcmp(a->items[2]->text, "a,b]") && !strcmp(a->items[3]->text, "x\"y") &&
                  a->items[4]->kind == CFG_LIST && a->items[4]->n == 0,
              "their structure is kept");
        char *yaml = config_to_yaml(&cfg);
        check(!strcmp(yaml, "A: [1, [2, [3, 4]], 'a,b]', 'x\"y', []]\n"), "and written back: %s", yaml);
        free(yaml);
        config_free(&cfg);
    }
    /* what is written reads back the same: a block item with a comma, a '\r' the reader trims, an override
     * with a comment sign or spaces; a line break in an override is refused */
    const char *odd = "A:\n  b:\n  - a,b\n  - \r2\n";
    if (check(!config_parse(&cfg, odd, "odd.yaml", &e), "parse odd.yaml: %s", e.msg)) {
        check(!config_override(&cfg, "A.c= x #y ", &e), "override with spaces and ' #'");
        char *once = config_to_yaml(&cfg);
        Config again;
        if (check(!config_parse(&again, once, "again", &e), "reread: %s", e.msg)) {
            char *twice = config_to_yaml(&again);
            CfgNode *b2 = config_find(&again, "A.b"), *c2 = config_find(&again, "A.c");
            check(!strcmp(once, twice) && b2 && b2->n == 2 && !strcmp(b2->items[0]->text, "a,b") &&
                      !strcmp(b2->items[1]->text, "2") && c2 && !strcmp(c2->text, "x #y"),
                  "written and read back unchanged: %s", once);
            free(twice);
            config_free(&again);
        }
        free(once);
        char deep[400];
        int k = 0;
        for (int i = 0; i < 40; i++) k += sprintf(deep + k, "s%d.", i);
        sprintf(deep + k, "x=1");
        check(config_override(&cfg, deep, &e) != 0 && strstr(e.msg, "nested too deeply"),
              "an override 40 sections deep is refused (the file could not be read back): %s", e.msg);
        check(config_override(&cfg, "A.d=1\nB: 2", &e) != 0 && strstr(e.msg, "line break"),
              "a line break in an override is refused: %s", e.msg);
        config_free(&cfg);
    }
    /* 60,000 nested '[' on one line: refused at once, in little memory */
    size_t n = 60000;
    char *deep = xmalloc(n + 8);
    memcpy(deep, "A: ", 3);
    memset(deep + 3, '[', n);
    deep[3 + n] = 0;
    double t0 = now_seconds(), m0 = peak_mb();
    int rc = config_parse(&cfg, deep, "deep.yaml", &e);
    double took = now_seconds() - t0, grew = peak_mb() - m0;
    check(rc != 0 && strstr(e.msg, "nested too deeply") && strstr(e.msg, "deep.yaml:1"), "deep lists refused: %s",
          rc ? e.msg : "accepted");
    check(took < 1 && grew < 50, "in %.3f s and %.1f MB more memory", took, grew);
    for (size_t i = 0; i < n; i++) deep[3 + i] = i % 2 ? ']' : '[';   /* [][][]...: wide, not deep */
    memcpy(deep + 3 + n, "]", 2);
    deep[3] = '[';
    rc = config_parse(&cfg, deep, "wide.yaml", &e);
    check(rc != 0 && strstr(e.msg, "after the list"), "text after a list is refused: %s", rc ? e.msg : "accepted");
    if (!rc) config_free(&cfg);
    free(deep);
    /* sections nested too deeply, and a section with thousands of keys (each looked up among its siblings) */
    char *text2 = xmalloc(200000);
    size_t k = 0;
    for (int i = 0; i < 40; i++) k += (size_t)sprintf(text2 + k, "%*sk%d:\n", 2 * i, "", i);
    rc = config_parse(&cfg, text2, "sections.yaml", &e);
    check(rc != 0 && strstr(e.msg, "nested too deeply"), "sections 40 deep are refused: %s", rc ? e.msg : "accepted");
    k = (size_t)sprintf(text2, "A:\n");
    for (int i = 0; i < 5000; i++) k += (size_t)sprintf(text2 + k, "  k%d: 1\n", i);
    t0 = now_seconds();
    rc = config_parse(&cfg, text2, "wide.yaml", &e);
    check(rc != 0 && strstr(e.msg, "keys in one section") && now_seconds() - t0 < 1, "5000 keys in a section: %s",
          rc ? e.msg : "accepted");
    free(text2);
    /* a file far larger than any config is refused before it is read */
    FILE *f = fopen("/tmp/i2v_test_config_big.yaml", "w");
    if (f) {
        for (int i = 0; i < 300000; i++) fprintf(f, "# padding line %d\n", i);
        fclose(f);
        rc = config_load(&cfg, "/tmp/i2v_test_config_big.yaml", &e);
        check(rc != 0 && strstr(e.msg, "not a config file"), "a 5 MB file is not read as a config: %s",
              rc ? e.msg : "accepted");
        if (!rc) config_free(&cfg);
        remove("/tmp/i2v_test_config_big.yaml");
    }
}

/* config_first_difference: what --resume compares */
static void test_difference(void) {
    Config a, b;
    I2vError e;
    const char *ta = "Training:\n  lr: 1e-3\n  bs: 4\nEncoder:\n  channels: [1, 2]\n";
    const char *tb = "Training:\n  lr: 1e-4\n  bs: 4\nEncoder:\n  channels: [1, 3]\n";
    const char *tc = "Training:\n  lr: 1e-4\n  bs: 4\nEncoder:\n  channels: [1, 2]\n  z_dim: 8\n";
    const char *skip[] = {"Training.lr", NULL};
    char path[128];
    if (!check(!config_parse(&a, ta, "a", &e) && !config_parse(&b, tb, "b", &e), "parse: %s", e.msg)) return;
    check(config_first_difference(&a, &b, NULL, path, sizeof path) && !strcmp(path, "Training.lr"), "first: %s", path);
    check(config_first_difference(&a, &b, skip, path, sizeof path) && !strcmp(path, "Encoder.channels"),
          "skipping Training.lr: %s", path);
    config_free(&b);
    check(!config_parse(&b, tc, "c", &e), "parse c");
    check(config_first_difference(&a, &b, skip, path, sizeof path) && !strcmp(path, "Encoder.z_dim"),
          "a key present on one side only: %s", path);
    check(!config_first_difference(&a, &a, NULL, path, sizeof path), "a config equals itself");
    config_free(&a);
    config_free(&b);
}

int main(void) {
    test_difference();
    test_hostile();
    test_block_lists();
    test_official_configs();
    test_values();
    test_unknown_and_malformed();
    return check_summary("test_config");
}
