/* test_filehashes.c — core/filehashes.c: the prefetched hashes of single
 * files, found by exact path, forgotten one by one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "filehashes.h"

static const char *hex_of(char c)
{
	static char hex[MLX_HASH_HEX_SIZE];
	memset(hex, c, MLX_HASH_HEX_SIZE - 1);
	hex[MLX_HASH_HEX_SIZE - 1] = '\0';
	return hex;
}

static void push(struct mlx_filelist *list, const char *path, char c)
{
	struct mlx_err err;
	assert_int_equal(mlx_filelist_push(list, path, 3, 0644, hex_of(c), &err), MLX_OK);
}

static void expect_hex(const struct mlx_filehashes *fh, const char *path, char c)
{
	const struct mlx_filehash *f = mlx_filehashes_find(fh, path, strlen(path));
	if (!c) {
		assert_null(f);
		return;
	}
	assert_non_null(f);
	assert_string_equal(f->path, path);
	assert_string_equal(f->hex, hex_of(c));
}

/* Paths are found exactly: not by a prefix, not past an embedded NUL; a
 * later record of a path replaces an earlier one; the list is taken. */
static void test_finds_exact_paths(void **state)
{
	(void)state;
	struct mlx_filelist list = {0};
	push(&list, "out/1", 'a');
	push(&list, "out/10", 'b');
	push(&list, "in.txt", 'c');
	push(&list, "out/1", 'd');
	struct mlx_filehashes *fh = NULL;
	struct mlx_err err;
	assert_int_equal(mlx_filehashes_index(&list, &fh, &err), MLX_OK);
	assert_int_equal(list.len, 0);
	assert_null(list.items);
	expect_hex(fh, "out/1", 'd');
	expect_hex(fh, "out/10", 'b');
	expect_hex(fh, "in.txt", 'c');
	expect_hex(fh, "out/", 0);
	expect_hex(fh, "out/100", 0);
	expect_hex(fh, "in", 0);
	assert_null(mlx_filehashes_find(fh, "in.txt\0x", 8));
	assert_non_null(mlx_filehashes_find(fh, "in.txt\0x", 6));
	assert_int_equal(mlx_filehashes_count(fh), 3);
	mlx_filehashes_free(fh);
}

/* A forgotten path is unknown from then on; the others, whose probe chains
 * may pass through its slot, are still found. */
static void test_forgets_one_path(void **state)
{
	(void)state;
	struct mlx_filelist list = {0};
	char path[32];
	for (int i = 0; i < 1000; i++) {
		snprintf(path, sizeof path, "out/%d", i);
		push(&list, path, 'a' + i % 6);
	}
	struct mlx_filehashes *fh = NULL;
	struct mlx_err err;
	assert_int_equal(mlx_filehashes_index(&list, &fh, &err), MLX_OK);
	for (int i = 0; i < 1000; i += 2) {
		snprintf(path, sizeof path, "out/%d", i);
		mlx_filehashes_forget(fh, path, strlen(path));
	}
	mlx_filehashes_forget(fh, "never/given", 11);
	for (int i = 0; i < 1000; i++) {
		snprintf(path, sizeof path, "out/%d", i);
		expect_hex(fh, path, i % 2 ? 'a' + i % 6 : 0);
	}
	mlx_filehashes_free(fh);
	mlx_filehashes_free(NULL);
}

/* No files: nothing is found. */
static void test_an_empty_list(void **state)
{
	(void)state;
	struct mlx_filelist list = {0};
	struct mlx_filehashes *fh = NULL;
	struct mlx_err err;
	assert_int_equal(mlx_filehashes_index(&list, &fh, &err), MLX_OK);
	expect_hex(fh, "a", 0);
	assert_int_equal(mlx_filehashes_count(fh), 0);
	mlx_filehashes_free(fh);
}

/* An item without a hash is a path that did not exist: absent, not a file,
 * until forgotten. */
static void test_absent_paths(void **state)
{
	(void)state;
	struct mlx_filelist list = {0};
	struct mlx_err err;
	push(&list, "a", 'a');
	assert_int_equal(mlx_filelist_push(&list, "gone", 0, 0, "", &err), MLX_OK);
	struct mlx_filehashes *fh = NULL;
	assert_int_equal(mlx_filehashes_index(&list, &fh, &err), MLX_OK);
	expect_hex(fh, "gone", 0);
	assert_true(mlx_filehashes_absent(fh, "gone", 4));
	assert_false(mlx_filehashes_absent(fh, "a", 1));
	assert_false(mlx_filehashes_absent(fh, "never", 5));
	mlx_filehashes_forget(fh, "gone", 4);
	assert_false(mlx_filehashes_absent(fh, "gone", 4));
	mlx_filehashes_free(fh);
}

/* The prefetch's list: repeats and directories (ending in '/') are left
 * out, the first of each path kept in its place. */
static void test_unique_names(void **state)
{
	(void)state;
	const char *names[] = {"b", "a", "d/", "b", "", "c", "a", "d/x"};
	size_t n = sizeof names / sizeof *names;
	struct mlx_err err;
	assert_int_equal(mlx_filehashes_unique(names, &n, &err), MLX_OK);
	assert_int_equal(n, 4);
	assert_string_equal(names[0], "b");
	assert_string_equal(names[1], "a");
	assert_string_equal(names[2], "c");
	assert_string_equal(names[3], "d/x");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_finds_exact_paths), cmocka_unit_test(test_forgets_one_path),
	    cmocka_unit_test(test_an_empty_list),     cmocka_unit_test(test_unique_names),
	    cmocka_unit_test(test_absent_paths),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
