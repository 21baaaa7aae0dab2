/* SPDX-License-Identifier: MIT */
/* CLOCK_MONOTONIC as one number, for measuring how long something took and
 * for the timestamps client and daemon exchange (same host, same clock).
 * Header only: the engine, the daemon, libgearbox, the tools and the
 * benchmarks all read the clock this way. */
#ifndef GEARBOX_COMMON_CLOCK_H
#define GEARBOX_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

static inline uint64_t
monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline double
monotonic_us(void)
{
	return (double)monotonic_ns() / 1e3;
}

#endif
