/* remote_webdav.c — a remote on an HTTP/WebDAV server (http:// and
 * https:// URLs): GET, HEAD, PUT, MKCOL, MOVE, DELETE and PROPFIND.
 *
 * An upload goes to a temp key under "tmp/" first and is then moved onto
 * its key, so a reader never sees a partial object: WebDAV PUT writes in
 * place on many servers, MOVE is a rename on the server's disk. A killed
 * upload leaves at most a file under tmp/, which no listing of objects/
 * sees and `mlx gc` on the remote removes. */
#include "remote_curl.h"
#include "remote_http.h"
#include "sigv4.h"

#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

struct webdav {
	struct mlx_remote_curl c;
	char *base;          /* "http://host:port/path/", always ending in '/' */
	char *base_path;     /* "/path/", decoded: what listed hrefs start with */
	char *authorization; /* "Authorization: …" or NULL */
	char hint[640];      /* which credential to check after a 401/403, and where it is set */
	size_t root_len;     /* of "http://host:port" at the start of base */
	bool probed;         /* probe_base has run (see there) */
};

static const char *const webdav_options[] = {"user",     "password",   "token", "ca_file",
                                             "insecure", "timeout_ms", NULL};

static int webdav_accepts(const char *url)
{
	return strncmp(url, "http://", 7) == 0 || strncmp(url, "https://", 8) == 0;
}

static void webdav_close(void *state)
{
	struct webdav *w = state;
	if (!w)
		return;
	mlx_remote_curl_close(&w->c);
	free(w->base);
	free(w->base_path);
	if (w->authorization) {
		OPENSSL_cleanse(w->authorization, strlen(w->authorization));
		free(w->authorization);
	}
	free(w);
}

/* Collapses runs of '/' in s to one, in place. */
static void merge_slashes(char *s)
{
	char *o = s;
	for (char *p = s; *p; p++)
		if (!(*p == '/' && o > s && o[-1] == '/'))
			*o++ = *p;
	*o = '\0';
}

static int check_key(const struct webdav *w, const char *key, int dir, struct mlx_err *err)
{
	if (!mlx_remote_key_valid(key, dir != 0))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: not a valid key: '%.200s'",
		                   w->c.remote, key);
	return MLX_OK;
}

static char *key_url(const struct webdav *w, const char *key)
{
	char *enc = mlx_sigv4_encode(key, 1);
	if (!enc)
		return NULL;
	size_t n = strlen(w->base) + strlen(enc) + 1;
	char *url = malloc(n);
	if (url)
		snprintf(url, n, "%s%s", w->base, enc);
	free(enc);
	return url;
}

static int set_auth(struct webdav *w, const struct mlx_remote_config *config, struct mlx_err *err)
{
	const char *user = mlx_remote_option(config, "user");
	const char *password = mlx_remote_option(config, "password");
	const char *token = mlx_remote_option(config, "token");
	char var[96], var2[96];
	if (token && (user || password))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: give either the option token or user and password, not both",
		                   config->name);
	if (password && !user)
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: option password needs the option user", config->name);
	if (token) {
		size_t n = strlen(token) + 32;
		if (!(w->authorization = malloc(n)))
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		snprintf(w->authorization, n, "Authorization: Bearer %s", token);
		mlx_remote_env_name(var, sizeof var, config->name, "token");
		snprintf(w->hint, sizeof w->hint,
		         "check the option token (%s, else remotes.%.64s in .mlx/config.local.lua)", var,
		         config->name);
	} else if (user) {
		if (strchr(user, ':'))
			return mlx_err_set(err, MLX_ERR_INVALID, 0,
			                   "remote %s: option user cannot contain ':' (basic auth)",
			                   config->name);
		size_t plain_len = strlen(user) + 1 + (password ? strlen(password) : 0);
		char *plain = malloc(plain_len + 1);
		size_t n = 4 * ((plain_len + 2) / 3) + 32;
		w->authorization = malloc(n);
		if (!plain || !w->authorization) {
			free(plain);
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		snprintf(plain, plain_len + 1, "%s:%s", user, password ? password : "");
		int len = snprintf(w->authorization, n, "Authorization: Basic ");
		EVP_EncodeBlock((unsigned char *)w->authorization + len, (const unsigned char *)plain,
		                (int)plain_len);
		OPENSSL_cleanse(plain, plain_len);
		free(plain);
		mlx_remote_env_name(var, sizeof var, config->name, "user");
		mlx_remote_env_name(var2, sizeof var2, config->name, "password");
		snprintf(w->hint, sizeof w->hint,
		         "check the options user and password (%s and %s, else remotes.%.64s in "
		         ".mlx/config.local.lua)",
		         var, var2, config->name);
	} else {
		mlx_remote_env_name(var, sizeof var, config->name, "user");
		mlx_remote_env_name(var2, sizeof var2, config->name, "password");
		snprintf(
		    w->hint, sizeof w->hint,
		    "the server wants credentials: set the options user and password (or token) of "
		    "remote %.64s in .mlx/config.local.lua (remotes = { %.64s = { user = …, password = … } "
		    "}) or in %s and %s",
		    config->name, config->name, var, var2);
	}
	return MLX_OK;
}

