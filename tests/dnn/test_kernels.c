/* SPDX-License-Identifier: MIT */
/* Every kernel of DNN_KERNEL_LIST against the reference kernel of its op, over
 * shapes around tile and vector edges, every connectivity and every g, split
 * into 1 to 3 parts; compared by normalised error. Each instruction set's
 * variants (f32_*_avx2, _avx512, _neon) run where the CPU runs them; the log
 * names every kernel checked, its instruction set and its worst error, and
 * every one skipped. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__aarch64__)
#include <sys/auxv.h>
#endif

#include "dnn/kernels.h"
#include "tests/common/compare.h"
#include "tests/common/modelgen.h"

/* Indexing bugs give errors of order 1e-2 to 1; float re-association (and
 * fused multiply-adds, as on AArch64 and in OpenBLAS there) stays below 1e-5.
 * Convolutions are normalised by the norm of what the reference gives on the
 * magnitudes of weights, bias and input (sum |w x| + |b| per output, the
 * condition of each dot product), not by the norm of their output: a layer of
 * one output whose sum nearly cancels would otherwise turn one rounding into
 * an error of 1e-4. */
#define TOLERANCE 1e-4

static double
norm_of(const float *v, size_t n)
{
	double sum = 0;

	for (size_t i = 0; i < n; i++)
		sum += (double)v[i] * v[i];
	return sqrt(sum);
}

static float *
abs_copy(const float *v, size_t n)
{
	float *a = malloc((n + 1) * sizeof(float));

	for (size_t i = 0; i < n; i++)
		a[i] = fabsf(v[i]);
	return a;
}

struct kernel_entry {
	const char *name;
	enum dnn_layer_type type;
	dnn_kernel_fn *fn, *ref;
	enum dnn_isa isa;
};

#define DNN_KERNEL_ENTRY(name, type, ref, isa) { #name, type, dnn_##name, dnn_##ref, isa },
static const struct kernel_entry kernels[] = { DNN_KERNEL_LIST(DNN_KERNEL_ENTRY) };
#define N_KERNELS (sizeof(kernels) / sizeof(kernels[0]))

static float *
random_floats(size_t n, uint32_t *seed)
{
	float *v = malloc((n + 1) * sizeof(float));

	for (size_t i = 0; i < n; i++)
		v[i] = mg_uniform(seed);
	return v;
}

/* Run `fn` on op in `parts` shares, one after the other. */
static void
run_parts(dnn_kernel_fn *fn, const struct dnn_op *op, unsigned parts)
{
	for (unsigned p = 0; p < parts; p++)
		fn(op, p, parts);
}

/* Output of `fn` vs the reference on layer l at g; fresh buffers each time,
 * pre-filled with NaN so an unwritten element fails the comparison. */
static double
compare(const struct kernel_entry *k, const struct dnn_layer *l, unsigned g, unsigned G, unsigned parts, bool relu,
        uint32_t *seed)
{
	size_t in_n = (size_t)l->in_c * l->in_h * l->in_w, out_n = (size_t)dnn_active_out(l, g, G) * l->out_h * l->out_w;
	size_t col_n = (size_t)l->in_c * l->kh * l->kw * l->out_h * l->out_w + 1;
	if (dnn_wino_scratch_floats(l, 2, parts) >= col_n)
		col_n = dnn_wino_scratch_floats(l, 2, parts) + 1;
	if (dnn_wino_scratch_floats(l, 4, parts) >= col_n)
		col_n = dnn_wino_scratch_floats(l, 4, parts) + 1;
	if (dnn_q8_scratch_floats(l, G, parts) >= col_n)
		col_n = dnn_q8_scratch_floats(l, G, parts) + 1;
	float *pad = calloc(parts * dnn_direct_pad_floats(l) + 1, sizeof(float));
	float *in = random_floats(in_n, seed);
	float *want = malloc((out_n + 1) * sizeof(float)), *got = malloc((out_n + 1) * sizeof(float));
	float *col = malloc(col_n * sizeof(float)), *scratch = malloc(((size_t)parts * l->in_w + 1) * sizeof(float));
	struct dnn_block blocks[DNN_MAX_GROUPS];
	struct dnn_layer_plan plan;
	struct dnn_op op = { .layer = l, .plan = &plan, .g = g, .G = G, .in = in, .col = col, .pad = pad, .scratch = scratch,
	                     .relu = relu, .n = out_n, .q_scale = 1.0f / 40, .q_zp = 50 };
	double err;

	dnn_layer_plan_fill(l, g, G, &plan, blocks);
	for (size_t i = 0; i < out_n; i++)
		want[i] = got[i] = NAN;
	op.out = want;
	k->ref(&op, 0, 1);
	op.out = got;
	run_parts(k->fn, &op, parts);
	err = normalised_error(got, want, out_n);
	if ((l->type == DNN_CONV2D || l->type == DNN_LINEAR) && k->ref == dnn_f32_conv2d_ref) {
		/* The same error against the scale of the terms (see TOLERANCE). */
		struct dnn_layer mag_l = *l;
		size_t w_n = (size_t)l->out_c * l->weight_cols;
		float *mag_w = abs_copy(l->weight, w_n), *mag_b = l->bias != NULL ? abs_copy(l->bias, l->out_c) : NULL;
		float *mag_in = abs_copy(in, in_n), *mag = malloc((out_n + 1) * sizeof(float));
		struct dnn_op mag_op = op;
		double scale;
		mag_l.weight = mag_w;
		mag_l.bias = mag_b;
		mag_l.packed = NULL;
		mag_op.layer = &mag_l;
		mag_op.in = mag_in;
		mag_op.out = mag;
		mag_op.relu = false;
		k->ref(&mag_op, 0, 1);
		scale = norm_of(mag, out_n);
		if (isfinite(err) && scale > 1e-20) {
			double diff = 0;
			for (size_t i = 0; i < out_n; i++)
				diff += ((double)got[i] - want[i]) * ((double)got[i] - want[i]);
			err = sqrt(diff) / scale;
		}
		free(mag_w);
		free(mag_b);
		free(mag_in);
		free(mag);
	}
	for (size_t i = 0; i < out_n; i++)
		if (isnan(got[i]))
			err = INFINITY;
	free(in);
	free(want);
	free(got);
	free(col);
	free(pad);
	free(scratch);
	return err;
}

