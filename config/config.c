/* Warden configuration loader: YAML text (a file or the embedded default) -> struct wd_config.
 * libyaml's event stream is first built into a small node tree that keeps line numbers; then one walker
 * applies the schema tables at the end of this file (one row per key: type, field, default, bounds, doc)
 * to it, so every error names its key path and line ("providers.gemini.keys (line 6): ...") and the
 * README's reference is generated from, and checked against, the same rows (wd_config_schema_walk). */
/* strdup is POSIX; the CMake build defines _GNU_SOURCE, a bare -std=c17 compile does not. */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L
#endif
#include "config/config.h"
#include "lib/secret_ref.h"
#include "lib/buf.h"
#include "lib/json.h"
#include "lib/hash.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>
#include <openssl/crypto.h>

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
    bool plain;             /* a plain (unquoted, untagged) scalar: true, false, null and numbers read as JSON */
    char *text;             /* scalar bytes as libyaml decoded them (may hold NUL), NUL-terminated */
    size_t len;
    struct cfg_node **kids; /* map: key, value, key, value, ...; sequence: items */
    size_t nkids;
    size_t cap;
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
            n->plain = ev.data.scalar.style == YAML_PLAIN_SCALAR_STYLE && !ev.data.scalar.tag;
            n->is_null = n->plain && cfg_plain_null(n->text, n->len);
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
    struct wd_buf b = {0};
    const char *s = n->text, *end = n->text + n->len;
    const char *why = NULL;
    char q[CFG_QUOTE_MAX + 4], vname[CFG_PATH_MAX];

    *out = NULL;
    if (memchr(n->text, '\0', n->len))
        return cfg_fail(err, n->line, path, "must not contain a NUL character");
    while (s < end && !why) {
        const char *d = memchr(s, '$', (size_t)(end - s)), *name, *close, *val;

        wd_buf_put(&b, s, (size_t)((d ? d : end) - s));
        if (!d)
            break;
        if (end - d >= 3 && d[1] == '$' && d[2] == '{') {
            wd_buf_put(&b, "${", 2);
            s = d + 3;
            continue;
        }
        if (end - d < 2 || d[1] != '{') {
            wd_buf_putc(&b, '$');
            s = d + 1;
            continue;
        }
        name = d + 2;
        close = memchr(name, '}', (size_t)(end - name));
        if (!close) {
            why = "unterminated ${ (write $${ for a literal ${)";
            break;
        }
        size_t vlen = (size_t)(close - name);
        cfg_quote(q, name, vlen);
        if (!cfg_env_name_ok(name, vlen))
            why = "invalid environment variable name in ${...}";
        else if (vlen >= sizeof vname)
            why = "environment variable name %s is too long";
        else {
            memcpy(vname, name, vlen);
            vname[vlen] = '\0';
            if ((val = getenv(vname)) == NULL)
                why = "environment variable %s is not set";
            else
                wd_buf_puts(&b, val);
        }
        n->from_env = true;
        s = close + 1;
    }
    wd_buf_putc(&b, '\0');
    if (why || b.oom) {
        free(b.p);
        return why ? cfg_fail(err, n->line, path, why, q) : cfg_oom(err);
    }
    *out = b.p;
    return 0;
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

/* How a kind of integer is written: an optional unit suffix scales it (sizes, durations). */
struct cfg_numkind {
    const char *what;           /* in type errors: "an integer" */
    const char *form;           /* what is accepted */
    const char *too_big;        /* over the field's capacity */
    uint64_t cap;
    struct {
        const char *suffix;
        uint64_t mult;
    } units[4];
};

static const struct cfg_numkind cfg_int = {"an integer", "an integer", "", UINT64_MAX, {{"", 1}}};
static const struct cfg_numkind cfg_size = {
    "a size", "a size in bytes: an integer, or a number with KiB, MiB or GiB", "is too large", SIZE_MAX,
    {{"", 1}, {"KiB", 1024}, {"MiB", 1024 * 1024}, {"GiB", 1024 * 1024 * 1024}}};
static const struct cfg_numkind cfg_duration = {
    "a duration", "a duration: milliseconds, or a number with ms, s or m", "is too long (at most 4294967295 ms)",
    UINT_MAX, {{"", 1}, {"ms", 1}, {"s", 1000}, {"m", 60000}}};

/* A decimal integer with one of k's unit suffixes (a space before it allowed), scaled. */
static int cfg_get_scaled(struct cfg_node *n, const char *path, const struct cfg_numkind *k, uint64_t *out,
                          struct wd_config_err *err)
{
    char *s = NULL;
    uint64_t v;
    size_t i = 0;

    if (n->kind != CFG_SCALAR)
        return cfg_fail(err, cfg_line(n), path, "must be %s, not %s", k->what, cfg_kind_name(n));
    if (cfg_get_str(n, path, &s, err) != 0)
        return -1;
    size_t nd = cfg_parse_digits(s, &v);
    const char *u = s + nd;
    while (*u == ' ' && k->units[1].suffix)
        u++;
    while (i < 4 && k->units[i].suffix && strcmp(u, k->units[i].suffix))
        i++;
    bool bad = nd == 0 || i == 4 || !k->units[i].suffix;
    free(s);
    if (bad)
        return cfg_fail(err, n->line, path, "must be %s", k->form);
    if (v > 0 && k != &cfg_int && v > k->cap / k->units[i].mult)
        return cfg_fail(err, n->line, path, "%s", k->too_big);
    *out = v * k->units[i].mult;
    return 0;
}

/* ---- mappings -------------------------------------------------------------------------------- */

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

/* ---- the schema's shape --------------------------------------------------------------------- */

enum cfg_type {
    T_STRING, T_PATH, T_BOOL, T_INT, T_SIZE, T_DURATION, T_NUMBER, T_ENUM, T_HOSTPORT, T_URL, T_SECRET,
    T_ENVNAME, T_TARGET, T_CHAIN, T_SECTION, T_MAP_OF, T_LIST_OF, T_STRLIST, T_JSON,
};

struct cfg_ctx {
    struct wd_config *cfg;   /* the config being filled: targets are checked against its providers */
    struct wd_config_err *err;
    bool tiers_given;        /* models.tiers was written (even empty): no defaulting */
};

/* Where a fixed key of a mapping was written; val is NULL when absent or null. */
struct cfg_seen {
    struct cfg_node *key;
    struct cfg_node *val;
};

struct cfg_key;
struct cfg_section;
typedef int cfg_key_check(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *val,
                          const char *path);
typedef int cfg_section_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                              struct cfg_node *map, const char *path);

struct cfg_enum {
    const char *name;
    int value;
};

/* One row: a key of a section. Values are stored at obj + off, obj being the struct the section fills. */
struct cfg_key {
    const char *name;               /* as written in the file ("" for a map element's value) */
    enum cfg_type type;
    size_t off;                     /* the field (section: the struct its keys fill) */
    size_t off2;                    /* host:port: the port; chain: the first target; map/list: the count */
    unsigned width;                 /* sizeof the field, for integers, booleans and enums */
    const char *def;                /* the default written as in a file, converted like one; NULL: zero */
    const char *def_doc;            /* the README's Default text when def cannot say it */
    uint64_t min, max;              /* integer, size, duration bounds; list: least items */
    double fmin, fmax;              /* number bounds */
    unsigned mult;                  /* integer stored as written * mult (seconds written, ms kept) */
    const struct cfg_enum *vals;    /* enum values, ending with {NULL, 0} */
    const struct cfg_section *sub;  /* section; map or list element */
    const char *required;           /* set: the key must be given, and this is the error */
    const char *hint;               /* URL: userinfo advice; duration: why the bound; list: too-short error */
    bool off_word;                  /* host:port: `off` stores no address */
    bool restart;                   /* a reload does not apply it (inherited by the keys below) */
    cfg_key_check *check;           /* after a written value was converted */
    const char *doc;                /* one line: how the README's Meaning column starts */
};

/* A mapping with fixed keys, or the shape of each element of a map or list. */
struct cfg_section {
    const struct cfg_key *keys;     /* in the order they are checked and documented */
    size_t nkeys;
    size_t size;                    /* map or list element: its struct size */
    size_t name_off;                /* map element: where the map key is kept */
    const char *elem;               /* map element: the placeholder in key paths, "<name>" */
    bool scalar;                    /* map element: the value is keys[0] itself, not a mapping */
    bool err_at_key;                /* required-key errors point at the section's key, not its first line */
    const char *null_msg;           /* map element written as null */
    void (*init)(void *obj);        /* "unset" markers that are not defaults (the environment decides) */
    cfg_key_check *name_check;      /* map element: the name, with row NULL */
    cfg_section_check *check;       /* after every key: rules across keys */
};

#define FIELD(T, m) .off = offsetof(T, m), .width = sizeof(((T *)0)->m)
#define NROWS(a) (sizeof(a) / sizeof((a)[0]))
#define KEYS(a) .keys = (a), .nkeys = NROWS(a)
#define CFG_MAX_KEYS 16
#define CFG_MAX_CHAIN 8

static int cfg_walk(struct cfg_ctx *c, const struct cfg_section *s, void *obj, struct cfg_node *key,
                    struct cfg_node *n, const char *path);

static void *cfg_at(void *obj, size_t off)
{
    return (char *)obj + off;
}

static void cfg_store_uint(void *f, unsigned width, uint64_t v)
{
    uint8_t u8 = (uint8_t)v;
    uint16_t u16 = (uint16_t)v;
    uint32_t u32 = (uint32_t)v;

    switch (width) {
    case 1: memcpy(f, &u8, 1); break;
    case 2: memcpy(f, &u16, 2); break;
    case 4: memcpy(f, &u32, 4); break;
    default: memcpy(f, &v, 8); break;
    }
}

static void cfg_free_str(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* "1GiB", "64KiB", "1000" */
static void cfg_fmt_size(char *out, size_t cap, uint64_t v)
{
    static const char *const u[] = {"GiB", "MiB", "KiB"};
    for (int i = 0; i < 3; i++) {
        uint64_t m = (uint64_t)1 << (30 - 10 * i);
        if (v >= m && v % m == 0) {
            snprintf(out, cap, "%llu%s", (unsigned long long)(v / m), u[i]);
            return;
        }
    }
    snprintf(out, cap, "%llu", (unsigned long long)v);
}

static void cfg_fmt_duration(char *out, size_t cap, uint64_t ms)
{
    if (ms >= 60000 && ms % 60000 == 0)
        snprintf(out, cap, "%llum", (unsigned long long)(ms / 60000));
    else if (ms >= 1000 && ms % 1000 == 0)
        snprintf(out, cap, "%llus", (unsigned long long)(ms / 1000));
    else
        snprintf(out, cap, "%llums", (unsigned long long)ms);
}

/* "a, b or c" (sep ", " / " or ") or "`a` \| `b`" (quoted) */
static void cfg_fmt_enum(char *out, size_t cap, const struct cfg_enum *v, bool quoted)
{
    size_t n = 0, k = 0;

    out[0] = '\0';
    while (v[n].name)
        n++;
    for (size_t i = 0; i < n && k < cap; i++) {
        const char *sep = i == 0 ? "" : quoted ? " \\| " : i + 1 == n ? " or " : ", ";
        int w = snprintf(out + k, cap - k, quoted ? "%s`%s`" : "%s%s", sep, v[i].name);
        if (w < 0)
            return;
        k += (size_t)w;
    }
}

/* ---- values ---------------------------------------------------------------------------------- */

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

    if (cfg_get_str(n, path, out, err))
        return -1;
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t sl = strlen(schemes[i]);
        if (!strncmp(*out, schemes[i], sl)) {
            const char *rest = *out + sl;
            char why[160];
            if (!*rest)
                return cfg_fail(err, n->line, path, "secret reference has nothing after %s", schemes[i]);
            if (i == 0 && !cfg_env_name_ok(rest, strlen(rest)))
                return cfg_fail(err, n->line, path, "env:// must be followed by an environment variable name");
            if (wd_secret_ref_check(*out, why, sizeof why) != 0)
                return cfg_fail(err, n->line, path, "%s", why);
            return 0;
        }
    }
    return cfg_fail(err, n->line, path,
                    "must be a secret reference (env://, file://, vault://, aws-sm://, gcp-sm://, azure-kv://), "
                    "never the secret itself");
}

static int cfg_parse_hostport(struct cfg_node *n, const char *path, char **host, uint16_t *portp,
                              struct wd_config_err *err)
{
    char *s = NULL, *host_start, *host_end, *port;
    const char *why = NULL;
    uint64_t v;
    size_t nd;

