/* SPDX-License-Identifier: MIT */
/* Wake-up latency: PM QoS CPU-latency requests, and a real-time class with a
 * bound on runaways. See governor.h for what each mechanism means. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/capability.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "common/cause.h"
#include "governor/internal.h"

#define DMA_LATENCY_PATH "/dev/cpu_dma_latency"
#define QOS_VALUE 16 /* "n/a" or a decimal int32 */

/* ---- PM QoS ---------------------------------------------------------------- */

struct held_cpu {
	unsigned cpu;
	char old[QOS_VALUE]; /* what to write back */
};

struct gov_pm_qos {
	enum gov_pm_qos_mode mode; /* configured */
	enum gov_pm_qos_mode held; /* GOV_PM_QOS_OFF: nothing */
	struct gov_platform *platform;
	char *dma_path;
	char *sysfs_root;
	int dma_fd;
	struct held_cpu *cpus; /* resume latency written on these */
	unsigned ncpus, cap;
};

struct gov_pm_qos *
gov_pm_qos_new(const struct gov_pm_qos_config *cfg, char **cause)
{
	struct gov_pm_qos_config defaults = { .mode = GOV_PM_QOS_AUTO };
	struct gov_pm_qos *q;

	if (cfg == NULL)
		cfg = &defaults;
	if (cfg->mode > GOV_PM_QOS_OFF) {
		set_cause(cause, "PM QoS: unknown mode %d", (int)cfg->mode);
		return NULL;
	}
	if ((q = calloc(1, sizeof(*q))) == NULL) {
		set_cause(cause, "PM QoS: out of memory");
		return NULL;
	}
	q->mode = cfg->mode;
	q->held = GOV_PM_QOS_OFF;
	q->platform = cfg->platform;
	q->dma_fd = -1;
	q->dma_path = strdup(cfg->dma_latency_path != NULL ? cfg->dma_latency_path : DMA_LATENCY_PATH);
	q->sysfs_root = strdup(cfg->sysfs_root != NULL ? cfg->sysfs_root : "/sys");
	if (q->dma_path == NULL || q->sysfs_root == NULL) {
		gov_pm_qos_free(q);
		set_cause(cause, "PM QoS: out of memory");
		return NULL;
	}
	return q;
}

static void
resume_path(const struct gov_pm_qos *q, unsigned cpu, char *buf, size_t len)
{
	snprintf(buf, len, "%s/devices/system/cpu/cpu%u/power/pm_qos_resume_latency_us", q->sysfs_root, cpu);
}

/* The attribute reads "0" for no limit, so a 0 us limit is spelt "n/a". */
static void
resume_value(unsigned latency_us, char *buf, size_t len)
{
	if (latency_us == 0)
		snprintf(buf, len, "n/a");
	else
		snprintf(buf, len, "%u", latency_us);
}

/* Write and read back the first token: a testbed's plain file keeps what a
 * longer earlier value left after it. */
static int
write_resume(const char *path, const char *value, char **cause)
{
	char back[QOS_VALUE];
	int ret = sysfs_write(path, value);

	if (ret == 0)
		ret = sysfs_read_token(path, back, sizeof(back));
	if (ret != 0) {
		gov_path_error(cause, path, ret);
		return ret;
	}
	if (strcmp(back, value) != 0) {
		set_cause(cause, "%s: wrote %s but it reads %s", path, value, back);
		return -EIO;
	}
	return 0;
}

static int
find_held(const struct gov_pm_qos *q, unsigned cpu)
{
	for (unsigned i = 0; i < q->ncpus; i++)
		if (q->cpus[i].cpu == cpu)
			return (int)i;
	return -1;
}

/* Remember the old value (in the saved state first), then write. */
static int
hold_new_cpu(struct gov_pm_qos *q, unsigned cpu, const char *value, char **cause)
{
	char path[GOV_PATH], now[QOS_VALUE], old[QOS_VALUE];
	struct held_cpu *h;
	int ret, saved = 0;

	resume_path(q, cpu, path, sizeof(path));
	if ((ret = sysfs_read_token(path, now, sizeof(now))) != 0) {
		gov_path_error(cause, path, ret);
		return ret;
	}
	if (q->ncpus == q->cap) {
		unsigned cap = q->cap ? 2 * q->cap : 8;
		if ((h = realloc(q->cpus, cap * sizeof(*h))) == NULL) {
			set_cause(cause, "PM QoS: out of memory");
			return -ENOMEM;
		}
		q->cpus = h;
		q->cap = cap;
	}
	/* A record left by a crash holds the real original: keep it. */
	snprintf(old, sizeof(old), "%s", now);
	if (q->platform != NULL && (saved = gov_state_save_attribute(q->platform, path, now, old, sizeof(old), cause)) < 0)
		return -EIO;
	if ((ret = write_resume(path, value, cause)) != 0) {
		if (saved == 1)
			gov_state_forget_attribute(q->platform, path, NULL);
		return ret;
	}
	h = &q->cpus[q->ncpus++];
	h->cpu = cpu;
	snprintf(h->old, sizeof(h->old), "%s", old);
	return 0;
}

