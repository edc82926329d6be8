/* The -m auto controller: its rules one by one, then a discrete-event
 * simulation against a server that refuses (503) above C concurrent
 * requests, where the limit must settle near C, lose no request and
 * finish far sooner than one request at a time. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "adaptive.h"
#include "hostgate.h"
#include "gf/ratelimit.h"

/* Feeds one window's worth of successes, all with the limit in use. */
static void window_of(struct gf_adaptive *a, double latency_s, double *now)
{
    unsigned n = gf_adaptive_limit(a);
    for (unsigned i = 0; i < n; i++) {
        *now += 0.01;
        gf_adaptive_on_success(a, *now - latency_s, *now, gf_adaptive_limit(a));
    }
}

static void test_adaptive_init_clamps(void **state)
{
    (void)state;
    struct gf_adaptive a;

    gf_adaptive_init(&a, 0, 676);
    assert_int_equal(gf_adaptive_limit(&a), GF_ADAPTIVE_START);
    assert_int_equal(a.max, 676);
    assert_true(gf_adaptive_interval(&a) == 0);

    gf_adaptive_init(&a, 50, 10);
    assert_int_equal(gf_adaptive_limit(&a), 10);
    gf_adaptive_init(&a, 7, 0);
    assert_int_equal(a.max, 1);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    gf_adaptive_init(&a, 1, 1);
    assert_int_equal(gf_adaptive_limit(&a), 1);
}

static void test_adaptive_slow_start_doubles_up_to_max(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double now = 100;
    gf_adaptive_init(&a, 2, 20);

    /* One success short of a window changes nothing. */
    gf_adaptive_on_success(&a, now - 0.1, now, 2);
    assert_int_equal(gf_adaptive_limit(&a), 2);
    gf_adaptive_on_success(&a, now - 0.1, now, 2);
    assert_int_equal(gf_adaptive_limit(&a), 4);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 8);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 16);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 20);
    for (int i = 0; i < 5; i++)
        window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 20);
    assert_int_equal(a.decreases, 0);
    assert_int_equal(a.holds, 0);
}

static void test_adaptive_additive_after_overload(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double now = 0;
    gf_adaptive_init(&a, 16, 100);

    gf_adaptive_on_overload(&a, now - 0.001, now, 0);
    assert_int_equal(gf_adaptive_limit(&a), 8); /* halved: it was in slow start */
    assert_int_equal(a.slow_start, 0);
    assert_int_equal(a.decreases, 1);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 9);
    /* A window not yet complete does not grow it. */
    for (int i = 0; i < 8; i++) {
        now += 0.01;
        gf_adaptive_on_success(&a, now - 0.1, now, 9);
    }
    assert_int_equal(gf_adaptive_limit(&a), 9);
    now += 0.01;
    gf_adaptive_on_success(&a, now - 0.1, now, 9);
    assert_int_equal(gf_adaptive_limit(&a), 10);
    /* Out of slow start, an overload multiplies by 0.7. */
    gf_adaptive_on_overload(&a, now + 0.001, now + 0.01, 0);
    assert_int_equal(gf_adaptive_limit(&a), 7);
}

/* Refusals of requests sent under the old limit lower it once; a refusal of
 * a request sent after the decrease lowers it again. */
static void test_adaptive_burst_of_refusals_is_one_step(void **state)
{
    (void)state;
    struct gf_adaptive a;
    gf_adaptive_init(&a, 32, 100);

    gf_adaptive_on_overload(&a, 9.0, 10.0, 0);
    assert_int_equal(gf_adaptive_limit(&a), 16);
    for (int i = 0; i < 20; i++)
        gf_adaptive_on_overload(&a, 9.0 + i * 0.05, 10.0 + i * 0.01, 0);
    /* Started in the same clock tick as the decrease: still the old probe. */
    gf_adaptive_on_overload(&a, 10.0, 10.5, 0);
    assert_int_equal(gf_adaptive_limit(&a), 16);
    assert_int_equal(a.decreases, 1);

    gf_adaptive_on_overload(&a, 10.001, 10.6, 0);
    assert_int_equal(gf_adaptive_limit(&a), 11);
    assert_int_equal(a.decreases, 2);
}

/* After a refusal at L the limit grows back to L - 1 and stays there; L
 * is tried again only after enough clean windows and after ten times the
 * pause the refusal asked for; a refused probe doubles both waits, a probe
 * that holds lifts the ceiling. */
static void test_adaptive_ceiling_and_probes(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double now = 100;
    gf_adaptive_init(&a, 8, 100);
    window_of(&a, 0.01, &now); /* slow start: 16 */
    assert_int_equal(gf_adaptive_limit(&a), 16);
    gf_adaptive_on_overload(&a, now, now + 0.001, 0);
    now += 0.01;
    assert_int_equal(gf_adaptive_limit(&a), 8);
    window_of(&a, 0.01, &now);
    assert_int_equal(gf_adaptive_limit(&a), 9);
    gf_adaptive_on_overload(&a, now, now + 0.001, 1.0); /* refused at 9 */
    now += 0.01;
    assert_int_equal(a.ceiling, 9);
    assert_int_equal(gf_adaptive_limit(&a), 6);
    for (int i = 0; i < 10; i++)
        window_of(&a, 0.01, &now);
    assert_int_equal(gf_adaptive_limit(&a), 8); /* never past the ceiling's - 1 */
    assert_true(now < 110.0);
    /* Enough windows by now, but no probe before 10 s after a 1 s pause. */
    while (gf_adaptive_limit(&a) == 8)
        window_of(&a, 0.01, &now);
    assert_true(now >= 110.0 && now < 110.5);
    assert_int_equal(gf_adaptive_limit(&a), 9); /* the probe */
    /* Refused: back off, and wait twice as long (20 s) for the next one. */
    double refused_at = now;
    gf_adaptive_on_overload(&a, now, now + 0.001, 1.0);
    now += 0.01;
    assert_int_equal(gf_adaptive_limit(&a), 6);
    while (gf_adaptive_limit(&a) < 8)
        window_of(&a, 0.01, &now);
    while (gf_adaptive_limit(&a) == 8)
        window_of(&a, 0.01, &now);
    assert_true(now >= refused_at + 20.0 && now < refused_at + 20.5);
    assert_int_equal(gf_adaptive_limit(&a), 9);
    /* This probe holds a whole window: the ceiling goes, growth resumes. */
    window_of(&a, 0.01, &now);
    assert_int_equal(a.ceiling, 0);
    assert_int_equal(gf_adaptive_limit(&a), 10);
    window_of(&a, 0.01, &now);
    assert_int_equal(gf_adaptive_limit(&a), 11);
}

