/* SPDX-License-Identifier: MIT */
/* The body of the direct convolution for one instruction set; included by
 * kernels_direct.c once per target with DIRECT_ISA (the name suffix) and
 * DIRECT_BUDGET (how many 16-float accumulators fit in registers) and
 * DIRECT_VBYTES (the width of its vector registers in bytes) defined,
 * under a `#pragma GCC target` where the target is not the baseline.
 *
 * A tile is MR blocks of 16 output channels by NR output positions along one
 * output row. For every weight column k, MR weight vectors (packed, 16
 * channels each) meet NR input values broadcast from the zero-padded input at
 * koff[k]: MR * NR fused multiply-adds per k, all in registers. */

#define DIRECT_CAT2(a, b) a##_##b
#define DIRECT_CAT(a, b) DIRECT_CAT2(a, b)
#define DIRECT_NAME(name) DIRECT_CAT(name, DIRECT_ISA)

typedef float DIRECT_NAME(vf) __attribute__((vector_size(DIRECT_VBYTES)));
typedef int32_t DIRECT_NAME(vi) __attribute__((vector_size(DIRECT_VBYTES)));
#define DIRECT_VF DIRECT_NAME(vf)
#define DIRECT_VI DIRECT_NAME(vi)
#define DIRECT_VL (DIRECT_VBYTES / 4) /* floats per register */
#define DIRECT_VN (16 / DIRECT_VL)    /* registers per 16 channels */

/* Vectors of the target's own register width: a wider GCC vector (16 floats
 * on AVX2) is lowered piecewise through the stack, which made the AVX2 tile
 * 3x slower than im2col + BLAS. A block of 16 channels is DIRECT_VN such
 * registers. */
static inline __attribute__((always_inline)) size_t
DIRECT_NAME(out_base)(const struct direct_tile_args *a, unsigned c)
{
	return a->out_B == 0 ? c : (size_t)(c / a->out_B) * a->out_HW * a->out_B + c % a->out_B;
}

static inline __attribute__((always_inline)) void
DIRECT_NAME(tile)(const struct direct_tile_args *a, const unsigned MR, const unsigned NR, const size_t XS)
{
	DIRECT_VF acc[4 * DIRECT_VN][14];
	const DIRECT_VF zero = { 0 };
	const unsigned R = MR * DIRECT_VN; /* register rows */

#pragma GCC unroll 16
	for (unsigned i = 0; i < R; i++) {
		DIRECT_VF b;
		memcpy(&b, a->bias + (size_t)i * DIRECT_VL, sizeof(b));
#pragma GCC unroll 14
		for (unsigned j = 0; j < NR; j++)
			acc[i][j] = b;
	}
	for (unsigned k = a->k0; k < a->k1; k++) {
		const float *x = a->x + a->koff[k];
		DIRECT_VF w[4 * DIRECT_VN];
#pragma GCC unroll 16
		for (unsigned i = 0; i < R; i++)
			w[i] = *(const DIRECT_VF *)(a->w + (size_t)(i / DIRECT_VN) * a->wstride + (size_t)k * 16 +
			                            (i % DIRECT_VN) * DIRECT_VL);
#pragma GCC unroll 14
		for (unsigned j = 0; j < NR; j++) {
			float xj = x[j * XS];
#pragma GCC unroll 16
			for (unsigned i = 0; i < R; i++)
				acc[i][j] += w[i] * xj;
		}
	}
	if (a->out_step != 0) {
		/* NHWC / blocked: a register's channels side by side at each
		 * position (whole registers where they fall in one block) */
		for (unsigned m = 0; m < MR; m++)
#pragma GCC unroll 4
			for (unsigned v = 0; v < DIRECT_VN; v++) {
				unsigned c = m * 16 + v * DIRECT_VL, abs = a->row0 + c;
				bool whole = c + DIRECT_VL <= a->rows &&
				             (a->out_B == 0 || abs % a->out_B + DIRECT_VL <= a->out_B);
				if (c >= a->rows)
					continue;
				for (unsigned j = 0; j < NR; j++) {
					DIRECT_VF y = acc[m * DIRECT_VN + v][j];
					float *o = a->out + (size_t)j * a->out_step;
					if (a->relu)
						y = (DIRECT_VF)((DIRECT_VI)y & (DIRECT_VI)(y > zero));
					if (whole) {
						memcpy(o + DIRECT_NAME(out_base)(a, abs), &y, sizeof(y));
					} else {
						float t[DIRECT_VL];
						memcpy(t, &y, sizeof(y));
						for (unsigned r = 0; r < DIRECT_VL && c + r < a->rows; r++)
							o[DIRECT_NAME(out_base)(a, abs + r)] = t[r];
					}
				}
			}
		return;
	}
	for (unsigned m = 0; m < MR; m++) {
		float t[14][16];
		unsigned rows = a->rows > m * 16 ? a->rows - m * 16 : 0;
		if (rows > 16)
			rows = 16;
#pragma GCC unroll 14
		for (unsigned j = 0; j < NR; j++) {
#pragma GCC unroll 4
			for (unsigned v = 0; v < DIRECT_VN; v++) {
				DIRECT_VF y = acc[m * DIRECT_VN + v][j];
				if (a->relu)
					y = (DIRECT_VF)((DIRECT_VI)y & (DIRECT_VI)(y > zero));
				memcpy(&t[j][v * DIRECT_VL], &y, sizeof(y));
			}
		}
		/* Channel-major output: each of the 16 channels gets NR neighbours. */
		for (unsigned r = 0; r < rows; r++) {
			float *o = a->out + (size_t)(m * 16 + r) * a->out_stride;
			for (unsigned j = 0; j < NR; j++)
				o[j] = t[j][r];
		}
	}
}

