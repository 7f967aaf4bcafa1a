/* Model resolution: what the client asked for -> which provider and which of its models. */
#ifndef WARDEN_ROUTER_ROUTE_H
#define WARDEN_ROUTER_ROUTE_H

#include "api/canon.h"
#include "config/config.h"

struct wd_route {
    const struct wd_provider *provider;
    struct wd_str model;     /* the provider's model name */
};

/* provider/model as is; an alias to its target; a Claude name containing opus, sonnet or haiku to that
 * tier; a claude-* name to an anthropic provider when one is configured. Else WD_ERR_NOT_FOUND. */
int wd_route_resolve(const struct wd_config *cfg, struct wd_str model, struct wd_route *out, struct wd_error *err);

#endif
