/* Platform discovery: CPU clusters (hwloc CPU kinds, else cpufreq policies,
 * else one cluster), their cpufreq facts through libcpupower, devfreq GPUs,
 * OpenCL devices, energy sources and power models. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef HAVE_CPUPOWER
#include <cpufreq.h>
#endif

#include "common/cause.h"
#include "governor/internal.h"

static const char *const domain_names[] = { "package", "cluster", "gpu", "memory", "cores", "other" };
static const char *const source_names[] = { "rapl", "hwmon-energy", "hwmon-power", "hwmon-v*i", "ina231", "ina3221" };
static const char *const model_names[] = { "kernel-energy-model", "table", "estimate" };
static const char *const capacity_names[] = { "cpu_capacity", "max-frequency", "uniform" };

const char *gov_domain_name(enum gov_domain d) { return domain_names[d]; }
const char *gov_source_kind_name(enum gov_source_kind k) { return source_names[k]; }
const char *gov_model_kind_name(enum gov_model_kind k) { return model_names[k]; }
const char *gov_capacity_source_name(enum gov_capacity_source s) { return capacity_names[s]; }

/* ------------------------------------------------------------------------ */
/* cpufreq facts of one cluster. Static facts (tables, governors, related
 * CPUs, hardware limits, driver) come from libcpupower; the values gearbox
 * itself changes are read as first tokens (see sysfs_read_token). */

static int
policy_of_cpu(unsigned cpu)
{
#ifdef HAVE_CPUPOWER
	struct cpufreq_affected_cpus *rel = cpufreq_get_related_cpus(cpu);
	unsigned first = cpu;

	if (rel == NULL)
		return -1;
	for (struct cpufreq_affected_cpus *r = rel; r != NULL; r = r->next)
		if (r->cpu < first)
			first = r->cpu;
	cpufreq_put_related_cpus(rel);
	return (int)first;
#else
	char path[GOV_PATH];
	unsigned long v;
	snprintf(path, sizeof(path), CPU_SYSFS "/cpu%u/cpufreq/cpuinfo_max_freq", cpu);
	return sysfs_read_ulong(path, &v) == 0 ? (int)cpu : -1;
#endif
}

static void
read_dynamic_cpufreq(struct gov_cluster *c)
{
	char path[GOV_PATH];
	unsigned pol = c->policies[0];

	snprintf(path, sizeof(path), CPU_SYSFS "/cpufreq/policy%u/scaling_governor", pol);
	sysfs_read_token(path, c->governor, sizeof(c->governor));
	snprintf(path, sizeof(path), CPU_SYSFS "/cpufreq/policy%u/scaling_min_freq", pol);
	sysfs_read_ulong(path, &c->min_khz);
	snprintf(path, sizeof(path), CPU_SYSFS "/cpufreq/policy%u/scaling_max_freq", pol);
	sysfs_read_ulong(path, &c->max_khz);
	snprintf(path, sizeof(path), CPU_SYSFS "/cpufreq/policy%u/scaling_cur_freq", pol);
	sysfs_read_ulong(path, &c->cur_khz);
}

static void
read_cpufreq(struct gov_cluster *c)
{
	int cpu;

	c->npolicies = 0;
	hwloc_bitmap_foreach_begin(cpu, c->cpuset) {
		int pol = policy_of_cpu((unsigned)cpu);
		bool seen = false;
		if (pol < 0)
			continue;
		for (unsigned i = 0; i < c->npolicies; i++)
			seen |= c->policies[i] == (unsigned)pol;
		if (!seen && c->npolicies < GOV_MAX_POLICIES)
			c->policies[c->npolicies++] = (unsigned)pol;
	}
	hwloc_bitmap_foreach_end();
	if (c->npolicies == 0)
		return;
#ifdef HAVE_CPUPOWER
	unsigned first = c->policies[0];
	char *driver = cpufreq_get_driver(first);
	if (driver != NULL) {
		snprintf(c->driver, sizeof(c->driver), "%s", driver);
		cpufreq_put_driver(driver);
	}
	struct cpufreq_available_governors *govs = cpufreq_get_available_governors(first);
	for (struct cpufreq_available_governors *g = govs; g != NULL; g = g->next) {
		size_t len = strlen(c->governors);
		snprintf(c->governors + len, sizeof(c->governors) - len, "%s%s", len ? " " : "", g->governor);
		c->has_userspace |= strcmp(g->governor, "userspace") == 0;
	}
	if (govs != NULL)
		cpufreq_put_available_governors(govs);
	struct cpufreq_available_frequencies *freqs = cpufreq_get_available_frequencies(first);
	for (struct cpufreq_available_frequencies *f = freqs; f != NULL && c->nfreqs < GOV_MAX_FREQS; f = f->next)
		c->freqs_khz[c->nfreqs++] = f->frequency;
	if (freqs != NULL)
		cpufreq_put_available_frequencies(freqs);
	cpufreq_get_hardware_limits(first, &c->hw_min_khz, &c->hw_max_khz);
	/* Boosting siblings (favoured cores) may reach higher: the cluster's
	 * maximum is the largest of its policies. */
	for (unsigned i = 1; i < c->npolicies; i++) {
		unsigned long lo, hi;
		if (cpufreq_get_hardware_limits(c->policies[i], &lo, &hi) == 0 && hi > c->hw_max_khz)
			c->hw_max_khz = hi;
	}
#endif
	sort_ulongs(c->freqs_khz, c->nfreqs);
	read_dynamic_cpufreq(c);
}

