/* `warden login` (RFC 8628 device flow, or RFC 6749 authorization code with RFC 7636 PKCE on an RFC 8252 loopback
 * redirect) and `warden token` (refresh grant, cached access token). What a login keeps lives in one JSON file per
 * issuer under $XDG_CONFIG_HOME/warden (else ~/.config/warden), mode 0600 in a 0700 directory, always replaced
 * whole by rename so a reader never sees half a file. No token ever goes to stderr. */
#include "cli/login.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <spawn.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <dirent.h>

#include <curl/curl.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "lib/buf.h"
#include "lib/json.h"
#include "net/fetch.h"
#include "net/http_form.h"

extern char **environ;

#define DEFAULT_CLIENT_ID "warden-cli"
#define BASE_SCOPE "openid offline_access"
#define STORE_MAX (64 * 1024)
/* An access token with less left than this is refreshed: the caller still has to send it. */
#define MIN_LEFT_S 60
#define DEVICE_GRANT "urn:ietf:params:oauth:grant-type:device_code"

/* What a login keeps (every string heap-allocated, NULL when absent). */
struct login {
    char *issuer;
    char *client_id;
    char *audience;
    char *token_endpoint;
    char *refresh_token;
    char *access_token;
    int64_t expires_at; /* the access token's, Unix seconds; 0 unknown */
};

static void secret_free(char *s)
{
    if (s != NULL) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static void login_free(struct login *l)
{
    free(l->issuer);
    free(l->client_id);
    free(l->audience);
    free(l->token_endpoint);
    secret_free(l->refresh_token);
    secret_free(l->access_token);
    memset(l, 0, sizeof(*l));
}

static int64_t now_s(void) { return (int64_t)time(NULL); }

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- JSON answers ---- */

/* A string member of object 0, decoded and NUL-terminated on the heap; NULL when absent or not a string. */
static char *jstr(const struct wd_json *j, const char *key)
{
    struct wd_arena a = {0};
    struct wd_str s;
    char *out = NULL;
    if (wd_json_str_decode(j, wd_json_get(j, 0, key), &a, &s) == 0 && memchr(s.p, '\0', s.n) == NULL)
        out = strndup(s.p, s.n);
    wd_arena_free(&a);
    return out;
}

static int64_t jint(const struct wd_json *j, const char *key, int64_t dflt)
{
    int64_t v;
    return wd_json_i64(j, wd_json_get(j, 0, key), &v) == 0 ? v : dflt;
}

static int parse_obj(struct wd_json *j, const struct wd_buf *b)
{
    return wd_json_parse(j, b->p ? b->p : "", b->n) == 0 && j->t[0].type == WD_J_OBJ ? 0 : -1;
}

/* An http(s) URL (the IdP's endpoints must be; a plain-http one only makes sense on loopback, which tests use). */
static bool is_web_url(const char *u)
{
    return u != NULL && (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0);
}

/* ---- the store ---- */

/* $XDG_CONFIG_HOME/warden, else $HOME/.config/warden. */
static int store_dir(char *out, size_t cap)
{
    const char *x = getenv("XDG_CONFIG_HOME");
    int n;
    if (x != NULL && x[0] == '/') { /* the spec ignores a relative XDG_CONFIG_HOME */
        n = snprintf(out, cap, "%s/warden", x);
    } else {
        const char *h = getenv("HOME");
        if (h == NULL || h[0] != '/') {
            fprintf(stderr, "warden: neither XDG_CONFIG_HOME nor HOME is set: nowhere to keep the login\n");
            return -1;
        }
        n = snprintf(out, cap, "%s/.config/warden", h);
    }
    if (n < 0 || (size_t)n >= cap) {
        fprintf(stderr, "warden: the config directory path is too long\n");
        return -1;
    }
    return 0;
}

/* mkdir -p of dir's parents (0700 for those it creates), dir itself 0700 and ours. */
static int ensure_dir(const char *dir)
{
    char p[4096];
    wd_cstr_copy(p, sizeof(p), dir);
    for (char *s = strchr(p + 1, '/'); s != NULL; s = strchr(s + 1, '/')) {
        *s = '\0';
        if (mkdir(p, 0700) != 0 && errno != EEXIST) {
            fprintf(stderr, "warden: cannot create %s: %s\n", p, strerror(errno));
            return -1;
        }
        *s = '/';
    }
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        fprintf(stderr, "warden: cannot create %s: %s\n", dir, strerror(errno));
        return -1;
    }
    struct stat st;
    if (lstat(dir, &st) != 0 || !S_ISDIR(st.st_mode) || st.st_uid != geteuid()) {
        fprintf(stderr, "warden: %s is not a directory of this user\n", dir);
        return -1;
    }
    /* mkdir's mode went through the umask, and an older directory may be open to others */
    if ((st.st_mode & 07777) != 0700 && chmod(dir, 0700) != 0) {
        fprintf(stderr, "warden: cannot make %s private: %s\n", dir, strerror(errno));
        return -1;
    }
    return 0;
}

