/* SPDX-License-Identifier: MIT */
/* gearbox pareto MODEL: the operating points of a model on this machine,
 * predicted from a short calibration (or the cached one), and their Pareto
 * front over accuracy, latency and energy. --validate measures every point
 * and reports the prediction error. --plan adds the points of a per-layer
 * plan (gearbox tune) with the accuracy the accuracy predictor gives it and
 * its measured speed-up, and prints and draws the accuracy-latency and
 * accuracy-energy fronts with measured and predicted accuracies apart. */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/cause.h"
#include "common/clock.h"
#include "common/json_num.h"
#include "common/plot.h"
#include "dnn/dnn.h"
#include "governor/governor.h"
#include "policies/accuracy.h"
#include "policies/policy.h"
#include "policies/runtime.h"
#include "tools/gearbox/cli.h"

struct bench {
	struct dnn_model *model;
	struct gov_platform *platform;
	const struct pol_predictor *pr;
	struct pol_devices *devices;
	struct pol_runtime *runtime; /* engines per (placement, threads), as gearboxd's */
	float *in, *out;
	bool quiet;
};

static struct dnn_engine *
engine_of(struct bench *b, unsigned place, unsigned threads, char **cause)
{
	return pol_runtime_engine(b->runtime, b->pr->places, place, threads, cause);
}

/* One timed run at a point. */
static int
measure(void *ctx, const struct pol_point *pt, double *us, char **cause)
{
	struct bench *b = ctx;
	struct dnn_engine *e = engine_of(b, pt->place, pt->threads, cause);
	double t;
	int ret;

	if (e == NULL)
		return -1;
	t = monotonic_us();
	ret = dnn_engine_run(e, pt->groups, b->in, b->out, NULL, cause);
	*us = monotonic_us() - t;
	return ret;
}

static void
progress(void *ctx, const struct pol_point *pt, double us)
{
	struct bench *b = ctx;

	if (!b->quiet)
		fprintf(stderr, "calibrating: g=%u on %s x%u: %.0f us\n", pt->groups, b->pr->places[pt->place].name,
		        pt->threads, us);
}

static double
median_of(struct bench *b, const struct pol_point *pt, unsigned runs)
{
	double s[64], us;

	runs = runs > 64 ? 64 : runs;
	(void)measure(b, pt, &us, NULL); /* warm-up, as calibration does */
	for (unsigned i = 0; i < runs; i++)
		s[i] = measure(b, pt, &us, NULL) == 0 ? us : NAN;
	return cli_quantile(s, runs, 0.5);
}

static void
usage(FILE *out)
{
	fputs("Usage: gearbox pareto MODEL [OPTIONS]\n"
	      "\n"
	      "Operating points (groups x placement x threads x frequency) of MODEL on this\n"
	      "machine, predicted from a calibration (cached per model and platform), and\n"
	      "their Pareto front over accuracy, latency and energy.\n"
	      "\n"
	      "  --policy NAME    limit the points as this policy does (default: default)\n"
	      "  --runs N         runs per calibrated point (default: the policy's)\n"
	      "  --recalibrate    measure again even when a cached calibration fits\n"
	      "  --validate       also measure every point and report the prediction error\n"
	      "  --all            print every point, not only the front\n"
	      "  --plot FILE.png  draw the front (needs gnuplot); with --validate, the measured\n"
	      "                   latencies marked apart from the predicted\n"
	      "  --plan FILE      add the points of a per-layer plan (made by gearbox tune) on its\n"
	      "                   cluster and thread count: latency scaled by its speed-up measured\n"
	      "                   here, accuracy from the accuracy predictor; prints (and --plot\n"
	      "                   draws) the accuracy-latency and accuracy-energy fronts, measured\n"
	      "                   accuracies marked apart from predicted ones\n"
	      "  --sensitivity FILE  the predictor's per-layer sensitivity (made by gearbox accuracy;\n"
	      "                   default: MODEL's .sensitivity.json beside it)\n"
	      "  --json           machine-readable output\n",
	      out);
}

