/* The pause of a host that pushes back: Retry-After obeyed with jitter and
 * capped, backoff without it, one pause per burst, starts spread after a
 * pause, requests in flight bounded after one, and refusals that stop
 * being free after a minute of nothing else. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>

#include "hostgate.h"

static void test_hostgate_open_at_first(void **state)
{
    (void)state;
    struct gf_hostgate g;
    gf_hostgate_init(&g);
    assert_true(gf_hostgate_delay(&g, 0) == 0);
    assert_true(gf_hostgate_delay(&g, 1e6) == 0);
    gf_hostgate_started(&g, 5);
    assert_true(gf_hostgate_delay(&g, 5) == 0);
    assert_true(g.max_pause_s == 30.0);
}

/* Retry-After R pauses for R to R * (1 + GF_HOSTGATE_JITTER), never less. */
static void test_hostgate_retry_after_with_jitter(void **state)
{
    (void)state;
    struct gf_hostgate g;
    struct gf_hostgate_event ev;
    const double u[] = {0, 0.5, 0.999};
    for (size_t i = 0; i < 3; i++) {
        gf_hostgate_init(&g);
        assert_int_equal(gf_hostgate_refused(&g, 9.9, 10.0, 2.0, 4, u[i], &ev), 1);
        double want = 2.0 * (1 + GF_HOSTGATE_JITTER * u[i]);
        assert_int_equal(ev.new_pause, 1);
        assert_true(fabs(ev.pause_s - want) < 1e-9);
        assert_true(ev.asked_s == 2.0 && !ev.capped && !ev.counted);
        assert_true(fabs(gf_hostgate_delay(&g, 10.0) - want) < 1e-9);
        assert_true(fabs(gf_hostgate_delay(&g, 11.0) - (want - 1)) < 1e-9);
        assert_true(gf_hostgate_delay(&g, 10.0 + want) == 0);
    }
    /* Two draws differ: refusals do not come back in step. */
    struct gf_hostgate g2;
    gf_hostgate_init(&g);
    gf_hostgate_init(&g2);
    gf_hostgate_refused(&g, 0, 1, 1.0, 1, 0.1, NULL);
    gf_hostgate_refused(&g2, 0, 1, 1.0, 1, 0.9, NULL);
    assert_true(fabs(gf_hostgate_delay(&g, 1) - gf_hostgate_delay(&g2, 1)) > 0.1);
}

/* Whatever the Retry-After, no pause is longer than max_pause_s. */
static void test_hostgate_cap(void **state)
{
    (void)state;
    struct gf_hostgate g;
    struct gf_hostgate_event ev;
    const double huge[] = {99999, 30.1, 1e300, INFINITY};
    for (size_t i = 0; i < sizeof huge / sizeof huge[0]; i++) {
        gf_hostgate_init(&g);
        gf_hostgate_refused(&g, 0, 1, huge[i], 20, 0.99, &ev);
        assert_int_equal(ev.capped, 1);
        assert_true(ev.pause_s == GF_HOSTGATE_MAX_PAUSE_S);
        assert_true(gf_hostgate_delay(&g, 1) == GF_HOSTGATE_MAX_PAUSE_S);
    }
    /* 25 s with the largest jitter would be 30 s: capped, not 30.0 + x. */
    gf_hostgate_init(&g);
    gf_hostgate_refused(&g, 0, 1, 28, 20, 0.999, &ev);
    assert_int_equal(ev.capped, 0);
    assert_true(ev.pause_s == GF_HOSTGATE_MAX_PAUSE_S);
    /* The cap can be set. */
    gf_hostgate_init(&g);
    g.max_pause_s = 5;
    gf_hostgate_refused(&g, 0, 1, 100, 1, 0, &ev);
    assert_true(ev.pause_s == 5 && ev.capped);
}

/* Without Retry-After (or with 0, a past date, NaN): 0.5 s, doubling with
 * each new pause until an answer, up to the cap, drawn in [half, all]. */
