/* test_watch.c — core/watch*.c: the tokens kept beside a tree, and a real
 * watcher daemon answering "changed since" exactly, cookie and all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "watch.h"

static char root[1024], mlxdir[1100];

static void put_file(const char *rel, const char *text)
{
	char path[PATH_MAX + 64];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int has_path(const struct mlx_watch_answer *a, const char *path)
{
	for (size_t i = 0; i < a->paths.len; i++)
		if (strcmp(a->paths.items[i], path) == 0)
			return 1;
	return 0;
}

static int setup(void **state)
{
	(void)state;
	const char *tmp = getenv("TMPDIR");
	snprintf(root, sizeof root, "%s/mlx-watch-XXXXXX", tmp && *tmp == '/' ? tmp : "/tmp");
	if (!mkdtemp(root))
		return -1;
	snprintf(mlxdir, sizeof mlxdir, "%s/.mlx", root);
	return mkdir(mlxdir, 0755);
}

static int teardown(void **state)
{
	(void)state;
	char *reply = NULL;
	if (mlx_watch_request(mlxdir, "stop", &reply, NULL) == MLX_OK)
		free(reply);
	/* Until its pid file's lock is free: it is gone. */
	char cmd[PATH_MAX + 64];
	snprintf(cmd, sizeof cmd, "flock -w 10 %s/watch.pid true; rm -rf %s", mlxdir, root);
	return system(cmd) == 0 ? 0 : -1;
}

static void a_token_is_for_one_tree_file(void **state)
{
	(void)state;
	char tree[PATH_MAX + 16], token[MLX_WATCH_TOKEN_MAX];
	snprintf(tree, sizeof tree, "%s/tree", root);
	put_file("tree", "x");
	int fd = open(tree, O_RDONLY);
	struct mlx_watch_fileid id, other;
	assert_int_equal(mlx_watch_fileid(fd, &id), MLX_OK);
	close(fd);
	assert_int_equal(mlx_watch_token_get(tree, &id, token), 0);
	assert_int_equal(mlx_watch_token_put(tree, &id, "0123abcd:42"), MLX_OK);
	assert_int_equal(mlx_watch_token_get(tree, &id, token), 1);
	assert_string_equal(token, "0123abcd:42");
	other = id;
	other.ino++;
	assert_int_equal(mlx_watch_token_get(tree, &other, token), 0);
	other = id;
	other.ctime_ns++;
	assert_int_equal(mlx_watch_token_get(tree, &other, token), 0);
	put_file("tree.watch", "garbage\n");
	assert_int_equal(mlx_watch_token_get(tree, &id, token), 0);
}

static void no_watcher_is_one_failed_connect(void **state)
{
	(void)state;
	struct mlx_watch_answer a;
	struct mlx_err err;
	assert_int_equal(mlx_watch_changed(mlxdir, root, NULL, &a, &err), MLX_ERR_NOTFOUND);
	char *reply;
	assert_int_equal(mlx_watch_request(mlxdir, "status", &reply, &err), MLX_ERR_NOTFOUND);
}

static void a_watcher_answers_what_changed_since(void **state)
{
	(void)state;
	char sub[PATH_MAX + 16];
	snprintf(sub, sizeof sub, "%s/data", root);
	assert_int_equal(mkdir(sub, 0755), 0);
	put_file("data/a", "a");
	struct mlx_err err;
	pid_t pid;
	assert_int_equal(mlx_watch_start(root, &pid, &err), MLX_OK);
	assert_true(pid > 0);
	assert_int_equal(mlx_watch_start(root, &pid, &err), MLX_ERR_BUSY);

	struct mlx_watch_answer a;
	assert_int_equal(mlx_watch_changed(mlxdir, root, NULL, &a, &err), MLX_OK);
	assert_true(a.everything); /* no token: everything */
	char token[MLX_WATCH_TOKEN_MAX];
	strcpy(token, a.token);
	mlx_watch_answer_free(&a);

	/* Each change made just before the question is in its answer. */
	for (int i = 0; i < 50; i++) {
		char name[32];
		snprintf(name, sizeof name, "data/f%d", i);
		put_file(name, "x");
		assert_int_equal(mlx_watch_changed(mlxdir, root, token, &a, &err), MLX_OK);
		assert_false(a.everything);
		assert_true(has_path(&a, name));
		strcpy(token, a.token);
		mlx_watch_answer_free(&a);
	}
	/* Since that token: nothing; .mlx is never reported. */
	put_file(".mlx/ignored", "x");
	assert_int_equal(mlx_watch_changed(mlxdir, root, token, &a, &err), MLX_OK);
	assert_false(a.everything);
	assert_int_equal(a.paths.len, 0);
	mlx_watch_answer_free(&a);

	/* A new directory is reported whole, then watched. */
	snprintf(sub, sizeof sub, "%s/data/new", root);
	assert_int_equal(mkdir(sub, 0755), 0);
	put_file("data/new/inside", "1");
	assert_int_equal(mlx_watch_changed(mlxdir, root, token, &a, &err), MLX_OK);
	assert_true(has_path(&a, "data/new"));
	strcpy(token, a.token);
	mlx_watch_answer_free(&a);
	put_file("data/new/inside", "2");
	assert_int_equal(mlx_watch_changed(mlxdir, root, token, &a, &err), MLX_OK);
	assert_true(has_path(&a, "data/new/inside"));
	mlx_watch_answer_free(&a);

	/* Another instance's token, or a bogus one: everything. */
	assert_int_equal(mlx_watch_changed(mlxdir, root, "0000000000000000:1", &a, &err), MLX_OK);
	assert_true(a.everything);
	mlx_watch_answer_free(&a);
	/* Another project's root: refused. */
	assert_int_equal(mlx_watch_changed(mlxdir, "/", NULL, &a, &err), MLX_ERR_INVALID);

	char *reply;
	assert_int_equal(mlx_watch_request(mlxdir, "status", &reply, &err), MLX_OK);
	char want[64];
	snprintf(want, sizeof want, "pid %ld\n", (long)pid);
	assert_non_null(strstr(reply, want));
	assert_non_null(strstr(reply, "degraded 0\n"));
	free(reply);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(a_token_is_for_one_tree_file, setup, teardown),
	    cmocka_unit_test_setup_teardown(no_watcher_is_one_failed_connect, setup, teardown),
	    cmocka_unit_test_setup_teardown(a_watcher_answers_what_changed_since, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
