/* SPDX-License-Identifier: MIT */
/* Latency and energy prediction for every operating point from a few
 * measurements.
 *
 * Per placement we measure three points at the highest allowed frequency:
 * g=1 and g=G on one thread give a line in multiply-accumulates (a fixed cost
 * plus a cost per MAC: the per-g work of a dynamic DNN is what changes with
 * g), and g=G on all threads gives the placement's serial fraction (Amdahl),
 * from which every other thread count follows. Another frequency scales the
 * whole time by f_measured / f. Energy is the placement's power model (or a
 * sensor, through the feedback's energy factor) times the latency.
 */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/cause.h"
#include "common/cpu_model.h"
#include "common/hash.h"
#include "dnn/dnn.h"
#include "governor/governor.h"
#include "policies/policy.h"

/* FNV-1a of a file's bytes; 0 when it cannot be read. */
static uint64_t
hash_file(const char *path)
{
	unsigned char buf[16384];
	uint64_t h = FNV1A_INIT;
	size_t n;
	FILE *f;

	if (path == NULL || (f = fopen(path, "rb")) == NULL)
		return 0;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		h = fnv1a(h, buf, n);
	if (ferror(f))
		h = 0;
	fclose(f);
	return h;
}

void
pol_model_from_dnn(struct pol_model *m, const struct dnn_model *model)
{
	memset(m, 0, sizeof(*m));
	/* the weights are part of the timing key: another file of the same
	 * name and shape (retrained, re-exported) is calibrated afresh */
	m->file_hash = hash_file(dnn_model_path(model));
	snprintf(m->name, sizeof(m->name), "%s", dnn_model_name(model));
	m->groups = dnn_model_groups(model);
	if (m->groups > POL_MAX_GROUPS)
		m->groups = POL_MAX_GROUPS;
	for (unsigned g = 1; g <= m->groups; g++) {
		m->accuracy[g] = dnn_model_accuracy(model, g);
		m->macs[g] = (double)dnn_model_macs(model, g);
	}
}

unsigned
pol_places_from_platform(struct pol_place *places, unsigned max, const struct gov_platform *p)
{
	unsigned n = 0;

	for (unsigned i = 0; i < p->nclusters && n < max; i++) {
		const struct gov_cluster *c = &p->clusters[i];
		struct pol_place *pl = &places[n++];
		memset(pl, 0, sizeof(*pl));
		pl->kind = POL_PLACE_CPU;
		snprintf(pl->name, sizeof(pl->name), "%s", c->name);
		pl->index = c->id;
		pl->max_threads = c->ncpus < POL_MAX_THREADS ? c->ncpus : POL_MAX_THREADS;
		pl->capacity = c->capacity;
		const struct gov_power_model *m = &p->models[i];
		pl->dvfs = c->npolicies > 0 && c->nfreqs > 0;
		if (pl->dvfs) {
			pl->nfreqs = c->nfreqs < POL_MAX_FREQS ? c->nfreqs : POL_MAX_FREQS;
			memcpy(pl->freqs_khz, c->freqs_khz, pl->nfreqs * sizeof(pl->freqs_khz[0]));
		} else if (c->npolicies > 0 && m->npoints > 1 && c->hw_min_khz > 0 && m->khz[0] >= c->hw_min_khz &&
		           m->khz[m->npoints - 1] <= c->hw_max_khz) {
			/* A continuous range (intel_pstate, cppc_cpufreq): the power
			 * model's points, which span it, are the frequencies to choose
			 * from (gov_set_cluster_freq takes any in the range). */
			pl->dvfs = true;
			pl->nfreqs = m->npoints < POL_MAX_FREQS ? m->npoints : POL_MAX_FREQS;
			memcpy(pl->freqs_khz, m->khz, pl->nfreqs * sizeof(pl->freqs_khz[0]));
		} else {
			/* No table (no cpufreq, or a continuous range): one point at
			 * whatever the hardware runs. */
			pl->nfreqs = 1;
			pl->freqs_khz[0] = c->npolicies > 0 ? c->hw_max_khz : 0;
		}
		for (unsigned f = 0; f < pl->nfreqs; f++) {
			unsigned long khz = pl->freqs_khz[f] ? pl->freqs_khz[f] : c->hw_max_khz;
			pl->busy_w[f] = gov_model_power(p, c->id, khz, 1);
		}
		snprintf(pl->power_source, sizeof(pl->power_source), "%s", gov_model_kind_name(p->models[i].kind));
	}
	return n;
}

