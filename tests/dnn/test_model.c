/* SPDX-License-Identifier: MIT */
/* Loader tests: a valid model loads with the right facts; every kind of
 * malformed file is refused with a message naming the problem, never a crash. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "dnn/dnn.h"
#include "dnn/internal.h"
#include "tests/common/modelgen.h"

static char tmpdir[] = "/tmp/gearbox-test-model-XXXXXX";

static char *
tmp_path(const char *name)
{
	static char path[256];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	return path;
}

/* A minimal valid model: conv (dense in, G=2 out) -> relu -> flatten ->
 * linear classifier. Tensors are described by `tensors` (a JSON fragment)
 * and the graph by `graph`; data is `data_bytes` of small floats. */
#define GOOD_TENSORS                                                              \
	"\"c.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,3,3],\"data_offsets\":[0,72]}," \
	"\"c.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[72,80]},"        \
	"\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,32],\"data_offsets\":[80,336]}," \
	"\"fc.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[336,344]}"
#define GOOD_LAYERS                                                                           \
	"[{\"type\":\"conv2d\",\"name\":\"c\",\"out_channels\":2,\"kernel\":3,\"padding\":1},"     \
	"{\"type\":\"relu\"},{\"type\":\"flatten\"},{\"type\":\"linear\",\"name\":\"fc\",\"out_features\":2}]"
#define GRAPH(groups, layers) \
	"{\"name\":\"mini\",\"groups\":" groups ",\"input\":{\"shape\":[1,4,4]},\"labels\":[\"a\",\"b\"],\"layers\":" layers "}"
#define GOOD_GRAPH GRAPH("2", GOOD_LAYERS)

static const char *
write_case(const char *name, const char *tensors, const char *graph, size_t data_bytes)
{
	struct json_object *meta = json_object_new_object();
	char *header;
	float *data = calloc(1, data_bytes + 4);
	const char *path = tmp_path(name);

	json_object_object_add(meta, "format", json_object_new_string("gearbox-dnn"));
	json_object_object_add(meta, "format_version", json_object_new_string("1"));
	json_object_object_add(meta, "graph", json_object_new_string(graph));
	ck_assert_int_ne(asprintf(&header, "{%s%s\"__metadata__\":%s}", tensors, *tensors ? "," : "",
	                          json_object_to_json_string_ext(meta, JSON_C_TO_STRING_PLAIN)), -1);
	for (size_t i = 0; i < data_bytes / 4; i++)
		data[i] = 0.01f * (float)(i % 7);
	ck_assert_int_eq(mg_write_raw(path, header, data, data_bytes), 0);
	free(header);
	free(data);
	json_object_put(meta);
	return path;
}

/* Load must fail and the message must name the file and contain `expect`. */
static void
expect_refused(const char *path, const char *expect)
{
	char *cause = NULL;
	struct dnn_model *m = dnn_model_load(path, &cause);

	ck_assert_msg(m == NULL, "%s loaded but should be refused (%s)", path, expect);
	ck_assert_ptr_nonnull(cause);
	ck_assert_msg(strstr(cause, path) != NULL, "message does not name the file: %s", cause);
	ck_assert_msg(strstr(cause, expect) != NULL, "message '%s' does not say '%s'", cause, expect);
	free(cause);
}

START_TEST(test_good_model_loads)
{
	char *cause = NULL;
	const char *path = write_case("good.st", GOOD_TENSORS, GOOD_GRAPH, 344);
	struct dnn_model *m = dnn_model_load(path, &cause);
	unsigned c, h, w;

	ck_assert_msg(m != NULL, "valid model refused: %s", cause);
	ck_assert_uint_eq(dnn_model_groups(m), 2);
	ck_assert_uint_eq(dnn_model_classes(m), 2);
	ck_assert_str_eq(dnn_model_label(m, 1), "b");
	dnn_model_input_shape(m, &c, &h, &w);
	ck_assert_uint_eq(c * 100 + h * 10 + w, 144);
	ck_assert_uint_eq(dnn_model_layer_count(m), 4);
	/* g=1: conv 1 channel of 9 weights + bias, fc 2x16 + 2 biases. */
	ck_assert_uint_eq(dnn_model_params(m, 1), 9 + 1 + 32 + 2);
	ck_assert_uint_eq(dnn_model_params(m, 2), 18 + 2 + 64 + 2);
	ck_assert_uint_eq(dnn_model_macs(m, 2), 2 * 16 * 9 + 2 * 32);
	ck_assert(dnn_model_accuracy(m, 1) < 0);
	/* Weights are read where they lie in the read-only mapping. */
	ck_assert(m->layers[0].weight == (const float *)((const char *)m->map + m->map_size - 344));
	dnn_model_free(m);
}
END_TEST

