/* test_fs.c — core/fs.c: listing, mkdir -p, atomic writes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fs.h"

static int make_tempdir(void **state)
{
	char *dir = strdup("/tmp/mlx-test-fs-XXXXXX");
	if (!mkdtemp(dir))
		return -1;
	*state = dir;
	return 0;
}

static int remove_tempdir(void **state)
{
	char cmd[512];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", (char *)*state);
	int rc = system(cmd);
	free(*state);
	return rc == 0 ? 0 : -1;
}

static void read_file(const char *path, char *buf, size_t cap)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(buf, 1, cap - 1, f);
	buf[n] = '\0';
	fclose(f);
}

static void list_is_sorted_by_bytes_without_dots(void **state)
{
	const char *dir = *state;
	char path[512];
	const char *names[] = {"b", "B", "a.lua", ".hidden"};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, names[i]);
		fclose(fopen(path, "w"));
	}
	struct mlx_strlist list = {0};
	struct mlx_err err;
	assert_int_equal(mlx_fs_list(dir, &list, &err), MLX_OK);
	assert_int_equal(list.len, 4);
	assert_string_equal(list.items[0], ".hidden");
	assert_string_equal(list.items[1], "B");
	assert_string_equal(list.items[2], "a.lua");
	assert_string_equal(list.items[3], "b");
	mlx_strlist_free(&list);
	assert_int_equal(mlx_fs_list("/nonexistent-dir", &list, &err), MLX_ERR_NOTFOUND);
	assert_int_equal(list.len, 0);
}

/* The listing of the workspace's walks: a directory sorts as its files'
 * paths do ("a-b" before "a/..."), the reserved names are skipped, and the
 * strict mode refuses what a comparison with a tree cannot trust. */
static void list_walk_sorts_as_paths_and_refuses_in_strict_mode(void **state)
{
	const char *dir = *state;
	char path[512];
	const char *files[] = {"a-b", "a0", "b", "a/x"};
	snprintf(path, sizeof path, "%s/a", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/.mlx", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		fclose(fopen(path, "w"));
	}
	struct mlx_dirlist l = {0};
	struct mlx_err err;
	for (int flags = 0; flags <= MLX_FS_LIST_STRICT; flags++) {
		DIR *d = opendir(dir);
		assert_non_null(d);
		assert_int_equal(mlx_fs_list_walk(d, flags, &l, dir, NULL, &err), MLX_OK);
		closedir(d);
		assert_int_equal(l.len, 4);
		const char *want[] = {"a-b", "a", "a0", "b"};
		for (size_t i = 0; i < 4; i++) {
			assert_string_equal(l.names + l.items[i].off, want[i]);
			assert_int_equal(l.items[i].len, strlen(want[i]));
		}
		assert_int_equal(l.items[1].type, DT_DIR);
	}
	/* A symlink is listed as it is, or refused; a listing is reused. */
	snprintf(path, sizeof path, "%s/link", dir);
	assert_int_equal(symlink("b", path), 0);
	DIR *d = opendir(dir);
	assert_int_equal(mlx_fs_list_walk(d, 0, &l, dir, NULL, &err), MLX_OK);
	assert_int_equal(l.len, 5);
	assert_string_equal(l.names + l.items[4].off, "link");
	assert_int_equal(l.items[4].type, DT_LNK);
	rewinddir(d);
	assert_int_equal(mlx_fs_list_walk(d, MLX_FS_LIST_STRICT, &l, dir, "sub", &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "/sub: 'link' is not a regular file"));
	closedir(d);
	assert_int_equal(unlink(path), 0);
	snprintf(path, sizeof path, "%s/new\nline", dir);
	fclose(fopen(path, "w"));
	d = opendir(dir);
	assert_int_equal(mlx_fs_list_walk(d, MLX_FS_LIST_STRICT, &l, dir, NULL, NULL), MLX_ERR_INVALID);
	rewinddir(d);
	assert_int_equal(mlx_fs_list_walk(d, 0, &l, dir, NULL, &err), MLX_OK);
	assert_int_equal(l.len, 5);
	closedir(d);
	mlx_dirlist_free(&l);
	assert_null(l.items);
	assert_int_equal(l.len, 0);
}

/* A file read whole: its bytes and a NUL, a limit checked before and
 * while reading, and files whose size fstat does not know (a pipe). */
static void read_all_reads_to_the_end_within_its_limit(void **state)
{
	const char *dir = *state;
	char path[512];
	snprintf(path, sizeof path, "%s/f", dir);
	FILE *f = fopen(path, "w");
	fputs("hello\nworld", f);
	fclose(f);
	char *data;
	size_t len;
	struct mlx_err err;
	assert_int_equal(mlx_fs_read_all(path, SIZE_MAX, &data, &len, &err), MLX_OK);
	assert_int_equal(len, 11);
	assert_string_equal(data, "hello\nworld");
	free(data);
	assert_int_equal(mlx_fs_read_all(path, 11, &data, &len, &err), MLX_OK);
	free(data);
	assert_int_equal(mlx_fs_read_all(path, 10, &data, &len, &err), MLX_ERR_INVALID);
	assert_null(data);
	assert_int_equal(len, 0);
	assert_non_null(strstr(err.msg, "/f is larger than 10 bytes"));
	snprintf(path, sizeof path, "%s/none", dir);
	assert_int_equal(mlx_fs_read_all(path, SIZE_MAX, &data, &len, &err), MLX_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "cannot open"));
	assert_int_equal(mlx_fs_read_all(dir, SIZE_MAX, &data, &len, &err), MLX_ERR_IO);
	/* A pipe has no size: the buffer grows to what arrives. */
	int fds[2];
	static char big[100000];
	memset(big, 'x', sizeof big);
	for (size_t max = SIZE_MAX, round = 0; round < 2; round++, max = sizeof big - 1) {
		assert_int_equal(pipe(fds), 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			ssize_t n = write(fds[1], big, sizeof big);
			_exit(n == (ssize_t)sizeof big ? 0 : 1);
		}
		close(fds[1]);
		int rc = mlx_fs_read_fd(fds[0], "the pipe", max, &data, &len, &err);
		close(fds[0]);
		waitpid(pid, NULL, 0);
		if (round == 0) {
			assert_int_equal(rc, MLX_OK);
			assert_int_equal(len, sizeof big);
			assert_int_equal(data[len], '\0');
			assert_memory_equal(data, big, sizeof big);
			free(data);
		} else {
			assert_int_equal(rc, MLX_ERR_INVALID);
			assert_string_equal(err.msg, "the pipe is larger than 99999 bytes");
		}
	}
}

