/* SPDX-License-Identifier: MIT */
/* bench/daemon — what gearboxd adds to an inference: round-trip time of a
 * budgeted infer seen by the client minus the inference time the daemon
 * measured (p50, p99), with 1 and 8 concurrent clients, and requests/s at
 * saturation (clients sending back to back). Each is measured three ways,
 * by how the client waits for its reply: woken by a timer just before it is
 * due (libgearbox's default, gbx_set_wake_ahead), asleep until the reply
 * wakes it (wake-ahead 0), and busy-polling for it (gbx_set_busy_poll). The
 * client's CPU time per request shows what each way costs.
 *
 * Each client first makes --warmup requests that are not counted.
 *
 *   bench/daemon SOCKET [--requests N] [--warmup N] [--busy-poll US] [--wake-ahead US]
 *
 * Start gearboxd first (scripts/bench-daemon.sh does both). */
#include "config.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "client/gearbox.h"
#include "common/clock.h"

/* How a client waits for its reply. */
struct wait_mode {
	const char *name;
	unsigned wake_ahead_us, busy_poll_us;
};

struct worker {
	const char *socket;
	unsigned requests, warmup;
	pthread_barrier_t *warm;   /* every client and run() meet here after the warm-up */
	struct wait_mode wait;
	double cpu_us;             /* the client thread's CPU time, all requests */
	double *overhead, *rtt, *unqueued;
	unsigned done;
	unsigned threads_seen[65]; /* requests per thread count the daemon chose */
	int error;
};

