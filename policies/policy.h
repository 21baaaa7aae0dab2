/* SPDX-License-Identifier: MIT */
/* policies — meeting budgets: policy files, operating-point tables, latency
 * and energy prediction, selection, feedback and the shared-cluster
 * frequency rule.
 *
 * An operating point is (active groups g, placement, threads, frequency). The
 * placements and their frequencies come from the governor (or from a
 * simulated platform file), the per-g facts from the dnn model. This module
 * measures nothing itself: calibration calls back into the caller, which runs
 * the model (gearboxd, `gearbox pareto`) or a platform model (`gearbox
 * simulate`). It never touches sockets.
 *
 * See gearbox.policy(5) for the policy file keys and docs/policies.md for the
 * rules (prediction, feedback, hysteresis, one frequency per cluster).
 */
#ifndef GEARBOX_POLICIES_POLICY_H
#define GEARBOX_POLICIES_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#define POL_MAX_GROUPS 64
#define POL_MAX_PLACES 16
#define POL_MAX_FREQS 64
#define POL_MAX_THREADS 64
#define POL_NAME 64

struct dnn_model;
struct gov_platform;

/* ---- policy files --------------------------------------------------------- */

enum pol_objective {
	POL_OBJECTIVE_ACCURACY, /* best accuracy that fits the budget (default) */
	POL_OBJECTIVE_LATENCY,  /* fastest point that fits (and keeps the accuracy floor) */
	POL_OBJECTIVE_ENERGY,   /* least energy that fits */
};

/* Which budget is kept longest when no point meets them all. */
enum pol_constraint {
	POL_KEEP_DEADLINE,
	POL_KEEP_ENERGY,
	POL_KEEP_ACCURACY,
};

/* How the groups are chosen: the predictor with feedback, a fixed g, or the
 * moving-average step controller kept as a baseline for bench/adaptation. */
enum pol_controller {
	POL_CONTROLLER_ADAPTIVE,
	POL_CONTROLLER_FIXED,
	POL_CONTROLLER_STEP,
};

/* Everything a decision needs from a policy, with per-model overrides applied
 * (pol_policy_resolve). Plain data: copied into each request. */
struct pol_params {
	char name[POL_NAME];
	enum pol_objective objective;
	enum pol_constraint keep_first;
	enum pol_controller controller;
	double margin;           /* predicted latency/energy x (1 + margin) must fit */
	double min_accuracy;     /* floor on top of the client's, 0 = none */
	unsigned min_groups, max_groups; /* 0 = no limit */
	unsigned fixed_groups;   /* controller = fixed */
	char placements[256];    /* allowed placements: "all", or words: cpu opencl gpu clusterN opencl:N */
	unsigned max_threads;    /* 0 = all CPUs of the cluster */
	unsigned long min_khz, max_khz; /* allowed frequencies, 0 = no limit */
	double power_cap_w;      /* points drawing more are excluded, 0 = none */
	bool dvfs;               /* may gearboxd set frequencies */
	unsigned calibration_runs; /* per measured point (median) */
	bool calibration_cache;
	unsigned window;         /* feedback averaging window (requests) */
	double hysteresis;       /* extra slack needed before moving to a better point */
	double max_slowdown;     /* clamp on one measured/predicted ratio */
};

#define POL_MAX_OVERRIDE_KEYS 16
struct pol_model_override {
	char model[POL_NAME];
	unsigned nkeys;          /* the [model NAME] entries, validated at load */
	char keys[POL_MAX_OVERRIDE_KEYS][32];
	char values[POL_MAX_OVERRIDE_KEYS][256];
};

struct pol_policy {
	char path[512];
	struct pol_params params;
	unsigned noverrides;
	struct pol_model_override *overrides;
};

/* The built-in defaults (what default.conf says). */
void pol_params_defaults(struct pol_params *p, const char *name);
/* Parse one policy file. Unknown sections and keys and bad values are refused
 * with "file:line: ...". The policy is named after the file (basename without
 * .conf). 0, or -1 with *cause. */
