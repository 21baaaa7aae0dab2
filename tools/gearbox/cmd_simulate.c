/* SPDX-License-Identifier: MIT */
/* gearbox simulate: run the real policy code (policies/: table, selection,
 * feedback, step controller) against a platform model instead of hardware.
 * The platform file gives latency per operating point (from the model's
 * MACs per g, throughput per cycle, threads and frequency) and power; the
 * trace gives the co-runner load over time. Everything printed is labelled
 * simulated. */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/json_num.h"
#include "common/plot.h"
#include "dnn/dnn.h"
#include "policies/control.h"
#include "policies/policy.h"
#include "tools/gearbox/cli.h"

struct sim_ctx {
	const struct pol_sim *sim;
	const struct pol_model *model;
};

/* Calibration on the simulated board: unloaded truth. */
static int
sim_measure(void *ctx, const struct pol_point *pt, double *us, char **cause)
{
	const struct sim_ctx *s = ctx;

	(void)cause;
	*us = pol_sim_latency(s->sim, s->model, pt, 0.0);
	return 0;
}

static void
usage(FILE *out)
{
	fputs("Usage: gearbox simulate --platform xu3|nano|FILE [OPTIONS]\n"
	      "\n"
	      "Runs gearbox's policy code against a platform model (SIMULATED: no hardware is\n"
	      "touched) and prints its decisions, deadlines met, accuracy and energy over time.\n"
	      "\n"
	      "  --platform P        xu3 (Odroid XU3), nano (Jetson Nano), or a platform file\n"
	      "  --model FILE        the model (default: the bundled one)\n"
	      "  --trace LOAD.csv    co-runner load: lines 'time_s,placement,load' (load 0..1,\n"
	      "                      placement a name from the platform file or 'all')\n"
	      "  --deadline-us N     deadline per request (default: 1.5 x all groups on the\n"
	      "                      fastest point)\n"
	      "  --energy-uj N       energy budget per request\n"
	      "  --min-accuracy X    accuracy floor\n"
	      "  --policy NAME       policy (default: default)\n"
	      "  --rate HZ           requests per second (default 30)\n"
	      "  --duration S        seconds to simulate (default: the trace's last time + 5)\n"
	      "  --seed N            noise seed (default 1)\n"
	      "  --plot FILE.png     latency, chosen g and load over time (needs gnuplot)\n"
	      "  --json              one JSON object per request, then a summary object\n",
	      out);
}

static uint64_t rng_state;

static double
noise(void)
{
	rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
	return 1.0 + 0.03 * ((double)(rng_state % 20001) / 10000.0 - 1.0);
}

