/* The audit database: versioned migrations and blocking connection helpers for the `warden db` and
 * `warden audit` commands. The request path never blocks on the database: see audit/writer.h. */
#ifndef WARDEN_AUDIT_DB_H
#define WARDEN_AUDIT_DB_H

#include <stddef.h>

#include <libpq-fe.h>

struct wd_audit_migration {
    int version;
    const char *name;
    const char *sql;
};
extern const struct wd_audit_migration wd_audit_migrations[];
extern const size_t wd_audit_nmigrations;

/* The database reference is a postgresql:// URL or a secret reference (env://, file://) holding one.
 * Resolves it into out; -1 with why (which never contains the URL: it may hold a password). */
int wd_audit_db_url(const char *ref, char *out, size_t cap, char *why, size_t why_cap);

/* Blocking connect; NULL with why (libpq's message without the connection string). */
PGconn *wd_audit_db_connect(const char *ref, char *why, size_t why_cap);

/* Applies pending migrations under an advisory lock, each in its own transaction. Returns the number
 * applied (0 when the schema is current, which needs only SELECT on audit.schema_migrations), or -1 with
 * why. */
int wd_audit_migrate(PGconn *db, char *why, size_t why_cap);

/* The schema version in the database (0 when there is none), or -1 with why. */
int wd_audit_schema_version(PGconn *db, char *why, size_t why_cap);

/* The statement that inserts a batch: $1 is a JSON array of record lines (wd_audit_line). Idempotent:
 * a record already present (a replay after an unacknowledged commit) is skipped. NUL-terminated,
 * static. */
const char *wd_audit_insert_sql(void);
/* The statement a batch of new records is copied with (rows from wd_audit_line_copy): COPY is several
 * times cheaper for PostgreSQL than the JSON insert above, but not idempotent, so the writer uses it only
 * for records never sent before (a duplicate would fail the whole batch). NUL-terminated, static. */
const char *wd_audit_copy_sql(void);
/* Inserts checkpoints: $1 is a JSON array of checkpoint lines (wd_audit_ckpt_line). Idempotent. */
extern const char wd_audit_ckpt_insert_sql[];

#endif
