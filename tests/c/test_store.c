/* test_store.c — core/store.c: staging is invisible until commit, objects
 * match their names, checkout verifies and quarantines, gc helpers. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/file.h>
#include <time.h>
#include <unistd.h>

#include "store.h"

static char root[256];

static void write_file(const char *rel, const char *content)
{
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(root, sizeof root, "%s/mlx-test-store-XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(root))
		return -1;
	char data[PATH_MAX];
	snprintf(data, sizeof data, "%s/data/sub", root);
	if (mlx_fs_mkdirs(data, 0755, NULL) != MLX_OK)
		return -1;
	write_file("data/a.txt", "alpha");
	write_file("data/sub/b.txt", "beta");
	write_file("data/same.txt", "alpha");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", root, root);
	return system(cmd);
}

static void staged_objects_appear_only_on_commit(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	char data[PATH_MAX];
	snprintf(data, sizeof data, "%s/data", root);
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	struct mlx_filelist list = {0};
	assert_int_equal(mlx_hash_walk(data, NULL, 0, &list, &err), MLX_OK);
	assert_int_equal(list.len, 3);
	assert_string_equal(list.items[2].path, "sub/b.txt");
	assert_int_equal(mlx_store_stage_files(s, data, &list, 2, &err), MLX_OK);
	char alpha[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_hash_bytes("alpha", 5, alpha, &err), MLX_OK);
	assert_string_equal(list.items[0].hex, alpha);
	assert_false(mlx_store_has(s, alpha));
	assert_int_equal(mlx_store_staged(s), 3);
	/* Closed without commit: nothing stays, not even temp files. */
	mlx_store_close(s);
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	assert_false(mlx_store_has(s, alpha));
	for (size_t i = 0; i < list.len; i++)
		list.items[i].hex[0] = '\0';
	assert_int_equal(mlx_store_stage_files(s, data, &list, 2, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	assert_true(mlx_store_has(s, alpha));
	assert_int_equal(mlx_store_verify(s, alpha, &err), MLX_OK);
	struct mlx_filelist objects = {0};
	assert_int_equal(mlx_store_list(s, &objects, &err), MLX_OK);
	assert_int_equal(objects.len, 2); /* alpha stored once */
	char path[PATH_MAX];
	struct stat st;
	assert_int_equal(mlx_store_object_path(s, alpha, path, sizeof path, &err), MLX_OK);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0444);
	mlx_filelist_free(&objects);
	mlx_filelist_free(&list);
	mlx_store_close(s);
}

static void checkout_verifies_and_quarantines(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	char beta[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_hash_bytes("beta", 4, beta, &err), MLX_OK);
	struct mlx_filelist items = {0};
	assert_int_equal(mlx_filelist_push(&items, "out/b.txt", 0, 0755, beta, &err), MLX_OK);
	assert_int_equal(mlx_store_checkout_files(s, root, &items, MLX_LINK_COPY, 1, &err), MLX_OK);
	char *content;
	size_t len;
	assert_int_equal(mlx_store_read(s, beta, &content, &len, &err), MLX_OK);
	assert_memory_equal(content, "beta", 4);
	free(content);
	char placed[PATH_MAX];
	struct stat st;
	snprintf(placed, sizeof placed, "%s/out/b.txt", root);
	assert_int_equal(stat(placed, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0755);

	/* Flip a byte of the object: checkout refuses and quarantines it. */
	char path[PATH_MAX];
	assert_int_equal(mlx_store_object_path(s, beta, path, sizeof path, &err), MLX_OK);
	chmod(path, 0644);
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	fputc('B', f);
	fclose(f);
	assert_int_equal(mlx_store_verify(s, beta, &err), MLX_ERR_CORRUPT);
	items.items[0].path[0] = 'O'; /* a new destination: Out/b.txt */
	assert_int_equal(mlx_store_checkout_files(s, root, &items, MLX_LINK_COPY, 1, &err), MLX_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "is corrupt"));
	assert_false(mlx_store_has(s, beta));
	snprintf(placed, sizeof placed, "%s/Out/b.txt", root);
	assert_int_not_equal(access(placed, F_OK), 0);
	snprintf(path, sizeof path, "%s/.mlx/cache/quarantine/%s", root, beta);
	assert_int_equal(access(path, F_OK), 0);
	assert_int_equal(mlx_store_checkout_files(s, root, &items, MLX_LINK_COPY, 1, &err), MLX_ERR_NOTFOUND);
	mlx_filelist_free(&items);
	mlx_store_close(s);
}

