/* SPDX-License-Identifier: MIT */
/* Platform discovery: CPU clusters (from cpufreq policies in either layout,
 * cpu_capacity, CPU parts and core types), their cpufreq facts, devfreq GPUs,
 * OpenCL devices, energy sources and power models.
 *
 * cpufreq is read from each policy's folder (cpufreq/policyN, or cpuN/cpufreq
 * on kernels without policy folders) rather than through libcpupower, whose
 * paths are cpuN/cpufreq only: the same code then reads both layouts and
 * trees that lack the cpuN/cpufreq links, and sees scaling_boost_frequencies. */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>


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
/* What the kernel says about each CPU. */

struct cpu_info {
	int cpu;
	int policy;               /* -1: no cpufreq */
	enum gov_cpufreq_layout layout;
	unsigned policy_ncpus;    /* CPUs of ours in its policy */
	unsigned long capacity;   /* cpu_capacity, 0: unknown */
	unsigned long base_khz;   /* the policy's base_frequency, 0: unknown */
	char part[24];            /* "0x41:0xd4e" (implementer:part), "" unknown */
	char part_name[32];       /* "Cortex-X3" */
	char core_type[32];       /* hwloc's CoreType ("IntelAtom"), "" unknown */
	char model[GOV_NAME];     /* hwloc's CPUModel (/proc/cpuinfo "model name") */
	char kind[48];            /* the key its cluster is grouped by */
};

/* Arm's and a few licensees' CPU parts (MIDR_EL1 implementer:part), as
 * util-linux's lscpu names them. */
static const struct {
	unsigned implementer, part;
	const char *name;
} cpu_parts[] = {
	{ 0x41, 0xc05, "Cortex-A5" },    { 0x41, 0xc07, "Cortex-A7" },    { 0x41, 0xc08, "Cortex-A8" },
	{ 0x41, 0xc09, "Cortex-A9" },    { 0x41, 0xc0d, "Cortex-A12" },   { 0x41, 0xc0e, "Cortex-A17" },
	{ 0x41, 0xc0f, "Cortex-A15" },   { 0x41, 0xd01, "Cortex-A32" },   { 0x41, 0xd02, "Cortex-A34" },
	{ 0x41, 0xd03, "Cortex-A53" },   { 0x41, 0xd04, "Cortex-A35" },   { 0x41, 0xd05, "Cortex-A55" },
	{ 0x41, 0xd06, "Cortex-A65" },   { 0x41, 0xd07, "Cortex-A57" },   { 0x41, 0xd08, "Cortex-A72" },
	{ 0x41, 0xd09, "Cortex-A73" },   { 0x41, 0xd0a, "Cortex-A75" },   { 0x41, 0xd0b, "Cortex-A76" },
	{ 0x41, 0xd0c, "Neoverse-N1" },  { 0x41, 0xd0d, "Cortex-A77" },   { 0x41, 0xd0e, "Cortex-A76AE" },
	{ 0x41, 0xd40, "Neoverse-V1" },  { 0x41, 0xd41, "Cortex-A78" },   { 0x41, 0xd42, "Cortex-A78AE" },
	{ 0x41, 0xd44, "Cortex-X1" },    { 0x41, 0xd46, "Cortex-A510" },  { 0x41, 0xd47, "Cortex-A710" },
	{ 0x41, 0xd48, "Cortex-X2" },    { 0x41, 0xd49, "Neoverse-N2" },  { 0x41, 0xd4a, "Neoverse-E1" },
	{ 0x41, 0xd4b, "Cortex-A78C" },  { 0x41, 0xd4c, "Cortex-X1C" },   { 0x41, 0xd4d, "Cortex-A715" },
	{ 0x41, 0xd4e, "Cortex-X3" },    { 0x41, 0xd4f, "Neoverse-V2" },  { 0x41, 0xd80, "Cortex-A520" },
	{ 0x41, 0xd81, "Cortex-A720" },  { 0x41, 0xd82, "Cortex-X4" },    { 0x41, 0xd84, "Neoverse-V3" },
	{ 0x41, 0xd85, "Cortex-X925" },  { 0x41, 0xd87, "Cortex-A725" },  { 0x41, 0xd8e, "Neoverse-N3" },
	{ 0x46, 0x001, "A64FX" },        { 0x48, 0xd01, "TaiShan-v110" }, { 0x4e, 0x003, "Denver 2" },     { 0x4e, 0x004, "Carmel" },       { 0x51, 0x800, "Kryo-2XX-Gold" },
	{ 0x51, 0x801, "Kryo-2XX-Silver" }, { 0x51, 0x802, "Kryo-3XX-Gold" }, { 0x51, 0x803, "Kryo-3XX-Silver" },
	{ 0x51, 0x804, "Kryo-4XX-Gold" }, { 0x51, 0x805, "Kryo-4XX-Silver" }, { 0x61, 0x022, "Apple M1 Icestorm" },
	{ 0x61, 0x023, "Apple M1 Firestorm" },
};

