/* SPDX-License-Identifier: MIT */
/* Per-layer plans: for every active-group count g, which implementation each
 * weighted layer runs (im2col + BLAS, direct, Winograd F(2x2,3x3) or
 * F(4x4,3x3), int8) and, for int8 layers, the input's calibrated scale and
 * zero point. A plan is keyed to the model's contents, the CPU model and the
 * instruction sets it was measured with; a plan made elsewhere is refused with
 * the reason. The file format is described in docs/plan-format.md. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/cause.h"
#include "common/cpu_model.h"
#include "common/hash.h"
#include "dnn/kernels.h"

#define PLAN_FORMAT "gearbox-plan"
#define PLAN_VERSION 2 /* 2: layouts; version 1 (everything NCHW) is read too */

struct choice {
	enum dnn_impl impl;
	enum dnn_layout layout;
	float scale;
	int zp;
	bool calibrated;
};

struct dnn_lplan {
	unsigned groups;
	size_t n_layers;
	char *model_name;
	uint64_t model_hash;
	char cpu[160];
	char isa[32], isa_int8[32];
	char cluster[64];              /* where it was tuned ("": not said); carried, not interpreted */
	unsigned threads;
	struct choice *c;              /* [g - 1][layer] */
	double latency_us[DNN_MAX_GROUPS], accuracy[DNN_MAX_GROUPS]; /* < 0: not measured */
};

static const char *const impl_names[DNN_IMPL_COUNT] = { "auto", "gemm", "direct", "wino2", "wino4", "int8" };

const char *
dnn_impl_name(enum dnn_impl impl)
{
	return (unsigned)impl < DNN_IMPL_COUNT ? impl_names[impl] : "?";
}

int
dnn_impl_parse(const char *name, enum dnn_impl *impl)
{
	for (unsigned i = 0; i < DNN_IMPL_COUNT; i++)
		if (strcmp(name, impl_names[i]) == 0) {
			*impl = (enum dnn_impl)i;
			return 0;
		}
	return -EINVAL;
}

bool
dnn_impl_applies(const struct dnn_model *m, size_t index, enum dnn_impl impl)
{
	const struct dnn_layer *l;

	if (index >= m->n_layers)
		return false;
	l = &m->layers[index];
	if (l->weight == NULL)
		return impl == DNN_IMPL_AUTO;
	switch (impl) {
	case DNN_IMPL_AUTO:
	case DNN_IMPL_GEMM:
	case DNN_IMPL_INT8:
		return true;
	case DNN_IMPL_DIRECT:
		return l->packed != NULL;
	case DNN_IMPL_WINO2:
	case DNN_IMPL_WINO4:
		return dnn_wino_eligible(l) && l->out_h * l->out_w > 1;
	default:
		return false;
	}
}

uint64_t
dnn_model_fingerprint(const struct dnn_model *m)
{
	/* every plan load and save asks, and the hash reads the whole file */
	struct dnn_model *w = (struct dnn_model *)m;
	uint64_t h;

	if (__atomic_load_n(&m->fingerprint_known, __ATOMIC_ACQUIRE))
		return __atomic_load_n(&m->fingerprint, __ATOMIC_RELAXED);
	h = fnv1a(FNV1A_INIT, m->map, m->map_size);
	__atomic_store_n(&w->fingerprint, h, __ATOMIC_RELAXED);
	__atomic_store_n(&w->fingerprint_known, 1, __ATOMIC_RELEASE);
	return h;
}

struct dnn_lplan *
dnn_lplan_new(const struct dnn_model *m)
{
	struct dnn_lplan *p = calloc(1, sizeof(*p));

	if (p == NULL)
		return NULL;
	p->groups = m->groups;
	p->n_layers = m->n_layers;
	p->model_name = strdup(m->name != NULL ? m->name : "");
	p->c = calloc((size_t)m->groups * m->n_layers, sizeof(*p->c));
	if (p->model_name == NULL || p->c == NULL) {
		dnn_lplan_free(p);
		return NULL;
	}
	p->model_hash = dnn_model_fingerprint(m);
	cpu_model_name(p->cpu, sizeof(p->cpu));
	snprintf(p->isa, sizeof(p->isa), "%s", dnn_kernels_isa());
	snprintf(p->isa_int8, sizeof(p->isa_int8), "%s", dnn_q8_isa());
	p->threads = 1;
	for (unsigned g = 0; g < DNN_MAX_GROUPS; g++)
		p->latency_us[g] = p->accuracy[g] = -1;
	return p;
}

