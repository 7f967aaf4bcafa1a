#!/usr/bin/env bash
# Warden's SigV4 signer (lib/sigv4.c) against AWS's own JS signer (@smithy/signature-v4, npm): a tiny C driver
# is compiled here from lib/sigv4.c, lib/hash.c and lib/buf.c with sanitizers, and tests/sigv4/check.mjs feeds
# both signers the same few hundred random requests and compares every header they produce. No server runs.
# Usage: bash tests/integration/test_sigv4.sh [build-asan/warden] (the binary is not used)
source "$(dirname "${BASH_SOURCE[0]}")/../lib.sh" "${1:-}"

bash "$WD_ROOT/tests/sigv4/setup.sh"

# The driver reads one request a line (space-separated fields, each hex, "-" empty, "~" absent: method host path
# query region service access_key secret_key session_token now unsigned body nheaders name value ...) and
# answers "OK <hex of wd_sigv4_sign's output> <hex of the canonical request>" or "ERR".
cat >"$WD_TMP/driver.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/hash.h"
#include "lib/sigv4.h"

static char *field(char **cur, size_t *len)
{
    char *tok = strsep(cur, " \n");
    if (!tok)
        exit(3);
    if (strcmp(tok, "~") == 0)
        return NULL;
    size_t n = strcmp(tok, "-") == 0 ? 0 : strlen(tok) / 2;
    char *out = malloc(n + 1);
    for (size_t i = 0; i < n; i++)
        sscanf(tok + 2 * i, "%2hhx", (unsigned char *)&out[i]);
    out[n] = 0;
    if (len)
        *len = n;
    return out;
}

static void put_hex(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)p[i]);
}

int main(void)
{
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, stdin) > 0) {
        char *cur = line;
        struct wd_sigv4_req r = {0};
        char *f[12];
        size_t body_len = 0;
        for (int i = 0; i < 12; i++)
            f[i] = field(&cur, i == 11 ? &body_len : NULL);
        r.method = f[0], r.host = f[1], r.path = f[2], r.query = f[3], r.region = f[4], r.service = f[5];
        r.access_key = f[6], r.secret_key = f[7], r.session_token = f[8], r.now = atoll(f[9]);
        r.unsigned_payload = f[10][0] == '1', r.body = f[11], r.body_len = body_len;
        char *nh = field(&cur, NULL);
        r.nheaders = (size_t)atoi(nh);
        struct wd_sigv4_header *h = calloc(r.nheaders + 1, sizeof *h);
        for (size_t i = 0; i < r.nheaders; i++) {
            h[i].name = field(&cur, NULL);
            h[i].value = field(&cur, NULL);
        }
        r.headers = h;
        char out[8192];
        struct wd_buf creq = {0};
        if (wd_sigv4_sign(&r, out, sizeof out) == 0 && wd_sigv4_canonical_request(&r, &creq) == 0) {
            printf("OK ");
            put_hex(out, strlen(out));
            putchar(' ');
            put_hex(creq.p, creq.n);
            putchar('\n');
        } else {
            printf("ERR\n");
        }
        wd_buf_free(&creq);
        for (size_t i = 0; i < r.nheaders; i++) {
            free((char *)h[i].name);
            free((char *)h[i].value);
        }
        free(h);
        free(nh);
        for (int i = 0; i < 12; i++)
            free(f[i]);
    }
    free(line);
    return 0;
}
EOF

CC="${CC:-cc}"
if "$CC" -std=c17 -D_GNU_SOURCE -Wall -Wextra -Werror -g -fsanitize=address,undefined -fno-omit-frame-pointer \
    -I"$WD_ROOT" -o "$WD_TMP/driver" "$WD_TMP/driver.c" "$WD_ROOT/lib/sigv4.c" "$WD_ROOT/lib/hash.c" \
    "$WD_ROOT/lib/buf.c" -lcrypto 2>"$WD_TMP/cc.err"; then
  ok "the driver compiles against lib/sigv4.c with -Wall -Wextra -Werror"
else
  fail "the driver compiles"; cat "$WD_TMP/cc.err" >&2
  wd_finish; exit 1
fi

# the published get-vanilla vector through the driver, so the comparison below cannot pass on two wrong signers
hx() { printf '%s' "$1" | od -An -tx1 | tr -d ' \n'; }
vanilla="$(hx GET) $(hx example.amazonaws.com) $(hx /) ~ $(hx us-east-1) $(hx service) $(hx AKIDEXAMPLE) $(hx 'wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY') ~ $(hx 1440938160) $(hx 0) - $(hx 0)"
got=$(printf '%s\n' "$vanilla" | "$WD_TMP/driver" | cut -d' ' -f2 | python3 -c 'import sys; print(bytes.fromhex(sys.stdin.read().strip()).decode())')
check "the driver signs get-vanilla with AWS's published signature" \
  grep -q 'Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31' <<<"$got"

# several seeds: each is a different few hundred requests; a failure prints the case, both outputs and
# Warden's canonical request
for seed in 20150830 17 4242; do
  if (cd "$WD_ROOT/tests/sigv4" && node check.mjs "$WD_TMP/driver" 300 "$seed") >"$WD_TMP/check.out" 2>&1; then
    ok "$(tail -1 "$WD_TMP/check.out") (seed $seed)"
  else
    fail "Warden's signatures equal @smithy/signature-v4's (seed $seed)"; head -c 6000 "$WD_TMP/check.out" >&2
  fi
done

wd_finish
