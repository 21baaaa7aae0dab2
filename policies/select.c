/* SPDX-License-Identifier: MIT */
/* The operating-point table, selection with margin and hysteresis, the
 * feedback loop and the Pareto front. Everything here is a pure function of
 * its arguments, so the daemon, `gearbox simulate` and the unit tests run the
 * same code. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "policies/policy.h"

/* ---- feedback -------------------------------------------------------------------- */

void
pol_feedback_init(struct pol_feedback *fb)
{
	memset(fb, 0, sizeof(*fb));
	for (unsigned i = 0; i < POL_MAX_PLACES; i++) {
		fb->energy_factor[i] = 1.0;
		for (unsigned t = 0; t <= POL_MAX_THREADS; t++)
			fb->factor[i][t] = 1.0;
	}
}

/* An exponentially weighted average whose weight matches a moving average
 * over `window` samples (2 / (window + 1)); one sample is clamped so that a
 * single outlier (a page fault, a preemption) cannot throw the choice far. */
void
pol_feedback_update(struct pol_feedback *fb, const struct pol_params *params, const struct pol_point *pt,
                    double pred_us, double measured_us, double measured_uj, double pred_uj)
{
	double alpha = 2.0 / ((params->window ? params->window : 1) + 1.0);
	double lo = 1.0 / params->max_slowdown, hi = params->max_slowdown, ratio, old;
	unsigned p = pt->place, t = pt->threads;

	if (p >= POL_MAX_PLACES || !(pred_us > 0) || !(measured_us >= 0))
		return;
	ratio = fmin(fmax(measured_us / pred_us, lo), hi);
	/* The first samples after start replace the calibrated 1.0 faster. */
	if (fb->samples[p] < params->window)
		alpha = fmax(alpha, 1.0 / (fb->samples[p] + 1.0));
	if (t > POL_MAX_THREADS)
		return;
	old = fb->factor[p][t];
	fb->factor[p][t] = (1 - alpha) * old + alpha * ratio;
	for (unsigned u = 1; u <= POL_MAX_THREADS; u++)
		if (u != t)
			fb->factor[p][u] = fmin(fmax(fb->factor[p][u] * sqrt(fb->factor[p][t] / old), lo), hi);
	/* What we learnt about placements we no longer use goes stale: their
	 * factors relax towards the calibration (ten times slower), so that
	 * when the load that drove us away leaves, we come back. */
	for (unsigned q = 0; q < POL_MAX_PLACES; q++)
		if (q != p) {
			for (unsigned u = 1; u <= POL_MAX_THREADS; u++)
				fb->factor[q][u] += (1.0 - fb->factor[q][u]) * alpha / 10;
			fb->energy_factor[q] += (1.0 - fb->energy_factor[q]) * alpha / 10;
		}
	if (measured_uj >= 0 && pred_uj > 0) {
		ratio = fmin(fmax(measured_uj / pred_uj, lo), hi);
		fb->energy_factor[p] = (1 - alpha) * fb->energy_factor[p] + alpha * ratio;
	}
	fb->samples[p]++;
}

/* ---- the table ------------------------------------------------------------------- */

static bool
word_in(const char *list, const char *word)
{
	size_t n = strlen(word);

	for (const char *s = list; (s = strstr(s, word)) != NULL; s += n) {
		bool starts = s == list || s[-1] == ' ' || s[-1] == ',' || s[-1] == '\t';
		bool ends = s[n] == '\0' || s[n] == ' ' || s[n] == ',' || s[n] == '\t';
		if (starts && ends)
			return true;
	}
	return false;
}

bool
pol_place_allowed(const struct pol_place *pl, const char *allowed)
{
	if (word_in(allowed, "all") || word_in(allowed, pl->name) || (pl->single_cpu && word_in(allowed, pl->cluster)))
		return true;
	if (pl->kind == POL_PLACE_CPU)
		return word_in(allowed, "cpu");
	return word_in(allowed, "opencl") || (pl->is_gpu && word_in(allowed, "gpu"));
}

