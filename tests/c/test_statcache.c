/* test_statcache.c — core/statcache.c: hits for unchanged files only,
 * racy entries re-hashed, stale entries forgotten, trees of whole
 * directories read back exactly, a broken file rebuilt. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
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
	assert_int_equal(mlx_statcache_store(sc, "data", 0, &list, NULL, &err), MLX_OK);
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
	assert_int_equal(mlx_statcache_store(sc, "data", 1, &list, NULL, &err), MLX_OK);
	mlx_filelist_free(&list);
	add(&list, "c", old, NULL, 0);
	assert_int_equal(mlx_statcache_fill(sc, "data", 0, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 0);
	mlx_filelist_free(&list);
	mlx_statcache_close(sc);
}

/* A long list of single files (a pipeline's prefetch, read by one ordered
 * scan): in any order, with repeats, among rows of other files and with
 * files that have no row, each file gets its own row's hash, and only when
 * that row still describes it. */
static void a_long_list_is_filled_as_file_by_file(void **state)
{
	(void)state;
	char db[300];
	snprintf(db, sizeof db, "%s/long.db", dir);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	int64_t now = mlx_hash_now_ns(), old = now - 10 * 1000000000LL;
	struct mlx_filelist list = {0};
	char path[64];
	/* Rows: out/0..out/599 with H1 (every third left out), and rows of a
	 * tracked directory that sort between and around them. */
	for (int i = 0; i < 600; i++) {
		if (i % 3 == 2)
			continue;
		snprintf(path, sizeof path, "out/%d", i);
		add(&list, path, old, H1, now);
	}
	for (int i = 0; i < 400; i++) {
		snprintf(path, sizeof path, "out/%d/x%d", i * 7 % 600, i);
		add(&list, path, old, H2, now);
	}
	add(&list, "a", old, H2, now);
	add(&list, "z", old, H2, now);
	assert_int_equal(mlx_statcache_store(sc, "p", 0, &list, NULL, &err), MLX_OK);
	mlx_filelist_free(&list);
	mlx_statcache_close(sc); /* the rows written, read back by a new handle */
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);

	/* Asked for in declaration order (out/599 first, every fifth twice),
	 * one with another size (changed), and paths with no row. */
	int order[720];
	size_t n = 0;
	for (int i = 599; i >= 0; i--) {
		order[n++] = i;
		if (i % 5 == 0)
			order[n++] = i;
	}
	for (size_t k = 0; k < n; k++) {
		snprintf(path, sizeof path, "out/%d", order[k]);
		add(&list, path, old, NULL, 0);
	}
	add(&list, "out/none", old, NULL, 0);
	add(&list, "out/10", old, NULL, 0);
	list.items[list.len - 1].size = 101;
	size_t hits, expected = 0;
	assert_int_equal(mlx_statcache_fill(sc, "p", 0, &list, &hits, &err), MLX_OK);
	for (size_t k = 0; k < n; k++) {
		int has_row = order[k] % 3 != 2;
		expected += (size_t)has_row;
		assert_string_equal(list.items[k].hex, has_row ? H1 : "");
	}
	assert_string_equal(list.items[n].hex, "");
	assert_string_equal(list.items[n + 1].hex, "");
	assert_int_equal(hits, expected);
	mlx_filelist_free(&list);

	/* The same paths under another prefix have no rows. */
	for (int i = 0; i < 100; i++) {
		snprintf(path, sizeof path, "out/%d", i);
		add(&list, path, old, NULL, 0);
	}
	assert_int_equal(mlx_statcache_fill(sc, "", 0, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 0);
	mlx_filelist_free(&list);
	mlx_statcache_close(sc);
}

/* A directory of n files as a walk gives it: sorted, with facts. */
/* Rows of files stored one at a time wait in memory: another reader sees
 * them once 256 wait or the cache is closed; the same handle reads them
 * back at once. */