/* A weighted layer with random weights; caller frees weight/bias. */
static struct dnn_layer
make_weighted(enum dnn_connectivity conn, bool in_grouped, bool out_grouped, unsigned G, unsigned ipg, unsigned opg,
              unsigned H, unsigned W, unsigned k, unsigned s, unsigned p, bool bias, uint32_t *seed)
{
	struct dnn_layer l = { 0 };
	float *w, *b = NULL;

	l.type = k == 0 ? DNN_LINEAR : DNN_CONV2D;
	l.conn = conn;
	l.in_grouped = in_grouped;
	l.out_grouped = out_grouped;
	l.in_c = in_grouped ? ipg * G : ipg;
	l.out_c = out_grouped ? opg * G : opg;
	l.in_h = H;
	l.in_w = W;
	l.kh = l.kw = k == 0 ? 1 : k;
	l.sh = l.sw = s;
	l.ph = l.pw = p;
	l.out_h = (H + 2 * p - l.kh) / s + 1;
	l.out_w = (W + 2 * p - l.kw) / s + 1;
	l.weight_cols = (conn == DNN_CONN_GROUPED ? l.in_c / G : l.in_c) * l.kh * l.kw;
	w = random_floats((size_t)l.out_c * l.weight_cols, seed);
	if (bias)
		b = random_floats(l.out_c, seed);
	l.weight = w;
	l.bias = b;
	l.name = (char *)"test";
	ck_assert_int_eq(dnn_layer_pack(&l, G), 0);
	if (dnn_wino_eligible(&l)) {
		ck_assert_int_eq(dnn_wino_prepare(&l, G, 2), 0);
		ck_assert_int_eq(dnn_wino_prepare(&l, G, 4), 0);
	}
	ck_assert_int_eq(dnn_q8_prepare(&l, G), 0);
	return l;
}

static void
free_weighted(struct dnn_layer *l)
{
	dnn_layer_unpack(l);
	dnn_wino_unprepare(l);
	dnn_q8_unprepare(l);
	free((void *)l->weight);
	free((void *)l->bias);
}

/* Per kernel: comparisons made and the worst error, for the log. */
static unsigned runs[N_KERNELS];
static double worst_err[N_KERNELS];

static bool
wanted(size_t i, enum dnn_layer_type type)
{
	return kernels[i].type == type && kernels[i].fn != kernels[i].ref && dnn_isa_runs(kernels[i].isa);
}

static void
check_all_kernels_of(enum dnn_layer_type type, const struct dnn_layer *l, unsigned G, const char *what, uint32_t *seed,
                     unsigned *checked)
{
	for (size_t i = 0; i < N_KERNELS; i++) {
		if (!wanted(i, type))
			continue;
		for (unsigned g = 1; g <= G; g++) {
			for (unsigned parts = 1; parts <= 3; parts++) {
				for (int relu = 0; relu <= (strstr(kernels[i].name, "fused") != NULL || strstr(kernels[i].name, "q8") != NULL ||
		                                   strstr(kernels[i].name, "wino") != NULL);
		     relu++) {
					double err = compare(&kernels[i], l, g, G, parts, relu, seed);
					ck_assert_msg(err < TOLERANCE, "%s on %s at g=%u/%u, %u parts%s: normalised error %g",
					              kernels[i].name, what, g, G, parts, relu ? ", fused relu" : "", err);
					(*checked)++;
					runs[i]++;
					if (err > worst_err[i])
						worst_err[i] = err;
				}
			}
		}
	}
}

