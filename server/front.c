/* The front guard (server/front.h): connection accounting, and every read of a client connection looked at
 * before libh2o 2.2.5 buffers a request body.
 *
 * How it sits in front of libh2o. libh2o starts each read on a socket with h2o_socket_read_start(sock, cb);
 * the HTTP/1 and HTTP/2 protocol code calls it through the PLT (as it calls h2o_http1_accept and
 * h2o_http2_accept), so this executable's definitions of those three functions are the ones libh2o binds
 * (the link exports them: CMakeLists.txt). Each forwards to libh2o's own, found with dlsym(RTLD_NEXT), after
 * putting front_on_read in place of the protocol's read callback for a connection Warden accepted.
 * wd_front_init checks that the interposition is in effect and Warden refuses to start otherwise.
 *
 * The connection's state (struct fconn) is found from the socket itself: Warden sets the socket's on_close
 * callback to its own at accept (libh2o sets it only on its client-side pooled sockets). */
#include "server/front.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <time.h>

#include <h2o/http1.h>
#include <h2o/http2.h>
#include <h2o/http2_internal.h>

#include "server/framing.h"
#include "lib/log.h"
#include "server/server.h"
#include "net/upstream.h"

/* libh2o's bundled picohttpparser: exported by libh2o.so, no header installed (its struct phr_header has the
 * layout of struct wd_field). The guard parses a head exactly as libh2o will, with libh2o's own function
 * (real_parse); this executable's phr_parse_request, which libh2o's HTTP/1 code binds through its PLT, hands
 * libh2o the guard's result for the same bytes instead of parsing them twice (see `memo`). */
typedef int (*phr_parse_request_fn)(const char *buf, size_t len, const char **method, size_t *method_len,
                                    const char **path, size_t *path_len, int *minor_version,
                                    struct wd_field *headers, size_t *num_headers, size_t last_len);
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct wd_field *headers, size_t *num_headers,
                      size_t last_len);

#define H1_MAX_FIELDS 100        /* libh2o's H2O_MAX_HEADERS: more is its plain-text 400 */
#define H1_PARSE_FIELDS 1024     /* to tell "too many fields" from malformed */
#define H2_MAX_OPEN_STREAMS 128  /* SETTINGS says 100 (libh2o refuses streams past it): a client past this is abusive */
#define H2_APPROVED_MAX 128
#define H2_RESET_WINDOW_NS (10ull * 1000000000ull)
#define DOOMED_MAX 32
#define PAD_NAME "x-warden-pad"

enum proto { P_NONE = 0, P_H1, P_H2 };

enum h1st {
    H1_HEAD = 0, /* waiting for a complete request head (the input starts with it) */
    H1_CL,       /* Content-Length body: h1_left bytes to come */
    H1_CHUNKED,  /* chunked body, read by `chunked` */
    H1_DONE,     /* the request is complete, or refused: the next head is checked when libh2o asks for it */
};

struct fconn {
    uv_tcp_t tcp;                /* the handle libh2o's socket wraps */
    struct wd_worker *w;
    h2o_socket_t *sock;
    enum proto proto;
    bool closed;                 /* libh2o disposed of the socket; the handle's close callback frees this */
    bool counted;                /* in nconns */
    /* a refusal the handler answers for the current HTTP/1 request, then the connection closes */
    int refuse_status;
    const char *refuse_type, *refuse_msg;
    /* HTTP/1 */
    enum h1st h1;
    uint64_t h1_left;
    struct wd_chunked chunked;
    size_t reserved;             /* from the process budget, for this request's body */
    /* HTTP/2 */
    size_t preface_left;         /* of the 24-byte client preface, still to skip */
    size_t partial;              /* bytes at the end of the input starting an incomplete frame (read already) */
    uint32_t approved[H2_APPROVED_MAX]; /* streams receiving a body that the guard let through */
    unsigned napproved;
    bool gate_pending;           /* streams receiving a body may wait to be judged */
    bool data_seen;              /* the read being handled holds DATA frames: body bytes to account */
    bool resync;                 /* the scan lost its place (Upgrade: h2c): start again at the input's start */
    bool kill;                   /* HTTP/1: the guard could not rewrite a refused head; close at the next read */
    size_t h2_pending;           /* body bytes held by this connection's streams in RECV_BODY */
    uint64_t reset_t0;
    unsigned resets;
};

/* ---- process-wide state ---- */
static size_t max_conns, max_pending, max_conn_body;
static unsigned max_resets;
static atomic_size_t nconns, pending_body;
static atomic_ullong n_conn_refused, n_fd_exhausted, n_h2_refused_streams, n_doomed;
enum early { E_UNAUTH, E_NO_BODY_ROUTE, E_FRAMING, E_BARE_LF, E_HEADERS, E_TOO_LARGE, E_BUSY, E_MALFORMED, E__N };
static const char *const early_names[E__N] = {"unauthenticated", "route_takes_no_body", "framing", "bare_lf",
                                              "header_too_large", "body_too_large", "busy", "malformed"};
static atomic_ullong n_early[E__N];
enum calm { C_RESETS, C_STREAMS, C__N };
static const char *const calm_names[C__N] = {"resets", "streams"};
static atomic_ullong n_calm[C__N];

static void (*real_read_start)(h2o_socket_t *, h2o_socket_cb);
static void (*real_h1_accept)(h2o_accept_ctx_t *, h2o_socket_t *, struct timeval);
static void (*real_h2_accept)(h2o_accept_ctx_t *, h2o_socket_t *, struct timeval);
static h2o_socket_cb h1_cb, h2_cb; /* libh2o's own read callbacks, learned as they pass */

/* the HTTP/2 streams reset in the read being handled (wd_front_stream_doomed) */
static _Thread_local struct {
    void *conn;
    unsigned n;
    uint32_t sid[DOOMED_MAX];
} doomed;

static void front_on_read(h2o_socket_t *sock, const char *err);

