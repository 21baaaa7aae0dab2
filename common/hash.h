/* SPDX-License-Identifier: MIT */
/* FNV-1a, 64 bits: the fingerprint of what a cache file was made from (the
 * calibration cache, the OpenCL program binaries). Not for security. */
#ifndef GEARBOX_COMMON_HASH_H
#define GEARBOX_COMMON_HASH_H

#include <stddef.h>
#include <stdint.h>

#define FNV1A_INIT 14695981039346656037ull

static inline uint64_t
fnv1a(uint64_t h, const void *data, size_t n)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < n; i++)
		h = (h ^ p[i]) * 1099511628211ull;
	return h;
}

#endif
