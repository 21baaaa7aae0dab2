/* SPDX-License-Identifier: MIT */
/* gearbox tune: measure per-layer implementation candidates on this machine
 * and search for the fastest plan per active-group count g, under a
 * measured accuracy bound; write the plan file `gearbox model --plan` and
 * gearboxd load. */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/clock.h"
#include "common/dataset.h"
#include "common/plot.h"
#include "dnn/dnn.h"
#include "governor/governor.h"
#include "tools/gearbox/cli.h"
#include "policies/accuracy.h"
#include "tools/gearbox/tune_search.h"

enum search { SEARCH_RL, SEARCH_RANDOM, SEARCH_EXACT };
static const char *const search_names[] = { "rl", "random", "exact" };

struct tune_opts {
	const char *cluster, *groups, *calibration, *dataset, *out, *plot, *impls;
	const char *sensitivity; /* the accuracy predictor's first guess for the accuracy bound */
	hwloc_bitmap_t cpuset;
	unsigned long threads, episodes, runs, warmup, calib_count, val_limit;
	enum search search;
	double max_drop; /* points */
	bool json;
};

static void
tune_usage(FILE *out)
{
	fputs("Usage: gearbox tune MODEL [--cluster C | --cpuset LIST] [--threads N] [--groups all|g]\n"
	      "                    [--episodes N] [--search rl|random|exact] [--max-accuracy-drop P]\n"
	      "                    [--calibration IDX|random] [--calibration-count N] [--dataset DIR]\n"
	      "                    [--validation-limit N] [--impls LIST] [--runs N] [--warmup N]\n"
	      "                    --out PLAN [--json] [--plot FILE.png]\n"
	      "\n"
	      "Measures each layer's implementations (gemm: im2col + BLAS, direct, wino2/wino4: Winograd\n"
	      "F(2x2,3x3)/F(4x4,3x3), int8) on this machine, searches for the fastest plan per g and\n"
	      "writes it (docs/plan-format.md).\n"
	      "\n"
	      "  --cluster C            run on the first --threads CPUs of cluster C (see gearbox platform)\n"
	      "  --cpuset LIST          run on these CPUs\n"
	      "  --threads N            threads per inference (default 1)\n"
	      "  --groups all|g         which g to tune (default all)\n"
	      "  --episodes N           end-to-end measurements the rl/random search spends per g (default 100)\n"
	      "  --search S             rl (Q-learning, default), random, or exact (DP over the measured table)\n"
	      "  --max-accuracy-drop P  top-1 points int8 may cost at any g on the validation set (default 0.5)\n"
	      "  --calibration IDX      images that calibrate int8 scales (default: the dataset folder's\n"
	      "                         train-images-idx3-ubyte.gz); 'random': random inputs, for timing only\n"
	      "  --calibration-count N  calibration images (default 256)\n"
	      "  --dataset DIR          held-out validation set (the test set folder, as model eval)\n"
	      "  --validation-limit N   validation images (default 1000)\n"
	      "  --sensitivity FILE     per-layer sensitivity (made by gearbox accuracy): the accuracy bound's\n"
	      "                         first guess returns the layers it predicts cost most to fp32, then\n"
	      "                         measures as without it\n"
	      "  --impls LIST           candidates, comma separated (default gemm,direct,wino2,wino4,int8,\n"
	      "                         direct-nhwc,direct-blocked: the direct convolution in NHWC and blocked layouts)\n"
	      "  --runs N, --warmup N   timed runs per measurement (default 15) after warm-up runs (default 3)\n"
	      "  --json                 machine-readable output (keys in gearbox(1))\n"
	      "  --plot FILE.png        best plan so far (its table cost) against measurements spent, rl, random, exact\n"
	      "                         (all three are run for it)\n"
	      "The search's best plan and the table's optimum are measured again (3x --runs); the faster\n"
	      "goes into the plan file (plan_from in --json).\n",
	      out);
}

