/* SPDX-License-Identifier: MIT */
/* policies/accuracy.h: the additive per-layer sensitivity predictor and its
 * file. */
#include "config.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/cause.h"
#include "policies/accuracy.h"

double
acc_predict(const struct acc_sensitivity *s, unsigned g, const bool *int8)
{
	double a;

	if (g == 0 || g > s->groups)
		return -1;
	a = s->fp32[g];
	for (unsigned k = 0; k < s->nlayers; k++)
		if (int8[k] && s->drop[g][k] > 0)
			a -= s->drop[g][k];
	return a < 0 ? 0 : a > 1 ? 1 : a;
}

int
acc_layer_slot(const struct acc_sensitivity *s, unsigned index)
{
	for (unsigned k = 0; k < s->nlayers; k++)
		if (s->layer[k] == index)
			return (int)k;
	return -1;
}

int
acc_sensitivity_save(const struct acc_sensitivity *s, const char *path, char **cause)
{
	json_object *o = json_object_new_object(), *m = json_object_new_object(), *gs = json_object_new_array();
	char hex[32];
	FILE *f;
	int ret = 0;

	json_object_object_add(o, "format", json_object_new_string("gearbox-sensitivity"));
	json_object_object_add(o, "version", json_object_new_int(1));
	snprintf(hex, sizeof(hex), "%016" PRIx64, s->fingerprint);
	json_object_object_add(m, "name", json_object_new_string(s->model));
	json_object_object_add(m, "fnv1a64", json_object_new_string(hex));
	json_object_object_add(m, "groups", json_object_new_int((int)s->groups));
	json_object_object_add(o, "model", m);
	json_object_object_add(o, "dataset", json_object_new_string(s->dataset));
	json_object_object_add(o, "images", json_object_new_int((int)s->images));
	for (unsigned g = 1; g <= s->groups; g++) {
		json_object *go = json_object_new_object(), *ls = json_object_new_array();
		json_object_object_add(go, "g", json_object_new_int((int)g));
		json_object_object_add(go, "fp32", json_object_new_double(s->fp32[g]));
		for (unsigned k = 0; k < s->nlayers; k++) {
			json_object *l = json_object_new_object();
			json_object_object_add(l, "index", json_object_new_int((int)s->layer[k]));
			json_object_object_add(l, "name", json_object_new_string(s->name[k]));
			json_object_object_add(l, "drop", json_object_new_double(s->drop[g][k]));
			json_object_array_add(ls, l);
		}
		json_object_object_add(go, "layers", ls);
		json_object_array_add(gs, go);
	}
	json_object_object_add(o, "groups", gs);
	if ((f = fopen(path, "w")) == NULL) {
		ret = set_cause(cause, "%s: %s", path, strerror(errno));
	} else {
		fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY), f);
		fputc('\n', f);
		if (fclose(f) != 0)
			ret = set_cause(cause, "%s: %s", path, strerror(errno));
	}
	json_object_put(o);
	return ret;
}

static json_object *
member(json_object *o, const char *key, json_type type)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !(json_object_is_type(v, type) || (type == json_type_double && json_object_is_type(v, json_type_int))))
		return NULL;
	return v;
}

int
acc_sensitivity_load(struct acc_sensitivity *s, const char *path, uint64_t fingerprint, char **cause)
{
	json_object *o = json_object_from_file(path), *m, *gs, *v;
	int ret = -1;

	memset(s, 0, sizeof(*s));
	if (o == NULL)
		return set_cause(cause, "%s: not a readable JSON file", path);
	if ((v = member(o, "format", json_type_string)) == NULL || strcmp(json_object_get_string(v), "gearbox-sensitivity") ||
	    (v = member(o, "version", json_type_int)) == NULL || json_object_get_int(v) != 1) {
		set_cause(cause, "%s: not a gearbox-sensitivity file of version 1", path);
		goto out;
	}
	if ((m = member(o, "model", json_type_object)) == NULL || (v = member(m, "fnv1a64", json_type_string)) == NULL) {
		set_cause(cause, "%s: no model.fnv1a64", path);
		goto out;
	}
	s->fingerprint = strtoull(json_object_get_string(v), NULL, 16);
	if (fingerprint != 0 && s->fingerprint != fingerprint) {
		set_cause(cause, "%s was measured for model contents %016" PRIx64 ", not %016" PRIx64, path, s->fingerprint,
		          fingerprint);
		goto out;
	}
	if ((v = member(m, "name", json_type_string)) != NULL)
		snprintf(s->model, sizeof(s->model), "%s", json_object_get_string(v));
	if ((v = member(o, "dataset", json_type_string)) != NULL)
		snprintf(s->dataset, sizeof(s->dataset), "%s", json_object_get_string(v));
	if ((v = member(o, "images", json_type_int)) != NULL)
		s->images = (unsigned)json_object_get_int(v);
	if ((gs = member(o, "groups", json_type_array)) == NULL || json_object_array_length(gs) == 0 ||
	    json_object_array_length(gs) > ACC_MAX_GROUPS) {
		set_cause(cause, "%s: no groups", path);
		goto out;
	}
	for (size_t i = 0; i < json_object_array_length(gs); i++) {
		json_object *go = json_object_array_get_idx(gs, i), *ls, *gv, *fv;
		unsigned g;
		if ((gv = member(go, "g", json_type_int)) == NULL || (g = (unsigned)json_object_get_int(gv)) == 0 ||
		    g > ACC_MAX_GROUPS || (fv = member(go, "fp32", json_type_double)) == NULL ||
		    (ls = member(go, "layers", json_type_array)) == NULL || json_object_array_length(ls) > ACC_MAX_LAYERS ||
		    (i > 0 && json_object_array_length(ls) != s->nlayers)) {
			set_cause(cause, "%s: groups[%zu] needs g, fp32 and the same layers as the others", path, i);
			goto out;
		}
		s->fp32[g] = json_object_get_double(fv);
		if (g > s->groups)
			s->groups = g;
		s->nlayers = (unsigned)json_object_array_length(ls);
		for (unsigned k = 0; k < s->nlayers; k++) {
			json_object *l = json_object_array_get_idx(ls, k), *iv, *dv, *nv;
			if ((iv = member(l, "index", json_type_int)) == NULL || (dv = member(l, "drop", json_type_double)) == NULL) {
				set_cause(cause, "%s: groups[%zu].layers[%u] needs index and drop", path, i, k);
				goto out;
			}
			s->layer[k] = (unsigned)json_object_get_int(iv);
			s->drop[g][k] = json_object_get_double(dv);
			if ((nv = member(l, "name", json_type_string)) != NULL)
				snprintf(s->name[k], sizeof(s->name[k]), "%s", json_object_get_string(nv));
		}
	}
	ret = 0;
out:
	json_object_put(o);
	return ret;
}