static void test_adaptive_never_below_one(void **state)
{
    (void)state;
    struct gf_adaptive a;
    gf_adaptive_init(&a, 50, 100);
    double now = 0;
    for (int i = 0; i < 40; i++) {
        gf_adaptive_on_overload(&a, now + 0.0005, now + 0.001, 0);
        now += 0.001;
        assert_true(gf_adaptive_limit(&a) >= 1);
    }
    assert_int_equal(gf_adaptive_limit(&a), 1);
    /* 50 -> 35 -> 24 -> 16 -> 11 -> 7 -> 4 -> 2 -> 1 in eight steps; each
     * later overload still counts as a decrease, and paces starts. */
    assert_int_equal(a.decreases, 40);
    assert_true(gf_adaptive_interval(&a) > 0);
    assert_int_equal(a.paces, 1);
}

/* Successes that come back while fewer requests than the limit are in
 * flight (a short queue, --rate) say nothing about the limit. */
static void test_adaptive_unused_limit_not_raised(void **state)
{
    (void)state;
    struct gf_adaptive a;
    gf_adaptive_init(&a, 8, 100);
    double now = 0;
    for (int i = 0; i < 1000; i++) {
        now += 0.01;
        gf_adaptive_on_success(&a, now - 0.1, now, 7);
    }
    assert_int_equal(gf_adaptive_limit(&a), 8);
    gf_adaptive_on_success(&a, now - 0.1, now, 9);
    assert_int_equal(a.window_ok, 1);
}

/* A window whose median latency is more than twice the best one holds the
 * limit and ends the slow start; a fast window grows it again by one. */
static void test_adaptive_latency_hold(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double now = 0;
    gf_adaptive_init(&a, 4, 1000);

    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 8);
    assert_true(fabs(a.baseline_s - 0.1) < 1e-9);
    for (int i = 0; i < 5; i++) {
        window_of(&a, 0.5, &now);
        assert_int_equal(gf_adaptive_limit(&a), 8);
    }
    assert_int_equal(a.holds, 5);
    assert_int_equal(a.slow_start, 0);
    /* Just under the threshold (2 * 0.1 + 0.010) grows, by one only. */
    window_of(&a, 0.205, &now);
    assert_int_equal(gf_adaptive_limit(&a), 9);
    assert_int_equal(a.holds, 5);
    /* A faster window lowers the baseline used for the next ones. */
    window_of(&a, 0.05, &now);
    assert_int_equal(gf_adaptive_limit(&a), 10);
    assert_true(fabs(a.baseline_s - 0.05) < 1e-9);
    window_of(&a, 0.15, &now);
    assert_int_equal(gf_adaptive_limit(&a), 10);
    assert_int_equal(a.holds, 6);
}

/* The median, not the mean or the maximum, decides: one slow request in a
 * window does not hold the limit, a slow majority does. */
static void test_adaptive_median_not_outliers(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double now = 10;
    /* Leave slow start far below the ceiling it leaves behind (40). */
    gf_adaptive_init(&a, 40, 1000);
    gf_adaptive_on_overload(&a, now, now, 0);
    assert_int_equal(gf_adaptive_limit(&a), 20);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 21);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 22);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 23);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 24);

    /* One slow request of 24: the limit still grows. */
    for (int i = 0; i < 24; i++) {
        now += 0.01;
        gf_adaptive_on_success(&a, now - (i == 3 ? 9.0 : 0.1), now, 24);
    }
    assert_int_equal(gf_adaptive_limit(&a), 25);
    /* Most of a window slow: it holds. */
    for (int i = 0; i < 25; i++) {
        now += 0.01;
        gf_adaptive_on_success(&a, now - (i % 3 ? 9.0 : 0.1), now, 25);
    }
    assert_int_equal(gf_adaptive_limit(&a), 25);
    assert_int_equal(a.holds, 1);
}

/* With a millisecond clock a fast local server's latency reads as 0 ms;
 * a few milliseconds later must not count as "twice as slow". */
static void test_adaptive_latency_slack(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double now = 1;
    gf_adaptive_init(&a, 2, 1000);
    window_of(&a, 0, &now);
    assert_int_equal(gf_adaptive_limit(&a), 4);
    assert_true(a.baseline_s == 0);
    window_of(&a, 0.004, &now);
    assert_int_equal(gf_adaptive_limit(&a), 8);
    window_of(&a, 0.011, &now);
    assert_int_equal(gf_adaptive_limit(&a), 8);
    /* A clock step backwards gives no negative latency. */
    gf_adaptive_init(&a, 1, 10);
    gf_adaptive_on_success(&a, 5.0, 4.0, 1);
    assert_true(a.baseline_s == 0);
    assert_int_equal(gf_adaptive_limit(&a), 2);
}

