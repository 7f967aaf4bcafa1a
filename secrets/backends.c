/* The backend table: env:// and file:// here, the vault and cloud schemes in secrets/hashicorp.c, aws.c,
 * gcp.c, azure.c. Run on the cache's resolver thread only (env:// also inline on a cold path). */
#include "secrets/backend.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_TTL_MS 60000

static int env_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms, char *why, size_t whycap)
{
    const char *v = getenv(ref + 6);
    size_t n = v ? strlen(v) : 0;
    *ttl_ms = WD_SECRET_TTL_NEVER;
    if (n == 0) {
        snprintf(why, whycap, "the variable is not set or empty");
        return -1;
    }
    if (n + 1 > cap) {
        snprintf(why, whycap, "the value is longer than %zu bytes", cap - 1);
        return -1;
    }
    memcpy(out, v, n + 1);
    return (int)n;
}

static int file_resolve(const struct wd_secrets_config *cfg, const char *ref, char *out, size_t cap, int64_t *ttl_ms, char *why, size_t whycap)
{
    *ttl_ms = FILE_TTL_MS;
    int fd = open(ref + 7, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(why, whycap, "cannot open the file: %s", strerror(errno));
        return -1;
    }
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            close(fd);
            snprintf(why, whycap, "the file is longer than %zu bytes", cap - 2);
            return -1;
        }
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whycap, "cannot read the file: %s", strerror(errno));
            close(fd);
            return -1;
        }
        if (r == 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--; /* editors add a newline that is not part of the key */
    out[n] = '\0';
    if (n == 0) {
        snprintf(why, whycap, "the file is empty");
        return -1;
    }
    return (int)n;
}

#define SCHEME(s) s, sizeof(s) - 1
static const struct wd_secret_backend backends[] = {
    {SCHEME("env://"), env_resolve, WD_SECRET_TTL_NEVER, true, NULL},
    {SCHEME("file://"), file_resolve, FILE_TTL_MS, false, NULL},
    {SCHEME("vault://"), wd_vault_resolve, 300000, false, wd_vault_shutdown},
    {SCHEME("aws-sm://"), wd_aws_sm_resolve, 300000, false, wd_aws_sm_shutdown},
    {SCHEME("gcp-sm://"), wd_gcp_sm_resolve, 300000, false, wd_gcp_sm_shutdown},
    {SCHEME("azure-kv://"), wd_azure_kv_resolve, 300000, false, wd_azure_kv_shutdown},
};

_Static_assert(sizeof(backends) / sizeof(backends[0]) == WD_SECRET_LANES, "one resolver lane per backend");

size_t wd_secret_backend_lane(const struct wd_secret_backend *be) { return (size_t)(be - backends); }

void wd_secret_backends_shutdown(void)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (backends[i].shutdown != NULL)
            backends[i].shutdown();
}

const struct wd_secret_backend *wd_secret_backend_find(const char *ref)
{
    for (size_t i = 0; i < sizeof(backends) / sizeof(backends[0]); i++)
        if (strncmp(ref, backends[i].scheme, backends[i].scheme_len) == 0)
            return &backends[i];
    return NULL;
}
