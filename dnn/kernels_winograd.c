/* SPDX-License-Identifier: MIT */
/* Winograd convolution F(2x2,3x3) and F(4x4,3x3) for 3x3 stride-1 layers.
 *
 * An output tile of m x m (m = 2 or 4) is computed from an a x a input tile
 * (a = m + 2) as A^T [ (G w G^T) .* (B^T d B) ] A: per tile and channel pair
 * a*a multiplications instead of 9*m*m (2.25x fewer for m = 2, 4x for m = 4,
 * less the waste of tiles that hang over the map's edge).
 *
 * The weights are transformed once, when a plan first asks for the variant
 * (dnn_wino_prepare), into panels of 16 output channels that never straddle
 * a group segment, as the direct convolution does: a block at any g uses
 * whole panels and a prefix (dense) or a segment (grouped, nested) of the
 * weight channels. Nothing is transformed per g.
 *
 * One run, for its share of the output tiles (shares are disjoint tile
 * ranges, so no share waits for another):
 *   1. input transform: V[xi][c][t] = (B^T d_{c,t} B)[xi] for every active
 *      input channel c and tile t of the share (each plane read through a
 *      zero-bordered copy, 8 tiles at a time so that the arithmetic runs on
 *      vectors across tiles; xi planes padded off power-of-two strides);
 *   2. per block, chunk of 16-channel panels and chunk of tiles: a*a matrix
 *      products M[xi][o][t] = sum_c U[xi][o][c] V[xi][c][t] into a local M,
 *      on the register-tiled body of the direct convolution (direct_body.h,
 *      one instance per instruction set: AVX-512, AVX2, generic/NEON), the
 *      weight column k of that body being channel k and koff[k] = k * T;
 *   3. at once, while that M is in cache: the output transform A^T M A,
 *      plus bias, ReLU when fused, clipped to the map.
 * All of it lives in the context's im2col scratch (dnn_wino_scratch_floats).
 * Measured on a 2-vCPU AMD EPYC (AVX2) it does not beat the direct
 * convolution on the bundled model's small maps (7x7, 14x14: few tiles per
 * product and transforms that cost as much as the products saved); the
 * tuner measures it per layer and takes it only where it wins. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/kernels.h"

#include "dnn/direct.h" /* the arguments direct_body.h's tile reads */

#define DIRECT_ISA generic
#if defined(__aarch64__)
#define DIRECT_BUDGET 6
#else
#define DIRECT_BUDGET 3
#endif
#define DIRECT_VBYTES 16
#include "dnn/direct_body.h"
#undef DIRECT_ISA
#undef DIRECT_BUDGET
#undef DIRECT_VBYTES

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define WINO_HAVE_X86 1
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define DIRECT_ISA avx2
#define DIRECT_BUDGET 6
#define DIRECT_VBYTES 32
#include "dnn/direct_body.h"
#undef DIRECT_ISA
#undef DIRECT_BUDGET
#undef DIRECT_VBYTES
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,fma")
#define DIRECT_ISA avx512
#define DIRECT_BUDGET 28
#define DIRECT_VBYTES 64
#include "dnn/direct_body.h"
#undef DIRECT_ISA
#undef DIRECT_BUDGET
#undef DIRECT_VBYTES
#pragma GCC pop_options
#endif

typedef void tile_fn(const struct direct_tile_args *a, unsigned MR, unsigned NR);

/* The instruction set follows the direct convolution's choice (one switch
 * for tests: dnn_direct_use_isa). */
static void
wino_isa(tile_fn **tile, unsigned *budget)
{
	const char *name = dnn_kernels_isa();

#ifdef WINO_HAVE_X86
	if (strcmp(name, "avx512") == 0) {
		*tile = tile_any_avx512;
		*budget = 28;
		return;
	}
	if (strcmp(name, "avx2") == 0) {
		*tile = tile_any_avx2;
		*budget = 6;
		return;
	}
#endif
	(void)name;
	*tile = tile_any_generic;
#if defined(__aarch64__)
	*budget = 6;
#else
	*budget = 3;
#endif
}

struct dnn_wino {
	unsigned m, a;       /* output and input tile sizes */
	unsigned ntiles;     /* panels of 16 output channels */
	unsigned *tile_row0, *tile_rows;
	unsigned cw;         /* weight channels (weight_cols / 9) */
	float *u;            /* [panel][xi][cw][16], 64-byte aligned */
	int32_t *koff;       /* k * T */
	unsigned th, tw, T;  /* tiles down, across, in all */
	size_t vs;           /* floats between the xi planes of V */
};

