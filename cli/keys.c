/* `warden keys|teams|budgets`: each command is one admin API call (net/fetch.h) with a json-c body; the answer is
 * printed as the server sent it (--json), or as "field: value" lines and aligned tables. Strings from the server
 * reach the terminal with control characters replaced, so a hostile name cannot drive the terminal. */
#include "cli/keys.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "lib/buf.h"
#include "net/fetch.h"

#define DEFAULT_URL "http://127.0.0.1:8080"
#define MAX_ANSWER (8u << 20) /* 1000 keys of a list, with room */
#define TIMEOUT_MS 30000
#define MAX_OPTS 256
#define MAX_POS 4

/* One command line: the common options, then the command's own (name/value pairs in order, repeats kept). */
struct cli {
    const char *prog; /* "keys create", for messages */
    const char *url;
    const char *key;
    const char *tls_ca;
    bool json;
    const char *pos[MAX_POS];
    int npos;
    const char *name[MAX_OPTS];
    const char *val[MAX_OPTS];
    int nopt;
};

/* allowed: the command's own options, space separated, without "--". 0, or 2 after a message. */
static int parse(struct cli *c, const char *prog, int argc, char **argv, const char *allowed, int maxpos)
{
    memset(c, 0, sizeof(*c));
    c->prog = prog;
    c->url = getenv("WARDEN_URL");
    c->key = getenv("WARDEN_ADMIN_KEY");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--json") == 0) {
            c->json = true;
            continue;
        }
        if (strncmp(a, "--", 2) != 0 || a[2] == '\0') {
            if (c->npos >= maxpos) {
                fprintf(stderr, "warden %s: unexpected argument '%s'\n", prog, a);
                return 2;
            }
            c->pos[c->npos++] = a;
            continue;
        }
        char name[64];
        const char *eq = strchr(a + 2, '='), *v;
        size_t nl = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        if (nl >= sizeof(name)) {
            fprintf(stderr, "warden %s: unknown option\n", prog);
            return 2;
        }
        memcpy(name, a + 2, nl);
        name[nl] = '\0';
        bool common = strcmp(name, "url") == 0 || strcmp(name, "key") == 0 || strcmp(name, "tls-ca") == 0;
        bool own = false;
        for (const char *p = allowed; *p != '\0' && !own;) {
            size_t wl = strcspn(p, " ");
            own = wl == nl && memcmp(p, name, nl) == 0;
            p += wl;
            p += *p == ' ';
        }
        if (!common && !own) {
            /* the option's name only: with --key=SECRET mistyped as --kye=SECRET the value must not show */
            fprintf(stderr, "warden %s: unknown option '--%s'\n", prog, name);
            return 2;
        }
        if (eq != NULL)
            v = eq + 1;
        else if (i + 1 < argc)
            v = argv[++i];
        else {
            fprintf(stderr, "warden %s: --%s needs a value\n", prog, name);
            return 2;
        }
        if (strcmp(name, "url") == 0)
            c->url = v;
        else if (strcmp(name, "key") == 0)
            c->key = v;
        else if (strcmp(name, "tls-ca") == 0)
            c->tls_ca = v;
        else if (c->nopt >= MAX_OPTS) {
            fprintf(stderr, "warden %s: too many options\n", prog);
            return 2;
        } else {
            /* argv outlives the call, and name's bytes are argv's: keep the argv pointer */
            c->name[c->nopt] = a + 2;
            c->val[c->nopt++] = v;
        }
    }
    if (c->url == NULL || c->url[0] == '\0')
        c->url = DEFAULT_URL;
    if (c->key == NULL || c->key[0] == '\0') {
        fprintf(stderr, "warden %s: no admin key: give --key KEY or set WARDEN_ADMIN_KEY\n", prog);
        return 2;
    }
    return 0;
}

static bool opt_is(const struct cli *c, int i, const char *name)
{
    size_t n = strlen(name);
    return strncmp(c->name[i], name, n) == 0 && (c->name[i][n] == '\0' || c->name[i][n] == '=');
}

