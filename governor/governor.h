/* SPDX-License-Identifier: MIT */
/* governor — the platform: CPU clusters and their DVFS, devfreq GPUs, OpenCL
 * devices and energy sources; applying a frequency and putting the machine
 * back as it was.
 *
 * This module knows nothing about DNNs. Every path it reads is under /sys, so
 * tests run it against generated testbeds with umockdev (and HWLOC_FSROOT for
 * hwloc); see tests/platforms/.
 */
#ifndef GEARBOX_GOVERNOR_H
#define GEARBOX_GOVERNOR_H

#include <stdbool.h>
#include <stdint.h>

#include <hwloc.h>

#define GOV_MAX_FREQS 64
#define GOV_MAX_POLICIES 256
#define GOV_NAME 64
#define GOV_PATH 320

/* Where a cluster's relative capacity came from. */
enum gov_capacity_source {
	GOV_CAPACITY_SYSFS,    /* cpu_capacity (arm64 / arm): the largest of its CPUs' */
	GOV_CAPACITY_FREQUENCY, /* ratio of maximum frequencies */
	GOV_CAPACITY_UNIFORM,  /* one kind of CPU: all 1024 */
};

/* A frequency or limit of 0 is unknown (its file is missing or unreadable):
 * `gearbox platform` prints "unknown" and JSON null, never 0. */
#define GOV_MAX_BOOST 8

/* Where a cluster's cpufreq policies live. */
enum gov_cpufreq_layout {
	GOV_CPUFREQ_POLICY,   /* cpufreq/policyN (kernels since 4.3) */
	GOV_CPUFREQ_PER_CPU,  /* cpuN/cpufreq only (older and many vendor kernels) */
};

struct gov_cluster {
	unsigned id;
	char name[GOV_NAME];         /* "cluster0" ... in efficiency order */
	char model[GOV_NAME];        /* CPU model ("Cortex-A715/Cortex-A710", "Intel(R) ..."), "" when unknown */
	char kind[GOV_NAME];         /* what told its CPUs apart: "cpu-part", "core-type", "base-frequency",
	                              * "cpu_capacity", or "" (one kind) */
	hwloc_bitmap_t cpuset;
	unsigned ncpus;
	unsigned capacity;            /* relative performance per CPU, largest = 1024 */
	enum gov_capacity_source capacity_source;
	int efficiency;               /* rank of its capacity among the clusters' (0 = least capable, most efficient) */
	/* cpufreq: the policies covering this cluster (one per cluster on Arm,
	 * one per CPU with intel_pstate or cppc). npolicies == 0: no cpufreq. */
	unsigned npolicies;
	unsigned policies[GOV_MAX_POLICIES]; /* policy N is cpufreq/policyN, or cpuN/cpufreq */
	enum gov_cpufreq_layout layout;
	char driver[GOV_NAME];
	char governor[GOV_NAME];      /* of the first policy */
	char governors[256];          /* available governors */
	bool has_userspace;
	bool has_setspeed;            /* scaling_setspeed exists */
	unsigned nfreqs;              /* 0: continuous range (e.g. intel_pstate, cppc) */
	unsigned long freqs_khz[GOV_MAX_FREQS]; /* ascending, boost frequencies included */
	unsigned nboost;
	unsigned long boost_khz[GOV_MAX_BOOST]; /* scaling_boost_frequencies */
	int boost;                    /* cpufreq/boost or the policy's boost: 1 on, 0 off, -1 unknown */
	unsigned long hw_min_khz, hw_max_khz;   /* cpuinfo_{min,max}_freq (min and max over its policies) */
	unsigned long min_khz, max_khz, cur_khz; /* scaling_{min,max,cur}_freq of the first policy */
};

struct gov_gpu {
	char name[GOV_NAME];          /* devfreq device, e.g. "57000000.gpu" */
	char path[GOV_PATH];          /* /sys/class/devfreq/NAME */
	char match[128];              /* what made it a GPU: "compatible arm,mali-t628", "driver panfrost", ... */
	char governor[GOV_NAME];
	char governors[256];
	bool has_userspace;
	unsigned nfreqs;
	unsigned long freqs_hz[GOV_MAX_FREQS];
	unsigned long min_hz, max_hz, cur_hz; /* 0: unknown */
	int opencl_device;            /* index in gov_platform.opencl, -1 if unmatched */
};

struct gov_opencl_device {
	char platform[128];
	char name[128];
	char type[16];                /* "gpu", "cpu", "accelerator", "other" */
	unsigned platform_index, device_index;
	unsigned compute_units;
	uint64_t global_mem_bytes;
};

