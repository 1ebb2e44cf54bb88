/* store.c — staging, batch commit, checkout and maintenance of objects. */
#include "store.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"
#include "pool.h"
#include "store_internal.h"

#define CHUNK (128u << 10)
#define LOCK_NAME ".lock"
#define EARLY_WRITEBACK (256u << 10) /* bytes from which a staged file starts its writeback */

struct staged {
	char hex[MLX_HASH_HEX_SIZE];
	char name[24];		/* the temp file's name in the batch directory */
	uint64_t size;
};

/* A commit running in a thread of its own (mlx_store_commit_start): the
 * staged files it took, and how it ended. */
struct background_commit {
	pthread_t thread;
	int running;
	struct staged *items;
	size_t n;
	int deferred; /* published before durable (mlx_store_defer_durability) */
	int rc;
	struct mlx_err err;
};

struct mlx_store {
	char *root, *objects, *tmp, *quarantine;
	char *unsynced;		/* .mlx/cache/unsynced: records of objects not yet durable */
	char boot[MLX_STORE_BOOT_ID_SIZE]; /* the kernel's boot id, once read ("": unknown) */
	int boot_read;
	int defer;		/* commits publish before durable (fetched objects) */
	size_t recovered_damaged; /* objects found damaged by the open after a restart */
	int objects_fd;
	int gc_lock_fd;
	char *batch;		/* .mlx/tmp/put-…, made on first stage */
	int batch_fd, batch_lock_fd;
	unsigned long batch_gen; /* this batch's number among every batch of the process (thread_run) */
	atomic_uint counter;
	atomic_int no_clone;    /* FICLONE refused as unsupported: not asked again */
	atomic_int no_noreplace; /* RENAME_NOREPLACE refused (EINVAL): not asked again */
	pthread_mutex_t lock;	/* guards the staged array */
	struct staged *staged;
	size_t nstaged, cap;
	struct background_commit bg;
	const struct mlx_progress *progress; /* of staging, checkout and checks, or NULL */
};

/* ---- small helpers ------------------------------------------------------ */

static char *join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *s = malloc(n);
	if (s)
		snprintf(s, n, "%s/%s", a, b);
	return s;
}

/* "ab/cdef…" of an id. */
static void object_name(const char *hex, char name[67])
{
	name[0] = hex[0];
	name[1] = hex[1];
	name[2] = '/';
	memcpy(name + 3, hex + 2, 63); /* 62 digits and the NUL */
}

/* Hashes fd from offset 0 into hex, copying every byte to out_fd if it is
 * not -1; expect is the size fstat gave for fd (UINT64_MAX: unknown, read
 * to a read of 0 bytes). Returns 0, or -1 with errno set (ENOMEM if OpenSSL failed) and
 * *failed_write telling which side failed. s is not needed (the digest is
 * the process's, hash.h), only kept by the callers. */
static int hash_copy(const struct mlx_store *s, int in_fd, int out_fd, uint64_t expect,
                     char hex[MLX_HASH_HEX_SIZE], uint64_t *size, int *failed_write)
{
	(void)s;
	unsigned char buf[CHUNK];
	*failed_write = 0;
	struct mlx_hash_stream h = {0};
	int rc = mlx_hash_stream_start(&h, NULL);
	uint64_t total = 0;
	off_t off = 0;
	int sys = 0; /* errno of a failed read or write */
	while (rc == MLX_OK) {
		ssize_t n = pread(in_fd, buf, sizeof buf, off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			sys = errno;
			break;
		}
		if (n == 0) {
			rc = mlx_hash_stream_finish(&h, hex, NULL);
			break;
		}
		rc = mlx_hash_stream_update(&h, buf, (size_t)n, NULL);
		if (rc == MLX_OK && out_fd >= 0 && mlx_fs_write_all(out_fd, buf, (size_t)n) != 0) {
			*failed_write = 1;
			sys = errno;
			break;
		}
		off += n;
		total += (uint64_t)n;
		/* A short read that reaches the size fstat gave is the end: a
		 * small file costs one read, not a second one to see 0. Short of
		 * that size (a file system that returns less), read on. */
		if ((size_t)n < sizeof buf && total >= expect && rc == MLX_OK) {
			rc = mlx_hash_stream_finish(&h, hex, NULL);
			break;
		}
	}
	mlx_hash_stream_free(&h);
	if (sys || rc != MLX_OK) {
		errno = sys ? sys : ENOMEM;
		return -1;
	}
	*size = total;
	return 0;
}

/* Makes out a reflink of in, unless the file system said before that it
 * has none (then *no_clone is set: one failed call, not one per file; a
 * pair on two file systems, EXDEV, is asked again). Returns 1 if cloned. */
static int try_clone(atomic_int *no_clone, int out, int in)
{
	if (atomic_load(no_clone))
		return 0;
	if (ioctl(out, FICLONE, in) == 0)
		return 1;
	if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL)
		atomic_store(no_clone, 1);
	return 0;
}

/* Removes a batch directory: its files and its subdirectories' files. */
static void remove_dir_files(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL) {
		if (strcmp(ent->d_name, ".") == 0 || strcmp(ent->d_name, "..") == 0)
			continue;
		if (unlinkat(dirfd(d), ent->d_name, 0) == 0 || errno != EISDIR)
			continue;
		char *sub = join(dir, ent->d_name);
		if (sub) {
			remove_dir_files(sub);
			free(sub);
		}
	}
	closedir(d);
	rmdir(dir);
}

/* The pid in a temp directory's name, "put-PID-XXXXXX" or "new-PID-XXXXXX";
 * 0 when the name has none. */
static pid_t batch_owner(const char *name)
{
	char *end;
	long pid = strtol(name + 4, &end, 10);
	return (end != name + 4 && *end == '-' && pid > 0) ? (pid_t)pid : 0;
}

/* Whether no process of this pid namespace has this pid. */
static int pid_is_dead(pid_t pid)
{
	return pid > 0 && kill(pid, 0) != 0 && errno == ESRCH;
}

/* Temp directories of processes that died (kill -9, power cut) hold
 * nothing anyone points at, and are removed. A batch directory appears
 * under its "put-" name only already locked by its owner (ensure_batch), so
 * one whose lock this process can take is stale. A "new-" directory is one
 * an owner has made but not yet locked: it is removed only once that owner
 * is dead, so a live owner never loses it between mkdtemp and the lock.
 * The lock file is opened, never created: a directory without one is
 * being removed by its owner, and is left to it unless the owner is dead. */
static void remove_stale_batches(const char *tmp)
{
	DIR *d = opendir(tmp);
	if (!d)
		return;
	struct dirent *ent;
	while ((ent = readdir(d)) != NULL) {
		int made = strncmp(ent->d_name, "new-", 4) == 0;
		if (!made && strncmp(ent->d_name, "put-", 4) != 0)
			continue;
		if (made && !pid_is_dead(batch_owner(ent->d_name)))
			continue;
		char *dir = join(tmp, ent->d_name);
		char *lock = dir ? join(dir, LOCK_NAME) : NULL;
		int fd = lock ? open(lock, O_RDWR | O_NOFOLLOW | O_CLOEXEC) : -1;
		int stale = 0;
		if (fd >= 0)
			stale = flock(fd, LOCK_EX | LOCK_NB) == 0;
		else if (lock && errno == ENOENT)
			stale = pid_is_dead(batch_owner(ent->d_name));
		if (stale)
			remove_dir_files(dir);
		mlx_fs_unlock(fd);
		free(lock);
		free(dir);
	}
	closedir(d);
}

/* The kernel's boot id, read on first use. */
static const char *store_boot(struct mlx_store *s)
{
	if (!s->boot_read) {
		mlx_store_boot_id(s->boot);
		s->boot_read = 1;
	}
	return s->boot;
}

/* ---- open and close ----------------------------------------------------- */

