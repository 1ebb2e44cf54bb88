/* create_limit.c — what creating many small files costs this file system.
 *
 * The floor under `mlx add` of many small files: every object of the store
 * is a file of its own, so adding N files makes at least N inodes. Each
 * figure is taken in THREADS threads (file i is done by thread i % THREADS):
 *
 *   create   N files of SIZE bytes written straight into 256 directories
 *            (file i into directory i % 256, as objects spread over the
 *            store's shards), then one syncfs(2). No store could do less
 *            with a file per object.
 *   stage    what the store does (core/store.c): N files created into temp
 *            directories of 256 files each, one syncfs, each renamed into
 *            one of 256 shard directories, one syncfs, the temp
 *            directories removed.
 *   tmpfile  the alternative that never names a file before its bytes are
 *            durable without a temp name: unnamed files (O_TMPFILE) made
 *            in their shards, each thread keeping up to 4,096 open; a full
 *            set is synced (syncfs) and then linked under its names
 *            (linkat of /proc/self/fd/N, as a process without
 *            CAP_DAC_READ_SEARCH must) and closed.
 *
 * The bytes are the same buffer for every file (no hashing, no reading):
 * the difference between these figures and `mlx add` is what reading,
 * hashing, the walk, the manifest and the lock cost on top.
 *
 * build: cc -O2 bench/create_limit.c -lpthread -o create_limit
 * usage: create_limit create|stage|tmpfile DIR N [THREADS] [SIZE]   (2, 500)
 *        DIR must not exist; it is left filled, for the caller to remove.
 * prints: mode files seconds files/s; on stderr, the seconds of each phase */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* syncfs */
#endif
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SHARDS 256
#define PER_TEMP_DIR 256

