/* SPDX-License-Identifier: MIT */
/* When to wake up for a reply: see wake_ahead.h. */
#include "config.h"

#include <string.h>

#include "client/wake_ahead.h"

/* The typical round trip lies between the second shortest and the second
 * longest of the last WAKE_AHEAD_HISTORY (one outlier either way does not
 * count). When that range is wider than this many margins, replies are not
 * predictable enough to be worth polling for. */
#define MAX_SPREAD_IN_MARGINS 4
/* A timer that wakes us later than this was held up by the scheduler (the
 * CPU was busy), which says nothing about the next wake-up. */
#define LATENESS_CLIP_NS(learned) (2 * (learned) + 20000)

void
wake_ahead_init(struct wake_ahead *w, unsigned margin_us)
{
	memset(w, 0, sizeof(*w));
	w->margin_us = margin_us;
}

static void
sorted_history(const struct wake_ahead *w, uint64_t sorted[WAKE_AHEAD_HISTORY])
{
	for (unsigned i = 0; i < WAKE_AHEAD_HISTORY; i++) {
		unsigned j = i;
		for (; j > 0 && sorted[j - 1] > w->rtt_ns[i]; j--)
			sorted[j] = sorted[j - 1];
		sorted[j] = w->rtt_ns[i];
	}
}

bool
wake_ahead_plan(const struct wake_ahead *w, uint64_t *wake_ns, uint64_t *poll_until_ns)
{
	uint64_t sorted[WAKE_AHEAD_HISTORY], margin = (uint64_t)w->margin_us * 1000, fast, slow, early;

	if (w->margin_us == 0 || w->nrtt < WAKE_AHEAD_HISTORY)
		return false;
	sorted_history(w, sorted);
	fast = sorted[1];
	slow = sorted[WAKE_AHEAD_HISTORY - 2];
	if (slow - fast > MAX_SPREAD_IN_MARGINS * margin)
		return false;
	early = margin + w->late_ns;
	*wake_ns = fast > early ? fast - early : 0;
	*poll_until_ns = slow + margin;
	return true;
}

void
wake_ahead_learn_rtt(struct wake_ahead *w, uint64_t rtt_ns)
{
	w->rtt_ns[w->next_rtt] = rtt_ns;
	w->next_rtt = (w->next_rtt + 1) % WAKE_AHEAD_HISTORY;
	if (w->nrtt < WAKE_AHEAD_HISTORY)
		w->nrtt++;
}

/* Rises fast and falls slowly, so that we are rarely woken after the reply. */
void
wake_ahead_learn_lateness(struct wake_ahead *w, uint64_t late_ns)
{
	if (late_ns > LATENESS_CLIP_NS(w->late_ns))
		late_ns = LATENESS_CLIP_NS(w->late_ns);
	if (late_ns > w->late_ns)
		w->late_ns += (late_ns - w->late_ns) / 2;
	else
		w->late_ns -= (w->late_ns - late_ns) / 16;
}
