/* SPDX-License-Identifier: MIT */
/* Energy sources, discovered at run time: RAPL powercap zones, hwmon energy,
 * power or voltage x current inputs, Odroid XU3 INA231 and Jetson INA3221
 * rails. Where no sensor covers a cluster, a power model: the kernel Energy
 * Model from debugfs, a table from the platform file, or an estimate from
 * capacity and frequency. Every figure says where it came from. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "governor/internal.h"

static struct gov_energy_source *
add_source(struct gov_platform *p, enum gov_source_kind kind, enum gov_domain domain, int unit)
{
	struct gov_energy_source *s;

	p->sources = realloc(p->sources, (p->nsources + 1) * sizeof(*p->sources));
	s = &p->sources[p->nsources++];
	memset(s, 0, sizeof(*s));
	s->kind = kind;
	s->domain = domain;
	s->unit = unit;
	return s;
}

/* The most / least capable cluster (big / LITTLE), for sensors named so. */
static int
extreme_cluster(const struct gov_platform *p, bool biggest)
{
	return p->nclusters == 0 ? -1 : biggest ? (int)p->nclusters - 1 : 0;
}

/* Guess what a rail measures from its label. */
static void
classify_label(const struct gov_platform *p, const char *label, enum gov_domain *domain, int *unit)
{
	static const char *const little[] = { "little", "kfc", "a7", "a53", "a55", "silver" };
	static const char *const big[] = { "big", "arm", "a15", "a57", "a72", "a76", "a78", "gold", "prime", "x1" };

	*unit = -1;
	if (strcasestr(label, "gpu") || strcasestr(label, "g3d")) {
		*domain = GOV_DOMAIN_GPU;
		*unit = 0;
	} else if (strcasestr(label, "mem") || strcasestr(label, "ddr") || strcasestr(label, "dram")) {
		*domain = GOV_DOMAIN_MEMORY;
	} else if (strcasestr(label, "cpu") || strcasestr(label, "arm") || strcasestr(label, "kfc")) {
		*domain = GOV_DOMAIN_CORES;
		for (size_t i = 0; i < sizeof(little) / sizeof(little[0]); i++)
			if (strcasestr(label, little[i]) && p->nclusters > 1) {
				*domain = GOV_DOMAIN_CLUSTER;
				*unit = extreme_cluster(p, false);
			}
		for (size_t i = 0; i < sizeof(big) / sizeof(big[0]) && *domain == GOV_DOMAIN_CORES; i++)
			if (strcasestr(label, big[i]) && p->nclusters > 1) {
				*domain = GOV_DOMAIN_CLUSTER;
				*unit = extreme_cluster(p, true);
			}
		if (*domain == GOV_DOMAIN_CORES && p->nclusters == 1) {
			*domain = GOV_DOMAIN_CLUSTER;
			*unit = 0;
		}
	} else if (strcasestr(label, "in") || strcasestr(label, "sys") || strcasestr(label, "vdd_in")) {
		*domain = GOV_DOMAIN_PACKAGE;
	} else {
		*domain = GOV_DOMAIN_OTHER;
	}
}

static void
discover_rapl(struct gov_platform *p)
{
	DIR *d = opendir("/sys/class/powercap");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[GOV_PATH], name[GOV_NAME];
		uint64_t range = 0;
		enum gov_domain domain = GOV_DOMAIN_OTHER;
		struct gov_energy_source *s;
		if (strncmp(e->d_name, "intel-rapl:", 11) != 0)
			continue;
		snprintf(path, sizeof(path), "/sys/class/powercap/%s/energy_uj", e->d_name);
		if (!sysfs_exists(path))
			continue;
		snprintf(path, sizeof(path), "/sys/class/powercap/%s/name", e->d_name);
		if (sysfs_read(path, name, sizeof(name)) != 0)
			snprintf(name, sizeof(name), "?");
		if (strncmp(name, "package", 7) == 0)
			domain = GOV_DOMAIN_PACKAGE;
		else if (strcmp(name, "core") == 0)
			domain = GOV_DOMAIN_CORES;
		else if (strcmp(name, "uncore") == 0)
			domain = GOV_DOMAIN_GPU; /* the integrated GPU's plane */
		else if (strcmp(name, "dram") == 0)
			domain = GOV_DOMAIN_MEMORY;
		s = add_source(p, GOV_SOURCE_RAPL, domain, -1);
		snprintf(s->name, sizeof(s->name), "%s %s", e->d_name, name);
		snprintf(s->path, sizeof(s->path), "/sys/class/powercap/%s/energy_uj", e->d_name);
		snprintf(path, sizeof(path), "/sys/class/powercap/%s/max_energy_range_uj", e->d_name);
		if (sysfs_read_u64(path, &range) == 0)
			s->max_range_uj = range;
	}
	closedir(d);
}

