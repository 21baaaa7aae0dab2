/* SPDX-License-Identifier: MIT */
/* Private to dnn/: the in-memory model and the per-layer views shared by the
 * loader, the plans and the kernels. Not installed, not for other modules. */
#ifndef GEARBOX_DNN_INTERNAL_H
#define GEARBOX_DNN_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "dnn/dnn.h"

/* One layer at full width. Linear layers are kept as 1x1 convolutions over a
 * 1x1 map so that one set of kernels serves both. */
struct dnn_layer {
	enum dnn_layer_type type;
	enum dnn_connectivity conn;
	char *name;
	unsigned in_c, in_h, in_w;
	unsigned out_c, out_h, out_w;
	unsigned kh, kw, sh, sw, ph, pw;
	bool in_grouped, out_grouped; /* are input/output channels split in G groups */
	const float *weight;          /* row o holds weight_cols floats; NULL without weights */
	const float *bias;            /* out_c floats, or NULL */
	unsigned weight_cols;
	struct dnn_packed *packed;    /* direct-convolution panels (kernels_direct.c), or NULL */
	struct dnn_wino *wino2, *wino4; /* Winograd F(2x2,3x3), F(4x4,3x3) weights (kernels_winograd.c),
	                                 * made when a per-layer plan first asks for them, or NULL */
	struct dnn_q8 *q8;            /* int8 weights (kernels_int8.c), made likewise, or NULL */
	size_t pad_offset;            /* its padded inputs in an execution context, per thread (floats) */
};

/* A layer's view at one g: its active shapes and, for weighted layers, the
 * blocks of work (see struct dnn_block). */
struct dnn_block;
struct dnn_layer_plan {
	unsigned in_c, out_c;        /* active channels */
	size_t out_n;                /* active output values */
	unsigned nblocks;
	const struct dnn_block *blocks;
};

/* The execution plan for one active-group count, prepared at load. */
struct dnn_plan {
	unsigned groups;
	struct dnn_layer_plan *layers; /* one per layer */
	struct dnn_block *block_store;
	size_t act_floats;             /* largest activation at this g */
	size_t col_floats;             /* largest im2col matrix at this g */
};

struct dnn_model {
	char *path;
	char *name;
	void *map;         /* the file, read whole (see read_whole in model.c) */
	size_t map_size;
	/* dnn_model_fingerprint's hash of map, made on the first call (the copy
	 * never changes); both through __atomic (models are shared by threads) */
	uint64_t fingerprint;
	int fingerprint_known;
	unsigned groups;
	unsigned in_c, in_h, in_w;
	unsigned classes;
	float *mean, *std; /* in_c each */
	char **labels;     /* classes strings */
	double accuracy[DNN_MAX_GROUPS];
	size_t n_layers;
	struct dnn_layer *layers;
	struct dnn_plan plans[DNN_MAX_GROUPS]; /* plans[g - 1] */
	size_t max_act;    /* largest activation (floats) of any layer at full width */
	size_t max_col;    /* largest im2col matrix (floats) */
	size_t pad_floats; /* zero-padded inputs of all direct convolutions, one thread (floats) */
	unsigned max_w;    /* widest input row of a pooling layer */
};

/* Channels of a layer's input/output that are live with g of G groups. */
static inline unsigned
dnn_active_in(const struct dnn_layer *l, unsigned g, unsigned G)
{
	return l->in_grouped ? l->in_c / G * g : l->in_c;
}

static inline unsigned
dnn_active_out(const struct dnn_layer *l, unsigned g, unsigned G)
{
	return l->out_grouped ? l->out_c / G * g : l->out_c;
}

/* A rectangular piece of a weighted layer's work at one g: output rows
 * [row0,row1) read input channels [ch0,ch1); the weight column of input
 * channel c is (c - wch0) * kh * kw. */
struct dnn_block {
	unsigned row0, row1, ch0, ch1, wch0;
};

/* Fill blocks (at most DNN_MAX_GROUPS) for layer l at g; returns the count.
 * This is the definition the plans are built from. */
unsigned dnn_layer_blocks(const struct dnn_layer *l, unsigned g, unsigned G, struct dnn_block *blocks);

/* Build (at load) and free the plans of every g; 0 or -1 when out of memory. */
int dnn_plans_build(struct dnn_model *m);
void dnn_plans_free(struct dnn_model *m);
/* Fill one layer's plan at g into `plan`, its blocks into `blocks`. */
void dnn_layer_plan_fill(const struct dnn_layer *l, unsigned g, unsigned G, struct dnn_layer_plan *plan,
                         struct dnn_block *blocks);



/* Direct convolution (kernels_direct.c): the weights of the layers it covers
 * (stride 1, not 1x1) packed once (at load; G fixes the group segments), the padded
 * input it needs per share (its instruction set: dnn_kernels_isa in dnn.h). */
int dnn_layer_pack(struct dnn_layer *l, unsigned G);
void dnn_layer_unpack(struct dnn_layer *l);
size_t dnn_direct_pad_floats(const struct dnn_layer *l);
/* Use instruction set `name` ("avx512", "avx2", "neon", "generic") from now
 * on, for tests; -1 when this build or CPU lacks it. */
int dnn_direct_use_isa(const char *name);

/* Winograd (kernels_winograd.c): 3x3 stride-1 layers; m = 2 or 4. prepare
 * transforms the weights once (0, or -1 when not eligible or out of memory);
 * the scratch a run needs comes from the context's im2col buffer. */
bool dnn_wino_eligible(const struct dnn_layer *l);
int dnn_wino_prepare(struct dnn_layer *l, unsigned G, unsigned m);
void dnn_wino_unprepare(struct dnn_layer *l);
size_t dnn_wino_scratch_floats(const struct dnn_layer *l, unsigned m, unsigned parts);
size_t dnn_wino_weight_bytes(const struct dnn_layer *l, unsigned m);

/* int8 (kernels_int8.c): every convolution and linear layer. prepare
 * quantises and packs the weights once; scratch is per `parts` shares, from
 * the im2col buffer. isa/use_isa as for the direct convolution ("avx512vnni",
 * "avx512", "avx2", "generic"). */
bool dnn_q8_eligible(const struct dnn_layer *l);
int dnn_q8_prepare(struct dnn_layer *l, unsigned G);
void dnn_q8_unprepare(struct dnn_layer *l);
size_t dnn_q8_scratch_floats(const struct dnn_layer *l, unsigned G, unsigned parts);
size_t dnn_q8_weight_bytes(const struct dnn_layer *l);
const char *dnn_q8_isa(void);
int dnn_q8_use_isa(const char *name);

/* Bind the calling thread to the pool's cpuset for the duration of one
 * inference (saving its old binding), and put it back afterwards. */
void dnn_pool_enter(struct dnn_pool *pool);
void dnn_pool_leave(struct dnn_pool *pool);
#endif
