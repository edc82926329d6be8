#include "gf/alloc.h"
#include "gf/run.h"

#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "adaptive.h"
#include "gf/engine.h"
#include "gf/error.h"
#include "gf/fetch.h"
#include "gf/procsetup.h"
#include "hostgate.h"
#include "gf/ratelimit.h"
#include "gf/saver.h"
#include "gf/sem.h"
#include "gf/state.h"
#include "transfer.h"

#define PROGRESS_INTERVAL_MS 100

struct run {
    const struct gf_run_config *cfg;
    struct gf_run_result *res;
    uv_loop_t loop;
    struct gf_engine *engine;
    struct gf_sem sem;
    struct gf_saver saver;
    CURLSH *share;
    struct gf_tls *tls;   /* borrowed from the config */
    unsigned peak_sent;   /* most requests sent and not yet answered at once */
    struct gf_curl *curl; /* the transfer layer */
    struct gf_fetch_env env;
    struct gf_fetch **fetches;
    size_t remaining; /* fetches started and not yet reported done */
    size_t lat_cap;
    uv_signal_t sigint, sigterm, sighup;
    uv_timer_t progress;
    int progress_on;
    unsigned width;
    uint64_t t0;
    uint64_t rng;
    int begun; /* cfg->on_start has run */
    int shut;
    /* The start gate: the host's pauses, --rate, and the pace of -m auto.
     * FIFO of fetches holding a permit and waiting to start; one timer for
     * the head. Every request goes to the one host of the base URL (or
     * its redirect), so one host gate serves the run. */
    struct gf_hostgate host;
    char host_label[128]; /* "host:port", for -v lines */
    struct gf_ratelimit rate;
    struct gf_ratelimit pace; /* -m auto below one request in flight */
    int adaptive_on;
    unsigned long answered; /* answered normally so far (on_success) */
    unsigned paces_told;    /* pacing starts already announced */
    unsigned sheds_told;    /* shedding found and announced */
    struct gf_adaptive adaptive;
    struct gf_fetch **gate_q;
    size_t gate_head, gate_len;
    uv_timer_t gate_timer;
    int gate_holding;      /* gate_timer runs for paced_hold_s(), not a delay */
    double granted_s;      /* loop time of the latest start the gates let through */
    int unsent_failed;     /* a request ended before it went out: no holds */
    uv_timer_t stop_timer; /* stops a run on_start refused, outside curl's callbacks */
};

static double loop_s(const struct run *r)
{
    return (double)uv_now(&((struct run *)r)->loop) / 1000.0;
}

/* A paced start (--rate, the pace of -m auto) also comes an interval
 * after the latest request went out: one held for a connection went out
 * late, and the next start must not arrive with it. (Coming sooner, as
 * far as N+1 starts in a second allow, made --rate 10 over HTTP/1.1
 * through 150 ms 5% slower: the early start found every connection busy
 * and held the next ones for a new one's handshakes.) */
static double since_sent_delay(const struct run *r, double now)
{
    double interval =
        r->rate.interval_s > r->pace.interval_s ? r->rate.interval_s : r->pace.interval_s;
    uint64_t sent_at = gf_engine_sent_at(r->engine);
    if (interval == 0 || sent_at == 0)
        return 0;
    double due = (double)sent_at / 1000.0 + interval;
    return due > now ? due - now : 0;
}

/* Seconds until the next start may happen; 0 means it starts now, and
 * every gate has counted it. */
static double gate_delay(struct run *r)
{
    double now = loop_s(r);
    double d = gf_hostgate_delay(&r->host, now);
    double d1 = since_sent_delay(r, now);
    if (d1 > d)
        d = d1;
    double d2 = gf_ratelimit_peek(&r->rate, now);
    double d3 = gf_ratelimit_peek(&r->pace, now);
    if (d2 > d)
        d = d2;
    if (d3 > d)
        d = d3;
    if (d > 0)
        return d;
    gf_ratelimit_delay(&r->rate, now);
    gf_ratelimit_delay(&r->pace, now);
    gf_hostgate_started(&r->host, now);
    r->granted_s = now;
    return 0;
}