/* What an energy reading covers. */
enum gov_domain {
	GOV_DOMAIN_PACKAGE,  /* the whole CPU package / board input */
	GOV_DOMAIN_CLUSTER,  /* one CPU cluster (unit = cluster id) */
	GOV_DOMAIN_GPU,      /* a GPU (unit = gpu index, or -1) */
	GOV_DOMAIN_MEMORY,
	GOV_DOMAIN_CORES,    /* all CPU cores (RAPL core plane) */
	GOV_DOMAIN_OTHER,
};

enum gov_source_kind {
	GOV_SOURCE_RAPL,      /* powercap energy_uj counter, wraps at max_energy_range_uj */
	GOV_SOURCE_HWMON_ENERGY, /* hwmon energyN_input, microjoules */
	GOV_SOURCE_HWMON_POWER,  /* hwmon powerN_input, microwatts */
	GOV_SOURCE_HWMON_VI,  /* hwmon inN_input (mV) x currN_input (mA) */
	GOV_SOURCE_INA231,    /* Odroid XU3: sensor_W, watts */
	GOV_SOURCE_INA3221,   /* Jetson: in_powerN_input, milliwatts */
};

struct gov_energy_source {
	enum gov_source_kind kind;
	enum gov_domain domain;
	int unit;                     /* cluster id or gpu index for those domains, else -1 */
	char name[GOV_NAME];          /* e.g. "intel-rapl:0 package-0", "INA231 3-0040 sensor_arm" */
	char path[GOV_PATH];          /* the file read (energy or power; for V x I, the voltage) */
	char path2[GOV_PATH];         /* V x I: the current file; INA231: the enable file */
	uint64_t max_range_uj;        /* RAPL wrap-around */
};

/* Power model of one cluster, for units no sensor covers. */
enum gov_model_kind {
	GOV_MODEL_KERNEL_EM,  /* /sys/kernel/debug/energy_model */
	GOV_MODEL_TABLE,      /* given by the platform file (gov_platform_set_power_table) */
	GOV_MODEL_ESTIMATE,   /* capacity- and frequency-based estimate */
};

struct gov_power_model {
	enum gov_model_kind kind;
	unsigned npoints;
	unsigned long khz[GOV_MAX_FREQS];
	double watts_per_cpu[GOV_MAX_FREQS]; /* one busy CPU at that frequency */
};

struct gov_platform {
	unsigned nclusters;
	struct gov_cluster *clusters;
	struct gov_power_model *models; /* one per cluster */
	unsigned ngpus;
	struct gov_gpu *gpus;
	unsigned nopencl;
	struct gov_opencl_device *opencl;
	char *opencl_error;             /* why no OpenCL device was found, or NULL */
	unsigned nsources;
	struct gov_energy_source *sources;
	bool cpufreq;                   /* any cluster has cpufreq */
	hwloc_topology_t topology;
	char *state_dir;                /* where the saved state lives */
	int owner_pid;                  /* recorded with saved state (default: this process) */
};

/* Discover the platform. state_dir (NULL: GOV_DEFAULT_STATE_DIR, or the
 * GEARBOX_STATE_DIR environment variable) holds the state saved before the
 * first change. Returns NULL with *cause set only when hwloc cannot load a
 * topology at all; missing cpufreq, sensors or OpenCL are facts, not errors. */
#define GOV_DEFAULT_STATE_DIR "/run/gearbox"
struct gov_platform *gov_platform_discover(const char *state_dir, char **cause);
/* The same, with flags: GOV_DISCOVER_NO_OPENCL skips the OpenCL probe (no
 * device listed; opencl_error says it was not asked for). The probe runs in
 * a child process (governor/opencl.c): a driver that crashes or hangs is
 * reported in opencl_error, and this process never loads an ICD. */
#define GOV_DISCOVER_NO_OPENCL 1u
struct gov_platform *gov_platform_discover_flags(const char *state_dir, unsigned flags, char **cause);
void gov_platform_free(struct gov_platform *p);

const char *gov_domain_name(enum gov_domain d);
const char *gov_source_kind_name(enum gov_source_kind k);
const char *gov_model_kind_name(enum gov_model_kind k);
const char *gov_capacity_source_name(enum gov_capacity_source s);

/* Find a cluster by name ("cluster1"), by index ("1") or by a CPU it holds
 * ("cpu4"). Returns NULL when none matches. */
struct gov_cluster *gov_find_cluster(struct gov_platform *p, const char *what);
struct gov_gpu *gov_find_gpu(struct gov_platform *p, const char *what);

/* ---- energy --------------------------------------------------------------
 * A reading is either an energy counter (microjoules, monotonically growing
 * but for wrap-around) or an instantaneous power (microwatts). */
