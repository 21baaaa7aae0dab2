/* SPDX-License-Identifier: MIT */
/* bench/latency — where one client's time goes. For each request rate it
 * measures, with one client, side by side:
 *
 *   engine  the model run in this process by the dnn engine, with the group
 *           count, thread count and CPUs the daemon used;
 *   daemon  the same requests through libgearbox and gearboxd: the daemon's
 *           own view (queue + inference, or daemon_us when the reply has it)
 *           and the end-to-end time the client measured around the call;
 *   floor   a bare Unix-socket ping-pong with a forked echoing child, with
 *           messages the size of an INFER request and its reply: what any
 *           socket daemon costs on this machine.
 *
 * overhead = end to end - engine; the targets are p50 overhead <=
 * 2 x floor p50 + 20 us and p99 overhead <= 2 x floor p99 + 100 us.
 *
 * The three run in interleaved rounds (floor, engine, daemon, three times)
 * so that drift on a noisy machine hits them alike. Every kind paces its
 * requests the same way (an absolute timer per period), so caches and
 * threads are as cold in the engine as in the daemon.
 *
 *   bench/latency SOCKET MODEL [--rates 20,50,200,1000,0] [--seconds S | --requests N]
 *                 [--policy NAME] [--groups N] [--threads N] [--deadline-us US] [--images DIR|FILE] [--json]
 *
 * Start gearboxd first (scripts/bench-latency.sh does, with a pinned policy).
 *
 * Before and after, a thread of this process spins for a second reading the
 * clock and counts the gaps: times it was off the CPU with nothing of ours
 * to blame (a hypervisor taking the vCPU, kernel work). On the 2-vCPU
 * development VM these came and went by the hour, from none to several a
 * second over a millisecond, and they decide a run's p99s: the figures say
 * how quiet the machine was. */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client/gearbox.h"
#include "common/clock.h"
#include "common/dataset.h"
#include "dnn/dnn.h"
#include "governor/governor.h"
#include "policies/policy.h"
#include "proto/protocol.h"

#define MAX_RATES 16
#define ROUNDS 3
#define WARMUP 20        /* first requests of each kind at each rate, not counted */
#define NINPUTS 64       /* distinct images cycled through */
#define REPLY_BYTES 1024 /* about an INFER reply with ten scores */
/* libgearbox's JSON head of an INFER request ({"session":N,"sent_ns":T,"return_us":X}) */
#define REQUEST_JSON_BYTES 64
#define DEFAULT_IMAGES "/usr/share/datasets/fashion-mnist"

#define STALL_PROBE_NS 1000000000ull /* each of the two probes */

enum kind { FLOOR, ENGINE, DAEMON, NKINDS };

/* Gaps a spinning thread saw between two clock readings. */
struct stalls {
	double seconds;
	unsigned over_100us, over_300us, over_1ms;
	double longest_us;
};

static void
probe_stalls(struct stalls *st)
{
	uint64_t start = monotonic_ns(), last = start, now;

	do {
		uint64_t gap = (now = monotonic_ns()) - last;
		last = now;
		st->over_100us += gap > 100000;
		st->over_300us += gap > 300000;
		st->over_1ms += gap > 1000000;
		if ((double)gap / 1e3 > st->longest_us)
			st->longest_us = (double)gap / 1e3;
	} while (now - start < STALL_PROBE_NS);
	st->seconds += (double)(now - start) / 1e9;
}

struct options {
	const char *socket, *model, *policy, *images;
	unsigned rates[MAX_RATES], nrates;
	double seconds;
	unsigned requests;        /* per kind and rate; 0: from --seconds */
	unsigned groups, threads; /* what the policy pins (0: not said) */
	unsigned deadline_us;     /* the session's deadline (0: none) */
	bool json;
};

/* Samples of one quantity, in microseconds. */
struct series {
	double *v;
	size_t n, cap;
};

struct figures {
	double p50, p90, p99; /* NAN without samples */
};

/* What one rate measured. */
struct rate_result {
	unsigned rate;              /* requests/s; 0: back to back */
	struct series floor, engine, e2e, daemon_side, predicted_error;
	bool has_daemon_us;         /* daemon_side came from the replies' daemon_us */
	unsigned mismatched;        /* replies at another g or thread count than the engine ran */
};

