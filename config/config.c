/* Warden configuration loader: YAML text (a file or the embedded default) -> struct wd_config.
 * libyaml's event stream is first built into a small node tree that keeps line numbers, then mapped
 * key by key, so every error names its key path and line ("providers.gemini.keys (line 6): ..."). */
/* strdup is POSIX; the CMake build defines _GNU_SOURCE, a bare -std=c17 compile does not. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "config/config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

/* The schema is five levels deep; anything much deeper is garbage or an attack on the stack. */
#define CFG_MAX_DEPTH 32
#define CFG_MAX_FILE_BYTES (1024 * 1024)
#define CFG_PATH_MAX 256
/* Longest piece of a key or value quoted in an error message. */
#define CFG_QUOTE_MAX 64
#define CFG_MAX_WORKERS 4096
/* Key weights are summed by the router; the cap keeps any realistic sum far from overflow. */
#define CFG_MAX_WEIGHT 1000000

static const char default_yaml[] =
    "# Warden's embedded default configuration: one Gemini provider keyed from the environment,\n"
    "# Claude tiers mapped onto Gemini models, client keys from WARDEN_API_KEYS.\n"
    "listen: 0.0.0.0:8080\n"
    "providers:\n"
    "  gemini:\n"
    "    type: gemini\n"
    "    keys:\n"
    "      - secret: env://GEMINI_API_KEY\n"
    "models:\n"
    "  tiers:\n"
    "    opus: gemini/gemini-2.5-pro\n"
    "    sonnet: gemini/gemini-2.5-flash\n"
    "    haiku: gemini/gemini-2.5-flash-lite\n"
    "auth:\n"
    "  keys_env: WARDEN_API_KEYS\n";

enum cfg_kind { CFG_SCALAR, CFG_MAP, CFG_SEQ };

struct cfg_node {
    enum cfg_kind kind;
    int line;               /* 1-based line where the node starts */
    int key_line;           /* line of the key this node is the value of, 0 outside mappings */
    bool is_null;           /* plain empty, ~ or null: treated exactly as if the key were absent */
    bool from_env;          /* interpolation substituted a variable: never quote this text in an error */
    char *text;             /* scalar bytes as libyaml decoded them (may hold NUL), NUL-terminated */
    size_t len;
    struct cfg_node **kids; /* map: key, value, key, value, ...; sequence: items */
    size_t nkids;
    size_t cap;
};

/* A growable byte buffer for interpolation. */
struct cfg_buf {
    char *p;
    size_t len;
    size_t cap;
};

/* One expected key of a fixed-shape mapping, filled by cfg_map_take. */
struct cfg_field {
    const char *name;
    struct cfg_node *key;   /* where the key was written, for line numbers; NULL when absent */
    struct cfg_node *val;   /* NULL when absent or null */
};

/* A name with its line, for duplicate detection by sorting. */
struct cfg_name {
    const char *s;
    size_t len;
    int line;
    size_t idx;             /* position in the list or mapping it came from */
};

/* ---- errors ---------------------------------------------------------------------------------- */

static int cfg_fail(struct wd_config_err *err, int line, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int cfg_fail(struct wd_config_err *err, int line, const char *path, const char *fmt, ...)
{
    char what[384];
    va_list ap;

    if (!err)
        return -1;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    err->line = line;
    if (path && *path && line > 0)
        snprintf(err->msg, sizeof err->msg, "%s (line %d): %s", path, line, what);
    else if (path && *path)
        snprintf(err->msg, sizeof err->msg, "%s: %s", path, what);
    else if (line > 0)
        snprintf(err->msg, sizeof err->msg, "line %d: %s", line, what);
    else
        snprintf(err->msg, sizeof err->msg, "%s", what);
    return -1;
}

static int cfg_oom(struct wd_config_err *err)
{
    return cfg_fail(err, 0, NULL, "out of memory while loading the configuration");
}

/* Copies at most CFG_QUOTE_MAX bytes of s into out, with anything unprintable as '?', so that
 * user text cannot smuggle control characters into logs through an error message. */
static void cfg_quote(char out[CFG_QUOTE_MAX + 4], const char *s, size_t len)
{
    size_t n = len > CFG_QUOTE_MAX ? CFG_QUOTE_MAX : len, i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (len > n) {
        memcpy(out + i, "...", 3);
        i += 3;
    }
    out[i] = '\0';
}

/* The line for errors about a node as a whole (its type): the key's line when it has one. */
static int cfg_line(const struct cfg_node *n)
{
    return n->key_line ? n->key_line : n->line;
}

static const char *cfg_kind_name(const struct cfg_node *n)
{
    switch (n->kind) {
    case CFG_MAP: return "a mapping";
    case CFG_SEQ: return "a list";
    default: return "a scalar";
    }
}

/* ---- node tree ------------------------------------------------------------------------------- */

static void cfg_node_free(struct cfg_node *n)
{
    if (!n)
        return;
    for (size_t i = 0; i < n->nkids; i++)
        cfg_node_free(n->kids[i]);
    free(n->kids);
    free(n->text);
    free(n);
}

static struct cfg_node *cfg_node_new(enum cfg_kind kind, size_t line0)
{
    struct cfg_node *n = calloc(1, sizeof *n);

    if (!n)
        return NULL;
    n->kind = kind;
    n->line = line0 >= (size_t)INT_MAX ? INT_MAX : (int)line0 + 1;
    return n;
}

static int cfg_node_append(struct cfg_node *parent, struct cfg_node *kid)
{
    if (parent->nkids == parent->cap) {
        size_t cap = parent->cap ? parent->cap * 2 : 8;
        struct cfg_node **k;

        if (cap > SIZE_MAX / sizeof *k)
            return -1;
        k = realloc(parent->kids, cap * sizeof *k);
        if (!k)
            return -1;
        parent->kids = k;
        parent->cap = cap;
    }
    /* A block mapping or list starts on the line after its key; errors about the whole value
     * read better pointing at the key. */
    if (parent->kind == CFG_MAP && parent->nkids % 2 == 1)
        kid->key_line = parent->kids[parent->nkids - 1]->line;
    parent->kids[parent->nkids++] = kid;
    return 0;
}

static bool cfg_plain_null(const char *s, size_t len)
{
    return len == 0 || (len == 1 && s[0] == '~') || (len == 4 && (!memcmp(s, "null", 4) ||
           !memcmp(s, "Null", 4) || !memcmp(s, "NULL", 4)));
}

static int cfg_syntax_fail(const yaml_parser_t *p, const char *yaml, size_t len, struct wd_config_err *err)
{
    int line;

    if (p->error == YAML_MEMORY_ERROR)
        return cfg_oom(err);
    if (p->error == YAML_READER_ERROR) {
        /* The reader reports a byte offset, not a mark: count lines up to it. */
        size_t end = p->problem_offset < len ? p->problem_offset : len;
        line = 1;
        for (size_t i = 0; i < end && line < INT_MAX; i++)
            line += yaml[i] == '\n';
    } else {
        line = p->problem_mark.line >= (size_t)INT_MAX ? INT_MAX : (int)p->problem_mark.line + 1;
    }
    if (p->context && p->context_mark.line < (size_t)INT_MAX)
        return cfg_fail(err, line, "syntax error", "%s (%s at line %d)", p->problem ? p->problem : "invalid YAML",
                        p->context, (int)p->context_mark.line + 1);
    return cfg_fail(err, line, "syntax error", "%s", p->problem ? p->problem : "invalid YAML");
}

/* Builds the node tree of the single document in yaml. An empty stream gives *out == NULL.
 * Aliases are refused: a config has no use for them, and refusing them rules out cycles and
 * exponential expansion. The tree is built iteratively so deep nesting cannot exhaust the stack. */
static int cfg_tree_load(const char *yaml, size_t len, struct cfg_node **out, struct wd_config_err *err)
{
    yaml_parser_t parser;
    yaml_event_t ev;
    struct cfg_node *stack[CFG_MAX_DEPTH];
    struct cfg_node *root = NULL;
    size_t depth = 0;
    int ndocs = 0, rc = -1;
    bool done = false;

    *out = NULL;
    if (!yaml_parser_initialize(&parser))
        return cfg_oom(err);
    yaml_parser_set_input_string(&parser, (const unsigned char *)yaml, len);
    while (!done) {
        struct cfg_node *n = NULL;
        bool opens = false;

        if (!yaml_parser_parse(&parser, &ev)) {
            cfg_syntax_fail(&parser, yaml, len, err);
            goto out;
        }
        switch (ev.type) {
        case YAML_STREAM_END_EVENT:
            done = true;
            break;
        case YAML_DOCUMENT_START_EVENT:
            if (++ndocs > 1) {
                cfg_fail(err, (int)(ev.start_mark.line < (size_t)INT_MAX ? ev.start_mark.line + 1 : INT_MAX), NULL,
                         "only one YAML document is allowed");
                goto out_ev;
            }
            break;
        case YAML_ALIAS_EVENT:
            cfg_fail(err, (int)(ev.start_mark.line < (size_t)INT_MAX ? ev.start_mark.line + 1 : INT_MAX), NULL,
                     "YAML aliases (*name) are not supported in the configuration");
            goto out_ev;
        case YAML_SCALAR_EVENT:
            n = cfg_node_new(CFG_SCALAR, ev.start_mark.line);
            if (!n)
                goto oom_ev;
            n->text = malloc(ev.data.scalar.length + 1);
            if (!n->text) {
                cfg_node_free(n);
                goto oom_ev;
            }
            if (ev.data.scalar.length)
                memcpy(n->text, ev.data.scalar.value, ev.data.scalar.length);
            n->text[ev.data.scalar.length] = '\0';
            n->len = ev.data.scalar.length;
            n->is_null = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag &&
                         cfg_plain_null(n->text, n->len);
            break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            n = cfg_node_new(ev.type == YAML_MAPPING_START_EVENT ? CFG_MAP : CFG_SEQ, ev.start_mark.line);
            if (!n)
                goto oom_ev;
            opens = true;
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            break;
        default:
            break;
        }
        if (n) {
            if (depth == 0) {
                if (root) { /* unreachable with one document; kept so a libyaml surprise cannot leak */
                    cfg_node_free(n);
                    cfg_fail(err, 0, NULL, "more than one top-level node");
                    goto out_ev;
                }
                root = n;
            } else if (cfg_node_append(stack[depth - 1], n) != 0) {
                cfg_node_free(n);
                goto oom_ev;
            }
            if (opens) {
                if (depth == CFG_MAX_DEPTH) {
                    cfg_fail(err, n->line, NULL, "nesting deeper than %d levels", CFG_MAX_DEPTH);
                    goto out_ev;
                }
                stack[depth++] = n;
            }
        }
        yaml_event_delete(&ev);
    }
    *out = root;
    root = NULL;
    rc = 0;
    goto out;
oom_ev:
    cfg_oom(err);
out_ev:
    yaml_event_delete(&ev);
out:
    cfg_node_free(root);
    yaml_parser_delete(&parser);
    return rc;
}

/* ---- paths ----------------------------------------------------------------------------------- */

static void cfg_path_key(char out[CFG_PATH_MAX], const char *parent, const struct cfg_node *key)
{
    char q[CFG_QUOTE_MAX + 4];

    cfg_quote(q, key->text, key->len);
    if (snprintf(out, CFG_PATH_MAX, "%s%s%s", parent, *parent ? "." : "", q) >= CFG_PATH_MAX)
        out[CFG_PATH_MAX - 1] = '\0';
}

static void cfg_path_index(char out[CFG_PATH_MAX], const char *parent, size_t i)
{
    if (snprintf(out, CFG_PATH_MAX, "%s[%zu]", parent, i) >= CFG_PATH_MAX)
        out[CFG_PATH_MAX - 1] = '\0';
}

/* ---- scalars --------------------------------------------------------------------------------- */

static int cfg_buf_add(struct cfg_buf *b, const char *s, size_t n)
{
    if (n > SIZE_MAX - b->len - 1)
        return -1;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        char *p;

        while (cap < b->len + n + 1)
            cap = cap > SIZE_MAX / 2 ? b->len + n + 1 : cap * 2;
        p = realloc(b->p, cap);
        if (!p)
            return -1;
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
    return 0;
}

static bool cfg_env_name_ok(const char *s, size_t len)
{
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return false;
    }
    return true;
}

