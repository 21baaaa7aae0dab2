/* SPDX-License-Identifier: MIT */
/* Tenant files (gearbox solve --tenants FILE, gearbox-solve(1)): a [solve]
 * section (objective, power cap, memory, utilisation, margin) and one
 * [tenant NAME] section per tenant (its model, rate, budgets, weight, and
 * what-ifs: a MACs scale, an accuracy predictor for int8 candidates). Read
 * into plain values; the models are not opened here. */
#ifndef GEARBOX_POLICIES_TENANTS_FILE_H
#define GEARBOX_POLICIES_TENANTS_FILE_H

#include "policies/tenants.h"

struct ten_file_tenant {
	struct ten_tenant t;     /* name, rate_hz, deadline_us, energy_uj, min_accuracy, weight (model: unset) */
	char path[1024];         /* the model file ("" = the bundled one); relative names joined to dir */
	double macs_scale;       /* the model's MACs x this (a what-if for a larger network) */
	char sensitivity[1024];  /* the accuracy predictor: int8 plan candidates too ("" = none) */
	double int8_speedup;     /* what the platform model's int8 kernels are assumed to gain (0 = unset) */
};

struct ten_file {
	char dir[1024];          /* the tenants file's folder, for relative model paths */
	enum ten_objective objective;
	double power_cap_w, memory_mb, max_util, margin;
	unsigned n;
	struct ten_file_tenant tenant[TEN_MAX_TENANTS];
};

/* Parse path into *f (cleared first; defaults: accuracy, max_util 1, a
 * tenant's rate 30 Hz and weight 1). 0, or -1 with *cause ("path:line:
 * why", or "path: no [tenant NAME] sections"). */
int ten_file_load(const char *path, struct ten_file *f, char **cause);

#endif
