/* SPDX-License-Identifier: MIT */
/* bench/solver: the tenant solver's figures (never run by make check).
 *
 *   build/bench/solver [MODEL] [--instances N] [--limit-ms MS] [--only 1|2|3|4] [--lpsolve]
 *   (BENCH_OVERLOAD=1: heavier tenant sets; --only: one of the four runs below, 2 = 8 tenants with
 *   a power cap; --lpsolve: the whole MIP on lp_solve instead of the solver's own branch-and-bound)
 *
 * 1. Solve time and MIP size for 8 tenants on the simulated Odroid XU3 (13
 *    LITTLE and 19 big frequencies, the Mali GPU's 7), over random tenant
 *    sets (rates, deadlines, weights; with and without a power cap), the
 *    bundled model's MACs (scaled per tenant).
 * 2. The MIP against greedy (heaviest tenant first, best point that still
 *    fits) on the same instances and on larger ones (16 and 32 tenants):
 *    how often and by how much it is better, in served weight and in
 *    weighted accuracy.
 * Everything is simulated (platform models). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/dnn.h"
#include "policies/milp.h"
#include "policies/policy.h"
#include "policies/tenants.h"

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double
uniform(void)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return (double)(rng >> 11) / 9007199254740992.0;
}

static struct pol_sim sim;
static struct pol_model base;

static int
sim_measure(void *ctx, const struct pol_point *pt, double *us, char **cause)
{
	(void)cause;
	*us = pol_sim_latency(&sim, ctx, pt, 0.0);
	return 0;
}

/* candidates for the model with MACs x scale */
static unsigned
candidates(double scale, struct ten_candidate *out, unsigned max)
{
	static struct pol_predictor pr;
	struct pol_model m = base;
	struct pol_params all;

	for (unsigned g = 1; g <= m.groups; g++)
		m.macs[g] *= scale;
	pol_predictor_init(&pr, &m, sim.places, sim.nplaces);
	if (pol_predictor_calibrate(&pr, 1, sim_measure, &m, NULL, NULL) != 0)
		return 0;
	pol_params_defaults(&all, "all");
	return ten_candidates_from_predictor(&pr, &all, NULL, NULL, out, max);
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

struct tally {
	unsigned n, better, served_more, worse;
	double gain_sum, gain_max, rel_sum, weight_sum;
	double *ms, *ms_fit, *ms_drop;
	unsigned nfit, ndrop, unproven;
	unsigned rows, cols, bins, kept, total;
	long nodes;
};

static bool overload;
static int only;
static bool lpsolve;
static double limit_s = 1.0;

static void
run(unsigned ntenants, unsigned instances, bool power_cap, struct tally *t)
{
	static struct ten_candidate cands[8192];
	static struct ten_result r, g;
	struct ten_problem p;

	memset(t, 0, sizeof(*t));
	t->ms = calloc(instances, sizeof(double));
	t->ms_fit = calloc(instances, sizeof(double));
	t->ms_drop = calloc(instances, sizeof(double));
	for (unsigned k = 0; k < instances; k++) {
		char *cause = NULL;
		ten_problem_init(&p, sim.places, sim.nplaces);
		for (unsigned i = 0; i < ntenants; i++) {
			struct ten_tenant tt = { 0 };
			double scale = uniform() < 0.3 ? (overload ? 2 + 6 * uniform() : 2 + 2 * uniform()) : 1;
			unsigned n = candidates(scale, cands, 8192);
			snprintf(tt.name, sizeof(tt.name), "t%u", i);
			tt.rate_hz = overload ? 10 + 290 * uniform() : 10 + 90 * uniform();
			tt.deadline_us = overload ? 1500 + 18000 * uniform() : 2000 + 18000 * uniform();
			tt.weight = 1 + floor(3 * uniform());
			ten_problem_add(&p, &tt, cands, n, NULL);
		}
		if (power_cap)
			p.power_cap_w = 0.5 + 2.5 * uniform();
		p.time_limit_s = limit_s;
		if (lpsolve)
			p.solver = TEN_SOLVER_LPSOLVE;
		if (ten_solve(&p, false, &r, &cause) != 0) {
			fprintf(stderr, "solver: %s\n", cause);
			exit(1);
		}
		ten_solve_greedy(&p, &g);
		t->ms[t->n] = r.solve_cpu_us / 1e3;
		t->unproven += !r.proven;
		if (r.ndropped == 0)
			t->ms_fit[t->nfit++] = r.solve_cpu_us / 1e3;
		else
			t->ms_drop[t->ndrop++] = r.solve_cpu_us / 1e3;
		t->rows += r.rows, t->cols += r.cols, t->bins += r.binaries, t->kept += r.candidates_kept,
		        t->total += r.candidates_total;
		int c = ten_compare(&r, &g, 1e-6);
		if (c < 0)
			t->worse++;
		if (c > 0) {
			t->better++;
			if (r.dropped_weight < g.dropped_weight - 1e-9) {
				t->served_more++;
				t->weight_sum += g.dropped_weight - r.dropped_weight;
			} else {
				double gain = r.weighted_accuracy - g.weighted_accuracy;
				t->gain_sum += gain;
				t->gain_max = fmax(t->gain_max, gain);
				t->rel_sum += gain / fmax(g.weighted_accuracy, 1e-9);
			}
		}
		t->n++;
		t->nodes += r.nodes;
		ten_problem_clear(&p);
	}
}

static void
report(const char *what, unsigned ntenants, bool cap, struct tally *t)
{
	unsigned acc_better = t->better - t->served_more;

	qsort(t->ms, t->n, sizeof(double), cmp_double);
	printf("[simulated] %s, %u tenants%s%s, %u instances:\n", what, ntenants, cap ? ", power cap 0.5-3 W" : "",
	       overload ? ", overloaded (10-300/s, models up to 8x)" : " (10-100/s, models 1-4x)", t->n);
	printf("  MIP: mean %u rows x %u columns (%u binary); %u of %u candidates kept after pruning\n", t->rows / t->n,
	       t->cols / t->n, t->bins / t->n, t->kept / t->n, t->total / t->n);
	printf("  branch-and-bound nodes: %ld on average\n", t->nodes / (long)t->n);
	printf("  solve time (CPU time of the solving thread): median %.2f ms, p90 %.2f ms, max %.2f ms; %u not proven "
	       "optimal within the time limit (%.0f ms)\n",
	       t->ms[t->n / 2], t->ms[t->n * 9 / 10], t->ms[t->n - 1], t->unproven, limit_s * 1e3);
	qsort(t->ms_fit, t->nfit, sizeof(double), cmp_double);
	qsort(t->ms_drop, t->ndrop, sizeof(double), cmp_double);
	if (t->nfit)
		printf("    %u where every tenant fits: median %.2f ms, p90 %.2f ms, max %.2f ms\n", t->nfit,
		       t->ms_fit[t->nfit / 2], t->ms_fit[t->nfit * 9 / 10], t->ms_fit[t->nfit - 1]);
	if (t->ndrop)
		printf("    %u where some must go: median %.2f ms, p90 %.2f ms, max %.2f ms\n", t->ndrop,
		       t->ms_drop[t->ndrop / 2], t->ms_drop[t->ndrop * 9 / 10], t->ms_drop[t->ndrop - 1]);
	free(t->ms_fit);
	free(t->ms_drop);
	printf("  against greedy: better in %u (%u serve more weight: %.1f on average; %u the same weight at higher "
	       "weighted accuracy: +%.4f on average, +%.2f %%, at most +%.4f), equal in %u, worse in %u\n",
	       t->better, t->served_more, t->served_more ? t->weight_sum / t->served_more : 0, acc_better,
	       acc_better ? t->gain_sum / acc_better : 0, acc_better ? 100 * t->rel_sum / acc_better : 0, t->gain_max,
	       t->n - t->better - t->worse, t->worse);
	free(t->ms);
}

int
main(int argc, char **argv)
{
	const char *path = "models/fmnist-alexnet-g4.safetensors";
	unsigned instances = 40;
	struct dnn_model *model;
	char *cause = NULL;
	struct tally t;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--instances") && i + 1 < argc)
			instances = (unsigned)atoi(argv[++i]);
		else if (!strcmp(argv[i], "--lpsolve"))
			lpsolve = true;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			printf("usage: bench/solver [MODEL] [--instances N] [--limit-ms MS] [--only 1|2|3|4] [--lpsolve]\n"
			       "  runs: 1 = 8 tenants, 2 = 8 tenants with a power cap of 0.5-3 W, 3 = 16 and 4 = 32 tenants with\n"
			       "  one; --lpsolve: the whole MIP on lp_solve; BENCH_OVERLOAD=1: heavier tenant sets\n");
			return 0;
		} else if (!strcmp(argv[i], "--only") && i + 1 < argc)
			only = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--limit-ms") && i + 1 < argc)
			limit_s = atof(argv[++i]) / 1e3;
		else
			path = argv[i];
	}
	if (!milp_available()) {
		fprintf(stderr, "bench/solver: %s\n", milp_backend());
		return 1;
	}
	if ((model = dnn_model_load(path, &cause)) == NULL || pol_sim_load("xu3", &sim, &cause) != 0) {
		fprintf(stderr, "bench/solver: %s\n", cause);
		return 1;
	}
	pol_model_from_dnn(&base, model);
	printf("solver: %s; model %s; platform %s\n",
	       lpsolve ? milp_backend() : "branch-and-bound with lp_solve's relaxation", base.name, sim.name);
	if (getenv("BENCH_OVERLOAD"))
		overload = true;
	if (!only || only == 1)
		run(8, instances, false, &t), report("Odroid XU3", 8, false, &t);
	if (!only || only == 2)
		run(8, instances, true, &t), report("Odroid XU3", 8, true, &t);
	if (!only || only == 3)
		run(16, instances / 2 ? instances / 2 : 1, true, &t), report("Odroid XU3", 16, true, &t);
	if (!only || only == 4)
		run(32, instances / 4 ? instances / 4 : 1, true, &t), report("Odroid XU3", 32, true, &t);
	dnn_model_free(model);
	return 0;
}
