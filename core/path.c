/* path.c — see path.h. */
#include "path.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#define PATH_LIMIT 4096
#define NAME_LIMIT 256

/* Names no data may write into: git's directory (hooks run code), mlx's
 * own (config.local.lua is executed), and the lock that pins everything. */
static int reserved_component(const char *c, size_t n)
{
	return (n == 4 && (strncasecmp(c, ".git", 4) == 0 || strncasecmp(c, ".mlx", 4) == 0));
}

int mlx_path_reserved_name(const char *name)
{
	return reserved_component(name, strlen(name));
}

int mlx_path_check(const char *path, size_t len, struct mlx_err *err)
{
	/* The message quotes at most 200 bytes of the path, and never past a
	 * NUL or newline, so that a hostile path cannot forge a second line. */
	int shown = 0;
	while ((size_t)shown < len && shown < 200 && path[shown] && path[shown] != '\n' && path[shown] != '\r')
		shown++;
#define REFUSE(why) mlx_err_set(err, MLX_ERR_INVALID, 0, "%.*s%s: %s", shown, path, (size_t)shown < len ? "…" : "", why)
	if (len == 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "empty path");
	if (len >= PATH_LIMIT)
		return REFUSE("path too long");
	if (memchr(path, '\0', len))
		return REFUSE("path contains a NUL byte");
	if (memchr(path, '\n', len) || memchr(path, '\r', len))
		return REFUSE("path contains a line break");
	if (path[0] == '/')
		return REFUSE("absolute path; paths must be relative to the project root");
	if (len == 8 && memcmp(path, "mlx.lock", 8) == 0)
		return REFUSE("the lock file itself cannot be written from data");
	const char *c = path, *end = path + len;
	while (c <= end) {
		const char *slash = memchr(c, '/', (size_t)(end - c));
		const char *stop = slash ? slash : end;
		size_t n = (size_t)(stop - c);
		if (n == 0)
			return REFUSE(slash ? "empty path component" : "trailing '/'");
		if (n == 1 && c[0] == '.')
			return REFUSE("'.' path component");
		if (n == 2 && c[0] == '.' && c[1] == '.')
			return REFUSE("path leaves the project");
		if (reserved_component(c, n))
			return REFUSE((c[1] | 0x20) == 'g' ? "path inside .git/" : "path inside .mlx/");
		if (n >= NAME_LIMIT)
			return REFUSE("path component too long");
		if (!slash)
			break;
		c = slash + 1;
	}
#undef REFUSE
	return MLX_OK;
}

/* openat2 confines the whole lookup in one call; where the kernel (or a
 * seccomp filter) lacks it, the caller walks component by component. */
static int open_beneath(int dirfd, const char *rel)
{
#ifdef SYS_openat2
	struct open_how how = {
		.flags = O_RDONLY | O_DIRECTORY | O_CLOEXEC,
		.resolve = RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS,
	};
	return (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof how);
#else
	(void)dirfd;
	(void)rel;
	errno = ENOSYS;
	return -1;
#endif
}

/* Opens component name (n bytes) of a directory below fd, refusing a
 * symlink; what names the path so far, for messages. */
static int open_component(int fd, const char *name, int create, const char *what, int *out, struct mlx_err *err)
{
	for (int tries = 0;; tries++) {
		int nfd = openat(fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (nfd >= 0) {
			*out = nfd;
			return MLX_OK;
		}
		int e = errno;
		if (e == ENOENT && create && tries == 0) {
			if (mkdirat(fd, name, 0755) != 0 && errno != EEXIST)
				return mlx_err_sys(err, errno, "cannot create directory %s", what);
			continue;
		}
		if (e == ENOENT)
			return mlx_err_set(err, MLX_ERR_NOTFOUND, e, "%s does not exist", what);
		if (e == ELOOP || e == ENOTDIR) {
			struct stat st;
			if (fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISLNK(st.st_mode))
				return mlx_err_set(err, MLX_ERR_INVALID, e,
						   "%s is a symbolic link; mlx never writes through one", what);
			return mlx_err_set(err, MLX_ERR_INVALID, e, "%s is not a directory", what);
		}
		return mlx_err_sys(err, e, "cannot open directory %s", what);
	}
}

int mlx_path_open_dir(int dirfd, const char *rel, int create, int *fd, struct mlx_err *err)
{
	if (!*rel) {
		int d = fcntl(dirfd, F_DUPFD_CLOEXEC, 0);
		if (d < 0)
			return mlx_err_sys(err, errno, "cannot open directory");
		*fd = d;
		return MLX_OK;
	}
	int d = open_beneath(dirfd, rel);
	if (d >= 0) {
		*fd = d;
		return MLX_OK;
	}
	/* Every other outcome (missing parts to create, a symlink to name, no
	 * openat2) is decided by the walk, which says which component. */
	char buf[PATH_LIMIT];
	size_t len = strlen(rel);
	if (len >= sizeof buf)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "path too long: %.200s", rel);
	memcpy(buf, rel, len + 1);
	int cur = dirfd;
	char *c = buf;
	for (;;) {
		char *slash = strchr(c, '/');
		if (slash)
			*slash = '\0';
		/* buf up to c's end is the path so far: name it in messages. */
		int next = -1;
		int rc = open_component(cur, c, create, buf, &next, err);
		if (cur != dirfd)
			close(cur);
		if (rc != MLX_OK)
			return rc;
		cur = next;
		if (!slash)
			break;
		*slash = '/';
		c = slash + 1;
	}
	*fd = cur;
	return MLX_OK;
}

