/* workspace.h — the project's working tree, as mlx reads and writes it.
 *
 * One owner holds what every road into the workspace needs: the project
 * root as a directory descriptor, the object store (store.h) and the stat
 * cache (statcache.h, opened on first use; only an accelerator: if it
 * cannot be opened or written, work goes on without it). It hashes and
 * stores files and directories through the stat cache, and checks objects
 * out into the tree. Reading a path may follow a symlink (a symlinked
 * dataset is common); every write goes through core/path.h: below the root
 * descriptor, never through a symlink, at a path that passed
 * mlx_path_check.
 *
 * The racy-timestamp rule lives here and in the stat cache: a file hashed
 * or written is recorded with the time its hashing (or its checkout)
 * started, so a change within the file system's timestamp tick after that
 * is noticed (statcache.h).
 *
 * Paths are relative to the project root, '/'-separated. */
#ifndef MLX_WORKSPACE_H
#define MLX_WORKSPACE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hash.h"
#include "idset.h"
#include "store.h"

struct mlx_workspace;

/* Opens the workspace at root (an absolute path): its directory and its
 * store, with store_flags as mlx_store_open takes them; jobs is the number
 * of threads for hashing and checkout (<= 0: one per CPU). The caller closes
 * *out with mlx_workspace_close. Returns 0, MLX_ERR_NOMEM, or what
 * mlx_store_open returns; MLX_ERR_IO if root cannot be opened. */
int mlx_workspace_open(const char *root, int store_flags, int jobs, struct mlx_workspace **out,
		       struct mlx_err *err);

/* Discards what was staged and not committed, closes the store (releasing
 * its gc lock), the stat cache and the root. Safe on NULL. */
void mlx_workspace_close(struct mlx_workspace *ws);

/* The workspace's store, owned by ws. */
struct mlx_store *mlx_workspace_store(const struct mlx_workspace *ws);

/* Commits what was staged (mlx_store_commit), then writes the presence
 * records of the tracked directories whose objects were all found by the
 * puts before (workspace_present.c), which vouch for objects only once
 * they are durable. Returns what mlx_store_commit returns; a record that
 * cannot be written is left out (it only spares lookups). */
int mlx_workspace_commit(struct mlx_workspace *ws, struct mlx_err *err);

/* Reports the progress of later long calls (hashing, staging, checkout,
 * checking the store) on the calling thread, about every 100 ms:
 * report(ctx, files started, files in all, bytes of those files, bytes in
 * all); bytes are 0 where sizes are not known beforehand. A report that
 * returns non-zero stops the call (MLX_ERR_INTERRUPTED). NULL: none. */
typedef int (*mlx_workspace_report)(void *ctx, size_t files, size_t nfiles, uint64_t bytes, uint64_t nbytes);
void mlx_workspace_set_progress(struct mlx_workspace *ws, mlx_workspace_report report, void *ctx);

/* The absolute path of the project root, owned by ws. */
const char *mlx_workspace_root(const struct mlx_workspace *ws);

/* Reads the manifest object hex (verified) and parses it into out (empty),
 * whose paths then passed mlx_path_check. Returns 0, MLX_ERR_NOTFOUND,
 * MLX_ERR_CORRUPT (naming the manifest and the bad line) or MLX_ERR_IO. */
int mlx_workspace_manifest(struct mlx_workspace *ws, const char *hex, struct mlx_filelist *out,
			   struct mlx_err *err);

/* As mlx_workspace_manifest, with out sorted by object id and *present
 * (malloc'ed, out->len bytes; the caller frees) set to 1 for the files
 * whose objects the store has: one stat per distinct object, no reading.
 * For a fetch that finds most objects present. */
int mlx_workspace_manifest_present(struct mlx_workspace *ws, const char *hex, struct mlx_filelist *out,
                                   unsigned char **present, struct mlx_err *err);

/* Lists every object of the store into out (empty) and re-hashes each in
 * the workspace's threads, as mlx_store_list and mlx_store_check do (an
 * object is sound when its hex equals its path). Returns 0,
 * MLX_ERR_INTERRUPTED or MLX_ERR_IO. */
int mlx_workspace_check_store(struct mlx_workspace *ws, struct mlx_filelist *out, struct mlx_err *err);

