/* A blocking HTTP POST of an application/x-www-form-urlencoded body (OAuth 2.0 token and device authorization
 * requests) for the command-line tools: bounded in time and size, no redirects, http and https only. The answer's
 * body comes back whatever its status, since OAuth errors are JSON bodies of 400 answers. */
#ifndef WARDEN_NET_HTTP_FORM_H
#define WARDEN_NET_HTTP_FORM_H

#include <stddef.h>

#include "lib/buf.h"

struct wd_http_form {
    const char *url;
    const char *const *fields;   /* name, value, name, value, ..., NULL; a NULL value leaves its pair out */
    const char *tls_ca;          /* PEM bundle, or NULL/"" for the system trust store */
    unsigned timeout_ms;         /* the whole transfer; 0 for 10 s */
    size_t max_bytes;            /* a longer answer is an error; 0 for 1 MiB */
};

/* Appends the form encoding of fields (names and values percent-encoded) to out; -1 on OOM. */
int wd_http_form_encode(const char *const *fields, struct wd_buf *out);

/* POSTs the form to f->url and appends the answer's body to body, its status to *status. 0 when an answer came
 * (any status); -1 with err (a short reason, never a field value) when none did. */
int wd_http_form_post(const struct wd_http_form *f, struct wd_buf *body, long *status, char *err, size_t err_cap);

#endif
