/* The pace of new connections under a fake clock and fake observations:
 * the window, when a connection counts as taken (careful or not), which
 * attempts are abandoned and requeued, and when the pacer looks again. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <netinet/tcp.h>
#include <stdint.h>

#include "pacer.h"

/* What the kernel says of a connection whose request was acknowledged. */
static struct gf_pacer_tcp acked(unsigned rtt_us)
{
    return (struct gf_pacer_tcp){.known = 1, .state = TCP_ESTABLISHED, .rtt_us = rtt_us};
}

/* Data in flight, not acknowledged; retrans: retransmissions so far. */
static struct gf_pacer_tcp unacked(unsigned retrans)
{
    return (struct gf_pacer_tcp){
        .known = 1, .state = TCP_ESTABLISHED, .unacked = 1, .total_retrans = retrans};
}

static struct gf_pacer_tcp syn_sent(void)
{
    return (struct gf_pacer_tcp){.known = 1, .state = TCP_SYN_SENT, .unacked = 1};
}

static const struct gf_pacer_tcp unknown = {.known = 0};

/* A new attempt whose request went out on a new connection at t. */
static struct gf_pacer_attempt fresh_at(uint64_t t)
{
    struct gf_pacer_attempt a = {0};
    gf_pacer_connecting(&a);
    gf_pacer_socket(&a, t);
    gf_pacer_fresh(&a, t);
    return a;
}

/* A pacer whose window was grown to n by n - 4 connections taken. */
static void grown_to(struct gf_pacer *p, unsigned n)
{
    gf_pacer_init(p);
    for (unsigned i = GF_PACER_WINDOW_MIN; i < n; i++) {
        struct gf_pacer_attempt a = fresh_at(0);
        assert_int_equal(gf_pacer_count_taken(p, &a, 100), 1);
    }
    assert_int_equal(p->window, n);
}

/* A first retransmission seen past the hold: the pacer turns careful. */
static void make_careful(struct gf_pacer *p)
{
    struct gf_pacer_attempt a = fresh_at(0);
    struct gf_pacer_tcp lost = unacked(1);
    gf_pacer_taken(p, &a, GF_PACER_ACKED_HOLD_MS, 0, &lost, 100);
    assert_int_equal(p->careful, 1);
}

static void test_pacer_window_starts_at_min_and_grows(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN);
    assert_int_equal(p.careful, 0);
    assert_true(p.slowest_rtt_us == 0);
    for (unsigned i = 1; i <= 3; i++) {
        struct gf_pacer_attempt a = fresh_at(5);
        /* A fast connect: its round trip is wanted. */
        assert_int_equal(gf_pacer_count_taken(&p, &a, 250), 1);
        assert_int_equal(a.phase, GF_PACER_NONE);
        assert_int_equal(p.window, GF_PACER_WINDOW_MIN + i);
    }
    /* A connect just short of a SYN retry still grows it. */
    struct gf_pacer_attempt a = fresh_at(5);
    assert_int_equal(gf_pacer_count_taken(&p, &a, GF_PACER_SYN_RETRY_US - 1), 1);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN + 4);
    assert_int_equal(p.careful, 0);
}

/* The slowest round trip: the kernel's, or curl's connect time where the
 * kernel cannot tell; a faster one does not lower it. */
static void test_pacer_slowest_round_trip(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    struct gf_pacer_tcp t = acked(300);
    gf_pacer_round_trip(&p, &t, 9000);
    assert_true(p.slowest_rtt_us == 300);
    gf_pacer_round_trip(&p, &unknown, 700);
    assert_true(p.slowest_rtt_us == 700);
    t = acked(200);
    gf_pacer_round_trip(&p, &t, 100000);
    assert_true(p.slowest_rtt_us == 700);
}

/* A retransmitted request halves the window: the first one by turning the
 * pacer careful, each later one (one per attempt) by itself. */
