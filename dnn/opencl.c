/* SPDX-License-Identifier: MIT */
/* OpenCL execution: a model's weights uploaded once per device, the kernels
 * of opencl_kernels.cl built once per device (program binaries cached on
 * disk where the driver gives them), and one plan walk per inference that
 * launches a kernel per block of the active-group plan. OpenCL 1.2 through
 * the ICD loader, so that Mali, NVIDIA and PoCL all work. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/cause.h"
#include "common/clock.h"
#include "common/hash.h"
#include "dnn/internal.h"

#ifdef HAVE_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

/* The kernel source, generated from opencl_kernels.cl at build time. */
static const char kernel_source[] =
#include "dnn/opencl_kernels.h"
	;

/* Work-group size of the dense-row reduction (a power of two). */
#define LINEAR_LOCAL 64

struct dnn_cl {
	cl_platform_id platform;
	cl_device_id device;
	cl_context context;
	cl_program program;
	struct dnn_cl_info info;
	unsigned long fault_after;   /* GEARBOX_OPENCL_FAULT_AFTER: fail runs after this many, 0 = never */
	unsigned long runs;
};

/* One weighted layer on the device. */
struct cl_layer {
	cl_mem weight, bias;
};

struct dnn_cl_exec {
	struct dnn_cl *cl;
	const struct dnn_model *model;
	cl_command_queue queue;
	cl_kernel conv, linear, pool, relu, softmax;
	cl_mem input, act[2];
	struct cl_layer *layers;
	cl_event *events;            /* one per launch, when timing */
	size_t max_events;
};

const char *
dnn_cl_error_name(int err)
{
	switch (err) {
	case CL_SUCCESS: return "CL_SUCCESS";
	case CL_DEVICE_NOT_FOUND: return "CL_DEVICE_NOT_FOUND";
	case CL_DEVICE_NOT_AVAILABLE: return "CL_DEVICE_NOT_AVAILABLE";
	case CL_COMPILER_NOT_AVAILABLE: return "CL_COMPILER_NOT_AVAILABLE";
	case CL_MEM_OBJECT_ALLOCATION_FAILURE: return "CL_MEM_OBJECT_ALLOCATION_FAILURE";
	case CL_OUT_OF_RESOURCES: return "CL_OUT_OF_RESOURCES";
	case CL_OUT_OF_HOST_MEMORY: return "CL_OUT_OF_HOST_MEMORY";
	case CL_PROFILING_INFO_NOT_AVAILABLE: return "CL_PROFILING_INFO_NOT_AVAILABLE";
	case CL_BUILD_PROGRAM_FAILURE: return "CL_BUILD_PROGRAM_FAILURE";
	case CL_INVALID_VALUE: return "CL_INVALID_VALUE";
	case CL_INVALID_DEVICE: return "CL_INVALID_DEVICE";
	case CL_INVALID_BINARY: return "CL_INVALID_BINARY";
	case CL_INVALID_BUILD_OPTIONS: return "CL_INVALID_BUILD_OPTIONS";
	case CL_INVALID_PROGRAM: return "CL_INVALID_PROGRAM";
	case CL_INVALID_PROGRAM_EXECUTABLE: return "CL_INVALID_PROGRAM_EXECUTABLE";
	case CL_INVALID_KERNEL_NAME: return "CL_INVALID_KERNEL_NAME";
	case CL_INVALID_KERNEL_ARGS: return "CL_INVALID_KERNEL_ARGS";
	case CL_INVALID_WORK_GROUP_SIZE: return "CL_INVALID_WORK_GROUP_SIZE";
	case CL_INVALID_WORK_ITEM_SIZE: return "CL_INVALID_WORK_ITEM_SIZE";
	case CL_INVALID_BUFFER_SIZE: return "CL_INVALID_BUFFER_SIZE";
	case CL_INVALID_COMMAND_QUEUE: return "CL_INVALID_COMMAND_QUEUE";
	case CL_INVALID_CONTEXT: return "CL_INVALID_CONTEXT";
	case CL_INVALID_MEM_OBJECT: return "CL_INVALID_MEM_OBJECT";
	case CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST: return "CL_EXEC_STATUS_ERROR_FOR_EVENTS_IN_WAIT_LIST";
	case -1001: return "CL_PLATFORM_NOT_FOUND_KHR (no OpenCL driver installed)";
	default: return "unknown OpenCL error";
	}
}

