/* SPDX-License-Identifier: MIT */
/* gearboxd's tenant plan: the sessions planned jointly by the tenant solver
 * (policies/tenants.h), re-planned when the set of tenants changes (a
 * session opens or closes, a budget changes, a model is loaded, a session's
 * request rate is learnt or moves, a new session's first requests have
 * been measured) and every few seconds while sessions
 * exist (feedback has learnt interference since).
 *
 * Each session is a tenant: its model, its deadline and energy budget (less
 * its connection's return path, at most half the deadline), its accuracy floor, its rate (what OPEN or
 * BUDGET said, else what its arrivals show, else one request per two
 * deadlines) and its weight (OPEN/BUDGET "weight", default 1). Its
 * candidates are its model's operating points as the control loop predicts
 * them now (calibration and feedback), under its policy. Placements are the
 * daemon's: each has one worker that runs one request at a time, so a
 * placement's capacity is time (sum of rate x latency <= PLAN_UTIL), not
 * CPUs. An OpenCL device of CPU type (PoCL) is left out of the plan: it
 * computes on the clusters' CPUs, so its capacity is theirs.
 *
 * What the plan gives a session is room: per request, the control loop
 * still chooses (feedback, hysteresis, the shared frequency votes), but at
 * most the planned g (unless it shares nothing, see plan_room), threads
 * and frequency, on the planned placement
 * (plan_room), or on a placement no other session was promised, or on
 * another CPU of its planned cluster where the others' promised shares leave
 * room for its own and they would not wait behind it past their deadlines
 * (may_borrow). Under interference a session may go below
 * its point; it never takes room another was promised. A session the plan
 * could not serve runs on the placements nobody was promised, as its policy
 * chooses, or at one group wherever it fits best when every placement is
 * promised.
 *
 * The solve runs on a thread of its own: the problem is copied under
 * daemon.lock (the tables under each model's lock, after it), solved with
 * no lock held, and the result applied under daemon.lock if no newer plan
 * was asked for meanwhile.
 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/cause.h"
#include "common/clock.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "policies/milp.h"
#include "policies/tenants.h"

#define PLAN_UTIL 0.8        /* of each placement's time: the rest absorbs queueing and jitter */
#define PLAN_PERIOD_S 2      /* re-plan this often while sessions exist */
#define PLAN_LIMIT_S 0.2     /* per MIP solve; then the best found (or greedy's) */

struct snapshot {
	unsigned n;
	uint32_t session[TEN_MAX_TENANTS];
	unsigned host[TEN_MAX_TENANTS];
	struct pol_params params[TEN_MAX_TENANTS];
	struct ten_tenant t[TEN_MAX_TENANTS];
	const char *rate_from[TEN_MAX_TENANTS];
	bool outside[TEN_MAX_TENANTS];  /* no point of its on a placement the plan covers */
	int place[TEN_MAX_TENANTS];     /* the placement the plan in force gave it, -1 = none */
	uint64_t generation;
	char reason[128];
};

static double
session_rate(const struct session *s, const char **from)
{
	if (s->budget.rate_hz > 0)
		return *from = "said", s->budget.rate_hz;
	if (arrival_is_steady(&s->arrival))
		return *from = "measured", 1e9 / s->arrival.period_ns;
	if (s->budget.deadline_us > 0)
		return *from = "guessed", 1e6 / (2.0 * (double)s->budget.deadline_us);
	return *from = "guessed", 10.0;
}

void
plan_request(struct daemon *d, const char *why)
{
	struct daemon_plan *pl = &d->plan;

	if (!pl->enabled)
		return;
	pl->wanted++;
	snprintf(pl->why, sizeof(pl->why), "%s", why);
	pthread_cond_signal(&pl->cond);
}

