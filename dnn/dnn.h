/* SPDX-License-Identifier: MIT */
/* dnn — dynamic-DNN models and their execution.
 *
 * A model's convolution channels are split into G groups trained incrementally,
 * so the first g groups form a complete smaller network. A loaded model is
 * immutable and holds one execution plan per active-group count g; running at
 * g reads a prefix/sub-block of the same mmap'ed weights, allocates nothing and
 * copies nothing.
 *
 * This module knows nothing about clusters, budgets or sockets: it is given a
 * group count and, through a thread pool, a cpuset to run on.
 */
#ifndef GEARBOX_DNN_H
#define GEARBOX_DNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <hwloc.h>

#define DNN_MAX_GROUPS 64

enum dnn_layer_type {
	DNN_CONV2D,
	DNN_RELU,
	DNN_MAXPOOL,
	DNN_AVGPOOL,
	DNN_FLATTEN,
	DNN_LINEAR,
	DNN_SOFTMAX,
};

/* How a layer's output channel groups read its input channel groups. */
enum dnn_connectivity {
	DNN_CONN_NONE,    /* layer without weights */
	DNN_CONN_DENSE,   /* first layer (reads the whole input) or classifier
	                     (produces every class from the active inputs) */
	DNN_CONN_GROUPED, /* output group k reads input group k only */
	DNN_CONN_NESTED,  /* output group k reads input groups 1..k */
};

/* Kernel families: the plain reference, im2col+CBLAS, and the optimised path
 * (CBLAS with fused epilogues, vectorised pooling, multi-threaded). */
enum dnn_kernels {
	DNN_KERNELS_REF,
	DNN_KERNELS_BLAS,
	DNN_KERNELS_FAST,
};

struct dnn_model;
struct dnn_pool;
struct dnn_exec;

/* What one layer looks like when `groups` groups are active. */
struct dnn_layer_info {
	enum dnn_layer_type type;
	const char *name;          /* layer name ("" for unnamed layers) */
	enum dnn_connectivity connectivity;
	unsigned in_c, in_h, in_w;  /* active input shape */
	unsigned out_c, out_h, out_w; /* active output shape */
	unsigned kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w;
	uint64_t params;            /* weights + biases read at this g */
	uint64_t macs;              /* multiply-accumulates at this g */
};

/* Load and validate a model file (safetensors container, see
 * docs/model-format.md). Returns NULL and sets *cause naming the file, the
 * tensor or key, and the problem. */
struct dnn_model *dnn_model_load(const char *path, char **cause);
void dnn_model_free(struct dnn_model *model);

const char *dnn_model_name(const struct dnn_model *model);
const char *dnn_model_path(const struct dnn_model *model);
unsigned dnn_model_groups(const struct dnn_model *model);
/* Input shape (channels, height, width); element counts of input and output. */
void dnn_model_input_shape(const struct dnn_model *model, unsigned *c, unsigned *h, unsigned *w);
size_t dnn_model_input_size(const struct dnn_model *model);
size_t dnn_model_output_size(const struct dnn_model *model);
unsigned dnn_model_classes(const struct dnn_model *model);
const char *dnn_model_label(const struct dnn_model *model, unsigned cls);
/* Top-1 accuracy in [0,1] measured at export for `groups` active groups, or a
 * negative value when the file does not say. */
double dnn_model_accuracy(const struct dnn_model *model, unsigned groups);
size_t dnn_model_layer_count(const struct dnn_model *model);
/* Returns 0, or -EINVAL when index or groups are out of range. */
int dnn_model_layer_info(const struct dnn_model *model, size_t index, unsigned groups,
                         struct dnn_layer_info *info);
uint64_t dnn_model_params(const struct dnn_model *model, unsigned groups);
uint64_t dnn_model_macs(const struct dnn_model *model, unsigned groups);
/* Bytes of weights touched at `groups` (params * sizeof(float)). */
uint64_t dnn_model_weight_bytes(const struct dnn_model *model, unsigned groups);
/* Activation and scratch memory an inference at `groups` works in (bytes). */
size_t dnn_model_buffer_bytes(const struct dnn_model *model, unsigned groups);
/* Bytes the file occupies (the mmap). */
uint64_t dnn_model_file_bytes(const struct dnn_model *model);

