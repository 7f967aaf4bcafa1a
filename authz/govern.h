/* Governance on the request path (docs/governance.md): the virtual keys, teams and limits a replica loaded from
 * the database, as a snapshot the governor thread swaps whole; and admission of a call against this replica's
 * leases of each limit, with atomic counters and no lock, syscall or database round trip. The governor
 * (server/governor.c) owns every database exchange. */
#ifndef WARDEN_AUTHZ_GOVERN_H
#define WARDEN_AUTHZ_GOVERN_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "authz/auth.h"
#include "lib/buf.h"

enum wd_gov_scope { WD_GOV_SCOPE_KEY = 1, WD_GOV_SCOPE_TEAM, WD_GOV_SCOPE_ORG };
enum wd_gov_metric { WD_GOV_USD = 1, WD_GOV_REQUESTS, WD_GOV_TOKENS };
enum wd_gov_period { WD_GOV_MINUTE = 1, WD_GOV_DAILY, WD_GOV_WEEKLY, WD_GOV_MONTHLY, WD_GOV_TOTAL };

#define WD_GOV_NAME_MAX 129        /* names, owners, teams, orgs: 128 bytes and a NUL */
#define WD_GOV_MAX_HOLDS 45        /* limits one call may be under: key, team and org x 3 metrics x 5 periods */
#define WD_GOV_WAIT 1              /* wd_gov_admit: a lease is being topped up; try again shortly */

/* One budget or rate limit. It lives until exit once made (snapshots and calls in flight point at it); a limit
 * deleted in the database is only marked. The counters are this replica's, in the limit's units (micro-USD,
 * requests, tokens). */
struct wd_gov_limit {
    int64_t id;                       /* gov.budgets.id */
    enum wd_gov_scope scope;
    char subject[WD_GOV_NAME_MAX];    /* key id, team or org */
    enum wd_gov_metric metric;
    enum wd_gov_period period;
    _Atomic int64_t lim;              /* the limit */
    _Atomic int64_t reset_at;         /* a manual reset (unix s) starts the current period again; 0 none */
    _Atomic int64_t period_start;     /* the period the lease belongs to (unix s); INT64_MIN: no lease yet;
                                         INT64_MIN + 1: the governor is rolling the period over */
    _Atomic int64_t lease;            /* what this replica may still reserve in that period (< 0: overdrawn) */
    _Atomic int64_t unflushed;        /* charged here, not yet added to the database's spend */
    _Atomic int64_t want;             /* a waiting call needs this much more lease: the governor tops up */
    _Atomic int64_t last_use_ms;      /* the last reservation (idle leases go back) */
    _Atomic bool exhausted;           /* the last top-up in this period got less than asked: refuse */
    _Atomic bool dead;                /* deleted in the database */
    int64_t next_try_ms;              /* the governor's own: an exhausted limit is asked for more at most once per
                                         sync interval */
    struct wd_gov_limit *all_next;    /* every limit ever made (the governor's list) */
};

/* A virtual key as the snapshot holds it. */
struct wd_gov_key {
    char id[24];                      /* "key_" + 16 hex */
    char name[WD_GOV_NAME_MAX];
    char team[WD_GOV_NAME_MAX];       /* "" none */
    char org[WD_GOV_NAME_MAX];        /* the team's org, "" none */
    char prefix[12];                  /* the key's first 11 characters, the lookup index */
    uint8_t salt[16], hash[32];       /* hash = SHA-256(salt || key) */
    char **models;                    /* RBAC patterns it is restricted to (none: no restriction beyond RBAC) */
    size_t nmodels;
    char **roles;                     /* names of rbac.roles it holds */
    size_t nroles;
    int64_t expires_at;               /* unix s, 0 never */
    bool revoked;
};

struct wd_gov_subject;

/* What the replica knows of the database's keys, teams and limits: immutable once published. */
struct wd_gov_snap {
    atomic_int refs;                  /* the publisher's and every holder's */
    uint64_t serial;                  /* bumped per publication */
    struct wd_gov_key *keys;
    size_t nkeys;
    size_t *by_prefix;                /* indexes into keys, sorted by prefix (binary search) */
    struct wd_gov_subject *subjects;  /* (scope, name) -> limits and, for a team, its org */
    size_t nsubjects;
};

