/* SPDX-License-Identifier: MIT */
/* gearbox solve: the tenant solver (policies/tenants.h) on a modelled
 * platform: what-ifs of which tenant gets which placement, threads,
 * frequency and g, and what binds. Latency and power come from the
 * platform model (policies/platforms/), accuracy from the model files; all
 * of it is labelled simulated. */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "common/cause.h"
#include "common/plot.h"
#include "dnn/dnn.h"
#include "policies/accuracy.h"
#include "policies/milp.h"
#include "policies/policy.h"
#include "policies/tenants.h"
#include "policies/tenants_file.h"
#include "tools/gearbox/cli.h"

#define MAX_MODELS 8

static void
usage(FILE *out)
{
	fputs("Usage: gearbox solve --platform xu3|nano|FILE --tenants FILE [OPTIONS]\n"
	      "\n"
	      "Chooses one operating point (g, placement, threads, frequency) per tenant on a\n"
	      "platform model by integer programming (SIMULATED: latency and power are modelled):\n"
	      "weighted accuracy is maximised (or energy minimised) under every deadline,\n"
	      "utilisation <= 1 per placement, one frequency per cluster, the power cap and memory.\n"
	      "\n"
	      "  --platform P        xu3 (Odroid XU3), nano (Jetson Nano), or a platform file\n"
	      "  --tenants FILE      [tenant NAME] sections (see gearbox-solve(1))\n"
	      "  --objective accuracy|energy   override the file's\n"
	      "  --power-cap W       override the file's power cap (0 = none)\n"
	      "  --plot FILE.png     each tenant's candidates and its point; the plan's front\n"
	      "                      (weighted accuracy against the power cap)\n"
	      "  --json              one JSON object\n",
	      out);
}

struct sim_ctx {
	const struct pol_sim *sim;
	const struct pol_model *model;
};

static int
sim_measure(void *ctx, const struct pol_point *pt, double *us, char **cause)
{
	const struct sim_ctx *s = ctx;

	(void)cause;
	*us = pol_sim_latency(s->sim, s->model, pt, 0.0);
	return 0;
}

/* Candidates of one tenant: its model (MACs scaled) calibrated on the
 * platform model, every point. Its weights (scaled with the MACs) are
 * shared with the other tenants of the same model (tenants.h), so a scaled
 * what-if is a model of its own: "NAME x8". */
static int
tenant_candidates(const struct pol_sim *sim, const struct dnn_model *model, double scale, struct ten_candidate **out,
                  unsigned *n, char *model_name, char **cause)
{
	static struct pol_predictor pr;
	struct pol_model facts;
	struct pol_params all;
	double weights[POL_MAX_GROUPS + 1] = { 0 }, buffers[POL_MAX_GROUPS + 1] = { 0 };
	unsigned cap;

	pol_model_from_dnn(&facts, model);
	for (unsigned g = 1; g <= facts.groups; g++) {
		facts.macs[g] *= scale;
		weights[g] = (double)dnn_model_weight_bytes(model, g) * scale;
		buffers[g] = (double)dnn_model_buffer_bytes(model, g);
	}
	if (scale == 1)
		snprintf(model_name, POL_NAME, "%s", facts.name);
	else
		snprintf(model_name, POL_NAME, "%.40s x%g", facts.name, scale);
	pol_predictor_init(&pr, &facts, sim->places, sim->nplaces);
	struct sim_ctx ctx = { sim, &facts };
	if (pol_predictor_calibrate(&pr, 1, sim_measure, &ctx, NULL, cause) != 0)
		return -1;
	pol_params_defaults(&all, "all");
	cap = pol_table_capacity(&pr);
	if ((*out = calloc(cap ? cap : 1, sizeof(**out))) == NULL)
		return set_cause(cause, "out of memory");
	*n = ten_candidates_from_predictor(&pr, &all, weights, buffers, *out, cap);
	return 0;
}

/* Every candidate again with the int8 plan (every int8-capable layer):
 * accuracy from the accuracy predictor (the drop it predicts, off the
 * model's own accuracy at g), latency and energy divided by the assumed
 * speed-up, weights 0.3 of the fp32 ones (a byte a weight, and a float
 * scale and bias per channel: dnn_lplan_weight_bytes), a copy of their own
 * (plan "int8": shared only with the model's other int8 tenants). The
 * buffers stay: activations are floats, quantised as each layer reads
 * them. */