static void
discover_hwmon(struct gov_platform *p)
{
	DIR *d = opendir("/sys/class/hwmon");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char dir[GOV_PATH], chip[GOV_NAME] = "";
		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "/sys/class/hwmon/%s", e->d_name);
		{
			char path[GOV_PATH];
			snprintf(path, sizeof(path), "%s/name", dir);
			sysfs_read(path, chip, sizeof(chip));
		}
		for (unsigned n = 0; n <= 16; n++) {
			static const char *const kinds[] = { "energy", "power", "in" };
			for (unsigned k = 0; k < 3; k++) {
				char path[GOV_PATH], curr[GOV_PATH], labelpath[GOV_PATH], label[GOV_NAME] = "";
				enum gov_domain domain;
				int unit;
				struct gov_energy_source *s;
				snprintf(path, sizeof(path), "%s/%s%u_input", dir, kinds[k], n);
				if (!sysfs_exists(path))
					continue;
				snprintf(curr, sizeof(curr), "%s/curr%u_input", dir, n);
				if (k == 2 && !sysfs_exists(curr))
					continue; /* a voltage alone is no power */
				if (k == 2) { /* V x I only where the chip gives no power for it */
					char pw[GOV_PATH];
					snprintf(pw, sizeof(pw), "%s/power%u_input", dir, n);
					if (sysfs_exists(pw))
						continue;
				}
				snprintf(labelpath, sizeof(labelpath), "%s/%s%u_label", dir, kinds[k], n);
				if (sysfs_read(labelpath, label, sizeof(label)) != 0)
					snprintf(label, sizeof(label), "%s%u", kinds[k], n);
				classify_label(p, label, &domain, &unit);
				s = add_source(p, k == 0 ? GOV_SOURCE_HWMON_ENERGY : k == 1 ? GOV_SOURCE_HWMON_POWER : GOV_SOURCE_HWMON_VI,
				               domain, unit);
				snprintf(s->name, sizeof(s->name), "%s %s %s", e->d_name, chip, label);
				snprintf(s->path, sizeof(s->path), "%s", path);
				if (k == 2)
					snprintf(s->path2, sizeof(s->path2), "%s", curr);
				break;
			}
		}
	}
	closedir(d);
}

/* Odroid XU3: INA231 at 3-0040 (A15, big), 3-0045 (A7, LITTLE), 3-0044 (GPU),
 * 3-0041 (memory). */
static void
discover_ina231(struct gov_platform *p)
{
	static const struct { const char *addr; enum gov_domain domain; int which; const char *what; } map[] = {
		{ "3-0040", GOV_DOMAIN_CLUSTER, 1, "A15 (big)" },
		{ "3-0045", GOV_DOMAIN_CLUSTER, 0, "A7 (LITTLE)" },
		{ "3-0044", GOV_DOMAIN_GPU, 2, "GPU" },
		{ "3-0041", GOV_DOMAIN_MEMORY, 2, "memory" },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		char dir[GOV_PATH], path[GOV_PATH];
		struct gov_energy_source *s;
		int unit = -1;
		snprintf(dir, sizeof(dir), "/sys/bus/i2c/drivers/INA231/%s", map[i].addr);
		snprintf(path, sizeof(path), "%s/sensor_W", dir);
		if (!sysfs_exists(path))
			continue;
		if (map[i].domain == GOV_DOMAIN_CLUSTER)
			unit = extreme_cluster(p, map[i].which == 1);
		else if (map[i].domain == GOV_DOMAIN_GPU)
			unit = p->ngpus > 0 ? 0 : -1;
		s = add_source(p, GOV_SOURCE_INA231, map[i].domain, unit);
		snprintf(s->name, sizeof(s->name), "INA231 %s %s", map[i].addr, map[i].what);
		snprintf(s->path, sizeof(s->path), "%s", path);
		snprintf(s->path2, sizeof(s->path2), "%s/enable", dir);
	}
}

