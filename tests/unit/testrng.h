/*
 * testrng.h - the pseudo-random numbers the unit tests share: an xorshift64*
 * generator (rnd), an integer below n, a uniform double in [0, 1) and a
 * standard normal (Box-Muller), so that a test's random inputs are the same
 * on every run and every machine.
 *
 * Ownership: the state is one static rng_state per test program, seeded
 * here; a test that wants a known sequence assigns it. Nothing is allocated.
 * Everything is static (and inline, so that a test using only some of the
 * helpers compiles without unused-function warnings).
 */
#ifndef QN_TESTRNG_H
#define QN_TESTRNG_H

#include <math.h>
#include <stdint.h>

/* The generator's state; assign it to restart a sequence. */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;

static inline uint64_t rnd(void)
{
	uint64_t x = rng_state;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	rng_state = x;
	return x * 0x2545f4914f6cdd1dull;
}

/* An integer in [0, n); 0 when n is 0. */
static inline uint32_t below(uint32_t n)
{
	return n ? (uint32_t)(rnd() % n) : 0;
}

/* A double in [0, 1), from the top 53 bits. */
static inline double uniform(void)
{
	return (double)(rnd() >> 11) / 9007199254740992.0;
}

/* A draw from N(0, 1). */
static inline double normal(void)
{
	double u1 = uniform() + 1e-300, u2 = uniform();
	return sqrt(-2 * log(u1)) * cos(2 * 3.14159265358979323846 * u2);
}

#endif
