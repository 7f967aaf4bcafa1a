/* Upstream HTTP client: one libcurl multi handle per worker, driven by that worker's libuv loop
 * (multi_socket_action via uv_poll + uv_timer). Connections are reused; https upstreams use HTTP/2
 * over TLS (ALPN), http:// upstreams HTTP/1.1. Only this module talks to curl.
 * A request body is sent at most once per wd_upstream_start: curl's own re-send of a request whose
 * reused connection died is refused (WD_UP_ERR_RESEND), so every request a provider receives is one
 * the caller started, and counted. */
#ifndef WARDEN_NET_UPSTREAM_H
#define WARDEN_NET_UPSTREAM_H

#include <stddef.h>
#include <uv.h>

struct wd_upstream;          /* per-worker client */
struct wd_upstream_xfer;     /* one transfer */

enum wd_upstream_result {
    WD_UP_OK = 0,
    WD_UP_ERR_CONNECT,       /* could not connect / TLS failure / DNS */
    WD_UP_ERR_CONNECT_TIMEOUT,
    WD_UP_ERR_FIRST_BYTE_TIMEOUT,
    WD_UP_ERR_IDLE_TIMEOUT,
    WD_UP_ERR_TRANSFER,      /* connection cut, malformed HTTP, other curl errors */
    WD_UP_ERR_TOO_LARGE,     /* the response body passed its cap (or announced a larger length):
                              * the transfer was stopped there and its connection closed */
    WD_UP_ERR_RESEND,        /* a reused connection died after the request went out and before any
                              * response byte; curl wanted to send it again on a new connection and
                              * was refused. The provider may or may not have seen the request. */
};

struct wd_upstream_header {
    const char *name;        /* e.g. "x-goog-api-key" */
    const char *value;
};

struct wd_upstream_req {
    const char *method;      /* "POST" or "GET" */
    const char *url;
    const struct wd_upstream_header *headers;
    size_t nheaders;
    const char *body;        /* not copied: must stay valid until on_done or cancel */
    size_t body_len;
    const char *tls_ca;      /* CA bundle path or NULL */
    unsigned connect_timeout_ms;
    unsigned first_byte_timeout_ms;
    unsigned idle_timeout_ms;
    size_t max_response_bytes; /* cap on a 2xx response body; 0: none. Over it: WD_UP_ERR_TOO_LARGE */
    size_t max_error_bytes;  /* the same for a body of any other status; 0: none */
    int fresh_connect;       /* non-zero: open a new connection instead of reusing a kept-alive one */
    void *ctx;
    /* Status line and headers complete. retry_after_s is the Retry-After header in seconds, -1 when absent. */
    void (*on_response)(void *ctx, int status, long retry_after_s, const char *content_type);
    /* A piece of the response body, as it arrives. */
    void (*on_data)(void *ctx, const char *p, size_t n);
    /* Optional: called once curl has returned control after delivering body pieces through on_data, so
     * that everything received in one pass (several reads, often the end of the response too) can be
     * written onward at once. Not called when on_done came in that same pass (on_done comes after the
     * last on_data), nor after a cancel. */
    void (*on_flush)(void *ctx);
    /* Always called exactly once unless cancelled; the xfer is freed after it returns. WD_UP_OK means
     * the HTTP exchange completed, whatever the status. detail is never NULL ("" on WD_UP_OK) and
     * names no header value and no query string, so it can be logged. */
    void (*on_done)(void *ctx, enum wd_upstream_result res, const char *detail);
};

/* curl_global_init(CURL_GLOBAL_DEFAULT): once per process, before any worker thread starts,
 * because curl's global init is not thread-safe on every TLS backend. 0 or -1. */
int wd_upstream_global_init(void);
/* The matching curl_global_cleanup: once, after every wd_upstream is freed and threads joined. */
void wd_upstream_global_cleanup(void);

/* One per worker thread, used only from the thread that runs `loop`. NULL on allocation failure. */
struct wd_upstream *wd_upstream_new(uv_loop_t *loop);
/* Cancels every live transfer (no callbacks), closes handles; call before closing the loop.
 * Handles close asynchronously: run the loop afterwards (uv_run(loop, UV_RUN_DEFAULT) returns once
 * they are gone) before uv_loop_close; the memory is released by the close callbacks. If called from
 * inside a transfer callback, the teardown completes when curl returns control to this module. */
void wd_upstream_free(struct wd_upstream *up);
/* Starts a transfer. Never calls a callback before returning. NULL on allocation failure (or a NULL
 * url, or a client being freed). A malformed method or header (CR/LF) is reported as
 * WD_UP_ERR_TRANSFER through on_done. Safe to call from inside any callback. */
struct wd_upstream_xfer *wd_upstream_start(struct wd_upstream *up, const struct wd_upstream_req *req);
/* Aborts the transfer and closes its connection; no callback runs afterwards. Safe to call from inside
 * any of its callbacks. On a shared HTTP/2 connection only the stream is reset (the connection closes
 * if no other stream uses it). A no-op from inside on_done; invalid once on_done has returned. */
void wd_upstream_cancel(struct wd_upstream_xfer *x);

/* Provider connections that failed for want of a file descriptor (EMFILE/ENFILE), process-wide. */
unsigned long long wd_upstream_fd_exhausted(void);

#endif
