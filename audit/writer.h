/* The audit writer: one per worker, on the worker's libuv loop. Each writer owns one hash chain (a random
 * chain id, seq from 1), so writers in one process and across replicas never share, fork or interleave a
 * chain. Records are hashed and queued in the request path (no I/O there) and written in batches with
 * libpq's non-blocking API on the same loop. fail_open: when PostgreSQL is unreachable, records go to an
 * append-only spool file (fsync'd per batch) and are replayed when it is back. fail_closed: a request is
 * admitted only once its admission record is committed. See docs/audit.md. */
#ifndef WARDEN_AUDIT_WRITER_H
#define WARDEN_AUDIT_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include <uv.h>

#include "audit/record.h"
#include "config/config.h"

struct wd_audit_writer;

/* Process-wide set-up at start: copies the audit config (audit settings change only at restart),
 * loads the signing key, creates the spool directory, and tries the database once (migrations when
 * configured). Returns -1 with why on a configuration error; an unreachable database is not one. */
int wd_audit_init(const struct wd_audit_config *cfg, const char *config_sha256, bool config_from_file, char *why,
                  size_t why_cap);
void wd_audit_global_free(void);
bool wd_audit_enabled(void);
enum wd_audit_content wd_audit_content(void);
bool wd_audit_fail_closed(void);
/* audit.durable_answers: an answer's last bytes wait until its records are durable, at most
 * audit.durable_answers_timeout. */
bool wd_audit_durable_answers(void);
unsigned wd_audit_durable_answers_timeout_ms(void);

struct wd_audit_writer *wd_audit_writer_new(uv_loop_t *loop, int worker_id);
void wd_audit_writer_free(struct wd_audit_writer *w); /* after its loop stopped and handles closed */
/* Before the worker's handles are closed at exit: durability callbacks still due are dropped, not called (what
 * they would answer or time is being closed). */
void wd_audit_writer_quiesce(struct wd_audit_writer *w);

/* Called once the record's bytes are durable (committed, or fsync'd to the spool): ok = 1; or ok = 0
 * when that cannot happen now (fail_closed and the database went away). */
typedef void (*wd_audit_durable_cb)(void *ctx, int ok);

/* Completes rec (chain_id, seq, ts), hashes it into the chain and queues it. Returns 0, or -1 when the
 * record was refused: queue full (fail_open: a full queue goes to the spool, and only twice the bound
 * refuses), or (fail_closed, with cb) the database is not reachable. A refused
 * record gets no sequence number (the chain has no gap) and is counted; as soon as the queue has room
 * again the trail carries a system/records_refused record saying how many were lost and when (a
 * fail_closed admission refused with the database away is not a loss: the call is refused too). cb, when
 * given, is called later, never from here. */
int wd_audit_append(struct wd_audit_writer *w, struct wd_audit_rec *rec, wd_audit_durable_cb cb, void *ctx);
/* cb once every record appended so far on this writer is durable (audit.durable_answers: the end of an answer
 * waits for its records). Returns 1 when cb will be called (ok = 1 durable; ok = 0 the database went away under
 * fail_closed); 0 when there is nothing to wait for (all durable already) or it cannot be waited for now
 * (the database away, and fail_closed or the spool failing: the records wait in memory; counted as an
 * answer released early). Counts warden_audit_answers_held_total. */
int wd_audit_barrier(struct wd_audit_writer *w, wd_audit_durable_cb cb, void *ctx);
/* Counts an answer that went before its record was durable (warden_audit_answers_released_early_total). */
void wd_audit_note_early(struct wd_audit_writer *w);
/* Forgets a pending callback (the request is gone). */
void wd_audit_cancel(struct wd_audit_writer *w, void *ctx);

/* SIGTERM: the first call appends the writer_stop record; returns true once everything is durable and
 * the last checkpoint is out. Call until true or the drain deadline. */
bool wd_audit_writer_drain(struct wd_audit_writer *w);

struct wd_audit_stats {
    uint64_t records, written, spooled, refused, batches, checkpoints;
    uint64_t insert_batches; /* record batches sent with the idempotent insert rather than COPY */
    uint64_t answers_held, answers_early; /* answers whose end waited for their record; sent before it was durable */
    uint64_t stalls;         /* batches given up after waiting half of audit.durable_answers_timeout (fail_open) */
    uint64_t queue_depth, spool_bytes;
    bool connected;
};
void wd_audit_writer_stats(const struct wd_audit_writer *w, struct wd_audit_stats *out);

#endif
