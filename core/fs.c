/* fs.c — directory listing, stat, mkdir -p and atomic writes. */
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"

void mlx_strlist_free(struct mlx_strlist *list)
{
	for (size_t i = 0; i < list->len; i++)
		free(list->items[i]);
	free(list->items);
	list->items = NULL;
	list->len = list->cap = 0;
}

int mlx_strlist_push(struct mlx_strlist *list, const char *s, struct mlx_err *err)
{
	if (list->len == list->cap) {
		size_t cap = list->cap ? list->cap * 2 : 16;
		char **items = realloc(list->items, cap * sizeof *items);
		if (!items)
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		list->items = items;
		list->cap = cap;
	}
	char *copy = strdup(s);
	if (!copy)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	list->items[list->len++] = copy;
	return MLX_OK;
}

static int compare_bytes(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int mlx_fs_list(const char *dir, struct mlx_strlist *out, struct mlx_err *err)
{
	DIR *d = opendir(dir);
	if (!d)
		return mlx_err_sys(err, errno, "cannot list %s", dir);
	int rc = MLX_OK;
	struct dirent *ent;
	errno = 0;
	while ((ent = readdir(d)) != NULL) {
		const char *n = ent->d_name;
		if (n[0] == '.' && (n[1] == '\0' || (n[1] == '.' && n[2] == '\0')))
			continue;
		if ((rc = mlx_strlist_push(out, n, err)) != MLX_OK)
			break;
		errno = 0;
	}
	if (rc == MLX_OK && errno != 0)
		rc = mlx_err_sys(err, errno, "cannot list %s", dir);
	closedir(d);
	if (rc != MLX_OK) {
		mlx_strlist_free(out);
		return rc;
	}
	if (out->len > 1) /* an empty list has no array: qsort(NULL) is undefined */
		qsort(out->items, out->len, sizeof *out->items, compare_bytes);
	return MLX_OK;
}

void mlx_dirlist_free(struct mlx_dirlist *l)
{
	free(l->items);
	free(l->names);
	*l = (struct mlx_dirlist){0};
}

/* Orders entries of a listing by mlx_path_entry_order over its names. */
static int compare_dirents(const void *va, const void *vb, void *vnames)
{
	const struct mlx_dirent *a = va, *b = vb;
	const unsigned char *x = (const unsigned char *)vnames + a->off,
	                    *y = (const unsigned char *)vnames + b->off;
	return mlx_path_entry_order(x, a->len, a->type == DT_DIR, y, b->len, b->type == DT_DIR);
}

int mlx_fs_list_walk(DIR *d, int flags, struct mlx_dirlist *l, const char *dir, const char *sub,
                     struct mlx_err *err)
{
	l->len = l->names_len = 0;
	const char *slash = sub ? "/" : "";
	sub = sub ? sub : "";
	struct dirent *ent;
	for (errno = 0; (ent = readdir(d)) != NULL; errno = 0) {
		const char *n = ent->d_name;
		if (mlx_path_walk_skips(n))
			continue;
		if ((flags & MLX_FS_LIST_STRICT) &&
		    ((ent->d_type != DT_REG && ent->d_type != DT_DIR) || strchr(n, '\n')))
			return mlx_err_set(
			    err, MLX_ERR_INVALID, 0,
			    "%s%s%s: '%s' is not a regular file or a directory with a plain name", dir, slash,
			    sub, n);
		size_t nlen = strlen(n);
		if (l->len == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct mlx_dirent *items = realloc(l->items, cap * sizeof *items);
			if (!items)
				return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			l->items = items;
			l->cap = cap;
		}
		if (l->names_len + nlen + 1 > l->names_cap) {
			size_t cap = (l->names_cap ? l->names_cap * 2 : 4096) + nlen;
			char *names = realloc(l->names, cap);
			if (!names)
				return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			l->names = names;
			l->names_cap = cap;
		}
		memcpy(l->names + l->names_len, n, nlen + 1);
		l->items[l->len++] =
		    (struct mlx_dirent){.off = l->names_len, .len = nlen, .type = ent->d_type};
		l->names_len += nlen + 1;
	}
	if (errno != 0)
		return mlx_err_sys(err, errno, "cannot list %s%s%s", dir, slash, sub);
	if (l->len > 1)
		qsort_r(l->items, l->len, sizeof *l->items, compare_dirents, l->names);
	return MLX_OK;
}

int mlx_fs_stat(const char *path, struct mlx_stat *st, struct mlx_err *err)
{
	struct stat sb;
	memset(st, 0, sizeof *st);
	if (lstat(path, &sb) != 0) {
		st->type = MLX_FT_NONE;
		return mlx_err_sys(err, errno, "cannot stat %s", path);
	}
	st->type = S_ISREG(sb.st_mode)	 ? MLX_FT_FILE
		   : S_ISDIR(sb.st_mode) ? MLX_FT_DIR
		   : S_ISLNK(sb.st_mode) ? MLX_FT_LINK
					 : MLX_FT_OTHER;
	st->size = (uint64_t)sb.st_size;
	st->mode = (uint32_t)(sb.st_mode & 07777);
	st->mtime_ns = (int64_t)sb.st_mtim.tv_sec * 1000000000 + sb.st_mtim.tv_nsec;
	st->ino = (uint64_t)sb.st_ino;
	st->dev = (uint64_t)sb.st_dev;
	return MLX_OK;
}

int mlx_fs_mkdirs(const char *dir, mode_t mode, struct mlx_err *err)
{
	char path[PATH_MAX];
	size_t len = strlen(dir);
	if (len == 0 || len >= sizeof path)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "bad directory name '%s'", dir);
	memcpy(path, dir, len + 1);
	/* Create each prefix in turn; EEXIST is fine as long as it is a directory. */
	for (size_t i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		char saved = path[i];
		path[i] = '\0';
		if (mkdir(path, mode) != 0 && errno != EEXIST)
			return mlx_err_sys(err, errno, "cannot create directory %s", path);
		path[i] = saved;
	}
	struct stat sb;
	if (stat(dir, &sb) != 0)
		return mlx_err_sys(err, errno, "cannot create directory %s", dir);
	if (!S_ISDIR(sb.st_mode))
		return mlx_err_set(err, MLX_ERR_IO, ENOTDIR, "cannot create directory %s: a file is in the way", dir);
	return MLX_OK;
}

