/* SPDX-License-Identifier: MIT */
/* policies: policy files (shipped ones, every kind of bad file, overrides),
 * the selector on synthetic operating-point tables (budgets, infeasible
 * budgets, ties, hysteresis, power caps, the one-frequency-per-cluster rule),
 * the feedback loop on synthetic latency traces (load steps, noise) and the
 * calibration cache's key (another build, CPU or model file is measured
 * again, and the refusal says why). */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <json-c/json.h>

#include "dnn/dnn.h"
#include "policies/control.h"
#include "policies/policy.h"
#include "tests/common/modelgen.h"
#include "tests/common/scratch.h"

static char dir[] = "/tmp/gearbox-test-policy-XXXXXX";

/* ---- policy files ------------------------------------------------------------- */

START_TEST(shipped_policies_load)
{
	struct pol_set set;
	char *cause = NULL;
	const struct pol_policy *p;

	ck_assert_msg(pol_set_load(&set, pol_shipped_dir(), NULL, &cause) == 0, "%s", cause);
	ck_assert_ptr_nonnull(p = pol_set_find(&set, "default"));
	ck_assert_int_eq(p->params.objective, POL_OBJECTIVE_ACCURACY);
	ck_assert_double_eq_tol(p->params.margin, 0.10, 1e-12);
	ck_assert_ptr_nonnull(p = pol_set_find(&set, "realtime"));
	ck_assert_int_eq(p->params.keep_first, POL_KEEP_DEADLINE);
	ck_assert(p->params.margin > 0.2);
	ck_assert_ptr_nonnull(p = pol_set_find(&set, "powersave"));
	ck_assert_int_eq(p->params.objective, POL_OBJECTIVE_ENERGY);
	ck_assert_double_eq_tol(p->params.min_accuracy, 0.85, 1e-12);
	pol_set_clear(&set);
}
END_TEST

static void
expect_refused(const char *content, const char *needle)
{
	struct pol_policy pol;
	char *cause = NULL;
	const char *path = scratch_file(dir, "bad.conf", content);

	ck_assert_int_eq(pol_policy_load(path, &pol, &cause), -1);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, needle) != NULL, "'%s' does not mention '%s'", cause, needle);
	ck_assert_msg(strstr(cause, "bad.conf") != NULL, "'%s' does not name the file", cause);
	free(cause);
}

START_TEST(bad_policy_files_refused)
{
	expect_refused("[policy]\nobjective = accuracy\nspeed = 11\n", "bad.conf:3: unknown key 'speed'");
	expect_refused("[policy]\nobjective = fastest\n", "bad.conf:2: objective: 'fastest' is not one of");
	expect_refused("[polcy]\nmargin = 0.1\n", "unknown section [polcy]");
	expect_refused("[policy]\nmargin = -1\n", "margin: '-1' must be a number from 0 to 10");
	expect_refused("[policy]\nmargin = 0.1x\n", "margin");
	expect_refused("[policy]\ndvfs = maybe\n", "yes or no");
	expect_refused("[policy]\nplacements = cpu tpu\n", "'tpu' is not a placement");
	expect_refused("[policy]\nfrequencies = 2000-1000\n", "MIN-MAX");
	expect_refused("[policy]\ncontroller = fixed\n", "needs groups");
	expect_refused("[policy]\nmin_groups = 3\nmax_groups = 2\n", "min_groups 3 is above max_groups 2");
	expect_refused("[feedback]\nwindow = 0\n", "window: '0' must be a whole number from 1 to 64");
	expect_refused("[calibration]\nrepeats = 3\n", "unknown key 'repeats' in [calibration]");
	expect_refused("[model m]\ndvfs = no\n", "unknown key 'dvfs' in [model NAME]");
	expect_refused("[policy]\nthis is not ini\n", "bad.conf:2");
}
END_TEST

START_TEST(overrides_and_model_sections)
{
	char shipped[600], etc[600], *cause = NULL;
	struct pol_set set;
	struct pol_params r;
	const struct pol_policy *p;

	snprintf(shipped, sizeof(shipped), "%s/shipped", dir);
	snprintf(etc, sizeof(etc), "%s/etc", dir);
	mkdir(shipped, 0755);
	mkdir(etc, 0755);
	scratch_file(dir, "shipped/default.conf", "[policy]\nmargin = 0.1\n");
	scratch_file(dir, "shipped/fast.conf", "[policy]\nobjective = latency\n");
	scratch_file(dir, "etc/default.conf",
	           "[policy]\nmargin = 0.2\nmin_accuracy = 0.5\n[model small]\nmargin = 0.4\nmax_groups = 2\n");
	ck_assert_msg(pol_set_load(&set, shipped, etc, &cause) == 0, "%s", cause);
	ck_assert_uint_eq(set.n, 2);
	p = pol_set_find(&set, "default");
	ck_assert_ptr_nonnull(p);
	ck_assert_double_eq_tol(p->params.margin, 0.2, 1e-12); /* /etc wins */
	pol_policy_resolve(p, "small", &r);
	ck_assert_double_eq_tol(r.margin, 0.4, 1e-12);
	ck_assert_uint_eq(r.max_groups, 2);
	ck_assert_double_eq_tol(r.min_accuracy, 0.5, 1e-12); /* from [policy] */
	pol_policy_resolve(p, "other", &r);
	ck_assert_double_eq_tol(r.margin, 0.2, 1e-12);
	ck_assert_ptr_nonnull(pol_set_find(&set, "fast"));
	pol_set_clear(&set);

	/* one bad file: the whole set is refused (a reload keeps the old one) */
	scratch_file(dir, "etc/broken.conf", "[policy]\nmargin = lots\n");
	ck_assert_int_eq(pol_set_load(&set, shipped, etc, &cause), -1);
	ck_assert(strstr(cause, "broken.conf:2") != NULL);
	ck_assert_uint_eq(set.n, 0);
	free(cause);
}
END_TEST

