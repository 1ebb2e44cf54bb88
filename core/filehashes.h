/* filehashes.h — the hashes of many single files, looked up by path.
 *
 * What the pipeline's prefetch learns of every declared file (deps and
 * outs) in one pass through the stat cache: kept here, a 100,000-step no-op
 * decides its steps against C records instead of a Lua table per path, and
 * only the paths asked for one by one become Lua values. */
#ifndef MLX_FILEHASHES_H
#define MLX_FILEHASHES_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hash.h"

struct mlx_filehashes;

/* What fh knows of one file: less than a struct mlx_file, which also holds
 * the stat facts the stat cache needed (100,000 of them are 5 MB less). */
struct mlx_filehash {
	const char *path; /* as given, NUL-terminated */
	uint64_t size;
	uint32_t mode; /* 0644 or 0755 */
	int state;     /* MLX_FILEHASH_FILE, _ABSENT, or 0 once forgotten */
	char hex[MLX_HASH_HEX_SIZE];
};

#define MLX_FILEHASH_FILE 1
#define MLX_FILEHASH_ABSENT 2

/* Indexes the files of list by path, keeping their paths, size, mode and
 * hex and taking the list's contents (list is left empty, also on failure,
 * when they are freed): an item with a hex is a file (hashed, as
 * mlx_workspace_hash_files leaves it), one without ("") a path that did not
 * exist. A later item with the same path replaces an earlier one. Returns 0
 * and *out, which the caller frees with mlx_filehashes_free, or
 * MLX_ERR_NOMEM. */
int mlx_filehashes_index(struct mlx_filelist *list, struct mlx_filehashes **out, struct mlx_err *err);

/* Returns the record of the file at path (len bytes), or NULL when fh does
 * not know it (never given, or forgotten). The record belongs to fh. */
const struct mlx_filehash *mlx_filehashes_find(const struct mlx_filehashes *fh, const char *path, size_t len);

/* Returns 1 when path (len bytes) did not exist when fh was made and is not
 * forgotten since, else 0. */
int mlx_filehashes_absent(const struct mlx_filehashes *fh, const char *path, size_t len);

/* Forgets path (a step rewrote it): mlx_filehashes_find returns NULL and
 * mlx_filehashes_absent 0 for it from now on. Unknown paths are fine. */
void mlx_filehashes_forget(struct mlx_filehashes *fh, const char *path, size_t len);

/* Returns how many paths fh knows (files and absent ones), forgotten ones
 * included. */
size_t mlx_filehashes_count(const struct mlx_filehashes *fh);

/* Keeps at the front of names (*n of them), in their order, the first of
 * each distinct name that does not end in '/' (a directory, which is not
 * hashed as a single file), and sets *n to how many. Returns 0, or
 * MLX_ERR_NOMEM (names unchanged). */
int mlx_filehashes_unique(const char **names, size_t *n, struct mlx_err *err);

/* Frees fh (NULL is fine). */
void mlx_filehashes_free(struct mlx_filehashes *fh);

#endif
