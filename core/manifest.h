/* manifest.h — a directory's manifest (hash.h) read from a file in pieces.
 *
 * A manifest of 200,000 files is about 20 MB of text; read whole, it costs
 * that much memory (more as Lua strings or tables). Here it is read in
 * pieces of a fixed size, hashed as it goes and checked line by line as
 * mlx_hash_manifest_walk checks it, so memory does not depend on its size.
 *
 * The lines reach the caller before the last byte is hashed: a caller that
 * must not act on a manifest before it is verified (a checkout writing
 * files) walks it twice, first with fn NULL. */
#ifndef MLX_MANIFEST_H
#define MLX_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "hash.h"

/* Reads the manifest object hex from fd (open, at offset 0; not closed),
 * calling fn (or nothing, if NULL) for each line, and adding the number of
 * lines to *files and their sizes to *bytes (either may be NULL). Returns
 * 0; MLX_ERR_CORRUPT when the bytes do not hash to hex ("object … is
 * corrupt", whatever the lines held) or, else, naming the first bad line;
 * MLX_ERR_IO naming name; MLX_ERR_NOMEM; or what fn returned. */
int mlx_manifest_walk_fd(int fd, const char *name, const char *hex, mlx_manifest_line_fn fn, void *ctx,
                         uint64_t *files, uint64_t *bytes, struct mlx_err *err);

#endif
