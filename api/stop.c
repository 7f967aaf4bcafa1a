/* Stop-sequence filter on canonical events; see stop.h for why Warden matches them itself. */
#include "api/stop.h"

#include "lib/json.h"

static void forward(struct wd_stop_filter *f, const struct wd_event *ev) { f->next->emit(f->next, ev); }

/* Ends the message with an error; nothing after it reaches the client. */
static void fail_oom(struct wd_stop_filter *f)
{
    f->done = true;
    struct wd_event ev = {.type = WD_EV_ERROR, .error_class = WD_ERR_API, .message = WD_STR("out of memory")};
    forward(f, &ev);
}

/* Emits decoded text as a delta of the open text block (escaped again, as canonical text is). */
static bool emit_text(struct wd_stop_filter *f, const char *p, size_t n)
{
    if (n == 0)
        return true;
    f->scratch.n = 0;
    wd_json_put_escaped(&f->scratch, p, n);
    if (f->scratch.oom) {
        fail_oom(f);
        return false;
    }
    struct wd_event d = {.type = WD_EV_DELTA, .index = f->text_index, .part_type = WD_PART_TEXT,
                         .text = {f->scratch.p, f->scratch.n}, .usage = f->usage};
    forward(f, &d);
    return true;
}

/* The match that completes first (the generation would have stopped there); of those ending at the same
 * byte, the longest. */
static bool find_match(const struct wd_stop_filter *f, const char *h, size_t n, size_t *start, size_t *which)
{
    for (size_t e = 1; e <= n; e++) {
        if (!f->last[(uint8_t)h[e - 1]])
            continue;
        size_t best = SIZE_MAX;
        for (size_t k = 0; k < f->nseqs; k++) {
            const struct wd_str *q = &f->seqs[k];
            if (q->n && q->n <= e && memcmp(h + e - q->n, q->p, q->n) == 0 && (best == SIZE_MAX || q->n > f->seqs[best].n))
                best = k;
        }
        if (best != SIZE_MAX) {
            *start = e - f->seqs[best].n;
            *which = best;
            return true;
        }
    }
    return false;
}

/* Length of the longest tail of h that is a proper prefix of some sequence (it may still become one). */
static size_t hold_len(const struct wd_stop_filter *f, const char *h, size_t n)
{
    size_t from = n >= f->maxlen ? n - (f->maxlen - 1) : 0;
    for (size_t p = from; p < n; p++) {
        if (!f->first[(uint8_t)h[p]])
            continue;
        size_t tail = n - p;
        for (size_t k = 0; k < f->nseqs; k++)
            if (f->seqs[k].n > tail && memcmp(h + p, f->seqs[k].p, tail) == 0)
                return tail;
    }
    return 0;
}

static void on_text(struct wd_stop_filter *f, const struct wd_event *ev)
{
    if (wd_json_unescape(&f->held, ev->text.p, ev->text.n) < 0) {
        if (f->held.oom) {
            fail_oom(f);
            return;
        }
        /* not escaped string content (a decoder bug): cannot be scanned, pass it on as it is */
        size_t n = f->held.n;
        f->held.n = 0;
        if (emit_text(f, f->held.p, n))
            forward(f, ev);
        return;
    }
    size_t start, which;
    if (find_match(f, f->held.p, f->held.n, &start, &which)) {
        f->stopped = f->done = true;
        if (!emit_text(f, f->held.p, start))
            return;
        f->in_text = false;
        struct wd_event stop = {.type = WD_EV_PART_STOP, .index = f->text_index, .part_type = WD_PART_TEXT,
                                .usage = f->usage};
        forward(f, &stop);
        struct wd_event end = {.type = WD_EV_MESSAGE_STOP, .stop_reason = WD_STOP_STOP_SEQUENCE,
                               .stop_sequence = f->seqs[which], .usage = f->usage};
        forward(f, &end);
        return;
    }
    size_t keep = hold_len(f, f->held.p, f->held.n);
    size_t out = f->held.n - keep;
    if (!emit_text(f, f->held.p, out))
        return;
    wd_buf_consume(&f->held, out);
}

/* The open text block ends: what was held cannot start a match any more. */
static bool release(struct wd_stop_filter *f)
{
    size_t n = f->held.n;
    f->held.n = 0;
    f->in_text = false;
    return emit_text(f, f->held.p, n);
}

static void filter_emit(struct wd_sink *sink, const struct wd_event *ev)
{
    struct wd_stop_filter *f = (struct wd_stop_filter *)sink;
    if (f->done)
        return;
    if (ev->type == WD_EV_ERROR || ev->type == WD_EV_MESSAGE_STOP) {
        if (ev->type == WD_EV_MESSAGE_STOP && f->in_text && !release(f))
            return;
        /* set before forwarding: the receiver may reinitialise this filter (a retried upstream call) */
        f->done = true;
        forward(f, ev);
        return;
    }
    f->usage = ev->usage;
    if (f->nseqs == 0) {
        forward(f, ev);
        return;
    }
    switch (ev->type) {
    case WD_EV_PART_START:
        if (f->in_text && !release(f))
            return;
        if (ev->part_type == WD_PART_TEXT) {
            f->in_text = true;
            f->text_index = ev->index;
            f->held.n = 0;
        }
        break;
    case WD_EV_DELTA:
        if (f->in_text && ev->part_type == WD_PART_TEXT && ev->index == f->text_index) {
            on_text(f, ev);
            return;
        }
        break;
    case WD_EV_PART_STOP:
        if (f->in_text && ev->index == f->text_index && !release(f))
            return;
        break;
    default:
        break;
    }
    forward(f, ev);
}

void wd_stop_filter_init(struct wd_stop_filter *f, struct wd_sink *next, const struct wd_str *seqs, size_t nseqs)
{
    *f = (struct wd_stop_filter){.sink = {filter_emit}, .next = next, .seqs = seqs, .nseqs = nseqs};
    for (size_t k = 0; k < nseqs; k++) {
        if (seqs[k].n == 0) /* would match everywhere; the decoder rejects it, ignore it here */
            continue;
        if (seqs[k].n > f->maxlen)
            f->maxlen = seqs[k].n;
        f->first[(uint8_t)seqs[k].p[0]] = 1;
        f->last[(uint8_t)seqs[k].p[seqs[k].n - 1]] = 1;
    }
    if (f->maxlen == 0)
        f->nseqs = 0;
}

void wd_stop_filter_free(struct wd_stop_filter *f)
{
    wd_buf_free(&f->held);
    wd_buf_free(&f->scratch);
}
