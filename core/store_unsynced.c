/* store_unsynced.c — objects published before they are durable, and their
 * check after the machine restarted.
 *
 * A fetch publishes the objects it downloaded without waiting for the disk
 * (mlx_store_defer_durability): they can be fetched again, and waiting for
 * 700 MB to reach the disk was most of a pull's time. Before such a commit
 * renames anything into objects/, it makes durable a record naming its
 * objects, in .mlx/cache/unsynced/:
 *
 *   <boot id>.<pid>.<n>.open   the commit is renaming its objects
 *   <boot id>.<pid>.<n>        it has renamed them all
 *
 * (<n> random: a record must never replace another process's).
 *
 * Within one boot of the kernel, an object that was renamed has its bytes
 * in the page cache or on the disk, whatever happens to the process: a
 * kill -9 loses nothing. Only a crash of the machine can leave an object
 * whose name no longer matches its bytes, and then the boot id differs:
 * mlx_store_unsynced_recover, run by every mlx_store_open, hashes each
 * object of such a record, moves a damaged one to quarantine/, syncs, and
 * removes the record. A record of this boot is removed by the next
 * durable commit of any process once its sync has covered the record's
 * objects (a finished record, or one that no commit holds any more: each
 * commit holds its record with flock while it renames). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool.h"
#include "store_internal.h"

#define HEADER "mlx unsynced objects 1\n"
#define OPEN_SUFFIX ".open"
#define MAX_RECORD (512u << 20)
/* Seconds after which a temp record nobody holds is a dead writer's (its
 * writer locks it microseconds after creating it). */
#define TEMP_RECORD_AGE 60

void mlx_store_boot_id(char out[MLX_STORE_BOOT_ID_SIZE])
{
	out[0] = '\0';
	int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = read(fd, out, MLX_STORE_BOOT_ID_SIZE - 1);
	close(fd);
	out[n > 0 ? n : 0] = '\0';
	out[strcspn(out, "\n")] = '\0';
	/* Only what can be part of a file name: a UUID's digits and dashes. */
	for (char *p = out; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f') || *p == '-')) {
			out[0] = '\0';
			return;
		}
}

/* Copies the boot id of a record's name "[.]<boot>.<pid>.<n>[.open][.tmp]"
 * into boot; 0 if the name is not one of a record. The pid only keeps
 * names apart: whether a record's writer is gone is told by its flock. */
static int parse_name(const char *name, char boot[MLX_STORE_BOOT_ID_SIZE])
{
	if (name[0] == '.')
		name++;
	const char *dot = strchr(name, '.');
	if (!dot || dot == name || (size_t)(dot - name) >= MLX_STORE_BOOT_ID_SIZE)
		return 0;
	memcpy(boot, name, (size_t)(dot - name));
	boot[dot - name] = '\0';
	char *end;
	long p = strtol(dot + 1, &end, 10);
	return end != dot + 1 && *end == '.' && p > 0;
}

static int ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);
	return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A number for a record's name that no other process picks: the pid alone
 * is not unique (pid namespaces, a container's mlx is pid 1 at every run;
 * pids are reused), and a record renamed over another's loses the objects
 * that one names. */