struct dnn_lplan *
dnn_lplan_copy(const struct dnn_lplan *src)
{
	struct dnn_lplan *p = malloc(sizeof(*p));

	if (p == NULL)
		return NULL;
	*p = *src;
	p->model_name = strdup(src->model_name);
	p->c = malloc((size_t)src->groups * src->n_layers * sizeof(*p->c));
	if (p->model_name == NULL || p->c == NULL) {
		dnn_lplan_free(p);
		return NULL;
	}
	memcpy(p->c, src->c, (size_t)src->groups * src->n_layers * sizeof(*p->c));
	return p;
}

void
dnn_lplan_free(struct dnn_lplan *p)
{
	if (p == NULL)
		return;
	free(p->model_name);
	free(p->c);
	free(p);
}

static struct choice *
choice_at(const struct dnn_lplan *p, unsigned g, size_t layer)
{
	if (g < 1 || g > p->groups || layer >= p->n_layers)
		return NULL;
	return &p->c[(size_t)(g - 1) * p->n_layers + layer];
}

int
dnn_lplan_set(struct dnn_lplan *p, const struct dnn_model *m, unsigned g, size_t layer, enum dnn_impl impl)
{
	struct choice *c = choice_at(p, g, layer);

	if (c == NULL || !dnn_impl_applies(m, layer, impl))
		return -EINVAL;
	c->impl = impl;
	if (!dnn_layout_applies(m, layer, impl, c->layout))
		c->layout = DNN_LAYOUT_NCHW;
	return 0;
}

bool
dnn_layout_applies(const struct dnn_model *m, size_t index, enum dnn_impl impl, enum dnn_layout layout)
{
	if (layout == DNN_LAYOUT_NCHW)
		return index < m->n_layers;
	if ((unsigned)layout >= DNN_LAYOUT_COUNT || impl != DNN_IMPL_DIRECT || !dnn_impl_applies(m, index, impl))
		return false;
	return dnn_direct_layout_eligible(&m->layers[index], m->groups, layout);
}

int
dnn_lplan_set_layout(struct dnn_lplan *p, const struct dnn_model *m, unsigned g, size_t layer,
                     enum dnn_layout layout)
{
	struct choice *c = choice_at(p, g, layer);

	if (c == NULL || !dnn_layout_applies(m, layer, c->impl, layout))
		return -EINVAL;
	c->layout = layout;
	return 0;
}

enum dnn_layout
dnn_lplan_get_layout(const struct dnn_lplan *p, unsigned g, size_t layer)
{
	const struct choice *c = choice_at(p, g, layer);

	return c != NULL ? c->layout : DNN_LAYOUT_NCHW;
}

enum dnn_impl
dnn_lplan_get(const struct dnn_lplan *p, unsigned g, size_t layer)
{
	const struct choice *c = choice_at(p, g, layer);

	return c != NULL ? c->impl : DNN_IMPL_AUTO;
}

void
dnn_lplan_set_threads(struct dnn_lplan *p, unsigned threads)
{
	p->threads = threads;
}

unsigned
dnn_lplan_threads(const struct dnn_lplan *p)
{
	return p->threads;
}

void
dnn_lplan_set_cluster(struct dnn_lplan *p, const char *cluster)
{
	snprintf(p->cluster, sizeof(p->cluster), "%s", cluster != NULL ? cluster : "");
}

const char *
dnn_lplan_cluster(const struct dnn_lplan *p)
{
	return p->cluster;
}

void
dnn_lplan_set_measured(struct dnn_lplan *p, unsigned g, double latency_us, double accuracy)
{
	if (g >= 1 && g <= p->groups) {
		p->latency_us[g - 1] = latency_us;
		p->accuracy[g - 1] = accuracy;
	}
}

