#include "gf/alloc.h"
#include "gf/engine.h"

#include <stddef.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "gf/error.h"
#include "pacer.h"

/* A transfer the engine has started and not yet reported. Its attempts at
 * a new connection are paced so that a server with a small listen backlog
 * is not flooded (pacer.h has the rules and why); a transfer that finds an
 * idle or multiplexed connection waits for nothing. */
struct active {
    CURL *easy;
    uint64_t timeout_ms;
    uint64_t deadline;          /* loop time (ms) after which curl has failed us */
    struct gf_pacer_attempt pa; /* counted in nconnecting, and nfresh when FRESH */
    curl_socket_t fd;           /* the socket of its new connection, or CURL_SOCKET_BAD */
    unsigned nsocks;            /* sockets curl opened for it (happy eyeballs: several) */
    int queued;                 /* waiting for a connection attempt slot */
    unsigned abandons;          /* attempts of it the pacer gave up on */
    int sent;                   /* its request went out */
    unsigned requests;          /* requests sent for it (hops, curl's re-sends) */
    uint64_t sent_seq;          /* event number of its latest request */
    uint64_t handed_ns;         /* uv_hrtime() when handed to curl */
    /* The connection of its latest request (an index into notes, or
     * NO_NOTE), its generation and the answers it had given then. */
    size_t note;
    unsigned note_gen, answered_at_send;
    uint64_t idle_at_send; /* ms its connection had been idle then, 0: busy or new */
    long redirects;        /* curl's redirect count at its latest request */
    long prereq_conns;     /* curl's new connections for it then */
    /* curl's count of its new connections is stale (the pooled handle's
     * last transfer) until curl runs it, which the socket and pre-request
     * callbacks show; conns of that count are tallied. */
    int ran;
    long conns;
    struct gf_engine *engine;
};

/* One per socket descriptor curl asks us to watch. */
struct sock_ctx {
    uv_poll_t poll;
    curl_socket_t fd;
    int events; /* what curl asked us to watch */
    struct gf_engine *engine;
};

#define ENGINE_TIMERS 4

#define NO_NOTE SIZE_MAX

/* The shortest idle spell that may show a server's idle timeout. */
#define IDLE_CLOSE_MIN_MS 100

/* What the engine knows of one connection, by its local port: a server
 * that ends each connection after N requests (nginx's keepalive_requests
 * sends GOAWAY) drops every stream past the N-th, and curl sends them
 * again, all on one new connection, which drops all but N again: -a -m
 * 100 sent 2,646 requests for 388 answers. A connection that dropped a
 * request while it answered others sent with it or before shows N: curl is
 * then told to put at most N streams on a connection. N is known once
 * every request sent on the connection has ended or gone again: a slow
 * server answers its N long after the drops, and the answers in by then
 * (1 at first) would cap every later connection far too low. A connection
 * closed while idle under a request drops it after all its answers, and
 * shows nothing. */
struct conn_note {
    unsigned port;
    unsigned gen;        /* bumped when a new connection takes the port */
    unsigned answered;   /* answers it gave */
    unsigned pending;    /* requests last sent on it, neither ended nor sent again */
    uint64_t idle_since; /* loop time (ms) pending last fell to 0, 0: never */
    /* Of its dropped requests, the fewest answers it had given when one
     * was sent (UINT_MAX: it dropped none). */
    unsigned dropped_at;
};

/* A finished transfer's latest request and its end, as event numbers. */
struct span {
    uint64_t from, to;
};

struct gf_engine {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t timer;
    uv_timer_t watchdog;
    uv_timer_t pace;     /* runs pump() while queued transfers wait on slow answers */
    uv_timer_t settings; /* ends the hold once the server's SETTINGS are in */
    gf_engine_done_cb done;
    gf_engine_room_cb room;
    gf_engine_room_cb first; /* cleared once called */
    void *arg;
    struct active **active; /* queued ones first-in first-out by seq */
    size_t nactive, cap;
    struct gf_pacer pacer;
    unsigned nconnecting;     /* transfers in state CONNECTING or FRESH */
    unsigned nfresh, nqueued; /* transfers in state FRESH, and queued ones */
    unsigned nsent, peak_sent;
    /* For the peak the server saw: each finished transfer's latest request
     * and its end, as event numbers (seq). A request curl sent again (a
     * refused stream, a GOAWAY) was not at the server before that; counted
     * from its first, a run against 4 streams per connection reported 514
     * in flight on 46 connections. */
    uint64_t seq;
    struct span *spans;
    size_t nspans, spans_cap;
    int spans_lost; /* out of memory: peak_sent, an upper bound, stands */
    struct conn_note *notes;
    size_t nnotes, notes_cap;
    long streams_default;     /* CURLMOPT_MAX_CONCURRENT_STREAMS as set at first */
    unsigned streams_learned; /* most answers of a connection that dropped requests */
    int streams_due;          /* streams_learned is for curl to take */
    /* The shortest idle spell (ms) after which a connection was found
     * closed under a request (UINT64_MAX: none seen), and the loop time the
     * latest request ended: see fresh_due(). */
    uint64_t idle_closed_ms, ended_at;
    uint64_t sent_at; /* loop time of the latest transfer's first request, 0: none yet */
    /* Counted as they happen, so that an interrupted run reports what the
     * server saw: every request that went out, and every new connection. */
    uint64_t requests, opened;
    /* Loop time of the next look for stalled attempts (UINT64_MAX: none
     * can be due): an attempt is looked at when due, not at every pump. */
    uint64_t sweep_at;
    long max_connects;
    /* No more than this many transfers run at once until a transfer
     * finishes or the settings timer fires (0: no bound); see
     * gf_engine_hold_streams(). */
    unsigned hold;
    /* One transfer at a time goes to curl until a first connection is
     * ready (see gf_engine_one_until_connected()). */
    int one_until_connected;
    /* The poll of each socket descriptor curl has asked to watch, kept
     * (stopped) while curl watches nothing there: a keep-alive connection
     * goes idle and is taken again for every request, and a new poll
     * handle each time costs an allocation and four epoll calls. */
    struct sock_ctx **socks;
    size_t nsocks;
    /* Transfers handed to curl since it last ran its due timers: each is
     * due at once, and pump() runs curl on them in the same callback. */
    unsigned unrun;
    int pumping, repump; /* pump() is running; it is to run once more */
    int closing;
    int pending_closes;
    CURLMcode add_error; /* why the last gf_engine_start failed */
};

