/* proc.c — starting a child in its own process group (see proc.h).
 *
 * vfork + exec, as posix_spawn does, but the child reports a failure
 * (which step, which errno) through a close-on-exec pipe, so the error is
 * exact everywhere — also under valgrind, where vfork becomes fork and
 * glibc's posix_spawn can no longer tell that exec failed. PATH is searched
 * here, so a missing program is named before anything starts. Waiting,
 * output and stopping are in proc_wait.c. */
#include "proc_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_PATH "/bin:/usr/bin"

static void on_sigchld(int sig)
{
	(void)sig; /* only here to interrupt ppoll in the wait loop */
}

void proc_watch_children(void)
{
	struct sigaction sa;
	if (sigaction(SIGCHLD, NULL, &sa) == 0 && !(sa.sa_flags & SA_SIGINFO) &&
	    (sa.sa_handler == SIG_DFL || sa.sa_handler == SIG_IGN)) {
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = on_sigchld;
		sigemptyset(&sa.sa_mask);
		sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
		sigaction(SIGCHLD, &sa, NULL);
	}
}

/* Makes sure a child's exit wakes the wait loop and that orphans of its
 * group come back to us (proc.h explains why). Cheap enough to do on every
 * spawn, which keeps it stateless. */
static void prepare_parent(void)
{
	proc_watch_children();
	prctl(PR_SET_CHILD_SUBREAPER, 1);
}

static const char *env_get(const char *const *envp, const char *name)
{
	size_t n = strlen(name);
	if (!envp)
		return getenv(name);
	for (; *envp; envp++)
		if (strncmp(*envp, name, n) == 0 && (*envp)[n] == '=')
			return *envp + n + 1;
	return NULL;
}

/* Joins dir and name into out; returns false if it does not fit. */
static bool join_path(char *out, size_t cap, const char *dir, const char *name)
{
	int n = (dir && *dir) ? snprintf(out, cap, "%s/%s", dir, name) : snprintf(out, cap, "%s", name);
	return n >= 0 && (size_t)n < cap;
}

/* Where a path given to the child is, seen from here: relative paths are
 * resolved by exec after the child changed to cwd. */
static bool seen_from_here(char *out, size_t cap, const char *cwd, const char *path)
{
	return join_path(out, cap, path[0] == '/' ? NULL : cwd, path);
}

static bool is_executable_file(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	       faccessat(AT_FDCWD, path, X_OK, AT_EACCESS) == 0;
}

/* Finds the program to exec: out is the path given to execve. */
static int find_program(const char *name, const char *cwd, const char *const *envp, char *out, size_t cap,
                        struct mlx_err *err)
{
	if (!*name)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "cannot run an empty program name");
	if (strchr(name, '/')) {
		if (!join_path(out, cap, NULL, name))
			return mlx_err_set(err, MLX_ERR_INVALID, ENAMETOOLONG, "cannot run %s: name too long",
			                   name);
		return MLX_OK;
	}
	const char *search = env_get(envp, "PATH");
	if (!search)
		search = DEFAULT_PATH;
	char denied[PATH_MAX] = "";
	for (const char *dir = search;; dir++) {
		const char *end = strchrnul(dir, ':');
		char entry[PATH_MAX], candidate[PATH_MAX], here[PATH_MAX];
		int len = (int)(end - dir);
		/* An empty entry means the working directory, as in execvp. */
		if (snprintf(entry, sizeof entry, "%.*s", len, len ? dir : ".") < (int)sizeof entry &&
		    join_path(candidate, sizeof candidate, entry, name) &&
		    seen_from_here(here, sizeof here, cwd, candidate)) {
			if (is_executable_file(here)) {
				snprintf(out, cap, "%s", candidate);
				return MLX_OK;
			}
			if (!denied[0] && access(here, F_OK) == 0)
				snprintf(denied, sizeof denied, "%s", here);
		}
		if (!*end)
			break;
		dir = end;
	}
	if (denied[0])
		return mlx_err_set(err, MLX_ERR_INVALID, EACCES,
		                   "cannot run %s: %s is not an executable file", name, denied);
	return mlx_err_set(err, MLX_ERR_NOTFOUND, ENOENT, "cannot run %s: command not found in PATH", name);
}