/* Turn an 8-bit image in channel-major (CHW) order into the normalised float
 * input the model expects: (pixel / 255 - mean[c]) / std[c]. */
void dnn_model_normalize_u8(const struct dnn_model *model, const uint8_t *pixels, float *input);

/* A pool of `threads` threads (the caller's thread counts as one) that run one
 * inference together. Every thread, the caller's included while it runs a
 * job, is bound to cpuset (NULL: the CPUs the caller may run on), and to a
 * CPU of its own there when it has one for each thread. */
struct dnn_pool *dnn_pool_create(unsigned threads, hwloc_const_cpuset_t cpuset, char **cause);
void dnn_pool_free(struct dnn_pool *pool);
unsigned dnn_pool_threads(const struct dnn_pool *pool);
/* Run fn(arg, index, count) on every thread of the pool, index 0 on the
 * caller's, and return when all have finished. Not re-entrant. */
void dnn_pool_run(struct dnn_pool *pool, void (*fn)(void *arg, unsigned index, unsigned count), void *arg);
/* See dnn_engine_warm and dnn_engine_set_realtime. */
void dnn_pool_warm(struct dnn_pool *pool, uint64_t until_ns);
int dnn_pool_set_realtime(struct dnn_pool *pool, int priority);

/* An execution context: the activation and scratch buffers for one inference
 * at a time, sized for the largest plan. Create one per concurrent worker.
 * pool may be NULL (run on the caller's thread only). */
struct dnn_exec *dnn_exec_create(const struct dnn_model *model, struct dnn_pool *pool,
                                 enum dnn_kernels kernels, char **cause);
void dnn_exec_free(struct dnn_exec *exec);
/* Run one inference with `groups` active groups (1..G). input has
 * dnn_model_input_size() floats, output dnn_model_output_size(). Returns 0 or
 * -EINVAL for a groups value out of range. Allocates nothing. */
int dnn_exec_run(struct dnn_exec *exec, unsigned groups, const float *input, float *output);

/* ---- OpenCL execution ----------------------------------------------------
 * Device N is the N-th device over every OpenCL platform, in the order
 * `gearbox platform` lists them ("opencl:N"). A device is opened once per
 * process (context and kernels, built from the cached program binary in
 * cache_dir when one matches this device, driver and source, else from
 * source and then cached); a model's weights are uploaded once per execution
 * context and every g reads its blocks of them. Execution contexts of one
 * device may run concurrently from different threads, one thread each. */
struct dnn_cl;
struct dnn_cl_exec;

struct dnn_cl_info {
	unsigned index;
	char device_name[128], platform_name[128];
	bool is_gpu;
	bool from_cache;        /* the program came from a cached binary */
	bool cache_written;     /* this open wrote the cache */
	double build_ms;        /* opening, including the build or the cache load */
};

/* Time of one run, from the device's profiling events (µs). */
struct dnn_cl_timing {
	double upload_us;       /* input, host to device */
	double kernel_us;       /* sum of the kernels' execution times */
	double download_us;     /* class scores, device to host */
};

/* cache_dir may be NULL (no binary cache). Returns NULL and sets *cause
 * naming the device and the OpenCL error (or the build log's first line). */
struct dnn_cl *dnn_cl_open(unsigned index, const char *cache_dir, char **cause);
void dnn_cl_close(struct dnn_cl *cl);
const struct dnn_cl_info *dnn_cl_get_info(const struct dnn_cl *cl);
struct dnn_cl_exec *dnn_cl_exec_create(struct dnn_cl *cl, const struct dnn_model *model, char **cause);
void dnn_cl_exec_free(struct dnn_cl_exec *exec);
/* Like dnn_exec_run on the device; timing may be NULL. Returns 0, -EINVAL
 * for groups out of range, or -EIO/-ENOMEM for a device error (lost device,
 * out of resources) with *cause naming it. */
int dnn_cl_exec_run(struct dnn_cl_exec *exec, unsigned groups, const float *input, float *output,
                    struct dnn_cl_timing *timing, char **cause);
const char *dnn_cl_error_name(int err);

/* ---- engines --------------------------------------------------------------
 * One model on one kind of hardware behind one call: the CPU kernels on a
 * pool of `threads` bound to cpuset (NULL: unbound), or a context on an
 * OpenCL device. timing (OpenCL only, may be NULL) gets the device's times. */
