/* SPDX-License-Identifier: MIT */
/* gearbox platform [--json] | set-freq | set-gpu-freq | restore */
#include "config.h"

#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "governor/governor.h"
#include "tools/gearbox/cli.h"

static void
platform_usage(FILE *out)
{
	fputs("Usage: gearbox platform [--json]                     what this machine offers\n"
	      "       gearbox platform set-freq CLUSTER KHZ [--hold SECONDS]\n"
	      "       gearbox platform set-gpu-freq DEVICE HZ\n"
	      "       gearbox platform restore                      put back what gearbox changed\n"
	      "\n"
	      "  CLUSTER is a name (cluster1), an index (1) or a CPU it holds (cpu4); DEVICE is a\n"
	      "  devfreq name (57000000.gpu) or index. set-freq saves the original governor and limits\n"
	      "  first; they stay changed until 'gearbox platform restore', or, with --hold, for SECONDS\n"
	      "  (then restored; a crash is restored at the next start of gearbox or gearboxd).\n"
	      "\n"
	      "  --platform-file F power tables for clusters without a kernel Energy Model (INI):\n"
	      "                    [cluster1]  power = 200000:0.15 2000000:1.90   (kHz:watts per busy CPU)\n"
	      "  --state-dir DIR   where the saved state lives (default " GOV_DEFAULT_STATE_DIR
	      ", or $GEARBOX_STATE_DIR)\n"
	      "  --json            machine-readable output\n",
	      out);
}

static struct json_object *
json_ulongs(const unsigned long *v, unsigned n)
{
	struct json_object *a = json_object_new_array();

	for (unsigned i = 0; i < n; i++)
		json_object_array_add(a, json_object_new_int64((int64_t)v[i]));
	return a;
}

/* A frequency, or null when unknown (0). */
static struct json_object *
json_freq(unsigned long v)
{
	return v != 0 ? json_object_new_int64((int64_t)v) : NULL;
}

/* "1017 MHz", or "unknown". */
static const char *
mhz(unsigned long khz, char *buf, size_t len)
{
	if (khz == 0)
		snprintf(buf, len, "unknown");
	else
		snprintf(buf, len, "%lu MHz", khz / 1000);
	return buf;
}

/* "556-1017 MHz", "324 MHz-unknown". */
static const char *
mhz_range(unsigned long lo, unsigned long hi, char *buf, size_t len)
{
	char a[32], b[32];

	if (lo != 0 && hi != 0)
		snprintf(buf, len, "%lu-%lu MHz", lo / 1000, hi / 1000);
	else
		snprintf(buf, len, "%s-%s", mhz(lo, a, sizeof(a)), mhz(hi, b, sizeof(b)));
	return buf;
}

static struct json_object *
json_words(const char *text)
{
	struct json_object *a = json_object_new_array();
	char *copy = strdup(text), *save = NULL;

	for (char *w = strtok_r(copy, " ", &save); w != NULL; w = strtok_r(NULL, " ", &save))
		json_object_array_add(a, json_object_new_string(w));
	free(copy);
	return a;
}

/* A current reading, or why there is none. */
static struct json_object *
reading_json(const struct gov_energy_source *s)
{
	struct json_object *o = json_object_new_object();
	struct gov_reading r;
	char *cause = NULL;

	if (gov_energy_read(s, &r, &cause) != 0)
		json_object_object_add(o, "error", json_object_new_string(cause));
	else if (r.is_energy)
		json_object_object_add(o, "energy_uj", json_object_new_int64((int64_t)r.energy_uj));
	else
		json_object_object_add(o, "power_uw", json_object_new_int64((int64_t)r.power_uw));
	free(cause);
	return o;
}