/* ---- one parse of a request head ----
 * picohttpparser's result is a function of its arguments and the bytes buf[0, len) alone (the fields point into
 * buf; a capacity at least the number of fields found gives the same result as a larger one: the end of the head
 * is tested before the capacity). The guard keeps its own result for the read it is judging, and libh2o's parse
 * of that read, which follows in the same call (h1_cb, right after h1_new_bytes), gets it back when it asks with
 * the same buffer, length and last_len. Kept only while the guard holds the read (front_on_read), for a head it
 * let through untouched (h1_rewrite forgets it), and given once. */
static phr_parse_request_fn real_parse;
static _Thread_local struct {
    bool armed;      /* front_on_read is judging an HTTP/1 read: a complete head may be kept */
    bool kept;
    const char *buf;
    size_t len, last_len;
    int r, minor;
    const char *m, *path;
    size_t ml, pl, nh;
    struct wd_field hdrs[H1_MAX_FIELDS];
} memo;

static void memo_forget(void)
{
    memo.kept = false;
}

int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len, const char **path,
                      size_t *path_len, int *minor_version, struct wd_field *headers, size_t *num_headers,
                      size_t last_len)
{
    if (memo.kept && buf == memo.buf && len == memo.len && last_len == memo.last_len && *num_headers >= memo.nh) {
        memo.kept = false;
        *method = memo.m, *method_len = memo.ml, *path = memo.path, *path_len = memo.pl;
        *minor_version = memo.minor;
        memcpy(headers, memo.hdrs, memo.nh * sizeof(*headers));
        *num_headers = memo.nh;
        return memo.r;
    }
    /* (a call before wd_front_init, which sets real_parse before any worker starts, looks libh2o's up itself) */
    phr_parse_request_fn f = real_parse != NULL ? real_parse : (phr_parse_request_fn)dlsym(RTLD_NEXT, "phr_parse_request");
    return f(buf, len, method, method_len, path, path_len, minor_version, headers, num_headers, last_len);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One line a second per kind at most, with the count of lines it stood for. */
enum lim { L_CAP, L_FD, L_EARLY, L_CALM, L_BUSY, L__N };
static atomic_ullong lim_next[L__N], lim_count[L__N];
static bool log_limited(enum lim k, unsigned long long *suppressed)
{
    uint64_t t = now_ns(), next = atomic_load(&lim_next[k]);
    atomic_fetch_add(&lim_count[k], 1);
    if (t < next || !atomic_compare_exchange_strong(&lim_next[k], &next, t + 1000000000ull))
        return false;
    *suppressed = atomic_exchange(&lim_count[k], 0) - 1;
    return true;
}

static bool budget_take(size_t n)
{
    size_t cur = atomic_load(&pending_body);
    do {
        if (cur + n > max_pending || cur + n < cur)
            return false;
    } while (!atomic_compare_exchange_weak(&pending_body, &cur, cur + n));
    return true;
}

static void budget_give(size_t *held)
{
    if (*held != 0)
        atomic_fetch_sub(&pending_body, *held);
    *held = 0;
}

static void fc_sock_closed(void *data);

static struct fconn *fc_of(h2o_socket_t *sock)
{
    struct fconn *fc = sock->on_close.cb == fc_sock_closed ? sock->on_close.data : NULL;
    return fc != NULL && !fc->closed ? fc : NULL;
}

/* ---- accept and close ---- */

static void fc_handle_closed(uv_handle_t *h)
{
    struct fconn *fc = (struct fconn *)h;
    if (fc->counted)
        atomic_fetch_sub(&nconns, 1);
    free(fc);
}

/* libh2o disposed of the socket (its descriptor is already closed): forget it before the number is reused. */
static void fc_sock_closed(void *data)
{
    struct fconn *fc = data;
    fc->closed = true;
    budget_give(&fc->reserved);
    budget_give(&fc->h2_pending);
}

void wd_front_accept(uv_stream_t *listener, struct wd_worker *w, int status)
{
    unsigned long long sup;
    if (status != 0) {
        if (status == UV_EMFILE || status == UV_ENFILE) {
            atomic_fetch_add(&n_fd_exhausted, 1);
            if (log_limited(L_FD, &sup))
                wd_logf(WD_LOG_ERROR, "", "out of file descriptors: cannot accept (%s; %llu more since the last line); "
                        "limits.max_connections is %zu", uv_strerror(status), sup, max_conns);
        }
        return;
    }
    struct fconn *fc = calloc(1, sizeof(*fc));
    if (fc == NULL)
        return;
    uv_tcp_init(listener->loop, &fc->tcp);
    if (uv_accept(listener, (uv_stream_t *)&fc->tcp) != 0) {
        uv_close((uv_handle_t *)&fc->tcp, fc_handle_closed);
        return;
    }
    fc->counted = true;
    if (atomic_fetch_add(&nconns, 1) >= max_conns) {
        /* past the cap: closed at once, never left to spin */
        atomic_fetch_add(&n_conn_refused, 1);
        if (log_limited(L_CAP, &sup))
            wd_logf(WD_LOG_WARN, "", "connection refused: limits.max_connections (%zu) reached (%llu more since the last line)",
                    max_conns, sup);
        uv_close((uv_handle_t *)&fc->tcp, fc_handle_closed);
        return;
    }
    uv_tcp_nodelay(&fc->tcp, 1);
    fc->w = w;
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)&fc->tcp, fc_handle_closed);
    fc->sock = sock;
    sock->on_close.cb = fc_sock_closed;
    sock->on_close.data = fc;
    h2o_accept(&w->accept_ctx, sock);
}

/* ---- the interposed libh2o entry points ---- */

static void (*real_sock_close)(h2o_socket_t *);
static _Thread_local enum proto learning; /* inside h2o_http1_accept / h2o_http2_accept */

void h2o_socket_close(h2o_socket_t *sock)
{
    struct fconn *fc = fc_of(sock);
    if (fc != NULL) {
        fc->closed = true; /* a TLS shutdown may still read: that is libh2o's alone */
        budget_give(&fc->reserved);
        budget_give(&fc->h2_pending);
    }
    real_sock_close(sock);
}

