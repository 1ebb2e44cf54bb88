/* err.h — the error record every core function fills on failure.
 *
 * Core functions return 0 on success or a negative enum mlx_status on
 * failure; on failure they also fill a caller-owned struct mlx_err with a
 * one-line message meant for the user ("cannot open data/x.csv: No such file
 * or directory") and the errno that caused it, if any. Nothing is allocated:
 * the record lives wherever the caller put it. */
#ifndef MLX_ERR_H
#define MLX_ERR_H

enum mlx_status {
	MLX_OK = 0,
	MLX_ERR_IO = -1,	/* a system call failed; sys_errno says why */
	MLX_ERR_NOTFOUND = -2,	/* a named file, object or record does not exist */
	MLX_ERR_INVALID = -3,	/* the caller or the data broke a rule */
	MLX_ERR_NOMEM = -4,	/* allocation failed */
	MLX_ERR_CRYPTO = -5,	/* OpenSSL refused */
	MLX_ERR_CORRUPT = -6,	/* stored data does not match its hash or format */
	MLX_ERR_BUSY = -7,	/* a lock or database is held by someone else */
	MLX_ERR_INTERRUPTED = -8, /* a signal asked us to stop */
};

#define MLX_ERR_MSG_MAX 512

struct mlx_err {
	int status;		/* the enum mlx_status returned alongside */
	int sys_errno;		/* errno of the failed call, or 0 */
	char msg[MLX_ERR_MSG_MAX];
};

/* Fills err (if not NULL) and returns status, so callers can write
 * `return mlx_err_set(err, MLX_ERR_INVALID, 0, "bad %s", x);`. */
int mlx_err_set(struct mlx_err *err, int status, int sys_errno, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* As mlx_err_set with status MLX_ERR_IO (or MLX_ERR_NOTFOUND for ENOENT),
 * appending ": strerror(sys_errno)" to the message. */
int mlx_err_sys(struct mlx_err *err, int sys_errno, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Clears err to "no error". */
void mlx_err_clear(struct mlx_err *err);

#endif
