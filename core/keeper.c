/* keeper.c — the process that stops mlx's children when mlx dies (see
 * keeper.h).
 *
 * The keeper is forked, not exec'ed: nothing to find on disk, no second
 * program to keep in step. mlx has threads, so the child runs only system
 * calls (async-signal-safe code): _Fork (no atfork handlers), no malloc,
 * no stdio; its table of groups grows with mmap. Messages are a signed
 * 32-bit process group id on a SOCK_SEQPACKET pair, one per send: > 0 a
 * group started, < 0 it ended. A datagram-like socket keeps each message
 * whole, and send(MSG_NOSIGNAL) turns a dead keeper into EPIPE instead of
 * a SIGPIPE that would kill mlx. */
#include "keeper.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

struct mlx_keeper {
	int fd;    /* mlx's end of the socket pair, or -1 */
	pid_t pid; /* the keeper process, or 0 */
	pid_t *groups;
	size_t len, cap;
};

/* ---- the keeper process ------------------------------------------------ */

/* How long the keeper rests after emptying its queue (keeper_main). At
 * 2,000 messages a second that queues about 20, far below what the socket
 * holds; a sender would only wait for the rest to end. */
#define KEEPER_REST_MS 10

/* A table of group ids in the keeper, on its stack and then in mmap'ed
 * memory: malloc is not safe after fork in a process with threads. */
struct group_table {
	pid_t *ids;
	size_t len, cap;
	bool mapped;
};

static void table_add(struct group_table *t, pid_t g)
{
	if (t->len == t->cap) {
		size_t cap = t->cap * 2;
		pid_t *ids =
		    mmap(NULL, cap * sizeof *ids, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (ids == MAP_FAILED)
			return; /* no memory at all: this group goes unguarded */
		memcpy(ids, t->ids, t->len * sizeof *ids);
		if (t->mapped)
			munmap(t->ids, t->cap * sizeof *ids);
		t->ids = ids;
		t->cap = cap;
		t->mapped = true;
	}
	t->ids[t->len++] = g;
}

static void table_remove(struct group_table *t, pid_t g)
{
	for (size_t i = t->len; i-- > 0;)
		if (t->ids[i] == g) {
			t->ids[i] = t->ids[--t->len];
			return;
		}
}

/* Closes every descriptor but keep, also on kernels without close_range. */
static void close_all_but(int keep)
{
	if (keep > 0 && close_range(0, (unsigned)keep - 1, 0) != 0)
		for (int fd = 0; fd < keep; fd++)
			close(fd);
	if (close_range((unsigned)keep + 1, ~0U, 0) != 0) {
		struct rlimit rl;
		rlim_t max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 65536 ? rl.rlim_cur : 65536;
		for (int fd = keep + 1; fd < (int)max; fd++)
			close(fd);
	}
}

/* The keeper: system calls only, from _Fork to _exit. */
__attribute__((noreturn)) static void keeper_main(int fd)
{
	/* Signal handlers are mlx's and would run on a copy of its memory:
	 * back to the defaults. Terminal and job-control signals are ignored;
	 * being in its own group, it only gets them when sent on purpose. */
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		if (sig == SIGINT || sig == SIGQUIT || sig == SIGHUP || sig == SIGPIPE || sig == SIGTSTP ||
		    sig == SIGTTIN || sig == SIGTTOU)
			sa.sa_handler = SIG_IGN;
		sigaction(sig, &sa, NULL);
	}
	setpgid(0, 0);
	close_all_but(fd);
	if (chdir("/") != 0) {
		/* keeps mlx's directory busy, which is harmless */
	}
	prctl(PR_SET_NAME, "mlx-keeper");
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);

	pid_t inline_ids[256];
	struct group_table t = {inline_ids, 0, sizeof inline_ids / sizeof inline_ids[0], false};
	/* Once the queue is empty the keeper rests before it waits again, so
	 * the messages of a burst of short steps wake it once per rest instead
	 * of twice per step: each wake-up could take a CPU from mlx, or from
	 * the child about to exec, just when they need it. It rests in poll
	 * asking for no event: a message does not end the rest, the end of
	 * file (always reported) does. Messages keep their order. */
	bool rested = false;
	for (;;) {
		int32_t m;
		ssize_t n = recv(fd, &m, sizeof m, rested ? 0 : MSG_DONTWAIT);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			struct pollfd hangup = {.fd = fd, .events = 0};
			poll(&hangup, 1, KEEPER_REST_MS);
			rested = true;
			continue;
		}
		rested = false;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break; /* end of file: mlx is gone (an error means the same) */
		if (n != sizeof m || m == 0)
			continue;
		if (m > 0)
			table_add(&t, (pid_t)m);
		else
			table_remove(&t, (pid_t)-m);
	}
	/* SIGKILL at once, no SIGTERM first: nobody is left to use what a
	 * step would write while it cleans up, and that write could land on
	 * outputs a newer run has restored meanwhile. */
	for (size_t i = 0; i < t.len; i++)
		kill(-t.ids[i], SIGKILL);
	_exit(0);
}