/* Returns the scalar's text with ${VAR} replaced from the environment and $${ turned into ${, as a
 * fresh string. Errors name the variable (config text) but never its value (maybe a secret). */
static int cfg_interpolate(struct cfg_node *n, const char *path, char **out, struct wd_config_err *err)
{
    struct cfg_buf b = {0};
    const char *s = n->text, *end = n->text + n->len;

    *out = NULL;
    if (memchr(n->text, '\0', n->len))
        return cfg_fail(err, n->line, path, "must not contain a NUL character");
    while (s < end) {
        const char *d = memchr(s, '$', (size_t)(end - s));
        const char *name, *close, *val;
        char q[CFG_QUOTE_MAX + 4];

        if (!d) {
            if (cfg_buf_add(&b, s, (size_t)(end - s)) != 0)
                goto oom;
            break;
        }
        if (cfg_buf_add(&b, s, (size_t)(d - s)) != 0)
            goto oom;
        if (end - d >= 3 && d[1] == '$' && d[2] == '{') {
            if (cfg_buf_add(&b, "${", 2) != 0)
                goto oom;
            s = d + 3;
            continue;
        }
        if (end - d < 2 || d[1] != '{') {
            if (cfg_buf_add(&b, "$", 1) != 0)
                goto oom;
            s = d + 1;
            continue;
        }
        name = d + 2;
        close = memchr(name, '}', (size_t)(end - name));
        if (!close) {
            free(b.p);
            return cfg_fail(err, n->line, path, "unterminated ${ (write $${ for a literal ${)");
        }
        if (!cfg_env_name_ok(name, (size_t)(close - name))) {
            free(b.p);
            return cfg_fail(err, n->line, path, "invalid environment variable name in ${...}");
        }
        cfg_quote(q, name, (size_t)(close - name));
        {
            char vname[CFG_PATH_MAX];
            size_t vlen = (size_t)(close - name);

            if (vlen >= sizeof vname) {
                free(b.p);
                return cfg_fail(err, n->line, path, "environment variable name %s is too long", q);
            }
            memcpy(vname, name, vlen);
            vname[vlen] = '\0';
            val = getenv(vname);
        }
        if (!val) {
            free(b.p);
            return cfg_fail(err, n->line, path, "environment variable %s is not set", q);
        }
        if (cfg_buf_add(&b, val, strlen(val)) != 0)
            goto oom;
        n->from_env = true;
        s = close + 1;
    }
    if (!b.p) {
        b.p = calloc(1, 1);
        if (!b.p)
            return cfg_oom(err);
    }
    *out = b.p;
    return 0;
oom:
    free(b.p);
    return cfg_oom(err);
}

/* A scalar value as a fresh, non-empty string. */
static int cfg_get_str(struct cfg_node *n, const char *path, char **out, struct wd_config_err *err)
{
    char *s;

    if (n->kind != CFG_SCALAR)
        return cfg_fail(err, cfg_line(n), path, "must be a string, not %s", cfg_kind_name(n));
    if (cfg_interpolate(n, path, &s, err) != 0)
        return -1;
    if (!*s) {
        free(s);
        return cfg_fail(err, n->line, path, "must not be empty");
    }
    free(*out);
    *out = s;
    return 0;
}

/* Leading decimal digits of s into *v; returns the number of digits, or 0 (none or overflow). */
static size_t cfg_parse_digits(const char *s, uint64_t *v)
{
    uint64_t x = 0;
    size_t i = 0;

    for (; s[i] >= '0' && s[i] <= '9'; i++) {
        unsigned d = (unsigned)(s[i] - '0');
        if (x > (UINT64_MAX - d) / 10)
            return 0;
        x = x * 10 + d;
    }
    *v = x;
    return i;
}

static int cfg_get_uint(struct cfg_node *n, const char *path, uint64_t min, uint64_t max, uint64_t *out,
                        struct wd_config_err *err)
{
    char *s = NULL;
    uint64_t v;
    size_t nd;

    if (n->kind != CFG_SCALAR)
        return cfg_fail(err, cfg_line(n), path, "must be an integer, not %s", cfg_kind_name(n));
    if (cfg_get_str(n, path, &s, err) != 0)
        return -1;
    nd = cfg_parse_digits(s, &v);
    if (nd == 0 || s[nd] != '\0') {
        free(s);
        return cfg_fail(err, n->line, path, "must be an integer");
    }
    free(s);
    if (v < min || v > max)
        return cfg_fail(err, n->line, path, "must be between %llu and %llu", (unsigned long long)min,
                        (unsigned long long)max);
    *out = v;
    return 0;
}

struct cfg_unit {
    const char *suffix;
    uint64_t mult;
};

/* An integer with an optional unit suffix, scaled, greater than 0 and at most max. `what` names the
 * kind of value in type errors ("size"); `form` says what is accepted. */
static int cfg_get_scaled(struct cfg_node *n, const char *path, const struct cfg_unit *units, size_t nunits,
                          uint64_t max, const char *what, const char *form, uint64_t *out,
                          struct wd_config_err *err)
{
    char *s = NULL;
    uint64_t v;
    size_t i;