int mlx_fs_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	while (len > 0) {
		ssize_t n = write(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

int mlx_fs_read_fd(int fd, const char *what, size_t max, char **data, size_t *len, struct mlx_err *err)
{
	*data = NULL;
	*len = 0;
	/* No limit is still one: the buffer's size below must not wrap. */
	size_t limit = max < SIZE_MAX / 2 ? max : SIZE_MAX / 2;
	struct stat st;
	if (fstat(fd, &st) != 0)
		return mlx_err_sys(err, errno, "cannot stat %s", what);
	if (st.st_size > 0 && (uint64_t)st.st_size > limit)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s is larger than %zu bytes", what, limit);
	/* A byte more than fstat says: the read that finds the end needs no
	 * bigger buffer, and the NUL fits. Files of /proc say 0. */
	size_t cap = (st.st_size > 0 ? (size_t)st.st_size : 4096) + 1, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory reading %s", what);
	int rc = MLX_OK;
	for (;;) {
		if (n + 1 >= cap) { /* the file grew while read */
			size_t bigger = cap > limit / 2 ? limit + 2 : cap * 2;
			char *p = realloc(buf, bigger);
			if (!p) {
				rc =
				    mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory reading %s", what);
				break;
			}
			buf = p;
			cap = bigger;
		}
		ssize_t got = read(fd, buf + n, cap - 1 - n);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			rc = mlx_err_sys(err, errno, "cannot read %s", what);
			break;
		}
		if (got == 0)
			break;
		n += (size_t)got;
		if (n > limit) {
			rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "%s is larger than %zu bytes", what, limit);
			break;
		}
	}
	if (rc != MLX_OK) {
		free(buf);
		return rc;
	}
	buf[n] = '\0';
	*data = buf;
	*len = n;
	return MLX_OK;
}

int mlx_fs_read_all(const char *path, size_t max, char **data, size_t *len, struct mlx_err *err)
{
	*data = NULL;
	*len = 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot open %s", path);
	int rc = mlx_fs_read_fd(fd, path, max, data, len, err);
	close(fd);
	return rc;
}

