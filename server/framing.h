/* HTTP framing as the front guard reads it (server/front.c), in pure functions over bytes so they are unit
 * tested and fuzzed (tests/fuzz/fuzz_framing.c) without sockets: the message-body framing of an HTTP/1.1
 * request head (RFC 9112 section 6), chunked transfer coding (section 7.1, CRLF only), and HTTP/2 frame
 * headers (RFC 9113 section 4.1). */
#ifndef WARDEN_SERVER_FRAMING_H
#define WARDEN_SERVER_FRAMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One header field of a parsed head (name NULL: a continuation line). */
struct wd_field {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};

/* What a request head says about its body. */
struct wd_h1_body {
    bool chunked;
    uint64_t length;             /* Content-Length, when not chunked */
    const char *api_key;         /* x-api-key value (trimmed), or NULL */
    size_t api_key_len;
    const char *authorization;   /* Authorization value (trimmed), or NULL */
    size_t authorization_len;
};

/* The body framing of a request head: 0, or -1 with *why set (a static message for a 400): both
 * Content-Length and Transfer-Encoding, differing or malformed Content-Lengths, a transfer coding other than
 * one `chunked`, chunked in HTTP/1.0. minor: the HTTP/1 minor version. */
int wd_h1_body_framing(const struct wd_field *f, size_t n, int minor, struct wd_h1_body *out, const char **why);

/* Chunked framing, fed as bytes arrive. */
struct wd_chunked {
    int st;
    unsigned hex;
    uint64_t left;
};
enum { WD_CHUNKED_MORE = 0, WD_CHUNKED_DONE = 1, WD_CHUNKED_BAD = -1 };
/* Consumes up to n bytes; *used is how many (at most n; on DONE, the bytes after are the next request's).
 * Returns WD_CHUNKED_MORE, WD_CHUNKED_DONE or WD_CHUNKED_BAD (a bare LF, a bad size line, a missing CRLF). */
int wd_chunked_feed(struct wd_chunked *c, const char *p, size_t n, size_t *used);

/* HTTP/2 frame headers in a buffer of whole and partial frames. Calls fn for each complete frame (its payload
 * within b) and returns the offset of the first incomplete one. */
struct wd_h2_frame {
    uint32_t length;
    uint8_t type, flags;
    uint32_t stream_id;
    const uint8_t *payload;
};
size_t wd_h2_frames(const uint8_t *b, size_t n, void (*fn)(void *ctx, const struct wd_h2_frame *f), void *ctx);

#endif
