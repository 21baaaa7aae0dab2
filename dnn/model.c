/* SPDX-License-Identifier: MIT */
/* Model loader: a safetensors container whose __metadata__ holds the graph.
 * Everything is validated before use; any problem is refused with a message
 * that names the file, the tensor or key, and what is wrong. The format is
 * described in docs/model-format.md. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/cause.h"
#include "dnn/internal.h"

/* Limits that reject absurd files before they can make us allocate or loop
 * without end. They are far above any model that fits an embedded board. */
#define MAX_HEADER_BYTES (64u << 20)
#define MAX_DIM (1u << 24)
#define MAX_ELEMENTS (1ull << 30)
#define MAX_CHANNELS (1u << 16)
#define MAX_SPATIAL (1u << 14)
#define MAX_KERNEL 64u
#define MAX_LAYERS 1024u
#define MAX_ACTIVATION (1ull << 28)
#define MAX_CLASSES 100000u

#define FORMAT_NAME "gearbox-dnn"
#define FORMAT_VERSION "1"

struct tensor {
	const char *name; /* owned by the header JSON */
	unsigned ndim;
	uint64_t shape[8];
	uint64_t begin, end;
	const float *data;
	bool used;
};

struct loader {
	const char *path;
	char **cause;
	struct json_object *header;
	struct json_object *graph;
	struct tensor *tensors;
	size_t n_tensors;
};