static const float zero_bias[4 * 16] __attribute__((aligned(64)));

/* Floats between the planes of V and M of consecutive xi beyond their
 * size: planes of a power-of-two size would all fall in the same cache sets,
 * and the transforms touch all a*a of them per tile. */
#define XI_PAD 16
/* Most tiles one matrix-product tile covers (direct_body.h's NR). */
#define NR_MAX 14

bool
dnn_wino_eligible(const struct dnn_layer *l)
{
	return l->type == DNN_CONV2D && l->weight != NULL && l->kh == 3 && l->kw == 3 && l->sh == 1 && l->sw == 1 &&
	       l->weight_cols % 9 == 0;
}

static struct dnn_wino **
slot(struct dnn_layer *l, unsigned m)
{
	return m == 2 ? &l->wino2 : &l->wino4;
}

static void
wino_free(struct dnn_wino *w)
{
	if (w == NULL)
		return;
	free(w->tile_row0);
	free(w->tile_rows);
	free(w->u);
	free(w->koff);
	free(w);
}

void
dnn_wino_unprepare(struct dnn_layer *l)
{
	wino_free(l->wino2);
	wino_free(l->wino4);
	l->wino2 = l->wino4 = NULL;
}

/* g = weights of one channel pair (3x3, row-major) -> U = G g G^T (a x a). */
static void
transform_weight(unsigned m, const float *g, float *u)
{
	static const float G2[4][3] = { { 1, 0, 0 }, { 0.5f, 0.5f, 0.5f }, { 0.5f, -0.5f, 0.5f }, { 0, 0, 1 } };
	static const float G4[6][3] = {
		{ 1.0f / 4, 0, 0 },
		{ -1.0f / 6, -1.0f / 6, -1.0f / 6 },
		{ -1.0f / 6, 1.0f / 6, -1.0f / 6 },
		{ 1.0f / 24, 1.0f / 12, 1.0f / 6 },
		{ 1.0f / 24, -1.0f / 12, 1.0f / 6 },
		{ 0, 0, 1 },
	};
	unsigned a = m + 2;
	float t[6][3];

	for (unsigned i = 0; i < a; i++)
		for (unsigned j = 0; j < 3; j++) {
			double s = 0;
			for (unsigned k = 0; k < 3; k++)
				s += (double)(m == 2 ? G2[i][k] : G4[i][k]) * g[k * 3 + j];
			t[i][j] = (float)s;
		}
	for (unsigned i = 0; i < a; i++)
		for (unsigned j = 0; j < a; j++) {
			double s = 0;
			for (unsigned k = 0; k < 3; k++)
				s += (double)t[i][k] * (m == 2 ? G2[j][k] : G4[j][k]);
			u[i * a + j] = (float)s;
		}
}

int
dnn_wino_prepare(struct dnn_layer *l, unsigned G, unsigned m)
{
	struct dnn_wino *w;
	unsigned segments = l->out_grouped ? G : 1, seg_rows = l->out_c / segments, a = m + 2, a2 = a * a;
	void *mem = NULL;

	if (!dnn_wino_eligible(l) || (m != 2 && m != 4))
		return -1;
	if (*slot(l, m) != NULL)
		return 0;
	if ((w = calloc(1, sizeof(*w))) == NULL)
		return -1;
	w->m = m;
	w->a = a;
	w->cw = l->weight_cols / 9;
	w->th = (l->out_h + m - 1) / m;
	w->tw = (l->out_w + m - 1) / m;
	w->T = w->th * w->tw;
	w->vs = (size_t)l->in_c * w->T + XI_PAD;
	w->ntiles = segments * ((seg_rows + 15) / 16);
	w->tile_row0 = calloc(w->ntiles, sizeof(unsigned));
	w->tile_rows = calloc(w->ntiles, sizeof(unsigned));
	w->koff = calloc(w->cw + 1, sizeof(int32_t));
	if (w->tile_row0 == NULL || w->tile_rows == NULL || w->koff == NULL ||
	    posix_memalign(&mem, 64, (size_t)w->ntiles * a2 * w->cw * 16 * sizeof(float)) != 0) {
		wino_free(w);
		return -1;
	}
	w->u = mem;
	for (unsigned s = 0, t = 0; s < segments; s++)
		for (unsigned r = 0; r < seg_rows; r += 16, t++) {
			w->tile_row0[t] = s * seg_rows + r;
			w->tile_rows[t] = seg_rows - r < 16 ? seg_rows - r : 16;
		}
	for (unsigned k = 0; k < w->cw; k++)
		w->koff[k] = (int32_t)(k * w->T);
	for (unsigned t = 0; t < w->ntiles; t++)
		for (unsigned c = 0; c < w->cw; c++)
			for (unsigned r = 0; r < 16; r++) {
				float u[36];
				if (r < w->tile_rows[t])
					transform_weight(m, l->weight + (size_t)(w->tile_row0[t] + r) * l->weight_cols + c * 9, u);
				else
					memset(u, 0, sizeof(u));
				for (unsigned xi = 0; xi < a2; xi++)
					w->u[(((size_t)t * a2 + xi) * w->cw + c) * 16 + r] = u[xi];
			}
	*slot(l, m) = w;
	return 0;
}

