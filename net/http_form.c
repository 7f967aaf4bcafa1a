/* net/http_form.h over a libcurl easy handle per call: a login makes a handful of requests, `warden token` one. */
#include "net/http_form.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

struct sink {
    struct wd_buf *b;
    size_t max;
    bool over;
};

static size_t on_body(char *p, size_t size, size_t n, void *ud)
{
    struct sink *s = ud;
    size_t len = size * n;
    if (s->b->n + len > s->max) {
        s->over = true;
        return 0; /* stops the transfer */
    }
    wd_buf_put(s->b, p, len);
    return s->b->oom ? 0 : len;
}

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
    CURL *h = curl_easy_init();
    if (h == NULL) {
        wd_buf_free(&form);
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    struct curl_slist *hdrs = curl_slist_append(NULL, "Accept: application/json");
    struct sink s = {body, f->max_bytes ? f->max_bytes : (1u << 20), false};
    long tmo = (long)(f->timeout_ms ? f->timeout_ms : 10000);
    curl_easy_setopt(h, CURLOPT_URL, f->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, tmo);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, form.p ? form.p : "");
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)form.n);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "warden");
    if (f->tls_ca != NULL && f->tls_ca[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, f->tls_ca);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    curl_slist_free_all(hdrs);
    /* The form holds a refresh token or a device code: it does not linger in freed memory. */
    if (form.p != NULL)
        OPENSSL_cleanse(form.p, form.n);
    wd_buf_free(&form);
    if (s.over) {
        snprintf(err, err_cap, "answer larger than %zu bytes", s.max);
        return -1;
    }
    if (rc != CURLE_OK) {
        snprintf(err, err_cap, "%s", curl_easy_strerror(rc));
        return -1;
    }
    return 0;
}
