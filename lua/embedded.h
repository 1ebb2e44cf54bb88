/* embedded.h — the stdlib Lua modules compiled into the binary, as bytecode
 * (or source, where the build had no matching interpreter). The table is
 * generated at build time by tools/embed_lua.py. */
#ifndef MLX_EMBEDDED_H
#define MLX_EMBEDDED_H

#include <stddef.h>

struct mlx_embedded_module {
	const char *name;	/* module name for require, e.g. "mlx.cli" */
	const char *chunkname;	/* "@stdlib/mlx/cli.lua", shown in tracebacks */
	const char *source;
	size_t size;
};

/* Ends with an entry whose name is NULL. */
extern const struct mlx_embedded_module mlx_embedded_modules[];

#endif