/* The snapshot builder (the governor): add keys, teams and limits, then publish. */
struct wd_gov_snap *wd_gov_snap_new(void);
/* Copies k (models and roles included). 0 or -1 (memory). */
int wd_gov_snap_add_key(struct wd_gov_snap *s, const struct wd_gov_key *k);
int wd_gov_snap_add_team(struct wd_gov_snap *s, const char *team, const char *org);
/* The limit with this id, made on first sight and kept across snapshots (its counters survive a reload);
 * lim and reset_at are updated. NULL on memory failure. */
struct wd_gov_limit *wd_gov_limit_get(int64_t id, enum wd_gov_scope scope, const char *subject,
                                      enum wd_gov_metric metric, enum wd_gov_period period, int64_t lim,
                                      int64_t reset_at);
int wd_gov_snap_add_limit(struct wd_gov_snap *s, struct wd_gov_limit *l);
/* Sorts and indexes s, then makes it current (the previous one is released). Returns its serial. */
uint64_t wd_gov_publish(struct wd_gov_snap *s);
/* Every limit ever made, for the governor's walk (stable: limits are never freed before wd_gov_shutdown). */
struct wd_gov_limit *wd_gov_limits(void);
/* Frees the current snapshot and every limit (at exit, after the workers and the governor stopped). */
void wd_gov_shutdown(void);

/* The current snapshot with a reference (NULL when governance is off or nothing was loaded yet), and its
 * release. The serial lets a worker keep its reference until something new is published. */
struct wd_gov_snap *wd_gov_acquire(void);
uint64_t wd_gov_serial(void);
void wd_gov_release(struct wd_gov_snap *s);

/* Virtual keys. */
#define WD_GOV_KEY_PREFIX "wk-"
#define WD_GOV_KEY_LEN 46             /* "wk-" + 43 base64url characters (32 bytes) */
bool wd_gov_looks_like_key(struct wd_str k);
/* Makes a new key: out gets the key (WD_GOV_KEY_LEN + NUL), salt and hash its stored form, prefix its index. */
int wd_gov_key_make(char out[WD_GOV_KEY_LEN + 1], uint8_t salt[16], uint8_t hash[32], char prefix[12]);

/* Per-worker cache of verified virtual keys (keyed by the presented key's SipHash tag): the SHA-256 check runs
 * once per key and snapshot, not per request. */
struct wd_gov_cache;
struct wd_gov_cache *wd_gov_cache_new(void);
void wd_gov_cache_free(struct wd_gov_cache *c);
/* Authenticates a presented virtual key against snapshot s: 0 with *key (valid while s is held) and the principal
 * filled (subject: the key's name, method "virtual_key", key id, team, org); -1 refused with *why ("unknown key",
 * "revoked key", "expired key"). tag is wd_siphash128 of the key under wd_process_key. */
int wd_gov_authenticate(struct wd_gov_cache *c, const struct wd_gov_snap *s, struct wd_str presented,
                        const uint8_t tag[16], int64_t now_s, const struct wd_gov_key **key,
                        struct wd_principal *who, const char **why);

/* What a call costs, or may cost at most (its reservation), in each metric. */
struct wd_gov_cost {
    int64_t usd_micro;
    int64_t requests;
    int64_t tokens;
};

/* A call's reservations, settled when it ends. */
struct wd_gov_hold {
    struct wd_gov_limit *l;
    int64_t reserved;                 /* taken from the lease */
    int64_t period;                   /* the period it was taken in */
};
struct wd_gov_admission {
    struct wd_gov_hold h[WD_GOV_MAX_HOLDS];
    int n;
    bool settled;
};

/* The start (unix s) of the period of l that holds now_s, and its end (0 for total). */
int64_t wd_gov_period_start(const struct wd_gov_limit *l, int64_t now_s, int64_t *end_s);

/* Admission of a call by principal who (key id, team, org) under snapshot s: every limit on it must have lease
 * for est. 0: admitted, a filled (settle it once); WD_GOV_WAIT: some lease is short and a top-up was asked for
 * (ask again in a moment, up to governance.wait); -1: refused, *refused is the limit and msg says which and when it
 * resets (its Retry-After in *retry_after_s, -1 for none). fail_open: a short lease with the database down
 * admits anyway. */
