/* SPDX-License-Identifier: MIT */
#include "config.h"

#include <errno.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "governor/internal.h"

int
sysfs_read(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	if (n < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	close(fd);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == ' ' || buf[n - 1] == '\t' || buf[n - 1] == '\0'))
		buf[--n] = '\0';
	return 0;
}

int
sysfs_read_token(const char *path, char *buf, size_t len)
{
	char raw[512];
	size_t i = 0, j = 0;
	int ret = sysfs_read(path, raw, sizeof(raw));

	if (ret != 0)
		return ret;
	while (raw[i] == ' ' || raw[i] == '\t' || raw[i] == '\n')
		i++;
	while (raw[i] != '\0' && raw[i] != ' ' && raw[i] != '\t' && raw[i] != '\n' && j + 1 < len)
		buf[j++] = raw[i++];
	buf[j] = '\0';
	return j > 0 ? 0 : -ENODATA;
}

int
sysfs_read_ulong(const char *path, unsigned long *value)
{
	char tok[64], *end;
	int ret = sysfs_read_token(path, tok, sizeof(tok));

	if (ret != 0)
		return ret;
	errno = 0;
	*value = strtoul(tok, &end, 10);
	return errno != 0 || *end != '\0' || tok[0] == '-' ? -EINVAL : 0;
}

int
sysfs_read_u64(const char *path, uint64_t *value)
{
	char tok[64], *end;
	int ret = sysfs_read_token(path, tok, sizeof(tok));

	if (ret != 0)
		return ret;
	errno = 0;
	*value = strtoull(tok, &end, 10);
	return errno != 0 || *end != '\0' || tok[0] == '-' ? -EINVAL : 0;
}

int
sysfs_write(const char *path, const char *value)
{
	char line[256];
	int fd, n = snprintf(line, sizeof(line), "%s\n", value);
	ssize_t w;

	if (n < 0 || (size_t)n >= sizeof(line))
		return -EINVAL;
	if ((fd = open(path, O_WRONLY | O_CLOEXEC)) < 0)
		return -errno;
	w = write(fd, line, (size_t)n);
	if (w != n) {
		int err = w < 0 ? -errno : -EIO;
		close(fd);
		return err;
	}
	/* sysfs reports a store's error at close for some drivers. */
	return close(fd) == 0 ? 0 : -errno;
}

int
sysfs_write_ulong(const char *path, unsigned long value)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%lu", value);
	return sysfs_write(path, buf);
}

bool
sysfs_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

unsigned
parse_ulongs(const char *text, unsigned long *out, unsigned max)
{
	unsigned n = 0;
	const char *p = text;
	char *end;

	while (*p != '\0' && n < max) {
		unsigned long v;
		while (*p == ' ' || *p == '\t' || *p == '\n')
			p++;
		if (*p == '\0')
			break;
		v = strtoul(p, &end, 10);
		if (end == p)
			break;
		out[n++] = v;
		p = end;
	}
	return n;
}

static int
compare_ulong(const void *a, const void *b)
{
	unsigned long x = *(const unsigned long *)a, y = *(const unsigned long *)b;

	return (x > y) - (x < y);
}

void
sort_ulongs(unsigned long *v, unsigned n)
{
	qsort(v, n, sizeof(*v), compare_ulong);
}

unsigned
parse_cpu_list(const char *text, hwloc_bitmap_t set)
{
	const char *p = text;
	unsigned n = 0;

	while (*p != '\0') {
		char *end;
		unsigned long a, b;
		while (*p == ' ' || *p == ',' || *p == '\t' || *p == '\n')
			p++;
		if (*p < '0' || *p > '9')
			break;
		a = b = strtoul(p, &end, 10);
		p = end;
		if (*p == '-') {
			b = strtoul(p + 1, &end, 10);
			if (end == p + 1)
				break;
			p = end;
		}
		for (unsigned long c = a; c <= b && c < 65536; c++, n++)
			hwloc_bitmap_set(set, (unsigned)c);
	}
	return n;
}

void
gov_policy_dir(const struct gov_cluster *c, unsigned policy, char *buf, size_t len)
{
	if (c->layout == GOV_CPUFREQ_PER_CPU)
		snprintf(buf, len, CPU_SYSFS "/cpu%u/cpufreq", policy);
	else
		snprintf(buf, len, CPU_SYSFS "/cpufreq/policy%u", policy);
}
