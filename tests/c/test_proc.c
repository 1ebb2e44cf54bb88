/* test_proc.c — core/proc.c against real, misbehaving children: the helper
 * programs of tests/helper/ (found in $MLX_TEST_HELPERS) and /bin/sh. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "proc.h"

#define SEC 1000000000LL

static char helpers[512];

static const char *helper(const char *name)
{
	static char path[4][600];
	static int next;
	char *p = path[next++ % 4];
	snprintf(p, sizeof path[0], "%s/%s", helpers, name);
	return p;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own */
}

/* A process is gone when it no longer exists or is a zombie nobody reaps. */
static bool process_gone(pid_t pid)
{
	char path[64], stat[256] = "";
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return true;
	size_t n = fread(stat, 1, sizeof stat - 1, f);
	stat[n] = '\0';
	fclose(f);
	const char *state = strrchr(stat, ')');
	return state && state[1] == ' ' && state[2] == 'Z';
}

/* Runs spec to the end; returns the finished proc. */
static struct mlx_proc *run(const struct mlx_proc_spec *spec)
{
	struct mlx_proc *p;
	struct mlx_err err;
	int rc = mlx_proc_spawn(spec, &p, &err);
	if (rc != MLX_OK)
		fail_msg("spawn: %s", err.msg);
	while (!mlx_proc_finished(p))
		assert_true(mlx_proc_wait(&p, 1, -1, NULL, &err) >= 0);
	return p;
}

static void captures_both_streams_and_the_exit_status(void **state)
{
	(void)state;
	const char *argv[] = {"sh", "-c", "echo to-out; echo to-err >&2; exit 7", NULL};
	struct mlx_proc_spec spec = {.argv = argv};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	spec.err = spec.out;
	struct mlx_proc *p = run(&spec);
	const struct mlx_proc_result *r = mlx_proc_result(p);
	assert_int_equal(r->code, 7);
	assert_int_equal(r->signal, 0);
	assert_false(r->timed_out);
	assert_false(r->leftovers);
	assert_int_equal(r->pid, mlx_proc_pid(p));
	assert_true(r->wall > 0 && r->wall < 5);
	assert_true(r->max_rss > 0);
	size_t len;
	const char *out = mlx_proc_captured(p, MLX_PROC_STDOUT, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(out, "to-out\n", 7);
	const char *err = mlx_proc_captured(p, MLX_PROC_STDERR, &len);
	assert_int_equal(len, 7);
	assert_memory_equal(err, "to-err\n", 7);
	mlx_proc_free(p);
}

static void reports_exact_exit_codes_and_signals(void **state)
{
	(void)state;
	static const int codes[] = {0, 1, 2, 42, 126, 127, 128, 255};
	for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
		char n[16];
		snprintf(n, sizeof n, "%d", codes[i]);
		const char *argv[] = {helper("exit_status"), "code", n, NULL};
		struct mlx_proc_spec spec = {.argv = argv, .err.mode = MLX_PROC_OUT_NULL};
		struct mlx_proc *p = run(&spec);
		assert_int_equal(mlx_proc_result(p)->code, codes[i]);
		assert_int_equal(mlx_proc_result(p)->signal, 0);
		mlx_proc_free(p);
	}
	static const int sigs[] = {SIGTERM, SIGKILL, SIGINT, SIGSEGV, SIGABRT, SIGPIPE, SIGUSR1};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++) {
		char n[16];
		snprintf(n, sizeof n, "%d", sigs[i]);
		const char *argv[] = {helper("exit_status"), "signal", n, NULL};
		struct mlx_proc_spec spec = {.argv = argv, .err.mode = MLX_PROC_OUT_NULL};
		struct mlx_proc *p = run(&spec);
		assert_int_equal(mlx_proc_result(p)->code, -1);
		assert_int_equal(mlx_proc_result(p)->signal, sigs[i]);
		mlx_proc_free(p);
	}
}

static void time_limit_stops_the_child_with_sigterm(void **state)
{
	(void)state;
	const char *argv[] = {"sleep", "30", NULL};
	struct mlx_proc_spec spec = {.argv = argv, .timeout_ns = SEC / 5, .grace_ns = 5 * SEC};
	double t0 = now_s();
	struct mlx_proc *p = run(&spec);
	double took = now_s() - t0;
	const struct mlx_proc_result *r = mlx_proc_result(p);
	assert_true(r->timed_out);
	assert_int_equal(r->signal, SIGTERM);
	assert_true(took >= 0.2 && took < 2);
	assert_true(r->wall >= 0.2 && r->wall < 2);
	mlx_proc_free(p);
}

