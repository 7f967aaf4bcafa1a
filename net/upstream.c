/* Upstream HTTP client: libcurl's multi_socket API driven by one libuv loop per worker. curl says
 * which sockets to watch (uv_poll) and when to wake it (uv_timer); this file adds the per-transfer
 * first-byte and idle deadlines curl has no notion of, and makes cancel safe from any callback. */

#include "net/upstream.h"
#include "lib/log.h"

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <errno.h>
#include <stdatomic.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* Reset easy handles kept for reuse: curl_easy_init costs several allocations per transfer. Sized above
 * the concurrency a worker commonly sees, or a burst of 32 frees half its handles and allocates them
 * again a moment later. */
#define UP_POOL_MAX 64

/* One socket curl watches through us. A connection's socket (opened by up_on_open_socket) keeps its
 * poll handle from the moment it is opened until curl closes it (up_on_close_socket): a kept-alive
 * connection goes through CURL_POLL_REMOVE at the end of every transfer, and re-creating the handle
 * for the next one cost an ioctl and several epoll_ctl calls per request. Any other socket curl asks
 * us to watch (the resolver's wake-up pair, which curl closes without the callback) lives from curl's
 * first interest until CURL_POLL_REMOVE, as before. */
struct up_sock {
    uv_poll_t poll;
    struct wd_upstream *up;
    curl_socket_t fd;
    int events;                  /* CURL_POLL_IN/OUT as last requested, to report errors back */
    int watching;                /* UV_READABLE/WRITABLE the handle is started with; 0 when stopped */
    bool conn;                   /* a connection's socket: parked on CURL_POLL_REMOVE, closed with it */
    bool closing;                /* uv_close called; freed by the close callback */
    struct up_sock *prev, *next; /* up->socks, so wd_upstream_free can close what curl forgets */
};

/* What the per-transfer timer is currently counting down. */
enum xfer_phase {
    XP_QUEUED,      /* zero-delay kick: added to the multi outside of the caller's stack */
    XP_WAIT_FIRST,  /* first_byte_timeout_ms since start, until the first response header line */
    XP_RECEIVING,   /* idle_timeout_ms since the last received byte */
};

struct wd_upstream_xfer {
    struct wd_upstream *up;
    CURL *easy;                  /* NULL once released */
    uv_timer_t timer;            /* the kick, then the first-byte deadline, then the idle deadline */
    struct wd_upstream_xfer *prev, *next; /* up->live */
    void *ctx;
    void (*on_response)(void *ctx, int status, long retry_after_s, const char *content_type);
    void (*on_data)(void *ctx, const char *p, size_t n);
    void (*on_done)(void *ctx, enum wd_upstream_result res, const char *detail);
    void (*on_flush)(void *ctx);
    struct wd_upstream_xfer *flush_next; /* up->flushq while flush_queued */
    uint64_t t_start;            /* uv_now at wd_upstream_start */
    uint64_t last_rx;            /* uv_now at the last header line or body piece */
    unsigned first_byte_ms;
    unsigned idle_ms;
    long retry_after;            /* of the response being parsed; -1 when absent */
    const char *body;            /* the request body (the caller's), sent through xfer_on_read */
    size_t body_len;
    size_t body_pos;             /* bytes of body handed to curl so far */
    size_t max_ok, max_err;      /* body caps for a 2xx and for any other status; 0: none */
    size_t cap;                  /* the cap of the response being received (0: none) */
    size_t rx_body;              /* response body bytes received */
    enum xfer_phase phase;
    const char *setup_err;       /* request rejected at start; reported through on_done later */
    bool in_multi;               /* added to up->multi */
    bool responded;              /* on_response delivered; later header lines are trailers */
    bool cancelled;              /* no callback may run any more; reaped when curl is off the stack */
    bool finished;               /* released from curl (on_done running or done); cancel is a no-op */
    bool flush_queued;           /* on up->flushq: on_data ran in the current pass */
    bool too_large;              /* the body passed x->cap: xfer_on_write stopped the transfer */
    bool resend_refused;         /* curl asked to rewind the sent body to send it again */
    char errbuf[CURL_ERROR_SIZE];
    char detail[CURL_ERROR_SIZE + 64];
    size_t hdrs_bytes;           /* the slots and strings below: wiped before the block is freed (a header may
                                    carry the provider's credential) */
    /* The request headers as curl_slist nodes whose strings follow the array in the same block:
     * one allocation instead of two per header with curl_slist_append. */
    struct curl_slist hdrs[];
};

struct wd_upstream {
    uv_loop_t *loop;
    CURLM *multi;                /* NULL after teardown */
    uv_timer_t timer;            /* curl's own deadline (CURLMOPT_TIMERFUNCTION) */
    struct wd_upstream_xfer *live; /* transfers not yet released, queued ones included */
    struct up_sock *socks;       /* poll handles not yet closed */
    struct up_sock **byfd;       /* socks by descriptor, for the connection sockets curl hands back */
    size_t nbyfd;
    struct wd_upstream_xfer *flushq; /* transfers owed an on_flush once curl has unwound */
    CURL *pool[UP_POOL_MAX];
    size_t npool;
    unsigned nhandles;           /* uv handles not yet through their close callback; up dies at 0 */
    unsigned busy;               /* >0 while curl or user code is on the stack: curl forbids
                                  * curl_multi_remove_handle inside its callbacks, so cancel defers */
    bool reap_needed;            /* some live transfer is cancelled and still attached to curl */
    bool free_requested;         /* wd_upstream_free ran while busy; tear down when unwound */
    bool closing;                /* torn down; freed when the last handle has closed */
};

