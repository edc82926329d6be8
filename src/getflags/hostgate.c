#include "hostgate.h"

#include <float.h>

void gf_hostgate_init(struct gf_hostgate *g)
{
    *g = (struct gf_hostgate){
        .max_pause_s = GF_HOSTGATE_MAX_PAUSE_S,
        .give_up_s = GF_HOSTGATE_GIVE_UP_S,
        /* No pause decided yet: the first refusal starts one. */
        .decided_s = -DBL_MAX,
        .refusing_since_s = -1,
    };
}

int gf_hostgate_refused(struct gf_hostgate *g, double started_s, double now_s, double retry_after_s,
                        unsigned spread, double u01, struct gf_hostgate_event *ev)
{
    struct gf_hostgate_event e = {0};
    g->refusals++;
    if (g->refusing_since_s < 0)
        g->refusing_since_s = now_s;
    e.counted = now_s - g->refusing_since_s >= g->give_up_s;
    /* !(x > 0) is also true for NaN. */
    e.asked_s = retry_after_s > 0 ? retry_after_s : 0;
    if (e.counted) {
        /* Down: waiting longer would only stretch the run; the codes'
         * own retries, each counted, end it. */
        e.went_down = !g->down;
        g->down = 1;
        g->pause_until_s = g->ramp_until_s = g->next_start_s = now_s;
        g->window = 0;
        if (ev)
            *ev = e;
        return 0;
    }
    e.capped = e.asked_s > g->max_pause_s;
    double base = e.capped ? g->max_pause_s : e.asked_s;

    if (started_s <= g->decided_s) {
        /* Sent before the pause was decided: the same burst. Obey a longer
         * Retry-After, but draw nothing and announce nothing. */
        if (base > 0 && now_s + base > g->pause_until_s) {
            double ramp = g->ramp_until_s - g->pause_until_s;
            g->pause_until_s = now_s + base;
            g->ramp_until_s = g->pause_until_s + ramp;
            g->next_start_s = g->pause_until_s;
        }
        if (ev)
            *ev = e;
        return !e.counted;
    }

    double pause;
    if (base > 0) {
        pause = base * (1 + GF_HOSTGATE_JITTER * u01);
        if (pause > g->max_pause_s)
            pause = g->max_pause_s;
    } else {
        double step = GF_HOSTGATE_BACKOFF_BASE_S;
        for (unsigned i = 0; i < g->backoff_steps && step < g->max_pause_s; i++)
            step *= 2;
        if (step > g->max_pause_s)
            step = g->max_pause_s;
        pause = step * (0.5 + 0.5 * u01);
        g->backoff_steps++;
        /* A backoff of its own choosing ends by the give-up horizon: the
         * start it then lets out is refused (the host is down) or
         * answered, either way without waiting up to 30 s more. A
         * Retry-After the server gave is obeyed in full. */
        double horizon = g->refusing_since_s + g->give_up_s;
        if (now_s + pause > horizon)
            pause = horizon > now_s ? horizon - now_s : 0;
    }
    /* A longer pause already in force stays. */
    if (now_s + pause > g->pause_until_s)
        g->pause_until_s = now_s + pause;
    double ramp = GF_HOSTGATE_RAMP * (g->pause_until_s - now_s);
    g->ramp_until_s = g->pause_until_s + ramp;
    g->ramp_step_s = ramp / (spread > 0 ? spread : 1);
    g->next_start_s = g->pause_until_s;
    g->decided_s = now_s;
    g->window = spread > 1 ? 1 : 0;
    g->window_end = spread;
    g->pauses++;
    e.new_pause = 1;
    e.pause_s = g->pause_until_s - now_s;
    if (ev)
        *ev = e;
    return !e.counted;
}

void gf_hostgate_answered(struct gf_hostgate *g, double started_s, double now_s)
{
    (void)now_s;
    g->refusing_since_s = -1;
    g->down = 0;
    /* An answer to a request sent before the pause says nothing about
     * whether the pause was long enough. */
    if (started_s > g->decided_s) {
        g->backoff_steps = 0;
        if (g->window > 0 && ++g->window >= g->window_end)
            g->window = 0;
    }
}

unsigned gf_hostgate_window(const struct gf_hostgate *g)
{
    return g->window;
}

int gf_hostgate_down(const struct gf_hostgate *g)
{
    return g->down;
}

double gf_hostgate_delay(const struct gf_hostgate *g, double now_s)
{
    if (now_s < g->pause_until_s)
        return g->pause_until_s - now_s;
    if (now_s < g->ramp_until_s && now_s < g->next_start_s)
        return g->next_start_s - now_s;
    return 0;
}

void gf_hostgate_started(struct gf_hostgate *g, double now_s)
{
    if (now_s < g->ramp_until_s)
        g->next_start_s = (g->next_start_s > now_s ? g->next_start_s : now_s) + g->ramp_step_s;
}
