/* SPDX-License-Identifier: MIT */
/* PM QoS CPU-latency requests and the bounded real-time class.
 *
 * PM QoS works on a small sysfs tree in a temporary folder (cpuN/power/
 * pm_qos_resume_latency_us) and a plain file standing in for
 * /dev/cpu_dma_latency: exactly the CPUs given are written, release and
 * re-acquire put back what no longer applies, AUTO's choice, the limit that
 * fits the machine's cpuidle driver, errors that name
 * the file, and recovery of the old values after a crash through the saved
 * state. Plain files are not truncated by sysfs-style writes (as under
 * umockdev), so values are compared by their first token.
 *
 * Real time: what enter/leave do to the calling thread, the EPERM message with
 * CAP_SYS_NICE and RLIMIT_RTPRIO dropped in a child, RLIMIT_RTTIME and the
 * SIGXCPU handler, and (where real time is permitted) a runaway demoted. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "governor/governor.h"
#include "tests/common/scratch.h"

static char dir[] = "/tmp/gearbox-test-latency-XXXXXX";

#define ATTR "power/pm_qos_resume_latency_us"

/* dir/name as a sysfs root with cpu0..cpu(n-1), each attribute holding init[i]. */
static const char *
make_tree(const char *name, unsigned n, const char *const *init)
{
	static char root[400];
	char sub[600], cmd[700];

	snprintf(root, sizeof(root), "%s/%s", dir, name);
	for (unsigned i = 0; i < n; i++) {
		snprintf(sub, sizeof(sub), "devices/system/cpu/cpu%u/power", i);
		snprintf(cmd, sizeof(cmd), "mkdir -p '%s/%s'", root, sub);
		ck_assert_int_eq(system(cmd), 0);
		snprintf(sub, sizeof(sub), "%s/devices/system/cpu/cpu%u", name, i);
		snprintf(cmd, sizeof(cmd), "%s\n", init[i]);
		scratch_file(dir, strcat(sub, "/" ATTR), cmd);
	}
	return root;
}

static void
attr_path(const char *root, unsigned cpu, char *buf, size_t len)
{
	snprintf(buf, len, "%s/devices/system/cpu/cpu%u/" ATTR, root, cpu);
}

/* The first token of cpu's attribute (the tests' four at a time). */
static const char *
token(const char *root, unsigned cpu)
{
	static char tok[4][32];
	static int next;
	char path[512], *t = tok[next++ % 4];
	FILE *f;

	attr_path(root, cpu, path, sizeof(path));
	ck_assert_msg((f = fopen(path, "r")) != NULL, "%s", path);
	if (fscanf(f, "%31s", t) != 1)
		t[0] = '\0';
	fclose(f);
	return t;
}

#define ck_assert_tokens(root, a, b, c, d)                                                                         \
	do {                                                                                                       \
		ck_assert_str_eq(token(root, 0), a);                                                               \
		ck_assert_str_eq(token(root, 1), b);                                                               \
		ck_assert_str_eq(token(root, 2), c);                                                               \
		ck_assert_str_eq(token(root, 3), d);                                                               \
	} while (0)

static hwloc_bitmap_t
cpus(const char *list)
{
	hwloc_bitmap_t b = hwloc_bitmap_alloc();

	ck_assert_int_eq(hwloc_bitmap_list_sscanf(b, list), 0);
	return b;
}

static int
acquire(struct gov_pm_qos *q, const char *list, unsigned us, char **cause)
{
	hwloc_bitmap_t b = list != NULL ? cpus(list) : NULL;
	int ret = gov_pm_qos_acquire(q, b, us, cause);

	hwloc_bitmap_free(b);
	return ret;
}

/* A platform with only what the saved state needs: its folder and owner. */
static struct gov_platform
state_platform(const char *name)
{
	static char sdir[4][400];
	static int next;
	struct gov_platform p;
	char *d = sdir[next++ % 4];

	memset(&p, 0, sizeof(p));
	snprintf(d, sizeof(sdir[0]), "%s/%s", dir, name);
	p.state_dir = d;
	p.owner_pid = (int)getpid();
	return p;
}