/* The file of an issuer: its readable part (letters, digits, dots, dashes; the rest '_'), cut to 80 bytes, then
 * a hash of the whole issuer, so two issuers that read alike keep two files. */
static void store_name(const char *issuer, char *out, size_t cap)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a 64 */
    for (const unsigned char *s = (const unsigned char *)issuer; *s != '\0'; s++)
        h = (h ^ *s) * 1099511628211ull;
    const char *p = strstr(issuer, "://");
    p = p != NULL ? p + 3 : issuer;
    char readable[81];
    size_t n = 0;
    for (; *p != '\0' && n < sizeof(readable) - 1; p++) {
        char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '-';
        readable[n++] = keep ? c : '_';
    }
    while (n > 0 && readable[n - 1] == '_')
        n--;
    readable[n] = '\0';
    snprintf(out, cap, "login-%s-%016llx.json", readable, (unsigned long long)h);
}

static void put_member(struct wd_buf *b, const char *key, const char *val)
{
    if (val == NULL)
        return;
    wd_buf_puts(b, b->n > 1 ? ",\n  " : "\n  ");
    wd_json_put_string(b, key, strlen(key));
    wd_buf_puts(b, ": ");
    wd_json_put_string(b, val, strlen(val));
}

/* Replaces dir/name with l: a new file made with O_EXCL (no one else's file, no symlink followed), mode 0600 set
 * with fchmod whatever the umask, flushed, then renamed over the old one. */
static int store_write(const char *dir, const char *name, const struct login *l)
{
    struct wd_buf b = {0};
    wd_buf_putc(&b, '{');
    put_member(&b, "issuer", l->issuer);
    put_member(&b, "client_id", l->client_id);
    put_member(&b, "audience", l->audience);
    put_member(&b, "token_endpoint", l->token_endpoint);
    put_member(&b, "refresh_token", l->refresh_token);
    put_member(&b, "access_token", l->access_token);
    wd_buf_puts(&b, ",\n  \"expires_at\": ");
    wd_buf_put_i64(&b, l->expires_at);
    wd_buf_puts(&b, "\n}\n");
    int rc = -1;
    char tmp[4200], path[4200], rnd[13];
    wd_rand_id(rnd, sizeof(rnd) - 1);
    rnd[sizeof(rnd) - 1] = '\0';
    snprintf(tmp, sizeof(tmp), "%s/.%s.%s.tmp", dir, name, rnd);
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    int fd = -1;
    if (b.oom) {
        fprintf(stderr, "warden: out of memory\n");
        goto out;
    }
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        fprintf(stderr, "warden: cannot create %s: %s\n", tmp, strerror(errno));
        goto out;
    }
    if (fchmod(fd, 0600) != 0)
        goto fail;
    for (size_t off = 0; off < b.n;) {
        ssize_t w = write(fd, b.p + off, b.n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            goto fail;
        off += (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0) {
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) != 0)
        goto fail;
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) { /* the rename itself survives a crash */
        fsync(dfd);
        close(dfd);
    }
    rc = 0;
    goto out;
fail:
    fprintf(stderr, "warden: cannot write %s: %s\n", path, strerror(errno));
    if (fd >= 0)
        close(fd);
    unlink(tmp);
out:
    if (b.p != NULL)
        OPENSSL_cleanse(b.p, b.n);
    wd_buf_free(&b);
    return rc;
}

/* Reads dir/name into l. 0; 1 no such file; -1 unreadable, not ours, open to others or malformed (said on
 * stderr). */
static int store_read(const char *path, struct login *l)
{
    memset(l, 0, sizeof(*l));
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        fprintf(stderr, "warden: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        /* a file others can read has leaked its refresh token already; using it would hide that */
        fprintf(stderr, "warden: %s is not a private file of this user (mode %04o): refusing it\n", path,
                (unsigned)(st.st_mode & 07777));
        close(fd);
        return -1;
    }
    struct wd_buf b = {0};
    char chunk[4096];
    ssize_t r;
    while ((r = read(fd, chunk, sizeof(chunk))) > 0 && b.n + (size_t)r <= STORE_MAX)
        wd_buf_put(&b, chunk, (size_t)r);
    close(fd);
    OPENSSL_cleanse(chunk, sizeof(chunk));
    struct wd_json j = {0};
    int rc = -1;
    if (r != 0 || b.oom || parse_obj(&j, &b) != 0) {
        fprintf(stderr, "warden: %s is not a login file (run `warden login` again)\n", path);
    } else {
        l->issuer = jstr(&j, "issuer");
        l->client_id = jstr(&j, "client_id");
        l->audience = jstr(&j, "audience");
        l->token_endpoint = jstr(&j, "token_endpoint");
        l->refresh_token = jstr(&j, "refresh_token");
        l->access_token = jstr(&j, "access_token");
        l->expires_at = jint(&j, "expires_at", 0);
        if (l->issuer == NULL || l->client_id == NULL || !is_web_url(l->token_endpoint)) {
            fprintf(stderr, "warden: %s lacks the issuer, client id or token endpoint (run `warden login` again)\n",
                    path);
            login_free(l);
        } else {
            rc = 0;
        }
    }
    wd_json_free(&j);
    if (b.p != NULL)
        OPENSSL_cleanse(b.p, b.n);
    wd_buf_free(&b);
    return rc;
}