struct job {
	int stage; /* 0: create, 1: stage */
	int shards_fd, temp_fd;
	long n, threads, size, t;
	const char *buf;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what)
{
	fprintf(stderr, "create_limit: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void *create_files(void *arg)
{
	struct job *j = arg;
	char name[64];
	for (long i = j->t; i < j->n; i += j->threads) {
		if (j->stage)
			snprintf(name, sizeof name, "%lx/%ld", i / PER_TEMP_DIR, i);
		else
			snprintf(name, sizeof name, "%02lx/%ld", i % SHARDS, i);
		int fd = openat(j->stage ? j->temp_fd : j->shards_fd, name,
		                O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
		if (fd < 0)
			die(name);
		if (write(fd, j->buf, (size_t)j->size) != j->size)
			die("write");
		if (close(fd) != 0)
			die("close");
	}
	return NULL;
}

/* tmpfile: each thread creates unnamed files (O_TMPFILE) in their shards,
 * keeping up to BATCH descriptors; a full batch is synced (syncfs) and
 * only then linked under its names, so that no name is visible before its
 * bytes are durable. */
#define BATCH 4096
static void *tmpfile_files(void *arg)
{
	struct job *j = arg;
	static const int batch = BATCH;
	int fds[BATCH];
	long ids[BATCH];
	int held = 0;
	char name[64], proc[64];
	for (long i = j->t;; i += j->threads) {
		if (held == batch || (i >= j->n && held > 0)) {
			if (syncfs(j->shards_fd) != 0)
				die("syncfs");
			for (int k = 0; k < held; k++) {
				snprintf(proc, sizeof proc, "/proc/self/fd/%d", fds[k]);
				snprintf(name, sizeof name, "%02lx/%ld", ids[k] % SHARDS, ids[k]);
				if (linkat(AT_FDCWD, proc, j->shards_fd, name, AT_SYMLINK_FOLLOW) != 0)
					die(name);
				close(fds[k]);
			}
			held = 0;
		}
		if (i >= j->n)
			break;
		snprintf(name, sizeof name, "%02lx", i % SHARDS);
		int fd = openat(j->shards_fd, name, O_TMPFILE | O_WRONLY | O_CLOEXEC, 0444);
		if (fd < 0)
			die(name);
		if (write(fd, j->buf, (size_t)j->size) != j->size)
			die("write");
		fds[held] = fd;
		ids[held++] = i;
	}
	return NULL;
}

static void *rename_files(void *arg)
{
	struct job *j = arg;
	char from[64], to[64];
	for (long i = j->t; i < j->n; i += j->threads) {
		snprintf(from, sizeof from, "%lx/%ld", i / PER_TEMP_DIR, i);
		snprintf(to, sizeof to, "%02lx/%ld", i % SHARDS, i);
		if (renameat(j->temp_fd, from, j->shards_fd, to) != 0)
			die(from);
	}
	return NULL;
}

static void run(struct job *jobs, long threads, void *(*fn)(void *))
{
	pthread_t tid[64];
	for (long t = 0; t < threads; t++)
		if (pthread_create(&tid[t], NULL, fn, &jobs[t]) != 0)
			die("pthread_create");
	for (long t = 0; t < threads; t++)
		pthread_join(tid[t], NULL);
}

static int make_dir(int at, const char *name)
{
	if (mkdirat(at, name, 0755) != 0)
		die(name);
	int fd = openat(at, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(name);
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 4 ||
	    (strcmp(argv[1], "create") && strcmp(argv[1], "stage") && strcmp(argv[1], "tmpfile"))) {
		fprintf(stderr, "usage: create_limit create|stage|tmpfile DIR N [THREADS] [SIZE]\n");
		return 2;
	}
	int stage = strcmp(argv[1], "stage") == 0, tmpfile = strcmp(argv[1], "tmpfile") == 0;
	long n = atol(argv[3]), threads = argc > 4 ? atol(argv[4]) : 2, size = argc > 5 ? atol(argv[5]) : 500;
	if (n <= 0 || threads <= 0 || threads > 64 || size < 0 || size > 1 << 20) {
		fprintf(stderr, "create_limit: bad N, THREADS or SIZE\n");
		return 2;
	}
	char *buf = malloc((size_t)size + 1);
	if (!buf)
		die("malloc");
	memset(buf, 'x', (size_t)size);
	int root = make_dir(AT_FDCWD, argv[2]);
	int shards_fd = make_dir(root, "objects");
	int temp_fd = make_dir(root, "tmp");
	/* Directories made before the clock starts: the store makes its
	 * shards once and keeps them. */
	char name[64];
	for (int d = 0; d < SHARDS; d++) {
		snprintf(name, sizeof name, "%02x", d);
		close(make_dir(shards_fd, name));
	}
	struct job jobs[64];
	for (long t = 0; t < threads; t++)
		jobs[t] = (struct job){.stage = stage,
		                       .shards_fd = shards_fd,
		                       .temp_fd = temp_fd,
		                       .n = n,
		                       .threads = threads,
		                       .size = size,
		                       .t = t,
		                       .buf = buf};
	double t0 = now();
	if (stage) /* temp directories are made as the store makes them: as the files need them */
		for (long d = 0; d <= (n - 1) / PER_TEMP_DIR; d++) {
			snprintf(name, sizeof name, "%lx", d);
			close(make_dir(temp_fd, name));
		}
	run(jobs, threads, tmpfile ? tmpfile_files : create_files);
	double t1 = now();
	if (syncfs(root) != 0)
		die("syncfs");
	double t2 = now();
	fprintf(stderr, "create_limit: create %.3f s, sync %.3f s\n", t1 - t0, t2 - t1);
	if (stage) {
		run(jobs, threads, rename_files);
		double t3 = now();
		if (syncfs(root) != 0)
			die("syncfs");
		double t4 = now();
		fprintf(stderr, "create_limit: rename %.3f s, sync %.3f s\n", t3 - t2, t4 - t3);
		for (long d = 0; d <= (n - 1) / PER_TEMP_DIR; d++) {
			snprintf(name, sizeof name, "%lx", d);
			if (unlinkat(temp_fd, name, AT_REMOVEDIR) != 0)
				die(name);
		}
	}
	double secs = now() - t0;
	printf("%s %ld %.3f %.0f\n", argv[1], n, secs, (double)n / secs);
	free(buf);
	return 0;
}
