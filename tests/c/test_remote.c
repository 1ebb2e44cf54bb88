/* test_remote.c — core/remote_dir.c and core/remote.c: the directory
 * backend's keys, atomic puts and listings; push and fetch between two
 * real stores through a directory remote, with verification. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"
#include "remote.h"
#include "store.h"

static char base[256], remote_dir[300], project_a[300], project_b[300];

static void write_file(const char *path, const char *content)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	fputs(content, f);
	fclose(f);
}

static int setup(void **state)
{
	(void)state;
	snprintf(base, sizeof base, "%s/mlx-test-remote-XXXXXX",
	         getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(base))
		return -1;
	snprintf(remote_dir, sizeof remote_dir, "%s/remote", base);
	snprintf(project_a, sizeof project_a, "%s/a", base);
	snprintf(project_b, sizeof project_b, "%s/b", base);
	if (mlx_fs_mkdirs(project_a, 0755, NULL) || mlx_fs_mkdirs(project_b, 0755, NULL))
		return -1;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[600];
	snprintf(cmd, sizeof cmd, "chmod -R u+w '%s'; rm -rf '%s'", base, base);
	return system(cmd);
}

static int count_key(void *ctx, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	(*(int *)ctx)++;
	return 0;
}

static struct mlx_remote *open_remote_window(size_t window)
{
	struct mlx_remote_config config = {.name = "t", .url = remote_dir};
	struct mlx_remote_policy policy = {.jobs = 4, .retries = 1, .backoff = 0.01, .window = window};
	struct mlx_remote *r;
	struct mlx_err err;
	assert_int_equal(mlx_remote_open(&config, &policy, &r, &err), MLX_OK);
	return r;
}

static struct mlx_remote *open_remote(void)
{
	return open_remote_window(0);
}

static void backends_are_chosen_by_url(void **state)
{
	(void)state;
	assert_string_equal(mlx_remote_backend_for("/srv/store")->name, "dir");
	assert_string_equal(mlx_remote_backend_for("file:///srv/store")->name, "dir");
	assert_null(mlx_remote_backend_for("ftp://host/x"));
	struct mlx_remote_config config = {.name = "t", .url = "relative/path"};
	struct mlx_remote *r;
	struct mlx_err err;
	assert_int_equal(mlx_remote_open(&config, NULL, &r, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "no backend serves"));
	struct mlx_strlist options = {0};
	mlx_strlist_push(&options, "region", NULL);
	mlx_strlist_push(&options, "x", NULL);
	config.url = "/tmp";
	config.options = &options;
	assert_int_equal(mlx_remote_open(&config, NULL, &r, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "unknown option 'region'"));
	mlx_strlist_free(&options);
}

static void keys_are_written_whole_and_listed(void **state)
{
	(void)state;
	struct mlx_remote *r = open_remote();
	struct mlx_err err;
	char *data;
	size_t len;
	assert_int_equal(mlx_remote_read(r, "index/none", 100, &data, &len, &err), MLX_ERR_NOTFOUND);
	assert_int_equal(mlx_remote_write(r, "index/seg1", "one\n", 4, base, &err), MLX_OK);
	assert_int_equal(mlx_remote_write(r, "index/seg1", "two!\n", 5, base, &err), MLX_OK);
	assert_int_equal(mlx_remote_read(r, "index/seg1", 100, &data, &len, &err), MLX_OK);
	assert_string_equal(data, "two!\n");
	free(data);
	assert_int_equal(mlx_remote_read(r, "index/seg1", 2, &data, &len, &err), MLX_ERR_INVALID);
	uint64_t size;
	assert_int_equal(mlx_remote_stat(r, "index/seg1", &size, &err), MLX_OK);
	assert_int_equal(size, 5);
	/* A temp file left by a killed writer is never listed. */
	char tmp[PATH_MAX];
	snprintf(tmp, sizeof tmp, "%s/index/.tmp-host-1-0-seg2", remote_dir);
	write_file(tmp, "partial");
	int n = 0;
	assert_int_equal(mlx_remote_list(r, "index/", count_key, &n, &err), MLX_OK);
	assert_int_equal(n, 1);
	n = 0;
	assert_int_equal(mlx_remote_list(r, "nothing/", count_key, &n, &err), MLX_OK);
	assert_int_equal(n, 0);
	assert_int_equal(mlx_remote_remove(r, "index/seg1", &err), MLX_OK);
	assert_int_equal(mlx_remote_remove(r, "index/seg1", &err), MLX_OK);
	assert_int_equal(mlx_remote_stat(r, "index/seg1", &size, &err), MLX_ERR_NOTFOUND);
	mlx_remote_close(r);
}