static int webdav_open(const struct mlx_remote_config *config, void **state, struct mlx_err *err)
{
	*state = NULL;
	const char *url = config->url;
	if (!webdav_accepts(url))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: not an http:// or https:// URL",
		                   config->name);
	const char *auth = strstr(url, "://") + 3;
	const char *path = strchr(auth, '/');
	size_t auth_len = path ? (size_t)(path - auth) : strlen(auth);
	if (memchr(auth, '@', auth_len))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: put credentials in the options user and password (in "
		                   ".mlx/config.local.lua), not in the URL",
		                   config->name);
	if (auth_len == 0 || strpbrk(url, "?# \t\r\n"))
		return mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "remote %s: a WebDAV URL is http(s)://host[:port]/path/ without query or fragment",
		    config->name);
	int rc = mlx_remote_options_check(config, "WebDAV", webdav_options, err);
	if (rc != MLX_OK)
		return rc;
	struct webdav *w = calloc(1, sizeof *w);
	if (!w)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	size_t n = strlen(url) + 2;
	w->base = malloc(n);
	w->base_path = strdup(path ? path : "/");
	if (!w->base || !w->base_path) {
		webdav_close(w);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	snprintf(w->base, n, "%s%s", url, url[strlen(url) - 1] == '/' ? "" : "/");
	w->root_len = path ? (size_t)(path - url) : strlen(url);
	size_t bl = strlen(w->base_path);
	if (w->base_path[bl - 1] != '/') {
		char *p = realloc(w->base_path, bl + 2);
		if (!p) {
			webdav_close(w);
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		w->base_path = p;
		strcat(w->base_path, "/");
	}
	mlx_sigv4_decode(w->base_path, strlen(w->base_path), w->base_path);
	/* Servers merge repeated slashes in paths (nginx's merge_slashes),
	 * and the hrefs they list are merged too. */
	merge_slashes(w->base_path);
	if (path)
		merge_slashes(w->base + (size_t)(path - url));
	rc = set_auth(w, config, err);
	if (rc == MLX_OK)
		rc = mlx_remote_curl_open(&w->c, config, err);
	if (rc != MLX_OK) {
		webdav_close(w);
		return rc;
	}
	*state = w;
	return MLX_OK;
}

/* Performs method on key with the instance's credentials and the given
 * extra header lines (NULL-terminated). */
static int request(struct webdav *w, struct mlx_remote_exchange *x, const char *key, const char *const *extra,
                   struct mlx_err *err)
{
	struct curl_slist *headers = NULL, *next;
	if (w->authorization && !(headers = curl_slist_append(NULL, w->authorization)))
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (size_t i = 0; extra && extra[i]; i++) {
		if (!(next = curl_slist_append(headers, extra[i]))) {
			curl_slist_free_all(headers);
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		headers = next;
	}
	x->headers = headers;
	int rc = mlx_remote_curl_perform(&w->c, x, key, err);
	if (headers) {
		/* the list holds the Authorization line: wipe it before freeing */
		for (struct curl_slist *l = headers; l; l = l->next)
			OPENSSL_cleanse(l->data, strlen(l->data));
		curl_slist_free_all(headers);
	}
	x->headers = NULL;
	return rc;
}

static int probe_base(struct webdav *w, struct mlx_err *err);

/* Turns a non-2xx answer into the interface's failure. The answers a
 * server gives below a file (404, 409, a 500 for a PUT on nginx) first
 * ask, once, whether the remote's collection is a file. */
static int failed(struct webdav *w, struct mlx_remote_exchange *x, const char *key, struct mlx_err *err)
{
	long s = x->status;
	if (!w->probed && (s == 404 || s == 409 || s >= 500)) {
		int rc = probe_base(w, err);
		if (rc != MLX_OK)
			return rc;
	}
	return mlx_remote_curl_status(&w->c, x, key, NULL, w->hint, err);
}

static int webdav_stat(void *state, const char *key, uint64_t *size, struct mlx_err *err)
{
	struct webdav *w = state;
	int rc = check_key(w, key, 0, err);
	if (rc != MLX_OK)
		return rc;
	char *url = key_url(w, key);
	if (!url)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	struct mlx_remote_exchange x = {.method = "HEAD", .url = url, .body_fd = -1, .out_fd = -1};
	rc = request(w, &x, key, NULL, err);
	if (rc == MLX_OK && (x.status < 200 || x.status > 299))
		rc = failed(w, &x, key, err);
	if (rc == MLX_OK && x.content_length < 0)
		rc = mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: %s: the server did not say its size",
		                 w->c.remote, key);
	if (rc == MLX_OK)
		*size = (uint64_t)x.content_length;
	mlx_remote_exchange_free(&x);
	free(url);
	return rc;
}

static int webdav_get(void *state, const char *key, int fd, struct mlx_err *err)
{
	struct webdav *w = state;
	int rc = check_key(w, key, 0, err);
	if (rc != MLX_OK)
		return rc;
	char *url = key_url(w, key);
	if (!url)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	struct mlx_remote_exchange x = {.method = "GET", .url = url, .body_fd = -1, .out_fd = fd};
	rc = request(w, &x, key, NULL, err);
	if (rc == MLX_OK && (x.status < 200 || x.status > 299))
		rc = failed(w, &x, key, err);
	mlx_remote_exchange_free(&x);
	free(url);
	return rc;
}

/* Creates the collections above key, from the top: "a/", "a/b/", … A
 * collection that exists already answers 405. */
static int make_parents(struct webdav *w, const char *key, struct mlx_err *err)
{
	char *dir = strdup(key);
	if (!dir)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	int rc = MLX_OK;
	for (char *slash = strchr(dir, '/'); rc == MLX_OK && slash; slash = strchr(slash + 1, '/')) {
		char keep = slash[1];
		slash[1] = '\0';
		char *url = key_url(w, dir);
		if (!url) {
			rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			break;
		}
		struct mlx_remote_exchange x = {.method = "MKCOL", .url = url, .body_fd = -1, .out_fd = -1};
		rc = request(w, &x, dir, NULL, err);
		if (rc == MLX_OK && !(x.status >= 200 && x.status < 300) && x.status != 405)
			rc = failed(w, &x, dir, err);
		mlx_remote_exchange_free(&x);
		free(url);
		slash[1] = keep;
	}
	free(dir);
	return rc;
}

static int upload(struct webdav *w, const char *key, const char *url, int fd, uint64_t size,
                  struct mlx_err *err)
{
	for (int attempt = 0;; attempt++) {
		struct mlx_remote_exchange x = {
		    .method = "PUT", .url = url, .body_fd = fd, .body_size = size, .out_fd = -1};
		const char *const extra[] = {"Content-Type: application/octet-stream", NULL};
		int rc = request(w, &x, key, extra, err);
		/* 409: a parent collection is missing (servers without
		 * nginx's create_full_put_path) */
		if (rc == MLX_OK && x.status == 409 && attempt == 0) {
			mlx_remote_exchange_free(&x);
			rc = make_parents(w, key, err);
			if (rc != MLX_OK)
				return rc;
			continue;
		}
		if (rc == MLX_OK && x.status >= 500 && x.status != 503 && x.status != 507 &&
		    (rc = probe_base(w, err)) == MLX_OK)
			/* Not a file in the way: most often the server's user may
			 * not write the directory it serves (nginx: 500). */
			rc = mlx_remote_curl_status(&w->c, &x, key,
			                            "the server could not store a PUT: its error log says "
			                            "why; often the user it runs as may not write the "
			                            "directory it serves",
			                            w->hint, err);
		else if (rc == MLX_OK && (x.status < 200 || x.status > 299))
			rc = failed(w, &x, key, err);
		mlx_remote_exchange_free(&x);
		return rc;
	}
}

static int move(struct webdav *w, const char *from_url, const char *key, const char *to_url,
                struct mlx_err *err)
{
	size_t n = strlen(to_url) + 16;
	char *destination = malloc(n);
	if (!destination)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	snprintf(destination, n, "Destination: %s", to_url);
	int rc = MLX_OK;
	for (int attempt = 0;; attempt++) {
		struct mlx_remote_exchange x = {
		    .method = "MOVE", .url = from_url, .body_fd = -1, .out_fd = -1};
		const char *const extra[] = {destination, "Overwrite: T", NULL};
		rc = request(w, &x, key, extra, err);
		if (rc == MLX_OK && x.status == 409 && attempt == 0) {
			mlx_remote_exchange_free(&x);
			if ((rc = make_parents(w, key, err)) != MLX_OK)
				break;
			continue;
		}
		if (rc == MLX_OK && (x.status < 200 || x.status > 299))
			rc = failed(w, &x, key, err);
		mlx_remote_exchange_free(&x);
		break;
	}
	free(destination);
	return rc;
}

static int webdav_remove(void *state, const char *key, struct mlx_err *err);

static int webdav_put(void *state, const char *key, const char *path, uint64_t size, struct mlx_err *err)
{
	struct webdav *w = state;
	int rc = check_key(w, key, 0, err);
	if (rc != MLX_OK)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlx_err_sys(err, errno, "remote %s: cannot read %s", w->c.remote, path);
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd) {
		close(fd);
		return mlx_err_sys(err, errno, "remote %s: cannot get random bytes", w->c.remote);
	}
	const char *base = strrchr(key, '/');
	base = base ? base + 1 : key;
	char tmp[320];
	snprintf(tmp, sizeof tmp, "tmp/%02x%02x%02x%02x%02x%02x%02x%02x-%.200s", rnd[0], rnd[1], rnd[2],
	         rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], base);
	char *tmp_url = key_url(w, tmp), *url = key_url(w, key);
	if (!tmp_url || !url)
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	if (rc == MLX_OK)
		rc = upload(w, key, tmp_url, fd, size, err);
	close(fd);
	if (rc == MLX_OK)
		rc = move(w, tmp_url, key, url, err);
	/* A server that writes a PUT in place may keep what arrived of a
	 * failed one; a failed MOVE leaves the whole temp. Neither is
	 * visible under the key, but both take room: removed if possible. */
	if (rc != MLX_OK && rc != MLX_ERR_NOMEM && tmp_url) {
		struct mlx_err ignored;
		webdav_remove(w, tmp, &ignored);
	}
	free(tmp_url);
	free(url);
	return rc;
}