static void test_pacer_window_halves_on_retransmission(void **state)
{
    (void)state;
    struct gf_pacer p;
    grown_to(&p, 40);
    struct gf_pacer_attempt a = fresh_at(100), b = fresh_at(100), c = fresh_at(100);
    struct gf_pacer_tcp lost = unacked(1), lost2 = unacked(2);
    uint64_t now = 100 + GF_PACER_ACKED_HOLD_MS;
    assert_int_equal(gf_pacer_taken(&p, &a, now, 0, &lost, 100), 0);
    assert_int_equal(p.careful, 1);
    assert_int_equal(a.resent, 1);
    assert_int_equal(p.window, 20);
    /* The same attempt again: counted once. */
    assert_int_equal(gf_pacer_taken(&p, &a, now + 1, 0, &lost2, 100), 0);
    assert_int_equal(p.window, 20);
    /* Another one, careful already. */
    assert_int_equal(gf_pacer_taken(&p, &b, now, 0, &lost, 100), 0);
    assert_int_equal(p.window, 10);
    assert_int_equal(gf_pacer_taken(&p, &c, now, 0, &lost, 100), 0);
    assert_int_equal(p.window, 5);
    /* A resent one taken in the end grows nothing, wants no round trip. */
    assert_int_equal(gf_pacer_taken(&p, &a, 100 + GF_PACER_FRESH_HOLD_MS, 0, &lost2, 100), 1);
    assert_int_equal(gf_pacer_count_taken(&p, &a, 100), 0);
    assert_int_equal(p.window, 5);
    assert_true(p.slowest_rtt_us == 0);
}

/* A SYN answered only after SYN_RETRY_US halves the window; the first
 * such sign also turns the pacer careful, which halves it once more. */
static void test_pacer_window_halves_on_slow_syn(void **state)
{
    (void)state;
    struct gf_pacer p;
    grown_to(&p, 40);
    struct gf_pacer_attempt a = fresh_at(0);
    assert_int_equal(gf_pacer_count_taken(&p, &a, GF_PACER_SYN_RETRY_US), 0);
    assert_int_equal(p.careful, 1);
    assert_int_equal(p.window, 20);
    a = fresh_at(0);
    assert_int_equal(gf_pacer_count_taken(&p, &a, GF_PACER_SYN_RETRY_US + 5000000), 0);
    assert_int_equal(p.window, 10);
    assert_true(p.slowest_rtt_us == 0);
}

static void test_pacer_window_never_below_min(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    struct gf_pacer_attempt a = fresh_at(0);
    assert_int_equal(gf_pacer_count_taken(&p, &a, GF_PACER_SYN_RETRY_US), 0);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN);
    grown_to(&p, 9);
    make_careful(&p); /* 9 / 2 = 4 */
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN);
    grown_to(&p, 7);
    p.careful = 1;
    for (int i = 0; i < 3; i++) {
        struct gf_pacer_attempt b = fresh_at(0);
        struct gf_pacer_tcp lost = unacked(1);
        gf_pacer_taken(&p, &b, GF_PACER_ACKED_HOLD_MS, 0, &lost, 100);
        assert_int_equal(p.window, GF_PACER_WINDOW_MIN);
    }
    a = fresh_at(0);
    gf_pacer_count_taken(&p, &a, GF_PACER_SYN_RETRY_US);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN);
}

/* Not careful: acknowledged counts only once the ACKED_HOLD_MS hold is
 * over, and the kernel is not asked inside it. */
static void test_pacer_acked_taken_after_hold(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    struct gf_pacer_attempt a = fresh_at(1000);
    struct gf_pacer_tcp t = acked(50);
    for (uint64_t now = 1000; now < 1000 + GF_PACER_ACKED_HOLD_MS; now++) {
        assert_int_equal(gf_pacer_taken_wants_tcp(&a, now), 0);
        assert_int_equal(gf_pacer_taken(&p, &a, now, 0, &t, 100), 0);
    }
    uint64_t end = 1000 + GF_PACER_ACKED_HOLD_MS;
    assert_int_equal(gf_pacer_taken_wants_tcp(&a, end), 1);
    assert_int_equal(gf_pacer_taken(&p, &a, end, 0, &t, 100), 1);
    /* Nothing sent yet: nothing acknowledged. */
    a = fresh_at(1000);
    assert_int_equal(gf_pacer_taken(&p, &a, end, 0, &t, 0), 0);
    assert_int_equal(p.careful, 0);
}

/* Not careful: a request not acknowledged (and never sent again) keeps
 * the connection from counting, however long; where the kernel cannot
 * tell, FRESH_HOLD_MS of silence counts. */
