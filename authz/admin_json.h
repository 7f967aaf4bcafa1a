/* Request-body parsers of the admin API (docs/governance.md, "Admin API"): keys, teams and budgets. They check
 * everything the contract says of a body's shape (one object, no unknown or repeated field, types, bounds) so that
 * the HTTP side and the database side see only valid values; what needs the database (a team exists, a name is
 * unique) is theirs. Error messages name a field and a rule, never the value sent. */
#ifndef WARDEN_AUTHZ_ADMIN_JSON_H
#define WARDEN_AUTHZ_ADMIN_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_ADMIN_MAX_BODY 65536
#define WD_ADMIN_MAX_LIST 64              /* entries of models and of roles */
#define WD_ADMIN_MAX_LIMIT INT64_C(1000000000000000) /* 10^15 units (micro-USD, requests or tokens) */

enum wd_admin_scope { WD_ADMIN_SCOPE_KEY = 1, WD_ADMIN_SCOPE_TEAM, WD_ADMIN_SCOPE_ORG };
enum wd_admin_metric { WD_ADMIN_METRIC_USD = 1, WD_ADMIN_METRIC_REQUESTS, WD_ADMIN_METRIC_TOKENS };
enum wd_admin_period {
    WD_ADMIN_PERIOD_MINUTE = 1,
    WD_ADMIN_PERIOD_DAILY,
    WD_ADMIN_PERIOD_WEEKLY,
    WD_ADMIN_PERIOD_MONTHLY,
    WD_ADMIN_PERIOD_TOTAL
};
/* A field of a PATCH: absent, null, or set. */
enum wd_admin_set { WD_ADMIN_ABSENT = 0, WD_ADMIN_NULL, WD_ADMIN_SET };

/* POST /admin/v1/keys and PATCH /admin/v1/keys/{id}. A create may also send null for owner, team and expires_at
 * (the same as leaving them out, reported as WD_ADMIN_NULL). */
struct wd_admin_key_req {
    char name[129];              /* 1-128 of [A-Za-z0-9._@-]; create only */
    bool has_name;               /* name was given (always true after a successful create) */
    char owner[129];             /* 1-128 bytes of UTF-8 without control characters, when owner_set is SET */
    enum wd_admin_set owner_set; /* owner absent, null (none) or set */
    char team[129];              /* a team name (same rule as name), when team_set is SET */
    enum wd_admin_set team_set;  /* team absent, null (none) or set */
    char **models;               /* nmodels RBAC patterns, each 1-256 printable ASCII without spaces; malloc'd */
    size_t nmodels;              /* entries in models (0..64) */
    bool models_set;             /* models was given (possibly empty) */
    char **roles;                /* nroles role names, each 1-128 of [A-Za-z0-9._:@-]; malloc'd */
    size_t nroles;               /* entries in roles (0..64) */
    bool roles_set;              /* roles was given (possibly empty) */
    int64_t expires_at;          /* unix seconds, after now_s, when expires_set is SET */
    enum wd_admin_set expires_set; /* expires_at absent, null (never) or set */
};

/* POST /admin/v1/teams. */
struct wd_admin_team_req {
    char name[129]; /* 1-128 of [A-Za-z0-9._@-] */
    char org[129];  /* same rule, when has_org */
    bool has_org;   /* org was given as a string (null or absent: no org) */
};

/* POST /admin/v1/budgets (all fields required) and PATCH /admin/v1/budgets/{id} (only limit). */
struct wd_admin_budget_req {
    enum wd_admin_scope scope;   /* create: parsed; PATCH: untouched */
    char subject[129];           /* key id, team or org name: 1-128 of [A-Za-z0-9._@-]; create only */
    enum wd_admin_metric metric; /* create: parsed; PATCH: an input, the budget's stored metric (see below) */
    enum wd_admin_period period; /* create: parsed; PATCH: untouched */
    int64_t limit;               /* usd: micro-USD (exact, from the number's text); requests/tokens: the integer;
                                    1 .. 10^15 */
    bool has_limit;              /* limit was parsed (always true on success) */
};

/* Each parser: 0, or -1 with a message in err[cap] (field and rule, e.g. "name: 1-128 characters of A-Z a-z 0-9
 * . _ @ -"); on -1 nothing is left allocated. The body is len bytes, not necessarily NUL-terminated, at most
 * WD_ADMIN_MAX_BODY: one JSON object (valid UTF-8, nothing after it but whitespace), no repeated member name at
 * any depth, no unknown field (the message names it, cut to 64 bytes, control characters removed).
 * patch: false for a create (required fields enforced), true for a PATCH (only updatable fields, at least one).
 * now_s: the wall clock, for "expires_at in the future". */
int wd_admin_parse_key(const char *body, size_t len, bool patch, int64_t now_s, struct wd_admin_key_req *out,
                       char *err, size_t cap);
/* Frees models and roles (safe on a zeroed or already freed request). */
void wd_admin_key_req_free(struct wd_admin_key_req *r);
int wd_admin_parse_team(const char *body, size_t len, struct wd_admin_team_req *out, char *err, size_t cap);
/* For a PATCH the limit's unit depends on the budget's metric, which the body does not carry: the caller sets
 * out->metric to the stored budget's metric before the call (the other fields of out are left as they are, but
 * limit and has_limit). A PATCH with out->metric not a valid metric is refused ("limit: ..."). */
int wd_admin_parse_budget(const char *body, size_t len, bool patch, struct wd_admin_budget_req *out, char *err,
                          size_t cap);

/* A limit given as a JSON number's text (as it appears in the body) in the unit of metric: 0 with *out in
 * 1 .. 10^15 (micro-USD for usd, exact: no floating point), or -1 with a reason (a static string) in *why. */
int wd_admin_parse_limit(const char *num, size_t n, enum wd_admin_metric metric, int64_t *out, const char **why);

/* Names for SQL and JSON ("key", "usd", "daily", ...), NULL for a value out of range; and back, from n bytes
 * (0 when unknown). */
const char *wd_admin_scope_name(enum wd_admin_scope s);
const char *wd_admin_metric_name(enum wd_admin_metric m);
const char *wd_admin_period_name(enum wd_admin_period p);
enum wd_admin_scope wd_admin_scope_from(const char *s, size_t n);
enum wd_admin_metric wd_admin_metric_from(const char *s, size_t n);
enum wd_admin_period wd_admin_period_from(const char *s, size_t n);

/* RFC 3339 UTC "YYYY-MM-DDTHH:MM:SSZ" (fractional seconds allowed and ignored; "+00:00" for "Z"; lowercase t and
 * z accepted, as RFC 3339 allows) -> unix seconds in *out. Years 0000-9999, real calendar dates, no leap second.
 * 0 or -1. */
int wd_admin_parse_time(const char *s, size_t n, int64_t *out);

#endif