/* A paced start waits this long at most for an unsent one. */
#define PACED_HOLD_MAX_S 1.0

/* --rate and the pace of -m auto count a start when it is let through,
 * but the server counts it when its request arrives. One that waits for a
 * connection (the first one's ALPN, a new HTTP/1.1 connection's
 * handshakes) would go out together with the starts let through while it
 * waited: three at once over HTTP/2 through 150 ms, where --rate promises
 * N+1 in any second. So while a request is unsent, the next paced start
 * waits, and then comes an interval after it went out (since_sent_delay).
 * Not for long, nor once a request ended without going out: a host that
 * drops every SYN would have each start wait out the one before.
 * Returns the seconds it still waits, 0 when it need not. */
static double paced_hold_s(const struct run *r, double now)
{
    if ((r->rate.interval_s == 0 && r->pace.interval_s == 0) || r->unsent_failed ||
        gf_engine_active(r->engine) <= gf_engine_sent(r->engine))
        return 0;
    double left = r->granted_s + PACED_HOLD_MAX_S - now;
    return left > 0 ? left : 0;
}

static void gate_arm(struct run *r, double delay_s);

/* The gate timer then runs for the hold, which a request going out ends
 * sooner (on_engine_room). */
static void gate_arm_hold(struct run *r, double hold_s)
{
    gate_arm(r, hold_s);
    r->gate_holding = 1;
}

/* After a pause, with a fixed -m: the host's bound on requests in flight
 * (hostgate.h) is reached, and a start waits for one to end. -m auto
 * bounds them itself. */
static int window_full(const struct run *r)
{
    unsigned w = r->adaptive_on ? 0 : gf_hostgate_window(&r->host);
    return w > 0 && gf_engine_active(r->engine) >= w;
}

static void on_gate_timer(uv_timer_t *t);

static void gate_arm(struct run *r, double delay_s)
{
    r->gate_holding = 0;
    /* Rounded up, and at least 1 ms: the loop's clock stands still within
     * a callback, so a 0 ms timer re-armed from its own callback would run
     * again at once, forever, on a remaining delay of a rounding error. */
    uint64_t ms = (uint64_t)ceil(delay_s * 1000.0);
    uv_timer_start(&r->gate_timer, on_gate_timer, ms > 0 ? ms : 1, 0);
}

/* 1 when a start may happen now, and every gate has counted it;
 * otherwise 0, with the gate timer armed for the hold or the delay. */
static int gate_pass(struct run *r)
{
    double hold = paced_hold_s(r, loop_s(r));
    if (hold > 0) {
        gate_arm_hold(r, hold);
        return 0;
    }
    double delay = gate_delay(r);
    if (delay > 0) {
        gate_arm(r, delay);
        return 0;
    }
    return 1;
}

/* Starts the queued fetches the gates let through, in order, while the
 * engine can hand them to curl at once. A fetch waits here, not in the
 * engine, for a connection attempt slot: it takes an easy handle only
 * when it starts (-e -m 1000 would hold 676 of them, and their buffers). */
static void gate_drain(struct run *r)
{
    /* A request that ends makes room: the engine calls back then. */
    while (r->gate_len > 0 && gf_engine_has_room(r->engine) && !window_full(r)) {
        if (!gate_pass(r))
            return;
        struct gf_fetch *f = r->gate_q[r->gate_head];
        r->gate_head = (r->gate_head + 1) % r->res->nitems;
        r->gate_len--;
        gf_fetch_begin(f);
    }
}

