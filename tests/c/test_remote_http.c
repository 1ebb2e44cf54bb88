/* test_remote_http.c — the WebDAV and S3 backends (core/remote_webdav.c,
 * core/remote_s3.c) against real servers: nginx with its DAV modules and
 * s3rver, started by tests/helper/with_server.sh, and a small HTTP peer in
 * a thread of this test for what real servers do not do on demand (a body
 * cut short).
 *
 * MLX_TEST_REMOTE_KIND says which backend: "webdav" (MLX_TEST_DAV_*) or
 * "s3" (MLX_TEST_S3_*). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "remote.h"
#include "remote_http.h"

static bool is_s3;
static char tmpdir[] = "/tmp/mlx-test-remote-XXXXXX";
static unsigned serial; /* keeps the keys of each test apart */

/* ---- configurations ------------------------------------------------------ */

struct conf {
	struct mlx_remote_config config;
	struct mlx_strlist options;
	char url[512];
};

static void conf_option(struct conf *c, const char *name, const char *value)
{
	struct mlx_err err;
	assert_int_equal(mlx_strlist_push(&c->options, name, &err), 0);
	assert_int_equal(mlx_strlist_push(&c->options, value, &err), 0);
}

/* The configuration of the server under test, with a fresh prefix. */
static void conf_server(struct conf *c, const char *name)
{
	memset(c, 0, sizeof *c);
	c->config.name = name;
	c->config.url = c->url;
	c->config.options = &c->options;
	serial++;
	if (is_s3) {
		/* "//", as in a URL joined by hand: the same as one '/' */
		snprintf(c->url, sizeof c->url, "s3://%s//t%u-%d", getenv("MLX_TEST_S3_BUCKET"), serial,
		         (int)getpid());
		conf_option(c, "endpoint", getenv("MLX_TEST_S3_ENDPOINT"));
		conf_option(c, "region", "us-east-1");
		conf_option(c, "access_key_id", getenv("MLX_TEST_S3_ACCESS_KEY_ID"));
		conf_option(c, "secret_access_key", getenv("MLX_TEST_S3_SECRET_ACCESS_KEY"));
	} else {
		snprintf(c->url, sizeof c->url, "%s/t%u-%d/", getenv("MLX_TEST_DAV_URL"), serial,
		         (int)getpid());
	}
}

static void conf_free(struct conf *c)
{
	mlx_strlist_free(&c->options);
}

static const struct mlx_remote_backend *backend(void)
{
	return is_s3 ? &mlx_remote_s3 : &mlx_remote_webdav;
}

static void *open_conf(struct conf *c)
{
	struct mlx_err err;
	void *state = NULL;
	int rc = backend()->open(&c->config, &state, &err);
	if (rc != 0)
		fail_msg("open %s: %s", c->url, err.msg);
	return state;
}

/* ---- files --------------------------------------------------------------- */

static char *write_file(const char *name, size_t size, unsigned seed)
{
	char *path = malloc(1024);
	snprintf(path, 1024, "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		fputc((int)(x >> 16) & 0xff, f);
	}
	fclose(f);
	return path;
}

static char *read_all(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	char *buf = malloc((size_t)n + 1);
	assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
	fclose(f);
	*len = (size_t)n;
	return buf;
}

/* Gets key into a temp file and compares it with the file at want. */
static void assert_get_equals(void *state, const char *key, const char *want)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/got-XXXXXX", tmpdir);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	struct mlx_err err;
	int rc = backend()->get(state, key, fd, &err);
	if (rc != 0)
		fail_msg("get %s: %s", key, err.msg);
	close(fd);
	size_t a, b;
	char *got = read_all(path, &a), *exp = read_all(want, &b);
	assert_int_equal(a, b);
	assert_memory_equal(got, exp, a);
	free(got);
	free(exp);
	unlink(path);
}

static void put_ok(void *state, const char *key, const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	struct mlx_err err;
	int rc = backend()->put(state, key, path, (uint64_t)st.st_size, &err);
	if (rc != 0)
		fail_msg("put %s: %s", key, err.msg);
}

/* ---- listing --------------------------------------------------------------- */

struct seen {
	struct mlx_strlist keys;
	uint64_t bytes;
};

