/* SPDX-License-Identifier: MIT */
/* The control loop of one model: choose, learn. See control.h. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "policies/control.h"

int
pol_control_init(struct pol_control *c, const struct pol_model *model, const struct pol_place *places,
                 unsigned nplaces, char **cause)
{
	memset(c, 0, sizeof(*c));
	pol_predictor_init(&c->predictor, model, places, nplaces);
	pol_feedback_init(&c->feedback);
	c->table_cap = pol_table_capacity(&c->predictor);
	if ((c->table = calloc(c->table_cap ? c->table_cap : 1, sizeof(*c->table))) == NULL)
		return set_cause(cause, "out of memory for %u operating points", c->table_cap);
	return 0;
}

void
pol_control_free(struct pol_control *c)
{
	free(c->table);
	c->table = NULL;
}

void
pol_control_recalibrated(struct pol_control *c, const struct pol_predictor *calibrated)
{
	c->predictor = *calibrated;
	pol_feedback_init(&c->feedback);
	memset(c->cold_samples, 0, sizeof(c->cold_samples));
	memset(c->ntail, 0, sizeof(c->ntail));
}

/* Of one placement's thread counts, the one other than `threads` with the
 * most samples in `seen` (at least `least`), or 0 when none has so many. */
static unsigned
best_known_threads(const unsigned seen[POL_MAX_THREADS + 1], unsigned threads, unsigned least)
{
	unsigned best = 0;

	for (unsigned t = 1; t <= POL_MAX_THREADS; t++)
		if (t != threads && seen[t] >= least && (best == 0 || seen[t] > seen[best]))
			best = t;
	return best;
}

/* The factor a point's calibrated latency is scaled by: the warm feedback,
 * or for a cold start what cold starts measured. Until a cold start of
 * (place, threads) has been seen, what they cost another thread count of
 * the same placement, against its warm factor, stands in; and the warm
 * factor where none has been seen on the placement. (The scripts/demo.sh
 * client, stepping from a loose deadline to a tight one, had its first
 * two-thread requests predicted at the two-thread calibration, made back
 * to back: they took 1.4 to 1.8 times that, with the pool's second thread
 * asleep, and missed.) */
static double
factor_of(const struct pol_control *c, unsigned place, unsigned threads, bool cold)
{
	const double *warm = c->feedback.factor[place];
	unsigned t;

	if (!cold)
		return warm[threads];
	if (c->cold_samples[place][threads] > 0)
		return c->cold_factor[place][threads];
	if ((t = best_known_threads(c->cold_samples[place], threads, 1)) != 0 && warm[t] > 0)
		return warm[threads] * c->cold_factor[place][t] / warm[t];
	return warm[threads];
}

double
pol_control_predict_us(const struct pol_control *c, const struct pol_point *pt, bool cold)
{
	return pol_predict_us(&c->predictor, pt->groups, pt->place, pt->threads, pt->freq) *
	       factor_of(c, pt->place, pt->threads, cold);
}

/* How far above its prediction a request predicted at latency_us goes,
 * about 98.5 % of the time (the largest of the last 64, each ratio clipped
 * at 2 when learnt); until there are 8, that of the placement's thread
 * count with the most (0 when none has 8). Each sample says its request took
 * r times the e µs predicted. Applied to another size, it counts as the
 * smaller of an added (r - 1) e and a scaled (r - 1) latency_us: a spike
 * (the CPU taken away, a wake-up) adds time whatever runs, and a ratio
 * learnt on 180 us inferences had made the 640 us ones look 1.8 x slow.
 * In bench/tenants a tenant at 80/s that had stepped down to g=1 stayed
 * there (mean g 1.59 where the same run planned gave 3.92): its own short
 * inferences' ratios barred g=4, so it never measured g=4 again. The slow
 * spells of the mean go to feedback (pol_feedback), not here. */
static double
tail_excess_us(const struct pol_control *c, unsigned place, unsigned threads, double latency_us)
{
	unsigned n = c->ntail[place][threads] < POL_TAIL_SAMPLES ? c->ntail[place][threads] : POL_TAIL_SAMPLES;
	double worst = 0;

	if (n < 8) {
		/* too few of its own: the tail of the placement's best-known
		 * thread count, rather than none (scripts/demo.sh's two-thread
		 * points, untried since calibration, looked 250 us faster than
		 * one thread's at a tight step, and three in four missed) */
		unsigned t = best_known_threads(c->ntail[place], threads, 8);
		return t != 0 ? tail_excess_us(c, place, t, latency_us) : 0;
	}
	for (unsigned i = 0; i < n; i++) {
		double over = c->tail[place][threads][i] - 1.0;
		if (over > 0)
			worst = fmax(worst, over * fmin(c->tail_base_us[place][threads][i], latency_us));
	}
	return worst;
}

/* Cold starts, the tail and waiting on top of what pol_table_build
 * predicted. ctx may be NULL. */
