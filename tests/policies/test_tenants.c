/* SPDX-License-Identifier: MIT */
/* policies/tenants: the MIP against exhaustive enumeration on many small
 * random instances (feasible and infeasible ones: tenants dropped by weight),
 * never worse than greedy on larger ones, what binds and why, memory with
 * the weights of one model shared by its tenants, and the simulated Odroid
 * XU3 with eight tenants. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policies/milp.h"
#include "policies/policy.h"
#include "policies/tenants.h"

static uint64_t rng = 88172645463325252ull;

static double
uniform(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static unsigned
below(unsigned n)
{
	return (unsigned)(uniform() * n) % n;
}

/* Accuracies on a grid of 0.001 (as measured on a test set), or any double
 * (predicted): the branch-and-bound's objective quantum, or none. */
static bool fine_accuracy;

/* Tenants of one or two models whose weights at g they share (a plan
 * "int8" with a copy of its own, 0.3 of the size), small buffers each, and
 * always a memory limit; else every point's memory its own buffers. */
static bool shared_models;
/* Set: every placement serial (gearboxd's workers), so that tenants sharing
 * one wait for each other's inferences. */
static bool serial_places;

/* A random platform of 1-3 placements and a random problem on it. */
static void
random_problem(struct ten_problem *p, unsigned max_tenants, unsigned max_cands)
{
	struct pol_place places[3];
	unsigned np = 1 + below(3);

	memset(places, 0, sizeof(places));
	for (unsigned q = 0; q < np; q++) {
		struct pol_place *pl = &places[q];
		snprintf(pl->name, sizeof(pl->name), "p%u", q);
		pl->kind = below(4) == 0 ? POL_PLACE_OPENCL : POL_PLACE_CPU;
		pl->max_threads = pl->kind == POL_PLACE_CPU ? 1 + below(4) : 1;
		pl->nfreqs = 1 + below(3);
		pl->dvfs = below(4) != 0;
		for (unsigned f = 0; f < pl->nfreqs; f++)
			pl->freqs_khz[f] = 500000 + 500000 * f;
	}
	ten_problem_init(p, places, np);
	p->objective = below(4) == 0 ? TEN_MIN_ENERGY : TEN_MAX_ACCURACY;
	p->margin = below(2) ? 0.1 : 0;
	p->power_cap_w = below(3) == 0 ? 0.2 + uniform() : 0;
	p->memory_bytes = below(3) == 0 ? (20 + below(60)) * 1048576.0 : 0;
	p->time_limit_s = 60; /* exact, however loaded the machine */
	p->serial = serial_places;
	unsigned nt = 1 + below(max_tenants), nmodels = 0;
	double model_mib[3] = { 0 };
	if (shared_models) {
		nmodels = 1 + below(2);
		for (unsigned m = 0; m < nmodels; m++)
			model_mib[m] = 3 + below(10); /* per group */
		p->memory_bytes = (10 + below(40)) * 1048576.0;
	}
	for (unsigned i = 0; i < nt; i++) {
		struct ten_tenant t = { 0 };
		struct ten_candidate c[64];
		unsigned nc = 1 + below(max_cands);
		snprintf(t.name, sizeof(t.name), "t%u", i);
		t.rate_hz = 20 + below(200);
		t.deadline_us = below(3) ? 1000 + below(9000) : 0;
		t.energy_uj = below(4) == 0 ? 2000 + below(8000) : 0;
		t.min_accuracy = below(4) == 0 ? 0.6 + 0.3 * uniform() : 0;
		t.weight = 1 + below(3);
		unsigned model = shared_models ? below(nmodels) : 0;
		if (shared_models)
			snprintf(t.model, sizeof(t.model), "m%u", model);
		for (unsigned j = 0; j < nc; j++) {
			struct pol_point *pt = &c[j].point;
			memset(&c[j], 0, sizeof(c[j]));
			pt->place = below(np);
			pt->freq = below(places[pt->place].nfreqs);
			pt->khz = places[pt->place].freqs_khz[pt->freq];
			pt->threads = 1 + below(places[pt->place].max_threads);
			pt->groups = 1 + below(4);
			pt->accuracy = fine_accuracy ? 0.5 + 0.45 * uniform() : 0.5 + 0.001 * below(450);
			pt->latency_us = 200 + below(8000);
			pt->energy_uj = 100 + below(9000);
			pt->power_w = pt->energy_uj / pt->latency_us;
			c[j].mem_bytes = (1 + below(30)) * 1048576.0;
			if (shared_models) {
				bool int8 = below(4) == 0;
				c[j].weight_bytes = model_mib[model] * pt->groups * (int8 ? 0.3 : 1) * 1048576.0;
				c[j].mem_bytes = (0.5 + 0.25 * below(8)) * 1048576.0;
				if (int8)
					snprintf(c[j].plan, sizeof(c[j].plan), "int8");
			}
		}
		ck_assert_int_eq(ten_problem_add(p, &t, c, nc, NULL), (int)i);
	}
}

/* The memory of a result, counted here: every served tenant's buffers, and
 * the weights of each (model, plan) once, its largest user's (a tenant with
 * no model name shares nothing). sum: every weight counted per tenant. */