static void test_hostgate_backoff(void **state)
{
    (void)state;
    struct gf_hostgate g;
    struct gf_hostgate_event ev;
    gf_hostgate_init(&g);
    double now = 0, step = GF_HOSTGATE_BACKOFF_BASE_S;
    const double none[] = {0, -3, NAN, -INFINITY};
    g.give_up_s = 1e9; /* pauses only: the host never counts as down here */
    for (int i = 0; i < 12; i++) {
        gf_hostgate_refused(&g, now + 0.001, now + 0.002, none[i % 4], 1, 0.999, &ev);
        assert_int_equal(ev.new_pause, 1);
        assert_true(ev.asked_s == 0);
        double top = step < GF_HOSTGATE_MAX_PAUSE_S ? step : GF_HOSTGATE_MAX_PAUSE_S;
        assert_true(ev.pause_s <= top + 1e-9 && ev.pause_s >= top * 0.99);
        now += ev.pause_s + 1;
        step *= 2;
    }
    assert_true(ev.pause_s <= GF_HOSTGATE_MAX_PAUSE_S);
    /* u = 0 draws half the step. */
    gf_hostgate_init(&g);
    gf_hostgate_refused(&g, 0, 1, 0, 1, 0, &ev);
    assert_true(fabs(ev.pause_s - GF_HOSTGATE_BACKOFF_BASE_S / 2) < 1e-9);
    /* An answer to a request sent after the pause starts the steps over;
     * one to a request sent before it does not. */
    gf_hostgate_init(&g);
    gf_hostgate_refused(&g, 0, 1, 0, 1, 0.999, &ev);
    gf_hostgate_refused(&g, 2, 3, 0, 1, 0.999, &ev);
    assert_true(ev.pause_s > 0.9);
    gf_hostgate_answered(&g, 2.5, 5);
    gf_hostgate_refused(&g, 6, 7, 0, 1, 0.999, &ev);
    assert_true(ev.pause_s > 1.9);
    gf_hostgate_answered(&g, 8, 10);
    gf_hostgate_refused(&g, 11, 12, 0, 1, 0.999, &ev);
    assert_true(ev.pause_s < GF_HOSTGATE_BACKOFF_BASE_S + 1e-9);
}

/* Refusals of requests sent before the pause was decided are one burst:
 * one pause, one announcement, no doubling; a longer Retry-After among
 * them extends the pause. */
static void test_hostgate_burst_is_one_pause(void **state)
{
    (void)state;
    struct gf_hostgate g;
    struct gf_hostgate_event ev;
    gf_hostgate_init(&g);
    gf_hostgate_refused(&g, 0.5, 1.0, 1.0, 20, 0, &ev);
    assert_int_equal(ev.new_pause, 1);
    for (int i = 0; i < 19; i++) {
        gf_hostgate_refused(&g, 0.5 + i * 0.01, 1.0 + i * 0.01, 1.0, 20, 0.99, &ev);
        assert_int_equal(ev.new_pause, 0);
    }
    assert_int_equal(g.pauses, 1);
    assert_int_equal(g.refusals, 20);
    /* Each was told "1 s" and the last came at 1.18: no start before 2.18,
     * and no jitter drawn on top. */
    assert_true(fabs(gf_hostgate_delay(&g, 1.5) - 0.68) < 1e-9);
    /* A Retry-After of 3 in the burst extends it to now + 3. */
    gf_hostgate_refused(&g, 0.9, 1.5, 3.0, 20, 0.5, &ev);
    assert_int_equal(ev.new_pause, 0);
    assert_true(fabs(gf_hostgate_delay(&g, 1.5) - 3.0) < 1e-9);
    /* Backoff steps are not doubled by a burst either. */
    gf_hostgate_init(&g);
    for (int i = 0; i < 10; i++)
        gf_hostgate_refused(&g, 0.5, 1.0 + i * 0.001, 0, 20, 0.999, NULL);
    assert_int_equal(g.backoff_steps, 1);
    assert_int_equal(g.pauses, 1);
    /* A shorter pause never cuts a longer one short. */
    gf_hostgate_init(&g);
    gf_hostgate_refused(&g, 0, 1, 10, 1, 0, NULL);
    gf_hostgate_refused(&g, 20, 21, 0, 1, 0, NULL); /* a later request's backoff */
    assert_true(gf_hostgate_delay(&g, 21) > 0);
}

/* After a pause, starts are spread over GF_HOSTGATE_RAMP of it, one
 * every (that / spread) seconds; then they go freely again. */
