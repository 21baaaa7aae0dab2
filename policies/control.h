/* SPDX-License-Identifier: MIT */
/* The control loop of one model: choose an operating point, (the caller
 * runs it), learn from what it cost. The same code decides for gearboxd and
 * for `gearbox simulate`; only what "run" means differs.
 *
 * What it adds to the table and the selection of policy.h:
 *  - the time until each placement is free (a request waits behind the one
 *    running there), so that with several placements a request goes where it
 *    finishes first, not where the policy would put it on an empty machine;
 *  - cold starts: a placement that has been idle longer than POL_COLD_GAP_US
 *    runs its next request slower (caches, sleeping threads, idle states),
 *    and so does a thread count whose pool has not run for that long (the
 *    caller says which are cold: pol_context). Cold requests teach their own
 *    measured/predicted factor per (placement, threads), apart from the warm
 *    feedback factor, and a cold point is predicted with it (before the
 *    first, with that of the placement's best-known thread count). At a low
 *    request rate every request is cold, so this is the factor that decides
 *    there;
 *  - the tail: each point's tail_us is its prediction plus what the largest
 *    of the last 64 measured/predicted ratios of its (placement, threads)
 *    adds (about the 98.5th percentile; a sample counts as the smaller of
 *    the time it added and its ratio, see tail_excess_us), and deadlines are
 *    checked against that, so a deadline called feasible is kept by slow
 *    requests too, not only by the typical one;
 *  - a choice even when the policy allows nothing (all groups on the first
 *    placement, said infeasible with the reason).
 *
 * Not thread-safe: one caller at a time per struct pol_control (gearboxd
 * holds the model's lock around choose and learn).
 */
#ifndef GEARBOX_POLICIES_CONTROL_H
#define GEARBOX_POLICIES_CONTROL_H

#include <stdbool.h>

#include "policies/policy.h"

#define POL_TAIL_SAMPLES 64

/* Idle longer than this and a placement's next request is a cold start. */
#define POL_COLD_GAP_US 2000.0

struct pol_control {
	struct pol_predictor predictor;
	struct pol_feedback feedback;
	/* measured/predicted latency of cold starts, and how many were seen
	 * (none yet: the warm factor stands in) */
	double cold_factor[POL_MAX_PLACES][POL_MAX_THREADS + 1];
	unsigned cold_samples[POL_MAX_PLACES][POL_MAX_THREADS + 1];
	/* the last POL_TAIL_SAMPLES measured/predicted ratios per (placement,
	 * threads), and the prediction each was against (µs): how far above its
	 * prediction a request's time goes, so that deadlines are kept for the
	 * slow requests, not the typical one */
	float tail[POL_MAX_PLACES][POL_MAX_THREADS + 1][POL_TAIL_SAMPLES];
	float tail_base_us[POL_MAX_PLACES][POL_MAX_THREADS + 1][POL_TAIL_SAMPLES];
	unsigned ntail[POL_MAX_PLACES][POL_MAX_THREADS + 1];
	struct pol_point *table; /* sized from the space (pol_table_capacity) */
	unsigned table_cap;
};

/* What the caller knows about the placements when it decides. */
struct pol_context {
	double wait_us[POL_MAX_PLACES]; /* until the placement is free; 0 = idle now */
	/* idle longer than POL_COLD_GAP_US, per thread count: an engine of
	 * several threads whose pool has not run for that long is cold on a
	 * placement warm from another thread count's runs */
	bool cold[POL_MAX_PLACES][POL_MAX_THREADS + 1];
	const struct pol_freq_floor *floor; /* what other users hold clocks at, or NULL */
};

/* Set up the predictor (placements and model facts, guessed fits until
 * calibrated) and a table as large as the whole space. */
int pol_control_init(struct pol_control *c, const struct pol_model *model, const struct pol_place *places,
                     unsigned nplaces, char **cause);
void pol_control_free(struct pol_control *c);
/* A calibration replaces the fits; what feedback learnt goes with the old one. */
void pol_control_recalibrated(struct pol_control *c, const struct pol_predictor *calibrated);

/* The point for one request. budget->deadline_us is the time left for the
 * inference itself (the caller takes off what was spent and what the reply
 * will take). ctx may be NULL (every placement idle and warm). */
struct pol_choice pol_control_choose(struct pol_control *c, const struct pol_params *params,
                                     const struct pol_budget *budget, const struct pol_session *session,
                                     const struct pol_context *ctx);
/* Predicted latency of a point as choose saw it, cold start included. */
double pol_control_predict_us(const struct pol_control *c, const struct pol_point *pt, bool cold);

/* What one run cost: latency measured (µs), energy from a sensor (µJ, < 0 when
 * there is none). end_to_end_us and deadline_us feed the session's step
 * controller (deadline 0 = none). session may be NULL. */
struct pol_outcome {
	double latency_us;
	double sensor_uj;
	double end_to_end_us;
	double deadline_us;
	bool cold;
};
void pol_control_learn(struct pol_control *c, const struct pol_params *params, const struct pol_point *pt,
                       const struct pol_outcome *outcome, struct pol_session *session);

#endif