static int
fail(struct loader *ld, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct loader *ld, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (ld->cause == NULL)
		return -1;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	set_cause(ld->cause, "%s: %s", ld->path, msg != NULL ? msg : "out of memory");
	free(msg);
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Container: header length, JSON header, tensor table. */

static int
parse_u64(struct json_object *o, uint64_t *out)
{
	int64_t v;

	if (o == NULL || !json_object_is_type(o, json_type_int))
		return -1;
	errno = 0;
	v = json_object_get_int64(o);
	if (v < 0 || errno != 0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

static int
parse_tensor(struct loader *ld, const char *name, struct json_object *o, uint64_t data_size, struct tensor *t)
{
	struct json_object *dtype, *shape, *offsets;
	uint64_t elements = 1;

	t->name = name;
	if (!json_object_is_type(o, json_type_object))
		return fail(ld, "tensor '%s': entry is not a JSON object", name);
	if (!json_object_object_get_ex(o, "dtype", &dtype) || !json_object_is_type(dtype, json_type_string))
		return fail(ld, "tensor '%s': missing string key 'dtype'", name);
	if (strcmp(json_object_get_string(dtype), "F32") != 0)
		return fail(ld, "tensor '%s': dtype '%s' is not supported (only F32)", name,
		            json_object_get_string(dtype));
	if (!json_object_object_get_ex(o, "shape", &shape) || !json_object_is_type(shape, json_type_array))
		return fail(ld, "tensor '%s': missing array key 'shape'", name);
	t->ndim = (unsigned)json_object_array_length(shape);
	if (t->ndim > 8)
		return fail(ld, "tensor '%s': %u dimensions (at most 8)", name, t->ndim);
	for (unsigned i = 0; i < t->ndim; i++) {
		if (parse_u64(json_object_array_get_idx(shape, i), &t->shape[i]) != 0)
			return fail(ld, "tensor '%s': shape[%u] is not a non-negative integer", name, i);
		if (t->shape[i] > MAX_DIM)
			return fail(ld, "tensor '%s': shape[%u] = %llu is absurd (limit %u)", name, i,
			            (unsigned long long)t->shape[i], MAX_DIM);
		elements *= t->shape[i];
		if (elements > MAX_ELEMENTS)
			return fail(ld, "tensor '%s': more than %llu elements", name, (unsigned long long)MAX_ELEMENTS);
	}
	if (!json_object_object_get_ex(o, "data_offsets", &offsets) ||
	    !json_object_is_type(offsets, json_type_array) || json_object_array_length(offsets) != 2 ||
	    parse_u64(json_object_array_get_idx(offsets, 0), &t->begin) != 0 ||
	    parse_u64(json_object_array_get_idx(offsets, 1), &t->end) != 0)
		return fail(ld, "tensor '%s': 'data_offsets' must be [begin, end] with non-negative integers", name);
	if (t->begin > t->end)
		return fail(ld, "tensor '%s': data_offsets [%llu, %llu] run backwards", name,
		            (unsigned long long)t->begin, (unsigned long long)t->end);
	if (t->end > data_size)
		return fail(ld, "tensor '%s': data_offsets [%llu, %llu] out of range (data section is %llu bytes)", name,
		            (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)data_size);
	if (t->end - t->begin != elements * sizeof(float))
		return fail(ld, "tensor '%s': data_offsets span %llu bytes but the shape needs %llu", name,
		            (unsigned long long)(t->end - t->begin), (unsigned long long)(elements * sizeof(float)));
	return 0;
}

static int
compare_tensor_begin(const void *a, const void *b)
{
	const struct tensor *ta = a, *tb = b;

	return (ta->begin > tb->begin) - (ta->begin < tb->begin);
}

static int
parse_container(struct loader *ld, const unsigned char *map, size_t size)
{
	uint64_t header_len = 0, data_size;
	struct json_tokener *tok;
	struct json_object_iterator it, end;
	const unsigned char *data;
	size_t n = 0;

	if (size < 8)
		return fail(ld, "file is %zu bytes, shorter than the 8-byte header length", size);
	for (int i = 7; i >= 0; i--)
		header_len = header_len << 8 | map[i];
	if (header_len > size - 8)
		return fail(ld, "header length %llu runs past the end of the file (%zu bytes): truncated?",
		            (unsigned long long)header_len, size);
	if (header_len > MAX_HEADER_BYTES)
		return fail(ld, "header length %llu is absurd (limit %u)", (unsigned long long)header_len, MAX_HEADER_BYTES);
	if (header_len < 2)
		return fail(ld, "header length %llu is too short for a JSON object", (unsigned long long)header_len);

	tok = json_tokener_new();
	if (tok == NULL)
		return fail(ld, "out of memory");
	ld->header = json_tokener_parse_ex(tok, (const char *)map + 8, (int)header_len);
	if (ld->header == NULL) {
		enum json_tokener_error jerr = json_tokener_get_error(tok);
		int ret = fail(ld, "header is not valid JSON: %s (near byte %zu)",
		               jerr == json_tokener_continue ? "unexpected end of header" : json_tokener_error_desc(jerr),
		               json_tokener_get_parse_end(tok));
		json_tokener_free(tok);
		return ret;
	}
	/* Anything after the object must be the padding spaces safetensors uses. */
	for (size_t i = json_tokener_get_parse_end(tok); i < header_len; i++) {
		if (map[8 + i] != ' ' && map[8 + i] != '\n' && map[8 + i] != '\0') {
			json_tokener_free(tok);
			return fail(ld, "header has trailing bytes after the JSON object (byte %zu)", i);
		}
	}
	json_tokener_free(tok);
	if (!json_object_is_type(ld->header, json_type_object))
		return fail(ld, "header is not a JSON object");

	data = map + 8 + header_len;
	data_size = size - 8 - header_len;
	ld->tensors = calloc((size_t)json_object_object_length(ld->header) + 1, sizeof(*ld->tensors));
	if (ld->tensors == NULL)
		return fail(ld, "out of memory");
	it = json_object_iter_begin(ld->header);
	end = json_object_iter_end(ld->header);
	for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it)) {
		const char *name = json_object_iter_peek_name(&it);
		struct tensor *t = &ld->tensors[n];

		if (strcmp(name, "__metadata__") == 0)
			continue;
		if (parse_tensor(ld, name, json_object_iter_peek_value(&it), data_size, t) != 0)
			return -1;
		/* The buffer is page-aligned, so this checks the file's own layout. */
		if (((uintptr_t)(data + t->begin)) % sizeof(float) != 0)
			return fail(ld, "tensor '%s': data is not 4-byte aligned (pad the header with spaces to a "
			            "multiple of 8 bytes, as safetensors writers do)", name);
		t->data = (const float *)(const void *)(data + t->begin);
		n++;
	}
	ld->n_tensors = n;

	qsort(ld->tensors, n, sizeof(*ld->tensors), compare_tensor_begin);
	for (size_t i = 1; i < n; i++) {
		const struct tensor *a = &ld->tensors[i - 1], *b = &ld->tensors[i];
		if (b->begin < a->end && b->begin != b->end && a->begin != a->end)
			return fail(ld, "tensors '%s' [%llu, %llu] and '%s' [%llu, %llu] overlap", a->name,
			            (unsigned long long)a->begin, (unsigned long long)a->end, b->name,
			            (unsigned long long)b->begin, (unsigned long long)b->end);
	}
	return 0;
}

static struct tensor *
find_tensor(struct loader *ld, const char *name)
{
	for (size_t i = 0; i < ld->n_tensors; i++)
		if (strcmp(ld->tensors[i].name, name) == 0)
			return &ld->tensors[i];
	return NULL;
}

/* ------------------------------------------------------------------------ */
/* Metadata: the graph JSON and its consistency with the tensors. */

static int
parse_metadata(struct loader *ld)
{
	struct json_object *meta, *v;
	const char *graph_text;

	if (!json_object_object_get_ex(ld->header, "__metadata__", &meta) ||
	    !json_object_is_type(meta, json_type_object))
		return fail(ld, "no '__metadata__' object: not a gearbox model");
	if (!json_object_object_get_ex(meta, "format", &v) || !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), FORMAT_NAME) != 0)
		return fail(ld, "__metadata__ key 'format' must be \"" FORMAT_NAME "\"");
	if (!json_object_object_get_ex(meta, "format_version", &v) || !json_object_is_type(v, json_type_string) ||
	    strcmp(json_object_get_string(v), FORMAT_VERSION) != 0)
		return fail(ld, "__metadata__ key 'format_version' must be \"" FORMAT_VERSION "\" (this gearbox reads "
		            "version " FORMAT_VERSION ")");
	if (!json_object_object_get_ex(meta, "graph", &v) || !json_object_is_type(v, json_type_string))
		return fail(ld, "__metadata__ key 'graph' is missing or not a string");
	graph_text = json_object_get_string(v);
	{
		struct json_tokener *tok = json_tokener_new();
		if (tok == NULL)
			return fail(ld, "out of memory");
		ld->graph = json_tokener_parse_ex(tok, graph_text, json_object_get_string_len(v));
		if (ld->graph == NULL || json_tokener_get_parse_end(tok) != (size_t)json_object_get_string_len(v)) {
			enum json_tokener_error jerr = json_tokener_get_error(tok);
			int ret = fail(ld, "__metadata__ 'graph' is not valid JSON: %s (near byte %zu)",
			               ld->graph == NULL ? json_tokener_error_desc(jerr) : "trailing characters",
			               json_tokener_get_parse_end(tok));
			json_tokener_free(tok);
			return ret;
		}
		json_tokener_free(tok);
	}
	if (!json_object_is_type(ld->graph, json_type_object))
		return fail(ld, "__metadata__ 'graph' is not a JSON object");
	return 0;
}

