/* Model resolution: what the client asked for -> the plan: the targets to try in order (a fallback chain). */
#ifndef WARDEN_ROUTER_ROUTE_H
#define WARDEN_ROUTER_ROUTE_H

#include "api/canon.h"
#include "config/config.h"

#define WD_ROUTE_MAX_TARGETS 8

struct wd_route {
    const struct wd_provider *provider;
    struct wd_str model;     /* the provider's model name */
};

/* Which rule resolved the name (RBAC grants by it: a tier or an alias covers its whole chain). */
enum wd_route_how { WD_ROUTE_EXPLICIT = 0, WD_ROUTE_ALIAS, WD_ROUTE_TIER, WD_ROUTE_NATIVE };

struct wd_route_plan {
    struct wd_route t[WD_ROUTE_MAX_TARGETS];
    size_t n;                /* at least 1 when resolved */
    enum wd_route_how how;
    int tier;                /* WD_ROUTE_TIER: 0 opus, 1 sonnet, 2 haiku */
    const char *alias;       /* WD_ROUTE_ALIAS: its name (config memory) */
};

extern const char *const wd_route_tier_names[3]; /* "opus", "sonnet", "haiku" */

/* provider/model as is; an alias to its chain; a Claude name containing opus, sonnet or haiku to that tier's
 * chain; a claude-* name to an anthropic provider when one is configured. Else WD_ERR_NOT_FOUND. */
int wd_route_resolve(const struct wd_config *cfg, struct wd_str model, struct wd_route *out, struct wd_error *err);
int wd_route_plan(const struct wd_config *cfg, struct wd_str model, struct wd_route_plan *out, struct wd_error *err);

#endif
