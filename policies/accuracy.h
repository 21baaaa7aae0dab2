/* SPDX-License-Identifier: MIT */
/* accuracy — predicting the top-1 accuracy of a mixed int8/fp32 plan that
 * was never measured, from per-layer sensitivity measured once: at each g,
 * the accuracy with every layer fp32, and the drop when only layer l runs
 * int8. A plan's accuracy at g is predicted as
 *     fp32(g) - sum over its int8 layers of max(drop(g, l), 0)
 * (drops add: one layer's quantisation noise hardly changes another's
 * effect; a layer that gained accuracy when quantised alone gained an image
 * or two of the test set by chance, and counts as no change). Used by the tenant solver for plan candidates, and measured
 * against held-out plans by `gearbox accuracy`.
 *
 * Sensitivity files (JSON, docs/plan-format.md): made by `gearbox accuracy
 * MODEL --dataset DIR --out FILE`, keyed to the model file's contents.
 */
#ifndef GEARBOX_POLICIES_ACCURACY_H
#define GEARBOX_POLICIES_ACCURACY_H

#include <stdbool.h>
#include <stdint.h>

#define ACC_MAX_GROUPS 64
#define ACC_MAX_LAYERS 64

struct acc_sensitivity {
	char model[64];
	uint64_t fingerprint;    /* FNV-1a of the model file */
	unsigned groups;         /* G */
	unsigned nlayers;        /* weighted layers that can run int8 */
	unsigned layer[ACC_MAX_LAYERS];      /* their indices in the model's graph */
	char name[ACC_MAX_LAYERS][32];
	unsigned images;         /* evaluated on */
	char dataset[256];
	double fp32[ACC_MAX_GROUPS + 1];     /* [g], 0..1 */
	double drop[ACC_MAX_GROUPS + 1][ACC_MAX_LAYERS]; /* [g][k]: fp32 - accuracy with layer k alone int8 */
};

/* Predicted accuracy at g with int8[k] saying which of the nlayers run int8. */
double acc_predict(const struct acc_sensitivity *s, unsigned g, const bool *int8);
/* The position of graph layer `index` among s->layer, or -1. */
int acc_layer_slot(const struct acc_sensitivity *s, unsigned index);

int acc_sensitivity_save(const struct acc_sensitivity *s, const char *path, char **cause);
/* Refuses a file for other model contents (fingerprint) when fingerprint is
 * not 0, or of another format. */
int acc_sensitivity_load(struct acc_sensitivity *s, const char *path, uint64_t fingerprint, char **cause);

#endif
