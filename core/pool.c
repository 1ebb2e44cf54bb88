/* pool.c — a counter shared by worker threads, and a waiting main thread. */
#include "pool.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_JOBS 256

struct pool {
	mlx_pool_fn fn;
	void *ctx;
	size_t n;
	atomic_size_t next;
	atomic_int stop;
	sem_t done;		/* posted by each worker as it exits */
	pthread_mutex_t lock;	/* guards first */
	struct mlx_err first;
};

int mlx_pool_default_jobs(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

static void record_failure(struct pool *p, const struct mlx_err *err)
{
	pthread_mutex_lock(&p->lock);
	if (p->first.status == MLX_OK)
		p->first = *err;
	pthread_mutex_unlock(&p->lock);
	atomic_store(&p->stop, 1);
}

static void *worker(void *arg)
{
	struct pool *p = arg;
	struct mlx_err err;
	while (!atomic_load(&p->stop)) {
		size_t i = atomic_fetch_add(&p->next, 1);
		if (i >= p->n)
			break;
		mlx_err_clear(&err);
		int rc = p->fn(p->ctx, i, &err);
		if (rc != MLX_OK) {
			if (err.status == MLX_OK)
				err.status = rc;
			record_failure(p, &err);
		}
	}
	sem_post(&p->done);
	return NULL;
}

static int run_inline(size_t n, mlx_pool_fn fn, void *ctx, struct mlx_err *err)
{
	for (size_t i = 0; i < n; i++) {
		int rc = fn(ctx, i, err);
		if (rc != MLX_OK)
			return rc;
	}
	return MLX_OK;
}

int mlx_pool_run(size_t n, int jobs, mlx_pool_fn fn, void *ctx, struct mlx_err *err)
{
	if (jobs <= 0)
		jobs = mlx_pool_default_jobs();
	if (jobs > MAX_JOBS)
		jobs = MAX_JOBS;
	if ((size_t)jobs > n)
		jobs = (int)n;
	if (jobs <= 1)
		return run_inline(n, fn, ctx, err);

	struct pool p = {.fn = fn, .ctx = ctx, .n = n};
	atomic_init(&p.next, 0);
	atomic_init(&p.stop, 0);
	mlx_err_clear(&p.first);
	if (sem_init(&p.done, 0, 0) != 0)
		return mlx_err_sys(err, errno, "cannot start threads");
	pthread_mutex_init(&p.lock, NULL);

	/* Workers inherit this mask: signals go to the waiting thread. */
	sigset_t block, saved;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	pthread_t threads[MAX_JOBS];
	int started = 0, create_errno = 0;
	for (; started < jobs; started++) {
		int e = pthread_create(&threads[started], NULL, worker, &p);
		if (e != 0) {
			create_errno = e;
			break;
		}
	}
	pthread_sigmask(SIG_SETMASK, &saved, NULL);

	int interrupted = 0;
	if (started == 0) {
		/* No thread at all: do the work here. */
		sem_destroy(&p.done);
		pthread_mutex_destroy(&p.lock);
		(void)create_errno;
		return run_inline(n, fn, ctx, err);
	}
	for (int i = 0; i < started; i++) {
		while (sem_wait(&p.done) != 0) {
			if (errno == EINTR) {
				interrupted = 1;
				atomic_store(&p.stop, 1);
			}
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	sem_destroy(&p.done);
	pthread_mutex_destroy(&p.lock);

	if (p.first.status != MLX_OK) {
		if (err)
			*err = p.first;
		return p.first.status;
	}
	if (interrupted)
		return mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "interrupted");
	return MLX_OK;
}