/* Dispatch to the instance with constant MR and NR (so the accumulators stay
 * in registers). NR <= 14, MR <= 4, MR * NR <= DIRECT_BUDGET. MR = 3 is the
 * last chunk of a block whose panels are not a multiple of 4 (AVX-512's
 * budget gives MR = 4 for rows of 7 or fewer). */
/* kernels_direct.c (DIRECT_LAYOUTS) also reads inputs in NHWC / blocked
 * layout, positions a->xstep apart; Winograd's tiles only NCHW. */
#ifdef DIRECT_LAYOUTS
#define DIRECT_CASE_RUN(mr, nr)                                   \
	if (a->xstep <= 1)                                        \
		DIRECT_NAME(tile)(a, (mr), (nr), 1);              \
	else                                                      \
		DIRECT_NAME(tile)(a, (mr), (nr), a->xstep);
#else
#define DIRECT_CASE_RUN(mr, nr) DIRECT_NAME(tile)(a, (mr), (nr), 1);
#endif
static void
DIRECT_NAME(tile_any)(const struct direct_tile_args *a, unsigned MR, unsigned NR)
{
#define DIRECT_CASE(mr, nr)                                               \
	case (mr) * 16 + (nr):                                            \
		if ((mr) * (nr) <= DIRECT_BUDGET) {                       \
			DIRECT_CASE_RUN(mr, nr)                           \
			return;                                           \
		}                                                         \
		break;
#define DIRECT_CASES(mr)                                                                                   \
	DIRECT_CASE(mr, 1) DIRECT_CASE(mr, 2) DIRECT_CASE(mr, 3) DIRECT_CASE(mr, 4) DIRECT_CASE(mr, 5)      \
	DIRECT_CASE(mr, 6) DIRECT_CASE(mr, 7) DIRECT_CASE(mr, 8) DIRECT_CASE(mr, 9) DIRECT_CASE(mr, 10)     \
	DIRECT_CASE(mr, 11) DIRECT_CASE(mr, 12) DIRECT_CASE(mr, 13) DIRECT_CASE(mr, 14)
	switch (MR * 16 + NR) {
		DIRECT_CASES(1)
		DIRECT_CASES(2)
		DIRECT_CASES(3)
		DIRECT_CASES(4)
	default:
		break;
	}
#undef DIRECT_CASES
#undef DIRECT_CASE
#undef DIRECT_CASE_RUN
	/* Never reached: direct_shape() only asks for shapes within budget. */
	abort();
}