/* Read an unsigned integer key into *out; `def` is used when absent (pass
 * required=true to refuse absence). */
static int
get_uint(struct loader *ld, struct json_object *obj, const char *where, const char *key, bool required,
         unsigned def, unsigned max, unsigned *out)
{
	struct json_object *v;
	uint64_t x;

	if (!json_object_object_get_ex(obj, key, &v)) {
		if (required)
			return fail(ld, "%s: missing key '%s'", where, key);
		*out = def;
		return 0;
	}
	if (parse_u64(v, &x) != 0)
		return fail(ld, "%s: key '%s' must be a non-negative integer", where, key);
	if (x > max)
		return fail(ld, "%s: key '%s' = %llu is absurd (limit %u)", where, key, (unsigned long long)x, max);
	*out = (unsigned)x;
	return 0;
}

/* A spatial pair given either as one integer or as [h, w]. */
static int
get_pair(struct loader *ld, struct json_object *obj, const char *where, const char *key, bool required,
         unsigned def, unsigned max, unsigned *h, unsigned *w)
{
	struct json_object *v;
	uint64_t a, b;

	if (!json_object_object_get_ex(obj, key, &v)) {
		if (required)
			return fail(ld, "%s: missing key '%s'", where, key);
		*h = *w = def;
		return 0;
	}
	if (json_object_is_type(v, json_type_int)) {
		if (parse_u64(v, &a) != 0)
			return fail(ld, "%s: key '%s' must be non-negative", where, key);
		b = a;
	} else if (json_object_is_type(v, json_type_array) && json_object_array_length(v) == 2) {
		if (parse_u64(json_object_array_get_idx(v, 0), &a) != 0 ||
		    parse_u64(json_object_array_get_idx(v, 1), &b) != 0)
			return fail(ld, "%s: key '%s' must hold non-negative integers", where, key);
	} else {
		return fail(ld, "%s: key '%s' must be an integer or [h, w]", where, key);
	}
	if (a > max || b > max)
		return fail(ld, "%s: key '%s' = [%llu, %llu] is absurd (limit %u)", where, key, (unsigned long long)a,
		            (unsigned long long)b, max);
	*h = (unsigned)a;
	*w = (unsigned)b;
	return 0;
}

static int
parse_float_array(struct loader *ld, struct json_object *arr, const char *where, unsigned n, float **out)
{
	size_t len;

	if (!json_object_is_type(arr, json_type_array))
		return fail(ld, "%s: must be an array of numbers", where);
	len = json_object_array_length(arr);
	if (len != n && len != 1)
		return fail(ld, "%s: has %zu values, expected 1 or %u (one per input channel)", where, len, n);
	*out = calloc(n, sizeof(float));
	if (*out == NULL)
		return fail(ld, "out of memory");
	for (unsigned i = 0; i < n; i++) {
		struct json_object *v = json_object_array_get_idx(arr, len == 1 ? 0 : i);
		if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
			return fail(ld, "%s[%u] is not a number", where, i);
		(*out)[i] = (float)json_object_get_double(v);
		if (!isfinite((*out)[i]))
			return fail(ld, "%s[%u] is not finite", where, i);
	}
	return 0;
}

