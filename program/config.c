/* config.c: a reader for the subset of YAML the official configs use, and binding to C structs.
 *
 * What it is: nested maps by indentation, `key: value` scalars, quoted strings, flow lists `[a, b]`,
 * comments; dotted-path lookup, command-line overrides, serialisation back to YAML, and a table-driven
 * binding that rejects unknown keys by name (with a suggestion when a known key is close).
 * Block lists of scalars ("key:" then "- item" lines, as OmegaConf.save writes the configs saved beside
 * official checkpoints) are read as lists too.
 * What it is not: a general YAML parser (no anchors, nested block lists, multi-line strings or documents).
 * The official configs use none of these; a file that does gets an error naming the line.
 */
#include "program/config.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "formats/files.h"
#include "tensor.h"   /* xmalloc */

/* ---- nodes ------------------------------------------------------------------------------------------ */

static char *dup_range(const char *s, size_t n) {
    char *d = xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

static CfgNode *node_new(CfgKind kind, const char *key, int line) {
    CfgNode *n = xcalloc(1, sizeof *n);
    n->kind = kind;
    n->key = key ? dup_range(key, strlen(key)) : NULL;
    n->line = line;
    return n;
}

static void node_add(CfgNode *parent, CfgNode *child) {
    if (parent->n == parent->cap) {
        parent->cap = parent->cap ? 2 * parent->cap : 8;
        parent->items = realloc(parent->items, (size_t)parent->cap * sizeof *parent->items);
        I2V_ASSERT(parent->items, "out of memory");
    }
    parent->items[parent->n++] = child;
}

static void node_free(CfgNode *n) {
    if (!n) return;
    for (int i = 0; i < n->n; i++) node_free(n->items[i]);
    free(n->items);
    free(n->key);
    free(n->text);
    free(n);
}

static CfgNode *map_get(const CfgNode *map, const char *key, size_t keylen) {
    if (!map || map->kind != CFG_MAP) return NULL;
    for (int i = 0; i < map->n; i++)
        if (strlen(map->items[i]->key) == keylen && !strncmp(map->items[i]->key, key, keylen)) return map->items[i];
    return NULL;
}

CfgNode *config_find(const Config *cfg, const char *path) {
    const CfgNode *n = cfg->root;
    const char *p = path;
    while (n && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        n = map_get(n, p, len);
        p += len + (dot ? 1 : 0);
        if (!dot) break;
    }
    return (CfgNode *)n;
}

/* Keys are names: letters, digits and '_' (every official key is one), so they write back as they read. */
static int key_name(const char *k, size_t n) {
    if (!n) return 0;
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)k[i]) && k[i] != '_') return 0;
    return 1;
}

/* ---- scalars and flow lists ------------------------------------------------------------------------- */

/* Maps (by indentation) and flow lists ([a, [b, c]]) nest at most this deep, so hostile input can neither
 * exhaust the stack nor make the parser's work grow faster than the text. */
#define MAX_DEPTH 32
/* A section holds a few dozen keys (duplicates are looked for among its keys, so their number is bounded). */
#define MAX_KEYS 1024
/* A config file is a few kilobytes; a much larger one is not a config. */
#define MAX_CONFIG_BYTES (1 << 20)

/* The scalar s[0, len) into node: quoted strings lose their quotes ('' inside single quotes and \" inside
 * double quotes stand for the quote itself), anything else is kept as written. */
static int parse_scalar(CfgNode *node, const char *s, size_t len, const char *path, int line, I2vError *e) {
    node->kind = CFG_SCALAR;
    if (s[0] == '\'' || s[0] == '"') {
        char quote = s[0];
        if (len < 2 || s[len - 1] != quote)
            return err_set(e, "%s:%d: unterminated string %.*s", path, line, (int)(len < 60 ? len : 60), s);
        char *out = xmalloc(len), *o = out;
        for (size_t i = 1; i + 1 < len; i++) {
            if (quote == '\'' && s[i] == '\'' && s[i + 1] == '\'' && i + 2 < len) i++;
            else if (quote == '"' && s[i] == '\\' && i + 2 < len) i++;
            *o++ = s[i];
        }
        *o = 0;
        node->text = out;
        node->quoted = 1;
        return 0;
    }
    node->text = dup_range(s, len);
    return 0;
}

