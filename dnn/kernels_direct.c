/* SPDX-License-Identifier: MIT */
/* Direct convolution on weights packed once at load.
 *
 * Why: at batch 1 the 3x3 layers of small maps (7x7, 14x14) are GEMMs of
 * 32-64 rows by 49-196 columns. im2col + sgemm spends as much time building
 * the column matrix and packing both operands per call as multiplying. Here
 * the weights are packed at load into 16-channel panels (every weight column
 * k holds 16 consecutive output channels), and the input is only copied into
 * a zero-padded buffer; each tile then runs from registers (direct_body.h).
 *
 * Nothing is packed per g: a tile covers 16 channels of one group segment,
 * and a block at g uses whole tiles and a prefix of weight columns (dense
 * layers over grouped input) or all of them (grouped, nested). Layers this
 * kernel does not cover (strided, pointwise, linear) take the im2col + BLAS
 * path. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#if defined(__arm__) || defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "dnn/direct.h"
#include "dnn/kernels.h"
#ifdef DNN_HAVE_X86_KERNELS
#include <immintrin.h> /* the row tiles' masked stores */
#endif


/* Weights of one layer in 16-channel panels. */
struct dnn_packed {
	unsigned ntiles;
	unsigned *tile_row0; /* first output channel of each tile */
	unsigned *tile_rows; /* channels it holds (16, or fewer at a segment's end) */
	float *w;            /* ntiles * weight_cols * 16, tile-major, zero-padded */
	float *bias;         /* ntiles * 16 */
	int32_t *koff;       /* weight column -> offset in the padded input */
	int32_t *koff_nhwc;  /* the same in NHWC */
	int32_t *koff_blk[3]; /* and in blocks of 4, 8, 16 channels */
	unsigned pad_h, pad_w;
};

#define DIRECT_LAYOUTS 1 /* the tiles read NHWC and blocked inputs too; row tiles */
#define DIRECT_ROW_RB_MAX 8
#define DIRECT_ROW_NV_MAX 4
#define DIRECT_ISA generic
#if defined(__aarch64__)
#define GENERIC_BUDGET 6 /* lowered to NEON: 32 registers, 24 accumulators */
#define GENERIC_ROW_BUDGET 24
#else
#define GENERIC_BUDGET 3
#define GENERIC_ROW_BUDGET 8 /* 16 registers: 8 accumulators, 4 of input */
#endif
#define DIRECT_BUDGET GENERIC_BUDGET
#define DIRECT_ROW_BUDGET GENERIC_ROW_BUDGET
#define DIRECT_ROW_STORE_PART(dst, y, count)                 \
	do {                                                 \
		float part_[4];                              \
		memcpy(part_, &(y), sizeof(part_));          \
		for (unsigned j_ = 0; j_ < (count); j_++)    \
			(dst)[j_] = part_[j_];               \
	} while (0)
#define DIRECT_VBYTES 16 /* SSE2 or NEON q registers */
#include "dnn/direct_body.h"
#undef DIRECT_ISA
#undef DIRECT_BUDGET
#undef DIRECT_ROW_BUDGET
#undef DIRECT_ROW_STORE_PART
#undef DIRECT_VBYTES

#ifdef DNN_HAVE_X86_KERNELS
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define DIRECT_ISA avx2
#define DIRECT_BUDGET 6 /* 16 ymm: 12 accumulators, 2 per 16 channels */
#define DIRECT_ROW_BUDGET 12 /* and 4 of input */
#define DIRECT_ROW_STORE_PART(dst, y, count)                                                                  \
	_mm256_maskstore_ps((dst),                                                                            \
	                    _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(count)),                               \
	                                       _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)),                    \
	                    (__m256)(y))
