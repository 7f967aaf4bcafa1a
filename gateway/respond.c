/* What the gateway and the server share for answering: the runtime's release, status reasons, whole answers. */
#include <string.h>

#include "gateway/gateway.h"

void wd_runtime_release(struct wd_runtime *rt)
{
    if (rt == NULL || atomic_fetch_sub(&rt->refs, 1) != 1)
        return;
    wd_config_free(rt->cfg);
    wd_auth_free(&rt->auth);
    free(rt);
}

const char *wd_http_reason(int status)
{
    /* RFC 9110 section 15 (and 6585 for 429, 431; 529 is Anthropic's) */
    switch (status) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 529: return "Overloaded";
    default: return status < 400 ? "OK" : status < 500 ? "Client Error" : "Server Error";
    }
}

void wd_respond(h2o_req_t *req, int status, const char *ct, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = wd_http_reason(status);
    /* A known length keeps an HTTP/1.1 connection alive: h2o 2.2.5 chunks only 200 responses and closes the
     * connection after any other status whose length it does not know (every error, a 429 included). */
    req->res.content_length = len;
    if (ct != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, ct, strlen(ct));
    h2o_iovec_t b = h2o_strdup(&req->pool, body, len);
    h2o_send_inline(req, b.base, b.len);
}
