/* SPDX-License-Identifier: MIT */
/* The tenant solver (policies/tenants.h): the MIP, its exhaustive reference,
 * the greedy baseline, and the explanation of what binds.
 *
 * MIP (columns):
 *   x[i][j]  binary: tenant i runs its kept candidate j
 *   d[i]     binary: tenant i is dropped
 *   y[p][f]  binary: DVFS placement p runs at frequency f (only the
 *            frequencies some kept candidate uses)
 *   w[s]     continuous: the size of copy s of weights, one per model and
 *            plan whose kept points two tenants or more have (with a
 *            memory limit only). Tenants of one model share its mapped
 *            weights: the copy is as large as its largest user's g needs.
 * rows:
 *   sum_j x[i][j] + d[i] = 1                       per tenant
 *   sum_f y[p][f] <= 1                             per DVFS placement
 *   sum_{j at (p,f)} x[i][j] - y[p][f] <= 0        per tenant, placement, frequency
 *   sum_ij rate_i lat_ij threads_ij x[i][j] <= max_util x cpus_p   per placement
 *   sum_ij rate_i energy_ij x[i][j] <= power cap   (if any)
 *   sum_ij (buf_ij [+ wt_ij]) x[i][j] + sum_s w[s] <= memory   (if any;
 *            wt_ij where its copy has one tenant, else w[s] counts it)
 *   sum_{j in s} wt_ij x[i][j] - w[s] <= 0         per shared copy s and tenant i of it
 * objective: sum_ij c_ij x[i][j], c = w x accuracy (- 1e-6 x power), or
 * -w x power (+ 1e-6 x w x accuracy); when not everyone fits, - M w_i d[i]
 * with M above the objective's whole range (tenants.c: solve_lex).
 * Candidates that miss their tenant's budgets or cannot fit alone are left
 * out, and so is every candidate dominated by another of the same tenant at
 * the same placement and frequency (no better objective, no more of any
 * resource that is limited: power only with a power cap or the energy
 * objective, memory only with a memory limit, where of one copy of weights
 * no more weights and no more buffers, of another no more in all than the
 * dominated one's buffers alone, since its copy may stay for other tenants
 * of the model; a tenant alone with its model compares the sums): with a
 * deadline met, one thread more only costs utilisation, energy and power,
 * so this keeps about one point per (placement, frequency, g, plan). A
 * frequency whose every point is dominated by one at another frequency of
 * the same placement goes too (without a power cap, the maximum-accuracy
 * objective keeps only each placement's fastest frequency; polish picks
 * the least power afterwards).
 *
 * The MIP is solved by solve_bb (a depth-first branch-and-bound over the
 * tenants, bounded by the Lagrangian relaxation with the multipliers of
 * lp_solve's linear relaxation; memory charged to each tenant as its
 * buffers and its share of its copy's weights, bb_memory_held), or whole by
 * lp_solve (TEN_SOLVER_LPSOLVE: solve_lex), which the tests compare. The
 * exhaustive search and greedy count each copy's weights once as they go
 * (memory_added). */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cause.h"
#include "policies/milp.h"
#include "policies/tenants.h"


void
ten_problem_init(struct ten_problem *p, const struct pol_place *places, unsigned nplaces)
{
	memset(p, 0, sizeof(*p));
	p->nplaces = nplaces > POL_MAX_PLACES ? POL_MAX_PLACES : nplaces;
	memcpy(p->places, places, p->nplaces * sizeof(*places));
	p->max_util = 1.0;
}

void
ten_problem_clear(struct ten_problem *p)
{
	for (unsigned i = 0; i < p->ntenants; i++)
		free(p->cands[i]);
	p->ntenants = 0;
}

int
ten_problem_add(struct ten_problem *p, const struct ten_tenant *t, const struct ten_candidate *c, unsigned n,
                char **cause)
{
	unsigned i = p->ntenants;

	if (i == TEN_MAX_TENANTS)
		return set_cause(cause, "too many tenants (at most %d)", TEN_MAX_TENANTS);
	if (!(t->rate_hz > 0) || !(t->weight > 0))
		return set_cause(cause, "tenant %s: rate and weight must be positive", t->name);
	for (unsigned j = 0; j < n; j++)
		if (c[j].point.place >= p->nplaces || c[j].point.freq >= p->places[c[j].point.place].nfreqs ||
		    c[j].point.threads == 0)
			return set_cause(cause, "tenant %s: candidate %u names no placement/frequency of the platform", t->name,
			                 j);
	if ((p->cands[i] = malloc((n ? n : 1) * sizeof(*c))) == NULL)
		return set_cause(cause, "out of memory");
	memcpy(p->cands[i], c, n * sizeof(*c));
	p->ncands[i] = n;
	p->tenants[i] = *t;
	p->current_place[i] = -1;
	p->ntenants++;
	return (int)i;
}

double
ten_util(const struct ten_tenant *t, const struct ten_candidate *c)
{
	return t->rate_hz * c->point.latency_us * 1e-6 * c->point.threads;
}

double
ten_power(const struct ten_tenant *t, const struct ten_candidate *c)
{
	return t->rate_hz * c->point.energy_uj * 1e-6;
}

static double
capacity(const struct ten_problem *p, unsigned place)
{
	const struct pol_place *pl = &p->places[place];
	return (pl->kind == POL_PLACE_CPU && !p->serial ? pl->max_threads : 1) * (p->max_util > 0 ? p->max_util : 1.0);
}

/* What a candidate takes of its placement's capacity. */
static double
util_of(const struct ten_problem *p, unsigned i, const struct ten_candidate *c)
{
	const struct ten_tenant *t = &p->tenants[i];
	return p->serial ? t->rate_hz * c->point.latency_us * 1e-6 : ten_util(t, c);
}

static bool
shared_freq(const struct ten_problem *p, unsigned place)
{
	return p->places[place].dvfs && p->places[place].nfreqs > 1;
}

/* Unknown accuracy (negative): more groups are taken to be better, as the
 * per-request selection does. */
static double
accuracy_of(const struct ten_candidate *c)
{
	return c->point.accuracy >= 0 ? c->point.accuracy : c->point.groups * 1e-6;
}

/* What a candidate adds to the objective (always maximised). No
 * tie-breaking term: with one (1e-6 x power beside the accuracy) lp_solve
 * took ten to a hundred times longer to prove optimality, over the many
 * plans of equal accuracy, and failed numerically on some; ties are broken
 * after the solve instead (spread, then polish: least power for the same g and
 * placements). */
static double
contribution(const struct ten_problem *p, unsigned i, const struct ten_candidate *c)
{
	const struct ten_tenant *t = &p->tenants[i];
	double w = t->weight;

	if (p->objective == TEN_MIN_ENERGY)
		return -w * ten_power(t, c);
	return w * accuracy_of(c);
}

bool
ten_candidate_ok(const struct ten_problem *p, unsigned i, const struct ten_candidate *c)
{
	const struct ten_tenant *t = &p->tenants[i];
	double lat = c->point.tail_us > 0 ? c->point.tail_us : c->point.latency_us;

	if (c->point.place >= p->nplaces || c->point.threads > p->places[c->point.place].max_threads)
		return false;
	if (t->deadline_us > 0 && lat * (1 + p->margin) > t->deadline_us)
		return false;
	if (t->energy_uj > 0 && c->point.energy_uj * (1 + p->margin) > t->energy_uj)
		return false;
	if (t->min_accuracy > 0 && accuracy_of(c) < t->min_accuracy)
		return false;
	if (util_of(p, i, c) > capacity(p, c->point.place) + 1e-12)
		return false;
	if (p->power_cap_w > 0 && ten_power(t, c) > p->power_cap_w + 1e-12)
		return false;
	if (p->memory_bytes > 0 && c->weight_bytes + c->mem_bytes > p->memory_bytes + 1e-6)
		return false;
	return true;
}

/* ---- waiting on a serial placement ------------------------------------------------ */

static double
latency_of(const struct ten_candidate *c)
{
	return c->point.tail_us > 0 ? c->point.tail_us : c->point.latency_us;
}

/* On a serial placement (gearboxd's workers: one inference at a time, not
 * preempted) a request that arrives while another tenant's runs waits for
 * it. Utilisation alone let bench/tenants put a tenant with an 840 us
 * deadline beside one whose 650 us inferences it then waited behind (98.4 %
 * of its deadlines met where it alone met 99.9 %). So two tenants share a
 * serial placement only when each one's deadline holds its own latency,
 * with the margin, plus one of the other's. */
static bool
waits_too_long(const struct ten_problem *p, unsigned i, const struct ten_candidate *a, unsigned k,
               const struct ten_candidate *b)
{
	const struct ten_tenant *ti = &p->tenants[i], *tk = &p->tenants[k];

	if (!p->serial || a->point.place != b->point.place)
		return false;
	return !ten_may_share(ti->deadline_us, latency_of(a), tk->deadline_us, latency_of(b), p->margin);
}

bool
ten_may_share(double deadline_a_us, double latency_a_us, double deadline_b_us, double latency_b_us, double margin)
{
	return !(deadline_a_us > 0 && latency_a_us * (1 + margin) + latency_b_us > deadline_a_us + 1e-9) &&
	       !(deadline_b_us > 0 && latency_b_us * (1 + margin) + latency_a_us > deadline_b_us + 1e-9);
}

/* Whether tenant i at c can share with the tenants k < n that choice
 * places (choice[k] >= 0). */
static bool
waits_fit(const struct ten_problem *p, const int *choice, unsigned n, unsigned i, const struct ten_candidate *c)
{
	if (!p->serial)
		return true;
	for (unsigned k = 0; k < n; k++)
		if (k != i && choice[k] >= 0 && waits_too_long(p, i, c, k, &p->cands[k][choice[k]]))
			return false;
	return true;
}

void
ten_candidate_describe(const struct ten_problem *p, const struct ten_candidate *c, char *buf, unsigned size)
{
	const struct pol_place *pl = &p->places[c->point.place];
	char f[32] = "";

	if (pl->freqs_khz[c->point.freq] > 0)
		snprintf(f, sizeof(f), " @%lu MHz", pl->freqs_khz[c->point.freq] / 1000);
	snprintf(buf, size, "g=%u %s x%u%s%s%s", c->point.groups, pl->name, c->point.threads, f, c->plan[0] ? " plan " : "",
	         c->plan);
}

/* ---- memory: each model's weights once ------------------------------------------- */

/* grp[i]: the first tenant of tenant i's model (i itself for a tenant with
 * no model name, which shares with nobody). */
static void
model_groups(const struct ten_problem *p, unsigned *grp)
{
	for (unsigned i = 0; i < p->ntenants; i++) {
		grp[i] = i;
		if (p->tenants[i].model[0] == '\0')
			continue;
		for (unsigned k = 0; k < i; k++)
			if (!strncmp(p->tenants[k].model, p->tenants[i].model, POL_NAME)) {
				grp[i] = grp[k];
				break;
			}
	}
}

/* Whether c (of tenant i) and d (of tenant k) use one copy of weights: the
 * same model and the same plan (another precision's weights are a copy of
 * their own). */
static bool
same_copy(const unsigned *grp, unsigned i, const struct ten_candidate *c, unsigned k, const struct ten_candidate *d)
{
	return grp[i] == grp[k] && !strncmp(c->plan, d->plan, POL_NAME);
}

