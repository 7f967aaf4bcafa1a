/* A blocking HTTPS GET for background threads (an IdP's discovery document and signing keys; later the vault
 * backends): bounded in time and size, no redirects, http and https only. Never called on a worker loop. */
#ifndef WARDEN_NET_FETCH_H
#define WARDEN_NET_FETCH_H

#include <stddef.h>

#include "lib/buf.h"

struct wd_fetch {
    const char *url;
    const char *tls_ca;          /* PEM bundle, or NULL/"" for the system trust store */
    unsigned timeout_ms;         /* the whole transfer */
    size_t max_bytes;            /* a longer body is an error */
};

/* GETs f->url into body (appended). 0 for a 200 answer; -1 with err (a short reason: no body bytes, no URL
 * query) otherwise. */
int wd_fetch_get(const struct wd_fetch *f, struct wd_buf *body, char *err, size_t err_cap);

#endif
