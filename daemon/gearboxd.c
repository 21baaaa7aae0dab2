/* gearboxd — serves budgeted inference on dynamic DNNs over a Unix socket.
 *
 * run(): parse options, open the models, take the socket (systemd socket
 * activation, else bind), then an sd-event loop: client IO, completions from
 * the workers (eventfd), signals (TERM/INT stop, HUP reloads), a status timer
 * and the watchdog. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>
#include <systemd/sd-daemon.h>
#include <systemd/sd-event.h>

#include "proto/protocol.h"
#include "common/clock.h"
#include "daemon/settings.h"
#include "daemon/log.h"
#include "daemon/worker.h"
#include "policies/policy.h"

#define MAX_CLIENTS 1024
#define MAX_SESSIONS_PER_CLIENT 64
#define MAX_OUTBUF (16u << 20)

#define SESSION_WINDOW 256

struct session {
	uint32_t id;
	struct model_host *host;
	struct budget budget;
	int priority;
	char policy[POL_NAME];
	/* statistics: totals, and the last SESSION_WINDOW daemon-side latencies
	 * (queue + inference) for percentiles */
	uint64_t requests, deadline_met, deadline_total, groups_sum;
	double recent_us[SESSION_WINDOW];
};

#define RETURN_SAMPLES 16

struct client {
	struct daemon *daemon;
	uint64_t id;
	int fd;
	sd_event_source *io;
	uid_t uid;
	gid_t gid;
	bool privileged;
	bool subscribed;
	unsigned char header[GBX_HEADER_SIZE];
	size_t have;             /* bytes of header + payload read so far */
	struct gbx_header h;
	unsigned char *payload;
	unsigned char *out;      /* unsent replies */
	size_t out_len, out_cap;
	struct reply_channel *channel; /* shared with the workers: see worker.h */
	struct session sessions[MAX_SESSIONS_PER_CLIENT];
	unsigned nsessions;
	bool closing;            /* close once `out` is flushed */
	/* Return paths the client measured (reply's done_ns to its receiving
	 * it), the last RETURN_SAMPLES of them. */
	double return_us[RETURN_SAMPLES];
	unsigned nreturn;
	struct client *next;
};

struct daemon {
	sd_event *event;
	int listen_fd;
	bool own_socket;
	char *socket_path;
	const char *config_path;   /* NULL: none */
	struct config config;
	struct hosts hosts;
	struct pol_set policies;   /* replaced whole on reload */
	char default_policy[POL_NAME];
	struct client *clients;
	unsigned nclients;
	uint64_t next_client_id;
	uint32_t next_session;     /* session ids are daemon-wide */
	uint64_t requests, served, deadline_met, deadline_total;
	uint64_t served_at_last_status;
	double requests_per_s;      /* over the last status period (5 s) */
	time_t started;
	gid_t gearbox_gid;
};

static void client_close(struct daemon *d, struct client *c);
static void drain_completions(struct daemon *d);
static int reload(struct daemon *d, char **policy_error);

/* ------------------------------------------------------------------------ */
/* Sending. */

/* Make room for `more` bytes in c->out. */
static int
out_reserve(struct client *c, size_t more)
{
	if (c->out_len + more > MAX_OUTBUF)
		return -ENOBUFS; /* a client that never reads loses its connection */
	if (c->out_len + more > c->out_cap) {
		size_t cap = (c->out_len + more) * 2;
		unsigned char *p = realloc(c->out, cap);
		if (p == NULL)
			return -ENOMEM;
		c->out = p;
		c->out_cap = cap;
	}
	return 0;
}

/* Send what is queued, the rest of a reply a worker began first. Called
 * with the channel locked: no worker sends in between. */
static int
flush_locked(struct client *c)
{
	struct reply_channel *ch = c->channel;

	if (ch->pending_len > 0) {
		/* the worker only sends when c->out is empty */
		if (out_reserve(c, ch->pending_len) != 0)
			return -ENOBUFS;
		memmove(c->out + ch->pending_len, c->out, c->out_len);
		memcpy(c->out, ch->pending, ch->pending_len);
		c->out_len += ch->pending_len;
		free(ch->pending);
		ch->pending = NULL;
		ch->pending_len = 0;
	}
	while (c->out_len > 0) {
		ssize_t n = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
		memmove(c->out, c->out + n, c->out_len - (size_t)n);
		c->out_len -= (size_t)n;
	}
	return 0;
}

static int
client_flush(struct client *c)
{
	int ret;

	pthread_mutex_lock(&c->channel->lock);
	ret = flush_locked(c);
	c->channel->busy = c->out_len > 0;
	pthread_mutex_unlock(&c->channel->lock);
	return ret;
}

static void
update_events(struct client *c)
{
	sd_event_source_set_io_events(c->io, EPOLLIN | EPOLLRDHUP | (c->out_len > 0 ? EPOLLOUT : 0));
}

static int
send_frame(struct client *c, uint16_t type, uint32_t id, const void *payload, size_t len)
{
	unsigned char hdr[GBX_HEADER_SIZE];
	int ret;

	gbx_encode_header(hdr, type, id, (uint32_t)len);
	pthread_mutex_lock(&c->channel->lock);
	/* a worker's unsent rest goes first, then this frame */
	if ((ret = flush_locked(c)) == 0 && (ret = out_reserve(c, GBX_HEADER_SIZE + len)) == 0) {
		memcpy(c->out + c->out_len, hdr, GBX_HEADER_SIZE);
		memcpy(c->out + c->out_len + GBX_HEADER_SIZE, payload, len);
		c->out_len += GBX_HEADER_SIZE + len;
		ret = flush_locked(c) != 0 ? -EPIPE : 0;
	}
	c->channel->busy = c->out_len > 0;
	pthread_mutex_unlock(&c->channel->lock);
	if (ret == 0)
		update_events(c);
	return ret;
}

static int
send_json(struct client *c, uint16_t type, uint32_t id, struct json_object *o)
{
	const char *text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
	int ret = send_frame(c, type, id, text, strlen(text));

	json_object_put(o);
	return ret;
}

static int
send_error(struct client *c, uint32_t id, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static int
send_error(struct client *c, uint32_t id, const char *code, const char *fmt, ...)
{
	struct json_object *o = json_object_new_object();
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	json_object_object_add(o, "error", json_object_new_string(msg));
	json_object_object_add(o, "code", json_object_new_string(code));
	log_debug("client %llu: %s: %s", (unsigned long long)c->id, code, msg);
	return send_json(c, GBX_MSG_ERROR, id, o);
}

static void
broadcast_event(struct daemon *d, struct json_object *event)
{
	for (struct client *c = d->clients; c != NULL; c = c->next)
		if (c->subscribed && !c->closing)
			send_json(c, GBX_MSG_EVENT, 0, json_object_get(event));
	json_object_put(event);
}

/* ------------------------------------------------------------------------ */
/* Requests. */

static struct json_object *
parse_payload(struct client *c, size_t len)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o;

	if (len == 0) {
		json_tokener_free(tok);
		return json_object_new_object();
	}
	o = json_tokener_parse_ex(tok, (const char *)c->payload, (int)len);
	if (o == NULL || json_tokener_get_parse_end(tok) != len || !json_object_is_type(o, json_type_object)) {
		send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "payload is not one JSON object (%s)",
		           o == NULL ? json_tokener_error_desc(json_tokener_get_error(tok)) : "trailing bytes or not an object");
		json_object_put(o);
		o = NULL;
	}
	json_tokener_free(tok);
	return o;
}

