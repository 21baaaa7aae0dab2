/* SPDX-License-Identifier: MIT */
/* OpenCL devices through the ICD loader (any vendor's driver: PoCL, Mali,
 * NVIDIA...). Listing only; running kernels belongs to dnn/.
 *
 * A vendor driver may crash or hang while it enumerates (a Mali blob on the
 * wrong kernel, PoCL aborting on a sysfs tree it cannot read), so the
 * listing runs in a short-lived child process: fork(), the child opens the
 * ICD loader (common/cl_loader.c), lists the devices into a pipe and exits;
 * the parent waits at most GEARBOX_OPENCL_TIMEOUT seconds (default 10), kills
 * a child still running, and turns a signal, a timeout or an early exit into
 * opencl_error ("the driver aborted while probing (signal 6: Aborted)"). The
 * parent never loads the ICD loader or a driver: that happens in the process
 * that runs an OpenCL placement, when dnn_cl_open is first called. Discovery
 * runs before the caller starts threads, so fork() without exec is safe. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/cause.h"
#include "common/cl_loader.h"
#include "governor/internal.h"

#ifdef HAVE_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#define MAX_DEVICES 64
#define PROBE_MAGIC 0x67626f63u /* "gboc" */

/* What the child sends: this header, then ndev devices, then `error` bytes
 * of text (no OpenCL platform: why). */
struct probe_header {
	uint32_t magic;
	uint32_t ndev;
	uint32_t error_len;
};

static void
write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		p += n;
		len -= (size_t)n;
	}
}

/* In the child: list every device of every platform into fd. */
static void
probe_child(int fd)
{
	struct gov_opencl_device devs[MAX_DEVICES];
	struct probe_header h = { PROBE_MAGIC, 0, 0 };
	cl_platform_id platforms[16];
	cl_uint nplat = 0;
	char error[512] = "";
	char *why = NULL;
	cl_int err;

	if (cl_loader_open(&why) != 0) {
		snprintf(error, sizeof(error), "%s", why);
		free(why);
	} else if ((err = clGetPlatformIDs(16, platforms, &nplat)) != CL_SUCCESS || nplat == 0) {
		snprintf(error, sizeof(error), "no OpenCL platform (clGetPlatformIDs: %d); install an ICD such as "
		         "pocl-opencl-icd or the vendor's driver", (int)err);
	}
	for (cl_uint i = 0; error[0] == '\0' && i < nplat && i < 16; i++) {
		cl_device_id ids[16];
		cl_uint ndev = 0;
		char pname[128] = "";
		clGetPlatformInfo(platforms[i], CL_PLATFORM_NAME, sizeof(pname), pname, NULL);
		if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_ALL, 16, ids, &ndev) != CL_SUCCESS)
			continue;
		for (cl_uint j = 0; j < ndev && j < 16 && h.ndev < MAX_DEVICES; j++) {
			struct gov_opencl_device *d = &devs[h.ndev++];
			cl_device_type type = 0;
			cl_uint cu = 0;
			cl_ulong mem = 0;
			memset(d, 0, sizeof(*d));
			snprintf(d->platform, sizeof(d->platform), "%s", pname);
			clGetDeviceInfo(ids[j], CL_DEVICE_NAME, sizeof(d->name), d->name, NULL);
			d->name[sizeof(d->name) - 1] = '\0';
			clGetDeviceInfo(ids[j], CL_DEVICE_TYPE, sizeof(type), &type, NULL);
			clGetDeviceInfo(ids[j], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(cu), &cu, NULL);
			clGetDeviceInfo(ids[j], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(mem), &mem, NULL);
			snprintf(d->type, sizeof(d->type), "%s", type & CL_DEVICE_TYPE_GPU ? "gpu" : type & CL_DEVICE_TYPE_CPU ? "cpu"
			         : type & CL_DEVICE_TYPE_ACCELERATOR ? "accelerator" : "other");
			d->platform_index = i;
			d->device_index = j;
			d->compute_units = cu;
			d->global_mem_bytes = mem;
		}
	}
	h.error_len = (uint32_t)strlen(error);
	write_all(fd, &h, sizeof(h));
	write_all(fd, devs, h.ndev * sizeof(devs[0]));
	write_all(fd, error, h.error_len);
}

