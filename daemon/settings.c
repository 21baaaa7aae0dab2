#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "common/cause.h"
#include "daemon/settings.h"

void
config_defaults(struct config *c)
{
	memset(c, 0, sizeof(*c));
	c->margin = 0.1;
	c->threads = 1;
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

struct parse {
	struct config *c;
	const char *path;
	FILE *f;
	int lineno; /* Debian's inih passes no line number: the reader counts */
	char *error;
};

static char *
read_line(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	char *line = fgets(buf, size, p->f);

	if (line != NULL)
		p->lineno++;
	return line;
}

static int
on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;
	struct config *c = p->c;
	char *end;

	if (p->error != NULL)
		return 0;
	if (strcmp(section, "daemon") != 0) {
		set_cause(&p->error, "%s:%d: unknown section [%s] (known: [daemon])", p->path, p->lineno, section);
	} else if (strcmp(key, "socket") == 0) {
		free(c->socket);
		c->socket = strdup(value);
	} else if (strcmp(key, "model") == 0) {
		config_add_model(c, value);
	} else if (strcmp(key, "models") == 0) {
		char *why = NULL;
		if (config_add_folder(c, value, &why) != 0) {
			set_cause(&p->error, "%s:%d: models: %s", p->path, p->lineno, why);
			free(why);
		}
	} else if (strcmp(key, "margin") == 0) {
		errno = 0;
		c->margin = strtod(value, &end);
		if (errno || *end || end == value || !(c->margin >= 0 && c->margin <= 10))
			set_cause(&p->error, "%s:%d: margin '%s' must be a number from 0 to 10", p->path, p->lineno, value);
	} else if (strcmp(key, "threads") == 0) {
		unsigned long t = strtoul(value, &end, 10);
		if (*end || end == value || t < 1 || t > 256)
			set_cause(&p->error, "%s:%d: threads '%s' must be a whole number from 1 to 256", p->path, p->lineno,
			          value);
		c->threads = (unsigned)t;
	} else {
		set_cause(&p->error, "%s:%d: unknown key '%s' (known: socket, models, model, margin, threads)", p->path,
		          p->lineno, key);
	}
	return p->error == NULL;
}

int
config_load(struct config *c, const char *path, char **cause)
{
	struct parse p = { .c = c, .path = path, .f = fopen(path, "r") };
	int line;

	if (p.f == NULL)
		return set_cause(cause, "%s: %s", path, strerror(errno));
	line = ini_parse_stream(read_line, &p, on_entry, &p);
	fclose(p.f);
	if (p.error != NULL) {
		if (cause != NULL)
			*cause = p.error;
		else
			free(p.error);
		return -1;
	}
	if (line != 0)
		return set_cause(cause, "%s:%d: not INI syntax", path, line);
	return 0;
}

void
config_free(struct config *c)
{
	for (unsigned i = 0; i < c->nmodels; i++)
		free(c->models[i]);
	free(c->models);
	free(c->socket);
	memset(c, 0, sizeof(*c));
}