struct bench {
	struct options o;
	bool memory_locked; /* mlockall took: this process's pages stay in RAM */
	/* floor: our end of the socket pair, the echoing child */
	int floor_fd;
	pid_t floor_pid;
	size_t request_bytes;
	unsigned char *floor_buf;
	/* engine */
	struct dnn_model *model;
	struct dnn_engine *engine;
	size_t input_size;
	float *inputs, *output; /* NINPUTS normalised inputs, one output */
	/* daemon */
	struct gbx_conn *conn;
	uint32_t session;
	struct gbx_result *reply;
	/* the operating point the daemon chose, which the engine copies */
	unsigned groups, threads;
	char placement[64];
};

/* ---- samples ------------------------------------------------------------ */

static void
series_add(struct series *s, double x)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 1024;
		double *v = realloc(s->v, cap * sizeof(*v));
		if (v == NULL) {
			fprintf(stderr, "bench/latency: out of memory\n");
			exit(1);
		}
		s->v = v;
		s->cap = cap;
	}
	s->v[s->n++] = x;
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

/* The nearest-rank percentile of sorted values. */
static double
rank(const struct series *s, double p)
{
	size_t r = (size_t)ceil(p * (double)s->n);
	return s->v[r == 0 ? 0 : r - 1];
}

static struct figures
figures_of(struct series *s)
{
	if (s->n == 0)
		return (struct figures){ NAN, NAN, NAN };
	qsort(s->v, s->n, sizeof(double), compare_double);
	return (struct figures){ rank(s, 0.50), rank(s, 0.90), rank(s, 0.99) };
}

/* ---- pacing --------------------------------------------------------------- */

struct pacer {
	uint64_t period_ns, next_ns; /* period 0: back to back */
};

/* The first request, too, comes a period after whatever ran before it (the
 * previous kind's last request), as in the daemon, whose gaps are all one
 * period long. */
static void
pacer_start(struct pacer *p, unsigned rate)
{
	p->period_ns = rate ? 1000000000ull / rate : 0;
	p->next_ns = monotonic_ns() + p->period_ns;
}

/* Sleep until the next request is due. One that ran past its slot moves the
 * schedule on rather than bunching the next ones back to back: a single
 * synchronous client cannot catch up, and bursts would measure another rate. */
static void
pacer_wait(struct pacer *p)
{
	uint64_t now = monotonic_ns();

	if (p->period_ns == 0)
		return;
	if (p->next_ns > now) {
		struct timespec ts = { .tv_sec = (time_t)(p->next_ns / 1000000000u),
			               .tv_nsec = (long)(p->next_ns % 1000000000u) };
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
			;
	} else {
		p->next_ns = now;
	}
	p->next_ns += p->period_ns;
}

/* ---- floor: a bare ping-pong with a forked child ---------------------------- */

