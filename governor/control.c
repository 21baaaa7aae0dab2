/* SPDX-License-Identifier: MIT */
/* Applying frequencies, and leaving the machine as it was found.
 *
 * Before the first change to a cpufreq policy or devfreq device, its governor
 * and limits are saved to STATE_DIR/state.json (written atomically). gov_restore
 * puts them back and removes the file. A process that dies without restoring
 * leaves the file behind with its pid; the next start finds the owner gone and
 * restores (gov_recover_stale). A change that fails half-way is rolled back, so
 * an error never leaves partial state. Single attributes (the per-CPU PM QoS
 * resume latency of governor/latency.c) are saved here too, as "attribute"
 * entries with the path and the value to write back. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/cause.h"
#include "governor/internal.h"

#define STATE_FILE "state.json"

int
gov_path_error(char **cause, const char *path, int err)
{
	return set_cause(cause, "%s: %s (%s)", path, strerror(-err), strerrorname_np(-err) ? strerrorname_np(-err) : "?");
}

static void
state_path(const struct gov_platform *p, char *buf, size_t len)
{
	snprintf(buf, len, "%s/" STATE_FILE, p->state_dir);
}

bool
gov_has_saved_state(const struct gov_platform *p)
{
	char path[GOV_PATH];

	state_path(p, path, sizeof(path));
	return access(path, F_OK) == 0;
}

static struct json_object *
load_state(const struct gov_platform *p, char **cause)
{
	char path[GOV_PATH];
	struct json_object *st;

	state_path(p, path, sizeof(path));
	if (access(path, F_OK) != 0) {
		st = json_object_new_object();
		json_object_object_add(st, "version", json_object_new_int(1));
		json_object_object_add(st, "owner_pid", json_object_new_int(p->owner_pid));
		json_object_object_add(st, "entries", json_object_new_array());
		return st;
	}
	st = json_object_from_file(path);
	if (st == NULL || !json_object_is_type(st, json_type_object) ||
	    !json_object_is_type(json_object_object_get(st, "entries"), json_type_array)) {
		json_object_put(st);
		set_cause(cause, "%s: saved state is unreadable (%s); fix or remove it by hand", path,
		          json_util_get_last_err() ? json_util_get_last_err() : "not a gearbox state file");
		return NULL;
	}
	return st;
}

static int
mkdir_p(const char *dir)
{
	char tmp[GOV_PATH];

	snprintf(tmp, sizeof(tmp), "%s", dir);
	for (char *s = tmp + 1; *s; s++) {
		if (*s == '/') {
			*s = '\0';
			if (mkdir(tmp, 0755) != 0 && errno != EEXIST)
				return -errno;
			*s = '/';
		}
	}
	return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -errno : 0;
}

static int
write_state(const struct gov_platform *p, struct json_object *st, char **cause)
{
	char path[GOV_PATH], tmp[GOV_PATH + 8];
	const char *text = json_object_to_json_string_ext(st, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
	int fd, err;

	if ((err = mkdir_p(p->state_dir)) != 0)
		return gov_path_error(cause, p->state_dir, err);
	state_path(p, path, sizeof(path));
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) < 0)
		return gov_path_error(cause, tmp, -errno);
	if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) != 0) {
		err = -errno;
		close(fd);
		unlink(tmp);
		return gov_path_error(cause, tmp, err);
	}
	close(fd);
	if (rename(tmp, path) != 0) {
		err = -errno;
		unlink(tmp);
		return gov_path_error(cause, path, err);
	}
	return 0;
}

/* Save dir's governor and limits unless already saved. */
static int
ensure_saved(struct gov_platform *p, const char *kind, const char *dir, char **cause)
{
	struct json_object *st = load_state(p, cause), *entries, *e;
	char path[GOV_PATH + 32], gov[GOV_NAME];
	unsigned long lo, hi;
	bool cpufreq = strcmp(kind, "cpufreq") == 0;
	int ret;

	if (st == NULL)
		return -1;
	entries = json_object_object_get(st, "entries");
	for (size_t i = 0; i < json_object_array_length(entries); i++) {
		struct json_object *d = json_object_object_get(json_object_array_get_idx(entries, i), "dir");
		if (d != NULL && strcmp(json_object_get_string(d), dir) == 0) {
			json_object_put(st);
			return 0;
		}
	}
	snprintf(path, sizeof(path), "%s/%s", dir, cpufreq ? "scaling_governor" : "governor");
	if ((ret = sysfs_read_token(path, gov, sizeof(gov))) != 0) {
		json_object_put(st);
		return gov_path_error(cause, path, ret);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, cpufreq ? "scaling_min_freq" : "min_freq");
	if ((ret = sysfs_read_ulong(path, &lo)) != 0) {
		json_object_put(st);
		return gov_path_error(cause, path, ret);
	}
	snprintf(path, sizeof(path), "%s/%s", dir, cpufreq ? "scaling_max_freq" : "max_freq");
	if ((ret = sysfs_read_ulong(path, &hi)) != 0) {
		json_object_put(st);
		return gov_path_error(cause, path, ret);
	}
	e = json_object_new_object();
	json_object_object_add(e, "kind", json_object_new_string(kind));
	json_object_object_add(e, "dir", json_object_new_string(dir));
	json_object_object_add(e, "governor", json_object_new_string(gov));
	json_object_object_add(e, "min", json_object_new_int64((int64_t)lo));
	json_object_object_add(e, "max", json_object_new_int64((int64_t)hi));
	json_object_array_add(entries, e);
	ret = write_state(p, st, cause);
	if (ret != 0)
		prefix_cause(cause, "cannot save the state to restore later, so nothing was changed");
	json_object_put(st);
	return ret;
}

