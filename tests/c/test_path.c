/* test_path.c — core/path.c: the validator for paths from data, and
 * operations confined below a directory without following symlinks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"

struct fixture {
	char dir[64];	  /* the "project" */
	char outside[64]; /* a directory a symlink points at */
	int fd;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	snprintf(f->dir, sizeof f->dir, "/tmp/mlx-test-path-XXXXXX");
	snprintf(f->outside, sizeof f->outside, "/tmp/mlx-test-out-XXXXXX");
	if (!mkdtemp(f->dir) || !mkdtemp(f->outside))
		return -1;
	f->fd = open(f->dir, O_RDONLY | O_DIRECTORY);
	*state = f;
	return f->fd < 0 ? -1 : 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[256];
	snprintf(cmd, sizeof cmd, "rm -rf '%s' '%s'", f->dir, f->outside);
	int rc = system(cmd);
	close(f->fd);
	free(f);
	return rc == 0 ? 0 : -1;
}

static void at(const struct fixture *f, const char *rel, char *buf, size_t n)
{
	snprintf(buf, n, "%s/%s", f->dir, rel);
}

static void touch(const char *path)
{
	FILE *fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("x", fp);
	fclose(fp);
}

static int check(const char *p)
{
	struct mlx_err err;
	return mlx_path_check(p, strlen(p), &err);
}

static void accepts_ordinary_relative_paths(void **state)
{
	(void)state;
	const char *good[] = {"a", "data/train.csv", "work/split/part-0", ".hidden", "a/.gitignore", "x..y",
			      "...", "models/model.pkl", "mlx.lock.bak", "sub/mlx.lock", ".gitattributes"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		assert_int_equal(check(good[i]), MLX_OK);
}

static void refuses_paths_that_escape_or_reach_git_and_mlx(void **state)
{
	(void)state;
	const char *bad[] = {"", "/etc/passwd", "../x", "a/../../x", "a/..", "..", ".", "./a", "a/./b",
			     "a//b", "a/", ".git/hooks/post-checkout", ".git", "sub/.git/config",
			     ".GIT/hooks/x", ".mlx/config.local.lua", "a/.Mlx/x", "mlx.lock", "a\nb", "a\rb"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		struct mlx_err err;
		assert_int_equal(mlx_path_check(bad[i], strlen(bad[i]), &err), MLX_ERR_INVALID);
		assert_null(strchr(err.msg, '\n'));
	}
	struct mlx_err err;
	assert_int_equal(mlx_path_check("a\0b", 3, &err), MLX_ERR_INVALID);
	assert_string_equal(err.msg, "a…: path contains a NUL byte");
	assert_int_equal(mlx_path_check("data/../../x", 12, &err), MLX_ERR_INVALID);
	assert_string_equal(err.msg, "data/../../x: path leaves the project");
	assert_int_equal(mlx_path_check(".git/hooks/pre-push", 19, &err), MLX_ERR_INVALID);
	assert_string_equal(err.msg, ".git/hooks/pre-push: path inside .git/");
	char longname[300];
	memset(longname, 'a', sizeof longname - 1);
	longname[sizeof longname - 1] = '\0';
	assert_int_equal(check(longname), MLX_ERR_INVALID);
}

static void open_dir_creates_and_refuses_symlinks(void **state)
{
	struct fixture *f = *state;
	struct mlx_err err;
	int fd;
	assert_int_equal(mlx_path_open_dir(f->fd, "a/b/c", 0, &fd, &err), MLX_ERR_NOTFOUND);
	assert_int_equal(mlx_path_open_dir(f->fd, "a/b/c", 1, &fd, &err), MLX_OK);
	close(fd);
	char p[256];
	at(f, "a/b/c", p, sizeof p);
	struct stat st;
	assert_int_equal(stat(p, &st), 0);
	assert_true(S_ISDIR(st.st_mode));

	at(f, "link", p, sizeof p);
	assert_int_equal(symlink(f->outside, p), 0);
	assert_int_equal(mlx_path_open_dir(f->fd, "link", 0, &fd, &err), MLX_ERR_INVALID);
	assert_string_equal(err.msg, "link is a symbolic link; mlx never writes through one");
	assert_int_equal(mlx_path_open_dir(f->fd, "link/new", 1, &fd, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_path_open_dir(f->fd, "a/../link", 1, &fd, &err), MLX_ERR_INVALID);
	/* Nothing was created outside. */
	snprintf(p, sizeof p, "%s/new", f->outside);
	assert_int_not_equal(stat(p, &st), 0);

	const char *name;
	assert_int_equal(mlx_path_open_parent(f->fd, "link/victim.txt", 1, &fd, &name, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_path_check_parents(f->fd, "link/victim.txt", &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_path_check_parents(f->fd, "missing/dir/x", &err), MLX_OK);
	assert_int_equal(mlx_path_check_parents(f->fd, "link", &err), MLX_OK);
	assert_int_equal(mlx_path_open_parent(f->fd, "a/b/c/file", 0, &fd, &name, &err), MLX_OK);
	assert_string_equal(name, "file");
	close(fd);

	at(f, "plain", p, sizeof p);
	touch(p);
	assert_int_equal(mlx_path_open_dir(f->fd, "plain/x", 1, &fd, &err), MLX_ERR_INVALID);
	assert_string_equal(err.msg, "plain is not a directory");
}

static void remove_never_follows_symlinks(void **state)
{
	struct fixture *f = *state;
	struct mlx_err err;
	char p[256], victim[256];
	snprintf(victim, sizeof victim, "%s/victim.txt", f->outside);
	touch(victim);
	/* A symlinked parent: refused, the target is untouched. */
	at(f, "link", p, sizeof p);
	assert_int_equal(symlink(f->outside, p), 0);
	assert_int_equal(mlx_path_remove(f->fd, "link/victim.txt", &err), MLX_ERR_INVALID);
	struct stat st;
	assert_int_equal(stat(victim, &st), 0);
	/* A tree holding a symlink to the outside: the link goes, not its target. */
	at(f, "tree/sub", p, sizeof p);
	int fd;
	assert_int_equal(mlx_path_open_dir(f->fd, "tree/sub", 1, &fd, &err), MLX_OK);
	close(fd);
	at(f, "tree/sub/file", p, sizeof p);
	touch(p);
	at(f, "tree/sub/out", p, sizeof p);
	assert_int_equal(symlink(f->outside, p), 0);
	assert_int_equal(mlx_path_remove(f->fd, "tree", &err), MLX_OK);
	at(f, "tree", p, sizeof p);
	assert_int_not_equal(lstat(p, &st), 0);
	assert_int_equal(stat(victim, &st), 0);
	/* The symlink itself is removed, its target kept. */
	assert_int_equal(mlx_path_remove(f->fd, "link", &err), MLX_OK);
	at(f, "link", p, sizeof p);
	assert_int_not_equal(lstat(p, &st), 0);
	assert_int_equal(stat(victim, &st), 0);
	/* Nothing there, or a missing parent: nothing to do. */
	assert_int_equal(mlx_path_remove(f->fd, "nothing/here", &err), MLX_OK);
	assert_int_equal(mlx_path_remove(f->fd, "nothing", &err), MLX_OK);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(accepts_ordinary_relative_paths),
		cmocka_unit_test(refuses_paths_that_escape_or_reach_git_and_mlx),
		cmocka_unit_test_setup_teardown(open_dir_creates_and_refuses_symlinks, setup, teardown),
		cmocka_unit_test_setup_teardown(remove_never_follows_symlinks, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