static void keys_that_leave_the_remote_are_refused(void **state)
{
	(void)state;
	struct mlx_remote *r = open_remote();
	struct mlx_err err;
	const char *bad[] = {
	    "../x", "objects/../../x", "/etc/passwd", "a//b", ".git/config", "a/./b", "a/", "", "a b"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		uint64_t size;
		assert_int_equal(mlx_remote_stat(r, bad[i], &size, &err), MLX_ERR_INVALID);
		assert_int_equal(mlx_remote_write(r, bad[i], "x", 1, base, &err), MLX_ERR_INVALID);
	}
	/* A symlink below the root is not followed. */
	char link[PATH_MAX];
	snprintf(link, sizeof link, "%s/runcache", remote_dir);
	assert_int_equal(symlink("/etc", link), 0);
	char *data;
	size_t len;
	assert_int_equal(mlx_remote_read(r, "runcache/passwd", 1 << 20, &data, &len, &err), MLX_ERR_NOTFOUND);
	assert_int_equal(mlx_remote_write(r, "runcache/x", "x", 1, base, &err), MLX_ERR_IO);
	unlink(link);
	mlx_remote_close(r);
}

/* Stages and commits content as an object of the store at root. */
static void store_bytes(const char *root, const char *content, char hex[MLX_HASH_HEX_SIZE])
{
	struct mlx_store *s;
	struct mlx_err err;
	assert_int_equal(mlx_store_open(root, 0, &s, &err), MLX_OK);
	assert_int_equal(mlx_store_stage_bytes(s, content, strlen(content), hex, &err), MLX_OK);
	assert_int_equal(mlx_store_commit(s, &err), MLX_OK);
	mlx_store_close(s);
}