/* ---- a synthetic platform and model ----------------------------------------------- */

static struct pol_predictor pr;

/* LITTLE: slow, frugal, two frequencies; big: fast, hungry; a GPU. One
 * MMAC costs 100 us on one LITTLE CPU at 1 GHz, 25 us on big at 2 GHz. */
static void
setup_platform(void)
{
	struct pol_model m = { .name = "synthetic", .groups = 4 };
	struct pol_place places[3];

	for (unsigned g = 1; g <= 4; g++) {
		m.macs[g] = g * 1e6;
		m.accuracy[g] = 0.85 + 0.02 * (g - 1);
	}
	memset(places, 0, sizeof(places));
	places[0] = (struct pol_place){ .kind = POL_PLACE_CPU, .name = "cluster0", .index = 0, .max_threads = 2,
		                        .capacity = 400, .nfreqs = 2, .freqs_khz = { 500000, 1000000 },
		                        .dvfs = true, .busy_w = { 0.05, 0.15 } };
	places[1] = (struct pol_place){ .kind = POL_PLACE_CPU, .name = "cluster1", .index = 1, .max_threads = 2,
		                        .capacity = 1024, .nfreqs = 2, .freqs_khz = { 1000000, 2000000 },
		                        .dvfs = true, .busy_w = { 0.4, 1.5 } };
	places[2] = (struct pol_place){ .kind = POL_PLACE_OPENCL, .name = "opencl:0", .index = 0, .is_gpu = true,
		                        .max_threads = 1, .capacity = 1024, .nfreqs = 1, .freqs_khz = { 600000 },
		                        .dvfs = false, .busy_w = { 2.0 } };
	pol_predictor_init(&pr, &m, places, 3);
	for (unsigned t = 1; t <= 2; t++) {
		double scale = t == 1 ? 1 : 0.6;
		pr.fit[0][t] = (struct pol_fit){ true, 10 * scale, 100 * scale, 1000000 };
		pr.fit[1][t] = (struct pol_fit){ true, 5 * scale, 25 * scale, 2000000 };
	}
	pr.fit[2][1] = (struct pol_fit){ true, 40, 10, 600000 };
}

static unsigned
table(const struct pol_params *params, const struct pol_feedback *fb, struct pol_point *pts)
{
	return pol_table_build(&pr, params, fb, NULL, pts, 512);
}

static struct pol_params
params_named(const char *name)
{
	struct pol_params p;

	pol_params_defaults(&p, name);
	return p;
}

START_TEST(table_and_predictions)
{
	struct pol_params p = params_named("t");
	struct pol_point pts[512];
	unsigned n = table(&p, NULL, pts);

	/* 4 g x (2 freqs x 2 threads x 2 clusters + 1 GPU) */
	ck_assert_uint_eq(n, 4 * (2 * 2 * 2 + 1));
	/* LITTLE at 500 MHz is twice as slow as at 1 GHz */
	ck_assert_double_eq_tol(pol_predict_us(&pr, 2, 0, 1, 0), 2 * (10 + 200), 1e-9);
	ck_assert_double_eq_tol(pol_predict_us(&pr, 2, 0, 1, 1), 10 + 200, 1e-9);
	for (unsigned i = 0; i < n; i++)
		ck_assert_double_eq_tol(pts[i].energy_uj, pts[i].power_w * pts[i].latency_us, 1e-9);
	p.placements[0] = '\0';
	strcpy(p.placements, "cluster1");
	ck_assert_uint_eq(table(&p, NULL, pts), 4 * 2 * 2);
	strcpy(p.placements, "gpu");
	ck_assert_uint_eq(table(&p, NULL, pts), 4);
	strcpy(p.placements, "all");
	p.power_cap_w = 1.0; /* big at 2 GHz (1.5 W/CPU) and the GPU are out */
	n = table(&p, NULL, pts);
	for (unsigned i = 0; i < n; i++)
		ck_assert(pts[i].power_w <= 1.0);
	ck_assert_uint_eq(n, 4 * (2 * 2 + 2)); /* LITTLE 2 freqs x 2 threads, big 1 GHz x {1,2} threads */
}
END_TEST

static struct pol_choice
choose(const struct pol_params *p, double deadline, double energy, double min_acc, const struct pol_session *s)
{
	struct pol_point pts[512];
	struct pol_budget b = { deadline, energy, min_acc };
	struct pol_choice c;
	unsigned n = table(p, NULL, pts);

	ck_assert_int_eq(pol_select(pts, n, p, &b, s, &c), 0);
	return c;
}

START_TEST(selects_best_accuracy_within_budget)
{
	struct pol_params p = params_named("t");
	struct pol_choice c;

	/* no budget: all groups, least energy among them */
	c = choose(&p, 0, 0, 0, NULL);
	ck_assert(c.feasible);
	ck_assert_uint_eq(c.point.groups, 4);
	/* g=4 on big, 2 threads, 2 GHz: 0.6*(5+100) = 63 us; g=3: 48 us; 60 us
	 * with a 10 % margin leaves g=3 at the fastest (GPU 70 us, big 48) */
	c = choose(&p, 60, 0, 0, NULL);
	ck_assert(c.feasible);
	ck_assert_uint_eq(c.point.groups, 3);
	ck_assert(c.point.latency_us * 1.1 <= 60);
	/* every chosen point meets the deadline with the margin */
	for (double d = 20; d < 2000; d *= 1.3) {
		c = choose(&p, d, 0, 0, NULL);
		if (c.feasible)
			ck_assert(c.point.latency_us * 1.1 <= d);
	}
	/* an energy budget moves the work to the frugal cluster */
	c = choose(&p, 0, 30, 0, NULL);
	ck_assert(c.feasible);
	ck_assert_uint_eq(c.point.place, 0);
	ck_assert(c.point.energy_uj * 1.1 <= 30);
	/* objective energy: the least energy of all points */
	p.objective = POL_OBJECTIVE_ENERGY;
	c = choose(&p, 0, 0, 0, NULL);
	struct pol_point pts[512];
	unsigned n = table(&p, NULL, pts);
	for (unsigned i = 0; i < n; i++)
		ck_assert(c.point.energy_uj <= pts[i].energy_uj + 1e-9);
	/* objective latency with an accuracy floor */
	p.objective = POL_OBJECTIVE_LATENCY;
	c = choose(&p, 0, 0, 0.88, NULL);
	ck_assert_uint_eq(c.point.groups, 3); /* 0.85 + 0.02*2 = 0.89 is the first >= 0.88 */
}
END_TEST