static int
parse_input(struct loader *ld, struct dnn_model *m)
{
	struct json_object *in, *shape, *v;
	uint64_t dims[3];

	if (!json_object_object_get_ex(ld->graph, "input", &in) || !json_object_is_type(in, json_type_object))
		return fail(ld, "graph: missing object 'input'");
	if (!json_object_object_get_ex(in, "shape", &shape) || !json_object_is_type(shape, json_type_array) ||
	    json_object_array_length(shape) != 3)
		return fail(ld, "graph 'input': 'shape' must be [channels, height, width]");
	for (unsigned i = 0; i < 3; i++)
		if (parse_u64(json_object_array_get_idx(shape, i), &dims[i]) != 0 || dims[i] == 0 ||
		    dims[i] > (i == 0 ? MAX_CHANNELS : MAX_SPATIAL))
			return fail(ld, "graph 'input': shape[%u] must be a positive integer no larger than %u", i,
			            i == 0 ? MAX_CHANNELS : MAX_SPATIAL);
	m->in_c = (unsigned)dims[0];
	m->in_h = (unsigned)dims[1];
	m->in_w = (unsigned)dims[2];

	if (json_object_object_get_ex(in, "mean", &v)) {
		if (parse_float_array(ld, v, "graph 'input' 'mean'", m->in_c, &m->mean) != 0)
			return -1;
	} else if ((m->mean = calloc(m->in_c, sizeof(float))) == NULL) {
		return fail(ld, "out of memory");
	}
	if (json_object_object_get_ex(in, "std", &v)) {
		if (parse_float_array(ld, v, "graph 'input' 'std'", m->in_c, &m->std) != 0)
			return -1;
		for (unsigned c = 0; c < m->in_c; c++)
			if (!(m->std[c] > 0))
				return fail(ld, "graph 'input': std[%u] must be positive", c);
	} else {
		if ((m->std = calloc(m->in_c, sizeof(float))) == NULL)
			return fail(ld, "out of memory");
		for (unsigned c = 0; c < m->in_c; c++)
			m->std[c] = 1.0f;
	}
	return 0;
}

static int
parse_labels_and_accuracy(struct loader *ld, struct dnn_model *m)
{
	struct json_object *labels, *acc, *v;

	if (!json_object_object_get_ex(ld->graph, "labels", &labels) || !json_object_is_type(labels, json_type_array) ||
	    json_object_array_length(labels) == 0)
		return fail(ld, "graph: missing non-empty array 'labels' (one name per class)");
	if (json_object_array_length(labels) > MAX_CLASSES)
		return fail(ld, "graph: %zu labels is absurd (limit %u)", json_object_array_length(labels), MAX_CLASSES);
	m->classes = (unsigned)json_object_array_length(labels);
	m->labels = calloc(m->classes, sizeof(char *));
	if (m->labels == NULL)
		return fail(ld, "out of memory");
	for (unsigned i = 0; i < m->classes; i++) {
		v = json_object_array_get_idx(labels, i);
		if (!json_object_is_type(v, json_type_string))
			return fail(ld, "graph: labels[%u] is not a string", i);
		if ((m->labels[i] = strdup(json_object_get_string(v))) == NULL)
			return fail(ld, "out of memory");
	}

	for (unsigned g = 0; g < DNN_MAX_GROUPS; g++)
		m->accuracy[g] = -1.0;
	if (json_object_object_get_ex(ld->graph, "accuracy", &acc) && !json_object_is_type(acc, json_type_null)) {
		if (!json_object_is_type(acc, json_type_array) || json_object_array_length(acc) != m->groups)
			return fail(ld, "graph: 'accuracy' must be an array of %u entries (one per active-group count)",
			            m->groups);
		for (unsigned g = 0; g < m->groups; g++) {
			v = json_object_array_get_idx(acc, g);
			if (json_object_is_type(v, json_type_null))
				continue;
			if (!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int))
				return fail(ld, "graph: accuracy[%u] is not a number or null", g);
			m->accuracy[g] = json_object_get_double(v);
			if (!(m->accuracy[g] >= 0.0 && m->accuracy[g] <= 1.0))
				return fail(ld, "graph: accuracy[%u] = %g is outside [0, 1]", g, m->accuracy[g]);
		}
	}
	return 0;
}

static int
parse_layer_type(const char *s, enum dnn_layer_type *type)
{
	for (int t = DNN_CONV2D; t <= DNN_SOFTMAX; t++) {
		if (strcmp(s, dnn_layer_type_name((enum dnn_layer_type)t)) == 0) {
			*type = (enum dnn_layer_type)t;
			return 0;
		}
	}
	return -1;
}

