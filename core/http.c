/* http.c — one HTTP exchange over a reused libcurl handle. */
#include "http.h"
#include "fs.h"
#include "hash.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

struct mlx_http_client {
	CURL *easy;
};

/* The state of one exchange, shared by the libcurl callbacks. */
struct exchange {
	const struct mlx_http_request *req;
	struct mlx_http_response *resp;
	struct mlx_err *err;
	int status;		/* set by a callback that made curl abort */
	size_t body_cap;
	int upload_fd;		/* body_file, or -1 */
	int out_fd;		/* temp file beside out_file, or -1 */
	bool to_file;		/* the current response's body goes to out_fd */
	bool body_started;	/* the first body byte of this response arrived */
	char tmp[PATH_MAX];
	struct mlx_hash_stream sha256; /* of the body written to out_fd */
};

const char *mlx_http_version(void)
{
	return curl_version_info(CURLVERSION_NOW)->version;
}

const char *mlx_http_failure_name(enum mlx_http_failure failure)
{
	switch (failure) {
	case MLX_HTTP_OK: return "ok";
	case MLX_HTTP_DNS: return "dns";
	case MLX_HTTP_REFUSED: return "refused";
	case MLX_HTTP_CONNECT: return "connect";
	case MLX_HTTP_TLS: return "tls";
	case MLX_HTTP_TIMEOUT: return "timeout";
	case MLX_HTTP_CONNECTION: return "connection";
	case MLX_HTTP_REDIRECTS: return "redirects";
	case MLX_HTTP_URL: return "invalid";
	case MLX_HTTP_FILE: return "io";
	case MLX_HTTP_DIGEST: return "corrupt";
	case MLX_HTTP_INTERRUPTED: return "interrupted";
	default: return "http";
	}
}

int mlx_http_client_new(struct mlx_http_client **out, struct mlx_err *err)
{
	*out = NULL;
	/* Idempotent and thread-safe since libcurl 7.84; each client calls it
	 * once, and curl_global_cleanup is never called, as it would have to
	 * be matched across every user of libcurl in the process. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return mlx_err_set(err, MLX_ERR_IO, 0, "cannot initialise libcurl");
	struct mlx_http_client *client = calloc(1, sizeof *client);
	if (!client)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	client->easy = curl_easy_init();
	if (!client->easy) {
		free(client);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "cannot create a libcurl handle");
	}
	*out = client;
	return MLX_OK;
}

void mlx_http_client_free(struct mlx_http_client *client)
{
	if (!client)
		return;
	curl_easy_cleanup(client->easy);
	free(client);
}

void mlx_http_response_free(struct mlx_http_response *resp)
{
	free(resp->reason);
	free(resp->body);
	free(resp->url);
	mlx_strlist_free(&resp->headers);
	memset(resp, 0, sizeof *resp);
}

int mlx_http_parse_date(const char *text, int64_t *seconds, struct mlx_err *err)
{
	time_t t = curl_getdate(text, NULL);
	if (t == (time_t)-1)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "not an HTTP date: %s", text);
	*seconds = (int64_t)t;
	return MLX_OK;
}

/* ---- callbacks -------------------------------------------------------- */

static int fail_in_callback(struct exchange *x, int status)
{
	x->status = status;
	return status;
}

/* A status line starts a new response (after a redirect or a 100 Continue):
 * only the final response's headers are kept. */
static int start_response(struct exchange *x, const char *line, size_t len)
{
	struct mlx_http_response *resp = x->resp;
	mlx_strlist_free(&resp->headers);
	free(resp->reason);
	resp->reason = NULL;
	const char *p = memchr(line, ' ', len);
	long status = 0;
	const char *reason = "";
	size_t reason_len = 0;
	if (p) {
		p++;
		while (p < line + len && *p >= '0' && *p <= '9')
			status = status * 10 + (*p++ - '0');
		if (p < line + len && *p == ' ')
			p++;
		reason = p;
		reason_len = (size_t)(line + len - p);
	}
	resp->status = status;
	resp->reason = strndup(reason, reason_len);
	x->body_started = false;
	if (!resp->reason)
		return fail_in_callback(x, mlx_err_set(x->err, MLX_ERR_NOMEM, ENOMEM, "out of memory"));
	return MLX_OK;
}

static size_t on_header(char *data, size_t size, size_t nitems, void *arg)
{
	struct exchange *x = arg;
	size_t len = size * nitems, total = len;
	while (len > 0 && (data[len - 1] == '\r' || data[len - 1] == '\n'))
		len--;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0)
		return start_response(x, data, len) == MLX_OK ? total : 0;
	const char *colon = memchr(data, ':', len);
	if (len == 0 || !colon || data[0] == ' ' || data[0] == '\t')
		return total; /* the blank line, a folded line, or noise */
	char name[256];
	size_t name_len = (size_t)(colon - data);
	if (name_len == 0 || name_len >= sizeof name)
		return total;
	for (size_t i = 0; i < name_len; i++)
		name[i] = (char)((data[i] >= 'A' && data[i] <= 'Z') ? data[i] + 32 : data[i]);
	name[name_len] = '\0';
	const char *v = colon + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	char *value = strndup(v, (size_t)(end - v));
	int rc = value ? mlx_strlist_push(&x->resp->headers, name, x->err) : MLX_ERR_NOMEM;
	if (rc == MLX_OK)
		rc = mlx_strlist_push(&x->resp->headers, value, x->err);
	free(value);
	if (rc != MLX_OK) {
		fail_in_callback(x, mlx_err_set(x->err, MLX_ERR_NOMEM, ENOMEM, "out of memory"));
		return 0;
	}
	return total;
}

