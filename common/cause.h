/* SPDX-License-Identifier: MIT */
/* Error strings for callers, in the tmux style: a function that fails returns
 * NULL or a negative errno and, when `cause` is not NULL, stores a malloc'ed
 * message that names the problem. The caller frees it. */
#ifndef GEARBOX_COMMON_CAUSE_H
#define GEARBOX_COMMON_CAUSE_H

/* Store a formatted message in *cause (if cause is not NULL). Always returns -1
 * so that `return set_cause(cause, ...)` reads naturally. */
int set_cause(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Prefix an existing *cause with a formatted context ("file.safetensors: ..."). */
void prefix_cause(char **cause, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
