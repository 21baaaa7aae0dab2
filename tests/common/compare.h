/* SPDX-License-Identifier: MIT */
/* How the tests compare float outputs: ||got - want|| / ||want|| (the norm
 * of want taken as 1 when it is zero), infinite when either holds a NaN;
 * and two readers' doubles, which must be the same value. Also the tests'
 * xorshift generator. */
#ifndef GEARBOX_TESTS_COMPARE_H
#define GEARBOX_TESTS_COMPARE_H

#include <math.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

static inline double
normalised_error(const float *got, const float *want, size_t n)
{
	double diff = 0, norm = 0;

	for (size_t i = 0; i < n; i++) {
		if (isnan(got[i]) || isnan(want[i]))
			return INFINITY;
		diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
		norm += (double)want[i] * want[i];
	}
	return sqrt(diff) / (sqrt(norm) > 1e-20 ? sqrt(norm) : 1.0);
}

/* The same value: both NaN, or equal with the same sign (0 and -0 differ). */
static inline bool
same_double(double a, double b)
{
	return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

/* Marsaglia's xorshift64: reproducible inputs from a seed in *state (not 0). */
static inline uint64_t
xorshift64(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

#endif
