/* watch.h — a file-system watcher per project, and what it tells a re-check.
 *
 * A daemon (watch_daemon.c) watches every directory of a project with
 * inotify, except .git/ and .mlx/, and remembers which paths changed, each
 * with a sequence number. A client asks "what changed since <token>"
 * (watch_client.c) over the unix socket .mlx/watch.sock and gets a new
 * token and the paths changed since, or "everything" when the daemon
 * cannot tell (another instance, a lost event queue, a watch it could not
 * add). A token is "<instance>:<seq>": instance is random per daemon, so
 * a token of a daemon that died never matches its successor. Before it
 * answers, the daemon creates a cookie file in .mlx/watch/ and waits for
 * its own event: every change made before the question was asked is
 * queued before the cookie's event, so it is in the answer (git's
 * fsmonitor cookie).
 *
 * A reported path means that path and everything below it: a directory
 * created (or moved in) is reported once, as its first events came before
 * its watch.
 *
 * Beside a tree of the stat cache (statcache_tree.h), a token file says
 * "this tree, identified by its file's stat, described the directory at a
 * moment after this token was given": every path not reported since is
 * as the tree says. */
#ifndef MLX_WATCH_H
#define MLX_WATCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"
#include "fs.h"

#define MLX_WATCH_TOKEN_MAX 64

/* A tree file's identity: a new version is a new file (renamed into
 * place), so another inode, size or time. */
struct mlx_watch_fileid {
	uint64_t dev, ino, size;
	int64_t mtime_ns, ctime_ns;
};

/* An answer of the daemon to "changed since". */
struct mlx_watch_answer {
	char token[MLX_WATCH_TOKEN_MAX]; /* the token to ask with next time */
	int everything;                  /* it cannot tell: look at everything */
	struct mlx_strlist paths;        /* else: the paths changed, relative to the root */
};

/* Frees the paths of a. */
void mlx_watch_answer_free(struct mlx_watch_answer *a);

/* Asks the daemon of the project at root (whose .mlx directory is
 * mlxdir) what changed since token (NULL or "": since ever). Returns 0
 * with *out filled (the caller frees it); MLX_ERR_NOTFOUND when no daemon
 * answers (no socket, or nobody listening: one failed connect); MLX_ERR_IO
 * or MLX_ERR_INVALID if the answer is cut short, late (5 s) or not one
 * (the caller then walks). */
int mlx_watch_changed(const char *mlxdir, const char *root, const char *token, struct mlx_watch_answer *out,
                      struct mlx_err *err);

/* Sends request ("status" or "stop") to the daemon of mlxdir and returns
 * its whole answer in *reply (the caller frees it). Returns 0,
 * MLX_ERR_NOTFOUND when no daemon answers, or MLX_ERR_IO. */
int mlx_watch_request(const char *mlxdir, const char *request, char **reply, struct mlx_err *err);

/* Starts the daemon of the project at root (absolute, its .mlx existing):
 * a process of its own, detached (new session, no terminal, standard
 * streams on /dev/null and its log in .mlx/logs/watch.log), which binds
 * .mlx/watch.sock once every directory is watched, and exits on stop or
 * when .mlx goes away. Waits until it is ready: *pid gets its pid.
 * Returns 0; MLX_ERR_BUSY if a daemon already runs for the project (its
 * pid file .mlx/watch.pid is locked); MLX_ERR_IO if it cannot start (the
 * message says why, as the daemon reported it). */
int mlx_watch_start(const char *root, pid_t *pid, struct mlx_err *err);

/* The token kept beside the tree file at tree_path: copies it into token
 * and returns 1 if one is there for exactly the file id; else 0. */
int mlx_watch_token_get(const char *tree_path, const struct mlx_watch_fileid *id,
                        char token[MLX_WATCH_TOKEN_MAX]);

/* Keeps token beside the tree file at tree_path, for the file id
 * (written whole, then renamed). Only an accelerator: returns 0, or
 * MLX_ERR_IO and nothing changes. */
int mlx_watch_token_put(const char *tree_path, const struct mlx_watch_fileid *id, const char *token);

/* The identity of the open file fd into *id. Returns 0 or MLX_ERR_IO. */
int mlx_watch_fileid(int fd, struct mlx_watch_fileid *id);

#endif