    if (n->kind != CFG_SCALAR)
        return cfg_fail(err, cfg_line(n), path, "must be a %s, not %s", what, cfg_kind_name(n));
    if (cfg_get_str(n, path, &s, err) != 0)
        return -1;
    size_t nd = cfg_parse_digits(s, &v);
    const char *u = s + nd;
    while (*u == ' ')
        u++;
    for (i = 0; i < nunits; i++)
        if (!strcmp(u, units[i].suffix))
            break;
    free(s);
    if (nd == 0 || i == nunits)
        return cfg_fail(err, n->line, path, "must be %s", form);
    if (v == 0)
        return cfg_fail(err, n->line, path, "must be greater than 0");
    if (v > max / units[i].mult)
        return -2; /* the caller words "too large" for its own kind */
    *out = v * units[i].mult;
    return 0;
}

/* Bytes: an integer, or an integer followed by KiB, MiB or GiB. */
static int cfg_get_size(struct cfg_node *n, const char *path, size_t *out, struct wd_config_err *err)
{
    static const struct cfg_unit units[] = {{"", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}};
    uint64_t v = 0;
    int r = cfg_get_scaled(n, path, units, sizeof units / sizeof units[0], SIZE_MAX, "size",
                           "a size in bytes: an integer, or a number with KiB, MiB or GiB", &v, err);
    if (r == -2)
        return cfg_fail(err, n->line, path, "is too large");
    if (r != 0)
        return r;
    *out = (size_t)v;
    return 0;
}

/* Milliseconds: an integer, or an integer followed by ms, s or m. */
static int cfg_get_duration(struct cfg_node *n, const char *path, unsigned *out, struct wd_config_err *err)
{
    static const struct cfg_unit units[] = {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}};
    uint64_t v = 0;
    int r = cfg_get_scaled(n, path, units, sizeof units / sizeof units[0], UINT_MAX, "duration",
                           "a duration: milliseconds, or a number with ms, s or m", &v, err);
    if (r == -2)
        return cfg_fail(err, n->line, path, "is too long (at most %u ms)", UINT_MAX);
    if (r != 0)
        return r;
    *out = (unsigned)v;
    return 0;
}

/* ---- mappings -------------------------------------------------------------------------------- */

static int cfg_want_map(const struct cfg_node *n, const char *path, struct wd_config_err *err)
{
    if (n->kind != CFG_MAP)
        return cfg_fail(err, cfg_line(n), path, "must be a mapping, not %s", cfg_kind_name(n));
    return 0;
}

static int cfg_want_seq(const struct cfg_node *n, const char *path, struct wd_config_err *err)
{
    if (n->kind != CFG_SEQ)
        return cfg_fail(err, cfg_line(n), path, "must be a list, not %s", cfg_kind_name(n));
    return 0;
}

/* Sorts names by text, then line, so each group of equal names starts with its first occurrence. */
static int cfg_name_cmp(const void *a, const void *b)
{
    const struct cfg_name *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = n ? memcmp(x->s, y->s, n) : 0;

    if (c)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->line > y->line) - (x->line < y->line);
}

/* Finds the earliest repeated name in v (reordered). Returns its index, or -1 when all differ;
 * *first_line gets the line of the name's first occurrence. Sorting keeps huge maps O(n log n). */
static long cfg_names_dup(struct cfg_name *v, size_t n, int *first_line)
{
    long best = -1;
    size_t i, group = 0;

    if (n < 2)
        return -1;
    qsort(v, n, sizeof *v, cfg_name_cmp);
    for (i = 1; i < n; i++) {
        if (v[i].len != v[group].len || (v[i].len && memcmp(v[i].s, v[group].s, v[i].len))) {
            group = i;
            continue;
        }
        /* Within a group the lines ascend, so only the group's second entry can be the earliest repeat. */
        if (i == group + 1 && (best < 0 || v[i].line < v[best].line)) {
            best = (long)i;
            *first_line = v[group].line;
        }
    }
    return best;
}

/* Checks that a free-form mapping (names chosen by the user) has scalar, unique keys. */
static int cfg_map_check_keys(const struct cfg_node *map, const char *path, struct wd_config_err *err)
{
    size_t n = map->nkids / 2, i;
    struct cfg_name *v;
    int first_line = 0;
    long d;

    for (i = 0; i < n; i++) {
        const struct cfg_node *k = map->kids[2 * i];
        if (k->kind != CFG_SCALAR)
            return cfg_fail(err, k->line, path, "keys must be scalars, not %s", cfg_kind_name(k));
    }
    if (n < 2)
        return 0;
    v = calloc(n, sizeof *v);
    if (!v)
        return cfg_oom(err);
    for (i = 0; i < n; i++) {
        const struct cfg_node *k = map->kids[2 * i];
        v[i] = (struct cfg_name){k->text, k->len, k->line, i};
    }
    d = cfg_names_dup(v, n, &first_line);
    if (d >= 0) {
        char kp[CFG_PATH_MAX];
        struct cfg_node key = {.text = (char *)v[d].s, .len = v[d].len};
        int line = v[d].line;

        cfg_path_key(kp, path, &key);
        free(v);
        return cfg_fail(err, line, kp, "duplicate key (first at line %d)", first_line);
    }
    free(v);
    return 0;
}

/* Matches each key of a fixed-shape mapping to one of fields; unknown and repeated keys are errors. */
static int cfg_map_take(const struct cfg_node *map, const char *path, struct cfg_field *f, size_t nf,
                        struct wd_config_err *err)
{
    for (size_t i = 0; i + 1 < map->nkids; i += 2) {
        struct cfg_node *k = map->kids[i], *v = map->kids[i + 1];
        char kp[CFG_PATH_MAX];
        size_t j;

        if (k->kind != CFG_SCALAR)
            return cfg_fail(err, k->line, path, "keys must be scalars, not %s", cfg_kind_name(k));
        cfg_path_key(kp, path, k);
        for (j = 0; j < nf; j++)
            if (strlen(f[j].name) == k->len && !memcmp(f[j].name, k->text, k->len))
                break;
        if (j == nf)
            return cfg_fail(err, k->line, kp, "unknown key");
        if (f[j].key)
            return cfg_fail(err, k->line, kp, "duplicate key (first at line %d)", f[j].key->line);
        f[j].key = k;
        f[j].val = (v->kind == CFG_SCALAR && v->is_null) ? NULL : v;
    }
    return 0;
}

/* ---- sections -------------------------------------------------------------------------------- */

static int cfg_parse_hostport(struct cfg_node *n, const char *path, char **host, uint16_t *portp,
                              struct wd_config_err *err)
{
    char *s = NULL, *host_start, *host_end, *port;
    uint64_t v;
    size_t nd;

    if (cfg_get_str(n, path, &s, err) != 0)
        return -1;
    for (const char *p = s; *p; p++) {
        if ((unsigned char)*p <= 0x20 || *p == 0x7f) {
            free(s);
            return cfg_fail(err, n->line, path, "must not contain spaces or control characters");
        }
    }
    if (s[0] == '[') {
        host_start = s + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || host_end[1] != ':') {
            free(s);
            return cfg_fail(err, n->line, path, "must be host:port, with IPv6 addresses as [addr]:port");
        }
        port = host_end + 2;
    } else {
        host_start = s;
        host_end = strrchr(s, ':');
        if (!host_end) {
            free(s);
            return cfg_fail(err, n->line, path, "must be host:port, e.g. 0.0.0.0:8080");
        }
        if (memchr(s, ':', (size_t)(host_end - s))) {
            free(s);
            return cfg_fail(err, n->line, path, "IPv6 addresses must be written in brackets, e.g. [::1]:8080");
        }
        port = host_end + 1;
    }
    if (host_end == host_start) {
        free(s);
        return cfg_fail(err, n->line, path, "host must not be empty (use 0.0.0.0 for all addresses)");
    }
    nd = cfg_parse_digits(port, &v);
    if (nd == 0 || port[nd] != '\0' || v < 1 || v > 65535) {
        free(s);
        return cfg_fail(err, n->line, path, "port must be an integer from 1 to 65535");
    }
    *host_end = '\0';
    free(*host);
    *host = strdup(host_start);
    free(s);
    if (!*host)
        return cfg_oom(err);
    *portp = (uint16_t)v;
    return 0;
}

static int cfg_parse_listen(struct wd_config *cfg, struct cfg_node *n, const char *path, struct wd_config_err *err)
{
    return cfg_parse_hostport(n, path, &cfg->listen_host, &cfg->listen_port, err);
}

static int cfg_parse_tls(struct wd_config *cfg, struct cfg_node *n, const char *path, int line,
                         struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "cert"}, {.name = "key"}};
    char p[CFG_PATH_MAX];

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 2, err))
        return -1;
    if (f[0].val) {
        cfg_path_key(p, path, f[0].key);
        if (cfg_get_str(f[0].val, p, &cfg->tls_cert, err))
            return -1;
    }
    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_get_str(f[1].val, p, &cfg->tls_key, err))
            return -1;
    }
    if (!cfg->tls_cert != !cfg->tls_key)
        return cfg_fail(err, line, path, "%s is set but %s is missing: give both cert and key, or neither",
                        cfg->tls_cert ? "cert" : "key", cfg->tls_cert ? "key" : "cert");
    return 0;
}

