/* Stop sequences, enforced by Warden on the canonical event stream.
 *
 * Providers cannot be trusted with them: Gemini reports finishReason STOP both for a natural end and for a
 * stop sequence, and leaves the sequence out of the text, so the client could never learn
 * stop_reason "stop_sequence" nor which sequence matched. The sequences are therefore not sent upstream;
 * this filter sits between a provider decoder and the client encoder, scans the answer text and ends the
 * message itself at the first match.
 *
 * Text deltas are escaped JSON string content (canon.h). The filter decodes each delta, emits the text
 * that cannot be part of a match, and holds back at most (longest sequence - 1) bytes that could be the
 * start of one; those are released as soon as the next delta (or the end of the block) shows they are
 * not. On a match it emits the text before the sequence, closes the block and sends MESSAGE_STOP with
 * stop_reason STOP_SEQUENCE, stop_sequence and the usage the decoder last reported; everything after is
 * dropped and `stopped` tells the caller to cancel the upstream generation. Thinking and tool input are
 * not scanned, as with Anthropic. Without stop sequences the filter passes events through untouched. */
#ifndef WARDEN_API_STOP_H
#define WARDEN_API_STOP_H

#include "api/canon.h"

/* Request limits (the decoder answers 400 beyond them): matching cost grows with count x length. */
#define WD_STOP_MAX_SEQUENCES 16
#define WD_STOP_MAX_LEN 256

struct wd_stop_filter {
    struct wd_sink sink;            /* decoders emit into this */
    struct wd_sink *next;           /* the client encoder (or a gate in front of it) */
    const struct wd_str *seqs;      /* decoded sequences; not copied, must outlive the filter */
    size_t nseqs;
    size_t maxlen;                  /* longest sequence */
    bool stopped;                   /* a sequence matched and MESSAGE_STOP was sent: cancel the upstream */
    bool done;                      /* the message ended (stopped, MESSAGE_STOP or ERROR passed): drop the rest */
    bool in_text;                   /* a TEXT block is open downstream */
    int text_index;                 /* its index */
    struct wd_usage usage;          /* the latest usage seen on any event */
    uint8_t first[256];             /* bytes that begin some sequence */
    uint8_t last[256];              /* bytes that end some sequence */
    struct wd_buf held;             /* decoded text not yet emitted (it may begin a sequence) */
    struct wd_buf scratch;          /* re-escaped text of an emitted delta */
};

/* seqs may be NULL when nseqs is 0. Needs no free before the first init; call wd_stop_filter_free
 * before initialising again. */
void wd_stop_filter_init(struct wd_stop_filter *f, struct wd_sink *next, const struct wd_str *seqs, size_t nseqs);
void wd_stop_filter_free(struct wd_stop_filter *f);

#endif