int
dnn_lplan_scale(const struct dnn_lplan *p, unsigned g, size_t layer, float *scale, int *zp)
{
	const struct choice *c = choice_at(p, g, layer);

	if (c == NULL || !c->calibrated)
		return -ENOENT;
	*scale = c->scale;
	*zp = c->zp;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Calibration: the float model (fast kernels) runs the calibration images at
 * g; every weighted layer's input range over all of them gives its scale and
 * zero point, u = round(x / s) + zp in [0, 127]. */

struct range {
	float *lo, *hi;
};

static void
observe(void *arg, size_t layer, const float *in, size_t n)
{
	struct range *r = arg;

	for (size_t i = 0; i < n; i++) {
		if (in[i] < r->lo[layer])
			r->lo[layer] = in[i];
		if (in[i] > r->hi[layer])
			r->hi[layer] = in[i];
	}
}

int
dnn_lplan_calibrate(struct dnn_lplan *p, const struct dnn_model *m, unsigned g, const float *inputs, size_t count,
                    char **cause)
{
	struct dnn_exec *e;
	struct range r;
	float *out;
	size_t in_n = dnn_model_input_size(m);
	int ret = 0;

	if (g < 1 || g > p->groups || count == 0)
		return (set_cause(cause, "calibration needs g in 1..%u and at least one image", p->groups), -EINVAL);
	if ((e = dnn_exec_create(m, NULL, DNN_KERNELS_FAST, cause)) == NULL)
		return -ENOMEM;
	r.lo = calloc(m->n_layers, sizeof(float));
	r.hi = calloc(m->n_layers, sizeof(float));
	out = malloc(dnn_model_output_size(m) * sizeof(float));
	if (r.lo == NULL || r.hi == NULL || out == NULL) {
		ret = (set_cause(cause, "out of memory"), -ENOMEM);
		goto done;
	}
	for (size_t i = 0; i < m->n_layers; i++) {
		r.lo[i] = INFINITY;
		r.hi[i] = -INFINITY;
	}
	dnn_exec_observe(e, observe, &r);
	for (size_t k = 0; k < count; k++)
		dnn_exec_run(e, g, inputs + k * in_n, out);
	for (size_t i = 0; i < m->n_layers; i++) {
		struct choice *c = choice_at(p, g, i);
		float lo = r.lo[i] < 0.0f ? r.lo[i] : 0.0f, hi = r.hi[i] > 0.0f ? r.hi[i] : 0.0f;
		if (m->layers[i].weight == NULL || !isfinite(r.lo[i]))
			continue;
		c->scale = hi - lo > 0.0f ? (hi - lo) / 127.0f : 1.0f;
		c->zp = (int)lrintf(-lo / c->scale);
		if (c->zp > 127)
			c->zp = 127;
		c->calibrated = true;
	}
done:
	free(r.lo);
	free(r.hi);
	free(out);
	dnn_exec_free(e);
	return ret;
}

/* ------------------------------------------------------------------------ */
/* Preparing a model for a plan: the weights of the variants the plan uses,
 * made once per model (under one lock: the model is otherwise immutable and
 * may be shared by engines on several threads). */

static pthread_mutex_t prepare_lock = PTHREAD_MUTEX_INITIALIZER;

int
dnn_lplan_prepare(const struct dnn_lplan *p, const struct dnn_model *cm, char **cause)
{
	struct dnn_model *m = (struct dnn_model *)cm; /* lazily made caches, see above */
	int ret = 0;

	if (p->n_layers != m->n_layers || p->groups != m->groups)
		return (set_cause(cause, "the plan is for %zu layers and G=%u; the model has %zu layers and G=%u",
		                 p->n_layers, p->groups, m->n_layers, m->groups), -EINVAL);
	pthread_mutex_lock(&prepare_lock);
	for (unsigned g = 1; g <= p->groups && ret == 0; g++)
		for (size_t i = 0; i < p->n_layers && ret == 0; i++) {
			struct dnn_layer *l = &m->layers[i];
			const struct choice *c = choice_at(p, g, i);
			if (!dnn_impl_applies(m, i, c->impl)) {
				ret = (set_cause(cause, "layer %zu '%s' cannot run %s", i, l->name, dnn_impl_name(c->impl)), -EINVAL);
			} else if (!dnn_layout_applies(m, i, c->impl, c->layout)) {
				ret = (set_cause(cause, "layer %zu '%s' cannot run %s in %s layout", i, l->name,
				                 dnn_impl_name(c->impl), dnn_layout_name(c->layout)), -EINVAL);
			} else if (c->impl == DNN_IMPL_INT8 && !c->calibrated) {
				ret = (set_cause(cause, "layer %zu '%s' is int8 at g=%u but has no calibrated scale", i, l->name,
				                g), -EINVAL);
			} else if ((c->impl == DNN_IMPL_WINO2 || c->impl == DNN_IMPL_WINO4) &&
			           dnn_wino_prepare(l, m->groups, c->impl == DNN_IMPL_WINO2 ? 2 : 4) != 0) {
				ret = (set_cause(cause, "out of memory for the Winograd weights of layer '%s'", l->name), -ENOMEM);
			} else if (c->impl == DNN_IMPL_INT8 && dnn_q8_prepare(l, m->groups) != 0) {
				ret = (set_cause(cause, "out of memory for the int8 weights of layer '%s'", l->name), -ENOMEM);
			}
		}
	pthread_mutex_unlock(&prepare_lock);
	return ret;
}

size_t
dnn_lplan_scratch_floats(const struct dnn_lplan *p, const struct dnn_model *m, unsigned threads)
{
	size_t need = 0;

	for (unsigned g = 1; g <= p->groups; g++)
		for (size_t i = 0; i < p->n_layers; i++) {
			const struct dnn_layer *l = &m->layers[i];
			size_t s = 0;
			switch (choice_at(p, g, i)->impl) {
			case DNN_IMPL_WINO2: s = dnn_wino_scratch_floats(l, 2, threads); break;
			case DNN_IMPL_WINO4: s = dnn_wino_scratch_floats(l, 4, threads); break;
			case DNN_IMPL_INT8: s = dnn_q8_scratch_floats(l, m->groups, threads); break;
			default: break;
			}
			need = s > need ? s : need;
		}
	return need;
}

/* The kernel of layer i at g under the plan, or NULL for the family's own. */
dnn_kernel_fn *
dnn_lplan_kernel(const struct dnn_lplan *p, unsigned g, size_t i, float *scale, int *zp)
{
	const struct choice *c = choice_at(p, g, i);

	if (c == NULL)
		return NULL;
	*scale = c->scale;
	*zp = c->zp;
	switch (c->impl) {
	case DNN_IMPL_GEMM: return dnn_f32_conv2d_gemm_fused;
	case DNN_IMPL_DIRECT:
		return c->layout == DNN_LAYOUT_NHWC      ? dnn_f32_conv2d_direct_nhwc
		       : c->layout == DNN_LAYOUT_BLOCKED ? dnn_f32_conv2d_direct_blocked
		                                         : dnn_f32_conv2d_direct;
	case DNN_IMPL_WINO2: return dnn_f32_conv2d_wino2;
	case DNN_IMPL_WINO4: return dnn_f32_conv2d_wino4;
	case DNN_IMPL_INT8: return dnn_q8_conv2d;
	default: return NULL;
	}
}

uint64_t
dnn_lplan_weight_bytes(const struct dnn_lplan *p, const struct dnn_model *m, unsigned g)
{
	uint64_t bytes = 0;

	if (g < 1 || g > m->groups)
		return 0;
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct dnn_layer *l = &m->layers[i];
		struct dnn_layer_info info;
		enum dnn_impl impl = p != NULL ? choice_at(p, g, i)->impl : DNN_IMPL_AUTO;
		if (l->weight == NULL || dnn_model_layer_info(m, i, g, &info) != 0)
			continue;
		/* the weights read at g: one byte per int8 weight plus a float scale
		 * and bias per channel; a float each otherwise (Winograd reads a*a/9
		 * times as many) */
		uint64_t biases = l->bias != NULL ? info.out_c : 0, weights = info.params - biases;
		if (impl == DNN_IMPL_INT8)
			bytes += weights + (uint64_t)info.out_c * sizeof(float) + biases * sizeof(float);
		else if (impl == DNN_IMPL_WINO2 || impl == DNN_IMPL_WINO4) {
			unsigned a = impl == DNN_IMPL_WINO2 ? 4 : 6;
			bytes += (weights * a * a / 9 + biases) * sizeof(float);
		} else
			bytes += info.params * sizeof(float);
	}
	return bytes;
}

