/* SPDX-License-Identifier: MIT */
/* Engine tests: a G-group model run at g computes what a separately-built
 * model holding only those g groups computes; every kernel family and thread
 * count agrees; running allocates nothing. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <malloc.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/dnn.h"
#include "dnn/internal.h"
#include "dnn/kernels.h"
#include <json-c/json.h>
#include "tests/common/compare.h"
#include "tests/common/modelgen.h"

static char tmpdir[] = "/tmp/gearbox-test-engine-XXXXXX";

static struct dnn_model *
write_and_load(const char *arch, unsigned keep, uint32_t seed)
{
	struct mg_spec spec = *mg_arch(arch);
	char path[300], *cause = NULL;
	struct dnn_model *m;

	spec.seed = seed;
	snprintf(path, sizeof(path), "%s/%s-%u-%u.st", tmpdir, arch, keep, seed);
	ck_assert_int_eq(mg_write(&spec, path, keep), 0);
	m = dnn_model_load(path, &cause);
	ck_assert_msg(m != NULL, "cannot load %s: %s", path, cause);
	return m;
}

static float *
random_input(const struct dnn_model *m, uint32_t seed)
{
	size_t n = dnn_model_input_size(m);
	float *in = malloc(n * sizeof(float));

	for (size_t i = 0; i < n; i++)
		in[i] = mg_uniform(&seed);
	return in;
}

static void
run(const struct dnn_model *m, unsigned threads, enum dnn_kernels k, unsigned g, const float *in, float *out)
{
	char *cause = NULL;
	struct dnn_pool *pool = dnn_pool_create(threads, NULL, &cause);
	struct dnn_exec *e;

	ck_assert_msg(pool != NULL, "%s", cause);
	e = dnn_exec_create(m, pool, k, &cause);
	ck_assert_msg(e != NULL, "%s", cause);
	ck_assert_int_eq(dnn_exec_run(e, g, in, out), 0);
	dnn_exec_free(e);
	dnn_pool_free(pool);
}

/* The paper's property: pruning later groups at run time changes nothing in
 * what the earlier groups compute. */
static void
check_exactness(const char *arch)
{
	struct dnn_model *full = write_and_load(arch, 0, 3);
	unsigned G = dnn_model_groups(full);
	size_t out_n = dnn_model_output_size(full);
	float *in = random_input(full, 11), *a = malloc(out_n * sizeof(float)), *b = malloc(out_n * sizeof(float));

	for (unsigned g = 1; g <= G; g++) {
		struct dnn_model *sub = write_and_load(arch, g, 3);
		ck_assert_uint_eq(dnn_model_groups(sub), g);
		ck_assert_uint_eq(dnn_model_macs(sub, g), dnn_model_macs(full, g));
		ck_assert_uint_eq(dnn_model_params(sub, g), dnn_model_params(full, g));
		for (int k = DNN_KERNELS_REF; k <= DNN_KERNELS_FAST; k++) {
			double err;
			run(full, 1, (enum dnn_kernels)k, g, in, a);
			run(sub, 1, (enum dnn_kernels)k, g, in, b);
			err = normalised_error(a, b, out_n);
			ck_assert_msg(err < 1e-6, "%s: %s kernels, g=%u of %u differs from the %u-group model: error %g", arch,
			              dnn_kernels_name((enum dnn_kernels)k), g, G, g, err);
		}
		dnn_model_free(sub);
	}
	free(in);
	free(a);
	free(b);
	dnn_model_free(full);
}

START_TEST(test_exactness_tiny)
{
	check_exactness("tiny");
}
END_TEST

START_TEST(test_exactness_alexnet)
{
	check_exactness("alexnet-fmnist");
}
END_TEST