void h2o_http1_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, struct timeval connected_at)
{
    struct fconn *fc = fc_of(sock);
    if (fc != NULL)
        fc->proto = P_H1;
    learning = P_H1;
    real_h1_accept(ctx, sock, connected_at);
    learning = P_NONE;
}

void h2o_http2_accept(h2o_accept_ctx_t *ctx, h2o_socket_t *sock, struct timeval connected_at)
{
    struct fconn *fc = fc_of(sock);
    if (fc != NULL && fc->proto != P_H2) {
        budget_give(&fc->reserved);
        fc->proto = P_H2;
        fc->preface_left = 24;
    }
    learning = P_H2;
    real_h2_accept(ctx, sock, connected_at);
    learning = P_NONE;
}

static void h1_new_bytes(struct fconn *fc, size_t nnew);
static void h2_pre(struct fconn *fc, size_t nnew);

void h2o_socket_read_start(h2o_socket_t *sock, h2o_socket_cb cb)
{
    memo_forget(); /* a new request, or a reader that is not the guard's: what was kept belongs to a finished one */
    if (learning == P_H1 && h1_cb == NULL)
        h1_cb = cb;
    else if (learning == P_H2 && h2_cb == NULL)
        h2_cb = cb;
    struct fconn *fc = cb != front_on_read ? fc_of(sock) : NULL;
    if (fc != NULL && fc->proto == P_H1 && cb != h1_cb) {
        /* not the HTTP/1 reader: the connection became HTTP/2 (Upgrade: h2c; sock->data is the new, live
         * connection), or something that is not Warden's to watch */
        if (((h2o_conn_t *)sock->data)->callbacks->push_path != NULL) {
            if (h2_cb == NULL)
                h2_cb = cb;
            budget_give(&fc->reserved);
            fc->proto = P_H2;
            /* libh2o hands the bytes after the upgrade head to the new connection directly, unseen here:
             * the next read scans the input from its start, and judges the streams those bytes opened */
            fc->resync = true;
            fc->gate_pending = true;
        }
    }
    if (fc == NULL || fc->proto == P_NONE || cb != (fc->proto == P_H1 ? h1_cb : h2_cb)) {
        real_read_start(sock, cb); /* not a client connection, its TLS handshake, or not a protocol reader */
        return;
    }
    real_read_start(sock, front_on_read);
    if (fc->proto == P_H1) {
        /* libh2o starts a new request (or reads on after 100 Continue, mid-body: nothing to reset) */
        if (fc->h1 == H1_DONE || fc->h1 == H1_HEAD) {
            budget_give(&fc->reserved);
            fc->h1 = H1_HEAD;
            fc->refuse_status = 0;
            /* a pipelined request is already here: libh2o parses it as soon as this returns */
            if (sock->input->size != 0)
                h1_new_bytes(fc, sock->input->size);
        }
    } else if (sock->input->size != 0) {
        /* h2o_http2_accept hands over what the HTTP/1 parser read (the preface and maybe frames) and parses it
         * as soon as this returns */
        h2_pre(fc, sock->input->size);
        doomed.conn = NULL;
    }
}

/* ---- HTTP/1.1 ---- */

static bool name_is(const struct wd_field *h, const char *lc)
{
    size_t n = strlen(lc);
    return h->name_len == n && strncasecmp(h->name, lc, n) == 0;
}

static void count_early(enum early e)
{
    atomic_fetch_add(&n_early[e], 1);
}

/* Replaces the request in the input with a head libh2o will parse and dispatch without a body, with
 * `connection: close`. line: the request line; keep: the fields to carry over (NULL: none). The new head is
 * at least prev bytes long and ends there or later: libh2o may have looked at the first prev bytes already
 * and resumes its search for the end of the head from there (picohttpparser's last_len). */
static void h1_rewrite(struct fconn *fc, size_t prev, const char *line, size_t line_len, const struct wd_field *keep,
                       size_t nkeep)
{
    static const char *const drop[] = {"content-length", "transfer-encoding", "connection", "keep-alive", "expect",
                                       "upgrade", "te", "proxy-connection", PAD_NAME};
    struct wd_buf b = {0};
    wd_buf_put(&b, line, line_len);
    wd_buf_puts(&b, "\r\n");
    for (size_t i = 0; i < nkeep; i++) {
        bool skip = keep[i].name == NULL; /* a continuation line */
        for (size_t d = 0; !skip && d < sizeof(drop) / sizeof(drop[0]); d++)
            skip = name_is(&keep[i], drop[d]);
        if (skip)
            continue;
        wd_buf_put(&b, keep[i].name, keep[i].name_len);
        wd_buf_puts(&b, ": ");
        wd_buf_put(&b, keep[i].value, keep[i].value_len);
        wd_buf_puts(&b, "\r\n");
    }
    wd_buf_puts(&b, "connection: close\r\n" PAD_NAME ": ");
    size_t tail = 4; /* "\r\n\r\n" */
    if (b.n + tail < prev) {
        size_t pad = prev - b.n - tail;
        if (wd_buf_reserve(&b, pad)) {
            memset(b.p + b.n, 'x', pad);
            b.n += pad;
        }
    }
    wd_buf_puts(&b, "\r\n\r\n");
    memo_forget(); /* the input changes */
    h2o_buffer_t **in = &fc->sock->input;
    (*in)->size = 0;
    h2o_iovec_t room = b.oom || b.p == NULL ? h2o_iovec_init(NULL, 0) : h2o_buffer_reserve(in, b.n);
    if (room.base != NULL) {
        memcpy(room.base, b.p, b.n);
        (*in)->size = b.n;
    } else {
        fc->kill = true; /* out of memory: nothing is left to parse, and the connection closes at its next read */
    }
    wd_buf_free(&b);
    fc->h1 = H1_DONE;
}

