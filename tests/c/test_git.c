/* test_git.c — core/git.c on real repositories made with the git command in
 * a temporary directory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "git.h"

struct fixture {
	char dir[64];
	struct mlx_git *repo;
	struct mlx_err err;
};

/* Runs a shell command in the fixture's directory; fails the test if it fails. */
static void sh(struct fixture *f, const char *fmt, ...)
{
	char cmd[2048];
	int n = snprintf(cmd, sizeof cmd, "cd '%s' && (", f->dir);
	va_list ap;
	va_start(ap, fmt);
	n += vsnprintf(cmd + n, sizeof cmd - (size_t)n, fmt, ap);
	va_end(ap);
	snprintf(cmd + n, sizeof cmd - (size_t)n, ") >/dev/null 2>&1");
	assert_int_equal(system(cmd), 0);
}

static void out(struct fixture *f, const char *cmd, char *buf, size_t cap)
{
	char line[1024];
	snprintf(line, sizeof line, "cd '%s' && %s", f->dir, cmd);
	FILE *p = popen(line, "r");
	assert_non_null(p);
	size_t n = fread(buf, 1, cap - 1, p);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n')
		buf[--n] = '\0';
	pclose(p);
}

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/mlx-test-git-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	/* A known identity and no user or system configuration. */
	setenv("GIT_AUTHOR_NAME", "Ada", 1);
	setenv("GIT_AUTHOR_EMAIL", "ada@example.org", 1);
	setenv("GIT_COMMITTER_NAME", "Ada", 1);
	setenv("GIT_COMMITTER_EMAIL", "ada@example.org", 1);
	setenv("GIT_CONFIG_NOSYSTEM", "1", 1);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	mlx_git_close(f->repo);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

/* Two commits on main: metrics.json changes, src/a.txt is added in the
 * first and untouched in the second. */
static void make_history(struct fixture *f)
{
	sh(f, "git init -q -b main && mkdir src && echo one > src/a.txt && "
	      "printf '{\"acc\": 0.90}\\n' > metrics.json && git add . && git commit -q -m 'first: baseline' && "
	      "printf '{\"acc\": 0.95}\\n' > metrics.json && git commit -q -am 'second: better model\n\nbody'");
	assert_int_equal(mlx_git_open(f->dir, &f->repo, &f->err), MLX_OK);
}

static void outside_a_repository_is_notfound(void **state)
{
	struct fixture *f = *state;
	assert_int_equal(mlx_git_open(f->dir, &f->repo, &f->err), MLX_ERR_NOTFOUND);
	assert_null(f->repo);
	char want[128];
	snprintf(want, sizeof want, "not a git repository: %s", f->dir);
	assert_string_equal(f->err.msg, want);
}

static void open_discovers_the_root_from_a_subdirectory(void **state)
{
	struct fixture *f = *state;
	make_history(f);
	mlx_git_close(f->repo);
	char sub[128];
	snprintf(sub, sizeof sub, "%s/src", f->dir);
	assert_int_equal(mlx_git_open(sub, &f->repo, &f->err), MLX_OK);
	char real[4096];
	assert_non_null(realpath(f->dir, real));
	assert_string_equal(mlx_git_root(f->repo), real);
}

static void head_on_a_branch_detached_and_unborn(void **state)
{
	struct fixture *f = *state;
	sh(f, "git init -q -b trunk");
	assert_int_equal(mlx_git_open(f->dir, &f->repo, &f->err), MLX_OK);
	struct mlx_git_head head;
	assert_int_equal(mlx_git_head(f->repo, &head, &f->err), MLX_OK);
	assert_true(head.unborn);
	assert_string_equal(head.branch, "trunk");
	assert_string_equal(head.commit, "");
	mlx_git_head_free(&head);

	sh(f, "echo x > x && git add x && git commit -q -m x");
	char want[64];
	out(f, "git rev-parse HEAD", want, sizeof want);
	assert_int_equal(mlx_git_head(f->repo, &head, &f->err), MLX_OK);
	assert_false(head.unborn);
	assert_false(head.detached);
	assert_string_equal(head.branch, "trunk");
	assert_string_equal(head.commit, want);
	mlx_git_head_free(&head);

	sh(f, "git checkout -q --detach");
	assert_int_equal(mlx_git_head(f->repo, &head, &f->err), MLX_OK);
	assert_true(head.detached);
	assert_null(head.branch);
	assert_string_equal(head.commit, want);
	mlx_git_head_free(&head);
}

