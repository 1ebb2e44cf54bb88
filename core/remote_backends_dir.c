/* remote_backends_dir.c — the table of remote backends of mlx_remote.so:
 * the directory alone. The backends over HTTP (WebDAV, S3) link libcurl,
 * libxml2 and OpenSSL, whose loading costs more than a no-op pull to a
 * directory; they are in mlx_remote_http.so, which the binding loads for
 * their URLs only (lua/l_remote.c). */
#include "remote.h"

#include <stddef.h>

extern const struct mlx_remote_backend mlx_remote_dir;

const struct mlx_remote_backend *mlx_remote_backend_for(const char *url)
{
	return url && mlx_remote_dir.accepts(url) ? &mlx_remote_dir : NULL;
}