static int sock_watch(struct up_sock *sk, int ev);
static void sock_on_poll(uv_poll_t *h, int status, int events);

int wd_upstream_global_init(void)
{
    return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void wd_upstream_global_cleanup(void)
{
    curl_global_cleanup();
}

/* ---- handle lifetime ---- */

static void up_handle_gone(struct wd_upstream *up)
{
    if (--up->nhandles == 0 && up->closing) {
        free(up->byfd);
        free(up);
    }
}

static void up_on_timer_closed(uv_handle_t *h)
{
    up_handle_gone(h->data);
}

static void sock_on_closed(uv_handle_t *h)
{
    struct up_sock *sk = h->data;
    struct wd_upstream *up = sk->up;
    free(sk);
    up_handle_gone(up);
}

static void sock_close(struct up_sock *sk)
{
    struct wd_upstream *up = sk->up;
    if (sk->closing)
        return;
    sk->closing = true;
    if (sk->prev)
        sk->prev->next = sk->next;
    else
        up->socks = sk->next;
    if (sk->next)
        sk->next->prev = sk->prev;
    sk->prev = sk->next = NULL;
    if ((size_t)sk->fd < up->nbyfd && up->byfd[sk->fd] == sk)
        up->byfd[sk->fd] = NULL;
    /* uv_close stops the poll at once, so curl may reuse the descriptor number right away. */
    uv_close((uv_handle_t *)&sk->poll, sock_on_closed);
}

static void flushq_remove(struct wd_upstream *up, struct wd_upstream_xfer *x)
{
    if (!x->flush_queued)
        return;
    for (struct wd_upstream_xfer **pp = &up->flushq; *pp; pp = &(*pp)->flush_next) {
        if (*pp == x) {
            *pp = x->flush_next;
            break;
        }
    }
    x->flush_queued = false;
    x->flush_next = NULL;
}

static void xfer_wipe_free(struct wd_upstream_xfer *x)
{
    OPENSSL_cleanse(x->hdrs, x->hdrs_bytes);
    free(x);
}

static void xfer_on_closed(uv_handle_t *h)
{
    struct wd_upstream_xfer *x = h->data;
    struct wd_upstream *up = x->up;
    flushq_remove(up, x);
    xfer_wipe_free(x);
    up_handle_gone(up);
}

static CURL *up_easy_get(struct wd_upstream *up)
{
    if (up->npool > 0)
        return up->pool[--up->npool];
    return curl_easy_init();
}

static void up_easy_put(struct wd_upstream *up, CURL *e)
{
    if (!up->closing && up->npool < UP_POOL_MAX) {
        /* Keeps nothing of the old request; connections live in the multi's cache, not here. */
        curl_easy_reset(e);
        up->pool[up->npool++] = e;
    } else {
        curl_easy_cleanup(e);
    }
}

/* Detaches x from curl and from up->live, with no callback. abort_conn: the exchange did not
 * finish, so its HTTP/1.1 connection must close (the server sees the client leave); on a shared
 * HTTP/2 connection curl resets just the stream and closes the connection only if it was the last. */
static void xfer_release(struct wd_upstream_xfer *x, bool abort_conn)
{
    struct wd_upstream *up = x->up;
    x->finished = true;
    uv_timer_stop(&x->timer);
    if (x->easy) {
        if (x->in_multi) {
            if (abort_conn)
                curl_easy_setopt(x->easy, CURLOPT_FORBID_REUSE, 1L);
            curl_multi_remove_handle(up->multi, x->easy);
            x->in_multi = false;
        }
        up_easy_put(up, x->easy);
        x->easy = NULL;
    }
    if (x->prev)
        x->prev->next = x->next;
    else
        up->live = x->next;
    if (x->next)
        x->next->prev = x->prev;
    x->prev = x->next = NULL;
}

static void xfer_close(struct wd_upstream_xfer *x)
{
    uv_close((uv_handle_t *)&x->timer, xfer_on_closed);
}

/* Releases x and reports the outcome. Only with curl off the stack (busy may be >0 for user code). */
static void xfer_finish(struct wd_upstream_xfer *x, enum wd_upstream_result res, const char *detail,
                        bool abort_conn)
{
    struct wd_upstream *up = x->up;
    xfer_release(x, abort_conn);
    /* x stays allocated until xfer_on_closed, so detail may point into it during on_done. */
    if (x->on_done) {
        up->busy++;
        x->on_done(x->ctx, res, detail ? detail : "");
        up->busy--;
    }
    xfer_close(x);
}

static void up_teardown(struct wd_upstream *up)
{
    up->free_requested = false;
    up->closing = true;
    while (up->live) {
        struct wd_upstream_xfer *x = up->live;
        x->cancelled = true;
        xfer_release(x, true);
        xfer_close(x);
    }
    /* Stop watching while the descriptors are still open: curl_multi_cleanup closes cached
     * connections without always telling the socket callback. */
    for (struct up_sock *sk = up->socks; sk; sk = sk->next)
        sock_watch(sk, 0);
    curl_multi_cleanup(up->multi);
    up->multi = NULL;
    while (up->npool > 0)
        curl_easy_cleanup(up->pool[--up->npool]);
    while (up->socks)
        sock_close(up->socks);
    uv_close((uv_handle_t *)&up->timer, up_on_timer_closed);
}

/* ---- results ---- */

static enum wd_upstream_result up_map_code(CURLcode c, enum xfer_phase phase)
{
    switch (c) {
    case CURLE_OK:
        return WD_UP_OK;
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_USE_SSL_FAILED:
        return WD_UP_ERR_CONNECT;
    case CURLE_OPERATION_TIMEDOUT:
        /* No CURLOPT_TIMEOUT is set, so curl only times out while connecting (TCP + TLS). */
        return phase == XP_RECEIVING ? WD_UP_ERR_TRANSFER : WD_UP_ERR_CONNECT_TIMEOUT;
    default:
        return WD_UP_ERR_TRANSFER;
    }
}

/* curl's generic text plus its specific message. curl's messages name host and port but not the
 * path or headers; cutting at '?' keeps a query string (where some APIs put keys) out regardless. */
static const char *xfer_describe(struct wd_upstream_xfer *x, CURLcode c)
{
    const char *gen = curl_easy_strerror(c);
    if (x->errbuf[0] && strcmp(x->errbuf, gen) != 0)
        snprintf(x->detail, sizeof x->detail, "%s: %s", gen, x->errbuf);
    else
        snprintf(x->detail, sizeof x->detail, "%s", gen);
    x->detail[strcspn(x->detail, "?\r\n")] = '\0';
    return x->detail;
}

static void xfer_deliver_response(struct wd_upstream_xfer *x)
{
    long status = 0;
    char *ct = NULL;
    curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(x->easy, CURLINFO_CONTENT_TYPE, &ct);
    x->responded = true;
    x->cap = status >= 200 && status < 300 ? x->max_ok : x->max_err;
    if (x->on_response)
        x->on_response(x->ctx, (int)status, x->retry_after, ct);
}

/* One CURLMSG_DONE. */
static void xfer_complete(struct wd_upstream_xfer *x, CURLcode code)
{
    struct wd_upstream *up = x->up;
    if (x->cancelled) {
        xfer_release(x, true);
        xfer_close(x);
        return;
    }
    if (code != CURLE_OK) {
        enum wd_upstream_result res = up_map_code(code, x->phase);
        const char *detail = xfer_describe(x, code);
        if (x->too_large || code == CURLE_FILESIZE_EXCEEDED) {
            res = WD_UP_ERR_TOO_LARGE;
            detail = "response body exceeds its limit";
        } else if (x->resend_refused && code == CURLE_SEND_FAIL_REWIND) {
            res = WD_UP_ERR_RESEND;
            detail = "reused connection closed before any response; not re-sent";
        } else if (code == CURLE_COULDNT_CONNECT) {
            long oserr = 0;
            curl_easy_getinfo(x->easy, CURLINFO_OS_ERRNO, &oserr);
            if (oserr == EMFILE || oserr == ENFILE) /* counted and logged where the socket failed */
                detail = "out of file descriptors: cannot open a provider connection";
        }
        xfer_finish(x, res, detail, true);
        return;
    }
    if (!x->responded) {
        /* Not seen in practice (the header callback sees the blank line), but on_response must
         * precede on_done. */
        up->busy++;
        xfer_deliver_response(x);
        up->busy--;
        if (x->cancelled) {
            xfer_release(x, true);
            xfer_close(x);
            return;
        }
    }
    xfer_finish(x, WD_UP_OK, "", false);
}

static void up_reap(struct wd_upstream *up)
{
    up->reap_needed = false;
    struct wd_upstream_xfer *x = up->live;
    while (x) {
        struct wd_upstream_xfer *next = x->next;
        if (x->cancelled) {
            xfer_release(x, true);
            xfer_close(x);
        }
        x = next;
    }
}

/* Runs whenever curl and user code have unwound: the only place deferred cancels and a deferred
 * free take effect, and where completions are reported. */
static void up_after_curl(struct wd_upstream *up)
{
    if (up->busy || up->closing)
        return;
    for (;;) {
        if (up->free_requested) {
            up_teardown(up);
            return;
        }
        /* Reap first: removing a handle also drops its queued CURLMSG_DONE. */
        if (up->reap_needed)
            up_reap(up);
        int left;
        CURLMsg *m = curl_multi_info_read(up->multi, &left);
        if (!m) {
            if (!up->flushq)
                return;
            /* every completion is reported: now the transfers that only received data write it on */
            struct wd_upstream_xfer *x = up->flushq;
            up->flushq = x->flush_next;
            x->flush_queued = false;
            x->flush_next = NULL;
            if (!x->finished && !x->cancelled && x->on_flush) {
                up->busy++;
                x->on_flush(x->ctx);
                up->busy--;
            }
            continue;
        }
        if (m->msg != CURLMSG_DONE)
            continue;
        char *priv = NULL;
        CURLcode code = m->data.result; /* m dies with the handle: copy first */
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, &priv);
        if (priv)
            xfer_complete((struct wd_upstream_xfer *)priv, code);
    }
}