/* Which kernels of `type` ran (and how often), which this CPU cannot run. */
static void
report(enum dnn_layer_type type, const char *test)
{
	for (size_t i = 0; i < N_KERNELS; i++) {
		if (kernels[i].type != type || kernels[i].fn == kernels[i].ref)
			continue;
		if (!dnn_isa_runs(kernels[i].isa))
			printf("%s: skipped %s [%s]: this CPU does not run it\n", test, kernels[i].name,
			       dnn_isa_name(kernels[i].isa));
		else
			printf("%s: checked %s [%s] %u times against %s, worst normalised error %.2g\n", test,
			       kernels[i].name, dnn_isa_name(kernels[i].isa), runs[i],
			       kernels[i].type == DNN_CONV2D ? "f32_conv2d_ref" : "the reference", worst_err[i]);
		runs[i] = 0;
		worst_err[i] = 0.0;
	}
	fflush(stdout);
}

START_TEST(test_conv_kernels)
{
	static const unsigned ipgs[] = { 1, 2, 3, 5 }, opgs[] = { 1, 3, 4, 5, 8, 17 };
	static const unsigned sizes[] = { 1, 3, 4, 7, 8, 9, 16, 17 };
	static const struct { unsigned k, s, p; } geoms[] = { { 1, 1, 0 }, { 3, 1, 1 }, { 3, 2, 1 }, { 5, 1, 2 }, { 3, 1, 0 }, { 1, 2, 0 } };
	static const struct { enum dnn_connectivity conn; bool in_g, out_g; const char *name; } conns[] = {
		{ DNN_CONN_GROUPED, true, true, "grouped" }, { DNN_CONN_NESTED, true, true, "nested" },
		{ DNN_CONN_DENSE, false, true, "dense-in" }, { DNN_CONN_DENSE, true, false, "classifier" },
	};
	uint32_t seed = 42;
	unsigned checked = 0;

	for (size_t ci = 0; ci < 4; ci++)
		for (unsigned G = 1; G <= 4; G += 3)
			for (size_t gi = 0; gi < 6; gi++)
				for (size_t si = 0; si < 8; si++) {
					unsigned H = sizes[si], W = sizes[(si + gi) % 8];
					unsigned ipg = ipgs[(si + ci) % 4], opg = opgs[(si + gi + ci) % 6];
					char what[160];
					struct dnn_layer l;
					if (H + 2 * geoms[gi].p < geoms[gi].k || W + 2 * geoms[gi].p < geoms[gi].k)
						continue;
					l = make_weighted(conns[ci].conn, conns[ci].in_g, conns[ci].out_g, G, ipg, opg, H, W,
					                  geoms[gi].k, geoms[gi].s, geoms[gi].p, si % 3 != 0, &seed);
					snprintf(what, sizeof(what), "%s conv %ux%ux%u -> %u, k%u s%u p%u", conns[ci].name,
					         l.in_c, H, W, l.out_c, geoms[gi].k, geoms[gi].s, geoms[gi].p);
					check_all_kernels_of(DNN_CONV2D, &l, G, what, &seed, &checked);
					free_weighted(&l);
				}
	report(DNN_CONV2D, "conv");
	ck_assert_uint_gt(checked, 1000);
}
END_TEST

START_TEST(test_linear_kernels)
{
	static const unsigned ins[] = { 1, 2, 3, 4, 5, 15, 16, 17, 33 }, outs[] = { 1, 2, 3, 4, 5, 7, 8, 9, 31 };
	static const struct { enum dnn_connectivity conn; bool in_g, out_g; } conns[] = {
		{ DNN_CONN_GROUPED, true, true }, { DNN_CONN_NESTED, true, true },
		{ DNN_CONN_DENSE, false, true }, { DNN_CONN_DENSE, true, false },
	};
	uint32_t seed = 7;
	unsigned checked = 0;

	for (size_t ci = 0; ci < 4; ci++)
		for (unsigned G = 1; G <= 4; G++)
			for (size_t i = 0; i < 9; i++) {
				struct dnn_layer l = make_weighted(conns[ci].conn, conns[ci].in_g, conns[ci].out_g, G, ins[i],
				                                   outs[(i + ci) % 9], 1, 1, 0, 1, 0, i % 2 == 0, &seed);
				char what[96];
				snprintf(what, sizeof(what), "%s linear %u -> %u", dnn_connectivity_name(l.conn), l.in_c, l.out_c);
				check_all_kernels_of(DNN_CONV2D, &l, G, what, &seed, &checked);
				free_weighted(&l);
			}
	report(DNN_CONV2D, "linear");
	ck_assert_uint_gt(checked, 300);
}
END_TEST