static void
print_platform_json(const struct gov_platform *p)
{
	struct json_object *root = json_object_new_object(), *clusters = json_object_new_array();
	struct json_object *gpus = json_object_new_array(), *ocl = json_object_new_array();
	struct json_object *sources = json_object_new_array();

	for (unsigned i = 0; i < p->nclusters; i++) {
		const struct gov_cluster *c = &p->clusters[i];
		const struct gov_power_model *m = &p->models[i];
		struct json_object *o = json_object_new_object(), *model = json_object_new_object();
		struct json_object *points = json_object_new_array();
		char *cpus = NULL;
		hwloc_bitmap_list_asprintf(&cpus, c->cpuset);
		json_object_object_add(o, "id", json_object_new_int((int)c->id));
		json_object_object_add(o, "name", json_object_new_string(c->name));
		json_object_object_add(o, "cpus", json_object_new_string(cpus));
		json_object_object_add(o, "ncpus", json_object_new_int((int)c->ncpus));
		json_object_object_add(o, "capacity", json_object_new_int((int)c->capacity));
		json_object_object_add(o, "capacity_source", json_object_new_string(gov_capacity_source_name(c->capacity_source)));
		json_object_object_add(o, "efficiency", json_object_new_int(c->efficiency));
		json_object_object_add(o, "model", c->model[0] ? json_object_new_string(c->model) : NULL);
		json_object_object_add(o, "kind", c->kind[0] ? json_object_new_string(c->kind) : NULL);
		if (c->npolicies > 0) {
			struct json_object *f = json_object_new_object(), *pols = json_object_new_array();
			for (unsigned k = 0; k < c->npolicies; k++)
				json_object_array_add(pols, json_object_new_int((int)c->policies[k]));
			json_object_object_add(f, "policies", pols);
			json_object_object_add(f, "layout", json_object_new_string(c->layout == GOV_CPUFREQ_PER_CPU ? "cpuN/cpufreq"
			                                                                                              : "policyN"));
			json_object_object_add(f, "driver", c->driver[0] ? json_object_new_string(c->driver) : NULL);
			json_object_object_add(f, "governor", c->governor[0] ? json_object_new_string(c->governor) : NULL);
			json_object_object_add(f, "governors", json_words(c->governors));
			json_object_object_add(f, "userspace", json_object_new_boolean(c->has_userspace && c->has_setspeed));
			json_object_object_add(f, "frequencies_khz", json_ulongs(c->freqs_khz, c->nfreqs));
			json_object_object_add(f, "boost_frequencies_khz", json_ulongs(c->boost_khz, c->nboost));
			json_object_object_add(f, "boost", c->boost >= 0 ? json_object_new_boolean(c->boost) : NULL);
			json_object_object_add(f, "hw_min_khz", json_freq(c->hw_min_khz));
			json_object_object_add(f, "hw_max_khz", json_freq(c->hw_max_khz));
			json_object_object_add(f, "min_khz", json_freq(c->min_khz));
			json_object_object_add(f, "max_khz", json_freq(c->max_khz));
			json_object_object_add(f, "cur_khz", json_freq(c->cur_khz));
			json_object_object_add(o, "cpufreq", f);
		} else {
			json_object_object_add(o, "cpufreq", NULL);
		}
		json_object_object_add(model, "kind", json_object_new_string(gov_model_kind_name(m->kind)));
		for (unsigned k = 0; k < m->npoints; k++) {
			struct json_object *pt = json_object_new_object();
			json_object_object_add(pt, "khz", json_object_new_int64((int64_t)m->khz[k]));
			json_object_object_add(pt, "watts_per_cpu", json_object_new_double(m->watts_per_cpu[k]));
			json_object_array_add(points, pt);
		}
		json_object_object_add(model, "points", points);
		json_object_object_add(o, "power_model", model);
		json_object_array_add(clusters, o);
		free(cpus);
	}
	for (unsigned i = 0; i < p->ngpus; i++) {
		const struct gov_gpu *g = &p->gpus[i];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(g->name));
		json_object_object_add(o, "path", json_object_new_string(g->path));
		json_object_object_add(o, "recognised_by", json_object_new_string(g->match));
		json_object_object_add(o, "governor", g->governor[0] ? json_object_new_string(g->governor) : NULL);
		json_object_object_add(o, "governors", json_words(g->governors));
		json_object_object_add(o, "userspace", json_object_new_boolean(g->has_userspace));
		json_object_object_add(o, "frequencies_hz", json_ulongs(g->freqs_hz, g->nfreqs));
		json_object_object_add(o, "min_hz", json_freq(g->min_hz));
		json_object_object_add(o, "max_hz", json_freq(g->max_hz));
		json_object_object_add(o, "cur_hz", json_freq(g->cur_hz));
		json_object_object_add(o, "opencl_device", g->opencl_device >= 0 ? json_object_new_int(g->opencl_device) : NULL);
		json_object_array_add(gpus, o);
	}
	for (unsigned i = 0; i < p->nopencl; i++) {
		const struct gov_opencl_device *d = &p->opencl[i];
		struct json_object *o = json_object_new_object();
		char id[32];
		snprintf(id, sizeof(id), "opencl:%u", i);
		json_object_object_add(o, "id", json_object_new_string(id));
		json_object_object_add(o, "platform", json_object_new_string(d->platform));
		json_object_object_add(o, "name", json_object_new_string(d->name));
		json_object_object_add(o, "type", json_object_new_string(d->type));
		json_object_object_add(o, "compute_units", json_object_new_int((int)d->compute_units));
		json_object_object_add(o, "global_mem_bytes", json_object_new_int64((int64_t)d->global_mem_bytes));
		json_object_array_add(ocl, o);
	}
	for (unsigned i = 0; i < p->nsources; i++) {
		const struct gov_energy_source *s = &p->sources[i];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, "name", json_object_new_string(s->name));
		json_object_object_add(o, "kind", json_object_new_string(gov_source_kind_name(s->kind)));
		json_object_object_add(o, "domain", json_object_new_string(gov_domain_name(s->domain)));
		json_object_object_add(o, "unit", s->unit >= 0 ? json_object_new_int(s->unit) : NULL);
		json_object_object_add(o, "path", json_object_new_string(s->path));
		json_object_object_add(o, "reading", reading_json(s));
		json_object_array_add(sources, o);
	}
	json_object_object_add(root, "dvfs", json_object_new_boolean(p->cpufreq));
	json_object_object_add(root, "clusters", clusters);
	json_object_object_add(root, "gpus", gpus);
	json_object_object_add(root, "opencl", ocl);
	json_object_object_add(root, "opencl_error", p->opencl_error ? json_object_new_string(p->opencl_error) : NULL);
	json_object_object_add(root, "energy_sources", sources);
	json_object_object_add(root, "saved_state", json_object_new_boolean(gov_has_saved_state(p)));
	puts(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(root);
}