static void single_files_are_written_in_batches(void **state)
{
	(void)state;
	char db[300];
	snprintf(db, sizeof db, "%s/batches.db", dir);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	int64_t now = mlx_hash_now_ns(), old = now - 10 * 1000000000LL;
	struct mlx_filelist list = {0};
	/* A first write makes the database: the rows after it wait. */
	add(&list, "first", old, H1, now);
	assert_int_equal(mlx_statcache_store(sc, "", 0, &list, NULL, &err), MLX_OK);
	mlx_filelist_free(&list);
	char path[32];
	for (int i = 0; i < 300; i++) {
		snprintf(path, sizeof path, "out/%d", i);
		add(&list, path, old, H2, now);
		assert_int_equal(mlx_statcache_store(sc, "", 0, &list, NULL, &err), MLX_OK);
		mlx_filelist_free(&list);
	}
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(db, &raw), SQLITE_OK);
	sqlite3_stmt *count;
	assert_int_equal(sqlite3_prepare_v2(raw, "SELECT count(*) FROM files", -1, &count, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(count), SQLITE_ROW);
	int seen = sqlite3_column_int(count, 0);
	sqlite3_reset(count);
	assert_true(seen > 1 && seen < 301); /* some were written, the rest wait */

	/* This handle finds a waiting row, and a lookup writes nothing. */
	add(&list, "out/299", old, NULL, 0);
	size_t hits;
	assert_int_equal(mlx_statcache_fill(sc, "", 0, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 1);
	assert_string_equal(list.items[0].hex, H2);
	mlx_filelist_free(&list);
	add(&list, "out/0", old, NULL, 0);
	assert_int_equal(mlx_statcache_fill(sc, "", 0, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 1);
	mlx_filelist_free(&list);
	assert_int_equal(sqlite3_step(count), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(count, 0), seen);
	sqlite3_reset(count);

	add(&list, "last", old, H1, now);
	assert_int_equal(mlx_statcache_store(sc, "", 0, &list, NULL, &err), MLX_OK);
	mlx_filelist_free(&list);
	mlx_statcache_close(sc);
	assert_int_equal(sqlite3_step(count), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(count, 0), 302);
	sqlite3_finalize(count);
	sqlite3_close(raw);
}

static void walk_like(struct mlx_filelist *list, size_t n, int64_t mtime)
{
	char path[32];
	for (size_t i = 0; i < n; i++) {
		snprintf(path, sizeof path, "d%zu/f%04zu", i % 7, i);
		add(list, path, mtime, NULL, 0);
		list->items[list->len - 1].ino = 1000 + i;
	}
	mlx_filelist_sort(list);
}

/* As hashing does: a hash and its start time for every file not known. */
static void hash_unknown(struct mlx_filelist *list, int64_t now)
{
	for (size_t i = 0; i < list->len; i++) {
		struct mlx_file *f = &list->items[i];
		if (f->hex[0])
			continue;
		snprintf(f->hex, sizeof f->hex, "%064zx", (size_t)f->ino * 3);
		f->hashed_ns = now;
	}
}

/* Commits made by others, seen from a second connection. */
static int data_version(sqlite3 *db)
{
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA data_version", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	int v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return v;
}

static void a_whole_directory_is_read_back_from_its_tree(void **state)
{
	(void)state;
	char db[300];
	snprintf(db, sizeof db, "%s/tree.db", dir);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	int64_t now = mlx_hash_now_ns(), old = now - 10 * 1000000000LL;
	const size_t n = 3000;
	struct mlx_filelist list = {0};
	size_t hits;
	walk_like(&list, n, old);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 0);
	hash_unknown(&list, now);
	assert_int_equal(mlx_statcache_store(sc, "data", 1, &list, NULL, &err), MLX_OK);
	mlx_filelist_free(&list);

	sqlite3 *other;
	assert_int_equal(sqlite3_open(db, &other), SQLITE_OK);
	int version = data_version(other);

	/* Unchanged: every file hits, with the hash and time it was stored
	 * with, and storing again writes nothing. */
	walk_like(&list, n, old);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, n);
	for (size_t i = 0; i < n; i++) {
		char want[65];
		snprintf(want, sizeof want, "%064zx", (size_t)list.items[i].ino * 3);
		assert_string_equal(list.items[i].hex, want);
		assert_int_equal(list.items[i].cached_ns, now);
	}
	assert_int_equal(mlx_statcache_store(sc, "data", 1, &list, NULL, &err), MLX_OK);
	assert_int_equal(data_version(other), version);
	mlx_filelist_free(&list);

	/* One file rewritten (new mtime), one deleted, one added: only the
	 * rewritten and the added miss; the deleted one is forgotten. */
	walk_like(&list, n, old);
	list.items[10].mtime_ns = old + 1;
	char changed[32];
	snprintf(changed, sizeof changed, "%s", list.items[10].path);
	uint64_t changed_ino = list.items[10].ino;
	memmove(&list.items[20], &list.items[21], (list.len - 21) * sizeof *list.items);
	list.len--;
	add(&list, "zz-new", old, NULL, 0);
	list.items[list.len - 1].ino = 99999;
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, n - 2);
	assert_string_equal(list.items[10].hex, "");
	assert_string_equal(list.items[list.len - 1].hex, "");
	hash_unknown(&list, now);
	assert_int_equal(mlx_statcache_store(sc, "data", 1, &list, NULL, &err), MLX_OK);
	assert_true(data_version(other) != version);
	mlx_filelist_free(&list);

	walk_like(&list, n, old);
	list.items[10].mtime_ns = old + 1;
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, n - 1);
	assert_string_equal(list.items[20].hex, ""); /* forgotten */
	mlx_filelist_free(&list);

	/* A file of the directory looked up alone is found too. */
	add(&list, changed, old + 1, NULL, 0);
	list.items[0].ino = changed_ino;
	list.items[0].ctime_ns = old;
	assert_int_equal(mlx_statcache_fill(sc, "data", 0, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 1);
	mlx_filelist_free(&list);

	/* A damaged tree is not used: the rows still answer. */
	char trees[320], cmd[700];
	snprintf(trees, sizeof trees, "%s-trees", db);
	snprintf(cmd, sizeof cmd, "for f in '%s'/*; do truncate -s 1000 \"$f\"; done", trees);
	assert_int_equal(system(cmd), 0);
	walk_like(&list, n, old);
	list.items[10].mtime_ns = old + 1;
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, n - 1); /* all but the one deleted */
	assert_string_equal(list.items[20].hex, "");
	mlx_filelist_free(&list);

	/* Racy entries in a tree are not trusted. */
	walk_like(&list, 5, now - 1000);
	assert_int_equal(mlx_statcache_fill(sc, "racy", 1, &list, &hits, &err), MLX_OK);
	hash_unknown(&list, now);
	assert_int_equal(mlx_statcache_store(sc, "racy", 1, &list, NULL, &err), MLX_OK);
	mlx_filelist_free(&list);
	walk_like(&list, 5, now - 1000);
	assert_int_equal(mlx_statcache_fill(sc, "racy", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 0);
	mlx_filelist_free(&list);

	sqlite3_close(other);
	mlx_statcache_close(sc);
}

