/* Audit schema migrations and blocking connection helpers. docs/audit.md explains the schema. */
#include "audit/db.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "audit/record.h"
#include "secrets/secrets.h"

/* Migration 1. audit.records' columns are WD_AUDIT_FIELDS (audit/record.h) in order, then the hash and
 * the optional bodies; the test suite checks the two lists agree. */
static const char m1_sql[] =
    "CREATE SCHEMA IF NOT EXISTS audit;\n"
    "DO $$ BEGIN\n"
    "  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_audit_writer') THEN\n"
    "    CREATE ROLE warden_audit_writer NOLOGIN;\n"
    "  END IF;\n"
    "  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_auditor') THEN\n"
    "    CREATE ROLE warden_auditor NOLOGIN;\n"
    "  END IF;\n"
    "END $$;\n"
    "CREATE TABLE audit.records (\n"
    "  chain_id uuid NOT NULL,\n"
    "  seq bigint NOT NULL CHECK (seq >= 1),\n"
    "  ts timestamptz NOT NULL,\n"
    "  kind text NOT NULL,\n"
    "  event text NOT NULL,\n"
    "  request_id text,\n"
    "  trace_id text,\n"
    "  subject text,\n"
    "  key_name text,\n"
    "  team text,\n"
    "  org text,\n"
    "  auth_method text,\n"
    "  client_addr text,\n"
    "  user_agent text,\n"
    "  api text,\n"
    "  route text,\n"
    "  model_requested text,\n"
    "  model_resolved text,\n"
    "  provider text,\n"
    "  decision text,\n"
    "  rule text,\n"
    "  reason text,\n"
    "  upstream_status bigint,\n"
    "  stop_reason text,\n"
    "  input_tokens bigint,\n"
    "  output_tokens bigint,\n"
    "  cached_tokens bigint,\n"
    "  ttfb_us bigint,\n"
    "  total_us bigint,\n"
    "  error_class text,\n"
    "  request_sha256 text,\n"
    "  response_sha256 text,\n"
    "  detail text,\n"
    "  hash bytea NOT NULL CHECK (length(hash) = 32),\n"
    "  request_body bytea,\n"
    "  response_body bytea,\n"
    "  PRIMARY KEY (chain_id, seq, ts)\n"
    ") PARTITION BY RANGE (ts);\n"
    "CREATE TABLE audit.records_default PARTITION OF audit.records DEFAULT;\n"
    "CREATE INDEX records_ts ON audit.records (ts);\n"
    "CREATE INDEX records_subject ON audit.records (subject, ts);\n"
    "CREATE TABLE audit.checkpoints (\n"
    "  chain_id uuid NOT NULL,\n"
    "  seq bigint NOT NULL CHECK (seq >= 1),\n"
    "  head bytea NOT NULL CHECK (length(head) = 32),\n"
    "  ts timestamptz NOT NULL,\n"
    "  key_id text NOT NULL,\n"
    "  sig bytea NOT NULL CHECK (length(sig) = 64),\n"
    "  PRIMARY KEY (chain_id, seq)\n"
    ");\n"
    "CREATE FUNCTION audit.reject_change() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  RAISE EXCEPTION 'audit tables are append-only: % on % rejected', TG_OP, TG_TABLE_NAME\n"
    "    USING ERRCODE = 'insufficient_privilege';\n"
    "END $$;\n"
    "CREATE TRIGGER records_append_only BEFORE UPDATE OR DELETE ON audit.records\n"
    "  FOR EACH ROW EXECUTE FUNCTION audit.reject_change();\n"
    "CREATE TRIGGER records_no_truncate BEFORE TRUNCATE ON audit.records\n"
    "  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_change();\n"
    "CREATE TRIGGER records_default_no_truncate BEFORE TRUNCATE ON audit.records_default\n"
    "  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_change();\n"
    "CREATE TRIGGER checkpoints_append_only BEFORE UPDATE OR DELETE ON audit.checkpoints\n"
    "  FOR EACH ROW EXECUTE FUNCTION audit.reject_change();\n"
    "CREATE TRIGGER checkpoints_no_truncate BEFORE TRUNCATE ON audit.checkpoints\n"
    "  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_change();\n"
    /* Monthly partitions, created on demand by the writer through this function (it runs with the
     * owner's rights, so the writer role needs no CREATE). */
    "CREATE FUNCTION audit.ensure_partition(at timestamptz) RETURNS void LANGUAGE plpgsql SECURITY DEFINER\n"
    "  SET search_path = pg_catalog, pg_temp AS $$\n"
    "DECLARE\n"
    "  lo timestamptz := date_trunc('month', at, 'UTC');\n"
    "  part text := 'records_' || to_char(lo AT TIME ZONE 'UTC', 'YYYY_MM');\n"
    "BEGIN\n"
    "  IF to_regclass('audit.' || part) IS NOT NULL THEN RETURN; END IF;\n"
    "  EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.records FOR VALUES FROM (%L) TO (%L)',\n"
    "                 part, lo, lo + interval '1 month');\n"
    "  EXECUTE format('CREATE TRIGGER no_truncate BEFORE TRUNCATE ON audit.%I\n"
    "                  FOR EACH STATEMENT EXECUTE FUNCTION audit.reject_change()', part);\n"
    "EXCEPTION WHEN duplicate_table OR check_violation OR unique_violation THEN\n"
    "  RETURN; -- another writer made it, or the default partition already holds that month\n"
    "END $$;\n"
    "REVOKE ALL ON FUNCTION audit.ensure_partition(timestamptz) FROM PUBLIC;\n"
    "SELECT audit.ensure_partition(now());\n"
    "SELECT audit.ensure_partition(now() + interval '1 month');\n"
    "CREATE VIEW audit.records_v AS SELECT * FROM audit.records;\n"
    "CREATE VIEW audit.checkpoints_v AS SELECT * FROM audit.checkpoints;\n"
    "CREATE VIEW audit.chains_v AS\n"
    "  SELECT chain_id, min(seq) AS first_seq, max(seq) AS last_seq, count(*) AS records,\n"
    "         min(ts) AS first_ts, max(ts) AS last_ts\n"
    "  FROM audit.records GROUP BY chain_id;\n"
    "REVOKE ALL ON ALL TABLES IN SCHEMA audit FROM PUBLIC;\n"
    "GRANT USAGE ON SCHEMA audit TO warden_audit_writer, warden_auditor;\n"
    "GRANT SELECT, INSERT ON audit.records, audit.checkpoints TO warden_audit_writer;\n"
    "GRANT EXECUTE ON FUNCTION audit.ensure_partition(timestamptz) TO warden_audit_writer;\n"
    "GRANT SELECT ON audit.records_v, audit.checkpoints_v, audit.chains_v TO warden_audit_writer, warden_auditor;\n"
    "GRANT SELECT ON audit.schema_migrations TO warden_audit_writer, warden_auditor;\n";

