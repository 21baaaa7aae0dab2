/* bench/daemon — what gearboxd adds to an inference: round-trip time of a
 * budgeted infer seen by the client minus the inference time the daemon
 * measured (p50, p99), with 1 and 8 concurrent clients, and requests/s at
 * saturation (clients sending back to back). Each is measured twice: with
 * clients that sleep until their reply comes (libgearbox's default) and with
 * clients that busy-poll for it (gbx_set_busy_poll), which saves the
 * receiver's wake-up at the cost of a CPU kept busy.
 *
 *   bench/daemon SOCKET [--requests N] [--busy-poll US]
 *
 * Start gearboxd first (scripts/bench-daemon.sh does both). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/gearbox.h"

struct worker {
	const char *socket;
	unsigned requests;
	unsigned busy_poll_us;
	double *overhead, *rtt, *unqueued;
	unsigned done;
	unsigned threads_seen[65]; /* requests per thread count the daemon chose */
	int error;
};

static double
now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *
client_main(void *arg)
{
	struct worker *w = arg;
	struct gbx_conn *c = gbx_connect(w->socket);
	struct gbx_budget b = { .deadline_us = 1000000 };
	struct gbx_result *r = malloc(sizeof(*r));
	uint8_t pixels[784];
	uint32_t s;

	for (unsigned i = 0; i < sizeof(pixels); i++)
		pixels[i] = (uint8_t)(i * 7);
	if (c == NULL || gbx_set_busy_poll(c, w->busy_poll_us) != 0 || gbx_open_session(c, NULL, &b, &s) != 0) {
		fprintf(stderr, "bench/daemon: %s\n", c ? gbx_last_error(c) : gbx_connect_error());
		w->error = 1;
		free(r);
		return NULL;
	}
	for (unsigned i = 0; i < w->requests; i++) {
		double t0 = now_us();
		if (gbx_infer_pixels(c, s, pixels, sizeof(pixels), r) != 0) {
			fprintf(stderr, "bench/daemon: %s\n", gbx_last_error(c));
			w->error = 1;
			break;
		}
		w->rtt[i] = now_us() - t0;
		w->overhead[i] = w->rtt[i] - r->latency_us;
		w->unqueued[i] = w->overhead[i] - r->queue_us;
		w->threads_seen[r->threads < 64 ? r->threads : 64]++;
		w->done++;
	}
	gbx_disconnect(c);
	free(r);
	return NULL;
}

static int
cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static double
q(double *v, unsigned n, double p)
{
	unsigned i = (unsigned)(p * n);
	return v[i >= n ? n - 1 : i];
}

static int
run(const char *socket, unsigned clients, unsigned requests, unsigned busy_poll_us)
{
	struct worker w[64];
	pthread_t t[64];
	double *all = malloc(sizeof(double) * clients * requests), *rtt = malloc(sizeof(double) * clients * requests);
	double *unq = malloc(sizeof(double) * clients * requests);
	double *inference = malloc(sizeof(double) * clients * requests);
	unsigned n = 0, threads = 0, threads_count = 0;
	int failed = 0;
	double start = now_us(), secs;

	for (unsigned i = 0; i < clients; i++) {
		w[i] = (struct worker){ .socket = socket, .requests = requests, .busy_poll_us = busy_poll_us };
		w[i].overhead = malloc(sizeof(double) * requests);
		w[i].rtt = malloc(sizeof(double) * requests);
		w[i].unqueued = malloc(sizeof(double) * requests);
		pthread_create(&t[i], NULL, client_main, &w[i]);
	}
	for (unsigned i = 0; i < clients; i++) {
		pthread_join(t[i], NULL);
		memcpy(all + n, w[i].overhead, w[i].done * sizeof(double));
		memcpy(rtt + n, w[i].rtt, w[i].done * sizeof(double));
		memcpy(unq + n, w[i].unqueued, w[i].done * sizeof(double));
		n += w[i].done;
		free(w[i].overhead);
		free(w[i].rtt);
		free(w[i].unqueued);
		failed |= w[i].error;
	}
	if (failed) { /* every client was joined; what it said is on stderr */
		free(all);
		free(rtt);
		free(unq);
		free(inference);
		return 1;
	}
	secs = (now_us() - start) / 1e6;
	for (unsigned i = 0; i < n; i++)
		inference[i] = rtt[i] - all[i];
	for (unsigned k = 0; k <= 64; k++) {
		unsigned count = 0;
		for (unsigned i = 0; i < clients; i++)
			count += w[i].threads_seen[k];
		if (count > threads_count)
			threads_count = count, threads = k;
	}
	qsort(all, n, sizeof(double), cmp);
	qsort(rtt, n, sizeof(double), cmp);
	qsort(unq, n, sizeof(double), cmp);
	qsort(inference, n, sizeof(double), cmp);
	printf("%7u %-6s %9u %12.1f %12.1f %12.1f %12.1f %14.1f %12.0f %10.1f %8u\n", clients,
	       busy_poll_us ? "poll" : "sleep", n, q(rtt, n, 0.5), q(rtt, n, 0.99), q(all, n, 0.5), q(all, n, 0.99),
	       q(unq, n, 0.5), (double)n / secs, q(inference, n, 0.5), threads);
	free(inference);
	free(all);
	free(unq);
	free(rtt);
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned requests = 2000, busy_poll_us = 2000;

	if (argc < 2 || argv[1][0] == '-') {
		fprintf(stderr, "usage: bench/daemon SOCKET [--requests N] [--busy-poll US]\n");
		return 2;
	}
	for (int i = 2; i + 1 < argc; i += 2) {
		if (strcmp(argv[i], "--requests") == 0) {
			requests = (unsigned)atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--busy-poll") == 0) {
			busy_poll_us = (unsigned)atoi(argv[i + 1]);
		} else {
			fprintf(stderr, "bench/daemon: unknown option %s\n", argv[i]);
			return 2;
		}
	}
	if (requests == 0) {
		fprintf(stderr, "bench/daemon: --requests must be at least 1\n");
		return 2;
	}
	printf("gearboxd at %s, %u requests per client, batch 1, 8-bit pixels\n\n", argv[1], requests);
	printf("%7s %-6s %9s %12s %12s %12s %12s %14s %12s %10s %8s\n", "clients", "wait", "requests", "rtt p50 us",
	       "rtt p99 us", "ovh p50 us", "ovh p99 us", "ovh-queue p50", "requests/s", "infer p50", "threads");
	if (run(argv[1], 1, requests, 0) || run(argv[1], 1, requests, busy_poll_us) || run(argv[1], 8, requests / 4 + 1, 0) ||
	    run(argv[1], 8, requests / 4 + 1, busy_poll_us))
		return 1;
	printf("\novh = round trip seen by the client minus the inference time gearboxd measured\n"
	       "(framing, JSON, queueing behind other clients, wake-ups); ovh-queue leaves out the time\n"
	       "a request waited for the worker. With 8 clients the one worker per model is saturated,\n"
	       "so requests/s there is the daemon's throughput for this model.\n"
	       "infer p50: the daemon's inference time; threads: how many it ran on (most requests).\n"
	       "wait: sleep = the client sleeps in recv until its reply comes (libgearbox's default);\n"
	       "poll = it busy-polls for up to %u us first (gbx_set_busy_poll), which saves its\n"
	       "wake-up but keeps a CPU busy, so it only pays with a core to spare per client.\n",
	       busy_poll_us);
	return 0;
}