static double
memory_of(const struct ten_problem *p, const struct ten_result *r, double *sum)
{
	double mem = 0;

	if (sum != NULL)
		*sum = 0;
	for (unsigned i = 0; i < p->ntenants; i++) {
		if (r->a[i].cand < 0)
			continue;
		const struct ten_candidate *c = &p->cands[i][r->a[i].cand];
		double most = c->weight_bytes;
		bool first = true;
		for (unsigned k = 0; k < p->ntenants && p->tenants[i].model[0]; k++) {
			if (k == i || r->a[k].cand < 0 || strcmp(p->tenants[k].model, p->tenants[i].model) ||
			    strcmp(p->cands[k][r->a[k].cand].plan, c->plan))
				continue;
			first = first && k > i;
			most = fmax(most, p->cands[k][r->a[k].cand].weight_bytes);
		}
		mem += c->mem_bytes + (first ? most : 0);
		if (sum != NULL)
			*sum += c->mem_bytes + c->weight_bytes;
	}
	return mem;
}

/* Checks a result meets every constraint on its own (not trusting evaluate). */
static void
assert_feasible(const struct ten_problem *p, const struct ten_result *r)
{
	double util[POL_MAX_PLACES] = { 0 }, power = 0, mem = memory_of(p, r, NULL);
	int freq[POL_MAX_PLACES];
#define LAT(c) ((c)->point.tail_us > 0 ? (c)->point.tail_us : (c)->point.latency_us)

	for (unsigned q = 0; q < POL_MAX_PLACES; q++)
		freq[q] = -1;
	for (unsigned i = 0; i < p->ntenants; i++) {
		if (r->a[i].cand < 0)
			continue;
		const struct ten_candidate *c = &p->cands[i][r->a[i].cand];
		const struct ten_tenant *t = &p->tenants[i];
		unsigned q = c->point.place;
		if (t->deadline_us > 0)
			ck_assert((c->point.tail_us > 0 ? c->point.tail_us : c->point.latency_us) * (1 + p->margin) <= t->deadline_us);
		if (t->energy_uj > 0)
			ck_assert(c->point.energy_uj * (1 + p->margin) <= t->energy_uj);
		if (t->min_accuracy > 0)
			ck_assert(c->point.accuracy >= t->min_accuracy);
		util[q] += t->rate_hz * c->point.latency_us * 1e-6 * (p->serial ? 1 : c->point.threads);
		power += t->rate_hz * c->point.energy_uj * 1e-6;
		/* serial: its deadline holds its latency and one of every other
		 * tenant's on its placement */
		for (unsigned k = 0; k < p->ntenants && p->serial && t->deadline_us > 0; k++)
			if (k != i && r->a[k].cand >= 0 && p->cands[k][r->a[k].cand].point.place == q)
				ck_assert_msg(LAT(c) * (1 + p->margin) + LAT(&p->cands[k][r->a[k].cand]) <= t->deadline_us + 1e-6,
				              "%s: tenant %u waits on tenant %u past its deadline", r->method, i, k);
		if (p->places[q].dvfs && p->places[q].nfreqs > 1) {
			ck_assert(freq[q] < 0 || freq[q] == (int)c->point.freq);
			freq[q] = (int)c->point.freq;
		}
	}
#undef LAT
	for (unsigned q = 0; q < p->nplaces; q++)
		ck_assert(util[q] <= (p->places[q].kind == POL_PLACE_CPU && !p->serial ? p->places[q].max_threads : 1) + 1e-9);
	if (p->power_cap_w > 0)
		ck_assert(power <= p->power_cap_w + 1e-9);
	if (p->memory_bytes > 0)
		ck_assert(mem <= p->memory_bytes + 1e-6);
	ck_assert_msg(fabs(mem - r->mem_bytes) <= 1e-6 * fmax(1, mem), "%s: memory %.0f, counted here %.0f", r->method,
	              r->mem_bytes, mem);
}

START_TEST(milp_equals_exhaustive)
{
	unsigned dropped = 0, served = 0, none = 0;

	if (!milp_available())
		return;
	for (unsigned k = 0; k < 600; k++) {
		struct ten_problem p;
		static struct ten_result a, b;
		char *cause = NULL;
		random_problem(&p, 4, 6);
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		ck_assert_msg(ten_solve_exhaustive(&p, 1e6, &b, &cause) == 0, "%s", cause);
		assert_feasible(&p, &a);
		assert_feasible(&p, &b);
		if (ten_compare(&a, &b, 1e-6) != 0 && getenv("DEBUG_DUMP")) {
			setenv("GEARBOX_MILP_DUMP", getenv("DEBUG_DUMP"), 1);
			ten_solve(&p, false, &a, &cause);
			for (unsigned i = 0; i < p.ntenants; i++)
				fprintf(stderr, "tenant %u: milp %d exhaustive %d\n", i, a.a[i].cand, b.a[i].cand);
		}
		ck_assert_msg(ten_compare(&a, &b, 1e-6) == 0,
		              "instance %u: milp dropped %g, objective %.9f; exhaustive dropped %g, objective %.9f", k,
		              a.dropped_weight, a.objective, b.dropped_weight, b.objective);
		if (a.ndropped == p.ntenants)
			none++;
		else if (a.ndropped > 0)
			dropped++;
		else
			served++;
		ten_problem_clear(&p);
	}
	/* both kinds of instance were met, many times */
	ck_assert_msg(dropped >= 60 && served >= 60, "%u with some dropped, %u all served, %u none", dropped, served, none);
}
END_TEST

/* Weights six orders of magnitude apart (a tenant file allows 1e-6 to 1e6):
 * the one-solve objective's penalty for a dropped weight would be millions of
 * times the objective, which lp_solve's simplex does not keep apart (it
 * called optimal a plan that served a worse set; fuzz-tenants found it). */