int pol_policy_load(const char *path, struct pol_policy *policy, char **cause);
void pol_policy_clear(struct pol_policy *policy);
/* The parameters for one model: the [policy] section with that model's
 * [model NAME] section on top. */
void pol_policy_resolve(const struct pol_policy *policy, const char *model, struct pol_params *out);

/* A set of named policies: the shipped ones (datadir) overridden file by file
 * by the administrator's (etcdir). Loading stops at the first bad file and
 * keeps nothing, so a reload can keep the old set. */
struct pol_set {
	unsigned n;
	struct pol_policy *policies;
};
/* The administrator's policies: SYSCONFDIR/gearbox/policies (configure's --sysconfdir). */
#ifndef GEARBOX_SYSCONFDIR
#define GEARBOX_SYSCONFDIR "/etc/gearbox" /* only builds outside Makefile.am (the fuzz harnesses) */
#endif
#define POL_DEFAULT_ETCDIR GEARBOX_SYSCONFDIR "/policies"
int pol_set_load(struct pol_set *set, const char *datadir, const char *etcdir, char **cause);
void pol_set_clear(struct pol_set *set);
const struct pol_policy *pol_set_find(const struct pol_set *set, const char *name);
/* The folder of shipped policies: $GEARBOX_POLICY_DIR or the installed one. */
const char *pol_shipped_dir(void);

const char *pol_objective_name(enum pol_objective o);
const char *pol_controller_name(enum pol_controller c);
const char *pol_constraint_name(enum pol_constraint c);

/* ---- placements and the model ---------------------------------------------- */

enum pol_place_kind {
	POL_PLACE_CPU,    /* a CPU cluster */
	POL_PLACE_OPENCL, /* an OpenCL device (GPU, or PoCL's CPU device) */
};

struct pol_place {
	enum pol_place_kind kind;
	char name[POL_NAME];     /* "cluster1", "opencl:0" */
	unsigned index;          /* cluster id, or OpenCL device index */
	bool is_gpu;
	unsigned max_threads;    /* CPUs of the cluster; 1 for a device */
	unsigned capacity;       /* relative performance per CPU, largest = 1024 */
	/* Frequencies a point may use (kHz, ascending). nfreqs == 1 with
	 * freqs_khz[0] == 0: not controllable, runs at whatever it runs at. */
	unsigned nfreqs;
	unsigned long freqs_khz[POL_MAX_FREQS];
	bool dvfs;               /* the frequency can be set */
	/* Power of one busy CPU (or the whole device) at each frequency, watts,
	 * and where it came from ("kernel-em", "table", "estimate", "simulated"). */
	double busy_w[POL_MAX_FREQS];
	char power_source[32];
	/* Left out of every table: the device failed (lost, out of memory, its
	 * kernels did not build). Set by the caller at run time. */
	bool disabled;
	/* A cluster split into one placement per CPU (gearboxd.conf `split`):
	 * this placement is CPU `cpu` of cluster `index` alone, named
	 * "clusterN:cpuM"; policies naming the cluster allow it. */
	bool single_cpu;
	unsigned cpu;
	char cluster[POL_NAME];
};

/* The placement whose clock p shares: the first placement of the same
 * cluster (clusters split per CPU keep one frequency), else p itself. */
unsigned pol_place_domain(const struct pol_place *places, unsigned p);
/* Replace the CPU placements of the clusters named in `which` ("all", or
 * names separated by spaces or commas) with one placement per CPU. Returns
 * the new count (at most max), or 0 with *cause when a name is no cluster. */
unsigned pol_places_split(struct pol_place *places, unsigned n, unsigned max, const char *which,
                          const struct gov_platform *p, char **cause);

/* Per-g facts of a model, from the dnn module or written by a test. */
struct pol_model {
	char name[POL_NAME];
	unsigned groups;
	double accuracy[POL_MAX_GROUPS + 1];  /* [g], negative = unknown */
	double macs[POL_MAX_GROUPS + 1];      /* [g] multiply-accumulates */
	uint64_t file_hash;      /* FNV-1a of the model file's bytes, 0 = not known */
	uint64_t plan_hash;      /* the per-layer plans its placements run under (their contents and where
	                          * each runs; gearboxd's plans.c), 0 = none: part of the calibration's key */
};

