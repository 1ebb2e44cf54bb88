/* statcache_tree.h — the trees of the stat cache (internal to statcache.c).
 *
 * For each directory walked whole (a tracked directory), one file holds the
 * entries of every file below it, sorted as the walk sorts them, so that a
 * no-op re-check maps one file and merges it with the walk, as git reads its
 * index, instead of reading a database row per file. The file for prefix P
 * is <dir>/<SHA-256 of P>; it starts with a magic, P itself and the id of
 * the manifest of its files (when they are all the files there), and ends
 * with the entry count, and is replaced whole (temp file, fsync, rename), never
 * changed in place, so a reader sees one complete version. Among the files'
 * entries, a directory record (a path ending in '/') says which names a
 * subdirectory held when its stat was as recorded, so that a re-check
 * need not read a directory whose stat has not changed since, as git's
 * untracked cache does. */
#ifndef MLX_STATCACHE_TREE_H
#define MLX_STATCACHE_TREE_H

#include <limits.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fs.h"
#include "hash.h"
#include "watch.h"

/* Copies hash into f->hex and hashed_ns into f->cached_ns if the entry
 * (ino, size, mtime_ns, ctime_ns, hashed_ns, and mode unless 0) describes f
 * as it is now and is not racy. Returns 1 if it did, else 0 (statcache.c). */
int mlx_statcache_match(struct mlx_file *f, uint64_t ino, uint64_t size, int64_t mtime_ns, int64_t ctime_ns,
			int64_t hashed_ns, uint32_t mode, const unsigned char hash[32]);

/* hex (64 digits) to 32 bytes, and back. */
void mlx_statcache_hex_to_bin(const char *hex, unsigned char bin[32]);
void mlx_statcache_bin_to_hex(const unsigned char bin[32], char hex[MLX_HASH_HEX_SIZE]);

/* What a tree told about the list it was merged with. */
struct mlx_tree_fill {
	int found;	/* there is a (sound) tree */
	int fresh;	/* it holds exactly the files of list that have facts, each matched */
	int whole;	/* ... and those are all the files of list */
	char id[MLX_HASH_HEX_SIZE]; /* with whole: the manifest id recorded with it, or "" */
};

/* Fills list (sorted, relative to prefix) from the tree of prefix in dir,
 * adding to *hits; the keys ("prefix/path") of entries that match no file
 * of list go to stale. A missing or damaged tree is found = 0 (a damaged
 * one is ignored). Returns 0 or MLX_ERR_NOMEM. */
int mlx_statcache_tree_fill(const char *dir, const char *prefix, struct mlx_filelist *list, size_t *hits,
			    struct mlx_strlist *stale, struct mlx_tree_fill *out, struct mlx_err *err);

/* Makes the files of list that have facts and a hash time (hashed here, or
 * from the cache) the tree of prefix in dir, creating dir. id (or NULL) is
 * the id of list's manifest; it is recorded only if every file of list is
 * in the tree. Returns 0 or MLX_ERR_IO/MLX_ERR_NOMEM. */
int mlx_statcache_tree_write(const char *dir, const char *prefix, const struct mlx_filelist *list, const char *id,
			     struct mlx_err *err);

/* Starts the tree of prefix in dir (creating dir) as a temp file beside
 * it, for mlx_statcache_tree_add and _finish (statcache.h): a tree
 * written a list at a time. Returns 0 or MLX_ERR_IO/MLX_ERR_NOMEM. */
struct mlx_tree_writer;
int mlx_statcache_tree_begin(const char *dir, const char *prefix, struct mlx_tree_writer **out,
                             struct mlx_err *err);

/* Writes the tree of prefix in dir again with the facts of the files of
 * same (sorted, hashed, paths relative to prefix) whose hash and mode are
 * those of their entry, every other entry and the manifest id as they
 * are. Without a (sound) tree, or with nothing to change, writes nothing.
 * Returns 0 or MLX_ERR_IO/MLX_ERR_NOMEM. */
int mlx_statcache_tree_refresh(const char *dir, const char *prefix, const struct mlx_filelist *same,
                               struct mlx_err *err);