START_TEST(milp_weights_far_apart)
{
	static const double weights[] = { 1e-5, 1e-3, 1, 1, 2 };
	unsigned dropped = 0;

	if (!milp_available())
		return;
	for (unsigned k = 0; k < 300; k++) {
		struct ten_problem p;
		static struct ten_result a, b;
		char *cause = NULL;
		fine_accuracy = k % 2; /* off any grid: the branch-and-bound bounds weight and objective apart */
		random_problem(&p, 4, 6);
		for (unsigned i = 0; i < p.ntenants; i++)
			p.tenants[i].weight = weights[below(sizeof(weights) / sizeof(weights[0]))];
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		ck_assert_msg(ten_solve_exhaustive(&p, 1e6, &b, &cause) == 0, "%s", cause);
		assert_feasible(&p, &a);
		ck_assert_msg(ten_compare(&a, &b, 1e-6) == 0,
		              "instance %u: milp dropped %g, objective %.9f; exhaustive dropped %g, objective %.9f", k,
		              a.dropped_weight, a.objective, b.dropped_weight, b.objective);
		dropped += a.ndropped > 0;
		ten_problem_clear(&p);
	}
	fine_accuracy = false;
	ck_assert_msg(dropped >= 30, "only %u instances dropped a tenant", dropped);
}
END_TEST

/* Larger instances (up to 5 tenants of 8 points, 9^5 combinations), half
 * of them with accuracies off any grid. */
START_TEST(milp_equals_exhaustive_larger)
{
	unsigned dropped = 0, served = 0;

	if (!milp_available())
		return;
	for (unsigned k = 0; k < 150; k++) {
		struct ten_problem p;
		static struct ten_result a, b;
		char *cause = NULL;
		fine_accuracy = k % 2;
		random_problem(&p, 5, 8);
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		ck_assert_msg(ten_solve_exhaustive(&p, 1e6, &b, &cause) == 0, "%s", cause);
		assert_feasible(&p, &a);
		ck_assert_msg(ten_compare(&a, &b, 1e-6) == 0,
		              "instance %u: milp dropped %g, objective %.9f; exhaustive dropped %g, objective %.9f", k,
		              a.dropped_weight, a.objective, b.dropped_weight, b.objective);
		dropped += a.ndropped > 0 && a.ndropped < p.ntenants;
		served += a.ndropped == 0;
		ten_problem_clear(&p);
	}
	fine_accuracy = false;
	ck_assert_msg(dropped >= 15 && served >= 15, "%u with some dropped, %u all served", dropped, served);
}
END_TEST

/* The branch-and-bound against lp_solve's on the whole MIP, on instances
 * too large to enumerate (up to 8 tenants of 16 points). */
START_TEST(bb_equals_lpsolve)
{
	if (!milp_available())
		return;
	for (unsigned k = 0; k < 80; k++) {
		struct ten_problem p;
		static struct ten_result a, b;
		char *cause = NULL;
		fine_accuracy = k % 2;
		random_problem(&p, 8, 16);
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		p.solver = TEN_SOLVER_LPSOLVE;
		ck_assert_msg(ten_solve(&p, false, &b, &cause) == 0, "%s", cause);
		assert_feasible(&p, &a);
		assert_feasible(&p, &b);
		ck_assert_str_eq(b.method, "milp-lpsolve");
		if (a.proven && b.proven)
			ck_assert_msg(ten_compare(&a, &b, 1e-6) == 0,
			              "instance %u: bb dropped %g, objective %.9f; lp_solve dropped %g, objective %.9f", k,
			              a.dropped_weight, a.objective, b.dropped_weight, b.objective);
		ten_problem_clear(&p);
	}
	fine_accuracy = false;
}
END_TEST

START_TEST(milp_not_worse_than_greedy)
{
	unsigned better = 0;

	if (!milp_available())
		return;
	for (unsigned k = 0; k < 60; k++) {
		struct ten_problem p;
		static struct ten_result a, g;
		char *cause = NULL;
		random_problem(&p, 10, 40);
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		ten_solve_greedy(&p, &g);
		assert_feasible(&p, &a);
		assert_feasible(&p, &g);
		ck_assert_msg(ten_compare(&a, &g, 1e-6) >= 0, "instance %u: milp %g/%.6f below greedy %g/%.6f", k,
		              a.dropped_weight, a.objective, g.dropped_weight, g.objective);
		better += ten_compare(&a, &g, 1e-6) > 0;
		ten_problem_clear(&p);
	}
	ck_assert_msg(better > 0, "the MIP never did better than greedy");
}
END_TEST

/* Two tenants on one single-CPU placement, each filling it alone: the
 * heavier stays, the other is dropped, and the reason says why. */
START_TEST(drops_the_lighter)
{
	struct pol_place pl = { 0 };
	struct ten_problem p;
	struct ten_tenant a = { .name = "light", .rate_hz = 100, .deadline_us = 10000, .weight = 1 };
	struct ten_tenant b = { .name = "heavy", .rate_hz = 100, .deadline_us = 10000, .weight = 3 };
	struct ten_candidate c = { 0 };
	static struct ten_result r;
	char *cause = NULL;

	if (!milp_available())
		return;
	snprintf(pl.name, sizeof(pl.name), "solo");
	pl.max_threads = 1, pl.nfreqs = 1;
	c.point.threads = 1, c.point.groups = 1, c.point.accuracy = 0.9, c.point.latency_us = 6000;
	c.point.energy_uj = 100;
	ten_problem_init(&p, &pl, 1);
	ck_assert_int_eq(ten_problem_add(&p, &a, &c, 1, NULL), 0);
	ck_assert_int_eq(ten_problem_add(&p, &b, &c, 1, NULL), 1);
	ck_assert_msg(ten_solve(&p, true, &r, &cause) == 0, "%s", cause);
	ck_assert_int_eq(r.a[0].cand, -1);
	ck_assert_int_eq(r.a[1].cand, 0);
	ck_assert_double_eq_tol(r.dropped_weight, 1, 1e-9);
	ck_assert_msg(strstr(r.a[0].why, "utilisation of solo") != NULL, "%s", r.a[0].why);
	ck_assert(r.nbind >= 1 && r.bind[0].binds && r.bind[0].weight_gain > 0.5);
	ten_problem_clear(&p);
}
END_TEST