static int webdav_remove(void *state, const char *key, struct mlx_err *err)
{
	struct webdav *w = state;
	int rc = check_key(w, key, 0, err);
	if (rc != MLX_OK)
		return rc;
	char *url = key_url(w, key);
	if (!url)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	struct mlx_remote_exchange x = {.method = "DELETE", .url = url, .body_fd = -1, .out_fd = -1};
	rc = request(w, &x, key, NULL, err);
	if (rc == MLX_OK && (x.status < 200 || x.status > 299) && x.status != 404)
		rc = failed(w, &x, key, err);
	mlx_remote_exchange_free(&x);
	free(url);
	return rc;
}

/* ---- list: PROPFIND Depth 1, walked ------------------------------------ */

static const char propfind_body[] = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
                                    "<D:propfind xmlns:D=\"DAV:\"><D:prop><D:resourcetype/>"
                                    "<D:getcontentlength/></D:prop></D:propfind>\n";

/* The PROPFIND of url asking for propfind_body's properties; the caller
 * adds the Depth header. */
static struct mlx_remote_exchange propfind_exchange(const char *url)
{
	return (struct mlx_remote_exchange){.method = "PROPFIND",
	                                    .url = url,
	                                    .body = propfind_body,
	                                    .body_len = sizeof propfind_body - 1,
	                                    .body_fd = -1,
	                                    .out_fd = -1};
}

