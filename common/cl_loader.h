/* SPDX-License-Identifier: MIT */
/* The OpenCL ICD loader, opened on first use.
 *
 * gearbox does not link libOpenCL: common/cl_loader.c defines the OpenCL
 * entry points dnn/ and governor/ call, and the first of them to run
 * dlopen()s the ICD loader (libOpenCL.so.1, or $GEARBOX_OPENCL_LIBRARY) and
 * forwards to it. A process that never calls OpenCL maps no ICD loader, no
 * vendor driver and none of their libraries (PoCL brings LLVM and clang).
 * When the loader cannot be opened, clGetPlatformIDs returns
 * CL_PLATFORM_NOT_FOUND_KHR (-1001) and every other entry point an error, and
 * cl_loader_open says why. */
#ifndef GEARBOX_COMMON_CL_LOADER_H
#define GEARBOX_COMMON_CL_LOADER_H

#include <stdbool.h>

/* Open the ICD loader now (once per process): 0, or -1 with *cause. */
int cl_loader_open(char **cause);
/* Whether this process has opened it (for tests and diagnostics). */
bool cl_loader_is_open(void);

#endif