unsigned
pol_table_capacity(const struct pol_predictor *pr)
{
	unsigned n = 0;

	for (unsigned p = 0; p < pr->nplaces; p++)
		n += pr->places[p].max_threads * pr->places[p].nfreqs * pr->model.groups;
	return n;
}

unsigned
pol_table_build(const struct pol_predictor *pr, const struct pol_params *params, const struct pol_feedback *fb,
                const struct pol_freq_floor *floor, struct pol_point *points, unsigned max)
{
	unsigned n = 0, G = pr->model.groups;
	unsigned gmin = params->min_groups ? params->min_groups : 1;
	unsigned gmax = params->max_groups && params->max_groups < G ? params->max_groups : G;

	if (params->controller == POL_CONTROLLER_FIXED)
		gmin = gmax = params->fixed_groups < G ? params->fixed_groups : G;
	for (unsigned p = 0; p < pr->nplaces; p++) {
		const struct pol_place *pl = &pr->places[p];
		unsigned tmax = pl->max_threads;
		if (pl->disabled || !pol_place_allowed(pl, params->placements))
			continue;
		if (params->max_threads && params->max_threads < tmax)
			tmax = params->max_threads;
		for (unsigned f = 0; f < pl->nfreqs; f++) {
			unsigned long khz = pl->freqs_khz[f];
			if (khz && ((params->min_khz && khz < params->min_khz) ||
			            (params->max_khz && khz > params->max_khz && f > 0)))
				continue;
			if (khz && floor && floor->floor_khz[p] && khz < floor->floor_khz[p])
				continue;
			for (unsigned t = 1; t <= tmax; t++) {
				double watts = pl->busy_w[f] * (pl->kind == POL_PLACE_CPU ? t : 1);
				if (params->power_cap_w > 0 && watts > params->power_cap_w)
					continue;
				for (unsigned g = gmin; g <= gmax && n < max; g++) {
					struct pol_point *pt = &points[n++];
					double t_us = pol_predict_us(pr, g, p, t, f);
					pt->groups = g;
					pt->place = p;
					pt->threads = t;
					pt->freq = f;
					pt->khz = khz;
					pt->accuracy = pr->model.accuracy[g];
					pt->power_w = watts;
					pt->latency_us = t_us * (fb ? fb->factor[p][t] : 1.0);
					pt->tail_us = 0; /* unknown here (policies/control.c sets it) */
					pt->energy_uj = watts * pt->latency_us * (fb ? fb->energy_factor[p] : 1.0);
				}
			}
		}
	}
	return n;
}

/* ---- selection --------------------------------------------------------------------- */

static double
accuracy_of(const struct pol_point *pt)
{
	/* unknown accuracy: more groups are taken to be better */
	return pt->accuracy >= 0 ? pt->accuracy : pt->groups * 1e-6;
}

/* Does a better b than a by the objective? Ties are broken by the other two
 * measures, then by fewer threads (leaves CPUs to others). */
static int
compare_objective(const struct pol_point *a, const struct pol_point *b, enum pol_objective o)
{
	double keys_a[3], keys_b[3]; /* larger is better */

	switch (o) {
	case POL_OBJECTIVE_ACCURACY:
		keys_a[0] = accuracy_of(a), keys_a[1] = -a->energy_uj, keys_a[2] = -a->latency_us;
		keys_b[0] = accuracy_of(b), keys_b[1] = -b->energy_uj, keys_b[2] = -b->latency_us;
		break;
	case POL_OBJECTIVE_LATENCY:
		keys_a[0] = -a->latency_us, keys_a[1] = accuracy_of(a), keys_a[2] = -a->energy_uj;
		keys_b[0] = -b->latency_us, keys_b[1] = accuracy_of(b), keys_b[2] = -b->energy_uj;
		break;
	default:
		keys_a[0] = -a->energy_uj, keys_a[1] = accuracy_of(a), keys_a[2] = -a->latency_us;
		keys_b[0] = -b->energy_uj, keys_b[1] = accuracy_of(b), keys_b[2] = -b->latency_us;
		break;
	}
	for (int i = 0; i < 3; i++) {
		double tol = 1e-9 * fmax(fabs(keys_a[i]), fabs(keys_b[i]));
		if (keys_b[i] > keys_a[i] + tol)
			return 1;
		if (keys_a[i] > keys_b[i] + tol)
			return -1;
	}
	return (b->threads < a->threads) - (a->threads < b->threads);
}

