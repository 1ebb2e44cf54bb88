/* lockindex.h — the index of mlx.lock's steps (.mlx/cache/lock-steps) as
 * compact records in memory.
 *
 * The file holds a header line, then one line per step:
 * "PIPELINE\tSTEP\tREST", where REST is the step's key and "\tOUT\tHASH" per
 * out (stdlib/mlx/pipeline/lockindex.lua writes it). A no-op of 100,000
 * steps asks for every step's line once; kept here, the lines of one
 * pipeline cost the file's bytes and a hash table of offsets instead of a
 * Lua string or two per step. */
#ifndef MLX_LOCKINDEX_H
#define MLX_LOCKINDEX_H

#include <stddef.h>

#include "err.h"

struct mlx_lockindex;

/* Reads the index at path when its first line is exactly header (the caller
 * names the version and the digest of the lock it must have been made
 * from), keeping the lines of pipeline; a later line for the same step
 * replaces an earlier one. Returns 0 and *out, which the caller frees with
 * mlx_lockindex_free; MLX_ERR_NOTFOUND when the file does not exist,
 * MLX_ERR_INVALID when its header differs (an index of another lock or
 * version), MLX_ERR_IO or MLX_ERR_NOMEM, with err filled. */
int mlx_lockindex_read(const char *path, const char *header, const char *pipeline, struct mlx_lockindex **out,
                       struct mlx_err *err);

/* Returns the REST of step name (name_len bytes) and its length in *len, or
 * NULL when the index has no line for it. The bytes belong to idx. */
const char *mlx_lockindex_find(const struct mlx_lockindex *idx, const char *name, size_t name_len,
                               size_t *len);

/* Returns how many steps idx holds. */
size_t mlx_lockindex_count(const struct mlx_lockindex *idx);

/* Returns the name of the i-th step (0 <= i < count, in file order) and its
 * length in *name_len; *rest and *rest_len get its REST. */
const char *mlx_lockindex_at(const struct mlx_lockindex *idx, size_t i, size_t *name_len, const char **rest,
                             size_t *rest_len);

/* Frees idx (NULL is fine). */
void mlx_lockindex_free(struct mlx_lockindex *idx);

#endif