/* Migration 2: governance (docs/governance.md). Amounts are bigint units: micro-USD, requests, tokens. The
 * database's bound: gov.take_lease never grants past the limit, under the usage row's lock. */
static const char m2_sql[] =
    "CREATE SCHEMA IF NOT EXISTS gov;\n"
    "DO $$ BEGIN\n"
    "  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'warden_governance') THEN\n"
    "    CREATE ROLE warden_governance NOLOGIN;\n"
    "  END IF;\n"
    "END $$;\n"
    "CREATE TABLE gov.teams (\n"
    "  name text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 128),\n"
    "  org text CHECK (length(org) BETWEEN 1 AND 128),\n"
    "  created_at timestamptz NOT NULL DEFAULT now()\n"
    ");\n"
    "CREATE TABLE gov.keys (\n"
    "  id text PRIMARY KEY,\n"
    "  name text NOT NULL CHECK (length(name) BETWEEN 1 AND 128),\n"
    "  owner text,\n"
    "  team text REFERENCES gov.teams (name) ON DELETE SET NULL,\n"
    "  models text[] NOT NULL DEFAULT '{}',\n"
    "  roles text[] NOT NULL DEFAULT '{}',\n"
    "  prefix text NOT NULL,\n"
    "  salt bytea NOT NULL CHECK (length(salt) = 16),\n"
    "  hash bytea NOT NULL CHECK (length(hash) = 32),\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  expires_at timestamptz,\n"
    "  revoked_at timestamptz\n"
    ");\n"
    "CREATE UNIQUE INDEX keys_live_name ON gov.keys (name) WHERE revoked_at IS NULL;\n"
    "CREATE TABLE gov.budgets (\n"
    "  id bigserial PRIMARY KEY,\n"
    "  scope text NOT NULL CHECK (scope IN ('key', 'team', 'org')),\n"
    "  subject text NOT NULL,\n"
    "  metric text NOT NULL CHECK (metric IN ('usd', 'requests', 'tokens')),\n"
    "  period text NOT NULL CHECK (period IN ('minute', 'daily', 'weekly', 'monthly', 'total')),\n"
    "  lim bigint NOT NULL CHECK (lim > 0),\n"
    "  reset_at timestamptz,\n"
    "  created_at timestamptz NOT NULL DEFAULT now(),\n"
    "  UNIQUE (scope, subject, metric, period)\n"
    ");\n"
    "CREATE TABLE gov.usage (\n"
    "  budget_id bigint NOT NULL REFERENCES gov.budgets (id) ON DELETE CASCADE,\n"
    "  period_start timestamptz NOT NULL,\n"
    "  granted bigint NOT NULL DEFAULT 0,\n"
    "  spent bigint NOT NULL DEFAULT 0,\n"
    "  PRIMARY KEY (budget_id, period_start)\n"
    ");\n"
    "CREATE TABLE gov.state (id int PRIMARY KEY CHECK (id = 1), version bigint NOT NULL);\n"
    "INSERT INTO gov.state VALUES (1, 1);\n"
    /* every change to keys, teams or budgets bumps the version and tells the replicas */
    "CREATE FUNCTION gov.changed() RETURNS trigger LANGUAGE plpgsql AS $$\n"
    "BEGIN\n"
    "  UPDATE gov.state SET version = version + 1 WHERE id = 1;\n"
    "  PERFORM pg_notify('warden_gov', '');\n"
    "  RETURN NULL;\n"
    "END $$;\n"
    "CREATE TRIGGER keys_changed AFTER INSERT OR UPDATE OR DELETE ON gov.keys\n"
    "  FOR EACH STATEMENT EXECUTE FUNCTION gov.changed();\n"
    "CREATE TRIGGER teams_changed AFTER INSERT OR UPDATE OR DELETE ON gov.teams\n"
    "  FOR EACH STATEMENT EXECUTE FUNCTION gov.changed();\n"
    "CREATE TRIGGER budgets_changed AFTER INSERT OR UPDATE OR DELETE ON gov.budgets\n"
    "  FOR EACH STATEMENT EXECUTE FUNCTION gov.changed();\n"
    /* A slice of the limit for one replica: at most what is left, never past the limit. */
    "CREATE FUNCTION gov.take_lease(b bigint, ps timestamptz, want bigint) RETURNS bigint LANGUAGE plpgsql AS $$\n"
    "DECLARE l bigint; g bigint; got bigint;\n"
    "BEGIN\n"
    "  SELECT lim INTO l FROM gov.budgets WHERE id = b FOR SHARE; -- a concurrent PATCH of the limit waits\n"
    "  IF l IS NULL THEN RETURN 0; END IF;\n"
    "  INSERT INTO gov.usage (budget_id, period_start) VALUES (b, ps) ON CONFLICT DO NOTHING;\n"
    "  SELECT granted INTO g FROM gov.usage WHERE budget_id = b AND period_start = ps FOR UPDATE;\n"
    "  got := least(want, greatest(l - g, 0));\n"
    "  IF got > 0 THEN\n"
    "    UPDATE gov.usage SET granted = granted + got WHERE budget_id = b AND period_start = ps;\n"
    "  END IF;\n"
    "  RETURN got;\n"
    "END $$;\n"
    /* Spend charged by a replica, and lease it gives back. */
    "CREATE FUNCTION gov.settle(b bigint, ps timestamptz, spent_delta bigint, give_back bigint) RETURNS bigint\n"
    "  LANGUAGE plpgsql AS $$\n"
    "DECLARE s bigint;\n"
    "BEGIN\n"
    "  INSERT INTO gov.usage (budget_id, period_start) SELECT b, ps WHERE EXISTS (SELECT 1 FROM gov.budgets WHERE id = b)\n"
    "    ON CONFLICT DO NOTHING;\n"
    "  UPDATE gov.usage SET spent = spent + spent_delta, granted = greatest(granted - give_back, 0)\n"
    "    WHERE budget_id = b AND period_start = ps RETURNING spent INTO s;\n"
    "  RETURN coalesce(s, 0);\n"
    "END $$;\n"
    /* the admin API's objects (docs/governance.md, docs/admin-openapi.json) */
    "CREATE FUNCTION gov.ts(t timestamptz) RETURNS text LANGUAGE sql IMMUTABLE AS\n"
    "  $$ SELECT to_char(t AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') $$;\n"
    "CREATE VIEW gov.keys_json AS\n"
    "  SELECT k.id, k.team, k.created_at, k.revoked_at, json_build_object('id', k.id, 'name', k.name,\n"
    "    'owner', k.owner, 'team', k.team, 'org', t.org, 'models', to_json(k.models), 'roles', to_json(k.roles),\n"
    "    'prefix', k.prefix, 'created_at', gov.ts(k.created_at), 'expires_at', gov.ts(k.expires_at),\n"
    "    'revoked_at', gov.ts(k.revoked_at)) AS j\n"
    "  FROM gov.keys k LEFT JOIN gov.teams t ON t.name = k.team;\n"
    "CREATE VIEW gov.teams_json AS\n"
    "  SELECT name, created_at, json_build_object('name', name, 'org', org, 'created_at', gov.ts(created_at)) AS j\n"
    "  FROM gov.teams;\n"
    /* Claude Code's gateway sign-in: device grants every replica sees (600 s each; the device code kept as its
     * SHA-256, the IdP's refresh token sealed under a key only the replicas derive) */
    "CREATE TABLE gov.device_grants (\n"
    "  device_hash bytea PRIMARY KEY CHECK (length(device_hash) = 32),\n"
    "  user_code text NOT NULL UNIQUE,\n"
    "  status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'verifying', 'approved', 'denied')),\n"
    "  state text UNIQUE,\n"
    "  nonce text,\n"
    "  verifier text,\n"
    "  claims text,\n"
    "  sealed text,\n"
    "  last_poll timestamptz,\n"
    "  expires_at timestamptz NOT NULL\n"
    ");\n"
    "REVOKE ALL ON ALL TABLES IN SCHEMA gov FROM PUBLIC;\n"
    "GRANT USAGE ON SCHEMA gov TO warden_governance;\n"
    "GRANT SELECT ON gov.keys_json, gov.teams_json TO warden_governance;\n"
    "GRANT SELECT, INSERT, UPDATE, DELETE ON gov.teams, gov.keys, gov.budgets, gov.usage, gov.device_grants\n"
    "  TO warden_governance;\n"
    "GRANT SELECT, UPDATE ON gov.state TO warden_governance;\n"
    "GRANT USAGE ON SEQUENCE gov.budgets_id_seq TO warden_governance;\n"
    "GRANT EXECUTE ON FUNCTION gov.take_lease(bigint, timestamptz, bigint),\n"
    "  gov.settle(bigint, timestamptz, bigint, bigint) TO warden_governance;\n";

