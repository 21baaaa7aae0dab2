/* SPDX-License-Identifier: MIT */
/* libgearbox: the client side of proto/protocol.h. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <poll.h>
#include <time.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client/gearbox.h"
#include "client/infer.h"
#include "proto/protocol.h"
#include "client/wake_ahead.h"
#include "common/clock.h"
#include "common/spin.h"

struct gbx_conn {
	int fd;
	uint32_t next_id;
	char error[512];
	char error_code[32];     /* the daemon's code of the last refusal, or "" */
	char *event;              /* the last unsolicited event's JSON */
	unsigned char *rbuf;      /* bytes received but not yet handled */
	size_t rlen, rcap;
	/* The last reply's return path (the daemon's "done_ns" to our receiving
	 * it), told to the daemon with the next request so that it can plan
	 * deadlines end to end. Negative: not measured yet. */
	double return_us;
	/* After a request, poll the socket this long before sleeping in recv
	 * (gbx_set_busy_poll); 0: sleep at once. */
	unsigned busy_poll_us;
	/* Otherwise (the default) a synchronous inference sleeps on a timer
	 * until shortly before its reply is due, then polls (wake_ahead.h). */
	struct wake_ahead wake;
	int wake_timer_fd; /* a timerfd, which has no timer slack; -1: none yet */
};

static __thread char connect_error[512];

static int
fail(struct gbx_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int
fail(struct gbx_conn *c, const char *fmt, ...)
{
	va_list ap;

	c->error_code[0] = '\0';
	va_start(ap, fmt);
	vsnprintf(c->error, sizeof(c->error), fmt, ap);
	va_end(ap);
	return -1;
}

const char *gbx_connect_error(void) { return connect_error; }
const char *gbx_last_error(const struct gbx_conn *c) { return c->error; }
const char *gbx_last_error_code(const struct gbx_conn *c) { return c->error_code; }
const char *gbx_last_event(const struct gbx_conn *c) { return c->event; }
int gbx_fd(const struct gbx_conn *c) { return c->fd; }

/* A number of microseconds up to `max` from the environment variable
 * `name` (GEARBOX_BUSY_POLL_US, GEARBOX_WAKE_AHEAD_US), so that programs such
 * as gearboxctl get them unchanged; anything else leaves *us as it is. */
static void
microseconds_from_env(const char *name, unsigned max, unsigned *us)
{
	const char *v = getenv(name);
	char *end;
	unsigned long n;

	if (v == NULL || *v == '\0')
		return;
	errno = 0;
	n = strtoul(v, &end, 10);
	if (errno == 0 && *end == '\0' && n <= max)
		*us = (unsigned)n;
}

int
gbx_set_busy_poll(struct gbx_conn *c, unsigned max_us)
{
	if (max_us > GBX_BUSY_POLL_MAX_US)
		return fail(c, "busy poll of %u us is over the %u us limit", max_us, GBX_BUSY_POLL_MAX_US);
	c->busy_poll_us = max_us;
	return 0;
}

int
gbx_set_wake_ahead(struct gbx_conn *c, unsigned margin_us)
{
	if (margin_us > GBX_WAKE_AHEAD_MAX_US)
		return fail(c, "wake-ahead margin of %u us is over the %u us limit", margin_us, GBX_WAKE_AHEAD_MAX_US);
	c->wake.margin_us = margin_us;
	return 0;
}

struct gbx_conn *
gbx_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct gbx_conn *c;
	int fd;

	if (path == NULL)
		path = getenv("GEARBOX_SOCKET");
	if (path == NULL || *path == '\0')
		path = GBX_DEFAULT_SOCKET;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		snprintf(connect_error, sizeof(connect_error), "%s: socket path too long", path);
		errno = ENAMETOOLONG;
		return NULL;
	}
	strcpy(sa.sun_path, path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0) {
		int err = errno;
		snprintf(connect_error, sizeof(connect_error), "%s: %s%s", path, strerror(err),
		         err == ENOENT || err == ECONNREFUSED ? " (is gearboxd running?)"
		         : err == EACCES || err == EPERM ? " (the socket is for root and the 'gearbox' group: join it with "
		                                           "'sudo usermod -aG gearbox $USER', then log in again)"
		                                         : "");
		if (fd >= 0)
			close(fd);
		errno = err;
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return NULL;
	}
	c->fd = fd;
	c->return_us = -1;
	c->wake_timer_fd = -1;
	wake_ahead_init(&c->wake, GBX_WAKE_AHEAD_DEFAULT_US);
	microseconds_from_env("GEARBOX_BUSY_POLL_US", GBX_BUSY_POLL_MAX_US, &c->busy_poll_us);
	microseconds_from_env("GEARBOX_WAKE_AHEAD_US", GBX_WAKE_AHEAD_MAX_US, &c->wake.margin_us);
	c->next_id = 1;
	return c;
}

