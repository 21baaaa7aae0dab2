/* SPDX-License-Identifier: MIT */
/* INFER's JSON on libgearbox's side (infer.h): the request's head, and the
 * reply read into a struct gbx_result with its accessors (gearbox.h). */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/gearbox.h"
#include "client/infer.h"
#include "proto/json_scan.h"
#include "proto/protocol.h"

int
infer_head(char head[INFER_HEAD_MAX], uint32_t session, bool pixels, uint64_t sent_ns, double return_us)
{
	char ret[48] = "";

	if (return_us >= 0)
		snprintf(ret, sizeof(ret), ",\"" GBX_KEY_RETURN_US "\":%.1f", return_us);
	return snprintf(head, INFER_HEAD_MAX, "{\"" GBX_KEY_SESSION "\":%u%s,\"" GBX_KEY_SENT_NS "\":%llu%s}", session,
	                pixels ? ",\"" GBX_KEY_PIXELS "\":true" : "", (unsigned long long)sent_ns, ret);
}

struct gbx_result *
gbx_result_new(void)
{
	struct gbx_result *r = calloc(1, sizeof(*r));

	if (r != NULL)
		r->daemon_us = r->predicted_e2e_us = NAN;
	return r;
}

void
result_clear(struct gbx_result *r)
{
	json_object_put(r->obj);
	r->obj = NULL;
	free(r->json);
	r->json = NULL;
	r->fast = false;
	r->request_id = 0;
	r->nscores = 0;
}

void
gbx_result_free(struct gbx_result *r)
{
	if (r == NULL)
		return;
	result_clear(r);
	free(r->scores);
	free(r->spare_scores);
	free(r->text);
	free(r->spare_text);
	free(r);
}

/* ---- json-c ---------------------------------------------------------------- */

static double
get_double(struct json_object *o, const char *key, double missing)
{
	struct json_object *v;

	return json_object_object_get_ex(o, key, &v) && v != NULL ? json_object_get_double(v) : missing;
}

int
result_read_json(struct gbx_result *r, char *payload, uint64_t *done_ns)
{
	struct json_object *o = json_tokener_parse(payload), *scores, *v;
	size_t n;

	if (o == NULL) {
		free(payload);
		return RESULT_BAD_JSON;
	}
	json_object_put(r->obj);
	free(r->json);
	r->obj = o;
	r->json = payload; /* ours now */
	r->fast = false;
	*done_ns = (uint64_t)json_object_get_int64(json_object_object_get(o, GBX_KEY_DONE_NS));
	r->cls = (unsigned)json_object_get_int(json_object_object_get(o, GBX_KEY_CLASS));
	scores = json_object_object_get(o, GBX_KEY_SCORES);
	n = scores != NULL && json_object_is_type(scores, json_type_array) ? json_object_array_length(scores) : 0;
	if (n > r->scores_cap) {
		float *grown = realloc(r->scores, n * sizeof(*grown));
		if (grown == NULL)
			return RESULT_NO_MEMORY;
		r->scores = grown;
		r->scores_cap = n;
	}
	for (size_t i = 0; i < n; i++) {
		struct json_object *x = json_object_array_get_idx(scores, i);
		r->scores[i] = x != NULL ? (float)json_object_get_double(x) : NAN; /* null: not finite */
	}
	r->nscores = n;
	r->groups = (unsigned)json_object_get_int(json_object_object_get(o, GBX_KEY_GROUPS));
	r->threads = (unsigned)json_object_get_int(json_object_object_get(o, GBX_KEY_THREADS));
	r->freq_khz = (unsigned long)json_object_get_int64(json_object_object_get(o, GBX_KEY_FREQ_KHZ));
	r->latency_us = get_double(o, GBX_KEY_LATENCY_US, 0);
	r->queue_us = get_double(o, GBX_KEY_QUEUE_US, 0);
	r->energy_uj = get_double(o, GBX_KEY_ENERGY_UJ, 0);
	r->predicted_us = get_double(o, GBX_KEY_PREDICTED_US, NAN);
	r->e2e_us = get_double(o, GBX_KEY_E2E_US, NAN);
	r->daemon_us = get_double(o, GBX_KEY_DAEMON_US, NAN);
	r->predicted_e2e_us = get_double(o, GBX_KEY_PREDICTED_E2E_US, NAN);
	r->deadline_met = json_object_get_boolean(json_object_object_get(o, GBX_KEY_DEADLINE_MET));
	r->energy_met = json_object_get_boolean(json_object_object_get(o, GBX_KEY_ENERGY_MET));
	r->feasible = json_object_get_boolean(json_object_object_get(o, GBX_KEY_FEASIBLE));
	r->cold = json_object_object_get_ex(o, GBX_KEY_COLD, &v) && json_object_get_boolean(v);
	return RESULT_OK;
}

