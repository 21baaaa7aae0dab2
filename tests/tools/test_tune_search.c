/* SPDX-License-Identifier: MIT */
/* The search of `gearbox tune` on synthetic cost tables: the dynamic
 * programme finds what trying every plan finds; Q-learning reaches the known
 * optimum of a table and does better than random search on the same budget. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tools/gearbox/tune_search.h"

#define M TS_MAX_CHOICES

static uint32_t rng = 12345;

static double
unif(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return (double)rng / 4294967296.0;
}

struct table {
	size_t n;
	unsigned choices[16];
	double cost[16 * M], trans[16 * M * M];
	struct ts_problem p;
};

/* Layer costs in [1, 11), conversions in [0, conv) between different
 * choices (0 for the same choice, as a shared layout costs nothing). */
static void
make_table(struct table *t, size_t n, unsigned max_choices, double conv)
{
	memset(t, 0, sizeof(*t));
	t->n = n;
	for (size_t i = 0; i < n; i++) {
		t->choices[i] = 1 + (unsigned)(unif() * max_choices) % max_choices;
		for (unsigned a = 0; a < M; a++) {
			t->cost[i * M + a] = 1 + 10 * unif();
			for (unsigned b = 0; b < M; b++)
				t->trans[(i * M + b) * M + a] = a == b ? 0 : conv * unif();
		}
	}
	t->p = (struct ts_problem){ .n = n, .choices = t->choices, .cost = t->cost, .trans = t->trans };
}

START_TEST(test_exact_is_brute_force)
{
	unsigned checked = 0;

	for (int k = 0; k < 200; k++) {
		struct table t;
		unsigned a[16], b[16];
		double ca, cb;
		make_table(&t, 1 + (size_t)(k % 7), 2 + (unsigned)(k % 4), k % 3 == 0 ? 0.0 : 8.0);
		ca = ts_exact(&t.p, a);
		cb = ts_brute_force(&t.p, b);
		ck_assert_msg(fabs(ca - cb) < 1e-9, "table %d: exact %g, brute force %g", k, ca, cb);
		ck_assert_msg(fabs(ts_table_cost(&t.p, a) - ca) < 1e-9, "table %d: the plan does not cost what exact says", k);
		for (size_t i = 0; i < t.n; i++)
			ck_assert_uint_lt(a[i], t.choices[i]);
		checked++;
	}
	ck_assert_uint_eq(checked, 200);
}
END_TEST

/* The DP must see conversions: a table whose layer-wise best choices are
 * expensive to chain. */
START_TEST(test_exact_weighs_conversions)
{
	unsigned choices[3] = { 2, 2, 2 }, plan[3];
	double cost[3 * M] = { 0 }, trans[3 * M * M] = { 0 };
	struct ts_problem p = { .n = 3, .choices = choices, .cost = cost, .trans = trans };

	/* layer-wise best: 0, 1, 0 (cost 3); every change costs 10 */
	cost[0 * M + 0] = 1; cost[0 * M + 1] = 2;
	cost[1 * M + 0] = 2; cost[1 * M + 1] = 1;
	cost[2 * M + 0] = 1; cost[2 * M + 1] = 2;
	for (size_t i = 1; i < 3; i++) {
		trans[(i * M + 0) * M + 1] = 10;
		trans[(i * M + 1) * M + 0] = 10;
	}
	ck_assert_double_eq_tol(ts_exact(&p, plan), 4.0, 1e-12);
	ck_assert_uint_eq(plan[0], 0);
	ck_assert_uint_eq(plan[1], 0);
	ck_assert_uint_eq(plan[2], 0);
}
END_TEST

/* A measurement that the table does not fully explain: 3 % noise. */
static double
noisy(void *arg, const unsigned *plan)
{
	const struct table *t = arg;

	return ts_table_cost(&t->p, plan) * (1 + 0.03 * (unif() - 0.5));
}