#define DIRECT_VBYTES 32
#include "dnn/direct_body.h"
#undef DIRECT_ISA
#undef DIRECT_BUDGET
#undef DIRECT_ROW_BUDGET
#undef DIRECT_ROW_STORE_PART
#undef DIRECT_VBYTES
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f,avx512vl,avx512dq,fma")
#define DIRECT_ISA avx512
#define DIRECT_BUDGET 28 /* 32 zmm: 28 accumulators */
#define DIRECT_ROW_BUDGET 24
#define DIRECT_ROW_STORE_PART(dst, y, count) _mm512_mask_storeu_ps((dst), (__mmask16)((1u << (count)) - 1), (__m512)(y))
#define DIRECT_VBYTES 64
#include "dnn/direct_body.h"
#undef DIRECT_ISA
#undef DIRECT_BUDGET
#undef DIRECT_ROW_BUDGET
#undef DIRECT_ROW_STORE_PART
#undef DIRECT_VBYTES
#pragma GCC pop_options
#endif

/* An instruction set's fast kernels: the direct convolution's tiles and the
 * kernels that go with them. */
struct direct_isa {
	enum dnn_isa isa;
	direct_tile_fn *tile;
	unsigned budget; /* 16-float accumulators that fit in registers */
	unsigned block;  /* floats per vector register: the blocked layout's channels per block */
	direct_row_fn *row; /* NULL: none (32-bit NEON: the generic build is not vectorised) */
	unsigned row_budget; /* vector accumulators of a row tile */
	const char *name;
	dnn_kernel_fn *linear, *maxpool, *avgpool, *relu;
};

#if defined(__aarch64__)
#define NEON_ROW_TILE row_tile_any_generic /* lowered to NEON */
#else
#define NEON_ROW_TILE NULL
#endif

/* The instruction sets this build has, best first. */
static const struct direct_isa isas[] = {
#ifdef DNN_HAVE_X86_KERNELS
	{ DNN_ISA_AVX512, tile_any_avx512, 28, 16, row_tile_any_avx512, 24, "avx512", dnn_f32_conv2d_gemm_fused, dnn_f32_maxpool_vec,
	  dnn_f32_avgpool_vec, dnn_f32_relu_vec },
	{ DNN_ISA_AVX2, tile_any_avx2, 6, 8, row_tile_any_avx2, 12, "avx2", dnn_f32_conv2d_gemm_fused, dnn_f32_maxpool_vec,
	  dnn_f32_avgpool_vec, dnn_f32_relu_vec },
#endif
#ifdef HAVE_NEON
	{ DNN_ISA_NEON, dnn_direct_tile_neon, DIRECT_NEON_BUDGET, 4, NEON_ROW_TILE, GENERIC_ROW_BUDGET, "neon", dnn_f32_conv2d_gemm_fused_neon,
	  dnn_f32_maxpool_neon, dnn_f32_avgpool_neon, dnn_f32_relu_neon },
#endif
	{ DNN_ISA_BASE, tile_any_generic, GENERIC_BUDGET, 4, row_tile_any_generic, GENERIC_ROW_BUDGET, "generic", dnn_f32_conv2d_gemm_fused, dnn_f32_maxpool_vec,
	  dnn_f32_avgpool_vec, dnn_f32_relu_vec },
};
#define N_ISAS (sizeof(isas) / sizeof(isas[0]))

bool
dnn_isa_runs(enum dnn_isa isa)
{
	switch (isa) {
	case DNN_ISA_BASE:
		return true;
#ifdef DNN_HAVE_X86_KERNELS
	case DNN_ISA_AVX2:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
	case DNN_ISA_AVX512:
		__builtin_cpu_init();
		return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
		       __builtin_cpu_supports("avx512vl");
#endif
#ifdef HAVE_NEON
	case DNN_ISA_NEON:
		/* Advanced SIMD is part of ARMv8-A; on 32-bit Arm it is optional
		 * (Cortex-A9 without it exist) and the kernel says so. */
#if defined(__aarch64__)
		return (getauxval(AT_HWCAP) & HWCAP_ASIMD) != 0;
#else
		return (getauxval(AT_HWCAP) & HWCAP_ARM_NEON) != 0;
#endif
#endif
	default:
		return false;
	}
}

const char *
dnn_isa_name(enum dnn_isa isa)
{
	static const char *const names[] = { "base", "avx2", "avx512", "neon" };

	return (unsigned)isa < sizeof(names) / sizeof(names[0]) ? names[isa] : "?";
}

static bool
cpu_runs(const struct direct_isa *is)
{
	return dnn_isa_runs(is->isa);
}

static const struct direct_isa *chosen_isa;