static int
cl_fail(char **cause, const char *what, cl_int err)
{
	return set_cause(cause, "%s: %s (%d)", what, dnn_cl_error_name(err), (int)err);
}

/* The index-th device over every platform, in the order `gearbox platform`
 * lists them (opencl:N). */
static int
find_device(unsigned index, cl_platform_id *platform, cl_device_id *device, char **cause)
{
	cl_platform_id platforms[16];
	cl_uint nplat = 0, seen = 0;
	cl_int err = clGetPlatformIDs(16, platforms, &nplat);

	if (err != CL_SUCCESS || nplat == 0)
		return set_cause(cause, "no OpenCL platform (clGetPlatformIDs: %s); install an ICD such as "
		                 "pocl-opencl-icd or the vendor's driver", dnn_cl_error_name(err));
	for (cl_uint i = 0; i < nplat && i < 16; i++) {
		cl_device_id devs[16];
		cl_uint ndev = 0;
		if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_ALL, 16, devs, &ndev) != CL_SUCCESS)
			continue;
		if (ndev > 16)
			ndev = 16;
		if (index < seen + ndev) {
			*platform = platforms[i];
			*device = devs[index - seen];
			return 0;
		}
		seen += ndev;
	}
	return set_cause(cause, "opencl:%u: no such device (%u OpenCL device%s; see gearbox platform)", index,
	                 (unsigned)seen, seen == 1 ? "" : "s");
}

/* The cache file of this source built with these options for this device
 * and driver: a change in any of them is a different file. */
static void
cache_path(struct dnn_cl *cl, const char *cache_dir, const char *options, char *path, size_t size)
{
	char driver[256] = "", version[256] = "", pname[256] = "";
	uint64_t h = FNV1A_INIT;

	clGetDeviceInfo(cl->device, CL_DRIVER_VERSION, sizeof(driver), driver, NULL);
	clGetDeviceInfo(cl->device, CL_DEVICE_VERSION, sizeof(version), version, NULL);
	clGetPlatformInfo(cl->platform, CL_PLATFORM_NAME, sizeof(pname), pname, NULL);
	h = fnv1a(h, pname, strlen(pname));
	h = fnv1a(h, cl->info.device_name, strlen(cl->info.device_name));
	h = fnv1a(h, driver, strlen(driver));
	h = fnv1a(h, version, strlen(version));
	h = fnv1a(h, options, strlen(options));
	h = fnv1a(h, kernel_source, sizeof(kernel_source));
	snprintf(path, size, "%s/opencl-%016llx.bin", cache_dir, (unsigned long long)h);
}

static unsigned char *
read_file(const char *path, size_t *size)
{
	FILE *f = fopen(path, "rb");
	unsigned char *buf = NULL;
	long n;

	if (f == NULL)
		return NULL;
	if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) > 0 && n < (1L << 28) && fseek(f, 0, SEEK_SET) == 0 &&
	    (buf = malloc((size_t)n)) != NULL && fread(buf, 1, (size_t)n, f) == (size_t)n) {
		*size = (size_t)n;
	} else {
		free(buf);
		buf = NULL;
	}
	fclose(f);
	return buf;
}

/* Write the built program's binary next to the others, atomically. A cache
 * that cannot be written only costs the next start a build. */
