/* Structured logs: one JSON object per line on stderr. Callers pass fields already as JSON members;
 * nothing here ever formats a secret or a prompt. */
#ifndef WARDEN_LIB_LOG_H
#define WARDEN_LIB_LOG_H

enum wd_log_level { WD_LOG_DEBUG, WD_LOG_INFO, WD_LOG_WARN, WD_LOG_ERROR };

void wd_log_set_level(enum wd_log_level lvl);
/* msg is plain text (escaped here); fields_json is "" or `"key":value,...` members, already valid JSON. */
void wd_log(enum wd_log_level lvl, const char *msg, const char *fields_json);
void wd_logf(enum wd_log_level lvl, const char *fields_json, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Batching, per thread: after wd_log_batch_begin the calling thread's debug and info lines collect in a
 * buffer written by wd_log_flush (a worker calls it before each wait for events) or when it reaches 32 KiB;
 * a warning or an error flushes what is collected, then goes out at once. wd_log_batch_end flushes and stops. */
void wd_log_batch_begin(void);
void wd_log_flush(void);
void wd_log_batch_end(void);

#endif