static void
set_part(struct cpu_info *ci, unsigned long implementer, unsigned long part)
{
	snprintf(ci->part, sizeof(ci->part), "0x%02lx:0x%03lx", implementer, part);
	snprintf(ci->part_name, sizeof(ci->part_name), "part 0x%03lx", part);
	for (size_t i = 0; i < sizeof(cpu_parts) / sizeof(cpu_parts[0]); i++)
		if (cpu_parts[i].implementer == implementer && cpu_parts[i].part == part)
			snprintf(ci->part_name, sizeof(ci->part_name), "%s", cpu_parts[i].name);
}

static const char *
pu_info(hwloc_topology_t topo, int cpu, const char *name)
{
	/* hwloc keeps /proc/cpuinfo's facts on the PU, or on the package when
	 * all its PUs agree. */
	for (hwloc_obj_t o = hwloc_get_pu_obj_by_os_index(topo, (unsigned)cpu); o != NULL; o = o->parent) {
		const char *v = hwloc_obj_get_info_by_name(o, name);
		if (v != NULL)
			return v;
	}
	return NULL;
}

/* /proc/cpuinfo's "CPU implementer" and "CPU part" (32-bit Arm kernels have
 * no midr_el1 in sysfs), read from the root hwloc reads (HWLOC_FSROOT): not
 * through hwloc, which parses Arm's fields only when built for Arm. A block
 * with a "processor" line describes that CPU; one without (old kernels list
 * the fields once after every processor) describes all the others. */
static void
read_cpuinfo_parts(struct cpu_info *cpus, unsigned n)
{
	const char *root = getenv("HWLOC_FSROOT");
	char path[GOV_PATH], *line = NULL;
	size_t cap = 0;
	long cpu = -1;
	unsigned long impl = 0, part = 0, gimpl = 0, gpart = 0;
	bool have_impl = false, have_part = false, ghave = false;
	FILE *f;

	snprintf(path, sizeof(path), "%s/proc/cpuinfo", root != NULL && *root ? root : "");
	if ((f = fopen(path, "re")) == NULL)
		return;
	for (;;) {
		ssize_t len = getline(&line, &cap, f);
		bool end = len < 0 || line[0] == '\n';
		if (end) {
			if (have_impl && have_part) {
				if (cpu < 0) {
					gimpl = impl, gpart = part, ghave = true;
				} else {
					for (unsigned i = 0; i < n; i++)
						if (cpus[i].cpu == cpu && cpus[i].part[0] == '\0')
							set_part(&cpus[i], impl, part);
				}
			}
			cpu = -1;
			have_impl = have_part = false;
			if (len < 0)
				break;
			continue;
		}
		char *colon = strchr(line, ':');
		if (colon == NULL)
			continue;
		if (strncmp(line, "processor", 9) == 0 && (line[9] == '\t' || line[9] == ' '))
			cpu = strtol(colon + 1, NULL, 10);
		else if (strncmp(line, "CPU implementer", 15) == 0)
			impl = strtoul(colon + 1, NULL, 0), have_impl = true;
		else if (strncmp(line, "CPU part", 8) == 0)
			part = strtoul(colon + 1, NULL, 0), have_part = true;
	}
	free(line);
	fclose(f);
	for (unsigned i = 0; ghave && i < n; i++)
		if (cpus[i].part[0] == '\0')
			set_part(&cpus[i], gimpl, gpart);
}

/* The CPU part: MIDR_EL1 from sysfs (arm64), else /proc/cpuinfo. */
static void
read_parts(struct cpu_info *cpus, unsigned n)
{
	char path[GOV_PATH], text[64];
	bool all = true;

	for (unsigned i = 0; i < n; i++) {
		snprintf(path, sizeof(path), CPU_SYSFS "/cpu%d/regs/identification/midr_el1", cpus[i].cpu);
		if (sysfs_read_token(path, text, sizeof(text)) == 0) {
			unsigned long midr = strtoul(text, NULL, 16);
			set_part(&cpus[i], (midr >> 24) & 0xff, (midr >> 4) & 0xfff);
		} else {
			all = false;
		}
	}
	if (!all)
		read_cpuinfo_parts(cpus, n);
}

/* The CPUs to build clusters from: the kernel's online CPUs (else present,
 * else the cpuN folders). hwloc's view is used only where it read the
 * topology: without cpuN/topology/ it falls back to the CPUs this process may
 * use, which is not the machine. *use_hwloc says whether it read it. */
static hwloc_bitmap_t
machine_cpus(struct gov_platform *p, bool *use_hwloc)
{
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	hwloc_const_bitmap_t h = hwloc_topology_get_topology_cpuset(p->topology);
	char text[8192], path[GOV_PATH];

	if (sysfs_read(CPU_SYSFS "/online", text, sizeof(text)) == 0)
		parse_cpu_list(text, set);
	if (hwloc_bitmap_iszero(set) && sysfs_read(CPU_SYSFS "/present", text, sizeof(text)) == 0)
		parse_cpu_list(text, set);
	if (hwloc_bitmap_iszero(set)) {
		DIR *d = opendir(CPU_SYSFS);
		struct dirent *e;
		while (d != NULL && (e = readdir(d)) != NULL) {
			char *end;
			unsigned long n;
			if (strncmp(e->d_name, "cpu", 3) != 0 || e->d_name[3] < '0' || e->d_name[3] > '9')
				continue;
			n = strtoul(e->d_name + 3, &end, 10);
			if (*end == '\0' && n < 65536)
				hwloc_bitmap_set(set, (unsigned)n);
		}
		if (d != NULL)
			closedir(d);
	}
	if (hwloc_bitmap_iszero(set)) {
		hwloc_bitmap_copy(set, h);
		*use_hwloc = true;
		return set;
	}
	snprintf(path, sizeof(path), CPU_SYSFS "/cpu%d/topology", hwloc_bitmap_first(set));
	*use_hwloc = sysfs_exists(path);
	if (*use_hwloc && hwloc_bitmap_intersects(set, h))
		hwloc_bitmap_and(set, set, h); /* hwloc left out CPUs this process may never use */
	return set;
}

