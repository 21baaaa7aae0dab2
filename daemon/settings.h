/* SPDX-License-Identifier: MIT */
/* gearboxd's configuration file (INI):
 *
 *   [daemon]
 *   socket = /run/gearbox/gearboxd.sock
 *   models = /usr/share/gearbox/models    # a folder: every *.safetensors in it
 *   model = /opt/my.safetensors           # one more model (repeatable; empty: forget the earlier ones)
 *   policy = default                      # the policy of sessions that name none
 *   policies = SYSCONFDIR/gearbox/policies # administrator's policy files (override the shipped ones)
 *   margin = 0.10                         # overrides every policy's margin (optional)
 *   threads = 2                           # at most this many threads per request (0: all CPUs)
 *   opencl = yes                          # offer OpenCL devices as placements
 *   plan = yes                            # plan the sessions jointly (the tenant solver; needs lp_solve)
 *   plan_power_w = 0                      # the plan's power cap: the sessions' average power, summed (0: none)
 *   plan_memory_mib = 0                   # the plan's memory: each model's weights once, the sessions' buffers (0: none)
 *   split = cluster0                      # one placement per CPU of these clusters ("all")
 *   layer_plans = /var/lib/gearbox/plans  # per-layer plans (gearbox tune --out), a placement and thread count each
 *   realtime = auto                       # workers in SCHED_FIFO: auto (when permitted), yes, no
 *   realtime_priority = 10                # 1..99
 *   realtime_limit_ms = 1000              # an RT thread running this long without blocking drops to SCHED_OTHER
 *   realtime_share = 90                   # a worker busier than this % of the time leaves SCHED_FIFO until it is not
 *   realtime_below_ms = 50                # real time serves requests due within this (0: all); looser ones share the CPU
 *   lock_memory = auto                    # keep pages in RAM once touched (mlockall): auto (when permitted), yes, no
 *   warm_ahead = yes                      # before a periodic session's next request: yes (threads + a
 *                                         # throwaway run to warm the caches), threads, no
 *   pm_qos = auto                         # CPU latency request: auto, resume-latency, cpu-dma-latency, no
 *   pm_qos_latency_us = auto              # the idle-state exit latency allowed while held (auto: 10 us,
 *                                         # 0 in a virtual machine: gov_pm_qos_fitting_latency_us)
 *   pm_qos_release_s = 5                  # let go after this long without deadline requests
 *   pm_qos_device = /dev/cpu_dma_latency
 *   max_clients = 1024                    # connections in all (16 of them kept for root and the gearbox group)
 *   max_clients_per_uid = 64              # connections of one user (root and the gearbox group: max_clients)
 *   client_output_kib = 4096              # replies a client leaves unread before it is told and disconnected
 *   output_total_mib = 256                # the same, every client together
 *   input_total_mib = 64                  # incomplete frames of every client together
 *   frame_timeout_s = 10                  # an incomplete frame this old: disconnect
 *   idle_timeout_s = 600                  # a client without sessions silent this long: disconnect (0: never)
 *   admin_group = gearbox-admin           # besides root, may reload, calibrate, see and steer every session
 */
#ifndef GEARBOX_DAEMON_SETTINGS_H
#define GEARBOX_DAEMON_SETTINGS_H

#include <stdbool.h>

/* The administrator's folder (configure's --sysconfdir) over the vendor's
 * (the package's datadir); see config_files. */
#ifndef GEARBOX_SYSCONFDIR
#define GEARBOX_SYSCONFDIR "/etc/gearbox" /* only builds outside Makefile.am (the fuzz harnesses) */
#endif
#define GEARBOXD_CONFIG GEARBOX_SYSCONFDIR "/gearboxd.conf"
#define RESERVED_CLIENTS 16 /* of max_clients, kept for root and the gearbox group */
#define CONFIG_PM_QOS_LATENCY_AUTO (~0u) /* pm_qos_latency_us = auto */

struct config {
	char *socket;
	char **models;       /* files, folders expanded */
	unsigned nmodels;
	double margin;       /* < 0: each policy's own */
	unsigned threads;    /* 0: no limit beyond the policy's */
	char *policy;        /* default policy name */
	char *policy_dir;    /* /etc override folder */
	bool opencl;         /* offer OpenCL devices as placements */
	bool plan;           /* the tenant solver plans the sessions (daemon/plan.c) */
	double plan_power_w; /* the plan's power cap (W), 0: none */
	double plan_memory_mib; /* the plan's memory (MiB), 0: none */
	char *split;         /* clusters split per CPU, NULL: none */
	char *layer_plans;   /* folder of per-layer plans (plans.c), NULL: none */
	enum { CONFIG_REALTIME_AUTO, CONFIG_REALTIME_YES, CONFIG_REALTIME_NO } realtime;
	int realtime_priority;
	unsigned realtime_limit_ms;
	unsigned realtime_share;  /* percent, 20..100 (100: never leave it) */
	unsigned realtime_below_ms; /* real time for requests due within this (0: every request) */
	enum { CONFIG_LOCK_AUTO, CONFIG_LOCK_YES, CONFIG_LOCK_NO } lock_memory;
	enum { CONFIG_WARM_YES, CONFIG_WARM_THREADS, CONFIG_WARM_NO } warm_ahead;
	enum { CONFIG_PM_QOS_AUTO, CONFIG_PM_QOS_RESUME, CONFIG_PM_QOS_DMA, CONFIG_PM_QOS_NO } pm_qos;
	unsigned pm_qos_latency_us; /* CONFIG_PM_QOS_LATENCY_AUTO: what the machine needs */
	unsigned pm_qos_release_s;
	char *pm_qos_device;  /* NULL: /dev/cpu_dma_latency */
	unsigned max_clients, max_clients_per_uid;
	unsigned client_output_kib, output_total_mib, input_total_mib;
	unsigned frame_timeout_s, idle_timeout_s;
	char *admin_group;    /* NULL: root only */
};

void config_defaults(struct config *c);
/* Parse path into c (which keeps earlier values for keys the file lacks).
 * Returns 0, or -1 with *cause = "file:line: problem". */
int config_load(struct config *c, const char *path, char **cause);
/* Parse each of files[0..n) in order (later files' keys win); stops at the
 * first bad one. */
int config_load_files(struct config *c, char *const *files, unsigned n, char **cause);

/* The files the configuration is made of, in the order they apply, as
 * systemd-analyze cat-config lists them (gearboxd(8), CONFIGURATION):
 * ETC/gearboxd.conf, or VENDOR/gearboxd.conf when ETC has none; then every
 * *.conf of ETC/gearboxd.conf.d/ and VENDOR/gearboxd.conf.d/, sorted by file
 * name across both, a file in ETC masking the VENDOR file of the same name.
 * Files that do not exist are left out. Returns how many (*files: malloc'ed
 * paths, free with config_files_free). */
unsigned config_files(const char *etcdir, const char *vendordir, char ***files);
void config_files_free(char **files, unsigned n);
/* The administrator's folder: $GEARBOX_CONFIG_DIR or SYSCONFDIR/gearbox;
 * the vendor's: $GEARBOX_VENDOR_CONFIG_DIR or DATADIR/gearbox (tests set both). */
const char *config_etc_dir(void);
const char *config_vendor_dir(void);

/* Add every *.safetensors of a folder, sorted. */
int config_add_folder(struct config *c, const char *dir, char **cause);
void config_add_model(struct config *c, const char *path);
void config_free(struct config *c);

#endif