int mlx_fs_sync_parent(const char *path, struct mlx_err *err)
{
	char dir[PATH_MAX];
	const char *slash = strrchr(path, '/');
	if (!slash) {
		strcpy(dir, ".");
	} else {
		size_t n = (size_t)(slash - path);
		if (n == 0)
			n = 1; /* "/file" lives in "/" */
		if (n >= sizeof dir)
			return mlx_err_set(err, MLX_ERR_INVALID, 0, "path too long: %s", path);
		memcpy(dir, path, n);
		dir[n] = '\0';
	}
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot open directory %s", dir);
	int rc = MLX_OK;
	if (fsync(fd) != 0 && errno != EINVAL) /* EINVAL: fs without dir fsync */
		rc = mlx_err_sys(err, errno, "cannot sync directory %s", dir);
	close(fd);
	return rc;
}

int mlx_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct mlx_err *err)
{
	char tmp[PATH_MAX];
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	/* The temp file sits beside the target so that rename() cannot cross a
	 * file system; its name starts with '.' and says what it is. */
	if (snprintf(tmp, sizeof tmp, "%.*s.%s.tmp-XXXXXX", dirlen, path, base) >= (int)sizeof tmp)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "path too long: %s", path);
	int fd = mkstemp(tmp);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot write %s", path);
	int rc = MLX_OK;
	if (mlx_fs_write_all(fd, data, len) != 0)
		rc = mlx_err_sys(err, errno, "cannot write %s", path);
	else if (fchmod(fd, mode) != 0)
		rc = mlx_err_sys(err, errno, "cannot set mode of %s", path);
	else if (fsync(fd) != 0)
		rc = mlx_err_sys(err, errno, "cannot sync %s", path);
	if (close(fd) != 0 && rc == MLX_OK)
		rc = mlx_err_sys(err, errno, "cannot write %s", path);
	if (rc == MLX_OK && rename(tmp, path) != 0)
		rc = mlx_err_sys(err, errno, "cannot replace %s", path);
	if (rc != MLX_OK) {
		unlink(tmp);
		return rc;
	}
	return mlx_fs_sync_parent(path, err);
}

int mlx_fs_lock(const char *path, int shared, int wait, int *fd, struct mlx_err *err)
{
	int lfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lfd < 0)
		return mlx_err_sys(err, errno, "cannot open lock file %s", path);
	int op = (shared ? LOCK_SH : LOCK_EX) | (wait ? 0 : LOCK_NB);
	if (flock(lfd, op) != 0) {
		int e = errno;
		close(lfd);
		if (e == EWOULDBLOCK)
			return mlx_err_set(err, MLX_ERR_BUSY, e, "%s is locked by another mlx process", path);
		if (e == EINTR)
			return mlx_err_set(err, MLX_ERR_INTERRUPTED, e, "interrupted");
		return mlx_err_sys(err, e, "cannot lock %s", path);
	}
	*fd = lfd;
	return MLX_OK;
}

void mlx_fs_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* closing the last descriptor releases the flock */
}

int mlx_fs_realpath(const char *path, char *out, struct mlx_err *err)
{
	if (!realpath(path, out))
		return mlx_err_sys(err, errno, "cannot resolve %s", path);
	return MLX_OK;
}

/* nftw's callback has no context argument; removal needs none but the first
 * failure, which is reported through errno and the path nftw stops at. */
static int remove_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
	(void)sb;
	(void)ftw;
	int rc = (type == FTW_DP || type == FTW_D) ? rmdir(path) : unlink(path);
	if (rc != 0 && errno != ENOENT)
		return -1;
	return 0;
}

int mlx_fs_remove_tree(const char *path, struct mlx_err *err)
{
	struct stat sb;
	if (lstat(path, &sb) != 0) {
		if (errno == ENOENT)
			return MLX_OK;
		return mlx_err_sys(err, errno, "cannot remove %s", path);
	}
	if (!S_ISDIR(sb.st_mode)) {
		if (unlink(path) != 0 && errno != ENOENT)
			return mlx_err_sys(err, errno, "cannot remove %s", path);
		return MLX_OK;
	}
	/* FTW_DEPTH: children before their directory; FTW_PHYS: do not follow
	 * symlinks; FTW_MOUNT: stay on this file system. */
	if (nftw(path, remove_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT) != 0)
		return mlx_err_sys(err, errno, "cannot remove everything in %s", path);
	return MLX_OK;
}
