/* Governance on the request path (authz/govern.h): periods, virtual keys (made, stored hashed, verified once
 * per snapshot, expired and unknown refused), admission against leases (wait for a top-up, reserve, settle with the
 * unused part back, refuse when exhausted with the limit named and Retry-After, undo on a short second limit,
 * fail_open with the database down), and the default price table. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <time.h>

#include "authz/govern.h"
#include "lib/hash.h"

static int64_t ts(int y, int mo, int d, int h, int mi, int s)
{
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = s};
    return (int64_t)timegm(&tm);
}

static void test_periods(void **state)
{
    (void)state;
    struct wd_gov_limit l = {0};
    int64_t now = ts(2026, 12, 9, 13, 45, 30), end; /* a Wednesday */
    l.period = WD_GOV_MINUTE;
    assert_int_equal(wd_gov_period_start(&l, now, &end), ts(2026, 12, 9, 13, 45, 0));
    assert_int_equal(end, ts(2026, 12, 9, 13, 46, 0));
    l.period = WD_GOV_DAILY;
    assert_int_equal(wd_gov_period_start(&l, now, &end), ts(2026, 12, 9, 0, 0, 0));
    assert_int_equal(end, ts(2026, 12, 10, 0, 0, 0));
    l.period = WD_GOV_WEEKLY;
    assert_int_equal(wd_gov_period_start(&l, now, &end), ts(2026, 12, 7, 0, 0, 0)); /* Monday */
    assert_int_equal(end, ts(2026, 12, 14, 0, 0, 0));
    l.period = WD_GOV_MONTHLY;
    assert_int_equal(wd_gov_period_start(&l, now, &end), ts(2026, 12, 1, 0, 0, 0));
    assert_int_equal(end, ts(2027, 1, 1, 0, 0, 0)); /* over the year's end */
    l.period = WD_GOV_TOTAL;
    assert_int_equal(wd_gov_period_start(&l, now, &end), 0);
    assert_int_equal(end, 0);
    /* a manual reset inside the period starts it again; one before the period does not */
    atomic_store(&l.reset_at, now - 100);
    assert_int_equal(wd_gov_period_start(&l, now, NULL), now - 100);
    l.period = WD_GOV_DAILY;
    atomic_store(&l.reset_at, ts(2026, 12, 8, 23, 0, 0));
    assert_int_equal(wd_gov_period_start(&l, now, NULL), ts(2026, 12, 9, 0, 0, 0));
    /* Sunday belongs to the week that started on Monday */
    l.period = WD_GOV_WEEKLY;
    atomic_store(&l.reset_at, 0);
    assert_int_equal(wd_gov_period_start(&l, ts(2026, 12, 13, 23, 59, 59), NULL), ts(2026, 12, 7, 0, 0, 0));
}

static void tag_of(const char *k, uint8_t tag[16]) { wd_siphash128(wd_process_key(), k, strlen(k), tag); }