/* ---- curl <-> libuv ---- */

static void up_socket_action(struct wd_upstream *up, curl_socket_t fd, int flags)
{
    int running;
    up->busy++;
    curl_multi_socket_action(up->multi, fd, flags, &running);
    up->busy--;
    up_after_curl(up);
}

static struct up_sock *sock_new(struct wd_upstream *up, curl_socket_t fd, bool conn)
{
    if (fd < 0)
        return NULL;
    if ((size_t)fd >= up->nbyfd) {
        size_t n = up->nbyfd ? up->nbyfd : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct up_sock **b = realloc(up->byfd, n * sizeof *b);
        if (!b)
            return NULL;
        memset(b + up->nbyfd, 0, (n - up->nbyfd) * sizeof *b);
        up->byfd = b;
        up->nbyfd = n;
    }
    struct up_sock *sk = malloc(sizeof *sk);
    if (!sk)
        return NULL;
    if (uv_poll_init_socket(up->loop, &sk->poll, fd) != 0) {
        free(sk);
        return NULL;
    }
    sk->poll.data = sk;
    sk->up = up;
    sk->fd = fd;
    sk->events = 0;
    sk->watching = 0;
    sk->conn = conn;
    sk->closing = false;
    sk->prev = NULL;
    sk->next = up->socks;
    if (up->socks)
        up->socks->prev = sk;
    up->socks = sk;
    up->nhandles++;
    /* A stale entry can only be a handle already closing (its descriptor was closed and reused). */
    up->byfd[fd] = sk;
    return sk;
}

