/* SPDX-License-Identifier: MIT */
/* A session's arrival pattern (daemon/arrival.c): when the period is
 * trusted, what a pause keeps, and what starts learning again. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <stdint.h>

#include "daemon/arrival.h"

#define MS 1000000ull

/* n requests every period_ns from t, jitter alternating +-jitter_ns;
 * returns the time of the last. */
static uint64_t
send_every(struct arrival *a, uint64_t t, unsigned n, uint64_t period_ns, uint64_t jitter_ns)
{
	for (unsigned i = 0; i < n; i++, t += period_ns)
		arrival_note(a, i % 2 ? t + jitter_ns : t - jitter_ns);
	return t - period_ns;
}

START_TEST(test_steady_after_four_matching_gaps)
{
	struct arrival a = { 0 };
	uint64_t last = send_every(&a, 1000 * MS, ARRIVAL_STEADY, 20 * MS, 0);

	/* the first request has no gap and the second's sets the period: four
	 * more must match it */
	ck_assert(!arrival_is_steady(&a));
	ck_assert_uint_eq(arrival_next_ns(&a), 0);
	arrival_note(&a, last + 20 * MS);
	arrival_note(&a, last + 40 * MS);
	ck_assert(arrival_is_steady(&a));
	ck_assert_uint_eq(arrival_next_ns(&a), last + 60 * MS);
}
END_TEST

START_TEST(test_jitter_within_a_quarter_keeps_the_pattern)
{
	struct arrival a = { 0 };
	uint64_t last = send_every(&a, 1000 * MS, 40, 20 * MS, 1 * MS); /* gaps of 18 and 22 ms */

	ck_assert(arrival_is_steady(&a));
	ck_assert_double_gt(a.jitter_ns, 0);
	ck_assert_double_le(a.jitter_ns, 3.0 * MS); /* gaps 2 ms off the period */
	ck_assert_uint_ge(arrival_next_ns(&a), last + 19 * MS); /* the last came 1 ms late */
	ck_assert_uint_le(arrival_next_ns(&a), last + 23 * MS);
}
END_TEST

/* The camera stops for 3 s and starts again on its old period: the request
 * after the one that ended the pause is expected at once. */
START_TEST(test_a_pause_keeps_the_period)
{
	struct arrival a = { 0 };
	uint64_t last = send_every(&a, 1000 * MS, 20, 20 * MS, 0), back = last + 3000 * MS;

	arrival_note(&a, back);
	ck_assert(arrival_is_steady(&a));
	ck_assert_uint_eq(arrival_next_ns(&a), back + 20 * MS);
	arrival_note(&a, back + 20 * MS); /* on time: the pattern goes on */
	ck_assert(!a.paused);
	ck_assert_uint_eq(arrival_next_ns(&a), back + 40 * MS);
	/* a dropped frame is a pause too */
	arrival_note(&a, back + 80 * MS);
	ck_assert_uint_eq(arrival_next_ns(&a), back + 100 * MS);
}
END_TEST

/* The client now sends every 50 ms instead of 20: the first long gap reads
 * as a pause, the second starts learning the new period. */
START_TEST(test_two_long_gaps_in_a_row_start_over)
{
	struct arrival a = { 0 };
	uint64_t last = send_every(&a, 1000 * MS, 20, 20 * MS, 0);

	arrival_note(&a, last + 50 * MS);
	ck_assert(arrival_is_steady(&a));
	arrival_note(&a, last + 100 * MS);
	ck_assert(!arrival_is_steady(&a));
	ck_assert_double_eq(a.period_ns, 50.0 * MS);
	send_every(&a, last + 150 * MS, ARRIVAL_STEADY, 50 * MS, 0);
	ck_assert(arrival_is_steady(&a));
	ck_assert_uint_eq(arrival_next_ns(&a), last + 100 * MS + (ARRIVAL_STEADY + 1) * 50 * MS);
}
END_TEST

/* A gap shorter than the period is no pause: a burst, or a faster client. */
START_TEST(test_a_short_gap_starts_over)
{
	struct arrival a = { 0 };
	uint64_t last = send_every(&a, 1000 * MS, 20, 20 * MS, 0);

	arrival_note(&a, last + 5 * MS);
	ck_assert(!arrival_is_steady(&a));
	ck_assert_uint_eq(arrival_next_ns(&a), 0);
	ck_assert_double_eq(a.period_ns, 5.0 * MS);
}
END_TEST

/* Send times out of order (two threads of one client) move nothing back. */
START_TEST(test_an_earlier_send_time_is_ignored)
{
	struct arrival a = { 0 };
	uint64_t last = send_every(&a, 1000 * MS, 20, 20 * MS, 0);

	arrival_note(&a, last - 10 * MS);
	ck_assert_uint_eq(a.last_ns, last);
	ck_assert(arrival_is_steady(&a));
	ck_assert_uint_eq(arrival_next_ns(&a), last + 20 * MS);
}
END_TEST

static Suite *
arrival_suite(void)
{
	Suite *s = suite_create("arrival");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, test_steady_after_four_matching_gaps);
	tcase_add_test(tc, test_jitter_within_a_quarter_keeps_the_pattern);
	tcase_add_test(tc, test_a_pause_keeps_the_period);
	tcase_add_test(tc, test_two_long_gaps_in_a_row_start_over);
	tcase_add_test(tc, test_a_short_gap_starts_over);
	tcase_add_test(tc, test_an_earlier_send_time_is_ignored);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(arrival_suite());
}