/* Jetson: ina3221x in_powerN_input (mW) with rail_name_N. */
static void
discover_ina3221(struct gov_platform *p)
{
	DIR *d = opendir("/sys/bus/i2c/drivers/ina3221x");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.' || strchr(e->d_name, '-') == NULL)
			continue;
		for (unsigned dev = 0; dev < 4; dev++)
			for (unsigned ch = 0; ch < 3; ch++) {
				char path[GOV_PATH], namepath[GOV_PATH], rail[GOV_NAME] = "";
				enum gov_domain domain;
				int unit;
				struct gov_energy_source *s;
				snprintf(path, sizeof(path), "/sys/bus/i2c/drivers/ina3221x/%s/iio:device%u/in_power%u_input",
				         e->d_name, dev, ch);
				if (!sysfs_exists(path))
					continue;
				snprintf(namepath, sizeof(namepath), "/sys/bus/i2c/drivers/ina3221x/%s/iio:device%u/rail_name_%u",
				         e->d_name, dev, ch);
				if (sysfs_read(namepath, rail, sizeof(rail)) != 0)
					snprintf(rail, sizeof(rail), "channel%u", ch);
				classify_label(p, rail, &domain, &unit);
				s = add_source(p, GOV_SOURCE_INA3221, domain, unit);
				snprintf(s->name, sizeof(s->name), "INA3221 %s %s", e->d_name, rail);
				snprintf(s->path, sizeof(s->path), "%s", path);
			}
	}
	closedir(d);
}

int
gov_discover_energy(struct gov_platform *p)
{
	discover_rapl(p);
	discover_hwmon(p);
	discover_ina231(p);
	discover_ina3221(p);
	return (int)p->nsources;
}

/* ------------------------------------------------------------------------ */

static int
read_number(const char *path, double *value, char **cause)
{
	char tok[64], *end;
	int ret = sysfs_read_token(path, tok, sizeof(tok));

	if (ret != 0)
		return set_cause(cause, "%s: %s", path, strerror(-ret));
	errno = 0;
	*value = strtod(tok, &end);
	if (end == tok || *end != '\0' || errno != 0 || !isfinite(*value) || *value < 0)
		return set_cause(cause, "%s: not a non-negative number: '%s'", path, tok);
	return 0;
}

int
gov_energy_read(const struct gov_energy_source *s, struct gov_reading *r, char **cause)
{
	double a, b;

	memset(r, 0, sizeof(*r));
	switch (s->kind) {
	case GOV_SOURCE_RAPL:
	case GOV_SOURCE_HWMON_ENERGY:
		if (read_number(s->path, &a, cause) != 0)
			return -1;
		r->is_energy = true;
		r->energy_uj = (uint64_t)a;
		return 0;
	case GOV_SOURCE_HWMON_POWER: /* microwatts */
		if (read_number(s->path, &a, cause) != 0)
			return -1;
		r->power_uw = (uint64_t)a;
		return 0;
	case GOV_SOURCE_HWMON_VI: /* mV x mA = uW */
		if (read_number(s->path, &a, cause) != 0 || read_number(s->path2, &b, cause) != 0)
			return -1;
		r->power_uw = (uint64_t)(a * b);
		return 0;
	case GOV_SOURCE_INA231: { /* watts, only while enabled */
		unsigned long enabled = 0;
		if (sysfs_read_ulong(s->path2, &enabled) == 0 && enabled == 0)
			return set_cause(cause, "%s: sensor disabled (write 1 to %s)", s->path, s->path2);
		if (read_number(s->path, &a, cause) != 0)
			return -1;
		r->power_uw = (uint64_t)(a * 1e6);
		return 0;
	}
	case GOV_SOURCE_INA3221: /* milliwatts */
		if (read_number(s->path, &a, cause) != 0)
			return -1;
		r->power_uw = (uint64_t)(a * 1e3);
		return 0;
	}
	return set_cause(cause, "unknown source kind");
}