static double
thread_cpu_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void *
client_main(void *arg)
{
	struct worker *w = arg;
	struct gbx_conn *c = gbx_connect(w->socket);
	struct gbx_budget b = { .deadline_us = 1000000 };
	struct gbx_result *r = gbx_result_new();
	uint8_t pixels[784];
	uint32_t s;

	for (unsigned i = 0; i < sizeof(pixels); i++)
		pixels[i] = (uint8_t)(i * 7);
	if (c == NULL || gbx_set_busy_poll(c, w->wait.busy_poll_us) != 0 || gbx_set_wake_ahead(c, w->wait.wake_ahead_us) != 0 ||
	    gbx_open_session(c, NULL, &b, &s) != 0)
		w->error = 1;
	/* Not counted: the daemon's predictor and libgearbox's wake-ahead
	 * learn from the first requests of a session. */
	for (unsigned i = 0; i < w->warmup && !w->error; i++)
		w->error = gbx_infer_pixels(c, s, pixels, sizeof(pixels), r) != 0;
	pthread_barrier_wait(w->warm);
	if (w->error) {
		fprintf(stderr, "bench/daemon: %s\n", c ? gbx_last_error(c) : gbx_connect_error());
		gbx_disconnect(c);
		gbx_result_free(r);
		return NULL;
	}
	w->cpu_us = -thread_cpu_us();
	for (unsigned i = 0; i < w->requests; i++) {
		double t0 = monotonic_us();
		if (gbx_infer_pixels(c, s, pixels, sizeof(pixels), r) != 0) {
			fprintf(stderr, "bench/daemon: %s\n", gbx_last_error(c));
			w->error = 1;
			break;
		}
		w->rtt[i] = monotonic_us() - t0;
		w->overhead[i] = w->rtt[i] - gbx_result_latency_us(r);
		w->unqueued[i] = w->overhead[i] - gbx_result_queue_us(r);
		w->threads_seen[gbx_result_threads(r) < 64 ? gbx_result_threads(r) : 64]++;
		w->done++;
	}
	w->cpu_us += thread_cpu_us();
	gbx_disconnect(c);
	gbx_result_free(r);
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
run(const char *socket, unsigned clients, unsigned requests, unsigned warmup, struct wait_mode wait)
{
	struct worker w[64];
	pthread_t t[64];
	double *all = malloc(sizeof(double) * clients * requests), *rtt = malloc(sizeof(double) * clients * requests);
	double *unq = malloc(sizeof(double) * clients * requests);
	double *inference = malloc(sizeof(double) * clients * requests);
	unsigned n = 0, threads = 0, threads_count = 0;
	int failed = 0;
	double start, secs, cpu_us = 0;
	pthread_barrier_t warm;

	pthread_barrier_init(&warm, NULL, clients + 1);
	for (unsigned i = 0; i < clients; i++) {
		w[i] = (struct worker){ .socket = socket, .requests = requests, .warmup = warmup, .wait = wait, .warm = &warm };
		w[i].overhead = malloc(sizeof(double) * requests);
		w[i].rtt = malloc(sizeof(double) * requests);
		w[i].unqueued = malloc(sizeof(double) * requests);
		pthread_create(&t[i], NULL, client_main, &w[i]);
	}
	pthread_barrier_wait(&warm);
	start = monotonic_us();
	for (unsigned i = 0; i < clients; i++) {
		pthread_join(t[i], NULL);
		memcpy(all + n, w[i].overhead, w[i].done * sizeof(double));
		memcpy(rtt + n, w[i].rtt, w[i].done * sizeof(double));
		memcpy(unq + n, w[i].unqueued, w[i].done * sizeof(double));
		n += w[i].done;
		cpu_us += w[i].cpu_us;
		free(w[i].overhead);
		free(w[i].rtt);
		free(w[i].unqueued);
		failed |= w[i].error;
	}
	pthread_barrier_destroy(&warm);
	if (failed) { /* every client was joined; what it said is on stderr */
		free(all);
		free(rtt);
		free(unq);
		free(inference);
		return 1;
	}
	secs = (monotonic_us() - start) / 1e6;
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
	printf("%7u %-6s %9u %12.1f %12.1f %12.1f %12.1f %14.1f %12.0f %10.1f %8u %10.1f\n", clients, wait.name, n,
	       q(rtt, n, 0.5), q(rtt, n, 0.99), q(all, n, 0.5), q(all, n, 0.99), q(unq, n, 0.5), (double)n / secs,
	       q(inference, n, 0.5), threads, cpu_us / n);
	free(inference);
	free(all);
	free(unq);
	free(rtt);
	return 0;
}

int
main(int argc, char **argv)
{
	unsigned requests = 2000, warmup = 200, busy_poll_us = 2000, wake_ahead_us = 20;
	const char *usage = "usage: bench/daemon SOCKET [--requests N] [--warmup N] [--busy-poll US] [--wake-ahead US]\n";

	if (argc < 2 || argv[1][0] == '-') {
		fputs(usage, stderr);
		return 2;
	}
	for (int i = 2; i < argc; i += 2) {
		if (i + 1 == argc) {
			fprintf(stderr, "bench/daemon: %s needs a value\n%s", argv[i], usage);
			return 2;
		} else if (strcmp(argv[i], "--requests") == 0) {
			requests = (unsigned)atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--warmup") == 0) {
			warmup = (unsigned)atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--busy-poll") == 0) {
			busy_poll_us = (unsigned)atoi(argv[i + 1]);
		} else if (strcmp(argv[i], "--wake-ahead") == 0) {
			wake_ahead_us = (unsigned)atoi(argv[i + 1]);
		} else {
			fprintf(stderr, "bench/daemon: unknown option %s\n%s", argv[i], usage);
			return 2;
		}
	}
	if (requests == 0 || busy_poll_us == 0 || wake_ahead_us == 0) {
		fprintf(stderr, "bench/daemon: --requests, --busy-poll and --wake-ahead must be at least 1\n");
		return 2;
	}
	const struct wait_mode modes[] = {
		{ "ahead", wake_ahead_us, 0 },
		{ "sleep", 0, 0 },
		{ "poll", 0, busy_poll_us },
	};
	printf("gearboxd at %s, %u requests per client after %u not counted, batch 1, 8-bit pixels\n\n", argv[1],
	       requests, warmup);
	printf("%7s %-6s %9s %12s %12s %12s %12s %14s %12s %10s %8s %10s\n", "clients", "wait", "requests", "rtt p50 us",
	       "rtt p99 us", "ovh p50 us", "ovh p99 us", "ovh-queue p50", "requests/s", "infer p50", "threads",
	       "cpu us/req");
	for (unsigned clients = 1; clients <= 8; clients *= 8)
		for (unsigned m = 0; m < sizeof(modes) / sizeof(modes[0]); m++)
			if (run(argv[1], clients, clients == 1 ? requests : requests / 4 + 1, warmup, modes[m]) != 0)
				return 1;
	printf("\novh = round trip seen by the client minus the inference time gearboxd measured\n"
	       "(framing, JSON, queueing behind other clients, wake-ups); ovh-queue leaves out the time\n"
	       "a request waited for the worker. With 8 clients the one worker per model is saturated,\n"
	       "so requests/s there is the daemon's throughput for this model.\n"
	       "infer p50: the daemon's inference time; threads: how many it ran on (most requests).\n"
	       "cpu us/req: the clients' own CPU time per request (sending, waiting, parsing).\n"
	       "wait: ahead = the client sleeps on a timer until %u us before its reply is due, then\n"
	       "polls (libgearbox's default, gbx_set_wake_ahead); sleep = it sleeps in recv until the\n"
	       "reply wakes it (wake-ahead 0); poll = it busy-polls for up to %u us (gbx_set_busy_poll),\n"
	       "which keeps a CPU busy for the whole request.\n",
	       wake_ahead_us, busy_poll_us);
	return 0;
}
