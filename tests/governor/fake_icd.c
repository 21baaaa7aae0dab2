/* SPDX-License-Identifier: MIT */
/* A fake OpenCL ICD for tests/governor/platform.sh: loaded by the real ICD
 * loader (ocl-icd) through OCL_ICD_VENDORS, it misbehaves the way vendor
 * drivers do while the loader asks it for its platforms, as
 * FAKE_ICD_MODE says:
 *   abort  print a message and abort (PoCL on a tree it cannot read)
 *   hang   never return (a blob waiting on a device that is not there)
 *   exit   exit(3) from inside the driver
 * Anything else: report no platform. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

#define CL_PLATFORM_NOT_FOUND_KHR (-1001)

cl_int clIcdGetPlatformIDsKHR(cl_uint num_entries, cl_platform_id *platforms, cl_uint *num_platforms);
void *clGetExtensionFunctionAddress(const char *name);

/* The loader wants this one too before it asks for platforms. */
CL_API_ENTRY cl_int CL_API_CALL
clGetPlatformInfo(cl_platform_id platform, cl_platform_info name, size_t size, void *value, size_t *size_ret)
{
	(void)platform, (void)name, (void)size, (void)value, (void)size_ret;
	return CL_INVALID_PLATFORM;
}

cl_int
clIcdGetPlatformIDsKHR(cl_uint num_entries, cl_platform_id *platforms, cl_uint *num_platforms)
{
	const char *mode = getenv("FAKE_ICD_MODE");

	(void)num_entries;
	(void)platforms;
	if (mode != NULL && strcmp(mode, "abort") == 0) {
		fprintf(stderr, "fake-icd: cannot find the GPU, giving up\n");
		abort();
	}
	if (mode != NULL && strcmp(mode, "hang") == 0) {
		fprintf(stderr, "fake-icd: waiting for the GPU\n");
		for (;;)
			pause();
	}
	if (mode != NULL && strcmp(mode, "exit") == 0)
		exit(3);
	if (num_platforms != NULL)
		*num_platforms = 0;
	return CL_PLATFORM_NOT_FOUND_KHR;
}

void *
clGetExtensionFunctionAddress(const char *name)
{
	if (strcmp(name, "clIcdGetPlatformIDsKHR") == 0)
		return (void *)clIcdGetPlatformIDsKHR;
	if (strcmp(name, "clGetPlatformInfo") == 0)
		return (void *)clGetPlatformInfo;
	return NULL;
}
