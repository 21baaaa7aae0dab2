/* SPDX-License-Identifier: MIT */
/* How a session's requests arrive: the period and its jitter, learnt from
 * the client's send times, so that a worker can be ready shortly before the
 * next request (warm-ahead) and the tenant plan knows the session's rate. */
#ifndef GEARBOX_DAEMON_ARRIVAL_H
#define GEARBOX_DAEMON_ARRIVAL_H

#include <stdbool.h>
#include <stdint.h>

#define ARRIVAL_STEADY 4 /* matching gaps in a row before the period is trusted */

struct arrival {
	uint64_t last_ns;
	double period_ns, jitter_ns;
	unsigned steady; /* consecutive gaps that matched the period */
	bool paused;     /* the last gap was a pause in a steady pattern */
};

/* The client sent a request at sent_ns. */
void arrival_note(struct arrival *a, uint64_t sent_ns);
/* The period is trusted: requests come on it (or resume on it after a pause). */
bool arrival_is_steady(const struct arrival *a);
/* When the next request is expected (0: not steady). */
uint64_t arrival_next_ns(const struct arrival *a);

#endif
