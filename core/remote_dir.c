/* remote_dir.c — a remote that is a directory: a plain path or file://,
 * typically a shared mount (NFS, SMB) or a local disk.
 *
 * A key is a file below the root. An upload is written to a temp name in
 * the key's own directory and renamed over the key: rename within one
 * directory is atomic on local file systems and on NFS, where readers on
 * other clients see the old name or the whole new file, never a part. The
 * temp name carries the host, pid and thread, so writers on several machines
 * never share one. Copies use a reflink where the file system has them,
 * else copy_file_range (server-side copy on NFS 4.2), else read and write.
 * Nothing below the root is reached through a symlink. */
#include "path.h"
#include "remote.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <linux/openat2.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define COPY_CHUNK (256u << 10)
/* Bytes per copy_file_range call: small enough that a cancel is seen
 * within a fraction of a second, even on a slow NFS mount. */
#define RANGE_CHUNK (8u << 20)

struct dir_remote {
	char *name; /* for messages */
	char *root;
	int root_fd;              /* -1 until the root exists (a first put makes it) */
	char host[64];            /* for temp names, '/' and '.' replaced */
	unsigned counter;         /* of temp names; an instance serves one thread */
	int no_clone;             /* FICLONE failed as unsupported: not asked again */
	const atomic_int *cancel; /* config.cancel, or NULL */
};

static int dir_accepts(const char *url)
{
	return url[0] == '/' || strncmp(url, "file://", 7) == 0;
}

/* A key is ours to make into a path only when it is plain: components of
 * [A-Za-z0-9._-], none empty, "." or "..", and none starting with '.'
 * (where temp names live). */
static int key_ok(const char *key)
{
	if (!*key || strlen(key) > 1024)
		return 0;
	const char *p = key;
	while (*p) {
		const char *c = p;
		if (*c == '.')
			return 0;
		while (*p && *p != '/') {
			char ch = *p;
			if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
			      (ch >= '0' && ch <= '9') || ch == '.' || ch == '_' || ch == '-'))
				return 0;
			p++;
		}
		if (p == c)
			return 0;
		if (*p == '/' && !p[1])
			return 0;
		if (*p == '/')
			p++;
	}
	return 1;
}

static int bad_key(const struct dir_remote *d, const char *key, struct mlx_err *err)
{
	return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: refused key '%.200s'", d->name, key);
}