/* With a window larger than the samples kept, the median is of the most
 * recent GF_ADAPTIVE_SAMPLES latencies. */
static void test_adaptive_median_of_latest_samples(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double now = 0;
    gf_adaptive_init(&a, 100, 1000);
    window_of(&a, 0.1, &now);
    assert_int_equal(gf_adaptive_limit(&a), 200);
    for (int i = 0; i < 200; i++) {
        now += 0.01;
        gf_adaptive_on_success(&a, now - (i < 150 ? 1.0 : 0.1), now, 200);
    }
    assert_int_equal(gf_adaptive_limit(&a), 400);
    for (int i = 0; i < 400; i++) {
        now += 0.01;
        gf_adaptive_on_success(&a, now - (i < 360 ? 0.1 : 1.0), now, 400);
    }
    assert_int_equal(gf_adaptive_limit(&a), 400);
    assert_int_equal(a.holds, 1);
}

/* Refused at a limit of 1: pacing starts at the streak's pace (the rate
 * of all but one of the answers since the first refusal); a refusal with
 * nothing taken in between halves it; the limit stays 1 throughout. */
static void test_adaptive_paces_below_one_in_flight(void **state)
{
    (void)state;
    struct gf_adaptive a;
    gf_adaptive_init(&a, 2, 100);
    gf_adaptive_on_overload(&a, -0.001, 0, 0);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    assert_true(gf_adaptive_interval(&a) == 0);
    /* Three answers in 0.35 s at one in flight, then a refusal. */
    for (int i = 1; i <= 3; i++)
        gf_adaptive_on_success(&a, i * 0.1 - 0.001, i * 0.1, 1);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    gf_adaptive_on_overload(&a, 0.34, 0.35, 0);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    assert_int_equal(a.paces, 1);
    /* Three answers to requests sent since the first refusal, 0.35 s
     * ago: a token bucket, empty then, let through two of them at its
     * rate, so that rate is the pace. */
    double want = 0.35 / 2;
    assert_true(fabs(gf_adaptive_interval(&a) - want) < 1e-9);
    /* The rest of the burst changes nothing. */
    gf_adaptive_on_overload(&a, 0.345, 0.36, 0);
    assert_true(fabs(gf_adaptive_interval(&a) - want) < 1e-9);
    /* Refused again with no answer in between: twice as slow. */
    gf_adaptive_on_overload(&a, 0.5, 0.51, 0);
    assert_true(fabs(gf_adaptive_interval(&a) - 2 * want) < 1e-9);
    assert_int_equal(a.paces, 1);
    /* Never slower than one start every GF_ADAPTIVE_MAX_INTERVAL_S. */
    double now = 1;
    for (int i = 0; i < 20; i++) {
        gf_adaptive_on_overload(&a, now, now + 0.001, 0);
        now += 0.01;
    }
    assert_true(gf_adaptive_interval(&a) == GF_ADAPTIVE_MAX_INTERVAL_S);
    assert_int_equal(gf_adaptive_limit(&a), 1);
}

/* Pacing from the first refusal at a limit of 1 (nothing answered yet):
 * twice GF_ADAPTIVE_FIRST_INTERVAL_S, growing fast. Then 10 answers in 1 s
 * and a refusal with Retry-After 1. */
static void start_pacing(struct gf_adaptive *a, double *refused)
{
    gf_adaptive_init(a, 1, 100);
    gf_adaptive_on_overload(a, -0.001, 0, 0);
    assert_true(fabs(gf_adaptive_interval(a) - 2 * GF_ADAPTIVE_FIRST_INTERVAL_S) < 1e-9);
    for (int i = 1; i <= 10; i++)
        gf_adaptive_on_success(a, i * 0.1 - 0.01, i * 0.1, 1);
    assert_int_equal(gf_adaptive_limit(a), 1);
    /* Two windows sped it up, fast: no pace was refused yet. */
    double before = 2 * GF_ADAPTIVE_FIRST_INTERVAL_S / GF_ADAPTIVE_PACE_FAST_GROWTH /
                    GF_ADAPTIVE_PACE_FAST_GROWTH;
    assert_true(fabs(gf_adaptive_interval(a) - before) < 1e-9);
    gf_adaptive_on_overload(a, 0.999, 1.0, 1.0);
    *refused = before;
    assert_true(fabs(gf_adaptive_interval(a) - before / GF_ADAPTIVE_BACKOFF) < 1e-9);
    assert_true(fabs(a->pace_ceiling_s - before) < 1e-9);
    assert_true(fabs(a->next_probe_s - (1.0 + GF_ADAPTIVE_PROBE_HOLD * 1.0)) < 1e-9);
    assert_int_equal(a->paces, 1);
    assert_int_equal(a->pace_slow_start, 0);
}

/* After a refused pace the slower one holds until the probe hold (ten
 * times the Retry-After) has passed; then every GF_ADAPTIVE_PACE_WINDOW
 * answers speed it up by GF_ADAPTIVE_PACE_GROWTH; once the interval is no
 * longer than the round trip, pacing ends and the limit grows from 1. */