static void test_hostgate_ramp_after_pause(void **state)
{
    (void)state;
    struct gf_hostgate g;
    struct gf_hostgate_event ev;
    gf_hostgate_init(&g);
    gf_hostgate_refused(&g, 0, 0, 1.0, 10, 0, &ev);
    double end = ev.pause_s, ramp = GF_HOSTGATE_RAMP * end, step = ramp / 10;
    double now = end, last = -1;
    int starts = 0;
    while (now < end + ramp - step / 2) {
        double d = gf_hostgate_delay(&g, now);
        if (d > 0) {
            now += d;
            continue;
        }
        if (last >= 0)
            assert_true(now - last >= step - 1e-9);
        gf_hostgate_started(&g, now);
        last = now;
        starts++;
    }
    assert_int_equal(starts, 10);
    /* After the ramp, no spacing. */
    now = end + ramp;
    gf_hostgate_started(&g, now);
    assert_true(gf_hostgate_delay(&g, now) == 0);
    gf_hostgate_started(&g, now);
    assert_true(gf_hostgate_delay(&g, now) == 0);
}

/* After a pause, one request in flight, then one more per answer to a
 * request started after the pause, until the spread: no bound then. A
 * burst's refusals and answers from before leave the bound alone; a new
 * pause starts it again from one; a host found down has none. */
static void test_hostgate_window_after_pause(void **state)
{
    (void)state;
    struct gf_hostgate g;
    struct gf_hostgate_event ev;
    gf_hostgate_init(&g);
    assert_int_equal(gf_hostgate_window(&g), 0);
    gf_hostgate_refused(&g, 0.9, 1.0, 1.0, 8, 0, &ev);
    assert_int_equal(ev.new_pause, 1);
    assert_int_equal(gf_hostgate_window(&g), 1);
    /* The rest of the burst, and an answer sent before the pause. */
    gf_hostgate_refused(&g, 0.95, 1.05, 1.0, 8, 0, &ev);
    gf_hostgate_answered(&g, 0.97, 1.06);
    assert_int_equal(ev.new_pause, 0);
    assert_int_equal(gf_hostgate_window(&g), 1);
    /* Answers after the pause: 2, 3, ... 7, then no bound at 8. */
    double now = 2.1;
    for (unsigned want = 2; want < 8; want++) {
        gf_hostgate_answered(&g, now, now + 0.05);
        assert_int_equal(gf_hostgate_window(&g), want);
        now += 0.01;
    }
    gf_hostgate_answered(&g, now, now + 0.05);
    assert_int_equal(gf_hostgate_window(&g), 0);
    gf_hostgate_answered(&g, now, now + 0.05);
    assert_int_equal(gf_hostgate_window(&g), 0);
    /* A refusal of a request sent after the pause: a new one, and one in
     * flight again. */
    gf_hostgate_answered(&g, 2.5, 2.6);
    gf_hostgate_refused(&g, 3.0, 3.05, 1.0, 8, 0, &ev);
    assert_int_equal(ev.new_pause, 1);
    assert_int_equal(gf_hostgate_window(&g), 1);
    gf_hostgate_answered(&g, 4.2, 4.25);
    assert_int_equal(gf_hostgate_window(&g), 2);
    /* -m 1 needs no bound. */
    gf_hostgate_init(&g);
    gf_hostgate_refused(&g, 0.9, 1.0, 1.0, 1, 0, &ev);
    assert_int_equal(gf_hostgate_window(&g), 0);
    /* Down: every waiting start may go. */
    gf_hostgate_init(&g);
    gf_hostgate_refused(&g, 0.9, 1.0, 1.0, 8, 0, &ev);
    assert_int_equal(gf_hostgate_window(&g), 1);
    gf_hostgate_refused(&g, 1.0 + g.give_up_s, 1.1 + g.give_up_s, 1.0, 8, 0, &ev);
    assert_int_equal(ev.went_down, 1);
    assert_int_equal(gf_hostgate_window(&g), 0);
}

/* Refusals are free until the host has answered nothing but refusals for
 * give_up_s; then every one counts, until an answer. */
static void test_hostgate_give_up_horizon(void **state)
{
    (void)state;
    struct gf_hostgate g;
    struct gf_hostgate_event ev;
    gf_hostgate_init(&g);
    double now = 100;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 30, 1, 0, &ev), 1);
    now += 30;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 30, 1, 0, &ev), 1);
    now += 29.9;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 30, 1, 0, &ev), 1);
    now += 0.2;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 30, 1, 0, &ev), 0);
    assert_int_equal(ev.counted, 1);
    now += 30;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 30, 1, 0, &ev), 0);
    /* An answer ends the streak. */
    gf_hostgate_answered(&g, now + 1, now + 2);
    now += 3;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 30, 1, 0, &ev), 1);
    assert_int_equal(ev.counted, 0);
}

