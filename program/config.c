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

/* ---- scalars and flow lists ------------------------------------------------------------------------- */

/* Parses a value (after "key:") into node; s is the trimmed rest of the line. */
static int parse_value(CfgNode *node, const char *s, const char *path, int line, I2vError *e) {
    size_t len = strlen(s);
    if (s[0] == '[') {
        if (s[len - 1] != ']') return err_set(e, "%s:%d: %s: a list must end with ']' on the same line", path, line,
                                              node->key ? node->key : "value");
        node->kind = CFG_LIST;
        const char *p = s + 1, *end = s + len - 1;
        while (p < end) {
            while (p < end && isspace((unsigned char)*p)) p++;
            if (p == end) break;
            const char *q = p;
            char quote = (*q == '\'' || *q == '"') ? *q : 0;
            if (quote) {
                q++;
                while (q < end && *q != quote) q++;
                if (q == end) return err_set(e, "%s:%d: unterminated string in a list", path, line);
                q++;
            }
            while (q < end && *q != ',') q++;
            const char *r = q;
            while (r > p && isspace((unsigned char)r[-1])) r--;
            if (r == p) return err_set(e, "%s:%d: empty list item", path, line);
            CfgNode *item = node_new(CFG_SCALAR, NULL, line);
            char *txt = dup_range(p, (size_t)(r - p));
            int rc = parse_value(item, txt, path, line, e);
            free(txt);
            node_add(node, item);
            if (rc) return rc;
            p = q < end ? q + 1 : q;
        }
        return 0;
    }
    if (s[0] == '{') return err_set(e, "%s:%d: inline maps {...} are not supported; write one key per line", path, line);
    node->kind = CFG_SCALAR;
    if (s[0] == '\'' || s[0] == '"') {
        char quote = s[0];
        if (len < 2 || s[len - 1] != quote) return err_set(e, "%s:%d: unterminated string %s", path, line, s);
        /* '' inside single quotes and \" inside double quotes stand for the quote itself */
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
    Level stack[32];
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
                while (*item == ' ') item++;
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
            if (depth + 1 >= (int)(sizeof stack / sizeof *stack)) rc = err_set(e, "%s:%d: nested too deeply", path, line);
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
    if (read_file_bytes(path, &bytes, &n, e)) return -1;
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

int config_override(Config *cfg, const char *assignment, I2vError *e) {
    const char *eq = strchr(assignment, '=');
    if (!eq || eq == assignment)
        return err_set(e, "override '%s': expected Section.key=value, e.g. Training.lr=1e-4", assignment);
    CfgNode *map = cfg->root;
    const char *p = assignment;
    for (;;) {
        const char *dot = memchr(p, '.', (size_t)(eq - p));
        size_t len = dot ? (size_t)(dot - p) : (size_t)(eq - p);
        if (len == 0) return err_set(e, "override '%s': empty key in the path", assignment);
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
            if (!eq[1]) return err_set(e, "override '%s': no value after '='", assignment);
            return parse_value(child, eq + 1, "command line", 0, e);
        }
        if (child->kind != CFG_MAP)
            return err_set(e, "override '%s': '%.*s' is a value, not a section", assignment, (int)len, p);
        map = child;
        p = dot + 1;
    }
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

static void scalar_to_yaml(StrBuf *b, const CfgNode *n) {
    if (!n->quoted) {
        sb_put(b, "%s", n->text ? n->text : "");
        return;
    }
    sb_put(b, "%s", "'");
    for (const char *c = n->text; *c; c++) sb_put(b, "%s", *c == '\'' ? "''" : (char[]){*c, 0});
    sb_put(b, "%s", "'");
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
            sb_put(b, "%s", " [");
            for (int j = 0; j < n->n; j++) {
                if (j) sb_put(b, "%s", ", ");
                scalar_to_yaml(b, n->items[j]);
            }
            sb_put(b, "%s", "]\n");
        } else {
            sb_put(b, "%s", " ");
            scalar_to_yaml(b, n);
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
        for (int i = 0; i < n->n; i++)
            if (n->items[i]->quoted || parse_int(n->items[i]->text, &vals[i]))
                return err_set(e, "%s: %s: item %d: expected an integer, got '%s'", where(cfg, n, at, sizeof at),
                               f->path, i + 1, n->items[i]->text);
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
        int rc = config_override(cfg, text, &e);
        I2V_ASSERT(rc == 0, "config_add_struct: %s", e.msg);
    }
}