/* Set [lo, hi] in an order the kernel accepts at every step (min <= max),
 * undoing the first write if the second fails. */
static int
write_limits(const char *min_path, const char *max_path, unsigned long lo, unsigned long hi, char **cause)
{
	unsigned long old_min = 0, old_max = 0;
	bool max_first;
	int ret;

	sysfs_read_ulong(min_path, &old_min);
	sysfs_read_ulong(max_path, &old_max);
	max_first = hi >= old_min;
	if ((ret = sysfs_write_ulong(max_first ? max_path : min_path, max_first ? hi : lo)) != 0)
		return gov_path_error(cause, max_first ? max_path : min_path, ret);
	if ((ret = sysfs_write_ulong(max_first ? min_path : max_path, max_first ? lo : hi)) != 0) {
		gov_path_error(cause, max_first ? min_path : max_path, ret);
		sysfs_write_ulong(max_first ? max_path : min_path, max_first ? old_max : old_min);
		return -1;
	}
	return 0;
}

/* One DVFS domain (cpufreq policy or devfreq device) to `freq`: with the
 * userspace governor through its set-speed file, else by clamping. */
static int
apply_domain(const char *dir, bool cpufreq, bool userspace, unsigned long freq, char **cause)
{
	char gov_path[GOV_PATH + 32], speed_path[GOV_PATH + 32], min_path[GOV_PATH + 32], max_path[GOV_PATH + 32];
	char old_gov[GOV_NAME] = "";
	int ret;

	snprintf(gov_path, sizeof(gov_path), "%s/%s", dir, cpufreq ? "scaling_governor" : "governor");
	snprintf(speed_path, sizeof(speed_path), "%s/%s", dir, cpufreq ? "scaling_setspeed" : "userspace/set_freq");
	snprintf(min_path, sizeof(min_path), "%s/%s", dir, cpufreq ? "scaling_min_freq" : "min_freq");
	snprintf(max_path, sizeof(max_path), "%s/%s", dir, cpufreq ? "scaling_max_freq" : "max_freq");
	if (!userspace)
		return write_limits(min_path, max_path, freq, freq, cause);
	sysfs_read_token(gov_path, old_gov, sizeof(old_gov));
	if (strcmp(old_gov, "userspace") != 0 && (ret = sysfs_write(gov_path, "userspace")) != 0)
		return gov_path_error(cause, gov_path, ret);
	if ((ret = sysfs_write_ulong(speed_path, freq)) != 0) {
		gov_path_error(cause, speed_path, ret);
		if (old_gov[0] != '\0' && strcmp(old_gov, "userspace") != 0)
			sysfs_write(gov_path, old_gov);
		return -1;
	}
	return 0;
}

