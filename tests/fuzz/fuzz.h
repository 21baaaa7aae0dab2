/* SPDX-License-Identifier: MIT */
/* Shared by the fuzz harnesses: libFuzzer's entry points, and the input as
 * a file the loaders can open (an anonymous memfd, /proc/self/fd/N). */
#ifndef GEARBOX_TESTS_FUZZ_H
#define GEARBOX_TESTS_FUZZ_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE 1
#endif
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* The bytes as a file: its fd (close it after), path set to where it opens. */
static inline int
fuzz_file(const uint8_t *data, size_t size, char path[64])
{
	int fd = memfd_create("gearbox-fuzz", MFD_CLOEXEC);
	size_t done = 0;

	if (fd < 0) {
		perror("memfd_create");
		abort();
	}
	while (done < size) {
		ssize_t n = write(fd, data + done, size - done);
		if (n <= 0) {
			perror("memfd write");
			abort();
		}
		done += (size_t)n;
	}
	snprintf(path, 64, "/proc/self/fd/%d", fd);
	return fd;
}

/* A check the harness makes about what the code under test returned. */
#define FUZZ_ASSERT(cond)                                                                   \
	do {                                                                                \
		if (!(cond)) {                                                              \
			fprintf(stderr, "%s:%d: fuzz assertion failed: %s\n", __FILE__, __LINE__, #cond); \
			abort();                                                            \
		}                                                                           \
	} while (0)

#endif