static int open_temp(struct exchange *x)
{
	const char *path = x->req->out_file;
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	int dirlen = slash ? (int)(slash - path + 1) : 0;
	if (snprintf(x->tmp, sizeof x->tmp, "%.*s.%s.tmp-XXXXXX", dirlen, path, base) >= (int)sizeof x->tmp)
		return fail_in_callback(x, mlx_err_set(x->err, MLX_ERR_INVALID, 0, "path too long: %s", path));
	x->out_fd = mkstemp(x->tmp);
	if (x->out_fd < 0) {
		x->tmp[0] = '\0';
		return fail_in_callback(x, mlx_err_sys(x->err, errno, "cannot write %s", path));
	}
	int rc = mlx_hash_stream_start(&x->sha256, x->err);
	return rc == MLX_OK ? MLX_OK : fail_in_callback(x, rc);
}

/* The first body byte of a response decides where the body goes: a 2xx
 * body to out_file, anything else (an error page) to memory. */
static int start_body(struct exchange *x)
{
	x->body_started = true;
	long status = x->resp->status;
	x->to_file = x->req->out_file && status >= 200 && status < 300;
	if (x->to_file && x->out_fd < 0)
		return open_temp(x);
	return MLX_OK;
}

static size_t on_body(char *data, size_t size, size_t nitems, void *arg)
{
	struct exchange *x = arg;
	struct mlx_http_response *resp = x->resp;
	size_t len = size * nitems;
	if (!x->body_started && start_body(x) != MLX_OK)
		return 0;
	if (x->to_file) {
		if (mlx_fs_write_all(x->out_fd, data, len) != 0) {
			fail_in_callback(x, mlx_err_sys(x->err, errno, "cannot write %s", x->req->out_file));
			return 0;
		}
		int rc = mlx_hash_stream_update(&x->sha256, data, len, x->err);
		if (rc != MLX_OK) {
			fail_in_callback(x, rc);
			return 0;
		}
	} else {
		if (resp->body_len + len + 1 > x->body_cap) {
			size_t cap = x->body_cap ? x->body_cap : 16384;
			while (cap < resp->body_len + len + 1)
				cap *= 2;
			char *body = realloc(resp->body, cap);
			if (!body) {
				fail_in_callback(x, mlx_err_set(x->err, MLX_ERR_NOMEM, ENOMEM,
								"out of memory for a %zu-byte response", resp->body_len + len));
				return 0;
			}
			resp->body = body;
			x->body_cap = cap;
		}
		memcpy(resp->body + resp->body_len, data, len);
		resp->body_len += len;
		resp->body[resp->body_len] = '\0';
	}
	resp->size += len;
	return len;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct exchange *x = arg;
	ssize_t n;
	do
		n = read(x->upload_fd, buf, size * nitems);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		fail_in_callback(x, mlx_err_sys(x->err, errno, "cannot read %s", x->req->body_file));
		return CURL_READFUNC_ABORT;
	}
	return (size_t)n;
}