static unsigned long long record_number(void)
{
	unsigned long long k;
	if (getrandom(&k, sizeof k, GRND_NONBLOCK) == (ssize_t)sizeof k)
		return k;
	/* Before the kernel's pool is ready (early boot): the clock, which
	 * differs between two records of one pid. rename_noreplace guards the
	 * rest. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + (unsigned long long)ts.tv_nsec;
}

/* Renames from to to unless to exists: 0, or -1 with errno (EEXIST). On a
 * file system without RENAME_NOREPLACE, link(2), which never replaces. */
static int rename_noreplace(const char *from, const char *to)
{
	if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
		return 0;
	if (errno != EINVAL && errno != ENOSYS)
		return -1;
	if (link(from, to) != 0)
		return -1;
	unlink(from);
	return 0;
}

int mlx_store_unsynced_begin(const char *dir, const char *boot, const char *const *hexes, size_t n,
                             char *name, size_t name_size, int *fd, struct mlx_err *err)
{
	*fd = -1;
	int rc = mlx_fs_mkdirs(dir, 0755, err);
	if (rc != MLX_OK)
		return rc;
	size_t size = sizeof HEADER - 1 + n * MLX_HASH_HEX_SIZE;
	char *text = malloc(size);
	if (!text)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	memcpy(text, HEADER, sizeof HEADER - 1);
	char *p = text + sizeof HEADER - 1;
	for (size_t i = 0; i < n; i++) {
		memcpy(p, hexes[i], MLX_HASH_HEX_SIZE - 1);
		p[MLX_HASH_HEX_SIZE - 1] = '\n';
		p += MLX_HASH_HEX_SIZE;
	}
	/* Held (shared) until the commit has renamed its objects: a lock that
	 * another process can take proves the commit over, in any pid
	 * namespace. Temp file, fsync, rename (never over another record),
	 * directory fsync: the record is on the disk before any of its
	 * objects is renamed. */
	int out = -1;
	char tmp[PATH_MAX];
	for (int attempt = 0; rc == MLX_OK && attempt < 8; attempt++) {
		unsigned long long k = record_number();
		int len =
		    snprintf(name, name_size, "%s/%s.%ld.%llu" OPEN_SUFFIX, dir, boot, (long)getpid(), k);
		int tlen = snprintf(tmp, sizeof tmp, "%s/.%s.%ld.%llu.tmp", dir, boot, (long)getpid(), k);
		if (len < 0 || (size_t)len >= name_size || tlen < 0 || (size_t)tlen >= sizeof tmp) {
			rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "path too long: %s", dir);
			break;
		}
		out = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
		if (out < 0 && errno == EEXIST)
			continue;
		if (out < 0)
			rc = mlx_err_sys(err, errno, "cannot create %s", tmp);
		else if (flock(out, LOCK_SH) != 0)
			rc = mlx_err_sys(err, errno, "cannot lock %s", tmp);
		else if (mlx_fs_write_all(out, text, size) != 0)
			rc = mlx_err_sys(err, errno, "cannot write %s", tmp);
		else if (fsync(out) != 0)
			rc = mlx_err_sys(err, errno, "cannot sync %s", tmp);
		else if (rename_noreplace(tmp, name) == 0)
			break;
		else if (errno != EEXIST)
			rc = mlx_err_sys(err, errno, "cannot rename %s", tmp);
		if (out >= 0) {
			unlink(tmp);
			close(out);
			out = -1;
		}
	}
	if (rc == MLX_OK && out < 0)
		rc =
		    mlx_err_set(err, MLX_ERR_IO, EEXIST, "cannot name a record in %s: every name taken", dir);
	if (rc == MLX_OK)
		rc = mlx_fs_sync_parent(name, err);
	free(text);
	if (rc != MLX_OK) {
		if (out >= 0) {
			unlink(name);
			close(out);
		}
		return rc;
	}
	*fd = out;
	return MLX_OK;
}

void mlx_store_unsynced_end(const char *name, int fd, int finished)
{
	/* Not synced: after a crash the record is still ".open", and its
	 * objects are checked all the same. */
	char done[PATH_MAX];
	size_t n = strlen(name) - (sizeof OPEN_SUFFIX - 1);
	if (finished && n < sizeof done) {
		memcpy(done, name, n);
		done[n] = '\0';
		/* Never over another record; left ".open" (and free) it is
		 * treated the same. */
		rename_noreplace(name, done);
	}
	close(fd);
}

/* Whether the entry ent of d is a regular file, as every record is. Any
 * other kind (a symlink, a directory, a fifo) was not made by mlx: it is
 * never opened or followed, and never taken for a record. */