#ifdef DIRECT_LAYOUTS
/* A row tile: RB output channels by NV registers of consecutive positions
 * along one output row, NCHW in and out. Where a block has few weight
 * columns (conv1 of the bundled model: one input channel, 9 columns) the
 * channel tile above spends more on writing its NR x 16 results out channel
 * by channel than on its 9 x MR x NR multiply-adds. Here every result
 * register is a run of one channel's row, stored whole, and each weight is
 * broadcast once per k for NV registers of input.
 *
 * The last register may reach up to VL - 1 positions past the row: those
 * lanes read the padded buffer beyond it (kernels_direct.c leaves room) and
 * are not stored: DIRECT_ROW_STORE_PART(dst, register, count) stores the
 * first count lanes (a masked store where the instruction set has one; a
 * scalar tail of 12 floats had cost as much as the multiply-adds). */
static inline __attribute__((always_inline)) void
DIRECT_NAME(row_tile)(const struct direct_tile_args *a, const unsigned RB, const unsigned NV, unsigned n)
{
	DIRECT_VF acc[DIRECT_ROW_RB_MAX][DIRECT_ROW_NV_MAX];
	const DIRECT_VF zero = { 0 };

#pragma GCC unroll 8
	for (unsigned i = 0; i < RB; i++)
#pragma GCC unroll 4
		for (unsigned v = 0; v < NV; v++)
			acc[i][v] = zero + a->bias[i];
	for (unsigned k = a->k0; k < a->k1; k++) {
		const float *x = a->x + a->koff[k], *w = a->w + (size_t)k * 16;
		DIRECT_VF xv[DIRECT_ROW_NV_MAX];
#pragma GCC unroll 4
		for (unsigned v = 0; v < NV; v++)
			memcpy(&xv[v], x + v * DIRECT_VL, sizeof(xv[v]));
#pragma GCC unroll 8
		for (unsigned i = 0; i < RB; i++)
#pragma GCC unroll 4
			for (unsigned v = 0; v < NV; v++)
				acc[i][v] += xv[v] * w[i];
	}
	for (unsigned i = 0; i < RB && i < a->rows; i++) {
		float *o = a->out + (size_t)i * a->out_stride;
#pragma GCC unroll 4
		for (unsigned v = 0; v < NV; v++) {
			DIRECT_VF y = acc[i][v];
			unsigned at = v * DIRECT_VL;
			if (a->relu)
				y = (DIRECT_VF)((DIRECT_VI)y & (DIRECT_VI)(y > zero));
			if (at + DIRECT_VL <= n) {
				memcpy(o + at, &y, sizeof(y));
			} else if (at < n) {
				DIRECT_ROW_STORE_PART(o + at, y, n - at);
			}
		}
	}
}

/* Dispatch to the instance with constant RB and NV (RB <= 8, NV <= 4,
 * RB * NV <= DIRECT_ROW_BUDGET). */
static void
DIRECT_NAME(row_tile_any)(const struct direct_tile_args *a, unsigned RB, unsigned NV, unsigned n)
{
#define DIRECT_ROW_CASE(rb, nv)                                   \
	case (rb) * 8 + (nv):                                     \
		if ((rb) * (nv) <= DIRECT_ROW_BUDGET) {           \
			DIRECT_NAME(row_tile)(a, (rb), (nv), n);  \
			return;                                   \
		}                                                 \
		break;
#define DIRECT_ROW_CASES(rb) \
	DIRECT_ROW_CASE(rb, 1) DIRECT_ROW_CASE(rb, 2) DIRECT_ROW_CASE(rb, 3) DIRECT_ROW_CASE(rb, 4)
	switch (RB * 8 + NV) {
		DIRECT_ROW_CASES(1)
		DIRECT_ROW_CASES(2)
		DIRECT_ROW_CASES(3)
		DIRECT_ROW_CASES(4)
		DIRECT_ROW_CASES(5)
		DIRECT_ROW_CASES(6)
		DIRECT_ROW_CASES(7)
		DIRECT_ROW_CASES(8)
	default:
		break;
	}
#undef DIRECT_ROW_CASES
#undef DIRECT_ROW_CASE
	/* Never reached: row_shape() only asks for shapes within budget. */
	abort();
}
#endif

#undef DIRECT_VN
#undef DIRECT_VL
#undef DIRECT_VI
#undef DIRECT_VF
#undef DIRECT_NAME
#undef DIRECT_CAT
#undef DIRECT_CAT2
