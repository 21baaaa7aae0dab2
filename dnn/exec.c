/* SPDX-License-Identifier: MIT */
/* Execution contexts: buffers sized once for the largest plan, then any g runs
 * by walking its plan (plan.c). Nothing is allocated and no weight is copied
 * per inference. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "common/cause.h"
#include "common/clock.h"
#include "dnn/kernels.h"

struct dnn_exec {
	const struct dnn_model *model;
	struct dnn_pool *pool;
	enum dnn_kernels family;
	float *act[2];
	size_t act_floats;
	float *col;
	size_t col_floats;
	float *pad;
	float *scratch;
	const struct dnn_lplan *lplan; /* per-layer plan, or NULL */
	void (*observe)(void *arg, size_t layer, const float *in, size_t n);
	void *observe_arg;
	uint64_t *profile_ns; /* per layer, added to by every run, or NULL */
};

/* The kernel each family uses for each op (flatten needs none); the fast
 * family's depend on the instruction set (dnn_fast_kernel). */
static dnn_kernel_fn *const family_kernels[2][DNN_SOFTMAX + 1] = {
	[DNN_KERNELS_REF] = {
		[DNN_CONV2D] = dnn_f32_conv2d_ref, [DNN_LINEAR] = dnn_f32_conv2d_ref,
		[DNN_MAXPOOL] = dnn_f32_maxpool_ref, [DNN_AVGPOOL] = dnn_f32_avgpool_ref,
		[DNN_RELU] = dnn_f32_relu_ref, [DNN_SOFTMAX] = dnn_f32_softmax_ref,
	},
	[DNN_KERNELS_BLAS] = {
		[DNN_CONV2D] = dnn_f32_conv2d_gemm, [DNN_LINEAR] = dnn_f32_conv2d_gemm,
		[DNN_MAXPOOL] = dnn_f32_maxpool_ref, [DNN_AVGPOOL] = dnn_f32_avgpool_ref,
		[DNN_RELU] = dnn_f32_relu_ref, [DNN_SOFTMAX] = dnn_f32_softmax_ref,
	},
};

static dnn_kernel_fn *
kernel_of(enum dnn_kernels family, enum dnn_layer_type type)
{
	return family == DNN_KERNELS_FAST ? dnn_fast_kernel(type) : family_kernels[family][type];
}

static const char *const family_names[] = { "ref", "blas", "fast" };

const char *
dnn_kernels_name(enum dnn_kernels k)
{
	return (unsigned)k < 3 ? family_names[k] : "?";
}

int
dnn_kernels_parse(const char *name, enum dnn_kernels *k)
{
	for (unsigned i = 0; i < 3; i++) {
		if (strcmp(name, family_names[i]) == 0) {
			*k = (enum dnn_kernels)i;
			return 0;
		}
	}
	return -EINVAL;
}

/* Our pool provides the parallelism (bound to the placement's cpuset), so
 * OpenBLAS must not start threads of its own. */
static void
blas_single_threaded(void)
{
#ifdef HAVE_OPENBLAS_SET_NUM_THREADS
	extern void openblas_set_num_threads(int);
	openblas_set_num_threads(1);
#endif
}

struct dnn_exec *
dnn_exec_create(const struct dnn_model *model, struct dnn_pool *pool, enum dnn_kernels family, char **cause)
{
	static pthread_once_t blas_once = PTHREAD_ONCE_INIT;
	struct dnn_exec *e;
	unsigned threads = dnn_pool_threads(pool);

	if ((unsigned)family > DNN_KERNELS_FAST) {
		set_cause(cause, "unknown kernel family %d", (int)family);
		return NULL;
	}
	pthread_once(&blas_once, blas_single_threaded);
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		set_cause(cause, "out of memory");
		return NULL;
	}
	e->model = model;
	e->pool = pool;
	e->family = family;
	/* room for any layer's input or output in blocks of up to 16 channels */
	e->act_floats = model->max_act;
	for (size_t i = 0; i < model->n_layers; i++) {
		const struct dnn_layer *l = &model->layers[i];
		size_t a = dnn_layout_floats(DNN_LAYOUT_BLOCKED, l->in_c, l->in_h, l->in_w, 16);
		size_t b = dnn_layout_floats(DNN_LAYOUT_BLOCKED, l->out_c, l->out_h, l->out_w, 16);
		e->act_floats = a > e->act_floats ? a : e->act_floats;
		e->act_floats = b > e->act_floats ? b : e->act_floats;
	}
	e->act[0] = malloc(e->act_floats * sizeof(float));
	e->act[1] = malloc(e->act_floats * sizeof(float));
	e->col_floats = model->max_col + 1;
	e->col = malloc(e->col_floats * sizeof(float));
	e->pad = calloc((size_t)threads * model->pad_floats + 1, sizeof(float)); /* borders stay zero */
	e->scratch = malloc(((size_t)threads * model->max_w + 1) * sizeof(float));
	if (e->act[0] == NULL || e->act[1] == NULL || e->col == NULL || e->pad == NULL || e->scratch == NULL) {
		set_cause(cause, "out of memory for %zu-value activation buffers", model->max_act);
		dnn_exec_free(e);
		return NULL;
	}
	return e;
}

