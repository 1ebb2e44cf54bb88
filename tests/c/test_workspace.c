/* test_workspace.c — core/workspace.c: hashing and storing through the stat
 * cache, checkout confined below the root, manifests read back. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "statcache.h"
#include "workspace.h"

static char root[256], outside[256];

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
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(root, sizeof root, "%s/mlx-test-ws-XXXXXX", tmp);
	snprintf(outside, sizeof outside, "%s/mlx-test-ws-out-XXXXXX", tmp);
	if (!mkdtemp(root) || !mkdtemp(outside))
		return -1;
	char data[PATH_MAX];
	snprintf(data, sizeof data, "%s/data/sub", root);
	if (mlx_fs_mkdirs(data, 0755, NULL) != MLX_OK)
		return -1;
	write_file("data/a.txt", "alpha");
	write_file("data/sub/b.txt", "beta");
	write_file("single.txt", "alpha");
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s' '%s'", root, root, outside);
	return system(cmd);
}

static void put_then_checkout_round_trip(void **state)
{
	(void)state;
	struct mlx_workspace *ws;
	struct mlx_err err;
	assert_int_equal(mlx_workspace_open(root, 0, 2, &ws, &err), MLX_OK);
	struct mlx_artifact file, dir;
	assert_int_equal(mlx_workspace_hash(ws, "single.txt", 0, &file, &err), MLX_OK);
	assert_false(file.is_dir);
	assert_int_equal(file.size, 5);
	assert_int_equal(file.mode, 0644);
	assert_false(mlx_store_has(mlx_workspace_store(ws), file.hex));

	assert_int_equal(mlx_workspace_hash(ws, "data", MLX_WS_PUT, &dir, &err), MLX_OK);
	assert_true(dir.is_dir);
	assert_int_equal(dir.files, 2);
	assert_int_equal(dir.size, 9);
	assert_non_null(dir.manifest);
	assert_int_equal(mlx_store_commit(mlx_workspace_store(ws), &err), MLX_OK);
	assert_true(mlx_store_has(mlx_workspace_store(ws), dir.hex));

	/* Unchanged, and only ids wanted: the stat cache answers without a
	 * manifest, with the same id. */
	struct mlx_artifact again;
	assert_int_equal(mlx_workspace_hash(ws, "data", MLX_WS_NO_MANIFEST, &again, &err), MLX_OK);
	assert_string_equal(again.hex, dir.hex);
	mlx_artifact_free(&again);

	struct mlx_filelist files = {0};
	assert_int_equal(mlx_workspace_manifest(ws, dir.hex, &files, &err), MLX_OK);
	assert_int_equal(files.len, 2);
	assert_int_equal(mlx_workspace_checkout(ws, "copy/of/data", &files, MLX_LINK_COPY, NULL, &err), MLX_OK);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/copy/of/data/sub/b.txt", root);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 4);

	struct mlx_artifact copy;
	assert_int_equal(mlx_workspace_hash(ws, "copy/of/data", 0, &copy, &err), MLX_OK);
	assert_string_equal(copy.hex, dir.hex);
	mlx_artifact_free(&copy);

	/* Objects the caller verified are copied without a second read: the
	 * same bytes, sizes and stat cache entries. */
	unsigned char verified[2] = {1, 1};
	assert_int_equal(mlx_workspace_checkout(ws, "copy/verified", &files, MLX_LINK_COPY, verified, &err), MLX_OK);
	assert_int_equal(files.items[0].size + files.items[1].size, 9);
	assert_int_equal(mlx_workspace_hash(ws, "copy/verified", 0, &copy, &err), MLX_OK);
	assert_string_equal(copy.hex, dir.hex);
	mlx_artifact_free(&copy);
	mlx_filelist_free(&files);
	mlx_artifact_free(&file);
	mlx_artifact_free(&dir);
	mlx_workspace_close(ws);
}

/* A checked-out copy is entered in the stat cache with its hash, so the
 * next look need not read it; a write right after the checkout, in the
 * same timestamp tick and of the same size, must still be seen. */
