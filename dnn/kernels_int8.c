/* SPDX-License-Identifier: MIT */
/* 8-bit convolution and linear layers: u8 activations x s8 weights with
 * int32 accumulation (u8s8, as oneDNN and XNNPACK's QS8 do).
 *
 * Weights are quantised per output channel, symmetrically: q = round(w / s_o)
 * in [-127, 127] with s_o = max|w_o| / 127. The input is quantised per tensor
 * with the scale and zero point a plan calibrated (op->q_scale, op->q_zp):
 * u = clamp(round(x / s + zp), 0, 127). Activations keep to 7 bits so that
 * AVX2's vpmaddubsw (pairs of u8*s8 summed in int16) can never saturate
 * (2 * 127 * 127 < 32767) and every instruction set gives the same integers;
 * the zero point is taken out with a per-channel compensation
 * zp * sum(q_w) over the block's weight channels (precomputed prefix sums).
 * Requantisation is fused with bias and ReLU:
 * y = (acc - comp) * (s * s_o) + bias, then max(y, 0) when fused.
 *
 * Layout: the input is copied, quantised, into a zero-point-padded buffer of
 * channel quads (NCHW4c per group segment: 4 consecutive channels of one
 * segment in one 32-bit word); the weights are packed once into panels of 16
 * output channels by 4 input channels, 64 bytes per (panel, quad, ky, kx):
 * one zmm for vpdpbusd (AVX-512 VNNI), two ymm for vpmaddubsw + vpmaddwd
 * (AVX2, AVX-512BW without VNNI), four q registers for sdot (Arm's dot
 * product, arm64 with asimddp: the 7-bit activations are valid s8, so the
 * signed dot product gives the same integers), plain loops otherwise. Panels
 * never straddle a group segment, so every g uses whole panels of the same
 * packing. */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/kernels.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define Q8_HAVE_X86 1
#include <immintrin.h>
#endif
#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__)
#define Q8_HAVE_DOTPROD 1
#include <arm_neon.h>
#include <sys/auxv.h>
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1 << 20)
#endif
#endif

struct dnn_q8 {
	unsigned ntiles, *tile_row0, *tile_rows;
	unsigned kk;            /* kh * kw */
	unsigned seg_c, seg_q;  /* input channels per segment, quads per segment */
	unsigned cw;            /* weight channels */
	unsigned kq;            /* packed weight columns: quads of the weight channels * kk */
	int8_t *w;              /* [panel][kq][16][4], 64-byte aligned */
	float *wscale;          /* out_c */
	int32_t *csum;          /* out_c x (cw + 1): prefix sums of q_w over weight channels */
	int32_t *koff;          /* weight column -> word offset in the padded input */
	unsigned pad_h, pad_w, in_quads;
};

struct q8_args {
	const int8_t *w;        /* first panel, column 0 */
	size_t wstride;         /* bytes between panels */
	const int32_t *koff;
	const uint8_t *x;       /* padded input, the tile's first position, the block's first quad */
	unsigned sw;            /* words between positions */
	unsigned k0, k1;
	float *out;
	size_t out_stride;
	unsigned rows;
	bool relu;
	const float *mult, *bias; /* 16 * MR each, from the tile's first channel */
	const int32_t *comp;      /* 16 * MR */
};

bool
dnn_q8_eligible(const struct dnn_layer *l)
{
	return (l->type == DNN_CONV2D || l->type == DNN_LINEAR) && l->weight != NULL;
}

void
dnn_q8_unprepare(struct dnn_layer *l)
{
	struct dnn_q8 *q = l->q8;

	if (q == NULL)
		return;
	free(q->tile_row0);
	free(q->tile_rows);
	free(q->w);
	free(q->wscale);
	free(q->csum);
	free(q->koff);
	free(q);
	l->q8 = NULL;
}

float
dnn_q8_weight_scale(const float *w, size_t n)
{
	float mx = 0.0f;

	for (size_t i = 0; i < n; i++)
		mx = fabsf(w[i]) > mx ? fabsf(w[i]) : mx;
	return mx > 0.0f ? mx / 127.0f : 1.0f;
}

