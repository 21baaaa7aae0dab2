/* SPDX-License-Identifier: MIT */
/* gearboxd's insides, shared by its files (not installed):
 *
 *   gearboxd.c  lifecycle: options, configuration, the socket, the sd-event
 *               loop of the main thread (accept, signals, timers), reload
 *   conn.c      connections: framing, reading with a budget, sending
 *   handlers.c  one handler per message type, with its privilege
 *   replies.c   encoders: JSON replies, errors, events, the INFER reply
 *   sessions.c  the session record: budgets, statistics, arrival pattern
 *   stats.c     STATUS and STATS
 *   serve.c     the models, the request queue and one worker per placement
 *
 * The request path (docs/protocol.md has the wire side). Every idle worker
 * waits on one epoll set holding every connection (EPOLLONESHOT, so one
 * thread at a time owns a connection). The worker that the kernel wakes for
 * a connection reads its frames; an INFER is admitted into the daemon's
 * queue, and the same worker, idle, takes the next request (earliest
 * deadline first among each connection's earliest) and runs it on its own
 * placement — no thread hand-off — unless the control loop finds another
 * placement better, which it then hands the request to. The reply leaves
 * from the worker that ran it. The main thread never touches a request.
 *
 * Locks, in this order: daemon.lock (connections list, sessions, queue,
 * workers' states, policies, counters), then host.lock (a model's control
 * loop), then conn.lock (a connection's output). Nothing takes daemon.lock
 * while holding another.
 */
#ifndef GEARBOX_DAEMON_DAEMON_H
#define GEARBOX_DAEMON_DAEMON_H

#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <json-c/json.h>
#include <systemd/sd-event.h>

#include "daemon/arrival.h"
#include "daemon/decode.h"
#include "daemon/return_path.h"
#include "daemon/settings.h"
#include "dnn/dnn.h"
#include "governor/governor.h"
#include "policies/control.h"
#include "policies/policy.h"
#include "policies/runtime.h"
#include "proto/frame.h"
#include "proto/protocol.h"

#define MAX_SESSIONS_PER_CLIENT 64
#define LIMIT_FRAME_BYTES 256    /* room past a client's output budget for the error that closes it */
#define CLOSING_PATIENCE_S 10    /* then a client that has not read that error is closed anyway */
#define QUEUE_PER_MODEL 64       /* admission control: BUSY beyond */
#define INFLIGHT_PER_CLIENT 32   /* requests one connection may have queued or running */
#define READ_BUDGET (256u << 10) /* bytes read from one connection per turn: others get theirs */
#define SESSION_WINDOW 256
/* An idle worker's polling window after a request (adapts, see serve.c). */
#define WORKER_SPIN_MIN_NS 20000
#define WORKER_SPIN_START_NS 60000
#define WORKER_SPIN_MAX_NS 400000
#define DUTY_TAU_NS 50e6         /* how far back a worker's duty looks (see share_when_saturated) */

struct daemon;
struct host;

/* ---- connections (conn.c) ------------------------------------------------ */

struct conn {
	struct daemon *daemon;
	uint64_t id;
	int fd;
	uid_t uid;
	gid_t gid;
	bool admin;             /* root or the admin group (gearboxd.conf admin_group): see gearboxd(8) ROLES */
	bool subscribed;        /* daemon.lock */
	/* reading: only the thread that owns the connection (EPOLLONESHOT) */
	struct gbx_frame_reader in;
	struct gbx_header h;    /* the frame being handled (in's) */
	unsigned char *payload; /* its payload, owned by in: h.length bytes + NUL */
	uint64_t frame_ns;      /* when the current frame was complete */
	uint64_t partial_ns;    /* atomic: when the first byte of an incomplete frame came (0: none) */
	uint64_t active_ns;     /* atomic: when its last frame was complete (or it connected) */
	size_t in_held;         /* bytes of d->in_total its incomplete frame holds */
	/* output: under lock. What the socket does not take at once waits in
	 * `out`, and the main thread flushes it when the socket is writable
	 * (watching wfd, a dup of fd, so that the workers' input epoll set
	 * keeps one owner per connection). */
	pthread_mutex_t lock;
	int wfd;
	unsigned char *out;
	size_t out_len, out_cap;
	bool flush_posted;      /* the main thread has been asked to flush */
	bool broken;            /* a send failed: close */
	bool closing;           /* told why it is closed: nothing more is queued; shut once flushed */
	uint64_t closing_ns;    /* when (the sweep shuts a client that never reads) */
	bool gone;              /* closed: nothing more is sent */
	sd_event_source *out_source; /* the main thread's only */
	unsigned refs;          /* atomic: the list (then the close notice), each request, each flush notice */
	struct conn *post_next; /* the main thread's notice list (post_lock) */
	bool listed;
	unsigned notices;       /* NOTICE_* */
	/* daemon.lock */
	unsigned inflight;      /* requests queued or running */
	struct return_path returns; /* how long its replies took to reach it */
	struct request *scan_head; /* queue_take's scratch */
	uint64_t scan_gen;
	struct conn *next;
};