/* ---- the fast reader ------------------------------------------------------- */

/* The reply's keys, in the order gearboxd writes them (daemon/replies.c),
 * with what each holds and, for the numbers kept, where. */
enum kind { K_UINT, K_INT, K_U64, K_DOUBLE, K_BOOL, K_STRING, K_SCORES };
enum { V_CLASS, V_GROUPS, V_THREADS, V_FREQ_KHZ, V_DONE_NS, V_SESSION, NV };
enum { D_PREDICTED, D_PREDICTED_E2E, D_LATENCY, D_QUEUE, D_DAEMON, D_ENERGY, D_E2E, ND };
enum { B_DEADLINE_MET, B_ENERGY_MET, B_FEASIBLE, B_COLD, NB };

static const struct reply_key {
	const char *name;
	unsigned char len, kind, slot;
} reply_keys[] = {
#define KEY(name, kind, slot) { name, sizeof(name) - 1, kind, slot }
	KEY(GBX_KEY_SESSION, K_UINT, V_SESSION),
	KEY(GBX_KEY_CLASS, K_INT, V_CLASS),
	KEY(GBX_KEY_LABEL, K_STRING, RESULT_LABEL),
	KEY(GBX_KEY_SCORES, K_SCORES, 0),
	KEY(GBX_KEY_GROUPS, K_INT, V_GROUPS),
	KEY(GBX_KEY_PLACEMENT, K_STRING, RESULT_PLACEMENT),
	KEY(GBX_KEY_THREADS, K_INT, V_THREADS),
	KEY(GBX_KEY_FREQ_KHZ, K_U64, V_FREQ_KHZ),
	KEY(GBX_KEY_POLICY, K_STRING, RESULT_POLICY),
	KEY(GBX_KEY_PREDICTED_US, K_DOUBLE, D_PREDICTED),
	KEY(GBX_KEY_PREDICTED_E2E_US, K_DOUBLE, D_PREDICTED_E2E),
	KEY(GBX_KEY_LATENCY_US, K_DOUBLE, D_LATENCY),
	KEY(GBX_KEY_QUEUE_US, K_DOUBLE, D_QUEUE),
	KEY(GBX_KEY_DAEMON_US, K_DOUBLE, D_DAEMON),
	KEY(GBX_KEY_ENERGY_UJ, K_DOUBLE, D_ENERGY),
	KEY(GBX_KEY_ENERGY_SOURCE, K_STRING, RESULT_ENERGY_SOURCE),
	KEY(GBX_KEY_DEADLINE_MET, K_BOOL, B_DEADLINE_MET),
	KEY(GBX_KEY_ENERGY_MET, K_BOOL, B_ENERGY_MET),
	KEY(GBX_KEY_FEASIBLE, K_BOOL, B_FEASIBLE),
	KEY(GBX_KEY_COLD, K_BOOL, B_COLD),
	KEY(GBX_KEY_REASON, K_STRING, RESULT_REASON),
	KEY(GBX_KEY_FALLBACK, K_STRING, RESULT_FALLBACK),
	KEY(GBX_KEY_E2E_US, K_DOUBLE, D_E2E),
	KEY(GBX_KEY_DONE_NS, K_U64, V_DONE_NS),
#undef KEY
};
#define NKEYS (sizeof(reply_keys) / sizeof(reply_keys[0]))

/* The key at key (len bytes), looked for from the one after the last (the
 * writer's order); NKEYS: not one of them. */
static unsigned
find_key(const char *key, size_t len, unsigned after)
{
	for (unsigned i = 0; i < NKEYS; i++) {
		unsigned k = (after + 1 + i) % NKEYS;
		if (reply_keys[k].len == len && memcmp(reply_keys[k].name, key, len) == 0)
			return k;
	}
	return NKEYS;
}

/* The scores array into the spare buffer: numbers (as json-c, through
 * double to float), *n of them. */
