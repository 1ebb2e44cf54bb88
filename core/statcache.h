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
 * Entries live in two places. The database has one row per path, for
 * looking up single files. Beside it, in .mlx/state.db-trees/, each directory walked
 * whole (a tracked directory) has a tree: one file with the entries of all
 * files below it, sorted as the walk sorts them, which a re-check maps and
 * merges with the walk, as git reads its index, instead of reading a row
 * per file; a re-check that finds its tree unchanged does not open the
 * database at all. Every entry in either place is a claim that was true
 * when made (a file with these facts had this hash), so the two never need
 * to agree: an entry that no longer describes its file does not match it.
 *
 * The cache is only an accelerator: a damaged database is set aside and
 * rebuilt, a damaged tree is ignored, and a lost write only costs
 * re-hashing. */
#ifndef MLX_STATCACHE_H
#define MLX_STATCACHE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hash.h"

#define MLX_STATCACHE_RACY_NS 100000000 /* 100 ms: above any kernel's timestamp tick */

struct mlx_statcache;

/* Opens the cache whose database is at path (created, with path-trees/
 * beside it, when first written) into *out; the caller closes it with
 * mlx_statcache_close. The database is opened when first needed; a file
 * there that is not a usable database is then renamed to path.broken and a
 * new one created. Returns 0 or MLX_ERR_NOMEM; the other functions return
 * MLX_ERR_IO, or MLX_ERR_BUSY if another process holds the database too
 * long. */
int mlx_statcache_open(const char *path, struct mlx_statcache **out, struct mlx_err *err);

/* Writes the rows still waiting (best effort), closes the database and
 * frees sc. Safe on NULL. */
void mlx_statcache_close(struct mlx_statcache *sc);

/* For every file of list (sorted, paths relative to prefix: the cache key is
 * "prefix/path", or path if prefix is ""), copies the cached hash into hex,
 * and its time into cached_ns, when the cached stat matches and the entry is
 * not racy. With whole set (list is everything below prefix, as
 * mlx_hash_walk gives), the entries below prefix are read at once (the tree
 * of prefix, else a range of rows), and those matching no file are
 * remembered and forgotten by the next whole mlx_statcache_store of prefix;
 * otherwise each file of a short list is looked up alone, and a long one
 * (64 files or more, in any order) is merged with one ordered scan of the
 * rows. *hits (if not NULL) gets the
 * number filled. Returns 0 or MLX_ERR_IO/MLX_ERR_BUSY (hexes filled so far
 * are right). */
int mlx_statcache_fill(struct mlx_statcache *sc, const char *prefix, int whole, struct mlx_filelist *list,
		       size_t *hits, struct mlx_err *err);

/* After a whole fill of prefix that found its tree holding exactly the
 * files of list, unchanged, with the id of their manifest recorded: copies
 * that id into hex and returns 1, so that the manifest need not be built
 * again. Otherwise returns 0. */
int mlx_statcache_id(const struct mlx_statcache *sc, const char *prefix, char hex[MLX_HASH_HEX_SIZE]);

/* How a directory walked whole differs from its tree: the tree's manifest
 * id and the files and bytes it holds, and the differences, each list
 * sorted by path and owned by the struct. */
struct mlx_statcache_changes {
	char id[MLX_HASH_HEX_SIZE];
	uint64_t files, bytes;
	struct mlx_filelist added;   /* files the tree lacks: stat facts, no hash */
	struct mlx_filelist changed; /* files whose facts differ from their entry, or are
				      * racy: stat facts, no hash (their bytes may be the same) */
	struct mlx_filelist was;     /* the entries of changed, index by index: hash, size, mode */
	struct mlx_filelist deleted; /* entries with no file: hash, size, mode */
};

/* Frees the lists of c; leaves it empty. */
void mlx_statcache_changes_free(struct mlx_statcache_changes *c);

/* The re-check of a directory walked whole, without a list of its files:
 * if the tree of prefix records the id of its manifest, compares dir
 * (prefix's absolute path) with it, file by file: each file's fstatat
 * (through its directory's descriptor) with its entry in the mapped tree,
 * in threads, reading no database and allocating per directory and per
 * difference only. Fills *out (which the caller frees with
 * mlx_statcache_changes_free) and returns 1. Returns 0 (out empty) when it
 * cannot tell: no tree or no id, more than limit differences, or anything
 * the walk would refuse or fail on (a symlink, a fifo, an unreadable
 * directory), for which the caller walks and hashes as usual, and the walk
 * names the problem; or MLX_ERR_INTERRUPTED. A subdirectory whose stat is
 * as the tree's record of it is not read (its names are the tree's); when
 * nothing differs and a directory was read that a record would spare, the
 * tree is written again with the records (an accelerator: a failure to
 * write is ignored). */