static void test_pacer_unacked_not_taken(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    struct gf_pacer_attempt a = fresh_at(0);
    struct gf_pacer_tcp t = unacked(0);
    assert_int_equal(gf_pacer_taken(&p, &a, GF_PACER_ACKED_HOLD_MS, 0, &t, 100), 0);
    assert_int_equal(gf_pacer_taken(&p, &a, GF_PACER_FRESH_HOLD_MS, 0, &t, 100), 0);
    assert_int_equal(gf_pacer_taken(&p, &a, 60000, 0, &t, 100), 0);
    assert_int_equal(p.careful, 0);
    assert_int_equal(a.resent, 0);
    a = fresh_at(0);
    assert_int_equal(gf_pacer_taken(&p, &a, GF_PACER_FRESH_HOLD_MS - 1, 0, &unknown, 0), 0);
    assert_int_equal(gf_pacer_taken(&p, &a, GF_PACER_FRESH_HOLD_MS, 0, &unknown, 0), 1);
    assert_int_equal(p.careful, 0);
}

/* An answer or a completed handshake counts at once, careful or not. */
static void test_pacer_answer_taken_at_once(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    for (int careful = 0; careful < 2; careful++) {
        if (careful)
            make_careful(&p);
        struct gf_pacer_attempt a = fresh_at(500);
        struct gf_pacer_tcp t = unacked(0);
        assert_int_equal(gf_pacer_taken(&p, &a, 500, 1, &unknown, 0), 1);
        a = fresh_at(500);
        assert_int_equal(gf_pacer_taken(&p, &a, 500 + GF_PACER_ACKED_HOLD_MS, 1, &t, 100), 1);
    }
}

/* Careful: acknowledged is not enough, only an answer or FRESH_HOLD_MS of
 * silence counts; and careful it stays, whatever is taken since. */
static void test_pacer_careful_waits_for_silence(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    make_careful(&p);
    for (int round = 0; round < 2; round++) {
        struct gf_pacer_attempt a = fresh_at(2000);
        struct gf_pacer_tcp t = acked(50);
        assert_int_equal(gf_pacer_taken(&p, &a, 2000 + GF_PACER_ACKED_HOLD_MS, 0, &t, 100), 0);
        assert_int_equal(gf_pacer_taken(&p, &a, 2000 + GF_PACER_FRESH_HOLD_MS - 1, 0, &t, 100), 0);
        assert_int_equal(gf_pacer_taken(&p, &a, 2000 + GF_PACER_FRESH_HOLD_MS, 0, &t, 100), 1);
        /* Many fast connections taken since: still careful. */
        for (int i = 0; i < 50; i++) {
            struct gf_pacer_attempt b = fresh_at(2000);
            gf_pacer_count_taken(&p, &b, 100);
            gf_pacer_round_trip(&p, &t, 100);
            assert_int_equal(gf_pacer_taken(&p, &b, 2000, 1, &unknown, 0), 1);
        }
        assert_int_equal(p.careful, 1);
    }
}

/* A pacer that knows a round trip of rtt_us, not careful. */
static void knowing_rtt(struct gf_pacer *p, unsigned rtt_us)
{
    gf_pacer_init(p);
    struct gf_pacer_tcp t = acked(rtt_us);
    gf_pacer_round_trip(p, &t, 0);
}

/* An attempt whose SYN is unanswered for longer than 2 + 2 x the slowest
 * round trip is abandoned; the pacer turns careful. */
static void test_pacer_unanswered_syn_abandoned(void **state)
{
    (void)state;
    struct gf_pacer p;
    knowing_rtt(&p, 1500); /* limit: 2 + 3 = 5 ms */
    struct gf_pacer_attempt a = {0};
    gf_pacer_connecting(&a);
    gf_pacer_socket(&a, 100);
    struct gf_pacer_tcp t = syn_sent();
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 104), 0);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 0);
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 105), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &t), GF_PACER_ABANDON);
    assert_int_equal(a.phase, GF_PACER_NONE);
    assert_int_equal(p.careful, 0); /* at the end of the sweep */
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 1);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN);
    /* Careful, the sweeps go on: each one that abandons an attempt halves
     * the window. */
    p.window = 16;
    gf_pacer_connecting(&a);
    gf_pacer_socket(&a, 200);
    assert_true(gf_pacer_stall_at(&p, &a) == 205);
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 205), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &t), GF_PACER_ABANDON);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.window, 8);
    /* A sweep that abandoned nothing halves nothing. */
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.window, 8);
}

