/* SPDX-License-Identifier: MIT */
/* bench/kernels — time the reference kernels, the BLAS path (im2col + GEMM)
 * and the fast path (fused epilogues, vectorised pooling) on the same model
 * for every g, print the ratios, and measure what switching g between two
 * requests costs.
 *
 *   bench/kernels [MODEL] [--iterations N] [--threads N]
 *
 * Without MODEL it writes a randomly-initialised model with the bundled
 * model's shape (alexnet-fmnist; timing does not depend on weight values). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnn/dnn.h"
#include "common/clock.h"
#include "tests/common/modelgen.h"

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
median(double *v, unsigned n)
{
	qsort(v, n, sizeof(double), cmp);
	return v[n / 2];
}

/* Median latency at g, each run preceded by one run at `before` (0: none). */
static double
time_runs(struct dnn_exec *e, unsigned g, unsigned before, const float *in, float *out, unsigned iters)
{
	double *t = malloc(iters * sizeof(double)), m;

	for (unsigned i = 0; i < 3; i++)
		dnn_exec_run(e, g, in, out);
	for (unsigned i = 0; i < iters; i++) {
		double t0;
		if (before)
			dnn_exec_run(e, before, in, out);
		t0 = monotonic_us();
		dnn_exec_run(e, g, in, out);
		t[i] = monotonic_us() - t0;
	}
	m = median(t, iters);
	free(t);
	return m;
}

int
main(int argc, char **argv)
{
	const char *path = NULL;
	char tmp[] = "/tmp/gearbox-bench-XXXXXX", model_path[300];
	unsigned iters = 100, threads = 1;
	struct dnn_model *m;
	struct dnn_pool *pool;
	char *cause = NULL;
	double t[3][DNN_MAX_GROUPS + 1];

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc)
			iters = (unsigned)atoi(argv[++i]);
		else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			threads = (unsigned)atoi(argv[++i]);
		else if (argv[i][0] != '-')
			path = argv[i];
		else {
			fprintf(stderr, "usage: bench/kernels [MODEL] [--iterations N] [--threads N]\n");
			return 2;
		}
	}
	if (iters < 3)
		iters = 3;
	if (path == NULL) {
		if (mkdtemp(tmp) == NULL)
			return 1;
		snprintf(model_path, sizeof(model_path), "%s/alexnet-fmnist.st", tmp);
		if (mg_write(mg_arch("alexnet-fmnist"), model_path, 0) != 0)
			return 1;
		path = model_path;
	}
	if ((m = dnn_model_load(path, &cause)) == NULL) {
		fprintf(stderr, "bench/kernels: %s\n", cause);
		return 1;
	}
	pool = dnn_pool_create(threads, NULL, &cause);
	size_t in_n = dnn_model_input_size(m);
	float *in = malloc(in_n * sizeof(float)), *out = malloc(dnn_model_output_size(m) * sizeof(float));
	uint32_t seed = 3;
	for (size_t i = 0; i < in_n; i++)
		in[i] = mg_uniform(&seed);
	unsigned G = dnn_model_groups(m);

	printf("model %s (%s), %u thread%s, median of %u runs\n\n", dnn_model_name(m), path, threads,
	       threads == 1 ? "" : "s", iters);
	printf("%-3s %10s %12s %12s %12s %10s %10s\n", "g", "MFLOPs", "ref us", "blas us", "fast us", "ref/fast",
	       "blas/fast");
	for (int k = DNN_KERNELS_REF; k <= DNN_KERNELS_FAST; k++) {
		struct dnn_exec *e = dnn_exec_create(m, k == DNN_KERNELS_FAST ? pool : NULL, (enum dnn_kernels)k, &cause);
		for (unsigned g = 1; g <= G; g++)
			t[k][g] = time_runs(e, g, 0, in, out, k == DNN_KERNELS_REF ? (iters + 9) / 10 : iters);
		dnn_exec_free(e);
	}
	for (unsigned g = 1; g <= G; g++)
		printf("%-3u %10.2f %12.1f %12.1f %12.1f %9.1fx %9.2fx\n", g, 2.0 * (double)dnn_model_macs(m, g) / 1e6,
		       t[0][g], t[1][g], t[2][g], t[0][g] / t[2][g], t[1][g] / t[2][g]);

	/* Switching g: a run at g right after a run at another g, against a run
	 * right after one at the same g. The difference is what a switch costs
	 * (no state changes hands; what remains is cache warmth). */
	struct dnn_exec *e = dnn_exec_create(m, pool, DNN_KERNELS_FAST, &cause);
	printf("\ng-switch cost (fast kernels): median latency at g after a run at g' minus after a run at g\n");
	printf("%-10s %14s %14s %12s\n", "g' -> g", "after g' us", "after g us", "switch us");
	for (unsigned a = 1; a <= G; a += G - 1)
		for (unsigned b = 1; b <= G; b += G - 1) {
			if (a == b)
				continue;
			double sw = time_runs(e, b, a, in, out, iters), same = time_runs(e, b, b, in, out, iters);
			printf("%u -> %-5u %14.1f %14.1f %12.1f\n", a, b, sw, same, sw - same);
		}
	dnn_exec_free(e);
	dnn_pool_free(pool);
	dnn_model_free(m);
	free(in);
	free(out);
	if (path == model_path) {
		unlink(model_path);
		rmdir(tmp);
	}
	return 0;
}