/* A share's local M (a*a x 64 channels x NR_MAX tiles) and padded plane. */
static size_t
local_floats(unsigned m, unsigned th, unsigned tw)
{
	unsigned a = m + 2;

	return (size_t)a * a * 64 * NR_MAX + 16 + (size_t)(th * m + 2) * (tw * m + 2) + 16;
}

size_t
dnn_wino_scratch_floats(const struct dnn_layer *l, unsigned m, unsigned parts)
{
	unsigned a = m + 2, th = (l->out_h + m - 1) / m, tw = (l->out_w + m - 1) / m, T = th * tw;

	if (!dnn_wino_eligible(l))
		return 0;
	/* V, shared (shares write disjoint tiles), then each share's own */
	return (size_t)a * a * ((size_t)T * l->in_c + XI_PAD) + (size_t)parts * local_floats(m, th, tw);
}

size_t
dnn_wino_weight_bytes(const struct dnn_layer *l, unsigned m)
{
	const struct dnn_wino *w = m == 2 ? l->wino2 : l->wino4;

	return w == NULL ? 0 : (size_t)w->ntiles * w->a * w->a * w->cw * 16 * sizeof(float);
}

/* ------------------------------------------------------------------------ */
/* Transforms. */

/* The transforms run on LANES tiles at once: every value is an array over
 * the lanes, and each operation a loop over them that the compiler turns
 * into vector instructions; a is a constant after inlining. */
#define LANES 8

/* r = B^T d over a values at row stride s (input rows of lanes). */
static inline __attribute__((always_inline)) void
bt_lanes(const unsigned a, const float (*d)[LANES], size_t s, float (*r)[LANES], size_t rs)
{
	for (unsigned j = 0; j < LANES; j++) {
		if (a == 4) {
			float d0 = d[0][j], d1 = d[s][j], d2 = d[2 * s][j], d3 = d[3 * s][j];
			r[0][j] = d0 - d2;
			r[rs][j] = d1 + d2;
			r[2 * rs][j] = d2 - d1;
			r[3 * rs][j] = d1 - d3;
		} else {
			float d0 = d[0][j], d1 = d[s][j], d2 = d[2 * s][j], d3 = d[3 * s][j], d4 = d[4 * s][j],
			      d5 = d[5 * s][j];
			r[0][j] = 4 * d0 - 5 * d2 + d4;
			r[rs][j] = -4 * (d1 + d2) + d3 + d4;
			r[2 * rs][j] = 4 * (d1 - d2) - d3 + d4;
			r[3 * rs][j] = 2 * (d3 - d1) - d2 + d4;
			r[4 * rs][j] = 2 * (d1 - d3) - d2 + d4;
			r[5 * rs][j] = 4 * d1 - 5 * d3 + d5;
		}
	}
}

/* o = A^T v: a values at stride s into m = a - 2 at stride os. */
static inline __attribute__((always_inline)) void
at_lanes(const unsigned a, const float (*v)[LANES], size_t s, float (*o)[LANES], size_t os)
{
	for (unsigned j = 0; j < LANES; j++) {
		if (a == 4) {
			float m0 = v[0][j], m1 = v[s][j], m2 = v[2 * s][j], m3 = v[3 * s][j];
			o[0][j] = m0 + m1 + m2;
			o[os][j] = m1 - m2 - m3;
		} else {
			float m0 = v[0][j], m1 = v[s][j], m2 = v[2 * s][j], m3 = v[3 * s][j], m4 = v[4 * s][j],
			      m5 = v[5 * s][j];
			float p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4;
			o[0][j] = m0 + p12 + p34;
			o[os][j] = n12 + 2 * n34;
			o[2 * os][j] = p12 + 4 * p34;
			o[3 * os][j] = n12 + 8 * n34 + m5;
		}
	}
}

/* V[xi][c][t] for tiles [t0, t1) of channel plane `in`, read through `pad`
 * (pw x ph floats: the plane at (ph, pw) inside zeros; the borders stay zero
 * between calls) so that no tile checks bounds. */
