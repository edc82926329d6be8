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
 * - At a limit of 1 an overload means that even one request in flight is
 *   too many (a server that allows N requests a second, whatever the round
 *   trip): the controller then paces starts, as --rate does. The first
 *   pace is the streak's (below) or else GF_ADAPTIVE_BACKOFF times the
 *   rate of successes since the last decrease (twice the round trip when
 *   there were none), and every
 *   GF_ADAPTIVE_PACE_WINDOW successes speed it up by
 *   GF_ADAPTIVE_PACE_FAST_GROWTH until the first refusal of a pace. From
 *   then on a refused pace is slowed by GF_ADAPTIVE_BACKOFF (halved when
 *   nothing succeeded since the last refusal), at most to one start every
 *   GF_ADAPTIVE_MAX_INTERVAL_S, and held there until the probe hold
 *   (above; at least ten intervals, doubling with every refused pace up
 *   to GF_ADAPTIVE_PROBE_HOLD_MAX_S) has passed; then it grows by
 *   GF_ADAPTIVE_PACE_GROWTH per window. Once the interval is no longer
 *   than a request's latency, pacing ends and the limit grows from 1.
 * - A streak of refusals begins with the first counted refusal and lasts
 *   until pacing ends, a probe of a ceiling holds, or shedding (below)
 *   ends. A token bucket is empty at the streak's first refusal (but for
 *   part of a token) and lets through no more than its rate from then
 *   on, so all but one of the answers to requests sent since the streak
 *   began came at no more than that rate: once there are
 *   GF_ADAPTIVE_PACE_MIN_OK of them, their rate over the streak, pauses
 *   included, is a pace the bucket takes (the streak's pace). The first
 *   pace is the streak's pace when it is known; before that (a pause let
 *   only one or two answers through), a refusal at a limit of 1 is left
 *   to the host's pause. A refused pace faster than the streak's is
 *   slowed no further than to it. A pace refused within a tenth of
 *   a long pause (GF_ADAPTIVE_LONG_PAUSE_S or more) after that pause
 *   ended used up in no time what the host let build up while it waited:
 *   it is far too fast, and as each refusal costs such a pause, it is
 *   slowed to the geometric mean of itself and the streak's pace (half
 *   the way there, in ratio) when that is slower than one step of
 *   GF_ADAPTIVE_BACKOFF. At a limit above 1, a streak whose answers came at
 *   less than half the rate one request in flight makes (by the quickest
 *   answer seen) says the host's limit is a rate: pacing starts at once,
 *   as each step of the limit down to 1 would cost a pause of its own.
 * - Refusals that come whatever the load (an edge that sheds a share of
 *   requests at random) must not slow the run without end. A refusal at
 *   the streak's pace or slower, after at least GF_ADAPTIVE_SHED_MIN_OK
 *   answers at the pace in force, is one no token bucket makes: the
 *   refusals are shed, not caused by the load. The controller goes back
 *   to the limit and pace where the streak began, drops its ceiling and
 *   probe holds, and lets refusals pass while their count among the
 *   latest answers (about GF_ADAPTIVE_SHED_WINDOW) stays within three
 *   standard deviations (binomial) of their share during the streak. A
 *   clear rise ends shedding: that refusal counts, and the rules above
 *   apply again.
 * - Pauses (Retry-After, backoff) are the host's, not the controller's:
 *   see gf/hostgate.h. A Retry-After given here only sets the probe hold.
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
#define GF_ADAPTIVE_PROBE_HOLD_MAX_S 600.0
/* Cap on a Retry-After when it sets the probe hold (the host's pauses
 * are capped alike). */
#define GF_ADAPTIVE_MAX_PAUSE_S 30.0
/* Pacing below one request in flight. */
#define GF_ADAPTIVE_PACE_WINDOW 4
#define GF_ADAPTIVE_PACE_GROWTH 1.1
#define GF_ADAPTIVE_PACE_FAST_GROWTH 1.25
#define GF_ADAPTIVE_MAX_INTERVAL_S 10.0
/* First pace when nothing succeeded since the last decrease and no
 * latency is known: one start every this many seconds. */