/* A refusal of the request whose head is in the input: answered in the API's shape by the handler (which
 * gets a stand-in GET), then the connection closes. */
static void h1_refuse(struct fconn *fc, size_t prev, enum early why, int status, const char *type, const char *msg)
{
    count_early(why);
    fc->refuse_status = status;
    fc->refuse_type = type;
    fc->refuse_msg = msg;
    static const char line[] = "GET / HTTP/1.1";
    h1_rewrite(fc, prev, line, sizeof(line) - 1, NULL, 0);
    unsigned long long sup;
    if (log_limited(L_EARLY, &sup))
        wd_logf(WD_LOG_INFO, "", "request refused on its headers: %d %s (%llu more since the last line)", status, msg, sup);
}

static bool key_valid(struct fconn *fc, const char *xk, size_t xkn, const char *az, size_t azn)
{
    struct wd_str presented = WD_STR_NULL;
    if (xk != NULL)
        presented = (struct wd_str){xk, xkn};
    else if (az != NULL && azn > 7 && strncasecmp(az, "Bearer ", 7) == 0)
        presented = (struct wd_str){az + 7, azn - 7};
    if (presented.n == 0 || fc->w == NULL || fc->w->gw.rt == NULL)
        return false;
    return wd_gateway_key_ok(&fc->w->gw, presented);
}

static bool path_takes_body(const char *path, size_t len)
{
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    size_t query_at, *norm = NULL;
    h2o_iovec_t p = h2o_url_normalize_path(&pool, path, len, &query_at, &norm);
    bool ok = wd_gateway_route_takes_body(p.base, query_at != SIZE_MAX && query_at < p.len ? query_at : p.len);
    h2o_mem_clear_pool(&pool);
    return ok;
}

static void h1_body_bytes(struct fconn *fc, const char *p, size_t n);

static size_t open_body_max(struct fconn *fc, const char *path, size_t len)
{
    if (fc->w == NULL || fc->w->gw.rt == NULL)
        return 0;
    h2o_mem_pool_t pool;
    h2o_mem_init_pool(&pool);
    size_t query_at, *norm = NULL;
    h2o_iovec_t p = h2o_url_normalize_path(&pool, path, len, &query_at, &norm);
    size_t m = wd_gateway_open_body_max(&fc->w->gw, p.base, query_at != SIZE_MAX && query_at < p.len ? query_at : p.len);
    h2o_mem_clear_pool(&pool);
    return m;
}

static void h1_head(struct fconn *fc, size_t nnew)
{
    h2o_buffer_t *in = fc->sock->input;
    const struct wd_config *cfg = fc->w->gw.rt->cfg;
    size_t prev = in->size - nnew;
    size_t look = in->size < H2O_MAX_REQLEN ? in->size : H2O_MAX_REQLEN;
    struct wd_field hdrs[H1_MAX_FIELDS + 1];
    size_t nh = H1_MAX_FIELDS + 1;
    const char *m, *path;
    size_t ml, pl;
    int minor;
    int r = real_parse(in->bytes, look, &m, &ml, &path, &pl, &minor, hdrs, &nh, prev);
    size_t head_limit = cfg->max_header_bytes + 8192; /* the request line and the field separators */
    if (head_limit > H2O_MAX_REQLEN - 65536)
        head_limit = H2O_MAX_REQLEN - 65536;
    if (r == -2) {
        if (in->size > head_limit)
            h1_refuse(fc, prev, E_HEADERS, 431, "invalid_request_error",
                      "request headers exceed the configured limit (limits.max_header_bytes)");
        return;
    }
    if (r == -1) {
        static const char pri[] = "PRI * HTTP/2";
        if (in->size >= sizeof(pri) - 1 && memcmp(in->bytes, pri, sizeof(pri) - 1) == 0)
            return; /* HTTP/2 with prior knowledge: libh2o takes it from here */
        bool crlf = in->size <= 4;
        for (size_t i = 0; crlf && i < in->size; i++)
            crlf = in->bytes[i] == '\r' || in->bytes[i] == '\n';
        if (crlf)
            return;
        /* too many fields, or not HTTP at all */
        struct wd_field *many = malloc(sizeof(*many) * H1_PARSE_FIELDS);
        size_t nm = H1_PARSE_FIELDS;
        int r2 = many ? real_parse(in->bytes, look, &m, &ml, &path, &pl, &minor, many, &nm, 0) : -1;
        free(many);
        if (r2 != -1)
            h1_refuse(fc, prev, E_HEADERS, 431, "invalid_request_error",
                      "request has more than 100 header fields");
        else
            h1_refuse(fc, prev, E_MALFORMED, 400, "invalid_request_error", "malformed HTTP request");
        return;
    }
    /* a complete head of r bytes */
    if (nh > H1_MAX_FIELDS) {
        h1_refuse(fc, prev, E_HEADERS, 431, "invalid_request_error", "request has more than 100 header fields");
        return;
    }
    if (memo.armed) { /* kept for libh2o's parse of this read, unless a refusal below rewrites the input */
        memo.kept = true;
        memo.buf = in->bytes, memo.len = look, memo.last_len = prev;
        memo.r = r, memo.minor = minor;
        memo.m = m, memo.ml = ml, memo.path = path, memo.pl = pl, memo.nh = nh;
        memcpy(memo.hdrs, hdrs, nh * sizeof(*hdrs));
    }
    size_t fields = 0;
    for (size_t i = 0; i < nh; i++)
        fields += hdrs[i].name_len + hdrs[i].value_len + 4;
    if (fields > cfg->max_header_bytes) {
        h1_refuse(fc, prev, E_HEADERS, 431, "invalid_request_error",
                  "request headers exceed the configured limit (limits.max_header_bytes)");
        return;
    }
    /* framing, RFC 9112 section 6 */
    struct wd_h1_body body;
    const char *why;
    if (wd_h1_body_framing(hdrs, nh, minor, &body, &why) != 0) {
        h1_refuse(fc, prev, E_FRAMING, 400, "invalid_request_error", why);
        return;
    }
    uint64_t len = body.length;
    bool chunked = body.chunked;
    if (!chunked && in->size - (size_t)r >= len) {
        /* no body, or all of it is here already (it cost what it cost): the handler decides everything, and an
         * error keeps the connection */
        fc->h1 = H1_DONE;
        return;
    }
    /* a body: only a request that may send one reads it */
    bool post = ml == 4 && memcmp(m, "POST", 4) == 0;
    /* the sign-in's form routes take a small body from anyone (Claude Code has no credential yet) */
    size_t open_max = post ? open_body_max(fc, path, pl) : 0;
    if (open_max > 0 && (chunked || len > open_max)) {
        h1_refuse(fc, prev, E_TOO_LARGE, 413, "request_too_large", "a sign-in form is at most 16 KiB, with a Content-Length");
        return;
    }
    if (!post || (open_max == 0 && !path_takes_body(path, pl))) {
        count_early(E_NO_BODY_ROUTE);
        char line[H2O_MAX_REQLEN];
        int n = snprintf(line, sizeof(line), "%.*s %.*s HTTP/1.%d", (int)ml, m, (int)pl, path, minor);
        h1_rewrite(fc, prev, line, (size_t)n, hdrs, nh);
        return;
    }
    if (open_max == 0 && !key_valid(fc, body.api_key, body.api_key_len, body.authorization, body.authorization_len)) {
        count_early(E_UNAUTH);
        char line[H2O_MAX_REQLEN];
        int n = snprintf(line, sizeof(line), "%.*s %.*s HTTP/1.%d", (int)ml, m, (int)pl, path, minor);
        h1_rewrite(fc, prev, line, (size_t)n, hdrs, nh);
        return;
    }
    if (len > cfg->max_body_bytes) {
        h1_refuse(fc, prev, E_TOO_LARGE, 413, "request_too_large",
                  "request body exceeds the configured limit (limits.max_body_bytes)");
        return;
    }
    size_t want = chunked ? max_conn_body : (size_t)len;
    if (!budget_take(want)) {
        unsigned long long sup;
        if (log_limited(L_BUSY, &sup))
            wd_logf(WD_LOG_WARN, "", "request refused: limits.max_pending_body_bytes (%zu) in use (%llu more since the last line)",
                    max_pending, sup);
        h1_refuse(fc, prev, E_BUSY, 503, "overloaded_error", "too many request bodies in flight; retry shortly");
        return;
    }
    fc->reserved = want;
    fc->h1 = chunked ? H1_CHUNKED : H1_CL;
    fc->h1_left = len;
    memset(&fc->chunked, 0, sizeof(fc->chunked));
    if (in->size > (size_t)r)
        h1_body_bytes(fc, in->bytes + r, in->size - (size_t)r);
}

