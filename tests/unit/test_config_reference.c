/* The README's "Configuration reference" and the loader's schema tables cannot drift: every key the tables
 * hold is a row of a `| Key | Type | Default | Reload | Meaning |` table there, with the same Type, Default and
 * Reload text and a Meaning that starts with the row's doc line, and every such README row is a key of the
 * tables. Runs with the repository root as working directory (CMake sets it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

#define REF_MAX_ROWS 256
#define REF_HEADER "| Key | Type | Default | Reload | Meaning |"

struct ref_row {
    char path[256];
    char type[256];
    char def[512];
    char reload[32];
    char meaning[2048];
    bool seen;          /* matched by a schema key */
};

struct ref_check {
    struct ref_row *rows;
    size_t nrows;
    int problems;
    bool quiet;         /* the self-tests break the README on purpose: no need to print */
};

static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;

    if (f == NULL)
        return NULL;
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
        (buf = malloc((size_t)n + 1)) == NULL) {
        fclose(f);
        return NULL;
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return NULL;
    }
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static char *read_readme(void)
{
    char *s = read_file("README.md");
    return s ? s : read_file("../README.md");
}

static void problem(struct ref_check *c, const char *fmt, ...)
{
    va_list ap;

    c->problems++;
    if (c->quiet)
        return;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void trim_into(char *out, size_t cap, const char *s, size_t n)
{
    while (n > 0 && *s == ' ')
        s++, n--;
    while (n > 0 && s[n - 1] == ' ')
        n--;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, s, n);
    out[n] = '\0';
}

/* Splits one table line on the '|' that are not escaped as "\|"; returns the number of cells. */
static int split_cells(const char *line, size_t len, char cells[5][2048])
{
    int n = 0;
    size_t start = 1;

    if (len == 0 || line[0] != '|')
        return 0;
    for (size_t i = 1; i < len; i++) {
        if (line[i] != '|' || line[i - 1] == '\\')
            continue;
        if (n < 5)
            trim_into(cells[n], sizeof cells[n], line + start, i - start);
        n++;
        start = i + 1;
    }
    return n;
}

/* Collects the key rows of the reference section's key tables. */
static void parse_reference(struct ref_check *c, const char *md)
{
    const char *sec = strstr(md, "\n## Configuration reference\n");
    const char *end, *p;
    bool in_table = false;
    static char cells[5][2048];

    c->nrows = 0;
    if (sec == NULL) {
        problem(c, "README.md has no \"## Configuration reference\" section");
        return;
    }
    end = strstr(sec + 1, "\n## ");
    if (end == NULL)
        end = sec + strlen(sec);
    for (p = sec + 1; p < end;) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);

        if (len == strlen(REF_HEADER) && !memcmp(p, REF_HEADER, len)) {
            in_table = true;
        } else if (in_table && len > 0 && p[0] == '|') {
            if (len >= 4 && !memcmp(p, "|---", 4)) {
            } else if (split_cells(p, len, cells) != 5) {
                problem(c, "README row without 5 cells: %.*s", (int)len, p);
            } else {
                size_t kl = strlen(cells[0]);
                if (kl < 3 || cells[0][0] != '`' || cells[0][kl - 1] != '`') {
                    problem(c, "README key not in backticks: %s", cells[0]);
                } else if (c->nrows == REF_MAX_ROWS) {
                    problem(c, "more than %d README rows", REF_MAX_ROWS);
                } else {
                    struct ref_row *r = &c->rows[c->nrows++];
                    memset(r, 0, sizeof *r);
                    trim_into(r->path, sizeof r->path, cells[0] + 1, kl - 2);
                    trim_into(r->type, sizeof r->type, cells[1], strlen(cells[1]));
                    trim_into(r->def, sizeof r->def, cells[2], strlen(cells[2]));
                    trim_into(r->reload, sizeof r->reload, cells[3], strlen(cells[3]));
                    trim_into(r->meaning, sizeof r->meaning, cells[4], strlen(cells[4]));
                }
            }
        } else {
            in_table = false;
        }
        p += len + 1;
    }
}

