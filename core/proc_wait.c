/* proc_wait.c — waiting for children: draining their pipes, enforcing
 * their time limits, reaping them and what they left in their group.
 *
 * One loop (pump) serves every wait: it blocks signals, looks at each
 * child (advance), and sleeps in ppoll on their pipes with SIGCHLD and the
 * caller's signals let through, so an exit or a Ctrl-C wakes it at once
 * and no signal can slip in between the look and the sleep. */
#include "proc_internal.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { READ_CHUNK = 65536, LINE_PIECE = 65536 };

#define NS_PER_SEC 1000000000LL
/* How often to look for the end of a group once its leader has exited:
 * nothing signals that, as its last members need not be our children. */
#define GROUP_TICK_NS (20 * 1000000LL)
/* How often mlx_proc_terminate looks for a signal telling it to hurry. */
#define TERMINATE_TICK_NS (50 * 1000000LL)
/* After SIGKILL, how long to wait for a group stuck in the kernel. */
#define GIVE_UP_NS (2 * NS_PER_SEC)

int64_t proc_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static int64_t min64(int64_t a, int64_t b)
{
	return a < b ? a : b;
}

/* Buffers */

static int buf_append(struct proc_buf *b, const char *data, size_t n)
{
	if (b->off == b->len)
		b->off = b->len = 0;
	if (b->len + n > b->cap && b->off > 0) {
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
	}
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + n)
			cap *= 2;
		char *data_new = realloc(b->data, cap);
		if (!data_new)
			return -1;
		b->data = data_new;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

static void buf_free(struct proc_buf *b)
{
	free(b->data);
	memset(b, 0, sizeof *b);
}

/* Output */

/* Writes every byte of iov[0..n) to the stream's log; on an error, logging
 * of this stream stops and the error is kept for the result. */
static void log_write(struct mlx_proc *p, struct proc_stream *s, struct iovec *iov, int n)
{
	while (n > 0 && s->log_fd >= 0) {
		ssize_t w = writev(s->log_fd, iov, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			if (!p->log_errno)
				p->log_errno = w < 0 ? errno : ENOSPC;
			close(s->log_fd);
			s->log_fd = -1;
			return;
		}
		/* A short write (a full disk, a signal): go on with the rest. */
		size_t done = (size_t)w;
		for (; n > 0 && done >= iov->iov_len; iov++, n--)
			done -= iov->iov_len;
		if (n > 0) {
			iov->iov_base = (char *)iov->iov_base + done;
			iov->iov_len -= done;
		}
	}
}

/* The log gets whole lines only, so that lines of stdout and stderr
 * written to the same file never mix mid-line; a line without a newline
 * is held back until it ends (or reaches LINE_PIECE bytes). */
static int log_feed(struct mlx_proc *p, struct proc_stream *s, const char *data, size_t n)
{
	const char *nl = memrchr(data, '\n', n);
	if (nl) {
		size_t head = (size_t)(nl - data) + 1;
		struct iovec iov[2] = {
		    {s->partial.data, s->partial.len},
		    {(void *)data, head},
		};
		log_write(p, s, s->partial.len ? iov : iov + 1, s->partial.len ? 2 : 1);
		s->partial.len = 0;
		data += head;
		n -= head;
	}
	if (n == 0)
		return 0;
	if (buf_append(&s->partial, data, n) != 0)
		return -1;
	if (s->partial.len >= LINE_PIECE) {
		struct iovec iov = {s->partial.data, s->partial.len};
		log_write(p, s, &iov, 1);
		s->partial.len = 0;
	}
	return 0;
}

static int feed(struct mlx_proc *p, struct proc_stream *s, const char *data, size_t n)
{
	if (s->capture && buf_append(&s->captured, data, n) != 0)
		return -1;
	if (s->lines && buf_append(&s->ready, data, n) != 0)
		return -1;
	if (s->log_fd >= 0 && log_feed(p, s, data, n) != 0)
		return -1;
	return 0;
}

