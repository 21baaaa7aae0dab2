/* SPDX-License-Identifier: MIT */
/* Thread pool: every share runs exactly once per dispatch, over many
 * dispatches; threads are bound to the cpuset they were given, one CPU each
 * where it has as many (also with none given); the caller's
 * own binding is put back after an inference. */
#include "config.h"
#include "tests/common/check_main.h"

#include <check.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "dnn/dnn.h"
#include "dnn/internal.h"

struct counts {
	atomic_uint hits[16];
	atomic_uint wrong_count;
};

static void
count_share(void *arg, unsigned index, unsigned count)
{
	struct counts *c = arg;

	atomic_fetch_add(&c->hits[index], 1);
	if (count != 16 && count > 8)
		atomic_fetch_add(&c->wrong_count, 1);
}

START_TEST(test_every_share_once)
{
	for (unsigned threads = 1; threads <= 8; threads++) {
		struct dnn_pool *pool = dnn_pool_create(threads, NULL, NULL);
		struct counts c;
		memset(&c, 0, sizeof(c));
		ck_assert_ptr_nonnull(pool);
		ck_assert_uint_eq(dnn_pool_threads(pool), threads);
		for (unsigned i = 0; i < 3000; i++)
			dnn_pool_run(pool, count_share, &c);
		for (unsigned t = 0; t < 16; t++)
			ck_assert_uint_eq(atomic_load(&c.hits[t]), t < threads ? 3000 : 0);
		ck_assert_uint_eq(atomic_load(&c.wrong_count), 0);
		dnn_pool_free(pool);
	}
}
END_TEST

struct binding {
	hwloc_topology_t topo;
	hwloc_bitmap_t seen[4];
};

static void
record_binding(void *arg, unsigned index, unsigned count)
{
	struct binding *b = arg;

	hwloc_get_cpubind(b->topo, b->seen[index], HWLOC_CPUBIND_THREAD);
}

START_TEST(test_threads_bound_to_cpuset)
{
	struct binding b;
	hwloc_bitmap_t want = hwloc_bitmap_alloc(), before = hwloc_bitmap_alloc(), after = hwloc_bitmap_alloc();
	struct dnn_pool *pool;
	char *cause = NULL;

	ck_assert_int_eq(hwloc_topology_init(&b.topo), 0);
	ck_assert_int_eq(hwloc_topology_load(b.topo), 0);
	/* The last allowed CPU, so that the binding differs from "anywhere". */
	hwloc_bitmap_only(want, (unsigned)hwloc_bitmap_last(hwloc_topology_get_allowed_cpuset(b.topo)));
	for (int i = 0; i < 4; i++)
		b.seen[i] = hwloc_bitmap_alloc();
	pool = dnn_pool_create(4, want, &cause);
	ck_assert_msg(pool != NULL, "%s", cause);
	hwloc_get_cpubind(b.topo, before, HWLOC_CPUBIND_THREAD);
	dnn_pool_enter(pool);
	dnn_pool_run(pool, record_binding, &b);
	dnn_pool_leave(pool);
	hwloc_get_cpubind(b.topo, after, HWLOC_CPUBIND_THREAD);
	for (int i = 0; i < 4; i++)
		ck_assert_msg(hwloc_bitmap_isequal(b.seen[i], want), "thread %d not bound to the cpuset", i);
	ck_assert(hwloc_bitmap_isequal(before, after));
	dnn_pool_free(pool);
	for (int i = 0; i < 4; i++)
		hwloc_bitmap_free(b.seen[i]);
	hwloc_bitmap_free(want);
	hwloc_bitmap_free(before);
	hwloc_bitmap_free(after);
	hwloc_topology_destroy(b.topo);
}
END_TEST

/* As many CPUs as threads: one each, the caller on the first while it
 * runs a job (left to the kernel, the helper kept waking on the caller's
 * CPU). Needs two CPUs. */
START_TEST(test_one_cpu_per_thread)
{
	struct binding b;
	hwloc_bitmap_t set = hwloc_bitmap_alloc(), one = hwloc_bitmap_alloc();
	struct dnn_pool *pool;
	char *cause = NULL;
	int first, second;

	ck_assert_int_eq(hwloc_topology_init(&b.topo), 0);
	ck_assert_int_eq(hwloc_topology_load(b.topo), 0);
	first = hwloc_bitmap_first(hwloc_topology_get_allowed_cpuset(b.topo));
	second = hwloc_bitmap_next(hwloc_topology_get_allowed_cpuset(b.topo), first);
	if (second < 0) {
		hwloc_topology_destroy(b.topo);
		hwloc_bitmap_free(set);
		hwloc_bitmap_free(one);
		return; /* one CPU: nothing to tell apart */
	}
	hwloc_bitmap_set(set, (unsigned)first);
	hwloc_bitmap_set(set, (unsigned)second);
	for (int i = 0; i < 4; i++)
		b.seen[i] = hwloc_bitmap_alloc();
	for (int given = 0; given < 2; given++) { /* the cpuset, then NULL (all allowed: the first two) */
		pool = dnn_pool_create(2, given == 0 ? set : NULL, &cause);
		ck_assert_msg(pool != NULL, "%s", cause);
		dnn_pool_enter(pool);
		dnn_pool_run(pool, record_binding, &b);
		dnn_pool_leave(pool);
		hwloc_bitmap_only(one, (unsigned)first);
		ck_assert_msg(hwloc_bitmap_isequal(b.seen[0], one), "the caller not on the first CPU (cpuset %s)",
		              given == 0 ? "given" : "NULL");
		hwloc_bitmap_only(one, (unsigned)second);
		ck_assert_msg(hwloc_bitmap_isequal(b.seen[1], one), "the helper not on the second CPU (cpuset %s)",
		              given == 0 ? "given" : "NULL");
		dnn_pool_free(pool);
	}
	for (int i = 0; i < 4; i++)
		hwloc_bitmap_free(b.seen[i]);
	hwloc_bitmap_free(set);
	hwloc_bitmap_free(one);
	hwloc_topology_destroy(b.topo);
}
END_TEST

START_TEST(test_bad_arguments)
{
	char *cause = NULL;
	hwloc_bitmap_t empty = hwloc_bitmap_alloc();

	ck_assert_ptr_null(dnn_pool_create(0, NULL, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "thread count 0 out of range"));
	free(cause);
	cause = NULL;
	ck_assert_ptr_null(dnn_pool_create(2, empty, &cause));
	ck_assert_ptr_nonnull(strstr(cause, "empty cpuset"));
	free(cause);
	hwloc_bitmap_free(empty);
}
END_TEST

int
main(void)
{
	Suite *s = suite_create("dnn-pool");
	TCase *tc = tcase_create("pool");

	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, test_every_share_once);
	tcase_add_test(tc, test_threads_bound_to_cpuset);
	tcase_add_test(tc, test_one_cpu_per_thread);
	tcase_add_test(tc, test_bad_arguments);
	suite_add_tcase(s, tc);
	return run_suite(s);
}