/* The end of a list item that starts at p: the ',' or ']' that follows it outside quotes (or end). */
static const char *item_end(const char *p, const char *end) {
    if (*p == '\'' || *p == '"') {
        char quote = *p++;
        while (p < end) {
            if (*p == quote && quote == '\'' && p + 1 < end && p[1] == '\'') p += 2;
            else if (*p == '\\' && quote == '"' && p + 1 < end) p += 2;
            else if (*p == quote) { p++; break; }
            else p++;
        }
    }
    while (p < end && *p != ',' && *p != ']') p++;
    return p;
}

/* The flow list at *pp ('[') into node, items parsed in place (no copy of the text per level); *pp ends
 * after its ']'. */
static int parse_flow_list(CfgNode *node, const char **pp, const char *end, int depth, const char *path, int line,
                           I2vError *e) {
    const char *what = node->key ? node->key : "value";
    if (depth >= MAX_DEPTH) return err_set(e, "%s:%d: %s: lists nested too deeply (at most %d levels)", path, line, what,
                                           MAX_DEPTH);
    node->kind = CFG_LIST;
    const char *p = *pp + 1;
    for (;;) {
        while (p < end && isspace((unsigned char)*p)) p++;
        if (p == end) return err_set(e, "%s:%d: %s: a list must end with ']' on the same line", path, line, what);
        if (*p == ']') {
            *pp = p + 1;
            return 0;
        }
        if (*p == ',') return err_set(e, "%s:%d: %s: empty list item", path, line, what);
        if (*p == '{')
            return err_set(e, "%s:%d: inline maps {...} are not supported; write one key per line", path, line);
        CfgNode *item = node_new(CFG_SCALAR, NULL, line);
        node_add(node, item);
        int rc;
        if (*p == '[') {
            rc = parse_flow_list(item, &p, end, depth + 1, path, line, e);
        } else {
            const char *q = item_end(p, end), *r = q;
            while (r > p && isspace((unsigned char)r[-1])) r--;
            rc = parse_scalar(item, p, (size_t)(r - p), path, line, e);
            p = q;
        }
        if (rc) return rc;
        while (p < end && isspace((unsigned char)*p)) p++;
        if (p < end && *p == ',') p++;
        else if (p < end && *p != ']')
            return err_set(e, "%s:%d: %s: expected ',' or ']' after a list item, got '%c'", path, line, what, *p);
    }
}

/* Parses a value (after "key:") into node; s is the trimmed rest of the line. */
static int parse_value(CfgNode *node, const char *s, const char *path, int line, I2vError *e) {
    size_t len = strlen(s);
    if (s[0] == '[') {
        const char *p = s, *end = s + len;
        if (parse_flow_list(node, &p, end, 0, path, line, e)) return -1;
        if (p != end)
            return err_set(e, "%s:%d: %s: unexpected text after the list: '%s'", path, line,
                           node->key ? node->key : "value", p);
        return 0;
    }
    if (s[0] == '{') return err_set(e, "%s:%d: inline maps {...} are not supported; write one key per line", path, line);
    return parse_scalar(node, s, len, path, line, e);
}

/* ---- the parser ----------------------------------------------------------------------------------------- */

/* One open map: the indentation of its key line and of its children (-1 until the first child). */
typedef struct Level {
    CfgNode *map;
    int indent, child_indent;
} Level;

