/* SPDX-License-Identifier: MIT */
/* Simulated platforms and load traces for `gearbox simulate`: INI files with
 * the per-placement throughput, parallel fraction and power table, parsed
 * with the same INI reader (file:line errors), and CSV traces. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "common/ini_file.h"
#include "policies/policy.h"

static struct pol_place *
find_or_add(struct pol_sim *sim, const char *name, unsigned *index)
{
	for (unsigned i = 0; i < sim->nplaces; i++)
		if (!strcmp(sim->places[i].name, name)) {
			*index = i;
			return &sim->places[i];
		}
	if (sim->nplaces == POL_MAX_PLACES)
		return NULL;
	*index = sim->nplaces;
	struct pol_place *pl = &sim->places[sim->nplaces++];
	memset(pl, 0, sizeof(*pl));
	snprintf(pl->name, sizeof(pl->name), "%s", name);
	pl->kind = POL_PLACE_CPU;
	pl->max_threads = 1;
	pl->capacity = 1024;
	pl->dvfs = true;
	snprintf(pl->power_source, sizeof(pl->power_source), "simulated");
	sim->sim[*index] = (struct pol_sim_place){ 1.0, 50.0, 0.9, 0.0 };
	return pl;
}

static int
number(struct ini_file *f, const char *key, const char *v, double lo, double hi, double *out)
{
	char *end;

	errno = 0;
	*out = strtod(v, &end);
	if (errno || end == v || *end || !(*out >= lo && *out <= hi))
		return ini_file_fail(f, "%s: '%s' must be a number from %g to %g", key, v, lo, hi);
	return 1;
}

/* power = KHZ:WATTS ... ; the place's frequencies are the table's. The key
 * may repeat (INI lines are short): each line adds to the table. */
static int
power_table(struct ini_file *f, struct pol_place *pl, const char *value)
{
	char copy[2048], *save = NULL;
	unsigned n = pl->nfreqs;

	snprintf(copy, sizeof(copy), "%s", value);
	for (char *tok = strtok_r(copy, " \t", &save); tok; tok = strtok_r(NULL, " \t", &save)) {
		char *colon = strchr(tok, ':'), *e1, *e2;
		if (colon == NULL || n == POL_MAX_FREQS)
			return ini_file_fail(f, "power: '%s' is not KHZ:WATTS", tok);
		*colon = '\0';
		pl->freqs_khz[n] = strtoul(tok, &e1, 10);
		pl->busy_w[n] = strtod(colon + 1, &e2);
		if (*e1 || *e2 || e1 == tok || e2 == colon + 1 || pl->freqs_khz[n] == 0 || !(pl->busy_w[n] >= 0) ||
		    (n > 0 && pl->freqs_khz[n] <= pl->freqs_khz[n - 1]))
			return ini_file_fail(f, "power: '%s:%s' is not KHZ:WATTS in ascending kHz", tok, colon + 1);
		n++;
	}
	if (n == 0)
		return ini_file_fail(f, "power: empty table");
	pl->nfreqs = n;
	return 1;
}

static int
on_entry(struct ini_file *f, const char *section, const char *key, const char *value)
{
	struct pol_sim *sim = f->user;
	struct pol_place *pl;
	unsigned i;
	double v;

	if (!strcmp(section, "platform")) {
		if (strcmp(key, "name") != 0)
			return ini_file_fail(f, "unknown key '%s' in [platform] (known: name)", key);
		snprintf(sim->name, sizeof(sim->name), "%s", value);
		return 1;
	}
	if (strncmp(section, "place ", 6) != 0 || section[6] == '\0')
		return ini_file_fail(f, "unknown section [%s] (known: [platform], [place NAME])", section);
	if ((pl = find_or_add(sim, section + 6, &i)) == NULL)
		return ini_file_fail(f, "too many places (at most %d)", POL_MAX_PLACES);
	if (!strcmp(key, "kind")) {
		if (!strcmp(value, "cpu"))
			pl->kind = POL_PLACE_CPU;
		else if (!strcmp(value, "gpu"))
			pl->kind = POL_PLACE_OPENCL, pl->is_gpu = true;
		else
			return ini_file_fail(f, "kind: '%s' is not cpu or gpu", value);
	} else if (!strcmp(key, "cpus")) {
		if (!number(f, key, value, 1, POL_MAX_THREADS, &v))
			return 0;
		pl->max_threads = (unsigned)v;
	} else if (!strcmp(key, "capacity")) {
		if (!number(f, key, value, 1, 1024, &v))
			return 0;
		pl->capacity = (unsigned)v;
	} else if (!strcmp(key, "macs_per_cycle")) {
		return number(f, key, value, 1e-3, 1e5, &sim->sim[i].macs_per_cycle);
	} else if (!strcmp(key, "fixed_us")) {
		return number(f, key, value, 0, 1e7, &sim->sim[i].fixed_us);
	} else if (!strcmp(key, "parallel")) {
		return number(f, key, value, 0, 1, &sim->sim[i].parallel);
	} else if (!strcmp(key, "transfer_us")) {
		return number(f, key, value, 0, 1e7, &sim->sim[i].transfer_us);
	} else if (!strcmp(key, "power")) {
		return power_table(f, pl, value);
	} else {
		return ini_file_fail(f,
		                     "unknown key '%s' in [place %s] (known: kind, cpus, capacity, macs_per_cycle, fixed_us, "
		                     "parallel, transfer_us, power)",
		                     key, pl->name);
	}
	return 1;
}