/* The most weights already held in c's copy by the served tenants of
 * choice[0..n) other than i. */
static double
held_weights(const struct ten_problem *p, const unsigned *grp, const int *choice, unsigned n, unsigned i,
             const struct ten_candidate *c)
{
	double most = 0;

	for (unsigned k = 0; k < n; k++)
		if (k != i && choice[k] >= 0 && same_copy(grp, i, c, k, &p->cands[k][choice[k]]))
			most = fmax(most, p->cands[k][choice[k]].weight_bytes);
	return most;
}

/* What c adds to the memory of the tenants of choice[0..n) (i not among
 * them): its buffers, and its weights beyond what its copy holds already. */
static double
memory_added(const struct ten_problem *p, const unsigned *grp, const int *choice, unsigned n, unsigned i,
             const struct ten_candidate *c)
{
	return c->mem_bytes + fmax(0, c->weight_bytes - held_weights(p, grp, choice, n, i, c));
}

/* The memory of an assignment: the served tenants' buffers, and each copy
 * of weights once, as large as its largest user needs (*weights: that
 * part). */
static double
assignment_memory(const struct ten_problem *p, const unsigned *grp, const int *choice, double *weights)
{
	double mem = 0, w = 0;

	for (unsigned i = 0; i < p->ntenants; i++)
		if (choice[i] >= 0) {
			const struct ten_candidate *c = &p->cands[i][choice[i]];
			mem += c->mem_bytes;
			w += fmax(0, c->weight_bytes - held_weights(p, grp, choice, i, i, c));
		}
	if (weights != NULL)
		*weights = w;
	return mem + w;
}

/* ---- evaluating one assignment --------------------------------------------------- */

/* Fill r from choice[i] (candidate index or -1). Returns whether it meets
 * every constraint. */
static bool
evaluate(const struct ten_problem *p, const int *choice, struct ten_result *r)
{
	bool ok = true;
	unsigned grp[TEN_MAX_TENANTS];

	r->ndropped = 0;
	r->dropped_weight = r->objective = r->weighted_accuracy = r->power_w = r->mem_bytes = r->weight_bytes = 0;
	for (unsigned q = 0; q < POL_MAX_PLACES; q++)
		r->freq[q] = -1, r->util[q] = 0;
	for (unsigned i = 0; i < p->ntenants; i++) {
		struct ten_assignment *a = &r->a[i];
		a->cand = choice[i];
		a->util = a->power_w = 0;
		if (choice[i] < 0) {
			r->ndropped++;
			r->dropped_weight += p->tenants[i].weight;
			continue;
		}
		const struct ten_candidate *c = &p->cands[i][choice[i]];
		unsigned q = c->point.place;
		if (!ten_candidate_ok(p, i, c) || !waits_fit(p, choice, i, i, c))
			ok = false;
		a->util = util_of(p, i, c);
		a->power_w = ten_power(&p->tenants[i], c);
		r->util[q] += a->util;
		r->power_w += a->power_w;
		r->objective += contribution(p, i, c);
		r->weighted_accuracy += p->tenants[i].weight * accuracy_of(c);
		if (r->freq[q] < 0)
			r->freq[q] = (int)c->point.freq;
		else if (shared_freq(p, q) && r->freq[q] != (int)c->point.freq)
			ok = false;
	}
	model_groups(p, grp);
	r->mem_bytes = assignment_memory(p, grp, choice, &r->weight_bytes);
	for (unsigned q = 0; q < p->nplaces; q++)
		if (r->util[q] > capacity(p, q) + 1e-9)
			ok = false;
	if (p->power_cap_w > 0 && r->power_w > p->power_cap_w + 1e-9)
		ok = false;
	if (p->memory_bytes > 0 && r->mem_bytes > p->memory_bytes + 1e-6)
		ok = false;
	r->all_served = r->ndropped == 0;
	return ok;
}

int
ten_compare(const struct ten_result *a, const struct ten_result *b, double tol)
{
	if (a->dropped_weight > b->dropped_weight + 1e-9)
		return -1;
	if (a->dropped_weight < b->dropped_weight - 1e-9)
		return 1;
	if (a->objective < b->objective - tol)
		return -1;
	if (a->objective > b->objective + tol)
		return 1;
	return 0;
}

static int
best_alone(const struct ten_problem *p, unsigned i)
{
	int best = -1;
	double bv = -INFINITY;

	for (unsigned j = 0; j < p->ncands[i]; j++) {
		const struct ten_candidate *c = &p->cands[i][j];
		double v;
		if (!ten_candidate_ok(p, i, c))
			continue;
		v = contribution(p, i, c);
		if (v > bv)
			bv = v, best = (int)j;
	}
	return best;
}

/* ---- exhaustive ------------------------------------------------------------------ */

struct search {
	const struct ten_problem *p;
	unsigned grp[TEN_MAX_TENANTS];
	int choice[TEN_MAX_TENANTS], best[TEN_MAX_TENANTS];
	double util[POL_MAX_PLACES];
	int freq[POL_MAX_PLACES], freq_users[POL_MAX_PLACES];
	double power, mem, served, value;
	double best_served, best_value;
	bool have;
};

static void
search(struct search *s, unsigned i)
{
	const struct ten_problem *p = s->p;

	if (i == p->ntenants) {
		if (!s->have || s->served > s->best_served + 1e-9 ||
		    (s->served > s->best_served - 1e-9 && s->value > s->best_value)) {
			s->have = true;
			s->best_served = s->served;
			s->best_value = s->value;
			memcpy(s->best, s->choice, sizeof(s->best));
		}
		return;
	}
	for (int j = -1; j < (int)p->ncands[i]; j++) {
		s->choice[i] = j;
		if (j < 0) {
			search(s, i + 1);
			continue;
		}
		const struct ten_candidate *c = &p->cands[i][j];
		const struct ten_tenant *t = &p->tenants[i];
		unsigned q = c->point.place;
		double u = util_of(p, i, c), w = ten_power(t, c), m = memory_added(p, s->grp, s->choice, i, i, c);
		if (!ten_candidate_ok(p, i, c) || s->util[q] + u > capacity(p, q) + 1e-9 || !waits_fit(p, s->choice, i, i, c) ||
		    (p->power_cap_w > 0 && s->power + w > p->power_cap_w + 1e-9) ||
		    (p->memory_bytes > 0 && s->mem + m > p->memory_bytes + 1e-6) ||
		    (shared_freq(p, q) && s->freq_users[q] > 0 && s->freq[q] != (int)c->point.freq))
			continue;
		int old_freq = s->freq[q];
		s->util[q] += u, s->power += w, s->mem += m;
		s->served += t->weight, s->value += contribution(p, i, c);
		s->freq[q] = (int)c->point.freq, s->freq_users[q]++;
		search(s, i + 1);
		s->util[q] -= u, s->power -= w, s->mem -= m;
		s->served -= t->weight, s->value -= contribution(p, i, c);
		s->freq[q] = old_freq, s->freq_users[q]--;
	}
	s->choice[i] = -1;
}

static void finish(const struct ten_problem *p, struct ten_result *r, const char *method);

int
ten_solve_exhaustive(const struct ten_problem *p, double max_combinations, struct ten_result *r, char **cause)
{
	static struct search s;
	double combos = 1;

	for (unsigned i = 0; i < p->ntenants; i++)
		combos *= p->ncands[i] + 1.0;
	if (combos > max_combinations)
		return set_cause(cause, "%.3g combinations (more than %.3g)", combos, max_combinations);
	memset(&s, 0, sizeof(s));
	s.p = p;
	model_groups(p, s.grp);
	for (unsigned q = 0; q < POL_MAX_PLACES; q++)
		s.freq[q] = -1;
	search(&s, 0);
	memset(r, 0, sizeof(*r));
	evaluate(p, s.best, r);
	finish(p, r, "exhaustive");
	return 0;
}

/* ---- greedy ---------------------------------------------------------------------- */

void
ten_solve_greedy(const struct ten_problem *p, struct ten_result *r)
{
	unsigned order[TEN_MAX_TENANTS], grp[TEN_MAX_TENANTS];
	int choice[TEN_MAX_TENANTS];
	double util[POL_MAX_PLACES] = { 0 }, power = 0, mem = 0;
	int freq[POL_MAX_PLACES];

	model_groups(p, grp);
	for (unsigned q = 0; q < POL_MAX_PLACES; q++)
		freq[q] = -1;
	for (unsigned i = 0; i < p->ntenants; i++)
		order[i] = i, choice[i] = -1;
	for (unsigned a = 1; a < p->ntenants; a++) /* stable, heaviest first */
		for (unsigned b = a; b > 0 && p->tenants[order[b]].weight > p->tenants[order[b - 1]].weight; b--) {
			unsigned tmp = order[b];
			order[b] = order[b - 1], order[b - 1] = tmp;
		}
	for (unsigned k = 0; k < p->ntenants; k++) {
		unsigned i = order[k];
		const struct ten_tenant *t = &p->tenants[i];
		int best = -1;
		double bv = -INFINITY;
		for (unsigned j = 0; j < p->ncands[i]; j++) {
			const struct ten_candidate *c = &p->cands[i][j];
			unsigned q = c->point.place;
			double v;
			if (!ten_candidate_ok(p, i, c) || util[q] + util_of(p, i, c) > capacity(p, q) + 1e-9 ||
			    !waits_fit(p, choice, p->ntenants, i, c) ||
			    (p->power_cap_w > 0 && power + ten_power(t, c) > p->power_cap_w + 1e-9) ||
			    (p->memory_bytes > 0 && mem + memory_added(p, grp, choice, p->ntenants, i, c) > p->memory_bytes + 1e-6) ||
			    (shared_freq(p, q) && freq[q] >= 0 && freq[q] != (int)c->point.freq))
				continue;
			v = contribution(p, i, c);
			if (v > bv)
				bv = v, best = (int)j;
		}
		choice[i] = best;
		if (best >= 0) {
			const struct ten_candidate *c = &p->cands[i][best];
			util[c->point.place] += util_of(p, i, c);
			power += ten_power(t, c);
			mem += memory_added(p, grp, choice, p->ntenants, i, c);
			freq[c->point.place] = (int)c->point.freq;
		}
	}
	memset(r, 0, sizeof(*r));
	evaluate(p, choice, r);
	finish(p, r, "greedy");
}

/* ---- the MIP ----------------------------------------------------------------------- */

/* a tenant set is a bit mask (struct model's slot_users) */
_Static_assert(TEN_MAX_TENANTS <= 64, "tenant masks are 64 bits");

struct model {
	struct milp *m;
	unsigned nx;
	unsigned *x_tenant, *x_cand;  /* per x column */
	unsigned *x_slot;             /* per x column: its copy of weights */
	/* the copies of weights (slots): one per (model, plan) of the kept points */
	unsigned nslots;
	uint64_t *slot_users;         /* the tenants with a kept point in it (bit i) */
	unsigned *slot_n;             /* how many */
	int *slot_col;                /* its w column (shared by two or more, with a memory limit), or -1 */
	unsigned d0;                  /* first d column */
	int y_col[POL_MAX_PLACES][POL_MAX_FREQS];
	int one_freq_row[POL_MAX_PLACES], util_row[POL_MAX_PLACES], power_row, mem_row;
	int dropped_row;              /* sum of dropped weights <= rhs (solve_lex's two phases), -1 = none yet */
	int futil_row[POL_MAX_PLACES][POL_MAX_FREQS];
	unsigned nfutil[POL_MAX_PLACES];
	bool solvable[TEN_MAX_TENANTS]; /* has a kept candidate */
	unsigned nrows, ncols;          /* the MIP's size (built or not) */
	unsigned kept, total;
};

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

