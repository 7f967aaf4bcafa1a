/* RBAC: roles from bindings, model grants by pattern. Patterns: "*" (every model), "tier:<opus|sonnet|haiku>"
 * (a Claude name resolved through that tier: its whole chain), an alias's name (its whole chain),
 * "<provider>/<model>" and "<provider>" + "/" + "*" (the target itself, or any model of the provider). */
#include "authz/rbac.h"

#include <stdio.h>
#include <string.h>

static bool str_is(struct wd_str s, const char *c) { return c != NULL && s.n == strlen(c) && memcmp(s.p, c, s.n) == 0; }

static void add_group(char *matched, size_t cap, struct wd_str g)
{
    size_t n = strnlen(matched, cap);
    if (cap == 0 || n + (n > 0) + g.n + 1 > cap)
        return; /* the record shows what fits */
    if (n > 0)
        matched[n++] = ',';
    memcpy(matched + n, g.p, g.n);
    matched[n + g.n] = '\0';
}

uint64_t wd_rbac_roles(const struct wd_config *cfg, const struct wd_rbac_who *who, char *matched, size_t cap)
{
    uint64_t roles = 0;
    if (matched != NULL && cap > 0)
        matched[0] = '\0';
    for (size_t b = 0; b < cfg->nbindings; b++) {
        const struct wd_rbac_binding *bd = &cfg->bindings[b];
        size_t r = 0;
        while (r < cfg->nroles && r < WD_RBAC_MAX_ROLES && strcmp(cfg->roles[r].name, bd->role) != 0)
            r++;
        if (r == cfg->nroles || r >= WD_RBAC_MAX_ROLES)
            continue;
        bool held = false;
        if (bd->key != NULL)
            held = who->key != NULL && strcmp(who->key, bd->key) == 0;
        else if (bd->subject != NULL)
            held = str_is(who->subject, bd->subject) || str_is(who->email, bd->subject);
        else if (bd->group != NULL)
            for (int g = 0; g < who->ngroups && !held; g++)
                if (str_is(who->groups[g], bd->group)) {
                    held = true;
                    if (matched != NULL)
                        add_group(matched, cap, who->groups[g]);
                }
        if (held)
            roles |= 1ull << r;
    }
    for (int k = 0; k < who->nroles; k++)
        for (size_t r = 0; r < cfg->nroles && r < WD_RBAC_MAX_ROLES; r++)
            if (str_is(who->roles[k], cfg->roles[r].name))
                roles |= 1ull << r;
    return roles;
}

bool wd_rbac_pattern_grants(const char *pat, const struct wd_rbac_target *t)
{
    if (strcmp(pat, "*") == 0)
        return true;
    if (strncmp(pat, "tier:", 5) == 0)
        return t->via == WD_RBAC_VIA_TIER && t->tier != NULL && strcmp(pat + 5, t->tier) == 0;
    const char *slash = strchr(pat, '/');
    if (slash == NULL)
        return t->via == WD_RBAC_VIA_ALIAS && t->alias != NULL && strcmp(pat, t->alias) == 0;
    size_t pn = (size_t)(slash - pat);
    if (t->provider == NULL || strlen(t->provider) != pn || memcmp(t->provider, pat, pn) != 0)
        return false;
    return strcmp(slash + 1, "*") == 0 || str_is(t->model, slash + 1);
}

bool wd_rbac_model_ok(const struct wd_config *cfg, uint64_t roles, const struct wd_rbac_target *t, char *rule,
                      size_t cap)
{
    if (!cfg->rbac) {
        snprintf(rule, cap, "no rbac section: every model");
        return true;
    }
    for (size_t r = 0; r < cfg->nroles && r < WD_RBAC_MAX_ROLES; r++) {
        if (!(roles & (1ull << r)))
            continue;
        for (size_t m = 0; m < cfg->roles[r].nmodels; m++)
            if (wd_rbac_pattern_grants(cfg->roles[r].models[m], t)) {
                snprintf(rule, cap, "rbac: role %s grants %s", cfg->roles[r].name, cfg->roles[r].models[m]);
                return true;
            }
    }
    snprintf(rule, cap, roles ? "rbac: no role held grants this model" : "rbac: no role held (default deny)");
    return false;
}

bool wd_rbac_permitted(const struct wd_config *cfg, uint64_t roles, const char *permission)
{
    for (size_t r = 0; cfg->rbac && r < cfg->nroles && r < WD_RBAC_MAX_ROLES; r++)
        if (roles & (1ull << r))
            for (size_t k = 0; k < cfg->roles[r].npermissions; k++)
                if (strcmp(cfg->roles[r].permissions[k], permission) == 0)
                    return true;
    return false;
}
