/* SPDX-License-Identifier: MIT */
/* Serving: the models, the request queue, and one worker thread per
 * placement. See daemon.h for the request path; in short, the worker the
 * kernel wakes for a connection reads it, admits what it reads, and runs
 * the best request itself. */
#include "config.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#include "common/cause.h"
#include "common/clock.h"
#include "common/spin.h"
#include "daemon/daemon.h"
#include "daemon/log.h"

/* How long ahead of a session's next expected request its worker wakes,
 * warms the pool and polls (the wake-up of a sleeping CPU, cluster
 * power-up on boards), and how long past it the poll goes on. */
#define WARM_LEAD_NS 300000
#define WARM_TAIL_NS 300000

void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	conn_unref(r->conn);
	free(r->input);
	free(r->output);
	free(r);
}

struct host *
serve_find_host(struct daemon *d, const char *name)
{
	for (unsigned i = 0; i < d->nhosts; i++)
		if (strcmp(dnn_model_name(d->hosts[i].model), name) == 0)
			return &d->hosts[i];
	return NULL;
}

static bool queue_has_work(struct daemon *d, unsigned place);
static void wake_for(struct daemon *d, const struct request *r);
static void want_pm_qos(struct daemon *d);

/* The worker this thread is (NULL in the main and calibration threads). */
static __thread struct worker *self_worker;

/* ---- the queue (daemon.lock held) ---------------------------------------------- */

static bool
allowed_there(const struct request *r, unsigned place)
{
	const struct pol_place *pl = &r->host->control.predictor.places[place];
	return !pl->disabled && pol_place_allowed(pl, r->params.placements);
}

/* Where a request may run: where its policy allows, or, when that is
 * nowhere any more (its device failed), the first placement, as the
 * control loop's fallback choice says. */
static bool
may_run_on(const struct request *r, unsigned place)
{
	const struct daemon *d = r->host->daemon;

	if (allowed_there(r, place))
		return true;
	for (unsigned p = 0; p < d->nplaces; p++)
		if (allowed_there(r, p))
			return false;
	return place == 0;
}

int
serve_admit(struct daemon *d, struct request *r, char *why, size_t size)
{
	struct host *h = r->host;
	uint64_t now = monotonic_ns();

	if (h->queued >= QUEUE_PER_MODEL) {
		h->busy_rejections++;
		snprintf(why, size, "%s's queue is full (%d requests)", dnn_model_name(h->model), QUEUE_PER_MODEL);
		return -EBUSY;
	}
	if (r->conn->inflight >= INFLIGHT_PER_CLIENT) {
		h->busy_rejections++;
		snprintf(why, size, "this connection has %d requests in flight", INFLIGHT_PER_CLIENT);
		return -EBUSY;
	}
	if (r->budget.deadline_us) {
		/* end to end: the time before arrival and the expected return path
		 * are spent already */
		uint64_t end = r->origin_ns + r->budget.deadline_us * 1000, spend = (uint64_t)(r->return_us * 1e3);
		r->deadline_ns = end > r->received_ns + spend ? end - spend : r->received_ns;
		d->last_deadline_ns = now;
		want_pm_qos(d);
	} else {
		r->deadline_ns = UINT64_MAX;
	}
	if (d->nqueue == d->queue_cap) {
		unsigned cap = d->queue_cap ? d->queue_cap * 2 : 64;
		struct request **q = realloc(d->queue, cap * sizeof(*q));
		if (q == NULL)
			return snprintf(why, size, "out of memory"), -ENOMEM;
		d->queue = q;
		d->queue_cap = cap;
	}
	d->queue[d->nqueue++] = r;
	__atomic_add_fetch(&d->admitted, 1, __ATOMIC_RELAXED);
	h->queued++;
	r->conn->inflight++;
	d->requests++;
	/* The worker reading it takes it next, unless it may not run it. */
	if (self_worker == NULL || !may_run_on(r, self_worker->place))
		wake_for(d, r);
	return 0;
}

static bool
earlier(const struct request *a, const struct request *b)
{
	return a->deadline_ns < b->deadline_ns || (a->deadline_ns == b->deadline_ns && a->received_ns < b->received_ns);
}

/* The next request for placement `place`: earliest deadline first among
 * each connection's earliest, so that a client flooding requests gets one
 * turn in each round like everyone else. NULL when none may run there. */
static struct request *
queue_take(struct daemon *d, unsigned place)
{
	uint64_t gen = ++d->scan_gen;
	int best = -1;

	for (unsigned i = 0; i < d->nqueue; i++) {
		struct request *r = d->queue[i];
		struct conn *c = r->conn;
		if (r->host->calibrating || !may_run_on(r, place))
			continue;
		if (c->scan_gen != gen || earlier(r, c->scan_head)) {
			c->scan_gen = gen;
			c->scan_head = r;
		}
	}
	for (unsigned i = 0; i < d->nqueue; i++) {
		struct request *r = d->queue[i];
		if (r->conn->scan_gen == gen && r->conn->scan_head == r && (best < 0 || earlier(r, d->queue[best])))
			best = (int)i;
	}
	if (best < 0)
		return NULL;
	struct request *r = d->queue[best];
	memmove(&d->queue[best], &d->queue[best + 1], (d->nqueue - (unsigned)best - 1) * sizeof(*d->queue));
	d->nqueue--;
	r->host->queued--;
	return r;
}

void
serve_forget_conn(struct daemon *d, struct conn *c)
{
	unsigned k = 0;

	for (unsigned i = 0; i < d->nqueue; i++) {
		struct request *r = d->queue[i];
		if (r->conn == c) {
			r->host->queued--;
			c->inflight--;
			request_free(r);
		} else {
			d->queue[k++] = r;
		}
	}
	d->nqueue = k;
	for (unsigned p = 0; p < d->nplaces; p++) {
		struct worker *w = &d->workers[p];
		k = 0;
		for (unsigned i = 0; i < w->nmail; i++) {
			if (w->mailbox[i]->conn == c) {
				c->inflight--;
				request_free(w->mailbox[i]);
			} else {
				w->mailbox[k++] = w->mailbox[i];
			}
		}
		w->nmail = k;
	}
}


/* ---- waking workers (daemon.lock held) ----------------------------------------- */

/* A worker asleep in epoll is signalled; one polling sees the work itself. */
static void
wake_worker(struct worker *w)
{
	if (w->started && w->asleep)
		pthread_kill(w->thread, SIGUSR1);
}

/* A sleeping worker that may run r. */
static void
wake_for(struct daemon *d, const struct request *r)
{
	for (unsigned p = 0; p < d->nplaces; p++)
		if (!d->workers[p].busy && may_run_on(r, p)) {
			wake_worker(&d->workers[p]);
			return;
		}
}

/* Another worker than `self` that sleeps and could run queued work. */
static void
wake_idle_for_queue(struct daemon *d, const struct worker *self)
{
	for (unsigned p = 0; p < d->nplaces && d->nqueue > 0; p++) {
		struct worker *w = &d->workers[p];
		if (w != self && !w->busy && w->asleep && queue_has_work(d, p)) {
			wake_worker(w);
			return;
		}
	}
}

/* ---- running one request --------------------------------------------------- */

/* Set the clock domain to the highest frequency its sessions voted for. A
 * failed write turns DVFS off there (one warning). daemon.lock held. */
static unsigned long
apply_frequency(struct daemon *d, struct request *r, const struct pol_point *pt, uint64_t now)
{
	const struct pol_place *pl = &d->places[pt->place];
	unsigned dom = pol_place_domain(d->places, pt->place);
	struct gov_cluster *c = pl->kind == POL_PLACE_CPU ? &d->platform->clusters[pl->index] : NULL;
	unsigned long level;
	char *cause = NULL;

	if (!pl->dvfs || !r->params.dvfs || pt->khz == 0 || d->dvfs_off[dom] || c == NULL)
		return pt->khz ? pt->khz : c ? c->cur_khz : 0;
	pol_votes_cast(&d->votes, r->session, dom, pt->khz, now, 1000000000ull);
	level = pol_votes_level(&d->votes, dom, now);
	if (level == d->applied_khz[dom])
		return level;
	if (gov_set_cluster_freq(d->platform, c, level, &cause) == 0) {
		d->applied_khz[dom] = level;
		d->changed_freq = true;
		log_event(LOG_INFO, GBX_MID_DVFS_CHANGED, &(struct log_fields){ .placement = c->name, .freq_khz = level },
		          "%s: %lu kHz", c->name, level);
		return level;
	}
	log_event(LOG_WARNING, GBX_MID_DVFS_CHANGED, &(struct log_fields){ .placement = c->name, .freq_khz = level },
	          "%s: cannot set %lu kHz, running without DVFS there: %s", c->name, level, cause);
	d->dvfs_off[dom] = true;
	free(cause);
	return c->cur_khz;
}

/* The thread counts placement pl offers, within what the tables index. */
static unsigned
place_threads(const struct pol_place *pl)
{
	return pl->max_threads < POL_MAX_THREADS ? pl->max_threads : POL_MAX_THREADS;
}

/* What the control loop should know of the placements now (daemon.lock). */
static void
placement_context(struct daemon *d, const struct request *r, uint64_t now, struct pol_context *ctx,
                  struct pol_freq_floor *floor)
{
	struct pol_freq_floor by_domain;

	memset(ctx, 0, sizeof(*ctx));
	pol_votes_floor(&d->votes, r->session, now, &by_domain);
	for (unsigned p = 0; p < d->nplaces; p++) {
		const struct worker *w = &d->workers[p];
		floor->floor_khz[p] = by_domain.floor_khz[pol_place_domain(d->places, p)];
		if (w->busy)
			ctx->wait_us[p] = w->busy_until_ns > now ? (double)(w->busy_until_ns - now) / 1e3 : 0;
		bool idle = !w->busy && (w->last_done_ns == 0 || (double)(now - w->last_done_ns) / 1e3 > POL_COLD_GAP_US);
		ctx->cold[p][1] = idle;
		for (unsigned t = 2; t <= place_threads(&d->places[p]); t++)
			ctx->cold[p][t] = idle || w->threads_done_ns[t] == 0 ||
			                  (double)(now - w->threads_done_ns[t]) / 1e3 > POL_COLD_GAP_US;
	}
	ctx->floor = floor;
}