static int cfg_parse_limits(struct wd_config *cfg, struct cfg_node *n, const char *path, struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "max_body_bytes"},  {.name = "max_header_bytes"},       {.name = "idle_timeout"},
                            {.name = "request_timeout"}, {.name = "drain_timeout"},          {.name = "max_response_bytes"},
                            {.name = "max_connections"}, {.name = "max_pending_body_bytes"}, {.name = "http2_max_resets"}};
    unsigned *durations[] = {&cfg->idle_timeout_ms, &cfg->request_timeout_ms, &cfg->drain_timeout_ms};
    char p[CFG_PATH_MAX];

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 9, err))
        return -1;
    if (f[5].val) {
        cfg_path_key(p, path, f[5].key);
        if (cfg_get_size(f[5].val, p, &cfg->max_response_bytes, err))
            return -1;
        /* below 1 KiB not even a provider's error fits; above 1 GiB one answer could take a worker's memory */
        if (cfg->max_response_bytes < 1024 || cfg->max_response_bytes > (size_t)1 << 30)
            return cfg_fail(err, f[5].val->line, p, "must be between 1KiB and 1GiB");
    }
    if (f[0].val) {
        cfg_path_key(p, path, f[0].key);
        if (cfg_get_size(f[0].val, p, &cfg->max_body_bytes, err))
            return -1;
    }
    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_get_size(f[1].val, p, &cfg->max_header_bytes, err))
            return -1;
    }
    for (size_t i = 0; i < 3; i++) {
        if (!f[2 + i].val)
            continue;
        cfg_path_key(p, path, f[2 + i].key);
        if (cfg_get_duration(f[2 + i].val, p, durations[i], err))
            return -1;
    }
    if (f[6].val) {
        uint64_t v;
        cfg_path_key(p, path, f[6].key);
        if (cfg_get_uint(f[6].val, p, 0, 10000000, &v, err))
            return -1;
        cfg->max_connections = (size_t)v;
    }
    if (f[7].val) {
        cfg_path_key(p, path, f[7].key);
        if (cfg_get_size(f[7].val, p, &cfg->max_pending_body_bytes, err))
            return -1;
    }
    if (f[8].val) {
        uint64_t v;
        cfg_path_key(p, path, f[8].key);
        if (cfg_get_uint(f[8].val, p, 1, 1000000, &v, err))
            return -1;
        cfg->http2_max_resets = (unsigned)v;
    }
    /* a chunked body holds its worst case, twice max_body_bytes (libh2o's own cap), until it is complete */
    if (cfg->max_pending_body_bytes / 2 < cfg->max_body_bytes) {
        cfg_path_key(p, path, f[7].val ? f[7].key : f[0].key);
        return cfg_fail(err, f[7].val ? f[7].val->line : f[0].val ? f[0].val->line : n->line, p,
                        "max_pending_body_bytes must be at least twice max_body_bytes");
    }
    return 0;
}

static bool cfg_provider_name_ok(const char *s, size_t len)
{
    if (len == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 1; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A secret reference is stored as written and resolved later by secrets/; here only its shape is
 * checked. The error never quotes the value: a raw key pasted by mistake must not reach the logs. */
static int cfg_get_secret_ref(struct cfg_node *n, const char *path, char **out, struct wd_config_err *err)
{
    static const char *const schemes[] = {"env://", "file://", "vault://", "aws-sm://", "gcp-sm://", "azure-kv://"};
    size_t i;

    if (cfg_get_str(n, path, out, err))
        return -1;
    for (i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t sl = strlen(schemes[i]);
        if (!strncmp(*out, schemes[i], sl)) {
            const char *rest = *out + sl;
            if (!*rest)
                return cfg_fail(err, n->line, path, "secret reference has nothing after %s", schemes[i]);
            if (i == 0 && !cfg_env_name_ok(rest, strlen(rest)))
                return cfg_fail(err, n->line, path, "env:// must be followed by an environment variable name");
            return 0;
        }
    }
    return cfg_fail(err, n->line, path,
                    "must be a secret reference (env://, file://, vault://, aws-sm://, gcp-sm://, azure-kv://), "
                    "never the secret itself");
}

static int cfg_parse_provider_key(struct wd_provider_key *k, struct cfg_node *n, const char *path,
                                  struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "secret"}, {.name = "weight"}};
    char p[CFG_PATH_MAX];
    uint64_t w;

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 2, err))
        return -1;
    if (!f[0].val)
        return cfg_fail(err, n->line, path, "secret is required");
    cfg_path_key(p, path, f[0].key);
    if (cfg_get_secret_ref(f[0].val, p, &k->secret, err))
        return -1;
    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_get_uint(f[1].val, p, 1, CFG_MAX_WEIGHT, &w, err))
            return -1;
        k->weight = (unsigned)w;
    }
    return 0;
}

static int cfg_parse_provider_timeouts(struct wd_provider *pv, struct cfg_node *n, const char *path,
                                       struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "connect"}, {.name = "first_byte"}, {.name = "idle"}};
    unsigned *dst[] = {&pv->connect_timeout_ms, &pv->first_byte_timeout_ms, &pv->idle_timeout_ms};
    char p[CFG_PATH_MAX];

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 3, err))
        return -1;
    for (size_t i = 0; i < 3; i++) {
        if (!f[i].val)
            continue;
        cfg_path_key(p, path, f[i].key);
        if (cfg_get_duration(f[i].val, p, dst[i], err))
            return -1;
    }
    return 0;
}

/* True when the authority of url (after its scheme's "://", skip bytes in) holds userinfo ("user:password@").
 * Such a URL would carry the password into every place the URL is shown (logs, span url.full, errors), so the
 * loader refuses it rather than keep it. */
static bool cfg_url_has_userinfo(const char *url, size_t skip)
{
    size_t n = strcspn(url + skip, "/?#");
    return memchr(url + skip, '@', n) != NULL;
}

static int cfg_parse_base_url(struct wd_provider *pv, struct cfg_node *n, const char *path, struct wd_config_err *err)
{
    size_t len, skip;

    if (cfg_get_str(n, path, &pv->base_url, err))
        return -1;
    if (!strncmp(pv->base_url, "https://", 8))
        skip = 8;
    else if (!strncmp(pv->base_url, "http://", 7))
        skip = 7;
    else
        return cfg_fail(err, n->line, path, "must start with http:// or https://");
    for (const char *c = pv->base_url; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return cfg_fail(err, n->line, path, "must not contain spaces or control characters");
    len = strlen(pv->base_url);
    /* Request paths are appended as "/v1beta/...", so one trailing slash would double up. */
    if (len > skip && pv->base_url[len - 1] == '/')
        pv->base_url[--len] = '\0';
    if (len == skip || pv->base_url[skip] == '/')
        return cfg_fail(err, n->line, path, "has no host");
    if (cfg_url_has_userinfo(pv->base_url, skip))
        return cfg_fail(err, n->line, path,
                        "must not contain user:password@ (it would be shown in logs and traces); give the "
                        "credential under keys");
    return 0;
}

static int cfg_parse_provider(struct wd_provider *pv, struct cfg_node *key, struct cfg_node *n, const char *path,
                              struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "type"}, {.name = "base_url"}, {.name = "tls_ca"}, {.name = "keys"},
                            {.name = "timeouts"}};
    char p[CFG_PATH_MAX], ip[CFG_PATH_MAX];
    char *type = NULL;

    pv->connect_timeout_ms = 10000;
    pv->first_byte_timeout_ms = 120000;
    pv->idle_timeout_ms = 120000;
    if (!cfg_provider_name_ok(key->text, key->len))
        return cfg_fail(err, key->line, path, "provider names must match [a-z0-9][a-z0-9_-]*");
    pv->name = strdup(key->text);
    if (!pv->name)
        return cfg_oom(err);
    if (n->kind == CFG_SCALAR && n->is_null)
        return cfg_fail(err, key->line, path, "must be a mapping with at least type and keys");
    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 5, err))
        return -1;

    if (!f[0].val)
        return cfg_fail(err, key->line, path, "type is required (gemini or anthropic)");
    cfg_path_key(p, path, f[0].key);
    if (cfg_get_str(f[0].val, p, &type, err))
        return -1;
    if (!strcmp(type, "gemini"))
        pv->type = WD_PROVIDER_GEMINI;
    else if (!strcmp(type, "anthropic"))
        pv->type = WD_PROVIDER_ANTHROPIC;
    else if (!strcmp(type, "openai"))
        pv->type = WD_PROVIDER_OPENAI;
    free(type);
    if (!pv->type)
        return cfg_fail(err, f[0].val->line, p, "must be gemini, anthropic or openai");

    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_parse_base_url(pv, f[1].val, p, err))
            return -1;
    } else {
        pv->base_url = strdup(pv->type == WD_PROVIDER_GEMINI    ? "https://generativelanguage.googleapis.com"
                              : pv->type == WD_PROVIDER_OPENAI ? "https://api.openai.com"
                                                               : "https://api.anthropic.com");
        if (!pv->base_url)
            return cfg_oom(err);
    }
    if (f[2].val) {
        cfg_path_key(p, path, f[2].key);
        if (cfg_get_str(f[2].val, p, &pv->tls_ca, err))
            return -1;
    }

    if (!f[3].val)
        return cfg_fail(err, key->line, path, "keys is required: a list with at least one secret");
    cfg_path_key(p, path, f[3].key);
    if (cfg_want_seq(f[3].val, p, err))
        return -1;
    if (f[3].val->nkids == 0)
        return cfg_fail(err, cfg_line(f[3].val), p, "must list at least one key");
    pv->keys = calloc(f[3].val->nkids, sizeof *pv->keys);
    if (!pv->keys)
        return cfg_oom(err);
    pv->nkeys = f[3].val->nkids;
    for (size_t i = 0; i < pv->nkeys; i++) {
        pv->keys[i].weight = 1;
        cfg_path_index(ip, p, i);
        if (cfg_parse_provider_key(&pv->keys[i], f[3].val->kids[i], ip, err))
            return -1;
    }

    if (f[4].val) {
        cfg_path_key(p, path, f[4].key);
        if (cfg_parse_provider_timeouts(pv, f[4].val, p, err))
            return -1;
    }
    return 0;
}