static void
save_binary(struct dnn_cl *cl, const char *path)
{
	size_t size = 0;
	unsigned char *bin;
	char tmp[600];
	FILE *f;

	if (clGetProgramInfo(cl->program, CL_PROGRAM_BINARY_SIZES, sizeof(size), &size, NULL) != CL_SUCCESS ||
	    size == 0 || (bin = malloc(size)) == NULL)
		return;
	if (clGetProgramInfo(cl->program, CL_PROGRAM_BINARIES, sizeof(bin), &bin, NULL) == CL_SUCCESS) {
		snprintf(tmp, sizeof(tmp), "%s.%ld.tmp", path, (long)getpid());
		if ((f = fopen(tmp, "wb")) != NULL) {
			bool ok = fwrite(bin, 1, size, f) == size;
			if (fclose(f) == 0 && ok && rename(tmp, path) == 0)
				cl->info.cache_written = true;
			else
				unlink(tmp);
		}
	}
	free(bin);
}

static int
build(struct dnn_cl *cl, const char *options, char **cause)
{
	cl_int err = clBuildProgram(cl->program, 1, &cl->device, options, NULL, NULL);
	char log[2048] = "";

	if (err == CL_SUCCESS)
		return 0;
	clGetProgramBuildInfo(cl->program, cl->device, CL_PROGRAM_BUILD_LOG, sizeof(log) - 1, log, NULL);
	log[strcspn(log, "\n")] = '\0'; /* the first line names the problem */
	return set_cause(cause, "building the gearbox kernels for %s with options '%s': %s (%d)%s%s",
	                 cl->info.device_name, options, dnn_cl_error_name(err), (int)err, log[0] ? ": " : "", log);
}

/* The cached binary when there is a good one, else the source (saving its
 * binary for next time). */
static int
load_program(struct dnn_cl *cl, const char *cache_dir, char **cause)
{
	const char *extra = getenv("GEARBOX_OPENCL_BUILD_OPTIONS");
	char options[512], path[600] = "";
	const char *src = kernel_source;
	cl_int err;

	snprintf(options, sizeof(options), "-cl-std=CL1.2%s%s", extra ? " " : "", extra ? extra : "");
	if (cache_dir != NULL && cache_dir[0] != '\0') {
		unsigned char *bin;
		size_t size = 0;
		cache_path(cl, cache_dir, options, path, sizeof(path));
		if ((bin = read_file(path, &size)) != NULL) {
			const unsigned char *bins[1] = { bin };
			cl_int status = CL_SUCCESS;
			cl->program = clCreateProgramWithBinary(cl->context, 1, &cl->device, &size, bins, &status, &err);
			free(bin);
			if (err == CL_SUCCESS && status == CL_SUCCESS && build(cl, options, NULL) == 0) {
				cl->info.from_cache = true;
				return 0;
			}
			if (cl->program != NULL)
				clReleaseProgram(cl->program);
			cl->program = NULL; /* a stale or foreign binary: build from source */
		}
	}
	cl->program = clCreateProgramWithSource(cl->context, 1, &src, NULL, &err);
	if (err != CL_SUCCESS)
		return cl_fail(cause, "clCreateProgramWithSource", err);
	if (build(cl, options, cause) != 0)
		return -1;
	if (path[0] != '\0') {
		mkdir(cache_dir, 0755);
		save_binary(cl, path);
	}
	return 0;
}

struct dnn_cl *
dnn_cl_open(unsigned index, const char *cache_dir, char **cause)
{
	struct dnn_cl *cl = calloc(1, sizeof(*cl));
	const char *fault = getenv("GEARBOX_OPENCL_FAULT_AFTER");
	cl_device_type type = 0;
	cl_int err;
	double t0 = monotonic_us();

	if (cl == NULL) {
		set_cause(cause, "out of memory");
		return NULL;
	}
	if (find_device(index, &cl->platform, &cl->device, cause) != 0)
		goto fail;
	cl->info.index = index;
	clGetDeviceInfo(cl->device, CL_DEVICE_NAME, sizeof(cl->info.device_name), cl->info.device_name, NULL);
	clGetPlatformInfo(cl->platform, CL_PLATFORM_NAME, sizeof(cl->info.platform_name), cl->info.platform_name, NULL);
	clGetDeviceInfo(cl->device, CL_DEVICE_TYPE, sizeof(type), &type, NULL);
	cl->info.is_gpu = (type & CL_DEVICE_TYPE_GPU) != 0;
	cl->context = clCreateContext(NULL, 1, &cl->device, NULL, NULL, &err);
	if (err != CL_SUCCESS) {
		cl_fail(cause, "clCreateContext", err);
		goto fail;
	}
	if (load_program(cl, cache_dir, cause) != 0)
		goto fail;
	cl->info.build_ms = (monotonic_us() - t0) / 1e3;
	if (fault != NULL)
		cl->fault_after = strtoul(fault, NULL, 10);
	return cl;
fail:
	prefix_cause(cause, "opencl:%u", index);
	dnn_cl_close(cl);
	return NULL;
}

