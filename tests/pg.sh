# A throwaway PostgreSQL 15 for tests: initdb into a temp dir, listen on 127.0.0.1 only, stopped by PID.
# Source after tests/lib.sh. wd_pg_start -> PG_PORT, PG_DATA, PG_PID, PG_SUPER_URL (superuser "postgres");
# the cluster is stopped by wd_cleanup through WD_PIDS, or explicitly with wd_pg_stop / wd_pg_restart.
PG_BIN="${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}"

# Runs a PostgreSQL server binary as the unprivileged "postgres" user when we are root (initdb refuses root).
wd_pg_as() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# On exit: stop the server by PID (waiting until it is gone), then remove its directory.
wd_pg_cleanup() {
  [ -n "${PG_DIR:-}" ] || return 0
  [ -n "${PG_PID:-}" ] && wd_pg_stop
  rm -rf "$PG_DIR"
}

wd_pg_start() {
  PG_DIR="$(mktemp -d /tmp/warden-pg.XXXXXX)"
  WD_CLEANUP_HOOKS+=(wd_pg_cleanup)
  [ "$(id -u)" -eq 0 ] && chown postgres "$PG_DIR"
  PG_DATA="$PG_DIR/data"
  wd_pg_as "$PG_BIN/initdb" -D "$PG_DATA" -E UTF8 --locale=C -A trust -U postgres >"$PG_DIR/initdb.log" 2>&1 \
    || { cat "$PG_DIR/initdb.log" >&2; return 1; }
  PG_PORT=$(wd_free_port)
  wd_pg_launch
  PG_SUPER_URL="postgresql://postgres@127.0.0.1:$PG_PORT/postgres"
}

# Starts (or restarts) the server on the same data directory and port.
wd_pg_launch() {
  wd_pg_as "$PG_BIN/pg_ctl" -D "$PG_DATA" -l "$PG_DIR/server.log" -w -t 30 \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_DIR -c max_connections=100" \
    start >/dev/null || { tail -20 "$PG_DIR/server.log" >&2; return 1; }
  PG_PID=$(head -1 "$PG_DATA/postmaster.pid")
  WD_PIDS+=("$PG_PID")
}

# Fast shutdown by PID (SIGINT is PostgreSQL's "fast" mode), waiting until the port is closed.
wd_pg_stop() {
  kill -INT "$PG_PID" 2>/dev/null || true
  local i
  for i in $(seq 1 200); do
    kill -0 "$PG_PID" 2>/dev/null || return 0
    sleep 0.05
  done
  kill -KILL "$PG_PID" 2>/dev/null || true
}

wd_pg_restart() { wd_pg_stop; wd_pg_launch; }

# psql against the throwaway cluster: wd_psql USER [psql args...] (database "warden")
wd_psql() {
  local user="$1"; shift
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U "$user" -d "${WD_PGDB:-warden}" "$@"
}

# Creates database "warden", runs no migration, and makes the login roles the docs describe:
# "warden" (the writer, member of warden_audit_writer after migration) and "auditor".
wd_pg_setup_db() {
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PG_PORT" -U postgres -d postgres \
    -c "CREATE DATABASE warden" -c "CREATE ROLE warden LOGIN" -c "CREATE ROLE auditor LOGIN" >/dev/null
  WD_DB_ADMIN_URL="postgresql://postgres@127.0.0.1:$PG_PORT/warden"
  WD_DB_URL="postgresql://warden@127.0.0.1:$PG_PORT/warden"
  WD_DB_AUDITOR_URL="postgresql://auditor@127.0.0.1:$PG_PORT/warden"
}

# After `warden db migrate`: grant the group roles to the login roles.
wd_pg_grant_roles() {
  wd_psql postgres -c "GRANT warden_audit_writer TO warden" -c "GRANT warden_auditor TO auditor" >/dev/null
}