int config_parse(Config *cfg, const char *text, const char *path, I2vError *e) {
    memset(cfg, 0, sizeof *cfg);
    cfg->path = dup_range(path, strlen(path));
    cfg->root = node_new(CFG_MAP, NULL, 0);
    Level stack[MAX_DEPTH];
    int depth = 0;
    stack[0] = (Level){cfg->root, -1, -1};
    const char *p = text;
    for (int line = 1; *p; line++) {
        const char *eol = strchr(p, '\n');
        size_t n = eol ? (size_t)(eol - p) : strlen(p);
        char *buf = dup_range(p, n);
        p += n + (eol ? 1 : 0);
        /* strip a comment (a # outside quotes, at the start or after a space) and trailing space */
        char quote = 0;
        for (size_t i = 0; buf[i]; i++) {
            if (quote) {
                if (buf[i] == quote) quote = 0;
            } else if (buf[i] == '\'' || buf[i] == '"') {
                quote = buf[i];
            } else if (buf[i] == '#' && (i == 0 || isspace((unsigned char)buf[i - 1]))) {
                buf[i] = 0;
                break;
            }
        }
        size_t len = strlen(buf);
        while (len && (isspace((unsigned char)buf[len - 1]))) buf[--len] = 0;
        int indent = 0;
        while (buf[indent] == ' ') indent++;
        if (buf[indent] == 0) {
            free(buf);
            continue;
        }
        int rc = 0;
        if (buf[indent] == '\t') rc = err_set(e, "%s:%d: tabs are not allowed for indentation in YAML", path, line);
        else if (buf[indent] == '-' && (buf[indent + 1] == ' ' || !buf[indent + 1])) {
            /* "- item": a scalar of the block list opened by the last "key:"; YAML lets the items sit at the
             * key's own indentation (OmegaConf writes them so) or deeper */
            while (depth > 0 && indent < stack[depth].indent) depth--;
            while (depth > 0 && indent == stack[depth].indent && stack[depth].map->kind == CFG_MAP &&
                   stack[depth].map->n > 0)
                depth--;
            CfgNode *list = stack[depth].map;
            if (depth == 0 || (list->kind == CFG_MAP && list->n > 0) || list->kind == CFG_SCALAR)
                rc = err_set(e, "%s:%d: a '- item' line must follow 'key:' (a list of values)", path, line);
            else {
                const char *item = buf + indent + 1;
                while (isspace((unsigned char)*item)) item++;   /* as flow items are trimmed */
                if (!*item || *item == '[' || (strchr(item, ':') && item[0] != '\'' && item[0] != '"'))
                    rc = err_set(e, "%s:%d: only lists of single values are supported", path, line);
                else {
                    list->kind = CFG_LIST;
                    CfgNode *n = node_new(CFG_SCALAR, NULL, line);
                    rc = parse_value(n, item, path, line, e);
                    node_add(list, n);
                }
            }
            free(buf);
            if (rc) {
                config_free(cfg);
                return rc;
            }
            continue;
        } else if (!strcmp(buf + indent, "---") || !strncmp(buf + indent, "...", 3))
            rc = err_set(e, "%s:%d: multiple YAML documents are not supported", path, line);
        char *colon = rc ? NULL : strchr(buf + indent, ':');
        if (!rc && (!colon || (colon[1] && colon[1] != ' ')))
            rc = err_set(e, "%s:%d: expected 'key: value', got '%s'", path, line, buf + indent);
        if (rc) {
            free(buf);
            config_free(cfg);
            return rc;
        }
        /* close the maps this line is not inside */
        while (indent <= stack[depth].indent) depth--;
        Level *lv = &stack[depth];
        if (lv->map->kind == CFG_LIST) {   /* under a block list's '- item' lines */
            rc = err_set(e, "%s:%d: a 'key:' line inside the list '%s' (only lists of single values are supported)",
                         path, line, lv->map->key ? lv->map->key : "");
            free(buf);
            config_free(cfg);
            return rc;
        }
        if (lv->child_indent < 0) lv->child_indent = indent;
        if (indent != lv->child_indent) {
            rc = err_set(e, "%s:%d: inconsistent indentation (%d spaces where the siblings have %d)", path, line,
                         indent, lv->child_indent);
            free(buf);
            config_free(cfg);
            return rc;
        }
        *colon = 0;
        char *key = buf + indent, *value = colon + 1;
        size_t klen = strlen(key);
        while (klen && isspace((unsigned char)key[klen - 1])) key[--klen] = 0;
        if ((key[0] == '\'' || key[0] == '"') && klen >= 2 && key[klen - 1] == key[0]) {
            key[klen - 1] = 0;
            key++;
            klen -= 2;
        }
        while (isspace((unsigned char)*value)) value++;
        if (!key_name(key, klen)) {
            rc = err_set(e, "%s:%d: '%s' is not a key name (letters, digits and '_', as every config key)", path, line,
                         key);
            free(buf);
            config_free(cfg);
            return rc;
        }
        if (lv->map->n >= MAX_KEYS) {
            rc = err_set(e, "%s:%d: more than %d keys in one section", path, line, MAX_KEYS);
            free(buf);
            config_free(cfg);
            return rc;
        }
        if (map_get(lv->map, key, klen)) {
            rc = err_set(e, "%s:%d: key '%s' appears twice in the same section", path, line, key);
            free(buf);
            config_free(cfg);
            return rc;
        }
        CfgNode *node = node_new(CFG_SCALAR, key, line);
        node_add(lv->map, node);
        if (*value) {
            rc = parse_value(node, value, path, line, e);
        } else {   /* "key:" opens a map (or, with no children, an empty value) */
            node->kind = CFG_MAP;
            if (depth + 1 >= MAX_DEPTH)
                rc = err_set(e, "%s:%d: sections nested too deeply (at most %d levels)", path, line, MAX_DEPTH - 1);
            else stack[++depth] = (Level){node, indent, -1};
        }
        free(buf);
        if (rc) {
            config_free(cfg);
            return rc;
        }
    }
    return 0;
}