static void checkout_records_copies_and_sees_a_write_right_after(void **state)
{
	(void)state;
	struct mlx_workspace *ws;
	struct mlx_err err;
	assert_int_equal(mlx_workspace_open(root, 0, 2, &ws, &err), MLX_OK);
	struct mlx_artifact dir;
	assert_int_equal(mlx_workspace_hash(ws, "data", MLX_WS_PUT, &dir, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(mlx_workspace_store(ws), &err), MLX_OK);
	struct mlx_filelist files = {0};
	assert_int_equal(mlx_workspace_manifest(ws, dir.hex, &files, &err), MLX_OK);
	int64_t before = mlx_hash_now_ns();
	assert_int_equal(mlx_workspace_checkout(ws, "fresh", &files, MLX_LINK_COPY, NULL, &err), MLX_OK);
	/* The copy is dated before the checkout began. */
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/fresh/a.txt", root);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_true((int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec < before);
	/* Same size, new bytes, at once. */
	FILE *f = fopen(path, "r+b");
	assert_non_null(f);
	fputs("ALPHA", f);
	fclose(f);
	struct mlx_artifact now, expected;
	assert_int_equal(mlx_workspace_hash(ws, "fresh", 0, &now, &err), MLX_OK);
	write_file("expected-a.txt", "ALPHA");
	assert_int_equal(mlx_workspace_hash(ws, "expected-a.txt", 0, &expected, &err), MLX_OK);
	assert_string_not_equal(now.hex, dir.hex);
	mlx_artifact_free(&now);
	/* And the file alone, as status looks at a single out. */
	assert_int_equal(mlx_workspace_hash(ws, "fresh/a.txt", 0, &now, &err), MLX_OK);
	assert_string_equal(now.hex, expected.hex);
	mlx_artifact_free(&now);
	mlx_artifact_free(&expected);
	mlx_filelist_free(&files);
	mlx_artifact_free(&dir);
	mlx_workspace_close(ws);
}

static void checkout_never_writes_through_a_symlink_or_into_git(void **state)
{
	(void)state;
	struct mlx_workspace *ws;
	struct mlx_err err;
	assert_int_equal(mlx_workspace_open(root, 0, 1, &ws, &err), MLX_OK);
	struct mlx_artifact file;
	assert_int_equal(mlx_workspace_hash(ws, "single.txt", MLX_WS_PUT, &file, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(mlx_workspace_store(ws), &err), MLX_OK);
	char link[PATH_MAX];
	snprintf(link, sizeof link, "%s/link", root);
	assert_int_equal(symlink(outside, link), 0);

	struct mlx_filelist items = {0};
	assert_int_equal(mlx_filelist_push(&items, "victim.txt", 0, 0644, file.hex, &err), MLX_OK);
	assert_int_equal(mlx_workspace_checkout(ws, "link", &items, MLX_LINK_COPY, NULL, &err), MLX_ERR_INVALID);
	assert_string_equal(err.msg, "link is a symbolic link; mlx never writes through one");
	mlx_filelist_free(&items);

	const char *bad[] = {"link/victim.txt", "../escape.txt", ".git/hooks/pre-commit", ".mlx/config.local.lua"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		assert_int_equal(mlx_filelist_push(&items, bad[i], 0, 0755, file.hex, &err), MLX_OK);
		assert_int_equal(mlx_workspace_checkout(ws, "", &items, MLX_LINK_COPY, NULL, &err), MLX_ERR_INVALID);
		mlx_filelist_free(&items);
	}
	char victim[PATH_MAX];
	snprintf(victim, sizeof victim, "%s/victim.txt", outside);
	struct stat st;
	assert_int_not_equal(lstat(victim, &st), 0);
	snprintf(victim, sizeof victim, "%s/.git", root);
	assert_int_not_equal(lstat(victim, &st), 0);
	mlx_artifact_free(&file);
	mlx_workspace_close(ws);
}

/* Stages text as an object of ws's store and commits it; its id to hex. */
static void store_text(struct mlx_workspace *ws, const char *text, char hex[MLX_HASH_HEX_SIZE])
{
	struct mlx_err err;
	assert_int_equal(mlx_store_stage_bytes(mlx_workspace_store(ws), text, strlen(text), hex, &err),
	                 MLX_OK);
	assert_int_equal(mlx_store_commit(mlx_workspace_store(ws), &err), MLX_OK);
}

static int exists(const char *rel)
{
	char path[PATH_MAX];
	struct stat st;
	snprintf(path, sizeof path, "%s/%s", root, rel);
	return lstat(path, &st) == 0;
}

/* A directory checked out from its manifest a window at a time (of 3
 * files here, so over several): the same tree, with or without verified ids;
 * a manifest that is not what its id says, or names a path that leaves
 * the directory or goes through a symlink, writes nothing. */
static void checkout_manifest_places_windows_and_refuses_bad_manifests(void **state)
{
	(void)state;
	enum { N = 3 + 3 + 2 };
	char path[PATH_MAX], text[64];
	snprintf(path, sizeof path, "%s/many", root);
	assert_int_equal(mlx_fs_mkdirs(path, 0755, NULL), MLX_OK);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof path, "many/f%05d", i);
		snprintf(text, sizeof text, "file %d\n", i);
		write_file(path, text);
	}
	struct mlx_workspace *ws;
	struct mlx_err err;
	assert_int_equal(mlx_workspace_open(root, 0, 2, &ws, &err), MLX_OK);
	struct mlx_artifact dir, copy;
	assert_int_equal(mlx_workspace_hash(ws, "many", MLX_WS_PUT, &dir, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(mlx_workspace_store(ws), &err), MLX_OK);
	uint64_t files, bytes;
	assert_int_equal(mlx_workspace_manifest_count(ws, dir.hex, &files, &bytes, &err), MLX_OK);
	assert_int_equal(files, N);
	assert_int_equal(bytes, dir.size);

	size_t placed;
	assert_int_equal(mlx_workspace_checkout_manifest(ws, "copies/many", dir.hex, MLX_LINK_COPY, NULL, 3,
	                                                 NULL, NULL, &placed, &err),
	                 MLX_OK);
	assert_int_equal(placed, N);
	/* The checkout wrote the directory's tree, window after window, with
	 * the manifest's id: a look compares the directory with it, finds its
	 * files (whose last ones are racy: checked out within 100 ms of being
	 * recorded) and nothing else. */
	char dbpath[PATH_MAX], dirpath[PATH_MAX], hex[MLX_HASH_HEX_SIZE];
	snprintf(dbpath, sizeof dbpath, "%s/.mlx/state.db", root);
	snprintf(dirpath, sizeof dirpath, "%s/copies/many", root);
	struct mlx_statcache *sc;
	assert_int_equal(mlx_statcache_open(dbpath, &sc, &err), MLX_OK);
	struct mlx_statcache_changes changes;
	assert_int_equal(mlx_statcache_changes(sc, "copies/many", dirpath, 100, &changes), 1);
	assert_string_equal(changes.id, dir.hex);
	assert_int_equal(changes.files, N);
	assert_int_equal(changes.added.len + changes.deleted.len, 0);
	mlx_statcache_changes_free(&changes);
	/* The diff against the lock finds no difference from the tree, and
	 * records the racy files' facts in it again: the next look finds the
	 * directory unchanged without a row or a byte read. */
	usleep(150 * 1000);
	struct mlx_dirdiff d;
	assert_int_equal(mlx_workspace_diff(ws, "copies/many", dir.hex, &copy, &d, &err), MLX_OK);
	assert_string_equal(copy.hex, dir.hex);
	assert_int_equal(d.added.len + d.modified.len + d.deleted.len, 0);
	mlx_dirdiff_free(&d);
	uint64_t nfiles, nbytes;
	assert_int_equal(mlx_statcache_unchanged(sc, "copies/many", dirpath, hex, &nfiles, &nbytes), 1);
	assert_string_equal(hex, dir.hex);
	assert_int_equal(nfiles, N);
	assert_int_equal(nbytes, dir.size);
	/* And a change after the checkout is still seen. */
	write_file("copies/many/f00004", "file 4, changed\n");
	assert_int_equal(mlx_statcache_unchanged(sc, "copies/many", dirpath, hex, &nfiles, &nbytes), 0);
	assert_int_equal(mlx_workspace_diff(ws, "copies/many", dir.hex, &copy, &d, &err), MLX_OK);
	assert_string_not_equal(copy.hex, dir.hex);
	assert_int_equal(d.modified.len, 1);
	assert_string_equal(d.modified.items[0].path, "f00004");
	mlx_dirdiff_free(&d);
	mlx_statcache_close(sc);

	struct mlx_filelist list = {0};
	struct mlx_idset verified = MLX_IDSET_INIT;
	assert_int_equal(mlx_workspace_manifest(ws, dir.hex, &list, &err), MLX_OK);
	for (size_t i = 0; i < list.len; i++)
		assert_int_equal(mlx_idset_add_hex(&verified, list.items[i].hex, 0, &err), MLX_OK);
	mlx_filelist_free(&list);
	assert_int_equal(mlx_workspace_checkout_manifest(ws, "copies/verified", dir.hex, MLX_LINK_COPY,
	                                                 &verified, 3, NULL, NULL, &placed, &err),
	                 MLX_OK);
	assert_int_equal(mlx_workspace_hash(ws, "copies/verified", 0, &copy, &err), MLX_OK);
	assert_string_equal(copy.hex, dir.hex);
	mlx_artifact_free(&copy);
	mlx_idset_free(&verified);

	/* Bad manifests: refused before anything is written. */
	struct mlx_artifact file;
	assert_int_equal(mlx_workspace_hash(ws, "single.txt", MLX_WS_PUT, &file, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(mlx_workspace_store(ws), &err), MLX_OK);
	char manifest[256], bad[MLX_HASH_HEX_SIZE];
	snprintf(manifest, sizeof manifest, "%s 5 644 a.txt\n%s 5 644 ../escape.txt\n", file.hex, file.hex);
	store_text(ws, manifest, bad);
	assert_int_equal(mlx_workspace_checkout_manifest(ws, "out", bad, MLX_LINK_COPY, NULL, 3, NULL, NULL,
	                                                 &placed, &err),
	                 MLX_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "manifest line 2"));
	assert_false(exists("out"));
	assert_false(exists("escape.txt"));

	snprintf(manifest, sizeof manifest, "%s 5 644 a.txt\n", file.hex);
	store_text(ws, manifest, bad);
	assert_int_equal(mlx_store_object_path(mlx_workspace_store(ws), bad, path, sizeof path, &err),
	                 MLX_OK);
	assert_int_equal(chmod(path, 0644), 0);
	FILE *f = fopen(path, "ab");
	assert_non_null(f);
	fprintf(f, "%s 5 644 b.txt\n", file.hex);
	fclose(f);
	assert_int_equal(mlx_workspace_checkout_manifest(ws, "out", bad, MLX_LINK_COPY, NULL, 3, NULL, NULL,
	                                                 &placed, &err),
	                 MLX_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "is corrupt"));
	assert_false(exists("out"));

	snprintf(manifest, sizeof manifest, "%s 5 644 lnk/victim.txt\n", file.hex);
	store_text(ws, manifest, bad);
	snprintf(path, sizeof path, "%s/lnk", root);
	assert_int_equal(symlink(outside, path), 0);
	assert_int_equal(
	    mlx_workspace_checkout_manifest(ws, "", bad, MLX_LINK_COPY, NULL, 3, NULL, NULL, &placed, &err),
	    MLX_ERR_INVALID);
	snprintf(path, sizeof path, "%s/victim.txt", outside);
	struct stat st;
	assert_int_not_equal(lstat(path, &st), 0);
	assert_int_equal(mlx_workspace_checkout_manifest(ws, "gone", dir.hex + 1, MLX_LINK_COPY, NULL, 3,
	                                                 NULL, NULL, &placed, &err),
	                 MLX_ERR_INVALID);
	mlx_artifact_free(&file);
	mlx_artifact_free(&dir);
	mlx_workspace_close(ws);
}

