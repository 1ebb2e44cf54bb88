/* proc_internal.h — the inside of struct mlx_proc, shared by proc.c
 * (spawning) and proc_wait.c (waiting, output, stopping). Not for callers. */
#ifndef MLX_PROC_INTERNAL_H
#define MLX_PROC_INTERNAL_H

#include "proc.h"

/* A growable byte buffer; bytes before off are consumed. */
struct proc_buf {
	char *data;
	size_t len, cap, off;
};

struct proc_stream {
	int fd;     /* our end of the pipe; -1 once drained, or when not piped */
	int log_fd; /* -1 if not logged, or after a write error */
	bool capture, lines;
	struct proc_buf captured; /* every byte, when capture */
	struct proc_buf partial;  /* the line being received, for lines and log */
	struct proc_buf ready;    /* complete lines, each ending in '\n', when lines */
};

struct mlx_proc {
	pid_t pid; /* also the process group id; 0 if never started */
	int64_t start_ns, end_ns;
	int64_t deadline_ns; /* the time limit, or 0 */
	int64_t grace_ns;
	int64_t kill_at_ns; /* when SIGKILL follows SIGTERM, or 0 */
	int64_t give_up_ns; /* after SIGKILL: stop waiting for the group then */
	bool reaped;        /* the child itself has exited and been waited for */
	bool group_gone;    /* no process is left in its group */
	bool term_sent, kill_sent, timed_out, leftovers, finished;
	int wstatus;
	int64_t user_us, sys_us, max_rss_kb;
	struct mlx_keeper *keeper; /* told when the group has ended, or NULL */
	int log_errno;
	struct proc_stream streams[2];
	struct mlx_proc_result result;
};

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t proc_now_ns(void);

/* Installs the SIGCHLD handler that wakes the wait loop, unless one is
 * there: with SIGCHLD ignored or at its default, an exit would go unseen
 * (and, ignored, children would be reaped by the kernel). */
void proc_watch_children(void);

#endif
