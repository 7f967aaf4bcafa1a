/* SHA-256, hex and base64url, shared by every module (audit chain hashes, API key digests, log and trace ids,
 * JOSE tokens and keys). */
#ifndef WARDEN_LIB_HASH_H
#define WARDEN_LIB_HASH_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

/* SHA-256 for EVP_Digest*: fetched once per process (EVP_sha256() looks it up on every use). */
const EVP_MD *wd_sha256_md(void);
/* SHA-256 of p[0..n) with the thread's reused digest context: OpenSSL 3's one-shot SHA256() looks the
 * implementation up and allocates a context on every call. */
void wd_sha256(const void *p, size_t n, uint8_t out[32]);
/* SHA-256 of a[0..an) || b[0..bn), with the same context. */
void wd_sha256_2(const void *a, size_t an, const void *b, size_t bn, uint8_t out[32]);

/* SipHash-2-4 with a 128-bit output (the reference's SipHash128), keyed: a keyed hash for lookups and for
 * comparing a presented secret with a stored tag, ten times cheaper than SHA-256 on a short input. */
void wd_siphash128(const uint8_t key[16], const void *p, size_t n, uint8_t out[16]);
/* A key drawn from getrandom once per process: tags made with it are valid only in this process. */
const uint8_t *wd_process_key(void);

void wd_hex(const uint8_t *p, size_t n, char *out);                /* lowercase; out: 2n+1 bytes */
int wd_unhex(const char *s, size_t n, uint8_t *out, size_t cap);   /* lowercase only; bytes written, or -1 */

/* base64url (RFC 4648 section 5) without padding, the JOSE spelling (RFC 7515 section 2). Encoding writes
 * WD_B64URL_LEN(n) characters and a NUL. Decoding accepts one spelling per value: no '=', no whitespace, no
 * length of 1 mod 4, and the unused low bits of the last character zero; bytes written, or -1 (also when
 * more than cap bytes would be written). */
#define WD_B64URL_LEN(n) (((n) / 3) * 4 + ((n) % 3 ? (n) % 3 + 1 : 0))
#define WD_B64URL_DECODED_MAX(n) ((n) / 4 * 3 + 2)
size_t wd_b64url_encode(const uint8_t *p, size_t n, char *out);
long wd_b64url_decode(const char *s, size_t n, uint8_t *out, size_t cap);

/* base64 (RFC 4648 section 4) as services carry blobs in JSON (AWS's SecretBinary, GCP's payload.data). One
 * spelling per value: '=' only at the end and as many as the length needs, the unused low bits zero, no
 * whitespace. Flags widen it: WD_B64_URL also takes the URL alphabet's '-' and '_'; WD_B64_PAD_OPTIONAL takes a
 * value without its padding; WD_B64_JSON_SLASH reads "\/" (JSON's other spelling of '/') as '/', any other
 * escape being malformed. Bytes written; -1 malformed; -2 when more than cap bytes would be written. */
#define WD_B64_URL 1u
#define WD_B64_PAD_OPTIONAL 2u
#define WD_B64_JSON_SLASH 4u
long wd_b64_decode(const char *s, size_t n, uint8_t *out, size_t cap, unsigned flags);

#endif
