/* SPDX-License-Identifier: MIT */
/* The OpenCL backend against the CPU reference kernels: every op over shape
 * families (kernel sizes, strides, padding, odd maps, channel counts that are
 * not multiples of the kernels' 4-channel tiles, grouped and nested
 * connectivity, with and without bias) at every g, by normalised error; the
 * program-binary cache; and the errors a caller must get (no such device,
 * build failure, device fault). Runs on whatever OpenCL device 0 is (PoCL's
 * CPU device in CI) and is skipped, saying why, where there is none. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dnn/dnn.h"
#include "tests/common/compare.h"
#include "tests/common/modelgen.h"

static char tmpdir[] = "/tmp/gearbox-test-opencl-XXXXXX";
static struct dnn_cl *device; /* opened by each test (check forks one process per test) */
static char fixture_cache[320];

#define TOLERANCE 1e-4

static struct dnn_model *
write_and_load(const struct mg_spec *spec, const char *tag)
{
	char path[300], *cause = NULL;
	struct dnn_model *m;

	snprintf(path, sizeof(path), "%s/%s.st", tmpdir, tag);
	ck_assert_int_eq(mg_write(spec, path, 0), 0);
	m = dnn_model_load(path, &cause);
	ck_assert_msg(m != NULL, "cannot load %s: %s", path, cause);
	return m;
}

/* OpenCL vs the CPU reference at every g, on three inputs. */
static void
check_model(const struct dnn_model *m, const char *what)
{
	size_t in_n = dnn_model_input_size(m), out_n = dnn_model_output_size(m);
	float *in = malloc(in_n * sizeof(float)), *want = malloc(out_n * sizeof(float)),
	      *got = malloc(out_n * sizeof(float));
	struct dnn_exec *ref = dnn_exec_create(m, NULL, DNN_KERNELS_REF, NULL);
	char *cause = NULL;
	struct dnn_cl_exec *cl = dnn_cl_exec_create(device, m, &cause);
	uint32_t seed = 99;

	ck_assert_msg(cl != NULL, "%s: %s", what, cause);
	for (int input = 0; input < 3; input++) {
		for (size_t i = 0; i < in_n; i++)
			in[i] = mg_uniform(&seed);
		for (unsigned g = 1; g <= dnn_model_groups(m); g++) {
			struct dnn_cl_timing t;
			double err;
			ck_assert_int_eq(dnn_exec_run(ref, g, in, want), 0);
			memset(got, 0xff, out_n * sizeof(float)); /* NaN: a value not written shows */
			ck_assert_msg(dnn_cl_exec_run(cl, g, in, got, &t, &cause) == 0, "%s g=%u: %s", what, g, cause);
			err = normalised_error(got, want, out_n);
			ck_assert_msg(err < TOLERANCE, "%s, g=%u, input %d: OpenCL vs reference error %g", what, g, input, err);
			ck_assert(t.kernel_us > 0 && t.upload_us >= 0 && t.download_us >= 0);
		}
	}
	ck_assert_int_eq(dnn_cl_exec_run(cl, 0, in, got, NULL, &cause), -EINVAL);
	free(cause);
	dnn_cl_exec_free(cl);
	dnn_exec_free(ref);
	free(in);
	free(want);
	free(got);
}

/* One op family between a dense first layer and a classifier. */
struct family {
	const char *name;
	unsigned in_c, in_h, in_w;
	struct mg_layer layers[6];
	size_t n;
};

#define RELU { MG_RELU, 0, 0, 0, 0, false, false }
#define FLAT { MG_FLATTEN, 0, 0, 0, 0, false, false }
#define FC(n) { MG_LINEAR, n, 0, 0, 0, false, false }

static const struct family families[] = {
	{ "conv 1x1 s1, 12 channels (3 per group)", 2, 9, 9,
	  { { MG_CONV, 12, 1, 1, 0, false, false }, FLAT, FC(7) }, 3 },
	{ "conv 3x3 s1 p1 grouped, 20 channels (5 per group) + relu", 1, 7, 9,
	  { { MG_CONV, 8, 3, 1, 1, false, false }, { MG_CONV, 20, 3, 1, 1, false, false }, RELU, FLAT, FC(6) }, 5 },
	{ "conv 5x5 s2 p2 nested on 11x11", 3, 11, 11,
	  { { MG_CONV, 8, 3, 1, 1, false, false }, { MG_CONV, 8, 5, 2, 2, true, false }, FLAT, FC(5) }, 4 },
	{ "conv 3x3 s2 p0 without bias", 2, 10, 10,
	  { { MG_CONV, 4, 3, 1, 1, false, false }, { MG_CONV, 16, 3, 2, 0, false, true }, RELU, FLAT, FC(4) }, 5 },
	{ "maxpool 3x3 s2 on 9x9", 1, 9, 9,
	  { { MG_CONV, 8, 3, 1, 1, false, false }, { MG_MAXPOOL, 0, 3, 2, 0, false, false }, FLAT, FC(5) }, 4 },
	{ "maxpool 2x2 s2 on odd 7x7", 2, 7, 7,
	  { { MG_CONV, 12, 3, 1, 1, false, false }, { MG_MAXPOOL, 0, 2, 2, 0, false, false }, FLAT, FC(5) }, 4 },
	{ "avgpool 2x2 s1", 1, 6, 6,
	  { { MG_CONV, 4, 3, 1, 1, false, false }, { MG_AVGPOOL, 0, 2, 1, 0, false, false }, FLAT, FC(5) }, 4 },
	{ "linear nested + relu, long rows", 1, 12, 12,
	  { { MG_CONV, 16, 3, 1, 1, false, false }, FLAT, { MG_LINEAR, 36, 0, 0, 0, true, false }, RELU, FC(9) }, 5 },
	{ "linear grouped without bias + softmax", 1, 5, 5,
	  { { MG_CONV, 8, 3, 1, 0, false, false }, FLAT, { MG_LINEAR, 12, 0, 0, 0, false, true }, FC(3),
	    { MG_SOFTMAX, 0, 0, 0, 0, false, false } }, 5 },
};

