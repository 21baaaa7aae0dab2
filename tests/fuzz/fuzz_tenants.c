/* SPDX-License-Identifier: MIT */
/* Tenant files (policies/tenants_file.c, ten_file_load, as gearbox solve
 * --tenants reads them): what does not load says file:line (or the file) and
 * why; what loads holds only values in the documented ranges, and its
 * tenants go to the solver (policies/tenants.c) as gearbox solve hands them
 * over, on a small fixed platform with fixed candidates per tenant (scaled
 * by macs_scale, int8 copies with a sensitivity file) in place of the model
 * files it names: every tenant is accepted, greedy gives a result, and where
 * the instance is small the exhaustive search is never below greedy and the
 * MIP (when proven) equals it. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "policies/tenants.h"
#include "policies/tenants_file.h"
#include "tests/fuzz/fuzz.h"

#define CANDS 6
#define MAX_COMBINATIONS 4096.0

static struct pol_place places[2];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc, (void)argv;
	memset(places, 0, sizeof(places));
	snprintf(places[0].name, sizeof(places[0].name), "big");
	places[0].kind = POL_PLACE_CPU;
	places[0].max_threads = 4;
	places[0].nfreqs = 2;
	places[0].freqs_khz[0] = 1000000;
	places[0].freqs_khz[1] = 2000000;
	places[0].busy_w[0] = 0.5;
	places[0].busy_w[1] = 1.5;
	places[0].dvfs = true;
	snprintf(places[1].name, sizeof(places[1].name), "opencl:0");
	places[1].kind = POL_PLACE_OPENCL;
	places[1].is_gpu = true;
	places[1].max_threads = 1;
	places[1].nfreqs = 1;
	places[1].busy_w[0] = 2;
	return 0;
}

static bool
in(double v, double lo, double hi)
{
	return v >= lo && v <= hi;
}

/* What gearbox solve would compute from the model, made up: g 1..2 on big
 * (1 or 4 threads, either frequency) and g 2 on the device; weights of 1
 * MiB a group (scaled, 0.3 of it for int8), buffers a quarter of that. */
static unsigned
candidates(const struct ten_file_tenant *ft, struct ten_candidate *c)
{
	static const struct {
		unsigned g, place, threads, freq;
		double us, acc;
	} tab[CANDS] = {
		{ 1, 0, 1, 0, 800, 0.80 }, { 1, 0, 4, 1, 250, 0.80 }, { 2, 0, 1, 1, 900, 0.88 },
		{ 2, 0, 4, 0, 700, 0.88 }, { 2, 1, 1, 0, 300, 0.88 }, { 1, 1, 1, 0, 150, 0.80 },
	};
	unsigned n = 0;

	for (unsigned k = 0; k < CANDS; k++) {
		struct ten_candidate *q = &c[n++];
		const struct pol_place *pl = &places[tab[k].place];
		memset(q, 0, sizeof(*q));
		q->point.groups = tab[k].g;
		q->point.place = tab[k].place;
		q->point.threads = tab[k].threads;
		q->point.freq = tab[k].freq;
		q->point.khz = pl->freqs_khz[tab[k].freq];
		q->point.accuracy = tab[k].acc;
		q->point.latency_us = tab[k].us * ft->macs_scale;
		q->point.power_w = pl->busy_w[tab[k].freq] * tab[k].threads;
		q->point.energy_uj = q->point.power_w * q->point.latency_us;
		q->weight_bytes = 1048576.0 * tab[k].g * ft->macs_scale;
		q->mem_bytes = 262144.0 * tab[k].g;
	}
	if (ft->sensitivity[0] && ft->int8_speedup > 0)
		for (unsigned k = 0; k < CANDS; k++) {
			struct ten_candidate *q = &c[n++];
			*q = c[k];
			snprintf(q->plan, sizeof(q->plan), "int8");
			q->point.latency_us /= ft->int8_speedup;
			q->point.energy_uj /= ft->int8_speedup;
			q->point.accuracy -= 0.01;
			q->accuracy_predicted = true;
			q->weight_bytes *= 0.3;
		}
	return n;
}

static void
check_result(const struct ten_problem *p, const struct ten_result *r)
{
	double mem = 0;

	FUZZ_ASSERT(r->ndropped <= p->ntenants);
	for (unsigned i = 0; i < p->ntenants; i++) {
		FUZZ_ASSERT(r->a[i].cand >= -1 && r->a[i].cand < (int)p->ncands[i]);
		if (r->a[i].cand < 0)
			continue;
		const struct ten_candidate *c = &p->cands[i][r->a[i].cand];
		bool first = true;
		double most = c->weight_bytes;
		FUZZ_ASSERT(ten_candidate_ok(p, i, c));
		/* each model's (and plan's) weights once, the largest; buffers each */
		for (unsigned k = 0; k < p->ntenants; k++) {
			const struct ten_candidate *d = r->a[k].cand >= 0 ? &p->cands[k][r->a[k].cand] : NULL;
			if (k == i || d == NULL || strcmp(p->tenants[k].model, p->tenants[i].model) || strcmp(d->plan, c->plan))
				continue;
			first = first && k > i;
			most = fmax(most, d->weight_bytes);
		}
		mem += c->mem_bytes + (first ? most : 0);
	}
	FUZZ_ASSERT(fabs(mem - r->mem_bytes) <= 1e-6 * fmax(1, mem));
	FUZZ_ASSERT(p->memory_bytes <= 0 || mem <= p->memory_bytes * (1 + 1e-9) + 1e-6);
	FUZZ_ASSERT(!isnan(r->objective) && !isnan(r->dropped_weight));
}