static void gc_lock_excludes_and_db_ids_skip_missing(void **state)
{
	(void)state;
	struct mlx_store *shared, *gc;
	struct mlx_err err;
	assert_int_equal(mlx_store_open(root, 0, &shared, &err), MLX_OK);
	assert_int_equal(mlx_store_open(root, MLX_STORE_EXCLUSIVE | MLX_STORE_NOWAIT, &gc, &err), MLX_ERR_BUSY);
	mlx_store_close(shared);
	assert_int_equal(mlx_store_open(root, MLX_STORE_EXCLUSIVE | MLX_STORE_NOWAIT, &gc, &err), MLX_OK);
	mlx_store_close(gc);
	struct mlx_strlist ids = {0};
	int found = 1;
	assert_int_equal(mlx_store_db_ids("/nonexistent/runs.db", "model_versions", "artifact_hash", &ids, &found,
					  &err),
			 MLX_OK);
	assert_int_equal(found, 0);
	assert_int_equal(mlx_store_db_ids("x.db", "bad name", "c", &ids, &found, &err), MLX_ERR_INVALID);
}

/* The number of entries in directory dir below root. */
static int count_entries(const char *dir)
{
	char cmd[PATH_MAX + 32];
	snprintf(cmd, sizeof cmd, "ls -A '%s/%s' | wc -l", root, dir);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	int n = -1;
	assert_int_equal(fscanf(p, "%d", &n), 1);
	pclose(p);
	return n;
}

/* An id in shard sub: sub, then n written as 62 hex digits. */
static void shard_id(char id[MLX_HASH_HEX_SIZE], const char *sub, unsigned n)
{
	snprintf(id, MLX_HASH_HEX_SIZE, "%s%062x", sub, n);
}

/* Many objects asked about at once (a no-op pull or push asks about every
 * file of a directory): the answer is the one asked object by object,
 * whether the shard is read whole (asked densely) or looked up name by
 * name (a few asked of many), in any order and with duplicates. */
static void many_lookups_answer_as_one_by_one(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	char path[PATH_MAX + 80], target[PATH_MAX];
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	const char *objects = mlx_store_objects_dir(s);
	/* Shard "c1": every third of 0..299 is an object; 1 is a symlink to
	 * a regular file, 2 a directory. Shard "c2": 3,000 objects, of which
	 * a few are asked. Shard "c3" does not exist. */
	snprintf(path, sizeof path, "%s/c1", objects);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/c2", objects);
	assert_int_equal(mkdir(path, 0755), 0);
	char id[MLX_HASH_HEX_SIZE];
	for (unsigned n = 0; n < 300; n += 3) {
		shard_id(id, "c1", n);
		snprintf(path, sizeof path, "%s/c1/%s", objects, id + 2);
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		fclose(f);
	}
	snprintf(target, sizeof target, "%s/data/a.txt", root);
	shard_id(id, "c1", 1);
	snprintf(path, sizeof path, "%s/c1/%s", objects, id + 2);
	assert_int_equal(symlink(target, path), 0);
	shard_id(id, "c1", 2);
	snprintf(path, sizeof path, "%s/c1/%s", objects, id + 2);
	assert_int_equal(mkdir(path, 0755), 0);
	for (unsigned n = 0; n < 3000; n++) {
		shard_id(id, "c2", n);
		snprintf(path, sizeof path, "%s/c2/%s", objects, id + 2);
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		fclose(f);
	}

	enum { ASKED = 300 + 5 + 3 + 3 };
	static char ids[ASKED][MLX_HASH_HEX_SIZE];
	const char *asked[ASKED];
	size_t n = 0;
	for (unsigned k = 300; k-- > 0;) /* descending: any order is fine */
		shard_id(ids[n++], "c1", k);
	for (unsigned k = 0; k < 5; k++)
		shard_id(ids[n++], "c2", k * 700 + 1);
	shard_id(ids[n++], "c3", 7);
	shard_id(ids[n++], "c1", 9); /* twice */
	shard_id(ids[n++], "c1", 10);
	snprintf(ids[n++], MLX_HASH_HEX_SIZE, "not an id");
	snprintf(ids[n++], MLX_HASH_HEX_SIZE, "C1%062x", 3u); /* upper case: not an id */
	shard_id(ids[n++], "c2", 3001);
	assert_int_equal(n, ASKED);
	for (size_t i = 0; i < n; i++)
		asked[i] = ids[i];
	unsigned char present[ASKED];
	memset(present, 7, sizeof present);
	mlx_store_has_many(s, asked, n, present);
	size_t found = 0;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(present[i], mlx_store_has(s, asked[i]));
		found += present[i];
	}
	/* 100 in c1 (0, 3, …, 297), the 5 asked of c2, and 9 twice. */
	assert_int_equal(found, 100 + 5 + 1);
	shard_id(id, "c1", 1);
	assert_false(mlx_store_has(s, id));
	shard_id(id, "c1", 2);
	assert_false(mlx_store_has(s, id));
	mlx_store_close(s);
}