#define NOTICE_FLUSH 1u /* output waits: watch the socket for writing */
#define NOTICE_CLOSE 2u /* closed: drop the watch and the list's reference */

struct conn *conn_new(struct daemon *d, int fd);
void conn_ref(struct conn *c);
void conn_unref(struct conn *c);
/* The main thread's side: notices posted by the workers (flush this
 * connection when writable; forget this closed one). */
void conn_take_notices(struct daemon *d);
/* Queue a frame and send what the socket takes; -ENOBUFS/-EPIPE when the
 * connection must close (it is marked broken). */
int conn_send_frame(struct conn *c, uint16_t type, uint32_t id, const void *payload, size_t len);
/* Send a frame whose 16-byte header is already in place. */
int conn_send_raw(struct conn *c, const unsigned char *frame, size_t len);
/* Serve one readiness event of a connection owned by the calling thread:
 * flush, read up to READ_BUDGET, handle the frames, then give the
 * connection back to the epoll set (or close it). */
void conn_service(struct daemon *d, struct conn *c, uint32_t events);
/* Take the connection away (daemon.lock held): sessions closed, queued
 * requests dropped; requests running finish and are dropped. */
void conn_sweep(struct daemon *d); /* main thread: timeouts (see conn.c) */
void conn_close_locked(struct daemon *d, struct conn *c);
/* Wake the main thread (its notice eventfd): on_notice takes the connections'
 * notices and a PM QoS request a worker asked for. */
void wake_main_thread(struct daemon *d);

/* ---- replies (replies.c) ------------------------------------------------- */

