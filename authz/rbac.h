/* Role-based access: which roles a principal holds (rbac.bindings and the IdP's roles claim) and whether they
 * let it use a resolved model. Without an rbac section everything is allowed; with one, only what a role grants. */
#ifndef WARDEN_AUTHZ_RBAC_H
#define WARDEN_AUTHZ_RBAC_H

#include <stdbool.h>
#include <stdint.h>

#include "config/config.h"
#include "lib/buf.h"

#define WD_RBAC_MAX_ROLES 64 /* roles past this many are refused by the config check */

/* What a principal presents for role bindings. Any field may be empty (n 0 / NULL). */
struct wd_rbac_who {
    const char *key;             /* a client key's name */
    struct wd_str subject, email;
    const struct wd_str *groups; /* its groups (an IdP claim) */
    int ngroups;
    const struct wd_str *roles;  /* values of its roles claim */
    int nroles;
};

/* The roles held, as bits over cfg->roles; the groups that some binding matched go to matched (comma-separated,
 * cut to cap). */
uint64_t wd_rbac_roles(const struct wd_config *cfg, const struct wd_rbac_who *who, char *matched, size_t cap);

/* A resolved target as RBAC sees it: how the asked-for name was resolved, and the target itself. */
enum wd_rbac_via { WD_RBAC_VIA_NAME = 0, WD_RBAC_VIA_ALIAS, WD_RBAC_VIA_TIER };
struct wd_rbac_target {
    enum wd_rbac_via via;        /* an alias or a tier grants every target of its chain */
    const char *alias;           /* VIA_ALIAS: its name */
    const char *tier;            /* VIA_TIER: "opus", "sonnet" or "haiku" */
    const char *provider;        /* the target's provider name */
    struct wd_str model;         /* the provider's model name */
};

/* Whether roles let the principal use the target. On true, rule says which grant allowed it ("rbac: role
 * developer grants tier:sonnet", or "no rbac section: every model"); on false, why not. */
bool wd_rbac_model_ok(const struct wd_config *cfg, uint64_t roles, const struct wd_rbac_target *t, char *rule,
                      size_t cap);

/* Whether one pattern ("*", "tier:sonnet", an alias, "provider/model", "provider/" + "*") grants the target (a virtual
 * key's own model list uses the same patterns). */
bool wd_rbac_pattern_grants(const char *pattern, const struct wd_rbac_target *t);

/* Whether roles hold a permission ("keys:manage", ...). Without an rbac section: false (admin rights are only
 * ever granted). */
bool wd_rbac_permitted(const struct wd_config *cfg, uint64_t roles, const char *permission);

#endif