/* The manifest id recorded with a tree is given back only when the tree
 * matches every file exactly, modes included. */
static void a_tree_gives_back_its_manifest_id_only_when_all_match(void **state)
{
	(void)state;
	char db[300];
	snprintf(db, sizeof db, "%s/ids.db", dir);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	int64_t now = mlx_hash_now_ns(), old = now - 10 * 1000000000LL;
	struct mlx_filelist list = {0};
	size_t hits;
	char id[MLX_HASH_HEX_SIZE];
	walk_like(&list, 100, old);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(mlx_statcache_id(sc, "data", id), 0);
	hash_unknown(&list, now);
	assert_int_equal(mlx_statcache_store(sc, "data", 1, &list, H2, &err), MLX_OK);
	mlx_filelist_free(&list);

	walk_like(&list, 100, old);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 100);
	assert_int_equal(mlx_statcache_id(sc, "data", id), 1);
	assert_string_equal(id, H2);
	assert_int_equal(mlx_statcache_id(sc, "other", id), 0);
	mlx_filelist_free(&list);

	/* A mode changed (chmod also changes ctime; here only the mode, as a
	 * walk racing a chmod could see): that file misses, no id. */
	walk_like(&list, 100, old);
	list.items[5].mode = 0755;
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 99);
	assert_int_equal(mlx_statcache_id(sc, "data", id), 0);
	mlx_filelist_free(&list);

	/* A file more, or one less: no id. */
	walk_like(&list, 100, old);
	add(&list, "zz", old, NULL, 0);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(mlx_statcache_id(sc, "data", id), 0);
	mlx_filelist_free(&list);
	walk_like(&list, 99, old);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 99);
	assert_int_equal(mlx_statcache_id(sc, "data", id), 0);
	mlx_filelist_free(&list);

	/* A file whose hash came from elsewhere (a link into the store: no
	 * facts) is not in the tree, so no id is recorded with it. */
	walk_like(&list, 100, old);
	add(&list, "linked", 0, H1, 0);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(mlx_statcache_store(sc, "data", 1, &list, H1, &err), MLX_OK);
	mlx_filelist_free(&list);
	walk_like(&list, 100, old);
	add(&list, "linked", 0, H1, 0);
	assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 100);
	assert_int_equal(mlx_statcache_id(sc, "data", id), 0);
	mlx_filelist_free(&list);
	mlx_statcache_close(sc);
}

/* Patches the one tree in db-trees: len bytes at off (from the end if
 * negative). */
static void patch_tree(const char *db, long off, const void *bytes, size_t len)
{
	char cmd[400], path[400];
	snprintf(cmd, sizeof cmd, "ls '%s-trees'", db);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	char name[80];
	assert_non_null(fgets(name, sizeof name, p));
	pclose(p);
	name[strcspn(name, "\n")] = '\0';
	snprintf(path, sizeof path, "%s-trees/%s", db, name);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	assert_int_equal(fseek(f, off, off < 0 ? SEEK_END : SEEK_SET), 0);
	assert_int_equal(fwrite(bytes, 1, len, f), len);
	fclose(f);
}