/* ref, blas and fast agree at every g, on 1, 2 and 3 threads. */
START_TEST(test_families_and_threads_agree)
{
	static const char *const archs[] = { "tiny", "alexnet-fmnist" };

	for (size_t ai = 0; ai < 2; ai++) {
		struct dnn_model *m = write_and_load(archs[ai], 0, 5);
		size_t out_n = dnn_model_output_size(m);
		float *in = random_input(m, 17), *want = malloc(out_n * sizeof(float)), *got = malloc(out_n * sizeof(float));
		for (unsigned g = 1; g <= dnn_model_groups(m); g++) {
			run(m, 1, DNN_KERNELS_REF, g, in, want);
			for (int k = DNN_KERNELS_BLAS; k <= DNN_KERNELS_FAST; k++)
				for (unsigned t = 1; t <= 3; t++) {
					double err;
					run(m, t, (enum dnn_kernels)k, g, in, got);
					err = normalised_error(got, want, out_n);
					ck_assert_msg(err < 1e-5, "%s: %s kernels on %u threads at g=%u: error %g vs ref", archs[ai],
					              dnn_kernels_name((enum dnn_kernels)k), t, g, err);
				}
		}
		free(in);
		free(want);
		free(got);
		dnn_model_free(m);
	}
}
END_TEST

/* Different g give different answers (the groups do something), and the
 * same g twice gives the same answer bit for bit. */
START_TEST(test_g_matters_and_runs_repeat)
{
	struct dnn_model *m = write_and_load("tiny", 0, 9);
	size_t out_n = dnn_model_output_size(m);
	float *in = random_input(m, 23), *a = malloc(out_n * sizeof(float)), *b = malloc(out_n * sizeof(float));
	struct dnn_exec *e = dnn_exec_create(m, NULL, DNN_KERNELS_FAST, NULL);

	ck_assert_int_eq(dnn_exec_run(e, 1, in, a), 0);
	ck_assert_int_eq(dnn_exec_run(e, 4, in, b), 0);
	ck_assert(normalised_error(a, b, out_n) > 1e-3);
	ck_assert_int_eq(dnn_exec_run(e, 1, in, b), 0);
	ck_assert_mem_eq(a, b, out_n * sizeof(float));
	ck_assert_int_eq(dnn_exec_run(e, 0, in, b), -EINVAL);
	ck_assert_int_eq(dnn_exec_run(e, 5, in, b), -EINVAL);
	dnn_exec_free(e);
	free(in);
	free(a);
	free(b);
	dnn_model_free(m);
}
END_TEST

/* Running at any g, switching g between runs, allocates nothing. */
START_TEST(test_run_allocates_nothing)
{
	struct dnn_model *m = write_and_load("alexnet-fmnist", 0, 1);
	size_t out_n = dnn_model_output_size(m);
	float *in = random_input(m, 2), *out = malloc(out_n * sizeof(float));
	struct dnn_pool *pool = dnn_pool_create(2, NULL, NULL);
	struct dnn_exec *e = dnn_exec_create(m, pool, DNN_KERNELS_FAST, NULL);
	struct mallinfo2 before, after;

	/* One run at each g first: OpenBLAS sets up its buffers on first use. */
	for (unsigned g = 1; g <= 4; g++)
		dnn_exec_run(e, g, in, out);
	before = mallinfo2();
	for (unsigned i = 0; i < 40; i++)
		dnn_exec_run(e, 1 + i % 4, in, out);
	after = mallinfo2();
	ck_assert_uint_eq(after.uordblks, before.uordblks);
	ck_assert_uint_eq(after.hblkhd, before.hblkhd);
	dnn_exec_free(e);
	dnn_pool_free(pool);
	free(in);
	free(out);
	dnn_model_free(m);
}
END_TEST

/* Weights are used where they lie in the file's mapping: no copy per g. */
START_TEST(test_weights_not_copied)
{
	struct dnn_model *m = write_and_load("alexnet-fmnist", 0, 1);
	const char *lo = m->map, *hi = lo + m->map_size;

	for (size_t i = 0; i < m->n_layers; i++) {
		const struct dnn_layer *l = &m->layers[i];
		if (l->weight == NULL)
			continue;
		ck_assert((const char *)l->weight >= lo && (const char *)l->weight < hi);
		ck_assert(l->bias == NULL || ((const char *)l->bias >= lo && (const char *)l->bias < hi));
	}
	dnn_model_free(m);
}
END_TEST