/* An exclusive lock beside the issuer's file, held until exit: two `warden token` at once must not both spend
 * a refresh token that the IdP rotates (the second would be refused, and some IdPs then revoke the grant). */
static int store_lock(const char *dir, const char *name)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/.%s.lock", dir, name);
    int fd = open(p, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0 || flock(fd, LOCK_EX) != 0) {
        fprintf(stderr, "warden: cannot lock %s: %s\n", p, strerror(errno));
        if (fd >= 0)
            close(fd);
        return -1;
    }
    return fd;
}

/* ---- HTTP ---- */

/* Text from the IdP goes to a terminal: control characters (escape sequences) become '?'. */
static void printable(char *s)
{
    for (; s != NULL && *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            *s = '?';
}

/* An OAuth error answer's "error" (and description) into msg; a generic line when the body says nothing. */
static void oauth_error(const struct wd_buf *b, long status, char *err, size_t cap, char *msg, size_t msg_cap)
{
    struct wd_json j = {0};
    err[0] = '\0';
    snprintf(msg, msg_cap, "HTTP %ld", status);
    if (parse_obj(&j, b) == 0) {
        char *e = jstr(&j, "error"), *d = jstr(&j, "error_description");
        if (e != NULL) {
            wd_cstr_copy(err, cap, e);
            snprintf(msg, msg_cap, "%s%s%s", e, d ? ": " : "", d ? d : "");
        }
        free(e);
        free(d);
    }
    printable(msg);
    wd_json_free(&j);
}

/* POSTs a form and parses the answer as a JSON object. 0 a 200 object; 1 an answer of another status (err/msg
 * from its body); -1 no usable answer (msg says why). */
static int post(const char *url, const char *const *fields, struct wd_buf *b, struct wd_json *j, char *err,
                size_t err_cap, char *msg, size_t msg_cap)
{
    long status = 0;
    char e[200];
    err[0] = '\0';
    if (wd_http_form_post(&(struct wd_http_form){.url = url, .fields = fields, .timeout_ms = 15000}, b, &status, e,
                          sizeof(e)) != 0) {
        snprintf(msg, msg_cap, "%s", e);
        return -1;
    }
    if (status != 200) {
        oauth_error(b, status, err, err_cap, msg, msg_cap);
        return 1;
    }
    if (parse_obj(j, b) != 0) {
        snprintf(msg, msg_cap, "the answer is not a JSON object");
        return -1;
    }
    return 0;
}

/* A token endpoint's 200 answer into l (access token, its expiry, and the refresh token when one came). */
static int take_tokens(const struct wd_json *j, struct login *l)
{
    char *at = jstr(j, "access_token");
    if (at == NULL || at[0] == '\0') {
        free(at);
        fprintf(stderr, "warden: the token endpoint's answer has no access_token\n");
        return -1;
    }
    secret_free(l->access_token);
    l->access_token = at;
    int64_t ttl = jint(j, "expires_in", 0);
    l->expires_at = ttl > 0 ? now_s() + ttl : 0;
    char *rt = jstr(j, "refresh_token");
    if (rt != NULL && rt[0] != '\0') {
        secret_free(l->refresh_token);
        l->refresh_token = rt;
    } else {
        free(rt);
    }
    return 0;
}

/* The issuer's discovery document; its issuer must be the one asked for (OpenID Connect Discovery 4.3). */
static int discover(const char *issuer, char **token_ep, char **device_ep, char **auth_ep)
{
    char url[2100];
    size_t n = strlen(issuer);
    snprintf(url, sizeof(url), "%s%s.well-known/openid-configuration", issuer,
             n > 0 && issuer[n - 1] == '/' ? "" : "/");
    struct wd_buf b = {0};
    char e[200];
    int rc = -1;
    if (wd_fetch_get(&(struct wd_fetch){.url = url, .timeout_ms = 15000}, &b, e, sizeof(e)) != 0) {
        fprintf(stderr, "warden login: %s: %s\n", url, e);
        wd_buf_free(&b);
        return -1;
    }
    struct wd_json j = {0};
    char *iss = NULL;
    if (parse_obj(&j, &b) != 0) {
        fprintf(stderr, "warden login: %s is not a JSON object\n", url);
    } else if ((iss = jstr(&j, "issuer")) == NULL || strcmp(iss, issuer) != 0) {
        printable(iss);
        fprintf(stderr, "warden login: the discovery document names issuer '%s', not '%s'\n", iss ? iss : "",
                issuer);
    } else {
        *token_ep = jstr(&j, "token_endpoint");
        *device_ep = jstr(&j, "device_authorization_endpoint");
        *auth_ep = jstr(&j, "authorization_endpoint");
        if (is_web_url(*token_ep))
            rc = 0;
        else
            fprintf(stderr, "warden login: the discovery document has no token_endpoint\n");
    }
    free(iss);
    wd_json_free(&j);
    wd_buf_free(&b);
    return rc;
}

/* ---- device flow (RFC 8628) ---- */

static void sleep_ms(int64_t ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static int device_flow(const char *device_ep, const char *scope, int timeout_s, struct login *l)
{
    if (!is_web_url(device_ep)) {
        fprintf(stderr, "warden login: the issuer offers no device flow (no device_authorization_endpoint); "
                        "try --flow code\n");
        return -1;
    }
    const char *f1[] = {"client_id", l->client_id, "scope", scope, "resource", l->audience, NULL};
    struct wd_buf b = {0};
    struct wd_json j = {0};
    char err[64], msg[400];
    int prc = post(device_ep, f1, &b, &j, err, sizeof(err), msg, sizeof(msg));
    if (prc != 0) {
        fprintf(stderr, "warden login: device authorization refused: %s\n", msg);
        wd_json_free(&j);
        wd_buf_free(&b);
        return -1;
    }
    char *device_code = jstr(&j, "device_code"), *user_code = jstr(&j, "user_code");
    char *vuri = jstr(&j, "verification_uri"), *vuri_full = jstr(&j, "verification_uri_complete");
    int64_t expires_in = jint(&j, "expires_in", 600), interval = jint(&j, "interval", 5);
    wd_json_free(&j);
    wd_buf_free(&b);
    int rc = -1;
    if (device_code == NULL || user_code == NULL || vuri == NULL) {
        fprintf(stderr, "warden login: the device authorization answer lacks device_code, user_code or "
                        "verification_uri\n");
        goto out;
    }
    if (interval < 1)
        interval = 5;
    printable(user_code);
    printable(vuri);
    printable(vuri_full);
    fprintf(stderr, "To sign in, open %s and enter the code %s\n", vuri, user_code);
    if (vuri_full != NULL)
        fprintf(stderr, "  (or open %s)\n", vuri_full);
    fprintf(stderr, "user code: %s\nwaiting for the sign-in...\n", user_code);
    int64_t bound_s = expires_in > 0 && expires_in < timeout_s ? expires_in : timeout_s;
    int64_t deadline = mono_ms() + bound_s * 1000;
    bool said_net = false;
    for (;;) {
        if (mono_ms() + interval * 1000 > deadline) {
            fprintf(stderr, "warden login: the sign-in did not complete within %lld s\n", (long long)bound_s);
            goto out;
        }
        sleep_ms(interval * 1000);
        const char *f2[] = {"grant_type", DEVICE_GRANT, "device_code", device_code, "client_id", l->client_id,
                            NULL};
        struct wd_buf tb = {0};
        struct wd_json tj = {0};
        prc = post(l->token_endpoint, f2, &tb, &tj, err, sizeof(err), msg, sizeof(msg));
        if (prc == 0)
            rc = take_tokens(&tj, l);
        wd_json_free(&tj);
        if (tb.p != NULL)
            OPENSSL_cleanse(tb.p, tb.n);
        wd_buf_free(&tb);
        if (prc == 0)
            goto out;
        if (prc < 0) { /* a network blip: the device code is still good, keep polling */
            if (!said_net)
                fprintf(stderr, "warden login: polling the token endpoint: %s (retrying)\n", msg);
            said_net = true;
            continue;
        }
        if (strcmp(err, "authorization_pending") == 0)
            continue;
        if (strcmp(err, "slow_down") == 0) { /* RFC 8628 3.5: 5 s more from now on */
            interval += 5;
            continue;
        }
        if (strcmp(err, "access_denied") == 0)
            fprintf(stderr, "warden login: the sign-in was refused (%s)\n", msg);
        else if (strcmp(err, "expired_token") == 0)
            fprintf(stderr, "warden login: the code expired before the sign-in (%s)\n", msg);
        else
            fprintf(stderr, "warden login: the token endpoint refused: %s\n", msg);
        goto out;
    }
out:
    secret_free(device_code);
    free(user_code);
    free(vuri);
    free(vuri_full);
    return rc;
}

/* ---- authorization code + PKCE on a loopback redirect (RFC 7636, RFC 8252 7.3) ---- */

static void b64url(const unsigned char *p, size_t n, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < n; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
        out[o++] = tab[v >> 18 & 63];
        out[o++] = tab[v >> 12 & 63];
        if (i + 1 < n)
            out[o++] = tab[v >> 6 & 63];
        if (i + 2 < n)
            out[o++] = tab[v & 63];
    }
    out[o] = '\0';
}

/* 32 random bytes as base64url (43 characters): a PKCE verifier (RFC 7636 4.1) or a state value. */
static int random_token(char out[44])
{
    unsigned char r[32];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return -1;
    b64url(r, sizeof(r), out);
    OPENSSL_cleanse(r, sizeof(r));
    return 0;
}

/* The value of name in a query string (a=b&c=d), percent-decoded, on the heap; NULL when absent. */
static char *query_param(const char *q, size_t qn, const char *name)
{
    size_t nl = strlen(name);
    const char *p = q, *end = q + qn;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *e = amp ? amp : end;
        if ((size_t)(e - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
            const char *v = p + nl + 1;
            size_t vn = (size_t)(e - v);
            char *out = malloc(vn + 1);
            if (out == NULL)
                return NULL;
            size_t o = 0;
            for (size_t i = 0; i < vn; i++) {
                int hi, lo;
                if (v[i] == '+') {
                    out[o++] = ' ';
                } else if (v[i] == '%' && i + 2 < vn &&
                           (hi = OPENSSL_hexchar2int((unsigned char)v[i + 1])) >= 0 &&
                           (lo = OPENSSL_hexchar2int((unsigned char)v[i + 2])) >= 0) {
                    out[o++] = (char)(hi << 4 | lo);
                    i += 2;
                } else {
                    out[o++] = v[i];
                }
            }
            out[o] = '\0';
            return out;
        }
        p = e + 1;
    }
    return NULL;
}

static void http_answer(int fd, int status, const char *text)
{
    char buf[600];
    int n = snprintf(buf, sizeof(buf),
                     "HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %zu\r\n"
                     "cache-control: no-store\r\nconnection: close\r\n\r\n%s",
                     status, status == 200 ? "OK" : status == 404 ? "Not Found" : "Bad Request", strlen(text), text);
    if (n > 0 && (size_t)n < sizeof(buf)) {
        ssize_t w = write(fd, buf, (size_t)n);
        (void)w; /* the browser's tab is a courtesy: the login goes on either way */
    }
}

/* Reads one request head (up to 8 KiB, at most until deadline) from a connection. Its length, or -1. */
static ssize_t read_head(int fd, char *buf, size_t cap, int64_t deadline)
{
    size_t n = 0;
    while (n < cap - 1) {
        int64_t left = deadline - mono_ms();
        struct pollfd pf = {fd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, (int)(left > 10000 ? 10000 : left)) <= 0)
            return -1;
        ssize_t r = read(fd, buf + n, cap - 1 - n);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = '\0';
        if (strstr(buf, "\r\n\r\n") != NULL || strstr(buf, "\n\n") != NULL)
            return (ssize_t)n;
    }
    return -1;
}