static int cfg_parse_providers(struct wd_config *cfg, struct cfg_node *n, const char *path, struct wd_config_err *err)
{
    char p[CFG_PATH_MAX];

    if (cfg_want_map(n, path, err) || cfg_map_check_keys(n, path, err))
        return -1;
    if (n->nkids == 0)
        return 0;
    cfg->providers = calloc(n->nkids / 2, sizeof *cfg->providers);
    if (!cfg->providers)
        return cfg_oom(err);
    cfg->nproviders = n->nkids / 2;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        cfg_path_key(p, path, n->kids[2 * i]);
        if (cfg_parse_provider(&cfg->providers[i], n->kids[2 * i], n->kids[2 * i + 1], p, err))
            return -1;
    }
    return 0;
}

/* A tier or alias target: "provider/model" naming a configured provider. */
static int cfg_get_target(const struct wd_config *cfg, struct cfg_node *n, const char *path, char **out,
                          struct wd_config_err *err)
{
    const char *slash;

    if (cfg_get_str(n, path, out, err))
        return -1;
    for (const char *c = *out; *c; c++)
        if ((unsigned char)*c <= 0x20 || *c == 0x7f)
            return cfg_fail(err, n->line, path, "must be provider/model without spaces");
    slash = strchr(*out, '/');
    if (!slash || slash == *out || !slash[1])
        return cfg_fail(err, n->line, path, "must be provider/model, e.g. gemini/gemini-2.5-pro");
    if (!wd_config_provider(cfg, *out, (size_t)(slash - *out))) {
        char q[CFG_QUOTE_MAX + 4];

        if (n->from_env)
            return cfg_fail(err, n->line, path, "names a provider that is not configured under providers");
        cfg_quote(q, *out, (size_t)(slash - *out));
        return cfg_fail(err, n->line, path, "provider \"%s\" is not configured under providers", q);
    }
    return 0;
}

/* A non-negative decimal number (prices). */
static int cfg_get_number(struct cfg_node *n, const char *path, double *out, struct wd_config_err *err)
{
    char *s = NULL, *end;
    if (cfg_get_str(n, path, &s, err))
        return -1;
    double v = strtod(s, &end);
    bool bad = *end != '\0' || end == s || !(v >= 0.0 && v < 1e9);
    free(s);
    if (bad)
        return cfg_fail(err, n->line, path, "must be a number, 0 or more");
    *out = v;
    return 0;
}

static int cfg_parse_prices(struct wd_config *cfg, struct cfg_node *m, const char *path, struct wd_config_err *err)
{
    char ap[CFG_PATH_MAX], fp[CFG_PATH_MAX];

    if (cfg_want_map(m, path, err) || cfg_map_check_keys(m, path, err))
        return -1;
    if (m->nkids == 0)
        return 0;
    cfg->prices = calloc(m->nkids / 2, sizeof *cfg->prices);
    if (!cfg->prices)
        return cfg_oom(err);
    for (size_t i = 0; i < m->nkids / 2; i++) {
        struct cfg_node *k = m->kids[2 * i], *v = m->kids[2 * i + 1];
        struct cfg_field f[] = {{.name = "input"}, {.name = "output"}, {.name = "cached"}};
        struct wd_price *pr = &cfg->prices[cfg->nprices++];

        cfg_path_key(ap, path, k);
        pr->cached = -1;
        pr->model = strndup(k->text, k->len);
        if (!pr->model)
            return cfg_oom(err);
        if (cfg_want_map(v, ap, err) || cfg_map_take(v, ap, f, 3, err))
            return -1;
        if (!f[0].val || !f[1].val)
            return cfg_fail(err, v->line, ap, "input and output are required (USD per million tokens)");
        double *dst[] = {&pr->input, &pr->output, &pr->cached};
        for (size_t j = 0; j < 3; j++) {
            if (!f[j].val)
                continue;
            cfg_path_key(fp, ap, f[j].key);
            if (cfg_get_number(f[j].val, fp, dst[j], err))
                return -1;
        }
    }
    return 0;
}

static int cfg_parse_models(struct wd_config *cfg, struct cfg_node *n, const char *path, bool *tiers_given,
                            struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "tiers"}, {.name = "aliases"}, {.name = "prices"}};
    char p[CFG_PATH_MAX], ap[CFG_PATH_MAX];

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 3, err))
        return -1;
    *tiers_given = f[0].val != NULL;
    if (f[2].val) {
        cfg_path_key(p, path, f[2].key);
        if (cfg_parse_prices(cfg, f[2].val, p, err))
            return -1;
    }
    if (f[0].val) {
        struct cfg_field t[] = {{.name = "opus"}, {.name = "sonnet"}, {.name = "haiku"}};
        char **dst[] = {&cfg->tier_opus, &cfg->tier_sonnet, &cfg->tier_haiku};

        cfg_path_key(p, path, f[0].key);
        if (cfg_want_map(f[0].val, p, err) || cfg_map_take(f[0].val, p, t, 3, err))
            return -1;
        for (size_t i = 0; i < 3; i++) {
            if (!t[i].val)
                continue;
            cfg_path_key(ap, p, t[i].key);
            if (cfg_get_target(cfg, t[i].val, ap, dst[i], err))
                return -1;
        }
    }
    if (f[1].val) {
        struct cfg_node *m = f[1].val;

        cfg_path_key(p, path, f[1].key);
        if (cfg_want_map(m, p, err) || cfg_map_check_keys(m, p, err))
            return -1;
        if (m->nkids == 0)
            return 0;
        cfg->aliases = calloc(m->nkids / 2, sizeof *cfg->aliases);
        if (!cfg->aliases)
            return cfg_oom(err);
        cfg->naliases = m->nkids / 2;
        for (size_t i = 0; i < cfg->naliases; i++) {
            struct cfg_node *k = m->kids[2 * i], *v = m->kids[2 * i + 1];

            cfg_path_key(ap, p, k);
            if (k->len == 0 || memchr(k->text, '\0', k->len))
                return cfg_fail(err, k->line, ap, "alias names must be non-empty text");
            cfg->aliases[i].name = strdup(k->text);
            if (!cfg->aliases[i].name)
                return cfg_oom(err);
            if (v->kind == CFG_SCALAR && v->is_null)
                return cfg_fail(err, k->line, ap, "must be provider/model, e.g. gemini/gemini-2.5-flash");
            if (cfg_get_target(cfg, v, ap, &cfg->aliases[i].target, err))
                return -1;
        }
    }
    return 0;
}

/* models.tiers absent (or null): Claude Code asks for opus, sonnet and haiku models by default, and a first
 * config rarely has tiers, so the first provider whose family has an obvious map gets the tiers the embedded
 * default gives it. `tiers: {}` keeps them unset. */
static int cfg_default_tiers(struct wd_config *cfg, struct wd_config_err *err)
{
    static const char *const gemini[3] = {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"};
    char **dst[3] = {&cfg->tier_opus, &cfg->tier_sonnet, &cfg->tier_haiku};

    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct wd_provider *pv = &cfg->providers[i];
        if (pv->type != WD_PROVIDER_GEMINI)
            continue;
        for (size_t t = 0; t < 3; t++) {
            size_t l = strlen(pv->name) + 1 + strlen(gemini[t]) + 1;
            if ((*dst[t] = malloc(l)) == NULL)
                return cfg_oom(err);
            snprintf(*dst[t], l, "%s/%s", pv->name, gemini[t]);
        }
        cfg->tiers_defaulted = pv->name;
        return 0;
    }
    return 0;
}