/* Write the old value back. A CPU that cannot be put back stays in the saved
 * state, for gov_restore to try again. */
static void
unhold_cpu(struct gov_pm_qos *q, unsigned i)
{
	char path[GOV_PATH];

	resume_path(q, q->cpus[i].cpu, path, sizeof(path));
	if (sysfs_write(path, q->cpus[i].old) == 0 && q->platform != NULL)
		gov_state_forget_attribute(q->platform, path, NULL);
	q->cpus[i] = q->cpus[--q->ncpus];
}

static void
release_resume(struct gov_pm_qos *q)
{
	while (q->ncpus > 0)
		unhold_cpu(q, q->ncpus - 1);
}

static void
release_dma(struct gov_pm_qos *q)
{
	if (q->dma_fd >= 0)
		close(q->dma_fd);
	q->dma_fd = -1;
}

static int
check_cpus(hwloc_const_cpuset_t cpus, char **cause)
{
	if (cpus == NULL || hwloc_bitmap_iszero(cpus) || hwloc_bitmap_weight(cpus) < 0) {
		set_cause(cause, "PM QoS resume latency: no CPUs (or infinitely many) given");
		return -EINVAL;
	}
	return 0;
}

/* Every CPU's attribute exists and is writable (AUTO's test). */
static int
resume_usable(const struct gov_pm_qos *q, hwloc_const_cpuset_t cpus, char **cause)
{
	char path[GOV_PATH];
	int cpu, ret;

	if ((ret = check_cpus(cpus, cause)) != 0)
		return ret;
	hwloc_bitmap_foreach_begin(cpu, cpus) {
		resume_path(q, (unsigned)cpu, path, sizeof(path));
		if (access(path, W_OK) != 0) {
			ret = -errno;
			gov_path_error(cause, path, ret);
			return ret;
		}
	}
	hwloc_bitmap_foreach_end();
	return 0;
}

/* Per-CPU resume latency on exactly `cpus`; on error nothing is held. */
static int
use_resume(struct gov_pm_qos *q, hwloc_const_cpuset_t cpus, unsigned latency_us, char **cause)
{
	char value[QOS_VALUE], path[GOV_PATH];
	int cpu, i, ret;

	if ((ret = check_cpus(cpus, cause)) != 0)
		return ret;
	resume_value(latency_us, value, sizeof(value));
	hwloc_bitmap_foreach_begin(cpu, cpus) {
		if ((i = find_held(q, (unsigned)cpu)) < 0)
			ret = hold_new_cpu(q, (unsigned)cpu, value, cause);
		else {
			resume_path(q, (unsigned)cpu, path, sizeof(path));
			ret = write_resume(path, value, cause);
		}
		if (ret != 0) {
			release_resume(q);
			return ret;
		}
	}
	hwloc_bitmap_foreach_end();
	for (unsigned j = q->ncpus; j-- > 0;)
		if (!hwloc_bitmap_isset(cpus, q->cpus[j].cpu))
			unhold_cpu(q, j);
	release_dma(q);
	q->held = GOV_PM_QOS_RESUME_LATENCY;
	return 0;
}

/* The device takes a binary int32 and ignores the offset; seeking keeps a
 * plain file standing in for it (tests) at one value. */
static int
use_dma(struct gov_pm_qos *q, unsigned latency_us, char **cause)
{
	int32_t value = (int32_t)latency_us;
	ssize_t n;
	int err;

	if (q->dma_fd < 0 && (q->dma_fd = open(q->dma_path, O_WRONLY | O_CLOEXEC)) < 0) {
		err = -errno;
		gov_path_error(cause, q->dma_path, err);
		return err;
	}
	(void)lseek(q->dma_fd, 0, SEEK_SET);
	if ((n = write(q->dma_fd, &value, sizeof(value))) != (ssize_t)sizeof(value)) {
		err = n < 0 ? -errno : -EIO;
		gov_path_error(cause, q->dma_path, err);
		release_dma(q);
		return err;
	}
	release_resume(q);
	q->held = GOV_PM_QOS_DMA_LATENCY;
	return 0;
}