/* Two serial single-CPU placements and tenants whose every point is as
 * accurate on either: `rates` per tenant, one candidate per placement. */
static void
two_equal_cpus(struct ten_problem *p, const double *rates, unsigned n)
{
	struct pol_place pl[2];
	struct ten_candidate c[2];

	memset(pl, 0, sizeof(pl));
	memset(c, 0, sizeof(c));
	for (unsigned q = 0; q < 2; q++) {
		snprintf(pl[q].name, sizeof(pl[q].name), "cpu%u", q);
		pl[q].max_threads = 1, pl[q].nfreqs = 1;
		c[q].point.place = q, c[q].point.threads = 1, c[q].point.groups = 2;
		c[q].point.accuracy = 0.9, c[q].point.latency_us = 1000, c[q].point.energy_uj = 100;
	}
	ten_problem_init(p, pl, 2);
	p->serial = true;
	for (unsigned i = 0; i < n; i++) {
		struct ten_tenant t = { .rate_hz = rates[i], .deadline_us = 20000, .weight = 1 };
		snprintf(t.name, sizeof(t.name), "t%u", i);
		ck_assert_int_eq(ten_problem_add(p, &t, c, 2, NULL), (int)i);
	}
}

/* Equal accuracy everywhere: the plan spreads the load (the busiest tenant
 * alone, the two lighter ones together), never piling all on one CPU. */
START_TEST(ties_spread_the_load)
{
	static struct ten_problem p;
	static struct ten_result r;
	const double rates[3] = { 400, 200, 200 }; /* utilisation 0.4, 0.2, 0.2 */
	char *cause = NULL;

	if (!milp_available())
		return;
	for (int solver = 0; solver < 2; solver++) {
		two_equal_cpus(&p, rates, 3);
		p.solver = solver ? TEN_SOLVER_LPSOLVE : TEN_SOLVER_BB;
		ck_assert_msg(ten_solve(&p, false, &r, &cause) == 0, "%s", cause);
		ck_assert(r.all_served);
		unsigned q0 = p.cands[0][r.a[0].cand].point.place, q1 = p.cands[1][r.a[1].cand].point.place,
		         q2 = p.cands[2][r.a[2].cand].point.place;
		ck_assert_msg(q0 != q1 && q1 == q2, "solver %d: t0 on cpu%u, t1 on cpu%u, t2 on cpu%u", solver, q0, q1, q2);
		ck_assert_double_eq_tol(r.util[q0], 0.4, 1e-9);
		ten_problem_clear(&p);
	}
}
END_TEST

/* Equal accuracy and equal load either way: each tenant stays where the
 * plan in force put it, whichever way round that was. */
START_TEST(ties_keep_the_current_placement)
{
	static struct ten_problem p;
	static struct ten_result r;
	const double rates[2] = { 100, 100 };
	char *cause = NULL;

	if (!milp_available())
		return;
	for (int first = 0; first < 2; first++) {
		two_equal_cpus(&p, rates, 2);
		p.current_place[0] = first, p.current_place[1] = !first;
		ck_assert_msg(ten_solve(&p, false, &r, &cause) == 0, "%s", cause);
		ck_assert_int_eq(p.cands[0][r.a[0].cand].point.place, first);
		ck_assert_int_eq(p.cands[1][r.a[1].cand].point.place, !first);
		ten_problem_clear(&p);
		/* a new tenant (nowhere yet) beside them takes either, and the two
		 * keep theirs */
		const double three[3] = { 100, 100, 100 };
		two_equal_cpus(&p, three, 3);
		p.current_place[0] = first, p.current_place[1] = !first;
		ck_assert_msg(ten_solve(&p, false, &r, &cause) == 0, "%s", cause);
		ck_assert_int_eq(p.cands[0][r.a[0].cand].point.place, first);
		ck_assert_int_eq(p.cands[1][r.a[1].cand].point.place, !first);
		ten_problem_clear(&p);
	}
}
END_TEST

/* Two tenants that want different frequencies of one cluster: they share
 * one, and the explanation says the shared frequency binds. */
