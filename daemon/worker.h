/* Hosted models and the workers that run their requests. The event loop
 * never runs inference: it queues requests here (earliest deadline first,
 * bounded), and a worker thread pinned to the model's placement runs them and
 * hands finished requests back through an eventfd. */
#ifndef GEARBOX_DAEMON_WORKER_H
#define GEARBOX_DAEMON_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dnn/dnn.h"
#include "governor/governor.h"

#define QUEUE_MAX 64

struct budget {
	uint64_t deadline_us;   /* 0: none */
	uint64_t energy_uj;     /* 0: none */
	double min_accuracy;    /* 0: none */
};

/* One inference, from admission to reply. */
struct request {
	uint64_t client_id;     /* the connection, looked up again on completion */
	uint32_t msg_id;
	uint32_t session;
	struct budget budget;
	uint64_t received_ns, deadline_ns; /* EDF key: received + deadline (or far) */
	float *input;
	/* filled by the worker */
	float *output;
	unsigned groups, cls;
	double latency_us, queue_us, energy_uj;
	const char *energy_source;
	bool feasible;
	char reason[160];
	struct request *next;   /* completion list */
};

struct model_host {
	char *path;
	struct dnn_model *model;
	struct dnn_pool *pool;
	struct dnn_exec *exec;
	char placement[64];     /* "cluster1 (cpus 4-7)" */
	unsigned cluster, threads;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct request *queue[QUEUE_MAX];
	unsigned nqueued;
	bool stop, started;
	/* measured latency per g (exponentially weighted), microseconds */
	double est_us[DNN_MAX_GROUPS + 1];
	/* statistics */
	uint64_t requests, deadline_met, deadline_total, busy;
	double last_latency_us;
	unsigned last_groups;
	unsigned announced_groups; /* last operating point told to subscribers (event loop only) */
	struct hosts *owner;
};

struct hosts {
	struct model_host *models;
	unsigned nmodels;
	struct gov_platform *platform;
	int completion_fd;      /* eventfd: finished requests are waiting */
	pthread_mutex_t done_lock;
	struct request *done;   /* finished, for the event loop */
	const struct gov_energy_source *energy_counter; /* RAPL-like, or NULL */
	double margin;          /* safety margin on predicted latency */
};

/* Open every model with `threads` threads on the most capable cluster. */
int hosts_open(struct hosts *h, char **paths, unsigned n, unsigned threads, char **cause);
void hosts_close(struct hosts *h);
struct model_host *hosts_find(struct hosts *h, const char *name);
/* Queue a request; -EBUSY when the model's queue is full (admission control). */
int host_submit(struct model_host *m, struct request *r);
/* Drop queued requests of a connection that went away. */
void hosts_forget_client(struct hosts *h, uint64_t client_id);
/* Take the finished requests (the event loop calls this on its eventfd). */
struct request *hosts_take_done(struct hosts *h);
void request_free(struct request *r);

#endif