/* A tree damaged inside (its frame intact) gives nothing, not part. */
static void a_tree_damaged_inside_gives_nothing(void **state)
{
	(void)state;
	char db[300];
	snprintf(db, sizeof db, "%s/damaged.db", dir);
	int64_t now = mlx_hash_now_ns(), old = now - 10 * 1000000000LL;
	for (int damage = 0; damage < 2; damage++) {
		struct mlx_statcache *sc;
		struct mlx_err err;
		struct mlx_filelist list = {0};
		size_t hits;
		assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
		walk_like(&list, 50, old);
		assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
		hash_unknown(&list, now);
		assert_int_equal(mlx_statcache_store(sc, "data", 1, &list, H1, &err), MLX_OK);
		mlx_filelist_free(&list);
		mlx_statcache_close(sc);
		/* Only the tree can answer now. */
		char cmd[1000];
		snprintf(cmd, sizeof cmd, "rm -f '%s' '%s-wal' '%s-shm'", db, db, db);
		assert_int_equal(system(cmd), 0);
		if (damage == 0) {
			unsigned char count[8] = {51}; /* the trailer says one entry more */
			patch_tree(db, -8, count, sizeof count);
		} else {
			unsigned char len[4] = {0xff, 0xff, 0, 0}; /* the 30th entry's path length */
			patch_tree(db, 8 + 4 + 4 + 32 + 29 * (4 + 8 + 5 * 8 + 4 + 32), len, sizeof len);
		}
		assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
		walk_like(&list, 50, old);
		assert_int_equal(mlx_statcache_fill(sc, "data", 1, &list, &hits, &err), MLX_OK);
		assert_int_equal(hits, 0);
		for (size_t i = 0; i < list.len; i++) {
			assert_string_equal(list.items[i].hex, "");
			assert_int_equal(list.items[i].cached_ns, 0);
		}
		char id[MLX_HASH_HEX_SIZE];
		assert_int_equal(mlx_statcache_id(sc, "data", id), 0);
		mlx_filelist_free(&list);
		mlx_statcache_close(sc);
		snprintf(cmd, sizeof cmd, "rm -rf '%s-trees'", db);
		assert_int_equal(system(cmd), 0);
	}
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
	/* Opened on first use: a lookup, which finds nothing. */
	struct mlx_filelist list = {0};
	size_t hits = 1;
	add(&list, "a", 1, NULL, 0);
	assert_int_equal(mlx_statcache_fill(sc, "", 0, &list, &hits, &err), MLX_OK);
	assert_int_equal(hits, 0);
	mlx_filelist_free(&list);
	mlx_statcache_close(sc);
	char aside[320];
	snprintf(aside, sizeof aside, "%s.broken", db);
	assert_int_equal(access(aside, F_OK), 0);
}

/* Writes text at root/rel, dated 10 s ago (old enough not to be racy). */
static void put_file(const char *root, const char *rel, const char *text)
{
	char path[600];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
	struct timeval old[2];
	gettimeofday(&old[0], NULL);
	old[0].tv_sec -= 10;
	old[1] = old[0];
	assert_int_equal(utimes(path, old), 0);
}

/* Walks root/d, hashes it and records its tree with its manifest id, as a
 * status does (after waiting for the files to age); the id goes to hex. */
static void record_tree_now(struct mlx_statcache *sc, const char *root, char hex[MLX_HASH_HEX_SIZE])
{
	char top[600];
	snprintf(top, sizeof top, "%s/d", root);
	struct mlx_filelist list = {0};
	struct mlx_err err;
	assert_int_equal(mlx_hash_walk(top, NULL, 0, &list, &err), MLX_OK);
	assert_int_equal(mlx_statcache_fill(sc, "d", 1, &list, NULL, &err), MLX_OK);
	assert_int_equal(mlx_hash_files(top, &list, 2, &err), MLX_OK);
	char *text;
	size_t len;
	assert_int_equal(mlx_hash_manifest(&list, &text, &len, hex, &err), MLX_OK);
	free(text);
	assert_int_equal(mlx_statcache_store(sc, "d", 1, &list, hex, &err), MLX_OK);
	mlx_filelist_free(&list);
}

static void record_tree(struct mlx_statcache *sc, const char *root, char hex[MLX_HASH_HEX_SIZE])
{
	/* Past the racy margin of the files' ctimes (the time of writing). */
	usleep(150000);
	record_tree_now(sc, root, hex);
}

/* Is root/d as its tree says? 1 (with the id, files and bytes) or 0. */
static int unchanged(struct mlx_statcache *sc, const char *root, const char *want, uint64_t files)
{
	char top[600], hex[MLX_HASH_HEX_SIZE] = "";
	snprintf(top, sizeof top, "%s/d", root);
	uint64_t n = 0, bytes = 0;
	int rc = mlx_statcache_unchanged(sc, "d", top, hex, &n, &bytes);
	if (rc == 1) {
		assert_string_equal(hex, want);
		assert_int_equal(n, files);
	}
	return rc;
}

/* The no-op re-check walks the real directory against the tree: any
 * change at all (a file rewritten, added, removed, made executable, a new
 * symlink, fifo or subdirectory with a file) makes it answer 0, so the
 * caller walks and hashes; an empty subdirectory changes nothing. */
