/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/cause.h"

int
set_cause(char **cause, const char *fmt, ...)
{
	va_list ap;

	if (cause == NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(cause, fmt, ap) < 0)
		*cause = NULL;
	va_end(ap);
	return -1;
}

void
prefix_cause(char **cause, const char *fmt, ...)
{
	va_list ap;
	char *prefix, *joined;

	if (cause == NULL || *cause == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&prefix, fmt, ap) < 0) {
		va_end(ap);
		return;
	}
	va_end(ap);
	if (asprintf(&joined, "%s: %s", prefix, *cause) >= 0) {
		free(*cause);
		*cause = joined;
	}
	free(prefix);
}
