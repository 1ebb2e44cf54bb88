/* hash.h — SHA-256 of buffers and files (OpenSSL EVP).
 *
 * A digest crosses the API as 64 lowercase hex characters plus a NUL, the
 * form sha256sum prints, so an mlx file id can be checked with any tool.
 * The caller owns every buffer; nothing here allocates memory the caller
 * must free. */
#ifndef MLX_HASH_H
#define MLX_HASH_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MLX_HASH_HEX_SIZE 65 /* 64 hex digits and a NUL */

/* Hashes len bytes at buf into hex. Returns 0, or MLX_ERR_CRYPTO if OpenSSL
 * fails (it does not, short of memory exhaustion). */
int mlx_hash_bytes(const void *buf, size_t len, char hex[MLX_HASH_HEX_SIZE], struct mlx_err *err);

/* Hashes the regular file at path into hex and, if size is not NULL, stores
 * its length. Returns 0; MLX_ERR_NOTFOUND if it does not exist; MLX_ERR_IO if
 * it cannot be opened or read; MLX_ERR_INVALID if it is not a regular file
 * (a directory, fifo or device, which could never finish or mean nothing). */
int mlx_hash_file(const char *path, char hex[MLX_HASH_HEX_SIZE], uint64_t *size, struct mlx_err *err);

/* As mlx_hash_file on an open descriptor, reading from its current offset to
 * its end; name is used in error messages only. */
int mlx_hash_fd(int fd, const char *name, char hex[MLX_HASH_HEX_SIZE], uint64_t *size, struct mlx_err *err);

#endif
