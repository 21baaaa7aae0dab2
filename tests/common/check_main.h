/* The main() every check-based test program shares: run one suite, report,
 * exit non-zero on any failure. */
#ifndef GEARBOX_TESTS_CHECK_MAIN_H
#define GEARBOX_TESTS_CHECK_MAIN_H

#include <check.h>
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

#endif
