/* SPDX-License-Identifier: MIT */
/* Per-layer plans in gearboxd (gearboxd.conf `layer_plans = FOLDER`): every
 * *.plan or *.json file of the folder that names a hosted model (its
 * "model.name") is loaded for it. dnn_lplan_load refuses a plan made for
 * other model contents, another CPU model or other instruction sets, and
 * says why; the log says so and the model serves without it. A plan that
 * loads runs on the CPU placements it fits: its cluster (the plan's
 * "cluster", which `gearbox tune --cluster` writes; none: every CPU
 * placement, a split cluster's per-CPU placements included) at its thread
 * count. The first file (in name order) for a placement and thread count
 * wins; a later one is logged and left out.
 *
 * The calibration runs through the same engines, so it measures the plans in
 * use, and their hash (contents and where each runs) is part of its cache
 * key (pol_model.plan_hash). */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/hash.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "dnn/dnn.h"

static int
plan_file(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && ((n > 5 && strcmp(e->d_name + n - 5, ".plan") == 0) ||
	                               (n > 5 && strcmp(e->d_name + n - 5, ".json") == 0));
}

/* The file's bytes (NUL-terminated), NULL when it cannot be read. */
static char *
read_file(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0, got;

	if (f == NULL)
		return NULL;
	do {
		if (n + 4096 + 1 > cap) {
			char *more = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (more == NULL || cap > (64u << 20)) {
				free(more != NULL ? more : buf);
				fclose(f);
				return NULL;
			}
			buf = more;
		}
		got = fread(buf + n, 1, cap - n - 1, f);
		n += got;
	} while (got > 0);
	if (ferror(f)) {
		free(buf);
		buf = NULL;
	} else {
		buf[n] = '\0';
		*len = n;
	}
	fclose(f);
	return buf;
}

/* The model a plan file says it is for, copied into name; false when the
 * file is no JSON object with "model": {"name": ...}. */
static bool
plan_model_name(const char *text, char *name, size_t size)
{
	struct json_object *root = json_tokener_parse(text), *model, *v;
	bool ok = false;

	if (root != NULL && json_object_object_get_ex(root, "model", &model) &&
	    json_object_object_get_ex(model, "name", &v) && json_object_is_type(v, json_type_string)) {
		snprintf(name, size, "%s", json_object_get_string(v));
		ok = true;
	}
	json_object_put(root);
	return ok;
}

/* Give one loaded plan to the placements it fits; returns how many took it
 * (*fits: how many it fits), and folds each into *hash. */
static unsigned
place_plan(struct daemon *d, struct host *h, const struct dnn_lplan *plan, const char *path, uint64_t file_hash,
           uint64_t *hash, unsigned *fits)
{
	const char *cluster = dnn_lplan_cluster(plan), *model = dnn_model_name(h->model);
	unsigned threads = dnn_lplan_threads(plan), taken = 0;

	for (unsigned p = 0; p < d->nplaces; p++) {
		const struct pol_place *pl = &d->places[p];
		const char *name = pl->single_cpu ? pl->cluster : pl->name;
		const char *other;
		struct dnn_lplan *copy;
		char *why = NULL;
		if (pl->kind != POL_PLACE_CPU || (cluster[0] && strcmp(cluster, name) != 0) || threads > pl->max_threads)
			continue;
		++*fits;
		if ((other = pol_runtime_plan(h->runtime, p, threads)) != NULL) {
			log_warning("%s: plan %s is not used on %s x%u: %s came first", model, path, pl->name, threads, other);
			continue;
		}
		if ((copy = dnn_lplan_copy(plan)) == NULL ||
		    pol_runtime_set_plan(h->runtime, p, threads, copy, path, &why) != 0) {
			log_warning("%s: plan %s is not used on %s x%u: %s", model, path, pl->name, threads,
			            why ? why : "out of memory");
			free(why);
			continue;
		}
		*hash = fnv1a(*hash, pl->name, strlen(pl->name) + 1);
		*hash = fnv1a(*hash, &threads, sizeof(threads));
		*hash = fnv1a(*hash, &file_hash, sizeof(file_hash));
		log_info("%s: %s x%u runs under plan %s", model, pl->name, threads, path);
		taken++;
	}
	return taken;
}

uint64_t
plans_attach(struct daemon *d, struct host *h)
{
	const char *dir = d->config.layer_plans, *model = dnn_model_name(h->model);
	struct dirent **names = NULL;
	uint64_t hash = FNV1A_INIT;
	unsigned used = 0;
	int n;

	if (dir == NULL)
		return 0;
	if ((n = scandir(dir, &names, plan_file, alphasort)) < 0) {
		log_warning("%s: plans: cannot read %s: %s; serving without per-layer plans", model, dir, strerror(errno));
		return 0;
	}
	for (int i = 0; i < n; i++) {
		char path[4096], name[256], *text, *why = NULL;
		struct dnn_lplan *plan;
		size_t len = 0;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		free(names[i]);
		if ((text = read_file(path, &len)) == NULL) {
			log_warning("%s: plans: cannot read %s: %s", model, path, strerror(errno));
			continue;
		}
		if (!plan_model_name(text, name, sizeof(name))) {
			log_warning("%s: plans: %s is not a plan file (no JSON \"model\": {\"name\"}); left out", model, path);
		} else if (strcmp(name, model) != 0) {
			log_debug("%s: plans: %s is for %s", model, path, name);
		} else if ((plan = dnn_lplan_load(h->model, path, &why)) == NULL) {
			log_warning("%s: plan refused: %s; serving without it", model, why ? why : path);
		} else {
			unsigned fits = 0;
			if (place_plan(d, h, plan, path, fnv1a(FNV1A_INIT, text, len), &hash, &fits) > 0)
				used++;
			else if (fits == 0)
				log_warning("%s: plan %s (cluster %s, %u thread%s) fits no placement of this machine; not used",
				            model, path, dnn_lplan_cluster(plan)[0] ? dnn_lplan_cluster(plan) : "any",
				            dnn_lplan_threads(plan), dnn_lplan_threads(plan) == 1 ? "" : "s");
			dnn_lplan_free(plan);
		}
		free(why);
		free(text);
	}
	free(names);
	return used > 0 ? (hash ? hash : 1) : 0;
}

struct json_object *
plans_json(const struct host *h)
{
	const struct daemon *d = h->daemon;
	struct json_object *list = json_object_new_array();

	for (unsigned p = 0; p < d->nplaces; p++)
		for (unsigned t = 1; t <= d->places[p].max_threads && t <= POL_MAX_THREADS; t++) {
			const char *label = pol_runtime_plan(h->runtime, p, t);
			struct json_object *o;
			if (label == NULL)
				continue;
			o = json_object_new_object();
			json_object_object_add(o, GBX_KEY_PLACEMENT, json_object_new_string(d->places[p].name));
			json_object_object_add(o, GBX_KEY_THREADS, json_object_new_int((int)t));
			json_object_object_add(o, "plan", json_object_new_string(label));
			json_object_array_add(list, o);
		}
	return list;
}