int8_t
dnn_q8_weight(float w, float scale)
{
	long q = lrintf(w / scale);

	return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

int
dnn_q8_prepare(struct dnn_layer *l, unsigned G)
{
	struct dnn_q8 *q;
	unsigned segments = l->out_grouped ? G : 1, seg_rows = l->out_c / segments, K = l->weight_cols;
	void *mem = NULL;

	if (!dnn_q8_eligible(l))
		return -1;
	if (l->q8 != NULL)
		return 0;
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	l->q8 = q;
	q->kk = l->kh * l->kw;
	q->cw = K / q->kk;
	q->seg_c = l->in_grouped ? l->in_c / G : l->in_c;
	q->seg_q = (q->seg_c + 3) / 4;
	q->in_quads = (l->in_c / q->seg_c) * q->seg_q;
	q->kq = (q->cw / q->seg_c) * q->seg_q * q->kk;
	q->pad_h = l->in_h + 2 * l->ph;
	q->pad_w = l->in_w + 2 * l->pw;
	q->ntiles = segments * ((seg_rows + 15) / 16);
	q->tile_row0 = calloc(q->ntiles, sizeof(unsigned));
	q->tile_rows = calloc(q->ntiles, sizeof(unsigned));
	q->wscale = calloc(l->out_c, sizeof(float));
	q->csum = calloc((size_t)l->out_c * (q->cw + 1), sizeof(int32_t));
	q->koff = calloc(q->kq + 1, sizeof(int32_t));
	if (q->tile_row0 == NULL || q->tile_rows == NULL || q->wscale == NULL || q->csum == NULL ||
	    q->koff == NULL || posix_memalign(&mem, 64, (size_t)q->ntiles * q->kq * 64 + 64) != 0)
		goto oom;
	q->w = mem;
	memset(q->w, 0, (size_t)q->ntiles * q->kq * 64);
	for (unsigned s = 0, t = 0; s < segments; s++)
		for (unsigned r = 0; r < seg_rows; r += 16, t++) {
			q->tile_row0[t] = s * seg_rows + r;
			q->tile_rows[t] = seg_rows - r < 16 ? seg_rows - r : 16;
		}
	for (unsigned o = 0; o < l->out_c; o++) {
		const float *wo = l->weight + (size_t)o * K;
		int32_t *cs = q->csum + (size_t)o * (q->cw + 1);
		q->wscale[o] = dnn_q8_weight_scale(wo, K);
		cs[0] = 0;
		for (unsigned c = 0; c < q->cw; c++) {
			int32_t sum = 0;
			for (unsigned k = 0; k < q->kk; k++)
				sum += dnn_q8_weight(wo[c * q->kk + k], q->wscale[o]);
			cs[c + 1] = cs[c] + sum;
		}
	}
	/* column kq = (weight quad Q, ky, kx); quad Q holds weight channels
	 * (Q / seg_q) * seg_c + (Q % seg_q) * 4 + j, j < 4, inside the segment */
	for (unsigned t = 0; t < q->ntiles; t++)
		for (unsigned col = 0; col < q->kq; col++) {
			unsigned Q = col / q->kk, k = col % q->kk;
			for (unsigned r = 0; r < q->tile_rows[t]; r++) {
				unsigned o = q->tile_row0[t] + r;
				for (unsigned j = 0; j < 4; j++) {
					unsigned cl = (Q % q->seg_q) * 4 + j, c = (Q / q->seg_q) * q->seg_c + cl;
					if (cl < q->seg_c)
						q->w[((size_t)t * q->kq + col) * 64 + r * 4 + j] =
							dnn_q8_weight(l->weight[(size_t)o * K + c * q->kk + k], q->wscale[o]);
				}
			}
		}
	for (unsigned col = 0; col < q->kq; col++) {
		unsigned Q = col / q->kk, k = col % q->kk, ky = k / l->kw, kx = k % l->kw;
		q->koff[col] = (int32_t)(((size_t)Q * q->pad_h + ky) * q->pad_w + kx);
	}
	return 0;
oom:
	dnn_q8_unprepare(l);
	return -1;
}

/* Bytes of the padded, quantised input of one share. */
static size_t
pad_bytes(const struct dnn_q8 *q)
{
	return ((size_t)q->in_quads * q->pad_h * q->pad_w * 4 + 63) / 64 * 64;
}

size_t
dnn_q8_scratch_floats(const struct dnn_layer *l, unsigned G, unsigned parts)
{
	unsigned seg_c = l->in_grouped ? l->in_c / G : l->in_c, quads = (l->in_c / seg_c) * ((seg_c + 3) / 4);
	size_t bytes = ((size_t)quads * (l->in_h + 2 * l->ph) * (l->in_w + 2 * l->pw) * 4 + 63) / 64 * 64;

	/* per share, plus 16 channels of compensation/multipliers */
	return (bytes * parts + 64) / sizeof(float) + 64;
}

size_t
dnn_q8_weight_bytes(const struct dnn_layer *l)
{
	const struct dnn_q8 *q = l->q8;

	return q == NULL ? 0 : (size_t)q->ntiles * q->kq * 64 + (size_t)l->out_c * sizeof(float);
}

/* ------------------------------------------------------------------------ */
/* Tiles: MR panels of 16 channels by NR positions of one output row. */

static inline __attribute__((always_inline)) void
q8_store(const struct q8_args *a, unsigned m, unsigned j, const int32_t acc[16])
{
	unsigned rows = a->rows > m * 16 ? a->rows - m * 16 : 0;

	if (rows > 16)
		rows = 16;
	for (unsigned r = 0; r < rows; r++) {
		unsigned c = m * 16 + r;
		float v = (float)(acc[r] - a->comp[c]) * a->mult[c] + a->bias[c];
		if (a->relu && v < 0.0f)
			v = 0.0f;
		a->out[(size_t)c * a->out_stride + j] = v;
	}
}

static inline __attribute__((always_inline)) uint32_t
q8_word(const struct q8_args *a, unsigned k, unsigned j)
{
	uint32_t word;

	memcpy(&word, a->x + ((size_t)a->koff[k] + (size_t)j * a->sw) * 4, 4);
	return word;
}

/* Dispatch to the instance of a tile kernel with constant MR and NR (its
 * accumulators then stay in registers), over the shapes q8_isas allows each
 * kernel (max_mr, max_nr, budget): 6 for AVX2 and the dot product, 28 for
 * AVX-512. Any other shape is a bug, and aborts. */
#define Q8_CASE(fn, mr, nr)             \
	case (mr) * 16 + (nr):          \
		fn(a, (mr), (nr));      \
		return;
#define Q8_CASES_6(fn)                                                                                      \
	switch (MR * 16 + NR) {                                                                             \
		Q8_CASE(fn, 1, 1) Q8_CASE(fn, 1, 2) Q8_CASE(fn, 1, 3) Q8_CASE(fn, 1, 4) Q8_CASE(fn, 1, 5)    \
		Q8_CASE(fn, 1, 6) Q8_CASE(fn, 2, 1) Q8_CASE(fn, 2, 2) Q8_CASE(fn, 2, 3)                      \
	default:                                                                                            \
		break;                                                                                      \
	}
#define Q8_CASES_512(fn)                                                                                    \
	switch (MR * 16 + NR) {                                                                             \
		Q8_CASE(fn, 1, 1) Q8_CASE(fn, 1, 2) Q8_CASE(fn, 1, 3) Q8_CASE(fn, 1, 4) Q8_CASE(fn, 1, 5)    \
		Q8_CASE(fn, 1, 6) Q8_CASE(fn, 1, 7) Q8_CASE(fn, 2, 1) Q8_CASE(fn, 2, 2) Q8_CASE(fn, 2, 3)    \
		Q8_CASE(fn, 2, 4) Q8_CASE(fn, 2, 5) Q8_CASE(fn, 2, 6) Q8_CASE(fn, 2, 7) Q8_CASE(fn, 3, 1)    \
		Q8_CASE(fn, 3, 2) Q8_CASE(fn, 3, 3) Q8_CASE(fn, 3, 4) Q8_CASE(fn, 3, 5) Q8_CASE(fn, 3, 6)    \
		Q8_CASE(fn, 3, 7) Q8_CASE(fn, 4, 1)                                                         \
		Q8_CASE(fn, 4, 2) Q8_CASE(fn, 4, 3) Q8_CASE(fn, 4, 4) Q8_CASE(fn, 4, 5) Q8_CASE(fn, 4, 6)    \
		Q8_CASE(fn, 4, 7)                                                                           \
	default:                                                                                            \
		break;                                                                                      \
	}

static void
q8_tile_generic(const struct q8_args *a, unsigned MR, unsigned NR)
{
	for (unsigned m = 0; m < MR; m++)
		for (unsigned j = 0; j < NR; j++) {
			int32_t acc[16] = { 0 };
			const int8_t *w = a->w + m * a->wstride;
			for (unsigned k = a->k0; k < a->k1; k++) {
				const uint8_t *x = a->x + ((size_t)a->koff[k] + (size_t)j * a->sw) * 4;
				const int8_t *wk = w + (size_t)k * 64;
				for (unsigned r = 0; r < 16; r++)
					acc[r] += x[0] * wk[r * 4] + x[1] * wk[r * 4 + 1] + x[2] * wk[r * 4 + 2] +
					          x[3] * wk[r * 4 + 3];
			}
			q8_store(a, m, j, acc);
		}
}

#ifdef Q8_HAVE_X86
#pragma GCC push_options
#pragma GCC target("avx2,fma")
static inline __attribute__((always_inline)) void
q8_tile_avx2_k(const struct q8_args *a, const unsigned MR, const unsigned NR)
{
	__m256i acc[2][6][2];
	const __m256i ones = _mm256_set1_epi16(1);

	for (unsigned m = 0; m < MR; m++)
		for (unsigned j = 0; j < NR; j++)
			acc[m][j][0] = acc[m][j][1] = _mm256_setzero_si256();
	for (unsigned k = a->k0; k < a->k1; k++) {
		__m256i w[2][2];
		for (unsigned m = 0; m < MR; m++) {
			const int8_t *wp = a->w + m * a->wstride + (size_t)k * 64;
			w[m][0] = _mm256_load_si256((const __m256i *)wp);
			w[m][1] = _mm256_load_si256((const __m256i *)(wp + 32));
		}
		for (unsigned j = 0; j < NR; j++) {
			__m256i xb = _mm256_set1_epi32((int)q8_word(a, k, j));
			for (unsigned m = 0; m < MR; m++)
				for (unsigned h = 0; h < 2; h++)
					acc[m][j][h] = _mm256_add_epi32(
						acc[m][j][h], _mm256_madd_epi16(_mm256_maddubs_epi16(xb, w[m][h]), ones));
		}
	}
	for (unsigned m = 0; m < MR; m++)
		for (unsigned j = 0; j < NR; j++) {
			int32_t t[16];
			_mm256_storeu_si256((__m256i *)t, acc[m][j][0]);
			_mm256_storeu_si256((__m256i *)(t + 8), acc[m][j][1]);
			q8_store(a, m, j, t);
		}
}

static void
q8_tile_avx2(const struct q8_args *a, unsigned MR, unsigned NR)
{
	Q8_CASES_6(q8_tile_avx2_k)
	abort();
}
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,fma")
/* Requantisation in registers: (acc - comp) * mult + bias (+ ReLU) for 16
 * channels at once, then each channel's NR neighbours stored (NCHW). */
static inline __attribute__((always_inline)) void
q8_store_512(const struct q8_args *a, const unsigned MR, const unsigned NR, __m512i acc[4][7])
{
	const __m512 zero = _mm512_setzero_ps();

#pragma GCC unroll 4
	for (unsigned m = 0; m < MR; m++) {
		float t[7][16];
		unsigned rows = a->rows > m * 16 ? a->rows - m * 16 : 0;
		const __m512i comp = _mm512_loadu_si512((const void *)(a->comp + m * 16));
		const __m512 mult = _mm512_loadu_ps(a->mult + m * 16), bias = _mm512_loadu_ps(a->bias + m * 16);
		if (rows > 16)
			rows = 16;
#pragma GCC unroll 7
		for (unsigned j = 0; j < NR; j++) {
			__m512 v = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(acc[m][j], comp)), mult, bias);
			if (a->relu)
				v = _mm512_max_ps(v, zero);
			_mm512_storeu_ps(t[j], v);
		}
		for (unsigned r = 0; r < rows; r++) {
			float *o = a->out + (size_t)(m * 16 + r) * a->out_stride;
			for (unsigned j = 0; j < NR; j++)
				o[j] = t[j][r];
		}
	}
}