int config_load(Config *cfg, const char *path, I2vError *e) {
    uint8_t *bytes;
    size_t n;
    memset(cfg, 0, sizeof *cfg);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > MAX_CONFIG_BYTES)
        return err_set(e, "%s: %lld bytes is not a config file (configs are a few kilobytes; at most %d)", path,
                       (long long)st.st_size, MAX_CONFIG_BYTES);
    if (read_file_bytes(path, &bytes, &n, e)) return -1;
    if (n > MAX_CONFIG_BYTES) {
        free(bytes);
        return err_set(e, "%s: more than %d bytes is not a config file", path, MAX_CONFIG_BYTES);
    }
    char *text = xmalloc(n + 1);
    memcpy(text, bytes, n);
    text[n] = 0;
    free(bytes);
    if (memchr(text, 0, n)) {
        free(text);
        return err_set(e, "%s: not a text file (it contains NUL bytes)", path);
    }
    int rc = config_parse(cfg, text, path, e);
    free(text);
    return rc;
}

void config_free(Config *cfg) {
    node_free(cfg->root);
    free(cfg->path);
    memset(cfg, 0, sizeof *cfg);
}

/* Section.key=value into cfg (config_override without its check on the text, for config_add_struct, whose
 * strings may hold whatever a quoted value in a file held). */
static int set_value(Config *cfg, const char *assignment, I2vError *e) {
    const char *eq = strchr(assignment, '=');
    int depth = 1;
    for (const char *c = assignment; eq && c < eq; c++) depth += *c == '.';
    if (depth >= MAX_DEPTH)   /* as deep as a file may nest its sections, so that it writes back */
        return err_set(e, "override '%.60s...': sections nested too deeply (at most %d levels)", assignment,
                       MAX_DEPTH - 1);
    if (!eq || eq == assignment)
        return err_set(e, "override '%s': expected Section.key=value, e.g. Training.lr=1e-4", assignment);
    CfgNode *map = cfg->root;
    const char *p = assignment;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(eq - p));
        size_t len = dot ? (size_t)(dot - p) : (size_t)(eq - p);
        if (len == 0) return err_set(e, "override '%s': empty key in the path", assignment);
        if (!key_name(p, len))
            return err_set(e, "override '%s': '%.*s' is not a key name (letters, digits and '_')", assignment, (int)len,
                           p);
        CfgNode *child = map_get(map, p, len);
        char *key = dup_range(p, len);
        if (!child) {
            child = node_new(dot ? CFG_MAP : CFG_SCALAR, key, 0);
            node_add(map, child);
        }
        free(key);
        if (!dot) {
            for (int i = 0; i < child->n; i++) node_free(child->items[i]);
            child->n = 0;
            free(child->text);
            child->text = NULL;
            child->quoted = 0;
            child->line = 0;
            const char *v = eq + 1, *end = v + strlen(v);
            while (isspace((unsigned char)*v)) v++;   /* trimmed, as values in a file are */
            while (end > v && isspace((unsigned char)end[-1])) end--;
            if (v == end) return err_set(e, "override '%s': no value after '='", assignment);
            char *value = dup_range(v, (size_t)(end - v));
            int rc = parse_value(child, value, "command line", 0, e);
            free(value);
            return rc;
        }
        if (child->kind != CFG_MAP)
            return err_set(e, "override '%s': '%.*s' is a value, not a section", assignment, (int)len, p);
        map = child;
        p = dot + 1;
    }
}

