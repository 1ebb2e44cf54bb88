/* test_lockindex.c — core/lockindex.c: the index of mlx.lock's steps, found
 * by step name, only for the lock (header) it was made from. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lockindex.h"

static char path[64];

static void write_index(const char *text)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(path, sizeof path, "/tmp/mlx-test-lockindex-XXXXXX");
	int fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static void expect_rest(const struct mlx_lockindex *idx, const char *name, const char *rest)
{
	size_t len = 0;
	const char *got = mlx_lockindex_find(idx, name, strlen(name), &len);
	if (!rest) {
		assert_null(got);
		return;
	}
	assert_non_null(got);
	assert_int_equal(len, strlen(rest));
	assert_memory_equal(got, rest, len);
}

/* The steps of one pipeline, by name; a later line replaces an earlier one;
 * other pipelines, names that merely start alike and lines without a
 * second tab are not steps of it. */
static void test_finds_the_steps_of_one_pipeline(void **state)
{
	(void)state;
	write_index("mlx lock-steps 2 abc\n"
	            "p\ta\tK1\tout/a\tH1\n"
	            "q\ta\tKQ\n"
	            "pp\tb\tKPP\n"
	            "p\tb\tK2\n"
	            "p\tbroken\n"
	            "\n"
	            "p\ta\tK3\tout/a\tH3\tout/b\tH4\n"
	            "p\t\tKEMPTY");
	struct mlx_lockindex *idx = NULL;
	struct mlx_err err;
	assert_int_equal(mlx_lockindex_read(path, "mlx lock-steps 2 abc", "p", &idx, &err), MLX_OK);
	assert_int_equal(mlx_lockindex_count(idx), 3);
	expect_rest(idx, "a", "K3\tout/a\tH3\tout/b\tH4");
	expect_rest(idx, "b", "K2");
	expect_rest(idx, "", "KEMPTY");
	expect_rest(idx, "broken", NULL);
	expect_rest(idx, "c", NULL);
	size_t name_len, rest_len;
	const char *rest;
	const char *name = mlx_lockindex_at(idx, 1, &name_len, &rest, &rest_len);
	assert_int_equal(name_len, 1);
	assert_memory_equal(name, "b", 1);
	assert_memory_equal(rest, "K2", rest_len);
	mlx_lockindex_free(idx);
}

/* An index made from another lock, of another version or damaged is not
 * read; a missing one says so. */
static void test_only_the_index_of_this_lock_is_read(void **state)
{
	(void)state;
	struct mlx_lockindex *idx = NULL;
	struct mlx_err err;
	write_index("mlx lock-steps 2 abc\np\ta\tK\n");
	assert_int_equal(mlx_lockindex_read(path, "mlx lock-steps 2 abd", "p", &idx, &err), MLX_ERR_INVALID);
	assert_null(idx);
	assert_int_equal(mlx_lockindex_read(path, "mlx lock-steps 2 ab", "p", &idx, &err), MLX_ERR_INVALID);
	write_index("mlx lock-steps 2 abc");
	assert_int_equal(mlx_lockindex_read(path, "mlx lock-steps 2 abc", "p", &idx, &err), MLX_ERR_INVALID);
	write_index("garbage\n");
	assert_int_equal(mlx_lockindex_read(path, "mlx lock-steps 2 abc", "p", &idx, &err), MLX_ERR_INVALID);
	unlink(path);
	assert_int_equal(mlx_lockindex_read(path, "mlx lock-steps 2 abc", "p", &idx, &err), MLX_ERR_NOTFOUND);
	assert_null(idx);
}

/* Many steps: each is found, with its own line (the table grows with them). */
static void test_many_steps(void **state)
{
	(void)state;
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs("h\n", f);
	for (int i = 0; i < 50000; i++)
		fprintf(f, "p\ts%d\tK%d\n", i, i);
	fclose(f);
	struct mlx_lockindex *idx = NULL;
	struct mlx_err err;
	assert_int_equal(mlx_lockindex_read(path, "h", "p", &idx, &err), MLX_OK);
	assert_int_equal(mlx_lockindex_count(idx), 50000);
	char name[32], rest[32];
	for (int i = 0; i < 50000; i += 7) {
		snprintf(name, sizeof name, "s%d", i);
		snprintf(rest, sizeof rest, "K%d", i);
		expect_rest(idx, name, rest);
	}
	expect_rest(idx, "s50000", NULL);
	mlx_lockindex_free(idx);
	mlx_lockindex_free(NULL);
}

/* An index read stays as it was read when the file is replaced (it is
 * only ever written by a rename), and an empty file is no index. */
static void test_an_index_read_outlives_its_replacement(void **state)
{
	(void)state;
	write_index("h\np\ta\tK1\tout/a\tH1\n");
	struct mlx_lockindex *idx = NULL;
	struct mlx_err err;
	assert_int_equal(mlx_lockindex_read(path, "h", "p", &idx, &err), MLX_OK);
	char next[80];
	snprintf(next, sizeof next, "%s.next", path);
	FILE *f = fopen(next, "wb");
	assert_non_null(f);
	fputs("h\np\ta\tK2\n", f);
	fclose(f);
	assert_int_equal(rename(next, path), 0);
	expect_rest(idx, "a", "K1\tout/a\tH1");
	mlx_lockindex_free(idx);
	assert_int_equal(mlx_lockindex_read(path, "h", "p", &idx, &err), MLX_OK);
	expect_rest(idx, "a", "K2");
	mlx_lockindex_free(idx);
	write_index("");
	assert_int_equal(mlx_lockindex_read(path, "h", "p", &idx, &err), MLX_ERR_INVALID);
	assert_null(idx);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(test_finds_the_steps_of_one_pipeline, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_only_the_index_of_this_lock_is_read, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_many_steps, setup, teardown),
	    cmocka_unit_test_setup_teardown(test_an_index_read_outlives_its_replacement, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