    if (cfg_get_str(n, path, &s, err) != 0)
        return -1;
    for (const char *p = s; *p && !why; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            why = "must not contain spaces or control characters";
    if (why) {
    } else if (s[0] == '[') {
        host_start = s + 1;
        host_end = strchr(host_start, ']');
        if (!host_end || host_end[1] != ':')
            why = "must be host:port, with IPv6 addresses as [addr]:port";
        else
            port = host_end + 2;
    } else {
        host_start = s;
        host_end = strrchr(s, ':');
        if (!host_end)
            why = "must be host:port, e.g. 0.0.0.0:8080";
        else if (memchr(s, ':', (size_t)(host_end - s)))
            why = "IPv6 addresses must be written in brackets, e.g. [::1]:8080";
        else
            port = host_end + 1;
    }
    if (!why && host_end == host_start)
        why = "host must not be empty (use 0.0.0.0 for all addresses)";
    if (!why && ((nd = cfg_parse_digits(port, &v)) == 0 || port[nd] != '\0' || v < 1 || v > 65535))
        why = "port must be an integer from 1 to 65535";
    if (why) {
        free(s);
        return cfg_fail(err, n->line, path, "%s", why);
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

/* http(s)://host[...], trailing slashes removed (request paths are appended as "/v1beta/..."). userinfo
 * ("user:password@") is refused: the URL is shown in logs, span url.full and errors, the password with it. */
static int cfg_get_url(const struct cfg_key *row, struct cfg_node *n, const char *path, char **out,
                       struct wd_config_err *err)
{
    size_t len, skip;
    char *u;

    if (cfg_get_str(n, path, out, err))
        return -1;
    u = *out;
    if (!strncmp(u, "https://", 8))
        skip = 8;
    else if (!strncmp(u, "http://", 7))
        skip = 7;
    else
        return cfg_fail(err, n->line, path, "must start with http:// or https://");
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return cfg_fail(err, n->line, path, "must not contain spaces or control characters");
    len = strlen(u);
    while (len > skip && u[len - 1] == '/')
        u[--len] = '\0';
    if (len == skip || u[skip] == '/')
        return cfg_fail(err, n->line, path, "has no host");
    if (memchr(u + skip, '@', strcspn(u + skip, "/?#")))
        return cfg_fail(err, n->line, path, "must not contain user:password@ %s", row->hint ? row->hint : "");
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

/* A target or a list of them (a fallback chain); the chain's first target is also kept on its own. */
static int cfg_get_chain(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                         const char *path)
{
    struct wd_chain *ch = cfg_at(obj, row->off);
    char **first = cfg_at(obj, row->off2), ip[CFG_PATH_MAX];
    bool one = n->kind == CFG_SCALAR;
    size_t cnt = one ? 1 : n->nkids;

    if (n->kind == CFG_MAP)
        return cfg_fail(c->err, cfg_line(n), path, "must be a target or a list of targets, not a mapping");
    if (cnt == 0)
        return cfg_fail(c->err, cfg_line(n), path, "must be a target or a non-empty list of targets");
    if (cnt > CFG_MAX_CHAIN)
        return cfg_fail(c->err, cfg_line(n), path, "lists more than %d targets", CFG_MAX_CHAIN);
    if ((ch->targets = calloc(cnt, sizeof *ch->targets)) == NULL)
        return cfg_oom(c->err);
    ch->n = cnt;
    for (size_t i = 0; i < cnt; i++) {
        struct cfg_node *it = one ? n : n->kids[i];

        if (one)
            snprintf(ip, sizeof ip, "%s", path);
        else
            cfg_path_index(ip, path, i);
        if (cfg_get_target(c->cfg, it, ip, &ch->targets[i], c->err))
            return -1;
        for (size_t j = 0; j < i; j++)
            if (!strcmp(ch->targets[j], ch->targets[i]))
                return cfg_fail(c->err, it->line, ip, "duplicate target (first at line %d)", n->kids[j]->line);
    }
    if ((*first = strdup(ch->targets[0])) == NULL)
        return cfg_oom(c->err);
    return 0;
}

/* A string, or a list of strings (at least row->min, no repeats): char ** at off, its count at off2. */
/* A YAML value as JSON text: mappings become objects (scalar keys), sequences arrays, plain true/false/null and
 * JSON-shaped numbers stay what they are, every other scalar (quoted ones included) a string. */
static int cfg_json_of(struct cfg_node *n, const char *path, struct wd_buf *b, int depth, struct wd_config_err *err)
{
    if (depth > 32)
        return cfg_fail(err, n->line, path, "is nested deeper than 32 levels");
    if (n->kind == CFG_MAP) {
        wd_buf_putc(b, '{');
        for (size_t i = 0; i + 1 < n->nkids; i += 2) {
            if (n->kids[i]->kind != CFG_SCALAR)
                return cfg_fail(err, n->kids[i]->line, path, "has a key that is not a string");
            if (i)
                wd_buf_putc(b, ',');
            wd_json_put_string(b, n->kids[i]->text, n->kids[i]->len);
            wd_buf_putc(b, ':');
            if (cfg_json_of(n->kids[i + 1], path, b, depth + 1, err))
                return -1;
        }
        wd_buf_putc(b, '}');
        return 0;
    }
    if (n->kind == CFG_SEQ) {
        wd_buf_putc(b, '[');
        for (size_t i = 0; i < n->nkids; i++) {
            if (i)
                wd_buf_putc(b, ',');
            if (cfg_json_of(n->kids[i], path, b, depth + 1, err))
                return -1;
        }
        wd_buf_putc(b, ']');
        return 0;
    }
    if (n->plain) {
        if (n->is_null) {
            wd_buf_puts(b, "null");
            return 0;
        }
        if ((n->len == 4 && !memcmp(n->text, "true", 4)) || (n->len == 5 && !memcmp(n->text, "false", 5))) {
            wd_buf_put(b, n->text, n->len);
            return 0;
        }
        const char *p = n->text, *e = n->text + n->len;
        if (p < e && *p == '-')
            p++;
        bool num = p < e && isdigit((unsigned char)*p) && !(*p == '0' && p + 1 < e && isdigit((unsigned char)p[1]));
        while (num && p < e && isdigit((unsigned char)*p))
            p++;
        if (num && p < e && *p == '.') {
            p++;
            num = p < e && isdigit((unsigned char)*p);
            while (num && p < e && isdigit((unsigned char)*p))
                p++;
        }
        if (num && p < e && (*p == 'e' || *p == 'E')) {
            p++;
            if (p < e && (*p == '+' || *p == '-'))
                p++;
            num = p < e && isdigit((unsigned char)*p);
            while (num && p < e && isdigit((unsigned char)*p))
                p++;
        }
        if (num && p == e) {
            wd_buf_put(b, n->text, n->len);
            return 0;
        }
    }
    if (memchr(n->text, '\0', n->len) != NULL)
        return cfg_fail(err, n->line, path, "holds a NUL character");
    wd_json_put_string(b, n->text, n->len);
    return 0;
}

static int cfg_get_json(const struct cfg_key *row, struct cfg_node *n, const char *path, char **out,
                        struct wd_config_err *err)
{
    struct wd_buf b = {0};
    if (n->kind != CFG_MAP) {
        return cfg_fail(err, cfg_line(n), path, "must be a mapping");
    }
    if (cfg_json_of(n, path, &b, 0, err)) {
        wd_buf_free(&b);
        return -1;
    }
    wd_buf_putc(&b, '\0');
    if (b.oom) {
        wd_buf_free(&b);
        return cfg_oom(err);
    }
    free(*out);
    *out = b.p;
    return 0;
}

static int cfg_get_strlist(const struct cfg_key *row, void *obj, struct cfg_node *n, const char *path,
                           struct wd_config_err *err)
{
    char ***arr = cfg_at(obj, row->off), ip[CFG_PATH_MAX];
    size_t *cnt = cfg_at(obj, row->off2);
    bool one = n->kind == CFG_SCALAR;
    size_t k = one ? 1 : n->nkids;

    if (n->kind == CFG_MAP)
        return cfg_fail(err, cfg_line(n), path, "must be a string or a list of strings, not a mapping");
    if (k < row->min)
        return cfg_fail(err, cfg_line(n), path, "must list at least %llu", (unsigned long long)row->min);
    if (k > 256)
        return cfg_fail(err, cfg_line(n), path, "lists more than 256 strings");
    if ((*arr = calloc(k ? k : 1, sizeof **arr)) == NULL)
        return cfg_oom(err);
    *cnt = k;
    for (size_t i = 0; i < k; i++) {
        struct cfg_node *it = one ? n : n->kids[i];

        if (one)
            snprintf(ip, sizeof ip, "%s", path);
        else
            cfg_path_index(ip, path, i);
        if (cfg_get_str(it, ip, &(*arr)[i], err))
            return -1;
        for (size_t j = 0; j < i; j++)
            if (!strcmp((*arr)[j], (*arr)[i]))
                return cfg_fail(err, it->line, ip, "repeats an earlier entry (line %d)", n->kids[j]->line);
    }
    return 0;
}

/* A non-negative decimal number within the row's bounds. */
static int cfg_get_number(const struct cfg_key *row, struct cfg_node *n, const char *path, double *out,
                          struct wd_config_err *err)
{
    char *s = NULL, *end;

    if (cfg_get_str(n, path, &s, err))
        return -1;
    double v = strtod(s, &end);
    bool bad = *end != '\0' || end == s || !(v >= row->fmin && v <= row->fmax);
    free(s);
    if (bad && row->fmax >= 1e9)
        return cfg_fail(err, n->line, path, "must be a number, %g or more", row->fmin);
    if (bad)
        return cfg_fail(err, n->line, path, "must be a number from %g to %g", row->fmin, row->fmax);
    *out = v;
    return 0;
}

static int cfg_walk_map(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                        const char *path);
static int cfg_walk_list(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                         const char *path);

/* Converts one written value (or a default, as a scalar node with line 0) into its field. */
static int cfg_conv(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *key,
                    struct cfg_node *n, const char *path)
{
    void *f = cfg_at(obj, row->off);
    struct wd_config_err *err = c->err;
    char *s = NULL, lo[32], hi[32];
    uint64_t v = 0;

    switch (row->type) {
    case T_STRING:
    case T_PATH:
        return cfg_get_str(n, path, f, err);
    case T_SECRET:
        return cfg_get_secret_ref(n, path, f, err);
    case T_URL:
        return cfg_get_url(row, n, path, f, err);
    case T_TARGET:
        return cfg_get_target(c->cfg, n, path, f, err);
    case T_CHAIN:
        return cfg_get_chain(c, row, obj, n, path);
    case T_ENVNAME:
        if (cfg_get_str(n, path, f, err))
            return -1;
        if (!cfg_env_name_ok(*(char **)f, strlen(*(char **)f)))
            return cfg_fail(err, n->line, path, "must be an environment variable name");
        return 0;
    case T_BOOL: {
        if (cfg_get_str(n, path, &s, err))
            return -1;
        bool t = !strcmp(s, "true"), fl = !strcmp(s, "false");
        free(s);
        if (!t && !fl)
            return cfg_fail(err, n->line, path, "must be true or false");
        memcpy(f, &t, sizeof t);
        return 0;
    }
    case T_INT:
    case T_SIZE:
    case T_DURATION:
        if (cfg_get_scaled(n, path, row->type == T_INT ? &cfg_int : row->type == T_SIZE ? &cfg_size : &cfg_duration,
                           &v, err))
            return -1;
        if (row->type == T_INT && (v < row->min || v > row->max))
            return cfg_fail(err, n->line, path, "must be between %llu and %llu", (unsigned long long)row->min,
                            (unsigned long long)row->max);
        if (row->type != T_INT && v == 0)
            return cfg_fail(err, n->line, path, "must be greater than 0");
        if (row->type == T_SIZE && row->max && (v < row->min || v > row->max)) {
            cfg_fmt_size(lo, sizeof lo, row->min);
            cfg_fmt_size(hi, sizeof hi, row->max);
            return cfg_fail(err, n->line, path, "must be between %s and %s", lo, hi);
        }
        if (row->type == T_DURATION && row->max && v > row->max) {
            cfg_fmt_duration(hi, sizeof hi, row->max);
            return cfg_fail(err, n->line, path, "must be at most %s%s%s%s", hi, row->hint ? " (" : "",
                            row->hint ? row->hint : "", row->hint ? ")" : "");
        }
        cfg_store_uint(f, row->width, v * (row->mult ? row->mult : 1));
        return 0;
    case T_NUMBER:
        return cfg_get_number(row, n, path, f, err);
    case T_ENUM: {
        char all[160];
        size_t i;
        if (cfg_get_str(n, path, &s, err))
            return -1;
        for (i = 0; row->vals[i].name && strcmp(row->vals[i].name, s); i++)
            ;
        free(s);
        if (!row->vals[i].name) {
            cfg_fmt_enum(all, sizeof all, row->vals, false);
            return cfg_fail(err, n->line, path, "must be %s", all);
        }
        cfg_store_uint(f, row->width, (uint64_t)(int64_t)row->vals[i].value);
        return 0;
    }
    case T_HOSTPORT:
        if (row->off_word && n->kind == CFG_SCALAR) {
            if (cfg_get_str(n, path, &s, err))
                return -1;
            bool off = !strcmp(s, "off");
            free(s);
            if (off) {
                free(*(char **)f);
                *(char **)f = NULL;
                return 0;
            }
        }
        return cfg_parse_hostport(n, path, f, cfg_at(obj, row->off2), err);
    case T_STRLIST:
        return cfg_get_strlist(row, obj, n, path, err);
    case T_JSON:
        return cfg_get_json(row, n, path, (char **)f, err);
    case T_SECTION:
        return cfg_walk(c, row->sub, f, key, n, path);
    case T_MAP_OF:
        return cfg_walk_map(c, row, obj, n, path);
    case T_LIST_OF:
        return cfg_walk_list(c, row, obj, n, path);
    }
    return cfg_fail(err, n->line, path, "unknown value type");
}

/* ---- the walker ------------------------------------------------------------------------------ */

/* Every default of a section (and of its sections below), before any written value. */
static int cfg_defaults(struct cfg_ctx *c, const struct cfg_section *s, void *obj)
{
    if (s->init)
        s->init(obj);
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct cfg_key *row = &s->keys[i];

        if (row->type == T_SECTION && cfg_defaults(c, row->sub, cfg_at(obj, row->off)))
            return -1;
        if (row->def) {
            struct cfg_node d = {.kind = CFG_SCALAR, .text = (char *)row->def, .len = strlen(row->def)};
            if (cfg_conv(c, row, obj, NULL, &d, row->name))
                return -1;
        }
    }
    return 0;
}

/* Applies section s to mapping n (NULL: written as null) filling obj: unknown and repeated keys,
 * then every row in table order (that order is the order errors are found in), then the section's rules. */
static int cfg_walk(struct cfg_ctx *c, const struct cfg_section *s, void *obj, struct cfg_node *key,
                    struct cfg_node *n, const char *path)
{
    struct cfg_seen seen[CFG_MAX_KEYS] = {{0}};
    char kp[CFG_PATH_MAX];

    if (s->nkeys > CFG_MAX_KEYS)
        return cfg_fail(c->err, 0, path, "schema section with more than %d keys", CFG_MAX_KEYS);
    if (n && n->kind != CFG_MAP)
        return cfg_fail(c->err, cfg_line(n), path, "must be a mapping, not %s", cfg_kind_name(n));
    for (size_t i = 0; n && i + 1 < n->nkids; i += 2) {
        struct cfg_node *k = n->kids[i], *v = n->kids[i + 1];
        size_t j;

        if (k->kind != CFG_SCALAR)
            return cfg_fail(c->err, k->line, path, "keys must be scalars, not %s", cfg_kind_name(k));
        cfg_path_key(kp, path, k);
        for (j = 0; j < s->nkeys; j++)
            if (strlen(s->keys[j].name) == k->len && !memcmp(s->keys[j].name, k->text, k->len))
                break;
        if (j == s->nkeys)
            return cfg_fail(c->err, k->line, kp, "unknown key");
        if (seen[j].key)
            return cfg_fail(c->err, k->line, kp, "duplicate key (first at line %d)", seen[j].key->line);
        seen[j] = (struct cfg_seen){k, (v->kind == CFG_SCALAR && v->is_null) ? NULL : v};
    }
    for (size_t j = 0; j < s->nkeys; j++) {
        const struct cfg_key *row = &s->keys[j];

        if (!seen[j].val) {
            if (row->required)
                return cfg_fail(c->err, key && (s->err_at_key || !n) ? key->line : n ? n->line : 0, path, "%s",
                                row->required);
            continue;
        }
        cfg_path_key(kp, path, seen[j].key);
        if (cfg_conv(c, row, obj, seen[j].key, seen[j].val, kp) ||
            (row->check && row->check(c, row, obj, seen[j].val, kp)))
            return -1;
    }
    return s->check ? s->check(c, obj, seen, key, n, path) : 0;
}

/* A mapping from names the operator chooses to elements of one shape. */
static int cfg_walk_map(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                        const char *path)
{
    const struct cfg_section *s = row->sub;
    size_t cnt = n->nkids / 2;
    char ep[CFG_PATH_MAX];
    char *arr;

    if (n->kind != CFG_MAP)
        return cfg_fail(c->err, cfg_line(n), path, "must be a mapping, not %s", cfg_kind_name(n));
    if (cfg_map_check_keys(n, path, c->err))
        return -1;
    if (cnt == 0)
        return 0;
    if ((arr = calloc(cnt, s->size)) == NULL)
        return cfg_oom(c->err);
    *(char **)cfg_at(obj, row->off) = arr;
    *(size_t *)cfg_at(obj, row->off2) = cnt;
    for (size_t i = 0; i < cnt; i++) {
        struct cfg_node *k = n->kids[2 * i], *v = n->kids[2 * i + 1];
        void *el = arr + i * s->size;
        bool null = v->kind == CFG_SCALAR && v->is_null;
        char **name = cfg_at(el, s->name_off);

        cfg_path_key(ep, path, k);
        if ((*name = strndup(k->text, k->len)) == NULL)
            return cfg_oom(c->err);
        if ((s->name_check && s->name_check(c, NULL, el, k, ep)) || cfg_defaults(c, s, el))
            return -1;
        if (null && s->null_msg)
            return cfg_fail(c->err, k->line, ep, "%s", s->null_msg);
        if (!s->scalar) {
            if (cfg_walk(c, s, el, k, null ? NULL : v, ep))
                return -1;
            continue;
        }
        if (null)
            return cfg_fail(c->err, k->line, ep, "must not be empty");
        if (cfg_conv(c, &s->keys[0], el, k, v, ep) ||
            (s->keys[0].check && s->keys[0].check(c, &s->keys[0], el, v, ep)))
            return -1;
    }
    return 0;
}

static int cfg_walk_list(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                         const char *path)
{
    const struct cfg_section *s = row->sub;
    char ip[CFG_PATH_MAX];
    char *arr;

    if (n->kind != CFG_SEQ)
        return cfg_fail(c->err, cfg_line(n), path, "must be a list, not %s", cfg_kind_name(n));
    if (n->nkids < row->min)
        return cfg_fail(c->err, cfg_line(n), path, "%s", row->hint ? row->hint : "must not be empty");
    if (n->nkids == 0)
        return 0;
    if ((arr = calloc(n->nkids, s->size)) == NULL)
        return cfg_oom(c->err);
    *(char **)cfg_at(obj, row->off) = arr;
    *(size_t *)cfg_at(obj, row->off2) = n->nkids;
    for (size_t i = 0; i < n->nkids; i++) {
        cfg_path_index(ip, path, i);
        if (cfg_defaults(c, s, arr + i * s->size) || cfg_walk(c, s, arr + i * s->size, NULL, n->kids[i], ip))
            return -1;
    }
    return 0;
}

static void cfg_free_obj(const struct cfg_section *s, void *obj)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct cfg_key *row = &s->keys[i];
        void *f = cfg_at(obj, row->off);

        switch (row->type) {
        case T_STRING: case T_PATH: case T_URL: case T_SECRET: case T_ENVNAME: case T_TARGET: case T_HOSTPORT:
        case T_JSON:
            cfg_free_str(*(char **)f);
            break;
        case T_CHAIN: {
            struct wd_chain *ch = f;
            for (size_t k = 0; k < ch->n; k++)
                free(ch->targets[k]);
            free(ch->targets);
            free(*(char **)cfg_at(obj, row->off2));
            break;
        }
        case T_STRLIST: {
            char **arr = *(char ***)f;
            size_t cnt = *(size_t *)cfg_at(obj, row->off2);
            for (size_t k = 0; arr && k < cnt; k++)
                free(arr[k]);
            free(arr);
            break;
        }
        case T_SECTION:
            cfg_free_obj(row->sub, f);
            break;
        case T_MAP_OF:
        case T_LIST_OF: {
            char *arr = *(char **)f;
            size_t cnt = *(size_t *)cfg_at(obj, row->off2);
            for (size_t k = 0; arr && k < cnt; k++) {
                cfg_free_obj(row->sub, arr + k * row->sub->size);
                if (row->type == T_MAP_OF)
                    free(*(char **)cfg_at(arr + k * row->sub->size, row->sub->name_off));
            }
            free(arr);
            break;
        }
        default:
            break;
        }
    }
}

/* ---- rules across keys ----------------------------------------------------------------------- */

static const struct cfg_seen *cfg_seen_of(const struct cfg_section *s, const struct cfg_seen *seen,
                                          const char *name)
{
    for (size_t i = 0; i < s->nkeys; i++)
        if (!strcmp(s->keys[i].name, name))
            return &seen[i];
    return NULL;
}

/* The tables are at the end of the file; the rules look their own keys up by name. */
static const struct cfg_section limits_section, provider_section, models_section;

static int cfg_tls_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                         struct cfg_node *map, const char *path)
{
    const struct wd_config *cfg = obj;

    if (!cfg->tls_cert != !cfg->tls_key)
        return cfg_fail(c->err, key->line, path, "%s is set but %s is missing: give both cert and key, or neither",
                        cfg->tls_cert ? "cert" : "key", cfg->tls_cert ? "key" : "cert");
    return 0;
}