/* An optional non-negative integer field within [0, max]; -1 on a bad one
 * (an error reply has been sent). */
static int
get_u64(struct client *c, struct json_object *o, const char *key, uint64_t max, uint64_t *out)
{
	struct json_object *v;
	int64_t x;

	if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_int) || (x = json_object_get_int64(v)) < 0 || (uint64_t)x > max)
		return send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "'%s' must be an integer from 0 to %llu", key,
		                  (unsigned long long)max), -1;
	*out = (uint64_t)x;
	return 0;
}

static int
parse_budget(struct client *c, struct json_object *o, struct budget *b)
{
	struct json_object *v;

	if (get_u64(c, o, "deadline_us", 3600ull * 1000000, &b->deadline_us) != 0 ||
	    get_u64(c, o, "energy_uj", 1000ull * 1000000, &b->energy_uj) != 0)
		return -1;
	if (json_object_object_get_ex(o, "min_accuracy", &v) && !json_object_is_type(v, json_type_null)) {
		double a = json_object_get_double(v);
		if ((!json_object_is_type(v, json_type_double) && !json_object_is_type(v, json_type_int)) || !(a >= 0 && a <= 1))
			return send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "'min_accuracy' must be a number in [0, 1]"), -1;
		b->min_accuracy = a;
	}
	return 0;
}

static struct session *
find_session(struct client *c, struct json_object *o)
{
	uint64_t id = 0;

	if (get_u64(c, o, "session", UINT32_MAX, &id) != 0)
		return NULL;
	for (unsigned i = 0; i < c->nsessions; i++)
		if (c->sessions[i].id == id)
			return &c->sessions[i];
	send_error(c, c->h.id, GBX_ERR_NO_SESSION, "no session %llu on this connection (open one first)",
	           (unsigned long long)id);
	return NULL;
}

/* Budgets may be changed from another connection (gearboxctl budget): by the
 * same user, or by root and the gearbox group. */
static struct session *
find_any_session(struct client *c, struct json_object *o)
{
	uint64_t id = 0;

	if (get_u64(c, o, "session", UINT32_MAX, &id) != 0)
		return NULL;
	for (struct client *other = c->daemon->clients; other != NULL; other = other->next)
		for (unsigned i = 0; i < other->nsessions; i++)
			if (other->sessions[i].id == id) {
				if (other != c && other->uid != c->uid && !c->privileged) {
					send_error(c, c->h.id, GBX_ERR_DENIED, "session %llu belongs to another user",
					           (unsigned long long)id);
					return NULL;
				}
				return &other->sessions[i];
			}
	send_error(c, c->h.id, GBX_ERR_NO_SESSION, "no session %llu", (unsigned long long)id);
	return NULL;
}

static struct json_object *
model_json(const struct model_host *m)
{
	struct json_object *o = json_object_new_object(), *shape = json_object_new_array();
	struct json_object *acc = json_object_new_array(), *labels = json_object_new_array();
	unsigned c, h, w;

	dnn_model_input_shape(m->model, &c, &h, &w);
	json_object_array_add(shape, json_object_new_int((int)c));
	json_object_array_add(shape, json_object_new_int((int)h));
	json_object_array_add(shape, json_object_new_int((int)w));
	for (unsigned g = 1; g <= dnn_model_groups(m->model); g++) {
		double a = dnn_model_accuracy(m->model, g);
		json_object_array_add(acc, a >= 0 ? json_object_new_double(a) : NULL);
	}
	for (unsigned i = 0; i < dnn_model_classes(m->model); i++)
		json_object_array_add(labels, json_object_new_string(dnn_model_label(m->model, i)));
	json_object_object_add(o, "name", json_object_new_string(dnn_model_name(m->model)));
	json_object_object_add(o, "path", json_object_new_string(m->path));
	json_object_object_add(o, "groups", json_object_new_int((int)dnn_model_groups(m->model)));
	json_object_object_add(o, "input_shape", shape);
	json_object_object_add(o, "classes", json_object_new_int((int)dnn_model_classes(m->model)));
	json_object_object_add(o, "labels", labels);
	json_object_object_add(o, "accuracy", acc);
	json_object_object_add(o, "placement", json_object_new_string(m->placement));
	return o;
}

/* Policy `name` for model m, with gearboxd.conf's margin and the host's
 * thread limit on top. A policy removed by a reload falls back to the
 * default one. */
static void
resolve_policy(struct daemon *d, const struct model_host *m, const char *name, struct pol_params *out)
{
	const struct pol_policy *pol = pol_set_find(&d->policies, name);

	if (pol == NULL && (pol = pol_set_find(&d->policies, d->default_policy)) == NULL)
		pol = pol_set_find(&d->policies, "default");
	pol_policy_resolve(pol, dnn_model_name(m->model), out);
	if (d->config.margin >= 0)
		out->margin = d->config.margin;
	if (m->threads && (out->max_threads == 0 || out->max_threads > m->threads))
		out->max_threads = m->threads;
}

/* "default, powersave, realtime" */
static void
policy_names(const struct daemon *d, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < d->policies.n && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", d->policies.policies[i].params.name);
}

/* The "policy" a request names (the daemon's default when none) into name;
 * -1 after an error reply naming the policies there are. */
static int
requested_policy(struct daemon *d, struct client *c, struct json_object *o, char name[POL_NAME])
{
	struct json_object *v;
	char names[512];

	snprintf(name, POL_NAME, "%s", d->default_policy);
	if (!json_object_object_get_ex(o, "policy", &v) || json_object_is_type(v, json_type_null))
		return 0;
	if (!json_object_is_type(v, json_type_string) || pol_set_find(&d->policies, json_object_get_string(v)) == NULL) {
		policy_names(d, names, sizeof(names));
		send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "no policy '%s' (have: %s)", json_object_get_string(v), names);
		return -1;
	}
	snprintf(name, POL_NAME, "%s", json_object_get_string(v));
	return 0;
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

struct timing {
	uint64_t origin_ns;      /* 0: not given */
	double return_us;
};

/* An INFER's "sent_ns" (the client's CLOCK_MONOTONIC when it sent it) and
 * "return_us" (how long its previous reply took to reach it): deadlines are
 * planned end to end with the time before arrival and the 90th percentile of
 * the client's recent return paths taken off. Values that cannot be true
 * (another clock, e.g. a client in another time namespace) are ignored. */
static struct timing
request_timing(struct client *c, struct json_object *o)
{
	struct timing t = { 0, 0 };
	struct json_object *v;
	double sorted[RETURN_SAMPLES];
	unsigned n;
	uint64_t now = monotonic_ns();

	if (json_object_object_get_ex(o, "sent_ns", &v)) {
		uint64_t sent = (uint64_t)json_object_get_int64(v);
		if (sent > 0 && sent <= now && now - sent < 10000000000ull)
			t.origin_ns = sent;
	}
	if (json_object_object_get_ex(o, "return_us", &v)) {
		double us = json_object_get_double(v);
		if (us >= 0 && us < 1e6)
			c->return_us[c->nreturn++ % RETURN_SAMPLES] = us;
	}
	n = c->nreturn < RETURN_SAMPLES ? c->nreturn : RETURN_SAMPLES;
	if (n > 0) {
		memcpy(sorted, c->return_us, n * sizeof(double));
		qsort(sorted, n, sizeof(double), compare_double);
		t.return_us = sorted[n * 9 / 10];
	}
	return t;
}

