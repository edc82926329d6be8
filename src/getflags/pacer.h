/* The pace of new connections: how many attempts may be under way at
 * once, when a new connection counts as taken by the server, when an
 * attempt the server never took is abandoned, and when to look again.
 * Pure logic, no I/O and no clock of its own: the engine (engine.c) passes
 * the loop time in ms and what curl and the kernel (TCP_INFO) say of each
 * attempt, and does what the answers say.
 *
 * Why: a server with a small listen backlog (Python's http.server: 5)
 * drops the connections of a burst that do not fit its accept queue, and
 * each dropped one costs a second or more. The kernel completes a
 * connection before the server has room for it (with SYN cookies it
 * answers every SYN), so what shows that a connection was taken is the
 * server's TCP acknowledging the request (the connection is then in its
 * accept queue or accepted), a TLS handshake completed (its program is at
 * work), or an answer.
 *
 * The rules:
 * - The window (attempts under way at most) starts at GF_PACER_WINDOW_MIN
 *   and grows by one per connection taken (doubling per round trip, as
 *   TCP's slow start does) until the first sign of a full accept queue;
 *   from then on by one per window's worth of connections taken (a server
 *   that closes each connection after one answer, as http.server does
 *   with HTTP/1.0, has every request open one: growing by one per answer
 *   would soon overflow its queue again). It halves, never below the
 *   minimum, when a request had to be sent again or a SYN was answered
 *   only after GF_PACER_SYN_RETRY_US (it was sent again).
 * - Until the first sign of a full accept queue, a connection whose request
 *   the server's TCP acknowledged counts as taken once it has also been
 *   silent for GF_PACER_ACKED_HOLD_MS; where the kernel cannot tell, after
 *   GF_PACER_FRESH_HOLD_MS of silence.
 * - From that first sign on (a retransmitted request, a slow SYN, a stalled
 *   attempt) the pacer is careful for good (that sign halves the window
 *   once, as any other does), and a connection counts as taken when
 *   answered or after GF_PACER_FRESH_HOLD_MS of silence.
 * - An answer or a completed TLS handshake counts at once, in either mode.
 * - Once a round trip is known: an attempt whose SYN, or request, has gone
 *   unacknowledged for longer than 2 ms + twice the slowest round trip of
 *   the connections taken was dropped by a full accept queue. An
 *   unanswered SYN would go again only a second later, and a request sent
 *   again waits longer each time: such an attempt is abandoned (the server
 *   never saw it) and queued again first in line, and the window halves
 *   (the first time by turning the pacer careful). A request merely not
 *   yet acknowledged, without a retransmission, may have reached a server
 *   that delays its ACKs: it stays, and only turns the pacer careful. */
#ifndef GF_PACER_H
#define GF_PACER_H

#include <stdint.h>

#define GF_PACER_WINDOW_MIN 4
/* A connect this slow needed its SYN sent again. */
#define GF_PACER_SYN_RETRY_US 900000
/* Where the kernel cannot say whether the request was acknowledged (or
 * once careful): a new connection silent for this long was taken, as far
 * as the window is concerned, so that a slow server (seconds per answer)
 * does not hold back the connections it needs. */
#define GF_PACER_FRESH_HOLD_MS 40
/* A connection whose request the server's TCP acknowledged counts as
 * taken only once it has also been silent this long: a fast server
 * answers first, so the window then grows per answer, and the few
 * connections already open keep serving the queue (B1: opening one per
 * acknowledgement instead cost 1.3x the CPU); a slow server still gets its
 * connections four times sooner than by silence alone. Inside it the
 * kernel is not asked at all (B1: 1,100 getsockopt calls). */
#define GF_PACER_ACKED_HOLD_MS 10

/* Where an attempt is. */
enum gf_pacer_phase {
    GF_PACER_NONE = 0,       /* not an attempt (queued, reusing, or done with) */
    GF_PACER_CONNECTING = 1, /* handed to curl, no connection ready yet */
    GF_PACER_FRESH = 2,      /* its request is on a new connection not yet taken */
};

/* What the pacer keeps of one attempt; the engine embeds it. */
struct gf_pacer_attempt {
    enum gf_pacer_phase phase;
    uint64_t sock_at;  /* loop time of its latest socket */
    uint64_t fresh_at; /* loop time it became GF_PACER_FRESH */
    int syn_answered;  /* its SYN was seen answered: no need to look again */
    int request_acked; /* its request was seen acknowledged: nor here */
    int resent;        /* its request was retransmitted (counted once) */
};

/* The kernel's view of a socket (TCP_INFO). */
struct gf_pacer_tcp {
    int known;              /* 0: no socket, or getsockopt failed; the rest is then unused */
    unsigned state;         /* tcpi_state (TCP_SYN_SENT, ...) */
    unsigned unacked;       /* tcpi_unacked */
    unsigned total_retrans; /* tcpi_total_retrans */
    unsigned rtt_us;        /* tcpi_rtt */
};