/* How long past its own timeout a transfer may run before the watchdog
 * ends it: curl enforces CURLOPT_TIMEOUT_MS itself, so this only fires
 * when curl lost track of a transfer (seen under allocation failure). */
#define WATCHDOG_GRACE_MS 2000
#define WATCHDOG_INTERVAL_MS 1000
/* The longest the hold waits for SETTINGS after the first connection is
 * ready. */
#define HOLD_MAX_MS 2000
/* Added to the hold for the loop's own delays: on loopback the round
 * trip is tens of microseconds, and a loaded machine (two test suites at
 * once) took longer than 2 ms to read the SETTINGS already sent. */
#define HOLD_SLACK_MS 20

/* The engine's timers, in one list for their set-up and their close. */
static void engine_timers(struct gf_engine *e, uv_timer_t *out[ENGINE_TIMERS])
{
    out[0] = &e->timer;
    out[1] = &e->watchdog;
    out[2] = &e->pace;
    out[3] = &e->settings;
}

static void call_first(struct gf_engine *e)
{
    gf_engine_room_cb first = e->first;
    e->first = NULL;
    if (first)
        first(e->arg);
}

/* Adds a's new connections since the last tally. curl counts them per
 * transfer, from when it was handed over, across redirects and its own
 * re-sends. */
static void tally_connections(struct gf_engine *e, struct active *a)
{
    long n = 0;
    if (a->ran && curl_easy_getinfo(a->easy, CURLINFO_NUM_CONNECTS, &n) == CURLE_OK &&
        n > a->conns) {
        e->opened += (uint64_t)(n - a->conns);
        a->conns = n;
    }
}

static void keep_span(struct gf_engine *e, const struct active *a)
{
    if (e->nspans == e->spans_cap) {
        size_t cap = e->spans_cap ? 2 * e->spans_cap : 256;
        struct span *n = gf_realloc(e->spans, cap * sizeof *n);
        if (!n) {
            e->spans_lost = 1;
            return;
        }
        e->spans = n;
        e->spans_cap = cap;
    }
    e->spans[e->nspans++] = (struct span){a->sent_seq, ++e->seq};
}

/* The note of a's latest connection, NULL when none or when a new
 * connection has since taken its port. */
static struct conn_note *note_of(struct gf_engine *e, const struct active *a)
{
    if (a->note == NO_NOTE || e->notes[a->note].gen != a->note_gen)
        return NULL;
    return &e->notes[a->note];
}

/* A connection that dropped requests answered n: no more streams than
 * the most such answers on one connection. Curl takes the new limit in
 * pump() (curl_multi_setopt refuses to run inside its callbacks). */
static void learn_streams(struct gf_engine *e, unsigned n)
{
    if (n <= e->streams_learned)
        return;
    e->streams_learned = n;
    if ((long)n < e->streams_default)
        e->streams_due = 1;
}

/* Every request sent on n has ended or gone again (or n's port has a new
 * connection, so n's are over): what n answered is all it would. */
static void settle(struct gf_engine *e, const struct conn_note *n)
{
    if (n->dropped_at != UINT_MAX && n->answered > n->dropped_at)
        learn_streams(e, n->answered);
}

/* a's latest request has ended (dropped: curl gave it up or sends it
 * again). */
static void note_ended(struct gf_engine *e, const struct active *a, int answered, int dropped)
{
    struct conn_note *n = note_of(e, a);
    if (!n)
        return;
    if (answered)
        n->answered++;
    if (dropped && a->answered_at_send < n->dropped_at)
        n->dropped_at = a->answered_at_send;
    /* Sent on a connection idle for a while, and dropped with no answer
     * after it: the server closes connections idle that long. Not from a
     * connection idle only briefly: a server restarting under it says
     * nothing of its idle timeout, and would have every start open a new
     * connection. */
    if (dropped && a->idle_at_send >= IDLE_CLOSE_MIN_MS && n->answered == a->answered_at_send &&
        a->idle_at_send < e->idle_closed_ms)
        e->idle_closed_ms = a->idle_at_send;
    if (n->pending > 0 && --n->pending == 0) {
        n->idle_since = uv_now(e->loop);
        settle(e, n);
    }
}

/* a's request went out on the connection of local port, a new one when
 * fresh. */
