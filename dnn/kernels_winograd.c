/* Winograd convolution F(2x2,3x3) and F(4x4,3x3) for 3x3 stride-1 layers.
 *
 * An output tile of m x m (m = 2 or 4) is computed from an a x a input tile
 * (a = m + 2) as A^T [ (G w G^T) .* (B^T d B) ] A: per tile and channel pair
 * a*a multiplications instead of 9*m*m (2.25x fewer for m = 2, 4x for m = 4,
 * less the waste of tiles that hang over the map's edge).
 *
 * The weights are transformed once, when a plan first asks for the variant
 * (dnn_layer_prepare), into panels of 16 output channels that never straddle
 * a group segment, as the direct convolution does: a block at any g uses
 * whole panels and a prefix (dense) or a segment (grouped, nested) of the
 * weight channels. Nothing is transformed per g.
 *
 * One run, for its share of the output tiles (shares are disjoint tile
 * ranges, so no share waits for another):
 *   1. input transform: V[xi][c][t] = (B^T d_{c,t} B)[xi] for every active
 *      input channel c and tile t of the share;
 *   2. a*a matrix products per block, M[xi][o][t] = sum_c U[xi][o][c] V[xi][c][t],
 *      on the register-tiled body of the direct convolution (direct_body.h,
 *      one instance per instruction set: AVX-512, AVX2, generic/NEON), with
 *      the weight column k of that body being channel k and koff[k] = k * T;
 *   3. output transform A^T M A, plus bias, ReLU when fused, clipped to the map.
 * V and M live in the context's im2col scratch (dnn_wino_scratch_floats). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/kernels.h"

/* The arguments direct_body.h's tile reads (the same fields as in
 * kernels_direct.c, which defines its own copy). */
struct direct_tile_args {
	const float *w;
	size_t wstride;
	const float *bias;
	const int32_t *koff;
	const float *x;
	unsigned k0, k1;
	float *out;
	size_t out_stride;
	unsigned rows;
	bool relu;
};

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
	const char *name = dnn_direct_isa();

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
};

static const float zero_bias[4 * 16] __attribute__((aligned(64)));

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

size_t
dnn_wino_scratch_floats(const struct dnn_layer *l, unsigned m)
{
	unsigned a = m + 2, T;

	if (!dnn_wino_eligible(l))
		return 0;
	T = ((l->out_h + m - 1) / m) * ((l->out_w + m - 1) / m);
	return (size_t)a * a * T * ((size_t)l->in_c + l->out_c);
}

size_t
dnn_wino_weight_bytes(const struct dnn_layer *l, unsigned m)
{
	const struct dnn_wino *w = m == 2 ? l->wino2 : l->wino4;

	return w == NULL ? 0 : (size_t)w->ntiles * w->a * w->a * w->cw * 16 * sizeof(float);
}

/* ------------------------------------------------------------------------ */
/* Transforms. */

/* B^T d for one column (or row) of a input values at stride s. */
static inline void
bt_4(const float *d, size_t s, float *r, size_t rs)
{
	float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s];

	r[0] = d0 - d2;
	r[rs] = d1 + d2;
	r[2 * rs] = d2 - d1;
	r[3 * rs] = d1 - d3;
}

static inline void
bt_6(const float *d, size_t s, float *r, size_t rs)
{
	float d0 = d[0], d1 = d[s], d2 = d[2 * s], d3 = d[3 * s], d4 = d[4 * s], d5 = d[5 * s];

	r[0] = 4 * d0 - 5 * d2 + d4;
	r[rs] = -4 * (d1 + d2) + d3 + d4;
	r[2 * rs] = 4 * (d1 - d2) - d3 + d4;
	r[3 * rs] = 2 * (d3 - d1) - d2 + d4;
	r[4 * rs] = 2 * (d1 - d3) - d2 + d4;
	r[5 * rs] = 4 * d1 - 5 * d3 + d5;
}

/* A^T m for a values at stride s into m outputs. */
static inline void
at_4(const float *v, size_t s, float *o, size_t os)
{
	float m0 = v[0], m1 = v[s], m2 = v[2 * s], m3 = v[3 * s];

	o[0] = m0 + m1 + m2;
	o[os] = m1 - m2 - m3;
}

static inline void
at_6(const float *v, size_t s, float *o, size_t os)
{
	float m0 = v[0], m1 = v[s], m2 = v[2 * s], m3 = v[3 * s], m4 = v[4 * s], m5 = v[5 * s];
	float p12 = m1 + m2, n12 = m1 - m2, p34 = m3 + m4, n34 = m3 - m4;

	o[0] = m0 + p12 + p34;
	o[os] = n12 + 2 * n34;
	o[2 * os] = p12 + 4 * p34;
	o[3 * os] = n12 + 8 * n34 + m5;
}

/* Input tile of channel plane `in` at (y0, x0), zero outside the map,
 * transformed: v[xi] = (B^T d B)[xi], xi = row * a + column. */
