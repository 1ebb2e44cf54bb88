/* dirnames.h — the names in small directories, listed once, so that many
 * paths that do not exist cost no stat each.
 *
 * A pipeline's prefetch stats every declared file; in a fresh project
 * 100,000 outs in one empty directory were 100,000 failed fstatat calls,
 * each a path walk in the kernel. Once enough names of one directory are
 * found missing, the directory is read (when small: its st_size says so)
 * and a name it does not hold is known absent from that listing. Names
 * are matched ignoring ASCII case, and a listing with any other byte is
 * not used, so that a case-insensitive file system (where a stat of "A"
 * finds "a") gets the same answers as from stats. */
#ifndef MLX_DIRNAMES_H
#define MLX_DIRNAMES_H

#include <stddef.h>

/* Directories remembered at most; paths elsewhere are simply stat'ed. */
#define MLX_DIRNAMES_DIRS 16

struct mlx_dirnames_dir;

/* The listings of directories below one directory descriptor: set dfd
 * and zero the rest before use; mlx_dirnames_free frees them. */
struct mlx_dirnames {
	int dfd; /* the directory paths are relative to; not owned */
	size_t ndirs;
	struct mlx_dirnames_dir *dirs[MLX_DIRNAMES_DIRS];
};

/* Counts path (relative to d->dfd) as found missing by a stat; past a few
 * misses in its directory, lists that directory if it is small. Failures
 * (a directory that cannot be opened or read, no memory) only mean that
 * the paths there are stat'ed as before. */
void mlx_dirnames_missed(struct mlx_dirnames *d, const char *path);

/* Returns 1 when path surely does not exist: its directory was listed and
 * holds no entry of its name; else 0 (stat it). */
int mlx_dirnames_absent(const struct mlx_dirnames *d, const char *path);

/* Frees the listings (d may be all zero). */
void mlx_dirnames_free(struct mlx_dirnames *d);

#endif