static void note_sent(struct gf_engine *e, struct active *a, int port, int fresh)
{
    a->note = NO_NOTE;
    size_t i = e->nnotes;
    while (i > 0 && e->notes[i - 1].port != (unsigned)port)
        i--;
    if (i == 0) {
        if (e->nnotes == e->notes_cap) {
            size_t cap = e->notes_cap ? 2 * e->notes_cap : 16;
            struct conn_note *n = gf_realloc(e->notes, cap * sizeof *n);
            if (!n)
                return; /* nothing learned of it: curl's defaults stand */
            e->notes = n;
            e->notes_cap = cap;
        }
        e->notes[e->nnotes++] = (struct conn_note){.port = (unsigned)port, .gen = UINT_MAX};
        i = e->nnotes;
        fresh = 1;
    }
    struct conn_note *n = &e->notes[i - 1];
    if (fresh) {
        if (n->gen != UINT_MAX && n->pending > 0)
            settle(e, n);
        *n = (struct conn_note){.port = n->port, .gen = n->gen + 1, .dropped_at = UINT_MAX};
    }
    a->idle_at_send = 0;
    if (!fresh && n->pending == 0 && n->idle_since > 0)
        a->idle_at_send = uv_now(e->loop) - n->idle_since;
    n->pending++;
    a->note = i - 1;
    a->note_gen = n->gen;
    a->answered_at_send = n->answered;
}

/* How a transfer ended, for what the engine learns of its connection. */
enum transfer_end {
    END_ANSWERED,   /* curl finished it with an answer */
    END_UNANSWERED, /* it failed or was cancelled, maybe at the server */
    /* Its request never got to the server whole: curl gave up sending it
     * again after its connections kept dropping it, or could not send it. */
    END_DROPPED,
};

/* The watchdog runs while transfers do: it also keeps the loop alive if
 * curl stops asking for sockets and timers for a transfer it lost.
 * Returns the requests sent for easy. */
static unsigned forget(struct gf_engine *e, CURL *easy, enum transfer_end how)
{
    unsigned requests = 0;
    for (size_t i = 0; i < e->nactive; i++) {
        struct active *a = e->active[i];
        if (a->easy == easy) {
            requests = a->requests;
            tally_connections(e, a);
            if (a->pa.phase != GF_PACER_NONE)
                e->nconnecting--;
            if (a->pa.phase == GF_PACER_FRESH)
                e->nfresh--;
            if (a->queued)
                e->nqueued--;
            if (a->sent) {
                note_ended(e, a, how == END_ANSWERED, how == END_DROPPED);
                e->ended_at = uv_now(e->loop);
                e->nsent--;
                /* Not in flight at the server: after 6 drops, curl's
                 * spans of them overlapped twice as much as the server's. */
                if (how != END_DROPPED)
                    keep_span(e, a);
            }
            /* Order matters for the queue: shift, do not swap. */
            memmove(&e->active[i], &e->active[i + 1], (e->nactive - i - 1) * sizeof *e->active);
            e->nactive--;
            gf_free(a);
            break;
        }
    }
    if (e->nactive == 0)
        uv_timer_stop(&e->watchdog);
    return requests;
}

/* Looks for stalled attempts no later than loop time at. */
static void sweep_by(struct gf_engine *e, uint64_t at)
{
    if (at < e->sweep_at)
        e->sweep_at = at;
}

/* CURLOPT_SOCKOPTFUNCTION: curl made a socket for a's connection. */
static int on_sockopt(void *clientp, curl_socket_t fd, curlsocktype purpose)
{
    struct active *a = clientp;
    a->ran = 1;
    if (purpose == CURLSOCKTYPE_IPCXN) {
        a->fd = fd;
        gf_pacer_socket(&a->pa, uv_now(a->engine->loop));
        sweep_by(a->engine, gf_pacer_stall_at(&a->engine->pacer, &a->pa));
        a->nsocks++;
    }
    return CURL_SOCKOPT_OK;
}

/* The local port of socket fd, or -1. */
static int local_port_of(curl_socket_t fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) != 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static void on_settings_due(uv_timer_t *t);

/* The first new connection is ready and its first request about to go
 * out. The server sends its SETTINGS as soon as its side of the handshake
 * is done, so they are in one round trip from now; the TLS handshake took
 * one (TLS 1.3) or two, and a plain TCP connect one. A quarter more for
 * the jitter. A server that answers within a round trip ends the hold
 * sooner, and one whose SETTINGS come later only costs the connections
 * the hold was to spare. */
