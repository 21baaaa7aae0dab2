/* SPDX-License-Identifier: MIT */
/* Per-layer plan files (dnn/lplan.c, dnn_lplan_load) for the bundled model:
 * what loads saves and loads back to the same choices and runs one
 * inference at every g it names; what does not says the file and why.
 *
 * A plan is keyed to the model's contents, the CPU model and the kernels'
 * instruction sets, so a corpus written on one machine would stop at the
 * key everywhere else. The input's tokens @FNV@, @CPU@, @ISA@ and @ISA8@ are
 * replaced with this machine's values first, so mutations reach the plans
 * themselves. */
#include "config.h"

#include <errno.h>
#include <string.h>

#include "dnn/dnn.h"
#include "tests/fuzz/fuzz.h"

#ifndef FUZZ_SRCDIR
#define FUZZ_SRCDIR "."
#endif
#define MODEL_PATH FUZZ_SRCDIR "/models/fmnist-alexnet-g4.safetensors"
#define MAX_PLAN (64u << 10)

static struct dnn_model *model;
static struct dnn_exec *exec;
static char key_values[4][128];
static const char *const key_tokens[4] = { "@FNV@", "@CPU@", "@ISA@", "@ISA8@" };

/* The key a plan saved here carries, read back from a saved empty plan. */
static void
learn_keys(void)
{
	struct dnn_lplan *plan = dnn_lplan_new(model);
	static const char *const names[4] = { "\"fnv1a64\"", "\"cpu\"", "\"isa\"", "\"isa_int8\"" };
	char path[64], *cause = NULL, text[4096];
	int fd = fuzz_file((const uint8_t *)"", 0, path);
	ssize_t n;

	FUZZ_ASSERT(plan != NULL && dnn_lplan_save(plan, model, path, &cause) == 0);
	n = pread(fd, text, sizeof(text) - 1, 0);
	FUZZ_ASSERT(n > 0);
	text[n] = '\0';
	for (int k = 0; k < 4; k++) {
		const char *at = strstr(text, names[k]), *q, *end;
		FUZZ_ASSERT(at != NULL && (q = strchr(at + strlen(names[k]), '"')) != NULL &&
		            (end = strchr(q + 1, '"')) != NULL && (size_t)(end - q - 1) < sizeof(key_values[k]));
		memcpy(key_values[k], q + 1, (size_t)(end - q - 1));
	}
	dnn_lplan_free(plan);
	close(fd);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char *cause = NULL;

	(void)argc, (void)argv;
	model = dnn_model_load(MODEL_PATH, &cause);
	if (model == NULL) {
		fprintf(stderr, "fuzz-plan: %s\n", cause);
		abort();
	}
	exec = dnn_exec_create(model, NULL, DNN_KERNELS_FAST, &cause);
	FUZZ_ASSERT(exec != NULL);
	learn_keys();
	return 0;
}

/* data with the key tokens replaced, as a file. */
static int
keyed_file(const uint8_t *data, size_t size, char path[64])
{
	static char out[MAX_PLAN * 2];
	size_t o = 0;

	for (size_t i = 0; i < size && o < MAX_PLAN; ) {
		int k;
		/* memcmp only at an '@': libFuzzer intercepts every memcmp, and one
		 * per byte and token was a fifth of this harness's time */
		for (k = data[i] == '@' ? 0 : 4; k < 4; k++) {
			size_t t = strlen(key_tokens[k]);
			if (size - i >= t && memcmp(data + i, key_tokens[k], t) == 0)
				break;
		}
		if (k < 4) {
			size_t v = strlen(key_values[k]);
			memcpy(out + o, key_values[k], v);
			o += v;
			i += strlen(key_tokens[k]);
		} else {
			out[o++] = (char)data[i++];
		}
	}
	return fuzz_file((const uint8_t *)out, o, path);
}

static void
check_loaded(struct dnn_lplan *plan)
{
	unsigned groups = dnn_model_groups(model);
	size_t layers = dnn_model_layer_count(model);
	char path[64], *cause = NULL;
	int fd = fuzz_file((const uint8_t *)"", 0, path);
	struct dnn_lplan *again;
	static float in[28 * 28], out[16];

	FUZZ_ASSERT(dnn_lplan_save(plan, model, path, &cause) == 0);
	again = dnn_lplan_load(model, path, &cause);
	if (again == NULL)
		fprintf(stderr, "fuzz-plan: a saved plan does not load: %s\n", cause);
	FUZZ_ASSERT(again != NULL);
	for (unsigned g = 1; g <= groups; g++)
		for (size_t l = 0; l < layers; l++)
			FUZZ_ASSERT(dnn_lplan_get(plan, g, l) == dnn_lplan_get(again, g, l));
	dnn_lplan_free(again);
	close(fd);

	if (dnn_exec_set_lplan(exec, plan, &cause) != 0) {
		FUZZ_ASSERT(cause != NULL);
		free(cause);
		return;
	}
	for (size_t i = 0; i < sizeof(in) / sizeof(in[0]); i++)
		in[i] = (float)(i % 7) * 0.25f - 0.5f;
	for (unsigned g = 1; g <= groups; g++)
		FUZZ_ASSERT(dnn_exec_run(exec, g, in, out) == 0);
	FUZZ_ASSERT(dnn_exec_set_lplan(exec, NULL, &cause) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], *cause = NULL;
	int fd;
	struct dnn_lplan *plan;

	if (size > MAX_PLAN)
		return 0;
	fd = keyed_file(data, size, path);
	plan = dnn_lplan_load(model, path, &cause);
	if (plan == NULL) {
		FUZZ_ASSERT(cause != NULL && strstr(cause, path) != NULL);
		free(cause);
	} else {
		check_loaded(plan);
		dnn_lplan_free(plan);
	}
	close(fd);
	return 0;
}