static void test_adaptive_pace_recovers(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double refused;
    start_pacing(&a, &refused);
    double first = gf_adaptive_interval(&a);

    double now = 1.0, lat = 0.01;
    while (now < 10.9) {
        now += gf_adaptive_interval(&a);
        gf_adaptive_on_success(&a, now - lat, now, 1);
        assert_true(gf_adaptive_interval(&a) == first);
    }
    /* The hold is over: one more window speeds it up by one step. */
    double t = now;
    while (gf_adaptive_interval(&a) == first && now < t + 10) {
        now += gf_adaptive_interval(&a);
        gf_adaptive_on_success(&a, now - lat, now, 1);
    }
    assert_true(now >= 11.0);
    assert_true(fabs(gf_adaptive_interval(&a) - first / GF_ADAPTIVE_PACE_GROWTH) < 1e-9);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    /* And at last no pacing at all. */
    int windows = 0;
    while (gf_adaptive_interval(&a) > 0 && windows++ < 1000) {
        now += gf_adaptive_interval(&a);
        gf_adaptive_on_success(&a, now - lat, now, 1);
        assert_true(gf_adaptive_interval(&a) == 0 || gf_adaptive_interval(&a) > lat);
    }
    assert_true(gf_adaptive_interval(&a) == 0);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    /* Growth by the limit resumes. */
    for (int i = 0; i < 200 && gf_adaptive_limit(&a) == 1; i++) {
        now += 0.01;
        gf_adaptive_on_success(&a, now - lat, now, 1);
    }
    assert_int_equal(gf_adaptive_limit(&a), 2);
}

/* A refused pace after a refused pace doubles the probe hold, as at a
 * limit, up to a cap; a Retry-After of a day holds probes for ten times
 * the pause cap, not ten days; without Retry-After a refused pace holds
 * for ten of its intervals. */
static void test_adaptive_pace_probe_refused_waits_longer(void **state)
{
    (void)state;
    struct gf_adaptive a;
    double refused;
    start_pacing(&a, &refused);
    assert_true(a.probe_hold_s == GF_ADAPTIVE_PROBE_HOLD);
    double now = 2.0;
    gf_adaptive_on_success(&a, now - 0.01, now, 1);
    gf_adaptive_on_overload(&a, now, now + 0.01, 1.0);
    assert_true(a.probe_hold_s == 2 * GF_ADAPTIVE_PROBE_HOLD);
    for (int i = 0; i < 20; i++) {
        now += 1;
        gf_adaptive_on_overload(&a, now, now + 0.01, 1.0);
    }
    assert_true(a.probe_hold_s == GF_ADAPTIVE_PROBE_HOLD_MAX_S);
    assert_true(gf_adaptive_interval(&a) == GF_ADAPTIVE_MAX_INTERVAL_S);

    gf_adaptive_init(&a, 8, 100);
    gf_adaptive_on_overload(&a, 0, 1, 86400);
    assert_true(a.probe_hold_s == GF_ADAPTIVE_PROBE_HOLD * GF_ADAPTIVE_MAX_PAUSE_S);

    gf_adaptive_init(&a, 1, 100);
    gf_adaptive_on_overload(&a, 0, 1, 0);
    gf_adaptive_on_overload(&a, 2, 3, 0);
    assert_true(fabs(gf_adaptive_interval(&a) - 4 * GF_ADAPTIVE_FIRST_INTERVAL_S) < 1e-9);
    assert_true(a.probe_hold_s >= GF_ADAPTIVE_PROBE_HOLD * 2 * GF_ADAPTIVE_FIRST_INTERVAL_S);
}

/* ---- Simulation ---------------------------------------------------- */

#define JOBS 676
#define LATENCY_S 0.1   /* an accepted request, +-10% */
#define REFUSAL_S 0.002 /* a 503 comes back at once */

struct sim_req {
    double start, end;
    int ok;
};

struct sim_result {
    double elapsed;
    unsigned final_limit, lo, hi; /* lo/hi: over the second half of the run */
    unsigned refusals, server_peak, decreases;
    size_t done;
};

static uint64_t rng_state;

static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Runs JOBS requests against a server that accepts at most capacity at a
 * time and answers 503 (with Retry-After retry_after_s, if > 0) to the
 * rest. fixed > 0 runs at that fixed limit instead of the controller. A
 * refused request goes back to the queue, as -m auto does. */
static struct sim_result simulate(unsigned capacity, unsigned fixed, double retry_after_s)
{
    struct gf_adaptive a;
    struct gf_hostgate g;
    struct sim_req fl[JOBS];
    size_t nf = 0, pending = JOBS;
    unsigned server = 0;
    double now = 0;
    struct sim_result res = {.lo = ~0u};

    rng_state = 0x2545f4914f6cdd1dULL ^ capacity;
    gf_adaptive_init(&a, GF_ADAPTIVE_START, JOBS);
    gf_hostgate_init(&g);
    while (res.done < JOBS) {
        unsigned limit = fixed ? fixed : gf_adaptive_limit(&a);
        assert_true(limit >= 1 && limit <= JOBS);
        while (pending > 0 && nf < limit && gf_hostgate_delay(&g, now) == 0) {
            gf_hostgate_started(&g, now);
            struct sim_req r = {.start = now};
            if (server < capacity) {
                server++;
                if (server > res.server_peak)
                    res.server_peak = server;
                r.ok = 1;
                r.end = now + LATENCY_S * (0.9 + 0.2 * uniform());
            } else {
                r.end = now + REFUSAL_S;
            }
            fl[nf++] = r;
            pending--;
        }
        /* Next event: the earliest completion, or the end of a pause that
         * keeps queued requests waiting. */
        size_t k = 0;
        for (size_t i = 1; i < nf; i++)
            if (fl[i].end < fl[k].end)
                k = i;
        double pause_end = now + gf_hostgate_delay(&g, now);
        if (pending > 0 && nf < limit && pause_end > now && (nf == 0 || pause_end < fl[k].end)) {
            now = pause_end;
            continue;
        }
        assert_true(nf > 0);
        struct sim_req r = fl[k];
        unsigned in_flight = (unsigned)nf;
        fl[k] = fl[--nf];
        now = r.end;
        if (r.ok) {
            server--;
            res.done++;
            gf_hostgate_answered(&g, r.start, now);
            if (!fixed)
                gf_adaptive_on_success(&a, r.start, now, in_flight);
        } else {
            res.refusals++;
            pending++;
            if (retry_after_s > 0)
                gf_hostgate_refused(&g, r.start, now, retry_after_s, limit, uniform(), NULL);
            if (!fixed)
                gf_adaptive_on_overload(&a, r.start, now, retry_after_s);
        }
        unsigned l = fixed ? fixed : gf_adaptive_limit(&a);
        if (res.done >= JOBS / 2) {
            if (l < res.lo)
                res.lo = l;
            if (l > res.hi)
                res.hi = l;
        }
    }
    res.elapsed = now;
    res.final_limit = fixed ? fixed : gf_adaptive_limit(&a);
    res.decreases = a.decreases;
    return res;
}