static int cfg_chain_one(struct wd_chain *c, const char *t, struct wd_config_err *err)
{
    if (t == NULL)
        return 0;
    if ((c->targets = calloc(1, sizeof *c->targets)) == NULL || (c->targets[0] = strdup(t)) == NULL)
        return cfg_oom(err);
    c->n = 1;
    return 0;
}

/* Until lists are parsed: each tier and alias is a chain of its one target. */
static int cfg_chains_of_one(struct wd_config *cfg, struct wd_config_err *err)
{
    cfg->routing = (struct wd_routing_config){.attempts_per_target = 1, .backoff_ms = 200, .max_backoff_ms = 5000,
                                              .max_retry_after_ms = 10000, .retry_budget = 0.2,
                                              .retry_budget_min = 10};
    for (size_t i = 0; i < cfg->nproviders; i++)
        if (cfg->providers[i].type == WD_PROVIDER_ANTHROPIC &&
            (cfg->providers[i].anthropic_version = strdup("2023-06-01")) == NULL)
            return cfg_oom(err);
    for (size_t i = 0; i < cfg->naliases; i++)
        if (cfg_chain_one(&cfg->aliases[i].chain, cfg->aliases[i].target, err))
            return -1;
    const char *tiers[3] = {cfg->tier_opus, cfg->tier_sonnet, cfg->tier_haiku};
    for (int t = 0; t < 3; t++)
        if (cfg_chain_one(&cfg->tier_chains[t], tiers[t], err))
            return -1;
    return 0;
}

static void cfg_chain_free(struct wd_chain *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->targets[i]);
    free(c->targets);
}

int wd_config_tiers_note(const struct wd_config *cfg, char *out, size_t cap)
{
    if (cfg == NULL || cfg->tiers_defaulted == NULL || cap == 0)
        return 0;
    return snprintf(out, cap,
                    "models.tiers is not set: opus -> %s, sonnet -> %s, haiku -> %s (the defaults for provider %s)",
                    cfg->tier_opus, cfg->tier_sonnet, cfg->tier_haiku, cfg->tiers_defaulted);
}

static int cfg_parse_auth(struct wd_config *cfg, struct cfg_node *n, const char *path, struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "keys"}, {.name = "keys_env"}};
    char p[CFG_PATH_MAX], ip[CFG_PATH_MAX], fp[CFG_PATH_MAX];

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 2, err))
        return -1;
    if (f[0].val) {
        struct cfg_node *l = f[0].val;
        struct cfg_name *names;
        int first_line = 0;
        long d;

        cfg_path_key(p, path, f[0].key);
        if (cfg_want_seq(l, p, err))
            return -1;
        if (l->nkids) {
            cfg->auth_keys = calloc(l->nkids, sizeof *cfg->auth_keys);
            if (!cfg->auth_keys)
                return cfg_oom(err);
            cfg->nauth_keys = l->nkids;
        }
        for (size_t i = 0; i < cfg->nauth_keys; i++) {
            struct cfg_field k[] = {{.name = "name"}, {.name = "secret"}};
            struct cfg_node *item = l->kids[i];

            cfg_path_index(ip, p, i);
            if (cfg_want_map(item, ip, err) || cfg_map_take(item, ip, k, 2, err))
                return -1;
            if (!k[0].val)
                return cfg_fail(err, item->line, ip, "name is required");
            if (!k[1].val)
                return cfg_fail(err, item->line, ip, "secret is required");
            cfg_path_key(fp, ip, k[0].key);
            if (cfg_get_str(k[0].val, fp, &cfg->auth_keys[i].name, err))
                return -1;
            cfg_path_key(fp, ip, k[1].key);
            if (cfg_get_secret_ref(k[1].val, fp, &cfg->auth_keys[i].secret, err))
                return -1;
        }
        /* Names label keys in audit records and budgets, so two keys must not share one. */
        if (cfg->nauth_keys > 1) {
            names = calloc(cfg->nauth_keys, sizeof *names);
            if (!names)
                return cfg_oom(err);
            for (size_t i = 0; i < cfg->nauth_keys; i++)
                names[i] = (struct cfg_name){cfg->auth_keys[i].name, strlen(cfg->auth_keys[i].name),
                                             l->kids[i]->line, i};
            d = cfg_names_dup(names, cfg->nauth_keys, &first_line);
            if (d >= 0) {
                int line = names[d].line;

                cfg_path_index(ip, p, names[d].idx);
                free(names);
                if (snprintf(fp, sizeof fp, "%s.name", ip) >= (int)sizeof fp)
                    fp[sizeof fp - 1] = '\0';
                return cfg_fail(err, line, fp, "another key already has this name (first at line %d)", first_line);
            }
            free(names);
        }
    }
    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_get_str(f[1].val, p, &cfg->auth_keys_env, err))
            return -1;
        if (!cfg_env_name_ok(cfg->auth_keys_env, strlen(cfg->auth_keys_env)))
            return cfg_fail(err, f[1].val->line, p, "must be an environment variable name");
    }
    return 0;
}

static int cfg_parse_audit_checkpoints(struct wd_audit_config *a, struct cfg_node *n, const char *path,
                                       struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "every_records"}, {.name = "every_seconds"}, {.name = "signing_key"},
                            {.name = "export"}};
    char p[CFG_PATH_MAX];
    uint64_t v;

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 4, err))
        return -1;
    if (f[0].val) {
        cfg_path_key(p, path, f[0].key);
        if (cfg_get_uint(f[0].val, p, 1, 10000000, &v, err))
            return -1;
        a->every_records = (unsigned)v;
    }
    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_get_uint(f[1].val, p, 1, 86400, &v, err))
            return -1;
        a->every_ms = (unsigned)v * 1000;
    }
    if (f[2].val) {
        cfg_path_key(p, path, f[2].key);
        if (cfg_get_secret_ref(f[2].val, p, &a->signing_key, err))
            return -1;
    }
    if (f[3].val) {
        cfg_path_key(p, path, f[3].key);
        if (cfg_get_str(f[3].val, p, &a->export_path, err))
            return -1;
    }
    return 0;
}

static int cfg_parse_audit(struct wd_config *cfg, struct cfg_node *n, const char *path, struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "database"}, {.name = "mode"},          {.name = "content"},
                            {.name = "spool"},    {.name = "checkpoints"},   {.name = "migrate"},
                            {.name = "queue_records"}, {.name = "batch_wait"}};
    struct wd_audit_config *a = &cfg->audit;
    char p[CFG_PATH_MAX], *s = NULL;
    uint64_t v;

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, sizeof f / sizeof f[0], err))
        return -1;
    if (f[0].val) {
        cfg_path_key(p, path, f[0].key);
        if (cfg_get_str(f[0].val, p, &a->database, err))
            return -1;
        /* a URL or a reference; the error never quotes it (it may carry a password) */
        if (strncmp(a->database, "postgresql://", 13) && strncmp(a->database, "postgres://", 11)) {
            free(a->database);
            a->database = NULL;
            if (cfg_get_secret_ref(f[0].val, p, &a->database, err))
                return -1;
        }
        a->enabled = true;
    }
    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_get_str(f[1].val, p, &s, err))
            return -1;
        if (!strcmp(s, "fail_open"))
            a->mode = WD_AUDIT_FAIL_OPEN;
        else if (!strcmp(s, "fail_closed"))
            a->mode = WD_AUDIT_FAIL_CLOSED;
        else {
            free(s);
            return cfg_fail(err, f[1].val->line, p, "must be fail_open or fail_closed");
        }
        free(s);
        s = NULL;
    }
    if (f[2].val) {
        cfg_path_key(p, path, f[2].key);
        if (cfg_get_str(f[2].val, p, &s, err))
            return -1;
        if (!strcmp(s, "none"))
            a->content = WD_AUDIT_CONTENT_NONE;
        else if (!strcmp(s, "hash"))
            a->content = WD_AUDIT_CONTENT_HASH;
        else if (!strcmp(s, "full"))
            a->content = WD_AUDIT_CONTENT_FULL;
        else {
            free(s);
            return cfg_fail(err, f[2].val->line, p, "must be none, hash or full");
        }
        free(s);
        s = NULL; /* cfg_get_str frees what *out held before */
    }
    if (f[3].val) {
        cfg_path_key(p, path, f[3].key);
        if (cfg_get_str(f[3].val, p, &a->spool, err))
            return -1;
    }
    if (f[4].val) {
        cfg_path_key(p, path, f[4].key);
        if (cfg_parse_audit_checkpoints(a, f[4].val, p, err))
            return -1;
    }
    if (f[5].val) {
        cfg_path_key(p, path, f[5].key);
        if (cfg_get_str(f[5].val, p, &s, err))
            return -1;
        bool t = !strcmp(s, "true"), fl = !strcmp(s, "false");
        free(s);
        s = NULL;
        if (!t && !fl)
            return cfg_fail(err, f[5].val->line, p, "must be true or false");
        a->migrate = t;
    }
    if (f[6].val) {
        cfg_path_key(p, path, f[6].key);
        if (cfg_get_uint(f[6].val, p, 16, 16777216, &v, err))
            return -1;
        a->queue_records = (unsigned)v;
    }
    if (f[7].val) {
        cfg_path_key(p, path, f[7].key);
        if (cfg_get_duration(f[7].val, p, &a->batch_wait_ms, err))
            return -1;
        if (a->batch_wait_ms > 1000)
            return cfg_fail(err, f[7].val->line, p, "must be at most 1s (records wait in memory that long)");
    }
    if (!a->enabled)
        return cfg_fail(err, n->line, path, "database is required when the audit section is present");
    return 0;
}

