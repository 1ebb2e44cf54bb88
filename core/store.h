/* store.h — the content-addressed object store, .mlx/cache/objects/.
 *
 * An object is a read-only file named by the SHA-256 of its bytes:
 * objects/ab/cdef… (the first two hex digits are a directory, so none grows
 * past 1/256 of the store). A directory is stored as its manifest (hash.h)
 * plus one object per distinct file content.
 *
 * Writing is done in batches, as git's batch fsync mode: stage functions
 * copy each file into a temp file under .mlx/tmp/put-…/ while hashing the
 * copy (so an object's name always matches its bytes, even if the source
 * changes meanwhile); mlx_store_commit then makes every staged file durable
 * with one syncfs(2), renames them into objects/, and syncs again. Until the
 * commit returns, nothing new is visible in objects/, so a crash or kill -9
 * leaves at most stale temp files, which the next mlx_store_open removes.
 * Renames are atomic: two processes storing the same content leave one
 * whole object. A user's file is never modified by staging. Objects fetched
 * from a remote are the exception to "durable before visible"
 * (mlx_store_defer_durability): they are published at once, after a
 * durable record of them, and checked if the machine restarts first.
 *
 * Every open store holds .mlx/cache/gc.lock shared; mlx_store_open with
 * MLX_STORE_EXCLUSIVE holds it exclusively (gc), so objects cannot be
 * collected between their commit and the lock file that points at them.
 *
 * Below objects/, nothing follows a symlink: shard directories and objects
 * are opened through the objects directory's descriptor with O_NOFOLLOW
 * (AT_SYMLINK_NOFOLLOW), so a symlink in the place of a shard or of an
 * object is not part of the store. It is never read, moved or written
 * through; mlx_store_list names it and mlx_store_remove deletes the link
 * itself, so that gc removes it and fsck reports it. */
#ifndef MLX_STORE_H
#define MLX_STORE_H

#include <stddef.h>
#include <sys/types.h>

#include "err.h"
#include "fs.h"
#include "hash.h"
#include "pool.h"

enum mlx_link {
	MLX_LINK_COPY,		/* reflink (FICLONE) where the file system can, else a copy */
	MLX_LINK_HARDLINK,	/* a hard link to the read-only object (copy across file systems) */
	MLX_LINK_SYMLINK,	/* a symlink to the object */
};

enum {
	MLX_STORE_EXCLUSIVE = 1, /* hold the gc lock exclusively */
	MLX_STORE_NOWAIT = 2,	 /* MLX_ERR_BUSY instead of waiting for the gc lock */
};

struct mlx_store;

/* Opens the store of the project at root (an absolute path), creating
 * .mlx/cache/objects/ and .mlx/tmp/, taking the gc lock (see above) and
 * removing temp files left by dead processes. The caller closes *out with
 * mlx_store_close. Returns 0, MLX_ERR_BUSY (NOWAIT and the lock is held),
 * MLX_ERR_INTERRUPTED or MLX_ERR_IO. */
int mlx_store_open(const char *root, int flags, struct mlx_store **out, struct mlx_err *err);

/* Discards what was staged and not committed, releases the lock, frees s.
 * Safe on NULL. */
void mlx_store_close(struct mlx_store *s);

/* Reports the progress of later stagings, checkouts and checks to progress
 * (pool.h; NULL: none), which must outlive those calls. */
void mlx_store_set_progress(struct mlx_store *s, const struct mlx_progress *progress);

/* With on, the commits of s that follow publish their objects before they
 * are durable, leaving the writing to the kernel: for objects fetched from
 * a remote, which holds them too. Each such commit first makes durable a
 * record of its objects (core/store_unsynced.c); an mlx_store_open after
 * the machine restarted checks them and moves a damaged one to quarantine.
 * Without a boot id to tell a restart from a kill (no /proc), commits stay
 * durable. Cannot fail. */
void mlx_store_defer_durability(struct mlx_store *s, int on);