static int gate_try(void *arg, struct gf_fetch *f, int again)
{
    struct run *r = arg;
    /* A request the server never took goes at once, unless the host is
     * paused: waiting for a --rate slot would bring it back at the same
     * point of the server's cycle (an idle connection closed just as the
     * next start comes) every time. */
    int room = gf_engine_has_room(r->engine) && !window_full(r);
    if (again && room && gf_hostgate_delay(&r->host, loop_s(r)) <= 0)
        return 1;
    /* The engine first: gate_delay() counts a start it lets through. */
    if (r->gate_len == 0 && room && gate_pass(r))
        return 1;
    /* Room for every code: a fetch is in the queue at most once. */
    r->gate_q[(r->gate_head + r->gate_len++) % r->res->nitems] = f;
    return 0;
}

static void on_gate_timer(uv_timer_t *t)
{
    gate_drain(t->data);
}

/* The engine can take transfers again; a pause being waited out keeps
 * its timer. */
static void on_engine_room(void *arg)
{
    struct run *r = arg;
    if (r->gate_len > 0 && (!uv_is_active((uv_handle_t *)&r->gate_timer) || r->gate_holding))
        gate_drain(r);
}

static void gate_cancel(void *arg, struct gf_fetch *f)
{
    struct run *r = arg;
    size_t n = r->res->nitems, kept = 0;
    for (size_t i = 0; i < r->gate_len; i++) {
        struct gf_fetch *g = r->gate_q[(r->gate_head + i) % n];
        if (g != f)
            r->gate_q[(r->gate_head + kept++) % n] = g;
    }
    r->gate_len = kept;
}

static double random01(void *arg);

static double run_elapsed(const struct run *r)
{
    return (double)(uv_hrtime() - r->t0) / 1e9;
}

/* -m auto: the semaphore and the pace follow the controller; with -v, one
 * line on stderr when it starts pacing, and one when it finds that the
 * host sheds requests whatever the pace. */
static void adaptive_apply(struct run *r)
{
    gf_sem_set_limit(&r->sem, gf_adaptive_limit(&r->adaptive));
    double interval = gf_hostgate_down(&r->host) ? 0 : gf_adaptive_interval(&r->adaptive);
    gf_ratelimit_set_interval(&r->pace, interval);
    if (r->cfg->verbose && interval > 0 && r->adaptive.paces > r->paces_told) {
        r->paces_told = r->adaptive.paces;
        fprintf(stderr,
                "getflags: %.1f s: one request in flight is too many for %s: -m auto starts "
                "at most %.2f requests per second\n",
                run_elapsed(r), r->host_label, 1.0 / interval);
    }
    const struct gf_adaptive *a = &r->adaptive;
    if (r->cfg->verbose && a->sheds > r->sheds_told) {
        r->sheds_told = a->sheds;
        fprintf(stderr,
                "getflags: %.1f s: %s refuses about %.0f%% of requests however slowly they "
                "come: -m auto stops slowing down for them (back to %u in flight)\n",
                run_elapsed(r), r->host_label,
                100.0 * a->shed_refused / (a->shed_ok + a->shed_refused), a->limit);
    }
}

static unsigned long answered(void *arg)
{
    return ((const struct run *)arg)->answered;
}

/* Every answer that is not a refusal: the host is answering. With -m auto
 * it also moves the limit, and the semaphore follows it. */
static void on_success(void *arg, double started_s)
{
    struct run *r = arg;
    double now = loop_s(r);
    r->answered++;
    gf_hostgate_answered(&r->host, started_s, now);
    if (!r->adaptive_on)
        return;
    /* What the server saw: permits held by requests still waiting for a
     * connection (the pacer opens them at its own pace) did not test the
     * limit. This answer's transfer has already left the engine. */
    gf_adaptive_on_success(&r->adaptive, started_s, now, gf_engine_sent(r->engine) + 1);
    adaptive_apply(r);
}

/* Retry-After values above this (about 31 years) are shown as such. */
#define RETRY_AFTER_SHOWN_MAX_S 1e9

