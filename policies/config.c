/* SPDX-License-Identifier: MIT */
/* Policy files: INI through inih (common/ini_file.c), every key validated,
 * errors as file:line. The keys and their defaults are documented in
 * man/gearbox.policy.5; keep the two in step. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "common/ini_file.h"
#include "policies/policy.h"

static const char *const objective_names[] = { "accuracy", "latency", "energy" };
static const char *const controller_names[] = { "adaptive", "fixed", "step" };
static const char *const constraint_names[] = { "deadline", "energy", "accuracy" };

const char *
pol_objective_name(enum pol_objective o)
{
	return objective_names[o];
}

const char *
pol_controller_name(enum pol_controller c)
{
	return controller_names[c];
}

const char *
pol_constraint_name(enum pol_constraint c)
{
	return constraint_names[c];
}

void
pol_params_defaults(struct pol_params *p, const char *name)
{
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name ? name : "default");
	p->objective = POL_OBJECTIVE_ACCURACY;
	p->keep_first = POL_KEEP_DEADLINE;
	p->controller = POL_CONTROLLER_ADAPTIVE;
	p->margin = 0.10;
	snprintf(p->placements, sizeof(p->placements), "all");
	p->dvfs = true;
	p->calibration_runs = 5;
	p->calibration_cache = true;
	p->window = 4;
	p->hysteresis = 0.10;
	p->max_slowdown = 8.0;
}

/* ---- value parsers: 0 on success, else a message in why ---------------------- */

static int
parse_double(const char *v, double lo, double hi, double *out, char *why, size_t n)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	if (errno || end == v || *end != '\0' || !(*out >= lo && *out <= hi)) {
		snprintf(why, n, "'%s' must be a number from %g to %g", v, lo, hi);
		return -1;
	}
	return 0;
}

static int
parse_unsigned(const char *v, unsigned long lo, unsigned long hi, unsigned long *out, char *why, size_t n)
{
	char *end;

	errno = 0;
	*out = strtoul(v, &end, 10);
	if (errno || end == v || *end != '\0' || v[0] == '-' || *out < lo || *out > hi) {
		snprintf(why, n, "'%s' must be a whole number from %lu to %lu", v, lo, hi);
		return -1;
	}
	return 0;
}

static int
parse_bool(const char *v, bool *out, char *why, size_t n)
{
	if (!strcmp(v, "yes") || !strcmp(v, "true") || !strcmp(v, "on") || !strcmp(v, "1"))
		*out = true;
	else if (!strcmp(v, "no") || !strcmp(v, "false") || !strcmp(v, "off") || !strcmp(v, "0"))
		*out = false;
	else {
		snprintf(why, n, "'%s' must be yes or no", v);
		return -1;
	}
	return 0;
}

static int
parse_enum(const char *v, const char *const *names, unsigned count, unsigned *out, char *why, size_t n)
{
	size_t used;

	for (unsigned i = 0; i < count; i++)
		if (strcmp(v, names[i]) == 0) {
			*out = i;
			return 0;
		}
	used = (size_t)snprintf(why, n, "'%s' is not one of:", v);
	for (unsigned i = 0; i < count && used < n; i++)
		used += (size_t)snprintf(why + used, n - used, " %s", names[i]);
	return -1;
}

/* "cpu opencl cluster1 opencl:0 gpu" or "all". */
static int
parse_placements(const char *v, char *out, size_t size, char *why, size_t n)
{
	char copy[256], *save = NULL;

	if (strlen(v) >= size || strlen(v) >= sizeof(copy)) {
		snprintf(why, n, "the list is too long");
		return -1;
	}
	snprintf(copy, sizeof(copy), "%s", v);
	for (char *w = strtok_r(copy, " \t,", &save); w != NULL; w = strtok_r(NULL, " \t,", &save)) {
		if (!strcmp(w, "all") || !strcmp(w, "cpu") || !strcmp(w, "opencl") || !strcmp(w, "gpu") ||
		    (!strncmp(w, "cluster", 7) && w[7] >= '0' && w[7] <= '9') ||
		    (!strncmp(w, "opencl:", 7) && w[7] >= '0' && w[7] <= '9'))
			continue;
		snprintf(why, n, "'%s' is not a placement (all, cpu, opencl, gpu, clusterN, opencl:N)", w);
		return -1;
	}
	snprintf(out, size, "%s", v);
	return 0;
}

