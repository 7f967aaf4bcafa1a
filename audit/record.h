/* Audit records and checkpoints: the canonical form that is hashed, the chain, the signed checkpoints,
 * and the one line format used for the database batch, the spool file and the export file.
 * docs/audit.md states all of this byte for byte; this file is the reference implementation. Nothing
 * here touches a socket or the database, so the verifier, the fuzzers and the writer share it. */
#ifndef WARDEN_AUDIT_RECORD_H
#define WARDEN_AUDIT_RECORD_H

#include <stdbool.h>
#include <stdint.h>

#include <openssl/evp.h>

#include "lib/buf.h"
#include "lib/clock.h"
#include "lib/hash.h"
#include "lib/json.h"

/* The record's fields in canonical order: X(ENUM, column name, type). The same list is the column list
 * of audit.records (audit/schema.c). Types: UUID (text, lowercase 8-4-4-4-12), INT (64-bit), TS (UTC
 * microseconds; canonically "YYYY-MM-DDTHH:MM:SS.ffffffZ"), STR (UTF-8 text). Every field may be null
 * except chain_id, seq, ts, kind and event. */
#define WD_AUDIT_FIELDS(X)                                                                                  \
    X(CHAIN_ID, "chain_id", UUID)                                                                           \
    X(SEQ, "seq", INT)                                                                                      \
    X(TS, "ts", TS)                                                                                         \
    X(KIND, "kind", STR)                                                                                    \
    X(EVENT, "event", STR)                                                                                  \
    X(REQUEST_ID, "request_id", STR)                                                                        \
    X(TRACE_ID, "trace_id", STR)                                                                            \
    X(SUBJECT, "subject", STR)                                                                              \
    X(KEY_NAME, "key_name", STR)                                                                            \
    X(TEAM, "team", STR)                                                                                    \
    X(ORG, "org", STR)                                                                                      \
    X(AUTH_METHOD, "auth_method", STR)                                                                      \
    X(CLIENT_ADDR, "client_addr", STR)                                                                      \
    X(USER_AGENT, "user_agent", STR)                                                                        \
    X(API, "api", STR)                                                                                      \
    X(ROUTE, "route", STR)                                                                                  \
    X(MODEL_REQUESTED, "model_requested", STR)                                                              \
    X(MODEL_RESOLVED, "model_resolved", STR)                                                                \
    X(PROVIDER, "provider", STR)                                                                            \
    X(DECISION, "decision", STR)                                                                            \
    X(RULE, "rule", STR)                                                                                    \
    X(REASON, "reason", STR)                                                                                \
    X(UPSTREAM_STATUS, "upstream_status", INT)                                                              \
    X(STOP_REASON, "stop_reason", STR)                                                                      \
    X(INPUT_TOKENS, "input_tokens", INT)                                                                    \
    X(OUTPUT_TOKENS, "output_tokens", INT)                                                                  \
    X(CACHED_TOKENS, "cached_tokens", INT)                                                                  \
    X(TTFB_US, "ttfb_us", INT)                                                                              \
    X(TOTAL_US, "total_us", INT)                                                                            \
    X(ERROR_CLASS, "error_class", STR)                                                                      \
    X(REQUEST_SHA256, "request_sha256", STR)                                                                \
    X(RESPONSE_SHA256, "response_sha256", STR)                                                              \
    X(DETAIL, "detail", STR)

enum wd_audit_field_id {
#define WD_AF_ENUM(e, name, type) WD_AF_##e,
    WD_AUDIT_FIELDS(WD_AF_ENUM)
#undef WD_AF_ENUM
    WD_AF__COUNT
};

enum wd_audit_type { WD_AT_UUID = 1, WD_AT_INT, WD_AT_TS, WD_AT_STR };

struct wd_audit_field_desc {
    const char *name;
    enum wd_audit_type type;
    const char *key;             /* the member's prefix in the canonical form: ,"name": */
    size_t keylen;
};
extern const struct wd_audit_field_desc wd_audit_fields[WD_AF__COUNT];

/* Longest string a field holds, counted in canonical bytes (a byte that becomes U+FFFD counts three), which
 * is the decoded length the line reader allows; longer values are cut at a UTF-8 character boundary when set. */
#define WD_AUDIT_STR_MAX 1024
#define WD_AUDIT_DETAIL_MAX 8192
#define WD_AUDIT_BODY_MAX (64u << 20)

struct wd_audit_value {
    const char *s;   /* STR / UUID: not NUL-terminated; s == NULL is null */
    size_t n;
    int64_t i;       /* INT / TS */
    bool set;        /* INT / TS: false is null */
};

struct wd_audit_rec {
    struct wd_audit_value f[WD_AF__COUNT];
    /* audit.content: full. Not part of the canonical form: the digests in request_sha256 and
     * response_sha256 are, and the verifier checks the stored bodies against them. */
    const void *request_body, *response_body;
    size_t request_body_len, response_body_len;
    bool has_request_body, has_response_body;
};

/* Setters keep pointers (the caller keeps the bytes alive until the record is serialised). Strings are
 * cut to WD_AUDIT_STR_MAX (WD_AUDIT_DETAIL_MAX for detail) at a character boundary. */
void wd_audit_set_str(struct wd_audit_rec *r, enum wd_audit_field_id f, const char *s, size_t n);
void wd_audit_set_cstr(struct wd_audit_rec *r, enum wd_audit_field_id f, const char *s);
void wd_audit_set_int(struct wd_audit_rec *r, enum wd_audit_field_id f, int64_t v);