void pol_model_from_dnn(struct pol_model *m, const struct dnn_model *model);
/* The CPU clusters of a discovered platform as placements (OpenCL devices
 * are added by the caller when it can run the model there). */
unsigned pol_places_from_platform(struct pol_place *places, unsigned max, const struct gov_platform *p);
/* Append the platform's OpenCL devices after the n places already there
 * ("opencl:N", one "thread": the device runs the whole inference). A device of
 * CPU type is taken to draw what all the CPUs draw busy; a GPU, for want of a
 * GPU power model, what the largest cluster draws with all its CPUs busy
 * (power_source "estimate"). Returns the new count. */
unsigned pol_places_add_opencl(struct pol_place *places, unsigned n, unsigned max, const struct gov_platform *p);
/* What runs `model` at a placement with `threads` threads: the fast CPU
 * kernels on a pool bound to the whole cluster, or a context on `device`
 * (the placement's OpenCL device, opened by the caller, which keeps it). */
struct dnn_engine;
struct dnn_cl;
/* The CPUs a CPU placement runs on: its one CPU, or its cluster's (free
 * with hwloc_bitmap_free). */
struct hwloc_bitmap_s; /* hwloc_bitmap_t */
struct hwloc_bitmap_s *pol_place_cpuset(const struct pol_place *place, const struct gov_platform *p);
struct dnn_engine *pol_place_engine(const struct pol_place *place, const struct gov_platform *p,
                                    const struct dnn_model *model, unsigned threads, struct dnn_cl *device,
                                    char **cause);

/* ---- operating points and prediction ----------------------------------------- */

struct pol_point {
	unsigned groups;
	unsigned place;          /* index into the places */
	unsigned threads;
	unsigned freq;           /* index into the place's freqs_khz */
	unsigned long khz;
	double accuracy;         /* negative = unknown */
	double latency_us;       /* predicted, with the current interference factor */
	double tail_us;          /* the slow end of what it takes (about the 95th percentile), 0 = unknown:
	                            deadlines are checked against it when known */
	double energy_uj;        /* predicted */
	double power_w;
};

/* A measured latency (µs) at one point, for calibration. */
typedef int pol_measure_fn(void *ctx, const struct pol_point *point, double *latency_us, char **cause);

/* Latency model of one (placement, threads) pair at the frequency it was
 * measured at: t(g) = (fixed_us + us_per_mmac * macs(g) / 1e6), scaled by
 * f_measured / f for another frequency. */
struct pol_fit {
	bool measured;           /* from a measurement of this pair */
	double fixed_us, us_per_mmac;
	unsigned long khz;       /* frequency it was measured at, 0 = unknown */
};

/* What a calibration was measured with besides the model and the
 * placements: the build and the machine. Part of the cache key, and kept
 * readable in the cache file so that a refusal can say what differed. */
struct pol_identity {
	char version[32];        /* gearbox's version */
	char flavour[64];        /* the build: "plain", "asan+ubsan" */
	char kernels[64];        /* CPU kernel family and the ISA it runs: "fast/avx2" */
	char cpu[128];           /* CPU model ("model name" in /proc/cpuinfo) */
};

/* This process's identity. */
void pol_identity_get(struct pol_identity *id);

struct pol_predictor {
	struct pol_model model;
	unsigned nplaces;
	struct pol_place places[POL_MAX_PLACES];
	struct pol_fit fit[POL_MAX_PLACES][POL_MAX_THREADS + 1];
	struct pol_identity identity;
	char key[128];           /* fingerprint of all the above but the fits, for the cache */
	unsigned measurements;   /* points measured by the last calibration */
};

/* The key covers the model (name, per-g MACs, file hash), the placements,
 * and this process's identity (pol_identity_get). */
void pol_predictor_init(struct pol_predictor *pr, const struct pol_model *model, const struct pol_place *places,
                        unsigned nplaces);
/* Take another identity (tests: a calibration from another build or CPU)
 * and rebuild the key. */