/* Bind the weight and bias tensors of a weighted layer and check their shapes
 * against what the graph says. */
static int
bind_weights(struct loader *ld, struct json_object *lo, const char *where, struct dnn_layer *l, unsigned G)
{
	struct json_object *v;
	char defname[300];
	const char *wname, *bname = NULL;
	struct tensor *w, *b = NULL;
	unsigned in_w_c = l->conn == DNN_CONN_GROUPED ? l->in_c / G : l->in_c;
	uint64_t expect[4] = { l->out_c, in_w_c, l->kh, l->kw };
	unsigned ndim = l->type == DNN_CONV2D ? 4 : 2;

	if (json_object_object_get_ex(lo, "weight", &v)) {
		if (!json_object_is_type(v, json_type_string))
			return fail(ld, "%s: key 'weight' must name a tensor", where);
		wname = json_object_get_string(v);
	} else {
		snprintf(defname, sizeof(defname), "%s.weight", l->name);
		wname = defname;
	}
	if ((w = find_tensor(ld, wname)) == NULL)
		return fail(ld, "%s: weight tensor '%s' is not in the file", where, wname);
	if (w->used)
		return fail(ld, "%s: tensor '%s' is already used by another layer", where, wname);
	if (ndim == 2)
		expect[1] = (uint64_t)in_w_c * l->in_h * l->in_w;
	if (w->ndim != ndim || memcmp(w->shape, expect, ndim * sizeof(uint64_t)) != 0) {
		char got[128] = "", want[128] = "";
		for (unsigned i = 0; i < w->ndim; i++)
			snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s%llu", i ? "," : "",
			         (unsigned long long)w->shape[i]);
		for (unsigned i = 0; i < ndim; i++)
			snprintf(want + strlen(want), sizeof(want) - strlen(want), "%s%llu", i ? "," : "",
			         (unsigned long long)expect[i]);
		return fail(ld, "tensor '%s': shape [%s] does not match the graph (%s expects [%s], %s connectivity)",
		            wname, got, where, want, dnn_connectivity_name(l->conn));
	}
	w->used = true;
	l->weight = w->data;
	l->weight_cols = (unsigned)(expect[1] * (ndim == 4 ? l->kh * l->kw : 1));

	if (json_object_object_get_ex(lo, "bias", &v)) {
		if (json_object_is_type(v, json_type_string))
			bname = json_object_get_string(v);
		else if (!json_object_is_type(v, json_type_null))
			return fail(ld, "%s: key 'bias' must name a tensor or be null", where);
		if (bname != NULL && (b = find_tensor(ld, bname)) == NULL)
			return fail(ld, "%s: bias tensor '%s' is not in the file", where, bname);
	} else {
		snprintf(defname, sizeof(defname), "%s.bias", l->name);
		b = find_tensor(ld, defname);
		bname = defname;
	}
	if (b != NULL) {
		if (b->used)
			return fail(ld, "%s: tensor '%s' is already used by another layer", where, bname);
		if (b->ndim != 1 || b->shape[0] != l->out_c)
			return fail(ld, "tensor '%s': bias must have shape [%u] (%s)", bname, l->out_c, where);
		b->used = true;
		l->bias = b->data;
	}
	return 0;
}

static int
parse_connectivity(struct loader *ld, struct json_object *lo, const char *where, enum dnn_connectivity def,
                   enum dnn_connectivity *conn)
{
	struct json_object *v;
	const char *s;

	if (!json_object_object_get_ex(lo, "connectivity", &v)) {
		*conn = def;
		return 0;
	}
	if (!json_object_is_type(v, json_type_string))
		return fail(ld, "%s: key 'connectivity' must be a string", where);
	s = json_object_get_string(v);
	if (strcmp(s, "grouped") == 0)
		*conn = DNN_CONN_GROUPED;
	else if (strcmp(s, "nested") == 0)
		*conn = DNN_CONN_NESTED;
	else if (strcmp(s, "dense") == 0)
		*conn = DNN_CONN_DENSE;
	else
		return fail(ld, "%s: connectivity '%s' is not one of grouped, nested, dense", where, s);
	return 0;
}