static const struct direct_isa *
isa(void)
{
	const struct direct_isa *is = __atomic_load_n(&chosen_isa, __ATOMIC_ACQUIRE);

	if (is == NULL) {
		/* Every thread that races here computes the same answer. */
		const char *wanted = getenv("GEARBOX_KERNEL_ISA");
		size_t i = 0, n = sizeof(isas) / sizeof(isas[0]);
		while (i + 1 < n && (!cpu_runs(&isas[i]) || (wanted != NULL && strcmp(isas[i].name, wanted) != 0)))
			i++;
		if (wanted != NULL && strcmp(isas[i].name, wanted) != 0) /* not here: the best one */
			for (i = 0; i + 1 < n && !cpu_runs(&isas[i]); i++)
				;
		is = &isas[i];
		__atomic_store_n(&chosen_isa, is, __ATOMIC_RELEASE);
	}
	return is;
}

const char *
dnn_kernels_isa(void)
{
	return isa()->name;
}

unsigned
dnn_layout_block(void)
{
	return isa()->block;
}

dnn_kernel_fn *
dnn_fast_kernel(enum dnn_layer_type type)
{
	const struct direct_isa *is = isa();

	switch (type) {
	case DNN_CONV2D:
		return dnn_f32_conv2d_direct;
	case DNN_LINEAR:
		return is->linear;
	case DNN_MAXPOOL:
		return is->maxpool;
	case DNN_AVGPOOL:
		return is->avgpool;
	case DNN_RELU:
		return is->relu;
	case DNN_SOFTMAX:
		return dnn_f32_softmax_ref;
	default:
		return NULL;
	}
}