static int dir_open(const struct mlx_remote_config *config, void **state, struct mlx_err *err)
{
	*state = NULL;
	const char *path = config->url;
	if (strncmp(path, "file://", 7) == 0)
		path += 7;
	if (path[0] != '/')
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: '%s' is not an absolute path",
		                   config->name, config->url);
	if (config->options)
		for (size_t i = 0; i + 1 < config->options->len; i += 2)
			if (strcmp(config->options->items[i], "timeout_ms") != 0)
				return mlx_err_set(
				    err, MLX_ERR_INVALID, 0,
				    "remote %s: unknown option '%s' for the directory backend (it has "
				    "timeout_ms)",
				    config->name, config->options->items[i]);
	struct dir_remote *d = calloc(1, sizeof *d);
	if (!d || !(d->name = strdup(config->name ? config->name : path)) || !(d->root = strdup(path))) {
		if (d)
			free(d->name);
		free(d);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	size_t n = strlen(d->root);
	while (n > 1 && d->root[n - 1] == '/')
		d->root[--n] = 0;
	d->root_fd = open(d->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (gethostname(d->host, sizeof d->host - 1) != 0)
		snprintf(d->host, sizeof d->host, "host");
	for (char *h = d->host; *h; h++)
		if (*h == '/' || *h == '.')
			*h = '_';
	d->cancel = config->cancel;
	*state = d;
	return MLX_OK;
}

static void dir_close(void *state)
{
	struct dir_remote *d = state;
	if (!d)
		return;
	if (d->root_fd >= 0)
		close(d->root_fd);
	free(d->name);
	free(d->root);
	free(d);
}

static int need_root(struct dir_remote *d, int create, struct mlx_err *err)
{
	if (d->root_fd >= 0)
		return MLX_OK;
	struct mlx_err mk;
	int e = 0;
	if (create && mlx_fs_mkdirs(d->root, 0755, &mk) != MLX_OK)
		e = mk.sys_errno ? mk.sys_errno : EIO;
	if (e == 0 && (d->root_fd = open(d->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
		e = errno;
	if (e == 0)
		return MLX_OK;
	/* A file in the way or a directory we may not write is the URL's
	 * fault, not the transport's: no retry fixes it (exit 2, not 1). */
	if (e == ENOTDIR || e == EEXIST)
		return mlx_err_set(
		    err, MLX_ERR_INVALID, e,
		    "remote %s: %s is not a directory (a file is in the way); point the remote at a "
		    "directory: mlx remote add --force %s DIR",
		    d->name, d->root, d->name);
	if (e == EACCES || e == EPERM || e == EROFS)
		return mlx_err_set(err, MLX_ERR_INVALID, e, "remote %s: cannot %s %s: %s", d->name,
		                   create ? "create" : "open", d->root, strerror(e));
	return mlx_err_set(err, e == ENOENT ? MLX_ERR_NOTFOUND : MLX_ERR_IO, e,
	                   "remote %s: cannot open %s: %s", d->name, d->root, strerror(e));
}

/* Opens the directory of key (its components up to the last '/') with
 * core/path.c's confined walk, which never follows a symlink, creating
 * missing ones if create. Sets *base to the last component. Returns a
 * descriptor or -1 with errno set: ENOENT for a missing component, ELOOP
 * for a symlink or non-directory in the way. */
static int open_parent(struct dir_remote *d, const char *key, int create, const char **base)
{
	struct mlx_err e;
	int fd = -1;
	int rc = mlx_path_open_parent(d->root_fd, key, create, &fd, base, &e);
	if (rc == MLX_OK)
		return fd;
	errno = rc == MLX_ERR_NOTFOUND ? ENOENT : rc == MLX_ERR_INVALID ? ELOOP : (e.sys_errno ? e.sys_errno : EIO);
	return -1;
}

static int dir_stat(void *state, const char *key, uint64_t *size, struct mlx_err *err)
{
	struct dir_remote *d = state;
	if (!key_ok(key))
		return bad_key(d, key, err);
	int nr = d->root_fd < 0 ? need_root(d, 0, err) : MLX_OK;
	if (nr != MLX_OK && nr != MLX_ERR_NOTFOUND)
		return nr; /* a file in the way, a directory we may not read */
	if (nr != MLX_OK)
		return mlx_err_set(err, MLX_ERR_NOTFOUND, ENOENT, "remote %s: %s not found", d->name, key);
	const char *base;
	int dfd = open_parent(d, key, 0, &base);
	struct stat st;
	int rc = dfd >= 0 ? fstatat(dfd, base, &st, AT_SYMLINK_NOFOLLOW) : -1;
	int e = errno;
	if (dfd >= 0)
		close(dfd);
	if (rc != 0 && (e == ENOENT || e == ENOTDIR || e == ELOOP))
		return mlx_err_set(err, MLX_ERR_NOTFOUND, e, "remote %s: %s not found", d->name, key);
	if (rc != 0)
		return mlx_err_sys(err, e, "remote %s: cannot stat %s", d->name, key);
	if (!S_ISREG(st.st_mode))
		return mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "remote %s: %s is not a regular file", d->name,
		                   key);
	*size = (uint64_t)st.st_size;
	return MLX_OK;
}

static int cancelled(const atomic_int *cancel)
{
	return cancel && atomic_load_explicit(cancel, memory_order_relaxed);
}

/* Copies all of in (from offset 0; size bytes, as fstat said, or 0: to
 * its end) to out (at its offset 0): a reflink where possible, else
 * copy_file_range (server-side copy on NFS 4.2), else read and write, chunk
 * by chunk so that cancel is seen between chunks. Once the file systems
 * refuse a reflink, *no_clone spares the question for the next files.
 * Returns 0 or -1 with errno set (ECANCELED: cancel was raised). */
static int copy_fd(int in, int out, uint64_t size, int *no_clone, const atomic_int *cancel)
{
	if (!*no_clone) {
		if (ioctl(out, FICLONE, in) == 0)
			return 0;
		if (errno == EOPNOTSUPP || errno == ENOTTY || errno == EINVAL)
			*no_clone = 1;
	}
	loff_t off_in = 0, off_out = 0;
	for (;;) {
		/* Known to be at the end: no call to hear it. */
		if ((uint64_t)off_in == size && size > 0)
			return 0;
		if (cancelled(cancel)) {
			errno = ECANCELED;
			return -1;
		}
		ssize_t n = copy_file_range(in, &off_in, out, &off_out, RANGE_CHUNK, 0);
		if (n == 0)
			return 0;
		if (n > 0)
			continue;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
			return -1;
		break;
	}
	char *buf = malloc(COPY_CHUNK);
	if (!buf)
		return -1;
	int rc = 0;
	for (;;) {
		if (cancelled(cancel)) {
			errno = ECANCELED;
			rc = -1;
			break;
		}
		ssize_t n = pread(in, buf, COPY_CHUNK, off_in);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			rc = n < 0 ? -1 : 0;
			break;
		}
		ssize_t done = 0;
		while (done < n) {
			ssize_t w = pwrite(out, buf + done, (size_t)(n - done), off_out + done);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				if (w == 0)
					errno = EIO;
				break;
			}
			done += w;
		}
		if (done < n) {
			rc = -1;
			break;
		}
		off_in += n;
		off_out += n;
	}
	int e = errno;
	free(buf);
	errno = e;
	return rc;
}

/* The failure of a copy that returned -1: interrupted, or errno's. */
static int copy_failed(const struct dir_remote *d, const char *what, const char *key, struct mlx_err *err)
{
	if (errno == ECANCELED)
		return mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "remote %s: %s of %s interrupted",
		                   d->name, what, key);
	return mlx_err_sys(err, errno, "remote %s: cannot %s %s", d->name, what, key);
}

