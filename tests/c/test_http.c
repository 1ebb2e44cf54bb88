/* test_http.c — core/http.c against a real peer: a small HTTP/1.1 server on
 * 127.0.0.1 in a thread of this test, answering with canned responses. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "http.h"

/* ---- the peer --------------------------------------------------------- */

struct peer {
	int listen_fd;
	int port;
	const char *response;	/* sent for every request; NULL: never answer */
	int connections;	/* accepted before the thread ends */
	int accepted;
	int requests;
	char *request;		/* the last request, head and body */
	size_t request_len;
	pthread_t thread;
};

/* Reads one request (head and Content-Length body) into p->request, which
 * is NUL-terminated. Returns false at end of stream. */
static bool read_request(struct peer *p, int fd)
{
	size_t cap = 1 << 16, len = 0, want = 0;
	char *buf = malloc(cap);
	for (;;) {
		if (len + 1 >= cap)
			buf = realloc(buf, cap *= 2);
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n <= 0) {
			free(buf);
			return false;
		}
		len += (size_t)n;
		buf[len] = '\0'; /* for the string searches here and in the tests */
		char *end = memmem(buf, len, "\r\n\r\n", 4);
		if (end && want == 0) {
			size_t head = (size_t)(end - buf) + 4;
			const char *cl = strcasestr(buf, "\r\ncontent-length:");
			want = head + (cl && cl < end ? strtoul(cl + 17, NULL, 10) : 0);
		}
		if (want && len >= want)
			break;
	}
	free(p->request);
	p->request = buf;
	p->request_len = len;
	return true;
}

static void *serve(void *arg)
{
	struct peer *p = arg;
	for (int c = 0; c < p->connections; c++) {
		int fd = accept(p->listen_fd, NULL, NULL);
		if (fd < 0)
			break;
		p->accepted++;
		while (read_request(p, fd)) {
			p->requests++;
			if (!p->response) {
				char sink[4096];
				while (read(fd, sink, sizeof sink) > 0) /* until the client gives up */
					;
				break;
			}
			if (write(fd, p->response, strlen(p->response)) < 0)
				break;
		}
		close(fd);
	}
	return NULL;
}

static void peer_start(struct peer *p, const char *response, int connections)
{
	memset(p, 0, sizeof *p);
	p->response = response;
	p->connections = connections;
	p->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
	assert_true(p->listen_fd >= 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	assert_int_equal(bind(p->listen_fd, (struct sockaddr *)&addr, sizeof addr), 0);
	assert_int_equal(listen(p->listen_fd, 8), 0);
	assert_int_equal(getsockname(p->listen_fd, (struct sockaddr *)&addr, &len), 0);
	p->port = ntohs(addr.sin_port);
	assert_int_equal(pthread_create(&p->thread, NULL, serve, p), 0);
}

/* Waits for the peer to finish; p->request stays for the test to inspect
 * (and free). */
static void peer_stop(struct peer *p)
{
	shutdown(p->listen_fd, SHUT_RDWR); /* ends a pending accept */
	pthread_join(p->thread, NULL);
	close(p->listen_fd);
}

/* ---- fixtures --------------------------------------------------------- */

struct fixture {
	char dir[64];
	char url[128];
	struct mlx_http_client *client;
	struct mlx_http_response resp;
	struct mlx_err err;
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/mlx-test-http-XXXXXX");
	if (!mkdtemp(f->dir) || mlx_http_client_new(&f->client, &f->err) != MLX_OK)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	mlx_http_response_free(&f->resp);
	mlx_http_client_free(f->client);
	free(f);
	return rc == 0 ? 0 : -1;
}

static struct mlx_http_request get(struct fixture *f, const struct peer *p, const char *path)
{
	snprintf(f->url, sizeof f->url, "http://127.0.0.1:%d%s", p->port, path);
	return (struct mlx_http_request){.method = "GET", .url = f->url, .connect_timeout_ms = 5000,
					 .timeout_ms = 10000};
}

static size_t count_entries(const char *dir)
{
	struct mlx_strlist names = {0};
	assert_int_equal(mlx_fs_list(dir, &names, NULL), MLX_OK);
	size_t n = names.len;
	mlx_strlist_free(&names);
	return n;
}

static void read_file(const char *path, char *buf, size_t cap)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	size_t n = fread(buf, 1, cap - 1, fp);
	buf[n] = '\0';
	fclose(fp);
}

/* Closes the client's kept-alive connection so that the peer ends, then
 * gives the fixture a fresh client. */
static void finish(struct fixture *f, struct peer *p)
{
	mlx_http_response_free(&f->resp);
	mlx_http_client_free(f->client);
	f->client = NULL;
	peer_stop(p);
	assert_int_equal(mlx_http_client_new(&f->client, &f->err), MLX_OK);
}

#define HELLO_SHA256 "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"

/* ---- tests ------------------------------------------------------------ */

