/* SPDX-License-Identifier: MIT */
/* Exact, random and Q-learning search over a chain of per-layer choices
 * (see tune_search.h). */
#include "config.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tools/gearbox/tune_search.h"

#define M TS_MAX_CHOICES

static double
trans_cost(const struct ts_problem *p, size_t i, unsigned b, unsigned a)
{
	return p->trans != NULL && i > 0 ? p->trans[(i * M + b) * M + a] : 0.0;
}

double
ts_table_cost(const struct ts_problem *p, const unsigned *plan)
{
	double sum = 0;

	for (size_t i = 0; i < p->n; i++)
		sum += p->cost[i * M + plan[i]] + (i > 0 ? trans_cost(p, i, plan[i - 1], plan[i]) : 0.0);
	return sum;
}

static double
measure(const struct ts_problem *p, const unsigned *plan)
{
	return p->measure != NULL ? p->measure(p->arg, plan) : ts_table_cost(p, plan);
}

double
ts_exact(const struct ts_problem *p, unsigned *plan)
{
	double *v = malloc(p->n * M * sizeof(double));
	unsigned *from = malloc(p->n * M * sizeof(unsigned));
	double best = INFINITY;
	unsigned a_best = 0;

	if (v == NULL || from == NULL || p->n == 0) {
		free(v);
		free(from);
		return p->n == 0 ? 0.0 : -1;
	}
	/* v[i][a]: the cheapest chain of layers 0..i that ends in choice a */
	for (unsigned a = 0; a < p->choices[0]; a++)
		v[a] = p->cost[a];
	for (size_t i = 1; i < p->n; i++)
		for (unsigned a = 0; a < p->choices[i]; a++) {
			double m = INFINITY;
			unsigned arg = 0;
			for (unsigned b = 0; b < p->choices[i - 1]; b++) {
				double c = v[(i - 1) * M + b] + trans_cost(p, i, b, a);
				if (c < m) {
					m = c;
					arg = b;
				}
			}
			v[i * M + a] = m + p->cost[i * M + a];
			from[i * M + a] = arg;
		}
	for (unsigned a = 0; a < p->choices[p->n - 1]; a++)
		if (v[(p->n - 1) * M + a] < best) {
			best = v[(p->n - 1) * M + a];
			a_best = a;
		}
	for (size_t i = p->n; i-- > 0;) {
		plan[i] = a_best;
		if (i > 0)
			a_best = from[i * M + a_best];
	}
	free(v);
	free(from);
	return best;
}

double
ts_brute_force(const struct ts_problem *p, unsigned *plan)
{
	unsigned *cur = calloc(p->n + 1, sizeof(unsigned));
	double best = INFINITY;

	if (cur == NULL)
		return -1;
	for (;;) {
		double c = ts_table_cost(p, cur);
		size_t i = 0;
		if (c < best) {
			best = c;
			memcpy(plan, cur, p->n * sizeof(unsigned));
		}
		while (i < p->n && ++cur[i] == p->choices[i])
			cur[i++] = 0;
		if (i == p->n)
			break;
	}
	free(cur);
	return best;
}

/* xorshift32, in [0, 1) */
static double
uniform(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return (double)*s / 4294967296.0;
}

static unsigned
pick(uint32_t *s, unsigned n)
{
	unsigned k = (unsigned)(uniform(s) * n);

	return k < n ? k : n - 1;
}

static void
note(const struct ts_problem *p, const struct ts_opts *o, double *trace, unsigned k, double best, const unsigned *plan)
{
	if (trace != NULL)
		trace[k] = best;
	if (o->trace_table != NULL)
		o->trace_table[k] = isfinite(best) ? ts_table_cost(p, plan) : INFINITY;
	if (o->progress != NULL)
		o->progress(o->progress_arg, k + 1, o->episodes, best);
}

/* ---- the final pick ------------------------------------------------------- */

/* The best single measurement of many is biased low: on a machine whose
 * speed drifts (the 2-vCPU development VM's slow spells), the plan that
 * happened to be measured in a quiet moment wins over better ones measured
 * in a slow one. At two threads rl returned plans 46-47 % above the table's
 * optimum twice in 24 tunes that way. So both searches keep their best
 * measured plans (TS_FINALISTS; rl: one fewer, and its greedy plan), and
 * spend the last TS_FINALISTS x TS_FINAL_ROUNDS measurements of their budget
 * measuring those again, in turn; the lowest mean of those wins. Budgets
 * under TS_FINAL_MIN_EPISODES have no final pick. */
#define TS_FINALISTS 4
#define TS_FINAL_ROUNDS 2
#define TS_FINAL_MIN_EPISODES 32

struct finalists {
	size_t n;          /* layers */
	unsigned count;
	double us[TS_FINALISTS];
	unsigned *plans;   /* TS_FINALISTS x n */
};

static unsigned
final_budget(const struct ts_opts *o)
{
	return o->episodes >= TS_FINAL_MIN_EPISODES ? TS_FINALISTS * TS_FINAL_ROUNDS : 0;
}

