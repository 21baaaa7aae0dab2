/* SPDX-License-Identifier: MIT */
/* How the tests compare float outputs: ||got - want|| / ||want|| (the norm
 * of want taken as 1 when it is zero), infinite when either holds a NaN. */
#ifndef GEARBOX_TESTS_COMPARE_H
#define GEARBOX_TESTS_COMPARE_H

#include <math.h>
#include <stddef.h>

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

#endif
