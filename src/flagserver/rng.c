#include "flagserver/rng.h"

#include <math.h>

void fs_rng_seed(fs_rng *rng, uint64_t seed)
{
    rng->state = seed;
}

uint64_t fs_rng_next(fs_rng *rng)
{
    uint64_t z = (rng->state += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

fs_draw fs_rng_draw(fs_rng *rng, double delay_min, double delay_max, double error_rate)
{
    uint64_t x = fs_rng_next(rng);
    /* Both halves are uniform in [0, 1): 2^-32 steps are fine enough for
     * milliseconds over an hour and for any sensible error rate. */
    double u_delay = (double)(x >> 32) / 4294967296.0;
    double u_error = (double)(x & UINT32_C(0xffffffff)) / 4294967296.0;
    double seconds = delay_min + u_delay * (delay_max - delay_min);
    fs_draw d;

    d.delay_ms = (uint64_t)llround(seconds * 1000.0);
    d.error = u_error < error_rate;
    return d;
}