static void
handle_infer(struct daemon *d, struct client *c)
{
	size_t json_len = strnlen((const char *)c->payload, c->h.length), in_n, have;
	struct json_object *o, *v;
	struct timing timing;
	struct session *s;
	struct request *r;
	bool pixels = false;
	int ret;

	if (json_len == c->h.length)
		return (void)send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "infer payload needs JSON, a NUL byte, then the input");
	if ((o = parse_payload(c, json_len)) == NULL)
		return;
	if ((s = find_session(c, o)) == NULL) {
		json_object_put(o);
		return;
	}
	if (json_object_object_get_ex(o, "pixels", &v))
		pixels = json_object_get_boolean(v);
	timing = request_timing(c, o);
	json_object_put(o);
	in_n = dnn_model_input_size(s->host->model);
	have = c->h.length - json_len - 1;
	if (have != in_n * (pixels ? 1 : sizeof(float)))
		return (void)send_error(c, c->h.id, GBX_ERR_BAD_INPUT, "input has %zu bytes; %s expects %zu %s (%zu bytes)", have,
		                        dnn_model_name(s->host->model), in_n, pixels ? "uint8 pixels" : "float32 values",
		                        in_n * (pixels ? 1 : sizeof(float)));
	r = calloc(1, sizeof(*r));
	r->input = malloc(in_n * sizeof(float));
	r->output = malloc(dnn_model_output_size(s->host->model) * sizeof(float));
	if (r->input == NULL || r->output == NULL) {
		request_free(r);
		return (void)send_error(c, c->h.id, GBX_ERR_INTERNAL, "out of memory");
	}
	if (pixels) {
		dnn_model_normalize_u8(s->host->model, c->payload + json_len + 1, r->input);
	} else {
		memcpy(r->input, c->payload + json_len + 1, in_n * sizeof(float));
		for (size_t i = 0; i < in_n; i++)
			if (!isfinite(r->input[i])) {
				request_free(r);
				return (void)send_error(c, c->h.id, GBX_ERR_BAD_INPUT, "input value %zu is not finite", i);
			}
	}
	r->client_id = c->id;
	r->msg_id = c->h.id;
	r->session = s->id;
	r->origin_ns = timing.origin_ns;
	r->return_us = timing.return_us;
	r->channel = reply_channel_ref(c->channel);
	r->budget = s->budget;
	resolve_policy(d, s->host, s->policy, &r->params);
	if ((ret = host_submit(s->host, r)) != 0) {
		request_free(r);
		send_error(c, c->h.id, GBX_ERR_BUSY, "%s's queue is full (%d requests): try again later",
		           dnn_model_name(s->host->model), QUEUE_MAX);
		return;
	}
	d->requests++;
}

static struct json_object *
status_json(struct daemon *d)
{
	struct json_object *o = json_object_new_object(), *models = json_object_new_array();
	unsigned sessions = 0;

	for (struct client *c = d->clients; c != NULL; c = c->next)
		sessions += c->nsessions;
	for (unsigned i = 0; i < d->hosts.nmodels; i++) {
		struct model_host *m = &d->hosts.models[i];
		struct json_object *mo = json_object_new_object();
		pthread_mutex_lock(&m->lock);
		json_object_object_add(mo, "name", json_object_new_string(dnn_model_name(m->model)));
		json_object_object_add(mo, "placement", json_object_new_string(m->placement));
		json_object_object_add(mo, "threads", json_object_new_int((int)m->last_threads));
		json_object_object_add(mo, "freq_khz", json_object_new_int64((int64_t)m->last_khz));
		json_object_object_add(mo, "calibrated_points", json_object_new_int((int)m->predictor.measurements));
		json_object_object_add(mo, "queued", json_object_new_int((int)m->nqueued));
		json_object_object_add(mo, "requests", json_object_new_int64((int64_t)m->requests));
		json_object_object_add(mo, "busy_rejections", json_object_new_int64((int64_t)m->busy));
		json_object_object_add(mo, "last_groups", json_object_new_int((int)m->last_groups));
		json_object_object_add(mo, "last_latency_us", json_object_new_double(m->last_latency_us));
		json_object_object_add(mo, "deadline_hit_rate",
		                       m->deadline_total ? json_object_new_double((double)m->deadline_met / (double)m->deadline_total) : NULL);
		pthread_mutex_unlock(&m->lock);
		json_object_array_add(models, mo);
	}
	json_object_object_add(o, "server", json_object_new_string("gearboxd"));
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)(time(NULL) - d->started)));
	json_object_object_add(o, "clients", json_object_new_int((int)d->nclients));
	json_object_object_add(o, "sessions", json_object_new_int((int)sessions));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)d->requests));
	json_object_object_add(o, "served", json_object_new_int64((int64_t)d->served));
	json_object_object_add(o, "requests_per_s", json_object_new_double(d->requests_per_s));
	json_object_object_add(o, "deadline_hit_rate",
	                       d->deadline_total ? json_object_new_double((double)d->deadline_met / (double)d->deadline_total) : NULL);
	json_object_object_add(o, "dvfs", json_object_new_boolean(d->hosts.platform->cpufreq));
	json_object_object_add(o, "energy_source", json_object_new_string(d->hosts.energy_counter ? d->hosts.energy_counter->name
	                                                                                         : "model"));
	json_object_object_add(o, "models", models);
	{
		struct json_object *pl = json_object_new_array();
		for (unsigned i = 0; i < d->policies.n; i++)
			json_object_array_add(pl, json_object_new_string(d->policies.policies[i].params.name));
		json_object_object_add(o, "policies", pl);
		json_object_object_add(o, "default_policy", json_object_new_string(d->default_policy));
	}
	{
		struct json_object *list = json_object_new_array();
		for (struct client *c = d->clients; c != NULL; c = c->next)
			for (unsigned i = 0; i < c->nsessions; i++) {
				struct json_object *so = json_object_new_object();
				const struct session *s = &c->sessions[i];
				json_object_object_add(so, "session", json_object_new_int64(s->id));
				json_object_object_add(so, "model", json_object_new_string(dnn_model_name(s->host->model)));
				json_object_object_add(so, "uid", json_object_new_int((int)c->uid));
				json_object_object_add(so, "deadline_us", json_object_new_int64((int64_t)s->budget.deadline_us));
				json_object_object_add(so, "energy_uj", json_object_new_int64((int64_t)s->budget.energy_uj));
				json_object_object_add(so, "min_accuracy", json_object_new_double(s->budget.min_accuracy));
				json_object_object_add(so, "policy", json_object_new_string(s->policy));
				json_object_array_add(list, so);
			}
		json_object_object_add(o, "session_list", list);
	}
	return o;
}

/* One session's statistics: totals and latency percentiles over its last
 * SESSION_WINDOW requests. */
static struct json_object *
session_stats_json(const struct session *s)
{
	struct json_object *o = json_object_new_object(), *lat = json_object_new_object();
	unsigned n = s->requests < SESSION_WINDOW ? (unsigned)s->requests : SESSION_WINDOW;
	double sorted[SESSION_WINDOW];

	memcpy(sorted, s->recent_us, n * sizeof(double));
	qsort(sorted, n, sizeof(double), compare_double);
	json_object_object_add(o, "session", json_object_new_int64(s->id));
	json_object_object_add(o, "model", json_object_new_string(dnn_model_name(s->host->model)));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)s->requests));
	json_object_object_add(o, "mean_groups", s->requests ? json_object_new_double((double)s->groups_sum / (double)s->requests)
	                                                     : NULL);
	json_object_object_add(o, "deadline_hit_rate",
	                       s->deadline_total ? json_object_new_double((double)s->deadline_met / (double)s->deadline_total) : NULL);
	if (n > 0) {
		json_object_object_add(lat, "p50", json_object_new_double(sorted[n / 2]));
		json_object_object_add(lat, "p90", json_object_new_double(sorted[(n * 9) / 10]));
		json_object_object_add(lat, "p99", json_object_new_double(sorted[n - 1 - n / 100]));
	}
	json_object_object_add(o, "latency_us", lat);
	json_object_object_add(o, "window", json_object_new_int((int)n));
	return o;
}