/* uv_poll_start stops the handle first, and libuv then re-adds the descriptor to epoll (an ADD that
 * fails with EEXIST and a MOD): two system calls even when nothing changes, so only real changes go
 * through. */
static int sock_watch(struct up_sock *sk, int ev)
{
    if (ev == sk->watching)
        return 0;
    if (ev == 0) {
        uv_poll_stop(&sk->poll);
        sk->watching = 0;
        return 0;
    }
    int rc = uv_poll_start(&sk->poll, ev, sock_on_poll);
    sk->watching = rc == 0 ? ev : 0;
    return rc;
}

static void sock_on_poll(uv_poll_t *h, int status, int events)
{
    struct up_sock *sk = h->data;
    int flags = 0;
    if (status < 0)
        sk->watching = 0; /* libuv stopped the handle */
    if (sk->conn && sk->events == 0) {
        /* A parked connection (no transfer on it) became readable: the server closed it or sent what
         * it should not. Curl finds out when it next considers the connection; stop watching so a
         * level-triggered EOF does not spin. */
        sock_watch(sk, 0);
        return;
    }
    if (status < 0) {
        /* libuv stops the handle on POLLERR; let curl try the socket and find the error itself. */
        flags = CURL_CSELECT_ERR;
        if (sk->events & CURL_POLL_IN)
            flags |= CURL_CSELECT_IN;
        if (sk->events & CURL_POLL_OUT)
            flags |= CURL_CSELECT_OUT;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    up_socket_action(sk->up, sk->fd, flags);
    /* Still wanted after the error (curl did not remove it): watch again rather than stall, since
     * curl only calls back when its wishes change. sk is freed only by its close callback. */
    if (status < 0 && !sk->closing && sk->events) {
        int ev = (sk->events & CURL_POLL_IN ? UV_READABLE : 0) |
                 (sk->events & CURL_POLL_OUT ? UV_WRITABLE : 0);
        sock_watch(sk, ev);
    }
}

static int up_on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct wd_upstream *up = userp;
    struct up_sock *sk = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (sk && sk->conn) {
            /* Parked until the next transfer on this connection or its close. A handle watching for
             * reads stays so (the next transfer wants the same, and changing costs system calls);
             * sock_on_poll stops it if the parked connection stirs. */
            sk->events = 0;
            if (sk->watching & UV_WRITABLE)
                sock_watch(sk, 0);
        } else if (sk) {
            sock_close(sk);
        }
        return 0;
    }
    if (up->closing)
        return 0;
    if (!sk && (size_t)fd < up->nbyfd && up->byfd[fd] && !up->byfd[fd]->closing) {
        sk = up->byfd[fd];
        curl_multi_assign(up->multi, fd, sk);
    }
    if (!sk) {
        /* -1 makes curl fail the transfers on this multi: each still gets its on_done. */
        if (!(sk = sock_new(up, fd, false)))
            return -1;
        curl_multi_assign(up->multi, fd, sk);
    }
    int ev = 0;
    if (what & CURL_POLL_IN)
        ev |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        ev |= UV_WRITABLE;
    sk->events = what;
    return sock_watch(sk, ev) == 0 ? 0 : -1;
}

/* Opens a connection's socket for curl and starts its poll handle's life (see struct up_sock). */
/* Provider connections that could not be opened for want of a file descriptor (README "Before a body is
 * read": warden_fd_exhausted_total{where="provider"}), and the next time such a failure may be logged. */