int wd_gov_admit(const struct wd_gov_snap *s, const struct wd_principal *who, const struct wd_gov_cost *est,
                 int64_t now_s, int64_t now_ms, bool fail_open, struct wd_gov_admission *a,
                 const struct wd_gov_limit **refused, long *retry_after_s, char *msg, size_t cap);
/* Whether any limit of s applies to who (its key, team or org): without one, admission has nothing to do. */
bool wd_gov_limited(const struct wd_gov_snap *s, const struct wd_principal *who);
/* Charges the actual cost and returns the rest of each reservation to its lease (once). */
void wd_gov_settle(struct wd_gov_admission *a, const struct wd_gov_cost *actual);

/* Governor wake-up: a worker asks for a top-up. The governor installs the hook. */
void wd_gov_set_wake(void (*wake)(void));
/* Whether the governor's last exchange with the database succeeded (fail_open admits on local accounting while
 * it is false; fail_closed answers 503 at once instead of waiting for a top-up that cannot come). */
void wd_gov_set_db_up(bool up);
bool wd_gov_db_up(void);

/* ---- admin API jobs: built by the worker (gateway/admin.c), run by the governor against the database ---- */

enum wd_gov_job_kind {
    WD_GOV_KEY_CREATE = 1, WD_GOV_KEY_LIST, WD_GOV_KEY_GET, WD_GOV_KEY_PATCH, WD_GOV_KEY_REVOKE,
    WD_GOV_TEAM_CREATE, WD_GOV_TEAM_LIST, WD_GOV_TEAM_GET, WD_GOV_TEAM_DELETE,
    WD_GOV_BUDGET_CREATE, WD_GOV_BUDGET_LIST, WD_GOV_BUDGET_GET, WD_GOV_BUDGET_PATCH, WD_GOV_BUDGET_DELETE,
    WD_GOV_BUDGET_RESET,
    WD_GOV_SIGNIN_EXCHANGE = 100, WD_GOV_SIGNIN_REFRESH, /* the sign-in thread's (server/signin.c) */
    /* device grants in the governance database, when there is one (replicas share them) */
    WD_GOV_GRANT_NEW = 200, WD_GOV_GRANT_VERIFY, WD_GOV_GRANT_STATE, WD_GOV_GRANT_APPROVE, WD_GOV_GRANT_DENY_STATE,
    WD_GOV_GRANT_DENY_CODE, WD_GOV_GRANT_POLL,
};

struct wd_admin_key_req;
struct wd_admin_team_req;
struct wd_admin_budget_req;

struct wd_gov_job {
    enum wd_gov_job_kind kind;
    char id[WD_GOV_NAME_MAX];         /* the path's {id} or {name} */
    char filter1[WD_GOV_NAME_MAX];    /* ?team= (keys), ?scope= (budgets); "" none */
    char filter2[WD_GOV_NAME_MAX];    /* ?subject= (budgets); "" none */
    struct wd_admin_key_req *key;     /* the parsed body of a key create or patch */
    struct wd_admin_team_req *team;   /* ... of a team create */
    struct wd_admin_budget_req *budget; /* ... of a budget create */
    char *raw;                        /* a budget patch's body, parsed by the governor once it knows the budget's
                                         metric (malloc'd) */
    size_t raw_len;
    int status;                       /* the answer: HTTP status ... */
    const char *err_type;             /* ... the error's type when >= 400 ... */
    struct wd_buf out;                /* ... and its JSON body (the error's message when >= 400) */
    char made_id[32];                 /* a created key's or budget's id (audit record) */
    bool raw_answer;                  /* sign-in jobs: out is the answer as it is (OAuth JSON, HTML) */
    const char *content_type;         /* ... with this content type */
    void *ext;                        /* sign-in jobs: their input (malloc'd, wiped and freed with the job) */
    size_t ext_len;
    /* Optional, on the worker before the answer: 0 answer from status/out; 1 it answered itself; 2 it handed the
     * job on (to another queue: it comes back later). */
    int (*finish)(struct wd_gov_job *j, void *req, void *gateway);
    char subject[128];                /* sign-in jobs: who signed in or refreshed ("" unknown), for the audit record */
    const char *decision;             /* sign-in jobs: "allow" or "deny" (NULL: from the status) */
    void (*done)(struct wd_gov_job *j); /* called on the governor's thread once the answer is in */
    void *ctx;                        /* the submitter's */
    struct wd_gov_job *next;          /* the governor's queue */
};
/* The sign-in thread's queue (server/signin.c): the same jobs, run against the IdP. */
int wd_gov_signin_submit(struct wd_gov_job *j);
void wd_gov_signin_enable(bool on, void (*wake)(void));
struct wd_gov_job *wd_gov_signin_take(void);