START_TEST(test_missing_file)
{
	expect_refused(tmp_path("does-not-exist.st"), "cannot open");
}
END_TEST

START_TEST(test_shorter_than_length)
{
	const char *path = tmp_path("short.st");
	FILE *f = fopen(path, "wb");
	fwrite("\x10\x00\x00", 1, 3, f);
	fclose(f);
	expect_refused(path, "shorter than the 8-byte header length");
}
END_TEST

START_TEST(test_header_past_end)
{
	const char *path = tmp_path("pastend.st");
	FILE *f = fopen(path, "wb");
	fwrite("\x00\x01\x00\x00\x00\x00\x00\x00{}", 1, 10, f);
	fclose(f);
	expect_refused(path, "runs past the end of the file");
}
END_TEST

START_TEST(test_absurd_header_length)
{
	const char *path = tmp_path("huge.st");
	FILE *f = fopen(path, "wb");
	fwrite("\xff\xff\xff\xff\xff\xff\xff\x7f{}", 1, 10, f);
	fclose(f);
	expect_refused(path, "runs past the end");
}
END_TEST

START_TEST(test_bad_json)
{
	const char *path = tmp_path("badjson.st");
	ck_assert_int_eq(mg_write_raw(path, "{\"a\": [1, 2", NULL, 0), 0);
	expect_refused(path, "header is not valid JSON");
}
END_TEST

START_TEST(test_header_not_object)
{
	ck_assert_int_eq(mg_write_raw(tmp_path("array.st"), "[1, 2, 3]", NULL, 0), 0);
	expect_refused(tmp_path("array.st"), "not a JSON object");
}
END_TEST

START_TEST(test_no_metadata)
{
	ck_assert_int_eq(mg_write_raw(tmp_path("nometa.st"), "{" GOOD_TENSORS "}", NULL, 0), 0);
	expect_refused(tmp_path("nometa.st"), "out of range");
	ck_assert_int_eq(mg_write_raw(tmp_path("nometa2.st"), "{}", NULL, 0), 0);
	expect_refused(tmp_path("nometa2.st"), "no '__metadata__'");
}
END_TEST

START_TEST(test_bad_graph_json)
{
	expect_refused(write_case("badgraph.st", GOOD_TENSORS, "{\"groups\": 2,", 344), "'graph' is not valid JSON");
}
END_TEST

START_TEST(test_offsets_out_of_range)
{
	/* Only 300 bytes of data: fc.weight ends at 336. */
	expect_refused(write_case("range.st", GOOD_TENSORS, GOOD_GRAPH, 300), "out of range");
}
END_TEST

START_TEST(test_truncated_file)
{
	const char *path = write_case("trunc.st", GOOD_TENSORS, GOOD_GRAPH, 344);
	struct stat st;
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(truncate(path, st.st_size - 10), 0);
	expect_refused(path, "out of range (data section is 334 bytes)");
}
END_TEST

START_TEST(test_overlap)
{
	const char *t = "\"c.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,3,3],\"data_offsets\":[0,72]},"
	                "\"c.bias\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[64,72]},"
	                "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,32],\"data_offsets\":[80,336]}";
	expect_refused(write_case("overlap.st", t, GOOD_GRAPH, 344), "overlap");
}
END_TEST

START_TEST(test_dtype)
{
	const char *t = "\"c.weight\":{\"dtype\":\"F16\",\"shape\":[2,1,3,3],\"data_offsets\":[0,36]}";
	expect_refused(write_case("f16.st", t, GOOD_GRAPH, 344), "tensor 'c.weight': dtype 'F16' is not supported");
}
END_TEST