static struct json_object *
point_json(const struct pol_predictor *pr, const struct pol_point *pt, double measured)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "groups", json_object_new_int((int)pt->groups));
	json_object_object_add(o, "placement", json_object_new_string(pr->places[pt->place].name));
	json_object_object_add(o, "threads", json_object_new_int((int)pt->threads));
	json_object_object_add(o, "freq_khz", json_object_new_int64((int64_t)pt->khz));
	json_object_object_add(o, "accuracy", pt->accuracy >= 0 ? json_num(pt->accuracy, 4) : NULL);
	json_object_object_add(o, "latency_us", json_num(pt->latency_us, 1));
	json_object_object_add(o, "energy_uj", json_num(pt->energy_uj, 1));
	json_object_object_add(o, "power_w", json_num(pt->power_w, 3));
	if (!isnan(measured))
		json_object_object_add(o, "measured_us", json_num(measured, 1));
	return o;
}

static void
print_point(const struct pol_predictor *pr, const struct pol_point *pt, double measured)
{
	const char *place = pr->places[pt->place].name;
	char freq[16] = "-";

	if (pt->khz)
		snprintf(freq, sizeof(freq), "%lu", pt->khz / 1000);
	printf("%3u  %-10s %7u %8s %8.2f%% %11.0f %11.1f", pt->groups, place, pt->threads, freq, pt->accuracy * 100,
	       pt->latency_us, pt->energy_uj);
	if (!isnan(measured))
		printf(" %11.0f %+7.1f%%", measured, 100 * (pt->latency_us - measured) / measured);
	putchar('\n');
}

/* A point of the two-dimensional fronts: the table's (accuracy measured per
 * g, latency predicted) or one under the plan (accuracy predicted). */
struct fpoint {
	struct pol_point pt;
	bool plan;
};

static int
cmp_latency(const void *a, const void *b)
{
	const struct fpoint *x = a, *y = b;
	if (x->pt.latency_us != y->pt.latency_us)
		return x->pt.latency_us < y->pt.latency_us ? -1 : 1;
	return x->pt.accuracy > y->pt.accuracy ? -1 : x->pt.accuracy < y->pt.accuracy;
}

static int
cmp_energy(const void *a, const void *b)
{
	const struct fpoint *x = a, *y = b;
	if (x->pt.energy_uj != y->pt.energy_uj)
		return x->pt.energy_uj < y->pt.energy_uj ? -1 : 1;
	return x->pt.accuracy > y->pt.accuracy ? -1 : x->pt.accuracy < y->pt.accuracy;
}

/* The points no other beats in both accuracy and latency (energy), cheapest
 * first. in is reordered. */
static unsigned
front2(struct fpoint *in, unsigned n, bool energy, struct fpoint *out)
{
	unsigned k = 0;
	double best = -INFINITY;

	qsort(in, n, sizeof(*in), energy ? cmp_energy : cmp_latency);
	for (unsigned i = 0; i < n; i++)
		if (in[i].pt.accuracy > best + 1e-12)
			best = in[i].pt.accuracy, out[k++] = in[i];
	return k;
}

static void
print_fpoint(const struct pol_predictor *pr, const struct fpoint *f, const char *label)
{
	const struct pol_point *pt = &f->pt;
	char freq[16] = "-";

	if (pt->khz)
		snprintf(freq, sizeof(freq), "%lu", pt->khz / 1000);
	printf("%3u  %-10s %7u %8s %-12s %8.2f%%%s %11.0f %11.1f\n", pt->groups, pr->places[pt->place].name, pt->threads,
	       freq, f->plan ? label : "fp32", pt->accuracy * 100, f->plan ? "p" : " ", pt->latency_us, pt->energy_uj);
}

static struct json_object *
fronts_json(const struct pol_predictor *pr, const struct fpoint *f, unsigned n, const char *label)
{
	struct json_object *a = json_object_new_array();

	for (unsigned i = 0; i < n; i++) {
		struct json_object *o = point_json(pr, &f[i].pt, NAN);
		json_object_object_add(o, "plan", json_object_new_string(f[i].plan ? label : ""));
		json_object_object_add(o, "accuracy_predicted", json_object_new_boolean(f[i].plan));
		json_object_array_add(a, o);
	}
	return a;
}

/* Both fronts in two panels: the front as a line, its points with measured
 * accuracy filled, those with predicted accuracy open, the others small. */