static void
print_platform_text(const struct gov_platform *p)
{
	printf("CPU clusters (DVFS %s)\n", p->cpufreq ? "through cpufreq" : "unavailable: no cpufreq on this machine");
	for (unsigned i = 0; i < p->nclusters; i++) {
		const struct gov_cluster *c = &p->clusters[i];
		const struct gov_power_model *m = &p->models[i];
		char *cpus = NULL;
		hwloc_bitmap_list_asprintf(&cpus, c->cpuset);
		printf("  %-9s CPUs %s (%u), capacity %u (%s)", c->name, cpus, c->ncpus, c->capacity,
		       gov_capacity_source_name(c->capacity_source));
		if (c->efficiency >= 0)
			printf(", efficiency rank %d", c->efficiency);
		if (c->model[0])
			printf(", %s", c->model);
		putchar('\n');
		free(cpus);
		if (c->npolicies > 0) {
			char a[32], b[32], d[32];
			printf("            cpufreq: %u polic%s from %s%u, driver %s, governor %s%s\n", c->npolicies,
			       c->npolicies == 1 ? "y" : "ies", c->layout == GOV_CPUFREQ_PER_CPU ? "cpu" : "policy", c->policies[0],
			       c->driver[0] ? c->driver : "unknown", c->governor[0] ? c->governor : "unknown",
			       c->has_userspace && c->has_setspeed ? " (userspace available)"
			                                           : " (no userspace governor: min/max clamping)");
			if (c->nfreqs > 0)
				printf("            %lu-%lu MHz in %u steps", c->freqs_khz[0] / 1000,
				       c->freqs_khz[c->nfreqs - 1] / 1000, c->nfreqs);
			else
				printf("            %s (continuous)", mhz_range(c->hw_min_khz, c->hw_max_khz, a, sizeof(a)));
			if (c->nboost > 0) {
				printf(" (boost");
				for (unsigned k = 0; k < c->nboost; k++)
					printf(" %lu", c->boost_khz[k] / 1000);
				printf(" MHz%s)", c->boost == 0 ? ", off" : "");
			}
			printf("; now %s, limits %s\n", mhz(c->cur_khz, b, sizeof(b)), mhz_range(c->min_khz, c->max_khz, d, sizeof(d)));
		}
		if (m->npoints > 0)
			printf("            power model: %s, %.3f-%.3f W per busy CPU\n", gov_model_kind_name(m->kind),
			       m->watts_per_cpu[0], m->watts_per_cpu[m->npoints - 1]);
	}
	printf("\nGPUs (devfreq)\n");
	if (p->ngpus == 0)
		printf("  none\n");
	for (unsigned i = 0; i < p->ngpus; i++) {
		const struct gov_gpu *g = &p->gpus[i];
		char a[64];
		printf("  %-14s %s in %u steps, governor %s%s (%s)", g->name,
		       mhz_range(g->nfreqs ? g->freqs_hz[0] / 1000 : g->min_hz / 1000,
		                 g->nfreqs ? g->freqs_hz[g->nfreqs - 1] / 1000 : g->max_hz / 1000, a, sizeof(a)), g->nfreqs,
		       g->governor[0] ? g->governor : "unknown", g->has_userspace ? " (userspace available)" : "", g->match);
		if (g->opencl_device >= 0)
			printf(", OpenCL device opencl:%d", g->opencl_device);
		putchar('\n');
	}
	printf("\nOpenCL devices\n");
	if (p->nopencl == 0)
		printf("  none: %s\n", p->opencl_error ? p->opencl_error : "no device");
	for (unsigned i = 0; i < p->nopencl; i++) {
		const struct gov_opencl_device *d = &p->opencl[i];
		printf("  opencl:%u  %s: %s (%s, %u compute units, %.1f GB)\n", i, d->platform, d->name, d->type,
		       d->compute_units, (double)d->global_mem_bytes / 1e9);
	}
	printf("\nEnergy sources\n");
	if (p->nsources == 0)
		printf("  no sensors: energy figures come from the power models above\n");
	for (unsigned i = 0; i < p->nsources; i++) {
		const struct gov_energy_source *s = &p->sources[i];
		char unit[32] = "";
		if (s->unit >= 0)
			snprintf(unit, sizeof(unit), " %d", s->unit);
		printf("  %-34s %-12s %s%s  %s\n", s->name, gov_source_kind_name(s->kind), gov_domain_name(s->domain), unit,
		       s->path);
	}
	if (gov_has_saved_state(p))
		printf("\nSaved state in %s: gearbox changed frequencies ('gearbox platform restore' puts them back)\n",
		       p->state_dir);
}