/* All n bytes, sent or received, whatever the socket takes at a time. */
static int
transfer(int fd, unsigned char *p, size_t n, bool sending)
{
	while (n > 0) {
		ssize_t k = sending ? send(fd, p, n, MSG_NOSIGNAL) : recv(fd, p, n, MSG_WAITALL);
		if (k < 0 && errno == EINTR)
			continue;
		if (k <= 0)
			return -1;
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* The child: answer every request-sized message with a reply-sized one,
 * sleeping in recv as gearboxd's event loop sleeps between requests. */
static void
echo_forever(int fd, size_t request_bytes, unsigned char *buf)
{
	while (transfer(fd, buf, request_bytes, false) == 0 && transfer(fd, buf, REPLY_BYTES, true) == 0)
		;
	_exit(0);
}

/* Forked before any thread exists (the engine's pool, OpenCL's), so the
 * child is a plain single-threaded copy. */
static int
floor_start(struct bench *b)
{
	int sv[2];

	b->floor_buf = calloc(1, b->request_bytes > REPLY_BYTES ? b->request_bytes : REPLY_BYTES);
	if (b->floor_buf == NULL || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0)
		return -1;
	if ((b->floor_pid = fork()) < 0)
		return -1;
	if (b->floor_pid == 0) {
		close(sv[0]);
		echo_forever(sv[1], b->request_bytes, b->floor_buf);
	}
	close(sv[1]);
	b->floor_fd = sv[0];
	return 0;
}

static void
floor_stop(struct bench *b)
{
	close(b->floor_fd); /* the child's recv sees the end and it exits */
	waitpid(b->floor_pid, NULL, 0);
	free(b->floor_buf);
}

static int
floor_once(struct bench *b, struct rate_result *out)
{
	uint64_t t0 = monotonic_ns();

	if (transfer(b->floor_fd, b->floor_buf, b->request_bytes, true) != 0 ||
	    transfer(b->floor_fd, b->floor_buf, REPLY_BYTES, false) != 0) {
		fprintf(stderr, "bench/latency: the echoing child went away\n");
		return -1;
	}
	if (out != NULL)
		series_add(&out->floor, (double)(monotonic_ns() - t0) / 1e3);
	return 0;
}

/* ---- engine: the model in this process ------------------------------------- */

/* NINPUTS images from the dataset when it has the model's shape, else random
 * pixels; either way normalised as the daemon would. */
static int
inputs_load(struct bench *b)
{
	struct dataset ds;
	char *cause = NULL;
	uint8_t *pixels = malloc(b->input_size);
	bool real = dataset_open(&ds, b->o.images, &cause) == 0 &&
	            (size_t)ds.channels * ds.height * ds.width == b->input_size && ds.count >= NINPUTS;

	if (!real)
		fprintf(stderr, "bench/latency: %s; using random pixels\n",
		        cause ? cause : "the images do not have the model's input shape");
	free(cause);
	b->inputs = malloc(NINPUTS * b->input_size * sizeof(float));
	b->output = malloc(dnn_model_output_size(b->model) * sizeof(float));
	if (pixels == NULL || b->inputs == NULL || b->output == NULL)
		return -1;
	srand(1);
	for (unsigned i = 0; i < NINPUTS; i++) {
		for (size_t k = 0; k < b->input_size; k++)
			pixels[k] = real ? ds.pixels[i * b->input_size + k] : (uint8_t)rand();
		dnn_model_normalize_u8(b->model, pixels, b->inputs + i * b->input_size);
	}
	if (real)
		dataset_close(&ds);
	free(pixels);
	return 0;
}

/* The place the daemon named, among the placements it makes (clusters,
 * split per CPU when the name says "clusterN:cpuM"); NULL when it is none. */
static const struct pol_place *
find_place(struct pol_place *places, unsigned *n, const struct gov_platform *p, const char *name)
{
	*n = pol_places_from_platform(places, POL_MAX_PLACES, p);
	if (strstr(name, ":cpu") != NULL)
		*n = pol_places_split(places, *n, POL_MAX_PLACES, "all", p, NULL);
	for (unsigned i = 0; i < *n; i++)
		if (strcmp(places[i].name, name) == 0)
			return &places[i];
	return NULL;
}

/* The engine the daemon runs at that placement, made the way it makes it
 * (pol_place_engine: the fast kernels on `threads` threads bound to its CPUs). */
static int
engine_open(struct bench *b)
{
	struct pol_place places[POL_MAX_PLACES];
	const struct pol_place *place = NULL;
	char *cause = NULL;
	struct gov_platform *p = gov_platform_discover(NULL, &cause);
	unsigned n = 0;

	if (p != NULL && (place = find_place(places, &n, p, b->placement)) != NULL)
		b->engine = pol_place_engine(place, p, b->model, b->threads, NULL, &cause);
	if (b->engine == NULL)
		fprintf(stderr, "bench/latency: %s\n",
		        p != NULL && place == NULL ? "the daemon did not run on a CPU cluster (pin placements = cpu in the policy)"
		                                    : cause);
	free(cause);
	gov_platform_free(p);
	return b->engine != NULL ? 0 : -1;
}

static int
engine_once(struct bench *b, unsigned i, struct rate_result *out)
{
	char *cause = NULL;
	uint64_t t0 = monotonic_ns();

	if (dnn_engine_run(b->engine, b->groups, b->inputs + (i % NINPUTS) * b->input_size, b->output, NULL, &cause) != 0) {
		fprintf(stderr, "bench/latency: %s\n", cause);
		free(cause);
		return -1;
	}
	if (out != NULL)
		series_add(&out->engine, (double)(monotonic_ns() - t0) / 1e3);
	return 0;
}

/* ---- daemon: through libgearbox ------------------------------------------- */

/* The time the daemon says it spent from reading the frame to sending the
 * reply, and its prediction of the end-to-end time (NaN from a daemon that
 * does not send them). */
static double
reply_daemon_us(const struct gbx_result *r)
{
	return gbx_result_daemon_us(r);
}

static double
reply_predicted_e2e_us(const struct gbx_result *r)
{
	return gbx_result_predicted_e2e_us(r);
}

static int
daemon_connect(struct bench *b)
{
	/* The policy fixes the operating point; the deadline (--deadline-us)
	 * says how soon the client needs it, as a camera or control loop does:
	 * gearboxd runs requests due within realtime_below_ms in SCHED_FIFO,
	 * and those without a deadline as throughput work, time-sliced with
	 * co-runners. */
	struct gbx_budget budget = { .deadline_us = b->o.deadline_us };

	if ((b->conn = gbx_connect(b->o.socket)) == NULL) {
		fprintf(stderr, "bench/latency: %s\n", gbx_connect_error());
		return -1;
	}
	if ((b->reply = gbx_result_new()) == NULL ||
	    gbx_open_session_policy(b->conn, dnn_model_name(b->model), &budget, b->o.policy, &b->session) != 0) {
		fprintf(stderr, "bench/latency: %s\n", gbx_last_error(b->conn));
		return -1;
	}
	return 0;
}

static int
daemon_once(struct bench *b, unsigned i, struct rate_result *out)
{
	const struct gbx_result *r = b->reply;
	uint64_t t0 = monotonic_ns();
	double e2e, daemon_us, predicted;

	if (gbx_infer(b->conn, b->session, b->inputs + (i % NINPUTS) * b->input_size, b->input_size, b->reply) != 0) {
		fprintf(stderr, "bench/latency: %s\n", gbx_last_error(b->conn));
		return -1;
	}
	e2e = (double)(monotonic_ns() - t0) / 1e3;
	if (out == NULL)
		return 0;
	daemon_us = reply_daemon_us(r);
	predicted = reply_predicted_e2e_us(r);
	out->has_daemon_us = !isnan(daemon_us);
	series_add(&out->e2e, e2e);
	series_add(&out->daemon_side, isnan(daemon_us) ? gbx_result_queue_us(r) + gbx_result_latency_us(r) : daemon_us);
	if (!isnan(predicted))
		series_add(&out->predicted_error, fabs(predicted - e2e) / e2e);
	out->mismatched += gbx_result_groups(r) != b->groups || gbx_result_threads(r) != b->threads;
	return 0;
}

/* A few requests to learn the operating point the policy picks, which the
 * engine then copies. They also warm up the daemon's predictor. */
static int
daemon_probe(struct bench *b)
{
	for (unsigned i = 0; i < WARMUP; i++)
		if (daemon_once(b, i, NULL) != 0)
			return -1;
	b->groups = gbx_result_groups(b->reply);
	b->threads = gbx_result_threads(b->reply);
	snprintf(b->placement, sizeof(b->placement), "%s", gbx_result_placement(b->reply));
	if ((b->o.groups && b->o.groups != b->groups) || (b->o.threads && b->o.threads != b->threads))
		fprintf(stderr, "bench/latency: the daemon runs g=%u on %u threads, not the g=%u, %u threads asked for; "
		        "the engine follows the daemon\n", b->groups, b->threads, b->o.groups, b->o.threads);
	return 0;
}

/* ---- one rate --------------------------------------------------------------- */

static int
request_once(struct bench *b, enum kind k, unsigned i, struct rate_result *out)
{
	switch (k) {
	case FLOOR:
		return floor_once(b, out);
	case ENGINE:
		return engine_once(b, i, out);
	default:
		return daemon_once(b, i, out);
	}
}

/* `warmup` uncounted requests, then `count` counted ones, or as many as fit
 * in `limit_ns` (back to back, where a count would not say how long). */
static int
run_kind(struct bench *b, enum kind k, unsigned rate, unsigned warmup, unsigned count, uint64_t limit_ns,
         struct rate_result *out)
{
	struct pacer p;
	uint64_t end = 0;

	pacer_start(&p, rate);
	for (unsigned i = 0; i < warmup + count; i++) {
		if (i == warmup && limit_ns)
			end = monotonic_ns() + limit_ns;
		if (end && monotonic_ns() >= end)
			break;
		pacer_wait(&p);
		if (request_once(b, k, i, i < warmup ? NULL : out) != 0)
			return -1;
	}
	return 0;
}

static int
run_rate(struct bench *b, unsigned rate, struct rate_result *out)
{
	unsigned count = b->o.requests ? b->o.requests : (unsigned)ceil(rate * b->o.seconds);
	uint64_t limit_ns = 0;

	memset(out, 0, sizeof(*out));
	out->rate = rate;
	if (count == 0) { /* back to back for --seconds */
		count = ~0u - WARMUP;
		limit_ns = (uint64_t)(b->o.seconds * 1e9 / ROUNDS);
	} else {
		count = (count + ROUNDS - 1) / ROUNDS;
	}
	for (unsigned round = 0; round < ROUNDS; round++)
		for (int k = 0; k < NKINDS; k++)
			if (run_kind(b, (enum kind)k, rate, round == 0 ? WARMUP : 0, count, limit_ns, out) != 0)
				return -1;
	return 0;
}

/* ---- output ----------------------------------------------------------------- */

/* What one rate's samples say, with the targets. */
struct verdict {
	struct figures floor, engine, e2e, daemon_side;
	double overhead50, overhead99, target50, target99;
	double predicted_error; /* median, NAN when no reply predicted */
};

static struct verdict
judge(struct rate_result *r)
{
	struct verdict v = { figures_of(&r->floor), figures_of(&r->engine), figures_of(&r->e2e),
		             figures_of(&r->daemon_side), 0, 0, 0, 0, figures_of(&r->predicted_error).p50 };

	/* Percentiles of two separate runs: the overhead of a typical (p50) and
	 * of a bad (p99) request, not of paired samples. */
	v.overhead50 = v.e2e.p50 - v.engine.p50;
	v.overhead99 = v.e2e.p99 - v.engine.p99;
	v.target50 = 2 * v.floor.p50 + 20;
	v.target99 = 2 * v.floor.p99 + 100;
	return v;
}

static const char *
rate_label(unsigned rate, char *buf, size_t size)
{
	if (rate == 0)
		snprintf(buf, size, "b2b");
	else
		snprintf(buf, size, "%u/s", rate);
	return buf;
}

static void
machine(char *cpu, size_t size)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];

	snprintf(cpu, size, "unknown CPU");
	while (f != NULL && fgets(line, sizeof(line), f) != NULL) {
		char *colon = strchr(line, ':');
		if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
			snprintf(cpu, size, "%s", colon + 2);
			cpu[strcspn(cpu, "\n")] = '\0';
			break;
		}
	}
	if (f != NULL)
		fclose(f);
}