static void an_unchanged_directory_is_known_without_a_list(void **state)
{
	(void)state;
	char root[300], db[320], sub[600];
	snprintf(root, sizeof root, "%s/tree-check", dir);
	snprintf(db, sizeof db, "%s/state.db", root);
	assert_int_equal(mkdir(root, 0755), 0);
	const char *dirs[] = {"d", "d/a", "d/a-b", "d/a/deep", "d/b"};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(sub, sizeof sub, "%s/%s", root, dirs[i]);
		assert_int_equal(mkdir(sub, 0755), 0);
	}
	const char *files[] = {"d/top", "d/a/f1", "d/a/f2", "d/a-b/x", "d/a/deep/y", "d/b/z", "d/a.txt"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		put_file(root, files[i], files[i]);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	char hex[MLX_HASH_HEX_SIZE];
	assert_int_equal(unchanged(sc, root, "", 0), 0); /* no tree yet */
	record_tree(sc, root, hex);
	assert_int_equal(unchanged(sc, root, hex, 7), 1);

	snprintf(sub, sizeof sub, "%s/d/b/empty", root);
	assert_int_equal(mkdir(sub, 0755), 0);
	assert_int_equal(unchanged(sc, root, hex, 7), 1);

	put_file(root, "d/a/f3", "new");
	assert_int_equal(unchanged(sc, root, hex, 7), 0);
	snprintf(sub, sizeof sub, "%s/d/a/f3", root);
	assert_int_equal(unlink(sub), 0);
	assert_int_equal(unchanged(sc, root, hex, 7), 1);

	put_file(root, "d/a/deep/y", "D/A/DEEP/Y"); /* same size, same mtime */
	assert_int_equal(unchanged(sc, root, hex, 7), 0);
	record_tree(sc, root, hex);
	assert_int_equal(unchanged(sc, root, hex, 7), 1);

	snprintf(sub, sizeof sub, "%s/d/b/z", root);
	assert_int_equal(chmod(sub, 0755), 0);
	assert_int_equal(unchanged(sc, root, hex, 7), 0);
	assert_int_equal(chmod(sub, 0644), 0);
	record_tree(sc, root, hex);
	assert_int_equal(unlink(sub), 0);
	assert_int_equal(unchanged(sc, root, hex, 7), 0);
	assert_int_equal(symlink("../top", sub), 0);
	assert_int_equal(unchanged(sc, root, hex, 7), 0);
	assert_int_equal(unlink(sub), 0);
	assert_int_equal(mkfifo(sub, 0644), 0);
	assert_int_equal(unchanged(sc, root, hex, 7), 0);
	assert_int_equal(unlink(sub), 0);
	put_file(root, "d/b/z", "d/b/z");
	record_tree(sc, root, hex);
	assert_int_equal(unchanged(sc, root, hex, 7), 1);

	snprintf(sub, sizeof sub, "%s/d/b/empty/more", root);
	assert_int_equal(mkdir(sub, 0755), 0);
	put_file(root, "d/b/empty/more/w", "w");
	assert_int_equal(unchanged(sc, root, hex, 7), 0);
	record_tree(sc, root, hex);
	assert_int_equal(unchanged(sc, root, hex, 8), 1);

	/* A file written just before it was hashed is racy: never trusted. */
	snprintf(sub, sizeof sub, "%s/d/a.txt", root);
	FILE *f = fopen(sub, "a");
	assert_non_null(f);
	fputs("more", f);
	assert_int_equal(fclose(f), 0);
	record_tree_now(sc, root, hex);
	assert_int_equal(unchanged(sc, root, hex, 8), 0);
	mlx_statcache_close(sc);
}

/* Below the limit, the differences come back as lists, in path order: the
 * added and changed files with their stat facts, the changed ones' and the
 * deleted ones' entries with their hashes; above it, 0. */