struct dnn_engine;
struct dnn_engine *dnn_engine_cpu(const struct dnn_model *model, unsigned threads, hwloc_const_cpuset_t cpuset,
                                  enum dnn_kernels kernels, char **cause);
struct dnn_engine *dnn_engine_opencl(const struct dnn_model *model, struct dnn_cl *cl, char **cause);
int dnn_engine_run(struct dnn_engine *engine, unsigned groups, const float *input, float *output,
                   struct dnn_cl_timing *timing, char **cause);
bool dnn_engine_is_opencl(const struct dnn_engine *engine);
/* Have the engine's pool threads poll for work until until_ns (monotonic)
 * instead of sleeping: a caller that knows when its next run comes wakes
 * them ahead of it, so the run does not wait for sleeping threads. */
void dnn_engine_warm(struct dnn_engine *engine, uint64_t until_ns);
/* Run the pool's threads in SCHED_FIFO at priority (0: back to SCHED_OTHER).
 * The caller's own thread is the caller's business. */
int dnn_engine_set_realtime(struct dnn_engine *engine, int priority, char **cause);
void dnn_engine_free(struct dnn_engine *engine);

/* ---- per-layer plans -------------------------------------------------------
 * Which implementation each weighted layer runs at each g (docs/plan-format.md).
 * A plan runs on the fast family (pooling, fused ReLU) and replaces the
 * convolution/linear kernel of the layers it names. */
enum dnn_impl {
	DNN_IMPL_AUTO,   /* the family's own choice (fast: direct for stride-1 k>1, else BLAS) */
	DNN_IMPL_GEMM,   /* im2col + BLAS fp32, bias and ReLU fused */
	DNN_IMPL_DIRECT, /* direct convolution on packed weights (stride 1, k > 1) */
	DNN_IMPL_WINO2,  /* Winograd F(2x2,3x3) (3x3 stride 1) */
	DNN_IMPL_WINO4,  /* Winograd F(4x4,3x3) */
	DNN_IMPL_INT8,   /* u8 x s8 -> int32, weights per channel, input per tensor (calibrated) */
};
#define DNN_IMPL_COUNT 6
/* How a layer's input and output activations are laid out (dnn/layout.c):
 * NCHW (every kernel's), NHWC, or blocks of dnn_layout_block() channels
 * (NCHW{B}c: 16 on AVX-512, 8 on AVX2, 4 on NEON and generic). The direct
 * convolution runs in all three; pooling follows the layout it is given;
 * the executor converts between layers where the layouts differ (and to
 * NCHW before flatten, linear layers and the output). */
enum dnn_layout {
	DNN_LAYOUT_NCHW,
	DNN_LAYOUT_NHWC,
	DNN_LAYOUT_BLOCKED,
};
#define DNN_LAYOUT_COUNT 3
const char *dnn_layout_name(enum dnn_layout layout);
int dnn_layout_parse(const char *name, enum dnn_layout *layout);
/* Channels per block of the blocked layout in this process. */
unsigned dnn_layout_block(void);
struct dnn_lplan;

const char *dnn_impl_name(enum dnn_impl impl);
int dnn_impl_parse(const char *name, enum dnn_impl *impl);
/* Can layer `index` run impl (AUTO for every layer; the others for weighted
 * layers they cover)? */
bool dnn_impl_applies(const struct dnn_model *model, size_t index, enum dnn_impl impl);
/* FNV-1a (64 bits) of the model file's bytes. */
uint64_t dnn_model_fingerprint(const struct dnn_model *model);
/* A plan of AUTO everywhere, keyed to this model, this CPU and its ISAs. */
struct dnn_lplan *dnn_lplan_new(const struct dnn_model *model);
struct dnn_lplan *dnn_lplan_copy(const struct dnn_lplan *plan);
void dnn_lplan_free(struct dnn_lplan *plan);
/* -EINVAL when g, layer or impl do not fit the model. */
int dnn_lplan_set(struct dnn_lplan *plan, const struct dnn_model *model, unsigned groups, size_t layer,
                  enum dnn_impl impl);