START_TEST(test_pool_kernels)
{
	static const unsigned sizes[] = { 2, 3, 4, 5, 7, 8, 9, 12, 16, 17, 31, 33 };
	static const struct { unsigned k, s; } geoms[] = { { 2, 2 }, { 3, 2 }, { 2, 1 }, { 3, 3 }, { 1, 1 } };
	uint32_t seed = 99;
	unsigned checked = 0;

	for (int avg = 0; avg <= 1; avg++)
		for (size_t gi = 0; gi < 5; gi++)
			for (size_t si = 0; si < 12; si++) {
				struct dnn_layer l = { 0 };
				char what[96];
				l.type = avg ? DNN_AVGPOOL : DNN_MAXPOOL;
				l.in_grouped = l.out_grouped = si % 2 == 0;
				l.in_c = l.out_c = 4 * (1 + si % 3);
				l.in_h = sizes[si];
				l.in_w = sizes[(si + gi + 3) % 12];
				l.kh = l.kw = geoms[gi].k;
				l.sh = l.sw = geoms[gi].s;
				if (l.kh > l.in_h || l.kw > l.in_w)
					continue;
				l.out_h = (l.in_h - l.kh) / l.sh + 1;
				l.out_w = (l.in_w - l.kw) / l.sw + 1;
				snprintf(what, sizeof(what), "%s %ux%ux%u k%u s%u", avg ? "avgpool" : "maxpool", l.in_c, l.in_h,
				         l.in_w, l.kh, l.sh);
				check_all_kernels_of(l.type, &l, 4, what, &seed, &checked);
			}
	report(DNN_MAXPOOL, "pool");
	report(DNN_AVGPOOL, "pool");
	ck_assert_uint_gt(checked, 500);
}
END_TEST

START_TEST(test_relu_kernels)
{
	uint32_t seed = 5;
	unsigned checked = 0;

	for (unsigned n = 1; n < 70; n++) {
		struct dnn_layer l = { 0 };
		l.type = DNN_RELU;
		l.in_c = l.out_c = n;
		l.in_h = l.in_w = l.out_h = l.out_w = 1;
		check_all_kernels_of(DNN_RELU, &l, 1, "relu", &seed, &checked);
	}
	report(DNN_RELU, "relu");
	ck_assert_uint_gt(checked, 100);
}
END_TEST

/* The direct and Winograd convolutions at the shapes of real models, where
 * tiles of 2 and 4 panels and rows split in chunks occur, on every instruction
 * set this CPU runs. */
START_TEST(test_direct_model_shapes)
{
	static const struct {
		enum dnn_connectivity conn;
		bool in_g, out_g;
		unsigned ipg, opg, H, W;
	} shapes[] = {
		{ DNN_CONN_DENSE, false, true, 1, 16, 28, 28 },   /* conv1 of the bundled model */
		{ DNN_CONN_GROUPED, true, true, 16, 32, 14, 14 }, /* conv2 */
		{ DNN_CONN_GROUPED, true, true, 64, 64, 7, 7 },   /* conv4 */
		{ DNN_CONN_NESTED, true, true, 8, 48, 9, 20 },    /* three panels, a short row chunk */
		{ DNN_CONN_DENSE, true, false, 8, 40, 5, 30 },    /* a short panel at the end */
		/* row tiles (few weight columns): rows in 2 x 16, 4 x 8 lanes; a
		 * short panel and rows in chunks with a short last register */
		{ DNN_CONN_DENSE, false, true, 3, 16, 32, 32 },
		{ DNN_CONN_DENSE, false, true, 2, 24, 11, 37 },
	};
	static const char *const names[] = { "avx512", "avx2", "neon", "generic" };
	const struct kernel_entry variants[] = {
		{ "f32_conv2d_direct", DNN_CONV2D, dnn_f32_conv2d_direct, dnn_f32_conv2d_ref, DNN_ISA_BASE },
		{ "f32_conv2d_wino2", DNN_CONV2D, dnn_f32_conv2d_wino2, dnn_f32_conv2d_ref, DNN_ISA_BASE },
		{ "f32_conv2d_wino4", DNN_CONV2D, dnn_f32_conv2d_wino4, dnn_f32_conv2d_ref, DNN_ISA_BASE },
	};
	uint32_t seed = 11;
	unsigned isas = 0;

	for (size_t n = 0; n < 4; n++) {
		if (dnn_direct_use_isa(names[n]) != 0) {
			printf("model shapes: skipped the %s tiles: not in this build or not run by this CPU\n", names[n]);
			continue;
		}
		isas++;
		for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
			struct dnn_layer l = make_weighted(shapes[i].conn, shapes[i].in_g, shapes[i].out_g, 4, shapes[i].ipg,
			                                   shapes[i].opg, shapes[i].H, shapes[i].W, 3, 1, 1, true, &seed);
			ck_assert_ptr_nonnull(l.packed);
			ck_assert_ptr_nonnull(l.wino2);
			ck_assert_ptr_nonnull(l.wino4);
			for (size_t v = 0; v < 3; v++)
				for (unsigned g = 1; g <= 4; g++)
					for (unsigned parts = 1; parts <= 3; parts += 2) {
						double err = compare(&variants[v], &l, g, 4, parts, parts == 1, &seed);
						ck_assert_msg(err < TOLERANCE, "%s %s: shape %zu at g=%u, %u parts: normalised error %g",
						              variants[v].name, names[n], i, g, parts, err);
					}
			free_weighted(&l);
		}
		printf("model shapes: checked f32_conv2d_direct, _wino2, _wino4 with the %s tiles on %zu shapes\n", names[n],
		       sizeof(shapes) / sizeof(shapes[0]));
	}
	fflush(stdout);
	ck_assert_uint_ge(isas, 1);
	for (size_t n = 0; n < 4 && dnn_direct_use_isa(names[n]) != 0; n++)
		; /* back to the best this CPU runs */
}
END_TEST