/* A chunked body holds its worst case, twice max_body_bytes (libh2o's own cap), until it is complete. */
static int cfg_limits_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                            struct cfg_node *map, const char *path)
{
    const struct wd_config *cfg = obj;
    const struct cfg_seen *pend = cfg_seen_of(&limits_section, seen, "max_pending_body_bytes");
    const struct cfg_seen *body = cfg_seen_of(&limits_section, seen, "max_body_bytes");
    const struct cfg_seen *at = pend->val ? pend : body;
    char p[CFG_PATH_MAX];

    if (cfg->max_pending_body_bytes / 2 >= cfg->max_body_bytes || !at->key)
        return 0;
    cfg_path_key(p, path, at->key);
    return cfg_fail(c->err, at->val ? at->val->line : map->line, p,
                    "max_pending_body_bytes must be at least twice max_body_bytes");
}

static int cfg_provider_name(struct cfg_ctx *c, const struct cfg_key *row, void *el, struct cfg_node *k,
                             const char *path)
{
    if (!cfg_provider_name_ok(k->text, k->len))
        return cfg_fail(c->err, k->line, path, "provider names must match [a-z0-9][a-z0-9_-]*");
    return 0;
}

static int cfg_provider_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                              struct cfg_node *map, const char *path)
{
    static const char *const base_urls[] = {[WD_PROVIDER_GEMINI] = "https://generativelanguage.googleapis.com",
                                            [WD_PROVIDER_ANTHROPIC] = "https://api.anthropic.com",
                                            [WD_PROVIDER_OPENAI] = "https://api.openai.com"};
    /* keys that only one family reads: given for another, they are a mistake worth naming */
    static const struct {
        const char *key;
        enum wd_provider_type type;
        const char *what;
    } only[] = {{"anthropic_version", WD_PROVIDER_ANTHROPIC, "anthropic"},
                {"tokens_field", WD_PROVIDER_OPENAI, "openai"}};
    struct wd_provider *pv = obj;
    char p[CFG_PATH_MAX];

    for (size_t i = 0; i < NROWS(only); i++) {
        const struct cfg_seen *s = cfg_seen_of(&provider_section, seen, only[i].key);
        if (s->val && pv->type != only[i].type) {
            cfg_path_key(p, path, s->key);
            return cfg_fail(c->err, s->val->line, p, "is only for type %s", only[i].what);
        }
    }
    if (pv->type != WD_PROVIDER_ANTHROPIC) {
        cfg_free_str(pv->anthropic_version);
        pv->anthropic_version = NULL;
    }
    if (!pv->base_url && (pv->base_url = strdup(base_urls[pv->type])) == NULL)
        return cfg_oom(c->err);
    return 0;
}

static int cfg_alias_name(struct cfg_ctx *c, const struct cfg_key *row, void *el, struct cfg_node *k,
                          const char *path)
{
    if (k->len == 0 || memchr(k->text, '\0', k->len))
        return cfg_fail(c->err, k->line, path, "alias names must be non-empty text");
    return 0;
}

static int cfg_models_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                            struct cfg_node *map, const char *path)
{
    c->tiers_given = cfg_seen_of(&models_section, seen, "tiers")->val != NULL;
    return 0;
}

