/* SPDX-License-Identifier: MIT */
/* libgearbox's wake-ahead planning (client/wake_ahead.c): when a synchronous
 * caller wakes up to poll for its reply, from the connection's recent round
 * trips and the timer's learned lateness; and when it does not wake ahead. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>

#include "client/wake_ahead.h"

#define US 1000u

static void
learn_all(struct wake_ahead *w, const unsigned *rtt_us, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		wake_ahead_learn_rtt(w, rtt_us[i] * US);
}

START_TEST(test_needs_history_and_a_margin)
{
	struct wake_ahead w;
	uint64_t wake, until;

	wake_ahead_init(&w, 20);
	for (unsigned i = 0; i < WAKE_AHEAD_HISTORY - 1; i++) {
		wake_ahead_learn_rtt(&w, 300 * US);
		ck_assert(!wake_ahead_plan(&w, &wake, &until));
	}
	wake_ahead_learn_rtt(&w, 300 * US);
	ck_assert(wake_ahead_plan(&w, &wake, &until));
	w.margin_us = 0; /* gbx_set_wake_ahead(c, 0) */
	ck_assert(!wake_ahead_plan(&w, &wake, &until));
}
END_TEST

START_TEST(test_window_around_typical_round_trips)
{
	struct wake_ahead w;
	uint64_t wake, until;
	/* one fast and one slow outlier do not widen the window */
	const unsigned rtt[] = { 310, 150, 300, 320, 305, 5000, 315, 302 };

	wake_ahead_init(&w, 20);
	learn_all(&w, rtt, 8);
	ck_assert(wake_ahead_plan(&w, &wake, &until));
	ck_assert_uint_eq(wake, (300 - 20) * US);
	ck_assert_uint_eq(until, (320 + 20) * US);
	/* woken 30 us late so far: the timer is set that much earlier */
	w.late_ns = 30 * US;
	ck_assert(wake_ahead_plan(&w, &wake, &until));
	ck_assert_uint_eq(wake, (300 - 20 - 30) * US);
	ck_assert_uint_eq(until, (320 + 20) * US);
}
END_TEST

START_TEST(test_spread_round_trips_sleep)
{
	struct wake_ahead w;
	uint64_t wake, until;
	/* clients queueing behind each other: 2nd to 7th shortest span 300 us */
	const unsigned queued[] = { 200, 500, 900, 300, 600, 400, 250, 700 };
	/* the same within four margins (80 us) */
	const unsigned steady[] = { 200, 280, 270, 260, 250, 240, 230, 210 };

	wake_ahead_init(&w, 20);
	learn_all(&w, queued, 8);
	ck_assert(!wake_ahead_plan(&w, &wake, &until));
	learn_all(&w, steady, 8); /* the old ones are forgotten */
	ck_assert(wake_ahead_plan(&w, &wake, &until));
	ck_assert_uint_eq(wake, (210 - 20) * US);
	ck_assert_uint_eq(until, (270 + 20) * US);
}
END_TEST

START_TEST(test_quick_replies_poll_from_the_start)
{
	struct wake_ahead w;
	uint64_t wake = 1, until;

	wake_ahead_init(&w, 20);
	w.late_ns = 30 * US;
	for (unsigned i = 0; i < WAKE_AHEAD_HISTORY; i++)
		wake_ahead_learn_rtt(&w, 40 * US);
	ck_assert(wake_ahead_plan(&w, &wake, &until));
	ck_assert_uint_eq(wake, 0);
	ck_assert_uint_eq(until, 60 * US);
}
END_TEST

START_TEST(test_lateness_rises_fast_falls_slowly_ignores_outliers)
{
	struct wake_ahead w;

	wake_ahead_init(&w, 20);
	for (unsigned i = 0; i < 20; i++)
		wake_ahead_learn_lateness(&w, 30 * US);
	ck_assert_uint_ge(w.late_ns, 29 * US);
	ck_assert_uint_le(w.late_ns, 30 * US);
	/* a timer held up 5 ms by a busy CPU counts as at most twice the
	 * learned lateness plus 20 us */
	uint64_t before = w.late_ns;
	wake_ahead_learn_lateness(&w, 5000 * US);
	ck_assert_uint_le(w.late_ns, before + (before + 20 * US) / 2);
	ck_assert_uint_gt(w.late_ns, before);
	/* one quick wake-up lowers it by a sixteenth of the difference */
	before = w.late_ns;
	wake_ahead_learn_lateness(&w, 0);
	ck_assert_uint_eq(w.late_ns, before - before / 16);
}
END_TEST

static Suite *
wake_ahead_suite(void)
{
	Suite *s = suite_create("wake_ahead");
	TCase *tc = tcase_create("plan");

	tcase_add_test(tc, test_needs_history_and_a_margin);
	tcase_add_test(tc, test_window_around_typical_round_trips);
	tcase_add_test(tc, test_spread_round_trips_sleep);
	tcase_add_test(tc, test_quick_replies_poll_from_the_start);
	tcase_add_test(tc, test_lateness_rises_fast_falls_slowly_ignores_outliers);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(wake_ahead_suite());
}
