/* store_internal.h — what the files of the store share (store.c owns the
 * struct; store_lookup.c works through this). */
#ifndef MLX_STORE_INTERNAL_H
#define MLX_STORE_INTERNAL_H

#include "store.h"

/* Opens the shard directory sub ("ab") of objects/, never through a
 * symlink. Returns the fd (the caller closes it), or -1 with errno set. */
int mlx_store_open_shard(const struct mlx_store *s, const char *sub);

#endif