/* An answered SYN is never looked at again, until curl makes another
 * socket for the attempt. */
static void test_pacer_answered_syn_kept(void **state)
{
    (void)state;
    struct gf_pacer p;
    knowing_rtt(&p, 1500);
    struct gf_pacer_attempt a = {0};
    gf_pacer_connecting(&a);
    gf_pacer_socket(&a, 100);
    struct gf_pacer_tcp t = acked(0);
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 200), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &t), GF_PACER_KEEP);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 300), 0);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 0);
    gf_pacer_socket(&a, 400);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 404), 0);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 405), 1);
    /* The kernel cannot tell: nothing is decided, whatever the other
     * fields hold, and the attempt is looked at again. */
    struct gf_pacer_tcp stale = syn_sent();
    stale.known = 0;
    stale.total_retrans = 3;
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &stale), GF_PACER_KEEP);
    assert_int_equal(a.phase, GF_PACER_CONNECTING);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 406), 1);
    gf_pacer_fresh(&a, 406);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &stale), GF_PACER_KEEP);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &unknown), GF_PACER_KEEP);
    assert_int_equal(a.phase, GF_PACER_FRESH);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 0);
}

/* A request unacknowledged and retransmitted past the limit is abandoned;
 * unacknowledged without a retransmission it stays (a server delaying its
 * ACKs) but the pacer turns careful; acknowledged, nothing happens. The
 * limit runs from the request, not from the socket. */
static void test_pacer_unacked_request(void **state)
{
    (void)state;
    struct gf_pacer p;
    knowing_rtt(&p, 999); /* limit: 2 + 1 = 3 ms */
    struct gf_pacer_attempt a = {0};
    gf_pacer_connecting(&a);
    gf_pacer_socket(&a, 0);
    gf_pacer_fresh(&a, 100);
    struct gf_pacer_tcp lost = unacked(1), slow = unacked(0), ok = acked(999);
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 102), 0);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 103), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &ok), GF_PACER_KEEP);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 0);
    /* Acknowledged, it cannot stall any more: never due again. */
    assert_true(gf_pacer_stall_at(&p, &a) == UINT64_MAX);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 1000), 0);
    gf_pacer_fresh(&a, 100);

    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &slow), GF_PACER_KEEP);
    assert_int_equal(a.phase, GF_PACER_FRESH);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 1);
    /* Careful, a late ACK is no further sign: the window stays. */
    p.window = 10;
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &slow), GF_PACER_KEEP);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.window, 10);
    /* Still due: the engine looks again after half the limit. */
    assert_int_equal(gf_pacer_stall_due(&p, &a, 103), 1);
    assert_true(gf_pacer_stall_recheck_ms(&p) == 1);

    knowing_rtt(&p, 999);
    p.window = 12;
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_due(&p, &a, 103), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &lost), GF_PACER_ABANDON);
    assert_int_equal(a.phase, GF_PACER_NONE);
    assert_int_equal(a.syn_answered, 0);
    /* Abandoned: no longer an attempt. */
    assert_int_equal(gf_pacer_stall_due(&p, &a, 1000), 0);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 1);
    assert_int_equal(p.window, 6);
}

/* No sweep before a first round trip is known; careful or not once one
 * is. When an attempt is due: never before a round trip is known, nor
 * once its SYN was answered, nor when it is no attempt. */
static void test_pacer_sweeps_once_a_round_trip_is_known(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    struct gf_pacer_attempt a = {0};
    assert_true(gf_pacer_stall_at(&p, &a) == UINT64_MAX);
    gf_pacer_connecting(&a);
    gf_pacer_socket(&a, 10);
    assert_true(gf_pacer_stall_at(&p, &a) == UINT64_MAX);
    assert_int_equal(gf_pacer_stall_begin(&p), 0);
    knowing_rtt(&p, 4000); /* limit: 2 + 8 = 10 ms */
    assert_true(gf_pacer_stall_at(&p, &a) == 20);
    assert_true(gf_pacer_stall_recheck_ms(&p) == 5);
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    struct gf_pacer_tcp up = acked(0);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a, &up), GF_PACER_KEEP);
    assert_true(gf_pacer_stall_at(&p, &a) == UINT64_MAX);
    gf_pacer_stall_end(&p);
    gf_pacer_fresh(&a, 30);
    assert_true(gf_pacer_stall_at(&p, &a) == 40);
    make_careful(&p);
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    /* A sweep that found nothing leaves the pacer as it was. */
    knowing_rtt(&p, 100);
    gf_pacer_stall_begin(&p);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 0);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN);
}

