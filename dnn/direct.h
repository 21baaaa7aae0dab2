/* SPDX-License-Identifier: MIT */
/* Private to dnn/: what the direct convolution (kernels_direct.c) hands one
 * register tile of one instruction set (direct_body.h for the vector-extension
 * builds, kernels_neon.c for the NEON intrinsics). */
#ifndef GEARBOX_DNN_DIRECT_H
#define GEARBOX_DNN_DIRECT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct direct_tile_args {
	const float *w;     /* panel of the first tile, at column 0 */
	size_t wstride;     /* floats from one tile's panel to the next */
	const float *bias;  /* 16 * MR */
	const int32_t *koff;
	const float *x;     /* padded input at the tile's first position */
	unsigned k0, k1;    /* weight columns to sum over */
	float *out;         /* output of the first channel, first position */
	size_t out_stride;  /* floats between channels */
	unsigned rows;      /* valid channels of the MR * 16 */
	bool relu;
	/* NHWC and blocked layouts (out_step > 0; 0: NCHW as above): input
	 * positions xstep floats apart; output channel row0 + r of position j at
	 * out + base(row0 + r) + j * out_step, base(c) = c (out_B == 0, NHWC) or
	 * (c / out_B) * out_HW * out_B + c % out_B (blocked). */
	size_t xstep, out_step, out_HW;
	unsigned out_B, row0;
};

/* One tile of MR panels of 16 output channels by NR positions of a row:
 * NR <= 14, MR in {1, 2, 4}, MR * NR within the instruction set's budget of
 * 16-float accumulators. */
typedef void direct_tile_fn(const struct direct_tile_args *a, unsigned MR, unsigned NR);

/* One row tile (direct_body.h): RB output channels (of the panel at w) by NV
 * vector registers of consecutive positions of one output row, of which the
 * first n are stored; NCHW in and out, `rows` the channels to store. */
typedef void direct_row_fn(const struct direct_tile_args *a, unsigned RB, unsigned NV, unsigned n);

/* The NEON tiles: 32 128-bit registers on AArch64 hold 24 accumulators
 * (6 x 16 floats) beside the weights; 16 on 32-bit Arm hold 12 (3 x 16). */
#if defined(__aarch64__)
#define DIRECT_NEON_BUDGET 6
#else
#define DIRECT_NEON_BUDGET 3
#endif
direct_tile_fn dnn_direct_tile_neon;

#endif
