/* proc.h — child processes for steps: spawning, output, time limits and
 * resource accounting.
 *
 * A child runs in its own process group, so that it and everything it
 * starts can be signalled at once and a terminal's Ctrl-C reaches mlx
 * alone, which then decides. Its stdout and stderr are inherited, sent to
 * /dev/null, or read through pipes by mlx_proc_wait, which drains every
 * pipe of every child it watches as data arrives, so a child writing
 * megabytes to both streams never blocks on a full pipe.
 *
 * A child is finished when it has exited, nothing is left running in its
 * process group and its pipes are drained. Processes that remain in the
 * group after the child exits ("leftovers": a backgrounded `cmd &`) are
 * stopped as on a time limit: SIGTERM, then SIGKILL after the grace period.
 * To see them and account for their resources, the first spawn makes the
 * calling process a child subreaper (orphans of its children are
 * re-parented to it rather than to init) and installs a SIGCHLD handler
 * that does nothing but interrupt waits; an existing SIGCHLD handler is
 * kept.
 *
 * All of this assumes one thread spawns and waits, and that other threads,
 * if any, block SIGCHLD and the signals the caller's stop function watches.
 *
 * Ownership: mlx_proc_spawn allocates a struct mlx_proc that the caller
 * releases with mlx_proc_free, which stops the child first if it is still
 * running. Strings returned by accessors belong to the struct mlx_proc. */
#ifndef MLX_PROC_H
#define MLX_PROC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "keeper.h"

enum mlx_proc_stream { MLX_PROC_STDOUT = 0, MLX_PROC_STDERR = 1 };

enum mlx_proc_input {
	MLX_PROC_IN_NULL, /* /dev/null (the default) */
	MLX_PROC_IN_FILE, /* the file stdin_path, opened by the caller's process */
	MLX_PROC_IN_DATA, /* the bytes stdin_data[0..stdin_len) */
};

enum mlx_proc_output {
	MLX_PROC_OUT_INHERIT, /* the caller's own stdout or stderr (the default) */
	MLX_PROC_OUT_NULL,    /* /dev/null */
	MLX_PROC_OUT_PIPE,    /* read by mlx_proc_wait: captured, queued as lines, logged */
	MLX_PROC_OUT_STDOUT,  /* stderr only: wherever stdout goes (2>&1) */
};

struct mlx_proc_output_spec {
	enum mlx_proc_output mode;
	bool capture;         /* PIPE: keep every byte (mlx_proc_captured) */
	bool lines;           /* PIPE: queue complete lines (mlx_proc_next_line) */
	const char *log_path; /* PIPE: append each complete line to this file, created 0644 */
};

struct mlx_proc_spec {
	/* The command: argv, NULL-terminated, or shell, run as /bin/sh -c shell.
	 * An argv[0] without '/' is looked up in the PATH of the child's
	 * environment ("/bin:/usr/bin" if it has none); one with '/' is taken
	 * relative to cwd, as exec does after changing directory. */
	const char *const *argv;
	const char *shell;
	const char *cwd;         /* NULL: the caller's working directory */
	const char *const *envp; /* NULL: the caller's environment */
	enum mlx_proc_input stdin_mode;
	const char *stdin_path;
	const char *stdin_data;
	size_t stdin_len;
	struct mlx_proc_output_spec out, err;
	int64_t timeout_ns; /* 0: no time limit */
	int64_t grace_ns;   /* from SIGTERM to SIGKILL when stopping */
	/* If not NULL, the keeper that kills the child's group should the
	 * caller die (keeper.h); it must outlive the struct mlx_proc. */
	struct mlx_keeper *keeper;
};

struct mlx_proc_result {
	pid_t pid;
	int code;         /* exit status, or -1 if a signal ended it */
	int signal;       /* the signal that ended it, or 0 */
	bool timed_out;   /* the time limit passed and it was stopped */
	bool leftovers;   /* processes remained in its group after it exited */
	double wall;      /* seconds from spawn to its exit being seen */
	double user, sys; /* CPU seconds of the child and of every descendant reaped */
	int64_t max_rss;  /* bytes: the largest resident set among them */
	int log_errno;    /* the first error writing a log file (logging then stops), or 0 */
};

struct mlx_proc;

/* Starts the command described by spec. Returns 0 and sets *out; or
 * MLX_ERR_NOTFOUND (no such program, working directory, input file or log
 * directory: the message names it), MLX_ERR_INVALID (the program is not
 * executable or is not a program; a bad spec), MLX_ERR_IO (also when the
 * spec's keeper cannot be started), MLX_ERR_NOMEM.
 * On failure nothing is left open and *out is NULL. */
int mlx_proc_spawn(const struct mlx_proc_spec *spec, struct mlx_proc **out, struct mlx_err *err);

/* Waits until one of procs[0..n) has news — it finished, or lines are
 * queued — or timeout_ns passes (negative: no limit; 0: just look). While
 * waiting it reads their pipes and enforces their time limits. stop, if not
 * NULL, is called with every signal blocked just before sleeping, so a
 * signal whose handler makes it return non-zero always ends the wait.
 * Returns the number of procs with news, 0 on timeout, MLX_ERR_INTERRUPTED
 * when stop said so, or MLX_ERR_IO / MLX_ERR_NOMEM. */
int mlx_proc_wait(struct mlx_proc *const *procs, size_t n, int64_t timeout_ns, int (*stop)(void),
                  struct mlx_err *err);

/* Stops every unfinished one of procs[0..n) — SIGTERM (and SIGCONT) to its
 * group, SIGKILL after its grace period — and waits until all are finished.
 * Their output is still logged but no longer captured or queued. Signals
 * are blocked meanwhile; a SIGINT, SIGTERM, SIGHUP or SIGQUIT arriving cuts
 * the grace period short (SIGKILL at once) and is delivered on return. */
void mlx_proc_terminate(struct mlx_proc *const *procs, size_t n);

/* Asks p to stop without waiting: SIGTERM and SIGCONT to its group now,
 * SIGKILL once the grace period has passed during a later wait. Returns
 * true if something was still running. */
bool mlx_proc_stop(struct mlx_proc *p);

/* Sends sig to p's process group. Returns 1 if sent, 0 if nothing of p is
 * running any more, MLX_ERR_INVALID for a bad signal number. */
int mlx_proc_signal(struct mlx_proc *p, int sig, struct mlx_err *err);

/* Stops capturing and queueing p's output (what is queued is dropped);
 * logging goes on. For a child nobody will read from again. */
void mlx_proc_discard(struct mlx_proc *p);

pid_t mlx_proc_pid(const struct mlx_proc *p);
bool mlx_proc_finished(const struct mlx_proc *p);

/* The result once finished, else NULL. */
const struct mlx_proc_result *mlx_proc_result(const struct mlx_proc *p);

/* The bytes captured so far from a stream (empty if not captured). */
const char *mlx_proc_captured(const struct mlx_proc *p, enum mlx_proc_stream s, size_t *len);

/* Takes the next queued line of stream s, without its newline, or returns
 * NULL if none is queued. A final line without a newline is queued when the
 * stream ends; a line longer than 64 KiB is queued in 64 KiB pieces. The
 * pointer stays valid until the next call on p. With stderr sent to stdout
 * (MLX_PROC_OUT_STDOUT) all lines come on MLX_PROC_STDOUT. */
const char *mlx_proc_next_line(struct mlx_proc *p, enum mlx_proc_stream s, size_t *len);

/* Stops p if it is still running (as mlx_proc_terminate), then frees it,
 * closing its pipes and logs. NULL is fine. */
void mlx_proc_free(struct mlx_proc *p);

#endif
