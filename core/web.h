/* web.h — a small HTTP server over libmicrohttpd for `mlx ui`, run from the
 * caller's thread.
 *
 * The server has no thread of its own: mlx_web_run waits for connections
 * and calls the handler for each complete request in the calling thread, so
 * the handler may use state that is not thread-safe (a Lua state). Only
 * GET and HEAD reach the handler; every other method is answered 405 here,
 * before any request body is read, since the server is read-only.
 *
 * Ownership: the caller owns the server (mlx_web_stop). A request and what
 * it points to are valid during the handler call only. The response the
 * handler fills is copied right after the handler returns, then done(arg)
 * is called: memory the response points to may be released there. */
#ifndef MLX_WEB_H
#define MLX_WEB_H

#include <stddef.h>

#include "err.h"

struct mlx_web_server;

struct mlx_web_request {
	const char *method;      /* "GET" or "HEAD" */
	const char *path;        /* percent-decoded by libmicrohttpd, without the query */
	const char *host;        /* the Host header, or NULL when absent */
	const char *const *args; /* query arguments: name, value, name, value… */
	size_t nargs;            /* number of pairs */
};

struct mlx_web_response {
	int status; /* HTTP status, e.g. 200 */
	const char *content_type;
	const char *body;
	size_t body_len;
	const char *const *headers; /* extra headers: name, value, name, value… */
	size_t nheaders;            /* number of pairs */
};

/* Fills resp for req. Returns 0, or a negative code when no response could
 * be made (the connection is then closed without one). What resp points to
 * must stay valid until done(arg) is called, right after it is copied. */
typedef int (*mlx_web_handler)(void *arg, const struct mlx_web_request *req, struct mlx_web_response *resp);
typedef void (*mlx_web_done)(void *arg);

/* Listens on host (a numeric IPv4 or IPv6 address, or a name that resolves
 * to one, e.g. "localhost") and port (0: any free port, see mlx_web_port).
 * Returns 0 and the server in *out, or MLX_ERR_INVALID for a host that does
 * not resolve, MLX_ERR_IO when the port cannot be bound (the message names
 * the address and says why), MLX_ERR_NOMEM. */
int mlx_web_start(struct mlx_web_server **out, const char *host, int port, mlx_web_handler handler,
                  mlx_web_done done, void *arg, struct mlx_err *err);

/* The port the server listens on. */
int mlx_web_port(const struct mlx_web_server *server);

/* Serves what arrives within timeout_ms (-1: until something arrives), then
 * returns 0; MLX_ERR_INTERRUPTED when a signal cut the wait short (EINTR),
 * MLX_ERR_IO when the server failed. */
int mlx_web_run(struct mlx_web_server *server, int timeout_ms, struct mlx_err *err);

/* Closes every connection and the listening socket; frees server. NULL is
 * allowed. */
void mlx_web_stop(struct mlx_web_server *server);

#endif