static void symlinks_in_the_store_are_never_followed(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	char gamma[MLX_HASH_HEX_SIZE], delta[MLX_HASH_HEX_SIZE], path[PATH_MAX], target[PATH_MAX];
	assert_int_equal(mlx_hash_bytes("gamma", 5, gamma, &err), MLX_OK);
	assert_int_equal(mlx_hash_bytes("delta", 5, delta, &err), MLX_OK);
	assert_string_not_equal(gamma, delta);
	assert_memory_not_equal(gamma, delta, 2);
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);

	/* A shard directory that is a link to a directory outside, holding a
	 * file with the very bytes its name promises; and a link in the place
	 * of an object in a real shard. */
	snprintf(path, sizeof path, "%s/outside", root);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "outside/%s", gamma + 2);
	write_file(path, "gamma");
	write_file("outside/delta.txt", "delta");
	snprintf(target, sizeof target, "%s/outside", root);
	snprintf(path, sizeof path, "%s/%.2s", mlx_store_objects_dir(s), gamma);
	assert_int_equal(symlink(target, path), 0);
	snprintf(path, sizeof path, "%s/%.2s", mlx_store_objects_dir(s), delta);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(target, sizeof target, "%s/outside/delta.txt", root);
	snprintf(path, sizeof path, "%s/%.2s/%s", mlx_store_objects_dir(s), delta, delta + 2);
	assert_int_equal(symlink(target, path), 0);

	/* Neither is an object. */
	assert_false(mlx_store_has(s, gamma));
	assert_false(mlx_store_has(s, delta));
	char *content = NULL;
	size_t len;
	assert_int_equal(mlx_store_read(s, gamma, &content, &len, &err), MLX_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "never followed"));
	assert_int_equal(mlx_store_read(s, delta, &content, &len, &err), MLX_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "is a symbolic link"));
	assert_int_equal(mlx_store_verify(s, delta, &err), MLX_ERR_NOTFOUND);

	/* The list names them (not as ids), and check never opens them. */
	struct mlx_filelist objects = {0};
	assert_int_equal(mlx_store_list(s, &objects, &err), MLX_OK);
	char link_name[67];
	snprintf(link_name, sizeof link_name, "%.2s/%s", delta, delta + 2);
	int links = 0;
	for (size_t i = 0; i < objects.len; i++) {
		const struct mlx_file *f = &objects.items[i];
		assert_string_not_equal(f->path, gamma);
		assert_string_not_equal(f->path, delta);
		if (f->mode == 0) {
			links++;
			assert_true(strncmp(f->path, gamma, 2) == 0 || strcmp(f->path, link_name) == 0);
		}
	}
	assert_int_equal(links, 2);
	assert_int_equal(mlx_store_check(s, &objects, 2, &err), MLX_OK);
	for (size_t i = 0; i < objects.len; i++)
		if (objects.items[i].mode == 0)
			assert_string_equal(objects.items[i].hex, "");

	/* Nothing is moved or written through them. */
	assert_int_not_equal(mlx_store_quarantine(s, gamma, &err), MLX_OK);
	assert_int_not_equal(mlx_store_remove(s, gamma, &err), MLX_OK);
	char staged[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_store_stage_bytes(s, "gamma", 5, staged, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(s, &err), MLX_ERR_IO);
	assert_non_null(strstr(err.msg, "not a store directory"));
	assert_int_equal(count_entries("outside"), 2);

	/* Removing a listed link removes the link itself. */
	for (size_t i = 0; i < objects.len; i++)
		if (objects.items[i].mode == 0)
			assert_int_equal(mlx_store_remove(s, objects.items[i].path, &err), MLX_OK);
	assert_int_equal(mlx_store_remove(s, link_name, &err), MLX_OK); /* gone: fine */
	snprintf(path, sizeof path, "%s/%.2s", mlx_store_objects_dir(s), gamma);
	struct stat st;
	assert_int_not_equal(lstat(path, &st), 0);
	assert_int_equal(count_entries("outside"), 2);
	snprintf(path, sizeof path, "%s/outside/delta.txt", root);
	assert_int_equal(access(path, F_OK), 0);

	/* A name of that form that is not a link is not removed by it. */
	char alpha_shard[3];
	assert_int_equal(mlx_hash_bytes("alpha", 5, path, &err), MLX_OK);
	snprintf(alpha_shard, sizeof alpha_shard, "%.2s", path);
	assert_int_equal(mlx_store_remove(s, alpha_shard, &err), MLX_ERR_INVALID);
	assert_true(mlx_store_has(s, path));

	/* With the link gone, the staged object goes into a real shard. */
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	assert_true(mlx_store_has(s, gamma));
	assert_int_equal(mlx_store_verify(s, gamma, &err), MLX_OK);
	mlx_filelist_free(&objects);
	mlx_store_close(s);
}

