/* JSON-lines logger; a single write(2) per line keeps lines whole across threads. */
#include "server/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "api/json.h"
#include "audit/record.h"

static enum wd_log_level min_level = WD_LOG_INFO;

void wd_log_set_level(enum wd_log_level lvl) { min_level = lvl; }

void wd_log(enum wd_log_level lvl, const char *msg, const char *fields)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    if (lvl < min_level)
        return;
    char ts[28];
    wd_audit_format_ts(wd_audit_now_us(), ts); /* no printf: the access log calls this once per request */
    struct wd_buf b = {0};
    wd_buf_puts(&b, "{\"time\":\"");
    wd_buf_put(&b, ts, 27);
    wd_buf_puts(&b, "\",\"level\":\"");
    wd_buf_puts(&b, names[lvl]);
    wd_buf_puts(&b, "\",\"msg\":");
    wd_json_put_string(&b, msg, strlen(msg));
    if (fields != NULL && fields[0] != '\0') {
        wd_buf_putc(&b, ',');
        wd_buf_puts(&b, fields);
    }
    wd_buf_puts(&b, "}\n");
    if (!b.oom) {
        ssize_t r = write(2, b.p, b.n);
        (void)r;
    }
    wd_buf_free(&b);
}

void wd_logf(enum wd_log_level lvl, const char *fields, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    wd_log(lvl, msg, fields);
}
