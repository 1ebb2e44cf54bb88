/* statcache.h — remembered hashes of files that have not changed.
 *
 * The stat cache (.mlx/state.db, SQLite in WAL mode) maps a project-relative
 * path and the file's (inode, size, mtime_ns, ctime_ns) to its SHA-256, so
 * that re-checking unchanged data reads no file contents. ctime is kept too:
 * unlike mtime, no tool can set it back, so a file rewritten and re-dated
 * (tar, rsync -t, touch -r) is still noticed.
 *
 * Racy entries (git's rule): file systems date writes with a coarse clock,
 * so a file changed again within the same tick after it was hashed keeps its
 * mtime. An entry is trusted only if the file's mtime is older than the
 * moment its hash was started by more than MLX_STATCACHE_RACY_NS; other
 * entries are re-hashed, and then stored again with a later time.
 *
 * The cache is only an accelerator: a damaged database is set aside and
 * rebuilt, and a lost write only costs re-hashing. */
#ifndef MLX_STATCACHE_H
#define MLX_STATCACHE_H

#include <stddef.h>

#include "err.h"
#include "hash.h"

#define MLX_STATCACHE_RACY_NS 100000000 /* 100 ms: above any kernel's timestamp tick */

struct mlx_statcache;

/* Opens (creating) the cache database at path into *out; the caller closes
 * it with mlx_statcache_close. A file that is not a usable database is
 * renamed to path.broken and a new one created. Returns 0, MLX_ERR_IO, or
 * MLX_ERR_BUSY if another process holds it too long. */
int mlx_statcache_open(const char *path, struct mlx_statcache **out, struct mlx_err *err);

/* Closes the database and frees sc. Safe on NULL. */
void mlx_statcache_close(struct mlx_statcache *sc);

/* For every file of list (sorted, paths relative to prefix: the cache key is
 * "prefix/path", or path if prefix is ""), copies the cached hash into hex
 * when the cached stat matches and the entry is not racy. With whole set
 * (list is everything below prefix, as mlx_hash_walk gives), the entries
 * below prefix are loaded in one query, and those matching no file are
 * remembered and deleted by the next mlx_statcache_store; otherwise each
 * file is looked up alone. *hits (if not NULL) gets the number filled.
 * Returns 0 or MLX_ERR_IO/MLX_ERR_BUSY (hexes filled so far are right). */
int mlx_statcache_fill(struct mlx_statcache *sc, const char *prefix, int whole, struct mlx_filelist *list,
		       size_t *hits, struct mlx_err *err);

/* Records every file of list that was hashed here (hashed_ns != 0), and
 * forgets the stale entries found by the last fill of prefix, in one
 * transaction. Returns 0 or MLX_ERR_IO/MLX_ERR_BUSY. */
int mlx_statcache_store(struct mlx_statcache *sc, const char *prefix, const struct mlx_filelist *list,
			struct mlx_err *err);

#endif
