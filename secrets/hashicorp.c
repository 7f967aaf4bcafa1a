/* Placeholder until the backend lands: the scheme is known, the backend answers that it is not built. */
#include "secrets/backend.h"

#include <stdio.h>

int wd_vault_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms,
                    char *why, size_t whycap)
{
    snprintf(why, whycap, "this backend is not built yet");
    return -1;
}

void wd_vault_shutdown(void) {}
