#!/usr/bin/env bash
# Claude Code's gateway sign-in across replicas: with a governance database, device grants live in PostgreSQL, so
# two Warden processes behind a round-robin balancer (each request to the other replica) carry one sign-in from
# device authorization through the browser step and the callback to the token: tests/gateway/probe.mjs's whole walk
# passes through them, and no grant is left behind.
# Usage: bash tests/integration/test_signin_replicas.sh build-asan/warden
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"
source "$WD_ROOT/tests/gateway/signin.sh"
source "$WD_ROOT/tests/pg.sh"

wd_pg_start
wd_pg_setup_db
"$WARDEN_BIN" db migrate --db "$WD_DB_ADMIN_URL" >/dev/null
wd_psql postgres -c "GRANT warden_governance TO warden" >/dev/null

# the balancer: every request to the next replica in turn (HTTP/1.1, one request per connection upstream)
cat >"$WD_TMP/rr.mjs" <<'JS'
import http from 'node:http';
const targets = process.argv.slice(2).map(Number);
let next = 0;
const seen = {};
const srv = http.createServer((req, res) => {
  if (req.url === '/_rr') { res.end(JSON.stringify(seen)); return; }
  const port = targets[next++ % targets.length];
  seen[port] = (seen[port] || 0) + 1;
  const up = http.request({ host: '127.0.0.1', port, path: req.url, method: req.method,
    headers: { ...req.headers, connection: 'close' } }, (r) => { res.writeHead(r.statusCode, r.headers); r.pipe(res); });
  up.on('error', () => { res.writeHead(502); res.end(); });
  req.pipe(up);
});
srv.listen(0, '127.0.0.1', () => console.log(JSON.stringify({ port: srv.address().port })));
process.on('SIGTERM', () => process.exit(0));
JS
PA=$(wd_free_port)
PB=$(wd_free_port)
wd_start_server RR_PORT node "$WD_TMP/rr.mjs" "$PA" "$PB"
BASE="http://127.0.0.1:$RR_PORT/anthropic"
gw_start_idp "$BASE"
wd_start_server ANT_PORT node "$WD_ROOT/tests/fakes/fake_anthropic.mjs" --port 0 --key sk-ant-signin-upstream
cfg() {
  cat <<YAML
listen: 127.0.0.1:$1
workers: 2
providers:
  anthropic:
    type: anthropic
    base_url: http://127.0.0.1:$ANT_PORT
    keys:
      - secret: env://WD_ANT_KEY
models:
  tiers:
    opus: anthropic/claude-opus-4-5
    sonnet: anthropic/claude-sonnet-4-5
    haiku: anthropic/claude-haiku-4-5
$(gw_signin_yaml "$BASE")
governance:
  database: $WD_DB_URL
  migrate: false
audit:
  database: $WD_DB_ADMIN_URL
  spool: $WD_TMP/spool-$1
  batch_wait: 5ms
$(wd_metrics_yaml)
YAML
}
cfg "$PA" >"$WD_TMP/a.yaml"
cfg "$PB" >"$WD_TMP/b.yaml"
WD_WARDEN_ENV=(WD_ANT_KEY=sk-ant-signin-upstream "${GW_ENV[@]}")
wd_start_warden "$WD_TMP/a.yaml"; A_PID=$WARDEN_PID; A_LOG=$WARDEN_LOG
wd_start_warden "$WD_TMP/b.yaml"; B_PID=$WARDEN_PID; B_LOG=$WARDEN_LOG

gw_probe "$BASE" "probe through two replicas"
check "the probe ran its checks ($(grep -c '' "$WD_TMP/checks.txt"))" [ "$(grep -c '' "$WD_TMP/checks.txt")" -ge 20 ]
SEEN=$(curl -s "http://127.0.0.1:$RR_PORT/_rr")
check "both replicas served the sign-ins ($SEEN)" python3 -c 'import json,sys; d=json.loads(sys.argv[1]); sys.exit(0 if len(d) == 2 and min(d.values()) >= 10 else 1)' "$SEEN"
check "both replicas recorded a sign-in or a refresh" bash -c "grep -q 'signin: ' '$A_LOG' && grep -q 'signin: ' '$B_LOG'"
sleep 0.5
LEFT=$(wd_psql postgres -At -c "SELECT count(*) FROM gov.device_grants WHERE status IN ('approved', 'denied')")
check "no redeemed or denied grant is left in the database ($LEFT)" [ "$LEFT" = 0 ]
AUD=$(wd_psql postgres -At -c "SELECT event || ':' || decision || ':' || coalesce(subject, '') FROM audit.records WHERE kind = 'admin' AND event LIKE 'signin.%' ORDER BY ts")
check "the sign-ins are audit records: alice's and bob's callbacks allowed, the refresh allowed, the replayed refresh denied" \
  bash -c "grep -q '^signin.callback:allow:alice$' <<<'$AUD' && grep -q '^signin.callback:allow:bob$' <<<'$AUD' && grep -q '^signin.refresh:allow:alice$' <<<'$AUD' && grep -q '^signin.refresh:deny:' <<<'$AUD'"
wd_stop_warden "$A_PID" "$A_LOG"
wd_stop_warden "$B_PID" "$B_LOG"
wd_finish