/* Names label keys in audit records and budgets, so two keys must not share one. */
static int cfg_auth_keys_unique(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *l,
                                const char *path)
{
    const struct wd_config *cfg = obj;
    struct cfg_name *names;
    char ip[CFG_PATH_MAX], fp[CFG_PATH_MAX];
    int first_line = 0;
    long d;

    if (cfg->nauth_keys < 2)
        return 0;
    if ((names = calloc(cfg->nauth_keys, sizeof *names)) == NULL)
        return cfg_oom(c->err);
    for (size_t i = 0; i < cfg->nauth_keys; i++)
        names[i] = (struct cfg_name){cfg->auth_keys[i].name, strlen(cfg->auth_keys[i].name), l->kids[i]->line, i};
    d = cfg_names_dup(names, cfg->nauth_keys, &first_line);
    if (d < 0) {
        free(names);
        return 0;
    }
    int line = names[d].line;
    cfg_path_index(ip, path, names[d].idx);
    free(names);
    if (snprintf(fp, sizeof fp, "%s.name", ip) >= (int)sizeof fp)
        fp[sizeof fp - 1] = '\0';
    return cfg_fail(c->err, line, fp, "another key already has this name (first at line %d)", first_line);
}

/* A postgresql:// URL, or a secret reference holding one; the error never quotes it (it may carry a password). */
static int cfg_audit_database(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                              const char *path)
{
    struct wd_audit_config *a = obj;

    if (strncmp(a->database, "postgresql://", 13) && strncmp(a->database, "postgres://", 11)) {
        cfg_free_str(a->database);
        a->database = NULL;
        if (cfg_get_secret_ref(n, path, &a->database, c->err))
            return -1;
    }
    a->enabled = true;
    return 0;
}

/* Checked last, as the section's rule: the other keys' own errors come first. */
static int cfg_audit_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                           struct cfg_node *map, const char *path)
{
    if (!((struct wd_audit_config *)obj)->enabled)
        return cfg_fail(c->err, map ? map->line : key->line, path,
                        "database is required when the audit section is present");
    return 0;
}

static int cfg_metrics_explicit(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                                const char *path)
{
    c->cfg->telemetry.metrics_listen_explicit = true;
    return 0;
}

static int cfg_header_name(struct cfg_ctx *c, const struct cfg_key *row, void *el, struct cfg_node *k,
                           const char *path)
{
    struct wd_otlp_header *h = el;

    for (char *p = h->name; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') || *p == '-' ||
              *p == '_'))
            return cfg_fail(c->err, k->line, path, "is not a valid header name");
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    if (strlen(h->name) != k->len || k->len == 0)
        return cfg_fail(c->err, k->line, path, "is not a valid header name");
    return 0;
}

static int cfg_one_line(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                        const char *path)
{
    const char *v = *(char **)cfg_at(obj, row->off);

    if (strchr(v, '\n') || strchr(v, '\r'))
        return cfg_fail(c->err, n->line, path, "must be one line");
    return 0;
}

static void cfg_price_init(void *obj)
{
    ((struct wd_price *)obj)->cached = -1;
}

static void cfg_telemetry_init(void *obj)
{
    ((struct wd_telemetry_config *)obj)->sampling_ratio = -1.0;
}

/* Tiers as a chain of one target each. */
static int cfg_set_tier(struct wd_config *cfg, int t, const char *target, struct wd_config_err *err)
{
    char **dst[3] = {&cfg->tier_opus, &cfg->tier_sonnet, &cfg->tier_haiku};
    struct wd_chain *ch = &cfg->tier_chains[t];

    if ((*dst[t] = strdup(target)) == NULL || (ch->targets = calloc(1, sizeof *ch->targets)) == NULL ||
        (ch->targets[0] = strdup(target)) == NULL)
        return cfg_oom(err);
    ch->n = 1;
    return 0;
}

/* models.tiers absent (or null): Claude Code asks for opus, sonnet and haiku models by default, and a first
 * config rarely has tiers, so the first provider whose family has an obvious map gets the tiers the embedded
 * default gives it. `tiers: {}` keeps them unset. */
static int cfg_root_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                          struct cfg_node *map, const char *path)
{
    static const char *const gemini[3] = {"gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite"};
    struct wd_config *cfg = obj;
    char t[CFG_PATH_MAX + 32];

    for (size_t i = 0; !c->tiers_given && i < cfg->nproviders; i++) {
        const struct wd_provider *pv = &cfg->providers[i];
        if (pv->type != WD_PROVIDER_GEMINI)
            continue;
        for (int k = 0; k < 3; k++) {
            snprintf(t, sizeof t, "%s/%s", pv->name, gemini[k]);
            if (cfg_set_tier(cfg, k, t, c->err))
                return -1;
        }
        cfg->tiers_defaulted = pv->name;
        break;
    }
    return 0;
}

/* An issuer is compared byte for byte with `iss` (Entra v1's ends in a slash): kept as written. https, or http
 * to a loopback host (a local IdP in tests). */
static int cfg_oidc_issuer(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                           const char *path)
{
    (void)row;
    const char *u = ((struct wd_oidc_issuer *)obj)->issuer;
    for (const char *p = u; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return cfg_fail(c->err, n->line, path, "must not contain spaces or control characters");
    if (!strncmp(u, "https://", 8) && u[8] != '\0' && u[8] != '/')
        return 0;
    if (!strncmp(u, "http://127.0.0.1", 16) || !strncmp(u, "http://localhost", 16) || !strncmp(u, "http://[::1]", 12))
        return 0;
    return cfg_fail(c->err, n->line, path, "must be an https:// URL (http:// only to a loopback address)");
}

static int cfg_oidc_unique(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *l,
                           const char *path)
{
    (void)row;
    const struct wd_config *cfg = obj;
    char ip[CFG_PATH_MAX + 16];
    for (size_t i = 0; i < cfg->noidc; i++)
        for (size_t j = 0; j < i; j++) {
            const char *what = !strcmp(cfg->oidc[i].name, cfg->oidc[j].name)       ? "name"
                               : !strcmp(cfg->oidc[i].issuer, cfg->oidc[j].issuer) ? "issuer"
                                                                                    : NULL;
            if (what == NULL)
                continue;
            cfg_path_index(ip, path, i);
            size_t n = strlen(ip);
            snprintf(ip + n, sizeof ip - n, ".%s", what);
            return cfg_fail(c->err, l->kids[i]->line, ip, "another issuer already has this %s (line %d)", what,
                            l->kids[j]->line);
        }
    return 0;
}

/* rbac: a binding names exactly one of group, subject and key, and a role that exists. */
static int cfg_rbac_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                          struct cfg_node *map, const char *path)
{
    (void)seen, (void)key, (void)map;
    struct wd_config *cfg = c->cfg;
    (void)obj;
    char ip[CFG_PATH_MAX + 16];
    cfg->rbac = true;
    if (cfg->nroles > 64) /* authz/rbac.h: a principal's roles are a 64-bit set */
        return cfg_fail(c->err, 0, path, "defines %zu roles; at most 64", cfg->nroles);
    for (size_t i = 0; i < cfg->nbindings; i++) {
        const struct wd_rbac_binding *b = &cfg->bindings[i];
        snprintf(ip, sizeof ip, "%s.bindings[%zu]", path, i);
        int who = (b->group != NULL) + (b->subject != NULL) + (b->key != NULL);
        if (who != 1)
            return cfg_fail(c->err, 0, ip, "must name exactly one of group, subject and key");
        size_t r = 0;
        while (r < cfg->nroles && strcmp(cfg->roles[r].name, b->role))
            r++;
        if (r == cfg->nroles)
            return cfg_fail(c->err, 0, ip, "role %s is not defined in rbac.roles", b->role);
    }
    return 0;
}

/* ---- the schema ------------------------------------------------------------------------------ */

static const struct cfg_enum provider_types[] = {
    {"gemini", WD_PROVIDER_GEMINI}, {"anthropic", WD_PROVIDER_ANTHROPIC}, {"openai", WD_PROVIDER_OPENAI}, {NULL, 0}};
static const struct cfg_enum tokens_fields[] = {{"auto", WD_TOKENS_FIELD_AUTO},
                                                {"max_tokens", WD_TOKENS_FIELD_MAX_TOKENS},
                                                {"max_completion_tokens", WD_TOKENS_FIELD_MAX_COMPLETION_TOKENS},
                                                {NULL, 0}};
static const struct cfg_enum audit_modes[] = {{"fail_open", WD_AUDIT_FAIL_OPEN}, {"fail_closed", WD_AUDIT_FAIL_CLOSED},
                                              {NULL, 0}};
static const struct cfg_enum audit_contents[] = {
    {"none", WD_AUDIT_CONTENT_NONE}, {"hash", WD_AUDIT_CONTENT_HASH}, {"full", WD_AUDIT_CONTENT_FULL}, {NULL, 0}};
static const struct cfg_enum otlp_protocols[] = {{"http/protobuf", WD_OTLP_PROTOBUF}, {"http/json", WD_OTLP_JSON},
                                                 {NULL, 0}};
static const struct cfg_enum otlp_compressions[] = {{"gzip", WD_OTLP_COMPRESSION_GZIP},
                                                    {"none", WD_OTLP_COMPRESSION_NONE}, {NULL, 0}};

#define CFG ((struct wd_config *)0)
#define MIB ((uint64_t)1 << 20)

static const struct cfg_key tls_keys[] = {
    {"cert", T_PATH, FIELD(struct wd_config, tls_cert), .doc = "PEM certificate chain."},
    {"key", T_PATH, FIELD(struct wd_config, tls_key), .doc = "PEM private key."},
};
static const struct cfg_section tls_section = {KEYS(tls_keys), .check = cfg_tls_check};

static const struct cfg_key limits_keys[] = {
    {"max_body_bytes", T_SIZE, FIELD(struct wd_config, max_body_bytes), .def = "32MiB",
     .doc = "Largest request body."},
    {"max_header_bytes", T_SIZE, FIELD(struct wd_config, max_header_bytes), .def = "64KiB",
     .doc = "Largest request header block."},
    /* below 1 KiB not even a provider's error fits; above 1 GiB one answer could take a worker's memory */
    {"max_response_bytes", T_SIZE, FIELD(struct wd_config, max_response_bytes), .def = "16MiB", .min = 1024,
     .max = 1024 * MIB,
     .doc = "Largest provider answer Warden reads whole, and largest single event of a streamed one."},
    {"idle_timeout", T_DURATION, FIELD(struct wd_config, idle_timeout_ms), .def = "60s",
     .doc = "How long a client connection may sit idle before it is closed."},
    {"request_timeout", T_DURATION, FIELD(struct wd_config, request_timeout_ms), .def = "600s",
     .doc = "Longest time for a whole request, including the streamed response."},
    {"drain_timeout", T_DURATION, FIELD(struct wd_config, drain_timeout_ms), .def = "30s",
     .doc = "After SIGTERM, how long in-flight requests have to finish."},
    {"max_connections", T_INT, FIELD(struct wd_config, max_connections), .def = "0", .max = 10000000,
     .doc = "Client connections at once; past it a new connection is closed as soon as it is accepted."},
    {"max_pending_body_bytes", T_SIZE, FIELD(struct wd_config, max_pending_body_bytes), .def = "256MiB",
     .doc = "Request body bytes received and not yet handed to a handler, for the whole process."},
    {"http2_max_resets", T_INT, FIELD(struct wd_config, http2_max_resets), .def = "200", .min = 1, .max = 1000000,
     .doc = "Client resets of open HTTP/2 streams per connection in 10 s before GOAWAY `ENHANCE_YOUR_CALM`."},
};
static const struct cfg_section limits_section = {KEYS(limits_keys), .check = cfg_limits_check};

static const struct cfg_key provider_key_keys[] = {
    {"secret", T_SECRET, FIELD(struct wd_provider_key, secret), .required = "secret is required",
     .doc = "Where the key comes from."},
    {"weight", T_INT, FIELD(struct wd_provider_key, weight), .def = "1", .min = 1, .max = CFG_MAX_WEIGHT,
     .doc = "This key's relative share of requests."},
};
static const struct cfg_section provider_key_section = {KEYS(provider_key_keys),
                                                        .size = sizeof(struct wd_provider_key)};

static const struct cfg_key timeouts_keys[] = {
    {"connect", T_DURATION, FIELD(struct wd_provider, connect_timeout_ms), .def = "10s",
     .doc = "TCP + TLS connect to the upstream."},
    {"first_byte", T_DURATION, FIELD(struct wd_provider, first_byte_timeout_ms), .def = "120s",
     .doc = "From sending the request to the first response byte."},
    {"idle", T_DURATION, FIELD(struct wd_provider, idle_timeout_ms), .def = "120s",
     .doc = "Longest gap between response bytes while streaming."},
};
static const struct cfg_section timeouts_section = {KEYS(timeouts_keys)};