/* "MIN-MAX" in kHz, either side may be empty. */
static int
parse_khz_range(const char *v, unsigned long *lo, unsigned long *hi, char *why, size_t n)
{
	char *end;
	const char *dash = strchr(v, '-');

	if (dash == NULL)
		goto bad;
	*lo = dash == v ? 0 : strtoul(v, &end, 10);
	if (dash != v && end != dash)
		goto bad;
	*hi = dash[1] == '\0' ? 0 : strtoul(dash + 1, &end, 10);
	if (dash[1] != '\0' && *end != '\0')
		goto bad;
	if (*hi != 0 && *lo > *hi)
		goto bad;
	return 0;
bad:
	snprintf(why, n, "'%s' must be MIN-MAX in kHz (either may be left out)", v);
	return -1;
}

#define UNKNOWN_KEY (-2) /* apply_key: the message already names the key */

enum section { SEC_POLICY, SEC_CALIBRATION, SEC_FEEDBACK, SEC_MODEL };

/* Apply one key to params. Returns 0, or -1 (bad value) or UNKNOWN_KEY with why. */
static int
apply_key(struct pol_params *p, enum section sec, const char *key, const char *v, char *why, size_t n)
{
	unsigned long u;
	unsigned e;
	int rc = -1;

	if (sec == SEC_CALIBRATION) {
		if (!strcmp(key, "runs")) {
			if ((rc = parse_unsigned(v, 1, 1000, &u, why, n)) == 0)
				p->calibration_runs = (unsigned)u;
		} else if (!strcmp(key, "cache")) {
			rc = parse_bool(v, &p->calibration_cache, why, n);
		} else {
			snprintf(why, n, "unknown key '%s' in [calibration] (known: runs, cache)", key);
			rc = UNKNOWN_KEY;
		}
		return rc;
	}
	if (sec == SEC_FEEDBACK) {
		if (!strcmp(key, "window")) {
			if ((rc = parse_unsigned(v, 1, 64, &u, why, n)) == 0)
				p->window = (unsigned)u;
		} else if (!strcmp(key, "hysteresis")) {
			rc = parse_double(v, 0, 1, &p->hysteresis, why, n);
		} else if (!strcmp(key, "max_slowdown")) {
			rc = parse_double(v, 1, 1000, &p->max_slowdown, why, n);
		} else {
			snprintf(why, n, "unknown key '%s' in [feedback] (known: window, hysteresis, max_slowdown)", key);
			rc = UNKNOWN_KEY;
		}
		return rc;
	}
	if (!strcmp(key, "objective")) {
		if ((rc = parse_enum(v, objective_names, 3, &e, why, n)) == 0)
			p->objective = (enum pol_objective)e;
	} else if (!strcmp(key, "keep_first")) {
		if ((rc = parse_enum(v, constraint_names, 3, &e, why, n)) == 0)
			p->keep_first = (enum pol_constraint)e;
	} else if (!strcmp(key, "controller")) {
		if ((rc = parse_enum(v, controller_names, 3, &e, why, n)) == 0)
			p->controller = (enum pol_controller)e;
	} else if (!strcmp(key, "groups")) {
		if ((rc = parse_unsigned(v, 1, POL_MAX_GROUPS, &u, why, n)) == 0)
			p->fixed_groups = (unsigned)u;
	} else if (!strcmp(key, "margin")) {
		rc = parse_double(v, 0, 10, &p->margin, why, n);
	} else if (!strcmp(key, "min_accuracy")) {
		rc = parse_double(v, 0, 1, &p->min_accuracy, why, n);
	} else if (!strcmp(key, "min_groups")) {
		if ((rc = parse_unsigned(v, 0, POL_MAX_GROUPS, &u, why, n)) == 0)
			p->min_groups = (unsigned)u;
	} else if (!strcmp(key, "max_groups")) {
		if ((rc = parse_unsigned(v, 0, POL_MAX_GROUPS, &u, why, n)) == 0)
			p->max_groups = (unsigned)u;
	} else if (!strcmp(key, "placements")) {
		rc = parse_placements(v, p->placements, sizeof(p->placements), why, n);
	} else if (!strcmp(key, "max_threads")) {
		if ((rc = parse_unsigned(v, 0, POL_MAX_THREADS, &u, why, n)) == 0)
			p->max_threads = (unsigned)u;
	} else if (!strcmp(key, "frequencies")) {
		rc = parse_khz_range(v, &p->min_khz, &p->max_khz, why, n);
	} else if (!strcmp(key, "power_cap_w")) {
		rc = parse_double(v, 0, 10000, &p->power_cap_w, why, n);
	} else if (!strcmp(key, "dvfs") && sec == SEC_POLICY) {
		rc = parse_bool(v, &p->dvfs, why, n);
	} else {
		snprintf(why, n,
		         "unknown key '%s' in [%s] (known: objective, keep_first, controller, groups, margin, "
		         "min_accuracy, min_groups, max_groups, placements, max_threads, frequencies, power_cap_w%s)",
		         key, sec == SEC_POLICY ? "policy" : "model NAME", sec == SEC_POLICY ? ", dvfs" : "");
		rc = UNKNOWN_KEY;
	}
	return rc;
}

