/* SPDX-License-Identifier: MIT */
/* The platform file (governor/platform_file.c) against this machine's
 * platform, discovered once. What a file sets stays for the next input,
 * which may replace it (power tables are replaced whole). */
#include "config.h"

#include <string.h>

#include "governor/governor.h"
#include "tests/fuzz/fuzz.h"

static struct gov_platform *platform;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	char state[] = "/tmp/gearbox-fuzz-state.XXXXXX", *cause = NULL;

	(void)argc, (void)argv;
	if (mkdtemp(state) == NULL || (platform = gov_platform_discover(state, &cause)) == NULL) {
		fprintf(stderr, "fuzz_platform: %s\n", cause ? cause : "no state folder");
		abort();
	}
	rmdir(state);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[64], *cause = NULL;
	int fd = fuzz_file(data, size, path);

	if (gov_platform_load_file(platform, path, &cause) != 0) {
		FUZZ_ASSERT(cause != NULL && strstr(cause, path) != NULL);
		free(cause);
	} else
		for (unsigned i = 0; i < platform->nclusters; i++)
			(void)gov_model_power(platform, i, 1000000, 1);
	close(fd);
	return 0;
}