static void push_then_fetch_verifies_every_object(void **state)
{
	(void)state;
	enum { N = 50 };
	char hex[N + 1][MLX_HASH_HEX_SIZE];
	char content[64];
	struct mlx_idset ids = MLX_IDSET_INIT, all = MLX_IDSET_INIT;
	struct mlx_err err;
	for (int i = 0; i < N; i++) {
		snprintf(content, sizeof content, "object number %d\n", i);
		store_bytes(project_a, content, hex[i]);
		assert_int_equal(mlx_idset_add_hex(&ids, hex[i], strlen(content), &err), MLX_OK);
	}
	snprintf(hex[N], sizeof hex[N], "%064d", 0); /* not in A's store */
	assert_int_equal(mlx_idset_merge(&all, &ids, &err), MLX_OK);
	assert_int_equal(mlx_idset_add_hex(&all, hex[N], 0, &err), MLX_OK);
	unsigned char zero[32] = {0};
	struct mlx_remote *r = open_remote();
	struct mlx_store *a, *b;
	assert_int_equal(mlx_store_open(project_a, 0, &a, &err), MLX_OK);
	struct mlx_remote_result res = MLX_REMOTE_RESULT_INIT;
	assert_int_equal(mlx_remote_push(r, a, &all, 1, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.sent, N);
	assert_int_equal(mlx_idset_count(&res.missing), 1);
	assert_non_null(mlx_idset_find(&res.missing, zero));
	assert_int_equal(mlx_idset_count(&res.corrupt), 0);
	assert_int_equal(mlx_idset_count(&res.verified), 0);
	mlx_remote_result_free(&res);
	/* Pushed again with check: all present, nothing sent. */
	assert_int_equal(mlx_remote_push(r, a, &ids, 1, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.sent, 0);
	assert_int_equal(res.present, N);
	mlx_remote_result_free(&res);
	mlx_store_close(a);

	/* Corrupt one object on the remote: the fetch reports it, never
	 * stores it. */
	char path[512];
	snprintf(path, sizeof path, "%s/objects/%.2s/%.62s", remote_dir, hex[7], hex[7] + 2);
	chmod(path, 0644);
	write_file(path, "tampered\n");
	assert_int_equal(mlx_store_open(project_b, 0, &b, &err), MLX_OK);
	assert_int_equal(mlx_remote_fetch(r, b, &all, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.sent, N - 1);
	assert_int_equal(mlx_idset_count(&res.verified), N - 1);
	assert_int_equal(mlx_idset_count(&res.corrupt), 1);
	unsigned char id[32];
	for (int i = 0; i < N; i++) {
		assert_true(mlx_id_from_hex(hex[i], id));
		if (i == 7) {
			assert_non_null(mlx_idset_find(&res.corrupt, id));
			assert_null(mlx_idset_find(&res.verified, id));
			assert_false(mlx_store_has(b, hex[i]));
		} else {
			assert_non_null(mlx_idset_find(&res.verified, id));
			assert_int_equal(mlx_store_verify(b, hex[i], &err), MLX_OK);
		}
	}
	assert_int_equal(mlx_idset_count(&res.missing), 1);
	assert_non_null(mlx_idset_find(&res.missing, zero));
	mlx_remote_result_free(&res);
	/* One pass tells which objects the store has. */
	const char *some[3] = {hex[0], hex[7], "../../etc/passwd"};
	unsigned char present[3];
	mlx_store_has_many(b, some, 3, present);
	assert_int_equal(present[0], 1);
	assert_int_equal(present[1], 0);
	assert_int_equal(present[2], 0);
	/* Fetched again: what the store has is not asked for. */
	assert_int_equal(mlx_remote_fetch(r, b, &ids, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.present, N - 1);
	assert_int_equal(mlx_idset_count(&res.corrupt), 1);
	assert_int_equal(res.sent, 0);
	mlx_remote_result_free(&res);
	mlx_store_close(b);
	mlx_idset_free(&ids);
	mlx_idset_free(&all);
	mlx_remote_close(r);
}

/* More objects than one window of the engine (of 3 here): every window is
 * moved, and a no-op fetch of them all finds each present. */
static void transfers_span_windows(void **state)
{
	(void)state;
	enum { N = 3 + 3 + 2 };
	struct mlx_store *a, *b;
	struct mlx_err err;
	struct mlx_idset ids = MLX_IDSET_INIT;
	assert_int_equal(mlx_store_open(project_a, 0, &a, &err), MLX_OK);
	char content[64], hex[MLX_HASH_HEX_SIZE];
	for (int i = 0; i < N; i++) {
		snprintf(content, sizeof content, "windowed object %d\n", i);
		assert_int_equal(mlx_store_stage_bytes(a, content, strlen(content), hex, &err), MLX_OK);
		assert_int_equal(mlx_idset_add_hex(&ids, hex, strlen(content), &err), MLX_OK);
	}
	assert_int_equal(mlx_store_commit(a, &err), MLX_OK);
	struct mlx_remote *r = open_remote_window(3);
	struct mlx_remote_result res = MLX_REMOTE_RESULT_INIT;
	assert_int_equal(mlx_remote_push(r, a, &ids, 0, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.sent, N);
	mlx_remote_result_free(&res);
	mlx_store_close(a);
	assert_int_equal(mlx_store_open(project_b, 0, &b, &err), MLX_OK);
	assert_int_equal(mlx_remote_fetch(r, b, &ids, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.sent + res.present, N);
	assert_int_equal(mlx_idset_count(&res.verified), res.sent);
	assert_int_equal(mlx_idset_count(&res.missing) + mlx_idset_count(&res.corrupt), 0);
	for (size_t i = 0; i < ids.len; i++) {
		mlx_id_to_hex(ids.items[i].id, hex);
		assert_true(mlx_store_has(b, hex));
	}
	mlx_remote_result_free(&res);
	assert_int_equal(mlx_remote_fetch(r, b, &ids, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.present, N);
	assert_int_equal(res.sent, 0);
	mlx_remote_result_free(&res);
	mlx_store_close(b);
	mlx_idset_free(&ids);
	mlx_remote_close(r);
}

/* The directory backend's read into memory: a key that fits is read whole,
 * a larger one is only sized, and nothing is reached through a symlink. */
static void small_keys_are_read_into_memory(void **state)
{
	(void)state;
	const struct mlx_remote_backend *be = mlx_remote_backend_for(remote_dir);
	assert_non_null(be->read_small);
	struct mlx_remote_config config = {.name = "t", .url = remote_dir};
	struct mlx_err err;
	void *st;
	assert_int_equal(be->open(&config, &st, &err), MLX_OK);
	char dir[PATH_MAX], path[PATH_MAX + 16], buf[16];
	snprintf(dir, sizeof dir, "%s/objects/ab", remote_dir);
	assert_int_equal(mlx_fs_mkdirs(dir, 0755, &err), MLX_OK);
	be->close(st); /* reopened: the root exists now */
	assert_int_equal(be->open(&config, &st, &err), MLX_OK);
	snprintf(path, sizeof path, "%s/small", dir);
	write_file(path, "twelve bytes");
	size_t size = 0;
	assert_int_equal(be->read_small(st, "objects/ab/small", buf, sizeof buf, &size, &err), MLX_OK);
	assert_int_equal(size, 12);
	assert_memory_equal(buf, "twelve bytes", 12);
	/* Larger than the buffer: sized, not read (buf keeps its bytes). */
	memset(buf, 'x', sizeof buf);
	assert_int_equal(be->read_small(st, "objects/ab/small", buf, 4, &size, &err), MLX_OK);
	assert_int_equal(size, 12);
	assert_int_equal(buf[0], 'x');
	assert_int_equal(be->read_small(st, "objects/ab/none", buf, sizeof buf, &size, &err), MLX_ERR_NOTFOUND);
	/* A symlink as the key, or in its directory's place: not found. */
	snprintf(path, sizeof path, "%s/link", dir);
	assert_int_equal(symlink("small", path), 0);
	assert_int_equal(be->read_small(st, "objects/ab/link", buf, sizeof buf, &size, &err), MLX_ERR_NOTFOUND);
	snprintf(path, sizeof path, "%s/objects/zz", remote_dir);
	assert_int_equal(symlink("ab", path), 0);
	assert_int_equal(be->read_small(st, "objects/zz/small", buf, sizeof buf, &size, &err), MLX_ERR_NOTFOUND);
	assert_int_equal(be->read_small(st, "objects/../x", buf, sizeof buf, &size, &err), MLX_ERR_INVALID);
	be->close(st);
}

/* An object larger than what a fetch reads into memory goes through a
 * temp file, and is verified all the same; a corrupt one of each kind is
 * caught, and one whose place on the remote is a symlink is missing. */
static void fetch_verifies_small_and_large_objects(void **state)
{
	(void)state;
	enum { BIG = 300 << 10 };
	char *big = malloc(BIG + 1);
	assert_non_null(big);
	for (int i = 0; i < BIG; i++)
		big[i] = (char)('a' + i % 26);
	big[BIG] = '\0';
	char hex[4][MLX_HASH_HEX_SIZE];
	struct mlx_idset ids = MLX_IDSET_INIT;
	struct mlx_err err;
	const char *small[3] = {"first small object\n", "second small object\n", "third small object\n"};
	store_bytes(project_a, big, hex[0]);
	for (int i = 0; i < 3; i++)
		store_bytes(project_a, small[i], hex[i + 1]);
	for (int i = 0; i < 4; i++)
		assert_int_equal(mlx_idset_add_hex(&ids, hex[i], 0, &err), MLX_OK);
	struct mlx_remote *r = open_remote();
	struct mlx_store *a, *b;
	struct mlx_remote_result res = MLX_REMOTE_RESULT_INIT;
	assert_int_equal(mlx_store_open(project_a, 0, &a, &err), MLX_OK);
	assert_int_equal(mlx_remote_push(r, a, &ids, 0, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.sent, 4);
	mlx_remote_result_free(&res);
	mlx_store_close(a);

	assert_int_equal(mlx_store_open(project_b, 0, &b, &err), MLX_OK);
	assert_int_equal(mlx_remote_fetch(r, b, &ids, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.sent, 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(mlx_store_verify(b, hex[i], &err), MLX_OK);
	mlx_remote_result_free(&res);
	for (int i = 0; i < 4; i++)
		assert_int_equal(mlx_store_remove(b, hex[i], &err), MLX_OK);

	/* The large object and one small one tampered with; the third's
	 * place taken by a symlink to the second's bytes. */
	char path[PATH_MAX], target[PATH_MAX];
	snprintf(path, sizeof path, "%s/objects/%.2s/%s", remote_dir, hex[0], hex[0] + 2);
	chmod(path, 0644);
	big[0] = 'Z';
	write_file(path, big);
	snprintf(path, sizeof path, "%s/objects/%.2s/%s", remote_dir, hex[1], hex[1] + 2);
	chmod(path, 0644);
	write_file(path, "tampered\n");
	snprintf(target, sizeof target, "%s/objects/%.2s/%s", remote_dir, hex[2], hex[2] + 2);
	snprintf(path, sizeof path, "%s/objects/%.2s/%s", remote_dir, hex[3], hex[3] + 2);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(target, path), 0);
	assert_int_equal(mlx_remote_fetch(r, b, &ids, NULL, &res, &err), MLX_OK);
	assert_int_equal(res.sent, 1);
	assert_int_equal(mlx_idset_count(&res.corrupt), 2);
	assert_int_equal(mlx_idset_count(&res.missing), 1);
	assert_false(mlx_store_has(b, hex[0]));
	assert_false(mlx_store_has(b, hex[1]));
	assert_int_equal(mlx_store_verify(b, hex[2], &err), MLX_OK);
	assert_false(mlx_store_has(b, hex[3]));
	mlx_remote_result_free(&res);
	mlx_store_close(b);
	mlx_idset_free(&ids);
	mlx_remote_close(r);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(backends_are_chosen_by_url),
	    cmocka_unit_test(keys_are_written_whole_and_listed),
	    cmocka_unit_test(keys_that_leave_the_remote_are_refused),
	    cmocka_unit_test(push_then_fetch_verifies_every_object),
	    cmocka_unit_test(transfers_span_windows),
	    cmocka_unit_test(small_keys_are_read_into_memory),
	    cmocka_unit_test(fetch_verifies_small_and_large_objects),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
