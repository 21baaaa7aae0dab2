/* SPDX-License-Identifier: MIT */
/* Sensor parsing and energy arithmetic: units of every source kind, RAPL
 * wrap-around, missing files, garbage values, disabled INA231 sensors, and the
 * power-model interpolation. Works on plain files: no testbed needed. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "governor/governor.h"
#include "tests/common/scratch.h"

static char dir[] = "/tmp/gearbox-test-energy-XXXXXX";

static struct gov_energy_source
source(enum gov_source_kind kind, const char *path, const char *path2)
{
	struct gov_energy_source s;

	memset(&s, 0, sizeof(s));
	s.kind = kind;
	snprintf(s.path, sizeof(s.path), "%s", path);
	if (path2 != NULL)
		snprintf(s.path2, sizeof(s.path2), "%s", path2);
	return s;
}

START_TEST(test_units)
{
	struct gov_reading r;
	struct gov_energy_source s;

	s = source(GOV_SOURCE_RAPL, scratch_file(dir, "energy_uj", "123456789\n"), NULL);
	ck_assert_int_eq(gov_energy_read(&s, &r, NULL), 0);
	ck_assert(r.is_energy);
	ck_assert_uint_eq(r.energy_uj, 123456789);

	s = source(GOV_SOURCE_INA231, scratch_file(dir, "sensor_W", "1.842000\n"), scratch_file(dir, "enable", "1\n"));
	ck_assert_int_eq(gov_energy_read(&s, &r, NULL), 0);
	ck_assert(!r.is_energy);
	ck_assert_uint_eq(r.power_uw, 1842000);

	s = source(GOV_SOURCE_INA3221, scratch_file(dir, "in_power1_input", "412\n"), NULL);
	ck_assert_int_eq(gov_energy_read(&s, &r, NULL), 0);
	ck_assert_uint_eq(r.power_uw, 412000);

	s = source(GOV_SOURCE_HWMON_VI, scratch_file(dir, "in1_input", "820\n"), scratch_file(dir, "curr1_input", "310\n"));
	ck_assert_int_eq(gov_energy_read(&s, &r, NULL), 0);
	ck_assert_uint_eq(r.power_uw, 254200);

	s = source(GOV_SOURCE_HWMON_POWER, scratch_file(dir, "power1_input", "5000000\n"), NULL);
	ck_assert_int_eq(gov_energy_read(&s, &r, NULL), 0);
	ck_assert_uint_eq(r.power_uw, 5000000);
}
END_TEST

START_TEST(test_rapl_wraps)
{
	struct gov_energy_source s = source(GOV_SOURCE_RAPL, "/x", NULL);

	s.max_range_uj = 262143328850ull;
	ck_assert_uint_eq(gov_energy_delta_uj(&s, 1000, 5000), 4000);
	/* 100 uJ before the wrap point, 50 after: 151 uJ (the counter runs 0..max). */
	ck_assert_uint_eq(gov_energy_delta_uj(&s, 262143328850ull - 100, 50), 151);
	s.max_range_uj = 0; /* unknown range: a lower bound */
	ck_assert_uint_eq(gov_energy_delta_uj(&s, 900, 100), 100);
}
END_TEST

START_TEST(test_missing_and_garbage)
{
	struct gov_reading r;
	struct gov_energy_source s;
	char *cause = NULL, missing[300];

	snprintf(missing, sizeof(missing), "%s/vanished/energy_uj", dir);
	s = source(GOV_SOURCE_RAPL, missing, NULL);
	ck_assert_int_eq(gov_energy_read(&s, &r, &cause), -1);
	ck_assert_msg(strstr(cause, missing) && strstr(cause, "No such file"), "%s", cause);
	free(cause);

	s = source(GOV_SOURCE_RAPL, scratch_file(dir, "garbage", "12abc\n"), NULL);
	cause = NULL;
	ck_assert_int_eq(gov_energy_read(&s, &r, &cause), -1);
	ck_assert_msg(strstr(cause, "not a non-negative number: '12abc'"), "%s", cause);
	free(cause);

	s = source(GOV_SOURCE_INA3221, scratch_file(dir, "negative", "-5\n"), NULL);
	cause = NULL;
	ck_assert_int_eq(gov_energy_read(&s, &r, &cause), -1);
	free(cause);

	s = source(GOV_SOURCE_HWMON_POWER, scratch_file(dir, "empty", "\n"), NULL);
	cause = NULL;
	ck_assert_int_eq(gov_energy_read(&s, &r, &cause), -1);
	ck_assert_ptr_nonnull(cause);
	free(cause);

	s = source(GOV_SOURCE_INA231, scratch_file(dir, "sensor_W2", "0.5\n"), scratch_file(dir, "enable0", "0\n"));
	cause = NULL;
	ck_assert_int_eq(gov_energy_read(&s, &r, &cause), -1);
	ck_assert_msg(strstr(cause, "sensor disabled"), "%s", cause);
	free(cause);
}
END_TEST

START_TEST(test_power_model)
{
	struct gov_platform p;
	struct gov_power_model models[1];
	unsigned long khz[3] = { 200000, 600000, 1000000 };
	double watts[3] = { 0.1, 0.3, 1.0 };
	char *cause = NULL;

	memset(&p, 0, sizeof(p));
	memset(models, 0, sizeof(models));
	p.nclusters = 1;
	p.models = models;
	ck_assert_int_eq(gov_platform_set_power_table(&p, 0, 3, khz, watts, NULL), 0);
	ck_assert_int_eq(models[0].kind, GOV_MODEL_TABLE);
	ck_assert_double_eq_tol(gov_model_power(&p, 0, 400000, 1), 0.2, 1e-9);
	ck_assert_double_eq_tol(gov_model_power(&p, 0, 800000, 2), 1.3, 1e-9);
	ck_assert_double_eq_tol(gov_model_power(&p, 0, 100000, 1), 0.1, 1e-9); /* clamped */
	ck_assert_double_eq_tol(gov_model_power(&p, 0, 2000000, 4), 4.0, 1e-9);
	khz[1] = 100000; /* not rising */
	ck_assert_int_eq(gov_platform_set_power_table(&p, 0, 3, khz, watts, &cause), -1);
	ck_assert_ptr_nonnull(strstr(cause, "frequencies must rise"));
	free(cause);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("governor-energy");
	TCase *tc = tcase_create("energy");

	tcase_add_test(tc, test_units);
	tcase_add_test(tc, test_rapl_wraps);
	tcase_add_test(tc, test_missing_and_garbage);
	tcase_add_test(tc, test_power_model);
	suite_add_tcase(s, tc);
	return run_suite_in_tmpdir(s, dir);
}