void
dnn_cl_close(struct dnn_cl *cl)
{
	if (cl == NULL)
		return;
	if (cl->program != NULL)
		clReleaseProgram(cl->program);
	if (cl->context != NULL)
		clReleaseContext(cl->context);
	free(cl);
}

const struct dnn_cl_info *
dnn_cl_get_info(const struct dnn_cl *cl)
{
	return &cl->info;
}

static cl_mem
upload(struct dnn_cl *cl, const float *data, size_t n, cl_int *err)
{
	return clCreateBuffer(cl->context, CL_MEM_READ_ONLY | CL_MEM_COPY_HOST_PTR, n * sizeof(float), (void *)data,
	                      err);
}

struct dnn_cl_exec *
dnn_cl_exec_create(struct dnn_cl *cl, const struct dnn_model *m, char **cause)
{
	struct dnn_cl_exec *e = calloc(1, sizeof(*e));
	size_t in_n = (size_t)m->in_c * m->in_h * m->in_w;
	cl_int err = CL_SUCCESS;
	const char *what = "clCreateCommandQueue";

	if (e == NULL || (e->layers = calloc(m->n_layers, sizeof(*e->layers))) == NULL) {
		free(e);
		set_cause(cause, "out of memory");
		return NULL;
	}
	e->cl = cl;
	e->model = m;
	/* a launch per block, at most G per layer, plus the transfers */
	e->max_events = m->n_layers * m->groups + 2;
	if ((e->events = calloc(e->max_events, sizeof(*e->events))) == NULL) {
		err = CL_OUT_OF_HOST_MEMORY;
		goto fail;
	}
	e->queue = clCreateCommandQueue(cl->context, cl->device, CL_QUEUE_PROFILING_ENABLE, &err);
	if (err != CL_SUCCESS)
		goto fail;
	what = "clCreateKernel";
	if ((e->conv = clCreateKernel(cl->program, "f32_conv2d_direct", &err)) == NULL ||
	    (e->linear = clCreateKernel(cl->program, "f32_linear_rows", &err)) == NULL ||
	    (e->pool = clCreateKernel(cl->program, "f32_pool2d", &err)) == NULL ||
	    (e->relu = clCreateKernel(cl->program, "f32_relu", &err)) == NULL ||
	    (e->softmax = clCreateKernel(cl->program, "f32_softmax", &err)) == NULL)
		goto fail;
	what = "uploading the weights (clCreateBuffer)";
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct dnn_layer *l = &m->layers[i];
		if (l->weight == NULL)
			continue;
		/* the whole layer once: every g reads its blocks of it */
		e->layers[i].weight = upload(cl, l->weight, (size_t)l->out_c * l->weight_cols, &err);
		if (err != CL_SUCCESS)
			goto fail;
		e->layers[i].bias = upload(cl, l->bias != NULL ? l->bias : l->weight, l->bias != NULL ? l->out_c : 1, &err);
		if (err != CL_SUCCESS)
			goto fail;
	}
	what = "allocating activations (clCreateBuffer)";
	e->input = clCreateBuffer(cl->context, CL_MEM_READ_ONLY, in_n * sizeof(float), NULL, &err);
	if (err != CL_SUCCESS)
		goto fail;
	for (int k = 0; k < 2; k++) {
		e->act[k] = clCreateBuffer(cl->context, CL_MEM_READ_WRITE, m->max_act * sizeof(float), NULL, &err);
		if (err != CL_SUCCESS)
			goto fail;
	}
	return e;