unsigned
pol_places_add_opencl(struct pol_place *places, unsigned n, unsigned max, const struct gov_platform *p)
{
	double all_cpus_w = 0, biggest_w = 0;
	const char *source = "estimate";

	for (unsigned i = 0; i < p->nclusters; i++) {
		const struct gov_cluster *c = &p->clusters[i];
		double w = gov_model_power(p, c->id, c->hw_max_khz, c->ncpus);
		all_cpus_w += w;
		if (w > biggest_w)
			biggest_w = w;
		source = gov_model_kind_name(p->models[i].kind);
	}
	for (unsigned i = 0; i < p->nopencl && n < max; i++) {
		const struct gov_opencl_device *d = &p->opencl[i];
		struct pol_place *pl = &places[n++];
		bool gpu = strcmp(d->type, "gpu") == 0;
		memset(pl, 0, sizeof(*pl));
		pl->kind = POL_PLACE_OPENCL;
		snprintf(pl->name, sizeof(pl->name), "opencl:%u", i);
		pl->index = i;
		pl->is_gpu = gpu;
		pl->max_threads = 1;
		pl->capacity = 1024;
		pl->nfreqs = 1;
		pl->freqs_khz[0] = 0; /* devfreq GPUs: not driven by gearboxd yet */
		pl->busy_w[0] = gpu ? biggest_w : all_cpus_w;
		snprintf(pl->power_source, sizeof(pl->power_source), "%s", gpu ? "estimate" : source);
	}
	return n;
}

/* ---- what a calibration was measured with ------------------------------------------- */

#ifndef GEARBOX_BUILD_FLAVOUR
#define GEARBOX_BUILD_FLAVOUR "unknown"
#endif

void
pol_identity_get(struct pol_identity *id)
{
	memset(id, 0, sizeof(*id));
	snprintf(id->version, sizeof(id->version), "%s", PACKAGE_VERSION);
	snprintf(id->flavour, sizeof(id->flavour), "%s", GEARBOX_BUILD_FLAVOUR);
	/* what CPU placements run (pol_place_engine): the fast kernels */
	snprintf(id->kernels, sizeof(id->kernels), "%s/%s", dnn_kernels_name(DNN_KERNELS_FAST), dnn_kernels_isa());
	cpu_model_name(id->cpu, sizeof(id->cpu));
}

/* ---- the fit ------------------------------------------------------------------ */

/* What the cached fit depends on: the build and the machine (identity), the
 * model's file and per-g work, and the placements' CPUs, capacities and
 * frequency tables. */
static void
make_key(struct pol_predictor *pr)
{
	const struct pol_identity *id = &pr->identity;
	uint64_t h = FNV1A_INIT;

	/* each string with its terminating NUL, so that fields cannot run into
	 * each other */
	h = fnv1a(h, id->version, strlen(id->version) + 1);
	h = fnv1a(h, id->flavour, strlen(id->flavour) + 1);
	h = fnv1a(h, id->kernels, strlen(id->kernels) + 1);
	h = fnv1a(h, id->cpu, strlen(id->cpu) + 1);
	h = fnv1a(h, &pr->model.file_hash, sizeof(pr->model.file_hash));
	h = fnv1a(h, pr->model.name, strlen(pr->model.name));
	h = fnv1a(h, &pr->model.groups, sizeof(pr->model.groups));
	h = fnv1a(h, pr->model.macs, sizeof(pr->model.macs));
	if (pr->model.plan_hash != 0) /* without plans, the key of a build before plans */
		h = fnv1a(h, &pr->model.plan_hash, sizeof(pr->model.plan_hash));
	for (unsigned i = 0; i < pr->nplaces; i++) {
		const struct pol_place *pl = &pr->places[i];
		h = fnv1a(h, pl->name, strlen(pl->name));
		h = fnv1a(h, &pl->kind, sizeof(pl->kind));
		h = fnv1a(h, &pl->max_threads, sizeof(pl->max_threads));
		h = fnv1a(h, &pl->capacity, sizeof(pl->capacity));
		h = fnv1a(h, pl->freqs_khz, pl->nfreqs * sizeof(pl->freqs_khz[0]));
	}
	snprintf(pr->key, sizeof(pr->key), "%s-%016llx", pr->model.name, (unsigned long long)h);
}