/* What a point is held to need against a deadline: the slow end when it
 * is known, the prediction with the margin at least. */
static double
deadline_need_us(const struct pol_point *pt, double margin)
{
	return fmax(pt->tail_us, pt->latency_us * (1 + margin));
}

/* Relative violation of each budget at a point: 0 when met. */
static void
violations(const struct pol_point *pt, const struct pol_budget *b, double margin, double floor_acc, double v[3])
{
	double t = deadline_need_us(pt, margin);
	double e = pt->energy_uj * (1 + margin);

	v[POL_KEEP_DEADLINE] = b->deadline_us > 0 && t > b->deadline_us ? t / b->deadline_us - 1 : 0;
	v[POL_KEEP_ENERGY] = b->energy_uj > 0 && e > b->energy_uj ? e / b->energy_uj - 1 : 0;
	v[POL_KEEP_ACCURACY] = floor_acc > 0 && pt->accuracy < floor_acc
	                               ? (floor_acc - (pt->accuracy >= 0 ? pt->accuracy : 0)) / floor_acc
	                               : 0;
}

static bool
fits(const struct pol_point *pt, const struct pol_budget *b, double margin, double floor_acc)
{
	double v[3];

	violations(pt, b, margin, floor_acc, v);
	return v[0] == 0 && v[1] == 0 && v[2] == 0;
}

static bool
same_point(const struct pol_point *a, const struct pol_point *b)
{
	return a->groups == b->groups && a->place == b->place && a->threads == b->threads && a->freq == b->freq;
}

/* The keep order: the policy's first, then deadline, energy, accuracy. */
static void
keep_order(enum pol_constraint first, enum pol_constraint order[3])
{
	unsigned n = 0;

	order[n++] = first;
	for (int c = 0; c < 3; c++)
		if ((enum pol_constraint)c != first)
			order[n++] = (enum pol_constraint)c;
}

static void
explain(struct pol_choice *choice, const struct pol_budget *b, double margin, double floor_acc)
{
	const struct pol_point *pt = &choice->point;
	double v[3];

	violations(pt, b, margin, floor_acc, v);
	/* the figure the deadline was held against (violations), not only the
	 * prediction: "needs about 153 us" with 201 us left read as a bug when
	 * the slow end of the recent requests had said 230 */
	if (v[POL_KEEP_DEADLINE] > 0 && pt->tail_us > pt->latency_us * (1 + margin))
		snprintf(choice->reason, sizeof(choice->reason),
		         "deadline: %.0f us left, the closest point (g=%u, %u thread%s) needs about %.0f us at the slow "
		         "end of the recent requests (%.0f us predicted)",
		         b->deadline_us, pt->groups, pt->threads, pt->threads > 1 ? "s" : "", deadline_need_us(pt, margin),
		         pt->latency_us);
	else if (v[POL_KEEP_DEADLINE] > 0)
		snprintf(choice->reason, sizeof(choice->reason),
		         "deadline: %.0f us left, the closest point (g=%u, %u thread%s) needs about %.0f us with a "
		         "%.0f%% margin",
		         b->deadline_us, pt->groups, pt->threads, pt->threads > 1 ? "s" : "", deadline_need_us(pt, margin),
		         margin * 100);
	else if (v[POL_KEEP_ENERGY] > 0)
		snprintf(choice->reason, sizeof(choice->reason),
		         "energy: the budget is %.0f uJ, the closest point (g=%u) needs about %.0f uJ with a %.0f%% margin",
		         b->energy_uj, pt->groups, pt->energy_uj, margin * 100);
	else if (v[POL_KEEP_ACCURACY] > 0)
		snprintf(choice->reason, sizeof(choice->reason),
		         "accuracy: no point that meets the other budgets reaches %.3f; g=%u gives %.3f", floor_acc,
		         pt->groups, pt->accuracy);
}

