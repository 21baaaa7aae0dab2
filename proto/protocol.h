/* SPDX-License-Identifier: MIT */
/* The gearbox protocol, defined once for gearboxd and libgearbox (and any
 * other language: see docs/protocol.md).
 *
 * A SOCK_STREAM Unix socket carries frames. Every frame is a fixed 16-byte
 * header followed by `length` payload bytes:
 *
 *   offset  size  field
 *   0       4     magic    "GBX1"
 *   4       2     version  GBX_PROTOCOL_VERSION (little-endian)
 *   6       2     type     enum gbx_msg_type (little-endian)
 *   8       4     id       chosen by the client, echoed in the reply
 *   12      4     length   payload bytes, at most GBX_MAX_PAYLOAD (little-endian)
 *
 * Payloads are one JSON object (UTF-8, no NUL), except GBX_MSG_INFER whose
 * payload is a JSON object, a NUL byte, then the input tensor as raw
 * little-endian float32 values (C x H x W of the model, already normalised)
 * or as raw uint8 pixels when the JSON says "pixels": true.
 *
 * A frame whose header is broken (bad magic, version or length) closes the
 * connection after one GBX_MSG_ERROR; a well-framed bad request gets a
 * GBX_MSG_ERROR naming the problem and the connection stays open.
 */
#ifndef GEARBOX_PROTOCOL_H
#define GEARBOX_PROTOCOL_H

#include <stdint.h>
#include <string.h>

#define GBX_PROTOCOL_MAGIC "GBX1"
#define GBX_PROTOCOL_VERSION 1
#define GBX_HEADER_SIZE 16
#define GBX_MAX_PAYLOAD (4u << 20)
#define GBX_DEFAULT_SOCKET "/run/gearbox/gearboxd.sock"

/* Requests are odd, replies even; a reply is its request's type + 1. */
enum gbx_msg_type {
	GBX_MSG_ERROR = 0,         /* reply to anything: {"error": "...", "code": "..."} */
	GBX_MSG_HELLO = 1,         /* {"client": "name"} */
	GBX_MSG_HELLO_REPLY = 2,   /* {"server": "gearboxd", "version": "0.1.0", "protocol": 1} */
	GBX_MSG_MODELS = 3,        /* {} */
	GBX_MSG_MODELS_REPLY = 4,  /* {"models": [{"name", "groups", "input_shape", "classes", "labels", "accuracy"}]} */
	GBX_MSG_OPEN = 5,          /* {"model", "deadline_us", "energy_uj", "min_accuracy", "priority", "policy",
	                              "rate_hz", "weight"} */
	GBX_MSG_OPEN_REPLY = 6,    /* {"session": N} */
	GBX_MSG_INFER = 7,         /* {"session": N} NUL input */
	GBX_MSG_INFER_REPLY = 8,   /* {"class", "label", "scores", "groups", "placement", "threads", "freq_khz",
	                              "latency_us", "queue_us", "energy_uj", "energy_source", "deadline_met",
	                              "energy_met", "feasible", "reason"} */
	GBX_MSG_BUDGET = 9,        /* {"session", "deadline_us", "energy_uj", "min_accuracy", "rate_hz", "weight"} */
	GBX_MSG_BUDGET_REPLY = 10, /* {"session"} */
	GBX_MSG_STATUS = 11,       /* {} */
	GBX_MSG_STATUS_REPLY = 12, /* {"uptime_s", "models", "sessions", "clients", "requests", "busy", ...} */
	GBX_MSG_STATS = 13,        /* {"session": N} or {} for all */
	GBX_MSG_STATS_REPLY = 14,  /* {"sessions": [{"session", "model", "requests", "mean_groups", "deadline_hit_rate",
	                              "latency_us": {"p50", "p90", "p99"}, "window"}], "served", "requests_per_s"} */
	GBX_MSG_SUBSCRIBE = 15,    /* {} : from now on the daemon sends GBX_MSG_EVENT frames */
	GBX_MSG_SUBSCRIBE_REPLY = 16,
	GBX_MSG_RELOAD = 17,       /* {} : root or the gearbox group only */
	GBX_MSG_RELOAD_REPLY = 18, /* {"reloaded": true, "error": null, "loading": [{"model", "path"}]} */
	GBX_MSG_CLOSE = 19,        /* {"session": N} */
	GBX_MSG_CLOSE_REPLY = 20,
	GBX_MSG_PLATFORM = 21,     /* {} */
	GBX_MSG_PLATFORM_REPLY = 22, /* what `gearbox platform --json` prints */
	GBX_MSG_PARETO = 23,       /* {"model", "policy", "all"} (all optional) */
	GBX_MSG_PARETO_REPLY = 24, /* {"model", "policy", "points": N, "front" (or "all" when asked): [{"groups",
	                              "placement", "threads", "freq_khz", "accuracy", "latency_us", "energy_uj",
	                              "power_w"}]} */
	GBX_MSG_CALIBRATE = 25,    /* {"model"} (optional): root or the gearbox group only */
	GBX_MSG_CALIBRATE_REPLY = 26, /* {"model", "measured": N, "seconds"} */
	GBX_MSG_PLAN = 27,         /* {} */
	GBX_MSG_PLAN_REPLY = 28,   /* {"enabled", "solver", "generation", "age_s", "reason", "all_served", "tenants": [...],
	                              "places": [...], "constraints": [...], "mip": {...}} (docs/protocol.md) */
	GBX_MSG_EVENT = 30,        /* unsolicited: {"event": "operating-point"|"budget-violation"|..., ...} */
	GBX_MSG_TYPE_MAX = 31,
};

