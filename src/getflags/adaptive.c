#include "gf/adaptive.h"

#include <float.h>
#include <math.h>

void gf_adaptive_init(struct gf_adaptive *a, unsigned start, unsigned max)
{
    if (max == 0)
        max = 1;
    if (start == 0)
        start = GF_ADAPTIVE_START;
    if (start > max)
        start = max;
    *a = (struct gf_adaptive){
        .limit = start,
        .max = max,
        .slow_start = 1,
        .baseline_s = -1,
        /* No decrease yet: every first overload counts. */
        .last_decrease_s = -DBL_MAX,
        .max_pause_s = GF_ADAPTIVE_MAX_PAUSE_S,
        .probe_windows = GF_ADAPTIVE_PROBE_MIN,
    };
}

/* Median of n (1..GF_ADAPTIVE_SAMPLES) values, by insertion sort of a copy:
 * n is small and this runs once per window. */
static double median(const double *v, unsigned n)
{
    double s[GF_ADAPTIVE_SAMPLES] = {0};

    if (n == 0)
        return 0;
    for (unsigned i = 0; i < n; i++) {
        unsigned j = i;
        while (j > 0 && s[j - 1] > v[i]) {
            s[j] = s[j - 1];
            j--;
        }
        s[j] = v[i];
    }
    return n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

void gf_adaptive_on_success(struct gf_adaptive *a, double started_s, double now_s,
                            unsigned in_flight)
{
    if (in_flight < a->limit)
        return;
    double lat = now_s - started_s;
    a->lat_s[a->window_ok % GF_ADAPTIVE_SAMPLES] = lat > 0 ? lat : 0;
    a->window_ok++;
    if (a->window_ok < a->limit)
        return;

    unsigned n = a->window_ok < GF_ADAPTIVE_SAMPLES ? a->window_ok : GF_ADAPTIVE_SAMPLES;
    double p50 = median(a->lat_s, n);
    a->window_ok = 0;
    if (a->baseline_s < 0 || p50 < a->baseline_s)
        a->baseline_s = p50;
    if (p50 > GF_ADAPTIVE_LATENCY_FACTOR * a->baseline_s + GF_ADAPTIVE_LATENCY_SLACK_S) {
        a->holds++;
        a->slow_start = 0;
        return;
    }
    unsigned next = a->slow_start ? a->limit * 2 : a->limit + 1;
    if (a->ceiling > 0 && a->limit >= a->ceiling) {
        /* A probe at the ceiling held for a whole window: the server can
         * take more than it could. */
        a->ceiling = 0;
        a->probe_windows = GF_ADAPTIVE_PROBE_MIN;
    } else if (a->ceiling > 0 && next >= a->ceiling) {
        if (a->limit + 1 < a->ceiling) {
            next = a->ceiling - 1;
        } else if (++a->below_ceiling >= a->probe_windows && now_s >= a->next_probe_s) {
            a->below_ceiling = 0;
            next = a->ceiling;
        } else {
            next = a->limit;
        }
    }
    a->limit = next < a->max ? next : a->max;
}

void gf_adaptive_on_overload(struct gf_adaptive *a, double started_s, double now_s,
                             double retry_after_s)
{
    if (retry_after_s > 0) { /* false for NaN too */
        double pause = retry_after_s < a->max_pause_s ? retry_after_s : a->max_pause_s;
        if (now_s + pause > a->pause_until_s)
            a->pause_until_s = now_s + pause;
    }
    /* Started no later than the last decrease (the clock may have one
     * tick for both): the limit that sent it has already been cut. */
    if (started_s <= a->last_decrease_s)
        return;
    /* Refused again at the ceiling it was probing: wait longer next time. */
    if (a->ceiling > 0 && a->limit >= a->ceiling) {
        a->probe_windows *= 2;
        if (a->probe_windows > GF_ADAPTIVE_PROBE_MAX)
            a->probe_windows = GF_ADAPTIVE_PROBE_MAX;
        a->probe_hold_s *= 2;
    }
    if (retry_after_s > 0) {
        double hold = GF_ADAPTIVE_PROBE_HOLD *
                      (retry_after_s < a->max_pause_s ? retry_after_s : a->max_pause_s);
        if (hold > a->probe_hold_s)
            a->probe_hold_s = hold;
    }
    a->next_probe_s = now_s + a->probe_hold_s;
    a->ceiling = a->limit;
    a->below_ceiling = 0;
    /* floor(f * limit) is below limit for any limit >= 2, and 0 for 1. */
    double factor = a->slow_start ? 0.5 : GF_ADAPTIVE_BACKOFF;
    unsigned next = (unsigned)floor(a->limit * factor);
    a->limit = next >= 1 ? next : 1;
    a->slow_start = 0;
    a->window_ok = 0;
    a->last_decrease_s = now_s;
    a->decreases++;
}

unsigned gf_adaptive_limit(const struct gf_adaptive *a)
{
    return a->limit;
}

double gf_adaptive_pause_until(const struct gf_adaptive *a)
{
    return a->pause_until_s;
}

double gf_adaptive_pause_left(const struct gf_adaptive *a, double now_s)
{
    return a->pause_until_s > now_s ? a->pause_until_s - now_s : 0;
}
