/* Test hooks of the secret cache (tests/unit/test_secrets.c): timings short enough for a test, the backend
 * call counter, and a look at value buffers to check they are wiped. Not for production code. */
#ifndef WARDEN_SECRETS_SECRETS_TEST_H
#define WARDEN_SECRETS_SECRETS_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct wd_secrets_timing {
    int64_t ttl_ms;                /* > 0: replaces every finite backend TTL (file://: 60 s) */
    int64_t stale_max_ms;          /* a value whose refresh fails is served this long past its expiry (10 min) */
    int64_t error_hold_ms;         /* a failed resolution answers -1 this long before a use retries (1 s) */
    int64_t retry_ms;              /* between refresh attempts while a stale value is served (5 s) */
    int64_t invalidate_holdoff_ms; /* wd_secret_invalidate ignores a value younger than this (1 s) */
    int64_t backend_delay_ms;      /* sleep before each backend call, to hold a resolution open (0) */
};

/* NULL restores the defaults. Takes effect for values fetched afterwards. */
void wd_secrets_test_set_timing(const struct wd_secrets_timing *t);
/* Backend calls made since the process started (every scheme, successes and failures). */
long wd_secrets_test_backend_calls(void);
/* While on, wiped value buffers stay mapped (zeroed) until wd_secrets_stop, so a test can read them. */
void wd_secrets_test_keep_wiped(bool on);
/* Value buffers wiped since the process started. */
long wd_secrets_test_wiped(void);
/* The start of ref's current value buffer and its mapped length, or NULL when none is cached. */
const void *wd_secrets_test_value_buf(const char *ref, size_t *maplen);

#endif