START_TEST(infeasible_budgets_run_the_closest_point)
{
	struct pol_params p = params_named("t");
	struct pol_choice c;

	/* 10 us is below everything: the fastest point, marked, with the reason */
	c = choose(&p, 10, 0, 0, NULL);
	ck_assert(!c.feasible);
	ck_assert_uint_eq(c.point.groups, 1);
	ck_assert_uint_eq(c.point.place, 1);
	ck_assert_uint_eq(c.point.threads, 2);
	ck_assert_msg(strstr(c.reason, "deadline: 10 us left") != NULL, "%s", c.reason);
	/* an accuracy nothing reaches */
	c = choose(&p, 0, 0, 0.99, NULL);
	ck_assert(!c.feasible);
	ck_assert_uint_eq(c.point.groups, 4);
	ck_assert_msg(strstr(c.reason, "accuracy") != NULL, "%s", c.reason);
	/* deadline and energy both impossible: the keep order decides */
	c = choose(&p, 10, 1, 0, NULL);
	ck_assert(!c.feasible);
	ck_assert_uint_eq(c.point.place, 1); /* deadline kept first: fastest */
	p.keep_first = POL_KEEP_ENERGY;
	c = choose(&p, 10, 1, 0, NULL);
	ck_assert(!c.feasible);
	ck_assert_uint_eq(c.point.place, 0); /* energy kept first: frugal */
	ck_assert_msg(strstr(c.reason, "deadline") != NULL, "%s", c.reason);
	/* no point at all */
	struct pol_choice none;
	struct pol_budget b = { 0, 0, 0 };
	ck_assert_int_eq(pol_select(NULL, 0, &p, &b, NULL, &none), -1);
	ck_assert(strstr(none.reason, "allows no operating point") != NULL);
}
END_TEST

/* The reason names the figure the deadline was held against: the slow end
 * of the recent requests when that is above the margin. */
START_TEST(infeasible_reason_says_the_slow_end)
{
	struct pol_params p = params_named("t");
	struct pol_point pt = { .groups = 1, .place = 0, .threads = 1, .latency_us = 150, .tail_us = 230,
		                .energy_uj = 10, .accuracy = 0.9 };
	struct pol_budget b = { .deadline_us = 200 };
	struct pol_choice c;

	ck_assert_int_eq(pol_select(&pt, 1, &p, &b, NULL, &c), 0);
	ck_assert(!c.feasible);
	ck_assert_msg(strstr(c.reason, "needs about 230 us at the slow end") != NULL, "%s", c.reason);
	ck_assert_msg(strstr(c.reason, "150 us predicted") != NULL, "%s", c.reason);
	/* no tail: the prediction with the margin */
	pt.tail_us = 0;
	pt.latency_us = 190;
	ck_assert_int_eq(pol_select(&pt, 1, &p, &b, NULL, &c), 0);
	ck_assert(!c.feasible);
	ck_assert_msg(strstr(c.reason, "needs about 209 us with a 10% margin") != NULL, "%s", c.reason);
}
END_TEST

START_TEST(ties_prefer_fewer_threads)
{
	struct pol_params p = params_named("t");
	struct pol_point pts[2];
	struct pol_budget b = { 0, 0, 0 };
	struct pol_choice c;

	memset(pts, 0, sizeof(pts));
	pts[0] = (struct pol_point){ .groups = 2, .threads = 2, .accuracy = 0.9, .latency_us = 100, .energy_uj = 50 };
	pts[1] = pts[0];
	pts[1].threads = 1;
	ck_assert_int_eq(pol_select(pts, 2, &p, &b, NULL, &c), 0);
	ck_assert_uint_eq(c.point.threads, 1);
	/* same accuracy: less energy wins, then less time */
	pts[0].energy_uj = 40;
	ck_assert_int_eq(pol_select(pts, 2, &p, &b, NULL, &c), 0);
	ck_assert_uint_eq(c.point.threads, 2);
}
END_TEST

START_TEST(hysteresis_needs_slack_to_move_up)
{
	struct pol_params p = params_named("t");
	struct pol_session s = { 0 };
	struct pol_choice c;

	strcpy(p.placements, "cluster1");
	p.max_threads = 1;
	p.min_khz = 2000000;
	/* one point per g: 30, 55, 80, 105 us */
	c = choose(&p, 80 * 1.1 + 1, 0, 0, &s);
	ck_assert_uint_eq(c.point.groups, 3);
	s.have_last = true;
	s.last = c.point;
	/* g=4 fits with the margin (105*1.1 = 115.5 < 116) but not with the
	 * hysteresis on top (105*1.2 = 126): stay */
	c = choose(&p, 116, 0, 0, &s);
	ck_assert_uint_eq(c.point.groups, 3);
	/* plenty of room: move up */
	c = choose(&p, 127, 0, 0, &s);
	ck_assert_uint_eq(c.point.groups, 4);
	/* g=3 no longer fits: move down at once, no hysteresis */
	s.last.groups = 3;
	c = choose(&p, 80, 0, 0, &s);
	ck_assert_uint_eq(c.point.groups, 2);
}
END_TEST

