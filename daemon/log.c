/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>

#include <systemd/sd-journal.h>

#include "daemon/log.h"

static int max_level = LOG_INFO;
static enum log_target target = LOG_TARGET_CONSOLE;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

enum log_target
log_target_decide(const char *journal_stream, const char *invocation_id, const struct stat *err)
{
	unsigned long long dev, ino;
	char end;

	if (err == NULL)
		return LOG_TARGET_CONSOLE;
	/* systemd.exec(5): "DEVICE:INODE" of the stream it connected stderr
	 * to; a child whose stderr was redirected inherits a stale one. */
	if (journal_stream != NULL && sscanf(journal_stream, "%llu:%llu%c", &dev, &ino, &end) == 2 &&
	    (unsigned long long)err->st_dev == dev && (unsigned long long)err->st_ino == ino)
		return LOG_TARGET_JOURNAL;
	/* Started by systemd (it sets INVOCATION_ID) with stderr a socket: the
	 * journal's stream, whatever happened to JOURNAL_STREAM. */
	if (journal_stream == NULL && invocation_id != NULL && *invocation_id != '\0' && S_ISSOCK(err->st_mode))
		return LOG_TARGET_JOURNAL;
	return LOG_TARGET_CONSOLE;
}

void
log_init(int max_priority)
{
	struct stat st;

	max_level = max_priority;
	target = log_target_decide(getenv("JOURNAL_STREAM"), getenv("INVOCATION_ID"),
	                           fstat(STDERR_FILENO, &st) == 0 ? &st : NULL);
}

enum log_target
log_target(void)
{
	return target;
}

/* One message to the journal; false when journald cannot be reached. */
static bool
journal_send(int priority, const char *message_id, const struct log_fields *f, const char *line)
{
	char fields[8][320];
	struct iovec iov[8];
	int n = 0;

#define FIELD(...)                                                                                   \
	do {                                                                                         \
		int len_ = snprintf(fields[n], sizeof(fields[n]), __VA_ARGS__);                      \
		iov[n].iov_base = fields[n];                                                         \
		iov[n].iov_len = len_ < (int)sizeof(fields[n]) ? (size_t)len_ : sizeof(fields[n]) - 1; \
		n++;                                                                                 \
	} while (0)
	FIELD("PRIORITY=%d", priority);
	FIELD("SYSLOG_IDENTIFIER=gearboxd");
	if (message_id != NULL)
		FIELD("MESSAGE_ID=%s", message_id);
	if (f != NULL && f->model != NULL)
		FIELD("MODEL=%s", f->model);
	if (f != NULL && f->session != NULL)
		FIELD("SESSION=%s", f->session);
	if (f != NULL && f->placement != NULL)
		FIELD("PLACEMENT=%s", f->placement);
	if (f != NULL && f->freq_khz != 0)
		FIELD("FREQ_KHZ=%lu", f->freq_khz);
#undef FIELD
	/* MESSAGE last and whole (a line can be longer than the other fields). */
	char *message = NULL;
	if (asprintf(&message, "MESSAGE=%s", line) < 0)
		return false;
	iov[n].iov_base = message;
	iov[n].iov_len = strlen(message);
	n++;
	int r = sd_journal_sendv(iov, n);
	free(message);
	return r >= 0;
}

static void
emit(int priority, const char *message_id, const struct log_fields *f, const char *fmt, va_list ap)
{
	char line[2048];

	if (priority > max_level)
		return;
	vsnprintf(line, sizeof(line), fmt, ap);
	if (target == LOG_TARGET_JOURNAL && journal_send(priority, message_id, f, line))
		return;
	pthread_mutex_lock(&log_lock);
	fprintf(stderr, "gearboxd: %s\n", line);
	pthread_mutex_unlock(&log_lock);
}

void
log_msg(int priority, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(priority, NULL, NULL, fmt, ap);
	va_end(ap);
}

void
log_event(int priority, const char *message_id, const struct log_fields *f, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	emit(priority, message_id, f, fmt, ap);
	va_end(ap);
}
