/* watch_client.c — asking a project's watcher, and the tokens kept beside
 * the stat cache's trees (watch.h). */
#include "watch.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define ANSWER_MAX (256u << 20) /* a longer answer is not read: the caller walks */

void mlx_watch_answer_free(struct mlx_watch_answer *a)
{
	mlx_strlist_free(&a->paths);
}

/* Connects to mlxdir/watch.sock into *fd: 0, MLX_ERR_NOTFOUND when nobody
 * listens there, or MLX_ERR_IO. */
static int dial(const char *mlxdir, int *fd, struct mlx_err *err)
{
	struct sockaddr_un addr = {.sun_family = AF_UNIX};
	char sock[PATH_MAX + 16];
	int mfd = -1;
	if (snprintf(sock, sizeof sock, "%s/watch.sock", mlxdir) >= (int)sizeof sock)
		return mlx_err_set(err, MLX_ERR_NOTFOUND, ENAMETOOLONG, "%s: path too long", mlxdir);
	if (strlen(sock) < sizeof addr.sun_path) {
		memcpy(addr.sun_path, sock, strlen(sock) + 1);
	} else {
		/* A socket path longer than sun_path, reached through a
		 * descriptor of its directory. */
		if ((mfd = open(mlxdir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0)
			return mlx_err_sys(err, errno, "%s", mlxdir);
		snprintf(addr.sun_path, sizeof addr.sun_path, "/proc/self/fd/%d/watch.sock", mfd);
	}
	int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	int rc = MLX_OK;
	if (s < 0) {
		rc = mlx_err_sys(err, errno, "socket");
	} else if (connect(s, (struct sockaddr *)&addr, sizeof addr) != 0) {
		int e = errno;
		close(s);
		s = -1;
		rc = (e == ENOENT || e == ECONNREFUSED || e == ENOTDIR || e == ENOTSOCK)
		         ? mlx_err_set(err, MLX_ERR_NOTFOUND, e, "no watcher answers at %s", sock)
		         : mlx_err_sys(err, e, "%s", sock);
	}
	if (mfd >= 0)
		close(mfd);
	if (s >= 0) {
		/* A watcher that hangs costs a walk, not a wait. */
		struct timeval tv = {.tv_sec = 5};
		setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
		setsockopt(s, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
	}
	*fd = s;
	return rc;
}

/* Sends line and reads the whole answer into *out (NUL-terminated). */
static int converse(int fd, const char *line, char **out, size_t *outlen, struct mlx_err *err)
{
	size_t len = strlen(line);
	if (write(fd, line, len) != (ssize_t)len)
		return mlx_err_sys(err, errno, "the watcher's socket");
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (;;) {
		if (n + 1 == cap) {
			char *more = cap < ANSWER_MAX ? realloc(buf, cap * 2) : NULL;
			if (!more) {
				free(buf);
				return mlx_err_set(err, MLX_ERR_IO, 0, "the watcher's answer is too long");
			}
			buf = more;
			cap *= 2;
		}
		ssize_t k = read(fd, buf + n, cap - 1 - n);
		if (k < 0 && errno == EINTR)
			continue;
		if (k < 0) {
			int e = errno;
			free(buf);
			return mlx_err_sys(err, e, "the watcher's socket");
		}
		if (k == 0)
			break;
		n += (size_t)k;
	}
	buf[n] = '\0';
	*out = buf;
	if (outlen)
		*outlen = n;
	return MLX_OK;
}

int mlx_watch_request(const char *mlxdir, const char *request, char **reply, struct mlx_err *err)
{
	int fd, rc = dial(mlxdir, &fd, err);
	if (rc != MLX_OK)
		return rc;
	char line[64];
	snprintf(line, sizeof line, "%s\n", request);
	rc = converse(fd, line, reply, NULL, err);
	close(fd);
	return rc;
}

int mlx_watch_changed(const char *mlxdir, const char *root, const char *token, struct mlx_watch_answer *out,
                      struct mlx_err *err)
{
	memset(out, 0, sizeof *out);
	if (!token || !*token)
		token = "-";
	if (strlen(token) >= MLX_WATCH_TOKEN_MAX || strpbrk(token, " \n"))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "not a token: %.80s", token);
	/* The connect first: without a watcher, it is all this costs. */
	int fd, rc = dial(mlxdir, &fd, err);
	if (rc != MLX_OK)
		return rc;
	struct stat st;
	if (stat(root, &st) != 0) {
		close(fd);
		return mlx_err_sys(err, errno, "%s", root);
	}
	char line[MLX_WATCH_TOKEN_MAX + 64], *text = NULL;
	size_t len = 0;
	snprintf(line, sizeof line, "since %s %llu:%llu\n", token, (unsigned long long)st.st_dev,
	         (unsigned long long)st.st_ino);
	rc = converse(fd, line, &text, &len, err);
	close(fd);
	if (rc != MLX_OK)
		return rc;
	/* token T \n (everything | paths N \n N lines) end \n — anything
	 * else is no answer. */
	char *p = text, *nl;
	unsigned long long n = 0;
	rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "the watcher's answer is not one");
	if (!(nl = strchr(p, '\n')) || strncmp(p, "token ", 6) != 0 || nl - p - 6 <= 0 ||
	    nl - p - 6 >= MLX_WATCH_TOKEN_MAX)
		goto done;
	memcpy(out->token, p + 6, (size_t)(nl - p - 6));
	out->token[nl - p - 6] = '\0';
	p = nl + 1;
	if (strncmp(p, "everything\n", 11) == 0) {
		out->everything = 1;
		p += 11;
	} else if (sscanf(p, "paths %llu\n", &n) == 1 && (nl = strchr(p, '\n'))) {
		p = nl + 1;
		for (unsigned long long i = 0; i < n; i++) {
			if (!(nl = strchr(p, '\n')))
				goto done;
			*nl = '\0';
			if (mlx_strlist_push(&out->paths, p, err) != MLX_OK) {
				rc = MLX_ERR_NOMEM;
				goto done;
			}
			p = nl + 1;
		}
	} else {
		goto done;
	}
	if (strcmp(p, "end\n") == 0)
		rc = MLX_OK;
done:
	free(text);
	if (rc != MLX_OK)
		mlx_watch_answer_free(out);
	return rc;
}

int mlx_watch_fileid(int fd, struct mlx_watch_fileid *id)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		return MLX_ERR_IO;
	*id = (struct mlx_watch_fileid){
	    .dev = (uint64_t)st.st_dev,
	    .ino = (uint64_t)st.st_ino,
	    .size = (uint64_t)st.st_size,
	    .mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec,
	    .ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec};
	return MLX_OK;
}

