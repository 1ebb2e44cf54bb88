/* test_pool.c — core/pool.c: every item once, first failure reported, by
 * item and by worker. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>
#include <unistd.h>

#include "pool.h"

static int count_item(void *ctx, size_t i, struct mlx_err *err)
{
	(void)err;
	atomic_int *seen = ctx;
	atomic_fetch_add(&seen[i], 1);
	return MLX_OK;
}

static void every_item_runs_exactly_once(void **state)
{
	(void)state;
	static atomic_int seen[10000];
	struct mlx_err err;
	for (int jobs = 1; jobs <= 4; jobs++) {
		for (int i = 0; i < 10000; i++)
			atomic_init(&seen[i], 0);
		assert_int_equal(mlx_pool_run(10000, jobs, count_item, seen, &err), MLX_OK);
		for (int i = 0; i < 10000; i++)
			assert_int_equal(atomic_load(&seen[i]), 1);
	}
}

static int fail_at_seven(void *ctx, size_t i, struct mlx_err *err)
{
	(void)ctx;
	if (i == 7)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "item %zu is bad", i);
	return MLX_OK;
}

static void first_failure_is_returned_with_its_message(void **state)
{
	(void)state;
	struct mlx_err err;
	assert_int_equal(mlx_pool_run(100, 3, fail_at_seven, NULL, &err), MLX_ERR_INVALID);
	assert_string_equal(err.msg, "item 7 is bad");
	assert_int_equal(mlx_pool_run(0, 3, fail_at_seven, NULL, &err), MLX_OK);
	assert_true(mlx_pool_default_jobs() >= 1);
}

struct taken {
	atomic_int seen[5000];
	atomic_int workers;
};

/* A worker taking items two at a time, as the hashing lanes do. */
static int take_pairs(void *ctx, struct mlx_pool *pool, struct mlx_err *err)
{
	(void)err;
	struct taken *t = ctx;
	atomic_fetch_add(&t->workers, 1);
	size_t a, b;
	for (;;) {
		int got_a = mlx_pool_take(pool, &a), got_b = mlx_pool_take(pool, &b);
		if (got_a)
			atomic_fetch_add(&t->seen[a], 1);
		if (got_b)
			atomic_fetch_add(&t->seen[b], 1);
		if (!got_a || !got_b)
			return MLX_OK;
	}
}

static void workers_take_every_item_exactly_once(void **state)
{
	(void)state;
	static struct taken t;
	struct mlx_err err;
	for (int jobs = 1; jobs <= 4; jobs++) {
		for (int i = 0; i < 5000; i++)
			atomic_init(&t.seen[i], 0);
		atomic_init(&t.workers, 0);
		assert_int_equal(mlx_pool_run_workers(5000, jobs, take_pairs, &t, &err), MLX_OK);
		for (int i = 0; i < 5000; i++)
			assert_int_equal(atomic_load(&t.seen[i]), 1);
		assert_int_equal(atomic_load(&t.workers), jobs);
	}
	/* No items: no worker needs to run, and nothing fails. */
	atomic_init(&t.workers, 0);
	assert_int_equal(mlx_pool_run_workers(0, 4, take_pairs, &t, &err), MLX_OK);
	assert_int_equal(atomic_load(&t.workers), 0);
}

static int fail_on_item_three(void *ctx, struct mlx_pool *pool, struct mlx_err *err)
{
	atomic_int *after = ctx;
	size_t i;
	while (mlx_pool_take(pool, &i)) {
		if (i == 3)
			return mlx_err_set(err, MLX_ERR_IO, 0, "cannot read item %zu", i);
		if (i > 1000)
			atomic_fetch_add(after, 1);
	}
	return MLX_OK;
}

static void a_failing_worker_stops_the_others(void **state)
{
	(void)state;
	atomic_int after;
	atomic_init(&after, 0);
	struct mlx_err err;
	assert_int_equal(mlx_pool_run_workers(1000000, 2, fail_on_item_three, &after, &err), MLX_ERR_IO);
	assert_string_equal(err.msg, "cannot read item 3");
	/* The other worker stopped taking items soon after, not at the end. */
	assert_true(atomic_load(&after) < 900000);
}

static int slow_item(void *ctx, size_t i, struct mlx_err *err)
{
	(void)ctx;
	(void)i;
	(void)err;
	usleep(5000);
	return MLX_OK;
}

struct reports {
	int calls, stop_after;
	size_t last, n;
};

static int count_report(void *ctx, size_t started, size_t n)
{
	struct reports *r = ctx;
	assert_true(started >= r->last); /* never goes back */
	assert_true(started <= n);
	r->last = started;
	r->n = n;
	return ++r->calls == r->stop_after;
}

static void progress_is_reported_on_the_calling_thread(void **state)
{
	(void)state;
	struct reports r = {0};
	struct mlx_progress progress = {.report = count_report, .ctx = &r};
	struct mlx_err err;
	/* One job: with a progress the work still runs in a thread of its own. */
	assert_int_equal(mlx_pool_run_progress(100, 1, slow_item, NULL, &progress, &err), MLX_OK);
	assert_true(r.calls >= 2); /* 100 × 5 ms, a report every 100 ms */
	assert_int_equal(r.n, 100);
}

static void a_report_can_stop_the_run(void **state)
{
	(void)state;
	struct reports r = {.stop_after = 1};
	struct mlx_progress progress = {.report = count_report, .ctx = &r};
	struct mlx_err err;
	assert_int_equal(mlx_pool_run_progress(1000, 2, slow_item, NULL, &progress, &err), MLX_ERR_INTERRUPTED);
	assert_int_equal(r.calls, 1);
	assert_true(r.last < 1000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_item_runs_exactly_once),
		cmocka_unit_test(first_failure_is_returned_with_its_message),
		cmocka_unit_test(workers_take_every_item_exactly_once),
		cmocka_unit_test(a_failing_worker_stops_the_others),
		cmocka_unit_test(progress_is_reported_on_the_calling_thread),
		cmocka_unit_test(a_report_can_stop_the_run),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