START_TEST(one_frequency_per_cluster)
{
	struct pol_votes votes = { 0 };
	struct pol_freq_floor floor;
	struct pol_params p = params_named("t");
	struct pol_point pts[512];
	uint64_t ms = 1000000;

	pol_votes_cast(&votes, 1, 1, 2000000, 0, 100 * ms); /* session 1 needs big at 2 GHz */
	pol_votes_cast(&votes, 2, 1, 1000000, 0, 100 * ms); /* session 2 would like 1 GHz */
	ck_assert_uint_eq(pol_votes_level(&votes, 1, 10 * ms), 2000000);
	pol_votes_floor(&votes, 2, 10 * ms, &floor);
	ck_assert_uint_eq(floor.floor_khz[1], 2000000);
	ck_assert_uint_eq(floor.floor_khz[0], 0);
	/* session 2's table has no big point below 2 GHz, and its energy is
	 * charged at the frequency it will really run at */
	unsigned n = pol_table_build(&pr, &p, NULL, &floor, pts, 512);
	for (unsigned i = 0; i < n; i++)
		if (pts[i].place == 1)
			ck_assert_uint_eq(pts[i].khz, 2000000);
	/* session 1 goes away: its vote expires, or is dropped */
	ck_assert_uint_eq(pol_votes_level(&votes, 1, 200 * ms), 0);
	pol_votes_drop(&votes, 1);
	ck_assert_uint_eq(pol_votes_level(&votes, 1, 10 * ms), 1000000);
	/* a session re-voting replaces its own vote */
	pol_votes_cast(&votes, 2, 1, 2000000, 10 * ms, 100 * ms);
	pol_votes_cast(&votes, 2, 1, 1000000, 20 * ms, 100 * ms);
	ck_assert_uint_eq(votes.n, 1);
	ck_assert_uint_eq(pol_votes_level(&votes, 1, 30 * ms), 1000000);
}
END_TEST

START_TEST(pareto_front)
{
	struct pol_params p = params_named("t");
	struct pol_point pts[512], front[512];
	unsigned n = table(&p, NULL, pts), k = pol_pareto(pts, n, front);

	ck_assert(k > 0 && k < n);
	for (unsigned i = 0; i < k; i++) {
		if (i > 0)
			ck_assert(front[i].latency_us >= front[i - 1].latency_us);
		/* nothing in the table dominates a front point */
		for (unsigned j = 0; j < n; j++)
			ck_assert(!(pts[j].accuracy >= front[i].accuracy && pts[j].latency_us <= front[i].latency_us &&
			            pts[j].energy_uj <= front[i].energy_uj &&
			            (pts[j].accuracy > front[i].accuracy || pts[j].latency_us < front[i].latency_us ||
			             pts[j].energy_uj < front[i].energy_uj)));
	}
	/* the fastest and the most accurate-cheapest are on it */
	double fastest = INFINITY;
	for (unsigned j = 0; j < n; j++)
		fastest = fmin(fastest, pts[j].latency_us);
	ck_assert_double_eq_tol(front[0].latency_us, fastest, 1e-9);
}
END_TEST

/* ---- the feedback loop on synthetic traces ---------------------------------------- */

static uint64_t rng = 88172645463325252ull;
static double
noise(double amplitude)
{
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	return 1.0 + amplitude * ((double)(rng % 20001) / 10000.0 - 1.0);
}

struct trace_result {
	unsigned changes[3];      /* choice changes in each phase */
	unsigned misses[3];       /* deadlines missed in each phase */
	unsigned settle_down;     /* requests after the load arrives until the first met deadline run of 5 */
	unsigned settle_up;       /* requests after it leaves until g is back to 4 */
	unsigned groups_end[3];
};

/* 600 requests on big, 1 thread, 2 GHz: load x1, then x`load` for 200
 * requests, then x1 again; the true latency is prediction x load x noise. */
static struct trace_result
run_trace(const struct pol_params *p, double load, double amplitude, double deadline)
{
	struct pol_feedback fb;
	struct pol_session s = { 0 };
	struct trace_result r = { { 0 }, { 0 }, 0, 0, { 0 } };
	unsigned run = 0, prev_g = 0;
	bool settled = false, back = false;

	pol_feedback_init(&fb);
	for (unsigned i = 0; i < 600; i++) {
		unsigned phase = i / 200;
		double l = phase == 1 ? load : 1.0;
		struct pol_point pts[64];
		struct pol_budget b = { deadline, 0, 0 };
		struct pol_choice c;
		unsigned n = pol_table_build(&pr, p, &fb, NULL, pts, 64);
		ck_assert_int_eq(pol_select(pts, n, p, &b, &s, &c), 0);
		double pred = pol_predict_us(&pr, c.point.groups, c.point.place, c.point.threads, c.point.freq);
		double measured = pred * l * noise(amplitude);
		pol_feedback_update(&fb, p, &c.point, pred, measured, -1, 0);
		pol_session_record(&s, p, &c.point, measured, deadline);
		if (prev_g && c.point.groups != prev_g && i % 200 != 0)
			r.changes[phase]++;
		prev_g = c.point.groups;
		r.misses[phase] += measured > deadline;
		if (phase == 1 && !settled) {
			run = measured <= deadline ? run + 1 : 0;
			if (run == 5) {
				settled = true;
				r.settle_down = i - 200 - 4;
			}
		}
		if (phase == 2 && !back && c.point.groups == 4) {
			back = true;
			r.settle_up = i - 400;
		}
		r.groups_end[phase] = c.point.groups;
	}
	return r;
}