uint64_t
gov_energy_delta_uj(const struct gov_energy_source *s, uint64_t before, uint64_t after)
{
	if (after >= before)
		return after - before;
	/* The counter wrapped: it counts modulo max_energy_range_uj + 1. */
	if (s->max_range_uj > 0 && before <= s->max_range_uj)
		return s->max_range_uj - before + after + 1;
	return after; /* unknown range: the best lower bound */
}

/* ------------------------------------------------------------------------ */
/* Power models. */

static void
model_from_kernel_em(const struct gov_platform *p, unsigned cluster, struct gov_power_model *m)
{
	DIR *d = opendir("/sys/kernel/debug/energy_model");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL && m->npoints == 0) {
		char path[GOV_PATH], text[256];
		hwloc_bitmap_t set;
		DIR *ps;
		struct dirent *pe;
		if (e->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/sys/kernel/debug/energy_model/%s/cpus", e->d_name);
		if (sysfs_read(path, text, sizeof(text)) != 0)
			continue;
		set = hwloc_bitmap_alloc();
		if (hwloc_bitmap_list_sscanf(set, text) != 0 || !hwloc_bitmap_intersects(set, p->clusters[cluster].cpuset)) {
			hwloc_bitmap_free(set);
			continue;
		}
		hwloc_bitmap_free(set);
		snprintf(path, sizeof(path), "/sys/kernel/debug/energy_model/%s", e->d_name);
		if ((ps = opendir(path)) == NULL)
			continue;
		while ((pe = readdir(ps)) != NULL && m->npoints < GOV_MAX_FREQS) {
			char f[GOV_PATH + 64];
			unsigned long khz, uw;
			if (strncmp(pe->d_name, "ps:", 3) != 0)
				continue;
			snprintf(f, sizeof(f), "%s/%s/frequency", path, pe->d_name);
			if (sysfs_read_ulong(f, &khz) != 0)
				continue;
			snprintf(f, sizeof(f), "%s/%s/power", path, pe->d_name);
			if (sysfs_read_ulong(f, &uw) != 0)
				continue;
			m->khz[m->npoints] = khz;
			m->watts_per_cpu[m->npoints] = (double)uw / 1e6; /* the EM reports microwatts */
			m->npoints++;
		}
		closedir(ps);
	}
	closedir(d);
	if (m->npoints > 0)
		m->kind = GOV_MODEL_KERNEL_EM;
	for (unsigned i = 1; i < m->npoints; i++)
		for (unsigned j = i; j > 0 && m->khz[j - 1] > m->khz[j]; j--) {
			unsigned long tk = m->khz[j];
			double tw = m->watts_per_cpu[j];
			m->khz[j] = m->khz[j - 1];
			m->watts_per_cpu[j] = m->watts_per_cpu[j - 1];
			m->khz[j - 1] = tk;
			m->watts_per_cpu[j - 1] = tw;
		}
}

/* Without measurements, a documented estimate (docs/platforms.md): dynamic
 * power is C * V^2 * f, and the voltage-frequency curve is taken as linear
 * through the origin, V / Vmax = f / fmax, so per-CPU power is
 *     P(f) = Ptop * (0.1 + 0.9 * (f / fmax)^3)
 * with a static floor of a tenth of Ptop. A 1024-capacity core is taken to
 * draw Ptop = 1.75 W at its top frequency (Cortex-A15 class) and smaller
 * cores less, with the square of their capacity. The points are the
 * frequency table, or for drivers without one (intel_pstate, cppc_cpufreq,
 * amd-pstate) ESTIMATE_POINTS frequencies spread evenly over the hardware
 * range, so the model still tells a low frequency from a high one. A rough
 * guide, labelled as an estimate. */