/* Careful, the window grows by one per window's worth of connections
 * taken, not by one per connection: a server that closes each connection
 * after one answer makes every request a new connection. */
static void test_pacer_careful_grows_by_one_per_window(void **state)
{
    (void)state;
    struct gf_pacer p;
    grown_to(&p, 16);
    make_careful(&p);
    assert_int_equal(p.window, 8);
    for (unsigned step = 0; step < 3; step++) {
        unsigned w = p.window;
        for (unsigned i = 1; i <= w; i++) {
            struct gf_pacer_attempt a = fresh_at(0);
            assert_int_equal(gf_pacer_count_taken(&p, &a, 100), 1);
            assert_int_equal(p.window, i < w ? w : w + 1);
        }
    }
    assert_int_equal(p.window, 11);
    /* Slow start again nowhere: a halving keeps the pace. */
    struct gf_pacer_attempt a = fresh_at(0);
    assert_int_equal(gf_pacer_count_taken(&p, &a, GF_PACER_SYN_RETRY_US), 0);
    assert_int_equal(p.window, 5);
    for (unsigned i = 0; i < 4; i++) {
        a = fresh_at(0);
        gf_pacer_count_taken(&p, &a, 100);
    }
    assert_int_equal(p.window, 5);
}

/* The next check: none without a queue or without anything that could be
 * taken; 1 ms at least, FRESH_HOLD_MS / 2 at most, and FRESH_HOLD_MS / 2
 * once careful. */
static void test_pacer_next_check(void **state)
{
    (void)state;
    const uint64_t none = UINT64_MAX, half = GF_PACER_FRESH_HOLD_MS / 2;
    struct gf_pacer p;
    gf_pacer_init(&p);
    assert_true(gf_pacer_next_check(&p, 4, 0, 3, 3) == 0);
    assert_true(gf_pacer_next_check(&p, none, 5, 0, 0) == 0);
    /* Attempts still connecting and no round trip known: nothing to time
     * (no stall can be judged), so no timer; with one, by the round trip. */
    assert_true(gf_pacer_next_check(&p, none, 5, 0, 2) == 0);
    knowing_rtt(&p, 1000);
    assert_true(gf_pacer_next_check(&p, none, 5, 0, 2) == 1);
    knowing_rtt(&p, 10000);
    assert_true(gf_pacer_next_check(&p, none, 5, 0, 2) == 5);
    knowing_rtt(&p, 500000);
    assert_true(gf_pacer_next_check(&p, none, 5, 0, 2) == half);
    /* New connections: half the age of the youngest. */
    gf_pacer_init(&p);
    assert_true(gf_pacer_next_check(&p, 0, 5, 1, 1) == 1);
    assert_true(gf_pacer_next_check(&p, 3, 5, 1, 1) == 1);
    assert_true(gf_pacer_next_check(&p, 14, 5, 1, 1) == 7);
    assert_true(gf_pacer_next_check(&p, 2 * half, 5, 1, 1) == half);
    assert_true(gf_pacer_next_check(&p, 100000, 5, 1, 1) == half);
    make_careful(&p);
    assert_true(gf_pacer_next_check(&p, 0, 5, 1, 1) == half);
    assert_true(gf_pacer_next_check(&p, 4, 5, 2, 9) == half);
    /* Careful, attempts only connecting: their SYNs cannot be judged. */
    assert_true(gf_pacer_next_check(&p, none, 5, 0, 2) == 0);
}

/* A burst as the engine drives it: the first connection answered gives a
 * round trip, a sweep then abandons the attempt whose SYN went unanswered
 * and keeps the one whose request is merely unacknowledged; from then on
 * the pacer is careful, looks again every FRESH_HOLD_MS / 2, counts
 * silence only, and grows by one per window's worth taken. */