int mlx_store_open(const char *root, int flags, struct mlx_store **out, struct mlx_err *err)
{
	struct mlx_store *s = calloc(1, sizeof *s);
	if (!s)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	s->objects_fd = s->gc_lock_fd = s->batch_fd = s->batch_lock_fd = -1;
	pthread_mutex_init(&s->lock, NULL);
	atomic_init(&s->counter, 0);
	int rc = MLX_OK;
	char *cache = NULL, *gc_lock = NULL;
	s->root = strdup(root);
	cache = join(root, ".mlx/cache");
	s->objects = join(root, ".mlx/cache/objects");
	s->tmp = join(root, ".mlx/tmp");
	s->quarantine = join(root, ".mlx/cache/quarantine");
	s->unsynced = join(root, ".mlx/cache/unsynced");
	gc_lock = join(root, ".mlx/cache/gc.lock");
	if (!s->root || !cache || !s->objects || !s->tmp || !s->quarantine || !s->unsynced || !gc_lock) {
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		goto fail;
	}
	if ((rc = mlx_fs_mkdirs(s->objects, 0755, err)) != MLX_OK || (rc = mlx_fs_mkdirs(s->tmp, 0755, err)) != MLX_OK)
		goto fail;
	if ((rc = mlx_fs_lock(gc_lock, !(flags & MLX_STORE_EXCLUSIVE), !(flags & MLX_STORE_NOWAIT), &s->gc_lock_fd,
			      err)) != MLX_OK) {
		if (rc == MLX_ERR_BUSY)
			mlx_err_set(err, rc, 0, "the store %s is in use by another mlx process%s", cache,
				    (flags & MLX_STORE_EXCLUSIVE) ? "" : " (mlx gc)");
		goto fail;
	}
	s->objects_fd = open(s->objects, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->objects_fd < 0) {
		rc = mlx_err_sys(err, errno, "cannot open %s", s->objects);
		goto fail;
	}
	remove_stale_batches(s->tmp);
	/* Objects published unsynced before the machine restarted are checked
	 * before anything reads them (store_unsynced.c). One access(2) when
	 * there are none. */
	if (access(s->unsynced, F_OK) == 0) {
		store_boot(s);
		rc = mlx_store_unsynced_recover(s, s->unsynced, s->boot, &s->recovered_damaged, err);
		if (rc != MLX_OK)
			goto fail;
	}
	free(cache);
	free(gc_lock);
	*out = s;
	return MLX_OK;
fail:
	free(cache);
	free(gc_lock);
	mlx_store_close(s);
	return rc;
}

static void discard_batch(struct mlx_store *s)
{
	/* A commit in flight renames out of the batch directory: it ends
	 * first (its objects are then either in objects/ or staged again). */
	struct mlx_err ignored;
	mlx_store_commit_wait(s, &ignored);
	if (!s->batch)
		return;
	close(s->batch_fd);
	remove_dir_files(s->batch);
	mlx_fs_unlock(s->batch_lock_fd);
	free(s->batch);
	s->batch = NULL;
	s->batch_fd = s->batch_lock_fd = -1;
	s->nstaged = 0;
}

void mlx_store_close(struct mlx_store *s)
{
	if (!s)
		return;
	discard_batch(s);
	if (s->objects_fd >= 0)
		close(s->objects_fd);
	mlx_fs_unlock(s->gc_lock_fd);
	pthread_mutex_destroy(&s->lock);
	free(s->staged);
	free(s->root);
	free(s->objects);
	free(s->tmp);
	free(s->quarantine);
	free(s->unsynced);
	free(s);
}

void mlx_store_set_progress(struct mlx_store *s, const struct mlx_progress *progress)
{
	s->progress = progress;
}

void mlx_store_defer_durability(struct mlx_store *s, int on)
{
	/* Without a boot id, a restart could not be told from a kill: every
	 * commit stays durable. */
	s->defer = on && store_boot(s)[0] != '\0';
}

size_t mlx_store_recovered_damaged(const struct mlx_store *s)
{
	return s->recovered_damaged;
}

int mlx_store_recovery_note(const struct mlx_store *s, char *buf, size_t size)
{
	size_t n = s->recovered_damaged;
	if (n == 0)
		return 0;
	snprintf(buf, size,
	         "%zu object%s fetched from a remote had not reached the disk when the machine restarted, "
	         "and %s damaged: moved to .mlx/cache/quarantine/ (mlx pull fetches %s again)",
	         n, n == 1 ? "" : "s", n == 1 ? "is" : "are", n == 1 ? "it" : "them");
	return 1;
}

const char *mlx_store_objects_dir(const struct mlx_store *s)
{
	return s->objects;
}

int mlx_store_object_path(const struct mlx_store *s, const char *hex, char *buf, size_t size, struct mlx_err *err)
{
	if (!mlx_hash_is_id(hex))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "'%s' is not an object id (64 hex digits)", hex);
	char name[67];
	object_name(hex, name);
	if (snprintf(buf, size, "%s/%s", s->objects, name) >= (int)size)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "path too long: %s", s->objects);
	return MLX_OK;
}

/* ---- the objects directory, never through a symlink ---------------------
 *
 * Every access below objects/ goes through objects_fd, opening the shard
 * directory ("ab") and then the object ("cdef…") with O_NOFOLLOW or
 * AT_SYMLINK_NOFOLLOW: a symlink in the place of either is not part of the
 * store. It is never read, moved or written through, so nothing outside the
 * store can be touched by a walk (gc, fsck) or a read; mlx_store_list names
 * such links so that gc can remove them and fsck report them. */

/* Opens shard sub ("ab") of objects/, or -1 with errno set (ELOOP or
 * ENOTDIR when a symlink or a file is in its place). */
static int open_shard(const struct mlx_store *s, const char *sub)
{
	return openat(s->objects_fd, sub, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

int mlx_store_open_shard(const struct mlx_store *s, const char *sub)
{
	return open_shard(s, sub);
}

/* The shard directories a walk over many objects has opened, each once
 * (an open per object would triple the system calls of a re-add or a
 * commit). Filled by worker threads: the first open to land is kept. */
struct shards {
	atomic_int fd[256];
};

static void shards_init(struct shards *c)
{
	for (int i = 0; i < 256; i++)
		atomic_init(&c->fd[i], -1);
}

static void shards_close(struct shards *c)
{
	for (int i = 0; i < 256; i++) {
		int fd = atomic_load(&c->fd[i]);
		if (fd >= 0)
			close(fd);
	}
}

static int hex_digit(char c)
{
	return c >= 'a' ? c - 'a' + 10 : c - '0';
}

/* The shard of object hex, opened (and created, if create is set) on first
 * use; -1 with errno set if it cannot be opened. */
static int shard_of(const struct mlx_store *s, struct shards *c, const char *hex, int create)
{
	atomic_int *slot = &c->fd[hex_digit(hex[0]) * 16 + hex_digit(hex[1])];
	int fd = atomic_load(slot);
	if (fd >= 0)
		return fd;
	char sub[3] = {hex[0], hex[1], '\0'};
	fd = open_shard(s, sub);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(s->objects_fd, sub, 0755) != 0 && errno != EEXIST)
			return -1;
		fd = open_shard(s, sub);
	}
	if (fd < 0)
		return -1;
	int none = -1;
	if (!atomic_compare_exchange_strong(slot, &none, fd)) {
		close(fd);
		return none;
	}
	return fd;
}

/* Fills err for a shard of hex that open_shard could not open (errno e):
 * a symlink or a file in its place means the object is not in the store. */
static int shard_failure(const struct mlx_store *s, const char *hex, int e, struct mlx_err *err)
{
	if (e == ELOOP || e == ENOTDIR)
		return mlx_err_set(
		    err, MLX_ERR_NOTFOUND, e,
		    "object %s is not in the store: %s/%.2s is a symbolic link or a file, not a store "
		    "directory, and is never followed (mlx gc removes it)",
		    hex, s->objects, hex);
	return mlx_err_sys(err, e, "cannot open object %s", hex);
}

/* Opens object hex for reading through shard directory dfd: never through
 * a symlink, and only a regular file (O_NONBLOCK: a fifo in its place
 * cannot hang the open). Returns the descriptor, or a failure naming the
 * object: MLX_ERR_NOTFOUND (absent, or a symlink in its place),
 * MLX_ERR_CORRUPT (not a regular file), MLX_ERR_IO. */
static int open_object_stat(const struct mlx_store *s, int dfd, const char *hex, struct stat *st,
                            struct mlx_err *err);

static int open_object_in(const struct mlx_store *s, int dfd, const char *hex, struct mlx_err *err)
{
	struct stat st;
	return open_object_stat(s, dfd, hex, &st, err);
}

/* As open_object_in, with the object's status in *st. */
static int open_object_stat(const struct mlx_store *s, int dfd, const char *hex, struct stat *st,
                            struct mlx_err *err)
{
	int fd = openat(dfd, hex + 2, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ELOOP)
			return mlx_err_set(
			    err, MLX_ERR_NOTFOUND, ELOOP,
			    "object %s is not in the store: %s/%.2s/%s is a symbolic link, never "
			    "followed (mlx gc removes it)",
			    hex, s->objects, hex, hex + 2);
		return mlx_err_sys(err, errno, "cannot open object %s", hex);
	}
	int rc = MLX_OK;
	if (fstat(fd, st) != 0)
		rc = mlx_err_sys(err, errno, "cannot stat object %s", hex);
	else if (!S_ISREG(st->st_mode))
		rc = mlx_err_set(err, MLX_ERR_CORRUPT, 0, "object %s is not a regular file (run mlx fsck)",
		                 hex);
	if (rc != MLX_OK) {
		close(fd);
		return rc;
	}
	return fd;
}

