/* Unit tests for the secret cache (secrets/): env and file values, the request path's pending-then-callback
 * on a real libuv loop, one backend call for many concurrent first uses, background refresh, stale serving
 * up to its bound, invalidation, cancelled waits, expiry of unused values and the wiping of replaced ones.
 * Values are compared, never printed. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "secrets/backend.h"
#include "secrets/secrets.h"
#include "secrets/secrets_test.h"

static char dir[64];

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(int ms) { nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL); }

/* Written beside and renamed, so the resolver never reads half a file. */
static void put_file(const char *name, const char *content)
{
    char path[128], tmp[140];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    assert_int_equal(fputs(content, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
    assert_int_equal(rename(tmp, path), 0);
}

static void ref_of(char *out, size_t cap, const char *name) { snprintf(out, cap, "file://%s/%s", dir, name); }

static bool is(const char *got, int n, const char *want)
{
    return n == (int)strlen(want) && memcmp(got, want, (size_t)n + 1) == 0;
}

/* A worker loop as the server has one: its uv loop, its link to the cache, a guard timer that ends a run. */
struct tloop {
    uv_loop_t loop;
    struct wd_secrets_loop *sl;
    uv_timer_t guard;
};

struct waiter {
    struct wd_secret_wait w;
    int called;
};

static void on_ready(struct wd_secret_wait *w)
{
    struct waiter *x = (struct waiter *)w;
    x->called++;
}

static void waiter_init(struct waiter *x)
{
    memset(x, 0, sizeof(*x));
    x->w.cb = on_ready;
    x->w.ctx = x;
}

static void tloop_init(struct tloop *t)
{
    assert_int_equal(uv_loop_init(&t->loop), 0);
    t->sl = wd_secrets_loop_new(&t->loop);
    assert_non_null(t->sl);
    uv_timer_init(&t->loop, &t->guard);
    uv_unref((uv_handle_t *)&t->guard);
}

static void on_guard(uv_timer_t *g) { uv_stop(g->loop); }

/* Runs the loop until no wait is linked to it any more (its cbs ran) or ms passed. */
static void tloop_run(struct tloop *t, int ms)
{
    uv_update_time(&t->loop);
    uv_timer_start(&t->guard, on_guard, (uint64_t)ms, 0);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    uv_timer_stop(&t->guard);
}

static void tloop_fini(struct tloop *t)
{
    if (t->sl != NULL)
        wd_secrets_loop_free(t->sl);
    uv_close((uv_handle_t *)&t->guard, NULL);
    uv_run(&t->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&t->loop), 0);
}

static int get(struct tloop *t, const char *ref, char *out, size_t cap, struct waiter *x)
{
    uv_update_time(&t->loop);
    return wd_secret_get(t->sl, ref, out, cap, x ? &x->w : NULL);
}

/* The first use of ref on t: pending, the callback, then the value. */
static int get_first(struct tloop *t, const char *ref, char *out, size_t cap)
{
    struct waiter x;
    waiter_init(&x);
    int n = get(t, ref, out, cap, &x);
    if (n != WD_SECRET_PENDING)
        return n;
    tloop_run(t, 5000);
    assert_int_equal(x.called, 1);
    return get(t, ref, out, cap, NULL);
}

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof(dir), "/tmp/wd_test_sec_XXXXXX");
    if (mkdtemp(dir) == NULL)
        return -1;
    wd_secrets_test_set_timing(NULL);
    return wd_secrets_start();
}