int
dnn_direct_use_isa(const char *name)
{
	for (size_t i = 0; i < N_ISAS; i++)
		if (strcmp(isas[i].name, name) == 0 && cpu_runs(&isas[i])) {
			__atomic_store_n(&chosen_isa, &isas[i], __ATOMIC_RELEASE);
			return 0;
		}
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Packing, once per layer at load. */

static bool
direct_eligible(const struct dnn_layer *l)
{
	return l->type == DNN_CONV2D && l->weight != NULL && l->sh == 1 && l->sw == 1 && l->kh * l->kw > 1 &&
	       l->out_h * l->out_w > 1;
}

/* The NCHW kernel's padded input, then the layout kernels' (whole blocks of
 * up to 16 channels), which they clear before each use. */
static size_t
nchw_pad_floats(const struct dnn_layer *l)
{
	return (size_t)l->in_c * (l->in_h + 2 * l->ph) * (l->in_w + 2 * l->pw);
}

size_t
dnn_direct_pad_floats(const struct dnn_layer *l)
{
	if (!direct_eligible(l))
		return 0;
	/* a row tile's last register may read up to 15 floats past the NCHW
	 * planes: into the blocked region after them, never past it (it holds
	 * at least one 16-channel plane); those lanes are not stored */
	return nchw_pad_floats(l) + dnn_layout_floats(DNN_LAYOUT_BLOCKED, l->in_c, l->in_h + 2 * l->ph,
	                                              l->in_w + 2 * l->pw, 16);
}

bool
dnn_direct_layout_eligible(const struct dnn_layer *l, unsigned G, enum dnn_layout layout)
{
	if (l->packed == NULL)
		return false;
	if (layout == DNN_LAYOUT_BLOCKED)
		/* a block's first weight channel starts a block of the input */
		return !l->in_grouped || (l->in_c / G) % dnn_layout_block() == 0;
	return true;
}

void
dnn_layer_unpack(struct dnn_layer *l)
{
	struct dnn_packed *p = l->packed;

	if (p == NULL)
		return;
	free(p->tile_row0);
	free(p->tile_rows);
	free(p->w);
	free(p->bias);
	free(p->koff);
	free(p->koff_nhwc);
	for (unsigned i = 0; i < 3; i++)
		free(p->koff_blk[i]);
	free(p);
	l->packed = NULL;
}

/* Tiles of 16 channels that never straddle a group: a block at any g then
 * covers whole tiles. */
static int
plan_tiles(const struct dnn_layer *l, unsigned G, struct dnn_packed *p)
{
	unsigned segments = l->out_grouped ? G : 1, seg_rows = l->out_c / segments;

	p->ntiles = segments * ((seg_rows + 15) / 16);
	p->tile_row0 = calloc(p->ntiles, sizeof(unsigned));
	p->tile_rows = calloc(p->ntiles, sizeof(unsigned));
	if (p->tile_row0 == NULL || p->tile_rows == NULL)
		return -1;
	for (unsigned s = 0, t = 0; s < segments; s++)
		for (unsigned r = 0; r < seg_rows; r += 16, t++) {
			p->tile_row0[t] = s * seg_rows + r;
			p->tile_rows[t] = seg_rows - r < 16 ? seg_rows - r : 16;
		}
	return 0;
}

int
dnn_layer_pack(struct dnn_layer *l, unsigned G)
{
	struct dnn_packed *p;
	unsigned K = l->weight_cols, kk = l->kh * l->kw;
	void *mem = NULL;

	if (!direct_eligible(l) || l->packed != NULL)
		return 0;
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return -1;
	l->packed = p;
	if (plan_tiles(l, G, p) != 0)
		goto oom;
	if (posix_memalign(&mem, 64, (size_t)p->ntiles * K * 16 * sizeof(float)) != 0)
		goto oom;
	p->w = mem;
	p->bias = calloc((size_t)p->ntiles * 16, sizeof(float));
	p->koff = calloc(K, sizeof(int32_t));
	p->koff_nhwc = calloc(K, sizeof(int32_t));
	for (unsigned i = 0; i < 3; i++)
		p->koff_blk[i] = calloc(K, sizeof(int32_t));
	if (p->bias == NULL || p->koff == NULL || p->koff_nhwc == NULL || p->koff_blk[0] == NULL ||
	    p->koff_blk[1] == NULL || p->koff_blk[2] == NULL)
		goto oom;
	for (unsigned t = 0; t < p->ntiles; t++) {
		float *panel = p->w + (size_t)t * K * 16;
		for (unsigned k = 0; k < K; k++)
			for (unsigned r = 0; r < 16; r++)
				panel[(size_t)k * 16 + r] = r < p->tile_rows[t]
				                                    ? l->weight[(size_t)(p->tile_row0[t] + r) * K + k]
				                                    : 0.0f;
		for (unsigned r = 0; r < p->tile_rows[t] && l->bias != NULL; r++)
			p->bias[t * 16 + r] = l->bias[p->tile_row0[t] + r];
	}
	p->pad_h = l->in_h + 2 * l->ph;
	p->pad_w = l->in_w + 2 * l->pw;
	for (unsigned k = 0; k < K; k++) {
		unsigned c = k / kk, ky = k % kk / l->kw, kx = k % l->kw;
		size_t pos = (size_t)ky * p->pad_w + kx;
		p->koff[k] = (int32_t)(((size_t)c * p->pad_h + ky) * p->pad_w + kx);
		p->koff_nhwc[k] = (int32_t)(pos * l->in_c + c);
		for (unsigned i = 0; i < 3; i++) {
			unsigned B = 4u << i;
			p->koff_blk[i][k] = (int32_t)((size_t)(c / B) * p->pad_h * p->pad_w * B + pos * B + c % B);
		}
	}
	return 0;
oom:
	dnn_layer_unpack(l);
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Running. */

/* Copy input channels [0, channels) into the inside of the padded planes;
 * the borders are zero from the start and nothing writes them. */
static void
pad_input(const struct dnn_layer *l, const struct dnn_packed *p, const float *in, unsigned channels, float *pad)
{
	size_t plane = (size_t)p->pad_h * p->pad_w;
	unsigned W = l->in_w;

	for (unsigned c = 0; c < channels; c++) {
		float *dst = pad + c * plane + (size_t)l->ph * p->pad_w + l->pw;
		const float *src = in + (size_t)c * l->in_h * W;
		/* Rows are short (7 to 28 values here): a plain loop beats memcpy. */
		for (unsigned y = 0; y < l->in_h; y++, dst += p->pad_w, src += W)
			for (unsigned x = 0; x < W; x++)
				dst[x] = src[x];
	}
}

/* Tile shape for this ISA: MR 16-channel panels by NR positions of a row. */
static void
direct_shape(const struct direct_isa *is, unsigned out_w, unsigned *mr, unsigned *nr)
{
	unsigned budget = is->budget;

	*nr = out_w < 14 ? out_w : 14;
	if (*nr > budget)
		*nr = budget;
	*mr = budget / *nr >= 4 ? 4 : budget / *nr >= 2 ? 2 : 1;
}

/* The work of one block, in items of (tile chunk, output row, row chunk). */
struct block_work {
	unsigned t0, t1;     /* tiles of the block */
	unsigned mr;         /* tiles per chunk */
	unsigned chunks;     /* tile chunks of at most mr tiles */
	unsigned row_chunks; /* chunks of at most NR positions per row */
	bool rows;           /* run as row tiles (runs_as_rows), items counted so */
	size_t items;
};

static struct block_work
block_work(const struct dnn_layer *l, const struct dnn_packed *p, const struct dnn_block *b, unsigned mr,
           unsigned nr)
{
	struct block_work w = { .mr = mr };

	while (w.t0 < p->ntiles && p->tile_row0[w.t0] < b->row0)
		w.t0++;
	w.t1 = w.t0;
	while (w.t1 < p->ntiles && p->tile_row0[w.t1] < b->row1)
		w.t1++;
	/* Panels of a chunk must be 16 channels apart: a short tile (the end of
	 * a segment that is not a multiple of 16) makes the block go one by one. */
	for (unsigned t = w.t0; t < w.t1; t++)
		if (p->tile_rows[t] != 16)
			w.mr = 1;
	w.chunks = (w.t1 - w.t0 + w.mr - 1) / w.mr;
	w.row_chunks = (l->out_w + nr - 1) / nr;
	w.items = (size_t)w.chunks * l->out_h * w.row_chunks;
	return w;
}

static void
run_item(const struct dnn_op *op, const struct dnn_block *b, const struct block_work *w, size_t item,
         const float *pad, const struct direct_isa *is, unsigned nr)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_packed *p = l->packed;
	unsigned K = l->weight_cols, kk = l->kh * l->kw;
	unsigned rc = (unsigned)(item % w->row_chunks), oy = (unsigned)(item / w->row_chunks % l->out_h);
	unsigned chunk = (unsigned)(item / w->row_chunks / l->out_h);
	unsigned t = w->t0 + chunk * w->mr, tiles = w->t1 - t < w->mr ? w->t1 - t : w->mr;
	unsigned ox = rc * nr, n = l->out_w - ox < nr ? l->out_w - ox : nr;
	unsigned row0 = p->tile_row0[t], rows = p->tile_row0[t + tiles - 1] + p->tile_rows[t + tiles - 1] - row0;
	size_t N = (size_t)l->out_h * l->out_w;
	struct direct_tile_args a = {
		.w = p->w + (size_t)t * K * 16,
		.wstride = (size_t)K * 16,
		.bias = p->bias + (size_t)t * 16,
		.koff = p->koff,
		/* koff counts channels from the block's first weight column */
		.x = pad + (size_t)b->wch0 * p->pad_h * p->pad_w + (size_t)oy * p->pad_w + ox,
		.k0 = (b->ch0 - b->wch0) * kk,
		.k1 = (b->ch1 - b->wch0) * kk,
		.out = op->out + (size_t)row0 * N + (size_t)oy * l->out_w + ox,
		.out_stride = N,
		.rows = rows,
		.relu = op->relu,
	};

	is->tile(&a, tiles, n);
}

/* ---- Row tiles, for blocks of few weight columns ------------------------ */

/* Which blocks run as row tiles (direct_body.h): those of few weight columns
 * whose output rows fill the row tile's registers. Per-layer medians of
 * `gearbox tune --search exact --impls gemm,direct` on the 2-vCPU EPYC
 * (AVX-512), channel tiles -> row tiles: the bundled model's conv1 (9
 * columns, rows of 28 in 32 lanes) 48 -> 27 us at g=4, below im2col + BLAS
 * (31); alexnet-cifar's first layer (75 columns, rows of 32) 138 -> 114 us;
 * conv2 (144 columns, rows of 14 in 16 lanes) the same either way; conv3-5
 * (rows of 7 in 16 lanes) twice as slow. */
#define ROW_MAX_COLUMNS 96

static bool
runs_as_rows(const struct dnn_layer *l, const struct dnn_block *b, const struct direct_isa *is, unsigned span)
{
	unsigned chunks = (l->out_w + span - 1) / span;

	return is->row != NULL && (b->ch1 - b->ch0) * l->kh * l->kw <= ROW_MAX_COLUMNS &&
	       4 * l->out_w >= 3 * chunks * span; /* 3/4 of the lanes or more */
}

/* Row tile shape: NV registers cover the row (or chunks of 4), RB channels
 * fill the rest of the accumulator budget. */
static void
row_shape(const struct direct_isa *is, unsigned out_w, unsigned *rb, unsigned *nv)
{
	unsigned vecs = (out_w + is->block - 1) / is->block;

	*nv = vecs < DIRECT_ROW_NV_MAX ? vecs : DIRECT_ROW_NV_MAX;
	*rb = is->row_budget / *nv < DIRECT_ROW_RB_MAX ? is->row_budget / *nv : DIRECT_ROW_RB_MAX;
}

/* Items of one block as row tiles: (tile, channel chunk of RB, output row,
 * row chunk of NV registers). */
static size_t
row_items(const struct dnn_layer *l, const struct block_work *w, unsigned rb, unsigned span)
{
	return (size_t)(w->t1 - w->t0) * ((16 + rb - 1) / rb) * l->out_h * ((l->out_w + span - 1) / span);
}

static void
run_row_item(const struct dnn_op *op, const struct dnn_block *b, const struct block_work *w, size_t item,
             const float *pad, const struct direct_isa *is, unsigned rb, unsigned nv)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_packed *p = l->packed;
	unsigned K = l->weight_cols, kk = l->kh * l->kw, span = nv * is->block;
	unsigned row_chunks = (l->out_w + span - 1) / span, chan_chunks = (16 + rb - 1) / rb;
	unsigned rc = (unsigned)(item % row_chunks), oy = (unsigned)(item / row_chunks % l->out_h);
	unsigned cc = (unsigned)(item / row_chunks / l->out_h % chan_chunks);
	unsigned t = w->t0 + (unsigned)(item / row_chunks / l->out_h / chan_chunks), r0 = cc * rb;
	unsigned ox = rc * span, n = l->out_w - ox < span ? l->out_w - ox : span;
	size_t N = (size_t)l->out_h * l->out_w;
	struct direct_tile_args a = {
		.w = p->w + (size_t)t * K * 16 + r0,
		.bias = p->bias + (size_t)t * 16 + r0,
		.koff = p->koff,
		.x = pad + (size_t)b->wch0 * p->pad_h * p->pad_w + (size_t)oy * p->pad_w + ox,
		.k0 = (b->ch0 - b->wch0) * kk,
		.k1 = (b->ch1 - b->wch0) * kk,
		.out = op->out + (size_t)(p->tile_row0[t] + r0) * N + (size_t)oy * l->out_w + ox,
		.out_stride = N,
		.rows = p->tile_rows[t] > r0 ? p->tile_rows[t] - r0 : 0,
		.relu = op->relu,
	};

	/* the last chunks of a panel and of a row take only the channels and
	 * registers they need: no weight or bias read past the panel, no input
	 * more than VL - 1 floats past the row */
	if (a.rows > 0)
		is->row(&a, 16 - r0 < rb ? 16 - r0 : rb, (n + is->block - 1) / is->block, n);
}