/* ---- mlx's side -------------------------------------------------------- */

static int send_message(int fd, int32_t m)
{
	for (;;) {
		if (send(fd, &m, sizeof m, MSG_NOSIGNAL) == (ssize_t)sizeof m)
			return 0;
		if (errno != EINTR)
			return -1;
	}
}

int mlx_keeper_new(struct mlx_keeper **out, struct mlx_err *err)
{
	*out = calloc(1, sizeof **out);
	if (!*out)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	(*out)->fd = -1;
	return MLX_OK;
}

/* Waits up to timeout_ms for the keeper to exit and reaps it. A keeper
 * that does not exit (stopped by someone) is left for init to reap. */
static void reap_keeper(struct mlx_keeper *k, int timeout_ms)
{
	if (k->pid <= 0)
		return;
	/* A pidfd wakes us the moment it exits; without one (kernels before
	 * 5.3), look every millisecond. */
	int pidfd = (int)syscall(SYS_pidfd_open, k->pid, 0);
	if (pidfd >= 0) {
		struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
		while (poll(&pfd, 1, timeout_ms) < 0 && errno == EINTR)
			;
		close(pidfd);
	}
	int status;
	for (int waited = 0;;) {
		pid_t r = waitpid(k->pid, &status, WNOHANG);
		if (r < 0 && errno == EINTR)
			continue;
		if (r != 0 || pidfd >= 0 || waited++ >= timeout_ms)
			break;
		struct timespec ms = {0, 1000000};
		nanosleep(&ms, NULL);
	}
	k->pid = 0;
}

/* Whether the keeper at the other end of k->fd is still there. */
static bool keeper_alive(const struct mlx_keeper *k)
{
	struct pollfd pfd = {.fd = k->fd, .events = 0};
	int r;
	while ((r = poll(&pfd, 1, 0)) < 0 && errno == EINTR)
		;
	return r == 0 || !(pfd.revents & (POLLHUP | POLLERR | POLLNVAL));
}

static int start_keeper(struct mlx_keeper *k, struct mlx_err *err)
{
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) != 0)
		return mlx_err_sys(err, errno,
		                   "cannot start the keeper process: cannot create a socket pair");
	/* mlx's end goes above the standard descriptors: were it 1 because
	 * mlx runs with stdout closed, what Lua prints would reach the keeper. */
	int mine = fcntl(sv[0], F_DUPFD_CLOEXEC, 3);
	int e = errno;
	close(sv[0]);
	if (mine < 0) {
		close(sv[1]);
		return mlx_err_sys(err, e, "cannot start the keeper process: cannot create a socket pair");
	}
	sigset_t all, saved;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved);
	pid_t pid = _Fork();
	if (pid == 0)
		keeper_main(sv[1]);
	e = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(sv[1]);
	if (pid < 0) {
		close(mine);
		return mlx_err_sys(err, e, "cannot start the keeper process");
	}
	k->fd = mine;
	k->pid = pid;
	for (size_t i = 0; i < k->len; i++)
		send_message(k->fd, (int32_t)k->groups[i]);
	return MLX_OK;
}

int mlx_keeper_ready(struct mlx_keeper *k, struct mlx_err *err)
{
	if (k->fd >= 0) {
		if (keeper_alive(k))
			return k->fd;
		close(k->fd);
		k->fd = -1;
		reap_keeper(k, 100);
	}
	int rc = start_keeper(k, err);
	return rc == MLX_OK ? k->fd : rc;
}

void mlx_keeper_child_started(int fd)
{
	int32_t m = (int32_t)getpid();
	/* A failure means the keeper just died; mlx starts another and tells
	 * it of this group at its next spawn. */
	send(fd, &m, sizeof m, MSG_NOSIGNAL);
}

void mlx_keeper_started(struct mlx_keeper *k, pid_t pgid)
{
	if (k->len == k->cap) {
		size_t cap = k->cap ? k->cap * 2 : 16;
		pid_t *groups = realloc(k->groups, cap * sizeof *groups);
		if (!groups)
			return; /* only a restarted keeper would miss it */
		k->groups = groups;
		k->cap = cap;
	}
	k->groups[k->len++] = pgid;
}

void mlx_keeper_ended(struct mlx_keeper *k, pid_t pgid)
{
	for (size_t i = k->len; i-- > 0;)
		if (k->groups[i] == pgid) {
			k->groups[i] = k->groups[--k->len];
			break;
		}
	if (k->fd >= 0)
		send_message(k->fd, -(int32_t)pgid);
}

pid_t mlx_keeper_pid(const struct mlx_keeper *k)
{
	return k->fd >= 0 ? k->pid : 0;
}

void mlx_keeper_free(struct mlx_keeper *k)
{
	if (!k)
		return;
	if (k->fd >= 0)
		close(k->fd);
	reap_keeper(k, 1000);
	free(k->groups);
	free(k);
}