/* Choose r's point, knowing how busy and how cold each placement is. */
static void
choose(struct daemon *d, struct request *r, const struct pol_params *params, struct pol_context *ctx,
       struct pol_freq_floor *floor, struct pol_session *state)
{
	struct host *h = r->host;
	uint64_t now = monotonic_ns();
	struct pol_budget budget = { 0, (double)r->budget.energy_uj, r->budget.min_accuracy };
	struct session *s;

	pthread_mutex_lock(&d->lock);
	placement_context(d, r, now, ctx, floor);
	if ((s = session_find(&d->sessions, r->session)) != NULL)
		*state = s->state;
	pthread_mutex_unlock(&d->lock);
	if (r->budget.deadline_us)
		budget.deadline_us = fmax(((double)r->deadline_ns - (double)now) / 1e3, 1e-3);
	pthread_mutex_lock(&h->lock);
	r->choice = pol_control_choose(&h->control, params, &budget, state, ctx);
	pthread_mutex_unlock(&h->lock);
}

/* A placement that failed (device lost, out of memory, kernels that do
 * not build) leaves this model's tables until the daemon restarts. */
static void
disable_place(struct host *h, unsigned place, const char *why)
{
	pthread_mutex_lock(&h->lock);
	h->control.predictor.places[place].disabled = true;
	pthread_mutex_unlock(&h->lock);
	log_event(LOG_WARNING, GBX_MID_PLACEMENT_FAILED,
	          &(struct log_fields){ .model = dnn_model_name(h->model), .placement = h->control.predictor.places[place].name },
	          "%s: %s failed, moving its work to the CPU: %s", dnn_model_name(h->model),
	          h->control.predictor.places[place].name, why);
}

/* Run r at its point on this worker's placement. false when an OpenCL
 * device failed: it is disabled and r is to be chosen for again (r->fallback
 * says why). A CPU pool that cannot run at all makes an error reply. */
static bool
execute(struct worker *w, struct request *r)
{
	struct host *h = r->host;
	struct pol_point *pt = &r->choice.point;
	char *cause = NULL;
	struct dnn_engine *e = pol_runtime_engine(h->runtime, h->control.predictor.places, pt->place, pt->threads, &cause);

	if (e != NULL && dnn_engine_run(e, pt->groups, r->input, r->output, NULL, &cause) == 0)
		return true;
	if (h->control.predictor.places[pt->place].kind == POL_PLACE_OPENCL) {
		disable_place(h, pt->place, cause ? cause : "device error");
		snprintf(r->failed_place, sizeof(r->failed_place), "%s", h->control.predictor.places[pt->place].name);
		snprintf(r->fallback, sizeof(r->fallback), "%s", cause ? cause : "device error");
		free(cause);
		return false;
	}
	log_error("%s: cannot run on %s: %s", dnn_model_name(h->model), w->daemon->places[pt->place].name, cause);
	snprintf(r->failed, sizeof(r->failed), "%s", cause ? cause : "cannot run");
	memset(r->output, 0, dnn_model_output_size(h->model) * sizeof(float));
	free(cause);
	return true;
}

static bool
measure_run(struct daemon *d, struct worker *w, struct request *r)
{
	const struct gov_energy_source *counter = d->energy_counter;
	struct gov_reading before = { 0 }, after = { 0 };
	bool measured = counter != NULL && gov_energy_read(counter, &before, NULL) == 0;
	const struct pol_point *pt = &r->choice.point;
	const struct dnn_model *m = r->host->model;

	r->start_ns = monotonic_ns();
	if (!execute(w, r))
		return false;
	r->done_ns = monotonic_ns();
	r->latency_us = (double)(r->done_ns - r->start_ns) / 1e3;
	r->sensor_uj = -1;
	if (measured && gov_energy_read(counter, &after, NULL) == 0 && after.is_energy) {
		r->sensor_uj = r->energy_uj = (double)gov_energy_delta_uj(counter, before.energy_uj, after.energy_uj);
		r->energy_source = counter->name;
	} else {
		r->energy_uj = pt->power_w * r->latency_us;
		r->energy_source = d->places[pt->place].power_source;
	}
	r->cls = 0;
	for (unsigned i = 1; i < dnn_model_classes(m); i++)
		if (r->output[i] > r->output[r->cls])
			r->cls = i;
	return true;
}

/* Events for subscribers (daemon.lock held). */
static void
announce(struct daemon *d, const struct request *r)
{
	struct host *h = r->host;
	const struct pol_point *pt = &r->choice.point;
	const char *model = dnn_model_name(h->model), *placement = d->places[pt->place].name;
	struct json_object *ev;

	if (pt->groups != h->announced_groups) {
		ev = json_object_new_object();
		json_object_object_add(ev, "event", json_object_new_string("operating-point"));
		json_object_object_add(ev, GBX_KEY_MODEL, json_object_new_string(model));
		json_object_object_add(ev, GBX_KEY_GROUPS, json_object_new_int((int)pt->groups));
		json_object_object_add(ev, "previous_groups", json_object_new_int((int)h->announced_groups));
		json_object_object_add(ev, GBX_KEY_PLACEMENT, json_object_new_string(placement));
		json_object_object_add(ev, GBX_KEY_THREADS, json_object_new_int((int)pt->threads));
		json_object_object_add(ev, GBX_KEY_FREQ_KHZ, json_object_new_int64((int64_t)r->khz));
		json_object_object_add(ev, GBX_KEY_DEADLINE_US, json_object_new_int64((int64_t)r->budget.deadline_us));
		h->announced_groups = pt->groups;
		broadcast_event(d, ev);
	}
	if (r->fallback[0] != '\0') {
		ev = json_object_new_object();
		json_object_object_add(ev, "event", json_object_new_string("placement-failed"));
		json_object_object_add(ev, GBX_KEY_MODEL, json_object_new_string(model));
		json_object_object_add(ev, GBX_KEY_PLACEMENT, json_object_new_string(r->failed_place));
		json_object_object_add(ev, "now", json_object_new_string(placement));
		json_object_object_add(ev, GBX_KEY_REASON, json_object_new_string(r->fallback));
		broadcast_event(d, ev);
	}
	/* the journal hears of a session's budget turning infeasible once, not
	 * of every request while it stays so */
	struct session *s = session_find(&d->sessions, r->session);
	if (s != NULL && r->choice.feasible != !s->infeasible) {
		s->infeasible = !r->choice.feasible;
		if (s->infeasible) {
			char sid[16];
			snprintf(sid, sizeof(sid), "%u", (unsigned)s->id);
			log_event(LOG_WARNING, GBX_MID_BUDGET_INFEASIBLE,
			          &(struct log_fields){ .model = model, .session = sid, .placement = placement },
			          "%s: session %u's budget is infeasible (running g=%u on %s): %s", model, (unsigned)s->id,
			          pt->groups, placement, r->choice.reason);
		}
	}
	if (!request_met(r) || !r->choice.feasible) {
		ev = json_object_new_object();
		json_object_object_add(ev, "event", json_object_new_string("budget-violation"));
		json_object_object_add(ev, GBX_KEY_MODEL, json_object_new_string(model));
		json_object_object_add(ev, GBX_KEY_GROUPS, json_object_new_int((int)pt->groups));
		json_object_object_add(ev, GBX_KEY_LATENCY_US, json_object_new_double(request_e2e_us(r)));
		json_object_object_add(ev, GBX_KEY_DEADLINE_US, json_object_new_int64((int64_t)r->budget.deadline_us));
		json_object_object_add(ev, GBX_KEY_REASON,
		                       json_object_new_string(r->choice.feasible ? "deadline missed" : r->choice.reason));
		broadcast_event(d, ev);
	}
}

/* How long dnn's pool threads poll after a run (its SPIN_ROUNDS, about
 * 50 us), with room to spare. */
#define POOL_POLL_NS 100000ull

/* A run or warm-up of `threads` threads here leaves the pool's other
 * threads polling until until_ns. */
static void
note_pool_polling(struct worker *w, unsigned threads, uint64_t until_ns)
{
	__atomic_store_n(&w->pool_polling, threads > 1 ? threads - 1 : 0, __ATOMIC_RELAXED);
	__atomic_store_n(&w->pool_polling_until_ns, until_ns, __ATOMIC_RELAXED);
}

/* The request is done: count it, send the reply, then learn from it (the
 * reply does not wait for the learning) and tell subscribers. */
