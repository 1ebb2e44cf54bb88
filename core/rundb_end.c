/* rundb_end.c — end markers: the end of a run that could not be written to
 * the database (a full disk, a read-only file, a writer that kept it locked)
 * is left in a small file beside it, so that the next process to open the
 * database writable records it as it was, instead of taking the run for one
 * whose process was killed.
 *
 * The space of a run's marker is reserved when the run starts (4 KB of
 * zeros), because the disk is most often full exactly when the end cannot
 * be recorded; it holds nothing until then. The format, one field a line:
 * "mlx-run-end 2", the run's id, the status, "exit_code signal end_ms",
 * why it could not be recorded (one line), then the run's message (the rest
 * of the file). Version 1, written by older versions under the run's own
 * name, has no id line. A marker without that first line says nothing: its
 * process was killed before its end.
 *
 * A new file is a new inode, which ext4 without a journal makes costly (up
 * to a millisecond while it skips the inodes freed in the last 30 s), and a
 * rename costs a directory update. So a handle's markers are slots,
 * "<db path>-end-slot-<pid>-<n>", made once and held in memory by the run
 * that uses one: a run takes a free slot when it starts and frees it when
 * its end is recorded, with no system call; only a run whose end had to be
 * written there makes its slot's bytes zeros again. A pipeline of 1,000
 * steps makes as many slots as it has runs unrecorded at once (a batch of
 * ends and the runs started meanwhile), and neither renames nor reads them.
 *
 * The reader of a dead process's run looks for "<db path>-end-<run id>"
 * (version 1, a handle's overflow past SLOTS_MAX, or a written slot that
 * its closing handle renamed so) and then in that process's slots. Closing
 * a handle removes its slots, but renames those holding an unrecorded end
 * to the run's own name; whoever reaps a dead process's runs removes its
 * slots. */
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

#define MARKER_MAGIC "mlx-run-end 2\n"
#define MARKER_MAGIC_1 "mlx-run-end 1\n"
#define MARKER_MAX (64 * 1024)
#define MARKER_RESERVED 4096 /* what a full disk still lets the end take */
/* Slots of one handle at most: a batch of ends (rundb_write.c's MAX_ENDS)
 * and the runs that started meanwhile; a run past them gets a marker of
 * its own name. */
#define SLOTS_MAX 128

static void marker_path(const struct mlx_rundb *db, const char *id, char *buf, size_t size)
{
	snprintf(buf, size, "%s-end-%s", db->path, id);
}

static void slot_path(const struct mlx_rundb *db, long pid, int n, char *buf, size_t size)
{
	snprintf(buf, size, "%s-end-slot-%ld-%d", db->path, pid, n);
}

/* Makes s one line: line breaks become spaces. */
static void one_line(char *s)
{
	for (; *s; s++)
		if (*s == '\n' || *s == '\r')
			*s = ' ';
}

/* Writes the reservation, MARKER_RESERVED zeros, at the start of fd. Zeros,
 * not fallocate(2), which costs ~2 ms a call on ext4 here against ~20 us: a
 * write reserves the space as well (delayed allocation; tmpfs takes the
 * pages). Without the space the marker is still there, and a short end
 * may fit. */
static void reserve(int fd)
{
	static const char zeros[MARKER_RESERVED];
	if (pwrite(fd, zeros, sizeof zeros, 0) < 0) {
		/* a full disk already: the empty marker is all there is */
	}
}

/* The slot run id holds, or NULL. */
static struct rundb_end_slot *slot_of(struct mlx_rundb *db, const char *id)
{
	for (int i = 0; i < db->nend_slots; i++)
		if (strcmp(db->end_slots[i].run, id) == 0)
			return &db->end_slots[i];
	return NULL;
}

/* Makes a new slot file for this handle: the first number no file has
 * (another handle of this process may hold some). Returns its index in
 * db->end_slots, or -1. */
static int new_slot(struct mlx_rundb *db)
{
	if (db->nend_slots >= SLOTS_MAX)
		return -1;
	if (db->nend_slots == db->cap_end_slots) {
		int cap = db->cap_end_slots ? 2 * db->cap_end_slots : 8;
		struct rundb_end_slot *grown = realloc(db->end_slots, (size_t)cap * sizeof *grown);
		if (!grown)
			return -1;
		db->end_slots = grown;
		db->cap_end_slots = cap;
	}
	char path[PATH_MAX + 64];
	long pid = (long)getpid();
	for (int tries = 0; tries < SLOTS_MAX; tries++) {
		int n = db->next_end_slot++;
		slot_path(db, pid, n, path, sizeof path);
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
		if (fd < 0) {
			if (errno == EEXIST)
				continue;
			return -1;
		}
		reserve(fd);
		close(fd);
		struct rundb_end_slot *s = &db->end_slots[db->nend_slots];
		memset(s, 0, sizeof *s);
		s->n = n;
		return db->nend_slots++;
	}
	return -1;
}

