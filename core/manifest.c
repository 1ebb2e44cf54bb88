/* manifest.c — manifests read from a file in pieces (manifest.h). */
#include "manifest.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Bytes read at a time; a line longer than this cannot be a manifest's
 * (a path is at most 4 KiB). */
#define PIECE (256 * 1024)

struct counted {
	mlx_manifest_line_fn fn;
	void *ctx;
	uint64_t files, bytes;
};

static int count_line(void *vc, const char *hex, uint64_t size, uint32_t mode, const char *path, size_t plen,
                      struct mlx_err *err)
{
	struct counted *c = vc;
	c->files++;
	c->bytes += size;
	return c->fn ? c->fn(c->ctx, hex, size, mode, path, plen, err) : MLX_OK;
}

int mlx_manifest_walk_fd(int fd, const char *name, const char *hex, mlx_manifest_line_fn fn, void *ctx,
                         uint64_t *files, uint64_t *bytes, struct mlx_err *err)
{
	struct mlx_manifest_walk *w = calloc(1, sizeof *w);
	char *buf = malloc(PIECE);
	struct mlx_hash_stream h = {0};
	int rc = w && buf ? mlx_hash_stream_start(&h, err)
	                  : mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	struct counted c = {fn, ctx, 0, 0};
	/* A bad line stops the walk but not the hashing: a manifest that is
	 * not what its id says is reported as that, whatever its lines hold. */
	int walk_rc = MLX_OK;
	struct mlx_err walk_err = {0};
	size_t have = 0;
	int eof = 0;
	while (rc == MLX_OK && !eof) {
		ssize_t n = read(fd, buf + have, PIECE - have);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			rc = mlx_err_sys(err, errno, "cannot read %s", name);
			break;
		}
		eof = n == 0;
		if (n > 0 && (rc = mlx_hash_stream_update(&h, buf + have, (size_t)n, err)) != MLX_OK)
			break;
		have += (size_t)n;
		/* Whole lines go to the walk; a partial one waits for the rest
		 * (at the end, it goes as it is, and is refused). */
		size_t whole = have;
		if (!eof) {
			const char *nl = memrchr(buf, '\n', have);
			whole = nl ? (size_t)(nl - buf) + 1 : 0;
			if (!nl && have == PIECE)
				whole = have; /* too long for a line: refused */
		}
		if (walk_rc == MLX_OK && whole > 0)
			walk_rc = mlx_hash_manifest_walk_part(w, buf, whole, count_line, &c, &walk_err);
		memmove(buf, buf + whole, have - whole);
		have -= whole;
	}
	char got[MLX_HASH_HEX_SIZE];
	if (rc == MLX_OK)
		rc = mlx_hash_stream_finish(&h, got, err);
	if (rc == MLX_OK && strcmp(got, hex) != 0)
		rc = mlx_err_set(err, MLX_ERR_CORRUPT, 0, "object %.64s is corrupt: its bytes hash to %s",
		                 hex, got);
	if (rc == MLX_OK && walk_rc != MLX_OK) {
		*err = walk_err;
		rc = walk_rc;
	}
	if (rc == MLX_OK) {
		if (files)
			*files += c.files;
		if (bytes)
			*bytes += c.bytes;
	}
	mlx_hash_stream_free(&h);
	free(buf);
	free(w);
	return rc;
}