/* ---- layouts ------------------------------------------------------------
 * A layout kernel runs wrapped: the NCHW input converted to the layout, the
 * kernel in all its parts, the output converted back (unwritten active
 * values stay NaN and fail the comparison), so compare() checks it against
 * the reference like any other. */
static enum dnn_layout wrap_layout;
static dnn_kernel_fn *wrap_fn;

static void
layout_wrapped(const struct dnn_op *op, unsigned part, unsigned parts)
{
	const struct dnn_layer *l = op->layer;
	unsigned B = dnn_layout_block();
	size_t in_n = dnn_layout_floats(DNN_LAYOUT_BLOCKED, l->in_c, l->in_h, l->in_w, 16);
	size_t out_n = dnn_layout_floats(DNN_LAYOUT_BLOCKED, l->out_c, l->out_h, l->out_w, 16);
	float *in = malloc((in_n + 1) * sizeof(float)), *out = malloc((out_n + 1) * sizeof(float));
	struct dnn_op lop = *op;

	if (part != 0) {
		free(in);
		free(out);
		return;
	}
	for (size_t i = 0; i < in_n; i++)
		in[i] = NAN; /* inactive channels: never read */
	for (size_t i = 0; i < out_n; i++)
		out[i] = NAN;
	dnn_layout_convert(op->in, DNN_LAYOUT_NCHW, in, wrap_layout, l->in_c, op->plan->in_c, l->in_h, l->in_w, B, 0, 1);
	lop.in = in;
	lop.out = out;
	lop.layout = wrap_layout;
	for (unsigned p = 0; p < parts; p++)
		wrap_fn(&lop, p, parts);
	dnn_layout_convert(out, wrap_layout, op->out, DNN_LAYOUT_NCHW, l->out_c, op->plan->out_c, l->out_h, l->out_w, B,
	                   0, 1);
	free(in);
	free(out);
}

/* Conversions between every pair of layouts give back the same values,
 * bit for bit, for every active channel count, over odd shapes. */
START_TEST(test_layout_round_trip)
{
	static const unsigned Cs[] = { 1, 3, 4, 5, 8, 16, 17, 33 }, sizes[] = { 1, 2, 3, 7, 9 };
	static const unsigned Bs[] = { 4, 8, 16 };
	uint32_t seed = 5;
	unsigned checked = 0;

	for (size_t ci = 0; ci < 8; ci++)
		for (size_t hi = 0; hi < 5; hi++)
			for (size_t bi = 0; bi < 3; bi++) {
				unsigned C = Cs[ci], H = sizes[hi], W = sizes[(hi + ci) % 5], B = Bs[bi];
				size_t n = dnn_layout_floats(DNN_LAYOUT_BLOCKED, C, H, W, B);
				float *src = random_floats(n, &seed), *mid = malloc(n * sizeof(float)), *back = malloc(n * sizeof(float));
				for (unsigned active = 1; active <= C; active += (C > 4 ? C / 3 : 1))
					for (unsigned a = 0; a < DNN_LAYOUT_COUNT; a++)
						for (unsigned b = 0; b < DNN_LAYOUT_COUNT; b++)
							for (unsigned parts = 1; parts <= 3; parts += 2) {
								struct dnn_tensor_view va = dnn_view((enum dnn_layout)a, C, H, W, B);
								for (size_t i = 0; i < n; i++)
									mid[i] = back[i] = NAN;
								for (unsigned p = 0; p < parts; p++)
									dnn_layout_convert(src, (enum dnn_layout)a, mid, (enum dnn_layout)b, C, active, H,
									                   W, B, p, parts);
								for (unsigned p = 0; p < parts; p++)
									dnn_layout_convert(mid, (enum dnn_layout)b, back, (enum dnn_layout)a, C, active,
									                   H, W, B, p, parts);
								for (unsigned c = 0; c < active; c++)
									for (size_t q = 0; q < (size_t)H * W; q++) {
										size_t at = dnn_view_base(&va, c) + q * va.step;
										ck_assert_msg(memcmp(&src[at], &back[at], sizeof(float)) == 0,
										              "%s -> %s -> %s, C=%u (active %u) %ux%u B=%u, %u parts: "
										              "channel %u position %zu differs",
										              dnn_layout_name(a), dnn_layout_name(b), dnn_layout_name(a), C,
										              active, H, W, B, parts, c, q);
									}
								checked++;
							}
				free(src);
				free(mid);
				free(back);
			}
	printf("layouts: %u round trips between nchw, nhwc and blocked (B = 4, 8, 16)\n", checked);
	ck_assert_uint_gt(checked, 1000);
}
END_TEST