void
gbx_disconnect(struct gbx_conn *c)
{
	if (c == NULL)
		return;
	close(c->fd);
	if (c->wake_timer_fd >= 0)
		close(c->wake_timer_fd);
	free(c->rbuf);
	free(c->event);
	free(c);
}

static int
send_all(struct gbx_conn *c, const void *buf, size_t len)
{
	const unsigned char *p = buf;

	while (len > 0) {
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return fail(c, "send: %s", strerror(errno));
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* One frame in one sendmsg: header, JSON and tensor together, so the daemon
 * wakes once per request rather than once per piece. */
static int
send_frame(struct gbx_conn *c, unsigned type, uint32_t id, const void *a, size_t alen, const void *b, size_t blen)
{
	unsigned char hdr[GBX_HEADER_SIZE];
	struct iovec iov[3] = { { hdr, sizeof(hdr) }, { (void *)a, alen }, { (void *)b, blen } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = blen ? 3 : 2 };
	size_t total = sizeof(hdr) + alen + blen;
	ssize_t n;

	if (alen + blen > GBX_MAX_PAYLOAD)
		return fail(c, "request of %zu bytes is over the %u-byte frame limit", alen + blen, GBX_MAX_PAYLOAD);
	gbx_encode_header(hdr, (uint16_t)type, id, (uint32_t)(alen + blen));
	do
		n = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return fail(c, "send: %s", strerror(errno));
	if ((size_t)n == total)
		return 0;
	/* A short write (a full socket buffer): send the rest piece by piece. */
	for (int i = 0; i < 3; i++) {
		size_t len = iov[i].iov_len;
		if ((size_t)n >= len) {
			n -= (ssize_t)len;
			continue;
		}
		if (send_all(c, (const char *)iov[i].iov_base + n, len - (size_t)n) != 0)
			return -1;
		n = 0;
	}
	return 0;
}

/* recv for a blocking caller that asked for busy polling: look at the
 * socket without sleeping for up to busy_poll_us, then sleep in recv. A
 * sleeping receiver costs a wake-up when the reply comes, which on a
 * virtual machine whose CPU went idle is tens of microseconds. */
static ssize_t
recv_polling(struct gbx_conn *c)
{
	uint64_t until = monotonic_ns() + (uint64_t)c->busy_poll_us * 1000;
	ssize_t n;

	for (unsigned round = 0;; round++) {
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, MSG_DONTWAIT);
		if (n >= 0 || (errno != EAGAIN && errno != EWOULDBLOCK) || monotonic_ns() >= until)
			break;
		spin_relax(round);
	}
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
		n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
	return n;
}

/* Take one whole frame out of rbuf, reading more (blocking or not) as needed.
 * 1: got one (payload malloc'ed and NUL-terminated), 0: not yet, -1: error. */
static int
next_frame(struct gbx_conn *c, bool block, struct gbx_header *h, char **payload)
{
	for (;;) {
		if (c->rlen >= GBX_HEADER_SIZE) {
			const char *bad = gbx_decode_header(c->rbuf, h);
			if (bad != NULL)
				return fail(c, "daemon sent a broken frame: %s", bad);
			if (c->rlen >= GBX_HEADER_SIZE + h->length) {
				*payload = malloc(h->length + 1);
				memcpy(*payload, c->rbuf + GBX_HEADER_SIZE, h->length);
				(*payload)[h->length] = '\0';
				c->rlen -= GBX_HEADER_SIZE + h->length;
				memmove(c->rbuf, c->rbuf + GBX_HEADER_SIZE + h->length, c->rlen);
				return 1;
			}
		}
		if (c->rcap - c->rlen < 65536) {
			unsigned char *p = realloc(c->rbuf, c->rcap + 65536 * 4);
			if (p == NULL)
				return fail(c, "out of memory");
			c->rbuf = p;
			c->rcap += 65536 * 4;
		}
		ssize_t n = block && c->busy_poll_us > 0 ? recv_polling(c) : recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, block ? 0 : MSG_DONTWAIT);
		if (n == 0)
			return fail(c, "gearboxd closed the connection");
		if (n < 0) {
			if (errno == EINTR)
				continue;
			if (!block && (errno == EAGAIN || errno == EWOULDBLOCK))
				return 0;
			return fail(c, "recv: %s", strerror(errno));
		}
		c->rlen += (size_t)n;
	}
}