fail:
	cl_fail(cause, what, err);
	prefix_cause(cause, "opencl:%u (%s), %s", cl->info.index, cl->info.device_name, m->name);
	dnn_cl_exec_free(e);
	return NULL;
}

void
dnn_cl_exec_free(struct dnn_cl_exec *e)
{
	cl_kernel kernels[5];

	if (e == NULL)
		return;
	if (e->queue != NULL) {
		clFinish(e->queue);
		clReleaseCommandQueue(e->queue);
	}
	kernels[0] = e->conv, kernels[1] = e->linear, kernels[2] = e->pool, kernels[3] = e->relu, kernels[4] = e->softmax;
	for (int k = 0; k < 5; k++)
		if (kernels[k] != NULL)
			clReleaseKernel(kernels[k]);
	for (size_t i = 0; e->layers != NULL && i < e->model->n_layers; i++) {
		if (e->layers[i].weight != NULL)
			clReleaseMemObject(e->layers[i].weight);
		if (e->layers[i].bias != NULL)
			clReleaseMemObject(e->layers[i].bias);
	}
	if (e->input != NULL)
		clReleaseMemObject(e->input);
	for (int k = 0; k < 2; k++)
		if (e->act[k] != NULL)
			clReleaseMemObject(e->act[k]);
	free(e->layers);
	free(e->events);
	free(e);
}

/* Kernel arguments in order; stops at the first failure. */
struct args {
	cl_kernel kernel;
	cl_uint next;
	cl_int err;
};

static void
arg(struct args *a, size_t size, const void *value)
{
	if (a->err == CL_SUCCESS)
		a->err = clSetKernelArg(a->kernel, a->next, size, value);
	a->next++;
}
#define ARG(a, v) arg((a), sizeof(v), &(v))

/* The window geometry the convolution and pooling kernels both take, in
 * their order: input and output size, kernel size, stride. */
static void
window_args(struct args *a, const struct dnn_layer *l)
{
	ARG(a, l->in_h);
	ARG(a, l->in_w);
	ARG(a, l->out_h);
	ARG(a, l->out_w);
	ARG(a, l->kh);
	ARG(a, l->kw);
	ARG(a, l->sh);
	ARG(a, l->sw);
}

/* One launch of a's kernel, unless setting an argument failed; its event
 * goes to the timing list when wanted. */
static cl_int
launch(struct dnn_cl_exec *e, const struct args *a, const size_t global[2], const size_t *local, size_t *nevents)
{
	cl_event *ev = *nevents < e->max_events ? &e->events[*nevents] : NULL;
	cl_int err;

	if (a->err != CL_SUCCESS)
		return a->err;
	err = clEnqueueNDRangeKernel(e->queue, a->kernel, 2, NULL, global, local, 0, NULL, ev);

	if (err == CL_SUCCESS && ev != NULL)
		(*nevents)++;
	return err;
}