/* The token file of a tree: one line, "<dev> <ino> <size> <mtime_ns>
 * <ctime_ns> <token>". */
static int token_path(const char *tree_path, char *out, size_t size)
{
	return snprintf(out, size, "%s.watch", tree_path) < (int)size;
}

int mlx_watch_token_get(const char *tree_path, const struct mlx_watch_fileid *id,
                        char token[MLX_WATCH_TOKEN_MAX])
{
	char path[PATH_MAX], line[256];
	if (!token_path(tree_path, path, sizeof path))
		return 0;
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	ssize_t n = read(fd, line, sizeof line - 1);
	close(fd);
	if (n <= 0)
		return 0;
	line[n] = '\0';
	unsigned long long dev, ino, size;
	long long mtime, ctime;
	char t[MLX_WATCH_TOKEN_MAX];
	if (sscanf(line, "%llu %llu %llu %lld %lld %63s", &dev, &ino, &size, &mtime, &ctime, t) != 6)
		return 0;
	if (dev != id->dev || ino != id->ino || size != id->size || mtime != id->mtime_ns ||
	    ctime != id->ctime_ns)
		return 0;
	memcpy(token, t, strlen(t) + 1);
	return 1;
}

int mlx_watch_token_put(const char *tree_path, const struct mlx_watch_fileid *id, const char *token)
{
	char path[PATH_MAX], tmp[PATH_MAX + 32], line[256];
	if (!token_path(tree_path, path, sizeof path) ||
	    snprintf(tmp, sizeof tmp, "%s.%ld", path, (long)getpid()) >= (int)sizeof tmp)
		return MLX_ERR_IO;
	int n = snprintf(line, sizeof line, "%llu %llu %llu %lld %lld %s\n", (unsigned long long)id->dev,
	                 (unsigned long long)id->ino, (unsigned long long)id->size, (long long)id->mtime_ns,
	                 (long long)id->ctime_ns, token);
	if (n <= 0 || n >= (int)sizeof line)
		return MLX_ERR_IO;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0644);
	if (fd < 0)
		return MLX_ERR_IO;
	int ok = write(fd, line, (size_t)n) == n;
	ok = close(fd) == 0 && ok;
	/* No fsync: a token lost or cut by a crash is no token, and costs
	 * one walk. */
	if (!ok || rename(tmp, path) != 0) {
		unlink(tmp);
		return MLX_ERR_IO;
	}
	return MLX_OK;
}