/* -v: one line on stderr when a refusal pauses the host. */
static void tell_pause(struct run *r, long status, const struct gf_hostgate_event *ev)
{
    char asked[96];
    if (ev->asked_s > RETRY_AFTER_SHOWN_MAX_S)
        /* A number that long was read saturated: not what the server said. */
        snprintf(asked, sizeof asked, "Retry-After: over 10^9 s%s", ev->capped ? ", capped" : "");
    else if (ev->asked_s > 0)
        snprintf(asked, sizeof asked, "Retry-After: %.0f s%s", ev->asked_s,
                 ev->capped ? ", capped" : "");
    else
        snprintf(asked, sizeof asked, "no usable Retry-After, backing off");
    if (r->progress_on)
        gf_progress_clear(stderr, r->width);
    fprintf(stderr, "getflags: %.1f s: %s answered %ld (%s): no new request to it for %.1f s\n",
            run_elapsed(r), r->host_label, status, asked, ev->pause_s);
    fflush(stderr);
}

/* -v: one line on stderr when the host is found down. */
static void tell_down(struct run *r, long status)
{
    if (r->progress_on)
        gf_progress_clear(stderr, r->width);
    fprintf(stderr,
            "getflags: %.1f s: %s has answered nothing but refusals (the last: %ld) for %.0f s: "
            "no more pauses; each code now ends after its --retries\n",
            run_elapsed(r), r->host_label, status, r->host.give_up_s);
    fflush(stderr);
}

/* A 429 or 503 (status), or with -m auto a timeout (status 0). Returns 1
 * when the request is to be asked again without using up --retries. */
static int on_overload(void *arg, double started_s, long status, double retry_after_s)
{
    struct run *r = arg;
    double now = loop_s(r);
    int free_again = 0;
    /* The pause the host asked for, or the backoff it got instead: the
     * controller waits ten times that before probing the limit again. */
    double hold_s = retry_after_s;
    if (status == 429 || status == 503) {
        struct gf_hostgate_event ev;
        unsigned spread = r->adaptive_on ? gf_adaptive_limit(&r->adaptive) : r->cfg->concurrency;
        free_again =
            gf_hostgate_refused(&r->host, started_s, now, retry_after_s, spread, random01(r), &ev);
        /* A 503 that names no time is an outage as much as a refusal:
         * with a fixed -m it uses up --retries (the host still backs off). */
        if (status == 503 && !(retry_after_s > 0) && !r->adaptive_on)
            free_again = 0;
        if (ev.new_pause && r->cfg->verbose)
            tell_pause(r, status, &ev);
        if (ev.went_down) {
            if (r->cfg->verbose)
                tell_down(r, status);
            /* The codes waiting out the pause that just ended go now. */
            gate_arm(r, 0);
        }
        if (!(hold_s > 0) && ev.new_pause)
            hold_s = ev.pause_s;
    }
    if (!r->adaptive_on)
        return free_again;
    /* A host that is down is not overloaded: slowing down for it would
     * only stretch the run (adaptive_apply() stops the pacing). */
    if (gf_hostgate_down(&r->host)) {
        adaptive_apply(r);
        return free_again;
    }
    /* A timeout is free only while the limit can still go down: a host
     * that never answers must not be asked forever. */
    if (status == 0)
        free_again = gf_adaptive_limit(&r->adaptive) > 1;
    gf_adaptive_on_overload(&r->adaptive, started_s, now, hold_s);
    adaptive_apply(r);
    return free_again;
}

/* "host:port" of the base URL, without any user name or password. */
static void set_host_label(struct run *r, const char *url)
{
    CURLU *u = curl_url();
    char *host = NULL, *port = NULL;
    snprintf(r->host_label, sizeof r->host_label, "the server");
    if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        if (curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK)
            port = NULL;
        snprintf(r->host_label, sizeof r->host_label, "%s%s%s", host, port ? ":" : "",
                 port ? port : "");
    }
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
}