/* The stream is over: a final line without a newline gets one in the log. */
static void end_stream(struct mlx_proc *p, struct proc_stream *s)
{
	if (s->log_fd >= 0 && s->partial.len > 0) {
		struct iovec iov[2] = {{s->partial.data, s->partial.len}, {"\n", 1}};
		log_write(p, s, iov, 2);
	}
	s->partial.len = 0;
	if (s->fd >= 0)
		close(s->fd);
	s->fd = -1;
}

/* Reads what is there, once. Returns 1 if bytes came, 0 if none (EAGAIN,
 * or the end, which closes the stream), -1 when out of memory. */
static int read_stream(struct mlx_proc *p, struct proc_stream *s)
{
	char chunk[READ_CHUNK];
	for (;;) {
		ssize_t n = read(s->fd, chunk, sizeof chunk);
		if (n > 0)
			return feed(p, s, chunk, (size_t)n) == 0 ? 1 : -1;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		end_stream(p, s);
		return 0;
	}
}

/* Reads everything left once no process of the group can write any more;
 * a pipe still held by a process that left the group is let go. */
static int drain_stream(struct mlx_proc *p, struct proc_stream *s)
{
	int r = 0;
	while (s->fd >= 0 && (r = read_stream(p, s)) > 0)
		;
	if (s->fd >= 0 && r < 0)
		return -1;
	end_stream(p, s);
	return 0;
}

static bool has_line(const struct proc_stream *s)
{
	if (!s->lines)
		return false;
	size_t avail = s->ready.len - s->ready.off;
	if (avail == 0)
		return false;
	if (avail >= LINE_PIECE || s->fd < 0)
		return true;
	return memchr(s->ready.data + s->ready.off, '\n', avail) != NULL;
}

const char *mlx_proc_next_line(struct mlx_proc *p, enum mlx_proc_stream which, size_t *len)
{
	struct proc_stream *s = &p->streams[which];
	if (!has_line(s))
		return NULL;
	struct proc_buf *b = &s->ready;
	char *start = b->data + b->off;
	size_t avail = b->len - b->off;
	size_t limit = avail < LINE_PIECE ? avail : LINE_PIECE;
	char *nl = memchr(start, '\n', limit);
	if (nl) {
		*len = (size_t)(nl - start);
		b->off += *len + 1;
	} else {
		*len = limit;
		b->off += limit;
	}
	return start;
}

const char *mlx_proc_captured(const struct mlx_proc *p, enum mlx_proc_stream which, size_t *len)
{
	const struct proc_buf *b = &p->streams[which].captured;
	*len = b->len;
	return b->data ? b->data : "";
}

void mlx_proc_discard(struct mlx_proc *p)
{
	for (int i = 0; i < 2; i++) {
		struct proc_stream *s = &p->streams[i];
		s->capture = s->lines = false;
		buf_free(&s->captured);
		buf_free(&s->ready);
	}
}

/* Children */

static void add_usage(struct mlx_proc *p, const struct rusage *ru)
{
	p->user_us += (int64_t)ru->ru_utime.tv_sec * 1000000 + ru->ru_utime.tv_usec;
	p->sys_us += (int64_t)ru->ru_stime.tv_sec * 1000000 + ru->ru_stime.tv_usec;
	if (ru->ru_maxrss > p->max_rss_kb)
		p->max_rss_kb = ru->ru_maxrss;
}

static void leader_exited(struct mlx_proc *p, int status, const struct rusage *ru, int64_t now)
{
	p->reaped = true;
	p->wstatus = status;
	p->end_ns = now;
	if (ru)
		add_usage(p, ru);
}

/* Reaps the child itself, then any process of its group that was
 * re-parented to us (we are a subreaper) and has exited. */