static int restore_entry(struct json_object *e, char **cause);

/* A change that failed and was rolled back leaves nothing to restore: drop the
 * state file if this call created it. */
static void
forget_new_state(const struct gov_platform *p, bool had_state)
{
	char path[GOV_PATH];

	if (had_state)
		return;
	state_path(p, path, sizeof(path));
	unlink(path);
}

int
gov_set_cluster_freq(struct gov_platform *p, struct gov_cluster *c, unsigned long khz, char **cause)
{
	char dir[GOV_PATH];
	bool in_table = c->nfreqs == 0;

	if (c->npolicies == 0)
		return set_cause(cause, "%s: no cpufreq on CPUs of this cluster (DVFS unavailable)", c->name);
	for (unsigned i = 0; i < c->nfreqs; i++)
		in_table |= c->freqs_khz[i] == khz;
	if (c->nfreqs == 0 && (c->hw_min_khz == 0 || c->hw_max_khz == 0))
		return set_cause(cause, "%s: its frequency range is unknown (no cpuinfo_min_freq/cpuinfo_max_freq)", c->name);
	if (!in_table || (c->nfreqs == 0 && (khz < c->hw_min_khz || khz > c->hw_max_khz))) {
		char list[512] = "";
		for (unsigned i = 0; i < c->nfreqs && strlen(list) < sizeof(list) - 16; i++)
			snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%lu", i ? " " : "", c->freqs_khz[i]);
		if (c->nfreqs == 0)
			return set_cause(cause, "%s: %lu kHz is outside %lu-%lu kHz", c->name, khz, c->hw_min_khz, c->hw_max_khz);
		return set_cause(cause, "%s: %lu kHz is not in its frequency table (%s)", c->name, khz, list);
	}
	for (unsigned i = 0; i < c->nboost; i++)
		if (c->boost_khz[i] == khz && c->boost == 0)
			return set_cause(cause, "%s: %lu kHz is a boost frequency and boost is off (" CPU_SYSFS "/cpufreq/boost)",
			                 c->name, khz);
	bool had_state = gov_has_saved_state(p);
	for (unsigned i = 0; i < c->npolicies; i++) {
		gov_policy_dir(c, c->policies[i], dir, sizeof(dir));
		if (ensure_saved(p, "cpufreq", dir, cause) != 0)
			return -1;
	}
	for (unsigned i = 0; i < c->npolicies; i++) {
		gov_policy_dir(c, c->policies[i], dir, sizeof(dir));
		if (apply_domain(dir, true, c->has_userspace && c->has_setspeed, khz, cause) != 0) {
			/* Put the policies changed so far back as they were saved. */
			struct json_object *st = load_state(p, NULL), *entries = st ? json_object_object_get(st, "entries") : NULL;
			for (unsigned j = 0; j < i && entries != NULL; j++) {
				char done[GOV_PATH];
				gov_policy_dir(c, c->policies[j], done, sizeof(done));
				for (size_t k = 0; k < json_object_array_length(entries); k++) {
					struct json_object *e = json_object_array_get_idx(entries, k);
					const char *d = json_object_get_string(json_object_object_get(e, "dir"));
					if (d != NULL && strcmp(d, done) == 0)
						restore_entry(e, NULL);
				}
			}
			json_object_put(st);
			forget_new_state(p, had_state);
			prefix_cause(cause, "%s: cannot set %lu kHz", c->name, khz);
			return -1;
		}
	}
	c->cur_khz = khz;
	if (c->has_userspace && c->has_setspeed)
		snprintf(c->governor, sizeof(c->governor), "userspace");
	else
		c->min_khz = c->max_khz = khz;
	return 0;
}