static void the_differences_from_a_tree_are_listed(void **state)
{
	(void)state;
	char root[300], db[320], sub[600];
	snprintf(root, sizeof root, "%s/tree-changes", dir);
	snprintf(db, sizeof db, "%s/state.db", root);
	assert_int_equal(mkdir(root, 0755), 0);
	const char *dirs[] = {"d", "d/a", "d/b", "d/c"};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(sub, sizeof sub, "%s/%s", root, dirs[i]);
		assert_int_equal(mkdir(sub, 0755), 0);
	}
	const char *files[] = {"d/a/1", "d/a/2", "d/b/3", "d/c/4", "d/top"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		put_file(root, files[i], files[i]);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	char hex[MLX_HASH_HEX_SIZE], top[600];
	record_tree(sc, root, hex);
	snprintf(top, sizeof top, "%s/d", root);

	put_file(root, "d/a/2", "D/A/2"); /* same size and mtime: the ctime tells */
	put_file(root, "d/a/15", "new");
	put_file(root, "d/zz", "new at the top");
	snprintf(sub, sizeof sub, "%s/d/b/3", root);
	assert_int_equal(unlink(sub), 0);
	snprintf(sub, sizeof sub, "%s/d/c/4", root);
	assert_int_equal(unlink(sub), 0);
	snprintf(sub, sizeof sub, "%s/d/c", root);
	assert_int_equal(rmdir(sub), 0);

	struct mlx_statcache_changes c;
	assert_int_equal(mlx_statcache_changes(sc, "d", top, 100, &c), 1);
	assert_string_equal(c.id, hex);
	assert_int_equal(c.files, 5);
	assert_int_equal(c.added.len, 2);
	assert_string_equal(c.added.items[0].path, "a/15");
	assert_string_equal(c.added.items[1].path, "zz");
	assert_true(c.added.items[0].mtime_ns != 0 && c.added.items[0].hex[0] == '\0');
	assert_int_equal(c.changed.len, 1);
	assert_string_equal(c.changed.items[0].path, "a/2");
	assert_int_equal(c.was.len, 1);
	assert_string_equal(c.was.items[0].path, "a/2");
	assert_true(mlx_hash_is_id(c.was.items[0].hex));
	assert_int_equal(c.deleted.len, 2);
	assert_string_equal(c.deleted.items[0].path, "b/3");
	assert_string_equal(c.deleted.items[1].path, "c/4");
	mlx_statcache_changes_free(&c);

	assert_int_equal(mlx_statcache_changes(sc, "d", top, 4, &c), 0);
	assert_int_equal(c.added.len + c.changed.len + c.deleted.len, 0);

	/* A tree whose entries are out of order is damaged: it cannot say
	 * what differs. "a/15" becomes "a/3x" in place: after "a/2" now. */
	record_tree(sc, root, hex);
	assert_int_equal(mlx_statcache_changes(sc, "d", top, 100, &c), 1);
	mlx_statcache_changes_free(&c);
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "for f in '%s-trees'/*; do sed -i 's|a/15|a/3x|' \"$f\"; done", db);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(mlx_statcache_changes(sc, "d", top, 100, &c), 0);
	mlx_statcache_close(sc);
}

/* A subdirectory that holds most of the files is split, its own
 * subdirectories compared by the threads: the same answers, in path
 * order, as when each top-level subdirectory is one thread's. */
static void a_large_subdirectory_is_split_with_the_same_answers(void **state)
{
	(void)state;
	char root[300], db[320], sub[600], rel[64];
	snprintf(root, sizeof root, "%s/tree-split", dir);
	snprintf(db, sizeof db, "%s/state.db", root);
	assert_int_equal(mkdir(root, 0755), 0);
	const char *dirs[] = {"d", "d/big", "d/big-x", "d/small"};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(sub, sizeof sub, "%s/%s", root, dirs[i]);
		assert_int_equal(mkdir(sub, 0755), 0);
	}
	/* 5,000 files below big/: more than a subdirectory's share (and
	 * than the floor of a split), in ten subdirectories of 500. */
	for (int s = 0; s < 10; s++) {
		snprintf(sub, sizeof sub, "%s/d/big/s%d", root, s);
		assert_int_equal(mkdir(sub, 0755), 0);
		for (int f = 0; f < 500; f++) {
			snprintf(rel, sizeof rel, "d/big/s%d/f%03d", s, f);
			put_file(root, rel, rel);
		}
	}
	const char *files[] = {"d/big/f", "d/big-x/x", "d/small/y", "d/top"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		put_file(root, files[i], files[i]);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	char hex[MLX_HASH_HEX_SIZE], top[600];
	record_tree(sc, root, hex);
	snprintf(top, sizeof top, "%s/d", root);
	assert_int_equal(unchanged(sc, root, hex, 5004), 1);

	put_file(root, "d/big/s3/f001", "D/BIG/S3/F001"); /* same size and mtime */
	put_file(root, "d/big/s3/f0005", "new");
	put_file(root, "d/big/g", "new in big");
	snprintf(sub, sizeof sub, "%s/d/big/s5/new", root);
	assert_int_equal(mkdir(sub, 0755), 0);
	put_file(root, "d/big/s5/new/z", "new below");
	snprintf(sub, sizeof sub, "%s/d/big/s3/f499", root);
	assert_int_equal(unlink(sub), 0);
	for (int f = 0; f < 500; f++) { /* s9, gone whole: the last range */
		snprintf(sub, sizeof sub, "%s/d/big/s9/f%03d", root, f);
		assert_int_equal(unlink(sub), 0);
	}
	snprintf(sub, sizeof sub, "%s/d/big/s9", root);
	assert_int_equal(rmdir(sub), 0);
	assert_int_equal(unchanged(sc, root, hex, 5004), 0);

	struct mlx_statcache_changes c;
	assert_int_equal(mlx_statcache_changes(sc, "d", top, 1000, &c), 1);
	assert_string_equal(c.id, hex);
	assert_int_equal(c.files, 5004);
	assert_int_equal(c.added.len, 3);
	assert_string_equal(c.added.items[0].path, "big/g");
	assert_string_equal(c.added.items[1].path, "big/s3/f0005");
	assert_string_equal(c.added.items[2].path, "big/s5/new/z");
	assert_int_equal(c.changed.len, 1);
	assert_string_equal(c.changed.items[0].path, "big/s3/f001");
	assert_int_equal(c.deleted.len, 501);
	assert_string_equal(c.deleted.items[0].path, "big/s3/f499");
	assert_string_equal(c.deleted.items[1].path, "big/s9/f000");
	assert_string_equal(c.deleted.items[500].path, "big/s9/f499");
	mlx_statcache_changes_free(&c);

	/* A symlink in a split subdirectory is refused there too. */
	record_tree(sc, root, hex);
	assert_int_equal(unchanged(sc, root, hex, 4506), 1);
	snprintf(sub, sizeof sub, "%s/d/big/s2/link", root);
	assert_int_equal(symlink("f000", sub), 0);
	assert_int_equal(unchanged(sc, root, hex, 4506), 0);
	assert_int_equal(mlx_statcache_changes(sc, "d", top, 1000, &c), 0);
	mlx_statcache_close(sc);
}


