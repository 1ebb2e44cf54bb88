/* remote_curl.c — one HTTP exchange of a remote backend over a kept-alive
 * libcurl handle. */
#include "remote_curl.h"

#include <ctype.h>
#include <errno.h>
#include <libxml/parser.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

/* The state of one exchange, shared by the callbacks. */
struct transfer {
	struct mlx_remote_exchange *x;
	struct mlx_remote_curl *c;
	size_t cap;      /* of x->resp */
	uint64_t sent;   /* request body bytes handed to libcurl */
	int write_errno; /* writing out_fd failed with this */
	int read_errno;  /* reading body_fd failed with this */
	bool to_fd;      /* the current response's body goes to out_fd */
	bool decided;
};

bool mlx_remote_key_valid(const char *key, bool dir)
{
	size_t n = strlen(key);
	if (n == 0 || key[0] == '/' || (!dir && key[n - 1] == '/'))
		return false;
	for (const char *seg = key; *seg;) {
		const char *end = strchr(seg, '/');
		size_t len = end ? (size_t)(end - seg) : strlen(seg);
		if (len == 0 || (len == 1 && seg[0] == '.') || (len == 2 && seg[0] == '.' && seg[1] == '.'))
			return false;
		for (size_t i = 0; i < len; i++)
			if ((unsigned char)seg[i] < 0x20 || seg[i] == 0x7f)
				return false;
		seg = end ? end + 1 : seg + len;
	}
	return true;
}

void mlx_remote_env_name(char *buf, size_t n, const char *remote, const char *option)
{
	int len = snprintf(buf, n, "MLX_REMOTE_%s_%s", remote, option);
	for (int i = 0; i < len && (size_t)i + 1 < n; i++)
		buf[i] = buf[i] == '-' ? '_' : (char)toupper((unsigned char)buf[i]);
}

const char *mlx_remote_option(const struct mlx_remote_config *config, const char *name)
{
	const struct mlx_strlist *o = config->options;
	const char *value = NULL;
	for (size_t i = 0; o && i + 1 < o->len; i += 2)
		if (strcmp(o->items[i], name) == 0)
			value = o->items[i + 1]; /* a later value replaces an earlier one */
	return value;
}

int mlx_remote_options_check(const struct mlx_remote_config *config, const char *backend,
                             const char *const *allowed, struct mlx_err *err)
{
	const struct mlx_strlist *o = config->options;
	if (!o)
		return MLX_OK;
	if (o->len % 2)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: options come in name, value pairs",
		                   config->name);
	for (size_t i = 0; i < o->len; i += 2) {
		size_t k = 0;
		while (allowed[k] && strcmp(allowed[k], o->items[i]) != 0)
			k++;
		if (allowed[k])
			continue;
		/* Name the options there are: a typo is then fixed from the message. */
		char known[300] = "";
		size_t used = 0;
		for (k = 0; allowed[k] && used < sizeof known; k++)
			used += (size_t)snprintf(known + used, sizeof known - used, "%s%s", k ? ", " : "",
			                         allowed[k]);
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: unknown option '%s' for the %s backend (it has %s)",
		                   config->name, o->items[i], backend, known);
	}
	return MLX_OK;
}

int mlx_remote_option_u64(const struct mlx_remote_config *config, const char *name, uint64_t def,
                          uint64_t *out, struct mlx_err *err)
{
	const char *v = mlx_remote_option(config, name);
	*out = def;
	if (!v)
		return MLX_OK;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(v, &end, 10);
	if (!*v || *end || errno || *v == '-')
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: option %s must be a non-negative integer, not '%s'",
		                   config->name, name, v);
	*out = n;
	return MLX_OK;
}

int mlx_remote_option_bool(const struct mlx_remote_config *config, const char *name, bool def, bool *out,
                           struct mlx_err *err)
{
	const char *v = mlx_remote_option(config, name);
	*out = def;
	if (!v)
		return MLX_OK;
	if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes"))
		*out = true;
	else if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no"))
		*out = false;
	else
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: option %s must be true or false, not '%s'", config->name, name,
		                   v);
	return MLX_OK;
}