static inline __attribute__((always_inline)) void
q8_tile_avx512_k(const struct q8_args *a, const unsigned MR, const unsigned NR)
{
	__m512i acc[4][7];
	const __m512i ones = _mm512_set1_epi16(1);

#pragma GCC unroll 4
	for (unsigned m = 0; m < MR; m++)
#pragma GCC unroll 7
		for (unsigned j = 0; j < NR; j++)
			acc[m][j] = _mm512_setzero_si512();
	for (unsigned k = a->k0; k < a->k1; k++) {
		__m512i w[4];
#pragma GCC unroll 4
		for (unsigned m = 0; m < MR; m++)
			w[m] = _mm512_load_si512((const void *)(a->w + m * a->wstride + (size_t)k * 64));
#pragma GCC unroll 7
		for (unsigned j = 0; j < NR; j++) {
			__m512i xb = _mm512_set1_epi32((int)q8_word(a, k, j));
#pragma GCC unroll 4
			for (unsigned m = 0; m < MR; m++)
			{
				/* in asm: see q8_tile_vnni_k */
				__m512i t;
				__asm__("vpmaddubsw %[w], %[x], %[t]\n\t"
				        "vpmaddwd %[ones], %[t], %[t]\n\t"
				        "vpaddd %[t], %[acc], %[acc]"
				        : [acc] "+v"(acc[m][j]), [t] "=&v"(t)
				        : [x] "v"(xb), [w] "v"(w[m]), [ones] "v"(ones));
			}
		}
	}
	q8_store_512(a, MR, NR, acc);
}
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,fma")
static inline __attribute__((always_inline)) void
q8_tile_vnni_k(const struct q8_args *a, const unsigned MR, const unsigned NR)
{
	__m512i acc[4][7];

#pragma GCC unroll 4
	for (unsigned m = 0; m < MR; m++)
#pragma GCC unroll 7
		for (unsigned j = 0; j < NR; j++)
			acc[m][j] = _mm512_setzero_si512();
	for (unsigned k = a->k0; k < a->k1; k++) {
		__m512i w[4];
#pragma GCC unroll 4
		for (unsigned m = 0; m < MR; m++)
			w[m] = _mm512_load_si512((const void *)(a->w + m * a->wstride + (size_t)k * 64));
#pragma GCC unroll 7
		for (unsigned j = 0; j < NR; j++) {
			__m512i xb = _mm512_set1_epi32((int)q8_word(a, k, j));
#pragma GCC unroll 4
			for (unsigned m = 0; m < MR; m++)
				/* in asm: GCC 12 keeps the accumulators of
				 * _mm512_dpbusd_epi32 in a stack array as well as in
				 * registers, storing every one on every k (half the
				 * speed); the asm leaves them in registers */
				__asm__("vpdpbusd %2, %1, %0" : "+v"(acc[m][j]) : "v"(xb), "v"(w[m]));
		}
	}
	q8_store_512(a, MR, NR, acc);
}
#pragma GCC pop_options