static int
int8_candidates(const struct dnn_model *m, const char *path, double speedup, struct ten_candidate **c, unsigned *n,
                char **cause)
{
	static struct acc_sensitivity sens;
	bool all[ACC_MAX_LAYERS];
	struct ten_candidate *grown;

	if (acc_sensitivity_load(&sens, path, dnn_model_fingerprint(m), cause) != 0)
		return -1;
	if (!(speedup > 0))
		return set_cause(cause, "%s: a tenant with a sensitivity file needs int8_speedup", path);
	for (unsigned k = 0; k < ACC_MAX_LAYERS; k++)
		all[k] = true;
	if ((grown = realloc(*c, 2 * (*n ? *n : 1) * sizeof(**c))) == NULL)
		return set_cause(cause, "out of memory");
	*c = grown;
	for (unsigned k = 0; k < *n; k++) {
		struct ten_candidate *q = &grown[*n + k];
		unsigned g = grown[k].point.groups;
		*q = grown[k];
		snprintf(q->plan, sizeof(q->plan), "int8");
		q->point.latency_us /= speedup;
		q->point.energy_uj /= speedup;
		if (g <= sens.groups)
			q->point.accuracy = grown[k].point.accuracy - (sens.fp32[g] - acc_predict(&sens, g, all));
		q->accuracy_predicted = true;
		q->weight_bytes = grown[k].weight_bytes * 0.3;
	}
	*n *= 2;
	return 0;
}

static const char *
place_name(const struct ten_problem *p, const struct ten_result *r, unsigned i)
{
	return r->a[i].cand >= 0 ? p->places[p->cands[i][r->a[i].cand].point.place].name : "-";
}