static cl_int
run_weighted(struct dnn_cl_exec *e, size_t i, const struct dnn_layer_plan *lp, cl_mem src, cl_mem dst, int relu,
             size_t *nevents)
{
	const struct dnn_layer *l = &e->model->layers[i];
	bool dense = l->out_h == 1 && l->out_w == 1 && l->kh == 1 && l->kw == 1 && l->in_h == 1 && l->in_w == 1;
	int has_bias = l->bias != NULL;
	cl_int err = CL_SUCCESS;

	for (unsigned b = 0; b < lp->nblocks && err == CL_SUCCESS; b++) {
		const struct dnn_block *bk = &lp->blocks[b];
		struct args a = { dense ? e->linear : e->conv, 0, CL_SUCCESS };
		cl_uint rows = bk->row1 - bk->row0;
		ARG(&a, src);
		ARG(&a, e->layers[i].weight);
		ARG(&a, e->layers[i].bias);
		ARG(&a, has_bias);
		ARG(&a, dst);
		if (dense) {
			size_t global[2] = { LINEAR_LOCAL, rows }, local[2] = { LINEAR_LOCAL, 1 };
			ARG(&a, l->weight_cols);
			ARG(&a, bk->row0);
			ARG(&a, bk->ch0);
			ARG(&a, bk->ch1);
			ARG(&a, bk->wch0);
			ARG(&a, relu);
			arg(&a, LINEAR_LOCAL * sizeof(float), NULL);
			err = launch(e, &a, global, local, nevents);
		} else {
			size_t global[2] = { (size_t)l->out_h * l->out_w, (rows + 3) / 4 };
			window_args(&a, l);
			ARG(&a, l->ph);
			ARG(&a, l->pw);
			ARG(&a, l->weight_cols);
			ARG(&a, bk->row0);
			ARG(&a, bk->row1);
			ARG(&a, bk->ch0);
			ARG(&a, bk->ch1);
			ARG(&a, bk->wch0);
			ARG(&a, relu);
			err = launch(e, &a, global, NULL, nevents);
		}
	}
	return err;
}

static cl_int
run_layer(struct dnn_cl_exec *e, size_t i, const struct dnn_layer_plan *lp, cl_mem src, cl_mem dst, int relu,
          size_t *nevents)
{
	const struct dnn_layer *l = &e->model->layers[i];
	struct args a = { NULL, 0, CL_SUCCESS };
	cl_uint n = (cl_uint)lp->out_n;

	switch (l->type) {
	case DNN_CONV2D:
	case DNN_LINEAR:
		return run_weighted(e, i, lp, src, dst, relu, nevents);
	case DNN_MAXPOOL:
	case DNN_AVGPOOL: {
		size_t global[2] = { (size_t)l->out_h * l->out_w, lp->in_c };
		int is_max = l->type == DNN_MAXPOOL;
		a.kernel = e->pool;
		ARG(&a, src);
		ARG(&a, dst);
		window_args(&a, l);
		ARG(&a, is_max);
		return launch(e, &a, global, NULL, nevents);
	}
	case DNN_RELU:
	case DNN_SOFTMAX: {
		size_t global[2] = { l->type == DNN_RELU ? lp->out_n : 1, 1 };
		a.kernel = l->type == DNN_RELU ? e->relu : e->softmax;
		ARG(&a, src);
		ARG(&a, dst);
		ARG(&a, n);
		return launch(e, &a, global, NULL, nevents);
	}
	case DNN_FLATTEN:
		break;
	}
	return CL_SUCCESS;
}

static double
event_us(cl_event ev)
{
	cl_ulong start = 0, end = 0;

	if (clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_START, sizeof(start), &start, NULL) != CL_SUCCESS ||
	    clGetEventProfilingInfo(ev, CL_PROFILING_COMMAND_END, sizeof(end), &end, NULL) != CL_SUCCESS)
		return 0;
	return end > start ? (double)(end - start) / 1e3 : 0;
}

static void
release_events(struct dnn_cl_exec *e, size_t n, struct dnn_cl_timing *t)
{
	for (size_t k = 0; k < n; k++) {
		if (t != NULL) {
			double us = event_us(e->events[k]);
			if (k == 0)
				t->upload_us = us;
			else if (k == n - 1)
				t->download_us = us;
			else
				t->kernel_us += us;
		}
		clReleaseEvent(e->events[k]);
	}
}