/* The body's framing as it arrives. A chunked framing error (RFC 9112 section 7.1: CRLF everywhere) is answered
 * 400 by the handler once libh2o has the request (libh2o would accept a bare LF), and the connection closes
 * after it, so nothing after the body is ever taken as a request. */
static void h1_body_bytes(struct fconn *fc, const char *p, size_t n)
{
    if (fc->h1 == H1_CL) {
        size_t k = n < fc->h1_left ? n : (size_t)fc->h1_left;
        fc->h1_left -= k;
        if (fc->h1_left == 0) {
            fc->h1 = H1_DONE;
            budget_give(&fc->reserved);
        }
        return;
    }
    if (fc->h1 != H1_CHUNKED)
        return;
    size_t used;
    int r = wd_chunked_feed(&fc->chunked, p, n, &used);
    if (r == WD_CHUNKED_DONE) {
        fc->h1 = H1_DONE;
        budget_give(&fc->reserved);
    } else if (r == WD_CHUNKED_BAD) {
        count_early(E_BARE_LF);
        fc->refuse_status = 400;
        fc->refuse_type = "invalid_request_error";
        fc->refuse_msg = "invalid chunked framing: every chunk line must end with CRLF";
        fc->h1 = H1_DONE; /* libh2o reads on to its own end of the body; the reservation is kept until then */
    }
}

static void h1_new_bytes(struct fconn *fc, size_t nnew)
{
    h2o_buffer_t *in = fc->sock->input;
    if (nnew > in->size)
        nnew = in->size;
    if (fc->h1 == H1_HEAD)
        h1_head(fc, nnew);
    else if (fc->h1 != H1_DONE)
        h1_body_bytes(fc, in->bytes + in->size - nnew, nnew);
}

/* ---- HTTP/2 ---- */

static ssize_t expect_calm(h2o_http2_conn_t *conn, const uint8_t *src, size_t len, const char **err_desc)
{
    *err_desc = "too many stream resets or open streams";
    return H2O_HTTP2_ERROR_ENHANCE_YOUR_CALM;
}

static void h2_calm(struct fconn *fc, h2o_http2_conn_t *conn, enum calm why)
{
    if (conn->_read_expect == expect_calm)
        return;
    conn->_read_expect = expect_calm; /* libh2o answers the next frame it parses with GOAWAY and closes */
    atomic_fetch_add(&n_calm[why], 1);
    unsigned long long sup;
    if (log_limited(L_CALM, &sup))
        wd_logf(WD_LOG_WARN, "", "HTTP/2 connection closed with GOAWAY (ENHANCE_YOUR_CALM): %s (%llu more since the last line)",
                why == C_RESETS ? "too many stream resets (limits.http2_max_resets)" : "too many open streams", sup);
}

struct h2scan {
    struct fconn *fc;
    h2o_http2_conn_t *conn;
    unsigned opens, resets;
    bool data;
};