/* The direct convolution in NHWC and blocked layouts on every instruction
 * set this CPU runs, and pooling in both, against the reference. */
START_TEST(test_layout_kernels)
{
	static const char *const names[] = { "avx512", "avx2", "neon", "generic" };
	static const unsigned ipgs[] = { 1, 4, 3, 8, 16 }, opgs[] = { 1, 3, 4, 8, 16, 17, 33 };
	static const unsigned sizes[] = { 2, 3, 5, 7, 8, 9, 15 };
	static const struct { unsigned k, p; } geoms[] = { { 3, 1 }, { 5, 2 }, { 3, 0 }, { 2, 0 } };
	static const struct { enum dnn_connectivity conn; bool in_g, out_g; } conns[] = {
		{ DNN_CONN_GROUPED, true, true }, { DNN_CONN_NESTED, true, true },
		{ DNN_CONN_DENSE, false, true }, { DNN_CONN_DENSE, true, false },
	};
	const struct kernel_entry wrapped = { "layout", DNN_CONV2D, layout_wrapped, dnn_f32_conv2d_ref, DNN_ISA_BASE };
	const struct kernel_entry pool_max = { "layout", DNN_MAXPOOL, layout_wrapped, dnn_f32_maxpool_ref, DNN_ISA_BASE };
	const struct kernel_entry pool_avg = { "layout", DNN_AVGPOOL, layout_wrapped, dnn_f32_avgpool_ref, DNN_ISA_BASE };
	uint32_t seed = 77;
	unsigned checked = 0, skipped = 0;
	double worst = 0;

	for (size_t n = 0; n < 4; n++) {
		if (dnn_direct_use_isa(names[n]) != 0)
			continue;
		for (unsigned lay = DNN_LAYOUT_NHWC; lay <= DNN_LAYOUT_BLOCKED; lay++) {
			wrap_layout = (enum dnn_layout)lay;
			wrap_fn = lay == DNN_LAYOUT_NHWC ? dnn_f32_conv2d_direct_nhwc : dnn_f32_conv2d_direct_blocked;
			for (size_t ci = 0; ci < 4; ci++)
				for (unsigned G = 1; G <= 4; G += 3)
					for (size_t si = 0; si < 7; si++) {
						unsigned gi = (unsigned)(si + ci) % 4, H = sizes[si], W = sizes[(si + 2 * ci + 1) % 7];
						unsigned ipg = ipgs[(si + ci + G) % 5], opg = opgs[(si * 3 + ci) % 7];
						struct dnn_layer l;
						if (H + 2 * geoms[gi].p < geoms[gi].k || W + 2 * geoms[gi].p < geoms[gi].k)
							continue;
						l = make_weighted(conns[ci].conn, conns[ci].in_g, conns[ci].out_g, G, ipg, opg, H, W,
						                  geoms[gi].k, 1, geoms[gi].p, si % 2 == 0, &seed);
						if (!dnn_direct_layout_eligible(&l, G, wrap_layout)) {
							skipped++;
							free_weighted(&l);
							continue;
						}
						for (unsigned g = 1; g <= G; g++)
							for (unsigned parts = 1; parts <= 3; parts++) {
								double err = compare(&wrapped, &l, g, G, parts, parts != 2, &seed);
								ck_assert_msg(err < TOLERANCE, "direct %s [%s] %ux%ux%u -> %u k%u p%u conn %zu at g=%u/%u, "
								              "%u parts: normalised error %g", dnn_layout_name(wrap_layout), names[n],
								              l.in_c, H, W, l.out_c, geoms[gi].k, geoms[gi].p, ci, g, G, parts, err);
								worst = err > worst ? err : worst;
								checked++;
							}
						free_weighted(&l);
					}
			/* pooling in the layout */
			wrap_fn = dnn_f32_pool_layout;
			for (int avg = 0; avg <= 1; avg++)
				for (size_t si = 0; si < 7; si++) {
					struct dnn_layer l = { 0 };
					l.type = avg ? DNN_AVGPOOL : DNN_MAXPOOL;
					l.in_grouped = l.out_grouped = true;
					l.in_c = l.out_c = (unsigned)(4 * (1 + si % 5));
					l.in_h = sizes[si];
					l.in_w = sizes[(si + 3) % 7];
					l.kh = l.kw = 2 + (unsigned)(si % 2);
					l.sh = l.sw = 2;
					if (l.kh > l.in_h || l.kw > l.in_w)
						continue;
					l.out_h = (l.in_h - l.kh) / l.sh + 1;
					l.out_w = (l.in_w - l.kw) / l.sw + 1;
					for (unsigned g = 1; g <= 4; g++)
						for (unsigned parts = 1; parts <= 3; parts += 2) {
							double err = compare(avg ? &pool_avg : &pool_max, &l, g, 4, parts, false, &seed);
							ck_assert_msg(err < TOLERANCE, "%s %s [%s] %ux%ux%u at g=%u: normalised error %g",
							              avg ? "avgpool" : "maxpool", dnn_layout_name(wrap_layout), names[n], l.in_c,
							              l.in_h, l.in_w, g, err);
							checked++;
						}
				}
		}
		printf("layouts: direct and pooling in nhwc and blocked (B=%u) with the %s tiles\n", dnn_layout_block(),
		       names[n]);
	}
	printf("layouts: %u comparisons, worst normalised error %.2g, %u layer shapes not eligible for blocked\n",
	       checked, worst, skipped);
	fflush(stdout);
	ck_assert_uint_gt(checked, 500);
	for (size_t n = 0; n < 4 && dnn_direct_use_isa(names[n]) != 0; n++)
		; /* back to the best this CPU runs */
}
END_TEST