/* Called when libcurl must send the body again (a 307 redirect, auth). */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct exchange *x = arg;
	return lseek(x->upload_fd, (off_t)offset, origin) < 0 ? CURL_SEEKFUNC_FAIL : CURL_SEEKFUNC_OK;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	const struct mlx_http_request *req = ((struct exchange *)arg)->req;
	return req->cancelled && req->cancelled(req->cancel_arg) ? 1 : 0;
}

/* ---- the exchange ----------------------------------------------------- */

static bool has_header(const struct mlx_http_request *req, const char *name)
{
	size_t n = strlen(name);
	for (size_t i = 0; i < req->nheaders; i++) {
		const char *h = req->headers[i];
		if (strncasecmp(h, name, n) == 0 && (h[n] == ':' || h[n] == ';'))
			return true;
	}
	return false;
}

static int build_headers(const struct mlx_http_request *req, struct curl_slist **out, struct mlx_err *err)
{
	struct curl_slist *list = NULL, *next;
	for (size_t i = 0; i < req->nheaders; i++) {
		if (!(next = curl_slist_append(list, req->headers[i])))
			goto nomem;
		list = next;
	}
	/* No "Expect: 100-continue" round trip before a body: many servers and
	 * proxies mishandle it, and libcurl would otherwise wait for a reply. */
	if (!has_header(req, "expect")) {
		if (!(next = curl_slist_append(list, "Expect:")))
			goto nomem;
		list = next;
	}
	*out = list;
	return MLX_OK;
nomem:
	curl_slist_free_all(list);
	return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
}

static int open_upload(struct exchange *x, curl_off_t *size)
{
	const char *path = x->req->body_file;
	x->upload_fd = open(path, O_RDONLY | O_CLOEXEC);
	if (x->upload_fd < 0)
		return mlx_err_sys(x->err, errno, "cannot open %s", path);
	struct stat st;
	if (fstat(x->upload_fd, &st) != 0)
		return mlx_err_sys(x->err, errno, "cannot stat %s", path);
	if (!S_ISREG(st.st_mode))
		return mlx_err_set(x->err, MLX_ERR_INVALID, 0, "cannot upload %s: not a regular file", path);
	*size = (curl_off_t)st.st_size;
	return MLX_OK;
}

static void set_method(CURL *e, const struct mlx_http_request *req, struct exchange *x, curl_off_t upload_size)
{
	const char *m = req->method;
	bool post = strcmp(m, "POST") == 0;
	if (req->body || req->body_file) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		if (req->body) {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
			curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
		} else {
			curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, upload_size);
			curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
			curl_easy_setopt(e, CURLOPT_READDATA, x);
			curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
			curl_easy_setopt(e, CURLOPT_SEEKDATA, x);
		}
		if (!post)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	} else if (strcmp(m, "GET") == 0) {
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	} else if (strcmp(m, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (post || strcmp(m, "PUT") == 0 || strcmp(m, "PATCH") == 0) {
		/* An empty body, sent with "Content-Length: 0" as servers expect. */
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)0);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, "");
		if (!post)
			curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	} else {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, m);
	}
}

/* The host part of url into buf, or "" if it has none. */
static void url_host(const char *url, char *buf, size_t size)
{
	buf[0] = '\0';
	CURLU *u = curl_url();
	char *host = NULL;
	if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		snprintf(buf, size, "%s", host);
	curl_free(host);
	curl_url_cleanup(u);
}

