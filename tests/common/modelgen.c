/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "tests/common/modelgen.h"

float
mg_uniform(uint32_t *s)
{
	/* xorshift32 */
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return (float)((double)*s / 2147483648.0 - 1.0);
}

int
mg_write_raw(const char *path, const char *header, const void *data, size_t len)
{
	size_t hlen = strlen(header), padded = (hlen + 7) / 8 * 8;
	unsigned char lenbuf[8];
	FILE *f = fopen(path, "wb");

	if (f == NULL)
		return -1;
	for (int i = 0; i < 8; i++)
		lenbuf[i] = (unsigned char)((uint64_t)padded >> (8 * i));
	fwrite(lenbuf, 1, 8, f);
	fwrite(header, 1, hlen, f);
	for (size_t i = hlen; i < padded; i++)
		fputc(' ', f);
	if (len > 0)
		fwrite(data, 1, len, f);
	return fclose(f) == 0 ? 0 : -1;
}

struct blob {
	float *data;
	size_t n, cap;
};

static size_t
blob_add(struct blob *b, size_t count)
{
	size_t at = b->n;

	if (b->n + count > b->cap) {
		b->cap = (b->n + count) * 2;
		b->data = realloc(b->data, b->cap * sizeof(float));
	}
	b->n += count;
	return at;
}

static void
add_tensor(struct json_object *hdr, const char *name, struct blob *b, size_t at, const size_t *shape, int ndim)
{
	struct json_object *t = json_object_new_object(), *sh = json_object_new_array(), *off = json_object_new_array();
	size_t count = 1;

	for (int i = 0; i < ndim; i++) {
		json_object_array_add(sh, json_object_new_int64((int64_t)shape[i]));
		count *= shape[i];
	}
	json_object_array_add(off, json_object_new_int64((int64_t)(at * sizeof(float))));
	json_object_array_add(off, json_object_new_int64((int64_t)((at + count) * sizeof(float))));
	json_object_object_add(t, "dtype", json_object_new_string("F32"));
	json_object_object_add(t, "shape", sh);
	json_object_object_add(t, "data_offsets", off);
	json_object_object_add(hdr, name, t);
	(void)b;
}

