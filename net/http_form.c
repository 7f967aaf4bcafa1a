/* net/http_form.h: a form POST through net/fetch.c (a login makes a handful of requests, `warden token` one). */
#include "net/http_form.h"
#include "net/fetch.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>

/* RFC 3986 unreserved characters pass; everything else is %XX (a space too: servers take %20 as well as +). */
static void put_encoded(struct wd_buf *out, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s != '\0'; s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
            c == '_' || c == '~') {
            wd_buf_putc(out, (char)c);
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            wd_buf_put(out, e, 3);
        }
    }
}

int wd_http_form_encode(const char *const *fields, struct wd_buf *out)
{
    bool first = true;
    for (size_t i = 0; fields != NULL && fields[i] != NULL; i += 2) {
        if (fields[i + 1] == NULL)
            continue;
        if (!first)
            wd_buf_putc(out, '&');
        first = false;
        put_encoded(out, fields[i]);
        wd_buf_putc(out, '=');
        put_encoded(out, fields[i + 1]);
    }
    return out->oom ? -1 : 0;
}

int wd_http_form_post(const struct wd_http_form *f, struct wd_buf *body, long *status, char *err, size_t err_cap)
{
    *status = 0;
    struct wd_buf form = {0};
    if (wd_http_form_encode(f->fields, &form) < 0) {
        wd_buf_free(&form);
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    struct wd_fetch req = {.url = f->url, .tls_ca = f->tls_ca, .timeout_ms = f->timeout_ms ? f->timeout_ms : 10000,
                           .max_bytes = f->max_bytes, .post = form.p ? form.p : "", .post_len = form.n,
                           .accept = "application/json"};
    int rc = wd_fetch_request(&req, body, status, err, err_cap);
    /* The form holds a refresh token or a device code: it does not linger in freed memory. */
    if (form.p != NULL)
        OPENSSL_cleanse(form.p, form.n);
    wd_buf_free(&form);
    return rc;
}