int config_override(Config *cfg, const char *assignment, I2vError *e) {
    if (strpbrk(assignment, "\n\r"))   /* a line break would become lines of the saved YAML */
        return err_set(e, "override: a line break in '%s'", assignment);
    return set_value(cfg, assignment, e);
}

/* ---- back to YAML ---------------------------------------------------------------------------------------- */

typedef struct StrBuf {
    char *s;
    size_t n, cap;
} StrBuf;

static void sb_put(StrBuf *b, const char *fmt, const char *arg) {
    int need = snprintf(NULL, 0, fmt, arg);
    if (b->n + (size_t)need + 1 > b->cap) {
        b->cap = (b->n + (size_t)need + 1) * 2;
        b->s = realloc(b->s, b->cap);
        I2V_ASSERT(b->s, "out of memory");
    }
    snprintf(b->s + b->n, b->cap - b->n, fmt, arg);
    b->n += (size_t)need;
}

/* Would the plain text read back as something else? A comment, a quote or bracket where a value starts,
 * a list separator inside a list, spaces that reading trims: such text is written quoted. */
static int needs_quotes(const char *s, int in_list) {
    size_t n = strlen(s);
    if (!n || strchr("#'\"[{", s[0]) || (s[0] == '-' && (!s[1] || s[1] == ' ')) || isspace((unsigned char)s[0]) ||
        isspace((unsigned char)s[n - 1]))
        return 1;
    for (size_t i = 1; i < n; i++)   /* '#' after a space starts a comment */
        if (s[i] == '#' && isspace((unsigned char)s[i - 1])) return 1;
    return in_list && strpbrk(s, ",[]{}") != NULL;
}

static void scalar_to_yaml(StrBuf *b, const CfgNode *n, int in_list) {
    if (!n->quoted && !needs_quotes(n->text ? n->text : "", in_list)) {
        sb_put(b, "%s", n->text ? n->text : "");
        return;
    }
    sb_put(b, "%s", "'");
    for (const char *c = n->text; *c; c++) sb_put(b, "%s", *c == '\'' ? "''" : (char[]){*c, 0});
    sb_put(b, "%s", "'");
}

static void list_to_yaml(StrBuf *b, const CfgNode *list) {
    sb_put(b, "%s", "[");
    for (int j = 0; j < list->n; j++) {
        if (j) sb_put(b, "%s", ", ");
        if (list->items[j]->kind == CFG_LIST) list_to_yaml(b, list->items[j]);
        else scalar_to_yaml(b, list->items[j], 1);
    }
    sb_put(b, "%s", "]");
}

static void node_to_yaml(StrBuf *b, const CfgNode *map, int indent) {
    for (int i = 0; i < map->n; i++) {
        const CfgNode *n = map->items[i];
        for (int k = 0; k < indent; k++) sb_put(b, "%s", " ");
        sb_put(b, "%s:", n->key);
        if (n->kind == CFG_MAP) {
            sb_put(b, "%s", "\n");
            node_to_yaml(b, n, indent + 2);
        } else if (n->kind == CFG_LIST) {
            sb_put(b, "%s", " ");
            list_to_yaml(b, n);
            sb_put(b, "%s", "\n");
        } else {
            sb_put(b, "%s", " ");
            scalar_to_yaml(b, n, 0);
            sb_put(b, "%s", "\n");
        }
    }
}

char *config_to_yaml(const Config *cfg) {
    StrBuf b = {0};
    sb_put(&b, "%s", "");
    node_to_yaml(&b, cfg->root, 0);
    return b.s;
}

/* ---- comparing ---------------------------------------------------------------------------------------------- */

static int same_value(const CfgNode *a, const CfgNode *b) {
    if (a->kind != b->kind || a->n != b->n) return 0;
    if (a->kind == CFG_SCALAR) return a->quoted == b->quoted && !strcmp(a->text ? a->text : "", b->text ? b->text : "");
    for (int i = 0; i < a->n; i++)
        if (a->kind == CFG_LIST && !same_value(a->items[i], b->items[i])) return 0;
    return 1;
}

