/* SPDX-License-Identifier: MIT */
/* libgearbox's asynchronous API against a running gearboxd: pipeline N
 * requests with gbx_send_infer, wait on gbx_fd with poll, collect every reply
 * with gbx_receive, and check that each request id comes back exactly once
 * with a sane result. Also checks the synchronous calls' error reporting,
 * synchronous calls that busy-poll for their reply (for longer than the
 * reply takes, and for 1 us, so that the poll runs out and recv sleeps), and
 * synchronous calls that wake ahead of replies that come later or sooner
 * than expected.
 *
 *   async_client SOCKET N */
#include "config.h"

#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/gearbox.h"

#define MAX_REQUESTS 64

static int
fail(const char *what, struct gbx_conn *c)
{
	fprintf(stderr, "async_client: %s: %s\n", what, c ? gbx_last_error(c) : gbx_connect_error());
	return 1;
}

/* The next result on `c` from the asynchronous API (events skipped). */
static int
receive_one(struct gbx_conn *c, struct gbx_result *r)
{
	for (;;) {
		struct pollfd pfd = { .fd = gbx_fd(c), .events = POLLIN };
		int ret = gbx_receive(c, r);
		if (ret < 0)
			return -1;
		if (ret == 1 && gbx_result_request_id(r) != 0)
			return 0;
		if (ret == 0 && poll(&pfd, 1, 10000) != 1)
			return -1;
	}
}

/* Queue `n` requests on `other`, then a synchronous one on `c`, which
 * waits behind them; then take other's replies. */
static int
infer_behind(struct gbx_conn *c, uint32_t session, struct gbx_conn *other, uint32_t other_session, unsigned n,
             const float *input, struct gbx_result *r, uint32_t expected_class, unsigned expected_groups)
{
	struct gbx_result *theirs = gbx_result_new();
	uint32_t id;
	int ret = 0;

	for (unsigned i = 0; i < n && ret == 0; i++)
		if (gbx_send_infer(other, other_session, input, 784, &id) != 0)
			ret = fail("queue requests ahead", other);
	if (ret == 0 && gbx_infer(c, session, input, 784, r) != 0)
		ret = fail("infer behind a queue", c);
	/* (the class is compared at the same g only: behind a queue the policy
	 * may take fewer groups, and some images' class differs between g) */
	if (ret == 0 && ((gbx_result_groups(r) == expected_groups && gbx_result_class(r) != expected_class) ||
	                 (n > 0 && gbx_result_queue_us(r) <= 0))) {
		fprintf(stderr, "async_client: behind %u queued requests: class %u (want %u), queue_us %.1f, on %s\n", n,
		        (unsigned)gbx_result_class(r), (unsigned)expected_class, gbx_result_queue_us(r),
		        gbx_result_placement(r));
		ret = 1;
	}
	for (unsigned i = 0; i < n && ret == 0; i++)
		if (receive_one(other, theirs) != 0)
			ret = fail("take the second connection's replies", other);
	gbx_result_free(theirs);
	return ret;
}

/* Synchronous calls that wake ahead of their reply (the default) when the
 * reply comes much later than the connection's history says (behind 16
 * queued requests: the poll runs out and recv sleeps), and much sooner
 * (after a history of replies behind 2 queued requests: the reply comes
 * while the timer is still armed). Each must return its own result. */
static int
wake_ahead_late_and_early(const char *socket, struct gbx_conn *c, uint32_t session, const float *input,
                          struct gbx_result *r)
{
	struct gbx_conn *other = gbx_connect(socket);
	struct gbx_budget b = { .deadline_us = 1000000 };
	uint32_t other_session, expected_class;
	unsigned expected_groups;

	if (other == NULL || gbx_open_session(other, NULL, &b, &other_session) != 0)
		return fail("second connection", other);
	if (gbx_set_wake_ahead(c, GBX_WAKE_AHEAD_MAX_US + 1) == 0 || strstr(gbx_last_error(c), "limit") == NULL)
		return fail("a wake-ahead margin over the limit should be refused", c);
	if (gbx_set_busy_poll(c, 0) != 0 || gbx_set_wake_ahead(c, GBX_WAKE_AHEAD_DEFAULT_US) != 0)
		return fail("set wake-ahead", c);
	for (unsigned i = 0; i < 16; i++)
		if (gbx_infer(c, session, input, 784, r) != 0)
			return fail("infer with wake-ahead", c);
	expected_class = gbx_result_class(r);
	expected_groups = gbx_result_groups(r);
	if (infer_behind(c, session, other, other_session, 16, input, r, expected_class, expected_groups) != 0)
		return 1;
	for (unsigned i = 0; i < 16; i++)
		if (infer_behind(c, session, other, other_session, 2, input, r, expected_class, expected_groups) != 0)
			return 1;
	for (unsigned i = 0; i < 16; i++)
		if (infer_behind(c, session, other, other_session, 0, input, r, expected_class, expected_groups) != 0)
			return 1;
	gbx_disconnect(other);
	printf("wake-ahead: replies later and sooner than the connection's history\n");
	return 0;
}