/* cpufreq policies, both layouts: cpufreq/policyN/related_cpus, else (older
 * and vendor kernels) cpuN/cpufreq/related_cpus, whose first CPU with a
 * cpufreq folder owns the policy. affected_cpus stands in for related_cpus on
 * kernels without it. */
static void
read_policies(struct cpu_info *cpus, unsigned n, hwloc_const_bitmap_t ours)
{
	DIR *d = opendir(CPU_SYSFS "/cpufreq");
	struct dirent *e;
	char path[GOV_PATH], text[8192];

	while (d != NULL && (e = readdir(d)) != NULL) {
		char *end;
		unsigned long pol;
		if (strncmp(e->d_name, "policy", 6) != 0)
			continue;
		pol = strtoul(e->d_name + 6, &end, 10);
		if (*end != '\0' || end == e->d_name + 6)
			continue;
		hwloc_bitmap_t rel = hwloc_bitmap_alloc();
		snprintf(path, sizeof(path), CPU_SYSFS "/cpufreq/%s/related_cpus", e->d_name);
		if (sysfs_read(path, text, sizeof(text)) == 0)
			parse_cpu_list(text, rel);
		snprintf(path, sizeof(path), CPU_SYSFS "/cpufreq/%s/affected_cpus", e->d_name);
		if (hwloc_bitmap_iszero(rel) && sysfs_read(path, text, sizeof(text)) == 0)
			parse_cpu_list(text, rel);
		if (hwloc_bitmap_iszero(rel))
			hwloc_bitmap_set(rel, (unsigned)pol);
		hwloc_bitmap_and(rel, rel, ours);
		for (unsigned i = 0; i < n; i++) {
			if (hwloc_bitmap_isset(rel, (unsigned)cpus[i].cpu)) {
				cpus[i].policy = (int)pol;
				cpus[i].layout = GOV_CPUFREQ_POLICY;
				cpus[i].policy_ncpus = (unsigned)hwloc_bitmap_weight(rel);
			}
		}
		hwloc_bitmap_free(rel);
	}
	if (d != NULL)
		closedir(d);
	for (unsigned i = 0; i < n; i++) {
		if (cpus[i].policy >= 0)
			continue;
		snprintf(path, sizeof(path), CPU_SYSFS "/cpu%d/cpufreq/cpuinfo_max_freq", cpus[i].cpu);
		if (!sysfs_exists(path))
			continue;
		hwloc_bitmap_t rel = hwloc_bitmap_alloc();
		int owner = cpus[i].cpu, c;
		snprintf(path, sizeof(path), CPU_SYSFS "/cpu%d/cpufreq/related_cpus", cpus[i].cpu);
		if (sysfs_read(path, text, sizeof(text)) == 0)
			parse_cpu_list(text, rel);
		snprintf(path, sizeof(path), CPU_SYSFS "/cpu%d/cpufreq/affected_cpus", cpus[i].cpu);
		if (hwloc_bitmap_iszero(rel) && sysfs_read(path, text, sizeof(text)) == 0)
			parse_cpu_list(text, rel);
		hwloc_bitmap_set(rel, (unsigned)cpus[i].cpu);
		hwloc_bitmap_and(rel, rel, ours);
		hwloc_bitmap_foreach_begin(c, rel) {
			snprintf(path, sizeof(path), CPU_SYSFS "/cpu%d/cpufreq/cpuinfo_max_freq", c);
			if (sysfs_exists(path)) {
				owner = c;
				break;
			}
		}
		hwloc_bitmap_foreach_end();
		/* Its siblings share it (in the kernel their cpuN/cpufreq is a link
		 * to the owner's; captures may lack the links). */
		for (unsigned j = 0; j < n; j++) {
			if (hwloc_bitmap_isset(rel, (unsigned)cpus[j].cpu) && cpus[j].policy < 0) {
				cpus[j].policy = owner;
				cpus[j].layout = GOV_CPUFREQ_PER_CPU;
				cpus[j].policy_ncpus = (unsigned)hwloc_bitmap_weight(rel);
			}
		}
		hwloc_bitmap_free(rel);
	}
}

static void
policy_path(const struct cpu_info *ci, const char *attr, char *buf, size_t len)
{
	if (ci->layout == GOV_CPUFREQ_PER_CPU)
		snprintf(buf, len, CPU_SYSFS "/cpu%d/cpufreq/%s", ci->policy, attr);
	else
		snprintf(buf, len, CPU_SYSFS "/cpufreq/policy%d/%s", ci->policy, attr);
}