static void
keep_event(struct gbx_conn *c, char *payload)
{
	free(c->event);
	c->event = payload;
}

/* An error frame: its message in c->error, its code in c->error_code. */
static void
refused(struct gbx_conn *c, const char *payload)
{
	struct json_object *o = json_tokener_parse(payload), *e = NULL, *code = NULL;

	if (o != NULL) {
		json_object_object_get_ex(o, GBX_KEY_ERROR, &e);
		json_object_object_get_ex(o, GBX_KEY_CODE, &code);
	}
	fail(c, "%s", e && json_object_is_type(e, json_type_string) ? json_object_get_string(e) : payload);
	snprintf(c->error_code, sizeof(c->error_code), "%s",
	         code && json_object_is_type(code, json_type_string) ? json_object_get_string(code) : "");
	json_object_put(o);
}

/* Wait for the reply to `id`, keeping events that arrive meanwhile. */
static int
wait_reply(struct gbx_conn *c, uint32_t id, unsigned expect, char **reply)
{
	for (;;) {
		struct gbx_header h;
		char *payload = NULL;
		if (next_frame(c, true, &h, &payload) != 1)
			return -1;
		if (h.type == GBX_MSG_EVENT) {
			keep_event(c, payload);
			continue;
		}
		if (h.id != id && !(h.type == GBX_MSG_ERROR && h.id == 0)) {
			free(payload);
			continue; /* a reply to an earlier asynchronous request */
		}
		if (h.type == GBX_MSG_ERROR) {
			refused(c, payload);
			free(payload);
			return -1;
		}
		if (h.type != expect) {
			free(payload);
			return fail(c, "unexpected reply type %u (wanted %u)", h.type, expect);
		}
		*reply = payload;
		return 0;
	}
}

int
gbx_call(struct gbx_conn *c, unsigned type, const char *json, char **reply)
{
	uint32_t id = c->next_id++;

	if (send_frame(c, type, id, json, strlen(json), NULL, 0) != 0)
		return -1;
	return wait_reply(c, id, type + 1, reply);
}

/* A request built with json-c, its reply's text handed over. */
static int
call_text(struct gbx_conn *c, unsigned type, struct json_object *req, char **reply)
{
	int ret = gbx_call(c, type, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), reply);

	json_object_put(req);
	return ret;
}

