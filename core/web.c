/* web.c — the HTTP server of `mlx ui` over libmicrohttpd (see web.h).
 *
 * libmicrohttpd runs without a thread of its own ("external" mode with
 * MHD_run_wait), so requests are answered one at a time in the caller's
 * thread: the UI is local and read-only, and its handler is Lua. */
#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* Query arguments kept per request; more are ignored (the API takes few). */
#define MAX_ARGS 32

struct mlx_web_server {
	struct MHD_Daemon *daemon;
	mlx_web_handler handler;
	mlx_web_done done;
	void *arg;
	int port;
};

struct args {
	const char *kv[2 * MAX_ARGS];
	size_t n;
};

static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	(void)kind;
	struct args *a = cls;
	if (a->n >= MAX_ARGS)
		return MHD_NO;
	a->kv[2 * a->n] = key;
	a->kv[2 * a->n + 1] = value ? value : "";
	a->n++;
	return MHD_YES;
}

static enum MHD_Result reply(struct MHD_Connection *conn, const struct mlx_web_response *r)
{
	struct MHD_Response *resp = MHD_create_response_from_buffer(
	    r->body_len, (void *)(r->body ? r->body : ""), MHD_RESPMEM_MUST_COPY);
	if (!resp)
		return MHD_NO;
	if (r->content_type)
		MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
	for (size_t i = 0; i < r->nheaders; i++)
		MHD_add_response_header(resp, r->headers[2 * i], r->headers[2 * i + 1]);
	enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **state)
{
	(void)version;
	(void)upload_data;
	struct mlx_web_server *s = cls;
	int readable = strcmp(method, MHD_HTTP_METHOD_GET) == 0 || strcmp(method, MHD_HTTP_METHOD_HEAD) == 0;
	if (!readable) {
		/* Answered before any body is read: nothing here writes. */
		static const char *const allow[] = {MHD_HTTP_HEADER_ALLOW, "GET, HEAD"};
		static const char body[] = "read-only: only GET and HEAD\n";
		struct mlx_web_response r = {MHD_HTTP_METHOD_NOT_ALLOWED,
		                             "text/plain; charset=utf-8",
		                             body,
		                             sizeof body - 1,
		                             allow,
		                             1};
		return reply(conn, &r);
	}
	/* The first call comes with the headers; answer on the second, when
	 * the (empty) body has been read, as libmicrohttpd expects. */
	static const char seen = 1;
	if (*state == NULL) {
		*state = (void *)&seen;
		return MHD_YES;
	}
	if (*upload_data_size != 0) {
		*upload_data_size = 0; /* a GET with a body: ignored */
		return MHD_YES;
	}
	struct args a = {.n = 0};
	MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, collect_arg, &a);
	struct mlx_web_request req = {
	    .method = method,
	    .path = url,
	    .host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST),
	    .args = a.kv,
	    .nargs = a.n,
	};
	struct mlx_web_response resp = {.status = 500};
	enum MHD_Result ret = MHD_NO;
	if (s->handler(s->arg, &req, &resp) == 0)
		ret = reply(conn, &resp);
	if (s->done)
		s->done(s->arg);
	return ret;
}

int mlx_web_start(struct mlx_web_server **out, const char *host, int port, mlx_web_handler handler,
                  mlx_web_done done, void *arg, struct mlx_err *err)
{
	*out = NULL;
	if (port < 0 || port > 65535)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "port %d is not between 0 and 65535", port);
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE};
	struct addrinfo *ai = NULL;
	int rc = getaddrinfo(host, NULL, &hints, &ai);
	if (rc != 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "cannot resolve host '%s': %s", host,
		                   gai_strerror(rc));
	struct sockaddr_storage addr;
	memset(&addr, 0, sizeof addr);
	memcpy(&addr, ai->ai_addr, ai->ai_addrlen);
	int family = ai->ai_family;
	freeaddrinfo(ai);
	if (family == AF_INET6)
		((struct sockaddr_in6 *)&addr)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)&addr)->sin_port = htons((uint16_t)port);

	struct mlx_web_server *s = calloc(1, sizeof *s);
	if (!s)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	s->handler = handler;
	s->done = done;
	s->arg = arg;
	unsigned flags = (family == AF_INET6 ? MHD_USE_IPv6 : 0);
	errno = 0;
	s->daemon = MHD_start_daemon(flags, (uint16_t)port, NULL, NULL, on_request, s, MHD_OPTION_SOCK_ADDR,
	                             (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)30,
	                             MHD_OPTION_CONNECTION_LIMIT, (unsigned)64, MHD_OPTION_END);
	if (!s->daemon) {
		int e = errno ? errno : EADDRINUSE;
		free(s);
		return mlx_err_sys(err, e, "cannot listen on %s port %d", host, port);
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(s->daemon, MHD_DAEMON_INFO_BIND_PORT);
	s->port = info && info->port ? info->port : port;
	*out = s;
	return MLX_OK;
}

int mlx_web_port(const struct mlx_web_server *server)
{
	return server->port;
}

int mlx_web_run(struct mlx_web_server *server, int timeout_ms, struct mlx_err *err)
{
	errno = 0;
	if (MHD_run_wait(server->daemon, timeout_ms) != MHD_YES) {
		if (errno == EINTR)
			return mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "interrupted");
		return mlx_err_sys(err, errno ? errno : EIO, "the web server failed");
	}
	return MLX_OK;
}

void mlx_web_stop(struct mlx_web_server *server)
{
	if (!server)
		return;
	MHD_stop_daemon(server->daemon);
	free(server);
}
