/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/cause.h"
#include "common/ini_file.h"
#include "daemon/settings.h"

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->margin = -1;
	c->threads = 0;
	c->opencl = true;
	c->plan = true;
	c->realtime = CONFIG_REALTIME_AUTO;
	c->realtime_priority = 10;
	c->realtime_limit_ms = 1000;
	c->realtime_share = 90;
	c->realtime_below_ms = 50;
	c->lock_memory = CONFIG_LOCK_AUTO;
	c->max_clients = 1024;
	c->max_clients_per_uid = 64;
	c->client_output_kib = 4096;
	c->output_total_mib = 256;
	c->input_total_mib = 64;
	c->frame_timeout_s = 10;
	c->idle_timeout_s = 600;
	c->admin_group = strdup("gearbox-admin");
	c->warm_ahead = CONFIG_WARM_YES;
	c->pm_qos = CONFIG_PM_QOS_AUTO;
	c->pm_qos_latency_us = CONFIG_PM_QOS_LATENCY_AUTO;
	c->pm_qos_release_s = 5;
}

void
config_add_model(struct config *c, const char *path)
{
	c->models = realloc(c->models, (c->nmodels + 1) * sizeof(char *));
	c->models[c->nmodels++] = strdup(path);
}

static int
compare_names(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int
config_add_folder(struct config *c, const char *dir, char **cause)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	unsigned first = c->nmodels;

	if (d == NULL)
		return set_cause(cause, "%s: %s", dir, strerror(errno));
	while ((e = readdir(d)) != NULL) {
		size_t n = strlen(e->d_name);
		char path[4096];
		if (n <= 12 || strcmp(e->d_name + n - 12, ".safetensors") != 0)
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
		config_add_model(c, path);
	}
	closedir(d);
	if (c->nmodels > first) /* qsort(NULL, 0) is undefined */
		qsort(c->models + first, c->nmodels - first, sizeof(char *), compare_names);
	return 0;
}

static int
parse_bool(const char *value, bool *out)
{
	if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
		return *out = true, 0;
	if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
		return *out = false, 0;
	return -1;
}

/* The keys that name one of a few words, each word the value of its enum
 * (in order). 1: not one of them, 0: set, -1: refused (the file's error is set). */
static int
choice_key(struct ini_file *f, const char *key, const char *value, struct config *c)
{
	static const struct {
		const char *key;
		const char *names[5];
		size_t offset;
	} keys[] = {
		{ "warm_ahead", { "yes", "threads", "no" }, offsetof(struct config, warm_ahead) },
		{ "realtime", { "auto", "yes", "no" }, offsetof(struct config, realtime) },
		{ "lock_memory", { "auto", "yes", "no" }, offsetof(struct config, lock_memory) },
		{ "pm_qos", { "auto", "resume-latency", "cpu-dma-latency", "no" }, offsetof(struct config, pm_qos) },
	};
	char words[128];
	size_t n = 0;

	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i].key) != 0)
			continue;
		for (int w = 0; keys[i].names[w] != NULL; w++)
			if (strcmp(value, keys[i].names[w]) == 0) {
				*(int *)((char *)c + keys[i].offset) = w;
				return 0;
			}
		words[0] = '\0';
		for (int w = 0; keys[i].names[w] != NULL && n < sizeof(words); w++)
			n += (size_t)snprintf(words + n, sizeof(words) - n, "%s%s", w == 0 ? "" : keys[i].names[w + 1] ? ", " : " or ",
			                      keys[i].names[w]);
		return ini_file_fail(f, "%s '%s' must be %s", key, value, words), -1;
	}
	return 1;
}

/* The whole-number keys and their ranges. 1: not one of them, 0: set,
 * -1: refused (the file's error is set). */