int
mg_write(const struct mg_spec *spec, const char *path, unsigned keep)
{
	unsigned G = spec->groups, Gout = keep ? keep : G;
	unsigned c = spec->in_c, h = spec->in_h, w = spec->in_w;
	size_t first = SIZE_MAX, last = 0;
	bool grouped = false;
	struct json_object *hdr = json_object_new_object(), *graph = json_object_new_object();
	struct json_object *layers = json_object_new_array(), *labels = json_object_new_array();
	struct json_object *meta = json_object_new_object(), *input = json_object_new_object(), *shape;
	struct blob b = { 0 };
	int ret;

	for (size_t i = 0; i < spec->n_layers; i++) {
		if (spec->layers[i].type == MG_CONV || spec->layers[i].type == MG_LINEAR) {
			if (first == SIZE_MAX)
				first = i;
			last = i;
		}
	}
	for (size_t i = 0; i < spec->n_layers; i++) {
		const struct mg_layer *ly = &spec->layers[i];
		struct json_object *lo = json_object_new_object();
		char name[32];
		static const char *const tn[] = { "conv2d", "relu", "maxpool", "avgpool", "flatten", "linear", "softmax" };

		snprintf(name, sizeof(name), "l%zu", i);
		json_object_object_add(lo, "type", json_object_new_string(tn[ly->type]));
		json_object_object_add(lo, "name", json_object_new_string(name));
		if (ly->type == MG_CONV || ly->type == MG_LINEAR) {
			bool is_conv = ly->type == MG_CONV;
			unsigned k = is_conv ? ly->kernel : 1;
			bool in_g = i != first, out_g = i != last, nested = in_g && out_g && ly->nested;
			unsigned out = ly->out, in = is_conv ? c : c * h * w;
			/* Full-model geometry, then the rows/columns that the kept
			 * groups own. */
			unsigned in_cols_full = (in_g && out_g && !nested) ? in / G : in;
			unsigned rows = out_g ? out / G * Gout : out;
			unsigned in_cols = in_cols_full;
			char wname[48], bname[48];
			uint32_t seed = spec->seed * 7919u + (uint32_t)i * 104729u + 1u;
			size_t wshape[4], at;
			float scale = sqrtf(6.0f / (float)(in_cols_full * k * k));

			if (nested || (!out_g && in_g))
				in_cols = in / G * Gout * (is_conv ? 1 : 1); /* first kept groups only */
			if (is_conv) {
				json_object_object_add(lo, "out_channels", json_object_new_int((int)rows));
				json_object_object_add(lo, "kernel", json_object_new_int((int)k));
				json_object_object_add(lo, "stride", json_object_new_int((int)(ly->stride ? ly->stride : 1)));
				json_object_object_add(lo, "padding", json_object_new_int((int)ly->padding));
			} else {
				json_object_object_add(lo, "out_features", json_object_new_int((int)rows));
			}
			if (in_g && out_g)
				json_object_object_add(lo, "connectivity", json_object_new_string(nested ? "nested" : "grouped"));
			snprintf(wname, sizeof(wname), "%s.weight", name);
			snprintf(bname, sizeof(bname), "%s.bias", name);
			wshape[0] = rows;
			wshape[1] = in_cols;
			wshape[2] = wshape[3] = k;
			at = blob_add(&b, (size_t)rows * in_cols * k * k);
			/* Generate the full matrix row by row and keep the slice, so
			 * the sub-model holds exactly the same numbers. */
			for (unsigned o = 0; o < out; o++) {
				for (unsigned col = 0; col < in_cols_full; col++) {
					for (unsigned kk = 0; kk < k * k; kk++) {
						float v = mg_uniform(&seed) * scale;
						unsigned og = out_g ? o / (out / G) : 0, ig = col / (in / G ? in / G : 1);
						/* Nested: blocks above the diagonal are never
						 * read; make them loud so a bug shows. */
						if (nested && ig > og)
							v = 1e6f;
						if (o < rows && col < in_cols)
							b.data[at + ((size_t)o * in_cols + col) * k * k + kk] = v;
					}
				}
			}
			add_tensor(hdr, wname, &b, at, wshape, is_conv ? 4 : 2);
			if (!ly->no_bias) {
				size_t bshape[1] = { rows };
				at = blob_add(&b, rows);
				for (unsigned o = 0; o < out; o++) {
					float v = 0.1f * mg_uniform(&seed);
					if (o < rows)
						b.data[at + o] = v;
				}
				add_tensor(hdr, bname, &b, at, bshape, 1);
			}
			if (is_conv) {
				unsigned s = ly->stride ? ly->stride : 1;
				h = (h + 2 * ly->padding - k) / s + 1;
				w = (w + 2 * ly->padding - k) / s + 1;
				c = out;
			} else {
				c = out;
				h = w = 1;
			}
			grouped = out_g;
		} else if (ly->type == MG_MAXPOOL || ly->type == MG_AVGPOOL) {
			unsigned s = ly->stride ? ly->stride : ly->kernel;
			json_object_object_add(lo, "kernel", json_object_new_int((int)ly->kernel));
			json_object_object_add(lo, "stride", json_object_new_int((int)s));
			h = (h - ly->kernel) / s + 1;
			w = (w - ly->kernel) / s + 1;
		} else if (ly->type == MG_FLATTEN) {
			c = c * h * w;
			h = w = 1;
		}
		json_object_array_add(layers, lo);
	}
	(void)grouped;
	shape = json_object_new_array();
	json_object_array_add(shape, json_object_new_int((int)spec->in_c));
	json_object_array_add(shape, json_object_new_int((int)spec->in_h));
	json_object_array_add(shape, json_object_new_int((int)spec->in_w));
	json_object_object_add(input, "shape", shape);
	json_object_object_add(input, "mean", json_object_new_array());
	json_object_array_add(json_object_object_get(input, "mean"), json_object_new_double(0.25));
	json_object_object_add(input, "std", json_object_new_array());
	json_object_array_add(json_object_object_get(input, "std"), json_object_new_double(0.5));
	for (unsigned i = 0; i < spec->classes; i++) {
		char l[80];
		snprintf(l, sizeof(l), "%s%u", spec->label_prefix ? spec->label_prefix : "class", i);
		json_object_array_add(labels, json_object_new_string(l));
	}
	json_object_object_add(graph, "name", json_object_new_string(spec->name));
	json_object_object_add(graph, "groups", json_object_new_int((int)Gout));
	json_object_object_add(graph, "input", input);
	json_object_object_add(graph, "labels", labels);
	json_object_object_add(graph, "layers", layers);
	json_object_object_add(meta, "format", json_object_new_string("gearbox-dnn"));
	json_object_object_add(meta, "format_version", json_object_new_string("1"));
	json_object_object_add(meta, "graph", json_object_new_string(json_object_to_json_string_ext(graph, JSON_C_TO_STRING_PLAIN)));
	json_object_object_add(hdr, "__metadata__", meta);
	ret = mg_write_raw(path, json_object_to_json_string_ext(hdr, JSON_C_TO_STRING_PLAIN), b.data, b.n * sizeof(float));
	json_object_put(hdr);
	json_object_put(graph);
	free(b.data);
	return ret;
}