/* Waits on the listener for GET /callback?...; other paths (a browser's favicon) get a 404 and the wait goes
 * on. 0 with *code set; -1 (said on stderr). */
static int wait_callback(int lfd, const char *issuer, const char *state, int64_t deadline, char **code)
{
    for (;;) {
        int64_t left = deadline - mono_ms();
        struct pollfd pf = {lfd, POLLIN, 0};
        if (left <= 0 || poll(&pf, 1, (int)(left > 60000 ? 60000 : left)) < 0) {
            fprintf(stderr, "warden login: no answer came to the redirect in time\n");
            return -1;
        }
        if (pf.revents == 0)
            continue;
        int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0)
            continue;
        char req[8192];
        /* a browser may open a connection it never uses: such a one holds the wait up a few seconds at most */
        ssize_t n = read_head(fd, req, sizeof(req), mono_ms() + 5000 < deadline ? mono_ms() + 5000 : deadline);
        const char *path = n > 4 && memcmp(req, "GET ", 4) == 0 ? req + 4 : NULL;
        size_t pl = path ? strcspn(path, " \r\n") : 0;
        if (path == NULL || pl < 9 || memcmp(path, "/callback", 9) != 0 || (pl > 9 && path[9] != '?')) {
            http_answer(fd, 404, "not found\n");
            close(fd);
            continue;
        }
        const char *q = path + (pl > 9 ? 10 : 9);
        size_t qn = pl > 9 ? pl - 10 : 0;
        char *st = query_param(q, qn, "state"), *c = query_param(q, qn, "code");
        char *e = query_param(q, qn, "error"), *ed = query_param(q, qn, "error_description");
        char *iss = query_param(q, qn, "iss");
        int rc = -1;
        if (st == NULL || strcmp(st, state) != 0) {
            /* not the answer to this login's request (CSRF, or a stale tab): never exchange its code */
            http_answer(fd, 400, "This sign-in answer does not belong to this warden login.\n");
            fprintf(stderr, "warden login: the redirect's state does not match this login's: refused\n");
        } else if (iss != NULL && strcmp(iss, issuer) != 0) {
            /* RFC 9207: an answer from another issuer than the one asked (a mix-up attack) */
            http_answer(fd, 400, "This sign-in answer comes from another issuer.\n");
            printable(iss);
            fprintf(stderr, "warden login: the redirect names issuer '%s', not this login's: refused\n", iss);
        } else if (e != NULL) {
            http_answer(fd, 400, "Sign-in failed. See the terminal.\n");
            printable(e);
            printable(ed);
            fprintf(stderr, "warden login: the sign-in was refused (%s%s%s)\n", e, ed ? ": " : "", ed ? ed : "");
        } else if (c == NULL || c[0] == '\0') {
            http_answer(fd, 400, "No authorization code in this answer.\n");
            fprintf(stderr, "warden login: the redirect carries no code\n");
        } else {
            http_answer(fd, 200, "Signed in to Warden. You can close this tab.\n");
            *code = c;
            c = NULL;
            rc = 0;
        }
        close(fd);
        OPENSSL_cleanse(req, sizeof(req));
        free(st);
        free(iss);
        secret_free(c);
        free(e);
        free(ed);
        return rc;
    }
}