static int skipped(const char *path, const char *const *skip) {
    for (; skip && *skip; skip++)
        if (!strcmp(path, *skip)) return 1;
    return 0;
}

/* A difference under map a against map b (keys of a missing in b count), path holding a's prefix. */
static int differs(const CfgNode *a, const CfgNode *b, const char *const *skip, char *path, size_t cap) {
    size_t len = strlen(path);
    for (int i = 0; i < a->n; i++) {
        const CfgNode *x = a->items[i], *y = map_get(b, x->key, strlen(x->key));
        snprintf(path + len, cap - len, "%s%s", len ? "." : "", x->key);
        if (skipped(path, skip)) continue;
        if (x->kind == CFG_MAP && y && y->kind == CFG_MAP) {
            if (differs(x, y, skip, path, cap)) return 1;
        } else if (!y || !same_value(x, y)) {
            return 1;
        }
    }
    path[len] = 0;
    return 0;
}

int config_first_difference(const Config *a, const Config *b, const char *const *skip, char *path, size_t cap) {
    path[0] = 0;
    return differs(a->root, b->root, skip, path, cap) || differs(b->root, a->root, skip, path, cap);
}

/* ---- binding ---------------------------------------------------------------------------------------------- */

static const char *where(const Config *cfg, const CfgNode *n, char *buf, size_t size) {
    if (n->line) snprintf(buf, size, "%s:%d", cfg->path, n->line);
    else snprintf(buf, size, "%s (command line)", cfg->path);
    return buf;
}

static int parse_int(const char *s, int *out) {
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < INT32_MIN || v > INT32_MAX) return -1;
    *out = (int)v;
    return 0;
}

static int parse_double(const char *s, double *out) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno) return -1;
    *out = v;
    return 0;
}

static int parse_bool(const char *s, int *out) {
    if (!strcmp(s, "True") || !strcmp(s, "true") || !strcmp(s, "yes")) *out = 1;
    else if (!strcmp(s, "False") || !strcmp(s, "false") || !strcmp(s, "no")) *out = 0;
    else return -1;
    return 0;
}

static void mark_used(CfgNode *n) {
    n->used = 1;
    for (int i = 0; i < n->n; i++) mark_used(n->items[i]);
}

static int bind_one(Config *cfg, const ConfigField *f, CfgNode *n, void *dst, I2vError *e) {
    char at[512];
    unsigned char *base = dst;
    if (f->type == F_INT_LIST) {
        if (n->kind != CFG_LIST)
            return err_set(e, "%s: %s: expected a list like [1, 2], got '%s'", where(cfg, n, at, sizeof at), f->path,
                           n->text ? n->text : "a section");
        if ((size_t)n->n > f->size)
            return err_set(e, "%s: %s: at most %zu values, got %d", where(cfg, n, at, sizeof at), f->path, f->size, n->n);
        int *vals = (int *)(base + f->offset);
        for (int i = 0; i < n->n; i++) {
            const CfgNode *it = n->items[i];
            if (it->kind != CFG_SCALAR)
                return err_set(e, "%s: %s: item %d: expected an integer, got a list", where(cfg, n, at, sizeof at),
                               f->path, i + 1);
            if (it->quoted || parse_int(it->text, &vals[i]))
                return err_set(e, "%s: %s: item %d: expected an integer, got '%s'", where(cfg, n, at, sizeof at),
                               f->path, i + 1, it->text);
        }
        *(int *)(base + f->count_offset) = n->n;
        return 0;
    }
    if (n->kind != CFG_SCALAR)
        return err_set(e, "%s: %s: expected a single value, got a %s", where(cfg, n, at, sizeof at), f->path,
                       n->kind == CFG_LIST ? "list" : "section");
    const char *s = n->text ? n->text : "";
    switch (f->type) {
    case F_INT:
        if (n->quoted || parse_int(s, (int *)(base + f->offset)))
            return err_set(e, "%s: %s: expected an integer, got '%s'", where(cfg, n, at, sizeof at), f->path, s);
        return 0;
    case F_DOUBLE:
        if (n->quoted || parse_double(s, (double *)(base + f->offset)))
            return err_set(e, "%s: %s: expected a number (e.g. 2e-4), got '%s'", where(cfg, n, at, sizeof at), f->path,
                           s);
        return 0;
    case F_BOOL:
        if (n->quoted || parse_bool(s, (int *)(base + f->offset)))
            return err_set(e, "%s: %s: expected True or False, got '%s'", where(cfg, n, at, sizeof at), f->path, s);
        return 0;
    case F_STRING:
        if (strlen(s) + 1 > f->size)
            return err_set(e, "%s: %s: longer than %zu characters", where(cfg, n, at, sizeof at), f->path, f->size - 1);
        memcpy(base + f->offset, s, strlen(s) + 1);
        return 0;
    default: return 0;
    }
}