START_TEST(test_op_families)
{
	const struct family *f = &families[_i];
	struct mg_spec spec = { "family", 4, f->in_c, f->in_h, f->in_w, 0, f->layers, f->n, 7 + (uint32_t)_i, NULL };
	char tag[32];
	struct dnn_model *m;

	spec.classes = f->layers[f->n - 1].type == MG_SOFTMAX ? f->layers[f->n - 2].out : f->layers[f->n - 1].out;
	snprintf(tag, sizeof(tag), "family-%d", _i);
	m = write_and_load(&spec, tag);
	check_model(m, f->name);
	dnn_model_free(m);
}
END_TEST

START_TEST(test_architectures)
{
	static const char *const archs[] = { "tiny", "alexnet-fmnist", "alexnet-cifar" };
	struct mg_spec spec = *mg_arch(archs[_i]);
	struct dnn_model *m = write_and_load(&spec, archs[_i]);

	check_model(m, archs[_i]);
	dnn_model_free(m);
}
END_TEST

/* Two contexts on one device run one after the other without disturbing
 * each other's weights or buffers. */
START_TEST(test_two_contexts)
{
	struct mg_spec a = *mg_arch("tiny"), b = *mg_arch("tiny");
	struct dnn_model *ma, *mb;
	struct dnn_cl_exec *ea, *eb;
	float in[128], out_a[8], out_b[8], again[8];

	b.seed = 5;
	ma = write_and_load(&a, "ctx-a");
	mb = write_and_load(&b, "ctx-b");
	ea = dnn_cl_exec_create(device, ma, NULL);
	eb = dnn_cl_exec_create(device, mb, NULL);
	ck_assert(ea != NULL && eb != NULL);
	for (size_t i = 0; i < dnn_model_input_size(ma); i++)
		in[i] = (float)i / 64.0f - 1.0f;
	ck_assert_int_eq(dnn_cl_exec_run(ea, 4, in, out_a, NULL, NULL), 0);
	ck_assert_int_eq(dnn_cl_exec_run(eb, 4, in, out_b, NULL, NULL), 0);
	ck_assert_int_eq(dnn_cl_exec_run(ea, 4, in, again, NULL, NULL), 0);
	ck_assert_mem_eq(out_a, again, dnn_model_output_size(ma) * sizeof(float));
	ck_assert(normalised_error(out_a, out_b, dnn_model_output_size(ma)) > 1e-3);
	dnn_cl_exec_free(ea);
	dnn_cl_exec_free(eb);
	dnn_model_free(ma);
	dnn_model_free(mb);
}
END_TEST

/* The first open builds from source and writes the binary; the second loads
 * it; a corrupt file is rebuilt from source rather than failing. */
START_TEST(test_binary_cache)
{
	char cache[300], cmd[400], *cause = NULL;
	struct dnn_cl *cl;
	const struct dnn_cl_info *info;

	snprintf(cache, sizeof(cache), "%s/cache", tmpdir);
	cl = dnn_cl_open(0, cache, &cause);
	ck_assert_msg(cl != NULL, "%s", cause);
	info = dnn_cl_get_info(cl);
	ck_assert(!info->from_cache);
	ck_assert_msg(info->cache_written, "no program binary written to %s", cache);
	dnn_cl_close(cl);

	cl = dnn_cl_open(0, cache, &cause);
	ck_assert_msg(cl != NULL, "%s", cause);
	ck_assert_msg(dnn_cl_get_info(cl)->from_cache, "the cached binary in %s was not used", cache);
	dnn_cl_close(cl);

	snprintf(cmd, sizeof(cmd), "for f in '%s'/opencl-*.bin; do echo garbage > \"$f\"; done", cache);
	ck_assert_int_eq(system(cmd), 0);
	cl = dnn_cl_open(0, cache, &cause);
	ck_assert_msg(cl != NULL, "a corrupt cache must be rebuilt, not fail: %s", cause);
	ck_assert(!dnn_cl_get_info(cl)->from_cache);
	ck_assert(dnn_cl_get_info(cl)->cache_written);
	dnn_cl_close(cl);
}
END_TEST