/* The tenants as they are now (daemon.lock held). */
static void
take_snapshot(struct daemon *d, struct snapshot *sn)
{
	memset(sn, 0, sizeof(*sn));
	sn->generation = d->plan.wanted;
	snprintf(sn->reason, sizeof(sn->reason), "%s", d->plan.why);
	for (unsigned k = 0; k < d->sessions.n && sn->n < TEN_MAX_TENANTS; k++) {
		struct session *s = d->sessions.v[k];
		unsigned i = sn->n++;
		double ret_us = s->owner ? return_path_slow(&s->owner->returns) : 0;
		sn->session[i] = s->id;
		sn->host[i] = (unsigned)(s->host - d->hosts);
		sn->place[i] = s->planned && s->plan_served ? (int)s->plan_place : -1;
		resolve_policy(d, s->host, s->policy, &sn->params[i]);
		snprintf(sn->t[i].name, sizeof(sn->t[i].name), "session %u", s->id);
		snprintf(sn->t[i].model, sizeof(sn->t[i].model), "%s", dnn_model_name(s->host->model));
		sn->t[i].rate_hz = session_rate(s, &sn->rate_from[i]);
		/* the connection's return path (what its client measured, about the
		 * 90th percentile) comes off the deadline, at most half of it: on a
		 * loaded machine the client's own wake-ups can exceed the deadline,
		 * and a plan with no room for the session helps nobody */
		sn->t[i].deadline_us =
		        s->budget.deadline_us ? (double)s->budget.deadline_us - fmin(ret_us, 0.5 * (double)s->budget.deadline_us)
		                              : 0;
		sn->t[i].energy_uj = (double)s->budget.energy_uj;
		sn->t[i].min_accuracy = fmax(s->budget.min_accuracy, sn->params[i].min_accuracy);
		sn->t[i].weight = s->budget.weight > 0 ? s->budget.weight : 1;
		s->planned_rate = sn->t[i].rate_hz;
	}
}

/* Build and solve (no daemon.lock held). */
static int
solve(struct daemon *d, struct snapshot *sn, struct ten_problem *p, struct ten_result *r, char **cause)
{
	ten_problem_init(p, d->places, d->nplaces);
	p->objective = TEN_MAX_ACCURACY;
	p->serial = true;
	p->max_util = PLAN_UTIL;
	p->time_limit_s = PLAN_LIMIT_S;
	p->power_cap_w = d->config.plan_power_w;
	p->memory_bytes = d->config.plan_memory_mib * 1048576.0;
	if (sn->n > 0)
		p->margin = sn->params[0].margin;
	for (unsigned i = 0; i < sn->n; i++) {
		struct host *h = &d->hosts[sn->host[i]];
		struct pol_point *pts;
		struct ten_candidate *c;
		unsigned n, cap;
		pthread_mutex_lock(&h->lock);
		cap = pol_table_capacity(&h->control.predictor);
		pts = calloc(cap ? cap : 1, sizeof(*pts));
		c = calloc(cap ? cap : 1, sizeof(*c));
		if (pts == NULL || c == NULL) {
			pthread_mutex_unlock(&h->lock);
			free(pts), free(c);
			return set_cause(cause, "out of memory");
		}
		n = pol_table_build(&h->control.predictor, &sn->params[i], &h->control.feedback, NULL, pts, cap);
		/* its model's weights at g (mapped once: the solver counts them once
		 * for every session of the model, tenants.h) and the buffers it
		 * works in */
		double weights[POL_MAX_GROUPS + 1] = { 0 }, buffers[POL_MAX_GROUPS + 1] = { 0 };
		if (p->memory_bytes > 0)
			for (unsigned g = 1; g <= POL_MAX_GROUPS && g <= dnn_model_groups(h->model); g++) {
				weights[g] = (double)dnn_model_weight_bytes(h->model, g);
				buffers[g] = (double)dnn_model_buffer_bytes(h->model, g);
			}
		pthread_mutex_unlock(&h->lock);
		unsigned m = 0;
		for (unsigned k = 0; k < n; k++) {
			/* an OpenCL device of CPU type (PoCL) computes on the clusters'
			 * own CPUs: as a placement of its own it would look like room
			 * the clusters do not lose */
			if (d->places[pts[k].place].kind == POL_PLACE_OPENCL && !d->places[pts[k].place].is_gpu)
				continue;
			c[m].point = pts[k];
			c[m].weight_bytes = pts[k].groups <= POL_MAX_GROUPS ? weights[pts[k].groups] : 0;
			c[m].mem_bytes = pts[k].groups <= POL_MAX_GROUPS ? buffers[pts[k].groups] : 0;
			m++;
		}
		sn->outside[i] = m == 0;
		int ok = ten_problem_add(p, &sn->t[i], c, m, cause);
		free(pts), free(c);
		if (ok < 0)
			return -1;
		p->current_place[ok] = sn->place[i];
	}
	return ten_solve(p, true, r, cause);
}