/* Opens key for reading into *in, with its status in *st: a regular file
 * below the root, reached through no symlink (nor is it one). One openat2
 * where the kernel has it (RESOLVE_NO_SYMLINKS refuses a link anywhere on
 * the way, the last component included, as O_NOFOLLOW does), else the
 * confined walk to its directory and an openat. Returns 0,
 * MLX_ERR_NOTFOUND or a failure naming the key. */
static int open_key(struct dir_remote *d, const char *key, int *in, struct stat *st, struct mlx_err *err)
{
	*in = -1;
	if (!key_ok(key))
		return bad_key(d, key, err);
	int nr = d->root_fd < 0 ? need_root(d, 0, err) : MLX_OK;
	if (nr != MLX_OK && nr != MLX_ERR_NOTFOUND)
		return nr; /* a file in the way, a directory we may not read */
	if (nr != MLX_OK)
		return mlx_err_set(err, MLX_ERR_NOTFOUND, ENOENT, "remote %s: %s not found", d->name, key);
	int fd = -1, e = ENOSYS;
#ifdef SYS_openat2
	struct open_how how = {
	    .flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	fd = (int)syscall(SYS_openat2, d->root_fd, key, &how, sizeof how);
	e = errno;
#endif
	/* ENOSYS (no openat2), or refused for another reason than the key's
	 * (EPERM from a seccomp filter, EAGAIN, EXDEV): the walk decides. */
	if (fd < 0 && e != ENOENT && e != ENOTDIR && e != ELOOP) {
		const char *base;
		int dfd = open_parent(d, key, 0, &base);
		fd = dfd >= 0 ? openat(dfd, base, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC) : -1;
		e = errno;
		if (dfd >= 0)
			close(dfd);
	}
	if (fd < 0 && (e == ENOENT || e == ENOTDIR || e == ELOOP))
		return mlx_err_set(err, MLX_ERR_NOTFOUND, e, "remote %s: %s not found", d->name, key);
	if (fd < 0)
		return mlx_err_sys(err, e, "remote %s: cannot open %s", d->name, key);
	int rc = MLX_OK;
	if (fstat(fd, st) != 0)
		rc = mlx_err_sys(err, errno, "remote %s: cannot stat %s", d->name, key);
	else if (!S_ISREG(st->st_mode))
		rc = mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "remote %s: %s is not a regular file", d->name,
		                 key);
	if (rc != MLX_OK) {
		close(fd);
		return rc;
	}
	*in = fd;
	return MLX_OK;
}