static inline __attribute__((always_inline)) void
input_transform(const unsigned a, const struct dnn_layer *l, const struct dnn_wino *w, const float *in, float *pad,
                unsigned pad_w, float *V, size_t t0, size_t t1)
{
	const unsigned m = a - 2, H = l->in_h, W = l->in_w;

	for (unsigned y = 0; y < H; y++)
		memcpy(pad + (size_t)(y + l->ph) * pad_w + l->pw, in + (size_t)y * W, W * sizeof(float));
	for (size_t tb = t0; tb < t1; tb += LANES) {
		unsigned nl = t1 - tb < LANES ? (unsigned)(t1 - tb) : LANES;
		float d[36][LANES], t[36][LANES], v[36][LANES];
		for (unsigned j = 0; j < LANES; j++) {
			size_t tt = tb + (j < nl ? j : 0);
			const float *src = pad + (size_t)(tt / w->tw) * m * pad_w + (tt % w->tw) * m;
			for (unsigned y = 0; y < a; y++)
				for (unsigned x = 0; x < a; x++)
					d[y * a + x][j] = src[(size_t)y * pad_w + x];
		}
		for (unsigned x = 0; x < a; x++) /* columns, then rows */
			bt_lanes(a, (const float(*)[LANES])d + x, a, t + x, a);
		for (unsigned y = 0; y < a; y++)
			bt_lanes(a, (const float(*)[LANES])t + y * a, 1, v + y * a, 1);
		for (unsigned xi = 0; xi < a * a; xi++)
			for (unsigned j = 0; j < nl; j++)
				V[xi * w->vs + tb + j] = v[xi][j];
	}
}

/* n tiles from the first, tile index t_first: their a*a values at Mt[xi * xs
 * + j], transformed to m x m outputs, plus bias, ReLU, into channel plane out. */
static inline __attribute__((always_inline)) void
output_transform(const unsigned a, const struct dnn_layer *l, const struct dnn_wino *w, const float *Mt, size_t xs,
                 size_t t_first, unsigned n, float bias, bool relu, float *out)
{
	const unsigned m = a - 2;

	for (unsigned jb = 0; jb < n; jb += LANES) {
		unsigned nl = n - jb < LANES ? n - jb : LANES;
		float s[36][LANES], r[24][LANES], y[16][LANES];
		for (unsigned xi = 0; xi < a * a; xi++)
			for (unsigned j = 0; j < LANES; j++)
				s[xi][j] = Mt[xi * xs + jb + j]; /* past n: values of no tile, never stored */
		for (unsigned x = 0; x < a; x++) /* columns into m rows, then rows */
			at_lanes(a, (const float(*)[LANES])s + x, a, r + x, a);
		for (unsigned yy = 0; yy < m; yy++)
			at_lanes(a, (const float(*)[LANES])r + yy * a, 1, y + yy * m, 1);
		for (unsigned k = 0; k < m * m; k++)
			for (unsigned j = 0; j < LANES; j++) {
				float v = y[k][j] + bias;
				y[k][j] = relu && v < 0.0f ? 0.0f : v;
			}
		for (unsigned j = 0; j < nl; j++) {
			size_t t = t_first + jb + j;
			unsigned oy0 = (unsigned)(t / w->tw) * m, ox0 = (unsigned)(t % w->tw) * m;
			float *dst = out + (size_t)oy0 * l->out_w + ox0;
			if (oy0 + m <= l->out_h && ox0 + m <= l->out_w) {
				for (unsigned yy = 0; yy < m; yy++)
					for (unsigned xx = 0; xx < m; xx++)
						dst[(size_t)yy * l->out_w + xx] = y[yy * m + xx][j];
			} else {
				unsigned mh = l->out_h - oy0 < m ? l->out_h - oy0 : m, mw = l->out_w - ox0 < m ? l->out_w - ox0 : m;
				for (unsigned yy = 0; yy < mh; yy++)
					for (unsigned xx = 0; xx < mw; xx++)
						dst[(size_t)yy * l->out_w + xx] = y[yy * m + xx][j];
			}
		}
	}
}

/* ------------------------------------------------------------------------ */
/* Running. */

