/* libFuzzer driver for authz/admin_json.c, the admin API's body parsers. The first byte picks the parser and mode:
 * (b % 6) 0 key create, 1 key PATCH, 2 team, 3 budget create, 4 budget PATCH with the stored metric (b / 6) % 4
 * (0 standing for "unknown"), 5 an RFC 3339 time; the rest is the body. On success the outputs must be within the
 * contract's bounds (strings NUL-terminated, of their allowed characters and lengths; limit in 1 .. 10^15); on a
 * refusal the message must be set and nothing may be left allocated. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "authz/admin_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NOW INT64_C(1796083200)

static void check_name(const char *s, size_t max, const char *extra)
{
    size_t n = strnlen(s, max + 1);
    if (n < 1 || n > max)
        abort();
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  (c != '\0' && strchr(extra, c) != NULL);
        if (!ok)
            abort();
    }
}

static void check_text(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    if (n < 1 || n > max)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            abort();
}

static void check_model(const char *s)
{
    size_t n = strnlen(s, 257);
    if (n < 1 || n > 256)
        abort();
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            abort();
}

static void check_err(const char *err)
{
    size_t n = strnlen(err, 256);
    if (n == 0 || n == 256)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 6, sub = (data[0] / 6) % 4;
    const char *body = (const char *)data + 1;
    size_t n = size - 1;
    char err[256];
    memset(err, 0, sizeof err);
    switch (mode) {
    case 0:
    case 1: {
        struct wd_admin_key_req r;
        bool patch = mode == 1;
        if (wd_admin_parse_key(body, n, patch, NOW, &r, err, sizeof err) == 0) {
            if (patch == r.has_name)
                abort();
            if (r.has_name)
                check_name(r.name, 128, "._@-");
            if (r.owner_set == WD_ADMIN_SET)
                check_text(r.owner, 128);
            if (r.team_set == WD_ADMIN_SET)
                check_name(r.team, 128, "._@-");
            if (r.nmodels > WD_ADMIN_MAX_LIST || r.nroles > WD_ADMIN_MAX_LIST)
                abort();
            if ((r.nmodels > 0 && !r.models_set) || (r.nroles > 0 && !r.roles_set))
                abort();
            for (size_t i = 0; i < r.nmodels; i++)
                check_model(r.models[i]);
            for (size_t i = 0; i < r.nroles; i++)
                check_name(r.roles[i], 128, "._:@-");
            if (r.expires_set == WD_ADMIN_SET && r.expires_at <= NOW)
                abort();
            wd_admin_key_req_free(&r);
        } else {
            check_err(err);
            if (r.models != NULL || r.roles != NULL || r.nmodels != 0 || r.nroles != 0)
                abort();
        }
        break;
    }
    case 2: {
        struct wd_admin_team_req r;
        if (wd_admin_parse_team(body, n, &r, err, sizeof err) == 0) {
            check_name(r.name, 128, "._@-");
            if (r.has_org)
                check_name(r.org, 128, "._@-");
        } else {
            check_err(err);
        }
        break;
    }
    case 3:
    case 4: {
        struct wd_admin_budget_req r;
        memset(&r, 0, sizeof r);
        bool patch = mode == 4;
        if (patch)
            r.metric = (enum wd_admin_metric)sub;
        if (wd_admin_parse_budget(body, n, patch, &r, err, sizeof err) == 0) {
            if (!r.has_limit || r.limit < 1 || r.limit > WD_ADMIN_MAX_LIMIT)
                abort();
            if (wd_admin_metric_name(r.metric) == NULL)
                abort();
            if (!patch) {
                if (wd_admin_scope_name(r.scope) == NULL || wd_admin_period_name(r.period) == NULL)
                    abort();
                check_name(r.subject, 128, "._@-");
            }
        } else {
            check_err(err);
            if (r.has_limit)
                abort();
        }
        break;
    }
    default: {
        int64_t t;
        if (wd_admin_parse_time(body, n, &t) == 0) {
            /* 0000-01-01 .. 9999-12-31T23:59:59 */
            if (t < INT64_C(-62167219200) || t > INT64_C(253402300799))
                abort();
        }
        break;
    }
    }
    return 0;
}