/* The model a request names, or the only one. NULL after an error reply. */
static struct model_host *
requested_model(struct daemon *d, struct client *c, struct json_object *o)
{
	struct json_object *v;
	struct model_host *m;

	if (!json_object_object_get_ex(o, "model", &v) || json_object_is_type(v, json_type_null)) {
		if (d->hosts.nmodels == 1)
			return &d->hosts.models[0];
		send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "name a 'model' (%u models are hosted)", d->hosts.nmodels);
		return NULL;
	}
	if (!json_object_is_type(v, json_type_string) || (m = hosts_find(&d->hosts, json_object_get_string(v))) == NULL)
		send_error(c, c->h.id, GBX_ERR_NO_MODEL, "no model '%s' (see gearboxctl models)", json_object_get_string(v));
	else
		return m;
	return NULL;
}

static struct json_object *
point_json(const struct model_host *m, const struct pol_point *pt)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "groups", json_object_new_int((int)pt->groups));
	json_object_object_add(o, "placement", json_object_new_string(m->predictor.places[pt->place].name));
	json_object_object_add(o, "threads", json_object_new_int((int)pt->threads));
	json_object_object_add(o, "freq_khz", json_object_new_int64((int64_t)pt->khz));
	json_object_object_add(o, "accuracy", pt->accuracy >= 0 ? json_object_new_double(pt->accuracy) : NULL);
	json_object_object_add(o, "latency_us", json_object_new_double(pt->latency_us));
	json_object_object_add(o, "energy_uj", json_object_new_double(pt->energy_uj));
	json_object_object_add(o, "power_w", json_object_new_double(pt->power_w));
	return o;
}

/* PARETO: the front of a model's operating points under a policy, with the
 * interference the daemon measures now. */
static int
pareto_json(struct daemon *d, struct client *c, struct json_object *o, struct json_object *reply)
{
	static struct pol_point points[8192], front[8192];
	struct model_host *m = requested_model(d, c, o);
	struct pol_params params;
	struct json_object *list;
	char policy[POL_NAME];
	unsigned n, k;

	if (m == NULL || requested_policy(d, c, o, policy) != 0)
		return -1;
	resolve_policy(d, m, policy, &params);
	n = host_table(m, &params, points, 8192);
	k = pol_pareto(points, n, front);
	list = json_object_new_array();
	for (unsigned i = 0; i < k; i++)
		json_object_array_add(list, point_json(m, &front[i]));
	json_object_object_add(reply, "model", json_object_new_string(dnn_model_name(m->model)));
	json_object_object_add(reply, "policy", json_object_new_string(params.name));
	json_object_object_add(reply, "points", json_object_new_int((int)n));
	json_object_object_add(reply, "simulated", json_object_new_boolean(false));
	json_object_object_add(reply, "front", list);
	return 0;
}

/* CALIBRATE: queue a re-measurement on the model's worker; the reply comes
 * from on_completion. */
static void
submit_calibration(struct daemon *d, struct client *c, struct json_object *o)
{
	struct model_host *m;
	struct request *r;

	if (!c->privileged)
		return (void)send_error(c, c->h.id, GBX_ERR_DENIED,
		                        "calibrate is for root and the gearbox group (you are uid %u)", (unsigned)c->uid);
	if ((m = requested_model(d, c, o)) == NULL)
		return;
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return (void)send_error(c, c->h.id, GBX_ERR_INTERNAL, "out of memory");
	resolve_policy(d, m, d->default_policy, &r->params);
	r->kind = REQUEST_CALIBRATE;
	r->client_id = c->id;
	r->msg_id = c->h.id;
	r->session = 0;
	snprintf(r->placement, sizeof(r->placement), "%s", dnn_model_name(m->model));
	if (host_submit(m, r) != 0) {
		request_free(r);
		send_error(c, c->h.id, GBX_ERR_BUSY, "%s's queue is full: try again later", dnn_model_name(m->model));
	}
}