static void test_keys(void **state)
{
    (void)state;
    char key[WD_GOV_KEY_LEN + 1], other[WD_GOV_KEY_LEN + 1];
    struct wd_gov_key k = {.id = "key_0011223344556677", .name = "ci", .team = "eng"};
    assert_int_equal(wd_gov_key_make(key, k.salt, k.hash, k.prefix), 0);
    assert_int_equal(strlen(key), WD_GOV_KEY_LEN);
    assert_memory_equal(key, "wk-", 3);
    assert_true(wd_gov_looks_like_key((struct wd_str){key, strlen(key)}));
    assert_memory_equal(k.prefix, key, 11);
    uint8_t h[32];
    wd_sha256_2(k.salt, 16, key, WD_GOV_KEY_LEN, h);
    assert_memory_equal(h, k.hash, 32); /* stored: SHA-256(salt || key), never the key */

    struct wd_gov_key k2 = {.id = "key_8899aabbccddeeff", .name = "old", .expires_at = 1000};
    assert_int_equal(wd_gov_key_make(other, k2.salt, k2.hash, k2.prefix), 0);
    struct wd_gov_snap *s = wd_gov_snap_new();
    assert_non_null(s);
    char *models[] = {"gemini/*"};
    k.models = models;
    k.nmodels = 1;
    assert_int_equal(wd_gov_snap_add_key(s, &k), 0);
    assert_int_equal(wd_gov_snap_add_key(s, &k2), 0);
    assert_int_equal(wd_gov_snap_add_team(s, "eng", "acme"), 0);
    wd_gov_publish(s);
    struct wd_gov_snap *cur = wd_gov_acquire();
    assert_ptr_equal(cur, s);

    struct wd_gov_cache *c = wd_gov_cache_new();
    struct wd_principal who;
    const struct wd_gov_key *found;
    const char *why;
    uint8_t tag[16];
    tag_of(key, tag);
    for (int round = 0; round < 2; round++) { /* the second time from the cache */
        memset(&who, 0, sizeof(who));
        assert_int_equal(wd_gov_authenticate(c, cur, (struct wd_str){key, strlen(key)}, tag, 5000, &found, &who, &why), 0);
        assert_string_equal(who.subject, "ci");
        assert_string_equal(who.method, "virtual_key");
        assert_string_equal(who.key_id, "key_0011223344556677");
        assert_string_equal(who.team, "eng");
        assert_string_equal(who.org, "acme"); /* the team's */
        assert_int_equal(found->nmodels, 1);
        assert_string_equal(found->models[0], "gemini/*");
    }
    /* a key of the right shape but unknown, one that differs in the last character, and an expired one */
    char wrong[WD_GOV_KEY_LEN + 1];
    memcpy(wrong, key, sizeof(wrong));
    wrong[WD_GOV_KEY_LEN - 1] = wrong[WD_GOV_KEY_LEN - 1] == 'A' ? 'B' : 'A';
    tag_of(wrong, tag);
    assert_int_equal(wd_gov_authenticate(c, cur, (struct wd_str){wrong, strlen(wrong)}, tag, 5000, &found, &who, &why), -1);
    tag_of(other, tag);
    assert_int_equal(wd_gov_authenticate(c, cur, (struct wd_str){other, strlen(other)}, tag, 5000, &found, &who, &why), -1);
    assert_string_equal(why, "expired key");
    assert_int_equal(wd_gov_authenticate(c, cur, (struct wd_str){other, strlen(other)}, tag, 999, &found, &who, &why), 0);
    assert_int_equal(wd_gov_authenticate(c, cur, (struct wd_str){"sk-x", 4}, tag, 5000, &found, &who, &why), -1);
    char org[WD_GOV_NAME_MAX];
    wd_gov_team_org(cur, "eng", org, sizeof(org));
    assert_string_equal(org, "acme");
    wd_gov_team_org(cur, "nope", org, sizeof(org));
    assert_string_equal(org, "");
    wd_gov_cache_free(c);
    wd_gov_release(cur);
    wd_gov_shutdown();
}

static int wakes;
static void on_wake(void) { wakes++; }

/* A snapshot with a team budget (usd, daily) and a key rate limit (requests, minute). */
static struct wd_gov_snap *limits_snap(struct wd_gov_limit **usd, struct wd_gov_limit **rpm)
{
    struct wd_gov_snap *s = wd_gov_snap_new();
    *usd = wd_gov_limit_get(1, WD_GOV_SCOPE_TEAM, "eng", WD_GOV_USD, WD_GOV_DAILY, 10000, 0);
    *rpm = wd_gov_limit_get(2, WD_GOV_SCOPE_KEY, "key_1", WD_GOV_REQUESTS, WD_GOV_MINUTE, 3, 0);
    wd_gov_snap_add_limit(s, *usd);
    wd_gov_snap_add_limit(s, *rpm);
    wd_gov_snap_add_team(s, "eng", "");
    wd_gov_publish(s);
    return wd_gov_acquire();
}

/* What the governor does on a top-up: the period's lease. */
static void grant(struct wd_gov_limit *l, int64_t now, int64_t amount)
{
    atomic_store(&l->period_start, wd_gov_period_start(l, now, NULL));
    atomic_fetch_add(&l->lease, amount);
    atomic_store(&l->want, 0);
}

