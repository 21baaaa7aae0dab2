/* SPDX-License-Identifier: MIT */
/* Policy files (policies/config.c, pol_policy_load): what loads resolves for
 * any model name; what does not says file:line and why. */
#include "config.h"

#include <string.h>

#include "policies/policy.h"
#include "tests/fuzz/fuzz.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const models[] = { "tiny", "fmnist-alexnet-g4", "", "x" };
	struct pol_policy policy;
	struct pol_params params;
	char path[64], *cause = NULL;
	int fd = fuzz_file(data, size, path);

	memset(&policy, 0, sizeof(policy));
	if (pol_policy_load(path, &policy, &cause) != 0) {
		FUZZ_ASSERT(cause != NULL && strstr(cause, path) != NULL);
		free(cause);
	} else {
		for (unsigned i = 0; i < sizeof(models) / sizeof(models[0]); i++)
			pol_policy_resolve(&policy, models[i], &params);
		pol_policy_clear(&policy);
	}
	close(fd);
	return 0;
}
