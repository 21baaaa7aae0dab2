/* SPDX-License-Identifier: MIT */
/* libgearbox — talk to gearboxd: budgeted inference on dynamic DNNs.
 *
 *   struct gbx_conn *c = gbx_connect(NULL);          // $GEARBOX_SOCKET or the default socket
 *   struct gbx_budget b = GBX_BUDGET_INIT;
 *   b.deadline_us = 2000;
 *   uint32_t s;
 *   gbx_open_session(c, "fmnist-alexnet-g4", &b, &s);
 *   struct gbx_result *r = gbx_result_new();
 *   gbx_infer(c, s, input, n, r);                    // gbx_result_class(r), gbx_result_groups(r), ...
 *   gbx_result_free(r);
 *   gbx_disconnect(c);
 *
 * Every call returns 0, or -1 with gbx_last_error() saying why (the daemon's
 * own message when it refused, gbx_last_error_code() its protocol error
 * code). For an event loop: gbx_fd(), then gbx_send_infer() and
 * gbx_receive() when the fd is readable.
 *
 * The ABI can grow: a result is opaque (read it with the gbx_result_*
 * accessors, or gbx_result_json() for fields this version has no accessor
 * for), and struct gbx_budget carries its own size. Every symbol has the
 * version GEARBOX_0 (client/libgearbox.map). The wire protocol is in
 * docs/protocol.md; its message numbers, for gbx_call(), are in
 * <gearbox/protocol.h>. Link with `pkg-config gearbox`.
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
struct gbx_result;

/* A budget. `size` is sizeof(struct gbx_budget) of the header the program
 * was built with (GBX_BUDGET_INIT sets it), so that fields added later are
 * read only from programs that know them; 0 is taken as this first layout,
 * so `struct gbx_budget b = { .deadline_us = 2000 };` works too. */
struct gbx_budget {
	size_t size;
	uint64_t deadline_us;  /* 0: no deadline */
	uint64_t energy_uj;    /* 0: no energy budget */
	double min_accuracy;   /* 0: no accuracy floor */
	/* For gearboxd's tenant plan (appended: a program built with the
	 * shorter struct sends neither): */
	double rate_hz;        /* requests per second the client will send; 0: learnt from its arrivals */
	double weight;         /* this session's weight against others; 0: 1 */
};
#define GBX_BUDGET_INIT { .size = sizeof(struct gbx_budget) }

/* NULL: $GEARBOX_SOCKET, else /run/gearbox/gearboxd.sock. NULL on failure
 * (errno set; gbx_connect_error() says why, and what to do: a socket this
 * user may not open says to join the 'gearbox' group). */
struct gbx_conn *gbx_connect(const char *socket_path);
const char *gbx_connect_error(void);
void gbx_disconnect(struct gbx_conn *c);
const char *gbx_last_error(const struct gbx_conn *c);
/* The protocol's error code of the last refusal ("busy", "no-such-model",
 * "bad-input", ...; docs/protocol.md), or "" when the error was not the
 * daemon's (a closed connection, a bad argument). */
const char *gbx_last_error_code(const struct gbx_conn *c);
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

/* Requests without an input. Each waits for the reply and hands over its
 * JSON (malloc'ed, the caller frees it); the keys are in docs/protocol.md. */
int gbx_hello(struct gbx_conn *c, const char *client_name, char **reply);
int gbx_models(struct gbx_conn *c, char **reply);
int gbx_status(struct gbx_conn *c, char **reply);
/* session 0: every session this user may see */
int gbx_stats(struct gbx_conn *c, uint32_t session, char **reply);
int gbx_platform(struct gbx_conn *c, char **reply);
/* model, policy: NULL for the only model and the daemon's default; all:
 * every operating point ("all"), not only the Pareto front ("front") */
int gbx_pareto(struct gbx_conn *c, const char *model, const char *policy, bool all, char **reply);
/* root and the admin group: re-read the configuration and policies; a
 * refused file is "reloaded": false with "error" in the reply (still 0) */
int gbx_reload(struct gbx_conn *c, char **reply);
/* the tenant solver's current plan (the sessions planned jointly) */
int gbx_plan(struct gbx_conn *c, char **reply);
/* root and the admin group: measure a model again (model NULL: the only one) */
int gbx_calibrate(struct gbx_conn *c, const char *model, char **reply);
/* From now on the daemon sends this connection events (gbx_receive,
 * gbx_last_event). */
int gbx_subscribe(struct gbx_conn *c);