static void a_stopped_child_is_still_stopped_by_the_time_limit(void **state)
{
	(void)state;
	const char *argv[] = {helper("exit_status"), "stop", NULL};
	struct mlx_proc_spec spec = {
	    .argv = argv, .err.mode = MLX_PROC_OUT_NULL, .timeout_ns = SEC / 5, .grace_ns = 5 * SEC};
	double t0 = now_s();
	struct mlx_proc *p = run(&spec);
	assert_true(now_s() - t0 < 2); /* SIGTERM reached it: SIGCONT came too */
	assert_true(mlx_proc_result(p)->timed_out);
	assert_int_equal(mlx_proc_result(p)->signal, SIGTERM);
	mlx_proc_free(p);
}

static int count_lines(const char *text, size_t len)
{
	int n = 0;
	for (size_t i = 0; i < len; i++)
		n += text[i] == '\n';
	return n;
}

/* Reads the pids a helper printed. */
static int read_pids(const char *text, size_t len, pid_t *pids, int max)
{
	int n = 0;
	for (const char *p = text; p < text + len && n < max;) {
		pids[n++] = (pid_t)strtol(p, NULL, 10);
		const char *nl = memchr(p, '\n', (size_t)(text + len - p));
		if (!nl)
			break;
		p = nl + 1;
	}
	return n;
}

static void sigterm_ignored_by_the_group_is_followed_by_sigkill(void **state)
{
	(void)state;
	const char *argv[] = {helper("ignore_term"), "3", NULL};
	struct mlx_proc_spec spec = {.argv = argv, .timeout_ns = SEC / 2, .grace_ns = SEC / 5};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	double t0 = now_s();
	struct mlx_proc *p = run(&spec);
	double took = now_s() - t0;
	const struct mlx_proc_result *r = mlx_proc_result(p);
	assert_true(r->timed_out);
	assert_int_equal(r->signal, SIGKILL);
	assert_true(took >= 0.7 && took < 3);
	size_t len;
	const char *out = mlx_proc_captured(p, MLX_PROC_STDOUT, &len);
	pid_t pids[8];
	assert_int_equal(read_pids(out, len, pids, 8), 4);
	for (int i = 0; i < 4; i++)
		assert_true(process_gone(pids[i]));
	mlx_proc_free(p);
}

static void leftovers_in_the_group_are_stopped(void **state)
{
	(void)state;
	const char *modes[] = {"keep", "close"};
	for (int m = 0; m < 2; m++) {
		const char *argv[] = {helper("spawn_grandchildren"), "3", modes[m], NULL};
		struct mlx_proc_spec spec = {.argv = argv, .grace_ns = 5 * SEC};
		spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
		double t0 = now_s();
		struct mlx_proc *p = run(&spec);
		assert_true(now_s() - t0 < 3);
		const struct mlx_proc_result *r = mlx_proc_result(p);
		assert_int_equal(r->code, 0);
		assert_true(r->leftovers);
		size_t len;
		const char *out = mlx_proc_captured(p, MLX_PROC_STDOUT, &len);
		pid_t pids[8];
		assert_int_equal(read_pids(out, len, pids, 8), 3);
		for (int i = 0; i < 3; i++)
			assert_true(process_gone(pids[i]));
		mlx_proc_free(p);
	}
}

static void a_process_leaving_the_group_with_the_pipe_does_not_hang_the_wait(void **state)
{
	(void)state;
	const char *argv[] = {helper("spawn_grandchildren"), "1", "escape", NULL};
	struct mlx_proc_spec spec = {.argv = argv};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	double t0 = now_s();
	struct mlx_proc *p = run(&spec);
	assert_true(now_s() - t0 < 3);
	assert_int_equal(mlx_proc_result(p)->code, 0);
	size_t len;
	const char *out = mlx_proc_captured(p, MLX_PROC_STDOUT, &len);
	pid_t pid = 0;
	assert_int_equal(read_pids(out, len, &pid, 1), 1);
	kill(pid, SIGKILL); /* out of reach by design: clean up by hand */
	mlx_proc_free(p);
}