static void check_key(void *ctx, const struct wd_config_key_doc *k)
{
    struct ref_check *c = ctx;
    const char *reload = k->reloadable ? "yes" : "restart";
    struct ref_row *r = NULL;

    for (size_t i = 0; i < c->nrows; i++) {
        if (strcmp(c->rows[i].path, k->path))
            continue;
        if (r != NULL) {
            problem(c, "`%s` is documented twice", k->path);
            c->rows[i].seen = true;
        } else {
            r = &c->rows[i];
        }
    }
    if (r == NULL) {
        problem(c, "`%s` is in the schema but not in the README; its row:\n| `%s` | %s | %s | %s | %s |", k->path,
                k->path, k->type, k->def, reload, k->doc);
        return;
    }
    r->seen = true;
    if (strcmp(r->type, k->type))
        problem(c, "`%s`: README type \"%s\", schema \"%s\"", k->path, r->type, k->type);
    if (strcmp(r->def, k->def))
        problem(c, "`%s`: README default \"%s\", schema \"%s\"", k->path, r->def, k->def);
    if (strcmp(r->reload, reload))
        problem(c, "`%s`: README reload \"%s\", schema \"%s\"", k->path, r->reload, reload);
    if (k->doc == NULL || !*k->doc || strncmp(r->meaning, k->doc, strlen(k->doc)))
        problem(c, "`%s`: README meaning does not start with the schema's doc line \"%s\"", k->path,
                k->doc ? k->doc : "");
}

/* The number of differences between the README text md and the schema tables. */
static int check_reference(const char *md, bool quiet)
{
    struct ref_check c = {.quiet = quiet};

    c.rows = calloc(REF_MAX_ROWS, sizeof *c.rows);
    assert_non_null(c.rows);
    parse_reference(&c, md);
    wd_config_schema_walk(check_key, &c);
    for (size_t i = 0; i < c.nrows; i++)
        if (!c.rows[i].seen)
            problem(&c, "`%s` is documented in the README but is not a key of the schema", c.rows[i].path);
    free(c.rows);
    return c.problems;
}

/* md with the first occurrence of `from` replaced by `to` (which may be empty). */
static char *edit(const char *md, const char *from, const char *to)
{
    const char *at = strstr(md, from);
    size_t n = strlen(md), fl = strlen(from), tl = strlen(to);
    char *out;

    assert_non_null(at);
    out = malloc(n - fl + tl + 1);
    assert_non_null(out);
    memcpy(out, md, (size_t)(at - md));
    memcpy(out + (at - md), to, tl);
    memcpy(out + (at - md) + tl, at + fl, n - (size_t)(at - md) - fl + 1);
    return out;
}

static void test_readme_matches_schema(void **state)
{
    (void)state;
    char *md = read_readme();

    assert_non_null(md);
    assert_int_equal(check_reference(md, false), 0);
    free(md);
}

static const char backoff_row[] =
    "| `routing.backoff` | duration | `200ms` | yes | Wait before the first retry; it doubles per retry, with full "
    "jitter. |\n";

/* The check itself: each kind of drift is one problem. */
static void test_checker_finds_drift(void **state)
{
    (void)state;
    char *md = read_readme(), *bad;

    assert_non_null(md);
    /* a key added to the tables without its README row */
    bad = edit(md, backoff_row, "");
    assert_int_equal(check_reference(bad, true), 1);
    free(bad);
    /* a README row naming no key */
    bad = edit(md, backoff_row, "| `routing.jitter` | duration | none | yes | Made up. |\n");
    assert_int_equal(check_reference(bad, true), 2);
    free(bad);
    bad = edit(md, "| `routing.max_backoff` |", "| `routing.max_backof` |");
    assert_int_equal(check_reference(bad, true), 2);
    free(bad);
    /* a default, a type, a reload flag or a doc line that differs */
    bad = edit(md, "| `200ms` | yes |", "| `250ms` | yes |");
    assert_int_equal(check_reference(bad, true), 1);
    free(bad);
    bad = edit(md, "| `routing.attempts_per_target` | integer 1-10 |",
               "| `routing.attempts_per_target` | integer 1-9 |");
    assert_int_equal(check_reference(bad, true), 1);
    free(bad);
    bad = edit(md, "| `listen` | `host:port` | `0.0.0.0:8080` | restart |",
               "| `listen` | `host:port` | `0.0.0.0:8080` | yes |");
    assert_int_equal(check_reference(bad, true), 1);
    free(bad);
    bad = edit(md, "| Wait before the first retry;", "| Waits before the first retry;");
    assert_int_equal(check_reference(bad, true), 1);
    free(bad);
    /* a key documented twice */
    bad = edit(md, backoff_row, "| `routing.backoff` | duration | `200ms` | yes | Wait before the first retry; it doubles per "
                                "retry, with full jitter. |\n| `routing.backoff` | duration | `200ms` | yes | Wait before "
                                "the first retry; it doubles per retry, with full jitter. |\n");
    assert_int_equal(check_reference(bad, true), 1);
    free(bad);
    /* a table with another header is not a key table; a README without the section fails */
    assert_int_equal(check_reference("# x\n## Configuration reference\n| Scheme | Example | Meaning |\n|---|---|---|\n"
                                     "| `env://` | `env://X` | y |\n",
                                     true) > 50,
                     1);
    assert_true(check_reference("no section here", true) > 50);
    free(md);
}

