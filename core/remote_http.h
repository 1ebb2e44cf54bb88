/* remote_http.h — the remote backends that speak HTTP: WebDAV
 * (core/remote_webdav.c) and the S3 API (core/remote_s3.c), each an
 * implementation of core/remote.h that the backend table lists. */
#ifndef MLX_REMOTE_HTTP_H
#define MLX_REMOTE_HTTP_H

#include "remote.h"

/* http:// and https:// URLs: a WebDAV server. Options: user and password
 * (basic auth) or token (bearer), ca_file, insecure, timeout_ms. */
extern const struct mlx_remote_backend mlx_remote_webdav;

/* s3://bucket/prefix URLs: the S3 API. Options: endpoint, region,
 * path_style, access_key_id, secret_access_key, session_token, profile,
 * multipart_threshold, multipart_part_size, ca_file, insecure, timeout_ms;
 * credentials and region default to the AWS environment variables and
 * files. */
extern const struct mlx_remote_backend mlx_remote_s3;

#endif