int config_bind(Config *cfg, const ConfigField *fields, int nfields, void *dst, I2vError *e) {
    for (int i = 0; i < nfields; i++) {
        CfgNode *n = config_find(cfg, fields[i].path);
        if (!n) continue;
        if (fields[i].type == F_IGNORE) {
            mark_used(n);
            continue;
        }
        if (bind_one(cfg, &fields[i], n, dst, e)) return -1;
        mark_used(n);
    }
    return 0;
}

static CfgNode *first_unused(CfgNode *n, char *path, size_t size) {
    size_t len = strlen(path);
    for (int i = 0; i < n->n; i++) {
        CfgNode *c = n->items[i];
        snprintf(path + len, size - len, "%s%s", len ? "." : "", c->key);
        if (c->kind == CFG_MAP && c->n > 0) {
            CfgNode *u = first_unused(c, path, size);
            if (u) return u;
        } else if (!c->used) {
            return c;
        }
        path[len] = 0;
    }
    return NULL;
}

int config_check_unused(const Config *cfg, I2vError *e) {
    char path[512] = "", at[512];
    CfgNode *u = first_unused(cfg->root, path, sizeof path);
    if (!u) return 0;
    return err_set(e, "%s: unknown key '%s' (a typo? see the official configs under configs/ for the keys)",
                   where(cfg, u, at, sizeof at), path);
}

/* ---- from a struct ------------------------------------------------------------------------------------------ */

void config_new(Config *cfg, const char *name) {
    memset(cfg, 0, sizeof *cfg);
    cfg->path = dup_range(name, strlen(name));
    cfg->root = node_new(CFG_MAP, NULL, 0);
}

void config_add_struct(Config *cfg, const ConfigField *fields, int nfields, const void *src) {
    const unsigned char *base = src;
    char text[1200];
    for (int i = 0; i < nfields; i++) {
        const ConfigField *f = &fields[i];
        int k = snprintf(text, sizeof text, "%s=", f->path);
        switch (f->type) {
        case F_INT: snprintf(text + k, sizeof text - (size_t)k, "%d", *(const int *)(base + f->offset)); break;
        case F_BOOL: snprintf(text + k, sizeof text - (size_t)k, "%s", *(const int *)(base + f->offset) ? "True" : "False"); break;
        case F_DOUBLE: {
            /* the shortest of %.15g .. %.17g that reads back to the same double */
            double v = *(const double *)(base + f->offset);
            for (int digits = 15; digits <= 17; digits++) {
                snprintf(text + k, sizeof text - (size_t)k, "%.*g", digits, v);
                if (strtod(text + k, NULL) == v) break;
            }
            break;
        }
        case F_STRING: {
            /* single-quoted, quotes doubled */
            const char *s = (const char *)(base + f->offset);
            size_t o = (size_t)k;
            text[o++] = '\'';
            for (; *s && o + 3 < sizeof text; s++) {
                if (*s == '\'') text[o++] = '\'';
                text[o++] = *s;
            }
            text[o++] = '\'';
            text[o] = 0;
            break;
        }
        case F_INT_LIST: {
            const int *v = (const int *)(base + f->offset);
            int n = *(const int *)(base + f->count_offset);
            k += snprintf(text + k, sizeof text - (size_t)k, "[");
            for (int j = 0; j < n; j++) k += snprintf(text + k, sizeof text - (size_t)k, j ? ", %d" : "%d", v[j]);
            snprintf(text + k, sizeof text - (size_t)k, "]");
            break;
        }
        case F_IGNORE: continue;
        }
        I2vError e;
        int rc = set_value(cfg, text, &e);
        I2V_ASSERT(rc == 0, "config_add_struct: %s", e.msg);
    }
}
