/* SPDX-License-Identifier: MIT */
/* The model loader (dnn_model_load) on arbitrary bytes: whatever loads must
 * answer every question about itself without reading out of bounds; what
 * does not load must say why. */
#include "config.h"

#include <string.h>

#include "dnn/dnn.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], *cause = NULL;
	int fd = fuzz_file(data, size, path);
	struct dnn_model *m = dnn_model_load(path, &cause);

	if (m == NULL) {
		FUZZ_ASSERT(cause != NULL && cause[0] != '\0');
		free(cause);
		close(fd);
		return 0;
	}
	FUZZ_ASSERT(cause == NULL);
	{
		unsigned groups = dnn_model_groups(m), c, h, w;
		size_t layers = dnn_model_layer_count(m);
		struct dnn_layer_info info;

		FUZZ_ASSERT(groups >= 1);
		FUZZ_ASSERT(dnn_model_name(m) != NULL && dnn_model_path(m) != NULL);
		dnn_model_input_shape(m, &c, &h, &w);
		FUZZ_ASSERT((size_t)c * h * w == dnn_model_input_size(m));
		FUZZ_ASSERT(dnn_model_output_size(m) >= 1);
		for (unsigned k = 0; k < dnn_model_classes(m); k++)
			FUZZ_ASSERT(dnn_model_label(m, k) != NULL);
		for (unsigned g = 1; g <= groups; g++) {
			(void)dnn_model_accuracy(m, g);
			(void)dnn_model_params(m, g);
			(void)dnn_model_macs(m, g);
			(void)dnn_model_weight_bytes(m, g);
			(void)dnn_model_buffer_bytes(m, g);
			for (size_t i = 0; i < layers; i++) {
				FUZZ_ASSERT(dnn_model_layer_info(m, i, g, &info) == 0);
				FUZZ_ASSERT(info.name != NULL);
			}
		}
		FUZZ_ASSERT(dnn_model_layer_info(m, layers, 1, &info) != 0);
		FUZZ_ASSERT(dnn_model_layer_info(m, 0, groups + 1, &info) != 0);
		FUZZ_ASSERT(dnn_model_file_bytes(m) == size);
	}
	dnn_model_free(m);
	close(fd);
	return 0;
}