/* Every inference runs on its pool's CPUs, a one-thread pool's too: while a
 * thread runs inferences on a pool bound to one CPU, its affinity (sampled
 * from outside) is that CPU. */
struct bound_run {
	struct dnn_exec *exec;
	const float *in;
	float *out;
	pid_t tid;
	volatile int done;
};

static void *
run_many(void *arg)
{
	struct bound_run *b = arg;

	b->tid = (pid_t)syscall(SYS_gettid);
	for (int i = 0; i < 30; i++)
		dnn_exec_run(b->exec, 4, b->in, b->out);
	b->done = 1;
	return NULL;
}

START_TEST(test_one_thread_runs_on_its_cpus)
{
	struct dnn_model *m = write_and_load("alexnet-fmnist", 0, 1);
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	struct bound_run b = { 0 };
	struct dnn_pool *pool;
	pthread_t t;
	unsigned bound = 0, samples = 0;
	int cpu = (int)(ncpu > 1 ? ncpu - 1 : 0);

	hwloc_bitmap_only(set, (unsigned)cpu);
	pool = dnn_pool_create(1, set, NULL);
	b.exec = dnn_exec_create(m, pool, DNN_KERNELS_REF, NULL);
	b.in = random_input(m, 3);
	b.out = malloc(dnn_model_output_size(m) * sizeof(float));
	ck_assert(pool != NULL && b.exec != NULL);
	pthread_create(&t, NULL, run_many, &b);
	while (!b.done) {
		cpu_set_t mask;
		if (b.tid != 0 && sched_getaffinity(b.tid, sizeof(mask), &mask) == 0) {
			samples++;
			bound += CPU_COUNT(&mask) == 1 && CPU_ISSET(cpu, &mask);
		}
		usleep(200);
	}
	pthread_join(t, NULL);
	ck_assert_msg(samples > 0 && bound * 2 >= samples, "bound to CPU %d in %u of %u samples", cpu, bound, samples);
	dnn_exec_free(b.exec);
	dnn_pool_free(pool);
	hwloc_bitmap_free(set);
	free((float *)b.in);
	free(b.out);
	dnn_model_free(m);
}
END_TEST

/* normalize_u8 applies (p/255 - mean)/std per channel. */
START_TEST(test_normalize)
{
	struct dnn_model *m = write_and_load("tiny", 0, 1);
	size_t n = dnn_model_input_size(m);
	uint8_t *px = calloc(n, 1);
	float *in = malloc(n * sizeof(float));

	px[0] = 255;
	px[1] = 0;
	dnn_model_normalize_u8(m, px, in);
	/* modelgen writes mean 0.25, std 0.5 */
	ck_assert_float_eq_tol(in[0], 1.5f, 1e-6f);
	ck_assert_float_eq_tol(in[1], -0.5f, 1e-6f);
	free(px);
	free(in);
	dnn_model_free(m);
}
END_TEST

/* ---- per-layer plans ------------------------------------------------------ */

static void
run_plan(const struct dnn_model *m, unsigned threads, const struct dnn_lplan *p, unsigned g, const float *in, float *out)
{
	char *cause = NULL;
	struct dnn_pool *pool = dnn_pool_create(threads, NULL, &cause);
	struct dnn_exec *e;

	ck_assert_msg(pool != NULL, "%s", cause);
	e = dnn_exec_create(m, pool, DNN_KERNELS_FAST, &cause);
	ck_assert_msg(e != NULL, "%s", cause);
	ck_assert_msg(dnn_exec_set_lplan(e, p, &cause) == 0, "%s", cause);
	ck_assert_int_eq(dnn_exec_run(e, g, in, out), 0);
	dnn_exec_free(e);
	dnn_pool_free(pool);
}