static void
conv_wino(const struct dnn_op *op, unsigned part, unsigned parts, const struct dnn_wino *w)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_block *blocks = op->plan->blocks;
	unsigned nb = op->plan->nblocks, a = w->a, a2 = a * a, T = w->T, H = l->in_h, W = l->in_w;
	unsigned channels = blocks[nb - 1].ch1;
	size_t vs = w->vs;
	float *V = op->col;
	/* this share's local M and padded plane */
	float *M = op->col + (size_t)a2 * vs + (size_t)part * local_floats(w->m, w->th, w->tw);
	size_t t0, t1;
	tile_fn *tile;
	unsigned budget;

	dnn_share(T, part, parts, 1, &t0, &t1);
	if (t0 >= t1)
		return;
	wino_isa(&tile, &budget);

	/* 1. input transform, each plane through a zero-bordered copy covering
	 * every tile (the last ones hang over the map) */
	unsigned pad_w = w->tw * w->m + 2, pad_h = w->th * w->m + 2;
	float *pad = M + (size_t)a2 * 64 * NR_MAX + 16;
	memset(pad, 0, (size_t)pad_h * pad_w * sizeof(float));
	for (unsigned c = 0; c < channels; c++) {
		const float *plane = op->in + (size_t)c * H * W;
		if (a == 4)
			input_transform(4, l, w, plane, pad, pad_w, V + (size_t)c * T, t0, t1);
		else
			input_transform(6, l, w, plane, pad, pad_w, V + (size_t)c * T, t0, t1);
	}

	/* 2+3. per block, per chunk of panels and of tiles: the a*a products
	 * into a local M[xi][channel][tile] (NR_MAX tiles a row, so the output
	 * transform reads it with unit stride while it is in cache), then the
	 * output transform, bias and ReLU of those channels and tiles */
	unsigned span = (unsigned)(t1 - t0), nr = span < NR_MAX ? span : NR_MAX, mr;
	size_t xs = (size_t)64 * NR_MAX, N = (size_t)l->out_h * l->out_w;
	if (nr > budget)
		nr = budget;
	mr = budget / nr >= 4 ? 4 : budget / nr >= 2 ? 2 : 1;
	for (unsigned b = 0; b < nb; b++) {
		const struct dnn_block *bk = &blocks[b];
		unsigned p0 = 0, p1, bmr = mr;
		while (p0 < w->ntiles && w->tile_row0[p0] < bk->row0)
			p0++;
		p1 = p0;
		while (p1 < w->ntiles && w->tile_row0[p1] < bk->row1)
			p1++;
		for (unsigned p = p0; p < p1; p++)
			if (w->tile_rows[p] != 16)
				bmr = 1;
		for (unsigned p = p0; p < p1; p += bmr) {
			unsigned panels = p1 - p < bmr ? p1 - p : bmr;
			unsigned row0 = w->tile_row0[p];
			unsigned rows = w->tile_row0[p + panels - 1] + w->tile_rows[p + panels - 1] - row0;
			for (size_t t = t0; t < t1; t += nr) {
				unsigned n = t1 - t < nr ? (unsigned)(t1 - t) : nr;
				for (unsigned xi = 0; xi < a2; xi++) {
					struct direct_tile_args args = {
						.w = w->u + ((size_t)p * a2 + xi) * w->cw * 16,
						.wstride = (size_t)a2 * w->cw * 16,
						.bias = zero_bias,
						.koff = w->koff,
						.x = V + xi * vs + (size_t)bk->wch0 * T + t,
						.k0 = bk->ch0 - bk->wch0,
						.k1 = bk->ch1 - bk->wch0,
						.out = M + xi * xs,
						.out_stride = NR_MAX,
						.rows = rows,
						.relu = false,
					};
					tile(&args, panels, n);
				}
				for (unsigned r = 0; r < rows; r++) {
					unsigned o = row0 + r;
					float bias = l->bias != NULL ? l->bias[o] : 0.0f;
					if (a == 4)
						output_transform(4, l, w, M + (size_t)r * NR_MAX, xs, t, n, bias, op->relu,
						                 op->out + (size_t)o * N);
					else
						output_transform(6, l, w, M + (size_t)r * NR_MAX, xs, t, n, bias, op->relu,
						                 op->out + (size_t)o * N);
				}
			}
		}
	}
}

/* Layers not prepared for the variant (not 3x3 stride 1) take the direct
 * path, which itself falls back to im2col + BLAS. */
void
dnn_f32_conv2d_wino2(const struct dnn_op *op, unsigned part, unsigned parts)
{
	if (op->layer->wino2 == NULL)
		dnn_f32_conv2d_direct(op, part, parts);
	else
		conv_wino(op, part, parts, op->layer->wino2);
}

void
dnn_f32_conv2d_wino4(const struct dnn_op *op, unsigned part, unsigned parts)
{
	if (op->layer->wino4 == NULL)
		dnn_f32_conv2d_direct(op, part, parts);
	else
		conv_wino(op, part, parts, op->layer->wino4);
}