static char *
state_text(const struct gov_platform *p)
{
	static char text[8192];
	char path[512];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "%s/state.json", p->state_dir);
	if ((f = fopen(path, "r")) == NULL)
		return NULL;
	n = fread(text, 1, sizeof(text) - 1, f);
	text[n] = '\0';
	fclose(f);
	return text;
}

static bool
state_mentions_cpu(const struct gov_platform *p, unsigned cpu)
{
	char needle[64];
	const char *text = state_text(p);

	snprintf(needle, sizeof(needle), "/cpu%u/" ATTR, cpu);
	return text != NULL && strstr(text, needle) != NULL;
}

static struct gov_pm_qos *
new_qos(enum gov_pm_qos_mode mode, const char *root, const char *dma, struct gov_platform *p)
{
	struct gov_pm_qos_config cfg = { .mode = mode, .sysfs_root = root, .dma_latency_path = dma, .platform = p };
	char *cause = NULL;
	struct gov_pm_qos *q = gov_pm_qos_new(&cfg, &cause);

	ck_assert_msg(q != NULL, "%s", cause);
	return q;
}

START_TEST(test_resume_exact_cpus)
{
	const char *init[] = { "0", "0", "0", "n/a" };
	const char *root = make_tree("exact", 4, init);
	struct gov_platform p = state_platform("exact.state");
	struct gov_pm_qos *q = new_qos(GOV_PM_QOS_RESUME_LATENCY, root, "/nonexistent/dma", &p);
	char *cause = NULL;

	ck_assert(!gov_pm_qos_held(q));
	ck_assert_msg(acquire(q, "1,3", 50, &cause) == 0, "%s", cause);
	ck_assert(gov_pm_qos_held(q));
	ck_assert_int_eq(gov_pm_qos_mechanism(q), GOV_PM_QOS_RESUME_LATENCY);
	ck_assert_tokens(root, "0", "50", "0", "50");
	/* The old values are saved before the write, for a crash. */
	ck_assert(state_mentions_cpu(&p, 1) && state_mentions_cpu(&p, 3) && !state_mentions_cpu(&p, 0));

	/* Another set: cpu3 gets its old "n/a" back and leaves the state. */
	ck_assert_msg(acquire(q, "1-2", 20, &cause) == 0, "%s", cause);
	ck_assert_tokens(root, "0", "20", "20", "n/a");
	ck_assert(state_mentions_cpu(&p, 1) && state_mentions_cpu(&p, 2) && !state_mentions_cpu(&p, 3));

	/* 0 us is "n/a" to the kernel ("0" there means no limit). */
	ck_assert_msg(acquire(q, "1-2", 0, &cause) == 0, "%s", cause);
	ck_assert_tokens(root, "0", "n/a", "n/a", "n/a");

	gov_pm_qos_release(q);
	ck_assert(!gov_pm_qos_held(q));
	ck_assert_int_eq(gov_pm_qos_mechanism(q), GOV_PM_QOS_OFF);
	ck_assert_tokens(root, "0", "0", "0", "n/a");
	ck_assert_ptr_null(state_text(&p));
	gov_pm_qos_release(q);
	ck_assert_tokens(root, "0", "0", "0", "n/a");
	gov_pm_qos_free(q);
	gov_pm_qos_free(NULL);
}
END_TEST

START_TEST(test_two_holders_share_state)
{
	const char *init[] = { "0", "0", "0", "0" };
	const char *root = make_tree("two", 4, init);
	struct gov_platform p = state_platform("two.state");
	struct gov_pm_qos *a = new_qos(GOV_PM_QOS_RESUME_LATENCY, root, NULL, &p);
	struct gov_pm_qos *b = new_qos(GOV_PM_QOS_RESUME_LATENCY, root, NULL, &p);

	ck_assert_int_eq(acquire(a, "0", 10, NULL), 0);
	ck_assert_int_eq(acquire(b, "2", 30, NULL), 0);
	ck_assert_tokens(root, "10", "0", "30", "0");
	gov_pm_qos_free(a);
	ck_assert_tokens(root, "0", "0", "30", "0");
	ck_assert(state_mentions_cpu(&p, 2) && !state_mentions_cpu(&p, 0));
	gov_pm_qos_free(b);
	ck_assert_tokens(root, "0", "0", "0", "0");
	ck_assert_ptr_null(state_text(&p));
}
END_TEST

