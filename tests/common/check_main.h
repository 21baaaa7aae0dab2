/* SPDX-License-Identifier: MIT */
/* The main() every check-based test program shares: run one suite, report,
 * exit non-zero on any failure. */
#ifndef GEARBOX_TESTS_CHECK_MAIN_H
#define GEARBOX_TESTS_CHECK_MAIN_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

static inline int
run_suite(Suite *s)
{
	SRunner *sr = srunner_create(s);
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* run_suite with a fresh temporary folder: `tmpl` (a mkdtemp template the
 * tests use as their folder) is created first and removed afterwards. */
static inline int
run_suite_in_tmpdir(Suite *s, char *tmpl)
{
	char cmd[320];
	int ret;

	if (mkdtemp(tmpl) == NULL) {
		perror("mkdtemp");
		srunner_free(srunner_create(s)); /* frees the suite */
		return EXIT_FAILURE;
	}
	ret = run_suite(s);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpl);
	if (system(cmd) != 0) {
		fprintf(stderr, "could not remove %s\n", tmpl);
		ret = EXIT_FAILURE;
	}
	return ret;
}

#endif