/* Shape inference and validation of one layer given its input shape. */
static int
parse_layer(struct loader *ld, struct dnn_model *m, struct json_object *lo, size_t index, bool first_weighted,
            bool classifier, bool in_grouped, enum dnn_connectivity def_conn, struct dnn_layer *l)
{
	struct json_object *v;
	char where[160];
	unsigned G = m->groups;
	uint64_t act;

	if (!json_object_is_type(lo, json_type_object))
		return fail(ld, "graph: layers[%zu] is not an object", index);
	if (!json_object_object_get_ex(lo, "type", &v) || !json_object_is_type(v, json_type_string))
		return fail(ld, "graph: layers[%zu] has no string key 'type'", index);
	if (parse_layer_type(json_object_get_string(v), &l->type) != 0)
		return fail(ld, "graph: layers[%zu] has unknown type '%s' (conv2d, relu, maxpool, avgpool, flatten, "
		            "linear, softmax)", index, json_object_get_string(v));
	if (json_object_object_get_ex(lo, "name", &v)) {
		if (!json_object_is_type(v, json_type_string) || json_object_get_string_len(v) == 0 ||
		    json_object_get_string_len(v) > 200)
			return fail(ld, "graph: layers[%zu] 'name' must be a string of 1 to 200 characters", index);
		l->name = strdup(json_object_get_string(v));
	} else {
		char buf[32];
		snprintf(buf, sizeof(buf), "%s%zu", dnn_layer_type_name(l->type), index);
		l->name = strdup(buf);
	}
	if (l->name == NULL)
		return fail(ld, "out of memory");
	snprintf(where, sizeof(where), "layer %zu '%s'", index, l->name);

	l->in_grouped = l->out_grouped = in_grouped;
	l->conn = DNN_CONN_NONE;
	l->kh = l->kw = l->sh = l->sw = 1;
	l->out_c = l->in_c;
	l->out_h = l->in_h;
	l->out_w = l->in_w;

	switch (l->type) {
	case DNN_CONV2D:
	case DNN_LINEAR:
		if (l->type == DNN_CONV2D) {
			if (get_uint(ld, lo, where, "out_channels", true, 0, MAX_CHANNELS, &l->out_c) != 0 ||
			    get_pair(ld, lo, where, "kernel", true, 0, MAX_KERNEL, &l->kh, &l->kw) != 0 ||
			    get_pair(ld, lo, where, "stride", false, 1, MAX_KERNEL, &l->sh, &l->sw) != 0 ||
			    get_pair(ld, lo, where, "padding", false, 0, MAX_KERNEL, &l->ph, &l->pw) != 0)
				return -1;
		} else {
			if (get_uint(ld, lo, where, "out_features", true, 0, MAX_DIM, &l->out_c) != 0)
				return -1;
			if (l->in_h != 1 || l->in_w != 1)
				return fail(ld, "%s: linear layer needs a flat input but gets %ux%ux%u (add a flatten layer)",
				            where, l->in_c, l->in_h, l->in_w);
			l->kh = l->kw = 1;
		}
		if (l->out_c == 0 || l->kh == 0 || l->kw == 0 || l->sh == 0 || l->sw == 0)
			return fail(ld, "%s: out_channels, kernel and stride must be positive", where);
		l->out_grouped = !classifier;
		if (first_weighted || classifier) {
			if (parse_connectivity(ld, lo, where, DNN_CONN_DENSE, &l->conn) != 0)
				return -1;
			if (l->conn != DNN_CONN_DENSE)
				return fail(ld, "%s: the %s layer must have dense connectivity (it %s)", where,
				            first_weighted ? "first weighted" : "classifier",
				            first_weighted ? "reads the whole input" : "produces every class");
		} else {
			if (parse_connectivity(ld, lo, where, def_conn, &l->conn) != 0)
				return -1;
			if (l->conn == DNN_CONN_DENSE)
				return fail(ld, "%s: hidden layers must be grouped or nested: dense connectivity would make "
				            "early groups read later ones", where);
		}
		if (l->out_grouped && l->out_c % G != 0)
			return fail(ld, "%s: G=%u groups do not divide its %u output channels", where, G, l->out_c);
		if (l->in_grouped && l->in_c % G != 0)
			return fail(ld, "%s: G=%u groups do not divide its %u input channels", where, G, l->in_c);
		if (l->in_h + 2 * l->ph < l->kh || l->in_w + 2 * l->pw < l->kw)
			return fail(ld, "%s: kernel %ux%u is larger than the padded input %ux%u", where, l->kh, l->kw,
			            l->in_h + 2 * l->ph, l->in_w + 2 * l->pw);
		if (l->ph >= l->kh || l->pw >= l->kw)
			return fail(ld, "%s: padding %ux%u must be smaller than the kernel %ux%u", where, l->ph, l->pw,
			            l->kh, l->kw);
		l->out_h = (l->in_h + 2 * l->ph - l->kh) / l->sh + 1;
		l->out_w = (l->in_w + 2 * l->pw - l->kw) / l->sw + 1;
		if (bind_weights(ld, lo, where, l, G) != 0)
			return -1;
		break;
	case DNN_MAXPOOL:
	case DNN_AVGPOOL: {
		unsigned ph, pw;
		if (get_pair(ld, lo, where, "kernel", true, 0, MAX_KERNEL, &l->kh, &l->kw) != 0 ||
		    get_pair(ld, lo, where, "stride", false, 0, MAX_KERNEL, &l->sh, &l->sw) != 0 ||
		    get_pair(ld, lo, where, "padding", false, 0, MAX_KERNEL, &ph, &pw) != 0)
			return -1;
		if (!json_object_object_get_ex(lo, "stride", NULL)) {
			l->sh = l->kh; /* PyTorch's default: stride = kernel */
			l->sw = l->kw;
		}
		if (l->kh == 0 || l->kw == 0 || l->sh == 0 || l->sw == 0)
			return fail(ld, "%s: kernel and stride must be positive", where);
		if (ph != 0 || pw != 0)
			return fail(ld, "%s: pooling with padding is not supported (export with padding 0)", where);
		if (l->kh > l->in_h || l->kw > l->in_w)
			return fail(ld, "%s: pooling window %ux%u is larger than its input %ux%u", where, l->kh, l->kw,
			            l->in_h, l->in_w);
		l->out_h = (l->in_h - l->kh) / l->sh + 1;
		l->out_w = (l->in_w - l->kw) / l->sw + 1;
		break;
	}
	case DNN_FLATTEN:
		l->out_c = l->in_c * l->in_h * l->in_w;
		l->out_h = l->out_w = 1;
		if (l->out_c > MAX_DIM)
			return fail(ld, "%s: flattening %ux%ux%u gives an absurd %u features", where, l->in_c, l->in_h,
			            l->in_w, l->out_c);
		break;
	case DNN_RELU:
		break;
	case DNN_SOFTMAX:
		if (in_grouped || l->in_h != 1 || l->in_w != 1)
			return fail(ld, "%s: softmax must follow the classifier", where);
		break;
	}
	act = (uint64_t)l->out_c * l->out_h * l->out_w;
	if (act > MAX_ACTIVATION)
		return fail(ld, "%s: output of %llu values is absurd", where, (unsigned long long)act);
	return 0;
}

