/* SPDX-License-Identifier: MIT */
/* policies/milp.h on lp_solve 5.5 (LGPL-2.1+, Debian liblpsolve55-dev and
 * lp-solve). The problem is kept here (columns, bounds, sparse rows) and
 * handed to a fresh lprec at each solve, so that bounds and right-hand sides
 * can change between solves without lp_solve's row-mode rules. Without
 * lp_solve (configure --without-lpsolve) every problem is refused with a
 * message that says so. */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cause.h"
#include "policies/milp.h"

#ifdef HAVE_LPSOLVE
#include <lp_lib.h>
#endif

struct milp_row {
	unsigned n;
	unsigned *cols;
	double *vals;
	enum milp_sense sense;
	double rhs;
};

struct milp {
	unsigned ncols;
	bool *binary;
	double *lo, *hi, *obj;
	int *prio;
	bool have_prio;
	bool maximise;
	unsigned nrows, cap;
	struct milp_row *rows;
	long nodes;
	double gap_abs;
	int last;
	double deadline;
};

bool
milp_available(void)
{
#ifdef HAVE_LPSOLVE
	return true;
#else
	return false;
#endif
}

const char *
milp_backend(void)
{
#ifdef HAVE_LPSOLVE
	static char name[64];
	if (name[0] == '\0') {
		int major, minor, release, build;
		lp_solve_version(&major, &minor, &release, &build);
		snprintf(name, sizeof(name), "lp_solve %d.%d.%d.%d", major, minor, release, build);
	}
	return name;
#else
	return "none (built without lp_solve)";
#endif
}

struct milp *
milp_new(unsigned ncols, char **cause)
{
	struct milp *m;

	if (!milp_available()) {
		set_cause(cause, "no MIP solver: gearbox was built without lp_solve (apt-get install liblpsolve55-dev "
		                 "lp-solve, then configure again)");
		return NULL;
	}
	if ((m = calloc(1, sizeof(*m))) == NULL || (m->binary = calloc(ncols + 1, sizeof(bool))) == NULL ||
	    (m->lo = calloc(ncols + 1, sizeof(double))) == NULL || (m->hi = calloc(ncols + 1, sizeof(double))) == NULL ||
	    (m->obj = calloc(ncols + 1, sizeof(double))) == NULL || (m->prio = calloc(ncols + 1, sizeof(int))) == NULL) {
		milp_free(m);
		set_cause(cause, "out of memory");
		return NULL;
	}
	m->ncols = ncols;
	m->gap_abs = 1e-7;
	for (unsigned c = 0; c < ncols; c++)
		m->hi[c] = INFINITY;
	return m;
}

void
milp_free(struct milp *m)
{
	if (m == NULL)
		return;
	for (unsigned r = 0; r < m->nrows; r++) {
		free(m->rows[r].cols);
		free(m->rows[r].vals);
	}
	free(m->rows);
	free(m->binary);
	free(m->lo);
	free(m->hi);
	free(m->obj);
	free(m->prio);
	free(m);
}

void
milp_set_binary(struct milp *m, unsigned col)
{
	m->binary[col] = true;
	m->lo[col] = 0;
	m->hi[col] = 1;
}

void
milp_set_bounds(struct milp *m, unsigned col, double lo, double hi)
{
	m->lo[col] = lo;
	m->hi[col] = hi;
}

void
milp_set_objective(struct milp *m, unsigned n, const unsigned *cols, const double *vals, bool maximise)
{
	memset(m->obj, 0, m->ncols * sizeof(double));
	for (unsigned i = 0; i < n; i++)
		m->obj[cols[i]] += vals[i];
	m->maximise = maximise;
}