/* More files than the batch has temp subdirectories, staged by two
 * threads: every temp finds or makes its subdirectory, and every object
 * is there after the commit. */
static void many_files_share_the_temp_subdirectories(void **state)
{
	(void)state;
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/many", root);
	assert_int_equal(mlx_fs_mkdirs(dir, 0755, NULL), MLX_OK);
	enum { N = 700 };
	char rel[64], content[64];
	for (int i = 0; i < N; i++) {
		snprintf(rel, sizeof rel, "many/f%03d", i);
		snprintf(content, sizeof content, "file number %d", i);
		write_file(rel, content);
	}
	struct mlx_store *s;
	struct mlx_err err;
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	struct mlx_filelist list = {0};
	assert_int_equal(mlx_hash_walk(dir, NULL, 0, &list, &err), MLX_OK);
	assert_int_equal(list.len, N);
	assert_int_equal(mlx_store_stage_files(s, dir, &list, 2, &err), MLX_OK);
	assert_int_equal(mlx_store_staged(s), N);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	for (size_t i = 0; i < list.len; i++) {
		assert_true(mlx_store_has(s, list.items[i].hex));
		assert_int_equal(mlx_store_verify(s, list.items[i].hex, &err), MLX_OK);
	}
	mlx_filelist_free(&list);
	mlx_store_close(s);
}

/* The commit's rename never replaces an object that is there whole (its
 * inode stays: another process's readers keep their file), and replaces
 * one of the wrong size (a truncated object) with the staged copy. */