static json_object *
result_json(const struct ten_problem *p, const struct ten_result *r, const struct ten_file *s, const char *platform,
            const struct ten_result *greedy)
{
	json_object *o = json_object_new_object(), *ts = json_object_new_array(), *pl = json_object_new_array(),
	            *bs = json_object_new_array(), *mip = json_object_new_object(), *gr = json_object_new_object();

	json_object_object_add(o, "simulated", json_object_new_boolean(1));
	json_object_object_add(o, "platform", json_object_new_string(platform));
	json_object_object_add(o, "objective", json_object_new_string(p->objective == TEN_MIN_ENERGY ? "energy" : "accuracy"));
	json_object_object_add(o, "power_cap_w", json_object_new_double(p->power_cap_w));
	json_object_object_add(o, "all_served", json_object_new_boolean(r->all_served));
	json_object_object_add(o, "dropped_weight", json_object_new_double(r->dropped_weight));
	json_object_object_add(o, "objective_value", json_object_new_double(r->objective));
	json_object_object_add(o, "weighted_accuracy", json_object_new_double(r->weighted_accuracy));
	json_object_object_add(o, "power_w", json_object_new_double(r->power_w));
	json_object_object_add(o, "memory_bytes", json_object_new_double(r->mem_bytes));
	json_object_object_add(o, "weight_bytes", json_object_new_double(r->weight_bytes));
	for (unsigned i = 0; i < p->ntenants; i++) {
		json_object *t = json_object_new_object();
		const struct ten_tenant *tt = &p->tenants[i];
		json_object_object_add(t, "name", json_object_new_string(tt->name));
		json_object_object_add(t, "model", json_object_new_string(tt->model));
		json_object_object_add(t, "rate_hz", json_object_new_double(tt->rate_hz));
		json_object_object_add(t, "deadline_us", json_object_new_double(tt->deadline_us));
		json_object_object_add(t, "weight", json_object_new_double(tt->weight));
		json_object_object_add(t, "served", json_object_new_boolean(r->a[i].cand >= 0));
		if (r->a[i].cand >= 0) {
			const struct ten_candidate *c = &p->cands[i][r->a[i].cand];
			json_object_object_add(t, "groups", json_object_new_int((int)c->point.groups));
			json_object_object_add(t, "placement", json_object_new_string(place_name(p, r, i)));
			json_object_object_add(t, "threads", json_object_new_int((int)c->point.threads));
			json_object_object_add(t, "khz", json_object_new_int64((int64_t)c->point.khz));
			json_object_object_add(t, "plan", json_object_new_string(c->plan));
			json_object_object_add(t, "accuracy", json_object_new_double(c->point.accuracy));
			json_object_object_add(t, "accuracy_predicted", json_object_new_boolean(c->accuracy_predicted));
			json_object_object_add(t, "latency_us", json_object_new_double(c->point.latency_us));
			json_object_object_add(t, "energy_uj", json_object_new_double(c->point.energy_uj));
			json_object_object_add(t, "util", json_object_new_double(r->a[i].util));
			json_object_object_add(t, "power_w", json_object_new_double(r->a[i].power_w));
		}
		json_object_object_add(t, "why", json_object_new_string(r->a[i].why));
		json_object_array_add(ts, t);
	}
	json_object_object_add(o, "tenants", ts);
	for (unsigned q = 0; q < p->nplaces; q++) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "name", json_object_new_string(p->places[q].name));
		json_object_object_add(x, "used", json_object_new_boolean(r->freq[q] >= 0));
		json_object_object_add(x, "khz", json_object_new_int64(r->freq[q] >= 0 ? (int64_t)p->places[q].freqs_khz[r->freq[q]] : 0));
		json_object_object_add(x, "util", json_object_new_double(r->util[q]));
		json_object_object_add(x, "capacity",
		                       json_object_new_double((p->places[q].kind == POL_PLACE_CPU ? p->places[q].max_threads : 1) * p->max_util));
		json_object_array_add(pl, x);
	}
	json_object_object_add(o, "places", pl);
	for (unsigned k = 0; k < r->nbind; k++) {
		json_object *b = json_object_new_object();
		json_object_object_add(b, "what", json_object_new_string(r->bind[k].what));
		json_object_object_add(b, "binds", json_object_new_boolean(r->bind[k].binds));
		json_object_object_add(b, "used", json_object_new_double(r->bind[k].used));
		json_object_object_add(b, "limit", json_object_new_double(r->bind[k].limit));
		json_object_object_add(b, "gain", json_object_new_double(r->bind[k].gain));
		json_object_object_add(b, "weight_gain", json_object_new_double(r->bind[k].weight_gain));
		json_object_array_add(bs, b);
	}
	json_object_object_add(o, "constraints", bs);
	json_object_object_add(mip, "solver", json_object_new_string(milp_backend()));
	json_object_object_add(mip, "rows", json_object_new_int((int)r->rows));
	json_object_object_add(mip, "cols", json_object_new_int((int)r->cols));
	json_object_object_add(mip, "binaries", json_object_new_int((int)r->binaries));
	json_object_object_add(mip, "candidates_kept", json_object_new_int((int)r->candidates_kept));
	json_object_object_add(mip, "candidates_total", json_object_new_int((int)r->candidates_total));
	json_object_object_add(mip, "solve_ms", json_object_new_double(r->solve_us / 1e3));
	json_object_object_add(mip, "solve_cpu_ms", json_object_new_double(r->solve_cpu_us / 1e3));
	json_object_object_add(mip, "proven", json_object_new_boolean(r->proven));
	json_object_object_add(mip, "explain_ms", json_object_new_double(r->explain_us / 1e3));
	json_object_object_add(mip, "nodes", json_object_new_int64(r->nodes));
	json_object_object_add(o, "mip", mip);
	json_object_object_add(gr, "objective_value", json_object_new_double(greedy->objective));
	json_object_object_add(gr, "weighted_accuracy", json_object_new_double(greedy->weighted_accuracy));
	json_object_object_add(gr, "dropped_weight", json_object_new_double(greedy->dropped_weight));
	json_object_object_add(gr, "power_w", json_object_new_double(greedy->power_w));
	json_object_object_add(o, "greedy", gr);
	(void)s;
	return o;
}