/* ------------------------------------------------------------------------ */
/* Files. */

int
dnn_lplan_save(const struct dnn_lplan *p, const struct dnn_model *m, const char *path, char **cause)
{
	struct json_object *root = json_object_new_object(), *model = json_object_new_object();
	struct json_object *groups = json_object_new_array();
	char hash[32];
	int ret = 0;

	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)p->model_hash);
	json_object_object_add(root, "format", json_object_new_string(PLAN_FORMAT));
	json_object_object_add(root, "version", json_object_new_int(PLAN_VERSION));
	json_object_object_add(root, "gearbox", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(model, "name", json_object_new_string(p->model_name));
	json_object_object_add(model, "fnv1a64", json_object_new_string(hash));
	json_object_object_add(model, "groups", json_object_new_int((int)p->groups));
	json_object_object_add(model, "layers", json_object_new_int64((int64_t)p->n_layers));
	json_object_object_add(root, "model", model);
	json_object_object_add(root, "cpu", json_object_new_string(p->cpu));
	json_object_object_add(root, "isa", json_object_new_string(p->isa));
	json_object_object_add(root, "isa_int8", json_object_new_string(p->isa_int8));
	json_object_object_add(root, "block", json_object_new_int((int)dnn_layout_block()));
	json_object_object_add(root, "threads", json_object_new_int((int)p->threads));
	if (p->cluster[0])
		json_object_object_add(root, "cluster", json_object_new_string(p->cluster));
	for (unsigned g = 1; g <= p->groups; g++) {
		struct json_object *jg = json_object_new_object(), *layers = json_object_new_array();
		json_object_object_add(jg, "g", json_object_new_int((int)g));
		if (p->latency_us[g - 1] >= 0)
			json_object_object_add(jg, "latency_us", json_object_new_double(p->latency_us[g - 1]));
		if (p->accuracy[g - 1] >= 0)
			json_object_object_add(jg, "accuracy", json_object_new_double(p->accuracy[g - 1]));
		for (size_t i = 0; i < p->n_layers; i++) {
			const struct choice *c = choice_at(p, g, i);
			struct json_object *jl;
			if (m->layers[i].weight == NULL)
				continue;
			jl = json_object_new_object();
			json_object_object_add(jl, "index", json_object_new_int64((int64_t)i));
			json_object_object_add(jl, "name", json_object_new_string(m->layers[i].name));
			json_object_object_add(jl, "impl", json_object_new_string(dnn_impl_name(c->impl)));
			if (c->layout != DNN_LAYOUT_NCHW)
				json_object_object_add(jl, "layout", json_object_new_string(dnn_layout_name(c->layout)));
			if (c->calibrated) {
				json_object_object_add(jl, "scale", json_object_new_double(c->scale));
				json_object_object_add(jl, "zero_point", json_object_new_int(c->zp));
			}
			json_object_array_add(layers, jl);
		}
		json_object_object_add(jg, "layers", layers);
		json_object_array_add(groups, jg);
	}
	json_object_object_add(root, "plans", groups);
	if (json_object_to_file_ext(path, root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE) != 0)
		ret = (set_cause(cause, "%s: cannot write the plan: %s", path, json_util_get_last_err()), -EIO);
	json_object_put(root);
	return ret;
}

