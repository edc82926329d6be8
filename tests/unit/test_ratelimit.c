/* The --rate token bucket on a simulated clock: no one-second window holds
 * more than N + 1 starts, the long-run rate reaches N, an idle spell earns
 * one immediate start only, and bad rates are refused. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <uv.h>

#include "gf/ratelimit.h"

static const double rates[] = {0.5, 1, 3.3, 10, 100};

/* A small deterministic generator, so that a failure can be replayed. */
static uint64_t rng_state;

static double uniform(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (double)(rng_state >> 11) / 9007199254740992.0;
}

enum pattern { SATURATED, POISSON_SLOW, POISSON_FAST, BURSTS };

/* Fills arr with n sorted arrival times for a limit of rate per second. */
static void make_arrivals(double *arr, size_t n, enum pattern p, double rate)
{
    double t = 0;
    for (size_t i = 0; i < n; i++) {
        switch (p) {
        case SATURATED:
            break;
        case POISSON_SLOW: /* half the allowed rate: most starts are free */
            t += -log(1 - uniform()) / (rate * 0.5);
            break;
        case POISSON_FAST: /* three times the allowed rate: a queue builds */
            t += -log(1 - uniform()) / (rate * 3);
            break;
        case BURSTS: /* 25 at once, then an idle gap longer than their drain */
            if (i % 25 == 0)
                t += 25 / rate + 2 + 3 * uniform();
            break;
        }
        arr[i] = t;
    }
}

/* Runs FIFO arrivals through the bucket. The caller's timer wakes at
 * now + delay, plus up to jitter_s late. Fills starts[] and checks that no
 * request starts before it arrives or out of order. */
static void simulate(struct gf_ratelimit *rl, const double *arr, size_t n, double jitter_s,
                     double *starts)
{
    double now = 0;
    size_t head = 0;
    while (head < n) {
        if (now < arr[head])
            now = arr[head];
        double d = gf_ratelimit_delay(rl, now);
        assert_true(d >= 0);
        if (d == 0) {
            starts[head++] = now;
            continue;
        }
        /* Asking again before the timer is due must not take the token. */
        assert_true(gf_ratelimit_delay(rl, now) > 0);
        now += d + jitter_s * uniform();
    }
    for (size_t i = 0; i < n; i++) {
        assert_true(starts[i] >= arr[i]);
        if (i > 0)
            assert_true(starts[i] >= starts[i - 1]);
    }
}

/* Every window [s, s + 1) that begins at a start holds at most rate + 1
 * starts; the busiest window always begins at some start. */
static void check_windows(const double *starts, size_t n, double rate)
{
    for (size_t i = 0; i < n; i++) {
        size_t j = i;
        while (j < n && starts[j] < starts[i] + 1.0)
            j++;
        assert_true((double)(j - i) <= rate + 1);
    }
}

static void test_ratelimit_window_property(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        double rate = rates[r];
        /* About a minute of simulated traffic at each rate. */
        size_t n = (size_t)(rate * 60) + 30;
        double *arr = malloc(n * sizeof *arr);
        double *starts = malloc(n * sizeof *starts);
        assert_non_null(arr);
        assert_non_null(starts);
        for (int p = SATURATED; p <= BURSTS; p++) {
            for (int jitter = 0; jitter <= 1; jitter++) {
                struct gf_ratelimit rl;
                rng_state = 0x9e3779b97f4a7c15ULL + (uint64_t)(r * 16 + (size_t)p * 2) + jitter;
                make_arrivals(arr, n, p, rate);
                assert_int_equal(gf_ratelimit_init(&rl, rate), 0);
                /* A timer on the loop is up to a few milliseconds late. */
                simulate(&rl, arr, n, jitter ? 0.003 : 0, starts);
                check_windows(starts, n, rate);
                /* Starts never closer together than one interval. */
                for (size_t i = 1; i < n; i++)
                    assert_true(starts[i] - starts[i - 1] >= (1 / rate) * (1 - 1e-9));
            }
        }
        free(arr);
        free(starts);
    }
}

