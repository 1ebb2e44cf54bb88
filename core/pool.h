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

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#include "err.h"

/* Work on item i, filling err on failure. Called from several threads at
 * once; must touch only item i's data or data it locks itself. */
typedef int (*mlx_pool_fn)(void *ctx, size_t i, struct mlx_err *err);

/* The default number of threads: the CPUs this process may run on. */
int mlx_pool_default_jobs(void);

/* Starts *thread running fn(arg) with SIGINT and SIGTERM blocked in it, so
 * that those signals reach the thread that waits for it and can stop the
 * work (the pool's workers, the store's background commit). Returns 0 or
 * pthread_create's error number. */
int mlx_pool_start_thread(pthread_t *thread, void *(*fn)(void *), void *arg);

/* Progress of a long run, reported on the calling thread (the one that
 * waits, never a worker): about every 100 ms, report(ctx, started, n) with
 * the number of items started so far, so that a caller can show files,
 * bytes and rate while it waits. With a progress, the work always runs in
 * worker threads (at least one), so the calling thread is free to report.
 * A report that returns non-zero stops the run as a signal does
 * (MLX_ERR_INTERRUPTED): it saw the interruption itself. */
struct mlx_progress {
	int (*report)(void *ctx, size_t started, size_t n);
	void *ctx;
	/* Or NULL. Set to 1 the moment the run starts stopping (a failure, a
	 * signal or a report's non-zero): work in flight that can be cut short
	 * (a long upload) watches it, where mlx_pool_take only stops new items. */
	atomic_int *stop;
};

/* Calls fn(ctx, i, err) for every i in 0..n-1 using up to jobs threads
 * (jobs <= 0: mlx_pool_default_jobs()). Returns 0 when every call returned 0.
 * Otherwise no new item is started after the first failure, and the first
 * failure's status and message are returned in err; MLX_ERR_INTERRUPTED if a
 * signal arrived while waiting. */
int mlx_pool_run(size_t n, int jobs, mlx_pool_fn fn, void *ctx, struct mlx_err *err);

/* As mlx_pool_run, reporting to progress (NULL: none). */
int mlx_pool_run_progress(size_t n, int jobs, mlx_pool_fn fn, void *ctx, const struct mlx_progress *progress,
			  struct mlx_err *err);

/* For work that keeps state across items (buffers, several items in flight
 * at once): each thread calls fn(ctx, pool, err) once, and fn takes items
 * itself with mlx_pool_take until that returns 0. */
struct mlx_pool;
typedef int (*mlx_pool_worker_fn)(void *ctx, struct mlx_pool *pool, struct mlx_err *err);

/* Sets *i to the next item not yet taken and returns 1, or returns 0 when
 * none is left or the pool is stopping (a failure or a signal). */
int mlx_pool_take(struct mlx_pool *pool, size_t *i);

/* Returns 1 once the pool is stopping (a failure or a signal), else 0:
 * for a worker that waits (a retry's backoff) to give up early. */
int mlx_pool_stopping(const struct mlx_pool *pool);

/* As mlx_pool_run, with fn called once per thread (once in the calling
 * thread if one is enough) over the items 0..n-1. */
int mlx_pool_run_workers(size_t n, int jobs, mlx_pool_worker_fn fn, void *ctx, struct mlx_err *err);

/* As mlx_pool_run_workers, reporting to progress (NULL: none). */
int mlx_pool_run_workers_progress(size_t n, int jobs, mlx_pool_worker_fn fn, void *ctx,
				  const struct mlx_progress *progress, struct mlx_err *err);

#endif
