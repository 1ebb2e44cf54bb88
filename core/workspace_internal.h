/* workspace_internal.h — what the files of the workspace share (workspace.c
 * owns the struct; workspace_delta.c works through these). */
#ifndef MLX_WORKSPACE_INTERNAL_H
#define MLX_WORKSPACE_INTERNAL_H

#include "pool.h"
#include "statcache.h"
#include "workspace.h"

/* The stat cache, opened on first use; NULL if it cannot be (work goes on
 * without it). */
struct mlx_statcache *mlx_workspace_statcache(struct mlx_workspace *ws);

/* The stat cache when rel is a path relative to the root that names a
 * directory (not a symlink to one), with root/rel in full (PATH_MAX bytes):
 * a directory whose tree the cache may hold. NULL otherwise, or when the
 * cache cannot be opened. */
struct mlx_statcache *mlx_workspace_tree_dir(struct mlx_workspace *ws, const char *rel, char *full);

/* The number of threads for hashing (<= 0: one per CPU). */
int mlx_workspace_jobs(const struct mlx_workspace *ws);

/* 0 if rel is relative to the root and short enough (or "" where
 * allow_empty), else MLX_ERR_INVALID. */
int mlx_workspace_check_relative(const char *rel, int allow_empty, struct mlx_err *err);

/* root/rel into out (PATH_MAX bytes); "" if too long. */
void mlx_workspace_full_path(const struct mlx_workspace *ws, const char *rel, char *out);

/* The progress for a pool over list, or NULL when none is wanted. */
const struct mlx_progress *mlx_workspace_progress_over(struct mlx_workspace *ws, const struct mlx_filelist *list);

/* mlx_workspace_checkout, also setting *stamp to the mtime its copies
 * were dated with (0 for links, or outside the project): a copy that
 * still has it holds exactly the verified object's bytes (workspace.c), so
 * core/checkout.c may record it as checked at any later time. */
int mlx_workspace_checkout_dated(struct mlx_workspace *ws, const char *dir, struct mlx_filelist *items,
                                 enum mlx_link link, const unsigned char *verified, int64_t *stamp,
                                 struct mlx_err *err);

/* mlx_workspace_diff from the stat cache's tree of rel, when that tree
 * records the locked manifest and few files differ from it. Returns 1 with
 * *out (no manifest text) and *d filled; 0 if the tree cannot tell (the
 * caller walks; d is empty); or a failure (a file that changed cannot be
 * read: named). */
int mlx_workspace_diff_from_tree(struct mlx_workspace *ws, const char *rel, const char *locked,
                                 struct mlx_artifact *out, struct mlx_dirdiff *d, struct mlx_err *err);

/* A presence record of a tracked directory (workspace_present.c). */
struct mlx_present;

/* 1 if every object named by the lines of the locked manifest (text, len
 * bytes, read and verified; left as it was) of directory rel is in the
 * store, looking up only those in shards that rel's presence record does
 * not vouch for. On 1, *out is the record to keep
 * (mlx_workspace_present_keep) once the manifest that now stands is
 * known; else *out is NULL (a missing object, a bad line, no memory: the
 * caller puts the directory whole, which stores what is missing). */
int mlx_workspace_objects_present(struct mlx_workspace *ws, const char *rel, const char *locked, char *text,
                                  size_t len, struct mlx_present **out);

/* The record of rel for the manifest that replaces locked without its
 * objects being looked up (mlx add of paths inside rel): the shards that
 * rel's record vouches for now stay vouched for, as the objects the put
 * adds are committed before the record is written; the others are not.
 * NULL if the record vouches for none (or no memory). Read before
 * anything is staged. */
struct mlx_present *mlx_workspace_present_carry(struct mlx_workspace *ws, const char *rel,
                                                const char *locked);

/* The record of rel for the manifest that a whole put of rel (a walk that
 * stages every file) is about to make: the shards as they are now, all
 * vouched for, since the put finds each object already there or stages
 * it, and the commit that renames it into its shard changes the shard.
 * NULL if there is no memory. Read before the walk. */
struct mlx_present *mlx_workspace_present_start(struct mlx_workspace *ws, const char *rel);

/* Keeps p (owned by ws from now on; NULL: nothing) as the record of
 * manifest id, to be written by mlx_workspace_commit once what the put
 * staged is durable. */
void mlx_workspace_present_keep(struct mlx_workspace *ws, struct mlx_present *p, const char *id);

/* Frees the list of records p. Safe on NULL. */
void mlx_workspace_present_free(struct mlx_present *p);

/* Writes the records kept so far and forgets them. */
void mlx_workspace_present_write(struct mlx_workspace *ws);

/* The list of records kept (workspace.c owns it). */
struct mlx_present **mlx_workspace_pending_present(struct mlx_workspace *ws);

#endif
