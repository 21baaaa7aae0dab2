/* SPDX-License-Identifier: MIT */
/* A test's scratch files: write `content` to dir/name and return the path.
 * The last four paths stay valid, so a call may take several at once. */
#ifndef GEARBOX_TESTS_SCRATCH_H
#define GEARBOX_TESTS_SCRATCH_H

#include <check.h>
#include <stdio.h>

static inline const char *
scratch_file(const char *dir, const char *name, const char *content)
{
	static char path[4][512];
	static int next;
	char *p = path[next++ % 4];
	FILE *f;

	snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
	f = fopen(p, "w");
	ck_assert_msg(f != NULL, "cannot write %s", p);
	fputs(content, f);
	fclose(f);
	return p;
}

#endif