static volatile sig_atomic_t stop_hold;

static void
on_signal(int sig)
{
	(void)sig;
	stop_hold = 1;
}

int
cmd_platform(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },          { "hold", required_argument, NULL, 'H' },
		{ "state-dir", required_argument, NULL, 's' }, { "help", no_argument, NULL, 'h' },
		{ "platform-file", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state_dir = NULL, *verb = NULL, *platform_file = NULL;
	unsigned long hold = 0, freq = 0;
	struct gov_platform *p;
	char *cause = NULL;
	bool json = false, recovered = false;
	int ch, ret = 0;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': json = true; break;
		case 's': state_dir = optarg; break;
		case 'P': platform_file = optarg; break;
		case 'H':
			if (cli_parse_uint(optarg, 1, 86400, &hold) != 0) {
				cli_error("--hold takes seconds (1 to 86400), not '%s'", optarg);
				return EXIT_USAGE;
			}
			break;
		case 'h': platform_usage(stdout); return 0;
		default: platform_usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind < argc)
		verb = argv[optind++];
	if (verb != NULL && strcmp(verb, "set-freq") != 0 && strcmp(verb, "set-gpu-freq") != 0 &&
	    strcmp(verb, "restore") != 0) {
		cli_error("unknown platform command '%s' (set-freq, set-gpu-freq, restore)", verb);
		return EXIT_USAGE;
	}
	if (verb != NULL && strcmp(verb, "restore") != 0) {
		/* kHz or Hz; unsigned long is 32 bits on armhf (4.29 GHz in Hz). */
		const unsigned long most = ULONG_MAX < 1000000000000ull ? ULONG_MAX : (unsigned long)1000000000000ull;
		if (argc - optind != 2 || cli_parse_uint(argv[optind + 1], 1, most, &freq) != 0) {
			cli_error("%s needs a %s and a frequency in %s", verb, strcmp(verb, "set-freq") == 0 ? "CLUSTER" : "DEVICE",
			          strcmp(verb, "set-freq") == 0 ? "kHz" : "Hz");
			return EXIT_USAGE;
		}
	} else if (argc != optind) {
		cli_error("unexpected argument '%s'", argv[optind]);
		return EXIT_USAGE;
	}

	if ((p = gov_platform_discover(state_dir, &cause)) == NULL) {
		cli_error("%s", cause);
		free(cause);
		return 1;
	}
	if (platform_file != NULL && gov_platform_load_file(p, platform_file, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		gov_platform_free(p);
		return 1;
	}
	/* The next start after a crash puts back what the dead process changed. */
	if (gov_recover_stale(p, &recovered, &cause) != 0) {
		cli_error("restoring state left by a previous run: %s", cause);
		free(cause);
		cause = NULL;
	} else if (recovered) {
		fprintf(stderr, "gearbox: restored cpufreq/devfreq settings left changed by a process that ended "
		                "without restoring them\n");
		gov_platform_free(p);
		p = gov_platform_discover(state_dir, NULL);
	}

	if (verb == NULL) {
		if (json)
			print_platform_json(p);
		else
			print_platform_text(p);
	} else if (strcmp(verb, "restore") == 0) {
		if (gov_restore(p, &cause) != 0) {
			cli_error("%s", cause);
			ret = 1;
		}
	} else {
		bool cpu = strcmp(verb, "set-freq") == 0;
		const char *what = argv[optind];
		gov_set_state_owner(p, hold ? (int)getpid() : 0);
		if (cpu) {
			struct gov_cluster *c = gov_find_cluster(p, what);
			if (c == NULL) {
				cli_error("no cluster '%s' (see 'gearbox platform')", what);
				ret = EXIT_USAGE;
			} else if (gov_set_cluster_freq(p, c, freq, &cause) != 0) {
				cli_error("%s", cause);
				ret = 1;
			}
		} else {
			struct gov_gpu *g = gov_find_gpu(p, what);
			if (g == NULL) {
				cli_error("no devfreq GPU '%s' (see 'gearbox platform')", what);
				ret = EXIT_USAGE;
			} else if (gov_set_gpu_freq(p, g, freq, &cause) != 0) {
				cli_error("%s", cause);
				ret = 1;
			}
		}
		if (ret == 0 && hold) {
			signal(SIGINT, on_signal);
			signal(SIGTERM, on_signal);
			fprintf(stderr, "gearbox: holding %s at %lu for %lu s (Ctrl-C restores now)\n", what, freq, hold);
			for (unsigned long s = 0; s < hold * 10 && !stop_hold; s++)
				usleep(100000);
			if (gov_restore(p, &cause) != 0) {
				cli_error("%s", cause);
				ret = 1;
			}
		}
	}
	free(cause);
	gov_platform_free(p);
	return ret;
}
