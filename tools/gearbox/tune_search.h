/* SPDX-License-Identifier: MIT */
/* The search behind `gearbox tune`: one choice per layer of a chain, the cost
 * of a choice being its layer's measured time plus the cost of converting
 * from the previous layer's choice (the same problem as PBQP primitive
 * selection on a chain).
 *
 * - exact: dynamic programming over the layers (state: the previous choice),
 *   the optimum of the cost table; the yardstick.
 * - random: uniformly drawn plans, each measured end to end.
 * - rl: Q-learning as in QS-DNN (de Prado et al.): state = (layer, the
 *   layout/precision the previous layer's choice left, ts_problem.state),
 *   action = this layer's choice, reward = minus its cost from the table
 *   (its measured time and the conversion from the previous choice),
 *   optimistic initial values (at the table's lower bound), ε-greedy with
 *   ε decreasing over the episodes, experience replay; every episode's plan
 *   is measured end to end and the difference between that measurement and
 *   the table's sum is given to the last step, so the values learnt are
 *   those of measured latencies.
 *
 * Independent of dnn/: a plan is an array of choice indices. */
#ifndef GEARBOX_TOOLS_TUNE_SEARCH_H
#define GEARBOX_TOOLS_TUNE_SEARCH_H

#include <stddef.h>
#include <stdint.h>

#define TS_MAX_CHOICES 8

struct ts_problem {
	size_t n;                /* layers */
	const unsigned *choices; /* n: choices of each layer (1..TS_MAX_CHOICES) */
	const double *cost;      /* n x TS_MAX_CHOICES: cost[i * TS_MAX_CHOICES + a] */
	const double *trans;     /* n x TS_MAX_CHOICES x TS_MAX_CHOICES: trans[(i * M + b) * M + a], from
	                          * layer i-1's choice b to layer i's a (row 0 unused); NULL: none */
	/* rl's state after layer i's choice a: state[i * TS_MAX_CHOICES + a] (< TS_MAX_CHOICES), such as
	 * the layout and precision it leaves the activations in; choices that lead to the same state must
	 * have the same transition costs into layer i + 1. NULL: the choice itself. */
	const unsigned *state;
	/* One end-to-end measurement of a plan (n choices); NULL: the table's sum. */
	double (*measure)(void *arg, const unsigned *plan);
	void *arg;
};

struct ts_opts {
	unsigned episodes;       /* measurements to spend */
	uint32_t seed;
	double alpha;            /* learning rate (rl) */
	unsigned replay;         /* transitions replayed after each episode (rl) */
	double q_init;           /* where untried actions' values start (rl): 0 = the table's lower bound
	                          * for the layers to come (optimistic), 1 = its average */
	double *trace_table;     /* when not NULL (o->episodes values): the table's cost of the best
	                          * measured plan after k + 1 measurements */
	void (*progress)(void *arg, unsigned done, unsigned total, double best);
	void *progress_arg;
};

/* The options `gearbox tune` runs rl and random with (the tests check the
 * same): q_init 0, values start at the table's lower bound, so that a
 * choice never tried looks at least as good as every one tried. At 0.1
 * (before 2026-12-03) the start sat above plans that were cheap but not
 * the cheapest, and at 2 threads 4 of 9 g=2 tunes never tried conv2 in
 * int8 and stopped 16-20 % above the optimum. */
static inline struct ts_opts
ts_default_opts(unsigned episodes, uint32_t seed)
{
	return (struct ts_opts){ .episodes = episodes, .seed = seed, .alpha = 0.3, .replay = 128, .q_init = 0.0 };
}

/* The table's cost of a plan. */
double ts_table_cost(const struct ts_problem *p, const unsigned *plan);
/* The table's optimum (DP) and, for tests, by trying every plan. */
double ts_exact(const struct ts_problem *p, unsigned *plan);
double ts_brute_force(const struct ts_problem *p, unsigned *plan);
/* Spend o->episodes measurements; the plan found goes to plan and its
 * measurement is returned: with 32 episodes or more, the last 8 measure the
 * best few plans again (rl: and its greedy plan) and the lowest mean of
 * those wins (tune_search.c: a single best measurement is biased low).
 * trace[k] (o->episodes values, may be NULL) is the best measurement after
 * k + 1 measurements, the last one the pick's. -1 when out of memory. */
double ts_random(const struct ts_problem *p, const struct ts_opts *o, unsigned *plan, double *trace);
double ts_rl(const struct ts_problem *p, const struct ts_opts *o, unsigned *plan, double *trace);

#endif