START_TEST(shared_frequency_binds)
{
	struct pol_place pl = { 0 };
	struct ten_problem p;
	struct ten_tenant t = { .rate_hz = 10, .deadline_us = 2000, .weight = 1 };
	struct ten_candidate c[2];

	memset(c, 0, sizeof(c));
	static struct ten_result r;
	char *cause = NULL;

	if (!milp_available())
		return;
	snprintf(pl.name, sizeof(pl.name), "big");
	pl.max_threads = 4, pl.nfreqs = 2, pl.dvfs = true, pl.freqs_khz[0] = 1000000, pl.freqs_khz[1] = 2000000;
	ten_problem_init(&p, &pl, 1);
	/* tenant 0 is best at the low frequency, tenant 1 at the high one */
	for (unsigned k = 0; k < 2; k++) {
		c[k].point.threads = 1, c[k].point.freq = k, c[k].point.latency_us = 1000, c[k].point.energy_uj = 100;
	}
	c[0].point.accuracy = 0.9, c[1].point.accuracy = 0.8;
	snprintf(t.name, sizeof(t.name), "low");
	ten_problem_add(&p, &t, c, 2, NULL);
	c[0].point.accuracy = 0.7, c[1].point.accuracy = 0.95;
	snprintf(t.name, sizeof(t.name), "high");
	ten_problem_add(&p, &t, c, 2, NULL);
	ck_assert_msg(ten_solve(&p, true, &r, &cause) == 0, "%s", cause);
	ck_assert_int_eq(r.a[0].cand, 1); /* 0.8 + 0.95 beats 0.9 + 0.7 */
	ck_assert_int_eq(r.a[1].cand, 1);
	ck_assert_int_eq(r.freq[0], 1);
	bool found = false;
	for (unsigned k = 0; k < r.nbind; k++)
		if (!strcmp(r.bind[k].what, "one frequency on big")) {
			found = r.bind[k].binds && fabs(r.bind[k].gain - 0.1) < 1e-3;
		}
	ck_assert(found);
	ck_assert_msg(strstr(r.a[0].why, "one frequency on big") != NULL, "%s", r.a[0].why);
	ck_assert_str_eq(r.a[1].why, "its best point even alone");
	ten_problem_clear(&p);
}
END_TEST

/* Shared weights under a memory limit: both solvers against exhaustive
 * enumeration, and instances where only the sharing lets the optimum fit
 * (its weights summed per tenant would be over the limit) met many times. */
START_TEST(shared_weights_equal_exhaustive)
{
	unsigned shared_fit = 0, dropped = 0, served = 0;

	if (!milp_available())
		return;
	shared_models = true;
	for (unsigned k = 0; k < 400; k++) {
		struct ten_problem p;
		static struct ten_result a, b, e, g;
		double sum;
		char *cause = NULL;
		fine_accuracy = k % 2;
		random_problem(&p, 4, 6);
		ck_assert_msg(ten_solve_exhaustive(&p, 1e6, &e, &cause) == 0, "%s", cause);
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		p.solver = TEN_SOLVER_LPSOLVE;
		ck_assert_msg(ten_solve(&p, false, &b, &cause) == 0, "%s", cause);
		ten_solve_greedy(&p, &g);
		assert_feasible(&p, &e);
		assert_feasible(&p, &a);
		assert_feasible(&p, &b);
		assert_feasible(&p, &g);
		ck_assert_msg(ten_compare(&a, &e, 1e-6) == 0,
		              "instance %u: bb dropped %g, objective %.9f; exhaustive dropped %g, objective %.9f", k,
		              a.dropped_weight, a.objective, e.dropped_weight, e.objective);
		if (b.proven)
			ck_assert_msg(ten_compare(&b, &e, 1e-6) == 0,
			              "instance %u: lp_solve dropped %g, objective %.9f; exhaustive dropped %g, objective %.9f", k,
			              b.dropped_weight, b.objective, e.dropped_weight, e.objective);
		ck_assert(ten_compare(&e, &g, 1e-6) >= 0);
		memory_of(&p, &e, &sum);
		shared_fit += sum > p.memory_bytes + 1e-6;
		dropped += e.ndropped > 0 && e.ndropped < p.ntenants;
		served += e.ndropped == 0;
		ten_problem_clear(&p);
	}
	shared_models = fine_accuracy = false;
	fprintf(stderr, "shared weights, 400 instances: %u fit only by sharing, %u with some dropped, %u all served\n",
	        shared_fit, dropped, served);
	ck_assert_msg(shared_fit >= 25 && dropped >= 40 && served >= 40,
	              "%u fit only by sharing, %u with some dropped, %u all served", shared_fit, dropped, served);
}
END_TEST

/* The same on instances too large to enumerate: the branch-and-bound
 * against lp_solve on the whole MIP. */
START_TEST(shared_weights_bb_equals_lpsolve)
{
	unsigned same = 0;

	if (!milp_available())
		return;
	shared_models = true;
	for (unsigned k = 0; k < 60; k++) {
		struct ten_problem p;
		static struct ten_result a, b;
		char *cause = NULL;
		fine_accuracy = k % 2;
		random_problem(&p, 8, 16);
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		p.solver = TEN_SOLVER_LPSOLVE;
		ck_assert_msg(ten_solve(&p, false, &b, &cause) == 0, "%s", cause);
		assert_feasible(&p, &a);
		assert_feasible(&p, &b);
		if (a.proven && b.proven) {
			ck_assert_msg(ten_compare(&a, &b, 1e-6) == 0,
			              "instance %u: bb dropped %g, objective %.9f; lp_solve dropped %g, objective %.9f", k,
			              a.dropped_weight, a.objective, b.dropped_weight, b.objective);
			same++;
		}
		ten_problem_clear(&p);
	}
	shared_models = fine_accuracy = false;
	ck_assert_uint_ge(same, 30);
}
END_TEST

/* One placement with room for all; tenant 0 (weight 1) and tenant 1
 * (weight 2) of the given models, each with a point at g=4 (weights 60 MiB)
 * and one at g=2 (30 MiB, less accurate), 5 MiB of buffers each. */