/* Which fact tells the CPUs apart, known for every CPU: the CPU part, hwloc's
 * CoreType (Intel hybrid), the base frequency (intel_pstate, amd-pstate), or
 * cpu_capacity, where values within 8 % of the kind's smallest are one kind
 * (firmware gives cores of one kind slightly different capacities: GB10's
 * Cortex-A725 read 718 and 731). hwloc's own CPU kinds are not used
 * directly: which facts they come from changes between hwloc versions. */
static const char *
assign_kinds(struct cpu_info *cpus, unsigned n)
{
	bool part = true, core = true, base = true, cap = true;

	for (unsigned i = 0; i < n; i++) {
		part &= cpus[i].part[0] != '\0';
		core &= cpus[i].core_type[0] != '\0';
		base &= cpus[i].base_khz > 0;
		cap &= cpus[i].capacity > 0;
	}
	if (part) {
		for (unsigned i = 0; i < n; i++)
			snprintf(cpus[i].kind, sizeof(cpus[i].kind), "%s", cpus[i].part);
		return "cpu-part";
	}
	if (core) {
		for (unsigned i = 0; i < n; i++)
			snprintf(cpus[i].kind, sizeof(cpus[i].kind), "%s", cpus[i].core_type);
		return "core-type";
	}
	if (base) {
		for (unsigned i = 0; i < n; i++)
			snprintf(cpus[i].kind, sizeof(cpus[i].kind), "%lu", cpus[i].base_khz);
		return "base-frequency";
	}
	if (cap) {
		unsigned long v[n], kind_min = 0;
		unsigned nv = 0;
		for (unsigned i = 0; i < n; i++)
			v[nv++] = cpus[i].capacity;
		sort_ulongs(v, nv);
		for (unsigned k = 0; k < nv; k++) {
			if (k == 0 || v[k] * 100 > kind_min * 108)
				kind_min = v[k];
			for (unsigned i = 0; i < n; i++)
				if (cpus[i].capacity == v[k])
					snprintf(cpus[i].kind, sizeof(cpus[i].kind), "%lu", kind_min);
		}
		return "cpu_capacity";
	}
	for (unsigned i = 0; i < n; i++)
		cpus[i].kind[0] = '\0';
	return "";
}

/* ------------------------------------------------------------------------ */
/* cpufreq facts of one cluster, read from its first policy's folder (either
 * layout) with plain reads: missing files stay 0, shown as unknown. */

