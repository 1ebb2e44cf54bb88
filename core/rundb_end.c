/* rundb_end.c — end markers: the end of a run that could not be written to
 * the database (a full disk, a read-only file, a writer that kept it locked)
 * is left in a small file beside it, "<db path>-end-<run id>", so that the
 * next process to open the database writable records it as it was, instead
 * of taking the run for one whose process was killed.
 *
 * The marker is made when the run starts, with its space reserved
 * (4 KB of zeros), because the disk is most often full exactly when the end
 * cannot be recorded; it holds nothing until then, and is removed when the
 * end is recorded. The format, one field a line: "mlx-run-end 1", the
 * status, "exit_code signal end_ms", why it could not be recorded (one
 * line), then the run's message (the rest of the file). A marker without
 * that first line says nothing: its process was killed before its end.
 *
 * A new file is a new inode, which ext4 without a journal makes costly (up
 * to a millisecond while it skips the inodes freed in the last 30 s, and
 * each removal adds one): a pipeline of 1,000 steps made and removed 1,000
 * markers. So the empty marker of a run whose end was recorded is kept as
 * one of the handle's spares, "<db path>-end-spare-<pid>", then
 * "…-<pid>-1", "…-<pid>-2" and so on (as many as the ends of one batch,
 * mlx_rundb_finish_buffered), and renamed to the next run's marker; the
 * last made is the first taken, so a process's spares are always numbered
 * from 0 without a gap. The spares are removed when the handle closes, or,
 * after a kill, by whoever reaps that process's runs. */
#include "rundb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MARKER_MAGIC "mlx-run-end 1\n"
#define MARKER_MAX (64 * 1024)
#define MARKER_RESERVED 4096 /* what a full disk still lets the end take */

static void marker_path(const struct mlx_rundb *db, const char *id, char *buf, size_t size)
{
	snprintf(buf, size, "%s-end-%s", db->path, id);
}

/* Makes s one line: line breaks become spaces. */
static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

/* The name of spare n of process pid. */
static void spare_path(const struct mlx_rundb *db, long pid, int n, char *buf, size_t size)
{
	if (n == 0)
		snprintf(buf, size, "%s-end-spare-%ld", db->path, pid);
	else
		snprintf(buf, size, "%s-end-spare-%ld-%d", db->path, pid, n);
}