/* ------------------------------------------------------------------------ */
/* Clusters. */

static struct gov_cluster *
add_cluster(struct gov_platform *p, hwloc_const_bitmap_t set, int efficiency)
{
	struct gov_cluster *c;

	p->clusters = realloc(p->clusters, (p->nclusters + 1) * sizeof(*p->clusters));
	c = &p->clusters[p->nclusters++];
	memset(c, 0, sizeof(*c));
	c->cpuset = hwloc_bitmap_dup(set);
	c->ncpus = (unsigned)hwloc_bitmap_weight(set);
	c->efficiency = efficiency;
	return c;
}

static void
clusters_from_kinds(struct gov_platform *p, hwloc_bitmap_t rest)
{
	int nkinds = hwloc_cpukinds_get_nr(p->topology, 0);

	/* hwloc lists kinds from least to most efficient... in efficiency order:
	 * 0 is the most energy-efficient (LITTLE) kind. */
	for (int k = 0; k < nkinds; k++) {
		hwloc_bitmap_t set = hwloc_bitmap_alloc();
		int eff = -1;
		unsigned ninfos = 0;
		struct hwloc_info_s *infos = NULL;
		if (hwloc_cpukinds_get_info(p->topology, (unsigned)k, set, &eff, &ninfos, &infos, 0) == 0) {
			hwloc_bitmap_and(set, set, rest);
			if (!hwloc_bitmap_iszero(set)) {
				struct gov_cluster *c = add_cluster(p, set, eff);
				for (unsigned i = 0; i < ninfos; i++)
					if (strcmp(infos[i].name, "CoreType") == 0 || strcmp(infos[i].name, "CPUModel") == 0)
						snprintf(c->model, sizeof(c->model), "%s", infos[i].value);
				hwloc_bitmap_andnot(rest, rest, set);
			}
		}
		hwloc_bitmap_free(set);
	}
}

/* Without CPU kinds: one cluster per cpufreq policy (a DVFS domain). */
static void
clusters_from_policies(struct gov_platform *p, hwloc_bitmap_t rest)
{
	int cpu;

	while ((cpu = hwloc_bitmap_first(rest)) >= 0) {
		hwloc_bitmap_t set = hwloc_bitmap_alloc();
		int pol = policy_of_cpu((unsigned)cpu);
		int other;
		if (pol < 0) {
			hwloc_bitmap_free(set);
			break;
		}
		hwloc_bitmap_foreach_begin(other, rest) {
			if (policy_of_cpu((unsigned)other) == pol)
				hwloc_bitmap_set(set, (unsigned)other);
		}
		hwloc_bitmap_foreach_end();
		add_cluster(p, set, -1);
		hwloc_bitmap_andnot(rest, rest, set);
		hwloc_bitmap_free(set);
	}
}

static int
compare_clusters(const void *a, const void *b)
{
	const struct gov_cluster *x = a, *y = b;

	if (x->capacity != y->capacity)
		return x->capacity < y->capacity ? -1 : 1;
	return hwloc_bitmap_first(x->cpuset) - hwloc_bitmap_first(y->cpuset);
}

