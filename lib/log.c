/* JSON-lines logger. Every write(2) holds whole lines, so lines stay whole across threads. A worker thread
 * batches its info and debug lines (the access log is one per request) and writes them in one call before its
 * loop waits for events; a warning or an error flushes the batch and goes out at once, in order. */
#include "lib/log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "lib/json.h"
#include "lib/clock.h"

static enum wd_log_level min_level = WD_LOG_INFO;

#define BATCH_FLUSH_BYTES (32u << 10)
static _Thread_local struct wd_buf batch;
static _Thread_local bool batching;

static void write_all(const char *p, size_t n)
{
    while (n > 0) {
        ssize_t r = write(2, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return; /* stderr gone or full: a log line is not worth blocking or failing a request */
        p += r;
        n -= (size_t)r;
    }
}

void wd_log_batch_begin(void) { batching = true; }

void wd_log_flush(void)
{
    if (batch.n > 0)
        write_all(batch.p, batch.n);
    batch.n = 0;
    batch.oom = false;
}

void wd_log_batch_end(void)
{
    wd_log_flush();
    wd_buf_free(&batch);
    batching = false;
}

void wd_log_set_level(enum wd_log_level lvl) { min_level = lvl; }

/* One line: {"time":...,"level":...,"msg":...,fields}\n */
static void put_line(struct wd_buf *b, enum wd_log_level lvl, const char *msg, const char *fields)
{
    static const char *const names[] = {"debug", "info", "warn", "error"};
    char ts[28];
    wd_format_ts(wd_now_us(), ts); /* no printf: the access log calls this once per request */
    wd_buf_puts(b, "{\"time\":\"");
    wd_buf_put(b, ts, 27);
    wd_buf_puts(b, "\",\"level\":\"");
    wd_buf_puts(b, names[lvl]);
    wd_buf_puts(b, "\",\"msg\":");
    wd_json_put_string(b, msg, strlen(msg));
    if (fields != NULL && fields[0] != '\0') {
        wd_buf_putc(b, ',');
        wd_buf_puts(b, fields);
    }
    wd_buf_puts(b, "}\n");
}

void wd_log(enum wd_log_level lvl, const char *msg, const char *fields)
{
    if (lvl < min_level)
        return;
    if (batching && lvl < WD_LOG_WARN) {
        /* straight into the batch, without a buffer of its own to allocate and copy */
        size_t keep = batch.n;
        put_line(&batch, lvl, msg, fields);
        if (!batch.oom) {
            if (batch.n >= BATCH_FLUSH_BYTES)
                wd_log_flush();
            return;
        }
        batch.n = keep; /* the lines before it go out; this one alone, below */
        wd_log_flush();
    } else {
        wd_log_flush();
    }
    struct wd_buf b = {0};
    put_line(&b, lvl, msg, fields);
    if (!b.oom)
        write_all(b.p, b.n);
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