/* ------------------------------------------------------------------------ */

static const struct mg_layer tiny_layers[] = {
	{ MG_CONV, 8, 3, 1, 1, false, false },  /* dense in, 8x8 */
	{ MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_CONV, 12, 3, 1, 1, true, false },  /* nested */
	{ MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_MAXPOOL, 0, 2, 2, 0, false, false }, /* 4x4 */
	{ MG_CONV, 8, 1, 1, 0, false, true },   /* grouped pointwise, no bias */
	{ MG_AVGPOOL, 0, 2, 1, 0, false, false }, /* 3x3 */
	{ MG_CONV, 16, 3, 2, 1, false, false }, /* grouped, strided: 2x2 */
	{ MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_FLATTEN, 0, 0, 0, 0, false, false }, /* 64 */
	{ MG_LINEAR, 20, 0, 0, 0, true, false },  /* nested fc */
	{ MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_LINEAR, 12, 0, 0, 0, false, false }, /* grouped fc */
	{ MG_LINEAR, 5, 0, 0, 0, false, false },  /* classifier */
	{ MG_SOFTMAX, 0, 0, 0, 0, false, false },
};

static const struct mg_layer alexnet_fmnist_layers[] = {
	{ MG_CONV, 64, 3, 1, 1, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_MAXPOOL, 0, 2, 2, 0, false, false },
	{ MG_CONV, 128, 3, 1, 1, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_MAXPOOL, 0, 2, 2, 0, false, false },
	{ MG_CONV, 256, 3, 1, 1, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_CONV, 256, 3, 1, 1, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_CONV, 128, 3, 1, 1, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_MAXPOOL, 0, 2, 2, 0, false, false },
	{ MG_FLATTEN, 0, 0, 0, 0, false, false },
	{ MG_LINEAR, 512, 0, 0, 0, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_LINEAR, 512, 0, 0, 0, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_LINEAR, 10, 0, 0, 0, false, false },
};

static const struct mg_layer alexnet_cifar_layers[] = {
	{ MG_CONV, 64, 5, 1, 2, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_MAXPOOL, 0, 2, 2, 0, false, false },
	{ MG_CONV, 192, 5, 1, 2, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_MAXPOOL, 0, 2, 2, 0, false, false },
	{ MG_CONV, 384, 3, 1, 1, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_CONV, 256, 3, 1, 1, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_CONV, 256, 3, 1, 1, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_MAXPOOL, 0, 2, 2, 0, false, false },
	{ MG_FLATTEN, 0, 0, 0, 0, false, false },
	{ MG_LINEAR, 1024, 0, 0, 0, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_LINEAR, 1024, 0, 0, 0, false, false }, { MG_RELU, 0, 0, 0, 0, false, false },
	{ MG_LINEAR, 10, 0, 0, 0, false, false },
};

#define N(a) (sizeof(a) / sizeof((a)[0]))
static const struct mg_spec archs[] = {
	{ "tiny", 4, 2, 8, 8, 5, tiny_layers, N(tiny_layers), 1, NULL },
	{ "alexnet-fmnist", 4, 1, 28, 28, 10, alexnet_fmnist_layers, N(alexnet_fmnist_layers), 1, NULL },
	{ "alexnet-cifar", 4, 3, 32, 32, 10, alexnet_cifar_layers, N(alexnet_cifar_layers), 1, NULL },
};

const struct mg_spec *
mg_arch(const char *name)
{
	for (size_t i = 0; i < N(archs); i++)
		if (strcmp(archs[i].name, name) == 0)
			return &archs[i];
	return NULL;
}