static void hold_until_settings(struct gf_engine *e, CURL *easy)
{
    curl_off_t connect_us = 0, tls_us = 0;
    curl_easy_getinfo(easy, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_easy_getinfo(easy, CURLINFO_APPCONNECT_TIME_T, &tls_us);
    curl_off_t rtt_us = tls_us > connect_us ? tls_us - connect_us : connect_us;
    uint64_t ms = (uint64_t)(rtt_us > 0 ? rtt_us : 0) * 5 / 4 / 1000 + HOLD_SLACK_MS;
    uv_timer_start(&e->settings, on_settings_due, ms < HOLD_MAX_MS ? ms : HOLD_MAX_MS, 0);
}

/* CURLOPT_PREREQFUNCTION: a connection (new or reused) is ready and the
 * request is about to go out. */
static int on_prereq(void *clientp, char *ip, char *local_ip, int port, int local_port)
{
    struct active *a = clientp;
    (void)ip;
    (void)local_ip;
    (void)port;
    struct gf_engine *e = a->engine;
    e->one_until_connected = 0;
    if (a->pa.phase == GF_PACER_CONNECTING) {
        long fresh = 0;
        curl_easy_getinfo(a->easy, CURLINFO_NUM_CONNECTS, &fresh);
        if (fresh > 0) {
            if (e->hold > 0 && !uv_is_active((uv_handle_t *)&e->settings))
                hold_until_settings(e, a->easy);
            /* Until the server shows it took it. */
            gf_pacer_fresh(&a->pa, uv_now(e->loop));
            sweep_by(e, gf_pacer_stall_at(&e->pacer, &a->pa));
            e->nfresh++;
            /* Of several attempts, the last one made need not be the one
             * that won. */
            if (a->nsocks > 1 && a->fd != CURL_SOCKET_BAD && local_port_of(a->fd) != local_port)
                a->fd = CURL_SOCKET_BAD;
        } else {
            a->pa.phase = GF_PACER_NONE;
            e->nconnecting--;
        }
    }
    call_first(e);
    long conns = 0, redirects = 0;
    curl_easy_getinfo(a->easy, CURLINFO_NUM_CONNECTS, &conns);
    curl_easy_getinfo(a->easy, CURLINFO_REDIRECT_COUNT, &redirects);
    /* A redirect's next hop: the one before was answered. Otherwise curl
     * sends it again, dropped. */
    if (a->requests > 0) {
        int hop = redirects != a->redirects;
        note_ended(e, a, hop, !hop);
    }
    a->redirects = redirects;
    note_sent(e, a, local_port, conns > a->prereq_conns);
    a->prereq_conns = conns;
    e->requests++;
    a->requests++;
    a->sent_seq = ++e->seq;
    a->ran = 1;
    tally_connections(e, a);
    /* Once per transfer: a redirect calls this again for the next hop. */
    if (!a->sent) {
        a->sent = 1;
        e->sent_at = uv_now(e->loop);
        if (++e->nsent > e->peak_sent)
            e->peak_sent = e->nsent;
    }
    return CURL_PREREQFUNC_OK;
}

static void fail_transfer(struct gf_engine *e, CURL *easy, CURLcode code);
static void fail_all(struct gf_engine *e, CURLMcode rc);

static void on_pace(uv_timer_t *t);

/* TCP_INFO of fd, as the pacer wants it (known = 0 when the kernel
 * cannot tell). */
static void tcp_info_of(curl_socket_t fd, struct gf_pacer_tcp *out)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    out->known =
        fd != CURL_SOCKET_BAD && getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) == 0 &&
        len >= offsetof(struct tcp_info, tcpi_total_retrans) + sizeof ti.tcpi_total_retrans;
    if (out->known) {
        out->state = ti.tcpi_state;
        out->unacked = ti.tcpi_unacked;
        out->total_retrans = ti.tcpi_total_retrans;
        out->rtt_us = ti.tcpi_rtt;
    }
}

/* 1 when the server has shown that it took a's new connection; 0 while
 * that is not known. The kernel is asked only when the pacer wants it. */
static int taken(struct gf_engine *e, struct active *a, uint64_t now)
{
    curl_off_t t = 0;
    int answered =
        (curl_easy_getinfo(a->easy, CURLINFO_STARTTRANSFER_TIME_T, &t) == CURLE_OK && t > 0) ||
        (curl_easy_getinfo(a->easy, CURLINFO_APPCONNECT_TIME_T, &t) == CURLE_OK && t > 0);
    struct gf_pacer_tcp tcp = {0};
    long sent = 0;
    if (!answered && gf_pacer_taken_wants_tcp(&a->pa, now)) {
        tcp_info_of(a->fd, &tcp);
        if (tcp.known)
            curl_easy_getinfo(a->easy, CURLINFO_REQUEST_SIZE, &sent);
    }
    return gf_pacer_taken(&e->pacer, &a->pa, now, answered, &tcp, sent);
}

/* Attempts of one transfer the pacer may give up on. A server whose
 * accept queue stays full (its program stopped accepting) drops every SYN:
 * without a bound each transfer would try again every few milliseconds
 * for good, and never reach its timeout, which starts again with each
 * attempt. After these its attempt waits for the kernel's SYN
 * retransmissions and the connect timeout. */
#define ABANDONS_MAX 8

/* Abandons the attempts the server never took (pacer.h) and queues them
 * again, first in line, for a new attempt once a slot is free; notes when
 * the next one is due. */
static void find_stalled(struct gf_engine *e, uint64_t now)
{
    if (now < e->sweep_at)
        return;
    e->sweep_at = UINT64_MAX;
    if (!gf_pacer_stall_begin(&e->pacer))
        return;
    for (size_t i = 0; i < e->nactive; i++) {
        struct active *a = e->active[i];
        if (a->fd == CURL_SOCKET_BAD || a->abandons >= ABANDONS_MAX)
            continue;
        uint64_t at = gf_pacer_stall_at(&e->pacer, &a->pa);
        if (at > now) {
            sweep_by(e, at);
            continue;
        }
        struct gf_pacer_tcp tcp;
        int fresh = a->pa.phase == GF_PACER_FRESH;
        tcp_info_of(a->fd, &tcp);
        if (gf_pacer_stall_verdict(&e->pacer, &a->pa, &tcp) != GF_PACER_ABANDON) {
            /* Still due (not yet acknowledged): again in a while. */
            if (gf_pacer_stall_at(&e->pacer, &a->pa) <= now)
                sweep_by(e, now + gf_pacer_stall_recheck_ms(&e->pacer));
            continue;
        }
        tally_connections(e, a);
        a->ran = 0;
        a->conns = 0;
        curl_multi_remove_handle(e->multi, a->easy);
        if (fresh)
            e->nfresh--;
        e->nconnecting--;
        if (a->sent) {
            a->sent = 0;
            e->nsent--;
        }
        /* Its request is over for its connection; curl counts its
         * redirects from 0 when it gets it again. */
        note_ended(e, a, 0, 0);
        a->note = NO_NOTE;
        a->redirects = 0;
        a->fd = CURL_SOCKET_BAD;
        a->nsocks = 0;
        a->queued = 1;
        a->abandons++;
        e->nqueued++;
    }
    gf_pacer_stall_end(&e->pacer);
}

