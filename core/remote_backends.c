/* remote_backends.c — the table of remote backends, asked in order. */
#include "remote.h"
#include "remote_http.h"

#include <stddef.h>

extern const struct mlx_remote_backend mlx_remote_dir;

/* One line per backend; NULL ends the table. */
static const struct mlx_remote_backend *const backends[] = {
    &mlx_remote_dir,
    &mlx_remote_webdav,
    &mlx_remote_s3,
    NULL,
};

const struct mlx_remote_backend *mlx_remote_backend_for(const char *url)
{
	if (!url)
		return NULL;
	for (size_t i = 0; backends[i]; i++)
		if (backends[i]->accepts(url))
			return backends[i];
	return NULL;
}
