/* SHA-256 with a reused per-thread digest context, and lowercase hex. See hash.h. */
#include "lib/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

static const char hexdig[] = "0123456789abcdef";

void wd_hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hexdig[p[i] >> 4];
        out[2 * i + 1] = hexdig[p[i] & 15];
    }
    out[2 * n] = '\0';
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1; /* lowercase only: one spelling per value */
}

int wd_unhex(const char *s, size_t n, uint8_t *out, size_t cap)
{
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        int h = hexval(s[2 * i]), l = hexval(s[2 * i + 1]);
        if (h < 0 || l < 0)
            return -1;
        out[i] = (uint8_t)(h << 4 | l);
    }
    return (int)(n / 2);
}

/* One digest context per thread, freed when the thread ends (workers come and go with the server). */
static pthread_key_t md_key;
static pthread_once_t md_once = PTHREAD_ONCE_INIT;
static void md_free(void *p) { EVP_MD_CTX_free(p); }
static void md_key_init(void) { pthread_key_create(&md_key, md_free); }

/* SHA-256 fetched once: EVP_sha256() makes OpenSSL 3 look the implementation up (a lock and a property
 * query, about 0.2 µs) on every digest, and a call hashes several records. Freed by an atexit handler that
 * runs before OpenSSL's own (registered earlier, at its initialisation). */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;
static void sha256_md_free(void) { EVP_MD_free(sha256_md); }
static void sha256_md_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
    if (sha256_md != NULL)
        atexit(sha256_md_free);
}

const EVP_MD *wd_sha256_md(void)
{
    pthread_once(&sha256_once, sha256_md_fetch);
    return sha256_md != NULL ? sha256_md : EVP_sha256();
}

/* SHA-256 of a || b. */
void wd_sha256_2(const void *a, size_t an, const void *b, size_t bn, uint8_t out[32])
{
    pthread_once(&md_once, md_key_init);
    EVP_MD_CTX *ctx = pthread_getspecific(md_key);
    if (ctx == NULL && (ctx = EVP_MD_CTX_new()) != NULL)
        pthread_setspecific(md_key, ctx);
    unsigned len = 32;
    if (ctx == NULL || EVP_DigestInit_ex(ctx, wd_sha256_md(), NULL) != 1 || EVP_DigestUpdate(ctx, a, an) != 1 ||
        EVP_DigestUpdate(ctx, b, bn) != 1 || EVP_DigestFinal_ex(ctx, out, &len) != 1)
        memset(out, 0, 32); /* cannot happen short of memory exhaustion; a zero hash never verifies */
}

void wd_sha256(const void *p, size_t n, uint8_t out[32])
{
    wd_sha256_2(p, n, NULL, 0, out);
}