static bool
fd_open_on(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	char link[300], target[512];
	bool found = false;

	ck_assert_ptr_nonnull(d);
	while (!found && (e = readdir(d)) != NULL) {
		ssize_t n;
		snprintf(link, sizeof(link), "/proc/self/fd/%s", e->d_name);
		if ((n = readlink(link, target, sizeof(target) - 1)) > 0) {
			target[n] = '\0';
			found = strcmp(target, path) == 0;
		}
	}
	closedir(d);
	return found;
}

/* The single int32 in the file standing in for /dev/cpu_dma_latency; -1 when
 * the file does not hold exactly one. */
static int64_t
dma_value(const char *path)
{
	struct stat st;
	int32_t v;
	FILE *f;

	ck_assert_int_eq(stat(path, &st), 0);
	if (st.st_size != (off_t)sizeof(v))
		return -1;
	ck_assert_ptr_nonnull(f = fopen(path, "rb"));
	ck_assert_int_eq(fread(&v, sizeof(v), 1, f), 1);
	fclose(f);
	return v;
}

START_TEST(test_dma_latency)
{
	char dma[400];
	struct gov_pm_qos *q;
	char *cause = NULL;

	snprintf(dma, sizeof(dma), "%s", scratch_file(dir, "dma", ""));
	q = new_qos(GOV_PM_QOS_DMA_LATENCY, NULL, dma, NULL);
	ck_assert_msg(acquire(q, NULL, 25, &cause) == 0, "%s", cause);
	ck_assert_int_eq(gov_pm_qos_mechanism(q), GOV_PM_QOS_DMA_LATENCY);
	ck_assert_int_eq(dma_value(dma), 25);
	ck_assert(fd_open_on(dma)); /* the request lasts while the file is open */
	ck_assert_msg(acquire(q, "0-1", 7, &cause) == 0, "%s", cause);
	ck_assert_int_eq(dma_value(dma), 7);
	gov_pm_qos_release(q);
	ck_assert(!gov_pm_qos_held(q));
	ck_assert(!fd_open_on(dma));
	gov_pm_qos_release(q);
	gov_pm_qos_free(q);
}
END_TEST

START_TEST(test_auto_choice)
{
	const char *init[] = { "0", "0", "0", "0" };
	const char *root = make_tree("auto", 4, init);
	struct gov_platform p = state_platform("auto.state");
	char dma[400], missing[400];
	struct gov_pm_qos *q;
	char *cause = NULL;

	snprintf(dma, sizeof(dma), "%s", scratch_file(dir, "auto.dma", ""));
	q = new_qos(GOV_PM_QOS_AUTO, root, dma, &p);
	ck_assert_msg(acquire(q, "0-1", 30, &cause) == 0, "%s", cause);
	ck_assert_int_eq(gov_pm_qos_mechanism(q), GOV_PM_QOS_RESUME_LATENCY);
	ck_assert_tokens(root, "30", "30", "0", "0");
	ck_assert_int_eq(dma_value(dma), -1);
	ck_assert(!fd_open_on(dma));

	/* cpu4 has no attribute: the device, and cpu0-1 are put back. */
	ck_assert_msg(acquire(q, "3-4", 40, &cause) == 0, "%s", cause);
	ck_assert_int_eq(gov_pm_qos_mechanism(q), GOV_PM_QOS_DMA_LATENCY);
	ck_assert_tokens(root, "0", "0", "0", "0");
	ck_assert_int_eq(dma_value(dma), 40);
	ck_assert(fd_open_on(dma));
	ck_assert_ptr_null(state_text(&p));

	/* Back to resume latency: the device is closed. */
	ck_assert_msg(acquire(q, "2", 5, &cause) == 0, "%s", cause);
	ck_assert_int_eq(gov_pm_qos_mechanism(q), GOV_PM_QOS_RESUME_LATENCY);
	ck_assert_tokens(root, "0", "0", "5", "0");
	ck_assert(!fd_open_on(dma));
	gov_pm_qos_free(q);
	ck_assert_tokens(root, "0", "0", "0", "0");

	/* Neither: nothing held, and the message names both paths. */
	snprintf(missing, sizeof(missing), "%s/no-such-folder/cpu_dma_latency", dir);
	q = new_qos(GOV_PM_QOS_AUTO, dir, missing, &p);
	ck_assert_int_eq(acquire(q, "0", 30, &cause), -ENOENT);
	ck_assert(!gov_pm_qos_held(q));
	ck_assert_msg(strstr(cause, missing) && strstr(cause, "/devices/system/cpu/cpu0/" ATTR), "%s", cause);
	free(cause);
	gov_pm_qos_free(q);
}
END_TEST

