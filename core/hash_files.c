/* hash_files.c — hashing the files of a list in a pool of threads.
 *
 * With SHA-NI (sha256.h) each thread keeps four files in flight, a "lane"
 * each, and runs their blocks through the four-message block function; a
 * lane whose file ends takes the next file at once, so nearly every block
 * is hashed four at a time whatever the file sizes (near the end of the
 * list, two at a time or alone). Without it, each thread hashes
 * one file at a time through OpenSSL. Either way a file is opened, fstat'ed
 * (the facts the stat cache keeps, taken before reading) and read in parts
 * of up to LANE_BUF bytes; a file smaller than that costs one read. */
#include "hash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "pool.h"
#include "sha256.h"

#define LANE_BUF (128u << 10)
#define LANES 4
#define PAD_ROOM (2 * MLX_SHA256_BLOCK)

struct files_job {
	int dirfd;
	const char *dir;
	struct mlx_filelist *list;
};

/* Opens f for hashing and fills its stat facts; returns the descriptor, or
 * a failure (negative) naming the file. */
static int open_file(const struct files_job *job, struct mlx_file *f, uint64_t *expect, struct mlx_err *err)
{
	f->hashed_ns = mlx_hash_now_ns();
	/* O_NONBLOCK: a fifo put in the file's place cannot hang the open. */
	int fd = openat(job->dirfd, f->path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot open %s/%s", job->dir, f->path);
	struct stat st;
	int rc = MLX_OK;
	if (fstat(fd, &st) != 0)
		rc = mlx_err_sys(err, errno, "cannot stat %s/%s", job->dir, f->path);
	else if (!S_ISREG(st.st_mode))
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "%s/%s: not a regular file", job->dir, f->path);
	if (rc != MLX_OK) {
		close(fd);
		return rc;
	}
	f->mode = (st.st_mode & 0111) ? 0755 : 0644;
	f->ino = (uint64_t)st.st_ino;
	f->mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
	f->ctime_ns = (int64_t)st.st_ctim.tv_sec * 1000000000 + st.st_ctim.tv_nsec;
	*expect = (uint64_t)st.st_size;
	return fd;
}

/* Reads into buf + keep; returns the count, or -1 with errno set. */
static ssize_t read_part(int fd, unsigned char *buf, size_t keep)
{
	ssize_t n;
	do
		n = read(fd, buf + keep, LANE_BUF - keep);
	while (n < 0 && errno == EINTR);
	return n;
}

/* ---- four files at a time (SHA-NI) -------------------------------------- */

struct lane {
	struct mlx_file *f;	/* the file in flight, or NULL */
	int fd;
	uint64_t expect;	/* its size when opened */
	uint64_t total;		/* bytes read so far */
	uint32_t h[8];
	unsigned char *buf;	/* LANE_BUF + PAD_ROOM bytes */
	const unsigned char *p; /* the next ready block */
	size_t blocks;		/* ready blocks at p */
	size_t keep;		/* bytes of an incomplete block at p, after them */
	int last;		/* the ready blocks end the file, padding and all */
};

/* Reads the next part of the lane's file and readies its whole blocks; at
 * the end of the file, the last bytes with the padding too. */
static int lane_read(const struct files_job *job, struct lane *l, struct mlx_err *err)
{
	size_t kept = l->keep;
	memmove(l->buf, l->p, kept);
	ssize_t n = read_part(l->fd, l->buf, kept);
	if (n < 0)
		return mlx_err_sys(err, errno, "cannot read %s/%s", job->dir, l->f->path);
	size_t have = kept + (size_t)n;
	l->total += (uint64_t)n;
	l->p = l->buf;
	l->blocks = have / MLX_SHA256_BLOCK;
	l->keep = have % MLX_SHA256_BLOCK;
	/* A short read reaching the size fstat gave is the end: this saves the
	 * read that would return 0, one system call per file. */
	if (n == 0 || ((size_t)n < LANE_BUF - kept && l->total >= l->expect)) {
		l->blocks += mlx_sha256_pad(l->buf + l->blocks * MLX_SHA256_BLOCK, l->keep, l->total);
		l->keep = 0;
		l->last = 1;
	}
	return MLX_OK;
}

/* Makes blocks ready in l, finishing its file and starting the next as
 * needed. Returns 1, 0 when no file is left to start, or a failure. */
static int lane_ready(const struct files_job *job, struct mlx_pool *pool, struct lane *l, struct mlx_err *err)
{
	while (l->blocks == 0) {
		if (l->f && l->last) {
			mlx_sha256_hex(l->h, l->f->hex);
			l->f->size = l->total;
			close(l->fd);
			l->fd = -1;
			l->f = NULL;
		}
		if (!l->f) {
			size_t i;
			do
				if (!mlx_pool_take(pool, &i))
					return 0;
			while (job->list->items[i].hex[0]);
			struct mlx_file *f = &job->list->items[i];
			int fd = open_file(job, f, &l->expect, err);
			if (fd < 0)
				return fd;
			l->f = f;
			l->fd = fd;
			l->total = 0;
			l->p = l->buf;
			l->keep = 0;
			l->last = 0;
			mlx_sha256_init(l->h);
		}
		int rc = lane_read(job, l, err);
		if (rc != MLX_OK)
			return rc;
	}
	return 1;
}

/* Runs the ready blocks of the k lanes at l (k of 1, 2 or 4) as far as the
 * shortest goes, all at once. */
