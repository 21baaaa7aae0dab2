/* SPDX-License-Identifier: MIT */
/* Exact, random and Q-learning search over a chain of per-layer choices
 * (see tune_search.h). */
#include "config.h"

#include <math.h>
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
note(const struct ts_opts *o, double *trace, unsigned k, double best)
{
	if (trace != NULL)
		trace[k] = best;
	if (o->progress != NULL)
		o->progress(o->progress_arg, k + 1, o->episodes, best);
}

double
ts_random(const struct ts_problem *p, const struct ts_opts *o, unsigned *plan, double *trace)
{
	unsigned *cur = malloc((p->n + 1) * sizeof(unsigned));
	uint32_t seed = o->seed ? o->seed : 1;
	double best = INFINITY;

	if (cur == NULL)
		return -1;
	for (unsigned e = 0; e < o->episodes; e++) {
		double t;
		for (size_t i = 0; i < p->n; i++)
			cur[i] = pick(&seed, p->choices[i]);
		t = measure(p, cur);
		if (t < best) {
			best = t;
			memcpy(plan, cur, p->n * sizeof(unsigned));
		}
		note(o, trace, e, best);
	}
	free(cur);
	return best;
}

/* ---- Q-learning ---------------------------------------------------------- */

struct transition {
	unsigned layer, prev, action;
	double reward;
};

/* Q[layer][prev][action]; layer 0 has one state (prev 0). */
static double *
q_at(double *q, size_t layer, unsigned prev, unsigned action)
{
	return &q[(layer * M + prev) * M + action];
}

static double
q_max(const struct ts_problem *p, double *q, size_t layer, unsigned prev, unsigned *arg)
{
	double best = -INFINITY;

	for (unsigned a = 0; a < p->choices[layer]; a++)
		if (*q_at(q, layer, prev, a) > best) {
			best = *q_at(q, layer, prev, a);
			if (arg != NULL)
				*arg = a;
		}
	return best;
}

static void
q_update(const struct ts_problem *p, double *q, const struct transition *t, double alpha)
{
	double next = (size_t)t->layer + 1 < p->n ? q_max(p, q, t->layer + 1, t->action, NULL) : 0.0;
	double *v = q_at(q, t->layer, t->prev, t->action);

	*v += alpha * (t->reward + next - *v); /* undiscounted: the sum is the latency */
}

double
ts_rl(const struct ts_problem *p, const struct ts_opts *o, unsigned *plan, double *trace)
{
	size_t cap = (size_t)o->episodes * p->n + 1, used = 0;
	struct transition *replay = malloc(cap * sizeof(*replay)), *ep = malloc((p->n + 1) * sizeof(*ep));
	double *q = calloc(p->n * M * M, sizeof(double));
	unsigned *cur = malloc((p->n + 1) * sizeof(unsigned));
	uint32_t seed = o->seed ? o->seed : 1;
	double best = INFINITY, alpha = o->alpha > 0 ? o->alpha : 0.1, scale = 0;

	if (replay == NULL || ep == NULL || q == NULL || cur == NULL) {
		free(replay);
		free(ep);
		free(q);
		free(cur);
		return -1;
	}
	/* Start every value at the table's average plan: neither optimistic nor
	 * pessimistic about untried choices. */
	for (size_t i = 0; i < p->n; i++) {
		double mean = 0;
		for (unsigned a = 0; a < p->choices[i]; a++)
			mean += p->cost[i * M + a] / p->choices[i];
		scale += mean;
	}
	for (size_t i = 0; i < p->n; i++)
		for (unsigned b = 0; b < M; b++)
			for (unsigned a = 0; a < M; a++)
				*q_at(q, i, b, a) = -scale * (double)(p->n - i) / (double)p->n;
	for (unsigned e = 0; e < o->episodes; e++) {
		/* ε: 1 for the first tenth of the episodes, then down to 0.05 by
		 * three quarters of them; the last one is greedy */
		double frac = o->episodes > 1 ? (double)e / (double)(o->episodes - 1) : 1.0;
		double eps = frac < 0.1 ? 1.0 : frac >= 0.75 ? 0.05 : 1.0 - 0.95 * (frac - 0.1) / 0.65;
		double sum = 0, t;
		unsigned prev = 0;
		if (e + 1 == o->episodes)
			eps = 0;
		for (size_t i = 0; i < p->n; i++) {
			unsigned a = 0;
			if (uniform(&seed) < eps)
				a = pick(&seed, p->choices[i]);
			else
				q_max(p, q, i, prev, &a);
			cur[i] = a;
			ep[i] = (struct transition){ (unsigned)i, prev, a,
				                     -(p->cost[i * M + a] + (i > 0 ? trans_cost(p, i, prev, a) : 0.0)) };
			sum -= ep[i].reward;
			prev = a;
		}
		t = measure(p, cur);
		/* what the measurement says beyond the table goes to the last step */
		ep[p->n - 1].reward -= t - sum;
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
		note(o, trace, e, best);
	}
	free(replay);
	free(ep);
	free(q);
	free(cur);
	return best;
}
