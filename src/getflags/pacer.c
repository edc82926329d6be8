#include "pacer.h"

#include <netinet/tcp.h>

void gf_pacer_init(struct gf_pacer *p)
{
    *p = (struct gf_pacer){.window = GF_PACER_WINDOW_MIN};
}

void gf_pacer_connecting(struct gf_pacer_attempt *a)
{
    a->phase = GF_PACER_CONNECTING;
}

void gf_pacer_socket(struct gf_pacer_attempt *a, uint64_t now_ms)
{
    a->sock_at = now_ms;
    a->syn_answered = 0;
}

void gf_pacer_fresh(struct gf_pacer_attempt *a, uint64_t now_ms)
{
    a->phase = GF_PACER_FRESH;
    a->fresh_at = now_ms;
    a->request_acked = 0;
}

static void shrink(struct gf_pacer *p)
{
    p->window = p->window / 2 > GF_PACER_WINDOW_MIN ? p->window / 2 : GF_PACER_WINDOW_MIN;
}

/* The first sign that the server's accept queue overflowed. */
static void become_careful(struct gf_pacer *p)
{
    if (!p->careful) {
        p->careful = 1;
        shrink(p);
    }
}

int gf_pacer_taken_wants_tcp(const struct gf_pacer_attempt *a, uint64_t now_ms)
{
    return now_ms - a->fresh_at >= GF_PACER_ACKED_HOLD_MS;
}

int gf_pacer_taken(struct gf_pacer *p, struct gf_pacer_attempt *a, uint64_t now_ms, int answered,
                   const struct gf_pacer_tcp *tcp, long request_size)
{
    if (answered)
        return 1;
    /* Until the hold is over only an answer or a handshake can count. */
    if (!gf_pacer_taken_wants_tcp(a, now_ms))
        return 0;
    if (tcp->known) {
        if (tcp->total_retrans > 0 && !a->resent) {
            /* Lost, or dropped by a full accept queue: too many at once. */
            a->resent = 1;
            if (p->careful)
                shrink(p);
            become_careful(p);
        }
        if (!p->careful && !a->resent)
            return request_size > 0 && tcp->unacked == 0;
    }
    return now_ms - a->fresh_at >= GF_PACER_FRESH_HOLD_MS;
}

int gf_pacer_count_taken(struct gf_pacer *p, struct gf_pacer_attempt *a, int64_t connect_us)
{
    a->phase = GF_PACER_NONE;
    if (connect_us >= GF_PACER_SYN_RETRY_US) {
        /* Its SYN went again: halves, once, as a retransmission does
         * (becoming careful is itself the halving of the first sign). */
        if (p->careful)
            shrink(p);
        become_careful(p);
        return 0;
    }
    if (a->resent)
        return 0;
    if (!p->careful || ++p->credit >= p->window) {
        p->credit = 0;
        p->window++;
    }
    return 1;
}

void gf_pacer_round_trip(struct gf_pacer *p, const struct gf_pacer_tcp *tcp, int64_t connect_us)
{
    uint64_t rtt = tcp->known ? tcp->rtt_us : (uint64_t)connect_us;
    if (rtt > p->slowest_rtt_us)
        p->slowest_rtt_us = rtt;
}

int gf_pacer_stall_begin(struct gf_pacer *p)
{
    p->stalled = 0;
    p->abandoned = 0;
    return p->slowest_rtt_us != 0;
}

static uint64_t stall_limit_ms(const struct gf_pacer *p)
{
    return 2 + 2 * p->slowest_rtt_us / 1000;
}

uint64_t gf_pacer_stall_at(const struct gf_pacer *p, const struct gf_pacer_attempt *a)
{
    if (p->slowest_rtt_us == 0 || a->phase == GF_PACER_NONE ||
        (a->phase == GF_PACER_CONNECTING && a->syn_answered) ||
        (a->phase == GF_PACER_FRESH && a->request_acked))
        return UINT64_MAX;
    return (a->phase == GF_PACER_FRESH ? a->fresh_at : a->sock_at) + stall_limit_ms(p);
}

int gf_pacer_stall_due(const struct gf_pacer *p, const struct gf_pacer_attempt *a, uint64_t now_ms)
{
    return now_ms >= gf_pacer_stall_at(p, a);
}

uint64_t gf_pacer_stall_recheck_ms(const struct gf_pacer *p)
{
    return stall_limit_ms(p) / 2;
}

enum gf_pacer_stall gf_pacer_stall_verdict(struct gf_pacer *p, struct gf_pacer_attempt *a,
                                           const struct gf_pacer_tcp *tcp)
{
    if (!tcp->known)
        return GF_PACER_KEEP;
    if (a->phase == GF_PACER_CONNECTING && tcp->state != TCP_SYN_SENT) {
        a->syn_answered = 1;
        return GF_PACER_KEEP;
    }
    if (a->phase == GF_PACER_FRESH && tcp->unacked == 0) {
        a->request_acked = 1;
        return GF_PACER_KEEP;
    }
    p->stalled = 1;
    /* Not acknowledged, never sent again: maybe a server that delays its
     * ACKs. */
    if (a->phase == GF_PACER_FRESH && tcp->total_retrans == 0)
        return GF_PACER_KEEP;
    a->phase = GF_PACER_NONE;
    a->syn_answered = 0;
    p->abandoned = 1;
    return GF_PACER_ABANDON;
}

void gf_pacer_stall_end(struct gf_pacer *p)
{
    /* Careful already, only an attempt the server surely never saw (not
     * one whose ACK may merely be late) is another sign. */
    if (p->careful ? p->abandoned : p->stalled) {
        if (p->careful)
            shrink(p);
        become_careful(p);
    }
    p->stalled = 0;
    p->abandoned = 0;
}

uint64_t gf_pacer_next_check(const struct gf_pacer *p, uint64_t youngest_ms, unsigned nqueued,
                             unsigned nfresh, unsigned nconnecting)
{
    if (nqueued == 0 || (nfresh == 0 && (p->careful || nconnecting == 0)))
        return 0;
    /* Attempts only connecting, and no round trip known to judge a stall
     * by: only curl's callbacks can change anything, and each is followed
     * by a look anyway (a timer here woke the loop every millisecond for
     * the first two round trips of every run). */
    if (nfresh == 0 && p->slowest_rtt_us == 0)
        return 0;
    /* Every millisecond at first, less often for requests that have
     * waited long or attempts on a long round trip, at most every
     * FRESH_HOLD_MS / 2. */
    uint64_t wait = youngest_ms == UINT64_MAX ? p->slowest_rtt_us / 2000 : youngest_ms / 2;
    if (p->careful)
        wait = GF_PACER_FRESH_HOLD_MS / 2;
    if (wait < 1)
        wait = 1;
    if (wait > GF_PACER_FRESH_HOLD_MS / 2)
        wait = GF_PACER_FRESH_HOLD_MS / 2;
    return wait;
}