static void
assign_capacities(struct gov_platform *p)
{
	unsigned long top_freq = 0;
	bool all_sysfs = true;
	unsigned top_cap = 0;

	for (unsigned i = 0; i < p->nclusters; i++) {
		struct gov_cluster *c = &p->clusters[i];
		int cpu;
		unsigned cap = 0;
		bool have = true;
		hwloc_bitmap_foreach_begin(cpu, c->cpuset) {
			char path[GOV_PATH];
			unsigned long v;
			snprintf(path, sizeof(path), CPU_SYSFS "/cpu%d/cpu_capacity", cpu);
			if (sysfs_read_ulong(path, &v) == 0) {
				if (v > cap)
					cap = (unsigned)v;
			} else {
				have = false;
			}
		}
		hwloc_bitmap_foreach_end();
		c->capacity = cap;
		all_sysfs &= have && cap > 0;
		if (c->hw_max_khz > top_freq)
			top_freq = c->hw_max_khz;
		if (cap > top_cap)
			top_cap = cap;
	}
	for (unsigned i = 0; i < p->nclusters; i++) {
		struct gov_cluster *c = &p->clusters[i];
		if (all_sysfs) {
			c->capacity_source = GOV_CAPACITY_SYSFS;
			c->capacity = (unsigned)((unsigned long)c->capacity * 1024 / top_cap);
		} else if (p->nclusters > 1 && top_freq > 0 && c->hw_max_khz > 0) {
			c->capacity_source = GOV_CAPACITY_FREQUENCY;
			c->capacity = (unsigned)(1024 * c->hw_max_khz / top_freq);
		} else {
			c->capacity_source = GOV_CAPACITY_UNIFORM;
			c->capacity = 1024;
		}
	}
	/* Least capable first, so cluster0 is the LITTLE one on every board. */
	qsort(p->clusters, p->nclusters, sizeof(*p->clusters), compare_clusters);
	for (unsigned i = 0; i < p->nclusters; i++) {
		p->clusters[i].id = i;
		snprintf(p->clusters[i].name, sizeof(p->clusters[i].name), "cluster%u", i);
	}
}

static void
discover_clusters(struct gov_platform *p)
{
	hwloc_bitmap_t rest = hwloc_bitmap_dup(hwloc_topology_get_topology_cpuset(p->topology));

	clusters_from_kinds(p, rest);
	if (!hwloc_bitmap_iszero(rest) && p->nclusters == 0)
		clusters_from_policies(p, rest);
	if (!hwloc_bitmap_iszero(rest))
		add_cluster(p, rest, -1);
	hwloc_bitmap_free(rest);
	for (unsigned i = 0; i < p->nclusters; i++) {
		read_cpufreq(&p->clusters[i]);
		p->cpufreq |= p->clusters[i].npolicies > 0;
	}
	assign_capacities(p);
}

/* ------------------------------------------------------------------------ */
/* devfreq GPUs. */

static bool
looks_like_gpu(const char *name)
{
	static const char *const hints[] = { "gpu", "mali", "g3d", "kgsl", "gk20a", "gv11b", "gp10b", "gm20b" };

	for (size_t i = 0; i < sizeof(hints) / sizeof(hints[0]); i++)
		if (strcasestr(name, hints[i]) != NULL)
			return true;
	return false;
}

static void
discover_devfreq(struct gov_platform *p)
{
	DIR *d = opendir("/sys/class/devfreq");
	struct dirent *e;

	if (d == NULL)
		return;
	while ((e = readdir(d)) != NULL) {
		char path[GOV_PATH], text[1024];
		struct gov_gpu *g;
		if (e->d_name[0] == '.' || !looks_like_gpu(e->d_name))
			continue;
		p->gpus = realloc(p->gpus, (p->ngpus + 1) * sizeof(*p->gpus));
		g = &p->gpus[p->ngpus++];
		memset(g, 0, sizeof(*g));
		g->opencl_device = -1;
		snprintf(g->name, sizeof(g->name), "%s", e->d_name);
		snprintf(g->path, sizeof(g->path), "/sys/class/devfreq/%s", e->d_name);
		snprintf(path, sizeof(path), "%s/available_frequencies", g->path);
		if (sysfs_read(path, text, sizeof(text)) == 0)
			g->nfreqs = parse_ulongs(text, g->freqs_hz, GOV_MAX_FREQS);
		sort_ulongs(g->freqs_hz, g->nfreqs);
		snprintf(path, sizeof(path), "%s/available_governors", g->path);
		sysfs_read(path, g->governors, sizeof(g->governors));
		g->has_userspace = strstr(g->governors, "userspace") != NULL;
		snprintf(path, sizeof(path), "%s/governor", g->path);
		sysfs_read_token(path, g->governor, sizeof(g->governor));
		snprintf(path, sizeof(path), "%s/min_freq", g->path);
		sysfs_read_ulong(path, &g->min_hz);
		snprintf(path, sizeof(path), "%s/max_freq", g->path);
		sysfs_read_ulong(path, &g->max_hz);
		snprintf(path, sizeof(path), "%s/cur_freq", g->path);
		sysfs_read_ulong(path, &g->cur_hz);
	}
	closedir(d);
}