static void reap(struct mlx_proc *p, int64_t now)
{
	int status;
	struct rusage ru;
	if (!p->reaped) {
		pid_t r = wait4(p->pid, &status, WNOHANG, &ru);
		if (r == p->pid)
			leader_exited(p, status, &ru, now);
		else if (r < 0 && errno == ECHILD)
			leader_exited(p, -1, NULL, now); /* reaped by someone else: status unknown */
	}
	pid_t r;
	while ((r = wait4(-p->pid, &status, WNOHANG, &ru)) > 0) {
		if (r == p->pid)
			leader_exited(p, status, &ru, now);
		else
			add_usage(p, &ru);
	}
}

/* Nothing is left of p's group, and all of it has been reaped: from now
 * on its id may belong to someone else, so the keeper must forget it. */
static void group_ended(struct mlx_proc *p)
{
	p->group_gone = true;
	if (p->keeper)
		mlx_keeper_ended(p->keeper, p->pid);
}

static bool group_exists(const struct mlx_proc *p)
{
	return kill(-p->pid, 0) == 0 || errno == EPERM;
}

/* SIGTERM (and SIGCONT, for a stopped process to see it) to the group now;
 * SIGKILL once the grace period has passed. */
static void stop_group(struct mlx_proc *p, int64_t now)
{
	if (p->group_gone)
		return;
	kill(-p->pid, SIGTERM);
	kill(-p->pid, SIGCONT);
	p->term_sent = true;
	if (!p->kill_at_ns)
		p->kill_at_ns = now + p->grace_ns;
}

static void kill_group(struct mlx_proc *p, int64_t now)
{
	if (p->group_gone || p->kill_sent)
		return;
	kill(-p->pid, SIGKILL);
	p->kill_sent = true;
	p->give_up_ns = now + GIVE_UP_NS;
}

static void finish(struct mlx_proc *p)
{
	struct mlx_proc_result *r = &p->result;
	int st = p->wstatus;
	r->pid = p->pid;
	r->code = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	r->signal = st != -1 && WIFSIGNALED(st) ? WTERMSIG(st) : 0;
	r->timed_out = p->timed_out;
	r->leftovers = p->leftovers;
	r->wall = (double)(p->end_ns - p->start_ns) / NS_PER_SEC;
	r->user = (double)p->user_us / 1e6;
	r->sys = (double)p->sys_us / 1e6;
	r->max_rss = p->max_rss_kb * 1024;
	r->log_errno = p->log_errno;
	p->finished = true;
}

/* Looks at p once: reaps, enforces time limits, notices the end of its
 * group, and finishes it when all is over. Returns -1 when out of memory. */
static int advance(struct mlx_proc *p, int64_t now)
{
	if (p->finished)
		return 0;
	if (!p->group_gone)
		reap(p, now);
	if (!p->reaped && p->deadline_ns && now >= p->deadline_ns && !p->timed_out) {
		p->timed_out = true;
		stop_group(p, now);
	}
	if (p->reaped && !p->group_gone) {
		if (!group_exists(p)) {
			group_ended(p);
		} else if (!p->term_sent) {
			/* It exited leaving processes behind: stop them. */
			p->leftovers = true;
			stop_group(p, now);
		} else if (p->kill_sent && now >= p->give_up_ns) {
			group_ended(p);
		}
	}
	if (!p->group_gone && p->kill_at_ns && now >= p->kill_at_ns)
		kill_group(p, now);
	if (p->group_gone)
		for (int i = 0; i < 2; i++)
			if (drain_stream(p, &p->streams[i]) != 0)
				return -1;
	if (p->reaped && p->group_gone && p->streams[0].fd < 0 && p->streams[1].fd < 0)
		finish(p);
	return 0;
}

static int64_t next_timer(const struct mlx_proc *p, int64_t now)
{
	int64_t t = INT64_MAX;
	if (p->finished)
		return t;
	if (!p->reaped && p->deadline_ns && !p->timed_out)
		t = min64(t, p->deadline_ns);
	if (!p->group_gone && p->kill_at_ns && !p->kill_sent)
		t = min64(t, p->kill_at_ns);
	if (p->reaped && !p->group_gone)
		t = min64(t, now + GROUP_TICK_NS);
	return t;
}