static struct pol_params
trace_params(void)
{
	struct pol_params p = params_named("t");

	strcpy(p.placements, "cluster1");
	p.max_threads = 1;
	p.min_khz = 2000000;
	return p;
}

START_TEST(feedback_reacts_to_load_steps_within_a_few_requests)
{
	struct pol_params p = trace_params();
	/* g latencies 30/55/80/105 us; deadline 130: g=4 fits at load 1, only
	 * g=2 (110) at load 2 */
	struct trace_result r = run_trace(&p, 2.0, 0.05, 130);

	ck_assert_uint_eq(r.groups_end[0], 4);
	ck_assert_uint_eq(r.groups_end[1], 2);
	ck_assert_uint_eq(r.groups_end[2], 4);
	ck_assert_msg(r.misses[1] <= 3, "%u misses after the load step", r.misses[1]);
	ck_assert_msg(r.settle_down <= 4, "took %u requests to settle under load", r.settle_down);
	ck_assert_msg(r.settle_up <= 12, "took %u requests to come back up", r.settle_up);
	ck_assert_uint_eq(r.misses[0], 0);
	ck_assert_uint_eq(r.misses[2], 0);
}
END_TEST

START_TEST(feedback_is_steady_under_noise)
{
	struct pol_params p = trace_params();
	/* deadline 126: g=4 needs 105 x 1.1 = 115.5, and noise of +-10 % moves the
	 * factor around that; hysteresis must keep the choice from flapping */
	struct trace_result r = run_trace(&p, 1.0, 0.10, 126);

	for (int ph = 0; ph < 3; ph++)
		ck_assert_msg(r.changes[ph] <= 2, "phase %d: the choice changed %u times", ph, r.changes[ph]);
	/* without hysteresis it does flap: the test above can fail */
	p.hysteresis = 0;
	p.window = 1;
	r = run_trace(&p, 1.0, 0.10, 126);
	ck_assert_msg(r.changes[0] + r.changes[1] + r.changes[2] > 6, "expected flapping without hysteresis, got %u",
	              r.changes[0] + r.changes[1] + r.changes[2]);
}
END_TEST

/* Two threads on big are systematically 1.4x slower than calibrated (say a
 * second thread competes with the daemon's loop), one thread is exact. The
 * two-thread factor learns it without charging all of it to one thread, and
 * deadlines are met once it has. */
START_TEST(feedback_learns_a_thread_count_bias)
{
	struct pol_params p = trace_params();
	struct pol_feedback fb;
	struct pol_session s = { 0 };
	unsigned misses_late = 0, two_late = 0;

	p.max_threads = 2;
	pol_feedback_init(&fb);
	for (unsigned i = 0; i < 300; i++) {
		struct pol_point pts[64];
		struct pol_budget b = { 100, 0, 0 };
		struct pol_choice c;
		unsigned n = pol_table_build(&pr, &p, &fb, NULL, pts, 64);
		double pred, measured;
		ck_assert_int_eq(pol_select(pts, n, &p, &b, &s, &c), 0);
		pred = pol_predict_us(&pr, c.point.groups, c.point.place, c.point.threads, c.point.freq);
		measured = pred * (c.point.threads == 2 ? 1.4 : 1.0) * noise(0.02);
		pol_feedback_update(&fb, &p, &c.point, pred, measured, -1, 0);
		pol_session_record(&s, &p, &c.point, measured, 100);
		if (i >= 100) {
			misses_late += measured > 100;
			two_late += c.point.threads == 2;
		}
	}
	ck_assert_msg(fabs(fb.factor[1][2] - 1.4) < 0.1, "two-thread factor %.2f, not 1.4", fb.factor[1][2]);
	ck_assert_msg(fb.factor[1][1] < fb.factor[1][2] - 0.15, "one-thread factor %.2f took all of the two-thread error",
	              fb.factor[1][1]);
	ck_assert_msg(misses_late <= 2, "%u misses once learnt (%u on two threads)", misses_late, two_late);
}
END_TEST

/* A control loop of a four-group model (1 MMAC a group) on one CPU
 * placement of max_threads threads, one-thread fit 160 us per group. */
static void
small_control(struct pol_control *c, unsigned max_threads)
{
	struct pol_model m = { .name = "small", .groups = 4 };
	struct pol_place place = { .kind = POL_PLACE_CPU, .name = "cluster0", .index = 0, .max_threads = max_threads,
		                   .capacity = 1024, .nfreqs = 1, .freqs_khz = { 1000000 }, .busy_w = { 1.0 } };
	char *cause = NULL;

	for (unsigned g = 1; g <= 4; g++) {
		m.macs[g] = g * 1e6;
		m.accuracy[g] = 0.8 + 0.02 * g;
	}
	ck_assert_int_eq(pol_control_init(c, &m, &place, 1, &cause), 0);
	c->predictor.fit[0][1] = (struct pol_fit){ true, 0, 160, 1000000 };
}

/* The tail learnt on one size of inference, applied to another: a spike
 * adds time, it does not scale with what runs. One CPU, g latencies
 * 160/320/480/640 us. 64 g=1 runs, three of them 150 us late (ratio 1.94):
 * with a 900 us deadline and the 10 % margin g=4 still fits (640 + 150),
 * where a ratio applied to it (1240 us) had left g=2. Spikes of 300 us on
 * g=4 itself keep g=4 out (940 us), and count at most their ratio on g=3
 * (480 x 1.47 = 705 us, which fits): nothing is forgotten. */