enum dnn_impl dnn_lplan_get(const struct dnn_lplan *plan, unsigned groups, size_t layer);
/* Layer `layer`'s layout at g (NCHW unless set). -EINVAL when the layer's
 * implementation at g does not run in it (only `direct` runs in NHWC or
 * blocked; blocked also needs the input's group segments to be whole
 * blocks); set the implementation first. */
int dnn_lplan_set_layout(struct dnn_lplan *plan, const struct dnn_model *model, unsigned groups, size_t layer,
                         enum dnn_layout layout);
enum dnn_layout dnn_lplan_get_layout(const struct dnn_lplan *plan, unsigned groups, size_t layer);
bool dnn_layout_applies(const struct dnn_model *model, size_t index, enum dnn_impl impl, enum dnn_layout layout);
void dnn_lplan_set_threads(struct dnn_lplan *plan, unsigned threads);
unsigned dnn_lplan_threads(const struct dnn_lplan *plan);
/* The cluster it was tuned on ("" when not said): a name the plan carries
 * for whoever places it (gearboxd), not used here. */
void dnn_lplan_set_cluster(struct dnn_lplan *plan, const char *cluster);
const char *dnn_lplan_cluster(const struct dnn_lplan *plan);
/* What the search measured at g (latency_us, accuracy in [0,1]; < 0: not). */
void dnn_lplan_set_measured(struct dnn_lplan *plan, unsigned groups, double latency_us, double accuracy);
/* The int8 input scale and zero point of every weighted layer at g, from the
 * value ranges the float model sees on `count` calibration inputs. */
int dnn_lplan_calibrate(struct dnn_lplan *plan, const struct dnn_model *model, unsigned groups, const float *inputs,
                        size_t count, char **cause);
int dnn_lplan_scale(const struct dnn_lplan *plan, unsigned groups, size_t layer, float *scale, int *zero_point);
/* Bytes of weights an inference at g reads under the plan (NULL: all fp32). */
uint64_t dnn_lplan_weight_bytes(const struct dnn_lplan *plan, const struct dnn_model *model, unsigned groups);
int dnn_lplan_save(const struct dnn_lplan *plan, const struct dnn_model *model, const char *path, char **cause);
/* Refuses (NULL, *cause naming why) a plan for other model contents, another
 * CPU model or other instruction sets, another format version, or with
 * entries the model cannot run. */
struct dnn_lplan *dnn_lplan_load(const struct dnn_model *model, const char *path, char **cause);
/* Run under the plan from now on (NULL: back to the family's kernels); makes
 * the variants' weights the first time a model needs them. The context must
 * be of the fast family. */
int dnn_exec_set_lplan(struct dnn_exec *exec, const struct dnn_lplan *plan, char **cause);
int dnn_engine_set_lplan(struct dnn_engine *engine, const struct dnn_lplan *plan, char **cause);
/* Add each layer's time (ns, a fused ReLU counted with its layer) of every
 * run from now on to ns[layer] (dnn_model_layer_count values; NULL: stop). */
void dnn_exec_set_profile(struct dnn_exec *exec, uint64_t *ns);
void dnn_engine_set_profile(struct dnn_engine *engine, uint64_t *ns);
/* Median time (µs, over `runs`) of converting the input of layer `layer`
 * at g from one layout to another, on the context's threads and buffers:
 * what a plan that switches layouts there pays. -EINVAL for a layer or g out
 * of range. */
int dnn_exec_convert_us(struct dnn_exec *exec, unsigned groups, size_t layer, enum dnn_layout from,
                        enum dnn_layout to, unsigned runs, double *us);
int dnn_engine_convert_us(struct dnn_engine *engine, unsigned groups, size_t layer, enum dnn_layout from,
                          enum dnn_layout to, unsigned runs, double *us);

const char *dnn_kernels_name(enum dnn_kernels kernels);
/* The instruction set the fast kernels run with in this process: the best
 * this CPU runs ("avx512", "avx2", "neon", "generic"), or the one named by
 * $GEARBOX_KERNEL_ISA when the CPU runs it (valgrind emulates FMA slowly:
 * the daemon's valgrind test runs "generic"). */
const char *dnn_kernels_isa(void);
int dnn_kernels_parse(const char *name, enum dnn_kernels *kernels);
const char *dnn_layer_type_name(enum dnn_layer_type type);
const char *dnn_connectivity_name(enum dnn_connectivity conn);

#endif