static double
cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return ts.tv_sec * 1e6 + ts.tv_nsec / 1e3;
}

/* Whether b in a's place (of one tenant) never takes more memory, whatever
 * the other tenants run. alone: no other tenant has its model, so its
 * weights are its own. Else a's copy of the weights may stay for the
 * others: of the same copy (plan), b needs no more weights and no more
 * buffers; of another, b's weights may be new, and b's whole is at most a's
 * buffers. */
static bool
memory_no_more(const struct ten_candidate *a, const struct ten_candidate *b, bool alone)
{
	if (alone)
		return b->weight_bytes + b->mem_bytes <= a->weight_bytes + a->mem_bytes;
	if (!strncmp(a->plan, b->plan, POL_NAME))
		return b->weight_bytes <= a->weight_bytes && b->mem_bytes <= a->mem_bytes;
	return b->weight_bytes + b->mem_bytes <= a->mem_bytes;
}

/* b dominates a: the same placement (and frequency, unless any_freq), no
 * worse objective, and no more of any resource that is limited (alone: as
 * for memory_no_more). */
static bool
dominated(const struct ten_problem *p, unsigned i, const struct ten_candidate *a, const struct ten_candidate *b,
          bool any_freq, bool alone)
{
	const struct ten_tenant *t = &p->tenants[i];
	bool power = p->power_cap_w > 0 || p->objective == TEN_MIN_ENERGY, mem = p->memory_bytes > 0;
	return a->point.place == b->point.place && (any_freq || a->point.freq == b->point.freq) &&
	       contribution(p, i, b) >= contribution(p, i, a) && util_of(p, i, b) <= util_of(p, i, a) &&
	       (!power || ten_power(t, b) <= ten_power(t, a)) && (!mem || memory_no_more(a, b, alone)) &&
	       (!p->serial || latency_of(b) <= latency_of(a)); /* others wait on it no longer */
}

/* Whether every kept candidate at (q, f) has a kept one at (q, g) of the
 * same tenant that dominates it. */
static bool
freq_dominated(const struct ten_problem *p, bool *const *keep, const bool *alone, unsigned q, unsigned f, unsigned g)
{
	for (unsigned i = 0; i < p->ntenants; i++)
		for (unsigned j = 0; j < p->ncands[i]; j++) {
			const struct ten_candidate *a = &p->cands[i][j];
			bool covered = false;
			if (!keep[i][j] || a->point.place != q || a->point.freq != f)
				continue;
			for (unsigned k = 0; k < p->ncands[i] && !covered; k++)
				covered = keep[i][k] && p->cands[i][k].point.place == q && p->cands[i][k].point.freq == g &&
				          dominated(p, i, a, &p->cands[i][k], true, alone[i]);
			if (!covered)
				return false;
		}
	return true;
}

/* A frequency of a placement whose every point (of every tenant) is
 * dominated by a point at another frequency of that placement is never
 * needed: moving the placement and all its tenants to the other frequency
 * takes no more of anything and loses nothing. Its points are dropped
 * (dominance is transitive, so dropping one at a time is safe; of two
 * frequencies that dominate each other the higher index goes). */
static void
drop_dominated_freqs(const struct ten_problem *p, bool *const *keep, const bool *alone)
{
	for (unsigned q = 0; q < p->nplaces; q++) {
		unsigned nf = p->places[q].nfreqs;
		bool gone[POL_MAX_FREQS] = { 0 };
		if (!shared_freq(p, q))
			continue;
		for (unsigned f = 0; f < nf; f++)
			for (unsigned g = 0; g < nf && !gone[f]; g++) {
				if (g == f || gone[g] || !freq_dominated(p, keep, alone, q, f, g))
					continue;
				if (freq_dominated(p, keep, alone, q, g, f) && g > f)
					continue; /* equal: the later one goes */
				gone[f] = true;
			}
		for (unsigned i = 0; i < p->ntenants; i++)
			for (unsigned j = 0; j < p->ncands[i]; j++)
				if (p->cands[i][j].point.place == q && gone[p->cands[i][j].point.freq])
					keep[i][j] = false;
	}
}

struct at {
	unsigned q, f, j;
};

static int
cmp_at(const void *a, const void *b)
{
	const struct at *x = a, *y = b;
	if (x->q != y->q)
		return x->q < y->q ? -1 : 1;
	if (x->f != y->f)
		return x->f < y->f ? -1 : 1;
	return x->j < y->j ? -1 : x->j > y->j;
}

/* A row of the MIP, or only counted when the MIP is not built (the
 * branch-and-bound needs none of it). */
static int
add_row(struct model *md, unsigned n, const unsigned *cols, const double *vals, enum milp_sense sense, double rhs)
{
	if (md->m == NULL)
		return (int)md->nrows++;
	return milp_add_row(md->m, n, cols, vals, sense, rhs);
}