static int is_dav(const xmlNode *n, const char *name)
{
	return n->type == XML_ELEMENT_NODE && n->ns && n->ns->href &&
	       strcmp((const char *)n->ns->href, "DAV:") == 0 && strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (is_dav(c, name))
			return c;
	return NULL;
}

/* Returns 1 if the DAV propstat element ps reports status 200: its
 * properties are the resource's (404 ones are properties it lacks). */
static int propstat_ok(const xmlNode *ps)
{
	const xmlNode *status = child(ps, "status");
	xmlChar *st = status ? xmlNodeGetContent(status) : NULL;
	int ok = st && strstr((const char *)st, " 200");
	xmlFree(st);
	return ok;
}

/* A pending collection of the walk. */
struct pending {
	char **keys;
	size_t len, cap;
};

static int pending_push(struct pending *p, const char *key)
{
	if (p->len == p->cap) {
		size_t cap = p->cap ? p->cap * 2 : 16;
		char **k = realloc(p->keys, cap * sizeof *k);
		if (!k)
			return MLX_ERR_NOMEM;
		p->keys = k;
		p->cap = cap;
	}
	if (!(p->keys[p->len] = strdup(key)))
		return MLX_ERR_NOMEM;
	p->len++;
	return MLX_OK;
}

/* The key an href names (an absolute path or URL, percent-encoded), or
 * NULL when it is not under base_path. Returns a new string. */
