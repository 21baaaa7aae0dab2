#include "config.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "common/cause.h"
#include "daemon/log.h"
#include "daemon/worker.h"

#define EWMA_WEIGHT 0.2
#define CALIBRATION_RUNS 5

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void
request_free(struct request *r)
{
	if (r == NULL)
		return;
	free(r->input);
	free(r->output);
	free(r);
}

/* Watts the placement draws while running, from its power model. */
static double
placement_watts(const struct model_host *m)
{
	const struct gov_platform *p = m->owner->platform;
	const struct gov_cluster *c = &p->clusters[m->cluster];

	return gov_model_power(p, m->cluster, c->cur_khz ? c->cur_khz : c->hw_max_khz, m->threads);
}

/* The largest g that fits the budget with the safety margin, by the measured
 * latency of each g. When none fits, the fastest g allowed by the accuracy
 * floor, marked infeasible with the reason. */
static unsigned
choose_groups(struct model_host *m, struct request *r, uint64_t now)
{
	unsigned G = dnn_model_groups(m->model), floor_g = 1;
	double left_us = r->budget.deadline_us ? ((double)r->deadline_ns - (double)now) / 1e3 : INFINITY;
	double watts = placement_watts(m);

	for (unsigned g = 1; g <= G; g++) {
		double acc = dnn_model_accuracy(m->model, g);
		if (r->budget.min_accuracy > 0 && acc >= 0 && acc < r->budget.min_accuracy)
			floor_g = g + 1;
	}
	for (unsigned g = G; g >= floor_g && g >= 1; g--) {
		double t = m->est_us[g] * (1.0 + m->owner->margin);
		double e = watts * m->est_us[g];
		if (t <= left_us && (r->budget.energy_uj == 0 || e <= (double)r->budget.energy_uj)) {
			r->feasible = true;
			return g;
		}
	}
	r->feasible = false;
	if (floor_g > G) {
		snprintf(r->reason, sizeof(r->reason), "no active-group count reaches accuracy %.3f; ran g=%u",
		         r->budget.min_accuracy, G);
		return G;
	}
	if (left_us < m->est_us[floor_g] * (1.0 + m->owner->margin))
		snprintf(r->reason, sizeof(r->reason), "%.0f us left of the deadline, g=%u needs about %.0f us", left_us,
		         floor_g, m->est_us[floor_g]);
	else
		snprintf(r->reason, sizeof(r->reason), "g=%u needs about %.0f uJ, the budget is %llu uJ", floor_g,
		         watts * m->est_us[floor_g], (unsigned long long)r->budget.energy_uj);
	return floor_g;
}