/* How many objects mlx_store_open found damaged, and moved to quarantine,
 * because the machine restarted before a deferred commit's objects reached
 * the disk (0 almost always). */
size_t mlx_store_recovered_damaged(const struct mlx_store *s);

/* Writes into buf what a user is told of the objects mlx_store_open found
 * damaged after a restart, and returns 1; returns 0 when there were none. */
int mlx_store_recovery_note(const struct mlx_store *s, char *buf, size_t size);

/* The absolute path of the objects directory. */
const char *mlx_store_objects_dir(const struct mlx_store *s);

/* Writes the path of object hex into buf. Returns 0 or MLX_ERR_INVALID. */
int mlx_store_object_path(const struct mlx_store *s, const char *hex, char *buf, size_t size,
			  struct mlx_err *err);

/* Returns 1 if object hex is in the store (a regular file, not a symlink
 * nor below one), else 0. */
int mlx_store_has(const struct mlx_store *s, const char *hex);

/* Sets present[i] to 1 if object ids[i] is in the store (as
 * mlx_store_has), else 0, for i in 0..n-1, ids in any order. A shard asked
 * about densely is read whole rather than looked up object by object
 * (core/store_lookup.c): 20,000 objects in 256 shards cost about a
 * thousand system calls, not 20,000 stats. Cannot fail (an object that
 * cannot be looked up is not present). */
void mlx_store_has_many(const struct mlx_store *s, const char *const *ids, size_t n, unsigned char *present);

/* The status of one shard directory of objects/ ("ab"): what the presence
 * record of a tracked directory keeps (workspace_present.c), since adding,
 * removing or renaming an object in a shard changes its mtime and ctime. */
struct mlx_store_shard {
	uint64_t dev, ino; /* ino 0: the shard is absent or not a directory */
	int64_t mtime_ns, ctime_ns;
};

#define MLX_STORE_SHARDS 256

/* Fills out[k] with the status of shard k (k = its two hex digits read as
 * a number, 0..255), never following a symlink: a shard that is missing,
 * a symlink or a file has ino 0. Cannot fail. */
void mlx_store_shard_stats(const struct mlx_store *s, struct mlx_store_shard out[MLX_STORE_SHARDS]);

/* Stages every file of list, read from dir/path, in up to jobs threads.
 * A file whose hex is already set (from the stat cache) and whose object
 * exists with its size is skipped. Others get hex, size (bytes stored) and
 * hashed_ns set from the copy. Returns 0; the first failure, naming the file
 * (ENOSPC: "No space left on device"); or MLX_ERR_INTERRUPTED. What was
 * staged stays staged; nothing is visible before mlx_store_commit. */
int mlx_store_stage_files(struct mlx_store *s, const char *dir, struct mlx_filelist *list, int jobs,
			  struct mlx_err *err);

/* Stages len bytes at data (a manifest) as an object; its id goes to hex. */
int mlx_store_stage_bytes(struct mlx_store *s, const void *data, size_t len, char hex[MLX_HASH_HEX_SIZE],
			  struct mlx_err *err);

/* An object staged in pieces, as its bytes are made (a manifest merged
 * from the locked one), so that it is never whole in memory. */
struct mlx_store_writer;

/* Starts an object written in pieces: a new temp file of the batch,
 * hashed as it is written. The caller ends *out with
 * mlx_store_writer_finish or mlx_store_writer_abort. Not for several
 * threads at once. Returns 0, MLX_ERR_NOMEM or MLX_ERR_IO. */
int mlx_store_writer_start(struct mlx_store *s, struct mlx_store_writer **out, struct mlx_err *err);

/* Appends len bytes at data to the object. Returns 0, MLX_ERR_IO (ENOSPC:
 * "No space left on device") or MLX_ERR_CRYPTO; after a failure, only
 * mlx_store_writer_abort is left. */
int mlx_store_writer_write(struct mlx_store_writer *w, const void *data, size_t len, struct mlx_err *err);