static void
handle_request(struct daemon *d, struct client *c)
{
	struct json_object *o, *reply;
	uint16_t type = c->h.type;

	if (type == GBX_MSG_INFER)
		return handle_infer(d, c); /* first: a request waits for nothing */
	drain_completions(d); /* STATUS and STATS count every reply already sent */
	if (type >= GBX_MSG_TYPE_MAX || type % 2 == 0)
		return (void)send_error(c, c->h.id, GBX_ERR_UNKNOWN_TYPE, "unknown request type %u", type);
	if ((o = parse_payload(c, c->h.length)) == NULL)
		return;
	reply = json_object_new_object();
	switch (type) {
	case GBX_MSG_HELLO:
		json_object_object_add(reply, "server", json_object_new_string("gearboxd"));
		json_object_object_add(reply, "version", json_object_new_string(PACKAGE_VERSION));
		json_object_object_add(reply, "protocol", json_object_new_int(GBX_PROTOCOL_VERSION));
		break;
	case GBX_MSG_MODELS: {
		struct json_object *list = json_object_new_array();
		for (unsigned i = 0; i < d->hosts.nmodels; i++)
			json_object_array_add(list, model_json(&d->hosts.models[i]));
		json_object_object_add(reply, "models", list);
		break;
	}
	case GBX_MSG_OPEN: {
		struct json_object *v;
		struct session s = { 0 };
		uint64_t prio = 0;
		if (!json_object_object_get_ex(o, "model", &v) || !json_object_is_type(v, json_type_string)) {
			if (d->hosts.nmodels != 1) {
				send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "open needs 'model' (%u models are hosted)", d->hosts.nmodels);
				goto out_drop;
			}
			s.host = &d->hosts.models[0];
		} else if ((s.host = hosts_find(&d->hosts, json_object_get_string(v))) == NULL) {
			send_error(c, c->h.id, GBX_ERR_NO_MODEL, "no model '%s' (see gearboxctl models)", json_object_get_string(v));
			goto out_drop;
		}
		if (parse_budget(c, o, &s.budget) != 0 || get_u64(c, o, "priority", 100, &prio) != 0)
			goto out_drop;
		if (requested_policy(d, c, o, s.policy) != 0)
			goto out_drop;
		if (c->nsessions == MAX_SESSIONS_PER_CLIENT) {
			send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "at most %d sessions per connection", MAX_SESSIONS_PER_CLIENT);
			goto out_drop;
		}
		s.id = ++c->daemon->next_session;
		s.priority = (int)prio;
		c->sessions[c->nsessions++] = s;
		json_object_object_add(reply, "session", json_object_new_int64(s.id));
		json_object_object_add(reply, "model", json_object_new_string(dnn_model_name(s.host->model)));
		json_object_object_add(reply, "policy", json_object_new_string(s.policy));
		break;
	}
	case GBX_MSG_BUDGET: {
		struct session *s = find_any_session(c, o);
		struct budget b = { 0 };
		if (s == NULL || parse_budget(c, o, &b) != 0)
			goto out_drop;
		s->budget = b;
		json_object_object_add(reply, "session", json_object_new_int64(s->id));
		break;
	}
	case GBX_MSG_CLOSE: {
		struct session *s = find_session(c, o);
		if (s == NULL)
			goto out_drop;
		json_object_object_add(reply, "session", json_object_new_int64(s->id));
		*s = c->sessions[--c->nsessions];
		break;
	}
	case GBX_MSG_STATUS:
		json_object_put(reply);
		reply = status_json(d);
		break;
	case GBX_MSG_STATS: {
		uint64_t only = 0;
		struct json_object *list = json_object_new_array();
		if (get_u64(c, o, "session", UINT32_MAX, &only) != 0)
			goto out_drop;
		for (struct client *cl = d->clients; cl != NULL; cl = cl->next)
			for (unsigned i = 0; i < cl->nsessions; i++)
				if (only == 0 || cl->sessions[i].id == only)
					json_object_array_add(list, session_stats_json(&cl->sessions[i]));
		if (only != 0 && json_object_array_length(list) == 0) {
			json_object_put(list);
			send_error(c, c->h.id, GBX_ERR_NO_SESSION, "no session %llu", (unsigned long long)only);
			goto out_drop;
		}
		json_object_object_add(reply, "sessions", list);
		json_object_object_add(reply, "served", json_object_new_int64((int64_t)d->served));
		json_object_object_add(reply, "requests_per_s", json_object_new_double(d->requests_per_s));
		break;
	}
	case GBX_MSG_SUBSCRIBE:
		c->subscribed = true;
		break;
	case GBX_MSG_RELOAD:
		if (!c->privileged) {
			send_error(c, c->h.id, GBX_ERR_DENIED, "reload is for root and the gearbox group (you are uid %u)",
			           (unsigned)c->uid);
			goto out_drop;
		}
		log_notice("reload requested by uid %u", (unsigned)c->uid);
		{
			char *why = NULL;
			bool ok = reload(d, &why) == 0;
			json_object_object_add(reply, "reloaded", json_object_new_boolean(ok));
			json_object_object_add(reply, "error", ok ? NULL : json_object_new_string(why ? why : "?"));
			free(why);
		}
		break;
	case GBX_MSG_PLATFORM: {
		const struct gov_platform *p = d->hosts.platform;
		struct json_object *cl = json_object_new_array();
		for (unsigned i = 0; i < p->nclusters; i++) {
			struct json_object *co = json_object_new_object();
			char *cpus = NULL;
			hwloc_bitmap_list_asprintf(&cpus, p->clusters[i].cpuset);
			json_object_object_add(co, "name", json_object_new_string(p->clusters[i].name));
			json_object_object_add(co, "cpus", json_object_new_string(cpus));
			json_object_object_add(co, "capacity", json_object_new_int((int)p->clusters[i].capacity));
			json_object_object_add(co, "cur_khz", json_object_new_int64((int64_t)p->clusters[i].cur_khz));
			json_object_array_add(cl, co);
			free(cpus);
		}
		json_object_object_add(reply, "dvfs", json_object_new_boolean(p->cpufreq));
		json_object_object_add(reply, "clusters", cl);
		json_object_object_add(reply, "opencl_devices", json_object_new_int((int)p->nopencl));
		json_object_object_add(reply, "energy_sources", json_object_new_int((int)p->nsources));
		break;
	}
	case GBX_MSG_PARETO:
		if (pareto_json(d, c, o, reply) != 0)
			goto out_drop;
		break;
	case GBX_MSG_CALIBRATE:
		/* answered when the model's worker has measured */
		submit_calibration(d, c, o);
		json_object_put(o);
		json_object_put(reply);
		return;
	default:
		send_error(c, c->h.id, GBX_ERR_UNKNOWN_TYPE, "unknown request type %u", type);
		goto out_drop;
	}
	json_object_put(o);
	send_json(c, (uint16_t)(type + 1), c->h.id, reply);
	return;
out_drop:
	json_object_put(o);
	json_object_put(reply);
}

/* ------------------------------------------------------------------------ */
/* Connections. */

static struct client *
find_client(struct daemon *d, uint64_t id)
{
	for (struct client *c = d->clients; c != NULL; c = c->next)
		if (c->id == id)
			return c;
	return NULL;
}