const struct wd_audit_migration wd_audit_migrations[] = {
    {1, "records, checkpoints, append-only triggers, roles, auditor views", m1_sql},
    {2, "governance: teams, virtual keys, budgets, usage, leases", m2_sql},
};
const size_t wd_audit_nmigrations = sizeof(wd_audit_migrations) / sizeof(wd_audit_migrations[0]);

int wd_audit_db_url(const char *ref, char *out, size_t cap, char *why, size_t why_cap)
{
    if (ref == NULL || ref[0] == '\0') {
        snprintf(why, why_cap, "no database configured");
        return -1;
    }
    if (strncmp(ref, "postgresql://", 13) == 0 || strncmp(ref, "postgres://", 11) == 0) {
        if (strlen(ref) >= cap) {
            snprintf(why, why_cap, "database URL too long");
            return -1;
        }
        strcpy(out, ref);
        return 0;
    }
    if (wd_secret_scheme_supported(ref)) {
        int n = wd_secret_resolve(ref, out, cap);
        if (n <= 0) {
            snprintf(why, why_cap, "cannot resolve the database reference %.200s", ref);
            return -1;
        }
        while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' '))
            out[--n] = '\0';
        return 0;
    }
    snprintf(why, why_cap, "database: expected a postgresql:// URL or a secret reference (env://, file://)");
    return -1;
}