static int
number_key(struct ini_file *f, const char *key, const char *value, struct config *c)
{
	static const struct {
		const char *key;
		unsigned long lo, hi;
		size_t offset;
		bool is_int;
	} keys[] = {
		{ "realtime_priority", 1, 99, offsetof(struct config, realtime_priority), true },
		{ "realtime_limit_ms", 1, 60000, offsetof(struct config, realtime_limit_ms), false },
		{ "realtime_share", 20, 100, offsetof(struct config, realtime_share), false },
		{ "realtime_below_ms", 0, 3600000, offsetof(struct config, realtime_below_ms), false },
		{ "pm_qos_latency_us", 0, 1000000, offsetof(struct config, pm_qos_latency_us), false },
		{ "pm_qos_release_s", 1, 86400, offsetof(struct config, pm_qos_release_s), false },
		{ "max_clients", RESERVED_CLIENTS + 1, 1000000, offsetof(struct config, max_clients), false },
		{ "max_clients_per_uid", 1, 1000000, offsetof(struct config, max_clients_per_uid), false },
		{ "client_output_kib", 64, 1u << 20, offsetof(struct config, client_output_kib), false },
		{ "output_total_mib", 1, 1u << 20, offsetof(struct config, output_total_mib), false },
		{ "input_total_mib", 8, 1u << 20, offsetof(struct config, input_total_mib), false },
		{ "frame_timeout_s", 1, 86400, offsetof(struct config, frame_timeout_s), false },
		{ "idle_timeout_s", 0, 31536000, offsetof(struct config, idle_timeout_s), false },
	};
	char *end;

	for (unsigned i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		if (strcmp(key, keys[i].key) != 0)
			continue;
		unsigned long v = strtoul(value, &end, 10);
		if (*end || end == value || value[0] == '-' || v < keys[i].lo || v > keys[i].hi)
			return ini_file_fail(f, "%s '%s' must be %sa whole number from %lu to %lu", key, value,
			                     /* on_entry takes its word */
			                     strcmp(key, "pm_qos_latency_us") == 0 ? "auto or " : "", keys[i].lo,
			                     keys[i].hi), -1;
		if (keys[i].is_int)
			*(int *)((char *)c + keys[i].offset) = (int)v;
		else
			*(unsigned *)((char *)c + keys[i].offset) = (unsigned)v;
		return 0;
	}
	return 1;
}

static int
on_entry(struct ini_file *f, const char *section, const char *key, const char *value)
{
	struct config *c = f->user;
	char *end;
	int rc;

	if (strcmp(section, "daemon") != 0)
		return ini_file_fail(f, "unknown section [%s] (known: [daemon])", section);
	if (strcmp(key, "socket") == 0) {
		free(c->socket);
		c->socket = strdup(value);
	} else if ((strcmp(key, "model") == 0 || strcmp(key, "models") == 0) && value[0] == '\0') {
		/* systemd's way: an empty assignment resets the list (a drop-in
		 * replacing the models an earlier file named) */
		for (unsigned i = 0; i < c->nmodels; i++)
			free(c->models[i]);
		c->nmodels = 0;
	} else if (strcmp(key, "model") == 0) {
		config_add_model(c, value);
	} else if (strcmp(key, "models") == 0) {
		char *why = NULL;
		if (config_add_folder(c, value, &why) != 0) {
			ini_file_fail(f, "models: %s", why);
			free(why);
			return 0;
		}
	} else if (strcmp(key, "margin") == 0) {
		errno = 0;
		c->margin = strtod(value, &end);
		if (errno || *end || end == value || !(c->margin >= 0 && c->margin <= 10))
			return ini_file_fail(f, "margin '%s' must be a number from 0 to 10", value);
	} else if (strcmp(key, "threads") == 0) {
		unsigned long t = strtoul(value, &end, 10);
		if (*end || end == value || value[0] == '-' || t > 256)
			return ini_file_fail(f, "threads '%s' must be a whole number from 0 (all) to 256", value);
		c->threads = (unsigned)t;
	} else if (strcmp(key, "opencl") == 0) {
		if (parse_bool(value, &c->opencl) != 0)
			return ini_file_fail(f, "opencl '%s' must be yes or no", value);
	} else if (strcmp(key, "plan") == 0) {
		if (parse_bool(value, &c->plan) != 0)
			return ini_file_fail(f, "plan '%s' must be yes or no", value);
	} else if (strcmp(key, "plan_power_w") == 0 || strcmp(key, "plan_memory_mib") == 0) {
		bool power = key[5] == 'p';
		double v;
		errno = 0;
		v = strtod(value, &end);
		if (errno || *end || end == value || !(v >= 0 && v <= (power ? 1e4 : 1e8)))
			return ini_file_fail(f, "%s '%s' must be a number from 0 (none) to %s", key, value,
			                     power ? "10000 (watts)" : "100000000 (MiB)");
		*(power ? &c->plan_power_w : &c->plan_memory_mib) = v;
	} else if (strcmp(key, "split") == 0) {
		free(c->split);
		c->split = strdup(value);
	} else if (strcmp(key, "layer_plans") == 0) {
		free(c->layer_plans);
		c->layer_plans = value[0] ? strdup(value) : NULL;
	} else if (strcmp(key, "admin_group") == 0) {
		free(c->admin_group);
		c->admin_group = value[0] ? strdup(value) : NULL;
	} else if (strcmp(key, "pm_qos_latency_us") == 0 && strcmp(value, "auto") == 0) {
		c->pm_qos_latency_us = CONFIG_PM_QOS_LATENCY_AUTO;
	} else if (strcmp(key, "pm_qos_device") == 0) {
		free(c->pm_qos_device);
		c->pm_qos_device = strdup(value);
	} else if (strcmp(key, "policy") == 0) {
		free(c->policy);
		c->policy = strdup(value);
	} else if (strcmp(key, "policies") == 0) {
		free(c->policy_dir);
		c->policy_dir = strdup(value);
	} else if ((rc = number_key(f, key, value, c)) != 1 || (rc = choice_key(f, key, value, c)) != 1) {
		return rc == 0;
	} else {
		return ini_file_fail(f, "unknown key '%s' (known: socket, models, model, policy, policies, margin, threads, "
		                        "opencl, plan, plan_power_w, plan_memory_mib, split, layer_plans, realtime, realtime_priority, realtime_limit_ms, realtime_share, realtime_below_ms, lock_memory, warm_ahead, pm_qos, "
		                        "pm_qos_latency_us, pm_qos_release_s, pm_qos_device, max_clients, max_clients_per_uid, "
		                        "client_output_kib, output_total_mib, input_total_mib, frame_timeout_s, idle_timeout_s, admin_group)",
		                     key);
	}
	return 1;
}

