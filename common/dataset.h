/* SPDX-License-Identifier: MIT */
/* Labelled image test sets for `gearbox model eval` and gearboxctl's --idx: Fashion-MNIST/MNIST IDX
 * files (gzip or plain) and the CIFAR-10 binary test batch. */
#ifndef GEARBOX_COMMON_DATASET_H
#define GEARBOX_COMMON_DATASET_H

#include <stddef.h>
#include <stdint.h>

struct dataset {
	char *description;  /* e.g. "Fashion-MNIST IDX (/usr/share/...)" */
	size_t count;
	unsigned channels, height, width;
	uint8_t *pixels;    /* count * channels * height * width, CHW per image */
	uint8_t *labels;    /* count */
};

/* Open `where`: a folder holding t10k-images-idx3-ubyte[.gz] and
 * t10k-labels-idx1-ubyte[.gz] or test_batch.bin (also inside
 * cifar-10-batches-bin/), or the path of an IDX image file or a CIFAR-10
 * batch. Returns 0 or -1 with *cause set. */
int dataset_open(struct dataset *ds, const char *where, char **cause);
void dataset_close(struct dataset *ds);

/* Read only an IDX image file (gzip or plain): used where no labels exist. */
int dataset_read_idx_images(struct dataset *ds, const char *path, char **cause);

#endif