/* The last value of --name, or NULL. */
static const char *opt(const struct cli *c, const char *name)
{
    const char *v = NULL;
    for (int i = 0; i < c->nopt; i++)
        if (opt_is(c, i, name))
            v = c->val[i];
    return v;
}

/* Percent-encodes s (RFC 3986 unreserved bytes stay) for a path segment or a query value. */
static void put_escaped(struct wd_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
        if ((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '-' ||
            *p == '.' || *p == '_' || *p == '~') {
            wd_buf_putc(b, (char)*p);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            wd_buf_put(b, e, 3);
        }
    }
}

/* Writes s with every control byte (and DEL) as '?': server text is untrusted on a terminal. */
static void put_clean(FILE *f, const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++)
        fputc(*p < 0x20 || *p == 0x7f ? '?' : *p, f);
}

/* The text of a JSON value for a table or a field line: strings as they are, null "-", arrays comma-joined. */
static void value_text(json_object *v, struct wd_buf *out)
{
    if (v == NULL || json_object_is_type(v, json_type_null)) {
        wd_buf_puts(out, "-");
    } else if (json_object_is_type(v, json_type_string)) {
        wd_buf_puts(out, json_object_get_string(v));
    } else if (json_object_is_type(v, json_type_array)) {
        size_t n = json_object_array_length(v);
        if (n == 0)
            wd_buf_puts(out, "-");
        for (size_t i = 0; i < n; i++) {
            if (i > 0)
                wd_buf_putc(out, ',');
            value_text(json_object_array_get_idx(v, i), out);
        }
    } else {
        wd_buf_puts(out, json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
    }
}

static void print_value(FILE *f, json_object *v)
{
    struct wd_buf b = {0};
    value_text(v, &b);
    wd_buf_putc(&b, '\0');
    put_clean(f, b.oom ? "?" : b.p);
    wd_buf_free(&b);
}

/* "field: value" lines of an object's members in order, skipping `skip` (or nothing when NULL). */
static void print_fields(FILE *f, json_object *o, const char *skip)
{
    json_object_object_foreach(o, k, v)
    {
        if (skip != NULL && strcmp(k, skip) == 0)
            continue;
        put_clean(f, k);
        fputs(": ", f);
        print_value(f, v);
        fputc('\n', f);
    }
}

/* An aligned table of the objects in `data`, one column per name in cols (headers upper-cased). */
static void print_table(json_object *data, const char *const *cols, size_t ncols)
{
    size_t rows = json_object_array_length(data);
    size_t width[16] = {0};
    struct wd_buf *cells = calloc((rows + 1) * ncols, sizeof(*cells));
    if (cells == NULL || ncols > 16) {
        free(cells);
        fprintf(stderr, "warden: out of memory\n");
        return;
    }
    for (size_t c = 0; c < ncols; c++) {
        for (const char *p = cols[c]; *p != '\0'; p++)
            wd_buf_putc(&cells[c], (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p));
        width[c] = cells[c].n;
    }
    for (size_t r = 0; r < rows; r++) {
        json_object *row = json_object_array_get_idx(data, r), *v = NULL;
        for (size_t c = 0; c < ncols; c++) {
            struct wd_buf *cell = &cells[(r + 1) * ncols + c];
            v = NULL;
            if (json_object_is_type(row, json_type_object))
                json_object_object_get_ex(row, cols[c], &v);
            value_text(v, cell);
            if (cell->n > width[c])
                width[c] = cell->n;
        }
    }
    for (size_t r = 0; r <= rows; r++) {
        for (size_t c = 0; c < ncols; c++) {
            struct wd_buf *cell = &cells[r * ncols + c];
            wd_buf_putc(cell, '\0');
            put_clean(stdout, cell->oom ? "?" : cell->p);
            if (c + 1 < ncols)
                printf("%*s", (int)(width[c] - (cell->n - 1) + 2), "");
        }
        putchar('\n');
    }
    for (size_t i = 0; i < (rows + 1) * ncols; i++)
        wd_buf_free(&cells[i]);
    free(cells);
}

/* One admin API call: method on base URL + path (already escaped), body (consumed, may be NULL). On a 2xx
 * answer, 0 with *out the parsed object (the caller puts it) and raw its bytes; else 1 after a message. */
static int call(const struct cli *c, const char *method, const char *path, json_object *body, json_object **out,
                struct wd_buf *raw)
{
    *out = NULL;
    struct wd_buf url = {0}, auth = {0};
    size_t ul = strlen(c->url);
    while (ul > 0 && c->url[ul - 1] == '/')
        ul--;
    wd_buf_put(&url, c->url, ul);
    wd_buf_puts(&url, path);
    wd_buf_putc(&url, '\0');
    wd_buf_printf(&auth, "Bearer %s", c->key);
    wd_buf_putc(&auth, '\0');
    const char *text = body ? json_object_to_json_string_ext(body, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) : NULL;
    struct wd_fetch f = {
        .url = url.p,
        .tls_ca = c->tls_ca,
        .timeout_ms = TIMEOUT_MS,
        .max_bytes = MAX_ANSWER,
        .accept = "application/json",
        .method = method,
        .post = text ? text : (strcmp(method, "POST") == 0 ? "" : NULL),
        .post_len = text ? strlen(text) : 0,
        .content_type = text ? "application/json" : NULL,
        .authorization = auth.p,
    };
    long status = 0;
    char err[256];
    int rc = 1;
    if (url.oom || auth.oom) {
        fprintf(stderr, "warden %s: out of memory\n", c->prog);
        goto done;
    }
    if (wd_fetch_request(&f, raw, &status, err, sizeof(err)) != 0) {
        fprintf(stderr, "warden %s: the admin API did not answer: %s\n", c->prog, err);
        goto done;
    }
    json_tokener *tok = json_tokener_new();
    json_object *o = tok ? json_tokener_parse_ex(tok, raw->p ? raw->p : "", (int)raw->n) : NULL;
    bool whole = tok != NULL && json_tokener_get_error(tok) == json_tokener_success;
    /* one JSON value and nothing after it but white space (a server may end its answer with a newline) */
    for (size_t i = whole ? json_tokener_get_parse_end(tok) : raw->n; i < raw->n && whole; i++)
        whole = strchr(" \t\r\n", raw->p[i]) != NULL && raw->p[i] != '\0';
    if (tok)
        json_tokener_free(tok);
    if (!whole) {
        json_object_put(o);
        o = NULL;
    }
    if (status >= 200 && status < 300) {
        if (!json_object_is_type(o, json_type_object)) {
            fprintf(stderr, "warden %s: HTTP %ld with an answer that is not a JSON object\n", c->prog, status);
            json_object_put(o);
            goto done;
        }
        *out = o;
        rc = 0;
        goto done;
    }
    json_object *e = NULL, *m = NULL, *t = NULL;
    if (json_object_object_get_ex(o, "error", &e) && json_object_object_get_ex(e, "message", &m) &&
        json_object_is_type(m, json_type_string)) {
        fprintf(stderr, "warden %s: ", c->prog);
        put_clean(stderr, json_object_get_string(m));
        fprintf(stderr, " (HTTP %ld", status);
        if (json_object_object_get_ex(e, "type", &t) && json_object_is_type(t, json_type_string)) {
            fputc(' ', stderr);
            put_clean(stderr, json_object_get_string(t));
        }
        fputs(")\n", stderr);
    } else {
        fprintf(stderr, "warden %s: HTTP %ld from the admin API\n", c->prog, status);
    }
    json_object_put(o);
done:
    json_object_put(body);
    wd_buf_free(&url);
    if (auth.p != NULL)
        memset(auth.p, 0, auth.cap); /* the admin key: no copy left behind in freed memory */
    wd_buf_free(&auth);
    return rc;
}

static void print_raw(const struct wd_buf *raw)
{
    fwrite(raw->p, 1, raw->n, stdout);
    if (raw->n == 0 || raw->p[raw->n - 1] != '\n')
        putchar('\n');
}

/* Runs a call and prints its answer: --json raw, else field lines (obj) or a table of its `data` (cols). */
static int run(const struct cli *c, const char *method, struct wd_buf *path, json_object *body,
               const char *const *cols, size_t ncols)
{
    struct wd_buf raw = {0};
    json_object *o = NULL;
    wd_buf_putc(path, '\0');
    if (path->oom) {
        json_object_put(body);
        wd_buf_free(path);
        fprintf(stderr, "warden %s: out of memory\n", c->prog);
        return 1;
    }
    int rc = call(c, method, path->p, body, &o, &raw);
    if (rc == 0) {
        json_object *data = NULL;
        if (c->json)
            print_raw(&raw);
        else if (cols == NULL)
            print_fields(stdout, o, NULL);
        else if (json_object_object_get_ex(o, "data", &data) && json_object_is_type(data, json_type_array))
            print_table(data, cols, ncols);
        else {
            fprintf(stderr, "warden %s: the answer has no data array\n", c->prog);
            rc = 1;
        }
    }
    json_object_put(o);
    wd_buf_free(&raw);
    wd_buf_free(path);
    return rc;
}

static int usage_error(const char *cmd)
{
    fprintf(stderr, "warden %s: bad arguments (see warden --help)\n", cmd);
    return 2;
}

/* A string member, when v is given. */
static void add_str(json_object *o, const char *k, const char *v)
{
    if (v != NULL)
        json_object_object_add(o, k, json_object_new_string(v));
}

/* The values of a repeatable option as an array member, when given at least once. */
static void add_list(json_object *o, const struct cli *c, const char *opt_name, const char *k)
{
    json_object *a = NULL;
    for (int i = 0; i < c->nopt; i++) {
        if (!opt_is(c, i, opt_name))
            continue;
        if (a == NULL)
            a = json_object_new_array();
        json_object_array_add(a, json_object_new_string(c->val[i]));
    }
    if (a != NULL)
        json_object_object_add(o, k, a);
}

static const char *const KEY_COLS[] = {"id", "name", "team", "owner", "prefix", "created_at", "expires_at",
                                       "revoked_at"};
static const char *const TEAM_COLS[] = {"name", "org", "created_at"};
static const char *const BUDGET_COLS[] = {"id", "scope", "subject", "metric", "period", "limit", "spent",
                                          "resets_at"};
#define NCOLS(a) (sizeof(a) / sizeof((a)[0]))

static int keys_create(struct cli *c)
{
    json_object *body = json_object_new_object();
    add_str(body, "name", c->pos[0]);
    add_str(body, "owner", opt(c, "owner"));
    add_str(body, "team", opt(c, "team"));
    add_list(body, c, "model", "models");
    add_list(body, c, "role", "roles");
    add_str(body, "expires_at", opt(c, "expires"));
    struct wd_buf raw = {0};
    json_object *o = NULL, *k = NULL;
    int rc = call(c, "POST", "/admin/v1/keys", body, &o, &raw);
    if (rc == 0 && c->json) {
        print_raw(&raw);
    } else if (rc == 0) {
        if (!json_object_object_get_ex(o, "key", &k) || !json_object_is_type(k, json_type_string)) {
            fprintf(stderr, "warden keys create: the answer has no key\n");
            rc = 1;
        } else {
            /* the new key alone on stdout (K=$(warden keys create x | head -1)); the rest for the eye */
            put_clean(stdout, json_object_get_string(k));
            putchar('\n');
            fflush(stdout);
            print_fields(stderr, o, "key");
        }
    }
    json_object_put(o);
    if (raw.p != NULL)
        memset(raw.p, 0, raw.cap); /* it held the new key */
    wd_buf_free(&raw);
    return rc;
}

int wd_cli_keys(int argc, char **argv)
{
    struct cli c;
    const char *sub = argc > 0 ? argv[0] : "";
    struct wd_buf path = {0};
    if (strcmp(sub, "create") == 0) {
        int r = parse(&c, "keys create", argc - 1, argv + 1, "team owner model role expires", 1);
        if (r != 0 || c.npos != 1)
            return r ? r : usage_error("keys create");
        return keys_create(&c);
    }
    if (strcmp(sub, "list") == 0) {
        int r = parse(&c, "keys list", argc - 1, argv + 1, "team", 0);
        if (r != 0)
            return r;
        wd_buf_puts(&path, "/admin/v1/keys");
        if (opt(&c, "team") != NULL) {
            wd_buf_puts(&path, "?team=");
            put_escaped(&path, opt(&c, "team"));
        }
        return run(&c, "GET", &path, NULL, KEY_COLS, NCOLS(KEY_COLS));
    }
    if (strcmp(sub, "show") == 0 || strcmp(sub, "revoke") == 0) {
        bool show = sub[0] == 's';
        int r = parse(&c, show ? "keys show" : "keys revoke", argc - 1, argv + 1, "", 1);
        if (r != 0 || c.npos != 1)
            return r ? r : usage_error(show ? "keys show" : "keys revoke");
        wd_buf_puts(&path, "/admin/v1/keys/");
        put_escaped(&path, c.pos[0]);
        return run(&c, show ? "GET" : "DELETE", &path, NULL, NULL, 0);
    }
    fprintf(stderr, "warden keys: expected create, list, show or revoke\n");
    return 2;
}

int wd_cli_teams(int argc, char **argv)
{
    struct cli c;
    const char *sub = argc > 0 ? argv[0] : "";
    struct wd_buf path = {0};
    if (strcmp(sub, "create") == 0) {
        int r = parse(&c, "teams create", argc - 1, argv + 1, "org", 1);
        if (r != 0 || c.npos != 1)
            return r ? r : usage_error("teams create");
        json_object *body = json_object_new_object();
        add_str(body, "name", c.pos[0]);
        add_str(body, "org", opt(&c, "org"));
        wd_buf_puts(&path, "/admin/v1/teams");
        return run(&c, "POST", &path, body, NULL, 0);
    }
    if (strcmp(sub, "list") == 0) {
        int r = parse(&c, "teams list", argc - 1, argv + 1, "", 0);
        if (r != 0)
            return r;
        wd_buf_puts(&path, "/admin/v1/teams");
        return run(&c, "GET", &path, NULL, TEAM_COLS, NCOLS(TEAM_COLS));
    }
    if (strcmp(sub, "delete") == 0) {
        int r = parse(&c, "teams delete", argc - 1, argv + 1, "", 1);
        if (r != 0 || c.npos != 1)
            return r ? r : usage_error("teams delete");
        wd_buf_puts(&path, "/admin/v1/teams/");
        put_escaped(&path, c.pos[0]);
        return run(&c, "DELETE", &path, NULL, NULL, 0);
    }
    fprintf(stderr, "warden teams: expected create, list or delete\n");
    return 2;
}

static bool one_of(const char *v, const char *const *set)
{
    for (; v != NULL && *set != NULL; set++)
        if (strcmp(v, *set) == 0)
            return true;
    return false;
}

/* A limit as JSON: a decimal number of at most 6 decimals for usd, an integer for the others. The literal text
 * is kept (json_object_new_double_s) so 0.1 reaches the server as 0.1, not as its nearest binary double. */
static json_object *limit_value(const char *s, bool usd)
{
    size_t i = 0, digits = 0, decimals = 0;
    while (s[i] >= '0' && s[i] <= '9')
        i++, digits++;
    if (usd && s[i] == '.') {
        i++;
        while (s[i] >= '0' && s[i] <= '9')
            i++, decimals++;
        if (decimals == 0 || decimals > 6)
            return NULL;
    }
    if (s[i] != '\0' || digits == 0 || digits > 16)
        return NULL;
    if (decimals > 0)
        return json_object_new_double_s(strtod(s, NULL), s);
    return json_object_new_int64(strtoll(s, NULL, 10));
}

int wd_cli_budgets(int argc, char **argv)
{
    static const char *const scopes[] = {"key", "team", "org", NULL};
    static const char *const metrics[] = {"usd", "requests", "tokens", NULL};
    static const char *const periods[] = {"minute", "daily", "weekly", "monthly", "total", NULL};
    struct cli c;
    const char *sub = argc > 0 ? argv[0] : "";
    struct wd_buf path = {0};
    if (strcmp(sub, "create") == 0) {
        int r = parse(&c, "budgets create", argc - 1, argv + 1, "scope subject metric period limit", 0);
        if (r != 0)
            return r;
        const char *scope = opt(&c, "scope"), *metric = opt(&c, "metric"), *period = opt(&c, "period");
        const char *subject = opt(&c, "subject"), *limit = opt(&c, "limit");
        if (!one_of(scope, scopes) || !one_of(metric, metrics) || !one_of(period, periods) || subject == NULL ||
            limit == NULL) {
            fprintf(stderr, "warden budgets create: needs --scope key|team|org --subject S "
                            "--metric usd|requests|tokens --period minute|daily|weekly|monthly|total --limit N\n");
            return 2;
        }
        json_object *lim = limit_value(limit, strcmp(metric, "usd") == 0);
        if (lim == NULL) {
            fprintf(stderr, "warden budgets create: --limit: %s\n",
                    strcmp(metric, "usd") == 0 ? "a number with at most 6 decimals" : "an integer");
            return 2;
        }
        json_object *body = json_object_new_object();
        add_str(body, "scope", scope);
        add_str(body, "subject", subject);
        add_str(body, "metric", metric);
        add_str(body, "period", period);
        json_object_object_add(body, "limit", lim);
        wd_buf_puts(&path, "/admin/v1/budgets");
        return run(&c, "POST", &path, body, NULL, 0);
    }
    if (strcmp(sub, "list") == 0) {
        int r = parse(&c, "budgets list", argc - 1, argv + 1, "scope subject", 0);
        if (r != 0)
            return r;
        wd_buf_puts(&path, "/admin/v1/budgets");
        char sep = '?';
        if (opt(&c, "scope") != NULL) {
            wd_buf_puts(&path, "?scope=");
            put_escaped(&path, opt(&c, "scope"));
            sep = '&';
        }
        if (opt(&c, "subject") != NULL) {
            wd_buf_putc(&path, sep);
            wd_buf_puts(&path, "subject=");
            put_escaped(&path, opt(&c, "subject"));
        }
        return run(&c, "GET", &path, NULL, BUDGET_COLS, NCOLS(BUDGET_COLS));
    }
    if (strcmp(sub, "reset") == 0 || strcmp(sub, "delete") == 0 || strcmp(sub, "show") == 0) {
        char prog[32];
        snprintf(prog, sizeof(prog), "budgets %s", sub);
        int r = parse(&c, sub[0] == 'r' ? "budgets reset" : sub[0] == 'd' ? "budgets delete" : "budgets show",
                      argc - 1, argv + 1, "", 1);
        if (r != 0 || c.npos != 1)
            return r ? r : usage_error(prog);
        wd_buf_puts(&path, "/admin/v1/budgets/");
        put_escaped(&path, c.pos[0]);
        if (sub[0] == 'r')
            wd_buf_puts(&path, "/reset");
        return run(&c, sub[0] == 'r' ? "POST" : sub[0] == 'd' ? "DELETE" : "GET", &path, NULL, NULL, 0);
    }
    fprintf(stderr, "warden budgets: expected create, list, show, reset or delete\n");
    return 2;
}

void wd_cli_keys_usage(FILE *f)
{
    fprintf(f,
            "  warden keys create NAME [--team T] [--owner O] [--model PATTERN]... [--role R]...\n"
            "               [--expires RFC3339]\n"
            "                                 create a virtual key: the key alone on stdout (shown once),\n"
            "                                 its id and fields on stderr\n"
            "  warden keys list [--team T] | show ID | revoke ID\n"
            "  warden teams create NAME [--org O] | list | delete NAME\n"
            "  warden budgets create --scope key|team|org --subject S --metric usd|requests|tokens\n"
            "               --period minute|daily|weekly|monthly|total --limit N\n"
            "  warden budgets list [--scope S] [--subject X] | show ID | reset ID | delete ID\n"
            "                                 the admin API; every one takes --url URL ($WARDEN_URL, else\n"
            "                                 " DEFAULT_URL "), --key KEY ($WARDEN_ADMIN_KEY, better than\n"
            "                                 --key: a command line is visible to other users), --tls-ca FILE,\n"
            "                                 --json (the server's JSON as it is)\n");
}