int
pol_select(const struct pol_point *points, unsigned n, const struct pol_params *params,
           const struct pol_budget *budget, const struct pol_session *session, struct pol_choice *choice)
{
	double m = params->margin, floor_acc = fmax(budget->min_accuracy, params->min_accuracy);
	unsigned step_g = 0;
	int best = -1, last = -1;

	memset(choice, 0, sizeof(*choice));
	if (n == 0) {
		snprintf(choice->reason, sizeof(choice->reason),
		         "policy %s allows no operating point here (placements, threads, frequencies or power cap)",
		         params->name);
		return -1;
	}
	if (params->controller == POL_CONTROLLER_STEP) {
		/* The baseline: g comes from the step controller, the rest is the
		 * fastest point for that g. */
		unsigned gmax = 0;
		for (unsigned i = 0; i < n; i++)
			gmax = points[i].groups > gmax ? points[i].groups : gmax;
		step_g = session && session->step_groups ? session->step_groups : gmax;
		step_g = step_g > gmax ? gmax : step_g;
		for (unsigned i = 0; i < n; i++)
			if (points[i].groups == step_g &&
			    (best < 0 || compare_objective(&points[best], &points[i], POL_OBJECTIVE_LATENCY) > 0))
				best = (int)i;
		if (best >= 0) {
			choice->point = points[best];
			choice->feasible = fits(&points[best], budget, m, floor_acc);
			if (!choice->feasible)
				explain(choice, budget, m, floor_acc);
			return 0;
		}
	}
	for (unsigned i = 0; i < n; i++) {
		if (session && session->have_last && same_point(&points[i], &session->last))
			last = (int)i;
		if (fits(&points[i], budget, m, floor_acc) &&
		    (best < 0 || compare_objective(&points[best], &points[i], params->objective) > 0))
			best = (int)i;
	}
	if (best >= 0) {
		/* Hysteresis: leave a point that still fits for a better one only
		 * when the better one fits with room to spare. Moving away from a
		 * point that no longer fits is immediate. */
		if (last >= 0 && last != best && fits(&points[last], budget, m, floor_acc) &&
		    !fits(&points[best], budget, m + params->hysteresis, floor_acc))
			best = last;
		choice->point = points[best];
		choice->feasible = true;
		return 0;
	}
	/* Nothing fits: the point that breaks the budgets the policy keeps
	 * first the least. */
	enum pol_constraint order[3];
	double best_v[3] = { INFINITY, INFINITY, INFINITY };
	keep_order(params->keep_first, order);
	for (unsigned i = 0; i < n; i++) {
		double v[3];
		int better = 0;
		violations(&points[i], budget, m, floor_acc, v);
		for (int k = 0; k < 3 && better == 0; k++) {
			double a = v[order[k]], b = best_v[order[k]];
			better = a < b - 1e-12 ? 1 : a > b + 1e-12 ? -1 : 0;
		}
		if (better > 0 || (better == 0 && best >= 0 &&
		                   compare_objective(&points[best], &points[i], params->objective) > 0)) {
			best = (int)i;
			memcpy(best_v, v, sizeof(v));
		}
	}
	choice->point = points[best];
	choice->feasible = false;
	explain(choice, budget, m, floor_acc);
	return 0;
}

