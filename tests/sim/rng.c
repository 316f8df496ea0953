/*
 * rng.c - the simulator's only source of randomness, and its hashes.
 *
 * Every random choice in a run flows from the seed through these functions,
 * so the same seed gives the same run on every machine. xoshiro256** is
 * small and well studied; splitmix64 expands a 64-bit seed into its state.
 */
#include "sim.h"

uint64_t sim_mix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

void sim_rng_seed(struct sim_rng *rng, uint64_t seed)
{
    uint64_t x = seed;
    for (int i = 0; i < 4; i++) {
        x += 0x9e3779b97f4a7c15ull;
        rng->s[i] = sim_mix64(x);
    }
    /* An all-zero state would stick at zero; splitmix64 never yields four
     * zeros, but make it impossible rather than improbable. */
    if ((rng->s[0] | rng->s[1] | rng->s[2] | rng->s[3]) == 0) {
        rng->s[0] = 1;
    }
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t sim_rng_next(struct sim_rng *rng)
{
    uint64_t *s = rng->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

uint64_t sim_rng_below(struct sim_rng *rng, uint64_t n)
{
    /* Rejection sampling removes the modulo bias. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
        x = sim_rng_next(rng);
    } while (x >= limit);
    return x % n;
}

uint64_t sim_rng_range(struct sim_rng *rng, uint64_t lo, uint64_t hi)
{
    if (hi <= lo) {
        return lo;
    }
    return lo + sim_rng_below(rng, hi - lo + 1);
}

bool sim_rng_ppm(struct sim_rng *rng, uint32_t ppm)
{
    if (ppm == 0) {
        return false;
    }
    return sim_rng_below(rng, 1000000) < ppm;
}

uint64_t sim_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *p = data;
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 0x100000001b3ull;
    }
    return sim_mix64(h ^ len);
}