/* Every float implementation, put on every layer that can run it, computes
 * what the reference does, at every g and on 1 and 2 threads; and a mixed
 * plan (a different choice per layer and per g) too; then the direct
 * convolution in NHWC and blocked layouts everywhere it can, and layouts
 * mixed per layer and per g (conversions between layers, pooling in the
 * layouts, back to NCHW before the classifier). */
START_TEST(test_plan_float_variants)
{
	static const char *const archs[] = { "tiny", "alexnet-fmnist" };
	static const enum dnn_impl impls[] = { DNN_IMPL_GEMM, DNN_IMPL_DIRECT, DNN_IMPL_WINO2, DNN_IMPL_WINO4 };

	for (size_t ai = 0; ai < 2; ai++) {
		struct dnn_model *m = write_and_load(archs[ai], 0, 5);
		size_t out_n = dnn_model_output_size(m), L = dnn_model_layer_count(m);
		float *in = random_input(m, 19), *want = malloc(out_n * sizeof(float)), *got = malloc(out_n * sizeof(float));
		for (size_t k = 0; k <= 7; k++) {
			struct dnn_lplan *p = dnn_lplan_new(m);
			unsigned set = 0, laid = 0;
			for (unsigned g = 1; g <= dnn_model_groups(m); g++)
				for (size_t i = 0; i < L; i++) {
					enum dnn_impl impl = k < 4 ? impls[k] : k == 4 ? impls[(i + g) % 4] : DNN_IMPL_DIRECT;
					enum dnn_layout lay = k == 5 ? DNN_LAYOUT_NHWC : k == 6 ? DNN_LAYOUT_BLOCKED
					                                                        : (enum dnn_layout)((i + g) % 3);
					if (dnn_impl_applies(m, i, impl) && dnn_lplan_set(p, m, g, i, impl) == 0)
						set++;
					if (k >= 5 && dnn_layout_applies(m, i, impl, lay) && dnn_lplan_set_layout(p, m, g, i, lay) == 0 &&
					    lay != DNN_LAYOUT_NCHW)
						laid++;
				}
			ck_assert_uint_gt(set, 0);
			if (k >= 5)
				ck_assert_uint_gt(laid, 0);
			for (unsigned g = 1; g <= dnn_model_groups(m); g++) {
				run(m, 1, DNN_KERNELS_REF, g, in, want);
				for (unsigned t = 1; t <= 2; t++) {
					double err;
					run_plan(m, t, p, g, in, got);
					err = normalised_error(got, want, out_n);
					ck_assert_msg(err < 1e-4, "%s, plan %s, g=%u, %u threads: error %g", archs[ai],
					              k < 4 ? dnn_impl_name(impls[k]) : k == 4 ? "mixed" : k == 5 ? "nhwc"
					              : k == 6 ? "blocked" : "mixed layouts", g, t, err);
				}
			}
			dnn_lplan_free(p);
		}
		free(in);
		free(want);
		free(got);
		dnn_model_free(m);
	}
}
END_TEST

/* The quantised network written plainly: the reference kernels, and the
 * quantised reference for each int8 layer with the plan's scales. */
