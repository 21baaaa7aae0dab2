/* SPDX-License-Identifier: MIT */
/* The placement runtime: engines per (placement, threads), made on first
 * use; OpenCL devices shared by every model. See runtime.h. */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "dnn/dnn.h"
#include "governor/governor.h"
#include "policies/runtime.h"

struct pol_devices {
	pthread_mutex_t lock;
	char *cache_dir;
	struct dnn_cl *open[POL_MAX_PLACES]; /* by OpenCL device index */
};

struct pol_runtime {
	const struct dnn_model *model;
	const struct gov_platform *platform;
	struct pol_devices *devices;
	int realtime;            /* priority given to new pools, 0 = none */
	struct dnn_engine *engines[POL_MAX_PLACES][POL_MAX_THREADS + 1];
	struct dnn_lplan *plans[POL_MAX_PLACES][POL_MAX_THREADS + 1]; /* owned; NULL: the fast kernels */
	char *plan_labels[POL_MAX_PLACES][POL_MAX_THREADS + 1];
};

struct pol_devices *
pol_devices_new(const char *cache_dir)
{
	struct pol_devices *d = calloc(1, sizeof(*d));

	if (d == NULL)
		return NULL;
	pthread_mutex_init(&d->lock, NULL);
	d->cache_dir = cache_dir ? strdup(cache_dir) : NULL;
	return d;
}

void
pol_devices_free(struct pol_devices *d)
{
	if (d == NULL)
		return;
	for (unsigned i = 0; i < POL_MAX_PLACES; i++)
		dnn_cl_close(d->open[i]);
	pthread_mutex_destroy(&d->lock);
	free(d->cache_dir);
	free(d);
}

const struct dnn_cl_info *
pol_devices_info(struct pol_devices *d, unsigned index)
{
	struct dnn_cl *cl = NULL;

	if (d == NULL || index >= POL_MAX_PLACES)
		return NULL;
	pthread_mutex_lock(&d->lock);
	cl = d->open[index];
	pthread_mutex_unlock(&d->lock);
	return cl ? dnn_cl_get_info(cl) : NULL;
}

/* Device `index`, opened (kernels built or loaded from the binary cache) by
 * the first model that needs it. */
static struct dnn_cl *
device_get(struct pol_devices *d, unsigned index, char **cause)
{
	struct dnn_cl *cl;

	if (d == NULL || index >= POL_MAX_PLACES) {
		set_cause(cause, "no OpenCL device %u", index);
		return NULL;
	}
	pthread_mutex_lock(&d->lock);
	if ((cl = d->open[index]) == NULL)
		cl = d->open[index] = dnn_cl_open(index, d->cache_dir, cause);
	pthread_mutex_unlock(&d->lock);
	return cl;
}

struct pol_runtime *
pol_runtime_new(const struct dnn_model *model, const struct gov_platform *platform, struct pol_devices *devices,
                char **cause)
{
	struct pol_runtime *rt = calloc(1, sizeof(*rt));

	if (rt == NULL) {
		set_cause(cause, "out of memory");
		return NULL;
	}
	rt->model = model;
	rt->platform = platform;
	rt->devices = devices;
	return rt;
}

void
pol_runtime_free(struct pol_runtime *rt)
{
	if (rt == NULL)
		return;
	for (unsigned p = 0; p < POL_MAX_PLACES; p++)
		for (unsigned t = 0; t <= POL_MAX_THREADS; t++) {
			dnn_engine_free(rt->engines[p][t]);
			dnn_lplan_free(rt->plans[p][t]);
			free(rt->plan_labels[p][t]);
		}
	free(rt);
}

hwloc_bitmap_t
pol_place_cpuset(const struct pol_place *pl, const struct gov_platform *p)
{
	hwloc_bitmap_t set;

	if (!pl->single_cpu)
		return gov_cluster_cpuset(&p->clusters[pl->index], 0);
	if ((set = hwloc_bitmap_alloc()) != NULL)
		hwloc_bitmap_only(set, pl->cpu);
	return set;
}

struct dnn_engine *
pol_place_engine(const struct pol_place *pl, const struct gov_platform *p, const struct dnn_model *model,
                 unsigned threads, struct dnn_cl *device, char **cause)
{
	hwloc_bitmap_t set;
	struct dnn_engine *e;

	if (pl->kind == POL_PLACE_OPENCL)
		return dnn_engine_opencl(model, device, cause);
	set = pol_place_cpuset(pl, p);
	e = dnn_engine_cpu(model, threads, set, DNN_KERNELS_FAST, cause);
	hwloc_bitmap_free(set);
	return e;
}

struct dnn_engine *
pol_runtime_engine(struct pol_runtime *rt, const struct pol_place *places, unsigned place, unsigned threads,
                   char **cause)
{
	const struct pol_place *pl = &places[place];
	struct dnn_engine **e;
	struct dnn_cl *cl = NULL;

	if (place >= POL_MAX_PLACES || threads == 0 || threads > POL_MAX_THREADS) {
		set_cause(cause, "no placement %u with %u threads", place, threads);
		return NULL;
	}
	e = &rt->engines[place][threads];
	if (*e != NULL)
		return *e;
	if (pl->kind == POL_PLACE_OPENCL && (cl = device_get(rt->devices, pl->index, cause)) == NULL)
		return NULL;
	if ((*e = pol_place_engine(pl, rt->platform, rt->model, threads, cl, cause)) != NULL &&
	    rt->plans[place][threads] != NULL && dnn_engine_set_lplan(*e, rt->plans[place][threads], cause) != 0) {
		dnn_engine_free(*e);
		*e = NULL;
	}
	if (*e != NULL && rt->realtime > 0) {
		char *why = NULL;
		dnn_engine_set_realtime(*e, rt->realtime, &why); /* refused: it runs, only not first */
		free(why);
	}
	return *e;
}