static int collect(void *ctx, const char *key, uint64_t size)
{
	struct seen *s = ctx;
	struct mlx_err err;
	s->bytes += size;
	return mlx_strlist_push(&s->keys, key, &err);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void list_ok(void *state, const char *prefix, struct seen *s)
{
	memset(s, 0, sizeof *s);
	struct mlx_err err;
	int rc = backend()->list(state, prefix, collect, s, &err);
	if (rc != 0)
		fail_msg("list %s: %s", prefix, err.msg);
	if (s->keys.len > 0) /* qsort's array may not be NULL, even when empty */
		qsort(s->keys.items, s->keys.len, sizeof *s->keys.items, cmp_str);
}

/* ---- tests ----------------------------------------------------------------- */

static void test_put_get_stat(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	void *state = open_conf(&c);
	char *path = write_file("a", 100 * 1024 + 7, 1);
	const char *key = "objects/ab/cdef0123456789";
	put_ok(state, key, path);
	uint64_t size = 0;
	struct mlx_err err;
	assert_int_equal(backend()->stat(state, key, &size, &err), 0);
	assert_int_equal(size, 100 * 1024 + 7);
	assert_get_equals(state, key, path);
	/* an empty object is an object */
	char *empty = write_file("empty", 0, 2);
	put_ok(state, "objects/e3/empty", empty);
	assert_int_equal(backend()->stat(state, "objects/e3/empty", &size, &err), 0);
	assert_int_equal(size, 0);
	assert_get_equals(state, "objects/e3/empty", empty);
	backend()->close(state);
	free(path);
	free(empty);
	conf_free(&c);
}

static void test_overwrite_and_remove(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	void *state = open_conf(&c);
	char *one = write_file("one", 5000, 3), *two = write_file("two", 3000, 4);
	put_ok(state, "index/segment", one);
	put_ok(state, "index/segment", two);
	assert_get_equals(state, "index/segment", two);
	struct mlx_err err;
	assert_int_equal(backend()->remove(state, "index/segment", &err), 0);
	uint64_t size;
	assert_int_equal(backend()->stat(state, "index/segment", &size, &err), MLX_ERR_NOTFOUND);
	/* removing what is not there is fine */
	assert_int_equal(backend()->remove(state, "index/segment", &err), 0);
	backend()->close(state);
	free(one);
	free(two);
	conf_free(&c);
}

static void test_missing_key(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	void *state = open_conf(&c);
	struct mlx_err err;
	uint64_t size;
	assert_int_equal(backend()->stat(state, "objects/00/missing", &size, &err), MLX_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "origin"));
	assert_non_null(strstr(err.msg, "objects/00/missing"));
	char path[1024];
	snprintf(path, sizeof path, "%s/miss-XXXXXX", tmpdir);
	int fd = mkstemp(path);
	assert_int_equal(backend()->get(state, "objects/00/missing", fd, &err), MLX_ERR_NOTFOUND);
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	assert_int_equal(st.st_size, 0); /* the error page never lands in fd */
	close(fd);
	unlink(path);
	/* a prefix that does not exist lists nothing */
	struct seen s;
	list_ok(state, "nothing/", &s);
	assert_int_equal(s.keys.len, 0);
	mlx_strlist_free(&s.keys);
	backend()->close(state);
	conf_free(&c);
}

static void test_list_nested(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	void *state = open_conf(&c);
	char *f = write_file("small", 10, 5), *g = write_file("small2", 20, 6);
	put_ok(state, "objects/aa/x1", f);
	put_ok(state, "objects/ab/x2", g);
	put_ok(state, "objects/ab/x3", f);
	put_ok(state, "objects/ab/cd/deep", g);
	put_ok(state, "index/s1", f);
	struct seen s;
	list_ok(state, "objects/", &s);
	assert_int_equal(s.keys.len, 4);
	assert_string_equal(s.keys.items[0], "objects/aa/x1");
	assert_string_equal(s.keys.items[1], "objects/ab/cd/deep");
	assert_string_equal(s.keys.items[2], "objects/ab/x2");
	assert_string_equal(s.keys.items[3], "objects/ab/x3");
	assert_int_equal(s.bytes, 10 + 20 + 20 + 10);
	mlx_strlist_free(&s.keys);
	list_ok(state, "objects/ab/", &s);
	assert_int_equal(s.keys.len, 3);
	mlx_strlist_free(&s.keys);
	list_ok(state, "index/", &s);
	assert_int_equal(s.keys.len, 1);
	assert_string_equal(s.keys.items[0], "index/s1");
	mlx_strlist_free(&s.keys);
	backend()->close(state);
	free(f);
	free(g);
	conf_free(&c);
}