static void
finish(struct daemon *d, struct worker *w, struct request *r, struct pol_session *state)
{
	struct host *h = r->host;
	const struct pol_point *pt = &r->choice.point;
	unsigned char *frame = NULL;
	size_t len = 0;
	struct session *s;
	bool first_requests_done = false;

	pthread_mutex_lock(&d->lock);
	stats_count(d, r);
	if ((s = session_find(&d->sessions, r->session)) != NULL) {
		/* taken with the count: another placement may finish one of the
		 * session's requests before this one has learnt from its own */
		first_requests_done = s->requests == PLAN_AFTER_FIRST_REQUESTS;
		s->home = pt->place;
		s->home_threads = pt->threads;
		s->home_groups = pt->groups;
		s->home_us = r->latency_us;
	}
	w->busy = false;
	h->running--;
	w->last_done_ns = r->done_ns;
	if (pt->threads <= POL_MAX_THREADS)
		w->threads_done_ns[pt->threads] = r->done_ns;
	note_pool_polling(w, pt->threads, r->done_ns + POOL_POLL_NS);
	w->served++;
	r->conn->inflight--;
	pthread_mutex_unlock(&d->lock);

	if (r->failed[0] != '\0')
		send_error(r->conn, r->msg_id, GBX_ERR_INTERNAL, "%s", r->failed);
	else if ((frame = infer_reply_frame(r, d->places[pt->place].name, monotonic_ns(), &len)) != NULL)
		conn_send_raw(r->conn, frame, len);
	else
		send_error(r->conn, r->msg_id, GBX_ERR_INTERNAL, "out of memory for the reply");
	free(frame);

	if (r->fallback[0] == '\0' && r->failed[0] == '\0') { /* a fair sample */
		struct pol_outcome ran = { r->latency_us, r->sensor_uj, request_e2e_us(r), (double)r->budget.deadline_us,
			                   r->cold };
		pthread_mutex_lock(&h->lock);
		pol_control_learn(&h->control, &r->params, pt, &ran, state);
		pthread_mutex_unlock(&h->lock);
	}
	pthread_mutex_lock(&d->lock);
	if ((s = session_find(&d->sessions, r->session)) != NULL) {
		s->state = *state;
		/* its plan was made on what calibration and the others' requests
		 * said; its own first requests have been learnt from now (in
		 * bench/tenants, a newly opened tenant had been held at g=5 of 8
		 * for the 2 s to the periodic plan by a cold start's latencies) */
		if (first_requests_done)
			plan_request(d, "a session's first requests were measured");
	}
	announce(d, r);
	request_free(r);
	pthread_mutex_unlock(&d->lock);
}

/* Hand r to the worker of the placement chosen for it (daemon.lock held).
 * false when its mailbox is full: r runs here instead. */
static bool
hand_off(struct daemon *d, struct request *r, unsigned place)
{
	struct worker *to = &d->workers[place];

	if (to->nmail == QUEUE_PER_MODEL)
		return false;
	to->mailbox[to->nmail++] = r;
	wake_worker(to);
	return true;
}

/* The control loop put r on another placement. When this one, idle and
 * in hand, meets the budget and is as good by the policy's objective (same
 * accuracy; or as little energy; or as fast, waiting included), r runs here:
 * otherwise equal placements would pass work to whichever looks warmest and
 * leave the others idle. r->choice becomes this placement's then. */
static bool
here_is_as_good(struct daemon *d, struct worker *w, struct request *r, const struct pol_params *params,
                struct pol_context *ctx, struct pol_freq_floor *floor, struct pol_session *state)
{
	struct pol_params local = *params;
	struct pol_choice there = r->choice;
	const struct pol_point *a = &there.point, *b;
	bool good;

	snprintf(local.placements, sizeof(local.placements), "%s", d->places[w->place].name);
	choose(d, r, &local, ctx, floor, state);
	b = &r->choice.point;
	if (!r->choice.feasible || b->place != w->place)
		good = false;
	else if (params->objective == POL_OBJECTIVE_ENERGY)
		good = b->energy_uj <= a->energy_uj * 1.05;
	else if (params->objective == POL_OBJECTIVE_LATENCY)
		good = b->latency_us <= a->latency_us + ctx->wait_us[a->place];
	else
		good = b->accuracy >= a->accuracy;
	if (!good)
		r->choice = there;
	return good;
}

static void
serve_request(struct daemon *d, struct worker *w, struct request *r)
{
	struct pol_params params = r->params;
	struct pol_freq_floor floor;
	struct pol_context ctx;
	struct pol_session state = { 0 };
	unsigned long khz;

	choose(d, r, &params, &ctx, &floor, &state);
	if (r->choice.point.place != w->place && here_is_as_good(d, w, r, &params, &ctx, &floor, &state))
		; /* run here: no hand-off */
	else if (r->choice.point.place != w->place) {
		pthread_mutex_lock(&d->lock);
		bool handed = hand_off(d, r, r->choice.point.place);
		if (handed) { /* taken again, and counted, by the other worker */
			w->busy = false;
			r->host->running--;
		}
		pthread_mutex_unlock(&d->lock);
		if (handed)
			return;
		/* the other placement has its hands full: this one, then */
		snprintf(params.placements, sizeof(params.placements), "%s", d->places[w->place].name);
		choose(d, r, &params, &ctx, &floor, &state);
	}
	pthread_mutex_lock(&d->lock);
	uint64_t now = monotonic_ns();
	w->busy = true;
	w->busy_until_ns = now + (uint64_t)(r->choice.point.latency_us * 1e3);
	r->cold = ctx.cold[w->place][r->choice.point.threads <= POL_MAX_THREADS ? r->choice.point.threads : 1];
	r->queue_us = (double)(now - r->received_ns) / 1e3;
	khz = apply_frequency(d, r, &r->choice.point, now);
	pthread_mutex_unlock(&d->lock);
	r->khz = khz;
	/* what the client will see: waited so far, the inference, the way back */
	/* a prediction, not the deadline's safe bound: the median return path
	 * (the 98.5th percentile made it 24 % high at 50 requests/s) */
	r->predicted_e2e_us = (double)(now - r->origin_ns) / 1e3 + r->choice.point.latency_us + r->return_typical_us;
	if (measure_run(d, w, r)) {
		finish(d, w, r, &state);
		return;
	}
	/* the device failed and left the tables: the request goes where the
	 * control loop now puts it */
	pthread_mutex_lock(&d->lock);
	w->busy = false;
	r->host->running--;
	pthread_mutex_unlock(&d->lock);
	choose(d, r, &r->params, &ctx, &floor, &state);
	pthread_mutex_lock(&d->lock);
	bool handed = r->choice.point.place != w->place && hand_off(d, r, r->choice.point.place);
	if (!handed) {
		r->conn->inflight--;
		send_error(r->conn, r->msg_id, GBX_ERR_INTERNAL, "%s failed and no other placement can take it: %s",
		           r->failed_place, r->fallback);
		request_free(r);
	}
	pthread_mutex_unlock(&d->lock);
}

/* ---- the worker loop ------------------------------------------------------- */

static void
on_sigusr1(int sig)
{
	(void)sig; /* only to interrupt epoll_pwait */
}

/* Wait for connection events up to timeout_ns (0: poll, < 0: until one
 * comes or another thread signals), and serve those that came. Returns the
 * number served, or -1 when interrupted by a signal. */
static int
wait_events(struct worker *w, int64_t timeout_ns)
{
	struct daemon *d = w->daemon;
	struct epoll_event ev[8];
	int n;

	if (timeout_ns >= 0) {
		struct timespec ts = { (time_t)(timeout_ns / 1000000000), (long)(timeout_ns % 1000000000) };
		n = epoll_pwait2(d->conn_epfd, ev, 8, &ts, &w->wait_mask);
		if (n < 0 && errno == ENOSYS) /* valgrind and old kernels: ms */
			n = epoll_pwait(d->conn_epfd, ev, 8, (int)((timeout_ns + 999999) / 1000000), &w->wait_mask);
	} else {
		n = epoll_pwait(d->conn_epfd, ev, 8, -1, &w->wait_mask);
	}
	if (timeout_ns != 0)
		w->blocked_ns = monotonic_ns();
	if (n < 0)
		return -1;
	for (int i = 0; i < n; i++)
		conn_service(d, ev[i].data.ptr, ev[i].events);
	return n;
}

/* Work handed over, or requests admitted since this worker last found
 * nothing it could take: worth looking (under the lock) again. */
static bool
has_work(struct worker *w)
{
	return __atomic_load_n(&w->nmail, __ATOMIC_RELAXED) > 0 ||
	       __atomic_load_n(&w->daemon->admitted, __ATOMIC_RELAXED) != w->admitted_seen;
}

/* Polling holds a CPU that nothing else can use meanwhile (a real-time
 * worker's most of all), and the clients need CPU time to read the replies
 * and send the next requests. So a worker polls only while its CPUs keep
 * one free of the daemon: when every other CPU already has a worker that
 * runs or polls, or a pool thread a run or warm-up of several threads left
 * polling (dnn's pool polls about 50 us after each run, and through a
 * warm-up), it sleeps in epoll instead. On two CPUs with two busy
 * placements, polling starved a pipelined client until two single-CPU
 * placements served fewer requests than one. And in scripts/demo.sh, the
 * replies of two-thread runs took the client (SCHED_OTHER) 200 to 320 us
 * more than the inference, against 80 to 100 us after one-thread runs:
 * the worker polled on one CPU while its pool's second thread polled on
 * the other. cpus_held_besides counts what holds CPUs besides worker w
 * (with own_pool, w's pool threads too). */
static unsigned
cpus_held_besides(const struct worker *w, bool own_pool)
{
	const struct daemon *d = w->daemon;
	unsigned holding = 0;
	uint64_t now = monotonic_ns();

	for (unsigned p = 0; p < d->nplaces; p++) {
		const struct worker *o = &d->workers[p];
		if (o != w && (__atomic_load_n(&o->busy, __ATOMIC_RELAXED) || __atomic_load_n(&o->polling, __ATOMIC_RELAXED)))
			holding++;
		if ((o != w || own_pool) && now < __atomic_load_n(&o->pool_polling_until_ns, __ATOMIC_RELAXED))
			holding += __atomic_load_n(&o->pool_polling, __ATOMIC_RELAXED);
	}
	return holding;
}

static bool
may_poll(const struct worker *w)
{
	return 1 + cpus_held_besides(w, true) < w->daemon->ncpus;
}

/* Whether this worker may poll with `threads` - 1 threads of a pool polling
 * beside it (may_poll's rule; its own pool's polling so far is replaced). */
static bool
pool_may_poll(const struct worker *w, unsigned threads)
{
	return threads + cpus_held_besides(w, false) < w->daemon->ncpus;
}