START_TEST(test_span_mismatch)
{
	const char *t = "\"c.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,3,3],\"data_offsets\":[0,68]}";
	expect_refused(write_case("span.st", t, GOOD_GRAPH, 344), "span 68 bytes but the shape needs 72");
}
END_TEST

START_TEST(test_misaligned)
{
	const char *t = "\"c.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,3,3],\"data_offsets\":[2,74]}";
	expect_refused(write_case("align.st", t, GOOD_GRAPH, 344), "not 4-byte aligned");
}
END_TEST

START_TEST(test_shape_mismatch)
{
	const char *t = "\"c.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,5,5],\"data_offsets\":[0,200]},"
	                "\"fc.weight\":{\"dtype\":\"F32\",\"shape\":[2,32],\"data_offsets\":[200,456]}";
	expect_refused(write_case("shape.st", t, GOOD_GRAPH, 456),
	               "tensor 'c.weight': shape [2,1,5,5] does not match the graph (layer 0 'c' expects [2,1,3,3]");
}
END_TEST

START_TEST(test_groups_do_not_divide)
{
	expect_refused(write_case("div.st", GOOD_TENSORS, GRAPH("3", GOOD_LAYERS), 344),
	               "G=3 groups do not divide its 2 output channels");
}
END_TEST

START_TEST(test_absurd_dimensions)
{
	const char *t = "\"c.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,3,99999999999],\"data_offsets\":[0,72]}";
	expect_refused(write_case("absurd.st", t, GOOD_GRAPH, 344), "is absurd");
	expect_refused(write_case("absurd2.st", GOOD_TENSORS,
	                          "{\"groups\":2,\"input\":{\"shape\":[1,4,100000]},\"labels\":[\"a\"],\"layers\":[]}", 344),
	               "shape[2] must be a positive integer no larger than");
	expect_refused(write_case("absurd3.st", GOOD_TENSORS, GRAPH("1000", GOOD_LAYERS), 344), "'groups' = 1000 is absurd");
}
END_TEST

START_TEST(test_missing_tensor)
{
	const char *t = "\"c.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,3,3],\"data_offsets\":[0,72]}";
	expect_refused(write_case("missing.st", t, GOOD_GRAPH, 344), "layer 3 'fc': weight tensor 'fc.weight' is not in the file");
}
END_TEST

START_TEST(test_unknown_layer)
{
	expect_refused(write_case("unknown.st", GOOD_TENSORS, GRAPH("2", "[{\"type\":\"lstm\"}]"), 344),
	               "layers[0] has unknown type 'lstm'");
}
END_TEST

START_TEST(test_bad_connectivity)
{
#define LAYERS_GROUPED_FIRST                                                                              \
	"[{\"type\":\"conv2d\",\"name\":\"c\",\"out_channels\":2,\"kernel\":3,\"padding\":1,"                       \
	"\"connectivity\":\"grouped\"},{\"type\":\"flatten\"},{\"type\":\"linear\",\"name\":\"fc\",\"out_features\":2}]"
	expect_refused(write_case("conn.st", GOOD_TENSORS, GRAPH("2", LAYERS_GROUPED_FIRST), 344),
	               "the first weighted layer must have dense connectivity");
}
END_TEST

START_TEST(test_classes_mismatch)
{
	expect_refused(write_case("classes.st", GOOD_TENSORS,
	                          "{\"groups\":2,\"input\":{\"shape\":[1,4,4]},\"labels\":[\"a\",\"b\",\"c\"],\"layers\":" GOOD_LAYERS "}",
	                          344),
	               "ends in 2x1x1 values but there are 3 labels");
}
END_TEST

START_TEST(test_linear_needs_flat)
{
#define LAYERS_NO_FLATTEN                                                                     \
	"[{\"type\":\"conv2d\",\"name\":\"c\",\"out_channels\":2,\"kernel\":3,\"padding\":1},"         \
	"{\"type\":\"linear\",\"name\":\"fc\",\"out_features\":2}]"
	expect_refused(write_case("flat.st", GOOD_TENSORS, GRAPH("2", LAYERS_NO_FLATTEN), 344), "add a flatten layer");
}
END_TEST