static void
read_dynamic_cpufreq(struct gov_cluster *c)
{
	char dir[GOV_PATH], path[GOV_PATH + 32];

	gov_policy_dir(c, c->policies[0], dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/scaling_governor", dir);
	sysfs_read_token(path, c->governor, sizeof(c->governor));
	snprintf(path, sizeof(path), "%s/scaling_min_freq", dir);
	sysfs_read_ulong(path, &c->min_khz);
	snprintf(path, sizeof(path), "%s/scaling_max_freq", dir);
	sysfs_read_ulong(path, &c->max_khz);
	snprintf(path, sizeof(path), "%s/scaling_cur_freq", dir);
	if (sysfs_read_ulong(path, &c->cur_khz) != 0) {
		snprintf(path, sizeof(path), "%s/cpuinfo_cur_freq", dir);
		sysfs_read_ulong(path, &c->cur_khz);
	}
}

static void
read_cpufreq(struct gov_cluster *c)
{
	char dir[GOV_PATH], path[GOV_PATH + 32], text[2048], *nl;
	unsigned long v;

	if (c->npolicies == 0)
		return;
	gov_policy_dir(c, c->policies[0], dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/scaling_driver", dir);
	if (sysfs_read(path, c->driver, sizeof(c->driver)) == 0 && (nl = strchr(c->driver, '\n')) != NULL)
		*nl = '\0';
	snprintf(path, sizeof(path), "%s/scaling_available_governors", dir);
	if (sysfs_read(path, text, sizeof(text)) == 0) {
		char *save = NULL;
		for (char *g = strtok_r(text, " \t\n", &save); g != NULL; g = strtok_r(NULL, " \t\n", &save)) {
			size_t len = strlen(c->governors);
			snprintf(c->governors + len, sizeof(c->governors) - len, "%s%s", len ? " " : "", g);
			c->has_userspace |= strcmp(g, "userspace") == 0;
		}
	}
	snprintf(path, sizeof(path), "%s/scaling_setspeed", dir);
	c->has_setspeed = sysfs_exists(path);
	snprintf(path, sizeof(path), "%s/scaling_available_frequencies", dir);
	if (sysfs_read(path, text, sizeof(text)) == 0)
		c->nfreqs = parse_ulongs(text, c->freqs_khz, GOV_MAX_FREQS);
	/* Boost frequencies are listed apart from the table, and reachable
	 * while boost is on. */
	snprintf(path, sizeof(path), "%s/scaling_boost_frequencies", dir);
	if (sysfs_read(path, text, sizeof(text)) == 0)
		c->nboost = parse_ulongs(text, c->boost_khz, GOV_MAX_BOOST);
	sort_ulongs(c->boost_khz, c->nboost);
	for (unsigned i = 0; i < c->nboost && c->nfreqs > 0; i++) {
		bool seen = false;
		for (unsigned j = 0; j < c->nfreqs; j++)
			seen |= c->freqs_khz[j] == c->boost_khz[i];
		if (!seen && c->nfreqs < GOV_MAX_FREQS)
			c->freqs_khz[c->nfreqs++] = c->boost_khz[i];
	}
	sort_ulongs(c->freqs_khz, c->nfreqs);
	c->boost = -1;
	snprintf(path, sizeof(path), "%s/boost", dir);
	if (sysfs_read_ulong(path, &v) == 0 || sysfs_read_ulong(CPU_SYSFS "/cpufreq/boost", &v) == 0)
		c->boost = v != 0;
	else if (sysfs_read_ulong(CPU_SYSFS "/intel_pstate/no_turbo", &v) == 0)
		c->boost = v == 0;
	/* Favoured cores (intel_pstate's ITMT, cppc) may reach higher than their
	 * siblings: the cluster's range spans all its policies. */
	for (unsigned i = 0; i < c->npolicies; i++) {
		gov_policy_dir(c, c->policies[i], dir, sizeof(dir));
		snprintf(path, sizeof(path), "%s/cpuinfo_min_freq", dir);
		if (sysfs_read_ulong(path, &v) == 0 && v > 0 && (c->hw_min_khz == 0 || v < c->hw_min_khz))
			c->hw_min_khz = v;
		snprintf(path, sizeof(path), "%s/cpuinfo_max_freq", dir);
		if (sysfs_read_ulong(path, &v) == 0 && v > c->hw_max_khz)
			c->hw_max_khz = v;
	}
	read_dynamic_cpufreq(c);
}

/* ------------------------------------------------------------------------ */
/* Clusters. */

static struct gov_cluster *
add_cluster(struct gov_platform *p, hwloc_const_bitmap_t set)
{
	struct gov_cluster *c;

	p->clusters = realloc(p->clusters, (p->nclusters + 1) * sizeof(*p->clusters));
	c = &p->clusters[p->nclusters++];
	memset(c, 0, sizeof(*c));
	c->cpuset = hwloc_bitmap_dup(set);
	c->ncpus = (unsigned)hwloc_bitmap_weight(set);
	c->efficiency = -1;
	c->boost = -1;
	return c;
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
			/* in 64 bits: 5.2 GHz in kHz times 1024 overflows a 32-bit long */
			c->capacity = (unsigned)(1024ull * c->hw_max_khz / top_freq);
		} else {
			c->capacity_source = GOV_CAPACITY_UNIFORM;
			c->capacity = 1024;
		}
	}
	/* Least capable first, so cluster0 is the LITTLE one on every board. */
	qsort(p->clusters, p->nclusters, sizeof(*p->clusters), compare_clusters);
	for (unsigned i = 0; i < p->nclusters; i++) {
		struct gov_cluster *c = &p->clusters[i];
		c->id = i;
		snprintf(c->name, sizeof(c->name), "cluster%u", i);
		c->efficiency = 0;
		for (unsigned j = 1; j <= i; j++)
			if (p->clusters[j].capacity != p->clusters[j - 1].capacity)
				c->efficiency++;
	}
}

/* The cluster's model: its CPU parts' names ("Cortex-A715/Cortex-A710"), else
 * /proc/cpuinfo's model name as hwloc read it. */
static void
cluster_model(struct gov_cluster *c, const struct cpu_info *cpus, unsigned n)
{
	for (unsigned i = 0; i < n; i++) {
		const char *name = cpus[i].part[0] ? cpus[i].part_name : cpus[i].model;
		if (!hwloc_bitmap_isset(c->cpuset, (unsigned)cpus[i].cpu) || name[0] == '\0')
			continue;
		if (!cpus[i].part[0]) {
			if (c->model[0] == '\0')
				snprintf(c->model, sizeof(c->model), "%s", name);
			continue;
		}
		bool seen = false;
		for (unsigned j = 0; j < i; j++)
			seen |= hwloc_bitmap_isset(c->cpuset, (unsigned)cpus[j].cpu) && strcmp(cpus[j].part, cpus[i].part) == 0;
		if (!seen) {
			size_t len = strlen(c->model);
			snprintf(c->model + len, sizeof(c->model) - len, "%s%s", len ? "/" : "", name);
		}
	}
}

#define KEY_LEN 512

/* A multi-CPU policy's grouping key: "dvfs", its CPUs' kinds, its
 * cpuinfo_min_freq, cpuinfo_max_freq and frequency table. */
