/* OpenCL devices through the ICD loader (any vendor's driver: PoCL, Mali,
 * NVIDIA...). Listing only; running kernels belongs to dnn/. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "governor/internal.h"

#ifdef HAVE_OPENCL
#define CL_TARGET_OPENCL_VERSION 120
#include <CL/cl.h>

void
gov_discover_opencl(struct gov_platform *p)
{
	cl_platform_id platforms[16];
	cl_uint nplat = 0;
	cl_int err = clGetPlatformIDs(16, platforms, &nplat);

	if (err != CL_SUCCESS || nplat == 0) {
		if (asprintf(&p->opencl_error, "no OpenCL platform (clGetPlatformIDs: %d); install an ICD such as "
		             "pocl-opencl-icd or the vendor's driver", (int)err) < 0)
			p->opencl_error = NULL;
		return;
	}
	for (cl_uint i = 0; i < nplat && i < 16; i++) {
		cl_device_id devs[16];
		cl_uint ndev = 0;
		char pname[128] = "";
		clGetPlatformInfo(platforms[i], CL_PLATFORM_NAME, sizeof(pname), pname, NULL);
		if (clGetDeviceIDs(platforms[i], CL_DEVICE_TYPE_ALL, 16, devs, &ndev) != CL_SUCCESS)
			continue;
		for (cl_uint j = 0; j < ndev && j < 16; j++) {
			struct gov_opencl_device *d;
			cl_device_type type = 0;
			cl_uint cu = 0;
			cl_ulong mem = 0;
			p->opencl = realloc(p->opencl, (p->nopencl + 1) * sizeof(*p->opencl));
			d = &p->opencl[p->nopencl++];
			memset(d, 0, sizeof(*d));
			snprintf(d->platform, sizeof(d->platform), "%s", pname);
			clGetDeviceInfo(devs[j], CL_DEVICE_NAME, sizeof(d->name), d->name, NULL);
			clGetDeviceInfo(devs[j], CL_DEVICE_TYPE, sizeof(type), &type, NULL);
			clGetDeviceInfo(devs[j], CL_DEVICE_MAX_COMPUTE_UNITS, sizeof(cu), &cu, NULL);
			clGetDeviceInfo(devs[j], CL_DEVICE_GLOBAL_MEM_SIZE, sizeof(mem), &mem, NULL);
			snprintf(d->type, sizeof(d->type), "%s", type & CL_DEVICE_TYPE_GPU ? "gpu" : type & CL_DEVICE_TYPE_CPU ? "cpu"
			         : type & CL_DEVICE_TYPE_ACCELERATOR ? "accelerator" : "other");
			d->platform_index = i;
			d->device_index = j;
			d->compute_units = cu;
			d->global_mem_bytes = mem;
		}
	}
}
#else
void
gov_discover_opencl(struct gov_platform *p)
{
	p->opencl_error = strdup("built without OpenCL (configure found no ICD loader)");
}
#endif