struct gov_reading {
	bool is_energy;
	uint64_t energy_uj;
	uint64_t power_uw;
};
int gov_energy_read(const struct gov_energy_source *s, struct gov_reading *r, char **cause);
/* Microjoules between two counter readings, handling one wrap-around. */
uint64_t gov_energy_delta_uj(const struct gov_energy_source *s, uint64_t before, uint64_t after);
/* Modelled power of `cpus` busy CPUs of a cluster at khz (watts). */
double gov_model_power(const struct gov_platform *p, unsigned cluster, unsigned long khz, unsigned cpus);
/* Replace a cluster's power model by a table (from a platform/policy file). */
int gov_platform_set_power_table(struct gov_platform *p, unsigned cluster, unsigned n, const unsigned long *khz,
                                 const double *watts_per_cpu, char **cause);

/* Read a platform file (INI, see governor/platform_file.c and gearbox(1)):
 * per-cluster power tables. Errors name file:line. */
int gov_platform_load_file(struct gov_platform *p, const char *path, char **cause);

/* The first `ncpus` CPUs of a cluster (all when ncpus is 0 or too large), for
 * binding inference threads with dnn_pool_create(). The caller frees it. */
hwloc_bitmap_t gov_cluster_cpuset(const struct gov_cluster *c, unsigned ncpus);

/* ---- control -------------------------------------------------------------
 * Each call saves the original governor and limits of what it touches (once,
 * in state_dir) before its first change. Errors name the path and errno and
 * leave the attributes as they were; the caller decides to go on without
 * DVFS. */
int gov_set_cluster_freq(struct gov_platform *p, struct gov_cluster *c, unsigned long khz, char **cause);
int gov_set_gpu_freq(struct gov_platform *p, struct gov_gpu *g, unsigned long hz, char **cause);
/* Put back everything saved and forget the saved state. Returns 0 (also when
 * nothing was saved), or -1 with *cause when something could not be put back
 * (the state file is then kept for a later attempt). */
int gov_restore(struct gov_platform *p, char **cause);
/* Is there saved state (e.g. left by a crash)? */
bool gov_has_saved_state(const struct gov_platform *p);
/* The pid recorded as owner of state saved from now on; 0 marks an operator's
 * hold (`gearbox platform set-freq`) that stays until `gearbox platform
 * restore`. */
void gov_set_state_owner(struct gov_platform *p, int pid);
/* At start: if saved state is left by an owner that no longer runs (a crash),
 * restore it. *recovered tells whether it did. */
int gov_recover_stale(struct gov_platform *p, bool *recovered, char **cause);

/* ---- latency: PM QoS and the real-time class -----------------------------
 * Deep CPU idle states take hundreds of microseconds to leave, and an
 * inference thread that sleeps between layers or requests pays that on every
 * wake-up; a PM QoS CPU-latency request keeps the idle governor (menu, teo)
 * out of states slower to leave than the limit.
 *
 * Two kernel interfaces (Documentation/power/pm_qos_interface.rst):
 *   - GOV_PM_QOS_RESUME_LATENCY: per CPU, sysfs
 *     devices/system/cpu/cpuN/power/pm_qos_resume_latency_us. Only the CPUs
 *     that run inference lose their idle states. The attribute reads "0" for
 *     no limit and "n/a" for a 0 us limit, so a request of 0 us is written as
 *     "n/a". Its value outlives the process: the old value of each CPU is
 *     recorded in the platform's saved state before the first write, so that
 *     gov_restore / gov_recover_stale put it back after a crash, and a release
 *     writes it back and drops it from the saved state.
 *   - GOV_PM_QOS_DMA_LATENCY: /dev/cpu_dma_latency, process-wide (all CPUs):
 *     the limit is written as a binary int32 and holds while the file is open,
 *     so the kernel drops it when the process dies.
 *   - GOV_PM_QOS_AUTO: per-CPU resume latency when the attribute exists and is
 *     writable for every CPU asked for, else the device, else nothing is held
 *     and the error says why for both.
 * One gov_pm_qos per CPU: two objects holding the same CPU would each restore
 * it on release. */
enum gov_pm_qos_mode {
	GOV_PM_QOS_AUTO,
	GOV_PM_QOS_DMA_LATENCY,
	GOV_PM_QOS_RESUME_LATENCY,
	GOV_PM_QOS_OFF,               /* acquire holds nothing (and succeeds) */
};

struct gov_pm_qos_config {
	enum gov_pm_qos_mode mode;
	const char *dma_latency_path; /* NULL: /dev/cpu_dma_latency */
	const char *sysfs_root;       /* NULL: "/sys" */
	/* Whose saved state (state_dir, owner pid) records the old per-CPU values
	 * for crash recovery; NULL: not recorded (the caller restores itself). */
	struct gov_platform *platform;
};

struct gov_pm_qos; /* opaque */