static struct json_object *
string_field(struct json_object *req, const char *key, const char *value)
{
	if (value != NULL)
		json_object_object_add(req, key, json_object_new_string(value));
	return req;
}

int
gbx_hello(struct gbx_conn *c, const char *client_name, char **reply)
{
	return call_text(c, GBX_MSG_HELLO, string_field(json_object_new_object(), "client", client_name), reply);
}

int gbx_models(struct gbx_conn *c, char **reply) { return gbx_call(c, GBX_MSG_MODELS, "{}", reply); }
int gbx_status(struct gbx_conn *c, char **reply) { return gbx_call(c, GBX_MSG_STATUS, "{}", reply); }
int gbx_platform(struct gbx_conn *c, char **reply) { return gbx_call(c, GBX_MSG_PLATFORM, "{}", reply); }
int gbx_reload(struct gbx_conn *c, char **reply) { return gbx_call(c, GBX_MSG_RELOAD, "{}", reply); }
int gbx_plan(struct gbx_conn *c, char **reply) { return gbx_call(c, GBX_MSG_PLAN, "{}", reply); }

int
gbx_stats(struct gbx_conn *c, uint32_t session, char **reply)
{
	struct json_object *req = json_object_new_object();

	if (session != 0)
		json_object_object_add(req, GBX_KEY_SESSION, json_object_new_int64(session));
	return call_text(c, GBX_MSG_STATS, req, reply);
}

int
gbx_pareto(struct gbx_conn *c, const char *model, const char *policy, bool all, char **reply)
{
	struct json_object *req = string_field(string_field(json_object_new_object(), GBX_KEY_MODEL, model),
	                                       GBX_KEY_POLICY, policy);

	if (all)
		json_object_object_add(req, GBX_KEY_ALL, json_object_new_boolean(true));
	return call_text(c, GBX_MSG_PARETO, req, reply);
}

int
gbx_calibrate(struct gbx_conn *c, const char *model, char **reply)
{
	return call_text(c, GBX_MSG_CALIBRATE, string_field(json_object_new_object(), GBX_KEY_MODEL, model), reply);
}

int
gbx_subscribe(struct gbx_conn *c)
{
	char *reply = NULL;
	int ret = gbx_call(c, GBX_MSG_SUBSCRIBE, "{}", &reply);

	free(reply);
	return ret;
}

static struct json_object *
call_json(struct gbx_conn *c, unsigned type, struct json_object *req)
{
	char *reply = NULL;
	struct json_object *o = NULL;

	if (gbx_call(c, type, json_object_to_json_string_ext(req, JSON_C_TO_STRING_PLAIN), &reply) == 0 &&
	    (o = json_tokener_parse(reply)) == NULL)
		fail(c, "daemon sent bad JSON");
	json_object_put(req);
	free(reply);
	return o;
}

/* A budget field the caller's struct has: a program built with an older,
 * shorter struct gbx_budget (its `size`) is not read past its end; size 0
 * is the first layout. */
#define BUDGET_HAS(b, field) \
	((b)->size == 0 || (b)->size >= offsetof(struct gbx_budget, field) + sizeof((b)->field))

static void
add_budget(struct json_object *o, const struct gbx_budget *b)
{
	if (b == NULL)
		return;
	if (BUDGET_HAS(b, deadline_us))
		json_object_object_add(o, GBX_KEY_DEADLINE_US, json_object_new_int64((int64_t)b->deadline_us));
	if (BUDGET_HAS(b, energy_uj))
		json_object_object_add(o, GBX_KEY_ENERGY_UJ, json_object_new_int64((int64_t)b->energy_uj));
	if (BUDGET_HAS(b, min_accuracy))
		json_object_object_add(o, GBX_KEY_MIN_ACCURACY, json_object_new_double(b->min_accuracy));
	if (b->size != 0 && BUDGET_HAS(b, rate_hz) && b->rate_hz > 0)
		json_object_object_add(o, GBX_KEY_RATE_HZ, json_object_new_double(b->rate_hz));
	if (b->size != 0 && BUDGET_HAS(b, weight) && b->weight > 0)
		json_object_object_add(o, GBX_KEY_WEIGHT, json_object_new_double(b->weight));
}