/* Shares split the (tile chunk, row, row chunk) items of all blocks; each
 * share copies the input channels it reads into its own part of op->pad. */
static void
direct_run(const struct dnn_op *op, unsigned part, unsigned parts, const struct direct_isa *is)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_packed *p = l->packed;
	const struct dnn_block *blocks = op->plan->blocks;
	unsigned nb = op->plan->nblocks, mr, nr, rb, nv;
	struct block_work work[DNN_MAX_GROUPS];
	size_t total = 0, first, last, base = 0;
	float *pad;

	if (p == NULL) {
		is->linear(op, part, parts);
		return;
	}
	direct_shape(is, l->out_w, &mr, &nr);
	row_shape(is, l->out_w, &rb, &nv);
	for (unsigned b = 0; b < nb; b++) {
		work[b] = block_work(l, p, &blocks[b], mr, nr);
		if ((work[b].rows = runs_as_rows(l, &blocks[b], is, nv * is->block)))
			work[b].items = row_items(l, &work[b], rb, nv * is->block);
		total += work[b].items;
	}
	dnn_share(total, part, parts, 1, &first, &last);
	if (first >= last)
		return;
	pad = op->pad + (size_t)part * dnn_direct_pad_floats(l);
	pad_input(l, p, op->in, blocks[nb - 1].ch1, pad);
	for (unsigned b = 0; b < nb; b++) {
		size_t lo = first > base ? first - base : 0, hi = last - base < work[b].items ? last - base : work[b].items;
		for (size_t i = lo; i < hi && last > base; i++)
			if (work[b].rows)
				run_row_item(op, &blocks[b], &work[b], i, pad, is, rb, nv);
			else
				run_item(op, &blocks[b], &work[b], i, pad, is, nr);
		base += work[b].items;
	}
}