static void flooding_both_streams_does_not_deadlock(void **state)
{
	(void)state;
	const long lines = 300000; /* 3.3 MB on each stream */
	const char *argv[] = {helper("flood"), "300000", NULL};
	struct mlx_proc_spec spec = {.argv = argv};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	spec.err = spec.out;
	struct mlx_proc *p = run(&spec);
	assert_int_equal(mlx_proc_result(p)->code, 0);
	for (int s = 0; s < 2; s++) {
		size_t len;
		const char *data = mlx_proc_captured(p, s, &len);
		assert_int_equal(len, (size_t)lines * 13);
		char expect[16];
		for (long i = 1; i <= lines; i += 7919) {
			snprintf(expect, sizeof expect, "%s %08ld\n", s ? "err" : "out", i);
			assert_memory_equal(data + (i - 1) * 13, expect, 13);
		}
	}
	mlx_proc_free(p);
}

static void lines_arrive_while_the_child_runs(void **state)
{
	(void)state;
	const char *argv[] = {helper("print_slowly"), "3", "300", "tick", NULL};
	struct mlx_proc_spec spec = {.argv = argv};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .lines = true};
	struct mlx_proc *p;
	struct mlx_err err;
	assert_int_equal(mlx_proc_spawn(&spec, &p, &err), MLX_OK);
	double t0 = now_s();
	assert_int_equal(mlx_proc_wait(&p, 1, 5 * SEC, NULL, &err), 1);
	assert_true(now_s() - t0 < 0.25); /* the first line, not the end */
	assert_false(mlx_proc_finished(p));
	size_t len;
	const char *line = mlx_proc_next_line(p, MLX_PROC_STDOUT, &len);
	assert_non_null(line);
	assert_int_equal(len, 6);
	assert_memory_equal(line, "tick 1", 6);
	assert_null(mlx_proc_next_line(p, MLX_PROC_STDOUT, &len));
	/* A short wait with nothing new times out. */
	assert_int_equal(mlx_proc_wait(&p, 1, SEC / 20, NULL, &err), 0);
	int seen = 1;
	while (!mlx_proc_finished(p)) {
		assert_true(mlx_proc_wait(&p, 1, -1, NULL, &err) > 0);
		while ((line = mlx_proc_next_line(p, MLX_PROC_STDOUT, &len)))
			seen++;
	}
	assert_int_equal(seen, 3);
	mlx_proc_free(p);
}

static void long_lines_come_in_pieces_and_the_last_line_needs_no_newline(void **state)
{
	(void)state;
	const char *argv[] = {"sh", "-c", "head -c 100000 /dev/zero | tr '\\0' x; echo; printf tail", NULL};
	struct mlx_proc_spec spec = {.argv = argv};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .lines = true};
	struct mlx_proc *p;
	struct mlx_err err;
	assert_int_equal(mlx_proc_spawn(&spec, &p, &err), MLX_OK);
	size_t lens[8];
	int n = 0;
	for (;;) {
		size_t len;
		const char *line;
		while ((line = mlx_proc_next_line(p, MLX_PROC_STDOUT, &len)) && n < 8)
			lens[n++] = len;
		if (mlx_proc_finished(p))
			break;
		assert_true(mlx_proc_wait(&p, 1, -1, NULL, &err) > 0);
	}
	assert_int_equal(n, 3);
	assert_int_equal(lens[0], 65536);
	assert_int_equal(lens[1], 100000 - 65536);
	assert_int_equal(lens[2], 4); /* "tail" */
	mlx_proc_free(p);
}

