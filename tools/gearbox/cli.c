/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policies/policy.h"
#include "tools/gearbox/cli.h"

void
cli_error(const char *fmt, ...)
{
	va_list ap;

	fputs("gearbox: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
cli_parse_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (s == NULL || *s == '\0' || *s == '-' || *s == '+')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || *end != '\0' || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int
cli_parse_groups(const char *s, unsigned G, unsigned *first, unsigned *last)
{
	unsigned long g;

	if (s == NULL || strcmp(s, "all") == 0) {
		*first = 1;
		*last = G;
		return 0;
	}
	if (cli_parse_uint(s, 1, G, &g) != 0) {
		cli_error("--groups must be 'all' or a number from 1 to %u, not '%s'", G, s);
		return -1;
	}
	*first = *last = (unsigned)g;
	return 0;
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

double
cli_quantile(double *samples, size_t n, double q)
{
	size_t rank;

	if (n == 0)
		return NAN;
	qsort(samples, n, sizeof(double), compare_double);
	rank = (size_t)ceil(q * (double)n);
	return samples[rank == 0 ? 0 : rank - 1];
}

char *
cli_no_policy(const struct pol_set *set, const char *name, const char *shipped, const char *etcdir)
{
	char have[512] = "", *msg = NULL;
	size_t n = 0;

	for (unsigned i = 0; i < set->n && n < sizeof(have); i++)
		n += (size_t)snprintf(have + n, sizeof(have) - n, "%s%s", i ? ", " : "", set->policies[i].params.name);
	if (asprintf(&msg, "no policy '%s' (have: %s; looked in %s and %s)", name, have, shipped, etcdir) < 0)
		return NULL;
	return msg;
}