static bool
read_scores(struct gbx_result *r, const char **pp, size_t *n)
{
	const char *p = *pp;
	size_t count = 0;
	double x;

	if (*p++ != '[')
		return false;
	p = js_ws(p);
	if (*p != ']')
		for (;;) {
			if (!js_number(&p, &x))
				return false;
			if (count == r->spare_scores_cap) {
				size_t cap = r->spare_scores_cap ? 2 * r->spare_scores_cap : 16;
				float *grown = realloc(r->spare_scores, cap * sizeof(*grown));
				if (grown == NULL)
					return false;
				r->spare_scores = grown;
				r->spare_scores_cap = cap;
			}
			r->spare_scores[count++] = (float)x;
			p = js_ws(p);
			if (*p == ']')
				break;
			if (*p != ',')
				return false;
			p = js_ws(p + 1);
		}
	*pp = p + 1;
	*n = count;
	return true;
}

/* The INFER reply as daemon/replies.c writes it, without json-c: the
 * reply is about 1 KB (scores included) that json-c parsed into objects on
 * every request, the same parser that took 7.5 us (hot) to 27 us (after an
 * idle gap) for the daemon's side of an INFER, a tenth of the size
 * (measured on the 2-vCPU AMD EPYC development VM, at 50 and at 1000
 * requests/s). An object of the keys gearboxd writes, each at
 * most once, in any order, with whitespace between the tokens: integers
 * (class, groups and threads up to INT32_MAX, freq_khz and done_ns of up to
 * 18 digits), numbers, true/false, strings (plain, the two-character
 * escapes and \u0001-\u007f), null for any (as json-c's getters treat it:
 * as absent), the scores an array of numbers. Anything else (another key,
 * a key twice, nan or inf, which %.1f and %.9g write for non-finite
 * values, other literals, nesting, text after the '}') returns false
 * before r is touched, and json-c reads it: tests/client/test_reply.c
 * and tests/fuzz/fuzz_reply.c hold the two to the same result. */
bool
result_read_fast(struct gbx_result *r, char *payload, uint64_t *done_ns)
{
	uint64_t v[NV] = { 0 };
	/* json-c's path's defaults for keys absent (or null) */
	double dv[ND] = { [D_PREDICTED] = NAN, [D_PREDICTED_E2E] = NAN, [D_DAEMON] = NAN, [D_E2E] = NAN };
	bool bv[NB] = { false };
	const char *str[RESULT_NSTR] = { NULL };
	size_t len = strlen(payload), nscores = 0, n;
	uint32_t seen = 0;
	unsigned last = NKEYS - 1;
	const char *p, *key;
	char *out;

	if (len + 1 > r->spare_text_cap) {
		char *t = malloc(len + 1);
		if (t == NULL)
			return false;
		free(r->spare_text);
		r->spare_text = t;
		r->spare_text_cap = len + 1;
	}
	out = r->spare_text;
	p = js_ws(payload);
	if (*p != '{')
		return false;
	p = js_ws(p + 1);
	if (*p != '}')
		for (;;) {
			const struct reply_key *k;
			bool ok;
			unsigned i;

			if (!js_key(&p, &key, &n) || (i = find_key(key, n, last)) == NKEYS || (seen & (1u << i)))
				return false;
			seen |= 1u << i;
			last = i;
			k = &reply_keys[i];
			p = js_ws(p);
			if (*p != ':')
				return false;
			p = js_ws(p + 1);
			if (JS_WORD(&p, "null")) {
				ok = true; /* json-c's getters: as if absent */
			} else if (k->kind == K_UINT || k->kind == K_INT || k->kind == K_U64) {
				ok = js_uint(&p, k->kind == K_U64 ? 18 : 10, &v[k->slot]) &&
				     (k->kind != K_INT || v[k->slot] <= INT32_MAX);
			} else if (k->kind == K_DOUBLE) {
				ok = js_number(&p, &dv[k->slot]);
			} else if (k->kind == K_BOOL) {
				ok = (bv[k->slot] = JS_WORD(&p, "true")) || JS_WORD(&p, "false");
			} else if (k->kind == K_STRING) {
				ok = js_string(&p, out, &n);
				str[k->slot] = out;
				out += n + 1;
			} else {
				ok = read_scores(r, &p, &nscores);
			}
			if (!ok)
				return false;
			p = js_ws(p);
			if (*p == '}')
				break;
			if (*p != ',')
				return false;
			p = js_ws(p + 1);
		}
	if (*js_ws(p + 1) != '\0')
		return false;

	/* all of it read: this is the result now */
	json_object_put(r->obj);
	r->obj = NULL;
	free(r->json);
	r->json = payload;
	r->fast = true;
	{
		char *t = r->text;
		size_t c = r->text_cap;
		float *s = r->scores;
		r->text = r->spare_text;
		r->text_cap = r->spare_text_cap;
		r->spare_text = t;
		r->spare_text_cap = c;
		c = r->scores_cap;
		r->scores = r->spare_scores;
		r->scores_cap = r->spare_scores_cap;
		r->spare_scores = s;
		r->spare_scores_cap = c;
	}
	memcpy(r->str, str, sizeof(str));
	r->nscores = nscores;
	*done_ns = v[V_DONE_NS];
	r->cls = (unsigned)v[V_CLASS];
	r->groups = (unsigned)v[V_GROUPS];
	r->threads = (unsigned)v[V_THREADS];
	r->freq_khz = (unsigned long)v[V_FREQ_KHZ];
	r->predicted_us = dv[D_PREDICTED];
	r->predicted_e2e_us = dv[D_PREDICTED_E2E];
	r->latency_us = dv[D_LATENCY];
	r->queue_us = dv[D_QUEUE];
	r->daemon_us = dv[D_DAEMON];
	r->energy_uj = dv[D_ENERGY];
	r->e2e_us = dv[D_E2E];
	r->deadline_met = bv[B_DEADLINE_MET];
	r->energy_met = bv[B_ENERGY_MET];
	r->feasible = bv[B_FEASIBLE];
	r->cold = bv[B_COLD];
	return true;
}