static void
run_q8_reference(const struct dnn_model *m, const struct dnn_lplan *p, unsigned g, const float *in, float *out)
{
	size_t L = m->n_layers;
	float *a = malloc(m->max_act * sizeof(float)), *b = malloc(m->max_act * sizeof(float));
	const float *src = in;

	for (size_t i = 0; i < L; i++) {
		const struct dnn_layer *l = &m->layers[i];
		const struct dnn_layer_plan *lp = &m->plans[g - 1].layers[i];
		struct dnn_op op = { .layer = l, .plan = lp, .g = g, .G = m->groups, .in = src, .out = a, .n = lp->out_n };
		if (l->type == DNN_FLATTEN)
			continue;
		if (l->weight != NULL && dnn_lplan_get(p, g, i) == DNN_IMPL_INT8) {
			ck_assert_int_eq(dnn_lplan_scale(p, g, i, &op.q_scale, &op.q_zp), 0);
			dnn_q8_conv2d_ref(&op, 0, 1);
		} else if (l->weight != NULL) {
			dnn_f32_conv2d_ref(&op, 0, 1);
		} else if (l->type == DNN_RELU) {
			dnn_f32_relu_ref(&op, 0, 1);
		} else if (l->type == DNN_MAXPOOL) {
			dnn_f32_maxpool_ref(&op, 0, 1);
		} else if (l->type == DNN_AVGPOOL) {
			dnn_f32_avgpool_ref(&op, 0, 1);
		} else if (l->type == DNN_SOFTMAX) {
			dnn_f32_softmax_ref(&op, 0, 1);
		}
		src = a;
		a = b;
		b = (float *)src;
	}
	memcpy(out, src, m->classes * sizeof(float));
	free(a);
	free(b);
}

/* int8 end to end on the tiny model (and the bundled shape): calibrated on
 * one set of inputs, every weighted layer int8, the engine on 1 and 2 threads
 * computes what the quantised reference network computes (a requantisation
 * rounding apart, at most one step of a next layer's input), and stays close
 * to the float network on inputs inside the calibrated ranges (random weights
 * and 7-bit activations: within 10 % on the bundled shape, 4 % measured; 25 %
 * on tiny, whose softmax over 5 classes of small random logits magnifies it,
 * 18 % measured). */
START_TEST(test_plan_int8_end_to_end)
{
	static const char *const archs[] = { "tiny", "alexnet-fmnist" };

	for (size_t ai = 0; ai < 2; ai++) {
		struct dnn_model *m = write_and_load(archs[ai], 0, 7);
		size_t out_n = dnn_model_output_size(m), in_n = dnn_model_input_size(m), L = dnn_model_layer_count(m);
		float *calib = malloc(8 * in_n * sizeof(float));
		float *want = malloc(out_n * sizeof(float)), *got = malloc(out_n * sizeof(float));
		float *f32 = malloc(out_n * sizeof(float));
		struct dnn_lplan *p = dnn_lplan_new(m);
		char *cause = NULL;
		for (size_t k = 0; k < 8; k++) {
			float *one = random_input(m, 100 + (uint32_t)k);
			memcpy(calib + k * in_n, one, in_n * sizeof(float));
			free(one);
		}
		for (unsigned g = 1; g <= dnn_model_groups(m); g++) {
			ck_assert_msg(dnn_lplan_calibrate(p, m, g, calib, 8, &cause) == 0, "%s", cause);
			for (size_t i = 0; i < L; i++)
				if (dnn_impl_applies(m, i, DNN_IMPL_INT8) && m->layers[i].weight != NULL)
					ck_assert_int_eq(dnn_lplan_set(p, m, g, i, DNN_IMPL_INT8), 0);
		}
		ck_assert_uint_lt(dnn_lplan_weight_bytes(p, m, dnn_model_groups(m)),
		                  dnn_lplan_weight_bytes(NULL, m, dnn_model_groups(m)) / 3);
		for (unsigned g = 1; g <= dnn_model_groups(m); g++) {
			float *in = malloc(in_n * sizeof(float));
			/* one of the calibration inputs: its values are inside the ranges, so
			 * the float comparison sees quantisation, not clipping */
			memcpy(in, calib + (g % 8) * in_n, in_n * sizeof(float));
			run_q8_reference(m, p, g, in, want);
			run(m, 1, DNN_KERNELS_REF, g, in, f32);
			for (unsigned t = 1; t <= 2; t++) {
				double err;
				run_plan(m, t, p, g, in, got);
				err = normalised_error(got, want, out_n);
				ck_assert_msg(err < 2e-3, "%s g=%u, %u threads: int8 engine vs quantised reference: error %g",
				              archs[ai], g, t, err);
			}
			ck_assert_msg(normalised_error(got, f32, out_n) < (ai == 0 ? 0.25 : 0.1), "%s g=%u: int8 vs float: error %g", archs[ai], g,
			              normalised_error(got, f32, out_n));
			free(in);
		}
		dnn_lplan_free(p);
		free(calib);
		free(want);
		free(got);
		free(f32);
		dnn_model_free(m);
	}
}
END_TEST

