/* remote_http.h — the remote backends that speak HTTP: WebDAV
 * (core/remote_webdav.c) and the S3 API (core/remote_s3.c), each an
 * implementation of core/remote.h that the backend table lists. */
#ifndef MLX_REMOTE_HTTP_H
#define MLX_REMOTE_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "remote.h"

/* http:// and https:// URLs: a WebDAV server. Options: user and password
 * (basic auth) or token (bearer), ca_file, insecure, timeout_ms. */
extern const struct mlx_remote_backend mlx_remote_webdav;

/* s3://bucket/prefix URLs: the S3 API. Options: endpoint, region,
 * path_style, access_key_id, secret_access_key, session_token, profile,
 * publish, multipart_threshold, multipart_part_size, ca_file, insecure,
 * timeout_ms;
 * credentials and region default to the AWS environment variables and
 * files. */
extern const struct mlx_remote_backend mlx_remote_s3;

/* Called for each entry of a PROPFIND answer: key (a collection's ends
 * with '/'), whether it is a collection, and its size. A non-zero return
 * stops the reading and is returned. */
typedef int (*mlx_webdav_entry_fn)(void *ctx, const char *key, int collection, uint64_t size);

/* Reads a PROPFIND Depth 1 answer (xml, len bytes) to the collection dir
 * (a key ending with '/') of a remote whose URL path is base_path ("/" or
 * "/some/path/", decoded): calls fn for every entry below dir, with its key
 * relative to base_path. Entries outside dir, dir itself, and names that
 * are not valid keys (absolute, ".", "..", control characters) are
 * skipped: a listing is untrusted. remote names the remote in messages.
 * Returns 0, fn's non-zero return, or MLX_ERR_IO when the answer is not a
 * DAV multistatus. */
int mlx_webdav_parse_multistatus(const char *remote, const char *base_path, const char *dir, const char *xml,
                                 size_t len, mlx_webdav_entry_fn fn, void *ctx, struct mlx_err *err);

/* Reads one ListObjectsV2 page (xml, len bytes) of a remote whose keys are
 * under prefix ("" or "some/prefix/"): calls fn for every object, with its
 * key relative to prefix; keys outside it, or not valid keys, are skipped.
 * Sets *token to the continuation token (a new string) when the listing
 * goes on, else NULL. Returns 0, fn's non-zero return, MLX_ERR_IO when the
 * answer is not a ListBucketResult (or is truncated without a token), or
 * MLX_ERR_NOMEM. */
int mlx_s3_parse_listing(const char *remote, const char *prefix, const char *xml, size_t len,
                         mlx_remote_list_fn fn, void *ctx, char **token, struct mlx_err *err);

#endif