/* The int8 kernels on every instruction set this CPU runs, against the
 * quantised reference in units of each channel's accumulator LSB (scale *
 * s_o): the integer sums must agree exactly, so any difference is float
 * rounding of the requantisation (an FMA here, not there), under half an LSB
 * (a sum off by one is one whole LSB); and the quantised result must stay
 * near the float reference (7-bit activations, 8-bit weights). */
START_TEST(test_q8_exact)
{
	static const struct {
		enum dnn_connectivity conn;
		bool in_g, out_g;
		unsigned ipg, opg, H, W, k, s, p;
	} shapes[] = {
		{ DNN_CONN_DENSE, false, true, 1, 16, 28, 28, 3, 1, 1 },  /* conv1 of the bundled model */
		{ DNN_CONN_GROUPED, true, true, 16, 32, 14, 14, 3, 1, 1 }, /* conv2 */
		{ DNN_CONN_GROUPED, true, true, 64, 64, 7, 7, 3, 1, 1 },   /* conv4 */
		{ DNN_CONN_NESTED, true, true, 6, 48, 9, 20, 3, 1, 1 },    /* quads past a segment's end */
		{ DNN_CONN_DENSE, true, false, 5, 40, 5, 30, 3, 2, 1 },    /* strided, a short panel */
		{ DNN_CONN_GROUPED, true, true, 288, 128, 1, 1, 0, 1, 0 }, /* fc1 */
		{ DNN_CONN_DENSE, true, false, 128, 10, 1, 1, 0, 1, 0 },   /* fc3 */
		{ DNN_CONN_GROUPED, true, true, 7, 9, 6, 5, 5, 1, 2 },     /* 5x5, odd everything */
	};
	static const char *const names[] = { "avx512vnni", "avx512", "avx2", "neondot", "generic" };
	uint32_t seed = 23;
	unsigned isas = 0;

	const size_t nnames = sizeof(names) / sizeof(names[0]);
	bool simd_here = dnn_isa_runs(DNN_ISA_AVX2);

#if defined(__aarch64__) && defined(__GNUC__) && !defined(__clang__)
	simd_here = (getauxval(AT_HWCAP) & (1 << 20)) != 0; /* HWCAP_ASIMDDP */
#endif
	for (size_t n = 0; n < nnames; n++) {
		if (dnn_q8_use_isa(names[n]) != 0)
			continue;
		isas++;
		printf("int8: checking q8_conv2d with the %s tiles against the reference, exactly\n", names[n]);
		for (size_t i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
			struct dnn_layer l = make_weighted(shapes[i].conn, shapes[i].in_g, shapes[i].out_g, 4, shapes[i].ipg,
			                                   shapes[i].opg, shapes[i].H, shapes[i].W, shapes[i].k, shapes[i].s,
			                                   shapes[i].p, true, &seed);
			size_t in_n = (size_t)l.in_c * l.in_h * l.in_w;
			float *in = random_floats(in_n, &seed);
			ck_assert_ptr_nonnull(l.q8);
			for (unsigned g = 1; g <= 4; g++)
				for (unsigned parts = 1; parts <= 3; parts += 2)
					for (int zp = 0; zp <= 64; zp += 64) {
						size_t out_n = (size_t)dnn_active_out(&l, g, 4) * l.out_h * l.out_w, N = (size_t)l.out_h * l.out_w;
						float *want = malloc(out_n * sizeof(float)), *got = malloc(out_n * sizeof(float));
						float *f32 = malloc(out_n * sizeof(float));
						float *col = calloc(dnn_q8_scratch_floats(&l, 4, parts) + 1, sizeof(float));
						struct dnn_block blocks[DNN_MAX_GROUPS];
						struct dnn_layer_plan plan;
						/* inputs in [-1, 1): zp 64 covers them with scale 1/63; zp 0
						 * clips the negative half, as after a ReLU */
						struct dnn_op op = { .layer = &l, .plan = &plan, .g = g, .G = 4, .in = in, .col = col,
						                     .relu = parts == 1, .q_scale = 1.0f / 63, .q_zp = zp };
						double worst = 0;
						dnn_layer_plan_fill(&l, g, 4, &plan, blocks);
						op.out = want;
						dnn_q8_conv2d_ref(&op, 0, 1);
						op.out = got;
						for (size_t i2 = 0; i2 < out_n; i2++)
							got[i2] = NAN;
						run_parts(dnn_q8_conv2d, &op, parts);
						for (size_t i2 = 0; i2 < out_n; i2++) {
							unsigned o = (unsigned)(i2 / N);
							double lsb = op.q_scale * dnn_q8_weight_scale(l.weight + (size_t)o * l.weight_cols,
							                                               l.weight_cols);
							double e = fabs((double)got[i2] - want[i2]) / lsb;
							ck_assert_msg(!isnan(got[i2]), "%s shape %zu g=%u: output %zu not written", names[n], i, g, i2);
							worst = e > worst ? e : worst;
						}
						ck_assert_msg(worst < 0.5, "%s shape %zu at g=%u, %u parts, zp %d: %g LSB off the quantised reference",
						              names[n], i, g, parts, zp, worst);
						if (zp == 64) {
							double err;
							op.out = f32;
							dnn_f32_conv2d_ref(&op, 0, 1);
							err = normalised_error(want, f32, out_n);
							ck_assert_msg(err < 0.05, "shape %zu at g=%u: int8 vs float normalised error %g", i, g, err);
						}
						free(want);
						free(got);
						free(f32);
						free(col);
					}
			free(in);
			free_weighted(&l);
		}
	}
	/* a SIMD variant besides generic wherever one exists (x86 with AVX2,
	 * arm64 with the dot product) */
	ck_assert_uint_ge(isas, simd_here ? 2 : 1);
	for (size_t n = 0; n < nnames && dnn_q8_use_isa(names[n]) != 0; n++)
		; /* back to the best this CPU runs */
}
END_TEST