static bool has_news(const struct mlx_proc *p)
{
	return p->finished || has_line(&p->streams[0]) || has_line(&p->streams[1]);
}

static bool hurry_pending(void)
{
	sigset_t pending;
	if (sigpending(&pending) != 0)
		return false;
	return sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1 ||
	       sigismember(&pending, SIGHUP) == 1 || sigismember(&pending, SIGQUIT) == 1;
}

struct poll_owner {
	struct mlx_proc *proc;
	struct proc_stream *stream;
};

/* The wait loop (see the top of the file). deadline < 0: none. With
 * terminating, it returns only when every proc has finished, keeping the
 * signals in hurry_pending blocked and watching for them instead. */
static int pump(struct mlx_proc *const *procs, size_t n, int64_t deadline, int (*stop)(void),
                bool terminating, struct mlx_err *err)
{
	struct pollfd stack_fds[8];
	struct poll_owner stack_owners[8];
	struct pollfd *fds = stack_fds;
	struct poll_owner *owners = stack_owners;
	if (2 * n > 8) {
		fds = malloc(2 * n * sizeof *fds);
		owners = malloc(2 * n * sizeof *owners);
		if (!fds || !owners) {
			free(fds);
			free(owners);
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
	}
	proc_watch_children(); /* in case someone reset SIGCHLD since the spawn */
	sigset_t blocked, saved, waitmask;
	sigfillset(&blocked);
	/* Faults must still kill (or reach a sanitizer) as they would. */
	sigdelset(&blocked, SIGSEGV);
	sigdelset(&blocked, SIGBUS);
	sigdelset(&blocked, SIGFPE);
	sigdelset(&blocked, SIGILL);
	sigprocmask(SIG_BLOCK, &blocked, &saved);
	waitmask = saved;
	sigdelset(&waitmask, SIGCHLD);
	if (terminating) {
		sigaddset(&waitmask, SIGINT);
		sigaddset(&waitmask, SIGTERM);
		sigaddset(&waitmask, SIGHUP);
		sigaddset(&waitmask, SIGQUIT);
	}
	bool polled = false, hurried = false;
	int rc;
	for (;;) {
		if (stop && stop()) {
			rc = mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "interrupted");
			break;
		}
		int64_t now = proc_now_ns();
		if (terminating && !hurried && hurry_pending()) {
			hurried = true;
			for (size_t i = 0; i < n; i++)
				kill_group(procs[i], now);
		}
		size_t news = 0, finished = 0;
		rc = MLX_OK;
		for (size_t i = 0; i < n && rc == MLX_OK; i++) {
			if (advance(procs[i], now) != 0)
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM,
				                 "out of memory reading a command's output");
			finished += procs[i]->finished;
			news += has_news(procs[i]);
		}
		if (rc != MLX_OK)
			break;
		if (terminating ? finished == n : news > 0) {
			rc = (int)news;
			break;
		}
		if (polled && deadline >= 0 && now >= deadline) {
			rc = 0;
			break;
		}
		int64_t wake = deadline >= 0 ? deadline : INT64_MAX;
		if (terminating)
			wake = min64(wake, now + TERMINATE_TICK_NS);
		nfds_t nfds = 0;
		for (size_t i = 0; i < n; i++) {
			wake = min64(wake, next_timer(procs[i], now));
			for (int k = 0; k < 2; k++) {
				struct proc_stream *s = &procs[i]->streams[k];
				if (s->fd < 0)
					continue;
				fds[nfds] = (struct pollfd){.fd = s->fd, .events = POLLIN};
				owners[nfds] = (struct poll_owner){procs[i], s};
				nfds++;
			}
		}
		struct timespec ts, *tsp = NULL;
		if (wake != INT64_MAX) {
			int64_t d = wake > now ? wake - now : 0;
			ts = (struct timespec){.tv_sec = d / NS_PER_SEC, .tv_nsec = d % NS_PER_SEC};
			tsp = &ts;
		}
		int ready = ppoll(fds, nfds, tsp, &waitmask);
		polled = true;
		if (ready < 0 && errno == EINTR)
			continue;
		if (ready < 0) {
			rc = mlx_err_sys(err, errno, "cannot wait for child processes");
			break;
		}
		for (nfds_t k = 0; k < nfds && rc == MLX_OK; k++)
			if (fds[k].revents && owners[k].stream->fd >= 0 &&
			    read_stream(owners[k].proc, owners[k].stream) < 0)
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM,
				                 "out of memory reading a command's output");
		if (rc != MLX_OK)
			break;
	}
	sigprocmask(SIG_SETMASK, &saved, NULL);
	if (fds != stack_fds) {
		free(fds);
		free(owners);
	}
	return rc;
}