static void
client_close(struct daemon *d, struct client *c)
{
	struct client **pp = &d->clients;

	while (*pp != NULL && *pp != c)
		pp = &(*pp)->next;
	if (*pp == c)
		*pp = c->next;
	d->nclients--;
	/* Its queued requests go; one already running finishes and is dropped. */
	hosts_forget_client(&d->hosts, c->id);
	sd_event_source_disable_unref(c->io);
	/* a worker finishing one of its requests now finds it gone */
	pthread_mutex_lock(&c->channel->lock);
	c->channel->fd = -1;
	pthread_mutex_unlock(&c->channel->lock);
	reply_channel_unref(c->channel);
	if (c->closing) {
		/* Closing with unread input makes the peer's next read fail
		 * (ECONNRESET) before it sees our error reply: send FIN, and drop
		 * what is already queued. */
		char sink[4096];
		shutdown(c->fd, SHUT_WR);
		for (int i = 0; i < 256 && recv(c->fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
			;
	}
	close(c->fd);
	log_debug("client %llu closed", (unsigned long long)c->id);
	free(c->payload);
	free(c->out);
	free(c);
}

/* Read what is there; handle each complete frame. Returns -1 when the
 * connection must close. */
static int
client_read(struct daemon *d, struct client *c)
{
	for (;;) {
		ssize_t n;
		if (c->have < GBX_HEADER_SIZE) {
			n = recv(c->fd, c->header + c->have, GBX_HEADER_SIZE - c->have, MSG_DONTWAIT);
		} else {
			n = recv(c->fd, c->payload + (c->have - GBX_HEADER_SIZE), c->h.length - (c->have - GBX_HEADER_SIZE),
			         MSG_DONTWAIT);
		}
		if (n == 0)
			return -1;
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
		c->have += (size_t)n;
		if (c->have == GBX_HEADER_SIZE) {
			const char *bad = gbx_decode_header(c->header, &c->h);
			if (bad != NULL) {
				/* The framing itself is broken: say why, then close. */
				send_error(c, 0, GBX_ERR_BAD_FRAME, "%s", bad);
				c->closing = true;
				return -1;
			}
			free(c->payload);
			c->payload = malloc(c->h.length + 1);
			if (c->payload == NULL)
				return -1;
		}
		if (c->have >= GBX_HEADER_SIZE && c->have == GBX_HEADER_SIZE + c->h.length) {
			c->payload[c->h.length] = '\0';
			handle_request(d, c);
			c->have = 0;
			if (c->out_len > MAX_OUTBUF)
				return -1;
		}
	}
}

static int
on_client_io(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct client *c = userdata;
	struct daemon *d = c->daemon;

	(void)s;
	(void)fd;
	if ((revents & EPOLLOUT) && client_flush(c) != 0) {
		client_close(d, c);
		return 0;
	}
	if (c->closing) {
		if (c->out_len == 0)
			client_close(d, c);
		else
			update_events(c);
		return 0;
	}
	if ((revents & (EPOLLIN | EPOLLHUP | EPOLLRDHUP | EPOLLERR)) && client_read(d, c) != 0) {
		if (c->closing && c->out_len > 0) {
			shutdown(c->fd, SHUT_RD);
			update_events(c);
		} else {
			client_close(d, c);
		}
		return 0;
	}
	update_events(c);
	return 0;
}

static bool
in_gearbox_group(struct daemon *d, uid_t uid, gid_t gid)
{
	if (uid == 0 || (d->gearbox_gid != (gid_t)-1 && gid == d->gearbox_gid))
		return true;
	if (d->gearbox_gid != (gid_t)-1) {
		struct group *g = getgrgid(d->gearbox_gid);
		struct passwd *pw = getpwuid(uid);
		for (char **m = g ? g->gr_mem : NULL; m != NULL && *m != NULL && pw != NULL; m++)
			if (strcmp(*m, pw->pw_name) == 0)
				return true;
	}
	return false;
}

static int
on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	struct daemon *d = userdata;
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct client *c;
	int cfd;

	(void)s;
	(void)revents;
	while ((cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0) {
		if (d->nclients >= MAX_CLIENTS) {
			log_warning("refusing a connection: %d clients already", MAX_CLIENTS);
			close(cfd);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (c == NULL || (c->channel = reply_channel_new(cfd)) == NULL) {
			free(c);
			close(cfd);
			continue;
		}
		c->daemon = d;
		c->fd = cfd;
		c->id = ++d->next_client_id;
		c->uid = (uid_t)-1;
		if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
			c->uid = cred.uid;
			c->gid = cred.gid;
			c->privileged = in_gearbox_group(d, cred.uid, cred.gid);
		}
		if (sd_event_add_io(d->event, &c->io, cfd, EPOLLIN | EPOLLRDHUP, on_client_io, c) < 0) {
			close(cfd);
			reply_channel_unref(c->channel);
			free(c);
			continue;
		}
		c->next = d->clients;
		d->clients = c;
		d->nclients++;
		log_debug("client %llu connected (uid %u)", (unsigned long long)c->id, (unsigned)c->uid);
	}
	if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
		log_warning("accept: %s", strerror(errno));
	return 0;
}

/* Tell subscribers when a model's operating point (active groups) changes. */
static void
note_operating_point(struct daemon *d, struct model_host *m, const struct request *r)
{
	struct json_object *ev;

	if (m == NULL || r->groups == m->announced_groups)
		return;
	ev = json_object_new_object();
	json_object_object_add(ev, "event", json_object_new_string("operating-point"));
	json_object_object_add(ev, "model", json_object_new_string(dnn_model_name(m->model)));
	json_object_object_add(ev, "groups", json_object_new_int((int)r->groups));
	json_object_object_add(ev, "previous_groups", json_object_new_int((int)m->announced_groups));
	json_object_object_add(ev, "placement", json_object_new_string(r->placement));
	json_object_object_add(ev, "threads", json_object_new_int((int)r->threads));
	json_object_object_add(ev, "freq_khz", json_object_new_int64((int64_t)r->khz));
	json_object_object_add(ev, "deadline_us", json_object_new_int64((int64_t)r->budget.deadline_us));
	log_debug("%s: operating point g=%u -> g=%u", dnn_model_name(m->model), m->announced_groups, r->groups);
	m->announced_groups = r->groups;
	broadcast_event(d, ev);
}

/* The loop's part of a finished INFER: the session's statistics, the reply
 * when the worker could not send it, and the events. */
static void
finish_infer(struct daemon *d, struct client *c, struct request *r)
{
	struct model_host *m = NULL;
	double total_us = request_e2e_us(r);
	bool met = r->budget.deadline_us == 0 || total_us <= (double)r->budget.deadline_us;

	for (unsigned i = 0; i < c->nsessions; i++) {
		struct session *s = &c->sessions[i];
		if (s->id != r->session)
			continue;
		m = s->host;
		s->recent_us[s->requests % SESSION_WINDOW] = total_us;
		s->requests++;
		s->groups_sum += r->groups;
		if (r->budget.deadline_us) {
			s->deadline_total++;
			s->deadline_met += met;
		}
	}
	if (!r->replied && r->frame != NULL)
		send_frame(c, GBX_MSG_INFER_REPLY, r->msg_id, r->frame + GBX_HEADER_SIZE, r->frame_len - GBX_HEADER_SIZE);
	else if (!r->replied)
		send_error(c, r->msg_id, GBX_ERR_INTERNAL, "out of memory for the reply");
	else if (client_flush(c) == 0) /* the rest of a reply the worker began */
		update_events(c);
	note_operating_point(d, m, r);
	if (r->fallback[0] != '\0') {
		struct json_object *ev = json_object_new_object();
		json_object_object_add(ev, "event", json_object_new_string("placement-failed"));
		json_object_object_add(ev, "model", json_object_new_string(m ? dnn_model_name(m->model) : "?"));
		json_object_object_add(ev, "placement", json_object_new_string(r->failed_place));
		json_object_object_add(ev, "now", json_object_new_string(r->placement));
		json_object_object_add(ev, "reason", json_object_new_string(r->fallback));
		broadcast_event(d, ev);
	}
	if (!met || !r->feasible) {
		struct json_object *ev = json_object_new_object();
		json_object_object_add(ev, "event", json_object_new_string("budget-violation"));
		json_object_object_add(ev, "model", json_object_new_string(m ? dnn_model_name(m->model) : "?"));
		json_object_object_add(ev, "groups", json_object_new_int((int)r->groups));
		json_object_object_add(ev, "latency_us", json_object_new_double(total_us));
		json_object_object_add(ev, "deadline_us", json_object_new_int64((int64_t)r->budget.deadline_us));
		json_object_object_add(ev, "reason", json_object_new_string(r->feasible ? "deadline missed" : r->reason));
		broadcast_event(d, ev);
	}
}

static void
send_calibration_reply(struct client *c, struct request *r)
{
	struct json_object *o;

	if (r->calibrated == 0) {
		send_error(c, r->msg_id, GBX_ERR_INTERNAL, "calibration of %s failed: %s", r->placement, r->reason);
		return;
	}
	o = json_object_new_object();
	json_object_object_add(o, "model", json_object_new_string(r->placement));
	json_object_object_add(o, "measured", json_object_new_int((int)r->calibrated));
	json_object_object_add(o, "seconds", json_object_new_double(r->latency_us / 1e6));
	send_json(c, GBX_MSG_CALIBRATE_REPLY, r->msg_id, o);
}

/* Statistics, events and anything left to send for finished requests. Run
 * when a worker wakes the loop for it, after every loop iteration (a worker
 * that sent its reply itself does not wake the loop), and before any message
 * but INFER is handled, so that STATUS and STATS count every reply sent. */
static void
drain_completions(struct daemon *d)
{
	struct request *r = hosts_take_done(&d->hosts);

	while (r != NULL) {
		struct request *next = r->next;
		struct client *c = find_client(d, r->client_id);
		if (r->kind == REQUEST_CALIBRATE) {
			if (c != NULL && !c->closing)
				send_calibration_reply(c, r);
			request_free(r);
			r = next;
			continue;
		}
		d->served++;
		if (r->budget.deadline_us) {
			d->deadline_total++;
			d->deadline_met += request_e2e_us(r) <= (double)r->budget.deadline_us;
		}
		/* A client that went away loses only its own request. */
		if (c != NULL && !c->closing && r->failed[0] != '\0')
			send_error(c, r->msg_id, GBX_ERR_INTERNAL, "%s", r->failed);
		else if (c != NULL && !c->closing)
			finish_infer(d, c, r);
		request_free(r);
		r = next;
	}
}

static int
on_completion(sd_event_source *s, int fd, uint32_t revents, void *userdata)
{
	(void)s;
	(void)fd;
	(void)revents;
	hosts_clear_signal(&((struct daemon *)userdata)->hosts);
	drain_completions(userdata);
	return 0;
}

static int
after_dispatch(sd_event_source *s, void *userdata)
{
	(void)s;
	drain_completions(userdata);
	return 0;
}

static void
notify_status(struct daemon *d)
{
	char line[512];
	size_t n = 0;

	n += (size_t)snprintf(line + n, sizeof(line) - n, "STATUS=%u model%s", d->hosts.nmodels, d->hosts.nmodels == 1 ? "" : "s");
	for (unsigned i = 0; i < d->hosts.nmodels && n < sizeof(line) - 64; i++)
		n += (size_t)snprintf(line + n, sizeof(line) - n, "; %s on %s g=%u", dnn_model_name(d->hosts.models[i].model),
		                      d->hosts.models[i].placement, d->hosts.models[i].last_groups);
	if (n < sizeof(line) - 64)
		snprintf(line + n, sizeof(line) - n, "; %u clients, %.1f requests/s, %llu served, deadline hit rate %s%.1f%%",
		         d->nclients, d->requests_per_s, (unsigned long long)d->served, d->deadline_total ? "" : "n/a ",
		         d->deadline_total ? 100.0 * (double)d->deadline_met / (double)d->deadline_total : 0.0);
	sd_notify(0, line);
}

static int
on_status_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
	struct daemon *d = userdata;

	d->requests_per_s = (double)(d->served - d->served_at_last_status) / 5.0;
	d->served_at_last_status = d->served;
	notify_status(d);
	sd_event_source_set_time(s, usec + 5 * 1000000ull);
	return 0;
}

static bool
same_models(const struct config *a, const struct config *b)
{
	if (a->nmodels != b->nmodels)
		return false;
	for (unsigned i = 0; i < a->nmodels; i++)
		if (strcmp(a->models[i], b->models[i]) != 0)
			return false;
	return true;
}

static const char *
policy_etc_dir(const struct daemon *d)
{
	return d->config.policy_dir ? d->config.policy_dir : POL_DEFAULT_ETCDIR;
}

/* Re-read the policy files; a bad one keeps the old set (and names the
 * file and line). Queued requests carry their own copy of their policy. */
static int
reload_policies(struct daemon *d, char **cause)
{
	struct pol_set next;

	if (pol_set_load(&next, pol_shipped_dir(), policy_etc_dir(d), cause) != 0) {
		log_error("policies not reloaded, keeping the running ones: %s", *cause);
		return -1;
	}
	pol_set_clear(&d->policies);
	d->policies = next;
	log_notice("policies reloaded: %u", d->policies.n);
	return 0;
}

/* SIGHUP: re-read the configuration. A bad file is refused with its reason
 * and the running configuration stays; serving never stops. */
static int
reload(struct daemon *d, char **policy_error)
{
	struct config next;
	char *cause = NULL;
	int rc;

	sd_notify(0, "RELOADING=1");
	if (d->config_path == NULL) {
		log_notice("reload: no configuration file to re-read; %u model%s still served", d->hosts.nmodels,
		           d->hosts.nmodels == 1 ? "" : "s");
	} else {
		config_defaults(&next);
		if (config_load(&next, d->config_path, &cause) != 0) {
			log_error("reload refused, keeping the running configuration: %s", cause);
			config_free(&next);
		} else {
			if ((next.socket && (!d->config.socket || strcmp(next.socket, d->config.socket))) ||
			    next.threads != d->config.threads || (next.nmodels && !same_models(&next, &d->config)))
				log_warning("reload: socket, models or threads changed in %s; they take effect at the next start",
				            d->config_path);
			log_notice("reloaded %s (margin %.2f)", d->config_path, next.margin >= 0 ? next.margin : 0.0);
			config_free(&d->config);
			d->config = next;
		}
		free(cause);
	}
	/* the policies, from the (new) override folder; then the default name */
	rc = reload_policies(d, policy_error);
	if (d->config.policy && strcmp(d->config.policy, d->default_policy) != 0) {
		if (pol_set_find(&d->policies, d->config.policy) == NULL)
			log_error("reload: policy '%s' does not exist; keeping '%s'", d->config.policy, d->default_policy);
		else
			snprintf(d->default_policy, sizeof(d->default_policy), "%s", d->config.policy);
	}
	sd_notify(0, "READY=1");
	notify_status(d);
	return rc;
}

static int
on_reload(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	char *cause = NULL;

	(void)s;
	(void)si;
	(void)reload(userdata, &cause);
	free(cause);
	return 0;
}

static int
on_stop(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata)
{
	(void)userdata;
	log_notice("stopping on signal %u", si->ssi_signo);
	sd_notify(0, "STOPPING=1");
	return sd_event_exit(sd_event_source_get_event(s), 0);
}

/* ------------------------------------------------------------------------ */
/* The socket: from systemd when socket-activated, else bound here with mode
 * 0660 and group gearbox (when that group exists) so its members may connect. */

static int
open_socket(struct daemon *d)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n = sd_listen_fds(1), fd;

	if (n > 1) {
		log_error("systemd passed %d sockets; gearboxd takes one", n);
		return -1;
	}
	if (n == 1) {
		d->listen_fd = SD_LISTEN_FDS_START;
		if (sd_is_socket_unix(d->listen_fd, SOCK_STREAM, 1, NULL, 0) <= 0) {
			log_error("the socket systemd passed is not a listening Unix stream socket");
			return -1;
		}
		fcntl(d->listen_fd, F_SETFL, fcntl(d->listen_fd, F_GETFL) | O_NONBLOCK);
		log_info("listening on the socket passed by systemd");
		return 0;
	}
	if (strlen(d->socket_path) >= sizeof(sa.sun_path)) {
		log_error("socket path too long: %s", d->socket_path);
		return -1;
	}
	strcpy(sa.sun_path, d->socket_path);
	{
		/* Create the parent directory (/run/gearbox) if needed. */
		char dir[sizeof(sa.sun_path)], *slash;
		strcpy(dir, d->socket_path);
		if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
			*slash = '\0';
			mkdir(dir, 0755);
		}
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0) {
		log_error("socket: %s", strerror(errno));
		return -1;
	}
	/* A stale socket from a crash: connect fails, so it can go. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
		log_error("%s: another gearboxd is already listening", d->socket_path);
		close(fd);
		return -1;
	}
	unlink(d->socket_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(fd, 256) != 0) {
		log_error("%s: %s", d->socket_path, strerror(errno));
		close(fd);
		return -1;
	}
	if (d->gearbox_gid != (gid_t)-1 && chown(d->socket_path, (uid_t)-1, d->gearbox_gid) != 0)
		log_warning("%s: cannot give it to group gearbox: %s", d->socket_path, strerror(errno));
	chmod(d->socket_path, 0660);
	d->listen_fd = fd;
	d->own_socket = true;
	log_info("listening on %s", d->socket_path);
	return 0;
}

static void
usage(FILE *out)
{
	fputs("Usage: gearboxd [OPTIONS]\n"
	      "\n"
	      "Serves budgeted inference on dynamic DNNs over a Unix socket.\n"
	      "\n"
	      "  -f, --foreground      stay in the foreground (gearboxd never forks; kept for scripts)\n"
	      "  -s, --socket PATH     listen here (default " GBX_DEFAULT_SOCKET "; ignored when socket-activated)\n"
	      "  -m, --model FILE      host this model (repeatable; default: every *.safetensors in\n"
	      "                        " GEARBOX_DATADIR "/models)\n"
	      "  -c, --config FILE     configuration file (default " GEARBOXD_CONFIG " when it exists)\n"
	      "  -p, --policy NAME     the policy of sessions that name none (default: default; see\n"
	      "                        gearbox.policy(5))\n"
	      "  -v, --verbose         debug logging\n"
	      "  -h, --help            this help\n"
	      "  -V, --version         the version\n",
	      out);
}

static int
run(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "foreground", no_argument, NULL, 'f' }, { "socket", required_argument, NULL, 's' },
		{ "model", required_argument, NULL, 'm' }, { "config", required_argument, NULL, 'c' },
		{ "policy", required_argument, NULL, 'p' }, { "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },        { "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct daemon d = { .listen_fd = -1, .gearbox_gid = (gid_t)-1 };
	char **paths = NULL, *cause = NULL;
	const char *socket_arg = NULL, *policy_arg = NULL;
	unsigned npaths = 0;
	sd_event_source *accept_src = NULL, *done_src = NULL, *post_src = NULL, *timer = NULL;
	struct group *grp;
	sigset_t mask;
	uint64_t now;
	int ch, ret = 1;

	/* Block the signals sd-event handles before any thread starts, so that
	 * every thread inherits the mask and none takes a default action. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);
	log_init(LOG_INFO);
	while ((ch = getopt_long(argc, argv, "fs:m:c:p:vhV", longopts, NULL)) != -1) {
		switch (ch) {
		case 'f': break;
		case 's': socket_arg = optarg; break;
		case 'm':
			paths = realloc(paths, (npaths + 1) * sizeof(char *));
			paths[npaths++] = strdup(optarg);
			break;
		case 'c': d.config_path = optarg; break;
		case 'p': policy_arg = optarg; break;
		case 'v': log_init(LOG_DEBUG); break;
		case 'h': usage(stdout); return 0;
		case 'V': printf("gearboxd %s\n", PACKAGE_VERSION); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind < argc) {
		log_error("unexpected argument '%s' (see gearboxd --help)", argv[optind]);
		return 2;
	}
	config_defaults(&d.config);
	if (d.config_path == NULL && access(GEARBOXD_CONFIG, F_OK) == 0)
		d.config_path = GEARBOXD_CONFIG;
	if (d.config_path != NULL && config_load(&d.config, d.config_path, &cause) != 0) {
		log_error("%s", cause);
		free(cause);
		config_free(&d.config);
		return 1;
	}
	/* Command-line models and socket win over the file. */
	if (npaths > 0) {
		for (unsigned i = 0; i < d.config.nmodels; i++)
			free(d.config.models[i]);
		d.config.nmodels = 0;
		for (unsigned i = 0; i < npaths; i++)
			config_add_model(&d.config, paths[i]);
	} else if (d.config.nmodels == 0) {
		config_add_folder(&d.config, GEARBOX_DATADIR "/models", NULL);
	}
	if (d.config.nmodels == 0) {
		log_error("no model: give --model FILE, 'models =' in the configuration, or install one in %s/models",
		          GEARBOX_DATADIR);
		config_free(&d.config);
		return 1;
	}
	d.socket_path = (char *)(socket_arg ? socket_arg : d.config.socket ? d.config.socket : GBX_DEFAULT_SOCKET);
	if ((grp = getgrnam("gearbox")) != NULL)
		d.gearbox_gid = grp->gr_gid;
	d.started = time(NULL);

	if (pol_set_load(&d.policies, pol_shipped_dir(), policy_etc_dir(&d), &cause) != 0) {
		log_error("%s", cause);
		goto out;
	}
	snprintf(d.default_policy, sizeof(d.default_policy), "%s",
	         policy_arg ? policy_arg : d.config.policy ? d.config.policy : "default");
	if (pol_set_find(&d.policies, d.default_policy) == NULL) {
		char names[512];
		policy_names(&d, names, sizeof(names));
		log_error("no policy '%s' (have: %s; shipped in %s, yours in %s)", d.default_policy, names,
		          pol_shipped_dir(), policy_etc_dir(&d));
		goto out;
	}
	{
		struct pol_params calibration;
		pol_policy_resolve(pol_set_find(&d.policies, d.default_policy), NULL, &calibration);
		if (hosts_open(&d.hosts, d.config.models, d.config.nmodels, d.config.threads, d.config.opencl, &calibration,
		               &cause) != 0) {
			log_error("%s", cause ? cause : "cannot open the models");
			goto out;
		}
	}
	if (open_socket(&d) != 0)
		goto out;

	if (sd_event_default(&d.event) < 0 ||
	    sd_event_add_io(d.event, &accept_src, d.listen_fd, EPOLLIN, on_accept, &d) < 0 ||
	    sd_event_add_io(d.event, &done_src, d.hosts.completion_fd, EPOLLIN, on_completion, &d) < 0 ||
	    sd_event_add_post(d.event, &post_src, after_dispatch, &d) < 0 ||
	    sd_event_source_set_enabled(post_src, SD_EVENT_ON) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGTERM, on_stop, &d) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGINT, on_stop, &d) < 0 ||
	    sd_event_add_signal(d.event, NULL, SIGHUP, on_reload, &d) < 0 ||
	    sd_event_now(d.event, CLOCK_MONOTONIC, &now) < 0 ||
	    sd_event_add_time(d.event, &timer, CLOCK_MONOTONIC, now + 5 * 1000000ull, 0, on_status_timer, &d) < 0) {
		log_error("cannot set up the event loop");
		goto out;
	}
	sd_event_source_set_enabled(timer, SD_EVENT_ON);
	sd_event_set_watchdog(d.event, true);
	sd_notify(0, "READY=1");
	notify_status(&d);
	log_notice("ready: %u model%s", d.hosts.nmodels, d.hosts.nmodels == 1 ? "" : "s");
	ret = sd_event_loop(d.event) < 0 ? 1 : 0;