#define ESTIMATE_POINTS 8

static double
estimate_watts(double top, unsigned long khz, unsigned long fmax)
{
	double x = fmax > 0 ? (double)khz / (double)fmax : 1.0;

	return top * (0.1 + 0.9 * x * x * x);
}

static void
model_estimate(const struct gov_cluster *c, struct gov_power_model *m)
{
	double top = 1.75 * pow((double)c->capacity / 1024.0, 2.0);
	unsigned n = c->nfreqs;

	m->kind = GOV_MODEL_ESTIMATE;
	if (n == 0) {
		unsigned long lo = c->hw_min_khz, hi = c->hw_max_khz;
		if (hi == 0 || lo == 0 || lo >= hi) {
			/* no range known: one point at whatever the CPU runs */
			m->npoints = 1;
			m->khz[0] = hi;
			m->watts_per_cpu[0] = top;
			return;
		}
		for (unsigned i = 0; i < ESTIMATE_POINTS; i++) {
			m->khz[i] = lo + (hi - lo) * i / (ESTIMATE_POINTS - 1);
			m->watts_per_cpu[i] = estimate_watts(top, m->khz[i], hi);
		}
		m->npoints = ESTIMATE_POINTS;
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		m->khz[i] = c->freqs_khz[i];
		m->watts_per_cpu[i] = estimate_watts(top, c->freqs_khz[i], c->freqs_khz[n - 1]);
	}
	m->npoints = n;
}

void
gov_discover_models(struct gov_platform *p)
{
	p->models = calloc(p->nclusters ? p->nclusters : 1, sizeof(*p->models));
	for (unsigned i = 0; i < p->nclusters; i++) {
		model_from_kernel_em(p, i, &p->models[i]);
		if (p->models[i].npoints == 0)
			model_estimate(&p->clusters[i], &p->models[i]);
	}
}

int
gov_platform_set_power_table(struct gov_platform *p, unsigned cluster, unsigned n, const unsigned long *khz,
                             const double *watts_per_cpu, char **cause)
{
	struct gov_power_model *m;

	if (cluster >= p->nclusters)
		return set_cause(cause, "no cluster %u", cluster);
	if (n == 0 || n > GOV_MAX_FREQS)
		return set_cause(cause, "a power table needs 1 to %d points", GOV_MAX_FREQS);
	for (unsigned i = 0; i < n; i++)
		if ((i > 0 && khz[i] <= khz[i - 1]) || !(watts_per_cpu[i] >= 0))
			return set_cause(cause, "power table point %u: frequencies must rise and watts be >= 0", i);
	m = &p->models[cluster];
	m->kind = GOV_MODEL_TABLE;
	m->npoints = n;
	memcpy(m->khz, khz, n * sizeof(*khz));
	memcpy(m->watts_per_cpu, watts_per_cpu, n * sizeof(*watts_per_cpu));
	return 0;
}

double
gov_model_power(const struct gov_platform *p, unsigned cluster, unsigned long khz, unsigned cpus)
{
	const struct gov_power_model *m;
	double w;

	if (cluster >= p->nclusters || p->models[cluster].npoints == 0)
		return 0.0;
	m = &p->models[cluster];
	/* Linear interpolation between table points, clamped at the ends. */
	if (m->npoints == 1 || khz <= m->khz[0]) {
		w = m->watts_per_cpu[0];
	} else if (khz >= m->khz[m->npoints - 1]) {
		w = m->watts_per_cpu[m->npoints - 1];
	} else {
		unsigned i = 1;
		while (m->khz[i] < khz)
			i++;
		double t = (double)(khz - m->khz[i - 1]) / (double)(m->khz[i] - m->khz[i - 1]);
		w = m->watts_per_cpu[i - 1] + t * (m->watts_per_cpu[i] - m->watts_per_cpu[i - 1]);
	}
	return w * cpus;
}
