/* SPDX-License-Identifier: MIT */
/* The loader, then one inference per active-group count g = 1..G with every
 * CPU kernel family, on whatever loads (and small enough to run in a few
 * milliseconds: the loader's own limits allow models that take seconds). */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include "dnn/dnn.h"
#include "tests/fuzz/fuzz.h"

#define MAX_MACS 1000000ull        /* per inference at G */
#define MAX_BUFFER (64u << 20)     /* activations and scratch */

static void
run_all(const struct dnn_model *m, enum dnn_kernels kernels, const float *in, float *out)
{
	char *cause = NULL;
	struct dnn_exec *e = dnn_exec_create(m, NULL, kernels, &cause);
	unsigned groups = dnn_model_groups(m);

	if (e == NULL) {
		FUZZ_ASSERT(cause != NULL);
		free(cause);
		return;
	}
	for (unsigned g = 1; g <= groups; g++)
		FUZZ_ASSERT(dnn_exec_run(e, g, in, out) == 0);
	FUZZ_ASSERT(dnn_exec_run(e, 0, in, out) == -EINVAL);
	FUZZ_ASSERT(dnn_exec_run(e, groups + 1, in, out) == -EINVAL);
	dnn_exec_free(e);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], *cause = NULL;
	int fd = fuzz_file(data, size, path);
	struct dnn_model *m = dnn_model_load(path, &cause);
	unsigned groups;

	if (m == NULL) {
		free(cause);
		close(fd);
		return 0;
	}
	groups = dnn_model_groups(m);
	if (dnn_model_macs(m, groups) <= MAX_MACS && dnn_model_buffer_bytes(m, groups) <= MAX_BUFFER) {
		size_t n_in = dnn_model_input_size(m), n_out = dnn_model_output_size(m);
		float *in = malloc((n_in ? n_in : 1) * sizeof(float)), *out = malloc(n_out * sizeof(float));
		uint8_t *pixels = malloc(n_in ? n_in : 1);
		FUZZ_ASSERT(in != NULL && out != NULL && pixels != NULL);
		for (size_t i = 0; i < n_in; i++)
			pixels[i] = data[i % size];
		dnn_model_normalize_u8(m, pixels, in);
		for (size_t i = 0; i < n_in; i++)
			if (!isfinite(in[i]))
				in[i] = 0; /* the daemon refuses non-finite inputs */
		run_all(m, DNN_KERNELS_REF, in, out);
		run_all(m, DNN_KERNELS_BLAS, in, out);
		run_all(m, DNN_KERNELS_FAST, in, out);
		free(pixels);
		free(in);
		free(out);
	}
	dnn_model_free(m);
	close(fd);
	return 0;
}