/* One object on one line (JSON Lines), then freed. */
static void
print_json_line(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

/* Time and energy dynamic range over every point at no load: all points
 * (mapping and DVFS with g), and g alone on the fastest placement at its
 * highest frequency. */
static void
dynamic_range(const struct pol_point *pts, unsigned n, bool json)
{
	double tmin = INFINITY, tmax = 0, emin = INFINITY, emax = 0, fast_t1 = 0, fast_tG = 0, fast_e1 = 0, fast_eG = 0;
	const struct pol_point *fastest = NULL;
	unsigned G = 0;

	for (unsigned i = 0; i < n; i++) {
		tmin = fmin(tmin, pts[i].latency_us), tmax = fmax(tmax, pts[i].latency_us);
		emin = fmin(emin, pts[i].energy_uj), emax = fmax(emax, pts[i].energy_uj);
		G = pts[i].groups > G ? pts[i].groups : G;
		if (fastest == NULL || pts[i].latency_us < fastest->latency_us)
			fastest = &pts[i];
	}
	for (unsigned i = 0; i < n; i++)
		if (pts[i].place == fastest->place && pts[i].threads == fastest->threads && pts[i].freq == fastest->freq) {
			if (pts[i].groups == 1)
				fast_t1 = pts[i].latency_us, fast_e1 = pts[i].energy_uj;
			if (pts[i].groups == G)
				fast_tG = pts[i].latency_us, fast_eG = pts[i].energy_uj;
		}
	if (json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "dynamic_range", json_object_new_boolean(true));
		json_object_object_add(o, "simulated", json_object_new_boolean(true));
		json_object_object_add(o, "points", json_object_new_int((int)n));
		json_object_object_add(o, "time", json_num(tmax / tmin, 2));
		json_object_object_add(o, "energy", json_num(emax / emin, 2));
		json_object_object_add(o, "time_groups_only", json_num(fast_tG / fast_t1, 2));
		json_object_object_add(o, "energy_groups_only", json_num(fast_eG / fast_e1, 2));
		json_object_object_add(o, "fastest_us", json_num(tmin, 1));
		json_object_object_add(o, "slowest_us", json_num(tmax, 1));
		json_object_object_add(o, "least_uj", json_num(emin, 1));
		json_object_object_add(o, "most_uj", json_num(emax, 1));
		print_json_line(o);
	} else
		printf("[simulated] operating-point space: %u points; time range %.1fx (%.0f..%.0f us), energy range "
		       "%.1fx (%.0f..%.0f uJ); groups alone (fastest placement): time %.2fx, energy %.2fx\n",
		       n, tmax / tmin, tmin, tmax, emax / emin, emin, emax, fast_tG / fast_t1, fast_eG / fast_e1);
}