static void h2_frame(void *ctx, const struct wd_h2_frame *f)
{
    struct h2scan *sc = ctx;
    h2o_http2_conn_t *conn = sc->conn;
    if (f->type == H2O_HTTP2_FRAME_TYPE_DATA)
        sc->data = true;
    if (f->type == H2O_HTTP2_FRAME_TYPE_HEADERS && f->stream_id > conn->pull_stream_ids.max_open) {
        sc->opens++;
        if (!(f->flags & H2O_HTTP2_FRAME_FLAG_END_STREAM))
            sc->fc->gate_pending = true;
    } else if (f->type == H2O_HTTP2_FRAME_TYPE_RST_STREAM && f->stream_id != 0) {
        h2o_http2_stream_t *s = h2o_http2_conn_get_stream(conn, f->stream_id);
        if ((s != NULL && s->state < H2O_HTTP2_STREAM_STATE_END_STREAM) || f->stream_id > conn->pull_stream_ids.max_open) {
            sc->resets++;
            if (doomed.n < DOOMED_MAX)
                doomed.sid[doomed.n++] = f->stream_id;
        }
    }
}

static void h2_pre(struct fconn *fc, size_t nnew)
{
    h2o_http2_conn_t *conn = fc->sock->data;
    h2o_buffer_t *in = fc->sock->input;
    size_t span = nnew + fc->partial;
    size_t pos = span < in->size ? in->size - span : 0;
    const uint8_t *b = (const uint8_t *)in->bytes;
    if (fc->resync) {
        /* whatever libh2o left unparsed starts a frame, or the client preface it has not had whole yet (a
         * frame cannot start with "PRI": its length would be over 5 MB) */
        static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
        size_t k = in->size < 24 ? in->size : 24;
        fc->resync = false;
        pos = 0;
        fc->preface_left = k > 0 && memcmp(in->bytes, preface, k) == 0 ? 24 : 0;
    }
    doomed.conn = conn;
    doomed.n = 0;
    if (fc->preface_left != 0) {
        size_t k = in->size - pos < fc->preface_left ? in->size - pos : fc->preface_left;
        pos += k;
        fc->preface_left -= k;
    }
    struct h2scan sc = {.fc = fc, .conn = conn};
    if (fc->preface_left == 0)
        pos += wd_h2_frames(b + pos, in->size - pos, h2_frame, &sc);
    unsigned opens = sc.opens, resets = sc.resets;
    fc->data_seen = sc.data;
    fc->partial = in->size - pos;
    if (resets != 0) {
        uint64_t t = now_ns();
        if (t - fc->reset_t0 > H2_RESET_WINDOW_NS) {
            fc->reset_t0 = t;
            fc->resets = 0;
        }
        fc->resets += resets;
        if (fc->resets > max_resets)
            h2_calm(fc, conn, C_RESETS);
    }
    if (conn->num_streams.pull.open + opens > H2_MAX_OPEN_STREAMS + resets)
        h2_calm(fc, conn, C_STREAMS);
}

/* A stream whose request may not send a body goes to the handler now, with an empty one: the handler
 * answers it (401, 404) from its headers, and libh2o resets the stream if more DATA comes. */
static void h2_dispatch_now(h2o_http2_conn_t *conn, h2o_http2_stream_t *s)
{
    s->req.entity = h2o_iovec_init("", 0);
    h2o_http2_stream_set_state(conn, s, H2O_HTTP2_STREAM_STATE_REQ_PENDING);
    h2o_http2_stream_set_state(conn, s, H2O_HTTP2_STREAM_STATE_SEND_HEADERS);
    if (conn->pull_stream_ids.max_processed < s->stream_id)
        conn->pull_stream_ids.max_processed = s->stream_id;
    /* a request is being handled: the connection is not idle (libh2o links the idle timeout again when its
     * last request is done) */
    if (h2o_timeout_is_linked(&conn->_timeout_entry))
        h2o_timeout_unlink(&conn->_timeout_entry);
    h2o_process_request(&s->req);
}

static bool approved(const struct fconn *fc, uint32_t sid)
{
    for (unsigned i = 0; i < fc->napproved; i++)
        if (fc->approved[i] == sid)
            return true;
    return false;
}

/* Every stream receiving a body is judged until it is let through: a stream without a valid key goes to the
 * handler at once (its body is never read); one whose route takes no body as soon as a body byte comes (a
 * client may end a GET with an empty DATA frame). */
static void h2_gate(struct fconn *fc, h2o_http2_conn_t *conn)
{
    uint32_t ids[H2_MAX_OPEN_STREAMS * 2], keep[H2_APPROVED_MAX];
    size_t n = 0, nkeep = 0;
    h2o_http2_stream_t *s;
    kh_foreach_value(conn->streams, s, {
        if (s->state == H2O_HTTP2_STREAM_STATE_RECV_BODY && !h2o_http2_stream_is_push(s->stream_id)) {
            if (approved(fc, s->stream_id)) {
                if (nkeep < H2_APPROVED_MAX)
                    keep[nkeep++] = s->stream_id;
            } else if (n < sizeof(ids) / sizeof(ids[0])) {
                ids[n++] = s->stream_id;
            }
        }
    });
    memcpy(fc->approved, keep, nkeep * sizeof(keep[0]));
    fc->napproved = (unsigned)nkeep;
    for (size_t i = 0; i < n; i++) {
        if ((s = h2o_http2_conn_get_stream(conn, ids[i])) == NULL || s->state != H2O_HTTP2_STREAM_STATE_RECV_BODY)
            continue;
        h2o_req_t *req = &s->req;
        bool post = h2o_memis(req->input.method.base, req->input.method.len, H2O_STRLIT("POST"));
        size_t open_max = post ? open_body_max(fc, req->input.path.base, req->input.path.len) : 0;
        if (open_max > 0) { /* a sign-in form: from anyone, when it says it is small */
            if (s->_expected_content_length != SIZE_MAX && s->_expected_content_length <= open_max &&
                fc->napproved < H2_APPROVED_MAX)
                fc->approved[fc->napproved++] = s->stream_id;
            else
                h2_dispatch_now(conn, s); /* the handler answers 413 */
            continue;
        }
        if (!post || !path_takes_body(req->input.path.base, req->input.path.len)) {
            if (s->_req_body == NULL || s->_req_body->size == 0) {
                fc->gate_pending = true; /* judged again when DATA comes */
                continue;
            }
            count_early(E_NO_BODY_ROUTE);
            h2_dispatch_now(conn, s);
            continue;
        }
        ssize_t xi = h2o_find_header_by_str(&req->headers, H2O_STRLIT("x-api-key"), -1);
        ssize_t ai = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
        h2o_iovec_t xv = xi >= 0 ? req->headers.entries[xi].value : h2o_iovec_init(NULL, 0);
        h2o_iovec_t av = ai >= 0 ? req->headers.entries[ai].value : h2o_iovec_init(NULL, 0);
        if (!key_valid(fc, xv.base, xv.len, av.base, av.len)) {
            count_early(E_UNAUTH);
            h2_dispatch_now(conn, s);
        } else if (fc->napproved < H2_APPROVED_MAX) {
            fc->approved[fc->napproved++] = s->stream_id;
        } else {
            fc->gate_pending = true; /* judged again (and let through) once others are done */
        }
    }
}