static int
parse_tune_opts(int argc, char **argv, struct tune_opts *o, const char **file)
{
	static const struct option longopts[] = {
		{ "cluster", required_argument, NULL, 'K' },     { "cpuset", required_argument, NULL, 'c' },
		{ "threads", required_argument, NULL, 't' },     { "groups", required_argument, NULL, 'g' },
		{ "episodes", required_argument, NULL, 'e' },    { "search", required_argument, NULL, 's' },
		{ "max-accuracy-drop", required_argument, NULL, 'a' }, { "calibration", required_argument, NULL, 'C' },
		{ "calibration-count", required_argument, NULL, 'N' }, { "dataset", required_argument, NULL, 'd' },
		{ "validation-limit", required_argument, NULL, 'V' }, { "impls", required_argument, NULL, 'I' },
		{ "runs", required_argument, NULL, 'r' },        { "warmup", required_argument, NULL, 'w' },
		{ "out", required_argument, NULL, 'o' },         { "json", no_argument, NULL, 'j' },
		{ "plot", required_argument, NULL, 'p' },        { "help", no_argument, NULL, 'h' },
		{ "sensitivity", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->threads = 1;
	o->episodes = 100;
	o->runs = 15;
	o->warmup = 3;
	o->calib_count = 256;
	o->val_limit = 1000;
	o->max_drop = 0.5;
	o->impls = "gemm,direct,wino2,wino4,int8,direct-nhwc,direct-blocked";
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'K': o->cluster = optarg; break;
		case 'c':
			hwloc_bitmap_free(o->cpuset);
			if ((o->cpuset = hwloc_bitmap_alloc()) == NULL || hwloc_bitmap_list_sscanf(o->cpuset, optarg) != 0 ||
			    hwloc_bitmap_iszero(o->cpuset)) {
				cli_error("--cpuset '%s' is not a CPU list such as 0-3 or 0,2", optarg);
				return -1;
			}
			break;
		case 't':
			if (cli_parse_uint(optarg, 1, 1024, &o->threads) != 0) {
				cli_error("--threads must be a number from 1 to 1024, not '%s'", optarg);
				return -1;
			}
			break;
		case 'g': o->groups = optarg; break;
		case 'e':
			if (cli_parse_uint(optarg, 1, 1000000, &o->episodes) != 0) {
				cli_error("--episodes must be a positive number, not '%s'", optarg);
				return -1;
			}
			break;
		case 's': {
			bool found = false;
			for (int k = 0; k < 3; k++)
				if (strcmp(optarg, search_names[k]) == 0) {
					o->search = (enum search)k;
					found = true;
				}
			if (!found) {
				cli_error("--search must be rl, random or exact, not '%s'", optarg);
				return -1;
			}
			break;
		}
		case 'a': {
			char *end;
			o->max_drop = strtod(optarg, &end);
			if (*optarg == '\0' || *end != '\0' || !(o->max_drop >= 0) || o->max_drop > 100) {
				cli_error("--max-accuracy-drop must be top-1 points from 0 to 100, not '%s'", optarg);
				return -1;
			}
			break;
		}
		case 'C': o->calibration = optarg; break;
		case 'N':
			if (cli_parse_uint(optarg, 1, 1000000, &o->calib_count) != 0) {
				cli_error("--calibration-count must be a positive number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'd': o->dataset = optarg; break;
		case 'V':
			if (cli_parse_uint(optarg, 1, 100000000, &o->val_limit) != 0) {
				cli_error("--validation-limit must be a positive number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'I': o->impls = optarg; break;
		case 'S': o->sensitivity = optarg; break;
		case 'r':
			if (cli_parse_uint(optarg, 1, 100000, &o->runs) != 0) {
				cli_error("--runs must be a positive number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'w':
			if (cli_parse_uint(optarg, 0, 100000, &o->warmup) != 0) {
				cli_error("--warmup must be a number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'o': o->out = optarg; break;
		case 'j': o->json = true; break;
		case 'p': o->plot = optarg; break;
		case 'h': tune_usage(stdout); exit(0);
		default: tune_usage(stderr); return -1;
		}
	}
	if (o->cluster != NULL && o->cpuset != NULL) {
		cli_error("give --cluster or --cpuset, not both");
		return -1;
	}
	if (optind + 1 != argc) {
		cli_error(optind == argc ? "missing MODEL" : "too many arguments (one MODEL expected)");
		return -1;
	}
	if (o->out == NULL) {
		cli_error("tune needs --out PLAN (the plan file to write)");
		return -1;
	}
	*file = argv[optind];
	return 0;
}

/* ------------------------------------------------------------------------ */

struct layer_slot {
	size_t index;                      /* model layer */
	unsigned n;                        /* candidates */
	enum dnn_impl impl[TS_MAX_CHOICES];
	enum dnn_layout layout[TS_MAX_CHOICES]; /* the layout each runs in */
};

/* A candidate: an implementation in a layout. */
struct kind {
	enum dnn_impl impl;
	enum dnn_layout layout;
};

static const char *
kind_name(enum dnn_impl impl, enum dnn_layout layout, char *buf, size_t size)
{
	if (layout == DNN_LAYOUT_NCHW)
		snprintf(buf, size, "%s", dnn_impl_name(impl));
	else
		snprintf(buf, size, "%s-%s", dnn_impl_name(impl), dnn_layout_name(layout));
	return buf;
}

struct tuner {
	const struct tune_opts *o;
	const struct dnn_model *m;
	struct dnn_engine *engine;
	struct dnn_lplan *plan;            /* the plan being built; the current g's entries are rewritten */
	unsigned g;
	struct layer_slot *slots;
	size_t nslots;
	float *input, *output;
	uint64_t *prof;
	unsigned measurements;
	bool progress;
	const char *phase;
	double t_start;
	const struct acc_sensitivity *sens; /* --sensitivity, NULL: none */
};

static int
apply(struct tuner *t, const unsigned *choice)
{
	char *cause = NULL;

	for (size_t s = 0; s < t->nslots; s++) {
		dnn_lplan_set(t->plan, t->m, t->g, t->slots[s].index,
		              choice != NULL ? t->slots[s].impl[choice[s]] : DNN_IMPL_AUTO);
		dnn_lplan_set_layout(t->plan, t->m, t->g, t->slots[s].index,
		                     choice != NULL ? t->slots[s].layout[choice[s]] : DNN_LAYOUT_NCHW);
	}
	if (dnn_engine_set_lplan(t->engine, t->plan, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	return 0;
}

static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Median end-to-end latency (µs) of the plan now set, over o->runs runs. */
static double
time_plan(struct tuner *t)
{
	double *v = malloc(t->o->runs * sizeof(double)), med;

	for (unsigned long k = 0; k < t->o->warmup; k++)
		dnn_engine_run(t->engine, t->g, t->input, t->output, NULL, NULL);
	for (unsigned long k = 0; k < t->o->runs; k++) {
		double t0 = monotonic_us();
		dnn_engine_run(t->engine, t->g, t->input, t->output, NULL, NULL);
		v[k] = monotonic_us() - t0;
	}
	qsort(v, t->o->runs, sizeof(double), cmp_double);
	med = v[t->o->runs / 2];
	free(v);
	t->measurements++;
	return med;
}

#define REMEASURE_ROUNDS 10

/* Plans measured again on the same terms: REMEASURE_ROUNDS rounds, each
 * running every plan (warm-up, then o->runs timed runs) in turn, in the
 * opposite order every other round, so that a slow spell of the machine
 * falls on all of them. out[k]: the median of plan k's runs; ratio[k]: the
 * median over the rounds of plan k's median in the round over the last
 * plan's (the paired comparison, which a change of load between rounds
 * does not move); 0 where !use[k]. A plan that is the same as an earlier
 * one is measured once and has its figures: measured twice, one plan read
 * 13.7 % slower than itself (its weights repacked into other buffers). */
static int
remeasure(struct tuner *t, const unsigned *const *plans, const bool *use, unsigned n, double *out, double *ratio)
{
	size_t runs = t->o->runs, per = REMEASURE_ROUNDS * runs;
	double *v, *med, rr[REMEASURE_ROUNDS];
	unsigned same_as[8];

	if (n > 8) {
		cli_error("internal: %u plans to measure again", n);
		return -1;
	}
	for (unsigned k = 0; k < n; k++) {
		same_as[k] = k;
		for (unsigned j = 0; j < k && same_as[k] == k; j++)
			if (use[j] && memcmp(plans[j], plans[k], t->nslots * sizeof(unsigned)) == 0)
				same_as[k] = j;
	}
	v = calloc(per * n, sizeof(double));
	med = calloc((size_t)REMEASURE_ROUNDS * n, sizeof(double));
	if (v == NULL || med == NULL) {
		free(v);
		free(med);
		cli_error("out of memory");
		return -1;
	}
	for (unsigned round = 0; round < REMEASURE_ROUNDS; round++)
		for (unsigned q = 0; q < n; q++) {
			unsigned k = round % 2 == 0 ? q : n - 1 - q;
			double *x = v + k * per + round * runs;
			if (!use[k] || same_as[k] != k)
				continue;
			if (apply(t, plans[k]) != 0) {
				free(v);
				free(med);
				return -1;
			}
			for (unsigned long w = 0; w < t->o->warmup; w++)
				dnn_engine_run(t->engine, t->g, t->input, t->output, NULL, NULL);
			for (size_t j = 0; j < runs; j++) {
				double t0 = monotonic_us();
				dnn_engine_run(t->engine, t->g, t->input, t->output, NULL, NULL);
				x[j] = monotonic_us() - t0;
			}
			qsort(x, runs, sizeof(double), cmp_double);
			med[k * REMEASURE_ROUNDS + round] = x[runs / 2];
		}
	for (unsigned k = 0; k < n; k++)
		if (use[k] && same_as[k] != k) {
			memcpy(v + k * per, v + same_as[k] * per, per * sizeof(double));
			for (unsigned round = 0; round < REMEASURE_ROUNDS; round++)
				med[k * REMEASURE_ROUNDS + round] = med[same_as[k] * REMEASURE_ROUNDS + round];
		}
	for (unsigned k = 0; k < n; k++) {
		out[k] = ratio[k] = 0;
		if (!use[k])
			continue;
		qsort(v + k * per, per, sizeof(double), cmp_double);
		out[k] = v[k * per + per / 2];
		for (unsigned round = 0; round < REMEASURE_ROUNDS; round++)
			rr[round] = med[k * REMEASURE_ROUNDS + round] / med[(n - 1) * REMEASURE_ROUNDS + round];
		qsort(rr, REMEASURE_ROUNDS, sizeof(double), cmp_double);
		ratio[k] = (rr[REMEASURE_ROUNDS / 2 - 1] + rr[REMEASURE_ROUNDS / 2]) / 2;
	}
	free(v);
	free(med);
	return 0;
}

static double
measure_choice(void *arg, const unsigned *choice)
{
	struct tuner *t = arg;

	if (apply(t, choice) != 0)
		return INFINITY;
	return time_plan(t);
}

static void
progress(void *arg, unsigned done, unsigned total, double best)
{
	struct tuner *t = arg;
	double el = (monotonic_us() - t->t_start) / 1e6;

	if (!t->progress)
		return;
	fprintf(stderr, "\r\033[K  g=%u %s: episode %u/%u, best %.1f us, about %.0f s left", t->g, t->phase, done, total,
	        best, el / done * (total - done));
	if (done == total)
		fputs("\r\033[K", stderr);
}

/* Sets the plan that runs candidate `kind` on every slot that can run it;
 * has[s]: whether slot s does. */
static int
set_kind(struct tuner *t, struct kind kind, bool *has)
{
	char *cause = NULL;

	for (size_t s = 0; s < t->nslots; s++) {
		enum dnn_impl use = DNN_IMPL_AUTO;
		enum dnn_layout lay = DNN_LAYOUT_NCHW;
		has[s] = false;
		for (unsigned k = 0; k < t->slots[s].n; k++)
			if (t->slots[s].impl[k] == kind.impl && t->slots[s].layout[k] == kind.layout) {
				use = kind.impl;
				lay = kind.layout;
				has[s] = true;
			}
		dnn_lplan_set(t->plan, t->m, t->g, t->slots[s].index, use);
		dnn_lplan_set_layout(t->plan, t->m, t->g, t->slots[s].index, lay);
	}
	if (dnn_engine_set_lplan(t->engine, t->plan, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	return 0;
}

#define TABLE_ROUNDS 5

/* Per-layer medians (µs) with every slot that can run candidate kinds[k] on
 * it: cost[k][s] gets the slot's time when it runs the kind, has[k][s]
 * whether it does, and between[k][s] the time of the layers between slot
 * s - 1 and slot s (pooling, which runs in the layout slot s - 1 left). Each
 * kind's o->runs runs are spread over TABLE_ROUNDS rounds that take the
 * kinds in turn, so that a slow spell of the machine (another process on
 * the core's other hardware thread makes every layer 30-50 % slower here)
 * falls on all of them rather than on one kind's whole column. One
 * measurement per kind. */
static int
layer_tables(struct tuner *t, const struct kind *kinds, unsigned n, double (*cost)[64], bool (*has)[64],
             double (*between)[64])
{
	size_t L = dnn_model_layer_count(t->m), runs = t->o->runs, rows = 2 * t->nslots;
	unsigned rounds = runs < TABLE_ROUNDS ? (unsigned)runs : TABLE_ROUNDS;
	double *samples = malloc(n * rows * runs * sizeof(double) + 1);

	if (samples == NULL) {
		cli_error("out of memory");
		return -1;
	}
	for (unsigned r = 0; r < rounds; r++)
		for (unsigned k = 0; k < n; k++) {
			double *v = samples + (size_t)k * rows * runs;
			size_t from = runs * r / rounds, to = runs * (r + 1) / rounds;
			if (set_kind(t, kinds[k], has[k]) != 0) {
				free(samples);
				return -1;
			}
			for (unsigned long w = 0; w < (r == 0 ? t->o->warmup : 1); w++)
				dnn_engine_run(t->engine, t->g, t->input, t->output, NULL, NULL);
			dnn_engine_set_profile(t->engine, t->prof);
			for (size_t j = from; j < to; j++) {
				memset(t->prof, 0, L * sizeof(uint64_t));
				dnn_engine_run(t->engine, t->g, t->input, t->output, NULL, NULL);
				for (size_t s = 0; s < t->nslots; s++) {
					double b = 0;
					v[s * runs + j] = (double)t->prof[t->slots[s].index] / 1e3;
					for (size_t i = s > 0 ? t->slots[s - 1].index + 1 : 0; i < t->slots[s].index; i++)
						b += (double)t->prof[i] / 1e3;
					v[(t->nslots + s) * runs + j] = b;
				}
			}
			dnn_engine_set_profile(t->engine, NULL);
		}
	for (unsigned k = 0; k < n; k++)
		for (size_t s = 0; s < rows; s++) {
			double *v = samples + ((size_t)k * rows + s) * runs;
			qsort(v, runs, sizeof(double), cmp_double);
			*(s < t->nslots ? &cost[k][s] : &between[k][s - t->nslots]) = v[runs / 2];
		}
	free(samples);
	t->measurements += n;
	return 0;
}

/* Top-1 accuracy of the plan now set at g on the validation images. */
static double
accuracy(struct tuner *t, const struct dataset *val, size_t n)
{
	size_t plane = dnn_model_input_size(t->m), correct = 0;
	unsigned classes = dnn_model_classes(t->m);

	for (size_t i = 0; i < n; i++) {
		unsigned best = 0;
		dnn_model_normalize_u8(t->m, val->pixels + i * plane, t->input);
		dnn_engine_run(t->engine, t->g, t->input, t->output, NULL, NULL);
		for (unsigned c = 1; c < classes; c++)
			if (t->output[c] > t->output[best])
				best = c;
		correct += best == val->labels[i];
	}
	return (double)correct / (double)n;
}

static bool
parse_impls(const char *list, struct kind *kinds, unsigned *n)
{
	char buf[256], *save = NULL;

	snprintf(buf, sizeof(buf), "%s", list);
	*n = 0;
	for (char *tok = strtok_r(buf, ",", &save); tok != NULL; tok = strtok_r(NULL, ",", &save)) {
		struct kind k = { .layout = DNN_LAYOUT_NCHW };
		char *dash = strchr(tok, '-');
		if (dash != NULL) {
			*dash = '\0';
			if (dnn_layout_parse(dash + 1, &k.layout) != 0)
				k.impl = DNN_IMPL_AUTO; /* refused below */
		}
		if (dnn_impl_parse(tok, &k.impl) != 0 || k.impl == DNN_IMPL_AUTO || *n >= TS_MAX_CHOICES ||
		    (k.layout != DNN_LAYOUT_NCHW && k.impl != DNN_IMPL_DIRECT)) {
			if (dash != NULL)
				*dash = '-';
			cli_error("--impls: '%s' is not one of gemm, direct, wino2, wino4, int8, direct-nhwc, direct-blocked "
			          "(at most %d)", tok, TS_MAX_CHOICES);
			return false;
		}
		kinds[(*n)++] = k;
	}
	return *n > 0;
}

/* Calibration inputs: IDX images normalised as the model says, or random. */
static float *
calibration_inputs(const struct tune_opts *o, const struct dnn_model *m, size_t *count)
{
	size_t plane = dnn_model_input_size(m);
	char path[1024], *cause = NULL;
	const char *src = o->calibration;
	struct dataset ds;
	float *in;

	if (src != NULL && strcmp(src, "random") == 0) {
		uint32_t s = 99;
		*count = o->calib_count;
		if ((in = malloc(*count * plane * sizeof(float))) == NULL)
			return NULL;
		for (size_t i = 0; i < *count * plane; i++) {
			s ^= s << 13;
			s ^= s >> 17;
			s ^= s << 5;
			in[i] = (float)((double)s / 2147483648.0 - 1.0);
		}
		return in;
	}
	if (src == NULL && o->dataset != NULL) {
		snprintf(path, sizeof(path), "%s/train-images-idx3-ubyte.gz", o->dataset);
		if (access(path, R_OK) != 0)
			snprintf(path, sizeof(path), "%s/train-images-idx3-ubyte", o->dataset);
		src = path;
	}
	if (src == NULL)
		return NULL;
	memset(&ds, 0, sizeof(ds));
	if (dataset_read_idx_images(&ds, src, &cause) != 0) {
		cli_error("calibration: %s", cause);
		free(cause);
		dataset_close(&ds);
		return NULL;
	}
	if ((size_t)ds.channels * ds.height * ds.width != plane) {
		cli_error("calibration: %s holds %ux%ux%u images; the model takes %zu values", src, ds.channels, ds.height,
		          ds.width, plane);
		dataset_close(&ds);
		return NULL;
	}
	*count = ds.count < o->calib_count ? ds.count : o->calib_count;
	if ((in = malloc(*count * plane * sizeof(float))) != NULL)
		for (size_t i = 0; i < *count; i++)
			dnn_model_normalize_u8(m, ds.pixels + i * plane, in + i * plane);
	dataset_close(&ds);
	return in;
}

/* What switching layouts costs, measured: the conversion before slot s from
 * slot s - 1's layout to slot s's (where the executor makes it: before slot
 * s, or before the first layer after slot s - 1 that wants NCHW, such as
 * flatten), plus what the pooling between them costs in slot s - 1's layout
 * beyond NCHW; slot 0's conversion from the NCHW input goes to its cost. */
static int
conversion_costs(struct tuner *t, double *cost, double *trans, double between[][DNN_LAYOUT_COUNT],
                 bool known[][DNN_LAYOUT_COUNT])
{
	const unsigned M = TS_MAX_CHOICES;
	unsigned runs = t->o->runs > 64 ? 64 : (unsigned)t->o->runs;
	double conv[DNN_LAYOUT_COUNT][DNN_LAYOUT_COUNT];

	for (size_t s = 0; s < t->nslots; s++) {
		size_t at = t->slots[s].index;
		if (s > 0) /* the first layer after slot s - 1 that is no pooling or fused ReLU */
			for (at = t->slots[s - 1].index + 1; at < t->slots[s].index; at++) {
				struct dnn_layer_info li;
				dnn_model_layer_info(t->m, at, t->g, &li);
				if (li.type != DNN_MAXPOOL && li.type != DNN_AVGPOOL && li.type != DNN_RELU)
					break;
			}
		for (unsigned b = 0; b < DNN_LAYOUT_COUNT; b++)
			for (unsigned a = 0; a < DNN_LAYOUT_COUNT; a++) {
				conv[b][a] = 0;
				if (a != b && dnn_engine_convert_us(t->engine, t->g, at, (enum dnn_layout)b, (enum dnn_layout)a,
				                                    runs, &conv[b][a]) != 0) {
					cli_error("cannot time a layout conversion at layer %zu", at);
					return -1;
				}
			}
		if (s == 0) {
			for (unsigned a = 0; a < t->slots[0].n; a++)
				cost[a] += conv[DNN_LAYOUT_NCHW][t->slots[0].layout[a]];
			continue;
		}
		for (unsigned b = 0; b < t->slots[s - 1].n; b++)
			for (unsigned a = 0; a < t->slots[s].n; a++) {
				enum dnn_layout lb = t->slots[s - 1].layout[b], la = t->slots[s].layout[a];
				double extra = known[s][lb] && known[s][DNN_LAYOUT_NCHW]
				                       ? between[s][lb] - between[s][DNN_LAYOUT_NCHW]
				                       : 0.0;
				trans[(s * M + b) * M + a] = conv[lb][la] + extra;
			}
	}
	return 0;
}

struct g_result {
	unsigned g;
	double cost[64][TS_MAX_CHOICES];
	unsigned choice[64];
	double latency_us, auto_us, gemm_us, exact_table_us, exact_us;
	double search_us;                 /* the search's own best (rl, random) */
	const char *from;                 /* which plan the file got: the search's or exact's */
	double acc_fp32, acc;             /* < 0: not measured */
	unsigned table_measurements, search_measurements, reverted;
	unsigned reverted_predicted;      /* by the accuracy predictor's first guess */
	double drop_predicted;            /* the drop it predicts for the plan it guessed (points), < 0: none */
	double *trace[3];                 /* rl, random, exact (exact: a flat line) */
	double found_table_us[2];         /* the table's cost of rl's and random's best plans (0: not run) */
	double *trace_table[2];           /* the table's cost of rl's and random's best plan so far */
	double remeasured_us[3];          /* rl's, random's and exact's plans measured again (0: not) */
	double remeasured_ratio[3];       /* each over exact's, paired round by round */
	unsigned found[2][64], exact_plan[64];
	double trans[64][TS_MAX_CHOICES][TS_MAX_CHOICES]; /* from slot s - 1's choice to slot s's */
	uint64_t weight_bytes, weight_bytes_fp32;
};

/* The slot's fastest float candidate in the table (UINT32_MAX: none). */
static unsigned
cheapest_float(const struct tuner *t, const double *cost, size_t s)
{
	unsigned alt = UINT32_MAX;

	for (unsigned c = 0; c < t->slots[s].n; c++)
		if (t->slots[s].impl[c] != DNN_IMPL_INT8 &&
		    (alt == UINT32_MAX || cost[s * TS_MAX_CHOICES + c] < cost[s * TS_MAX_CHOICES + alt]))
			alt = c;
	return alt;
}

/* The top-1 drop (points) the accuracy predictor gives the plan at t->g. */
static double
predicted_drop(const struct tuner *t, const unsigned *plan)
{
	bool int8[ACC_MAX_LAYERS] = { false };

	for (size_t s = 0; s < t->nslots; s++) {
		int k = acc_layer_slot(t->sens, (unsigned)t->slots[s].index);
		if (k >= 0 && t->slots[s].impl[plan[s]] == DNN_IMPL_INT8)
			int8[k] = true;
	}
	return 100.0 * (t->sens->fp32[t->g] - acc_predict(t->sens, t->g, int8));
}

/* The accuracy bound's first guess: while the predictor says the plan costs
 * more than the bound, the int8 layer of the largest predicted drop goes
 * back to its fastest float candidate. The measured loop then goes on from
 * there as it would from the search's plan. */
static void
predicted_first_guess(struct tuner *t, const double *cost, unsigned *plan, struct g_result *r)
{
	if (t->g > t->sens->groups)
		return;
	while ((r->drop_predicted = predicted_drop(t, plan)) > t->o->max_drop) {
		size_t worst = SIZE_MAX;
		double most = 0;
		for (size_t s = 0; s < t->nslots; s++) {
			int k = acc_layer_slot(t->sens, (unsigned)t->slots[s].index);
			if (k < 0 || t->slots[s].impl[plan[s]] != DNN_IMPL_INT8 || cheapest_float(t, cost, s) == UINT32_MAX)
				continue;
			if (t->sens->drop[t->g][k] > most)
				most = t->sens->drop[t->g][k], worst = s;
		}
		if (worst == SIZE_MAX)
			break;
		plan[worst] = cheapest_float(t, cost, worst);
		r->reverted_predicted++;
		if (t->progress)
			fprintf(stderr, "  g=%u: predicted to cost %.2f points; layer %zu back to fp32 (predicted)\n", t->g,
			        r->drop_predicted, t->slots[worst].index);
	}
}

static int
tune_g(struct tuner *t, unsigned g, const float *calib, size_t ncalib, const struct dataset *val, size_t nval,
       struct g_result *r)
{
	unsigned choices[64];
	double cost[64 * TS_MAX_CHOICES] = { 0 };
	static double trans[64 * TS_MAX_CHOICES * TS_MAX_CHOICES];
	double between[64][DNN_LAYOUT_COUNT];
	bool between_known[64][DNN_LAYOUT_COUNT];
	unsigned state[64 * TS_MAX_CHOICES];
	struct ts_problem p = { .n = t->nslots, .choices = choices, .cost = cost, .trans = trans, .state = state,
		                .measure = measure_choice, .arg = t };
	struct ts_opts so = ts_default_opts((unsigned)t->o->episodes, 17 + g);
	unsigned plan[64], exact[64];
	static double kc[TS_MAX_CHOICES][64], kb[TS_MAX_CHOICES][64];
	static bool khas[TS_MAX_CHOICES][64];
	char *cause = NULL;
	struct kind impls[TS_MAX_CHOICES];
	unsigned nimpls = 0;
	bool want_int8 = false;

	so.progress = progress;
	so.progress_arg = t;
	memset(trans, 0, sizeof(trans));
	memset(between_known, 0, sizeof(between_known));
	memset(r, 0, sizeof(*r));
	r->g = g;
	r->acc = r->acc_fp32 = -1;
	t->g = g;
	parse_impls(t->o->impls, impls, &nimpls);
	for (unsigned k = 0; k < nimpls; k++)
		want_int8 |= impls[k].impl == DNN_IMPL_INT8;
	if (want_int8 && calib != NULL &&
	    dnn_lplan_calibrate(t->plan, t->m, g, calib, ncalib, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	for (size_t s = 0; s < t->nslots; s++) {
		t->slots[s].n = 0;
		for (unsigned k = 0; k < nimpls; k++)
			if (dnn_impl_applies(t->m, t->slots[s].index, impls[k].impl) &&
			    dnn_layout_applies(t->m, t->slots[s].index, impls[k].impl, impls[k].layout) &&
			    (impls[k].impl != DNN_IMPL_INT8 || calib != NULL)) {
				t->slots[s].layout[t->slots[s].n] = impls[k].layout;
				t->slots[s].impl[t->slots[s].n++] = impls[k].impl;
			}
		if (t->slots[s].n == 0) {
			t->slots[s].layout[t->slots[s].n] = DNN_LAYOUT_NCHW;
			t->slots[s].impl[t->slots[s].n++] = DNN_IMPL_AUTO;
		}
		choices[s] = t->slots[s].n;
		/* rl's state after a choice: the layout and precision it leaves, which
		 * is all the conversion into the next layer depends on */
		for (unsigned a = 0; a < t->slots[s].n; a++)
			state[s * TS_MAX_CHOICES + a] =
				(unsigned)t->slots[s].layout[a] * 2 + (t->slots[s].impl[a] == DNN_IMPL_INT8);
	}

	/* baselines: the fast family as it is, and im2col + BLAS everywhere */
	if (apply(t, NULL) != 0)
		return -1;
	r->auto_us = time_plan(t);
	if (nval > 0)
		r->acc_fp32 = accuracy(t, val, nval);
	for (size_t s = 0; s < t->nslots; s++) {
		dnn_lplan_set(t->plan, t->m, g, t->slots[s].index, DNN_IMPL_GEMM);
		dnn_lplan_set_layout(t->plan, t->m, g, t->slots[s].index, DNN_LAYOUT_NCHW);
	}
	if (dnn_engine_set_lplan(t->engine, t->plan, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	r->gemm_us = time_plan(t);
	t->measurements = 0;

	/* the per-layer table: one measurement per candidate */
	if (layer_tables(t, impls, nimpls, kc, khas, kb) != 0)
		return -1;
	for (unsigned k = 0; k < nimpls; k++) {
		const double *c = kc[k], *b = kb[k];
		const bool *has = khas[k];
		for (size_t s = 0; s < t->nslots; s++) {
			for (unsigned a = 0; a < t->slots[s].n; a++)
				if (t->slots[s].impl[a] == impls[k].impl && t->slots[s].layout[a] == impls[k].layout)
					cost[s * TS_MAX_CHOICES + a] = c[s];
			/* the layers after slot s - 1, in the layout it ran */
			if (s > 0 && has[s - 1] && !between_known[s][impls[k].layout]) {
				between[s][impls[k].layout] = b[s];
				between_known[s][impls[k].layout] = true;
			}
		}
	}
	if (conversion_costs(t, cost, trans, between, between_known) != 0)
		return -1;
	for (size_t s = 0; s < t->nslots; s++)
		for (unsigned a = 0; a < t->slots[s].n; a++) {
			r->cost[s][a] = cost[s * TS_MAX_CHOICES + a];
			for (unsigned b = 0; s > 0 && b < t->slots[s - 1].n; b++)
				r->trans[s][b][a] = trans[(s * TS_MAX_CHOICES + b) * TS_MAX_CHOICES + a];
		}
	r->table_measurements = t->measurements;

	/* the searches: the chosen one, and the others when a plot compares them */
	for (int k = 0; k < 3; k++)
		r->trace[k] = calloc(so.episodes, sizeof(double));
	for (int k = 0; k < 2; k++)
		r->trace_table[k] = calloc(so.episodes, sizeof(double));
	if (r->trace[0] == NULL || r->trace[1] == NULL || r->trace[2] == NULL || r->trace_table[0] == NULL ||
	    r->trace_table[1] == NULL) {
		cli_error("out of memory");
		return -1;
	}
	r->exact_table_us = ts_exact(&p, exact);
	memcpy(r->exact_plan, exact, t->nslots * sizeof(unsigned));
	r->exact_us = measure_choice(t, exact);
	for (unsigned e = 0; e < so.episodes; e++)
		r->trace[SEARCH_EXACT][e] = r->exact_us;
	for (int k = 0; k < 2; k++) {
		unsigned other[64];
		double best;
		if ((enum search)k != t->o->search && t->o->plot == NULL)
			continue;
		t->phase = search_names[k];
		t->t_start = monotonic_us();
		t->measurements = 0;
		so.trace_table = r->trace_table[k];
		best = k == SEARCH_RL ? ts_rl(&p, &so, other, r->trace[k]) : ts_random(&p, &so, other, r->trace[k]);
		r->found_table_us[k] = ts_table_cost(&p, other);
		memcpy(r->found[k], other, t->nslots * sizeof(unsigned));
		if ((enum search)k == t->o->search) {
			memcpy(plan, other, t->nslots * sizeof(unsigned));
			r->latency_us = best;
			r->search_measurements = t->measurements;
		}
	}
	if (t->o->search == SEARCH_EXACT) {
		memcpy(plan, exact, t->nslots * sizeof(unsigned));
		r->latency_us = r->exact_us;
		r->search_measurements = r->table_measurements + 1;
		r->from = "exact";
	} else {
		/* A search's best is the least of many noisy medians (it is biased
		 * low); it, the table's optimum and the other search's best are
		 * measured again in the same way, interleaved, and the plan file
		 * gets whichever of the search's and the optimum's is faster, round
		 * by round. */
		const unsigned *cand[3] = { r->found[SEARCH_RL], r->found[SEARCH_RANDOM], exact };
		bool ran[3] = { r->found_table_us[SEARCH_RL] > 0, r->found_table_us[SEARCH_RANDOM] > 0, true };
		double s_us, e_us;
		if (remeasure(t, cand, ran, 3, r->remeasured_us, r->remeasured_ratio) != 0)
			return -1;
		s_us = r->remeasured_us[t->o->search];
		e_us = r->remeasured_us[SEARCH_EXACT];
		for (unsigned e = 0; e < so.episodes; e++)
			r->trace[SEARCH_EXACT][e] = e_us;
		r->search_us = r->latency_us;
		r->from = search_names[t->o->search];
		if (r->remeasured_ratio[t->o->search] > 1 && memcmp(plan, exact, t->nslots * sizeof(unsigned)) != 0) {
			memcpy(plan, exact, t->nslots * sizeof(unsigned));
			r->from = "exact";
		}
		r->latency_us = strcmp(r->from, "exact") == 0 ? e_us : s_us;
	}

	r->drop_predicted = -1;
	if (t->sens != NULL && nval > 0)
		predicted_first_guess(t, cost, plan, r);
	/* the accuracy bound, measured: int8 layers go back to fp32, the most
	 * sensitive first, until the drop is within it */
	for (;;) {
		size_t worst = SIZE_MAX;
		double best_acc = -1;
		bool any = false;
		if (apply(t, plan) != 0)
			return -1;
		for (size_t s = 0; s < t->nslots; s++)
			any |= t->slots[s].impl[plan[s]] == DNN_IMPL_INT8;
		if (nval == 0)
			break;
		r->acc = accuracy(t, val, nval); /* of the plan as it ends, too */
		if (!any)
			break;
		if (100.0 * (r->acc_fp32 - r->acc) <= t->o->max_drop)
			break;
		for (size_t s = 0; s < t->nslots; s++) {
			unsigned keep = plan[s], alt = cheapest_float(t, cost, s);
			double a;
			if (t->slots[s].impl[keep] != DNN_IMPL_INT8 || alt == UINT32_MAX)
				continue;
			plan[s] = alt;
			apply(t, plan);
			a = accuracy(t, val, nval);
			plan[s] = keep;
			if (a > best_acc) {
				best_acc = a;
				worst = s;
			}
		}
		if (worst == SIZE_MAX)
			break;
		plan[worst] = cheapest_float(t, cost, worst);
		r->reverted++;
		if (t->progress)
			fprintf(stderr, "  g=%u: int8 costs %.2f points; layer %zu back to fp32\n", g,
			        100.0 * (r->acc_fp32 - r->acc), t->slots[worst].index);
	}
	if (apply(t, plan) != 0)
		return -1;
	if (r->reverted > 0 || r->reverted_predicted > 0)
		r->latency_us = time_plan(t);
	memcpy(r->choice, plan, t->nslots * sizeof(unsigned));
	r->weight_bytes = dnn_lplan_weight_bytes(t->plan, t->m, g);
	r->weight_bytes_fp32 = dnn_lplan_weight_bytes(NULL, t->m, g);
	dnn_lplan_set_measured(t->plan, g, r->latency_us, r->acc);
	return 0;
}

static int
cluster_cpuset(struct tune_opts *o)
{
	char *cause = NULL;
	struct gov_platform *p = gov_platform_discover(NULL, &cause);
	struct gov_cluster *c;

	if (p == NULL) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	if ((c = gov_find_cluster(p, o->cluster)) == NULL) {
		cli_error("no cluster '%s' (see 'gearbox platform')", o->cluster);
		gov_platform_free(p);
		return -1;
	}
	o->cpuset = gov_cluster_cpuset(c, (unsigned)o->threads);
	gov_platform_free(p);
	return 0;
}

static void
print_text(const struct tuner *t, const struct g_result *res, unsigned n)
{
	const struct tune_opts *o = t->o;

	printf("%s, %lu thread%s, search %s, %lu episodes, %lu runs per measurement\n",
	       dnn_model_name(t->m), o->threads, o->threads > 1 ? "s" : "", search_names[o->search], o->episodes,
	       o->runs);
	for (unsigned k = 0; k < n; k++) {
		const struct g_result *r = &res[k];
		printf("\ng=%u: per-layer medians (us) of one run with each candidate everywhere it applies\n", r->g);
		printf("  %-10s", "layer");
		printf(" %s\n", "candidates (chosen *)");
		for (size_t s = 0; s < t->nslots; s++) {
			struct dnn_layer_info info;
			char kn[48];
			dnn_model_layer_info(t->m, t->slots[s].index, r->g, &info);
			printf("  %-10s", info.name);
			for (unsigned a = 0; a < t->slots[s].n; a++)
				printf(" %s%s %.1f", a == r->choice[s] ? "*" : " ",
				       kind_name(t->slots[s].impl[a], t->slots[s].layout[a], kn, sizeof(kn)),
				       r->cost[s][a]);
			putchar('\n');
		}
		printf("  plan %.1f us; fast kernels %.1f us (%.2fx), im2col+BLAS %.1f us (%.2fx)\n", r->latency_us,
		       r->auto_us, r->auto_us / r->latency_us, r->gemm_us, r->gemm_us / r->latency_us);
		if (o->search != SEARCH_EXACT) {
			double su = r->remeasured_us[o->search], eu = r->remeasured_us[SEARCH_EXACT];
			printf("  %s's best plan: %.1f us in the table (exact optimum %.1f us, %s %+.1f%%)\n",
			       search_names[o->search], r->found_table_us[o->search], r->exact_table_us, search_names[o->search],
			       100.0 * (r->found_table_us[o->search] / r->exact_table_us - 1));
			printf("  measured again, interleaved (%d rounds of %lu runs): %s's %.1f us, exact's %.1f us "
			       "(%s %+.1f%%, paired by round); %s's plan is kept\n", REMEASURE_ROUNDS, o->runs,
			       search_names[o->search], su, eu, search_names[o->search],
			       100.0 * (r->remeasured_ratio[o->search] - 1), r->from);
		} else
			printf("  exact optimum of the table %.1f us, measured %.1f us\n", r->exact_table_us, r->exact_us);
		printf("  measurements: %u for the table, %u by the search\n", r->table_measurements, r->search_measurements);
		printf("  weights read %.0f KiB (fp32 %.0f KiB, %.2fx smaller)\n", r->weight_bytes / 1024.0,
		       r->weight_bytes_fp32 / 1024.0, (double)r->weight_bytes_fp32 / (double)r->weight_bytes);
		if (r->drop_predicted >= 0)
			printf("  the accuracy predictor's first guess: %u layer%s to fp32, predicted to cost %.2f points\n",
			       r->reverted_predicted, r->reverted_predicted == 1 ? "" : "s", r->drop_predicted);
		if (r->acc >= 0)
			printf("  top-1 on the validation set: fp32 %.2f%%, plan %.2f%% (%+.2f points), %u layer%s returned to fp32\n",
			       100 * r->acc_fp32, 100 * r->acc, 100 * (r->acc - r->acc_fp32), r->reverted,
			       r->reverted == 1 ? "" : "s");
		else
			printf("  accuracy not measured (no --dataset)\n");
	}
	printf("\nplan written to %s\n", o->out);
}

/* A plan as the kind names of its layers' choices. */
static struct json_object *
plan_json(const struct tuner *t, const unsigned *choice)
{
	struct json_object *a = json_object_new_array();
	char kn[48];

	for (size_t s = 0; s < t->nslots; s++)
		json_object_array_add(a, json_object_new_string(kind_name(t->slots[s].impl[choice[s]],
		                                                          t->slots[s].layout[choice[s]], kn, sizeof(kn))));
	return a;
}

static void
print_json(const struct tuner *t, const struct g_result *res, unsigned n)
{
	struct json_object *root = json_object_new_object(), *groups = json_object_new_array();

	json_object_object_add(root, "model", json_object_new_string(dnn_model_name(t->m)));
	json_object_object_add(root, "threads", json_object_new_int((int)t->o->threads));
	json_object_object_add(root, "search", json_object_new_string(search_names[t->o->search]));
	json_object_object_add(root, "episodes", json_object_new_int((int)t->o->episodes));
	json_object_object_add(root, "plan", json_object_new_string(t->o->out));
	for (unsigned k = 0; k < n; k++) {
		const struct g_result *r = &res[k];
		struct json_object *go = json_object_new_object(), *layers = json_object_new_array();
		char kn[48];
		json_object_object_add(go, "active", json_object_new_int((int)r->g));
		for (size_t s = 0; s < t->nslots; s++) {
			struct json_object *lo = json_object_new_object(), *costs = json_object_new_object();
			struct dnn_layer_info info;
			dnn_model_layer_info(t->m, t->slots[s].index, r->g, &info);
			json_object_object_add(lo, "index", json_object_new_int64((int64_t)t->slots[s].index));
			json_object_object_add(lo, "name", json_object_new_string(info.name));
			json_object_object_add(lo, "impl", json_object_new_string(dnn_impl_name(t->slots[s].impl[r->choice[s]])));
			json_object_object_add(lo, "layout",
			                       json_object_new_string(dnn_layout_name(t->slots[s].layout[r->choice[s]])));
			for (unsigned a = 0; a < t->slots[s].n; a++)
				json_object_object_add(costs, kind_name(t->slots[s].impl[a], t->slots[s].layout[a], kn, sizeof(kn)),
				                       json_object_new_double(r->cost[s][a]));
			json_object_object_add(lo, "cost_us", costs);
			if (s > 0) { /* what a change from the previous layer's layout costs, where it is not 0 */
				struct json_object *conv = json_object_new_object();
				char kb[48];
				for (unsigned b = 0; b < t->slots[s - 1].n; b++) {
					struct json_object *row = json_object_new_object();
					for (unsigned a = 0; a < t->slots[s].n; a++)
						if (r->trans[s][b][a] != 0)
							json_object_object_add(
								row, kind_name(t->slots[s].impl[a], t->slots[s].layout[a], kn, sizeof(kn)),
								json_object_new_double(r->trans[s][b][a]));
					if (json_object_object_length(row) > 0)
						json_object_object_add(conv,
						                       kind_name(t->slots[s - 1].impl[b], t->slots[s - 1].layout[b], kb,
						                                 sizeof(kb)),
						                       row);
					else
						json_object_put(row);
				}
				json_object_object_add(lo, "conversion_us", conv);
			}
			json_object_array_add(layers, lo);
		}
		json_object_object_add(go, "layers", layers);
		json_object_object_add(go, "latency_us", json_object_new_double(r->latency_us));
		json_object_object_add(go, "fast_us", json_object_new_double(r->auto_us));
		json_object_object_add(go, "gemm_us", json_object_new_double(r->gemm_us));
		json_object_object_add(go, "plan_from", json_object_new_string(r->from));
		if (t->o->search != SEARCH_EXACT)
			json_object_object_add(go, "search_best_us", json_object_new_double(r->search_us));
		json_object_object_add(go, "exact_table_us", json_object_new_double(r->exact_table_us));
		json_object_object_add(go, "exact_plan", plan_json(t, r->exact_plan));
		for (int q = 0; q < 2; q++)
			if (r->found_table_us[q] > 0) {
				char key[32];
				snprintf(key, sizeof(key), "%s_table_us", search_names[q]);
				json_object_object_add(go, key, json_object_new_double(r->found_table_us[q]));
				snprintf(key, sizeof(key), "%s_plan", search_names[q]);
				json_object_object_add(go, key, plan_json(t, r->found[q]));
			}
		json_object_object_add(go, "exact_measured_us", json_object_new_double(r->exact_us));
		json_object_object_add(go, "table_measurements", json_object_new_int((int)r->table_measurements));
		json_object_object_add(go, "search_measurements", json_object_new_int((int)r->search_measurements));
		json_object_object_add(go, "weight_bytes", json_object_new_int64((int64_t)r->weight_bytes));
		json_object_object_add(go, "weight_bytes_fp32", json_object_new_int64((int64_t)r->weight_bytes_fp32));
		if (r->acc >= 0) {
			json_object_object_add(go, "accuracy", json_object_new_double(r->acc));
			json_object_object_add(go, "accuracy_fp32", json_object_new_double(r->acc_fp32));
		}
		json_object_object_add(go, "reverted_to_fp32", json_object_new_int((int)r->reverted));
		if (r->drop_predicted >= 0) {
			json_object_object_add(go, "reverted_predicted", json_object_new_int((int)r->reverted_predicted));
			json_object_object_add(go, "predicted_drop_points", json_object_new_double(r->drop_predicted));
		}
		for (int s = 0; s < 2; s++) {
			if (r->trace[s] == NULL || r->trace[s][0] == 0)
				continue;
			struct json_object *tr = json_object_new_array(), *tt = json_object_new_array();
			for (unsigned e = 0; e < t->o->episodes; e++) {
				json_object_array_add(tr, json_object_new_double(r->trace[s][e]));
				json_object_array_add(tt, json_object_new_double(r->trace_table[s][e]));
			}
			json_object_object_add(go, s == 0 ? "trace_rl_us" : "trace_random_us", tr);
			json_object_object_add(go, s == 0 ? "trace_rl_table_us" : "trace_random_table_us", tt);
		}
		if (r->remeasured_us[SEARCH_EXACT] > 0) {
			struct json_object *rm = json_object_new_object();
			for (int s = 0; s < 3; s++)
				if (r->remeasured_us[s] > 0)
					json_object_object_add(rm, search_names[s], json_object_new_double(r->remeasured_us[s]));
			json_object_object_add(go, "remeasured_us", rm);
			rm = json_object_new_object();
			for (int s = 0; s < 2; s++)
				if (r->remeasured_us[s] > 0)
					json_object_object_add(rm, search_names[s], json_object_new_double(r->remeasured_ratio[s]));
			json_object_object_add(go, "remeasured_vs_exact", rm);
		}
		json_object_array_add(groups, go);
	}
	json_object_object_add(root, "groups", groups);
	puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

/* The curves are the table's cost of each search's best plan so far, and
 * the table's optimum: what "measurements to within 5 %" counts. The
 * end-to-end medians the searches take drift with the machine over the
 * seconds a search lasts (on this 2-vCPU VM, rl's best g=4 median during
 * its search was 22 % above the exact plan's median taken before it, for
 * the same plan), so a line of measured figures against one measured
 * yardstick shows the drift as much as the search. */
static int
draw(const struct tuner *t, struct g_result *res, unsigned n)
{
	struct plot_curve *curves = calloc((size_t)n * 3, sizeof(*curves));
	const char **titles = calloc(n, sizeof(*titles));
	char (*buf)[64] = calloc(n, sizeof(*buf)), title[256], *cause = NULL;
	double *optimum = calloc((size_t)n * t->o->episodes, sizeof(double));
	int ret = -1;

	if (curves == NULL || titles == NULL || buf == NULL || optimum == NULL) {
		cli_error("out of memory");
		goto out;
	}
	for (unsigned k = 0; k < n; k++) {
		double *opt = optimum + (size_t)k * t->o->episodes;
		for (unsigned e = 0; e < t->o->episodes; e++)
			opt[e] = res[k].exact_table_us;
		snprintf(buf[k], sizeof(buf[k]), "g=%u", res[k].g);
		titles[k] = buf[k];
		/* rl also spent the table's measurements; exact spent the table */
		curves[k * 3 + 0] = (struct plot_curve){ "rl (Q-learning)", res[k].trace_table[SEARCH_RL], t->o->episodes,
			                                 res[k].table_measurements };
		curves[k * 3 + 1] = (struct plot_curve){ "random", res[k].trace_table[SEARCH_RANDOM], t->o->episodes, 0 };
		curves[k * 3 + 2] = (struct plot_curve){ "exact (DP over the table)", opt, t->o->episodes,
			                                 res[k].table_measurements };
	}
	snprintf(title, sizeof(title),
	         "gearbox tune: %s, %lu thread%s - best plan so far, its cost on the measured per-layer table",
	         dnn_model_name(t->m), t->o->threads, t->o->threads > 1 ? "s" : "");
	ret = plot_search(t->o->plot, title, titles, curves, 3, n > 4 ? 4 : n, &cause);
	if (ret != 0) {
		cli_error("%s", cause);
		free(cause);
	}
out:
	free(curves);
	free(titles);
	free(buf);
	free(optimum);
	return ret;
}

int
cmd_tune(int argc, char **argv)
{
	struct tune_opts o;
	struct tuner t = { 0 };
	struct dataset val;
	struct g_result *res = NULL;
	const char *file;
	char *cause = NULL;
	unsigned first, last, nres = 0;
	float *calib = NULL;
	size_t ncalib = 0, nval = 0;
	int ret = 1;
	struct kind impls[TS_MAX_CHOICES];
	unsigned nimpls;

	memset(&val, 0, sizeof(val));
	if (parse_tune_opts(argc, argv, &o, &file) != 0) {
		hwloc_bitmap_free(o.cpuset);
		return EXIT_USAGE;
	}
	if (!parse_impls(o.impls, impls, &nimpls) || (o.cluster != NULL && cluster_cpuset(&o) != 0)) {
		hwloc_bitmap_free(o.cpuset);
		return EXIT_USAGE;
	}
	t.o = &o;
	t.progress = isatty(STDERR_FILENO) || getenv("GEARBOX_PROGRESS") != NULL;
	if ((t.m = dnn_model_load(file, &cause)) == NULL) {
		cli_error("%s", cause ? cause : "cannot load model");
		goto out;
	}
	if (cli_parse_groups(o.groups, dnn_model_groups(t.m), &first, &last) != 0) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (o.dataset != NULL) {
		if (dataset_open(&val, o.dataset, &cause) != 0) {
			cli_error("%s", cause);
			goto out;
		}
		if ((size_t)val.channels * val.height * val.width != dnn_model_input_size(t.m)) {
			cli_error("%s: its images do not fit the model's input", o.dataset);
			goto out;
		}
		nval = val.count < o.val_limit ? val.count : o.val_limit;
	}
	for (unsigned k = 0; k < nimpls; k++)
		if (impls[k].impl == DNN_IMPL_INT8) {
			if ((calib = calibration_inputs(&o, t.m, &ncalib)) == NULL && o.calibration != NULL)
				goto out;
			if (calib == NULL)
				fprintf(stderr, "gearbox: no --dataset or --calibration: int8 is left out (its scales need "
				                "calibration images)\n");
			else if (nval == 0)
				fprintf(stderr, "gearbox: no --dataset: int8 layers are chosen without measuring accuracy\n");
		}
	static struct acc_sensitivity sens;
	if (o.sensitivity != NULL) {
		if (acc_sensitivity_load(&sens, o.sensitivity, dnn_model_fingerprint(t.m), &cause) != 0) {
			cli_error("%s", cause);
			goto out;
		}
		t.sens = &sens;
	}
	t.engine = dnn_engine_cpu(t.m, (unsigned)o.threads, o.cpuset, DNN_KERNELS_FAST, &cause);
	t.plan = dnn_lplan_new(t.m);
	t.input = calloc(dnn_model_input_size(t.m), sizeof(float));
	t.output = calloc(dnn_model_output_size(t.m), sizeof(float));
	t.prof = calloc(dnn_model_layer_count(t.m), sizeof(uint64_t));
	t.slots = calloc(dnn_model_layer_count(t.m), sizeof(*t.slots));
	res = calloc(last - first + 1, sizeof(*res));
	if (t.engine == NULL || t.plan == NULL || t.input == NULL || t.output == NULL || t.prof == NULL ||
	    t.slots == NULL || res == NULL) {
		cli_error("%s", cause ? cause : "out of memory");
		goto out;
	}
	dnn_lplan_set_threads(t.plan, (unsigned)o.threads);
	dnn_lplan_set_cluster(t.plan, o.cluster); /* gearboxd gives it to that cluster's placements */
	for (size_t i = 0; i < dnn_model_layer_count(t.m); i++)
		if (dnn_impl_applies(t.m, i, DNN_IMPL_GEMM) && t.nslots < 64)
			t.slots[t.nslots++].index = i;
	/* timing input: the first calibration image, or the zero image */
	if (calib != NULL)
		memcpy(t.input, calib, dnn_model_input_size(t.m) * sizeof(float));
	for (unsigned g = first; g <= last; g++, nres++)
		if (tune_g(&t, g, calib, ncalib, &val, nval, &res[nres]) != 0)
			goto out;
	if (dnn_lplan_save(t.plan, t.m, o.out, &cause) != 0) {
		cli_error("%s", cause);
		goto out;
	}
	if (o.json)
		print_json(&t, res, nres);
	else
		print_text(&t, res, nres);
	ret = o.plot != NULL && draw(&t, res, nres) != 0 ? 1 : 0;
out:
	free(cause);
	for (unsigned k = 0; res != NULL && k <= last - first; k++)
		for (int s = 0; s < 3; s++) {
			free(res[k].trace[s]);
			if (s < 2)
				free(res[k].trace_table[s]);
		}
	free(res);
	free(calib);
	free(t.input);
	free(t.output);
	free(t.prof);
	free(t.slots);
	dnn_lplan_free(t.plan);
	dnn_engine_free(t.engine);
	dataset_close(&val);
	dnn_model_free((struct dnn_model *)t.m);
	hwloc_bitmap_free(o.cpuset);
	return ret;
}