static void open_browser(const char *url)
{
    char *argv[] = {(char *)"xdg-open", (char *)url, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    pid_t pid;
    /* no browser is fine: the URL is on stderr. The child is not waited for; it is reparented at our exit. */
    if (posix_spawnp(&pid, "xdg-open", &fa, NULL, argv, environ) != 0)
        fprintf(stderr, "(could not start a browser: open the URL yourself)\n");
    posix_spawn_file_actions_destroy(&fa);
}

static int code_flow(const char *auth_ep, const char *scope, bool no_browser, int timeout_s, struct login *l)
{
    if (!is_web_url(auth_ep)) {
        fprintf(stderr, "warden login: the issuer has no authorization_endpoint; try --flow device\n");
        return -1;
    }
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t sl = sizeof(sa);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 8) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        fprintf(stderr, "warden login: cannot listen on 127.0.0.1: %s\n", strerror(errno));
        if (lfd >= 0)
            close(lfd);
        return -1;
    }
    char redirect[64], verifier[44], state[44], challenge[44];
    snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%u/callback", (unsigned)ntohs(sa.sin_port));
    unsigned char dig[SHA256_DIGEST_LENGTH];
    if (random_token(verifier) != 0 || random_token(state) != 0) {
        fprintf(stderr, "warden login: no randomness\n");
        close(lfd);
        return -1;
    }
    SHA256((const unsigned char *)verifier, strlen(verifier), dig);
    b64url(dig, sizeof(dig), challenge);
    /* prompt=consent: OpenID Connect Core 11 grants offline_access (the refresh token) only after consent */
    const char *q[] = {"response_type", "code", "client_id", l->client_id, "redirect_uri", redirect, "scope", scope,
                       "state", state, "code_challenge", challenge, "code_challenge_method", "S256",
                       "prompt", "consent", "resource", l->audience, NULL};
    struct wd_buf url = {0};
    wd_buf_puts(&url, auth_ep);
    wd_buf_putc(&url, strchr(auth_ep, '?') ? '&' : '?');
    wd_http_form_encode(q, &url);
    wd_buf_putc(&url, '\0');
    int rc = -1;
    char *code = NULL;
    if (url.oom) {
        fprintf(stderr, "warden login: out of memory\n");
        goto out;
    }
    fprintf(stderr, "To sign in, open this URL in a browser:\n  %s\nwaiting for the sign-in on %s ...\n", url.p,
            redirect);
    if (!no_browser)
        open_browser(url.p);
    if (wait_callback(lfd, l->issuer, state, mono_ms() + (int64_t)timeout_s * 1000, &code) != 0)
        goto out;
    close(lfd);
    lfd = -1;
    const char *f[] = {"grant_type", "authorization_code", "code", code, "redirect_uri", redirect,
                       "client_id", l->client_id, "code_verifier", verifier, "resource", l->audience, NULL};
    struct wd_buf b = {0};
    struct wd_json j = {0};
    char err[64], msg[400];
    int prc = post(l->token_endpoint, f, &b, &j, err, sizeof(err), msg, sizeof(msg));
    if (prc == 0)
        rc = take_tokens(&j, l);
    else
        fprintf(stderr, "warden login: the code exchange was refused: %s\n", msg);
    wd_json_free(&j);
    if (b.p != NULL)
        OPENSSL_cleanse(b.p, b.n);
    wd_buf_free(&b);