static void both_streams_logged_to_one_file_never_mix_within_a_line(void **state)
{
	(void)state;
	char log[] = "/tmp/mlx-test-proc-log-XXXXXX";
	int fd = mkstemp(log);
	assert_true(fd >= 0);
	close(fd);
	const char *argv[] = {helper("flood"), "20000", NULL};
	struct mlx_proc_spec spec = {.argv = argv};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .log_path = log};
	spec.err = spec.out;
	mlx_proc_free(run(&spec));
	const char *argv2[] = {"sh", "-c", "printf 'no newline'", NULL};
	struct mlx_proc_spec spec2 = {.argv = argv2};
	spec2.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .log_path = log};
	mlx_proc_free(run(&spec2));
	FILE *f = fopen(log, "r");
	char line[64];
	long out = 0, err = 0, other = 0;
	char last[64] = "";
	while (fgets(line, sizeof line, f)) {
		long i;
		char tag[4];
		if (strlen(line) == 13 && sscanf(line, "%3s %08ld", tag, &i) == 2)
			out += strcmp(tag, "out") == 0, err += strcmp(tag, "err") == 0;
		else
			other++;
		snprintf(last, sizeof last, "%s", line);
	}
	fclose(f);
	unlink(log);
	assert_int_equal(out, 20000);
	assert_int_equal(err, 20000);
	assert_int_equal(other, 1);
	assert_string_equal(last, "no newline\n");
}

static void stdin_env_and_cwd_reach_the_child(void **state)
{
	(void)state;
	const char *argv[] = {"sh", "-c", "cat; echo \"[$GREETING]\"; pwd", NULL};
	const char *envp[] = {"GREETING=hi there", "PATH=/usr/bin:/bin", NULL};
	struct mlx_proc_spec spec = {.argv = argv, .envp = envp, .cwd = "/tmp"};
	spec.stdin_mode = MLX_PROC_IN_DATA;
	spec.stdin_data = "from\0stdin\n";
	spec.stdin_len = 11;
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	struct mlx_proc *p = run(&spec);
	size_t len;
	const char *out = mlx_proc_captured(p, MLX_PROC_STDOUT, &len);
	const char expect[] = "from\0stdin\n[hi there]\n/tmp\n";
	assert_int_equal(len, sizeof expect - 1);
	assert_memory_equal(out, expect, len);
	mlx_proc_free(p);

	const char *cat[] = {"cat", NULL};
	struct mlx_proc_spec from_file = {
	    .argv = cat, .stdin_mode = MLX_PROC_IN_FILE, .stdin_path = "/etc/hostname"};
	from_file.out = spec.out;
	p = run(&from_file);
	FILE *f = fopen("/etc/hostname", "r");
	char host[256] = "";
	size_t n = fread(host, 1, sizeof host, f);
	fclose(f);
	out = mlx_proc_captured(p, MLX_PROC_STDOUT, &len);
	assert_int_equal(len, n);
	assert_memory_equal(out, host, n);
	mlx_proc_free(p);
}

static void expect_spawn_error(const struct mlx_proc_spec *spec, int status, const char *needle)
{
	struct mlx_proc *p = (struct mlx_proc *)1;
	struct mlx_err err;
	assert_int_equal(mlx_proc_spawn(spec, &p, &err), status);
	assert_null(p);
	if (!strstr(err.msg, needle))
		fail_msg("'%s' does not name '%s'", err.msg, needle);
}