static char *href_key(const char *base_path, const char *href)
{
	const char *p = href;
	const char *scheme = strstr(p, "://");
	if (scheme && scheme < p + 8) {
		p = strchr(scheme + 3, '/');
		if (!p)
			return NULL;
	}
	char *path = strdup(p);
	if (!path)
		return NULL;
	mlx_sigv4_decode(path, strlen(path), path);
	size_t bl = strlen(base_path);
	char *key = NULL;
	if (strncmp(path, base_path, bl) == 0)
		key = strdup(path + bl);
	free(path);
	return key;
}

int mlx_webdav_parse_multistatus(const char *remote, const char *base_path, const char *dir, const char *xml,
                                 size_t len, mlx_webdav_entry_fn fn, void *ctx, struct mlx_err *err)
{
	xmlDoc *doc = len > 0 && len < INT32_MAX
	                  ? xmlReadMemory(xml, (int)len, "propfind.xml", NULL,
	                                  XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_NOERROR)
	                  : NULL;
	if (!doc)
		return mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: %s: the PROPFIND answer is not XML",
		                   remote, dir);
	int rc = MLX_OK;
	const xmlNode *root = xmlDocGetRootElement(doc);
	if (!root || !is_dav(root, "multistatus"))
		rc = mlx_err_set(err, MLX_ERR_IO, 0,
		                 "remote %s: %s: the PROPFIND answer is not a multistatus", remote, dir);
	size_t dir_len = strlen(dir);
	for (const xmlNode *r = root ? root->children : NULL; rc == MLX_OK && r; r = r->next) {
		if (!is_dav(r, "response"))
			continue;
		const xmlNode *href = child(r, "href");
		xmlChar *text = href ? xmlNodeGetContent(href) : NULL;
		char *key = text ? href_key(base_path, (const char *)text) : NULL;
		xmlFree(text);
		if (!key)
			continue;
		int collection = 0;
		uint64_t size = 0;
		for (const xmlNode *ps = r->children; ps; ps = ps->next) {
			if (!is_dav(ps, "propstat"))
				continue;
			if (!propstat_ok(ps))
				continue;
			const xmlNode *prop = child(ps, "prop");
			const xmlNode *type = child(prop, "resourcetype");
			if (type && child(type, "collection"))
				collection = 1;
			const xmlNode *length = child(prop, "getcontentlength");
			xmlChar *lt = length ? xmlNodeGetContent(length) : NULL;
			if (lt)
				size = strtoull((const char *)lt, NULL, 10);
			xmlFree(lt);
		}
		size_t kl = strlen(key);
		if (collection && kl > 0 && key[kl - 1] != '/') {
			char *k = realloc(key, kl + 2);
			if (!k) {
				free(key);
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
				break;
			}
			key = k;
			strcat(key, "/");
		}
		/* the collection itself, and anything a server names outside
		 * it or with a key that is not a key, are skipped */
		if (strcmp(key, dir) != 0 && strncmp(key, dir, dir_len) == 0 &&
		    mlx_remote_key_valid(key, collection))
			rc = fn(ctx, key, collection, size);
		free(key);
	}
	xmlFreeDoc(doc);
	return rc;
}

