/* SPDX-License-Identifier: MIT */
/* The CPU model, for keys of things measured on one CPU (calibrations,
 * per-layer plans). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "common/cpu_model.h"

/* The CPU model: /proc/cpuinfo's "model name" (x86, some Arm kernels), and on
 * Arm the distinct "CPU implementer:CPU part" pairs, which tell a Cortex-A15
 * from an A7 where "model name" says "ARMv7 Processor rev 3 (v7l)" for both. */
static void
read_model_name(char *buf, size_t size)
{
	char line[512], name[128] = "", parts[128] = "", impl[32] = "";
	FILE *f = fopen("/proc/cpuinfo", "r");

	if (f == NULL) {
		snprintf(buf, size, "unknown");
		return;
	}
	while (fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':'), *key_end, *v;
		size_t klen;

		if (colon == NULL)
			continue;
		for (key_end = colon; key_end > line && (key_end[-1] == ' ' || key_end[-1] == '\t'); key_end--)
			;
		klen = (size_t)(key_end - line);
		v = colon + 1 + strspn(colon + 1, " \t");
		v[strcspn(v, "\n")] = '\0';
		if (klen == 10 && strncmp(line, "model name", 10) == 0 && name[0] == '\0') {
			snprintf(name, sizeof(name), "%s", v);
		} else if (klen == 15 && strncmp(line, "CPU implementer", 15) == 0) {
			snprintf(impl, sizeof(impl), "%s", v);
		} else if (klen == 8 && strncmp(line, "CPU part", 8) == 0) {
			char pair[80];
			size_t used = strlen(parts);
			snprintf(pair, sizeof(pair), "%s:%s", impl, v);
			if (strstr(parts, pair) == NULL && used + strlen(pair) + 2 < sizeof(parts))
				snprintf(parts + used, sizeof(parts) - used, "%s%s", used ? "," : "", pair);
		}
	}
	fclose(f);
	if (name[0] && parts[0])
		snprintf(buf, size, "%s (parts %s)", name, parts);
	else if (parts[0])
		snprintf(buf, size, "Arm parts %s", parts);
	else
		snprintf(buf, size, "%s", name[0] ? name : "unknown");
}

/* Read once: every plan load and calibration key asks, and the CPU does not
 * change under a running process. */
static char cached[320]; /* name[128] + parts[128] + " (parts )" */
static pthread_once_t cached_once = PTHREAD_ONCE_INIT;

static void
read_cached(void)
{
	read_model_name(cached, sizeof(cached));
}

void
cpu_model_name(char *buf, size_t size)
{
	pthread_once(&cached_once, read_cached);
	snprintf(buf, size, "%s", cached);
}
