/* libFuzzer driver for the azure-kv:// backend's readers of what the services answer (secrets/azure.h). The first
 * byte picks the reader and the HTTP status; the rest is the answer: (0) Key Vault's WWW-Authenticate headers,
 * the challenge's resource then checked against a few vault URLs; (1) a Key Vault secret answer; (2) an Entra or
 * IMDS token answer. Outputs go into small buffers so that the bounds are hit, and each output is checked
 * against what its reader promises (NUL-terminated, the returned length, no control bytes in a token). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "secrets/azure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const long statuses[] = {200, 200, 200, 401, 403, 404, 429, 500};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned mode = data[0] % 3;
    long status = statuses[(data[0] >> 2) % 8];
    /* a copy of exactly the answer's bytes, so reads past it are caught */
    size_t n = size - 1;
    char *p = malloc(n ? n : 1);
    if (p == NULL)
        return 0;
    memcpy(p, data + 1, n);
    char why[256];
    if (mode == 0) {
        struct wd_azure_challenge c;
        if (wd_azure_parse_challenge(p, n, &c, why, sizeof why) == 0) {
            if (strlen(c.tenant) == 0 || strlen(c.resource) == 0 || strlen(c.tenant) >= sizeof c.tenant)
                abort();
            static const char *const vaults[] = {"https://kv.vault.azure.net", "https://kv.vault.azure.cn:443/",
                                                 "https://127.0.0.1:8443"};
            for (size_t i = 0; i < 3; i++)
                (void)wd_azure_check_resource(c.resource, vaults[i], why, sizeof why);
        }
    } else if (mode == 1) {
        char out[64];
        const char *inner = NULL;
        int r = wd_azure_parse_secret(p, n, status, out, sizeof out, &inner, why, sizeof why);
        if (r > 0 && ((size_t)r >= sizeof out || out[r] != '\0' || memchr(out, '\0', (size_t)r) != NULL))
            abort();
        if (r <= 0 && (inner == NULL || strlen(why) >= sizeof why))
            abort();
    } else {
        char tok[48];
        int64_t exp = 0;
        int r = wd_azure_parse_token(p, n, status, 1700000000, tok, sizeof tok, &exp, why, sizeof why);
        if (r > 0) {
            if ((size_t)r >= sizeof tok || tok[r] != '\0' || exp < 1 || exp > 604800)
                abort();
            for (int i = 0; i < r; i++)
                if ((unsigned char)tok[i] <= 0x20 || (unsigned char)tok[i] >= 0x7f)
                    abort();
        }
    }
    free(p);
    return 0;
}