static void
solve(const struct ten_file *f)
{
	static struct ten_problem p;
	static struct ten_result greedy, exact, mip;
	struct ten_candidate c[2 * CANDS];
	char *cause = NULL;

	ten_problem_init(&p, places, 2);
	p.objective = f->objective;
	p.power_cap_w = f->power_cap_w;
	p.memory_bytes = f->memory_mb * 1048576.0;
	p.max_util = f->max_util;
	p.margin = f->margin;
	p.time_limit_s = 1;
	/* gearboxd's case (one inference at a time per placement, tenants on
	 * one waiting for each other) for files with an even tenant count */
	p.serial = f->n % 2 == 0;
	for (unsigned i = 0; i < f->n; i++) {
		unsigned n = candidates(&f->tenant[i], c);
		/* the model as gearbox solve names it: tenants of one file and
		 * scale share its weights */
		struct ten_tenant t = f->tenant[i].t;
		const char *base = strrchr(f->tenant[i].path, '/');
		snprintf(t.model, sizeof(t.model), "%.40s x%g", base ? base + 1 : "bundled", f->tenant[i].macs_scale);
		int k = ten_problem_add(&p, &t, c, n, &cause);
		if (k < 0)
			fprintf(stderr, "fuzz-tenants: a loaded tenant is refused: %s\n", cause);
		FUZZ_ASSERT(k == (int)i);
	}
	ten_solve_greedy(&p, &greedy);
	check_result(&p, &greedy);
	if (ten_solve_exhaustive(&p, MAX_COMBINATIONS, &exact, &cause) == 0) {
		check_result(&p, &exact);
		FUZZ_ASSERT(ten_compare(&exact, &greedy, 1e-6) >= 0);
#ifdef HAVE_LPSOLVE
		/* the branch-and-bound, and lp_solve on the whole MIP */
		for (int kind = TEN_SOLVER_BB; kind <= TEN_SOLVER_LPSOLVE; kind++) {
			p.solver = (enum ten_solver)kind;
			if (ten_solve(&p, false, &mip, &cause) == 0) {
				check_result(&p, &mip);
				if (mip.proven && ten_compare(&mip, &exact, 1e-6) != 0)
					fprintf(stderr, "fuzz-tenants: %s %g/%.9g, exhaustive %g/%.9g\n", mip.method,
					        mip.dropped_weight, mip.objective, exact.dropped_weight, exact.objective);
				FUZZ_ASSERT(!mip.proven || ten_compare(&mip, &exact, 1e-6) == 0);
			} else
				free(cause), cause = NULL;
		}
#endif
	} else
		free(cause), cause = NULL;
	ten_problem_clear(&p);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct ten_file f;
	char path[64], *cause = NULL;
	int fd = fuzz_file(data, size, path);

	if (ten_file_load(path, &f, &cause) != 0) {
		FUZZ_ASSERT(cause != NULL && strstr(cause, path) != NULL);
		free(cause);
		close(fd);
		return 0;
	}
	FUZZ_ASSERT(cause == NULL);
	FUZZ_ASSERT(!strcmp(f.dir, "/proc/self/fd"));
	FUZZ_ASSERT(f.objective == TEN_MAX_ACCURACY || f.objective == TEN_MIN_ENERGY);
	FUZZ_ASSERT(in(f.power_cap_w, 0, 1e4) && in(f.memory_mb, 0, 1e7) && in(f.max_util, 0.01, 1) &&
	            in(f.margin, 0, 10));
	FUZZ_ASSERT(f.n >= 1 && f.n <= TEN_MAX_TENANTS);
	for (unsigned i = 0; i < f.n; i++) {
		const struct ten_file_tenant *t = &f.tenant[i];
		FUZZ_ASSERT(t->t.name[0] != '\0' && memchr(t->t.name, '\0', sizeof(t->t.name)) != NULL);
		for (unsigned j = 0; j < i; j++)
			FUZZ_ASSERT(strcmp(t->t.name, f.tenant[j].t.name) != 0);
		/* period_ms = 1e-3 is 1e6 Hz give or take the rounding of 1e3 / v */
		FUZZ_ASSERT(in(t->t.rate_hz, 1e-3 * (1 - 1e-12), 1e6 * (1 + 1e-12)) && in(t->t.deadline_us, 0, 1e9) && in(t->t.energy_uj, 0, 1e12) &&
		            in(t->t.min_accuracy, 0, 1) && in(t->t.weight, 1e-6, 1e6));
		FUZZ_ASSERT(in(t->macs_scale, 1e-3, 1e3) && (t->int8_speedup == 0 || in(t->int8_speedup, 0.1, 100)));
		/* relative names are joined to the file's folder: every path is absolute */
		FUZZ_ASSERT(t->path[0] == '\0' || t->path[0] == '/');
		FUZZ_ASSERT(t->sensitivity[0] == '\0' || t->sensitivity[0] == '/');
		FUZZ_ASSERT(memchr(t->path, '\0', sizeof(t->path)) != NULL &&
		            memchr(t->sensitivity, '\0', sizeof(t->sensitivity)) != NULL);
	}
	solve(&f);
	close(fd);
	return 0;
}
