/* remote_floor.c — what the files of a pull cost the file system alone:
 * N objects of 4-64 KiB (as bench/remote.sh) written from memory by
 * THREADS threads, one way or the other, with no hashing, no remote and
 * no bookkeeping. Tells the share of a pull's time that creating its files
 * takes on a given disk.
 *
 *   one  one file per object in a tree of 200 directories (what rclone
 *        copy creates)
 *   two  what mlx pull creates: each object written to a temp file of the
 *        store (a directory of its own per thread), synced with syncfs,
 *        renamed into one of 256 shard directories and synced again, and
 *        its workspace copy written unnamed (O_TMPFILE) and linked into
 *        the tree of 200 directories
 *   two-rename  as two, the workspace copy written to a temp name beside
 *        its target and renamed over it (mlx before, and where the file
 *        system has no O_TMPFILE)
 *
 * usage: cc -O2 -pthread -o remote_floor bench/remote_floor.c
 *        ./remote_floor one|two|two-rename DIR [N [THREADS]]   (N 20000, THREADS 2)
 * DIR must not exist (it is made; nothing is deleted: on ext4, creating
 * files right after deleting many is slower for minutes, so remove old
 * DIRs well before a measurement). Prints wall and CPU seconds. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static int two, renamed, n, nth;
static int *sizes;
static char *data;
static int ws_fd, tmp_fd, obj_fd;

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void write_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t w = write(fd, p, len);
		if (w <= 0)
			die("write");
		p += w;
		len -= (size_t)w;
	}
}

static void *writer(void *arg)
{
	long t = (long)arg;
	char name[64], path[64];
	snprintf(name, sizeof name, "t%ld", t);
	if (two && mkdirat(tmp_fd, name, 0755) != 0)
		die("mkdirat");
	for (int i = (int)t; i < n; i += nth) {
		const char *bytes = data + (i % 1024) * 64;
		if (two) {
			snprintf(path, sizeof path, "t%ld/%d", t, i);
			int fd = openat(tmp_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0444);
			if (fd < 0)
				die(path);
			write_all(fd, bytes, (size_t)sizes[i]);
			close(fd);
		}
		snprintf(path, sizeof path, "d%03d/f%06d.bin", i % 200, i);
		if (two && renamed) {
			char tmp[64];
			snprintf(tmp, sizeof tmp, "d%03d/.f%06d.bin.tmp", i % 200, i);
			int fd = openat(ws_fd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd < 0)
				die(tmp);
			write_all(fd, bytes, (size_t)sizes[i]);
			close(fd);
			if (renameat(ws_fd, tmp, ws_fd, path) != 0)
				die("renameat");
		} else if (two) {
			char dir[8], fdpath[32];
			snprintf(dir, sizeof dir, "d%03d", i % 200);
			int fd = openat(ws_fd, dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
			if (fd < 0)
				die("O_TMPFILE");
			write_all(fd, bytes, (size_t)sizes[i]);
			snprintf(fdpath, sizeof fdpath, "/proc/self/fd/%d", fd);
			if (linkat(AT_FDCWD, fdpath, ws_fd, path, AT_SYMLINK_FOLLOW) != 0)
				die("linkat");
			close(fd);
		} else {
			int fd = openat(ws_fd, path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
			if (fd < 0)
				die(path);
			write_all(fd, bytes, (size_t)sizes[i]);
			close(fd);
		}
	}
	return NULL;
}

static void *publisher(void *arg)
{
	long t = (long)arg;
	char from[64], to[96];
	for (int i = (int)t; i < n; i += nth) {
		snprintf(from, sizeof from, "t%d/%d", i % nth, i);
		snprintf(to, sizeof to, "%02x/%062d", i % 256, i);
		if (renameat(tmp_fd, from, obj_fd, to) != 0)
			die("renameat");
	}
	return NULL;
}

static void run(void *(*fn)(void *))
{
	pthread_t th[64];
	for (long t = 0; t < nth; t++)
		if (pthread_create(&th[t], NULL, fn, (void *)t) != 0)
			die("pthread_create");
	for (int t = 0; t < nth; t++)
		pthread_join(th[t], NULL);
}

static int open_dir(const char *root, const char *sub)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", root, sub);
	if (mkdir(p, 0755) != 0)
		die(p);
	int fd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		die(p);
	return fd;
}

int main(int argc, char **argv)
{
	if (argc < 3 || (strcmp(argv[1], "one") != 0 && strcmp(argv[1], "two") != 0 &&
	                 strcmp(argv[1], "two-rename") != 0)) {
		fprintf(stderr, "usage: remote_floor one|two|two-rename DIR [N [THREADS]]\n");
		return 2;
	}
	two = strcmp(argv[1], "one") != 0;
	renamed = strcmp(argv[1], "two-rename") == 0;
	n = argc > 3 ? atoi(argv[3]) : 20000;
	nth = argc > 4 ? atoi(argv[4]) : 2;
	if (n <= 0 || nth <= 0 || nth > 64) {
		fprintf(stderr, "remote_floor: N and THREADS (1-64) must be positive\n");
		return 2;
	}
	sizes = malloc((size_t)n * sizeof *sizes);
	data = malloc(1024 * 64 + (64 << 10));
	if (!sizes || !data)
		die("malloc");
	srand(7);
	for (int i = 0; i < n; i++)
		sizes[i] = (4 << 10) + rand() % (60 << 10);
	for (int i = 0; i < 1024 * 64 + (64 << 10); i++)
		data[i] = (char)rand();
	if (mkdir(argv[2], 0755) != 0)
		die(argv[2]);
	ws_fd = open_dir(argv[2], "ws");
	char sub[8];
	for (int i = 0; i < 200; i++) {
		snprintf(sub, sizeof sub, "d%03d", i);
		if (mkdirat(ws_fd, sub, 0755) != 0)
			die("mkdirat");
	}
	if (two) {
		tmp_fd = open_dir(argv[2], "tmp");
		obj_fd = open_dir(argv[2], "objects");
		for (int i = 0; i < 256; i++) {
			snprintf(sub, sizeof sub, "%02x", i);
			if (mkdirat(obj_fd, sub, 0755) != 0)
				die("mkdirat");
		}
	}
	double t0 = now();
	run(writer);
	double t1 = now(), t2 = t1;
	if (two) {
		if (syncfs(tmp_fd) != 0)
			die("syncfs");
		t2 = now();
		run(publisher);
		if (syncfs(obj_fd) != 0)
			die("syncfs");
	}
	double t3 = now();
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("%s: %d objects, %d threads: %.3f s (create %.3f, sync %.3f, publish and sync %.3f); "
	       "CPU user %.3f s, sys %.3f s\n",
	       argv[1], n, nth, t3 - t0, t1 - t0, t2 - t1, t3 - t2,
	       (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6,
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	return 0;
}