/* What the child reports when it cannot exec. */
enum child_stage { STAGE_SETUP = 1, STAGE_CWD, STAGE_EXEC };

struct child_failure {
	int stage;
	int err;
};

/* Explains a failure of the child: the working directory, a missing
 * program, a script whose interpreter is missing, a file that is not a
 * program. Only runs on failure. */
static int start_failure(const struct child_failure *f, const char *name, const char *path, const char *cwd,
                         struct mlx_err *err)
{
	int e = f->err;
	if (f->stage == STAGE_SETUP)
		return mlx_err_sys(err, e, "cannot start %s", name);
	if (f->stage == STAGE_CWD) {
		if (e == ENOENT)
			return mlx_err_set(err, MLX_ERR_NOTFOUND, e,
			                   "cannot run %s: working directory %s does not exist", name, cwd);
		if (e == ENOTDIR)
			return mlx_err_set(err, MLX_ERR_NOTFOUND, e,
			                   "cannot run %s: working directory %s is not a directory", name,
			                   cwd);
		return mlx_err_sys(err, e, "cannot run %s: cannot enter working directory %s", name, cwd);
	}
	char here[PATH_MAX];
	struct stat st;
	if (!seen_from_here(here, sizeof here, cwd, path))
		return mlx_err_sys(err, e, "cannot run %s", name);
	bool exists = stat(here, &st) == 0;
	if (e == ENOENT && exists) {
		/* execve says ENOENT when a script's interpreter is missing. */
		char line[256] = "";
		FILE *f = fopen(here, "rbe");
		if (f) {
			if (!fgets(line, sizeof line, f))
				line[0] = '\0';
			fclose(f);
		}
		if (line[0] == '#' && line[1] == '!') {
			char *interp = line + 2 + strspn(line + 2, " \t");
			interp[strcspn(interp, " \t\r\n")] = '\0';
			return mlx_err_set(err, MLX_ERR_NOTFOUND, e,
			                   "cannot run %s: its interpreter %s was not found", name, interp);
		}
	}
	if (e == ENOENT)
		return mlx_err_set(err, MLX_ERR_NOTFOUND, e, "cannot run %s: no such file", name);
	if (exists && S_ISDIR(st.st_mode))
		return mlx_err_set(err, MLX_ERR_INVALID, e, "cannot run %s: it is a directory", name);
	if (e == EACCES && exists && S_ISREG(st.st_mode) && !(st.st_mode & 0111))
		return mlx_err_set(err, MLX_ERR_INVALID, e, "cannot run %s: not executable (no x permission)",
		                   name);
	if (e == EACCES || e == ENOEXEC)
		return mlx_err_set(err, MLX_ERR_INVALID, e, "cannot run %s: %s", name, strerror(e));
	return mlx_err_sys(err, e, "cannot run %s", name);
}

/* Moves fd above the standard descriptors, so dup2 onto 0, 1 or 2 in the
 * child never meets itself even when the caller runs with one closed. */
static int above_stdio(int fd)
{
	if (fd < 0 || fd > 2)
		return fd;
	int moved = fcntl(fd, F_DUPFD_CLOEXEC, 3);
	int saved = errno;
	close(fd);
	errno = saved;
	return moved;
}

static int open_input(const struct mlx_proc_spec *spec, struct mlx_err *err)
{
	if (spec->stdin_mode == MLX_PROC_IN_FILE) {
		int fd = above_stdio(open(spec->stdin_path, O_RDONLY | O_CLOEXEC));
		if (fd < 0)
			return mlx_err_sys(err, errno, "cannot open input file %s", spec->stdin_path);
		return fd;
	}
	/* A string becomes an anonymous file: no writer to keep alive, no
	 * SIGPIPE when the child does not read it all. */
	int fd = above_stdio(memfd_create("mlx-stdin", MFD_CLOEXEC));
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot create the input of the command");
	const char *p = spec->stdin_data;
	size_t left = spec->stdin_len;
	while (left > 0) {
		ssize_t n = write(fd, p, left);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			close(fd);
			return mlx_err_sys(err, e, "cannot write the input of the command");
		}
		p += n;
		left -= (size_t)n;
	}
	if (lseek(fd, 0, SEEK_SET) != 0) {
		int e = errno;
		close(fd);
		return mlx_err_sys(err, e, "cannot write the input of the command");
	}
	return fd;
}