/* More keys than one listing page (1,000 for S3), so continuation tokens
 * are followed; WebDAV walks 16 collections. */
/* Threads that put keys "objects/<i % 16>/<i>" for i in [0, n), each
 * through its own instance, as the transfer engine's workers do. */
struct putters {
	struct conf *c;
	const char *path;
	int n;
	atomic_int next, failed;
};

static void *putter(void *arg)
{
	struct putters *p = arg;
	void *state = NULL;
	struct mlx_err err;
	if (backend()->open(&p->c->config, &state, &err) != 0) {
		p->failed = 1;
		return NULL;
	}
	for (int i; !p->failed && (i = atomic_fetch_add(&p->next, 1)) < p->n;) {
		char key[64];
		snprintf(key, sizeof key, "objects/%02x/%06d", i % 16, i);
		if (backend()->put(state, key, p->path, 3, &err) != 0) {
			fprintf(stderr, "put %s: %s\n", key, err.msg);
			p->failed = 1;
		}
	}
	backend()->close(state);
	return NULL;
}

/* More keys than one listing page (1,000 for S3), so continuation tokens
 * are followed; WebDAV walks 16 collections. */
static void test_list_many(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	char *f = write_file("tiny", 3, 7);
	struct putters p = {.c = &c, .path = f, .n = is_s3 ? 1010 : 400};
	pthread_t th[8];
	for (int i = 0; i < 8; i++)
		assert_int_equal(pthread_create(&th[i], NULL, putter, &p), 0);
	for (int i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	assert_int_equal(p.failed, 0);
	void *state = open_conf(&c);
	struct seen s;
	list_ok(state, "objects/", &s);
	assert_int_equal(s.keys.len, (size_t)p.n);
	assert_int_equal(s.bytes, (uint64_t)p.n * 3);
	for (size_t i = 1; i < s.keys.len; i++) /* no key twice */
		assert_true(strcmp(s.keys.items[i - 1], s.keys.items[i]) < 0);
	mlx_strlist_free(&s.keys);
	backend()->close(state);
	free(f);
	conf_free(&c);
}

/* A listing stops when the callback says so, and list returns its code. */
static int stop_at_two(void *ctx, const char *key, uint64_t size)
{
	(void)key;
	(void)size;
	int *count = ctx;
	return ++*count == 2 ? 42 : 0;
}

static void test_list_stops(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	void *state = open_conf(&c);
	char *f = write_file("tiny2", 3, 8);
	put_ok(state, "objects/00/a", f);
	put_ok(state, "objects/00/b", f);
	put_ok(state, "objects/00/c", f);
	int count = 0;
	struct mlx_err err;
	assert_int_equal(backend()->list(state, "objects/", stop_at_two, &count, &err), 42);
	assert_int_equal(count, 2);
	backend()->close(state);
	free(f);
	conf_free(&c);
}

static int closed_port(void)
{
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	getsockname(s, (struct sockaddr *)&a, &len);
	close(s); /* nothing listens there now */
	return ntohs(a.sin_port);
}

/* A configuration for a server at 127.0.0.1:port (the peer, or nothing). */
static void conf_at(struct conf *c, int port)
{
	memset(c, 0, sizeof *c);
	c->config.name = "elsewhere";
	c->config.url = c->url;
	c->config.options = &c->options;
	char endpoint[64];
	snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", port);
	if (is_s3) {
		snprintf(c->url, sizeof c->url, "s3://bucket/p");
		conf_option(c, "endpoint", endpoint);
		conf_option(c, "access_key_id", "AK");
		conf_option(c, "secret_access_key", "SK");
	} else {
		snprintf(c->url, sizeof c->url, "%s/dav/", endpoint);
	}
	conf_option(c, "timeout_ms", "5000");
}

static void test_server_down(void **unused)
{
	(void)unused;
	struct conf c;
	conf_at(&c, closed_port());
	void *state = open_conf(&c); /* open does not talk to the server */
	struct mlx_err err;
	uint64_t size;
	assert_int_equal(backend()->stat(state, "objects/00/x", &size, &err), MLX_ERR_IO);
	assert_non_null(strstr(err.msg, "remote elsewhere"));
	char *f = write_file("down", 10, 9);
	assert_int_equal(backend()->put(state, "objects/00/x", f, 10, &err), MLX_ERR_IO);
	struct seen s = {0};
	assert_int_equal(backend()->list(state, "objects/", collect, &s, &err), MLX_ERR_IO);
	backend()->close(state);
	free(f);
	conf_free(&c);
}

/* The peer: answers every request, one per connection, with a canned
 * response, then closes. */
struct peer {
	int fd, port;
	const char *response;
	pthread_t thread;
};

static void *peer_main(void *arg)
{
	struct peer *p = arg;
	for (;;) {
		int c = accept(p->fd, NULL, NULL);
		if (c < 0)
			return NULL;
		char buf[8192];
		ssize_t n = recv(c, buf, sizeof buf, 0);
		(void)n;
		if (send(c, p->response, strlen(p->response), MSG_NOSIGNAL) < 0) {
		}
		close(c);
	}
}

static void peer_start(struct peer *p, const char *response)
{
	p->response = response;
	p->fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	assert_int_equal(bind(p->fd, (struct sockaddr *)&a, sizeof a), 0);
	socklen_t len = sizeof a;
	getsockname(p->fd, (struct sockaddr *)&a, &len);
	p->port = ntohs(a.sin_port);
	assert_int_equal(listen(p->fd, 8), 0);
	assert_int_equal(pthread_create(&p->thread, NULL, peer_main, p), 0);
}

static void peer_stop(struct peer *p)
{
	shutdown(p->fd, SHUT_RDWR);
	close(p->fd);
	pthread_join(p->thread, NULL);
}

/* A 200 whose body is shorter than its Content-Length is a transport
 * failure, and never a short object. */
static void test_truncated_body(void **unused)
{
	(void)unused;
	static char response[1024];
	snprintf(response, sizeof response,
	         "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nETag: \"x\"\r\n\r\n%0500d", 0);
	struct peer p;
	peer_start(&p, response);
	struct conf c;
	conf_at(&c, p.port);
	void *state = open_conf(&c);
	char path[1024];
	snprintf(path, sizeof path, "%s/cut-XXXXXX", tmpdir);
	int fd = mkstemp(path);
	struct mlx_err err;
	assert_int_equal(backend()->get(state, "objects/00/cut", fd, &err), MLX_ERR_IO);
	assert_non_null(strstr(err.msg, "cut short"));
	close(fd);
	unlink(path);
	backend()->close(state);
	conf_free(&c);
	peer_stop(&p);
}

/* What a server says decides the kind of failure: a 503 is worth a retry,
 * a redirect is not. */
static void test_server_statuses(void **unused)
{
	(void)unused;
	struct {
		const char *response;
		int code;
		const char *says;
	} cases[] = {
	    {"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusy", MLX_ERR_IO, "HTTP 503"},
	    {"HTTP/1.1 429 Too Many Requests\r\nContent-Length: 0\r\n\r\n", MLX_ERR_IO, "HTTP 429"},
	    {"HTTP/1.1 301 Moved Permanently\r\nLocation: https://elsewhere/\r\nContent-Length: 0\r\n\r\n",
	     MLX_ERR_INVALID, "redirects"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		struct peer p;
		peer_start(&p, cases[i].response);
		struct conf c;
		conf_at(&c, p.port);
		void *state = open_conf(&c);
		struct mlx_err err;
		uint64_t size;
		assert_int_equal(backend()->stat(state, "objects/00/x", &size, &err), cases[i].code);
		assert_non_null(strstr(err.msg, cases[i].says));
		backend()->close(state);
		conf_free(&c);
		peer_stop(&p);
	}
}

/* An upload that dies (mlx killed with SIGKILL in the middle of a PUT or a
 * multipart upload) leaves no visible key; one whose file shrinks under it
 * fails and leaves none either. */
/* Kills a child in the middle of putting a 2 GiB file as key through c's
 * remote, then checks that nothing shows under objects/. */
static void kill_upload(struct conf *c, const char *key)
{
	char big[1024];
	snprintf(big, sizeof big, "%s/big", tmpdir);
	int fd = open(big, O_CREAT | O_WRONLY | O_TRUNC, 0644);
	const uint64_t size = 2ull << 30; /* sparse: cheap to make, slow to send */
	assert_int_equal(ftruncate(fd, (off_t)size), 0);
	close(fd);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		void *state = open_conf(c);
		struct mlx_err err;
		backend()->put(state, key, big, size, &err);
		_exit(0);
	}
	struct timespec ts = {0, 400 * 1000 * 1000};
	nanosleep(&ts, NULL);
	int status;
	assert_int_equal(waitpid(pid, &status, WNOHANG), 0); /* still uploading */
	kill(pid, SIGKILL);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	unlink(big);
	void *state = open_conf(c);
	struct mlx_err err;
	uint64_t got;
	assert_int_equal(backend()->stat(state, key, &got, &err), MLX_ERR_NOTFOUND);
	struct seen s;
	list_ok(state, "objects/", &s);
	assert_int_equal(s.keys.len, 0);
	mlx_strlist_free(&s.keys);
	backend()->close(state);
}

static void test_interrupted_upload(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	if (is_s3) {
		conf_option(&c, "multipart_threshold", "8388608");
		conf_option(&c, "multipart_part_size", "5242880");
	}
	kill_upload(&c, "objects/kk/killed");
	if (is_s3) {
		/* s3rver writes a single PUT in place: publish=copy uploads
		 * under tmp/ and has the server copy it onto the key */
		conf_option(&c, "multipart_threshold", "4294967296");
		conf_option(&c, "publish", "copy");
		kill_upload(&c, "objects/kk/killed-put");
	}
	/* A file shorter than the size given: the upload fails and nothing
	 * shows, in each way of publishing. */
	char *f = write_file("short", 1000, 10);
	for (int way = 0; way < (is_s3 ? 2 : 1); way++) {
		if (way == 1) /* a multipart upload, which the backend aborts */
			conf_option(&c, "multipart_threshold", "500");
		void *state = open_conf(&c);
		struct mlx_err err;
		uint64_t got;
		assert_int_not_equal(backend()->put(state, "objects/kk/short", f, 2000, &err), 0);
		assert_non_null(strstr(err.msg, "cannot read the upload"));
		assert_int_equal(backend()->stat(state, "objects/kk/short", &got, &err), MLX_ERR_NOTFOUND);
		backend()->close(state);
	}
	free(f);
	conf_free(&c);
}

/* publish=copy: the object arrives through tmp/, and tmp/ is left empty. */
static void test_s3_publish_copy(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	conf_option(&c, "publish", "copy");
	void *state = open_conf(&c);
	char *f = write_file("copied", 70000, 14);
	put_ok(state, "objects/cc/copied", f);
	assert_get_equals(state, "objects/cc/copied", f);
	struct seen s;
	list_ok(state, "tmp/", &s);
	assert_int_equal(s.keys.len, 0);
	mlx_strlist_free(&s.keys);
	mlx_remote_s3.close(state);
	free(f);
	conf_free(&c);
	conf_server(&c, "origin");
	conf_option(&c, "publish", "rename");
	struct mlx_err err;
	assert_int_equal(mlx_remote_s3.open(&c.config, &state, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "publish"));
	conf_free(&c);
}

static void test_bad_config(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	conf_option(&c, "colour", "blue");
	struct mlx_err err;
	void *state = NULL;
	assert_int_equal(backend()->open(&c.config, &state, &err), MLX_ERR_INVALID);
	assert_null(state);
	assert_non_null(strstr(err.msg, "colour"));
	conf_free(&c);
	conf_server(&c, "origin");
	conf_option(&c, "timeout_ms", "soon");
	assert_int_equal(backend()->open(&c.config, &state, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "timeout_ms"));
	conf_free(&c);
	/* keys that climb out of the remote are refused before any request */
	conf_server(&c, "origin");
	state = open_conf(&c);
	uint64_t size;
	assert_int_equal(backend()->stat(state, "objects/../../etc/passwd", &size, &err), MLX_ERR_INVALID);
	assert_int_equal(backend()->stat(state, "/abs", &size, &err), MLX_ERR_INVALID);
	backend()->close(state);
	conf_free(&c);
	assert_int_equal(backend()->accepts(is_s3 ? "s3://b/p" : "https://h/p/"), 1);
	assert_int_equal(backend()->accepts("/srv/store"), 0);
}

/* ---- WebDAV only ----------------------------------------------------------- */

static void test_webdav_credentials(void **unused)
{
	(void)unused;
	const char *url = getenv("MLX_TEST_DAV_PRIVATE_URL");
	const char *password = getenv("MLX_TEST_DAV_PASSWORD");
	struct conf c = {0};
	c.config.name = "team";
	c.config.url = url;
	c.config.options = &c.options;
	conf_option(&c, "user", "mlx");
	conf_option(&c, "password", "wrong-secret-value");
	void *state = open_conf(&c);
	struct mlx_err err;
	uint64_t size;
	assert_int_equal(mlx_remote_webdav.stat(state, "objects/00/x", &size, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "user and password"));
	assert_null(strstr(err.msg, "wrong-secret-value"));
	assert_null(strstr(err.msg, password));
	mlx_remote_webdav.close(state);
	conf_free(&c);
	/* none at all: the message says where credentials go */
	memset(&c, 0, sizeof c);
	c.config.name = "team";
	c.config.url = url;
	c.config.options = &c.options;
	state = open_conf(&c);
	assert_int_equal(mlx_remote_webdav.stat(state, "objects/00/x", &size, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "config.local.lua"));
	mlx_remote_webdav.close(state);
	conf_free(&c);
	/* the right ones work, for every method */
	memset(&c, 0, sizeof c);
	c.config.name = "team";
	c.config.url = url;
	c.config.options = &c.options;
	conf_option(&c, "user", "mlx");
	conf_option(&c, "password", password);
	state = open_conf(&c);
	char *f = write_file("private", 4096, 11);
	put_ok(state, "objects/pp/file", f);
	assert_get_equals(state, "objects/pp/file", f);
	struct seen s;
	list_ok(state, "objects/", &s);
	assert_int_equal(s.keys.len, 1);
	mlx_strlist_free(&s.keys);
	assert_int_equal(mlx_remote_webdav.remove(state, "objects/pp/file", &err), 0);
	mlx_remote_webdav.close(state);
	free(f);
	conf_free(&c);
	/* credentials in the URL are refused, without echoing them */
	memset(&c, 0, sizeof c);
	c.config.name = "team";
	c.config.url = "http://mlx:hunter2@127.0.0.1:1/";
	c.config.options = &c.options;
	state = NULL;
	assert_int_equal(mlx_remote_webdav.open(&c.config, &state, &err), MLX_ERR_INVALID);
	assert_null(strstr(err.msg, "hunter2"));
	conf_free(&c);
}

/* The upload went through tmp/ and MOVE: nothing is left there. */
static void test_webdav_no_temp_left(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	void *state = open_conf(&c);
	char *f = write_file("moved", 100, 12);
	put_ok(state, "objects/mm/moved", f);
	struct seen s;
	list_ok(state, "tmp/", &s);
	assert_int_equal(s.keys.len, 0);
	mlx_strlist_free(&s.keys);
	mlx_remote_webdav.close(state);
	free(f);
	conf_free(&c);
}

/* ---- S3 only --------------------------------------------------------------- */

/* Above multipart_threshold, an object goes up in parts and comes back
 * whole. */
static void test_s3_multipart(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	conf_option(&c, "multipart_threshold", "6291456");
	conf_option(&c, "multipart_part_size", "5242880");
	void *state = open_conf(&c);
	char *f = write_file("multi", 12 * 1024 * 1024 + 5, 13); /* three parts */
	put_ok(state, "objects/mp/large", f);
	uint64_t size;
	struct mlx_err err;
	assert_int_equal(mlx_remote_s3.stat(state, "objects/mp/large", &size, &err), 0);
	assert_int_equal(size, 12 * 1024 * 1024 + 5);
	assert_get_equals(state, "objects/mp/large", f);
	mlx_remote_s3.close(state);
	free(f);
	conf_free(&c);
}

static void test_s3_config(void **unused)
{
	(void)unused;
	struct conf c;
	struct mlx_err err;
	void *state = NULL;
	/* no credentials anywhere: the message says where they go */
	memset(&c, 0, sizeof c);
	c.config.name = "cloud";
	c.config.url = "s3://bucket/prefix";
	c.config.options = &c.options;
	conf_option(&c, "endpoint", "http://127.0.0.1:1");
	char *home = getenv("HOME") ? strdup(getenv("HOME")) : NULL;
	setenv("HOME", tmpdir, 1);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	unsetenv("AWS_PROFILE");
	assert_int_equal(mlx_remote_s3.open(&c.config, &state, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "AWS_ACCESS_KEY_ID"));
	/* ~/.aws/credentials with AWS_PROFILE */
	char path[1024];
	snprintf(path, sizeof path, "%s/.aws", tmpdir);
	mkdir(path, 0700);
	snprintf(path, sizeof path, "%s/.aws/credentials", tmpdir);
	FILE *f = fopen(path, "w");
	fputs("[default]\naws_access_key_id = DEFAULTKEY\naws_secret_access_key = DEFAULTSECRET\n\n"
	      "[ci]\naws_access_key_id=CIKEY\naws_secret_access_key=CISECRET\n",
	      f);
	fclose(f);
	setenv("AWS_PROFILE", "ci", 1);
	assert_int_equal(mlx_remote_s3.open(&c.config, &state, &err), 0);
	mlx_remote_s3.close(state);
	setenv("AWS_PROFILE", "nosuch", 1);
	assert_int_equal(mlx_remote_s3.open(&c.config, &state, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "nosuch"));
	unsetenv("AWS_PROFILE");
	if (home)
		setenv("HOME", home, 1);
	free(home);
	conf_free(&c);
	/* a bucket name that is not one */
	memset(&c, 0, sizeof c);
	c.config.name = "cloud";
	c.config.url = "s3://Bad_Bucket/x";
	c.config.options = &c.options;
	conf_option(&c, "access_key_id", "AK");
	conf_option(&c, "secret_access_key", "SK");
	assert_int_equal(mlx_remote_s3.open(&c.config, &state, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "bucket"));
	conf_free(&c);
}

/* s3rver knows one access key id (it does not check SigV4 signatures:
 * tests/c/test_sigv4.c checks those against AWS's suite): an unknown one
 * is MLX_ERR_INVALID naming the credential to check, never a secret. */
static void test_s3_credentials(void **unused)
{
	(void)unused;
	struct conf c;
	struct seen s = {0};
	struct mlx_err err;
	memset(&c, 0, sizeof c);
	c.config.name = "cloud";
	c.config.url = "s3://mlx-test/creds";
	c.config.options = &c.options;
	conf_option(&c, "endpoint", getenv("MLX_TEST_S3_ENDPOINT"));
	conf_option(&c, "access_key_id", "NOSUCHKEYID");
	conf_option(&c, "secret_access_key", "wrong-secret-value");
	void *state = open_conf(&c);
	assert_int_equal(mlx_remote_s3.list(state, "objects/", collect, &s, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "access_key_id"));
	assert_null(strstr(err.msg, "wrong-secret-value"));
	/* a HEAD has no body to say why: the message names both */
	uint64_t size;
	assert_int_equal(mlx_remote_s3.stat(state, "objects/00/x", &size, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "access_key_id"));
	mlx_remote_s3.close(state);
	conf_free(&c);
	mlx_strlist_free(&s.keys);
}

/* S3's error codes pick the credential the message names. */
static void test_s3_error_codes(void **unused)
{
	(void)unused;
	struct {
		const char *code;
		int status;
		const char *says;
	} cases[] = {
	    {"SignatureDoesNotMatch", 403, "check secret_access_key"},
	    {"InvalidAccessKeyId", 403, "check access_key_id"},
	    {"ExpiredToken", 400, "HTTP 400"},
	    {"PermanentRedirect", 301, "set the option region"},
	    {"SlowDown", 503, "HTTP 503"},
	};
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		char body[300], response[600];
		snprintf(body, sizeof body,
		         "<?xml version=\"1.0\" "
		         "encoding=\"UTF-8\"?>\n<Error><Code>%s</Code><Message>m</Message></Error>",
		         cases[i].code);
		snprintf(response, sizeof response,
		         "HTTP/1.1 %d X\r\nContent-Type: application/xml\r\nContent-Length: %zu\r\n\r\n%s",
		         cases[i].status, strlen(body), body);
		struct peer p;
		peer_start(&p, response);
		struct conf c;
		conf_at(&c, p.port);
		void *state = open_conf(&c);
		struct seen s = {0};
		struct mlx_err err;
		int rc = mlx_remote_s3.list(state, "objects/", collect, &s, &err);
		assert_int_equal(rc, cases[i].status >= 500 ? MLX_ERR_IO : MLX_ERR_INVALID);
		if (!strstr(err.msg, cases[i].says))
			fail_msg("%s: %s", cases[i].code, err.msg);
		assert_null(strstr(err.msg, "SK")); /* the secret of conf_at */
		mlx_remote_s3.close(state);
		conf_free(&c);
		peer_stop(&p);
	}
}

