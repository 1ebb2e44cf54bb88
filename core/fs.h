/* fs.h — file system primitives with the durability rules of DESIGN §3.
 *
 * Writes that must never be seen half-done go through mlx_fs_write_atomic:
 * temp file in the same directory, fsync, rename, fsync of the directory. */
#ifndef MLX_FS_H
#define MLX_FS_H

#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "err.h"

/* A growable list of strings; the list owns every item. */
struct mlx_strlist {
	char **items;
	size_t len, cap;
};

/* Frees every item and the array; leaves an empty list. Safe on an empty list. */
void mlx_strlist_free(struct mlx_strlist *list);

/* Appends a copy of s. Returns 0 or MLX_ERR_NOMEM. */
int mlx_strlist_push(struct mlx_strlist *list, const char *s, struct mlx_err *err);

/* Fills out (which must be empty) with the names in dir, without "." and
 * "..", sorted by bytes. Returns 0; MLX_ERR_NOTFOUND if dir does not exist;
 * MLX_ERR_IO otherwise. On failure out is left empty. */
int mlx_fs_list(const char *dir, struct mlx_strlist *out, struct mlx_err *err);

/* One entry of a directory listing: its name, len bytes at off in the
 * listing's names (NUL-terminated), and the type readdir gave (DT_REG,
 * DT_DIR, DT_UNKNOWN ...). */
struct mlx_dirent {
	size_t off, len;
	unsigned char type;
};

/* A directory's entries, as mlx_fs_list_walk reads them: no allocation per
 * entry, only the two arrays, which the listing owns. Start it zeroed. */
struct mlx_dirlist {
	struct mlx_dirent *items;
	size_t len, cap;
	char *names;
	size_t names_len, names_cap;
};

/* Frees both arrays; leaves an empty listing. Safe on an empty one. */
void mlx_dirlist_free(struct mlx_dirlist *l);

/* With mlx_fs_list_walk: refuse an entry that is not a regular file or a
 * directory by the type readdir gives (a symlink, a fifo, DT_UNKNOWN), or a
 * name with a newline, instead of listing it. */
#define MLX_FS_LIST_STRICT 1

/* Reads the entries of d into l (emptied first), skipping what the
 * workspace's walks skip (mlx_path_walk_skips), sorted as the paths of
 * their files sort (mlx_path_entry_order: a directory's name is followed
 * by '/'; an entry of unknown type sorts as a file). dir and sub name the
 * directory in messages, as "dir/sub" (sub NULL: dir alone). Returns 0;
 * MLX_ERR_INVALID for an entry that flags refuse; MLX_ERR_NOMEM; MLX_ERR_IO
 * (or another code of mlx_err_sys) if readdir fails. On failure l holds
 * part of the directory; it belongs to the caller either way, who frees
 * it with mlx_dirlist_free. err may be NULL. */
int mlx_fs_list_walk(DIR *d, int flags, struct mlx_dirlist *l, const char *dir, const char *sub,
                     struct mlx_err *err);

enum mlx_file_type { MLX_FT_NONE, MLX_FT_FILE, MLX_FT_DIR, MLX_FT_LINK, MLX_FT_OTHER };

struct mlx_stat {
	enum mlx_file_type type;
	uint64_t size;
	uint32_t mode;		/* permission bits only */
	int64_t mtime_ns;
	uint64_t ino, dev;
};

/* lstat()s path into st. Returns 0; MLX_ERR_NOTFOUND (st->type = MLX_FT_NONE)
 * if nothing is there; MLX_ERR_IO otherwise. */
int mlx_fs_stat(const char *path, struct mlx_stat *st, struct mlx_err *err);

/* Creates dir and its missing parents with mode (like mkdir -p). Returns 0,
 * also when it already exists; MLX_ERR_IO if a component is not a directory
 * or cannot be created. */
int mlx_fs_mkdirs(const char *dir, mode_t mode, struct mlx_err *err);

/* Replaces path with len bytes of data, atomically and durably: readers see
 * the old content or the new, never a mix, even after a crash. The file gets
 * permission bits mode. Returns 0 or MLX_ERR_IO, leaving path untouched and
 * no temp file behind. */
int mlx_fs_write_atomic(const char *path, const void *data, size_t len, mode_t mode, struct mlx_err *err);

/* Writes all len bytes of data to fd, retrying short writes and EINTR.
 * Returns 0, or -1 with errno set by the failed write. */
int mlx_fs_write_all(int fd, const void *data, size_t len);

/* Reads the whole file at path into *data: a malloc'd buffer of *len
 * bytes and a NUL after them (so text can be parsed in place), which the
 * caller frees. Reads to the end of the file, whatever fstat said: a file
 * that grows or shrinks while read gives what was there. Retries EINTR
 * and short reads. max is the most bytes accepted (SIZE_MAX: no limit but
 * memory); a larger file is refused before it is read whole. Returns 0;
 * MLX_ERR_NOTFOUND; MLX_ERR_IO (cannot open, stat or read: the message
 * names path); MLX_ERR_NOMEM; MLX_ERR_INVALID ("PATH is larger than MAX
 * bytes"). On failure *data is NULL and *len 0. */
int mlx_fs_read_all(const char *path, size_t max, char **data, size_t *len, struct mlx_err *err);

/* As mlx_fs_read_all for the open descriptor fd, from its current offset
 * to the end; what names it in messages ("cannot read WHAT: ..."). fd
 * stays open. */
int mlx_fs_read_fd(int fd, const char *what, size_t max, char **data, size_t *len, struct mlx_err *err);

/* fsync()s the directory that contains path, so a rename into it is durable.
 * Returns 0 or MLX_ERR_IO. */
int mlx_fs_sync_parent(const char *path, struct mlx_err *err);

/* Takes an advisory lock (flock) on path, creating it empty if missing:
 * exclusive, or shared if shared is set. With wait unset, returns
 * MLX_ERR_BUSY at once if another process holds a conflicting lock; with it
 * set, waits, and returns MLX_ERR_INTERRUPTED if a signal arrives. On
 * success *fd holds the lock until mlx_fs_unlock(*fd) or the process ends
 * (kill -9 included: the kernel drops it). Returns 0 or MLX_ERR_IO. */
int mlx_fs_lock(const char *path, int shared, int wait, int *fd, struct mlx_err *err);

/* Releases a lock taken by mlx_fs_lock. Safe on -1. */
void mlx_fs_unlock(int fd);

/* Fills out (PATH_MAX bytes) with the absolute path of path with every
 * symlink, "." and ".." resolved (realpath(3)). Returns 0, MLX_ERR_NOTFOUND
 * or MLX_ERR_IO. */
int mlx_fs_realpath(const char *path, char *out, struct mlx_err *err);

/* Removes path like rm -rf: a file, a symlink (not what it points to) or a
 * directory with everything below it; never crosses into another file
 * system. Returns 0, also when nothing was there; MLX_ERR_IO naming the
 * entry that could not be removed (what was removed before stays removed). */
int mlx_fs_remove_tree(const char *path, struct mlx_err *err);

#endif