int
gov_set_gpu_freq(struct gov_platform *p, struct gov_gpu *g, unsigned long hz, char **cause)
{
	bool in_table = false;

	for (unsigned i = 0; i < g->nfreqs; i++)
		in_table |= g->freqs_hz[i] == hz;
	if (!in_table)
		return set_cause(cause, "%s: %lu Hz is not in its frequency table", g->name, hz);
	bool had_state = gov_has_saved_state(p);
	if (ensure_saved(p, "devfreq", g->path, cause) != 0)
		return -1;
	if (apply_domain(g->path, false, g->has_userspace, hz, cause) != 0) {
		forget_new_state(p, had_state);
		prefix_cause(cause, "%s: cannot set %lu Hz", g->name, hz);
		return -1;
	}
	g->cur_hz = hz;
	return 0;
}

static int
restore_attribute(struct json_object *e, char **cause)
{
	const char *path = json_object_get_string(json_object_object_get(e, "path"));
	const char *value = json_object_get_string(json_object_object_get(e, "value"));
	int ret;

	if (path == NULL || value == NULL)
		return set_cause(cause, "saved state attribute lacks path or value");
	if ((ret = sysfs_write(path, value)) != 0)
		return gov_path_error(cause, path, ret);
	return 0;
}

static int
restore_entry(struct json_object *e, char **cause)
{
	const char *kind = json_object_get_string(json_object_object_get(e, "kind"));
	const char *dir = json_object_get_string(json_object_object_get(e, "dir"));
	const char *gov = json_object_get_string(json_object_object_get(e, "governor"));
	unsigned long lo = (unsigned long)json_object_get_int64(json_object_object_get(e, "min"));
	unsigned long hi = (unsigned long)json_object_get_int64(json_object_object_get(e, "max"));
	bool cpufreq = kind != NULL && strcmp(kind, "cpufreq") == 0;
	char gov_path[GOV_PATH + 32], min_path[GOV_PATH + 32], max_path[GOV_PATH + 32];
	int ret;

	if (kind != NULL && strcmp(kind, "attribute") == 0)
		return restore_attribute(e, cause);
	if (dir == NULL || gov == NULL || kind == NULL)
		return set_cause(cause, "saved state entry lacks kind, dir or governor");
	snprintf(gov_path, sizeof(gov_path), "%s/%s", dir, cpufreq ? "scaling_governor" : "governor");
	snprintf(min_path, sizeof(min_path), "%s/%s", dir, cpufreq ? "scaling_min_freq" : "min_freq");
	snprintf(max_path, sizeof(max_path), "%s/%s", dir, cpufreq ? "scaling_max_freq" : "max_freq");
	if ((ret = sysfs_write(gov_path, gov)) != 0)
		return gov_path_error(cause, gov_path, ret);
	return write_limits(min_path, max_path, lo, hi, cause);
}

int
gov_restore(struct gov_platform *p, char **cause)
{
	char path[GOV_PATH];
	struct json_object *st, *entries;
	int failed = 0;

	if (!gov_has_saved_state(p))
		return 0;
	if ((st = load_state(p, cause)) == NULL)
		return -1;
	entries = json_object_object_get(st, "entries");
	for (size_t i = 0; i < json_object_array_length(entries); i++) {
		char *why = NULL;
		if (restore_entry(json_object_array_get_idx(entries, i), &why) != 0) {
			if (failed++ == 0 && cause != NULL)
				*cause = why;
			else
				free(why);
		}
	}
	json_object_put(st);
	if (failed) {
		prefix_cause(cause, "%d saved setting%s could not be put back (state kept in %s/" STATE_FILE ")", failed,
		             failed == 1 ? "" : "s", p->state_dir);
		return -1;
	}
	state_path(p, path, sizeof(path));
	if (unlink(path) != 0 && errno != ENOENT)
		return gov_path_error(cause, path, -errno);
	return 0;
}