static void test_pacer_burst_turns_careful(void **state)
{
    (void)state;
    struct gf_pacer p;
    gf_pacer_init(&p);
    struct gf_pacer_attempt a[4] = {0};
    for (int i = 0; i < 4; i++) {
        gf_pacer_connecting(&a[i]);
        gf_pacer_socket(&a[i], 0);
    }
    /* Before any round trip is known nothing is swept. */
    assert_int_equal(gf_pacer_stall_begin(&p), 0);
    gf_pacer_fresh(&a[0], 1);
    gf_pacer_fresh(&a[3], 1);
    assert_int_equal(gf_pacer_taken(&p, &a[0], 2, 1, &unknown, 0), 1);
    assert_int_equal(gf_pacer_count_taken(&p, &a[0], 400), 1);
    struct gf_pacer_tcp t = acked(400);
    gf_pacer_round_trip(&p, &t, 400);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN + 1);
    /* One queued, one new connection waiting: every ms or so. */
    assert_true(gf_pacer_next_check(&p, 1, 1, 1, 3) == 1);

    /* Limit 2 ms: at 3 ms a[1]'s SYN was answered, a[2]'s was not, a[3]'s
     * request is not acknowledged yet. */
    struct gf_pacer_tcp up = acked(0), lost = syn_sent(), slow = unacked(0);
    assert_int_equal(gf_pacer_stall_begin(&p), 1);
    assert_int_equal(gf_pacer_stall_due(&p, &a[0], 3), 0);
    assert_int_equal(gf_pacer_stall_due(&p, &a[1], 3), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a[1], &up), GF_PACER_KEEP);
    assert_int_equal(gf_pacer_stall_due(&p, &a[2], 3), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a[2], &lost), GF_PACER_ABANDON);
    assert_int_equal(gf_pacer_stall_due(&p, &a[3], 3), 1);
    assert_int_equal(gf_pacer_stall_verdict(&p, &a[3], &slow), GF_PACER_KEEP);
    gf_pacer_stall_end(&p);
    assert_int_equal(p.careful, 1);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN);

    /* Requeued, a[2] waits; a[3] counts after FRESH_HOLD_MS of silence. */
    assert_true(gf_pacer_next_check(&p, 2, 2, 1, 2) == GF_PACER_FRESH_HOLD_MS / 2);
    t = acked(400);
    assert_int_equal(gf_pacer_taken(&p, &a[3], 1 + GF_PACER_FRESH_HOLD_MS - 1, 0, &t, 100), 0);
    assert_int_equal(gf_pacer_taken(&p, &a[3], 1 + GF_PACER_FRESH_HOLD_MS, 0, &t, 100), 1);
    assert_int_equal(gf_pacer_count_taken(&p, &a[3], 600), 1);
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN);
    for (int i = 1; i < GF_PACER_WINDOW_MIN; i++) {
        struct gf_pacer_attempt b = fresh_at(50);
        gf_pacer_count_taken(&p, &b, 600);
    }
    assert_int_equal(p.window, GF_PACER_WINDOW_MIN + 1);
    assert_int_equal(p.careful, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pacer_window_starts_at_min_and_grows),
        cmocka_unit_test(test_pacer_slowest_round_trip),
        cmocka_unit_test(test_pacer_window_halves_on_retransmission),
        cmocka_unit_test(test_pacer_window_halves_on_slow_syn),
        cmocka_unit_test(test_pacer_window_never_below_min),
        cmocka_unit_test(test_pacer_acked_taken_after_hold),
        cmocka_unit_test(test_pacer_unacked_not_taken),
        cmocka_unit_test(test_pacer_answer_taken_at_once),
        cmocka_unit_test(test_pacer_careful_waits_for_silence),
        cmocka_unit_test(test_pacer_unanswered_syn_abandoned),
        cmocka_unit_test(test_pacer_answered_syn_kept),
        cmocka_unit_test(test_pacer_unacked_request),
        cmocka_unit_test(test_pacer_sweeps_once_a_round_trip_is_known),
        cmocka_unit_test(test_pacer_careful_grows_by_one_per_window),
        cmocka_unit_test(test_pacer_next_check),
        cmocka_unit_test(test_pacer_burst_turns_careful),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