/* Ends the object and frees w: its id (the SHA-256 of the bytes written)
 * goes to hex and it is staged as mlx_store_stage_bytes stages (not when
 * it is already in the store). Returns 0, or MLX_ERR_IO / MLX_ERR_NOMEM /
 * MLX_ERR_CRYPTO with nothing staged. */
int mlx_store_writer_finish(struct mlx_store_writer *w, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err);

/* Removes the temp file of w and frees w. Safe on NULL. */
void mlx_store_writer_abort(struct mlx_store_writer *w);

/* Writes object hex from elsewhere (a remote): fill(ctx, fd, err) writes
 * its bytes into fd, a new empty temp file of the batch; the file is then
 * hashed and staged only if its digest is hex. Safe to call from several
 * threads at once. Returns 0 (*size set); MLX_ERR_CORRUPT (the bytes are
 * not object hex: nothing is staged, the message names the object);
 * what fill returned; or MLX_ERR_IO. */
int mlx_store_stage_verified(struct mlx_store *s, const char *hex,
			     int (*fill)(void *ctx, int fd, struct mlx_err *err), void *ctx, uint64_t *size,
			     struct mlx_err *err);

/* As mlx_store_stage_verified, for an object already read whole into
 * memory (len bytes at data): the bytes are hashed first, and a temp file
 * is written only if they are object hex. Safe to call from several
 * threads at once. Returns 0; MLX_ERR_CORRUPT (nothing is written, the
 * message names the object); or MLX_ERR_IO. */
int mlx_store_stage_verified_bytes(struct mlx_store *s, const char *hex, const void *data, size_t len,
                                   struct mlx_err *err);

/* Number of staged objects waiting for mlx_store_commit. */
size_t mlx_store_staged(const struct mlx_store *s);

/* Makes the staged objects durable and visible (see above), after a
 * commit started by mlx_store_commit_start has ended. Returns 0 or
 * MLX_ERR_IO; on failure the objects not yet moved stay staged. */
int mlx_store_commit(struct mlx_store *s, struct mlx_err *err);

/* As mlx_store_commit, in a thread of its own: waits for the commit
 * started before (mlx_store_commit_wait), then takes what is staged now
 * and returns while it is synced and moved, so that the caller stages the
 * next objects meanwhile (each sync waits for the disk, not the CPU).
 * Objects staged from then on wait for the next commit. Staging may go on
 * in other threads; no other commit may be called meanwhile but
 * mlx_store_commit_wait and mlx_store_commit. Returns 0, or the failure
 * of the commit before. */
int mlx_store_commit_start(struct mlx_store *s, struct mlx_err *err);

/* Waits for the commit started by mlx_store_commit_start, if any. Returns
 * its status: 0, or MLX_ERR_IO (err set; the objects it did not move are
 * staged again). mlx_store_close waits for it too. */
int mlx_store_commit_wait(struct mlx_store *s, struct mlx_err *err);

/* Places object items[i].hex at items[i].path below the directory open at
 * dirfd (dir is its name in messages) with mode items[i].mode (0644/0755;
 * read-only for hard links and symlinks), in up to jobs threads. Every
 * path is data: it must pass mlx_path_check (else MLX_ERR_INVALID, nothing
 * placed for it), its missing parent directories are created and no
 * symlink in them is followed (MLX_ERR_INVALID naming it); what is at the
 * path is replaced atomically (a symlink there is replaced, not followed).
 * Each object is verified while it is copied (or read before it is
 * linked): a corrupt one is moved to quarantine and MLX_ERR_CORRUPT
 * returned, naming it and the path, whose old content is then untouched.
 * A placed file's ino, mtime_ns, ctime_ns and size are filled in (for the
 * stat cache). With mtime_ns > 0, every copy gets that modification time
 * before it is renamed into place (links keep the object's). verified
 * (NULL: none) marks items whose objects the caller verified itself just
 * before (a fetch): those are copied (copy_file_range) without being read
 * and hashed again. Returns 0; MLX_ERR_NOTFOUND if an object is missing. */