static void
domain_key(const struct cpu_info *cpus, unsigned n, const struct cpu_info *ci, char *key, size_t len)
{
	char path[GOV_PATH], text[256];
	size_t used;

	used = (size_t)snprintf(key, len, "dvfs");
	for (unsigned i = 0; i < n && used < len; i++) {
		bool seen = false;
		if (cpus[i].policy != ci->policy || cpus[i].layout != ci->layout)
			continue;
		for (unsigned j = 0; j < i; j++)
			seen |= cpus[j].policy == ci->policy && cpus[j].layout == ci->layout && strcmp(cpus[j].kind, cpus[i].kind) == 0;
		if (!seen)
			used += (size_t)snprintf(key + used, len - used, " %s", cpus[i].kind);
	}
	static const char *const attrs[] = { "cpuinfo_min_freq", "cpuinfo_max_freq", "scaling_available_frequencies" };
	for (size_t a = 0; a < sizeof(attrs) / sizeof(attrs[0]) && used < len; a++) {
		policy_path(ci, attrs[a], path, sizeof(path));
		if (sysfs_read(path, text, sizeof(text)) != 0)
			text[0] = '\0';
		used += (size_t)snprintf(key + used, len - used, " | %s", text);
	}
}

/* Clusters from what the kernel says about DVFS and CPU kinds, whatever hwloc
 * version reads the tree:
 *   - a cpufreq policy over several CPUs is one DVFS domain, never split
 *     (Snapdragon 8 Gen 2's policy3 holds Cortex-A715 and A710); domains of
 *     the same kinds and frequencies make one cluster of several policies;
 *   - CPUs with a policy of their own (intel_pstate, cppc_cpufreq) or none at
 *     all are grouped by their kind (assign_kinds), so 20 per-CPU policies of
 *     two CPU parts make two clusters. */
static void
discover_clusters(struct gov_platform *p)
{
	bool use_hwloc = false;
	hwloc_bitmap_t set = machine_cpus(p, &use_hwloc);
	unsigned n = (unsigned)hwloc_bitmap_weight(set), k = 0;
	struct cpu_info *cpus = calloc(n ? n : 1, sizeof(*cpus));
	int cpu;

	hwloc_bitmap_foreach_begin(cpu, set) {
		struct cpu_info *ci = &cpus[k++];
		ci->cpu = cpu;
		ci->policy = -1;
	}
	hwloc_bitmap_foreach_end();
	read_policies(cpus, n, set);
	for (unsigned i = 0; i < n; i++) {
		struct cpu_info *ci = &cpus[i];
		char path[GOV_PATH];
		const char *model;
		snprintf(path, sizeof(path), CPU_SYSFS "/cpu%d/cpu_capacity", ci->cpu);
		sysfs_read_ulong(path, &ci->capacity);
		if (ci->policy >= 0) {
			policy_path(ci, "base_frequency", path, sizeof(path));
			sysfs_read_ulong(path, &ci->base_khz);
		}
		if (use_hwloc && (model = pu_info(p->topology, ci->cpu, "CPUModel")) != NULL) {
			size_t m = 0; /* white space runs ("CPU           X7550  @") as one space */
			for (const char *c = model; *c && m + 1 < sizeof(ci->model); c++)
				if (!(*c == ' ' && (m == 0 || ci->model[m - 1] == ' ')))
					ci->model[m++] = *c;
			while (m > 0 && ci->model[m - 1] == ' ')
				m--;
			ci->model[m] = '\0';
		}
	}
	read_parts(cpus, n);
	/* hwloc's CoreType (from CPUID or /sys/devices/cpu_{core,atom}) names an
	 * architectural core type, unlike its other kinds. */
	if (use_hwloc) {
		int nkinds = hwloc_cpukinds_get_nr(p->topology, 0);
		for (int kk = 0; kk < nkinds; kk++) {
			hwloc_bitmap_t ks = hwloc_bitmap_alloc();
			unsigned ninfos = 0;
			struct hwloc_info_s *infos = NULL;
			int eff;
			if (hwloc_cpukinds_get_info(p->topology, (unsigned)kk, ks, &eff, &ninfos, &infos, 0) == 0)
				for (unsigned j = 0; j < ninfos; j++)
					if (strcmp(infos[j].name, "CoreType") == 0)
						for (unsigned i = 0; i < n; i++)
							if (hwloc_bitmap_isset(ks, (unsigned)cpus[i].cpu))
								snprintf(cpus[i].core_type, sizeof(cpus[i].core_type), "%s", infos[j].value);
			hwloc_bitmap_free(ks);
		}
	}
	const char *kind = assign_kinds(cpus, n);

	/* Group: multi-CPU policies by the kinds of their CPUs and their
	 * frequency range and table (so equal DVFS domains, such as the four
	 * sockets of a server, make one cluster of four policies), everything
	 * else by kind. */
	char (*keys)[KEY_LEN] = calloc(n ? n : 1, sizeof(*keys));
	for (unsigned i = 0; i < n; i++) {
		const struct cpu_info *ci = &cpus[i];
		if (ci->policy >= 0 && ci->policy_ncpus > 1)
			domain_key(cpus, n, ci, keys[i], sizeof(keys[i]));
		else
			snprintf(keys[i], sizeof(keys[i]), "kind %s", ci->kind);
	}
	for (unsigned i = 0; i < n; i++) {
		bool first = true;
		for (unsigned j = 0; j < i; j++)
			first &= strcmp(keys[j], keys[i]) != 0;
		if (!first)
			continue;
		hwloc_bitmap_t cs = hwloc_bitmap_alloc();
		for (unsigned j = i; j < n; j++)
			if (strcmp(keys[j], keys[i]) == 0)
				hwloc_bitmap_set(cs, (unsigned)cpus[j].cpu);
		struct gov_cluster *c = add_cluster(p, cs);
		hwloc_bitmap_free(cs);
		snprintf(c->kind, sizeof(c->kind), "%s", kind);
		for (unsigned j = i; j < n; j++) {
			bool seen = false;
			if (strcmp(keys[j], keys[i]) != 0 || cpus[j].policy < 0)
				continue;
			for (unsigned q = 0; q < c->npolicies; q++)
				seen |= c->policies[q] == (unsigned)cpus[j].policy;
			if (!seen && c->npolicies < GOV_MAX_POLICIES) {
				if (c->npolicies == 0)
					c->layout = cpus[j].layout;
				c->policies[c->npolicies++] = (unsigned)cpus[j].policy;
			}
		}
		cluster_model(c, cpus, n);
		read_cpufreq(c);
		p->cpufreq |= c->npolicies > 0;
	}
	free(keys);
	free(cpus);
	hwloc_bitmap_free(set);
	assign_capacities(p);
}