static void response_has_status_reason_headers_and_body(void **state)
{
	struct fixture *f = *state;
	struct peer p;
	peer_start(&p, "HTTP/1.1 404 Not Found\r\nContent-Length: 5\r\nX-Thing: a\r\n"
		       "x-thing:  b \r\n\r\nnope!", 1);
	struct mlx_http_request req = get(f, &p, "/x");
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_OK);
	assert_int_equal(f->resp.status, 404);
	assert_string_equal(f->resp.reason, "Not Found");
	assert_string_equal(f->resp.body, "nope!");
	assert_int_equal(f->resp.body_len, 5);
	assert_string_equal(f->resp.url, f->url);
	/* content-length, x-thing, x-thing: names lowercase, values trimmed */
	assert_int_equal(f->resp.headers.len, 6);
	assert_string_equal(f->resp.headers.items[2], "x-thing");
	assert_string_equal(f->resp.headers.items[3], "a");
	assert_string_equal(f->resp.headers.items[5], "b");
	finish(f, &p);
	assert_non_null(strstr(p.request, "GET /x HTTP/1.1\r\n"));
	free(p.request);
}

static void requests_reuse_one_connection(void **state)
{
	struct fixture *f = *state;
	struct peer p;
	peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 1);
	for (int i = 0; i < 3; i++) {
		struct mlx_http_request req = get(f, &p, "/again");
		assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_OK);
		assert_string_equal(f->resp.body, "ok");
		mlx_http_response_free(&f->resp);
	}
	finish(f, &p);
	free(p.request);
	assert_int_equal(p.accepted, 1);
	assert_int_equal(p.requests, 3);
}

static void download_goes_to_temp_then_renamed(void **state)
{
	struct fixture *f = *state;
	struct peer p;
	peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello", 1);
	char out[128], text[64];
	snprintf(out, sizeof out, "%s/model.bin", f->dir);
	struct mlx_http_request req = get(f, &p, "/model.bin");
	req.out_file = out;
	req.sha256 = HELLO_SHA256;
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_OK);
	assert_null(f->resp.body);
	assert_string_equal(f->resp.sha256, HELLO_SHA256);
	assert_int_equal(f->resp.size, 5);
	read_file(out, text, sizeof text);
	assert_string_equal(text, "hello");
	assert_int_equal(count_entries(f->dir), 1);
	struct stat st;
	assert_int_equal(stat(out, &st), 0);
	mode_t mask = umask(0);
	umask(mask);
	assert_int_equal(st.st_mode & 0777, 0666 & ~mask);
	finish(f, &p);
	free(p.request);
}

static void digest_mismatch_leaves_out_file_untouched(void **state)
{
	struct fixture *f = *state;
	struct peer p;
	peer_start(&p, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhellx", 1);
	char out[128], text[64];
	snprintf(out, sizeof out, "%s/model.bin", f->dir);
	FILE *fp = fopen(out, "w");
	fputs("old", fp);
	fclose(fp);
	struct mlx_http_request req = get(f, &p, "/model.bin");
	req.out_file = out;
	req.sha256 = HELLO_SHA256;
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_ERR_CORRUPT);
	assert_int_equal(f->resp.failure, MLX_HTTP_DIGEST);
	assert_non_null(strstr(f->err.msg, "expected " HELLO_SHA256 ", got "));
	read_file(out, text, sizeof text);
	assert_string_equal(text, "old");
	assert_int_equal(count_entries(f->dir), 1); /* no temp file left */
	finish(f, &p);
	free(p.request);
}

static void error_status_keeps_body_in_memory_not_in_out_file(void **state)
{
	struct fixture *f = *state;
	struct peer p;
	peer_start(&p, "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\nRetry-After: 3\r\n\r\nbusy", 1);
	char out[128];
	snprintf(out, sizeof out, "%s/model.bin", f->dir);
	struct mlx_http_request req = get(f, &p, "/model.bin");
	req.out_file = out;
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_OK);
	assert_int_equal(f->resp.status, 503);
	assert_string_equal(f->resp.body, "busy");
	assert_int_equal(count_entries(f->dir), 0);
	finish(f, &p);
	free(p.request);
}

