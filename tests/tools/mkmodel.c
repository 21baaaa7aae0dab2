/* SPDX-License-Identifier: MIT */
/* mkmodel — write a synthetic gearbox model with seeded random weights, for
 * the command-line tests and benchmarks:
 *   mkmodel [--arch tiny|alexnet-fmnist|alexnet-cifar] [--keep G] [--seed N] [--name NAME]
 *           [--label-prefix P] OUT
 * (--name and --label-prefix: for quoting tests, names with '"' or '\\') */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/common/modelgen.h"

int
main(int argc, char **argv)
{
	const char *arch = "tiny", *out = NULL;
	unsigned keep = 0;
	struct mg_spec spec;
	const struct mg_spec *base;

	unsigned seed = 1;
	const char *name = NULL, *label_prefix = NULL;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--arch") == 0 && i + 1 < argc)
			arch = argv[++i];
		else if (strcmp(argv[i], "--keep") == 0 && i + 1 < argc)
			keep = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--seed") == 0 && i + 1 < argc)
			seed = (unsigned)strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
			name = argv[++i];
		else if (strcmp(argv[i], "--label-prefix") == 0 && i + 1 < argc)
			label_prefix = argv[++i];
		else if (argv[i][0] != '-' && out == NULL)
			out = argv[i];
		else {
			fprintf(stderr, "usage: mkmodel [--arch NAME] [--keep G] [--seed N] [--name NAME] [--label-prefix P] OUT\n");
			return 2;
		}
	}
	if (out == NULL || (base = mg_arch(arch)) == NULL) {
		fprintf(stderr, "mkmodel: need OUT and a known --arch (tiny, alexnet-fmnist, alexnet-cifar)\n");
		return 2;
	}
	spec = *base;
	spec.seed = seed;
	if (name != NULL)
		spec.name = name;
	spec.label_prefix = label_prefix;
	if (mg_write(&spec, out, keep) != 0) {
		fprintf(stderr, "mkmodel: %s: %s\n", out, strerror(errno));
		return 1;
	}
	return 0;
}
