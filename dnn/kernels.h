/* SPDX-License-Identifier: MIT */
/* Private to dnn/ and its tests: the CPU kernels. Names encode
 * type_op_variant; DNN_KERNEL_LIST drives their declarations, the dispatch
 * table in exec.c and the kernel tests (each variant against the reference of
 * its op). */
#ifndef GEARBOX_DNN_KERNELS_H
#define GEARBOX_DNN_KERNELS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnn/internal.h"

/* One layer at one active-group count. */
struct dnn_op {
	const struct dnn_layer *layer;
	const struct dnn_layer_plan *plan; /* the layer at this g */
	unsigned g, G;
	const float *in;
	float *out;       /* may equal in for relu/softmax */
	float *col;       /* conv: im2col scratch of layer in_c*kh*kw*out_h*out_w floats */
	float *pad;       /* direct conv: parts * dnn_direct_pad_floats(layer) floats for the
	                   * padded input of each share, borders zero (the kernel keeps them so) */
	float *scratch;   /* pooling: parts * layer->in_w floats of row buffers */
	bool relu;        /* conv: apply ReLU in the epilogue */
	enum dnn_layout layout; /* pooling: the layout of in and out (layout.c); NCHW for the rest */
	float q_scale;    /* int8: the input's scale and zero point (per tensor) */
	int q_zp;
	size_t n;         /* relu/softmax: number of elements */
};

/* Each kernel does its share `part` of `parts` (0 <= part < parts); shares are
 * disjoint, so parts may run concurrently. (0, 1) does the whole op. */
typedef void dnn_kernel_fn(const struct dnn_op *op, unsigned part, unsigned parts);

/* The instruction sets kernels are written for. A kernel of DNN_ISA_BASE runs
 * on every CPU of its architecture (GCC vector extensions lower to SSE2 or
 * NEON, or plain scalar code); the others only where dnn_isa_runs() says so
 * (cpuid on x86, getauxval(AT_HWCAP) on Arm). */
enum dnn_isa {
	DNN_ISA_BASE,
	DNN_ISA_AVX2,   /* AVX2 + FMA */
	DNN_ISA_AVX512, /* AVX-512 F, DQ, VL */
	DNN_ISA_NEON,   /* Advanced SIMD: always on AArch64, HWCAP_NEON on 32-bit Arm */
};

/* X(name, op type, reference kernel of that op, instruction set it needs).
 * Names are type_op_variant[_isa]. f32_conv2d_direct runs the register tiles
 * of the best instruction set this CPU runs (or the one dnn_direct_use_isa
 * chose); the _isa variants always run theirs. */
#define DNN_KERNEL_LIST(X)                                                         \
	X(f32_conv2d_ref, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_BASE)               \
	X(f32_conv2d_gemm, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_BASE)              \
	X(f32_conv2d_gemm_fused, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_BASE)        \
	X(f32_conv2d_direct, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_BASE)            \
	X(f32_conv2d_direct_generic, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_BASE)    \
	X(f32_conv2d_wino2, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_BASE)             \
	X(f32_conv2d_wino4, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_BASE)             \
	X(q8_conv2d, DNN_CONV2D, q8_conv2d_ref, DNN_ISA_BASE)                     \
	X(f32_maxpool_ref, DNN_MAXPOOL, f32_maxpool_ref, DNN_ISA_BASE)            \
	X(f32_maxpool_vec, DNN_MAXPOOL, f32_maxpool_ref, DNN_ISA_BASE)            \
	X(f32_avgpool_ref, DNN_AVGPOOL, f32_avgpool_ref, DNN_ISA_BASE)            \
	X(f32_avgpool_vec, DNN_AVGPOOL, f32_avgpool_ref, DNN_ISA_BASE)            \
	X(f32_relu_ref, DNN_RELU, f32_relu_ref, DNN_ISA_BASE)                     \
	X(f32_relu_vec, DNN_RELU, f32_relu_ref, DNN_ISA_BASE)                     \
	X(f32_softmax_ref, DNN_SOFTMAX, f32_softmax_ref, DNN_ISA_BASE)            \
	DNN_KERNEL_LIST_X86(X)                                                     \
	DNN_KERNEL_LIST_NEON(X)

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define DNN_HAVE_X86_KERNELS 1
#define DNN_KERNEL_LIST_X86(X)                                                     \
	X(f32_conv2d_direct_avx2, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_AVX2)       \
	X(f32_conv2d_direct_avx512, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_AVX512)
#else
#define DNN_KERNEL_LIST_X86(X)
#endif

/* dnn/kernels_neon.c: arm_neon.h intrinsics, built where configure found NEON. */
#ifdef HAVE_NEON
#define DNN_KERNEL_LIST_NEON(X)                                                    \
	X(f32_conv2d_direct_neon, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_NEON)       \
	X(f32_conv2d_gemm_fused_neon, DNN_CONV2D, f32_conv2d_ref, DNN_ISA_NEON)   \
	X(f32_maxpool_neon, DNN_MAXPOOL, f32_maxpool_ref, DNN_ISA_NEON)           \
	X(f32_avgpool_neon, DNN_AVGPOOL, f32_avgpool_ref, DNN_ISA_NEON)           \
	X(f32_relu_neon, DNN_RELU, f32_relu_ref, DNN_ISA_NEON)
#else
#define DNN_KERNEL_LIST_NEON(X)
#endif

#define DNN_DECLARE_KERNEL(name, type, ref, isa) dnn_kernel_fn dnn_##name;
DNN_KERNEL_LIST(DNN_DECLARE_KERNEL)
#undef DNN_DECLARE_KERNEL

/* The quantised reference (kernels_ref.c) that the int8 kernels are tested
 * against, and the quantisation rules both use (kernels_int8.c). */