void rundb_end_marker_reserve(struct mlx_rundb *db, const char *id)
{
	char path[PATH_MAX + 32];
	marker_path(db, id, path, sizeof path);
	if (db->nspare > 0) {
		char spare[PATH_MAX + 48];
		spare_path(db, (long)getpid(), --db->nspare, spare, sizeof spare);
		/* Another handle of this process may have taken it: then a new
		 * marker is made, as without a spare. */
		if (rename(spare, path) == 0)
			return;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return;
	/* Zeros, not fallocate(2), which costs ~2 ms a call on ext4 here
	 * against ~20 us: a write reserves the space as well (delayed
	 * allocation; tmpfs takes the pages), and a marker removed within
	 * seconds never reaches the disk. Without the space the marker is
	 * still made, and a short end may fit. */
	static const char zeros[MARKER_RESERVED];
	if (write(fd, zeros, sizeof zeros) != (ssize_t)sizeof zeros) {
		/* a full disk already: the empty marker is all there is */
		db->marker_doubt = 1;
	}
	close(fd);
}

void rundb_end_marker_write(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end,
                            const char *why)
{
	char path[PATH_MAX + 32];
	marker_path(db, id, path, sizeof path);
	db->marker_doubt = 1;
	char *reason = strdup(why ? why : "");
	if (!reason)
		return;
	one_line(reason);
	const char *message = end->message ? end->message : "";
	int64_t end_ms = end->end_ms > 0 ? end->end_ms : rundb_now_ms();
	size_t size = strlen(MARKER_MAGIC) + strlen(end->status) + strlen(reason) + strlen(message) + 80;
	char *text = malloc(size);
	/* Into the reserved space, then cut to length: neither needs a new
	 * block while the end fits the reservation. */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (text && fd >= 0) {
		int n = snprintf(text, size, MARKER_MAGIC "%s\n%d %d %" PRId64 "\n%s\n%s", end->status,
		                 end->exit_code, end->signal, end_ms, reason, message);
		if (n > MARKER_RESERVED) /* the message, last, is what is cut */
			n = MARKER_RESERVED;
		ssize_t written = n > 0 ? pwrite(fd, text, (size_t)n, 0) : -1;
		if (written > 0 && ftruncate(fd, written) != 0) {
			/* The tail of the reservation stays: the reader stops at
			 * the first NUL. */
		}
	}
	if (fd >= 0)
		close(fd);
	free(text);
	free(reason);
}

/* Cuts the line at *s, returning it and moving *s past it; NULL if no
 * newline is left. */
static char *next_line(char **s)
{
	char *nl = strchr(*s, '\n');
	if (!nl)
		return NULL;
	*nl = '\0';
	char *line = *s;
	*s = nl + 1;
	return line;
}

int rundb_end_marker_read(struct mlx_rundb *db, const char *id, struct rundb_end_marker *m)
{
	memset(m, 0, sizeof *m);
	char path[PATH_MAX + 32];
	marker_path(db, id, path, sizeof path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd < 0)
		return -1;
	char *text = malloc(MARKER_MAX + 1);
	ssize_t n = text ? read(fd, text, MARKER_MAX) : -1;
	close(fd);
	if (n < 0) {
		free(text);
		return 0;
	}
	text[n] = '\0';
	char *s = text, *status, *numbers, *why;
	if (strncmp(s, MARKER_MAGIC, strlen(MARKER_MAGIC)) != 0 || !next_line(&s) ||
	    !(status = next_line(&s)) || !(numbers = next_line(&s)) || !(why = next_line(&s)) ||
	    sscanf(numbers, "%d %d %" SCNd64, &m->exit_code, &m->signal, &m->end_ms) != 3) {
		free(text);
		return 0;
	}
	m->text = text;
	m->status = status;
	m->why = why;
	m->message = s;
	return 1;
}

void rundb_end_marker_remove(struct mlx_rundb *db, const char *id)
{
	char path[PATH_MAX + 32];
	marker_path(db, id, path, sizeof path);
	unlink(path);
}

/* Spares kept at most: a batch of ends (rundb_write.c's MAX_ENDS) and
 * the runs that started meanwhile. */
#define SPARES_MAX 128

/* True when the marker at path holds nothing but its reservation: one
 * written by an earlier failed attempt would give the next run an end that
 * is not its own. Only this handle writes into its runs' markers, so
 * before it ever has (marker_doubt) the answer is known without the four
 * system calls of a look, which were a twentieth of mlx's own time in a
 * first run of 1,000 short steps. */
static int marker_empty(const struct mlx_rundb *db, const char *path)
{
	if (!db->marker_doubt)
		return 1;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char first = 1;
	int empty = fd >= 0 && fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size == MARKER_RESERVED &&
	            pread(fd, &first, 1, 0) == 1 && first == 0;
	if (fd >= 0)
		close(fd);
	return empty;
}

void rundb_end_marker_retire(struct mlx_rundb *db, const char *id)
{
	char path[PATH_MAX + 32];
	marker_path(db, id, path, sizeof path);
	if (db->nspare < SPARES_MAX && marker_empty(db, path)) {
		char spare[PATH_MAX + 48];
		spare_path(db, (long)getpid(), db->nspare, spare, sizeof spare);
		if (rename(path, spare) == 0) {
			db->nspare++;
			return;
		}
	}
	unlink(path);
}

int rundb_end_marker_pass(struct mlx_rundb *db, const char *from, const char *to)
{
	char path[PATH_MAX + 32], next[PATH_MAX + 32];
	marker_path(db, from, path, sizeof path);
	marker_path(db, to, next, sizeof next);
	return marker_empty(db, path) && rename(path, next) == 0;
}

void rundb_end_spare_remove(struct mlx_rundb *db, long pid)
{
	char spare[PATH_MAX + 48];
	/* Numbered from 0 without a gap: the first missing one is the end. */
	for (int n = 0; n < SPARES_MAX; n++) {
		spare_path(db, pid, n, spare, sizeof spare);
		if (unlink(spare) != 0 && errno == ENOENT)
			break;
	}
	if (pid == (long)getpid())
		db->nspare = 0;
}