START_TEST(test_rl_converges)
{
	unsigned reached = 0, beat_random = 0, tables = 20;

	for (unsigned k = 0; k < tables; k++) {
		struct table t;
		unsigned best[16], rl[16], rnd[16];
		double opt, got_rl, got_rnd;
		struct ts_opts o = { .episodes = 150, .seed = 7 + k, .alpha = 0.3, .replay = 128 };
		make_table(&t, 8, 5, 4.0);
		t.p.measure = noisy;
		t.p.arg = &t;
		opt = ts_exact(&t.p, best);
		ts_rl(&t.p, &o, rl, NULL);
		ts_random(&t.p, &o, rnd, NULL);
		got_rl = ts_table_cost(&t.p, rl);
		got_rnd = ts_table_cost(&t.p, rnd);
		reached += got_rl <= opt * 1.05;
		beat_random += got_rl <= got_rnd;
	}
	/* within 5 % of the optimum on every table, and better than random search
	 * (8 layers, ~3^8 plans, 150 measurements) on nearly all */
	ck_assert_msg(reached == tables, "RL within 5%% of the optimum on %u of %u tables", reached, tables);
	ck_assert_msg(beat_random >= tables - 2, "RL at least as good as random on %u of %u tables", beat_random, tables);
}
END_TEST

/* A table shaped like a real model's: 8 layers, 7 choices in 4 layout and
 * precision classes for the first six (2, in 2 classes, for the last two, as
 * linear layers), costs spread over 0.5..3.5x a layer's base, a few choices
 * close to the best, conversions between classes of up to 40 % of a base.
 * About 2 million plans; random search rarely gets within 5 %. */
struct ltable {
	struct table t;
	unsigned state[16 * M];
};

static void
make_layered_table(struct ltable *l)
{
	struct table *t = &l->t;
	double conv[4][4];

	memset(l, 0, sizeof(*l));
	t->n = 8;
	for (size_t i = 0; i < t->n; i++) {
		double base = 20 + 180 * unif();
		unsigned classes = i < 6 ? 4 : 2;
		t->choices[i] = i < 6 ? 7 : 2;
		for (unsigned b = 0; b < 4; b++)
			for (unsigned a = 0; a < 4; a++)
				conv[b][a] = a == b || i == 0 ? 0 : 0.4 * base * unif();
		for (unsigned a = 0; a < t->choices[i]; a++) {
			double u = unif();
			t->cost[i * M + a] = base * (0.5 + 3 * u * u);
			l->state[i * M + a] = classes == 4 ? (a < 4 ? 0 : a - 3) : a;
		}
		for (unsigned b = 0; i > 0 && b < t->choices[i - 1]; b++)
			for (unsigned a = 0; a < t->choices[i]; a++)
				t->trans[(i * M + b) * M + a] = conv[l->state[(i - 1) * M + b]][l->state[i * M + a]];
	}
	t->p = (struct ts_problem){ .n = t->n, .choices = t->choices, .cost = t->cost, .trans = t->trans,
		                    .state = l->state };
}

/* 10 % noise, as on a loaded machine, and 3 % the table does not explain */
static double
noisier(void *arg, const unsigned *plan)
{
	const struct table *t = arg;

	return ts_table_cost(&t->p, plan) * (1.03 + 0.1 * (unif() - 0.5));
}

/* A fresh model-shaped table measured by `measure`, and rl's plan for it
 * (into rl); the table's optimum. */
static double
rl_on_layered_table(struct ltable *l, double (*measure)(void *, const unsigned *), const struct ts_opts *o,
                    unsigned *rl)
{
	unsigned best[16];
	double opt;

	make_layered_table(l);
	l->t.p.measure = measure;
	l->t.p.arg = &l->t;
	opt = ts_exact(&l->t.p, best);
	ts_rl(&l->t.p, o, rl, NULL);
	return opt;
}

START_TEST(test_rl_converges_layered)
{
	unsigned reached = 0, beat_random = 0, tables = 20;

	for (unsigned k = 0; k < tables; k++) {
		struct ltable l;
		unsigned rl[16], rnd[16];
		double opt, got_rl, got_rnd;
		struct ts_opts o = ts_default_opts(60, 11 + k);
		opt = rl_on_layered_table(&l, noisier, &o, rl);
		ts_random(&l.t.p, &o, rnd, NULL);
		got_rl = ts_table_cost(&l.t.p, rl);
		got_rnd = ts_table_cost(&l.t.p, rnd);
		reached += got_rl <= opt * 1.05;
		beat_random += got_rl < got_rnd;
	}
	/* 60 measurements: within 5 % of the optimum on nearly every table
	 * (199 of 200 tables of this kind; 191 of 200 at 40), and better than
	 * random search on all */
	ck_assert_msg(reached >= tables - 1, "RL within 5%% of the optimum on %u of %u tables", reached, tables);
	ck_assert_msg(beat_random == tables, "RL better than random on %u of %u tables", beat_random, tables);
}
END_TEST

