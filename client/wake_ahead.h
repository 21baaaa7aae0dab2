/* SPDX-License-Identifier: MIT */
/* When a synchronous caller of libgearbox should wake up to wait for its
 * reply, learned from the connection's recent round trips. Pure arithmetic:
 * the timer and the polling are libgearbox.c's.
 *
 * A thread asleep in recv until the reply arrives pays for waking up after
 * the reply (about 30 us on an idle virtual CPU). Woken by a timer a little
 * before the reply is due, it pays for that while the daemon still computes,
 * then polls the socket for a short while. That only works while round
 * trips are steady: with many clients queueing behind each other they are
 * not, and the caller then just sleeps. */
#ifndef GEARBOX_CLIENT_WAKE_AHEAD_H
#define GEARBOX_CLIENT_WAKE_AHEAD_H

#include <stdbool.h>
#include <stdint.h>

#define WAKE_AHEAD_HISTORY 8

struct wake_ahead {
	unsigned margin_us;                   /* 0: never wake ahead */
	uint64_t rtt_ns[WAKE_AHEAD_HISTORY];  /* the last round trips, send to reply readable */
	unsigned nrtt, next_rtt;
	uint64_t late_ns;                     /* how late the timer has been waking us */
};

void wake_ahead_init(struct wake_ahead *w, unsigned margin_us);

/* Plan the wait for a reply just sent: sleep until wake_ns after sending,
 * less the timer's lateness, then poll the socket until poll_until_ns after
 * sending. false: do not wake ahead (off, too few round trips seen yet, or
 * round trips too spread out to predict), sleep in recv instead. */
bool wake_ahead_plan(const struct wake_ahead *w, uint64_t *wake_ns, uint64_t *poll_until_ns);

void wake_ahead_learn_rtt(struct wake_ahead *w, uint64_t rtt_ns);
/* The timer, set for time T, woke us at T + late_ns. */
void wake_ahead_learn_lateness(struct wake_ahead *w, uint64_t late_ns);

#endif
