/* SPDX-License-Identifier: MIT */
/* Fast CPU kernels: convolution as im2col + cblas_sgemm whose leading
 * dimensions select the active sub-blocks of the full weight matrix (no copy
 * per g), with the bias and ReLU fused into the epilogue; pooling and ReLU on
 * 4-wide vectors (GCC/Clang vector extensions: the baseline of every
 * architecture, SSE2 or NEON; kernels_neon.c has the intrinsics versions). */
#include "config.h"

#include <math.h>
#include <string.h>

#include <cblas.h>

#include "dnn/kernels.h"

typedef float v4sf __attribute__((vector_size(16)));
typedef int v4si __attribute__((vector_size(16)));

static inline v4sf
load4(const float *p)
{
	v4sf v;
	memcpy(&v, p, sizeof(v));
	return v;
}

static inline void
store4(float *p, v4sf v)
{
	memcpy(p, &v, sizeof(v));
}

static inline v4sf
max4(v4sf a, v4sf b)
{
	v4si take_a = a > b;
	return (v4sf)(((v4si)a & take_a) | ((v4si)b & ~take_a));
}

#if defined(__clang__)
#define EVENS(a, b) __builtin_shufflevector(a, b, 0, 2, 4, 6)
#define ODDS(a, b) __builtin_shufflevector(a, b, 1, 3, 5, 7)
#else
#define EVENS(a, b) __builtin_shuffle(a, b, (v4si){ 0, 2, 4, 6 })
#define ODDS(a, b) __builtin_shuffle(a, b, (v4si){ 1, 3, 5, 7 })
#endif

/* ------------------------------------------------------------------------ */
/* Convolution. */

/* Output rows [oy0, oy1) of the im2col matrix of the first `channels` input
 * channels: matrix row (c, ky, kx), column (oy, ox), row stride N = OH * OW.
 * Each (c, ky, kx, oy) is one contiguous run: zeros where the window hangs
 * over the padding, and a copy (memcpy for stride 1) of the input row. */
static void
im2col(const struct dnn_layer *l, const float *in, unsigned channels, float *col, unsigned oy0, unsigned oy1)
{
	size_t N = (size_t)l->out_h * l->out_w;
	unsigned OW = l->out_w;

	for (unsigned c = 0; c < channels; c++) {
		const float *plane = in + (size_t)c * l->in_h * l->in_w;
		for (unsigned ky = 0; ky < l->kh; ky++) {
			for (unsigned kx = 0; kx < l->kw; kx++) {
				float *row = col + (((size_t)c * l->kh + ky) * l->kw + kx) * N;
				/* Output columns whose input column ix = ox*sw - pw + kx is
				 * inside [0, in_w): ox in [lo, hi). */
				long first_ix = (long)kx - (long)l->pw;
				unsigned lo = first_ix >= 0 ? 0 : (unsigned)((-first_ix + l->sw - 1) / l->sw);
				long span = (long)l->in_w - first_ix; /* ix < in_w */
				unsigned hi = span <= 0 ? 0 : (unsigned)((span + l->sw - 1) / l->sw);
				if (hi > OW)
					hi = OW;
				if (lo > hi)
					lo = hi;
				for (unsigned oy = oy0; oy < oy1; oy++) {
					float *dst = row + (size_t)oy * OW;
					long iy = (long)oy * l->sh - (long)l->ph + ky;
					if (iy < 0 || iy >= (long)l->in_h) {
						for (unsigned ox = 0; ox < OW; ox++)
							dst[ox] = 0.0f;
						continue;
					}
					const float *src = plane + (size_t)iy * l->in_w + first_ix;
					/* Plain loops: rows are short (7 to 28 values here),
					 * where a libc call costs more than the copy. */
					unsigned ox = 0;
					for (; ox < lo; ox++)
						dst[ox] = 0.0f;
					if (l->sw == 1)
						for (; ox < hi; ox++)
							dst[ox] = src[ox];
					else
						for (; ox < hi; ox++)
							dst[ox] = src[(size_t)ox * l->sw];
					for (; ox < OW; ox++)
						dst[ox] = 0.0f;
				}
			}
		}
	}
}