static void check_converges(unsigned c, double retry_after_s)
{
    struct sim_result one = simulate(c, 1, 0);
    struct sim_result r = simulate(c, 0, retry_after_s);

    printf("capacity %u, retry-after %.1f: limit %u (%u..%u in the second half), "
           "%u decreases, %u refusals, %.2fs (limit 1: %.2fs)\n",
           c, retry_after_s, r.final_limit, r.lo, r.hi, r.decreases, r.refusals, r.elapsed,
           one.elapsed);
    assert_int_equal(one.refusals, 0);
    assert_int_equal(r.done, JOBS); /* every refused request was re-queued */
    assert_true(r.server_peak <= c);
    /* Settled near the capacity: between C/2 and C+2 throughout the second
     * half of the run, and when it ended. */
    assert_true(2 * r.lo >= c);
    assert_true(r.hi <= c + 2);
    assert_true(2 * r.final_limit >= c && r.final_limit <= c + 2);
    /* More than C/2 requests at a time on average, against one. */
    assert_true(r.elapsed * c / 2 < one.elapsed);
    /* Refusals stay a small cost: well under one per accepted request. */
    assert_true(r.refusals < JOBS / 4);
}

static void test_adaptive_sim_capacity_3(void **state)
{
    (void)state;
    check_converges(3, 0);
}

static void test_adaptive_sim_capacity_8(void **state)
{
    (void)state;
    check_converges(8, 0);
}

static void test_adaptive_sim_capacity_20(void **state)
{
    (void)state;
    check_converges(20, 0);
}

static void test_adaptive_sim_capacity_50(void **state)
{
    (void)state;
    check_converges(50, 0);
}

/* A server that sends Retry-After with its 503s: the pauses slow the run
 * but it still settles and loses nothing. */
static void test_adaptive_sim_with_retry_after(void **state)
{
    (void)state;
    struct sim_result r = simulate(8, 0, 0.05);
    assert_int_equal(r.done, JOBS);
    assert_true(r.server_peak <= 8);
    assert_true(2 * r.final_limit >= 8 && r.final_limit <= 10);
    struct sim_result one = simulate(8, 1, 0);
    assert_true(r.elapsed * 4 < one.elapsed);
}

/* ---- A rate limiter ------------------------------------------------- */

/* A server that takes `rate` requests a second with a burst of `burst`
 * (a token bucket, as nginx's limit_req with nodelay) and answers 429
 * with Retry-After retry_after_s (0: none) at once to the rest. Requests
 * take RATE_LAT_S, so even one in flight is far too many. The client is
 * -m auto as run.c drives it: the limit, its pace and the host's pause. */
#define RATE_JOBS 400
#define RATE_LAT_S 0.005

/* The server of a simulation: a token bucket of `rate` requests a second
 * with a burst of `burst` (rate 0: no bucket), and on top a refusal of
 * each request with probability refuse_p whatever the load (a CDN edge
 * that sheds at random). Refusals carry Retry-After retry_after_s (0:
 * none). fixed > 0 runs at that fixed -m instead of -m auto. */
struct rate_server {
    double rate, burst, refuse_p, retry_after_s, lat_s;
    unsigned capacity; /* > 0: refused above that many at once, too */
    unsigned fixed;
    uint64_t seed; /* 0: the default */
};

struct rate_result {
    double elapsed, first_pace_s; /* first_pace_s: < 0 when it never paced */
    unsigned refusals, paces, sheds, final_limit, peak_limit;
    size_t done;
};

static struct rate_result simulate_server(const struct rate_server *srv)
{
    struct gf_adaptive a;
    struct gf_hostgate g;
    struct gf_ratelimit pace;
    struct sim_req fl[64];
    size_t nf = 0, pending = RATE_JOBS;
    double now = 0, tokens = srv->burst + 1, refilled = 0;
    double lat = srv->lat_s > 0 ? srv->lat_s : RATE_LAT_S;
    struct rate_result res = {.first_pace_s = -1};
    unsigned server = 0; /* in progress at a server with a capacity */

