/* Integration check for server/upstream.c: drives a wd_upstream against the misbehaving Node fake
 * tests/fakes/upstream_test_server.mjs (HTTP/1.1 and TLS HTTP/2 on 127.0.0.1, private CA made with
 * the openssl CLI) and prints "ok N - ..." / "not ok N - ..." lines; exits 1 on any failure.
 * Usage: upstream_check [path/to/upstream_test_server.mjs]   (default: relative to the repo root) */

#include "net/upstream.h"

#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define MAX_BODY (1u << 20)

static uv_loop_t *g_loop;
static struct wd_upstream *g_up;
static int g_http_port, g_https_port;
static char g_tmpdir[64];
static pid_t g_node_pid = -1;
static int g_node_stdin = -1;
static int g_failures;
static int g_in_start; /* set around wd_upstream_start: a callback seen then is a contract breach */
static int g_early_callbacks;
static int g_flush_bad;       /* on_flush without data before it, after on_done, or inside wd_upstream_start */

/* ---- one observed transfer ---- */

struct tx {
    const char *name;
    struct wd_upstream_xfer *x;
    int nresp, status;
    long retry_after;
    char ct[128];
    char *body;
    size_t len;
    int ndata;
    int nflush;                  /* on_flush calls */
    int data_since_flush;        /* on_data calls since the last on_flush */
    int64_t first_data_wall_ms;  /* CLOCK_REALTIME, comparable with the fake's Date.now() */
    uint64_t t_start, t_last_data, t_done; /* uv_hrtime */
    int ndone;
    enum wd_upstream_result res;
    char detail[512];
    bool cancelled;              /* we cancelled it (or freed its client): callbacks must stop */
    int late_calls;              /* callbacks after that */
    bool order_bad;              /* on_data/on_done before on_response */
    /* what to do from inside callbacks */
    bool cancel_self_on_response;
    bool cancel_self_on_data;
    struct tx *cancel_on_data;   /* another transfer to cancel at our first on_data */
    struct tx *cancel_on_done;   /* another transfer to cancel from our on_done */
    struct tx *start_on_done;    /* a transfer to start from our on_done (fallback pattern) */
    const struct wd_upstream_req *start_on_done_req;
    struct wd_upstream *free_on_data; /* client to free from inside our on_data */
    struct tx **mark_on_free;    /* transfers to mark cancelled when we free their client */
    size_t nmark_on_free;
};

static void tx_start(struct tx *t, struct wd_upstream *up, const struct wd_upstream_req *req);

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double ms_since(uint64_t t0, uint64_t t1)
{
    return (double)(t1 - t0) / 1e6;
}

static void tx_mark_cancelled(struct tx *t)
{
    t->cancelled = true;
}

static void on_response(void *ctx, int status, long retry_after_s, const char *content_type)
{
    struct tx *t = ctx;
    if (g_in_start)
        g_early_callbacks++;
    if (t->cancelled) {
        t->late_calls++;
        return;
    }
    t->nresp++;
    t->status = status;
    t->retry_after = retry_after_s;
    snprintf(t->ct, sizeof t->ct, "%s", content_type ? content_type : "(null)");
    if (t->cancel_self_on_response) {
        tx_mark_cancelled(t);
        wd_upstream_cancel(t->x);
    }
}

static void on_data(void *ctx, const char *p, size_t n)
{
    struct tx *t = ctx;
    if (g_in_start)
        g_early_callbacks++;
    if (t->cancelled) {
        t->late_calls++;
        return;
    }
    if (t->nresp == 0)
        t->order_bad = true;
    if (t->ndata == 0)
        t->first_data_wall_ms = wall_ms();
    t->ndata++;
    t->data_since_flush++;
    t->t_last_data = uv_hrtime();
    if (!t->body)
        t->body = calloc(1, MAX_BODY + 1);
    if (t->body) {
        size_t room = MAX_BODY - t->len;
        size_t k = n < room ? n : room;
        memcpy(t->body + t->len, p, k);
        t->len += k;
        t->body[t->len] = '\0';
    }
    if (t->ndata == 1 && t->cancel_on_data) {
        tx_mark_cancelled(t->cancel_on_data);
        wd_upstream_cancel(t->cancel_on_data->x);
    }
    if (t->ndata == 1 && t->cancel_self_on_data) {
        tx_mark_cancelled(t);
        wd_upstream_cancel(t->x);
    }
    if (t->ndata == 1 && t->free_on_data) {
        for (size_t i = 0; i < t->nmark_on_free; i++)
            tx_mark_cancelled(t->mark_on_free[i]);
        wd_upstream_free(t->free_on_data);
        t->free_on_data = NULL;
    }
}

/* The contract: on_flush follows one or more on_data of the same pass, never on_done, never a cancel. */
static void on_flush(void *ctx)
{
    struct tx *t = ctx;
    if (g_in_start || t->ndone > 0 || t->data_since_flush == 0)
        g_flush_bad++;
    if (t->cancelled) {
        t->late_calls++;
        return;
    }
    t->nflush++;
    t->data_since_flush = 0;
}

static void on_done(void *ctx, enum wd_upstream_result res, const char *detail)
{
    struct tx *t = ctx;
    if (g_in_start)
        g_early_callbacks++;
    if (t->cancelled) {
        t->late_calls++;
        return;
    }
    if (res == WD_UP_OK && t->nresp == 0)
        t->order_bad = true;
    t->ndone++;
    t->res = res;
    t->t_done = uv_hrtime();
    snprintf(t->detail, sizeof t->detail, "%s", detail ? detail : "(null)");
    if (t->cancel_on_done) {
        tx_mark_cancelled(t->cancel_on_done);
        wd_upstream_cancel(t->cancel_on_done->x);
    }
    if (t->start_on_done)
        tx_start(t->start_on_done, g_up, t->start_on_done_req);
}

static void tx_start(struct tx *t, struct wd_upstream *up, const struct wd_upstream_req *req)
{
    struct wd_upstream_req r = *req;
    r.ctx = t;
    r.on_response = on_response;
    r.on_data = on_data;
    r.on_flush = on_flush;
    r.on_done = on_done;
    t->retry_after = -2;
    t->t_start = uv_hrtime();
    g_in_start = 1;
    t->x = wd_upstream_start(up, &r);
    g_in_start = 0;
}