/* The one tree in db-trees, read whole into *len bytes (malloc'ed); its
 * path goes to path. */
static unsigned char *read_tree(const char *db, char *path, size_t size, size_t *len)
{
	char cmd[400], name[80];
	snprintf(cmd, sizeof cmd, "ls '%s-trees'", db);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	assert_non_null(fgets(name, sizeof name, p));
	pclose(p);
	name[strcspn(name, "\n")] = '\0';
	snprintf(path, size, "%s-trees/%s", db, name);
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	unsigned char *buf = malloc(1 << 20);
	assert_non_null(buf);
	*len = fread(buf, 1, 1 << 20, f);
	fclose(f);
	return buf;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (8 * i));
}

#define ENTRY_FIXED (5 * 8 + 4 + 32)

/* The offset of the facts of the entry of path in a tree of prefix "d",
 * or 0. */
static size_t entry_facts(const unsigned char *t, size_t len, const char *path)
{
	size_t at = 8 + 4 + 1 + 32, plen = strlen(path);
	while (at + 4 <= len - 16) {
		size_t n = le32(t + at);
		if (n == plen && memcmp(t + at + 4, path, n) == 0)
			return at + 4 + n;
		at += 4 + n + ENTRY_FIXED;
	}
	return 0;
}

/* Makes the record of directory rel (below root, "d/" in the tree) say
 * that its names were read listed_after ns after its mtime, with its stat
 * now: a record of the directory as it is. */
static void forge_record(const char *db, const char *root, const char *rel, int64_t listed_after)
{
	char path[400], full[600], key[64];
	size_t len;
	unsigned char *t = read_tree(db, path, sizeof path, &len);
	snprintf(key, sizeof key, "%s/", rel);
	size_t at = entry_facts(t, len, key);
	assert_true(at != 0);
	snprintf(full, sizeof full, "%s/d/%s", root, rel);
	struct stat st;
	assert_int_equal(stat(full, &st), 0);
	int64_t mtime = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	int64_t ctime = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	put_le64(t + at, (uint64_t)st.st_ino);
	put_le64(t + at + 16, (uint64_t)mtime);
	put_le64(t + at + 24, (uint64_t)ctime);
	put_le64(t + at + 32, (uint64_t)((mtime > ctime ? mtime : ctime) + listed_after));
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(t, 1, len, f), len);
	fclose(f);
	free(t);
}

/* Writes the tree as version 1 wrote it: its magics, and no directory
 * records. */
static void make_tree_v1(const char *db)
{
	char path[400];
	size_t len, out = 8 + 4 + 1 + 32;
	unsigned char *t = read_tree(db, path, sizeof path, &len);
	unsigned char *v1 = malloc(len);
	assert_non_null(v1);
	memcpy(v1, "mlxtree1", 8);
	memcpy(v1 + 8, t + 8, out - 8);
	for (size_t at = out; at < len - 16;) {
		size_t n = le32(t + at);
		if (t[at + 4 + n - 1] != '/') {
			memcpy(v1 + out, t + at, 4 + n + ENTRY_FIXED);
			out += 4 + n + ENTRY_FIXED;
		}
		at += 4 + n + ENTRY_FIXED;
	}
	memcpy(v1 + out, "mlxend1\n", 8);
	memcpy(v1 + out + 8, t + len - 8, 8);
	out += 16;
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(v1, 1, out, f), out);
	fclose(f);
	free(v1);
	free(t);
}

/* The first no-op re-check records each directory it read; the next one
 * reads none whose stat is as recorded (only its files are stat'ed), but
 * one whose record was racy is read, and a name added, removed or renamed
 * is seen even where the mtime was set back. A tree of version 1 is read
 * and written again as version 2. */