static int
on_entry(struct ini_file *f, const char *section, const char *key, const char *value)
{
	struct pol_policy *pol = f->user;
	char why[512];
	enum section sec;

	if (!strcmp(section, "policy"))
		sec = SEC_POLICY;
	else if (!strcmp(section, "calibration"))
		sec = SEC_CALIBRATION;
	else if (!strcmp(section, "feedback"))
		sec = SEC_FEEDBACK;
	else if (!strncmp(section, "model ", 6) && section[6] != '\0')
		sec = SEC_MODEL;
	else
		return ini_file_fail(f, "unknown section [%s] (known: [policy], [calibration], [feedback], [model NAME])",
		                     section);
	if (sec != SEC_MODEL) {
		int rc = apply_key(&pol->params, sec, key, value, why, sizeof(why));
		if (rc != 0)
			return rc == UNKNOWN_KEY ? ini_file_fail(f, "%s", why) : ini_file_fail(f, "%s: %s", key, why);
		return 1;
	}
	/* A [model NAME] entry: check it on a scratch copy now, apply at resolve. */
	struct pol_params scratch = pol->params;
	struct pol_model_override *o = NULL;
	const char *model = section + 6;
	int rc = apply_key(&scratch, SEC_MODEL, key, value, why, sizeof(why));
	if (rc != 0)
		return rc == UNKNOWN_KEY ? ini_file_fail(f, "%s", why) : ini_file_fail(f, "%s: %s", key, why);
	if (strlen(model) >= sizeof(o->model))
		return ini_file_fail(f, "model name '%s' is too long", model);
	for (unsigned i = 0; i < pol->noverrides; i++)
		if (!strcmp(pol->overrides[i].model, model))
			o = &pol->overrides[i];
	if (o == NULL) {
		struct pol_model_override *grown = realloc(pol->overrides, (pol->noverrides + 1) * sizeof(*grown));
		if (grown == NULL)
			return ini_file_fail(f, "out of memory");
		pol->overrides = grown;
		o = &pol->overrides[pol->noverrides++];
		memset(o, 0, sizeof(*o));
		snprintf(o->model, sizeof(o->model), "%s", model);
	}
	if (o->nkeys == POL_MAX_OVERRIDE_KEYS)
		return ini_file_fail(f, "too many keys for model %s (at most %d)", model, POL_MAX_OVERRIDE_KEYS);
	if (strlen(key) >= sizeof(o->keys[0]) || strlen(value) >= sizeof(o->values[0]))
		return ini_file_fail(f, "%s: value too long", key);
	snprintf(o->keys[o->nkeys], sizeof(o->keys[0]), "%s", key);
	snprintf(o->values[o->nkeys], sizeof(o->values[0]), "%s", value);
	o->nkeys++;
	return 1;
}

/* Checks that need the whole file. */
static int
check_policy(const struct pol_policy *pol, char **cause)
{
	const struct pol_params *p = &pol->params;

	if (p->controller == POL_CONTROLLER_FIXED && p->fixed_groups == 0)
		return set_cause(cause, "%s: controller = fixed needs groups = N", pol->path);
	if (p->max_groups && p->min_groups > p->max_groups)
		return set_cause(cause, "%s: min_groups %u is above max_groups %u", pol->path, p->min_groups,
		                 p->max_groups);
	return 0;
}

static void
name_from_path(const char *path, char *name, size_t size)
{
	const char *base = strrchr(path, '/');
	size_t len;

	base = base ? base + 1 : path;
	len = strlen(base);
	if (len > 5 && !strcmp(base + len - 5, ".conf"))
		len -= 5;
	snprintf(name, size, "%.*s", (int)len, base);
}