static void
input_tile(const struct dnn_wino *w, const float *in, unsigned H, unsigned W, long y0, long x0, float *v)
{
	unsigned a = w->a;
	float d[36], t[36];

	if (y0 >= 0 && x0 >= 0 && y0 + a <= H && x0 + a <= W) {
		for (unsigned y = 0; y < a; y++)
			for (unsigned x = 0; x < a; x++)
				d[y * a + x] = in[(size_t)(y0 + y) * W + (size_t)(x0 + x)];
	} else {
		for (unsigned y = 0; y < a; y++)
			for (unsigned x = 0; x < a; x++) {
				long iy = y0 + y, ix = x0 + x;
				d[y * a + x] = iy >= 0 && ix >= 0 && iy < (long)H && ix < (long)W
				                       ? in[(size_t)iy * W + (size_t)ix]
				                       : 0.0f;
			}
	}
	/* columns, then rows */
	for (unsigned x = 0; x < a; x++) {
		if (a == 4)
			bt_4(d + x, a, t + x, a);
		else
			bt_6(d + x, a, t + x, a);
	}
	for (unsigned y = 0; y < a; y++) {
		if (a == 4)
			bt_4(t + y * a, 1, v + y * a, 1);
		else
			bt_6(t + y * a, 1, v + y * a, 1);
	}
}

/* ------------------------------------------------------------------------ */
/* Running. */

static void
conv_wino(const struct dnn_op *op, unsigned part, unsigned parts, const struct dnn_wino *w)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_block *blocks = op->plan->blocks;
	unsigned nb = op->plan->nblocks, a = w->a, a2 = a * a, m = w->m, T = w->T;
	unsigned C = l->in_c, O = l->out_c, H = l->in_h, W = l->in_w;
	unsigned channels = blocks[nb - 1].ch1, rows_out = blocks[nb - 1].row1;
	float *V = op->col, *M = op->col + (size_t)a2 * C * T;
	size_t t0, t1;
	tile_fn *tile;
	unsigned budget;

	dnn_share(T, part, parts, 1, &t0, &t1);
	if (t0 >= t1)
		return;
	wino_isa(&tile, &budget);

	/* 1. input transform */
	for (unsigned c = 0; c < channels; c++) {
		const float *plane = op->in + (size_t)c * H * W;
		for (size_t t = t0; t < t1; t++) {
			long y0 = (long)(t / w->tw) * m - (long)l->ph, x0 = (long)(t % w->tw) * m - (long)l->pw;
			float v[36];
			input_tile(w, plane, H, W, y0, x0, v);
			for (unsigned xi = 0; xi < a2; xi++)
				V[((size_t)xi * C + c) * T + t] = v[xi];
		}
	}

	/* 2. the a*a products, block by block */
	unsigned span = (unsigned)(t1 - t0), nr = span < 14 ? span : 14, mr;
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
			for (unsigned xi = 0; xi < a2; xi++)
				for (size_t t = t0; t < t1; t += nr) {
					unsigned n = t1 - t < nr ? (unsigned)(t1 - t) : nr;
					struct direct_tile_args args = {
						.w = w->u + ((size_t)p * a2 + xi) * w->cw * 16,
						.wstride = (size_t)a2 * w->cw * 16,
						.bias = zero_bias,
						.koff = w->koff,
						.x = V + ((size_t)xi * C + bk->wch0) * T + t,
						.k0 = bk->ch0 - bk->wch0,
						.k1 = bk->ch1 - bk->wch0,
						.out = M + ((size_t)xi * O + row0) * T + t,
						.out_stride = T,
						.rows = rows,
						.relu = false,
					};
					tile(&args, panels, n);
				}
		}
	}

	/* 3. output transform, bias, ReLU */
	size_t N = (size_t)l->out_h * l->out_w, xs = (size_t)O * T;
	for (unsigned o = 0; o < rows_out; o++) {
		float bias = l->bias != NULL ? l->bias[o] : 0.0f;
		for (size_t t = t0; t < t1; t++) {
			const float *src = M + (size_t)o * T + t;
			unsigned oy0 = (unsigned)(t / w->tw) * m, ox0 = (unsigned)(t % w->tw) * m;
			float s[36], r[24], y[16];
			for (unsigned xi = 0; xi < a2; xi++)
				s[xi] = src[xi * xs];
			/* columns (a values each) into m rows, then rows into m values */
			for (unsigned x = 0; x < a; x++) {
				if (a == 4)
					at_4(s + x, a, r + x, a);
				else
					at_6(s + x, a, r + x, a);
			}
			for (unsigned yy = 0; yy < m; yy++) {
				if (a == 4)
					at_4(r + yy * a, 1, y + yy * m, 1);
				else
					at_6(r + yy * a, 1, y + yy * m, 1);
			}
			float *dst = op->out + (size_t)o * N;
			for (unsigned yy = 0; yy < m && oy0 + yy < l->out_h; yy++)
				for (unsigned xx = 0; xx < m && ox0 + xx < l->out_w; xx++) {
					float v = y[yy * m + xx] + bias;
					if (op->relu && v < 0.0f)
						v = 0.0f;
					dst[(size_t)(oy0 + yy) * l->out_w + ox0 + xx] = v;
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