/* Turns a libcurl failure into one readable line and a failure kind. */
static int transport_error(CURL *e, CURLcode rc, const char *errbuf, const struct mlx_http_request *req,
			   struct mlx_http_response *resp, struct mlx_err *err)
{
	const char *detail = errbuf[0] ? errbuf : curl_easy_strerror(rc);
	long os_errno = 0;
	curl_off_t connected = 0;
	char host[256];
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
		resp->failure = MLX_HTTP_DNS;
		url_host(req->url, host, sizeof host);
		return mlx_err_set(err, MLX_ERR_IO, 0, "cannot resolve host name %s", host);
	case CURLE_COULDNT_RESOLVE_PROXY:
		resp->failure = MLX_HTTP_DNS;
		return mlx_err_set(err, MLX_ERR_IO, 0,
				   "cannot resolve the proxy's host name (%s); see the environment's "
				   "http_proxy, https_proxy and no_proxy", detail);
	case CURLE_COULDNT_CONNECT:
		curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
		if (os_errno == ECONNREFUSED) {
			resp->failure = MLX_HTTP_REFUSED;
			return mlx_err_set(err, MLX_ERR_IO, ECONNREFUSED, "connection refused");
		}
		resp->failure = MLX_HTTP_CONNECT;
		if (os_errno)
			return mlx_err_set(err, MLX_ERR_IO, (int)os_errno, "cannot connect: %s", strerror((int)os_errno));
		return mlx_err_set(err, MLX_ERR_IO, 0, "cannot connect (%s)", detail);
	case CURLE_OPERATION_TIMEDOUT:
		resp->failure = MLX_HTTP_TIMEOUT;
		curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connected);
		if (connected == 0 && req->connect_timeout_ms > 0 &&
		    (req->timeout_ms == 0 || req->connect_timeout_ms <= req->timeout_ms))
			return mlx_err_set(err, MLX_ERR_IO, ETIMEDOUT, "timed out: no connection within %g s",
					   (double)req->connect_timeout_ms / 1000);
		if (req->timeout_ms > 0)
			return mlx_err_set(err, MLX_ERR_IO, ETIMEDOUT, "timed out: no complete response within %g s",
					   (double)req->timeout_ms / 1000);
		return mlx_err_set(err, MLX_ERR_IO, ETIMEDOUT, "timed out (%s)", detail);
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_SHUTDOWN_FAILED:
	case CURLE_USE_SSL_FAILED:
		resp->failure = MLX_HTTP_TLS;
		return mlx_err_set(err, MLX_ERR_IO, 0, "TLS failed: %s", detail);
	case CURLE_TOO_MANY_REDIRECTS:
		resp->failure = MLX_HTTP_REDIRECTS;
		return mlx_err_set(err, MLX_ERR_IO, 0, "more than %ld redirects", req->max_redirects);
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		resp->failure = MLX_HTTP_URL;
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "bad URL: %s", detail);
	case CURLE_GOT_NOTHING:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_WEIRD_SERVER_REPLY:
		resp->failure = MLX_HTTP_CONNECTION;
		return mlx_err_set(err, MLX_ERR_IO, 0, "connection lost: %s", detail);
	case CURLE_ABORTED_BY_CALLBACK:
		resp->failure = MLX_HTTP_INTERRUPTED;
		return mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "interrupted");
	default:
		resp->failure = MLX_HTTP_OTHER;
		return mlx_err_set(err, MLX_ERR_IO, 0, "%s", detail);
	}
}

/* Moves the completed download into place, if its digest is the one asked
 * for. The temp file is gone afterwards in every case. */