int
pol_policy_load(const char *path, struct pol_policy *policy, char **cause)
{
	char name[POL_NAME];

	memset(policy, 0, sizeof(*policy));
	snprintf(policy->path, sizeof(policy->path), "%s", path);
	name_from_path(path, name, sizeof(name));
	pol_params_defaults(&policy->params, name);
	if (ini_file_load(path, on_entry, policy, cause) != 0 || check_policy(policy, cause) != 0) {
		pol_policy_clear(policy);
		return -1;
	}
	return 0;
}

void
pol_policy_clear(struct pol_policy *policy)
{
	free(policy->overrides);
	policy->overrides = NULL;
	policy->noverrides = 0;
}

void
pol_policy_resolve(const struct pol_policy *policy, const char *model, struct pol_params *out)
{
	char why[256];

	*out = policy->params;
	for (unsigned i = 0; model != NULL && i < policy->noverrides; i++) {
		const struct pol_model_override *o = &policy->overrides[i];
		if (strcmp(o->model, model) != 0)
			continue;
		/* validated at load: cannot fail here */
		for (unsigned k = 0; k < o->nkeys; k++)
			(void)apply_key(out, SEC_MODEL, o->keys[k], o->values[k], why, sizeof(why));
	}
}

/* ---- sets of policies -------------------------------------------------------- */

static int
compare_policy(const void *a, const void *b)
{
	return strcmp(((const struct pol_policy *)a)->params.name, ((const struct pol_policy *)b)->params.name);
}

/* Load every *.conf of dir into set, replacing policies of the same name.
 * A missing folder is not an error (no administrator overrides). */
static int
load_dir(struct pol_set *set, const char *dir, char **cause)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return errno == ENOENT ? 0 : set_cause(cause, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		char path[PATH_MAX];
		struct pol_policy pol, *slot = NULL, *grown;
		if (len <= 5 || strcmp(e->d_name + len - 5, ".conf") != 0 || e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		if (pol_policy_load(path, &pol, cause) != 0) {
			closedir(d);
			return -1;
		}
		for (unsigned i = 0; i < set->n; i++)
			if (!strcmp(set->policies[i].params.name, pol.params.name))
				slot = &set->policies[i];
		if (slot != NULL) {
			pol_policy_clear(slot);
			*slot = pol;
			continue;
		}
		if ((grown = realloc(set->policies, (set->n + 1) * sizeof(*grown))) == NULL) {
			pol_policy_clear(&pol);
			closedir(d);
			return set_cause(cause, "out of memory");
		}
		set->policies = grown;
		set->policies[set->n++] = pol;
	}
	closedir(d);
	return 0;
}

int
pol_set_load(struct pol_set *set, const char *datadir, const char *etcdir, char **cause)
{
	memset(set, 0, sizeof(*set));
	if ((datadir && load_dir(set, datadir, cause) != 0) || (etcdir && load_dir(set, etcdir, cause) != 0)) {
		pol_set_clear(set);
		return -1;
	}
	if (pol_set_find(set, "default") == NULL) {
		/* No files at all (an uninstalled build): the built-in defaults. */
		struct pol_policy *grown = realloc(set->policies, (set->n + 1) * sizeof(*grown));
		if (grown == NULL) {
			pol_set_clear(set);
			return set_cause(cause, "out of memory");
		}
		set->policies = grown;
		memset(&set->policies[set->n], 0, sizeof(set->policies[0]));
		snprintf(set->policies[set->n].path, sizeof(set->policies[0].path), "(built in)");
		pol_params_defaults(&set->policies[set->n].params, "default");
		set->n++;
	}
	qsort(set->policies, set->n, sizeof(set->policies[0]), compare_policy);
	return 0;
}

void
pol_set_clear(struct pol_set *set)
{
	for (unsigned i = 0; i < set->n; i++)
		pol_policy_clear(&set->policies[i]);
	free(set->policies);
	memset(set, 0, sizeof(*set));
}

const struct pol_policy *
pol_set_find(const struct pol_set *set, const char *name)
{
	for (unsigned i = 0; i < set->n; i++)
		if (!strcmp(set->policies[i].params.name, name))
			return &set->policies[i];
	return NULL;
}

const char *
pol_shipped_dir(void)
{
	const char *env = getenv("GEARBOX_POLICY_DIR");

	return env && *env ? env : GEARBOX_DATADIR "/policies";
}