static void tx_free(struct tx *t)
{
    free(t->body);
    t->body = NULL;
}

/* ---- driving the loop with a bound ---- */

static void on_tick(uv_timer_t *t)
{
    (void)t; /* only wakes uv_run(UV_RUN_ONCE) so deadlines are checked */
}

typedef bool (*cond_fn)(void *);

static bool run_until(cond_fn cond, void *arg, unsigned timeout_ms)
{
    uv_timer_t tick;
    uv_timer_init(g_loop, &tick);
    uv_timer_start(&tick, on_tick, 10, 10);
    uint64_t deadline = uv_hrtime() + (uint64_t)timeout_ms * 1000000u;
    bool met = false;
    for (;;) {
        if (cond && cond(arg)) {
            met = true;
            break;
        }
        if (uv_hrtime() >= deadline)
            break;
        uv_run(g_loop, UV_RUN_ONCE);
    }
    uv_close((uv_handle_t *)&tick, NULL);
    uv_run(g_loop, UV_RUN_NOWAIT); /* let the tick's close run before it leaves the stack */
    return met;
}

static void run_for(unsigned ms)
{
    run_until(NULL, NULL, ms);
}

struct txset {
    struct tx *t;
    size_t n;
};

static bool set_done(void *arg)
{
    struct txset *s = arg;
    for (size_t i = 0; i < s->n; i++)
        if (s->t[i].ndone == 0)
            return false;
    return true;
}

static bool one_done(void *arg)
{
    return ((struct tx *)arg)->ndone > 0;
}

static bool has_data(void *arg)
{
    return ((struct tx *)arg)->ndata > 0;
}

/* ---- reporting ---- */

static int g_n;

static void check(bool ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s %d - ", ok ? "ok" : "not ok", ++g_n);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
    if (!ok)
        g_failures++;
}

static void diag(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("# ");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    fflush(stdout);
}

static const char *res_name(enum wd_upstream_result r)
{
    switch (r) {
    case WD_UP_OK: return "OK";
    case WD_UP_ERR_CONNECT: return "CONNECT";
    case WD_UP_ERR_CONNECT_TIMEOUT: return "CONNECT_TIMEOUT";
    case WD_UP_ERR_FIRST_BYTE_TIMEOUT: return "FIRST_BYTE_TIMEOUT";
    case WD_UP_ERR_IDLE_TIMEOUT: return "IDLE_TIMEOUT";
    case WD_UP_ERR_TRANSFER: return "TRANSFER";
    case WD_UP_ERR_TOO_LARGE: return "TOO_LARGE";
    case WD_UP_ERR_RESEND: return "RESEND";
    }
    return "?";
}

static void diag_tx(const struct tx *t)
{
    diag("%s: ndone=%d res=%s detail='%s' nresp=%d status=%d ndata=%d len=%zu late=%d order_bad=%d",
         t->name, t->ndone, res_name(t->res), t->detail, t->nresp, t->status, t->ndata, t->len,
         t->late_calls, t->order_bad);
}

/* ---- side channel to the fake: blocking, bounded, one request per connection ---- */

static int ctl_get(const char *path, char *out, size_t cap)
{
    out[0] = '\0';
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)g_http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    char req[256];
    int n = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
                     path);
    if (write(fd, req, (size_t)n) != n) {
        close(fd);
        return -1;
    }
    char buf[4096];
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
        if (len == sizeof buf - 1)
            break;
    }
    close(fd);
    buf[len] = '\0';
    const char *body = strstr(buf, "\r\n\r\n");
    if (!body)
        return -1;
    snprintf(out, cap, "%s", body + 4);
    return 0;
}

/* Polls the fake until it reports that stream `id` saw its client close; returns ms taken or -1. */
static double wait_server_closed(const char *id, unsigned bound_ms)
{
    char path[64], out[64];
    snprintf(path, sizeof path, "/closed?id=%s", id);
    uint64_t t0 = uv_hrtime();
    for (;;) {
        /* The loop keeps running so a close that is still being processed can finish. */
        run_for(20);
        if (ctl_get(path, out, sizeof out) == 0 && strcmp(out, "closed") == 0)
            return ms_since(t0, uv_hrtime());
        if (ms_since(t0, uv_hrtime()) > bound_ms)
            return -1;
    }
}

/* ---- processes ---- */

static int run_cmd(char *const argv[])
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    char log[128];
    snprintf(log, sizeof log, "%s/openssl.log", g_tmpdir);
    posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_addopen(&fa, 2, log, O_WRONLY | O_CREAT | O_APPEND, 0600);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0)
        return -1;
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static bool make_certs(void)
{
    char cakey[128], capem[128], key[128], pem[128];
    snprintf(cakey, sizeof cakey, "%s/ca.key", g_tmpdir);
    snprintf(capem, sizeof capem, "%s/ca.pem", g_tmpdir);
    snprintf(key, sizeof key, "%s/server.key", g_tmpdir);
    snprintf(pem, sizeof pem, "%s/server.pem", g_tmpdir);
    char *ca[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                  "-nodes", "-keyout", cakey, "-out", capem, "-days", "2", "-subj",
                  "/CN=warden-upstream-check-ca", NULL};
    char *srv[] = {"openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                   "-nodes", "-keyout", key, "-out", pem, "-days", "2", "-subj", "/CN=127.0.0.1",
                   "-CA", capem, "-CAkey", cakey,
                   "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost",
                   "-addext", "basicConstraints=critical,CA:FALSE",
                   "-addext", "extendedKeyUsage=serverAuth", NULL};
    return run_cmd(ca) == 0 && run_cmd(srv) == 0;
}