static int
plot_fronts(const char *png, const char *title, const struct fpoint *all, unsigned n, const struct fpoint *lat,
            unsigned nl, const struct fpoint *en, unsigned ne, char **cause)
{
	double *v = calloc(12 * (size_t)(n + 1), sizeof(double));
	struct plot_series se[8];
	const char *xl[2] = { "latency, ms (log)", "energy per inference, mJ (log)" };
	const char *yl[2] = { "top-1 accuracy (%)", "top-1 accuracy (%)" };
	size_t per[2] = { 4, 4 };
	int ret;

	if (v == NULL)
		return set_cause(cause, "out of memory");
	for (unsigned panel = 0; panel < 2; panel++) {
		const struct fpoint *f = panel ? en : lat;
		unsigned nf = panel ? ne : nl, nm = 0, np = 0, no = 0;
		double *lx = v + (size_t)panel * 6 * (n + 1), *ly = lx + (n + 1);
		double *mx = ly + (n + 1), *my = mx + (n + 1);
		double *px = my + (n + 1), *py = px + (n + 1);
		for (unsigned i = 0; i < nf; i++) {
			double x = panel ? f[i].pt.energy_uj / 1e3 : f[i].pt.latency_us / 1e3, y = f[i].pt.accuracy * 100;
			lx[i] = x, ly[i] = y;
			if (f[i].plan)
				px[np] = x, py[np] = y, np++;
			else
				mx[nm] = x, my[nm] = y, nm++;
		}
		/* the others: every point not on this front */
		static double others_x[2][8192], others_y[2][8192];
		for (unsigned i = 0; i < n && no < 8192; i++) {
			bool on = false;
			for (unsigned j = 0; j < nf && !on; j++)
				on = all[i].plan == f[j].plan && all[i].pt.groups == f[j].pt.groups &&
				     all[i].pt.place == f[j].pt.place && all[i].pt.threads == f[j].pt.threads &&
				     all[i].pt.freq == f[j].pt.freq;
			if (!on)
				others_x[panel][no] = panel ? all[i].pt.energy_uj / 1e3 : all[i].pt.latency_us / 1e3,
				others_y[panel][no] = all[i].pt.accuracy * 100, no++;
		}
		se[panel * 4 + 0] = (struct plot_series){ "other points", others_x[panel], others_y[panel], no, "points", 7, 0.4, 9 };
		se[panel * 4 + 1] = (struct plot_series){ "front", lx, ly, nf, "lines", 0, 0, 8 };
		se[panel * 4 + 2] = (struct plot_series){ "on the front, accuracy measured", mx, my, nm, "points", 7, 1.2, 1 };
		se[panel * 4 + 3] = (struct plot_series){ "on the front, accuracy predicted (plan)", px, py, np, "points", 6, 1.6, 2 };
	}
	ret = plot_panels(png, title, 2, xl, yl, se, per, cause);
	free(v);
	return ret;
}

