/* SPDX-License-Identifier: MIT */
/* Statistics: every finished INFER is counted here once, for its session,
 * its model and the daemon; STATUS and STATS are built from those counts.
 * Every call runs with daemon.lock held. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"

void
stats_count(struct daemon *d, const struct request *r)
{
	struct session *s = session_find(&d->sessions, r->session);
	struct host *h = r->host;
	bool met = request_met(r);

	d->served++;
	h->requests++;
	h->last_latency_us = r->latency_us;
	h->last_groups = r->choice.point.groups;
	h->last_threads = r->choice.point.threads;
	h->last_khz = r->khz;
	snprintf(h->placement, sizeof(h->placement), "%s", d->places[r->choice.point.place].name);
	if (r->budget.deadline_us) {
		d->deadline_total++, d->deadline_met += met;
		h->deadline_total++, h->deadline_met += met;
	}
	if (s == NULL) /* closed while it ran */
		return;
	s->recent_us[s->requests % SESSION_WINDOW] = request_e2e_us(r);
	s->requests++;
	s->groups_sum += r->choice.point.groups;
	if (r->budget.deadline_us) {
		s->deadline_total++;
		s->deadline_met += met;
	}
}

static struct json_object *
rate_or_null(uint64_t met, uint64_t total)
{
	return total ? json_object_new_double((double)met / (double)total) : NULL;
}

static int
compare_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

static struct json_object *
host_json(const struct host *h)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "name", json_object_new_string(dnn_model_name(h->model)));
	json_object_object_add(o, GBX_KEY_PLACEMENT, json_object_new_string(h->placement));
	json_object_object_add(o, GBX_KEY_THREADS, json_object_new_int((int)h->last_threads));
	json_object_object_add(o, GBX_KEY_FREQ_KHZ, json_object_new_int64((int64_t)h->last_khz));
	json_object_object_add(o, "calibrated_points", json_object_new_int((int)h->control.predictor.measurements));
	json_object_object_add(o, "layer_plans", plans_json(h));
	json_object_object_add(o, "queued", json_object_new_int((int)h->queued));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)h->requests));
	json_object_object_add(o, "busy_rejections", json_object_new_int64((int64_t)h->busy_rejections));
	json_object_object_add(o, "last_groups", json_object_new_int((int)h->last_groups));
	json_object_object_add(o, "last_latency_us", json_object_new_double(h->last_latency_us));
	json_object_object_add(o, "deadline_hit_rate", rate_or_null(h->deadline_met, h->deadline_total));
	return o;
}

static struct json_object *
workers_json(const struct daemon *d)
{
	struct json_object *list = json_object_new_array();

	for (unsigned p = 0; p < d->nplaces; p++) {
		const struct worker *w = &d->workers[p];
		struct json_object *o = json_object_new_object();
		json_object_object_add(o, GBX_KEY_PLACEMENT, json_object_new_string(d->places[p].name));
		json_object_object_add(o, "busy", json_object_new_boolean(w->busy));
		json_object_object_add(o, "served", json_object_new_int64((int64_t)w->served));
		json_object_object_add(o, "warmups", json_object_new_int64((int64_t)w->warmups));
		json_object_object_add(o, "realtime", json_object_new_boolean(w->realtime));
		json_object_object_add(o, "realtime_now", json_object_new_boolean(__atomic_load_n(&w->in_fifo, __ATOMIC_RELAXED)));
		json_object_object_add(o, "duty", json_object_new_double(w->duty));
		json_object_object_add(o, "saturated_shares", json_object_new_int64((int64_t)w->shared));
		json_object_array_add(list, o);
	}
	return list;
}

static struct json_object *
session_brief(const struct session *s)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, GBX_KEY_SESSION, json_object_new_int64(s->id));
	json_object_object_add(o, GBX_KEY_MODEL, json_object_new_string(dnn_model_name(s->host->model)));
	json_object_object_add(o, "uid", json_object_new_int((int)s->uid));
	json_object_object_add(o, GBX_KEY_DEADLINE_US, json_object_new_int64((int64_t)s->budget.deadline_us));
	json_object_object_add(o, GBX_KEY_ENERGY_UJ, json_object_new_int64((int64_t)s->budget.energy_uj));
	json_object_object_add(o, GBX_KEY_MIN_ACCURACY, json_object_new_double(s->budget.min_accuracy));
	json_object_object_add(o, GBX_KEY_POLICY, json_object_new_string(s->policy));
	json_object_object_add(o, "period_us", arrival_next_ns(&s->arrival) ? json_object_new_double(s->arrival.period_ns / 1e3)
	                                                                       : NULL);
	return o;
}

bool
stats_may_see(const struct conn *viewer, const struct session *s)
{
	return viewer == NULL || viewer->admin || s->uid == viewer->uid;
}

/* Other users' sessions, in aggregate only: how many, and their deadline
 * hit rate. */