/* What a PROPFIND Depth 0 answer says of the resource it names: 1 a
 * file, 0 a collection, -1 it does not say. */
static int propfind_kind(const char *xml, size_t len)
{
	xmlDoc *doc = xml && len > 0 && len < INT32_MAX
	                  ? xmlReadMemory(xml, (int)len, "propfind.xml", NULL,
	                                  XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_NOERROR)
	                  : NULL;
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	int kind = -1;
	const xmlNode *r = root && is_dav(root, "multistatus") ? child(root, "response") : NULL;
	for (const xmlNode *ps = r ? r->children : NULL; ps && kind < 0; ps = ps->next) {
		if (!is_dav(ps, "propstat"))
			continue;
		const xmlNode *type = propstat_ok(ps) ? child(child(ps, "prop"), "resourcetype") : NULL;
		if (type)
			kind = child(type, "collection") ? 0 : 1;
	}
	xmlFreeDoc(doc);
	return kind;
}

/* Asks the server, once per instance, whether the remote's collection or
 * one above it is a file: nginx answers a PUT below a file with 500 and a
 * GET with 404, which would read as a server failure (retried, then "check
 * the server") or as missing objects. Runs only after such an answer, so
 * a remote that works pays no request for it. Walks up from the remote's
 * collection while the server says "not found". Returns MLX_ERR_INVALID
 * naming the file; else MLX_OK (collections, nothing there, or no clear
 * answer: the caller's failure stands). */