static int
build(const struct ten_problem *p, struct model *md, bool want_milp, char **cause)
{
	unsigned first[TEN_MAX_TENANTS + 1], most = 0, grp[TEN_MAX_TENANTS], *rep = NULL;
	struct at *at = NULL;
	unsigned total = 0, nx = 0, ny = 0, nw = 0, ncols;
	bool *keep[TEN_MAX_TENANTS] = { 0 }, alone[TEN_MAX_TENANTS];
	unsigned *cols = NULL;
	double *vals = NULL;
	int ret = -1;

	memset(md, 0, sizeof(*md));
	model_groups(p, grp);
	for (unsigned i = 0; i < p->ntenants; i++) {
		alone[i] = true;
		for (unsigned k = 0; k < p->ntenants; k++)
			if (k != i && grp[k] == grp[i])
				alone[i] = false;
	}
	md->power_row = md->mem_row = md->dropped_row = -1;
	for (unsigned q = 0; q < POL_MAX_PLACES; q++) {
		md->one_freq_row[q] = md->util_row[q] = -1;
		for (unsigned f = 0; f < POL_MAX_FREQS; f++)
			md->y_col[q][f] = -1;
	}
	for (unsigned i = 0; i < p->ntenants; i++)
		most = p->ncands[i] > most ? p->ncands[i] : most;
	if ((at = malloc((most + 1) * sizeof(*at))) == NULL)
		goto oom;
	for (unsigned i = 0; i < p->ntenants; i++) {
		total += p->ncands[i];
		if ((keep[i] = calloc(p->ncands[i] + 1, sizeof(bool))) == NULL)
			goto oom;
		for (unsigned j = 0; j < p->ncands[i]; j++)
			keep[i][j] = ten_candidate_ok(p, i, &p->cands[i][j]);
		/* within each (placement, frequency) only */
		unsigned n = 0;
		for (unsigned j = 0; j < p->ncands[i]; j++)
			if (keep[i][j])
				at[n].q = p->cands[i][j].point.place, at[n].f = p->cands[i][j].point.freq, at[n].j = j, n++;
		qsort(at, n, sizeof(*at), cmp_at);
		for (unsigned a = 0, e; a < n; a = e) {
			for (e = a; e < n && at[e].q == at[a].q && at[e].f == at[a].f; e++)
				;
			for (unsigned u = a; u < e; u++) {
				unsigned j = at[u].j;
				for (unsigned v = a; v < e && keep[i][j]; v++) {
					unsigned k = at[v].j;
					if (k != j && keep[i][k] && dominated(p, i, &p->cands[i][j], &p->cands[i][k], false, alone[i]) &&
					    (!dominated(p, i, &p->cands[i][k], &p->cands[i][j], false, alone[i]) || k < j))
						keep[i][j] = false;
				}
			}
		}
	}
	drop_dominated_freqs(p, keep, alone);
	for (unsigned i = 0; i < p->ntenants; i++) {
		for (unsigned j = 0; j < p->ncands[i]; j++)
			if (keep[i][j]) {
				const struct ten_candidate *c = &p->cands[i][j];
				nx++;
				md->solvable[i] = true;
				if (shared_freq(p, c->point.place) && md->y_col[c->point.place][c->point.freq] < 0)
					md->y_col[c->point.place][c->point.freq] = 0, ny++;
			}
	}
	md->nx = nx;
	md->kept = nx;
	md->total = total;
	if ((md->x_tenant = calloc(nx + 1, sizeof(unsigned))) == NULL ||
	    (md->x_cand = calloc(nx + 1, sizeof(unsigned))) == NULL || (md->x_slot = calloc(nx + 1, sizeof(unsigned))) == NULL ||
	    (md->slot_users = calloc(nx + 1, sizeof(uint64_t))) == NULL ||
	    (md->slot_n = calloc(nx + 1, sizeof(unsigned))) == NULL || (md->slot_col = calloc(nx + 1, sizeof(int))) == NULL ||
	    (rep = calloc(nx + 1, sizeof(unsigned))) == NULL)
		goto oom;
	for (unsigned i = 0, x = 0; i < p->ntenants; i++)
		for (unsigned j = 0; j < p->ncands[i]; j++)
			if (keep[i][j])
				md->x_tenant[x] = i, md->x_cand[x] = j, x++;
	/* the copies of weights: a point's is the first point's of the same
	 * model and plan (rep: that point's column); the one before it first */
	for (unsigned x = 0; x < nx; x++) {
		unsigned i = md->x_tenant[x], sl = x > 0 ? md->x_slot[x - 1] : 0;
		const struct ten_candidate *c = &p->cands[i][md->x_cand[x]];
#define REP_OF(sl) md->x_tenant[rep[sl]], &p->cands[md->x_tenant[rep[sl]]][md->x_cand[rep[sl]]]
		if (x == 0 || !same_copy(grp, i, c, REP_OF(sl)))
			for (sl = 0; sl < md->nslots && !same_copy(grp, i, c, REP_OF(sl)); sl++)
				;
#undef REP_OF
		if (sl == md->nslots)
			rep[md->nslots++] = x;
		md->x_slot[x] = sl;
		if (!(md->slot_users[sl] & (UINT64_C(1) << i)))
			md->slot_users[sl] |= UINT64_C(1) << i, md->slot_n[sl]++;
	}
	/* a copy two tenants or more may share, under a memory limit: a column
	 * w for its size, at least each of its tenants' weights in it */
	for (unsigned sl = 0; sl < md->nslots; sl++)
		md->slot_col[sl] = p->memory_bytes > 0 && md->slot_n[sl] > 1 ? (int)(nx + p->ntenants + ny + nw++) : -1;
	ncols = nx + p->ntenants + ny + nw;
	md->ncols = ncols;
	if (want_milp && (md->m = milp_new(ncols, cause)) == NULL)
		goto out;
	if ((cols = calloc(ncols + 1, sizeof(unsigned))) == NULL || (vals = calloc(ncols + 1, sizeof(double))) == NULL)
		goto oom;
	{
		unsigned y = nx + p->ntenants;
		md->d0 = nx;
		/* binary, though integral anyway: lp_solve 5.5.2.5 returned a
		 * suboptimal "optimum" with them continuous (its objective-step
		 * heuristic takes the objective to move in steps of the integer
		 * columns' coefficients) */
		for (unsigned i = 0; i < p->ntenants; i++)
			if (md->m)
				milp_set_binary(md->m, nx + i), milp_set_priority(md->m, nx + i, 1);
		for (unsigned q = 0; q < p->nplaces; q++)
			for (unsigned f = 0; f < p->places[q].nfreqs; f++)
				if (md->y_col[q][f] == 0)
					md->y_col[q][f] = (int)y, y++;
		if (md->m)
			for (unsigned c = 0; c < nx; c++)
				milp_set_binary(md->m, c);
		for (unsigned q = 0; q < p->nplaces && md->m; q++)
			for (unsigned f = 0; f < p->places[q].nfreqs; f++)
				if (md->y_col[q][f] >= 0)
					milp_set_binary(md->m, (unsigned)md->y_col[q][f]),
					        milp_set_priority(md->m, (unsigned)md->y_col[q][f], 2);
	}
	/* one point per tenant, or dropped */
	for (unsigned i = 0, x = 0; i < p->ntenants; i++) {
		unsigned n = 0;
		while (x < nx && md->x_tenant[x] == i)
			cols[n] = x, vals[n] = 1, n++, x++;
		cols[n] = md->d0 + i, vals[n] = 1, n++;
		if (add_row(md, n, cols, vals, MILP_EQ, 1) < 0)
			goto oom;
	}
	/* one frequency per DVFS placement, and each tenant's points on it at that one */
	for (unsigned i = 0, x = 0; i <= p->ntenants; i++) {
		while (x < nx && md->x_tenant[x] < i)
			x++;
		first[i] = x;
	}
	for (unsigned q = 0; q < p->nplaces; q++) {
		unsigned n = 0;
		for (unsigned f = 0; f < p->places[q].nfreqs; f++)
			if (md->y_col[q][f] >= 0)
				cols[n] = (unsigned)md->y_col[q][f], vals[n] = 1, n++;
		if (n == 0)
			continue;
		if ((md->one_freq_row[q] = add_row(md, n, cols, vals, MILP_LE, 1)) < 0)
			goto oom;
		for (unsigned i = 0; i < p->ntenants; i++)
			for (unsigned f = 0; f < p->places[q].nfreqs; f++) {
				if (md->y_col[q][f] < 0)
					continue;
				n = 0;
				for (unsigned x = first[i]; x < first[i + 1]; x++) {
					const struct ten_candidate *c = &p->cands[i][md->x_cand[x]];
					if (c->point.place == q && c->point.freq == f)
						cols[n] = x, vals[n] = 1, n++;
				}
				if (n == 0)
					continue;
				cols[n] = (unsigned)md->y_col[q][f], vals[n] = -1, n++;
				if (add_row(md, n, cols, vals, MILP_LE, 0) < 0)
					goto oom;
			}
	}
	/* utilisation per placement, power, memory */
	for (unsigned q = 0; q < p->nplaces; q++) {
		unsigned n = 0;
		double sum = 0;
		for (unsigned x = 0; x < nx; x++) {
			const struct ten_candidate *c = &p->cands[md->x_tenant[x]][md->x_cand[x]];
			if (c->point.place == q) {
				cols[n] = x, vals[n] = util_of(p, md->x_tenant[x], c), sum += vals[n], n++;
			}
		}
		if (n > 0 && (md->util_row[q] = add_row(md, n, cols, vals, MILP_LE, capacity(p, q))) < 0)
			goto oom;
		/* The same per frequency, on the frequency's variable: only one
		 * frequency is on, so the load at each is at most cap x y[p][f].
		 * Implied by the rows above for integers, much tighter for the LP
		 * relaxation (which otherwise spreads y thinly over frequencies):
		 * it cut lp_solve's solve times on the XU3 by an order of
		 * magnitude. Relaxed with the row above (right-hand side). */
		md->nfutil[q] = 0;
		for (unsigned f = 0; f < p->places[q].nfreqs; f++) {
			if (md->y_col[q][f] < 0)
				continue;
			n = 0;
			for (unsigned x = 0; x < nx; x++) {
				const struct ten_candidate *c = &p->cands[md->x_tenant[x]][md->x_cand[x]];
				if (c->point.place == q && c->point.freq == f)
					cols[n] = x, vals[n] = util_of(p, md->x_tenant[x], c), n++;
			}
			if (n == 0)
				continue;
			cols[n] = (unsigned)md->y_col[q][f], vals[n] = -capacity(p, q), n++;
			if ((md->futil_row[q][md->nfutil[q]++] = add_row(md, n, cols, vals, MILP_LE, 0)) < 0)
				goto oom;
		}
	}
	if (p->power_cap_w > 0) {
		for (unsigned x = 0; x < nx; x++)
			cols[x] = x, vals[x] = ten_power(&p->tenants[md->x_tenant[x]], &p->cands[md->x_tenant[x]][md->x_cand[x]]);
		if (nx > 0 && (md->power_row = add_row(md, nx, cols, vals, MILP_LE, p->power_cap_w)) < 0)
			goto oom;
	}
	/* memory (MiB): the buffers, the weights of a copy only one tenant
	 * uses, and each shared copy's w; w at least the weights each tenant's
	 * point in it needs */
	if (p->memory_bytes > 0 && nx > 0) {
		unsigned n = 0;
		for (unsigned x = 0; x < nx; x++) {
			const struct ten_candidate *c = &p->cands[md->x_tenant[x]][md->x_cand[x]];
			cols[n] = x, vals[n] = (c->mem_bytes + (md->slot_col[md->x_slot[x]] < 0 ? c->weight_bytes : 0)) / 1048576.0;
			n++;
		}
		for (unsigned sl = 0; sl < md->nslots; sl++)
			if (md->slot_col[sl] >= 0)
				cols[n] = (unsigned)md->slot_col[sl], vals[n] = 1, n++;
		if ((md->mem_row = add_row(md, n, cols, vals, MILP_LE, p->memory_bytes / 1048576.0)) < 0)
			goto oom;
		for (unsigned sl = 0; sl < md->nslots; sl++)
			for (unsigned i = 0; i < p->ntenants && md->slot_col[sl] >= 0; i++) {
				if (!(md->slot_users[sl] & (UINT64_C(1) << i)))
					continue;
				n = 0;
				for (unsigned x = first[i]; x < first[i + 1]; x++)
					if (md->x_slot[x] == sl)
						cols[n] = x, vals[n] = p->cands[i][md->x_cand[x]].weight_bytes / 1048576.0, n++;
				cols[n] = (unsigned)md->slot_col[sl], vals[n] = -1, n++;
				if (add_row(md, n, cols, vals, MILP_LE, 0) < 0)
					goto oom;
			}
	}
	/* waiting on a serial placement: a point of tenant i and the points of
	 * a later tenant k that it cannot share the placement with, at most
	 * one of them (k takes one point: every conflicting pair is excluded) */
	for (unsigned x = 0; x < nx && p->serial; x++) {
		unsigned i = md->x_tenant[x];
		const struct ten_candidate *a = &p->cands[i][md->x_cand[x]];
		for (unsigned k = i + 1; k < p->ntenants; k++) {
			unsigned n = 0;
			for (unsigned y = first[k]; y < first[k + 1]; y++)
				if (waits_too_long(p, i, a, k, &p->cands[k][md->x_cand[y]]))
					cols[n] = y, vals[n] = 1, n++;
			if (n == 0)
				continue;
			cols[n] = x, vals[n] = 1, n++;
			if (add_row(md, n, cols, vals, MILP_LE, 1) < 0)
				goto oom;
		}
	}
	ret = 0;
	goto out;
oom:
	set_cause(cause, "out of memory");
out:
	for (unsigned i = 0; i < p->ntenants; i++)
		free(keep[i]);
	free(rep);
	free(at);
	free(cols);
	free(vals);
	return ret;
}

static void
model_free(struct model *md)
{
	milp_free(md->m);
	free(md->x_tenant);
	free(md->x_cand);
	free(md->x_slot);
	free(md->slot_users);
	free(md->slot_n);
	free(md->slot_col);
}

static void
set_main_objective(const struct ten_problem *p, struct model *md, unsigned *cols, double *vals)
{
	for (unsigned x = 0; x < md->nx; x++)
		cols[x] = x, vals[x] = contribution(p, md->x_tenant[x], &p->cands[md->x_tenant[x]][md->x_cand[x]]);
	milp_set_objective(md->m, md->nx, cols, vals, true);
}

/* The largest of 1, 0.1, ... 1e-6 that every weight is a whole multiple
 * of: the least difference between two sums of weights. */
static double
weight_quantum(const struct ten_problem *p)
{
	double q = 1;

	for (int k = 0; k < 6; k++, q /= 10) {
		bool whole = true;
		for (unsigned i = 0; i < p->ntenants && whole; i++) {
			double m = p->tenants[i].weight / q;
			whole = fabs(m - round(m)) < 1e-6 * fmax(1, m);
		}
		if (whole)
			return q;
	}
	return q;
}

/* The single-solve lexicographic objective's penalty for the heaviest
 * dropped weight (big x that weight) over the weights' quantum, at most:
 * above it the simplex does not keep the penalties and the objective apart
 * (weights on a quantum of 1e-5 or finer always go over; whole and 0.5
 * weights stay under with any 32 tenants), and two solves are made. */
#define BIG_M_LIMIT 1e6

/* Lexicographic solve: every tenant that can be served; if that is
 * infeasible, the least dropped weight first, then the objective. Fills
 * choice. 0 (proven optimal), 1 (time ran out: the best found), 2 (time ran
 * out with nothing found: choice all dropped), -1 on error. */