static int cfg_parse_telemetry_otlp(struct wd_telemetry_config *t, struct cfg_node *n, const char *path,
                                    struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "endpoint"}, {.name = "protocol"},   {.name = "headers"},
                            {.name = "sampling_ratio"}, {.name = "timeout"}, {.name = "compression"}};
    char p[CFG_PATH_MAX], kp[CFG_PATH_MAX], *s = NULL;

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, sizeof f / sizeof f[0], err))
        return -1;
    if (f[0].val) {
        cfg_path_key(p, path, f[0].key);
        if (cfg_get_str(f[0].val, p, &t->otlp_endpoint, err))
            return -1;
        if (strncmp(t->otlp_endpoint, "http://", 7) && strncmp(t->otlp_endpoint, "https://", 8))
            return cfg_fail(err, f[0].val->line, p, "must start with http:// or https://");
        if (cfg_url_has_userinfo(t->otlp_endpoint, t->otlp_endpoint[4] == 's' ? 8 : 7))
            return cfg_fail(err, f[0].val->line, p,
                            "must not contain user:password@ (it would be shown in logs); send credentials "
                            "with telemetry.otlp.headers, whose values may be secret references");
        size_t l = strlen(t->otlp_endpoint);
        while (l > 0 && t->otlp_endpoint[l - 1] == '/')
            t->otlp_endpoint[--l] = '\0';
    }
    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_get_str(f[1].val, p, &s, err))
            return -1;
        if (!strcmp(s, "http/protobuf"))
            t->otlp_protocol = WD_OTLP_PROTOBUF;
        else if (!strcmp(s, "http/json"))
            t->otlp_protocol = WD_OTLP_JSON;
        else {
            free(s);
            return cfg_fail(err, f[1].val->line, p, "must be http/protobuf or http/json");
        }
        free(s);
        s = NULL;
    }
    if (f[2].val) {
        struct cfg_node *h = f[2].val;
        cfg_path_key(p, path, f[2].key);
        if (cfg_want_map(h, p, err) || cfg_map_check_keys(h, p, err))
            return -1;
        size_t nh = h->nkids / 2;
        if (nh) {
            t->otlp_headers = calloc(nh, sizeof *t->otlp_headers);
            if (!t->otlp_headers)
                return cfg_oom(err);
        }
        for (size_t i = 0; i < nh; i++) {
            struct cfg_node *k = h->kids[2 * i], *v = h->kids[2 * i + 1];
            struct wd_otlp_header *hd = &t->otlp_headers[t->notlp_headers++];
            cfg_path_key(kp, p, k);
            hd->name = strndup(k->text, k->len);
            if (!hd->name)
                return cfg_oom(err);
            for (char *c = hd->name; *c; c++) {
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                      *c == '_'))
                    return cfg_fail(err, k->line, kp, "is not a valid header name");
                if (*c >= 'A' && *c <= 'Z')
                    *c = (char)(*c - 'A' + 'a');
            }
            if (cfg_get_str(v, kp, &hd->value, err))
                return -1;
            if (strchr(hd->value, '\n') || strchr(hd->value, '\r'))
                return cfg_fail(err, v->line, kp, "must be one line");
        }
    }
    if (f[3].val) {
        cfg_path_key(p, path, f[3].key);
        if (cfg_get_str(f[3].val, p, &s, err))
            return -1;
        char *end;
        double r = strtod(s, &end);
        bool bad = *end != '\0' || end == s || !(r >= 0.0 && r <= 1.0);
        free(s);
        s = NULL;
        if (bad)
            return cfg_fail(err, f[3].val->line, p, "must be a number from 0 to 1");
        t->sampling_ratio = r;
    }
    if (f[4].val) {
        cfg_path_key(p, path, f[4].key);
        if (cfg_get_duration(f[4].val, p, &t->otlp_timeout_ms, err))
            return -1;
    }
    if (f[5].val) {
        cfg_path_key(p, path, f[5].key);
        if (cfg_get_str(f[5].val, p, &s, err))
            return -1;
        if (!strcmp(s, "gzip"))
            t->otlp_compression = WD_OTLP_COMPRESSION_GZIP;
        else if (!strcmp(s, "none"))
            t->otlp_compression = WD_OTLP_COMPRESSION_NONE;
        else {
            free(s);
            return cfg_fail(err, f[5].val->line, p, "must be gzip or none");
        }
        free(s);
    }
    return 0;
}

static int cfg_parse_telemetry(struct wd_config *cfg, struct cfg_node *n, const char *path,
                               struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "service_name"}, {.name = "otlp"}, {.name = "metrics"}, {.name = "logs"}};
    struct wd_telemetry_config *t = &cfg->telemetry;
    char p[CFG_PATH_MAX], kp[CFG_PATH_MAX];

    if (cfg_want_map(n, path, err) || cfg_map_take(n, path, f, 4, err))
        return -1;
    if (f[0].val) {
        cfg_path_key(p, path, f[0].key);
        if (cfg_get_str(f[0].val, p, &t->service_name, err))
            return -1;
    }
    if (f[1].val) {
        cfg_path_key(p, path, f[1].key);
        if (cfg_parse_telemetry_otlp(t, f[1].val, p, err))
            return -1;
    }
    if (f[2].val) {
        struct cfg_field m[] = {{.name = "listen"}};
        cfg_path_key(p, path, f[2].key);
        if (cfg_want_map(f[2].val, p, err) || cfg_map_take(f[2].val, p, m, 1, err))
            return -1;
        if (m[0].val) {
            cfg_path_key(kp, p, m[0].key);
            char *v = NULL;
            if (cfg_get_str(m[0].val, kp, &v, err))
                return -1;
            bool off = !strcmp(v, "off");
            free(v);
            if (off) {
                free(t->metrics_listen_host);
                t->metrics_listen_host = NULL;
            } else if (cfg_parse_hostport(m[0].val, kp, &t->metrics_listen_host, &t->metrics_listen_port, err)) {
                return -1;
            }
            t->metrics_listen_explicit = true;
        }
    }
    if (f[3].val) {
        struct cfg_field l[] = {{.name = "access"}};
        char *s = NULL;
        cfg_path_key(p, path, f[3].key);
        if (cfg_want_map(f[3].val, p, err) || cfg_map_take(f[3].val, p, l, 1, err))
            return -1;
        if (l[0].val) {
            cfg_path_key(kp, p, l[0].key);
            if (cfg_get_str(l[0].val, kp, &s, err))
                return -1;
            bool tr = !strcmp(s, "true"), fl = !strcmp(s, "false");
            free(s);
            if (!tr && !fl)
                return cfg_fail(err, l[0].val->line, kp, "must be true or false");
            t->access_log = tr;
        }
    }
    return 0;
}

static int cfg_parse_root(struct wd_config *cfg, struct cfg_node *root, struct wd_config_err *err)
{
    struct cfg_field f[] = {{.name = "listen"}, {.name = "tls"}, {.name = "workers"}, {.name = "limits"},
                            {.name = "providers"}, {.name = "models"}, {.name = "auth"}, {.name = "audit"},
                            {.name = "telemetry"}};
    uint64_t w;
    bool tiers_given = false;

    if (!root || (root->kind == CFG_SCALAR && root->is_null))
        return 0;
    if (root->kind != CFG_MAP)
        return cfg_fail(err, root->line, NULL, "the configuration must be a mapping of keys, not %s",
                        cfg_kind_name(root));
    if (cfg_map_take(root, "", f, sizeof f / sizeof f[0], err))
        return -1;
    if (f[0].val && cfg_parse_listen(cfg, f[0].val, "listen", err))
        return -1;
    if (f[1].val && cfg_parse_tls(cfg, f[1].val, "tls", f[1].key->line, err))
        return -1;
    if (f[2].val) {
        if (cfg_get_uint(f[2].val, "workers", 0, CFG_MAX_WORKERS, &w, err))
            return -1;
        cfg->workers = (unsigned)w;
    }
    if (f[3].val && cfg_parse_limits(cfg, f[3].val, "limits", err))
        return -1;
    /* Providers before models: tier and alias targets are checked against them. */
    if (f[4].val && cfg_parse_providers(cfg, f[4].val, "providers", err))
        return -1;
    if (f[5].val && cfg_parse_models(cfg, f[5].val, "models", &tiers_given, err))
        return -1;
    if (!tiers_given && cfg_default_tiers(cfg, err))
        return -1;
    if (cfg_chains_of_one(cfg, err))
        return -1;
    if (f[6].val && cfg_parse_auth(cfg, f[6].val, "auth", err))
        return -1;
    if (f[7].val && cfg_parse_audit(cfg, f[7].val, "audit", err))
        return -1;
    if (f[8].val && cfg_parse_telemetry(cfg, f[8].val, "telemetry", err))
        return -1;
    return 0;
}

