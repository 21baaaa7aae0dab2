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
	GOV_CAPACITY_SYSFS,    /* cpu_capacity (arm64 / arm) */
	GOV_CAPACITY_FREQUENCY, /* ratio of maximum frequencies */
	GOV_CAPACITY_UNIFORM,  /* one kind of CPU: all 1024 */
};

struct gov_cluster {
	unsigned id;
	char name[GOV_NAME];         /* "cluster0" ... in efficiency order */
	char model[GOV_NAME];        /* CPU model from hwloc, when known */
	hwloc_bitmap_t cpuset;
	unsigned ncpus;
	unsigned capacity;            /* relative performance per CPU, largest = 1024 */
	enum gov_capacity_source capacity_source;
	int efficiency;               /* hwloc CPU-kind efficiency rank (0 = most efficient), -1 unknown */
	/* cpufreq: the policies covering this cluster (one per cluster on Arm,
	 * one per CPU with intel_pstate). npolicies == 0: no cpufreq. */
	unsigned npolicies;
	unsigned policies[GOV_MAX_POLICIES];
	char driver[GOV_NAME];
	char governor[GOV_NAME];      /* of the first policy */
	char governors[256];          /* available governors */
	bool has_userspace;
	unsigned nfreqs;              /* 0: continuous range (e.g. intel_pstate) */
	unsigned long freqs_khz[GOV_MAX_FREQS]; /* ascending */
	unsigned long hw_min_khz, hw_max_khz;   /* cpuinfo_{min,max}_freq */
	unsigned long min_khz, max_khz, cur_khz; /* scaling_{min,max,cur}_freq */
};

struct gov_gpu {
	char name[GOV_NAME];          /* devfreq device, e.g. "57000000.gpu" */
	char path[GOV_PATH];          /* /sys/class/devfreq/NAME */
	char governor[GOV_NAME];
	char governors[256];
	bool has_userspace;
	unsigned nfreqs;
	unsigned long freqs_hz[GOV_MAX_FREQS];
	unsigned long min_hz, max_hz, cur_hz;
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

#endif
