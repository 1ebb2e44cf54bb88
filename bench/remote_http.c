/* remote_http.c — the driver of bench/remote_http.sh: pushes every file
 * under DIR to a remote as objects/<relative path>, or pulls every key
 * under objects/ into DIR, through the WebDAV or S3 backend
 * (core/remote_webdav.c, core/remote_s3.c) with JOBS threads, each with
 * its own backend instance (and so its own kept-alive connection), as the
 * transfer engine runs them.
 *
 * usage: remote_http push|pull URL DIR JOBS [NAME=VALUE…]   prints seconds */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "remote.h"

struct job {
	const struct mlx_remote_backend *backend;
	struct mlx_remote_config config;
	const char *dir;
	struct mlx_strlist keys; /* relative to objects/ */
	uint64_t *sizes;
	atomic_size_t next;
	atomic_int failed;
};

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void walk(const char *root, const char *rel, struct mlx_strlist *out)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", root, rel);
	DIR *d = opendir(path);
	if (!d)
		return;
	struct dirent *e;
	struct mlx_err err;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		char sub[4096];
		snprintf(sub, sizeof sub, "%s%s%s", rel, *rel ? "/" : "", e->d_name);
		if (e->d_type == DT_DIR)
			walk(root, sub, out);
		else if (mlx_strlist_push(out, sub, &err) != 0)
			exit(1);
	}
	closedir(d);
}

static int collect(void *ctx, const char *key, uint64_t size)
{
	(void)size;
	struct job *j = ctx;
	struct mlx_err err;
	return mlx_strlist_push(&j->keys, key + strlen("objects/"), &err);
}

static void make_parents(char *path)
{
	for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
		*p = '\0';
		mkdir(path, 0755);
		*p = '/';
	}
}

static void *worker(void *arg)
{
	struct job *j = arg;
	void *state;
	struct mlx_err err;
	if (j->backend->open(&j->config, &state, &err) != 0) {
		fprintf(stderr, "%s\n", err.msg);
		j->failed = 1;
		return NULL;
	}
	for (size_t i; !j->failed && (i = atomic_fetch_add(&j->next, 1)) < j->keys.len;) {
		char key[4096], path[4096];
		snprintf(key, sizeof key, "objects/%s", j->keys.items[i]);
		snprintf(path, sizeof path, "%s/%s", j->dir, j->keys.items[i]);
		int rc;
		if (j->sizes) { /* push */
			struct stat st;
			rc = stat(path, &st);
			if (rc == 0)
				rc = j->backend->put(state, key, path, (uint64_t)st.st_size, &err);
			else
				snprintf(err.msg, sizeof err.msg, "%s: %s", path, strerror(errno));
		} else {
			make_parents(path);
			int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC | O_CLOEXEC, 0644);
			rc = fd < 0 ? -1 : j->backend->get(state, key, fd, &err);
			if (fd < 0)
				snprintf(err.msg, sizeof err.msg, "%s: %s", path, strerror(errno));
			else
				close(fd);
		}
		if (rc != 0) {
			fprintf(stderr, "%s\n", err.msg);
			j->failed = 1;
		}
	}
	j->backend->close(state);
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc < 5 || (strcmp(argv[1], "push") && strcmp(argv[1], "pull"))) {
		fprintf(stderr, "usage: remote_http push|pull URL DIR JOBS [NAME=VALUE…]\n");
		return 2;
	}
	static struct job j;
	static struct mlx_strlist options;
	struct mlx_err err;
	for (int i = 5; i < argc; i++) {
		char *eq = strchr(argv[i], '=');
		if (!eq)
			return 2;
		*eq = '\0';
		mlx_strlist_push(&options, argv[i], &err);
		mlx_strlist_push(&options, eq + 1, &err);
	}
	j.config = (struct mlx_remote_config){.name = "bench", .url = argv[2], .options = &options};
	j.dir = argv[3];
	j.backend = mlx_remote_backend_for(argv[2]);
	if (!j.backend)
		return 2;
	int jobs = atoi(argv[4]);
	double t0 = now();
	if (strcmp(argv[1], "push") == 0) {
		walk(j.dir, "", &j.keys);
		j.sizes = calloc(1, sizeof *j.sizes);
	} else {
		void *state;
		if (j.backend->open(&j.config, &state, &err) != 0 ||
		    j.backend->list(state, "objects/", collect, &j, &err) != 0) {
			fprintf(stderr, "%s\n", err.msg);
			return 1;
		}
		j.backend->close(state);
	}
	pthread_t th[256];
	if (jobs < 1 || jobs > 256)
		return 2;
	for (int i = 0; i < jobs; i++)
		pthread_create(&th[i], NULL, worker, &j);
	for (int i = 0; i < jobs; i++)
		pthread_join(th[i], NULL);
	if (j.failed)
		return 1;
	printf("%.3f %zu\n", now() - t0, j.keys.len);
	return 0;
}