static int
finalists_init(struct finalists *f, size_t n)
{
	f->n = n;
	f->count = 0;
	f->plans = malloc((TS_FINALISTS * n + 1) * sizeof(unsigned));
	return f->plans == NULL ? -1 : 0;
}

/* Keep plan (measured t) if it is among the TS_FINALISTS best so far; a plan
 * already kept keeps its best measurement. `reserve` keeps the last slot for
 * a plan to come (rl's greedy one). */
static void
finalists_keep(struct finalists *f, const unsigned *plan, double t, bool reserve)
{
	unsigned room = reserve ? TS_FINALISTS - 1 : TS_FINALISTS, worst = 0;

	for (unsigned i = 0; i < f->count; i++)
		if (memcmp(f->plans + i * f->n, plan, f->n * sizeof(unsigned)) == 0) {
			if (t < f->us[i])
				f->us[i] = t;
			return;
		}
	if (f->count < room) {
		worst = f->count++;
	} else {
		for (unsigned i = 1; i < f->count && i < room; i++)
			if (f->us[i] > f->us[worst])
				worst = i;
		if (t >= f->us[worst])
			return;
	}
	f->us[worst] = t;
	memcpy(f->plans + worst * f->n, plan, f->n * sizeof(unsigned));
}

/* The finalist with the best first measurement. */
static unsigned
finalists_lead(const struct finalists *f)
{
	unsigned lead = 0;

	for (unsigned i = 1; i < f->count; i++)
		if (f->us[i] < f->us[lead])
			lead = i;
	return lead;
}

/* Measure the finalists again, in turn, with the episodes from `e` on, and
 * put the winner in plan; returns its mean. The curves go on with the best
 * first measurement until the last episode, which has the pick. */
static double
finalists_pick(const struct ts_problem *p, const struct ts_opts *o, struct finalists *f, unsigned e,
               unsigned *plan, double *trace)
{
	double sum[TS_FINALISTS] = { 0 }, best;
	unsigned times[TS_FINALISTS] = { 0 }, won = 0, lead = finalists_lead(f);

	for (unsigned k = 0; e < o->episodes; k++, e++) {
		unsigned i = k % f->count;
		sum[i] += measure(p, f->plans + i * f->n);
		times[i]++;
		if (e + 1 < o->episodes)
			note(p, o, trace, e, f->us[lead], f->plans + lead * f->n);
	}
	for (unsigned i = 1; i < f->count; i++)
		if (sum[i] / times[i] < sum[won] / times[won])
			won = i;
	best = sum[won] / times[won];
	memcpy(plan, f->plans + won * f->n, f->n * sizeof(unsigned));
	note(p, o, trace, o->episodes - 1, best, plan);
	return best;
}

double
ts_random(const struct ts_problem *p, const struct ts_opts *o, unsigned *plan, double *trace)
{
	unsigned *cur = malloc((p->n + 1) * sizeof(unsigned)), learn = o->episodes - final_budget(o);
	uint32_t seed = o->seed ? o->seed : 1;
	double best = INFINITY;
	struct finalists f;

	if (cur == NULL || finalists_init(&f, p->n) != 0) {
		free(cur);
		return -1;
	}
	for (unsigned e = 0; e < learn; e++) {
		double t;
		for (size_t i = 0; i < p->n; i++)
			cur[i] = pick(&seed, p->choices[i]);
		t = measure(p, cur);
		finalists_keep(&f, cur, t, false);
		if (t < best) {
			best = t;
			memcpy(plan, cur, p->n * sizeof(unsigned));
		}
		note(p, o, trace, e, best, plan);
	}
	if (learn < o->episodes && f.count > 0)
		best = finalists_pick(p, o, &f, learn, plan, trace);
	free(f.plans);
	free(cur);
	return best;
}

/* ---- Q-learning ---------------------------------------------------------- */

struct transition {
	unsigned layer, state, action, next; /* next: the state the action leads to */
	double reward;
};

/* The state after layer i's choice a. */
static unsigned
state_of(const struct ts_problem *p, size_t i, unsigned a)
{
	return p->state != NULL ? p->state[i * M + a] : a;
}

/* Q[layer][state][action]; layer 0 has one state (0). */
static double *
q_at(double *q, size_t layer, unsigned state, unsigned action)
{
	return &q[(layer * M + state) * M + action];
}

/* The greatest value in a state; *arg (when not NULL) gets its action, ties
 * broken at random (a first-index rule would send every state not yet
 * visited to choice 0). */
static double
q_max(const struct ts_problem *p, double *q, size_t layer, unsigned state, unsigned *arg, uint32_t *seed)
{
	double best = -INFINITY;
	unsigned ties = 0;

	for (unsigned a = 0; a < p->choices[layer]; a++) {
		double v = *q_at(q, layer, state, a);
		if (v > best) {
			best = v;
			ties = 1;
			if (arg != NULL)
				*arg = a;
		} else if (v == best && arg != NULL && uniform(seed) * ++ties < 1.0) {
			*arg = a;
		}
	}
	return best;
}