/* Public */

int mlx_proc_wait(struct mlx_proc *const *procs, size_t n, int64_t timeout_ns, int (*stop)(void),
                  struct mlx_err *err)
{
	int64_t deadline = timeout_ns < 0 ? -1 : proc_now_ns() + timeout_ns;
	return pump(procs, n, deadline, stop, false, err);
}

void mlx_proc_terminate(struct mlx_proc *const *procs, size_t n)
{
	int64_t now = proc_now_ns();
	for (size_t i = 0; i < n; i++) {
		if (procs[i]->finished)
			continue;
		mlx_proc_discard(procs[i]);
		stop_group(procs[i], now);
	}
	struct mlx_err err;
	if (pump(procs, n, -1, NULL, true, &err) >= 0)
		return;
	/* The loop itself failed (it cannot run out of memory here, output
	 * being discarded): fall back on killing and blocking waits. */
	for (size_t i = 0; i < n; i++) {
		struct mlx_proc *p = procs[i];
		if (p->finished)
			continue;
		kill(-p->pid, SIGKILL);
		while (!p->reaped) {
			int status;
			struct rusage ru;
			pid_t r = wait4(p->pid, &status, 0, &ru);
			if (r == p->pid)
				leader_exited(p, status, &ru, proc_now_ns());
			else if (r < 0 && errno != EINTR)
				leader_exited(p, -1, NULL, proc_now_ns());
		}
		group_ended(p);
		for (int k = 0; k < 2; k++)
			end_stream(p, &p->streams[k]);
		finish(p);
	}
}

bool mlx_proc_stop(struct mlx_proc *p)
{
	if (p->finished || p->group_gone || (p->reaped && !group_exists(p)))
		return false;
	stop_group(p, proc_now_ns());
	return true;
}

int mlx_proc_signal(struct mlx_proc *p, int sig, struct mlx_err *err)
{
	if (sig < 0 || sig >= NSIG)
		return mlx_err_set(err, MLX_ERR_INVALID, EINVAL, "bad signal number %d", sig);
	if (p->finished || p->group_gone)
		return 0;
	if (kill(-p->pid, sig) != 0)
		return errno == ESRCH
		           ? 0
		           : mlx_err_sys(err, errno, "cannot signal process group %d", (int)p->pid);
	return 1;
}

bool mlx_proc_finished(const struct mlx_proc *p)
{
	return p->finished;
}

const struct mlx_proc_result *mlx_proc_result(const struct mlx_proc *p)
{
	return p->finished ? &p->result : NULL;
}

void mlx_proc_free(struct mlx_proc *p)
{
	if (!p)
		return;
	if (!p->finished)
		mlx_proc_terminate(&p, 1);
	for (int i = 0; i < 2; i++) {
		struct proc_stream *s = &p->streams[i];
		end_stream(p, s);
		if (s->log_fd >= 0)
			close(s->log_fd);
		buf_free(&s->captured);
		buf_free(&s->partial);
		buf_free(&s->ready);
	}
	free(p);
}
