/* SPDX-License-Identifier: MIT */
/* A small fork-join pool that runs one inference on N threads. Layers are
 * short (tens of microseconds), so workers spin briefly on an atomic
 * generation counter before sleeping on a condition variable: a dispatch costs
 * about a cache-line transfer while busy, and an idle daemon burns no CPU. */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "common/cause.h"
#include "common/clock.h"
#include "common/spin.h"
#include "dnn/internal.h"

/* About 50 us of polling before sleeping (spin_relax yields every 32 rounds,
 * so a pool larger than the cores it runs on still makes progress). */
#define SPIN_ROUNDS 4096

struct dnn_pool {
	unsigned threads;
	pthread_t *tids;
	hwloc_topology_t topology;
	hwloc_bitmap_t cpuset;      /* the caller's CPUs when none was given; NULL: one thread */
	hwloc_bitmap_t caller_cpus; /* the caller's while it runs a job: thread_cpus(0) */
	hwloc_bitmap_t caller_saved;
	bool caller_bound;

	pthread_mutex_t lock;
	pthread_cond_t wake, done;
	atomic_ulong generation;
	atomic_uint remaining;
	atomic_bool stop;
	atomic_ullong warm_until;   /* monotonic ns: poll instead of sleeping until then */
	void (*fn)(void *arg, unsigned index, unsigned count);
	void *arg;
};

struct worker_start {
	struct dnn_pool *pool;
	unsigned index;
};

/* Poll for the next job for SPIN_ROUNDS, or longer while the pool is
 * warmed (dnn_pool_warm), then sleep. A warm-up wakes the sleepers, which
 * poll again until it ends. */
static unsigned long
wait_generation(struct dnn_pool *pool, unsigned long seen)
{
	unsigned long now;

	for (;;) {
		for (unsigned i = 0;; i++) {
			if ((now = atomic_load_explicit(&pool->generation, memory_order_acquire)) != seen)
				return now;
			if (i >= SPIN_ROUNDS && i % 64 == 0 && monotonic_ns() >= atomic_load(&pool->warm_until))
				break;
			spin_relax(i);
		}
		pthread_mutex_lock(&pool->lock);
		if ((now = atomic_load_explicit(&pool->generation, memory_order_acquire)) == seen && !atomic_load(&pool->stop) &&
		    monotonic_ns() >= atomic_load(&pool->warm_until))
			pthread_cond_wait(&pool->wake, &pool->lock);
		pthread_mutex_unlock(&pool->lock);
		if (now != seen || atomic_load(&pool->stop))
			return atomic_load_explicit(&pool->generation, memory_order_acquire);
	}
}

void
dnn_pool_warm(struct dnn_pool *pool, uint64_t until_ns)
{
	if (pool == NULL || pool->threads == 1)
		return;
	atomic_store(&pool->warm_until, until_ns);
	pthread_mutex_lock(&pool->lock);
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
}

int
dnn_pool_set_realtime(struct dnn_pool *pool, int priority)
{
	struct sched_param sp = { .sched_priority = priority };
	int policy = priority > 0 ? SCHED_FIFO : SCHED_OTHER;

	for (unsigned i = 0; pool != NULL && i + 1 < pool->threads; i++)
		if ((errno = pthread_setschedparam(pool->tids[i], policy, &sp)) != 0)
			return -errno;
	return 0;
}

static void *
worker_main(void *p)
{
	struct worker_start *start = p;
	struct dnn_pool *pool = start->pool;
	unsigned index = start->index;
	unsigned long seen = 0;

	free(start);
	for (;;) {
		seen = wait_generation(pool, seen);
		if (atomic_load(&pool->stop))
			return NULL;
		pool->fn(pool->arg, index, pool->threads);
		if (atomic_fetch_sub_explicit(&pool->remaining, 1, memory_order_acq_rel) == 1) {
			pthread_mutex_lock(&pool->lock);
			pthread_cond_signal(&pool->done);
			pthread_mutex_unlock(&pool->lock);
		}
	}
}

static void
stop_workers(struct dnn_pool *pool, unsigned started)
{
	pthread_mutex_lock(&pool->lock);
	atomic_store(&pool->stop, true);
	atomic_fetch_add(&pool->generation, 1);
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);
	for (unsigned i = 0; i < started; i++)
		pthread_join(pool->tids[i], NULL);
}

/* Where thread i (0: the caller) runs: a CPU of its own, the i-th of the
 * cpuset, when the cpuset has one for each thread; else anywhere in it.
 * Left to choose within the set, the kernel kept waking the helper on the
 * caller's own CPU, where it spun and yielded against the caller: a fresh
 * 2-thread `gearbox model bench` (g=1) ran at 134-214 us for its first few
 * hundred inferences, against 67-77 us once the helper had been moved off,
 * and 108 us on one thread; it switched context 8 times an inference,
 * against 2. */
static void
thread_cpus(const struct dnn_pool *pool, unsigned i, hwloc_bitmap_t out)
{
	int cpu = hwloc_bitmap_first(pool->cpuset);

	if (pool->threads < 2 || (unsigned)hwloc_bitmap_weight(pool->cpuset) < pool->threads) {
		hwloc_bitmap_copy(out, pool->cpuset);
		return;
	}
	for (unsigned k = 0; k < i; k++)
		cpu = hwloc_bitmap_next(pool->cpuset, cpu);
	hwloc_bitmap_only(out, (unsigned)cpu);
}