static int teardown(void **state)
{
    (void)state;
    wd_secrets_stop();
    wd_secrets_test_keep_wiped(false);
    wd_secrets_test_set_timing(NULL);
    char cmd[96];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_env_and_file_values(void **state)
{
    (void)state;
    char out[WD_SECRET_MAX], ref[128];
    setenv("WD_TEST_SEC_ENV", "env-value-1", 1);
    assert_true(is(out, wd_secret_resolve("env://WD_TEST_SEC_ENV", out, sizeof(out)), "env-value-1"));
    put_file("k1", "file-value\n");
    ref_of(ref, sizeof(ref), "k1");
    assert_true(is(out, wd_secret_resolve(ref, out, sizeof(out)), "file-value")); /* the newline dropped */
    ref_of(ref, sizeof(ref), "absent");
    assert_int_equal(wd_secret_resolve(ref, out, sizeof(out)), -1);
    put_file("empty", "\n");
    ref_of(ref, sizeof(ref), "empty");
    assert_int_equal(wd_secret_resolve(ref, out, sizeof(out)), -1);
    unsetenv("WD_TEST_SEC_UNSET");
    assert_int_equal(wd_secret_resolve("env://WD_TEST_SEC_UNSET", out, sizeof(out)), -1);

    /* the request path, on a loop */
    struct tloop t;
    tloop_init(&t);
    setenv("WD_TEST_SEC_ENV2", "env-value-2", 1);
    assert_true(is(out, get_first(&t, "env://WD_TEST_SEC_ENV2", out, sizeof(out)), "env-value-2"));
    ref_of(ref, sizeof(ref), "k1");
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "file-value")); /* cached by resolve above */
    char small[4];
    assert_int_equal(get(&t, ref, small, sizeof(small), NULL), -1); /* does not fit: -1, nothing pending */
    tloop_fini(&t);
}

static void test_unsupported_scheme(void **state)
{
    (void)state;
    char out[64];
    long calls = wd_secrets_test_backend_calls();
    struct tloop t;
    tloop_init(&t);
    struct waiter x;
    waiter_init(&x);
    const char *refs[] = {"nope://x", "GEMINI_API_KEY", "vault:/kv/x", "aws-sm:prod"};
    for (size_t i = 0; i < sizeof(refs) / sizeof(refs[0]); i++) {
        assert_int_equal(get(&t, refs[i], out, sizeof(out), &x), -1);
        assert_int_equal(wd_secret_resolve(refs[i], out, sizeof(out)), -1);
        assert_false(wd_secret_scheme_supported(refs[i]));
        wd_secrets_prefetch(refs[i]);
    }
    assert_int_equal(x.w.where, 0); /* never linked */
    assert_true(wd_secret_scheme_supported("env://X"));
    assert_true(wd_secret_scheme_supported("file:///x"));
    assert_true(wd_secret_scheme_supported("vault://kv/anthropic#key"));
    assert_true(wd_secret_scheme_supported("aws-sm://prod/k"));
    assert_true(wd_secret_scheme_supported("gcp-sm://projects/p/secrets/s"));
    assert_true(wd_secret_scheme_supported("azure-kv://vlt/s"));
    assert_int_equal(wd_secrets_test_backend_calls(), calls);
    tloop_fini(&t);
}

static void test_pending_then_callback_then_value(void **state)
{
    (void)state;
    char out[64], ref[128];
    put_file("k", "pending-value");
    ref_of(ref, sizeof(ref), "k");
    long calls = wd_secrets_test_backend_calls();
    struct tloop t;
    tloop_init(&t);
    struct waiter x;
    waiter_init(&x);
    assert_int_equal(get(&t, ref, out, sizeof(out), &x), WD_SECRET_PENDING);
    assert_int_equal(x.called, 0); /* never called back inside get */
    tloop_run(&t, 5000);
    assert_int_equal(x.called, 1);
    assert_int_equal(x.w.where, 0);
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "pending-value"));
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);
    tloop_fini(&t);
}

/* 8 worker threads, each with its own loop, ask 50 times each for the same reference before anything is
 * cached: one backend read serves all 400. */
#define NTHREADS 8
#define NGETS 50
struct worker {
    pthread_barrier_t *start;
    const char *ref;
    int pending, called, values;
};

static void *worker_main(void *arg)
{
    struct worker *wk = arg;
    struct tloop t;
    tloop_init(&t);
    static _Thread_local struct waiter xs[NGETS];
    char out[64];
    pthread_barrier_wait(wk->start);
    for (int i = 0; i < NGETS; i++) {
        waiter_init(&xs[i]);
        if (get(&t, wk->ref, out, sizeof(out), &xs[i]) == WD_SECRET_PENDING)
            wk->pending++;
    }
    tloop_run(&t, 10000);
    for (int i = 0; i < NGETS; i++) {
        wk->called += xs[i].called;
        if (is(out, get(&t, wk->ref, out, sizeof(out), NULL), "shared-value"))
            wk->values++;
    }
    tloop_fini(&t);
    return NULL;
}