static int probe_base(struct webdav *w, struct mlx_err *err)
{
	if (w->probed)
		return MLX_OK;
	w->probed = true;
	char *url = strdup(w->base);
	if (!url)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	const char *const extra[] = {"Depth: 0", "Content-Type: application/xml; charset=utf-8", NULL};
	int rc = MLX_OK;
	for (;;) {
		struct mlx_remote_exchange x = propfind_exchange(url);
		struct mlx_err ignored;
		int prc = request(w, &x, "the remote's collection", extra, &ignored);
		int kind = prc == MLX_OK && x.status == 207 ? propfind_kind(x.resp, x.resp_len) : -1;
		bool absent = prc == MLX_OK && (x.status == 404 || x.status == 409);
		mlx_remote_exchange_free(&x);
		size_t len = strlen(url);
		if (kind == 1) {
			url[len - 1] = '\0'; /* a file's URL, without the collection's '/' */
			bool here = strncmp(url, w->base, len - 1) == 0 && w->base[len] == '\0';
			rc =
			    mlx_err_set(err, MLX_ERR_INVALID, 0,
			                "remote %s: %s is a file on the server, not a collection (a "
			                "directory)%s; point the remote at a collection: mlx remote add "
			                "--force %s URL",
			                w->c.remote, url, here ? "" : " above the remote's URL", w->c.remote);
			break;
		}
		if (!absent || len <= w->root_len + 1)
			break;
		/* the parent: "http://h/a/b/" -> "http://h/a/" */
		len--;
		while (len > w->root_len && url[len - 1] != '/')
			len--;
		if (len <= w->root_len)
			break;
		url[len] = '\0';
	}
	free(url);
	return rc;
}

/* The walk of a listing: files go to the caller, collections onto todo. */
struct walk {
	struct pending todo;
	mlx_remote_list_fn fn;
	void *ctx;
};

static int walk_entry(void *ctx, const char *key, int collection, uint64_t size)
{
	struct walk *w = ctx;
	if (collection)
		return pending_push(&w->todo, key);
	return w->fn(w->ctx, key, size);
}

static int webdav_list(void *state, const char *prefix, mlx_remote_list_fn fn, void *ctx, struct mlx_err *err)
{
	struct webdav *w = state;
	int rc = check_key(w, prefix, 1, err);
	if (rc != MLX_OK)
		return rc;
	if (prefix[strlen(prefix) - 1] != '/')
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: a listed prefix ends with '/': %s",
		                   w->c.remote, prefix);
	struct walk walk = {.fn = fn, .ctx = ctx};
	if (pending_push(&walk.todo, prefix) != MLX_OK)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	const char *const extra[] = {"Depth: 1", "Content-Type: application/xml; charset=utf-8", NULL};
	while (rc == MLX_OK && walk.todo.len > 0) {
		char *dir = walk.todo.keys[--walk.todo.len];
		char *url = key_url(w, dir);
		if (!url) {
			free(dir);
			rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			break;
		}
		struct mlx_remote_exchange x = propfind_exchange(url);
		rc = request(w, &x, dir, extra, err);
		if (rc == MLX_OK && x.status == 207) {
			rc =
			    mlx_webdav_parse_multistatus(w->c.remote, w->base_path, dir, x.resp ? x.resp : "",
			                                 x.resp_len, walk_entry, &walk, err);
			if (rc == MLX_ERR_NOMEM)
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		} else if (rc == MLX_OK && (x.status == 405 || x.status == 501)) {
			/* a plain HTTP server, or nginx without its dav_ext module:
			 * the same answer on every retry */
			rc = mlx_err_set(err, MLX_ERR_INVALID, 0,
			                 "remote %s: %s: the server does not answer WebDAV's PROPFIND (HTTP "
			                 "%ld): the URL must name a WebDAV collection (nginx: "
			                 "dav_ext_methods PROPFIND, docs/remotes.md)",
			                 w->c.remote, dir, x.status);
		} else if (rc == MLX_OK && x.status != 404) {
			rc = failed(w, &x, dir, err);
		} else if (rc == MLX_OK) {
			/* a missing prefix lists nothing, unless a file is where
			 * the remote's collection should be */
			rc = probe_base(w, err);
		}
		mlx_remote_exchange_free(&x);
		free(url);
		free(dir);
	}
	for (size_t i = 0; i < walk.todo.len; i++)
		free(walk.todo.keys[i]);
	free(walk.todo.keys);
	return rc;
}

const struct mlx_remote_backend mlx_remote_webdav = {
    .name = "webdav",
    .accepts = webdav_accepts,
    .open = webdav_open,
    .close = webdav_close,
    .stat = webdav_stat,
    .get = webdav_get,
    .put = webdav_put,
    .list = webdav_list,
    .remove = webdav_remove,
};