int
milp_add_row(struct milp *m, unsigned n, const unsigned *cols, const double *vals, enum milp_sense sense, double rhs)
{
	struct milp_row *r;

	if (m->nrows == m->cap) {
		unsigned cap = m->cap ? 2 * m->cap : 64;
		void *grown = realloc(m->rows, cap * sizeof(*m->rows));
		if (grown == NULL)
			return -1;
		m->rows = grown;
		m->cap = cap;
	}
	r = &m->rows[m->nrows];
	r->cols = malloc((n ? n : 1) * sizeof(unsigned));
	r->vals = malloc((n ? n : 1) * sizeof(double));
	if (r->cols == NULL || r->vals == NULL) {
		free(r->cols);
		free(r->vals);
		return -1;
	}
	memcpy(r->cols, cols, n * sizeof(unsigned));
	memcpy(r->vals, vals, n * sizeof(double));
	r->n = n;
	r->sense = sense;
	r->rhs = rhs;
	return (int)m->nrows++;
}

void
milp_set_gap(struct milp *m, double absolute)
{
	m->gap_abs = absolute;
}

void
milp_set_priority(struct milp *m, unsigned col, int priority)
{
	m->prio[col] = priority;
	m->have_prio = true;
}

void
milp_set_rhs(struct milp *m, unsigned row, double rhs)
{
	m->rows[row].rhs = rhs;
}

unsigned
milp_rows(const struct milp *m)
{
	return m->nrows;
}

unsigned
milp_cols(const struct milp *m)
{
	return m->ncols;
}

const char *
milp_status_text(const struct milp *m)
{
	static const char *const names[] = { "optimal", "suboptimal", "infeasible", "unbounded", "degenerate",
		                             "numerical failure", "user abort", "timeout", "running", "presolved" };
	static char other[32];
	if (m->last >= 0 && m->last < (int)(sizeof(names) / sizeof(names[0])))
		return names[m->last];
	snprintf(other, sizeof(other), "lp_solve status %d", m->last);
	return other;
}

long
milp_nodes(const struct milp *m)
{
	return m->nodes;
}

#ifdef HAVE_LPSOLVE
static int __WINAPI
abort_when_late(lprec *lp, void *handle)
{
	const struct milp *m = handle;
	struct timespec ts;

	(void)lp;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9 > m->deadline;
}

/* m's rows, objective, sense and bounds into lp; binary columns as such
 * unless `relaxed` (the linear relaxation). idx and val hold ncols + 1. */
static bool
load_problem(const struct milp *m, lprec *lp, int *idx, REAL *val, bool relaxed)
{
	unsigned n = 0;

	set_verbose(lp, NEUTRAL);
	set_add_rowmode(lp, TRUE);
	for (unsigned r = 0; r < m->nrows; r++) {
		const struct milp_row *row = &m->rows[r];
		for (unsigned i = 0; i < row->n; i++)
			idx[i] = (int)row->cols[i] + 1, val[i] = row->vals[i];
		if (!add_constraintex(lp, (int)row->n, val, idx,
		                      row->sense == MILP_LE ? LE : row->sense == MILP_GE ? GE : EQ, row->rhs))
			return false;
	}
	set_add_rowmode(lp, FALSE);
	for (unsigned c = 0; c < m->ncols; c++)
		if (m->obj[c] != 0)
			idx[n] = (int)c + 1, val[n] = m->obj[c], n++;
	if (!set_obj_fnex(lp, (int)n, val, idx))
		return false;
	if (m->maximise)
		set_maxim(lp);
	else
		set_minim(lp);
	for (unsigned c = 0; c < m->ncols; c++) {
		if (!relaxed && m->binary[c])
			set_binary(lp, (int)c + 1, TRUE);
		set_bounds(lp, (int)c + 1, m->lo[c], isinf(m->hi[c]) ? get_infinite(lp) : m->hi[c]);
	}
	return true;
}
#endif