out:
    if (lfd >= 0)
        close(lfd);
    secret_free(code);
    OPENSSL_cleanse(verifier, sizeof(verifier));
    wd_buf_free(&url);
    return rc;
}

/* ---- the commands ---- */

void wd_cli_login_usage(FILE *f)
{
    fprintf(f, "  warden login --issuer URL [--client-id ID] [--scope S] [--audience A] [--flow device|code]\n"
               "               [--no-browser] [--timeout SECONDS]\n"
               "                                 sign in at an OIDC issuer (device flow by default, or\n"
               "                                 authorization code + PKCE on a loopback redirect) and keep the\n"
               "                                 refresh token in ~/.config/warden (mode 0600)\n"
               "  warden token [--issuer URL]    print a fresh access token on stdout (for apiKeyHelper,\n"
               "                                 Codex CLI's token command, $(warden token) in scripts)\n");
}

/* "openid offline_access" and the asked scopes, each word once. */
static void build_scope(const char *extra, struct wd_buf *out)
{
    wd_buf_puts(out, BASE_SCOPE);
    const char *p = extra ? extra : "";
    while (*p != '\0') {
        while (*p == ' ')
            p++;
        size_t n = strcspn(p, " ");
        if (n == 0)
            break;
        bool dup = (n == 6 && memcmp(p, "openid", 6) == 0) || (n == 14 && memcmp(p, "offline_access", 14) == 0);
        if (!dup) {
            wd_buf_putc(out, ' ');
            wd_buf_put(out, p, n);
        }
        p += n;
    }
    wd_buf_putc(out, '\0');
}

