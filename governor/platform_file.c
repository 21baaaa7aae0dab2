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
#include <ini.h>

struct file_ctx {
	struct gov_platform *p;
	const char *path;
	FILE *f;
	int lineno; /* Debian's inih passes no line number: count in the reader */
	char *error;
};

static char *
read_line(char *buf, int size, void *stream)
{
	struct file_ctx *ctx = stream;
	char *line = fgets(buf, size, ctx->f);

	if (line != NULL)
		ctx->lineno++;
	return line;
}

static int
on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct file_ctx *ctx = user;
	int lineno = ctx->lineno;
	struct gov_cluster *c;
	unsigned long khz[GOV_MAX_FREQS];
	double watts[GOV_MAX_FREQS];
	unsigned n = 0;
	char *copy, *save = NULL, *cause = NULL;

	if (ctx->error != NULL)
		return 0;
	if ((c = gov_find_cluster(ctx->p, section)) == NULL) {
		set_cause(&ctx->error, "%s:%d: [%s] is not a cluster of this machine (see 'gearbox platform')", ctx->path,
		          lineno, section);
		return 0;
	}
	if (strcmp(key, "power") != 0) {
		set_cause(&ctx->error, "%s:%d: unknown key '%s' (known: power)", ctx->path, lineno, key);
		return 0;
	}
	copy = strdup(value);
	for (char *tok = strtok_r(copy, " \t", &save); tok != NULL; tok = strtok_r(NULL, " \t", &save)) {
		char *colon = strchr(tok, ':'), *end1, *end2;
		if (n == GOV_MAX_FREQS || colon == NULL) {
			set_cause(&ctx->error, "%s:%d: '%s' is not KHZ:WATTS", ctx->path, lineno, tok);
			break;
		}
		*colon = '\0';
		errno = 0;
		khz[n] = strtoul(tok, &end1, 10);
		watts[n] = strtod(colon + 1, &end2);
		if (errno != 0 || *end1 != '\0' || *end2 != '\0' || end1 == tok || end2 == colon + 1) {
			set_cause(&ctx->error, "%s:%d: '%s:%s' is not KHZ:WATTS", ctx->path, lineno, tok, colon + 1);
			break;
		}
		n++;
	}
	free(copy);
	if (ctx->error == NULL && gov_platform_set_power_table(ctx->p, c->id, n, khz, watts, &cause) != 0) {
		set_cause(&ctx->error, "%s:%d: %s", ctx->path, lineno, cause);
		free(cause);
	}
	return ctx->error == NULL; /* inih: non-zero means the entry was fine */
}

int
gov_platform_load_file(struct gov_platform *p, const char *path, char **cause)
{
	struct file_ctx ctx = { .p = p, .path = path, .f = fopen(path, "r") };
	int line;

	if (ctx.f == NULL)
		return set_cause(cause, "%s: %s", path, strerror(errno));
	line = ini_parse_stream(read_line, &ctx, on_entry, &ctx);
	fclose(ctx.f);
	if (ctx.error != NULL) {
		if (cause != NULL)
			*cause = ctx.error;
		else
			free(ctx.error);
		return -1;
	}
	if (line != 0)
		return set_cause(cause, "%s:%d: not INI syntax", path, line);
	return 0;
}
#else
int
gov_platform_load_file(struct gov_platform *p, const char *path, char **cause)
{
	return set_cause(cause, "%s: built without inih: platform files are not supported", path);
}
#endif