    rng_state = srv->seed ? srv->seed : 0x9e3779b97f4a7c15ULL;
    gf_adaptive_init(&a, GF_ADAPTIVE_START, 64);
    gf_hostgate_init(&g);
    gf_ratelimit_init(&pace, 0);
    while (res.done < RATE_JOBS) {
        unsigned limit = srv->fixed ? srv->fixed : gf_adaptive_limit(&a);
        double wait = 0;
        while (pending > 0 && nf < limit) {
            wait = gf_hostgate_delay(&g, now);
            double w2 = gf_ratelimit_peek(&pace, now);
            if (w2 > wait)
                wait = w2;
            if (wait > 0)
                break;
            gf_ratelimit_delay(&pace, now);
            gf_hostgate_started(&g, now);
            struct sim_req r = {.start = now, .ok = 1};
            if (srv->rate > 0) {
                tokens += (now - refilled) * srv->rate;
                if (tokens > srv->burst + 1)
                    tokens = srv->burst + 1;
                refilled = now;
                if (tokens >= 1)
                    tokens -= 1;
                else
                    r.ok = 0;
            }
            if (r.ok && srv->refuse_p > 0 && uniform() < srv->refuse_p)
                r.ok = 0;
            if (r.ok && srv->capacity > 0) {
                if (server < srv->capacity)
                    server++;
                else
                    r.ok = 0;
            }
            r.end = now + (r.ok ? lat : REFUSAL_S);
            fl[nf++] = r;
            pending--;
        }
        size_t k = 0;
        for (size_t i = 1; i < nf; i++)
            if (fl[i].end < fl[k].end)
                k = i;
        if (wait > 0 && (nf == 0 || now + wait < fl[k].end)) {
            now += wait;
            continue;
        }
        assert_true(nf > 0);
        struct sim_req r = fl[k];
        unsigned in_flight = (unsigned)nf;
        fl[k] = fl[--nf];
        now = r.end;
        if (r.ok) {
            res.done++;
            if (srv->capacity > 0)
                server--;
            gf_hostgate_answered(&g, r.start, now);
            if (!srv->fixed)
                gf_adaptive_on_success(&a, r.start, now, in_flight);
        } else {
            res.refusals++;
            pending++;
            struct gf_hostgate_event ev;
            gf_hostgate_refused(&g, r.start, now, srv->retry_after_s, limit, uniform(), &ev);
            /* As run.c does: a backoff counts as the pause asked for. */
            if (!srv->fixed)
                gf_adaptive_on_overload(&a, r.start, now,
                                        srv->retry_after_s > 0 ? srv->retry_after_s
                                                               : (ev.new_pause ? ev.pause_s : 0));
        }
        gf_ratelimit_set_interval(&pace, srv->fixed ? 0 : gf_adaptive_interval(&a));
        if (gf_adaptive_limit(&a) > res.peak_limit)
            res.peak_limit = gf_adaptive_limit(&a);
        if (res.first_pace_s < 0 && gf_adaptive_interval(&a) > 0)
            res.first_pace_s = now;
    }
    res.elapsed = now;
    res.paces = a.paces;
    res.sheds = a.sheds;
    res.final_limit = srv->fixed ? srv->fixed : gf_adaptive_limit(&a);
    return res;
}

static struct rate_result simulate_rate(double rate, double burst, double retry_after_s)
{
    struct rate_server srv = {.rate = rate, .burst = burst, .retry_after_s = retry_after_s};
    return simulate_server(&srv);
}

static void check_rate(double rate, double burst, double retry_after_s)
{
    struct rate_result r = simulate_rate(rate, burst, retry_after_s);
    double ideal = (RATE_JOBS - burst - 1) / rate;
    printf("rate %.0f/s burst %.0f retry-after %.1f: %.2fs (ideal %.2fs), %u refusals, "
           "%u pacing starts\n",
           rate, burst, retry_after_s, r.elapsed, ideal, r.refusals, r.paces);
    assert_int_equal(r.done, RATE_JOBS);
    /* One in flight was too many: it paced. */
    assert_true(r.paces >= 1);
    /* Refusals are a small share of the requests. */
    assert_true(r.refusals < RATE_JOBS / 10);
    /* Within 1.6 times what the limit allows, pauses included. */
    assert_true(r.elapsed < 1.6 * ideal);
    /* Its refusals come from the load: never taken for shedding. */
    assert_int_equal(r.sheds, 0);
}

static void test_adaptive_sim_rate_limited_with_retry_after(void **state)
{
    (void)state;
    check_rate(20, 5, 1.0);
}

static void test_adaptive_sim_rate_limited_without_retry_after(void **state)
{
    (void)state;
    check_rate(20, 5, 0);
    check_rate(50, 20, 0);
}

/* A server with no limit that refuses a share p of all requests at
 * random (429, Retry-After 1), answering the rest in 20 ms: slowing down
 * changes nothing, so -m auto must not end up much slower than -m 1,
 * whatever the luck of the draw (before shedding was recognised, it
 * paced down to one start every 10 s: 30 to 50 times slower). */
static void check_shedding(double p)
{
    double sum = 0, worst = 0;
    unsigned sheds = 0;
    for (uint64_t seed = 1; seed <= 50; seed++) {
        struct rate_server srv = {
            .refuse_p = p, .retry_after_s = 1, .lat_s = 0.02, .seed = seed * 0x9e3779b97f4a7c15ULL};
        struct rate_result r = simulate_server(&srv);
        assert_int_equal(r.done, RATE_JOBS);
        sheds += r.sheds > 0;
        srv.fixed = 1;
        struct rate_result one = simulate_server(&srv);
        double q = r.elapsed / one.elapsed;
        sum += q;
        if (q > worst)
            worst = q;
    }
    printf("random refusals %.2f: -m auto / -m 1 over 50 runs: mean %.2f, worst %.2f; "
           "shedding found in %u\n",
           p, sum / 50, worst, sheds);
    assert_true(sum / 50 < 1.4);
    assert_true(worst < 20);
    assert_true(sheds >= 25);
}

static void test_adaptive_sim_random_refusals(void **state)
{
    (void)state;
    check_shedding(0.05);
    check_shedding(0.1);
    check_shedding(0.3);
}

/* Shedding 10% at random and refusing above 8 at once: once shedding is
 * found the limit grows, the refusals of the capacity rise clearly above
 * the share shed and count again, and the run takes less than twice as
 * long as at a fixed -m 8 (before shedding was recognised: 68 times). */