/* As open_object_in, opening the shard for this one object. */
static int open_object(const struct mlx_store *s, const char *hex, struct mlx_err *err)
{
	if (!mlx_hash_is_id(hex))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "'%s' is not an object id (64 hex digits)", hex);
	char sub[3] = {hex[0], hex[1], '\0'};
	int dfd = open_shard(s, sub);
	if (dfd < 0)
		return shard_failure(s, hex, errno, err);
	int fd = open_object_in(s, dfd, hex, err);
	close(dfd);
	return fd;
}

/* 1 and *size if object hex is a regular file in shard dfd, else 0. */
static int object_size_in(int dfd, const char *hex, uint64_t *size)
{
	struct stat st;
	if (dfd < 0 || fstatat(dfd, hex + 2, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
		return 0;
	*size = (uint64_t)st.st_size;
	return 1;
}

int mlx_store_has(const struct mlx_store *s, const char *hex)
{
	if (!mlx_hash_is_id(hex))
		return 0;
	char sub[3] = {hex[0], hex[1], '\0'};
	int dfd = open_shard(s, sub);
	uint64_t size;
	int has = object_size_in(dfd, hex, &size);
	if (dfd >= 0)
		close(dfd);
	return has;
}

void mlx_store_shard_stats(const struct mlx_store *s, struct mlx_store_shard out[MLX_STORE_SHARDS])
{
	static const char digits[] = "0123456789abcdef";
	for (int k = 0; k < MLX_STORE_SHARDS; k++) {
		char sub[3] = {digits[k / 16], digits[k % 16], '\0'};
		struct stat st;
		out[k] = (struct mlx_store_shard){0};
		if (fstatat(s->objects_fd, sub, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISDIR(st.st_mode))
			continue;
		out[k].dev = (uint64_t)st.st_dev;
		out[k].ino = (uint64_t)st.st_ino;
		out[k].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		out[k].ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	}
}

/* ---- staging ------------------------------------------------------------ */

/* A run of temp names that one thread has to itself (see create_temp). */
struct names {
	unsigned next, end;
};

#define NAMES_PER_DIR 256u

/* Creates a new temp file of the batch, named "d/n" into name, where d is
 * n / 256 in hex: a directory per 256 files. Creating tens of thousands of
 * files in one directory is several times slower on ext4, which keeps a
 * directory's files in its block group and must then search other groups
 * for free inodes; but a directory is an inode too, and allocating one
 * costs as much as a file (up to a millisecond on a busy ext4 without a
 * journal, which scans the group's recently freed inodes), so a batch of
 * a thousand objects makes four directories, not 256. A directory is made
 * when its first file finds it missing (threads may race to it: EEXIST is
 * fine). With own (a staging thread's), n comes from a run of 256 names
 * taken at once, so that thread creates in a directory of its own: creates
 * in one directory take its lock in turn, and two threads sharing every
 * directory wait for each other. Without, n is the next single name. */
static int create_temp(struct mlx_store *s, struct names *own, char name[24], int flags)
{
	unsigned n;
	if (own) {
		if (own->next == own->end) {
			own->next = atomic_fetch_add(&s->counter, NAMES_PER_DIR);
			own->end = own->next + NAMES_PER_DIR;
		}
		n = own->next++;
	} else {
		n = atomic_fetch_add(&s->counter, 1);
	}
	snprintf(name, 24, "%x/%u", n / NAMES_PER_DIR, n);
	int fd = openat(s->batch_fd, name, flags | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (fd >= 0 || errno != ENOENT)
		return fd;
	char dir[16];
	snprintf(dir, sizeof dir, "%x", n / NAMES_PER_DIR);
	if (mkdirat(s->batch_fd, dir, 0755) != 0 && errno != EEXIST)
		return -1;
	return openat(s->batch_fd, name, flags | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
}

/* A fetch thread's run of temp names (create_temp), kept from one object
 * to the next: the threads that fetch in parallel then create in
 * directories of their own instead of taking one directory's lock in
 * turn. gen says which batch the run was taken from; any other batch
 * (another store, or one made after a discard) starts a new run. */
static _Thread_local struct {
	unsigned long gen;
	struct names names;
} thread_run;

static struct names *thread_names(struct mlx_store *s)
{
	if (thread_run.gen != s->batch_gen) {
		thread_run.gen = s->batch_gen;
		thread_run.names = (struct names){0, 0};
	}
	return &thread_run.names;
}

/* Makes the batch directory and takes its lock. The directory is made as
 * "new-PID-XXXXXX", locked, then renamed to "put-PID-XXXXXX": another
 * process's clean-up (remove_stale_batches) takes a free lock on a "put-"
 * directory as proof that its owner is gone, so one must never be seen
 * unlocked. */
static int ensure_batch(struct mlx_store *s, struct mlx_err *err)
{
	if (s->batch)
		return MLX_OK;
	char made[PATH_MAX], tmpl[PATH_MAX];
	int n = snprintf(made, sizeof made, "%s/new-%ld-XXXXXX", s->tmp, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof made)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "path too long: %s", s->tmp);
	if (!mkdtemp(made))
		return mlx_err_sys(err, errno, "cannot create a temp directory in %s", s->tmp);
	snprintf(tmpl, sizeof tmpl, "%s/put-%s", s->tmp, made + strlen(s->tmp) + 5);
	char lock[PATH_MAX + sizeof LOCK_NAME];
	snprintf(lock, sizeof lock, "%s/" LOCK_NAME, made);
	int rc = mlx_fs_lock(lock, 0, 0, &s->batch_lock_fd, err);
	if (rc != MLX_OK) {
		unlink(lock);
		rmdir(made);
		return rc;
	}
	/* RENAME_NOREPLACE: a "put-" of the same suffix can only be a stale
	 * one of an earlier process with this pid; never merge into it. */
	if (renameat2(AT_FDCWD, made, AT_FDCWD, tmpl, RENAME_NOREPLACE) != 0) {
		rc = mlx_err_sys(err, errno, "cannot rename %s to %s", made, tmpl);
		unlink(lock);
		rmdir(made);
		mlx_fs_unlock(s->batch_lock_fd);
		s->batch_lock_fd = -1;
		return rc;
	}
	/* Numbered from 1 across the process: 0 is no batch's. */
	static atomic_ulong batches;
	s->batch_gen = atomic_fetch_add(&batches, 1) + 1;
	s->batch_fd = open(tmpl, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (s->batch_fd < 0 || !(s->batch = strdup(tmpl))) {
		rc = mlx_err_sys(err, s->batch_fd < 0 ? errno : ENOMEM, "cannot open %s", tmpl);
		if (s->batch_fd >= 0)
			close(s->batch_fd);
		s->batch_fd = -1;
		snprintf(lock, sizeof lock, "%s/" LOCK_NAME, tmpl);
		unlink(lock);
		rmdir(tmpl);
		mlx_fs_unlock(s->batch_lock_fd);
		s->batch_lock_fd = -1;
	}
	return rc;
}

static int record_staged(struct mlx_store *s, const char *hex, const char *name, uint64_t size,
			 struct mlx_err *err)
{
	int rc = MLX_OK;
	pthread_mutex_lock(&s->lock);
	if (s->nstaged == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct staged *p = realloc(s->staged, cap * sizeof *p);
		if (!p) {
			rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			goto out;
		}
		s->staged = p;
		s->cap = cap;
	}
	struct staged *st = &s->staged[s->nstaged++];
	memcpy(st->hex, hex, MLX_HASH_HEX_SIZE);
	snprintf(st->name, sizeof st->name, "%s", name);
	st->size = size;
out:
	pthread_mutex_unlock(&s->lock);
	return rc;
}

/* Ends the staging of the batch's temp file name, open at out, whose
 * status so far is rc: if it is 0, starts the file's writeback (so the
 * commit's sync finds little left), closes it and records it as object
 * hex of size bytes; otherwise, or if that fails, closes and removes it.
 * Returns the final status; what names the file in messages. */
static int finish_staged(struct mlx_store *s, int out, const char *name, const char *hex, uint64_t size,
			 const char *what, int rc, struct mlx_err *err)
{
	if (rc == MLX_OK) {
		/* Only a large file gains from starting its writeback now; for a
		 * small one the call is an I/O submission of its own (a sixth of
		 * the time of adding many small files), while the commit's sync
		 * writes them all together. */
		if (size >= EARLY_WRITEBACK)
			sync_file_range(out, 0, 0, SYNC_FILE_RANGE_WRITE);
		if (close(out) != 0)
			rc = mlx_err_sys(err, errno, "cannot store %s", what);
		out = -1;
	}
	if (out >= 0)
		close(out);
	if (rc == MLX_OK)
		rc = record_staged(s, hex, name, size, err);
	if (rc != MLX_OK)
		unlinkat(s->batch_fd, name, 0);
	return rc;
}

/* Copies in_fd (a regular file of expect bytes at its fstat) into a new
 * temp file of the batch, named from own, hashing the copy: a reflink when
 * the file system can (then the clone is read back, so the digest is of
 * exactly what was stored), else a read-hash-write loop. */
static int stage_fd(struct mlx_store *s, struct names *own, int in_fd, uint64_t expect, const char *what,
                    char hex[MLX_HASH_HEX_SIZE], uint64_t *size, struct mlx_err *err)
{
	char name[24];
	int out = create_temp(s, own, name, O_RDWR);
	if (out < 0)
		return mlx_err_sys(err, errno, "cannot store %s: cannot create a temp file in %s", what, s->batch);
	int failed_write = 0, rc = MLX_OK;
	if (try_clone(&s->no_clone, out, in_fd)) {
		if (hash_copy(s, out, -1, expect, hex, size, &failed_write) != 0)
			rc = mlx_err_sys(err, errno, "cannot store %s", what);
	} else if (hash_copy(s, in_fd, out, expect, hex, size, &failed_write) != 0) {
		rc = failed_write ? mlx_err_sys(err, errno, "cannot store %s", what)
				  : mlx_err_sys(err, errno, "cannot read %s", what);
	}
	return finish_staged(s, out, name, hex, *size, what, rc, err);
}

struct stage_job {
	struct mlx_store *s;
	const char *dir;
	int dirfd;
	struct mlx_filelist *list;
	struct shards shards; /* to find the objects already stored */
};

static int stage_one(struct stage_job *job, struct names *own, size_t i, struct mlx_err *err)
{
	struct mlx_file *f = &job->list->items[i];
	uint64_t have;
	if (f->hex[0] && object_size_in(shard_of(job->s, &job->shards, f->hex, 0), f->hex, &have) &&
	    have == f->size)
		return MLX_OK;
	char what[PATH_MAX];
	snprintf(what, sizeof what, "%s/%s", job->dir, f->path);
	int64_t started = mlx_hash_now_ns();
	int fd = openat(job->dirfd, f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot open %s", what);
	struct stat st;
	int rc = MLX_OK;
	if (fstat(fd, &st) != 0)
		rc = mlx_err_sys(err, errno, "cannot stat %s", what);
	else if (!S_ISREG(st.st_mode))
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "%s: not a regular file", what);
	else
		rc = stage_fd(job->s, own, fd, (uint64_t)st.st_size, what, f->hex, &f->size, err);
	close(fd);
	if (rc == MLX_OK)
		f->hashed_ns = started;
	return rc;
}

/* One staging thread: the files of a large list go into temp directories
 * of its own. A short list (a pipeline step's outs) takes single names
 * from the shared counter instead: a run of 256 names per call would make,
 * and later remove, a directory for every step's one or two files. */
static int stage_worker(void *vjob, struct mlx_pool *pool, struct mlx_err *err)
{
	struct stage_job *job = vjob;
	struct names own = {0, 0};
	struct names *names = job->list->len >= 2 * NAMES_PER_DIR ? &own : NULL;
	size_t i;
	int rc = MLX_OK;
	while (rc == MLX_OK && mlx_pool_take(pool, &i))
		rc = stage_one(job, names, i, err);
	return rc;
}

int mlx_store_stage_files(struct mlx_store *s, const char *dir, struct mlx_filelist *list, int jobs,
			  struct mlx_err *err)
{
	int rc = ensure_batch(s, err);
	if (rc != MLX_OK)
		return rc;
	struct stage_job job = {.s = s, .dir = dir, .list = list};
	job.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (job.dirfd < 0)
		return mlx_err_sys(err, errno, "cannot open directory %s", dir);
	shards_init(&job.shards);
	rc = mlx_pool_run_workers_progress(list->len, jobs, stage_worker, &job, s->progress, err);
	shards_close(&job.shards);
	close(job.dirfd);
	return rc;
}

int mlx_store_stage_bytes(struct mlx_store *s, const void *data, size_t len, char hex[MLX_HASH_HEX_SIZE],
			  struct mlx_err *err)
{
	int rc = mlx_hash_bytes(data, len, hex, err);
	if (rc != MLX_OK || mlx_store_has(s, hex))
		return rc;
	if ((rc = ensure_batch(s, err)) != MLX_OK)
		return rc;
	char name[24];
	int out = create_temp(s, NULL, name, O_WRONLY);
	if (out < 0)
		return mlx_err_sys(err, errno, "cannot create a temp file in %s", s->batch);
	if (mlx_fs_write_all(out, data, len) != 0)
		rc = mlx_err_sys(err, errno, "cannot store object %.12s", hex);
	if (close(out) != 0 && rc == MLX_OK)
		rc = mlx_err_sys(err, errno, "cannot store object %.12s", hex);
	if (rc == MLX_OK)
		rc = record_staged(s, hex, name, len, err);
	if (rc != MLX_OK)
		unlinkat(s->batch_fd, name, 0);
	return rc;
}

/* Bytes gathered before a write: a manifest comes a line at a time. */
#define WRITER_BUFFER (256u << 10)

struct mlx_store_writer {
	struct mlx_store *s;
	int fd;
	char name[24];
	uint64_t size;
	size_t fill;
	struct mlx_hash_stream hash;
	unsigned char buf[WRITER_BUFFER];
};

int mlx_store_writer_start(struct mlx_store *s, struct mlx_store_writer **out, struct mlx_err *err)
{
	*out = NULL;
	int rc = ensure_batch(s, err);
	if (rc != MLX_OK)
		return rc;
	struct mlx_store_writer *w = malloc(sizeof *w);
	if (!w)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	*w = (struct mlx_store_writer){.s = s};
	if ((rc = mlx_hash_stream_start(&w->hash, err)) != MLX_OK) {
		free(w);
		return rc;
	}
	w->fd = create_temp(s, NULL, w->name, O_WRONLY);
	if (w->fd < 0) {
		rc = mlx_err_sys(err, errno, "cannot create a temp file in %s", s->batch);
		mlx_hash_stream_free(&w->hash);
		free(w);
		return rc;
	}
	*out = w;
	return MLX_OK;
}

/* Hashes and writes what w has gathered. */
static int writer_flush(struct mlx_store_writer *w, struct mlx_err *err)
{
	int rc = mlx_hash_stream_update(&w->hash, w->buf, w->fill, err);
	if (rc == MLX_OK && mlx_fs_write_all(w->fd, w->buf, w->fill) != 0)
		rc = mlx_err_sys(err, errno, "cannot write a temp file in %s", w->s->batch);
	w->size += w->fill;
	w->fill = 0;
	return rc;
}

int mlx_store_writer_write(struct mlx_store_writer *w, const void *data, size_t len, struct mlx_err *err)
{
	const unsigned char *p = data;
	while (len > 0) {
		size_t take = WRITER_BUFFER - w->fill < len ? WRITER_BUFFER - w->fill : len;
		memcpy(w->buf + w->fill, p, take);
		w->fill += take;
		p += take;
		len -= take;
		int rc = w->fill == WRITER_BUFFER ? writer_flush(w, err) : MLX_OK;
		if (rc != MLX_OK)
			return rc;
	}
	return MLX_OK;
}

int mlx_store_writer_finish(struct mlx_store_writer *w, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err)
{
	int rc = writer_flush(w, err);
	if (rc == MLX_OK)
		rc = mlx_hash_stream_finish(&w->hash, hex, err);
	if (rc == MLX_OK && close(w->fd) != 0)
		rc = mlx_err_sys(err, errno, "cannot store object %.12s", hex);
	else if (rc != MLX_OK)
		close(w->fd);
	w->fd = -1;
	/* As mlx_store_stage_bytes: an object already there is not staged. */
	if (rc == MLX_OK && !mlx_store_has(w->s, hex)) {
		if ((rc = record_staged(w->s, hex, w->name, w->size, err)) != MLX_OK)
			unlinkat(w->s->batch_fd, w->name, 0);
	} else {
		unlinkat(w->s->batch_fd, w->name, 0);
	}
	mlx_hash_stream_free(&w->hash);
	free(w);
	return rc;
}

void mlx_store_writer_abort(struct mlx_store_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0)
		close(w->fd);
	unlinkat(w->s->batch_fd, w->name, 0);
	mlx_hash_stream_free(&w->hash);
	free(w);
}

int mlx_store_stage_verified(struct mlx_store *s, const char *hex,
			     int (*fill)(void *ctx, int fd, struct mlx_err *err), void *ctx, uint64_t *size,
			     struct mlx_err *err)
{
	/* The batch is made once, by whichever thread comes first. */
	pthread_mutex_lock(&s->lock);
	int rc = ensure_batch(s, err);
	pthread_mutex_unlock(&s->lock);
	if (rc != MLX_OK)
		return rc;
	char name[24];
	int out = create_temp(s, thread_names(s), name, O_RDWR);
	if (out < 0)
		return mlx_err_sys(err, errno, "cannot create a temp file in %s", s->batch);
	rc = fill(ctx, out, err);
	char got[MLX_HASH_HEX_SIZE];
	int failed_write = 0;
	if (rc == MLX_OK && hash_copy(s, out, -1, UINT64_MAX, got, size, &failed_write) != 0)
		rc = mlx_err_sys(err, errno, "cannot read back object %s", hex);
	if (rc == MLX_OK && strcmp(got, hex) != 0)
		rc = mlx_err_set(err, MLX_ERR_CORRUPT, 0, "object %s is corrupt: its bytes hash to %s", hex, got);
	char what[MLX_HASH_HEX_SIZE + 8];
	snprintf(what, sizeof what, "object %s", hex);
	return finish_staged(s, out, name, hex, *size, what, rc, err);
}

int mlx_store_stage_verified_bytes(struct mlx_store *s, const char *hex, const void *data, size_t len,
                                   struct mlx_err *err)
{
	/* Hashed before anything is written: a corrupt download costs no
	 * file, and a good one is written once, with no read back. */
	char got[MLX_HASH_HEX_SIZE];
	int rc = mlx_hash_bytes(data, len, got, err);
	if (rc != MLX_OK)
		return rc;
	if (strcmp(got, hex) != 0)
		return mlx_err_set(err, MLX_ERR_CORRUPT, 0, "object %s is corrupt: its bytes hash to %s", hex,
		                   got);
	pthread_mutex_lock(&s->lock);
	rc = ensure_batch(s, err);
	pthread_mutex_unlock(&s->lock);
	if (rc != MLX_OK)
		return rc;
	char name[24];
	int out = create_temp(s, thread_names(s), name, O_WRONLY);
	if (out < 0)
		return mlx_err_sys(err, errno, "cannot create a temp file in %s", s->batch);
	char what[MLX_HASH_HEX_SIZE + 8];
	snprintf(what, sizeof what, "object %s", hex);
	if (mlx_fs_write_all(out, data, len) != 0)
		rc = mlx_err_sys(err, errno, "cannot store %s", what);
	return finish_staged(s, out, name, hex, len, what, rc, err);
}

size_t mlx_store_staged(const struct mlx_store *s)
{
	return s->nstaged;
}

/* ---- commit ------------------------------------------------------------- */

struct publish_job {
	struct mlx_store *s;
	const struct staged *items;
	struct shards shards;
};

static int publish_one(void *vjob, size_t i, struct mlx_err *err)
{
	struct publish_job *job = vjob;
	struct mlx_store *s = job->s;
	const struct staged *st = &job->items[i];
	int dfd = shard_of(s, &job->shards, st->hex, 1);
	if (dfd < 0) {
		if (errno == ELOOP || errno == ENOTDIR)
			return mlx_err_set(
			    err, MLX_ERR_IO, errno,
			    "cannot store object %s: %s/%.2s is a symbolic link or a file, not a store "
			    "directory; remove it (mlx gc does)",
			    st->hex, s->objects, st->hex);
		return mlx_err_sys(err, errno, "cannot create %s/%.2s", s->objects, st->hex);
	}
	/* Most objects are new: one rename that refuses to replace, rather
	 * than a lookup of the object (a miss in a large shard) and a rename.
	 * A file system without RENAME_NOREPLACE (EINVAL) is not asked again. */
	if (!atomic_load(&s->no_noreplace)) {
		if (renameat2(s->batch_fd, st->name, dfd, st->hex + 2, RENAME_NOREPLACE) == 0)
			return MLX_OK;
		if (errno == EINVAL)
			atomic_store(&s->no_noreplace, 1);
		else if (errno != EEXIST)
			return mlx_err_sys(err, errno, "cannot move object into %s/%.2s/%s", s->objects,
			                   st->hex, st->hex + 2);
	}
	uint64_t have;
	if (object_size_in(dfd, st->hex, &have) && have == st->size) {
		/* Already there, whole (another file or process stored it). */
		unlinkat(s->batch_fd, st->name, 0);
		return MLX_OK;
	}
	/* Replaces a truncated object, if one was there, or a symlink in its
	 * place (renameat replaces the link itself). */
	if (renameat(s->batch_fd, st->name, dfd, st->hex + 2) != 0)
		return mlx_err_sys(err, errno, "cannot move object into %s/%.2s/%s", s->objects, st->hex,
		                   st->hex + 2);
	return MLX_OK;
}

/* Renames the n staged files of items into objects/. */
static int publish_items(struct mlx_store *s, const struct staged *items, size_t n, struct mlx_err *err)
{
	struct publish_job job = {.s = s, .items = items};
	shards_init(&job.shards);
	int rc = mlx_pool_run(n, 0, publish_one, &job, err);
	shards_close(&job.shards);
	return rc;
}

/* Publishes the n staged files of items before they are durable, after a
 * durable record of them (store_unsynced.c). */
static int commit_deferred(struct mlx_store *s, const struct staged *items, size_t n, struct mlx_err *err)
{
	const char **hexes = malloc((n ? n : 1) * sizeof *hexes);
	if (!hexes)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (size_t i = 0; i < n; i++)
		hexes[i] = items[i].hex;
	char record[PATH_MAX];
	int fd;
	int rc = mlx_store_unsynced_begin(s->unsynced, s->boot, hexes, n, record, sizeof record, &fd, err);
	free(hexes);
	if (rc == MLX_OK) {
		rc = publish_items(s, items, n, err);
		mlx_store_unsynced_end(record, fd, rc == MLX_OK);
	}
	return rc;
}

/* Makes the n staged files of items durable and visible: one sync for
 * their data (and of anything else dirty on that file system: what git's
 * batch mode does with its final fsync, instead of a device flush per
 * object), the renames into objects/, and one sync for the renames, before
 * anyone points at the objects. With deferred, they are published first
 * and made durable by the kernel's writeback (commit_deferred). The syncs
 * also cover the objects of earlier deferred commits of this boot, whose
 * records are then removed. */
static int commit_items(struct mlx_store *s, const struct staged *items, size_t n, int deferred,
			struct mlx_err *err)
{
	if (deferred)
		return commit_deferred(s, items, n, err);
	struct mlx_strlist covered = {0};
	struct mlx_err ignored;
	if (access(s->unsynced, F_OK) == 0)
		mlx_store_unsynced_collect(s->unsynced, store_boot(s), &covered, &ignored);
	int rc = MLX_OK;
	if (syncfs(s->batch_fd) != 0)
		rc = mlx_err_sys(err, errno, "cannot sync %s", s->batch);
	if (rc == MLX_OK)
		rc = publish_items(s, items, n, err);
	if (rc == MLX_OK && syncfs(s->objects_fd) != 0)
		rc = mlx_err_sys(err, errno, "cannot sync %s", s->objects);
	if (rc == MLX_OK)
		mlx_store_unsynced_forget(s->unsynced, &covered);
	mlx_strlist_free(&covered);
	return rc;
}

int mlx_store_commit(struct mlx_store *s, struct mlx_err *err)
{
	/* Objects become visible in the order they were staged. */
	int rc = mlx_store_commit_wait(s, err);
	if (rc != MLX_OK || !s->batch || s->nstaged == 0)
		return rc;
	if ((rc = commit_items(s, s->staged, s->nstaged, s->defer, err)) == MLX_OK)
		s->nstaged = 0;
	return rc;
}

static void *commit_thread(void *vs)
{
	struct mlx_store *s = vs;
	s->bg.rc = commit_items(s, s->bg.items, s->bg.n, s->bg.deferred, &s->bg.err);
	return NULL;
}

int mlx_store_commit_start(struct mlx_store *s, struct mlx_err *err)
{
	int rc = mlx_store_commit_wait(s, err);
	if (rc != MLX_OK || !s->batch || s->nstaged == 0)
		return rc;
	/* The thread takes the staged array; staging goes on into a new one. */
	pthread_mutex_lock(&s->lock);
	s->bg = (struct background_commit){.items = s->staged, .n = s->nstaged, .deferred = s->defer};
	s->staged = NULL;
	s->nstaged = s->cap = 0;
	pthread_mutex_unlock(&s->lock);
	int started = mlx_pool_start_thread(&s->bg.thread, commit_thread, s) == 0;
	s->bg.running = started;
	if (!started) /* no thread: committed here, as mlx_store_commit */
		commit_thread(s);
	return started ? MLX_OK : mlx_store_commit_wait(s, err);
}

int mlx_store_commit_wait(struct mlx_store *s, struct mlx_err *err)
{
	if (!s->bg.items)
		return MLX_OK;
	if (s->bg.running)
		pthread_join(s->bg.thread, NULL);
	int rc = s->bg.rc;
	if (rc != MLX_OK) {
		*err = s->bg.err;
		/* As after a failed mlx_store_commit, what was not moved stays
		 * staged (and is discarded with the batch). */
		for (size_t i = 0; i < s->bg.n; i++) {
			const struct staged *st = &s->bg.items[i];
			struct mlx_err ignored;
			if (record_staged(s, st->hex, st->name, st->size, &ignored) != MLX_OK)
				break;
		}
	}
	free(s->bg.items);
	s->bg = (struct background_commit){0};
	return rc;
}
/* ---- checkout ----------------------------------------------------------- */

struct place_job {
	struct mlx_store *s;
	int dirfd;
	const char *dir; /* dirfd's name in messages */
	struct mlx_filelist *items;
	enum mlx_link link;
	const unsigned char *verified; /* verified[i]: item i's object was just verified */
	int64_t mtime_ns;    /* stamped on copies, or 0 */
	long pid;            /* for temp names */
	atomic_int no_clone; /* the workspace refused a reflink: copy */
	atomic_int no_tmpfile; /* no O_TMPFILE there, or no /proc to link it: temp names */
	atomic_uint counter;
	mode_t umask;         /* the process's, or 0777 if unknown (then every copy is chmod'ed) */
	struct shards shards; /* to open the objects, each shard once */
};

/* What one checkout thread keeps from a file to the next: the directory
 * of the last file placed, open (the files of a window come in path order,
 * so most share it with the one before; reopening it per file was a walk
 * of every component). */
struct place_worker {
	int pfd;               /* -1: none yet */
	char parent[PATH_MAX]; /* its path below the job's dirfd */
};

/* The process's umask, from /proc/self/status (umask(2) cannot read it
 * without changing it for a moment, for every thread); 0777 if unknown. */
static mode_t process_umask(void)
{
	static atomic_int known = -1;
	int m = atomic_load(&known);
	if (m >= 0)
		return (mode_t)m;
	m = 0777;
	FILE *f = fopen("/proc/self/status", "re");
	char line[256];
	while (f && fgets(line, sizeof line, f)) {
		unsigned v;
		if (sscanf(line, "Umask: %o", &v) == 1) {
			m = (int)(v & 0777);
			break;
		}
	}
	if (f)
		fclose(f);
	atomic_store(&known, m);
	return (mode_t)m;
}

static int corrupt(const struct mlx_store *s, const char *hex, const char *dest, struct mlx_err *err)
{
	struct mlx_err qerr;
	int moved = mlx_store_quarantine(s, hex, &qerr) == MLX_OK;
	return mlx_err_set(err, MLX_ERR_CORRUPT, 0,
			   "object %s for %s is corrupt%s; fetch a good copy (mlx pull) or add the file again",
			   hex, dest, moved ? " (moved to .mlx/cache/quarantine/)" : "");
}

/* Copies in (of size bytes, as its fstat said) to out (a reflink already,
 * if cloned) without reading the bytes into memory, setting *size.
 * Returns 1 if done, 0 if the file systems cannot (the caller copies,
 * hashing), -1 with errno set. */
static int copy_trusted(int in, uint64_t in_size, int out, int cloned, uint64_t *size)
{
	*size = in_size;
	if (cloned)
		return 1;
	loff_t off_in = 0, off_out = 0;
	while ((uint64_t)off_in < *size) {
		ssize_t n = copy_file_range(in, &off_in, out, &off_out, *size - (uint64_t)off_in, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && off_in == 0 &&
		    (errno == EXDEV || errno == EINVAL || errno == ENOSYS || errno == EOPNOTSUPP))
			return 0;
		if (n <= 0) {
			if (n == 0)
				errno = EIO; /* shorter than fstat said */
			return -1;
		}
	}
	return 1;
}

/* Sets *pfd to the directory of path below job->dirfd, opened (and made)
 * by the confined walk (path.h: no symlink followed), or kept from the
 * worker's last file when it is the same directory; *name to path's last
 * component. The worker owns *pfd. */
static int place_parent(struct place_job *job, struct place_worker *w, const char *path, int *pfd,
                        const char **name, struct mlx_err *err)
{
	const char *slash = strrchr(path, '/');
	size_t plen = slash ? (size_t)(slash - path) : 0;
	if (w->pfd >= 0 && plen < sizeof w->parent && strlen(w->parent) == plen &&
	    memcmp(w->parent, path, plen) == 0) {
		*pfd = w->pfd;
		*name = slash ? slash + 1 : path;
		return MLX_OK;
	}
	if (w->pfd >= 0)
		close(w->pfd);
	w->pfd = -1;
	int rc = mlx_path_open_parent(job->dirfd, path, 1, pfd, name, err);
	if (rc == MLX_OK && plen < sizeof w->parent) {
		memcpy(w->parent, path, plen);
		w->parent[plen] = '\0';
		w->pfd = *pfd;
	}
	return rc;
}

/* Places one object at its path below job->dirfd: the path was checked
 * (path.h), its parents are opened without following a symlink, and the
 * new file is written beside its target and renamed over it. */
static int place_one(struct place_job *job, struct place_worker *w, size_t i, struct mlx_err *err)
{
	struct mlx_store *s = job->s;
	struct mlx_file *f = &job->items->items[i];
	char dest[PATH_MAX], obj[PATH_MAX], tmp[NAME_MAX + 1];
	snprintf(dest, sizeof dest, "%s%s%s", job->dir, *job->dir ? "/" : "", f->path);
	int rc = mlx_path_check(f->path, strlen(f->path), err);
	if (rc != MLX_OK)
		return rc;
	if ((rc = mlx_store_object_path(s, f->hex, obj, sizeof obj, err)) != MLX_OK)
		return rc;
	int pfd;
	const char *name;
	if ((rc = place_parent(job, w, f->path, &pfd, &name, err)) != MLX_OK)
		return rc;
	snprintf(tmp, sizeof tmp, ".%.200s.mlx-%ld-%u", name, job->pid, atomic_fetch_add(&job->counter, 1));

	/* Never through a symlink in objects/ (open_object_in), each shard
	 * opened once for the whole checkout. */
	struct stat ist;
	int sfd = shard_of(s, &job->shards, f->hex, 0);
	int in =
	    sfd >= 0 ? open_object_stat(s, sfd, f->hex, &ist, err) : shard_failure(s, f->hex, errno, err);
	if (in < 0) {
		if (pfd != w->pfd)
			close(pfd);
		if (in == MLX_ERR_NOTFOUND)
			return mlx_err_set(err, MLX_ERR_NOTFOUND, ENOENT,
					   "object %s for %s is not in the store; fetch it (mlx pull)", f->hex, dest);
		return in;
	}
	enum mlx_link how = job->link;
	int out = -1, failed_write = 0, made = 0, anon = 0;
	char got[MLX_HASH_HEX_SIZE];
	uint64_t size = 0;
	/* An object this process fetched and verified moments ago is copied
	 * without being read back (links are verified all the same). */
	int trusted = job->verified && job->verified[i];
	if (how != MLX_LINK_COPY) {
		/* Verify before linking: a link shares the object's bytes. */
		if (hash_copy(s, in, -1, UINT64_MAX, got, &size, &failed_write) != 0) {
			rc = mlx_err_sys(err, errno, "cannot read %s", obj);
			goto out;
		}
		if (strcmp(got, f->hex) != 0) {
			rc = corrupt(s, f->hex, dest, err);
			goto out;
		}
		/* The link is made to the file opened and verified above. */
		char opened[32];
		snprintf(opened, sizeof opened, "/proc/self/fd/%d", in);
		if (how == MLX_LINK_HARDLINK && linkat(AT_FDCWD, opened, pfd, tmp, AT_SYMLINK_FOLLOW) != 0) {
			if (errno != EXDEV && errno != EMLINK && errno != EPERM && errno != ENOENT) {
				rc = mlx_err_sys(err, errno, "cannot link %s", dest);
				goto out;
			}
			how = MLX_LINK_COPY; /* another file system: copy */
		} else if (how == MLX_LINK_SYMLINK && symlinkat(obj, pfd, tmp) != 0) {
			rc = mlx_err_sys(err, errno, "cannot create symlink %s", dest);
			goto out;
		}
		made = how != MLX_LINK_COPY;
	}
	if (how == MLX_LINK_COPY) {
		/* Created with its mode: a chmod only where the umask takes
		 * bits of it away. */
		mode_t mode = f->mode ? f->mode : 0644;
		/* Written unnamed (O_TMPFILE) and linked at its name once whole:
		 * a kill -9 before then leaves nothing in the workspace, where a
		 * temp name left behind was a local change that the next pull
		 * refused to overwrite; and a new file costs one directory entry,
		 * not a temp entry and a rename. Where the file system has no
		 * O_TMPFILE (or /proc is missing), a temp name and a rename. */
		if (!atomic_load(&job->no_tmpfile)) {
			out = openat(pfd, ".", O_TMPFILE | O_RDWR | O_CLOEXEC, mode);
			if (out < 0 && errno != EMFILE && errno != ENFILE && errno != ENOSPC &&
			    errno != EDQUOT)
				atomic_store(&job->no_tmpfile, 1);
		}
		if (out >= 0) {
			anon = 1;
		} else {
			out = openat(pfd, tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
			if (out < 0) {
				rc = mlx_err_sys(err, errno, "cannot write %s", dest);
				goto out;
			}
			made = 1;
		}
		int cloned = try_clone(&job->no_clone, out, in);
		int copied = trusted ? copy_trusted(in, (uint64_t)ist.st_size, out, cloned, &size) : 0;
		if (copied < 0) {
			rc = mlx_err_sys(err, errno, "cannot write %s", dest);
			goto out;
		}
		if (!copied && hash_copy(s, cloned ? out : in, cloned ? -1 : out, UINT64_MAX, got, &size,
		                         &failed_write) != 0) {
			rc = failed_write ? mlx_err_sys(err, errno, "cannot write %s", dest)
			                  : mlx_err_sys(err, errno, "cannot read %s", obj);
			goto out;
		}
		if (!copied && strcmp(got, f->hex) != 0) {
			rc = corrupt(s, f->hex, dest, err);
			goto out;
		}
		if ((mode & job->umask) && fchmod(out, mode) != 0) {
			rc = mlx_err_sys(err, errno, "cannot set the mode of %s", dest);
			goto out;
		}
		struct timespec times[2] = {{0, UTIME_OMIT},
		                            {job->mtime_ns / 1000000000, job->mtime_ns % 1000000000}};
		if (job->mtime_ns > 0 && futimens(out, times) != 0) {
			rc = mlx_err_sys(err, errno, "cannot set the time of %s", dest);
			goto out;
		}
	}
	int linked = 0;
	if (anon) {
		/* Linked at its name if nothing is there (a fresh checkout);
		 * else under the temp name, to be renamed over what is there. */
		char opened[32];
		snprintf(opened, sizeof opened, "/proc/self/fd/%d", out);
		if (linkat(AT_FDCWD, opened, pfd, name, AT_SYMLINK_FOLLOW) == 0)
			linked = 1;
		else if (errno != EEXIST || linkat(AT_FDCWD, opened, pfd, tmp, AT_SYMLINK_FOLLOW) != 0) {
			rc = mlx_err_sys(err, errno, "cannot write %s", dest);
			goto out;
		} else
			made = 1;
	}
	/* renameat replaces a symlink at the target itself, never what it
	 * points to. */
	if (!linked && renameat(pfd, tmp, pfd, name) != 0) {
		rc = mlx_err_sys(err, errno, "cannot replace %s", dest);
		goto out;
	}
	made = 0;
	/* A copy is stat'ed through its own descriptor: the facts recorded
	 * are those of the file written here, whatever is at the name now. */
	struct stat st;
	if (out >= 0 ? fstat(out, &st) == 0 : fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0) {
		f->ino = (uint64_t)st.st_ino;
		f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
		f->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
		f->size = size;
	}
out:
	if (out >= 0)
		close(out);
	close(in);
	if (made)
		unlinkat(pfd, tmp, 0);
	if (pfd != w->pfd)
		close(pfd);
	return rc;
}

/* One checkout thread: places the files it takes, keeping its last
 * directory open between them. */
static int place_worker_run(void *vjob, struct mlx_pool *pool, struct mlx_err *err)
{
	struct place_job *job = vjob;
	struct place_worker w = {.pfd = -1};
	size_t i;
	int rc = MLX_OK;
	while (rc == MLX_OK && mlx_pool_take(pool, &i))
		rc = place_one(job, &w, i, err);
	if (w.pfd >= 0)
		close(w.pfd);
	return rc;
}

int mlx_store_checkout_at(struct mlx_store *s, int dirfd, const char *dir, struct mlx_filelist *items,
                          enum mlx_link link, const unsigned char *verified, int64_t mtime_ns, int jobs,
                          struct mlx_err *err)
{
	struct place_job job = {.s = s,
	                        .dirfd = dirfd,
	                        .dir = dir,
	                        .items = items,
	                        .link = link,
	                        .verified = verified,
	                        .mtime_ns = mtime_ns,
	                        .pid = (long)getpid(),
	                        .umask = process_umask()};
	atomic_init(&job.counter, 0);
	atomic_init(&job.no_clone, 0);
	/* An unnamed file is linked through /proc/self/fd. */
	atomic_init(&job.no_tmpfile, access("/proc/self/fd", X_OK) != 0);
	shards_init(&job.shards);
	int rc = mlx_pool_run_workers_progress(items->len, jobs, place_worker_run, &job, s->progress, err);
	shards_close(&job.shards);
	return rc;
}

int mlx_store_checkout_files(struct mlx_store *s, const char *dir, struct mlx_filelist *items, enum mlx_link link,
			     int jobs, struct mlx_err *err)
{
	if (mlx_fs_mkdirs(dir, 0755, err) != MLX_OK)
		return err->status;
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot open directory %s", dir);
	int rc = mlx_store_checkout_at(s, fd, dir, items, link, NULL, 0, jobs, err);
	close(fd);
	return rc;
}

/* ---- reading and maintenance ------------------------------------------- */

int mlx_store_read(const struct mlx_store *s, const char *hex, char **data, size_t *len, struct mlx_err *err)
{
	int fd = open_object(s, hex, err);
	if (fd < 0)
		return fd;
	char what[80]; /* hex is an id: open_object checked it */
	snprintf(what, sizeof what, "object %s", hex);
	char *buf;
	size_t size;
	int rc = mlx_fs_read_fd(fd, what, SIZE_MAX, &buf, &size, err);
	close(fd);
	if (rc != MLX_OK)
		return rc;
	/* A file shorter or longer than the object is caught here too. */
	char check[MLX_HASH_HEX_SIZE];
	if ((rc = mlx_hash_bytes(buf, size, check, err)) == MLX_OK && strcmp(check, hex) != 0)
		rc = mlx_err_set(err, MLX_ERR_CORRUPT, 0, "object %s is corrupt (run mlx fsck)", hex);
	if (rc != MLX_OK) {
		free(buf);
		return rc;
	}
	*data = buf;
	*len = size;
	return MLX_OK;
}

int mlx_store_open_object(const struct mlx_store *s, const char *hex, struct mlx_err *err)
{
	return open_object(s, hex, err);
}

int mlx_store_verify(const struct mlx_store *s, const char *hex, struct mlx_err *err)
{
	int fd = open_object(s, hex, err);
	if (fd < 0)
		return fd;
	int rc = MLX_OK;
	char got[MLX_HASH_HEX_SIZE];
	uint64_t size;
	int failed_write;
	if (hash_copy(s, fd, -1, UINT64_MAX, got, &size, &failed_write) != 0)
		rc = mlx_err_sys(err, errno, "cannot read object %s", hex);
	else if (strcmp(got, hex) != 0)
		rc = mlx_err_set(err, MLX_ERR_CORRUPT, 0, "object %s is corrupt: its bytes hash to %s", hex, got);
	close(fd);
	return rc;
}

/* 1 if name is what mlx_store_list gives a symlink in the place of a
 * shard ("ab") or of an object ("ab/cdef…"): never an object id. */
static int link_name(const char *name)
{
	char hex[MLX_HASH_HEX_SIZE];
	size_t n = strlen(name);
	if (n == 2) {
		snprintf(hex, sizeof hex, "%s%062d", name, 0);
		return mlx_hash_is_id(hex);
	}
	if (n != 65 || name[2] != '/')
		return 0;
	memcpy(hex, name, 2);
	memcpy(hex + 2, name + 3, 63);
	return mlx_hash_is_id(hex);
}

/* Removes the symlink name (link_name) itself, never what it points to;
 * anything else in its place is left. */
static int remove_link(const struct mlx_store *s, const char *name, struct mlx_err *err)
{
	int dfd = s->objects_fd;
	const char *entry = name;
	if (name[2] == '/') {
		char sub[3] = {name[0], name[1], '\0'};
		if ((dfd = open_shard(s, sub)) < 0)
			return errno == ENOENT
			           ? MLX_OK
			           : mlx_err_sys(err, errno, "cannot open %s/%s", s->objects, sub);
		entry = name + 3;
	}
	struct stat st;
	int rc = MLX_OK;
	if (fstatat(dfd, entry, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno != ENOENT)
			rc = mlx_err_sys(err, errno, "cannot stat %s/%s", s->objects, name);
	} else if (!S_ISLNK(st.st_mode)) {
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "%s/%s is not a symbolic link; left in place",
		                 s->objects, name);
	} else if (unlinkat(dfd, entry, 0) != 0 && errno != ENOENT) {
		rc = mlx_err_sys(err, errno, "cannot remove the symbolic link %s/%s", s->objects, name);
	}
	if (dfd != s->objects_fd)
		close(dfd);
	return rc;
}

int mlx_store_remove(const struct mlx_store *s, const char *hex, struct mlx_err *err)
{
	if (link_name(hex))
		return remove_link(s, hex, err);
	if (!mlx_hash_is_id(hex))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "'%s' is not an object id (64 hex digits)", hex);
	char sub[3] = {hex[0], hex[1], '\0'};
	int dfd = open_shard(s, sub);
	if (dfd < 0)
		return errno == ENOENT ? MLX_OK : shard_failure(s, hex, errno, err);
	int rc = MLX_OK;
	/* unlinkat removes a symlink in the object's place itself. */
	if (unlinkat(dfd, hex + 2, 0) != 0 && errno != ENOENT)
		rc = mlx_err_sys(err, errno, "cannot remove object %s", hex);
	close(dfd);
	return rc;
}

int mlx_store_quarantine(const struct mlx_store *s, const char *hex, struct mlx_err *err)
{
	if (!mlx_hash_is_id(hex))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "'%s' is not an object id (64 hex digits)", hex);
	int rc = mlx_fs_mkdirs(s->quarantine, 0755, err);
	if (rc != MLX_OK)
		return rc;
	char sub[3] = {hex[0], hex[1], '\0'};
	int dfd = open_shard(s, sub);
	if (dfd < 0)
		return shard_failure(s, hex, errno, err);
	/* Not into a directory a symlink in quarantine's place points to. */
	int qfd = open(s->quarantine, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (qfd < 0) {
		rc = mlx_err_sys(err, errno, "cannot open %s", s->quarantine);
		close(dfd);
		return rc;
	}
	/* A second bad copy of the same id keeps the first for inspection.
	 * The entry itself is moved: a symlink, not what it points to. */
	char to[MLX_HASH_HEX_SIZE + 8];
	rc = MLX_ERR_IO;
	for (int n = 0; n < 1000 && rc != MLX_OK; n++) {
		if (n == 0)
			snprintf(to, sizeof to, "%s", hex);
		else
			snprintf(to, sizeof to, "%s.%d", hex, n);
		if (renameat2(dfd, hex + 2, qfd, to, RENAME_NOREPLACE) == 0)
			rc = MLX_OK;
		else if (errno != EEXIST)
			break;
	}
	if (rc != MLX_OK)
		rc = mlx_err_sys(err, errno, "cannot move object %s to %s", hex, s->quarantine);
	close(qfd);
	close(dfd);
	return rc;
}

/* Appends the objects of shard sub (open at dfd) to out, and the symlinks
 * in the place of an object as "ab/cdef…". */
static int list_shard(const char *sub, int dfd, struct mlx_filelist *out, struct mlx_err *err)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return MLX_OK;
	}
	int rc = MLX_OK;
	struct dirent *ent;
	while (rc == MLX_OK && (ent = readdir(d)) != NULL) {
		char hex[MLX_HASH_HEX_SIZE], name[67];
		if (strlen(ent->d_name) != 62)
			continue;
		memcpy(hex, sub, 2);
		memcpy(hex + 2, ent->d_name, 63); /* 62 digits and the NUL */
		struct stat st;
		if (!mlx_hash_is_id(hex) || fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue;
		if (S_ISREG(st.st_mode)) {
			rc = mlx_filelist_push(out, hex, (uint64_t)st.st_size, 0444, NULL, err);
		} else if (S_ISLNK(st.st_mode)) {
			object_name(hex, name);
			rc = mlx_filelist_push(out, name, 0, 0, NULL, err);
		}
	}
	closedir(d);
	return rc;
}

int mlx_store_list(const struct mlx_store *s, struct mlx_filelist *out, struct mlx_err *err)
{
	/* A descriptor of its own: readdir on objects_fd would move an offset
	 * that other threads' walks share. */
	int fd = openat(s->objects_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	if (!d) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return mlx_err_sys(err, e, "cannot list %s", s->objects);
	}
	int rc = MLX_OK;
	struct dirent *ent;
	while (rc == MLX_OK && (ent = readdir(d)) != NULL) {
		const char *sub = ent->d_name;
		if (!link_name(sub))
			continue;
		int dfd = open_shard(s, sub);
		if (dfd >= 0) {
			rc = list_shard(sub, dfd, out, err);
			continue;
		}
		struct stat st;
		if (fstatat(s->objects_fd, sub, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
			rc = mlx_filelist_push(out, sub, 0, 0, NULL, err);
	}
	closedir(d);
	if (rc != MLX_OK) {
		mlx_filelist_free(out);
		return rc;
	}
	mlx_filelist_sort(out);
	return MLX_OK;
}

struct check_job {
	const struct mlx_store *s;
	struct mlx_filelist *list;
	struct shards shards;
};

static int check_one(void *vjob, size_t i, struct mlx_err *err)
{
	(void)err;
	struct check_job *job = vjob;
	struct mlx_file *f = &job->list->items[i];
	char hex[MLX_HASH_HEX_SIZE];
	snprintf(hex, sizeof hex, "%s", f->path);
	f->hex[0] = '\0';
	/* A symlink's entry (not an id) is never opened. */
	if (!mlx_hash_is_id(hex))
		return MLX_OK;
	int dfd = shard_of(job->s, &job->shards, hex, 0);
	int fd = dfd >= 0 ? open_object_in(job->s, dfd, hex, NULL) : -1;
	if (fd < 0)
		return MLX_OK;
	uint64_t size;
	int failed_write;
	if (hash_copy(job->s, fd, -1, UINT64_MAX, f->hex, &size, &failed_write) != 0)
		f->hex[0] = '\0';
	else
		f->size = size;
	close(fd);
	return MLX_OK;
}

int mlx_store_check(const struct mlx_store *s, struct mlx_filelist *list, int jobs, struct mlx_err *err)
{
	struct check_job job = {.s = s, .list = list};
	shards_init(&job.shards);
	int rc = mlx_pool_run_progress(list->len, jobs, check_one, &job, s->progress, err);
	shards_close(&job.shards);
	return rc;
}

static int valid_identifier(const char *s)
{
	if (!*s)
		return 0;
	for (const char *p = s; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || *p == '_' ||
		      (p > s && *p >= '0' && *p <= '9')))
			return 0;
	return 1;
}

int mlx_store_db_ids(const char *db_path, const char *table, const char *column, struct mlx_strlist *out,
		     int *found, struct mlx_err *err)
{
	*found = 0;
	if (!valid_identifier(table) || !valid_identifier(column))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "bad table or column name %s.%s", table, column);
	if (access(db_path, F_OK) != 0)
		return MLX_OK;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc = MLX_OK;
	if (sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 10000);
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2", -1, &st, NULL) != SQLITE_OK)
		goto fail;
	sqlite3_bind_text(st, 1, table, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, column, -1, SQLITE_STATIC);
	int s = sqlite3_step(st);
	sqlite3_finalize(st);
	st = NULL;
	if (s == SQLITE_DONE)
		goto out; /* no such table or column: nothing is registered */
	if (s != SQLITE_ROW)
		goto fail;
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT DISTINCT \"%s\" FROM \"%s\"", column, table);
	if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) != SQLITE_OK)
		goto fail;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *v = (const char *)sqlite3_column_text(st, 0);
		if (v && mlx_hash_is_id(v) && (rc = mlx_strlist_push(out, v, err)) != MLX_OK)
			goto out;
	}
	if (s != SQLITE_DONE)
		goto fail;
	*found = 1;
	goto out;
fail:
	rc = mlx_err_set(err, MLX_ERR_IO, 0, "cannot read %s: %s", db_path, db ? sqlite3_errmsg(db) : "out of memory");
out:
	sqlite3_finalize(st);
	sqlite3_close(db);
	return rc;
}