START_TEST(test_errors_name_the_problem)
{
	char *cause = NULL;
	struct mg_spec spec = *mg_arch("tiny");
	struct dnn_model *m = write_and_load(&spec, "errors");
	struct dnn_cl *cl;
	struct dnn_cl_exec *e;
	float in[128] = { 0 }, out[8];

	ck_assert(dnn_cl_open(250, NULL, &cause) == NULL);
	ck_assert_msg(strstr(cause, "opencl:250") && strstr(cause, "no such device"), "%s", cause);
	free(cause);
	cause = NULL;

	/* a real build failure: an option the compiler refuses */
	setenv("GEARBOX_OPENCL_BUILD_OPTIONS", "-DBROKEN=( -cl-no-such-option", 1);
	cl = dnn_cl_open(0, NULL, &cause);
	unsetenv("GEARBOX_OPENCL_BUILD_OPTIONS");
	ck_assert(cl == NULL);
	ck_assert_msg(strstr(cause, "building the gearbox kernels") != NULL, "%s", cause);
	free(cause);
	cause = NULL;

	/* a device that fails mid-use */
	setenv("GEARBOX_OPENCL_FAULT_AFTER", "2", 1);
	cl = dnn_cl_open(0, NULL, &cause);
	unsetenv("GEARBOX_OPENCL_FAULT_AFTER");
	ck_assert_msg(cl != NULL, "%s", cause);
	e = dnn_cl_exec_create(cl, m, &cause);
	ck_assert_msg(e != NULL, "%s", cause);
	ck_assert_int_eq(dnn_cl_exec_run(e, 1, in, out, NULL, NULL), 0);
	ck_assert_int_eq(dnn_cl_exec_run(e, 2, in, out, NULL, NULL), 0);
	ck_assert_int_eq(dnn_cl_exec_run(e, 3, in, out, NULL, &cause), -EIO);
	ck_assert_msg(strstr(cause, "opencl:0") != NULL, "%s", cause);
	free(cause);
	dnn_cl_exec_free(e);
	dnn_cl_close(cl);
	dnn_model_free(m);
}
END_TEST

/* The device, opened in the test's own process (an OpenCL driver's threads do
 * not survive fork), from the binary the first test cached. */
static void
open_device(void)
{
	char *cause = NULL;

	snprintf(fixture_cache, sizeof(fixture_cache), "%s/fixture-cache", tmpdir);
	device = dnn_cl_open(0, fixture_cache, &cause);
	ck_assert_msg(device != NULL, "%s", cause);
}

static void
close_device(void)
{
	dnn_cl_close(device);
	device = NULL;
}

/* Whether there is a device at all, asked in a child process so that this
 * one never starts the driver before check forks. */
static int
probe_device(void)
{
	int fds[2], status = 0;
	char msg[512] = "";
	pid_t pid;

	if (pipe(fds) != 0 || (pid = fork()) < 0)
		return -1;
	if (pid == 0) {
		char *cause = NULL;
		struct dnn_cl *cl = dnn_cl_open(0, NULL, &cause);
		if (cl != NULL)
			dprintf(fds[1], "%s (%s)", dnn_cl_get_info(cl)->device_name, dnn_cl_get_info(cl)->platform_name);
		else
			dprintf(fds[1], "%s", cause);
		_exit(cl != NULL ? 0 : 1);
	}
	close(fds[1]);
	if (read(fds[0], msg, sizeof(msg) - 1) < 0)
		msg[0] = '\0';
	close(fds[0]);
	waitpid(pid, &status, 0);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		printf("SKIP: no OpenCL device to test on: %s\n", msg);
		return 77;
	}
	printf("OpenCL device: %s\n", msg);
	return 0;
}

int
main(void)
{
	Suite *s = suite_create("dnn-opencl");
	TCase *tc = tcase_create("opencl");
	int ret;

	if ((ret = probe_device()) != 0)
		return ret < 0 ? EXIT_FAILURE : ret;
	tcase_set_timeout(tc, 900);
	tcase_add_checked_fixture(tc, open_device, close_device);
	tcase_add_loop_test(tc, test_op_families, 0, (int)(sizeof(families) / sizeof(families[0])));
	tcase_add_loop_test(tc, test_architectures, 0, 3);
	tcase_add_test(tc, test_two_contexts);
	tcase_add_test(tc, test_binary_cache);
	tcase_add_test(tc, test_errors_name_the_problem);
	suite_add_tcase(s, tc);
	return run_suite_in_tmpdir(s, tmpdir);
}
