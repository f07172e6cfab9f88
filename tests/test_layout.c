/* test_layout.c: the repository keeps its designed shape.
 *
 * Three rules, each checked on the source tree (the working directory, the repository root):
 *   1. the root holds only the design's C files: i2v.c, tensor.[ch], flow.[ch], ae.[ch], data.[ch];
 *      every other source file lives in a folder named by its role;
 *   2. no include cycle between modules (a module is a .c file with its .h), however long the path;
 *   3. no file cites a document that is not in the repository (a `NAME.md` that no file of the tree is
 *      called, or the developers' private folders).
 * Each rule is first run on a small tree made in a temporary folder that breaks it, so a checker that
 * cannot fail fails here.
 *
 * What it is not: a style checker. It reads `#include "..."` lines and words ending in ".md", as text.
 */
#define _XOPEN_SOURCE 700   /* mkdtemp, nftw */
#include <dirent.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"

enum { MAX_FILES = 4096, MAX_PATH = 1024 };

typedef struct Tree {
    char *path[MAX_FILES];   /* relative to the root, e.g. "kernels/gemm.c" */
    int n;
} Tree;

static int has_suffix(const char *s, const char *suffix) {
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* Folders that are not sources: build outputs, version control, test data, what the demo writes. */
static int skipped_dir(const char *name) {
    return name[0] == '.' || !strcmp(name, "build") || !strcmp(name, "demo_out") || !strcmp(name, "data");
}

static int is_text_source(const char *name) {
    static const char *const ext[] = {".c", ".h", ".cu", ".cuh", ".py", ".sh", ".md", ".yaml"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (has_suffix(name, ext[i])) return 1;
    return !strcmp(name, "Makefile");
}

static void walk(const char *root, const char *rel, Tree *t) {
    char dir[2 * MAX_PATH];
    snprintf(dir, sizeof dir, "%s/%s", root, rel);
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char sub[MAX_PATH], full[3 * MAX_PATH];
        snprintf(sub, sizeof sub, "%s%s%s", rel, rel[0] ? "/" : "", e->d_name);
        snprintf(full, sizeof full, "%s/%s", root, sub);
        struct stat st;
        if (stat(full, &st)) continue;
        if (S_ISDIR(st.st_mode)) {
            if (!skipped_dir(e->d_name)) walk(root, sub, t);
        } else if (is_text_source(e->d_name) && t->n < MAX_FILES) {
            t->path[t->n++] = strdup(sub);
        }
    }
    closedir(d);
}

static void tree_free(Tree *t) {
    for (int i = 0; i < t->n; i++) free(t->path[i]);
    t->n = 0;
}

static char *read_text(const char *root, const char *rel) {
    char full[2 * MAX_PATH];
    snprintf(full, sizeof full, "%s/%s", root, rel);
    FILE *f = fopen(full, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    return s;
}

/* ---- rule 1: the root's C files ------------------------------------------------------------------- */
static int root_violations(const Tree *t, char *first, size_t cap) {
    static const char *const allowed[] = {"i2v.c", "tensor.c", "tensor.h", "flow.c", "flow.h",
                                          "ae.c",  "ae.h",     "data.c",   "data.h"};
    int bad = 0;
    for (int i = 0; i < t->n; i++) {
        const char *p = t->path[i];
        if (strchr(p, '/') || !(has_suffix(p, ".c") || has_suffix(p, ".h"))) continue;
        int ok = 0;
        for (size_t k = 0; k < sizeof allowed / sizeof *allowed; k++) ok |= !strcmp(p, allowed[k]);
        if (!ok && bad++ == 0) snprintf(first, cap, "%s", p);
    }
    return bad;
}

/* ---- rule 2: include cycles between modules -------------------------------------------------------- */
/* The module of a file: its path without the extension ("kernels/gemm.c" -> "kernels/gemm"). */
static void module_of(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path);
    char *dot = strrchr(out, '.');
    if (dot && !strchr(dot, '/')) *dot = 0;
}

typedef struct Graph {
    char *name[MAX_FILES];
    int n;
    unsigned char *edge;     /* n x n adjacency, edge[a * n + b]: a includes b */
} Graph;

static int graph_find(const Graph *g, const char *name) {
    for (int i = 0; i < g->n; i++)
        if (!strcmp(g->name[i], name)) return i;
    return -1;
}

/* Resolves `#include "inc"` of file `from`: relative to the root (-I.) first, then to the file's folder. */
static int resolve(const Tree *t, const char *from, const char *inc, char *out, size_t cap) {
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 0) snprintf(out, cap, "%s", inc);
        else {
            const char *slash = strrchr(from, '/');
            if (!slash) return 0;
            snprintf(out, cap, "%.*s/%s", (int)(slash - from), from, inc);
        }
        for (int i = 0; i < t->n; i++)
            if (!strcmp(t->path[i], out)) return 1;
    }
    return 0;
}

