/* A blocking HTTP(S) request for background threads and the CLI (an IdP's discovery document and signing keys, the
 * admin API's JSON calls from `warden keys`): bounded in time and size, no redirects, http and https only. Never
 * called on a worker loop. */
#ifndef WARDEN_NET_FETCH_H
#define WARDEN_NET_FETCH_H

#include <stdbool.h>
#include <stddef.h>

#include "lib/buf.h"

struct wd_fetch {
    const char *url;
    const char *tls_ca;          /* PEM bundle, or NULL/"" for the system trust store */
    unsigned timeout_ms;         /* the whole transfer (0: 5 s) */
    size_t max_bytes;            /* a longer body is an error (0: 1 MiB) */
    const char *post;            /* set: a POST of these bytes (application/x-www-form-urlencoded), else a GET */
    size_t post_len;
    const char *accept;          /* an Accept header value, or NULL */
    const char *method;          /* "GET", "POST", "PATCH", "DELETE"; NULL: POST when post is set, else GET.
                                  * post (when set) is the body of any method */
    const char *content_type;    /* the body's Content-Type, or NULL (application/x-www-form-urlencoded) */
    const char *authorization;   /* an Authorization header value ("Bearer ..."), or NULL: a secret, never
                                  * written into err, wiped from this call's own buffers */
    const char *const *headers;  /* more request headers, "Name: value" each, NULL-terminated, or NULL. Values
                                  * may be secrets (X-Vault-Token): wiped from this call's own buffers */
    bool direct;                 /* never through a proxy (http_proxy and friends): instance metadata services,
                                  * which are link-local and must not be asked through anything */
    struct wd_buf *resp_headers; /* set: the answer's header lines ("name: value\r\n" each, the status line
                                  * left out) are appended to it (an auth challenge, a TTL echo) */
};

/* The request f describes (any method: "PUT" with or without a body too): the answer's body, whatever its status, into body (appended) and its status into
 * *status. 0, or -1 with err (transport, size: a short reason, no body bytes). */
int wd_fetch_request(const struct wd_fetch *f, struct wd_buf *body, long *status, char *err, size_t err_cap);

/* GETs f->url into body (appended). 0 for a 200 answer; -1 with err (a short reason: no body bytes, no URL
 * query) otherwise. */
int wd_fetch_get(const struct wd_fetch *f, struct wd_buf *body, char *err, size_t err_cap);

#endif