static void
command_line(int argc, char **argv, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (int i = 0; i < argc && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? " " : "", argv[i]);
}

static void
print_header(const struct bench *b, const char *cpu, const char *command)
{
	printf("# %s, nproc %ld; %s\n", cpu, sysconf(_SC_NPROCESSORS_ONLN), command);
	printf("# model %s, g=%u, %u thread%s on %s; deadline %u us; request %zu bytes, reply %u; %u rounds, first %u of "
	       "each kind not counted; this process's memory %s\n\n",
	       dnn_model_name(b->model), b->groups, b->threads, b->threads == 1 ? "" : "s", b->placement, b->o.deadline_us,
	       b->request_bytes, REPLY_BYTES, ROUNDS, WARMUP, b->memory_locked ? "locked" : "not locked (mlockall refused)");
	printf("%-6s %2s %3s | %8s %8s | %8s %8s | %8s %8s | %8s %8s | %8s %8s %-6s | %8s %8s %-6s | %6s\n", "rate",
	       "g", "thr", "engine50", "p99", "daemon50", "p99", "e2e50", "p99", "floor50", "p99", "ovh50", "target",
	       "", "ovh99", "target", "", "pred");
}

static void
print_row(const struct rate_result *r, const struct verdict *v, const struct bench *b)
{
	char rate[16], pred[16] = "n/a";

	if (!isnan(v->predicted_error))
		snprintf(pred, sizeof(pred), "%.1f%%", 100 * v->predicted_error);
	printf("%-6s %2u %3u | %8.1f %8.1f | %8.1f %8.1f | %8.1f %8.1f | %8.1f %8.1f | %8.1f %8.1f %-6s | %8.1f %8.1f "
	       "%-6s | %6s\n",
	       rate_label(r->rate, rate, sizeof(rate)), b->groups, b->threads, v->engine.p50, v->engine.p99,
	       v->daemon_side.p50, v->daemon_side.p99, v->e2e.p50, v->e2e.p99, v->floor.p50, v->floor.p99,
	       v->overhead50, v->target50, v->overhead50 <= v->target50 ? "met" : "missed", v->overhead99, v->target99,
	       v->overhead99 <= v->target99 ? "met" : "missed", pred);
	if (r->mismatched)
		printf("  (%u daemon requests ran at another g or thread count than the engine)\n", r->mismatched);
}