static void upload_streams_body_file_with_its_length(void **state)
{
	struct fixture *f = *state;
	struct peer p;
	peer_start(&p, "HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n", 1);
	char in[128];
	snprintf(in, sizeof in, "%s/upload.bin", f->dir);
	size_t size = 3 * 1024 * 1024 + 7;
	char *data = malloc(size);
	for (size_t i = 0; i < size; i++)
		data[i] = (char)(i * 31 % 251);
	FILE *fp = fopen(in, "wb");
	assert_int_equal(fwrite(data, 1, size, fp), size);
	fclose(fp);
	struct mlx_http_request req = get(f, &p, "/up");
	req.method = "PUT";
	req.body_file = in;
	const char *headers[] = {"Authorization: Bearer t0k3n"};
	req.headers = headers;
	req.nheaders = 1;
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_OK);
	assert_int_equal(f->resp.status, 201);
	assert_string_equal(f->resp.body, "");
	finish(f, &p);
	assert_non_null(strstr(p.request, "PUT /up HTTP/1.1\r\n"));
	assert_non_null(strstr(p.request, "\r\nContent-Length: 3145735\r\n"));
	assert_non_null(strstr(p.request, "\r\nAuthorization: Bearer t0k3n\r\n"));
	assert_null(strstr(p.request, "Expect:"));
	char *body = strstr(p.request, "\r\n\r\n") + 4;
	assert_int_equal(p.request_len - (size_t)(body - p.request), size);
	assert_memory_equal(body, data, size);
	free(data);
	free(p.request);
}

static void missing_body_file_is_notfound(void **state)
{
	struct fixture *f = *state;
	struct mlx_http_request req = {.method = "PUT", .url = "http://127.0.0.1:1/", .body_file = "/nonexistent/x"};
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_ERR_NOTFOUND);
	assert_int_equal(f->resp.failure, MLX_HTTP_FILE);
	assert_string_equal(f->err.msg, "cannot open /nonexistent/x: No such file or directory");
}

static void refused_connection_is_its_own_failure(void **state)
{
	struct fixture *f = *state;
	/* A port bound but not listening refuses connections. */
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in addr = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof addr;
	assert_int_equal(bind(fd, (struct sockaddr *)&addr, sizeof addr), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&addr, &len), 0);
	struct peer p = {.port = ntohs(addr.sin_port)};
	struct mlx_http_request req = get(f, &p, "/");
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_ERR_IO);
	close(fd);
	assert_int_equal(f->resp.failure, MLX_HTTP_REFUSED);
	assert_string_equal(mlx_http_failure_name(f->resp.failure), "refused");
	assert_string_equal(f->err.msg, "connection refused");
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void silent_server_times_out(void **state)
{
	struct fixture *f = *state;
	struct peer p;
	peer_start(&p, NULL, 1);
	struct mlx_http_request req = get(f, &p, "/slow");
	req.timeout_ms = 200;
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_ERR_IO);
	assert_true(seconds_since(&t0) < 2);
	assert_int_equal(f->resp.failure, MLX_HTTP_TIMEOUT);
	assert_string_equal(f->err.msg, "timed out: no complete response within 0.2 s");
	peer_stop(&p);
	free(p.request);
}

static int cancel_after_a_few_polls(void *arg)
{
	return ++*(int *)arg > 3;
}

static void cancel_callback_interrupts(void **state)
{
	struct fixture *f = *state;
	struct peer p;
	peer_start(&p, NULL, 1);
	int polls = 0;
	struct mlx_http_request req = get(f, &p, "/slow");
	req.cancelled = cancel_after_a_few_polls;
	req.cancel_arg = &polls;
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_ERR_INTERRUPTED);
	assert_int_equal(f->resp.failure, MLX_HTTP_INTERRUPTED);
	assert_int_equal(polls, 4);
	finish(f, &p);
	free(p.request);
}

static void bad_url_is_invalid(void **state)
{
	struct fixture *f = *state;
	struct mlx_http_request req = {.method = "GET", .url = "file:///etc/passwd"};
	assert_int_equal(mlx_http_perform(f->client, &req, &f->resp, &f->err), MLX_ERR_INVALID);
	assert_int_equal(f->resp.failure, MLX_HTTP_URL);
}

static void http_dates_parse(void **state)
{
	(void)state;
	int64_t t = 0;
	assert_int_equal(mlx_http_parse_date("Wed, 21 Oct 2015 07:28:00 GMT", &t, NULL), MLX_OK);
	assert_int_equal(t, 1445412480);
	assert_int_equal(mlx_http_parse_date("soon", &t, NULL), MLX_ERR_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(response_has_status_reason_headers_and_body, setup, teardown),
		cmocka_unit_test_setup_teardown(requests_reuse_one_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(download_goes_to_temp_then_renamed, setup, teardown),
		cmocka_unit_test_setup_teardown(digest_mismatch_leaves_out_file_untouched, setup, teardown),
		cmocka_unit_test_setup_teardown(error_status_keeps_body_in_memory_not_in_out_file, setup, teardown),
		cmocka_unit_test_setup_teardown(upload_streams_body_file_with_its_length, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_body_file_is_notfound, setup, teardown),
		cmocka_unit_test_setup_teardown(refused_connection_is_its_own_failure, setup, teardown),
		cmocka_unit_test_setup_teardown(silent_server_times_out, setup, teardown),
		cmocka_unit_test_setup_teardown(cancel_callback_interrupts, setup, teardown),
		cmocka_unit_test_setup_teardown(bad_url_is_invalid, setup, teardown),
		cmocka_unit_test(http_dates_parse),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
