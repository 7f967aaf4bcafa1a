/* libFuzzer driver for the vault:// backend's readers of Vault's answers (secrets/hashicorp.h). The first byte
 * picks the reader: (0) a KV v2 read, (1) a KV v1 read, each with the field named by the bytes up to the first
 * NUL (the answer follows it; no NUL: no field); (2) a login or renew-self answer; (3) lookup-self; (4) an
 * {"errors":[...]} list. Small output buffers put the length limits within reach. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/hashicorp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_nul_terminated(const char *s, size_t cap)
{
    if (memchr(s, '\0', cap) == NULL)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 5;
    const char *p = (const char *)data + 1;
    size_t n = size - 1;
    char why[200], out[64], tok[48];
    int64_t lease;
    struct wd_vault_token_info ti;
    switch (mode) {
    case 0:
    case 1: {
        char field[64] = "";
        const char *nul = memchr(p, '\0', n);
        if (nul != NULL) {
            size_t fl = (size_t)(nul - p);
            if (fl >= sizeof(field))
                return 0;
            memcpy(field, p, fl);
            field[fl] = '\0';
            n -= fl + 1;
            p = nul + 1;
        }
        int r = wd_vault_read_kv(p, n, mode == 0 ? 2 : 1, field, out, sizeof(out), &lease, why, sizeof(why));
        if (r > 0) {
            if ((size_t)r >= sizeof(out) || out[r] != '\0' || strlen(out) != (size_t)r || lease < 0)
                abort();
        } else {
            if (r != -1)
                abort();
            check_nul_terminated(why, sizeof(why));
        }
        break;
    }
    case 2: {
        int r = wd_vault_read_auth(p, n, tok, sizeof(tok), &ti, why, sizeof(why));
        if (r == 0) {
            size_t tl = strlen(tok);
            if (tl == 0 || tl >= sizeof(tok) || ti.lease_s < 0)
                abort();
            for (size_t i = 0; i < tl; i++)
                if ((unsigned char)tok[i] <= ' ' || (unsigned char)tok[i] >= 0x7f)
                    abort(); /* a token becomes a header line */
        } else {
            check_nul_terminated(why, sizeof(why));
        }
        (void)wd_vault_read_auth(p, n, NULL, 0, &ti, why, sizeof(why));
        break;
    }
    case 3:
        if (wd_vault_read_lookup(p, n, &ti, why, sizeof(why)) == 0 && ti.lease_s < 0)
            abort();
        break;
    default: {
        char errs[40];
        size_t w = wd_vault_read_errors(p, n, errs, sizeof(errs));
        if (w >= sizeof(errs) || strlen(errs) != w)
            abort();
        for (size_t i = 0; i < w; i++)
            if ((unsigned char)errs[i] < ' ' || errs[i] == 0x7f)
                abort(); /* errors go into one log line */
        break;
    }
    }
    return 0;
}
