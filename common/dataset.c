/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <zlib.h>

#include "common/cause.h"
#include "common/dataset.h"

#define MAX_IMAGES 10000000u
#define CIFAR_SIDE 32u
#define CIFAR_RECORD (1u + 3u * CIFAR_SIDE * CIFAR_SIDE)

static bool
is_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

static bool
is_dir(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* gzread reads plain files transparently, so one reader covers both forms. */
static int
read_exact(gzFile f, void *buf, size_t len, const char *path, char **cause)
{
	size_t done = 0;

	while (done < len) {
		unsigned chunk = len - done > (1u << 30) ? (1u << 30) : (unsigned)(len - done);
		int n = gzread(f, (char *)buf + done, chunk);
		if (n <= 0) {
			int zerr;
			const char *msg = gzerror(f, &zerr);
			return set_cause(cause, "%s: %s after %zu of %zu bytes", path,
			                 n == 0 ? "truncated" : (zerr == Z_ERRNO ? strerror(errno) : msg), done, len);
		}
		done += (size_t)n;
	}
	return 0;
}

static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* IDX: magic 0x0000 0x08 (ubyte) ndim, then ndim big-endian sizes, then data. */
static int
read_idx(const char *path, unsigned want_dims, uint32_t dims[3], uint8_t **data, char **cause)
{
	unsigned char head[16];
	gzFile f = gzopen(path, "rb");
	uint64_t total = 1;
	int ret = -1;

	*data = NULL;
	if (f == NULL)
		return set_cause(cause, "%s: cannot open: %s", path, strerror(errno));
	if (read_exact(f, head, 4, path, cause) != 0)
		goto out;
	if (head[0] != 0 || head[1] != 0 || head[2] != 0x08 || head[3] != want_dims) {
		set_cause(cause, "%s: not an IDX unsigned-byte file with %u dimensions (magic %02x%02x%02x%02x)", path,
		          want_dims, head[0], head[1], head[2], head[3]);
		goto out;
	}
	if (read_exact(f, head + 4, 4 * want_dims, path, cause) != 0)
		goto out;
	for (unsigned i = 0; i < want_dims; i++) {
		dims[i] = be32(head + 4 + 4 * i);
		total *= dims[i];
	}
	/* SIZE_MAX: 4 GiB on 32-bit Arm, where a larger total would wrap in malloc. */
	if (dims[0] == 0 || dims[0] > MAX_IMAGES || total > (1ull << 34) || total > SIZE_MAX) {
		set_cause(cause, "%s: absurd IDX dimensions", path);
		goto out;
	}
	if ((*data = malloc(total)) == NULL) {
		set_cause(cause, "%s: out of memory", path);
		goto out;
	}
	if (read_exact(f, *data, total, path, cause) != 0)
		goto out;
	ret = 0;
out:
	gzclose(f);
	if (ret != 0) {
		free(*data);
		*data = NULL;
	}
	return ret;
}

int
dataset_read_idx_images(struct dataset *ds, const char *path, char **cause)
{
	uint32_t dims[3];

	memset(ds, 0, sizeof(*ds));
	if (read_idx(path, 3, dims, &ds->pixels, cause) != 0)
		return -1;
	ds->count = dims[0];
	ds->channels = 1;
	ds->height = dims[1];
	ds->width = dims[2];
	if (asprintf(&ds->description, "IDX images (%s)", path) < 0)
		ds->description = NULL;
	return 0;
}

static int
open_idx_pair(struct dataset *ds, const char *images, const char *labels, char **cause)
{
	uint32_t ldims[3];

	if (dataset_read_idx_images(ds, images, cause) != 0)
		return -1;
	if (read_idx(labels, 1, ldims, &ds->labels, cause) != 0)
		return -1;
	if (ldims[0] != ds->count)
		return set_cause(cause, "%s has %u labels but %s has %zu images", labels, ldims[0], images, ds->count);
	free(ds->description);
	if (asprintf(&ds->description, "IDX test set (%s)", images) < 0)
		ds->description = NULL;
	return 0;
}

static int
open_cifar(struct dataset *ds, const char *path, char **cause)
{
	FILE *f = fopen(path, "rb");
	struct stat st;
	uint8_t *rec;
	size_t plane = 3u * CIFAR_SIDE * CIFAR_SIDE;

	memset(ds, 0, sizeof(*ds));
	if (f == NULL)
		return set_cause(cause, "%s: cannot open: %s", path, strerror(errno));
	if (fstat(fileno(f), &st) != 0 || st.st_size == 0 || st.st_size % CIFAR_RECORD != 0) {
		fclose(f);
		return set_cause(cause, "%s: size is not a multiple of the %u-byte CIFAR-10 record", path, CIFAR_RECORD);
	}
	if ((uint64_t)st.st_size / CIFAR_RECORD > SIZE_MAX / CIFAR_RECORD) {
		fclose(f);
		return set_cause(cause, "%s: too large for this machine's address space", path);
	}
	ds->count = (size_t)(st.st_size / CIFAR_RECORD);
	ds->channels = 3;
	ds->height = ds->width = CIFAR_SIDE;
	ds->pixels = malloc(ds->count * plane);
	ds->labels = malloc(ds->count);
	rec = malloc(CIFAR_RECORD);
	if (ds->pixels == NULL || ds->labels == NULL || rec == NULL) {
		free(rec);
		fclose(f);
		return set_cause(cause, "%s: out of memory", path);
	}
	for (size_t i = 0; i < ds->count; i++) {
		if (fread(rec, 1, CIFAR_RECORD, f) != CIFAR_RECORD) {
			free(rec);
			fclose(f);
			return set_cause(cause, "%s: short read at record %zu", path, i);
		}
		if (rec[0] > 9) {
			unsigned label = rec[0];
			free(rec);
			fclose(f);
			return set_cause(cause, "%s: record %zu has label %u (CIFAR-10 labels are 0-9)", path, i, label);
		}
		ds->labels[i] = rec[0];
		memcpy(ds->pixels + i * plane, rec + 1, plane); /* already R, G, B planes */
	}
	free(rec);
	fclose(f);
	if (asprintf(&ds->description, "CIFAR-10 binary batch (%s)", path) < 0)
		ds->description = NULL;
	return 0;
}

/* First existing path among `dir/name` and `dir/name.gz`. */
static char *
find_in(const char *dir, const char *name)
{
	char *p;

	for (int gz = 0; gz < 2; gz++) {
		if (asprintf(&p, "%s/%s%s", dir, name, gz ? ".gz" : "") < 0)
			return NULL;
		if (is_file(p))
			return p;
		free(p);
	}
	return NULL;
}

int
dataset_open(struct dataset *ds, const char *where, char **cause)
{
	char *images, *labels, *cifar;
	int ret;

	memset(ds, 0, sizeof(*ds));
	if (is_file(where)) {
		size_t n = strlen(where);
		if (n >= 4 && strcmp(where + n - 4, ".bin") == 0)
			return open_cifar(ds, where, cause);
		return set_cause(cause, "%s: give the folder of an IDX test set, or a CIFAR-10 .bin batch", where);
	}
	if (!is_dir(where))
		return set_cause(cause, "%s: no such dataset folder or file", where);
	images = find_in(where, "t10k-images-idx3-ubyte");
	labels = find_in(where, "t10k-labels-idx1-ubyte");
	if (images != NULL && labels != NULL) {
		ret = open_idx_pair(ds, images, labels, cause);
		free(images);
		free(labels);
		return ret;
	}
	free(images);
	free(labels);
	if ((cifar = find_in(where, "test_batch.bin")) != NULL ||
	    (cifar = find_in(where, "cifar-10-batches-bin/test_batch.bin")) != NULL) {
		ret = open_cifar(ds, cifar, cause);
		free(cifar);
		return ret;
	}
	return set_cause(cause, "%s: holds neither t10k-images-idx3-ubyte[.gz] + t10k-labels-idx1-ubyte[.gz] nor a "
	                        "CIFAR-10 test_batch.bin", where);
}

void
dataset_close(struct dataset *ds)
{
	free(ds->description);
	free(ds->pixels);
	free(ds->labels);
	memset(ds, 0, sizeof(*ds));
}