static void test_concurrent_first_uses_share_one_read(void **state)
{
    (void)state;
    char ref[128];
    put_file("shared", "shared-value\n");
    ref_of(ref, sizeof(ref), "shared");
    /* the read is held open so that every first use lands while it is under way */
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){0, 600000, 1000, 5000, 1000, 300});
    long calls = wd_secrets_test_backend_calls();
    pthread_barrier_t start;
    pthread_barrier_init(&start, NULL, NTHREADS);
    pthread_t th[NTHREADS];
    struct worker wk[NTHREADS];
    for (int i = 0; i < NTHREADS; i++) {
        wk[i] = (struct worker){&start, ref, 0, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, worker_main, &wk[i]), 0);
    }
    int pending = 0, called = 0, values = 0;
    for (int i = 0; i < NTHREADS; i++) {
        pthread_join(th[i], NULL);
        pending += wk[i].pending;
        called += wk[i].called;
        values += wk[i].values;
    }
    pthread_barrier_destroy(&start);
    assert_int_equal(pending, NTHREADS * NGETS);
    assert_int_equal(called, NTHREADS * NGETS);
    assert_int_equal(values, NTHREADS * NGETS);
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);

    /* the request path reads the cache from now on: no file read, however many requests */
    struct tloop t;
    tloop_init(&t);
    char out[64];
    int hits = 0;
    enum { N = 200000 };
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    for (int i = 0; i < N; i++)
        hits += wd_secret_get(t.sl, ref, out, sizeof(out), NULL) == 12;
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((double)(b.tv_sec - a.tv_sec) * 1e9 + (double)(b.tv_nsec - a.tv_nsec)) / N;
    print_message("wd_secret_get, a cached value: %.0f ns per call (this build)\n", ns);
    assert_int_equal(hits, N);
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);
    assert_true(ns < 5000); /* generous: sanitizers and a shared machine; the figure is printed above */
    tloop_fini(&t);
}

static void test_background_refresh_picks_up_a_change_and_wipes_the_old_value(void **state)
{
    (void)state;
    char out[64], ref[128];
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){300, 600000, 1000, 5000, 1000, 0});
    wd_secrets_test_keep_wiped(true);
    put_file("rot", "alpha-secret");
    ref_of(ref, sizeof(ref), "rot");
    struct tloop t;
    tloop_init(&t);
    assert_true(is(out, get_first(&t, ref, out, sizeof(out)), "alpha-secret"));
    int64_t t0 = now_ms();
    size_t old_len = 0;
    const unsigned char *old = wd_secrets_test_value_buf(ref, &old_len);
    assert_non_null(old);
    assert_true(old_len >= 4096);
    assert_non_null(memmem(old, old_len, "alpha-secret", 12));
    long wiped = wd_secrets_test_wiped();
    long calls = wd_secrets_test_backend_calls();

    put_file("rot", "bravo-secret");
    int old_seen = 0, other = 0;
    int64_t seen_new = -1;
    while (now_ms() - t0 < 2000) {
        int n = get(&t, ref, out, sizeof(out), NULL);
        if (is(out, n, "bravo-secret")) {
            seen_new = now_ms() - t0;
            break;
        }
        if (is(out, n, "alpha-secret"))
            old_seen++;
        else
            other++;
        sleep_ms(10);
    }
    assert_true(seen_new >= 0);
    assert_true(seen_new <= 300 + 100); /* within the TTL (refreshed at 80% of it), with slack for the machine */
    assert_true(old_seen > 0);          /* the old value was served until the new one came */
    assert_int_equal(other, 0);         /* never pending, never failing meanwhile */
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);

    size_t new_len = 0;
    const void *cur = wd_secrets_test_value_buf(ref, &new_len);
    assert_true(cur != NULL && cur != (const void *)old);
    for (int i = 0; i < 100 && wd_secrets_test_wiped() == wiped; i++)
        sleep_ms(10);
    assert_int_equal(wd_secrets_test_wiped(), wiped + 1);
    size_t nonzero = 0;
    for (size_t i = 0; i < old_len; i++)
        nonzero += old[i] != 0;
    assert_int_equal(nonzero, 0); /* header and value: every byte of the old buffer */
    tloop_fini(&t);
}