static int
solve_lex(const struct ten_problem *p, struct model *md, int *choice, unsigned *solves, long *nodes, char **cause)
{
	unsigned ncols = milp_cols(md->m);
	unsigned *cols = calloc(ncols + 1, sizeof(unsigned));
	double *vals = calloc(ncols + 1, sizeof(double)), *x = calloc(ncols + 1, sizeof(double)), obj;
	double *first = calloc(ncols + 1, sizeof(double));
	double all = 1, limit = p->time_limit_s > 0 ? p->time_limit_s : 1.0;
	enum milp_status st;
	bool found;
	int ret = -1;

	if (cols == NULL || vals == NULL || x == NULL || first == NULL) {
		set_cause(cause, "out of memory");
		goto out;
	}
	if (md->nx == 0) { /* no tenant has a point: all dropped, nothing to solve */
		for (unsigned i = 0; i < p->ntenants; i++)
			choice[i] = -1;
		ret = 0;
		goto out;
	}
	for (unsigned i = 0; i < p->ntenants; i++) {
		milp_set_bounds(md->m, md->d0 + i, md->solvable[i] ? 0 : 1, 1);
		choice[i] = -1;
		if (md->solvable[i])
			milp_set_bounds(md->m, md->d0 + i, 0, 0);
		all += p->tenants[i].weight;
	}
	if (md->dropped_row >= 0) /* an earlier solve's bound on the dropped weight: off */
		milp_set_rhs(md->m, (unsigned)md->dropped_row, all);
	set_main_objective(p, md, cols, vals);
	st = milp_solve(md->m, limit, x, &obj, &found);
	(*solves)++, *nodes += milp_nodes(md->m);
	if (st == MILP_INFEASIBLE) {
		/* Some must go: one solve with each dropped tenant's weight at a
		 * penalty M large enough that serving more weight always wins (M x
		 * the weights' quantum above the whole objective's range): the least
		 * dropped weight first, then the best objective with it. (Two
		 * phases, least weight and then the objective under it, take lp_solve
		 * orders of magnitude longer: the first is very degenerate.) */
		double range = 1, quantum = weight_quantum(p), big, wmax = 0;
		unsigned n = 0;
		double most[TEN_MAX_TENANTS] = { 0 };
		for (unsigned c = 0; c < md->nx; c++)
			most[md->x_tenant[c]] = fmax(most[md->x_tenant[c]],
			                             fabs(contribution(p, md->x_tenant[c], &p->cands[md->x_tenant[c]][md->x_cand[c]])));
		for (unsigned i = 0; i < p->ntenants; i++)
			range += 2 * most[i], wmax = fmax(wmax, p->tenants[i].weight);
		big = 2 * range / quantum;
		for (unsigned i = 0; i < p->ntenants; i++)
			milp_set_bounds(md->m, md->d0 + i, md->solvable[i] ? 0 : 1, 1);
		if (big * wmax / quantum <= BIG_M_LIMIT) {
			for (unsigned c = 0; c < md->nx; c++, n++)
				cols[n] = c, vals[n] = contribution(p, md->x_tenant[c], &p->cands[md->x_tenant[c]][md->x_cand[c]]);
			for (unsigned i = 0; i < p->ntenants; i++, n++)
				cols[n] = md->d0 + i, vals[n] = -big * p->tenants[i].weight;
			milp_set_objective(md->m, n, cols, vals, true);
			st = milp_solve(md->m, limit, x, &obj, &found);
			(*solves)++, *nodes += milp_nodes(md->m);
		} else {
			/* The penalty would dwarf the objective beyond what the simplex
			 * keeps apart (weights 1 and 1e-6, a penalty of 8.7e6: lp_solve
			 * lost feasibility and called optimal a plan that served a
			 * worse tenant set; fuzz-tenants found it): the two phases,
			 * slow as they are.
			 * First the least dropped weight, then the objective with no
			 * more dropped than that (give or take half a quantum). */
			for (unsigned i = 0; i < p->ntenants; i++, n++)
				cols[n] = md->d0 + i, vals[n] = -p->tenants[i].weight;
			milp_set_objective(md->m, n, cols, vals, true);
			st = milp_solve(md->m, limit, x, &obj, &found);
			(*solves)++, *nodes += milp_nodes(md->m);
			if (st == MILP_OPTIMAL) {
				double most_dropped = -obj + quantum / 2;
				for (unsigned i = 0; i < p->ntenants; i++)
					vals[i] = p->tenants[i].weight;
				if (md->dropped_row < 0)
					md->dropped_row = milp_add_row(md->m, n, cols, vals, MILP_LE, most_dropped);
				else
					milp_set_rhs(md->m, (unsigned)md->dropped_row, most_dropped);
				if (md->dropped_row < 0) {
					set_cause(cause, "the MIP solver could not take a row");
					goto out;
				}
				memcpy(first, x, ncols * sizeof(double));
				set_main_objective(p, md, cols, vals);
				st = milp_solve(md->m, limit, x, &obj, &found);
				(*solves)++, *nodes += milp_nodes(md->m);
				if (!found) { /* the least dropped weight stands */
					memcpy(x, first, ncols * sizeof(double));
					found = true;
					st = MILP_TIMEOUT;
				}
			}
		}
	}
	if (!found) {
		if (st == MILP_TIMEOUT) {
			ret = 2; /* nothing in time */
			goto out;
		}
		set_cause(cause, "the MIP solver found no solution (%s)", milp_status_text(md->m));
		goto out;
	}
	for (unsigned c = 0; c < md->nx; c++)
		if (x[c] > 0.5)
			choice[md->x_tenant[c]] = (int)md->x_cand[c];
	ret = st == MILP_OPTIMAL ? 0 : 1;
out:
	free(cols);
	free(vals);
	free(x);
	free(first);
	return ret;
}

/* ---- the MIP by a dedicated branch-and-bound ------------------------------------- */

/* The limits a solve is held to: the problem's, or with one relaxed to
 * explain what binds. */
struct limits {
	double cap[POL_MAX_PLACES];
	double power, mem;             /* 0 = none */
	bool one_freq[POL_MAX_PLACES]; /* the placement's tenants share one frequency */
};

static void
limits_of(const struct ten_problem *p, struct limits *lim)
{
	memset(lim, 0, sizeof(*lim));
	for (unsigned q = 0; q < p->nplaces; q++)
		lim->cap[q] = capacity(p, q), lim->one_freq[q] = shared_freq(p, q);
	lim->power = p->power_cap_w;
	lim->mem = p->memory_bytes;
}

/* A tenant's choice: one of its kept points, or dropped (cand < 0, no
 * resources, objective -big x weight). mem: its buffers; wt: its weights,
 * in copy slot (struct model); lc: what the bound charges it of memory, its
 * buffers and its share of the weights (wt over the copy's tenants). */
struct bb_cand {
	int cand;
	unsigned t, q, f, slot; /* its tenant, placement, frequency, copy of weights */
	double c, pw, u, mem, wt, lc, reduced;
};

struct bb {
	const struct ten_problem *p;
	const struct limits *lim;
	const struct model *md;
	unsigned nt, order[TEN_MAX_TENANTS];
	uint64_t rest[TEN_MAX_TENANTS + 1]; /* the tenants order[k..] */
	struct bb_cand *all, *cand[TEN_MAX_TENANTS];
	unsigned nall, ncand[TEN_MAX_TENANTS];
	double big;            /* the objective lost per unit of weight dropped */
	bool lex;              /* big too large for one objective (weights far apart): the dropped weight
	                          and the objective bounded apart */
	double lb_dropped;     /* bb_bound in lex: the dropped weight no completion avoids */
	double lambda, mu[POL_MAX_PLACES], nu; /* multipliers of power, utilisations, memory */
	double step;           /* a better objective is better by more than this */
	double first;          /* bb_bound: the first remaining tenant's part */
	/* the state on the way down */
	int freq[POL_MAX_PLACES];
	unsigned users[POL_MAX_PLACES];
	double util[POL_MAX_PLACES], power, mem, value, dropped;
	double *held;          /* per copy of weights: the most its tenants placed use (mem counts it) */
	int pick[TEN_MAX_TENANTS];
	/* start[k][i]: where tenant i's first point that fits can be at depth k
	 * (no earlier one fits at the node above, and below it only less fits) */
	unsigned start[TEN_MAX_TENANTS + 1][TEN_MAX_TENANTS];
	/* the best found */
	bool have;
	double best_value, best_dropped, best_total;
	int best[TEN_MAX_TENANTS];
	long nodes;
	double deadline;
	bool late;
};

static bool
bb_fits(const struct bb *b, const struct bb_cand *c)
{
	if (c->cand < 0)
		return true;
	/* pick[] is -1 for every tenant not placed on the way down */
	return waits_fit(b->p, b->pick, b->p->ntenants, c->t, &b->p->cands[c->t][c->cand]) &&
	       b->util[c->q] + c->u <= b->lim->cap[c->q] + 1e-9 &&
	       (b->lim->power <= 0 || b->power + c->pw <= b->lim->power + 1e-9) &&
	       (b->lim->mem <= 0 || b->mem + c->mem + fmax(0, c->wt - b->held[c->slot]) <= b->lim->mem + 1e-6) &&
	       (!b->lim->one_freq[c->q] || b->users[c->q] == 0 || b->freq[c->q] == (int)c->f);
}

/* The memory the bound counts as used at depth k, so that each remaining
 * tenant can be charged its lc: the buffers placed, and of each copy of
 * weights held (h) that n tenants may use, r of them still to come, h x (1
 * - r / n). Valid: the copy ends at least max(h, H) >= h (1 - r/n) + H r/n,
 * H the most any of the r uses, and their shares wt/n sum to at most H r/n.
 * A tenant placed adds at least its lc to it (what the children's bounds
 * rest on). */
static double
bb_memory_held(const struct bb *b, unsigned k)
{
	const struct model *md = b->md;
	double used = b->mem;

	for (unsigned sl = 0; sl < md->nslots; sl++)
		if (md->slot_n[sl] > 1 && b->held[sl] > 0)
			used -= b->held[sl] * __builtin_popcountll(md->slot_users[sl] & b->rest[k]) / md->slot_n[sl];
	return used;
}

/* An upper bound of the objective (less big x dropped weight) of any
 * completion of the tenants order[k..]: the Lagrangian relaxation of the
 * power cap, the utilisations and memory, with what is left of each, each
 * tenant taking its best reduced value among the points that still fit
 * beside those placed (so the frequencies fixed on the way down count). */
static double
bb_bound(struct bb *b, unsigned k)
{
	double forced = b->dropped;
	const struct ten_problem *p = b->p;
	double bound = b->lex ? b->value : b->value - b->big * b->dropped;

	if (b->lim->power > 0)
		bound += b->lambda * (b->lim->power - b->power);
	if (b->lim->mem > 0 && b->nu > 0)
		bound += b->nu * (b->lim->mem - bb_memory_held(b, k)) / 1048576.0;
	for (unsigned q = 0; q < p->nplaces; q++)
		bound += b->mu[q] * (b->lim->cap[q] - b->util[q]);
	for (unsigned r = k; r < b->nt; r++) {
		unsigned i = b->order[r];
		double m = -INFINITY;
		unsigned j = b->start[k][i];
		for (; j < b->ncand[i]; j++)
			if ((!b->lex || b->cand[i][j].cand >= 0) && bb_fits(b, &b->cand[i][j])) {
				m = b->cand[i][j].reduced;
				break;
			}
		b->start[k + 1][i] = j;
		if (r == k)
			b->first = m;
		if (b->lex && m == -INFINITY)
			forced += p->tenants[i].weight; /* nothing of its fits: dropped whatever comes */
		else
			bound += m;
	}
	b->lb_dropped = forced;
	return bound;
}