/* out[rows, n0..n1) += bias, then ReLU when asked; 4 columns at a time. */
static void
epilogue_vec(const struct dnn_layer *l, float *out, size_t N, unsigned row0, unsigned row1, size_t n0, size_t n1,
         bool relu)
{
	const v4sf zero = { 0, 0, 0, 0 };

	for (unsigned o = row0; o < row1; o++) {
		float b = l->bias != NULL ? l->bias[o] : 0.0f;
		v4sf bv = { b, b, b, b };
		float *row = out + (size_t)o * N;
		size_t n = n0;
		if (l->bias == NULL && !relu)
			continue;
		for (; n + 4 <= n1; n += 4) {
			v4sf v = load4(row + n) + bv;
			store4(row + n, relu ? max4(v, zero) : v);
		}
		for (; n < n1; n++) {
			float v = row[n] + b;
			row[n] = relu && v < 0.0f ? 0.0f : v;
		}
	}
}

/* True when the input already is the im2col matrix (1x1, stride 1, no pad). */
static bool
is_pointwise(const struct dnn_layer *l)
{
	return l->kh == 1 && l->kw == 1 && l->sh == 1 && l->sw == 1 && l->ph == 0 && l->pw == 0;
}

/* Shares split the output positions (by whole output rows), so each part
 * builds and multiplies its own slice of im2col; a flat layer (N == 1, the
 * fully-connected case) splits output channels instead. */
void
dnn_conv_gemm(const struct dnn_op *op, unsigned part, unsigned parts, bool fused, dnn_epilogue_fn *epilogue)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_block *blocks = op->plan->blocks;
	unsigned nb = op->plan->nblocks;
	unsigned kk = l->kh * l->kw;
	size_t N = (size_t)l->out_h * l->out_w;
	bool pointwise = is_pointwise(l);
	const float *B = pointwise ? op->in : op->col;

	if (N == 1 && pointwise) {
		size_t r0, r1;
		dnn_share(blocks[nb - 1].row1, part, parts, 4, &r0, &r1);
		for (unsigned b = 0; b < nb; b++) {
			unsigned lo = blocks[b].row0 > r0 ? blocks[b].row0 : (unsigned)r0;
			unsigned hi = blocks[b].row1 < r1 ? blocks[b].row1 : (unsigned)r1;
			if (lo >= hi)
				continue;
			cblas_sgemv(CblasRowMajor, CblasNoTrans, (int)(hi - lo), (int)(blocks[b].ch1 - blocks[b].ch0),
			            1.0f, l->weight + (size_t)lo * l->weight_cols, (int)l->weight_cols,
			            op->in + blocks[b].ch0, 1, 0.0f, op->out + lo, 1);
			epilogue(l, op->out, 1, lo, hi, 0, 1, fused && op->relu);
		}
		return;
	}

	/* Shares are whole output rows, so im2col copies contiguous runs. */
	size_t oy0, oy1, n0, n1;
	dnn_share(l->out_h, part, parts, 1, &oy0, &oy1);
	n0 = oy0 * l->out_w;
	n1 = oy1 * l->out_w;
	if (n0 >= n1)
		return;
	if (!pointwise)
		im2col(l, op->in, blocks[nb - 1].ch1, op->col, (unsigned)oy0, (unsigned)oy1);
	for (unsigned b = 0; b < nb; b++) {
		const struct dnn_block *bk = &blocks[b];
		cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)(bk->row1 - bk->row0), (int)(n1 - n0),
		            (int)((bk->ch1 - bk->ch0) * kk), 1.0f, l->weight + (size_t)bk->row0 * l->weight_cols,
		            (int)l->weight_cols, B + (size_t)bk->ch0 * kk * N + n0, (int)N, 0.0f,
		            op->out + (size_t)bk->row0 * N + n0, (int)N);
	}
	epilogue(l, op->out, N, 0, blocks[nb - 1].row1, n0, n1, fused && op->relu);
}

/* The plain BLAS path: same GEMMs, ReLU left to its own layer. */
void
dnn_f32_conv2d_gemm(const struct dnn_op *op, unsigned part, unsigned parts)
{
	dnn_conv_gemm(op, part, parts, false, epilogue_vec);
}

void
dnn_f32_conv2d_gemm_fused(const struct dnn_op *op, unsigned part, unsigned parts)
{
	dnn_conv_gemm(op, part, parts, true, epilogue_vec);
}

/* ------------------------------------------------------------------------ */
/* Pooling: reduce the kh input rows of a window vertically into a row buffer
 * (contiguous, 4-wide), then horizontally with the stride. */