static void test_failed_refresh_serves_stale_then_fails(void **state)
{
    (void)state;
    char out[64], ref[128];
    /* TTL 200 ms, served stale up to 300 ms past expiry, retried every 50 ms */
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){200, 300, 1000, 50, 1000, 0});
    put_file("gone", "soon-gone");
    ref_of(ref, sizeof(ref), "gone");
    struct tloop t;
    tloop_init(&t);
    char why[200];
    assert_int_equal(wd_secret_state("file:///never-asked", why, sizeof(why)), WD_SECRET_UNUSED);
    assert_true(is(out, get_first(&t, ref, out, sizeof(out)), "soon-gone"));
    assert_int_equal(wd_secret_state(ref, why, sizeof(why)), WD_SECRET_CACHED);
    assert_string_equal(why, "");
    int64_t t0 = now_ms();
    long calls = wd_secrets_test_backend_calls();
    char path[128];
    snprintf(path, sizeof(path), "%s/gone", dir);
    assert_int_equal(unlink(path), 0);
    int64_t last_stale = -1, first_fail = -1;
    int pending = 0;
    bool saw_stale_state = false;
    while (now_ms() - t0 < 2000) {
        int n = get(&t, ref, out, sizeof(out), NULL);
        int64_t at = now_ms() - t0;
        if (is(out, n, "soon-gone")) {
            last_stale = at;
            if (at >= 250 && wd_secret_state(ref, why, sizeof(why)) == WD_SECRET_STALE)
                saw_stale_state = strstr(why, "cannot open the file") != NULL;
        } else if (n == -1) {
            first_fail = at;
            break;
        } else {
            pending++;
        }
        sleep_ms(10);
    }
    assert_int_equal(pending, 0);
    assert_true(last_stale >= 250);   /* past the TTL: the stale value was still served */
    assert_true(first_fail >= 400);   /* not before expiry + stale_max (500 ms after the fetch), less skew */
    assert_true(first_fail <= 900);
    assert_true(wd_secrets_test_backend_calls() >= calls + 2); /* the refresh, then retries */
    assert_true(saw_stale_state); /* /readyz says stale, with the backend's reason */
    assert_int_equal(wd_secret_state(ref, why, sizeof(why)), WD_SECRET_FAILED);
    assert_non_null(strstr(why, "cannot open the file"));
    assert_null(strstr(why, "soon-gone"));
    struct wd_secrets_scheme_stats st[8];
    size_t ns = wd_secrets_stats(st, 8), k = 0;
    while (k < ns && strcmp(st[k].scheme, "file://") != 0)
        k++;
    assert_true(k < ns);
    assert_int_equal(st[k].references, 1);
    assert_int_equal(st[k].failed, 1);
    assert_int_equal(st[k].stale, 0);
    assert_int_equal(st[k].fetches_ok, 1);
    assert_true(st[k].fetches_failed >= 2);
    assert_int_equal(st[k].stale_episodes, 1);
    /* failed now: -1 at once, while the failure is recent */
    struct waiter x;
    waiter_init(&x);
    assert_int_equal(get(&t, ref, out, sizeof(out), &x), -1);
    assert_int_equal(x.w.where, 0);
    tloop_fini(&t);
}

static void test_invalidate_refetches_once(void **state)
{
    (void)state;
    char out[64], ref[128];
    put_file("inv", "first-key");
    ref_of(ref, sizeof(ref), "inv");
    struct tloop t;
    tloop_init(&t);
    assert_true(is(out, get_first(&t, ref, out, sizeof(out)), "first-key"));
    /* a holdoff of 100 ms and a slow backend, so that the stale value is seen to be served meanwhile */
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){0, 600000, 1000, 5000, 100, 150});
    long calls = wd_secrets_test_backend_calls();
    wd_secret_invalidate(ref); /* the value is younger than the holdoff: ignored */
    sleep_ms(150);
    assert_int_equal(wd_secrets_test_backend_calls(), calls);
    put_file("inv", "second-key");
    for (int i = 0; i < 5; i++)
        wd_secret_invalidate(ref); /* many requests got a 401 */
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "first-key")); /* stale served, not pending */
    int64_t t0 = now_ms();
    while (!is(out, get(&t, ref, out, sizeof(out), NULL), "second-key") && now_ms() - t0 < 2000)
        sleep_ms(10);
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "second-key"));
    sleep_ms(300);
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);
    wd_secret_invalidate("file:///never/asked"); /* unknown: nothing */
    sleep_ms(50);
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);
    tloop_fini(&t);
}