/* With a queue that never empties and a punctual timer, the rate reached
 * over the run is N. */
static void test_ratelimit_long_run_rate(void **state)
{
    (void)state;
    for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
        double rate = rates[r];
        size_t n = (size_t)(rate * 120) + 2;
        double *arr = calloc(n, sizeof *arr);
        double *starts = malloc(n * sizeof *starts);
        struct gf_ratelimit rl;
        assert_non_null(arr);
        assert_non_null(starts);
        assert_int_equal(gf_ratelimit_init(&rl, rate), 0);
        simulate(&rl, arr, n, 0, starts);
        double achieved = (double)(n - 1) / (starts[n - 1] - starts[0]);
        assert_true(fabs(achieved - rate) <= rate * 1e-6);
        free(arr);
        free(starts);
    }
}

/* After a long idle spell a burst gets one immediate start, then one per
 * interval: the bucket never saves up more than one token. */
static void test_ratelimit_burst_after_idle(void **state)
{
    (void)state;
    struct gf_ratelimit rl;
    assert_int_equal(gf_ratelimit_init(&rl, 10), 0);
    assert_true(gf_ratelimit_delay(&rl, 5.0) == 0);
    /* 100 s of nothing, then 20 requests at once. */
    double now = 105.0;
    assert_true(gf_ratelimit_delay(&rl, now) == 0);
    for (int i = 0; i < 19; i++) {
        double d = gf_ratelimit_delay(&rl, now);
        assert_true(fabs(d - 0.1) < 1e-9);
    }
    now += 0.1;
    assert_true(gf_ratelimit_delay(&rl, now) == 0);
    assert_true(gf_ratelimit_delay(&rl, now) > 0);
}

/* A delay is what is left of the interval, shrinking as time passes, and
 * asking does not move the next token further away. */
static void test_ratelimit_delay_counts_down(void **state)
{
    (void)state;
    struct gf_ratelimit rl;
    assert_int_equal(gf_ratelimit_init(&rl, 4), 0);
    assert_true(gf_ratelimit_delay(&rl, 1.0) == 0);
    assert_true(fabs(gf_ratelimit_delay(&rl, 1.0) - 0.25) < 1e-12);
    assert_true(fabs(gf_ratelimit_delay(&rl, 1.1) - 0.15) < 1e-12);
    assert_true(fabs(gf_ratelimit_delay(&rl, 1.2) - 0.05) < 1e-12);
    assert_true(gf_ratelimit_delay(&rl, 1.25) == 0);
    /* Late by 0.2 s: the next token is an interval after this start. */
    assert_true(gf_ratelimit_delay(&rl, 1.7) == 0);
    assert_true(fabs(gf_ratelimit_delay(&rl, 1.7) - 0.25) < 1e-12);
}

/* The first start is free wherever the monotonic clock begins. */
static void test_ratelimit_first_start_free(void **state)
{
    (void)state;
    const double origins[] = {0, 1e-3, 12345.678, 1e9, -50};
    for (size_t i = 0; i < sizeof origins / sizeof origins[0]; i++) {
        struct gf_ratelimit rl;
        assert_int_equal(gf_ratelimit_init(&rl, 0.5), 0);
        assert_true(gf_ratelimit_delay(&rl, origins[i]) == 0);
        assert_true(fabs(gf_ratelimit_delay(&rl, origins[i]) - 2.0) < 1e-6);
    }
}

static void test_ratelimit_unlimited(void **state)
{
    (void)state;
    struct gf_ratelimit rl;
    assert_int_equal(gf_ratelimit_init(&rl, 0), 0);
    for (int i = 0; i < 1000; i++)
        assert_true(gf_ratelimit_delay(&rl, 3.0) == 0);
}