int
cmd_simulate(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "platform", required_argument, NULL, 'P' }, { "model", required_argument, NULL, 'm' },
		{ "trace", required_argument, NULL, 't' },    { "deadline-us", required_argument, NULL, 'd' },
		{ "energy-uj", required_argument, NULL, 'e' }, { "min-accuracy", required_argument, NULL, 'a' },
		{ "policy", required_argument, NULL, 'p' },   { "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'D' }, { "seed", required_argument, NULL, 's' },
		{ "plot", required_argument, NULL, 'o' },     { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
	};
	const char *platform = NULL, *model_path = GEARBOX_DATADIR "/models/fmnist-alexnet-g4.safetensors";
	const char *trace_path = NULL, *policy_name = "default", *plot = NULL;
	double deadline = 0, energy = 0, min_acc = 0, rate = 30, duration = 0;
	unsigned long seed = 1;
	bool json = false;
	static struct pol_sim sim;
	static struct pol_control ctl;
	struct pol_point *pts = NULL;
	struct pol_trace trace = { 0 };
	struct pol_set set = { 0 };
	struct pol_params params, all_params;
	struct pol_model facts;
	struct pol_session session = { 0 };
	struct dnn_model *model = NULL;
	struct plot_sample *samples = NULL;
	char *cause = NULL, *end;
	int ch, longindex = 0, ret = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, &longindex)) != -1) {
		double *target = NULL;
		switch (ch) {
		case 'P': platform = optarg; break;
		case 'm': model_path = optarg; break;
		case 't': trace_path = optarg; break;
		case 'p': policy_name = optarg; break;
		case 'o': plot = optarg; break;
		case 'j': json = true; break;
		case 's':
			if (cli_parse_uint(optarg, 0, ~0ul, &seed) != 0)
				return cli_error("--seed takes a whole number"), EXIT_USAGE;
			break;
		case 'd': target = &deadline; break;
		case 'e': target = &energy; break;
		case 'a': target = &min_acc; break;
		case 'r': target = &rate; break;
		case 'D': target = &duration; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
		if (target != NULL) {
			*target = strtod(optarg, &end);
			if (*end || end == optarg || !(*target >= 0) || (ch == 'a' && *target > 1) || (ch == 'r' && *target <= 0))
				return cli_error("--%s: '%s' is not a valid number", longopts[longindex].name, optarg), EXIT_USAGE;
		}
	}
	if (platform == NULL || optind != argc)
		return usage(stderr), EXIT_USAGE;
	if (pol_sim_load(platform, &sim, &cause) != 0 || pol_set_load(&set, pol_shipped_dir(), POL_DEFAULT_ETCDIR, &cause) != 0 ||
	    (trace_path && pol_trace_load(trace_path, &trace, &cause) != 0) ||
	    (model = dnn_model_load(model_path, &cause)) == NULL)
		goto out;
	if (pol_set_find(&set, policy_name) == NULL) {
		cause = cli_no_policy(&set, policy_name, pol_shipped_dir(), POL_DEFAULT_ETCDIR);
		goto out;
	}
	pol_policy_resolve(pol_set_find(&set, policy_name), dnn_model_name(model), &params);
	pol_model_from_dnn(&facts, model);
	if (pol_control_init(&ctl, &facts, sim.places, sim.nplaces, &cause) != 0)
		goto out;
	struct sim_ctx ctx = { &sim, &facts };
	if (pol_predictor_calibrate(&ctl.predictor, 1, sim_measure, &ctx, NULL, &cause) != 0)
		goto out;

	/* the whole space, unrestricted, for the dynamic range and the default deadline */
	pol_params_defaults(&all_params, "all");
	if ((pts = calloc(ctl.table_cap ? ctl.table_cap : 1, sizeof(*pts))) == NULL) {
		cause = strdup("out of memory");
		goto out;
	}
	unsigned nall = pol_table_build(&ctl.predictor, &all_params, NULL, NULL, pts, ctl.table_cap);
	if (deadline == 0 && energy == 0) {
		double best = INFINITY;
		for (unsigned i = 0; i < nall; i++)
			if (pts[i].groups == facts.groups)
				best = fmin(best, pts[i].latency_us);
		deadline = round(1.5 * best);
	}
	if (!json)
		printf("[simulated] %s; model %s (G=%u); policy %s; deadline %.0f us, energy %.0f uJ, %.0f requests/s\n",
		       sim.name, facts.name, facts.groups, params.name, deadline, energy, rate);
	dynamic_range(pts, nall, json);

	if (duration == 0)
		duration = (trace.n ? trace.rows[trace.n - 1].t : 0) + 5;
	unsigned nreq = (unsigned)(duration * rate), met = 0, energy_met = 0, infeasible = 0;
	double acc_sum = 0, uj_sum = 0;
	struct pol_point last = { 0 };
	samples = calloc(nreq ? nreq : 1, sizeof(*samples));
	rng_state = 0x9E3779B97F4A7C15ull ^ seed;
	for (unsigned i = 0; i < nreq; i++) {
		double t = i / rate;
		struct pol_budget b = { deadline, energy, min_acc };
		/* the same loop as gearboxd's: choose, run (the platform model), learn */
		struct pol_choice c = pol_control_choose(&ctl, &params, &b, &session, NULL);
		const struct pol_point *pt = &c.point;
		double load = pol_trace_load_at(&trace, t, sim.places[pt->place].name);
		double us = pol_sim_latency(&sim, &facts, pt, load) * noise();
		double uj = pt->power_w * us;
		struct pol_outcome ran = { .latency_us = us, .sensor_uj = uj, .end_to_end_us = us, .deadline_us = deadline };
		pol_control_learn(&ctl, &params, pt, &ran, &session);
		bool ok = deadline == 0 || us <= deadline, eok = energy == 0 || uj <= energy;
		met += ok, energy_met += eok, infeasible += !c.feasible;
		acc_sum += pt->accuracy;
		uj_sum += uj;
		samples[i] = (struct plot_sample){ t, us, deadline, load, pt->groups, pt->place, pt->khz / 1e3, uj };
		if (json) {
			struct json_object *o = json_object_new_object();
			json_object_object_add(o, "t_s", json_num(t, 3));
			json_object_object_add(o, "simulated", json_object_new_boolean(true));
			json_object_object_add(o, "load", json_num(load, 2));
			json_object_object_add(o, "groups", json_object_new_int((int)pt->groups));
			json_object_object_add(o, "placement", json_object_new_string(sim.places[pt->place].name));
			json_object_object_add(o, "threads", json_object_new_int((int)pt->threads));
			json_object_object_add(o, "freq_khz", json_object_new_int64((int64_t)pt->khz));
			json_object_object_add(o, "latency_us", json_num(us, 1));
			json_object_object_add(o, "predicted_us", json_num(pt->latency_us, 1));
			json_object_object_add(o, "energy_uj", json_num(uj, 1));
			json_object_object_add(o, "accuracy", pt->accuracy >= 0 ? json_num(pt->accuracy, 4) : NULL);
			json_object_object_add(o, "deadline_met", json_object_new_boolean(ok));
			json_object_object_add(o, "feasible", json_object_new_boolean(c.feasible));
			print_json_line(o);
		} else if (i == 0 || pt->groups != last.groups || pt->place != last.place || pt->threads != last.threads ||
		           pt->freq != last.freq) {
			printf("t=%7.2fs load %.2f: g=%u on %s x%u at %lu MHz, %.0f us (%s), %.0f uJ%s%s\n", t, load, pt->groups,
			       sim.places[pt->place].name, pt->threads, pt->khz / 1000, us, ok ? "met" : "MISSED", uj,
			       c.feasible ? "" : "; infeasible: ", c.feasible ? "" : c.reason);
		}
		last = *pt;
	}
	if (json) {
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "summary", json_object_new_boolean(true));
		json_object_object_add(o, "simulated", json_object_new_boolean(true));
		json_object_object_add(o, "platform", json_object_new_string(sim.name));
		json_object_object_add(o, "model", json_object_new_string(facts.name));
		json_object_object_add(o, "policy", json_object_new_string(params.name));
		json_object_object_add(o, "requests", json_object_new_int64(nreq));
		json_object_object_add(o, "deadline_hit_rate", json_num(nreq ? (double)met / nreq : 0, 4));
		json_object_object_add(o, "energy_hit_rate", json_num(nreq ? (double)energy_met / nreq : 0, 4));
		json_object_object_add(o, "mean_accuracy", json_num(nreq ? acc_sum / nreq : 0, 4));
		json_object_object_add(o, "mean_energy_uj", json_num(nreq ? uj_sum / nreq : 0, 1));
		json_object_object_add(o, "infeasible", json_object_new_int64(infeasible));
		print_json_line(o);
	} else
		printf("[simulated] %u requests: %.2f%% deadlines met, mean accuracy %.2f%%, mean energy %.0f uJ per "
		       "inference, %u infeasible\n",
		       nreq, nreq ? 100.0 * met / nreq : 0, nreq ? 100 * acc_sum / nreq : 0, nreq ? uj_sum / nreq : 0,
		       infeasible);
	if (plot != NULL) {
		char title[320];
		const char *names[POL_MAX_PLACES];
		for (unsigned p = 0; p < sim.nplaces; p++)
			names[p] = sim.places[p].name;
		/* say "simulated" once: the shipped platforms' names already do */
		snprintf(title, sizeof(title), "%s%s; model %s, policy %s, deadline %.0f us",
		         strstr(sim.name, "simulated") ? "" : "simulated: ", sim.name, facts.name, params.name, deadline);
		if (plot_timeseries(plot, title, samples, nreq, names, sim.nplaces, facts.groups, &cause) != 0)
			goto out;
		if (!json)
			printf("plot: %s\n", plot);
	}
	ret = 0;
out:
	if (cause != NULL) {
		cli_error("%s", cause);
		free(cause);
	}
	free(samples);
	free(pts);
	pol_control_free(&ctl);
	pol_trace_free(&trace);
	pol_set_clear(&set);
	dnn_model_free(model);
	return ret;
}