/* ------------------------------------------------------------------------ */
/* devfreq GPUs, recognised by what the device is rather than by its name:
 * devfreq also scales buses, memory controllers and caches, whose names
 * often say "gpu" too (Qualcomm's soc:qcom,gpubw is the GPU's bus bandwidth,
 * in MB/s; soc:qcom,kgsl-busmon is a bus monitor). See docs/platforms.md. */

static const char *const gpu_compatibles[] = {
	"arm,mali", "qcom,adreno", "qcom,kgsl-3d", "nvidia,gk20a", "nvidia,gm20b", "nvidia,gp10b", "nvidia,gv11b",
	"nvidia,ga10b", "nvidia,tegra", "vivante,gc", "img,powervr", "img,img-", "samsung,exynos-g3d", "apple,agx",
	"brcm,bcm2711-v3d", "brcm,2711-v3d", "mediatek,mali", "rockchip,mali",
};
static const char *const gpu_drivers[] = {
	"panfrost", "panthor", "mali", "mali_kbase", "kgsl-3d", "kgsl-3d0", "adreno", "msm_gpu", "lima", "etnaviv",
	"nouveau", "gk20a", "gp10b", "gv11b", "ga10b", "powervr", "pvrsrvkm", "v3d", "asahi",
};
/* Bus, bandwidth, memory and cache scaling. */
static const char *const not_gpu[] = {
	"bw", "busmon", "bwmon", "bus", "ddr", "dmc", "llcc", "memlat", "cpubw", "icc", "cci", "mif", "l3", "dram",
};
static const char *const gpu_names[] = { "gpu", "mali", "g3d", "kgsl-3d", "gk20a", "gv11b", "gp10b", "gm20b", "adreno" };

static bool
name_has(const char *name, const char *const *words, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcasestr(name, words[i]) != NULL)
			return true;
	return false;
}

/* Is a devfreq device a bus or a cache? Its name or compatible ends in "bw"
 * or holds one of not_gpu's words as a word of its own ("soc:qcom,cpubw",
 * "kgsl-busmon", "ddr_devfreq", "exynos-bus"). */
static bool
is_bus(const char *text)
{
	size_t len = strlen(text);

	if (len >= 2 && strcasecmp(text + len - 2, "bw") == 0)
		return true;
	for (size_t i = 0; i < sizeof(not_gpu) / sizeof(not_gpu[0]); i++) {
		size_t w = strlen(not_gpu[i]);
		for (const char *s = strcasestr(text, not_gpu[i]); s != NULL; s = strcasestr(s + 1, not_gpu[i])) {
			bool start = s == text || strchr(",:-_./ ", s[-1]) != NULL;
			bool end = s[w] == '\0' || strchr(",:-_./ 0123456789", s[w]) != NULL;
			if (start && end)
				return true;
		}
	}
	return false;
}

/* What makes a devfreq device a GPU, or false. */
/* Tens of MHz to a few GHz, in Hz: 64 bits, as unsigned long is 32 on armhf. */
static bool
gpu_hz_plausible(uint64_t hz)
{
	return hz >= 50000000u && hz <= 5000000000ull;
}

