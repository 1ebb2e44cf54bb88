/* sha256_limit.c — the SHA-256 limits of this machine for a set of files.
 *
 * Every file named on stdin (one path a line) is hashed by THREADS threads,
 * four files at a time per thread with mlx's interleaved SHA-NI block
 * function (core/sha256.c), each lane taking the next file as its own ends,
 * as mlx hashes a directory (core/hash_files.c). Two limits:
 *
 *   (default)  in memory: every file is read into memory first, and only
 *              the hashing is timed. No I/O, no allocation and no stat
 *              cache in the timed part, so the figure is what the CPU
 *              allows; bench/scale.sh compares mlx hash of the same files
 *              with it. Every page of the bytes is read once before the
 *              clock starts: on some virtual machines the first access of
 *              a program to a page costs a fault in the hypervisor (here
 *              about 5 us a page, three times the hashing of the whole
 *              set), a cost of the loading, not of hashing.
 *   --read     through the kernel: the timed part also opens (by its name
 *              in its directory, kept open), fstats, reads (one read for
 *              the whole file) and closes each file. This is the least any
 *              program hashing files through read(2) does; the difference
 *              from the first figure is what the kernel costs per file and
 *              per byte here.
 *
 * build: cc -O2 -Icore bench/sha256_limit.c build/core/libmlx_core.a -lcrypto -lpthread
 * usage: find DIR -type f | ./sha256_limit [--read] [THREADS]   (default 2)
 * prints: files bytes seconds GB/s cpu-seconds (user + system, timed part) */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* O_PATH */
#endif
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "sha256.h"

struct file {
	const char *path;
	unsigned char *bytes; /* in memory; NULL with --read */
	size_t len;
	char hex[65];
};

struct share {
	struct file *files;
	size_t n;
	int failed;
};

/* What a thread keeps from file to file with --read: the directory of the
 * last file, open, so that each file is opened by its name in it (one path
 * component to look up, as mlx opens a file relative to the directory it
 * walked). */
struct reader {
	int dirfd;
	char dir[4096];
};

/* Reads f whole into *buf, as a hashing program must: open, fstat, read
 * until the size fstat gave, close. Returns 0, or -1 after a message. */
static int read_file(struct reader *r, struct file *f, unsigned char **buf, size_t *cap)
{
	const char *slash = strrchr(f->path, '/');
	size_t dlen = slash ? (size_t)(slash - f->path) : 0;
	const char *name = f->path;
	if (slash && dlen > 0 && dlen < sizeof r->dir) {
		if (r->dirfd < 0 || strncmp(r->dir, f->path, dlen) != 0 || r->dir[dlen] != '\0') {
			if (r->dirfd >= 0)
				close(r->dirfd);
			memcpy(r->dir, f->path, dlen);
			r->dir[dlen] = '\0';
			r->dirfd = open(r->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
		}
		if (r->dirfd >= 0)
			name = slash + 1;
	}
	int fd = openat(name == f->path ? AT_FDCWD : r->dirfd, name, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		perror(f->path);
		if (fd >= 0)
			close(fd);
		return -1;
	}
	size_t want = (size_t)st.st_size, got = 0;
	if (want > *cap) {
		free(*buf);
		*cap = want;
		*buf = malloc(want);
		if (!*buf) {
			close(fd);
			return -1;
		}
	}
	while (got < want) {
		ssize_t n = read(fd, *buf + got, want - got);
		if (n <= 0) {
			perror(f->path);
			close(fd);
			return -1;
		}
		got += (size_t)n;
	}
	close(fd);
	f->len = want;
	return 0;
}

/* One of the four files a thread hashes at once, as mlx's lanes do
 * (core/hash_files.c): a lane whose file ends takes the next one at once,
 * so that nearly every block goes through the four-message function. */
struct lane {
	struct file *f;             /* or NULL */
	const unsigned char *bytes; /* f's, in memory or read into buf */
	const unsigned char *p;     /* the next block */
	size_t blocks;              /* ready at p */
	int padded;                 /* the ready blocks are the padded tail */
	uint32_t h[8];
	unsigned char tail[2 * MLX_SHA256_BLOCK];
	unsigned char *buf; /* --read: grows to the largest file */
	size_t cap;
};

/* Readies blocks in l: the rest of its file, then its padded tail, then
 * the next file of the share (read through r, or NULL: in memory).
 * Returns 1, 0 when no file is left, -1 on a read failure. */
static int lane_ready(struct share *s, size_t *next, struct lane *l, struct reader *r)
{
	while (l->blocks == 0) {
		if (l->f && !l->padded) {
			size_t len = l->f->len, rest = len % MLX_SHA256_BLOCK;
			if (rest)
				memcpy(l->tail, l->bytes + len - rest, rest);
			l->blocks = mlx_sha256_pad(l->tail, rest, len);
			l->p = l->tail;
			l->padded = 1;
			continue;
		}
		if (l->f)
			mlx_sha256_hex(l->h, l->f->hex);
		l->f = NULL;
		if (*next == s->n)
			return 0;
		struct file *f = &s->files[(*next)++];
		if (r && read_file(r, f, &l->buf, &l->cap) != 0)
			return -1;
		l->f = f;
		l->bytes = r ? l->buf : f->bytes;
		l->p = l->bytes;
		l->blocks = f->len / MLX_SHA256_BLOCK;
		l->padded = 0;
		mlx_sha256_init(l->h);
	}
	return 1;
}

static void *hash_share(struct share *s, struct reader *r)
{
	struct lane lanes[4] = {0};
	size_t next = 0;
	for (;;) {
		struct lane *ready[4];
		int k = 0;
		for (int i = 0; i < 4 && !s->failed; i++) {
			int got = lane_ready(s, &next, &lanes[i], r);
			if (got < 0)
				s->failed = 1;
			else if (got)
				ready[k++] = &lanes[i];
		}
		if (s->failed || k == 0)
			break;
		if (k == 3)
			k = 2;
		size_t n = ready[0]->blocks;
		for (int i = 1; i < k; i++)
			n = ready[i]->blocks < n ? ready[i]->blocks : n;
		if (k == 4) {
			uint32_t *const h[4] = {ready[0]->h, ready[1]->h, ready[2]->h, ready[3]->h};
			const unsigned char *const p[4] = {ready[0]->p, ready[1]->p, ready[2]->p,
			                                   ready[3]->p};
			mlx_sha256_blocks4(h, p, n);
		} else if (k == 2) {
			mlx_sha256_blocks2(ready[0]->h, ready[0]->p, ready[1]->h, ready[1]->p, n);
		} else {
			mlx_sha256_blocks(ready[0]->h, ready[0]->p, n);
		}
		for (int i = 0; i < k; i++) {
			ready[i]->p += n * MLX_SHA256_BLOCK;
			ready[i]->blocks -= n;
		}
	}
	for (int i = 0; i < 4; i++)
		free(lanes[i].buf);
	return NULL;
}

static void *hash_in_memory(void *arg)
{
	return hash_share(arg, NULL);
}

static void *read_and_hash(void *arg)
{
	struct reader r = {.dirfd = -1};
	hash_share(arg, &r);
	if (r.dirfd >= 0)
		close(r.dirfd);
	return NULL;
}

static unsigned char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long size = ftell(f);
	rewind(f);
	unsigned char *p = malloc(size > 0 ? (size_t)size : 1);
	if (p && fread(p, 1, (size_t)size, f) != (size_t)size) {
		free(p);
		p = NULL;
	}
	fclose(f);
	*len = (size_t)size;
	return p;
}