/* Any request: a message type of <gearbox/protocol.h> (GBX_MSG_*) with a
 * JSON payload; waits for its reply's JSON (malloc'ed, the caller frees). */
int gbx_call(struct gbx_conn *c, unsigned type, const char *json, char **reply);

int gbx_open_session(struct gbx_conn *c, const char *model, const struct gbx_budget *b, uint32_t *session);
/* The same under a named policy (see gearbox.policy(5)); NULL: the daemon's default. */
int gbx_open_session_policy(struct gbx_conn *c, const char *model, const struct gbx_budget *b, const char *policy,
                            uint32_t *session);
int gbx_set_budget(struct gbx_conn *c, uint32_t session, const struct gbx_budget *b);
int gbx_close_session(struct gbx_conn *c, uint32_t session);

/* Results: allocate one, pass it to gbx_infer/gbx_receive as often as
 * needed (each call overwrites it), free it. NULL when out of memory. */
struct gbx_result *gbx_result_new(void);
void gbx_result_free(struct gbx_result *r);

/* input: the model's C x H x W float32 values, normalised; or 8-bit pixels. */
int gbx_infer(struct gbx_conn *c, uint32_t session, const float *input, size_t n, struct gbx_result *r);
int gbx_infer_pixels(struct gbx_conn *c, uint32_t session, const uint8_t *pixels, size_t n, struct gbx_result *r);

/* Asynchronous use. gbx_send_infer queues a request (id returned); call
 * gbx_receive when gbx_fd() is readable: it returns 1 with a result (or an
 * event: gbx_result_request_id(r) == 0, see gbx_last_event()), 0 when no
 * whole reply has arrived yet, -1 on error (a refused request: its id is
 * gbx_result_request_id(r), the reason gbx_last_error()). */
int gbx_send_infer(struct gbx_conn *c, uint32_t session, const float *input, size_t n, uint32_t *request_id);
int gbx_send_infer_pixels(struct gbx_conn *c, uint32_t session, const uint8_t *pixels, size_t n,
                          uint32_t *request_id);
int gbx_receive(struct gbx_conn *c, struct gbx_result *r);
const char *gbx_last_event(const struct gbx_conn *c);

/* A result's fields (docs/protocol.md, "RESULT"). Strings stay valid until
 * the result is overwritten or freed; "" when the daemon sent none. */
uint32_t gbx_result_request_id(const struct gbx_result *r);
unsigned gbx_result_class(const struct gbx_result *r);           /* the chosen class */
const char *gbx_result_label(const struct gbx_result *r);
size_t gbx_result_nscores(const struct gbx_result *r);
const float *gbx_result_scores(const struct gbx_result *r);      /* nscores values */
unsigned gbx_result_groups(const struct gbx_result *r);          /* active groups used */
const char *gbx_result_placement(const struct gbx_result *r);    /* e.g. "cluster1", "opencl:0" */
unsigned gbx_result_threads(const struct gbx_result *r);
unsigned long gbx_result_freq_khz(const struct gbx_result *r);   /* 0 when unknown (no cpufreq) */
const char *gbx_result_policy(const struct gbx_result *r);       /* the policy that chose the point */
double gbx_result_latency_us(const struct gbx_result *r);        /* the inference, measured by the daemon */
double gbx_result_queue_us(const struct gbx_result *r);          /* read to started */
double gbx_result_daemon_us(const struct gbx_result *r);         /* read to the reply leaving (NaN: older daemon) */
double gbx_result_predicted_us(const struct gbx_result *r);      /* the inference, as predicted */
double gbx_result_predicted_e2e_us(const struct gbx_result *r);  /* end to end, as predicted (NaN: older daemon) */
double gbx_result_e2e_us(const struct gbx_result *r);            /* end to end, as the daemon estimates it */
double gbx_result_energy_uj(const struct gbx_result *r);
const char *gbx_result_energy_source(const struct gbx_result *r); /* a sensor, or the power model used */
bool gbx_result_deadline_met(const struct gbx_result *r);
bool gbx_result_energy_met(const struct gbx_result *r);
bool gbx_result_feasible(const struct gbx_result *r);
const char *gbx_result_reason(const struct gbx_result *r);       /* why not feasible ("" when it was) */
const char *gbx_result_fallback(const struct gbx_result *r);     /* "" or why it left its OpenCL device */
bool gbx_result_cold(const struct gbx_result *r);                /* its placement had been idle */
/* The whole reply as the daemon sent it (JSON), for fields without an
 * accessor in this version; "" before the first result. */
const char *gbx_result_json(const struct gbx_result *r);

#ifdef __cplusplus
}
#endif
#endif