/* Before any measurement: a guess from capacity and MACs, so that a
 * predictor is usable (and obviously uncalibrated) at once. One 1024-capacity
 * CPU at 1 GHz is taken to do 1 GMAC/s. */
static void
guess_fits(struct pol_predictor *pr)
{
	for (unsigned p = 0; p < pr->nplaces; p++) {
		const struct pol_place *pl = &pr->places[p];
		double ghz = pl->freqs_khz[pl->nfreqs - 1] ? (double)pl->freqs_khz[pl->nfreqs - 1] / 1e6 : 2.0;
		double per_mmac = 1e3 / (ghz * (pl->capacity ? pl->capacity : 1024) / 1024.0);
		for (unsigned t = 1; t <= pl->max_threads; t++) {
			struct pol_fit *f = &pr->fit[p][t];
			f->measured = false;
			f->fixed_us = 20;
			f->us_per_mmac = per_mmac * (0.1 + 0.9 / t); /* Amdahl with 10 % serial */
			f->khz = pl->freqs_khz[pl->nfreqs - 1];
		}
	}
}

void
pol_predictor_init(struct pol_predictor *pr, const struct pol_model *model, const struct pol_place *places,
                   unsigned nplaces)
{
	memset(pr, 0, sizeof(*pr));
	pr->model = *model;
	pr->nplaces = nplaces < POL_MAX_PLACES ? nplaces : POL_MAX_PLACES;
	memcpy(pr->places, places, pr->nplaces * sizeof(*places));
	pol_identity_get(&pr->identity);
	guess_fits(pr);
	make_key(pr);
}

