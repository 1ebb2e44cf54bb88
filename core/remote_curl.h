/* remote_curl.h — the HTTP exchanges of the WebDAV and S3 backends: one
 * libcurl easy handle per backend instance, reset between requests so its
 * connections, DNS cache and TLS sessions are reused.
 *
 * Not core/http.c: a backend reads request bodies from a byte range of an
 * open file (S3 multipart parts), writes response bodies into a caller's
 * fd, and needs the response's ETag and Content-Length; http.c streams
 * whole files by path. Retries are the caller's (core/remote.c).
 *
 * Messages name the remote and the key, never a URL with credentials, an
 * Authorization header, a password or a signature. */
#ifndef MLX_REMOTE_CURL_H
#define MLX_REMOTE_CURL_H

#include <curl/curl.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"
#include "remote.h"

/* One connection to a server, as an instance of a backend holds it. */
struct mlx_remote_curl {
	CURL *easy;
	const char *remote; /* the remote's name, for messages */
	char *ca_file;      /* or NULL for the system's */
	bool insecure;
	long timeout_ms; /* connect and stall limit */
	const atomic_int *cancel; /* config.cancel: stops uploads and downloads of files */
	char errbuf[CURL_ERROR_SIZE];
};

/* One request and what came back. Fill the request fields, perform, read
 * the response fields, then mlx_remote_exchange_free. */
struct mlx_remote_exchange {
	const char *method; /* "GET", "HEAD", "PUT", "PROPFIND", … */
	const char *url;
	struct curl_slist *headers; /* "Name: value" lines, or NULL */
	const char *body;           /* request body from memory, or NULL */
	size_t body_len;
	int body_fd;                     /* or the request body from this file (-1: none) */
	uint64_t body_offset, body_size; /* …its byte range */
	int out_fd;                      /* a 2xx body goes here; -1: into resp */

	long status; /* 0 until a response arrived */
	char *resp;  /* a body not written to out_fd, NUL-terminated */
	size_t resp_len;
	uint64_t written;       /* bytes written to out_fd */
	int64_t content_length; /* of the final response; -1 if absent */
	char etag[128];         /* the ETag header, quotes included, or "" */
};

/* Reads the options every HTTP backend takes (ca_file, insecure,
 * timeout_ms) and creates the handle. Returns 0, MLX_ERR_INVALID for a bad
 * value (naming the option), or MLX_ERR_NOMEM / MLX_ERR_IO. */
int mlx_remote_curl_open(struct mlx_remote_curl *c, const struct mlx_remote_config *config,
                         struct mlx_err *err);

/* Closes the handle and its connections. A zeroed c is fine. */
void mlx_remote_curl_close(struct mlx_remote_curl *c);

/* Performs one exchange. Returns 0 when a complete response arrived,
 * whatever its status; MLX_ERR_INTERRUPTED when c->cancel was raised
 * during an exchange whose body is in a file (body_fd or out_fd: the long
 * ones; others run to their end, as the cleanup after a cancel must);
 * MLX_ERR_IO when the transport failed or a 2xx body was shorter than its
 * Content-Length (what names the request in the message); MLX_ERR_INVALID
 * for a URL libcurl refuses; MLX_ERR_IO naming the fd when writing out_fd
 * failed. */
int mlx_remote_curl_perform(struct mlx_remote_curl *c, struct mlx_remote_exchange *x, const char *what,
                            struct mlx_err *err);

/* Turns a non-2xx status into the interface's failure: a redirect is
 * MLX_ERR_INVALID (the remote's URL should be the target); 404 and 410 are
 * MLX_ERR_NOTFOUND; 401 and 403 MLX_ERR_INVALID with credential_hint
 * ("check the options user and password"); 408, 429 and 5xx MLX_ERR_IO;
 * anything else MLX_ERR_INVALID. detail (may be NULL) is the server's
 * reason, e.g. an S3 error code. Returns the code. */
int mlx_remote_curl_status(const struct mlx_remote_curl *c, const struct mlx_remote_exchange *x,
                           const char *what, const char *detail, const char *credential_hint,
                           struct mlx_err *err);

/* Frees what perform allocated in x and clears the response fields. */
void mlx_remote_exchange_free(struct mlx_remote_exchange *x);

/* Returns true when key is a key a remote may hold: relative, made of
 * non-empty segments other than "." and "..", without control characters;
 * with dir, a trailing '/' (a prefix) is allowed. Keys from listings are
 * untrusted: one that is not valid is skipped. */
bool mlx_remote_key_valid(const char *key, bool dir);

/* Writes to buf (size n) the environment variable that gives option of
 * the remote named remote: "MLX_REMOTE_<REMOTE>_<OPTION>", in capitals
 * with '-' as '_' — the rule of stdlib/mlx/remote/config.lua, which reads
 * it; credential hints name it. */
void mlx_remote_env_name(char *buf, size_t n, const char *remote, const char *option);

/* The value of option name in config (the last, if it is given twice),
 * or NULL. */
const char *mlx_remote_option(const struct mlx_remote_config *config, const char *name);

/* Checks that config names only options in allowed (NULL-terminated).
 * Returns 0, or MLX_ERR_INVALID naming the first unknown option and the
 * backend. */
int mlx_remote_options_check(const struct mlx_remote_config *config, const char *backend,
                             const char *const *allowed, struct mlx_err *err);

/* Parses a non-negative integer option (absent: *out = def). Returns 0 or
 * MLX_ERR_INVALID naming the option. */
int mlx_remote_option_u64(const struct mlx_remote_config *config, const char *name, uint64_t def,
                          uint64_t *out, struct mlx_err *err);

/* Parses a boolean option: "true"/"false"/"1"/"0"/"yes"/"no" (absent:
 * *out = def). Returns 0 or MLX_ERR_INVALID naming the option. */
int mlx_remote_option_bool(const struct mlx_remote_config *config, const char *name, bool def, bool *out,
                           struct mlx_err *err);

#endif
