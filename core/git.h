/* git.h — what mlx asks of a git repository, over libgit2: where HEAD is,
 * whether the work tree is dirty, a file as it was at a revision, tags and
 * history.
 *
 * Ownership: mlx_git_open gives the caller a handle to free with
 * mlx_git_close. Results are written into caller-owned structures; their
 * strings are allocated and released by the matching *_free function (or
 * mlx_strlist_free), which also accept an already freed structure. */
#ifndef MLX_GIT_H
#define MLX_GIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fs.h"

#define MLX_GIT_OID_HEX 41 /* 40 hex digits and a NUL */

struct mlx_git;

/* Opens the repository containing path, looking upwards from it as git
 * does. Returns 0; MLX_ERR_NOTFOUND with "not a git repository: PATH" (PATH
 * made absolute if it exists) when there is none; MLX_ERR_IO when it exists
 * but cannot be read. */
int mlx_git_open(const char *path, struct mlx_git **out, struct mlx_err *err);

/* Frees the handle. NULL is fine. */
void mlx_git_close(struct mlx_git *repo);

/* The work tree's directory without a trailing slash, or the git directory
 * of a bare repository. Owned by the handle. */
const char *mlx_git_root(const struct mlx_git *repo);

struct mlx_git_head {
	char commit[MLX_GIT_OID_HEX]; /* "" on an unborn branch */
	char *branch;		/* short name ("main"); NULL when detached */
	bool detached;
	bool unborn;		/* no commit yet */
};

/* Fills head. Returns 0 or MLX_ERR_IO. */
int mlx_git_head(struct mlx_git *repo, struct mlx_git_head *head, struct mlx_err *err);
void mlx_git_head_free(struct mlx_git_head *head);

/* Fills changed (which must be empty) with the sorted paths, relative to
 * the work tree, that differ between HEAD, the index and the work tree;
 * untracked files count only when untracked is true, ignored ones never.
 * Returns 0; MLX_ERR_INVALID for a bare repository; MLX_ERR_IO otherwise. */
int mlx_git_status(struct mlx_git *repo, bool untracked, struct mlx_strlist *changed, struct mlx_err *err);

/* Reads the file at path (relative to the work tree, '/'-separated) as it is
 * in the commit rev names ("main", "HEAD~2", "v1.0", a hash). On success
 * *content is a malloc'd buffer of *len bytes plus a NUL, for the caller to
 * free. Returns 0; MLX_ERR_NOTFOUND if rev or path does not exist there;
 * MLX_ERR_INVALID if path is a directory there. */
int mlx_git_show(struct mlx_git *repo, const char *rev, const char *path, char **content, size_t *len,
		 struct mlx_err *err);

/* Fills names (which must be empty) with the tag names, sorted; with
 * points_at, only those whose commit is the one points_at names. Returns 0,
 * MLX_ERR_NOTFOUND for an unknown points_at, or MLX_ERR_IO. */
int mlx_git_tags(struct mlx_git *repo, const char *points_at, struct mlx_strlist *names, struct mlx_err *err);

/* Creates tag name on the commit rev names (HEAD if NULL): annotated with
 * message if it is not NULL, else lightweight. The tagger is
 * GIT_COMMITTER_NAME/EMAIL if set, else user.name/user.email. Fills commit
 * with the tagged commit. Returns 0; MLX_ERR_INVALID for a bad name or no
 * identity, and with sys_errno EEXIST when the tag exists already (it is
 * left as it was); MLX_ERR_NOTFOUND for an unknown rev; MLX_ERR_IO. */
int mlx_git_tag(struct mlx_git *repo, const char *name, const char *rev, const char *message,
		char commit[MLX_GIT_OID_HEX], struct mlx_err *err);

struct mlx_git_commit {
	char id[MLX_GIT_OID_HEX];
	char *author;		/* name */
	char *email;
	int64_t time;		/* author time, seconds since the epoch */
	char *summary;		/* first line of the message */
};

struct mlx_git_log {
	struct mlx_git_commit *items;
	size_t len, cap;
};

/* Fills log (which must be empty) with the commits reachable from rev (HEAD
 * if NULL), newest first, at most limit of them (0: all). With path, only
 * the commits that changed it (a file or a directory), as `git log -- path`
 * shows them. An unborn HEAD gives an empty log. Returns 0,
 * MLX_ERR_NOTFOUND for an unknown rev, or MLX_ERR_IO. */
int mlx_git_log(struct mlx_git *repo, const char *rev, const char *path, size_t limit, struct mlx_git_log *log,
		struct mlx_err *err);
void mlx_git_log_free(struct mlx_git_log *log);

/* libgit2's version, "major.minor.revision", in buf. */
void mlx_git_version(char *buf, size_t size);

#endif
