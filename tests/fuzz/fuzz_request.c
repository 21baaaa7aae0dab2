/* SPDX-License-Identifier: MIT */
/* Request decoding (daemon/decode.c), per message type: the first byte picks
 * the type, the rest is the payload as the frame reader hands it over
 * (NUL-terminated). A decoded request must be within the limits the
 * handlers rely on; a refused one must say why with a protocol error code.
 * An INFER is decoded by json-c alone as well (decode_request_json): what
 * its fast reader takes must be what json-c gives, and whatever it leaves
 * must come out as json-c's, refusals word for word. */
#include "config.h"

#include <math.h>
#include <string.h>

#include "daemon/decode.h"
#include "proto/protocol.h"
#include "tests/fuzz/fuzz.h"

static const uint16_t types[] = {
	GBX_MSG_INFER, GBX_MSG_OPEN, GBX_MSG_BUDGET, GBX_MSG_STATS, GBX_MSG_CLOSE, GBX_MSG_PARETO,
	GBX_MSG_CALIBRATE, GBX_MSG_HELLO, GBX_MSG_MODELS, GBX_MSG_STATUS, GBX_MSG_SUBSCRIBE,
	GBX_MSG_RELOAD, GBX_MSG_PLATFORM,
};

static bool
same_double(double a, double b)
{
	return (isnan(a) && isnan(b)) || (a == b && signbit(a) == signbit(b));
}

/* An INFER through json-c alone: the same as decode_request gave (ret, q, err). */
static void
check_infer_json(const unsigned char *payload, size_t len, int ret, const struct decoded *q,
                 const struct decode_error *err)
{
	struct decode_error ej;
	struct decoded j;

	FUZZ_ASSERT(decode_request_json(GBX_MSG_INFER, payload, len, &j, &ej) == ret);
	if (ret != 0) {
		FUZZ_ASSERT(strcmp(err->code, ej.code) == 0 && strcmp(err->why, ej.why) == 0);
		return;
	}
	FUZZ_ASSERT(j.json != NULL);
	FUZZ_ASSERT(q->session == j.session && q->pixels == j.pixels);
	FUZZ_ASSERT(q->has_sent_ns == j.has_sent_ns && q->sent_ns == j.sent_ns);
	FUZZ_ASSERT(q->has_return_us == j.has_return_us && same_double(q->return_us, j.return_us));
	FUZZ_ASSERT(q->input == j.input && q->input_len == j.input_len);
	decoded_clear(&j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct decode_error err;
	struct decoded q;
	int ret;
	unsigned char *payload;
	uint16_t type;
	size_t len;

	if (size < 1)
		return 0;
	type = types[data[0] % (sizeof(types) / sizeof(types[0]))];
	len = size - 1;
	payload = malloc(len + 1);
	FUZZ_ASSERT(payload != NULL);
	memcpy(payload, data + 1, len);
	payload[len] = '\0';
	ret = decode_request(type, payload, len, &q, &err);
	if (type == GBX_MSG_INFER)
		check_infer_json(payload, len, ret, &q, &err);
	if (ret != 0) {
		FUZZ_ASSERT(err.code != NULL && err.why[0] != '\0');
		FUZZ_ASSERT(q.json == NULL);
		free(payload);
		return 0;
	}
	/* NULL: an INFER that the fast reader read */
	FUZZ_ASSERT(q.json != NULL ? json_object_is_type(q.json, json_type_object) : type == GBX_MSG_INFER);
	FUZZ_ASSERT(q.budget.deadline_us <= 3600ull * 1000000 && q.budget.energy_uj <= 1000ull * 1000000);
	FUZZ_ASSERT(q.budget.min_accuracy >= 0 && q.budget.min_accuracy <= 1);
	FUZZ_ASSERT(q.priority <= 100);
	FUZZ_ASSERT(!q.model_is_string || q.model != NULL);
	FUZZ_ASSERT(!q.policy_is_string || q.policy != NULL);
	if (q.model != NULL)
		(void)strlen(q.model);
	if (q.policy != NULL)
		(void)strlen(q.policy);
	if (type == GBX_MSG_INFER) {
		FUZZ_ASSERT(q.input > payload && q.input + q.input_len == payload + len);
		FUZZ_ASSERT(q.input[-1] == '\0');
	} else
		FUZZ_ASSERT(q.input == NULL && q.input_len == 0);
	decoded_clear(&q);
	free(payload);
	return 0;
}