struct dnn_pool *
dnn_pool_create(unsigned threads, hwloc_const_cpuset_t cpuset, char **cause)
{
	struct dnn_pool *pool;
	hwloc_bitmap_t where = NULL; /* a helper's CPUs */
	unsigned started = 0;

	if (threads < 1 || threads > 1024) {
		set_cause(cause, "thread count %u out of range (1 to 1024)", threads);
		return NULL;
	}
	if ((pool = calloc(1, sizeof(*pool))) == NULL || (pool->tids = calloc(threads, sizeof(pthread_t))) == NULL) {
		free(pool);
		set_cause(cause, "out of memory");
		return NULL;
	}
	pool->threads = threads;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->wake, NULL);
	pthread_cond_init(&pool->done, NULL);
	if (cpuset != NULL && hwloc_bitmap_iszero(cpuset)) {
		set_cause(cause, "empty cpuset");
		goto error;
	}
	/* Without a cpuset, several threads still get a CPU each, among those
	 * the caller may run on: the same wake-ups on one CPU otherwise. */
	if (cpuset != NULL || threads > 1) {
		if (hwloc_topology_init(&pool->topology) != 0 || hwloc_topology_load(pool->topology) != 0) {
			set_cause(cause, "hwloc cannot load the topology: %s", strerror(errno));
			goto error;
		}
		pool->cpuset = cpuset != NULL ? hwloc_bitmap_dup(cpuset) : hwloc_bitmap_alloc();
		if (cpuset == NULL && hwloc_get_cpubind(pool->topology, pool->cpuset, HWLOC_CPUBIND_THREAD) != 0)
			hwloc_bitmap_copy(pool->cpuset, hwloc_topology_get_allowed_cpuset(pool->topology));
		pool->caller_saved = hwloc_bitmap_alloc();
		pool->caller_cpus = hwloc_bitmap_alloc();
		thread_cpus(pool, 0, pool->caller_cpus);
	}
	where = hwloc_bitmap_alloc();
	for (unsigned i = 1; i < threads; i++) {
		struct worker_start *start = malloc(sizeof(*start));
		if (start == NULL) {
			set_cause(cause, "out of memory");
			goto error;
		}
		start->pool = pool;
		start->index = i;
		if ((errno = pthread_create(&pool->tids[started], NULL, worker_main, start)) != 0) {
			set_cause(cause, "cannot start worker thread: %s", strerror(errno));
			free(start);
			goto error;
		}
		started++;
		pthread_setname_np(pool->tids[started - 1], "gbx-pool");
		thread_cpus(pool, i, where);
		if (hwloc_set_thread_cpubind(pool->topology, pool->tids[started - 1], where, HWLOC_CPUBIND_THREAD) != 0) {
			char *s = NULL;
			hwloc_bitmap_asprintf(&s, where);
			set_cause(cause, "cannot bind worker thread to cpuset %s: %s", s ? s : "?", strerror(errno));
			free(s);
			goto error;
		}
	}
	hwloc_bitmap_free(where);
	return pool;
error:
	hwloc_bitmap_free(where);
	stop_workers(pool, started);
	pool->threads = 0;
	dnn_pool_free(pool);
	return NULL;
}

void
dnn_pool_free(struct dnn_pool *pool)
{
	if (pool == NULL)
		return;
	if (pool->threads > 0)
		stop_workers(pool, pool->threads - 1);
	if (pool->topology != NULL)
		hwloc_topology_destroy(pool->topology);
	hwloc_bitmap_free(pool->cpuset);
	hwloc_bitmap_free(pool->caller_saved);
	hwloc_bitmap_free(pool->caller_cpus);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->wake);
	pthread_cond_destroy(&pool->done);
	free(pool->tids);
	free(pool);
}

unsigned
dnn_pool_threads(const struct dnn_pool *pool)
{
	return pool != NULL ? pool->threads : 1;
}

void
dnn_pool_run(struct dnn_pool *pool, void (*fn)(void *arg, unsigned index, unsigned count), void *arg)
{
	if (pool == NULL || pool->threads == 1) {
		fn(arg, 0, 1);
		return;
	}
	pool->fn = fn;
	pool->arg = arg;
	atomic_store_explicit(&pool->remaining, pool->threads - 1, memory_order_relaxed);
	pthread_mutex_lock(&pool->lock);
	atomic_fetch_add_explicit(&pool->generation, 1, memory_order_release);
	pthread_cond_broadcast(&pool->wake);
	pthread_mutex_unlock(&pool->lock);

	fn(arg, 0, pool->threads);

	for (int i = 0; i < SPIN_ROUNDS; i++) {
		if (atomic_load_explicit(&pool->remaining, memory_order_acquire) == 0)
			return;
		spin_relax((unsigned)i);
	}
	pthread_mutex_lock(&pool->lock);
	while (atomic_load_explicit(&pool->remaining, memory_order_acquire) != 0)
		pthread_cond_wait(&pool->done, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
}

void
dnn_pool_enter(struct dnn_pool *pool)
{
	if (pool == NULL || pool->cpuset == NULL)
		return;
	pool->caller_bound = hwloc_get_cpubind(pool->topology, pool->caller_saved, HWLOC_CPUBIND_THREAD) == 0 &&
	                     hwloc_set_cpubind(pool->topology, pool->caller_cpus, HWLOC_CPUBIND_THREAD) == 0;
}

void
dnn_pool_leave(struct dnn_pool *pool)
{
	if (pool == NULL || !pool->caller_bound)
		return;
	hwloc_set_cpubind(pool->topology, pool->caller_saved, HWLOC_CPUBIND_THREAD);
	pool->caller_bound = false;
}