struct gf_pacer {
    unsigned window;         /* new connection attempts under way, at most */
    int careful;             /* a full accept queue has been seen */
    unsigned credit;         /* connections taken towards the next step, once careful */
    uint64_t slowest_rtt_us; /* of the connections taken */
    int stalled;             /* an attempt stalled in the current sweep */
    int abandoned;           /* an attempt was abandoned in the current sweep */
};

void gf_pacer_init(struct gf_pacer *p);

/* The engine's view of an attempt's life. */
void gf_pacer_connecting(struct gf_pacer_attempt *a);
/* Curl made a(nother) socket for it at now_ms. */
void gf_pacer_socket(struct gf_pacer_attempt *a, uint64_t now_ms);
/* Its connection is new and its request goes out at now_ms. */
void gf_pacer_fresh(struct gf_pacer_attempt *a, uint64_t now_ms);

/* Whether TCP_INFO of a's socket is wanted by gf_pacer_taken() at now_ms:
 * 0 inside the hold, where only an answer or a handshake can count. */
int gf_pacer_taken_wants_tcp(const struct gf_pacer_attempt *a, uint64_t now_ms);

/* Whether a's new connection (GF_PACER_FRESH) has been taken by the
 * server. answered: curl saw the answer start or a TLS handshake done.
 * tcp: TCP_INFO of its socket, read only when gf_pacer_taken_wants_tcp()
 * said so (else known = 0); request_size: curl's REQUEST_SIZE (bytes sent).
 * A first retransmission seen here halves the window and makes the pacer
 * careful. Returns 1 when taken (then call gf_pacer_count_taken), 0 when
 * not yet. */
int gf_pacer_taken(struct gf_pacer *p, struct gf_pacer_attempt *a, uint64_t now_ms, int answered,
                   const struct gf_pacer_tcp *tcp, long request_size);

/* a's connection was taken after a connect of connect_us (curl's
 * CONNECT_TIME): the window moves, and a leaves GF_PACER_FRESH. Returns 1
 * when the connection's round trip is wanted: pass TCP_INFO of its socket
 * to gf_pacer_round_trip(). */
int gf_pacer_count_taken(struct gf_pacer *p, struct gf_pacer_attempt *a, int64_t connect_us);

/* The round trip of a connection taken: the kernel's when known (it does
 * not grow with the loop's own delays), else the connect time. */
void gf_pacer_round_trip(struct gf_pacer *p, const struct gf_pacer_tcp *tcp, int64_t connect_us);

/* A sweep for stalled attempts: gf_pacer_stall_begin() says whether one is
 * wanted (a round trip known); then, per attempt with a socket,
 * gf_pacer_stall_due() says whether its TCP_INFO is wanted, and
 * gf_pacer_stall_verdict() what to do; gf_pacer_stall_end() makes the
 * pacer careful if any attempt stalled, or halves the window if careful
 * and one was abandoned. */
int gf_pacer_stall_begin(struct gf_pacer *p);
int gf_pacer_stall_due(const struct gf_pacer *p, const struct gf_pacer_attempt *a, uint64_t now_ms);
/* The loop time from which a is due, UINT64_MAX while it cannot be (not
 * an attempt, its SYN answered, or no round trip known yet). */
uint64_t gf_pacer_stall_at(const struct gf_pacer *p, const struct gf_pacer_attempt *a);
/* How soon to look again at an attempt that was due and stays (a request
 * not yet acknowledged): half the stall limit. */
uint64_t gf_pacer_stall_recheck_ms(const struct gf_pacer *p);

enum gf_pacer_stall {
    GF_PACER_KEEP = 0, /* nothing wrong (seen), or a request the server may ACK late */
    GF_PACER_ABANDON,  /* the server never saw it: remove it, queue it again first */
};
/* On GF_PACER_ABANDON, a is reset for its next attempt (phase NONE). */
enum gf_pacer_stall gf_pacer_stall_verdict(struct gf_pacer *p, struct gf_pacer_attempt *a,
                                           const struct gf_pacer_tcp *tcp);
void gf_pacer_stall_end(struct gf_pacer *p);

/* Milliseconds until the pacer wants to look again (>= 1), or 0 when it
 * needs no timer: nothing queued, nothing under way that could free a slot
 * by itself being taken, or only attempts still connecting before any
 * round trip is known. youngest_ms: the age of the youngest new
 * connection not yet taken, UINT64_MAX when none. */
uint64_t gf_pacer_next_check(const struct gf_pacer *p, uint64_t youngest_ms, unsigned nqueued,
                             unsigned nfresh, unsigned nconnecting);

#endif