static int
parse_graph(struct loader *ld, struct dnn_model *m)
{
	struct json_object *layers, *v;
	enum dnn_connectivity def_conn = DNN_CONN_GROUPED;
	size_t n, first_w = SIZE_MAX, last_w = SIZE_MAX;
	unsigned c, h, w;
	bool grouped = false;

	if (json_object_object_get_ex(ld->graph, "name", &v) && json_object_is_type(v, json_type_string))
		m->name = strdup(json_object_get_string(v));
	else {
		const char *base = strrchr(ld->path, '/');
		m->name = strdup(base != NULL ? base + 1 : ld->path);
	}
	if (m->name == NULL)
		return fail(ld, "out of memory");
	if (get_uint(ld, ld->graph, "graph", "groups", true, 0, DNN_MAX_GROUPS, &m->groups) != 0)
		return -1;
	if (m->groups == 0)
		return fail(ld, "graph: 'groups' must be between 1 and %d", DNN_MAX_GROUPS);
	if (json_object_object_get_ex(ld->graph, "connectivity", &v) &&
	    parse_connectivity(ld, ld->graph, "graph", DNN_CONN_GROUPED, &def_conn) != 0)
		return -1;
	if (def_conn == DNN_CONN_DENSE)
		return fail(ld, "graph: default connectivity must be grouped or nested");
	if (parse_input(ld, m) != 0 || parse_labels_and_accuracy(ld, m) != 0)
		return -1;

	if (!json_object_object_get_ex(ld->graph, "layers", &layers) || !json_object_is_type(layers, json_type_array))
		return fail(ld, "graph: missing array 'layers'");
	n = json_object_array_length(layers);
	if (n == 0 || n > MAX_LAYERS)
		return fail(ld, "graph: %zu layers (expected 1 to %u)", n, MAX_LAYERS);
	/* Find the first weighted layer and the classifier: their connectivity
	 * is fixed (dense), which every other layer's validation depends on. */
	for (size_t i = 0; i < n; i++) {
		struct json_object *t;
		enum dnn_layer_type type;
		if (!json_object_object_get_ex(json_object_array_get_idx(layers, i), "type", &t) ||
		    !json_object_is_type(t, json_type_string))
			return fail(ld, "graph: layers[%zu] has no string key 'type'", i);
		if (parse_layer_type(json_object_get_string(t), &type) != 0)
			return fail(ld, "graph: layers[%zu] has unknown type '%s' (conv2d, relu, maxpool, avgpool, flatten, "
			            "linear, softmax)", i, json_object_get_string(t));
		if (type == DNN_CONV2D || type == DNN_LINEAR) {
			if (first_w == SIZE_MAX)
				first_w = i;
			last_w = i;
		}
	}
	if (first_w == SIZE_MAX)
		return fail(ld, "graph: no conv2d or linear layer");
	if (m->groups > 1 && first_w == last_w)
		return fail(ld, "graph: G=%u needs at least two weighted layers (the first and the classifier are "
		            "dense)", m->groups);

	m->layers = calloc(n, sizeof(*m->layers));
	if (m->layers == NULL)
		return fail(ld, "out of memory");
	m->n_layers = n;
	c = m->in_c;
	h = m->in_h;
	w = m->in_w;
	m->max_act = (size_t)c * h * w;
	for (size_t i = 0; i < n; i++) {
		struct dnn_layer *l = &m->layers[i];
		l->in_c = c;
		l->in_h = h;
		l->in_w = w;
		if (parse_layer(ld, m, json_object_array_get_idx(layers, i), i, i == first_w, i == last_w, grouped,
		                def_conn, l) != 0)
			return -1;
		grouped = l->out_grouped;
		c = l->out_c;
		h = l->out_h;
		w = l->out_w;
		if ((size_t)c * h * w > m->max_act)
			m->max_act = (size_t)c * h * w;
		if (l->type == DNN_CONV2D) {
			size_t col = (size_t)l->in_c * l->kh * l->kw * l->out_h * l->out_w;
			if (col > MAX_ACTIVATION)
				return fail(ld, "layer %zu '%s': im2col matrix of %zu values is absurd", i, l->name, col);
			if (col > m->max_col)
				m->max_col = col;
		}
		if ((l->type == DNN_MAXPOOL || l->type == DNN_AVGPOOL) && l->in_w > m->max_w)
			m->max_w = l->in_w;
		if (l->type == DNN_SOFTMAX && i + 1 != n)
			return fail(ld, "layer %zu '%s': softmax must be the last layer", i, l->name);
	}
	if (grouped || h != 1 || w != 1 || c != m->classes)
		return fail(ld, "graph: the network ends in %ux%ux%u values but there are %u labels", c, h, w, m->classes);
	return 0;
}