static _Atomic unsigned long long fd_exhausted, fd_log_next_ms, fd_log_skipped;

unsigned long long wd_upstream_fd_exhausted(void) { return atomic_load(&fd_exhausted); }

static void note_fd_exhausted(long oserr)
{
    atomic_fetch_add(&fd_exhausted, 1);
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    unsigned long long now = (unsigned long long)ts.tv_sec * 1000 + (unsigned long long)ts.tv_nsec / 1000000;
    unsigned long long next = atomic_load(&fd_log_next_ms);
    if (now < next || !atomic_compare_exchange_strong(&fd_log_next_ms, &next, now + 1000)) {
        atomic_fetch_add(&fd_log_skipped, 1);
        return;
    }
    wd_logf(WD_LOG_ERROR, "", "out of file descriptors: cannot open a provider connection (%s; %llu more since the last "
            "line); lower limits.max_connections or raise the descriptor limit", strerror((int)oserr),
            atomic_exchange(&fd_log_skipped, 0));
}

static curl_socket_t up_on_open_socket(void *clientp, curlsocktype purpose, struct curl_sockaddr *a)
{
    struct wd_upstream *up = clientp;
    curl_socket_t fd = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);
    if (fd == CURL_SOCKET_BAD && (errno == EMFILE || errno == ENFILE))
        note_fd_exhausted(errno); /* curl reports it only as "Couldn't connect" */
    if (fd == CURL_SOCKET_BAD || purpose != CURLSOCKTYPE_IPCXN || up->closing)
        return fd;
    /* Without a handle now, the socket is watched the old way (one handle per transfer). */
    (void)sock_new(up, fd, true);
    return fd;
}

static int up_on_close_socket(void *clientp, curl_socket_t fd)
{
    struct wd_upstream *up = clientp;
    /* The handle goes first, while the descriptor is still open: libuv takes it out of epoll, and the
     * number may be reused by the next socket as soon as it is closed. */
    if ((size_t)fd < up->nbyfd && up->byfd[fd])
        sock_close(up->byfd[fd]);
    return close(fd);
}

static void up_on_timeout(uv_timer_t *t)
{
    up_socket_action(t->data, CURL_SOCKET_TIMEOUT, 0);
}

static int up_on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct wd_upstream *up = userp;
    (void)multi;
    if (up->closing)
        return 0;
    if (timeout_ms < 0)
        uv_timer_stop(&up->timer);
    else
        /* Even 0 goes through the loop: curl must not be re-entered from its own callback. */
        uv_timer_start(&up->timer, up_on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

/* ---- per-transfer callbacks (always inside curl_multi_socket_action, so busy > 0) ---- */

static void xfer_on_timer(uv_timer_t *t);

static void xfer_note_rx(struct wd_upstream_xfer *x)
{
    x->last_rx = uv_now(x->up->loop);
    if (x->phase == XP_WAIT_FIRST) {
        x->phase = XP_RECEIVING;
        if (x->idle_ms)
            uv_timer_start(&x->timer, xfer_on_timer, x->idle_ms, 0);
        else
            uv_timer_stop(&x->timer);
    }
    /* Later bytes only move last_rx; the timer re-arms itself when it fires early, which keeps
     * the timer heap out of the per-chunk path. */
}

/* Retry-After is delta-seconds or an HTTP-date (RFC 9110 10.2.3); anything else counts as absent. */
static long up_parse_retry_after(const char *v, size_t n)
{
    char buf[64];
    while (n > 0 && (*v == ' ' || *v == '\t')) {
        v++;
        n--;
    }
    while (n > 0 && (v[n - 1] == ' ' || v[n - 1] == '\t' || v[n - 1] == '\r' || v[n - 1] == '\n'))
        n--;
    if (n == 0 || n >= sizeof buf)
        return -1;
    memcpy(buf, v, n);
    buf[n] = '\0';
    if (buf[0] >= '0' && buf[0] <= '9') {
        long s = 0;
        for (size_t i = 0; i < n; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                return -1;
            if (s > (LONG_MAX - 9) / 10)
                return LONG_MAX; /* absurd but well-formed: "a very long time" */
            s = s * 10 + (buf[i] - '0');
        }
        return s;
    }
    time_t t = curl_getdate(buf, NULL);
    if (t == (time_t)-1)
        return -1;
    time_t now = time(NULL);
    return t > now ? (long)(t - now) : 0;
}

static size_t xfer_on_header(char *p, size_t size, size_t n, void *ud)
{
    struct wd_upstream_xfer *x = ud;
    size_t len = size * n;
    if (x->cancelled)
        return 0;
    xfer_note_rx(x);
    if (x->responded)
        return len; /* trailers */
    if (len >= 5 && memcmp(p, "HTTP/", 5) == 0) {
        x->retry_after = -1; /* a new response block (after a 1xx) */
    } else if (len <= 2 && (p[0] == '\r' || p[0] == '\n')) {
        long status = 0;
        curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 100 && status < 200)
            return len; /* interim response; the final one follows */
        xfer_deliver_response(x);
        if (x->cancelled)
            return 0;
    } else if (len > 12 && strncasecmp(p, "retry-after:", 12) == 0) {
        x->retry_after = up_parse_retry_after(p + 12, len - 12);
    }
    return len;
}