/* What mlx_workspace_hash learns of a file or a directory. */
struct mlx_artifact {
	int is_dir;
	char hex[MLX_HASH_HEX_SIZE]; /* a file's SHA-256, a directory's manifest id */
	uint64_t size;		     /* bytes, of the file or of all files below */
	uint64_t files;		     /* a directory's number of files */
	uint32_t mode;		     /* a file's 0644 or 0755 */
	char *manifest;		     /* a directory's manifest text, or NULL (see flags) */
	size_t manifest_len;
};

/* Frees a->manifest; leaves a reusable. */
void mlx_artifact_free(struct mlx_artifact *a);

enum {
	MLX_WS_PUT = 1,		/* stage the files (and manifest) into the store */
	MLX_WS_NO_MANIFEST = 2, /* a directory's manifest may be left out (NULL) when
				 * the stat cache knows its id: for callers that only
				 * compare ids */
	MLX_WS_PRESENT = 4,	/* with MLX_WS_PUT, a tracked directory: once committed,
				 * mlx_workspace_commit looks up its objects in the shards
				 * the commit wrote into and records the store's shards,
				 * so that the next add looks up only the objects of
				 * those that changed since (not for a pipeline's outs:
				 * a file, 256 stats and the lookups each) */
};

/* Hashes the file or directory rel into *out (which the caller frees with
 * mlx_artifact_free), through the stat cache: unchanged files are not read.
 * With MLX_WS_PUT, stages what it hashes: mlx_store_commit makes it
 * durable and visible. A directory's walk refuses symlinks, fifos and
 * devices (hash.h). Returns 0; MLX_ERR_NOTFOUND if rel does not exist;
 * MLX_ERR_INVALID for a refused entry or an absolute path; MLX_ERR_IO or
 * MLX_ERR_INTERRUPTED. */
int mlx_workspace_hash(struct mlx_workspace *ws, const char *rel, int flags, struct mlx_artifact *out,
		       struct mlx_err *err);

/* For each of the n single files names[i], appends it to out (path =
 * names[i], hashed) and sets found[i] to 1; a path that does not exist is
 * left out with found[i] = 2, a directory with found[i] = 0 (as
 * mlx_hash_stat_many). One directory open and one
 * stat cache read for all, for checking many outs at once. Returns 0 or the
 * first failure (a symlink, a fifo: named). */
int mlx_workspace_hash_files(struct mlx_workspace *ws, const char *const *names, size_t n, struct mlx_filelist *out,
			     unsigned char *found, struct mlx_err *err);

/* Updates the tracked directory rel, whose locked manifest is locked, with
 * the files it now has at members only (paths relative to rel, each a
 * file or a directory, none inside another): their files are hashed
 * through the stat cache and staged, the manifest lines of every other
 * path are taken from the locked manifest as they are, and the new
 * manifest (sorted, as mlx_hash_manifest writes it) is staged as it is
 * made, never whole in memory; *out gets its id, files and bytes, no text
 * (mlx_artifact_free is still safe). For `mlx add DIR/FILE` in a directory
 * of a million files: one file hashed and one pass over the old manifest,
 * no walk of the rest. Returns 0; MLX_ERR_NOTFOUND if a member does not exist or the
 * locked manifest is not in the store; MLX_ERR_CORRUPT if that manifest is
 * damaged; MLX_ERR_INVALID for a refused entry (a symlink, a fifo) or
 * path; MLX_ERR_IO, MLX_ERR_NOMEM or MLX_ERR_INTERRUPTED. */
int mlx_workspace_put_members(struct mlx_workspace *ws, const char *rel, const char *locked,
                              const char *const *members, size_t n, struct mlx_artifact *out,
                              struct mlx_err *err);

/* mlx add of the tracked directory rel, whose locked manifest is locked,
 * by what differs from the stat cache's tree: when that tree records the
 * locked manifest (which is in the store) and few files differ, only the
 * files added or changed are read and staged, the new manifest is the
 * locked one with their lines (and those of the files gone) replaced, and
 * the tree is written as the directory is now. Returns 1 with *out filled
 * (id, files and bytes, no text: the new manifest is staged as it is made,
 * or, if nothing changed, the locked record stands); 0 if the tree cannot tell (the caller puts rel whole;
 * out empty); or a failure to read or store a file (named), MLX_ERR_NOMEM
 * or MLX_ERR_INTERRUPTED. */