/* Counts the new connections that have shown they were taken and moves
 * the window; while transfers wait for a slot, checks again soon (the
 * acknowledgement of a request takes a round trip, and tells nothing to
 * the loop). */
static void settle_fresh(struct gf_engine *e)
{
    uint64_t now = uv_now(e->loop), youngest = UINT64_MAX;
    for (size_t i = 0; i < e->nactive && e->nfresh > 0; i++) {
        struct active *a = e->active[i];
        if (a->pa.phase != GF_PACER_FRESH)
            continue;
        if (!taken(e, a, now)) {
            if (now - a->pa.fresh_at < youngest)
                youngest = now - a->pa.fresh_at;
            continue;
        }
        e->nconnecting--;
        e->nfresh--;
        curl_off_t connect = 0;
        curl_easy_getinfo(a->easy, CURLINFO_CONNECT_TIME_T, &connect);
        if (gf_pacer_count_taken(&e->pacer, &a->pa, connect)) {
            struct gf_pacer_tcp tcp;
            tcp_info_of(a->fd, &tcp);
            int first = e->pacer.slowest_rtt_us == 0;
            gf_pacer_round_trip(&e->pacer, &tcp, connect);
            /* The attempts under way can be judged from now on. */
            if (first)
                sweep_by(e, now);
        }
    }
    find_stalled(e, now);
    uint64_t wait = gf_pacer_next_check(&e->pacer, youngest, e->nqueued, e->nfresh, e->nconnecting);
    if (e->sweep_at != UINT64_MAX) {
        uint64_t due = e->sweep_at > now ? e->sweep_at - now : 1;
        if (wait == 0 || due < wait)
            wait = due;
    }
    if (wait > 0)
        uv_timer_start(&e->pace, on_pace, wait, 0);
    else
        uv_timer_stop(&e->pace);
}

/* How many transfers may be connecting at once. */
static unsigned attempt_slots(const struct gf_engine *e)
{
    return e->one_until_connected ? 1 : e->pacer.window;
}

/* A server that closed a connection idle for T ms closes the next one
 * idle that long too, and a request sent then crosses its close and is
 * dropped: at --rate 0.97 against a 1 s idle timeout, every other one.
 * Once every connection has been idle for most of T (no request in
 * flight), a transfer curl gets opens a new one instead: each of those
 * handed over together after such a spell (curl 7.88 does not apply it
 * to a redirect's next hop). */
static int fresh_due(const struct gf_engine *e)
{
    uint64_t now = uv_now(e->loop);
    return e->idle_closed_ms != UINT64_MAX && e->nsent == 0 && e->ended_at > 0 &&
           now - e->ended_at >= e->idle_closed_ms / 4 * 3;
}

/* Set on every transfer handed to curl once T is known, since a pooled
 * handle may have had it. It cannot fail for a valid handle. */
static void set_fresh(struct gf_engine *e, CURL *easy)
{
    if (e->idle_closed_ms != UINT64_MAX)
        curl_easy_setopt(easy, CURLOPT_FRESH_CONNECT, (long)fresh_due(e));
}

/* Hands queued transfers to curl while connection attempt slots are
 * free. */
static void hand_queued(struct gf_engine *e)
{
    for (size_t i = 0; i < e->nactive && e->nqueued > 0 && e->nconnecting < attempt_slots(e); i++) {
        struct active *a = e->active[i];
        if (!a->queued)
            continue;
        a->queued = 0;
        e->nqueued--;
        gf_pacer_connecting(&a->pa);
        a->deadline = uv_now(e->loop) + a->timeout_ms + WATCHDOG_GRACE_MS;
        a->handed_ns = uv_hrtime();
        e->nconnecting++;
        set_fresh(e, a->easy);
        CURLMcode rc = curl_multi_add_handle(e->multi, a->easy);
        if (rc != CURLM_OK) {
            /* Reported like any failed transfer, so done still runs. */
            fail_transfer(e, a->easy,
                          rc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_FAILED_INIT);
            i = (size_t)-1; /* the array moved: start over */
            continue;
        }
        e->unrun++;
    }
}

/* A transfer ended: the holds on the others end too. */
static void end_hold(struct gf_engine *e)
{
    e->hold = 0;
    e->one_until_connected = 0;
    uv_timer_stop(&e->settings);
}

/* How a transfer curl finished with result ended. */
static enum transfer_end end_of(CURL *easy, CURLcode result)
{
    long header_bytes = 0, conns = 0;
    switch (result) {
    case CURLE_OK:
        return END_ANSWERED;
    case CURLE_SEND_ERROR:
        /* "Connection died, tried 5 times before giving up", or a request
         * that could not be sent. */
        return END_DROPPED;
    case CURLE_HTTP2:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
        /* Nothing of an answer on a reused connection: the server had
         * closed it under the request (curl sends such a request again
         * itself, unless its HTTP/2 session failed). */
        curl_easy_getinfo(easy, CURLINFO_HEADER_SIZE, &header_bytes);
        curl_easy_getinfo(easy, CURLINFO_NUM_CONNECTS, &conns);
        return header_bytes == 0 && conns == 0 ? END_DROPPED : END_UNANSWERED;
    default:
        return END_UNANSWERED;
    }
}

/* Hands every finished transfer to the owner. Called after each
 * curl_multi_socket_action, as curl_multi_info_read(3) asks. */