/* Creates the pipe of one stream: our end (non-blocking) in s->fd, the
 * child's end in *child_end. */
static int open_pipe(struct proc_stream *s, int *child_end, struct mlx_err *err)
{
	int fds[2];
	if (pipe2(fds, O_CLOEXEC) != 0)
		return mlx_err_sys(err, errno, "cannot create a pipe");
	fds[0] = above_stdio(fds[0]);
	fds[1] = above_stdio(fds[1]);
	if (fds[0] < 0 || fds[1] < 0 || fcntl(fds[0], F_SETFL, O_NONBLOCK) != 0) {
		int e = errno;
		if (fds[0] >= 0)
			close(fds[0]);
		if (fds[1] >= 0)
			close(fds[1]);
		return mlx_err_sys(err, e, "cannot create a pipe");
	}
	s->fd = fds[0];
	*child_end = fds[1];
	return MLX_OK;
}

static int setup_stream(struct proc_stream *s, const struct mlx_proc_output_spec *o, int *child_end,
                        struct mlx_err *err)
{
	if (o->mode != MLX_PROC_OUT_PIPE)
		return MLX_OK;
	s->capture = o->capture;
	s->lines = o->lines;
	if (o->log_path) {
		s->log_fd = above_stdio(open(o->log_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644));
		if (s->log_fd < 0)
			return mlx_err_sys(err, errno, "cannot open log file %s", o->log_path);
	}
	return open_pipe(s, child_end, err);
}

static int check_spec(const struct mlx_proc_spec *spec, struct mlx_err *err)
{
	if ((spec->argv == NULL) == (spec->shell == NULL) || (spec->argv && !spec->argv[0]))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "a command needs either an argv or a shell string");
	if (spec->out.mode == MLX_PROC_OUT_STDOUT)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "stdout cannot be sent to itself");
	if (spec->stdin_mode == MLX_PROC_IN_FILE && !spec->stdin_path)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "an input file needs a path");
	if (spec->timeout_ns < 0 || spec->grace_ns < 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "a time limit cannot be negative");
	return MLX_OK;
}

/* Everything the child needs, prepared before vfork: it may only make
 * system calls (it shares our memory until it execs). */
struct child_setup {
	const char *path;
	char *const *argv;
	char *const *envp;
	const char *cwd;
	int in_fd; /* -1: /dev/null */
	enum mlx_proc_output out_mode, err_mode;
	int out_fd, err_fd; /* the child's ends of the pipes */
	int report_fd;      /* where to write a struct child_failure */
	int keeper_fd;      /* where to announce the new group (keeper.h), or -1 */
	const cpu_set_t *affinity; /* the CPUs to give back before exec, or NULL */
};

/* Points the child's descriptor target at what mode says. */
static int redirect(int target, enum mlx_proc_output mode, int pipe_fd)
{
	switch (mode) {
	case MLX_PROC_OUT_INHERIT: return 0;
	case MLX_PROC_OUT_PIPE: return dup2(pipe_fd, target) < 0 ? -1 : 0;
	case MLX_PROC_OUT_STDOUT: return dup2(STDOUT_FILENO, target) < 0 ? -1 : 0;
	case MLX_PROC_OUT_NULL: break;
	}
	int fd = open("/dev/null", O_RDWR);
	if (fd < 0 || (fd != target && (dup2(fd, target) < 0 || close(fd) < 0)))
		return -1;
	return 0;
}

static void close_others(int keep)
{
	if (keep > 3)
		close_range(3, (unsigned)keep - 1, 0);
	if (close_range((unsigned)keep + 1, ~0U, 0) != 0)
		for (int fd = keep + 1; fd < 4096; fd++) /* kernels before 5.9 */
			close(fd);
}

