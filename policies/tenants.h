/* SPDX-License-Identifier: MIT */
/* tenants — one operating point per tenant, chosen jointly by integer
 * programming (HAO-style) over the MIP interface of policies/milp.h.
 *
 * A tenant is a stream of requests (a client session or a what-if): a rate, a
 * deadline, optionally an energy budget per request, an accuracy floor and a
 * weight. Each has candidate operating points (g, placement, threads,
 * frequency, precision plan) with predicted latency, energy, accuracy and
 * memory. The solver picks one per tenant that maximises the weighted
 * accuracy (or minimises the weighted power) subject to
 *   - every deadline, energy budget and accuracy floor (per candidate),
 *   - utilisation <= max_util per placement: the sum over tenants of
 *     rate x latency x threads is at most the placement's CPUs (a device: 1),
 *   - one frequency per DVFS placement, shared by every tenant on it (binary
 *     variables per placement frequency),
 *   - an optional power cap (average power: rate x energy per request, summed),
 *   - optional memory: each model's weights once (the most any of its served
 *     tenants' points needs: the g of a model share one mapped copy, and so
 *     do its tenants) plus every served tenant's own buffers. A model's
 *     weights are shared by the tenants whose points run the same plan
 *     (another precision's weights are a copy of their own); tenants with no
 *     model name share nothing,
 *   - on a serial placement (one inference at a time, not preempted), two
 *     tenants share it only when each one's deadline holds its own latency
 *     with the margin plus one of the other's (a request that arrives while
 *     the other's runs waits for it): x_ij + sum of k's conflicting x_kl <= 1.
 * When not every tenant fits, the fewest by weight are dropped (first the
 * dropped weight is minimised, then the objective with that weight), and the
 * result says which constraints bind: those whose relaxation would serve
 * more weight or improve the objective.
 *
 * The same objective and constraints are evaluated by an exhaustive search
 * (small instances, the tests' reference) and a greedy per-tenant choice
 * (the baseline). Nothing here touches sockets or hardware.
 */
#ifndef GEARBOX_POLICIES_TENANTS_H
#define GEARBOX_POLICIES_TENANTS_H

#include <stdbool.h>

#include "policies/policy.h"

#define TEN_MAX_TENANTS 32
#define TEN_MAX_BINDS 24

struct ten_tenant {
	char name[POL_NAME];
	char model[POL_NAME];
	double rate_hz;          /* requests per second (> 0) */
	double deadline_us;      /* 0 = none */
	double energy_uj;        /* per request, 0 = none */
	double min_accuracy;     /* 0..1, 0 = none */
	double weight;           /* > 0 */
};

struct ten_candidate {
	struct pol_point point;  /* g, place, threads, freq, khz, accuracy, latency, energy, power */
	char plan[POL_NAME];     /* precision/kernel plan, "" = the default fp32 kernels */
	double weight_bytes;     /* its model's weights at this g (and plan): one copy for every tenant of
	                            the model (ten_tenant.model) on the same plan */
	double mem_bytes;        /* what the tenant needs of its own: activation and scratch buffers */
	bool accuracy_predicted; /* from the accuracy predictor, not measured */
};

enum ten_objective {
	TEN_MAX_ACCURACY, /* maximise sum of weight x accuracy (ties: least power, after the solve) */
	TEN_MIN_ENERGY,   /* minimise sum of weight x average power */
};

enum ten_solver {
	TEN_SOLVER_BB,      /* a branch-and-bound of its own over the tenants, bounded by the linear
	                       relaxation's duals (lp_solve's, or a subgradient descent without it) */
	TEN_SOLVER_LPSOLVE, /* the whole MIP to the MIP library (policies/milp.h) */
};

struct ten_problem {
	enum ten_objective objective;
	enum ten_solver solver;  /* default TEN_SOLVER_BB */
	unsigned nplaces;
	struct pol_place places[POL_MAX_PLACES]; /* max_threads = CPUs; freqs; dvfs */
	double max_util;         /* per placement, default 1 */
	bool serial;             /* each placement runs one request at a time (gearboxd's workers), and
	                            tenants on one wait for each other's inferences (see above):
	                            its capacity is max_util of its time, rate x latency, not of its CPUs */
	double margin;           /* latency x (1 + margin) must meet the deadline */
	double power_cap_w;      /* 0 = none */
	double memory_bytes;     /* 0 = none */
	double time_limit_s;     /* per MIP solve, 0 = 1 s; out of time: the best found, or greedy's */
	unsigned ntenants;
	struct ten_tenant tenants[TEN_MAX_TENANTS];
	struct ten_candidate *cands[TEN_MAX_TENANTS]; /* malloc'ed, freed by ten_problem_clear */
	unsigned ncands[TEN_MAX_TENANTS];
	int current_place[TEN_MAX_TENANTS]; /* where the plan in force put tenant i, -1 (ten_problem_add's
	                                       default) = nowhere yet: among plans of equal accuracy the
	                                       solver keeps tenants there unless moving clearly spreads
	                                       the load (see ten_solve) */
};