static void test_admission(void **state)
{
    (void)state;
    struct wd_gov_limit *usd, *rpm;
    struct wd_gov_snap *s = limits_snap(&usd, &rpm);
    wd_gov_set_wake(on_wake);
    wd_gov_set_db_up(true);
    struct wd_principal who = {.key_id = "key_1", .team = "eng"};
    struct wd_gov_cost est = {.usd_micro = 400, .requests = 1, .tokens = 100};
    struct wd_gov_admission a;
    const struct wd_gov_limit *refused;
    long ra;
    char msg[256];
    int64_t now = ts(2026, 12, 9, 13, 45, 30);

    /* no lease yet: wait, and the governor is asked for the reservation */
    wakes = 0;
    assert_int_equal(wd_gov_admit(s, &who, &est, now, 1, false, &a, &refused, &ra, msg, sizeof(msg)), WD_GOV_WAIT);
    assert_int_equal(atomic_load(&usd->want), 400);
    assert_true(wakes > 0);
    assert_int_equal(a.n, 0);
    grant(usd, now, 1000);
    /* usd has lease, the rate limit not: its wait undoes the usd reservation */
    assert_int_equal(wd_gov_admit(s, &who, &est, now, 1, false, &a, &refused, &ra, msg, sizeof(msg)), WD_GOV_WAIT);
    assert_int_equal(atomic_load(&usd->lease), 1000);
    assert_int_equal(atomic_load(&rpm->want), 1);
    grant(rpm, now, 3);
    assert_int_equal(wd_gov_admit(s, &who, &est, now, 1, false, &a, &refused, &ra, msg, sizeof(msg)), 0);
    assert_int_equal(a.n, 2);
    assert_int_equal(atomic_load(&usd->lease), 600);
    assert_int_equal(atomic_load(&rpm->lease), 2);
    /* settled at its actual cost: the unused reservation returns, the spend waits for the flush */
    wd_gov_settle(&a, &(struct wd_gov_cost){.usd_micro = 150, .requests = 1, .tokens = 40});
    assert_int_equal(atomic_load(&usd->lease), 850);
    assert_int_equal(atomic_load(&usd->unflushed), 150);
    assert_int_equal(atomic_load(&rpm->lease), 2);
    assert_int_equal(atomic_load(&rpm->unflushed), 1);
    wd_gov_settle(&a, &(struct wd_gov_cost){.usd_micro = 150, .requests = 1});
    assert_int_equal(atomic_load(&usd->unflushed), 150); /* settled once */

    /* the rate limit runs out: with the database's answer "nothing left" the call is refused, the limit named */
    assert_int_equal(wd_gov_admit(s, &who, &est, now, 1, false, &a, &refused, &ra, msg, sizeof(msg)), 0);
    wd_gov_settle(&a, &(struct wd_gov_cost){.usd_micro = 10, .requests = 1});
    assert_int_equal(wd_gov_admit(s, &who, &est, now, 1, false, &a, &refused, &ra, msg, sizeof(msg)), 0);
    wd_gov_settle(&a, &(struct wd_gov_cost){.usd_micro = 10, .requests = 1});
    atomic_store(&rpm->exhausted, true);
    int64_t usd_before = atomic_load(&usd->lease);
    assert_int_equal(wd_gov_admit(s, &who, &est, now, 1, false, &a, &refused, &ra, msg, sizeof(msg)), -1);
    assert_ptr_equal(refused, rpm);
    assert_int_equal(ra, 30); /* to the end of the minute */
    assert_string_equal(msg, "key key_1: requests per minute rate limit 3 exhausted; resets at 2026-12-09T13:46:00Z");
    assert_int_equal(atomic_load(&usd->lease), usd_before); /* the usd reservation was undone */

    /* the next minute: a new period, no lease until the governor grants one */
    assert_int_equal(wd_gov_admit(s, &who, &est, now + 60, 1, false, &a, &refused, &ra, msg, sizeof(msg)), WD_GOV_WAIT);

    /* fail_open with the database down: admitted on local accounting, charged at settle */
    wd_gov_set_db_up(false);
    assert_int_equal(wd_gov_admit(s, &who, &est, now + 60, 1, true, &a, &refused, &ra, msg, sizeof(msg)), 0);
    int64_t unfl = atomic_load(&rpm->unflushed);
    wd_gov_settle(&a, &(struct wd_gov_cost){.usd_micro = 10, .requests = 1});
    assert_int_equal(atomic_load(&rpm->unflushed), unfl + 1);
    /* fail_closed with the database down: still a wait (the call answers 503 itself) */
    assert_int_equal(wd_gov_admit(s, &who, &est, now + 60, 1, false, &a, &refused, &ra, msg, sizeof(msg)), WD_GOV_WAIT);
    wd_gov_set_db_up(true);

    /* a call that cost more than it reserved overdraws the lease: the next admissions see it */
    grant(rpm, now + 60, 3);
    atomic_store(&rpm->exhausted, false);
    int64_t l0 = atomic_load(&usd->lease);
    assert_int_equal(wd_gov_admit(s, &who, &est, now + 60, 1, false, &a, &refused, &ra, msg, sizeof(msg)), 0);
    wd_gov_settle(&a, &(struct wd_gov_cost){.usd_micro = l0 + 100, .requests = 1});
    assert_int_equal(atomic_load(&usd->lease), -100);

    /* a principal under no limit is admitted with nothing held */
    struct wd_principal nobody = {.team = "other"};
    assert_int_equal(wd_gov_admit(s, &nobody, &est, now, 1, false, &a, &refused, &ra, msg, sizeof(msg)), 0);
    assert_int_equal(a.n, 0);
    wd_gov_set_wake(NULL);
    wd_gov_release(s);
    wd_gov_shutdown();
}

