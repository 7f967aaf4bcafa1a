/* Static key authentication. Keys are stored as keyed tags (SipHash-128 under a key drawn at start, never
 * written anywhere) and compared with CRYPTO_memcmp over every entry, so neither the match position nor the
 * key length shows in the timing. A keyed hash of a short key costs a few hundred instructions where SHA-256
 * costs three thousand, on every request. */
#include "authz/auth.h"
#include "lib/hash.h"

#include <stdio.h>
#include <stdlib.h>

#include <openssl/crypto.h>

int wd_auth_add_key(struct wd_auth *a, const char *name, const char *key, size_t key_len)
{
    struct wd_auth_entry *k = realloc(a->keys, (a->nkeys + 1) * sizeof(*k));
    if (k == NULL)
        return -1;
    a->keys = k;
    struct wd_auth_entry *e = &a->keys[a->nkeys++];
    snprintf(e->name, sizeof(e->name), "%s", name);
    e->roles = 0;
    wd_siphash128(wd_process_key(), key, key_len, e->tag);
    return 0;
}

int wd_auth_check(const struct wd_auth *a, struct wd_str presented, struct wd_principal *out)
{
    if (presented.n == 0)
        return -1;
    uint8_t d[16];
    wd_siphash128(wd_process_key(), presented.p, presented.n, d);
    int r = wd_auth_check_tag(a, d, out);
    OPENSSL_cleanse(d, sizeof(d));
    return r;
}

int wd_auth_check_tag(const struct wd_auth *a, const uint8_t d[16], struct wd_principal *out)
{
    size_t match = SIZE_MAX;
    for (size_t i = 0; i < a->nkeys; i++) {
        int eq = CRYPTO_memcmp(d, a->keys[i].tag, sizeof(a->keys[i].tag)) == 0;
        /* branch-free select of the first match */
        size_t mask = (size_t)0 - (size_t)(eq & (match == SIZE_MAX));
        match = (match & ~mask) | (i & mask);
    }
    if (match == SIZE_MAX)
        return -1;
    wd_principal_clear(out);
    wd_cstr_copy(out->subject, sizeof(out->subject), a->keys[match].name);
    out->method = "api_key";
    out->roles = a->keys[match].roles;
    return 0;
}

void wd_auth_free(struct wd_auth *a)
{
    if (a->keys != NULL)
        OPENSSL_cleanse(a->keys, a->nkeys * sizeof(*a->keys));
    free(a->keys);
    a->keys = NULL;
    a->nkeys = 0;
}