int
milp_relax(struct milp *m, double *objective, double *duals)
{
#ifdef HAVE_LPSOLVE
	lprec *lp = make_lp(0, (int)m->ncols);
	int *idx = malloc((m->ncols + 1) * sizeof(int));
	REAL *val = malloc((m->ncols + 1) * sizeof(REAL)), *d = NULL;
	int ret = -1;

	if (lp == NULL || idx == NULL || val == NULL)
		goto out;
	if (!load_problem(m, lp, idx, val, true))
		goto out;
	set_presolve(lp, PRESOLVE_SENSDUALS, get_presolveloops(lp));
	m->last = solve(lp);
	if (m->last != OPTIMAL && m->last != PRESOLVED)
		goto out;
	*objective = get_objective(lp);
	if (!get_ptr_dual_solution(lp, &d) || d == NULL)
		goto out;
	for (unsigned r = 0; r < m->nrows; r++)
		duals[r] = d[r + 1];
	ret = 0;
out:
	free(idx);
	free(val);
	if (lp != NULL)
		delete_lp(lp);
	return ret;
#else
	(void)m, (void)objective, (void)duals;
	return -1;
#endif
}

enum milp_status
milp_solve(struct milp *m, double timeout_s, double *x, double *objective, bool *found)
{
	*found = false;
#ifdef HAVE_LPSOLVE
	lprec *lp = make_lp(0, (int)m->ncols);
	int *idx = malloc((m->ncols + 1) * sizeof(int));
	REAL *val = malloc((m->ncols + 1) * sizeof(REAL));
	enum milp_status st = MILP_ERROR;
	int ret;

	if (lp == NULL || idx == NULL || val == NULL)
		goto out;
	if (!load_problem(m, lp, idx, val, false))
		goto out;
	if (timeout_s > 0) {
		/* lp_solve's own timeout counts whole seconds: abort from its
		 * callback instead */
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		m->deadline = ts.tv_sec + ts.tv_nsec / 1e9 + timeout_s;
		put_abortfunc(lp, abort_when_late, m);
	}
	if (m->have_prio) {
		/* lp_solve takes a weight per column: lower weights branch first */
		for (unsigned c = 0; c < m->ncols; c++)
			val[c] = -(double)m->prio[c] * (double)m->ncols + c;
		set_var_weights(lp, val);
	}
	/* An absolute gap of 1e-7: the tenant solver's tie-breaking terms are
	 * 1e-6 of the objective's unit, and proving optimality below that costs
	 * a hundred times the nodes (lp_solve's default is 1e-11). */
	set_mip_gap(lp, TRUE, m->gap_abs);
	ret = solve(lp);
	m->last = ret;
	/* GEARBOX_MILP_DUMP=PREFIX: each problem in LP format, PREFIX.N, with
	 * lp_solve's status (a debugging aid: lp_solve -S4 PREFIX.N solves it) */
	if (getenv("GEARBOX_MILP_DUMP")) {
		static int count;
		char path[512];
		snprintf(path, sizeof(path), "%s.%d", getenv("GEARBOX_MILP_DUMP"), count++);
		write_lp(lp, path);
		FILE *f = fopen(path, "a");
		if (f) {
			fprintf(f, "/* status %d objective %.9f */\n", ret, get_objective(lp));
			fclose(f);
		}
	}
	m->nodes = (long)get_total_nodes(lp);
	if (ret == OPTIMAL || ret == PRESOLVED || ret == SUBOPTIMAL ||
	    ((ret == USERABORT || ret == TIMEOUT) && get_solutioncount(lp) > 0)) {
		get_variables(lp, val);
		memcpy(x, val, m->ncols * sizeof(double));
		*objective = get_objective(lp);
		*found = true;
		st = ret == OPTIMAL || ret == PRESOLVED ? MILP_OPTIMAL : MILP_TIMEOUT;
	} else if (ret == INFEASIBLE) {
		st = MILP_INFEASIBLE;
	} else if (ret == TIMEOUT || ret == USERABORT) {
		st = MILP_TIMEOUT;
	}
out:
	free(idx);
	free(val);
	if (lp != NULL)
		delete_lp(lp);
	return st;
#else
	(void)timeout_s, (void)x, (void)objective;
	return MILP_ERROR;
#endif
}