/* cfg NULL: AUTO with the default paths. NULL with *cause on a bad mode. */
struct gov_pm_qos *gov_pm_qos_new(const struct gov_pm_qos_config *cfg, char **cause);
/* Hold a resume latency of at most latency_us on `cpus` (the device ignores
 * cpus: it covers them all). Calling again adjusts: CPUs no longer given get
 * their old value back, and with AUTO the mechanism may change. Returns 0, or
 * a negative errno with *cause naming the file; after an error nothing is held. */
int gov_pm_qos_acquire(struct gov_pm_qos *q, hwloc_const_cpuset_t cpus, unsigned latency_us, char **cause);
void gov_pm_qos_release(struct gov_pm_qos *q); /* idempotent */
bool gov_pm_qos_held(const struct gov_pm_qos *q);
/* What is held now: GOV_PM_QOS_RESUME_LATENCY, GOV_PM_QOS_DMA_LATENCY, or
 * GOV_PM_QOS_OFF for nothing. */
enum gov_pm_qos_mode gov_pm_qos_mechanism(const struct gov_pm_qos *q);
void gov_pm_qos_free(struct gov_pm_qos *q);     /* releases; NULL is fine */

/* The limit worth holding on this machine, for a configuration that leaves
 * it to gearbox: GOV_PM_QOS_SHALLOW_US, which keeps shallow states (x86 C1,
 * Arm WFI) and forbids cluster power-down and package states, except under
 * the haltpoll cpuidle driver (a KVM guest), 0: its one state besides
 * polling is a halt that gives the virtual CPU back to the hypervisor. It
 * declares a 1 us exit latency, but waking takes the host's scheduler: on
 * the 2-vCPU development VM, at 50 requests/s, a reply took a median 78-87
 * us to reach a client asleep in halt (p99 399-818 us), and 33-79 us (p99
 * 52-157 us) with 0 held, which leaves idle
 * virtual CPUs polling. Reads devices/system/cpu/cpuidle/current_driver
 * under the sysfs root; why (len bytes) says which and why. */
#define GOV_PM_QOS_SHALLOW_US 10
unsigned gov_pm_qos_fitting_latency_us(const struct gov_pm_qos *q, char *why, size_t len);

/* Real time. gov_realtime_enter puts the calling thread (not the process) in
 * SCHED_FIFO at `priority` with SCHED_RESET_ON_FORK, so children start as
 * SCHED_OTHER, and unblocks SIGXCPU in it (see the bound below). Permission
 * needs CAP_SYS_NICE (systemd: AmbientCapabilities=CAP_SYS_NICE) or
 * RLIMIT_RTPRIO >= priority (systemd: LimitRTPRIO=); with RT group scheduling
 * the cgroup also needs cpu.rt_runtime_us > 0. Returns 0 or a negative errno
 * with *cause (EPERM says what to grant, EINVAL gives the valid range).
 * gov_realtime_leave puts the calling thread back in SCHED_OTHER (0 or
 * -errno). gov_realtime_possible says whether enter would be permitted, from
 * the capability and RLIMIT_RTPRIO, changing nothing (a cgroup without RT
 * runtime can still refuse).
 *
 * The bound. A SCHED_FIFO thread that never blocks starves every SCHED_OTHER
 * thread on its CPU. Two limits stop a runaway:
 *   - RLIMIT_RTTIME caps the CPU time an RT thread may use without blocking
 *     (a blocking system call resets its count). gov_realtime_bound sets it
 *     process-wide: soft = rttime_us, hard = 2 x rttime_us. At the soft limit
 *     the kernel sends SIGXCPU to the thread that ran over, and raises the soft
 *     limit by a second; at the hard limit it kills the process with SIGKILL.
 *   - The SIGXCPU handler installed by gov_realtime_bound demotes the thread
 *     it runs in (the one that ran over, as the kernel delivers it there while
 *     that thread does not block SIGXCPU) to SCHED_OTHER, counts the demotion
 *     (gov_realtime_demotions), and sets the soft limit back to rttime_us so
 *     that the next runaway is demoted too rather than killed. It calls only
 *     sched_getscheduler, sched_setscheduler and setrlimit, which are bare
 *     system calls, and atomics.
 *   - Independently, the kernel's RT throttling leaves SCHED_OTHER
 *     (period - runtime) of every sched_rt_period_us: by default
 *     /proc/sys/kernel/sched_rt_runtime_us = 950000 of 1000000, 50 ms a
 *     second; -1 turns that off, and then only RLIMIT_RTTIME is left.
 * A demoted thread stays SCHED_OTHER until it enters again. Returns 0 or a
 * negative errno with *cause (EPERM: the hard limit is below 2 x rttime_us
 * and raising it needs CAP_SYS_RESOURCE or systemd's LimitRTTIME=). */
int gov_realtime_enter(int priority, char **cause);
int gov_realtime_leave(void);
bool gov_realtime_possible(int priority);
int gov_realtime_bound(unsigned long rttime_us, char **cause);
unsigned long gov_realtime_demotions(void);

#endif
