/* fuzz_config.c: the YAML config reader: parsing, a command-line override, and binding to the tables of every
 * stage (the official keys, i2v's own, the ignored ones, the size bounds and checks). The input's first line is
 * the override ("Section.key=value"), the rest the YAML text. A parsed config writes back to YAML that parses
 * to the same text again. fuzz.h says how it runs. */
#include "tests/fuzz/fuzz.h"

#include "program/setup.h"

int fuzz_config(const uint8_t *data, size_t n) {
    char *text = malloc(n + 1);
    if (!text) return 0;
    memcpy(text, data, n);
    text[n] = 0;
    if (strlen(text) != n) {   /* a NUL inside: config_load refuses such files before parsing */
        free(text);
        return 0;
    }
    char *nl = strchr(text, '\n'), *yaml = nl ? nl + 1 : text + n;
    if (nl) *nl = 0;
    Config cfg;
    I2vError e;
    int ok = 1;
    if (config_parse(&cfg, yaml, "fuzz.yaml", &e)) {
        free(text);
        return fuzz_names(&e, "fuzz.yaml") ? 0 : -1;
    }
    if (nl && config_override(&cfg, text, &e) == 0) {
        char *once = config_to_yaml(&cfg);
        Config again;
        if (config_parse(&again, once, "again.yaml", &e)) {
            ok = 0;   /* what the writer wrote, the reader must read */
        } else {
            char *twice = config_to_yaml(&again);
            ok = !strcmp(once, twice);
            free(twice);
            for (int kind = STAGE1; kind <= STAGE2; kind++) {
                StageSetup s;
                if (setup_from_yaml((StageKind)kind, once, "fuzz.yaml", &s, &e) == 0) setup_free(&s);
                else ok &= fuzz_names(&e, "fuzz.yaml");
            }
            config_free(&again);
        }
        free(once);
    }
    config_free(&cfg);
    free(text);
    return ok ? 0 : -1;
}

FUZZ_TARGET(fuzz_config)