static void status_lists_changed_paths(void **state)
{
	struct fixture *f = *state;
	make_history(f);
	struct mlx_strlist changed = {0};
	assert_int_equal(mlx_git_status(f->repo, false, &changed, &f->err), MLX_OK);
	assert_int_equal(changed.len, 0);

	sh(f, "echo two >> src/a.txt && echo new > staged.txt && git add staged.txt && echo u > untracked.txt");
	assert_int_equal(mlx_git_status(f->repo, false, &changed, &f->err), MLX_OK);
	assert_int_equal(changed.len, 2);
	assert_string_equal(changed.items[0], "src/a.txt");
	assert_string_equal(changed.items[1], "staged.txt");
	mlx_strlist_free(&changed);

	assert_int_equal(mlx_git_status(f->repo, true, &changed, &f->err), MLX_OK);
	assert_int_equal(changed.len, 3);
	assert_string_equal(changed.items[2], "untracked.txt");
	mlx_strlist_free(&changed);

	sh(f, "echo untracked.txt > .git/info/exclude && git rm -q --cached staged.txt && rm staged.txt && git checkout -q src");
	assert_int_equal(mlx_git_status(f->repo, true, &changed, &f->err), MLX_OK);
	assert_int_equal(changed.len, 0);
}

static void show_reads_a_file_at_a_revision(void **state)
{
	struct fixture *f = *state;
	make_history(f);
	char *content = NULL;
	size_t len = 0;
	assert_int_equal(mlx_git_show(f->repo, "HEAD~1", "metrics.json", &content, &len, &f->err), MLX_OK);
	assert_string_equal(content, "{\"acc\": 0.90}\n");
	assert_int_equal(len, 14);
	free(content);
	assert_int_equal(mlx_git_show(f->repo, "main", "./metrics.json", &content, &len, &f->err), MLX_OK);
	assert_string_equal(content, "{\"acc\": 0.95}\n");
	free(content);

	assert_int_equal(mlx_git_show(f->repo, "main", "nope.json", &content, &len, &f->err), MLX_ERR_NOTFOUND);
	assert_string_equal(f->err.msg, "nope.json does not exist in 'main'");
	assert_null(content);
	assert_int_equal(mlx_git_show(f->repo, "no-such-branch", "metrics.json", &content, &len, &f->err),
			 MLX_ERR_NOTFOUND);
	assert_non_null(strstr(f->err.msg, "unknown revision 'no-such-branch'"));
	assert_int_equal(mlx_git_show(f->repo, "HEAD", "src", &content, &len, &f->err), MLX_ERR_INVALID);
	assert_string_equal(f->err.msg, "src is not a file in 'HEAD'");
}

static void tags_lightweight_and_annotated(void **state)
{
	struct fixture *f = *state;
	make_history(f);
	char head[MLX_GIT_OID_HEX], first[MLX_GIT_OID_HEX], want[64];
	assert_int_equal(mlx_git_tag(f->repo, "v1.0", NULL, "release 1.0", head, &f->err), MLX_OK);
	out(f, "git rev-parse HEAD", want, sizeof want);
	assert_string_equal(head, want);
	out(f, "git cat-file -t v1.0", want, sizeof want);
	assert_string_equal(want, "tag");
	out(f, "git tag -l --format='%(taggername) %(contents:subject)' v1.0", want, sizeof want);
	assert_string_equal(want, "Ada release 1.0");

	assert_int_equal(mlx_git_tag(f->repo, "baseline", "HEAD~1", NULL, first, &f->err), MLX_OK);
	out(f, "git cat-file -t baseline", want, sizeof want);
	assert_string_equal(want, "commit");
	out(f, "git rev-parse HEAD~1", want, sizeof want);
	assert_string_equal(first, want);

	assert_int_equal(mlx_git_tag(f->repo, "v1.0", "HEAD~1", NULL, first, &f->err), MLX_ERR_INVALID);
	assert_int_equal(f->err.sys_errno, EEXIST);
	out(f, "git rev-parse v1.0^{commit}", want, sizeof want);
	assert_string_equal(want, head); /* left as it was */
	assert_int_equal(mlx_git_tag(f->repo, "bad..name", NULL, NULL, first, &f->err), MLX_ERR_INVALID);
	assert_int_equal(mlx_git_tag(f->repo, "v2", "nope", NULL, first, &f->err), MLX_ERR_NOTFOUND);

	struct mlx_strlist names = {0};
	assert_int_equal(mlx_git_tags(f->repo, NULL, &names, &f->err), MLX_OK);
	assert_int_equal(names.len, 2);
	assert_string_equal(names.items[0], "baseline");
	assert_string_equal(names.items[1], "v1.0");
	mlx_strlist_free(&names);
	assert_int_equal(mlx_git_tags(f->repo, "HEAD", &names, &f->err), MLX_OK);
	assert_int_equal(names.len, 1);
	assert_string_equal(names.items[0], "v1.0");
	mlx_strlist_free(&names);
}

