/* test_statcache.c — core/statcache.c: hits for unchanged files only,
 * racy entries re-hashed, stale entries forgotten, a broken file rebuilt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "statcache.h"

static char dir[256];

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof dir, "%s/mlx-test-statcache-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[300];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	return system(cmd);
}

static void add(struct mlx_filelist *list, const char *path, int64_t mtime, const char *hex, int64_t hashed_ns)
{
	assert_int_equal(mlx_filelist_push(list, path, 100, 0644, hex, NULL), MLX_OK);
	struct mlx_file *f = &list->items[list->len - 1];
	f->ino = 42;
	f->mtime_ns = f->ctime_ns = mtime;
	f->hashed_ns = hashed_ns;
}

#define H1 "1111111111111111111111111111111111111111111111111111111111111111"
#define H2 "2222222222222222222222222222222222222222222222222222222222222222"

static void unchanged_files_hit_changed_and_racy_ones_miss(void **state)
{
	(void)state;
	char db[300];
	snprintf(db, sizeof db, "%s/state.db", dir);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	int64_t now = mlx_hash_now_ns(), old = now - 10 * 1000000000LL;
	struct mlx_filelist list = {0};
	add(&list, "a", old, H1, now);
	add(&list, "b", now - 1000, H2, now); /* written as it was hashed: racy */
	add(&list, "c", old, H1, now);
	assert_int_equal(mlx_statcache_store(sc, "data", &list, &err), MLX_OK);
	mlx_filelist_free(&list);

	/* The same facts, now unknown: a hits, b is racy, c changed size. */
	add(&list, "a", old, NULL, 0);
	add(&list, "b", now - 1000, NULL, 0);
	add(&list, "c", old, NULL, 0);
	list.items[2].size = 101;
	size_t hits;
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 1);
	assert_string_equal(list.items[0].hex, H1);
	assert_string_equal(list.items[1].hex, "");
	assert_string_equal(list.items[2].hex, "");
	mlx_filelist_free(&list);

	/* One file looked up alone, under another prefix: no hit. */
	add(&list, "a", old, NULL, 0);
	assert_int_equal(mlx_statcache_fill(sc, "other", 0, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 0);
	mlx_filelist_free(&list);

	/* A walk without "c" forgets it. */
	add(&list, "a", old, NULL, 0);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(mlx_statcache_store(sc, "data", &list, &err), MLX_OK);
	mlx_filelist_free(&list);
	add(&list, "c", old, NULL, 0);
	assert_int_equal(mlx_statcache_fill(sc, "data", 0, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 0);
	mlx_filelist_free(&list);
	mlx_statcache_close(sc);
}

static void a_broken_database_is_rebuilt(void **state)
{
	(void)state;
	char db[300];
	snprintf(db, sizeof db, "%s/broken.db", dir);
	FILE *f = fopen(db, "wb");
	assert_non_null(f);
	fputs("this is not a database, it is a text file long enough to be looked at by sqlite......", f);
	fclose(f);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	mlx_statcache_close(sc);
	char aside[320];
	snprintf(aside, sizeof aside, "%s.broken", db);
	assert_int_equal(access(aside, F_OK), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unchanged_files_hit_changed_and_racy_ones_miss),
		cmocka_unit_test(a_broken_database_is_rebuilt),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