#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,fma")
static void
q8_tile_avx512(const struct q8_args *a, unsigned MR, unsigned NR)
{
	Q8_CASES_512(q8_tile_avx512_k)
	abort();
}
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,fma")
static void
q8_tile_vnni(const struct q8_args *a, unsigned MR, unsigned NR)
{
	Q8_CASES_512(q8_tile_vnni_k)
	abort();
}
#pragma GCC pop_options
#endif

#ifdef Q8_HAVE_DOTPROD
#pragma GCC push_options
#pragma GCC target("arch=armv8.2-a+dotprod")
/* sdot: lane i of a q register gets the dot product of the 4 bytes of
 * channel 4q+i (the packing's 16 x 4 bytes are 4 q registers) with the
 * position's word, broadcast. MR * NR * 4 accumulators, 4 * MR weights. */
static inline __attribute__((always_inline)) void
q8_tile_dot_k(const struct q8_args *a, const unsigned MR, const unsigned NR)
{
	int32x4_t acc[2][6][4];

	for (unsigned m = 0; m < MR; m++)
		for (unsigned j = 0; j < NR; j++)
			for (unsigned h = 0; h < 4; h++)
				acc[m][j][h] = vdupq_n_s32(0);
	for (unsigned k = a->k0; k < a->k1; k++) {
		int8x16_t w[2][4];
		for (unsigned m = 0; m < MR; m++)
			for (unsigned h = 0; h < 4; h++)
				w[m][h] = vld1q_s8(a->w + m * a->wstride + (size_t)k * 64 + h * 16);
		for (unsigned j = 0; j < NR; j++) {
			int8x16_t xb = vreinterpretq_s8_u32(vdupq_n_u32(q8_word(a, k, j)));
			for (unsigned m = 0; m < MR; m++)
				for (unsigned h = 0; h < 4; h++)
					acc[m][j][h] = vdotq_s32(acc[m][j][h], w[m][h], xb);
		}
	}
	for (unsigned m = 0; m < MR; m++)
		for (unsigned j = 0; j < NR; j++) {
			int32_t t[16];
			for (unsigned h = 0; h < 4; h++)
				vst1q_s32(t + h * 4, acc[m][j][h]);
			q8_store(a, m, j, t);
		}
}

