/* Deterministic draws for delays and errors.
 *
 * The generator is splitmix64. Each request whose headers are complete takes
 * exactly one 64-bit output, in the order the requests are received: the
 * high 32 bits choose the delay, the low 32 bits decide the error. So the
 * k-th request received gets the k-th output, whatever the other settings. */
#ifndef FLAGSERVER_RNG_H
#define FLAGSERVER_RNG_H

#include <stdint.h>

typedef struct fs_rng {
    uint64_t state;
} fs_rng;

typedef struct fs_draw {
    uint64_t delay_ms; /* in [min, max] seconds, rounded to milliseconds */
    int error;         /* 1 when this request must be answered 418 */
} fs_draw;

/* Starts the sequence for seed. */
void fs_rng_seed(fs_rng *rng, uint64_t seed);

/* Returns the next splitmix64 output and advances the state. */
uint64_t fs_rng_next(fs_rng *rng);

/* Takes one output and turns it into a delay in [delay_min, delay_max]
 * seconds and an error decision with probability error_rate (0 never, 1
 * always). */
fs_draw fs_rng_draw(fs_rng *rng, double delay_min, double delay_max, double error_rate);

#endif
