/* The HashiCorp Vault backend's pure half: Vault's answers read and its requests built without any I/O, so
 * the unit tests and the fuzzer drive exactly what the backend (secrets/hashicorp.c) runs on the resolver
 * thread. Nothing here keeps state; every output goes into a buffer the caller owns (locked memory for tokens). */
#ifndef WARDEN_SECRETS_HASHICORP_H
#define WARDEN_SECRETS_HASHICORP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config/config.h"
#include "lib/secret_ref.h"

/* An answer larger than this is refused (a KV secret with its metadata, a login's auth block). */
#define WD_VAULT_ANSWER_MAX 65536
/* A Vault token (service tokens are about 100 bytes, batch tokens a few hundred). */
#define WD_VAULT_TOKEN_MAX 2048

/* What a login, a renewal or a lookup says of a token. */
struct wd_vault_token_info {
    int64_t lease_s; /* seconds the token has left (auth.lease_duration, lookup's data.ttl); 0: no expiry */
    bool renewable;  /* renew-self may extend it */
    int64_t creation_s; /* lookup-self's creation_ttl: the TTL it was made with (0: unknown; a login's is lease_s) */
};

/* Vault's {"errors":["..."]} as one line ("permission denied; ..."), control characters made spaces, cut to
 * fit out (cap > 0). Returns the length written, 0 when the body holds no such list (or an empty one). */
size_t wd_vault_read_errors(const char *body, size_t n, char *out, size_t cap);

/* A KV read's answer (kv_version 2: data.data; 1: data) and the value of field in it ("" or NULL: the secret
 * must hold exactly one key). A string value is used as it is (trailing CR/LF dropped, as file:// does), a
 * number as its JSON text; a boolean, null, object or array is refused. *lease_s gets lease_duration (0 when
 * Vault gives none). Returns the value's length (> 0), NUL-terminated in out[cap], or -1 with a reason in
 * why that never contains a value. */
int wd_vault_read_kv(const char *body, size_t n, unsigned kv_version, const char *field, char *out, size_t cap,
                     int64_t *lease_s, char *why, size_t whycap);

/* A login's or renew-self's answer: auth.client_token into token[cap] (printable ASCII, no space: it becomes a
 * header), auth.lease_duration and auth.renewable into *ti. token may be NULL (a renewal keeps its token).
 * 0, or -1 with why (never the token). */
int wd_vault_read_auth(const char *body, size_t n, char *token, size_t cap, struct wd_vault_token_info *ti,
                       char *why, size_t whycap);

/* lookup-self's answer: data.ttl, data.renewable and data.creation_ttl (optional) into *ti. 0, or -1 with why. */
int wd_vault_read_lookup(const char *body, size_t n, struct wd_vault_token_info *ti, char *why, size_t whycap);

/* The URL of a KV read: {address}/v1/{mount}/data/{path} (kv_version 2) or {address}/v1/{mount}/{path} (1).
 * address has no trailing '/'. Returns the length, or -1 when it does not fit out[cap]. */
int wd_vault_kv_url(const char *address, const struct wd_ref_vault *r, unsigned kv_version, char *out, size_t cap);

/* A login's body: approle {"role_id":a,"secret_id":b}, kubernetes {"role":a,"jwt":b}, as JSON (escaped).
 * Returns the length, or -1 when it does not fit out[cap] or auth is token. */
int wd_vault_login_body(enum wd_vault_auth auth, const char *a, const char *b, char *out, size_t cap);

/* Where the backend's token stands, for the plan below (times on the monotonic clock, in ms). */
struct wd_vault_token_state {
    bool have;        /* a token is held */
    int64_t got_ms;   /* when it was obtained, or last renewed */
    int64_t lease_ms; /* its lease counted from got_ms; 0: it does not expire */
    bool renewable;   /* renew-self may extend it */
    bool capped;      /* the last renewal came back shorter than asked: its max TTL is near, log in instead */
};

/* What to do before using the token: use it, renew it (renewable, not capped, past 2/3 of its lease), or log
 * in again (none held, expired, or past 2/3 of a lease that cannot be renewed). */
enum wd_vault_step { WD_VAULT_USE = 0, WD_VAULT_RENEW, WD_VAULT_LOGIN };
enum wd_vault_step wd_vault_plan(const struct wd_vault_token_state *s, int64_t now_ms);

/* A value's TTL given the token's: ttl_ms, shortened so that the cache (which refreshes at 80% of a TTL)
 * comes back at 3/4 of the token's lease, where the plan renews it or logs in again before it expires.
 * Never below 500 ms. */
int64_t wd_vault_value_ttl(const struct wd_vault_token_state *s, int64_t now_ms, int64_t ttl_ms);

#endif
