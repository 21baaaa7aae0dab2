/* SPDX-License-Identifier: MIT */
/* A main() for the harnesses without libFuzzer: runs each file named on the
 * command line (or standard input) once. For afl++ (afl-fuzz ... -- HARNESS
 * @@), for replaying a crash under gdb or valgrind, and for compilers
 * without -fsanitize=fuzzer. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/fuzz/fuzz.h"

int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

static int
run_stream(FILE *f, const char *name)
{
	size_t size = 0, cap = 1 << 16;
	uint8_t *buf = malloc(cap);

	if (buf == NULL)
		return -1;
	for (size_t n; (n = fread(buf + size, 1, cap - size, f)) > 0;) {
		size += n;
		if (size == cap) {
			uint8_t *p = realloc(buf, cap *= 2);
			if (p == NULL) {
				free(buf);
				return -1;
			}
			buf = p;
		}
	}
	if (ferror(f)) {
		fprintf(stderr, "%s: %s\n", name, strerror(errno));
		free(buf);
		return -1;
	}
	LLVMFuzzerTestOneInput(buf, size);
	free(buf);
	return 0;
}

int
main(int argc, char **argv)
{
	int status = 0;

	if (LLVMFuzzerInitialize != NULL)
		LLVMFuzzerInitialize(&argc, &argv);
	if (argc < 2)
		return run_stream(stdin, "stdin") == 0 ? 0 : 1;
	for (int i = 1; i < argc; i++) {
		FILE *f = fopen(argv[i], "rb");
		if (f == NULL) {
			fprintf(stderr, "%s: %s\n", argv[i], strerror(errno));
			status = 1;
			continue;
		}
		if (run_stream(f, argv[i]) != 0)
			status = 1;
		fclose(f);
	}
	return status;
}
