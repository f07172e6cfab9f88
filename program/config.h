/* config.h: the official YAML config files, read as they are, and bound to C structs.
 *
 * The parser reads the subset of YAML the official configs use: nested maps by indentation, scalars
 * (numbers such as 2e-4, True/False, quoted or bare strings), flow lists ([64, 128]) and # comments.
 * Binding copies the values of known keys into a struct through a table of fields; every key of the file
 * must be known to some table (keys the official code reads but i2v does not need are listed as ignored),
 * so a misspelt key is an error that names it. Command-line overrides (`Training.lr=1e-4`) replace or add
 * a value before binding. Errors name the file, the line, the key and what was expected. */
#ifndef I2V_CONFIG_H
#define I2V_CONFIG_H

#include <stddef.h>

#include "base/base.h"

typedef enum CfgKind { CFG_SCALAR, CFG_LIST, CFG_MAP } CfgKind;

typedef struct CfgNode CfgNode;
struct CfgNode {
    char *key;          /* NULL for list items */
    CfgKind kind;
    char *text;         /* scalars: the value without quotes */
    int quoted;         /* the scalar was quoted: always a string */
    CfgNode **items;    /* map entries or list items, in file order */
    int n, cap;
    int line;           /* where it was defined (0 for command-line overrides) */
    int used;           /* set when a binding read it */
};

typedef struct Config {
    CfgNode *root;      /* a map */
    char *path;         /* for messages */
} Config;

/* Parsing. config_parse takes the text itself (path is only for messages). */
int config_parse(Config *cfg, const char *text, const char *path, I2vError *e);
int config_load(Config *cfg, const char *path, I2vError *e);
void config_free(Config *cfg);
/* "Section.key=value" (value in the same syntax as the file, lists included); creates the key if absent. */
int config_override(Config *cfg, const char *assignment, I2vError *e);
/* The node at a dotted path, or NULL. */
CfgNode *config_find(const Config *cfg, const char *path);
/* The config as YAML text (for model folders and checkpoints); the caller frees it. */
char *config_to_yaml(const Config *cfg);
/* The dotted path of the first value that differs between a and b (present in one only, or written
 * differently), skipping the paths in skip (NULL-terminated); returns 1 and fills path, or 0 when they
 * agree. */
int config_first_difference(const Config *a, const Config *b, const char *const *skip, char *path, size_t cap);

/* Binding to a struct. */
typedef enum FieldType {
    F_INT,        /* int */
    F_DOUBLE,     /* double */
    F_BOOL,       /* int, 0 or 1 */
    F_STRING,     /* char[size] */
    F_INT_LIST,   /* int[size], with the count written to the int at count_offset */
    F_IGNORE      /* a key the official code has that i2v does not use: accepted, not read */
} FieldType;

typedef struct ConfigField {
    const char *path;      /* dotted, e.g. "Training.lr" */
    FieldType type;
    size_t offset;         /* offsetof(struct, member) */
    size_t size;           /* F_STRING: buffer bytes; F_INT_LIST: capacity */
    size_t count_offset;   /* F_INT_LIST: offsetof the element count */
} ConfigField;

/* Copies every field present in the config into dst (absent fields keep dst's values: the defaults). */
int config_bind(Config *cfg, const ConfigField *fields, int nfields, void *dst, I2vError *e);
/* After all bindings: an error naming the first key that no binding read. */
int config_check_unused(const Config *cfg, I2vError *e);
/* The reverse of config_bind: adds every (non-ignored) field of src to cfg (an empty config made with
 * config_new, or one that already has sections), so a struct can be saved as YAML that binds back to it. */
void config_new(Config *cfg, const char *name);
void config_add_struct(Config *cfg, const ConfigField *fields, int nfields, const void *src);

#endif
