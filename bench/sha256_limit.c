/* sha256_limit.c — the in-memory SHA-256 limit of this machine for a set of
 * files: every file named on stdin (one path a line) is read into memory
 * first, then THREADS threads hash them, two files at a time per thread with
 * mlx's interleaved SHA-NI block function (core/sha256.c), as mlx hashes a
 * directory. No I/O, no allocation and no stat cache in the timed part, so
 * the figure is what the CPU allows; bench/scale.sh compares mlx hash of the
 * same files with it.
 *
 * build: cc -O2 -Icore bench/sha256_limit.c build/core/libmlx_core.a -lcrypto -lpthread
 * usage: find DIR -type f | ./sha256_limit [THREADS]   (default 2)
 * prints: files bytes seconds GB/s */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sha256.h"

struct file {
	unsigned char *bytes;
	size_t len;
	char hex[65];
};

struct share {
	struct file *files;
	size_t n;
};

/* Finishes one message: its whole blocks from done on, then the padding. */
static void finish(uint32_t h[8], const struct file *f, size_t done)
{
	unsigned char tail[128];
	size_t whole = f->len / MLX_SHA256_BLOCK;
	if (whole > done)
		mlx_sha256_blocks(h, f->bytes + done * MLX_SHA256_BLOCK, whole - done);
	size_t rest = f->len % MLX_SHA256_BLOCK;
	memcpy(tail, f->bytes + whole * MLX_SHA256_BLOCK, rest);
	mlx_sha256_blocks(h, tail, mlx_sha256_pad(tail, rest, f->len));
}

static void *hash_share(void *arg)
{
	struct share *s = arg;
	size_t i = 0;
	for (; i + 1 < s->n; i += 2) {
		struct file *a = &s->files[i], *b = &s->files[i + 1];
		uint32_t ha[8], hb[8];
		mlx_sha256_init(ha);
		mlx_sha256_init(hb);
		size_t na = a->len / MLX_SHA256_BLOCK, nb = b->len / MLX_SHA256_BLOCK;
		size_t both = na < nb ? na : nb;
		mlx_sha256_blocks2(ha, a->bytes, hb, b->bytes, both);
		finish(ha, a, both);
		finish(hb, b, both);
		mlx_sha256_hex(ha, a->hex);
		mlx_sha256_hex(hb, b->hex);
	}
	if (i < s->n) {
		uint32_t h[8];
		mlx_sha256_init(h);
		finish(h, &s->files[i], 0);
		mlx_sha256_hex(h, s->files[i].hex);
	}
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

int main(int argc, char **argv)
{
	int threads = argc > 1 ? atoi(argv[1]) : 2;
	if (threads < 1 || threads > 64 || !mlx_sha256_available()) {
		fprintf(stderr, "sha256_limit: usage: find DIR -type f | sha256_limit [THREADS 1-64]"
		                " (needs a CPU with SHA-NI)\n");
		return 2;
	}
	size_t n = 0, cap = 1024, bytes = 0;
	struct file *files = malloc(cap * sizeof *files);
	char line[4096];
	while (files && fgets(line, sizeof line, stdin)) {
		line[strcspn(line, "\n")] = '\0';
		if (n == cap)
			files = realloc(files, (cap *= 2) * sizeof *files);
		if (!files)
			break;
		files[n].bytes = read_all(line, &files[n].len);
		if (!files[n].bytes) {
			fprintf(stderr, "sha256_limit: cannot read %s\n", line);
			return 1;
		}
		bytes += files[n].len;
		n++;
	}
	if (!files)
		return 1;
	struct share shares[64];
	pthread_t tids[64];
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	size_t start = 0;
	for (int t = 0; t < threads; t++) {
		size_t count = n / threads + ((size_t)t < n % threads);
		shares[t] = (struct share){files + start, count};
		start += count;
		pthread_create(&tids[t], NULL, hash_share, &shares[t]);
	}
	for (int t = 0; t < threads; t++)
		pthread_join(tids[t], NULL);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double seconds = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	printf("%zu %zu %.6f %.3f\n", n, bytes, seconds, (double)bytes / seconds / 1e9);
	if (getenv("SHA256_LIMIT_PRINT")) /* sha256sum's format, to check the digests */
		for (size_t i = 0; i < n; i++)
			fprintf(stderr, "%s  (file %zu)\n", files[i].hex, i);
	return 0;
}