/* Poll until until_ns: connections, and work handed over. */
static void
poll_until(struct worker *w, uint64_t until_ns)
{
	if (!may_poll(w))
		return;
	__atomic_store_n(&w->polling, true, __ATOMIC_RELAXED);
	for (unsigned round = 0; !has_work(w) && monotonic_ns() < until_ns; round++) {
		if (wait_events(w, 0) > 0)
			break;
		spin_relax(round);
	}
	__atomic_store_n(&w->polling, false, __ATOMIC_RELAXED);
}

/* The polling window adapts as the kernel's haltpoll governor does: a
 * request soon after the worker went to sleep means polling a little longer
 * would have saved a wake-up, so the window doubles; a long sleep means the
 * client is slower than any window worth burning a CPU for, so it halves. */
static void
adapt_spin(struct worker *w, uint64_t slept_ns)
{
	if (slept_ns < WORKER_SPIN_MAX_NS)
		w->spin_ns = w->spin_ns * 2 > WORKER_SPIN_MAX_NS ? WORKER_SPIN_MAX_NS : w->spin_ns * 2;
	else
		w->spin_ns = w->spin_ns / 2 < WORKER_SPIN_MIN_NS ? WORKER_SPIN_MIN_NS : w->spin_ns / 2;
}

/* What to get ready for: the next request expected on this placement, the
 * earliest of the steady sessions whose last request ran here. */
struct expected {
	uint64_t at_ns;          /* 0: nothing expected */
	uint32_t session;
	struct host *host;
	struct dnn_engine *engine;
	unsigned groups, threads;
	double run_us;           /* what the warm-up run is expected to take */
	uint64_t jitter_ns;      /* how far off its arrivals have been */
};

/* daemon.lock held. */
static struct expected
next_expected(struct daemon *d, struct worker *w)
{
	struct expected e = { 0 };

	if (d->config.warm_ahead == CONFIG_WARM_NO)
		return e;
	for (unsigned i = 0; i < d->sessions.n; i++) {
		struct session *s = d->sessions.v[i];
		uint64_t t = s->home == w->place && s->requests > 0 && s->home_threads ? arrival_next_ns(&s->arrival) : 0;
		if (t != 0 && (e.at_ns == 0 || t < e.at_ns)) {
			e.at_ns = t;
			e.session = s->id;
			e.host = s->host;
			/* one group more than it last ran, where the model has one:
			 * the policy steps up one at a time, and the step's weights,
			 * never touched at the lower g, made its first requests 15 %
			 * slower than predicted (several deadlines in a row went in
			 * scripts/demo.sh's tight steps) */
			e.groups = s->home_groups < dnn_model_groups(s->host->model) ? s->home_groups + 1 : s->home_groups;
			e.run_us = s->home_us * e.groups / (s->home_groups ? s->home_groups : 1);
			e.jitter_ns = (uint64_t)s->arrival.jitter_ns;
			e.threads = s->home_threads;
			e.engine = pol_runtime_engine(s->host->runtime, s->host->control.predictor.places, w->place,
			                              s->home_threads, NULL);
		}
	}
	return e;
}

/* The request path rehearsed for session e->session, keeping nothing:
 * decoding an INFER frame, its session's policy and room, and choosing its
 * point read the decoder's code, the session and the predictor's tables,
 * which an idle gap (and the warm-up inference's weights) pushed out of the
 * caches. At 50 requests/s on the 2-vCPU development VM a request spent
 * about 50 us from its frame to its inference (decoding 27, then with
 * json-c; the session 10, choosing 11), four times what it spends back to
 * back. The frame below is of the form INFER's fast reader takes (decode.c),
 * as libgearbox's requests are. */
static void
rehearse_request(struct daemon *d, const struct expected *e)
{
	static const char frame[] = "{\"session\":1,\"sent_ns\":1,\"return_us\":1}"; /* its NUL ends the JSON */
	struct request shadow = { 0 };
	struct pol_params params;
	struct pol_context ctx;
	struct pol_freq_floor floor;
	struct pol_session state = { 0 };
	struct decoded q;
	struct decode_error err;
	struct session *s;

	if (decode_request(GBX_MSG_INFER, (const unsigned char *)frame, sizeof(frame), &q, &err) == 0)
		decoded_clear(&q);
	pthread_mutex_lock(&d->lock);
	if ((s = session_find(&d->sessions, e->session)) == NULL || s->host != e->host) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	shadow.host = s->host;
	shadow.session = s->id;
	shadow.budget = s->budget;
	resolve_policy(d, s->host, s->policy, &params);
	plan_room(d, s, &params);
	pthread_mutex_unlock(&d->lock);
	shadow.deadline_ns = e->at_ns + (uint64_t)shadow.budget.deadline_us * 1000u;
	choose(d, &shadow, &params, &ctx, &floor, &state);
}

/* Get the placement ready for a request due shortly: its pool's threads
 * polling, and (warm_ahead = yes) one inference on a blank input, so that
 * the request finds the weights, the activations and the code in the caches
 * and the CPU out of its idle state. That costs an inference's CPU time per
 * periodic request; warm_ahead = threads keeps only the polling threads. */
static void
warm_up(struct worker *w, const struct expected *e)
{
	struct daemon *d = w->daemon;
	size_t in_n, out_n;

	if (e->engine == NULL)
		return;
	/* its pool's other threads poll through the due time, unless they and
	 * this worker would then hold every CPU: the client has to run to send
	 * the request */
	bool pool_polls = pool_may_poll(w, e->threads);
	if (pool_polls) {
		uint64_t until = e->at_ns + WARM_TAIL_NS + 3 * e->jitter_ns;
		note_pool_polling(w, e->threads, until);
		dnn_engine_warm(e->engine, until);
	}
	if (d->config.warm_ahead != CONFIG_WARM_YES || dnn_engine_is_opencl(e->engine))
		return;
	in_n = dnn_model_input_size(e->host->model);
	out_n = dnn_model_output_size(e->host->model);
	if (in_n > w->scratch_in_n) {
		free(w->scratch_in);
		w->scratch_in = calloc(in_n, sizeof(float));
		w->scratch_in_n = w->scratch_in ? in_n : 0;
	}
	if (out_n > w->scratch_out_n) {
		free(w->scratch_out);
		w->scratch_out = calloc(out_n, sizeof(float));
		w->scratch_out_n = w->scratch_out ? out_n : 0;
	}
	if (w->scratch_in == NULL || w->scratch_out == NULL)
		return;
	dnn_engine_run(e->engine, e->groups, w->scratch_in, w->scratch_out, NULL, NULL);
	if (!pool_polls)
		note_pool_polling(w, e->threads, monotonic_ns() + POOL_POLL_NS);
	rehearse_request(d, e); /* after the run, whose weights pushed it out */
	pthread_mutex_lock(&d->lock);
	w->last_done_ns = monotonic_ns(); /* what follows is no cold start */
	if (e->threads <= POL_MAX_THREADS)
		w->threads_done_ns[e->threads] = w->last_done_ns;
	w->warmups++;
	pthread_mutex_unlock(&d->lock);
}

/* A SCHED_FIFO thread that never blocks starves every ordinary thread on
 * its CPU, and RLIMIT_RTTIME (gearboxd.conf realtime_limit_ms) counts the
 * CPU time a real-time thread uses without blocking: the limit is there to
 * catch a runaway, not a busy daemon. So a worker that has not blocked for a
 * quarter of the limit sleeps for 20 µs, which resets the count. */
static void
breathe(struct worker *w)
{
	uint64_t now = monotonic_ns();
	struct timespec us = { 0, 20000 };

	if (!w->in_fifo || now - w->blocked_ns < (uint64_t)w->daemon->config.realtime_limit_ms * 250000ull)
		return;
	nanosleep(&us, NULL);
	w->blocked_ns = monotonic_ns();
}

/* The share of its CPU the worker held outside idle(), decaying over
 * DUTY_TAU_NS: fold in the interval since the last call, busy or not. */
static void
duty_note(struct worker *w, bool was_busy, uint64_t now)
{
	double x = was_busy ? 1.0 : 0.0;

	if (w->duty_ns != 0 && now > w->duty_ns)
		w->duty = x + (w->duty - x) * exp(-(double)(now - w->duty_ns) / DUTY_TAU_NS);
	w->duty_ns = now;
}

/* A worker saturated with requests leaves SCHED_FIFO until it is not.
 * Real time is for a request that arrives while a co-runner holds the CPU:
 * it then starts at once and is not time-sliced. A worker that serves back
 * to back gains nothing from it and takes everything else's CPU, the
 * clients' that read the replies and send the next requests most of all: a
 * FIFO worker woken by each request preempted the client that was sending
 * it, so a pipelined client had one request in flight, and two single-CPU
 * placements on two CPUs served fewer requests than one. So while the
 * worker's recent share of its CPU (duty) is above realtime_share, it and
 * its placement's pool threads run in SCHED_OTHER; at realtime_share less
 * 10 points they are real time again: at its next request, or in idle()
 * once the duty has decayed.
 *
 * Nor does a request gain from it whose deadline is further off than a
 * co-runner's time slice or two (realtime_below_ms, 50 ms): the worker
 * runs in SCHED_OTHER while its last request was such a one (a throughput
 * client with a 10 s deadline, say), so that it shares the CPUs with the
 * clients feeding it; the next request due sooner takes SCHED_FIFO again. */
static void
share_when_saturated(struct worker *w, bool was_busy)
{
	struct daemon *d = w->daemon;
	double share = d->config.realtime_share / 100.0;
	bool fifo;
	char *cause = NULL;

	duty_note(w, was_busy, monotonic_ns());
	fifo = d->config.realtime_share >= 100 || (w->in_fifo ? w->duty <= share : w->duty < share - 0.10);
	fifo = fifo && w->tight;
	if (!w->realtime || fifo == w->in_fifo)
		return;
	if (fifo ? gov_realtime_enter(d->realtime_priority, &cause) != 0 : gov_realtime_leave() != 0) {
		free(cause);
		return;
	}
	w->in_fifo = fifo;
	w->blocked_ns = monotonic_ns();
	if (!fifo && w->tight)
		w->shared++; /* saturated, not a loose deadline */
	for (unsigned i = 0; i < d->nhosts; i++)
		pol_runtime_set_place_realtime(d->hosts[i].runtime, w->place, fifo ? d->realtime_priority : 0, NULL);
}