static void commit_keeps_whole_objects_and_replaces_truncated_ones(void **state)
{
	(void)state;
	char dir[PATH_MAX], path[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/again", root);
	assert_int_equal(mlx_fs_mkdirs(dir, 0755, NULL), MLX_OK);
	write_file("again/whole.txt", "kept as it is");
	write_file("again/cut.txt", "replaced when truncated");
	struct mlx_store *s;
	struct mlx_err err;
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	struct mlx_filelist list = {0};
	assert_int_equal(mlx_hash_walk(dir, NULL, 0, &list, &err), MLX_OK);
	assert_int_equal(list.len, 2);
	assert_int_equal(mlx_store_stage_files(s, dir, &list, 2, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	const char *cut = strcmp(list.items[0].path, "cut.txt") == 0 ? list.items[0].hex : list.items[1].hex;
	const char *whole = strcmp(list.items[0].path, "cut.txt") == 0 ? list.items[1].hex : list.items[0].hex;
	struct stat before, after;
	assert_int_equal(mlx_store_object_path(s, whole, path, sizeof path, &err), MLX_OK);
	assert_int_equal(stat(path, &before), 0);
	assert_int_equal(mlx_store_object_path(s, cut, path, sizeof path, &err), MLX_OK);
	assert_int_equal(chmod(path, 0644), 0); /* objects are read-only */
	assert_int_equal(truncate(path, 3), 0);
	assert_int_equal(chmod(path, 0444), 0);
	assert_int_equal(mlx_store_verify(s, cut, &err), MLX_ERR_CORRUPT);

	/* Stage both again: hex cleared, so neither is skipped as known. */
	for (size_t i = 0; i < list.len; i++)
		list.items[i].hex[0] = '\0';
	assert_int_equal(mlx_store_stage_files(s, dir, &list, 2, &err), MLX_OK);
	assert_int_equal(mlx_store_staged(s), 2);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	assert_int_equal(mlx_store_verify(s, cut, &err), MLX_OK);
	assert_int_equal(mlx_store_verify(s, whole, &err), MLX_OK);
	assert_int_equal(mlx_store_object_path(s, whole, path, sizeof path, &err), MLX_OK);
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_ino, before.st_ino);
	mlx_filelist_free(&list);
	mlx_store_close(s);

	/* Nothing is left in the temp directory. */
	snprintf(path, sizeof path, "%s/.mlx/tmp", root);
	DIR *d = opendir(path);
	assert_non_null(d);
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL)
		assert_true(strncmp(ent->d_name, "put-", 4) != 0 && strncmp(ent->d_name, "new-", 4) != 0);
	closedir(d);
}

/* An object written in pieces (a merged manifest) is staged under the
 * SHA-256 of all its bytes, across the writer's buffer; one already in the
 * store is not staged again; an aborted one leaves nothing. */
static void an_object_written_in_pieces_is_staged_whole(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	/* 600 KiB: more than the writer's 256 KiB buffer, in odd pieces. */
	size_t len = 600u << 10;
	char *bytes = malloc(len);
	assert_non_null(bytes);
	for (size_t i = 0; i < len; i++)
		bytes[i] = (char)('a' + i * 7 % 26);
	char want[MLX_HASH_HEX_SIZE], got[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_hash_bytes(bytes, len, want, &err), MLX_OK);
	struct mlx_store_writer *w;
	assert_int_equal(mlx_store_writer_start(s, &w, &err), MLX_OK);
	for (size_t at = 0; at < len; at += 1001)
		assert_int_equal(
		    mlx_store_writer_write(w, bytes + at, len - at < 1001 ? len - at : 1001, &err), MLX_OK);
	assert_int_equal(mlx_store_writer_finish(w, got, &err), MLX_OK);
	assert_string_equal(got, want);
	assert_int_equal(mlx_store_staged(s), 1);
	assert_false(mlx_store_has(s, want));
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	assert_true(mlx_store_has(s, want));
	assert_int_equal(mlx_store_verify(s, want, &err), MLX_OK);

	/* The same bytes again: already there, nothing staged. */
	assert_int_equal(mlx_store_writer_start(s, &w, &err), MLX_OK);
	assert_int_equal(mlx_store_writer_write(w, bytes, len, &err), MLX_OK);
	assert_int_equal(mlx_store_writer_finish(w, got, &err), MLX_OK);
	assert_string_equal(got, want);
	assert_int_equal(mlx_store_staged(s), 0);

	/* Aborted: nothing staged, and no temp file is left to commit. */
	assert_int_equal(mlx_store_writer_start(s, &w, &err), MLX_OK);
	assert_int_equal(mlx_store_writer_write(w, "partial", 7, &err), MLX_OK);
	mlx_store_writer_abort(w);
	assert_int_equal(mlx_store_staged(s), 0);
	char partial[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_hash_bytes("partial", 7, partial, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	assert_false(mlx_store_has(s, partial));
	free(bytes);
	mlx_store_close(s);
}

/* A commit started in the background takes what is staged when it starts:
 * staging goes on meanwhile and waits for the next commit; the objects it
 * took are visible once it is waited for, or once the store is closed; a
 * failed one reports its error when waited for and leaves its objects
 * staged. */
static void a_background_commit_takes_what_was_staged_before_it(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	const char *texts[] = {"first window 1", "first window 2", "second window", "after close"};
	char hex[4][MLX_HASH_HEX_SIZE];
	for (int i = 0; i < 4; i++)
		assert_int_equal(mlx_hash_bytes(texts[i], strlen(texts[i]), hex[i], &err), MLX_OK);
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	/* Nothing staged: nothing to start, nothing to wait for. */
	assert_int_equal(mlx_store_commit_start(s, &err), MLX_OK);
	assert_int_equal(mlx_store_commit_wait(s, &err), MLX_OK);
	for (int i = 0; i < 2; i++)
		assert_int_equal(mlx_store_stage_verified_bytes(s, hex[i], texts[i], strlen(texts[i]), &err),
		                 MLX_OK);
	assert_int_equal(mlx_store_commit_start(s, &err), MLX_OK);
	assert_int_equal(mlx_store_staged(s), 0);
	assert_int_equal(mlx_store_stage_verified_bytes(s, hex[2], texts[2], strlen(texts[2]), &err), MLX_OK);
	assert_int_equal(mlx_store_staged(s), 1);
	assert_int_equal(mlx_store_commit_wait(s, &err), MLX_OK);
	assert_int_equal(mlx_store_verify(s, hex[0], &err), MLX_OK);
	assert_int_equal(mlx_store_verify(s, hex[1], &err), MLX_OK);
	assert_false(mlx_store_has(s, hex[2]));
	assert_int_equal(mlx_store_staged(s), 1);
	/* Started and not waited for: closing the store finishes it. */
	assert_int_equal(mlx_store_commit_start(s, &err), MLX_OK);
	mlx_store_close(s);
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	assert_int_equal(mlx_store_verify(s, hex[2], &err), MLX_OK);

	/* A file where the object's shard should be: the commit fails. The
	 * object is one whose shard the tests before have not made. */
	char last[32], shard[64], path[PATH_MAX];
	struct stat st;
	for (int i = 0;; i++) {
		snprintf(last, sizeof last, "%s %d", texts[3], i);
		assert_int_equal(mlx_hash_bytes(last, strlen(last), hex[3], &err), MLX_OK);
		snprintf(shard, sizeof shard, ".mlx/cache/objects/%.2s", hex[3]);
		snprintf(path, sizeof path, "%s/%s", root, shard);
		if (stat(path, &st) != 0)
			break;
	}
	write_file(shard, "not a directory");
	assert_int_equal(mlx_store_stage_verified_bytes(s, hex[3], last, strlen(last), &err), MLX_OK);
	assert_int_equal(mlx_store_commit_start(s, &err), MLX_OK);
	assert_int_equal(mlx_store_commit_wait(s, &err), MLX_ERR_IO);
	assert_non_null(strstr(err.msg, "not a store directory"));
	assert_int_equal(mlx_store_staged(s), 1);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	assert_int_equal(mlx_store_verify(s, hex[3], &err), MLX_OK);
	mlx_store_close(s);
}

/* The names in .mlx/cache/unsynced/, sorted, one per line, in out. */
static int unsynced_names(char *out, size_t size)
{
	char dir[PATH_MAX];
	snprintf(dir, sizeof dir, "%s/.mlx/cache/unsynced", root);
	struct dirent **ents;
	int n = scandir(dir, &ents, NULL, alphasort);
	out[0] = '\0';
	int count = 0;
	for (int i = 0; i < n; i++) {
		if (ents[i]->d_name[0] != '.') {
			strncat(out, ents[i]->d_name, size - strlen(out) - 2);
			strcat(out, "\n");
			count++;
		}
		free(ents[i]);
	}
	if (n >= 0)
		free(ents);
	return count;
}

static void deferred_commits_are_recorded_and_checked_after_a_restart(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	char boot[64] = "", names[4096], path[PATH_MAX], text[4096];
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (!f)
		skip(); /* no boot id: commits stay durable */
	assert_non_null(fgets(boot, sizeof boot, f));
	fclose(f);
	boot[strcspn(boot, "\n")] = '\0';
	const char *texts[] = {"fetched 1", "fetched 2", "made here", "fetched 3", "never stored"};
	char hex[5][MLX_HASH_HEX_SIZE];
	for (int i = 0; i < 5; i++)
		assert_int_equal(mlx_hash_bytes(texts[i], strlen(texts[i]), hex[i], &err), MLX_OK);

	/* A deferred commit publishes at once, after a record of its objects. */
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	mlx_store_defer_durability(s, 1);
	for (int i = 0; i < 2; i++)
		assert_int_equal(mlx_store_stage_verified_bytes(s, hex[i], texts[i], strlen(texts[i]), &err), MLX_OK);
	assert_int_equal(mlx_store_commit_start(s, &err), MLX_OK);
	assert_int_equal(mlx_store_commit_wait(s, &err), MLX_OK);
	assert_int_equal(mlx_store_verify(s, hex[0], &err), MLX_OK);
	assert_int_equal(mlx_store_verify(s, hex[1], &err), MLX_OK);
	assert_int_equal(unsynced_names(names, sizeof names), 1);
	assert_int_equal(strncmp(names, boot, strlen(boot)), 0);
	assert_null(strstr(names, ".open")); /* finished */
	names[strcspn(names, "\n")] = '\0';
	snprintf(path, sizeof path, "%s/.mlx/cache/unsynced/%.255s", root, names);
	f = fopen(path, "r");
	assert_non_null(f);
	size_t got = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[got] = '\0';
	assert_non_null(strstr(text, hex[0]));
	assert_non_null(strstr(text, hex[1]));

	/* A durable commit's syncs cover it: the record goes. A record that a
	 * commit still holds (renaming) stays; one nobody holds (its process
	 * was killed) goes. */
	snprintf(path, sizeof path, "%s/.mlx/cache/unsynced/%s.1.77.open", root, boot);
	write_file(path + strlen(root) + 1, "mlx unsynced objects 1\n");
	snprintf(path, sizeof path, "%s/.mlx/cache/unsynced/%s.1.78.open", root, boot);
	write_file(path + strlen(root) + 1, "mlx unsynced objects 1\n");
	int held = open(path, O_RDONLY);
	assert_true(held >= 0);
	assert_int_equal(flock(held, LOCK_SH), 0);
	mlx_store_defer_durability(s, 0);
	assert_int_equal(mlx_store_stage_verified_bytes(s, hex[2], texts[2], strlen(texts[2]), &err), MLX_OK);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	assert_int_equal(unsynced_names(names, sizeof names), 1);
	assert_non_null(strstr(names, ".78.open"));
	close(held);
	assert_int_equal(unlink(path), 0);

	/* The machine restarts before the kernel wrote an object: the record
	 * is another boot's, and the object's bytes are not its name's. */
	mlx_store_defer_durability(s, 1);
	assert_int_equal(mlx_store_stage_verified_bytes(s, hex[3], texts[3], strlen(texts[3]), &err), MLX_OK);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	mlx_store_close(s);
	assert_int_equal(unsynced_names(names, sizeof names), 1);
	names[strcspn(names, "\n")] = '\0';
	char from[PATH_MAX], to[PATH_MAX];
	snprintf(from, sizeof from, "%s/.mlx/cache/unsynced/%.255s", root, names);
	snprintf(to, sizeof to, "%s/.mlx/cache/unsynced/00000000-0000-4000-8000-000000000000.1.1.open", root);
	assert_int_equal(rename(from, to), 0);
	f = fopen(to, "a"); /* and an object that never got to the store */
	fprintf(f, "%s\nnot an id\n", hex[4]);
	fclose(f);
	snprintf(path, sizeof path, "%s/.mlx/cache/objects/%.2s/%s", root, hex[3], hex[3] + 2);
	assert_int_equal(chmod(path, 0644), 0);
	f = fopen(path, "w");
	fputs("zeroes, or another file's bytes", f);
	fclose(f);
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	assert_int_equal(mlx_store_recovered_damaged(s), 1);
	assert_false(mlx_store_has(s, hex[3]));
	assert_int_equal(mlx_store_verify(s, hex[0], &err), MLX_OK);
	char note[512];
	assert_int_equal(mlx_store_recovery_note(s, note, sizeof note), 1);
	assert_non_null(strstr(note, "1 object fetched from a remote"));
	assert_int_equal(unsynced_names(names, sizeof names), 0);
	snprintf(path, sizeof path, "%s/.mlx/cache/quarantine/%s", root, hex[3]);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	mlx_store_close(s);
	/* Checked once: the next open finds nothing to say. */
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	assert_int_equal(mlx_store_recovered_damaged(s), 0);
	assert_int_equal(mlx_store_recovery_note(s, note, sizeof note), 0);
	mlx_store_close(s);
}

/* The boot id, or "" without /proc. */
static void read_boot_id(char boot[64])
{
	boot[0] = '\0';
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "r");
	if (!f)
		return;
	if (!fgets(boot, 64, f))
		boot[0] = '\0';
	fclose(f);
	boot[strcspn(boot, "\n")] = '\0';
}

static void a_record_never_replaces_another_processes_record(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	char boot[64], path[PATH_MAX], want[128], got[128];
	read_boot_id(boot);
	if (!boot[0])
		skip(); /* no boot id: commits stay durable */
	/* Records another process of this pid left (a container's mlx has
	 * the same pid at every run): finished, their objects not yet
	 * covered by a sync. */
	snprintf(path, sizeof path, "%s/.mlx/cache/unsynced", root);
	assert_int_equal(mlx_fs_mkdirs(path, 0755, &err), MLX_OK);
	for (int k = 0; k < 64; k++) {
		snprintf(path, sizeof path, ".mlx/cache/unsynced/%s.%ld.%d", boot, (long)getpid(), k);
		snprintf(want, sizeof want, "mlx unsynced objects 1\n%064d\n", k);
		write_file(path, want);
	}
	const char *text = "fetched by this process";
	char hex[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_hash_bytes(text, strlen(text), hex, &err), MLX_OK);
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	mlx_store_defer_durability(s, 1);
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mlx_store_stage_verified_bytes(s, hex, text, strlen(text), &err), MLX_OK);
		assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	}
	mlx_store_close(s);
	for (int k = 0; k < 64; k++) {
		snprintf(path, sizeof path, "%s/.mlx/cache/unsynced/%s.%ld.%d", root, boot, (long)getpid(),
		         k);
		snprintf(want, sizeof want, "mlx unsynced objects 1\n%064d\n", k);
		FILE *f = fopen(path, "r");
		assert_non_null(f);
		size_t n = fread(got, 1, sizeof got - 1, f);
		fclose(f);
		got[n] = '\0';
		assert_string_equal(got, want);
	}
	char names[16384];
	assert_int_equal(unsynced_names(names, sizeof names), 64 + 3);
}