static void
print_text(const struct ten_problem *p, const struct ten_result *r, const char *platform, const struct ten_result *g)
{
	printf("[simulated] %s; %u tenants; objective %s", platform, p->ntenants,
	       p->objective == TEN_MIN_ENERGY ? "least energy" : "weighted accuracy");
	if (p->power_cap_w > 0)
		printf("; power cap %.2f W", p->power_cap_w);
	if (p->memory_bytes > 0)
		printf("; memory %.0f MiB", p->memory_bytes / 1048576.0);
	printf("\nMIP (%s): %u of %u candidates kept; %u rows x %u columns (%u binary); solved in %.2f ms (%.2f ms CPU; "
	       "%u solve%s, %ld nodes)%s\n\n",
	       milp_backend(), r->candidates_kept, r->candidates_total, r->rows, r->cols, r->binaries, r->solve_us / 1e3,
	       r->solve_cpu_us / 1e3, r->solves, r->solves == 1 ? "" : "s", r->nodes,
	       r->proven ? "" : "; NOT proven optimal in the time limit");
	printf("%-10s %8s %9s  %-26s %8s %9s %9s %6s %7s  %s\n", "tenant", "rate/s", "deadline", "point", "accuracy",
	       "latency", "energy", "util", "power", "why");
	for (unsigned i = 0; i < p->ntenants; i++) {
		const struct ten_tenant *t = &p->tenants[i];
		char desc[128] = "dropped";
		if (r->a[i].cand >= 0) {
			const struct ten_candidate *c = &p->cands[i][r->a[i].cand];
			ten_candidate_describe(p, c, desc, sizeof(desc));
			printf("%-10s %8.1f %6.0f us  %-26s %8.4f %6.0f us %6.0f uJ %6.3f %5.3f W  %s\n", t->name, t->rate_hz,
			       t->deadline_us, desc, c->point.accuracy, c->point.latency_us, c->point.energy_uj, r->a[i].util,
			       r->a[i].power_w, r->a[i].why);
		} else {
			printf("%-10s %8.1f %6.0f us  %-26s %8s %9s %9s %6s %7s  %s\n", t->name, t->rate_hz, t->deadline_us, desc,
			       "-", "-", "-", "-", "-", r->a[i].why);
		}
	}
	printf("\nplacements:");
	for (unsigned q = 0; q < p->nplaces; q++) {
		if (r->freq[q] < 0) {
			printf(" %s unused;", p->places[q].name);
			continue;
		}
		printf(" %s @%lu MHz, utilisation %.2f of %.0f;", p->places[q].name, p->places[q].freqs_khz[r->freq[q]] / 1000,
		       r->util[q], (p->places[q].kind == POL_PLACE_CPU ? p->places[q].max_threads : 1) * p->max_util);
	}
	printf("\ntotal: weighted accuracy %.4f, power %.3f W (average), dropped weight %g\n", r->weighted_accuracy,
	       r->power_w, r->dropped_weight);
	printf("binding:");
	unsigned nb = 0;
	for (unsigned k = 0; k < r->nbind; k++) {
		const struct ten_binding *b = &r->bind[k];
		if (!b->binds)
			continue;
		nb++;
		printf("\n  %s", b->what);
		if (b->limit > 0)
			printf(" (%.3g of %.3g)", b->used, b->limit);
		if (b->weight_gain > 0)
			printf(": relaxed, it would serve %g more weight", b->weight_gain);
		else if (b->gain > 0)
			printf(": relaxed, the objective would gain %.4f", b->gain);
	}
	printf("%s\n", nb ? "" : " nothing (every tenant has its best point)");
	printf("greedy (heaviest first, best point that still fits): objective %.4f, weighted accuracy %.4f, dropped "
	       "weight %g; the MIP is %+.4f\n",
	       g->objective, g->weighted_accuracy, g->dropped_weight, r->objective - g->objective);
}