/* libxml2 2.9 must be initialised once, before threads parse (listings
 * and multipart answers are read on the engine's worker threads). The
 * once-flag is the only process-wide state, as libxml2's own is. */
static pthread_once_t xml_once = PTHREAD_ONCE_INIT;

static void xml_init(void)
{
	xmlInitParser();
}

int mlx_remote_curl_open(struct mlx_remote_curl *c, const struct mlx_remote_config *config,
                         struct mlx_err *err)
{
	memset(c, 0, sizeof *c);
	c->remote = config->name;
	pthread_once(&xml_once, xml_init);
	uint64_t timeout;
	int rc = mlx_remote_option_u64(config, "timeout_ms", 30000, &timeout, err);
	if (rc == MLX_OK)
		rc = mlx_remote_option_bool(config, "insecure", false, &c->insecure, err);
	if (rc != MLX_OK)
		return rc;
	if (timeout == 0 || timeout > 24ull * 3600 * 1000)
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: option timeout_ms must be 1 to 86400000", config->name);
	c->timeout_ms = (long)timeout;
	c->cancel = config->cancel;
	const char *ca = mlx_remote_option(config, "ca_file");
	if (ca && access(ca, R_OK) != 0)
		return mlx_err_set(err, MLX_ERR_INVALID, errno, "remote %s: option ca_file: cannot read %s",
		                   config->name, ca);
	/* Idempotent and thread-safe since libcurl 7.84 (see core/http.c). */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return mlx_err_set(err, MLX_ERR_IO, 0, "cannot initialise libcurl");
	if (ca && !(c->ca_file = strdup(ca)))
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	c->easy = curl_easy_init();
	if (!c->easy) {
		free(c->ca_file);
		c->ca_file = NULL;
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "cannot create a libcurl handle");
	}
	return MLX_OK;
}

void mlx_remote_curl_close(struct mlx_remote_curl *c)
{
	if (c->easy)
		curl_easy_cleanup(c->easy);
	free(c->ca_file);
	c->easy = NULL;
	c->ca_file = NULL;
}

void mlx_remote_exchange_free(struct mlx_remote_exchange *x)
{
	free(x->resp);
	x->resp = NULL;
	x->resp_len = 0;
	x->status = 0;
	x->written = 0;
	x->content_length = -1;
	x->etag[0] = '\0';
}

/* ---- callbacks -------------------------------------------------------- */

static size_t on_header(char *data, size_t size, size_t nitems, void *arg)
{
	struct transfer *t = arg;
	size_t len = size * nitems;
	if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
		/* a new response (after 100 Continue or a redirect) */
		t->x->content_length = -1;
		t->x->etag[0] = '\0';
		t->decided = false;
		return len;
	}
	const char *colon = memchr(data, ':', len);
	if (!colon)
		return len;
	size_t name_len = (size_t)(colon - data);
	const char *v = colon + 1, *end = data + len;
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' || end[-1] == '\t'))
		end--;
	size_t vlen = (size_t)(end - v);
	if (name_len == 14 && strncasecmp(data, "content-length", 14) == 0) {
		char num[32];
		if (vlen < sizeof num) {
			memcpy(num, v, vlen);
			num[vlen] = '\0';
			char *e;
			long long n = strtoll(num, &e, 10);
			if (*num && !*e && n >= 0)
				t->x->content_length = n;
		}
	} else if (name_len == 4 && strncasecmp(data, "etag", 4) == 0 && vlen < sizeof t->x->etag) {
		memcpy(t->x->etag, v, vlen);
		t->x->etag[vlen] = '\0';
	}
	return len;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
	struct transfer *t = arg;
	struct mlx_remote_exchange *x = t->x;
	size_t len = size * nmemb;
	if (!t->decided) {
		long status = 0;
		curl_easy_getinfo(t->c->easy, CURLINFO_RESPONSE_CODE, &status);
		t->to_fd = x->out_fd >= 0 && status >= 200 && status < 300;
		t->decided = true;
	}
	if (t->to_fd) {
		for (size_t off = 0; off < len;) {
			ssize_t n = write(x->out_fd, data + off, len - off);
			if (n < 0 && errno == EINTR)
				continue;
			if (n <= 0) {
				t->write_errno = n < 0 ? errno : ENOSPC;
				return 0;
			}
			off += (size_t)n;
		}
		x->written += len;
		return len;
	}
	/* Error pages and listings are small; a runaway one is cut at 64 MiB. */
	if (x->resp_len + len > (64u << 20)) {
		t->write_errno = EFBIG;
		return 0;
	}
	if (x->resp_len + len + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 4096;
		while (x->resp_len + len + 1 > cap)
			cap *= 2;
		char *p = realloc(x->resp, cap);
		if (!p) {
			t->write_errno = ENOMEM;
			return 0;
		}
		x->resp = p;
		t->cap = cap;
	}
	memcpy(x->resp + x->resp_len, data, len);
	x->resp_len += len;
	x->resp[x->resp_len] = '\0';
	return len;
}

