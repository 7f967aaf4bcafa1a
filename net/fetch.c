/* net/fetch.h over a libcurl easy handle per call: these fetches are rare (minutes apart) and off the loops. */
#include "net/fetch.h"

#include <stdio.h>
#include <string.h>

#include <curl/curl.h>

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

int wd_fetch_request(const struct wd_fetch *f, struct wd_buf *body, long *status, char *err, size_t err_cap)
{
    *status = 0;
    CURL *h = curl_easy_init();
    if (h == NULL) {
        snprintf(err, err_cap, "out of memory");
        return -1;
    }
    char accept[128];
    struct curl_slist *hdrs = NULL;
    if (f->accept != NULL) {
        snprintf(accept, sizeof(accept), "Accept: %s", f->accept);
        hdrs = curl_slist_append(NULL, accept);
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
    if (f->post != NULL) {
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, f->post);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)f->post_len);
    }
    if (f->tls_ca != NULL && f->tls_ca[0] != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, f->tls_ca);
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    curl_easy_cleanup(h);
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