void
dnn_f32_conv2d_direct(const struct dnn_op *op, unsigned part, unsigned parts)
{
	direct_run(op, part, parts, isa());
}

/* ---- NHWC and blocked layouts -------------------------------------------- */

static const struct direct_isa *isa_of(enum dnn_isa which);

/* Channels [0, channels) into the padded copy, borders cleared first (the
 * region is shared by both layouts): whole rows of W positions, each of
 * `step` floats, are contiguous in both. */
static void
pad_input_layout(const struct dnn_layer *l, const struct dnn_packed *p, const float *in, unsigned channels,
                 float *pad, enum dnn_layout layout, unsigned B)
{
	struct dnn_tensor_view vi = dnn_view(layout, l->in_c, l->in_h, l->in_w, B);
	struct dnn_tensor_view vp = dnn_view(layout, l->in_c, p->pad_h, p->pad_w, B);
	unsigned units = layout == DNN_LAYOUT_BLOCKED ? (channels + B - 1) / B : 1;
	size_t row = (size_t)l->in_w * vi.step;

	for (unsigned u = 0; u < units; u++) {
		const float *src = in + (layout == DNN_LAYOUT_BLOCKED ? dnn_view_base(&vi, u * B) : 0);
		float *dst = pad + (layout == DNN_LAYOUT_BLOCKED ? dnn_view_base(&vp, u * B) : 0);
		memset(dst, 0, vp.HW * vp.step * sizeof(float));
		dst += ((size_t)l->ph * p->pad_w + l->pw) * vp.step;
		for (unsigned y = 0; y < l->in_h; y++, dst += (size_t)p->pad_w * vp.step, src += row)
			memcpy(dst, src, row * sizeof(float));
	}
}