static void test_adaptive_sim_shedding_with_a_capacity(void **state)
{
    (void)state;
    double sum = 0, sum8 = 0;
    unsigned most = 0, most8 = 0;
    for (uint64_t seed = 1; seed <= 20; seed++) {
        struct rate_server srv = {.refuse_p = 0.1,
                                  .retry_after_s = 1,
                                  .lat_s = 0.02,
                                  .capacity = 8,
                                  .seed = seed * 0x9e3779b97f4a7c15ULL};
        struct rate_result r = simulate_server(&srv);
        assert_int_equal(r.done, RATE_JOBS);
        srv.fixed = 8;
        struct rate_result r8 = simulate_server(&srv);
        sum += r.elapsed;
        sum8 += r8.elapsed;
        most = r.refusals > most ? r.refusals : most;
        most8 = r8.refusals > most8 ? r8.refusals : most8;
    }
    printf("shedding 10%% with a capacity of 8: -m auto %.1f s, at most %u refusals; -m 8 "
           "%.1f s, at most %u (means over 20 runs)\n",
           sum / 20, most, sum8 / 20, most8);
    assert_true(sum < 2 * sum8);
    assert_true(most < 3 * most8);
}

/* Rate limits of every kind, 50 draws each: none is ever taken for a
 * host that sheds, and refusals stay few. */
static void test_adaptive_sim_rate_limits_never_shed(void **state)
{
    (void)state;
    static const double limits[][3] = {
        /* rate/s, burst, Retry-After (0: none) */
        {10, 20, 1}, {10, 20, 0}, {20, 5, 1}, {50, 20, 0}, {10, 20, 5}, {1, 1, 0}, {100, 50, 1},
    };
    for (size_t i = 0; i < sizeof limits / sizeof limits[0]; i++) {
        unsigned most = 0;
        for (uint64_t seed = 1; seed <= 50; seed++) {
            struct rate_server srv = {.rate = limits[i][0],
                                      .burst = limits[i][1],
                                      .retry_after_s = limits[i][2],
                                      .seed = seed * 0x9e3779b97f4a7c15ULL};
            struct rate_result r = simulate_server(&srv);
            assert_int_equal(r.done, RATE_JOBS);
            assert_int_equal(r.sheds, 0);
            if (r.refusals > most)
                most = r.refusals;
        }
        printf("rate %.0f/s burst %.0f retry-after %.0f: at most %u refusals over 50 runs\n",
               limits[i][0], limits[i][1], limits[i][2], most);
        assert_true(most < RATE_JOBS / 10);
    }
}

/* nginx limit_req 10 r/s, burst 20, with Retry-After: 60 (30 s once
 * capped): each step of the limit down to 1 would cost 30 s. The rate of
 * answers since the first refusal is far below what one request in
 * flight makes, so pacing starts at the second refusal. (Stepping down
 * first, it began after nine pauses, at 283 s.) A pace refused right
 * after a pause goes half the way to the streak's pace: 170 s in all,
 * where one backoff step per refusal took 284 s and 22 refusals. */
static void test_adaptive_sim_rate_limit_with_long_pauses_paces_at_once(void **state)
{
    (void)state;
    struct rate_result r = simulate_rate(10, 20, 60);
    printf("rate 10/s burst 20 retry-after 60: %.2fs, pacing from %.1fs, %u refusals\n", r.elapsed,
           r.first_pace_s, r.refusals);
    assert_int_equal(r.done, RATE_JOBS);
    assert_int_equal(r.sheds, 0);
    assert_true(r.first_pace_s > 0 && r.first_pace_s < 2 * GF_ADAPTIVE_MAX_PAUSE_S + 5);
    assert_true(r.elapsed < 200);
    assert_true(r.refusals <= 18);
}

/* Paced, refused with Retry-After 30 (a 30 s pause), then 21 quick
 * answers once the pause is over and a refusal 0.25 s later: that pace
 * emptied in no time what the pause let the host save up, so it goes
 * half the way (in ratio) to the streak's pace, not one backoff step.
 * The same refusal 10 s after the pause ended is one step. */
static void pace_around_refusal_at(double refused_s, double *before, double *after)
{
    struct gf_adaptive a;
    gf_adaptive_init(&a, 1, 100);
    gf_adaptive_on_overload(&a, -0.001, 0, 30.0);
    assert_true(gf_adaptive_interval(&a) > 0);
    for (int i = 0; i < 21; i++)
        gf_adaptive_on_success(&a, 30.0 + i * 0.01, 30.005 + i * 0.01, 1);
    *before = gf_adaptive_interval(&a);
    gf_adaptive_on_overload(&a, refused_s - 0.001, refused_s, 30.0);
    /* All but one of the 21 answers came at the streak's pace. */
    assert_true(fabs(a.streak_pace_s - refused_s / 20) < 1e-9);
    *after = gf_adaptive_interval(&a);
}

static void test_adaptive_pace_refused_soon_after_a_long_pause_goes_halfway(void **state)
{
    (void)state;
    double before, after;
    pace_around_refusal_at(30.25, &before, &after);
    assert_true(fabs(after - sqrt(before * 30.25 / 20)) < 1e-9);
    assert_true(after > before / GF_ADAPTIVE_BACKOFF);
    pace_around_refusal_at(40.0, &before, &after);
    assert_true(fabs(after - before / GF_ADAPTIVE_BACKOFF) < 1e-9);
}

/* At a limit of 1, a refusal after only one answer since the refusals
 * began sets no pace (a pause let that one through); with three answers
 * the pace is their rate since the first refusal. */
