/* Hosted models and the workers that run their requests. The event loop
 * never runs inference: it queues requests here (earliest deadline first,
 * bounded), and a worker thread pinned to the model's placement runs them,
 * sends the reply itself when nothing else is queued for that client (see
 * struct reply_channel), and hands every finished request back through an
 * eventfd for the loop's statistics and events. */
#ifndef GEARBOX_DAEMON_WORKER_H
#define GEARBOX_DAEMON_WORKER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "dnn/dnn.h"
#include "governor/governor.h"
#include "policies/policy.h"

#define QUEUE_MAX 64
/* How long an idle worker polls for the next request before sleeping: it
 * adapts between these bounds (see wait_for_work in worker.c). */
#define WORKER_SPIN_MIN_NS 20000
#define WORKER_SPIN_START_NS 60000
#define WORKER_SPIN_MAX_NS 400000

struct budget {
	uint64_t deadline_us;   /* 0: none */
	uint64_t energy_uj;     /* 0: none */
	double min_accuracy;    /* 0: none */
};

enum request_kind {
	REQUEST_INFER,
	REQUEST_CALIBRATE,      /* re-measure the model's predictor (gearboxctl calibrate) */
};

/* The way back to one client, shared by the event loop and the workers. A
 * worker sends a finished request's reply itself when nothing else waits to
 * go to that client: the client has its answer one thread hand-off sooner
 * than through the loop. Every send on fd happens under lock, so frames
 * never interleave; what a worker could not send goes to `pending`, which
 * the loop sends before anything else. fd is -1 once the client is gone. */
struct reply_channel {
	pthread_mutex_t lock;
	int fd;
	bool busy;              /* the loop has output queued for this client */
	unsigned char *pending; /* bytes of a reply a worker could not send */
	size_t pending_len;
	unsigned refs;          /* the client and its requests in flight */
};

struct reply_channel *reply_channel_new(int fd);
struct reply_channel *reply_channel_ref(struct reply_channel *ch);
void reply_channel_unref(struct reply_channel *ch);

/* One inference (or calibration), from admission to reply. */
struct request {
	enum request_kind kind;
	uint64_t client_id;     /* the connection, looked up again on completion */
	uint32_t msg_id;
	uint32_t session;
	struct budget budget;
	struct pol_params params; /* the session's policy, resolved for this model */
	uint64_t received_ns, deadline_ns; /* EDF key: origin + deadline - return (or far) */
	uint64_t origin_ns;     /* when the client sent it (its "sent_ns"), else received_ns */
	double return_us;       /* expected time from done_ns to the client having the reply */
	uint64_t done_ns;       /* inference finished */
	float *input;
	/* filled by the worker */
	float *output;
	unsigned groups, cls;
	double latency_us, queue_us, energy_uj;
	const char *energy_source;
	char placement[POL_NAME];
	unsigned threads;
	unsigned long khz;      /* frequency it ran at, 0 = not known */
	double predicted_us;    /* the prediction it was chosen by */
	bool feasible;
	char reason[200];
	unsigned calibrated;    /* REQUEST_CALIBRATE: points measured, 0 = failed (reason) */
	char fallback[300];     /* why it left the placement it was chosen for ("" = it did not) */
	char failed[300];       /* why it could not run at all (out of memory): an error reply */
	char failed_place[POL_NAME];
	struct reply_channel *channel; /* INFER: where the reply goes (a reference) */
	bool replied;           /* the worker sent the reply (or left its rest in channel->pending) */
	unsigned char *frame;   /* INFER: the reply frame, for the loop when the worker could not send it */
	size_t frame_len;
	struct request *next;   /* completion list */
};

#define SESSION_SLOTS 256

struct model_host {
	char *path;
	struct dnn_model *model;
	/* what runs the model at each (placement, threads), made on first use:
	 * a pool bound to the cluster, or a context on an OpenCL device */
	struct dnn_engine *engines[POL_MAX_PLACES][POL_MAX_THREADS + 1];
	/* prediction and feedback: written by the worker under lock */
	struct pol_predictor predictor;
	struct pol_feedback feedback;
	/* per-session hysteresis and step state, by session id modulo */
	struct {
		uint32_t session;
		struct pol_session state;
	} sessions[SESSION_SLOTS];
	char placement[64];     /* where the last request ran */
	unsigned threads;       /* the most threads a request may use (gearboxd.conf) */
	unsigned calibrating_place; /* the place being measured (worker or start-up only) */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct request *queue[QUEUE_MAX];
	unsigned nqueued;
	unsigned submissions;   /* requests ever queued; atomic, for the polling worker */
	bool worker_asleep;     /* in pthread_cond_wait: a new request must signal */
	uint64_t spin_ns;       /* the worker's current polling window; its own */
	bool stop, started;
	/* statistics */
	uint64_t requests, deadline_met, deadline_total, busy;
	double last_latency_us;
	unsigned last_groups, last_threads;
	unsigned long last_khz;
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
	/* One frequency per cluster: the votes of the sessions using each, and
	 * what we last set. */
	pthread_mutex_t dvfs_lock;
	struct pol_votes votes;
	unsigned long applied_khz[POL_MAX_PLACES];
	bool dvfs_off[POL_MAX_PLACES]; /* a write failed, or an operator holds the clocks */
	bool changed_freq;
	char cache_dir[512];
	/* OpenCL devices, opened on first use by any model (kernels built or
	 * loaded from the binary cache once per device), by place index. */
	bool opencl;            /* offer OpenCL devices as placements */
	pthread_mutex_t cl_lock;
	struct dnn_cl *cl_devices[POL_MAX_PLACES];
};

/* The request's time as its client will see it: from sending to having the
 * reply, the return path estimated (see client_return_estimate). */
static inline double
request_e2e_us(const struct request *r)
{
	return (double)(r->done_ns - r->origin_ns) / 1e3 + r->return_us;
}

/* Open every model: discover the platform, load (or measure and cache) each
 * model's predictor with the calibration settings of `calibration`, and
 * start one worker per model. At most `threads` threads per request. */
int hosts_open(struct hosts *h, char **paths, unsigned n, unsigned threads, bool opencl,
               const struct pol_params *calibration, char **cause);
void hosts_close(struct hosts *h);
struct model_host *hosts_find(struct hosts *h, const char *name);
/* Queue a request; -EBUSY when the model's queue is full (admission control). */
int host_submit(struct model_host *m, struct request *r);
/* Drop queued requests of a connection that went away. */
void hosts_forget_client(struct hosts *h, uint64_t client_id);
/* Take the finished requests (the event loop calls this on its eventfd). */
struct request *hosts_take_done(struct hosts *h);
/* Reset the completion eventfd after it woke the loop. */
void hosts_clear_signal(struct hosts *h);
void request_free(struct request *r);
/* The operating-point table of a model under a policy, with the current
 * interference factors (for PARETO). Returns the count. */
unsigned host_table(struct model_host *m, const struct pol_params *params, struct pol_point *points, unsigned max);

#endif