static void
run_request(struct model_host *m, struct request *r)
{
	const struct gov_energy_source *counter = m->owner->energy_counter;
	struct gov_reading before = { 0 }, after = { 0 };
	uint64_t start = now_ns(), end;
	bool measured = false;

	r->queue_us = (double)(start - r->received_ns) / 1e3;
	r->groups = choose_groups(m, r, start);
	if (counter != NULL)
		measured = gov_energy_read(counter, &before, NULL) == 0;
	dnn_exec_run(m->exec, r->groups, r->input, r->output);
	end = now_ns();
	if (measured && gov_energy_read(counter, &after, NULL) == 0 && after.is_energy) {
		r->energy_uj = (double)gov_energy_delta_uj(counter, before.energy_uj, after.energy_uj);
		r->energy_source = counter->name;
	} else {
		r->energy_uj = placement_watts(m) * (double)(end - start) / 1e3;
		r->energy_source = gov_model_kind_name(m->owner->platform->models[m->cluster].kind);
	}
	r->latency_us = (double)(end - start) / 1e3;
	r->cls = 0;
	for (unsigned i = 1; i < dnn_model_classes(m->model); i++)
		if (r->output[i] > r->output[r->cls])
			r->cls = i;
	m->est_us[r->groups] = (1 - EWMA_WEIGHT) * m->est_us[r->groups] + EWMA_WEIGHT * r->latency_us;
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
complete(struct hosts *h, struct request *r)
{
	uint64_t one = 1;

	pthread_mutex_lock(&h->done_lock);
	r->next = h->done;
	h->done = r;
	pthread_mutex_unlock(&h->done_lock);
	if (write(h->completion_fd, &one, sizeof(one)) != sizeof(one))
		log_warning("cannot signal a finished request: %s", strerror(errno));
}

static void *
worker_main(void *arg)
{
	struct model_host *m = arg;

	for (;;) {
		struct request *r;
		pthread_mutex_lock(&m->lock);
		while (m->nqueued == 0 && !m->stop)
			pthread_cond_wait(&m->wake, &m->lock);
		if (m->stop) {
			pthread_mutex_unlock(&m->lock);
			return NULL;
		}
		r = pop_earliest(m);
		pthread_mutex_unlock(&m->lock);
		run_request(m, r);
		pthread_mutex_lock(&m->lock);
		m->requests++;
		m->last_latency_us = r->latency_us;
		m->last_groups = r->groups;
		if (r->budget.deadline_us) {
			m->deadline_total++;
			m->deadline_met += r->queue_us + r->latency_us <= (double)r->budget.deadline_us;
		}
		pthread_mutex_unlock(&m->lock);
		complete(m->owner, r);
	}
}

/* Measure every g a few times so the first requests choose well. */
static void
calibrate(struct model_host *m)
{
	size_t in_n = dnn_model_input_size(m->model);
	float *in = calloc(in_n, sizeof(float)), *out = calloc(dnn_model_output_size(m->model), sizeof(float));

	for (unsigned g = 1; g <= dnn_model_groups(m->model); g++) {
		double best = INFINITY;
		for (int i = 0; i < CALIBRATION_RUNS; i++) {
			uint64_t t = now_ns();
			dnn_exec_run(m->exec, g, in, out);
			best = fmin(best, (double)(now_ns() - t) / 1e3);
		}
		m->est_us[g] = best;
		log_debug("%s: g=%u calibrated at %.0f us", dnn_model_name(m->model), g, best);
	}
	free(in);
	free(out);
}

static int
host_open(struct hosts *h, struct model_host *m, const char *path, unsigned threads, char **cause)
{
	const struct gov_cluster *c;
	hwloc_bitmap_t set;
	char *cpus = NULL;

	m->owner = h;
	m->path = strdup(path);
	if ((m->model = dnn_model_load(path, cause)) == NULL)
		return -1;
	/* The most capable cluster: the placement policies will move this;
	 * today it is fixed at start. */
	m->cluster = h->platform->nclusters - 1;
	c = &h->platform->clusters[m->cluster];
	m->threads = threads < c->ncpus ? threads : c->ncpus;
	set = gov_cluster_cpuset(c, 0);
	hwloc_bitmap_list_asprintf(&cpus, set);
	snprintf(m->placement, sizeof(m->placement), "%s", c->name);
	m->pool = dnn_pool_create(m->threads, set, cause);
	hwloc_bitmap_free(set);
	if (m->pool == NULL || (m->exec = dnn_exec_create(m->model, m->pool, DNN_KERNELS_FAST, cause)) == NULL) {
		free(cpus);
		return -1;
	}
	calibrate(m);
	pthread_mutex_init(&m->lock, NULL);
	pthread_cond_init(&m->wake, NULL);
	if ((errno = pthread_create(&m->thread, NULL, worker_main, m)) != 0) {
		free(cpus);
		return set_cause(cause, "cannot start a worker: %s", strerror(errno));
	}
	m->started = true;
	log_info("hosting %s (%s, G=%u) on %s, CPUs %s", dnn_model_name(m->model), path, dnn_model_groups(m->model),
	         c->name, cpus);
	free(cpus);
	return 0;
}

int
hosts_open(struct hosts *h, char **paths, unsigned n, unsigned threads, char **cause)
{
	bool recovered = false;

	memset(h, 0, sizeof(*h));
	h->margin = 0.1;
	pthread_mutex_init(&h->done_lock, NULL);
	if ((h->completion_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
		return set_cause(cause, "eventfd: %s", strerror(errno));
	if ((h->platform = gov_platform_discover(NULL, cause)) == NULL)
		return -1;
	if (gov_recover_stale(h->platform, &recovered, NULL) == 0 && recovered)
		log_notice("restored cpufreq/devfreq settings left by a previous run that ended without restoring them");
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
		if (host_open(h, &h->models[i], paths[i], threads, cause) != 0)
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
			pthread_mutex_destroy(&m->lock);
			pthread_cond_destroy(&m->wake);
		}
		dnn_exec_free(m->exec);
		dnn_pool_free(m->pool);
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
	/* gearboxd changes no frequency yet (the policies will, and restore what
	 * they changed); an operator's `gearbox platform set-freq` hold is not
	 * ours to undo. */
	gov_platform_free(h->platform);
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
	r->received_ns = now_ns();
	r->deadline_ns = r->budget.deadline_us ? r->received_ns + r->budget.deadline_us * 1000 : UINT64_MAX;
	m->queue[m->nqueued++] = r;
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

struct request *
hosts_take_done(struct hosts *h)
{
	struct request *list;
	uint64_t count;

	if (read(h->completion_fd, &count, sizeof(count)) < 0 && errno != EAGAIN)
		log_warning("reading the completion eventfd: %s", strerror(errno));
	pthread_mutex_lock(&h->done_lock);
	list = h->done;
	h->done = NULL;
	pthread_mutex_unlock(&h->done_lock);
	return list;
}
