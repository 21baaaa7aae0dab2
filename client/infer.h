/* SPDX-License-Identifier: MIT */
/* The INFER message on libgearbox's side, apart from the socket: the JSON
 * head of a request, and the reply read into a result (struct gbx_result,
 * opaque to programs: gearbox.h). Not installed; tests/client/test_reply.c
 * and tests/daemon/test_decode.c use it with the daemon's code. */
#ifndef GEARBOX_CLIENT_INFER_H
#define GEARBOX_CLIENT_INFER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

/* The string fields of a reply, in the order gearboxd writes them. */
enum { RESULT_LABEL, RESULT_PLACEMENT, RESULT_POLICY, RESULT_ENERGY_SOURCE, RESULT_REASON, RESULT_FALLBACK,
       RESULT_NSTR };

/* A result: the scores copied out as floats, the other numbers as fields,
 * the strings served from the reply's JSON kept parsed (obj) or, when the
 * fast reader read it, from text. */
struct gbx_result {
	uint32_t request_id;
	struct json_object *obj; /* the reply as json-c read it (NULL before the first, and when fast) */
	char *json;              /* its text */
	unsigned cls, groups, threads;
	unsigned long freq_khz;
	float *scores;
	size_t nscores, scores_cap;
	double latency_us, queue_us, daemon_us, predicted_us, predicted_e2e_us, e2e_us, energy_uj;
	bool deadline_met, energy_met, feasible, cold;
	/* The fast reader's (infer.c): the strings (NULL: none sent) in text.
	 * It reads a reply into the spare buffers and swaps them in when it
	 * has read all of it, so that a reply it leaves to json-c (which may
	 * refuse it) leaves this result as it was. */
	bool fast;
	const char *str[RESULT_NSTR];
	char *text, *spare_text;
	size_t text_cap, spare_text_cap;
	float *spare_scores;
	size_t spare_scores_cap;
};

/* The JSON head of an INFER request into head (INFER_HEAD_MAX bytes),
 * NUL-terminated: its length without the NUL. return_us < 0: not measured
 * yet (left out). daemon/decode.c's fast reader reads exactly this form. */
#define INFER_HEAD_MAX 160
int infer_head(char head[INFER_HEAD_MAX], uint32_t session, bool pixels, uint64_t sent_ns, double return_us);

/* Read an INFER reply (payload: malloc'ed, NUL-terminated) into r, which
 * then owns payload: the fast reader, or json-c where that leaves it.
 * *done_ns: the reply's "done_ns" (0: none), set unless the JSON was bad.
 * RESULT_BAD_JSON: payload freed, r as it was; RESULT_NO_MEMORY: r holds
 * the reply but not its scores (nscores as before). */
enum { RESULT_OK = 0, RESULT_BAD_JSON = -1, RESULT_NO_MEMORY = -2 };
int result_read(struct gbx_result *r, char *payload, uint64_t *done_ns);
/* Each reader alone (the tests compare them): the fast one returns false,
 * leaving r and payload as they were, for anything but the form gearboxd
 * writes (daemon/replies.c, infer_reply_frame). */
bool result_read_fast(struct gbx_result *r, char *payload, uint64_t *done_ns);
int result_read_json(struct gbx_result *r, char *payload, uint64_t *done_ns);
/* Forget the reply (its strings become ""), keeping the buffers. */
void result_clear(struct gbx_result *r);

#endif