int
config_load(struct config *c, const char *path, char **cause)
{
	return ini_file_load(path, on_entry, c, cause);
}

int
config_load_files(struct config *c, char *const *files, unsigned n, char **cause)
{
	for (unsigned i = 0; i < n; i++)
		if (config_load(c, files[i], cause) != 0)
			return -1;
	return 0;
}

const char *
config_etc_dir(void)
{
	const char *env = getenv("GEARBOX_CONFIG_DIR");
	return env && *env ? env : GEARBOX_SYSCONFDIR;
}

const char *
config_vendor_dir(void)
{
	const char *env = getenv("GEARBOX_VENDOR_CONFIG_DIR");
	return env && *env ? env : GEARBOX_DATADIR;
}

static void
push_path(char ***files, unsigned *n, const char *dir, const char *sub, const char *name)
{
	char *path = NULL;

	if (asprintf(&path, "%s%s/%s", dir, sub, name) < 0)
		return;
	*files = realloc(*files, (*n + 1) * sizeof(char *));
	(*files)[(*n)++] = path;
}

/* The *.conf names of dir (not hidden ones), appended to names. */
static void
list_dropins(const char *dir, char ***names, unsigned *n)
{
	DIR *d = opendir(dir);
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		size_t len = strlen(e->d_name);
		if (e->d_name[0] == '.' || len <= 5 || strcmp(e->d_name + len - 5, ".conf") != 0)
			continue;
		*names = realloc(*names, (*n + 1) * sizeof(char *));
		(*names)[(*n)++] = strdup(e->d_name);
	}
	closedir(d);
}

unsigned
config_files(const char *etcdir, const char *vendordir, char ***files)
{
	char path[4096], **names = NULL;
	unsigned n = 0, nnames = 0;

	*files = NULL;
	snprintf(path, sizeof(path), "%s/gearboxd.conf", etcdir);
	if (access(path, F_OK) == 0) {
		push_path(files, &n, etcdir, "", "gearboxd.conf");
	} else {
		snprintf(path, sizeof(path), "%s/gearboxd.conf", vendordir);
		if (access(path, F_OK) == 0)
			push_path(files, &n, vendordir, "", "gearboxd.conf");
	}
	snprintf(path, sizeof(path), "%s/gearboxd.conf.d", etcdir);
	list_dropins(path, &names, &nnames);
	if (strcmp(etcdir, vendordir) != 0) {
		snprintf(path, sizeof(path), "%s/gearboxd.conf.d", vendordir);
		list_dropins(path, &names, &nnames);
	}
	if (nnames > 0)
		qsort(names, nnames, sizeof(char *), compare_names);
	for (unsigned i = 0; i < nnames; i++) {
		if (i > 0 && strcmp(names[i], names[i - 1]) == 0)
			continue; /* the same name in both: the administrator's masks the vendor's */
		snprintf(path, sizeof(path), "%s/gearboxd.conf.d/%s", etcdir, names[i]);
		if (access(path, F_OK) == 0)
			push_path(files, &n, etcdir, "/gearboxd.conf.d", names[i]);
		else
			push_path(files, &n, vendordir, "/gearboxd.conf.d", names[i]);
	}
	for (unsigned i = 0; i < nnames; i++)
		free(names[i]);
	free(names);
	return n;
}

void
config_files_free(char **files, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		free(files[i]);
	free(files);
}

void
config_free(struct config *c)
{
	for (unsigned i = 0; i < c->nmodels; i++)
		free(c->models[i]);
	free(c->models);
	free(c->socket);
	free(c->policy);
	free(c->policy_dir);
	free(c->split);
	free(c->layer_plans);
	free(c->pm_qos_device);
	free(c->admin_group);
	memset(c, 0, sizeof(*c));
}