static void
q_update(const struct ts_problem *p, double *q, const struct transition *t, double alpha)
{
	double next = (size_t)t->layer + 1 < p->n ? q_max(p, q, t->layer + 1, t->next, NULL, NULL) : 0.0;
	double *v = q_at(q, t->layer, t->state, t->action);

	*v += alpha * (t->reward + next - *v); /* undiscounted: the sum is the latency */
}

/* Where the values start: minus the cost still to come if every layer from i
 * on ran its cheapest choice (a lower bound, so untried choices look at least
 * as good as any tried one and get tried: optimism drives the exploration),
 * o->q_init of the way up to the table's average. */
static void
q_initialise(const struct ts_problem *p, const struct ts_opts *o, double *q)
{
	double low = 0, avg = 0;

	for (size_t i = p->n; i-- > 0;) {
		double lo = INFINITY, mean = 0, v;
		for (unsigned a = 0; a < p->choices[i]; a++) {
			lo = fmin(lo, p->cost[i * M + a]);
			mean += p->cost[i * M + a] / p->choices[i];
		}
		low += lo;
		avg += mean;
		v = -(low + o->q_init * (avg - low));
		for (unsigned b = 0; b < M; b++)
			for (unsigned a = 0; a < M; a++)
				*q_at(q, i, b, a) = v;
	}
}

double
ts_rl(const struct ts_problem *p, const struct ts_opts *o, unsigned *plan, double *trace)
{
	size_t cap = (size_t)o->episodes * p->n + 1, used = 0;
	struct transition *replay = malloc(cap * sizeof(*replay)), *ep = malloc((p->n + 1) * sizeof(*ep));
	double *q = calloc(p->n * M * M + 1, sizeof(double));
	unsigned *cur = malloc((p->n + 1) * sizeof(unsigned));
	uint32_t seed = o->seed ? o->seed : 1;
	double best = INFINITY, alpha = o->alpha > 0 ? o->alpha : 0.1, offset = 0;
	unsigned learn = o->episodes - final_budget(o);
	struct finalists f = { 0 };

	if (replay == NULL || ep == NULL || q == NULL || cur == NULL || finalists_init(&f, p->n) != 0) {
		free(replay);
		free(ep);
		free(q);
		free(cur);
		free(f.plans);
		return -1;
	}
	q_initialise(p, o, q);
	for (unsigned e = 0; e < learn; e++) {
		/* ε from 0.2 down to 0.02 over the first 30 % of the episodes (the
		 * optimistic start does most of the exploring); the last episode is
		 * greedy */
		double frac = learn > 1 ? (double)e / (double)(learn - 1) : 1.0;
		double eps = frac >= 0.3 ? 0.02 : 0.2 - 0.18 * frac / 0.3;
		double sum = 0, t;
		unsigned prev = 0, st = 0;
		if (e + 1 == learn)
			eps = 0;
		for (size_t i = 0; i < p->n; i++) {
			unsigned a = 0;
			if (uniform(&seed) < eps)
				a = pick(&seed, p->choices[i]);
			else
				q_max(p, q, i, st, &a, &seed);
			cur[i] = a;
			ep[i] = (struct transition){ (unsigned)i, st, a, state_of(p, i, a),
				                     -(p->cost[i * M + a] + (i > 0 ? trans_cost(p, i, prev, a) : 0.0)) };
			sum -= ep[i].reward;
			prev = a;
			st = ep[i].next;
		}
		t = measure(p, cur);
		/* what the measurement says beyond the table goes to the last step,
		 * less what every plan's measurement says beyond it (the mean so
		 * far): layers timed alone cost more than in the chain, and that
		 * shared bonus, given to the first plans tried, had lifted their
		 * values above the optimistic start of the choices not yet tried,
		 * which were then never tried (2 of 24 g=2 tunes stopped 23-26 %
		 * above the optimum with conv3 never run in int8) */
		offset += (t - sum - offset) / (e + 1);
		ep[p->n - 1].reward -= t - sum - offset;
		/* the top measured plans, and the greedy one the values learnt lead to */
		finalists_keep(&f, cur, t, e + 1 < learn);
		if (t < best) {
			best = t;
			memcpy(plan, cur, p->n * sizeof(unsigned));
		}
		for (size_t i = p->n; i-- > 0;) {
			q_update(p, q, &ep[i], alpha);
			if (used < cap)
				replay[used++] = ep[i];
		}
		for (unsigned r = 0; r < o->replay && used > 0; r++)
			q_update(p, q, &replay[pick(&seed, (unsigned)used)], alpha);
		note(p, o, trace, e, best, plan);
	}
	if (learn < o->episodes && f.count > 0)
		best = finalists_pick(p, o, &f, learn, plan, trace);
	free(f.plans);
	free(replay);
	free(ep);
	free(q);
	free(cur);
	return best;
}