/* The named requests and what the opaque result gives, as a program built
 * against the installed header sees them. */
static int
abi_checks(struct gbx_conn *c)
{
	struct gbx_budget zero = { .deadline_us = 1000000 }, sized = GBX_BUDGET_INIT;
	struct gbx_result *r = gbx_result_new();
	char *replies[6] = { NULL };
	uint8_t pixels[784];
	uint32_t s1, s2, id;
	int ret = 0;

	if (r == NULL)
		return fail("gbx_result_new", c);
	if (gbx_result_request_id(r) != 0 || gbx_result_nscores(r) != 0 || strcmp(gbx_result_label(r), "") != 0 ||
	    strcmp(gbx_result_json(r), "") != 0 || !isnan(gbx_result_daemon_us(r)))
		ret = fail("a new result should be empty", c);
	/* every named request answers with its keys */
	const struct {
		const char *what, *key;
		int ret;
	} calls[] = {
		{ "gbx_hello", "\"server\"", gbx_hello(c, "async_client", &replies[0]) },
		{ "gbx_models", "\"input_shape\"", gbx_models(c, &replies[1]) },
		{ "gbx_status", "\"session_list\"", gbx_status(c, &replies[2]) },
		{ "gbx_stats", "\"sessions\"", gbx_stats(c, 0, &replies[3]) },
		{ "gbx_platform", "\"placements\"", gbx_platform(c, &replies[4]) },
		{ "gbx_pareto", "\"all\"", gbx_pareto(c, NULL, NULL, true, &replies[5]) },
	};
	for (unsigned i = 0; i < 6 && ret == 0; i++) {
		if (calls[i].ret != 0 || replies[i] == NULL || strstr(replies[i], calls[i].key) == NULL) {
			fprintf(stderr, "async_client: %s: %s\n", calls[i].what, replies[i] ? replies[i] : gbx_last_error(c));
			ret = 1;
		}
	}
	for (unsigned i = 0; i < 6; i++)
		free(replies[i]);
	/* a budget without its size (the first layout) and one with it */
	sized.deadline_us = 2000000;
	if (ret == 0 && (gbx_open_session(c, NULL, &zero, &s1) != 0 || gbx_open_session(c, NULL, &sized, &s2) != 0))
		ret = fail("open with a budget of size 0 and of GBX_BUDGET_INIT", c);
	if (ret == 0) {
		char *st = NULL;
		if (gbx_status(c, &st) != 0 || strstr(st, "\"deadline_us\":1000000") == NULL ||
		    strstr(st, "\"deadline_us\":2000000") == NULL)
			ret = fail("both budgets should reach the daemon", c);
		free(st);
	}
	for (unsigned i = 0; i < sizeof(pixels); i++)
		pixels[i] = (uint8_t)(i * 3);
	if (ret == 0 && (gbx_send_infer_pixels(c, s2, pixels, sizeof(pixels), &id) != 0 || receive_one(c, r) != 0 ||
	                 gbx_result_request_id(r) != id))
		ret = fail("gbx_send_infer_pixels", c);
	if (ret == 0 && (gbx_result_nscores(r) != 10 || strstr(gbx_result_json(r), "\"label\"") == NULL ||
	                 strcmp(gbx_result_label(r), "") == 0 || strcmp(gbx_result_placement(r), "") == 0 ||
	                 strcmp(gbx_result_policy(r), "") == 0 || strcmp(gbx_result_energy_source(r), "") == 0 ||
	                 /* a reason exactly when infeasible (a busy machine may make it so) */
	                 gbx_result_feasible(r) != (strcmp(gbx_result_reason(r), "") == 0) ||
	                 isnan(gbx_result_daemon_us(r)) || gbx_result_scores(r) == NULL)) {
		fprintf(stderr, "async_client: the result's accessors disagree with its JSON: %s\n", gbx_result_json(r));
		ret = 1;
	}
	if (ret == 0 && (gbx_close_session(c, s1) != 0 || gbx_close_session(c, s2) != 0))
		ret = fail("close", c);
	if (ret == 0)
		printf("abi: named requests, budgets with and without their size, an opaque result's accessors\n");
	gbx_result_free(r);
	return ret;
}