void
pol_predictor_set_identity(struct pol_predictor *pr, const struct pol_identity *id)
{
	pr->identity = *id;
	make_key(pr);
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static int
measure_median(struct pol_predictor *pr, unsigned place, unsigned groups, unsigned threads, unsigned runs,
               pol_measure_fn *measure, void *ctx, void (*progress)(void *, const struct pol_point *, double),
               double *out, char **cause)
{
	const struct pol_place *pl = &pr->places[place];
	struct pol_point pt = { .groups = groups, .place = place, .threads = threads, .freq = pl->nfreqs - 1 };
	double samples[1000];

	pt.khz = pl->freqs_khz[pt.freq];
	pt.accuracy = pr->model.accuracy[groups];
	if (runs > 1000)
		runs = 1000;
	/* one unrecorded run first: the first on a new pool pays for thread
	 * start-up and cold caches */
	if (measure(ctx, &pt, &samples[0], cause) != 0)
		return -1;
	for (unsigned i = 0; i < runs; i++)
		if (measure(ctx, &pt, &samples[i], cause) != 0)
			return -1;
	qsort(samples, runs, sizeof(double), compare_double);
	*out = samples[runs / 2];
	pr->measurements++;
	if (progress)
		progress(ctx, &pt, *out);
	return 0;
}

int
pol_predictor_calibrate(struct pol_predictor *pr, unsigned runs, pol_measure_fn *measure, void *ctx,
                        void (*progress)(void *ctx, const struct pol_point *pt, double us), char **cause)
{
	unsigned G = pr->model.groups;
	double mmac1 = pr->model.macs[1] / 1e6, mmacG = pr->model.macs[G] / 1e6;

	pr->measurements = 0;
	for (unsigned p = 0; p < pr->nplaces; p++) {
		const struct pol_place *pl = &pr->places[p];
		unsigned T = pl->max_threads;
		double t1 = 0, tG, tGT, fixed, slope, serial = 1;

		if (pl->disabled)
			continue;
		if (measure_median(pr, p, G, 1, runs, measure, ctx, progress, &tG, cause) != 0)
			return -1;
		if (G > 1 && measure_median(pr, p, 1, 1, runs, measure, ctx, progress, &t1, cause) != 0)
			return -1;
		if (G > 1 && mmacG > mmac1 && tG > t1) {
			slope = (tG - t1) / (mmacG - mmac1);
			fixed = t1 - slope * mmac1;
		} else {
			fixed = -1;
			slope = 0;
		}
		if (fixed < 0) { /* noise made the line cross zero: proportional */
			fixed = 0;
			slope = tG / (mmacG > 0 ? mmacG : 1);
		}
		if (T > 1) {
			if (measure_median(pr, p, G, T, runs, measure, ctx, progress, &tGT, cause) != 0)
				return -1;
			/* tGT / tG = s + (1 - s) / T */
			serial = (tGT / tG - 1.0 / T) / (1.0 - 1.0 / T);
			serial = fmin(fmax(serial, 0.0), 1.0);
		}
		for (unsigned t = 1; t <= T; t++) {
			double scale = t == 1 ? 1.0 : serial + (1 - serial) / t;
			struct pol_fit *f = &pr->fit[p][t];
			f->measured = t == 1 || t == T;
			f->fixed_us = fixed * scale;
			f->us_per_mmac = slope * scale;
			f->khz = pl->freqs_khz[pl->nfreqs - 1];
		}
	}
	return 0;
}

double
pol_predict_us(const struct pol_predictor *pr, unsigned groups, unsigned place, unsigned threads, unsigned freq)
{
	const struct pol_place *pl = &pr->places[place];
	const struct pol_fit *f = &pr->fit[place][threads];
	double t = f->fixed_us + f->us_per_mmac * pr->model.macs[groups] / 1e6;
	unsigned long khz = pl->freqs_khz[freq];

	if (f->khz && khz)
		t *= (double)f->khz / (double)khz;
	return t;
}

/* ---- the on-disk cache ---------------------------------------------------------- */

const char *
pol_cache_dir(char *buf, size_t size)
{
	const char *v;

	if ((v = getenv("GEARBOX_CACHE_DIR")) && *v)
		snprintf(buf, size, "%s", v);
	else if ((v = getenv("CACHE_DIRECTORY")) && *v) /* systemd CacheDirectory= */
		snprintf(buf, size, "%.*s", (int)strcspn(v, ":"), v);
	else if ((v = getenv("XDG_CACHE_HOME")) && *v)
		snprintf(buf, size, "%s/gearbox", v);
	else if ((v = getenv("HOME")) && *v)
		snprintf(buf, size, "%s/.cache/gearbox", v);
	else
		snprintf(buf, size, "/var/cache/gearbox");
	return buf;
}

static void
cache_path(const struct pol_predictor *pr, const char *dir, char *path, size_t size)
{
	snprintf(path, size, "%s/calibration-%s.json", dir, pr->model.name);
}

int
pol_predictor_save(const struct pol_predictor *pr, const char *cache_dir, char **cause)
{
	char path[4096], tmp[4200];
	json_object *root = json_object_new_object(), *places = json_object_new_array();
	int rc = 0;

	json_object_object_add(root, "key", json_object_new_string(pr->key));
	json_object_object_add(root, "model", json_object_new_string(pr->model.name));
	/* the readable parts of the key, for saying why a file is not used */
	{
		char hex[20];
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)pr->model.file_hash);
		json_object_object_add(root, "model_file_fnv1a", json_object_new_string(hex));
		snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)pr->model.plan_hash);
		json_object_object_add(root, "layer_plans_fnv1a", json_object_new_string(hex));
	}
	json_object_object_add(root, "gearbox_version", json_object_new_string(pr->identity.version));
	json_object_object_add(root, "build", json_object_new_string(pr->identity.flavour));
	json_object_object_add(root, "kernels", json_object_new_string(pr->identity.kernels));
	json_object_object_add(root, "cpu", json_object_new_string(pr->identity.cpu));
	for (unsigned p = 0; p < pr->nplaces; p++) {
		json_object *pl = json_object_new_object(), *fits = json_object_new_array();
		json_object_object_add(pl, "name", json_object_new_string(pr->places[p].name));
		for (unsigned t = 1; t <= pr->places[p].max_threads; t++) {
			const struct pol_fit *f = &pr->fit[p][t];
			json_object *o = json_object_new_object();
			json_object_object_add(o, "threads", json_object_new_int((int)t));
			json_object_object_add(o, "measured", json_object_new_boolean(f->measured));
			json_object_object_add(o, "fixed_us", json_object_new_double(f->fixed_us));
			json_object_object_add(o, "us_per_mmac", json_object_new_double(f->us_per_mmac));
			json_object_object_add(o, "khz", json_object_new_int64((int64_t)f->khz));
			json_object_array_add(fits, o);
		}
		json_object_object_add(pl, "fits", fits);
		json_object_array_add(places, pl);
	}
	json_object_object_add(root, "places", places);
	/* mkdir -p of the last two components is enough for ~/.cache/gearbox */
	{
		char parent[4096];
		snprintf(parent, sizeof(parent), "%s", cache_dir);
		char *slash = strrchr(parent, '/');
		if (slash && slash != parent) {
			*slash = '\0';
			(void)mkdir(parent, 0755);
		}
		(void)mkdir(cache_dir, 0755);
	}
	cache_path(pr, cache_dir, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (json_object_to_file_ext(tmp, root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) != 0 ||
	    rename(tmp, path) != 0) {
		rc = set_cause(cause, "cannot write %s: %s", path, strerror(errno));
		(void)remove(tmp);
	}
	json_object_put(root);
	return rc;
}