int mlx_store_checkout_at(struct mlx_store *s, int dirfd, const char *dir, struct mlx_filelist *items,
                          enum mlx_link link, const unsigned char *verified, int64_t mtime_ns, int jobs,
                          struct mlx_err *err);

/* As mlx_store_checkout_at below the directory dir (an absolute path of
 * the caller's choosing, created if missing). */
int mlx_store_checkout_files(struct mlx_store *s, const char *dir, struct mlx_filelist *items, enum mlx_link link,
			     int jobs, struct mlx_err *err);

/* Reads object hex into *data (malloc'ed, NUL-terminated, caller frees;
 * *len its length), verifying it. Returns 0, MLX_ERR_NOTFOUND (also when a
 * symlink is in its place or its shard's: the message names the link),
 * MLX_ERR_CORRUPT or MLX_ERR_IO. */
int mlx_store_read(const struct mlx_store *s, const char *hex, char **data, size_t *len, struct mlx_err *err);

/* Opens object hex for reading, as the store's own reads do: never
 * through a symlink, only a regular file. Returns the descriptor (the
 * caller closes it), or MLX_ERR_INVALID (not an id), MLX_ERR_NOTFOUND (as
 * mlx_store_read), MLX_ERR_CORRUPT (not a regular file) or MLX_ERR_IO.
 * The bytes are not verified. */
int mlx_store_open_object(const struct mlx_store *s, const char *hex, struct mlx_err *err);

/* Re-hashes object hex. Returns 0 if its bytes match its name,
 * MLX_ERR_CORRUPT if not, MLX_ERR_NOTFOUND (as mlx_store_read) or
 * MLX_ERR_IO. */
int mlx_store_verify(const struct mlx_store *s, const char *hex, struct mlx_err *err);

/* Deletes object hex, or the symlink that mlx_store_list named hex (the
 * link itself, never what it points to). Returns 0 (also if it was not
 * there); MLX_ERR_NOTFOUND if hex's shard is a symlink (nothing is deleted
 * through it); MLX_ERR_INVALID if hex is neither an id nor such a name, or
 * if what is at such a name is not a symlink (it is left); or MLX_ERR_IO. */
int mlx_store_remove(const struct mlx_store *s, const char *hex, struct mlx_err *err);

/* Moves object hex to .mlx/cache/quarantine/, where it no longer counts as
 * present, so the next checkout or pull fetches a good copy. The entry
 * itself is moved (a symlink in its place, never what it points to), and
 * never out of a symlinked shard nor into a symlinked quarantine. Returns
 * 0, MLX_ERR_NOTFOUND or MLX_ERR_IO. */
int mlx_store_quarantine(const struct mlx_store *s, const char *hex, struct mlx_err *err);

/* Fills out (empty) with one entry per object: path = its id, size, mode
 * 0444; and one per symlink in the place of a shard or of an object, never
 * followed: path = its name below objects/ ("ab" or "ab/cdef…", never an
 * id), size 0, mode 0. Sorted by path. Returns 0, MLX_ERR_NOMEM or
 * MLX_ERR_IO (objects/ cannot be listed). */
int mlx_store_list(const struct mlx_store *s, struct mlx_filelist *out, struct mlx_err *err);

/* Re-hashes every object of list (from mlx_store_list) in up to jobs
 * threads, setting hex to the digest of its bytes ("" if it cannot be
 * read, and for a symlink's entry, which is never opened). The object is
 * sound when hex equals path. Returns 0 or MLX_ERR_INTERRUPTED. */
int mlx_store_check(const struct mlx_store *s, struct mlx_filelist *list, int jobs, struct mlx_err *err);

/* Appends to out every value of column in table of the SQLite database at
 * db_path that is an object id, reading it read-only; *found is set to 0 if
 * the database, table or column does not exist (nothing to read), else 1.
 * Used by gc to keep the objects other records point at. Returns 0,
 * MLX_ERR_INVALID (a bad table or column name) or MLX_ERR_IO. */
int mlx_store_db_ids(const char *db_path, const char *table, const char *column, struct mlx_strlist *out,
		     int *found, struct mlx_err *err);

#endif