/* Writes the tree of prefix in dir, which records the manifest was,
 * again as it is after some files were added, changed or removed: the
 * entries of now (sorted, hashed, with facts; paths relative to prefix) in
 * place of those of their paths or among them, the entries of the paths of
 * gone (sorted) left out, every other entry and directory record as it is,
 * and id as its manifest id if it then holds files entries (see
 * mlx_statcache_tree_finish). Without a (sound) tree of was writes
 * nothing. Returns 0 or MLX_ERR_IO/MLX_ERR_NOMEM. */
int mlx_statcache_tree_patch(const char *dir, const char *prefix, const char *was,
                             const struct mlx_filelist *now, const struct mlx_filelist *gone, const char *id,
                             uint64_t files, struct mlx_err *err);

/* A tree mapped for reading: its entries lie between begin and end. */
struct mlx_tree_map {
	void *map;
	size_t size;
	const unsigned char *begin, *end;
	uint64_t count;		 /* the number of files' entries the trailer gives */
	int dirs;		 /* directory records may be among the entries (version 2) */
	const unsigned char *id; /* 32 bytes: the manifest id, or zeros */
	struct mlx_watch_fileid fid; /* the file mapped: its watch token is for it */
	char path[PATH_MAX];         /* the file's path */
};

/* The mode of a directory record (S_IFDIR): no file's mode is. */
#define MLX_TREE_DIR_MODE 040000u

/* One entry of a tree: its path (len bytes, not NUL-terminated) and its
 * facts: u64 ino, size, mtime_ns, ctime_ns, hashed_ns, u32 mode, hash. */
struct mlx_tree_entry {
	const char *path;
	size_t len;
	const unsigned char *facts;
};

/* Maps the tree of prefix in dir into *m. Returns 1, or 0 if there is none
 * or its frame is damaged (nothing is mapped then). */
int mlx_statcache_tree_map(const char *dir, const char *prefix, struct mlx_tree_map *m);

/* Lets go of the pages of a mapped tree that lie wholly between from and
 * to, read already: the memory of a comparison then does not grow with the
 * tree (they are mapped in again if read again). */
void mlx_statcache_tree_release(const unsigned char *from, const unsigned char *to);

/* Unmaps what mlx_statcache_tree_map mapped. */
void mlx_statcache_tree_unmap(struct mlx_tree_map *m);

/* Reads the entry at *p (entries end at end) into e and moves past it;
 * returns 1, 0 at the end, or -1 if what is there is not an entry. */
int mlx_statcache_tree_next(const unsigned char **p, const unsigned char *end, struct mlx_tree_entry *e);

/* Reads the u32 and u64 of a tree (little-endian); inline, as a re-check
 * reads several per file. */
static inline uint32_t mlx_statcache_tree_get32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static inline uint64_t mlx_statcache_tree_get64(const unsigned char *p)
{
	return (uint64_t)mlx_statcache_tree_get32(p) | (uint64_t)mlx_statcache_tree_get32(p + 4) << 32;
}

/* 1 if e, an entry of a tree with directory records (map->dirs), is one. */
static inline int mlx_statcache_tree_is_dir(const struct mlx_tree_entry *e)
{
	return e->path[e->len - 1] == '/';
}

/* The facts of a directory as a directory record holds them. */
struct mlx_tree_dir {
	char *path; /* relative to the prefix, ending in '/' */
	size_t len;
	uint64_t ino;
	int64_t mtime_ns, ctime_ns;
	int64_t listed_ns; /* when its names were read (after its stat) */
};

/* Writes the tree mapped in m (of prefix in dir) again with dirs (n of
 * them, sorted by path bytes) as its directory records in place of those
 * it has, every file's entry and the manifest id as they are. Returns 0 or
 * MLX_ERR_IO/MLX_ERR_NOMEM/MLX_ERR_INVALID (the tree then stays as it
 * was). */
int mlx_statcache_tree_put_dirs(const char *dir, const char *prefix, const struct mlx_tree_map *m,
                                const struct mlx_tree_dir *dirs, size_t n, struct mlx_err *err);

/* See mlx_statcache_changes (statcache.h): the comparison of the directory
 * dir with the tree of prefix in trees (statcache_check.c). */
struct mlx_statcache_changes;
int mlx_statcache_tree_changes(const char *trees, const char *prefix, const char *dir, size_t limit,
			       struct mlx_statcache_changes *out);

#endif