/* The inputs and outputs of the sign-in and grant jobs (their ext): one record follows a sign-in step through the
 * governor and the sign-in thread. */
struct wd_signin_exchange {
    char code[2048];                  /* the IdP's authorization code (callback) */
    char state[64];                   /* the OAuth state (callback, verify's answer) */
    char nonce[64];
    char verifier[64];                /* PKCE */
    char device_code[64];             /* NEW's answer, POLL's question */
    char user_code[16];               /* NEW's answer, VERIFY's and DENY_CODE's question */
    char claims[4096];                /* APPROVE: the session claims as JSON; POLL's answer */
    char sealed[6144];                /* APPROVE: the IdP's refresh token, sealed (wd_signin_seal); POLL's answer */
    int ok;                           /* the governor's verdict: 1 found / done, 0 not */
    const char *error;                /* POLL: the OAuth error when not approved */
    bool shared;                      /* the grant lives in the database (not in this process) */
};
struct wd_signin_refresh {            /* Claude Code's refresh grant: the IdP's refresh token */
    char refresh_token[4096];
};

/* What the sign-in thread publishes for the workers: the session token keys (set once at start, immutable) and the
 * IdP's authorization endpoint (once discovered). */
struct wd_signin_keys;
void wd_gov_signin_set_keys(struct wd_signin_keys *keys);
const struct wd_signin_keys *wd_gov_signin_keys(void);
void wd_gov_signin_set_auth_endpoint(const char *url);
int wd_gov_signin_auth_endpoint(char *out, size_t cap); /* 0, or -1 not discovered yet */

/* Queues j for the governor: 0, or -1 when governance is off (nobody runs jobs). */
int wd_gov_submit(struct wd_gov_job *j);
/* The governor's side: installs the queue's consumer wake-up, and takes the queued jobs (a list, oldest first). */
void wd_gov_jobs_enable(bool on);
struct wd_gov_job *wd_gov_jobs_take(void);

/* The org of a team in s, copied into org ("" when unknown or none). */
void wd_gov_team_org(const struct wd_gov_snap *s, const char *team, char *org, size_t cap);

/* Warden's default prices (USD per million tokens) for common models, matched by name prefix; models.prices
 * comes first. false when the model has none. */
bool wd_gov_default_price(const char *model, size_t n, double *in, double *out, double *cached);

/* Counters for /metrics (process-wide). */
struct wd_gov_stats {
    bool on;                          /* governance runs (the governor started) */
    uint64_t admitted, refused, waited, fail_open; /* calls: admitted, refused (429), waited for a lease, admitted
                                                      on local accounting with the database down */
    uint64_t db_roundtrips;           /* statements the governor sent (leases, flushes, loads, admin jobs) */
    uint64_t leases;                  /* top-ups taken */
    bool db_up;
};
void wd_gov_stats(struct wd_gov_stats *out);
void wd_gov_stats_on(void);
void wd_gov_count_roundtrip(void);
void wd_gov_count_lease(void);

/* Names for SQL, JSON and messages; and back (0 unknown). */
const char *wd_gov_scope_name(enum wd_gov_scope s);
const char *wd_gov_metric_name(enum wd_gov_metric m);
const char *wd_gov_period_name(enum wd_gov_period p);
int wd_gov_scope_of(const char *s);
int wd_gov_metric_of(const char *s);
int wd_gov_period_of(const char *s);

#endif