static size_t on_read(char *buf, size_t size, size_t nitems, void *arg)
{
	struct transfer *t = arg;
	struct mlx_remote_exchange *x = t->x;
	uint64_t left = x->body_size - t->sent;
	size_t want = size * nitems;
	if (want > left)
		want = (size_t)left;
	if (want == 0)
		return 0;
	ssize_t n;
	do
		n = pread(x->body_fd, buf, want, (off_t)(x->body_offset + t->sent));
	while (n < 0 && errno == EINTR);
	if (n <= 0) {
		/* a file that shrank under us must not be sent short */
		t->read_errno = n < 0 ? errno : EIO;
		return CURL_READFUNC_ABORT;
	}
	t->sent += (uint64_t)n;
	return (size_t)n;
}

/* Rewinds the request body when libcurl resends it (a redirect, or an auth
 * negotiation). */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
	struct transfer *t = arg;
	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > t->x->body_size)
		return CURL_SEEKFUNC_CANTSEEK;
	t->sent = (uint64_t)offset;
	return CURL_SEEKFUNC_OK;
}

/* libcurl calls this at least once a second during a transfer, and more
 * often while bytes move: non-zero aborts it (CURLE_ABORTED_BY_CALLBACK). */
static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	const atomic_int *cancel = arg;
	return atomic_load_explicit(cancel, memory_order_relaxed) != 0;
}

/* ---- perform ---------------------------------------------------------- */

static int transport_error(struct mlx_remote_curl *c, CURLcode code, const char *what, struct mlx_err *err)
{
	const char *detail = c->errbuf[0] ? c->errbuf : curl_easy_strerror(code);
	switch (code) {
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: %s: bad URL: %s", c->remote, what,
		                   detail);
	case CURLE_SSL_CONNECT_ERROR:
		/* An https:// URL to a port that speaks plain HTTP: the
		 * handshake reads "HTTP/1.1 400…" as a TLS record. Every retry
		 * would meet the same answer. Other handshake failures (a
		 * reset in the middle) stay transport failures. */
		if (strstr(detail, "wrong version number") || strstr(detail, "packet length too long"))
			return mlx_err_set(err, MLX_ERR_INVALID, 0,
			                   "remote %s: %s: the server does not speak TLS there (%s); if it "
			                   "serves plain HTTP, use http:// in the remote's URL (or endpoint)",
			                   c->remote, what, detail);
		return mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: %s: %s", c->remote, what, detail);
	case CURLE_PEER_FAILED_VERIFICATION:
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: %s: the server's TLS certificate is not trusted (%s); give "
		                   "the option ca_file (a private CA's PEM bundle), or insecure=true",
		                   c->remote, what, detail);
	case CURLE_PARTIAL_FILE:
		return mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: %s: the response was cut short: %s",
		                   c->remote, what, detail);
	default: return mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: %s: %s", c->remote, what, detail);
	}
}