static void
q8_tile_dot(const struct q8_args *a, unsigned MR, unsigned NR)
{
	Q8_CASES_6(q8_tile_dot_k)
	abort();
}
#pragma GCC pop_options
#endif

typedef void q8_tile_fn(const struct q8_args *a, unsigned MR, unsigned NR);

struct q8_isa {
	q8_tile_fn *tile;
	unsigned max_mr, max_nr, budget; /* budget: MR * NR at most */
	const char *name;
};

static const struct q8_isa q8_isas[] = {
#ifdef Q8_HAVE_X86
	{ q8_tile_vnni, 4, 7, 28, "avx512vnni" },
	{ q8_tile_avx512, 4, 7, 21, "avx512" },
	{ q8_tile_avx2, 2, 6, 6, "avx2" },
#endif
#ifdef Q8_HAVE_DOTPROD
	{ q8_tile_dot, 2, 6, 6, "neondot" },
#endif
	{ q8_tile_generic, 4, 14, 56, "generic" },
};
#define N_Q8_ISAS (sizeof(q8_isas) / sizeof(q8_isas[0]))

static bool
q8_cpu_runs(const struct q8_isa *is)
{
#ifdef Q8_HAVE_X86
	__builtin_cpu_init();
	if (is->tile == q8_tile_vnni)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
	if (is->tile == q8_tile_avx512)
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
		       __builtin_cpu_supports("avx512vl");
	if (is->tile == q8_tile_avx2)
		return __builtin_cpu_supports("avx2");
#endif
#ifdef Q8_HAVE_DOTPROD
	if (is->tile == q8_tile_dot)
		return (getauxval(AT_HWCAP) & HWCAP_ASIMDDP) != 0;
#endif
	(void)is;
	return true;
}