int
gbx_open_session(struct gbx_conn *c, const char *model, const struct gbx_budget *b, uint32_t *session)
{
	return gbx_open_session_policy(c, model, b, NULL, session);
}

int
gbx_open_session_policy(struct gbx_conn *c, const char *model, const struct gbx_budget *b, const char *policy,
                        uint32_t *session)
{
	struct json_object *req = json_object_new_object(), *rep;

	if (model != NULL)
		json_object_object_add(req, "model", json_object_new_string(model));
	if (policy != NULL)
		json_object_object_add(req, "policy", json_object_new_string(policy));
	add_budget(req, b);
	if ((rep = call_json(c, GBX_MSG_OPEN, req)) == NULL)
		return -1;
	*session = (uint32_t)json_object_get_int64(json_object_object_get(rep, "session"));
	json_object_put(rep);
	return 0;
}

int
gbx_set_budget(struct gbx_conn *c, uint32_t session, const struct gbx_budget *b)
{
	struct json_object *req = json_object_new_object(), *rep;

	json_object_object_add(req, "session", json_object_new_int64(session));
	add_budget(req, b);
	if ((rep = call_json(c, GBX_MSG_BUDGET, req)) == NULL)
		return -1;
	json_object_put(rep);
	return 0;
}

int
gbx_close_session(struct gbx_conn *c, uint32_t session)
{
	struct json_object *req = json_object_new_object(), *rep;

	json_object_object_add(req, "session", json_object_new_int64(session));
	if ((rep = call_json(c, GBX_MSG_CLOSE, req)) == NULL)
		return -1;
	json_object_put(rep);
	return 0;
}

/* An INFER reply into r (infer.c: its fast reader, or json-c), and the
 * reply's return path. */
static int
parse_result(struct gbx_conn *c, char *payload, struct gbx_result *r)
{
	uint64_t received = monotonic_ns(), done = 0;
	int ret = result_read(r, payload, &done);

	if (ret == RESULT_BAD_JSON)
		return fail(c, "daemon sent bad JSON");
	/* Same host, same CLOCK_MONOTONIC (a daemon in another time namespace
	 * gives implausible values, which are ignored). */
	if (done != 0 && done <= received && received - done < 1000000000ull)
		c->return_us = (double)(received - done) / 1e3;
	if (ret == RESULT_NO_MEMORY)
		return fail(c, "out of memory");
	return 0;
}

static int
send_infer(struct gbx_conn *c, uint32_t session, const void *input, size_t bytes, bool pixels, uint32_t *id)
{
	char head[INFER_HEAD_MAX];
	/* sent_ns: when the request left, so that the daemon counts the time
	 * before it arrived against the deadline */
	int n = infer_head(head, session, pixels, monotonic_ns(), c->return_us);

	*id = c->next_id++;
	return send_frame(c, GBX_MSG_INFER, *id, head, (size_t)n + 1 /* the NUL */, input, bytes);
}

/* Sleep until the timer fires at `at` (CLOCK_MONOTONIC) or the socket is
 * readable. true: the timer fired (and the socket may not be readable yet). */
static bool
sleep_until(struct gbx_conn *c, uint64_t at)
{
	struct itimerspec its = { .it_value = { .tv_sec = (time_t)(at / 1000000000u), .tv_nsec = (long)(at % 1000000000u) } };
	struct pollfd p[2] = { { .fd = c->fd, .events = POLLIN }, { .fd = -1, .events = POLLIN } };

	if (c->wake_timer_fd < 0 && (c->wake_timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK)) < 0)
		return false;
	/* Arming it also clears an expiry left from a reply that came first. */
	if (timerfd_settime(c->wake_timer_fd, TFD_TIMER_ABSTIME, &its, NULL) != 0)
		return false;
	p[1].fd = c->wake_timer_fd;
	while (poll(p, 2, -1) < 0)
		if (errno != EINTR)
			return false;
	return (p[0].revents & POLLIN) == 0;
}