static void test_total_budget_message(void **state)
{
    (void)state;
    struct wd_gov_snap *s = wd_gov_snap_new();
    struct wd_gov_limit *l = wd_gov_limit_get(7, WD_GOV_SCOPE_ORG, "acme", WD_GOV_USD, WD_GOV_TOTAL, 12500000, 0);
    wd_gov_snap_add_limit(s, l);
    wd_gov_publish(s);
    s = wd_gov_acquire();
    struct wd_principal who = {.org = "acme"};
    grant(l, 1000, 100);
    atomic_store(&l->exhausted, true);
    struct wd_gov_admission a;
    const struct wd_gov_limit *refused;
    long ra;
    char msg[256];
    assert_int_equal(wd_gov_admit(s, &who, &(struct wd_gov_cost){.usd_micro = 200, .requests = 1}, 1000, 1, false, &a,
                                  &refused, &ra, msg, sizeof(msg)),
                     -1);
    assert_int_equal(ra, -1); /* never resets: no Retry-After */
    assert_string_equal(msg, "org acme: usd total budget 12.50 exhausted; it does not reset");
    /* the same limit id seen again keeps its counters, with the new limit */
    struct wd_gov_limit *again = wd_gov_limit_get(7, WD_GOV_SCOPE_ORG, "acme", WD_GOV_USD, WD_GOV_TOTAL, 20000000, 0);
    assert_ptr_equal(again, l);
    assert_int_equal(atomic_load(&again->lease), 100);
    assert_int_equal(atomic_load(&again->lim), 20000000);
    wd_gov_release(s);
    wd_gov_shutdown();
}

static void test_default_prices(void **state)
{
    (void)state;
    double in, out, cached;
    assert_true(wd_gov_default_price("gemini-2.5-flash-lite", 21, &in, &out, &cached));
    assert_true(in == 0.1 && out == 0.4); /* the longest prefix, not gemini-2.5-flash */
    assert_true(wd_gov_default_price("gemini-2.5-flash", 16, &in, &out, &cached));
    assert_true(in == 0.3 && out == 2.5);
    assert_true(wd_gov_default_price("claude-sonnet-4-5-20250929", 26, &in, &out, &cached));
    assert_true(in == 3 && out == 15 && cached == 0.3);
    assert_false(wd_gov_default_price("my-local-llama", 14, &in, &out, &cached));
    assert_false(wd_gov_default_price("gemini", 6, &in, &out, &cached));
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(wd_gov_scope_of("team"), WD_GOV_SCOPE_TEAM);
    assert_int_equal(wd_gov_metric_of("tokens"), WD_GOV_TOKENS);
    assert_int_equal(wd_gov_period_of("weekly"), WD_GOV_WEEKLY);
    assert_int_equal(wd_gov_period_of("hourly"), 0);
    assert_string_equal(wd_gov_period_name(WD_GOV_MONTHLY), "monthly");
}

/* Nothing loaded yet (the database unreachable since the start): a caller that limits may name waits (its call
 * answers 503 under fail_closed) unless fail_open; one no limit can name goes through. */