struct walk_facts {
    size_t n;
    char paths[REF_MAX_ROWS][128];
    bool listen_restart;
    bool secret_row;
    bool chain_row;
    bool routing_budget;
    bool headers_row;
    bool bad_nesting;
};

static void collect(void *ctx, const struct wd_config_key_doc *k)
{
    struct walk_facts *f = ctx;
    const char *dot = strrchr(k->path, '.');

    if (f->n < REF_MAX_ROWS)
        snprintf(f->paths[f->n++], sizeof f->paths[0], "%s", k->path);
    /* every nested key comes after its parent */
    if (dot != NULL) {
        size_t pl = (size_t)(dot - k->path);
        bool found = false;
        if (pl > 2 && !memcmp(dot - 2, "[]", 2))
            pl -= 2;
        for (size_t i = 0; i + 1 < f->n; i++)
            if (strlen(f->paths[i]) == pl && !memcmp(f->paths[i], k->path, pl))
                found = true;
        /* a map's element placeholder ("<name>") has no row of its own */
        if (!found && pl > 0 && k->path[pl - 1] == '>') {
            const char *lt = memchr(k->path, '<', pl);
            size_t ppl = lt ? (size_t)(lt - k->path) - 1 : 0;
            for (size_t i = 0; i + 1 < f->n; i++)
                if (strlen(f->paths[i]) == ppl && !memcmp(f->paths[i], k->path, ppl))
                    found = true;
        }
        if (!found)
            f->bad_nesting = true;
    }
    if (!strcmp(k->path, "listen"))
        f->listen_restart = !k->reloadable && !strcmp(k->def, "`0.0.0.0:8080`");
    if (!strcmp(k->path, "providers.<name>.keys[].secret"))
        f->secret_row = !strcmp(k->type, "secret reference") && !strcmp(k->def, "*required*") && k->reloadable;
    if (!strcmp(k->path, "models.aliases.<alias>"))
        f->chain_row = !strcmp(k->type, "target or list of targets");
    if (!strcmp(k->path, "routing.retry_budget"))
        f->routing_budget = !strcmp(k->type, "number 0-1") && !strcmp(k->def, "`0.2`");
    if (!strcmp(k->path, "telemetry.otlp.headers.<name>"))
        f->headers_row = !k->reloadable && !strcmp(k->type, "string");
}

/* What the walk gives, independent of the README. */
static void test_schema_walk(void **state)
{
    (void)state;
    struct walk_facts *f = calloc(1, sizeof *f);

    assert_non_null(f);
    wd_config_schema_walk(collect, f);
    wd_config_schema_walk(NULL, NULL);
    assert_true(f->n > 70 && f->n < REF_MAX_ROWS);
    for (size_t i = 0; i < f->n; i++)
        for (size_t j = i + 1; j < f->n; j++)
            assert_string_not_equal(f->paths[i], f->paths[j]);
    assert_false(f->bad_nesting);
    assert_true(f->listen_restart);
    assert_true(f->secret_row);
    assert_true(f->chain_row);
    assert_true(f->routing_budget);
    assert_true(f->headers_row);
    free(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_readme_matches_schema),
        cmocka_unit_test(test_checker_finds_drift),
        cmocka_unit_test(test_schema_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
