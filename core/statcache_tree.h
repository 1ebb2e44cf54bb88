/* statcache_tree.h — the trees of the stat cache (internal to statcache.c).
 *
 * For each directory walked whole (a tracked directory), one file holds the
 * entries of every file below it, sorted as the walk sorts them, so that a
 * no-op re-check maps one file and merges it with the walk, as git reads its
 * index, instead of reading a database row per file. The file for prefix P
 * is <dir>/<SHA-256 of P>; it starts with a magic and P itself and ends with
 * the entry count, and is replaced whole (temp file, fsync, rename), never
 * changed in place, so a reader sees one complete version. */
#ifndef MLX_STATCACHE_TREE_H
#define MLX_STATCACHE_TREE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fs.h"
#include "hash.h"

/* Copies hash into f->hex and hashed_ns into f->cached_ns if the entry
 * (ino, size, mtime_ns, ctime_ns, hashed_ns) describes f as it is now and is
 * not racy. Returns 1 if it did, else 0 (statcache.c). */
int mlx_statcache_match(struct mlx_file *f, uint64_t ino, uint64_t size, int64_t mtime_ns, int64_t ctime_ns,
			int64_t hashed_ns, const unsigned char hash[32]);

/* hex (64 digits) to 32 bytes. */
void mlx_statcache_hex_to_bin(const char *hex, unsigned char bin[32]);

/* Fills list (sorted, relative to prefix) from the tree of prefix in dir,
 * adding to *hits; the keys ("prefix/path") of entries that match no file
 * of list go to stale. *found is 0 if there is no tree (or it is damaged,
 * then ignored); *fresh is 1 if the tree holds exactly the files of list
 * that have facts, each matched. Returns 0 or MLX_ERR_NOMEM. */
int mlx_statcache_tree_fill(const char *dir, const char *prefix, struct mlx_filelist *list, size_t *hits,
			    struct mlx_strlist *stale, int *found, int *fresh, struct mlx_err *err);

/* Makes the files of list that have facts and a hash time (hashed here, or
 * from the cache) the tree of prefix in dir, creating dir. Returns 0 or
 * MLX_ERR_IO/MLX_ERR_NOMEM. */
int mlx_statcache_tree_write(const char *dir, const char *prefix, const struct mlx_filelist *list,
			     struct mlx_err *err);

#endif