static const struct cfg_key provider_keys[] = {
    {"type", T_ENUM, FIELD(struct wd_provider, type), .vals = provider_types,
     .required = "type is required (gemini, anthropic or openai)", .doc = "The wire protocol spoken upstream."},
    {"base_url", T_URL, FIELD(struct wd_provider, base_url),
     .def_doc = "`https://generativelanguage.googleapis.com` (gemini), `https://api.anthropic.com` (anthropic), "
                "`https://api.openai.com` (openai)",
     .hint = "(it would be shown in logs and traces); give the credential under keys", .doc = "Upstream origin."},
    {"tls_ca", T_PATH, FIELD(struct wd_provider, tls_ca), .def_doc = "system trust store",
     .doc = "PEM CA bundle for verifying this upstream."},
    {"keys", T_LIST_OF, FIELD(struct wd_provider, keys), .off2 = offsetof(struct wd_provider, nkeys),
     .sub = &provider_key_section, .min = 1, .hint = "must list at least one key",
     .required = "keys is required: a list with at least one secret", .doc = "Upstream API keys."},
    {"timeouts", T_SECTION, .sub = &timeouts_section, .doc = "Upstream time limits."},
    {"max_output_tokens", T_INT, FIELD(struct wd_provider, max_output_tokens), .def_doc = "`0`", .min = 1,
     .max = 10000000, .doc = "Ceiling on a request's output tokens."},
    {"anthropic_version", T_STRING, FIELD(struct wd_provider, anthropic_version), .def = "2023-06-01",
     .doc = "type `anthropic` only: the `anthropic-version` header sent when the client sent none."},
    {"tokens_field", T_ENUM, FIELD(struct wd_provider, tokens_field), .def = "auto", .vals = tokens_fields,
     .doc = "type `openai` only: which request field carries the output limit."},
};
static const struct cfg_section provider_section = {
    KEYS(provider_keys), .size = sizeof(struct wd_provider), .name_off = offsetof(struct wd_provider, name),
    .elem = "<name>", .err_at_key = true, .null_msg = "must be a mapping with at least type and keys",
    .name_check = cfg_provider_name, .check = cfg_provider_check};

static const struct cfg_key tiers_keys[] = {
    {"opus", T_CHAIN, .off = offsetof(struct wd_config, tier_chains[0]), .off2 = offsetof(struct wd_config, tier_opus),
     .doc = "Where requests for Claude Opus-tier models go."},
    {"sonnet", T_CHAIN, .off = offsetof(struct wd_config, tier_chains[1]),
     .off2 = offsetof(struct wd_config, tier_sonnet), .doc = "Where requests for Claude Sonnet-tier models go."},
    {"haiku", T_CHAIN, .off = offsetof(struct wd_config, tier_chains[2]),
     .off2 = offsetof(struct wd_config, tier_haiku),
     .doc = "Where requests for Claude Haiku-tier models go."},
};
static const struct cfg_section tiers_section = {KEYS(tiers_keys)};

static const struct cfg_key alias_keys[] = {
    {"", T_CHAIN, .off = offsetof(struct wd_alias, chain), .off2 = offsetof(struct wd_alias, target),
     .doc = "A model name clients may ask for, mapped to a provider model."},
};
static const struct cfg_section alias_section = {
    KEYS(alias_keys), .size = sizeof(struct wd_alias), .name_off = offsetof(struct wd_alias, name), .elem = "<alias>",
    .scalar = true, .null_msg = "must be provider/model, e.g. gemini/gemini-2.5-flash", .name_check = cfg_alias_name};

static const struct cfg_key price_keys[] = {
    {"input", T_NUMBER, FIELD(struct wd_price, input), .fmax = 1e9,
     .required = "input and output are required (USD per million tokens)", .doc = "USD per million input tokens."},
    {"output", T_NUMBER, FIELD(struct wd_price, output), .fmax = 1e9,
     .required = "input and output are required (USD per million tokens)", .doc = "USD per million output tokens."},
    {"cached", T_NUMBER, FIELD(struct wd_price, cached), .fmax = 1e9, .def_doc = "the input price",
     .doc = "USD per million cached input tokens."},
};
static const struct cfg_section price_section = {KEYS(price_keys), .size = sizeof(struct wd_price),
                                                 .name_off = offsetof(struct wd_price, model), .elem = "<model>",
                                                 .init = cfg_price_init};

static const struct cfg_key models_keys[] = {
    {"tiers", T_SECTION, .sub = &tiers_section, .def_doc = "see below", .doc = "Where Claude's model tiers go."},
    {"aliases", T_MAP_OF, FIELD(struct wd_config, aliases), .off2 = offsetof(struct wd_config, naliases),
     .sub = &alias_section, .doc = "Model names clients may ask for."},
    {"prices", T_MAP_OF, FIELD(struct wd_config, prices), .off2 = offsetof(struct wd_config, nprices),
     .sub = &price_section, .doc = "Prices of provider models, for `warden_cost_usd_total{model,key}`."},
};
static const struct cfg_section models_section = {KEYS(models_keys), .check = cfg_models_check};

static const struct cfg_key routing_keys[] = {
    {"attempts_per_target", T_INT, FIELD(struct wd_routing_config, attempts_per_target), .def = "1", .min = 1,
     .max = 10, .doc = "Tries of one target before the next one in its chain."},
    {"backoff", T_DURATION, FIELD(struct wd_routing_config, backoff_ms), .def = "200ms",
     .doc = "Wait before the first retry; it doubles per retry, with full jitter."},
    {"max_backoff", T_DURATION, FIELD(struct wd_routing_config, max_backoff_ms), .def = "5s",
     .doc = "Longest wait between retries."},
    {"max_retry_after", T_DURATION, FIELD(struct wd_routing_config, max_retry_after_ms), .def = "10s",
     .doc = "Longest `Retry-After` Warden waits for; a longer one moves to the next target at once."},
    {"retry_budget", T_NUMBER, FIELD(struct wd_routing_config, retry_budget), .def = "0.2", .fmax = 1,
     .doc = "Retries and fallbacks per worker, as a share of its requests over the last 10 s."},
    {"retry_budget_min", T_INT, FIELD(struct wd_routing_config, retry_budget_min), .def = "10", .max = 100000,
     .doc = "Retries and fallbacks per worker per 10 s allowed on top of the share."},
};
static const struct cfg_section routing_section = {KEYS(routing_keys)};

static const struct cfg_key auth_key_keys[] = {
    {"name", T_STRING, FIELD(struct wd_auth_key, name), .required = "name is required",
     .doc = "Label used in audit records and budgets."},
    {"secret", T_SECRET, FIELD(struct wd_auth_key, secret), .required = "secret is required",
     .doc = "Where the client key comes from."},
};
static const struct cfg_section auth_key_section = {KEYS(auth_key_keys),
                                                    .size = sizeof(struct wd_auth_key)};

static const struct cfg_key oidc_claim_keys[] = {
    {"subject", T_STRING, FIELD(struct wd_oidc_issuer, claim_subject), .def = "sub",
     .doc = "The claim that names the principal (Entra: `oid`; Okta's org server: `uid`)."},
    {"email", T_STRING, FIELD(struct wd_oidc_issuer, claim_email), .def = "email",
     .doc = "The claim holding the e-mail address (Entra: `preferred_username`)."},
    {"groups", T_STRING, FIELD(struct wd_oidc_issuer, claim_groups), .def = "groups",
     .doc = "The claim holding the principal's groups (a string or an array); bindings match them."},
    {"roles", T_STRING, FIELD(struct wd_oidc_issuer, claim_roles), .def = "roles",
     .doc = "The claim holding app roles; a value equal to a name of `rbac.roles` grants that role."},
    {"name", T_STRING, FIELD(struct wd_oidc_issuer, claim_name), .def = "name", .doc = "The display name claim."},
    {"team", T_STRING, FIELD(struct wd_oidc_issuer, claim_team), .def_doc = "none",
     .doc = "The claim naming the principal's team, whose budgets then apply (docs/governance.md)."},
    {"org", T_STRING, FIELD(struct wd_oidc_issuer, claim_org), .def_doc = "none",
     .doc = "The claim naming the principal's organisation, whose budgets then apply."},
};
static const struct cfg_section oidc_claim_section = {KEYS(oidc_claim_keys)};

static const struct cfg_key oidc_keys[] = {
    {"name", T_STRING, FIELD(struct wd_oidc_issuer, name), .required = "name is required",
     .doc = "Label in logs, audit records and metrics."},
    {"issuer", T_STRING, FIELD(struct wd_oidc_issuer, issuer), .required = "issuer is required",
     .check = cfg_oidc_issuer,
     .doc = "The exact `iss` of its tokens; discovery is read from `{issuer}/.well-known/openid-configuration`."},
    {"audience", T_STRLIST, FIELD(struct wd_oidc_issuer, audiences), .off2 = offsetof(struct wd_oidc_issuer, naudiences),
     .min = 1, .required = "audience is required (a token for another API must not be accepted)",
     .doc = "A token's `aud` must hold one of these."},
    {"jwks_uri", T_URL, FIELD(struct wd_oidc_issuer, jwks_uri), .def_doc = "the discovery document's",
     .doc = "Where the signing keys are; set, discovery is not read."},
    {"tls_ca", T_PATH, FIELD(struct wd_oidc_issuer, tls_ca), .def_doc = "system trust store",
     .doc = "PEM CA bundle for the IdP's TLS certificate."},
    {"claims", T_SECTION, .sub = &oidc_claim_section, .doc = "Which claims give the principal."},
    {"clock_skew", T_DURATION, FIELD(struct wd_oidc_issuer, clock_skew_ms), .def = "60s", .max = 600000,
     .doc = "Tolerance on `exp`, `nbf` and `iat`."},
    {"refresh", T_DURATION, FIELD(struct wd_oidc_issuer, refresh_ms), .def = "10m",
     .doc = "The signing keys are fetched again this often (and on a token with an unknown `kid`, at most every 10 s)."},
    {"fetch_timeout", T_DURATION, FIELD(struct wd_oidc_issuer, fetch_timeout_ms), .def = "5s", .max = 60000,
     .doc = "Longest discovery or keys fetch."},
    {"wait", T_DURATION, FIELD(struct wd_oidc_issuer, wait_ms), .def = "3s", .max = 60000,
     .doc = "Longest a request waits for keys being fetched; then 503."},
};
static const struct cfg_section oidc_section = {KEYS(oidc_keys), .size = sizeof(struct wd_oidc_issuer)};

static const struct cfg_key auth_keys[] = {
    {"keys", T_LIST_OF, FIELD(struct wd_config, auth_keys), .off2 = offsetof(struct wd_config, nauth_keys),
     .sub = &auth_key_section, .check = cfg_auth_keys_unique, .doc = "Named client API keys."},
    {"keys_env", T_ENVNAME, FIELD(struct wd_config, auth_keys_env),
     .doc = "A variable holding extra raw client keys, separated by commas."},
    {"oidc", T_LIST_OF, FIELD(struct wd_config, oidc), .off2 = offsetof(struct wd_config, noidc), .sub = &oidc_section,
     .check = cfg_oidc_unique, .doc = "OpenID Connect issuers whose bearer JWTs are accepted (Okta, Entra ID, ...)."},
};
static const struct cfg_section auth_section = {KEYS(auth_keys)};

static const struct cfg_key checkpoint_keys[] = {
    {"every_records", T_INT, FIELD(struct wd_audit_config, every_records), .def = "1000", .min = 1, .max = 10000000,
     .doc = "A checkpoint after this many records."},
    {"every_seconds", T_INT, FIELD(struct wd_audit_config, every_ms), .def = "10", .min = 1, .max = 86400,
     .mult = 1000,
     .doc = "... or after this many seconds, whichever comes first, when there is something new to cover."},
    {"signing_key", T_SECRET, FIELD(struct wd_audit_config, signing_key), .def_doc = "none",
     .doc = "PEM Ed25519 private key that signs checkpoints."},
    {"export", T_PATH, FIELD(struct wd_audit_config, export_path),
     .doc = "A file (or `stdout`) each signed checkpoint is appended to, one JSON line each."},
};
static const struct cfg_section checkpoint_section = {KEYS(checkpoint_keys)};