static void
bb_search(struct bb *b, unsigned k)
{
	if ((++b->nodes & 1023) == 0 && now_us() / 1e6 > b->deadline)
		b->late = true;
	if (b->late)
		return;
	if (k == b->nt) {
		if (!b->have || b->dropped < b->best_dropped - 1e-9 ||
		    (b->dropped < b->best_dropped + 1e-9 && b->value > b->best_value + 1e-12)) {
			b->have = true;
			b->best_value = b->value, b->best_dropped = b->dropped;
			b->best_total = b->value - b->big * b->dropped;
			memcpy(b->best, b->pick, sizeof(b->best));
		}
		return;
	}
	double bound = bb_bound(b, k), first = b->first;
	bool tight = false; /* lex: no completion drops less than the best found */
	if (b->have && b->lex) {
		if (b->lb_dropped > b->best_dropped + 1e-9)
			return;
		tight = b->lb_dropped > b->best_dropped - 1e-9;
		if (tight && bound <= b->best_value + b->step)
			return;
	} else if (b->have && bound <= b->best_total + b->step) {
		return;
	}
	unsigned i = b->order[k];
	for (unsigned j = 0; j < b->ncand[i]; j++) {
		const struct bb_cand *c = &b->cand[i][j];
		/* in decreasing reduced value (lex: dropping last): a child's
		 * bound is at most this node's less what its choice gives up */
		if (b->have && !b->lex && bound - first + c->reduced <= b->best_total + b->step)
			break;
		if (tight && c->cand >= 0 && bound - first + c->reduced <= b->best_value + b->step)
			continue;
		if (!bb_fits(b, c))
			continue;
		b->pick[i] = c->cand;
		if (c->cand < 0) {
			b->dropped += b->p->tenants[i].weight;
			bb_search(b, k + 1);
			b->dropped -= b->p->tenants[i].weight;
		} else {
			int old = b->freq[c->q];
			double held = b->held[c->slot], grow = c->mem + fmax(0, c->wt - held);
			b->util[c->q] += c->u, b->power += c->pw, b->mem += grow, b->value += c->c;
			b->freq[c->q] = (int)c->f, b->users[c->q]++, b->held[c->slot] = fmax(held, c->wt);
			bb_search(b, k + 1);
			b->util[c->q] -= c->u, b->power -= c->pw, b->mem -= grow, b->value -= c->c;
			b->freq[c->q] = old, b->users[c->q]--, b->held[c->slot] = held;
		}
		if (b->late)
			return;
	}
	b->pick[i] = -1;
}

static int
cmp_bb_cand(const void *a, const void *b)
{
	double x = ((const struct bb_cand *)a)->reduced, y = ((const struct bb_cand *)b)->reduced;
	return x > y ? -1 : x < y;
}

static double
bb_objective(const struct bb *b, const struct bb_cand *c)
{
	return c->c - (c->cand < 0 ? 0 : b->lambda * c->pw + b->mu[c->q] * c->u + b->nu * c->lc / 1048576.0);
}

/* Multipliers without a linear-programming solver: a projected
 * subgradient descent on the root's Lagrangian bound. */
static void
bb_subgradient(struct bb *b)
{
	const struct ten_problem *p = b->p;
	double lam = 0, mu[POL_MAX_PLACES] = { 0 }, nu = 0, best = INFINITY, theta = 1, scale = 1e-9;
	unsigned stall = 0;

	for (unsigned x = 0; x < b->nall; x++)
		if (b->all[x].cand >= 0)
			scale = fmax(scale, fabs(b->all[x].c));
	for (unsigned it = 0; it < 300; it++) {
		double L = 0, gl = b->lim->power, gn = b->lim->mem / 1048576.0, gm[POL_MAX_PLACES], norm = 0;
		if (b->lim->power > 0)
			L += lam * b->lim->power;
		if (b->lim->mem > 0)
			L += nu * b->lim->mem / 1048576.0;
		for (unsigned q = 0; q < p->nplaces; q++)
			L += mu[q] * b->lim->cap[q], gm[q] = b->lim->cap[q];
		for (unsigned i = 0; i < p->ntenants; i++) {
			const struct bb_cand *arg = NULL;
			double m = -INFINITY;
			for (unsigned j = 0; j < b->ncand[i]; j++) {
				const struct bb_cand *c = &b->cand[i][j];
				double r = c->cand < 0 ? c->c : c->c - lam * c->pw - mu[c->q] * c->u - nu * c->lc / 1048576.0;
				if (r > m)
					m = r, arg = c;
			}
			L += m;
			if (arg != NULL && arg->cand >= 0)
				gl -= arg->pw, gn -= arg->lc / 1048576.0, gm[arg->q] -= arg->u;
		}
		if (L < best - 1e-12) {
			best = L, stall = 0;
			b->lambda = lam, b->nu = nu;
			memcpy(b->mu, mu, sizeof(mu));
		} else if (++stall >= 10) {
			theta /= 2, stall = 0;
		}
		if (b->lim->power > 0)
			norm += gl * gl;
		if (b->lim->mem > 0)
			norm += gn * gn;
		for (unsigned q = 0; q < p->nplaces; q++)
			norm += gm[q] * gm[q];
		if (norm < 1e-18 || theta < 1e-6)
			break;
		double step = theta * 0.01 * scale / norm;
		if (b->lim->power > 0)
			lam = fmax(0, lam - step * gl);
		if (b->lim->mem > 0)
			nu = fmax(0, nu - step * gn);
		for (unsigned q = 0; q < p->nplaces; q++)
			mu[q] = fmax(0, mu[q] - step * gm[q]);
	}
}

/* The multipliers from the linear relaxation of the same relaxation (each
 * tenant one point or dropped, power, utilisations, memory; the
 * frequencies free): its rows' duals, so that the root's bound is that
 * relaxation's optimum. -1 when the LP solver gave none. */
static int
bb_lp_multipliers(struct bb *b)
{
	const struct ten_problem *p = b->p;
	unsigned n = 0, nrows = 0, *col = calloc(b->nall + 1, sizeof(unsigned)), *at = calloc(b->nall + 1, sizeof(unsigned));
	int util_row[POL_MAX_PLACES], power_row = -1, mem_row = -1;
	double *vals = calloc(b->nall + 1, sizeof(double)), *duals = NULL, obj;
	struct milp *m = NULL;
	int ret = -1;

	if (col == NULL || at == NULL || vals == NULL)
		goto out;
	/* The relaxation leaves the frequencies free: a point no better and no
	 * cheaper in any limited resource than another of its tenant on the
	 * same placement at any frequency is not needed in it. at[k]: the point
	 * of LP column k. */
	for (unsigned i = 0; i < p->ntenants; i++)
		for (unsigned j = 0; j < b->ncand[i]; j++) {
			const struct bb_cand *a = &b->cand[i][j];
			bool out = false;
			for (unsigned l = 0; l < b->ncand[i] && a->cand >= 0 && !out; l++) {
				const struct bb_cand *o = &b->cand[i][l];
				if (l == j || o->cand < 0 || o->q != a->q || o->c < a->c || o->u > a->u ||
				    (b->lim->power > 0 && o->pw > a->pw) || (b->lim->mem > 0 && o->lc > a->lc))
					continue;
				/* of two equal ones, the later goes */
				out = !(o->c == a->c && o->u == a->u && (b->lim->power <= 0 || o->pw == a->pw) &&
				        (b->lim->mem <= 0 || o->lc == a->lc) && l > j);
			}
			if (!out)
				at[n++] = (unsigned)(a - b->all);
		}
	if ((m = milp_new(n, NULL)) == NULL)
		goto out;
	for (unsigned i = 0; i < p->ntenants; i++) {
		unsigned k = 0;
		for (unsigned c = 0; c < n; c++)
			if (b->all + at[c] >= b->cand[i] && b->all + at[c] < b->cand[i] + b->ncand[i])
				col[k] = c, vals[k] = 1, k++;
		if (milp_add_row(m, k, col, vals, MILP_EQ, 1) < 0)
			goto out;
		nrows++;
	}
	for (unsigned q = 0; q < p->nplaces; q++) {
		unsigned k = 0;
		for (unsigned c = 0; c < n; c++)
			if (b->all[at[c]].cand >= 0 && b->all[at[c]].q == q)
				col[k] = c, vals[k] = b->all[at[c]].u, k++;
		util_row[q] = k ? milp_add_row(m, k, col, vals, MILP_LE, b->lim->cap[q]) : -1;
		nrows += k > 0;
	}
	if (b->lim->power > 0) {
		for (unsigned c = 0; c < n; c++)
			col[c] = c, vals[c] = b->all[at[c]].cand >= 0 ? b->all[at[c]].pw : 0;
		power_row = milp_add_row(m, n, col, vals, MILP_LE, b->lim->power), nrows++;
	}
	if (b->lim->mem > 0) {
		for (unsigned c = 0; c < n; c++)
			col[c] = c, vals[c] = b->all[at[c]].cand >= 0 ? b->all[at[c]].lc / 1048576.0 : 0;
		mem_row = milp_add_row(m, n, col, vals, MILP_LE, b->lim->mem / 1048576.0), nrows++;
	}
	for (unsigned c = 0; c < n; c++)
		col[c] = c, vals[c] = b->all[at[c]].c, milp_set_bounds(m, c, 0, 1);
	milp_set_objective(m, n, col, vals, true);
	if ((duals = calloc(nrows + 1, sizeof(double))) == NULL || milp_relax(m, &obj, duals) != 0)
		goto out;
	/* any multipliers >= 0 give a bound: the duals' magnitudes */
	b->lambda = power_row >= 0 ? fabs(duals[power_row]) : 0;
	b->nu = mem_row >= 0 ? fabs(duals[mem_row]) : 0;
	for (unsigned q = 0; q < p->nplaces; q++)
		b->mu[q] = util_row[q] >= 0 ? fabs(duals[util_row[q]]) : 0;
	ret = 0;
out:
	milp_free(m);
	free(col);
	free(at);
	free(vals);
	free(duals);
	return ret;
}

/* Every objective is a sum of the choices' contributions: when all of them
 * are whole multiples of one power of ten (accuracies measured on a test
 * set, whole weights), so is every objective, and a bound less than that
 * quantum above the best found cannot be bettered: just under it. Else a
 * tolerance of 1e-9 of the objective's scale (rounding). */
static double
objective_step(const struct bb_cand *c, unsigned n)
{
	double scale = 1e-9;

	for (unsigned x = 0; x < n; x++)
		if (c[x].cand >= 0)
			scale = fmax(scale, fabs(c[x].c));
	for (double q = 0.1; q >= 1e-7; q /= 10) {
		bool whole = q > 1e-9 * scale;
		for (unsigned x = 0; x < n && whole; x++) {
			double m = c[x].c / q;
			whole = fabs(m - round(m)) < 1e-6;
		}
		if (whole)
			return q * (1 - 1e-3);
	}
	return 1e-9 * scale * n;
}

/* The MIP's optimum (the lexicographic one of solve_lex: least dropped
 * weight, then the objective) by a depth-first branch-and-bound over the
 * tenants, each one of its kept points or dropped, bounded by the
 * Lagrangian relaxation of power, utilisations and memory with the
 * multipliers of the root's linear relaxation (lp_solve's duals; without
 * it a subgradient descent), the frequencies fixed on the way down and each
 * remaining tenant's best point that still fits. lp_solve's own
 * branch-and-bound took up to a second on XU3 instances with a power cap,
 * where many plans are within a few 0.01 % of accuracy of each other; this
 * one takes milliseconds. 0 proven optimal, 1 out of time (the best found
 * in choice), 2 out of time with nothing, -1 out of memory. */
