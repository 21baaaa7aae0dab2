/* SPDX-License-Identifier: MIT */
/* libgearbox's fast reader of the INFER reply (client/infer.c) against
 * json-c: the replies gearboxd's own writer makes (daemon/replies.c,
 * infer_reply_frame, linked in here with stand-ins for the model and the
 * connection) for many values, non-finite and extreme ones included, and
 * hand-made and mutated variants, are read into one result by
 * result_read (the fast reader, json-c where it declines) and into another
 * by result_read_json, one reply after another, and the two results must
 * be the same after each: every accessor, the done_ns handed back, the
 * return code, and, after a reply json-c refuses, the previous reply kept
 * as it was. */
#include "config.h"
#include "tests/common/check_main.h"
#include "tests/common/compare.h"

#include <check.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/gearbox.h"
#include <json-c/json.h>

#include "client/infer.h"
#include "daemon/daemon.h"
#include "daemon/log.h"

/* ---- what replies.c needs from dnn/ and the rest of gearboxd --------------- */

struct dnn_model {
	unsigned classes;
	const char *labels[16];
};

unsigned dnn_model_classes(const struct dnn_model *m) { return m->classes; }
const char *dnn_model_label(const struct dnn_model *m, unsigned cls) { return cls < m->classes ? m->labels[cls] : NULL; }
int conn_send_frame(struct conn *c, uint16_t type, uint32_t id, const void *payload, size_t len) { abort(); }
void log_msg(int priority, const char *fmt, ...) {}

/* ---- comparing -------------------------------------------------------------- */

static uint64_t rng = 0x2545f4914f6cdd1dull;

static uint64_t
next_random(void)
{
	return xorshift64(&rng);
}