out:
	while (d.clients != NULL)
		client_close(&d, d.clients);
	sd_event_source_disable_unref(accept_src);
	sd_event_source_disable_unref(done_src);
	sd_event_source_disable_unref(post_src);
	sd_event_source_disable_unref(timer);
	sd_event_unref(d.event);
	hosts_close(&d.hosts);
	pol_set_clear(&d.policies);
	if (d.own_socket) {
		close(d.listen_fd);
		unlink(d.socket_path);
	}
	config_free(&d.config);
	for (unsigned i = 0; i < npaths; i++)
		free(paths[i]);
	free(paths);
	free(cause);
	return ret;
}

int
main(int argc, char **argv)
{
	/* OpenBLAS (pthread build) starts a thread pool in a library constructor,
	 * before main, with signals unblocked: SIGTERM could land there and kill
	 * us instead of reaching the event loop. gearbox runs BLAS on its own
	 * pinned threads and needs none of those, so ask for none and start
	 * again (the systemd unit sets the variable, so this is for hand runs). */
	if (getenv("OPENBLAS_NUM_THREADS") == NULL) {
		setenv("OPENBLAS_NUM_THREADS", "1", 1);
		if (strchr(argv[0], '/') != NULL)
			execv(argv[0], argv);
		else
			execvp(argv[0], argv);
		fprintf(stderr, "gearboxd: cannot restart with OPENBLAS_NUM_THREADS=1 (%s); signals may be lost\n",
		        strerror(errno));
	}
	return run(argc, argv);
}
