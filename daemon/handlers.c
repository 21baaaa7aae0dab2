/* SPDX-License-Identifier: MIT */
/* One handler per message type, in one table with the privilege each
 * needs. Run by the worker that owns the connection. INFER is parsed
 * outside daemon.lock and admitted under it; every other handler runs with
 * daemon.lock held (they are rare and short), except RELOAD and CALIBRATE,
 * which take it themselves. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "daemon/daemon.h"
#include "daemon/log.h"

/* ---- what needs the daemon: the fields themselves are decoded in decode.c ---- */

static void
refused(struct conn *c, const struct decode_error *err)
{
	send_error(c, c->h.id, err->code, "%s", err->why);
}

/* The session a request names, on this connection (own = true), or any
 * session of the same user (or any at all for root and the gearbox group). */
static struct session *
named_session(struct daemon *d, struct conn *c, const struct decoded *q, bool own)
{
	uint64_t id = q->session;
	struct session *s;

	if ((s = session_find(&d->sessions, (uint32_t)id)) == NULL || (own && s->owner != c)) {
		send_error(c, c->h.id, GBX_ERR_NO_SESSION, own ? "no session %llu on this connection (open one first)"
		                                               : "no session %llu", (unsigned long long)id);
		return NULL;
	}
	if (s->owner != c && s->uid != c->uid && !c->admin) {
		send_error(c, c->h.id, GBX_ERR_DENIED, "session %llu belongs to another user", (unsigned long long)id);
		return NULL;
	}
	return s;
}

void
resolve_policy(struct daemon *d, const struct host *h, const char *name, struct pol_params *out)
{
	const struct pol_policy *pol = pol_set_find(&d->policies, name);

	if (pol == NULL && (pol = pol_set_find(&d->policies, d->default_policy)) == NULL)
		pol = pol_set_find(&d->policies, "default");
	pol_policy_resolve(pol, dnn_model_name(h->model), out);
	if (d->config.margin >= 0)
		out->margin = d->config.margin;
	if (h->threads && (out->max_threads == 0 || out->max_threads > h->threads))
		out->max_threads = h->threads;
}

void
policy_names(const struct daemon *d, char *buf, size_t size)
{
	size_t n = 0;

	buf[0] = '\0';
	for (unsigned i = 0; i < d->policies.n && n < size; i++)
		n += (size_t)snprintf(buf + n, size - n, "%s%s", i ? ", " : "", d->policies.policies[i].params.name);
}

/* The "policy" a request names (the daemon's default when none); -1 after
 * an error reply naming the policies there are. */
static int
requested_policy(struct daemon *d, struct conn *c, const struct decoded *q, char name[POL_NAME])
{
	char names[512];

	snprintf(name, POL_NAME, "%s", d->default_policy);
	if (q->policy == NULL)
		return 0;
	if (!q->policy_is_string || pol_set_find(&d->policies, q->policy) == NULL) {
		policy_names(d, names, sizeof(names));
		send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "no policy '%s' in %s or %s (have: %s)",
		           q->policy, daemon_policy_dir(d), pol_shipped_dir(), names);
		return -1;
	}
	snprintf(name, POL_NAME, "%s", q->policy);
	return 0;
}

/* The model a request names, or the only one. NULL after an error reply. */
static struct host *
requested_model(struct daemon *d, struct conn *c, const struct decoded *q)
{
	struct host *h;

	if (q->model == NULL) {
		if (d->nhosts == 1)
			return &d->hosts[0];
		send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "name a 'model' (%u models are hosted)", d->nhosts);
		return NULL;
	}
	if (!q->model_is_string || (h = serve_find_host(d, q->model)) == NULL) {
		send_error(c, c->h.id, GBX_ERR_NO_MODEL, "no model '%s' (see gearboxctl models)", q->model);
		return NULL;
	}
	return h;
}

/* ---- INFER ----------------------------------------------------------------- */

/* "sent_ns" (the client's CLOCK_MONOTONIC when it sent the request) and
 * "return_us" (how long its previous reply took to reach it). Values that
 * cannot be true (another clock, e.g. a client in another time namespace)
 * are ignored. */
struct timing {
	uint64_t origin_ns;
	double return_us;       /* < 0: not given */
};

static struct timing
request_timing(const struct decoded *q, uint64_t now)
{
	struct timing t = { 0, -1 };

	if (q->has_sent_ns) {
		uint64_t sent = q->sent_ns;
		if (sent > 0 && sent <= now && now - sent < 10000000000ull)
			t.origin_ns = sent;
	}
	if (q->has_return_us) {
		double us = q->return_us;
		if (us >= 0 && us < 1e6)
			t.return_us = us;
	}
	return t;
}

