/* libFuzzer driver for the GCP Secret Manager backend's parsers (secrets/gcp.h). The first byte picks what the
 * rest is: (0) a versions:access answer, (1) a token answer, (2) a service-account key file (signed with when it
 * parses: a mutated PEM reaches OpenSSL's reader), (3) answer header lines (Metadata-Flavor), (4) a reference
 * and a metadata host, NUL-separated, made into URLs. The second byte picks the HTTP status and the third the
 * room given for the value, so errors, the checksum and the size bound are all reached. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/gcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const long statuses[8] = {200, 200, 200, 401, 403, 404, 400, 503};
    if (size < 3)
        return 0;
    int mode = data[0] % 5;
    long status = statuses[data[1] % 8];
    size_t cap = 1 + (size_t)data[2] * 64;
    size_t n = size - 3;
    /* an exact-size copy: a read past the answer is a sanitizer report */
    char *in = malloc(n ? n : 1);
    if (in == NULL)
        return 0;
    memcpy(in, data + 3, n);
    char why[256];
    switch (mode) {
    case 0: {
        char *out = malloc(cap);
        if (out != NULL) {
            int r = wd_gcp_parse_access(status, in, n, out, cap, why, sizeof(why));
            if (r > 0 && ((size_t)r >= cap || out[r] != '\0' || memchr(out, '\0', (size_t)r) != NULL))
                abort(); /* a value is NUL-terminated, fits and holds no NUL */
            if (r < 0 && memchr(why, '\0', sizeof(why)) == NULL)
                abort();
        }
        free(out);
        break;
    }
    case 1: {
        char *tok = malloc(cap);
        int64_t ex = 0;
        if (tok != NULL) {
            int r = wd_gcp_parse_token("token endpoint", status, in, n, tok, cap, &ex, why, sizeof(why));
            if (r > 0 && ((size_t)r >= cap || tok[r] != '\0' || ex <= 0 || ex > 86400))
                abort();
        }
        free(tok);
        break;
    }
    case 2: {
        struct wd_gcp_key key;
        char *pem = malloc(n + 1);
        if (pem != NULL && wd_gcp_parse_key(in, n, &key, pem, n + 1, why, sizeof(why)) == 0) {
            if (key.pem != pem || key.pem_len > n || pem[key.pem_len] != '\0')
                abort();
            char jwt[4096];
            int r = wd_gcp_jwt_sign(&key, 1700000000, jwt, sizeof(jwt), why, sizeof(why));
            if (r > 0 && (size_t)r >= sizeof(jwt))
                abort();
        }
        free(pem);
        break;
    }
    case 3:
        (void)wd_gcp_metadata_flavor_ok(in, n);
        break;
    default: {
        char *s = malloc(n + 1);
        if (s == NULL)
            break;
        memcpy(s, in, n);
        s[n] = '\0';
        const char *host = s + strlen(s) + (strlen(s) < n ? 1 : 0);
        char url[1024];
        int r = wd_gcp_access_url("https://secretmanager.googleapis.com/", s, url, sizeof(url), why, sizeof(why));
        if (r > 0 && (size_t)r != strlen(url))
            abort();
        r = wd_gcp_metadata_url(host, url, sizeof(url), why, sizeof(why));
        if (r > 0 && (size_t)r != strlen(url))
            abort();
        free(s);
        break;
    }
    }
    free(in);
    return 0;
}
