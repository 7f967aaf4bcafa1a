#!/usr/bin/env bash
# Drives a glewlwyd written by setup.sh: tokens without a browser, and signing-key rotation through its admin API.
#   gl.sh token ISSUER [rs|es|password|id]   -> one access token (rs: client_credentials, RS256; es: the ES256
#                                               client; password: carol's resource-owner grant; id: carol's ID token)
#   gl.sh rotate ISSUER DIR                  -> a new RSA key signs from now on, the older ones stay published
#   gl.sh retire ISSUER DIR                  -> only the newest RSA key (and the EC key) stays published
# Exit 1 with glewlwyd's answer on stderr when it refuses.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd="${1:?usage: gl.sh token|rotate|retire ISSUER ...}"
iss="${2:?issuer}"
aud="${WD_GL_AUDIENCE:-https://warden.example/}"
secret=warden-gl-secret
# curl with bounded waits; glewlwyd answers on loopback at once or not at all
c() { curl -sS --max-time 10 "$@"; }
field() { python3 -c 'import json,sys
d=json.load(sys.stdin)
if sys.argv[1] not in d: sys.stderr.write("gl.sh: %s\n" % json.dumps(d)); sys.exit(1)
print(d[sys.argv[1]])' "$1"; }

case "$cmd" in
token)
  case "${3:-rs}" in
  rs) c -u "warden-gl:$secret" -d grant_type=client_credentials -d scope=warden --data-urlencode "resource=$aud" \
      "$iss/token" | field access_token ;;
  es) c -u "warden-gl-es:$secret" -d grant_type=client_credentials -d scope=warden --data-urlencode "resource=$aud" \
      "$iss/token" | field access_token ;;
  # glewlwyd ignores resource on the password grant: aud is then the granted scope list ("warden")
  password) c -u "warden-gl:$secret" -d grant_type=password -d username=carol -d password=password -d scope=warden \
      "$iss/token" | field access_token ;;
  id) c -u "warden-gl:$secret" -d grant_type=password -d username=carol -d password=password \
      -d 'scope=openid warden' "$iss/token" | field id_token ;;
  *) echo "gl.sh: unknown token kind $3" >&2; exit 2 ;;
  esac ;;
rotate|retire)
  dir="${3:?DIR}"
  base="${iss%/api/*}/api"
  jar="$dir/admin.jar"
  # the admin's session: Debian's schema creates admin with password "password"
  code=$(c -o /dev/null -w '%{http_code}' -c "$jar" -H 'content-type: application/json' \
    --data '{"username":"admin","password":"password"}' "$base/auth/")
  [ "$code" = 200 ] || { echo "gl.sh: admin login: $code" >&2; exit 1; }
  node "$here/keys.mjs" "$cmd" "$dir/jwks-private.json" >"$dir/jwks-private.next"
  mv "$dir/jwks-private.next" "$dir/jwks-private.json"
  c -b "$jar" "$base/mod/plugin/oidc" | python3 -c 'import json,sys
m=json.load(sys.stdin)
m["parameters"]["jwks-private"]=open(sys.argv[1]).read().strip()
print(json.dumps({k: m[k] for k in ("module","name","display_name","parameters") if k in m}))' "$dir/jwks-private.json" \
    >"$dir/plugin.json"
  code=$(c -o "$dir/plugin.out" -w '%{http_code}' -b "$jar" -X PUT -H 'content-type: application/json' \
    --data-binary @"$dir/plugin.json" "$base/mod/plugin/oidc")
  [ "$code" = 200 ] || { echo "gl.sh: updating the plugin: $code $(cat "$dir/plugin.out")" >&2; exit 1; }
  # the plugin reads its keys when it is (re)enabled: "reset" reloads the instance
  code=$(c -o "$dir/plugin.out" -w '%{http_code}' -b "$jar" -X PUT "$base/mod/plugin/oidc/reset")
  [ "$code" = 200 ] || { echo "gl.sh: resetting the plugin: $code $(cat "$dir/plugin.out")" >&2; exit 1; }
  node -e 'console.log(JSON.stringify({kids: require(process.argv[1]).keys.map(k => k.kid)}))' "$dir/jwks-private.json" ;;
*) echo "usage: gl.sh token|rotate|retire ISSUER ..." >&2; exit 2 ;;
esac