static void
loader_finish(struct loader *ld)
{
	free(ld->tensors);
	json_object_put(ld->graph);
	json_object_put(ld->header);
}

/* The whole file into memory of our own. Not mmap: a model file truncated
 * or rewritten while it is served (a plain cp of a new model over it) would
 * turn the next read of a weight into SIGBUS and kill the daemon. Aligned
 * to a page, as a mapping would be, so the tensors keep the file's own
 * alignment. */
static int
read_whole(int fd, const char *path, struct dnn_model *m, char **cause)
{
	void *buf = NULL;
	size_t got = 0;

	if (posix_memalign(&buf, 4096, m->map_size) != 0)
		return set_cause(cause, "%s: out of memory for %zu bytes", path, m->map_size);
	while (got < m->map_size) {
		ssize_t n = read(fd, (char *)buf + got, m->map_size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			free(buf);
			return set_cause(cause, "%s: %s after %zu of %zu bytes", path,
			                 n < 0 ? strerror(errno) : "the file got shorter while it was read", got,
			                 m->map_size);
		}
		got += (size_t)n;
	}
	m->map = buf;
	return 0;
}

struct dnn_model *
dnn_model_load(const char *path, char **cause)
{
	struct loader ld = { .path = path, .cause = cause };
	struct dnn_model *m;
	struct stat st;
	int fd;

	if (cause != NULL)
		*cause = NULL;
	if ((m = calloc(1, sizeof(*m))) == NULL || (m->path = strdup(path)) == NULL) {
		free(m);
		set_cause(cause, "%s: out of memory", path);
		return NULL;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0) {
		set_cause(cause, "%s: cannot open: %s", path, strerror(errno));
		goto error;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		set_cause(cause, "%s: not a regular file", path);
		close(fd);
		goto error;
	}
	m->map_size = (size_t)st.st_size;
	if (m->map_size > 0 && read_whole(fd, path, m, cause) != 0) {
		close(fd);
		goto error;
	}
	close(fd);
	if (parse_container(&ld, m->map, m->map_size) != 0 || parse_metadata(&ld) != 0 || parse_graph(&ld, m) != 0)
		goto error;
	if (dnn_plans_build(m) != 0) {
		set_cause(cause, "%s: out of memory for execution plans", path);
		goto error;
	}
	loader_finish(&ld);
	return m;
error:
	loader_finish(&ld);
	dnn_model_free(m);
	return NULL;
}

void
dnn_model_free(struct dnn_model *m)
{
	if (m == NULL)
		return;
	free(m->map);
	dnn_plans_free(m);
	for (size_t i = 0; i < m->n_layers; i++)
		free(m->layers[i].name);
	free(m->layers);
	if (m->labels != NULL)
		for (unsigned i = 0; i < m->classes; i++)
			free(m->labels[i]);
	free(m->labels);
	free(m->mean);
	free(m->std);
	free(m->name);
	free(m->path);
	free(m);
}