static const struct q8_isa *q8_chosen;

static const struct q8_isa *
q8_isa(void)
{
	const struct q8_isa *is = __atomic_load_n(&q8_chosen, __ATOMIC_ACQUIRE);

	if (is == NULL) {
		/* the best this CPU runs, or as $GEARBOX_KERNEL_ISA says for the
		 * float kernels ("avx512" takes avx512vnni or avx512) when it runs */
		const char *wanted = getenv("GEARBOX_KERNEL_ISA");
		size_t i = 0;
		while (i + 1 < N_Q8_ISAS && !q8_cpu_runs(&q8_isas[i]))
			i++;
		for (size_t k = i; wanted != NULL && k < N_Q8_ISAS; k++)
			if (strncmp(q8_isas[k].name, wanted, strlen(wanted)) == 0 && q8_cpu_runs(&q8_isas[k])) {
				i = k;
				break;
			}
		is = &q8_isas[i];
		__atomic_store_n(&q8_chosen, is, __ATOMIC_RELEASE);
	}
	return is;
}

const char *
dnn_q8_isa(void)
{
	return q8_isa()->name;
}

int
dnn_q8_use_isa(const char *name)
{
	for (size_t i = 0; i < N_Q8_ISAS; i++)
		if (strcmp(q8_isas[i].name, name) == 0 && q8_cpu_runs(&q8_isas[i])) {
			__atomic_store_n(&q8_chosen, &q8_isas[i], __ATOMIC_RELEASE);
			return 0;
		}
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Running. */

#ifdef Q8_HAVE_X86
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl")
/* One row of a whole quad, 16 positions at a time: the same arithmetic as
 * dnn_q8_activation (a product, then the sum: no FMA), four channels packed
 * into each position's word. */
static void
quantise_quad_row_avx512(const float *const src[4], unsigned W, float inv, int zp, uint8_t *dst)
{
	const __m512 vinv = _mm512_set1_ps(inv), vzp = _mm512_set1_ps((float)zp), lo = _mm512_setzero_ps();
	const __m512 hi = _mm512_set1_ps(127.0f), half = _mm512_set1_ps(0.5f);
	unsigned x = 0;

	/* the last (or only: the 7- and 14-wide maps) piece under a mask: the
	 * scalar tail had taken a quarter of an all-int8 inference */
	for (; x < W; x += 16) {
		__mmask16 live = W - x >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (W - x)) - 1);
		__m512i word = _mm512_setzero_si512();
		for (unsigned j = 0; j < 4; j++) {
			__m512 v = _mm512_add_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(live, src[j] + x), vinv), vzp);
			v = _mm512_min_ps(_mm512_max_ps(v, lo), hi); /* max(NaN, 0) is 0 */
			word = _mm512_or_si512(word, _mm512_slli_epi32(_mm512_cvttps_epi32(_mm512_add_ps(v, half)), 8 * j));
		}
		_mm512_mask_storeu_epi32((void *)(dst + (size_t)x * 4), live, word);
	}
}
#pragma GCC pop_options
#endif

