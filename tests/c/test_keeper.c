/* test_keeper.c — core/keeper.c with real processes: an "owner" forked
 * from the test plays mlx (a keeper, children started through
 * core/proc.c), and the test kills it with SIGKILL as a user would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "keeper.h"
#include "proc.h"

#define SEC 1000000000LL

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
	nanosleep(&ts, NULL);
}

/* Reads the state and process group of pid; false if there is no such
 * process. */
static bool proc_state(pid_t pid, char *state, pid_t *pgrp)
{
	char path[64], buf[512] = "";
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	const char *p = strrchr(buf, ')');
	int ppid, g;
	return p && sscanf(p + 1, " %c %d %d", state, &ppid, &g) == 3 && (*pgrp = g, true);
}

/* Whether pid runs: it exists and is not a zombie nobody reaped yet. */
static bool alive(pid_t pid)
{
	char state;
	pid_t g;
	return proc_state(pid, &state, &g) && state != 'Z' && state != 'X';
}

/* How many live processes are in process group g. */
static int members(pid_t g)
{
	DIR *d = opendir("/proc");
	int n = 0;
	for (struct dirent *e; (e = readdir(d));) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		char state;
		pid_t pgrp;
		if (*end == '\0' && pid > 0 && proc_state((pid_t)pid, &state, &pgrp) && pgrp == g &&
		    state != 'Z' && state != 'X')
			n++;
	}
	closedir(d);
	return n;
}

/* Waits up to seconds for cond(arg) to hold. */
static bool within(double seconds, bool (*cond)(pid_t), pid_t arg)
{
	double end = now_s() + seconds;
	for (;;) {
		if (cond(arg))
			return true;
		if (now_s() > end)
			return false;
		sleep_ms(5);
	}
}

static bool group_empty(pid_t g)
{
	return members(g) == 0;
}

static bool gone(pid_t pid)
{
	return !alive(pid);
}

/* Starts shell through p's keeper; exits the owner on failure. */
static struct mlx_proc *spawn_shell(struct mlx_keeper *k, const char *shell)
{
	struct mlx_proc_spec spec = {.shell = shell, .keeper = k, .grace_ns = SEC};
	spec.out.mode = spec.err.mode = MLX_PROC_OUT_NULL;
	struct mlx_proc *p;
	struct mlx_err err;
	if (mlx_proc_spawn(&spec, &p, &err) != MLX_OK) {
		fprintf(stderr, "owner: %s\n", err.msg);
		_exit(3);
	}
	return p;
}

static void finish(struct mlx_proc *p)
{
	struct mlx_err err;
	while (!mlx_proc_finished(p))
		if (mlx_proc_wait(&p, 1, -1, NULL, &err) < 0)
			_exit(4);
}

static void tell(int fd, pid_t v)
{
	if (write(fd, &v, sizeof v) != sizeof v)
		_exit(5);
}

static pid_t hear(int fd)
{
	pid_t v = 0;
	ssize_t n;
	while ((n = read(fd, &v, sizeof v)) < 0 && errno == EINTR)
		;
	if (n != sizeof v)
		fail_msg("the owner said nothing (read %zd)", n);
	return v;
}

/* Forks an owner running body(k, fd); the test reads what it tells on
 * *from. */
static pid_t fork_owner(void (*body)(struct mlx_keeper *, int), int *from)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		/* A failed assertion must not leave it behind, holding the
		 * test's output open. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(fds[0]);
		struct mlx_keeper *k;
		struct mlx_err err;
		if (mlx_keeper_new(&k, &err) != MLX_OK)
			_exit(2);
		body(k, fds[1]);
		for (;;)
			pause();
	}
	close(fds[1]);
	*from = fds[0];
	return pid;
}

static void kill_owner(pid_t owner)
{
	kill(owner, SIGKILL);
	int status;
	assert_int_equal(waitpid(owner, &status, 0), owner);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
}

/* A tree per group: a shell with two sleepers, one of them double-forked
 * out of the shell's reach (re-parented to the owner, a subreaper). */
#define TREE "sleep 300 & (sleep 300 &); sleep 300; wait"

static void two_trees(struct mlx_keeper *k, int fd)
{
	struct mlx_proc *a = spawn_shell(k, TREE);
	struct mlx_proc *b = spawn_shell(k, TREE);
	tell(fd, mlx_proc_pid(a));
	tell(fd, mlx_proc_pid(b));
	tell(fd, mlx_keeper_pid(k));
}

