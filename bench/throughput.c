/* SPDX-License-Identifier: MIT */
/* bench/throughput — saturated throughput of one model on one placement
 * against several placements at once (issue 15: two single-CPU placements
 * of one model should give >= 1.7x one).
 *
 * One client thread keeps --pipeline requests in flight (gbx_send_infer,
 * then a new one for every reply gbx_receive returns), so the client costs
 * a few µs of CPU per request and never leaves the daemon without work. It
 * runs for --seconds with each policy in turn, alternating --rounds times so
 * that drift of the machine hits both alike, and prints requests/s per
 * round, the placements the replies name, the client's CPU time per
 * request, and the ratio of the medians.
 *
 *   bench/throughput SOCKET --one POLICY --all POLICY [--seconds S] [--pipeline K] [--rounds R]
 *
 * scripts/bench-throughput.sh starts gearboxd with a CPU cluster split per
 * CPU and two pinned policies, and runs this. */
#include "config.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/gearbox.h"
#include "common/clock.h"

struct round_result {
	double per_s;
	double client_cpu_us;  /* client CPU time per request */
	char places[4][32];    /* placements the replies named */
	unsigned place_n[4];
	double inference_us;   /* median inference time the daemon measured */
};

static double
thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The next reply (events skipped), waiting for it: 0, or -1 on error. */
static int
next_reply(struct gbx_conn *c, struct gbx_result *r)
{
	for (;;) {
		int got = gbx_receive(c, r);
		if (got < 0)
			return -1;
		if (got == 1 && gbx_result_request_id(r) != 0)
			return 0;
		if (got == 0) {
			struct pollfd p = { .fd = gbx_fd(c), .events = POLLIN };
			if (poll(&p, 1, 10000) != 1)
				return -1;
		}
	}
}

static void
count_place(struct round_result *rr, const char *place)
{
	for (unsigned i = 0; i < 4; i++) {
		if (rr->place_n[i] == 0)
			snprintf(rr->places[i], sizeof(rr->places[i]), "%s", place);
		if (strcmp(rr->places[i], place) == 0) {
			rr->place_n[i]++;
			return;
		}
	}
}

/* One round: --pipeline requests in flight for `seconds` on a session of
 * `policy`. Replies still in flight at the end are drained, not counted. */
