#!/usr/bin/env bash
# Writes a self-contained Debian glewlwyd (2.7) instance into a directory: its config, a sqlite database with an
# OIDC plugin instance signing with RS256 and ES256 JWKs, a user and two confidential clients that get tokens
# without a browser. The second, unrelated IdP of Warden's OIDC tests (issue 16); see README.md here.
# Usage: bash tests/glewlwyd/setup.sh DIR PORT   (then: glewlwyd --config-file DIR/glewlwyd.conf)
set -euo pipefail
dir="${1:?usage: setup.sh DIR PORT}"
port="${2:?usage: setup.sh DIR PORT}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
command -v glewlwyd >/dev/null || { echo "setup.sh: glewlwyd is not installed (scripts/deps.sh)" >&2; exit 1; }
command -v sqlite3 >/dev/null || { echo "setup.sh: sqlite3 is not installed" >&2; exit 1; }
mkdir -p "$dir"
dir="$(cd "$dir" && pwd)"
db="$dir/glewlwyd.db"
iss="http://127.0.0.1:$port/api/oidc"
# glewlwyd takes only http(s) URLs as RFC 8707 resources (api://warden is refused with invalid_target)
audience="${WD_GL_AUDIENCE:-https://warden.example/}"
export WD_GL_AUDIENCE="$audience"

# The schema as Debian ships it: dbconfig-common's copy, else the documentation's (which minimal images may drop).
schema=/usr/share/dbconfig-common/data/glewlwyd/install/sqlite3
if [ -f "$schema" ]; then cat "$schema"; else zcat /usr/share/doc/glewlwyd/database/init.sqlite3.sql.gz; fi |
  sqlite3 "$db"

# Keys: generated per run by node's crypto as private JWKs (glewlwyd wants alg and kid on each).
node "$here/keys.mjs" new >"$dir/jwks-private.json"

# glewlwyd parses its plugin parameters as JSON from the database row; the ones not given take the plugin's
# defaults. resource-allowed lets a client name the audience (RFC 8707) like the other IdP; allow-non-oidc
# enables the OAuth2 grants without a browser (client_credentials, password).
params=$(node "$here/keys.mjs" params --iss "$iss" --jwks "$dir/jwks-private.json")
client_id_rs=warden-gl
client_id_es=warden-gl-es
secret=warden-gl-secret
kid_es=$(node -e 'const j=require(process.argv[1]);console.log(j.keys.find(k=>k.kty==="EC").kid)' "$dir/jwks-private.json")

q() { printf "%s" "$1" | sed "s/'/''/g"; }
sqlite3 "$db" <<SQL
INSERT INTO g_scope (gs_name, gs_display_name, gs_description, gs_password_required, gs_password_max_age)
  VALUES ('warden', 'Warden', 'Calls through the Warden gateway', 0, 0);
INSERT INTO g_plugin_module_instance (gpmi_module, gpmi_name, gpmi_display_name, gpmi_parameters)
  VALUES ('oidc', 'oidc', 'OpenID Connect (Warden tests)', '$(q "$params")');
-- a user with the admin's password hash, so its password is the admin's well-known default ("password")
INSERT INTO g_user (gu_username, gu_name, gu_email, gu_enabled) VALUES ('carol', 'Carol Tester', 'carol@example.com', 1);
INSERT INTO g_user_password (gu_id, guw_password) SELECT (SELECT gu_id FROM g_user WHERE gu_username='carol'), guw_password
  FROM g_user_password WHERE gu_id=(SELECT gu_id FROM g_user WHERE gu_username='admin');
INSERT INTO g_user_scope (gus_name) VALUES ('warden');
INSERT INTO g_user_scope (gus_name) VALUES ('openid');
INSERT INTO g_user_scope_user (gu_id, gus_id) SELECT (SELECT gu_id FROM g_user WHERE gu_username='carol'), gus_id
  FROM g_user_scope WHERE gus_name IN ('warden', 'openid');
INSERT INTO g_client_scope (gcs_name) VALUES ('warden');
INSERT INTO g_client_scope (gcs_name) VALUES ('openid');
SQL
for c in "$client_id_rs" "$client_id_es"; do
  sqlite3 "$db" <<SQL
INSERT INTO g_client (gc_client_id, gc_name, gc_confidential, gc_enabled) VALUES ('$c', '$c', 1, 1);
INSERT INTO g_client_scope_client (gc_id, gcs_id) SELECT (SELECT gc_id FROM g_client WHERE gc_client_id='$c'), gcs_id
  FROM g_client_scope WHERE gcs_name IN ('warden', 'openid');
INSERT INTO g_client_property (gc_id, gcp_name, gcp_value) SELECT gc_id, 'client_secret', '$secret' FROM g_client WHERE gc_client_id='$c';
INSERT INTO g_client_property (gc_id, gcp_name, gcp_value) SELECT gc_id, 'authorization_type', 'client_credentials' FROM g_client WHERE gc_client_id='$c';
INSERT INTO g_client_property (gc_id, gcp_name, gcp_value) SELECT gc_id, 'authorization_type', 'password' FROM g_client WHERE gc_client_id='$c';
INSERT INTO g_client_property (gc_id, gcp_name, gcp_value) SELECT gc_id, 'token_endpoint_auth_method', 'client_secret_basic' FROM g_client WHERE gc_client_id='$c';
INSERT INTO g_client_property (gc_id, gcp_name, gcp_value) SELECT gc_id, 'token_endpoint_auth_method', 'client_secret_post' FROM g_client WHERE gc_client_id='$c';
INSERT INTO g_client_property (gc_id, gcp_name, gcp_value) SELECT gc_id, 'resource', '$audience' FROM g_client WHERE gc_client_id='$c';
SQL
done
sqlite3 "$db" "INSERT INTO g_client_property (gc_id, gcp_name, gcp_value) SELECT gc_id, 'sign_kid', '$kid_es' FROM g_client WHERE gc_client_id='$client_id_es';"

cat >"$dir/glewlwyd.conf" <<CONF
# written by tests/glewlwyd/setup.sh: loopback only, everything under $dir
port=$port
bind_address="127.0.0.1"
external_url="http://127.0.0.1:$port"
login_url="login.html"
api_prefix="api"
allow_origin="*"
log_mode="file"
log_level="INFO"
log_file="$dir/glewlwyd.log"
cookie_secure=0
session_expiration=3600
session_key="GLEWLWYD2_SESSION_ID"
admin_session_authentication="cookie"
profile_session_authentication="cookie"
login_api_enabled=true
max_post_size=1048576
admin_scope="g_admin"
profile_scope="g_profile"
user_module_path="/usr/lib/glewlwyd/user"
client_module_path="/usr/lib/glewlwyd/client"
user_auth_scheme_module_path="/usr/lib/glewlwyd/scheme"
plugin_module_path="/usr/lib/glewlwyd/plugin"
use_secure_connection=false
# glewlwyd 2.7.5 refuses to start ("secure connection is active but certificate is not valid") unless these name
# files, even with use_secure_connection=false; they are never opened then
secure_connection_key_file="$dir/unused.key"
secure_connection_pem_file="$dir/unused.pem"
hash_algorithm="SHA512"
database =
{
  type = "sqlite3"
  path = "$db"
};
CONF
printf '{"issuer":"%s","audience":"%s","port":%s,"dir":"%s","clients":["%s","%s"],"secret":"%s","user":"carol","password":"password"}\n' \
  "$iss" "$audience" "$port" "$dir" "$client_id_rs" "$client_id_es" "$secret"
