/* SPDX-License-Identifier: MIT */
/* Execution plans: for every active-group count g, prepared once at load, the
 * active shapes and blocks of work of each layer and the buffer sizes. Running
 * at g only reads its plan; switching g is choosing another plan. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "dnn/internal.h"

void
dnn_layer_plan_fill(const struct dnn_layer *l, unsigned g, unsigned G, struct dnn_layer_plan *plan,
                    struct dnn_block *blocks)
{
	plan->in_c = dnn_active_in(l, g, G);
	plan->out_c = dnn_active_out(l, g, G);
	plan->out_n = (size_t)plan->out_c * l->out_h * l->out_w;
	plan->nblocks = l->weight != NULL ? dnn_layer_blocks(l, g, G, blocks) : 0;
	plan->blocks = blocks;
}

int
dnn_plans_build(struct dnn_model *m)
{
	/* Panels for the direct convolution: once per layer, shared by every g. */
	for (size_t i = 0; i < m->n_layers; i++) {
		if (dnn_layer_pack(&m->layers[i], m->groups) != 0)
			return -1;
		/* Each direct convolution keeps its own padded input, so the zero
		 * borders are written once per context, not per inference. */
		m->layers[i].pad_offset = m->pad_floats;
		m->pad_floats += (dnn_direct_pad_floats(&m->layers[i]) + 15) / 16 * 16;
	}
	for (unsigned g = 1; g <= m->groups; g++) {
		struct dnn_plan *plan = &m->plans[g - 1];
		size_t nblocks = 0, used = 0;

		for (size_t i = 0; i < m->n_layers; i++)
			nblocks += m->layers[i].weight != NULL ? (m->layers[i].conn == DNN_CONN_GROUPED ||
			                                          m->layers[i].conn == DNN_CONN_NESTED ? g : 1) : 0;
		plan->groups = g;
		plan->layers = calloc(m->n_layers, sizeof(*plan->layers));
		plan->block_store = calloc(nblocks + 1, sizeof(*plan->block_store));
		if (plan->layers == NULL || plan->block_store == NULL)
			return -1;
		plan->act_floats = (size_t)m->in_c * m->in_h * m->in_w;
		for (size_t i = 0; i < m->n_layers; i++) {
			const struct dnn_layer *l = &m->layers[i];
			struct dnn_layer_plan *lp = &plan->layers[i];
			dnn_layer_plan_fill(l, g, m->groups, lp, plan->block_store + used);
			used += lp->nblocks;
			if (lp->out_n > plan->act_floats)
				plan->act_floats = lp->out_n;
			if (l->type == DNN_CONV2D) {
				size_t col = (size_t)lp->in_c * l->kh * l->kw * l->out_h * l->out_w;
				if (col > plan->col_floats)
					plan->col_floats = col;
			}
		}
	}
	return 0;
}

void
dnn_plans_free(struct dnn_model *m)
{
	for (size_t i = 0; i < m->n_layers; i++) {
		dnn_layer_unpack(&m->layers[i]);
		dnn_wino_unprepare(&m->layers[i]);
		dnn_q8_unprepare(&m->layers[i]);
	}
	for (unsigned g = 0; g < DNN_MAX_GROUPS; g++) {
		free(m->plans[g].layers);
		free(m->plans[g].block_store);
	}
}

size_t
dnn_model_buffer_bytes(const struct dnn_model *m, unsigned groups)
{
	const struct dnn_plan *plan;

	if (groups < 1 || groups > m->groups)
		return 0;
	plan = &m->plans[groups - 1];
	/* two ping-pong activation buffers, the im2col scratch and one thread's
	 * padded inputs of the direct convolutions */
	return (2 * plan->act_floats + plan->col_floats + m->pad_floats) * sizeof(float);
}
