#include "adaptive.h"

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
        .counting_since_s = -DBL_MAX,
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

/* Refusals have stopped (pacing ended, a probe held): the next one
 * starts a new streak. */
static void end_streak(struct gf_adaptive *a)
{
    a->streak = 0;
    a->streak_ok = 0;
    a->streak_pace_s = 0;
}

/* A success while pacing: speed up once per window, up to the pace that
 * was refused until the probe hold has passed, and stop pacing once the
 * interval is no longer than the round trip (one in flight paces itself). */
static void paced_success(struct gf_adaptive *a, double lat, double now_s)
{
    if (++a->paced_ok < GF_ADAPTIVE_PACE_WINDOW)
        return;
    a->paced_ok = 0;
    /* After a refused pace, hold the slower one until the probe hold has
     * passed: a host's burst allowance hides a pace that is too fast for
     * a while, so creeping back up at once would be refused again. */
    if (a->pace_ceiling_s > 0 && now_s < a->next_probe_s)
        return;
    double next = a->interval_s /
                  (a->pace_slow_start ? GF_ADAPTIVE_PACE_FAST_GROWTH : GF_ADAPTIVE_PACE_GROWTH);
    if (next <= lat) {
        a->interval_s = 0;
        a->window_ok = 0;
        end_streak(a);
        return;
    }
    a->interval_s = next;
}

/* While shedding, the share watched is that of the latest answers:
 * halving both counts keeps it and forgets the old ones. */
static void count_answer(struct gf_adaptive *a, int refused)
{
    if (a->shed_ok == 0)
        return;
    if (refused)
        a->seg_refused++;
    else
        a->seg_ok++;
    if (a->seg_ok + a->seg_refused > GF_ADAPTIVE_SHED_WINDOW) {
        a->seg_ok /= 2;
        a->seg_refused /= 2;
    }
}

