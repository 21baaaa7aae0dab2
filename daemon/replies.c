/* SPDX-License-Identifier: MIT */
/* Encoders: JSON replies and errors (json-c), events to subscribers, and
 * the INFER reply, which is written with snprintf rather than json-c
 * objects since it is on every request's critical path (5.3 us per reply
 * instead of 7.9 us on the development VM). */
#include "config.h"

#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/daemon.h"
#include "daemon/log.h"

int
send_json(struct conn *c, uint16_t type, uint32_t id, struct json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	int ret = conn_send_frame(c, type, id, text, strlen(text));

	json_object_put(o);
	return ret;
}

int
send_error(struct conn *c, uint32_t id, const char *code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, GBX_KEY_ERROR, json_object_new_string(msg));
	json_object_object_add(o, GBX_KEY_CODE, json_object_new_string(code));
	log_debug("client %llu: %s: %s", (unsigned long long)c->id, code, msg);
	return send_json(c, GBX_MSG_ERROR, id, o);
}

void
broadcast_event(struct daemon *d, struct json_object *event)
{
	for (struct conn *c = d->conns; c != NULL; c = c->next)
		if (c->subscribed)
			send_json(c, GBX_MSG_EVENT, 0, json_object_get(event));
	json_object_put(event);
}

/* ---- the INFER reply ------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	bool full;
};

static void __attribute__((format(printf, 2, 3)))
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

/* A JSON string (or null), escaped. Runs of plain characters are copied
 * whole. */
static void
put_string(struct out *o, const char *key, const char *v)
{
	put(o, ",\"%s\":", key);
	if (v == NULL) {
		put(o, "null");
		return;
	}
	put(o, "\"");
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0';) {
		size_t plain = 0;
		while (p[plain] != '\0' && p[plain] != '"' && p[plain] != '\\' && p[plain] >= 0x20)
			plain++;
		if (plain > 0) {
			put(o, "%.*s", (int)plain, (const char *)p);
			p += plain;
		} else if (*p == '"' || *p == '\\') {
			put(o, "\\%c", *p++);
		} else {
			put(o, "\\u%04x", *p++);
		}
	}
	put(o, "\"");
}

/* ,"key":number with one decimal, or null when it is not finite: JSON has
 * no NaN or infinity, and a reply with "-nan" or "inf" (what printf writes)
 * was refused by the client as bad JSON */
static void
put_number(struct out *o, const char *key, double v)
{
	if (isfinite(v))
		put(o, ",\"%s\":%.1f", key, v);
	else
		put(o, ",\"%s\":null", key);
}

unsigned char *
infer_reply_frame(const struct request *r, const char *placement, uint64_t sent_ns, size_t *frame_len)
{
	const struct dnn_model *m = r->host->model;
	const struct pol_point *pt = &r->choice.point;
	double total_us = request_e2e_us(r);
	bool energy_met = r->budget.energy_uj == 0 || r->energy_uj <= (double)r->budget.energy_uj;
	unsigned classes = dnn_model_classes(m);
	struct out o = { NULL, GBX_HEADER_SIZE, GBX_HEADER_SIZE + 2048 + (size_t)classes * 20 + 4 * sizeof(r->fallback),
		         false };

	if ((o.buf = malloc(o.cap)) == NULL)
		return NULL;
	put(&o, "{\"" GBX_KEY_SESSION "\":%u,\"" GBX_KEY_CLASS "\":%u", r->session, r->cls);
	put_string(&o, GBX_KEY_LABEL, dnn_model_label(m, r->cls));
	put(&o, ",\"" GBX_KEY_SCORES "\":[");
	for (unsigned i = 0; i < classes; i++) /* float precision: 9 digits; JSON has no NaN or infinity */
		if (isfinite(r->output[i]))
			put(&o, "%s%.9g", i ? "," : "", (double)r->output[i]);
		else
			put(&o, "%snull", i ? "," : "");
	put(&o, "],\"" GBX_KEY_GROUPS "\":%u", pt->groups);
	put_string(&o, GBX_KEY_PLACEMENT, placement);
	put(&o, ",\"" GBX_KEY_THREADS "\":%u,\"" GBX_KEY_FREQ_KHZ "\":%lu", pt->threads, r->khz);
	put_string(&o, GBX_KEY_POLICY, r->params.name);
	put_number(&o, GBX_KEY_PREDICTED_US, pt->latency_us);
	put_number(&o, GBX_KEY_PREDICTED_E2E_US, r->predicted_e2e_us);
	put_number(&o, GBX_KEY_LATENCY_US, r->latency_us);
	put_number(&o, GBX_KEY_QUEUE_US, r->queue_us);
	put_number(&o, GBX_KEY_DAEMON_US, (double)(sent_ns - r->received_ns) / 1e3);
	put_number(&o, GBX_KEY_ENERGY_UJ, r->energy_uj);
	put_string(&o, GBX_KEY_ENERGY_SOURCE, r->energy_source ? r->energy_source : "?");
	put(&o, ",\"" GBX_KEY_DEADLINE_MET "\":%s,\"" GBX_KEY_ENERGY_MET "\":%s,\"" GBX_KEY_FEASIBLE "\":%s,\"" GBX_KEY_COLD
	        "\":%s",
	    request_met(r) ? "true" : "false", energy_met ? "true" : "false", r->choice.feasible ? "true" : "false",
	    r->cold ? "true" : "false");
	put_string(&o, GBX_KEY_REASON, r->choice.feasible ? NULL : r->choice.reason);
	put_string(&o, GBX_KEY_FALLBACK, r->fallback[0] ? r->fallback : NULL);
	put_number(&o, GBX_KEY_E2E_US, total_us);
	put(&o, ",\"" GBX_KEY_DONE_NS "\":%llu}", (unsigned long long)r->done_ns);
	if (o.full) { /* cannot happen with the sizes above; say so rather than send half */
		free(o.buf);
		return NULL;
	}
	gbx_encode_header((unsigned char *)o.buf, GBX_MSG_INFER_REPLY, r->msg_id, (uint32_t)(o.len - GBX_HEADER_SIZE));
	*frame_len = o.len;
	return (unsigned char *)o.buf;
}