static struct pol_choice
after_spikes(unsigned spiked_groups, double spike_us, double deadline_us)
{
	struct pol_control c;
	struct pol_params p = params_named("t");
	struct pol_budget b = { deadline_us, 0, 0 };
	struct pol_choice choice;

	small_control(&c, 1);
	for (unsigned i = 0; i < 64; i++) {
		struct pol_point pt = { .groups = spiked_groups, .place = 0, .threads = 1, .freq = 0, .khz = 1000000 };
		double pred = pol_predict_us(&c.predictor, pt.groups, 0, 1, 0);
		/* the spikes early: the mean's feedback has forgotten them by the end */
		struct pol_outcome o = { .latency_us = pred + (i % 16 == 0 && i < 48 ? spike_us : 0), .sensor_uj = -1 };
		pol_control_learn(&c, &p, &pt, &o, NULL);
	}
	choice = pol_control_choose(&c, &p, &b, NULL, NULL);
	pol_control_free(&c);
	return choice;
}

START_TEST(tail_spikes_add_time_they_do_not_scale)
{
	struct pol_choice c = after_spikes(1, 150, 900);

	ck_assert_msg(c.feasible && c.point.groups == 4, "g=%u (feasible %d): short runs' spikes scaled the long one's tail",
	              c.point.groups, c.feasible);
	ck_assert_double_le(c.point.tail_us, 640 + 150 + 1);
	ck_assert_double_ge(c.point.tail_us, 640 + 150 - 1);
	c = after_spikes(4, 300, 900);
	ck_assert_msg(c.feasible && c.point.groups == 3, "g=%u: g=4's own spikes were not counted", c.point.groups);
}
END_TEST

/* The first cold start of a placement is expected at the warm factor (no
 * cold one yet) and costs what a cold start costs: it teaches the cold
 * factor and is no tail sample, so the warm point it ran at stays feasible;
 * a cold start that strays from the cold factor learnt is one. */
START_TEST(first_cold_start_is_no_tail_sample)
{
	struct pol_control c;
	struct pol_params p = params_named("t");
	struct pol_budget b = { 800, 0, 0 }; /* g=4 with the 10 % margin: 704 us */
	struct pol_point pt = { .groups = 4, .place = 0, .threads = 1, .freq = 0, .khz = 1000000 };
	struct pol_choice choice;
	double pred;

	small_control(&c, 1);
	pred = pol_predict_us(&c.predictor, 4, 0, 1, 0); /* 640 us */
	for (unsigned i = 0; i < 16; i++) {
		struct pol_outcome warm = { .latency_us = pred, .sensor_uj = -1 };
		pol_control_learn(&c, &p, &pt, &warm, NULL);
	}
	struct pol_outcome cold = { .latency_us = 1.9 * pred, .sensor_uj = -1, .cold = true };
	pol_control_learn(&c, &p, &pt, &cold, NULL);
	ck_assert_double_ge(pol_control_predict_us(&c, &pt, true), 1.8 * pred);
	choice = pol_control_choose(&c, &p, &b, NULL, NULL);
	ck_assert_msg(choice.feasible && choice.point.groups == 4, "g=%u, tail %.0f us: the first cold start was a tail sample",
	              choice.point.groups, choice.point.tail_us);
	/* twice what cold starts cost: the tail now says so (2 x 640 us more) */
	cold.latency_us = 2 * pol_control_predict_us(&c, &pt, true);
	pol_control_learn(&c, &p, &pt, &cold, NULL);
	choice = pol_control_choose(&c, &p, &b, NULL, NULL);
	ck_assert_msg(choice.point.groups < 4, "g=%u: a cold start twice the cold factor was no tail sample",
	              choice.point.groups);
	pol_control_free(&c);
}
END_TEST

/* A thread count with too few requests of its own to have a tail (or a
 * cold factor) borrows those of the placement's best-known thread count:
 * the calibration's back-to-back figure for it is no better a guess of its
 * slow requests than none. */
START_TEST(unknown_thread_count_borrows_tail_and_cold_factor)
{
	struct pol_control c;
	struct pol_params p = params_named("t");
	struct pol_budget b = { 500, 0, 0 };
	struct pol_point one = { .groups = 4, .place = 0, .threads = 1, .freq = 0, .khz = 1000000 };
	struct pol_point two = { .groups = 4, .place = 0, .threads = 2, .freq = 0, .khz = 1000000 };
	struct pol_choice choice;

	small_control(&c, 2); /* one thread, g=4: 640 us */
	c.predictor.fit[0][2] = (struct pol_fit){ true, 0, 90, 1000000 };  /* g=4: 360 us */
	/* one thread: 16 requests, one of them 1.5 x its prediction */
	for (unsigned i = 0; i < 16; i++) {
		struct pol_outcome o = { .latency_us = (i == 3 ? 1.5 : 1.0) * 640, .sensor_uj = -1 };
		pol_control_learn(&c, &p, &one, &o, NULL);
	}
	/* two threads, never run: g=4 at 360 us fits 500 alone, not with one
	 * thread's tail (+ 0.5 x 360); g=3 does (270 + 135) */
	p.max_groups = 4;
	choice = pol_control_choose(&c, &p, &b, NULL, NULL);
	ck_assert_msg(choice.feasible && choice.point.threads == 2 && choice.point.groups == 3,
	              "g=%u x%u, tail %.0f us: two threads had no tail until their own 8 requests", choice.point.groups,
	              choice.point.threads, choice.point.tail_us);
	ck_assert_double_ge(choice.point.tail_us, 270 + 135 - 1);
	/* a cold start at one thread cost 2 x: two threads' first is guessed so */
	struct pol_outcome cold = { .latency_us = 2 * 640, .sensor_uj = -1, .cold = true };
	pol_control_learn(&c, &p, &one, &cold, NULL);
	ck_assert_double_ge(pol_control_predict_us(&c, &two, true), 1.9 * pol_control_predict_us(&c, &two, false));
	pol_control_free(&c);
}
END_TEST