static void
print_legend(bool has_daemon_us)
{
	printf("\nmicroseconds. engine: the model in this process, same g, threads and CPUs; daemon: what gearboxd\n"
	       "reports (%s); e2e: the client's time around gbx_infer; floor: a Unix-socket round\n"
	       "trip of the same sizes to a forked child. ovh = e2e - engine, target: p50 <= 2 x floor p50 + 20,\n"
	       "p99 <= 2 x floor p99 + 100. pred: median |predicted - measured e2e| / measured (n/a: the replies\n"
	       "carry no prediction). b2b: back to back.\n",
	       has_daemon_us ? "daemon_us, from reading the frame to sending the reply" : "queue_us + latency_us");
}

/* JSON numbers to a tenth (json-c would print 17 digits); null where
 * there is nothing to say. */
static struct json_object *
num(double x)
{
	char text[32];

	if (isnan(x))
		return NULL;
	snprintf(text, sizeof(text), "%.1f", x);
	return json_object_new_double_s(x, text);
}

static struct json_object *
figures_json(const struct figures *f)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "p50", num(f->p50));
	json_object_object_add(o, "p90", num(f->p90));
	json_object_object_add(o, "p99", num(f->p99));
	return o;
}

static void
print_json_row(const struct rate_result *r, const struct verdict *v, const struct bench *b)
{
	struct json_object *o = json_object_new_object(), *n = json_object_new_object();

	json_object_object_add(o, "rate", json_object_new_int((int)r->rate));
	json_object_object_add(o, "back_to_back", json_object_new_boolean(r->rate == 0));
	json_object_object_add(o, "groups", json_object_new_int((int)b->groups));
	json_object_object_add(o, "threads", json_object_new_int((int)b->threads));
	json_object_object_add(n, "floor", json_object_new_int64((int64_t)r->floor.n));
	json_object_object_add(n, "engine", json_object_new_int64((int64_t)r->engine.n));
	json_object_object_add(n, "daemon", json_object_new_int64((int64_t)r->e2e.n));
	json_object_object_add(o, "requests", n);
	json_object_object_add(o, "engine_us", figures_json(&v->engine));
	json_object_object_add(o, "daemon_us", figures_json(&v->daemon_side));
	json_object_object_add(o, "daemon_us_from",
	                       json_object_new_string(r->has_daemon_us ? "daemon_us" : "queue_us+latency_us"));
	json_object_object_add(o, "e2e_us", figures_json(&v->e2e));
	json_object_object_add(o, "floor_us", figures_json(&v->floor));
	json_object_object_add(o, "overhead_p50_us", num(v->overhead50));
	json_object_object_add(o, "overhead_p99_us", num(v->overhead99));
	json_object_object_add(o, "target_p50_us", num(v->target50));
	json_object_object_add(o, "target_p99_us", num(v->target99));
	json_object_object_add(o, "p50_met", json_object_new_boolean(v->overhead50 <= v->target50));
	json_object_object_add(o, "p99_met", json_object_new_boolean(v->overhead99 <= v->target99));
	json_object_object_add(o, "predicted_e2e_error_pct", num(100 * v->predicted_error));
	json_object_object_add(o, "mismatched", json_object_new_int((int)r->mismatched));
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

static void
print_stalls(const struct stalls *st)
{
	printf("machine: a thread spinning %.0f s (before and after) was off the CPU %u times over 100 us, %u over\n"
	       "300 us, %u over 1 ms (longest %.0f us): how quiet this run's machine was\n",
	       st->seconds, st->over_100us, st->over_300us, st->over_1ms, st->longest_us);
}

static void
print_json_summary(const struct bench *b, const char *cpu, const char *command, unsigned met, unsigned targets,
                   const struct stalls *st)
{
	struct json_object *o = json_object_new_object(), *so = json_object_new_object();

	json_object_object_add(o, "summary", json_object_new_boolean(true));
	json_object_object_add(o, "cpu", json_object_new_string(cpu));
	json_object_object_add(o, "nproc", json_object_new_int((int)sysconf(_SC_NPROCESSORS_ONLN)));
	json_object_object_add(o, "command", json_object_new_string(command));
	json_object_object_add(o, "model", json_object_new_string(dnn_model_name(b->model)));
	json_object_object_add(o, "policy", b->o.policy ? json_object_new_string(b->o.policy) : NULL);
	json_object_object_add(o, "groups", json_object_new_int((int)b->groups));
	json_object_object_add(o, "threads", json_object_new_int((int)b->threads));
	json_object_object_add(o, "placement", json_object_new_string(b->placement));
	json_object_object_add(o, "request_bytes", json_object_new_int64((int64_t)b->request_bytes));
	json_object_object_add(o, "reply_bytes", json_object_new_int(REPLY_BYTES));
	json_object_object_add(o, "rates", json_object_new_int((int)b->o.nrates));
	json_object_object_add(o, "targets", json_object_new_int((int)targets));
	json_object_object_add(o, "targets_met", json_object_new_int((int)met));
	json_object_object_add(so, "seconds", num(st->seconds));
	json_object_object_add(so, "over_100us", json_object_new_int((int)st->over_100us));
	json_object_object_add(so, "over_300us", json_object_new_int((int)st->over_300us));
	json_object_object_add(so, "over_1ms", json_object_new_int((int)st->over_1ms));
	json_object_object_add(so, "longest_us", num(st->longest_us));
	json_object_object_add(o, "machine_stalls", so);
	puts(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
}

/* ---- main ------------------------------------------------------------------- */

static const char usage[] =
	"usage: bench/latency SOCKET MODEL [--rates 20,50,200,1000,0] [--seconds S | --requests N]\n"
	"                     [--policy NAME] [--groups N] [--threads N] [--deadline-us US] [--images DIR|FILE]\n"
	"                     [--json]\n"
	"  --rates     requests/s, comma-separated; 0: back to back (default 20,50,200,1000,0)\n"
	"  --seconds   how long each kind (floor, engine, daemon) runs at each rate (default 3)\n"
	"  --requests  or how many requests each kind makes at each rate\n"
	"  --policy    the session's policy (default: the daemon's default)\n"
	"  --groups, --threads  what the policy pins; a warning when the daemon runs otherwise\n"
	"  --deadline-us  the session's deadline, us (default 20000, inside gearboxd's realtime_below_ms; 0: none)\n"
	"  --images    Fashion-MNIST folder or IDX file (default " DEFAULT_IMAGES "; else random pixels)\n";

static int
parse_rates(const char *s, struct options *o)
{
	char *end;

	o->nrates = 0;
	do {
		unsigned long r = strtoul(s, &end, 10);
		if (end == s || r > 1000000 || o->nrates == MAX_RATES || (*end != ',' && *end != '\0'))
			return -1;
		o->rates[o->nrates++] = (unsigned)r;
		s = end + 1;
	} while (*end == ',');
	return 0;
}

static unsigned
positive(const char *s)
{
	char *end;
	unsigned long n = strtoul(s, &end, 10);

	return *end == '\0' && n <= 100000000 ? (unsigned)n : 0;
}

static int
parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longopts[] = {
		{ "rates", required_argument, NULL, 'r' },   { "seconds", required_argument, NULL, 's' },
		{ "requests", required_argument, NULL, 'n' }, { "policy", required_argument, NULL, 'p' },
		{ "groups", required_argument, NULL, 'g' },  { "threads", required_argument, NULL, 't' },
		{ "images", required_argument, NULL, 'i' },  { "json", no_argument, NULL, 'j' },
		{ "deadline-us", required_argument, NULL, 'd' },
		{ NULL, 0, NULL, 0 },
	};
	int c;

	*o = (struct options){
		.seconds = 3, .images = DEFAULT_IMAGES, .rates = { 20, 50, 200, 1000, 0 }, .nrates = 5, .deadline_us = 20000
	};
	while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		bool ok = true;
		switch (c) {
		case 'r': ok = parse_rates(optarg, o) == 0; break;
		case 's': ok = (o->seconds = atof(optarg)) > 0; break;
		case 'n': ok = (o->requests = positive(optarg)) > 0; break;
		case 'p': o->policy = optarg; break;
		case 'g': ok = (o->groups = positive(optarg)) > 0; break;
		case 't': ok = (o->threads = positive(optarg)) > 0; break;
		case 'i': o->images = optarg; break;
		case 'j': o->json = true; break;
		case 'd': {
			char *end;
			unsigned long us = strtoul(optarg, &end, 10);
			ok = *end == '\0' && *optarg != '\0' && us <= 100000000;
			o->deadline_us = (unsigned)us;
			break;
		}
		default: ok = false;
		}
		if (!ok) {
			if (c != '?')
				fprintf(stderr, "bench/latency: bad value '%s'\n", optarg);
			return -1;
		}
	}
	if (argc - optind != 2)
		return -1;
	o->socket = argv[optind];
	o->model = argv[optind + 1];
	return 0;
}

