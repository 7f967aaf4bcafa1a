/* env:// and file:// secret backends with a small per-thread cache: file reads happen at most once per
 * TTL per worker, and no lock is taken on the request path. */
#include "secrets/secrets.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#define CACHE_SLOTS 16
#define CACHE_TTL_S 60

struct slot {
    char ref[256];
    char val[WD_SECRET_MAX];
    int len;
    time_t expires;
};
static _Thread_local struct slot *cache;

static time_t now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec;
}

int wd_secret_scheme_supported(const char *ref)
{
    return strncmp(ref, "env://", 6) == 0 || strncmp(ref, "file://", 7) == 0;
}

static int read_file(const char *path, char *out, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    size_t n = 0;
    for (;;) {
        if (n + 1 >= cap) {
            close(fd);
            return -1;
        }
        ssize_t r = read(fd, out + n, cap - 1 - n);
        if (r < 0) {
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
    return (int)n;
}

int wd_secret_resolve(const char *ref, char *out, size_t cap)
{
    if (strncmp(ref, "env://", 6) == 0) {
        const char *v = getenv(ref + 6);
        size_t n = v ? strlen(v) : 0;
        if (n == 0 || n + 1 > cap)
            return -1;
        memcpy(out, v, n + 1);
        return (int)n;
    }
    if (strncmp(ref, "file://", 7) != 0 || strlen(ref) >= sizeof(cache->ref))
        return -1;
    if (cache == NULL) {
        cache = calloc(CACHE_SLOTS, sizeof(*cache));
        if (cache == NULL)
            return -1;
    }
    time_t now = now_s();
    struct slot *free_slot = &cache[0];
    for (int i = 0; i < CACHE_SLOTS; i++) {
        struct slot *s = &cache[i];
        if (s->ref[0] && strcmp(s->ref, ref) == 0 && s->expires > now) {
            if ((size_t)s->len + 1 > cap)
                return -1;
            memcpy(out, s->val, (size_t)s->len + 1);
            return s->len;
        }
        if (s->expires < free_slot->expires)
            free_slot = s;
    }
    int n = read_file(ref + 7, free_slot->val, sizeof(free_slot->val));
    if (n <= 0 || (size_t)n + 1 > cap) {
        OPENSSL_cleanse(free_slot, sizeof(*free_slot));
        return -1;
    }
    strcpy(free_slot->ref, ref);
    free_slot->len = n;
    free_slot->expires = now + CACHE_TTL_S;
    memcpy(out, free_slot->val, (size_t)n + 1);
    return n;
}

void wd_secret_cache_clear(void)
{
    if (cache != NULL) {
        OPENSSL_cleanse(cache, CACHE_SLOTS * sizeof(*cache));
        free(cache);
        cache = NULL;
    }
}