void ten_problem_init(struct ten_problem *p, const struct pol_place *places, unsigned nplaces);
void ten_problem_clear(struct ten_problem *p);
/* Append a tenant with n candidates (copied). Its index, or -1 with *cause. */
int ten_problem_add(struct ten_problem *p, const struct ten_tenant *t, const struct ten_candidate *c, unsigned n,
                    char **cause);

struct ten_binding {
	char what[96];           /* "utilisation of big", "one frequency on big", "power cap", "memory" */
	double used, limit;      /* for utilisation, power and memory; 0/0 for frequencies */
	double gain;             /* objective gained by relaxing it (with explain) */
	double weight_gain;      /* tenant weight it would serve besides */
	bool binds;              /* relaxing it helps (explain), or it is used to >= 99 % */
};

struct ten_assignment {
	int cand;                /* index into the tenant's candidates, -1 = dropped */
	int best_alone;          /* its best candidate with the platform to itself, -1 = none */
	double util;             /* of its placement */
	double power_w;
	char why[240];
};

struct ten_result {
	char method[16];         /* "milp", "exhaustive", "greedy" */
	bool proven;             /* milp: solved to optimality in time */
	bool all_served;
	unsigned ndropped;
	double dropped_weight;
	double objective;        /* the objective as defined above, over the served tenants */
	double weighted_accuracy, power_w;
	double mem_bytes;        /* the memory used: weight_bytes plus the served tenants' buffers */
	double weight_bytes;     /* the weights in it, each model's (and plan's) once */
	struct ten_assignment a[TEN_MAX_TENANTS];
	int freq[POL_MAX_PLACES];   /* frequency index chosen per placement, -1 = unused */
	double util[POL_MAX_PLACES];
	unsigned nbind;
	struct ten_binding bind[TEN_MAX_BINDS];
	/* the MIP (milp only) */
	unsigned rows, cols, binaries, candidates_kept, candidates_total;
	unsigned solves;
	long nodes;
	double solve_us;         /* the solve itself (wall clock), without the explanation's solves */
	double solve_cpu_us;     /* the same in this thread's CPU time (what other load does not change) */
	double explain_us;
};

/* The MIP. explain: also solve once per constraint family with it relaxed,
 * to say which bind and what relaxing them would gain. 0, or -1 with *cause
 * (no solver, out of memory, the solver failed). */
int ten_solve(const struct ten_problem *p, bool explain, struct ten_result *r, char **cause);
/* Every combination (with "dropped" as one choice per tenant): the
 * reference for small instances. -1 with *cause when the product of the
 * choice counts is over max_combinations. */
int ten_solve_exhaustive(const struct ten_problem *p, double max_combinations, struct ten_result *r, char **cause);
/* Tenants by weight (heaviest first), each taking its best candidate that
 * still fits beside those before it. */
void ten_solve_greedy(const struct ten_problem *p, struct ten_result *r);
/* Lexicographic comparison of two results: < 0 when a is worse than b
 * (serves less weight, or the same weight with a worse objective, beyond
 * tol), 0 when equal within tol, > 0 when better. */
int ten_compare(const struct ten_result *a, const struct ten_result *b, double tol);

/* The candidate's share of its placement: rate x latency x threads (CPU
 * seconds per second), and its average power (W). */
double ten_util(const struct ten_tenant *t, const struct ten_candidate *c);
double ten_power(const struct ten_tenant *t, const struct ten_candidate *c);
/* Whether a candidate meets its tenant's own budgets (deadline with the
 * margin, energy, accuracy floor) and fits the platform alone. */
bool ten_candidate_ok(const struct ten_problem *p, unsigned tenant, const struct ten_candidate *c);
/* Whether two tenants may share a serial placement: each one's deadline
 * (0: none) holds its own latency with the margin plus one of the other's. */
bool ten_may_share(double deadline_a_us, double latency_a_us, double deadline_b_us, double latency_b_us, double margin);

/* Candidates from a predictor's table (pol_table_build with every point
 * allowed): one per point, weights from weight_bytes[g] and buffers from
 * mem_bytes[g] (NULL: 0). Returns the count (<= max). */
unsigned ten_candidates_from_predictor(const struct pol_predictor *pr, const struct pol_params *params,
                                       const double *weight_bytes, const double *mem_bytes,
                                       struct ten_candidate *out, unsigned max);

/* "g=4 big x2 @1800 MHz" */
void ten_candidate_describe(const struct ten_problem *p, const struct ten_candidate *c, char *buf, unsigned size);

#endif
