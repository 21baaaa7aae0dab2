/* SPDX-License-Identifier: MIT */
/* The return path's slow end and median (daemon/return_path.c): the
 * percentile the slow end stands for, and how long a burst holds it. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <stdlib.h>

#include "daemon/return_path.h"

START_TEST(test_empty_and_one)
{
	struct return_path r = { 0 };

	ck_assert_double_eq(return_path_slow(&r), 0);
	ck_assert_double_eq(return_path_typical(&r), 0);
	return_path_note(&r, 120);
	ck_assert_double_eq(return_path_slow(&r), 120);
	ck_assert_double_eq(return_path_typical(&r), 120);
}
END_TEST

/* 64 samples of 100..163 us, shuffled, after 100 older ones of 5 ms: the
 * slow end is the second largest of the last 64 (162), the median theirs
 * (sorted[32], 132). */
START_TEST(test_percentile_of_the_last_64)
{
	struct return_path r = { 0 };
	double v[RETURN_SAMPLES];
	unsigned seed = 7;

	for (unsigned i = 0; i < 100; i++)
		return_path_note(&r, 5000);
	for (unsigned i = 0; i < RETURN_SAMPLES; i++)
		v[i] = 100 + i;
	for (unsigned i = RETURN_SAMPLES - 1; i > 0; i--) {
		unsigned j = (seed = seed * 1103515245u + 12345u) % (i + 1);
		double t = v[i];
		v[i] = v[j];
		v[j] = t;
	}
	for (unsigned i = 0; i < RETURN_SAMPLES; i++)
		return_path_note(&r, v[i]);
	ck_assert_double_eq(return_path_slow(&r), 162);
	ck_assert_double_eq(return_path_typical(&r), 132);
}
END_TEST

/* One slow reply among steady ones is the 99th-percentile's business, not
 * the estimate's; two are (that is the percentile), until 63 more have come. */
START_TEST(test_one_slow_reply_does_not_own_it)
{
	struct return_path r = { 0 };

	for (unsigned i = 0; i < 200; i++)
		return_path_note(&r, i == 150 ? 1400 : 200 + i % 10);
	ck_assert_double_le(return_path_slow(&r), 209);
	return_path_note(&r, 1400);
	ck_assert_double_eq(return_path_slow(&r), 1400);
	for (unsigned i = 0; i < 14; i++) /* the 151st (index 150) leaves with the 215th */
		return_path_note(&r, 200);
	ck_assert_double_le(return_path_slow(&r), 209);
}
END_TEST

static Suite *
return_path_suite(void)
{
	Suite *s = suite_create("return-path");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_empty_and_one);
	tcase_add_test(tc, test_percentile_of_the_last_64);
	tcase_add_test(tc, test_one_slow_reply_does_not_own_it);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(return_path_suite());
}
