/* SPDX-License-Identifier: MIT */
/* The INFER reply as libgearbox reads it (client/infer.c): the bytes are a
 * reply's payload (NUL-terminated, as the frame reader hands it over), read
 * by result_read (the fast reader, json-c where it declines) into one
 * result and by json-c alone (result_read_json) into another, each holding
 * the same earlier reply first. The two must then be the same in every
 * accessor, return code and done_ns: what the fast reader takes is read as
 * json-c reads it, and a reply json-c refuses leaves the earlier one. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "client/gearbox.h"
#include "client/infer.h"
#include "tests/fuzz/fuzz.h"

static const char earlier[] =
	"{\"session\":1,\"class\":2,\"label\":\"Pullover\",\"scores\":[0.1,0.7,0.2],\"groups\":3,\"placement\":\"cluster0\","
	"\"threads\":1,\"freq_khz\":1400000,\"policy\":\"default\",\"predicted_us\":512.5,\"predicted_e2e_us\":600.0,"
	"\"latency_us\":498.2,\"queue_us\":12.5,\"daemon_us\":520.1,\"energy_uj\":0.0,\"energy_source\":\"model:cpu\","
	"\"deadline_met\":true,\"energy_met\":true,\"feasible\":false,\"cold\":false,\"reason\":\"no \\\"point\\\"\","
	"\"fallback\":null,\"e2e_us\":560.0,\"done_ns\":1234567}";

static bool
same_double(double a, double b)
{
	return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

static void
assert_same(const struct gbx_result *a, const struct gbx_result *b)
{
	FUZZ_ASSERT(gbx_result_class(a) == gbx_result_class(b));
	FUZZ_ASSERT(gbx_result_nscores(a) == gbx_result_nscores(b));
	FUZZ_ASSERT(gbx_result_nscores(a) == 0 ||
	            memcmp(gbx_result_scores(a), gbx_result_scores(b), gbx_result_nscores(a) * sizeof(float)) == 0);
	FUZZ_ASSERT(gbx_result_groups(a) == gbx_result_groups(b));
	FUZZ_ASSERT(gbx_result_threads(a) == gbx_result_threads(b));
	FUZZ_ASSERT(gbx_result_freq_khz(a) == gbx_result_freq_khz(b));
	FUZZ_ASSERT(same_double(gbx_result_latency_us(a), gbx_result_latency_us(b)));
	FUZZ_ASSERT(same_double(gbx_result_queue_us(a), gbx_result_queue_us(b)));
	FUZZ_ASSERT(same_double(gbx_result_daemon_us(a), gbx_result_daemon_us(b)));
	FUZZ_ASSERT(same_double(gbx_result_predicted_us(a), gbx_result_predicted_us(b)));
	FUZZ_ASSERT(same_double(gbx_result_predicted_e2e_us(a), gbx_result_predicted_e2e_us(b)));
	FUZZ_ASSERT(same_double(gbx_result_e2e_us(a), gbx_result_e2e_us(b)));
	FUZZ_ASSERT(same_double(gbx_result_energy_uj(a), gbx_result_energy_uj(b)));
	FUZZ_ASSERT(strcmp(gbx_result_label(a), gbx_result_label(b)) == 0);
	FUZZ_ASSERT(strcmp(gbx_result_placement(a), gbx_result_placement(b)) == 0);
	FUZZ_ASSERT(strcmp(gbx_result_policy(a), gbx_result_policy(b)) == 0);
	FUZZ_ASSERT(strcmp(gbx_result_energy_source(a), gbx_result_energy_source(b)) == 0);
	FUZZ_ASSERT(strcmp(gbx_result_reason(a), gbx_result_reason(b)) == 0);
	FUZZ_ASSERT(strcmp(gbx_result_fallback(a), gbx_result_fallback(b)) == 0);
	FUZZ_ASSERT(strcmp(gbx_result_json(a), gbx_result_json(b)) == 0);
	FUZZ_ASSERT(gbx_result_deadline_met(a) == gbx_result_deadline_met(b));
	FUZZ_ASSERT(gbx_result_energy_met(a) == gbx_result_energy_met(b));
	FUZZ_ASSERT(gbx_result_feasible(a) == gbx_result_feasible(b));
	FUZZ_ASSERT(gbx_result_cold(a) == gbx_result_cold(b));
}

static char *
copy(const void *data, size_t size)
{
	char *p = malloc(size + 1);

	FUZZ_ASSERT(p != NULL);
	memcpy(p, data, size);
	p[size] = '\0';
	return p;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct gbx_result *a = gbx_result_new(), *b = gbx_result_new(), *c = gbx_result_new();
	uint64_t da = 0, db = 0, dc = 0;
	char *p = copy(data, size);
	bool fast;
	int ra, rb;

	FUZZ_ASSERT(a != NULL && b != NULL && c != NULL);
	/* the fast reader alone, on a result of its own */
	if (!(fast = result_read_fast(c, p, &dc)))
		free(p);
	FUZZ_ASSERT(result_read(a, copy(earlier, sizeof(earlier) - 1), &da) == RESULT_OK && a->fast);
	FUZZ_ASSERT(result_read_json(b, copy(earlier, sizeof(earlier) - 1), &db) == RESULT_OK && da == db);
	assert_same(a, b);
	da = db = 0;
	ra = result_read(a, copy(data, size), &da);
	rb = result_read_json(b, copy(data, size), &db);
	FUZZ_ASSERT(ra == rb);
	FUZZ_ASSERT(ra == RESULT_BAD_JSON || da == db);
	assert_same(a, b);
	if (fast) {
		FUZZ_ASSERT(ra == RESULT_OK && a->fast && dc == da);
		assert_same(a, c);
	} else {
		FUZZ_ASSERT(a->fast == (ra == RESULT_BAD_JSON)); /* json-c's, or the earlier one kept */
	}
	gbx_result_free(a);
	gbx_result_free(b);
	gbx_result_free(c);
	return 0;
}