static const struct cfg_key audit_keys[] = {
    {"database", T_STRING, FIELD(struct wd_audit_config, database), .check = cfg_audit_database,
     .def_doc = "*required*",
     .doc = "PostgreSQL connection: a `postgresql://` URL or a secret reference holding one."},
    {"mode", T_ENUM, FIELD(struct wd_audit_config, mode), .def = "fail_open", .vals = audit_modes,
     .doc = "What happens when PostgreSQL is unreachable"},
    {"content", T_ENUM, FIELD(struct wd_audit_config, content), .def = "hash", .vals = audit_contents,
     .doc = "What of prompts and answers a record holds."},
    {"spool", T_PATH, FIELD(struct wd_audit_config, spool), .def = "/var/lib/warden/audit-spool",
     .doc = "Directory for records while the database is unreachable."},
    {"checkpoints", T_SECTION, .sub = &checkpoint_section, .doc = "Signed checkpoints of the chain."},
    {"migrate", T_BOOL, FIELD(struct wd_audit_config, migrate), .def = "true",
     .doc = "Apply pending schema migrations at start."},
    {"queue_records", T_INT, FIELD(struct wd_audit_config, queue_records), .def = "65536", .min = 16,
     .max = 16777216, .doc = "Records a worker holds in memory for the writer."},
    {"batch_wait", T_DURATION, FIELD(struct wd_audit_config, batch_wait_ms), .def = "20ms", .max = 1000,
     .hint = "records wait in memory that long", .doc = "How long a small batch waits for company."},
    {"durable_answers", T_BOOL, FIELD(struct wd_audit_config, durable_answers), .def = "true",
     .doc = "An answer's last bytes wait until its records are durable."},
    {"durable_answers_timeout", T_DURATION, FIELD(struct wd_audit_config, durable_answers_timeout_ms), .def = "2s",
     .max = 60000, .hint = "an answer waits at most that long for its record",
     .doc = "The longest an answer's end waits for its record; in fail_open, a batch answers wait for is given up "
            "(its records spooled) after half of it."},
};
static const struct cfg_section audit_section = {KEYS(audit_keys), .check = cfg_audit_check};

static int cfg_gov_database(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *n,
                            const char *path)
{
    struct wd_governance_config *g = obj;

    if (strncmp(g->database, "postgresql://", 13) && strncmp(g->database, "postgres://", 11)) {
        cfg_free_str(g->database);
        g->database = NULL;
        if (cfg_get_secret_ref(n, path, &g->database, c->err))
            return -1;
    }
    g->enabled = true;
    return 0;
}

static int cfg_gov_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                         struct cfg_node *map, const char *path)
{
    if (!((struct wd_governance_config *)obj)->enabled)
        return cfg_fail(c->err, map ? map->line : key->line, path,
                        "database is required when the governance section is present");
    return 0;
}

static const struct cfg_enum gov_modes[] = {{"fail_closed", WD_GOV_FAIL_CLOSED}, {"fail_open", WD_GOV_FAIL_OPEN},
                                            {NULL, 0}};

static const struct cfg_key gov_keys[] = {
    {"database", T_STRING, FIELD(struct wd_governance_config, database), .check = cfg_gov_database,
     .def_doc = "*required*",
     .doc = "PostgreSQL holding keys, teams, budgets and spend: a `postgresql://` URL or a secret reference."},
    {"mode", T_ENUM, FIELD(struct wd_governance_config, mode), .def = "fail_closed", .vals = gov_modes,
     .doc = "With the database unreachable and a lease used up: refuse (503) or admit on local accounting."},
    {"migrate", T_BOOL, FIELD(struct wd_governance_config, migrate), .def = "true",
     .doc = "Apply pending schema migrations at start."},
    {"sync_interval", T_DURATION, FIELD(struct wd_governance_config, sync_ms), .def = "1s", .min = 50, .max = 60000,
     .doc = "How often spend is flushed to the database and changes are looked for."},
    {"lease", T_NUMBER, FIELD(struct wd_governance_config, lease), .def = "0.1", .fmin = 0.001, .fmax = 1,
     .doc = "The share of a limit one replica takes from the database at a time."},
    {"wait", T_DURATION, FIELD(struct wd_governance_config, wait_ms), .def = "2s", .max = 60000,
     .doc = "Longest a call waits for its lease to be topped up; then 429 (or 503 with the database down)."},
    {"idle_return", T_DURATION, FIELD(struct wd_governance_config, idle_return_ms), .def = "10s", .min = 100,
     .max = 3600000, .doc = "A lease unused this long goes back to the database for the other replicas."},
};
static const struct cfg_section gov_section = {KEYS(gov_keys), .check = cfg_gov_check};

static int cfg_signin_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                            struct cfg_node *map, const char *path)
{
    struct wd_signin_config *si = obj;
    si->enabled = true;
    size_t ul = si->public_url ? strlen(si->public_url) : 0;
    if (ul < 10 || strcmp(si->public_url + ul - 10, "/anthropic") != 0)
        return cfg_fail(c->err, map ? map->line : key->line, path,
                        "public_url must be Warden's Anthropic API base, ending in /anthropic");
    for (size_t i = 0; i < c->cfg->noidc; i++)
        if (si->issuer != NULL && strcmp(c->cfg->oidc[i].name, si->issuer) == 0)
            return 0;
    return cfg_fail(c->err, map ? map->line : key->line, path, "issuer must name an entry of auth.oidc");
}

static const struct cfg_key signin_policy_keys[] = {
    {"groups", T_STRLIST, FIELD(struct wd_signin_policy, groups), .off2 = offsetof(struct wd_signin_policy, ngroups),
     .doc = "The policy applies to a caller in one of these IdP groups."},
    {"email_domain", T_STRING, FIELD(struct wd_signin_policy, email_domain),
     .doc = "... or to a caller whose e-mail is at this domain; with neither, to everyone."},
    {"settings", T_JSON, FIELD(struct wd_signin_policy, settings), .required = "settings is required",
     .doc = "Claude Code's managed settings (its settings.json keys), written as YAML."},
};
static const struct cfg_section signin_policy_section = {KEYS(signin_policy_keys),
                                                         .size = sizeof(struct wd_signin_policy)};

static const struct cfg_key signin_keys[] = {
    {"public_url", T_URL, FIELD(struct wd_signin_config, public_url), .required = "public_url is required",
     .doc = "The gateway URL developers are given: Warden's Anthropic API base, e.g. `https://warden.example.com/anthropic`."},
    {"issuer", T_STRING, FIELD(struct wd_signin_config, issuer), .required = "issuer is required",
     .doc = "The `name` of the `auth.oidc` entry developers sign in at."},
    {"client_id", T_STRING, FIELD(struct wd_signin_config, client_id), .required = "client_id is required",
     .doc = "Warden's (confidential) client at that IdP; its redirect URI is `{public_url}/oauth/callback`."},
    {"client_secret", T_SECRET, FIELD(struct wd_signin_config, client_secret),
     .required = "client_secret is required", .doc = "The client's secret."},
    {"scopes", T_STRLIST, FIELD(struct wd_signin_config, scopes), .off2 = offsetof(struct wd_signin_config, nscopes),
     .def_doc = "`openid profile email offline_access`", .doc = "Scopes asked of the IdP."},
    {"session_secret", T_STRLIST, FIELD(struct wd_signin_config, session_secrets),
     .off2 = offsetof(struct wd_signin_config, nsession_secrets), .min = 1,
     .required = "session_secret is required",
     .doc = "Secret references (32 bytes or more each) keying session tokens: the first signs, all verify."},
    {"session_ttl", T_DURATION, FIELD(struct wd_signin_config, session_ttl_ms), .def = "60m", .min = 60000,
     .max = 86400000, .doc = "A session token's lifetime; Claude Code refreshes it through the IdP."},
    {"prompt", T_STRING, FIELD(struct wd_signin_config, prompt), .def_doc = "none",
     .doc = "The OIDC `prompt` sent to the IdP (`consent` where a refresh token needs it, `login`)."},
    {"telemetry_forward", T_URL, FIELD(struct wd_signin_config, telemetry_forward), .def_doc = "none",
     .doc = "An OTLP/HTTP collector base URL: signed-in Claude Code sends its telemetry to Warden, which relays it there."},
    {"policies", T_LIST_OF, FIELD(struct wd_signin_config, policies), .off2 = offsetof(struct wd_signin_config, npolicies),
     .sub = &signin_policy_section, .doc = "Managed settings by IdP group or e-mail domain; the first match wins."},
};
static const struct cfg_section signin_section = {KEYS(signin_keys), .check = cfg_signin_check};

static const struct cfg_key header_keys[] = {
    {"", T_STRING, FIELD(struct wd_otlp_header, value), .check = cfg_one_line,
     .doc = "An extra export request header; the value may be a secret reference."},
};
static const struct cfg_section header_section = {KEYS(header_keys), .size = sizeof(struct wd_otlp_header),
                                                  .name_off = offsetof(struct wd_otlp_header, name), .elem = "<name>",
                                                  .scalar = true, .name_check = cfg_header_name};

static const struct cfg_key otlp_keys[] = {
    {"endpoint", T_URL, FIELD(struct wd_telemetry_config, otlp_endpoint),
     .def_doc = "`OTEL_EXPORTER_OTLP_*`, else no export",
     .hint = "(it would be shown in logs); send credentials with telemetry.otlp.headers, whose values may be "
             "secret references",
     .doc = "Collector base URL; `/v1/traces` is appended."},
    {"protocol", T_ENUM, FIELD(struct wd_telemetry_config, otlp_protocol), .vals = otlp_protocols,
     .def_doc = "`OTEL_EXPORTER_OTLP_PROTOCOL`, else `http/protobuf`", .doc = "OTLP encoding."},
    {"headers", T_MAP_OF, FIELD(struct wd_telemetry_config, otlp_headers),
     .off2 = offsetof(struct wd_telemetry_config, notlp_headers), .sub = &header_section,
     .doc = "Extra export request headers, then `OTEL_EXPORTER_OTLP_HEADERS`."},
    {"sampling_ratio", T_NUMBER, FIELD(struct wd_telemetry_config, sampling_ratio), .fmax = 1,
     .def_doc = "`OTEL_TRACES_SAMPLER_ARG`, else `1.0`", .doc = "Head sampling for new traces."},
    {"timeout", T_DURATION, FIELD(struct wd_telemetry_config, otlp_timeout_ms),
     .def_doc = "`OTEL_EXPORTER_OTLP_TIMEOUT`, else `10s`", .doc = "One export request."},
    {"compression", T_ENUM, FIELD(struct wd_telemetry_config, otlp_compression), .vals = otlp_compressions,
     .def_doc = "`OTEL_EXPORTER_OTLP_COMPRESSION`, else `none`", .doc = "Export body compression."},
};
static const struct cfg_section otlp_section = {KEYS(otlp_keys)};

/* /metrics shows key names and token volumes: loopback, off the client listener, unless configured */
static const struct cfg_key metrics_keys[] = {
    {"listen", T_HOSTPORT, FIELD(struct wd_telemetry_config, metrics_listen_host),
     .off2 = offsetof(struct wd_telemetry_config, metrics_listen_port), .def = "127.0.0.1:9464", .off_word = true,
     .check = cfg_metrics_explicit, .doc = "The only listener serving `GET /metrics`."},
};
static const struct cfg_section metrics_section = {KEYS(metrics_keys)};

static const struct cfg_key logs_keys[] = {
    {"access", T_BOOL, FIELD(struct wd_telemetry_config, access_log), .def = "true",
     .doc = "One JSON access line per request."},
};
static const struct cfg_section logs_section = {KEYS(logs_keys)};

static const struct cfg_key telemetry_keys[] = {
    {"service_name", T_STRING, FIELD(struct wd_telemetry_config, service_name),
     .def_doc = "`OTEL_SERVICE_NAME`, else `warden`", .restart = true, .doc = "The resource's `service.name`."},
    {"otlp", T_SECTION, .sub = &otlp_section, .restart = true, .doc = "Trace export over OTLP/HTTP."},
    {"metrics", T_SECTION, .sub = &metrics_section, .restart = true, .doc = "The metrics listener."},
    {"logs", T_SECTION, .sub = &logs_section, .doc = "Logs."},
};
static const struct cfg_section telemetry_section = {KEYS(telemetry_keys),
                                                     .init = cfg_telemetry_init};

/* Providers before models: tier and alias targets are checked against them. */
static const struct cfg_key rbac_role_keys[] = {
    {"models", T_STRLIST, FIELD(struct wd_rbac_role, models), .off2 = offsetof(struct wd_rbac_role, nmodels),
     .doc = "Models the role may use: `*`, `tier:<tier>`, an alias, `<provider>/<model>` or `<provider>/*`."},
    {"permissions", T_STRLIST, FIELD(struct wd_rbac_role, permissions),
     .off2 = offsetof(struct wd_rbac_role, npermissions),
     .doc = "Other rights: `keys:manage`, `budgets:manage`, `audit:read`, `config:read`."},
};
static const struct cfg_section rbac_role_section = {KEYS(rbac_role_keys), .size = sizeof(struct wd_rbac_role),
                                                     .name_off = offsetof(struct wd_rbac_role, name),
                                                     .elem = "<role>"};

static const struct cfg_key rbac_binding_keys[] = {
    {"group", T_STRING, FIELD(struct wd_rbac_binding, group), .doc = "An IdP group the role goes to."},
    {"subject", T_STRING, FIELD(struct wd_rbac_binding, subject),
     .doc = "A principal (its subject or e-mail) the role goes to."},
    {"key", T_STRING, FIELD(struct wd_rbac_binding, key), .doc = "A client key's name the role goes to."},
    {"role", T_STRING, FIELD(struct wd_rbac_binding, role), .required = "role is required",
     .doc = "A name of `rbac.roles`."},
};
static const struct cfg_section rbac_binding_section = {KEYS(rbac_binding_keys),
                                                        .size = sizeof(struct wd_rbac_binding)};

