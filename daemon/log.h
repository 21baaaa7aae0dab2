/* SPDX-License-Identifier: MIT */
/* Logging fit for journald: "<N>" priority prefixes on stderr (systemd turns
 * them into priorities), plain text when stderr is a terminal. */
#ifndef GEARBOX_DAEMON_LOG_H
#define GEARBOX_DAEMON_LOG_H

#include <syslog.h>

void log_init(int max_priority);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...) log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