/* Layers timed alone cost more than in the chain (gearbox tune's tables sum
 * to 10-25 % above the measured plan): every measurement 20 % under the
 * table, 5 % noise. That shared bonus must not lift the values of the plans
 * tried first above the optimistic start of the choices never tried. */
static double
cheaper_in_chain(void *arg, const unsigned *plan)
{
	const struct table *t = arg;

	return ts_table_cost(&t->p, plan) * (0.8 + 0.05 * (unif() - 0.5));
}

START_TEST(test_rl_converges_when_table_overstates)
{
	unsigned reached = 0, tables = 20;

	for (unsigned k = 0; k < tables; k++) {
		struct ltable l;
		unsigned rl[16];
		struct ts_opts o = ts_default_opts(100, 23 + k);
		double opt = rl_on_layered_table(&l, cheaper_in_chain, &o, rl);
		reached += ts_table_cost(&l.t.p, rl) <= opt * 1.05;
	}
	ck_assert_msg(reached >= tables - 1, "RL within 5%% of the optimum on %u of %u tables", reached, tables);
}
END_TEST

/* The table of a g=2 tune of the bundled model at 2 threads (µs; conv
 * choices gemm, direct, wino2, wino4 in NCHW fp32, int8, direct-nhwc,
 * direct-blocked; linear gemm, int8), conversions between layouts or
 * precisions 1.5 µs. Measured end to end as there: fp32 layers 8 % above
 * their table cost and int8 ones 10 % under (ep 0 of that tune, gemm
 * throughout: +5 %; its int8 plans: -9 %), 5 % noise. conv2 in direct
 * (28.4) with int8 after it is a cheap plan 15 µs from the best (conv2 in
 * int8, 13.7). With values starting above the table's lower bound
 * (q_init 0.1) such a plan looked better than conv2 in int8 untried, and
 * 4 of 9 real tunes stopped 16-20 % above the optimum. */
static const unsigned *two_thread_state;

static double
two_thread_measure(void *arg, const unsigned *plan)
{
	const struct table *t = arg;
	double sum = 0;

	for (size_t i = 0; i < t->n; i++) {
		bool int8 = two_thread_state[i * M + plan[i]] == 1;
		sum += t->cost[i * M + plan[i]] * (int8 ? 0.90 : 1.08);
		if (i > 0)
			sum += t->trans[(i * M + plan[i - 1]) * M + plan[i]];
	}
	return sum * (1 + 0.05 * (unif() - 0.5));
}

START_TEST(test_rl_tries_the_cheapest_mid_chain)
{
	static const double conv[5][7] = {
		{ 16.7, 13.8, 102.8, 63.2, 16.3, 12.2, 12.7 }, { 83.2, 28.4, 89.5, 68.1, 13.7, 25.6, 25.5 },
		{ 80.9, 24.7, 63.8, 75.9, 10.5, 23.8, 20.4 },  { 179.7, 44.2, 100.3, 109.2, 17.2, 44.2, 40.6 },
		{ 134.3, 24.6, 77.2, 87.9, 10.3, 25.8, 21.3 },
	};
	static const double linear[3][2] = { { 5.9, 4.9 }, { 3.2, 3.1 }, { 0.6, 1.2 } };
	static const unsigned conv_class[7] = { 0, 0, 0, 0, 1, 2, 3 };
	static unsigned state[16 * M];
	struct table t;
	unsigned reached = 0, runs = 50, best[16];
	double opt;

	memset(&t, 0, sizeof(t));
	t.n = 8;
	for (size_t i = 0; i < t.n; i++) {
		t.choices[i] = i < 5 ? 7 : 2;
		for (unsigned a = 0; a < t.choices[i]; a++) {
			t.cost[i * M + a] = i < 5 ? conv[i][a] : linear[i - 5][a];
			state[i * M + a] = i < 5 ? conv_class[a] : a;
		}
	}
	for (size_t i = 1; i < t.n; i++)
		for (unsigned b = 0; b < t.choices[i - 1]; b++)
			for (unsigned a = 0; a < t.choices[i]; a++) {
				unsigned sb = state[(i - 1) * M + b], sa = state[i * M + a];
				/* a linear layer reads any layout: only the precision converts */
				bool differ = i < 5 ? sb != sa : (sb == 1) != (sa == 1);
				t.trans[(i * M + b) * M + a] = differ ? 1.5 : 0.0;
			}
	two_thread_state = state;
	t.p = (struct ts_problem){ .n = t.n, .choices = t.choices, .cost = t.cost, .trans = t.trans, .state = state,
		                   .measure = two_thread_measure, .arg = &t };
	opt = ts_exact(&t.p, best);
	for (unsigned k = 0; k < runs; k++) {
		unsigned rl[16];
		struct ts_opts o = ts_default_opts(100, 19 + k);
		ts_rl(&t.p, &o, rl, NULL);
		reached += ts_table_cost(&t.p, rl) <= opt * 1.05;
	}
	ck_assert_msg(reached >= runs - 2, "RL within 5%% of the table's optimum in %u of %u runs", reached, runs);
}
END_TEST