static void a_directory_as_recorded_is_not_read_again(void **state)
{
	(void)state;
	char root[300], db[320], sub[600], to[600], path[400];
	snprintf(root, sizeof root, "%s/tree-dirs", dir);
	snprintf(db, sizeof db, "%s/state.db", root);
	assert_int_equal(mkdir(root, 0755), 0);
	const char *dirs[] = {"d", "d/a", "d/b", "d/b/empty", "d/c"};
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(sub, sizeof sub, "%s/%s", root, dirs[i]);
		assert_int_equal(mkdir(sub, 0755), 0);
	}
	const char *files[] = {"d/a/1", "d/a/2", "d/b/3", "d/c/4", "d/top"};
	for (size_t i = 0; i < sizeof files / sizeof *files; i++)
		put_file(root, files[i], files[i]);
	struct mlx_statcache *sc;
	struct mlx_err err;
	assert_int_equal(mlx_statcache_open(db, &sc, &err), MLX_OK);
	char hex[MLX_HASH_HEX_SIZE];
	record_tree(sc, root, hex);
	size_t len;
	unsigned char *t = read_tree(db, path, sizeof path, &len);
	assert_int_equal(entry_facts(t, len, "a/"), 0); /* a walk writes no records */
	free(t);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);
	t = read_tree(db, path, sizeof path, &len);
	assert_memory_equal(t, "mlxtree2", 8);
	assert_true(entry_facts(t, len, "a/") && entry_facts(t, len, "b/") && entry_facts(t, len, "b/empty/"));
	free(t);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);

	/* A record as the directory is now, but missing a name: trusted (the
	 * directory is not read, so the name is not seen) only when its
	 * names were read past the racy margin after its last change. */
	put_file(root, "d/a/new", "new");
	forge_record(db, root, "a", 1000000000);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);
	forge_record(db, root, "a", MLX_STATCACHE_RACY_NS / 2);
	assert_int_equal(unchanged(sc, root, hex, 5), 0);
	snprintf(sub, sizeof sub, "%s/d/a/new", root);
	assert_int_equal(unlink(sub), 0);
	usleep(150000);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);

	/* A name added with the directory's mtime set back: its ctime tells. */
	snprintf(sub, sizeof sub, "%s/d/c", root);
	struct stat st;
	assert_int_equal(stat(sub, &st), 0);
	put_file(root, "d/c/5", "5");
	struct timespec back[2] = {st.st_atim, st.st_mtim};
	assert_int_equal(utimensat(AT_FDCWD, sub, back, 0), 0);
	assert_int_equal(unchanged(sc, root, hex, 5), 0);
	snprintf(sub, sizeof sub, "%s/d/c/5", root);
	assert_int_equal(unlink(sub), 0);
	usleep(150000);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);

	/* A file in a recorded empty directory; a file renamed; one gone. */
	put_file(root, "d/b/empty/x", "x");
	assert_int_equal(unchanged(sc, root, hex, 5), 0);
	snprintf(sub, sizeof sub, "%s/d/b/empty/x", root);
	assert_int_equal(unlink(sub), 0);
	usleep(150000);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);
	snprintf(sub, sizeof sub, "%s/d/a/1", root);
	snprintf(to, sizeof to, "%s/d/a/0", root);
	assert_int_equal(rename(sub, to), 0);
	assert_int_equal(unchanged(sc, root, hex, 5), 0);
	assert_int_equal(rename(to, sub), 0); /* its ctime is new: hashed again */
	record_tree(sc, root, hex);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);
	snprintf(sub, sizeof sub, "%s/d/b/3", root);
	assert_int_equal(unlink(sub), 0);
	assert_int_equal(unchanged(sc, root, hex, 5), 0);
	put_file(root, "d/b/3", "d/b/3");
	usleep(150000);
	record_tree(sc, root, hex);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);

	/* Version 1: read as it is, then written as version 2. */
	make_tree_v1(db);
	t = read_tree(db, path, sizeof path, &len);
	assert_memory_equal(t, "mlxtree1", 8);
	assert_int_equal(entry_facts(t, len, "a/"), 0);
	free(t);
	assert_int_equal(unchanged(sc, root, hex, 5), 1);
	t = read_tree(db, path, sizeof path, &len);
	assert_memory_equal(t, "mlxtree2", 8);
	assert_true(entry_facts(t, len, "a/") != 0);
	free(t);
	put_file(root, "d/a/3", "3");
	assert_int_equal(unchanged(sc, root, hex, 5), 0);
	mlx_statcache_close(sc);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(unchanged_files_hit_changed_and_racy_ones_miss),
		cmocka_unit_test(single_files_are_written_in_batches),
		cmocka_unit_test(a_long_list_is_filled_as_file_by_file),
		cmocka_unit_test(a_whole_directory_is_read_back_from_its_tree),
		cmocka_unit_test(a_tree_gives_back_its_manifest_id_only_when_all_match),
		cmocka_unit_test(a_tree_damaged_inside_gives_nothing),
		cmocka_unit_test(a_broken_database_is_rebuilt),
		cmocka_unit_test(an_unchanged_directory_is_known_without_a_list),
		cmocka_unit_test(the_differences_from_a_tree_are_listed),
		cmocka_unit_test(a_large_subdirectory_is_split_with_the_same_answers),
		cmocka_unit_test(a_directory_as_recorded_is_not_read_again),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