static void test_no_snapshot(void **state)
{
    (void)state;
    struct wd_gov_cost est = {.usd_micro = 400, .requests = 1, .tokens = 100};
    struct wd_gov_admission a;
    const struct wd_gov_limit *refused;
    long ra;
    char msg[256];
    struct wd_principal team = {.team = "eng"}, org = {.org = "acme"}, key = {.key_id = "key_1"}, anyone = {0};
    assert_int_equal(wd_gov_admit(NULL, &team, &est, 1000, 1, false, &a, &refused, &ra, msg, sizeof(msg)), WD_GOV_WAIT);
    assert_int_equal(wd_gov_admit(NULL, &org, &est, 1000, 1, false, &a, &refused, &ra, msg, sizeof(msg)), WD_GOV_WAIT);
    assert_int_equal(wd_gov_admit(NULL, &key, &est, 1000, 1, false, &a, &refused, &ra, msg, sizeof(msg)), WD_GOV_WAIT);
    assert_int_equal(a.n, 0);
    assert_int_equal(wd_gov_admit(NULL, &team, &est, 1000, 1, true, &a, &refused, &ra, msg, sizeof(msg)), 0);
    assert_int_equal(a.n, 0);
    assert_int_equal(wd_gov_admit(NULL, &anyone, &est, 1000, 1, false, &a, &refused, &ra, msg, sizeof(msg)), 0);
}

/* Period roll-over against calls settling at the same moment: the governor's protocol (server/governor.c, leases:
 * period_start marked rolling, the lease taken, the new start stored, then the new period's grant) run by a thread
 * here while two threads admit and settle. However a refund interleaves with the roll-over, no period's lease
 * ever exceeds what was granted for it. */
#define ROLL_ROUNDS 50000
#define ROLL_GRANT 1000
static struct wd_gov_limit *roll_l;
static struct wd_gov_snap *roll_s;
static _Atomic int64_t roll_now;
static _Atomic bool roll_done;
static _Atomic long roll_settles;

static void *roll_worker(void *arg)
{
    (void)arg;
    struct wd_principal who = {.key_id = "key_r"};
    struct wd_gov_cost est = {.requests = 1};
    const struct wd_gov_limit *refused;
    long ra;
    char msg[256];
    while (!atomic_load(&roll_done)) {
        struct wd_gov_admission a;
        int r = wd_gov_admit(roll_s, &who, &est, atomic_load(&roll_now), 1, false, &a, &refused, &ra, msg,
                             sizeof(msg));
        if (r == 0) {
            wd_gov_settle(&a, &(struct wd_gov_cost){0}); /* cost nothing: the whole reservation comes back */
            atomic_fetch_add(&roll_settles, 1);
        }
    }
    return NULL;
}

static void test_refund_across_rollover(void **state)
{
    (void)state;
    struct wd_gov_snap *s = wd_gov_snap_new();
    roll_l = wd_gov_limit_get(99, WD_GOV_SCOPE_KEY, "key_r", WD_GOV_REQUESTS, WD_GOV_MINUTE, 1000000, 0);
    wd_gov_snap_add_limit(s, roll_l);
    wd_gov_publish(s);
    roll_s = wd_gov_acquire();
    int64_t now = ts(2026, 12, 9, 0, 0, 0);
    atomic_store(&roll_now, now);
    atomic_store(&roll_done, false);
    grant(roll_l, now, ROLL_GRANT);
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, roll_worker, NULL), 0);
    int64_t most = 0; /* the largest lease a period ended with */
    for (int r = 1; r <= ROLL_ROUNDS; r++) {
        now += 60;
        atomic_store(&roll_l->period_start, INT64_MIN + 1);
        int64_t left = atomic_exchange(&roll_l->lease, 0);
        if (left > most)
            most = left;
        atomic_store(&roll_l->period_start, wd_gov_period_start(roll_l, now, NULL));
        atomic_fetch_add(&roll_l->lease, ROLL_GRANT);
        atomic_store(&roll_now, now);
        long seen = atomic_load(&roll_settles);
        while (atomic_load(&roll_settles) < seen + 1) /* the workers settle across every roll-over */
            ;
    }
    atomic_store(&roll_done, true);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    /* every hold is settled at no cost: what the last period holds is its grant, less at most what calls that
     * straddled the roll-over kept (the conservative side) */
    int64_t lease = atomic_load(&roll_l->lease);
    assert_true(most <= ROLL_GRANT); /* no period's lease ever held more than its grant */
    assert_true(lease <= ROLL_GRANT);
    assert_true(lease >= ROLL_GRANT - 4);
    wd_gov_release(roll_s);
    wd_gov_shutdown();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_periods),           cmocka_unit_test(test_keys),
        cmocka_unit_test(test_admission),         cmocka_unit_test(test_total_budget_message),
        cmocka_unit_test(test_default_prices),    cmocka_unit_test(test_names),
        cmocka_unit_test(test_no_snapshot),       cmocka_unit_test(test_refund_across_rollover),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