/* The trace is the best so far: never rising, ending at what was returned. */
/* The table's cost, except that the 10th measurement reads 30 % of it: a
 * plan measured in a quiet moment of a machine whose speed drifts. */
struct lucky {
	struct table t;
	unsigned calls;
	unsigned lucky_plan[16];
};

static double
lucky_measure(void *arg, const unsigned *plan)
{
	struct lucky *l = arg;
	double c = ts_table_cost(&l->t.p, plan);

	if (++l->calls != 10)
		return c;
	memcpy(l->lucky_plan, plan, l->t.n * sizeof(unsigned));
	return 0.3 * c;
}

/* The best single measurement does not win on its own: the finalists are
 * measured again, and what comes back is a plan's real cost. */
START_TEST(test_one_lucky_measurement_does_not_win)
{
	for (int k = 0; k < 2; k++) {
		struct lucky l = { 0 };
		unsigned plan[16], best[16];
		struct ts_opts o = ts_default_opts(100, 5);
		double got, opt;

		make_table(&l.t, 8, 5, 4.0);
		l.t.p.measure = lucky_measure;
		l.t.p.arg = &l;
		opt = ts_exact(&l.t.p, best);
		got = k == 0 ? ts_rl(&l.t.p, &o, plan, NULL) : ts_random(&l.t.p, &o, plan, NULL);
		ck_assert_uint_eq(l.calls, 100);
		ck_assert_double_eq_tol(got, ts_table_cost(&l.t.p, plan), 1e-9);
		ck_assert_double_le(ts_table_cost(&l.t.p, plan), ts_table_cost(&l.t.p, l.lucky_plan));
		if (k == 0)
			ck_assert_msg(got <= opt * 1.05, "rl %.2f against the optimum %.2f", got, opt);
	}
}
END_TEST

START_TEST(test_trace)
{
	struct table t;
	unsigned plan[16];
	double trace[100], best;
	struct ts_opts o = { .episodes = 100, .seed = 3, .replay = 16 };

	make_table(&t, 6, 4, 2.0);
	best = ts_rl(&t.p, &o, plan, trace);
	for (unsigned i = 1; i < 100; i++)
		ck_assert(trace[i] <= trace[i - 1]);
	ck_assert_double_eq_tol(trace[99], best, 1e-12);
	best = ts_random(&t.p, &o, plan, trace);
	ck_assert_double_eq_tol(trace[99], best, 1e-12);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("tune-search");
	TCase *tc = tcase_create("search");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_exact_is_brute_force);
	tcase_add_test(tc, test_exact_weighs_conversions);
	tcase_add_test(tc, test_rl_converges);
	tcase_add_test(tc, test_rl_converges_layered);
	tcase_add_test(tc, test_rl_converges_when_table_overstates);
	tcase_add_test(tc, test_rl_tries_the_cheapest_mid_chain);
	tcase_add_test(tc, test_one_lucky_measurement_does_not_win);
	tcase_add_test(tc, test_trace);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