static void
direct_run_layout(const struct dnn_op *op, unsigned part, unsigned parts, const struct direct_isa *is,
                  enum dnn_layout layout)
{
	const struct dnn_layer *l = op->layer;
	const struct dnn_packed *p = l->packed;
	const struct dnn_block *blocks = op->plan->blocks;
	unsigned nb = op->plan->nblocks, mr, nr, B = is->block, kk = l->kh * l->kw, K = l->weight_cols;
	struct block_work work[DNN_MAX_GROUPS];
	size_t total = 0, first, last, base = 0;
	const int32_t *koff;
	struct dnn_tensor_view vp, vo;
	float *pad;

	if (p == NULL) {
		is->linear(op, part, parts);
		return;
	}
	if (is->isa == DNN_ISA_NEON) /* its intrinsic tiles write NCHW only: the generic build, also NEON */
		is = isa_of(DNN_ISA_BASE); /* the same block of 4 */
	koff = layout == DNN_LAYOUT_NHWC ? p->koff_nhwc : p->koff_blk[B == 4 ? 0 : B == 8 ? 1 : 2];
	vp = dnn_view(layout, l->in_c, p->pad_h, p->pad_w, B);
	vo = dnn_view(layout, l->out_c, l->out_h, l->out_w, B);
	direct_shape(is, l->out_w, &mr, &nr);
	for (unsigned b = 0; b < nb; b++) {
		work[b] = block_work(l, p, &blocks[b], mr, nr);
		total += work[b].items;
	}
	dnn_share(total, part, parts, 1, &first, &last);
	if (first >= last)
		return;
	pad = op->pad + (size_t)part * dnn_direct_pad_floats(l) + nchw_pad_floats(l);
	pad_input_layout(l, p, op->in, blocks[nb - 1].ch1, pad, layout, B);
	for (unsigned b = 0; b < nb; b++) {
		const struct dnn_block *bl = &blocks[b];
		const struct block_work *w = &work[b];
		size_t lo = first > base ? first - base : 0, hi = last - base < w->items ? last - base : w->items;
		for (size_t item = lo; item < hi && last > base; item++) {
			unsigned rc = (unsigned)(item % w->row_chunks), oy = (unsigned)(item / w->row_chunks % l->out_h);
			unsigned chunk = (unsigned)(item / w->row_chunks / l->out_h);
			unsigned t = w->t0 + chunk * w->mr, tiles = w->t1 - t < w->mr ? w->t1 - t : w->mr;
			unsigned ox = rc * nr, n = l->out_w - ox < nr ? l->out_w - ox : nr;
			unsigned row0 = p->tile_row0[t];
			struct direct_tile_args a = {
				.w = p->w + (size_t)t * K * 16,
				.wstride = (size_t)K * 16,
				.bias = p->bias + (size_t)t * 16,
				.koff = koff,
				.x = pad + dnn_view_base(&vp, bl->wch0) + ((size_t)oy * p->pad_w + ox) * vp.step,
				.k0 = (bl->ch0 - bl->wch0) * kk,
				.k1 = (bl->ch1 - bl->wch0) * kk,
				.out = op->out + ((size_t)oy * l->out_w + ox) * vo.step,
				.rows = p->tile_row0[t + tiles - 1] + p->tile_rows[t + tiles - 1] - row0,
				.relu = op->relu,
				.xstep = vp.step,
				.out_step = vo.step,
				.out_HW = vo.HW,
				.out_B = layout == DNN_LAYOUT_BLOCKED ? B : 0,
				.row0 = row0,
			};
			is->tile(&a, tiles, n);
		}
		base += w->items;
	}
}