static int regular_entry(DIR *d, const struct dirent *ent)
{
	if (ent->d_type != DT_UNKNOWN)
		return ent->d_type == DT_REG;
	struct stat st;
	return fstatat(dirfd(d), ent->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* Opens the record dfd/name for reading: never through a symlink, and
 * only a regular file (O_NONBLOCK: a fifo in its place cannot hang the
 * open). Returns the fd, or -1 with errno (ELOOP, EINVAL: not a file). */
static int open_record(int dfd, const char *name)
{
	int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		errno = EINVAL;
		return -1;
	}
	return fd;
}

/* Whether the record dir/name is held by no commit: its lock is free. A
 * temp record is created before its writer can lock it, so a free one is
 * its dead writer's only once it is older than that moment can be:
 * removing a live writer's would fail its commit. */
static int record_free(DIR *d, const char *name)
{
	int fd = open_record(dirfd(d), name);
	if (fd < 0)
		return 0;
	struct stat st;
	int free_ = flock(fd, LOCK_EX | LOCK_NB) == 0;
	if (free_ && name[0] == '.')
		free_ = fstat(fd, &st) == 0 && st.st_mtime < time(NULL) - TEMP_RECORD_AGE;
	close(fd);
	return free_;
}

int mlx_store_unsynced_collect(const char *dir, const char *boot, struct mlx_strlist *names,
                               struct mlx_err *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT ? MLX_OK : mlx_err_sys(err, errno, "cannot read %s", dir);
	int rc = MLX_OK;
	struct dirent *ent;
	while (rc == MLX_OK && (ent = readdir(d)) != NULL) {
		char rboot[MLX_STORE_BOOT_ID_SIZE];
		if (!parse_name(ent->d_name, rboot) || strcmp(rboot, boot) != 0)
			continue; /* another boot's: mlx_store_unsynced_recover's */
		if (!regular_entry(d, ent))
			continue;
		/* A record still being written or whose objects are still being
		 * renamed is left, unless no commit holds it (its process is
		 * gone): then every rename it made happened before the sync that
		 * follows. */
		int busy = ent->d_name[0] == '.' || ends_with(ent->d_name, OPEN_SUFFIX);
		if (busy && !record_free(d, ent->d_name))
			continue;
		rc = mlx_strlist_push(names, ent->d_name, err);
	}
	closedir(d);
	return rc;
}

void mlx_store_unsynced_forget(const char *dir, const struct mlx_strlist *names)
{
	if (names->len == 0)
		return;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return;
	for (size_t i = 0; i < names->len; i++)
		unlinkat(dfd, names->items[i], 0);
	close(dfd);
}

/* The objects of one record, checked in parallel (a pull's record names
 * up to 4,096 objects, each hashed whole). */
struct check_job {
	struct mlx_store *s;
	const char *text; /* the record's lines, MLX_HASH_HEX_SIZE bytes each */
	atomic_size_t damaged;
};

static int check_line(void *vjob, size_t i, struct mlx_err *err)
{
	struct check_job *job = vjob;
	char hex[MLX_HASH_HEX_SIZE];
	memcpy(hex, job->text + i * MLX_HASH_HEX_SIZE, MLX_HASH_HEX_SIZE - 1);
	hex[MLX_HASH_HEX_SIZE - 1] = '\0';
	if (!mlx_hash_is_id(hex))
		return MLX_OK; /* a torn or foreign line names no object */
	struct mlx_err why;
	int rc = mlx_store_verify(job->s, hex, &why);
	if (rc == MLX_ERR_CORRUPT) {
		/* Another process checking a record of the same object may
		 * have moved it first: then it is that one's to count. */
		rc = mlx_store_quarantine(job->s, hex, &why);
		if (rc == MLX_OK)
			atomic_fetch_add(&job->damaged, 1);
	}
	/* Not in the store (collected by gc, never renamed, or a symlink in
	 * its place, which is never read and which gc removes): nothing to
	 * check. */
	if (rc != MLX_OK && rc != MLX_ERR_NOTFOUND) {
		*err = why;
		return rc;
	}
	return MLX_OK;
}

/* Fails with a record of another boot that cannot be read: it may name
 * objects that are damaged, which nothing else would find. */
static int unreadable_record(const char *dir, const char *name, const char *why, struct mlx_err *err)
{
	return mlx_err_set(
	    err, MLX_ERR_INVALID, 0,
	    "%s/%s: %s; a record there names objects fetched before the machine restarted, which "
	    "mlx checks before using the store: make it readable, or remove it and run 'mlx fsck' "
	    "(which checks every object)",
	    dir, name, why);
}

/* Checks every object named by the record at dfd/name (of another boot):
 * a damaged one goes to quarantine and counts in *damaged; a missing one
 * (collected by gc, or never renamed) is skipped. */
static int check_record(struct mlx_store *s, const char *dir, int dfd, const char *name, size_t *damaged,
                        struct mlx_err *err)
{
	int fd = open_record(dfd, name);
	if (fd < 0) {
		if (errno == ENOENT || errno == ELOOP || errno == EINVAL)
			return MLX_OK; /* gone, or not a record (regular_entry) */
		return unreadable_record(dir, name, strerror(errno), err);
	}
	/* Two processes starting after the restart check a record once: the
	 * second finds it removed (no links left) when it gets the lock. */
	struct stat st;
	int rc = MLX_OK;
	if (flock(fd, LOCK_EX) != 0 || fstat(fd, &st) != 0) {
		rc = mlx_err_sys(err, errno, "cannot lock %s/%s", dir, name);
		close(fd);
		return rc;
	}
	if (st.st_nlink == 0) {
		close(fd);
		return MLX_OK;
	}
	char *text = NULL;
	size_t len = 0;
	/* A temp record never got to its rename: nothing of it was renamed. A
	 * renamed one was synced whole first, so it starts with the header;
	 * without it the file is not a record this mlx can read (another
	 * version's, or not mlx's), and is never taken as naming nothing. */
	if (name[0] != '.') {
		struct mlx_err why;
		if (mlx_fs_read_fd(fd, "the record", MAX_RECORD, &text, &len, &why) != MLX_OK)
			rc = unreadable_record(dir, name, why.msg, err);
		else if (len < sizeof HEADER - 1 || memcmp(text, HEADER, sizeof HEADER - 1) != 0)
			rc = unreadable_record(
			    dir, name, "not a record of fetched objects (no 'mlx unsynced objects 1' line)",
			    err);
	}
	if (rc == MLX_OK && text) {
		struct check_job job = {.s = s, .text = text + sizeof HEADER - 1};
		atomic_init(&job.damaged, 0);
		rc = mlx_pool_run((len - (sizeof HEADER - 1)) / MLX_HASH_HEX_SIZE, 0, check_line, &job, err);
		*damaged += atomic_load(&job.damaged);
	}
	free(text);
	if (rc == MLX_OK && syncfs(fd) != 0)
		rc = mlx_err_sys(err, errno, "cannot sync the store");
	if (rc == MLX_OK)
		unlinkat(dfd, name, 0);
	close(fd);
	return rc;
}

int mlx_store_unsynced_recover(struct mlx_store *s, const char *dir, const char *boot, size_t *damaged,
                               struct mlx_err *err)
{
	*damaged = 0;
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno == ENOENT ? MLX_OK : mlx_err_sys(err, errno, "cannot open %s", dir);
	DIR *d = fdopendir(dup(dfd));
	if (!d) {
		close(dfd);
		return mlx_err_sys(err, errno, "cannot read %s", dir);
	}
	struct mlx_strlist other = {0};
	int rc = MLX_OK;
	struct dirent *ent;
	while (rc == MLX_OK && (ent = readdir(d)) != NULL) {
		char rboot[MLX_STORE_BOOT_ID_SIZE];
		/* Without a boot id of its own (no /proc), every record is
		 * treated as another boot's: checked, never trusted. */
		if (parse_name(ent->d_name, rboot) && (!boot[0] || strcmp(rboot, boot) != 0) &&
		    regular_entry(d, ent))
			rc = mlx_strlist_push(&other, ent->d_name, err);
	}
	closedir(d);
	for (size_t i = 0; rc == MLX_OK && i < other.len; i++)
		rc = check_record(s, dir, dfd, other.items[i], damaged, err);
	mlx_strlist_free(&other);
	close(dfd);
	return rc;
}