static int
solve_bb(const struct ten_problem *p, const struct model *md, const struct limits *lim, int *choice, long *nodes,
         char **cause)
{
	static struct bb b;
	int ret = -1;

	memset(&b, 0, sizeof(b));
	b.p = p, b.lim = lim, b.md = md;
	b.deadline = now_us() / 1e6 + (p->time_limit_s > 0 ? p->time_limit_s : 1.0);
	if ((b.all = malloc((md->nx + p->ntenants) * sizeof(*b.all))) == NULL ||
	    (b.held = calloc(md->nslots + 1, sizeof(double))) == NULL) {
		free(b.all);
		set_cause(cause, "out of memory");
		return -1;
	}
	{
		double range = 1, most[TEN_MAX_TENANTS] = { 0 };
		for (unsigned x = 0; x < md->nx; x++)
			most[md->x_tenant[x]] = fmax(most[md->x_tenant[x]],
			                             fabs(contribution(p, md->x_tenant[x], &p->cands[md->x_tenant[x]][md->x_cand[x]])));
		for (unsigned i = 0; i < p->ntenants; i++)
			range += 2 * most[i];
		/* a power of ten: with whole weights, dropping stays a whole
		 * multiple of the accuracies' quantum */
		b.big = pow(10, ceil(log10(2 * range / weight_quantum(p))));
	}
	for (unsigned i = 0, x = 0; i < p->ntenants; i++) {
		b.cand[i] = &b.all[b.nall];
		for (; x < md->nx && md->x_tenant[x] == i; x++) {
			const struct ten_candidate *c = &p->cands[i][md->x_cand[x]];
			struct bb_cand *bc = &b.all[b.nall++];
			bc->cand = (int)md->x_cand[x], bc->t = i, bc->q = c->point.place, bc->f = c->point.freq;
			bc->c = contribution(p, i, c), bc->pw = ten_power(&p->tenants[i], c), bc->u = util_of(p, i, c);
			bc->mem = c->mem_bytes, bc->wt = c->weight_bytes, bc->slot = md->x_slot[x];
			bc->lc = bc->mem + bc->wt / md->slot_n[bc->slot];
		}
		struct bb_cand *d = &b.all[b.nall++];
		memset(d, 0, sizeof(*d));
		d->cand = -1, d->c = -b.big * p->tenants[i].weight;
		b.ncand[i] = (unsigned)(&b.all[b.nall] - b.cand[i]);
	}
	{
		/* the one objective only where rounding at its scale stays far
		 * below the objective's own resolution */
		double wsum = 0, step;
		for (unsigned i = 0; i < p->ntenants; i++)
			wsum += p->tenants[i].weight;
		for (unsigned x = 0; x < b.nall; x++)
			if (b.all[x].cand < 0)
				b.all[x].c = 0;
		step = objective_step(b.all, b.nall);
		b.lex = b.big * wsum * 1e-15 > 1e-2 * step;
		for (unsigned i = 0; i < p->ntenants && !b.lex; i++) /* each one's last: dropped */
			b.cand[i][b.ncand[i] - 1].c = -b.big * p->tenants[i].weight;
	}
	if (bb_lp_multipliers(&b) != 0)
		bb_subgradient(&b);
	b.step = objective_step(b.all, b.nall);
	for (unsigned i = 0; i < p->ntenants; i++) {
		for (unsigned j = 0; j < b.ncand[i]; j++)
			b.cand[i][j].reduced =
			        b.lex && b.cand[i][j].cand < 0 ? -INFINITY : bb_objective(&b, &b.cand[i][j]);
		qsort(b.cand[i], b.ncand[i], sizeof(*b.cand[i]), cmp_bb_cand);
	}
	/* heaviest first, then those with fewer points */
	b.nt = p->ntenants;
	for (unsigned i = 0; i < p->ntenants; i++)
		b.order[i] = i;
	for (unsigned a = 1; a < b.nt; a++)
		for (unsigned c = a; c > 0; c--) {
			unsigned x = b.order[c], y = b.order[c - 1];
			if (!(p->tenants[x].weight > p->tenants[y].weight ||
			      (p->tenants[x].weight == p->tenants[y].weight && b.ncand[x] < b.ncand[y])))
				break;
			b.order[c] = y, b.order[c - 1] = x;
		}
	for (unsigned k = b.nt; k-- > 0;)
		b.rest[k] = b.rest[k + 1] | UINT64_C(1) << b.order[k];
	for (unsigned q = 0; q < POL_MAX_PLACES; q++)
		b.freq[q] = -1;
	for (unsigned i = 0; i < TEN_MAX_TENANTS; i++)
		b.pick[i] = -1;
	bb_search(&b, 0);
	*nodes += b.nodes;
	for (unsigned i = 0; i < p->ntenants; i++)
		choice[i] = b.have ? b.best[i] : -1;
	ret = !b.late ? 0 : b.have ? 1 : 2;
	free(b.all);
	free(b.held);
	return ret;
}

/* ---- ties: where, then how fast ------------------------------------------------ */

/* How crowded the placements are: the sum over placements of the square of
 * the share of their capacity in use. Lower when the same work is spread. */
static double
crowding(const struct ten_problem *p, const int *choice)
{
	double share[POL_MAX_PLACES] = { 0 }, sum = 0;

	for (unsigned i = 0; i < p->ntenants; i++)
		if (choice[i] >= 0) {
			const struct ten_candidate *c = &p->cands[i][choice[i]];
			share[c->point.place] += util_of(p, i, c) / capacity(p, c->point.place);
		}
	for (unsigned q = 0; q < p->nplaces; q++)
		sum += share[q] * share[q];
	return sum;
}

/* The frequency the tenants other than i use on placement q, or -1. */
static int
others_freq(const struct ten_problem *p, const int *choice, unsigned i, unsigned q)
{
	for (unsigned k = 0; k < p->ntenants; k++)
		if (k != i && choice[k] >= 0 && p->cands[k][choice[k]].point.place == q)
			return (int)p->cands[k][choice[k]].point.freq;
	return -1;
}

/* Tenant i's candidate on placement q as good as its choice now (the same g
 * and plan, no less accuracy) that leaves the whole assignment feasible, at
 * the same objective, least crowded: its index, or -1. *crowd: the
 * crowding with it. */
static int
equivalent_on(const struct ten_problem *p, int *choice, unsigned i, unsigned q, double objective,
              struct ten_result *scratch, double *crowd)
{
	const int now = choice[i];
	const struct ten_candidate *cur = &p->cands[i][now];
	const int freq = shared_freq(p, q) ? others_freq(p, choice, i, q) : -1;
	int best = -1;

	*crowd = INFINITY;
	for (unsigned j = 0; j < p->ncands[i]; j++) {
		const struct ten_candidate *c = &p->cands[i][j];
		if (c->point.place != q || c->point.groups != cur->point.groups || strcmp(c->plan, cur->plan) ||
		    accuracy_of(c) < accuracy_of(cur) || (freq >= 0 && (int)c->point.freq != freq) ||
		    !ten_candidate_ok(p, i, c))
			continue;
		choice[i] = (int)j;
		if (evaluate(p, choice, scratch) && scratch->objective >= objective - 1e-9) {
			double cr = crowding(p, choice);
			if (cr < *crowd)
				*crowd = cr, best = (int)j;
		}
	}
	choice[i] = now;
	return best;
}

/* How much a move must lower the crowding, as a fraction, to be made; and
 * how much more crowded a return to the plan in force may be. Between the
 * two the plan stays as it is: a plan made every few seconds from feedback
 * that moves a little would otherwise swap equal placements each time. */
#define SPREAD_GAIN 0.10

/* Ties, the first: the MIP maximises weighted accuracy alone, so among
 * plans of the same accuracy it may pick any, and it picked three tenants
 * on one CPU of two, the other idle (bench/tenants: the one with the
 * tightest deadline then queued behind the others and ran a group lower
 * whenever a co-runner came). So, keeping every tenant's g, plan and
 * accuracy: first each tenant goes back to the placement the plan in force
 * gave it, unless that is clearly more crowded; then, one at a time, the
 * move that spreads the load most, while it clearly does. */
static void
spread(const struct ten_problem *p, int *choice)
{
	struct ten_result *scratch;
	double objective, crowd, moved;

	if (p->objective != TEN_MAX_ACCURACY || p->nplaces < 2 || (scratch = malloc(sizeof(*scratch))) == NULL)
		return;
	if (!evaluate(p, choice, scratch)) {
		free(scratch);
		return;
	}
	objective = scratch->objective;
	for (unsigned i = 0; i < p->ntenants; i++) {
		int q = p->current_place[i], j;
		if (choice[i] < 0 || q < 0 || (unsigned)q >= p->nplaces || p->cands[i][choice[i]].point.place == (unsigned)q)
			continue;
		crowd = crowding(p, choice);
		j = equivalent_on(p, choice, i, (unsigned)q, objective, scratch, &moved);
		if (j >= 0 && moved <= crowd * (1 + SPREAD_GAIN))
			choice[i] = j;
	}
	for (unsigned round = 0; round < p->ntenants * p->nplaces; round++) {
		int bi = -1, bj = -1;
		double best;
		best = crowd = crowding(p, choice);
		for (unsigned i = 0; i < p->ntenants; i++)
			for (unsigned q = 0; q < p->nplaces && choice[i] >= 0; q++) {
				int j;
				if (p->cands[i][choice[i]].point.place == q)
					continue;
				j = equivalent_on(p, choice, i, q, objective, scratch, &moved);
				if (j >= 0 && moved < best)
					best = moved, bi = (int)i, bj = j;
			}
		if (bi < 0 || best > crowd * (1 - SPREAD_GAIN))
			break;
		choice[bi] = bj;
	}
	free(scratch);
}

/* Ties, the second: keeping each tenant's g and placement, choose per
 * placement the frequency (one for all its tenants) and each tenant's
 * thread count that draw the least power while every constraint still
 * holds. Accuracy-objective only (the energy objective has no ties to
 * break but accuracy ones, which this leaves). */
static void
polish(const struct ten_problem *p, int *choice)
{
	unsigned grp[TEN_MAX_TENANTS];

	if (p->objective != TEN_MAX_ACCURACY)
		return;
	model_groups(p, grp);
	for (unsigned q = 0; q < p->nplaces; q++) {
		int best[TEN_MAX_TENANTS];
		double best_power = INFINITY, other_power = 0;
		bool any = false;
		for (unsigned i = 0; i < p->ntenants; i++)
			if (choice[i] >= 0 && p->cands[i][choice[i]].point.place != q)
				other_power += ten_power(&p->tenants[i], &p->cands[i][choice[i]]);
			else if (choice[i] >= 0)
				any = true;
		if (!any)
			continue;
		for (unsigned f = 0; f < p->places[q].nfreqs; f++) {
			int pick[TEN_MAX_TENANTS];
			double util = 0, power = 0;
			bool ok = true;
			for (unsigned i = 0; i < p->ntenants && ok; i++) {
				pick[i] = choice[i];
				if (choice[i] < 0 || p->cands[i][choice[i]].point.place != q)
					continue;
				const struct ten_candidate *now = &p->cands[i][choice[i]];
				double bp = INFINITY;
				pick[i] = -1;
				for (unsigned j = 0; j < p->ncands[i]; j++) {
					const struct ten_candidate *c = &p->cands[i][j];
					if (c->point.place != q || c->point.freq != f || c->point.groups != now->point.groups ||
					    strcmp(c->plan, now->plan) || accuracy_of(c) < accuracy_of(now) || !ten_candidate_ok(p, i, c))
						continue;
					if (!shared_freq(p, q) && j != (unsigned)choice[i] && c->point.freq != now->point.freq)
						continue;
					if (ten_power(&p->tenants[i], c) < bp)
						bp = ten_power(&p->tenants[i], c), pick[i] = (int)j;
				}
				if (pick[i] < 0) {
					ok = false;
					break;
				}
				util += util_of(p, i, &p->cands[i][pick[i]]);
				power += bp;
			}
			/* memory of the whole assignment: the placement's tenants may
			 * share weights with the others' */
			for (unsigned i = 0; i < p->ntenants && ok; i++)
				ok = pick[i] < 0 || waits_fit(p, pick, p->ntenants, i, &p->cands[i][pick[i]]);
			if (!ok || util > capacity(p, q) + 1e-9 ||
			    (p->power_cap_w > 0 && other_power + power > p->power_cap_w + 1e-9) ||
			    (p->memory_bytes > 0 && assignment_memory(p, grp, pick, NULL) > p->memory_bytes + 1e-6))
				continue;
			if (power < best_power - 1e-12) {
				best_power = power;
				memcpy(best, pick, sizeof(best));
			}
		}
		if (best_power < INFINITY)
			for (unsigned i = 0; i < p->ntenants; i++)
				choice[i] = best[i];
	}
}