static void test_cancelled_waits_are_not_called(void **state)
{
    (void)state;
    char out[64], ref[128], ref2[128];
    put_file("c1", "cancel-one");
    put_file("c2", "cancel-two");
    ref_of(ref, sizeof(ref), "c1");
    ref_of(ref2, sizeof(ref2), "c2");
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){0, 600000, 1000, 5000, 1000, 100});
    struct tloop t, t2;
    tloop_init(&t);
    tloop_init(&t2);
    struct waiter a, b, c;
    waiter_init(&a);
    waiter_init(&b);
    waiter_init(&c);
    assert_int_equal(get(&t, ref, out, sizeof(out), &a), WD_SECRET_PENDING);
    assert_int_equal(get(&t, ref, out, sizeof(out), &b), WD_SECRET_PENDING);
    wd_secret_wait_cancel(&a.w);
    wd_secret_wait_cancel(&a.w); /* twice: harmless */
    tloop_run(&t, 5000);
    assert_int_equal(a.called, 0);
    assert_int_equal(b.called, 1);
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "cancel-one"));

    /* resolved while the loop was busy: ready, then cancelled before the loop turned */
    waiter_init(&a);
    assert_int_equal(get(&t, ref2, out, sizeof(out), &a), WD_SECRET_PENDING);
    sleep_ms(300);
    assert_int_equal(a.w.where, 2);
    wd_secret_wait_cancel(&a.w);
    tloop_run(&t, 200);
    assert_int_equal(a.called, 0);

    /* a loop that goes away takes its waits with it */
    char ref3[128];
    put_file("c3", "cancel-three");
    ref_of(ref3, sizeof(ref3), "c3");
    assert_int_equal(get(&t2, ref3, out, sizeof(out), &c), WD_SECRET_PENDING);
    wd_secrets_loop_free(t2.sl);
    t2.sl = NULL;
    sleep_ms(300);
    tloop_run(&t2, 100);
    assert_int_equal(c.called, 0);
    assert_int_equal(c.w.where, 0);
    tloop_fini(&t2);
    tloop_fini(&t);
}

static void test_unused_values_expire_and_are_wiped(void **state)
{
    (void)state;
    char out[64], ref[128];
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){200, 600000, 1000, 5000, 1000, 0});
    put_file("idle", "idle-value");
    ref_of(ref, sizeof(ref), "idle");
    long calls = wd_secrets_test_backend_calls();
    wd_secrets_prefetch(ref);
    size_t len;
    int64_t t0 = now_ms();
    while (wd_secrets_test_value_buf(ref, &len) == NULL && now_ms() - t0 < 2000)
        sleep_ms(5);
    assert_non_null(wd_secrets_test_value_buf(ref, &len));
    long wiped = wd_secrets_test_wiped();
    sleep_ms(400); /* past the TTL, never used: not refreshed but dropped */
    assert_null(wd_secrets_test_value_buf(ref, &len));
    assert_int_equal(wd_secrets_test_wiped(), wiped + 1);
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);
    struct tloop t;
    tloop_init(&t);
    struct waiter x;
    waiter_init(&x);
    assert_int_equal(get(&t, ref, out, sizeof(out), &x), WD_SECRET_PENDING); /* a new resolution */
    tloop_run(&t, 5000);
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "idle-value"));
    tloop_fini(&t);
}

static void test_a_failure_is_held_then_retried(void **state)
{
    (void)state;
    char out[64], ref[128];
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){0, 600000, 200, 5000, 1000, 0});
    ref_of(ref, sizeof(ref), "late");
    struct tloop t;
    tloop_init(&t);
    assert_int_equal(get_first(&t, ref, out, sizeof(out)), -1);
    long calls = wd_secrets_test_backend_calls();
    put_file("late", "late-value");
    assert_int_equal(get(&t, ref, out, sizeof(out), NULL), -1); /* within the hold: no new read */
    assert_int_equal(wd_secrets_test_backend_calls(), calls);
    sleep_ms(250);
    assert_true(is(out, get_first(&t, ref, out, sizeof(out)), "late-value"));
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);
    tloop_fini(&t);
}