static void quiet_notice(void *arg, const char *msg)
{
    (void)arg;
    (void)msg;
}

PGconn *wd_audit_db_connect(const char *ref, char *why, size_t why_cap)
{
    char *url = malloc(WD_SECRET_MAX);
    if (url == NULL) {
        snprintf(why, why_cap, "out of memory");
        return NULL;
    }
    PGconn *db = NULL;
    if (wd_audit_db_url(ref, url, WD_SECRET_MAX, why, why_cap) == 0) {
        /* the URL expands in place of dbname; a bounded connect so a black-holed host cannot stall */
        const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
        const char *vals[] = {url, "5", "warden", NULL};
        db = PQconnectdbParams(keys, vals, 1);
        PQsetNoticeProcessor(db, quiet_notice, NULL); /* "already exists, skipping" is not news */
        if (PQstatus(db) != CONNECTION_OK) {
            /* libpq's message names host and port, never the password */
            snprintf(why, why_cap, "cannot connect to the audit database: %s", PQerrorMessage(db));
            size_t l = strlen(why);
            while (l > 0 && why[l - 1] == '\n')
                why[--l] = '\0';
            PQfinish(db);
            db = NULL;
        }
    }
    OPENSSL_cleanse(url, WD_SECRET_MAX);
    free(url);
    return db;
}

