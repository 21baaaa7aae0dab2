/* SPDX-License-Identifier: MIT */
/* gearboxd's configuration files and logging decisions, without a daemon:
 *   - the files and drop-ins read, and their order (daemon/settings.c,
 *     config_files): the administrator's main file replaces the vendor's,
 *     drop-ins of both folders sorted by name, a same-named one in the
 *     administrator's folder masking the vendor's, later keys winning;
 *   - where the log goes (daemon/log.c, log_target_decide): the journal only
 *     when JOURNAL_STREAM names stderr, or under systemd with stderr a socket. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "daemon/log.h"
#include "daemon/settings.h"

static char dir[] = "/tmp/gearbox-test-config-XXXXXX";

static void
put(const char *rel, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, rel);
	f = fopen(path, "w");
	ck_assert_msg(f != NULL, "cannot write %s", path);
	fputs(text, f);
	fclose(f);
}

static void
mkdirs(void)
{
	static const char *sub[] = { "etc", "etc/gearboxd.conf.d", "vendor", "vendor/gearboxd.conf.d" };
	char path[512];

	for (unsigned i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, sub[i]);
		mkdir(path, 0755);
	}
}

/* The file names relative to dir, space-separated. */
static void
listed(char *out, size_t size)
{
	char etc[512], vendor[512], **files;
	unsigned n;
	size_t len = 0;

	snprintf(etc, sizeof(etc), "%s/etc", dir);
	snprintf(vendor, sizeof(vendor), "%s/vendor", dir);
	n = config_files(etc, vendor, &files);
	out[0] = '\0';
	for (unsigned i = 0; i < n; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%s", i ? " " : "", files[i] + strlen(dir) + 1);
	config_files_free(files, n);
}

static void
load(struct config *c)
{
	char etc[512], vendor[512], **files, *cause = NULL;
	unsigned n;

	snprintf(etc, sizeof(etc), "%s/etc", dir);
	snprintf(vendor, sizeof(vendor), "%s/vendor", dir);
	n = config_files(etc, vendor, &files);
	config_defaults(c);
	ck_assert_msg(config_load_files(c, files, n, &cause) == 0, "load: %s", cause ? cause : "?");
	config_files_free(files, n);
}

START_TEST(test_dropin_precedence)
{
	char got[2048];
	struct config c;

	mkdirs();
	/* nothing at all: no file, defaults */
	listed(got, sizeof(got));
	ck_assert_str_eq(got, "");
	/* the vendor's main file alone */
	put("vendor/gearboxd.conf", "[daemon]\nmargin = 0.1\nthreads = 4\npolicy = powersave\n");
	listed(got, sizeof(got));
	ck_assert_str_eq(got, "vendor/gearboxd.conf");
	load(&c);
	ck_assert(c.margin == 0.1 && c.threads == 4 && strcmp(c.policy, "powersave") == 0);
	config_free(&c);

	/* drop-ins of both folders, sorted by name across them; not-.conf
	 * names and hidden files are ignored */
	put("vendor/gearboxd.conf.d/10-board.conf", "[daemon]\nthreads = 1\npolicy = realtime\n");
	put("vendor/gearboxd.conf.d/30-vendor.conf", "[daemon]\nthreads = 3\n");
	put("etc/gearboxd.conf.d/20-local.conf", "[daemon]\nthreads = 2\nmargin = 0.2\n");
	put("etc/gearboxd.conf.d/README", "not a drop-in\n");
	put("etc/gearboxd.conf.d/.hidden.conf", "[daemon]\nbogus = 1\n");
	put("etc/gearboxd.conf.d/40-x.conf.disabled", "[daemon]\nbogus = 1\n");
	listed(got, sizeof(got));
	ck_assert_str_eq(got, "vendor/gearboxd.conf vendor/gearboxd.conf.d/10-board.conf etc/gearboxd.conf.d/20-local.conf "
	                      "vendor/gearboxd.conf.d/30-vendor.conf");
	load(&c);
	/* later wins: 30-vendor's threads over 20-local's over 10-board's */
	ck_assert_uint_eq(c.threads, 3);
	ck_assert(c.margin == 0.2);
	ck_assert_str_eq(c.policy, "realtime");
	config_free(&c);

	/* an administrator's drop-in of the same name masks the vendor's whole */
	put("etc/gearboxd.conf.d/10-board.conf", "[daemon]\nopencl = no\n");
	/* and the administrator's main file replaces the vendor's */
	put("etc/gearboxd.conf", "[daemon]\nmargin = 0.5\n");
	listed(got, sizeof(got));
	ck_assert_str_eq(got, "etc/gearboxd.conf etc/gearboxd.conf.d/10-board.conf etc/gearboxd.conf.d/20-local.conf "
	                      "vendor/gearboxd.conf.d/30-vendor.conf");
	load(&c);
	ck_assert(c.policy == NULL);   /* the vendor's main file and 10-board are not read */
	ck_assert(!c.opencl);          /* etc's 10-board */
	ck_assert(c.margin == 0.2);    /* 20-local after the main file */
	ck_assert_uint_eq(c.threads, 3);
	config_free(&c);

	/* an empty file masks too (as a link to /dev/null would) */
	put("etc/gearboxd.conf.d/30-vendor.conf", "");
	load(&c);
	ck_assert_uint_eq(c.threads, 2);
	config_free(&c);

	/* models: a drop-in adds; an empty "model =" forgets the earlier ones */
	put("etc/gearboxd.conf.d/50-models.conf", "[daemon]\nmodel = /a.safetensors\nmodel = /b.safetensors\n");
	load(&c);
	ck_assert_uint_eq(c.nmodels, 2);
	config_free(&c);
	put("etc/gearboxd.conf.d/60-models.conf", "[daemon]\nmodel =\nmodel = /c.safetensors\n");
	load(&c);
	ck_assert_uint_eq(c.nmodels, 1);
	ck_assert_str_eq(c.models[0], "/c.safetensors");
	config_free(&c);

	/* a bad drop-in is refused with its name and line */
	char etc[512], vendor[512], **files, *cause = NULL;
	put("etc/gearboxd.conf.d/70-bad.conf", "[daemon]\nthreads = lots\n");
	snprintf(etc, sizeof(etc), "%s/etc", dir);
	snprintf(vendor, sizeof(vendor), "%s/vendor", dir);
	unsigned n = config_files(etc, vendor, &files);
	config_defaults(&c);
	ck_assert(config_load_files(&c, files, n, &cause) != 0);
	ck_assert_msg(strstr(cause, "70-bad.conf:2") != NULL, "cause: %s", cause);
	free(cause);
	config_free(&c);
	config_files_free(files, n);
}
END_TEST

/* The plan's power cap and memory keys: numbers, 0 (none) by default,
 * refused when negative or not numbers. */
START_TEST(test_plan_limits)
{
	struct config c;
	char path[512], *cause = NULL;

	config_defaults(&c);
	ck_assert(c.plan_power_w == 0 && c.plan_memory_mib == 0);
	snprintf(path, sizeof(path), "%s/limits.conf", dir);
	put("limits.conf", "[daemon]\nplan_power_w = 2.5\nplan_memory_mib = 64\n");
	ck_assert_msg(config_load(&c, path, &cause) == 0, "%s", cause ? cause : "?");
	ck_assert(c.plan_power_w == 2.5 && c.plan_memory_mib == 64);
	config_free(&c);
	static const char *bad[] = { "plan_power_w = -1", "plan_power_w = lots", "plan_memory_mib = -5",
		                     "plan_memory_mib = 1e99", "plan_power_w =" };
	for (unsigned k = 0; k < sizeof(bad) / sizeof(bad[0]); k++) {
		char text[128];
		snprintf(text, sizeof(text), "[daemon]\n%s\n", bad[k]);
		put("limits.conf", text);
		config_defaults(&c);
		cause = NULL;
		ck_assert_msg(config_load(&c, path, &cause) != 0, "accepted '%s'", bad[k]);
		ck_assert_msg(strstr(cause, "limits.conf:2") != NULL && strstr(cause, "plan_") != NULL, "cause: %s", cause);
		free(cause);
		config_free(&c);
	}
}
END_TEST

/* pm_qos_latency_us: auto by default (the daemon asks the governor what
 * fits), auto or a number when given, and the refusal names both. */
START_TEST(test_pm_qos_latency)
{
	struct config c;
	char path[512], *cause = NULL;

	config_defaults(&c);
	ck_assert_uint_eq(c.pm_qos_latency_us, CONFIG_PM_QOS_LATENCY_AUTO);
	snprintf(path, sizeof(path), "%s/qos.conf", dir);
	put("qos.conf", "[daemon]\npm_qos_latency_us = 0\n");
	ck_assert_msg(config_load(&c, path, &cause) == 0, "%s", cause ? cause : "?");
	ck_assert_uint_eq(c.pm_qos_latency_us, 0);
	put("qos.conf", "[daemon]\npm_qos_latency_us = auto\n");
	ck_assert_msg(config_load(&c, path, &cause) == 0, "%s", cause ? cause : "?");
	ck_assert_uint_eq(c.pm_qos_latency_us, CONFIG_PM_QOS_LATENCY_AUTO);
	config_free(&c);
	put("qos.conf", "[daemon]\npm_qos_latency_us = fast\n");
	config_defaults(&c);
	ck_assert(config_load(&c, path, &cause) != 0);
	ck_assert_msg(strstr(cause, "qos.conf:2") != NULL && strstr(cause, "must be auto or a whole number from 0") != NULL,
	              "cause: %s", cause);
	free(cause);
	config_free(&c);
}
END_TEST

START_TEST(test_log_target)
{
	struct stat st = { 0 };
	char js[64];

	st.st_dev = 0x803;
	st.st_ino = 4242;
	st.st_mode = S_IFREG | 0644;
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev, (unsigned long long)st.st_ino);
	/* stderr is the stream JOURNAL_STREAM names */
	ck_assert_int_eq(log_target_decide(js, NULL, &st), LOG_TARGET_JOURNAL);
	/* a stale one (stderr redirected to a file since): plain text */
	ck_assert_int_eq(log_target_decide("2051:4243", NULL, &st), LOG_TARGET_CONSOLE);
	ck_assert_int_eq(log_target_decide("garbage", "abc", &st), LOG_TARGET_CONSOLE);
	ck_assert_int_eq(log_target_decide("2051:4242x", NULL, &st), LOG_TARGET_CONSOLE);
	/* unset: a file, a terminal, a pipe are plain text, also under systemd */
	ck_assert_int_eq(log_target_decide(NULL, NULL, &st), LOG_TARGET_CONSOLE);
	ck_assert_int_eq(log_target_decide(NULL, "0123456789abcdef0123456789abcdef", &st), LOG_TARGET_CONSOLE);
	st.st_mode = S_IFCHR | 0620;
	ck_assert_int_eq(log_target_decide(NULL, "0123456789abcdef0123456789abcdef", &st), LOG_TARGET_CONSOLE);
	st.st_mode = S_IFIFO | 0600;
	ck_assert_int_eq(log_target_decide(NULL, "0123456789abcdef0123456789abcdef", &st), LOG_TARGET_CONSOLE);
	/* run by systemd with stderr a socket: the journal's stream */
	st.st_mode = S_IFSOCK | 0777;
	ck_assert_int_eq(log_target_decide(NULL, "0123456789abcdef0123456789abcdef", &st), LOG_TARGET_JOURNAL);
	ck_assert_int_eq(log_target_decide(NULL, NULL, &st), LOG_TARGET_CONSOLE);
	/* fstat failed */
	ck_assert_int_eq(log_target_decide(js, "x", NULL), LOG_TARGET_CONSOLE);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("daemon-config");
	TCase *tc = tcase_create("config");

	tcase_add_test(tc, test_dropin_precedence);
	tcase_add_test(tc, test_plan_limits);
	tcase_add_test(tc, test_pm_qos_latency);
	tcase_add_test(tc, test_log_target);
	suite_add_tcase(s, tc);
	return run_suite_in_tmpdir(s, dir);
}