static void test_reload_refetches_and_the_cold_path_waits_for_it(void **state)
{
    (void)state;
    char out[64], ref[128];
    put_file("rl", "before-reload");
    ref_of(ref, sizeof(ref), "rl");
    struct tloop t;
    tloop_init(&t);
    assert_true(is(out, get_first(&t, ref, out, sizeof(out)), "before-reload"));
    put_file("rl", "after-reload");
    assert_true(is(out, wd_secret_resolve(ref, out, sizeof(out)), "before-reload")); /* cached, TTL 60 s */
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){0, 600000, 1000, 5000, 1000, 100});
    wd_secret_cache_clear();
    /* the request path keeps the value in use until the new one is there */
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "before-reload"));
    assert_true(is(out, wd_secret_resolve(ref, out, sizeof(out)), "after-reload"));
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "after-reload"));

    /* a reload whose refetch fails: the value in hand stays, and the failure is retried at its pace (5 s),
     * not in a loop */
    char path[128];
    snprintf(path, sizeof(path), "%s/rl", dir);
    assert_int_equal(unlink(path), 0);
    long calls = wd_secrets_test_backend_calls();
    wd_secret_cache_clear();
    assert_true(is(out, wd_secret_resolve(ref, out, sizeof(out)), "after-reload"));
    sleep_ms(300);
    assert_int_equal(wd_secrets_test_backend_calls(), calls + 1);
    assert_true(is(out, get(&t, ref, out, sizeof(out), NULL), "after-reload"));
    tloop_fini(&t);
}

static void test_env_changes_are_seen_by_the_cold_path(void **state)
{
    (void)state;
    char out[64];
    struct tloop t;
    tloop_init(&t);
    setenv("WD_TEST_SEC_ROT", "env-one", 1);
    assert_true(is(out, wd_secret_resolve("env://WD_TEST_SEC_ROT", out, sizeof(out)), "env-one"));
    assert_true(is(out, get(&t, "env://WD_TEST_SEC_ROT", out, sizeof(out), NULL), "env-one"));
    setenv("WD_TEST_SEC_ROT", "env-two", 1);
    assert_true(is(out, get(&t, "env://WD_TEST_SEC_ROT", out, sizeof(out), NULL), "env-one")); /* no expiry */
    assert_true(is(out, wd_secret_resolve("env://WD_TEST_SEC_ROT", out, sizeof(out)), "env-two"));
    assert_true(is(out, get(&t, "env://WD_TEST_SEC_ROT", out, sizeof(out), NULL), "env-two"));
    unsetenv("WD_TEST_SEC_ROT");
    assert_int_equal(wd_secret_resolve("env://WD_TEST_SEC_ROT", out, sizeof(out)), -1);
    assert_int_equal(get(&t, "env://WD_TEST_SEC_ROT", out, sizeof(out), NULL), -1);
    tloop_fini(&t);
}

/* Readers on several threads while the resolver swaps values every few milliseconds: every read is one whole
 * value (never a mix, never a freed buffer: a reclaimed mapping would fault here), and never a miss. */
struct hammer {
    const char *ref;
    atomic_bool *stop;
    long reads, bad;
};

static void *hammer_main(void *arg)
{
    struct hammer *h = arg;
    struct tloop t;
    tloop_init(&t);
    char out[64];
    while (!atomic_load(h->stop)) {
        int n = get(&t, h->ref, out, sizeof(out), NULL);
        h->reads++;
        if (!is(out, n, "short-A") && !is(out, n, "a-much-longer-value-B"))
            h->bad++;
    }
    tloop_fini(&t);
    return NULL;
}