/* Keys, named once. The replies that carry each are in docs/protocol.md. */
#define GBX_KEY_ERROR "error"
#define GBX_KEY_CODE "code"
#define GBX_KEY_SESSION "session"
#define GBX_KEY_MODEL "model"
#define GBX_KEY_POLICY "policy"
#define GBX_KEY_DEADLINE_US "deadline_us"
#define GBX_KEY_ENERGY_UJ "energy_uj"
#define GBX_KEY_MIN_ACCURACY "min_accuracy"
#define GBX_KEY_PRIORITY "priority"
#define GBX_KEY_RATE_HZ "rate_hz"       /* OPEN, BUDGET: requests per second the session will send (planning) */
#define GBX_KEY_WEIGHT "weight"         /* OPEN, BUDGET: its weight when the plan cannot serve everyone */
#define GBX_KEY_PIXELS "pixels"
#define GBX_KEY_ALL "all"               /* PARETO: every operating point, not only the front */
#define GBX_KEY_FRONT "front"
#define GBX_KEY_SENT_NS "sent_ns"       /* INFER: the client's CLOCK_MONOTONIC when it sent it */
#define GBX_KEY_RETURN_US "return_us"   /* INFER: how long the previous reply took to reach it */
#define GBX_KEY_CLASS "class"
#define GBX_KEY_LABEL "label"
#define GBX_KEY_SCORES "scores"
#define GBX_KEY_GROUPS "groups"
#define GBX_KEY_PLACEMENT "placement"
#define GBX_KEY_THREADS "threads"
#define GBX_KEY_FREQ_KHZ "freq_khz"
#define GBX_KEY_PREDICTED_US "predicted_us"         /* the inference, as predicted when chosen */
#define GBX_KEY_PREDICTED_E2E_US "predicted_e2e_us" /* sending to having the reply, as predicted */
#define GBX_KEY_LATENCY_US "latency_us"             /* the inference, measured */
#define GBX_KEY_QUEUE_US "queue_us"                 /* read to started */
#define GBX_KEY_DAEMON_US "daemon_us"               /* read to the reply leaving */
#define GBX_KEY_ENERGY_SOURCE "energy_source"
#define GBX_KEY_DEADLINE_MET "deadline_met"
#define GBX_KEY_ENERGY_MET "energy_met"
#define GBX_KEY_FEASIBLE "feasible"
#define GBX_KEY_COLD "cold"                         /* its placement had been idle (cold start) */
#define GBX_KEY_REASON "reason"
#define GBX_KEY_FALLBACK "fallback"
#define GBX_KEY_E2E_US "e2e_us"
#define GBX_KEY_DONE_NS "done_ns"

/* Error codes carried in GBX_MSG_ERROR's "code". */
#define GBX_ERR_BAD_FRAME "bad-frame"       /* the connection is closed after it */
#define GBX_ERR_BAD_REQUEST "bad-request"
#define GBX_ERR_UNKNOWN_TYPE "unknown-type"
#define GBX_ERR_NO_MODEL "no-such-model"
#define GBX_ERR_NO_SESSION "no-such-session"
#define GBX_ERR_BAD_INPUT "bad-input"
#define GBX_ERR_BUSY "busy"                 /* queue full: try again later */
#define GBX_ERR_DENIED "permission-denied"
#define GBX_ERR_INTERNAL "internal"
#define GBX_ERR_LIMIT "limit"               /* over a per-client limit: the connection is closed after it */

struct gbx_header {
	uint16_t version;
	uint16_t type;
	uint32_t id;
	uint32_t length;
};

static inline void
gbx_put_le16(unsigned char *p, uint16_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
}

static inline void
gbx_put_le32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t
gbx_get_le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline void
gbx_encode_header(unsigned char out[GBX_HEADER_SIZE], uint16_t type, uint32_t id, uint32_t length)
{
	memcpy(out, GBX_PROTOCOL_MAGIC, 4);
	gbx_put_le16(out + 4, GBX_PROTOCOL_VERSION);
	gbx_put_le16(out + 6, type);
	gbx_put_le32(out + 8, id);
	gbx_put_le32(out + 12, length);
}

/* Decode and check a header. Returns NULL when it is fine, else what is wrong
 * (the caller sends GBX_ERR_BAD_FRAME and closes). */
static inline const char *
gbx_decode_header(const unsigned char in[GBX_HEADER_SIZE], struct gbx_header *h)
{
	if (memcmp(in, GBX_PROTOCOL_MAGIC, 4) != 0)
		return "bad magic (not a gearbox protocol frame)";
	h->version = (uint16_t)(in[4] | in[5] << 8);
	h->type = (uint16_t)(in[6] | in[7] << 8);
	h->id = gbx_get_le32(in + 8);
	h->length = gbx_get_le32(in + 12);
	if (h->version != GBX_PROTOCOL_VERSION)
		return "unsupported protocol version";
	if (h->length > GBX_MAX_PAYLOAD)
		return "payload length over the maximum frame size";
	return NULL;
}

#endif
