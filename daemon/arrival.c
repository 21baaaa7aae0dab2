/* SPDX-License-Identifier: MIT */
/* A session's arrival pattern: see arrival.h. */
#include "config.h"

#include <math.h>

#include "daemon/arrival.h"

static void
start_over(struct arrival *a, double gap)
{
	a->period_ns = gap;
	a->jitter_ns = 0;
	a->steady = 0;
	a->paused = false;
}

/* A gap within a quarter of the period keeps the pattern: sensor loops and
 * cameras send on a timer, so ARRIVAL_STEADY matching gaps in a row are
 * enough to plan on. A longer gap in a steady pattern is a pause (the
 * camera stopped a while, a frame was dropped): the period is kept, and the
 * next request is expected one period after the one that ended the pause.
 * Relearning from scratch instead left the first four requests after every
 * pause without warm-ahead (about 120 us more each from frame to inference
 * on the development VM). A second odd gap in a row, or a shorter one,
 * starts learning again from it. */
void
arrival_note(struct arrival *a, uint64_t sent_ns)
{
	double gap;

	if (a->last_ns == 0 || sent_ns <= a->last_ns) {
		a->last_ns = sent_ns > a->last_ns ? sent_ns : a->last_ns;
		return;
	}
	gap = (double)(sent_ns - a->last_ns);
	a->last_ns = sent_ns;
	if (a->period_ns > 0 && fabs(gap - a->period_ns) <= a->period_ns / 4) {
		a->jitter_ns += (fabs(gap - a->period_ns) - a->jitter_ns) / 8;
		a->period_ns += (gap - a->period_ns) / 8;
		a->steady++;
		a->paused = false;
	} else if (arrival_is_steady(a) && !a->paused && gap > a->period_ns) {
		a->paused = true;
	} else {
		start_over(a, gap);
	}
}

bool
arrival_is_steady(const struct arrival *a)
{
	return a->steady >= ARRIVAL_STEADY && a->period_ns > 0;
}

uint64_t
arrival_next_ns(const struct arrival *a)
{
	return arrival_is_steady(a) ? a->last_ns + (uint64_t)a->period_ns : 0;
}
