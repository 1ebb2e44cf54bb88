/* hash.h — SHA-256 of buffers, files and directories (SHA-NI, else OpenSSL
 * EVP, loaded on first use).
 *
 * A digest crosses the API as 64 lowercase hex characters plus a NUL, the
 * form sha256sum prints, so an mlx file id can be checked with any tool.
 *
 * A directory is identified by its manifest (DESIGN §3): one line per
 * regular file below it, sorted by path bytes,
 *     <sha256> <size> <mode> <relative path>\n
 * where mode is 644 or 755 (only the executable bit is kept, so umask does
 * not change ids). Its id is the SHA-256 of that text. Empty directories are
 * not recorded. Files are hashed by a pool of threads (pool.h).
 *
 * Functions taking a struct mlx_filelist say who owns it; the list owns its
 * items and their paths (kept in blocks of the list: an item's path must
 * not be freed or moved to another list alone). Other buffers belong to the
 * caller. */
#ifndef MLX_HASH_H
#define MLX_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MLX_HASH_HEX_SIZE 65 /* 64 hex digits and a NUL */

/* Writes the n bytes at md as 2n lowercase hex digits and a NUL into hex
 * (room for 2n + 1 bytes): the one encoder of digests in mlx. */
void mlx_hex_encode(const unsigned char *md, size_t n, char *hex);

/* ---- SHA-256 over data given in parts --------------------------------
 *
 * The one digest loop of mlx: every caller that hashes a stream (a file, a
 * copy into the store, a download) feeds it here. On a CPU with the SHA
 * extensions the blocks go through sha256.h, which is as fast as OpenSSL
 * on one message and needs no setup: setting OpenSSL up (its configuration
 * file, its providers, the method fetch) costs about a millisecond, more
 * than hashing a recipe and its lock, at every start of a command. Else
 * OpenSSL's SHA-256 is fetched once per process, on the first start. A
 * stream is zeroed by its owner ({0}) and may hash many messages in turn,
 * one context for them all; the owner frees it. Not thread-safe: one
 * stream per thread. */
struct mlx_hash_stream {
	void *ctx;   /* OpenSSL's EVP_MD_CTX; opaque, so that callers need no OpenSSL header */
	int openssl; /* set by the owner before a start: hash with OpenSSL even on SHA-NI */
	int ni;      /* the current message goes through sha256.h */
	uint32_t state[8];
	unsigned char block[64]; /* the bytes of a block not yet complete */
	size_t fill;
	uint64_t total;
};

/* Starts a message (loading libcrypto and allocating OpenSSL's context on
 * first use, when OpenSSL hashes). Returns 0, MLX_ERR_NOMEM or
 * MLX_ERR_CRYPTO (libcrypto cannot be loaded or has no SHA-256). */
int mlx_hash_stream_start(struct mlx_hash_stream *h, struct mlx_err *err);

/* Adds len bytes at buf to the message. Returns 0 or MLX_ERR_CRYPTO. */
int mlx_hash_stream_update(struct mlx_hash_stream *h, const void *buf, size_t len, struct mlx_err *err);

/* Ends the message, writing its digest into hex; the stream may then start
 * another. Returns 0 or MLX_ERR_CRYPTO. */
int mlx_hash_stream_finish(struct mlx_hash_stream *h, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err);

/* Frees the stream's context, leaving it zeroed. Safe on a zeroed stream. */
void mlx_hash_stream_free(struct mlx_hash_stream *h);

/* Returns OpenSSL's version text ("OpenSSL 3.0.x …"), loading libcrypto if
 * it is not yet; NULL when it cannot be loaded. */
const char *mlx_hash_openssl_version(void);

/* Hashes len bytes at buf into hex. Returns 0, or MLX_ERR_CRYPTO if OpenSSL
 * fails (it does not, short of memory exhaustion). */
int mlx_hash_bytes(const void *buf, size_t len, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err);

/* Hashes the regular file at path into hex and, if size is not NULL, stores
 * its length. Returns 0; MLX_ERR_NOTFOUND if it does not exist; MLX_ERR_IO if
 * it cannot be opened or read; MLX_ERR_INVALID if it is not a regular file
 * (a directory, fifo or device, which could never finish or mean nothing). */
