/* pool.h — run a function over the items 0..n-1 in parallel threads.
 *
 * Hashing, storing and checking files are independent per file and bound by
 * CPU (SHA-256) or by system call latency, so a small pool of threads, one
 * per core by default, takes items from a shared counter until none are
 * left. The calling thread only waits, with SIGINT and SIGTERM blocked in the
 * workers, so a signal always reaches it: it then stops the workers after
 * their current item and returns MLX_ERR_INTERRUPTED. Nothing is allocated
 * that outlives the call. */
#ifndef MLX_POOL_H
#define MLX_POOL_H

#include <stddef.h>

#include "err.h"

/* Work on item i, filling err on failure. Called from several threads at
 * once; must touch only item i's data or data it locks itself. */
typedef int (*mlx_pool_fn)(void *ctx, size_t i, struct mlx_err *err);

/* The default number of threads: the CPUs this process may run on. */
int mlx_pool_default_jobs(void);

/* Calls fn(ctx, i, err) for every i in 0..n-1 using up to jobs threads
 * (jobs <= 0: mlx_pool_default_jobs()). Returns 0 when every call returned 0.
 * Otherwise no new item is started after the first failure, and the first
 * failure's status and message are returned in err; MLX_ERR_INTERRUPTED if a
 * signal arrived while waiting. */
int mlx_pool_run(size_t n, int jobs, mlx_pool_fn fn, void *ctx, struct mlx_err *err);

#endif
