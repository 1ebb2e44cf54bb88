/* web_assets.h — the files of the `mlx ui` page (web/), embedded in
 * mlx_web.so at build time by tools/embed_assets.py. */
#ifndef MLX_WEB_ASSETS_H
#define MLX_WEB_ASSETS_H

#include <stddef.h>

struct mlx_web_asset {
	const char *name; /* the file name under web/, e.g. "app.js" */
	const char *data;
	size_t size;
};

/* Ends with an entry whose name is NULL. */
extern const struct mlx_web_asset mlx_web_assets[];

#endif