/* Body bytes held by streams still receiving: per connection at most twice limits.max_body_bytes, and the
 * process within limits.max_pending_body_bytes; the largest stream past either is reset REFUSED_STREAM. */
static void h2_account(struct fconn *fc, h2o_http2_conn_t *conn)
{
    for (;;) {
        size_t sum = 0, big = 0;
        h2o_http2_stream_t *s, *largest = NULL;
        kh_foreach_value(conn->streams, s, {
            if (s->state == H2O_HTTP2_STREAM_STATE_RECV_BODY && s->_req_body != NULL) {
                sum += s->_req_body->size;
                if (s->_req_body->size >= big) {
                    big = s->_req_body->size;
                    largest = s;
                }
            }
        });
        if (sum >= fc->h2_pending)
            atomic_fetch_add(&pending_body, sum - fc->h2_pending);
        else
            atomic_fetch_sub(&pending_body, fc->h2_pending - sum);
        fc->h2_pending = sum;
        if (largest == NULL || (sum <= max_conn_body && atomic_load(&pending_body) <= max_pending))
            return;
        atomic_fetch_add(&n_h2_refused_streams, 1);
        unsigned long long sup;
        if (log_limited(L_BUSY, &sup))
            wd_logf(WD_LOG_WARN, "", "HTTP/2 stream refused: request bodies in flight over their bound "
                    "(limits.max_pending_body_bytes %zu, per connection %zu; %llu more since the last line)",
                    max_pending, max_conn_body, sup);
        h2o_http2_encode_rst_stream_frame(&conn->_write.buf, largest->stream_id, -H2O_HTTP2_ERROR_REFUSED_STREAM);
        h2o_http2_conn_request_write(conn);
        h2o_http2_stream_reset(conn, largest);
    }
}

static void h2_post(struct fconn *fc)
{
    h2o_http2_conn_t *conn = fc->sock->data;
    if (conn->state >= H2O_HTTP2_CONN_STATE_HALF_CLOSED)
        return;
    if (fc->gate_pending) {
        fc->gate_pending = false;
        h2_gate(fc, conn);
    }
    /* a walk of the streams only when body bytes came or are held (not on every read of a busy connection) */
    if (fc->h2_pending != 0 || fc->data_seen)
        h2_account(fc, conn);
}

static void front_on_read(h2o_socket_t *sock, const char *err)
{
    struct fconn *fc = fc_of(sock);
    if (fc == NULL) { /* cannot happen: only Warden's connections get this callback */
        h2o_conn_t *c = sock->data;
        h2o_socket_cb cb = c->callbacks->push_path != NULL ? h2_cb : h1_cb;
        if (cb != NULL)
            cb(sock, err);
        return;
    }
    if (err != NULL) {
        (fc->proto == P_H2 ? h2_cb : h1_cb)(sock, err);
        return;
    }
    if (fc->proto == P_H1) {
        if (!fc->kill) {
            memo.armed = true;
            h1_new_bytes(fc, sock->bytes_read);
            memo.armed = false;
        }
        h1_cb(sock, fc->kill ? h2o_socket_error_closed : NULL);
        memo_forget(); /* libh2o took it, or did not parse (a body still to come): not for a later read */
        return;
    }
    if (((h2o_http2_conn_t *)sock->data)->state >= H2O_HTTP2_CONN_STATE_IS_CLOSING) {
        /* libh2o reads on while its last write is in flight but parses nothing: the input would only grow */
        h2o_socket_read_stop(sock);
        return;
    }
    if (fc->gate_pending) /* streams of an earlier read (h2o_http2_accept parsed it at once) */
        h2_post(fc);
    h2_pre(fc, sock->bytes_read);
    h2_cb(sock, NULL);
    doomed.conn = NULL;
    if (!fc->closed)
        h2_post(fc);
}

bool wd_front_stream_doomed(h2o_req_t *req)
{
    if (req->version < 0x200 || doomed.conn == NULL || req->conn != doomed.conn)
        return false;
    h2o_http2_stream_t *s = H2O_STRUCT_FROM_MEMBER(h2o_http2_stream_t, req, req);
    for (unsigned i = 0; i < doomed.n; i++)
        if (doomed.sid[i] == s->stream_id) {
            atomic_fetch_add(&n_doomed, 1);
            return true;
        }
    return false;
}

bool wd_front_refusal(h2o_req_t *req, int *status, const char **type, const char **message)
{
    if (req->version >= 0x200 || req->conn->callbacks->get_socket == NULL)
        return false;
    h2o_socket_t *sock = req->conn->callbacks->get_socket(req->conn);
    struct fconn *fc = sock != NULL ? fc_of(sock) : NULL;
    if (fc == NULL || fc->refuse_status == 0)
        return false;
    *status = fc->refuse_status;
    *type = fc->refuse_type;
    *message = fc->refuse_msg;
    fc->refuse_status = 0;
    req->http1_is_persistent = 0;
    return true;
}

