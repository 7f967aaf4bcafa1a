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

struct wd_route_plan {
    struct wd_route t[WD_ROUTE_MAX_TARGETS];
    size_t n;                /* at least 1 when resolved */
};

/* provider/model as is; an alias to its chain; a Claude name containing opus, sonnet or haiku to that tier's
 * chain; a claude-* name to an anthropic provider when one is configured. Else WD_ERR_NOT_FOUND. */
int wd_route_resolve(const struct wd_config *cfg, struct wd_str model, struct wd_route *out, struct wd_error *err);
int wd_route_plan(const struct wd_config *cfg, struct wd_str model, struct wd_route_plan *out, struct wd_error *err);

#endif