int
pol_sim_load(const char *what, struct pol_sim *sim, char **cause)
{
	char path[1024];

	memset(sim, 0, sizeof(*sim));
	if (strchr(what, '/') != NULL || strstr(what, ".conf") != NULL)
		snprintf(path, sizeof(path), "%s", what);
	else
		snprintf(path, sizeof(path), "%s/platforms/%s.conf", pol_shipped_dir(),
		         !strcmp(what, "xu3") ? "odroid-xu3" : !strcmp(what, "nano") ? "jetson-nano" : what);
	if (ini_file_load(path, on_entry, sim, cause) != 0)
		return -1;
	if (sim->nplaces == 0)
		return set_cause(cause, "%s: no [place NAME] sections", path);
	for (unsigned i = 0; i < sim->nplaces; i++) {
		struct pol_place *pl = &sim->places[i];
		if (pl->nfreqs == 0)
			return set_cause(cause, "%s: [place %s] has no power table", path, pl->name);
		pl->index = i;
		if (pl->kind != POL_PLACE_CPU)
			pl->max_threads = 1;
	}
	if (sim->name[0] == '\0')
		snprintf(sim->name, sizeof(sim->name), "%s", what);
	return 0;
}

double
pol_sim_latency(const struct pol_sim *sim, const struct pol_model *model, const struct pol_point *pt, double load)
{
	const struct pol_place *pl = &sim->places[pt->place];
	const struct pol_sim_place *sp = &sim->sim[pt->place];
	double hz = (double)pl->freqs_khz[pt->freq] * 1e3, hz_max = (double)pl->freqs_khz[pl->nfreqs - 1] * 1e3;
	double speedup = 1.0 / ((1 - sp->parallel) + sp->parallel / pt->threads);
	double t = sp->fixed_us * hz_max / hz + model->macs[pt->groups] / (sp->macs_per_cycle * hz * speedup) * 1e6;
	double slowdown;

	if (pl->kind == POL_PLACE_CPU) {
		/* co-runners hold load x cpus CPUs: our threads time-share beyond
		 * the free ones, and everyone shares the memory system */
		double busy = load * pl->max_threads;
		slowdown = fmax(1.0, (pt->threads + busy) / pl->max_threads) * (1.0 + 0.15 * load);
	} else {
		slowdown = 1.0 / fmax(1.0 - load, 0.1);
	}
	return t * slowdown + sp->transfer_us;
}

/* ---- traces ------------------------------------------------------------------------- */

int
pol_trace_load(const char *path, struct pol_trace *trace, char **cause)
{
	FILE *f = fopen(path, "r");
	char line[512];
	unsigned lineno = 0, cap = 0;

	memset(trace, 0, sizeof(*trace));
	if (f == NULL)
		return set_cause(cause, "%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f) != NULL) {
		char place[POL_NAME];
		double t, load;
		int used = 0;
		lineno++;
		if (line[0] == '#' || line[strspn(line, " \t\r\n")] == '\0' || !strncmp(line, "time_s", 6))
			continue;
		if (sscanf(line, " %lf , %63[^, ] , %lf %n", &t, place, &load, &used) != 3 || !(t >= 0) ||
		    !(load >= 0 && load <= 1) || line[used] != '\0' ||
		    (trace->n > 0 && t < trace->rows[trace->n - 1].t)) {
			fclose(f);
			pol_trace_free(trace);
			return set_cause(cause, "%s:%u: expected 'time_s,placement,load' with time ascending and load in [0,1]",
			                 path, lineno);
		}
		if (trace->n == cap) {
			cap = cap ? 2 * cap : 64;
			void *grown = realloc(trace->rows, cap * sizeof(*trace->rows));
			if (grown == NULL) {
				fclose(f);
				pol_trace_free(trace);
				return set_cause(cause, "out of memory");
			}
			trace->rows = grown;
		}
		trace->rows[trace->n].t = t;
		snprintf(trace->rows[trace->n].place, POL_NAME, "%s", place);
		trace->rows[trace->n].load = load;
		trace->n++;
	}
	fclose(f);
	if (trace->n == 0)
		return set_cause(cause, "%s: no 'time_s,placement,load' lines", path);
	return 0;
}

void
pol_trace_free(struct pol_trace *trace)
{
	free(trace->rows);
	memset(trace, 0, sizeof(*trace));
}

double
pol_trace_load_at(const struct pol_trace *trace, double t, const char *place)
{
	double load = 0;

	for (unsigned i = 0; i < trace->n && trace->rows[i].t <= t; i++)
		if (!strcmp(trace->rows[i].place, place) || !strcmp(trace->rows[i].place, "all"))
			load = trace->rows[i].load;
	return load;
}
