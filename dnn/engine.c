/* SPDX-License-Identifier: MIT */
/* Engines: one model on one kind of hardware behind one call, so that the
 * daemon, `gearbox model` and `gearbox pareto` share how a placement runs. */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "dnn/dnn.h"

struct dnn_engine {
	struct dnn_pool *pool;       /* CPU: the pool and context */
	struct dnn_exec *exec;
	struct dnn_cl_exec *cl_exec; /* OpenCL: the context on its device */
};

struct dnn_engine *
dnn_engine_cpu(const struct dnn_model *m, unsigned threads, hwloc_const_cpuset_t cpuset, enum dnn_kernels kernels,
               char **cause)
{
	struct dnn_engine *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		set_cause(cause, "out of memory");
		return NULL;
	}
	if ((e->pool = dnn_pool_create(threads, cpuset, cause)) == NULL ||
	    (e->exec = dnn_exec_create(m, e->pool, kernels, cause)) == NULL) {
		dnn_engine_free(e);
		return NULL;
	}
	return e;
}

struct dnn_engine *
dnn_engine_opencl(const struct dnn_model *m, struct dnn_cl *cl, char **cause)
{
	struct dnn_engine *e = calloc(1, sizeof(*e));

	if (e == NULL) {
		set_cause(cause, "out of memory");
		return NULL;
	}
	if ((e->cl_exec = dnn_cl_exec_create(cl, m, cause)) == NULL) {
		free(e);
		return NULL;
	}
	return e;
}

int
dnn_engine_run(struct dnn_engine *e, unsigned groups, const float *input, float *output, struct dnn_cl_timing *timing,
               char **cause)
{
	int ret;

	if (e->cl_exec != NULL)
		return dnn_cl_exec_run(e->cl_exec, groups, input, output, timing, cause);
	if ((ret = dnn_exec_run(e->exec, groups, input, output)) != 0)
		set_cause(cause, "%u active groups is out of range", groups);
	return ret;
}

int
dnn_engine_set_lplan(struct dnn_engine *e, const struct dnn_lplan *plan, char **cause)
{
	if (e->exec == NULL)
		return plan == NULL ? 0 : (set_cause(cause, "per-layer plans run on the CPU engine only"), -EINVAL);
	return dnn_exec_set_lplan(e->exec, plan, cause);
}

int
dnn_engine_convert_us(struct dnn_engine *e, unsigned groups, size_t layer, enum dnn_layout from, enum dnn_layout to,
                      unsigned runs, double *us)
{
	if (e->exec == NULL)
		return -EINVAL;
	return dnn_exec_convert_us(e->exec, groups, layer, from, to, runs, us);
}

void
dnn_engine_set_profile(struct dnn_engine *e, uint64_t *ns)
{
	if (e->exec != NULL)
		dnn_exec_set_profile(e->exec, ns);
}

void
dnn_engine_warm(struct dnn_engine *e, uint64_t until_ns)
{
	if (e->pool != NULL)
		dnn_pool_warm(e->pool, until_ns);
}

int
dnn_engine_set_realtime(struct dnn_engine *e, int priority, char **cause)
{
	int ret = e->pool != NULL ? dnn_pool_set_realtime(e->pool, priority) : 0;

	if (ret != 0)
		set_cause(cause, "cannot move the pool's threads to %s: %s", priority > 0 ? "SCHED_FIFO" : "SCHED_OTHER",
		          strerror(-ret));
	return ret;
}

bool
dnn_engine_is_opencl(const struct dnn_engine *e)
{
	return e->cl_exec != NULL;
}

void
dnn_engine_free(struct dnn_engine *e)
{
	if (e == NULL)
		return;
	dnn_cl_exec_free(e->cl_exec);
	dnn_exec_free(e->exec);
	dnn_pool_free(e->pool);
	free(e);
}