int
ten_solve(const struct ten_problem *p, bool explain, struct ten_result *r, char **cause)
{
	struct model md;
	struct limits lim;
	int choice[TEN_MAX_TENANTS];
	bool lpsolve = p->solver == TEN_SOLVER_LPSOLVE;
	double t0 = now_us(), c0 = cpu_us();
	int st;

	memset(r, 0, sizeof(*r));
	/* The branch-and-bound takes its multipliers from lp_solve's linear
	 * relaxation: without them its bounds are too weak to finish in time
	 * (under qemu, four tenants on XU3 ran past 2 minutes). */
	if (!milp_available())
		return set_cause(cause, "no MIP solver: gearbox was built without lp_solve (apt-get install "
		                 "liblpsolve55-dev lp-solve, then configure again)");
	if (build(p, &md, lpsolve, cause) != 0) {
		model_free(&md);
		return -1;
	}
	r->cols = md.ncols;
	r->rows = md.m ? milp_rows(md.m) : md.nrows;
	r->binaries = md.nx;
	for (unsigned q = 0; q < p->nplaces; q++)
		for (unsigned f = 0; f < p->places[q].nfreqs; f++)
			r->binaries += md.y_col[q][f] >= 0;
	r->candidates_kept = md.kept;
	r->candidates_total = md.total;
	limits_of(p, &lim);
	if (lpsolve)
		st = solve_lex(p, &md, choice, &r->solves, &r->nodes, cause);
	else
		r->solves++, st = solve_bb(p, &md, &lim, choice, &r->nodes, cause);
	if (st < 0) {
		model_free(&md);
		return -1;
	}
	if (st > 0) {
		/* out of time: the best found, or greedy's plan when that is better */
		static struct ten_result g, found;
		ten_solve_greedy(p, &g);
		evaluate(p, choice, &found);
		if (st == 2 || ten_compare(&found, &g, 1e-9) < 0)
			for (unsigned i = 0; i < p->ntenants; i++)
				choice[i] = g.a[i].cand;
	}
	spread(p, choice);
	polish(p, choice);
	r->solve_us = now_us() - t0;
	r->solve_cpu_us = cpu_us() - c0;
	{
		unsigned rows = r->rows, cols = r->cols, bins = r->binaries, kept = r->candidates_kept,
		         total = r->candidates_total, solves = r->solves;
		long nodes = r->nodes;
		double us = r->solve_us, cus = r->solve_cpu_us;
		evaluate(p, choice, r);
		r->solve_cpu_us = cus;
		r->rows = rows, r->cols = cols, r->binaries = bins, r->candidates_kept = kept;
		r->candidates_total = total, r->solves = solves, r->nodes = nodes, r->solve_us = us;
	}
	finish(p, r, lpsolve ? "milp-lpsolve" : "milp");
	r->proven = st == 0;
	if (explain) {
		double t1 = now_us();
		for (unsigned k = 0; k < r->nbind; k++) {
			struct ten_binding *b = &r->bind[k];
			struct ten_result rr;
			struct limits relaxed = lim;
			int row = -1, got;
			double old = 0, wide = 1e9;
			unsigned q = 0;
			if (!strncmp(b->what, "utilisation of ", 15) || !strncmp(b->what, "one frequency on ", 17)) {
				const char *name = strrchr(b->what, ' ') + 1;
				for (q = 0; q < p->nplaces && strcmp(p->places[q].name, name); q++)
					;
				if (q == p->nplaces)
					continue;
				row = b->what[0] == 'u' ? md.util_row[q] : md.one_freq_row[q];
				if (b->what[0] == 'o')
					wide = p->places[q].nfreqs, relaxed.one_freq[q] = false;
				else
					relaxed.cap[q] = 1e9;
			} else if (!strcmp(b->what, "power cap")) {
				row = md.power_row, relaxed.power = 0;
			} else if (!strcmp(b->what, "memory")) {
				row = md.mem_row, relaxed.mem = 0;
			}
			if (row < 0)
				continue;
			memset(&rr, 0, sizeof(rr));
			if (lpsolve) {
				old = b->what[0] == 'u' ? capacity(p, q) : b->what[0] == 'o' ? 1 : b->what[0] == 'p' ? p->power_cap_w
				                                                                                   : p->memory_bytes / 1048576.0;
				milp_set_rhs(md.m, (unsigned)row, wide);
				if (b->what[0] == 'u')
					for (unsigned k2 = 0; k2 < md.nfutil[q]; k2++)
						milp_set_rhs(md.m, (unsigned)md.futil_row[q][k2], wide);
				got = solve_lex(p, &md, choice, &rr.solves, &rr.nodes, NULL);
				milp_set_rhs(md.m, (unsigned)row, old);
				if (b->what[0] == 'u')
					for (unsigned k2 = 0; k2 < md.nfutil[q]; k2++)
						milp_set_rhs(md.m, (unsigned)md.futil_row[q][k2], 0);
			} else {
				got = solve_bb(p, &md, &relaxed, choice, &rr.nodes, NULL);
			}
			if (got >= 0 && got != 2) {
				evaluate(p, choice, &rr);
				b->weight_gain = r->dropped_weight - rr.dropped_weight;
				b->gain = rr.dropped_weight < r->dropped_weight - 1e-9 ? 0 : rr.objective - r->objective;
				if (b->gain < 1e-9)
					b->gain = 0;
				b->binds = b->weight_gain > 1e-9 || b->gain > 1e-7;
			}
		}
		r->explain_us = now_us() - t1;
		finish(p, r, lpsolve ? "milp-lpsolve" : "milp"); /* the reasons again, with what binds now known */
		r->explain_us = now_us() - t1;
	}
	model_free(&md);
	return 0;
}

/* ---- what binds, and why each tenant got what it got ------------------------------- */

static void
add_bind(struct ten_result *r, const char *what, double used, double limit)
{
	for (unsigned k = 0; k < r->nbind; k++)
		if (!strcmp(r->bind[k].what, what)) {
			r->bind[k].used = used, r->bind[k].limit = limit;
			return;
		}
	if (r->nbind == TEN_MAX_BINDS)
		return;
	struct ten_binding *b = &r->bind[r->nbind++];
	memset(b, 0, sizeof(*b));
	snprintf(b->what, sizeof(b->what), "%s", what);
	b->used = used, b->limit = limit;
	b->binds = limit > 0 && used >= 0.99 * limit;
}

/* The constraint families (every one, binding or not), and each tenant's
 * reason. Called again after the explanation has set `binds`. */
static void
finish(const struct ten_problem *p, struct ten_result *r, const char *method)
{
	char what[96], binding[200] = "";
	size_t len = 0;

	snprintf(r->method, sizeof(r->method), "%s", method);
	for (unsigned q = 0; q < p->nplaces; q++) {
		bool used = false;
		for (unsigned i = 0; i < p->ntenants; i++)
			for (unsigned j = 0; j < p->ncands[i] && !used; j++)
				used = p->cands[i][j].point.place == q;
		if (!used)
			continue;
		snprintf(what, sizeof(what), "utilisation of %s", p->places[q].name);
		add_bind(r, what, r->util[q], capacity(p, q));
		if (shared_freq(p, q)) {
			snprintf(what, sizeof(what), "one frequency on %s", p->places[q].name);
			add_bind(r, what, 0, 0);
		}
	}
	if (p->power_cap_w > 0)
		add_bind(r, "power cap", r->power_w, p->power_cap_w);
	if (p->memory_bytes > 0)
		add_bind(r, "memory", r->mem_bytes, p->memory_bytes);
	for (unsigned k = 0; k < r->nbind; k++)
		if (r->bind[k].binds)
			len += (size_t)snprintf(binding + len, len < sizeof(binding) ? sizeof(binding) - len : 0, "%s%s",
			                        len ? ", " : "", r->bind[k].what);
	if (len >= sizeof(binding))
		len = sizeof(binding) - 1;
	for (unsigned i = 0; i < p->ntenants; i++) {
		struct ten_assignment *a = &r->a[i];
		char desc[128];
		a->best_alone = best_alone(p, i);
		if (a->best_alone < 0) {
			double fastest = INFINITY;
			for (unsigned j = 0; j < p->ncands[i]; j++)
				fastest = fmin(fastest, p->cands[i][j].point.tail_us > 0 ? p->cands[i][j].point.tail_us
				                                                          : p->cands[i][j].point.latency_us);
			snprintf(a->why, sizeof(a->why),
			         "no operating point meets its budgets even alone (deadline %.0f us, fastest point %.0f us)",
			         p->tenants[i].deadline_us, fastest);
		} else if (a->cand < 0) {
			snprintf(a->why, sizeof(a->why), "dropped (weight %g) so that the others fit: %s", p->tenants[i].weight,
			         len ? binding : "resources shared with heavier tenants");
		} else if (contribution(p, i, &p->cands[i][a->cand]) >=
		           contribution(p, i, &p->cands[i][a->best_alone]) - 1e-12) {
			snprintf(a->why, sizeof(a->why), "its best point even alone");
		} else if (p->objective == TEN_MAX_ACCURACY &&
		           accuracy_of(&p->cands[i][a->cand]) >= accuracy_of(&p->cands[i][a->best_alone]) - 1e-12) {
			snprintf(a->why, sizeof(a->why), "its best accuracy even alone (at more power than alone: %s)",
			         len ? binding : "a frequency it shares");
		} else {
			ten_candidate_describe(p, &p->cands[i][a->best_alone], desc, sizeof(desc));
			snprintf(a->why, sizeof(a->why), "alone it would get %s (accuracy %.4f); held back by %s", desc,
			         accuracy_of(&p->cands[i][a->best_alone]), len ? binding : "what the others need");
		}
	}
}

/* ---- candidates from a predictor --------------------------------------------------- */

unsigned
ten_candidates_from_predictor(const struct pol_predictor *pr, const struct pol_params *params,
                              const double *weight_bytes, const double *mem_bytes, struct ten_candidate *out,
                              unsigned max)
{
	unsigned cap = pol_table_capacity(pr), n;
	struct pol_point *pts = malloc((cap ? cap : 1) * sizeof(*pts));

	if (pts == NULL)
		return 0;
	n = pol_table_build(pr, params, NULL, NULL, pts, cap);
	if (n > max)
		n = max;
	for (unsigned k = 0; k < n; k++) {
		memset(&out[k], 0, sizeof(out[k]));
		out[k].point = pts[k];
		out[k].weight_bytes = weight_bytes ? weight_bytes[pts[k].groups] : 0;
		out[k].mem_bytes = mem_bytes ? mem_bytes[pts[k].groups] : 0;
	}
	free(pts);
	return n;
}
