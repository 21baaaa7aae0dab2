/* SPDX-License-Identifier: MIT */
/* milp — a small mixed-integer linear programming interface, so that the
 * tenant solver (policies/tenants.c) does not depend on one solver library.
 * Backed by lp_solve 5.5 (policies/milp_lpsolve.c, LGPL-2.1+); another
 * library can replace it by implementing these functions.
 *
 * A problem has ncols columns (0-based), each continuous or binary, with
 * bounds; rows are sparse (column indices and coefficients) with a sense and
 * a right-hand side. Built once, solved once or more (bounds and right-hand
 * sides may change between solves).
 */
#ifndef GEARBOX_POLICIES_MILP_H
#define GEARBOX_POLICIES_MILP_H

#include <stdbool.h>

struct milp;

enum milp_sense { MILP_LE, MILP_GE, MILP_EQ };

enum milp_status {
	MILP_OPTIMAL,
	MILP_INFEASIBLE,
	MILP_TIMEOUT,    /* no proven optimum in time (x holds the best found, if any) */
	MILP_ERROR,
};

/* Whether a solver was built in, and its name and version ("lp_solve 5.5.2.5"). */
bool milp_available(void);
const char *milp_backend(void);

/* A problem with ncols columns, all continuous in [0, +inf) until told
 * otherwise. NULL with *cause when no solver is built in. */
struct milp *milp_new(unsigned ncols, char **cause);
void milp_free(struct milp *m);
void milp_set_binary(struct milp *m, unsigned col);
void milp_set_bounds(struct milp *m, unsigned col, double lo, double hi);
/* The objective: n (col, coefficient) pairs; the others are 0. */
void milp_set_objective(struct milp *m, unsigned n, const unsigned *cols, const double *vals, bool maximise);
/* Add a row, returning its index (0-based) or -1. */
int milp_add_row(struct milp *m, unsigned n, const unsigned *cols, const double *vals, enum milp_sense sense,
                 double rhs);
/* Stop when the best bound is within `absolute` of the best solution (1e-7
 * unless told). */
void milp_set_gap(struct milp *m, double absolute);
/* Branch on columns of higher priority first (default 0). */
void milp_set_priority(struct milp *m, unsigned col, int priority);
void milp_set_rhs(struct milp *m, unsigned row, double rhs);
/* Solve; x (ncols) and *objective get the solution when status is
 * MILP_OPTIMAL, or MILP_TIMEOUT with one found (*found: the best found when
 * time ran out). timeout_s <= 0: no limit. */
enum milp_status milp_solve(struct milp *m, double timeout_s, double *x, double *objective, bool *found);
/* The linear relaxation (every column continuous): its optimum and the
 * rows' dual values (nrows, the objective's change per unit of right-hand
 * side). 0, or -1 when it has none (infeasible, no solver). */
int milp_relax(struct milp *m, double *objective, double *duals);
unsigned milp_rows(const struct milp *m);
unsigned milp_cols(const struct milp *m);
/* What the library said of the last solve, in words. */
const char *milp_status_text(const struct milp *m);
/* Branch-and-bound nodes of the last solve. */
long milp_nodes(const struct milp *m);

#endif