void
dnn_exec_free(struct dnn_exec *e)
{
	if (e == NULL)
		return;
	free(e->act[0]);
	free(e->act[1]);
	free(e->col);
	free(e->pad);
	free(e->scratch);
	free(e);
}

int
dnn_exec_set_lplan(struct dnn_exec *e, const struct dnn_lplan *p, char **cause)
{
	size_t need;

	if (p == NULL) {
		e->lplan = NULL;
		return 0;
	}
	if (e->family != DNN_KERNELS_FAST)
		return (set_cause(cause, "a per-layer plan runs on the fast kernels, not %s", dnn_kernels_name(e->family)),
		       -EINVAL);
	if (dnn_lplan_prepare(p, e->model, cause) != 0)
		return -EINVAL;
	need = dnn_lplan_scratch_floats(p, e->model, dnn_pool_threads(e->pool)) + 1;
	if (need > e->col_floats) {
		float *col = realloc(e->col, need * sizeof(float));
		if (col == NULL)
			return (set_cause(cause, "out of memory for the plan's scratch (%zu values)", need), -ENOMEM);
		e->col = col;
		e->col_floats = need;
	}
	e->lplan = p;
	return 0;
}

void
dnn_exec_set_profile(struct dnn_exec *e, uint64_t *ns)
{
	e->profile_ns = ns;
}

void
dnn_exec_observe(struct dnn_exec *e, void (*fn)(void *arg, size_t layer, const float *in, size_t n), void *arg)
{
	e->observe = fn;
	e->observe_arg = arg;
}

struct op_job {
	dnn_kernel_fn *fn;
	const struct dnn_op *op;
};

static void
run_share(void *arg, unsigned index, unsigned count)
{
	const struct op_job *job = arg;

	job->fn(job->op, index, count);
}

/* A layout conversion of a layer's input (the executor's own step). */
struct convert_job {
	const float *src;
	float *dst;
	enum dnn_layout from, to;
	unsigned C, active, H, W, B;
};

static void
convert_share(void *arg, unsigned index, unsigned count)
{
	const struct convert_job *j = arg;

	dnn_layout_convert(j->src, j->from, j->dst, j->to, j->C, j->active, j->H, j->W, j->B, index, count);
}

static void
run_convert(struct dnn_exec *e, struct convert_job *j)
{
	if (e->family == DNN_KERNELS_FAST && dnn_pool_threads(e->pool) > 1)
		dnn_pool_run(e->pool, convert_share, j);
	else
		convert_share(j, 0, 1);
}

/* The layout layer i wants its input in at g: the plan's for a weighted
 * layer, the one it is given for pooling, NCHW for everything else. */
static enum dnn_layout
wanted_layout(const struct dnn_exec *e, unsigned g, size_t i, enum dnn_layout cur)
{
	const struct dnn_layer *l = &e->model->layers[i];

	if (l->type == DNN_MAXPOOL || l->type == DNN_AVGPOOL)
		return cur;
	if (l->weight != NULL && e->lplan != NULL)
		return dnn_lplan_get_layout(e->lplan, g, i);
	return DNN_LAYOUT_NCHW;
}

int
dnn_exec_convert_us(struct dnn_exec *e, unsigned g, size_t layer, enum dnn_layout from, enum dnn_layout to,
                    unsigned runs, double *us)
{
	const struct dnn_model *m = e->model;
	const struct dnn_layer *l;
	double best[64];
	struct convert_job j;

	if (g < 1 || g > m->groups || layer >= m->n_layers || runs == 0 || (unsigned)from >= DNN_LAYOUT_COUNT ||
	    (unsigned)to >= DNN_LAYOUT_COUNT)
		return -EINVAL;
	if (runs > 64)
		runs = 64;
	l = &m->layers[layer];
	j = (struct convert_job){ .src = e->act[0], .dst = e->act[1], .from = from, .to = to, .C = l->in_c,
		                  .active = m->plans[g - 1].layers[layer].in_c, .H = l->in_h, .W = l->in_w,
		                  .B = dnn_layout_block() };
	memset(e->act[0], 0, e->act_floats * sizeof(float));
	dnn_pool_enter(e->pool);
	run_convert(e, &j); /* warm */
	for (unsigned k = 0; k < runs; k++) {
		uint64_t t0 = monotonic_ns();
		run_convert(e, &j);
		best[k] = (double)(monotonic_ns() - t0) / 1e3;
	}
	dnn_pool_leave(e->pool);
	for (unsigned a = 1; a < runs; a++) /* insertion sort: a handful */
		for (unsigned b = a; b > 0 && best[b] < best[b - 1]; b--) {
			double t = best[b];
			best[b] = best[b - 1];
			best[b - 1] = t;
		}
	*us = from == to ? 0.0 : best[runs / 2];
	return 0;
}

