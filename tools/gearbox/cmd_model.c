/* SPDX-License-Identifier: MIT */
/* gearbox model info|eval|bench */
#include "config.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dnn/dnn.h"
#include "governor/governor.h"
#include "policies/policy.h"
#include "tools/gearbox/cli.h"
#include "common/clock.h"
#include "common/dataset.h"

/* Options common to the model verbs. */
struct model_opts {
	bool json;
	const char *groups;
	const char *dataset;
	hwloc_bitmap_t cpuset; /* NULL: threads not bound */
	const char *idx;
	const char *cluster;
	unsigned long threads, iterations, warmup, limit, index, count;
	enum dnn_kernels kernels;
	int device;            /* -1: the CPU engine; N: OpenCL device opencl:N */
	const char *plan;      /* per-layer plan file (gearbox tune), or NULL */
};

/* Usage of one model command (verb), or of all of them (NULL): each line
 * says which commands take it. */
static void
model_usage(FILE *out, const char *verb)
{
	static const struct {
		const char *verbs, *text;
	} lines[] = {
		{ "info", "Usage: gearbox model info FILE [--json]\n" },
		{ "eval", "       gearbox model eval FILE --dataset DIR [--groups N|all] [--limit N] [--threads N]\n"
		          "                              [--kernels ref|blas|fast] [--device cpu|opencl:N] [--plan PLAN] [--json]\n" },
		{ "run", "       gearbox model run FILE --idx IMAGES [--index I] [--count N] [--groups N|all] [--plan PLAN] [--json]\n" },
		{ "bench", "       gearbox model bench FILE [--groups N|all] [--threads N] [--iterations N] [--warmup N]\n"
		           "                              [--kernels ref|blas|fast] [--cpuset LIST | --cluster C]\n"
		           "                              [--device cpu|opencl:N] [--plan PLAN] [--json]\n" },
		{ "info eval run bench", "\n" },
		{ "eval", "  --dataset DIR     Fashion-MNIST/MNIST IDX test set folder (e.g. /usr/share/datasets/fashion-mnist)\n"
		          "                    or a CIFAR-10 binary test batch (test_batch.bin, or its folder)\n" },
		{ "eval run bench", "  --groups N|all    active channel groups to run (default all: every g from 1 to G)\n" },
		{ "eval", "  --limit N         evaluate only the first N images\n" },
		{ "run", "  --idx IMAGES      IDX image file (gzip or not), e.g. .../t10k-images-idx3-ubyte.gz\n"
		         "  --index I         first image to run (default 0); --count N images (default 1)\n" },
		{ "eval bench", "  --threads N       threads for one inference (default 1)\n" },
		{ "bench", "  --iterations N    timed runs per g (default 200), after --warmup runs (default 20)\n" },
		{ "eval bench", "  --kernels K       kernel family: fast (default: direct convolution on packed weights),\n"
		                "                    blas (im2col + GEMM), ref (plain C)\n" },
		{ "bench", "  --cpuset LIST     bind the threads to these CPUs (hwloc list syntax, e.g. 0-3)\n"
		           "  --cluster C       bind the threads to the first --threads CPUs of a cluster (see gearbox platform)\n" },
		{ "eval bench", "  --device D        cpu (the CPU engine, default) or opencl:N (an OpenCL device, see gearbox platform)\n" },
		{ "eval run bench", "  --plan PLAN       run each layer as the per-layer plan made by gearbox tune says (refused when it\n"
		                    "                    was made for other model contents, another CPU or other instruction sets)\n" },
		{ "info eval run bench", "  --json            machine-readable output (keys documented in gearbox(1))\n" },
	};
	bool first = true;

	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		const char *text = lines[i].text;
		size_t n = verb ? strlen(verb) : 0;
		const char *at = verb ? strstr(lines[i].verbs, verb) : lines[i].verbs;
		if (at == NULL || (verb && ((at != lines[i].verbs && at[-1] != ' ') || (at[n] != '\0' && at[n] != ' '))))
			continue;
		/* the first usage line shown starts with "Usage:" */
		if (first && strncmp(text, "       gearbox", 14) == 0)
			fprintf(out, "Usage:%s", text + 6);
		else
			fputs(text, out);
		first = false;
	}
}