/* The VmFlags of the mapping holding addr in /proc/self/smaps ("" when not found). */
static void vm_flags(const void *addr, char *out, size_t cap)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    char line[512];
    bool in = false;
    out[0] = '\0';
    assert_non_null(f);
    while (fgets(line, sizeof(line), f) != NULL) {
        unsigned long lo, hi;
        if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2 && strchr(line, '-') < strchr(line, ' ')) {
            in = (uintptr_t)addr >= lo && (uintptr_t)addr < hi;
            continue;
        }
        if (in && strncmp(line, "VmFlags:", 8) == 0) {
            size_t n = strlen(line + 8);
            n = n < cap ? n : cap - 1;
            memcpy(out, line + 8, n);
            out[n] = '\0';
            break;
        }
    }
    fclose(f);
}

static void test_values_are_left_out_of_core_dumps(void **state)
{
    (void)state;
    char out[64], ref[128], flags[256];
    put_file("dd", "dump-me-not");
    ref_of(ref, sizeof(ref), "dd");
    struct tloop t;
    tloop_init(&t);
    assert_true(is(out, get_first(&t, ref, out, sizeof(out)), "dump-me-not"));
    size_t maplen = 0;
    const void *buf = wd_secrets_test_value_buf(ref, &maplen);
    assert_non_null(buf);
    vm_flags(buf, flags, sizeof(flags));
    assert_non_null(strstr(flags, " dd")); /* MADV_DONTDUMP */
    /* a backend's own token memory too, and it is wiped when freed */
    char *tok = wd_secret_mem_alloc(100);
    assert_non_null(tok);
    memcpy(tok, "hvs.token", 10);
    vm_flags(tok, flags, sizeof(flags));
    assert_non_null(strstr(flags, " dd"));
    long wiped = wd_secrets_test_wiped();
    wd_secret_mem_free(tok, 100);
    assert_int_equal(wd_secrets_test_wiped(), wiped + 1);
    tloop_fini(&t);
}

static void test_readers_during_value_swaps(void **state)
{
    (void)state;
    char out[64], ref[128];
    put_file("swap", "short-A");
    ref_of(ref, sizeof(ref), "swap");
    wd_secrets_test_set_timing(&(struct wd_secrets_timing){20, 600000, 1000, 5000, 0, 0});
    struct tloop t;
    tloop_init(&t);
    assert_true(is(out, get_first(&t, ref, out, sizeof(out)), "short-A"));
    long calls = wd_secrets_test_backend_calls(), wiped = wd_secrets_test_wiped();
    atomic_bool stop = false;
    struct hammer hs[3];
    pthread_t th[3];
    for (int i = 0; i < 3; i++) {
        hs[i] = (struct hammer){ref, &stop, 0, 0};
        assert_int_equal(pthread_create(&th[i], NULL, hammer_main, &hs[i]), 0);
    }
    for (int i = 0; i < 100; i++) { /* and invalidations on top of the 16 ms refreshes */
        put_file("swap", i % 2 ? "short-A" : "a-much-longer-value-B");
        wd_secret_invalidate(ref);
        sleep_ms(5);
    }
    atomic_store(&stop, true);
    long reads = 0, bad = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        reads += hs[i].reads;
        bad += hs[i].bad;
    }
    assert_true(reads > 1000);
    assert_int_equal(bad, 0);
    assert_true(wd_secrets_test_backend_calls() > calls + 20); /* values were swapped under the readers */
    assert_true(wd_secrets_test_wiped() > wiped + 20);
    tloop_fini(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_env_and_file_values, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unsupported_scheme, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pending_then_callback_then_value, setup, teardown),
        cmocka_unit_test_setup_teardown(test_concurrent_first_uses_share_one_read, setup, teardown),
        cmocka_unit_test_setup_teardown(test_background_refresh_picks_up_a_change_and_wipes_the_old_value, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_failed_refresh_serves_stale_then_fails, setup, teardown),
        cmocka_unit_test_setup_teardown(test_invalidate_refetches_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancelled_waits_are_not_called, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unused_values_expire_and_are_wiped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_failure_is_held_then_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reload_refetches_and_the_cold_path_waits_for_it, setup, teardown),
        cmocka_unit_test_setup_teardown(test_env_changes_are_seen_by_the_cold_path, setup, teardown),
        cmocka_unit_test_setup_teardown(test_readers_during_value_swaps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_values_are_left_out_of_core_dumps, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
