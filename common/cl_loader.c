/* SPDX-License-Identifier: MIT */
/* The OpenCL entry points gearbox uses, forwarded to the ICD loader opened on
 * first use; see cl_loader.h. One list (CL_ENTRY_POINTS) gives each entry
 * point's return type, parameters and what it returns when the loader is
 * missing. */
#include "config.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/cause.h"
#include "common/cl_loader.h"

#ifdef HAVE_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#define CL_LOADER_DEFAULT "libOpenCL.so.1"
#define NO_PLATFORM (-1001) /* CL_PLATFORM_NOT_FOUND_KHR */

typedef void(CL_CALLBACK *build_notify)(cl_program, void *);
typedef void(CL_CALLBACK *context_notify)(const char *, const void *, size_t, void *);

/* I: returns cl_int (FAIL when the loader is missing); P: returns an object
 * and reports through errcode_ret. */
#define CL_ENTRY_POINTS(I, P)                                                                                         \
	I(clGetPlatformIDs, NO_PLATFORM, (cl_uint n, cl_platform_id *p, cl_uint *np), (n, p, np))                      \
	I(clGetPlatformInfo, CL_INVALID_PLATFORM, (cl_platform_id p, cl_platform_info w, size_t s, void *v, size_t *r), \
	  (p, w, s, v, r))                                                                                              \
	I(clGetDeviceIDs, CL_INVALID_PLATFORM, (cl_platform_id p, cl_device_type t, cl_uint n, cl_device_id *d, cl_uint *nd), \
	  (p, t, n, d, nd))                                                                                             \
	I(clGetDeviceInfo, CL_INVALID_DEVICE, (cl_device_id d, cl_device_info w, size_t s, void *v, size_t *r),        \
	  (d, w, s, v, r))                                                                                              \
	P(cl_context, clCreateContext,                                                                                  \
	  (const cl_context_properties *p, cl_uint n, const cl_device_id *d, context_notify f, void *u, cl_int *e),     \
	  (p, n, d, f, u, e))                                                                                           \
	P(cl_command_queue, clCreateCommandQueue, (cl_context c, cl_device_id d, cl_command_queue_properties p, cl_int *e), \
	  (c, d, p, e))                                                                                                 \
	P(cl_mem, clCreateBuffer, (cl_context c, cl_mem_flags f, size_t s, void *h, cl_int *e), (c, f, s, h, e))        \
	P(cl_program, clCreateProgramWithSource, (cl_context c, cl_uint n, const char **s, const size_t *l, cl_int *e), \
	  (c, n, s, l, e))                                                                                              \
	P(cl_program, clCreateProgramWithBinary,                                                                        \
	  (cl_context c, cl_uint n, const cl_device_id *d, const size_t *l, const unsigned char **b, cl_int *bs, cl_int *e), \
	  (c, n, d, l, b, bs, e))                                                                                       \
	I(clBuildProgram, CL_INVALID_PROGRAM,                                                                           \
	  (cl_program p, cl_uint n, const cl_device_id *d, const char *o, build_notify f, void *u), (p, n, d, o, f, u)) \
	I(clGetProgramInfo, CL_INVALID_PROGRAM, (cl_program p, cl_program_info w, size_t s, void *v, size_t *r),       \
	  (p, w, s, v, r))                                                                                              \
	I(clGetProgramBuildInfo, CL_INVALID_PROGRAM,                                                                    \
	  (cl_program p, cl_device_id d, cl_program_build_info w, size_t s, void *v, size_t *r), (p, d, w, s, v, r))    \
	P(cl_kernel, clCreateKernel, (cl_program p, const char *n, cl_int *e), (p, n, e))                               \
	I(clSetKernelArg, CL_INVALID_KERNEL, (cl_kernel k, cl_uint i, size_t s, const void *v), (k, i, s, v))          \
	I(clEnqueueNDRangeKernel, CL_INVALID_COMMAND_QUEUE,                                                             \
	  (cl_command_queue q, cl_kernel k, cl_uint d, const size_t *o, const size_t *g, const size_t *l, cl_uint n,    \
	   const cl_event *w, cl_event *ev),                                                                            \
	  (q, k, d, o, g, l, n, w, ev))                                                                                 \
	I(clEnqueueReadBuffer, CL_INVALID_COMMAND_QUEUE,                                                                \
	  (cl_command_queue q, cl_mem b, cl_bool bl, size_t o, size_t s, void *p, cl_uint n, const cl_event *w,         \
	   cl_event *ev),                                                                                               \
	  (q, b, bl, o, s, p, n, w, ev))                                                                                \
	I(clEnqueueWriteBuffer, CL_INVALID_COMMAND_QUEUE,                                                               \
	  (cl_command_queue q, cl_mem b, cl_bool bl, size_t o, size_t s, const void *p, cl_uint n, const cl_event *w,   \
	   cl_event *ev),                                                                                               \
	  (q, b, bl, o, s, p, n, w, ev))                                                                                \
	I(clFinish, CL_INVALID_COMMAND_QUEUE, (cl_command_queue q), (q))                                                \
	I(clGetEventProfilingInfo, CL_INVALID_EVENT, (cl_event e, cl_profiling_info w, size_t s, void *v, size_t *r),  \
	  (e, w, s, v, r))                                                                                              \
	I(clReleaseEvent, CL_INVALID_EVENT, (cl_event e), (e))                                                          \
	I(clReleaseKernel, CL_INVALID_KERNEL, (cl_kernel k), (k))                                                       \
	I(clReleaseMemObject, CL_INVALID_MEM_OBJECT, (cl_mem m), (m))                                                   \
	I(clReleaseProgram, CL_INVALID_PROGRAM, (cl_program p), (p))                                                    \
	I(clReleaseCommandQueue, CL_INVALID_COMMAND_QUEUE, (cl_command_queue q), (q))                                   \
	I(clReleaseContext, CL_INVALID_CONTEXT, (cl_context c), (c))