static void
two_tenants(struct ten_problem *p, const char *model0, const char *model1, const char *plan0, double memory_mib)
{
	struct pol_place pl = { 0 };
	struct ten_tenant t = { .rate_hz = 10, .deadline_us = 10000 };
	struct ten_candidate c[2];

	snprintf(pl.name, sizeof(pl.name), "big");
	pl.max_threads = 4, pl.nfreqs = 1;
	ten_problem_init(p, &pl, 1);
	p->memory_bytes = memory_mib * 1048576.0;
	memset(c, 0, sizeof(c));
	for (unsigned k = 0; k < 2; k++) {
		c[k].point.threads = 1, c[k].point.latency_us = 1000, c[k].point.energy_uj = 100;
		c[k].point.groups = k ? 2 : 4, c[k].point.accuracy = k ? 0.85 : 0.9;
		c[k].weight_bytes = (k ? 30 : 60) * 1048576.0;
		c[k].mem_bytes = 5 * 1048576.0;
	}
	for (unsigned i = 0; i < 2; i++) {
		snprintf(t.name, sizeof(t.name), "t%u", i);
		snprintf(t.model, sizeof(t.model), "%s", i ? model1 : model0);
		t.weight = 1 + i;
		for (unsigned k = 0; k < 2; k++)
			snprintf(c[k].plan, sizeof(c[k].plan), "%s", i ? "" : plan0);
		ck_assert_int_eq(ten_problem_add(p, &t, c, 2, NULL), (int)i);
	}
}

/* Every exact solver (the MIP ones where lp_solve is built in) gives
 * tenant i candidate want[i] (-1: dropped), using mem_mib. */
static void
assert_plan(const struct ten_problem *p0, const int *want, double mem_mib)
{
	static struct ten_problem p;
	static struct ten_result r;
	char *cause = NULL;

	p = *p0;
	for (int kind = -1; kind <= (int)TEN_SOLVER_LPSOLVE; kind++) {
		if (kind < 0)
			ck_assert_msg(ten_solve_exhaustive(&p, 1e6, &r, &cause) == 0, "%s", cause);
		else if (!milp_available())
			break;
		else {
			p.solver = (enum ten_solver)kind;
			ck_assert_msg(ten_solve(&p, true, &r, &cause) == 0, "%s", cause);
		}
		assert_feasible(&p, &r);
		for (unsigned i = 0; i < p.ntenants; i++)
			ck_assert_msg(r.a[i].cand == want[i], "%s: tenant %u got %d, not %d", r.method, i, r.a[i].cand, want[i]);
		ck_assert_msg(fabs(r.mem_bytes - mem_mib * 1048576.0) < 1, "%s: memory %.0f", r.method, r.mem_bytes);
	}
}

/* Two tenants of one model fit only because its weights are mapped once:
 * 60 MiB of weights and 2 x 5 MiB of buffers under 100 MiB (summed per
 * tenant, 130). Under 68 MiB a tenant at g=2 beside one at g=4 saves
 * nothing (the copy is as large as g=4 needs): both at g=2 (40 MiB), not
 * the lighter dropped. */
START_TEST(one_model_shares_weights)
{
	struct ten_problem p;
	static struct ten_result g;
	static const int both4[2] = { 0, 0 }, both2[2] = { 1, 1 };

	two_tenants(&p, "net", "net", "", 100);
	assert_plan(&p, both4, 70);
	ten_solve_greedy(&p, &g);
	ck_assert(g.all_served && g.a[0].cand == 0 && g.a[1].cand == 0);
	ck_assert_double_eq_tol(g.weight_bytes, 60 * 1048576.0, 1);
	ten_problem_clear(&p);

	two_tenants(&p, "net", "net", "", 68);
	assert_plan(&p, both2, 40);
	ten_problem_clear(&p);
}
END_TEST

/* Two models under 100 MiB: 65 + 65 do not fit at g=4; the heavier keeps
 * g=4 and the lighter takes g=2 (30 + 5 MiB beside 65). Under 66 MiB not
 * even both at g=2 (70) fit: the lighter is dropped, and memory binds. The
 * same with one model on two plans (another precision's weights are a copy
 * of their own): shared, both at g=2 would take 40. */
START_TEST(two_models_do_not_share)
{
	struct ten_problem p;
	static struct ten_result r;
	static const int mixed[2] = { 1, 0 }, light_dropped[2] = { -1, 0 };
	char *cause = NULL;

	two_tenants(&p, "net", "other", "", 100);
	assert_plan(&p, mixed, 100);
	ten_problem_clear(&p);

	two_tenants(&p, "net", "other", "", 66);
	assert_plan(&p, light_dropped, 65);
	if (milp_available()) {
		ck_assert_msg(ten_solve(&p, true, &r, &cause) == 0, "%s", cause);
		ck_assert_msg(strstr(r.a[0].why, "memory") != NULL, "%s", r.a[0].why);
	}
	ten_problem_clear(&p);

	/* one model, but tenant 0 on another plan: a copy of its own */
	two_tenants(&p, "net", "net", "int8", 66);
	assert_plan(&p, light_dropped, 65);
	ten_problem_clear(&p);
}
END_TEST

static struct {
	const struct pol_sim *sim;
	const struct pol_model *model;
} sim_ctx;

static int
sim_measure(void *ctx, const struct pol_point *pt, double *us, char **cause)
{
	(void)ctx, (void)cause;
	*us = pol_sim_latency(sim_ctx.sim, sim_ctx.model, pt, 0.0);
	return 0;
}

/* The simulated XU3 (13 and 19 frequencies, a GPU) with eight tenants of a
 * model with realistic MACs: solved, every tenant served. */