/* Reads a byte of every page of the n files' bytes, so that the timed
 * part finds them mapped (see the header). */
static void touch_pages(const struct file *files, size_t n)
{
	volatile unsigned char sink = 0;
	long page = sysconf(_SC_PAGESIZE);
	size_t step = page > 0 ? (size_t)page : 4096;
	for (size_t i = 0; i < n; i++)
		for (size_t k = 0; k < files[i].len; k += step)
			sink ^= files[i].bytes[k];
	(void)sink;
}

static double cpu_seconds(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv)
{
	int through_read = argc > 1 && strcmp(argv[1], "--read") == 0;
	int threads = argc > 1 + through_read ? atoi(argv[1 + through_read]) : 2;
	if (threads < 1 || threads > 64 || argc > 2 + through_read || !mlx_sha256_available()) {
		fprintf(stderr, "sha256_limit: usage: find DIR -type f | sha256_limit [--read] [THREADS 1-64]"
		                " (needs a CPU with SHA-NI)\n");
		return 2;
	}
	size_t n = 0, cap = 1024;
	struct file *files = malloc(cap * sizeof *files);
	char line[4096];
	while (files && fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (n == cap)
			files = realloc(files, (cap *= 2) * sizeof *files);
		if (!files)
			break;
		files[n] = (struct file){.path = strdup(line)};
		if (!files[n].path)
			return 1;
		if (!through_read && !(files[n].bytes = read_all(line, &files[n].len))) {
			fprintf(stderr, "sha256_limit: cannot read %s\n", line);
			return 1;
		}
		n++;
	}
	if (!files)
		return 1;
	if (!through_read)
		touch_pages(files, n);
	struct share shares[64];
	pthread_t tids[64];
	struct timespec t0, t1;
	double cpu0 = cpu_seconds();
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t start = 0;
	for (int t = 0; t < threads; t++) {
		size_t count = n / threads + ((size_t)t < n % threads);
		shares[t] = (struct share){files + start, count, 0};
		start += count;
		pthread_create(&tids[t], NULL, through_read ? read_and_hash : hash_in_memory, &shares[t]);
	}
	int failed = 0;
	for (int t = 0; t < threads; t++) {
		pthread_join(tids[t], NULL);
		failed |= shares[t].failed;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double cpu = cpu_seconds() - cpu0;
	if (failed)
		return 1;
	size_t bytes = 0;
	for (size_t i = 0; i < n; i++)
		bytes += files[i].len;
	double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%zu %zu %.6f %.3f %.3f\n", n, bytes, seconds, (double)bytes / seconds / 1e9, cpu);
	if (getenv("SHA256_LIMIT_PRINT")) /* sha256sum's format, to check the digests */
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "%s  %s\n", files[i].hex, files[i].path);
	return 0;
}