START_TEST(step_controller_baseline)
{
	struct pol_params p = trace_params();
	struct trace_result r;

	p.controller = POL_CONTROLLER_STEP;
	r = run_trace(&p, 2.0, 0.02, 130);
	/* it gets there, but only a window at a time, missing deadlines meanwhile */
	ck_assert_uint_le(r.groups_end[1], 2);
	ck_assert_uint_ge(r.misses[1], 4);
}
END_TEST

/* ---- the calibration cache ------------------------------------------------------ */

static char model_a[600], model_b[600];

/* Two model files that differ in one weight: the tiny architecture, and a
 * copy whose last float of tensor data is changed. */
static void
write_models(void)
{
	FILE *f;
	unsigned char *bytes;
	long len;
	float w;

	snprintf(model_a, sizeof(model_a), "%s/model-a.safetensors", dir);
	snprintf(model_b, sizeof(model_b), "%s/model-b.safetensors", dir);
	ck_assert_int_eq(mg_write(mg_arch("tiny"), model_a, 0), 0);
	ck_assert_ptr_nonnull(f = fopen(model_a, "rb"));
	fseek(f, 0, SEEK_END);
	len = ftell(f);
	rewind(f);
	ck_assert(len > 8);
	ck_assert_ptr_nonnull(bytes = malloc((size_t)len));
	ck_assert_uint_eq(fread(bytes, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	memcpy(&w, bytes + len - 4, 4);
	w = w + 0.25f;
	memcpy(bytes + len - 4, &w, 4);
	ck_assert_ptr_nonnull(f = fopen(model_b, "wb"));
	ck_assert_uint_eq(fwrite(bytes, 1, (size_t)len, f), (size_t)len);
	fclose(f);
	free(bytes);
}

/* A predictor for a model file on one 2-CPU placement, with measured fits. */
static void
file_predictor(struct pol_predictor *p, const char *path)
{
	struct pol_place place = { .kind = POL_PLACE_CPU, .name = "cluster0", .max_threads = 2, .capacity = 1024,
		                   .nfreqs = 1, .busy_w = { 1.0 } };
	struct pol_model facts;
	struct dnn_model *m;
	char *cause = NULL;

	ck_assert_msg((m = dnn_model_load(path, &cause)) != NULL, "%s", cause);
	pol_model_from_dnn(&facts, m);
	dnn_model_free(m);
	pol_predictor_init(p, &facts, &place, 1);
	p->fit[0][1] = (struct pol_fit){ true, 12, 34, 0 };
	p->fit[0][2] = (struct pol_fit){ true, 7, 20, 0 };
}

static const char *
cache_folder(const char *name)
{
	static char path[600];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

/* Save `saved` to a fresh folder, then load it into a predictor for `path`
 * with this process's identity: -1 and the reason, or 0. */
static int
load_into_fresh(const struct pol_predictor *saved, const char *folder, const char *path, char **why)
{
	static struct pol_predictor fresh;
	char *cause = NULL;
	int rc;

	ck_assert_msg(pol_predictor_save(saved, cache_folder(folder), &cause) == 0, "%s", cause);
	file_predictor(&fresh, path);
	fresh.fit[0][1] = (struct pol_fit){ false, 1, 1, 0 };
	rc = pol_predictor_load_why(&fresh, cache_folder(folder), why);
	if (rc == 0) {
		ck_assert_ptr_null(*why);
		ck_assert(fresh.fit[0][1].measured);
		ck_assert_double_eq(fresh.fit[0][1].fixed_us, 12);
		ck_assert_double_eq(fresh.fit[0][2].us_per_mmac, 20);
	} else {
		/* a refused file leaves the fits as they were */
		ck_assert(!fresh.fit[0][1].measured);
		ck_assert_ptr_nonnull(*why);
		ck_assert_msg(strstr(*why, cache_folder(folder)) != NULL, "'%s' does not name the file", *why);
	}
	return rc;
}

static void
expect_reason(const char *why, const char *needle)
{
	ck_assert_msg(strstr(why, needle) != NULL, "'%s' does not say '%s'", why, needle);
}

START_TEST(saved_calibration_loads_back)
{
	static struct pol_predictor a;
	char path[700], name[200], *why = NULL;
	json_object *root, *v;

	file_predictor(&a, model_a);
	ck_assert(a.model.file_hash != 0);
	ck_assert_int_eq(load_into_fresh(&a, "same", model_a, &why), 0);
	/* no file: refused without a reason */
	ck_assert_int_eq(pol_predictor_load_why(&a, cache_folder("none"), &why), -1);
	ck_assert_ptr_null(why);
	/* the human parts of the key are readable in the file */
	snprintf(path, sizeof(path), "%s/calibration-%s.json", cache_folder("same"), a.model.name);
	ck_assert_ptr_nonnull(root = json_object_from_file(path));
	ck_assert(json_object_object_get_ex(root, "gearbox_version", &v));
	ck_assert_str_eq(json_object_get_string(v), PACKAGE_VERSION);
	ck_assert(json_object_object_get_ex(root, "build", &v));
	ck_assert_str_eq(json_object_get_string(v), GEARBOX_BUILD_FLAVOUR);
	ck_assert(json_object_object_get_ex(root, "cpu", &v));
	ck_assert_str_eq(json_object_get_string(v), a.identity.cpu);
	ck_assert(json_object_object_get_ex(root, "kernels", &v));
	ck_assert(strncmp(json_object_get_string(v), "fast/", 5) == 0);
	json_object_put(root);
	/* an unreadable file is refused with a reason */
	snprintf(name, sizeof(name), "calibration-%s.json", a.model.name);
	scratch_file(cache_folder("same"), name, "{ not json");
	ck_assert_int_eq(pol_predictor_load_why(&a, cache_folder("same"), &why), -1);
	ck_assert_ptr_nonnull(why);
	expect_reason(why, "cannot be read");
	free(why);
}
END_TEST

START_TEST(calibration_from_another_build_refused)
{
	static struct pol_predictor a;
	struct pol_identity id;
	char *why = NULL;

	file_predictor(&a, model_a);
	id = a.identity;
	snprintf(id.version, sizeof(id.version), "0.0.1-test");
	snprintf(id.flavour, sizeof(id.flavour), "asan+ubsan+test");
	pol_predictor_set_identity(&a, &id);
	ck_assert_int_eq(load_into_fresh(&a, "version", model_a, &why), -1);
	expect_reason(why, "was made by gearbox 0.0.1-test asan+ubsan+test; this is gearbox " PACKAGE_VERSION
	                   " " GEARBOX_BUILD_FLAVOUR);
	free(why);
	/* the same version, another build */
	snprintf(id.version, sizeof(id.version), "%s", PACKAGE_VERSION);
	pol_predictor_set_identity(&a, &id);
	ck_assert_int_eq(load_into_fresh(&a, "flavour", model_a, &why), -1);
	expect_reason(why, "was made by gearbox " PACKAGE_VERSION " asan+ubsan+test");
	free(why);
	/* the kernels ran another instruction set */
	pol_identity_get(&id);
	snprintf(id.kernels, sizeof(id.kernels), "fast/isa-test");
	pol_predictor_set_identity(&a, &id);
	ck_assert_int_eq(load_into_fresh(&a, "kernels", model_a, &why), -1);
	expect_reason(why, "measured with the fast/isa-test kernels");
	free(why);
	/* and back to this process's identity: used again */
	pol_identity_get(&id);
	pol_predictor_set_identity(&a, &id);
	ck_assert_int_eq(load_into_fresh(&a, "again", model_a, &why), 0);
}
END_TEST

START_TEST(calibration_from_another_cpu_refused)
{
	static struct pol_predictor a;
	struct pol_identity id, here;
	char *why = NULL, now[200];

	file_predictor(&a, model_a);
	pol_identity_get(&here);
	ck_assert_str_ne(here.cpu, "");
	ck_assert_str_eq(a.identity.cpu, here.cpu);
	id = a.identity;
	snprintf(id.cpu, sizeof(id.cpu), "Imaginary CPU 9000 @ 1.00GHz");
	pol_predictor_set_identity(&a, &id);
	ck_assert_int_eq(load_into_fresh(&a, "cpu", model_a, &why), -1);
	expect_reason(why, "measured on CPU 'Imaginary CPU 9000 @ 1.00GHz'");
	snprintf(now, sizeof(now), "this is '%s'", here.cpu);
	expect_reason(why, now);
	free(why);
}
END_TEST

START_TEST(calibration_for_another_model_file_refused)
{
	static struct pol_predictor a, b;
	char *why = NULL;

	file_predictor(&a, model_a);
	file_predictor(&b, model_b);
	/* the same name, shape and work: only the bytes differ */
	ck_assert_str_eq(a.model.name, b.model.name);
	ck_assert(memcmp(a.model.macs, b.model.macs, sizeof(a.model.macs)) == 0);
	ck_assert(a.model.file_hash != b.model.file_hash);
	ck_assert_str_ne(a.key, b.key);
	ck_assert_int_eq(load_into_fresh(&a, "file", model_b, &why), -1);
	expect_reason(why, "made from another model file");
	free(why);
	ck_assert_int_eq(load_into_fresh(&b, "file", model_b, &why), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("policies");
	TCase *files = tcase_create("files"), *sel = tcase_create("select"), *fb = tcase_create("feedback");
	TCase *cache = tcase_create("cache");

	tcase_add_test(files, shipped_policies_load);
	tcase_add_test(files, bad_policy_files_refused);
	tcase_add_test(files, overrides_and_model_sections);
	tcase_add_unchecked_fixture(sel, setup_platform, NULL);
	tcase_add_test(sel, table_and_predictions);
	tcase_add_test(sel, selects_best_accuracy_within_budget);
	tcase_add_test(sel, infeasible_budgets_run_the_closest_point);
	tcase_add_test(sel, infeasible_reason_says_the_slow_end);
	tcase_add_test(sel, ties_prefer_fewer_threads);
	tcase_add_test(sel, hysteresis_needs_slack_to_move_up);
	tcase_add_test(sel, one_frequency_per_cluster);
	tcase_add_test(sel, pareto_front);
	tcase_add_unchecked_fixture(fb, setup_platform, NULL);
	tcase_add_test(fb, feedback_reacts_to_load_steps_within_a_few_requests);
	tcase_add_test(fb, feedback_is_steady_under_noise);
	tcase_add_test(fb, feedback_learns_a_thread_count_bias);
	tcase_add_test(fb, step_controller_baseline);
	tcase_add_test(fb, tail_spikes_add_time_they_do_not_scale);
	tcase_add_test(fb, first_cold_start_is_no_tail_sample);
	tcase_add_test(fb, unknown_thread_count_borrows_tail_and_cold_factor);
	suite_add_tcase(s, files);
	suite_add_tcase(s, sel);
	suite_add_tcase(s, fb);
	tcase_add_unchecked_fixture(cache, write_models, NULL);
	tcase_add_test(cache, saved_calibration_loads_back);
	tcase_add_test(cache, calibration_from_another_build_refused);
	tcase_add_test(cache, calibration_from_another_cpu_refused);
	tcase_add_test(cache, calibration_for_another_model_file_refused);
	suite_add_tcase(s, cache);
	return run_suite_in_tmpdir(s, dir);
}