static bool has_four(pid_t g)
{
	return members(g) == 4;
}

static void kill_9_of_the_owner_ends_every_tree_within_a_second(void **state)
{
	(void)state;
	int from;
	pid_t owner = fork_owner(two_trees, &from);
	pid_t a = hear(from), b = hear(from), keeper = hear(from);
	close(from);
	assert_true(keeper > 0);
	assert_true(within(5, has_four, a));
	assert_true(within(5, has_four, b));
	double t0 = now_s();
	kill_owner(owner);
	assert_true(within(1.0, group_empty, a));
	assert_true(within(1.0, group_empty, b));
	double took = now_s() - t0;
	assert_true(took < 1.0);
	/* Its work done, the keeper is gone too. */
	assert_true(within(1.0, gone, keeper));
}

/* The owner runs a short child through the keeper, waits until it is
 * reaped, and tells its pid; then starts a tree, so that the keeper has
 * work to do when the owner dies. */
static void one_reaped_child_then_a_tree(struct mlx_keeper *k, int fd)
{
	struct mlx_proc *p = spawn_shell(k, "exit 0");
	finish(p);
	tell(fd, mlx_proc_pid(p));
	mlx_proc_free(p);
	struct mlx_proc *t = spawn_shell(k, TREE);
	tell(fd, mlx_proc_pid(t));
}

/* Forks a process with pid want, leader of its own group, by setting the
 * kernel's last pid just below it; retries if another process took it. */
