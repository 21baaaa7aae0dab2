/* SPDX-License-Identifier: MIT */
/* NEON kernels (arm_neon.h intrinsics) for the fast family: the direct
 * convolution's register tiles, pooling, ReLU and the bias + ReLU epilogue of
 * the im2col + BLAS convolution.
 *
 * Built only for Arm (configure's HAVE_NEON). On 32-bit Arm this file alone is
 * compiled with -mfpu=neon (armhf's baseline is VFPv3-D16, without NEON), so
 * nothing here may run before dnn_isa_runs(DNN_ISA_NEON) said yes
 * (getauxval(AT_HWCAP) & HWCAP_ARM_NEON); kernels_direct.c chooses. AArch64
 * always has Advanced SIMD and fused multiply-add; 32-bit NEON multiplies and
 * adds in two roundings (VMLA), which the kernel tests' normalised error
 * allows for.
 *
 * No integer kernels exist (the models are fp32), so the dot-product
 * extension (asimddp, SDOT/UDOT: int8) has nothing to speed up here. */
#include "config.h"

#include <arm_neon.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/direct.h"
#include "dnn/kernels.h"

#if defined(__aarch64__)
#define MLA_N(acc, w, x) vfmaq_n_f32((acc), (w), (x))
#else
#define MLA_N(acc, w, x) vmlaq_n_f32((acc), (w), (x))
#endif

/* ------------------------------------------------------------------------ */
/* Direct convolution: one tile of MR panels (16 channels: 4 q registers each)
 * by NR positions; MR * NR * 4 accumulators stay in registers. */

static inline __attribute__((always_inline)) void
neon_tile(const struct direct_tile_args *a, const unsigned MR, const unsigned NR)
{
	float32x4_t acc[4][14][4];

	for (unsigned m = 0; m < MR; m++) {
		float32x4_t b[4];
#pragma GCC unroll 4
		for (unsigned q = 0; q < 4; q++)
			b[q] = vld1q_f32(a->bias + (size_t)m * 16 + 4 * q);
#pragma GCC unroll 14
		for (unsigned j = 0; j < NR; j++)
#pragma GCC unroll 4
			for (unsigned q = 0; q < 4; q++)
				acc[m][j][q] = b[q];
	}
	for (unsigned k = a->k0; k < a->k1; k++) {
		const float *x = a->x + a->koff[k];
		float32x4_t w[4][4];
#pragma GCC unroll 4
		for (unsigned m = 0; m < MR; m++)
#pragma GCC unroll 4
			for (unsigned q = 0; q < 4; q++)
				w[m][q] = vld1q_f32(a->w + (size_t)m * a->wstride + (size_t)k * 16 + 4 * q);
#pragma GCC unroll 14
		for (unsigned j = 0; j < NR; j++) {
			float xj = x[j];
#pragma GCC unroll 4
			for (unsigned m = 0; m < MR; m++)
#pragma GCC unroll 4
				for (unsigned q = 0; q < 4; q++)
					acc[m][j][q] = MLA_N(acc[m][j][q], w[m][q], xj);
		}
	}
	const float32x4_t zero = vdupq_n_f32(0.0f);
	for (unsigned m = 0; m < MR; m++) {
		float t[14][16];
		unsigned rows = a->rows > m * 16 ? a->rows - m * 16 : 0;
		if (rows > 16)
			rows = 16;
#pragma GCC unroll 14
		for (unsigned j = 0; j < NR; j++)
#pragma GCC unroll 4
			for (unsigned q = 0; q < 4; q++)
				vst1q_f32(t[j] + 4 * q, a->relu ? vmaxq_f32(acc[m][j][q], zero) : acc[m][j][q]);
		/* Channel-major output: each of the 16 channels gets NR neighbours. */
		for (unsigned r = 0; r < rows; r++) {
			float *o = a->out + (size_t)(m * 16 + r) * a->out_stride;
			for (unsigned j = 0; j < NR; j++)
				o[j] = t[j][r];
		}
	}
}

/* The instance with constant MR and NR (so the accumulators stay in
 * registers); MR * NR <= DIRECT_NEON_BUDGET, as direct_shape() asks. */
void
dnn_direct_tile_neon(const struct direct_tile_args *a, unsigned MR, unsigned NR)
{
#define NEON_CASE(mr, nr)                                                 \
	case (mr) * 16 + (nr):                                            \
		if ((mr) * (nr) <= DIRECT_NEON_BUDGET) {                  \
			neon_tile(a, (mr), (nr));                         \
			return;                                           \
		}                                                         \
		break;
#define NEON_CASES(mr)                                                                              \
	NEON_CASE(mr, 1) NEON_CASE(mr, 2) NEON_CASE(mr, 3) NEON_CASE(mr, 4) NEON_CASE(mr, 5)        \
	NEON_CASE(mr, 6) NEON_CASE(mr, 7) NEON_CASE(mr, 8) NEON_CASE(mr, 9) NEON_CASE(mr, 10)       \
	NEON_CASE(mr, 11) NEON_CASE(mr, 12) NEON_CASE(mr, 13) NEON_CASE(mr, 14)
	switch (MR * 16 + NR) {
		NEON_CASES(1)
		NEON_CASES(2)
		NEON_CASES(3) /* the last chunk of a block of 4k + 3 panels */
		NEON_CASES(4)
	default:
		break;
	}
#undef NEON_CASES
#undef NEON_CASE
	abort(); /* never reached: direct_shape() keeps within the budget */
}

/* ------------------------------------------------------------------------ */
/* Epilogue: out[rows, n0..n1) += bias, then ReLU when asked. */