static void assert_paths(const struct mlx_filelist *list, const char *const *want, size_t n)
{
	assert_int_equal(list->len, n);
	for (size_t i = 0; i < n; i++)
		assert_string_equal(list->items[i].path, want[i]);
}

/* The diff of a directory and its locked manifest names exactly the files
 * added, modified (content or mode) and deleted, sorted, with the locked
 * entry of each modified one; an unchanged directory has none, and a
 * manifest not in the store leaves the diff out but not the hash. */
static void diff_names_what_changed_since_the_lock(void **state)
{
	(void)state;
	char sub[PATH_MAX];
	snprintf(sub, sizeof sub, "%s/diffed/sub", root);
	assert_int_equal(mlx_fs_mkdirs(sub, 0755, NULL), MLX_OK);
	write_file("diffed/keep.txt", "keep");
	write_file("diffed/change.txt", "before");
	write_file("diffed/gone.txt", "gone");
	write_file("diffed/sub/x.sh", "echo x");
	struct mlx_workspace *ws;
	struct mlx_err err;
	assert_int_equal(mlx_workspace_open(root, 0, 2, &ws, &err), MLX_OK);
	struct mlx_artifact locked, now;
	assert_int_equal(mlx_workspace_hash(ws, "diffed", MLX_WS_PUT, &locked, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(mlx_workspace_store(ws), &err), MLX_OK);
	char before[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_hash_bytes("before", 6, before, &err), MLX_OK);

	write_file("diffed/change.txt", "after, longer");
	write_file("diffed/new.txt", "new");
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/diffed/gone.txt", root);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/diffed/sub/x.sh", root);
	assert_int_equal(chmod(path, 0755), 0);

	struct mlx_dirdiff d;
	assert_int_equal(mlx_workspace_diff(ws, "diffed", locked.hex, &now, &d, &err), MLX_OK);
	assert_true(now.is_dir);
	assert_int_equal(now.files, 4);
	assert_string_not_equal(now.hex, locked.hex);
	assert_null(now.manifest);
	assert_int_equal(d.unread, 0);
	const char *added[] = {"new.txt"}, *modified[] = {"change.txt", "sub/x.sh"},
	           *deleted[] = {"gone.txt"};
	assert_paths(&d.added, added, 1);
	assert_paths(&d.modified, modified, 2);
	assert_paths(&d.was, modified, 2);
	assert_paths(&d.deleted, deleted, 1);
	assert_string_equal(d.was.items[0].hex, before);
	assert_int_equal(d.was.items[0].size, 6);
	assert_int_equal(d.modified.items[0].size, 13);
	assert_string_equal(d.was.items[1].hex, d.modified.items[1].hex);
	assert_int_equal(d.was.items[1].mode, 0644);
	assert_int_equal(d.modified.items[1].mode, 0755);
	mlx_dirdiff_free(&d);

	/* Against its own id: nothing differs, and no manifest is read. */
	char id[MLX_HASH_HEX_SIZE];
	memcpy(id, now.hex, sizeof id);
	mlx_artifact_free(&now);
	assert_int_equal(mlx_workspace_diff(ws, "diffed", id, &now, &d, &err), MLX_OK);
	assert_string_equal(now.hex, id);
	assert_int_equal(d.added.len + d.modified.len + d.was.len + d.deleted.len, 0);
	assert_int_equal(d.unread, 0);
	mlx_dirdiff_free(&d);
	mlx_artifact_free(&now);

	/* A locked manifest that is not in the store. */
	const char *absent = "0000000000000000000000000000000000000000000000000000000000000000";
	assert_int_equal(mlx_workspace_diff(ws, "diffed", absent, &now, &d, &err), MLX_OK);
	assert_string_equal(now.hex, id);
	assert_int_equal(d.unread, MLX_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, absent));
	assert_int_equal(d.added.len + d.modified.len + d.deleted.len, 0);
	mlx_dirdiff_free(&d);
	mlx_artifact_free(&now);
	mlx_artifact_free(&locked);
	mlx_workspace_close(ws);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(put_then_checkout_round_trip),
	    cmocka_unit_test(checkout_never_writes_through_a_symlink_or_into_git),
	    cmocka_unit_test(diff_names_what_changed_since_the_lock),
	    cmocka_unit_test(checkout_records_copies_and_sees_a_write_right_after),
	    cmocka_unit_test(checkout_manifest_places_windows_and_refuses_bad_manifests),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
