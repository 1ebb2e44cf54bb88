/* http.h — one HTTP exchange over libcurl, with bodies streamed from and to
 * files.
 *
 * A client holds one curl handle, so successive requests reuse its
 * connections, DNS cache and TLS sessions (one connection per host, kept
 * alive). mlx_http_perform does exactly one attempt: retries, backoff and
 * what counts as success are the caller's policy (stdlib/mlx/http.lua).
 *
 * Messages never contain request headers (which may carry tokens) nor the
 * URL: the caller names the request, having removed any password in it.
 *
 * Ownership: the caller owns the client (mlx_http_client_free) and the
 * request (nothing in it is kept after perform returns). The response owns
 * what it points to; mlx_http_response_free releases it. */
#ifndef MLX_HTTP_H
#define MLX_HTTP_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "fs.h"

struct mlx_http_client;

/* Why an attempt failed before a complete response arrived. Each has a
 * short name (mlx_http_failure_name) that Lua code matches on. */
enum mlx_http_failure {
	MLX_HTTP_OK,
	MLX_HTTP_DNS,		/* "dns": the host (or proxy) name does not resolve */
	MLX_HTTP_REFUSED,	/* "refused": nothing listens on the port */
	MLX_HTTP_CONNECT,	/* "connect": no route, unreachable, … */
	MLX_HTTP_TLS,		/* "tls": handshake or certificate verification failed */
	MLX_HTTP_TIMEOUT,	/* "timeout": connect_timeout or timeout elapsed */
	MLX_HTTP_CONNECTION,	/* "connection": the peer closed or broke the exchange */
	MLX_HTTP_REDIRECTS,	/* "redirects": more than max_redirects */
	MLX_HTTP_URL,		/* "invalid": malformed URL or unsupported scheme */
	MLX_HTTP_FILE,		/* "io"/"notfound": body_file or out_file failed */
	MLX_HTTP_DIGEST,	/* "corrupt": the download does not match sha256 */
	MLX_HTTP_INTERRUPTED,	/* "interrupted": the cancel callback said stop */
	MLX_HTTP_OTHER,		/* "http": anything else libcurl reports */
};

struct mlx_http_request {
	const char *method;	/* "GET", "POST", …; required */
	const char *url;	/* required; http:// or https:// only */
	const char *const *headers; /* "Name: value" lines; NULL if none */
	size_t nheaders;
	const char *body;	/* sent as is, or NULL */
	size_t body_len;
	const char *body_file;	/* streamed from this regular file, or NULL */
	const char *out_file;	/* 2xx body streamed here (temp file, then rename), or NULL */
	const char *sha256;	/* with out_file: required digest (64 hex), or NULL */
	const char *user_agent; /* or NULL for none */
	const char *ca_file;	/* CA bundle instead of the system one, or NULL */
	long timeout_ms;	/* whole exchange; 0 = no limit */
	long connect_timeout_ms; /* 0 = libcurl's default (300 s) */
	long max_redirects;	/* redirects followed; 0 = none */
	int insecure;		/* non-zero: do not verify the TLS peer (curl -k) */
	/* Polled during the exchange (at least once a second); a non-zero
	 * return aborts it with MLX_HTTP_INTERRUPTED. May be NULL. */
	int (*cancelled)(void *arg);
	void *cancel_arg;
};

struct mlx_http_response {
	long status;		/* e.g. 200; 0 if no response arrived */
	char *reason;		/* status line text after the code ("Not Found"); may be "" */
	struct mlx_strlist headers; /* the final response's: name (lowercase), value, … */
	char *body;		/* NUL-terminated; NULL when written to out_file */
	size_t body_len;
	char *url;		/* the URL of the final response, after redirects */
	double time;		/* seconds the exchange took */
	uint64_t size;		/* body bytes received (in memory or in out_file) */
	char sha256[65];	/* with out_file and a 2xx status: the file's digest */
	enum mlx_http_failure failure; /* why perform failed; MLX_HTTP_OK otherwise */
};

/* Creates a client. Returns 0, or MLX_ERR_NOMEM / MLX_ERR_IO if libcurl
 * cannot be set up. */
int mlx_http_client_new(struct mlx_http_client **out, struct mlx_err *err);

/* Closes the client's connections and frees it. NULL is fine. */
void mlx_http_client_free(struct mlx_http_client *client);

/* Performs one exchange and fills resp (which perform clears first; free it
 * with mlx_http_response_free whatever the result).
 *
 * Returns 0 when a complete response arrived, whatever its status; a non-2xx
 * response to a request with out_file leaves out_file untouched and keeps
 * the body in memory (it is the server's explanation).
 * Otherwise returns a negative status with resp->failure saying why:
 * MLX_ERR_IO for transport failures, MLX_ERR_INVALID for a bad URL,
 * MLX_ERR_NOTFOUND / MLX_ERR_IO for body_file and out_file problems,
 * MLX_ERR_CORRUPT for a digest mismatch (out_file then untouched),
 * MLX_ERR_INTERRUPTED when cancelled. Nothing is left behind beside
 * out_file in any case. */
int mlx_http_perform(struct mlx_http_client *client, const struct mlx_http_request *req,
		     struct mlx_http_response *resp, struct mlx_err *err);

/* Frees what resp points to and clears it. */
void mlx_http_response_free(struct mlx_http_response *resp);

/* The short name of a failure: "dns", "refused", "connect", "tls", "timeout",
 * "connection", "redirects", "invalid", "io", "corrupt", "interrupted",
 * "http"; "ok" for MLX_HTTP_OK. */
const char *mlx_http_failure_name(enum mlx_http_failure failure);

/* Parses an HTTP date (as in Retry-After or Date) into seconds since the
 * epoch. Returns 0, or MLX_ERR_INVALID if it is not a date. */
int mlx_http_parse_date(const char *text, int64_t *seconds, struct mlx_err *err);

/* libcurl's version, e.g. "7.88.1". */
const char *mlx_http_version(void);

#endif
