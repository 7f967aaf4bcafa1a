/* The OIDC key fetcher: one thread that fetches each configured issuer's discovery document and signing keys
 * (authz/oidc.h hands out the jobs: at start, every refresh period, and on a token with an unknown kid), so that
 * no request ever waits on the IdP's network. */
#include "server/oidc_fetch.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authz/oidc.h"
#include "lib/log.h"
#include "net/fetch.h"

#define MAX_DOC (1u << 20) /* a discovery document or a JWKS larger than 1 MiB is refused */

static pthread_t thread;
static bool running;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The discovery document's jwks_uri, after checking its issuer is the configured one (OIDC Discovery 4.3). */
static int discover(const struct wd_oidc_job *job, char *jwks_uri, size_t cap, char *err, size_t err_cap)
{
    char url[1200];
    snprintf(url, sizeof(url), "%s/.well-known/openid-configuration", job->issuer);
    size_t n = strlen(job->issuer);
    if (n > 0 && job->issuer[n - 1] == '/') /* Entra v1's issuer ends in a slash */
        snprintf(url, sizeof(url), "%s.well-known/openid-configuration", job->issuer);
    struct wd_buf b = {0};
    struct wd_fetch f = {.url = url, .tls_ca = job->tls_ca, .timeout_ms = job->timeout_ms, .max_bytes = MAX_DOC};
    char e[160];
    if (wd_fetch_get(&f, &b, e, sizeof(e)) < 0) {
        snprintf(err, err_cap, "discovery: %s", e);
        wd_buf_free(&b);
        return -1;
    }
    const char *why = NULL;
    int rc = wd_oidc_discovery(b.p ? b.p : "", b.n, job->issuer, jwks_uri, cap, &why);
    if (rc < 0)
        snprintf(err, err_cap, "%s", why);
    wd_buf_free(&b);
    return rc;
}

static void run_job(const struct wd_oidc_job *job)
{
    char jwks_uri[1024], err[200];
    const char *found = NULL;
    snprintf(jwks_uri, sizeof(jwks_uri), "%s", job->jwks_uri);
    if (jwks_uri[0] == '\0') {
        if (discover(job, jwks_uri, sizeof(jwks_uri), err, sizeof(err)) < 0) {
            wd_oidc_job_done(job, mono_ms(), NULL, 0, NULL, err);
            return;
        }
        found = jwks_uri;
    }
    struct wd_buf b = {0};
    struct wd_fetch f = {.url = jwks_uri, .tls_ca = job->tls_ca, .timeout_ms = job->timeout_ms, .max_bytes = MAX_DOC};
    char e[160];
    if (wd_fetch_get(&f, &b, e, sizeof(e)) < 0) {
        snprintf(err, sizeof(err), "jwks: %s", e);
        wd_oidc_job_done(job, mono_ms(), NULL, 0, found, err);
    } else {
        wd_oidc_job_done(job, mono_ms(), b.p ? b.p : "", b.n, found, NULL);
    }
    wd_buf_free(&b);
}

static void *fetcher_main(void *arg)
{
    (void)arg;
    pthread_setname_np(pthread_self(), "wd-oidc");
    for (;;) {
        struct wd_oidc_job job;
        int64_t wait = 0;
        while (wd_oidc_next_job(mono_ms(), &job, &wait) == 1)
            run_job(&job);
        if (!wd_oidc_wait(wait))
            break;
    }
    return NULL;
}

int wd_oidc_fetch_start(void)
{
    if (running)
        return 0;
    if (pthread_create(&thread, NULL, fetcher_main, NULL) != 0)
        return -1;
    running = true;
    return 0;
}

void wd_oidc_fetch_stop(void)
{
    if (!running)
        return;
    wd_oidc_stop();
    pthread_join(thread, NULL);
    running = false;
    wd_oidc_shutdown();
}