static size_t xfer_on_write(char *p, size_t size, size_t n, void *ud)
{
    struct wd_upstream_xfer *x = ud;
    size_t len = size * n;
    if (x->cancelled)
        return 0; /* aborts this transfer inside curl; reaped once curl returns */
    xfer_note_rx(x);
    if (!x->responded) {
        xfer_deliver_response(x);
        if (x->cancelled)
            return 0;
    }
    if (x->cap && len > x->cap - x->rx_body) {
        /* Not one byte past the cap reaches the caller; curl fails the transfer (CURLE_WRITE_ERROR)
         * and xfer_complete closes the connection, so the provider stops sending at once. */
        x->too_large = true;
        return 0;
    }
    x->rx_body += len;
    if (len > 0 && x->on_data) {
        x->on_data(x->ctx, p, len);
        if (x->cancelled)
            return 0;
        if (x->on_flush && !x->flush_queued) {
            x->flush_queued = true;
            x->flush_next = x->up->flushq;
            x->up->flushq = x;
        }
    }
    return len;
}

/* The request body goes to curl through a read callback, not CURLOPT_POSTFIELDS, for one reason: when a
 * kept-alive connection dies after the request went out and before any answer, libcurl 7.88
 * (Curl_retry_request) sends the request again on a new connection, up to five times, without telling
 * anyone; with POSTFIELDS it needs nothing from us to do so. With a read callback it must first rewind
 * the body through CURLOPT_SEEKFUNCTION, which refuses: the transfer fails with CURLE_SEND_FAIL_REWIND
 * and the caller decides whether to send the request again, as a new, counted attempt. */
static size_t xfer_on_read(char *buf, size_t size, size_t n, void *ud)
{
    struct wd_upstream_xfer *x = ud;
    if (x->cancelled)
        return CURL_READFUNC_ABORT; /* the caller's body may be gone with it */
    size_t left = x->body_len - x->body_pos, len = size * n;
    if (len > left)
        len = left;
    if (len > 0)
        memcpy(buf, x->body + x->body_pos, len);
    x->body_pos += len;
    return len;
}

static int xfer_on_seek(void *ud, curl_off_t offset, int origin)
{
    struct wd_upstream_xfer *x = ud;
    if (offset == 0 && origin == SEEK_SET && x->body_pos == 0)
        return CURL_SEEKFUNC_OK; /* nothing was read yet: nothing can be sent twice */
    x->resend_refused = true;
    return CURL_SEEKFUNC_FAIL;
}

/* ---- transfer start and deadlines ---- */

/* Runs from the zero-delay kick, so the caller of wd_upstream_start has returned. */
static void xfer_begin(struct wd_upstream_xfer *x)
{
    struct wd_upstream *up = x->up;
    if (x->setup_err) {
        xfer_finish(x, WD_UP_ERR_TRANSFER, x->setup_err, false);
        return;
    }
    if (curl_multi_add_handle(up->multi, x->easy) != CURLM_OK) {
        xfer_finish(x, WD_UP_ERR_TRANSFER, "could not add the transfer to curl", false);
        return;
    }
    x->in_multi = true;
    x->phase = XP_WAIT_FIRST;
    if (x->first_byte_ms) {
        uint64_t spent = uv_now(up->loop) - x->t_start;
        uint64_t left = x->first_byte_ms > spent ? x->first_byte_ms - spent : 0;
        uv_timer_start(&x->timer, xfer_on_timer, left, 0);
    }
}

static void xfer_on_timer(uv_timer_t *t)
{
    struct wd_upstream_xfer *x = t->data;
    struct wd_upstream *up = x->up;
    switch (x->phase) {
    case XP_QUEUED:
        xfer_begin(x);
        break;
    case XP_WAIT_FIRST:
        xfer_finish(x, WD_UP_ERR_FIRST_BYTE_TIMEOUT, "no response within first_byte_timeout_ms", true);
        break;
    case XP_RECEIVING: {
        uint64_t quiet = uv_now(up->loop) - x->last_rx;
        if (quiet < x->idle_ms) {
            uv_timer_start(t, xfer_on_timer, x->idle_ms - quiet, 0);
            return;
        }
        xfer_finish(x, WD_UP_ERR_IDLE_TIMEOUT, "no data within idle_timeout_ms", true);
        break;
    }
    }
    up_after_curl(up);
}

/* A header name is an RFC 9110 token; values may not carry line breaks (header injection). */
static bool up_header_ok(const char *name, const char *value)
{
    if (!name || !*name || !value)
        return false;
    for (const char *p = name; *p; p++)
        if (*p <= ' ' || *p == ':' || *p >= 0x7f)
            return false;
    return strpbrk(value, "\r\n") == NULL;
}

static bool up_method_ok(const char *m)
{
    if (!*m)
        return false;
    for (; *m; m++)
        if (*m < 'A' || *m > 'Z')
            return false;
    return true;
}