static void run_lanes(struct lane *const *l, int k)
{
	size_t n = l[0]->blocks;
	for (int i = 1; i < k; i++)
		n = l[i]->blocks < n ? l[i]->blocks : n;
	if (k == 4) {
		uint32_t *const h[4] = {l[0]->h, l[1]->h, l[2]->h, l[3]->h};
		const unsigned char *const p[4] = {l[0]->p, l[1]->p, l[2]->p, l[3]->p};
		mlx_sha256_blocks4(h, p, n);
	} else if (k == 2) {
		mlx_sha256_blocks2(l[0]->h, l[0]->p, l[1]->h, l[1]->p, n);
	} else {
		mlx_sha256_blocks(l[0]->h, l[0]->p, n);
	}
	for (int i = 0; i < k; i++) {
		l[i]->p += n * MLX_SHA256_BLOCK;
		l[i]->blocks -= n;
	}
}

static int hash_in_lanes(void *vjob, struct mlx_pool *pool, struct mlx_err *err)
{
	const struct files_job *job = vjob;
	unsigned char *mem = malloc(LANES * (LANE_BUF + PAD_ROOM));
	if (!mem)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	struct lane lanes[LANES];
	for (int i = 0; i < LANES; i++)
		lanes[i] = (struct lane){.fd = -1, .buf = mem + (size_t)i * (LANE_BUF + PAD_ROOM)};
	int rc = MLX_OK;
	for (;;) {
		struct lane *ready[LANES];
		int k = 0;
		for (int i = 0; i < LANES && rc == MLX_OK; i++) {
			int r = lane_ready(job, pool, &lanes[i], err);
			if (r < 0)
				rc = r;
			else if (r)
				ready[k++] = &lanes[i];
		}
		if (rc != MLX_OK || k == 0)
			break;
		/* Three lanes (only near the end of the list): two now, the
		 * third on the next round. */
		run_lanes(ready, k == 3 ? 2 : k);
	}
	for (int i = 0; i < LANES; i++)
		if (lanes[i].fd >= 0)
			close(lanes[i].fd);
	free(mem);
	return rc;
}

/* ---- one file at a time (OpenSSL) --------------------------------------- */

static int hash_one_by_one(void *vjob, struct mlx_pool *pool, struct mlx_err *err)
{
	const struct files_job *job = vjob;
	unsigned char *buf = malloc(LANE_BUF);
	/* One context for all this worker's files, OpenSSL's: this is the
	 * path without SHA-NI, and mlx_hash_files_openssl's. */
	struct mlx_hash_stream h = {.openssl = 1};
	int rc = buf ? MLX_OK : mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	size_t i;
	while (rc == MLX_OK && mlx_pool_take(pool, &i)) {
		struct mlx_file *f = &job->list->items[i];
		if (f->hex[0])
			continue;
		uint64_t expect, total = 0;
		int fd = open_file(job, f, &expect, err);
		if (fd < 0) {
			rc = fd;
			break;
		}
		rc = mlx_hash_stream_start(&h, err);
		while (rc == MLX_OK) {
			ssize_t n = read_part(fd, buf, 0);
			if (n < 0) {
				rc = mlx_err_sys(err, errno, "cannot read %s/%s", job->dir, f->path);
				break;
			}
			if ((rc = mlx_hash_stream_update(&h, buf, (size_t)n, err)) != MLX_OK)
				break;
			total += (uint64_t)n;
			if (n == 0 || ((size_t)n < LANE_BUF && total >= expect))
				break;
		}
		close(fd);
		if (rc == MLX_OK && (rc = mlx_hash_stream_finish(&h, f->hex, err)) == MLX_OK)
			f->size = total;
	}
	mlx_hash_stream_free(&h);
	free(buf);
	return rc;
}

static int hash_files(const char *dir, struct mlx_filelist *list, int jobs, int accel,
		      const struct mlx_progress *progress, struct mlx_err *err)
{
	size_t todo = 0;
	for (size_t i = 0; i < list->len; i++)
		todo += !list->items[i].hex[0];
	if (todo == 0)
		return MLX_OK;
	struct files_job job = {.dir = dir, .list = list};
	job.dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (job.dirfd < 0)
		return mlx_err_sys(err, errno, "cannot open directory %s", dir);
	int rc;
	if (accel) {
		/* Up to four files per thread, but no fewer than two: no more
		 * threads than pairs, so that a short list still spreads over
		 * the CPUs. */
		if (jobs <= 0)
			jobs = mlx_pool_default_jobs();
		if ((size_t)jobs > (todo + 1) / 2)
			jobs = (int)((todo + 1) / 2);
		rc = mlx_pool_run_workers_progress(list->len, jobs, hash_in_lanes, &job, progress, err);
	} else {
		rc = mlx_pool_run_workers_progress(list->len, jobs, hash_one_by_one, &job, progress, err);
	}
	close(job.dirfd);
	return rc;
}

int mlx_hash_files(const char *dir, struct mlx_filelist *list, int jobs, struct mlx_err *err)
{
	return hash_files(dir, list, jobs, mlx_sha256_available(), NULL, err);
}

int mlx_hash_files_progress(const char *dir, struct mlx_filelist *list, int jobs, const struct mlx_progress *progress,
			    struct mlx_err *err)
{
	return hash_files(dir, list, jobs, mlx_sha256_available(), progress, err);
}

int mlx_hash_files_openssl(const char *dir, struct mlx_filelist *list, int jobs, struct mlx_err *err)
{
	return hash_files(dir, list, jobs, 0, NULL, err);
}
