/* The registry: config `type:` -> provider table. The only place that names the families. */
#include <stdio.h>
#include <string.h>

#include "providers/provider.h"

extern const struct wd_provider_ops wd_provider_gemini, wd_provider_anthropic, wd_provider_openai;

static const struct wd_provider_ops *const tables[] = {
    &wd_provider_gemini,
    &wd_provider_anthropic,
    &wd_provider_openai,
};

const struct wd_provider_ops *wd_provider_ops_for(enum wd_provider_type type)
{
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        if (tables[i]->family == type)
            return tables[i];
    return NULL;
}

const struct wd_provider_ops *wd_provider_ops_named(const char *type)
{
    for (size_t i = 0; i < sizeof(tables) / sizeof(tables[0]); i++)
        if (strcmp(tables[i]->type, type) == 0)
            return tables[i];
    return NULL;
}

int wd_provider_url(char *out, size_t cap, const char *base, const char *path)
{
    size_t b = strlen(base), p = strlen(path);
    if (b + p >= cap)
        return -1;
    memcpy(out, base, b);
    memcpy(out + b, path, p + 1);
    return 0;
}

bool wd_provider_model_ok(struct wd_str m)
{
    if (m.n == 0)
        return false;
    for (size_t i = 0; i < m.n; i++) {
        char ch = m.p[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '-' ||
              ch == '.' || ch == '_'))
            return false;
    }
    return true;
}
