/* SPDX-License-Identifier: MIT */
/* The platform file: facts about a board that sysfs does not tell, today the
 * power tables of clusters without a kernel Energy Model. INI, parsed with
 * inih; errors name file:line.
 *
 *   [cluster1]                      # a cluster name, index or cpuN
 *   power = 200000:0.15 1000000:0.60 2000000:1.90   # kHz:watts per busy CPU
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "governor/internal.h"

#ifdef HAVE_INIH
#include "common/ini_file.h"

static int
on_entry(struct ini_file *f, const char *section, const char *key, const char *value)
{
	struct gov_platform *p = f->user;
	struct gov_cluster *c;
	unsigned long khz[GOV_MAX_FREQS];
	double watts[GOV_MAX_FREQS];
	unsigned n = 0;
	char *copy, *save = NULL, *cause = NULL;
	int ok = 1;

	if ((c = gov_find_cluster(p, section)) == NULL)
		return ini_file_fail(f, "[%s] is not a cluster of this machine (see 'gearbox platform')", section);
	if (strcmp(key, "power") != 0)
		return ini_file_fail(f, "unknown key '%s' (known: power)", key);
	copy = strdup(value);
	for (char *tok = strtok_r(copy, " \t", &save); tok != NULL && ok; tok = strtok_r(NULL, " \t", &save)) {
		char *colon = strchr(tok, ':'), *end1, *end2;
		if (n == GOV_MAX_FREQS || colon == NULL) {
			ok = ini_file_fail(f, "'%s' is not KHZ:WATTS", tok);
			break;
		}
		*colon = '\0';
		errno = 0;
		khz[n] = strtoul(tok, &end1, 10);
		watts[n] = strtod(colon + 1, &end2);
		if (errno != 0 || *end1 != '\0' || *end2 != '\0' || end1 == tok || end2 == colon + 1)
			ok = ini_file_fail(f, "'%s:%s' is not KHZ:WATTS", tok, colon + 1);
		n++;
	}
	free(copy);
	if (ok && gov_platform_set_power_table(p, c->id, n, khz, watts, &cause) != 0) {
		ok = ini_file_fail(f, "%s", cause);
		free(cause);
	}
	return ok;
}

int
gov_platform_load_file(struct gov_platform *p, const char *path, char **cause)
{
	return ini_file_load(path, on_entry, p, cause);
}
#else
int
gov_platform_load_file(struct gov_platform *p, const char *path, char **cause)
{
	return set_cause(cause, "%s: built without inih: platform files are not supported", path);
}
#endif