static void
reduce_rows(const float *in, unsigned W, unsigned rows, float *acc, bool max)
{
	unsigned x = 0;

	memcpy(acc, in, W * sizeof(float));
	for (unsigned r = 1; r < rows; r++) {
		const float *row = in + (size_t)r * W;
		for (x = 0; x + 4 <= W; x += 4) {
			v4sf a = load4(acc + x), v = load4(row + x);
			store4(acc + x, max ? max4(a, v) : a + v);
		}
		for (; x < W; x++)
			acc[x] = max ? (row[x] > acc[x] ? row[x] : acc[x]) : acc[x] + row[x];
	}
}

static void
reduce_cols(const struct dnn_layer *l, const float *acc, float *out, bool max)
{
	float scale = max ? 1.0f : 1.0f / (float)(l->kh * l->kw);
	v4sf sv = { scale, scale, scale, scale };
	unsigned ox = 0;

	if (l->kw == 2 && l->sw == 2) {
		for (; ox + 4 <= l->out_w; ox += 4) {
			v4sf a = load4(acc + 2 * ox), b = load4(acc + 2 * ox + 4);
			v4sf e = EVENS(a, b), o = ODDS(a, b);
			store4(out + ox, max ? max4(e, o) : (e + o) * sv);
		}
	}
	for (; ox < l->out_w; ox++) {
		const float *w = acc + (size_t)ox * l->sw;
		float v = w[0];
		for (unsigned kx = 1; kx < l->kw; kx++)
			v = max ? (w[kx] > v ? w[kx] : v) : v + w[kx];
		out[ox] = max ? v : v * scale;
	}
}

/* 2x2 max pooling with stride 2, the common case: both input rows of a
 * window are read straight into registers, no row buffer. */
static void
maxpool_2x2s2_row(const float *r0, const float *r1, float *out, unsigned out_w)
{
	unsigned ox = 0;

	for (; ox + 4 <= out_w; ox += 4) {
		v4sf a = max4(load4(r0 + 2 * ox), load4(r1 + 2 * ox));
		v4sf b = max4(load4(r0 + 2 * ox + 4), load4(r1 + 2 * ox + 4));
		store4(out + ox, max4(EVENS(a, b), ODDS(a, b)));
	}
	for (; ox < out_w; ox++) {
		float a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
		float b = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
		out[ox] = a > b ? a : b;
	}
}

void
dnn_pool_by_rows(const struct dnn_op *op, unsigned part, unsigned parts, bool max, const struct dnn_pool_rows *ops)
{
	const struct dnn_layer *l = op->layer;
	float *acc = op->scratch + (size_t)part * l->in_w;
	bool max_2x2s2 = max && l->kh == 2 && l->kw == 2 && l->sh == 2 && l->sw == 2;
	size_t first, last;

	dnn_share(op->plan->in_c, part, parts, 1, &first, &last);
	for (size_t c = first; c < last; c++) {
		const float *in = op->in + c * l->in_h * l->in_w;
		float *out = op->out + c * l->out_h * l->out_w;
		for (unsigned oy = 0; oy < l->out_h; oy++) {
			const float *rows = in + (size_t)oy * l->sh * l->in_w;
			if (max_2x2s2) {
				ops->max_2x2s2(rows, rows + l->in_w, out + (size_t)oy * l->out_w, l->out_w);
			} else {
				ops->reduce_rows(rows, l->in_w, l->kh, acc, max);
				ops->reduce_cols(l, acc, out + (size_t)oy * l->out_w, max);
			}
		}
	}
}

static const struct dnn_pool_rows vec_rows = { maxpool_2x2s2_row, reduce_rows, reduce_cols };

void
dnn_f32_maxpool_vec(const struct dnn_op *op, unsigned part, unsigned parts)
{
	dnn_pool_by_rows(op, part, parts, true, &vec_rows);
}

void
dnn_f32_avgpool_vec(const struct dnn_op *op, unsigned part, unsigned parts)
{
	dnn_pool_by_rows(op, part, parts, false, &vec_rows);
}

void
dnn_f32_relu_vec(const struct dnn_op *op, unsigned part, unsigned parts)
{
	const v4sf zero = { 0, 0, 0, 0 };
	size_t first, last, i;

	dnn_share(op->n, part, parts, 16, &first, &last);
	for (i = first; i + 4 <= last; i += 4)
		store4(op->out + i, max4(load4(op->in + i), zero));
	for (; i < last; i++)
		op->out[i] = op->in[i] > 0.0f ? op->in[i] : 0.0f;
}
