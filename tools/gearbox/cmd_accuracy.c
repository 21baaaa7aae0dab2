/* SPDX-License-Identifier: MIT */
/* gearbox accuracy MODEL --dataset DIR: the accuracy predictor for mixed
 * int8/fp32 plans (policies/accuracy.h). Measures each weighted layer's
 * sensitivity once (top-1 drop when only that layer runs int8, per g) on
 * the first N test images, writes it (--out), and validates the additive
 * prediction against held-out plans (random int8/fp32 mixes, not the
 * single-layer ones it was fitted on) measured on the same images. */
#include "config.h"

#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include "common/dataset.h"
#include "dnn/dnn.h"
#include "policies/accuracy.h"
#include "tools/gearbox/cli.h"

static void
usage(FILE *out)
{
	fputs("Usage: gearbox accuracy MODEL --dataset DIR [OPTIONS]\n"
	      "\n"
	      "Per-layer int8 sensitivity (top-1 drop when only that layer is quantised, per g),\n"
	      "and the additive predictor's error on held-out mixed int8/fp32 plans.\n"
	      "\n"
	      "  --dataset DIR       Fashion-MNIST IDX folder (test set; calibration from its train set)\n"
	      "  --images N          test images evaluated per plan (default 2000)\n"
	      "  --out FILE          write the sensitivity file\n"
	      "  --sensitivity FILE  use this sensitivity file instead of measuring it\n"
	      "  --validate N        held-out plans per g (default 8, 0: none)\n"
	      "  --seed N            for the held-out plans (default 7)\n"
	      "  --json              one JSON object\n",
	      out);
}

struct ctx {
	const struct dnn_model *m;
	struct dnn_engine *engine;
	struct dnn_lplan *plan;
	const struct dataset *ds;
	size_t n;
	float *in, *out;
	unsigned slots[ACC_MAX_LAYERS], nslots;
};

/* Top-1 on the first n images at g with int8[k] for slot k. */
static double
measure(struct ctx *c, unsigned g, const bool *int8)
{
	size_t plane = dnn_model_input_size(c->m), correct = 0;
	unsigned classes = dnn_model_classes(c->m);
	char *cause = NULL;

	for (unsigned k = 0; k < c->nslots; k++)
		dnn_lplan_set(c->plan, c->m, g, c->slots[k], int8[k] ? DNN_IMPL_INT8 : DNN_IMPL_AUTO);
	if (dnn_engine_set_lplan(c->engine, c->plan, &cause) != 0) {
		cli_error("%s", cause);
		free(cause);
		return -1;
	}
	for (size_t i = 0; i < c->n; i++) {
		unsigned best = 0;
		dnn_model_normalize_u8(c->m, c->ds->pixels + i * plane, c->in);
		dnn_engine_run(c->engine, g, c->in, c->out, NULL, NULL);
		for (unsigned k = 1; k < classes; k++)
			if (c->out[k] > c->out[best])
				best = k;
		correct += best == c->ds->labels[i];
	}
	return (double)correct / (double)c->n;
}

static float *
calibration(const struct dnn_model *m, const char *dir, size_t *count)
{
	char path[1100], *cause = NULL;
	struct dataset tr;
	size_t plane = dnn_model_input_size(m);
	float *in;

	memset(&tr, 0, sizeof(tr));
	snprintf(path, sizeof(path), "%s/train-images-idx3-ubyte.gz", dir);
	if (access(path, R_OK) != 0)
		snprintf(path, sizeof(path), "%s/train-images-idx3-ubyte", dir);
	if (dataset_read_idx_images(&tr, path, &cause) != 0) {
		cli_error("calibration: %s", cause);
		free(cause);
		dataset_close(&tr);
		return NULL;
	}
	*count = tr.count < 256 ? tr.count : 256; /* as gearbox tune */
	if ((in = malloc(*count * plane * sizeof(float))) != NULL)
		for (size_t i = 0; i < *count; i++)
			dnn_model_normalize_u8(m, tr.pixels + i * plane, in + i * plane);
	dataset_close(&tr);
	return in;
}