/* Nothing to do: poll a while (a client sending back to back is back in
 * tens of µs), then sleep until a connection needs us, another worker
 * hands us work, or — for a session that sends on a period — shortly before
 * its next request, to get ready and poll through its arrival. */
static void
idle(struct worker *w)
{
	struct daemon *d = w->daemon;
	struct expected next;
	uint64_t now, slept_from, lead;

	if (w->spin_ns == 0)
		w->spin_ns = WORKER_SPIN_START_NS;
	/* Polling stays in SCHED_FIFO: dropping out of it for the poll (so that
	 * a client on the same CPU is not held off) made requests that came
	 * during the poll wait for a co-runner's time slice (daemon-side p99
	 * 2.2 ms instead of 0.33 ms beside stress-ng). The window is short. */
	poll_until(w, monotonic_ns() + w->spin_ns);
	if (has_work(w))
		return;
	pthread_mutex_lock(&d->lock);
	if (w->nmail > 0 || queue_has_work(d, w->place) || d->stopping) {
		pthread_mutex_unlock(&d->lock);
		return;
	}
	next = next_expected(d, w);
	w->asleep = true;
	pthread_mutex_unlock(&d->lock);
	/* ready a margin ahead: the wake-up, the warm-up run, and three times the
	 * jitter of the session's arrivals (a request that comes while the
	 * warm-up runs would wait for it) */
	lead = WARM_LEAD_NS + 3 * next.jitter_ns +
	       (d->config.warm_ahead == CONFIG_WARM_YES ? (uint64_t)(next.run_us * 1e3) : 0);
	slept_from = now = monotonic_ns();
	if (next.at_ns > now + lead) {
		if (wait_events(w, (int64_t)(next.at_ns - lead - now)) == 0) {
			/* on time for the next request: get ready, poll through it */
			pthread_mutex_lock(&d->lock);
			w->asleep = false;
			pthread_mutex_unlock(&d->lock);
			warm_up(w, &next);
			poll_until(w, next.at_ns + WARM_TAIL_NS + 3 * next.jitter_ns);
			return;
		}
	} else if (w->realtime && !w->in_fifo && w->tight) {
		/* saturated until now: real time again once the duty has decayed,
		 * so that the next request's wake-up preempts co-runners again */
		wait_events(w, (int64_t)(2 * DUTY_TAU_NS));
		share_when_saturated(w, false);
	} else {
		wait_events(w, -1);
	}
	pthread_mutex_lock(&d->lock);
	w->asleep = false;
	pthread_mutex_unlock(&d->lock);
	adapt_spin(w, monotonic_ns() - slept_from);
}

/* Work for this worker (daemon.lock held): its mailbox first, then the queue. */
static struct request *
take_work(struct daemon *d, struct worker *w)
{
	struct request *r = NULL, *queued = queue_take(d, w->place);
	unsigned best = 0;

	/* what was handed here and what waits in the queue, earliest deadline
	 * first between them too */
	for (unsigned i = 1; i < w->nmail; i++)
		if (earlier(w->mailbox[i], w->mailbox[best]))
			best = i;
	if (w->nmail > 0 && (queued == NULL || earlier(w->mailbox[best], queued))) {
		r = w->mailbox[best];
		memmove(&w->mailbox[best], &w->mailbox[best + 1], (w->nmail - best - 1) * sizeof(w->mailbox[0]));
		w->nmail--;
		if (queued != NULL) { /* back where it was, in EDF terms */
			d->queue[d->nqueue++] = queued;
			queued->host->queued++;
		}
	} else if ((r = queued) == NULL) {
		w->admitted_seen = d->admitted;
		return NULL;
	}
	w->busy = true; /* until finish(): others see the wait */
	r->host->running++;
	wake_idle_for_queue(d, w);
	return r;
}

static void
enter_realtime(struct worker *w)
{
	struct daemon *d = w->daemon;
	char *cause = NULL;

	prctl(PR_SET_TIMERSLACK, 1UL); /* warm-ahead wake-ups on time */
	if (d->realtime_priority <= 0)
		return;
	if (gov_realtime_enter(d->realtime_priority, &cause) == 0) {
		w->realtime = w->in_fifo = true;
	} else {
		log_notice("%s: worker runs without a real-time class: %s", d->places[w->place].name, cause);
		free(cause);
	}
}

/* A CPU placement's worker lives on that placement's CPUs, not only while
 * an inference runs: the frames it reads, the replies it writes and its
 * polling stay there too. Unbound between runs, the worker of cpu1 woke
 * wherever the scheduler put it, on cpu0 beside cpu0's worker most of all,
 * and two single-CPU placements served little more than one. An OpenCL
 * device's worker goes wherever there is room. */
static void
bind_worker(struct worker *w)
{
	struct daemon *d = w->daemon;
	const struct pol_place *pl = &d->places[w->place];
	hwloc_bitmap_t set;
	cpu_set_t cpus;
	int cpu, err;

	if (pl->kind != POL_PLACE_CPU)
		return;
	if ((set = pol_place_cpuset(pl, d->platform)) == NULL)
		return;
	CPU_ZERO(&cpus);
	hwloc_bitmap_foreach_begin(cpu, set) {
		if (cpu < CPU_SETSIZE)
			CPU_SET(cpu, &cpus);
	}
	hwloc_bitmap_foreach_end();
	hwloc_bitmap_free(set);
	if ((err = pthread_setaffinity_np(pthread_self(), sizeof(cpus), &cpus)) != 0)
		log_info("%s: the worker runs on any CPU: binding it to its CPUs failed: %s", pl->name, strerror(err));
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct daemon *d = w->daemon;

	self_worker = w;
	bind_worker(w);
	enter_realtime(w);
	/* Real time until a request says otherwise: an idle worker reads the
	 * frames of every connection (leader/follower), and in SCHED_OTHER a
	 * client flooding the daemon held a third client's STATUS off for
	 * 120 ms (tests/daemon/limits.py flood) instead of under 1 ms. */
	w->tight = true;
	w->blocked_ns = monotonic_ns();
	for (;;) {
		struct request *r;
		breathe(w);
		/* What other connections sent while this worker ran joins the queue
		 * before it takes the next: EDF and fairness see every request that
		 * is here, not only those an idle worker happened to read. */
		wait_events(w, 0);
		pthread_mutex_lock(&d->lock);
		if (d->stopping) {
			pthread_mutex_unlock(&d->lock);
			return NULL;
		}
		r = take_work(d, w);
		pthread_mutex_unlock(&d->lock);
		if (r != NULL) {
			uint64_t now = monotonic_ns(), below = (uint64_t)d->config.realtime_below_ms * 1000000ull;
			w->tight = below == 0 || (r->deadline_ns != UINT64_MAX && r->deadline_ns < now + below);
			share_when_saturated(w, true);
			serve_request(d, w, r);
		} else {
			duty_note(w, true, monotonic_ns());
			idle(w);
			duty_note(w, false, monotonic_ns());
		}
	}
}

/* ---- calibration ------------------------------------------------------------- */

struct measuring {
	struct host *host;
	unsigned place;          /* the place being measured, for a device that fails */
};

static int
measure_point(void *ctx, const struct pol_point *pt, double *us, char **cause)
{
	struct measuring *m = ctx;
	struct host *h = m->host;
	struct dnn_engine *e;
	float *in = calloc(dnn_model_input_size(h->model), sizeof(float));
	float *out = calloc(dnn_model_output_size(h->model), sizeof(float));
	int rc;

	m->place = pt->place;
	e = pol_runtime_engine(h->runtime, h->control.predictor.places, pt->place, pt->threads, cause);
	if (e == NULL || in == NULL || out == NULL) {
		rc = e == NULL ? -1 : set_cause(cause, "out of memory");
	} else {
		uint64_t t = monotonic_ns();
		rc = dnn_engine_run(e, pt->groups, in, out, NULL, cause);
		*us = (double)(monotonic_ns() - t) / 1e3;
	}
	free(in);
	free(out);
	return rc;
}

static void
calibration_progress(void *ctx, const struct pol_point *pt, double us)
{
	struct measuring *m = ctx;

	log_debug("%s: calibration g=%u on %s x%u: %.0f us", dnn_model_name(m->host->model), pt->groups,
	          m->host->control.predictor.places[pt->place].name, pt->threads, us);
}

/* Measure the calibration subset and cache the fit. No worker runs this
 * model's requests meanwhile (host.calibrating, or before they start). */
static int
calibrate(struct daemon *d, struct host *h, unsigned runs, bool cache, char **cause)
{
	struct pol_predictor next = h->control.predictor;
	struct measuring m = { h, 0 };
	char *why = NULL;

	while (pol_predictor_calibrate(&next, runs, measure_point, &m, calibration_progress, cause) != 0) {
		/* A device that fails while measured leaves; the CPU cannot. */
		if (next.places[m.place].kind != POL_PLACE_OPENCL || next.places[m.place].disabled)
			return -1;
		disable_place(h, m.place, *cause);
		next.places[m.place].disabled = true;
		free(*cause);
		*cause = NULL;
	}
	pthread_mutex_lock(&h->lock);
	pol_control_recalibrated(&h->control, &next);
	pthread_mutex_unlock(&h->lock);
	if (cache && pol_predictor_save(&next, d->cache_dir, &why) != 0) {
		log_info("calibration not cached: %s", why);
		free(why);
	}
	return 0;
}

static bool
host_running(struct daemon *d, const struct host *h)
{
	for (unsigned p = 0; p < d->nplaces; p++)
		for (unsigned i = 0; i < d->workers[p].nmail; i++)
			if (d->workers[p].mailbox[i]->host == h)
				return true;
	return false;
}

