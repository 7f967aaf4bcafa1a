/* Model resolution rules, in order: explicit provider/model, alias, Claude tier, native Claude. */
#include "router/route.h"

#include <string.h>

static int split_target(const struct wd_config *cfg, struct wd_str t, struct wd_route *out)
{
    const char *slash = memchr(t.p, '/', t.n);
    if (slash == NULL || slash == t.p || slash + 1 == t.p + t.n)
        return -1;
    const struct wd_provider *p = wd_config_provider(cfg, t.p, (size_t)(slash - t.p));
    if (p == NULL)
        return -1;
    out->provider = p;
    out->model = (struct wd_str){slash + 1, (size_t)(t.p + t.n - slash - 1)};
    return 0;
}

/* w is lower case ASCII */
static bool contains_ci(struct wd_str s, const char *w)
{
    size_t n = strlen(w);
    for (size_t i = 0; i + n <= s.n; i++) {
        size_t k = 0;
        while (k < n && (s.p[i + k] | 0x20) == w[k])
            k++;
        if (k == n)
            return true;
    }
    return false;
}

static int plan_chain(const struct wd_config *cfg, const struct wd_chain *ch, struct wd_route_plan *out)
{
    out->n = 0;
    for (size_t i = 0; i < ch->n && out->n < WD_ROUTE_MAX_TARGETS; i++)
        if (split_target(cfg, (struct wd_str){ch->targets[i], strlen(ch->targets[i])}, &out->t[out->n]) == 0)
            out->n++;
    return out->n > 0 ? 0 : -1;
}

const char *const wd_route_tier_names[3] = {"opus", "sonnet", "haiku"};

int wd_route_plan(const struct wd_config *cfg, struct wd_str m, struct wd_route_plan *out, struct wd_error *err)
{
    out->n = 0;
    out->how = WD_ROUTE_EXPLICIT;
    out->tier = -1;
    out->alias = NULL;
    if (memchr(m.p, '/', m.n) != NULL && split_target(cfg, m, &out->t[0]) == 0) {
        out->n = 1;
        return 0;
    }
    for (size_t i = 0; i < cfg->naliases; i++)
        if (wd_str_eq(m, cfg->aliases[i].name) && plan_chain(cfg, &cfg->aliases[i].chain, out) == 0) {
            out->how = WD_ROUTE_ALIAS;
            out->alias = cfg->aliases[i].name;
            return 0;
        }
    for (int i = 0; i < 3; i++)
        if (cfg->tier_chains[i].n > 0 && contains_ci(m, wd_route_tier_names[i]) &&
            plan_chain(cfg, &cfg->tier_chains[i], out) == 0) {
            out->how = WD_ROUTE_TIER;
            out->tier = i;
            return 0;
        }
    if (wd_str_has_prefix(m, "claude"))
        for (size_t i = 0; i < cfg->nproviders; i++)
            if (cfg->providers[i].type == WD_PROVIDER_ANTHROPIC) {
                out->t[0].provider = &cfg->providers[i];
                out->t[0].model = m;
                out->n = 1;
                out->how = WD_ROUTE_NATIVE;
                return 0;
            }
    wd_error_set(err, WD_ERR_NOT_FOUND, "model: %.*s", (int)(m.n > 128 ? 128 : m.n), m.p);
    return -1;
}

int wd_route_resolve(const struct wd_config *cfg, struct wd_str m, struct wd_route *out, struct wd_error *err)
{
    struct wd_route_plan p;
    if (wd_route_plan(cfg, m, &p, err) < 0)
        return -1;
    *out = p.t[0];
    return 0;
}
