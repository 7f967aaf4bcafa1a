/* HTTP framing for the front guard (server/framing.h). */
#include "server/framing.h"

#include <string.h>
#include <strings.h>

static bool name_is(const struct wd_field *h, const char *lc, size_t n)
{
    return h->name != NULL && h->name_len == n && strncasecmp(h->name, lc, n) == 0;
}

static void trim(const char **p, size_t *n)
{
    while (*n && ((*p)[0] == ' ' || (*p)[0] == '\t'))
        (*p)++, (*n)--;
    while (*n && ((*p)[*n - 1] == ' ' || (*p)[*n - 1] == '\t'))
        (*n)--;
}

int wd_h1_body_framing(const struct wd_field *f, size_t n, int minor, struct wd_h1_body *out, const char **why)
{
    const char *cl = NULL, *te = NULL;
    size_t cln = 0, ten = 0;
    unsigned ncl = 0, nte = 0;
    bool conflict = false;
    memset(out, 0, sizeof(*out));
    for (size_t i = 0; i < n; i++) {
        size_t nl = f[i].name_len;
        if (nl != 14 && nl != 17 && nl != 9 && nl != 13)
            continue; /* none of the four names: most fields of a request */
        const char *v = f[i].value;
        size_t vn = f[i].value_len;
        trim(&v, &vn);
        if (name_is(&f[i], "content-length", 14)) {
            if (ncl++ && (vn != cln || memcmp(v, cl, vn) != 0))
                conflict = true;
            cl = v, cln = vn;
        } else if (name_is(&f[i], "transfer-encoding", 17)) {
            nte++;
            te = v, ten = vn;
        } else if (name_is(&f[i], "x-api-key", 9) && out->api_key == NULL) {
            out->api_key = v, out->api_key_len = vn;
        } else if (name_is(&f[i], "authorization", 13) && out->authorization == NULL) {
            out->authorization = v, out->authorization_len = vn;
        }
    }
    if (nte != 0 && ncl != 0) {
        *why = "request has both Content-Length and Transfer-Encoding";
        return -1;
    }
    if (nte > 1 || (nte == 1 && (minor == 0 || ten != 7 || strncasecmp(te, "chunked", 7) != 0))) {
        *why = "unsupported Transfer-Encoding: only a single chunked coding is accepted";
        return -1;
    }
    if (ncl != 0) {
        bool ok = !conflict && cln > 0 && cln <= 18;
        for (size_t i = 0; ok && i < cln; i++)
            ok = cl[i] >= '0' && cl[i] <= '9';
        if (!ok) {
            *why = conflict ? "request has conflicting Content-Length values" : "invalid Content-Length";
            return -1;
        }
        for (size_t i = 0; i < cln; i++)
            out->length = out->length * 10 + (uint64_t)(cl[i] - '0');
    }
    out->chunked = nte == 1;
    return 0;
}

enum {
    C_SIZE = 0, /* chunk-size digits */
    C_EXT,      /* chunk extension, up to CR */
    C_SIZE_LF,  /* LF after the chunk-size line */
    C_DATA,     /* chunk data: left bytes */
    C_DATA_CR,  /* CR after chunk data */
    C_DATA_LF,  /* LF after chunk data */
    C_TR_START, /* start of a trailer line, or the final CRLF */
    C_TR_LINE,  /* inside a trailer line */
    C_TR_LF,    /* LF ending a trailer line */
    C_END_LF,   /* LF of the final CRLF */
    C_DONE,
    C_BAD,
};

int wd_chunked_feed(struct wd_chunked *c, const char *p, size_t n, size_t *used)
{
    size_t i = 0;
    while (i < n && c->st != C_DONE && c->st != C_BAD) {
        if (c->st == C_DATA) {
            size_t k = n - i < c->left ? n - i : (size_t)c->left;
            c->left -= k;
            i += k;
            if (c->left == 0)
                c->st = C_DATA_CR;
            continue;
        }
        char ch = p[i++];
        switch (c->st) {
        case C_SIZE: {
            int v = ch >= '0' && ch <= '9'   ? ch - '0'
                    : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10
                    : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10
                                             : -1;
            if (v >= 0 && c->hex < 15) {
                c->left = c->left * 16 + (uint64_t)v;
                c->hex++;
            } else if (c->hex > 0 && (ch == ';' || ch == ' ' || ch == '\t')) {
                c->st = C_EXT;
            } else if (c->hex > 0 && ch == '\r') {
                c->st = C_SIZE_LF;
            } else {
                c->st = C_BAD;
            }
            break;
        }
        case C_EXT:
            if (ch == '\r')
                c->st = C_SIZE_LF;
            else if (ch == '\n')
                c->st = C_BAD;
            break;
        case C_SIZE_LF:
            c->hex = 0;
            c->st = ch != '\n' ? C_BAD : c->left == 0 ? C_TR_START : C_DATA;
            break;
        case C_DATA_CR:
            c->st = ch == '\r' ? C_DATA_LF : C_BAD;
            break;
        case C_DATA_LF:
            c->st = ch == '\n' ? C_SIZE : C_BAD;
            c->left = 0;
            break;
        case C_TR_START:
            c->st = ch == '\r' ? C_END_LF : ch == '\n' ? C_BAD : C_TR_LINE;
            break;
        case C_TR_LINE:
            if (ch == '\r')
                c->st = C_TR_LF;
            else if (ch == '\n')
                c->st = C_BAD;
            break;
        case C_TR_LF:
            c->st = ch == '\n' ? C_TR_START : C_BAD;
            break;
        case C_END_LF:
            c->st = ch == '\n' ? C_DONE : C_BAD;
            break;
        default:
            break;
        }
    }
    *used = i;
    return c->st == C_DONE ? WD_CHUNKED_DONE : c->st == C_BAD ? WD_CHUNKED_BAD : WD_CHUNKED_MORE;
}

size_t wd_h2_frames(const uint8_t *b, size_t n, void (*fn)(void *ctx, const struct wd_h2_frame *f), void *ctx)
{
    size_t pos = 0;
    while (n - pos >= 9) {
        struct wd_h2_frame f;
        f.length = (uint32_t)b[pos] << 16 | (uint32_t)b[pos + 1] << 8 | b[pos + 2];
        f.type = b[pos + 3];
        f.flags = b[pos + 4];
        f.stream_id =
            ((uint32_t)b[pos + 5] << 24 | (uint32_t)b[pos + 6] << 16 | (uint32_t)b[pos + 7] << 8 | b[pos + 8]) & 0x7fffffffu;
        if (n - pos - 9 < f.length)
            break;
        f.payload = b + pos + 9;
        fn(ctx, &f);
        pos += 9 + (size_t)f.length;
    }
    return pos;
}
