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

#endif