int mlx_remote_curl_perform(struct mlx_remote_curl *c, struct mlx_remote_exchange *x, const char *what,
                            struct mlx_err *err)
{
	mlx_remote_exchange_free(x);
	struct transfer t = {.x = x, .c = c};
	CURL *e = c->easy;
	curl_easy_reset(e);
	c->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, c->errbuf);
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->timeout_ms);
	/* A stalled transfer fails after timeout_ms; a slow one that moves
	 * does not, however large the object. */
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, (c->timeout_ms + 999) / 1000);
	if (c->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	if (c->insecure) {
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
		curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
	}
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
	if (strcmp(x->method, "HEAD") == 0) {
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	} else if (x->body_fd >= 0) {
		curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(e, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(e, CURLOPT_READDATA, &t);
		curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(e, CURLOPT_SEEKDATA, &t);
		curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, (curl_off_t)x->body_size);
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
	} else if (x->body || strcmp(x->method, "POST") == 0 || strcmp(x->method, "PUT") == 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body ? x->body : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)(x->body ? x->body_len : 0));
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
	} else if (strcmp(x->method, "GET") != 0) {
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, x->method);
	}
	/* The caller's lines and "Expect:", which turns off 100-continue: a
	 * round trip per upload that servers answer anyway. */
	struct curl_slist *headers = NULL, *next;
	for (const struct curl_slist *l = x->headers; l; l = l->next) {
		if (!(next = curl_slist_append(headers, l->data))) {
			curl_slist_free_all(headers);
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		headers = next;
	}
	next = curl_slist_append(headers, "Expect:");
	if (!next) {
		curl_slist_free_all(headers);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	headers = next;
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
	bool cancellable = c->cancel && (x->body_fd >= 0 || x->out_fd >= 0);
	if (cancellable) {
		curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
		curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, on_progress);
		curl_easy_setopt(e, CURLOPT_XFERINFODATA, (void *)c->cancel);
	}
	CURLcode code = curl_easy_perform(e);
	curl_slist_free_all(headers);
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &x->status);
	if (t.write_errno)
		return t.write_errno == ENOMEM
		           ? mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory")
		           : mlx_err_sys(err, t.write_errno, "remote %s: %s: cannot write the download",
		                         c->remote, what);
	if (t.read_errno)
		return mlx_err_sys(err, t.read_errno, "remote %s: %s: cannot read the upload", c->remote,
		                   what);
	if (code == CURLE_ABORTED_BY_CALLBACK && cancellable && atomic_load(c->cancel))
		return mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "remote %s: %s interrupted", c->remote,
		                   what);
	if (code != CURLE_OK)
		return transport_error(c, code, what, err);
	/* A 2xx must never hide a short body: libcurl catches most, but not a
	 * close-delimited body, so the count is checked again. */
	if (x->status >= 200 && x->status < 300 && strcmp(x->method, "HEAD") != 0 && x->content_length >= 0) {
		uint64_t got = x->out_fd >= 0 ? x->written : x->resp_len;
		if (got != (uint64_t)x->content_length)
			return mlx_err_set(err, MLX_ERR_IO, 0,
			                   "remote %s: %s: the response was cut short (%" PRIu64
			                   " of %" PRId64 " bytes)",
			                   c->remote, what, got, x->content_length);
	}
	return MLX_OK;
}

int mlx_remote_curl_status(const struct mlx_remote_curl *c, const struct mlx_remote_exchange *x,
                           const char *what, const char *detail, const char *credential_hint,
                           struct mlx_err *err)
{
	long s = x->status;
	char extra[256] = "";
	if (detail && *detail)
		snprintf(extra, sizeof extra, " (%s)", detail);
	if (s >= 300 && s < 400)
		return mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "remote %s: %s: the server redirects (HTTP %ld)%s; give the remote the URL it "
		    "redirects to",
		    c->remote, what, s, extra);
	if (s == 404 || s == 410)
		return mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "remote %s: %s: not found", c->remote, what);
	if (s == 401 || s == 403)
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: %s: the server refused access (HTTP %ld)%s; %s", c->remote,
		                   what, s, extra, credential_hint);
	if (s == 408 || s == 429 || s >= 500)
		return mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: %s: HTTP %ld%s", c->remote, what, s,
		                   extra);
	return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: %s: HTTP %ld%s", c->remote, what, s, extra);
}