int mlx_hash_file(const char *path, char hex[MLX_HASH_HEX_SIZE], uint64_t *size, struct mlx_err *err);

/* As mlx_hash_file on an open descriptor, reading from its current offset to
 * its end; name is used in error messages only. */
int mlx_hash_fd(int fd, const char *name, char hex[MLX_HASH_HEX_SIZE], uint64_t *size, struct mlx_err *err);

/* ---- directories ------------------------------------------------------ */

/* One regular file below a directory. */
struct mlx_file {
	char *path;		/* relative to the walked directory, '/'-separated */
	uint64_t size;
	uint32_t mode;		/* 0644 or 0755 */
	int64_t mtime_ns, ctime_ns;
	uint64_t ino;
	int64_t hashed_ns;	/* wall clock when hashing started; 0 if not hashed here */
	int64_t cached_ns;	/* hashed_ns of the stat cache entry hex came from, or 0 */
	char hex[MLX_HASH_HEX_SIZE]; /* "" until hashed or known */
};

struct mlx_pathblock;

struct mlx_filelist {
	struct mlx_file *items;
	size_t len, cap;
	struct mlx_pathblock *blocks; /* the paths, in blocks: no allocation per file */
};

/* Frees the paths and the array; leaves an empty list. */
void mlx_filelist_free(struct mlx_filelist *list);

/* Appends a file (copying path) with the given facts and hex ("" or NULL if
 * unknown). Returns 0 or MLX_ERR_NOMEM. */
int mlx_filelist_push(struct mlx_filelist *list, const char *path, uint64_t size, uint32_t mode,
		      const char *hex, struct mlx_err *err);

/* Sorts the list by path bytes, the manifest order. */
void mlx_filelist_sort(struct mlx_filelist *list);

/* Fills out (empty) with every regular file below dir, lstat'ed, sorted.
 * Rules, so that nothing can hang or escape: a directory is entered, never
 * followed through a symlink; a symlink is refused (MLX_ERR_INVALID naming
 * it), except one pointing into link_dir (if not NULL: the store's objects
 * directory, where the symlink link strategy points), which stands for that
 * object: its hex is taken from the link, its size and mode from the target;
 * a fifo, socket or device is refused (MLX_ERR_INVALID); so is a name with a
 * newline, which the manifest cannot hold. A directory that cannot be read
 * is MLX_ERR_IO. On failure out is left empty. */
int mlx_hash_walk(const char *dir, const char *link_dir, int flags, struct mlx_filelist *out, struct mlx_err *err);

/* mlx_hash_walk flag: do not stat files the directory entry says are
 * regular; their size, mode and stat facts are left 0 for mlx_hash_files to
 * fill in (it stats each file it opens anyway). For hashing without a stat
 * cache. */
#define MLX_WALK_TYPES_ONLY 1

/* Appends dir/name, a single file, to out (path = name) by the rules of
 * mlx_hash_walk; a directory is MLX_ERR_INVALID. */
int mlx_hash_stat(const char *dir, const char *name, const char *link_dir, struct mlx_filelist *out,
		  struct mlx_err *err);

/* For each of the n paths names[i] (relative to dir, '/'-separated) that is
 * a file by the rules of mlx_hash_walk, appends it to out (path = names[i])
 * and sets found[i] to 1; one that does not exist is left out with found[i]
 * = 2, a directory (or a path through a file) with found[i] = 0. Opens dir
 * once, for checking many single files (the
 * outs of a pipeline) at the cost of one fstatat each, except that once a
 * few paths of one small directory were missing, the others there are
 * looked for in its listing (core/dirnames.h). Returns 0 or the first
 * other failure (a symlink, a fifo: the message names it). */
int mlx_hash_stat_many(const char *dir, const char *const *names, size_t n, const char *link_dir,
		       struct mlx_filelist *out, unsigned char *found, struct mlx_err *err);