/* A host down (refusals and nothing else for give_up_s): backoff pauses
 * end by then, a pause the server asked for that is still in force ends
 * at once, further refusals start none and double nothing, went_down is
 * said once, and an answer brings the pauses back. */
static void test_hostgate_down_ends_the_pauses(void **state)
{
    (void)state;
    struct gf_hostgate g;
    struct gf_hostgate_event ev;
    gf_hostgate_init(&g);
    double now = 10;
    const double horizon = 10.01 + g.give_up_s; /* 60 s after the first refusal */
    /* Backoff pauses, one per refusal after the last pause, doubling but
     * never past the horizon; the refusal there finds the host down. */
    int pauses = 0;
    for (;;) {
        int free_again = gf_hostgate_refused(&g, now, now + 0.01, 0, 4, 0.5, &ev);
        if (!free_again)
            break;
        assert_int_equal(ev.new_pause, 1);
        assert_int_equal(ev.went_down, 0);
        assert_int_equal(gf_hostgate_down(&g), 0);
        assert_true(now + 0.01 + ev.pause_s <= horizon + 1e-9);
        now += 0.01 + ev.pause_s;
        pauses++;
    }
    assert_true(pauses >= 7 && now + 0.01 >= horizon && now + 0.01 < horizon + 0.05);
    assert_int_equal(ev.counted, 1);
    assert_int_equal(ev.went_down, 1);
    assert_true(gf_hostgate_delay(&g, now + 0.01) == 0);

    /* A Retry-After of 30 s asked at 50 s into the streak is obeyed past
     * the horizon, until a refusal after the horizon finds the host down. */
    gf_hostgate_init(&g);
    now = 10;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 0, 4, 0.5, &ev), 1);
    now = 60;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 30, 4, 0.5, &ev), 1);
    assert_int_equal(ev.new_pause, 1);
    assert_true(ev.pause_s >= 30);
    now = 10 + g.give_up_s + 0.5;
    assert_true(gf_hostgate_delay(&g, now) > 15);
    assert_int_equal(gf_hostgate_refused(&g, now - 0.1, now, 0, 4, 0.5, &ev), 0);
    assert_int_equal(ev.counted, 1);
    assert_int_equal(ev.went_down, 1);
    assert_int_equal(ev.new_pause, 0);
    assert_int_equal(gf_hostgate_down(&g), 1);
    assert_true(gf_hostgate_delay(&g, now) == 0);
    /* No ramp either: every waiting start may go. */
    for (int i = 0; i < 4; i++) {
        assert_true(gf_hostgate_delay(&g, now) == 0);
        gf_hostgate_started(&g, now);
    }
    /* Refusals while down: counted, said once, no pause, even with a
     * Retry-After (each code's own retry timer obeys it). */
    for (int i = 0; i < 3; i++) {
        now += 0.5;
        assert_int_equal(gf_hostgate_refused(&g, now - 0.05, now, 20, 4, 0.5, &ev), 0);
        assert_int_equal(ev.counted, 1);
        assert_int_equal(ev.went_down, 0);
        assert_int_equal(ev.new_pause, 0);
        assert_true(gf_hostgate_delay(&g, now) == 0);
    }
    /* An answer: up again, and a refusal pauses as at first. */
    gf_hostgate_answered(&g, now, now + 0.1);
    assert_int_equal(gf_hostgate_down(&g), 0);
    now += 1;
    assert_int_equal(gf_hostgate_refused(&g, now - 0.05, now, 0, 4, 0, &ev), 1);
    assert_int_equal(ev.new_pause, 1);
    assert_true(fabs(ev.pause_s - 0.25) < 1e-9); /* the first step, 0.5 s, drawn at half */
    assert_true(gf_hostgate_delay(&g, now) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hostgate_open_at_first),
        cmocka_unit_test(test_hostgate_retry_after_with_jitter),
        cmocka_unit_test(test_hostgate_cap),
        cmocka_unit_test(test_hostgate_backoff),
        cmocka_unit_test(test_hostgate_burst_is_one_pause),
        cmocka_unit_test(test_hostgate_ramp_after_pause),
        cmocka_unit_test(test_hostgate_window_after_pause),
        cmocka_unit_test(test_hostgate_give_up_horizon),
        cmocka_unit_test(test_hostgate_down_ends_the_pauses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
