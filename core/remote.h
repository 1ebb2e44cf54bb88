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
 * MLX_ERR_INTERRUPTED when a signal asked to stop. Messages name the remote
 * and the key, never a password, token or signature. */
#ifndef MLX_REMOTE_H
#define MLX_REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fs.h"

/* Where a remote is and how to reach it. */
struct mlx_remote_config {
	const char *name;	/* the remote's name, for messages ("origin") */
	const char *url;	/* "/srv/store", "file:///srv/store", "https://host/path/", "s3://bucket/prefix" */
	/* Backend options and credentials as name, value, name, value, …:
	 * e.g. endpoint, region, path_style ("true"/"false"), user, password,
	 * token, access_key_id, secret_access_key, session_token, ca_file,
	 * insecure, timeout_ms. Unknown names are MLX_ERR_INVALID at open. */
	const struct mlx_strlist *options;
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
};

/* The backend that serves url, or NULL (no backend accepts it). */
const struct mlx_remote_backend *mlx_remote_backend_for(const char *url);

#endif
