/* test_pool.c — core/pool.c: every item once, first failure reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdatomic.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(every_item_runs_exactly_once),
		cmocka_unit_test(first_failure_is_returned_with_its_message),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