/* Resume latency when usable, else the device; both reasons when neither. */
static int
use_auto(struct gov_pm_qos *q, hwloc_const_cpuset_t cpus, unsigned latency_us, char **cause)
{
	char *why_resume = NULL, *why_dma = NULL;
	int ret;

	if (resume_usable(q, cpus, &why_resume) == 0 && use_resume(q, cpus, latency_us, &why_resume) == 0)
		return 0;
	if ((ret = use_dma(q, latency_us, &why_dma)) == 0) {
		free(why_resume);
		return 0;
	}
	set_cause(cause, "no PM QoS CPU-latency request could be made: per-CPU resume latency: %s; %s",
	          why_resume != NULL ? why_resume : "?", why_dma != NULL ? why_dma : "?");
	free(why_resume);
	free(why_dma);
	return ret;
}

int
gov_pm_qos_acquire(struct gov_pm_qos *q, hwloc_const_cpuset_t cpus, unsigned latency_us, char **cause)
{
	int ret = 0;

	if (latency_us > INT32_MAX) {
		gov_pm_qos_release(q);
		set_cause(cause, "PM QoS: %u us is beyond the kernel's int32 limit", latency_us);
		return -ERANGE;
	}
	switch (q->mode) {
	case GOV_PM_QOS_RESUME_LATENCY:
		ret = use_resume(q, cpus, latency_us, cause);
		break;
	case GOV_PM_QOS_DMA_LATENCY:
		ret = use_dma(q, latency_us, cause);
		break;
	case GOV_PM_QOS_AUTO:
		ret = use_auto(q, cpus, latency_us, cause);
		break;
	case GOV_PM_QOS_OFF:
		break;
	}
	if (ret != 0 || q->mode == GOV_PM_QOS_OFF)
		gov_pm_qos_release(q);
	return ret;
}

void
gov_pm_qos_release(struct gov_pm_qos *q)
{
	release_resume(q);
	release_dma(q);
	q->held = GOV_PM_QOS_OFF;
}

bool
gov_pm_qos_held(const struct gov_pm_qos *q)
{
	return q->held != GOV_PM_QOS_OFF;
}

enum gov_pm_qos_mode
gov_pm_qos_mechanism(const struct gov_pm_qos *q)
{
	return q->held;
}

unsigned
gov_pm_qos_fitting_latency_us(const struct gov_pm_qos *q, char *why, size_t len)
{
	char path[4096], driver[64] = "";
	FILE *f;

	snprintf(path, sizeof(path), "%s/devices/system/cpu/cpuidle/current_driver", q->sysfs_root);
	if ((f = fopen(path, "re")) != NULL) {
		if (fgets(driver, sizeof(driver), f) == NULL)
			driver[0] = '\0';
		driver[strcspn(driver, "\n")] = '\0';
		fclose(f);
	}
	if (strcmp(driver, "haltpoll") == 0) {
		snprintf(why, len, "the cpuidle driver is haltpoll (a virtual machine, whose halt leaves waking to the "
		                   "hypervisor): idle CPUs poll while it is held");
		return 0;
	}
	snprintf(why, len, "the cpuidle driver is %s: shallow idle states stay allowed", driver[0] ? driver : "unknown");
	return GOV_PM_QOS_SHALLOW_US;
}

void
gov_pm_qos_free(struct gov_pm_qos *q)
{
	if (q == NULL)
		return;
	gov_pm_qos_release(q);
	free(q->cpus);
	free(q->dma_path);
	free(q->sysfs_root);
	free(q);
}

/* ---- real time ------------------------------------------------------------- */

/* Written before the handler is installed, read in it: lock-free atomics are
 * async-signal-safe. */
static atomic_ulong demotions;
static atomic_ulong bound_soft_us, bound_hard_us;

static bool
is_realtime(int policy)
{
	policy &= ~SCHED_RESET_ON_FORK;
	return policy == SCHED_FIFO || policy == SCHED_RR;
}

/* The kernel sends SIGXCPU to the thread past the soft RLIMIT_RTTIME (see
 * governor.h). Only system calls (errno saved) and atomics here. */
static void
on_sigxcpu(int sig)
{
	struct sched_param param = { .sched_priority = 0 };
	struct rlimit rl = { atomic_load(&bound_soft_us), atomic_load(&bound_hard_us) };
	int saved = errno;

	(void)sig;
	if (is_realtime(sched_getscheduler(0)) && sched_setscheduler(0, SCHED_OTHER | SCHED_RESET_ON_FORK, &param) == 0)
		atomic_fetch_add(&demotions, 1);
	/* Undo the kernel's one-second raise, which can take the soft limit past
	 * the hard one: the next runaway would be killed instead of demoted. */
	if (rl.rlim_cur != 0)
		setrlimit(RLIMIT_RTTIME, &rl);
	errno = saved;
}