static void graph_build(const char *root, const Tree *t, Graph *g) {
    g->n = 0;
    char mod[MAX_PATH];
    for (int i = 0; i < t->n; i++) {
        if (!(has_suffix(t->path[i], ".c") || has_suffix(t->path[i], ".h") || has_suffix(t->path[i], ".cu") ||
              has_suffix(t->path[i], ".cuh")))
            continue;
        module_of(t->path[i], mod, sizeof mod);
        if (graph_find(g, mod) < 0) g->name[g->n++] = strdup(mod);
    }
    g->edge = calloc((size_t)g->n * (size_t)g->n + 1, 1);
    for (int i = 0; i < t->n; i++) {
        module_of(t->path[i], mod, sizeof mod);
        int a = graph_find(g, mod);
        if (a < 0) continue;
        char *text = read_text(root, t->path[i]);
        if (!text) continue;
        for (char *line = text; line && *line; line = strchr(line, '\n') ? strchr(line, '\n') + 1 : NULL) {
            char *p = line;
            while (*p == ' ' || *p == '\t') p++;
            if (*p != '#') continue;
            p++;
            while (*p == ' ' || *p == '\t') p++;
            if (strncmp(p, "include", 7)) continue;
            p += 7;
            while (*p == ' ' || *p == '\t') p++;
            if (*p != '"') continue;
            char *end = strchr(p + 1, '"');
            char *nl = strchr(p + 1, '\n');
            if (!end || (nl && end > nl)) continue;
            char inc[MAX_PATH], path[2 * MAX_PATH], target[2 * MAX_PATH];
            snprintf(inc, sizeof inc, "%.*s", (int)(end - p - 1), p + 1);
            if (!resolve(t, t->path[i], inc, path, sizeof path)) continue;
            module_of(path, target, sizeof target);
            int b = graph_find(g, target);
            if (b >= 0 && b != a) g->edge[(size_t)a * g->n + b] = 1;
        }
        free(text);
    }
}

static void graph_free(Graph *g) {
    for (int i = 0; i < g->n; i++) free(g->name[i]);
    free(g->edge);
    g->n = 0;
}

/* Depth-first search; a back edge to a module on the current path is a cycle, written into `cycle`. */
static int dfs(const Graph *g, int v, char *state, int *stack, int depth, char *cycle, size_t cap) {
    state[v] = 1;
    stack[depth] = v;
    for (int w = 0; w < g->n; w++) {
        if (!g->edge[(size_t)v * g->n + w]) continue;
        if (state[w] == 1) {
            size_t used = 0;
            int k = depth;
            while (k > 0 && stack[k] != w) k--;
            for (int i = k; i <= depth && used < cap; i++)
                used += (size_t)snprintf(cycle + used, cap - used, "%s -> ", g->name[stack[i]]);
            if (used < cap) snprintf(cycle + used, cap - used, "%s", g->name[w]);
            return 1;
        }
        if (state[w] == 0 && dfs(g, w, state, stack, depth + 1, cycle, cap)) return 1;
    }
    state[v] = 2;
    return 0;
}

static int find_cycle(const char *root, const Tree *t, char *cycle, size_t cap) {
    Graph g;
    graph_build(root, t, &g);
    char *state = calloc((size_t)g.n + 1, 1);
    int *stack = calloc((size_t)g.n + 1, sizeof *stack);
    int found = 0;
    for (int v = 0; v < g.n && !found; v++)
        if (state[v] == 0) found = dfs(&g, v, state, stack, 0, cycle, cap);
    free(state);
    free(stack);
    graph_free(&g);
    return found;
}