int
result_read(struct gbx_result *r, char *payload, uint64_t *done_ns)
{
	return result_read_fast(r, payload, done_ns) ? RESULT_OK : result_read_json(r, payload, done_ns);
}

/* ---- accessors ------------------------------------------------------------- */

/* A string field of the last reply, or "". */
static const char *
result_str(const struct gbx_result *r, unsigned which, const char *key)
{
	struct json_object *v;

	if (r->obj != NULL)
		return json_object_object_get_ex(r->obj, key, &v) && json_object_is_type(v, json_type_string)
		               ? json_object_get_string(v) : "";
	return r->fast && r->str[which] != NULL ? r->str[which] : "";
}

uint32_t gbx_result_request_id(const struct gbx_result *r) { return r->request_id; }
unsigned gbx_result_class(const struct gbx_result *r) { return r->cls; }
const char *gbx_result_label(const struct gbx_result *r) { return result_str(r, RESULT_LABEL, GBX_KEY_LABEL); }
size_t gbx_result_nscores(const struct gbx_result *r) { return r->nscores; }
const float *gbx_result_scores(const struct gbx_result *r) { return r->scores; }
unsigned gbx_result_groups(const struct gbx_result *r) { return r->groups; }
const char *gbx_result_placement(const struct gbx_result *r) { return result_str(r, RESULT_PLACEMENT, GBX_KEY_PLACEMENT); }
unsigned gbx_result_threads(const struct gbx_result *r) { return r->threads; }
unsigned long gbx_result_freq_khz(const struct gbx_result *r) { return r->freq_khz; }
const char *gbx_result_policy(const struct gbx_result *r) { return result_str(r, RESULT_POLICY, GBX_KEY_POLICY); }
double gbx_result_latency_us(const struct gbx_result *r) { return r->latency_us; }
double gbx_result_queue_us(const struct gbx_result *r) { return r->queue_us; }
double gbx_result_daemon_us(const struct gbx_result *r) { return r->daemon_us; }
double gbx_result_predicted_us(const struct gbx_result *r) { return r->predicted_us; }
double gbx_result_predicted_e2e_us(const struct gbx_result *r) { return r->predicted_e2e_us; }
double gbx_result_e2e_us(const struct gbx_result *r) { return r->e2e_us; }
double gbx_result_energy_uj(const struct gbx_result *r) { return r->energy_uj; }
const char *gbx_result_energy_source(const struct gbx_result *r) { return result_str(r, RESULT_ENERGY_SOURCE, GBX_KEY_ENERGY_SOURCE); }
bool gbx_result_deadline_met(const struct gbx_result *r) { return r->deadline_met; }
bool gbx_result_energy_met(const struct gbx_result *r) { return r->energy_met; }
bool gbx_result_feasible(const struct gbx_result *r) { return r->feasible; }
const char *gbx_result_reason(const struct gbx_result *r) { return result_str(r, RESULT_REASON, GBX_KEY_REASON); }
const char *gbx_result_fallback(const struct gbx_result *r) { return result_str(r, RESULT_FALLBACK, GBX_KEY_FALLBACK); }
bool gbx_result_cold(const struct gbx_result *r) { return r->cold; }
const char *gbx_result_json(const struct gbx_result *r) { return r->json ? r->json : ""; }