static void mkdirs_creates_parents_and_is_idempotent(void **state)
{
	char path[512];
	snprintf(path, sizeof path, "%s/x/y/z", (char *)*state);
	struct mlx_err err;
	assert_int_equal(mlx_fs_mkdirs(path, 0755, &err), MLX_OK);
	assert_int_equal(mlx_fs_mkdirs(path, 0755, &err), MLX_OK);
	struct mlx_stat st;
	assert_int_equal(mlx_fs_stat(path, &st, &err), MLX_OK);
	assert_int_equal(st.type, MLX_FT_DIR);

	/* A file in the way is an error naming the path. */
	char blocked[600];
	snprintf(blocked, sizeof blocked, "%s/x/y/z/file", (char *)*state);
	fclose(fopen(blocked, "w"));
	char under[700];
	snprintf(under, sizeof under, "%s/sub", blocked);
	assert_int_not_equal(mlx_fs_mkdirs(under, 0755, &err), MLX_OK);
	assert_non_null(strstr(err.msg, blocked));
}

static void write_atomic_replaces_content_and_leaves_no_temp(void **state)
{
	const char *dir = *state;
	char path[512], buf[64];
	snprintf(path, sizeof path, "%s/mlx.lock", dir);
	struct mlx_err err;
	assert_int_equal(mlx_fs_write_atomic(path, "old\n", 4, 0644, &err), MLX_OK);
	assert_int_equal(mlx_fs_write_atomic(path, "new\n", 4, 0600, &err), MLX_OK);
	read_file(path, buf, sizeof buf);
	assert_string_equal(buf, "new\n");
	struct mlx_stat st;
	assert_int_equal(mlx_fs_stat(path, &st, &err), MLX_OK);
	assert_int_equal(st.mode, 0600);

	struct mlx_strlist list = {0};
	assert_int_equal(mlx_fs_list(dir, &list, &err), MLX_OK);
	assert_int_equal(list.len, 1); /* no .mlx.lock.tmp-* left */
	mlx_strlist_free(&list);
}

static void write_atomic_into_missing_dir_fails_cleanly(void **state)
{
	(void)state;
	struct mlx_err err;
	assert_int_equal(mlx_fs_write_atomic("/nonexistent-dir/f", "x", 1, 0644, &err), MLX_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "/nonexistent-dir/f"));
}

static void remove_tree_removes_everything_and_tolerates_absence(void **state)
{
	char path[512], file[600], link[600];
	snprintf(path, sizeof path, "%s/out/a/b", (char *)*state);
	struct mlx_err err;
	assert_int_equal(mlx_fs_mkdirs(path, 0755, &err), MLX_OK);
	snprintf(file, sizeof file, "%s/f", path);
	fclose(fopen(file, "w"));
	/* A symlink inside is removed, not followed: its target survives. */
	snprintf(link, sizeof link, "%s/out/link", (char *)*state);
	char target[512];
	snprintf(target, sizeof target, "%s/keep", (char *)*state);
	fclose(fopen(target, "w"));
	assert_int_equal(symlink(target, link), 0);
	char top[512];
	snprintf(top, sizeof top, "%s/out", (char *)*state);
	assert_int_equal(mlx_fs_remove_tree(top, &err), MLX_OK);
	struct mlx_stat st;
	assert_int_equal(mlx_fs_stat(top, &st, &err), MLX_ERR_NOTFOUND);
	assert_int_equal(mlx_fs_stat(target, &st, &err), MLX_OK);
	assert_int_equal(mlx_fs_remove_tree(top, &err), MLX_OK); /* nothing there: fine */
	assert_int_equal(mlx_fs_remove_tree(target, &err), MLX_OK); /* a plain file */
	assert_int_equal(mlx_fs_stat(target, &st, &err), MLX_ERR_NOTFOUND);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(list_is_sorted_by_bytes_without_dots, make_tempdir, remove_tempdir),
		cmocka_unit_test_setup_teardown(list_walk_sorts_as_paths_and_refuses_in_strict_mode, make_tempdir,
						remove_tempdir),
		cmocka_unit_test_setup_teardown(read_all_reads_to_the_end_within_its_limit, make_tempdir,
						remove_tempdir),
		cmocka_unit_test_setup_teardown(mkdirs_creates_parents_and_is_idempotent, make_tempdir, remove_tempdir),
		cmocka_unit_test_setup_teardown(write_atomic_replaces_content_and_leaves_no_temp, make_tempdir, remove_tempdir),
		cmocka_unit_test_setup_teardown(write_atomic_into_missing_dir_fails_cleanly, make_tempdir, remove_tempdir),
		cmocka_unit_test_setup_teardown(remove_tree_removes_everything_and_tolerates_absence, make_tempdir,
						remove_tempdir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