void
pol_session_record(struct pol_session *s, const struct pol_params *params, const struct pol_point *pt,
                   double latency_us, double deadline_us)
{
	unsigned window = params->window < 64 ? params->window : 64;

	s->have_last = true;
	s->last = *pt;
	if (params->controller != POL_CONTROLLER_STEP || deadline_us <= 0)
		return;
	/* The moving-average step controller: one group down when the average
	 * of the last window latencies passes the deadline (less the margin),
	 * one up when it is under 60 % of that; the window restarts after a
	 * step. */
	if (s->step_groups == 0)
		s->step_groups = pt->groups;
	s->window_us[s->nwindow++ % 64] = latency_us;
	if (s->nwindow < window)
		return;
	double sum = 0, target = deadline_us / (1 + params->margin);
	for (unsigned i = 0; i < window; i++)
		sum += s->window_us[i];
	sum /= window;
	if (sum > target && s->step_groups > 1)
		s->step_groups--;
	else if (sum < 0.6 * target)
		s->step_groups++; /* clamped to G by pol_select */
	s->nwindow = 0;
}

/* ---- the Pareto front ------------------------------------------------------------ */

static bool
dominates(const struct pol_point *a, const struct pol_point *b)
{
	double aa = accuracy_of(a), ab = accuracy_of(b);

	return aa >= ab && a->latency_us <= b->latency_us && a->energy_uj <= b->energy_uj &&
	       (aa > ab || a->latency_us < b->latency_us || a->energy_uj < b->energy_uj);
}

unsigned
pol_pareto(const struct pol_point *points, unsigned n, struct pol_point *front)
{
	unsigned k = 0;

	for (unsigned i = 0; i < n; i++) {
		bool dominated = false;
		for (unsigned j = 0; j < n && !dominated; j++)
			dominated = j != i && dominates(&points[j], &points[i]);
		if (!dominated)
			front[k++] = points[i];
	}
	/* insertion sort by latency: fronts are short */
	for (unsigned i = 1; i < k; i++) {
		struct pol_point x = front[i];
		unsigned j = i;
		for (; j > 0 && front[j - 1].latency_us > x.latency_us; j--)
			front[j] = front[j - 1];
		front[j] = x;
	}
	return k;
}

/* ---- one frequency per cluster ----------------------------------------------------- */

void
pol_votes_cast(struct pol_votes *votes, uint64_t owner, unsigned place, unsigned long khz, uint64_t now_ns,
               uint64_t ttl_ns)
{
	unsigned slot = votes->n;

	for (unsigned i = 0; i < votes->n; i++) {
		if (votes->v[i].owner == owner || votes->v[i].expires_ns <= now_ns) {
			slot = i;
			break;
		}
	}
	if (slot == POL_MAX_VOTES) { /* full of live votes: replace the oldest */
		slot = 0;
		for (unsigned i = 1; i < votes->n; i++)
			if (votes->v[i].expires_ns < votes->v[slot].expires_ns)
				slot = i;
	} else if (slot == votes->n) {
		votes->n++;
	}
	votes->v[slot].owner = owner;
	votes->v[slot].place = place;
	votes->v[slot].khz = khz;
	votes->v[slot].expires_ns = now_ns + ttl_ns;
}

void
pol_votes_drop(struct pol_votes *votes, uint64_t owner)
{
	for (unsigned i = 0; i < votes->n; i++)
		if (votes->v[i].owner == owner)
			votes->v[i] = votes->v[--votes->n];
}

void
pol_votes_floor(const struct pol_votes *votes, uint64_t owner, uint64_t now_ns, struct pol_freq_floor *floor)
{
	memset(floor, 0, sizeof(*floor));
	for (unsigned i = 0; i < votes->n; i++) {
		unsigned p = votes->v[i].place;
		if (votes->v[i].owner == owner || votes->v[i].expires_ns <= now_ns || p >= POL_MAX_PLACES)
			continue;
		if (votes->v[i].khz > floor->floor_khz[p])
			floor->floor_khz[p] = votes->v[i].khz;
	}
}

unsigned long
pol_votes_level(const struct pol_votes *votes, unsigned place, uint64_t now_ns)
{
	unsigned long level = 0;

	for (unsigned i = 0; i < votes->n; i++)
		if (votes->v[i].place == place && votes->v[i].expires_ns > now_ns && votes->v[i].khz > level)
			level = votes->v[i].khz;
	return level;
}