/* Everything before the first rate: the model, the floor's child, the
 * daemon's session and operating point, then the engine that copies it. */
static int
bench_open(struct bench *b)
{
	char *cause = NULL;

	if ((b->model = dnn_model_load(b->o.model, &cause)) == NULL) {
		fprintf(stderr, "bench/latency: %s\n", cause);
		free(cause);
		return -1;
	}
	b->input_size = dnn_model_input_size(b->model);
	b->request_bytes = GBX_HEADER_SIZE + REQUEST_JSON_BYTES + 1 + b->input_size * sizeof(float);
	if (floor_start(b) != 0) {
		fprintf(stderr, "bench/latency: cannot start the echoing child: %s\n", strerror(errno));
		return -1;
	}
	if (inputs_load(b) != 0 || daemon_connect(b) != 0 || daemon_probe(b) != 0)
		return -1;
	return engine_open(b);
}

static void
bench_close(struct bench *b)
{
	floor_stop(b);
	gbx_disconnect(b->conn);
	dnn_engine_free(b->engine);
	dnn_model_free(b->model);
	gbx_result_free(b->reply);
	free(b->inputs);
	free(b->output);
}

static void
rate_result_free(struct rate_result *r)
{
	free(r->floor.v);
	free(r->engine.v);
	free(r->e2e.v);
	free(r->daemon_side.v);
	free(r->predicted_error.v);
}