/* A devfreq GPU and an OpenCL GPU device are the same chip when each is the
 * only one of its kind (names never match: "57000000.gpu" vs "NVIDIA Tegra X1"). */
static void
link_gpus(struct gov_platform *p)
{
	int only = -1, count = 0;

	for (unsigned i = 0; i < p->nopencl; i++) {
		if (strcmp(p->opencl[i].type, "gpu") == 0) {
			only = (int)i;
			count++;
		}
	}
	if (count == 1 && p->ngpus == 1)
		p->gpus[0].opencl_device = only;
}

/* ------------------------------------------------------------------------ */

struct gov_platform *
gov_platform_discover(const char *state_dir, char **cause)
{
	return gov_platform_discover_flags(state_dir, 0, cause);
}

struct gov_platform *
gov_platform_discover_flags(const char *state_dir, unsigned flags, char **cause)
{
	struct gov_platform *p = calloc(1, sizeof(*p));
	const char *env = getenv("GEARBOX_STATE_DIR");

	if (p == NULL) {
		set_cause(cause, "out of memory");
		return NULL;
	}
	p->owner_pid = (int)getpid();
	p->state_dir = strdup(state_dir != NULL ? state_dir : env != NULL && *env ? env : GOV_DEFAULT_STATE_DIR);
	if (hwloc_topology_init(&p->topology) != 0 || hwloc_topology_load(p->topology) != 0) {
		set_cause(cause, "hwloc cannot load the topology: %s", strerror(errno));
		gov_platform_free(p);
		return NULL;
	}
	discover_clusters(p);
	discover_devfreq(p);
	if (flags & GOV_DISCOVER_NO_OPENCL)
		p->opencl_error = strdup("OpenCL not probed (turned off)");
	else
		gov_discover_opencl(p);
	link_gpus(p);
	gov_discover_energy(p);
	gov_discover_models(p);
	return p;
}

void
gov_platform_free(struct gov_platform *p)
{
	if (p == NULL)
		return;
	for (unsigned i = 0; i < p->nclusters; i++)
		hwloc_bitmap_free(p->clusters[i].cpuset);
	free(p->clusters);
	free(p->models);
	free(p->gpus);
	free(p->opencl);
	free(p->opencl_error);
	free(p->sources);
	free(p->state_dir);
	if (p->topology != NULL)
		hwloc_topology_destroy(p->topology);
	free(p);
}

struct gov_cluster *
gov_find_cluster(struct gov_platform *p, const char *what)
{
	char *end;
	unsigned long n;

	for (unsigned i = 0; i < p->nclusters; i++)
		if (strcmp(p->clusters[i].name, what) == 0)
			return &p->clusters[i];
	if (strncmp(what, "cpu", 3) == 0 && what[3] != '\0') {
		n = strtoul(what + 3, &end, 10);
		if (*end == '\0')
			for (unsigned i = 0; i < p->nclusters; i++)
				if (hwloc_bitmap_isset(p->clusters[i].cpuset, (unsigned)n))
					return &p->clusters[i];
		return NULL;
	}
	n = strtoul(what, &end, 10);
	if (*what != '\0' && *end == '\0' && n < p->nclusters)
		return &p->clusters[n];
	return NULL;
}

struct gov_gpu *
gov_find_gpu(struct gov_platform *p, const char *what)
{
	char *end;
	unsigned long n;

	for (unsigned i = 0; i < p->ngpus; i++)
		if (strcmp(p->gpus[i].name, what) == 0)
			return &p->gpus[i];
	n = strtoul(what, &end, 10);
	if (*what != '\0' && *end == '\0' && n < p->ngpus)
		return &p->gpus[n];
	return NULL;
}

hwloc_bitmap_t
gov_cluster_cpuset(const struct gov_cluster *c, unsigned ncpus)
{
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	unsigned taken = 0;
	int cpu;

	hwloc_bitmap_foreach_begin(cpu, c->cpuset) {
		if (ncpus != 0 && taken == ncpus)
			break;
		hwloc_bitmap_set(set, (unsigned)cpu);
		taken++;
	}
	hwloc_bitmap_foreach_end();
	return set;
}