dnn_kernel_fn dnn_q8_conv2d_ref;
float dnn_q8_weight_scale(const float *w, size_t n);
int8_t dnn_q8_weight(float w, float scale);
/* u = clamp(round(x / scale) + zp, 0, 127), ties away from zero; inline
 * (it runs once per input value of every int8 layer), NaN to 0. */
static inline uint8_t
dnn_q8_activation(float x, float inv_scale, int zp)
{
	float v = x * inv_scale + (float)zp;

	if (!(v >= 0.0f))
		v = 0.0f;
	if (v > 127.0f)
		v = 127.0f;
	return (uint8_t)(int)(v + 0.5f);
}

/* Per-layer plans (lplan.c), for exec.c: make the variants' weights; the
 * scratch they need with `threads` shares; the kernel of layer i at g (NULL:
 * the family's), with its int8 input scale and zero point. */
int dnn_lplan_prepare(const struct dnn_lplan *p, const struct dnn_model *m, char **cause);
size_t dnn_lplan_scratch_floats(const struct dnn_lplan *p, const struct dnn_model *m, unsigned threads);
dnn_kernel_fn *dnn_lplan_kernel(const struct dnn_lplan *p, unsigned g, size_t i, float *scale, int *zp);
/* Calibration's view of a run: fn(arg, layer, input, values) before every
 * weighted layer. */
void dnn_exec_observe(struct dnn_exec *e, void (*fn)(void *arg, size_t layer, const float *in, size_t n), void *arg);

/* Layouts (layout.c). A tensor of C channels (the layer's full width) by
 * H x W in a layout: channel c at position p is at base(c) + p * step. */
struct dnn_tensor_view {
	enum dnn_layout layout;
	unsigned C, B;
	size_t HW, step;
};
struct dnn_tensor_view dnn_view(enum dnn_layout layout, unsigned C, unsigned H, unsigned W, unsigned B);
static inline size_t
dnn_view_base(const struct dnn_tensor_view *v, unsigned c)
{
	switch (v->layout) {
	case DNN_LAYOUT_NHWC: return c;
	case DNN_LAYOUT_BLOCKED: return (size_t)(c / v->B) * v->HW * v->B + c % v->B;
	default: return (size_t)c * v->HW;
	}
}
/* Floats a C x H x W tensor takes in a layout (blocked: whole blocks). */
size_t dnn_layout_floats(enum dnn_layout layout, unsigned C, unsigned H, unsigned W, unsigned B);
/* Channels [0, active) from one layout to another, share part of parts. */
void dnn_layout_convert(const float *src, enum dnn_layout from, float *dst, enum dnn_layout to, unsigned C,
                        unsigned active, unsigned H, unsigned W, unsigned B, unsigned part, unsigned parts);
/* Pooling in op->layout (NCHW: the reference). */
dnn_kernel_fn dnn_f32_pool_layout;
/* The direct convolution with input and output in NHWC / blocked layout
 * (kernels_direct.c), on the tiles of the chosen instruction set (NEON's
 * through the generic vector build), blocks of dnn_layout_block() channels.
 * Both read op->pad past the NCHW kernel's part of it. */
dnn_kernel_fn dnn_f32_conv2d_direct_nhwc, dnn_f32_conv2d_direct_blocked;
/* Whether the direct convolution runs layer l in `layout` with G groups. */
bool dnn_direct_layout_eligible(const struct dnn_layer *l, unsigned G, enum dnn_layout layout);

/* Whether this CPU runs kernels of instruction set `isa`, and its name. */
bool dnn_isa_runs(enum dnn_isa isa);
const char *dnn_isa_name(enum dnn_isa isa);

/* The "fast" family's kernel for an op, for the instruction set the direct
 * convolution chose (NEON pooling, ReLU and epilogues go with NEON tiles). */
dnn_kernel_fn *dnn_fast_kernel(enum dnn_layer_type type);

/* The bias (+ ReLU) epilogue over out[rows row0..row1, columns n0..n1) of a
 * row stride N, and the im2col + BLAS convolution that ends with it
 * (kernels_fast.c; `fused` adds the ReLU when op->relu asks). */
typedef void dnn_epilogue_fn(const struct dnn_layer *l, float *out, size_t N, unsigned row0, unsigned row1,
                             size_t n0, size_t n1, bool relu);
void dnn_conv_gemm(const struct dnn_op *op, unsigned part, unsigned parts, bool fused, dnn_epilogue_fn *epilogue);

/* Pooling by rows (kernels_fast.c drives, each instruction set brings its
 * row operations): 2x2 stride-2 max straight from two input rows, else the
 * window's rows reduced into a row buffer, then its columns with the stride. */
struct dnn_pool_rows {
	void (*max_2x2s2)(const float *r0, const float *r1, float *out, unsigned out_w);
	void (*reduce_rows)(const float *in, unsigned W, unsigned rows, float *acc, bool max);
	void (*reduce_cols)(const struct dnn_layer *l, const float *acc, float *out, bool max);
};
void dnn_pool_by_rows(const struct dnn_op *op, unsigned part, unsigned parts, bool max,
                      const struct dnn_pool_rows *rows);

/* Linear layers run through the conv2d kernels (1x1 over a 1x1 map). */

/* [first, last) of n items for share `part` of `parts`, rounded to `align`. */
static inline void
dnn_share(size_t n, unsigned part, unsigned parts, size_t align, size_t *first, size_t *last)
{
	size_t chunk = (n + parts - 1) / parts;

	chunk = (chunk + align - 1) / align * align;
	*first = chunk * part < n ? chunk * part : n;
	*last = *first + chunk < n ? *first + chunk : n;
}

#endif