int
main(int argc, char **argv)
{
	struct gbx_conn *c;
	struct gbx_budget b = { .deadline_us = 1000000 };
	struct gbx_result *r = gbx_result_new();
	uint32_t session, ids[MAX_REQUESTS];
	unsigned n = argc > 2 ? (unsigned)atoi(argv[2]) : 16, got = 0, seen[MAX_REQUESTS] = { 0 };
	float input[784];

	if (argc < 2 || n == 0 || n > MAX_REQUESTS) {
		fprintf(stderr, "usage: async_client SOCKET [N <= %d]\n", MAX_REQUESTS);
		return 2;
	}
	if ((c = gbx_connect(argv[1])) == NULL)
		return fail("connect", NULL);
	/* Errors come back with the daemon's words. */
	if (gbx_open_session(c, "no-such-model", &b, &session) == 0 || strstr(gbx_last_error(c), "no model") == NULL)
		return fail("opening a missing model should fail with the daemon's message", c);
	if (strcmp(gbx_last_error_code(c), "no-such-model") != 0)
		return fail("the error code of a missing model", c);
	if (abi_checks(c) != 0)
		return 1;
	if (gbx_open_session(c, NULL, &b, &session) != 0)
		return fail("open", c);
	if (gbx_infer(c, session, input, 10, r) == 0 || strstr(gbx_last_error(c), "expects 784") == NULL ||
	    strcmp(gbx_last_error_code(c), "bad-input") != 0)
		return fail("a short input should be refused (bad-input)", c);
	for (unsigned i = 0; i < 784; i++)
		input[i] = (float)(i % 29) / 29.0f - 0.5f;
	for (unsigned i = 0; i < n; i++)
		if (gbx_send_infer(c, session, input, 784, &ids[i]) != 0)
			return fail("send", c);
	while (got < n) {
		struct pollfd pfd = { .fd = gbx_fd(c), .events = POLLIN };
		int ret;
		if (poll(&pfd, 1, 10000) != 1)
			return fail("no reply within 10 s", c);
		while ((ret = gbx_receive(c, r)) == 1) {
			unsigned k;
			if (gbx_result_request_id(r) == 0)
				continue; /* an event */
			for (k = 0; k < n && ids[k] != gbx_result_request_id(r); k++)
				;
			if (k == n || seen[k]++) {
				fprintf(stderr, "async_client: unexpected or repeated reply id %u\n", gbx_result_request_id(r));
				return 1;
			}
			if (gbx_result_groups(r) < 1 || gbx_result_groups(r) > 4 || gbx_result_nscores(r) != 10 || gbx_result_class(r) >= 10 || gbx_result_latency_us(r) <= 0) {
				fprintf(stderr, "async_client: implausible result (g=%u, %zu scores, class %u)\n", gbx_result_groups(r),
				        gbx_result_nscores(r), gbx_result_class(r));
				return 1;
			}
			got++;
		}
		if (ret < 0)
			return fail("receive", c);
	}
	printf("async: %u pipelined requests, %u replies, each id once\n", n, got);
	if (gbx_set_busy_poll(c, GBX_BUSY_POLL_MAX_US + 1) == 0 || strstr(gbx_last_error(c), "limit") == NULL)
		return fail("a busy poll over the limit should be refused", c);
	const unsigned polls_us[] = { 1, 100000 };
	for (unsigned k = 0; k < 2; k++) {
		if (gbx_set_busy_poll(c, polls_us[k]) != 0)
			return fail("set busy poll", c);
		for (unsigned i = 0; i < 8; i++) {
			if (gbx_infer(c, session, input, 784, r) != 0)
				return fail("busy-polled infer", c);
			if (gbx_result_nscores(r) != 10 || gbx_result_class(r) >= 10 || gbx_result_latency_us(r) <= 0)
				return fail("implausible busy-polled result", c);
		}
	}
	printf("busy poll: 16 synchronous requests, polling 1 us and 100 ms\n");
	if (wake_ahead_late_and_early(argv[1], c, session, input, r) != 0)
		return 1;
	if (gbx_close_session(c, session) != 0)
		return fail("close", c);
	gbx_disconnect(c);
	gbx_result_free(r);
	return 0;
}
