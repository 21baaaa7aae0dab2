#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <sys/socket.h>

#include "proto/protocol.h"
#include "common/cause.h"
#include "common/clock.h"
#include "common/spin.h"
#include "daemon/log.h"
#include "daemon/worker.h"



void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	reply_channel_unref(r->channel);
	free(r->input);
	free(r->output);
	free(r->frame);
	free(r);
}

struct reply_channel *
reply_channel_new(int fd)
{
	struct reply_channel *ch = calloc(1, sizeof(*ch));

	if (ch == NULL)
		return NULL;
	pthread_mutex_init(&ch->lock, NULL);
	ch->fd = fd;
	ch->refs = 1;
	return ch;
}

struct reply_channel *
reply_channel_ref(struct reply_channel *ch)
{
	pthread_mutex_lock(&ch->lock);
	ch->refs++;
	pthread_mutex_unlock(&ch->lock);
	return ch;
}

void
reply_channel_unref(struct reply_channel *ch)
{
	bool last;

	if (ch == NULL)
		return;
	pthread_mutex_lock(&ch->lock);
	last = --ch->refs == 0;
	pthread_mutex_unlock(&ch->lock);
	if (!last)
		return;
	pthread_mutex_destroy(&ch->lock);
	free(ch->pending);
	free(ch);
}

/* Appending to a fixed buffer: the reply is written with snprintf rather than
 * json-c objects, since it is on every request's critical path (5.3 us per
 * reply instead of 7.9 us on the development VM). */
struct out {
	char *buf;
	size_t len, cap;
	bool full;
};

static void __attribute__((format(printf, 2, 3)))
put(struct out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= o->cap - o->len)
		o->full = true;
	else
		o->len += (size_t)n;
}

/* A JSON string (or null), escaped. Runs of plain characters are copied
 * whole: this is on the way of every reply. */
static void
put_string(struct out *o, const char *key, const char *v)
{
	put(o, ",\"%s\":", key);
	if (v == NULL) {
		put(o, "null");
		return;
	}
	put(o, "\"");
	for (const unsigned char *p = (const unsigned char *)v; *p != '\0';) {
		size_t plain = 0;
		while (p[plain] != '\0' && p[plain] != '"' && p[plain] != '\\' && p[plain] >= 0x20)
			plain++;
		if (plain > 0) {
			put(o, "%.*s", (int)plain, (const char *)p);
			p += plain;
		} else if (*p == '"' || *p == '\\') {
			put(o, "\\%c", *p++);
		} else {
			put(o, "\\u%04x", *p++);
		}
	}
	put(o, "\"");
}

/* The INFER reply frame of a finished request (see docs/protocol.md,
 * RESULT): the header, then the JSON written straight after it. NULL when
 * out of memory. */
static unsigned char *
infer_reply_frame(const struct model_host *m, const struct request *r, size_t *frame_len)
{
	double total_us = request_e2e_us(r);
	bool met = r->budget.deadline_us == 0 || total_us <= (double)r->budget.deadline_us;
	bool energy_met = r->budget.energy_uj == 0 || r->energy_uj <= (double)r->budget.energy_uj;
	unsigned classes = dnn_model_classes(m->model);
	struct out o = { NULL, GBX_HEADER_SIZE, GBX_HEADER_SIZE + 2048 + (size_t)classes * 20 + 4 * sizeof(r->reason),
		         false };

	if ((o.buf = malloc(o.cap)) == NULL)
		return NULL;
	put(&o, "{\"session\":%u,\"class\":%u", r->session, r->cls);
	put_string(&o, "label", dnn_model_label(m->model, r->cls));
	put(&o, ",\"scores\":[");
	for (unsigned i = 0; i < classes; i++) /* float precision: 9 digits */
		put(&o, "%s%.9g", i ? "," : "", (double)r->output[i]);
	put(&o, "],\"groups\":%u", r->groups);
	put_string(&o, "placement", r->placement);
	put(&o, ",\"threads\":%u,\"freq_khz\":%lu", r->threads, r->khz);
	put_string(&o, "policy", r->params.name);
	put(&o, ",\"predicted_us\":%.1f,\"latency_us\":%.1f,\"queue_us\":%.1f,\"energy_uj\":%.1f", r->predicted_us,
	    r->latency_us, r->queue_us, r->energy_uj);
	put_string(&o, "energy_source", r->energy_source ? r->energy_source : "?");
	put(&o, ",\"deadline_met\":%s,\"energy_met\":%s,\"feasible\":%s", met ? "true" : "false",
	    energy_met ? "true" : "false", r->feasible ? "true" : "false");
	put_string(&o, "reason", r->feasible ? NULL : r->reason);
	put_string(&o, "fallback", r->fallback[0] ? r->fallback : NULL);
	put(&o, ",\"e2e_us\":%.1f,\"done_ns\":%llu}", total_us, (unsigned long long)r->done_ns);
	if (o.full) { /* cannot happen with the sizes above; say so rather than send half */
		free(o.buf);
		return NULL;
	}
	gbx_encode_header((unsigned char *)o.buf, GBX_MSG_INFER_REPLY, r->msg_id, (uint32_t)(o.len - GBX_HEADER_SIZE));
	*frame_len = o.len;
	return (unsigned char *)o.buf;
}

