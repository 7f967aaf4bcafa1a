/* SHA-256 with a reused per-thread digest context, and lowercase hex. See hash.h. */
#include "lib/hash.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

static const char hexdig[] = "0123456789abcdef";

/* Each byte's two digits, for a copy of two bytes a byte. */
static char hexpairs[256][2];
static pthread_once_t hexpairs_once = PTHREAD_ONCE_INIT;

static void hexpairs_init(void)
{
    for (int i = 0; i < 256; i++) {
        hexpairs[i][0] = hexdig[i >> 4];
        hexpairs[i][1] = hexdig[i & 15];
    }
}

void wd_hex(const uint8_t *p, size_t n, char *out)
{
    pthread_once(&hexpairs_once, hexpairs_init);
    for (size_t i = 0; i < n; i++)
        memcpy(out + 2 * i, hexpairs[p[i]], 2);
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

/* ---- SipHash-2-4-128 ---- */

static inline uint64_t rotl64(uint64_t x, int b) { return (x << b) | (x >> (64 - b)); }

static inline uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline void put_le64(uint8_t *o, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        o[i] = (uint8_t)(v >> (8 * i));
}

#define SIPROUND                                                                                                       \
    do {                                                                                                               \
        v0 += v1, v1 = rotl64(v1, 13), v1 ^= v0, v0 = rotl64(v0, 32);                                                  \
        v2 += v3, v3 = rotl64(v3, 16), v3 ^= v2;                                                                       \
        v0 += v3, v3 = rotl64(v3, 21), v3 ^= v0;                                                                       \
        v2 += v1, v1 = rotl64(v1, 17), v1 ^= v2, v2 = rotl64(v2, 32);                                                  \
    } while (0)

void wd_siphash128(const uint8_t key[16], const void *data, size_t n, uint8_t out[16])
{
    const uint8_t *p = data;
    uint64_t k0 = le64(key), k1 = le64(key + 8);
    uint64_t v0 = 0x736f6d6570736575ull ^ k0, v1 = 0x646f72616e646f6dull ^ k1, v2 = 0x6c7967656e657261ull ^ k0,
             v3 = 0x7465646279746573ull ^ k1;
    v1 ^= 0xee;
    size_t whole = n & ~(size_t)7;
    for (size_t i = 0; i < whole; i += 8) {
        uint64_t m = le64(p + i);
        v3 ^= m;
        SIPROUND;
        SIPROUND;
        v0 ^= m;
    }
    uint64_t b = (uint64_t)n << 56;
    for (size_t i = 0; i < (n & 7); i++)
        b |= (uint64_t)p[whole + i] << (8 * i);
    v3 ^= b;
    SIPROUND;
    SIPROUND;
    v0 ^= b;
    v2 ^= 0xee;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    put_le64(out, v0 ^ v1 ^ v2 ^ v3);
    v1 ^= 0xdd;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    SIPROUND;
    put_le64(out + 8, v0 ^ v1 ^ v2 ^ v3);
}

static uint8_t process_key[16];
static pthread_once_t process_key_once = PTHREAD_ONCE_INIT;

static void process_key_init(void)
{
    if (getrandom(process_key, sizeof(process_key), 0) != (ssize_t)sizeof(process_key))
        abort(); /* no randomness: nothing keyed can be trusted */
}

const uint8_t *wd_process_key(void)
{
    pthread_once(&process_key_once, process_key_init);
    return process_key;
}

static const char b64url_alpha[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t wd_b64url_encode(const uint8_t *p, size_t n, char *out)
{
    size_t o = 0, i = 0;
    for (; i + 3 <= n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        out[o++] = b64url_alpha[v >> 18];
        out[o++] = b64url_alpha[(v >> 12) & 63];
        out[o++] = b64url_alpha[(v >> 6) & 63];
        out[o++] = b64url_alpha[v & 63];
    }
    if (n - i == 1) {
        out[o++] = b64url_alpha[p[i] >> 2];
        out[o++] = b64url_alpha[(p[i] & 3) << 4];
    } else if (n - i == 2) {
        uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];
        out[o++] = b64url_alpha[v >> 10];
        out[o++] = b64url_alpha[(v >> 4) & 63];
        out[o++] = b64url_alpha[(v & 15) << 2];
    }
    out[o] = '\0';
    return o;
}

static int b64url_val(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long wd_b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap)
{
    /* a lone trailing character carries 6 bits, not a byte: no encoder writes it */
    if (n % 4 == 1)
        return -1;
    size_t want = n / 4 * 3 + (n % 4 ? n % 4 - 1 : 0);
    if (want > cap)
        return -1;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < n; i++) {
        int v = b64url_val((unsigned char)s[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6 | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (uint8_t)(acc >> bits);
        }
    }
    /* nonzero leftover bits would give a second spelling of the same bytes (a malleable token) */
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1;
    return (long)o;
}

long wd_b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, unsigned flags)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t w = 0, chars = 0, pad = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\\') {
            if (!(flags & WD_B64_JSON_SLASH) || i + 1 >= n || s[i + 1] != '/')
                return -1;
            c = '/';
            i++;
        }
        if (c == '=') {
            pad++;
            continue;
        }
        if (pad > 0)
            return -1; /* data after the padding */
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || (c == '-' && (flags & WD_B64_URL)))
            v = 62;
        else if (c == '/' || (c == '_' && (flags & WD_B64_URL)))
            v = 63;
        else
            return -1;
        chars++;
        acc = ((acc << 6) | (uint32_t)v) & 0xffffff;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            if (w >= cap)
                return -2;
            out[w++] = (uint8_t)(acc >> bits);
        }
    }
    size_t rem = chars % 4; /* 0, 2 or 3 data characters in the last group */
    if (rem == 1 || (pad > 0 && (rem == 0 || pad != 4 - rem)) || (pad == 0 && rem != 0 && !(flags & WD_B64_PAD_OPTIONAL)))
        return -1;
    if (bits > 0 && (acc & ((1u << bits) - 1)) != 0)
        return -1; /* nonzero bits past the end: a second spelling of the same bytes */
    return (long)w;
}
