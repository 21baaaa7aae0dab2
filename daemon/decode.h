/* SPDX-License-Identifier: MIT */
/* Decoding requests: a request frame's payload into the fields its message
 * type carries, checked for type and range, with no daemon, connection or
 * socket involved (tests/fuzz/ drives it directly). What needs the daemon's
 * state (does the model, policy or session exist, may this client use it)
 * is the handlers' business (handlers.c). */
#ifndef GEARBOX_DAEMON_DECODE_H
#define GEARBOX_DAEMON_DECODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

struct budget {
	uint64_t deadline_us;   /* 0: none */
	uint64_t energy_uj;     /* 0: none */
	double min_accuracy;    /* 0: none */
	double rate_hz;         /* what the client says it will send, 0: not said (learnt) */
	double weight;          /* 0: not said (1) */
};

/* What a request says. Strings point into json. */
struct decoded {
	struct json_object *json;   /* the payload's object (decoded_clear puts it); NULL for an
	                               INFER that the fast reader read (decode.c) */
	uint32_t session;           /* 0: none named */
	const char *model;          /* NULL: none named (absent or null) */
	bool model_is_string;       /* else model is the JSON text of what was given */
	const char *policy;         /* likewise */
	bool policy_is_string;
	struct budget budget;       /* OPEN, BUDGET */
	uint64_t priority;          /* OPEN */
	bool pixels;                /* INFER: the input is uint8 pixels */
	bool all;                   /* PARETO: every point, not only the front */
	bool has_sent_ns, has_return_us;
	uint64_t sent_ns;           /* INFER: as the client gave them (handlers check them against the clock) */
	double return_us;
	const unsigned char *input; /* INFER: what follows the JSON and its NUL */
	size_t input_len;
};

/* Why a request was refused: a GBX_ERR_* code and a message. */
struct decode_error {
	const char *code;
	char why[300];
};

/* Decode a payload of len bytes (payload[len] is NUL) of a request type.
 * 0, or -1 with *err set (nothing to clear then). Types without fields need
 * one JSON object or nothing. */
int decode_request(uint16_t type, const unsigned char *payload, size_t len, struct decoded *out,
                   struct decode_error *err);
/* The same with json-c alone, without INFER's fast reader: what that must
 * equal (tests/daemon/test_decode.c, tests/fuzz/fuzz_request.c). */
int decode_request_json(uint16_t type, const unsigned char *payload, size_t len, struct decoded *out,
                        struct decode_error *err);
void decoded_clear(struct decoded *d);

#endif
