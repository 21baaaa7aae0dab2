#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
	qsort(c->models + first, c->nmodels - first, sizeof(char *), compare_names);
	return 0;
}

static int
on_entry(struct ini_file *f, const char *section, const char *key, const char *value)
{
	struct config *c = f->user;
	char *end;

	if (strcmp(section, "daemon") != 0)
		return ini_file_fail(f, "unknown section [%s] (known: [daemon])", section);
	if (strcmp(key, "socket") == 0) {
		free(c->socket);
		c->socket = strdup(value);
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
		if (strcmp(value, "yes") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0)
			c->opencl = true;
		else if (strcmp(value, "no") == 0 || strcmp(value, "false") == 0 || strcmp(value, "0") == 0)
			c->opencl = false;
		else
			return ini_file_fail(f, "opencl '%s' must be yes or no", value);
	} else if (strcmp(key, "policy") == 0) {
		free(c->policy);
		c->policy = strdup(value);
	} else if (strcmp(key, "policies") == 0) {
		free(c->policy_dir);
		c->policy_dir = strdup(value);
	} else {
		return ini_file_fail(f, "unknown key '%s' (known: socket, models, model, policy, policies, margin, threads, opencl)",
		                     key);
	}
	return 1;
}

int
config_load(struct config *c, const char *path, char **cause)
{
	return ini_file_load(path, on_entry, c, cause);
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
	memset(c, 0, sizeof(*c));
}