#define GF_ADAPTIVE_FIRST_INTERVAL_S 0.1
/* Answers since the refusals began before their rate sets the first
 * pace. */
#define GF_ADAPTIVE_PACE_MIN_OK 3
/* A refused pace is far too fast when the refusal came within this share
 * of a pause of at least GF_ADAPTIVE_LONG_PAUSE_S after that pause ended. */
#define GF_ADAPTIVE_LONG_PAUSE_S 5.0
#define GF_ADAPTIVE_FAR_SHARE 0.1

/* Shedding (see above). */
#define GF_ADAPTIVE_SHED_MIN_OK 2
#define GF_ADAPTIVE_SHED_WINDOW 64

/* All fields are read-only for the caller except max_pause_s. */
struct gf_adaptive {
    unsigned limit;     /* requests allowed in flight now, 1..max */
    unsigned max;       /* the caller's upper bound */
    int slow_start;     /* 1 until the first overload or latency hold */
    unsigned window_ok; /* successes counted in the current window */
    double lat_s[GF_ADAPTIVE_SAMPLES];
    double baseline_s;          /* lowest window median seen, < 0 before one */
    double last_decrease_s;     /* when the limit was last lowered */
    double max_pause_s;         /* cap on a Retry-After, GF_ADAPTIVE_MAX_PAUSE_S */
    unsigned ok_since_decrease; /* successes since the last decrease */
    double counting_since_s;    /* since when: the last decrease, or the first start */
    double interval_s;          /* pacing: seconds between starts, 0 when off */
    double pace_ceiling_s;      /* the interval last refused, 0 when none */
    unsigned paced_ok;          /* successes in the current pacing window */
    int pace_slow_start;        /* 1 until the pace is first refused */
    unsigned paces;             /* times pacing began */
    unsigned decreases;         /* overloads that lowered the limit */
    unsigned ceiling;           /* limit of the last counted overload, 0 when none */
    unsigned probe_windows;     /* clean windows below the ceiling before a probe */
    unsigned below_ceiling;     /* clean windows spent just below it so far */
    double probe_hold_s;        /* time to wait after a refusal before a probe */
    double next_probe_s;        /* no probe of the ceiling before this time */
    unsigned holds;             /* windows that ended without growth */
    /* Streaks and shedding (see above). */
    unsigned cut_limit; /* the point the last decrease set */
    double cut_interval_s;
    unsigned streak;       /* counted refusals in the streak, 0: none */
    unsigned streak_limit; /* the point where it began */
    double streak_interval_s;
    double streak_started_s;      /* when it began */
    unsigned streak_ok;           /* answers to requests sent since then */
    double streak_pace_s;         /* the pace its answers' rate set, 0: none */
    double min_lat_s;             /* the quickest answer, 0 before one */
    double shed_ok, shed_refused; /* the share expected while shedding;
                                   * shed_ok is 0 when not shedding */
    double seg_ok, seg_refused;   /* the latest answers and refusals */
    unsigned sheds;               /* times shedding was found */
    double pause_s;               /* the pause the last counted refusal asked for, capped */
    double resumed_s;             /* when that pause ended */
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
 * or <= 0 (or NaN) when there was none. May lower the limit, or start or
 * slow the pacing. The caller re-queues the request (the host's pause is
 * gf_hostgate's); this call does not count retries. */
void gf_adaptive_on_overload(struct gf_adaptive *a, double started_s, double now_s,
                             double retry_after_s);

/* The limit in force: pass it to gf_sem_set_limit() after each event. At
 * the end of a run it is the concurrency the run settled on. */
unsigned gf_adaptive_limit(const struct gf_adaptive *a);

/* Seconds between request starts while pacing (then the limit is 1), 0
 * when not pacing: pass it to gf_ratelimit_set_interval() after each
 * event. */
double gf_adaptive_interval(const struct gf_adaptive *a);

#endif