static void test_adaptive_few_answers_set_no_pace(void **state)
{
    (void)state;
    struct gf_adaptive a;
    gf_adaptive_init(&a, 2, 100);
    gf_adaptive_on_overload(&a, -0.001, 0, 1.0);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    gf_adaptive_on_success(&a, 1.0, 1.01, 1);
    gf_adaptive_on_overload(&a, 1.02, 1.03, 1.0);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    assert_true(gf_adaptive_interval(&a) == 0);
    for (int i = 0; i < 2; i++)
        gf_adaptive_on_success(&a, 2.0 + i, 2.01 + i, 1);
    gf_adaptive_on_overload(&a, 3.5, 3.51, 1.0);
    /* Three answers over the 3.51 s since the first refusal: all but one
     * of them came at the bucket's rate. */
    assert_true(fabs(gf_adaptive_interval(&a) - 3.51 / 2) < 1e-9);
    assert_int_equal(a.paces, 1);
}

/* Refused at 8 in flight, then ten answers in a second at 5 ms each: one
 * request in flight would have made 200. The next refusal paces at once
 * instead of stepping the limit down. Then that pace, no faster than
 * the answers since the first refusal, is refused too: a rate limit
 * would not, so the refusals are shed. The controller goes back to 8,
 * lets refusals at the share seen pass, and counts them again once they
 * come far more often. */
static void test_adaptive_paces_at_once_then_finds_shedding(void **state)
{
    (void)state;
    struct gf_adaptive a;
    gf_adaptive_init(&a, 8, 100);
    gf_adaptive_on_overload(&a, -0.001, 0, 1.0);
    assert_int_equal(gf_adaptive_limit(&a), 4);
    for (int i = 1; i <= 10; i++)
        gf_adaptive_on_success(&a, i * 0.1 - 0.005, i * 0.1, 1);
    gf_adaptive_on_overload(&a, 1.04, 1.05, 1.0);
    assert_int_equal(gf_adaptive_limit(&a), 1);
    double pace = 1.05 / 9;
    assert_true(fabs(gf_adaptive_interval(&a) - pace) < 1e-9);
    assert_int_equal(a.sheds, 0);

    double now = 1.05;
    for (int i = 0; i < 2; i++) {
        now += pace;
        gf_adaptive_on_success(&a, now - 0.005, now, 1);
    }
    now += pace;
    gf_adaptive_on_overload(&a, now - 0.002, now, 1.0);
    assert_int_equal(a.sheds, 1);
    assert_int_equal(gf_adaptive_limit(&a), 8);
    assert_true(gf_adaptive_interval(&a) == 0);
    assert_int_equal(a.ceiling, 0);
    unsigned decreases = a.decreases;

    /* About one refusal in seven, as during the streak: they pass. */
    for (int i = 0; i < 70; i++) {
        now += 0.01;
        if (i % 7 == 6)
            gf_adaptive_on_overload(&a, now - 0.002, now, 1.0);
        else
            gf_adaptive_on_success(&a, now - 0.005, now, gf_adaptive_limit(&a));
    }
    assert_int_equal(a.decreases, decreases);
    assert_true(gf_adaptive_limit(&a) >= 8);
    /* Then refusals only: within a few, one counts and cuts the limit. */
    unsigned before = gf_adaptive_limit(&a);
    for (int i = 0; i < 12 && a.decreases == decreases; i++) {
        now += 0.01;
        gf_adaptive_on_overload(&a, now - 0.002, now, 1.0);
    }
    assert_int_equal(a.decreases, decreases + 1);
    assert_true(gf_adaptive_limit(&a) < before);
    assert_true(a.shed_ok == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_adaptive_init_clamps),
        cmocka_unit_test(test_adaptive_slow_start_doubles_up_to_max),
        cmocka_unit_test(test_adaptive_additive_after_overload),
        cmocka_unit_test(test_adaptive_burst_of_refusals_is_one_step),
        cmocka_unit_test(test_adaptive_ceiling_and_probes),
        cmocka_unit_test(test_adaptive_never_below_one),
        cmocka_unit_test(test_adaptive_unused_limit_not_raised),
        cmocka_unit_test(test_adaptive_latency_hold),
        cmocka_unit_test(test_adaptive_median_not_outliers),
        cmocka_unit_test(test_adaptive_latency_slack),
        cmocka_unit_test(test_adaptive_median_of_latest_samples),
        cmocka_unit_test(test_adaptive_paces_below_one_in_flight),
        cmocka_unit_test(test_adaptive_pace_recovers),
        cmocka_unit_test(test_adaptive_pace_probe_refused_waits_longer),
        cmocka_unit_test(test_adaptive_few_answers_set_no_pace),
        cmocka_unit_test(test_adaptive_pace_refused_soon_after_a_long_pause_goes_halfway),
        cmocka_unit_test(test_adaptive_paces_at_once_then_finds_shedding),
        cmocka_unit_test(test_adaptive_sim_random_refusals),
        cmocka_unit_test(test_adaptive_sim_shedding_with_a_capacity),
        cmocka_unit_test(test_adaptive_sim_rate_limit_with_long_pauses_paces_at_once),
        cmocka_unit_test(test_adaptive_sim_rate_limits_never_shed),
        cmocka_unit_test(test_adaptive_sim_capacity_3),
        cmocka_unit_test(test_adaptive_sim_capacity_8),
        cmocka_unit_test(test_adaptive_sim_capacity_20),
        cmocka_unit_test(test_adaptive_sim_capacity_50),
        cmocka_unit_test(test_adaptive_sim_with_retry_after),
        cmocka_unit_test(test_adaptive_sim_rate_limited_with_retry_after),
        cmocka_unit_test(test_adaptive_sim_rate_limited_without_retry_after),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