#define POINTER_I(name, fail, params, args) cl_int(CL_API_CALL *name) params;
#define POINTER_P(type, name, params, args) type(CL_API_CALL *name) params;
static struct {
	CL_ENTRY_POINTS(POINTER_I, POINTER_P)
} fn;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static void *handle;
static char why[512];

static void
load(void)
{
	const char *name = getenv("GEARBOX_OPENCL_LIBRARY");
	const char *missing = NULL;

	if (name == NULL || *name == '\0')
		name = CL_LOADER_DEFAULT;
	if ((handle = dlopen(name, RTLD_NOW | RTLD_LOCAL)) == NULL) {
		const char *e = dlerror();
		snprintf(why, sizeof(why), "cannot open the OpenCL ICD loader: %s (install ocl-icd-libopencl1)",
		         e != NULL ? e : name);
		return;
	}
#define LOAD_I(name, fail, params, args)                                                                              \
	if ((*(void **)&fn.name = dlsym(handle, #name)) == NULL && missing == NULL)                                   \
		missing = #name;
#define LOAD_P(type, name, params, args) LOAD_I(name, 0, params, args)
	CL_ENTRY_POINTS(LOAD_I, LOAD_P)
	if (missing != NULL) {
		snprintf(why, sizeof(why), "the OpenCL ICD loader %s lacks %s", name, missing);
		dlclose(handle);
		handle = NULL;
	}
}

int
cl_loader_open(char **cause)
{
	pthread_once(&once, load);
	if (handle == NULL)
		return set_cause(cause, "%s", why);
	return 0;
}

bool
cl_loader_is_open(void)
{
	return handle != NULL;
}

#define DEFINE_I(name, fail, params, args)                                                                            \
	CL_API_ENTRY cl_int CL_API_CALL name params                                                                   \
	{                                                                                                             \
		pthread_once(&once, load);                                                                            \
		return handle != NULL ? fn.name args : fail;                                                          \
	}
#define DEFINE_P(type, name, params, args)                                                                            \
	CL_API_ENTRY type CL_API_CALL name params                                                                     \
	{                                                                                                             \
		pthread_once(&once, load);                                                                            \
		if (handle != NULL)                                                                                   \
			return fn.name args;                                                                          \
		if (e != NULL)                                                                                        \
			*e = CL_INVALID_PLATFORM;                                                                     \
		return NULL;                                                                                          \
	}
CL_ENTRY_POINTS(DEFINE_I, DEFINE_P)

#else
int
cl_loader_open(char **cause)
{
	return set_cause(cause, "built without OpenCL (configure found no OpenCL headers)");
}

bool
cl_loader_is_open(void)
{
	return false;
}
#endif