/* The index of the "attribute" entry for path, or -1. */
static int
find_attribute(struct json_object *entries, const char *path)
{
	for (size_t i = 0; i < json_object_array_length(entries); i++) {
		struct json_object *e = json_object_array_get_idx(entries, i);
		const char *kind = json_object_get_string(json_object_object_get(e, "kind"));
		const char *p = json_object_get_string(json_object_object_get(e, "path"));
		if (kind != NULL && strcmp(kind, "attribute") == 0 && p != NULL && strcmp(p, path) == 0)
			return (int)i;
	}
	return -1;
}

int
gov_state_save_attribute(struct gov_platform *p, const char *path, const char *value, char *original, size_t len,
                         char **cause)
{
	struct json_object *st = load_state(p, cause), *entries, *e;
	int i, ret = 0;

	if (st == NULL)
		return -1;
	entries = json_object_object_get(st, "entries");
	if ((i = find_attribute(entries, path)) >= 0) {
		/* Left by a crash not yet recovered: that value is the original. */
		e = json_object_array_get_idx(entries, (size_t)i);
		value = json_object_get_string(json_object_object_get(e, "value"));
		snprintf(original, len, "%s", value != NULL ? value : "");
		json_object_put(st);
		return 0;
	}
	e = json_object_new_object();
	json_object_object_add(e, "kind", json_object_new_string("attribute"));
	json_object_object_add(e, "path", json_object_new_string(path));
	json_object_object_add(e, "value", json_object_new_string(value));
	json_object_array_add(entries, e);
	if ((ret = write_state(p, st, cause)) != 0)
		prefix_cause(cause, "cannot save the state to restore later, so nothing was changed");
	else
		snprintf(original, len, "%s", value);
	json_object_put(st);
	return ret == 0 ? 1 : -1;
}

int
gov_state_forget_attribute(struct gov_platform *p, const char *path, char **cause)
{
	struct json_object *st, *entries;
	char file[GOV_PATH];
	int i, ret = 0;

	if (!gov_has_saved_state(p))
		return 0;
	if ((st = load_state(p, cause)) == NULL)
		return -1;
	entries = json_object_object_get(st, "entries");
	if ((i = find_attribute(entries, path)) >= 0) {
		json_object_array_del_idx(entries, (size_t)i, 1);
		state_path(p, file, sizeof(file));
		if (json_object_array_length(entries) > 0)
			ret = write_state(p, st, cause);
		else if (unlink(file) != 0 && errno != ENOENT)
			ret = gov_path_error(cause, file, -errno);
	}
	json_object_put(st);
	return ret;
}

void
gov_set_state_owner(struct gov_platform *p, int pid)
{
	p->owner_pid = pid;
}

int
gov_recover_stale(struct gov_platform *p, bool *recovered, char **cause)
{
	struct json_object *st;
	int owner;

	*recovered = false;
	if (!gov_has_saved_state(p))
		return 0;
	if ((st = load_state(p, cause)) == NULL)
		return -1;
	owner = json_object_get_int(json_object_object_get(st, "owner_pid"));
	json_object_put(st);
	/* 0: an operator's hold (gearbox platform set-freq), kept until restore.
	 * A live owner still holds its changes. */
	if (owner == 0 || (owner != getpid() && (kill(owner, 0) == 0 || errno != ESRCH)))
		return 0;
	if (gov_restore(p, cause) != 0)
		return -1;
	*recovered = true;
	return 0;
}