/* What an "auto" limit holds: 0 under haltpoll (a virtual machine's halt),
 * else the shallow-state limit, also when the driver cannot be read. */
START_TEST(test_fitting_latency)
{
	static const struct {
		const char *name, *driver; /* NULL: no cpuidle folder */
		unsigned us;
		const char *said;
	} cases[] = {
		{ "fit-vm", "haltpoll\n", 0, "haltpoll" },
		{ "fit-intel", "intel_idle\n", GOV_PM_QOS_SHALLOW_US, "intel_idle" },
		{ "fit-arm", "psci_idle", GOV_PM_QOS_SHALLOW_US, "psci_idle" },
		{ "fit-none", NULL, GOV_PM_QOS_SHALLOW_US, "unknown" },
	};
	const char *init[] = { "0" };

	for (unsigned i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const char *root = make_tree(cases[i].name, 1, init);
		char sub[400], why[256] = "";
		if (cases[i].driver != NULL) {
			char cmd[600];
			snprintf(cmd, sizeof(cmd), "mkdir -p '%s/devices/system/cpu/cpuidle'", root);
			ck_assert_int_eq(system(cmd), 0);
			snprintf(sub, sizeof(sub), "%s/devices/system/cpu/cpuidle/current_driver", cases[i].name);
			scratch_file(dir, sub, cases[i].driver);
		}
		struct gov_pm_qos *q = new_qos(GOV_PM_QOS_AUTO, root, NULL, NULL);
		ck_assert_uint_eq(gov_pm_qos_fitting_latency_us(q, why, sizeof(why)), cases[i].us);
		ck_assert_msg(strstr(why, cases[i].said) != NULL, "%s: %s", cases[i].name, why);
		gov_pm_qos_free(q);
	}
}
END_TEST

