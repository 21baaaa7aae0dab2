/* SPDX-License-Identifier: MIT */
/* Facts about a loaded model per active-group count: shapes, parameters,
 * multiply-accumulates. Used by plans, by `gearbox model info` and, through
 * the public header, by policies that predict cost from FLOPs. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "dnn/internal.h"

static const char *const layer_type_names[] = {
	[DNN_CONV2D] = "conv2d", [DNN_RELU] = "relu",       [DNN_MAXPOOL] = "maxpool", [DNN_AVGPOOL] = "avgpool",
	[DNN_FLATTEN] = "flatten", [DNN_LINEAR] = "linear", [DNN_SOFTMAX] = "softmax",
};

const char *
dnn_layer_type_name(enum dnn_layer_type type)
{
	return (unsigned)type < sizeof(layer_type_names) / sizeof(layer_type_names[0]) ? layer_type_names[type] : "?";
}

const char *
dnn_connectivity_name(enum dnn_connectivity conn)
{
	switch (conn) {
	case DNN_CONN_NONE: return "none";
	case DNN_CONN_DENSE: return "dense";
	case DNN_CONN_GROUPED: return "grouped";
	case DNN_CONN_NESTED: return "nested";
	}
	return "?";
}

unsigned
dnn_layer_blocks(const struct dnn_layer *l, unsigned g, unsigned G, struct dnn_block *blocks)
{
	unsigned opg = l->out_c / G, ipg = l->in_c / G;

	switch (l->conn) {
	case DNN_CONN_GROUPED:
	case DNN_CONN_NESTED:
		for (unsigned k = 0; k < g; k++) {
			blocks[k].row0 = k * opg;
			blocks[k].row1 = (k + 1) * opg;
			blocks[k].ch0 = l->conn == DNN_CONN_GROUPED ? k * ipg : 0;
			blocks[k].ch1 = (k + 1) * ipg;
			blocks[k].wch0 = blocks[k].ch0;
		}
		return g;
	default:
		blocks[0].row0 = 0;
		blocks[0].row1 = dnn_active_out(l, g, G);
		blocks[0].ch0 = 0;
		blocks[0].ch1 = dnn_active_in(l, g, G);
		blocks[0].wch0 = 0;
		return 1;
	}
}

const char *dnn_model_name(const struct dnn_model *m) { return m->name; }
const char *dnn_model_path(const struct dnn_model *m) { return m->path; }
unsigned dnn_model_groups(const struct dnn_model *m) { return m->groups; }
unsigned dnn_model_classes(const struct dnn_model *m) { return m->classes; }
size_t dnn_model_layer_count(const struct dnn_model *m) { return m->n_layers; }
uint64_t dnn_model_file_bytes(const struct dnn_model *m) { return m->map_size; }

void
dnn_model_input_shape(const struct dnn_model *m, unsigned *c, unsigned *h, unsigned *w)
{
	*c = m->in_c;
	*h = m->in_h;
	*w = m->in_w;
}

size_t
dnn_model_input_size(const struct dnn_model *m)
{
	return (size_t)m->in_c * m->in_h * m->in_w;
}

size_t
dnn_model_output_size(const struct dnn_model *m)
{
	return m->classes;
}

const char *
dnn_model_label(const struct dnn_model *m, unsigned cls)
{
	return cls < m->classes ? m->labels[cls] : NULL;
}

double
dnn_model_accuracy(const struct dnn_model *m, unsigned groups)
{
	return groups >= 1 && groups <= m->groups ? m->accuracy[groups - 1] : -1.0;
}

int
dnn_model_layer_info(const struct dnn_model *m, size_t index, unsigned g, struct dnn_layer_info *info)
{
	const struct dnn_layer *l;
	const struct dnn_layer_plan *lp;

	if (index >= m->n_layers || g < 1 || g > m->groups)
		return -EINVAL;
	l = &m->layers[index];
	lp = &m->plans[g - 1].layers[index]; /* shapes and blocks prepared at load */
	memset(info, 0, sizeof(*info));
	info->type = l->type;
	info->name = l->name;
	info->connectivity = l->conn;
	info->in_c = lp->in_c;
	info->in_h = l->in_h;
	info->in_w = l->in_w;
	info->out_c = lp->out_c;
	info->out_h = l->out_h;
	info->out_w = l->out_w;
	info->kernel_h = l->kh;
	info->kernel_w = l->kw;
	info->stride_h = l->sh;
	info->stride_w = l->sw;
	info->pad_h = l->ph;
	info->pad_w = l->pw;
	for (unsigned b = 0; b < lp->nblocks; b++) {
		uint64_t rows = lp->blocks[b].row1 - lp->blocks[b].row0;
		uint64_t k = (uint64_t)(lp->blocks[b].ch1 - lp->blocks[b].ch0) * l->kh * l->kw;
		info->params += rows * k;
		info->macs += rows * k * l->out_h * l->out_w;
	}
	if (l->bias != NULL)
		info->params += info->out_c;
	return 0;
}

static uint64_t
sum_layers(const struct dnn_model *m, unsigned g, bool macs)
{
	struct dnn_layer_info info;
	uint64_t total = 0;

	for (size_t i = 0; i < m->n_layers; i++)
		if (dnn_model_layer_info(m, i, g, &info) == 0)
			total += macs ? info.macs : info.params;
	return total;
}

uint64_t dnn_model_params(const struct dnn_model *m, unsigned g) { return sum_layers(m, g, false); }
uint64_t dnn_model_macs(const struct dnn_model *m, unsigned g) { return sum_layers(m, g, true); }
uint64_t dnn_model_weight_bytes(const struct dnn_model *m, unsigned g) { return sum_layers(m, g, false) * sizeof(float); }

void
dnn_model_normalize_u8(const struct dnn_model *m, const uint8_t *pixels, float *input)
{
	size_t plane = (size_t)m->in_h * m->in_w;

	for (unsigned c = 0; c < m->in_c; c++) {
		float scale = 1.0f / (255.0f * m->std[c]), shift = m->mean[c] / m->std[c];
		for (size_t i = 0; i < plane; i++)
			input[c * plane + i] = (float)pixels[c * plane + i] * scale - shift;
	}
}