static unsigned
probe_timeout_ms(void)
{
	const char *env = getenv("GEARBOX_OPENCL_TIMEOUT");
	char *end;
	double s;

	if (env == NULL || *env == '\0')
		return 10000;
	s = strtod(env, &end);
	return *end == '\0' && s > 0 && s <= 3600 ? (unsigned)(s * 1000) : 10000;
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The last non-empty line the driver printed, for the message. */
static void
last_line(const char *text, char *out, size_t len)
{
	const char *end = text + strlen(text), *start;

	while (end > text && (end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\r'))
		end--;
	start = end;
	while (start > text && start[-1] != '\n')
		start--;
	snprintf(out, len, "%.*s", (int)(end - start), start);
}

void
gov_discover_opencl(struct gov_platform *p)
{
	int data[2], err[2];
	unsigned timeout = probe_timeout_ms();
	char *buf = NULL, stderr_text[2048] = "", line[256];
	size_t len = 0, cap = 0, elen = 0;
	bool timed_out = false;
	int status = 0;
	pid_t pid;

	if (pipe2(data, O_CLOEXEC) != 0 || pipe2(err, O_CLOEXEC) != 0) {
		if (asprintf(&p->opencl_error, "cannot probe the OpenCL drivers: pipe: %s", strerror(errno)) < 0)
			p->opencl_error = NULL;
		return;
	}
	fflush(NULL);
	if ((pid = fork()) < 0) {
		if (asprintf(&p->opencl_error, "cannot probe the OpenCL drivers: fork: %s", strerror(errno)) < 0)
			p->opencl_error = NULL;
		close(data[0]), close(data[1]), close(err[0]), close(err[1]);
		return;
	}
	if (pid == 0) {
		signal(SIGPIPE, SIG_IGN);
		close(data[0]);
		close(err[0]);
		dup2(err[1], STDERR_FILENO);
		dup2(err[1], STDOUT_FILENO);
		probe_child(data[1]);
		_exit(0);
	}
	close(data[1]);
	close(err[1]);
	int64_t deadline = now_ms() + timeout;
	struct pollfd fds[2] = { { data[0], POLLIN, 0 }, { err[0], POLLIN, 0 } };
	while (fds[0].fd >= 0 || fds[1].fd >= 0) {
		int64_t left = deadline - now_ms();
		if (left <= 0) {
			timed_out = true;
			break;
		}
		if (poll(fds, 2, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		if (fds[0].revents) {
			if (len == cap && (buf = realloc(buf, cap = cap ? cap * 2 : 4096)) == NULL)
				break;
			ssize_t n = read(data[0], buf + len, cap - len);
			if (n > 0)
				len += (size_t)n;
			else if (n == 0 || errno != EINTR) {
				close(data[0]);
				fds[0].fd = -1;
			}
		}
		if (fds[1].revents) {
			char junk[512];
			ssize_t n = read(err[0], junk, sizeof(junk));
			if (n > 0) {
				/* keep the end: the last line is what we report */
				if (elen + (size_t)n >= sizeof(stderr_text)) {
					size_t drop = elen + (size_t)n - (sizeof(stderr_text) - 1);
					drop = drop > elen ? elen : drop;
					memmove(stderr_text, stderr_text + drop, elen - drop);
					elen -= drop;
				}
				size_t take = (size_t)n < sizeof(stderr_text) - 1 - elen ? (size_t)n : sizeof(stderr_text) - 1 - elen;
				memcpy(stderr_text + elen, junk, take);
				elen += take;
				stderr_text[elen] = '\0';
			} else if (n == 0 || errno != EINTR) {
				close(err[0]);
				fds[1].fd = -1;
			}
		}
	}
	if (fds[0].fd >= 0)
		close(fds[0].fd);
	if (fds[1].fd >= 0)
		close(fds[1].fd);
	if (timed_out)
		kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	for (char *c = stderr_text; *c; c++)
		if ((unsigned char)*c < ' ' && *c != '\n')
			*c = ' ';
	last_line(stderr_text, line, sizeof(line));

	struct probe_header h;
	int r;
	if (timed_out) {
		r = asprintf(&p->opencl_error, "the OpenCL driver did not finish probing within %.1f s (killed)%s%s",
		             timeout / 1000.0, line[0] ? "; it printed: " : "", line);
	} else if (WIFSIGNALED(status)) {
		int sig = WTERMSIG(status);
		r = asprintf(&p->opencl_error, "the OpenCL driver %s while probing (signal %d: %s)%s%s",
		             sig == SIGABRT ? "aborted" : "crashed", sig, strsignal(sig), line[0] ? "; it printed: " : "",
		             line);
	} else if (WIFEXITED(status) && WEXITSTATUS(status) != 0) {
		r = asprintf(&p->opencl_error, "the OpenCL driver exited while probing (status %d)%s%s",
		             WEXITSTATUS(status), line[0] ? "; it printed: " : "", line);
	} else if (len < sizeof(h) || (memcpy(&h, buf, sizeof(h)), h.magic != PROBE_MAGIC) || h.ndev > MAX_DEVICES ||
	           len != sizeof(h) + h.ndev * sizeof(struct gov_opencl_device) + h.error_len) {
		r = asprintf(&p->opencl_error, "the OpenCL probe ended without a complete answer%s%s",
		             line[0] ? "; the driver printed: " : "", line);
	} else {
		r = 0;
		if (h.ndev > 0 && (p->opencl = calloc(h.ndev, sizeof(*p->opencl))) != NULL) {
			memcpy(p->opencl, buf + sizeof(h), h.ndev * sizeof(*p->opencl));
			p->nopencl = h.ndev;
		}
		if (h.error_len > 0)
			r = asprintf(&p->opencl_error, "%.*s", (int)h.error_len,
			             buf + sizeof(h) + h.ndev * sizeof(struct gov_opencl_device));
	}
	if (r < 0)
		p->opencl_error = NULL;
	free(buf);
}
#else
void
gov_discover_opencl(struct gov_platform *p)
{
	p->opencl_error = strdup("built without OpenCL (configure found no OpenCL headers)");
}
#endif