static void failures_to_start_name_what_is_wrong(void **state)
{
	(void)state;
	char dir[] = "/tmp/mlx-test-proc-XXXXXX";
	assert_non_null(mkdtemp(dir));
	char script[600], noexec[600];
	snprintf(noexec, sizeof noexec, "%s/data.csv", dir);
	FILE *f = fopen(noexec, "w");
	fputs("a,b\n", f);
	fclose(f);
	snprintf(script, sizeof script, "%s/run.sh", dir);
	f = fopen(script, "w");
	fputs("#!/bin/sh\necho ok\n", f);
	fclose(f);
	chmod(script, 0755);
	int fds = count_fds();

	const char *missing[] = {"mlx-no-such-program", NULL};
	expect_spawn_error(&(struct mlx_proc_spec){.argv = missing}, MLX_ERR_NOTFOUND,
	                   "cannot run mlx-no-such-program: command not found in PATH");
	const char *missing_path[] = {"/nonexistent/prog", NULL};
	expect_spawn_error(&(struct mlx_proc_spec){.argv = missing_path}, MLX_ERR_NOTFOUND,
	                   "cannot run /nonexistent/prog: no such file");
	const char *not_exec[] = {noexec, NULL};
	expect_spawn_error(&(struct mlx_proc_spec){.argv = not_exec}, MLX_ERR_INVALID, "not executable");
	const char *directory[] = {dir, NULL};
	expect_spawn_error(&(struct mlx_proc_spec){.argv = directory}, MLX_ERR_INVALID, "is a directory");
	const char *relative[] = {"./run.sh", NULL};
	expect_spawn_error(&(struct mlx_proc_spec){.argv = relative, .cwd = "/nonexistent-dir"},
	                   MLX_ERR_NOTFOUND, "working directory /nonexistent-dir does not exist");
	expect_spawn_error(&(struct mlx_proc_spec){.argv = relative, .cwd = noexec}, MLX_ERR_NOTFOUND,
	                   "is not a directory");
	const char *path_only[] = {"data.csv", NULL};
	char path_env[700];
	snprintf(path_env, sizeof path_env, "PATH=%s", dir);
	const char *envp[] = {path_env, NULL};
	expect_spawn_error(&(struct mlx_proc_spec){.argv = path_only, .envp = envp}, MLX_ERR_INVALID,
	                   "is not an executable file");
	const char *ok[] = {"true", NULL};
	expect_spawn_error(&(struct mlx_proc_spec){.argv = ok,
	                                           .stdin_mode = MLX_PROC_IN_FILE,
	                                           .stdin_path = "/nonexistent/input"},
	                   MLX_ERR_NOTFOUND, "cannot open input file /nonexistent/input");
	struct mlx_proc_spec bad_log = {.argv = ok};
	bad_log.err =
	    (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .log_path = "/nonexistent/x.log"};
	expect_spawn_error(&bad_log, MLX_ERR_NOTFOUND, "cannot open log file /nonexistent/x.log");
	expect_spawn_error(&(struct mlx_proc_spec){0}, MLX_ERR_INVALID, "argv or a shell");
	assert_int_equal(count_fds(), fds);

	/* The relative program runs from cwd. */
	struct mlx_proc_spec in_dir = {.argv = relative, .cwd = dir};
	in_dir.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	struct mlx_proc *p = run(&in_dir);
	size_t len;
	assert_int_equal(mlx_proc_result(p)->code, 0);
	assert_memory_equal(mlx_proc_captured(p, MLX_PROC_STDOUT, &len), "ok\n", 3);
	mlx_proc_free(p);
	char cmd[700];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
}

static void no_descriptor_leaks_into_children_or_stays_behind(void **state)
{
	(void)state;
	int before = count_fds();
	FILE *held = fopen("/etc/hostname", "r"); /* not close-on-exec */
	const char *argv[] = {helper("list_fds"), NULL};
	struct mlx_proc_spec spec = {.argv = argv};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true, .lines = true};
	spec.err = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	spec.stdin_mode = MLX_PROC_IN_DATA;
	spec.stdin_data = "x";
	spec.stdin_len = 1;
	struct mlx_proc *p = run(&spec);
	size_t len;
	const char *out = mlx_proc_captured(p, MLX_PROC_STDOUT, &len);
	assert_int_equal(len, 6);
	assert_memory_equal(out, "0\n1\n2\n", 6);
	mlx_proc_free(p);
	fclose(held);
	assert_int_equal(count_fds(), before);
}

static void wait_covers_several_children(void **state)
{
	(void)state;
	const char *fast[] = {helper("print_slowly"), "1", "0", "fast", NULL};
	const char *slow[] = {helper("print_slowly"), "2", "400", "slow", NULL};
	struct mlx_proc_spec s1 = {.argv = slow}, s2 = {.argv = fast};
	s1.out = s2.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	struct mlx_proc *procs[2];
	struct mlx_err err;
	assert_int_equal(mlx_proc_spawn(&s1, &procs[0], &err), MLX_OK);
	assert_int_equal(mlx_proc_spawn(&s2, &procs[1], &err), MLX_OK);
	assert_int_equal(mlx_proc_wait(procs, 2, 5 * SEC, NULL, &err), 1);
	assert_false(mlx_proc_finished(procs[0]));
	assert_true(mlx_proc_finished(procs[1]));
	assert_int_equal(mlx_proc_wait(procs, 1, 5 * SEC, NULL, &err), 1);
	assert_true(mlx_proc_finished(procs[0]));
	size_t len;
	assert_memory_equal(mlx_proc_captured(procs[0], MLX_PROC_STDOUT, &len), "slow 1\nslow 2\n", 14);
	mlx_proc_free(procs[0]);
	mlx_proc_free(procs[1]);
}

static int always_stop(void)
{
	return 1;
}

