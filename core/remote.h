/* remote.h — a store somewhere else: a directory, a WebDAV server or an S3
 * bucket, seen through one small interface.
 *
 * A remote holds keys: "objects/ab/cdef…" (the same layout as the local
 * store), "index/…" (segments that say what the remote holds, so that a
 * no-op push or pull costs a few requests) and "runcache/…". A backend only
 * moves bytes under keys; what to move, verification against object ids,
 * the index and retries are the caller's policy (core/remote.c and
 * stdlib/mlx/remote.lua).
 *
 * A backend instance (its state) is used by one thread at a time; parallel
 * transfers open one instance per thread, so each keeps its connections
 * alive across requests.
 *
 * Failures: MLX_ERR_NOTFOUND when a key is absent; MLX_ERR_IO for transport
 * failures worth retrying (a refused or broken connection, a timeout, a 5xx
 * or a 429); MLX_ERR_INVALID for what a retry cannot fix (a bad URL or
 * option, 401/403: the message says which credential to check);
 * MLX_ERR_INTERRUPTED when a signal asked to stop (config.cancel). Messages name the remote
 * and the key, never a password, token or signature. */
#ifndef MLX_REMOTE_H
#define MLX_REMOTE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fs.h"
#include "idset.h"

struct mlx_remote_backend;

/* Where a remote is and how to reach it. */
struct mlx_remote_config {
	const char *name;	/* the remote's name, for messages ("origin") */
	const char *url;	/* "/srv/store", "file:///srv/store", "https://host/path/", "s3://bucket/prefix" */
	/* Backend options and credentials as name, value, name, value, …:
	 * e.g. endpoint, region, path_style ("true"/"false"), user, password,
	 * token, access_key_id, secret_access_key, session_token, ca_file,
	 * insecure, timeout_ms. Unknown names are MLX_ERR_INVALID at open. */
	const struct mlx_strlist *options;
	/* Or NULL. When it becomes non-zero, a get or put in flight stops
	 * within about a second (between copy chunks; libcurl's progress
	 * callback) and returns MLX_ERR_INTERRUPTED, leaving no partial key
	 * (its temp file or upload is removed). Short requests (stat, list,
	 * remove, a MOVE) are not cut: they clean up after a stopped put. The
	 * engine sets it when a transfer stops (a signal, a failure). */
	const atomic_int *cancel;
	/* Or NULL: the backend mlx_remote_backend_for(url) names. Set by a
	 * caller that holds backends the table lacks: mlx_remote.so lists the
	 * directory only, and its binding takes WebDAV and S3 from
	 * mlx_remote_http.so, loaded for their URLs alone (libcurl and libxml2
	 * cost more to load than a no-op pull's work). */
	const struct mlx_remote_backend *backend;
};

/* Called once per key by list; a non-zero return stops the listing and is
 * returned by list. */
typedef int (*mlx_remote_list_fn)(void *ctx, const char *key, uint64_t size);

