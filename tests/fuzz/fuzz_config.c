/* SPDX-License-Identifier: MIT */
/* gearboxd.conf (daemon/settings.c, config_load), over the defaults. */
#include "config.h"

#include <string.h>

#include "daemon/settings.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config c;
	char path[64], *cause = NULL;
	int fd = fuzz_file(data, size, path);

	config_defaults(&c);
	if (config_load(&c, path, &cause) != 0) {
		FUZZ_ASSERT(cause != NULL && cause[0] != '\0');
		free(cause);
	} else {
		for (unsigned i = 0; i < c.nmodels; i++)
			FUZZ_ASSERT(c.models[i] != NULL);
		FUZZ_ASSERT(c.realtime_priority >= 1 && c.realtime_priority <= 99);
	}
	config_free(&c);
	close(fd);
	return 0;
}