/* ---- public ---------------------------------------------------------------------------------- */

int wd_config_parse(const char *yaml, size_t len, const char *source, struct wd_config **out,
                    struct wd_config_err *err)
{
    struct cfg_node *root = NULL;
    struct wd_config *cfg;

    if (err) {
        err->msg[0] = '\0';
        err->line = 0;
    }
    if (!out)
        return cfg_fail(err, 0, NULL, "no place to store the configuration");
    *out = NULL;
    if (!yaml) {
        if (len)
            return cfg_fail(err, 0, NULL, "no configuration text");
        yaml = "";
    }
    cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return cfg_oom(err);
    cfg->listen_port = 8080;
    cfg->max_body_bytes = (size_t)32 * 1024 * 1024;
    cfg->max_header_bytes = (size_t)64 * 1024;
    cfg->max_response_bytes = (size_t)16 * 1024 * 1024;
    cfg->idle_timeout_ms = 60000;
    cfg->request_timeout_ms = 600000;
    cfg->drain_timeout_ms = 30000;
    cfg->max_pending_body_bytes = (size_t)256 * 1024 * 1024;
    cfg->http2_max_resets = 200;
    cfg->audit.migrate = true;
    cfg->telemetry.sampling_ratio = -1.0;
    cfg->telemetry.access_log = true;
    /* /metrics shows key names and token volumes: loopback, off the client listener, unless configured */
    cfg->telemetry.metrics_listen_host = strdup("127.0.0.1");
    cfg->telemetry.metrics_listen_port = 9464;
    cfg->audit.content = WD_AUDIT_CONTENT_HASH;
    cfg->audit.queue_records = 65536;
    cfg->audit.batch_wait_ms = 20;
    cfg->audit.every_records = 1000;
    cfg->audit.every_ms = 10000;
    cfg->audit.spool = strdup("/var/lib/warden/audit-spool");
    cfg->listen_host = strdup("0.0.0.0");
    cfg->source = strdup(source ? source : "<string>");
    {
        unsigned char d[32];
        unsigned dl = 0;
        EVP_Digest(yaml, len, d, &dl, EVP_sha256(), NULL);
        for (unsigned i = 0; i < 32; i++)
            snprintf(cfg->sha256 + 2 * i, 3, "%02x", d[i]);
    }
    if (!cfg->listen_host || !cfg->source || !cfg->audit.spool || !cfg->telemetry.metrics_listen_host) {
        wd_config_free(cfg);
        return cfg_oom(err);
    }
    if (cfg_tree_load(yaml, len, &root, err) != 0 || cfg_parse_root(cfg, root, err) != 0) {
        cfg_node_free(root);
        wd_config_free(cfg);
        return -1;
    }
    cfg_node_free(root);
    *out = cfg;
    return 0;
}

int wd_config_load_file(const char *path, struct wd_config **out, struct wd_config_err *err)
{
    FILE *f;
    char *buf;
    size_t n;
    int rc;

    if (out)
        *out = NULL;
    if (!path)
        return cfg_fail(err, 0, NULL, "no configuration file given");
    f = fopen(path, "rb");
    if (!f)
        return cfg_fail(err, 0, path, "cannot open: %s", strerror(errno));
    /* One byte past the cap tells "exactly 1 MiB" from "too large" without a stat race. */
    buf = malloc(CFG_MAX_FILE_BYTES + 1);
    if (!buf) {
        fclose(f);
        return cfg_oom(err);
    }
    n = fread(buf, 1, CFG_MAX_FILE_BYTES + 1, f);
    if (ferror(f)) {
        int e = errno;
        free(buf);
        fclose(f);
        return cfg_fail(err, 0, path, "cannot read: %s", strerror(e ? e : EIO));
    }
    fclose(f);
    if (n > CFG_MAX_FILE_BYTES) {
        free(buf);
        return cfg_fail(err, 0, path, "larger than the 1 MiB limit for a configuration file");
    }
    rc = wd_config_parse(buf, n, path, out, err);
    free(buf);
    return rc;
}

const char *wd_config_default_yaml(void)
{
    return default_yaml;
}

/* With WARDEN_AUDIT_DATABASE set, the embedded default also keeps an audit trail (README quick start):
 * fail_open, digests only, the spool and the checkpoint export under WARDEN_STATE_DIR (default
 * /var/lib/warden), checkpoints signed with the PEM key in WARDEN_AUDIT_SIGNING_KEY when that is set. */
int wd_config_load_default(struct wd_config **out, struct wd_config_err *err)
{
    const char *db = getenv("WARDEN_AUDIT_DATABASE");
    if (db == NULL || *db == '\0')
        return wd_config_parse(default_yaml, sizeof default_yaml - 1, "<embedded>", out, err);
    const char *key = getenv("WARDEN_AUDIT_SIGNING_KEY");
    const char *dir = getenv("WARDEN_STATE_DIR");
    if (dir == NULL || *dir == '\0')
        dir = "/var/lib/warden";
    if (strlen(dir) > 1024 || strpbrk(dir, "\"\\\n") != NULL)
        return cfg_fail(err, 0, NULL, "WARDEN_STATE_DIR must be a plain path");
    char yaml[sizeof default_yaml + 3072];
    int n = snprintf(yaml, sizeof yaml,
                     "%saudit:\n"
                     "  database: env://WARDEN_AUDIT_DATABASE\n"
                     "  mode: fail_open\n"
                     "  content: hash\n"
                     "  spool: \"%s/audit-spool\"\n"
                     "  checkpoints:\n"
                     "    every_records: 1000\n"
                     "    every_seconds: 10\n"
                     "    export: \"%s/checkpoints.jsonl\"\n"
                     "%s",
                     default_yaml, dir, dir, key && *key ? "    signing_key: env://WARDEN_AUDIT_SIGNING_KEY\n" : "");
    return wd_config_parse(yaml, (size_t)n, "<embedded>", out, err);
}

const struct wd_provider *wd_config_provider(const struct wd_config *cfg, const char *name, size_t name_len)
{
    if (!cfg || !name)
        return NULL;
    for (size_t i = 0; i < cfg->nproviders; i++) {
        const struct wd_provider *p = &cfg->providers[i];
        if (p->name && strlen(p->name) == name_len && !memcmp(p->name, name, name_len))
            return p;
    }
    return NULL;
}

void wd_config_free(struct wd_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->listen_host);
    free(cfg->tls_cert);
    free(cfg->tls_key);
    for (size_t i = 0; i < cfg->nproviders; i++) {
        struct wd_provider *p = &cfg->providers[i];
        free(p->name);
        free(p->base_url);
        free(p->tls_ca);
        free(p->anthropic_version);
        for (size_t k = 0; k < p->nkeys; k++)
            free(p->keys[k].secret);
        free(p->keys);
    }
    free(cfg->providers);
    free(cfg->tier_opus);
    free(cfg->tier_sonnet);
    free(cfg->tier_haiku);
    for (int t = 0; t < 3; t++)
        cfg_chain_free(&cfg->tier_chains[t]);
    for (size_t i = 0; i < cfg->naliases; i++) {
        free(cfg->aliases[i].name);
        free(cfg->aliases[i].target);
        cfg_chain_free(&cfg->aliases[i].chain);
    }
    free(cfg->aliases);
    for (size_t i = 0; i < cfg->nprices; i++)
        free(cfg->prices[i].model);
    free(cfg->prices);
    for (size_t i = 0; i < cfg->nauth_keys; i++) {
        free(cfg->auth_keys[i].name);
        free(cfg->auth_keys[i].secret);
    }
    free(cfg->auth_keys);
    free(cfg->auth_keys_env);
    free(cfg->audit.database);
    free(cfg->audit.spool);
    free(cfg->audit.signing_key);
    free(cfg->audit.export_path);
    free(cfg->telemetry.service_name);
    free(cfg->telemetry.otlp_endpoint);
    for (size_t i = 0; i < cfg->telemetry.notlp_headers; i++) {
        free(cfg->telemetry.otlp_headers[i].name);
        if (cfg->telemetry.otlp_headers[i].value)
            OPENSSL_cleanse(cfg->telemetry.otlp_headers[i].value, strlen(cfg->telemetry.otlp_headers[i].value));
        free(cfg->telemetry.otlp_headers[i].value);
    }
    free(cfg->telemetry.otlp_headers);
    free(cfg->telemetry.metrics_listen_host);
    free(cfg->source);
    free(cfg);
}
