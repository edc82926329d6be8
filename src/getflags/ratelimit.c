#include "gf/ratelimit.h"

#include <float.h>
#include <math.h>
#include <uv.h>

int gf_ratelimit_init(struct gf_ratelimit *rl, double rate_per_s)
{
    /* -DBL_MAX: the first request never waits, whatever the clock's origin. */
    *rl = (struct gf_ratelimit){.interval_s = 0, .next_s = -DBL_MAX};
    if (rate_per_s == 0)
        return 0;
    if (!isfinite(rate_per_s) || rate_per_s < GF_RATELIMIT_MIN_RATE)
        return UV_EINVAL;
    rl->interval_s = 1.0 / rate_per_s;
    return 0;
}

double gf_ratelimit_delay(struct gf_ratelimit *rl, double now_s)
{
    if (rl->interval_s == 0)
        return 0;
    if (now_s < rl->next_s)
        return rl->next_s - now_s;
    /* The bucket holds one token, so time spent idle past next_s earns
     * nothing: the next token is one interval after this start. */
    rl->next_s = now_s + rl->interval_s;
    return 0;
}

double gf_ratelimit_peek(const struct gf_ratelimit *rl, double now_s)
{
    if (rl->interval_s == 0 || now_s >= rl->next_s)
        return 0;
    return rl->next_s - now_s;
}

void gf_ratelimit_set_interval(struct gf_ratelimit *rl, double interval_s)
{
    if (!(interval_s > 0) || !isfinite(interval_s))
        interval_s = 0;
    /* next_s is the last start plus the old interval (or -DBL_MAX before
     * any start, which no finite shift moves). */
    if (rl->next_s > -DBL_MAX)
        rl->next_s += interval_s - rl->interval_s;
    rl->interval_s = interval_s;
}