static int
plot(const char *png, struct ten_problem *p, const struct ten_result *r, const char *platform, char **cause)
{
	/* panel 1: each tenant's candidates that meet its budgets, and its point;
	 * panel 2: weighted accuracy (or power) against the power cap */
	struct plot_series se[2 * TEN_MAX_TENANTS + 2];
	double *bufs[2 * TEN_MAX_TENANTS + 4] = { 0 };
	size_t per[2] = { 0, 0 }, ns = 0, nb = 0;
	char names[2 * TEN_MAX_TENANTS][80];
	double cap0 = p->power_cap_w, xs[16], ym[16], yg[16];
	unsigned steps = 16;
	int ret = -1;

	for (unsigned i = 0; i < p->ntenants; i++) {
		double *x = calloc(p->ncands[i] + 1, sizeof(double)), *y = calloc(p->ncands[i] + 1, sizeof(double));
		size_t n = 0;
		bufs[nb++] = x, bufs[nb++] = y;
		if (x == NULL || y == NULL) {
			set_cause(cause, "out of memory");
			goto out;
		}
		for (unsigned j = 0; j < p->ncands[i]; j++)
			if (ten_candidate_ok(p, i, &p->cands[i][j]))
				x[n] = p->cands[i][j].point.latency_us / 1e3, y[n] = p->cands[i][j].point.accuracy * 100, n++;
		snprintf(names[ns], sizeof(names[ns]), "%s: candidates (predicted)", p->tenants[i].name);
		se[ns] = (struct plot_series){ names[ns], x, y, n, "points", 7, 0.4, (int)i + 1 };
		ns++;
	}
	for (unsigned i = 0; i < p->ntenants; i++) {
		if (r->a[i].cand < 0)
			continue;
		double *x = calloc(1, sizeof(double)), *y = calloc(1, sizeof(double));
		bufs[nb++] = x, bufs[nb++] = y;
		if (x == NULL || y == NULL) {
			set_cause(cause, "out of memory");
			goto out;
		}
		x[0] = p->cands[i][r->a[i].cand].point.latency_us / 1e3, y[0] = p->cands[i][r->a[i].cand].point.accuracy * 100;
		snprintf(names[ns], sizeof(names[ns]), "%s: planned", p->tenants[i].name);
		se[ns] = (struct plot_series){ names[ns], x, y, 1, "points", 9, 2.5, (int)i + 1 };
		ns++;
	}
	per[0] = ns;
	/* the front: solve again under caps from 5 % to 120 % of this plan's power */
	{
		double top = r->power_w > 0 ? r->power_w * 1.2 : 1;
		unsigned k = 0;
		for (unsigned s = 0; s < steps; s++) {
			static struct ten_result rr, gg;
			p->power_cap_w = top * (0.05 + 0.95 * s / (steps - 1));
			if (ten_solve(p, false, &rr, cause) != 0)
				goto out;
			ten_solve_greedy(p, &gg);
			xs[k] = p->power_cap_w;
			ym[k] = p->objective == TEN_MIN_ENERGY ? rr.power_w : rr.weighted_accuracy;
			yg[k] = p->objective == TEN_MIN_ENERGY ? gg.power_w : gg.weighted_accuracy;
			k++;
		}
		se[ns++] = (struct plot_series){ "MIP (served weighted accuracy)", xs, ym, k, "linespoints", 7, 1, 0 };
		se[ns++] = (struct plot_series){ "greedy", xs, yg, k, "linespoints", 5, 1, 0 };
		per[1] = 2;
	}
	{
		char title[256];
		const char *xl[2] = { "predicted latency (ms)", "power cap (W)" };
		const char *yl[2] = { "top-1 accuracy (%)", p->objective == TEN_MIN_ENERGY ? "power (W)" : "weighted accuracy" };
		snprintf(title, sizeof(title), "[simulated] gearbox solve on %s", platform);
		ret = plot_panels(png, title, 2, xl, yl, se, per, cause);
	}
out:
	p->power_cap_w = cap0;
	for (size_t k = 0; k < nb; k++)
		free(bufs[k]);
	return ret;
}