static int usage_error(const char *cmd, const char *arg)
{
    fprintf(stderr, "warden %s: unexpected argument '%s' (warden --help)\n", cmd, arg);
    return 2;
}

int wd_cli_login(int argc, char **argv)
{
    const char *issuer = NULL, *client_id = DEFAULT_CLIENT_ID, *scope = NULL, *audience = NULL, *flow = "device";
    bool no_browser = false;
    int timeout_s = 900;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--no-browser") == 0) {
            no_browser = true;
            continue;
        }
        if (v == NULL)
            return usage_error("login", a);
        if (strcmp(a, "--issuer") == 0)
            issuer = v;
        else if (strcmp(a, "--client-id") == 0)
            client_id = v;
        else if (strcmp(a, "--scope") == 0)
            scope = v;
        else if (strcmp(a, "--audience") == 0)
            audience = v;
        else if (strcmp(a, "--flow") == 0)
            flow = v;
        else if (strcmp(a, "--timeout") == 0)
            timeout_s = atoi(v);
        else
            return usage_error("login", a);
        i++;
    }
    if (issuer == NULL || !is_web_url(issuer)) {
        fprintf(stderr, "warden login: --issuer URL (http or https) is required\n");
        return 2;
    }
    if (strcmp(flow, "device") != 0 && strcmp(flow, "code") != 0) {
        fprintf(stderr, "warden login: --flow is device or code\n");
        return 2;
    }
    if (client_id[0] == '\0' || timeout_s < 1) {
        fprintf(stderr, "warden login: --client-id must not be empty and --timeout must be positive\n");
        return 2;
    }
    char dir[4096], name[160], path[4400];
    if (store_dir(dir, sizeof(dir)) != 0)
        return 1;
    store_name(issuer, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    struct login l = {0};
    char *device_ep = NULL, *auth_ep = NULL;
    struct wd_buf sc = {0};
    int rc = 1;
    l.issuer = strdup(issuer);
    l.client_id = strdup(client_id);
    l.audience = audience ? strdup(audience) : NULL;
    build_scope(scope, &sc);
    if (l.issuer == NULL || l.client_id == NULL || (audience && l.audience == NULL) || sc.oom) {
        fprintf(stderr, "warden login: out of memory\n");
        goto out;
    }
    /* the directory first: a login that cannot be kept is not worth the user's sign-in */
    if (ensure_dir(dir) != 0 || discover(issuer, &l.token_endpoint, &device_ep, &auth_ep) != 0)
        goto out;
    int frc = strcmp(flow, "device") == 0 ? device_flow(device_ep, sc.p, timeout_s, &l)
                                          : code_flow(auth_ep, sc.p, no_browser, timeout_s, &l);
    if (frc != 0)
        goto out;
    int lk = store_lock(dir, name);
    if (lk < 0 || store_write(dir, name, &l) != 0) {
        if (lk >= 0)
            close(lk);
        goto out;
    }
    close(lk);
    fprintf(stderr, "Signed in to %s; kept in %s\n", issuer, path);
    if (l.refresh_token == NULL)
        fprintf(stderr, "warden login: warning: the IdP gave no refresh token (offline_access not granted?): "
                        "`warden token` works until the access token expires\n");
    rc = 0;
out:
    login_free(&l);
    free(device_ep);
    free(auth_ep);
    wd_buf_free(&sc);
    curl_global_cleanup();
    return rc;
}