/* A bucket that does not exist is a configuration error, not an empty
 * listing. */
static void test_s3_no_bucket(void **unused)
{
	(void)unused;
	struct conf c;
	conf_server(&c, "origin");
	snprintf(c.url, sizeof c.url, "s3://no-such-bucket-%d/p", (int)getpid());
	void *state = open_conf(&c);
	struct seen s = {0};
	struct mlx_err err;
	assert_int_equal(mlx_remote_s3.list(state, "objects/", collect, &s, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "bucket"));
	mlx_remote_s3.close(state);
	conf_free(&c);
}

int main(void)
{
	const char *kind = getenv("MLX_TEST_REMOTE_KIND");
	if (!kind || (strcmp(kind, "webdav") && strcmp(kind, "s3"))) {
		fprintf(stderr, "MLX_TEST_REMOTE_KIND must be webdav or s3\n");
		return 1;
	}
	is_s3 = strcmp(kind, "s3") == 0;
	if (!mkdtemp(tmpdir))
		return 1;
	const struct CMUnitTest common[] = {
	    cmocka_unit_test(test_put_get_stat),       cmocka_unit_test(test_overwrite_and_remove),
	    cmocka_unit_test(test_missing_key),        cmocka_unit_test(test_list_nested),
	    cmocka_unit_test(test_list_many),          cmocka_unit_test(test_list_stops),
	    cmocka_unit_test(test_server_down),        cmocka_unit_test(test_truncated_body),
	    cmocka_unit_test(test_interrupted_upload), cmocka_unit_test(test_bad_config),
	    cmocka_unit_test(test_server_statuses),
	};
	const struct CMUnitTest webdav[] = {
	    cmocka_unit_test(test_webdav_credentials),
	    cmocka_unit_test(test_webdav_no_temp_left),
	};
	const struct CMUnitTest s3[] = {
	    cmocka_unit_test(test_s3_multipart),   cmocka_unit_test(test_s3_publish_copy),
	    cmocka_unit_test(test_s3_config),      cmocka_unit_test(test_s3_credentials),
	    cmocka_unit_test(test_s3_error_codes), cmocka_unit_test(test_s3_no_bucket),
	};
	/* one group, so the TAP output has one plan */
	struct CMUnitTest tests[sizeof common / sizeof *common + sizeof s3 / sizeof *s3 + 2];
	size_t n = 0;
	for (size_t i = 0; i < sizeof common / sizeof *common; i++)
		tests[n++] = common[i];
	if (is_s3)
		for (size_t i = 0; i < sizeof s3 / sizeof *s3; i++)
			tests[n++] = s3[i];
	else
		for (size_t i = 0; i < sizeof webdav / sizeof *webdav; i++)
			tests[n++] = webdav[i];
	int failed = _cmocka_run_group_tests(kind, tests, n, NULL, NULL);
	char cmd[1200];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return failed ? 1 : 0;
}