START_TEST(test_errors)
{
	const char *init[] = { "0", "0" };
	const char *root = make_tree("errors", 2, init);
	struct gov_platform p = state_platform("errors.state");
	struct gov_pm_qos_config bad = { .mode = (enum gov_pm_qos_mode)9 };
	char path[512], nowhere[400];
	struct gov_pm_qos *q;
	char *cause = NULL;

	/* A sysfs root without the attribute. */
	snprintf(nowhere, sizeof(nowhere), "%s/nowhere", dir);
	q = new_qos(GOV_PM_QOS_RESUME_LATENCY, nowhere, NULL, &p);
	attr_path(nowhere, 0, path, sizeof(path));
	ck_assert_int_eq(acquire(q, "0", 30, &cause), -ENOENT);
	ck_assert_msg(strstr(cause, path) && strstr(cause, "ENOENT"), "%s", cause);
	free(cause);
	cause = NULL;
	ck_assert_ptr_null(state_text(&p));
	gov_pm_qos_free(q);

	/* A device in a folder that does not exist. */
	snprintf(path, sizeof(path), "%s/no-such-folder/cpu_dma_latency", dir);
	q = new_qos(GOV_PM_QOS_DMA_LATENCY, NULL, path, NULL);
	ck_assert_int_eq(acquire(q, NULL, 30, &cause), -ENOENT);
	ck_assert_msg(strstr(cause, path) && strstr(cause, "No such file"), "%s", cause);
	free(cause);
	cause = NULL;
	gov_pm_qos_free(q);

	/* cpu2 is missing: cpu0-1, written first, are put back, also when they
	 * were held before. */
	q = new_qos(GOV_PM_QOS_RESUME_LATENCY, root, NULL, &p);
	attr_path(root, 2, path, sizeof(path));
	ck_assert_int_eq(acquire(q, "0-2", 40, &cause), -ENOENT);
	ck_assert_msg(strstr(cause, path), "%s", cause);
	free(cause);
	cause = NULL;
	ck_assert_str_eq(token(root, 0), "0");
	ck_assert_str_eq(token(root, 1), "0");
	ck_assert(!gov_pm_qos_held(q));
	ck_assert_ptr_null(state_text(&p));
	ck_assert_int_eq(acquire(q, "0-1", 40, NULL), 0);
	ck_assert_int_eq(acquire(q, "0-2", 40, NULL), -ENOENT);
	ck_assert_str_eq(token(root, 0), "0");
	ck_assert(!gov_pm_qos_held(q));
	ck_assert_ptr_null(state_text(&p));

	/* No CPUs, and values the kernel's int32 cannot hold. */
	ck_assert_int_eq(acquire(q, "", 40, NULL), -EINVAL);
	ck_assert_int_eq(acquire(q, "0", 3000000000u, &cause), -ERANGE);
	ck_assert_ptr_nonnull(cause);
	free(cause);
	cause = NULL;

	/* A read-only attribute (root ignores the mode). */
	if (geteuid() != 0) {
		attr_path(root, 1, path, sizeof(path));
		ck_assert_int_eq(chmod(path, 0444), 0);
		ck_assert_int_eq(acquire(q, "1", 40, &cause), -EACCES);
		ck_assert_msg(strstr(cause, path) && strstr(cause, "EACCES"), "%s", cause);
		free(cause);
		cause = NULL;
		ck_assert_ptr_null(state_text(&p));
	}
	gov_pm_qos_free(q);

	ck_assert_ptr_null(gov_pm_qos_new(&bad, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "unknown mode"));
	free(cause);
}
END_TEST

