/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <unistd.h>

#include "daemon/log.h"

static int max_level = LOG_INFO;
static bool prefixes = true;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

void
log_init(int max_priority)
{
	max_level = max_priority;
	prefixes = !isatty(STDERR_FILENO);
}

void
log_msg(int priority, const char *fmt, ...)
{
	va_list ap;
	char line[2048];

	if (priority > max_level)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	pthread_mutex_lock(&log_lock);
	if (prefixes)
		fprintf(stderr, "<%d>%s\n", priority, line);
	else
		fprintf(stderr, "gearboxd: %s\n", line);
	pthread_mutex_unlock(&log_lock);
}