/* A string field of the cache file, NULL when absent. */
static const char *
field(json_object *root, const char *name)
{
	json_object *v;

	if (!json_object_object_get_ex(root, name, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	return json_object_get_string(v);
}

static bool
differs(const char *stored, const char *now)
{
	return stored == NULL || strcmp(stored, now) != 0;
}

/* Why a file whose key is not ours was made for something else: the first
 * readable part that differs, else the placements or the model's shape. */
static void
key_mismatch(const struct pol_predictor *pr, json_object *root, const char *path, char **why)
{
	const struct pol_identity *id = &pr->identity;
	const char *version = field(root, "gearbox_version"), *flavour = field(root, "build");
	const char *kernels = field(root, "kernels"), *cpu = field(root, "cpu");
	const char *file = field(root, "model_file_fnv1a"), *key = field(root, "key");
	const char *plans = field(root, "layer_plans_fnv1a");
	char hex[20], plan_hex[20];

	snprintf(hex, sizeof(hex), "%016llx", (unsigned long long)pr->model.file_hash);
	snprintf(plan_hex, sizeof(plan_hex), "%016llx", (unsigned long long)pr->model.plan_hash);
	if (plans == NULL)
		plans = "0000000000000000"; /* made before plans: without any */
	if (version == NULL || flavour == NULL)
		set_cause(why, "calibration cache %s was made by an older gearbox (it records no build); "
		          "this is gearbox %s %s", path, id->version, id->flavour);
	else if (differs(version, id->version) || differs(flavour, id->flavour))
		set_cause(why, "calibration cache %s was made by gearbox %s %s; this is gearbox %s %s", path, version,
		          flavour, id->version, id->flavour);
	else if (differs(kernels, id->kernels))
		set_cause(why, "calibration cache %s was measured with the %s kernels; this process runs %s", path,
		          kernels ? kernels : "unknown", id->kernels);
	else if (differs(cpu, id->cpu))
		set_cause(why, "calibration cache %s was measured on CPU '%s'; this is '%s'", path,
		          cpu ? cpu : "unknown", id->cpu);
	else if (differs(file, hex))
		set_cause(why, "calibration cache %s was made from another model file for %s "
		          "(FNV-1a %s; this file's is %s)", path, pr->model.name, file ? file : "unknown", hex);
	else if (differs(plans, plan_hex))
		set_cause(why, "calibration cache %s was measured under other per-layer plans (FNV-1a %s; "
		          "the plans in use now: %s)", path, plans, plan_hex);
	else
		set_cause(why, "calibration cache %s was made for other placements or another model shape "
		          "(key %s; this is %s)", path, key ? key : "none", pr->key);
}

int
pol_predictor_load(struct pol_predictor *pr, const char *cache_dir)
{
	return pol_predictor_load_why(pr, cache_dir, NULL);
}

int
pol_predictor_load_why(struct pol_predictor *pr, const char *cache_dir, char **why)
{
	char path[4096];
	json_object *root, *v, *places;
	struct pol_fit(*saved)[POL_MAX_THREADS + 1];
	int rc = -1;

	if (why)
		*why = NULL;
	cache_path(pr, cache_dir, path, sizeof(path));
	if ((root = json_object_from_file(path)) == NULL) {
		if (access(path, F_OK) == 0)
			set_cause(why, "calibration cache %s cannot be read: %s", path, json_util_get_last_err());
		return -1;
	}
	if (differs(field(root, "key"), pr->key)) {
		key_mismatch(pr, root, path, why);
		json_object_put(root);
		return -1;
	}
	/* a file refused half-way leaves the fits as they were */
	if ((saved = malloc(sizeof(pr->fit))) == NULL) {
		json_object_put(root);
		return set_cause(why, "out of memory");
	}
	memcpy(saved, pr->fit, sizeof(pr->fit));
	if (!json_object_object_get_ex(root, "places", &places) ||
	    json_object_array_length(places) != pr->nplaces) {
		set_cause(why, "calibration cache %s does not have the %u placements of this platform", path,
		          pr->nplaces);
		goto out;
	}
	for (unsigned p = 0; p < pr->nplaces; p++) {
		json_object *pl = json_object_array_get_idx(places, p), *fits;
		if (!json_object_object_get_ex(pl, "fits", &fits) ||
		    json_object_array_length(fits) != pr->places[p].max_threads) {
			set_cause(why, "calibration cache %s does not have the %u thread counts of %s", path,
			          pr->places[p].max_threads, pr->places[p].name);
			goto out;
		}
		for (unsigned t = 1; t <= pr->places[p].max_threads; t++) {
			json_object *o = json_object_array_get_idx(fits, t - 1);
			struct pol_fit *f = &pr->fit[p][t];
			if (json_object_object_get_ex(o, "measured", &v))
				f->measured = json_object_get_boolean(v);
			if (json_object_object_get_ex(o, "fixed_us", &v))
				f->fixed_us = json_object_get_double(v);
			if (json_object_object_get_ex(o, "us_per_mmac", &v))
				f->us_per_mmac = json_object_get_double(v);
			if (json_object_object_get_ex(o, "khz", &v))
				f->khz = (unsigned long)json_object_get_int64(v);
		}
		/* a place left out when this was measured (its device had failed)
		 * has no fit: measure again now that it is offered */
		if (!pr->places[p].disabled && !pr->fit[p][1].measured) {
			set_cause(why, "calibration cache %s has no measurement of %s", path, pr->places[p].name);
			goto out;
		}
	}
	rc = 0;
out:
	if (rc != 0)
		memcpy(pr->fit, saved, sizeof(pr->fit));
	free(saved);
	json_object_put(root);
	return rc;
}
