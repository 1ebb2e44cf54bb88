/* store_internal.h — what the files of the store share (store.c owns the
 * struct; store_lookup.c works through this). */
#ifndef MLX_STORE_INTERNAL_H
#define MLX_STORE_INTERNAL_H

#include "store.h"

/* Opens the shard directory sub ("ab") of objects/, never through a
 * symlink. Returns the fd (the caller closes it), or -1 with errno set. */
int mlx_store_open_shard(const struct mlx_store *s, const char *sub);

/* ---- objects published before they are durable (store_unsynced.c) ---- */

#define MLX_STORE_BOOT_ID_SIZE 40 /* a UUID (36 characters) and its NUL */

/* Writes the kernel's boot id into out, or "" when it cannot be read (no
 * /proc): then nothing is published before it is durable. */
void mlx_store_boot_id(char out[MLX_STORE_BOOT_ID_SIZE]);

/* Makes durable, in dir, the record of a commit about to rename the n
 * objects hexes[] into objects/ unsynced: "<boot>.<pid>.<n>.open", its
 * path written into name, held (flock) through *fd until
 * mlx_store_unsynced_end. Returns 0, or MLX_ERR_IO / MLX_ERR_NOMEM /
 * MLX_ERR_INVALID (name too long) with no record. */
int mlx_store_unsynced_begin(const char *dir, const char *boot, const char *const *hexes, size_t n,
                             char *name, size_t name_size, int *fd, struct mlx_err *err);

/* Ends the commit of the record at name, held by fd: marks it finished
 * (every object of it was renamed) when finished is 1, and lets it go.
 * Cannot fail (a record left open is checked the same way). */
void mlx_store_unsynced_end(const char *name, int fd, int finished);

/* Appends to names the records of dir of this boot that a sync started
 * now would cover: finished ones, and those no commit holds any more.
 * Returns 0 (also when dir does not exist), MLX_ERR_IO or MLX_ERR_NOMEM. */
int mlx_store_unsynced_collect(const char *dir, const char *boot, struct mlx_strlist *names,
                               struct mlx_err *err);

/* Removes the records names of dir (after a sync covered them). Cannot
 * fail: a record left behind is removed by a later commit. */
void mlx_store_unsynced_forget(const char *dir, const struct mlx_strlist *names);

/* Checks the objects of every record in dir from another boot (or every
 * record, when boot is ""): a damaged object is moved to quarantine/ and
 * counted in *damaged; then the record is removed. Returns 0 (also when dir
 * does not exist), or MLX_ERR_IO with the records left for the next try. */
int mlx_store_unsynced_recover(struct mlx_store *s, const char *dir, const char *boot, size_t *damaged,
                               struct mlx_err *err);

#endif