int
dnn_cl_exec_run(struct dnn_cl_exec *e, unsigned g, const float *input, float *output, struct dnn_cl_timing *timing,
                char **cause)
{
	const struct dnn_model *m = e->model;
	size_t in_n = (size_t)m->in_c * m->in_h * m->in_w, nevents = 0;
	cl_mem src = e->input, dst = NULL;
	unsigned next = 0;
	cl_int err;
	const char *what = "clEnqueueWriteBuffer (input)";

	if (g < 1 || g > m->groups) {
		set_cause(cause, "%u active groups is out of range 1..%u", g, m->groups);
		return -EINVAL;
	}
	if (timing != NULL)
		memset(timing, 0, sizeof(*timing));
	if (e->cl->fault_after != 0 && ++e->cl->runs > e->cl->fault_after) {
		set_cause(cause, "opencl:%u: injected device fault after %lu runs (GEARBOX_OPENCL_FAULT_AFTER)",
		          e->cl->info.index, e->cl->fault_after);
		return -EIO;
	}
	err = clEnqueueWriteBuffer(e->queue, e->input, CL_FALSE, 0, in_n * sizeof(float), input, 0, NULL,
	                           &e->events[nevents]);
	if (err != CL_SUCCESS)
		goto fail;
	nevents++;
	what = "clEnqueueNDRangeKernel";
	for (size_t i = 0; i < m->n_layers; i++) {
		const struct dnn_layer *l = &m->layers[i];
		int relu = 0;
		size_t layer = i;
		if (l->type == DNN_FLATTEN)
			continue; /* CHW order already is the flat order */
		if ((l->type == DNN_CONV2D || l->type == DNN_LINEAR) && i + 1 < m->n_layers &&
		    m->layers[i + 1].type == DNN_RELU) {
			relu = 1;
			i++; /* fused into the epilogue */
		}
		dst = e->act[next];
		next ^= 1;
		err = run_layer(e, layer, &m->plans[g - 1].layers[layer], src, dst, relu, &nevents);
		if (err != CL_SUCCESS)
			goto fail;
		src = dst;
	}
	what = "clEnqueueReadBuffer (output)";
	/* the last launch slot is kept for the read: see max_events */
	err = clEnqueueReadBuffer(e->queue, src, CL_TRUE, 0, m->classes * sizeof(float), output, 0, NULL,
	                          &e->events[nevents]);
	if (err != CL_SUCCESS)
		goto fail;
	nevents++;
	release_events(e, nevents, timing);
	return 0;
fail:
	clFinish(e->queue);
	release_events(e, nevents, NULL);
	cl_fail(cause, what, err);
	prefix_cause(cause, "opencl:%u (%s)", e->cl->info.index, e->cl->info.device_name);
	return err == CL_OUT_OF_HOST_MEMORY || err == CL_MEM_OBJECT_ALLOCATION_FAILURE ? -ENOMEM : -EIO;
}

#else /* !HAVE_OPENCL */

struct dnn_cl {
	struct dnn_cl_info info;
};

const char *
dnn_cl_error_name(int err)
{
	(void)err;
	return "built without OpenCL";
}

struct dnn_cl *
dnn_cl_open(unsigned index, const char *cache_dir, char **cause)
{
	(void)cache_dir;
	set_cause(cause, "opencl:%u: gearbox was built without OpenCL (configure found no ICD loader)", index);
	return NULL;
}

void
dnn_cl_close(struct dnn_cl *cl)
{
	free(cl);
}

const struct dnn_cl_info *
dnn_cl_get_info(const struct dnn_cl *cl)
{
	return &cl->info;
}

struct dnn_cl_exec *
dnn_cl_exec_create(struct dnn_cl *cl, const struct dnn_model *m, char **cause)
{
	(void)cl;
	(void)m;
	set_cause(cause, "built without OpenCL");
	return NULL;
}

void
dnn_cl_exec_free(struct dnn_cl_exec *e)
{
	(void)e;
}

int
dnn_cl_exec_run(struct dnn_cl_exec *e, unsigned g, const float *input, float *output, struct dnn_cl_timing *timing,
                char **cause)
{
	(void)e, (void)g, (void)input, (void)output, (void)timing;
	set_cause(cause, "built without OpenCL");
	return -ENOSYS;
}
#endif