int send_json(struct conn *c, uint16_t type, uint32_t id, struct json_object *o);
int send_error(struct conn *c, uint32_t id, const char *code, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* To every subscriber (daemon.lock held); takes the reference. */
void broadcast_event(struct daemon *d, struct json_object *event);
struct request;
/* The whole INFER reply frame of a finished request: header, then JSON.
 * sent_ns is when it is about to leave (for daemon_us). NULL when out of
 * memory. */
unsigned char *infer_reply_frame(const struct request *r, const char *placement, uint64_t sent_ns, size_t *frame_len);

/* ---- sessions (sessions.c) ----------------------------------------------- */

struct session {
	uint32_t id;
	struct conn *owner;
	uid_t uid;
	struct host *host;
	struct budget budget;
	int priority;
	char policy[POL_NAME];
	struct pol_session state;   /* hysteresis, step controller */
	struct arrival arrival;
	unsigned home;              /* the placement its last request ran on */
	unsigned home_threads, home_groups;
	double home_us;             /* what it took */
	bool infeasible;            /* its last request's budget fit no point (logged once) */
	/* the tenant plan's room for it (plan.c; daemon.lock) */
	bool planned, plan_served;
	uint64_t plan_gen;
	unsigned plan_groups, plan_place, plan_threads;
	unsigned long plan_khz;      /* 0: the placement's clock is not planned */
	double plan_util;            /* its share of its planned placement's time (rate x latency) */
	double plan_latency_us, plan_deadline_us; /* its planned point's latency, the deadline planned for */
	double planned_rate;         /* the rate the last plan assumed */
	/* statistics */
	uint64_t requests, deadline_met, deadline_total, groups_sum;
	double recent_us[SESSION_WINDOW]; /* end-to-end, for percentiles */
};

struct session_table {
	struct session **v;     /* by id, ascending (ids only grow) */
	unsigned n, cap;
	uint32_t next_id;
};

struct session *session_open(struct session_table *t, struct conn *owner, struct host *host, char **cause);
struct session *session_find(struct session_table *t, uint32_t id);
void session_close(struct session_table *t, struct session *s);
void session_close_owned(struct session_table *t, struct conn *owner);
unsigned session_count_owned(const struct session_table *t, const struct conn *owner);
void session_table_free(struct session_table *t);

/* ---- requests and serving (serve.c) -------------------------------------- */

/* An INFER from admission to reply (a CALIBRATE is carried in one too: its
 * connection, message id, model and policy). */
struct request {
	struct conn *conn;      /* a reference; replies go here */
	struct host *host;
	uint32_t msg_id;
	uint32_t session;
	struct budget budget;
	struct pol_params params;   /* the session's policy, resolved for its model */
	uint64_t origin_ns;     /* when the client sent it ("sent_ns"), else when it was read */
	uint64_t received_ns;   /* its frame complete in the daemon */
	uint64_t deadline_ns;   /* EDF key: origin + deadline - return path (UINT64_MAX: none) */
	double return_us;       /* time from the reply leaving to the client having it: about its 98.5th percentile */
	double return_typical_us; /* the same, its median (what predicted_e2e_us adds) */
	float *input, *output;
	/* filled when it runs */
	uint64_t start_ns, done_ns;
	struct pol_choice choice;
	bool cold;
	unsigned cls;
	double latency_us, queue_us, energy_uj, sensor_uj;
	const char *energy_source;
	unsigned long khz;
	double predicted_e2e_us;
	char fallback[300];     /* why it left the placement it was chosen for */
	char failed_place[POL_NAME];
	char failed[300];       /* it could not run at all: an error reply */
};

static inline double
request_e2e_us(const struct request *r)
{
	return (double)(r->done_ns - r->origin_ns) / 1e3 + r->return_us;
}

static inline bool
request_met(const struct request *r)
{
	return r->budget.deadline_us == 0 || request_e2e_us(r) <= (double)r->budget.deadline_us;
}

void request_free(struct request *r); /* daemon.lock held (drops the conn reference) */

/* One hosted model. */
struct host {
	struct daemon *daemon;
	char *path;
	struct dnn_model *model;
	struct pol_runtime *runtime;
	pthread_mutex_t lock;        /* the control loop */
	struct pol_control control;
	unsigned threads;            /* at most this many per request (gearboxd.conf) */
	bool lock_made;
	bool calibrating;            /* daemon.lock: its requests wait */
	pthread_t calibration_thread;
	bool calibration_thread_started;
	unsigned running;            /* daemon.lock: its requests on workers now */
	/* daemon.lock */
	unsigned queued;
	uint64_t requests, busy_rejections, deadline_met, deadline_total;
	double last_latency_us;
	unsigned last_groups, last_threads, announced_groups;
	unsigned long last_khz;
	char placement[POL_NAME];
	/* the file, to see on reload whether it changed (serve_reload_models) */
	struct stat file;
	bool swapping;               /* daemon.lock: a new copy is being loaded */
	pthread_t swap_thread;
	bool swap_thread_started;
};

/* What a model swap replaced: freed at exit, since a worker's warm-up may
 * still hold an engine of it. */
struct retired {
	struct dnn_model *model;
	struct pol_runtime *runtime;
	struct pol_control control;
	struct retired *next;
};

/* One worker thread per placement, bound to it, serving every model. */
struct worker {
	struct daemon *daemon;
	unsigned place;
	pthread_t thread;
	bool started;
	sigset_t wait_mask;          /* the thread's mask with SIGUSR1 let through */
	/* daemon.lock */
	bool busy;
	bool asleep;                 /* blocked in epoll: a hand-off must signal it */
	bool polling;                /* in poll_until (atomic): holds its CPU without work */
	uint64_t busy_until_ns;      /* predicted end of what it runs */
	uint64_t last_done_ns;
	/* when an engine of each thread count last ran here (or was warmed):
	 * a pool idle longer than POL_COLD_GAP_US is cold however warm the
	 * placement's own CPU is */
	uint64_t threads_done_ns[POL_MAX_THREADS + 1];
	/* the pool threads besides itself that its last run or warm-up left
	 * polling other CPUs, and until when (see may_poll) */
	unsigned pool_polling;
	uint64_t pool_polling_until_ns;
	struct request *mailbox[QUEUE_PER_MODEL];
	unsigned nmail;
	/* its own */
	uint64_t admitted_seen;      /* daemon.admitted when it last found nothing */
	uint64_t spin_ns;
	bool realtime;               /* it may be real time (it got SCHED_FIFO at start) */
	uint64_t served, warmups;
	uint64_t blocked_ns;         /* when it last blocked (realtime_share, RLIMIT_RTTIME: see breathe) */
	bool in_fifo;                /* in SCHED_FIFO now (see share_when_saturated) */
	bool tight;                  /* its last request was due within realtime_below_ms */
	double duty;                 /* recent share of its CPU spent serving */
	uint64_t duty_ns;            /* when duty was last brought up to date */
	unsigned long shared;        /* times it left SCHED_FIFO, saturated */
	float *scratch_in, *scratch_out; /* the warm-up run's */
	size_t scratch_in_n, scratch_out_n;
};

/* Per-layer plans (plans.c, gearboxd.conf `layer_plans`): load those of the
 * folder made for h's model into h's runtime, logging each refused and why;
 * returns the hash of the plans in use (0: none) for the calibration key.
 * plans_json: [{placement, threads, plan}] for STATUS. */
uint64_t plans_attach(struct daemon *d, struct host *h);
struct json_object *plans_json(const struct host *h);

int serve_open(struct daemon *d, char **cause);
int serve_start(struct daemon *d, char **cause);
void serve_stop(struct daemon *d);
void serve_close(struct daemon *d);
struct host *serve_find_host(struct daemon *d, const char *name);
/* Admit a request (daemon.lock held): -EBUSY when its model's queue or
 * its connection's share is full. */
int serve_admit(struct daemon *d, struct request *r, char *why, size_t size);
/* Drop queued requests of a connection (daemon.lock held). */
void serve_forget_conn(struct daemon *d, struct conn *c);
/* The operating-point table of a model under a policy (PARETO); returns
 * the count, *points allocated. */
unsigned host_table(struct host *h, const struct pol_params *params, struct pol_point **points);
/* Re-measure a model on a thread of its own; the reply goes to r->conn. */
int serve_calibrate(struct daemon *d, struct request *r, char **cause);
/* Models whose file changed on disk since it was loaded are loaded again in
 * the background and swapped in (daemon.lock held; the log says which). */
/* Loads every model file that changed on disk again, in the background; the
 * models being loaded again (these and earlier ones not yet done) are added
 * to `loading` as {"model", "path"} when it is not NULL. */
void serve_reload_models(struct daemon *d, struct json_object *loading);
/* The main thread's (its timer, and when a worker asks): take the PM QoS
 * request a deadline request asked for, or let it go when no deadline
 * session has sent anything for pm_qos_release_s. */
void serve_pm_qos_update(struct daemon *d);
/* The CPU latency it holds: pm_qos_latency_us, or what fits this machine
 * when that says auto. */
unsigned pm_qos_latency_us(const struct daemon *d);
/* Re-read gearboxd.conf and the policies (gearboxd.c); takes daemon.lock. */
/* -1: something refused, *error says what; `loading` as serve_reload_models. */
int daemon_reload(struct daemon *d, char **error, struct json_object *loading);
/* The administrator's policy folder (gearboxd.conf policies, or SYSCONFDIR's). */
const char *daemon_policy_dir(const struct daemon *d);

/* ---- the tenant plan (plan.c) -------------------------------------------- */

struct daemon_plan {
	bool enabled;                /* plan = yes and a solver built in */
	bool started;
	pthread_t thread;
	pthread_cond_t cond;         /* with daemon.lock */
	uint64_t wanted, done;       /* plans asked for, and the last one made (or given up) */
	char why[128];               /* what asked for the next */
	struct json_object *last;    /* the last plan, as PLAN shows it */
	uint64_t made_ns, plans;
	uint64_t outcome;            /* what the last plan gave whom (a hash): logged when it changes */
	double margin;               /* the latency margin the last plan was solved with */
};
int plan_start(struct daemon *d, char **cause);
void plan_stop(struct daemon *d); /* after serve_stop */
/* Ask for a new plan (daemon.lock held): the tenants changed. */
void plan_request(struct daemon *d, const char *why);
/* A session's requests after which it is planned once more, on their feedback */
#define PLAN_AFTER_FIRST_REQUESTS 16
/* Narrow a request's policy to the room its session was planned (daemon.lock). */
void plan_room(struct daemon *d, const struct session *s, struct pol_params *params);
/* The PLAN reply (daemon.lock). */
struct json_object *plan_json(struct daemon *d);

/* ---- handlers (handlers.c) ----------------------------------------------- */

/* Handle one complete frame of c (its owner thread). */
void handle_frame(struct daemon *d, struct conn *c);
/* "default, powersave, realtime" */
void policy_names(const struct daemon *d, char *buf, size_t size);
/* The policy `name` for a model, with gearboxd.conf on top (daemon.lock). */
void resolve_policy(struct daemon *d, const struct host *h, const char *name, struct pol_params *out);

/* ---- statistics (stats.c) ------------------------------------------------ */

/* Count a finished INFER everywhere it counts: its session, its model, the
 * daemon (daemon.lock held). */
void stats_count(struct daemon *d, const struct request *r);
/* STATUS as `viewer` may see it: its own user's sessions in detail, other
 * users' in aggregate ("other_users"), unless it is an administrator (NULL:
 * everything). */
struct json_object *stats_status(struct daemon *d, const struct conn *viewer);
bool stats_may_see(const struct conn *viewer, const struct session *s);
struct json_object *stats_session(const struct session *s);

/* Every lock of the daemon inherits priority: a real-time worker waiting
 * for a lock that an ordinary thread (the main thread, a calibration) holds
 * lifts that thread above the co-runners that would otherwise keep it, and
 * the worker, waiting for whole time slices. */
static inline void
daemon_mutex_init(pthread_mutex_t *m)
{
	pthread_mutexattr_t a;

	pthread_mutexattr_init(&a);
	pthread_mutexattr_setprotocol(&a, PTHREAD_PRIO_INHERIT);
	pthread_mutex_init(m, &a);
	pthread_mutexattr_destroy(&a);
}

/* ---- the daemon ---------------------------------------------------------- */

struct daemon {
	pthread_mutex_t lock;
	sd_event *event;
	int listen_fd;
	bool own_socket;
	char *socket_path;
	const char *config_path;     /* --config FILE: that file only; NULL: config_files() */
	struct config config;
	struct pol_set policies;
	char default_policy[POL_NAME];
	gid_t gearbox_gid;           /* the socket's group: may connect and infer */
	gid_t admin_gid;             /* may reload, calibrate, see and steer every session */
	time_t started;
	/* connections */
	int conn_epfd;               /* every connection, EPOLLONESHOT */
	struct conn *conns;
	unsigned nconns;
	struct retired *retired;     /* daemon.lock */
	size_t out_total;            /* atomic: bytes of replies waiting in every connection */
	size_t in_total;             /* atomic: bytes held for incomplete frames, every connection */
	bool accept_paused;          /* out of descriptors: the listen socket unwatched (main thread) */
	sd_event_source *accept_src;
	uint64_t next_conn_id;
	struct session_table sessions;
	/* the models and the placements */
	struct gov_platform *platform;
	const struct gov_energy_source *energy_counter;
	struct pol_devices *devices;
	bool device_told[POL_MAX_PLACES]; /* its opening was logged */
	struct host *hosts;
	unsigned nhosts;
	struct pol_place places[POL_MAX_PLACES];
	unsigned nplaces;
	struct worker workers[POL_MAX_PLACES];
	unsigned ncpus;              /* CPUs the daemon may run on (see may_poll) */
	struct request **queue;      /* admitted, waiting for a worker */
	unsigned nqueue, queue_cap;
	uint64_t admitted;           /* requests ever queued (atomic): idle workers look again */
	uint64_t scan_gen;
	bool stopping;
	/* one frequency per clock domain: the votes of the sessions using it */
	struct pol_votes votes;
	unsigned long applied_khz[POL_MAX_PLACES];
	bool dvfs_off[POL_MAX_PLACES];
	bool changed_freq;
	char cache_dir[512];
	/* PM QoS: held while deadline sessions send; only the main thread
	 * touches pm_qos itself (serve_pm_qos_update) */
	struct gov_pm_qos *pm_qos;
	uint64_t last_deadline_ns;
	bool pm_qos_failed, pm_qos_wanted; /* daemon.lock */
	bool pm_qos_held;                  /* atomic: others read it */
	unsigned pm_qos_fitting_us;        /* what pm_qos_latency_us = auto holds here */
	/* real time */
	int realtime_priority;       /* 0: none */
	bool memory_locked;          /* mlockall took (gearboxd.conf lock_memory) */
	/* notices to the main thread (conn.c) */
	pthread_mutex_t post_lock;
	struct conn *posted;
	int post_fd;                 /* eventfd */
	struct daemon_plan plan;
	/* counters */
	uint64_t requests, served, deadline_met, deadline_total;
	uint64_t served_at_last_status;
	double requests_per_s;
};

#endif