/* Canonical bytes: {"v":1,"chain_id":...,...,"detail":...} with every field of WD_AUDIT_FIELDS in that
 * order, null for an unset one, integers in shortest decimal, ts as above, strings with only '"', '\\'
 * and bytes below 0x20 escaped (\" \\ \u00xx lowercase), every other byte as is; invalid UTF-8 and NUL
 * in a string become U+FFFD. Returns -1 when a required field is missing or memory ran out. */
int wd_audit_canonical(const struct wd_audit_rec *r, struct wd_buf *out);

/* Genesis (the "previous hash" of seq 1) = SHA-256("warden-audit-v1 genesis " || chain_id). */
void wd_audit_genesis(const char *chain_id, uint8_t out[32]);
/* Record hash = SHA-256(prev || canonical). */
void wd_audit_chain_hash(const uint8_t prev[32], const char *canon, size_t n, uint8_t out[32]);

/* One record line (no newline): the canonical object with ,"hash":"<hex>","request_body":<null or
 * base64>,"response_body":<null or base64> before its closing brace. This line is what the writer sends
 * to PostgreSQL, what the spool holds and what an export holds. `canon` is wd_audit_canonical's output. */
void wd_audit_line(const struct wd_audit_rec *r, const char *canon, size_t canon_len, const uint8_t hash[32],
                   struct wd_buf *out);

/* A record line (wd_audit_line's output, no newline) as one row of COPY audit.records FROM STDIN in text
 * format: the columns of WD_AUDIT_FIELDS, then hash, request_body, response_body (wd_audit_copy_sql's
 * order), tab-separated, newline-terminated, \N for null, bytea as hex. The stored values are the ones
 * the line names, so the verifier's canonical form of the row is the one that was hashed. Accepts only
 * the exact spelling wd_audit_line writes; -1 (out unchanged) for anything else. */
int wd_audit_line_copy(const char *line, size_t n, struct wd_buf *out);

/* Signed checkpoint of a chain head. Signature: Ed25519 over wd_audit_ckpt_message(). */
struct wd_audit_ckpt {
    char chain_id[37];
    int64_t seq;
    uint8_t head[32];
    int64_t ts_us;
    char key_id[17];   /* first 8 bytes of SHA-256(raw public key), hex */
    uint8_t sig[64];
};
/* "warden-audit-checkpoint-v1\n<chain_id>\n<seq>\n<head hex>\n<ts>\n" */
void wd_audit_ckpt_message(const struct wd_audit_ckpt *c, struct wd_buf *out);
int wd_audit_ckpt_sign(struct wd_audit_ckpt *c, EVP_PKEY *key);
/* 0 when the signature verifies with pub (and key ids match). */
int wd_audit_ckpt_verify(const struct wd_audit_ckpt *c, EVP_PKEY *pub);
/* {"type":"checkpoint","v":1,"chain_id":..,"seq":..,"head":"hex","ts":"..","key_id":"..","sig":"base64"} */
void wd_audit_ckpt_line(const struct wd_audit_ckpt *c, struct wd_buf *out);

/* The first line of a chain in an export that starts past seq 1: it names the stored hash of the record
 * before the first exported one, which verification of the export takes as the previous hash (on trust,
 * unless a checkpoint at that seq vouches for it). No newline:
 * {"type":"anchor","v":1,"chain_id":"<uuid>","seq":<seq>,"hash":"<hex>"} */
void wd_audit_anchor_line(const char *chain_id, int64_t seq, const uint8_t hash[32], struct wd_buf *out);

/* Reads one line of a spool or export file. Returns WD_AUDIT_LINE_RECORD (rec, hash filled; strings
 * point into a or the line), WD_AUDIT_LINE_CKPT (ckpt filled), WD_AUDIT_LINE_ANCHOR (only rec's chain_id
 * and seq, and hash, filled), or -1 with *why set to a static reason. A record line must name every field
 * once, with the right type. */
enum { WD_AUDIT_LINE_RECORD = 1, WD_AUDIT_LINE_CKPT = 2, WD_AUDIT_LINE_ANCHOR = 3 };
int wd_audit_read_line(const char *line, size_t len, struct wd_arena *a, struct wd_json *j, struct wd_audit_rec *rec,
                       uint8_t hash[32], struct wd_audit_ckpt *ckpt, const char **why);

/* Walks a spool or export file's bytes line by line. A last line without its newline is a write cut
 * short (never acknowledged as durable) and is reported through *tail_len and not read. Each complete
 * line goes to cb with its kind (WD_AUDIT_LINE_RECORD / _CKPT / _ANCHOR; rec and hash are given for
 * records and anchors) or -1 and a reason; cb returns non-zero to stop. Returns the number of complete
 * lines read. Empty lines are errors (the writer never makes them). */
typedef int (*wd_audit_line_cb)(void *ctx, int kind, const struct wd_audit_rec *rec, const uint8_t hash[32],
                                const struct wd_audit_ckpt *ckpt, const char *line, size_t len, const char *why);
size_t wd_audit_scan(const char *data, size_t len, wd_audit_line_cb cb, void *ctx, size_t *tail_len);

/* Signing keys: a PEM Ed25519 private key behind a secret reference (env://, file://). */
EVP_PKEY *wd_audit_key_load(const char *ref, char *why, size_t why_cap);
/* A PEM public key (file contents), or NULL. */
EVP_PKEY *wd_audit_pubkey_parse(const char *pem, size_t len);
int wd_audit_pubkey_pem(EVP_PKEY *key, struct wd_buf *out);
void wd_audit_key_id(EVP_PKEY *key, char out[17]);

/* Helpers shared with the writer and the verifier (hex, SHA-256 and timestamps: lib/hash.h, lib/clock.h). */
void wd_audit_new_uuid(char out[37]);
bool wd_audit_uuid_valid(const char *s, size_t n);

#endif