/* Keep the result (daemon.lock held). */
static void
apply(struct daemon *d, const struct snapshot *sn, const struct ten_problem *p, const struct ten_result *r)
{
	struct daemon_plan *pl = &d->plan;
	json_object *o = json_object_new_object(), *ts = json_object_new_array(), *ps = json_object_new_array(),
	            *cs = json_object_new_array(), *mip = json_object_new_object();

	for (unsigned i = 0; i < sn->n; i++) {
		struct session *s = session_find(&d->sessions, sn->session[i]);
		json_object *t = json_object_new_object();
		const struct ten_candidate *c = r->a[i].cand >= 0 ? &p->cands[i][r->a[i].cand] : NULL;
		json_object_object_add(t, GBX_KEY_SESSION, json_object_new_int64(sn->session[i]));
		json_object_object_add(t, GBX_KEY_MODEL, json_object_new_string(sn->t[i].model));
		json_object_object_add(t, GBX_KEY_RATE_HZ, json_object_new_double(sn->t[i].rate_hz));
		json_object_object_add(t, "rate_from", json_object_new_string(sn->rate_from[i]));
		json_object_object_add(t, GBX_KEY_DEADLINE_US, json_object_new_double(sn->t[i].deadline_us));
		json_object_object_add(t, GBX_KEY_WEIGHT, json_object_new_double(sn->t[i].weight));
		json_object_object_add(t, "served", json_object_new_boolean(c != NULL));
		if (c != NULL) {
			json_object_object_add(t, GBX_KEY_GROUPS, json_object_new_int((int)c->point.groups));
			json_object_object_add(t, GBX_KEY_PLACEMENT, json_object_new_string(d->places[c->point.place].name));
			json_object_object_add(t, GBX_KEY_THREADS, json_object_new_int((int)c->point.threads));
			json_object_object_add(t, GBX_KEY_FREQ_KHZ, json_object_new_int64((int64_t)c->point.khz));
			json_object_object_add(t, "accuracy", json_object_new_double(c->point.accuracy));
			json_object_object_add(t, GBX_KEY_PREDICTED_US, json_object_new_double(c->point.latency_us));
			json_object_object_add(t, "util", json_object_new_double(r->a[i].util));
		}
		json_object_object_add(t, "why", json_object_new_string(
		        sn->outside[i] ? "outside the plan: its policy allows only placements the plan does not cover (an "
		                         "OpenCL device of CPU type); chosen for request by request"
		                       : r->a[i].why));
		json_object_object_add(t, "outside", json_object_new_boolean(sn->outside[i]));
		json_object_array_add(ts, t);
		if (s == NULL)
			continue; /* closed while solving: the next plan leaves it out */
		s->plan_gen = sn->generation;
		s->planned = !sn->outside[i];
		s->plan_served = c != NULL;
		if (c != NULL) {
			s->plan_groups = c->point.groups;
			s->plan_place = c->point.place;
			s->plan_threads = c->point.threads;
			s->plan_util = r->a[i].util;
			s->plan_latency_us = c->point.tail_us > 0 ? c->point.tail_us : c->point.latency_us;
			s->plan_deadline_us = sn->t[i].deadline_us;
			s->plan_khz = p->places[c->point.place].dvfs && p->places[c->point.place].nfreqs > 1 ? c->point.khz : 0;
		} else {
			s->plan_util = s->plan_latency_us = s->plan_deadline_us = 0;
		}
	}
	for (unsigned q = 0; q < p->nplaces; q++) {
		json_object *x = json_object_new_object();
		json_object_object_add(x, "name", json_object_new_string(p->places[q].name));
		json_object_object_add(x, "used", json_object_new_boolean(r->freq[q] >= 0));
		json_object_object_add(x, GBX_KEY_FREQ_KHZ,
		                       json_object_new_int64(r->freq[q] >= 0 ? (int64_t)p->places[q].freqs_khz[r->freq[q]] : 0));
		json_object_object_add(x, "util", json_object_new_double(r->util[q]));
		json_object_object_add(x, "capacity", json_object_new_double(PLAN_UTIL));
		json_object_array_add(ps, x);
	}
	for (unsigned k = 0; k < r->nbind; k++) {
		json_object *b = json_object_new_object();
		json_object_object_add(b, "what", json_object_new_string(r->bind[k].what));
		json_object_object_add(b, "binds", json_object_new_boolean(r->bind[k].binds));
		json_object_object_add(b, "used", json_object_new_double(r->bind[k].used));
		json_object_object_add(b, "limit", json_object_new_double(r->bind[k].limit));
		json_object_object_add(b, "gain", json_object_new_double(r->bind[k].gain));
		json_object_object_add(b, "weight_gain", json_object_new_double(r->bind[k].weight_gain));
		json_object_array_add(cs, b);
	}
	json_object_object_add(mip, "rows", json_object_new_int((int)r->rows));
	json_object_object_add(mip, "cols", json_object_new_int((int)r->cols));
	json_object_object_add(mip, "binaries", json_object_new_int((int)r->binaries));
	json_object_object_add(mip, "candidates_kept", json_object_new_int((int)r->candidates_kept));
	json_object_object_add(mip, "candidates_total", json_object_new_int((int)r->candidates_total));
	json_object_object_add(mip, "solve_ms", json_object_new_double(r->solve_us / 1e3));
	json_object_object_add(mip, "solve_cpu_ms", json_object_new_double(r->solve_cpu_us / 1e3));
	json_object_object_add(mip, "proven", json_object_new_boolean(r->proven));
	json_object_object_add(o, "generation", json_object_new_int64((int64_t)sn->generation));
	json_object_object_add(o, GBX_KEY_REASON, json_object_new_string(sn->reason));
	json_object_object_add(o, "all_served", json_object_new_boolean(r->all_served));
	json_object_object_add(o, "dropped_weight", json_object_new_double(r->dropped_weight));
	json_object_object_add(o, "weighted_accuracy", json_object_new_double(r->weighted_accuracy));
	json_object_object_add(o, "tenants", ts);
	json_object_object_add(o, "places", ps);
	json_object_object_add(o, "constraints", cs);
	json_object_object_add(o, "mip", mip);
	json_object_put(pl->last);
	pl->last = o;
	pl->margin = p->margin;
	pl->made_ns = monotonic_ns();
	pl->done = sn->generation;
	pl->plans++;
}