int mlx_statcache_changes(struct mlx_statcache *sc, const char *prefix, const char *dir, size_t limit,
			  struct mlx_statcache_changes *out);

/* The no-op case: returns 1 with the tree's id in hex, its number of files
 * in *files and bytes in *bytes if mlx_statcache_changes finds no
 * difference at all (stopping at the first); else 0 or
 * MLX_ERR_INTERRUPTED. */
int mlx_statcache_unchanged(struct mlx_statcache *sc, const char *prefix, const char *dir,
			    char hex[MLX_HASH_HEX_SIZE], uint64_t *files, uint64_t *bytes);

/* Records every file of list that was hashed here (hashed_ns != 0). With
 * whole set (list was filled whole, and is now fully hashed), also makes
 * list the tree of prefix, with id (the id of list's manifest, or NULL),
 * and forgets the stale entries found by the fill; when the fill found the
 * tree as list is and nothing was hashed, this writes nothing. Without
 * whole the rows wait, and are written with the next write, before a
 * lookup of more than 16 paths (a shorter one reads them), once 256 wait,
 * or by mlx_statcache_close (a row lost to a kill costs one hash). Returns 0, MLX_ERR_NOMEM or
 * MLX_ERR_IO/MLX_ERR_BUSY. */
int mlx_statcache_store(struct mlx_statcache *sc, const char *prefix, int whole, const struct mlx_filelist *list,
			const char *id, struct mlx_err *err);

/* A tree written a list at a time, so that a checkout that places a
 * directory window by window (core/checkout.c) leaves the tree a walk
 * would have written, without a list of all its files: start creates a
 * temp file beside the tree of prefix and sets *out; add appends the files
 * of list that have facts and a hash time (as mlx_statcache_store records
 * them), which must come in increasing path order across calls (else
 * MLX_ERR_INVALID); finish records id (or NULL: none) only if files (the
 * number of files the id's manifest lists) entries were written, makes the
 * tree durable, puts it in place of the old one and frees w, also on
 * failure; abort removes the temp file and frees w (safe on NULL). Each
 * returns 0 or MLX_ERR_IO/MLX_ERR_NOMEM. */
struct mlx_tree_writer;
int mlx_statcache_tree_start(struct mlx_statcache *sc, const char *prefix, struct mlx_tree_writer **out,
                             struct mlx_err *err);
int mlx_statcache_tree_add(struct mlx_tree_writer *w, const struct mlx_filelist *list, struct mlx_err *err);
int mlx_statcache_tree_finish(struct mlx_tree_writer *w, const char *id, uint64_t files, struct mlx_err *err);
void mlx_statcache_tree_abort(struct mlx_tree_writer *w);

/* After a comparison with the tree of prefix (mlx_statcache_changes)
 * whose changed files turned out to hold the bytes and mode of their
 * entries (touched, or racy when recorded): records their facts now in
 * the tree, as in their rows, so that the next comparison finds no
 * difference instead of looking them up again. same: those files, sorted,
 * hashed (paths relative to prefix). The tree's manifest id is kept; a
 * file whose hash or mode differs from its entry is left out. Returns 0
 * or MLX_ERR_IO/MLX_ERR_NOMEM (the tree then stays as it was). */
int mlx_statcache_refresh(struct mlx_statcache *sc, const char *prefix, const struct mlx_filelist *same,
                          struct mlx_err *err);

/* After an add that changed the manifest of directory prefix from was to
 * id by what differs (the files it found changed, or the members it was
 * given): records the tree of prefix, if it is the tree of was, as the
 * directory is now, so that the next comparison finds no difference and
 * has the new id. now: the files added or changed (and those touched),
 * sorted and hashed, with their facts; gone: the paths of the files
 * removed, sorted; files: the new manifest's number of files (id is
 * recorded only if the tree then holds that many). Otherwise writes
 * nothing. Returns 0 or MLX_ERR_IO/MLX_ERR_NOMEM (the tree then stays as
 * it was). */
int mlx_statcache_patch(struct mlx_statcache *sc, const char *prefix, const char *was,
                        const struct mlx_filelist *now, const struct mlx_filelist *gone, const char *id,
                        uint64_t files, struct mlx_err *err);

#endif