/* Fills x->hdrs and the strings after them (headers already validated by the caller). */
static void xfer_build_headers(struct wd_upstream_xfer *x, const struct wd_upstream_req *req,
                               size_t nslots, bool drop_ct)
{
    char *s = (char *)&x->hdrs[nslots];
    size_t k = 0;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct wd_upstream_header *h = &req->headers[i];
        size_t nl = strlen(h->name), vl = strlen(h->value);
        memcpy(s, h->name, nl);
        if (vl > 0) {
            /* "Name: value"; an empty value needs curl's "Name;" spelling to be sent at all. */
            s[nl] = ':';
            s[nl + 1] = ' ';
            memcpy(s + nl + 2, h->value, vl + 1);
        } else {
            s[nl] = ';';
            s[nl + 1] = '\0';
        }
        x->hdrs[k].data = s;
        s += nl + 2 + vl + 1;
        k++;
    }
    /* "Expect:" stops curl's 100-continue round trip on large bodies; "Content-Type:" stops its
     * form-urlencoded default when the caller gave no type. */
    memcpy(s, "Expect:", 8);
    x->hdrs[k++].data = s;
    s += 8;
    if (drop_ct) {
        memcpy(s, "Content-Type:", 14);
        x->hdrs[k++].data = s;
    }
    for (size_t i = 0; i < k; i++)
        x->hdrs[i].next = i + 1 < k ? &x->hdrs[i + 1] : NULL;
}

static CURLcode xfer_setup_easy(struct wd_upstream_xfer *x, const struct wd_upstream_req *req,
                                bool tls)
{
    CURL *e = x->easy;
    const char *method = req->method ? req->method : "GET";
    bool is_post = strcmp(method, "POST") == 0;
    CURLcode rc;

#define UP_SET(opt, val)                                                                           \
    do {                                                                                           \
        if ((rc = curl_easy_setopt(e, opt, val)) != CURLE_OK)                                      \
            return rc;                                                                             \
    } while (0)
    UP_SET(CURLOPT_URL, req->url);
    UP_SET(CURLOPT_PROTOCOLS_STR, "http,https");
    UP_SET(CURLOPT_PRIVATE, (char *)x);
    UP_SET(CURLOPT_ERRORBUFFER, x->errbuf);
    UP_SET(CURLOPT_NOSIGNAL, 1L);
    UP_SET(CURLOPT_HEADERFUNCTION, xfer_on_header);
    UP_SET(CURLOPT_HEADERDATA, x);
    UP_SET(CURLOPT_WRITEFUNCTION, xfer_on_write);
    UP_SET(CURLOPT_WRITEDATA, x);
    UP_SET(CURLOPT_HTTPHEADER, &x->hdrs[0]);
    UP_SET(CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    UP_SET(CURLOPT_TCP_KEEPALIVE, 1L);
    UP_SET(CURLOPT_OPENSOCKETFUNCTION, up_on_open_socket);
    UP_SET(CURLOPT_OPENSOCKETDATA, x->up);
    UP_SET(CURLOPT_CLOSESOCKETFUNCTION, up_on_close_socket);
    UP_SET(CURLOPT_CLOSESOCKETDATA, x->up);
    if (req->fresh_connect)
        UP_SET(CURLOPT_FRESH_CONNECT, 1L);
    if (req->max_response_bytes && req->max_error_bytes) {
        /* A Content-Length over every cap is refused before one body byte is read. */
        size_t m = req->max_response_bytes > req->max_error_bytes ? req->max_response_bytes : req->max_error_bytes;
        UP_SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)m);
    }
    /* curl reads 0 as its 300 s default; the contract says 0 is no limit. */
    UP_SET(CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms ? (long)req->connect_timeout_ms
                                                              : (long)INT_MAX);
    if (tls) {
        UP_SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
        /* Concurrent starts wait for the first connection's ALPN instead of each opening one. */
        UP_SET(CURLOPT_PIPEWAIT, 1L);
        if (req->tls_ca)
            UP_SET(CURLOPT_CAINFO, req->tls_ca);
    } else {
        /* libcurl 7.88 mishandles concurrent h2c streams; cleartext stays HTTP/1.1. */
        UP_SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    }
    if (is_post || req->body_len > 0) {
        /* Not copied: the caller keeps the body alive until on_done or cancel. A read callback and a
         * seek callback that refuses to rewind: see xfer_on_read. */
        x->body = req->body ? req->body : "";
        x->body_len = req->body ? req->body_len : 0;
        UP_SET(CURLOPT_POST, 1L);
        UP_SET(CURLOPT_READFUNCTION, xfer_on_read);
        UP_SET(CURLOPT_READDATA, x);
        UP_SET(CURLOPT_SEEKFUNCTION, xfer_on_seek);
        UP_SET(CURLOPT_SEEKDATA, x);
        UP_SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
        if (!is_post)
            UP_SET(CURLOPT_CUSTOMREQUEST, method);
    } else if (strcmp(method, "HEAD") == 0) {
        UP_SET(CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "GET") == 0) {
        UP_SET(CURLOPT_HTTPGET, 1L);
    } else {
        UP_SET(CURLOPT_CUSTOMREQUEST, method);
    }
#undef UP_SET
    return CURLE_OK;
}