struct mlx_remote_backend {
	const char *name;	/* "dir", "webdav", "s3" */
	/* Returns 1 if this backend serves url (by its scheme), else 0. */
	int (*accepts)(const char *url);
	/* Opens an instance into *state. Checks the configuration, not the
	 * server (a first request does). Returns 0 or MLX_ERR_INVALID. */
	int (*open)(const struct mlx_remote_config *config, void **state, struct mlx_err *err);
	/* Frees the instance and closes its connections. NULL is fine. */
	void (*close)(void *state);
	/* Sets *size to key's size. Returns 0 or MLX_ERR_NOTFOUND. */
	int (*stat)(void *state, const char *key, uint64_t *size, struct mlx_err *err);
	/* Writes key's bytes into fd (an empty temp file the caller owns and
	 * checks). Returns 0 or MLX_ERR_NOTFOUND. */
	int (*get)(void *state, const char *key, int fd, struct mlx_err *err);
	/* Uploads the regular file at path (size bytes) as key, creating
	 * parent collections as needed. The key appears whole or not at all:
	 * readers never see a partial upload (temp name + rename, WebDAV MOVE,
	 * S3 PUT or a completed multipart upload). Replaces an existing key. */
	int (*put)(void *state, const char *key, const char *path, uint64_t size, struct mlx_err *err);
	/* Calls fn for every key that starts with prefix (which ends with '/'),
	 * in no particular order. A missing prefix lists nothing. */
	int (*list)(void *state, const char *prefix, mlx_remote_list_fn fn, void *ctx, struct mlx_err *err);
	/* Deletes key. Returns 0, also when it was not there. */
	int (*remove)(void *state, const char *key, struct mlx_err *err);
	/* Optional (NULL: get serves every key). Reads key into buf when it
	 * fits in cap bytes, so that a small object is read once, into
	 * memory, rather than copied into a file and read back. Returns 0
	 * with *size set to the key's size: its bytes are in buf if *size <=
	 * cap, else nothing was read (the caller uses get). Fails as get. */
	int (*read_small)(void *state, const char *key, void *buf, size_t cap, size_t *size,
	                  struct mlx_err *err);
};

/* The backend that serves url, or NULL (no backend of the table accepts
 * it): core/remote_backends.c lists the directory, WebDAV and S3;
 * core/remote_backends_dir.c, the table of mlx_remote.so, the directory
 * alone. */
const struct mlx_remote_backend *mlx_remote_backend_for(const char *url);

/* ---- the transfer engine (core/remote.c) --------------------------------
 *
 * An opened remote keeps its configuration and one backend instance per
 * worker thread, reused across transfers, so connections stay alive. Every
 * call retries MLX_ERR_IO failures (retries times, waiting backoff * 2^n
 * seconds, capped at backoff_max, with jitter: half to all of it — the
 * default policy of stdlib/mlx/http.lua). An object is never trusted by
 * name: a push re-hashes the local object before sending it, a fetch
 * hashes the download before the store takes it. */

struct mlx_remote;
struct mlx_store;

/* Tuning of an opened remote. */
struct mlx_remote_policy {
	int jobs;		/* parallel transfers (<= 0: 8) */
	int retries;		/* attempts after the first, for MLX_ERR_IO */
	double backoff;		/* seconds before the first retry */
	double backoff_max;	/* cap of one wait, seconds */
	size_t window;		/* objects per window of a push or fetch (0: 4096) */
};

/* What became of one object of a push or fetch. */
enum mlx_remote_outcome {
	MLX_REMOTE_PENDING = 0, /* not reached (the transfer stopped first) */
	MLX_REMOTE_SENT,	/* copied (pushed or fetched) */
	MLX_REMOTE_PRESENT,	/* already where it was going */
	MLX_REMOTE_MISSING,	/* not at the source (local store on push, remote on fetch) */
	MLX_REMOTE_CORRUPT,	/* the source's bytes do not match the id: not used */
};

/* What a push or fetch did, added to by each call: counts, and the ids
 * that did not move (few, in practice). Start from MLX_REMOTE_RESULT_INIT
 * (or zeroes); free with mlx_remote_result_free. */
struct mlx_remote_result {
	size_t sent;		  /* objects copied */
	size_t present;		  /* already where they were going */
	uint64_t bytes;		  /* bytes copied */
	struct mlx_idset missing; /* not at the source */
	struct mlx_idset corrupt; /* the source's bytes do not match the id */
	struct mlx_idset verified; /* fetch: the ids fetched, each hashed as it arrived */
};

#define MLX_REMOTE_RESULT_INIT                                                                               \
	{                                                                                                    \
		0, 0, 0, MLX_IDSET_INIT, MLX_IDSET_INIT, MLX_IDSET_INIT                                      \
	}

/* Frees the sets of res; leaves it as MLX_REMOTE_RESULT_INIT. */
void mlx_remote_result_free(struct mlx_remote_result *res);

