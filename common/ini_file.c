/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#ifdef HAVE_INIH
#include <ini.h>
#endif

#include "common/cause.h"
#include "common/ini_file.h"

struct parse {
	struct ini_file file;
	ini_entry_fn *entry;
};

int
ini_file_fail(struct ini_file *f, const char *fmt, ...)
{
	va_list ap;
	char *msg = NULL;

	if (f->error != NULL)
		return 0;
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0)
		msg = NULL;
	va_end(ap);
	set_cause(&f->error, "%s:%d: %s", f->path, f->lineno, msg ? msg : "out of memory");
	free(msg);
	return 0;
}

#ifdef HAVE_INIH
static char *
read_line(char *buf, int size, void *stream)
{
	struct parse *p = stream;
	char *line = fgets(buf, size, p->file.stream);

	if (line != NULL)
		p->file.lineno++;
	return line;
}

static int
on_entry(void *user, const char *section, const char *key, const char *value)
{
	struct parse *p = user;

	if (p->file.error != NULL)
		return 0;
	return p->entry(&p->file, section, key, value) && p->file.error == NULL;
}

int
ini_file_load(const char *path, ini_entry_fn *entry, void *user, char **cause)
{
	struct parse p = { .file = { .path = path, .user = user, .stream = fopen(path, "r") }, .entry = entry };
	int line;

	if (p.file.stream == NULL)
		return set_cause(cause, "%s: %s", path, strerror(errno));
	line = ini_parse_stream(read_line, &p, on_entry, &p);
	fclose(p.file.stream);
	if (p.file.error != NULL) {
		if (cause != NULL)
			*cause = p.file.error;
		else
			free(p.file.error);
		return -1;
	}
	if (line != 0)
		return set_cause(cause, "%s:%d: not INI syntax", path, line);
	return 0;
}
#else
/* Built without inih (configure --without-inih): no INI file can be read. */
int
ini_file_load(const char *path, ini_entry_fn *entry, void *user, char **cause)
{
	(void)entry, (void)user;
	return set_cause(cause, "%s: gearbox was built without inih and cannot read INI files", path);
}
#endif