static const struct cfg_key rbac_keys[] = {
    {"roles", T_MAP_OF, FIELD(struct wd_config, roles), .off2 = offsetof(struct wd_config, nroles),
     .sub = &rbac_role_section, .doc = "What each role grants."},
    {"bindings", T_LIST_OF, FIELD(struct wd_config, bindings), .off2 = offsetof(struct wd_config, nbindings),
     .sub = &rbac_binding_section, .doc = "Who gets which role (by IdP group, subject or key name)."},
};
static const struct cfg_section rbac_section = {KEYS(rbac_keys), .check = cfg_rbac_check};

/* ---- secrets: the vault and cloud backends ---- */

/* A backend's own credential is read by the backend itself, on the resolver thread: env:// or file:// only
 * (a vault reference there would need the vault to open the vault). */
static int cfg_local_ref(struct cfg_ctx *c, const struct cfg_key *row, void *obj, struct cfg_node *val,
                         const char *path)
{
    const char *ref = *(char **)cfg_at(obj, row->off);
    if (strncmp(ref, "env://", 6) && strncmp(ref, "file://", 7))
        return cfg_fail(c->err, val->line, path, "a backend's own credential must be an env:// or file:// reference");
    return 0;
}

static const struct cfg_enum vault_auths[] = {{"token", WD_VAULT_AUTH_TOKEN}, {"approle", WD_VAULT_AUTH_APPROLE},
                                              {"kubernetes", WD_VAULT_AUTH_KUBERNETES}, {NULL, 0}};
static const struct cfg_enum kv_versions[] = {{"2", 2}, {"1", 1}, {NULL, 0}};

static int cfg_vault_check(struct cfg_ctx *c, void *obj, const struct cfg_seen *seen, struct cfg_node *key,
                           struct cfg_node *map, const char *path)
{
    struct wd_vault_config *v = obj;
    int line = map ? map->line : key->line;
    if (v->auth == WD_VAULT_AUTH_KUBERNETES && v->role == NULL)
        return cfg_fail(c->err, line, path, "auth kubernetes needs role (the Vault role to log in as)");
    if (v->auth == WD_VAULT_AUTH_APPROLE && (v->role_id == NULL || v->secret_id == NULL))
        return cfg_fail(c->err, line, path, "auth approle needs role_id and secret_id (env:// or file:// references)");
    return 0;
}

static const struct cfg_key vault_keys[] = {
    {"address", T_URL, FIELD(struct wd_vault_config, address), .def_doc = "`VAULT_ADDR`",
     .doc = "Vault's address, `https://vault.example:8200`."},
    {"namespace", T_STRING, FIELD(struct wd_vault_config, vault_namespace), .def_doc = "`VAULT_NAMESPACE`, else none",
     .doc = "The namespace every request names (`X-Vault-Namespace`; Vault Enterprise, HCP)."},
    {"tls_ca", T_PATH, FIELD(struct wd_vault_config, tls_ca), .def_doc = "`VAULT_CACERT`, else the system store",
     .doc = "PEM bundle that Vault's certificate must chain to."},
    {"kv_version", T_ENUM, FIELD(struct wd_vault_config, kv_version), .def = "2", .vals = kv_versions,
     .doc = "The KV engine of the mounts references name: 2 reads `{mount}/data/{path}`, 1 `{mount}/{path}`."},
    {"ttl", T_DURATION, FIELD(struct wd_vault_config, ttl_ms), .def = "5m", .min = 1000, .max = 86400000,
     .doc = "How long a value is used before it is read again when Vault gives no lease (KV v2)."},
    {"timeout", T_DURATION, FIELD(struct wd_vault_config, timeout_ms), .def = "10s", .min = 100, .max = 120000,
     .doc = "One request to Vault."},
    {"auth", T_ENUM, FIELD(struct wd_vault_config, auth), .def = "token", .vals = vault_auths,
     .doc = "How Warden logs in: a token, AppRole, or the pod's Kubernetes service-account token."},
    {"auth_mount", T_STRING, FIELD(struct wd_vault_config, auth_mount), .def_doc = "`kubernetes` or `approle`",
     .doc = "Where the auth method is mounted (`/v1/auth/{auth_mount}/login`)."},
    {"token", T_SECRET, FIELD(struct wd_vault_config, token), .check = cfg_local_ref,
     .def_doc = "`env://VAULT_TOKEN`", .doc = "auth token: the token, an env:// or file:// reference."},
    {"role", T_STRING, FIELD(struct wd_vault_config, role), .def_doc = "none",
     .doc = "auth kubernetes: the Vault role to log in as."},
    {"jwt_file", T_PATH, FIELD(struct wd_vault_config, jwt_file),
     .def = "/var/run/secrets/kubernetes.io/serviceaccount/token",
     .doc = "auth kubernetes: the service-account token, read again at each login."},
    {"role_id", T_SECRET, FIELD(struct wd_vault_config, role_id), .check = cfg_local_ref, .def_doc = "none",
     .doc = "auth approle: the role id, an env:// or file:// reference."},
    {"secret_id", T_SECRET, FIELD(struct wd_vault_config, secret_id), .check = cfg_local_ref, .def_doc = "none",
     .doc = "auth approle: the secret id, an env:// or file:// reference."},
};
static const struct cfg_section vault_section = {KEYS(vault_keys), .check = cfg_vault_check};

static const struct cfg_enum aws_sources[] = {{"chain", WD_AWS_SRC_CHAIN}, {"env", WD_AWS_SRC_ENV},
                                              {"file", WD_AWS_SRC_FILE}, {"web_identity", WD_AWS_SRC_WEB_IDENTITY},
                                              {"container", WD_AWS_SRC_CONTAINER}, {"imds", WD_AWS_SRC_IMDS},
                                              {NULL, 0}};

static const struct cfg_key aws_keys[] = {
    {"region", T_STRING, FIELD(struct wd_aws_config, region), .def_doc = "`AWS_REGION`, else `AWS_DEFAULT_REGION`",
     .doc = "The region of secrets named without an ARN (an ARN names its own)."},
    {"credentials", T_ENUM, FIELD(struct wd_aws_config, credentials), .def = "chain", .vals = aws_sources,
     .doc = "Where AWS credentials come from; `chain` tries env, web identity, the shared file, the container "
            "endpoint and IMDS in that order."},
    {"profile", T_STRING, FIELD(struct wd_aws_config, profile), .def_doc = "`AWS_PROFILE`, else `default`",
     .doc = "The shared credentials file's profile."},
    {"credentials_file", T_PATH, FIELD(struct wd_aws_config, credentials_file),
     .def_doc = "`AWS_SHARED_CREDENTIALS_FILE`, else `~/.aws/credentials`", .doc = "The shared credentials file."},
    {"role_arn", T_STRING, FIELD(struct wd_aws_config, role_arn), .def_doc = "`AWS_ROLE_ARN`",
     .doc = "Web identity (EKS IRSA): the role to assume."},
    {"web_identity_token_file", T_PATH, FIELD(struct wd_aws_config, web_identity_token_file),
     .def_doc = "`AWS_WEB_IDENTITY_TOKEN_FILE`", .doc = "Web identity: the projected service-account token."},
    {"session_name", T_STRING, FIELD(struct wd_aws_config, session_name),
     .def_doc = "`AWS_ROLE_SESSION_NAME`, else `warden`", .doc = "Web identity: the role session's name."},
    {"endpoint", T_URL, FIELD(struct wd_aws_config, endpoint),
     .def_doc = "`https://secretsmanager.{region}.amazonaws.com`", .doc = "Secrets Manager (a VPC endpoint, a test)."},
    {"sts_endpoint", T_URL, FIELD(struct wd_aws_config, sts_endpoint), .def_doc = "`https://sts.{region}.amazonaws.com`",
     .doc = "STS, for web identity."},
    {"imds_endpoint", T_URL, FIELD(struct wd_aws_config, imds_endpoint),
     .def_doc = "`AWS_EC2_METADATA_SERVICE_ENDPOINT`, else `http://169.254.169.254`",
     .doc = "The EC2 instance metadata service (IMDSv2)."},
    {"tls_ca", T_PATH, FIELD(struct wd_aws_config, tls_ca), .def_doc = "`AWS_CA_BUNDLE`, else the system store",
     .doc = "PEM bundle for Secrets Manager and STS."},
    {"ttl", T_DURATION, FIELD(struct wd_aws_config, ttl_ms), .def = "5m", .min = 1000, .max = 86400000,
     .doc = "How long a value is used before it is read again."},
    {"timeout", T_DURATION, FIELD(struct wd_aws_config, timeout_ms), .def = "10s", .min = 100, .max = 120000,
     .doc = "One request to AWS."},
};
static const struct cfg_section aws_section = {KEYS(aws_keys)};

static const struct cfg_enum gcp_sources[] = {{"auto", WD_GCP_SRC_AUTO}, {"key", WD_GCP_SRC_KEY},
                                              {"metadata", WD_GCP_SRC_METADATA}, {NULL, 0}};

static const struct cfg_key gcp_keys[] = {
    {"credentials", T_ENUM, FIELD(struct wd_gcp_config, credentials), .def = "auto", .vals = gcp_sources,
     .doc = "`key`: a service-account key file; `metadata`: the metadata server (GKE Workload Identity); "
            "`auto`: the key file when one is named, else the metadata server."},
    {"credentials_file", T_PATH, FIELD(struct wd_gcp_config, credentials_file),
     .def_doc = "`GOOGLE_APPLICATION_CREDENTIALS`", .doc = "The service-account key (JSON)."},
    {"endpoint", T_URL, FIELD(struct wd_gcp_config, endpoint), .def = "https://secretmanager.googleapis.com",
     .doc = "Secret Manager (a Private Service Connect endpoint, a test)."},
    {"token_endpoint", T_URL, FIELD(struct wd_gcp_config, token_endpoint), .def_doc = "the key file's `token_uri`",
     .doc = "Where the signed assertion is exchanged for an access token."},
    {"metadata_host", T_STRING, FIELD(struct wd_gcp_config, metadata_host),
     .def_doc = "`GCE_METADATA_HOST`, else `metadata.google.internal`", .doc = "The metadata server, `host[:port]`."},
    {"tls_ca", T_PATH, FIELD(struct wd_gcp_config, tls_ca), .def_doc = "the system store",
     .doc = "PEM bundle for Secret Manager and the token endpoint."},
    {"ttl", T_DURATION, FIELD(struct wd_gcp_config, ttl_ms), .def = "5m", .min = 1000, .max = 86400000,
     .doc = "How long a value is used before it is read again."},
    {"timeout", T_DURATION, FIELD(struct wd_gcp_config, timeout_ms), .def = "10s", .min = 100, .max = 120000,
     .doc = "One request to Google."},
};
static const struct cfg_section gcp_section = {KEYS(gcp_keys)};

static const struct cfg_enum azure_sources[] = {{"auto", WD_AZ_SRC_AUTO}, {"client_secret", WD_AZ_SRC_CLIENT_SECRET},
                                                {"workload_identity", WD_AZ_SRC_WORKLOAD_IDENTITY},
                                                {"managed_identity", WD_AZ_SRC_MANAGED_IDENTITY}, {NULL, 0}};

static const struct cfg_key azure_keys[] = {
    {"credentials", T_ENUM, FIELD(struct wd_azure_config, credentials), .def = "auto", .vals = azure_sources,
     .doc = "How Warden gets an Entra token; `auto` tries workload identity, a client secret, then the managed "
            "identity."},
    {"tenant_id", T_STRING, FIELD(struct wd_azure_config, tenant_id), .def_doc = "`AZURE_TENANT_ID`",
     .doc = "The Entra tenant."},
    {"client_id", T_STRING, FIELD(struct wd_azure_config, client_id), .def_doc = "`AZURE_CLIENT_ID`",
     .doc = "The app registration, or the user-assigned managed identity."},
    {"client_secret", T_SECRET, FIELD(struct wd_azure_config, client_secret), .check = cfg_local_ref,
     .def_doc = "`env://AZURE_CLIENT_SECRET`", .doc = "client_secret: an env:// or file:// reference."},
    {"federated_token_file", T_PATH, FIELD(struct wd_azure_config, federated_token_file),
     .def_doc = "`AZURE_FEDERATED_TOKEN_FILE`", .doc = "Workload identity: the projected service-account token."},
    {"authority_host", T_URL, FIELD(struct wd_azure_config, authority_host),
     .def_doc = "`AZURE_AUTHORITY_HOST`, else `https://login.microsoftonline.com`", .doc = "Entra ID."},
    {"imds_endpoint", T_URL, FIELD(struct wd_azure_config, imds_endpoint), .def = "http://169.254.169.254",
     .doc = "The instance metadata service (managed identity)."},
    {"vault_url", T_STRING, FIELD(struct wd_azure_config, vault_url), .def = "https://{vault}.vault.azure.net",
     .doc = "A vault's URL; `{vault}` is the reference's vault name (sovereign clouds, private endpoints)."},
    {"tls_ca", T_PATH, FIELD(struct wd_azure_config, tls_ca), .def_doc = "the system store",
     .doc = "PEM bundle for Key Vault and Entra ID."},
    {"ttl", T_DURATION, FIELD(struct wd_azure_config, ttl_ms), .def = "5m", .min = 1000, .max = 86400000,
     .doc = "How long a value is used before it is read again."},
    {"timeout", T_DURATION, FIELD(struct wd_azure_config, timeout_ms), .def = "10s", .min = 100, .max = 120000,
     .doc = "One request to Azure."},
};
static const struct cfg_section azure_section = {KEYS(azure_keys)};