static int dir_get(void *state, const char *key, int fd, struct mlx_err *err)
{
	struct dir_remote *d = state;
	int in;
	struct stat st;
	int rc = open_key(d, key, &in, &st, err);
	if (rc != MLX_OK)
		return rc;
	if (copy_fd(in, fd, (uint64_t)st.st_size, &d->no_clone, d->cancel) != 0)
		rc = copy_failed(d, "read", key, err);
	close(in);
	return rc;
}

static int dir_read_small(void *state, const char *key, void *buf, size_t cap, size_t *size,
                          struct mlx_err *err)
{
	struct dir_remote *d = state;
	int in;
	struct stat st;
	int rc = open_key(d, key, &in, &st, err);
	if (rc != MLX_OK)
		return rc;
	*size = (size_t)st.st_size;
	size_t got = 0;
	while (*size <= cap && got < *size) {
		ssize_t n = read(in, (char *)buf + got, *size - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = mlx_err_sys(err, errno, "remote %s: cannot read %s", d->name, key);
			break;
		}
		if (n == 0) {
			/* Shorter than fstat said (rewritten meanwhile): what was
			 * read is hashed, and a wrong id is reported as corrupt. */
			*size = got;
			break;
		}
		got += (size_t)n;
	}
	close(in);
	return rc;
}

static int dir_put(void *state, const char *key, const char *path, uint64_t size, struct mlx_err *err)
{
	(void)size;
	struct dir_remote *d = state;
	if (!key_ok(key))
		return bad_key(d, key, err);
	int rc = need_root(d, 1, err);
	if (rc != MLX_OK)
		return rc;
	int in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return mlx_err_sys(err, errno, "cannot open %s", path);
	const char *base;
	int dfd = open_parent(d, key, 1, &base);
	if (dfd < 0) {
		rc = mlx_err_sys(err, errno, "remote %s: cannot create the directory of %s", d->name, key);
		close(in);
		return rc;
	}
	/* A name no other writer, here or on another client, can pick. */
	char tmp[NAME_MAX + 1];
	snprintf(tmp, sizeof tmp, ".tmp-%.40s-%ld-%ld-%u-%.100s", d->host, (long)getpid(), (long)gettid(),
	         d->counter++, base);
	int out = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
	if (out < 0) {
		rc = mlx_err_sys(err, errno, "remote %s: cannot create a temp file for %s", d->name, key);
	} else {
		if (copy_fd(in, out, 0, &d->no_clone, d->cancel) != 0)
			rc = copy_failed(d, "write", key, err);
		if (close(out) != 0 && rc == MLX_OK)
			rc = mlx_err_sys(err, errno, "remote %s: cannot write %s", d->name, key);
		if (rc == MLX_OK && renameat(dfd, tmp, dfd, base) != 0)
			rc = mlx_err_sys(err, errno, "remote %s: cannot rename into %s", d->name, key);
		if (rc != MLX_OK)
			unlinkat(dfd, tmp, 0);
	}
	close(dfd);
	close(in);
	return rc;
}

/* Lists the regular files below the directory open at fd (key prefix in
 * buf[0..len)), depth first; never follows a symlink nor enters a
 * dot-directory (temp names). */