int
cmd_accuracy(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "dataset", required_argument, NULL, 'd' }, { "images", required_argument, NULL, 'n' },
		{ "out", required_argument, NULL, 'o' },     { "sensitivity", required_argument, NULL, 's' },
		{ "validate", required_argument, NULL, 'v' }, { "seed", required_argument, NULL, 'S' },
		{ "json", no_argument, NULL, 'j' },          { "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *dir = NULL, *outp = NULL, *sens_path = NULL;
	unsigned long images = 2000, validate = 8, seed = 7;
	bool json = false;
	static struct acc_sensitivity s;
	struct ctx c = { 0 };
	struct dataset ds;
	struct dnn_model *m = NULL;
	float *calib = NULL;
	size_t ncalib = 0;
	char *cause = NULL;
	int ch, ret = 1;
	double err_sum = 0, err_max = 0;
	unsigned err_n = 0;
	json_object *jo = json_object_new_object(), *jplans = json_object_new_array();

	memset(&ds, 0, sizeof(ds));
	optind = 1;
	while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'd': dir = optarg; break;
		case 'o': outp = optarg; break;
		case 's': sens_path = optarg; break;
		case 'j': json = true; break;
		case 'n':
			if (cli_parse_uint(optarg, 1, 1000000, &images) != 0)
				return cli_error("--images takes a count"), EXIT_USAGE;
			break;
		case 'v':
			if (cli_parse_uint(optarg, 0, 10000, &validate) != 0)
				return cli_error("--validate takes a count"), EXIT_USAGE;
			break;
		case 'S':
			if (cli_parse_uint(optarg, 0, ~0ul, &seed) != 0)
				return cli_error("--seed takes a whole number"), EXIT_USAGE;
			break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind + 1 != argc || dir == NULL)
		return usage(stderr), EXIT_USAGE;
	if ((m = dnn_model_load(argv[optind], &cause)) == NULL || dataset_open(&ds, dir, &cause) != 0)
		goto out;
	if ((calib = calibration(m, dir, &ncalib)) == NULL)
		goto out;
	c.m = m, c.ds = &ds, c.n = ds.count < images ? ds.count : images;
	if ((c.engine = dnn_engine_cpu(m, 1, NULL, DNN_KERNELS_FAST, &cause)) == NULL || (c.plan = dnn_lplan_new(m)) == NULL)
		goto out;
	c.in = calloc(dnn_model_input_size(m), sizeof(float));
	c.out = calloc(dnn_model_output_size(m), sizeof(float));
	for (size_t l = 0; l < dnn_model_layer_count(m) && c.nslots < ACC_MAX_LAYERS; l++)
		if (dnn_impl_applies(m, l, DNN_IMPL_INT8))
			c.slots[c.nslots++] = (unsigned)l;
	unsigned G = dnn_model_groups(m);
	for (unsigned g = 1; g <= G; g++)
		if (dnn_lplan_calibrate(c.plan, m, g, calib, ncalib, &cause) != 0)
			goto out;
	if (sens_path != NULL) {
		if (acc_sensitivity_load(&s, sens_path, dnn_model_fingerprint(m), &cause) != 0)
			goto out;
		if (s.nlayers != c.nslots || s.groups != G) {
			asprintf(&cause, "%s: %u layers and %u groups; the model has %u and %u", sens_path, s.nlayers, s.groups,
			         c.nslots, G);
			goto out;
		}
	} else {
		bool int8[ACC_MAX_LAYERS] = { false };
		memset(&s, 0, sizeof(s));
		snprintf(s.model, sizeof(s.model), "%s", dnn_model_name(m));
		snprintf(s.dataset, sizeof(s.dataset), "%s", ds.description ? ds.description : dir);
		s.fingerprint = dnn_model_fingerprint(m);
		s.groups = G, s.nlayers = c.nslots, s.images = (unsigned)c.n;
		for (unsigned k = 0; k < c.nslots; k++) {
			struct dnn_layer_info info;
			s.layer[k] = c.slots[k];
			if (dnn_model_layer_info(m, c.slots[k], G, &info) == 0)
				snprintf(s.name[k], sizeof(s.name[k]), "%s", info.name);
		}
		for (unsigned g = 1; g <= G; g++) {
			s.fp32[g] = measure(&c, g, int8);
			for (unsigned k = 0; k < c.nslots; k++) {
				int8[k] = true;
				s.drop[g][k] = s.fp32[g] - measure(&c, g, int8);
				int8[k] = false;
			}
			if (!json)
				fprintf(stderr, "sensitivity: g=%u measured (fp32 %.2f %%)\n", g, 100 * s.fp32[g]);
		}
		if (outp && acc_sensitivity_save(&s, outp, &cause) != 0)
			goto out;
	}
	if (!json) {
		printf("model %s: %u int8-capable layers; sensitivity on %u images of %s\n", s.model, s.nlayers, s.images,
		       s.dataset);
		printf("%-4s %8s", "g", "fp32 %");
		for (unsigned k = 0; k < s.nlayers; k++)
			printf(" %9s", s.name[k][0] ? s.name[k] : "layer");
		printf("   (top-1 drop, points, when only that layer is int8)\n");
		for (unsigned g = 1; g <= G; g++) {
			printf("%-4u %8.2f", g, 100 * s.fp32[g]);
			for (unsigned k = 0; k < s.nlayers; k++)
				printf(" %9.2f", 100 * s.drop[g][k]);
			printf("\n");
		}
	}
	/* held-out plans: random mixes of two or more int8 layers (the fitted
	 * ones have one), and all-int8 */
	uint64_t r = seed * 2654435761u + 1;
	for (unsigned g = 1; g <= G && validate > 0; g++)
		for (unsigned v = 0; v < validate; v++) {
			bool int8[ACC_MAX_LAYERS];
			unsigned on;
			do {
				on = 0;
				for (unsigned k = 0; k < s.nlayers; k++) {
					r ^= r << 13, r ^= r >> 7, r ^= r << 17;
					int8[k] = v == 0 ? true : (r >> 20) % 2;
					on += int8[k];
				}
			} while (on < 2 && s.nlayers >= 2);
			double pred = acc_predict(&s, g, int8), meas = measure(&c, g, int8), e = fabs(pred - meas) * 100;
			char mask[ACC_MAX_LAYERS + 1];
			for (unsigned k = 0; k < s.nlayers; k++)
				mask[k] = int8[k] ? '8' : 'f';
			mask[s.nlayers] = '\0';
			err_sum += e, err_n++, err_max = fmax(err_max, e);
			if (json) {
				json_object *p = json_object_new_object();
				json_object_object_add(p, "g", json_object_new_int((int)g));
				json_object_object_add(p, "layers", json_object_new_string(mask));
				json_object_object_add(p, "predicted", json_object_new_double(pred));
				json_object_object_add(p, "measured", json_object_new_double(meas));
				json_object_array_add(jplans, p);
			} else {
				printf("held-out g=%u %s (8 = int8, f = fp32): predicted %.2f %%, measured %.2f %%, error %.2f points\n",
				       g, mask, 100 * pred, 100 * meas, e);
			}
		}
	if (json) {
		json_object_object_add(jo, "model", json_object_new_string(s.model));
		json_object_object_add(jo, "images", json_object_new_int((int)c.n));
		json_object_object_add(jo, "sensitivity_images", json_object_new_int((int)s.images));
		json_object_object_add(jo, "held_out", jplans);
		jplans = NULL;
		json_object_object_add(jo, "mean_error_points", json_object_new_double(err_n ? err_sum / err_n : 0));
		json_object_object_add(jo, "max_error_points", json_object_new_double(err_max));
		json_object_object_add(jo, "plans", json_object_new_int((int)err_n));
		puts(json_object_to_json_string_ext(jo, JSON_C_TO_STRING_PLAIN));
	} else if (err_n) {
		printf("predictor error on %u held-out plans (%zu images): mean %.3f, max %.3f top-1 points\n", err_n, c.n,
		       err_sum / err_n, err_max);
	}
	ret = 0;
out:
	if (cause) {
		cli_error("%s", cause);
		free(cause);
	}
	json_object_put(jo);
	json_object_put(jplans);
	free(c.in);
	free(c.out);
	free(calib);
	if (c.plan)
		dnn_lplan_free(c.plan);
	if (c.engine)
		dnn_engine_free(c.engine);
	dataset_close(&ds);
	dnn_model_free(m);
	return ret;
}