/* Progress of a transfer: report(ctx, files, nfiles, bytes, nbytes) on the
 * calling thread about every 100 ms (nbytes 0: unknown); non-zero stops
 * the transfer as an interruption. */
struct mlx_remote_progress {
	int (*report)(void *ctx, size_t files, size_t nfiles, uint64_t bytes, uint64_t nbytes);
	void *ctx;
};

/* Opens the remote of config (copied) with policy (NULL: defaults). The
 * caller closes *out. Returns 0, MLX_ERR_INVALID (no backend serves the
 * URL, or it refuses the configuration) or MLX_ERR_NOMEM. */
int mlx_remote_open(const struct mlx_remote_config *config, const struct mlx_remote_policy *policy,
		    struct mlx_remote **out, struct mlx_err *err);

/* Closes every instance and frees r. Safe on NULL. */
void mlx_remote_close(struct mlx_remote *r);

/* The name of r's backend ("dir", …). */
const char *mlx_remote_backend_name(const struct mlx_remote *r);

/* Reads key into *data (malloc'ed, NUL-terminated; caller frees), at most
 * max bytes (else MLX_ERR_INVALID). Returns 0, MLX_ERR_NOTFOUND or the
 * failure after retries. */
int mlx_remote_read(struct mlx_remote *r, const char *key, size_t max, char **data, size_t *len,
		    struct mlx_err *err);

/* Writes len bytes at data as key, atomically, through a temp file in
 * tmpdir. Returns 0 or the failure after retries. */
int mlx_remote_write(struct mlx_remote *r, const char *key, const void *data, size_t len, const char *tmpdir,
		     struct mlx_err *err);

/* Sets *size to key's size. Returns 0, MLX_ERR_NOTFOUND or a failure. */
int mlx_remote_stat(struct mlx_remote *r, const char *key, uint64_t *size, struct mlx_err *err);

/* Uploads the regular file at path as key, atomically (the backend's
 * put), retrying as every call does. Returns 0 or the failure after
 * retries. */
int mlx_remote_put_file(struct mlx_remote *r, const char *key, const char *path, struct mlx_err *err);

/* Lists the keys below prefix (ending with '/'), as the backend's list. */
int mlx_remote_list(struct mlx_remote *r, const char *prefix, mlx_remote_list_fn fn, void *ctx,
		    struct mlx_err *err);

/* Deletes key (0 also when absent). */
int mlx_remote_remove(struct mlx_remote *r, const char *key, struct mlx_err *err);

/* Sends the objects of ids (sizes only size the progress) from the local
 * store to r's objects/, in parallel, a window of a few thousand at a time,
 * so memory does not grow with the count. With check, each key is first
 * asked for and counted present when the remote has it at the right size;
 * without, every object is sent. A local object that is missing or does
 * not match its id goes to res->missing or res->corrupt and is not sent.
 * Returns 0, the first failure after retries, or MLX_ERR_INTERRUPTED; res
 * counts what was done either way, and what was sent stays sent (each
 * object is whole or absent on the remote). */
int mlx_remote_push(struct mlx_remote *r, struct mlx_store *store, struct mlx_idset *ids, int check,
		    const struct mlx_remote_progress *progress, struct mlx_remote_result *res, struct mlx_err *err);

/* Fetches the objects of ids into the store, in parallel, a window at a
 * time: those the store has are counted present (found in one pass, one
 * bit each, before any transfer); a download is hashed and enters the
 * store only if it matches its id (else res->corrupt); one the remote
 * lacks goes to res->missing; fetched ids go to res->verified. Each
 * window is committed to the store while the next one is fetched
 * (mlx_store_commit_start), and every commit has ended when this returns,
 * so an interrupted fetch keeps what it completed. Returns as
 * mlx_remote_push. */
int mlx_remote_fetch(struct mlx_remote *r, struct mlx_store *store, struct mlx_idset *ids,
		     const struct mlx_remote_progress *progress, struct mlx_remote_result *res, struct mlx_err *err);

#endif