START_TEST(test_bad_accuracy)
{
	expect_refused(write_case("acc.st", GOOD_TENSORS,
	                          "{\"groups\":2,\"accuracy\":[0.5,1.5],\"input\":{\"shape\":[1,4,4]},\"labels\":[\"a\",\"b\"],"
	                          "\"layers\":" GOOD_LAYERS "}", 344),
	               "accuracy[1] = 1.5 is outside [0, 1]");
}
END_TEST

/* Every truncation of a valid file, and every single-byte corruption of its
 * header, must either load or be refused with a message: never crash. */
START_TEST(test_truncation_and_corruption_sweep)
{
	const char *good = tmp_path("sweep-src.st"), *cut = tmp_path("sweep.st");
	const struct mg_spec *spec = mg_arch("tiny");
	FILE *f;
	unsigned char *bytes;
	long size;
	size_t header_end;

	ck_assert_int_eq(mg_write(spec, good, 0), 0);
	f = fopen(good, "rb");
	fseek(f, 0, SEEK_END);
	size = ftell(f);
	rewind(f);
	bytes = malloc((size_t)size);
	ck_assert_int_eq(fread(bytes, 1, (size_t)size, f), (size_t)size);
	fclose(f);
	header_end = 8 + (bytes[0] | (size_t)bytes[1] << 8 | (size_t)bytes[2] << 16);

	for (long len = 0; len < size; len += (len < (long)header_end + 16 ? 1 : 97)) {
		char *cause = NULL;
		struct dnn_model *m;
		f = fopen(cut, "wb");
		fwrite(bytes, 1, (size_t)len, f);
		fclose(f);
		m = dnn_model_load(cut, &cause);
		ck_assert_msg(m == NULL, "truncated to %ld of %ld bytes but loaded", len, size);
		ck_assert_ptr_nonnull(cause);
		free(cause);
	}
	for (size_t pos = 8; pos < header_end; pos += 3) {
		static const unsigned char junk[] = { '"', '}', '9', '-', 0xff, ' ' };
		unsigned char saved = bytes[pos];
		char *cause = NULL;
		struct dnn_model *m;
		bytes[pos] = junk[pos % sizeof(junk)];
		f = fopen(cut, "wb");
		fwrite(bytes, 1, (size_t)size, f);
		fclose(f);
		bytes[pos] = saved;
		m = dnn_model_load(cut, &cause);
		ck_assert_msg(m != NULL || cause != NULL, "corruption at %zu: refused without a message", pos);
		dnn_model_free(m);
		free(cause);
	}
	free(bytes);
}
END_TEST

static Suite *
model_suite(void)
{
	Suite *s = suite_create("dnn-model");
	TCase *tc = tcase_create("loader");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_good_model_loads);
	tcase_add_test(tc, test_missing_file);
	tcase_add_test(tc, test_shorter_than_length);
	tcase_add_test(tc, test_header_past_end);
	tcase_add_test(tc, test_absurd_header_length);
	tcase_add_test(tc, test_bad_json);
	tcase_add_test(tc, test_header_not_object);
	tcase_add_test(tc, test_no_metadata);
	tcase_add_test(tc, test_bad_graph_json);
	tcase_add_test(tc, test_offsets_out_of_range);
	tcase_add_test(tc, test_truncated_file);
	tcase_add_test(tc, test_overlap);
	tcase_add_test(tc, test_dtype);
	tcase_add_test(tc, test_span_mismatch);
	tcase_add_test(tc, test_misaligned);
	tcase_add_test(tc, test_shape_mismatch);
	tcase_add_test(tc, test_groups_do_not_divide);
	tcase_add_test(tc, test_absurd_dimensions);
	tcase_add_test(tc, test_missing_tensor);
	tcase_add_test(tc, test_unknown_layer);
	tcase_add_test(tc, test_bad_connectivity);
	tcase_add_test(tc, test_classes_mismatch);
	tcase_add_test(tc, test_linear_needs_flat);
	tcase_add_test(tc, test_bad_accuracy);
	tcase_add_test(tc, test_truncation_and_corruption_sweep);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite_in_tmpdir(model_suite(), tmpdir);
}