static void
rewrite_key(const char *path, const char *key, struct json_object *value)
{
	struct json_object *root = json_object_from_file(path);

	ck_assert_ptr_nonnull(root);
	json_object_object_add(root, key, value);
	ck_assert_int_eq(json_object_to_file(path, root), 0);
	json_object_put(root);
}

/* A plan file read back is the plan written; one for other model contents,
 * another CPU, other instruction sets or another format version is refused
 * with the reason. */
START_TEST(test_plan_file)
{
	struct dnn_model *m = write_and_load("tiny", 0, 9), *other = write_and_load("tiny", 0, 10);
	struct dnn_lplan *p = dnn_lplan_new(m), *q;
	size_t L = dnn_model_layer_count(m), in_n = dnn_model_input_size(m);
	float *calib = random_input(m, 5);
	char path[300], *cause = NULL;
	static const struct { const char *key, *value, *says; } wrong[] = {
		{ "cpu", "Imaginary CPU 9000", "another CPU" },
		{ "isa", "neon-sve9", "kernels" },
		{ "isa_int8", "vnni9", "int8 kernels" },
		{ "format", "something-else", "not a gearbox plan" },
	};

	(void)in_n;
	snprintf(path, sizeof(path), "%s/tiny.plan", tmpdir);
	for (unsigned g = 1; g <= dnn_model_groups(m); g++) {
		ck_assert_int_eq(dnn_lplan_calibrate(p, m, g, calib, 1, &cause), 0);
		for (size_t i = 0; i < L; i++) {
			static const enum dnn_impl order[] = { DNN_IMPL_INT8, DNN_IMPL_WINO4, DNN_IMPL_DIRECT, DNN_IMPL_WINO2,
				                               DNN_IMPL_GEMM };
			enum dnn_impl impl = order[(i + g) % 5];
			if (dnn_impl_applies(m, i, impl) && m->layers[i].weight != NULL)
				ck_assert_int_eq(dnn_lplan_set(p, m, g, i, impl), 0);
			if (impl == DNN_IMPL_DIRECT && dnn_layout_applies(m, i, impl, (enum dnn_layout)(g % 3)))
				ck_assert_int_eq(dnn_lplan_set_layout(p, m, g, i, (enum dnn_layout)(g % 3)), 0);
		}
		ck_assert_int_eq(dnn_lplan_set_layout(p, m, g, 1, DNN_LAYOUT_NHWC), -EINVAL); /* a ReLU */
		dnn_lplan_set_measured(p, g, 100.0 * g, 0.5 + 0.1 * g);
	}
	ck_assert_int_eq(dnn_lplan_set(p, m, 1, 1, DNN_IMPL_INT8), -EINVAL); /* a ReLU has no weights */
	ck_assert_msg(dnn_lplan_save(p, m, path, &cause) == 0, "%s", cause);
	q = dnn_lplan_load(m, path, &cause);
	ck_assert_msg(q != NULL, "%s", cause);
	for (unsigned g = 1; g <= dnn_model_groups(m); g++)
		for (size_t i = 0; i < L; i++) {
			float s1, s2;
			int z1, z2;
			ck_assert_int_eq(dnn_lplan_get(q, g, i), dnn_lplan_get(p, g, i));
			ck_assert_int_eq(dnn_lplan_get_layout(q, g, i), dnn_lplan_get_layout(p, g, i));
			if (m->layers[i].weight == NULL)
				continue;
			ck_assert_int_eq(dnn_lplan_scale(p, g, i, &s1, &z1), 0);
			ck_assert_int_eq(dnn_lplan_scale(q, g, i, &s2, &z2), 0);
			ck_assert_float_eq_tol(s1, s2, s1 * 1e-6f);
			ck_assert_int_eq(z1, z2);
		}
	dnn_lplan_free(q);

	ck_assert_ptr_null(dnn_lplan_load(other, path, &cause));
	ck_assert_msg(strstr(cause, "another model file") != NULL, "%s", cause);
	free(cause);
	cause = NULL;
	for (size_t w = 0; w < sizeof(wrong) / sizeof(wrong[0]); w++) {
		ck_assert_int_eq(dnn_lplan_save(p, m, path, &cause), 0);
		rewrite_key(path, wrong[w].key, json_object_new_string(wrong[w].value));
		ck_assert_ptr_null(dnn_lplan_load(m, path, &cause));
		ck_assert_msg(strstr(cause, wrong[w].says) != NULL, "%s: %s", wrong[w].key, cause);
		free(cause);
		cause = NULL;
	}
	ck_assert_int_eq(dnn_lplan_save(p, m, path, &cause), 0);
	rewrite_key(path, "version", json_object_new_int(3));
	ck_assert_ptr_null(dnn_lplan_load(m, path, &cause));
	ck_assert_msg(strstr(cause, "version 3; this gearbox reads versions 1 to 2") != NULL, "%s", cause);
	free(cause);
	cause = NULL;
	/* version 1: read (NCHW everywhere), unless it names layouts */
	{
		struct dnn_lplan *v1 = dnn_lplan_copy(p);
		for (unsigned g = 1; g <= dnn_model_groups(m); g++)
			for (size_t i = 0; i < L; i++)
				dnn_lplan_set_layout(v1, m, g, i, DNN_LAYOUT_NCHW);
		ck_assert_int_eq(dnn_lplan_save(v1, m, path, &cause), 0);
		rewrite_key(path, "version", json_object_new_int(1));
		q = dnn_lplan_load(m, path, &cause);
		ck_assert_msg(q != NULL, "version 1: %s", cause);
		for (unsigned g = 1; g <= dnn_model_groups(m); g++)
			for (size_t i = 0; i < L; i++) {
				ck_assert_int_eq(dnn_lplan_get(q, g, i), dnn_lplan_get(p, g, i));
				ck_assert_int_eq(dnn_lplan_get_layout(q, g, i), DNN_LAYOUT_NCHW);
			}
		dnn_lplan_free(q);
		dnn_lplan_free(v1);
		ck_assert_int_eq(dnn_lplan_save(p, m, path, &cause), 0);
		rewrite_key(path, "version", json_object_new_int(1));
		ck_assert_ptr_null(dnn_lplan_load(m, path, &cause));
		ck_assert_msg(strstr(cause, "layouts came with version 2") != NULL, "%s", cause);
		free(cause);
	}
	dnn_lplan_free(p);
	free(calib);
	dnn_model_free(m);
	dnn_model_free(other);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dnn-engine");
	TCase *tc = tcase_create("engine");

	tcase_set_timeout(tc, 600);
	tcase_add_test(tc, test_exactness_tiny);
	tcase_add_test(tc, test_exactness_alexnet);
	tcase_add_test(tc, test_families_and_threads_agree);
	tcase_add_test(tc, test_g_matters_and_runs_repeat);
	tcase_add_test(tc, test_run_allocates_nothing);
	tcase_add_test(tc, test_weights_not_copied);
	tcase_add_test(tc, test_normalize);
	tcase_add_test(tc, test_one_thread_runs_on_its_cpus);
	tcase_add_test(tc, test_plan_float_variants);
	tcase_add_test(tc, test_plan_int8_end_to_end);
	tcase_add_test(tc, test_plan_file);
	suite_add_tcase(s, tc);
	return run_suite_in_tmpdir(s, tmpdir);
}
