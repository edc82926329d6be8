/* --rate N: a token bucket that holds at most one token, refilled at N
 * tokens per second. Pure logic: the caller passes the time (seconds on a
 * monotonic clock, e.g. uv_now(loop) / 1000.0) and owns the timer.
 *
 * Each request start takes the token. A start may happen when the token is
 * there; after a start the next token comes 1/N seconds later. Because the
 * bucket never holds more than one token, starts are always at least 1/N
 * seconds apart: a window of one second never holds more than N + 1 starts
 * (at most ceil(N)), and after an idle spell only one request starts at
 * once. Waking late only lowers the rate, never raises it, so the loop
 * should wake at now + delay, not later.
 *
 * Use on the loop, one gate for all requests: when a request is ready to
 * start, call gf_ratelimit_delay(); 0 means start it now (the token is
 * taken); d > 0 means keep it queued and arm one uv_timer for d seconds
 * (round up to whole milliseconds), then ask again for the head of the
 * queue. */
#ifndef GF_RATELIMIT_H
#define GF_RATELIMIT_H

/* Slowest rate accepted: one request a day. It keeps every delay finite and
 * small enough for a uv_timer. */
#define GF_RATELIMIT_MIN_RATE (1.0 / 86400.0)

struct gf_ratelimit {
    double interval_s; /* 1 / rate, or 0 when unlimited */
    double next_s;     /* when the token is there again */
};

/* Sets up rl for rate_per_s starts per second (fractions allowed). 0 means
 * unlimited: gf_ratelimit_delay() then always returns 0. Returns 0, or
 * UV_EINVAL (and rl is unlimited) when rate_per_s is negative, not finite,
 * or positive but below GF_RATELIMIT_MIN_RATE. The first start is
 * allowed at once. */
int gf_ratelimit_init(struct gf_ratelimit *rl, double rate_per_s);

/* Asks to start one request at now_s. Returns 0 when it may start now, and
 * then takes the token; otherwise returns how many seconds to wait (> 0)
 * and takes nothing, so asking again early is harmless. now_s must not go
 * backwards between calls. */
double gf_ratelimit_delay(struct gf_ratelimit *rl, double now_s);

/* What gf_ratelimit_delay() would answer at now_s, taking nothing: for a
 * caller that starts a request only when several gates agree (then it
 * calls gf_ratelimit_delay(), which returns 0 and takes the token). */
double gf_ratelimit_peek(const struct gf_ratelimit *rl, double now_s);

/* Changes the spacing to interval_s seconds (0: unlimited) without losing
 * the last start: the next token comes interval_s after it. For -m auto,
 * which paces starts when even one request in flight is too many. A
 * negative or non-finite interval counts as 0. */
void gf_ratelimit_set_interval(struct gf_ratelimit *rl, double interval_s);

#endif