static int
parse_model_opts(int argc, char **argv, struct model_opts *o, const char **file)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, 'j' },         { "groups", required_argument, NULL, 'g' },
		{ "dataset", required_argument, NULL, 'd' }, { "threads", required_argument, NULL, 't' },
		{ "iterations", required_argument, NULL, 'n' }, { "warmup", required_argument, NULL, 'w' },
		{ "limit", required_argument, NULL, 'l' },  { "kernels", required_argument, NULL, 'k' },
		{ "cpuset", required_argument, NULL, 'c' }, { "help", no_argument, NULL, 'h' },
		{ "idx", required_argument, NULL, 'x' },    { "index", required_argument, NULL, 'i' },
		{ "count", required_argument, NULL, 'C' },  { "cluster", required_argument, NULL, 'K' },
		{ "device", required_argument, NULL, 'D' }, { "plan", required_argument, NULL, 'P' },
		{ NULL, 0, NULL, 0 },
	};
	int ch;

	memset(o, 0, sizeof(*o));
	o->threads = 1;
	o->iterations = 200;
	o->warmup = 20;
	o->kernels = DNN_KERNELS_FAST;
	o->count = 1;
	o->device = -1;
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'j': o->json = true; break;
		case 'g': o->groups = optarg; break;
		case 'd': o->dataset = optarg; break;
		case 'c':
			if (o->cpuset == NULL)
				o->cpuset = hwloc_bitmap_alloc();
			if (hwloc_bitmap_list_sscanf(o->cpuset, optarg) != 0 || hwloc_bitmap_iszero(o->cpuset)) {
				cli_error("--cpuset '%s' is not a CPU list such as 0-3 or 0,2", optarg);
				return -1;
			}
			break;
		case 't':
			if (cli_parse_uint(optarg, 1, 1024, &o->threads) != 0) {
				cli_error("--threads must be a number from 1 to 1024, not '%s'", optarg);
				return -1;
			}
			break;
		case 'n':
			if (cli_parse_uint(optarg, 1, 10000000, &o->iterations) != 0) {
				cli_error("--iterations must be a positive number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'w':
			if (cli_parse_uint(optarg, 0, 10000000, &o->warmup) != 0) {
				cli_error("--warmup must be a number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'l':
			if (cli_parse_uint(optarg, 1, 100000000, &o->limit) != 0) {
				cli_error("--limit must be a positive number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'k':
			if (dnn_kernels_parse(optarg, &o->kernels) != 0) {
				cli_error("--kernels must be ref, blas or fast, not '%s'", optarg);
				return -1;
			}
			break;
		case 'D': {
			unsigned long n;
			if (strcmp(optarg, "cpu") == 0) {
				o->device = -1;
			} else if (strncmp(optarg, "opencl:", 7) == 0 && cli_parse_uint(optarg + 7, 0, 255, &n) == 0) {
				o->device = (int)n;
			} else {
				cli_error("--device must be cpu or opencl:N (see gearbox platform), not '%s'", optarg);
				return -1;
			}
			break;
		}
		case 'x': o->idx = optarg; break;
		case 'K': o->cluster = optarg; break;
		case 'i':
			if (cli_parse_uint(optarg, 0, 100000000, &o->index) != 0) {
				cli_error("--index must be a number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'C':
			if (cli_parse_uint(optarg, 1, 100000000, &o->count) != 0) {
				cli_error("--count must be a positive number, not '%s'", optarg);
				return -1;
			}
			break;
		case 'P': o->plan = optarg; break;
		case 'h': model_usage(stdout, argv[0]); exit(0);
		default: model_usage(stderr, argv[0]); return -1;
		}
	}
	if (o->cluster != NULL && o->cpuset != NULL) {
		cli_error("give --cluster or --cpuset, not both");
		return -1;
	}
	if (o->plan != NULL && (o->device >= 0 || o->kernels != DNN_KERNELS_FAST)) {
		cli_error("--plan runs on the CPU's fast kernels (no --device, no --kernels other than fast)");
		return -1;
	}
	if (optind + 1 != argc) {
		cli_error(optind == argc ? "missing model FILE" : "too many arguments (one model FILE expected)");
		return -1;
	}
	*file = argv[optind];
	return 0;
}

static void
print_json(struct json_object *o)
{
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(o);
}

static struct json_object *
json_shape(unsigned c, unsigned h, unsigned w)
{
	struct json_object *a = json_object_new_array();

	json_object_array_add(a, json_object_new_int((int)c));
	json_object_array_add(a, json_object_new_int((int)h));
	json_object_array_add(a, json_object_new_int((int)w));
	return a;
}

/* ------------------------------------------------------------------------ */

static int
model_info(const struct dnn_model *m, const struct model_opts *o)
{
	unsigned G = dnn_model_groups(m), c, h, w;
	struct dnn_layer_info li;

	dnn_model_input_shape(m, &c, &h, &w);
	if (o->json) {
		struct json_object *root = json_object_new_object(), *layers = json_object_new_array();
		struct json_object *per = json_object_new_array(), *labels = json_object_new_array();
		json_object_object_add(root, "name", json_object_new_string(dnn_model_name(m)));
		json_object_object_add(root, "path", json_object_new_string(dnn_model_path(m)));
		json_object_object_add(root, "file_bytes", json_object_new_int64((int64_t)dnn_model_file_bytes(m)));
		json_object_object_add(root, "groups", json_object_new_int((int)G));
		json_object_object_add(root, "input_shape", json_shape(c, h, w));
		for (unsigned i = 0; i < dnn_model_classes(m); i++)
			json_object_array_add(labels, json_object_new_string(dnn_model_label(m, i)));
		json_object_object_add(root, "labels", labels);
		for (size_t i = 0; i < dnn_model_layer_count(m); i++) {
			struct json_object *lo = json_object_new_object();
			dnn_model_layer_info(m, i, G, &li);
			json_object_object_add(lo, "type", json_object_new_string(dnn_layer_type_name(li.type)));
			json_object_object_add(lo, "name", json_object_new_string(li.name));
			json_object_object_add(lo, "connectivity", json_object_new_string(dnn_connectivity_name(li.connectivity)));
			json_object_object_add(lo, "output_shape", json_shape(li.out_c, li.out_h, li.out_w));
			json_object_object_add(lo, "params", json_object_new_int64((int64_t)li.params));
			json_object_object_add(lo, "macs", json_object_new_int64((int64_t)li.macs));
			json_object_array_add(layers, lo);
		}
		json_object_object_add(root, "layers", layers);
		for (unsigned g = 1; g <= G; g++) {
			struct json_object *go = json_object_new_object();
			double acc = dnn_model_accuracy(m, g);
			json_object_object_add(go, "active", json_object_new_int((int)g));
			json_object_object_add(go, "params", json_object_new_int64((int64_t)dnn_model_params(m, g)));
			json_object_object_add(go, "macs", json_object_new_int64((int64_t)dnn_model_macs(m, g)));
			json_object_object_add(go, "flops", json_object_new_int64((int64_t)(2 * dnn_model_macs(m, g))));
			json_object_object_add(go, "weight_bytes", json_object_new_int64((int64_t)dnn_model_weight_bytes(m, g)));
			json_object_object_add(go, "buffer_bytes", json_object_new_int64((int64_t)dnn_model_buffer_bytes(m, g)));
			json_object_object_add(go, "accuracy", acc >= 0 ? json_object_new_double(acc) : NULL);
			json_object_array_add(per, go);
		}
		json_object_object_add(root, "per_group", per);
		print_json(root);
		return 0;
	}

	printf("model      %s\nfile       %s (%.2f MB)\ngroups     G=%u\ninput      %ux%ux%u (CxHxW)\nclasses    %u:",
	       dnn_model_name(m), dnn_model_path(m), (double)dnn_model_file_bytes(m) / 1e6, G, c, h, w,
	       dnn_model_classes(m));
	for (unsigned i = 0; i < dnn_model_classes(m); i++)
		printf("%s %s", i ? "," : "", dnn_model_label(m, i));
	printf("\n\n%-3s %-10s %-12s %-9s %-16s %12s %14s\n", "#", "type", "name", "groups", "output (g=G)", "params",
	       "MACs");
	for (size_t i = 0; i < dnn_model_layer_count(m); i++) {
		char shape[48];
		dnn_model_layer_info(m, i, G, &li);
		snprintf(shape, sizeof(shape), "%ux%ux%u", li.out_c, li.out_h, li.out_w);
		printf("%-3zu %-10s %-12s %-9s %-16s %12llu %14llu\n", i, dnn_layer_type_name(li.type), li.name,
		       li.connectivity == DNN_CONN_NONE ? "-" : dnn_connectivity_name(li.connectivity), shape,
		       (unsigned long long)li.params, (unsigned long long)li.macs);
	}
	printf("\n%-3s %12s %12s %14s %14s %10s\n", "g", "params", "MFLOPs", "weight bytes", "buffer bytes", "accuracy");
	for (unsigned g = 1; g <= G; g++) {
		double acc = dnn_model_accuracy(m, g);
		char accs[16] = "-";
		if (acc >= 0)
			snprintf(accs, sizeof(accs), "%.2f%%", 100.0 * acc);
		printf("%-3u %12llu %12.2f %14llu %14zu %10s\n", g, (unsigned long long)dnn_model_params(m, g),
		       2.0 * (double)dnn_model_macs(m, g) / 1e6, (unsigned long long)dnn_model_weight_bytes(m, g),
		       dnn_model_buffer_bytes(m, g), accs);
	}
	return 0;
}

/* ------------------------------------------------------------------------ */

static unsigned
argmax(const float *v, unsigned n)
{
	unsigned best = 0;

	for (unsigned i = 1; i < n; i++)
		if (v[i] > v[best])
			best = i;
	return best;
}

/* What eval, run and bench share: an engine (the CPU kernels on a pool, or
 * an OpenCL device) with input and output buffers. */
struct runner {
	struct dnn_cl *cl;
	struct dnn_engine *engine;
	struct dnn_lplan *plan;
	float *input, *output;
};

static int
runner_open(const struct dnn_model *m, const struct model_opts *o, struct runner *r)
{
	char *cause = NULL, cache[512];

	memset(r, 0, sizeof(*r));
	r->input = malloc(dnn_model_input_size(m) * sizeof(float));
	r->output = malloc(dnn_model_output_size(m) * sizeof(float));
	if (r->input == NULL || r->output == NULL) {
		cli_error("out of memory");
		return -1;
	}
	if (o->device >= 0) {
		if ((r->cl = dnn_cl_open((unsigned)o->device, pol_cache_dir(cache, sizeof(cache)), &cause)) != NULL)
			r->engine = dnn_engine_opencl(m, r->cl, &cause);
	} else {
		r->engine = dnn_engine_cpu(m, (unsigned)o->threads, o->cpuset, o->kernels, &cause);
	}
	if (r->engine == NULL) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	if (o->plan != NULL) {
		if ((r->plan = dnn_lplan_load(m, o->plan, &cause)) == NULL ||
		    dnn_engine_set_lplan(r->engine, r->plan, &cause) != 0) {
			cli_error("%s", cause);
			free(cause);
			return -1;
		}
	}
	return 0;
}

/* One inference at g on r->input; timing (OpenCL only) may be NULL. */
static int
runner_run(struct runner *r, unsigned g, struct dnn_cl_timing *timing)
{
	char *cause = NULL;

	if (dnn_engine_run(r->engine, g, r->input, r->output, timing, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	return 0;
}

static const char *
runner_engine(const struct runner *r, const struct model_opts *o, char *buf, size_t size)
{
	if (r->cl != NULL) {
		const struct dnn_cl_info *info = dnn_cl_get_info(r->cl);
		snprintf(buf, size, "opencl:%u (%s, %s)", info->index, info->device_name, info->platform_name);
	} else if (o->plan != NULL) {
		snprintf(buf, size, "plan %s", o->plan);
	} else {
		snprintf(buf, size, "%s kernels", dnn_kernels_name(o->kernels));
	}
	return buf;
}

static void
runner_close(struct runner *r)
{
	dnn_engine_free(r->engine);
	dnn_lplan_free(r->plan);
	dnn_cl_close(r->cl);
	free(r->input);
	free(r->output);
}

static int
check_images(const struct dnn_model *m, const struct dataset *ds, const char *where)
{
	unsigned c, h, w;

	dnn_model_input_shape(m, &c, &h, &w);
	if (ds->channels == c && ds->height == h && ds->width == w)
		return 0;
	cli_error("%s: images are %ux%ux%u but %s expects %ux%ux%u", where, ds->channels, ds->height, ds->width,
	          dnn_model_name(m), c, h, w);
	return -1;
}

static int
model_eval(const struct dnn_model *m, const struct model_opts *o)
{
	struct dataset ds;
	struct runner r;
	unsigned first, last, classes = dnn_model_classes(m);
	size_t n, correct[DNN_MAX_GROUPS + 1] = { 0 }, plane = dnn_model_input_size(m);
	char *cause = NULL, engine[300];
	bool progress = isatty(STDERR_FILENO) && !o->json;
	double t0 = monotonic_us();
	int ret = 1;

	if (o->dataset == NULL) {
		cli_error("model eval needs --dataset DIR (e.g. /usr/share/datasets/fashion-mnist)");
		return EXIT_USAGE;
	}
	if (cli_parse_groups(o->groups, dnn_model_groups(m), &first, &last) != 0)
		return EXIT_USAGE;
	if (dataset_open(&ds, o->dataset, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		dataset_close(&ds);
		return 1;
	}
	memset(&r, 0, sizeof(r));
	if (check_images(m, &ds, o->dataset) != 0)
		goto out;
	for (size_t i = 0; i < ds.count; i++) {
		if (ds.labels[i] >= classes) {
			cli_error("%s: image %zu has label %u but the model has %u classes", o->dataset, i, ds.labels[i], classes);
			goto out;
		}
	}
	n = o->limit && o->limit < ds.count ? o->limit : ds.count;
	if (runner_open(m, o, &r) != 0)
		goto out;
	for (size_t i = 0; i < n; i++) {
		dnn_model_normalize_u8(m, ds.pixels + i * plane, r.input);
		for (unsigned g = first; g <= last; g++) {
			if (runner_run(&r, g, NULL) != 0)
				goto out;
			correct[g] += argmax(r.output, classes) == ds.labels[i];
		}
		if (progress && (i + 1) % 500 == 0) {
			double el = (monotonic_us() - t0) / 1e6;
			fprintf(stderr, "\r  %zu/%zu images, %.0f s elapsed, about %.0f s left ", i + 1, n, el,
			        el / (double)(i + 1) * (double)(n - i - 1));
		}
	}
	if (progress)
		fputs("\r\033[K", stderr);

	if (o->json) {
		struct json_object *root = json_object_new_object(), *groups = json_object_new_array();
		json_object_object_add(root, "model", json_object_new_string(dnn_model_name(m)));
		json_object_object_add(root, "dataset", json_object_new_string(ds.description));
		json_object_object_add(root, "engine", json_object_new_string(runner_engine(&r, o, engine, sizeof(engine))));
		for (unsigned g = first; g <= last; g++) {
			struct json_object *go = json_object_new_object();
			json_object_object_add(go, "active", json_object_new_int((int)g));
			json_object_object_add(go, "accuracy", json_object_new_double((double)correct[g] / (double)n));
			json_object_object_add(go, "samples", json_object_new_int64((int64_t)n));
			json_object_array_add(groups, go);
		}
		json_object_object_add(root, "groups", groups);
		print_json(root);
	} else {
		printf("%s on %s, %zu images, %s\n\n%-3s %10s %10s %14s\n", dnn_model_name(m), ds.description, n,
		       runner_engine(&r, o, engine, sizeof(engine)), "g", "top-1", "correct", "file says");
		for (unsigned g = first; g <= last; g++) {
			double acc = dnn_model_accuracy(m, g);
			char accs[16] = "-";
			if (acc >= 0)
				snprintf(accs, sizeof(accs), "%.2f%%", 100.0 * acc);
			printf("%-3u %9.2f%% %10zu %14s\n", g, 100.0 * (double)correct[g] / (double)n, correct[g], accs);
		}
	}
	ret = 0;
out:
	free(cause);
	runner_close(&r);
	dataset_close(&ds);
	return ret;
}

/* ------------------------------------------------------------------------ */

struct bench_result {
	unsigned g;
	double min_us, median_us, p99_us, mean_us;
	/* OpenCL: medians of the device's profiling times */
	double upload_us, kernel_us, download_us;
};

/* Time `iterations` runs at g after `warmup`; on OpenCL also the medians of
 * transfer and kernel time. */
static int
bench_one(struct runner *r, const struct model_opts *o, unsigned g, double *samples, double *parts[3],
          struct bench_result *res)
{
	struct dnn_cl_timing t;
	double sum = 0;

	for (unsigned long i = 0; i < o->warmup; i++)
		if (runner_run(r, g, NULL) != 0)
			return -1;
	for (unsigned long i = 0; i < o->iterations; i++) {
		double t0 = monotonic_us();
		if (runner_run(r, g, r->cl != NULL ? &t : NULL) != 0)
			return -1;
		samples[i] = monotonic_us() - t0;
		sum += samples[i];
		if (r->cl != NULL) {
			parts[0][i] = t.upload_us;
			parts[1][i] = t.kernel_us;
			parts[2][i] = t.download_us;
		}
	}
	memset(res, 0, sizeof(*res));
	res->g = g;
	res->mean_us = sum / (double)o->iterations;
	res->min_us = cli_quantile(samples, o->iterations, 0.0);
	res->median_us = cli_quantile(samples, o->iterations, 0.5);
	res->p99_us = cli_quantile(samples, o->iterations, 0.99);
	if (r->cl != NULL) {
		res->upload_us = cli_quantile(parts[0], o->iterations, 0.5);
		res->kernel_us = cli_quantile(parts[1], o->iterations, 0.5);
		res->download_us = cli_quantile(parts[2], o->iterations, 0.5);
	}
	return 0;
}

static void
bench_print_json(const struct dnn_model *m, const struct model_opts *o, const struct runner *r,
                 const struct bench_result *res, unsigned nres)
{
	struct json_object *root = json_object_new_object(), *groups = json_object_new_array();
	char engine[300];

	json_object_object_add(root, "model", json_object_new_string(dnn_model_name(m)));
	json_object_object_add(root, "kernels", json_object_new_string(r->cl ? "opencl" : dnn_kernels_name(o->kernels)));
	json_object_object_add(root, "kernels_isa", !r->cl && o->kernels == DNN_KERNELS_FAST
	                                                    ? json_object_new_string(dnn_kernels_isa())
	                                                    : NULL);
	json_object_object_add(root, "engine", json_object_new_string(runner_engine(r, o, engine, sizeof(engine))));
	json_object_object_add(root, "iterations", json_object_new_int64((int64_t)o->iterations));
	for (unsigned i = 0; i < nres; i++) {
		struct json_object *go = json_object_new_object();
		json_object_object_add(go, "active", json_object_new_int((int)res[i].g));
		json_object_object_add(go, "threads", json_object_new_int(r->cl ? 0 : (int)o->threads));
		json_object_object_add(go, "min_us", json_object_new_double(res[i].min_us));
		json_object_object_add(go, "median_us", json_object_new_double(res[i].median_us));
		json_object_object_add(go, "p99_us", json_object_new_double(res[i].p99_us));
		json_object_object_add(go, "throughput_per_s", json_object_new_double(1e6 / res[i].mean_us));
		json_object_object_add(go, "macs", json_object_new_int64((int64_t)dnn_model_macs(m, res[i].g)));
		if (r->cl != NULL) {
			json_object_object_add(go, "upload_us", json_object_new_double(res[i].upload_us));
			json_object_object_add(go, "kernel_us", json_object_new_double(res[i].kernel_us));
			json_object_object_add(go, "download_us", json_object_new_double(res[i].download_us));
		}
		json_object_array_add(groups, go);
	}
	json_object_object_add(root, "groups", groups);
	print_json(root);
}

static void
bench_print_table(const struct dnn_model *m, const struct model_opts *o, const struct runner *r,
                  const struct bench_result *res, unsigned nres)
{
	char engine[300];

	if (r->cl != NULL)
		printf("%s on %s, %lu runs after %lu warm-up\n(upload, kernels and download are medians of the device's "
		       "profiling times; the rest of the median is launch and wait overhead)\n\n"
		       "%-3s %10s %10s %10s %10s %10s %10s\n",
		       dnn_model_name(m), runner_engine(r, o, engine, sizeof(engine)), o->iterations, o->warmup, "g",
		       "median us", "p99 us", "upload us", "kernels us", "download us", "GFLOP/s");
	else
		printf("%s, %s, %lu thread%s, %lu runs after %lu warm-up\n\n%-3s %10s %10s %10s %12s %10s\n",
		       dnn_model_name(m), runner_engine(r, o, engine, sizeof(engine)), o->threads,
		       o->threads == 1 ? "" : "s", o->iterations, o->warmup, "g", "min us", "median us", "p99 us",
		       "inferences/s", "GFLOP/s");
	for (unsigned i = 0; i < nres; i++) {
		double gflops = 2.0 * (double)dnn_model_macs(m, res[i].g) / res[i].median_us / 1e3;
		if (r->cl != NULL)
			printf("%-3u %10.1f %10.1f %10.1f %10.1f %11.1f %10.2f\n", res[i].g, res[i].median_us, res[i].p99_us,
			       res[i].upload_us, res[i].kernel_us, res[i].download_us, gflops);
		else
			printf("%-3u %10.1f %10.1f %10.1f %12.1f %10.2f\n", res[i].g, res[i].min_us, res[i].median_us,
			       res[i].p99_us, 1e6 / res[i].mean_us, gflops);
	}
	if (nres > 1)
		printf("\ntime dynamic range t(g=%u)/t(g=%u) = %.2fx (median)\n", res[nres - 1].g, res[0].g,
		       res[nres - 1].median_us / res[0].median_us);
}

static int
model_bench(const struct dnn_model *m, const struct model_opts *o)
{
	struct runner r;
	struct bench_result res[DNN_MAX_GROUPS];
	unsigned first, last, nres = 0;
	size_t in_n = dnn_model_input_size(m);
	double *samples = malloc(4 * o->iterations * sizeof(double));
	double *parts[3] = { samples + o->iterations, samples + 2 * o->iterations, samples + 3 * o->iterations };
	int ret = 1;
	uint32_t seed = 12345;

	memset(&r, 0, sizeof(r));
	if (cli_parse_groups(o->groups, dnn_model_groups(m), &first, &last) != 0) {
		ret = EXIT_USAGE;
		goto out;
	}
	if (samples == NULL || runner_open(m, o, &r) != 0)
		goto out;
	/* A fixed pseudo-random input: timing does not depend on the values. */
	for (size_t i = 0; i < in_n; i++) {
		seed = seed * 1664525u + 1013904223u;
		r.input[i] = (float)(seed >> 8) / 16777216.0f - 0.5f;
	}
	for (unsigned g = first; g <= last; g++)
		if (bench_one(&r, o, g, samples, parts, &res[nres++]) != 0)
			goto out;
	if (o->json)
		bench_print_json(m, o, &r, res, nres);
	else
		bench_print_table(m, o, &r, res, nres);
	ret = 0;
out:
	runner_close(&r);
	free(samples);
	return ret;
}

/* ------------------------------------------------------------------------ */

/* Classify images and print the network's outputs: for users, and for the
 * PyTorch parity test (tools/gearbox_torch.py logits). */
static int
model_run(const struct dnn_model *m, const struct model_opts *o)
{
	struct dataset ds;
	struct runner r;
	unsigned first, last, classes = dnn_model_classes(m);
	char *cause = NULL;
	size_t plane = dnn_model_input_size(m);
	int ret = 1;

	if (o->idx == NULL) {
		cli_error("model run needs --idx IMAGES (an IDX image file)");
		return EXIT_USAGE;
	}
	if (cli_parse_groups(o->groups, dnn_model_groups(m), &first, &last) != 0)
		return EXIT_USAGE;
	if (dataset_read_idx_images(&ds, o->idx, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		return 1;
	}
	memset(&r, 0, sizeof(r));
	if (check_images(m, &ds, o->idx) != 0)
		goto out;
	if (o->index + o->count > ds.count) {
		cli_error("%s has %zu images: --index %lu --count %lu is past the end", o->idx, ds.count, o->index, o->count);
		goto out;
	}
	if (runner_open(m, o, &r) != 0)
		goto out;
	for (size_t i = o->index; i < o->index + o->count; i++) {
		const float *output = r.output;
		dnn_model_normalize_u8(m, ds.pixels + i * plane, r.input);
		for (unsigned g = first; g <= last; g++) {
			unsigned best;
			if (runner_run(&r, g, NULL) != 0)
				goto out;
			best = argmax(output, classes);
			if (o->json) {
				struct json_object *row = json_object_new_object(), *outs = json_object_new_array();
				for (unsigned k = 0; k < classes; k++)
					json_object_array_add(outs, json_object_new_double((double)output[k]));
				json_object_object_add(row, "image", json_object_new_int64((int64_t)i));
				json_object_object_add(row, "groups", json_object_new_int((int)g));
				json_object_object_add(row, "class", json_object_new_int((int)best));
				json_object_object_add(row, "label", json_object_new_string(dnn_model_label(m, best)));
				json_object_object_add(row, "outputs", outs);
				puts(json_object_to_json_string_ext(row, JSON_C_TO_STRING_PLAIN));
				json_object_put(row);
			} else {
				printf("image %zu, g=%u: class %u (%s), score %.4f\n", i, g, best, dnn_model_label(m, best),
				       (double)output[best]);
			}
		}
	}
	ret = 0;
out:
	free(cause);
	runner_close(&r);
	dataset_close(&ds);
	return ret;
}

/* --cluster: the governor names the CPUs; dnn/ is only given a cpuset. */
static int
cluster_cpuset(struct model_opts *o)
{
	char *cause = NULL;
	struct gov_platform *p = gov_platform_discover(NULL, &cause);
	struct gov_cluster *c;

	if (p == NULL) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	if ((c = gov_find_cluster(p, o->cluster)) == NULL) {
		cli_error("no cluster '%s' (see 'gearbox platform')", o->cluster);
		gov_platform_free(p);
		return -1;
	}
	o->cpuset = gov_cluster_cpuset(c, (unsigned)o->threads);
	gov_platform_free(p);
	return 0;
}

int
cmd_model(int argc, char **argv)
{
	struct model_opts o;
	struct dnn_model *m;
	const char *verb, *file;
	char *cause = NULL;
	int ret;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		model_usage(argc < 2 ? stderr : stdout, NULL);
		return argc < 2 ? EXIT_USAGE : 0;
	}
	verb = argv[1];
	if (strcmp(verb, "info") != 0 && strcmp(verb, "eval") != 0 && strcmp(verb, "bench") != 0 &&
	    strcmp(verb, "run") != 0) {
		cli_error("unknown model command '%s' (info, eval, run, bench)", verb);
		return EXIT_USAGE;
	}
	if (parse_model_opts(argc - 1, argv + 1, &o, &file) != 0) {
		hwloc_bitmap_free(o.cpuset);
		return EXIT_USAGE;
	}
	if (o.cluster != NULL && cluster_cpuset(&o) != 0)
		return EXIT_USAGE;
	if ((m = dnn_model_load(file, &cause)) == NULL) {
		cli_error("%s", cause ? cause : "cannot load model");
		free(cause);
		hwloc_bitmap_free(o.cpuset);
		return 1;
	}
	if (strcmp(verb, "info") == 0)
		ret = model_info(m, &o);
	else if (strcmp(verb, "eval") == 0)
		ret = model_eval(m, &o);
	else if (strcmp(verb, "run") == 0)
		ret = model_run(m, &o);
	else
		ret = model_bench(m, &o);
	dnn_model_free(m);
	hwloc_bitmap_free(o.cpuset);
	return ret;
}
