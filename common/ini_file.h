/* SPDX-License-Identifier: MIT */
/* INI files through inih, with file:line in every error. Debian's inih hands
 * handlers no line number, so the reader counts lines itself. */
#ifndef GEARBOX_COMMON_INI_FILE_H
#define GEARBOX_COMMON_INI_FILE_H

#include <stdio.h>

struct ini_file {
	const char *path;
	int lineno;   /* line of the entry being handled */
	char *error;  /* set through ini_file_fail(); stops the parse */
	void *user;
	FILE *stream;
};

/* Handlers return what ini_file_fail returns (0) on a problem, else 1. */
typedef int ini_entry_fn(struct ini_file *f, const char *section, const char *key, const char *value);

/* Record "path:line: message" as the error; returns 0. */
int ini_file_fail(struct ini_file *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Parse path, calling entry for each key. 0, or -1 with *cause set. */
int ini_file_load(const char *path, ini_entry_fn *entry, void *user, char **cause);

#endif