/* ---- start-up ---- */

size_t wd_front_max_connections(void) { return max_conns; }

int wd_front_init(size_t max_connections, size_t max_pending_body_bytes, size_t max_body_bytes, unsigned http2_max_resets)
{
    real_read_start = (void (*)(h2o_socket_t *, h2o_socket_cb))dlsym(RTLD_NEXT, "h2o_socket_read_start");
    real_h1_accept = (void (*)(h2o_accept_ctx_t *, h2o_socket_t *, struct timeval))dlsym(RTLD_NEXT, "h2o_http1_accept");
    real_h2_accept = (void (*)(h2o_accept_ctx_t *, h2o_socket_t *, struct timeval))dlsym(RTLD_NEXT, "h2o_http2_accept");
    real_sock_close = (void (*)(h2o_socket_t *))dlsym(RTLD_NEXT, "h2o_socket_close");
    real_parse = (phr_parse_request_fn)dlsym(RTLD_NEXT, "phr_parse_request");
    void *bound = dlsym(RTLD_DEFAULT, "h2o_socket_read_start");
    if (real_read_start == NULL || real_h1_accept == NULL || real_h2_accept == NULL || real_sock_close == NULL ||
        real_parse == NULL || dlsym(RTLD_DEFAULT, "phr_parse_request") != (void *)phr_parse_request ||
        dlsym(RTLD_DEFAULT, "h2o_socket_close") != (void *)h2o_socket_close ||
        bound != (void *)h2o_socket_read_start || dlsym(RTLD_DEFAULT, "h2o_http1_accept") != (void *)h2o_http1_accept ||
        dlsym(RTLD_DEFAULT, "h2o_http2_accept") != (void *)h2o_http2_accept) {
        wd_log(WD_LOG_ERROR, "the front guard is not in front of libh2o (symbol interposition failed); refusing to start", "");
        return -1;
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
        rlim_t was = rl.rlim_cur;
        if (rl.rlim_cur < rl.rlim_max) {
            rl.rlim_cur = rl.rlim_max;
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                rl.rlim_cur = was;
        }
        char f[128];
        snprintf(f, sizeof(f), "\"soft\":%llu,\"hard\":%llu,\"was\":%llu", (unsigned long long)rl.rlim_cur,
                 (unsigned long long)rl.rlim_max, (unsigned long long)was);
        wd_log(WD_LOG_INFO, "file descriptor limit", f);
    } else {
        rl.rlim_cur = 1024;
    }
    size_t nofile = rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > (1u << 24) ? (1u << 24) : (size_t)rl.rlim_cur;
    /* each client connection may hold a provider connection too; the rest is for the database, the logs,
     * the spool and the exporter */
    size_t room = nofile > 256 ? (nofile - 128) / 2 : nofile / 4;
    if (room == 0)
        room = 1;
    max_conns = max_connections == 0 ? room : max_connections;
    if (max_conns > room) {
        wd_logf(WD_LOG_WARN, "", "limits.max_connections %zu is more than the descriptor limit allows (%zu); using %zu",
                max_conns, room, room);
        max_conns = room;
    }
    max_pending = max_pending_body_bytes;
    max_conn_body = max_body_bytes * 2;
    max_resets = http2_max_resets;
    return 0;
}

void wd_front_free(void) {}

static void family(struct wd_buf *b, const char *name, const char *type, const char *help)
{
    wd_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void wd_front_render_metrics(struct wd_buf *b)
{
    family(b, "warden_connections_open", "gauge", "Client connections open.");
    wd_buf_printf(b, "warden_connections_open %zu\n", atomic_load(&nconns));
    family(b, "warden_connections_max", "gauge", "limits.max_connections in force.");
    wd_buf_printf(b, "warden_connections_max %zu\n", max_conns);
    family(b, "warden_connections_refused_total", "counter", "Connections closed at accept: limits.max_connections reached.");
    wd_buf_printf(b, "warden_connections_refused_total %llu\n", atomic_load(&n_conn_refused));
    family(b, "warden_fd_exhausted_total", "counter",
           "Client accepts and provider connections that failed for want of a file descriptor.");
    wd_buf_printf(b, "warden_fd_exhausted_total{where=\"accept\"} %llu\n", atomic_load(&n_fd_exhausted));
    wd_buf_printf(b, "warden_fd_exhausted_total{where=\"provider\"} %llu\n", wd_upstream_fd_exhausted());
    family(b, "warden_requests_refused_early_total", "counter", "Requests answered on their headers, their body never read.");
    for (int i = 0; i < E__N; i++)
        wd_buf_printf(b, "warden_requests_refused_early_total{reason=\"%s\"} %llu\n", early_names[i],
                      atomic_load(&n_early[i]));
    family(b, "warden_pending_body_bytes", "gauge", "Request body bytes received and not yet handed to a handler.");
    wd_buf_printf(b, "warden_pending_body_bytes %zu\n", atomic_load(&pending_body));
    family(b, "warden_http2_goaway_total", "counter", "HTTP/2 connections closed with ENHANCE_YOUR_CALM.");
    for (int i = 0; i < C__N; i++)
        wd_buf_printf(b, "warden_http2_goaway_total{reason=\"%s\"} %llu\n", calm_names[i], atomic_load(&n_calm[i]));
    family(b, "warden_http2_streams_refused_total", "counter", "HTTP/2 streams reset REFUSED_STREAM: bodies over their bound.");
    wd_buf_printf(b, "warden_http2_streams_refused_total %llu\n", atomic_load(&n_h2_refused_streams));
    family(b, "warden_http2_streams_doomed_total", "counter",
           "HTTP/2 requests reset in the read that opened them: never started.");
    wd_buf_printf(b, "warden_http2_streams_doomed_total %llu\n", atomic_load(&n_doomed));
}