static void log_newest_first_with_limit_and_path(void **state)
{
	struct fixture *f = *state;
	make_history(f);
	struct mlx_git_log log = {0};
	assert_int_equal(mlx_git_log(f->repo, NULL, NULL, 0, &log, &f->err), MLX_OK);
	assert_int_equal(log.len, 2);
	assert_string_equal(log.items[0].summary, "second: better model");
	assert_string_equal(log.items[1].summary, "first: baseline");
	assert_string_equal(log.items[0].author, "Ada");
	assert_string_equal(log.items[0].email, "ada@example.org");
	assert_true(log.items[0].time > 1600000000);
	char want[64];
	out(f, "git rev-parse HEAD", want, sizeof want);
	assert_string_equal(log.items[0].id, want);
	mlx_git_log_free(&log);

	assert_int_equal(mlx_git_log(f->repo, NULL, NULL, 1, &log, &f->err), MLX_OK);
	assert_int_equal(log.len, 1);
	mlx_git_log_free(&log);

	assert_int_equal(mlx_git_log(f->repo, NULL, "src/a.txt", 0, &log, &f->err), MLX_OK);
	assert_int_equal(log.len, 1);
	assert_string_equal(log.items[0].summary, "first: baseline");
	mlx_git_log_free(&log);
	assert_int_equal(mlx_git_log(f->repo, NULL, "src", 0, &log, &f->err), MLX_OK);
	assert_int_equal(log.len, 1);
	mlx_git_log_free(&log);
	assert_int_equal(mlx_git_log(f->repo, "HEAD~1", "metrics.json", 0, &log, &f->err), MLX_OK);
	assert_int_equal(log.len, 1);
	assert_string_equal(log.items[0].summary, "first: baseline");
	mlx_git_log_free(&log);
	assert_int_equal(mlx_git_log(f->repo, "nope", NULL, 0, &log, &f->err), MLX_ERR_NOTFOUND);
}

static void log_of_an_unborn_branch_is_empty(void **state)
{
	struct fixture *f = *state;
	sh(f, "git init -q -b main");
	assert_int_equal(mlx_git_open(f->dir, &f->repo, &f->err), MLX_OK);
	struct mlx_git_log log = {0};
	assert_int_equal(mlx_git_log(f->repo, NULL, NULL, 0, &log, &f->err), MLX_OK);
	assert_int_equal(log.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(outside_a_repository_is_notfound, setup, teardown),
		cmocka_unit_test_setup_teardown(open_discovers_the_root_from_a_subdirectory, setup, teardown),
		cmocka_unit_test_setup_teardown(head_on_a_branch_detached_and_unborn, setup, teardown),
		cmocka_unit_test_setup_teardown(status_lists_changed_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(show_reads_a_file_at_a_revision, setup, teardown),
		cmocka_unit_test_setup_teardown(tags_lightweight_and_annotated, setup, teardown),
		cmocka_unit_test_setup_teardown(log_newest_first_with_limit_and_path, setup, teardown),
		cmocka_unit_test_setup_teardown(log_of_an_unborn_branch_is_empty, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
