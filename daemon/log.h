/* SPDX-License-Identifier: MIT */
/* gearboxd's logging. Where stderr is the journal (JOURNAL_STREAM names
 * stderr's device and inode, see systemd.exec(5); or gearboxd runs under
 * systemd, INVOCATION_ID set, with stderr a socket) every message goes to
 * journald natively (sd_journal_sendv) with PRIORITY, and the events below
 * with a MESSAGE_ID and MODEL, SESSION, PLACEMENT fields. Anywhere else
 * (a terminal, a file, a pipe) it is plain text, "gearboxd: message", with
 * no priority prefixes. */
#ifndef GEARBOX_DAEMON_LOG_H
#define GEARBOX_DAEMON_LOG_H

#include <sys/stat.h>
#include <syslog.h>

/* MESSAGE_IDs of gearboxd's events (made once with systemd-id128 new;
 * listed in gearboxd(8)). */
#define GBX_MID_READY             "a29f8db435074ca7b43fd73429e78ed4"
#define GBX_MID_RELOAD            "2ca6f253e3e0487fbc421300d94c5bbb"
#define GBX_MID_PLACEMENT_FAILED  "8f7684519e834c29b4778fe26e5a114c"
#define GBX_MID_BUDGET_INFEASIBLE "1e0885c15fed41bd83c66eb8ef7fbdb5"
#define GBX_MID_DVFS_CHANGED      "04b7f522f3174c7dae84f5fd7619aaa2"
#define GBX_MID_DVFS_RESTORED     "ce69c65079d84c6fbb343375b752ee23"

enum log_target {
	LOG_TARGET_CONSOLE, /* plain text on stderr */
	LOG_TARGET_JOURNAL, /* sd_journal_sendv, structured */
};

/* Where to log, from $JOURNAL_STREAM, $INVOCATION_ID and fstat(stderr)
 * (err NULL: fstat failed). Pure: the unit test drives it. */
enum log_target log_target_decide(const char *journal_stream, const char *invocation_id, const struct stat *err);

/* Decide from the environment and stderr; messages above max_priority are dropped. */
void log_init(int max_priority);
enum log_target log_target(void);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* The fields of an event (NULL or 0: left out). */
struct log_fields {
	const char *model;
	const char *session;
	const char *placement;
	unsigned long freq_khz;
};
void log_event(int priority, const char *message_id, const struct log_fields *f, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