static void *
calibration_main(void *arg)
{
	struct request *r = arg;
	struct daemon *d = r->conn->daemon;
	struct host *h = r->host;
	struct json_object *o;
	uint64_t t = monotonic_ns();
	char *cause = NULL;
	int rc;

	/* let what runs now finish: its engines are the ones measured */
	for (;;) {
		pthread_mutex_lock(&d->lock);
		bool busy = host_running(d, h) || h->running > 0;
		pthread_mutex_unlock(&d->lock);
		if (!busy)
			break;
		usleep(1000);
	}
	log_notice("%s: calibrating (requested)", dnn_model_name(h->model));
	rc = calibrate(d, h, r->params.calibration_runs, r->params.calibration_cache, &cause);
	if (rc != 0) {
		send_error(r->conn, r->msg_id, GBX_ERR_INTERNAL, "calibration of %s failed: %s", dnn_model_name(h->model),
		           cause ? cause : "?");
	} else {
		o = json_object_new_object();
		json_object_object_add(o, GBX_KEY_MODEL, json_object_new_string(dnn_model_name(h->model)));
		json_object_object_add(o, "measured", json_object_new_int((int)h->control.predictor.measurements));
		json_object_object_add(o, "seconds", json_object_new_double((double)(monotonic_ns() - t) / 1e9));
		send_json(r->conn, GBX_MSG_CALIBRATE_REPLY, r->msg_id, o);
	}
	free(cause);
	pthread_mutex_lock(&d->lock);
	h->calibrating = false;
	request_free(r);
	for (unsigned p = 0; p < d->nplaces; p++)
		wake_worker(&d->workers[p]); /* its queued requests may run again */
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int
serve_calibrate(struct daemon *d, struct request *r, char **cause)
{
	struct host *h = r->host;
	pthread_attr_t attr;

	if (h->calibrating)
		return set_cause(cause, "%s is being calibrated already", dnn_model_name(h->model));
	if (h->calibration_thread_started) {
		pthread_join(h->calibration_thread, NULL); /* the previous one, finished */
		h->calibration_thread_started = false;
	}
	pthread_attr_init(&attr);
	h->calibrating = true;
	if ((errno = pthread_create(&h->calibration_thread, &attr, calibration_main, r)) != 0) {
		h->calibrating = false;
		pthread_attr_destroy(&attr);
		return set_cause(cause, "cannot start the calibration: %s", strerror(errno));
	}
	pthread_attr_destroy(&attr);
	h->calibration_thread_started = true;
	return 0;
}

/* ---- set-up and shut-down ---------------------------------------------------- */

static bool
queue_has_work(struct daemon *d, unsigned place)
{
	for (unsigned i = 0; i < d->nqueue; i++)
		if (!d->queue[i]->host->calibrating && may_run_on(d->queue[i], place))
			return true;
	return false;
}

/* The placements: every CPU cluster (split per CPU where gearboxd.conf
 * says), then the OpenCL devices. The same list for every model. */
static int
make_places(struct daemon *d, char **cause)
{
	d->nplaces = pol_places_from_platform(d->places, POL_MAX_PLACES, d->platform);
	if (d->config.split != NULL &&
	    (d->nplaces = pol_places_split(d->places, d->nplaces, POL_MAX_PLACES, d->config.split, d->platform, cause)) == 0)
		return -1;
	if (d->config.opencl)
		d->nplaces = pol_places_add_opencl(d->places, d->nplaces, POL_MAX_PLACES, d->platform);
	return 0;
}

static void
find_energy_counter(struct daemon *d)
{
	for (unsigned i = 0; i < d->platform->nsources && d->energy_counter == NULL; i++) {
		const struct gov_energy_source *s = &d->platform->sources[i];
		if ((s->kind == GOV_SOURCE_RAPL || s->kind == GOV_SOURCE_HWMON_ENERGY) &&
		    (s->domain == GOV_DOMAIN_PACKAGE || s->domain == GOV_DOMAIN_CORES)) {
			struct gov_reading r;
			if (gov_energy_read(s, &r, NULL) == 0)
				d->energy_counter = s;
		}
	}
}

/* Make every engine the model may run on, and run each once at its full
 * width on a blank input, before the model serves: an engine's first run
 * (its buffers, its pool's threads, the first touch of the weights the
 * calibration cache let nobody read; on PoCL, kernels compiled for their
 * work sizes) took 1.2 to 2 ms on a CPU of the 2-vCPU development VM, where
 * later runs take 0.1 to 0.4 ms. Each tenant's first request missed its
 * deadline by it, and what the control loop learnt from it made the model
 * look two to four times slower for its first second (bench/tenants: a new
 * tenant held by its plan at g=2, then g=5 of 8). A CPU engine that cannot
 * be made is left for the request that wants it, which says why; a device
 * that cannot run the model is left out, as host_open does when it cannot
 * open it. */
static void
prepare_engines(struct host *h)
{
	size_t in_n = dnn_model_input_size(h->model), out_n = dnn_model_output_size(h->model);
	float *in = calloc(in_n, sizeof(float)), *out = calloc(out_n, sizeof(float));
	unsigned groups = dnn_model_groups(h->model);

	for (unsigned p = 0; in != NULL && out != NULL && p < h->control.predictor.nplaces; p++) {
		struct pol_place *pl = &h->control.predictor.places[p];
		unsigned most = pl->kind != POL_PLACE_CPU ? 1 : place_threads(pl);
		if (pl->disabled)
			continue;
		if (h->threads && most > h->threads)
			most = h->threads;
		for (unsigned t = 1; t <= most; t++) {
			char *why = NULL;
			struct dnn_engine *e = pol_runtime_engine(h->runtime, h->control.predictor.places, p, t, NULL);
			if (e != NULL && dnn_engine_run(e, groups, in, out, NULL, &why) != 0 && pl->kind != POL_PLACE_CPU) {
				pl->disabled = true;
				log_warning("%s: not offering %s: its first run failed: %s", dnn_model_name(h->model),
				            pl->name, why);
			}
			free(why);
		}
	}
	free(in);
	free(out);
}

static int
host_open(struct daemon *d, struct host *h, const char *path, const struct pol_params *calibration, char **cause)
{
	struct pol_model facts;

	h->daemon = d;
	h->path = strdup(path);
	h->threads = d->config.threads;
	daemon_mutex_init(&h->lock);
	h->lock_made = true;
	if (stat(path, &h->file) != 0)
		memset(&h->file, 0, sizeof(h->file));
	if ((h->model = dnn_model_load(path, cause)) == NULL ||
	    (h->runtime = pol_runtime_new(h->model, d->platform, d->devices, cause)) == NULL)
		return -1;
	pol_model_from_dnn(&facts, h->model);
	facts.plan_hash = plans_attach(d, h); /* before calibrating: it measures what the plans run */
	if (pol_control_init(&h->control, &facts, d->places, d->nplaces, cause) != 0)
		return -1;
	/* Open each device now (kernels built or loaded, weights uploaded), so
	 * that a device that cannot run the model is left out from the start. */
	for (unsigned p = 0; p < d->nplaces; p++) {
		char *why = NULL;
		if (d->places[p].kind == POL_PLACE_OPENCL &&
		    pol_runtime_engine(h->runtime, h->control.predictor.places, p, 1, &why) == NULL) {
			h->control.predictor.places[p].disabled = true;
			log_warning("%s: not offering %s: %s", dnn_model_name(h->model), d->places[p].name, why);
			free(why);
		} else if (d->places[p].kind == POL_PLACE_OPENCL && !d->device_told[p]) {
			const struct dnn_cl_info *info = pol_devices_info(d->devices, d->places[p].index);
			d->device_told[p] = true;
			if (info != NULL)
				log_info("%s: %s (%s), kernels %s in %.0f ms", d->places[p].name, info->device_name,
				         info->platform_name, info->from_cache ? "loaded from the binary cache" : "built",
				         info->build_ms);
		}
	}
	snprintf(h->placement, sizeof(h->placement), "%s", d->places[0].name);
	char *why = NULL;
	if (calibration->calibration_cache && pol_predictor_load_why(&h->control.predictor, d->cache_dir, &why) == 0) {
		log_info("%s: calibration from %s/calibration-%s.json", dnn_model_name(h->model), d->cache_dir,
		         dnn_model_name(h->model));
	} else {
		uint64_t t = monotonic_ns();
		if (why != NULL)
			log_info("%s: %s", dnn_model_name(h->model), why);
		if (calibrate(d, h, calibration->calibration_runs, calibration->calibration_cache, cause) != 0) {
			free(why);
			return -1;
		}
		log_info("%s: calibrated %u points in %.1f s", dnn_model_name(h->model), h->control.predictor.measurements,
		         (double)(monotonic_ns() - t) / 1e9);
	}
	free(why);
	if (d->realtime_priority > 0)
		pol_runtime_set_realtime(h->runtime, d->realtime_priority, NULL);
	prepare_engines(h);
	log_info("hosting %s (%s, G=%u) on %u placement%s", dnn_model_name(h->model), path, dnn_model_groups(h->model),
	         d->nplaces, d->nplaces == 1 ? "" : "s");
	return 0;
}

/* ---- a model file that changed on disk ------------------------------------------- */

static bool
file_changed(const struct host *h)
{
	struct stat st;

	if (stat(h->path, &st) != 0)
		return false; /* gone: keep serving the copy we have */
	return st.st_ino != h->file.st_ino || st.st_dev != h->file.st_dev || st.st_size != h->file.st_size ||
	       st.st_mtim.tv_sec != h->file.st_mtim.tv_sec || st.st_mtim.tv_nsec != h->file.st_mtim.tv_nsec;
}

static bool
same_shape(const struct dnn_model *a, const struct dnn_model *b)
{
	return dnn_model_input_size(a) == dnn_model_input_size(b) && dnn_model_groups(a) == dnn_model_groups(b) &&
	       dnn_model_classes(a) == dnn_model_classes(b) && strcmp(dnn_model_name(a), dnn_model_name(b)) == 0;
}

struct swap {
	struct host *host;
	struct pol_params calibration;
};

/* Load the file again beside the copy in use (calibrated or from the
 * cache, keyed by the file's contents), then, with the host's requests held
 * in the queue and those running finished, put it in place. No queued
 * request is lost: they run on the new copy. A file that does not load, or
 * has another input, name, G or classes (queued inputs were made for the
 * old one), is refused and the old copy serves on. */
static void *
swap_main(void *arg)
{
	struct swap *sw = arg;
	struct host *h = sw->host, next = { 0 };
	struct daemon *d = h->daemon;
	struct retired *old = calloc(1, sizeof(*old));
	struct json_object *ev = json_object_new_object();
	char *cause = NULL;

	json_object_object_add(ev, "path", json_object_new_string(h->path));
	if (host_open(d, &next, h->path, &sw->calibration, &cause) != 0 || !same_shape(next.model, h->model) ||
	    old == NULL) {
		const char *why = cause ? cause : old == NULL ? "out of memory" : "its name, input, G or classes differ";
		log_error("%s changed on disk, but is not swapped in: %s; serving the copy loaded before", h->path, why);
		json_object_object_add(ev, "event", json_object_new_string("model-reload-failed"));
		json_object_object_add(ev, GBX_KEY_REASON, json_object_new_string(why));
		pol_runtime_free(next.runtime);
		pol_control_free(&next.control);
		dnn_model_free(next.model);
		free(old);
		goto out;
	}
	pthread_mutex_lock(&d->lock);
	h->calibrating = true; /* its queued requests wait */
	for (;;) {
		bool busy = host_running(d, h) || h->running > 0;
		if (!busy)
			break;
		pthread_mutex_unlock(&d->lock);
		usleep(1000);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_lock(&h->lock);
	*old = (struct retired){ h->model, h->runtime, h->control, d->retired };
	d->retired = old;
	h->model = next.model;
	h->runtime = next.runtime;
	h->control = next.control;
	h->file = next.file;
	pthread_mutex_unlock(&h->lock);
	h->calibrating = false;
	for (unsigned p = 0; p < d->nplaces; p++)
		wake_worker(&d->workers[p]);
	plan_request(d, "a model was loaded again");
	pthread_mutex_unlock(&d->lock);
	log_notice("%s: now serving the new %s", dnn_model_name(h->model), h->path);
	json_object_object_add(ev, "event", json_object_new_string("model-reloaded"));
out:
	if (next.lock_made)
		pthread_mutex_destroy(&next.lock);
	free(next.path);
	free(cause);
	free(sw);
	pthread_mutex_lock(&d->lock);
	h->swapping = false;
	json_object_object_add(ev, GBX_KEY_MODEL, json_object_new_string(dnn_model_name(h->model)));
	broadcast_event(d, ev);
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

void
serve_reload_models(struct daemon *d, struct json_object *loading)
{
	for (unsigned i = 0; i < d->nhosts; i++) {
		struct host *h = &d->hosts[i];
		struct swap *sw;
		if (h->swapping || !file_changed(h) || (sw = calloc(1, sizeof(*sw))) == NULL)
			continue;
		sw->host = h;
		pol_policy_resolve(pol_set_find(&d->policies, d->default_policy), NULL, &sw->calibration);
		if (h->swap_thread_started)
			pthread_join(h->swap_thread, NULL); /* the previous one, finished */
		h->swap_thread_started = false;
		if ((errno = pthread_create(&h->swap_thread, NULL, swap_main, sw)) != 0) {
			log_error("%s changed on disk, but cannot be loaded again: %s", h->path, strerror(errno));
			free(sw);
			continue;
		}
		h->swap_thread_started = h->swapping = true;
		log_notice("%s changed on disk: loading it again", h->path);
	}
	for (unsigned i = 0; loading != NULL && i < d->nhosts; i++) {
		struct json_object *entry;
		if (!d->hosts[i].swapping)
			continue;
		entry = json_object_new_object();
		json_object_object_add(entry, GBX_KEY_MODEL, json_object_new_string(dnn_model_name(d->hosts[i].model)));
		json_object_object_add(entry, "path", json_object_new_string(d->hosts[i].path));
		json_object_array_add(loading, entry);
	}
}

/* Pages stay in RAM once touched (gearboxd.conf lock_memory):
 * mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) locks each page the first
 * time it is used, so that a model's mapped weights, the kernels' code and
 * the buffers are not evicted between requests, without reading every mapped
 * library in at start. Page cache reclaim (here a VM's proactive pageout,
 * DAMON) had dropped them: the next request faulted them in from disk, and
 * g=1's p99 in gearbox model bench read 904 us where it is 287. auto: when
 * permitted (CAP_IPC_LOCK, or RLIMIT_MEMLOCK above the daemon's mappings);
 * yes: refuse to start without it. The sanitizers' runtimes ignore mlockall. */
static int
setup_memory_lock(struct daemon *d, char **cause)
{
	const char *why;

	d->memory_locked = false;
	if (d->config.lock_memory == CONFIG_LOCK_NO)
		return 0;
#ifndef MCL_ONFAULT
#define MCL_ONFAULT 4 /* Linux 4.4; older C libraries lack the name */
#endif
#if defined(__SANITIZE_ADDRESS__)
	why = "this build's AddressSanitizer runtime ignores mlockall (a sanitizer build)";
#else
	if (mlockall(MCL_CURRENT | MCL_FUTURE | MCL_ONFAULT) == 0) {
		d->memory_locked = true;
		log_info("memory: pages stay in RAM once touched (mlockall)");
		return 0;
	}
	why = strerror(errno);
#endif
	if (d->config.lock_memory == CONFIG_LOCK_YES)
		return set_cause(cause, "lock_memory = yes, but memory cannot be locked: mlockall: %s: grant CAP_IPC_LOCK "
		                        "(AmbientCapabilities=CAP_IPC_LOCK) or LimitMEMLOCK=infinity", why);
	log_notice("memory not locked, pages may be evicted between requests: mlockall: %s (grant CAP_IPC_LOCK or "
	           "LimitMEMLOCK=infinity, or set lock_memory = no to say so)", why);
	return 0;
}

/* Real time for the workers and their pools, as gearboxd.conf says:
 * auto takes it when permitted, yes refuses to start without it. */
static int
setup_realtime(struct daemon *d, char **cause)
{
	char *why = NULL;
	int prio = d->config.realtime_priority;

	d->realtime_priority = 0;
	if (d->config.realtime == CONFIG_REALTIME_NO)
		return 0;
	if (!gov_realtime_possible(prio)) {
		if (d->config.realtime == CONFIG_REALTIME_YES)
			return set_cause(cause, "realtime = yes, but SCHED_FIFO at priority %d is not permitted: grant "
			                        "CAP_SYS_NICE (AmbientCapabilities=CAP_SYS_NICE) or LimitRTPRIO=%d",
			                 prio, prio);
		log_notice("workers run in SCHED_OTHER: SCHED_FIFO at priority %d is not permitted (grant CAP_SYS_NICE, "
		           "or set realtime = no to say so)", prio);
		return 0;
	}
	if (gov_realtime_bound(d->config.realtime_limit_ms * 1000ul, &why) != 0) {
		log_warning("real time without the RLIMIT_RTTIME bound: %s", why);
		free(why);
	}
	d->realtime_priority = prio;
	log_info("workers and their pools run in SCHED_FIFO at priority %d (a thread that runs %u ms without "
	         "blocking drops to SCHED_OTHER)",
	         prio, d->config.realtime_limit_ms);
	return 0;
}

static void
setup_pm_qos(struct daemon *d)
{
	static const enum gov_pm_qos_mode modes[] = {
		[CONFIG_PM_QOS_AUTO] = GOV_PM_QOS_AUTO,
		[CONFIG_PM_QOS_RESUME] = GOV_PM_QOS_RESUME_LATENCY,
		[CONFIG_PM_QOS_DMA] = GOV_PM_QOS_DMA_LATENCY,
		[CONFIG_PM_QOS_NO] = GOV_PM_QOS_OFF,
	};
	struct gov_pm_qos_config cfg = { modes[d->config.pm_qos], d->config.pm_qos_device, NULL, d->platform };
	char *cause = NULL;

	if (d->config.pm_qos == CONFIG_PM_QOS_NO)
		return;
	if ((d->pm_qos = gov_pm_qos_new(&cfg, &cause)) == NULL) {
		log_warning("no PM QoS requests: %s", cause);
		free(cause);
		return;
	}
	char why[256];
	d->pm_qos_fitting_us = gov_pm_qos_fitting_latency_us(d->pm_qos, why, sizeof(why));
	if (d->config.pm_qos_latency_us == CONFIG_PM_QOS_LATENCY_AUTO)
		log_info("PM QoS: deadline sessions will hold a CPU latency of %u us: %s", d->pm_qos_fitting_us, why);
}

unsigned
pm_qos_latency_us(const struct daemon *d)
{
	return d->config.pm_qos_latency_us == CONFIG_PM_QOS_LATENCY_AUTO ? d->pm_qos_fitting_us
	                                                                 : d->config.pm_qos_latency_us;
}

int
serve_open(struct daemon *d, char **cause)
{
	bool recovered = false;
	struct pol_params calibration;

	pol_cache_dir(d->cache_dir, sizeof(d->cache_dir));
	/* OpenCL is probed in a child process, and only when it is on: the ICD
	 * (PoCL brings LLVM) is loaded here only by an OpenCL placement. */
	if ((d->platform = gov_platform_discover_flags(NULL, d->config.opencl ? 0 : GOV_DISCOVER_NO_OPENCL, cause)) == NULL)
		return -1;
	if (d->config.opencl && d->platform->nopencl == 0)
		log_notice("opencl: no OpenCL placement, going on without OpenCL: %s",
		           d->platform->opencl_error != NULL ? d->platform->opencl_error : "no device");
	char *why = NULL;
	bool unreadable = gov_recover_stale(d->platform, &recovered, &why) != 0;
	if (unreadable) {
		/* settings another run changed may still be changed: nothing to
		 * build on until an operator has looked (issue 21 defect 12) */
		log_error("cannot restore the clock settings a previous run saved: %s; gearboxd will not change "
		          "clocks until that is fixed", why ? why : "?");
		free(why);
		for (unsigned i = 0; i < POL_MAX_PLACES; i++)
			d->dvfs_off[i] = true;
	} else if (recovered) {
		log_event(LOG_NOTICE, GBX_MID_DVFS_RESTORED, NULL,
		          "restored cpufreq/devfreq/PM QoS settings left by a previous run that ended without restoring them");
	}
	if (!unreadable && gov_has_saved_state(d->platform)) {
		/* an operator's `gearbox platform set-freq` hold: not ours to move */
		log_notice("frequencies are held by 'gearbox platform set-freq'; gearboxd will not change them");
		for (unsigned i = 0; i < POL_MAX_PLACES; i++)
			d->dvfs_off[i] = true;
	}
	find_energy_counter(d);
	if (make_places(d, cause) != 0 || setup_realtime(d, cause) != 0 || setup_memory_lock(d, cause) != 0)
		return -1;
	setup_pm_qos(d);
	d->devices = pol_devices_new(d->cache_dir);
	pol_policy_resolve(pol_set_find(&d->policies, d->default_policy), NULL, &calibration);
	if ((d->hosts = calloc(d->config.nmodels ? d->config.nmodels : 1, sizeof(*d->hosts))) == NULL)
		return set_cause(cause, "out of memory");
	for (unsigned i = 0; i < d->config.nmodels; i++) {
		d->nhosts++;
		if (host_open(d, &d->hosts[i], d->config.models[i], &calibration, cause) != 0)
			return -1;
	}
	return 0;
}

/* Threads named for what they serve ("w:cluster0:cpu1"), so that top -H,
 * ps -L and perf say which placement's worker holds a CPU. The kernel
 * keeps 15 bytes: the end of a long name, which tells placements apart. */
static void
name_thread(pthread_t t, const char *prefix, const char *what)
{
	char name[64];
	size_t n = (size_t)snprintf(name, sizeof(name), "%s%s", prefix, what);

	pthread_setname_np(t, n > 15 ? name + n - 15 : name);
}

int
serve_start(struct daemon *d, char **cause)
{
	struct sigaction sa = { .sa_handler = on_sigusr1 };
	sigset_t block;

	/* SIGUSR1 wakes a worker in epoll_pwait (a hand-off); blocked
	 * everywhere else, so it is never lost and never kills. */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	sigemptyset(&block);
	sigaddset(&block, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &block, NULL);
	cpu_set_t mine;
	d->ncpus = sched_getaffinity(0, sizeof(mine), &mine) == 0 ? (unsigned)CPU_COUNT(&mine) : 1;
	for (unsigned p = 0; p < d->nplaces; p++) {
		struct worker *w = &d->workers[p];
		w->daemon = d;
		w->place = p;
		pthread_sigmask(SIG_BLOCK, NULL, &w->wait_mask);
		sigdelset(&w->wait_mask, SIGUSR1);
		if ((errno = pthread_create(&w->thread, NULL, worker_main, w)) != 0)
			return set_cause(cause, "cannot start the worker of %s: %s", d->places[p].name, strerror(errno));
		name_thread(w->thread, "w:", d->places[p].name);
		pthread_mutex_lock(&d->lock);
		w->started = true;
		pthread_mutex_unlock(&d->lock);
	}
	return 0;
}

void
serve_stop(struct daemon *d)
{
	pthread_mutex_lock(&d->lock);
	d->stopping = true;
	for (unsigned p = 0; p < d->nplaces; p++)
		if (d->workers[p].started)
			pthread_kill(d->workers[p].thread, SIGUSR1);
	pthread_mutex_unlock(&d->lock);
	for (unsigned p = 0; p < d->nplaces; p++)
		if (d->workers[p].started) {
			pthread_join(d->workers[p].thread, NULL);
			d->workers[p].started = false;
		}
	for (unsigned p = 0; p < d->nplaces; p++) {
		free(d->workers[p].scratch_in);
		free(d->workers[p].scratch_out);
	}
	for (unsigned i = 0; i < d->nhosts; i++)
		if (d->hosts[i].calibration_thread_started) {
			pthread_join(d->hosts[i].calibration_thread, NULL);
			d->hosts[i].calibration_thread_started = false;
		}
}

void
serve_close(struct daemon *d)
{
	pthread_mutex_lock(&d->lock);
	while (d->nqueue > 0) {
		struct request *r = d->queue[--d->nqueue];
		request_free(r);
	}
	for (unsigned p = 0; p < d->nplaces; p++)
		while (d->workers[p].nmail > 0)
			request_free(d->workers[p].mailbox[--d->workers[p].nmail]);
	pthread_mutex_unlock(&d->lock);
	free(d->queue);
	for (unsigned i = 0; i < d->nhosts; i++)
		if (d->hosts[i].swap_thread_started)
			pthread_join(d->hosts[i].swap_thread, NULL);
	while (d->retired != NULL) {
		struct retired *r = d->retired;
		d->retired = r->next;
		pol_runtime_free(r->runtime);
		pol_control_free(&r->control);
		dnn_model_free(r->model);
		free(r);
	}
	for (unsigned i = 0; i < d->nhosts; i++) {
		struct host *h = &d->hosts[i];
		pol_runtime_free(h->runtime);
		pol_control_free(&h->control);
		dnn_model_free(h->model);
		if (h->lock_made)
			pthread_mutex_destroy(&h->lock);
		free(h->path);
	}
	free(d->hosts);
	pol_devices_free(d->devices);
	gov_pm_qos_free(d->pm_qos);
	/* Put back the frequencies we changed (an operator's hold we never
	 * touched, see serve_open). */
	if (d->changed_freq) {
		char *cause = NULL;
		if (gov_restore(d->platform, &cause) != 0) {
			log_error("cannot restore the CPU frequencies: %s (the next start retries)", cause);
			free(cause);
		} else {
			log_event(LOG_INFO, GBX_MID_DVFS_RESTORED, NULL, "restored the CPU frequencies");
		}
	}
	if (d->platform != NULL)
		gov_platform_free(d->platform);
}

unsigned
host_table(struct host *h, const struct pol_params *params, struct pol_point **points)
{
	unsigned n = 0;

	pthread_mutex_lock(&h->lock);
	if ((*points = calloc(h->control.table_cap ? h->control.table_cap : 1, sizeof(**points))) != NULL)
		n = pol_table_build(&h->control.predictor, params, &h->control.feedback, NULL, *points, h->control.table_cap);
	pthread_mutex_unlock(&h->lock);
	return n;
}

/* PM QoS: held while deadline sessions send, let go after pm_qos_release_s
 * without any. Only the main thread takes and lets go of it: taking it
 * writes the old values to the saved state and syncs that file, which took
 * 1.5 ms on the development VM; in serve_admit, the request that asked for
 * it waited that long in the queue (the first request of every burst after
 * a quiet spell, at every rate). The request runs without it meanwhile: its
 * CPU is awake anyway. */

/* The first deadline request while it is not held asks the main thread for
 * it (daemon.lock held). */
static void
want_pm_qos(struct daemon *d)
{
	if (d->pm_qos == NULL || d->pm_qos_failed || d->pm_qos_wanted || __atomic_load_n(&d->pm_qos_held, __ATOMIC_RELAXED))
		return;
	d->pm_qos_wanted = true;
	wake_main_thread(d); /* on_notice: serve_pm_qos_update */
}

static void
hold_pm_qos(struct daemon *d)
{
	hwloc_bitmap_t cpus = hwloc_bitmap_alloc();
	char *cause = NULL;

	for (unsigned i = 0; i < d->platform->nclusters; i++)
		hwloc_bitmap_or(cpus, cpus, d->platform->clusters[i].cpuset);
	if (gov_pm_qos_acquire(d->pm_qos, cpus, pm_qos_latency_us(d), &cause) != 0) {
		log_warning("cannot hold a PM QoS CPU latency of %u us; deep idle states may cost deadlines: %s",
		            pm_qos_latency_us(d), cause);
		free(cause);
		pthread_mutex_lock(&d->lock);
		d->pm_qos_failed = true; /* said once, not retried */
		pthread_mutex_unlock(&d->lock);
	} else {
		__atomic_store_n(&d->pm_qos_held, true, __ATOMIC_RELAXED);
		log_info("PM QoS: CPU latency held at %u us while deadline sessions send", pm_qos_latency_us(d));
	}
	hwloc_bitmap_free(cpus);
}

void
serve_pm_qos_update(struct daemon *d)
{
	uint64_t now = monotonic_ns();
	bool held, wanted, quiet;

	if (d->pm_qos == NULL)
		return;
	pthread_mutex_lock(&d->lock);
	held = __atomic_load_n(&d->pm_qos_held, __ATOMIC_RELAXED);
	wanted = d->pm_qos_wanted;
	d->pm_qos_wanted = false;
	quiet = now - d->last_deadline_ns > (uint64_t)d->config.pm_qos_release_s * 1000000000ull;
	pthread_mutex_unlock(&d->lock);
	if (held && quiet) {
		__atomic_store_n(&d->pm_qos_held, false, __ATOMIC_RELAXED);
		gov_pm_qos_release(d->pm_qos);
		log_info("PM QoS released: no deadline request for %u s", d->config.pm_qos_release_s);
	} else if (!held && wanted) {
		hold_pm_qos(d);
	}
}