START_TEST(xu3_eight_tenants)
{
	static struct pol_sim sim;
	static struct pol_predictor pr;
	static struct ten_candidate cands[8192];
	static struct ten_result r, g;
	struct pol_model m = { 0 };
	struct pol_params all;
	struct ten_problem p;
	char *cause = NULL;

	if (!milp_available())
		return;
	ck_assert_msg(pol_sim_load("xu3", &sim, &cause) == 0, "%s", cause);
	snprintf(m.name, sizeof(m.name), "synthetic");
	m.groups = 4;
	for (unsigned gg = 1; gg <= 4; gg++)
		m.macs[gg] = 1.5e6 * gg * gg, m.accuracy[gg] = 0.80 + 0.03 * gg;
	pol_predictor_init(&pr, &m, sim.places, sim.nplaces);
	sim_ctx.sim = &sim, sim_ctx.model = &m;
	ck_assert_msg(pol_predictor_calibrate(&pr, 1, sim_measure, &sim_ctx, NULL, &cause) == 0, "%s", cause);
	pol_params_defaults(&all, "all");
	unsigned n = ten_candidates_from_predictor(&pr, &all, NULL, NULL, cands, 8192);
	ck_assert_uint_gt(n, 400);
	ten_problem_init(&p, sim.places, sim.nplaces);
	p.time_limit_s = 60;
	for (unsigned i = 0; i < 8; i++) {
		struct ten_tenant t = { .rate_hz = 10 + 5 * i, .deadline_us = 8000 + 2000 * (i % 4), .weight = 1 + i % 2 };
		snprintf(t.name, sizeof(t.name), "t%u", i);
		ck_assert_int_eq(ten_problem_add(&p, &t, cands, n, NULL), (int)i);
	}
	ck_assert_msg(ten_solve(&p, true, &r, &cause) == 0, "%s", cause);
	ten_solve_greedy(&p, &g);
	assert_feasible(&p, &r);
	ck_assert(ten_compare(&r, &g, 1e-6) >= 0);
	ck_assert_msg(r.all_served, "dropped %u", r.ndropped);
	ck_assert(r.candidates_kept < r.candidates_total);
	fprintf(stderr,
	        "xu3, 8 tenants: %u of %u candidates kept, MIP %u rows x %u cols (%u binary), %.1f ms (%.1f ms CPU), %ld nodes\n",
	        r.candidates_kept, r.candidates_total, r.rows, r.cols, r.binaries, r.solve_us / 1e3, r.solve_cpu_us / 1e3,
	        r.nodes);
	ten_problem_clear(&p);
}
END_TEST


/* The XU3 with a power cap, where many plans are within 0.01 % of accuracy
 * of each other (the bundled model's accuracies, two model sizes): the
 * branch-and-bound against lp_solve's on the whole MIP. */
START_TEST(xu3_power_cap_equals_lpsolve)
{
	static struct pol_sim sim;
	static struct pol_predictor pr;
	static struct ten_candidate cands[2][8192];
	static struct ten_result a, b;
	static const double acc[5] = { 0, 0.9065, 0.9111, 0.9132, 0.9154 };
	unsigned n[2], same = 0;
	char *cause = NULL;

	if (!milp_available())
		return;
	ck_assert_msg(pol_sim_load("xu3", &sim, &cause) == 0, "%s", cause);
	for (unsigned s = 0; s < 2; s++) {
		struct pol_model m = { 0 };
		struct pol_params all;
		snprintf(m.name, sizeof(m.name), "synthetic");
		m.groups = 4;
		for (unsigned gg = 1; gg <= 4; gg++)
			m.macs[gg] = (s ? 2.5 : 1) * 1.5e6 * gg * gg, m.accuracy[gg] = acc[gg];
		pol_predictor_init(&pr, &m, sim.places, sim.nplaces);
		sim_ctx.sim = &sim, sim_ctx.model = &m;
		ck_assert_msg(pol_predictor_calibrate(&pr, 1, sim_measure, &sim_ctx, NULL, &cause) == 0, "%s", cause);
		pol_params_defaults(&all, "all");
		n[s] = ten_candidates_from_predictor(&pr, &all, NULL, NULL, cands[s], 8192);
	}
	for (unsigned k = 0; k < 12; k++) {
		struct ten_problem p;
		ten_problem_init(&p, sim.places, sim.nplaces);
		p.time_limit_s = 60;
		p.power_cap_w = 0.2 + 1.5 * uniform();
		for (unsigned i = 0, nt = 3 + below(2); i < nt; i++) {
			unsigned s = below(2);
			struct ten_tenant t = { .rate_hz = 10 + 90 * uniform(), .deadline_us = 3000 + 15000 * uniform(),
				                .weight = 1 + below(3) };
			snprintf(t.name, sizeof(t.name), "t%u", i);
			ck_assert_int_eq(ten_problem_add(&p, &t, cands[s], n[s], NULL), (int)i);
		}
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		p.solver = TEN_SOLVER_LPSOLVE;
		ck_assert_msg(ten_solve(&p, false, &b, &cause) == 0, "%s", cause);
		assert_feasible(&p, &a);
		ck_assert(a.proven);
		if (b.proven) {
			ck_assert_msg(ten_compare(&a, &b, 1e-6) == 0,
			              "instance %u: bb dropped %g, objective %.9f; lp_solve dropped %g, objective %.9f", k,
			              a.dropped_weight, a.objective, b.dropped_weight, b.objective);
			same++;
		}
		ten_problem_clear(&p);
	}
	ck_assert_uint_ge(same, 6);
}
END_TEST

/* Serial placements: the waiting rule in every solver, against exhaustive
 * enumeration and each other. */