static void test_ratelimit_bad_rates(void **state)
{
    (void)state;
    const double bad[] = {-1, -0.001, NAN, INFINITY, -INFINITY, 1e-300, GF_RATELIMIT_MIN_RATE / 2};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct gf_ratelimit rl = {.interval_s = 7, .next_s = 1e9};
        assert_int_equal(gf_ratelimit_init(&rl, bad[i]), UV_EINVAL);
        /* Left unlimited, not half set up. */
        assert_true(gf_ratelimit_delay(&rl, 0) == 0);
        assert_true(gf_ratelimit_delay(&rl, 0) == 0);
    }
    /* The slowest rate allowed gives a delay of a day at most. */
    struct gf_ratelimit rl;
    assert_int_equal(gf_ratelimit_init(&rl, GF_RATELIMIT_MIN_RATE), 0);
    assert_true(gf_ratelimit_delay(&rl, 0) == 0);
    double d = gf_ratelimit_delay(&rl, 0);
    assert_true(d > 86399 && d <= 86400.001);
}

/* peek answers as delay would, and takes nothing. */
static void test_ratelimit_peek_takes_nothing(void **state)
{
    (void)state;
    struct gf_ratelimit rl;
    assert_int_equal(gf_ratelimit_init(&rl, 2), 0);
    assert_true(gf_ratelimit_peek(&rl, 10.0) == 0);
    assert_true(gf_ratelimit_peek(&rl, 10.0) == 0);
    assert_true(gf_ratelimit_delay(&rl, 10.0) == 0);
    assert_true(fabs(gf_ratelimit_peek(&rl, 10.1) - 0.4) < 1e-9);
    assert_true(fabs(gf_ratelimit_peek(&rl, 10.1) - 0.4) < 1e-9);
    assert_true(gf_ratelimit_peek(&rl, 10.5) == 0);
    assert_true(gf_ratelimit_delay(&rl, 10.5) == 0);
    assert_true(fabs(gf_ratelimit_peek(&rl, 10.5) - 0.5) < 1e-9);
    gf_ratelimit_init(&rl, 0);
    assert_true(gf_ratelimit_delay(&rl, 1) == 0 && gf_ratelimit_peek(&rl, 1) == 0);
}

/* The pace of -m auto: changing the interval keeps the last start, from
 * unlimited to paced and back, and bad intervals mean unlimited. */
static void test_ratelimit_set_interval(void **state)
{
    (void)state;
    struct gf_ratelimit rl;
    gf_ratelimit_init(&rl, 0);
    /* Unlimited to paced: the first start is free. */
    gf_ratelimit_set_interval(&rl, 0.5);
    assert_true(gf_ratelimit_delay(&rl, 100.0) == 0);
    assert_true(fabs(gf_ratelimit_delay(&rl, 100.1) - 0.4) < 1e-9);
    /* Slower: the next start is 2 s after the last one. */
    gf_ratelimit_set_interval(&rl, 2.0);
    assert_true(fabs(gf_ratelimit_peek(&rl, 100.1) - 1.9) < 1e-9);
    /* Faster: 0.1 s after it, so at once now. */
    gf_ratelimit_set_interval(&rl, 0.1);
    assert_true(gf_ratelimit_delay(&rl, 100.1) == 0);
    assert_true(fabs(gf_ratelimit_peek(&rl, 100.15) - 0.05) < 1e-9);
    /* Back to unlimited. */
    gf_ratelimit_set_interval(&rl, 0);
    assert_true(gf_ratelimit_delay(&rl, 100.15) == 0);
    assert_true(gf_ratelimit_delay(&rl, 100.15) == 0);
    const double bad[] = {-1, NAN, INFINITY, -INFINITY};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        gf_ratelimit_set_interval(&rl, bad[i]);
        assert_true(rl.interval_s == 0);
        assert_true(gf_ratelimit_delay(&rl, 200) == 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ratelimit_window_property),
        cmocka_unit_test(test_ratelimit_long_run_rate),
        cmocka_unit_test(test_ratelimit_burst_after_idle),
        cmocka_unit_test(test_ratelimit_delay_counts_down),
        cmocka_unit_test(test_ratelimit_first_start_free),
        cmocka_unit_test(test_ratelimit_unlimited),
        cmocka_unit_test(test_ratelimit_bad_rates),
        cmocka_unit_test(test_ratelimit_peek_takes_nothing),
        cmocka_unit_test(test_ratelimit_set_interval),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