static pid_t fork_with_pid(pid_t want)
{
	for (int attempt = 0; attempt < 50; attempt++) {
		FILE *f = fopen("/proc/sys/kernel/ns_last_pid", "w");
		if (!f)
			return -1;
		fprintf(f, "%d", (int)want - 1);
		if (fclose(f) != 0)
			return -1;
		pid_t pid = fork();
		if (pid == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			setpgid(0, 0);
			for (;;)
				pause();
		}
		if (pid == want) {
			setpgid(pid, pid); /* also here: the child may not have run yet */
			return pid;
		}
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
	return -1;
}

static void never_kills_a_reused_group_id(void **state)
{
	(void)state;
	if (access("/proc/sys/kernel/ns_last_pid", W_OK) != 0)
		skip(); /* choosing a pid needs CAP_SYS_ADMIN (or CAP_CHECKPOINT_RESTORE) */
	int from;
	pid_t owner = fork_owner(one_reaped_child_then_a_tree, &from);
	pid_t reaped = hear(from), tree = hear(from);
	close(from);
	assert_true(within(5, has_four, tree));
	/* Someone else now leads a group with the id the owner's first child
	 * had: exactly what pid reuse does. */
	pid_t stranger = fork_with_pid(reaped);
	if (stranger < 0) {
		kill_owner(owner);
		skip(); /* the pid was taken each time: a very busy machine */
	}
	assert_int_equal(getpgid(stranger), reaped);
	kill_owner(owner);
	assert_true(within(1.0, group_empty, tree));
	sleep_ms(300); /* the keeper has exited by now (checked above) */
	bool survived = alive(stranger);
	kill(stranger, SIGKILL);
	waitpid(stranger, NULL, 0);
	assert_true(survived);
}

/* The owner holds a flock and a few descriptors, then starts a child. */
static void holding_a_lock(struct mlx_keeper *k, int fd)
{
	char path[] = "/tmp/mlx-test-keeper-XXXXXX";
	int lockfd = mkstemp(path);
	if (lockfd < 0 || flock(lockfd, LOCK_EX) != 0)
		_exit(6);
	struct mlx_proc *p = spawn_shell(k, "sleep 300");
	tell(fd, mlx_keeper_pid(k));
	tell(fd, mlx_proc_pid(p));
	if (write(fd, path, sizeof path) != sizeof path)
		_exit(5);
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

static void the_keeper_holds_nothing_of_its_owner(void **state)
{
	(void)state;
	int from;
	pid_t owner = fork_owner(holding_a_lock, &from);
	pid_t keeper = hear(from), child = hear(from);
	char path[sizeof "/tmp/mlx-test-keeper-XXXXXX"];
	assert_int_equal(read(from, path, sizeof path), sizeof path);
	close(from);
	char fds[64], dir[64], cwd[16] = "";
	snprintf(fds, sizeof fds, "/proc/%d/fd", (int)keeper);
	snprintf(dir, sizeof dir, "/proc/%d/cwd", (int)keeper);
	/* Just forked, it may not have closed them yet: give it a moment. */
	for (int i = 0; i < 200 && (count_entries(fds) != 1 || readlink(dir, cwd, sizeof cwd - 1) != 1); i++)
		sleep_ms(5);
	assert_int_equal(count_entries(fds), 1); /* its end of the socket, no more */
	assert_int_equal(readlink(dir, cwd, sizeof cwd - 1), 1);
	assert_string_equal(cwd, "/");
	/* Its own group: a signal to the owner's group does not reach it. */
	assert_int_equal(getpgid(keeper), keeper);
	assert_int_not_equal(getpgid(keeper), getpgid(owner));
	kill_owner(owner);
	/* Once the owner is gone, its lock is free: the keeper never held it. */
	int lockfd = open(path, O_RDONLY);
	assert_true(lockfd >= 0);
	assert_int_equal(flock(lockfd, LOCK_EX | LOCK_NB), 0);
	close(lockfd);
	unlink(path);
	assert_true(within(1.0, group_empty, child));
}

static void it_exits_with_its_owner_and_is_reaped(void **state)
{
	(void)state;
	struct mlx_keeper *k;
	struct mlx_err err;
	assert_int_equal(mlx_keeper_new(&k, &err), MLX_OK);
	assert_int_equal(mlx_keeper_pid(k), 0); /* nothing started before the first spawn */
	struct mlx_proc_spec spec = {.shell = "exit 3", .keeper = k};
	struct mlx_proc *p;
	assert_int_equal(mlx_proc_spawn(&spec, &p, &err), MLX_OK);
	pid_t keeper = mlx_keeper_pid(k);
	assert_true(keeper > 0);
	while (!mlx_proc_finished(p))
		assert_true(mlx_proc_wait(&p, 1, -1, NULL, &err) >= 0);
	assert_int_equal(mlx_proc_result(p)->code, 3);
	mlx_proc_free(p);
	/* One keeper for every child. */
	assert_int_equal(mlx_proc_spawn(&spec, &p, &err), MLX_OK);
	assert_int_equal(mlx_keeper_pid(k), keeper);
	mlx_proc_free(p);
	double t0 = now_s();
	mlx_keeper_free(k);
	assert_true(now_s() - t0 < 0.5);
	/* Reaped, not a zombie: no such process any more. */
	assert_int_equal(kill(keeper, 0), -1);
	assert_int_equal(errno, ESRCH);
}

/* The owner starts a tree, then its keeper is killed; the next spawn
 * starts another keeper, which must learn of the tree. */
static void keeper_killed_then_spawn(struct mlx_keeper *k, int fd)
{
	struct mlx_proc *t = spawn_shell(k, TREE);
	pid_t first = mlx_keeper_pid(k);
	kill(first, SIGKILL);
	sleep_ms(100);
	struct mlx_proc *p = spawn_shell(k, "exit 0");
	finish(p);
	mlx_proc_free(p);
	tell(fd, first);
	tell(fd, mlx_keeper_pid(k));
	tell(fd, mlx_proc_pid(t));
}

static void a_killed_keeper_is_replaced_and_told_of_running_groups(void **state)
{
	(void)state;
	int from;
	pid_t owner = fork_owner(keeper_killed_then_spawn, &from);
	pid_t first = hear(from), second = hear(from), tree = hear(from);
	close(from);
	assert_true(second > 0);
	assert_int_not_equal(first, second);
	assert_true(within(5, has_four, tree));
	kill_owner(owner);
	assert_true(within(1.0, group_empty, tree));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(kill_9_of_the_owner_ends_every_tree_within_a_second),
	    cmocka_unit_test(never_kills_a_reused_group_id),
	    cmocka_unit_test(the_keeper_holds_nothing_of_its_owner),
	    cmocka_unit_test(it_exits_with_its_owner_and_is_reaped),
	    cmocka_unit_test(a_killed_keeper_is_replaced_and_told_of_running_groups),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
