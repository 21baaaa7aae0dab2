/* SPDX-License-Identifier: MIT */
/* The placement runtime: what runs one model at each (placement, threads),
 * made on first use and kept — a pool of threads bound to the cluster (or
 * to one CPU of a split cluster), or an execution context on an OpenCL
 * device. Devices are opened once per process and shared by every model's
 * runtime (struct pol_devices). Used by gearboxd, `gearbox pareto` and the
 * calibration of both.
 *
 * Thread safety: pol_devices is safe to share. One pol_runtime may be used
 * by several threads when each uses placements no other uses at the same
 * time (gearboxd: one worker per placement).
 */
#ifndef GEARBOX_POLICIES_RUNTIME_H
#define GEARBOX_POLICIES_RUNTIME_H

#include "policies/policy.h"

struct dnn_model;
struct dnn_cl_info;
struct dnn_engine;
struct dnn_lplan;
struct gov_platform;
struct pol_devices;
struct pol_runtime;

/* cache_dir: where OpenCL program binaries are cached (NULL: none). */
struct pol_devices *pol_devices_new(const char *cache_dir);
void pol_devices_free(struct pol_devices *devices);
/* What OpenCL device `index` is, once opened (NULL before). */
const struct dnn_cl_info *pol_devices_info(struct pol_devices *devices, unsigned index);

struct pol_runtime *pol_runtime_new(const struct dnn_model *model, const struct gov_platform *platform,
                                    struct pol_devices *devices, char **cause);
void pol_runtime_free(struct pol_runtime *rt);
/* The engine of (place, threads) for placements `places` (a predictor's). */
struct dnn_engine *pol_runtime_engine(struct pol_runtime *rt, const struct pol_place *places, unsigned place,
                                      unsigned threads, char **cause);
/* Run the CPU engine of (place, threads) under a per-layer plan
 * (docs/plan-format.md) from now on; NULL: the fast kernels. The runtime
 * owns the plan (freed with it, or at once when refused); label names it
 * (its file) for pol_runtime_plan. Returns -1 with *cause when the engine
 * already made refuses it (the plan in use then stays). */
int pol_runtime_set_plan(struct pol_runtime *rt, unsigned place, unsigned threads, struct dnn_lplan *plan,
                         const char *label, char **cause);
/* The label of the plan (place, threads) runs under, NULL when none. */
const char *pol_runtime_plan(const struct pol_runtime *rt, unsigned place, unsigned threads);
/* Let threads made from now on, and those already made, run in the
 * real-time class at `priority` (0: normal). Failures are the caller's to
 * log: *cause names the first. */
int pol_runtime_set_realtime(struct pol_runtime *rt, int priority, char **cause);
/* The same for the engines of one placement only, those made so far. */
int pol_runtime_set_place_realtime(struct pol_runtime *rt, unsigned place, int priority, char **cause);

#endif