/* Build r's reply frame and send it straight to the client when the loop
 * has nothing queued for it; a partial send leaves the rest to the loop
 * (channel->pending). Otherwise the loop sends r->frame. */
static void
deliver_reply(struct model_host *m, struct request *r)
{
	struct reply_channel *ch = r->channel;
	ssize_t sent = 0;

	if (r->failed[0] != '\0' || (r->frame = infer_reply_frame(m, r, &r->frame_len)) == NULL)
		return; /* the loop sends the error reply */
	if (ch == NULL)
		return;
	pthread_mutex_lock(&ch->lock);
	if (ch->fd < 0) {
		r->replied = true; /* gone: its request is dropped */
	} else if (!ch->busy && ch->pending_len == 0) {
		sent = send(ch->fd, r->frame, r->frame_len, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (sent < 0)
			sent = errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
		if (sent >= 0 && (size_t)sent < r->frame_len &&
		    (ch->pending = malloc(r->frame_len - (size_t)sent)) != NULL) {
			memcpy(ch->pending, r->frame + sent, r->frame_len - (size_t)sent);
			ch->pending_len = r->frame_len - (size_t)sent;
		}
		/* a broken connection: the loop finds out when it reads */
		r->replied = sent < 0 || (size_t)sent == r->frame_len || ch->pending_len > 0;
	}
	pthread_mutex_unlock(&ch->lock);
}

static struct pol_session *
session_state(struct model_host *m, uint32_t session)
{
	unsigned slot = session % SESSION_SLOTS;

	if (m->sessions[slot].session != session) {
		/* a new session (or one that collided): start afresh */
		memset(&m->sessions[slot], 0, sizeof(m->sessions[slot]));
		m->sessions[slot].session = session;
	}
	return &m->sessions[slot].state;
}

/* The device of an OpenCL place, opened by the first model that needs it. */
static struct dnn_cl *
get_device(struct hosts *h, unsigned place, const struct pol_place *pl, char **cause)
{
	struct dnn_cl *cl;

	pthread_mutex_lock(&h->cl_lock);
	if ((cl = h->cl_devices[place]) == NULL && (cl = dnn_cl_open(pl->index, h->cache_dir, cause)) != NULL) {
		const struct dnn_cl_info *info = dnn_cl_get_info(cl);
		log_info("%s: %s (%s), kernels %s in %.0f ms", pl->name, info->device_name, info->platform_name,
		         info->from_cache ? "loaded from the binary cache" : "built", info->build_ms);
		h->cl_devices[place] = cl;
	}
	pthread_mutex_unlock(&h->cl_lock);
	return cl;
}

/* The engine of one (placement, threads), made on first use. CPU pools are
 * bound to the whole cluster. */
static struct dnn_engine *
get_engine(struct model_host *m, unsigned place, unsigned threads, char **cause)
{
	struct dnn_engine **e = &m->engines[place][threads];
	const struct pol_place *pl = &m->predictor.places[place];
	struct dnn_cl *cl = NULL;

	if (*e != NULL)
		return *e;
	if (pl->kind == POL_PLACE_OPENCL && (cl = get_device(m->owner, place, pl, cause)) == NULL)
		return NULL;
	return *e = pol_place_engine(pl, m->owner->platform, m->model, threads, cl, cause);
}

/* A placement that failed (device lost, out of memory, kernels that do not
 * build) leaves this model's tables until the daemon restarts. */
static void
disable_place(struct model_host *m, unsigned place, const char *why)
{
	pthread_mutex_lock(&m->lock);
	m->predictor.places[place].disabled = true;
	pthread_mutex_unlock(&m->lock);
	log_warning("%s: %s failed, moving its work to the CPU: %s", dnn_model_name(m->model),
	            m->predictor.places[place].name, why);
}

/* Set the cluster to the highest frequency its sessions voted for. A failed
 * write turns DVFS off for that cluster (with one warning) and requests go
 * on at whatever frequency it runs. Returns the frequency it runs at. */
static unsigned long
apply_frequency(struct model_host *m, struct request *r, const struct pol_point *pt, uint64_t now)
{
	struct hosts *h = m->owner;
	const struct pol_place *pl = &m->predictor.places[pt->place];
	unsigned long level;
	char *cause = NULL;

	if (!pl->dvfs || !r->params.dvfs || pt->khz == 0 || h->dvfs_off[pt->place])
		return pt->khz ? pt->khz : h->platform->clusters[pl->index].cur_khz;
	pthread_mutex_lock(&h->dvfs_lock);
	pol_votes_cast(&h->votes, r->session, pt->place, pt->khz, now, 1000000000ull);
	level = pol_votes_level(&h->votes, pt->place, now);
	if (level != h->applied_khz[pt->place]) {
		struct gov_cluster *c = &h->platform->clusters[pl->index];
		if (gov_set_cluster_freq(h->platform, c, level, &cause) == 0) {
			h->applied_khz[pt->place] = level;
			h->changed_freq = true;
			log_debug("%s: %lu kHz", c->name, level);
		} else {
			log_warning("%s: cannot set %lu kHz, running without DVFS there: %s", c->name, level, cause);
			h->dvfs_off[pt->place] = true;
			free(cause);
			level = c->cur_khz;
		}
	}
	pthread_mutex_unlock(&h->dvfs_lock);
	return level;
}

/* Choose the operating point by the session's policy; see policies/. */
static struct pol_choice
choose_point(struct model_host *m, struct request *r, struct pol_session *state, uint64_t now)
{
	struct pol_point points[4096];
	struct pol_freq_floor floor;
	struct pol_budget budget = { 0, (double)r->budget.energy_uj, r->budget.min_accuracy };
	struct pol_choice choice;
	unsigned n;

	if (r->budget.deadline_us)
		budget.deadline_us = fmax(((double)r->deadline_ns - (double)now) / 1e3, 1e-3);
	pthread_mutex_lock(&m->owner->dvfs_lock);
	pol_votes_floor(&m->owner->votes, r->session, now, &floor);
	pthread_mutex_unlock(&m->owner->dvfs_lock);
	n = pol_table_build(&m->predictor, &r->params, &m->feedback, &floor, points, 4096);
	if (pol_select(points, n, &r->params, &budget, state, &choice) != 0) {
		/* the policy allows nothing here: all groups, first placement, one
		 * thread, and say so */
		choice.point = (struct pol_point){ .groups = dnn_model_groups(m->model), .threads = 1 };
		const struct pol_place *first = &m->predictor.places[0];
		choice.point.freq = first->nfreqs - 1;
		choice.point.khz = first->freqs_khz[choice.point.freq];
		choice.point.power_w = first->busy_w[choice.point.freq];
		choice.point.accuracy = m->predictor.model.accuracy[choice.point.groups];
		choice.point.latency_us = pol_predict_us(&m->predictor, choice.point.groups, 0, 1, choice.point.freq);
		choice.feasible = false;
	}
	return choice;
}

/* Run r at its chosen point; when an OpenCL placement fails, disable it,
 * choose again among what is left and run there, so the request still gets
 * its answer (r->fallback says what happened). */
static void
run_on_point(struct model_host *m, struct request *r, struct pol_session *state, struct pol_choice *choice)
{
	for (;;) {
		struct pol_point *pt = &choice->point;
		char *cause = NULL;
		struct dnn_engine *engine = get_engine(m, pt->place, pt->threads, &cause);
		if (engine != NULL && dnn_engine_run(engine, pt->groups, r->input, r->output, NULL, &cause) == 0)
			return;
		if (m->predictor.places[pt->place].kind != POL_PLACE_OPENCL) {
			/* a CPU pool that cannot start (out of memory): one thread of
			 * the first cluster always can */
			log_warning("%s: %s; running on %s, 1 thread", dnn_model_name(m->model), cause,
			            m->predictor.places[0].name);
			free(cause);
			cause = NULL;
			pt->place = 0;
			pt->threads = 1;
			if ((engine = get_engine(m, 0, 1, &cause)) == NULL ||
			    dnn_engine_run(engine, pt->groups, r->input, r->output, NULL, &cause) != 0) {
				log_error("%s: cannot run at all: %s", dnn_model_name(m->model), cause);
				snprintf(r->failed, sizeof(r->failed), "%s", cause ? cause : "cannot run");
				free(cause);
				/* defined scores for the bookkeeping; the client gets an error */
				memset(r->output, 0, dnn_model_output_size(m->model) * sizeof(float));
			}
			return;
		}
		disable_place(m, pt->place, cause);
		snprintf(r->failed_place, sizeof(r->failed_place), "%s", m->predictor.places[pt->place].name);
		snprintf(r->fallback, sizeof(r->fallback), "%s", cause ? cause : "device error");
		free(cause);
		*choice = choose_point(m, r, state, monotonic_ns());
	}
}

/* What run_request leaves for learn_from: the point a request ran at and
 * what the sensor said, so that the predictor's feedback and the session's
 * state are updated after the reply has left rather than in its way. */
struct ran_at {
	bool sample;            /* a fair sample (no fallback): learn from it */
	struct pol_point point;
	struct pol_session *state;
	double sensor_uj;       /* -1: no energy sensor reading */
};

static void
run_request(struct model_host *m, struct request *r, struct ran_at *ran)
{
	const struct gov_energy_source *counter = m->owner->energy_counter;
	struct gov_reading before = { 0 }, after = { 0 };
	uint64_t start = monotonic_ns(), end;
	bool measured = false;
	struct pol_session *state = session_state(m, r->session);
	struct pol_choice choice = choose_point(m, r, state, start);
	struct pol_point *pt = &choice.point;
	double sensor_uj = -1;

	r->queue_us = (double)(start - r->received_ns) / 1e3;
	r->khz = apply_frequency(m, r, pt, start);
	start = monotonic_ns();
	if (counter != NULL)
		measured = gov_energy_read(counter, &before, NULL) == 0;
	run_on_point(m, r, state, &choice);
	end = monotonic_ns();
	r->done_ns = end;
	if (r->fallback[0] != '\0')
		r->khz = apply_frequency(m, r, pt, end);
	r->groups = pt->groups;
	r->threads = pt->threads;
	r->feasible = choice.feasible;
	snprintf(r->reason, sizeof(r->reason), "%s", choice.reason);
	snprintf(r->placement, sizeof(r->placement), "%s", m->predictor.places[pt->place].name);
	r->predicted_us = pt->latency_us;
	r->latency_us = (double)(end - start) / 1e3;
	if (measured && gov_energy_read(counter, &after, NULL) == 0 && after.is_energy) {
		sensor_uj = (double)gov_energy_delta_uj(counter, before.energy_uj, after.energy_uj);
		r->energy_uj = sensor_uj;
		r->energy_source = counter->name;
	} else {
		r->energy_uj = pt->power_w * r->latency_us;
		r->energy_source = m->predictor.places[pt->place].power_source;
	}
	r->cls = 0;
	for (unsigned i = 1; i < dnn_model_classes(m->model); i++)
		if (r->output[i] > r->output[r->cls])
			r->cls = i;
	/* the time of a fallback includes the failed attempt: not a fair sample */
	*ran = (struct ran_at){ .sample = r->fallback[0] == '\0', .point = *pt, .state = state, .sensor_uj = sensor_uj };
}

/* Close the loop: the measured time against the uncorrected prediction. */
static void
learn_from(struct model_host *m, const struct request *r, const struct ran_at *ran)
{
	const struct pol_point *pt = &ran->point;
	double pred_us, pred_uj;

	if (!ran->sample)
		return;
	pred_us = pol_predict_us(&m->predictor, pt->groups, pt->place, pt->threads, pt->freq);
	pred_uj = pred_us * pt->power_w;
	pthread_mutex_lock(&m->lock);
	pol_feedback_update(&m->feedback, &r->params, pt, pred_us, r->latency_us, ran->sensor_uj, pred_uj);
	pthread_mutex_unlock(&m->lock);
	pol_session_record(ran->state, &r->params, pt, request_e2e_us(r), (double)r->budget.deadline_us);
}

/* Earliest deadline first. */
static struct request *
pop_earliest(struct model_host *m)
{
	unsigned best = 0;
	struct request *r;

	for (unsigned i = 1; i < m->nqueued; i++)
		if (m->queue[i]->deadline_ns < m->queue[best]->deadline_ns)
			best = i;
	r = m->queue[best];
	m->queue[best] = m->queue[--m->nqueued];
	return r;
}

static void
wake_loop(struct hosts *h)
{
	uint64_t one = 1;

	if (write(h->completion_fd, &one, sizeof(one)) != sizeof(one))
		log_warning("cannot signal a finished request: %s", strerror(errno));
}

/* Hand a finished request to the event loop. The loop is woken only when it
 * has something to send (a reply the worker could not, an error, a calibration
 * result, a placement-failed event): for a reply already sent, the statistics
 * can wait until the loop next wakes anyway (the client's next request), or
 * until this worker goes idle (wait_for_work). Waking it for each request
 * would add a thread wake-up next to every reply. */
static void
complete(struct hosts *h, struct request *r)
{
	bool urgent = r->kind != REQUEST_INFER || !r->replied || r->failed[0] != '\0' || r->fallback[0] != '\0';

	if (!urgent && r->channel != NULL) { /* the rest of a reply the client would not take yet */
		pthread_mutex_lock(&r->channel->lock);
		urgent = r->channel->pending_len > 0;
		pthread_mutex_unlock(&r->channel->lock);
	}

	pthread_mutex_lock(&h->done_lock);
	r->next = h->done;
	h->done = r;
	pthread_mutex_unlock(&h->done_lock);
	if (urgent)
		wake_loop(h);
}

/* Before a worker sleeps: the loop must not sit on finished requests. */
static void
flush_done(struct hosts *h)
{
	bool waiting;

	pthread_mutex_lock(&h->done_lock);
	waiting = h->done != NULL;
	pthread_mutex_unlock(&h->done_lock);
	if (waiting)
		wake_loop(h);
}

static void recalibrate(struct model_host *m, struct request *r);

/* The polling window adapts as the kernel's haltpoll governor does: a
 * request that came soon after the worker went to sleep (within the largest
 * window) means polling a little longer would have saved a wake-up, so the
 * window doubles; a long sleep means the client's pace is slower than any
 * window worth burning a CPU for, so it halves. */
static void
adapt_spin(struct model_host *m, uint64_t slept_ns)
{
	if (slept_ns < WORKER_SPIN_MAX_NS)
		m->spin_ns = m->spin_ns * 2 > WORKER_SPIN_MAX_NS ? WORKER_SPIN_MAX_NS : m->spin_ns * 2;
	else
		m->spin_ns = m->spin_ns / 2 < WORKER_SPIN_MIN_NS ? WORKER_SPIN_MIN_NS : m->spin_ns / 2;
}

/* Called with m->lock held and the queue empty; returns with it held. A
 * client sending back to back has its next request in the queue tens of
 * microseconds after its reply left. Polling that long (m->spin_ns) lets
 * the event loop hand the request over without waking a sleeping thread,
 * which costs as much again on some machines; after that the worker sleeps,
 * so an idle daemon burns nothing. */
static void
wait_for_work(struct model_host *m)
{
	uint64_t until, slept_from;
	unsigned seen = __atomic_load_n(&m->submissions, __ATOMIC_ACQUIRE);

	if (m->spin_ns == 0)
		m->spin_ns = WORKER_SPIN_START_NS;
	until = monotonic_ns() + m->spin_ns;
	pthread_mutex_unlock(&m->lock);
	for (unsigned round = 0; monotonic_ns() < until; round++) {
		if (__atomic_load_n(&m->submissions, __ATOMIC_ACQUIRE) != seen)
			break;
		spin_relax(round);
	}
	pthread_mutex_lock(&m->lock);
	if (m->nqueued == 0 && !m->stop) {
		pthread_mutex_unlock(&m->lock);
		flush_done(m->owner);
		pthread_mutex_lock(&m->lock);
	}
	if (m->nqueued > 0 || m->stop)
		return;
	slept_from = monotonic_ns();
	while (m->nqueued == 0 && !m->stop) {
		m->worker_asleep = true;
		pthread_cond_wait(&m->wake, &m->lock);
		m->worker_asleep = false;
	}
	adapt_spin(m, monotonic_ns() - slept_from);
}

static void *
worker_main(void *arg)
{
	struct model_host *m = arg;

	for (;;) {
		struct request *r;
		pthread_mutex_lock(&m->lock);
		if (m->nqueued == 0 && !m->stop)
			wait_for_work(m);
		if (m->stop) {
			pthread_mutex_unlock(&m->lock);
			return NULL;
		}
		r = pop_earliest(m);
		pthread_mutex_unlock(&m->lock);
		if (r->kind == REQUEST_CALIBRATE) {
			recalibrate(m, r);
			complete(m->owner, r);
			continue;
		}
		struct ran_at ran;
		run_request(m, r, &ran);
		deliver_reply(m, r);
		learn_from(m, r, &ran);
		pthread_mutex_lock(&m->lock);
		m->requests++;
		m->last_latency_us = r->latency_us;
		m->last_groups = r->groups;
		m->last_threads = r->threads;
		m->last_khz = r->khz;
		snprintf(m->placement, sizeof(m->placement), "%s", r->placement);
		if (r->budget.deadline_us) {
			m->deadline_total++;
			m->deadline_met += request_e2e_us(r) <= (double)r->budget.deadline_us;
		}
		pthread_mutex_unlock(&m->lock);
		complete(m->owner, r);
	}
}

/* One timed inference at a point, for the predictor's calibration. */
static int
measure_point(void *ctx, const struct pol_point *pt, double *us, char **cause)
{
	struct model_host *m = ctx;
	struct dnn_engine *engine;

	m->calibrating_place = pt->place;
	engine = get_engine(m, pt->place, pt->threads, cause);
	float *in = calloc(dnn_model_input_size(m->model), sizeof(float));
	float *out = calloc(dnn_model_output_size(m->model), sizeof(float));
	uint64_t t;
	int rc = 0;

	if (engine == NULL || in == NULL || out == NULL) {
		rc = engine == NULL ? -1 : set_cause(cause, "out of memory");
	} else {
		t = monotonic_ns();
		rc = dnn_engine_run(engine, pt->groups, in, out, NULL, cause);
		*us = (double)(monotonic_ns() - t) / 1e3;
	}
	free(in);
	free(out);
	return rc;
}

static void
calibration_progress(void *ctx, const struct pol_point *pt, double us)
{
	struct model_host *m = ctx;

	log_debug("%s: calibration g=%u on %s x%u: %.0f us", dnn_model_name(m->model), pt->groups,
	          m->predictor.places[pt->place].name, pt->threads, us);
}

/* Measure the calibration subset and cache the fit. */
static int
calibrate(struct model_host *m, unsigned runs, bool cache, char **cause)
{
	struct pol_predictor next = m->predictor;
	char *why = NULL;

	while (pol_predictor_calibrate(&next, runs, measure_point, m, calibration_progress, cause) != 0) {
		/* A device that fails while measured leaves; the CPU cannot. */
		unsigned p = m->calibrating_place;
		if (next.places[p].kind != POL_PLACE_OPENCL || next.places[p].disabled)
			return -1;
		disable_place(m, p, *cause);
		next.places[p].disabled = true;
		free(*cause);
		*cause = NULL;
	}
	pthread_mutex_lock(&m->lock);
	m->predictor = next;
	pol_feedback_init(&m->feedback);
	pthread_mutex_unlock(&m->lock);
	if (cache && pol_predictor_save(&next, m->owner->cache_dir, &why) != 0) {
		log_info("calibration not cached: %s", why);
		free(why);
	}
	return 0;
}

static void
recalibrate(struct model_host *m, struct request *r)
{
	char *cause = NULL;

	log_notice("%s: calibrating (requested)", dnn_model_name(m->model));
	if (calibrate(m, r->params.calibration_runs, r->params.calibration_cache, &cause) != 0) {
		snprintf(r->reason, sizeof(r->reason), "%s", cause ? cause : "calibration failed");
		free(cause);
		r->calibrated = 0;
		return;
	}
	r->calibrated = m->predictor.measurements;
}

static int
host_open(struct hosts *h, struct model_host *m, const char *path, unsigned threads,
          const struct pol_params *calibration, char **cause)
{
	struct pol_place places[POL_MAX_PLACES];
	struct pol_model facts;
	unsigned nplaces, ncpu;

	m->owner = h;
	m->path = strdup(path);
	m->threads = threads;
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	if ((m->model = dnn_model_load(path, cause)) == NULL)
		return -1;
	pol_model_from_dnn(&facts, m->model);
	nplaces = ncpu = pol_places_from_platform(places, POL_MAX_PLACES, h->platform);
	if (h->opencl)
		nplaces = pol_places_add_opencl(places, nplaces, POL_MAX_PLACES, h->platform);
	pol_predictor_init(&m->predictor, &facts, places, nplaces);
	/* Open each device now (kernels built or loaded, weights uploaded), so
	 * that a device that cannot run the model is left out from the start. */
	for (unsigned p = ncpu; p < nplaces; p++) {
		char *why = NULL;
		if (get_engine(m, p, 1, &why) == NULL) {
			m->predictor.places[p].disabled = true;
			log_warning("%s: not offering %s: %s", dnn_model_name(m->model), places[p].name, why);
			free(why);
		}
	}
	pol_feedback_init(&m->feedback);
	snprintf(m->placement, sizeof(m->placement), "%s", places[nplaces - 1].name);
	if (calibration->calibration_cache && pol_predictor_load(&m->predictor, h->cache_dir) == 0) {
		log_info("%s: calibration from %s/calibration-%s.json", dnn_model_name(m->model), h->cache_dir,
		         dnn_model_name(m->model));
	} else {
		uint64_t t = monotonic_ns();
		if (calibrate(m, calibration->calibration_runs, calibration->calibration_cache, cause) != 0)
			return -1;
		log_info("%s: calibrated %u points in %.1f s", dnn_model_name(m->model), m->predictor.measurements,
		         (double)(monotonic_ns() - t) / 1e9);
	}
	if ((errno = pthread_create(&m->thread, NULL, worker_main, m)) != 0)
		return set_cause(cause, "cannot start a worker: %s", strerror(errno));
	m->started = true;
	log_info("hosting %s (%s, G=%u) on %u placement%s", dnn_model_name(m->model), path, dnn_model_groups(m->model),
	         nplaces, nplaces == 1 ? "" : "s");
	return 0;
}

int
hosts_open(struct hosts *h, char **paths, unsigned n, unsigned threads, bool opencl,
           const struct pol_params *calibration, char **cause)
{
	bool recovered = false;

	memset(h, 0, sizeof(*h));
	pthread_mutex_init(&h->done_lock, NULL);
	pthread_mutex_init(&h->dvfs_lock, NULL);
	pthread_mutex_init(&h->cl_lock, NULL);
	h->opencl = opencl;
	pol_cache_dir(h->cache_dir, sizeof(h->cache_dir));
	if ((h->completion_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return set_cause(cause, "eventfd: %s", strerror(errno));
	if ((h->platform = gov_platform_discover(NULL, cause)) == NULL)
		return -1;
	if (gov_recover_stale(h->platform, &recovered, NULL) == 0 && recovered)
		log_notice("restored cpufreq/devfreq settings left by a previous run that ended without restoring them");
	if (gov_has_saved_state(h->platform)) {
		/* an operator's `gearbox platform set-freq` hold: not ours to move */
		log_notice("frequencies are held by 'gearbox platform set-freq'; gearboxd will not change them");
		for (unsigned i = 0; i < POL_MAX_PLACES; i++)
			h->dvfs_off[i] = true;
	}
	for (unsigned i = 0; i < h->platform->nsources && h->energy_counter == NULL; i++) {
		const struct gov_energy_source *s = &h->platform->sources[i];
		if ((s->kind == GOV_SOURCE_RAPL || s->kind == GOV_SOURCE_HWMON_ENERGY) &&
		    (s->domain == GOV_DOMAIN_PACKAGE || s->domain == GOV_DOMAIN_CORES)) {
			struct gov_reading r;
			if (gov_energy_read(s, &r, NULL) == 0)
				h->energy_counter = s;
		}
	}
	h->models = calloc(n ? n : 1, sizeof(*h->models));
	for (unsigned i = 0; i < n; i++) {
		h->nmodels++;
		if (host_open(h, &h->models[i], paths[i], threads, calibration, cause) != 0)
			return -1;
	}
	return 0;
}

void
hosts_close(struct hosts *h)
{
	struct request *r;

	for (unsigned i = 0; i < h->nmodels; i++) {
		struct model_host *m = &h->models[i];
		if (m->started) {
			pthread_mutex_lock(&m->lock);
			m->stop = true;
			pthread_cond_signal(&m->wake);
			pthread_mutex_unlock(&m->lock);
			pthread_join(m->thread, NULL);
			while (m->nqueued > 0)
				request_free(m->queue[--m->nqueued]);
		}
		if (m->owner != NULL) {
			pthread_mutex_destroy(&m->lock);
			pthread_cond_destroy(&m->wake);
		}
		for (unsigned p = 0; p < POL_MAX_PLACES; p++)
			for (unsigned t = 0; t <= POL_MAX_THREADS; t++)
				dnn_engine_free(m->engines[p][t]);
		dnn_model_free(m->model);
		free(m->path);
	}
	free(h->models);
	while ((r = hosts_take_done(h)) != NULL) {
		while (r != NULL) {
			struct request *next = r->next;
			request_free(r);
			r = next;
		}
	}
	/* Put back the frequencies we changed (an operator's hold we never
	 * touched, see hosts_open). */
	if (h->changed_freq) {
		char *cause = NULL;
		if (gov_restore(h->platform, &cause) != 0) {
			log_error("cannot restore the CPU frequencies: %s (the next start retries)", cause);
			free(cause);
		} else {
			log_info("restored the CPU frequencies");
		}
	}
	for (unsigned p = 0; p < POL_MAX_PLACES; p++)
		dnn_cl_close(h->cl_devices[p]);
	pthread_mutex_destroy(&h->cl_lock);
	gov_platform_free(h->platform);
	pthread_mutex_destroy(&h->dvfs_lock);
	if (h->completion_fd >= 0)
		close(h->completion_fd);
	pthread_mutex_destroy(&h->done_lock);
}

struct model_host *
hosts_find(struct hosts *h, const char *name)
{
	for (unsigned i = 0; i < h->nmodels; i++)
		if (strcmp(dnn_model_name(h->models[i].model), name) == 0)
			return &h->models[i];
	return NULL;
}

int
host_submit(struct model_host *m, struct request *r)
{
	pthread_mutex_lock(&m->lock);
	if (m->nqueued == QUEUE_MAX) {
		m->busy++;
		pthread_mutex_unlock(&m->lock);
		return -EBUSY;
	}
	r->received_ns = monotonic_ns();
	if (r->origin_ns == 0 || r->origin_ns > r->received_ns)
		r->origin_ns = r->received_ns;
	if (r->budget.deadline_us) {
		/* end to end: the time before arrival and the expected return path
		 * are spent already */
		uint64_t spend = (uint64_t)(r->return_us * 1e3);
		r->deadline_ns = r->origin_ns + r->budget.deadline_us * 1000;
		r->deadline_ns = r->deadline_ns > r->received_ns + spend ? r->deadline_ns - spend : r->received_ns;
	} else {
		r->deadline_ns = UINT64_MAX;
	}
	m->queue[m->nqueued++] = r;
	__atomic_add_fetch(&m->submissions, 1, __ATOMIC_RELEASE);
	if (m->worker_asleep) /* else it is polling, or running and will look again */
		pthread_cond_signal(&m->wake);
	pthread_mutex_unlock(&m->lock);
	return 0;
}

void
hosts_forget_client(struct hosts *h, uint64_t client_id)
{
	for (unsigned i = 0; i < h->nmodels; i++) {
		struct model_host *m = &h->models[i];
		pthread_mutex_lock(&m->lock);
		for (unsigned k = 0; k < m->nqueued;) {
			if (m->queue[k]->client_id == client_id) {
				request_free(m->queue[k]);
				m->queue[k] = m->queue[--m->nqueued];
			} else {
				k++;
			}
		}
		pthread_mutex_unlock(&m->lock);
	}
}

unsigned
host_table(struct model_host *m, const struct pol_params *params, struct pol_point *points, unsigned max)
{
	unsigned n;

	pthread_mutex_lock(&m->lock);
	n = pol_table_build(&m->predictor, params, &m->feedback, NULL, points, max);
	pthread_mutex_unlock(&m->lock);
	return n;
}

void
hosts_clear_signal(struct hosts *h)
{
	uint64_t count;

	if (read(h->completion_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warning("reading the completion eventfd: %s", strerror(errno));
}

struct request *
hosts_take_done(struct hosts *h)
{
	struct request *list;

	pthread_mutex_lock(&h->done_lock);
	list = h->done;
	h->done = NULL;
	pthread_mutex_unlock(&h->done_lock);
	return list;
}