/* The child, between vfork and exec. */
__attribute__((noreturn)) static void child_exec(const struct child_setup *c)
{
	int stage = STAGE_SETUP;
	/* Started on mlx's CPU (start_child), it may move from the start on:
	 * held there, another task taking that CPU would hold up the exec. */
	if (c->affinity && sched_setaffinity(0, sizeof *c->affinity, c->affinity) != 0) {
		/* The CPUs mlx may use changed meanwhile: any of them will do. */
		cpu_set_t any;
		memset(&any, 0xff, sizeof any);
		if (sched_setaffinity(0, sizeof any, &any) != 0)
			goto fail;
	}
	/* The parent blocked every signal before vfork so that none of its
	 * handlers can run here, on its memory. Reset them (exec would), and
	 * SIGPIPE and SIGXFSZ even when ignored: a child starts as from a
	 * shell, whatever mlx or a library in it did with them. */
	for (int sig = 1; sig < NSIG; sig++) {
		struct sigaction sa;
		if (sigaction(sig, NULL, &sa) != 0 || sa.sa_handler == SIG_DFL)
			continue;
		if (sa.sa_handler == SIG_IGN && sig != SIGPIPE && sig != SIGXFSZ)
			continue;
		memset(&sa, 0, sizeof sa);
		sa.sa_handler = SIG_DFL;
		sigaction(sig, &sa, NULL);
	}
	if (setpgid(0, 0) != 0)
		goto fail;
	/* Before any program runs, so that no moment exists in which mlx
	 * could die with this group unknown to the keeper. */
	if (c->keeper_fd >= 0)
		mlx_keeper_child_started(c->keeper_fd);
	if (c->in_fd >= 0 ? dup2(c->in_fd, STDIN_FILENO) < 0
	                  : redirect(STDIN_FILENO, MLX_PROC_OUT_NULL, -1) != 0)
		goto fail;
	if (redirect(STDOUT_FILENO, c->out_mode, c->out_fd) != 0 ||
	    redirect(STDERR_FILENO, c->err_mode, c->err_fd) != 0)
		goto fail;
	/* Nothing else of ours leaks into the child, not even descriptors
	 * opened without O_CLOEXEC (Lua's io.open). */
	close_others(c->report_fd);
	stage = STAGE_CWD;
	if (c->cwd && chdir(c->cwd) != 0)
		goto fail;
	sigset_t none;
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	stage = STAGE_EXEC;
	execve(c->path, c->argv, c->envp);
fail:;
	struct child_failure f = {stage, errno};
	ssize_t ignored = write(c->report_fd, &f, sizeof f);
	(void)ignored;
	_exit(127);
}

/* Pins the calling thread to the CPU it runs on, when it may run on
 * others; returns true and its CPUs in *saved if it did. The parent of a
 * vfork sleeps until its child has exec'ed; a child placed on another CPU,
 * busy with a step, waited there for its turn (a third of a millisecond
 * at the 90th percentile on 2 quiet CPUs, and milliseconds on a busy
 * machine) while the CPU its parent left stood idle or ran something
 * else. Pinned, it is created on the one CPU and runs there at once. */
static bool pin_here(cpu_set_t *saved)
{
	int cpu = sched_getcpu();
	if (cpu < 0 || cpu >= CPU_SETSIZE || sched_getaffinity(0, sizeof *saved, saved) != 0 ||
	    !CPU_ISSET(cpu, saved) || CPU_COUNT(saved) < 2)
		return false;
	cpu_set_t one;
	CPU_ZERO(&one);
	CPU_SET(cpu, &one);
	return sched_setaffinity(0, sizeof one, &one) == 0;
}

/* vforks the child on our CPU; it takes back the CPUs we had as soon as
 * it runs (so it, and the program, run where mlx may run). */
static pid_t start_child(struct child_setup *c)
{
	cpu_set_t saved;
	c->affinity = pin_here(&saved) ? &saved : NULL;
	pid_t pid = vfork();
	if (pid == 0)
		child_exec(c);
	int e = errno;
	if (c->affinity)
		sched_setaffinity(0, sizeof saved, &saved);
	errno = e;
	return pid;
}