/* Hashes, in up to jobs threads (<= 0: one per CPU), every file of list
 * whose hex is "", reading dir/path; sets hex, size (the bytes hashed),
 * mode, the stat facts (taken after opening, before reading) and
 * hashed_ns. Where the CPU has SHA-NI, each thread hashes two files at once
 * (sha256.h). Returns 0; the first failure (a file vanished, unreadable,
 * not a regular file any more: the message names it); or
 * MLX_ERR_INTERRUPTED. */
int mlx_hash_files(const char *dir, struct mlx_filelist *list, int jobs, struct mlx_err *err);

/* As mlx_hash_files, reporting to progress (pool.h; NULL: none). */
struct mlx_progress;
int mlx_hash_files_progress(const char *dir, struct mlx_filelist *list, int jobs, const struct mlx_progress *progress,
			    struct mlx_err *err);

/* As mlx_hash_files, one file at a time per thread through OpenSSL: what
 * mlx_hash_files does on a CPU without SHA-NI (else it hashes two files at
 * a time per thread, sha256.h). For tests and measurements. */
int mlx_hash_files_openssl(const char *dir, struct mlx_filelist *list, int jobs, struct mlx_err *err);

/* Builds the manifest text of a sorted, fully hashed list into *text
 * (malloc'ed, NUL-terminated, caller frees; *len its length) and its id into
 * hex. Returns 0, MLX_ERR_NOMEM, or MLX_ERR_INVALID if a hex is missing. */
int mlx_hash_manifest(const struct mlx_filelist *list, char **text, size_t *len, char hex[MLX_HASH_HEX_SIZE],
		      struct mlx_err *err);

/* Parses manifest text into out (empty). Returns 0, or MLX_ERR_CORRUPT
 * naming the bad line (out is then empty). */
int mlx_hash_manifest_parse(const char *text, size_t len, struct mlx_filelist *out, struct mlx_err *err);

/* Called by mlx_hash_manifest_walk for each line: hex (NUL-terminated),
 * size, mode (0644 or 0755) and the plen bytes of path (checked, not
 * NUL-terminated). A non-zero return stops the walk and is returned. */
typedef int (*mlx_manifest_line_fn)(void *ctx, const char *hex, uint64_t size, uint32_t mode,
                                    const char *path, size_t plen, struct mlx_err *err);

/* Checks manifest text line by line, as mlx_hash_manifest_parse, calling
 * fn for each good line, without building a list (for manifests of
 * millions of files). Returns 0, MLX_ERR_CORRUPT naming the bad line (fn
 * has seen the lines before it) or what fn returned. */
int mlx_hash_manifest_walk(const char *text, size_t len, mlx_manifest_line_fn fn, void *ctx,
                           struct mlx_err *err);

/* Where a manifest read in parts has got to: zeroed ({0}) before the first
 * part. (4 KiB: the longest path a manifest may hold, core/path.c.) */
struct mlx_manifest_walk {
	size_t line;     /* lines read so far */
	size_t prev_len; /* of the previous line's path, kept for the order check */
	char prev[4096];
};

/* As mlx_hash_manifest_walk, for the next part of a manifest: text holds
 * whole lines, which continue those w has seen (line numbers and the sort
 * order run on across parts). fn may be NULL (only check). */
int mlx_hash_manifest_walk_part(struct mlx_manifest_walk *w, const char *text, size_t len,
                                mlx_manifest_line_fn fn, void *ctx, struct mlx_err *err);

/* Hashes the directory dir whole, without a stat cache: walks it (the
 * rules of mlx_hash_walk, no store links), hashes every file in up to jobs
 * threads (reporting to progress, or NULL) and builds the manifest into *text (malloc'ed, caller frees; *len
 * its length), its id into hex, the files into out (empty; caller frees).
 * Returns 0 or the first failure, with out emptied and *text NULL. */
int mlx_hash_dir(const char *dir, int jobs, const struct mlx_progress *progress, struct mlx_filelist *out,
		 char **text, size_t *len, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err);

/* Returns 1 if s is 64 lowercase hex digits, else 0. */
int mlx_hash_is_id(const char *s);

/* Wall-clock time in nanoseconds (CLOCK_REALTIME, the clock of mtimes). */
int64_t mlx_hash_now_ns(void);

#endif