static const char *
get_string(struct json_object *o, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
	               ? json_object_get_string(v)
	               : NULL;
}

static bool
get_int(struct json_object *o, const char *key, int64_t *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
		return false;
	*out = json_object_get_int64(v);
	return true;
}

static bool
get_double(struct json_object *o, const char *key, double *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) ||
	    !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		return false;
	*out = json_object_get_double(v);
	return true;
}

struct dnn_lplan *
dnn_lplan_load(const struct dnn_model *m, const char *path, char **cause)
{
	struct json_object *root = json_object_from_file(path), *model, *plans;
	struct dnn_lplan *p = NULL, *here = NULL;
	const char *s;
	int64_t v, version;
	char hash[32];

	if (root == NULL) {
		set_cause(cause, "%s: not a readable JSON plan: %s", path, json_util_get_last_err());
		return NULL;
	}
	if ((s = get_string(root, "format")) == NULL || strcmp(s, PLAN_FORMAT) != 0) {
		set_cause(cause, "%s: not a gearbox plan (format is not \"%s\")", path, PLAN_FORMAT);
		goto fail;
	}
	if (!get_int(root, "version", &v) || v < 1 || v > PLAN_VERSION) {
		set_cause(cause, "%s: plan format version %lld; this gearbox reads versions 1 to %d", path,
		          get_int(root, "version", &v) ? (long long)v : -1LL, PLAN_VERSION);
		goto fail;
	}
	version = v;
	if ((here = dnn_lplan_new(m)) == NULL) {
		set_cause(cause, "out of memory");
		goto fail;
	}
	snprintf(hash, sizeof(hash), "%016llx", (unsigned long long)here->model_hash);
	if (!json_object_object_get_ex(root, "model", &model) || (s = get_string(model, "fnv1a64")) == NULL) {
		set_cause(cause, "%s: the plan does not say which model it is for", path);
		goto fail;
	}
	if (strcmp(s, hash) != 0) {
		set_cause(cause, "%s was made for another model file (%s, contents %s); %s has contents %s", path,
		          get_string(model, "name") ? get_string(model, "name") : "?", s, m->path, hash);
		goto fail;
	}
	if ((s = get_string(root, "cpu")) == NULL || strcmp(s, here->cpu) != 0) {
		set_cause(cause, "%s was measured on another CPU (%s); this one is %s", path, s ? s : "none named", here->cpu);
		goto fail;
	}
	if ((s = get_string(root, "isa")) == NULL || strcmp(s, here->isa) != 0) {
		set_cause(cause, "%s was measured with the %s kernels; this build and CPU run %s", path, s ? s : "?",
		          here->isa);
		goto fail;
	}
	if ((s = get_string(root, "isa_int8")) == NULL || strcmp(s, here->isa_int8) != 0) {
		set_cause(cause, "%s was measured with the %s int8 kernels; this build and CPU run %s", path,
		          s ? s : "?", here->isa_int8);
		goto fail;
	}
	if (get_int(root, "threads", &v) && v >= 1 && v <= 1024)
		here->threads = (unsigned)v;
	if ((s = get_string(root, "cluster")) != NULL)
		dnn_lplan_set_cluster(here, s);
	if (!json_object_object_get_ex(root, "plans", &plans) || !json_object_is_type(plans, json_type_array)) {
		set_cause(cause, "%s: no \"plans\" array", path);
		goto fail;
	}
	for (size_t k = 0; k < json_object_array_length(plans); k++) {
		struct json_object *jg = json_object_array_get_idx(plans, k), *layers;
		double d;
		int64_t g;
		if (!get_int(jg, "g", &g) || g < 1 || g > m->groups) {
			set_cause(cause, "%s: plan %zu has no g from 1 to %u", path, k, m->groups);
			goto fail;
		}
		if (get_double(jg, "latency_us", &d))
			here->latency_us[g - 1] = d;
		if (get_double(jg, "accuracy", &d))
			here->accuracy[g - 1] = d;
		if (!json_object_object_get_ex(jg, "layers", &layers) || !json_object_is_type(layers, json_type_array)) {
			set_cause(cause, "%s: the plan for g=%lld has no \"layers\" array", path, (long long)g);
			goto fail;
		}
		for (size_t j = 0; j < json_object_array_length(layers); j++) {
			struct json_object *jl = json_object_array_get_idx(layers, j);
			enum dnn_impl impl;
			int64_t idx, zp;
			double scale;
			struct choice *c;
			if (!get_int(jl, "index", &idx) || idx < 0 || (size_t)idx >= m->n_layers ||
			    (s = get_string(jl, "impl")) == NULL || dnn_impl_parse(s, &impl) != 0 ||
			    !dnn_impl_applies(m, (size_t)idx, impl)) {
				set_cause(cause, "%s: g=%lld, entry %zu: needs an \"index\" of a weighted layer and an \"impl\" it "
				          "can run (auto, gemm, direct, wino2, wino4, int8)", path, (long long)g, j);
				goto fail;
			}
			c = choice_at(here, (unsigned)g, (size_t)idx);
			c->impl = impl;
			c->layout = DNN_LAYOUT_NCHW;
			if ((s = get_string(jl, "layout")) != NULL &&
			    (version < 2 || dnn_layout_parse(s, &c->layout) != 0 ||
			     !dnn_layout_applies(m, (size_t)idx, impl, c->layout))) {
				set_cause(cause, "%s: g=%lld, layer %lld: layout \"%s\" %s", path, (long long)g, (long long)idx, s,
				          version < 2 ? "in a version 1 plan (layouts came with version 2)"
				                      : "is not one this layer runs (nchw; nhwc and blocked with direct)");
				goto fail;
			}
			if (get_double(jl, "scale", &scale) && get_int(jl, "zero_point", &zp)) {
				/* kept as a float: 1e308 or 1e-50 would become inf or 0 */
				if (!((float)scale > 0) || !isfinite((float)scale) || zp < 0 || zp > 127) {
					set_cause(cause, "%s: g=%lld, layer %lld: scale must be a positive float and zero_point 0..127",
					          path, (long long)g, (long long)idx);
					goto fail;
				}
				c->scale = (float)scale;
				c->zp = (int)zp;
				c->calibrated = true;
			}
			if (impl == DNN_IMPL_INT8 && !c->calibrated) {
				set_cause(cause, "%s: g=%lld, layer %lld is int8 without a scale and zero_point", path,
				          (long long)g, (long long)idx);
				goto fail;
			}
		}
	}
	p = here;
	here = NULL;
fail:
	dnn_lplan_free(here);
	json_object_put(root);
	return p;
}
