/* Who is calling. For now: static API keys from config (x-api-key or Authorization: Bearer). The
 * identity work (OIDC, virtual keys) plugs in behind the same wd_auth_check. */
#ifndef WARDEN_AUTHZ_AUTH_H
#define WARDEN_AUTHZ_AUTH_H

#include <stdint.h>

#include "lib/buf.h"

struct wd_principal {
    char subject[128];       /* the key's name, or the OIDC subject claim */
    const char *method;      /* "api_key", "oidc" */
    char email[128];         /* OIDC: the e-mail claim, else "" */
    char issuer[64];         /* OIDC: the issuer's configured name, else "" */
    uint64_t roles;          /* bit i: rbac.roles[i] is held (against the runtime's config) */
    char groups[256];        /* the held groups that some binding names, comma-separated (for records) */
    char key_id[24];         /* a virtual key's id, else "" */
    char team[129];          /* the virtual key's team, or the OIDC team claim; "" none (budgets, records) */
    char org[129];           /* the team's organisation, or the OIDC org claim; "" none */
};

/* Nobody: every field empty, without writing the whole struct (a call does this on every request). */
static inline void wd_principal_clear(struct wd_principal *p)
{
    p->subject[0] = p->email[0] = p->issuer[0] = p->groups[0] = p->key_id[0] = p->team[0] = p->org[0] = '\0';
    p->method = NULL;
    p->roles = 0;
}

struct wd_auth_entry {
    char name[128];
    uint64_t roles;          /* the rbac roles bound to this key's name */
    uint8_t tag[16];         /* SipHash-128 of the key under the process key: the key itself is not kept */
};

struct wd_auth {
    struct wd_auth_entry *keys;
    size_t nkeys;
};

int wd_auth_add_key(struct wd_auth *a, const char *name, const char *key, size_t key_len);
/* Constant time in the presented key and independent of which entry matches. 0 on success. */
int wd_auth_check(const struct wd_auth *a, struct wd_str presented, struct wd_principal *out);
/* The same with the presented credential's tag (wd_siphash128 under wd_process_key) already computed: one hash
 * serves the static keys and the OIDC token cache. */
int wd_auth_check_tag(const struct wd_auth *a, const uint8_t tag[16], struct wd_principal *out);
void wd_auth_free(struct wd_auth *a);

#endif