/* What a plan gives whom: each session's point, or that it was dropped. */
static uint64_t
outcome_hash(const struct snapshot *sn, const struct ten_problem *p, const struct ten_result *r)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */

	for (unsigned i = 0; i < sn->n; i++) {
		const struct ten_candidate *c = r->a[i].cand >= 0 ? &p->cands[i][r->a[i].cand] : NULL;
		uint64_t v[5] = { sn->session[i], c ? c->point.groups : 0, c ? c->point.place : UINT_MAX,
		                  c ? c->point.threads : 0, c ? c->point.khz : 0 };
		for (unsigned k = 0; k < 5; k++)
			h = (h ^ v[k]) * 1099511628211ull;
	}
	return h;
}

static void *
planner_main(void *arg)
{
	struct daemon *d = arg;
	struct daemon_plan *pl = &d->plan;
	static struct snapshot sn;
	static struct ten_problem p;
	static struct ten_result r;

	pthread_mutex_lock(&d->lock);
	while (!d->stopping) {
		if (pl->wanted == pl->done) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_sec += PLAN_PERIOD_S;
			if (pthread_cond_timedwait(&pl->cond, &d->lock, &ts) == ETIMEDOUT && d->sessions.n > 0 &&
			    pl->wanted == pl->done) {
				pl->wanted++;
				snprintf(pl->why, sizeof(pl->why), "periodic (what feedback learnt since)");
			}
			continue;
		}
		take_snapshot(d, &sn);
		pthread_mutex_unlock(&d->lock);
		char *cause = NULL;
		int rc = solve(d, &sn, &p, &r, &cause);
		pthread_mutex_lock(&d->lock);
		if (rc != 0) {
			log_warning("plan: %s", cause ? cause : "the solver failed");
			free(cause);
			pl->done = sn.generation;
		} else if (pl->wanted == sn.generation || pl->wanted - sn.generation > 8) {
			uint64_t outcome = outcome_hash(&sn, &p, &r);
			apply(d, &sn, &p, &r);
			/* a saturating session's learnt rate moves all the time: say
			 * only what changed something, the rest at debug level */
			log_msg(outcome != pl->outcome ? LOG_INFO : LOG_DEBUG,
			        "plan %llu (%s): %u session%s, %u served, weighted accuracy %.4f, solved in %.1f ms",
			        (unsigned long long)sn.generation, sn.reason, sn.n, sn.n == 1 ? "" : "s", sn.n - r.ndropped,
			        r.weighted_accuracy, r.solve_us / 1e3);
			pl->outcome = outcome;
		}
		ten_problem_clear(&p);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int
plan_start(struct daemon *d, char **cause)
{
	struct daemon_plan *pl = &d->plan;

	pthread_cond_init(&pl->cond, NULL);
	pl->enabled = d->config.plan && milp_available();
	if (d->config.plan && !milp_available())
		log_notice("plan: %s; sessions are chosen for one by one", milp_backend());
	if (!pl->enabled)
		return 0;
	if ((errno = pthread_create(&pl->thread, NULL, planner_main, d)) != 0)
		return set_cause(cause, "cannot start the planner: %s", strerror(errno));
	pthread_setname_np(pl->thread, "gbx-planner");
	pl->started = true;
	return 0;
}

void
plan_stop(struct daemon *d)
{
	struct daemon_plan *pl = &d->plan;

	if (pl->started) {
		pthread_mutex_lock(&d->lock);
		pthread_cond_signal(&pl->cond);
		pthread_mutex_unlock(&d->lock);
		pthread_join(pl->thread, NULL);
		pl->started = false;
	}
	json_object_put(pl->last);
	pl->last = NULL;
}

/* Whether placement q was promised to a served session other than `s`. */
static bool
promised_to_others(struct daemon *d, const struct session *s, unsigned q)
{
	for (unsigned k = 0; k < d->sessions.n; k++) {
		const struct session *o = d->sessions.v[k];
		if (o != s && o->planned && o->plan_served && o->plan_place == q)
			return true;
	}
	return false;
}

/* May `s` run on placement q besides its own? When nobody else was
 * promised q, or when q is another CPU of the cluster its plan put it on
 * (the same CPUs: its planned point is a fair guess of what it takes there),
 * the shares the others were promised there leave room for its own, and
 * none of them would wait behind its planned inference past its deadline
 * (ten_may_share with their deadlines only). Whether `s` itself would wait
 * too long behind them is its own request's to judge: the control loop sees
 * how long each placement stays busy (control.h's wait_us) and takes q only
 * when that fits. Room left over is taken from nobody. This is what lets a
 * tenant step aside when its CPU is taken (a co-runner, a client's wake-up),
 * as per-request selection would: bench/tenants' tight tenant, held to its
 * CPU by a rule that also counted its own wait behind the others, ran on a
 * CPU stress-ng shared at g=2.3-3.0 of 4 for seconds while the other CPU,
 * promised to two tenants busy 2 % of the time, stood idle. (daemon.lock) */
static bool
may_borrow(struct daemon *d, const struct session *s, unsigned q)
{
	if (!s->plan_served)
		return !promised_to_others(d, s, q);
	const struct pol_place *mine = &d->places[s->plan_place], *there = &d->places[q];
	bool same_cpus = mine->kind == POL_PLACE_CPU && there->kind == POL_PLACE_CPU && mine->index == there->index;
	double util = s->plan_util;

	for (unsigned k = 0; k < d->sessions.n; k++) {
		const struct session *o = d->sessions.v[k];
		if (o == s || !o->planned || !o->plan_served || o->plan_place != q)
			continue;
		if (!same_cpus ||
		    !ten_may_share(0, s->plan_latency_us, o->plan_deadline_us, o->plan_latency_us, d->plan.margin))
			return false;
		util += o->plan_util;
	}
	return util <= PLAN_UTIL + 1e-9;
}

/* The placements the policy allows that `s` may use (may_borrow), after
 * `first` (when it is not UINT_MAX), as a placements list: the number of
 * them. */
static unsigned
usable_placements(struct daemon *d, const struct session *s, const char *allowed, unsigned first, char *out,
                  size_t size, bool *shared)
{
	size_t used = 0;
	unsigned n = 0;

	out[0] = '\0';
	*shared = false;
	if (first != UINT_MAX) {
		used = (size_t)snprintf(out, size, "%s", d->places[first].name), n++;
		*shared = promised_to_others(d, s, first);
	}
	for (unsigned q = 0; q < d->nplaces && used < size; q++) {
		/* PoCL's CPU device is the clusters' CPUs, left out of the plan */
		bool cpu_device = d->places[q].kind == POL_PLACE_OPENCL && !d->places[q].is_gpu;
		if (q == first || cpu_device || d->places[q].disabled || !pol_place_allowed(&d->places[q], allowed) ||
		    !may_borrow(d, s, q))
			continue;
		used += (size_t)snprintf(out + used, size - used, "%s%s", used ? " " : "", d->places[q].name);
		n++;
		*shared |= promised_to_others(d, s, q);
	}
	return n;
}

/* Whether served session s may run above its planned g: it shares no
 * placement with another session either way (it may borrow none that others
 * were promised, `shared` from usable_placements, and nobody may borrow its
 * own), all its groups fit its placement's capacity (the share taken as
 * growing with g), and the plan has no power cap or memory limit, which a
 * higher g would draw on. Then more groups take nothing from anyone.
 * (daemon.lock) */
static bool
may_exceed_planned_groups(struct daemon *d, const struct session *s, bool shared)
{
	unsigned groups = dnn_model_groups(s->host->model);

	if (shared || s->plan_groups == 0 || d->config.plan_power_w > 0 || d->config.plan_memory_mib > 0 ||
	    s->plan_util * groups / s->plan_groups > PLAN_UTIL + 1e-9)
		return false;
	for (unsigned k = 0; k < d->sessions.n; k++) {
		const struct session *o = d->sessions.v[k];
		if (o != s && o->planned && o->plan_served && o->plan_place != s->plan_place &&
		    may_borrow(d, o, s->plan_place))
			return false;
	}
	return true;
}

void
plan_room(struct daemon *d, const struct session *s, struct pol_params *params)
{
	char room[sizeof(params->placements)];
	bool shared;

	if (!d->plan.enabled || (s->plan_gen != 0 && !s->planned))
		return; /* no plan, or outside it */
	if (s->plan_gen == 0 || !s->plan_served) {
		/* whatever is left: placements nobody was promised, as its policy
		 * chooses; where every one is promised, one group. A session not
		 * planned yet gets the same until its first plan lands: its
		 * requests would otherwise take room promised to others (as they
		 * did while the planner solved, in plan.sh under the sanitizers) */
		if (usable_placements(d, s, params->placements, UINT_MAX, room, sizeof(room), &shared) > 0)
			snprintf(params->placements, sizeof(params->placements), "%s", room);
		else
			params->max_groups = 1;
		return;
	}
	/* its planned placement, and those it may borrow: one saturating
	 * client (the solver gives each tenant one placement) would otherwise
	 * leave the other CPUs idle, and one whose CPU a co-runner took could
	 * not step aside */
	usable_placements(d, s, params->placements, s->plan_place, room, sizeof(room), &shared);
	snprintf(params->placements, sizeof(params->placements), "%s", room);
	/* At most the planned g, unless it shares no placement with anyone
	 * (may_exceed_planned_groups): then the control loop keeps its deadline
	 * request by request. The plan's g
	 * is chosen from the return path and the interference of the moment it
	 * was made, every few seconds: bench/tenants' tight tenant, alone on
	 * its CPU, had been held at g<=3 for 2 s by one slow return path. */
	if (!may_exceed_planned_groups(d, s, shared)) {
		if (params->max_groups == 0 || params->max_groups > s->plan_groups)
			params->max_groups = s->plan_groups;
		if (params->min_groups > params->max_groups)
			params->min_groups = params->max_groups;
	}
	if (params->max_threads == 0 || params->max_threads > s->plan_threads)
		params->max_threads = s->plan_threads;
	if (s->plan_khz && (params->max_khz == 0 || params->max_khz > s->plan_khz))
		params->max_khz = s->plan_khz;
	if (params->min_khz > params->max_khz && params->max_khz)
		params->min_khz = 0;
}

/* The last plan's tenants, each with "also_on": the placements besides its
 * own that its requests may use now (plan_room's, its policy included;
 * empty when not served), and the served ones with "groups_capped": false
 * when it may run above its planned g (may_exceed_planned_groups).
 * (daemon.lock) */
static json_object *
tenants_with_room(struct daemon *d, json_object *tenants)
{
	json_object *out = NULL;

	if (json_object_deep_copy(tenants, &out, NULL) != 0)
		return json_object_get(tenants);
	for (size_t i = 0; i < json_object_array_length(out); i++) {
		json_object *t = json_object_array_get_idx(out, i), *also = json_object_new_array();
		struct session *s = session_find(&d->sessions,
		                                 (uint32_t)json_object_get_int64(json_object_object_get(t, GBX_KEY_SESSION)));
		if (s != NULL && s->planned && s->plan_served) {
			struct pol_params params;
			char room[sizeof(params.placements)], *save = NULL;
			bool shared;
			resolve_policy(d, s->host, s->policy, &params);
			usable_placements(d, s, params.placements, s->plan_place, room, sizeof(room), &shared);
			/* the first is its own */
			strtok_r(room, " ", &save);
			for (char *name = strtok_r(NULL, " ", &save); name != NULL; name = strtok_r(NULL, " ", &save))
				json_object_array_add(also, json_object_new_string(name));
			json_object_object_add(t, "groups_capped",
			                       json_object_new_boolean(!may_exceed_planned_groups(d, s, shared)));
		}
		json_object_object_add(t, "also_on", also);
	}
	return out;
}

json_object *
plan_json(struct daemon *d)
{
	struct daemon_plan *pl = &d->plan;
	json_object *o = json_object_new_object();

	json_object_object_add(o, "enabled", json_object_new_boolean(pl->enabled));
	json_object_object_add(o, "solver", json_object_new_string(milp_backend()));
	if (!pl->enabled) {
		json_object_object_add(o, GBX_KEY_REASON,
		                       json_object_new_string(!d->config.plan ? "plan = no in gearboxd.conf" : milp_backend()));
		return o;
	}
	json_object_object_add(o, "plans", json_object_new_int64((int64_t)pl->plans));
	json_object_object_add(o, "pending", json_object_new_boolean(pl->wanted != pl->done));
	if (pl->last != NULL) {
		json_object_object_add(o, "age_s", json_object_new_double((double)(monotonic_ns() - pl->made_ns) / 1e9));
		json_object_object_foreach(pl->last, key, val) json_object_object_add(
		        o, key, strcmp(key, "tenants") == 0 ? tenants_with_room(d, val) : json_object_get(val));
	}
	return o;
}