void rundb_end_marker_reserve(struct mlx_rundb *db, const char *id)
{
	int free_slot = -1;
	for (int i = 0; i < db->nend_slots && free_slot < 0; i++)
		if (db->end_slots[i].run[0] == '\0')
			free_slot = i;
	if (free_slot < 0)
		free_slot = new_slot(db);
	if (free_slot >= 0) {
		snprintf(db->end_slots[free_slot].run, sizeof db->end_slots[free_slot].run, "%s", id);
		db->end_slots[free_slot].written = 0;
		return;
	}
	/* No slot to be had: a marker of the run's own name, as before slots. */
	char path[PATH_MAX + 32];
	marker_path(db, id, path, sizeof path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		return;
	reserve(fd);
	close(fd);
}

void rundb_end_marker_write(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end,
                            const char *why)
{
	char path[PATH_MAX + 64];
	struct rundb_end_slot *slot = slot_of(db, id);
	if (slot)
		slot_path(db, (long)getpid(), slot->n, path, sizeof path);
	else
		marker_path(db, id, path, sizeof path);
	char *reason = strdup(why ? why : "");
	if (!reason)
		return;
	one_line(reason);
	const char *message = end->message ? end->message : "";
	int64_t end_ms = end->end_ms > 0 ? end->end_ms : rundb_now_ms();
	size_t size =
	    strlen(MARKER_MAGIC) + strlen(id) + strlen(end->status) + strlen(reason) + strlen(message) + 80;
	char *text = malloc(size);
	/* Into the reserved space, then cut to length: neither needs a new
	 * block while the end fits the reservation. */
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (text && fd >= 0) {
		int n = snprintf(text, size, MARKER_MAGIC "%s\n%s\n%d %d %" PRId64 "\n%s\n%s", id,
		                 end->status, end->exit_code, end->signal, end_ms, reason, message);
		if (n > MARKER_RESERVED) /* the message, last, is what is cut */
			n = MARKER_RESERVED;
		ssize_t written = n > 0 ? pwrite(fd, text, (size_t)n, 0) : -1;
		if (written > 0 && ftruncate(fd, written) != 0) {
			/* The tail of the reservation stays: the reader stops at
			 * the first NUL. */
		}
		if (slot && written > 0)
			slot->written = 1;
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

/* Reads the marker at path as the end of run id. Returns 1 and fills m
 * (free m->text) if it holds id's end; 0 if it holds none, or (a slot)
 * another run's; -1 if there is no such file. */
static int read_marker(const char *path, const char *id, struct rundb_end_marker *m)
{
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
	char *s = text, *status, *numbers, *why, *owner;
	int v2 = strncmp(s, MARKER_MAGIC, strlen(MARKER_MAGIC)) == 0;
	int v1 = strncmp(s, MARKER_MAGIC_1, strlen(MARKER_MAGIC_1)) == 0;
	if (!(v1 || v2) || !next_line(&s) || (v2 && (!(owner = next_line(&s)) || strcmp(owner, id) != 0)) ||
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

int rundb_end_marker_read(struct mlx_rundb *db, const char *id, long pid, struct rundb_end_marker *m)
{
	memset(m, 0, sizeof *m);
	char path[PATH_MAX + 64];
	marker_path(db, id, path, sizeof path);
	int found = read_marker(path, id, m);
	/* Else the slots of its process; closed handles leave gaps, so all
	 * are looked at. */
	for (int n = 0; n < SLOTS_MAX && found != 1; n++) {
		slot_path(db, pid, n, path, sizeof path);
		if (read_marker(path, id, m) == 1)
			return 1;
	}
	return found;
}

void rundb_end_marker_remove(struct mlx_rundb *db, const char *id)
{
	char path[PATH_MAX + 32];
	marker_path(db, id, path, sizeof path);
	unlink(path);
}

void rundb_end_marker_retire(struct mlx_rundb *db, const char *id)
{
	struct rundb_end_slot *slot = slot_of(db, id);
	if (!slot) {
		/* Its own name: an overflow, or a run of another handle. */
		rundb_end_marker_remove(db, id);
		return;
	}
	if (slot->written) {
		/* An end written by an earlier attempt is out of date: the slot
		 * goes back to its bare reservation, or away. */
		char path[PATH_MAX + 64];
		slot_path(db, (long)getpid(), slot->n, path, sizeof path);
		int fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0 || ftruncate(fd, 0) != 0) {
			if (fd >= 0)
				close(fd);
			unlink(path);
			*slot = db->end_slots[--db->nend_slots];
			return;
		}
		reserve(fd);
		close(fd);
	}
	slot->run[0] = '\0';
	slot->written = 0;
}

void rundb_end_slots_close(struct mlx_rundb *db)
{
	char path[PATH_MAX + 64];
	long pid = (long)getpid();
	for (int i = 0; i < db->nend_slots; i++) {
		struct rundb_end_slot *s = &db->end_slots[i];
		slot_path(db, pid, s->n, path, sizeof path);
		if (s->written) {
			/* The only record of an end: kept under the run's name. */
			char named[PATH_MAX + 32];
			marker_path(db, s->run, named, sizeof named);
			if (rename(path, named) == 0)
				continue;
		}
		unlink(path);
	}
	free(db->end_slots);
	db->end_slots = NULL;
	db->nend_slots = db->cap_end_slots = 0;
}

void rundb_end_slots_remove(struct mlx_rundb *db, long pid)
{
	char path[PATH_MAX + 64];
	for (int n = 0; n < SLOTS_MAX; n++) {
		slot_path(db, pid, n, path, sizeof path);
		unlink(path);
	}
	/* The spares of older versions, "<db path>-end-spare-<pid>", then
	 * "…-<pid>-1" and so on, numbered without a gap. */
	for (int n = 0; n < SLOTS_MAX; n++) {
		if (n == 0)
			snprintf(path, sizeof path, "%s-end-spare-%ld", db->path, pid);
		else
			snprintf(path, sizeof path, "%s-end-spare-%ld-%d", db->path, pid, n);
		if (unlink(path) != 0 && errno == ENOENT)
			break;
	}
}