static int finish_download(struct exchange *x)
{
	const struct mlx_http_request *req = x->req;
	struct mlx_http_response *resp = x->resp;
	int rc = mlx_hash_stream_finish(&x->sha256, resp->sha256, x->err);
	if (rc != MLX_OK)
		return rc;
	if (req->sha256 && strcasecmp(req->sha256, resp->sha256) != 0) {
		resp->failure = MLX_HTTP_DIGEST;
		return mlx_err_set(x->err, MLX_ERR_CORRUPT, 0,
				   "download does not match its sha256: expected %s, got %s; %s left as it was",
				   req->sha256, resp->sha256, req->out_file);
	}
	mode_t mask = umask(0);
	umask(mask);
	if (fchmod(x->out_fd, 0666 & ~mask) != 0)
		return mlx_err_sys(x->err, errno, "cannot set mode of %s", req->out_file);
	if (fsync(x->out_fd) != 0)
		return mlx_err_sys(x->err, errno, "cannot sync %s", req->out_file);
	int fd = x->out_fd;
	x->out_fd = -1;
	if (close(fd) != 0)
		return mlx_err_sys(x->err, errno, "cannot write %s", req->out_file);
	if (rename(x->tmp, req->out_file) != 0)
		return mlx_err_sys(x->err, errno, "cannot replace %s", req->out_file);
	x->tmp[0] = '\0';
	return mlx_fs_sync_parent(req->out_file, x->err);
}

static void end_exchange(struct exchange *x)
{
	if (x->upload_fd >= 0)
		close(x->upload_fd);
	if (x->out_fd >= 0)
		close(x->out_fd);
	if (x->tmp[0])
		unlink(x->tmp);
	mlx_hash_stream_free(&x->sha256);
}

int mlx_http_perform(struct mlx_http_client *client, const struct mlx_http_request *req,
		     struct mlx_http_response *resp, struct mlx_err *err)
{
	memset(resp, 0, sizeof *resp);
	struct exchange x = {.req = req, .resp = resp, .err = err, .upload_fd = -1, .out_fd = -1};
	CURL *e = client->easy;
	char errbuf[CURL_ERROR_SIZE] = "";
	struct curl_slist *headers = NULL;
	curl_off_t upload_size = 0;
	int rc = MLX_OK;

	if (req->body_file && (rc = open_upload(&x, &upload_size)) != MLX_OK) {
		resp->failure = MLX_HTTP_FILE;
		goto done;
	}
	if ((rc = build_headers(req, &headers, err)) != MLX_OK) {
		resp->failure = MLX_HTTP_OTHER;
		goto done;
	}
	/* Reset keeps the connection cache, DNS cache and TLS sessions. */
	curl_easy_reset(e);
	curl_easy_setopt(e, CURLOPT_URL, req->url);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	if (req->user_agent)
		curl_easy_setopt(e, CURLOPT_USERAGENT, req->user_agent);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, req->max_redirects > 0 ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, req->max_redirects);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, req->timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, req->connect_timeout_ms);
	if (req->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	if (req->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, req->ca_file);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &x);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, &x);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	set_method(e, req, &x, upload_size);

	CURLcode code = curl_easy_perform(e);
	/* Never keep pointers into the caller's request in the handle. */
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, NULL);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
	if (x.status != MLX_OK) {
		rc = x.status;
		if (resp->failure == MLX_HTTP_OK)
			resp->failure = rc == MLX_ERR_NOMEM ? MLX_HTTP_OTHER : MLX_HTTP_FILE;
		goto done;
	}
	if (code != CURLE_OK) {
		rc = transport_error(e, code, errbuf, req, resp, err);
		goto done;
	}
	curl_off_t micros = 0;
	char *url = NULL;
	curl_easy_getinfo(e, CURLINFO_TOTAL_TIME_T, &micros);
	curl_easy_getinfo(e, CURLINFO_EFFECTIVE_URL, &url);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &resp->status);
	resp->time = (double)micros / 1e6;
	resp->url = strdup(url ? url : req->url);
	if (!resp->reason)
		resp->reason = strdup("");
	if (!resp->url || !resp->reason) {
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		resp->failure = MLX_HTTP_OTHER;
		goto done;
	}
	if (!x.body_started && (rc = start_body(&x)) != MLX_OK) { /* an empty body */
		resp->failure = MLX_HTTP_FILE;
		goto done;
	}
	if (x.to_file) {
		if ((rc = finish_download(&x)) != MLX_OK && resp->failure == MLX_HTTP_OK)
			resp->failure = MLX_HTTP_FILE;
	} else if (!resp->body && !(resp->body = calloc(1, 1))) {
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		resp->failure = MLX_HTTP_OTHER;
	}
done:
	curl_slist_free_all(headers);
	end_exchange(&x);
	return rc;
}
