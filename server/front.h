/* The front guard: what Warden decides about a connection and a request before libh2o has read a request
 * body. libh2o 2.2.5 hands a request to its handler only once the body is complete (lib/http1.c creates an
 * entity reader and calls process_request only in on_entity_read_complete; lib/http2/connection.c keeps a
 * stream in RECV_BODY and executes it only at END_STREAM), and it has no hook in between. Warden owns the
 * accepted socket, and libh2o starts every read on it through the exported h2o_socket_read_start, which
 * Warden's executable interposes (server/front.c): each read passes through the guard first.
 *
 *  - HTTP/1.1: the guard parses each request head with libh2o's own parser (picohttpparser) before libh2o
 *    does. A head that would cost a body without the right to send one (no valid key, a route that takes
 *    no body) is handed on without its body and with `connection: close`, so the ordinary handler answers
 *    it (401, 404) on its headers and the body is never read. Framing that can smuggle a request (both
 *    Content-Length and Transfer-Encoding, differing Content-Lengths, an unknown transfer coding, a bare LF
 *    in chunked framing) and heads over limits.max_header_bytes or 100 fields are refused in the API's JSON
 *    shape, and the connection closes.
 *  - HTTP/2: the guard reads every frame header before libh2o does. A stream whose headers arrived without
 *    END_STREAM is judged as soon as libh2o has decoded them; one without the right to a body is handed to
 *    the handler at once with an empty body. Client resets of open streams are counted per connection; past
 *    limits.http2_max_resets in 10 s the connection gets GOAWAY (ENHANCE_YOUR_CALM). A stream reset in the
 *    same read as its headers never reaches a provider.
 *  - Bounds: request bytes buffered before their requests are handled are counted per connection (at most
 *    twice limits.max_body_bytes) and per process (limits.max_pending_body_bytes); a request that would
 *    pass either is refused (HTTP/1.1: 503 before its body; HTTP/2: the stream is reset REFUSED_STREAM).
 *    Connections past limits.max_connections are closed as soon as they are accepted. */
#ifndef WARDEN_SERVER_FRONT_H
#define WARDEN_SERVER_FRONT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <h2o.h>

#include "lib/buf.h"

struct wd_worker;

/* Process start: the soft descriptor limit raised to the hard one (logged), the connection cap derived from
 * it and limits.max_connections, the per-descriptor table. 0 on success. */
int wd_front_init(size_t max_connections, size_t max_pending_body_bytes, size_t max_body_bytes,
                  unsigned http2_max_resets);
void wd_front_free(void);
/* The connection cap in force and the descriptor limit (for the log and tests). */
size_t wd_front_max_connections(void);

/* Accepts one connection from the worker's listener and hands it to libh2o (see server/accept.h); past the
 * cap it is closed at once. status is the listener callback's. */
void wd_front_accept(uv_stream_t *listener, struct wd_worker *w, int status);

/* For the handler, first thing: a refusal the guard decided for this request. Fills the response and
 * returns true; the connection closes after it. */
bool wd_front_refusal(h2o_req_t *req, int *status, const char **type, const char **message);
/* True when the client reset this HTTP/2 stream in the same read that opened it: the handler answers
 * without starting anything. */
bool wd_front_stream_doomed(h2o_req_t *req);

/* Prometheus text for the guard's counters (server/metrics.c calls it). */
void wd_front_render_metrics(struct wd_buf *b);

/* The routes that take a request body are the inbound APIs' POST routes (wd_gateway_route_takes_body); a body
 * anywhere else is never read. */

#endif