static bool start_node(const char *script)
{
    int in[2], out[2];
    if (pipe2(in, O_CLOEXEC) != 0)
        return false;
    if (pipe2(out, O_CLOEXEC) != 0) {
        close(in[0]);
        close(in[1]);
        return false;
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_adddup2(&fa, out[1], 1);
    char *argv[] = {"node", (char *)script, g_tmpdir, NULL};
    int rc = posix_spawnp(&g_node_pid, "node", &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(in[0]);
    close(out[1]);
    g_node_stdin = in[1]; /* the fake exits when this closes, even if we crash */
    if (rc != 0) {
        g_node_pid = -1;
        close(out[0]);
        fprintf(stderr, "upstream_check: cannot run node: %s\n", strerror(rc));
        return false;
    }
    char line[256];
    size_t len = 0;
    uint64_t t0 = uv_hrtime();
    while (len < sizeof line - 1 && !memchr(line, '\n', len)) {
        double left = 15000 - ms_since(t0, uv_hrtime());
        struct pollfd p = {.fd = out[0], .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) <= 0)
            break;
        ssize_t r = read(out[0], line + len, sizeof line - 1 - len);
        if (r <= 0)
            break;
        len += (size_t)r;
    }
    close(out[0]);
    line[len] = '\0';
    if (sscanf(line, "{\"http\":%d,\"https\":%d}", &g_http_port, &g_https_port) != 2 || g_http_port <= 0) {
        fprintf(stderr, "upstream_check: fake server did not report its ports: '%s'\n", line);
        return false;
    }
    return true;
}

static void stop_node(void)
{
    if (g_node_stdin >= 0) {
        close(g_node_stdin);
        g_node_stdin = -1;
    }
    if (g_node_pid <= 0)
        return;
    kill(g_node_pid, SIGTERM);
    for (int i = 0; i < 300; i++) {
        if (waitpid(g_node_pid, NULL, WNOHANG) == g_node_pid) {
            g_node_pid = -1;
            return;
        }
        usleep(10000);
    }
    kill(g_node_pid, SIGKILL);
    waitpid(g_node_pid, NULL, 0);
    g_node_pid = -1;
}

static void remove_tmpdir(void)
{
    if (!g_tmpdir[0])
        return;
    DIR *d = opendir(g_tmpdir);
    if (d) {
        struct dirent *e;
        char p[512];
        while ((e = readdir(d))) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            snprintf(p, sizeof p, "%s/%s", g_tmpdir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(g_tmpdir);
}

/* ---- the checks ---- */

static uint32_t fnv1a(const char *p, size_t n)
{
    uint32_t h = 0x811c9dc5u;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (uint8_t)p[i]) * 0x01000193u;
    return h;
}

static struct wd_upstream_req req_get(const char *url)
{
    struct wd_upstream_req r = {.method = "GET", .url = url, .connect_timeout_ms = 2000,
                                .first_byte_timeout_ms = 5000, .idle_timeout_ms = 5000};
    return r;
}

static void url_h1(char *buf, size_t cap, const char *path)
{
    snprintf(buf, cap, "http://127.0.0.1:%d%s", g_http_port, path);
}

static void check_post_streaming(void)
{
    size_t blen = 200 * 1024;
    char *body = malloc(blen);
    if (!body) {
        check(false, "POST streaming: out of memory");
        return;
    }
    for (size_t i = 0; i < blen; i++)
        body[i] = (char)('a' + (i * 7) % 26);
    const struct wd_upstream_header hdrs[] = {
        {"Content-Type", "application/json"},
        {"X-Test", "abc-123"},
    };
    char url[128];
    url_h1(url, sizeof url, "/t1");
    struct wd_upstream_req r = req_get(url);
    r.method = "POST";
    r.headers = hdrs;
    r.nheaders = 2;
    r.body = body;
    r.body_len = blen;
    struct tx t = {.name = "post"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 5000);

    char want[256];
    snprintf(want, sizeof want,
             "seen method=POST ct=application/json xtest=abc-123 expect=none len=%zu fnv=%08x ver=1.1\n"
             "part2\nlast sent_at=", blen, fnv1a(body, blen));
    long long sent_at = 0;
    const char *last = t.body ? strstr(t.body, "last sent_at=") : NULL;
    if (last)
        sent_at = atoll(last + strlen("last sent_at="));
    bool ok = t.x && t.ndone == 1 && t.res == WD_UP_OK && t.nresp == 1 && t.status == 200 &&
              strcmp(t.ct, "text/plain") == 0 && t.body && strncmp(t.body, want, strlen(want)) == 0 &&
              t.ndata >= 3 && sent_at > 0 && t.first_data_wall_ms < sent_at && !t.order_bad &&
              t.nflush >= 2;
    if (!ok) {
        diag_tx(&t);
        diag("body: %.300s", t.body ? t.body : "(none)");
    }
    check(ok, "POST: status 200, headers and %zu-byte body seen by the server, response streamed in %d "
              "pieces (%d flushes), first piece %lld ms before the last was sent",
          blen, t.ndata, t.nflush, sent_at - t.first_data_wall_ms);
    tx_free(&t);
    free(body);
}

static void check_reuse(void)
{
    char url[128];
    url_h1(url, sizeof url, "/conn");
    struct wd_upstream_req r = req_get(url);
    struct tx a = {.name = "reuse1"}, b = {.name = "reuse2"};
    tx_start(&a, g_up, &r);
    run_until(one_done, &a, 3000);
    tx_start(&b, g_up, &r);
    run_until(one_done, &b, 3000);
    bool ok = a.res == WD_UP_OK && b.res == WD_UP_OK && a.ndone == 1 && b.ndone == 1 && a.body && b.body &&
              strncmp(a.body, "conn=", 5) == 0 && strcmp(a.body, b.body) == 0 &&
              a.nflush == 0 && b.nflush == 0; /* a body that ends in the read that brings it: on_done alone */
    if (!ok) {
        diag_tx(&a);
        diag_tx(&b);
        diag("bodies '%s' '%s'", a.body ? a.body : "", b.body ? b.body : "");
    }
    check(ok, "two sequential requests share one TCP connection (%s, %s), no on_flush before on_done",
          a.body ? a.body : "-", b.body ? b.body : "-");
    tx_free(&a);
    tx_free(&b);
}

static double cpu_ms(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 + (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void count_polls(uv_handle_t *h, void *arg)
{
    if (h->type == UV_POLL && !uv_is_closing(h))
        ++*(int *)arg;
}

static int live_polls(void)
{
    int n = 0;
    uv_walk(g_loop, count_polls, &n);
    return n;
}

/* A kept-alive connection keeps one poll handle across its transfers (no handle per request), and a
 * connection the server closes while it idles in curl's cache is replaced, its handle closed. */
static void check_parked_sockets(void)
{
    char url[128], url_close[128];
    url_h1(url, sizeof url, "/conn");
    url_h1(url_close, sizeof url_close, "/conn-idle-close?ms=30");
    struct wd_upstream_req r = req_get(url);
    char first[32] = "";
    int polls[5], same = 0;
    for (int i = 0; i < 5; i++) {
        struct tx t = {.name = "parked"};
        tx_start(&t, g_up, &r);
        run_until(one_done, &t, 3000);
        polls[i] = live_polls();
        if (t.res == WD_UP_OK && t.body && strncmp(t.body, "conn=", 5) == 0) {
            if (i == 0)
                snprintf(first, sizeof first, "%s", t.body);
            same += strcmp(t.body, first) == 0;
        }
        tx_free(&t);
    }
    check(same == 5 && polls[0] >= 1 && polls[4] == polls[0] && polls[1] == polls[0],
          "five sequential requests on one connection (%s) keep the same poll handles (%d, %d, %d live)",
          first, polls[0], polls[1], polls[4]);

    struct wd_upstream_req rc = req_get(url_close);
    struct tx a = {.name = "idle-close"}, b = {.name = "after-close"};
    tx_start(&a, g_up, &rc);
    run_until(one_done, &a, 3000);
    int before = live_polls();
    double cpu0 = cpu_ms();
    run_for(200); /* the server closes the idle connection after 30 ms */
    double idle_cpu = cpu_ms() - cpu0;
    tx_start(&b, g_up, &r);
    run_until(one_done, &b, 3000);
    run_for(20);
    int after = live_polls();
    /* a reuses the connection above (so it is the only one cached for this server), b needs a new one:
     * the dead one's handle must be closed for the count not to grow. */
    bool ok = a.res == WD_UP_OK && b.res == WD_UP_OK && a.body && b.body && strcmp(a.body, first) == 0 &&
              strcmp(a.body, b.body) != 0 && after <= before && idle_cpu < 100;
    if (!ok) {
        diag_tx(&a);
        diag_tx(&b);
    }
    check(ok, "a connection closed by the server while idle is replaced (%s then %s) and its poll handle "
              "closed (%d live before, %d after); the close, while parked, cost %.0f ms of CPU in a 200 ms wait "
              "(no spinning on the EOF)",
          a.body ? a.body : "-", b.body ? b.body : "-", before, after, idle_cpu);
    tx_free(&a);
    tx_free(&b);
}

static void check_concurrent(void)
{
    enum { N = 20 };
    static char urls[N][128];
    struct tx t[N];
    memset(t, 0, sizeof t);
    for (int i = 0; i < N; i++) {
        char path[64];
        snprintf(path, sizeof path, "/slow?ms=100&id=%d", i);
        url_h1(urls[i], sizeof urls[i], path);
        struct wd_upstream_req r = req_get(urls[i]);
        t[i].name = "concurrent";
        tx_start(&t[i], g_up, &r);
    }
    uint64_t t0 = uv_hrtime();
    struct txset s = {t, N};
    run_until(set_done, &s, 5000);
    double took = ms_since(t0, uv_hrtime());
    int good = 0;
    for (int i = 0; i < N; i++) {
        char want[32];
        snprintf(want, sizeof want, "id=%d", i);
        if (t[i].ndone == 1 && t[i].res == WD_UP_OK && t[i].status == 200 && t[i].body &&
            strcmp(t[i].body, want) == 0)
            good++;
        else
            diag_tx(&t[i]);
        tx_free(&t[i]);
    }
    /* 100 ms each: done well under 20 x 100 ms only if they really ran side by side. */
    check(good == N && took < 1500, "%d concurrent transfers: %d completed intact in %.0f ms", N, good, took);
}

static void check_first_byte_timeout(void)
{
    char url[128];
    url_h1(url, sizeof url, "/delay-headers?ms=3000");
    struct wd_upstream_req r = req_get(url);
    r.first_byte_timeout_ms = 300;
    struct tx t = {.name = "first-byte"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 4000);
    double took = ms_since(t.t_start, t.t_done);
    bool ok = t.ndone == 1 && t.res == WD_UP_ERR_FIRST_BYTE_TIMEOUT && t.nresp == 0 && took >= 280 &&
              took < 1200;
    if (!ok)
        diag_tx(&t);
    check(ok, "first-byte timeout (300 ms) fires after %.0f ms with FIRST_BYTE_TIMEOUT", took);
    tx_free(&t);
}

static void check_idle_timeout(void)
{
    char url[128];
    url_h1(url, sizeof url, "/stall-body");
    struct wd_upstream_req r = req_get(url);
    r.first_byte_timeout_ms = 2000;
    r.idle_timeout_ms = 400;
    struct tx t = {.name = "idle"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 4000);
    double quiet = ms_since(t.t_last_data, t.t_done);
    bool ok = t.ndone == 1 && t.res == WD_UP_ERR_IDLE_TIMEOUT && t.nresp == 1 && t.status == 200 && t.body &&
              strcmp(t.body, "ab") == 0 && quiet >= 380 && quiet < 1200;
    if (!ok)
        diag_tx(&t);
    check(ok, "idle timeout (400 ms) fires mid-body %.0f ms after the last piece, with IDLE_TIMEOUT", quiet);
    tx_free(&t);
}

static void check_refused(void)
{
    /* Bound but not listening: the kernel refuses, and nobody else can take the port meanwhile. */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = 0;
    if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/v1?key=SECRETKEY", port);
    struct wd_upstream_req r = req_get(url);
    struct tx t = {.name = "refused"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 3000);
    bool ok = port > 0 && t.ndone == 1 && t.res == WD_UP_ERR_CONNECT && t.nresp == 0 && t.detail[0] &&
              !strstr(t.detail, "SECRETKEY");
    if (!ok)
        diag_tx(&t);
    check(ok, "connection refused -> CONNECT ('%s')", t.detail);
    if (fd >= 0)
        close(fd);
    tx_free(&t);
}

static void check_connect_timeout(void)
{
    /* A listener with a full accept queue: Linux drops further SYNs, so connect() just hangs. */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = 0;
    if (lfd >= 0 && bind(lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(lfd, 0) == 0 &&
        getsockname(lfd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    int fill[4];
    for (int i = 0; i < 4; i++) {
        fill[i] = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fill[i] >= 0 && port > 0)
            connect(fill[i], (struct sockaddr *)&sa, sizeof sa);
    }
    run_for(100);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/", port);
    struct wd_upstream_req r = req_get(url);
    r.connect_timeout_ms = 300;
    struct tx t = {.name = "connect-timeout"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 3000);
    double took = ms_since(t.t_start, t.t_done);
    bool ok = port > 0 && t.ndone == 1 && t.res == WD_UP_ERR_CONNECT_TIMEOUT && took >= 250 && took < 1500;
    if (!ok)
        diag_tx(&t);
    check(ok, "connect timeout (300 ms, SYN dropped by a full backlog) -> CONNECT_TIMEOUT after %.0f ms",
          took);
    for (int i = 0; i < 4; i++)
        if (fill[i] >= 0)
            close(fill[i]);
    if (lfd >= 0)
        close(lfd);
    tx_free(&t);
}

static void check_cut(void)
{
    char url[128];
    url_h1(url, sizeof url, "/cut");
    struct wd_upstream_req r = req_get(url);
    struct tx t = {.name = "cut"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 3000);
    bool ok = t.ndone == 1 && t.res == WD_UP_ERR_TRANSFER && t.nresp == 1 && t.status == 200 &&
              t.len > 0 && t.len < 100000;
    if (!ok)
        diag_tx(&t);
    check(ok, "server cuts the connection mid-body -> TRANSFER after %zu bytes ('%s')", t.len, t.detail);
    tx_free(&t);
}

/* A kept-alive connection reset after the request went out and before any answer: libcurl would send the
 * request again on a new connection by itself; the client must refuse (RESEND), so the server sees it once,
 * and the caller's own re-send with fresh_connect is a new, separate request. */
static void check_no_silent_resend(void)
{
    char url[128], out[64];
    url_h1(url, sizeof url, "/reset-reused");
    static const char body[] = "{\"once\":true}";
    struct wd_upstream_req r = req_get(url);
    r.method = "POST";
    r.body = body;
    r.body_len = sizeof body - 1;
    struct tx a = {.name = "reset1"}, b = {.name = "reset2"}, c = {.name = "reset3"};
    tx_start(&a, g_up, &r); /* a new connection: answered */
    run_until(one_done, &a, 3000);
    tx_start(&b, g_up, &r); /* the same connection, now reset */
    run_until(one_done, &b, 3000);
    int seen_b = ctl_get("/reset-count", out, sizeof out) == 0 ? atoi(out) : -1;
    r.fresh_connect = 1;
    tx_start(&c, g_up, &r); /* the caller's decision: once more, on a new connection */
    run_until(one_done, &c, 3000);
    int seen_c = ctl_get("/reset-count", out, sizeof out) == 0 ? atoi(out) : -1;
    bool ok = a.res == WD_UP_OK && a.status == 200 && b.ndone == 1 && b.res == WD_UP_ERR_RESEND && b.nresp == 0 &&
              seen_b == 2 && c.res == WD_UP_OK && c.status == 200 && a.body && c.body && strcmp(a.body, c.body) != 0 &&
              seen_c == 3;
    if (!ok) {
        diag_tx(&a);
        diag_tx(&b);
        diag_tx(&c);
    }
    check(ok, "reused connection reset before the answer -> RESEND ('%s'), not re-sent by curl (server saw %d of 2); "
              "fresh_connect re-sends on a new connection (%s then %s)",
          b.detail, seen_b, a.body ? a.body : "-", c.body ? c.body : "-");
    tx_free(&a);
    tx_free(&b);
    tx_free(&c);
}

/* A request body over HTTP/2 arrives whole through the read callback (DATA frames, not the header buffer). */
static void check_h2_post(void)
{
    if (g_https_port <= 0) {
        check(false, "h2 POST: no TLS fake");
        return;
    }
    size_t blen = 300 * 1024;
    char *body = malloc(blen);
    if (!body) {
        check(false, "h2 POST: out of memory");
        return;
    }
    for (size_t i = 0; i < blen; i++)
        body[i] = (char)('A' + (i * 11) % 26);
    char ca[128], url[128], want[128];
    snprintf(ca, sizeof ca, "%s/ca.pem", g_tmpdir);
    snprintf(url, sizeof url, "https://127.0.0.1:%d/h2/echo", g_https_port);
    struct wd_upstream_req r = req_get(url);
    r.tls_ca = ca;
    r.method = "POST";
    r.body = body;
    r.body_len = blen;
    struct tx t = {.name = "h2-post"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 5000);
    snprintf(want, sizeof want, "proto=2.0 method=POST len=%zu fnv=%08x", blen, fnv1a(body, blen));
    bool ok = t.ndone == 1 && t.res == WD_UP_OK && t.status == 200 && t.body && strcmp(t.body, want) == 0;
    if (!ok) {
        diag_tx(&t);
        diag("body '%s', want '%s'", t.body ? t.body : "", want);
    }
    check(ok, "h2 POST: a %zu-byte body arrives whole", blen);
    tx_free(&t);
    free(body);
}

/* max_response_bytes: the transfer stops once the body would pass it, with nothing past it delivered. */
static void check_max_response(void)
{
    char url[128];
    url_h1(url, sizeof url, "/endless?id=cap");
    struct wd_upstream_req r = req_get(url);
    r.max_response_bytes = 40; /* "data: start\n\n" then "data: N\n\n" every 50 ms */
    r.max_error_bytes = 1;     /* for other statuses only: a 200 is held to the 40 */
    struct tx t = {.name = "cap"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 3000);
    double closed = wait_server_closed("cap", 2000);
    bool ok = t.ndone == 1 && t.res == WD_UP_ERR_TOO_LARGE && t.nresp == 1 && t.status == 200 && t.len > 0 &&
              t.len <= 40 && closed >= 0;
    if (!ok)
        diag_tx(&t);
    check(ok, "max_response_bytes 40 -> TOO_LARGE after %zu bytes ('%s'), server saw the close", t.len, t.detail);
    tx_free(&t);
}

static void check_cancel_self_on_data(void)
{
    char url[128];
    url_h1(url, sizeof url, "/endless?id=c1");
    struct wd_upstream_req r = req_get(url);
    struct tx t = {.name = "cancel-on-data", .cancel_self_on_data = true};
    tx_start(&t, g_up, &r);
    run_until(has_data, &t, 3000);
    run_for(300); /* the fake writes every 50 ms: anything delivered now would be late */
    double closed = wait_server_closed("c1", 2000);
    bool ok = t.ndata == 1 && t.ndone == 0 && t.late_calls == 0 && closed >= 0;
    if (!ok)
        diag_tx(&t);
    check(ok, "cancel inside on_data: no callback afterwards, server saw the connection close (%.0f ms)",
          closed);
    tx_free(&t);
}

static void check_h2(void)
{
    if (g_https_port <= 0) {
        check(false, "HTTPS h2 with a private CA: no TLS fake (certificate generation failed?)");
        check(false, "h2 stream cancel: no TLS fake");
        check(false, "HTTPS without tls_ca fails with CONNECT: no TLS fake");
        return;
    }
    char ca[128];
    snprintf(ca, sizeof ca, "%s/ca.pem", g_tmpdir);
    enum { N = 5 };
    char url[128];
    snprintf(url, sizeof url, "https://127.0.0.1:%d/h2/barrier?n=%d", g_https_port, N);
    struct tx t[N];
    memset(t, 0, sizeof t);
    for (int i = 0; i < N; i++) {
        struct wd_upstream_req r = req_get(url);
        r.tls_ca = ca;
        t[i].name = "h2";
        tx_start(&t[i], g_up, &r);
    }
    struct txset s = {t, N};
    run_until(set_done, &s, 6000);
    int good = 0;
    char first_remote[32] = "";
    for (int i = 0; i < N; i++) {
        const char *rem = t[i].body ? strstr(t[i].body, "remote=") : NULL;
        if (i == 0 && rem)
            snprintf(first_remote, sizeof first_remote, "%s", rem);
        if (t[i].ndone == 1 && t[i].res == WD_UP_OK && t[i].status == 200 && t[i].body &&
            strncmp(t[i].body, "proto=2.0 concurrent=yes conns=1 ", 33) == 0 && rem &&
            strcmp(rem, first_remote) == 0)
            good++;
        else {
            diag_tx(&t[i]);
            diag("body '%s'", t[i].body ? t[i].body : "");
        }
        tx_free(&t[i]);
    }
    check(good == N, "HTTPS with a private CA: HTTP/2 negotiated, %d concurrent streams on one connection",
          good);

    /* Cancel one h2 stream from its on_data while a sibling on the same connection carries on. */
    char ue[128], us[128];
    snprintf(ue, sizeof ue, "https://127.0.0.1:%d/h2/endless?id=h1", g_https_port);
    snprintf(us, sizeof us, "https://127.0.0.1:%d/h2/slow?ms=400", g_https_port);
    struct wd_upstream_req re = req_get(ue), rs = req_get(us);
    re.tls_ca = rs.tls_ca = ca;
    struct tx e = {.name = "h2-cancelled", .cancel_self_on_data = true}, sib = {.name = "h2-sibling"};
    tx_start(&sib, g_up, &rs);
    tx_start(&e, g_up, &re);
    double e_closed = wait_server_closed("h1", 2000);
    run_until(one_done, &sib, 3000);
    run_for(100);
    const char *srem = sib.body ? strstr(sib.body, "remote=") : NULL;
    bool ok = e.ndata == 1 && e.ndone == 0 && e.late_calls == 0 && e_closed >= 0 && sib.ndone == 1 &&
              sib.res == WD_UP_OK && sib.body && strncmp(sib.body, "proto=2.0 ", 10) == 0 && srem &&
              strcmp(srem, first_remote) == 0;
    if (!ok) {
        diag_tx(&e);
        diag_tx(&sib);
        diag("sibling body '%s', first connection %s", sib.body ? sib.body : "", first_remote);
    }
    check(ok, "h2: cancelling a stream in on_data resets it (server saw it close) while a sibling stream "
              "on the same connection completes");
    tx_free(&e);
    tx_free(&sib);

    snprintf(url, sizeof url, "https://127.0.0.1:%d/h2/plain", g_https_port);
    struct wd_upstream_req r = req_get(url);
    struct tx u = {.name = "no-ca"};
    tx_start(&u, g_up, &r);
    run_until(one_done, &u, 3000);
    ok = u.ndone == 1 && u.res == WD_UP_ERR_CONNECT && u.nresp == 0;
    if (!ok)
        diag_tx(&u);
    check(ok, "HTTPS without tls_ca fails certificate verification -> CONNECT ('%s')", u.detail);
    tx_free(&u);
}

static void check_retry_after(void)
{
    const char *paths[] = {"/retry-after?v=7&hints=1", "/retry-after?v=date30", "/retry-after"};
    struct tx t[3];
    memset(t, 0, sizeof t);
    for (int i = 0; i < 3; i++) {
        char url[128];
        url_h1(url, sizeof url, paths[i]);
        struct wd_upstream_req r = req_get(url);
        t[i].name = paths[i];
        tx_start(&t[i], g_up, &r);
        run_until(one_done, &t[i], 3000);
    }
    bool ok = t[0].ndone == 1 && t[0].res == WD_UP_OK && t[0].status == 429 && t[0].retry_after == 7 &&
              strcmp(t[0].ct, "application/json") == 0;
    if (!ok)
        diag_tx(&t[0]);
    check(ok, "Retry-After: 7 -> %ld s, status 429 (after an interim 103), content type '%s'",
          t[0].retry_after, t[0].ct);
    ok = t[1].ndone == 1 && t[1].retry_after >= 28 && t[1].retry_after <= 31 && t[2].ndone == 1 &&
         t[2].retry_after == -1;
    if (!ok) {
        diag_tx(&t[1]);
        diag_tx(&t[2]);
    }
    check(ok, "Retry-After as an HTTP-date 30 s ahead -> %ld s; absent -> %ld", t[1].retry_after,
          t[2].retry_after);
    for (int i = 0; i < 3; i++)
        tx_free(&t[i]);
}

static void check_cancel_on_response(void)
{
    char url[128];
    url_h1(url, sizeof url, "/endless?id=c2");
    struct wd_upstream_req r = req_get(url);
    struct tx t = {.name = "cancel-on-response", .cancel_self_on_response = true};
    tx_start(&t, g_up, &r);
    double closed = wait_server_closed("c2", 3000);
    run_for(200);
    bool ok = t.nresp == 1 && t.ndata == 0 && t.ndone == 0 && t.late_calls == 0 && closed >= 0;
    if (!ok)
        diag_tx(&t);
    check(ok, "cancel inside on_response: no data or on_done afterwards, server saw the close");
    tx_free(&t);
}

static void check_cancel_other(void)
{
    char ua[128], ub[128], ud[128];
    url_h1(ua, sizeof ua, "/endless?id=c3");
    url_h1(ub, sizeof ub, "/endless?id=c4");
    url_h1(ud, sizeof ud, "/delay-headers?ms=5000&id=c6");
    struct wd_upstream_req ra = req_get(ua), rb = req_get(ub), rd = req_get(ud);
    struct tx a = {.name = "canceller"}, b = {.name = "streaming-victim"}, d = {.name = "stalled-victim"};
    struct tx c = {.name = "canceller2"};
    tx_start(&b, g_up, &rb);
    tx_start(&d, g_up, &rd);
    run_until(has_data, &b, 3000);
    a.cancel_on_data = &b;
    tx_start(&a, g_up, &ra);
    run_until(has_data, &a, 3000);
    /* d gets no callback from curl that could abort it: only the deferred detach can close it. */
    char uc[128];
    url_h1(uc, sizeof uc, "/conn");
    struct wd_upstream_req rc = req_get(uc);
    c.cancel_on_data = &d;
    tx_start(&c, g_up, &rc);
    run_until(one_done, &c, 3000);
    run_for(200);
    int b_data = b.ndata;
    double b_closed = wait_server_closed("c4", 2000);
    double d_closed = wait_server_closed("c6", 2000);
    /* And a plain cancel from outside any callback. */
    tx_mark_cancelled(&a);
    wd_upstream_cancel(a.x);
    double a_closed = wait_server_closed("c3", 2000);
    run_for(150);
    bool ok = b_data >= 1 && b.ndata == b_data && b.ndone == 0 && b.late_calls == 0 && b_closed >= 0 &&
              d.nresp == 0 && d.ndone == 0 && d.late_calls == 0 && d_closed >= 0 && c.res == WD_UP_OK &&
              a.ndata >= 2 && a.ndone == 0 && a.late_calls == 0 && a_closed >= 0;
    if (!ok) {
        diag_tx(&a);
        diag_tx(&b);
        diag_tx(&c);
        diag_tx(&d);
        diag("closed after: b %.0f ms, d %.0f ms, a %.0f ms", b_closed, d_closed, a_closed);
    }
    check(ok, "cancel of other transfers (streaming, and waiting for headers) inside on_data, then cancel "
              "from outside: all silent, all connections closed");
    tx_free(&a);
    tx_free(&b);
    tx_free(&c);
    tx_free(&d);
}

static void check_cancel_and_start_in_done(void)
{
    char ua[128], ub[128], uc[128];
    url_h1(ua, sizeof ua, "/slow?ms=200&id=a");
    url_h1(ub, sizeof ub, "/endless?id=c5");
    url_h1(uc, sizeof uc, "/slow?ms=10&id=c");
    struct wd_upstream_req ra = req_get(ua), rb = req_get(ub), rc = req_get(uc);
    struct tx a = {.name = "done-canceller"}, b = {.name = "done-victim"}, c = {.name = "fallback"};
    a.cancel_on_done = &b;
    a.start_on_done = &c;
    a.start_on_done_req = &rc;
    tx_start(&b, g_up, &rb);
    tx_start(&a, g_up, &ra);
    run_until(one_done, &c, 3000);
    double closed = wait_server_closed("c5", 2000);
    run_for(150);
    bool ok = a.ndone == 1 && a.res == WD_UP_OK && b.ndata >= 1 && b.ndone == 0 && b.late_calls == 0 &&
              closed >= 0 && c.ndone == 1 && c.res == WD_UP_OK && c.body && strcmp(c.body, "id=c") == 0;
    if (!ok) {
        diag_tx(&a);
        diag_tx(&b);
        diag_tx(&c);
    }
    check(ok, "inside on_done: cancelling another transfer and starting a new one both work");
    tx_free(&a);
    tx_free(&b);
    tx_free(&c);
}

static void check_no_body(void)
{
    char url[128];
    url_h1(url, sizeof url, "/no-body");
    struct wd_upstream_req r = req_get(url);
    r.method = "POST"; /* with no body: must not read stdin or hang */
    struct tx t = {.name = "no-body"};
    tx_start(&t, g_up, &r);
    run_until(one_done, &t, 3000);
    bool ok = t.ndone == 1 && t.res == WD_UP_OK && t.nresp == 1 && t.status == 204 && t.ndata == 0 &&
              !t.order_bad;
    if (!ok)
        diag_tx(&t);
    check(ok, "204 without a body: on_response then on_done");
    tx_free(&t);
}

static void check_bad_header(void)
{
    char url[128];
    url_h1(url, sizeof url, "/conn");
    const struct wd_upstream_header hdrs[] = {{"X-Inject", "a\r\nX-Evil: 1"}};
    struct wd_upstream_req r = req_get(url);
    r.headers = hdrs;
    r.nheaders = 1;
    struct tx t = {.name = "bad-header"};
    tx_start(&t, g_up, &r);
    bool sync_quiet = t.ndone == 0;
    run_until(one_done, &t, 3000);
    bool ok = t.x && sync_quiet && t.ndone == 1 && t.res == WD_UP_ERR_TRANSFER && t.nresp == 0;
    if (!ok)
        diag_tx(&t);
    check(ok, "a header value with CR/LF is refused via on_done, not sent ('%s')", t.detail);
    tx_free(&t);
}

static void check_free_live(void)
{
    /* From outside: three streaming transfers and one not yet begun. */
    struct wd_upstream *up2 = wd_upstream_new(g_loop);
    if (!up2) {
        check(false, "wd_upstream_free with live transfers: wd_upstream_new failed");
        return;
    }
    static char urls[3][128];
    struct tx t[4];
    memset(t, 0, sizeof t);
    const char *ids[3] = {"f1", "f2", "f3"};
    for (int i = 0; i < 3; i++) {
        char path[64];
        snprintf(path, sizeof path, "/endless?id=%s", ids[i]);
        url_h1(urls[i], sizeof urls[i], path);
        struct wd_upstream_req r = req_get(urls[i]);
        t[i].name = ids[i];
        tx_start(&t[i], up2, &r);
    }
    for (int i = 0; i < 3; i++)
        run_until(has_data, &t[i], 3000);
    struct wd_upstream_req r = req_get(urls[0]);
    t[3].name = "never-begun";
    tx_start(&t[3], up2, &r);
    for (int i = 0; i < 4; i++)
        tx_mark_cancelled(&t[i]);
    wd_upstream_free(up2);
    bool closed = true;
    for (int i = 0; i < 3; i++)
        closed = closed && wait_server_closed(ids[i], 2000) >= 0;
    run_for(150);
    int late = 0;
    for (int i = 0; i < 4; i++) {
        late += t[i].late_calls + t[i].ndone;
        tx_free(&t[i]);
    }
    check(closed && late == 0, "wd_upstream_free with live transfers: no callbacks, connections closed");

    /* From inside a callback of one of its transfers. */
    struct wd_upstream *up3 = wd_upstream_new(g_loop);
    if (!up3) {
        check(false, "wd_upstream_free inside on_data: wd_upstream_new failed");
        return;
    }
    char ua[128], ub[128];
    url_h1(ua, sizeof ua, "/endless?id=f4");
    url_h1(ub, sizeof ub, "/delay-headers?ms=3000");
    struct wd_upstream_req ra = req_get(ua), rb = req_get(ub);
    struct tx a = {.name = "freer"}, b = {.name = "bystander"};
    struct tx *marks[2] = {&a, &b};
    a.free_on_data = up3;
    a.mark_on_free = marks;
    a.nmark_on_free = 2;
    tx_start(&b, up3, &rb);
    tx_start(&a, up3, &ra);
    run_until(has_data, &a, 3000);
    double c = wait_server_closed("f4", 2000);
    run_for(150);
    bool ok = a.ndata == 1 && a.ndone == 0 && a.late_calls == 0 && b.ndone == 0 && b.late_calls == 0 &&
              c >= 0;
    if (!ok) {
        diag_tx(&a);
        diag_tx(&b);
    }
    check(ok, "wd_upstream_free inside on_data: no callbacks afterwards, connections closed");
    tx_free(&a);
    tx_free(&b);
}

static void walk_count(uv_handle_t *h, void *arg)
{
    (void)h;
    ++*(int *)arg;
}

int main(int argc, char **argv)
{
    const char *script = argc > 1 ? argv[1] : "tests/fakes/upstream_test_server.mjs";
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    /* Everything here is 127.0.0.1; a proxy from the environment would only get in the way. */
    const char *proxies[] = {"http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "all_proxy",
                             "ALL_PROXY"};
    for (size_t i = 0; i < sizeof proxies / sizeof proxies[0]; i++)
        unsetenv(proxies[i]);

    if (access(script, R_OK) != 0) {
        fprintf(stderr, "upstream_check: fake server script %s not found (run from the repo root)\n", script);
        return 1;
    }
    snprintf(g_tmpdir, sizeof g_tmpdir, "/tmp/wd-upstream-check-XXXXXX");
    if (!mkdtemp(g_tmpdir)) {
        perror("mkdtemp");
        return 1;
    }
    bool certs = make_certs();
    if (!certs)
        diag("certificate generation with the openssl CLI failed; see %s/openssl.log", g_tmpdir);
    if (!start_node(script)) {
        stop_node();
        remove_tmpdir();
        return 1;
    }
    if (wd_upstream_global_init() != 0) {
        fprintf(stderr, "upstream_check: curl_global_init failed\n");
        stop_node();
        remove_tmpdir();
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    g_loop = &loop;
    g_up = wd_upstream_new(g_loop);
    if (!g_up) {
        fprintf(stderr, "upstream_check: wd_upstream_new failed\n");
        return 1;
    }

    check_post_streaming();       /* 1 */
    check_reuse();                /* 2 */
    check_parked_sockets();       /* 3, 4 */
    check_concurrent();           /* 5 */
    check_first_byte_timeout();   /* 6 */
    check_idle_timeout();         /* 7 */
    check_refused();              /* 8 */
    check_cut();                  /* 9 */
    check_cancel_self_on_data();  /* 10 */
    check_h2();                   /* 11, 12, 13 */
    check_retry_after();          /* 14, 15 */
    check_cancel_on_response();   /* 16 */
    check_cancel_other();         /* 17 */
    check_cancel_and_start_in_done(); /* 18 */
    check_no_body();              /* 19 */
    check_bad_header();           /* 20 */
    check_free_live();            /* 21, 22 */
    check_connect_timeout();      /* 23 */
    check_no_silent_resend();     /* 24 */
    check_max_response();         /* 25 */
    check_h2_post();              /* 26 */
    check(g_early_callbacks == 0, "no callback ever ran before wd_upstream_start returned (%d did)",
          g_early_callbacks);
    check(g_flush_bad == 0, "on_flush only ever followed on_data, never on_done or a cancel (%d breaches)",
          g_flush_bad);

    wd_upstream_free(g_up);
    /* The close callbacks release the memory; the loop ends once the last handle is gone. */
    run_for(50);
    uv_run(g_loop, UV_RUN_DEFAULT);
    int left = 0;
    uv_walk(g_loop, walk_count, &left);
    int rc = uv_loop_close(g_loop);
    check(rc == 0 && left == 0, "every uv handle closed after wd_upstream_free (%d left)", left);
    wd_upstream_global_cleanup();
    stop_node();
    remove_tmpdir();
    printf("1..%d\n", g_n);
    return g_failures ? 1 : 0;
}