static bool
recognise_gpu(const char *name, const char *dev, const struct gov_gpu *g, char *match, size_t len)
{
	char path[GOV_PATH + 64], compat[512] = "", link[GOV_PATH] = "";
	int fd;
	ssize_t n;

	snprintf(path, sizeof(path), "%s/device/of_node/compatible", dev);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) >= 0) {
		n = read(fd, compat, sizeof(compat) - 1);
		close(fd);
		if (n > 0) {
			compat[n] = '\0';
			for (ssize_t i = 0; i + 1 < n; i++) /* NUL-separated list */
				if (compat[i] == '\0')
					compat[i] = ' ';
		}
	}
	snprintf(path, sizeof(path), "%s/device/driver", dev);
	if ((n = readlink(path, link, sizeof(link) - 1)) > 0)
		link[n] = '\0';
	const char *driver = strrchr(link, '/') ? strrchr(link, '/') + 1 : link;
	char first_compat[128];
	snprintf(first_compat, sizeof(first_compat), "%.*s", (int)strcspn(compat, " \n"), compat);

	if (is_bus(name) || (first_compat[0] && is_bus(first_compat)))
		return false;
	for (size_t i = 0; i < sizeof(gpu_compatibles) / sizeof(gpu_compatibles[0]); i++) {
		const char *hit = compat[0] ? strcasestr(compat, gpu_compatibles[i]) : NULL;
		if (hit != NULL) {
			while (hit > compat && hit[-1] != ' ')
				hit--;
			snprintf(match, len, "compatible %.*s", (int)strcspn(hit, " \n"), hit);
			return true;
		}
	}
	for (size_t i = 0; i < sizeof(gpu_drivers) / sizeof(gpu_drivers[0]); i++)
		if (driver[0] && strcmp(driver, gpu_drivers[i]) == 0) {
			snprintf(match, len, "driver %s", driver);
			return true;
		}
	/* No device facts (or unknown ones): a GPU-like name with GPU
	 * frequencies, tens of MHz to a few GHz in Hz. */
	unsigned long top = g->nfreqs ? g->freqs_hz[g->nfreqs - 1] : g->max_hz;
	if (name_has(name, gpu_names, sizeof(gpu_names) / sizeof(gpu_names[0])) && gpu_hz_plausible(top)) {
		snprintf(match, len, "name %s, %lu-%lu MHz", name, (g->nfreqs ? g->freqs_hz[0] : g->min_hz) / 1000000,
		         top / 1000000);
		return true;
	}
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
		char path[GOV_PATH + 32], text[1024];
		struct gov_gpu g;
		if (e->d_name[0] == '.')
			continue;
		memset(&g, 0, sizeof(g));
		g.opencl_device = -1;
		snprintf(g.name, sizeof(g.name), "%s", e->d_name);
		snprintf(g.path, sizeof(g.path), "/sys/class/devfreq/%s", e->d_name);
		snprintf(path, sizeof(path), "%s/available_frequencies", g.path);
		if (sysfs_read(path, text, sizeof(text)) == 0)
			g.nfreqs = parse_ulongs(text, g.freqs_hz, GOV_MAX_FREQS);
		sort_ulongs(g.freqs_hz, g.nfreqs);
		snprintf(path, sizeof(path), "%s/min_freq", g.path);
		sysfs_read_ulong(path, &g.min_hz);
		snprintf(path, sizeof(path), "%s/max_freq", g.path);
		sysfs_read_ulong(path, &g.max_hz);
		if (!recognise_gpu(e->d_name, g.path, &g, g.match, sizeof(g.match)))
			continue;
		snprintf(path, sizeof(path), "%s/available_governors", g.path);
		sysfs_read(path, g.governors, sizeof(g.governors));
		g.has_userspace = strstr(g.governors, "userspace") != NULL;
		snprintf(path, sizeof(path), "%s/governor", g.path);
		sysfs_read_token(path, g.governor, sizeof(g.governor));
		snprintf(path, sizeof(path), "%s/cur_freq", g.path);
		sysfs_read_ulong(path, &g.cur_hz);
		p->gpus = realloc(p->gpus, (p->ngpus + 1) * sizeof(*p->gpus));
		p->gpus[p->ngpus++] = g;
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

/* When hwloc cannot read the topology at all (no cpuN/topology folders and
 * HWLOC_COMPONENTS=linux,stop, as in hwloc's own tests): a flat one of the
 * kernel's online CPUs, bound for real (the CPUs are this system's). */
static int
flat_topology(struct gov_platform *p)
{
	hwloc_bitmap_t set = hwloc_bitmap_alloc();
	char text[8192], *desc = NULL;
	size_t len = 0;
	FILE *f;
	int cpu, ret = -1;

	if (sysfs_read(CPU_SYSFS "/online", text, sizeof(text)) == 0 ||
	    sysfs_read(CPU_SYSFS "/present", text, sizeof(text)) == 0)
		parse_cpu_list(text, set);
	if (hwloc_bitmap_iszero(set) || (f = open_memstream(&desc, &len)) == NULL) {
		hwloc_bitmap_free(set);
		return -1;
	}
	fprintf(f, "pu:%d(indexes=", hwloc_bitmap_weight(set));
	hwloc_bitmap_foreach_begin(cpu, set) {
		fprintf(f, "%s%d", cpu == hwloc_bitmap_first(set) ? "" : ",", cpu);
	}
	hwloc_bitmap_foreach_end();
	fputc(')', f);
	fclose(f);
	if (hwloc_topology_init(&p->topology) == 0 && hwloc_topology_set_synthetic(p->topology, desc) == 0 &&
	    hwloc_topology_set_flags(p->topology, HWLOC_TOPOLOGY_FLAG_IS_THISSYSTEM) == 0 &&
	    hwloc_topology_load(p->topology) == 0)
		ret = 0;
	free(desc);
	hwloc_bitmap_free(set);
	return ret;
}

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
		int err = errno;
		if (p->topology != NULL)
			hwloc_topology_destroy(p->topology);
		p->topology = NULL;
		if (flat_topology(p) != 0) {
			set_cause(cause, "hwloc cannot load the topology: %s", strerror(err));
			gov_platform_free(p);
			return NULL;
		}
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