int
cmd_pareto(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "policy", required_argument, NULL, 'p' }, { "runs", required_argument, NULL, 'r' },
		{ "recalibrate", no_argument, NULL, 'R' },  { "validate", no_argument, NULL, 'v' },
		{ "all", no_argument, NULL, 'a' },          { "plot", required_argument, NULL, 'o' },
		{ "json", no_argument, NULL, 'j' },         { "help", no_argument, NULL, 'h' },
		{ "plan", required_argument, NULL, 'P' },   { "sensitivity", required_argument, NULL, 'S' },
		{ NULL, 0, NULL, 0 },
	};
	const char *policy_name = "default", *plot = NULL, *plan_path = NULL, *sens_path = NULL;
	struct fpoint *fall = NULL, *flat = NULL, *fen = NULL;
	unsigned nfall = 0, nflat = 0, nfen = 0, plan_place = 0, plan_threads = 0;
	double speedup[POL_MAX_GROUPS + 1] = { 0 }, predicted[POL_MAX_GROUPS + 1] = { 0 };
	char plan_label[64] = "", sens_default[1024];
	static struct acc_sensitivity sens;
	bool recalibrate = false, validate = false, all = false, json = false;
	unsigned long runs = 0;
	struct pol_point *points = NULL, *front = NULL;
	static struct pol_predictor pr;
	struct bench b = { 0 };
	struct pol_set set = { 0 };
	struct pol_params params;
	struct pol_place places[POL_MAX_PLACES];
	struct pol_model facts;
	char *cause = NULL, cache[512];
	struct json_object *out = NULL, *list = NULL;
	double err_sum = 0, err_max = 0;
	unsigned n, k, nvalid = 0, nplaces;
	int ch, ret = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'p': policy_name = optarg; break;
		case 'r':
			if (cli_parse_uint(optarg, 1, 64, &runs) != 0)
				return cli_error("--runs takes 1 to 64, not '%s'", optarg), EXIT_USAGE;
			break;
		case 'R': recalibrate = true; break;
		case 'v': validate = true; break;
		case 'a': all = true; break;
		case 'o': plot = optarg; break;
		case 'j': json = true; break;
		case 'P': plan_path = optarg; break;
		case 'S': sens_path = optarg; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc)
		return usage(stderr), EXIT_USAGE;
	if (pol_set_load(&set, pol_shipped_dir(), POL_DEFAULT_ETCDIR, &cause) != 0)
		goto fail;
	if (pol_set_find(&set, policy_name) == NULL) {
		cause = cli_no_policy(&set, policy_name, pol_shipped_dir(), POL_DEFAULT_ETCDIR);
		goto fail;
	}
	pol_policy_resolve(pol_set_find(&set, policy_name), NULL, &params);
	if ((b.model = dnn_model_load(argv[optind], &cause)) == NULL ||
	    (b.platform = gov_platform_discover(NULL, &cause)) == NULL)
		goto fail;
	pol_policy_resolve(pol_set_find(&set, policy_name), dnn_model_name(b.model), &params);
	b.in = calloc(dnn_model_input_size(b.model), sizeof(float));
	b.out = calloc(dnn_model_output_size(b.model), sizeof(float));
	b.quiet = json;
	b.devices = pol_devices_new(pol_cache_dir(cache, sizeof(cache)));
	if ((b.runtime = pol_runtime_new(b.model, b.platform, b.devices, &cause)) == NULL)
		goto fail;
	pol_model_from_dnn(&facts, b.model);
	nplaces = pol_places_from_platform(places, POL_MAX_PLACES, b.platform);
	nplaces = pol_places_add_opencl(places, nplaces, POL_MAX_PLACES, b.platform);
	pol_predictor_init(&pr, &facts, places, nplaces);
	b.pr = &pr;
	/* an OpenCL device that cannot run the model is left out, as gearboxd does */
	for (unsigned p = 0; p < nplaces; p++) {
		char *why = NULL;
		if (places[p].kind == POL_PLACE_OPENCL && engine_of(&b, p, 1, &why) == NULL) {
			pr.places[p].disabled = true;
			if (!json)
				fprintf(stderr, "leaving out %s: %s\n", places[p].name, why);
			free(why);
		}
	}
	pol_cache_dir(cache, sizeof(cache));
	if (recalibrate || !params.calibration_cache || pol_predictor_load_why(&pr, cache, &cause) != 0) {
		if (cause && !json) /* a cache file was there but made for something else */
			fprintf(stderr, "%s: measuring again\n", cause);
		free(cause);
		cause = NULL;
		if (pol_predictor_calibrate(&pr, runs ? (unsigned)runs : params.calibration_runs, measure, &b, progress,
		                            &cause) != 0)
			goto fail;
		if (params.calibration_cache && pol_predictor_save(&pr, cache, &cause) != 0) {
			cli_error("%s (going on without the cache)", cause);
			free(cause);
			cause = NULL;
		}
	} else if (!json) {
		fprintf(stderr, "calibration from %s/calibration-%s.json (--recalibrate to measure again)\n", cache,
		        facts.name);
	}
	{
		unsigned cap = pol_table_capacity(&pr);
		if ((points = calloc(cap ? cap : 1, sizeof(*points))) == NULL ||
		    (front = calloc(cap ? cap : 1, sizeof(*front))) == NULL) {
			cause = strdup("out of memory");
			goto fail;
		}
		n = pol_table_build(&pr, &params, NULL, NULL, points, cap);
	}
	k = pol_pareto(points, n, front);
	if (plan_path != NULL) {
		/* the plan's points: on its cluster at its threads, each table point
		 * there again with the latency (and energy: the same power) times
		 * the plan's speed-up measured here, and the accuracy the
		 * predictor gives its int8 layers */
		struct dnn_lplan *plan = dnn_lplan_load(b.model, plan_path, &cause);
		const char *cluster;
		if (plan == NULL)
			goto fail;
		if (sens_path == NULL) {
			const char *dot = strrchr(argv[optind], '.');
			size_t stem = dot && !strcmp(dot, ".safetensors") ? (size_t)(dot - argv[optind]) : strlen(argv[optind]);
			snprintf(sens_default, sizeof(sens_default), "%.*s.sensitivity.json", (int)stem, argv[optind]);
			sens_path = sens_default;
		}
		if (acc_sensitivity_load(&sens, sens_path, dnn_model_fingerprint(b.model), &cause) != 0) {
			dnn_lplan_free(plan);
			goto fail;
		}
		cluster = dnn_lplan_cluster(plan);
		plan_threads = dnn_lplan_threads(plan) ? dnn_lplan_threads(plan) : 1;
		for (plan_place = 0; plan_place < nplaces; plan_place++)
			if (pr.places[plan_place].kind == POL_PLACE_CPU && !pr.places[plan_place].single_cpu &&
			    (!cluster[0] || !strcmp(pr.places[plan_place].name, cluster)))
				break;
		if (plan_place == nplaces || plan_threads > pr.places[plan_place].max_threads) {
			set_cause(&cause, "%s: made for %s x%u, which this machine does not have", plan_path,
			              cluster[0] ? cluster : "a CPU cluster", plan_threads);
			dnn_lplan_free(plan);
			goto fail;
		}
		{
			const char *base = strrchr(plan_path, '/');
			snprintf(plan_label, sizeof(plan_label), "%s", base ? base + 1 : plan_path);
		}
		for (unsigned g = 1; g <= facts.groups && g <= POL_MAX_GROUPS; g++) {
			struct pol_point at = { .groups = g, .place = plan_place, .threads = plan_threads };
			bool int8[ACC_MAX_LAYERS] = { false };
			double fp32 = median_of(&b, &at, runs ? (unsigned)runs : 9);
			if (pol_runtime_set_plan(b.runtime, plan_place, plan_threads, dnn_lplan_copy(plan), plan_label,
			                         &cause) != 0) {
				dnn_lplan_free(plan);
				goto fail;
			}
			double planned = median_of(&b, &at, runs ? (unsigned)runs : 9);
			(void)pol_runtime_set_plan(b.runtime, plan_place, plan_threads, NULL, NULL, NULL);
			speedup[g] = planned > 0 ? fp32 / planned : 1;
			for (unsigned l = 0; l < sens.nlayers; l++)
				int8[l] = dnn_lplan_get(plan, g, sens.layer[l]) == DNN_IMPL_INT8;
			predicted[g] = g <= sens.groups ? dnn_model_accuracy(b.model, g) - (sens.fp32[g] - acc_predict(&sens, g, int8))
			                                : -1;
		}
		dnn_lplan_free(plan);
		if ((fall = calloc(2 * (size_t)n + 1, sizeof(*fall))) == NULL ||
		    (flat = calloc(2 * (size_t)n + 1, sizeof(*flat))) == NULL ||
		    (fen = calloc(2 * (size_t)n + 1, sizeof(*fen))) == NULL) {
			cause = strdup("out of memory");
			goto fail;
		}
		for (unsigned i = 0; i < n; i++) {
			fall[nfall++] = (struct fpoint){ points[i], false };
			if (points[i].place == plan_place && points[i].threads == plan_threads && points[i].groups <= POL_MAX_GROUPS &&
			    predicted[points[i].groups] >= 0) {
				struct fpoint *q = &fall[nfall++];
				*q = (struct fpoint){ points[i], true };
				q->pt.latency_us /= speedup[q->pt.groups];
				q->pt.energy_uj /= speedup[q->pt.groups];
				q->pt.accuracy = predicted[q->pt.groups];
			}
		}
		{
			struct fpoint *tmp = calloc(nfall + 1, sizeof(*tmp));
			if (tmp == NULL) {
				cause = strdup("out of memory");
				goto fail;
			}
			memcpy(tmp, fall, nfall * sizeof(*tmp));
			nflat = front2(tmp, nfall, false, flat);
			memcpy(tmp, fall, nfall * sizeof(*tmp));
			nfen = front2(tmp, nfall, true, fen);
			free(tmp);
		}
	}
	/* The plot first: when it cannot be drawn, nothing has been printed. */
	if (plot != NULL && plan_path != NULL) {
		char title[240];
		snprintf(title, sizeof(title), "%s on this machine, policy %s, with plan %s (latency predicted; plan: accuracy "
		                               "predicted, speed-up measured)",
		         facts.name, params.name, plan_label);
		if (plot_fronts(plot, title, fall, nfall, flat, nflat, fen, nfen, &cause) != 0)
			goto fail;
	} else if (plot != NULL) {
		struct plot_point *pp = calloc(k ? k : 1, sizeof(*pp));
		char title[200];
		for (unsigned i = 0; i < k; i++) {
			pp[i] = (struct plot_point){ front[i].latency_us, front[i].energy_uj, front[i].accuracy, front[i].groups,
				                     "" };
			snprintf(pp[i].label, sizeof(pp[i].label), "%s x%u", pr.places[front[i].place].name, front[i].threads);
		}
		snprintf(title, sizeof(title), "%s on this machine, policy %s (predicted)", facts.name, params.name);
		if (plot_pareto(plot, title, pp, k, &cause) != 0) {
			free(pp);
			goto fail;
		}
		free(pp);
	}
	if (json) {
		out = json_object_new_object();
		list = json_object_new_array();
		json_object_object_add(out, "model", json_object_new_string(facts.name));
		json_object_object_add(out, "policy", json_object_new_string(params.name));
		json_object_object_add(out, "simulated", json_object_new_boolean(false));
		json_object_object_add(out, "points", json_object_new_int((int)n));
		json_object_object_add(out, "front_points", json_object_new_int((int)k));
		json_object_object_add(out, all ? "all" : "front", list);
	} else {
		if (all)
			printf("%s under policy %s: all %u operating points, %u of them on the Pareto front", facts.name,
			       params.name, n, k);
		else
			printf("%s under policy %s: %u of %u operating points on the Pareto front", facts.name, params.name, k, n);
		printf(" (predicted; energy from the %s power model)\n%3s  %-10s %7s %8s %9s %11s %11s%s\n",
		       pr.places[0].power_source, "g", "placement", "threads", "MHz", "accuracy", "latency_us", "energy_uj",
		       validate ? "  measured_us   error" : "");
	}
	double *meas_x = validate ? calloc((all ? n : k) + 1, sizeof(double)) : NULL;
	double *meas_y = validate ? calloc((all ? n : k) + 1, sizeof(double)) : NULL;
	unsigned nmeas = 0;
	for (unsigned i = 0; i < (all ? n : k); i++) {
		const struct pol_point *pt = all ? &points[i] : &front[i];
		double measured = NAN;
		if (validate) {
			measured = median_of(&b, pt, runs ? (unsigned)runs : 9);
			if (meas_x && meas_y && !all)
				meas_x[nmeas] = measured / 1e3, meas_y[nmeas] = pt->accuracy * 100, nmeas++;
			double e = fabs(pt->latency_us - measured) / measured;
			err_sum += e;
			err_max = fmax(err_max, e);
			nvalid++;
		}
		if (json)
			json_object_array_add(list, point_json(&pr, pt, measured));
		else
			print_point(&pr, pt, measured);
	}
	if (plan_path != NULL && json) {
		struct json_object *pj = json_object_new_object(), *sp = json_object_new_array(), *pa = json_object_new_array();
		json_object_object_add(pj, "file", json_object_new_string(plan_path));
		json_object_object_add(pj, "sensitivity", json_object_new_string(sens_path));
		json_object_object_add(pj, "placement", json_object_new_string(pr.places[plan_place].name));
		json_object_object_add(pj, "threads", json_object_new_int((int)plan_threads));
		for (unsigned g = 1; g <= facts.groups && g <= POL_MAX_GROUPS; g++) {
			json_object_array_add(sp, json_num(speedup[g], 3));
			json_object_array_add(pa, predicted[g] >= 0 ? json_num(predicted[g], 4) : NULL);
		}
		json_object_object_add(pj, "speedup", sp);
		json_object_object_add(pj, "predicted_accuracy", pa);
		json_object_object_add(out, "plan", pj);
		json_object_object_add(out, "latency_front", fronts_json(&pr, flat, nflat, plan_label));
		json_object_object_add(out, "energy_front", fronts_json(&pr, fen, nfen, plan_label));
	} else if (plan_path != NULL) {
		printf("\nwith plan %s on %s x%u: speed-up measured here", plan_label, pr.places[plan_place].name, plan_threads);
		for (unsigned g = 1; g <= facts.groups && g <= POL_MAX_GROUPS; g++)
			printf("%s g=%u %.2fx", g > 1 ? "," : "", g, speedup[g]);
		printf("; accuracy predicted from %s\n", sens_path);
		for (unsigned panel = 0; panel < 2; panel++) {
			const struct fpoint *f = panel ? fen : flat;
			printf("accuracy-%s front (p: accuracy predicted, the others measured):\n%3s  %-10s %7s %8s %-12s %9s %11s "
			       "%11s\n",
			       panel ? "energy" : "latency", "g", "placement", "threads", "MHz", "plan", "accuracy", "latency_us",
			       "energy_uj");
			for (unsigned i = 0; i < (panel ? nfen : nflat); i++)
				print_fpoint(&pr, &f[i], plan_label);
		}
	}
	if (json) {
		if (validate) {
			struct json_object *e = json_object_new_object();
			json_object_object_add(e, "mean", json_num(err_sum / nvalid, 4));
			json_object_object_add(e, "max", json_num(err_max, 4));
			json_object_object_add(e, "points", json_object_new_int((int)nvalid));
			json_object_object_add(out, "prediction_error", e);
		}
		puts(json_object_to_json_string_ext(out, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
		                                             JSON_C_TO_STRING_NOSLASHESCAPE));
	} else if (validate) {
		printf("prediction error over %u points: mean %.1f%%, max %.1f%% (%u of them measured for calibration)\n",
		       nvalid, 100 * err_sum / nvalid, 100 * err_max, pr.measurements);
	}
	if (plot != NULL && validate && nmeas > 0) {
		/* again, with the measured latencies marked apart from the predicted */
		double *px = calloc(k + 1, sizeof(double)), *py = calloc(k + 1, sizeof(double));
		struct plot_series se[2];
		const char *xl[1] = { "latency (ms)" }, *yl[1] = { "top-1 accuracy (%)" };
		size_t per[1] = { 2 };
		char title[200];
		for (unsigned i = 0; px && py && i < k; i++)
			px[i] = front[i].latency_us / 1e3, py[i] = front[i].accuracy * 100;
		se[0] = (struct plot_series){ "front, predicted", px, py, k, "points", 7, 1.2, 1 };
		se[1] = (struct plot_series){ "the same points, measured", meas_x, meas_y, nmeas, "points", 4, 1.6, 2 };
		snprintf(title, sizeof(title), "%s on this machine, policy %s: predicted and measured", facts.name,
		         params.name);
		int rc = px && py ? plot_panels(plot, title, 1, xl, yl, se, per, &cause) : -1;
		free(px);
		free(py);
		if (rc != 0) {
			free(meas_x);
			free(meas_y);
			goto fail;
		}
	}
	free(meas_x);
	free(meas_y);
	if (plot != NULL && !json)
		printf("plot: %s\n", plot);
	ret = 0;
fail:
	if (cause != NULL) {
		cli_error("%s", cause);
		free(cause);
	}
	json_object_put(out);
	free(fall);
	free(flat);
	free(fen);
	free(points);
	free(front);
	pol_runtime_free(b.runtime);
	pol_devices_free(b.devices);
	free(b.in);
	free(b.out);
	if (b.platform)
		gov_platform_free(b.platform);
	dnn_model_free(b.model);
	pol_set_clear(&set);
	return ret;
}