static void
epilogue_neon(const struct dnn_layer *l, float *out, size_t N, unsigned row0, unsigned row1, size_t n0, size_t n1,
              bool relu)
{
	const float32x4_t zero = vdupq_n_f32(0.0f);

	if (l->bias == NULL && !relu)
		return;
	for (unsigned o = row0; o < row1; o++) {
		float b = l->bias != NULL ? l->bias[o] : 0.0f;
		float32x4_t bv = vdupq_n_f32(b);
		float *row = out + (size_t)o * N;
		size_t n = n0;
		for (; n + 8 <= n1; n += 8) {
			float32x4_t v0 = vaddq_f32(vld1q_f32(row + n), bv), v1 = vaddq_f32(vld1q_f32(row + n + 4), bv);
			if (relu) {
				v0 = vmaxq_f32(v0, zero);
				v1 = vmaxq_f32(v1, zero);
			}
			vst1q_f32(row + n, v0);
			vst1q_f32(row + n + 4, v1);
		}
		for (; n + 4 <= n1; n += 4) {
			float32x4_t v = vaddq_f32(vld1q_f32(row + n), bv);
			vst1q_f32(row + n, relu ? vmaxq_f32(v, zero) : v);
		}
		for (; n < n1; n++) {
			float v = row[n] + b;
			row[n] = relu && v < 0.0f ? 0.0f : v;
		}
	}
}

void
dnn_f32_conv2d_gemm_fused_neon(const struct dnn_op *op, unsigned part, unsigned parts)
{
	dnn_conv_gemm(op, part, parts, true, epilogue_neon);
}

/* ------------------------------------------------------------------------ */
/* Pooling rows. VLD2 splits 8 floats into their even and odd lanes, which is
 * the stride-2 window pair. */

static void
max_2x2s2_neon(const float *r0, const float *r1, float *out, unsigned out_w)
{
	unsigned ox = 0;

	for (; ox + 4 <= out_w; ox += 4) {
		float32x4x2_t a = vld2q_f32(r0 + 2 * ox), b = vld2q_f32(r1 + 2 * ox);
		vst1q_f32(out + ox, vmaxq_f32(vmaxq_f32(a.val[0], a.val[1]), vmaxq_f32(b.val[0], b.val[1])));
	}
	for (; ox < out_w; ox++) {
		float a = r0[2 * ox] > r0[2 * ox + 1] ? r0[2 * ox] : r0[2 * ox + 1];
		float b = r1[2 * ox] > r1[2 * ox + 1] ? r1[2 * ox] : r1[2 * ox + 1];
		out[ox] = a > b ? a : b;
	}
}

static void
reduce_rows_neon(const float *in, unsigned W, unsigned rows, float *acc, bool max)
{
	memcpy(acc, in, W * sizeof(float));
	for (unsigned r = 1; r < rows; r++) {
		const float *row = in + (size_t)r * W;
		unsigned x = 0;
		for (; x + 4 <= W; x += 4) {
			float32x4_t a = vld1q_f32(acc + x), v = vld1q_f32(row + x);
			vst1q_f32(acc + x, max ? vmaxq_f32(a, v) : vaddq_f32(a, v));
		}
		for (; x < W; x++)
			acc[x] = max ? (row[x] > acc[x] ? row[x] : acc[x]) : acc[x] + row[x];
	}
}

static void
reduce_cols_neon(const struct dnn_layer *l, const float *acc, float *out, bool max)
{
	float scale = max ? 1.0f : 1.0f / (float)(l->kh * l->kw);
	unsigned ox = 0;

	if (l->kw == 2 && l->sw == 2) {
		for (; ox + 4 <= l->out_w; ox += 4) {
			float32x4x2_t p = vld2q_f32(acc + 2 * ox);
			vst1q_f32(out + ox, max ? vmaxq_f32(p.val[0], p.val[1])
			                        : vmulq_n_f32(vaddq_f32(p.val[0], p.val[1]), scale));
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

static const struct dnn_pool_rows neon_rows = { max_2x2s2_neon, reduce_rows_neon, reduce_cols_neon };

void
dnn_f32_maxpool_neon(const struct dnn_op *op, unsigned part, unsigned parts)
{
	dnn_pool_by_rows(op, part, parts, true, &neon_rows);
}

void
dnn_f32_avgpool_neon(const struct dnn_op *op, unsigned part, unsigned parts)
{
	dnn_pool_by_rows(op, part, parts, false, &neon_rows);
}

/* ------------------------------------------------------------------------ */

void
dnn_f32_relu_neon(const struct dnn_op *op, unsigned part, unsigned parts)
{
	const float32x4_t zero = vdupq_n_f32(0.0f);
	size_t first, last, i;

	dnn_share(op->n, part, parts, 16, &first, &last);
	for (i = first; i + 16 <= last; i += 16) {
		float32x4_t v0 = vld1q_f32(op->in + i), v1 = vld1q_f32(op->in + i + 4);
		float32x4_t v2 = vld1q_f32(op->in + i + 8), v3 = vld1q_f32(op->in + i + 12);
		vst1q_f32(op->out + i, vmaxq_f32(v0, zero));
		vst1q_f32(op->out + i + 4, vmaxq_f32(v1, zero));
		vst1q_f32(op->out + i + 8, vmaxq_f32(v2, zero));
		vst1q_f32(op->out + i + 12, vmaxq_f32(v3, zero));
	}
	for (; i + 4 <= last; i += 4)
		vst1q_f32(op->out + i, vmaxq_f32(vld1q_f32(op->in + i), zero));
	for (; i < last; i++)
		op->out[i] = op->in[i] > 0.0f ? op->in[i] : 0.0f;
}