#ifdef Q8_HAVE_X86
static bool q8_wide_quantise(void);
#endif

/* Quantise input quads [0, quads) into the padded buffer; the border and the
 * channels past a segment's end hold the zero point (their weights are 0). */
static void
quantise_input(const struct dnn_layer *l, const struct dnn_q8 *q, const float *in, unsigned quads, float scale,
               int zp, uint8_t *pad)
{
	float inv = 1.0f / scale;
	size_t plane = (size_t)q->pad_h * q->pad_w;
	unsigned H = l->in_h, W = l->in_w;

	memset(pad, zp, (size_t)quads * plane * 4);
	for (unsigned Q = 0; Q < quads; Q++) {
		unsigned s = Q / q->seg_q, c0 = s * q->seg_c + (Q % q->seg_q) * 4;
		unsigned n = q->seg_c - (Q % q->seg_q) * 4 < 4 ? q->seg_c - (Q % q->seg_q) * 4 : 4;
		uint8_t *dst = pad + ((size_t)Q * plane + (size_t)l->ph * q->pad_w + l->pw) * 4;
#ifdef Q8_HAVE_X86
		if (n == 4 && q8_wide_quantise()) {
			for (unsigned y = 0; y < H; y++) {
				const float *src[4];
				for (unsigned j = 0; j < 4; j++)
					src[j] = in + (size_t)(c0 + j) * H * W + (size_t)y * W;
				quantise_quad_row_avx512(src, W, inv, zp, dst + (size_t)y * q->pad_w * 4);
			}
			continue;
		}
#endif
		for (unsigned j = 0; j < n; j++) {
			const float *src = in + (size_t)(c0 + j) * H * W;
			for (unsigned y = 0; y < H; y++)
				for (unsigned x = 0; x < W; x++)
					dst[((size_t)y * q->pad_w + x) * 4 + j] = dnn_q8_activation(src[(size_t)y * W + x], inv, zp);
		}
	}
}

#ifdef Q8_HAVE_X86
/* The 512-bit tiles are chosen: their CPU runs the AVX-512 quantisation. */
static bool
q8_wide_quantise(void)
{
	const struct q8_isa *is = q8_isa();
	return is->tile == q8_tile_vnni || is->tile == q8_tile_avx512;
}
#endif