static void
apply_context(struct pol_control *c, unsigned n, const struct pol_context *ctx)
{
	for (unsigned i = 0; i < n; i++) {
		struct pol_point *pt = &c->table[i];
		double warm = pt->latency_us, wait = ctx ? ctx->wait_us[pt->place] : 0;
		if (ctx && ctx->cold[pt->place][pt->threads]) {
			pt->latency_us = pol_control_predict_us(c, pt, true);
			if (warm > 0)
				pt->energy_uj *= pt->latency_us / warm;
		}
		pt->tail_us = pt->latency_us + tail_excess_us(c, pt->place, pt->threads, pt->latency_us) + wait;
		pt->latency_us += wait;
	}
}

/* The policy allows nothing here: all groups, first placement, one thread,
 * its highest frequency, and say so. */
static struct pol_choice
fallback_choice(const struct pol_control *c, struct pol_choice choice)
{
	const struct pol_predictor *pr = &c->predictor;
	const struct pol_place *first = &pr->places[0];
	struct pol_point *pt = &choice.point;

	*pt = (struct pol_point){ .groups = pr->model.groups, .threads = 1, .freq = first->nfreqs - 1 };
	pt->khz = first->freqs_khz[pt->freq];
	pt->power_w = first->busy_w[pt->freq];
	pt->accuracy = pr->model.accuracy[pt->groups];
	pt->latency_us = pol_control_predict_us(c, pt, false);
	pt->energy_uj = pt->power_w * pt->latency_us;
	choice.feasible = false;
	return choice;
}

struct pol_choice
pol_control_choose(struct pol_control *c, const struct pol_params *params, const struct pol_budget *budget,
                   const struct pol_session *session, const struct pol_context *ctx)
{
	struct pol_choice choice;
	unsigned n = pol_table_build(&c->predictor, params, &c->feedback, ctx ? ctx->floor : NULL, c->table,
	                             c->table_cap);

	apply_context(c, n, ctx);
	if (pol_select(c->table, n, params, budget, session, &choice) != 0)
		return fallback_choice(c, choice);
	/* The reply reports the inference's own prediction, without the wait. */
	if (ctx != NULL) {
		choice.point.latency_us -= ctx->wait_us[choice.point.place];
		choice.point.tail_us -= ctx->wait_us[choice.point.place];
	}
	return choice;
}

/* Cold starts keep their own average; the first few replace the warm
 * factor they started from faster. */
static void
learn_cold(struct pol_control *c, const struct pol_params *params, const struct pol_point *pt, double ratio)
{
	unsigned p = pt->place, t = pt->threads, *seen = &c->cold_samples[p][t];
	double alpha = 2.0 / ((params->window ? params->window : 1) + 1.0);

	if (*seen < params->window)
		alpha = fmax(alpha, 1.0 / (*seen + 1.0));
	if (*seen == 0)
		c->cold_factor[p][t] = ratio;
	else
		c->cold_factor[p][t] += alpha * (ratio - c->cold_factor[p][t]);
	(*seen)++;
}

void
pol_control_learn(struct pol_control *c, const struct pol_params *params, const struct pol_point *pt,
                  const struct pol_outcome *outcome, struct pol_session *session)
{
	double pred_us = pol_predict_us(&c->predictor, pt->groups, pt->place, pt->threads, pt->freq);

	if (pt->place < POL_MAX_PLACES && pt->threads <= POL_MAX_THREADS && pred_us > 0 && outcome->latency_us >= 0) {
		/* against what was predicted for it, corrections included */
		double expected = pred_us * factor_of(c, pt->place, pt->threads, outcome->cold);
		unsigned *k = &c->ntail[pt->place][pt->threads];
		/* the first cold start of a (placement, threads) was expected at
		 * the warm factor, which stands in until one is seen: its ratio is
		 * what cold starts cost, which learn_cold now learns, not how far
		 * a request strays from what was expected of it. As a tail sample
		 * it barred the upper groups for the next 64 requests there
		 * (bench/tenants: a new tenant at 80/s held at g=1 and g=2 of 4
		 * for its first 2 s by its first request's 1.9) */
		bool stand_in = outcome->cold && c->cold_samples[pt->place][pt->threads] == 0;
		/* clipped at 2: a hiccup (the host took the CPU) is not the tail,
		 * and a placement whose tail says infeasible is not chosen, so it
		 * would not learn again */
		if (expected > 0 && !stand_in) {
			unsigned slot = (*k)++ % POL_TAIL_SAMPLES;
			c->tail[pt->place][pt->threads][slot] = (float)fmin(outcome->latency_us / expected, 2.0);
			c->tail_base_us[pt->place][pt->threads][slot] = (float)expected;
		}
		if (outcome->cold) {
			double lo = 1.0 / params->max_slowdown, hi = params->max_slowdown;
			learn_cold(c, params, pt, fmin(fmax(outcome->latency_us / pred_us, lo), hi));
		} else {
			pol_feedback_update(&c->feedback, params, pt, pred_us, outcome->latency_us, outcome->sensor_uj,
			                    pred_us * pt->power_w);
		}
	}
	if (session != NULL)
		pol_session_record(session, params, pt, outcome->end_to_end_us, outcome->deadline_us);
}
