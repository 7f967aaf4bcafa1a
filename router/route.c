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

static bool contains_ci(struct wd_str s, const char *w)
{
    size_t n = strlen(w);
    for (size_t i = 0; i + n <= s.n; i++)
        if (strncasecmp(s.p + i, w, n) == 0)
            return true;
    return false;
}

int wd_route_resolve(const struct wd_config *cfg, struct wd_str m, struct wd_route *out, struct wd_error *err)
{
    if (memchr(m.p, '/', m.n) != NULL && split_target(cfg, m, out) == 0)
        return 0;
    for (size_t i = 0; i < cfg->naliases; i++)
        if (wd_str_eq(m, cfg->aliases[i].name))
            return split_target(cfg, (struct wd_str){cfg->aliases[i].target, strlen(cfg->aliases[i].target)}, out);
    static const char *const tiers[] = {"opus", "sonnet", "haiku"};
    const char *targets[] = {cfg->tier_opus, cfg->tier_sonnet, cfg->tier_haiku};
    for (int i = 0; i < 3; i++)
        if (targets[i] != NULL && contains_ci(m, tiers[i]))
            return split_target(cfg, (struct wd_str){targets[i], strlen(targets[i])}, out);
    if (wd_str_has_prefix(m, "claude"))
        for (size_t i = 0; i < cfg->nproviders; i++)
            if (cfg->providers[i].type == WD_PROVIDER_ANTHROPIC) {
                out->provider = &cfg->providers[i];
                out->model = m;
                return 0;
            }
    wd_error_set(err, WD_ERR_NOT_FOUND, "model: %.*s", (int)(m.n > 128 ? 128 : m.n), m.p);
    return -1;
}
