/* SPDX-License-Identifier: MIT */
/* Private to governor/: sysfs access and the saved-state helpers. */
#ifndef GEARBOX_GOVERNOR_INTERNAL_H
#define GEARBOX_GOVERNOR_INTERNAL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "governor/governor.h"

#define CPU_SYSFS "/sys/devices/system/cpu"

/* Whole content with trailing white space removed. 0 or -errno. */
int sysfs_read(const char *path, char *buf, size_t len);
/* The first white-space separated token. Values we write are read this way:
 * a real sysfs attribute holds exactly the token, and a umockdev testbed (whose
 * plain files are not truncated by writes) holds it followed by leftovers. */
int sysfs_read_token(const char *path, char *buf, size_t len);
int sysfs_read_ulong(const char *path, unsigned long *value);
/* 64 bits also where long has 32 (RAPL ranges pass 2^32 uJ). */
int sysfs_read_u64(const char *path, uint64_t *value);
/* Write value followed by a newline (as `echo` does). 0 or -errno. */
int sysfs_write(const char *path, const char *value);
int sysfs_write_ulong(const char *path, unsigned long value);
bool sysfs_exists(const char *path);
/* Parse a white-space separated list of numbers; returns how many. */
unsigned parse_ulongs(const char *text, unsigned long *out, unsigned max);
/* Ascending order (drivers list frequency tables either way). */
void sort_ulongs(unsigned long *v, unsigned n);

/* The folder of one of a cluster's cpufreq policies, in its layout:
 * CPU_SYSFS/cpufreq/policyN or CPU_SYSFS/cpuN/cpufreq. */
void gov_policy_dir(const struct gov_cluster *c, unsigned policy, char *buf, size_t len);
/* A CPU list ("0-3,8 9"), as sysfs writes them; returns how many were set. */
unsigned parse_cpu_list(const char *text, hwloc_bitmap_t set);

/* "path: Message (ENAME)" for a negative errno; returns -1. */
int gov_path_error(char **cause, const char *path, int err);

/* Saved state for one attribute (governor/control.c): record that `path`
 * held `value` before a change, unless recorded already; `original` receives
 * the recorded value (an earlier record wins: it was taken before any change).
 * Returns 1 when it made the record, 0 when there was one, -1 with *cause.
 * forget drops the record (and the state file when it was the last entry):
 * 0, or -1 with *cause. */
int gov_state_save_attribute(struct gov_platform *p, const char *path, const char *value, char *original, size_t len,
                             char **cause);
int gov_state_forget_attribute(struct gov_platform *p, const char *path, char **cause);

int gov_discover_energy(struct gov_platform *p);
void gov_discover_models(struct gov_platform *p);
void gov_discover_opencl(struct gov_platform *p);

#endif
