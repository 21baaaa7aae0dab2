/* SPDX-License-Identifier: MIT */
/* Test and benchmark helper: writes gearbox model files with seeded random
 * weights, independently of the loader in dnn/ (its own shape inference), so
 * that tests check the loader and engine against a second implementation. */
#ifndef GEARBOX_TESTS_MODELGEN_H
#define GEARBOX_TESTS_MODELGEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum mg_type { MG_CONV, MG_RELU, MG_MAXPOOL, MG_AVGPOOL, MG_FLATTEN, MG_LINEAR, MG_SOFTMAX };

struct mg_layer {
	enum mg_type type;
	unsigned out;        /* conv out_channels / linear out_features */
	unsigned kernel, stride, padding;
	bool nested;         /* hidden weighted layer: nested instead of grouped */
	bool no_bias;
};

struct mg_spec {
	const char *name;
	unsigned groups;
	unsigned in_c, in_h, in_w;
	unsigned classes;
	const struct mg_layer *layers;
	size_t n_layers;
	uint32_t seed;
	const char *label_prefix; /* labels are PREFIX0, PREFIX1, ...; NULL: "class" */
};

/* Write spec to path. keep = 0 writes the whole G-group model; 1 <= keep <= G
 * writes the separately-built model that holds only the first `keep` groups
 * of the same weights (G' = keep). Returns 0 or -1 with errno. */
int mg_write(const struct mg_spec *spec, const char *path, unsigned keep);

/* Write a raw safetensors file: the 8-byte length, `header` padded with
 * spaces to a multiple of 8, then `data`. For malformed-file tests. */
int mg_write_raw(const char *path, const char *header, const void *data, size_t len);

/* Ready-made architectures: "tiny" (every op, both connectivities, 8x8 input,
 * G=4), "alexnet-fmnist" (the bundled model's shape: 5 conv + 3 fc, 28x28x1)
 * and "alexnet-cifar" (32x32x3). Returns NULL for an unknown name. */
const struct mg_spec *mg_arch(const char *name);

/* Deterministic uniform floats in [-1, 1). */
float mg_uniform(uint32_t *state);

#endif