static int exec_ok(PGconn *db, const char *sql, char *why, size_t why_cap)
{
    PGresult *r = PQexec(db, sql);
    ExecStatusType st = PQresultStatus(r);
    int ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
    if (!ok) {
        snprintf(why, why_cap, "%s", PQresultErrorMessage(r));
        size_t l = strlen(why);
        while (l > 0 && why[l - 1] == '\n')
            why[--l] = '\0';
    }
    PQclear(r);
    return ok ? 0 : -1;
}

int wd_audit_schema_version(PGconn *db, char *why, size_t why_cap)
{
    PGresult *r = PQexec(db, "SELECT CASE WHEN to_regclass('audit.schema_migrations') IS NULL THEN -1 END");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(why, why_cap, "%s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    bool none = !PQgetisnull(r, 0, 0);
    PQclear(r);
    if (none)
        return 0;
    r = PQexec(db, "SELECT coalesce(max(version), 0) FROM audit.schema_migrations");
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        snprintf(why, why_cap, "reading audit.schema_migrations: %s", PQresultErrorMessage(r));
        PQclear(r);
        return -1;
    }
    int v = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

int wd_audit_migrate(PGconn *db, char *why, size_t why_cap)
{
    int have = wd_audit_schema_version(db, why, why_cap);
    if (have < 0)
        return -1;
    int latest = wd_audit_migrations[wd_audit_nmigrations - 1].version;
    if (have >= latest)
        return 0; /* nothing to do: a writer with INSERT and SELECT only starts fine */
    if (exec_ok(db, "SELECT pg_advisory_lock(7304011)", why, why_cap) != 0)
        return -1;
    int applied = 0;
    /* re-read under the lock: another replica may have migrated meanwhile */
    have = exec_ok(db, "CREATE SCHEMA IF NOT EXISTS audit;"
                       "CREATE TABLE IF NOT EXISTS audit.schema_migrations (version int PRIMARY KEY, name text NOT NULL,"
                       " applied_at timestamptz NOT NULL DEFAULT now())",
                   why, why_cap) == 0
               ? wd_audit_schema_version(db, why, why_cap)
               : -1;
    for (size_t i = 0; have >= 0 && i < wd_audit_nmigrations; i++) {
        const struct wd_audit_migration *m = &wd_audit_migrations[i];
        if (m->version <= have)
            continue;
        char ins[160];
        snprintf(ins, sizeof(ins), "INSERT INTO audit.schema_migrations (version, name) VALUES (%d, $1)", m->version);
        if (exec_ok(db, "BEGIN", why, why_cap) != 0)
            break;
        if (exec_ok(db, m->sql, why, why_cap) != 0) {
            char tmp[400];
            snprintf(tmp, sizeof(tmp), "migration %d: %s", m->version, why);
            snprintf(why, why_cap, "%s", tmp);
            PQclear(PQexec(db, "ROLLBACK"));
            have = -1;
            break;
        }
        const char *params[1] = {m->name};
        PGresult *r = PQexecParams(db, ins, 1, NULL, params, NULL, NULL, 0);
        bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
        PQclear(r);
        if (!ok || exec_ok(db, "COMMIT", why, why_cap) != 0) {
            PQclear(PQexec(db, "ROLLBACK"));
            snprintf(why, why_cap, "migration %d could not be recorded", m->version);
            have = -1;
            break;
        }
        applied++;
    }
    char ignore[8];
    exec_ok(db, "SELECT pg_advisory_unlock(7304011)", ignore, sizeof(ignore));
    return have < 0 ? -1 : applied;
}

const char *wd_audit_insert_sql(void)
{
    static char sql[8192]; /* room for all three lists at their caps: -O1 checks the snprintf bound */
    if (sql[0] != '\0')
        return sql;
    static const char *const sqltype[] = {[WD_AT_UUID] = "uuid", [WD_AT_INT] = "bigint", [WD_AT_TS] = "timestamptz",
                                          [WD_AT_STR] = "text"};
    char cols[1024] = "", sel[1024] = "", defs[2048] = "";
    for (int i = 0; i < WD_AF__COUNT; i++) {
        const char *nm = wd_audit_fields[i].name;
        size_t l = strlen(cols);
        snprintf(cols + l, sizeof(cols) - l, "%s, ", nm);
        l = strlen(sel);
        snprintf(sel + l, sizeof(sel) - l, "r.%s, ", nm);
        l = strlen(defs);
        snprintf(defs + l, sizeof(defs) - l, "%s %s, ", nm, sqltype[wd_audit_fields[i].type]);
    }
    snprintf(sql, sizeof(sql),
             "INSERT INTO audit.records (%shash, request_body, response_body) "
             "SELECT %sdecode(r.hash, 'hex'), decode(r.request_body, 'base64'), decode(r.response_body, 'base64') "
             "FROM json_to_recordset($1::json) AS r(%shash text, request_body text, response_body text) "
             "ON CONFLICT DO NOTHING",
             cols, sel, defs);
    return sql;
}

const char *wd_audit_copy_sql(void)
{
    static char sql[1024];
    if (sql[0] != '\0')
        return sql;
    char cols[768] = "";
    for (int i = 0; i < WD_AF__COUNT; i++) {
        size_t l = strlen(cols);
        snprintf(cols + l, sizeof(cols) - l, "%s, ", wd_audit_fields[i].name);
    }
    snprintf(sql, sizeof(sql), "COPY audit.records (%shash, request_body, response_body) FROM STDIN", cols);
    return sql;
}

const char wd_audit_ckpt_insert_sql[] =
    "INSERT INTO audit.checkpoints (chain_id, seq, head, ts, key_id, sig) "
    "SELECT r.chain_id, r.seq, decode(r.head, 'hex'), r.ts, r.key_id, decode(r.sig, 'base64') "
    "FROM json_to_recordset($1::json) AS r(chain_id uuid, seq bigint, head text, ts timestamptz, key_id text, sig text) "
    "ON CONFLICT DO NOTHING";