/* A gearboxd that dies holding resume latencies: the next start restores. */
START_TEST(test_crash_recovery)
{
	const char *init[] = { "0", "0", "n/a", "0" };
	const char *root = make_tree("crash", 4, init);
	char sdir[400], *cause = NULL;
	struct gov_platform *p;
	bool recovered = false;
	int status;
	pid_t pid;

	snprintf(sdir, sizeof(sdir), "%s/crash.state", dir);
	setenv("GEARBOX_STATE_DIR", sdir, 1);
	if ((pid = fork()) == 0) {
		struct gov_platform *cp = gov_platform_discover(NULL, NULL);
		struct gov_pm_qos_config cfg = { .mode = GOV_PM_QOS_AUTO, .sysfs_root = root, .platform = cp };
		struct gov_pm_qos *q = cp != NULL ? gov_pm_qos_new(&cfg, NULL) : NULL;
		hwloc_bitmap_t set = hwloc_bitmap_alloc();

		hwloc_bitmap_list_sscanf(set, "0,2");
		_exit(q != NULL && gov_pm_qos_acquire(q, set, 15, NULL) == 0 ? 0 : 1); /* no release */
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	ck_assert_tokens(root, "15", "0", "15", "0");

	ck_assert_msg((p = gov_platform_discover(NULL, &cause)) != NULL, "%s", cause);
	ck_assert(gov_has_saved_state(p));
	/* Taking cpu0 again before recovery: its original is the recorded "0",
	 * not the "15" the crash left. */
	{
		struct gov_pm_qos_config cfg = { .mode = GOV_PM_QOS_RESUME_LATENCY, .sysfs_root = root, .platform = p };
		struct gov_pm_qos *q = gov_pm_qos_new(&cfg, NULL);

		ck_assert_int_eq(acquire(q, "0", 99, NULL), 0);
		ck_assert_tokens(root, "99", "0", "15", "0");
		gov_pm_qos_free(q);
		ck_assert_tokens(root, "0", "0", "15", "0");
	}
	ck_assert(gov_has_saved_state(p));
	ck_assert_msg(gov_recover_stale(p, &recovered, &cause) == 0, "%s", cause);
	ck_assert(recovered);
	ck_assert_tokens(root, "0", "0", "n/a", "0");
	ck_assert(!gov_has_saved_state(p));

	/* gov_restore before a release (a daemon's shutdown order) puts the
	 * values back, and the release after it leaves no state behind. */
	{
		struct gov_pm_qos_config cfg = { .mode = GOV_PM_QOS_RESUME_LATENCY, .sysfs_root = root, .platform = p };
		struct gov_pm_qos *q = gov_pm_qos_new(&cfg, NULL);

		ck_assert_int_eq(acquire(q, "1-3", 8, NULL), 0);
		ck_assert_tokens(root, "0", "8", "8", "8");
		ck_assert_msg(gov_restore(p, &cause) == 0, "%s", cause);
		ck_assert_tokens(root, "0", "0", "n/a", "0");
		gov_pm_qos_free(q);
		ck_assert_tokens(root, "0", "0", "n/a", "0");
		ck_assert(!gov_has_saved_state(p));
	}
	gov_platform_free(p);
	unsetenv("GEARBOX_STATE_DIR");
}
END_TEST

/* ---- real time ------------------------------------------------------------ */

/* Children report the first failed check as their exit status (its line). */
#define CHILD_CHECK(cond)                                                                                         \
	do {                                                                                                       \
		if (!(cond)) {                                                                                     \
			fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #cond);                                 \
			_exit(__LINE__ % 200 + 1);                                                                 \
		}                                                                                                  \
	} while (0)

#define SKIP_STATUS 222

static int
in_child(void (*fn)(void))
{
	int status;
	pid_t pid = fork();

	ck_assert_int_ge(pid, 0);
	if (pid == 0) {
		fn();
		_exit(0);
	}
	ck_assert_int_eq(waitpid(pid, &status, 0), pid);
	ck_assert_msg(WIFEXITED(status), "child killed by signal %d", WTERMSIG(status));
	return WEXITSTATUS(status);
}

static int
policy_now(void)
{
	return sched_getscheduler(0);
}

static void
drop_all_capabilities(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	CHILD_CHECK(syscall(SYS_capset, &hdr, data) == 0);
}

static void
try_enter(void)
{
	_exit(gov_realtime_enter(1, NULL) == 0 ? 0 : 1);
}

/* Does this machine let the test (root in CI) into SCHED_FIFO at all? */
static bool
realtime_works(void)
{
	return in_child(try_enter) == 0;
}

START_TEST(test_rt_priority_range)
{
	char *cause = NULL;

	ck_assert(!gov_realtime_possible(0));
	ck_assert(!gov_realtime_possible(100));
	ck_assert(!gov_realtime_possible(-3));
	ck_assert_int_eq(gov_realtime_enter(0, &cause), -EINVAL);
	ck_assert_msg(strstr(cause, "outside 1..99"), "%s", cause);
	free(cause);
	ck_assert_int_eq(gov_realtime_enter(100, NULL), -EINVAL);
	ck_assert_int_eq(policy_now() & ~SCHED_RESET_ON_FORK, SCHED_OTHER);
}
END_TEST

static void
enter_leave(void)
{
	struct sched_param param;
	bool possible = gov_realtime_possible(10);
	char *cause = NULL;
	int ret = gov_realtime_enter(10, &cause), status;
	pid_t pid;

	if (ret != 0) {
		CHILD_CHECK(ret == -EPERM && strstr(cause, "CAP_SYS_NICE") != NULL);
		/* Permitted by capability and limit, but the cgroup has no RT time. */
		CHILD_CHECK(!possible || strstr(cause, "cpu.rt_runtime_us") != NULL);
		free(cause);
		_exit(SKIP_STATUS);
	}
	CHILD_CHECK(possible);
	CHILD_CHECK(policy_now() == (SCHED_FIFO | SCHED_RESET_ON_FORK));
	CHILD_CHECK(sched_getparam(0, &param) == 0 && param.sched_priority == 10);
	if ((pid = fork()) == 0) /* SCHED_RESET_ON_FORK: children start normal */
		_exit((policy_now() & ~SCHED_RESET_ON_FORK) == SCHED_OTHER ? 0 : 1);
	CHILD_CHECK(waitpid(pid, &status, 0) == pid && WIFEXITED(status) && WEXITSTATUS(status) == 0);
	CHILD_CHECK(gov_realtime_leave() == 0);
	CHILD_CHECK((policy_now() & ~SCHED_RESET_ON_FORK) == SCHED_OTHER);
	CHILD_CHECK(sched_getparam(0, &param) == 0 && param.sched_priority == 0);
	CHILD_CHECK(gov_realtime_leave() == 0);
}

START_TEST(test_rt_enter_leave)
{
	int status = in_child(enter_leave);

	if (status == SKIP_STATUS)
		fprintf(stderr, "test_rt_enter_leave: real time not permitted here, checked the message only\n");
	else
		ck_assert_int_eq(status, 0);
}
END_TEST

/* Neither CAP_SYS_NICE nor RLIMIT_RTPRIO: refused, with what to grant. */
static void
refused(void)
{
	struct rlimit none = { 0, 0 };
	char *cause = NULL;

	CHILD_CHECK(setrlimit(RLIMIT_RTPRIO, &none) == 0);
	drop_all_capabilities();
	CHILD_CHECK(!gov_realtime_possible(10));
	CHILD_CHECK(gov_realtime_enter(10, &cause) == -EPERM);
	fprintf(stderr, "refused as expected: %s\n", cause);
	CHILD_CHECK(strstr(cause, "CAP_SYS_NICE") && strstr(cause, "AmbientCapabilities=CAP_SYS_NICE"));
	CHILD_CHECK(strstr(cause, "RLIMIT_RTPRIO") && strstr(cause, "LimitRTPRIO=10"));
	CHILD_CHECK(strstr(cause, "EPERM") && strstr(cause, "it is 0"));
	CHILD_CHECK(policy_now() == SCHED_OTHER);
	free(cause);
}

/* RLIMIT_RTPRIO alone permits up to its value. */
static void
by_rlimit(void)
{
	struct rlimit twenty = { 20, 20 };

	/* Raising the hard limit needs CAP_SYS_RESOURCE, which a root in a
	 * container may lack. */
	if (setrlimit(RLIMIT_RTPRIO, &twenty) != 0)
		_exit(SKIP_STATUS);
	drop_all_capabilities();
	CHILD_CHECK(gov_realtime_possible(10) && gov_realtime_possible(20) && !gov_realtime_possible(21));
	CHILD_CHECK(gov_realtime_enter(21, NULL) == -EPERM);
	CHILD_CHECK(gov_realtime_enter(10, NULL) == 0);
	CHILD_CHECK(policy_now() == (SCHED_FIFO | SCHED_RESET_ON_FORK));
	/* Leaving keeps SCHED_RESET_ON_FORK, whose clearing needs CAP_SYS_NICE. */
	CHILD_CHECK(gov_realtime_leave() == 0);
	CHILD_CHECK(policy_now() == (SCHED_OTHER | SCHED_RESET_ON_FORK));
}

START_TEST(test_rt_not_permitted)
{
	int status;

	ck_assert_int_eq(in_child(refused), 0);
	if (!realtime_works())
		return;
	if ((status = in_child(by_rlimit)) == SKIP_STATUS)
		fprintf(stderr, "test_rt_not_permitted: cannot raise RLIMIT_RTPRIO here, its grant not checked\n");
	else
		ck_assert_int_eq(status, 0);
}
END_TEST

static void
bound(void)
{
	struct rlimit rl;
	struct sigaction sa;
	char *cause = NULL;

	CHILD_CHECK(gov_realtime_bound(0, NULL) == -EINVAL);
	CHILD_CHECK(gov_realtime_bound(200000, &cause) == 0);
	CHILD_CHECK(getrlimit(RLIMIT_RTTIME, &rl) == 0 && rl.rlim_cur == 200000 && rl.rlim_max == 400000);
	CHILD_CHECK(sigaction(SIGXCPU, NULL, &sa) == 0 && sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN);
	CHILD_CHECK(gov_realtime_demotions() == 0);
	/* Lowering needs nothing; raising the hard limit needs CAP_SYS_RESOURCE. */
	drop_all_capabilities();
	CHILD_CHECK(gov_realtime_bound(100000, NULL) == 0);
	CHILD_CHECK(getrlimit(RLIMIT_RTTIME, &rl) == 0 && rl.rlim_cur == 100000 && rl.rlim_max == 200000);
	CHILD_CHECK(gov_realtime_bound(300000, &cause) == -EPERM);
	CHILD_CHECK(strstr(cause, "LimitRTTIME=") && strstr(cause, "CAP_SYS_RESOURCE") && strstr(cause, "200000"));
	free(cause);
}

START_TEST(test_rt_bound)
{
	ck_assert_int_eq(in_child(bound), 0);
}
END_TEST

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A SCHED_FIFO thread spinning past a 50 ms RLIMIT_RTTIME is demoted, not
 * killed at the 100 ms hard limit, and the soft limit is back at 50 ms. */
static void
runaway(void)
{
	struct rlimit rl;
	double start;

	CHILD_CHECK(gov_realtime_bound(50000, NULL) == 0);
	CHILD_CHECK(gov_realtime_enter(1, NULL) == 0);
	start = now_s();
	while (gov_realtime_demotions() == 0 && now_s() - start < 2.0)
		; /* never blocks: only RLIMIT_RTTIME can stop it */
	CHILD_CHECK(gov_realtime_demotions() == 1);
	CHILD_CHECK((policy_now() & ~SCHED_RESET_ON_FORK) == SCHED_OTHER);
	CHILD_CHECK(getrlimit(RLIMIT_RTTIME, &rl) == 0 && rl.rlim_cur == 50000 && rl.rlim_max == 100000);
	fprintf(stderr, "runaway demoted after %.0f ms\n", (now_s() - start) * 1e3);
}

START_TEST(test_rt_runaway_demoted)
{
	if (!realtime_works()) {
		fprintf(stderr, "test_rt_runaway_demoted: real time not permitted here, skipped\n");
		return;
	}
	ck_assert_int_eq(in_child(runaway), 0);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("governor-latency");
	TCase *qos = tcase_create("pm_qos"), *rt = tcase_create("realtime");

	tcase_add_test(qos, test_resume_exact_cpus);
	tcase_add_test(qos, test_two_holders_share_state);
	tcase_add_test(qos, test_dma_latency);
	tcase_add_test(qos, test_auto_choice);
	tcase_add_test(qos, test_fitting_latency);
	tcase_add_test(qos, test_errors);
	tcase_add_test(qos, test_crash_recovery);
	tcase_set_timeout(qos, 60);
	tcase_add_test(rt, test_rt_priority_range);
	tcase_add_test(rt, test_rt_enter_leave);
	tcase_add_test(rt, test_rt_not_permitted);
	tcase_add_test(rt, test_rt_bound);
	tcase_add_test(rt, test_rt_runaway_demoted);
	tcase_set_timeout(rt, 30);
	suite_add_tcase(s, qos);
	suite_add_tcase(s, rt);
	return run_suite_in_tmpdir(s, dir);
}
