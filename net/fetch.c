/* net/fetch.h over a libcurl easy handle per call: these fetches are rare (minutes apart) and off the loops. */
#include "net/fetch.h"

#include <stdio.h>
#include <stdlib.h>
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

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
    struct wd_buf *b = ud;
    size_t len = size * n;
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0)
        return len; /* the status line (and an interim 100's) */
    if (len == 2 && p[0] == '\r')
        return len;
    if (b->n + len > 65536)
        return 0; /* a header flood stops the transfer */
    wd_buf_put(b, p, len);
    return b->oom ? 0 : len;
}

/* Header lines may carry secrets (a Vault token, a session token): wiped before curl frees them. */
static void wipe_headers(struct curl_slist *l)
{
    for (; l != NULL; l = l->next)
        OPENSSL_cleanse(l->data, strlen(l->data));
}

int wd_fetch_request(const struct wd_fetch *f, struct wd_buf *body, long *status, char *err, size_t err_cap)
{
    *status = 0;
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    char line[160];
    struct curl_slist *hdrs = NULL;
    bool hdr_oom = false;
    if (f->accept != NULL) {
        snprintf(line, sizeof(line), "Accept: %s", f->accept);
        hdr_oom |= (hdrs = curl_slist_append(hdrs, line)) == NULL;
    }
    if (!hdr_oom && f->content_type != NULL) {
        snprintf(line, sizeof(line), "Content-Type: %s", f->content_type);
        struct curl_slist *n = curl_slist_append(hdrs, line);
        hdr_oom |= n == NULL;
        hdrs = n ? n : hdrs;
    }
    if (!hdr_oom && f->authorization != NULL) {
        /* a heap line: a bearer token may be longer than any fixed buffer (an OIDC access token) */
        size_t n = strlen(f->authorization) + sizeof("Authorization: ");
        char *a = malloc(n);
        struct curl_slist *l = NULL;
        if (a != NULL) {
            snprintf(a, n, "Authorization: %s", f->authorization);
            l = curl_slist_append(hdrs, a);
            OPENSSL_cleanse(a, n);
            free(a);
        }
        hdr_oom |= l == NULL;
        hdrs = l ? l : hdrs;
    }
    for (size_t i = 0; !hdr_oom && f->headers != NULL && f->headers[i] != NULL; i++) {
        struct curl_slist *l = curl_slist_append(hdrs, f->headers[i]);
        hdr_oom |= l == NULL;
        hdrs = l ? l : hdrs;
    }
    if (hdr_oom) {
        wipe_headers(hdrs);
        curl_slist_free_all(hdrs);
        curl_easy_cleanup(h);
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    struct sink s = {body, f->max_bytes ? f->max_bytes : (1u << 20), false};
    long tmo = (long)(f->timeout_ms ? f->timeout_ms : 5000);
    curl_easy_setopt(h, CURLOPT_URL, f->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, tmo);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, tmo);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &s);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "warden");
    if (f->direct)
        curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
    if (f->resp_headers != NULL) {
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, f->resp_headers);
    }
    if (f->post != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, f->post);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)f->post_len);
    }
    /* CUSTOMREQUEST only renames the verb: a body still comes from POSTFIELDS, and a GET stays a plain GET */
    if (f->method != NULL && strcmp(f->method, f->post != NULL ? "POST" : "GET") != 0)
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, f->method);
    if (f->tls_ca != NULL && f->tls_ca[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, f->tls_ca);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
    wipe_headers(hdrs);
    curl_slist_free_all(hdrs);
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

int wd_fetch_get(const struct wd_fetch *f, struct wd_buf *body, char *err, size_t err_cap)
{
    long status;
    if (wd_fetch_request(f, body, &status, err, err_cap) < 0)
        return -1;
    if (status != 200) {
        snprintf(err, err_cap, "HTTP %ld", status);
        return -1;
    }
    return 0;
}