static bool
has_cap_sys_nice(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];

	memset(data, 0, sizeof(data));
	if (syscall(SYS_capget, &hdr, data) != 0)
		return false;
	return (data[CAP_TO_INDEX(CAP_SYS_NICE)].effective & CAP_TO_MASK(CAP_SYS_NICE)) != 0;
}

static bool
valid_priority(int priority)
{
	int lo = sched_get_priority_min(SCHED_FIFO), hi = sched_get_priority_max(SCHED_FIFO);

	return lo >= 0 && hi >= 0 && priority >= lo && priority <= hi && priority > 0;
}

bool
gov_realtime_possible(int priority)
{
	struct rlimit rl;

	if (!valid_priority(priority))
		return false;
	if (has_cap_sys_nice())
		return true;
	if (getrlimit(RLIMIT_RTPRIO, &rl) != 0)
		return false;
	return rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)priority;
}

static int
refused(int priority, char **cause)
{
	struct rlimit rl = { 0, 0 };
	char now[32] = "?";

	if (getrlimit(RLIMIT_RTPRIO, &rl) == 0)
		snprintf(now, sizeof(now), rl.rlim_cur == RLIM_INFINITY ? "unlimited" : "%lu", (unsigned long)rl.rlim_cur);
	set_cause(cause,
	          "SCHED_FIFO priority %d: %s (EPERM): grant CAP_SYS_NICE (systemd: AmbientCapabilities=CAP_SYS_NICE) "
	          "or set RLIMIT_RTPRIO to at least %d (systemd: LimitRTPRIO=%d; it is %s)%s",
	          priority, strerror(EPERM), priority, priority, now,
	          has_cap_sys_nice() ? "; CAP_SYS_NICE is held, so the cgroup may lack RT runtime (cpu.rt_runtime_us)" : "");
	return -EPERM;
}

int
gov_realtime_enter(int priority, char **cause)
{
	struct sched_param param = { .sched_priority = priority };
	sigset_t xcpu;
	int err;

	if (!valid_priority(priority)) {
		set_cause(cause, "SCHED_FIFO priority %d is outside 1..%d", priority, sched_get_priority_max(SCHED_FIFO));
		return -EINVAL;
	}
	if (sched_setscheduler(0, SCHED_FIFO | SCHED_RESET_ON_FORK, &param) != 0) {
		if ((err = errno) == EPERM)
			return refused(priority, cause);
		set_cause(cause, "SCHED_FIFO priority %d: %s", priority, strerror(err));
		return -err;
	}
	/* The bound's demotion needs SIGXCPU delivered to this thread. */
	sigemptyset(&xcpu);
	sigaddset(&xcpu, SIGXCPU);
	pthread_sigmask(SIG_UNBLOCK, &xcpu, NULL);
	return 0;
}

int
gov_realtime_leave(void)
{
	struct sched_param param = { .sched_priority = 0 };
	int policy = sched_getscheduler(0);

	if (policy < 0)
		return -errno;
	/* Clearing SCHED_RESET_ON_FORK needs CAP_SYS_NICE: keep it as it is. */
	if (sched_setscheduler(0, SCHED_OTHER | (policy & SCHED_RESET_ON_FORK), &param) != 0)
		return -errno;
	return 0;
}

int
gov_realtime_bound(unsigned long rttime_us, char **cause)
{
	struct rlimit rl = { rttime_us, 2 * rttime_us }, old = { 0, 0 };
	struct sigaction sa;
	int err;

	if (rttime_us == 0 || rttime_us > (unsigned long)RLIM_INFINITY / 2 - 1) {
		set_cause(cause, "RLIMIT_RTTIME of %lu us is out of range", rttime_us);
		return -EINVAL;
	}
	atomic_store(&bound_soft_us, rttime_us);
	atomic_store(&bound_hard_us, 2 * rttime_us);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_sigxcpu;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	/* The handler first: SIGXCPU's default action kills the process. */
	if (sigaction(SIGXCPU, &sa, NULL) != 0) {
		err = errno;
		set_cause(cause, "SIGXCPU handler: %s", strerror(err));
		return -err;
	}
	if (setrlimit(RLIMIT_RTTIME, &rl) != 0) {
		err = errno;
		getrlimit(RLIMIT_RTTIME, &old);
		set_cause(cause, "RLIMIT_RTTIME soft %lu us, hard %lu us: %s (hard limit now %lu); raise it with "
		          "systemd's LimitRTTIME= or grant CAP_SYS_RESOURCE", rttime_us, 2 * rttime_us, strerror(err),
		          (unsigned long)old.rlim_max);
		return -err;
	}
	return 0;
}

unsigned long
gov_realtime_demotions(void)
{
	return atomic_load(&demotions);
}