static int
run_round(const char *socket, const char *policy, double seconds, unsigned pipeline, struct round_result *rr)
{
	struct gbx_conn *c = gbx_connect(socket);
	struct gbx_budget b = { .deadline_us = 10000000 };
	struct gbx_result *r = gbx_result_new();
	float *input = NULL;
	size_t n = 784;
	uint32_t s, id;
	unsigned inflight = 0, done = 0, nlat = 0;
	static double lat[1 << 20];
	double t0, cpu0;
	int ret = -1;

	memset(rr, 0, sizeof(*rr));
	if (c == NULL) {
		fprintf(stderr, "bench/throughput: %s\n", gbx_connect_error());
		gbx_result_free(r);
		return -1;
	}
	input = calloc(n, sizeof(float));
	if (r == NULL || input == NULL || gbx_open_session_policy(c, NULL, &b, policy, &s) != 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		input[i] = (float)(i % 17) / 17.0f;
	/* not counted: the first requests warm the daemon for this session */
	for (unsigned i = 0; i < 20; i++)
		if (gbx_infer(c, s, input, n, r) != 0)
			goto out;
	cpu0 = thread_cpu_us();
	t0 = monotonic_us();
	for (; inflight < pipeline; inflight++)
		if (gbx_send_infer(c, s, input, n, &id) != 0)
			goto out;
	while (monotonic_us() - t0 < seconds * 1e6) {
		if (next_reply(c, r) != 0)
			goto out;
		done++;
		count_place(rr, gbx_result_placement(r));
		if (nlat < sizeof(lat) / sizeof(lat[0]))
			lat[nlat++] = gbx_result_latency_us(r);
		if (gbx_send_infer(c, s, input, n, &id) != 0)
			goto out;
	}
	rr->per_s = done / ((monotonic_us() - t0) / 1e6);
	rr->client_cpu_us = (thread_cpu_us() - cpu0) / (done ? done : 1);
	qsort(lat, nlat, sizeof(lat[0]), cmp);
	rr->inference_us = nlat ? lat[nlat / 2] : 0;
	for (; inflight > 0; inflight--)
		if (next_reply(c, r) != 0)
			goto out;
	ret = 0;
out:
	if (ret != 0)
		fprintf(stderr, "bench/throughput: %s\n", gbx_last_error(c));
	gbx_disconnect(c);
	free(input);
	gbx_result_free(r);
	return ret;
}

static void
print_round(const char *label, unsigned k, const struct round_result *rr)
{
	printf("%-5s %5u %12.0f %14.1f %14.1f   ", label, k, rr->per_s, rr->inference_us, rr->client_cpu_us);
	for (unsigned i = 0; i < 4 && rr->place_n[i]; i++)
		printf("%s %u  ", rr->places[i], rr->place_n[i]);
	printf("\n");
}

int
main(int argc, char **argv)
{
	const char *usage = "usage: bench/throughput SOCKET --one POLICY --all POLICY [--seconds S] [--pipeline K] "
	                    "[--rounds R]\n";
	const char *one = NULL, *all = NULL;
	double seconds = 3;
	unsigned pipeline = 8, rounds = 3;
	double one_s[64], all_s[64];

	if (argc < 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return 2;
	}
	for (int i = 2; i < argc; i += 2) {
		if (i + 1 >= argc) {
			fprintf(stderr, "bench/throughput: %s needs a value\n%s", argv[i], usage);
			return 2;
		} else if (strcmp(argv[i], "--one") == 0) {
			one = argv[i + 1];
		} else if (strcmp(argv[i], "--all") == 0) {
			all = argv[i + 1];
		} else if (strcmp(argv[i], "--seconds") == 0) {
			seconds = atof(argv[i + 1]);
		} else if (strcmp(argv[i], "--pipeline") == 0) {
			pipeline = (unsigned)atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--rounds") == 0) {
			rounds = (unsigned)atoi(argv[i + 1]);
		} else {
			fprintf(stderr, "bench/throughput: unknown option %s\n%s", argv[i], usage);
			return 2;
		}
	}
	if (one == NULL || all == NULL || seconds <= 0 || pipeline < 1 || pipeline > 32 || rounds < 1 || rounds > 64) {
		fprintf(stderr, "bench/throughput: --one and --all are needed; --seconds > 0, --pipeline 1-32, "
		                "--rounds 1-64\n%s", usage);
		return 2;
	}
	printf("gearboxd at %s: one client, %u requests in flight, %.1f s per round, policies '%s' and '%s' "
	       "alternating\n\n", argv[1], pipeline, seconds, one, all);
	printf("%-5s %5s %12s %14s %14s   %s\n", "run", "round", "requests/s", "inference_us", "client_cpu_us",
	       "replies per placement");
	for (unsigned k = 0; k < rounds; k++) {
		struct round_result rr;
		if (run_round(argv[1], one, seconds, pipeline, &rr) != 0)
			return 1;
		one_s[k] = rr.per_s;
		print_round("one", k + 1, &rr);
		if (run_round(argv[1], all, seconds, pipeline, &rr) != 0)
			return 1;
		all_s[k] = rr.per_s;
		print_round("all", k + 1, &rr);
	}
	qsort(one_s, rounds, sizeof(double), cmp);
	qsort(all_s, rounds, sizeof(double), cmp);
	printf("\nmedian requests/s: one %.0f, all %.0f; all / one = %.2f\n", one_s[rounds / 2], all_s[rounds / 2],
	       all_s[rounds / 2] / one_s[rounds / 2]);
	return 0;
}