static void a_durable_commit_leaves_a_temp_record_its_writer_has_not_locked_yet(void **state)
{
	(void)state;
	struct mlx_store *s;
	struct mlx_err err;
	char boot[64], fresh[PATH_MAX], stale[PATH_MAX], names[4096];
	read_boot_id(boot);
	if (!boot[0])
		skip();
	snprintf(fresh, sizeof fresh, "%s/.mlx/cache/unsynced", root);
	assert_int_equal(mlx_fs_mkdirs(fresh, 0755, &err), MLX_OK);
	/* A writer between creating its temp record and locking it, and the
	 * temp record of a writer killed an hour ago. */
	snprintf(fresh, sizeof fresh, ".mlx/cache/unsynced/.%s.1.5.tmp", boot);
	write_file(fresh, "mlx unsynced objects 1\n");
	snprintf(stale, sizeof stale, ".mlx/cache/unsynced/.%s.1.6.tmp", boot);
	write_file(stale, "mlx unsynced objects 1\n");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%.300s", root, stale);
	struct timespec old[2] = {{.tv_sec = time(NULL) - 3600}, {.tv_sec = time(NULL) - 3600}};
	assert_int_equal(utimensat(AT_FDCWD, path, old, 0), 0);
	const char *text = "made here";
	char hex[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_hash_bytes(text, strlen(text), hex, &err), MLX_OK);
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	assert_int_equal(mlx_store_stage_verified_bytes(s, hex, text, strlen(text), &err), MLX_OK);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	mlx_store_close(s);
	struct stat st;
	snprintf(path, sizeof path, "%s/%.300s", root, fresh);
	assert_int_equal(stat(path, &st), 0);
	snprintf(path, sizeof path, "%s/%.300s", root, stale);
	assert_int_not_equal(stat(path, &st), 0);
	assert_int_equal(unsynced_names(names, sizeof names), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(staged_objects_appear_only_on_commit),
	    cmocka_unit_test(checkout_verifies_and_quarantines),
	    cmocka_unit_test(gc_lock_excludes_and_db_ids_skip_missing),
	    cmocka_unit_test(symlinks_in_the_store_are_never_followed),
	    cmocka_unit_test(many_lookups_answer_as_one_by_one),
	    cmocka_unit_test(many_files_share_the_temp_subdirectories),
	    cmocka_unit_test(commit_keeps_whole_objects_and_replaces_truncated_ones),
	    cmocka_unit_test(an_object_written_in_pieces_is_staged_whole),
	    cmocka_unit_test(a_background_commit_takes_what_was_staged_before_it),
	    cmocka_unit_test(deferred_commits_are_recorded_and_checked_after_a_restart),
	    cmocka_unit_test(a_record_never_replaces_another_processes_record),
	    cmocka_unit_test(a_durable_commit_leaves_a_temp_record_its_writer_has_not_locked_yet),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
