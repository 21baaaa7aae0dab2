/* SPDX-License-Identifier: MIT */
/* libgearbox — talk to gearboxd: budgeted inference on dynamic DNNs.
 *
 *   struct gbx_conn *c = gbx_connect(NULL);          // default socket
 *   struct gbx_budget b = { .deadline_us = 2000 };
 *   uint32_t s;
 *   gbx_open_session(c, "fmnist-alexnet-g4", &b, &s);
 *   struct gbx_result r;
 *   gbx_infer(c, s, input, n, &r);                   // r.cls, r.groups, r.latency_us, ...
 *   gbx_disconnect(c);
 *
 * Every call returns 0, or -1 with gbx_last_error() saying why (the daemon's
 * own message when it refused). For an event loop: gbx_fd(), then
 * gbx_send_infer() and gbx_receive() when the fd is readable.
 * The wire protocol is in docs/protocol.md. Link with `pkg-config gearbox`.
 */
#ifndef GEARBOX_H
#define GEARBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct gbx_conn;

struct gbx_budget {
	uint64_t deadline_us;  /* 0: no deadline */
	uint64_t energy_uj;    /* 0: no energy budget */
	double min_accuracy;   /* 0: no accuracy floor */
};

#define GBX_MAX_CLASSES 1000

struct gbx_result {
	uint32_t request_id;
	unsigned cls;                /* chosen class */
	char label[64];
	unsigned nscores;
	float scores[GBX_MAX_CLASSES];
	unsigned groups;             /* active groups used */
	char placement[64];          /* e.g. "cluster1" */
	unsigned threads;
	unsigned long freq_khz;      /* 0 when unknown (no cpufreq) */
	double latency_us;           /* inference time measured by the daemon */
	double queue_us;             /* time queued before it ran */
	double energy_uj;
	char energy_source[64];      /* a sensor's name, or the power model used */
	bool deadline_met, energy_met, feasible;
	char reason[200];            /* why the budget was infeasible */
	char policy[64];             /* the policy that chose the operating point */
	double predicted_us;         /* the latency it was predicted to take */
	char fallback[300];          /* "" or why it left the OpenCL device it was chosen for */
	double e2e_us;               /* the daemon's estimate of the time from sending to having the reply */
	double daemon_us;            /* in the daemon: from the request read to the reply leaving (NaN: older daemon) */
	double predicted_e2e_us;     /* the daemon's prediction of e2e_us when it chose (NaN: older daemon) */
	bool cold;                   /* its placement had been idle: a cold start */
};

/* NULL: $GEARBOX_SOCKET, else /run/gearbox/gearboxd.sock. NULL on failure
 * (errno set; gbx_connect_error() says why). */
struct gbx_conn *gbx_connect(const char *socket_path);
const char *gbx_connect_error(void);
void gbx_disconnect(struct gbx_conn *c);
const char *gbx_last_error(const struct gbx_conn *c);
int gbx_fd(const struct gbx_conn *c);

/* Busy polling: after sending a request, a synchronous call looks at the
 * socket for up to max_us microseconds before it sleeps. The reply then
 * arrives without a wake-up (tens of microseconds on an idle virtual CPU),
 * at the price of a CPU kept busy while waiting: use it with a core to spare,
 * not with many clients on a few cores. 0 (the default, or
 * $GEARBOX_BUSY_POLL_US at connect) sleeps at once. -1 over the limit. */
#define GBX_BUSY_POLL_MAX_US 1000000u
int gbx_set_busy_poll(struct gbx_conn *c, unsigned max_us);

/* Waking ahead (the default when not busy polling): a synchronous inference
 * sleeps on a timer until margin_us before its reply is due (judged from the
 * connection's last eight round trips, less how late the timer has been
 * waking the thread), then polls the socket until the reply comes or
 * margin_us past the latest it was expected, and only then sleeps in recv.
 * The wake-up is paid while the daemon computes, not after the reply. It
 * only wakes ahead while round trips are steady; the price is a CPU busy for
 * about the margin plus the round trips' spread per inference. Default
 * GBX_WAKE_AHEAD_DEFAULT_US (or $GEARBOX_WAKE_AHEAD_US at connect); 0 sleeps
 * in recv until the reply wakes the thread. -1 over the limit. */
#define GBX_WAKE_AHEAD_DEFAULT_US 20u
#define GBX_WAKE_AHEAD_MAX_US 100000u
int gbx_set_wake_ahead(struct gbx_conn *c, unsigned margin_us);

/* Send one request of `type` (proto/protocol.h) with a JSON payload and wait
 * for its reply's JSON (malloc'ed, the caller frees). */
int gbx_call(struct gbx_conn *c, unsigned type, const char *json, char **reply);

int gbx_open_session(struct gbx_conn *c, const char *model, const struct gbx_budget *b, uint32_t *session);
/* The same under a named policy (see gearbox.policy(5)); NULL: the daemon's default. */
int gbx_open_session_policy(struct gbx_conn *c, const char *model, const struct gbx_budget *b, const char *policy,
                            uint32_t *session);
int gbx_set_budget(struct gbx_conn *c, uint32_t session, const struct gbx_budget *b);
int gbx_close_session(struct gbx_conn *c, uint32_t session);
/* input: the model's C x H x W float32 values, normalised; or 8-bit pixels. */
int gbx_infer(struct gbx_conn *c, uint32_t session, const float *input, size_t n, struct gbx_result *r);
int gbx_infer_pixels(struct gbx_conn *c, uint32_t session, const uint8_t *pixels, size_t n, struct gbx_result *r);

/* Asynchronous use. gbx_send_infer queues a request (id returned); call
 * gbx_receive when gbx_fd() is readable: it returns 1 with a result (or an
 * event, see gbx_result.request_id == 0 and gbx_last_event()), 0 when no whole
 * reply has arrived yet, -1 on error. */
int gbx_send_infer(struct gbx_conn *c, uint32_t session, const float *input, size_t n, uint32_t *request_id);
int gbx_receive(struct gbx_conn *c, struct gbx_result *r);
const char *gbx_last_event(const struct gbx_conn *c);

#ifdef __cplusplus
}
#endif
#endif
