/* -m auto: the controller that picks the number of concurrent requests.
 * Pure logic, no I/O and no clock of its own: the caller passes times in
 * seconds on a monotonic clock (e.g. uv_now(loop) / 1000.0).
 *
 * The algorithm (AIMD, as TCP congestion control does for a window):
 * - Successes are counted in windows of `limit` completions. A window that
 *   ends with its median latency within GF_ADAPTIVE_LATENCY_FACTOR times the
 *   best median seen (plus GF_ADAPTIVE_LATENCY_SLACK_S, for clock
 *   granularity) raises the limit: it doubles during the slow start, and
 *   grows by one afterwards. A window whose median is above that holds the
 *   limit where it is and ends the slow start: the server is queueing.
 * - Only successes that completed while the limit was in use (in_flight at
 *   least the limit) count, so a limit that nothing tested (a short queue,
 *   --rate holding requests back) is never raised.
 * - An overload (HTTP 429, 503, a timeout) multiplies the limit by
 *   GF_ADAPTIVE_BACKOFF (never below 1) and ends the slow start. Overloads
 *   of requests that started before the last decrease are part of the
 *   probe already answered and do not lower it again, so a burst of
 *   refusals costs one step, not a collapse to 1.
 * - The limit an overload happened at becomes a ceiling: growth stops one
 *   below it, and the ceiling itself is tried again only after
 *   probe_windows clean windows there, a number that doubles (up to
 *   GF_ADAPTIVE_PROBE_MAX) each time the probe is refused, and no sooner
 *   than GF_ADAPTIVE_PROBE_HOLD times the pause the last refusal asked
 *   for (doubling likewise), so pauses cost at most about a tenth of the
 *   run. A probe that survives a whole window lifts the ceiling.
 * - During the slow start an overload halves the limit: doubling
 *   overshoots by at most that much. Each refusal may carry a
 *   host-wide pause, so a controller that kept testing the same ceiling
 *   would spend the run waiting.
 * - A Retry-After pauses every new request to the host until then (capped
 *   at max_pause_s), whether or not the limit was lowered.
 * Against a server that refuses above C concurrent requests the limit
 * settles between about GF_ADAPTIVE_BACKOFF * (C + 1) and C + 1. */
#ifndef GF_ADAPTIVE_H
#define GF_ADAPTIVE_H

/* A suggested first limit: low enough for a small server. */
#define GF_ADAPTIVE_START 2
/* Latencies kept per window for its median (the most recent ones). */
#define GF_ADAPTIVE_SAMPLES 64
#define GF_ADAPTIVE_BACKOFF 0.7
#define GF_ADAPTIVE_LATENCY_FACTOR 2.0
#define GF_ADAPTIVE_LATENCY_SLACK_S 0.010
/* Clean windows below a ceiling before it is tried again, at first and at
 * most. */
#define GF_ADAPTIVE_PROBE_MIN 4
#define GF_ADAPTIVE_PROBE_MAX 256
#define GF_ADAPTIVE_PROBE_HOLD 10.0
/* Default cap on one Retry-After pause. */
#define GF_ADAPTIVE_MAX_PAUSE_S 300.0

/* All fields are read-only for the caller except max_pause_s. */
struct gf_adaptive {
    unsigned limit;     /* requests allowed in flight now, 1..max */
    unsigned max;       /* the caller's upper bound */
    int slow_start;     /* 1 until the first overload or latency hold */
    unsigned window_ok; /* successes counted in the current window */
    double lat_s[GF_ADAPTIVE_SAMPLES];
    double baseline_s;      /* lowest window median seen, < 0 before one */
    double last_decrease_s; /* when the limit was last lowered */
    double pause_until_s;   /* 0, or the end of a Retry-After pause */
    double max_pause_s;     /* cap on one pause, GF_ADAPTIVE_MAX_PAUSE_S */
    unsigned decreases;     /* overloads that lowered the limit */
    unsigned ceiling;       /* limit of the last counted overload, 0 when none */
    unsigned probe_windows; /* clean windows below the ceiling before a probe */
    unsigned below_ceiling; /* clean windows spent just below it so far */
    double probe_hold_s;    /* time to wait after a refusal before a probe */
    double next_probe_s;    /* no probe of the ceiling before this time */
    unsigned holds;         /* windows that ended without growth */
};

/* Starts a controller at limit start (0 means GF_ADAPTIVE_START), never
 * above max (e.g. the number of requests to make or a hard cap; 0 counts
 * as 1). start is clamped to 1..max. */
void gf_adaptive_init(struct gf_adaptive *a, unsigned start, unsigned max);

/* A request that started at started_s completed at now_s with a response
 * that is not an overload (any 2xx, 304, 404, other 4xx). in_flight is the
 * number of requests in flight just before it completed, this one
 * included. May raise the limit. */
void gf_adaptive_on_success(struct gf_adaptive *a, double started_s, double now_s,
                            unsigned in_flight);

/* A request that started at started_s ended at now_s in an overload: 429,
 * 503 or a timeout. retry_after_s is the server's Retry-After in seconds,
 * or <= 0 (or NaN) when there was none. May lower the limit, and sets the
 * pause. The caller re-queues the request; this call does not count
 * retries. */
void gf_adaptive_on_overload(struct gf_adaptive *a, double started_s, double now_s,
                             double retry_after_s);

/* The limit in force: pass it to gf_sem_set_limit() after each event. At
 * the end of a run it is the concurrency the run settled on. */
unsigned gf_adaptive_limit(const struct gf_adaptive *a);

/* The time before which no new request should start (0 when no Retry-After
 * was ever given; a time already past means no pause). */
double gf_adaptive_pause_until(const struct gf_adaptive *a);

/* Seconds from now_s until the pause ends, 0 when there is none. */
double gf_adaptive_pause_left(const struct gf_adaptive *a, double now_s);

#endif