static struct json_object *
others_json(const struct daemon *d, const struct conn *viewer)
{
	struct json_object *o = json_object_new_object();
	uint64_t n = 0, met = 0, total = 0;

	for (unsigned i = 0; i < d->sessions.n; i++) {
		const struct session *s = d->sessions.v[i];
		if (!stats_may_see(viewer, s)) {
			n++;
			met += s->deadline_met;
			total += s->deadline_total;
		}
	}
	json_object_object_add(o, "sessions", json_object_new_int64((int64_t)n));
	json_object_object_add(o, "deadline_hit_rate", rate_or_null(met, total));
	return o;
}

struct json_object *
stats_status(struct daemon *d, const struct conn *viewer)
{
	struct json_object *o = json_object_new_object(), *models = json_object_new_array();
	struct json_object *pl = json_object_new_array(), *list = json_object_new_array();

	for (unsigned i = 0; i < d->nhosts; i++)
		json_object_array_add(models, host_json(&d->hosts[i]));
	for (unsigned i = 0; i < d->policies.n; i++)
		json_object_array_add(pl, json_object_new_string(d->policies.policies[i].params.name));
	for (unsigned i = 0; i < d->sessions.n; i++)
		if (stats_may_see(viewer, d->sessions.v[i]))
			json_object_array_add(list, session_brief(d->sessions.v[i]));
	json_object_object_add(o, "server", json_object_new_string("gearboxd"));
	json_object_object_add(o, "version", json_object_new_string(PACKAGE_VERSION));
	json_object_object_add(o, "uptime_s", json_object_new_int64((int64_t)(time(NULL) - d->started)));
	json_object_object_add(o, "clients", json_object_new_int((int)d->nconns));
	json_object_object_add(o, "sessions", json_object_new_int((int)d->sessions.n));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)d->requests));
	json_object_object_add(o, "served", json_object_new_int64((int64_t)d->served));
	json_object_object_add(o, "requests_per_s", json_object_new_double(d->requests_per_s));
	json_object_object_add(o, "deadline_hit_rate", rate_or_null(d->deadline_met, d->deadline_total));
	json_object_object_add(o, "dvfs", json_object_new_boolean(d->platform->cpufreq));
	/* the same name as a RESULT's energy_source: the sensor, else the power model */
	json_object_object_add(o, GBX_KEY_ENERGY_SOURCE,
	                       json_object_new_string(d->energy_counter ? d->energy_counter->name
	                                              : d->nplaces > 0 ? d->places[0].power_source : "estimate"));
	json_object_object_add(o, "realtime_demotions", json_object_new_int64((int64_t)gov_realtime_demotions()));
	json_object_object_add(o, "pm_qos", json_object_new_boolean(__atomic_load_n(&d->pm_qos_held, __ATOMIC_RELAXED)));
	json_object_object_add(o, "pm_qos_latency_us",
	                       d->pm_qos != NULL ? json_object_new_int64(pm_qos_latency_us(d)) : NULL);
	json_object_object_add(o, "memory_locked", json_object_new_boolean(d->memory_locked));
	json_object_object_add(o, "models", models);
	json_object_object_add(o, "workers", workers_json(d));
	json_object_object_add(o, "policies", pl);
	json_object_object_add(o, "default_policy", json_object_new_string(d->default_policy));
	json_object_object_add(o, "session_list", list);
	json_object_object_add(o, "other_users", others_json(d, viewer));
	return o;
}

struct json_object *
stats_session(const struct session *s)
{
	struct json_object *o = json_object_new_object(), *lat = json_object_new_object();
	unsigned n = s->requests < SESSION_WINDOW ? (unsigned)s->requests : SESSION_WINDOW;
	double sorted[SESSION_WINDOW];

	memcpy(sorted, s->recent_us, n * sizeof(double));
	qsort(sorted, n, sizeof(double), compare_double);
	json_object_object_add(o, GBX_KEY_SESSION, json_object_new_int64(s->id));
	json_object_object_add(o, GBX_KEY_MODEL, json_object_new_string(dnn_model_name(s->host->model)));
	json_object_object_add(o, "requests", json_object_new_int64((int64_t)s->requests));
	json_object_object_add(o, "mean_groups",
	                       s->requests ? json_object_new_double((double)s->groups_sum / (double)s->requests) : NULL);
	json_object_object_add(o, "deadline_hit_rate", rate_or_null(s->deadline_met, s->deadline_total));
	if (n > 0) {
		json_object_object_add(lat, "p50", json_object_new_double(sorted[n / 2]));
		json_object_object_add(lat, "p90", json_object_new_double(sorted[(n * 9) / 10]));
		json_object_object_add(lat, "p99", json_object_new_double(sorted[n - 1 - n / 100]));
	}
	json_object_object_add(o, GBX_KEY_LATENCY_US, lat);
	json_object_object_add(o, "window", json_object_new_int((int)n));
	return o;
}