void pol_predictor_set_identity(struct pol_predictor *pr, const struct pol_identity *id);
/* Measure the calibration subset (per placement: g=1 and g=G on one thread,
 * g=G on all threads, at the highest allowed frequency; each point the median
 * of `runs` after one warm-up run), fit, and extrapolate
 * every other (placement, threads, frequency). progress (may be NULL) is told
 * about each measurement. */
int pol_predictor_calibrate(struct pol_predictor *pr, unsigned runs, pol_measure_fn *measure, void *ctx,
                            void (*progress)(void *ctx, const struct pol_point *pt, double us), char **cause);
/* Load / save the fit (JSON) from a cache folder; load fails (returns -1, no
 * cause) when the file is missing or was made for another model, model file,
 * platform, CPU, gearbox version, build or kernel ISA. */
int pol_predictor_load(struct pol_predictor *pr, const char *cache_dir);
/* pol_predictor_load that says why a file it found was not used: *why (why
 * may be NULL) is set to a sentence naming the file and what differed ("...
 * was made by gearbox 0.1.0 asan+ubsan; this is gearbox 0.1.0 plain"), to be
 * freed; it stays NULL when there was no file (or on success). */
int pol_predictor_load_why(struct pol_predictor *pr, const char *cache_dir, char **why);
int pol_predictor_save(const struct pol_predictor *pr, const char *cache_dir, char **cause);
/* The default cache folder: $GEARBOX_CACHE_DIR, $CACHE_DIRECTORY (systemd),
 * $XDG_CACHE_HOME/gearbox, ~/.cache/gearbox. */
const char *pol_cache_dir(char *buf, size_t size);
/* Predicted latency of a point without interference. */
double pol_predict_us(const struct pol_predictor *pr, unsigned groups, unsigned place, unsigned threads,
                      unsigned freq);

/* ---- the table, selection and the Pareto front -------------------------------- */

/* Interference per placement: measured/predicted latency, averaged over the
 * policy's window. 1 = as calibrated. */
/* What measurements taught us beyond the calibration: factor[p][t], the
 * ratio of measured to calibrated latency for t threads on placement p. It
 * follows each thread count's own measurements (so a systematic error, such
 * as a second thread competing with the daemon's loop, is learnt where it
 * is), other thread counts of the same placement take half of each change
 * (interference from other work slows them all), and the factors of unused
 * placements relax back to 1. */
struct pol_feedback {
	double factor[POL_MAX_PLACES][POL_MAX_THREADS + 1];
	double energy_factor[POL_MAX_PLACES];
	unsigned samples[POL_MAX_PLACES];
};
void pol_feedback_init(struct pol_feedback *fb);
/* Feed one measurement (latency µs; energy µJ from a sensor, or < 0 when it
 * was modelled) taken at point pt, whose uncorrected prediction was pred_us. */
void pol_feedback_update(struct pol_feedback *fb, const struct pol_params *params, const struct pol_point *pt,
                         double pred_us, double measured_us, double measured_uj, double pred_uj);

/* Frequencies other users of a cluster hold it at: a cluster runs at the
 * highest frequency any of its current users needs, so a decision may only
 * use frequencies at or above floor_khz[place] (0 = no floor). */
struct pol_freq_floor {
	unsigned long floor_khz[POL_MAX_PLACES];
};

/* The shared-cluster rule: a cluster has one frequency, and it runs at the
 * highest frequency that any session using it voted for in its last request
 * (votes expire after ttl_ns without requests). A session therefore chooses
 * among frequencies at or above what the others hold (pol_votes_floor): it
 * can raise the clock for everyone, never lower it under someone else; the
 * energy it is charged is predicted at the frequency it will really get. */
#define POL_MAX_VOTES 256
struct pol_votes {
	unsigned n;
	struct {
		uint64_t owner;
		unsigned place;
		unsigned long khz;
		uint64_t expires_ns;
	} v[POL_MAX_VOTES];
};
void pol_votes_cast(struct pol_votes *votes, uint64_t owner, unsigned place, unsigned long khz, uint64_t now_ns,
                    uint64_t ttl_ns);