START_TEST(serial_equals_exhaustive)
{
	unsigned shared = 0;

	if (!milp_available())
		return;
	serial_places = true;
	for (unsigned k = 0; k < 400; k++) {
		struct ten_problem p;
		static struct ten_result a, b, c, g;
		char *cause = NULL;
		random_problem(&p, 4, 6);
		ck_assert_msg(ten_solve(&p, false, &a, &cause) == 0, "%s", cause);
		ck_assert_msg(ten_solve_exhaustive(&p, 1e6, &b, &cause) == 0, "%s", cause);
		p.solver = TEN_SOLVER_LPSOLVE;
		ck_assert_msg(ten_solve(&p, false, &c, &cause) == 0, "%s", cause);
		ten_solve_greedy(&p, &g);
		assert_feasible(&p, &a);
		assert_feasible(&p, &b);
		assert_feasible(&p, &c);
		assert_feasible(&p, &g);
		ck_assert_msg(ten_compare(&a, &b, 1e-6) == 0, "instance %u: bb %g/%.9f, exhaustive %g/%.9f", k,
		              a.dropped_weight, a.objective, b.dropped_weight, b.objective);
		ck_assert_msg(ten_compare(&c, &b, 1e-6) == 0, "instance %u: lp_solve %g/%.9f, exhaustive %g/%.9f", k,
		              c.dropped_weight, c.objective, b.dropped_weight, b.objective);
		ck_assert(ten_compare(&g, &b, 1e-6) <= 0);
		for (unsigned i = 0; i < p.ntenants; i++)
			for (unsigned j = i + 1; j < p.ntenants; j++)
				if (b.a[i].cand >= 0 && b.a[j].cand >= 0 &&
				    p.cands[i][b.a[i].cand].point.place == p.cands[j][b.a[j].cand].point.place)
					shared++, i = j = p.ntenants;
		ten_problem_clear(&p);
	}
	serial_places = false;
	/* instances where tenants do share a placement, checked above */
	ck_assert_msg(shared >= 40, "only %u instances share a placement", shared);
}
END_TEST

/* bench/tenants' case: two single-CPU placements, a tight-deadline tenant
 * and two that would hold it up. It gets a CPU of its own, at full width. */
START_TEST(tight_tenant_waits_for_no_one)
{
	struct pol_place places[2];
	struct ten_problem p;
	static struct ten_result r;
	char *cause = NULL;
	/* deadline, g=1 and g=4 latencies (us); accuracy 0.90 and 0.915 */
	const double spec[3][3] = { { 3700, 250, 650 }, { 840, 200, 650 }, { 1440, 200, 530 } };

	if (!milp_available())
		return;
	memset(places, 0, sizeof(places));
	for (unsigned q = 0; q < 2; q++) {
		snprintf(places[q].name, sizeof(places[q].name), "cluster0:cpu%u", q);
		places[q].kind = POL_PLACE_CPU, places[q].max_threads = 1, places[q].nfreqs = 1;
	}
	ten_problem_init(&p, places, 2);
	p.serial = true, p.margin = 0.1, p.max_util = 0.8;
	for (unsigned i = 0; i < 3; i++) {
		struct ten_tenant t = { .rate_hz = 40, .deadline_us = spec[i][0], .weight = 1 };
		struct ten_candidate c[4];
		snprintf(t.name, sizeof(t.name), "%c", 'A' + i);
		memset(c, 0, sizeof(c));
		for (unsigned j = 0; j < 4; j++) {
			c[j].point.place = j / 2, c[j].point.threads = 1, c[j].point.groups = j % 2 ? 4 : 1;
			c[j].point.latency_us = spec[i][j % 2 ? 2 : 1];
			c[j].point.accuracy = j % 2 ? 0.915 : 0.90;
		}
		ck_assert_int_eq(ten_problem_add(&p, &t, c, 4, NULL), (int)i);
	}
	ck_assert_msg(ten_solve(&p, true, &r, &cause) == 0, "%s", cause);
	assert_feasible(&p, &r);
	ck_assert(r.all_served);
	for (unsigned i = 0; i < 3; i++)
		ck_assert_int_eq(p.cands[i][r.a[i].cand].point.groups, 4);
	/* B alone; A and C together on the other CPU (C: 530 x 1.1 + 650 <= 1440) */
	ck_assert_uint_ne(p.cands[1][r.a[1].cand].point.place, p.cands[0][r.a[0].cand].point.place);
	ck_assert_uint_eq(p.cands[2][r.a[2].cand].point.place, p.cands[0][r.a[0].cand].point.place);
	ten_problem_clear(&p);
}
END_TEST

static Suite *
suite(void)
{
	Suite *s = suite_create("tenants");
	TCase *tc = tcase_create("solver");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, milp_equals_exhaustive);
	tcase_add_test(tc, milp_weights_far_apart);
	tcase_add_test(tc, milp_equals_exhaustive_larger);
	tcase_add_test(tc, bb_equals_lpsolve);
	tcase_add_test(tc, milp_not_worse_than_greedy);
	tcase_add_test(tc, drops_the_lighter);
	tcase_add_test(tc, shared_frequency_binds);
	tcase_add_test(tc, ties_spread_the_load);
	tcase_add_test(tc, ties_keep_the_current_placement);
	tcase_add_test(tc, shared_weights_equal_exhaustive);
	tcase_add_test(tc, shared_weights_bb_equals_lpsolve);
	tcase_add_test(tc, one_model_shares_weights);
	tcase_add_test(tc, two_models_do_not_share);
	tcase_add_test(tc, xu3_eight_tenants);
	tcase_add_test(tc, xu3_power_cap_equals_lpsolve);
	tcase_add_test(tc, serial_equals_exhaustive);
	tcase_add_test(tc, tight_tenant_waits_for_no_one);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	if (!milp_available())
		fprintf(stderr, "built without lp_solve: the solver tests only check that it says so\n");
	return run_suite(suite());
}