/* Starts the child. Returns 0, or -1 with *f saying what failed. */
static int spawn_child(struct mlx_proc *p, const struct mlx_proc_spec *spec, const char *path,
                       const char *const *argv, int in_fd, const int child_end[2], int keeper_fd,
                       struct child_failure *f)
{
	int report[2];
	if (pipe2(report, O_CLOEXEC) != 0 || (report[1] = above_stdio(report[1])) < 0) {
		*f = (struct child_failure){STAGE_SETUP, errno};
		return -1;
	}
	struct child_setup c = {
	    .path = path,
	    .argv = (char *const *)argv,
	    .envp = spec->envp ? (char *const *)spec->envp : environ,
	    .cwd = spec->cwd,
	    .in_fd = in_fd,
	    .out_mode = spec->out.mode,
	    .err_mode = spec->err.mode,
	    .out_fd = child_end[0],
	    .err_fd = child_end[1],
	    .report_fd = report[1],
	    .keeper_fd = keeper_fd,
	};
	sigset_t all, saved;
	sigfillset(&all);
	sigprocmask(SIG_BLOCK, &all, &saved);
	p->start_ns = proc_now_ns();
	pid_t pid = start_child(&c);
	int vfork_errno = errno;
	sigprocmask(SIG_SETMASK, &saved, NULL);
	close(report[1]);
	if (pid < 0) {
		close(report[0]);
		*f = (struct child_failure){STAGE_SETUP, vfork_errno};
		return -1;
	}
	/* End of file: exec closed the pipe. Else the child says why not. */
	ssize_t n;
	do
		n = read(report[0], f, sizeof *f);
	while (n < 0 && errno == EINTR);
	close(report[0]);
	if (n == sizeof *f) {
		int status;
		while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (spec->keeper)
			mlx_keeper_ended(spec->keeper, pid);
		return -1;
	}
	p->pid = pid;
	return 0;
}

int mlx_proc_spawn(const struct mlx_proc_spec *spec, struct mlx_proc **out, struct mlx_err *err)
{
	*out = NULL;
	int rc = check_spec(spec, err);
	if (rc != MLX_OK)
		return rc;
	const char *shell_argv[] = {"/bin/sh", "-c", spec->shell, NULL};
	const char *const *argv = spec->shell ? shell_argv : spec->argv;
	char path[PATH_MAX];
	if ((rc = find_program(argv[0], spec->cwd, spec->envp, path, sizeof path, err)) != MLX_OK)
		return rc;

	struct mlx_proc *p = calloc(1, sizeof *p);
	if (!p)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (int i = 0; i < 2; i++)
		p->streams[i].fd = p->streams[i].log_fd = -1;
	p->grace_ns = spec->grace_ns;
	int in_fd = -1, child_end[2] = {-1, -1};
	if (spec->stdin_mode != MLX_PROC_IN_NULL && (in_fd = open_input(spec, err)) < 0)
		rc = in_fd;
	if (rc == MLX_OK)
		rc = setup_stream(&p->streams[MLX_PROC_STDOUT], &spec->out, &child_end[0], err);
	if (rc == MLX_OK)
		rc = setup_stream(&p->streams[MLX_PROC_STDERR], &spec->err, &child_end[1], err);
	int keeper_fd = -1;
	if (rc == MLX_OK && spec->keeper && (keeper_fd = mlx_keeper_ready(spec->keeper, err)) < 0)
		rc = keeper_fd;
	if (rc == MLX_OK) {
		prepare_parent();
		struct child_failure f;
		if (spawn_child(p, spec, path, argv, in_fd, child_end, keeper_fd, &f) != 0)
			rc = start_failure(&f, argv[0], path, spec->cwd, err);
	}
	if (in_fd >= 0)
		close(in_fd);
	for (int i = 0; i < 2; i++)
		if (child_end[i] >= 0)
			close(child_end[i]);
	if (rc != MLX_OK) {
		p->pid = 0; /* nothing to stop */
		p->finished = true;
		mlx_proc_free(p);
		return rc;
	}
	if (spec->timeout_ns > 0)
		p->deadline_ns = p->start_ns + spec->timeout_ns;
	if (spec->keeper) {
		p->keeper = spec->keeper;
		mlx_keeper_started(p->keeper, p->pid);
	}
	*out = p;
	return MLX_OK;
}

pid_t mlx_proc_pid(const struct mlx_proc *p)
{
	return p->pid;
}