/* The reference itself, on a case small enough to work out by hand: a 3x3
 * grouped conv of two groups, so the second group must not see the first. */
START_TEST(test_reference_by_hand)
{
	float w[2 * 1 * 1] = { 2.0f, -1.0f }, bias[2] = { 0.5f, 0.0f };
	float in[2 * 2 * 2] = { 1, 2, 3, 4, 10, 20, 30, 40 }, out[8];
	struct dnn_layer l = { .type = DNN_CONV2D, .conn = DNN_CONN_GROUPED, .in_c = 2, .in_h = 2, .in_w = 2,
	                       .out_c = 2, .out_h = 2, .out_w = 2, .kh = 1, .kw = 1, .sh = 1, .sw = 1,
	                       .in_grouped = true, .out_grouped = true, .weight = w, .bias = bias, .weight_cols = 1 };
	struct dnn_block blocks[DNN_MAX_GROUPS];
	struct dnn_layer_plan plan;
	struct dnn_op op = { .layer = &l, .plan = &plan, .g = 2, .G = 2, .in = in, .out = out };

	dnn_layer_plan_fill(&l, 2, 2, &plan, blocks);

	dnn_f32_conv2d_ref(&op, 0, 1);
	ck_assert_float_eq(out[0], 2.5f);
	ck_assert_float_eq(out[3], 8.5f);
	ck_assert_float_eq(out[4], -10.0f);
	ck_assert_float_eq(out[7], -40.0f);
	op.relu = true;
	dnn_f32_conv2d_ref(&op, 0, 1);
	ck_assert_float_eq(out[7], 0.0f);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dnn-kernels");
	TCase *tc = tcase_create("kernels");

	tcase_set_timeout(tc, 300);
	tcase_add_test(tc, test_reference_by_hand);
	tcase_add_test(tc, test_conv_kernels);
	tcase_add_test(tc, test_direct_model_shapes);
	tcase_add_test(tc, test_q8_exact);
	tcase_add_test(tc, test_linear_kernels);
	tcase_add_test(tc, test_pool_kernels);
	tcase_add_test(tc, test_relu_kernels);
	tcase_add_test(tc, test_layout_round_trip);
	tcase_add_test(tc, test_layout_kernels);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