static void take_finished(struct gf_engine *e)
{
    CURLMsg *msg;
    int left;
    while (!e->closing && (msg = curl_multi_info_read(e->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;
        end_hold(e); /* pump() offers the room this makes */
        unsigned requests = forget(e, easy, end_of(easy, result));
        curl_multi_remove_handle(e->multi, easy);
        e->done(easy, result, requests, e->arg);
    }
}

/* At most this many passes of pump() in one callback; any transfers still
 * due then run from curl's own timer, in the next loop iteration. */
#define PUMP_PASSES_MAX 4096

/* Moves the window, hands queued transfers to curl and lets the owner
 * start more, then runs curl on the transfers just handed over: a transfer
 * that finds a connection ready (a multiplexed or idle one) sends its
 * request and gives its slot back at once, so one callback starts all
 * that may start instead of a window's worth per loop iteration. Never
 * from inside a curl callback. */
static void pump(struct gf_engine *e)
{
    if (e->pumping) {
        e->repump = 1;
        return;
    }
    e->pumping = 1;
    for (unsigned pass = 0; pass < PUMP_PASSES_MAX && !e->closing; pass++) {
        e->repump = 0;
        if (e->streams_due) {
            e->streams_due = 0;
            curl_multi_setopt(e->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, (long)e->streams_learned);
        }
        settle_fresh(e);
        hand_queued(e);
        if (e->room && !e->closing && gf_engine_has_room(e))
            e->room(e->arg);
        if (e->closing || e->unrun == 0) {
            if (e->repump)
                continue;
            break;
        }
        e->unrun = 0;
        int running;
        CURLMcode rc = curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        call_first(e);
        take_finished(e);
        if (rc != CURLM_OK && !e->closing)
            fail_all(e, rc);
    }
    e->pumping = 0;
}

/* Ends a transfer curl will not finish, as if curl had reported it. */
static void fail_transfer(struct gf_engine *e, CURL *easy, CURLcode code)
{
    end_hold(e);
    unsigned requests = forget(e, easy, END_UNANSWERED);
    curl_multi_remove_handle(e->multi, easy);
    e->done(easy, code, requests, e->arg);
}

/* A multi call failed (out of memory, a callback refused): curl's state
 * for the transfers it was driving cannot be trusted, so all of them end
 * with an error instead of waiting forever. */
static void fail_all(struct gf_engine *e, CURLMcode rc)
{
    CURLcode code = rc == CURLM_OUT_OF_MEMORY ? CURLE_OUT_OF_MEMORY : CURLE_ABORTED_BY_CALLBACK;
    while (e->nactive > 0)
        fail_transfer(e, e->active[e->nactive - 1]->easy, code);
}

/* What follows every curl_multi_socket_action of the loop's callbacks. */
static void drain_finished(struct gf_engine *e)
{
    call_first(e);
    take_finished(e);
    pump(e);
}

static void on_poll(uv_poll_t *handle, int status, int events)
{
    struct sock_ctx *ctx = handle->data;
    struct gf_engine *e = ctx->engine;
    int flags = 0;
    int running;
    if (status < 0) {
        /* libuv reports POLLERR as an error and stops the poll. Telling
         * curl CURL_CSELECT_ERR would only yield "select/poll returned
         * error"; letting it read and write finds the real cause
         * (ECONNRESET, say). */
        flags = CURL_CSELECT_IN | CURL_CSELECT_OUT;
    } else {
        if (events & UV_READABLE)
            flags |= CURL_CSELECT_IN;
        if (events & UV_WRITABLE)
            flags |= CURL_CSELECT_OUT;
    }
    e->unrun = 0; /* curl runs every due timer after the socket's events */
    CURLMcode rc = curl_multi_socket_action(e->multi, ctx->fd, flags, &running);
    /* ctx stays valid until its close callback; re-arm a poll libuv
     * stopped if curl still wants this socket watched. */
    if (status < 0 && !uv_is_closing((uv_handle_t *)&ctx->poll) &&
        !uv_is_active((uv_handle_t *)&ctx->poll))
        uv_poll_start(&ctx->poll, ctx->events, on_poll);
    drain_finished(e);
    if (rc != CURLM_OK)
        fail_all(e, rc);
}

static void on_timer(uv_timer_t *timer)
{
    struct gf_engine *e = timer->data;
    int running;
    e->unrun = 0;
    CURLMcode rc = curl_multi_socket_action(e->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    drain_finished(e);
    if (rc != CURLM_OK)
        fail_all(e, rc);
}

static void on_pace(uv_timer_t *t)
{
    pump(t->data);
}

static void on_settings_due(uv_timer_t *t)
{
    struct gf_engine *e = t->data;
    end_hold(e);
    pump(e);
}

static void on_watchdog(uv_timer_t *timer)
{
    struct gf_engine *e = timer->data;
    uint64_t now = uv_now(e->loop);
    for (size_t i = 0; i < e->nactive;) {
        if (!e->active[i]->queued && e->active[i]->deadline < now)
            fail_transfer(e, e->active[i]->easy, CURLE_OPERATION_TIMEDOUT);
        else
            i++;
    }
    pump(e);
}

static void on_poll_closed(uv_handle_t *handle)
{
    gf_free(handle->data);
}

/* The engine is freed once all of its timers have closed. */
static void on_engine_handle_closed(uv_handle_t *handle)
{
    struct gf_engine *e = handle->data;
    if (--e->pending_closes == 0) {
        for (size_t i = 0; i < e->nactive; i++)
            gf_free(e->active[i]);
        gf_free(e->active);
        gf_free(e->spans);
        gf_free(e->notes);
        gf_free(e->socks);
        gf_free(e);
    }
}

/* The poll of descriptor fd, made on first use; NULL when out of memory
 * or when libuv refuses the descriptor. */
static struct sock_ctx *sock_get(struct gf_engine *e, curl_socket_t fd)
{
    size_t i = (size_t)fd;
    if (i < e->nsocks && e->socks[i])
        return e->socks[i];
    if (i >= e->nsocks) {
        size_t n = e->nsocks ? e->nsocks : 64;
        while (n <= i)
            n *= 2;
        struct sock_ctx **grown = gf_realloc(e->socks, n * sizeof *grown);
        if (!grown)
            return NULL;
        memset(grown + e->nsocks, 0, (n - e->nsocks) * sizeof *grown);
        e->socks = grown;
        e->nsocks = n;
    }
    struct sock_ctx *ctx = gf_malloc(sizeof(*ctx));
    if (!ctx)
        return NULL;
    *ctx = (struct sock_ctx){.fd = fd, .engine = e};
    if (uv_poll_init_socket(e->loop, &ctx->poll, fd) != 0) {
        gf_free(ctx);
        return NULL;
    }
    ctx->poll.data = ctx;
    e->socks[i] = ctx;
    return ctx;
}

/* CURLMOPT_SOCKETFUNCTION: curl calls CURL_POLL_REMOVE before it closes a
 * socket, so stopping the poll here never races a reused descriptor; a
 * new socket on the same descriptor takes the stopped poll over. */
static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct gf_engine *e = userp;
    (void)easy;
    (void)socketp;

    if (fd < 0)
        return -1;
    if (what == CURL_POLL_REMOVE) {
        if ((size_t)fd < e->nsocks && e->socks[fd]) {
            uv_poll_stop(&e->socks[fd]->poll);
            e->socks[fd]->events = 0;
        }
        return 0;
    }
    struct sock_ctx *ctx = sock_get(e, fd);
    if (!ctx)
        return -1;
    int events = 0;
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    /* curl repeats itself (an HTTP/2 connection asks for reading at every
     * stream); restarting an active poll costs two epoll calls. */
    if (events == ctx->events && uv_is_active((uv_handle_t *)&ctx->poll))
        return 0;
    ctx->events = events;
    return uv_poll_start(&ctx->poll, events, on_poll) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: -1 deletes the timer; 0 means "as soon as
 * possible", which a zero libuv timer gives without calling curl back
 * from inside its own callback. */
static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct gf_engine *e = userp;
    (void)multi;
    if (e->closing)
        return 0;
    if (timeout_ms < 0)
        return uv_timer_stop(&e->timer) == 0 ? 0 : -1;
    return uv_timer_start(&e->timer, on_timer, (uint64_t)timeout_ms, 0) == 0 ? 0 : -1;
}

int gf_engine_new(struct gf_engine **out, uv_loop_t *loop, long max_connects,
                  gf_engine_done_cb done, void *arg)
{
    struct gf_engine *e = gf_calloc(1, sizeof(*e));
    if (!e)
        return GF_ENOMEM;
    e->loop = loop;
    e->done = done;
    e->arg = arg;
    e->multi = curl_multi_init();
    if (!e->multi) {
        gf_free(e);
        return GF_ECURL;
    }
    e->max_connects = max_connects;
    uv_timer_t *timers[ENGINE_TIMERS];
    engine_timers(e, timers);
    for (int i = 0; i < ENGINE_TIMERS; i++) {
        int err = uv_timer_init(loop, timers[i]);
        if (err) {
            curl_multi_cleanup(e->multi);
            if (i == 0) {
                gf_free(e);
                return err;
            }
            /* Initialised timers must be closed, not freed. */
            e->multi = NULL;
            e->pending_closes = i;
            for (int j = 0; j < i; j++)
                uv_close((uv_handle_t *)timers[j], on_engine_handle_closed);
            return err;
        }
        timers[i]->data = e;
    }
    gf_pacer_init(&e->pacer);
    e->sweep_at = UINT64_MAX;
    e->idle_closed_ms = UINT64_MAX;
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(e->multi, CURLMOPT_SOCKETDATA, e);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(e->multi, CURLMOPT_TIMERDATA, e);
    /* Room for twice the transfers in flight: a base that redirects
     * (http to https, another host) keeps the connections of both ends. */
    curl_multi_setopt(e->multi, CURLMOPT_MAXCONNECTS, 2 * max_connects);
    /* libcurl puts at most 100 streams on one HTTP/2 connection unless
     * told more; the server's own limit still applies. */
    e->streams_default = GF_ENGINE_STREAMS_BEFORE_SETTINGS;
    if (max_connects > GF_ENGINE_STREAMS_BEFORE_SETTINGS) {
        curl_multi_setopt(e->multi, CURLMOPT_MAX_CONCURRENT_STREAMS, max_connects);
        e->streams_default = max_connects;
    }
    *out = e;
    return 0;
}

int gf_engine_start(struct gf_engine *e, CURL *easy, uint64_t timeout_ms)
{
    if (e->nactive == e->cap) {
        size_t cap = e->cap ? e->cap * 2 : 64;
        struct active **grown = gf_realloc(e->active, cap * sizeof *grown);
        if (!grown)
            return GF_ENOMEM;
        e->active = grown;
        e->cap = cap;
    }
    struct active *a = gf_malloc(sizeof *a);
    if (!a)
        return GF_ENOMEM;
    *a = (struct active){.easy = easy,
                         .timeout_ms = timeout_ms,
                         .deadline = uv_now(e->loop) + timeout_ms + WATCHDOG_GRACE_MS,
                         .fd = CURL_SOCKET_BAD,
                         .note = NO_NOTE,
                         .engine = e};
    CURLcode src = curl_easy_setopt(easy, CURLOPT_PREREQFUNCTION, on_prereq);
    if (src == CURLE_OK)
        src = curl_easy_setopt(easy, CURLOPT_PREREQDATA, a);
    if (src == CURLE_OK)
        src = curl_easy_setopt(easy, CURLOPT_SOCKOPTFUNCTION, on_sockopt);
    if (src == CURLE_OK)
        src = curl_easy_setopt(easy, CURLOPT_SOCKOPTDATA, a);
    if (src != CURLE_OK) {
        gf_free(a);
        e->add_error = CURLM_INTERNAL_ERROR;
        return src == CURLE_OUT_OF_MEMORY ? GF_ENOMEM : GF_ECURL;
    }
    if (e->nconnecting >= attempt_slots(e)) {
        /* Its timeout starts when curl gets it. */
        a->queued = 1;
        e->nqueued++;
    } else {
        set_fresh(e, easy);
        CURLMcode rc = curl_multi_add_handle(e->multi, easy);
        if (rc != CURLM_OK) {
            gf_free(a);
            e->add_error = rc;
            return rc == CURLM_OUT_OF_MEMORY ? GF_ENOMEM : GF_ECURL;
        }
        gf_pacer_connecting(&a->pa);
        a->handed_ns = uv_hrtime();
        e->nconnecting++;
        e->unrun++;
    }
    e->active[e->nactive++] = a;
    if (!uv_is_active((uv_handle_t *)&e->watchdog))
        uv_timer_start(&e->watchdog, on_watchdog, WATCHDOG_INTERVAL_MS, WATCHDOG_INTERVAL_MS);
    return 0;
}

int gf_engine_has_room(const struct gf_engine *e)
{
    return e && !e->closing && e->nqueued == 0 && (e->hold == 0 || e->nactive < e->hold);
}

void gf_engine_one_until_connected(struct gf_engine *e)
{
    e->one_until_connected = 1;
}

void gf_engine_hold_streams(struct gf_engine *e, unsigned n)
{
    e->hold = e->max_connects > (long)n ? n : 0;
}

void gf_engine_on_room(struct gf_engine *e, gf_engine_room_cb room)
{
    e->room = room;
}

void gf_engine_on_first(struct gf_engine *e, gf_engine_room_cb first)
{
    e->first = first;
}

static int cmp_u64(const void *x, const void *y)
{
    uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
    return (a > b) - (a < b);
}

unsigned gf_engine_peak_sent(const struct gf_engine *e)
{
    if (!e)
        return 0;
    size_t n = e->nspans + e->nactive;
    if (e->spans_lost || n == 0)
        return e->peak_sent;
    /* Starts sorted; ends are in order already (each was numbered as it
     * came), and those still in flight end after all. */
    uint64_t *from = gf_malloc(n * sizeof *from);
    if (!from)
        return e->peak_sent;
    size_t nfrom = 0;
    for (size_t i = 0; i < e->nspans; i++)
        from[nfrom++] = e->spans[i].from;
    for (size_t i = 0; i < e->nactive; i++)
        if (e->active[i]->sent)
            from[nfrom++] = e->active[i]->sent_seq;
    qsort(from, nfrom, sizeof *from, cmp_u64);
    unsigned cur = 0, peak = 0;
    size_t j = 0;
    for (size_t i = 0; i < nfrom; i++) {
        while (j < e->nspans && e->spans[j].to < from[i]) {
            cur--;
            j++;
        }
        if (++cur > peak)
            peak = cur;
    }
    gf_free(from);
    return peak;
}

unsigned gf_engine_sent(const struct gf_engine *e)
{
    return e ? e->nsent : 0;
}

uint64_t gf_engine_handed_ns(const struct gf_engine *e, CURL *easy)
{
    for (size_t i = 0; e && i < e->nactive; i++)
        if (e->active[i]->easy == easy)
            return e->active[i]->queued ? 0 : e->active[i]->handed_ns;
    return 0;
}

uint64_t gf_engine_sent_at(const struct gf_engine *e)
{
    return e ? e->sent_at : 0;
}

size_t gf_engine_active(const struct gf_engine *e)
{
    return e ? e->nactive : 0;
}

uint64_t gf_engine_requests(const struct gf_engine *e)
{
    return e ? e->requests : 0;
}

uint64_t gf_engine_connections(const struct gf_engine *e)
{
    return e ? e->opened : 0;
}

const char *gf_engine_strerror(const struct gf_engine *e)
{
    return curl_multi_strerror(e->add_error);
}

unsigned gf_engine_cancel(struct gf_engine *e, CURL *easy)
{
    unsigned requests = forget(e, easy, END_UNANSWERED);
    curl_multi_remove_handle(e->multi, easy);
    return requests;
}

void gf_engine_close(struct gf_engine *e)
{
    if (!e)
        return;
    /* Cached connections are closed here, which stops their polls
     * through on_curl_socket; timer updates are no longer wanted. */
    e->closing = 1;
    curl_multi_cleanup(e->multi);
    e->multi = NULL;
    for (size_t i = 0; i < e->nsocks; i++)
        if (e->socks[i])
            uv_close((uv_handle_t *)&e->socks[i]->poll, on_poll_closed);
    uv_timer_t *timers[ENGINE_TIMERS];
    engine_timers(e, timers);
    e->pending_closes = ENGINE_TIMERS;
    for (int i = 0; i < ENGINE_TIMERS; i++)
        uv_close((uv_handle_t *)timers[i], on_engine_handle_closed);
}