int
main(int argc, char **argv)
{
	struct bench b = { 0 };
	struct stalls stalls = { 0 };
	char cpu[256], command[2048];
	unsigned met = 0;
	bool has_daemon_us = false;
	int ret = 0;

	/* before getopt_long reorders argv */
	command_line(argc, argv, command, sizeof(command));
	if (parse_options(argc, argv, &b.o) != 0) {
		fputs(usage, stderr);
		return 2;
	}
	machine(cpu, sizeof(cpu));
	/* as gearboxd does (lock_memory): the engine measured here and the
	 * client's own code stay in RAM, so that a page evicted between two
	 * requests (page cache reclaim) is not counted as engine or daemon time.
	 * Best effort; said in the header. */
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4
#endif
	b.memory_locked = mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0;
	if (bench_open(&b) != 0)
		return 1;
	probe_stalls(&stalls);
	if (!b.o.json)
		print_header(&b, cpu, command);
	for (unsigned i = 0; i < b.o.nrates && ret == 0; i++) {
		struct rate_result r;
		struct verdict v;
		if (run_rate(&b, b.o.rates[i], &r) != 0) {
			ret = 1;
		} else {
			v = judge(&r);
			met += (v.overhead50 <= v.target50) + (v.overhead99 <= v.target99);
			has_daemon_us |= r.has_daemon_us;
			if (b.o.json)
				print_json_row(&r, &v, &b);
			else
				print_row(&r, &v, &b);
			fflush(stdout);
		}
		rate_result_free(&r);
	}
	probe_stalls(&stalls);
	if (ret == 0 && b.o.json) {
		print_json_summary(&b, cpu, command, met, 2 * b.o.nrates, &stalls);
	} else if (ret == 0) {
		print_legend(has_daemon_us);
		print_stalls(&stalls);
		printf("targets met: %u of %u\n", met, 2 * b.o.nrates);
	}
	bench_close(&b);
	return ret;
}
