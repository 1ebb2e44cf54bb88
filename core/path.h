/* path.h — paths that come from data, and file operations confined to a
 * directory.
 *
 * A lock file, a manifest, a run-cache entry or a remote listing arrives
 * from elsewhere (a clone, a merge, a pull), so every path it names is
 * checked by mlx_path_check before anything is done with it, and every
 * write, rename or delete at such a path is made relative to a directory
 * descriptor (the project root) without following a symbolic link in any
 * component: openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS) where the
 * kernel has it, else a walk of O_NOFOLLOW | O_DIRECTORY opens, one
 * component at a time. Reading may follow symlinks (a symlinked dataset
 * is common); writing never does.
 *
 * Descriptors returned through out parameters belong to the caller, who
 * closes them. Messages name the path as given, so the caller can prefix
 * where it came from ("mlx.lock: data/../x: path leaves the project"). */
#ifndef MLX_PATH_H
#define MLX_PATH_H

#include <stddef.h>
#include <string.h>

#include "err.h"

/* Checks that the len bytes at path form a safe project-relative path:
 * not empty, not absolute, no empty, "." or ".." component, no trailing
 * "/", no NUL, newline or carriage return, no component named .git or
 * .mlx (in any letter case: case-insensitive file systems), not mlx.lock
 * itself, components under 256 bytes and the whole under 4096. Returns 0
 * or MLX_ERR_INVALID with a message "PATH: why". */
int mlx_path_check(const char *path, size_t len, struct mlx_err *err);

/* Returns 1 if the file name is .git or .mlx in any letter case: names no
 * data may write into, which walks of the workspace therefore skip (like
 * git, which records no nested .git). */
int mlx_path_reserved_name(const char *name);

/* Returns 1 for a directory entry the workspace's walks skip: "." and "..",
 * and the reserved names (mlx_path_reserved_name). Inline: every walk asks
 * it of every entry. */
static inline int mlx_path_walk_skips(const char *name)
{
	return name[0] == '.' &&
	       (name[1] == '\0' || (name[1] == '.' && name[2] == '\0') || mlx_path_reserved_name(name));
}

/* Orders two directory entries (names x and y, xlen and ylen bytes, each
 * flagged as a directory or not) as the paths of their files sort: a
 * directory's name is followed by '/' in those paths, so "a-b" comes
 * before "a/x". Returns <0, 0 or >0 as memcmp. Inline: it is the
 * comparison of every sort in the workspace's walks. */
static inline int mlx_path_entry_order(const unsigned char *x, size_t xlen, int xdir, const unsigned char *y,
                                       size_t ylen, int ydir)
{
	size_t n = xlen < ylen ? xlen : ylen;
	int c = memcmp(x, y, n);
	if (c != 0)
		return c;
	int cx = xlen > n ? x[n] : (xdir ? '/' : 0);
	int cy = ylen > n ? y[n] : (ydir ? '/' : 0);
	return cx - cy;
}

/* Opens the directory rel (a checked path, or "" for dirfd itself) below
 * dirfd without following symlinks; with create set, missing directories
 * are made (mode 0755). *fd receives an O_DIRECTORY descriptor. Returns 0;
 * MLX_ERR_NOTFOUND if a component is missing (and create is not set);
 * MLX_ERR_INVALID if a component is a symlink or not a directory (the
 * message names it); MLX_ERR_IO otherwise. */
int mlx_path_open_dir(int dirfd, const char *rel, int create, int *fd, struct mlx_err *err);

/* Opens the parent directory of rel (a checked path) below dirfd as
 * mlx_path_open_dir does, and points *name at rel's last component. */
int mlx_path_open_parent(int dirfd, const char *rel, int create, int *fd, const char **name,
			 struct mlx_err *err);

/* Removes rel below dirfd like rm -rf: a file, a symlink (never what it
 * points to) or a directory with everything in it, never leaving the file
 * system of rel and never following a symlink, in rel's parents or below.
 * Returns 0, also when nothing is there (or a parent is missing);
 * MLX_ERR_INVALID if a parent component is a symlink; MLX_ERR_IO naming
 * what could not be removed (what was removed stays removed). */
int mlx_path_remove(int dirfd, const char *rel, struct mlx_err *err);

/* Returns 0 if every parent directory of rel below dirfd that exists is a
 * real directory (no symlink), so a write at rel stays below dirfd;
 * MLX_ERR_INVALID naming the symlink or non-directory in the way. rel itself
 * may be anything or missing. Creates nothing. */
int mlx_path_check_parents(int dirfd, const char *rel, struct mlx_err *err);

#endif