static void
assert_same_result(const struct gbx_result *a, const struct gbx_result *b, const char *text)
{
	ck_assert_msg(gbx_result_class(a) == gbx_result_class(b), "%s: class %u, json-c %u", text, gbx_result_class(a),
	              gbx_result_class(b));
	ck_assert_msg(gbx_result_nscores(a) == gbx_result_nscores(b), "%s: %zu scores, json-c %zu", text,
	              gbx_result_nscores(a), gbx_result_nscores(b));
	for (size_t i = 0; i < gbx_result_nscores(a); i++)
		ck_assert_msg(memcmp(&gbx_result_scores(a)[i], &gbx_result_scores(b)[i], sizeof(float)) == 0,
		              "%s: score %zu is %.9g, json-c %.9g", text, i, (double)gbx_result_scores(a)[i],
		              (double)gbx_result_scores(b)[i]);
	ck_assert_msg(gbx_result_groups(a) == gbx_result_groups(b), "%s: groups", text);
	ck_assert_msg(gbx_result_threads(a) == gbx_result_threads(b), "%s: threads", text);
	ck_assert_msg(gbx_result_freq_khz(a) == gbx_result_freq_khz(b), "%s: freq_khz", text);
#define SAME_DOUBLE(get) \
	ck_assert_msg(same_double(get(a), get(b)), "%s: " #get " %.17g, json-c %.17g", text, get(a), get(b))
	SAME_DOUBLE(gbx_result_latency_us);
	SAME_DOUBLE(gbx_result_queue_us);
	SAME_DOUBLE(gbx_result_daemon_us);
	SAME_DOUBLE(gbx_result_predicted_us);
	SAME_DOUBLE(gbx_result_predicted_e2e_us);
	SAME_DOUBLE(gbx_result_e2e_us);
	SAME_DOUBLE(gbx_result_energy_uj);
#undef SAME_DOUBLE
#define SAME_STRING(get) \
	ck_assert_msg(strcmp(get(a), get(b)) == 0, "%s: " #get " \"%s\", json-c \"%s\"", text, get(a), get(b))
	SAME_STRING(gbx_result_label);
	SAME_STRING(gbx_result_placement);
	SAME_STRING(gbx_result_policy);
	SAME_STRING(gbx_result_energy_source);
	SAME_STRING(gbx_result_reason);
	SAME_STRING(gbx_result_fallback);
	SAME_STRING(gbx_result_json);
#undef SAME_STRING
	ck_assert_msg(gbx_result_deadline_met(a) == gbx_result_deadline_met(b), "%s: deadline_met", text);
	ck_assert_msg(gbx_result_energy_met(a) == gbx_result_energy_met(b), "%s: energy_met", text);
	ck_assert_msg(gbx_result_feasible(a) == gbx_result_feasible(b), "%s: feasible", text);
	ck_assert_msg(gbx_result_cold(a) == gbx_result_cold(b), "%s: cold", text);
}

/* Two results that have read the same replies, one by result_read, one by
 * json-c alone. */
static struct gbx_result *both[2];

static void
setup(void)
{
	both[0] = gbx_result_new();
	both[1] = gbx_result_new();
	ck_assert(both[0] != NULL && both[1] != NULL);
}

static void
teardown(void)
{
	gbx_result_free(both[0]);
	gbx_result_free(both[1]);
}

/* The next reply (len bytes of text) into both; true when the fast reader
 * took it. */
static bool
feed(const char *text, size_t len)
{
	char *pa = malloc(len + 1), *pb = malloc(len + 1), *shown = strndup(text, len);
	uint64_t da = 12345, db = 12345;
	struct gbx_result *probe = gbx_result_new();
	char *pc = malloc(len + 1);
	bool fast;
	int ra, rb;

	ck_assert(pa != NULL && pb != NULL && pc != NULL && shown != NULL && probe != NULL);
	memcpy(pa, text, len);
	memcpy(pb, text, len);
	memcpy(pc, text, len);
	pa[len] = pb[len] = pc[len] = '\0'; /* as libgearbox's frame reader leaves it */
	/* whether the fast reader takes it, on a result of its own */
	fast = result_read_fast(probe, pc, &da);
	if (!fast)
		free(pc);
	gbx_result_free(probe);
	da = 12345;
	ra = result_read(both[0], pa, &da);
	rb = result_read_json(both[1], pb, &db);
	ck_assert_msg(ra == rb, "%s: read %d, json-c %d", shown, ra, rb);
	ck_assert_msg(ra == RESULT_BAD_JSON || da == db, "%s: done_ns %llu, json-c %llu", shown, (unsigned long long)da,
	              (unsigned long long)db);
	ck_assert(ra != RESULT_BAD_JSON || !fast);
	assert_same_result(both[0], both[1], shown);
	free(shown);
	return fast;
}

static bool
feed_str(const char *text)
{
	return feed(text, strlen(text));
}

/* ---- gearboxd's replies ---------------------------------------------------- */

static const char *const strings[] = {
	"cluster1", "opencl:0", "", "a\"quoted\" word", "back\\slash", "tab\there", "line\nbreak", "\x01\x02\x1f",
	"slash/es", "caf\xc3\xa9 \xe2\x82\xac", "\x7f del", "cpu0 (1 thread)", "x",
	"no point meets 500 us: the fastest takes 812.4 us at g=1 on cluster1",
};
#define NSTRINGS (sizeof(strings) / sizeof(strings[0]))

static const double wild_doubles[] = { 0, -0.0, 1, -1, 0.05, 0.04999, 123.45, -3.75, 1e6, 1e15, 1e16, 1e20, 1e22,
	                               1e23, 1.7976931348623157e308, 1e-3, 1e-300, 4.9e-324, 2.5e-310, 0.1,
	                               NAN, -NAN, INFINITY, -INFINITY };
static const float wild_floats[] = { 0, -0.0f, 1, -1, 0.5f, 0.1f, 1e-5f, 3.4028235e38f, 1.17549435e-38f, 1e-45f,
	                             1e-40f, 123456789.f, 1e20f, 7.0f, -2.5e-7f, NAN, INFINITY, -INFINITY };
#define NWILD_D (sizeof(wild_doubles) / sizeof(wild_doubles[0]))
#define NWILD_F (sizeof(wild_floats) / sizeof(wild_floats[0]))
#define NFINITE_D (NWILD_D - 4)
#define NFINITE_F (NWILD_F - 3)

static double
pick_double(bool finite)
{
	switch (next_random() % 4) {
	case 0: return wild_doubles[next_random() % (finite ? NFINITE_D : NWILD_D)];
	case 1: return (double)(int64_t)(next_random() % 2000001) / 10.0 - 100000.0;
	case 2: return (double)(next_random() % 100000000) / 7.0;
	default: return ldexp((double)(next_random() % 1000000), (int)(next_random() % 80) - 40);
	}
}

/* One reply from gearboxd's writer: finite = with finite values and
 * integers within the fast reader's ranges, which it must take. */
static char *
writer_reply(bool finite, size_t *len)
{
	static struct dnn_model model;
	static struct host host;
	static struct request r;
	const char *placement;
	size_t frame_len;
	unsigned char *frame;
	char *text;

	memset(&r, 0, sizeof(r));
	model.classes = (unsigned)(next_random() % 17);
	for (unsigned i = 0; i < model.classes; i++)
		model.labels[i] = next_random() % 8 == 0 ? NULL : strings[next_random() % NSTRINGS];
	host.model = &model;
	r.host = &host;
	r.msg_id = (uint32_t)next_random();
	r.session = (uint32_t)next_random() >> (next_random() % 32);
	r.cls = model.classes ? (unsigned)(next_random() % model.classes) : 0;
	r.output = calloc(model.classes + 1, sizeof(float));
	for (unsigned i = 0; i < model.classes; i++) {
		double x = pick_double(true) / 1000;
		r.output[i] = next_random() % 3 == 0 ? wild_floats[next_random() % (finite ? NFINITE_F : NWILD_F)]
		              : fabs(x) < 3e38 || !finite ? (float)x : 1.0f;
	}
	r.choice.point.groups = (unsigned)(next_random() % 9);
	r.choice.point.threads = (unsigned)(next_random() % 9);
	r.khz = next_random() % 2 ? (unsigned long)(next_random() % 4000000) : 0;
	if (!finite && next_random() % 4 == 0) { /* beyond int (get_int clamps) and 18 digits */
		r.choice.point.groups = UINT32_MAX - (unsigned)(next_random() % 3);
		r.khz = ULONG_MAX;
	}
	snprintf(r.params.name, sizeof(r.params.name), "%s", strings[next_random() % NSTRINGS]);
	r.choice.point.latency_us = pick_double(finite);
	r.predicted_e2e_us = pick_double(finite);
	r.latency_us = pick_double(finite);
	r.queue_us = pick_double(finite);
	r.energy_uj = pick_double(finite);
	r.received_ns = next_random() % 1000000000000000ull;
	r.origin_ns = r.received_ns - next_random() % 1000000;
	r.done_ns = r.received_ns + next_random() % 100000000;
	if (!finite && next_random() % 8 == 0)
		r.done_ns = UINT64_MAX - next_random() % 5;
	r.return_us = pick_double(finite);
	r.budget.deadline_us = next_random() % 2 ? next_random() % 100000 : 0;
	r.budget.energy_uj = next_random() % 2 ? next_random() % 100000 : 0;
	r.energy_source = next_random() % 4 == 0 ? NULL : strings[next_random() % NSTRINGS];
	r.choice.feasible = next_random() % 2;
	snprintf(r.choice.reason, sizeof(r.choice.reason), "%s", strings[next_random() % NSTRINGS]);
	if (next_random() % 2)
		snprintf(r.fallback, sizeof(r.fallback), "%s", strings[next_random() % NSTRINGS]);
	r.cold = next_random() % 2;
	placement = next_random() % 8 == 0 ? NULL : strings[next_random() % NSTRINGS];
	/* sent_ns: after received_ns, or (a clock gone back) before it */
	frame = infer_reply_frame(&r, placement, r.received_ns + (next_random() % 16 ? next_random() % 1000000 : -1ull),
	                          &frame_len);
	ck_assert_ptr_nonnull(frame);
	free(r.output);
	*len = frame_len - GBX_HEADER_SIZE;
	text = malloc(*len + 1);
	memcpy(text, frame + GBX_HEADER_SIZE, *len);
	text[*len] = '\0';
	free(frame);
	return text;
}

START_TEST(test_writer_finite)
{
	for (unsigned i = 0; i < 20000; i++) {
		size_t len;
		char *text = writer_reply(true, &len);
		ck_assert_msg(feed(text, len), "%s: not taken by the fast reader", text);
		free(text);
	}
}
END_TEST

START_TEST(test_writer_wild)
{
	unsigned fast = 0, n = 20000;

	for (unsigned i = 0; i < n; i++) {
		size_t len;
		char *text = writer_reply(false, &len);
		/* valid JSON whatever the values: non-finite ones are null */
		struct json_object *o = json_tokener_parse(text);
		ck_assert_msg(o != NULL, "the writer's reply is not JSON: %s", text);
		json_object_put(o);
		fast += feed(text, len);
		free(text);
	}
	ck_assert_uint_gt(fast, 0);
	ck_assert_uint_lt(fast, n);
}
END_TEST

/* ---- hand-made replies ----------------------------------------------------- */

#define TYPICAL                                                                                                  \
	"{\"session\":1,\"class\":9,\"label\":\"Ankle boot\",\"scores\":[-3.1,0.5,1e-05,7],\"groups\":4,"       \
	"\"placement\":\"cluster0\",\"threads\":2,\"freq_khz\":0,\"policy\":\"default\",\"predicted_us\":812.4,"  \
	"\"predicted_e2e_us\":900.1,\"latency_us\":790.2,\"queue_us\":20.5,\"daemon_us\":815.3,\"energy_uj\":0.0,"  \
	"\"energy_source\":\"model:cpu\",\"deadline_met\":true,\"energy_met\":true,\"feasible\":true,"              \
	"\"cold\":false,\"reason\":null,\"fallback\":null,\"e2e_us\":850.0,\"done_ns\":123456789012345}"

static const struct variant {
	const char *text;
	int fast; /* 1: the fast reader takes it, 0: json-c does (or refuses it) */
} variants[] = {
	{ TYPICAL, 1 },
	{ "{}", 1 },
	{ " \t\n{ } \n", 1 },
	{ "{\"class\":3}", 1 },
	{ "{\"done_ns\":5,\"class\":3,\"label\":\"x\"}", 1 },
	{ "{ \"class\" : 3 , \"scores\" : [ 1 , 2 ] }", 1 },
	{ "{\"scores\":[]}", 1 },
	{ "{\"scores\":[ ]}", 1 },
	{ "{\"scores\":null}", 1 },
	{ "{\"scores\":[-0,0,-0.0,1E3,1e-50,3.4028235e38,3.5e38,1e39,123456789012345678]}", 1 },
	{ "{\"scores\":[null]}", 0 },
	{ "{\"scores\":[1,]}", 0 },
	{ "{\"scores\":[1 2]}", 0 },
	{ "{\"scores\":1}", 0 },
	{ "{\"scores\":[[1]]}", 0 },
	{ "{\"scores\":[nan,1]}", 0 },
	{ "{\"scores\":[NaN,1]}", 0 },
	{ "{\"scores\":[inf]}", 0 },
	{ "{\"scores\":[-inf]}", 0 },
	{ "{\"scores\":[Infinity]}", 0 },
	{ "{\"scores\":[-nan]}", 0 },
	{ "{\"class\":null,\"groups\":null,\"label\":null,\"latency_us\":null,\"predicted_us\":null,\"cold\":null}", 1 },
	{ "{\"class\":-1}", 0 },
	{ "{\"class\":2147483647}", 1 },
	{ "{\"class\":2147483648}", 0 },
	{ "{\"class\":4294967295}", 0 },
	{ "{\"class\":3.0}", 0 },
	{ "{\"class\":\"3\"}", 0 },
	{ "{\"class\":true}", 0 },
	{ "{\"freq_khz\":999999999999999999}", 1 },
	{ "{\"freq_khz\":18446744073709551615}", 0 },
	{ "{\"done_ns\":-5}", 0 },
	{ "{\"done_ns\":1.5}", 0 },
	{ "{\"latency_us\":5}", 1 },
	{ "{\"latency_us\":-0}", 1 },
	{ "{\"latency_us\":-0.0}", 1 },
	{ "{\"latency_us\":1e400}", 0 },
	{ "{\"latency_us\":nan}", 0 },
	{ "{\"latency_us\":-nan}", 0 },
	{ "{\"latency_us\":inf}", 0 },
	{ "{\"latency_us\":-inf}", 0 },
	{ "{\"latency_us\":\"5\"}", 0 },
	{ "{\"latency_us\":true}", 0 },
	{ "{\"deadline_met\":true,\"energy_met\":false,\"feasible\":true,\"cold\":true}", 1 },
	{ "{\"deadline_met\":1}", 0 },
	{ "{\"deadline_met\":\"yes\"}", 0 },
	{ "{\"deadline_met\":TRUE}", 0 },
	{ "{\"cold\":0}", 0 },
	{ "{\"label\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\te\"}", 1 },
	{ "{\"label\":\"\\u0001\\u001f\\u007f\\u0041\\u004a\"}", 1 },
	{ "{\"label\":\"\\u00e9\"}", 0 },
	{ "{\"label\":\"\\u0000x\"}", 0 },
	{ "{\"label\":\"\\ud83d\\ude00\"}", 0 },
	{ "{\"label\":\"\\ud83d\"}", 0 },
	{ "{\"label\":\"\\u12\"}", 0 },
	{ "{\"label\":\"\\x41\"}", 0 },
	{ "{\"label\":\"\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"}", 1 },
	{ "{\"label\":\"\xff\xfe\"}", 1 },
	{ "{\"label\":\"tab\there\"}", 0 },
	{ "{\"label\":\"a\nb\"}", 0 },
	{ "{\"label\":'x'}", 0 },
	{ "{\"label\":5}", 0 },
	{ "{\"label\":true}", 0 },
	{ "{\"label\":[]}", 0 },
	{ "{\"label\":\"unterminated}", 0 },
	{ "{\"reason\":\"no point meets 500 us\",\"fallback\":\"opencl:0 failed: \\\"CL_OUT_OF_RESOURCES\\\"\"}", 1 },
	{ "{\"class\":1,\"class\":2}", 0 },
	{ "{\"label\":\"a\",\"label\":null}", 0 },
	{ "{\"label\":null,\"label\":\"a\"}", 0 },
	{ "{\"class\":1,\"extra\":2}", 0 },
	{ "{\"cla\\u0073s\":1}", 0 },
	{ "{\"class\":1,}", 0 },
	{ "{\"class\":1", 0 },
	{ "{\"class\":1}x", 0 },
	{ "{\"class\":1}{\"class\":2}", 0 },
	{ "{\"class\":1}]", 0 },
	{ "{/*c*/\"class\":1}", 0 },
	{ "[1,2]", 0 },
	{ "5", 0 },
	{ "\"x\"", 0 },
	{ "null", 0 },
	{ "", 0 },
	{ "{", 0 },
	{ "}", 0 },
	{ "garbage", 0 },
};

START_TEST(test_variants)
{
	for (unsigned round = 0; round < 2; round++) /* after one another, from a fresh result and not */
		for (unsigned i = 0; i < sizeof(variants) / sizeof(variants[0]); i++) {
			bool fast = feed_str(variants[i].text);
			ck_assert_msg(fast == (variants[i].fast == 1), "%s: the fast reader %s it", variants[i].text,
			              fast ? "took" : "did not take");
		}
}
END_TEST

/* A reply json-c refuses leaves the one before as it was, strings where
 * they were (gearbox.h: valid until the result is filled again). */
START_TEST(test_refused_keeps_previous)
{
	const char *label, *reason;

	ck_assert(feed_str("{\"label\":\"first\",\"reason\":\"why \\\"not\\\"\",\"scores\":[1,2,3]}"));
	label = gbx_result_label(both[0]);
	reason = gbx_result_reason(both[0]);
	ck_assert(!feed_str("{\"label\":\"second\",\"scores\":[4,5,6,7],\"oops\""));
	ck_assert_ptr_eq(gbx_result_label(both[0]), label);
	ck_assert_ptr_eq(gbx_result_reason(both[0]), reason);
	ck_assert_str_eq(label, "first");
	ck_assert_str_eq(reason, "why \"not\"");
	ck_assert_uint_eq(gbx_result_nscores(both[0]), 3);
	ck_assert(gbx_result_scores(both[0])[2] == 3);
	/* one the fast reader gives up on late, json-c takes: json-c's now */
	ck_assert(!feed_str("{\"label\":\"third\",\"scores\":[8],\"extra\":true}"));
	ck_assert_str_eq(gbx_result_label(both[0]), "third");
	ck_assert_uint_eq(gbx_result_nscores(both[0]), 1);
	/* and the fast reader again after json-c */
	ck_assert(feed_str("{\"label\":\"fourth\"}"));
	ck_assert_str_eq(gbx_result_label(both[0]), "fourth");
	ck_assert_str_eq(gbx_result_reason(both[0]), "");
	ck_assert_uint_eq(gbx_result_nscores(both[0]), 0);
	/* a cleared result (gbx_receive, before an event) has no strings */
	result_clear(both[0]);
	ck_assert_str_eq(gbx_result_label(both[0]), "");
	ck_assert_str_eq(gbx_result_json(both[0]), "");
	result_clear(both[1]);
}
END_TEST

START_TEST(test_mutations)
{
	static const char alphabet[] = "{}[]\":,.-+0123456789eEtrufalsnix\\/u \t\n";
	unsigned fast = 0, n = 20000;

	for (unsigned i = 0; i < n; i++) {
		size_t len;
		char *text;
		if (i % 4 == 0) {
			text = strdup(variants[next_random() % (sizeof(variants) / sizeof(variants[0]))].text);
			len = strlen(text);
		} else {
			text = writer_reply(next_random() % 2, &len);
		}
		text = realloc(text, len + 8);
		for (unsigned edits = 1 + (unsigned)(next_random() % 3); edits > 0; edits--) {
			size_t at = len ? next_random() % len : 0;
			char c = alphabet[next_random() % (sizeof(alphabet) - 1)];
			switch (next_random() % 3) {
			case 0:
				if (len)
					text[at] = c;
				break;
			case 1:
				memmove(text + at + 1, text + at, len - at + 1);
				text[at] = c;
				len++;
				break;
			default:
				if (len) {
					memmove(text + at, text + at + 1, len - at);
					len--;
				}
			}
		}
		text[len] = '\0';
		fast += feed(text, len);
		free(text);
	}
	ck_assert_uint_gt(fast, n / 20);
}
END_TEST

static Suite *
reply_suite(void)
{
	Suite *s = suite_create("reply");
	TCase *tc = tcase_create("fast_reader");

	tcase_set_timeout(tc, 120);
	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, test_writer_finite);
	tcase_add_test(tc, test_writer_wild);
	tcase_add_test(tc, test_variants);
	tcase_add_test(tc, test_refused_keeps_previous);
	tcase_add_test(tc, test_mutations);
	suite_add_tcase(s, tc);
	return s;
}

int
main(void)
{
	return run_suite(reply_suite());
}