void
dnn_f32_conv2d_direct_nhwc(const struct dnn_op *op, unsigned part, unsigned parts)
{
	direct_run_layout(op, part, parts, isa(), DNN_LAYOUT_NHWC);
}

void
dnn_f32_conv2d_direct_blocked(const struct dnn_op *op, unsigned part, unsigned parts)
{
	direct_run_layout(op, part, parts, isa(), DNN_LAYOUT_BLOCKED);
}

static const struct direct_isa *
isa_of(enum dnn_isa which)
{
	for (size_t i = 0; i < N_ISAS; i++)
		if (isas[i].isa == which)
			return &isas[i];
	abort(); /* the kernel list names only instruction sets this build has */
}

/* One instruction set's tiles whatever the CPU prefers; the kernel list's
 * DNN_ISA column says which a CPU must run. */
void
dnn_f32_conv2d_direct_generic(const struct dnn_op *op, unsigned part, unsigned parts)
{
	direct_run(op, part, parts, isa_of(DNN_ISA_BASE));
}

#ifdef DNN_HAVE_X86_KERNELS
void
dnn_f32_conv2d_direct_avx2(const struct dnn_op *op, unsigned part, unsigned parts)
{
	direct_run(op, part, parts, isa_of(DNN_ISA_AVX2));
}

void
dnn_f32_conv2d_direct_avx512(const struct dnn_op *op, unsigned part, unsigned parts)
{
	direct_run(op, part, parts, isa_of(DNN_ISA_AVX512));
}
#endif

#ifdef HAVE_NEON
void
dnn_f32_conv2d_direct_neon(const struct dnn_op *op, unsigned part, unsigned parts)
{
	direct_run(op, part, parts, isa_of(DNN_ISA_NEON));
}
#endif