/* The one login file in dir when no issuer is named: name gets it. 0; -1 (none, or several: said on stderr). */
static int only_login(const char *dir, char *name, size_t cap)
{
    DIR *d = opendir(dir);
    int found = 0;
    if (d != NULL) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            size_t n = strlen(e->d_name);
            if (strncmp(e->d_name, "login-", 6) == 0 && n > 11 && strcmp(e->d_name + n - 5, ".json") == 0) {
                if (found++ == 0)
                    wd_cstr_copy(name, cap, e->d_name);
            }
        }
        closedir(d);
    }
    if (found == 1)
        return 0;
    if (found == 0)
        fprintf(stderr, "warden token: not logged in: run `warden login --issuer URL` first\n");
    else
        fprintf(stderr, "warden token: logged in at %d issuers: name one with --issuer URL\n", found);
    return -1;
}

int wd_cli_token(int argc, char **argv)
{
    const char *issuer = NULL;
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--issuer") == 0 && i + 1 < argc)
            issuer = argv[++i];
        else
            return usage_error("token", argv[i]);
    }
    char dir[4096], name[160], path[4400];
    if (store_dir(dir, sizeof(dir)) != 0)
        return 1;
    if (issuer != NULL)
        store_name(issuer, name, sizeof(name));
    else if (only_login(dir, name, sizeof(name)) != 0)
        return 1;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    struct stat st;
    if (stat(path, &st) != 0) { /* no lock file for an issuer never logged in at */
        fprintf(stderr, "warden token: not logged in at %s: run `warden login --issuer %s` first\n",
                issuer ? issuer : "that issuer", issuer ? issuer : "URL");
        return 1;
    }
    /* held across read, refresh and write: a concurrent caller waits and then finds the fresh token cached */
    int lk = store_lock(dir, name);
    if (lk < 0)
        return 1;
    struct login l;
    int rc = 1;
    int r = store_read(path, &l);
    if (r != 0) {
        if (r > 0)
            fprintf(stderr, "warden token: not logged in: run `warden login --issuer URL` first\n");
        close(lk);
        return 1;
    }
    if (issuer != NULL && strcmp(l.issuer, issuer) != 0) {
        fprintf(stderr, "warden token: %s belongs to issuer %s\n", path, l.issuer);
        goto out;
    }
    if (l.access_token != NULL && l.expires_at - now_s() > MIN_LEFT_S) {
        printf("%s\n", l.access_token);
        rc = fflush(stdout) == 0 ? 0 : 1;
        goto out;
    }
    if (l.refresh_token == NULL) {
        fprintf(stderr, "warden token: the access token expired and there is no refresh token: run "
                        "`warden login --issuer %s` again\n", l.issuer);
        goto out;
    }
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const char *f[] = {"grant_type", "refresh_token", "refresh_token", l.refresh_token, "client_id", l.client_id,
                       "resource", l.audience, NULL};
    struct wd_buf b = {0};
    struct wd_json j = {0};
    char err[64], msg[400];
    int prc = post(l.token_endpoint, f, &b, &j, err, sizeof(err), msg, sizeof(msg));
    if (prc == 0 && take_tokens(&j, &l) == 0 && store_write(dir, name, &l) == 0) {
        printf("%s\n", l.access_token);
        rc = fflush(stdout) == 0 ? 0 : 1;
    } else if (prc > 0) {
        fprintf(stderr, "warden token: the IdP refused the refresh (%s): run `warden login --issuer %s` again\n", msg,
                l.issuer);
    } else if (prc < 0) {
        fprintf(stderr, "warden token: %s: %s\n", l.token_endpoint, msg);
    }
    wd_json_free(&j);
    if (b.p != NULL)
        OPENSSL_cleanse(b.p, b.n);
    wd_buf_free(&b);
    curl_global_cleanup();
out:
    login_free(&l);
    close(lk);
    return rc;
}