/* File names are DIR's state: the run's and the earlier runs' claims. */
static int claim_name(void *arg, const char *cc, const char *name)
{
    struct run *r = arg;
    return gf_state_claim(r->cfg->state, cc, name);
}

static void on_request(void *arg, double latency_ms, uint64_t bytes)
{
    struct run *r = arg;
    struct gf_run_result *res = r->res;
    res->bytes += bytes;
    if (res->nlatencies < r->lat_cap)
        res->latencies_ms[res->nlatencies++] = latency_ms;
}

/* xorshift64*: jitter needs spread, not secrecy. */
static double random01(void *arg)
{
    struct run *r = arg;
    r->rng ^= r->rng >> 12;
    r->rng ^= r->rng << 25;
    r->rng ^= r->rng >> 27;
    return (double)((r->rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static void stop_fetches(struct run *r);

static void on_stop_due(uv_timer_t *t)
{
    stop_fetches(t->data);
}

/* cfg->on_start, once: when the engine has the first connection on its
 * way, or before anything is reported or the run ends, whichever is
 * first. */
static void run_begin(void *arg)
{
    struct run *r = arg;
    if (r->begun)
        return;
    r->begun = 1;
    if (!r->cfg->on_start)
        return;
    /* The progress bar may be drawn already; the header goes above it. */
    if (r->progress_on)
        gf_progress_clear(stderr, r->width);
    /* This may run inside a curl callback, where no transfer may be
     * removed: the stop comes at the loop's next turn, before any answer
     * to the one request that may go out now can be read. */
    if (r->cfg->on_start(r->cfg->arg) != 0 && !r->shut) {
        r->res->not_started = 1;
        uv_timer_start(&r->stop_timer, on_stop_due, 0, 0);
    }
}

static void on_closed_noop(uv_handle_t *h)
{
    (void)h;
}

/* Everything has ended: close every handle so uv_run returns. */
/* Closes the first n of the run's signal handles. */
static void close_signals(struct run *r, size_t n)
{
    uv_signal_t *h[] = {&r->sigint, &r->sigterm, &r->sighup};
    for (size_t i = 0; i < n; i++)
        uv_close((uv_handle_t *)h[i], on_closed_noop);
}

static void shutdown_run(struct run *r)
{
    if (r->shut)
        return;
    run_begin(r);
    r->shut = 1;
    r->res->elapsed_s = (double)(uv_hrtime() - r->t0) / 1e9;
    if (r->progress_on) {
        uv_timer_stop(&r->progress);
        gf_progress_clear(stderr, r->width);
    }
    uv_close((uv_handle_t *)&r->progress, on_closed_noop);
    uv_close((uv_handle_t *)&r->gate_timer, on_closed_noop);
    uv_close((uv_handle_t *)&r->stop_timer, on_closed_noop);
    close_signals(r, 3);
    for (size_t i = 0; i < r->res->nitems; i++)
        gf_fetch_close(r->fetches[i]);
    r->peak_sent = gf_engine_peak_sent(r->engine);
    r->res->requests = gf_engine_requests(r->engine);
    r->res->conn.opened = gf_engine_connections(r->engine);
    gf_engine_close(r->engine);
    r->engine = NULL;
    /* Every fetch has ended, so no save is pending. */
    gf_saver_close(&r->saver);
}

static void on_done(void *arg, struct gf_item *item)
{
    struct run *r = arg;
    struct gf_run_result *res = r->res;
    run_begin(r);
    switch (item->status) {
    case GF_OK:
        res->ok++;
        break;
    case GF_NOT_FOUND:
        res->not_found++;
        break;
    case GF_ERROR:
        res->error++;
        break;
    case GF_UNCHANGED:
        res->unchanged++;
        break;
    case GF_PENDING:
        res->pending++;
        break;
    }
    if (item->status != GF_PENDING) {
        FILE *out = r->cfg->verbose;
        if (!out && item->status == GF_ERROR)
            out = r->cfg->errors;
        if (out) {
            if (r->progress_on)
                gf_progress_clear(stderr, r->width);
            gf_report_item(out, item);
            fflush(out);
        }
    }
    gf_curl_codes_left(r->curl, --r->remaining);
    if (r->remaining == 0)
        shutdown_run(r);
}

static void on_transfer_done(CURL *easy, CURLcode result, unsigned requests, void *arg)
{
    struct run *r = arg;
    if (requests == 0 && result != CURLE_OK)
        r->unsent_failed = 1;
    gf_curl_done(easy, result, requests);
}

static unsigned terminal_width(void)
{
    struct winsize ws;
    if (ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0)
        return ws.ws_col;
    return 80;
}

static void on_progress(uv_timer_t *t)
{
    struct run *r = t->data;
    struct gf_run_result *res = r->res;
    size_t done = res->ok + res->not_found + res->error + res->unchanged;
    /* Read at every redraw: a bar wider than a narrowed window wraps, and
     * each redraw would leave another line behind. */
    r->width = terminal_width();
    gf_progress_draw(stderr, done, res->nitems, (double)(uv_hrtime() - r->t0) / 1e9, r->width);
}

/* Ends every fetch as unfinished. */
static void stop_fetches(struct run *r)
{
    /* No permit may be handed out while the fetches are being stopped. */
    gf_sem_set_limit(&r->sem, 0);
    for (size_t i = 0; i < r->res->nitems && !r->shut; i++)
        gf_fetch_cancel(r->fetches[i]);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct run *r = h->data;
    if (r->res->signal)
        return;
    r->res->signal = signum;
    stop_fetches(r);
}

/* Watches SIGINT, SIGTERM and SIGHUP (a closed terminal or session ends a
 * run as SIGTERM does: summary, manifest, and the status of the signal),
 * except one the process started with ignored (nohup).
 * Returns 0, or a UV_E* code (uv_signal_init needs a pipe, so EMFILE is
 * possible) with every handle it set up closed. */
static int watch_signals(struct run *r)
{
    uv_signal_t *h[] = {&r->sigint, &r->sigterm, &r->sighup};
    static const int signum[] = {SIGINT, SIGTERM, SIGHUP};
    for (size_t i = 0; i < 3; i++) {
        int err = uv_signal_init(&r->loop, h[i]);
        if (err) {
            close_signals(r, i);
            return err;
        }
        h[i]->data = r;
        /* Left unstarted, so that the signal stays ignored. */
        if (gf_signal_ignored(signum[i]))
            continue;
        err = uv_signal_start(h[i], on_signal, signum[i]);
        if (err) {
            close_signals(r, i + 1);
            return err;
        }
    }
    return 0;
}

static void free_run(struct run *r)
{
    for (size_t i = 0; r->fetches && i < r->res->nitems; i++)
        gf_fetch_free(r->fetches[i]);
    gf_free(r->fetches);
    gf_curl_free(r->curl);
    gf_free(r->gate_q);
    if (r->share)
        curl_share_cleanup(r->share);
}

int gf_run(const struct gf_run_config *cfg, struct gf_run_result *res, char *msg, size_t msgsz)
{
    const struct gf_options *o = cfg->opts;
    struct run r = {.cfg = cfg, .res = res};
    int err;

    memset(res, 0, sizeof *res);
    msg[0] = '\0';
    res->nitems = o->ncodes;
    res->items = gf_calloc(o->ncodes ? o->ncodes : 1, sizeof *res->items);
    r.fetches = gf_calloc(o->ncodes ? o->ncodes : 1, sizeof *r.fetches);
    /* Each code makes two requests plus its retries. */
    r.lat_cap = o->ncodes * 2 * ((size_t)o->retries + 1);
    res->latencies_ms = gf_malloc((r.lat_cap ? r.lat_cap : 1) * sizeof *res->latencies_ms);
    r.gate_q = gf_calloc(o->ncodes ? o->ncodes : 1, sizeof *r.gate_q);
    r.share = curl_share_init();
    if (!res->items || !r.fetches || !res->latencies_ms || !r.gate_q || !r.share) {
        snprintf(msg, msgsz, "getflags: out of memory\n");
        err = GF_ENOMEM;
        goto fail_alloc;
    }
    for (size_t i = 0; i < o->ncodes; i++) {
        memcpy(res->items[i].cc, o->codes[i], sizeof(gf_cc));
        r.fetches[i] = gf_fetch_new(&r.env, &res->items[i], cfg->prev ? cfg->prev[i] : NULL);
        if (!r.fetches[i]) {
            snprintf(msg, msgsz, "getflags: out of memory\n");
            err = GF_ENOMEM;
            goto fail_alloc;
        }
    }
    /* The command line refuses such rates; checked here too, as a run
     * without its limit would be a silent failure. */
    err = gf_ratelimit_init(&r.rate, o->rate);
    if (err) {
        snprintf(msg, msgsz, "getflags: --rate %g is not a rate the limiter supports: %s\n",
                 o->rate, uv_strerror(err));
        goto fail_alloc;
    }
    curl_share_setopt(r.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
    curl_share_setopt(r.share, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);

    r.tls = cfg->tls;
    r.tls->stats = &res->conn;
    err = uv_loop_init(&r.loop);
    if (err) {
        snprintf(msg, msgsz, "getflags: cannot start the event loop: %s\n", uv_strerror(err));
        goto fail_alloc;
    }
    err = watch_signals(&r);
    if (err) {
        snprintf(msg, msgsz, "getflags: cannot watch for signals: %s\n", uv_strerror(err));
        goto fail_loop;
    }
    gf_saver_init(&r.saver, &r.loop, gf_state_dirfd(cfg->state));
    err = gf_engine_new(&r.engine, &r.loop, (long)cfg->concurrency, on_transfer_done, &r);
    if (err) {
        snprintf(msg, msgsz, "getflags: cannot start libcurl: %s\n", gf_strerror(err));
        goto fail_saver;
    }
    gf_engine_on_room(r.engine, on_engine_room);
    gf_engine_on_first(r.engine, run_begin);
    r.curl = gf_curl_new(&(struct gf_curl_config){
        .engine = r.engine,
        .share = r.share,
        .base_url = o->base_url,
        .timeout_ms = o->timeout_ms,
        .http_version = o->http_version,
        .tls = r.tls,
        .pool_cap = cfg->concurrency,
    });
    if (!r.curl) {
        snprintf(msg, msgsz, "getflags: out of memory\n");
        err = GF_ENOMEM;
        gf_engine_close(r.engine); /* freed as the loop runs */
        r.engine = NULL;
        goto fail_saver;
    }
    gf_sem_init(&r.sem, cfg->concurrency);
    gf_ratelimit_init(&r.pace, 0);
    gf_hostgate_init(&r.host);
    set_host_label(&r, o->base_url);
    if (o->concurrency_auto) {
        r.adaptive_on = 1;
        gf_adaptive_init(&r.adaptive, GF_ADAPTIVE_START, cfg->concurrency);
        gf_sem_set_limit(&r.sem, gf_adaptive_limit(&r.adaptive));
    }
    uv_timer_init(&r.loop, &r.gate_timer);
    r.gate_timer.data = &r;
    uv_timer_init(&r.loop, &r.stop_timer);
    r.stop_timer.data = &r;
    uv_timer_init(&r.loop, &r.progress);
    r.progress.data = &r;

    r.env = (struct gf_fetch_env){
        .loop = &r.loop,
        .sem = &r.sem,
        .saver = &r.saver,
        .xfer = &gf_curl_transfer_ops,
        .xfer_ctx = r.curl,
        .base_url = o->base_url,
        .base_url_display = o->base_url_display,
        .retries = o->retries,
        .max_size = o->max_size,
        .verbose = cfg->verbose,
        .claim_name = claim_name,
        .on_request = on_request,
        .on_done = on_done,
        .random = random01,
        .gate = gate_try,
        .gate_cancel = gate_cancel,
        .on_success = on_success,
        .answered = answered,
        .on_overload = on_overload,
        .arg = &r,
    };
    r.rng = uv_hrtime() ^ ((uint64_t)getpid() << 32) ^ 0x9e3779b97f4a7c15ULL;
    /* cfg->on_start runs once the first connection is on its way (see
     * run_begin): its file writes overlap the connection's round trips. */
    r.t0 = uv_hrtime();
    if (cfg->progress && o->ncodes > 0) {
        r.width = terminal_width();
        r.progress_on = 1;
        uv_timer_start(&r.progress, on_progress, 0, PROGRESS_INTERVAL_MS);
    }

    r.remaining = o->ncodes;
    if (o->ncodes == 0)
        shutdown_run(&r);
    for (size_t i = 0; i < o->ncodes && !res->signal; i++)
        gf_fetch_start(r.fetches[i]);

    uv_run(&r.loop, UV_RUN_DEFAULT);
    for (size_t i = 0; i < res->nitems; i++)
        /* Begun: one waiting for DNS or a connection, with nothing sent,
         * was under way. */
        if (res->items[i].status == GF_PENDING && res->items[i].begun == 0)
            res->never_started++;
    res->peak_in_flight = r.peak_sent;
    res->concurrency = r.adaptive_on ? gf_adaptive_limit(&r.adaptive) : cfg->concurrency;
    err = uv_loop_close(&r.loop);
    if (err)
        fprintf(stderr, "getflags: internal error: a handle was left open (%s)\n",
                uv_strerror(err));
    free_run(&r);
    return 0;

fail_saver:
    gf_saver_close(&r.saver);
    close_signals(&r, 3);
fail_loop:
    /* The close callbacks of the signal handles and of a half-made engine. */
    uv_run(&r.loop, UV_RUN_DEFAULT);
    uv_loop_close(&r.loop);
fail_alloc:
    free_run(&r);
    gf_free(res->items);
    gf_free(res->latencies_ms);
    memset(res, 0, sizeof *res);
    return err;
}

void gf_run_result_free(struct gf_run_result *res)
{
    for (size_t i = 0; i < res->nitems; i++) {
        gf_free(res->items[i].file);
        gf_free(res->items[i].error);
        gf_free(res->items[i].url);
        gf_free(res->items[i].meta_etag);
        gf_free(res->items[i].meta_last_modified);
        gf_free(res->items[i].image_etag);
        gf_free(res->items[i].image_last_modified);
    }
    gf_free(res->items);
    gf_free(res->latencies_ms);
    memset(res, 0, sizeof *res);
}

struct gf_summary gf_run_summary(const struct gf_run_result *res, const struct gf_options *opts,
                                 unsigned concurrency)
{
    return (struct gf_summary){
        .server_label = opts->server_label,
        .base_url = opts->base_url_display,
        .concurrency = opts->concurrency_auto ? res->concurrency : concurrency,
        .adaptive = opts->concurrency_auto,
        .elapsed_s = res->elapsed_s,
        .ok = res->ok,
        .not_found = res->not_found,
        .error = res->error,
        .unchanged = res->unchanged,
        .pending = res->pending,
        .peak_in_flight = res->peak_in_flight,
        .conn = res->conn,
        .never_started = res->never_started,
        .requests = res->requests,
        .bytes = res->bytes,
        .items = res->items,
        .nitems = res->nitems,
        .latencies_ms = res->latencies_ms,
        .nlatencies = res->nlatencies,
    };
}
