/* Hands a connection waiting on a libuv listener to h2o: accepted, Nagle off (a response is written
 * in one or a few pieces, each wanted on the wire at once), wrapped as an h2o socket. Shared by the
 * server's workers and bench/floor_proxy.c, which must accept exactly as Warden does. */
#ifndef WARDEN_SERVER_ACCEPT_H
#define WARDEN_SERVER_ACCEPT_H

#include <stdlib.h>
#include <uv.h>
#include <h2o.h>

static inline void wd_h2o_accept(uv_stream_t *listener, h2o_accept_ctx_t *ctx)
{
    uv_tcp_t *conn = malloc(sizeof(*conn));
    if (conn == NULL)
        return;
    uv_tcp_init(listener->loop, conn);
    if (uv_accept(listener, (uv_stream_t *)conn) != 0) {
        uv_close((uv_handle_t *)conn, (uv_close_cb)free);
        return;
    }
    uv_tcp_nodelay(conn, 1);
    h2o_socket_t *sock = h2o_uv_socket_create((uv_stream_t *)conn, (uv_close_cb)free);
    h2o_accept(ctx, sock);
}

#endif
