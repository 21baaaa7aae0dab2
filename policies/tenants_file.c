/* SPDX-License-Identifier: MIT */
/* Tenant files (policies/tenants_file.h): [solve] and [tenant NAME] sections
 * through common/ini_file, every error as file:line. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "common/ini_file.h"
#include "policies/tenants_file.h"

static int
number(struct ini_file *f, const char *key, const char *v, double lo, double hi, double *out)
{
	char *end;

	*out = strtod(v, &end);
	if (end == v || *end || !(*out >= lo && *out <= hi))
		return ini_file_fail(f, "%s: '%s' must be a number from %g to %g", key, v, lo, hi);
	return 1;
}

static int
on_entry(struct ini_file *f, const char *section, const char *key, const char *value)
{
	struct ten_file *s = f->user;
	double v;

	if (!strcmp(section, "solve")) {
		if (!strcmp(key, "objective")) {
			if (!strcmp(value, "accuracy"))
				s->objective = TEN_MAX_ACCURACY;
			else if (!strcmp(value, "energy"))
				s->objective = TEN_MIN_ENERGY;
			else
				return ini_file_fail(f, "objective: '%s' is not accuracy or energy", value);
			return 1;
		}
		if (!strcmp(key, "power_cap_w"))
			return number(f, key, value, 0, 1e4, &s->power_cap_w);
		if (!strcmp(key, "memory_mb"))
			return number(f, key, value, 0, 1e7, &s->memory_mb);
		if (!strcmp(key, "max_util"))
			return number(f, key, value, 0.01, 1, &s->max_util);
		if (!strcmp(key, "margin"))
			return number(f, key, value, 0, 10, &s->margin);
		return ini_file_fail(f, "unknown key '%s' in [solve] (known: objective, power_cap_w, memory_mb, max_util, margin)",
		                     key);
	}
	if (strncmp(section, "tenant ", 7) != 0 || section[7] == '\0')
		return ini_file_fail(f, "unknown section [%s] (known: [solve], [tenant NAME])", section);
	unsigned i;
	for (i = 0; i < s->n && strcmp(s->tenant[i].t.name, section + 7); i++)
		;
	if (i == s->n) {
		if (s->n == TEN_MAX_TENANTS)
			return ini_file_fail(f, "too many tenants (at most %d)", TEN_MAX_TENANTS);
		memset(&s->tenant[i], 0, sizeof(s->tenant[i]));
		snprintf(s->tenant[i].t.name, sizeof(s->tenant[i].t.name), "%s", section + 7);
		s->tenant[i].t.weight = 1;
		s->tenant[i].t.rate_hz = 30;
		s->tenant[i].macs_scale = 1;
		s->n++;
	}
	struct ten_tenant *t = &s->tenant[i].t;
	if (!strcmp(key, "model")) {
		if (value[0] == '/' || !strcmp(value, "bundled"))
			snprintf(s->tenant[i].path, sizeof(s->tenant[i].path), "%s",
			         !strcmp(value, "bundled") ? GEARBOX_DATADIR "/models/fmnist-alexnet-g4.safetensors" : value);
		else {
			char joined[sizeof(s->tenant[i].path)];
			snprintf(joined, sizeof(joined), "%s/%s", s->dir, value);
			memcpy(s->tenant[i].path, joined, sizeof(joined));
		}
		return 1;
	}
	if (!strcmp(key, "rate_hz"))
		return number(f, key, value, 1e-3, 1e6, &t->rate_hz);
	if (!strcmp(key, "period_ms")) {
		if (!number(f, key, value, 1e-3, 1e6, &v))
			return 0;
		t->rate_hz = 1e3 / v;
		return 1;
	}
	if (!strcmp(key, "deadline_us"))
		return number(f, key, value, 0, 1e9, &t->deadline_us);
	if (!strcmp(key, "energy_uj"))
		return number(f, key, value, 0, 1e12, &t->energy_uj);
	if (!strcmp(key, "min_accuracy"))
		return number(f, key, value, 0, 1, &t->min_accuracy);
	if (!strcmp(key, "weight"))
		return number(f, key, value, 1e-6, 1e6, &t->weight);
	if (!strcmp(key, "macs_scale"))
		return number(f, key, value, 1e-3, 1e3, &s->tenant[i].macs_scale);
	if (!strcmp(key, "int8_speedup"))
		return number(f, key, value, 0.1, 100, &s->tenant[i].int8_speedup);
	if (!strcmp(key, "sensitivity")) {
		char joined[sizeof(s->tenant[i].sensitivity)];
		snprintf(joined, sizeof(joined), value[0] == '/' ? "%s%s" : "%s/%s", value[0] == '/' ? "" : s->dir, value);
		memcpy(s->tenant[i].sensitivity, joined, sizeof(joined));
		return 1;
	}
	return ini_file_fail(f,
	                     "unknown key '%s' in [tenant %s] (known: model, rate_hz, period_ms, deadline_us, energy_uj, "
	                     "min_accuracy, weight, macs_scale, sensitivity, int8_speedup)",
	                     key, t->name);
}

int
ten_file_load(const char *path, struct ten_file *s, char **cause)
{
	memset(s, 0, sizeof(*s));
	s->objective = TEN_MAX_ACCURACY;
	s->max_util = 1;
	snprintf(s->dir, sizeof(s->dir), "%s", path);
	if (strrchr(s->dir, '/'))
		*strrchr(s->dir, '/') = '\0';
	else
		snprintf(s->dir, sizeof(s->dir), ".");
	if (ini_file_load(path, on_entry, s, cause) != 0)
		return -1;
	if (s->n == 0)
		return set_cause(cause, "%s: no [tenant NAME] sections", path);
	return 0;
}