static void a_stop_request_ends_the_wait_and_free_stops_the_child(void **state)
{
	(void)state;
	const char *argv[] = {helper("ignore_term"), "2", NULL};
	struct mlx_proc_spec spec = {.argv = argv, .grace_ns = SEC / 10};
	spec.out = (struct mlx_proc_output_spec){.mode = MLX_PROC_OUT_PIPE, .capture = true};
	struct mlx_proc *p;
	struct mlx_err err;
	assert_int_equal(mlx_proc_spawn(&spec, &p, &err), MLX_OK);
	size_t len;
	const char *out;
	do { /* until the three pids are printed */
		assert_true(mlx_proc_wait(&p, 1, SEC / 10, NULL, &err) >= 0);
		out = mlx_proc_captured(p, MLX_PROC_STDOUT, &len);
	} while (count_lines(out, len) < 3);
	pid_t pids[3];
	assert_int_equal(read_pids(out, len, pids, 3), 3);
	assert_int_equal(mlx_proc_wait(&p, 1, -1, always_stop, &err), MLX_ERR_INTERRUPTED);
	assert_false(mlx_proc_finished(p));
	mlx_proc_free(p);
	for (int i = 0; i < 3; i++)
		assert_true(process_gone(pids[i]));
}

static void a_pending_sigint_cuts_the_grace_period_short(void **state)
{
	(void)state;
	const char *argv[] = {helper("ignore_term"), "1", NULL};
	struct mlx_proc_spec spec = {.argv = argv, .grace_ns = 30 * SEC, .out.mode = MLX_PROC_OUT_NULL};
	struct mlx_proc *p;
	struct mlx_err err;
	assert_int_equal(mlx_proc_spawn(&spec, &p, &err), MLX_OK);
	assert_int_equal(mlx_proc_wait(&p, 1, SEC / 5, NULL, &err), 0);
	sigset_t intr, saved;
	sigemptyset(&intr);
	sigaddset(&intr, SIGINT);
	sigprocmask(SIG_BLOCK, &intr, &saved);
	kill(getpid(), SIGINT);
	double t0 = now_s();
	mlx_proc_terminate(&p, 1);
	assert_true(now_s() - t0 < 5);
	assert_int_equal(mlx_proc_result(p)->signal, SIGKILL);
	int sig;
	assert_int_equal(sigwait(&intr, &sig), 0); /* still pending for the caller */
	assert_int_equal(sig, SIGINT);
	sigprocmask(SIG_SETMASK, &saved, NULL);
	mlx_proc_free(p);
}

int main(void)
{
	const char *dir = getenv("MLX_TEST_HELPERS");
	if (!dir) {
		fputs("set MLX_TEST_HELPERS to the directory of the helper programs\n", stderr);
		return 1;
	}
	snprintf(helpers, sizeof helpers, "%s", dir);
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(captures_both_streams_and_the_exit_status),
	    cmocka_unit_test(reports_exact_exit_codes_and_signals),
	    cmocka_unit_test(time_limit_stops_the_child_with_sigterm),
	    cmocka_unit_test(a_stopped_child_is_still_stopped_by_the_time_limit),
	    cmocka_unit_test(sigterm_ignored_by_the_group_is_followed_by_sigkill),
	    cmocka_unit_test(leftovers_in_the_group_are_stopped),
	    cmocka_unit_test(a_process_leaving_the_group_with_the_pipe_does_not_hang_the_wait),
	    cmocka_unit_test(flooding_both_streams_does_not_deadlock),
	    cmocka_unit_test(lines_arrive_while_the_child_runs),
	    cmocka_unit_test(long_lines_come_in_pieces_and_the_last_line_needs_no_newline),
	    cmocka_unit_test(both_streams_logged_to_one_file_never_mix_within_a_line),
	    cmocka_unit_test(stdin_env_and_cwd_reach_the_child),
	    cmocka_unit_test(failures_to_start_name_what_is_wrong),
	    cmocka_unit_test(no_descriptor_leaks_into_children_or_stays_behind),
	    cmocka_unit_test(wait_covers_several_children),
	    cmocka_unit_test(a_stop_request_ends_the_wait_and_free_stops_the_child),
	    cmocka_unit_test(a_pending_sigint_cuts_the_grace_period_short),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