int
pol_runtime_set_plan(struct pol_runtime *rt, unsigned place, unsigned threads, struct dnn_lplan *plan,
                     const char *label, char **cause)
{
	char *copy = NULL;

	if (place >= POL_MAX_PLACES || threads == 0 || threads > POL_MAX_THREADS) {
		dnn_lplan_free(plan);
		return set_cause(cause, "no placement %u with %u threads", place, threads);
	}
	if (rt->engines[place][threads] != NULL &&
	    dnn_engine_set_lplan(rt->engines[place][threads], plan, cause) != 0) {
		dnn_lplan_free(plan);
		return -1;
	}
	if (plan != NULL && (copy = strdup(label != NULL ? label : "")) == NULL) {
		if (rt->engines[place][threads] != NULL)
			dnn_engine_set_lplan(rt->engines[place][threads], rt->plans[place][threads], NULL);
		dnn_lplan_free(plan);
		return set_cause(cause, "out of memory");
	}
	dnn_lplan_free(rt->plans[place][threads]);
	free(rt->plan_labels[place][threads]);
	rt->plans[place][threads] = plan;
	rt->plan_labels[place][threads] = copy;
	return 0;
}

const char *
pol_runtime_plan(const struct pol_runtime *rt, unsigned place, unsigned threads)
{
	if (place >= POL_MAX_PLACES || threads == 0 || threads > POL_MAX_THREADS || rt->plans[place][threads] == NULL)
		return NULL;
	return rt->plan_labels[place][threads];
}

int
pol_runtime_set_place_realtime(struct pol_runtime *rt, unsigned place, int priority, char **cause)
{
	int ret = 0;

	for (unsigned t = 0; place < POL_MAX_PLACES && t <= POL_MAX_THREADS; t++)
		if (rt->engines[place][t] != NULL && dnn_engine_set_realtime(rt->engines[place][t], priority, ret ? NULL : cause) != 0)
			ret = -1;
	return ret;
}

int
pol_runtime_set_realtime(struct pol_runtime *rt, int priority, char **cause)
{
	int ret = 0;

	rt->realtime = priority;
	for (unsigned p = 0; p < POL_MAX_PLACES; p++)
		if (pol_runtime_set_place_realtime(rt, p, priority, ret ? NULL : cause) != 0)
			ret = -1;
	return ret;
}

/* ---- splitting clusters ------------------------------------------------------- */

unsigned
pol_place_domain(const struct pol_place *places, unsigned p)
{
	if (places[p].kind != POL_PLACE_CPU)
		return p;
	for (unsigned q = 0; q < p; q++)
		if (places[q].kind == POL_PLACE_CPU && places[q].index == places[p].index)
			return q;
	return p;
}

static bool
named(const char *which, const char *name)
{
	char list[512], *save = NULL;

	snprintf(list, sizeof(list), "%s", which);
	for (char *w = strtok_r(list, " ,\t", &save); w != NULL; w = strtok_r(NULL, " ,\t", &save))
		if (strcmp(w, "all") == 0 || strcmp(w, name) == 0)
			return true;
	return false;
}

/* Check every word names a cluster (or is "all"). */
static int
check_names(const char *which, const struct gov_platform *p, char **cause)
{
	char list[512], *save = NULL;

	snprintf(list, sizeof(list), "%s", which);
	for (char *w = strtok_r(list, " ,\t", &save); w != NULL; w = strtok_r(NULL, " ,\t", &save)) {
		bool found = strcmp(w, "all") == 0;
		for (unsigned i = 0; i < p->nclusters && !found; i++)
			found = strcmp(p->clusters[i].name, w) == 0;
		if (!found)
			return set_cause(cause, "split: no cluster '%s' on this machine (see gearbox platform)", w);
	}
	return 0;
}

unsigned
pol_places_split(struct pol_place *places, unsigned n, unsigned max, const char *which, const struct gov_platform *p,
                 char **cause)
{
	struct pol_place out[POL_MAX_PLACES];
	unsigned k = 0;

	if (check_names(which, p, cause) != 0)
		return 0;
	for (unsigned i = 0; i < n; i++) {
		const struct pol_place *pl = &places[i];
		int cpu;
		if (pl->kind != POL_PLACE_CPU || pl->single_cpu || !named(which, pl->name)) {
			if (k < max && k < POL_MAX_PLACES)
				out[k++] = *pl;
			continue;
		}
		hwloc_bitmap_foreach_begin(cpu, p->clusters[pl->index].cpuset) {
			if (k == max || k == POL_MAX_PLACES)
				break;
			struct pol_place *one = &out[k++];
			*one = *pl;
			one->single_cpu = true;
			one->cpu = (unsigned)cpu;
			one->max_threads = 1;
			snprintf(one->cluster, sizeof(one->cluster), "%s", pl->name);
			snprintf(one->name, sizeof(one->name), "%.40s:cpu%d", pl->name, cpu);
		}
		hwloc_bitmap_foreach_end();
	}
	memcpy(places, out, k * sizeof(*out));
	return k;
}