/* Be awake when the reply to a request sent at `sent` comes (wake_ahead.h).
 * Returns when the socket is readable, or when the poll ran out: the
 * caller's recv then sleeps for a reply later still. */
static void
await_reply_awake(struct gbx_conn *c, uint64_t sent)
{
	struct pollfd p = { .fd = c->fd, .events = POLLIN };
	uint64_t wake, poll_until, now;

	if (c->rlen > 0 || !wake_ahead_plan(&c->wake, &wake, &poll_until))
		return;
	wake += sent;
	poll_until += sent;
	if (wake > (now = monotonic_ns())) {
		if (!sleep_until(c, wake))
			return;
		now = monotonic_ns();
		wake_ahead_learn_lateness(&c->wake, now - wake);
	}
	for (unsigned round = 0; now < poll_until; round++) {
		if (poll(&p, 1, 0) != 0)
			return;
		spin_relax(round);
		now = monotonic_ns();
	}
}

static int
infer(struct gbx_conn *c, uint32_t session, const void *input, size_t bytes, bool pixels, struct gbx_result *r)
{
	char *reply = NULL;
	uint32_t id;
	uint64_t sent;
	int ret;

	if (r == NULL)
		return fail(c, "no result to fill (gbx_result_new)");
	if (send_infer(c, session, input, bytes, pixels, &id) != 0)
		return -1;
	sent = monotonic_ns();
	if (c->busy_poll_us == 0)
		await_reply_awake(c, sent);
	if (wait_reply(c, id, GBX_MSG_INFER_REPLY, &reply) != 0)
		return -1;
	wake_ahead_learn_rtt(&c->wake, monotonic_ns() - sent);
	ret = parse_result(c, reply, r);
	r->request_id = id;
	return ret;
}

int
gbx_infer(struct gbx_conn *c, uint32_t session, const float *input, size_t n, struct gbx_result *r)
{
	return infer(c, session, input, n * sizeof(float), false, r);
}

int
gbx_infer_pixels(struct gbx_conn *c, uint32_t session, const uint8_t *pixels, size_t n, struct gbx_result *r)
{
	return infer(c, session, pixels, n, true, r);
}

int
gbx_send_infer(struct gbx_conn *c, uint32_t session, const float *input, size_t n, uint32_t *request_id)
{
	return send_infer(c, session, input, n * sizeof(float), false, request_id);
}

int
gbx_send_infer_pixels(struct gbx_conn *c, uint32_t session, const uint8_t *pixels, size_t n, uint32_t *request_id)
{
	return send_infer(c, session, pixels, n, true, request_id);
}

int
gbx_receive(struct gbx_conn *c, struct gbx_result *r)
{
	struct gbx_header h;
	char *payload = NULL;
	int got;

	if (r == NULL)
		return fail(c, "no result to fill (gbx_result_new)");
	/* a reply to another request (not an INFER's) is skipped */
	while ((got = next_frame(c, false, &h, &payload)) == 1 && h.type != GBX_MSG_EVENT && h.type != GBX_MSG_ERROR &&
	       h.type != GBX_MSG_INFER_REPLY)
		free(payload);
	if (got != 1)
		return got;
	result_clear(r);
	if (h.type == GBX_MSG_EVENT) {
		keep_event(c, payload);
		return 1;
	}
	r->request_id = h.id;
	if (h.type == GBX_MSG_ERROR) {
		refused(c, payload);
		free(payload);
		return -1;
	}
	if (parse_result(c, payload, r) != 0)
		return -1;
	r->request_id = h.id;
	return 1;
}
