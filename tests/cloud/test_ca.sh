# Sourced by the cloud fakes' tests: wd_test_ca DIR makes DIR/ca.pem (a test CA) and DIR/cert.pem + DIR/key.pem
# (a leaf for 127.0.0.1 signed by it), so clients trust the fake through the CA alone (NODE_EXTRA_CA_CERTS, curl
# --cacert), as they trust a real service's chain.
wd_test_ca() {
  local d="$1"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 -subj "/CN=Warden test CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign" \
    -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=127.0.0.1" \
    -keyout "$d/key.pem" -out "$d/leaf.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >"$d/leaf.ext"
  openssl x509 -req -in "$d/leaf.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial -days 2 \
    -extfile "$d/leaf.ext" -out "$d/cert.pem" 2>/dev/null
}

# wd_check_lines FILE: each "ok - X" / "not ok - X" line of a check script's output counts as one check here.
wd_check_lines() {
  local line
  while IFS= read -r line; do
    case "$line" in
      "ok - "*) ok "${line#ok - }" ;;
      "not ok - "*) fail "${line#not ok - }" ;;
    esac
  done <"$1"
}