int
cmd_solve(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "platform", required_argument, NULL, 'P' }, { "tenants", required_argument, NULL, 't' },
		{ "objective", required_argument, NULL, 'O' }, { "power-cap", required_argument, NULL, 'c' },
		{ "plot", required_argument, NULL, 'o' },     { "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },           { NULL, 0, NULL, 0 },
	};
	const char *platform = NULL, *tenants = NULL, *png = NULL, *objective = NULL;
	double cap = -1;
	bool json = false;
	static struct ten_file spec;
	static struct pol_sim sim;
	static struct ten_problem prob;
	static struct ten_result res, greedy;
	struct dnn_model *models[TEN_MAX_TENANTS] = { 0 };
	char *cause = NULL, *end;
	int ch, ret = 1;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'P': platform = optarg; break;
		case 't': tenants = optarg; break;
		case 'O': objective = optarg; break;
		case 'o': png = optarg; break;
		case 'j': json = true; break;
		case 'c':
			cap = strtod(optarg, &end);
			if (*end || end == optarg || !(cap >= 0))
				return cli_error("--power-cap: '%s' is not a number of watts", optarg), EXIT_USAGE;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (platform == NULL || tenants == NULL || optind != argc)
		return usage(stderr), EXIT_USAGE;
	if (objective && strcmp(objective, "accuracy") && strcmp(objective, "energy"))
		return cli_error("--objective: '%s' is not accuracy or energy", objective), EXIT_USAGE;
	if (pol_sim_load(platform, &sim, &cause) != 0 || ten_file_load(tenants, &spec, &cause) != 0)
		goto out;
	ten_problem_init(&prob, sim.places, sim.nplaces);
	prob.objective = objective ? (!strcmp(objective, "energy") ? TEN_MIN_ENERGY : TEN_MAX_ACCURACY) : spec.objective;
	prob.power_cap_w = cap >= 0 ? cap : spec.power_cap_w;
	prob.memory_bytes = spec.memory_mb * 1048576.0;
	prob.max_util = spec.max_util;
	prob.margin = spec.margin;
	prob.time_limit_s = 10;
	for (unsigned i = 0; i < spec.n; i++) {
		struct ten_candidate *c = NULL;
		unsigned n = 0;
		const char *path = spec.tenant[i].path[0] ? spec.tenant[i].path : GEARBOX_DATADIR "/models/fmnist-alexnet-g4.safetensors";
		if ((models[i] = dnn_model_load(path, &cause)) == NULL) {
			prefix_cause(&cause, "%s: tenant %s", tenants, spec.tenant[i].t.name);
			goto out;
		}
		if (tenant_candidates(&sim, models[i], spec.tenant[i].macs_scale, &c, &n, spec.tenant[i].t.model, &cause) != 0 ||
		    (spec.tenant[i].sensitivity[0] &&
		     int8_candidates(models[i], spec.tenant[i].sensitivity, spec.tenant[i].int8_speedup, &c, &n, &cause) != 0)) {
			free(c);
			goto out;
		}
		/* the name of an earlier tenant's model with other contents (another
		 * file of that name): weights of their own, not shared */
		for (unsigned k = 0; k < i; k++)
			if (!strcmp(spec.tenant[k].t.model, spec.tenant[i].t.model) &&
			    dnn_model_fingerprint(models[k]) != dnn_model_fingerprint(models[i])) {
				char name[POL_NAME];
				snprintf(name, sizeof(name), "%.48s #%u", spec.tenant[i].t.model, i + 1);
				memcpy(spec.tenant[i].t.model, name, sizeof(name));
				break;
			}
		if (ten_problem_add(&prob, &spec.tenant[i].t, c, n, &cause) < 0) {
			free(c);
			goto out;
		}
		free(c);
	}
	if (ten_solve(&prob, true, &res, &cause) != 0)
		goto out;
	ten_solve_greedy(&prob, &greedy);
	if (json) {
		json_object *o = result_json(&prob, &res, &spec, sim.name, &greedy);
		if (png)
			json_object_object_add(o, "plot", json_object_new_string(png));
		puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
		json_object_put(o);
	} else {
		print_text(&prob, &res, sim.name, &greedy);
	}
	if (png && plot(png, &prob, &res, sim.name, &cause) != 0)
		goto out;
	if (png && !json)
		printf("plot: %s\n", png);
	ret = 0;
out:
	if (cause) {
		cli_error("%s", cause);
		free(cause);
	}
	for (unsigned i = 0; i < TEN_MAX_TENANTS; i++)
		dnn_model_free(models[i]);
	ten_problem_clear(&prob);
	return ret;
}