static int list_below(struct dir_remote *d, int fd, char *buf, size_t len, mlx_remote_list_fn fn, void *ctx,
                      struct mlx_err *err)
{
	DIR *dir = fdopendir(fd);
	if (!dir) {
		int e = errno;
		close(fd);
		return mlx_err_sys(err, e, "remote %s: cannot list %.*s", d->name, (int)len, buf);
	}
	int rc = MLX_OK;
	struct dirent *de;
	while (rc == MLX_OK && (errno = 0, de = readdir(dir))) {
		if (de->d_name[0] == '.')
			continue;
		size_t n = strlen(de->d_name);
		if (len + n + 2 > PATH_MAX)
			continue;
		memcpy(buf + len, de->d_name, n + 1);
		struct stat st;
		if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0)
			continue; /* gone meanwhile */
		if (S_ISREG(st.st_mode)) {
			rc = fn(ctx, buf, (uint64_t)st.st_size);
		} else if (S_ISDIR(st.st_mode)) {
			int sub =
			    openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			if (sub >= 0) {
				buf[len + n] = '/';
				buf[len + n + 1] = 0;
				rc = list_below(d, sub, buf, len + n + 1, fn, ctx, err);
			}
		}
	}
	if (rc == MLX_OK && errno != 0)
		rc = mlx_err_sys(err, errno, "remote %s: cannot list %.*s", d->name, (int)len, buf);
	closedir(dir);
	return rc;
}

static int dir_list(void *state, const char *prefix, mlx_remote_list_fn fn, void *ctx, struct mlx_err *err)
{
	struct dir_remote *d = state;
	size_t len = strlen(prefix);
	if (len < 2 || prefix[len - 1] != '/' || len >= PATH_MAX / 2)
		return bad_key(d, prefix, err);
	char key[PATH_MAX];
	memcpy(key, prefix, len - 1);
	key[len - 1] = 0;
	if (!key_ok(key))
		return bad_key(d, prefix, err);
	int nr = d->root_fd < 0 ? need_root(d, 0, err) : MLX_OK;
	if (nr != MLX_OK)
		return nr == MLX_ERR_NOTFOUND ? MLX_OK : nr; /* no root yet: nothing under any prefix */
	/* Open the prefix as a directory: its parent, then itself. */
	const char *base;
	int pfd = open_parent(d, key, 0, &base);
	int fd = pfd >= 0 ? openat(pfd, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : -1;
	int e = errno;
	if (pfd >= 0)
		close(pfd);
	if (fd < 0)
		return e == ENOENT || e == ENOTDIR
		           ? MLX_OK
		           : mlx_err_sys(err, e, "remote %s: cannot list %s", d->name, prefix);
	char buf[PATH_MAX];
	memcpy(buf, prefix, len + 1);
	return list_below(d, fd, buf, len, fn, ctx, err);
}

static int dir_remove(void *state, const char *key, struct mlx_err *err)
{
	struct dir_remote *d = state;
	if (!key_ok(key))
		return bad_key(d, key, err);
	int nr = d->root_fd < 0 ? need_root(d, 0, err) : MLX_OK;
	if (nr != MLX_OK)
		return nr == MLX_ERR_NOTFOUND ? MLX_OK : nr; /* no root: nothing to remove */
	const char *base;
	int dfd = open_parent(d, key, 0, &base);
	if (dfd < 0)
		return errno == ENOENT || errno == ENOTDIR
		           ? MLX_OK
		           : mlx_err_sys(err, errno, "remote %s: cannot remove %s", d->name, key);
	int rc = MLX_OK;
	if (unlinkat(dfd, base, 0) != 0 && errno != ENOENT)
		rc = mlx_err_sys(err, errno, "remote %s: cannot remove %s", d->name, key);
	close(dfd);
	return rc;
}

const struct mlx_remote_backend mlx_remote_dir = {
    .name = "dir",
    .accepts = dir_accepts,
    .open = dir_open,
    .close = dir_close,
    .stat = dir_stat,
    .get = dir_get,
    .read_small = dir_read_small,
    .put = dir_put,
    .list = dir_list,
    .remove = dir_remove,
};
