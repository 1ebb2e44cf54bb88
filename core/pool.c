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
#include <time.h>
#include <unistd.h>

#define MAX_JOBS 256

struct mlx_pool {
	mlx_pool_worker_fn fn;	/* run once by each thread */
	void *ctx;
	mlx_pool_fn item_fn;	/* for mlx_pool_run: called per item */
	void *item_ctx;
	size_t n;
	atomic_size_t next;
	atomic_int stop;
	sem_t done;		/* posted by each worker as it exits */
	pthread_mutex_t lock;	/* guards first */
	struct mlx_err first;
	const struct mlx_progress *progress; /* or NULL */
};

int mlx_pool_default_jobs(void)
{
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (int)n : 1;
}

/* Stops the run: no new item, and work in flight told (progress->stop). */
static void set_stop(struct mlx_pool *p)
{
	atomic_store(&p->stop, 1);
	if (p->progress && p->progress->stop)
		atomic_store(p->progress->stop, 1);
}

static void record_failure(struct mlx_pool *p, const struct mlx_err *err)
{
	pthread_mutex_lock(&p->lock);
	if (p->first.status == MLX_OK)
		p->first = *err;
	pthread_mutex_unlock(&p->lock);
	set_stop(p);
}

int mlx_pool_take(struct mlx_pool *p, size_t *i)
{
	if (atomic_load_explicit(&p->stop, memory_order_relaxed))
		return 0;
	*i = atomic_fetch_add(&p->next, 1);
	return *i < p->n;
}

int mlx_pool_stopping(const struct mlx_pool *p)
{
	return atomic_load_explicit(&((struct mlx_pool *)p)->stop, memory_order_relaxed);
}

static void *worker(void *arg)
{
	struct mlx_pool *p = arg;
	struct mlx_err err;
	mlx_err_clear(&err);
	int rc = p->fn(p->ctx, p, &err);
	if (rc != MLX_OK) {
		if (err.status == MLX_OK)
			err.status = rc;
		record_failure(p, &err);
	}
	sem_post(&p->done);
	return NULL;
}

/* mlx_pool_run's worker: one item at a time. */
static int take_items(void *ctx, struct mlx_pool *p, struct mlx_err *err)
{
	(void)ctx;
	size_t i;
	while (mlx_pool_take(p, &i)) {
		mlx_err_clear(err);
		int rc = p->item_fn(p->item_ctx, i, err);
		if (rc != MLX_OK)
			return rc;
	}
	return MLX_OK;
}

/* Waits for a worker to finish: at most 100 ms when progress is reported
 * (then -1 with errno ETIMEDOUT), else as long as it takes. */
static int wait_done(struct mlx_pool *p)
{
	if (!p->progress)
		return sem_wait(&p->done);
	struct timespec until;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_nsec += 100 * 1000000L;
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	return sem_timedwait(&p->done, &until);
}

int mlx_pool_start_thread(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	/* The new thread inherits this mask. */
	sigset_t block, saved;
	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	pthread_sigmask(SIG_BLOCK, &block, &saved);
	int rc = pthread_create(thread, NULL, fn, arg);
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
	return rc;
}

static int run(struct mlx_pool *p, int jobs, struct mlx_err *err)
{
	if (jobs <= 0)
		jobs = mlx_pool_default_jobs();
	if (jobs > MAX_JOBS)
		jobs = MAX_JOBS;
	if ((size_t)jobs > p->n)
		jobs = (int)p->n;
	atomic_init(&p->next, 0);
	atomic_init(&p->stop, 0);
	if (p->n == 0)
		return MLX_OK;
	if (jobs <= 1 && !p->progress)
		return p->fn(p->ctx, p, err);

	mlx_err_clear(&p->first);
	if (sem_init(&p->done, 0, 0) != 0)
		return mlx_err_sys(err, errno, "cannot start threads");
	pthread_mutex_init(&p->lock, NULL);

	pthread_t threads[MAX_JOBS];
	int started = 0;
	for (; started < jobs; started++)
		if (mlx_pool_start_thread(&threads[started], worker, p) != 0)
			break;

	int interrupted = 0;
	if (started == 0) {
		/* No thread at all: do the work here. */
		sem_destroy(&p->done);
		pthread_mutex_destroy(&p->lock);
		return p->fn(p->ctx, p, err);
	}
	for (int i = 0; i < started; i++) {
		while (wait_done(p) != 0) {
			if (errno == EINTR) {
				interrupted = 1;
				set_stop(p);
			} else if (errno == ETIMEDOUT && !interrupted) {
				size_t next = atomic_load(&p->next);
				if (p->progress->report(p->progress->ctx, next < p->n ? next : p->n, p->n) != 0) {
					interrupted = 1;
					set_stop(p);
				}
			}
		}
	}
	for (int i = 0; i < started; i++)
		pthread_join(threads[i], NULL);
	sem_destroy(&p->done);
	pthread_mutex_destroy(&p->lock);

	if (p->first.status != MLX_OK) {
		if (err)
			*err = p->first;
		return p->first.status;
	}
	if (interrupted)
		return mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "interrupted");
	return MLX_OK;
}

int mlx_pool_run_workers_progress(size_t n, int jobs, mlx_pool_worker_fn fn, void *ctx,
				  const struct mlx_progress *progress, struct mlx_err *err)
{
	struct mlx_pool p = {.fn = fn, .ctx = ctx, .n = n, .progress = progress};
	return run(&p, jobs, err);
}

int mlx_pool_run_workers(size_t n, int jobs, mlx_pool_worker_fn fn, void *ctx, struct mlx_err *err)
{
	return mlx_pool_run_workers_progress(n, jobs, fn, ctx, NULL, err);
}

int mlx_pool_run_progress(size_t n, int jobs, mlx_pool_fn fn, void *ctx, const struct mlx_progress *progress,
			  struct mlx_err *err)
{
	struct mlx_pool p = {.fn = take_items, .item_fn = fn, .item_ctx = ctx, .n = n, .progress = progress};
	return run(&p, jobs, err);
}

int mlx_pool_run(size_t n, int jobs, mlx_pool_fn fn, void *ctx, struct mlx_err *err)
{
	return mlx_pool_run_progress(n, jobs, fn, ctx, NULL, err);
}