void
dnn_q8_conv2d(const struct dnn_op *op, unsigned part, unsigned parts)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_q8 *q = l->q8;
	const struct dnn_block *blocks = op->plan->blocks;
	const struct q8_isa *is = q8_isa();
	unsigned nb = op->plan->nblocks, OH = l->out_h, OW = l->out_w;
	unsigned nr = OW < is->max_nr ? OW : is->max_nr, mr;
	size_t N = (size_t)OH * OW, first, last, total = 0, base = 0;
	uint8_t *pad;
	struct {
		unsigned p0, p1, mr, chunks, row_chunks;
		size_t items;
	} work[DNN_MAX_GROUPS];

	if (q == NULL) {
		dnn_f32_conv2d_gemm_fused(op, part, parts);
		return;
	}
	if (nr > is->budget)
		nr = is->budget;
	/* row chunks of balanced widths (14 = 5+5+4, not 6+6+2) */
	nr = (OW + (OW + nr - 1) / nr - 1) / ((OW + nr - 1) / nr);
	mr = is->budget / nr < is->max_mr ? is->budget / nr : is->max_mr;
	for (unsigned b = 0; b < nb; b++) {
		unsigned p0 = 0, p1;
		while (p0 < q->ntiles && q->tile_row0[p0] < blocks[b].row0)
			p0++;
		p1 = p0;
		while (p1 < q->ntiles && q->tile_row0[p1] < blocks[b].row1)
			p1++;
		work[b].p0 = p0;
		work[b].p1 = p1;
		work[b].mr = mr;
		for (unsigned p = p0; p < p1; p++)
			if (q->tile_rows[p] != 16)
				work[b].mr = 1;
		work[b].chunks = (p1 - p0 + work[b].mr - 1) / work[b].mr;
		work[b].row_chunks = (OW + nr - 1) / nr;
		work[b].items = (size_t)work[b].chunks * OH * work[b].row_chunks;
		total += work[b].items;
	}
	dnn_share(total, part, parts, 1, &first, &last);
	if (first >= last)
		return;
	pad = (uint8_t *)op->col + pad_bytes(q) * part;
	{
		/* the quads the widest block reads */
		unsigned ch1 = blocks[nb - 1].ch1;
		unsigned quads = (ch1 / q->seg_c) * q->seg_q;
		quantise_input(l, q, op->in, quads, op->q_scale, op->q_zp, pad);
	}
	for (unsigned b = 0; b < nb; b++) {
		const struct dnn_block *bk = &blocks[b];
		size_t lo = first > base ? first - base : 0, hi = last - base < work[b].items ? last - base : work[b].items;
		/* weight quads of the block's channels, from the block's first weight channel */
		unsigned q0 = (bk->ch0 - bk->wch0) / q->seg_c * q->seg_q, q1 = (bk->ch1 - bk->wch0) / q->seg_c * q->seg_q;
		unsigned in_q0 = bk->wch0 / q->seg_c * q->seg_q;
		unsigned c0 = bk->ch0 - bk->wch0, c1 = bk->ch1 - bk->wch0, made = UINT32_MAX;
		float mult[64], bias[64];
		int32_t comp[64];
		for (size_t i = lo; i < hi && last > base; i++) {
			unsigned rc = (unsigned)(i % work[b].row_chunks), oy = (unsigned)(i / work[b].row_chunks % OH);
			unsigned chunk = (unsigned)(i / work[b].row_chunks / OH);
			unsigned p = work[b].p0 + chunk * work[b].mr;
			unsigned panels = work[b].p1 - p < work[b].mr ? work[b].p1 - p : work[b].mr;
			unsigned ox = rc * nr, n = OW - ox < nr ? OW - ox : nr;
			unsigned row0 = q->tile_row0[p];
			unsigned rows = q->tile_row0[p + panels - 1] + q->tile_rows[p + panels - 1] - row0;
			/* the chunk's channels' factors, once per chunk (items go row by row
			 * through one chunk); zero past its rows, read 16 at a time */
			for (unsigned r = 0; r < 64 && made != p; r++) {
				unsigned o = row0 + r;
				const int32_t *cs = q->csum + (size_t)o * (q->cw + 1);
				mult[r] = r < rows ? op->q_scale * q->wscale[o] : 0.0f;
				bias[r] = r < rows && l->bias != NULL ? l->bias[o] : 0.0f;
				comp[r] = r < rows ? op->q_zp * (cs[c1] - cs[c0]) : 0;
			}
			made = p;
			struct q8_args a = {
				.w = q->w + (size_t)p * q->kq * 64,
				.wstride = (size_t)q->kq * 64,
				.koff = q->koff,
				.x = pad + (((size_t)in_q0 * q->pad_h + (size_t)oy * l->sh) * q->pad_w + (size_t)ox * l->sw) * 4,
				.sw = l->sw,
				.k0 = q0 * q->kk,
				.k1 = q1 * q->kk,
				.out = op->out + (size_t)row0 * N + (size_t)oy * OW + ox,
				.out_stride = N,
				.rows = rows,
				.relu = op->relu,
				.mult = mult,
				.bias = bias,
				.comp = comp,
			};
			is->tile(&a, panels, n);
		}
		base += work[b].items;
	}
}