int mlx_workspace_put_tree(struct mlx_workspace *ws, const char *rel, const char *locked,
                           struct mlx_artifact *out, struct mlx_err *err);

/* What differs between a directory and its locked manifest; each list is
 * sorted by path and owned by the diff. */
struct mlx_dirdiff {
	struct mlx_filelist added;    /* files now that the manifest lacks */
	struct mlx_filelist modified; /* files now whose hash or mode differ */
	struct mlx_filelist was;      /* the manifest's entries of modified, index by index */
	struct mlx_filelist deleted;  /* manifest entries with no file now */
	int unread;                   /* 0, or why the manifest could not be read */
};

/* Frees the lists of d; leaves it empty. */
void mlx_dirdiff_free(struct mlx_dirdiff *d);

/* Hashes rel into *out as mlx_workspace_hash does (no manifest text, nothing
 * stored) and, if it is a directory whose id is not locked (a manifest id),
 * compares its files with that manifest into d (which the caller frees with
 * mlx_dirdiff_free), merging two sorted lists in one pass. If the manifest
 * cannot be read, d is empty, d->unread is what mlx_workspace_manifest
 * returned (MLX_ERR_NOTFOUND, MLX_ERR_CORRUPT, MLX_ERR_IO) and err says why,
 * but the call still returns 0. Returns what mlx_workspace_hash returns, or
 * MLX_ERR_NOMEM. */
int mlx_workspace_diff(struct mlx_workspace *ws, const char *rel, const char *locked,
                       struct mlx_artifact *out, struct mlx_dirdiff *d, struct mlx_err *err);

/* Places the objects of items (path relative to dir, hex, mode) below dir,
 * verifying each but those marked in verified (NULL: none; see
 * mlx_store_checkout_at). dir is relative to the root ("" for
 * the root; it must pass mlx_path_check and is reached without following a
 * symlink), or absolute: a place outside the project that the caller
 * chose, which the stat cache does not record. Placed files inside the
 * project are recorded in the stat cache: a copy is dated before the
 * checkout started and recorded as hashed when the checkout ended (a
 * later write moves its mtime past that date, so it is seen); a link as
 * hashed when the checkout started. Returns 0 or what
 * mlx_store_checkout_at returns. */
int mlx_workspace_checkout(struct mlx_workspace *ws, const char *dir, struct mlx_filelist *items,
                           enum mlx_link link, const unsigned char *verified, struct mlx_err *err);

/* Counts the files of the manifest object hex and their bytes into *files
 * and *bytes, reading it in pieces and verifying it (manifest.h): for a
 * checkout that decides before it writes. Returns 0, MLX_ERR_NOTFOUND,
 * MLX_ERR_CORRUPT (the bytes, or a bad line, named) or MLX_ERR_IO. */
int mlx_workspace_manifest_count(struct mlx_workspace *ws, const char *hex, uint64_t *files, uint64_t *bytes,
                                 struct mlx_err *err);

/* Checks out every file of the manifest object hex below dir (as
 * mlx_workspace_checkout: relative to the root, checked, never through a
 * symlink, recorded in the stat cache), without a list of them all: the
 * manifest is verified whole first, then read again in pieces and placed
 * window files at a time (0: 4096; core/checkout.c). Objects whose ids are
 * in verified (NULL: none) are copied without being hashed again. report
 * and ctx (NULL: none) are the workspace's progress, which sees the whole
 * directory as one checkout. Sets *files to the number placed. Returns 0,
 * MLX_ERR_NOTFOUND or MLX_ERR_CORRUPT for the manifest (nothing written),
 * or what mlx_workspace_checkout returns (the files of the windows before
 * stay placed, as a failed checkout leaves those it did). */
int mlx_workspace_checkout_manifest(struct mlx_workspace *ws, const char *dir, const char *hex,
                                    enum mlx_link link, struct mlx_idset *verified, size_t window,
                                    mlx_workspace_report report, void *ctx, size_t *files,
                                    struct mlx_err *err);

#endif