/* ---- rule 3: citations of documents the repository does not have ---------------------------------- */
static int is_name_char(char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int tree_has_basename(const Tree *t, const char *base) {
    for (int i = 0; i < t->n; i++) {
        const char *slash = strrchr(t->path[i], '/');
        if (!strcmp(slash ? slash + 1 : t->path[i], base)) return 1;
    }
    return 0;
}

/* The first citation in `text` of a .md file that the tree lacks, or of the developers' private folders.
 * The names are written in two pieces so that this file does not cite them itself. */
static int bad_citation(const Tree *t, const char *text, char *what, size_t cap) {
    static const char *const private_dirs[] = {"shared" "/spec", "../shared", "shared" "/DESIGN", "shared" "/STYLE"};
    for (size_t k = 0; k < sizeof private_dirs / sizeof *private_dirs; k++)
        if (strstr(text, private_dirs[k])) {
            snprintf(what, cap, "%s", private_dirs[k]);
            return 1;
        }
    for (const char *p = strstr(text, ".md"); p; p = strstr(p + 3, ".md")) {
        if (is_name_char(p[3])) continue;   /* ".mdx", ".md5" */
        const char *s = p;
        while (s > text && is_name_char(s[-1])) s--;
        if (s == p) continue;
        char base[128];
        snprintf(base, sizeof base, "%.*s.md", (int)(p - s), s);
        if (!tree_has_basename(t, base)) {
            snprintf(what, cap, "%s", base);
            return 1;
        }
    }
    return 0;
}

static int citation_violations(const char *root, const Tree *t, char *first, size_t cap) {
    int bad = 0;
    for (int i = 0; i < t->n; i++) {
        if (!strncmp(t->path[i], "tests/test_layout.c", 19)) continue;   /* names the private folders it forbids */
        char *text = read_text(root, t->path[i]);
        if (!text) continue;
        char what[160];
        if (bad_citation(t, text, what, sizeof what) && bad++ == 0) snprintf(first, cap, "%s cites %s", t->path[i], what);
        free(text);
    }
    return bad;
}

/* ---- a tree that breaks every rule, to prove the checks can fail ----------------------------------- */
static void put(const char *root, const char *rel, const char *text) {
    char full[MAX_PATH];
    snprintf(full, sizeof full, "%s/%s", root, rel);
    char *slash = strrchr(full, '/');
    *slash = 0;
    mkdir(full, 0755);
    *slash = '/';
    FILE *f = fopen(full, "wb");
    if (f) {
        fputs(text, f);
        fclose(f);
    }
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void self_test(void) {
    char root[] = "/tmp/i2v_layout_XXXXXX";
    if (!mkdtemp(root)) {
        check(0, "a temporary folder for the self-test");
        return;
    }
    put(root, "tensor.h", "#include \"kernels/gemm.h\"\n");
    put(root, "kernels/gemm.h", "#include \"kernels/simd.h\"\n");
    put(root, "kernels/simd.h", "  #  include \"tensor.h\"  /* a long way back */\n");
    put(root, "flow.c", "/* as DATA" ".md 1.1 says */\n#include \"tensor.h\"\n");
    put(root, "README.md", "see README.md and docs/notes.md\n");
    put(root, "docs/notes.md", "nothing\n");
    put(root, "bench.c", "int x;\n");
    Tree t = {0};
    walk(root, "", &t);
    char first[MAX_PATH * 4] = "";
    check(root_violations(&t, first, sizeof first) == 1 && !strcmp(first, "bench.c"),
          "self-test: a C file outside the list at the root is found (%s)", first);
    check(find_cycle(root, &t, first, sizeof first) && strstr(first, "kernels/simd") && strstr(first, "tensor"),
          "self-test: a cycle of three modules is found (%s)", first);
    check(citation_violations(root, &t, first, sizeof first) == 1 && strstr(first, "DATA" ".md"),
          "self-test: a citation of a missing document is found (%s)", first);
    put(root, "kernels/simd.h", "/* no includes */\n");
    put(root, "flow.c", "/* see README.md, and shared" "/spec for more */\n");
    tree_free(&t);
    walk(root, "", &t);
    check(!find_cycle(root, &t, first, sizeof first), "self-test: no cycle once it is cut");
    check(citation_violations(root, &t, first, sizeof first) == 1 && strstr(first, "shared" "/spec"),
          "self-test: a citation of the private folders is found (%s)", first);
    tree_free(&t);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int main(void) {
    self_test();
    Tree t = {0};
    walk(".", "", &t);
    check(t.n > 50 && tree_has_basename(&t, "tensor.h"), "the tree is read from the repository root (%d files)", t.n);
    char first[MAX_PATH * 4] = "";
    int nroot = root_violations(&t, first, sizeof first);
    check(nroot == 0, "the root holds only the design's C files (%d others, e.g. %s)", nroot, first);
    first[0] = 0;
    check(!find_cycle(".", &t, first, sizeof first), "no include cycle between modules %s", first);
    first[0] = 0;
    int ncite = citation_violations(".", &t, first, sizeof first);
    check(ncite == 0, "no file cites a document the repository lacks (%d files; first: %s)", ncite, first);
    tree_free(&t);
    return check_summary("test_layout");
}
