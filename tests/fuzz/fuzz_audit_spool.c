/* libFuzzer driver for the audit spool reader: arbitrary bytes as a spool file through wd_audit_scan.
 * Every complete line reaches the callback once, in order, exactly as it is in the file; a last line
 * without its newline is reported as the tail and never read; whatever a line reads as passes the checks
 * of audit_check.h (written again and read back, it is the same); a callback that stops the scan stops it
 * at that line; any line through wd_audit_line_copy is a well-formed COPY row or refused. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "audit_check.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct walk {
    const char *data;
    size_t size;
    size_t off;      /* where the next line must start */
    size_t lines;
    size_t stop_after; /* 0: never stop */
    int kinds[64];   /* the first lines' kinds, for comparing runs */
    bool check;
};

static int on_line(void *ctx, int kind, const struct wd_audit_rec *rec, const uint8_t hash[32],
                   const struct wd_audit_ckpt *ckpt, const char *line, size_t len, const char *why)
{
    struct walk *w = ctx;
    /* the line is the next one of the file, whole, and ends at a newline */
    MUST(line == w->data + w->off);
    MUST(w->off + len < w->size && line[len] == '\n');
    MUST(len == 0 || memchr(line, '\n', len) == NULL);
    /* exactly the parts for its kind */
    MUST((rec != NULL) == (kind == WD_AUDIT_LINE_RECORD || kind == WD_AUDIT_LINE_ANCHOR));
    MUST((hash != NULL) == (rec != NULL));
    MUST((ckpt != NULL) == (kind == WD_AUDIT_LINE_CKPT));
    MUST((why != NULL) == (kind < 0));
    if (len == 0)
        MUST(kind == -1 && strcmp(why, "empty line") == 0);
    if (w->check) {
        audit_check_result(kind, rec, hash, ckpt, why);
        audit_check_copy(line, len); /* any bytes: a row or a refusal, never a crash */
    }
    if (w->lines < 64)
        w->kinds[w->lines] = kind;
    w->off += len + 1;
    w->lines++;
    return w->stop_after != 0 && w->lines >= w->stop_after;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    size_t newlines = 0, last_nl = 0;
    for (size_t i = 0; i < size; i++)
        if (d[i] == '\n') {
            newlines++;
            last_nl = i + 1;
        }

    struct walk w = {.data = d, .size = size, .check = true};
    size_t tail = (size_t)-1;
    size_t n = wd_audit_scan(d, size, on_line, &w, &tail);
    MUST(n == newlines && w.lines == newlines);
    MUST(w.off == last_nl);
    MUST(tail == size - last_nl);

    /* stopped after k lines: the same first k lines, then nothing */
    if (newlines > 0) {
        struct walk s = {.data = d, .size = size, .stop_after = 1 + (size % newlines)};
        size_t stail = (size_t)-1;
        size_t sn = wd_audit_scan(d, size, on_line, &s, &stail);
        MUST(sn == s.stop_after && s.lines == s.stop_after);
        for (size_t i = 0; i < sn && i < 64; i++)
            MUST(s.kinds[i] == w.kinds[i]);
        /* what is left is a tail only when it holds no newline */
        MUST(stail == (s.off < size && memchr(d + s.off, '\n', size - s.off) == NULL ? size - s.off : 0));
    }
    /* without a tail_len */
    struct walk q = {.data = d, .size = size};
    MUST(wd_audit_scan(d, size, on_line, &q, NULL) == newlines);
    return 0;
}
