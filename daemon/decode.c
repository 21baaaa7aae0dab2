/* SPDX-License-Identifier: MIT */
/* Request decoding (see decode.h): one function per message type, built
 * from the field readers below. The messages are the ones clients have
 * always been sent. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "daemon/decode.h"
#include "proto/json_scan.h"
#include "proto/protocol.h"

static int __attribute__((format(printf, 3, 4)))
refuse(struct decode_error *err, const char *code, const char *fmt, ...)
{
	va_list ap;

	err->code = code;
	va_start(ap, fmt);
	vsnprintf(err->why, sizeof(err->why), fmt, ap);
	va_end(ap);
	return -1;
}

/* One JSON object, nothing after it; no bytes at all is {}. */
static int
parse_object(const unsigned char *payload, size_t len, struct decoded *out, struct decode_error *err)
{
	struct json_tokener *tok;
	struct json_object *o;
	int ret = 0;

	if (len == 0)
		return (out->json = json_object_new_object()) != NULL ? 0 : refuse(err, GBX_ERR_INTERNAL, "out of memory");
	if ((tok = json_tokener_new()) == NULL)
		return refuse(err, GBX_ERR_INTERNAL, "out of memory");
	o = json_tokener_parse_ex(tok, (const char *)payload, (int)len);
	if (o == NULL || json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
		ret = refuse(err, GBX_ERR_BAD_REQUEST, "payload is not one JSON object (%s)",
		             o == NULL ? json_tokener_error_desc(json_tokener_get_error(tok)) : "trailing bytes or not an object");
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	out->json = o;
	return ret;
}

/* The value of key, NULL when absent or null. */
static struct json_object *
field(struct json_object *o, const char *key)
{
	struct json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return NULL;
	return v;
}

/* An optional integer within [0, max] (left as it is when absent). */
static int
get_u64(struct json_object *o, const char *key, uint64_t max, uint64_t *out, struct decode_error *err)
{
	struct json_object *v = field(o, key);
	int64_t x;

	if (v == NULL)
		return 0;
	if (!json_object_is_type(v, json_type_int) || (x = json_object_get_int64(v)) < 0 || (uint64_t)x > max)
		return refuse(err, GBX_ERR_BAD_REQUEST, "'%s' must be an integer from 0 to %llu", key, (unsigned long long)max);
	*out = (uint64_t)x;
	return 0;
}

static int
get_session(struct json_object *o, uint32_t *session, struct decode_error *err)
{
	uint64_t id = 0;

	if (get_u64(o, GBX_KEY_SESSION, UINT32_MAX, &id, err) != 0)
		return -1;
	*session = (uint32_t)id;
	return 0;
}

static int
get_budget(struct json_object *o, struct budget *b, struct decode_error *err)
{
	struct json_object *v;

	if (get_u64(o, GBX_KEY_DEADLINE_US, 3600ull * 1000000, &b->deadline_us, err) != 0 ||
	    get_u64(o, GBX_KEY_ENERGY_UJ, 1000ull * 1000000, &b->energy_uj, err) != 0)
		return -1;
	if ((v = field(o, GBX_KEY_MIN_ACCURACY)) != NULL) {
		double a = json_object_get_double(v);
		if ((!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) || !(a >= 0 && a <= 1))
			return refuse(err, GBX_ERR_BAD_REQUEST, "'min_accuracy' must be a number in [0, 1]");
		b->min_accuracy = a;
	}
	if ((v = field(o, GBX_KEY_RATE_HZ)) != NULL) {
		double x = json_object_get_double(v);
		if ((!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) || !(x > 0 && x <= 1e6))
			return refuse(err, GBX_ERR_BAD_REQUEST, "'rate_hz' must be a number of requests per second in (0, 1e6]");
		b->rate_hz = x;
	}
	if ((v = field(o, GBX_KEY_WEIGHT)) != NULL) {
		double x = json_object_get_double(v);
		if ((!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) || !(x > 0 && x <= 1e6))
			return refuse(err, GBX_ERR_BAD_REQUEST, "'weight' must be a number in (0, 1e6]");
		b->weight = x;
	}
	return 0;
}

/* A name ("model", "policy"): whether it exists is the handler's question,
 * and so is the message for one that is not a string. */
static void
get_name(struct json_object *o, const char *key, const char **name, bool *is_string)
{
	struct json_object *v = field(o, key);

	*name = v != NULL ? json_object_get_string(v) : NULL;
	*is_string = v != NULL && json_object_is_type(v, json_type_string);
}

/* ---- one per message type -------------------------------------------------- */

static int
decode_open(struct decoded *d, struct decode_error *err)
{
	get_name(d->json, GBX_KEY_MODEL, &d->model, &d->model_is_string);
	get_name(d->json, GBX_KEY_POLICY, &d->policy, &d->policy_is_string);
	return get_budget(d->json, &d->budget, err) != 0 || get_u64(d->json, GBX_KEY_PRIORITY, 100, &d->priority, err) != 0
	               ? -1 : 0;
}

static int
decode_budget(struct decoded *d, struct decode_error *err)
{
	return get_session(d->json, &d->session, err) != 0 || get_budget(d->json, &d->budget, err) != 0 ? -1 : 0;
}

static int
decode_session(struct decoded *d, struct decode_error *err)
{
	return get_session(d->json, &d->session, err);
}

static int
decode_model_policy(struct decoded *d, struct decode_error *err)
{
	struct json_object *v;

	get_name(d->json, GBX_KEY_MODEL, &d->model, &d->model_is_string);
	get_name(d->json, GBX_KEY_POLICY, &d->policy, &d->policy_is_string);
	if (json_object_object_get_ex(d->json, GBX_KEY_ALL, &v)) {
		if (!json_object_is_type(v, json_type_boolean))
			return refuse(err, GBX_ERR_BAD_REQUEST, "'all' must be true or false");
		d->all = json_object_get_boolean(v);
	}
	return 0;
}

/* INFER's fast reader. An INFER's JSON is what libgearbox writes
 * (client/infer.c, infer_head):
 *     {"session":N[,"pixels":true],"sent_ns":N[,"return_us":N.N]}
 * json-c took about 7.5 us to parse those few bytes when its code was hot,
 * and about 27 us after an idle gap (measured on the 2-vCPU AMD EPYC
 * development VM, at 50 and at 1000 requests/s): at 50 requests/s the
 * biggest part of an INFER's time from its frame to its inference (serve.c,
 * rehearse_request). This reads an object of
 * those four keys, each at most once, in any order, with whitespace
 * between the tokens, session an integer up to UINT32_MAX, pixels true or
 * false, sent_ns an integer of up to 18 digits and return_us a number, and
 * fills d as the json-c path below would, except that d->json stays NULL
 * (nothing reads an INFER's object; decoded_clear puts NULL). Anything else
 * (another key, a key twice, null, a string, an escape, nesting, a number
 * of another form or size, text before the '{' or after the '}') returns
 * false: json-c reads it, so what is taken and every refusal's message are
 * json-c's (tests/daemon/test_decode.c and tests/fuzz/fuzz_request.c hold
 * the two to the same result). text ends at its NUL. */
static bool
infer_fast(const char *text, struct decoded *d)
{
	enum { SESSION = 1, PIXELS = 2, SENT_NS = 4, RETURN_US = 8 };
	const char *p = text, *key;
	unsigned seen = 0, bit;
	uint64_t session = 0, sent_ns = 0;
	double return_us = 0;
	bool pixels = false, ok;
	size_t n;

	if (*p != '{')
		return false;
	p = js_ws(p + 1);
	if (*p != '}')
		for (;;) {
			if (!js_key(&p, &key, &n))
				return false;
			p = js_ws(p);
			if (*p != ':')
				return false;
			p = js_ws(p + 1);
			if (JS_IS_KEY(key, n, GBX_KEY_SESSION)) {
				bit = SESSION;
				ok = js_uint(&p, 10, &session) && session <= UINT32_MAX;
			} else if (JS_IS_KEY(key, n, GBX_KEY_PIXELS)) {
				bit = PIXELS;
				ok = (pixels = JS_WORD(&p, "true")) || JS_WORD(&p, "false");
			} else if (JS_IS_KEY(key, n, GBX_KEY_SENT_NS)) {
				bit = SENT_NS;
				ok = js_uint(&p, 18, &sent_ns);
			} else if (JS_IS_KEY(key, n, GBX_KEY_RETURN_US)) {
				bit = RETURN_US;
				ok = js_number(&p, &return_us);
			} else {
				return false;
			}
			if (!ok || (seen & bit))
				return false;
			seen |= bit;
			p = js_ws(p);
			if (*p == '}')
				break;
			if (*p != ',')
				return false;
			p = js_ws(p + 1);
		}
	if (p[1] != '\0')
		return false;
	d->session = (uint32_t)session;
	d->pixels = pixels;
	d->has_sent_ns = (seen & SENT_NS) != 0;
	d->sent_ns = sent_ns;
	d->has_return_us = (seen & RETURN_US) != 0;
	d->return_us = return_us;
	return true;
}

/* INFER: {"session", "pixels", "sent_ns", "return_us"} NUL input. */
static int
decode_infer(const unsigned char *payload, size_t len, struct decoded *d, bool fast, struct decode_error *err)
{
	size_t json_len = strnlen((const char *)payload, len);
	struct json_object *v;

	if (json_len == len)
		return refuse(err, GBX_ERR_BAD_REQUEST, "infer payload needs JSON, a NUL byte, then the input");
	d->input = payload + json_len + 1;
	d->input_len = len - json_len - 1;
	if (fast && infer_fast((const char *)payload, d))
		return 0;
	if (parse_object(payload, json_len, d, err) != 0)
		return -1;
	if (json_object_object_get_ex(d->json, GBX_KEY_PIXELS, &v))
		d->pixels = json_object_get_boolean(v);
	if ((d->has_sent_ns = json_object_object_get_ex(d->json, GBX_KEY_SENT_NS, &v)))
		d->sent_ns = (uint64_t)json_object_get_int64(v);
	if ((d->has_return_us = json_object_object_get_ex(d->json, GBX_KEY_RETURN_US, &v)))
		d->return_us = json_object_get_double(v);
	return get_session(d->json, &d->session, err);
}

static int
decode(uint16_t type, const unsigned char *payload, size_t len, struct decoded *out, bool fast,
       struct decode_error *err)
{
	int ret;

	memset(out, 0, sizeof(*out));
	err->code = GBX_ERR_BAD_REQUEST;
	err->why[0] = '\0';
	if (type == GBX_MSG_INFER)
		ret = decode_infer(payload, len, out, fast, err);
	else if (parse_object(payload, len, out, err) != 0)
		ret = -1;
	else if (type == GBX_MSG_OPEN)
		ret = decode_open(out, err);
	else if (type == GBX_MSG_BUDGET)
		ret = decode_budget(out, err);
	else if (type == GBX_MSG_STATS || type == GBX_MSG_CLOSE)
		ret = decode_session(out, err);
	else if (type == GBX_MSG_PARETO || type == GBX_MSG_CALIBRATE)
		ret = decode_model_policy(out, err);
	else
		ret = 0; /* HELLO, MODELS, STATUS, SUBSCRIBE, RELOAD, PLATFORM, PLAN: no fields read */
	if (ret != 0)
		decoded_clear(out);
	return ret;
}

int
decode_request(uint16_t type, const unsigned char *payload, size_t len, struct decoded *out, struct decode_error *err)
{
	return decode(type, payload, len, out, true, err);
}

int
decode_request_json(uint16_t type, const unsigned char *payload, size_t len, struct decoded *out,
                    struct decode_error *err)
{
	return decode(type, payload, len, out, false, err);
}

void
decoded_clear(struct decoded *d)
{
	json_object_put(d->json);
	memset(d, 0, sizeof(*d));
}