void pol_votes_drop(struct pol_votes *votes, uint64_t owner);
/* What everyone but `owner` holds each place at. */
void pol_votes_floor(const struct pol_votes *votes, uint64_t owner, uint64_t now_ns, struct pol_freq_floor *floor);
/* The frequency a place must run at now (0: nobody holds it). */
unsigned long pol_votes_level(const struct pol_votes *votes, unsigned place, uint64_t now_ns);

/* Whether a policy's `placements` list ("all", or words: cpu opencl gpu
 * clusterN opencl:N) allows a placement. */
bool pol_place_allowed(const struct pol_place *pl, const char *placements);
/* How many points pol_table_build can write at most for this predictor:
 * every placement, thread count, frequency and g. */
unsigned pol_table_capacity(const struct pol_predictor *pr);
/* Every allowed point with its predictions. Returns the count (<= max). */
unsigned pol_table_build(const struct pol_predictor *pr, const struct pol_params *params,
                         const struct pol_feedback *fb, const struct pol_freq_floor *floor, struct pol_point *points,
                         unsigned max);

struct pol_budget {
	double deadline_us;      /* time left, 0 = none */
	double energy_uj;        /* 0 = none */
	double min_accuracy;     /* 0 = none */
};

/* What the previous request of the same session ran, for hysteresis and the
 * step controller. */
struct pol_session {
	bool have_last;
	struct pol_point last;
	unsigned step_groups;    /* step controller: current g */
	double window_us[64];
	unsigned nwindow;
};

struct pol_choice {
	struct pol_point point;
	bool feasible;
	char reason[200];        /* why infeasible */
};

/* Choose the point that maximises the policy's objective within the budget
 * (with the margin and hysteresis). If nothing fits, the closest point by the
 * policy's keep order, with the reason. */
int pol_select(const struct pol_point *points, unsigned n, const struct pol_params *params,
               const struct pol_budget *budget, const struct pol_session *session, struct pol_choice *choice);
/* Tell the session state what ran and how long it took (step controller). */
void pol_session_record(struct pol_session *s, const struct pol_params *params, const struct pol_point *pt,
                        double latency_us, double deadline_us);

/* ---- simulated platforms (`gearbox simulate`) ------------------------------------
 * A platform model: per placement, how many MACs a unit retires per cycle, a
 * fixed cost, the parallel fraction and a power table. The ground truth the
 * simulator runs the real policy code against; every figure it gives is
 * labelled simulated. Files: policies/platforms/NAME.conf. */
struct pol_sim_place {
	double macs_per_cycle;   /* per CPU (or per device), achieved */
	double fixed_us;         /* per inference at the highest frequency */
	double parallel;         /* Amdahl parallel fraction for threads */
	double transfer_us;      /* per inference, not scaled by frequency (devices) */
};

struct pol_sim {
	char name[128];
	unsigned nplaces;
	struct pol_place places[POL_MAX_PLACES];
	struct pol_sim_place sim[POL_MAX_PLACES];
};

/* "xu3", "nano", a shipped platform name or a file path. */
int pol_sim_load(const char *what, struct pol_sim *sim, char **cause);
/* The true latency of a point with `load` (0..1: share of the placement busy
 * with other work). */
double pol_sim_latency(const struct pol_sim *sim, const struct pol_model *model, const struct pol_point *pt,
                       double load);

/* A co-runner load trace: CSV lines "time_s,placement,load" (placement a name
 * or "all"; load 0..1), a step function in time. */
struct pol_trace {
	unsigned n;
	struct {
		double t;
		char place[POL_NAME];
		double load;
	} *rows;
};
int pol_trace_load(const char *path, struct pol_trace *trace, char **cause);
void pol_trace_free(struct pol_trace *trace);
double pol_trace_load_at(const struct pol_trace *trace, double t, const char *place);

/* Points not dominated in (accuracy up, latency down, energy down), sorted by
 * latency. Returns the count written to front (<= n). */
unsigned pol_pareto(const struct pol_point *points, unsigned n, struct pol_point *front);

#endif