void gf_adaptive_on_success(struct gf_adaptive *a, double started_s, double now_s,
                            unsigned in_flight)
{
    count_answer(a, 0);
    /* Only requests sent since the streak began: those in flight then
     * were let in before it. */
    if (a->streak && started_s > a->streak_started_s)
        a->streak_ok++;
    if (a->counting_since_s == -DBL_MAX)
        a->counting_since_s = started_s;
    a->ok_since_decrease++;
    double lat = now_s - started_s;
    if (lat > 0 && (a->min_lat_s == 0 || lat < a->min_lat_s))
        a->min_lat_s = lat;
    if (a->interval_s > 0) {
        paced_success(a, lat > 0 ? lat : 0, now_s);
        return;
    }
    if (in_flight < a->limit)
        return;
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
        end_streak(a);
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

/* After a cut of the limit or of the pace: slow start is over, and the
 * counting of answers starts again from now. */
static void decreased(struct gf_adaptive *a, double now_s)
{
    a->cut_limit = a->limit;
    a->cut_interval_s = a->interval_s;
    a->slow_start = 0;
    a->window_ok = 0;
    a->ok_since_decrease = 0;
    a->counting_since_s = now_s;
    a->last_decrease_s = now_s;
    a->decreases++;
}

/* Refused with one request in flight: pace starts, or pace them slower.
 * far: the refused pace is far too fast (see adaptive.h). */
static void pace_slower(struct gf_adaptive *a, double now_s, int far)
{
    double since = now_s - a->counting_since_s;
    if (a->interval_s > 0) {
        /* The pace in force was refused: slower, and no faster than it
         * until the probe hold has passed. */
        a->pace_ceiling_s = a->interval_s;
        double next =
            a->ok_since_decrease > 0 ? a->interval_s / GF_ADAPTIVE_BACKOFF : a->interval_s * 2;
        /* Never slower than the rate of the streak's answers: a token
         * bucket takes that pace, and a refusal there is shedding. */
        if (a->streak_pace_s == 0 && a->streak_ok >= GF_ADAPTIVE_PACE_MIN_OK)
            a->streak_pace_s = (now_s - a->streak_started_s) / (a->streak_ok - 1);
        if (far && a->streak_pace_s > a->interval_s) {
            double mid = sqrt(a->interval_s * a->streak_pace_s);
            if (mid > next)
                next = mid;
        }
        if (a->streak_pace_s > 0 && next > a->streak_pace_s && a->interval_s < a->streak_pace_s)
            next = a->streak_pace_s;
        a->interval_s = next;
        a->pace_slow_start = 0;
    } else {
        /* First pace: the streak's (see adaptive.h); without it, a
         * little slower than the rate since the last decrease. Then fast
         * growth until a refusal says where the limit is. */
        unsigned ok = a->ok_since_decrease;
        if (a->streak_ok >= ok && a->streak_ok >= GF_ADAPTIVE_PACE_MIN_OK) {
            a->streak_pace_s = (now_s - a->streak_started_s) / (a->streak_ok - 1);
            a->interval_s = a->streak_pace_s;
        } else {
            double took = ok > 0 && since > 0
                              ? since / ok
                              : (a->baseline_s > 0 ? a->baseline_s : GF_ADAPTIVE_FIRST_INTERVAL_S);
            a->interval_s = ok > 0 ? took / GF_ADAPTIVE_BACKOFF : took * 2;
        }
        a->pace_ceiling_s = 0;
        a->pace_slow_start = 1;
        a->paces++;
    }
    if (a->interval_s > GF_ADAPTIVE_MAX_INTERVAL_S)
        a->interval_s = GF_ADAPTIVE_MAX_INTERVAL_S;
    a->paced_ok = 0;
    a->limit = 1;
    decreased(a, now_s);
}

/* Still at the point the last decrease set: answers counted since then
 * were all taken there. */
static int unchanged_since_cut(const struct gf_adaptive *a)
{
    return a->limit == a->cut_limit && a->interval_s == a->cut_interval_s;
}

/* While shedding: is this refusal (already counted) within the share
 * seen since shedding was found, or a rise above it? Three standard
 * deviations of a binomial over the latest answers, plus one for small
 * counts. */
static int within_shed(const struct gf_adaptive *a)
{
    double q = a->shed_refused / (a->shed_ok + a->shed_refused);
    double n = a->seg_ok + a->seg_refused;
    return a->seg_refused <= n * q + 3 * sqrt(n * q * (1 - q)) + 1;
}

/* Slowing down did not stop the refusals: back to where the streak
 * began, with no ceiling or hold left from refusals that said nothing
 * about the load. Their share over the streak is the one expected. */
static void start_shedding(struct gf_adaptive *a, double now_s)
{
    a->shed_ok = a->streak_ok > 0 ? a->streak_ok : 1;
    a->shed_refused = a->streak;
    a->seg_ok = a->shed_ok;
    a->seg_refused = a->shed_refused;
    a->sheds++;
    a->limit = a->streak_limit;
    a->interval_s = a->streak_interval_s;
    a->pace_ceiling_s = 0;
    a->paced_ok = 0;
    a->ceiling = 0;
    a->below_ceiling = 0;
    a->probe_windows = GF_ADAPTIVE_PROBE_MIN;
    a->probe_hold_s = 0;
    a->next_probe_s = now_s;
    a->window_ok = 0;
}

void gf_adaptive_on_overload(struct gf_adaptive *a, double started_s, double now_s,
                             double retry_after_s)
{
    /* Started no later than the last decrease (the clock may have one
     * tick for both): the limit that sent it has already been cut. */
    if (started_s <= a->last_decrease_s)
        return;
    count_answer(a, 1);
    if (a->shed_ok > 0) {
        if (within_shed(a))
            return;
        /* More refusals than shedding explains: an overload after all. */
        a->shed_ok = 0;
        end_streak(a);
    } else if (a->interval_s > 0 && unchanged_since_cut(a) &&
               a->ok_since_decrease >= GF_ADAPTIVE_SHED_MIN_OK && a->streak_pace_s > 0 &&
               a->interval_s >= a->streak_pace_s) {
        /* Refused at a pace no faster than the rate the streak's answers
         * came at: a token bucket refills faster than that, so it
         * refuses no such pace. These refusals are shed. */
        start_shedding(a, now_s);
        return;
    }
    if (a->streak++ == 0) {
        a->streak_limit = a->limit;
        a->streak_interval_s = a->interval_s;
        a->streak_started_s = now_s;
        a->streak_ok = 0;
    }
    /* Refused again at the ceiling it was probing, or at a pace after a
     * pace was refused: wait longer next time. */
    if ((a->ceiling > 0 && a->limit >= a->ceiling) ||
        (a->interval_s > 0 && a->pace_ceiling_s > 0)) {
        a->probe_windows *= 2;
        if (a->probe_windows > GF_ADAPTIVE_PROBE_MAX)
            a->probe_windows = GF_ADAPTIVE_PROBE_MAX;
        a->probe_hold_s *= 2;
        if (a->probe_hold_s > GF_ADAPTIVE_PROBE_HOLD_MAX_S)
            a->probe_hold_s = GF_ADAPTIVE_PROBE_HOLD_MAX_S;
    }
    if (retry_after_s > 0) {
        double hold = GF_ADAPTIVE_PROBE_HOLD *
                      (retry_after_s < a->max_pause_s ? retry_after_s : a->max_pause_s);
        if (hold > a->probe_hold_s)
            a->probe_hold_s = hold;
    }
    /* A refused pace holds for at least ten of its starts. */
    if (a->interval_s > 0 && a->probe_hold_s < GF_ADAPTIVE_PROBE_HOLD * a->interval_s)
        a->probe_hold_s = GF_ADAPTIVE_PROBE_HOLD * a->interval_s;
    a->next_probe_s = now_s + a->probe_hold_s;
    /* Refused within a tenth of a long pause after it ended. */
    int far = a->pause_s >= GF_ADAPTIVE_LONG_PAUSE_S &&
              now_s - a->resumed_s < GF_ADAPTIVE_FAR_SHARE * a->pause_s;
    a->pause_s = retry_after_s > 0 ? fmin(retry_after_s, a->max_pause_s) : 0;
    a->resumed_s = now_s + a->pause_s;
    if (a->limit <= 1) {
        /* One or two answers since the refusals began say nothing of the
         * host's rate (a pause let them through): its pause is enough
         * until there are more. */
        if (a->interval_s == 0 && a->streak_ok > 0 && a->streak_ok < GF_ADAPTIVE_PACE_MIN_OK)
            decreased(a, now_s);
        else
            pace_slower(a, now_s, far);
        return;
    }
    /* The host took fewer answers a second since the refusals began
     * than half of what one request in flight makes: its limit is a
     * rate, and every limit down to 1 would cost a pause of its own.
     * Pace now. */
    if (a->streak >= 2 && a->streak_ok >= GF_ADAPTIVE_PACE_MIN_OK && a->min_lat_s > 0 &&
        2 * a->streak_ok * a->min_lat_s < now_s - a->streak_started_s) {
        a->limit = 1;
        pace_slower(a, now_s, far);
        return;
    }
    a->ceiling = a->limit;
    a->below_ceiling = 0;
    /* floor(f * limit) is below limit for any limit >= 2, and 0 for 1. */
    double factor = a->slow_start ? 0.5 : GF_ADAPTIVE_BACKOFF;
    unsigned next = (unsigned)floor(a->limit * factor);
    a->limit = next >= 1 ? next : 1;
    decreased(a, now_s);
}

unsigned gf_adaptive_limit(const struct gf_adaptive *a)
{
    return a->limit;
}

double gf_adaptive_interval(const struct gf_adaptive *a)
{
    return a->interval_s;
}