static const struct cfg_key secrets_keys[] = {
    {"prefetch", T_BOOL, FIELD(struct wd_secrets_config, prefetch), .def = "false",
     .doc = "Resolve every provider key at start and on reload; else each on its first use."},
    {"stale_max", T_DURATION, FIELD(struct wd_secrets_config, stale_max_ms), .def = "10m", .min = 0,
     .max = 86400000, .doc = "How long past its expiry a value is still served while its backend fails."},
    {"vault", T_SECTION, .off = offsetof(struct wd_secrets_config, vault), .sub = &vault_section,
     .doc = "HashiCorp Vault, for `vault://` references."},
    {"aws", T_SECTION, .off = offsetof(struct wd_secrets_config, aws), .sub = &aws_section,
     .doc = "AWS Secrets Manager, for `aws-sm://` references."},
    {"gcp", T_SECTION, .off = offsetof(struct wd_secrets_config, gcp), .sub = &gcp_section,
     .doc = "Google Secret Manager, for `gcp-sm://` references."},
    {"azure", T_SECTION, .off = offsetof(struct wd_secrets_config, azure), .sub = &azure_section,
     .doc = "Azure Key Vault, for `azure-kv://` references."},
};
static const struct cfg_section secrets_section = {KEYS(secrets_keys)};

static const struct cfg_key root_keys[] = {
    {"listen", T_HOSTPORT, FIELD(struct wd_config, listen_host), .off2 = offsetof(struct wd_config, listen_port),
     .def = "0.0.0.0:8080", .restart = true, .doc = "Address to accept clients on."},
    {"tls", T_SECTION, .sub = &tls_section, .def_doc = "none (plain HTTP)", .restart = true,
     .doc = "TLS for the listener."},
    {"workers", T_INT, FIELD(struct wd_config, workers), .def = "0", .max = CFG_MAX_WORKERS, .restart = true,
     .doc = "Worker threads, one event loop each."},
    {"limits", T_SECTION, .sub = &limits_section, .restart = true, .doc = "Request size and time limits."},
    {"providers", T_MAP_OF, FIELD(struct wd_config, providers), .off2 = offsetof(struct wd_config, nproviders),
     .sub = &provider_section, .doc = "Upstream model providers."},
    {"models", T_SECTION, .sub = &models_section, .doc = "Tiers, aliases and prices."},
    {"routing", T_SECTION, .off = offsetof(struct wd_config, routing), .sub = &routing_section,
     .doc = "Retries and fallback."},
    {"auth", T_SECTION, .sub = &auth_section, .def_doc = "none",
     .doc = "Who may call: client API keys and OpenID Connect issuers."},
    {"rbac", T_SECTION, .sub = &rbac_section, .def_doc = "none (every principal may use every model)",
     .doc = "Roles and who holds them; written, everything not granted is denied."},
    {"audit", T_SECTION, .off = offsetof(struct wd_config, audit), .sub = &audit_section,
     .def_doc = "none (no trail)", .restart = true, .doc = "The audit trail."},
    {"signin", T_SECTION, .off = offsetof(struct wd_config, signin), .sub = &signin_section,
     .def_doc = "none (no gateway sign-in)", .restart = true,
     .doc = "Claude Code's own gateway sign-in: the device flow brokered against an `auth.oidc` issuer."},
    {"governance", T_SECTION, .off = offsetof(struct wd_config, governance), .sub = &gov_section,
     .def_doc = "none (no virtual keys, budgets or rate limits)", .restart = true,
     .doc = "Virtual keys, teams, budgets and rate limits, shared by every replica through PostgreSQL."},
    {"telemetry", T_SECTION, .off = offsetof(struct wd_config, telemetry), .sub = &telemetry_section,
     .doc = "Traces, the metrics listener, the access log."},
    {"secrets", T_SECTION, .off = offsetof(struct wd_config, secrets), .sub = &secrets_section, .restart = true,
     .doc = "The vault and cloud secret backends, and the secret cache."},
};
static const struct cfg_section root_section = {KEYS(root_keys), .check = cfg_root_check};

/* ---- the schema as documentation ------------------------------------------------------------- */

/* The README's Type column: the type's name, with the row's bounds or values. */
static void cfg_type_doc(const struct cfg_key *row, char *out, size_t cap)
{
    static const char *const names[] = {
        [T_STRING] = "string", [T_PATH] = "path", [T_BOOL] = "`true` \\| `false`", [T_URL] = "URL",
        [T_SECRET] = "secret reference", [T_ENVNAME] = "environment variable name", [T_TARGET] = "target",
        [T_CHAIN] = "target or list of targets", [T_SECTION] = "mapping", [T_MAP_OF] = "mapping", [T_LIST_OF] = "list",
        [T_SIZE] = "size", [T_DURATION] = "duration", [T_HOSTPORT] = "`host:port`",
        [T_STRLIST] = "string or list of strings", [T_JSON] = "mapping (any YAML)"};
    char lo[32], hi[32];

    cfg_fmt_size(lo, sizeof lo, row->min);
    if (row->type == T_DURATION)
        cfg_fmt_duration(hi, sizeof hi, row->max);
    else
        cfg_fmt_size(hi, sizeof hi, row->max);
    if (row->type == T_INT)
        snprintf(out, cap, "integer %llu-%llu", (unsigned long long)row->min, (unsigned long long)row->max);
    else if (row->type == T_SIZE && row->max)
        snprintf(out, cap, "size %s-%s", lo, hi);
    else if (row->type == T_DURATION && row->max)
        snprintf(out, cap, "duration, at most %s", hi);
    else if (row->type == T_NUMBER)
        snprintf(out, cap, row->fmax >= 1e9 ? "number, %g or more" : "number %g-%g", row->fmin, row->fmax);
    else if (row->type == T_ENUM)
        cfg_fmt_enum(out, cap, row->vals, true);
    else
        snprintf(out, cap, "%s%s", names[row->type], row->off_word ? " \\| `off`" : "");
}

static void cfg_doc_row(const struct cfg_key *row, const char *path, bool restart,
                        void (*cb)(void *ctx, const struct wd_config_key_doc *key), void *ctx)
{
    char type[160], def[320];
    struct wd_config_key_doc d = {.path = path, .type = type, .def = def, .reloadable = !restart, .doc = row->doc};

    cfg_type_doc(row, type, sizeof type);
    if (row->def_doc)
        snprintf(def, sizeof def, "%s", row->def_doc);
    else if (row->def)
        snprintf(def, sizeof def, "`%s`", row->def);
    else if (row->required)
        snprintf(def, sizeof def, "*required*");
    else if (row->type == T_SECTION)
        snprintf(def, sizeof def, "see below");
    else
        snprintf(def, sizeof def, "none");
    cb(ctx, &d);
}

static void cfg_doc_section(const struct cfg_section *s, const char *prefix, bool restart,
                            void (*cb)(void *ctx, const struct wd_config_key_doc *key), void *ctx)
{
    char p[CFG_PATH_MAX], sub[CFG_PATH_MAX + 16];

    for (size_t i = 0; i < s->nkeys; i++) {
        const struct cfg_key *row = &s->keys[i];
        bool r = restart || row->restart;

        if (snprintf(p, sizeof p, "%s%s%s", prefix, *prefix ? "." : "", row->name) >= (int)sizeof p)
            continue; /* the schema is shallow; never reached */
        cfg_doc_row(row, p, r, cb, ctx);
        if (row->type == T_SECTION) {
            cfg_doc_section(row->sub, p, r, cb, ctx);
        } else if (row->type == T_LIST_OF) {
            snprintf(sub, sizeof sub, "%s[]", p);
            cfg_doc_section(row->sub, sub, r, cb, ctx);
        } else if (row->type == T_MAP_OF) {
            snprintf(sub, sizeof sub, "%s.%s", p, row->sub->elem);
            if (row->sub->scalar)
                cfg_doc_row(&row->sub->keys[0], sub, r, cb, ctx);
            else
                cfg_doc_section(row->sub, sub, r, cb, ctx);
        }
    }
}

void wd_config_schema_walk(void (*cb)(void *ctx, const struct wd_config_key_doc *key), void *ctx)
{
    if (cb)
        cfg_doc_section(&root_section, "", false, cb, ctx);
}

int wd_config_tiers_note(const struct wd_config *cfg, char *out, size_t cap)
{
    if (cfg == NULL || cfg->tiers_defaulted == NULL || cap == 0)
        return 0;
    return snprintf(out, cap,
                    "models.tiers is not set: opus -> %s, sonnet -> %s, haiku -> %s (the defaults for provider %s)",
                    cfg->tier_opus, cfg->tier_sonnet, cfg->tier_haiku, cfg->tiers_defaulted);
}

/* ---- public ---------------------------------------------------------------------------------- */

int wd_config_parse(const char *yaml, size_t len, const char *source, struct wd_config **out,
                    struct wd_config_err *err)
{
    struct cfg_node *root = NULL;
    struct wd_config *cfg;
    struct cfg_ctx c = {.err = err};

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
    if ((cfg = calloc(1, sizeof *cfg)) == NULL)
        return cfg_oom(err);
    c.cfg = cfg;
    uint8_t d[32];
    wd_sha256(yaml, len, d);
    wd_hex(d, sizeof d, cfg->sha256);
    if ((cfg->source = strdup(source ? source : "<string>")) == NULL || cfg_defaults(&c, &root_section, cfg) ||
        cfg_tree_load(yaml, len, &root, err))
        goto fail;
    if (root && root->kind != CFG_MAP && !(root->kind == CFG_SCALAR && root->is_null)) {
        cfg_fail(err, root->line, NULL, "the configuration must be a mapping of keys, not %s", cfg_kind_name(root));
        goto fail;
    }
    if (cfg_walk(&c, &root_section, cfg, NULL, root && root->kind == CFG_MAP ? root : NULL, ""))
        goto fail;
    cfg_node_free(root);
    *out = cfg;
    return 0;
fail:
    if (!cfg->source || (err && !err->msg[0]))
        cfg_oom(err);
    cfg_node_free(root);
    wd_config_free(cfg);
    return -1;
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
    cfg_free_obj(&root_section, cfg);
    free(cfg->source);
    free(cfg);
}

/* A deep copy of a section made of strings, scalars and sections (what the secrets section holds). */
static int cfg_dup_obj(const struct cfg_section *s, void *dst, const void *src, bool clear)
{
    for (size_t i = 0; i < s->nkeys; i++) {
        const struct cfg_key *row = &s->keys[i];
        switch (row->type) {
        case T_STRING: case T_PATH: case T_URL: case T_SECRET: case T_ENVNAME: {
            const char *v = *(char *const *)cfg_at((void *)src, row->off);
            char **d = cfg_at(dst, row->off);
            *d = NULL;
            if (!clear && v != NULL && (*d = strdup(v)) == NULL)
                return -1;
            break;
        }
        case T_SECTION:
            if (cfg_dup_obj(row->sub, cfg_at(dst, row->off), cfg_at((void *)src, row->off), clear))
                return -1;
            break;
        default:
            break; /* scalars came with the struct copy */
        }
    }
    return 0;
}

struct wd_secrets_config *wd_config_secrets_dup(const struct wd_config *cfg)
{
    struct wd_secrets_config *s = malloc(sizeof(*s));
    if (s == NULL)
        return NULL;
    *s = cfg->secrets;
    cfg_dup_obj(&secrets_section, s, &cfg->secrets, true); /* no string shared with cfg, even on failure */
    if (cfg_dup_obj(&secrets_section, s, &cfg->secrets, false) != 0) {
        wd_config_secrets_free(s);
        return NULL;
    }
    return s;
}

void wd_config_secrets_free(struct wd_secrets_config *s)
{
    if (s == NULL)
        return;
    cfg_free_obj(&secrets_section, s);
    free(s);
}