int mlx_path_open_parent(int dirfd, const char *rel, int create, int *fd, const char **name, struct mlx_err *err)
{
	const char *slash = strrchr(rel, '/');
	*name = slash ? slash + 1 : rel;
	if (!slash)
		return mlx_path_open_dir(dirfd, "", 0, fd, err);
	char parent[PATH_LIMIT];
	if ((size_t)(slash - rel) >= sizeof parent)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "path too long: %.200s", rel);
	memcpy(parent, rel, (size_t)(slash - rel));
	parent[slash - rel] = '\0';
	return mlx_path_open_dir(dirfd, parent, create, fd, err);
}

int mlx_path_check_parents(int dirfd, const char *rel, struct mlx_err *err)
{
	int fd;
	const char *name;
	int rc = mlx_path_open_parent(dirfd, rel, 0, &fd, &name, err);
	if (rc == MLX_ERR_NOTFOUND)
		return MLX_OK; /* made by mlx_path_open_dir's walk later, never through a link */
	if (rc != MLX_OK)
		return rc;
	close(fd);
	return MLX_OK;
}

/* Empties the directory open at fd (on device dev), then closes fd; what is
 * its path for messages (a buffer of PATH_LIMIT bytes, extended and
 * restored while descending). */
static int empty_dir(int fd, dev_t dev, char *what, struct mlx_err *err)
{
	DIR *d = fdopendir(fd);
	if (!d) {
		int e = errno;
		close(fd);
		return mlx_err_sys(err, e, "cannot read directory %s", what);
	}
	size_t base = strlen(what);
	int rc = MLX_OK;
	struct dirent *de;
	while (rc == MLX_OK && (errno = 0, de = readdir(d)) != NULL) {
		const char *n = de->d_name;
		if (n[0] == '.' && (!n[1] || (n[1] == '.' && !n[2])))
			continue;
		snprintf(what + base, PATH_LIMIT - base, "/%s", n);
		struct stat st;
		if (fstatat(dirfd(d), n, &st, AT_SYMLINK_NOFOLLOW) != 0) {
			if (errno != ENOENT)
				rc = mlx_err_sys(err, errno, "cannot remove %s", what);
		} else if (S_ISDIR(st.st_mode)) {
			if (st.st_dev != dev) {
				rc = mlx_err_set(err, MLX_ERR_IO, EXDEV,
						 "cannot remove %s: another file system is mounted there", what);
			} else {
				int sub = openat(dirfd(d), n, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
				if (sub < 0)
					rc = mlx_err_sys(err, errno, "cannot remove %s", what);
				else if ((rc = empty_dir(sub, dev, what, err)) == MLX_OK &&
					 unlinkat(dirfd(d), n, AT_REMOVEDIR) != 0 && errno != ENOENT)
					rc = mlx_err_sys(err, errno, "cannot remove %s", what);
			}
		} else if (unlinkat(dirfd(d), n, 0) != 0 && errno != ENOENT) {
			rc = mlx_err_sys(err, errno, "cannot remove %s", what);
		}
		what[base] = '\0';
	}
	if (rc == MLX_OK && errno != 0)
		rc = mlx_err_sys(err, errno, "cannot read directory %s", what);
	closedir(d);
	return rc;
}

int mlx_path_remove(int dirfd, const char *rel, struct mlx_err *err)
{
	int pfd;
	const char *name;
	int rc = mlx_path_open_parent(dirfd, rel, 0, &pfd, &name, err);
	if (rc == MLX_ERR_NOTFOUND)
		return MLX_OK;
	if (rc != MLX_OK)
		return rc;
	struct stat st;
	if (fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		rc = errno == ENOENT ? MLX_OK : mlx_err_sys(err, errno, "cannot remove %s", rel);
	} else if (!S_ISDIR(st.st_mode)) {
		if (unlinkat(pfd, name, 0) != 0 && errno != ENOENT)
			rc = mlx_err_sys(err, errno, "cannot remove %s", rel);
	} else {
		char what[PATH_LIMIT];
		snprintf(what, sizeof what, "%s", rel);
		int fd = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0)
			rc = mlx_err_sys(err, errno, "cannot remove %s", rel);
		else if ((rc = empty_dir(fd, st.st_dev, what, err)) == MLX_OK && unlinkat(pfd, name, AT_REMOVEDIR) != 0 &&
			 errno != ENOENT)
			rc = mlx_err_sys(err, errno, "cannot remove %s", rel);
	}
	close(pfd);
	return rc;
}