int
dnn_exec_run(struct dnn_exec *e, unsigned g, const float *input, float *output)
{
	const struct dnn_model *m = e->model;
	const float *src = input;
	float *dst = NULL;
	unsigned next = 0, B = dnn_layout_block();
	enum dnn_layout cur = DNN_LAYOUT_NCHW; /* src's */
	bool threaded = e->family == DNN_KERNELS_FAST && dnn_pool_threads(e->pool) > 1;

	if (g < 1 || g > m->groups)
		return -EINVAL;
	/* Every inference runs on the pool's CPUs, the caller's share included,
	 * also with one thread (a request placed on a LITTLE cluster must not
	 * run wherever the calling thread happens to be). */
	dnn_pool_enter(e->pool);
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct dnn_layer *l = &m->layers[i];
		const struct dnn_layer_plan *lp = &m->plans[g - 1].layers[i];
		struct dnn_op op = { .layer = l, .plan = lp, .g = g, .G = m->groups, .in = src, .col = e->col,
		                     .pad = e->pad + l->pad_offset * dnn_pool_threads(e->pool),
		                     .scratch = e->scratch };
		struct op_job job = { .fn = kernel_of(e->family, l->type), .op = &op };

		enum dnn_layout want = wanted_layout(e, g, i, cur);
		if (want != cur) {
			struct convert_job j = { .src = src, .dst = e->act[next], .from = cur, .to = want, .C = l->in_c,
				                 .active = lp->in_c, .H = l->in_h, .W = l->in_w, .B = B };
			run_convert(e, &j); /* timed by dnn_exec_convert_us, not in the layer's profile */
			src = e->act[next];
			next ^= 1;
			cur = want;
		}
		op.in = src;
		op.layout = cur;
		if (l->type == DNN_FLATTEN)
			continue; /* CHW order already is the flat order */
		if (l->weight != NULL && e->observe != NULL)
			e->observe(e->observe_arg, i, src, (size_t)lp->in_c * l->in_h * l->in_w);
		if (l->weight != NULL && e->lplan != NULL) {
			dnn_kernel_fn *fn = dnn_lplan_kernel(e->lplan, g, i, &op.q_scale, &op.q_zp);
			if (fn != NULL)
				job.fn = fn;
		}
		if ((l->type == DNN_MAXPOOL || l->type == DNN_AVGPOOL) && cur != DNN_LAYOUT_NCHW)
			job.fn = dnn_f32_pool_layout;
		op.n = lp->out_n;
		/* ReLU and softmax work in place, except on the caller's input. */
		if ((l->type == DNN_RELU || l->type == DNN_SOFTMAX) && src != input) {
			dst = (float *)src;
		} else {
			dst = e->act[next];
			next ^= 1;
		}
		op.out = dst;
		if (e->family == DNN_KERNELS_FAST && (l->type == DNN_CONV2D || l->type == DNN_LINEAR) &&
		    i + 1 < m->n_layers && m->layers[i + 1].type == DNN_RELU) {
			op.relu = true;
			i++; /* the ReLU is fused into this layer's epilogue */
		}
		uint64_t t0 = e->profile_ns != NULL ? monotonic_ns() : 0;
		if (threaded)
			dnn_pool_run(e->pool, run_share, &job);
		else
			job.fn(&op, 0, 1);
		if (e->profile_ns != NULL)
			e->profile_ns[op.relu ? i - 1 : i] += monotonic_ns() - t0;
		src = dst;
	}
	if (cur != DNN_LAYOUT_NCHW) { /* a model that ends in a convolution */
		const struct dnn_layer *l = &m->layers[m->n_layers - 1];
		struct convert_job j = { .src = src, .dst = e->act[next], .from = cur, .to = DNN_LAYOUT_NCHW, .C = l->out_c,
			                 .active = m->plans[g - 1].layers[m->n_layers - 1].out_c, .H = l->out_h,
			                 .W = l->out_w, .B = B };
		run_convert(e, &j);
		src = e->act[next];
	}
	memcpy(output, src, m->classes * sizeof(float));
	dnn_pool_leave(e->pool);
	return 0;
}