/* The input tensor of an INFER: float32 values, or uint8 pixels the model
 * normalises. NULL after an error reply. */
static float *
infer_input(struct conn *c, const struct dnn_model *m, const unsigned char *data, size_t have, bool pixels)
{
	size_t in_n = dnn_model_input_size(m);
	float *in;

	if (have != in_n * (pixels ? 1 : sizeof(float))) {
		send_error(c, c->h.id, GBX_ERR_BAD_INPUT, "input has %zu bytes; %s expects %zu %s (%zu bytes)", have,
		           dnn_model_name(m), in_n, pixels ? "uint8 pixels" : "float32 values", in_n * (pixels ? 1 : sizeof(float)));
		return NULL;
	}
	if ((in = malloc(in_n * sizeof(float))) == NULL) {
		send_error(c, c->h.id, GBX_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	if (pixels) {
		dnn_model_normalize_u8(m, data, in);
		return in;
	}
	memcpy(in, data, in_n * sizeof(float));
	for (size_t i = 0; i < in_n; i++)
		if (!isfinite(in[i])) {
			free(in);
			send_error(c, c->h.id, GBX_ERR_BAD_INPUT, "input value %zu is not finite", i);
			return NULL;
		}
	return in;
}

/* Fill a request from its session (daemon.lock held). */
static void
request_from_session(struct daemon *d, struct request *r, struct session *s, struct conn *c, struct timing t)
{
	r->conn = c;
	conn_ref(c);
	r->host = s->host;
	r->msg_id = c->h.id;
	r->session = s->id;
	r->budget = s->budget;
	resolve_policy(d, s->host, s->policy, &r->params);
	plan_room(d, s, &r->params);
	r->received_ns = c->frame_ns;
	r->origin_ns = t.origin_ns ? t.origin_ns : c->frame_ns;
	if (t.return_us >= 0)
		return_path_note(&c->returns, t.return_us);
	r->return_us = return_path_slow(&c->returns);
	r->return_typical_us = return_path_typical(&c->returns);
	if (t.origin_ns) {
		arrival_note(&s->arrival, t.origin_ns);
		/* a rate learnt, or moved by half: the plan assumed another (smaller
		 * drifts wait for the periodic plan) */
		if (s->budget.rate_hz == 0 && arrival_is_steady(&s->arrival) &&
		    fabs(1e9 / s->arrival.period_ns - s->planned_rate) > 0.5 * s->planned_rate)
			plan_request(d, "a session's request rate was learnt or moved");
	}
}

static void
handle_infer(struct daemon *d, struct conn *c)
{
	struct decode_error err;
	struct decoded q;
	struct session *s;
	struct request *r;
	struct timing t;
	char why[200];

	if (decode_request(GBX_MSG_INFER, c->payload, c->h.length, &q, &err) != 0)
		return refused(c, &err);
	t = request_timing(&q, c->frame_ns);
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		decoded_clear(&q);
		return (void)send_error(c, c->h.id, GBX_ERR_INTERNAL, "out of memory");
	}
	pthread_mutex_lock(&d->lock);
	if ((s = named_session(d, c, &q, true)) != NULL)
		request_from_session(d, r, s, c, t);
	pthread_mutex_unlock(&d->lock);
	if (s == NULL) {
		decoded_clear(&q);
		free(r);
		return;
	}
	/* the copy of the input and the scores buffer: outside the lock */
	r->input = infer_input(c, r->host->model, q.input, q.input_len, q.pixels);
	decoded_clear(&q); /* the input was in the payload, not in q */
	if (r->input == NULL ||
	    (r->output = malloc(dnn_model_output_size(r->host->model) * sizeof(float))) == NULL) {
		if (r->input != NULL)
			send_error(c, c->h.id, GBX_ERR_INTERNAL, "out of memory");
		pthread_mutex_lock(&d->lock);
		request_free(r);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	pthread_mutex_lock(&d->lock);
	if (serve_admit(d, r, why, sizeof(why)) != 0) {
		request_free(r);
		pthread_mutex_unlock(&d->lock);
		send_error(c, c->h.id, GBX_ERR_BUSY, "%s: try again later", why);
		return;
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- the others (daemon.lock held) ------------------------------------------ */

static struct json_object *
model_json(const struct host *h)
{
	struct json_object *o = json_object_new_object(), *shape = json_object_new_array();
	struct json_object *acc = json_object_new_array(), *labels = json_object_new_array();
	unsigned c, hh, w;

	dnn_model_input_shape(h->model, &c, &hh, &w);
	json_object_array_add(shape, json_object_new_int((int)c));
	json_object_array_add(shape, json_object_new_int((int)hh));
	json_object_array_add(shape, json_object_new_int((int)w));
	for (unsigned g = 1; g <= dnn_model_groups(h->model); g++) {
		double a = dnn_model_accuracy(h->model, g);
		json_object_array_add(acc, a >= 0 ? json_object_new_double(a) : NULL);
	}
	for (unsigned i = 0; i < dnn_model_classes(h->model); i++)
		json_object_array_add(labels, json_object_new_string(dnn_model_label(h->model, i)));
	json_object_object_add(o, "name", json_object_new_string(dnn_model_name(h->model)));
	json_object_object_add(o, "path", json_object_new_string(h->path));
	json_object_object_add(o, GBX_KEY_GROUPS, json_object_new_int((int)dnn_model_groups(h->model)));
	json_object_object_add(o, "input_shape", shape);
	json_object_object_add(o, "classes", json_object_new_int((int)dnn_model_classes(h->model)));
	json_object_object_add(o, "labels", labels);
	json_object_object_add(o, "accuracy", acc);
	json_object_object_add(o, GBX_KEY_PLACEMENT, json_object_new_string(h->placement));
	return o;
}

static int
on_hello(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	(void)d, (void)c, (void)q;
	json_object_object_add(reply, "server", json_object_new_string("gearboxd"));
	json_object_object_add(reply, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(reply, "protocol", json_object_new_int(GBX_PROTOCOL_VERSION));
	return 0;
}

static int
on_models(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	struct json_object *list = json_object_new_array();

	(void)c, (void)q;
	for (unsigned i = 0; i < d->nhosts; i++)
		json_object_array_add(list, model_json(&d->hosts[i]));
	json_object_object_add(reply, "models", list);
	return 0;
}

static int
on_open(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	char policy[POL_NAME], *cause = NULL;
	struct host *h;
	struct session *s;

	if ((h = requested_model(d, c, q)) == NULL || requested_policy(d, c, q, policy) != 0)
		return -1;
	if (session_count_owned(&d->sessions, c) >= MAX_SESSIONS_PER_CLIENT)
		return send_error(c, c->h.id, GBX_ERR_BAD_REQUEST, "at most %d sessions per connection",
		                  MAX_SESSIONS_PER_CLIENT), -1;
	if ((s = session_open(&d->sessions, c, h, &cause)) == NULL) {
		send_error(c, c->h.id, GBX_ERR_INTERNAL, "%s", cause);
		free(cause);
		return -1;
	}
	s->budget = q->budget;
	s->priority = (int)q->priority;
	snprintf(s->policy, sizeof(s->policy), "%s", policy);
	json_object_object_add(reply, GBX_KEY_SESSION, json_object_new_int64(s->id));
	json_object_object_add(reply, GBX_KEY_MODEL, json_object_new_string(dnn_model_name(h->model)));
	json_object_object_add(reply, GBX_KEY_POLICY, json_object_new_string(s->policy));
	plan_request(d, "a session opened");
	return 0;
}

static int
on_budget(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	struct session *s = named_session(d, c, q, false);

	if (s == NULL)
		return -1;
	s->budget = q->budget;
	json_object_object_add(reply, GBX_KEY_SESSION, json_object_new_int64(s->id));
	plan_request(d, "a budget changed");
	return 0;
}

static int
on_close(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	struct session *s = named_session(d, c, q, true);

	if (s == NULL)
		return -1;
	json_object_object_add(reply, GBX_KEY_SESSION, json_object_new_int64(s->id));
	pol_votes_drop(&d->votes, s->id);
	session_close(&d->sessions, s);
	plan_request(d, "a session closed");
	return 0;
}

static int
on_plan(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	struct json_object *plan = plan_json(d);

	(void)c, (void)q;
	json_object_object_foreach(plan, key, val) json_object_object_add(reply, key, json_object_get(val));
	json_object_put(plan);
	return 0;
}

static int
on_status(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	struct json_object *status = stats_status(d, c);

	(void)c, (void)q;
	json_object_object_foreach(status, key, val) json_object_object_add(reply, key, json_object_get(val));
	json_object_put(status);
	return 0;
}

static int
on_stats(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	struct json_object *list;
	uint64_t only = q->session;

	if (only != 0 && session_find(&d->sessions, (uint32_t)only) == NULL)
		return send_error(c, c->h.id, GBX_ERR_NO_SESSION, "no session %llu", (unsigned long long)only), -1;
	if (only != 0 && !stats_may_see(c, session_find(&d->sessions, (uint32_t)only)))
		return send_error(c, c->h.id, GBX_ERR_DENIED, "session %llu belongs to another user", (unsigned long long)only),
		       -1;
	list = json_object_new_array();
	for (unsigned i = 0; i < d->sessions.n; i++)
		if ((only == 0 || d->sessions.v[i]->id == only) && stats_may_see(c, d->sessions.v[i]))
			json_object_array_add(list, stats_session(d->sessions.v[i]));
	json_object_object_add(reply, "sessions", list);
	json_object_object_add(reply, "served", json_object_new_int64((int64_t)d->served));
	json_object_object_add(reply, "requests_per_s", json_object_new_double(d->requests_per_s));
	return 0;
}

static int
on_subscribe(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	(void)d, (void)q, (void)reply;
	c->subscribed = true;
	return 0;
}

static int
on_platform(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	const struct gov_platform *p = d->platform;
	struct json_object *cl = json_object_new_array(), *places = json_object_new_array();

	(void)c, (void)q;
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
	for (unsigned i = 0; i < d->nplaces; i++)
		json_object_array_add(places, json_object_new_string(d->places[i].name));
	json_object_object_add(reply, "dvfs", json_object_new_boolean(p->cpufreq));
	json_object_object_add(reply, "clusters", cl);
	json_object_object_add(reply, "placements", places);
	json_object_object_add(reply, "opencl_devices", json_object_new_int((int)p->nopencl));
	json_object_object_add(reply, "energy_sources", json_object_new_int((int)p->nsources));
	return 0;
}

static struct json_object *
point_json(const struct daemon *d, const struct pol_point *pt)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, GBX_KEY_GROUPS, json_object_new_int((int)pt->groups));
	json_object_object_add(o, GBX_KEY_PLACEMENT, json_object_new_string(d->places[pt->place].name));
	json_object_object_add(o, GBX_KEY_THREADS, json_object_new_int((int)pt->threads));
	json_object_object_add(o, GBX_KEY_FREQ_KHZ, json_object_new_int64((int64_t)pt->khz));
	json_object_object_add(o, "accuracy", pt->accuracy >= 0 ? json_object_new_double(pt->accuracy) : NULL);
	json_object_object_add(o, GBX_KEY_LATENCY_US, json_object_new_double(pt->latency_us));
	json_object_object_add(o, GBX_KEY_ENERGY_UJ, json_object_new_double(pt->energy_uj));
	json_object_object_add(o, "power_w", json_object_new_double(pt->power_w));
	return o;
}

/* PARETO: the front of a model's operating points under a policy, with the
 * interference the daemon measures now. */
static int
on_pareto(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply)
{
	struct host *h = requested_model(d, c, q);
	struct pol_point *points = NULL, *front;
	struct pol_params params;
	struct json_object *list;
	char policy[POL_NAME];
	unsigned n, k;

	if (h == NULL || requested_policy(d, c, q, policy) != 0)
		return -1;
	resolve_policy(d, h, policy, &params);
	n = host_table(h, &params, &points);
	if ((front = calloc(n ? n : 1, sizeof(*front))) == NULL) {
		free(points);
		return send_error(c, c->h.id, GBX_ERR_INTERNAL, "out of memory"), -1;
	}
	k = pol_pareto(points, n, front);
	list = json_object_new_array();
	for (unsigned i = 0; i < (q->all ? n : k); i++)
		json_object_array_add(list, point_json(d, q->all ? &points[i] : &front[i]));
	json_object_object_add(reply, GBX_KEY_MODEL, json_object_new_string(dnn_model_name(h->model)));
	json_object_object_add(reply, GBX_KEY_POLICY, json_object_new_string(params.name));
	json_object_object_add(reply, "points", json_object_new_int((int)n));
	json_object_object_add(reply, "simulated", json_object_new_boolean(false));
	json_object_object_add(reply, "front_points", json_object_new_int((int)k));
	json_object_object_add(reply, q->all ? GBX_KEY_ALL : GBX_KEY_FRONT, list);
	free(points);
	free(front);
	return 0;
}

/* ---- handlers that take daemon.lock themselves --------------------------------- */

static void
on_reload(struct daemon *d, struct conn *c, const struct decoded *q)
{
	struct json_object *reply = json_object_new_object(), *loading = json_object_new_array();
	char *why = NULL;
	bool ok;

	(void)q;
	log_notice("reload requested by uid %u", (unsigned)c->uid);
	ok = daemon_reload(d, &why, loading) == 0;
	json_object_object_add(reply, "reloaded", json_object_new_boolean(ok));
	json_object_object_add(reply, GBX_KEY_ERROR, ok ? NULL : json_object_new_string(why ? why : "?"));
	json_object_object_add(reply, "loading", loading);
	free(why);
	send_json(c, GBX_MSG_RELOAD_REPLY, c->h.id, reply);
}

/* Answered when the measuring thread is done. */
static void
on_calibrate(struct daemon *d, struct conn *c, const struct decoded *q)
{
	struct request *r;
	struct host *h;
	char *cause = NULL;

	pthread_mutex_lock(&d->lock);
	if ((h = requested_model(d, c, q)) == NULL) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	if ((r = calloc(1, sizeof(*r))) == NULL) {
		pthread_mutex_unlock(&d->lock);
		send_error(c, c->h.id, GBX_ERR_INTERNAL, "out of memory");
		return;
	}
	r->conn = c;
	conn_ref(c);
	r->host = h;
	r->msg_id = c->h.id;
	resolve_policy(d, h, d->default_policy, &r->params);
	if (serve_calibrate(d, r, &cause) != 0) {
		request_free(r);
		pthread_mutex_unlock(&d->lock);
		send_error(c, c->h.id, GBX_ERR_BUSY, "%s", cause);
		free(cause);
		return;
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- the table ------------------------------------------------------------- */

typedef int locked_handler(struct daemon *d, struct conn *c, const struct decoded *q, struct json_object *reply);
typedef void own_handler(struct daemon *d, struct conn *c, const struct decoded *q);

static const struct {
	uint16_t type;
	const char *name;
	bool privileged;        /* administrators only (root, admin_group) */
	locked_handler *locked; /* run with daemon.lock held; the reply is type + 1 */
	own_handler *own;       /* takes the lock itself and replies itself */
} handlers[] = {
	{ GBX_MSG_HELLO, "hello", false, on_hello, NULL },
	{ GBX_MSG_MODELS, "models", false, on_models, NULL },
	{ GBX_MSG_OPEN, "open", false, on_open, NULL },
	{ GBX_MSG_BUDGET, "budget", false, on_budget, NULL },
	{ GBX_MSG_STATUS, "status", false, on_status, NULL },
	{ GBX_MSG_STATS, "stats", false, on_stats, NULL },
	{ GBX_MSG_SUBSCRIBE, "subscribe", false, on_subscribe, NULL },
	{ GBX_MSG_RELOAD, "reload", true, NULL, on_reload },
	{ GBX_MSG_CLOSE, "close", false, on_close, NULL },
	{ GBX_MSG_PLATFORM, "platform", false, on_platform, NULL },
	{ GBX_MSG_PARETO, "pareto", false, on_pareto, NULL },
	{ GBX_MSG_CALIBRATE, "calibrate", true, NULL, on_calibrate },
	{ GBX_MSG_PLAN, "plan", false, on_plan, NULL },
};

void
handle_frame(struct daemon *d, struct conn *c)
{
	unsigned i = 0, n = sizeof(handlers) / sizeof(handlers[0]);
	struct decode_error err;
	struct decoded q;
	struct json_object *reply;

	if (c->h.type == GBX_MSG_INFER)
		return handle_infer(d, c); /* first: a request waits for nothing */
	while (i < n && handlers[i].type != c->h.type)
		i++;
	if (i == n)
		return (void)send_error(c, c->h.id, GBX_ERR_UNKNOWN_TYPE, "unknown request type %u", c->h.type);
	if (handlers[i].privileged && !c->admin)
		return (void)send_error(c, c->h.id, GBX_ERR_DENIED,
		                        "%s is for root and the '%s' group (admin_group in gearboxd.conf; you are uid %u)",
		                        handlers[i].name, d->config.admin_group ? d->config.admin_group : "-",
		                        (unsigned)c->uid);
	if (decode_request(c->h.type, c->payload, c->h.length, &q, &err) != 0)
		return refused(c, &err);
	if (handlers[i].own != NULL) {
		handlers[i].own(d, c, &q);
		decoded_clear(&q);
		return;
	}
	reply = json_object_new_object();
	pthread_mutex_lock(&d->lock);
	if (handlers[i].locked(d, c, &q, reply) == 0) {
		pthread_mutex_unlock(&d->lock);
		send_json(c, (uint16_t)(c->h.type + 1), c->h.id, reply);
	} else {
		pthread_mutex_unlock(&d->lock);
		json_object_put(reply);
	}
	decoded_clear(&q);
}