struct wd_upstream_xfer *wd_upstream_start(struct wd_upstream *up, const struct wd_upstream_req *req)
{
    if (!up || !req || !req->url || up->closing || up->free_requested)
        return NULL;
    const char *setup_err = NULL;
    size_t strbytes = 0;
    bool has_ct = false;
    for (size_t i = 0; i < req->nheaders; i++) {
        const struct wd_upstream_header *h = &req->headers[i];
        if (!up_header_ok(h->name, h->value)) {
            setup_err = "invalid request header";
            break;
        }
        if (strcasecmp(h->name, "content-type") == 0)
            has_ct = true;
        strbytes += strlen(h->name) + 2 + strlen(h->value) + 1;
    }
    size_t nuser = setup_err ? 0 : req->nheaders;
    if (setup_err)
        strbytes = 0;
    if (req->method && !up_method_ok(req->method))
        setup_err = "invalid request method";
    bool has_body = req->body_len > 0 || (req->method && strcmp(req->method, "POST") == 0);
    bool drop_ct = has_body && !has_ct;
    size_t nslots = nuser + 1 + (drop_ct ? 1 : 0);
    strbytes += sizeof "Expect:" + sizeof "Content-Type:";

    struct wd_upstream_xfer *x =
        malloc(offsetof(struct wd_upstream_xfer, hdrs) + nslots * sizeof(struct curl_slist) + strbytes);
    if (!x)
        return NULL;
    memset(x, 0, offsetof(struct wd_upstream_xfer, hdrs));
    x->hdrs_bytes = nslots * sizeof(struct curl_slist) + strbytes;
    x->up = up;
    x->ctx = req->ctx;
    x->on_response = req->on_response;
    x->on_data = req->on_data;
    x->on_done = req->on_done;
    x->on_flush = req->on_flush;
    x->first_byte_ms = req->first_byte_timeout_ms;
    x->idle_ms = req->idle_timeout_ms;
    x->retry_after = -1;
    x->max_ok = req->max_response_bytes;
    x->max_err = req->max_error_bytes;
    x->phase = XP_QUEUED;
    x->t_start = uv_now(up->loop);
    x->setup_err = setup_err;
    struct wd_upstream_req hreq = *req;
    hreq.nheaders = nuser;
    xfer_build_headers(x, &hreq, nslots, drop_ct);

    x->easy = up_easy_get(up);
    if (!x->easy) {
        xfer_wipe_free(x);
        return NULL;
    }
    if (!x->setup_err) {
        bool tls = strncasecmp(req->url, "https://", 8) == 0;
        CURLcode rc = xfer_setup_easy(x, req, tls);
        if (rc == CURLE_OUT_OF_MEMORY) {
            curl_easy_cleanup(x->easy);
            xfer_wipe_free(x);
            return NULL;
        }
        if (rc != CURLE_OK)
            x->setup_err = "request option rejected by curl";
    }
    uv_timer_init(up->loop, &x->timer);
    x->timer.data = x;
    up->nhandles++;
    x->next = up->live;
    if (up->live)
        up->live->prev = x;
    up->live = x;
    /* Added to curl from the loop, never here: no callback before this returns, and adding is
     * also legal when start is called from inside another transfer's callback. */
    uv_timer_start(&x->timer, xfer_on_timer, 0, 0);
    return x;
}

void wd_upstream_cancel(struct wd_upstream_xfer *x)
{
    if (!x || x->cancelled || x->finished)
        return;
    x->cancelled = true;
    struct wd_upstream *up = x->up;
    if (up->busy) {
        /* Inside curl or a callback: callbacks are now suppressed and the write callback aborts
         * the transfer if curl calls it again; up_after_curl detaches it once the stack unwinds. */
        uv_timer_stop(&x->timer);
        up->reap_needed = true;
        return;
    }
    xfer_release(x, true);
    xfer_close(x);
}

struct wd_upstream *wd_upstream_new(uv_loop_t *loop)
{
    struct wd_upstream *up = calloc(1, sizeof *up);
    if (!up)
        return NULL;
    up->loop = loop;
    up->multi = curl_multi_init();
    if (!up->multi) {
        free(up);
        return NULL;
    }
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETFUNCTION, up_on_curl_socket);
    curl_multi_setopt(up->multi, CURLMOPT_SOCKETDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERFUNCTION, up_on_curl_timer);
    curl_multi_setopt(up->multi, CURLMOPT_TIMERDATA, up);
    curl_multi_setopt(up->multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    /* curl sizes its connection cache by the transfers currently added (4x), so after a burst it closes
     * idle keep-alive connections it will need again a moment later; a fixed cache keeps them. 64 per worker:
     * each idle connection holds curl's and OpenSSL's buffers (about 25 KB), and after a burst of thousands
     * of streams a cache of 512 kept RSS at 2.1-2.4x idle (64: 1.5-1.7x, tests/integration/test_memory.sh). */
    curl_multi_setopt(up->multi, CURLMOPT_MAXCONNECTS, 64L);
    uv_timer_init(loop, &up->timer);
    up->timer.data = up;
    up->nhandles = 1;
    return up;
}

void wd_upstream_free(struct wd_upstream *up)
{
    if (!up || up->closing || up->free_requested)
        return;
    if (up->busy) {
        for (struct wd_upstream_xfer *x = up->live; x; x = x->next) {
            x->cancelled = true;
            uv_timer_stop(&x->timer);
        }
        up->free_requested = true;
        return;
    }
    up_teardown(up);
}
