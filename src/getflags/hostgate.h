/* The pause of a host that pushes back (HTTP 429 or 503), whatever -m is.
 * Pure logic, no I/O and no clock of its own: the caller passes times in
 * seconds on a monotonic clock (e.g. uv_now(loop) / 1000.0) and a random
 * number in [0, 1) where jitter is drawn.
 *
 * The rules:
 * - A refusal with a Retry-After of R seconds pauses every new request to
 *   the host for R plus up to GF_HOSTGATE_JITTER of R more (never less than
 *   the server asked for), but never longer than max_pause_s (30 s): a
 *   Retry-After of a day costs 30 s, not a day.
 * - A refusal without Retry-After (or with 0, a date in the past, or one
 *   that cannot be read) backs off: 0.5 s, doubling with every further
 *   backoff until an answer that is not a refusal, up to max_pause_s, each
 *   drawn in [half, all] of that step, and none past the give-up horizon
 *   below (a Retry-After is obeyed past it).
 * - Refusals of requests that started before the current pause was decided
 *   are the same burst: they never start a new pause nor double the
 *   backoff; a longer Retry-After among them only extends the pause.
 * - When a pause ends the waiting requests do not all start in the same
 *   instant: the starts are spread over GF_HOSTGATE_RAMP of the pause, one
 *   every (that time / spread) seconds. With the jitter of the pause
 *   itself, refused requests do not come back to the server in
 *   synchronised waves (as when each had its own fixed retry timer).
 * - After a pause the host gets requests back as a TCP sender gets its
 *   window back after a loss: at most one in flight at first, one more
 *   for every answer that is not a refusal to a request started after the
 *   pause, so the bound doubles every round trip, until it reaches the
 *   spread of the refusal that paused it (the concurrency), when it goes.
 *   The caller keeps it (gf_hostgate_window()). The pause has refilled
 *   only part of a rate limit's allowance: without the bound all of -m
 *   would go out at once, and over a long round trip every start past the
 *   allowance would be refused before the first refusal came back.
 * - A refused request is asked again without using up --retries, unless
 *   the host has answered nothing but refusals for give_up_s (60 s). The
 *   host is then down: the pause in force ends, refusals start no new one
 *   and count as retries, so each code ends after its --retries at its own
 *   backoff, and a server that refuses forever costs about a minute, not
 *   one request per 30 s pause. An answer that is not a refusal ends it. */
#ifndef GF_HOSTGATE_H
#define GF_HOSTGATE_H

/* The longest pause, as for the longest retry wait. */
#define GF_HOSTGATE_MAX_PAUSE_S 30.0
/* Share of a pause added as jitter. */
#define GF_HOSTGATE_JITTER 0.2
/* Share of a pause over which the waiting starts resume. */
#define GF_HOSTGATE_RAMP 0.05
#define GF_HOSTGATE_BACKOFF_BASE_S 0.5
/* Refusals and nothing else for this long: refusals count as retries. */
#define GF_HOSTGATE_GIVE_UP_S 60.0

struct gf_hostgate {
    double max_pause_s;      /* GF_HOSTGATE_MAX_PAUSE_S unless changed */
    double give_up_s;        /* GF_HOSTGATE_GIVE_UP_S unless changed */
    double pause_until_s;    /* no start before this */
    double decided_s;        /* when the current pause was decided */
    double ramp_until_s;     /* starts are spaced until then */
    double ramp_step_s;      /* the spacing */
    double next_start_s;     /* earliest next start during the ramp */
    double refusing_since_s; /* first refusal of the current streak, < 0 when none */
    unsigned backoff_steps;  /* backoff pauses since the last answer */
    unsigned pauses;         /* pauses decided */
    unsigned refusals;       /* refusals seen */
    int down;                /* the streak has lasted give_up_s */
    unsigned window;         /* requests in flight allowed now, 0: no bound */
    unsigned window_end;     /* the bound goes when it reaches this */
};

/* What one refusal did, for the caller's -v line. */
struct gf_hostgate_event {
    int new_pause;  /* 1 when this refusal started a pause (0: part of a burst) */
    double pause_s; /* the pause from now, when new_pause */
    double asked_s; /* the Retry-After given, <= 0 when none */
    int capped;     /* the Retry-After was longer than max_pause_s */
    int counted;    /* 1 when the refusal must use up a retry */
    int went_down;  /* 1 when this refusal found the host down (once a streak) */
};

void gf_hostgate_init(struct gf_hostgate *g);

/* A request that started at started_s was refused (429 or 503) at now_s,
 * with retry_after_s (<= 0 or NaN when absent). spread is the number of
 * requests that may be waiting to start (the concurrency); u01 is a random
 * number in [0, 1). Fills *ev (may be NULL). Returns 1 when the request
 * may be asked again without using up --retries, 0 when it must count. */
int gf_hostgate_refused(struct gf_hostgate *g, double started_s, double now_s, double retry_after_s,
                        unsigned spread, double u01, struct gf_hostgate_event *ev);

/* 1 when the host has answered nothing but refusals for give_up_s: no
 * pause is in force, and -m auto should not slow down for its refusals. */
int gf_hostgate_down(const struct gf_hostgate *g);

/* A request that started at started_s was answered at now_s with
 * something other than a refusal: the streak of refusals ends, and the
 * backoff starts again from its first step if the request started after
 * the last pause was decided. */
void gf_hostgate_answered(struct gf_hostgate *g, double started_s, double now_s);

/* The most requests that may be in flight to the host now (started and
 * not ended), 0 when there is no bound. A start it would exceed waits for
 * a request to end; gf_hostgate_delay() does not count it. */
unsigned gf_hostgate_window(const struct gf_hostgate *g);

/* Seconds from now_s until a request may start, 0 when it may start now.
 * Takes nothing: call gf_hostgate_started() when it does start. */
double gf_hostgate_delay(const struct gf_hostgate *g, double now_s);

/* A request started at now_s (after gf_hostgate_delay() said 0). */
void gf_hostgate_started(struct gf_hostgate *g, double now_s);

#endif
