/* err.c — filling struct mlx_err. */
#include "err.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int mlx_err_set(struct mlx_err *err, int status, int sys_errno, const char *fmt, ...)
{
	if (!err)
		return status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	err->status = status;
	err->sys_errno = sys_errno;
	return status;
}

int mlx_err_sys(struct mlx_err *err, int sys_errno, const char *fmt, ...)
{
	int status = sys_errno == ENOENT ? MLX_ERR_NOTFOUND : MLX_ERR_IO;
	if (sys_errno == ENOMEM)
		status = MLX_ERR_NOMEM;
	if (!err)
		return status;
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(err->msg, sizeof err->msg, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < sizeof err->msg)
		snprintf(err->msg + n, sizeof err->msg - (size_t)n, ": %s", strerror(sys_errno));
	err->status = status;
	err->sys_errno = sys_errno;
	return status;
}

void mlx_err_clear(struct mlx_err *err)
{
	if (!err)
		return;
	err->status = MLX_OK;
	err->sys_errno = 0;
	err->msg[0] = '\0';
}
