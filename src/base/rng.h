// base/rng: a small deterministic generator (splitmix64-seeded xoshiro256**).
// Same seed, same numbers, on every machine and thread count.
#pragma once
#include <stdint.h>

typedef struct rng {
    uint64_t s[4];
} rng;

void rng_seed(rng *r, uint64_t seed);
uint64_t rng_u64(rng *r);
// Uniform in [0, 1) with 24 bits (float) / 53 bits (double).
float rng_float(rng *r);
double rng_double(rng *r);
// Standard normal (Box-Muller).
float rng_normal(rng *r);
// Uniform integer in [0, n).
uint64_t rng_below(rng *r, uint64_t n);
