/* remote_s3.c — a remote in an S3 bucket (s3://bucket/prefix URLs): GET,
 * HEAD, PUT, DELETE, ListObjectsV2 and multipart uploads, signed with
 * core/sigv4.c.
 *
 * A PUT is atomic in S3: readers see the old object or the new one. Above
 * multipart_threshold an object goes up in parts, and becomes visible only
 * when the upload is completed; a failed upload is aborted, and one that
 * was killed leaves parts that S3 never shows as a key (a bucket lifecycle
 * rule for incomplete uploads reclaims them). */
#include "remote_curl.h"
#include "remote_http.h"
#include "sigv4.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

struct s3 {
	struct mlx_remote_curl c;
	char *scheme_host; /* "https://s3.us-east-1.amazonaws.com", or with the bucket in front */
	char *host;        /* what Host says: "host[:port]" */
	char *bucket;
	char *prefix; /* "" or "some/prefix/" */
	bool path_style;
	char *region;
	char *access_key_id, *secret_access_key, *session_token;
	uint64_t threshold, part_size;
	bool publish_copy;        /* option publish=copy: upload under tmp/, then copy onto the key */
	char source[320];         /* where the credentials came from, for the hint after a 403 */
	char endpoint_shown[160]; /* "scheme://host[:port]" of the server, for messages */
};

static const char *const s3_options[] = {"publish",
                                         "endpoint",
                                         "region",
                                         "path_style",
                                         "access_key_id",
                                         "secret_access_key",
                                         "session_token",
                                         "profile",
                                         "multipart_threshold",
                                         "multipart_part_size",
                                         "ca_file",
                                         "insecure",
                                         "timeout_ms",
                                         NULL};

static int s3_accepts(const char *url)
{
	return strncmp(url, "s3://", 5) == 0;
}

static void wipe(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

static void s3_close(void *state)
{
	struct s3 *s = state;
	if (!s)
		return;
	mlx_remote_curl_close(&s->c);
	free(s->scheme_host);
	free(s->host);
	free(s->bucket);
	free(s->prefix);
	free(s->region);
	free(s->access_key_id);
	wipe(s->secret_access_key);
	wipe(s->session_token);
	free(s);
}

/* ---- configuration ------------------------------------------------------ */

/* Reads key in [section] of an AWS ini file (~/.aws/credentials or
 * ~/.aws/config). Returns a new string, or NULL. *found_section is set
 * when the section exists. */
static char *ini_get(const char *path, const char *section, const char *key, bool *found_section)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char line[4096], *value = NULL;
	bool in = false;
	while (!value && fgets(line, sizeof line, f)) {
		char *p = line, *end = line + strlen(line);
		while (end > p && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' || end[-1] == '\t'))
			*--end = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		if (*p == '#' || *p == ';' || !*p)
			continue;
		if (*p == '[') {
			char *close = strchr(p, ']');
			if (close) {
				*close = '\0';
				char *name = p + 1;
				while (*name == ' ')
					name++;
				in = strcmp(name, section) == 0;
				if (in && found_section)
					*found_section = true;
			}
			continue;
		}
		char *eq = strchr(p, '=');
		if (!in || !eq)
			continue;
		char *k = p, *kend = eq;
		while (kend > k && (kend[-1] == ' ' || kend[-1] == '\t'))
			kend--;
		*kend = '\0';
		if (strcmp(k, key) != 0)
			continue;
		char *v = eq + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		value = strdup(v);
	}
	fclose(f);
	return value;
}

static char *aws_file(const char *env, const char *name)
{
	const char *set = getenv(env);
	if (set && *set)
		return strdup(set);
	const char *home = getenv("HOME");
	if (!home)
		return NULL;
	size_t n = strlen(home) + strlen(name) + 8;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/.aws/%s", home, name);
	return p;
}

static int dup_into(char **dst, const char *src, struct mlx_err *err)
{
	if (!src)
		return MLX_OK;
	if (!(*dst = strdup(src)))
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	return MLX_OK;
}

/* Credentials from the options, else the AWS environment variables, else
 * the profile (option profile, AWS_PROFILE or "default") in
 * ~/.aws/credentials or ~/.aws/config. */
static int find_credentials(struct s3 *s, const struct mlx_remote_config *config, struct mlx_err *err)
{
	const char *id = mlx_remote_option(config, "access_key_id");
	const char *secret = mlx_remote_option(config, "secret_access_key");
	if (!id != !secret)
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: options access_key_id and secret_access_key go together",
		                   config->name);
	if (id) {
		char var[96];
		mlx_remote_env_name(var, sizeof var, config->name, "access_key_id");
		snprintf(s->source, sizeof s->source,
		         "the options of remote %.64s: %s and the like, else remotes.%.64s in "
		         ".mlx/config.local.lua",
		         config->name, var, config->name);
		int rc = dup_into(&s->access_key_id, id, err);
		if (rc == MLX_OK)
			rc = dup_into(&s->secret_access_key, secret, err);
		if (rc == MLX_OK)
			rc = dup_into(&s->session_token, mlx_remote_option(config, "session_token"), err);
		return rc;
	}
	const char *profile_opt = mlx_remote_option(config, "profile");
	const char *env_id = getenv("AWS_ACCESS_KEY_ID"), *env_secret = getenv("AWS_SECRET_ACCESS_KEY");
	if (!profile_opt && env_id && *env_id && env_secret && *env_secret) {
		snprintf(s->source, sizeof s->source, "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY");
		int rc = dup_into(&s->access_key_id, env_id, err);
		if (rc == MLX_OK)
			rc = dup_into(&s->secret_access_key, env_secret, err);
		const char *token = getenv("AWS_SESSION_TOKEN");
		if (rc == MLX_OK && token && *token)
			rc = dup_into(&s->session_token, token, err);
		return rc;
	}
	const char *profile = profile_opt ? profile_opt : getenv("AWS_PROFILE");
	bool named = profile && *profile;
	if (!named)
		profile = "default";
	char *creds = aws_file("AWS_SHARED_CREDENTIALS_FILE", "credentials");
	char *conf = aws_file("AWS_CONFIG_FILE", "config");
	char section[300];
	snprintf(section, sizeof section, "profile %s", profile);
	bool found = false;
	const char *conf_section = strcmp(profile, "default") == 0 ? "default" : section;
	if (creds) {
		s->access_key_id = ini_get(creds, profile, "aws_access_key_id", &found);
		s->secret_access_key = ini_get(creds, profile, "aws_secret_access_key", &found);
		s->session_token = ini_get(creds, profile, "aws_session_token", &found);
	}
	if (conf && !s->access_key_id) {
		s->access_key_id = ini_get(conf, conf_section, "aws_access_key_id", &found);
		wipe(s->secret_access_key);
		s->secret_access_key = ini_get(conf, conf_section, "aws_secret_access_key", &found);
		wipe(s->session_token);
		s->session_token = ini_get(conf, conf_section, "aws_session_token", &found);
	}
	if (conf && !s->region && !mlx_remote_option(config, "region"))
		s->region = ini_get(conf, conf_section, "region", &found);
	free(creds);
	free(conf);
	snprintf(s->source, sizeof s->source,
	         "the AWS profile '%.200s' in ~/.aws/credentials or ~/.aws/config", profile);
	if (named && !found)
		return mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "remote %s: the AWS profile '%s' is in neither ~/.aws/credentials nor ~/.aws/config",
		    config->name, profile);
	/* A profile with one half of a key pair is a profile to complete, not
	 * a search that found nothing. */
	if ((s->access_key_id == NULL) != (s->secret_access_key == NULL)) {
		const char *has = s->access_key_id ? "aws_access_key_id" : "aws_secret_access_key";
		const char *lacks = s->access_key_id ? "aws_secret_access_key" : "aws_access_key_id";
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: the AWS profile '%s' has %s but no %s: add it to the profile"
		                   " (~/.aws/credentials)",
		                   config->name, profile, has, lacks);
	}
	if (!s->access_key_id || !s->secret_access_key) {
		char var[96], var2[96];
		mlx_remote_env_name(var, sizeof var, config->name, "access_key_id");
		mlx_remote_env_name(var2, sizeof var2, config->name, "secret_access_key");
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: no S3 credentials: set access_key_id and secret_access_key in "
		                   ".mlx/config.local.lua (or %s and %s), or AWS_ACCESS_KEY_ID and "
		                   "AWS_SECRET_ACCESS_KEY, or a profile in ~/.aws/credentials (AWS_PROFILE)",
		                   config->name, var, var2);
	}
	return MLX_OK;
}

static bool valid_bucket(const char *b, size_t n)
{
	if (n < 3 || n > 63)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= '0' && b[i] <= '9') || b[i] == '-' ||
		      b[i] == '.'))
			return false;
	return b[0] != '-' && b[0] != '.' && b[n - 1] != '-' && b[n - 1] != '.';
}

static int check_key(const struct s3 *s, const char *key, bool dir, struct mlx_err *err)
{
	if (!mlx_remote_key_valid(key, dir))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: not a valid key: '%.200s'",
		                   s->c.remote, key);
	return MLX_OK;
}

static int set_endpoint(struct s3 *s, const struct mlx_remote_config *config, struct mlx_err *err)
{
	const char *endpoint = mlx_remote_option(config, "endpoint");
	if (!endpoint || !*endpoint)
		endpoint = getenv("AWS_ENDPOINT_URL_S3");
	if (!endpoint || !*endpoint)
		endpoint = getenv("AWS_ENDPOINT_URL");
	bool custom = endpoint && *endpoint;
	char aws[128];
	if (!custom) {
		snprintf(aws, sizeof aws, "https://s3.%s.amazonaws.com", s->region);
		endpoint = aws;
	}
	int rc = mlx_remote_option_bool(config, "path_style", custom, &s->path_style, err);
	if (rc != MLX_OK)
		return rc;
	const char *sep = strstr(endpoint, "://");
	if (!sep || (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: option endpoint must be an http:// or https:// URL, not '%s'",
		                   config->name, endpoint);
	const char *host = sep + 3;
	size_t host_len = strcspn(host, "/?#");
	if (host_len == 0 || memchr(host, '@', host_len) || host[host_len] == '?' || host[host_len] == '#' ||
	    (host[host_len] == '/' && host[host_len + 1] != '\0'))
		return mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "remote %s: option endpoint is scheme://host[:port], without a path or credentials",
		    config->name);
	size_t scheme_len = (size_t)(host - endpoint);
	snprintf(s->endpoint_shown, sizeof s->endpoint_shown, "%.*s%.*s", (int)scheme_len, endpoint,
	         (int)host_len, host);
	size_t n = scheme_len + strlen(s->bucket) + host_len + 2;
	s->scheme_host = malloc(n);
	s->host = malloc(strlen(s->bucket) + host_len + 2);
	if (!s->scheme_host || !s->host)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	if (s->path_style)
		snprintf(s->host, strlen(s->bucket) + host_len + 2, "%.*s", (int)host_len, host);
	else
		snprintf(s->host, strlen(s->bucket) + host_len + 2, "%s.%.*s", s->bucket, (int)host_len,
		         host);
	snprintf(s->scheme_host, n, "%.*s%s", (int)scheme_len, endpoint, s->host);
	return MLX_OK;
}

static int s3_open(const struct mlx_remote_config *config, void **state, struct mlx_err *err)
{
	*state = NULL;
	if (!s3_accepts(config->url))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: not an s3:// URL", config->name);
	int rc = mlx_remote_options_check(config, "S3", s3_options, err);
	if (rc != MLX_OK)
		return rc;
	const char *b = config->url + 5;
	size_t blen = strcspn(b, "/");
	if (!valid_bucket(b, blen))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: '%.*s' is not an S3 bucket name (3-63 of a-z, 0-9, '.', '-'): "
		                   "the URL is s3://bucket/prefix",
		                   config->name, (int)blen, b);
	const char *prefix = b + blen;
	while (*prefix == '/') /* "s3://bucket//p" is "s3://bucket/p" */
		prefix++;
	size_t plen = strlen(prefix);
	while (plen > 0 && prefix[plen - 1] == '/')
		plen--;
	struct s3 *s = calloc(1, sizeof *s);
	if (!s)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	s->bucket = strndup(b, blen);
	s->prefix = malloc(plen + 2);
	if (!s->bucket || !s->prefix) {
		s3_close(s);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	snprintf(s->prefix, plen + 2, "%.*s%s", (int)plen, prefix, plen ? "/" : "");
	if (plen && !mlx_remote_key_valid(s->prefix, true)) {
		s3_close(s);
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "remote %s: the prefix of %s is not a valid key prefix", config->name,
		                   config->url);
	}
	rc = find_credentials(s, config, err);
	const char *region = mlx_remote_option(config, "region");
	if (!region || !*region)
		region = getenv("AWS_REGION");
	if (!region || !*region)
		region = getenv("AWS_DEFAULT_REGION");
	if (rc == MLX_OK && region && *region) {
		free(s->region);
		s->region = NULL;
		rc = dup_into(&s->region, region, err);
	}
	if (rc == MLX_OK && !s->region)
		rc = dup_into(&s->region, "us-east-1", err);
	if (rc == MLX_OK)
		rc = set_endpoint(s, config, err);
	if (rc == MLX_OK)
		rc = mlx_remote_option_u64(config, "multipart_threshold", 64ull << 20, &s->threshold, err);
	if (rc == MLX_OK)
		rc = mlx_remote_option_u64(config, "multipart_part_size", 16ull << 20, &s->part_size, err);
	if (rc == MLX_OK && (s->part_size < (5ull << 20) || s->part_size > (5ull << 30)))
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0,
		                 "remote %s: option multipart_part_size must be 5 MiB to 5 GiB (S3's limits)",
		                 config->name);
	const char *publish = mlx_remote_option(config, "publish");
	if (rc == MLX_OK && publish && strcmp(publish, "put") != 0 && strcmp(publish, "copy") != 0)
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0,
		                 "remote %s: option publish must be put or copy, not '%s'", config->name,
		                 publish);
	s->publish_copy = publish && strcmp(publish, "copy") == 0;
	if (rc == MLX_OK)
		rc = mlx_remote_curl_open(&s->c, config, err);
	if (rc != MLX_OK) {
		s3_close(s);
		return rc;
	}
	*state = s;
	return MLX_OK;
}

/* ---- requests ------------------------------------------------------------ */

struct s3_call {
	const char *method;
	const char *key;          /* the object's key under the prefix, or NULL for the bucket */
	const char *query;        /* canonical: sorted and encoded, or NULL */
	const char *payload_hash; /* NULL: UNSIGNED-PAYLOAD */
	const char *content_type; /* or NULL */
	const char *copy_source;  /* CopyObject: the source's key under the prefix, or NULL */
	const char *what;         /* for messages */
};

static int append(struct curl_slist **list, const char *line)
{
	struct curl_slist *next = curl_slist_append(*list, line);
	if (!next)
		return MLX_ERR_NOMEM;
	*list = next;
	return MLX_OK;
}

/* Signs and performs one request; x holds the body and out_fd. */
static int s3_perform(struct s3 *s, const struct s3_call *call, struct mlx_remote_exchange *x,
                      struct mlx_err *err)
{
	size_t n = strlen(s->bucket) + strlen(s->prefix) + (call->key ? strlen(call->key) : 0) + 4;
	char *path = malloc(n);
	if (!path)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	if (s->path_style)
		snprintf(path, n, "/%s/%s%s", s->bucket, call->key ? s->prefix : "",
		         call->key ? call->key : "");
	else
		snprintf(path, n, "/%s%s", call->key ? s->prefix : "", call->key ? call->key : "");
	char date[17];
	mlx_sigv4_date((long long)time(NULL), date);
	const char *hash = call->payload_hash ? call->payload_hash : "UNSIGNED-PAYLOAD";
	char host_h[300], hash_h[100], date_h[40], type_h[200];
	snprintf(host_h, sizeof host_h, "Host:%s", s->host);
	snprintf(hash_h, sizeof hash_h, "X-Amz-Content-Sha256:%s", hash);
	snprintf(date_h, sizeof date_h, "X-Amz-Date:%s", date);
	snprintf(type_h, sizeof type_h, "Content-Type:%s", call->content_type ? call->content_type : "");
	char *token_h = NULL, *copy_h = NULL;
	const char *signed_lines[6] = {host_h, hash_h, date_h};
	size_t nsigned = 3;
	if (call->content_type)
		signed_lines[nsigned++] = type_h;
	if (call->copy_source) {
		/* x-amz-* headers are signed, as S3 requires */
		size_t cn = strlen(s->bucket) + strlen(s->prefix) + strlen(call->copy_source) + 4;
		char *source = malloc(cn), *enc = NULL;
		if (source) {
			snprintf(source, cn, "/%s/%s%s", s->bucket, s->prefix, call->copy_source);
			enc = mlx_sigv4_encode(source, 1);
		}
		free(source);
		if (enc && (copy_h = malloc(strlen(enc) + 24)))
			sprintf(copy_h, "X-Amz-Copy-Source:%s", enc);
		free(enc);
		if (!copy_h) {
			free(path);
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		signed_lines[nsigned++] = copy_h;
	}
	if (s->session_token) {
		size_t tn = strlen(s->session_token) + 32;
		if (!(token_h = malloc(tn))) {
			free(copy_h);
			free(path);
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		snprintf(token_h, tn, "X-Amz-Security-Token:%s", s->session_token);
		signed_lines[nsigned++] = token_h;
	}
	struct mlx_sigv4_request req = {
	    .method = call->method,
	    .path = path,
	    .query = call->query,
	    .headers = signed_lines,
	    .nheaders = nsigned,
	    .payload_hash = hash,
	    .amz_date = date,
	};
	struct mlx_sigv4_scope scope = {s->access_key_id, s->secret_access_key, s->region, "s3"};
	char *authorization = NULL, *encoded = mlx_sigv4_encode(path, 1), *url = NULL, *auth_h = NULL;
	int rc = encoded ? mlx_sigv4_authorization(&req, &scope, &authorization, err)
	                 : mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	struct curl_slist *headers = NULL;
	if (rc == MLX_OK) {
		size_t un =
		    strlen(s->scheme_host) + strlen(encoded) + (call->query ? strlen(call->query) : 0) + 2;
		url = malloc(un);
		auth_h = malloc(strlen(authorization) + 32);
		if (!url || !auth_h) {
			rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		} else {
			snprintf(url, un, "%s%s%s%s", s->scheme_host, encoded, call->query ? "?" : "",
			         call->query ? call->query : "");
			sprintf(auth_h, "Authorization: %s", authorization);
			for (size_t i = 0; rc == MLX_OK && i < nsigned; i++)
				rc = append(&headers, signed_lines[i]);
			if (rc == MLX_OK)
				rc = append(&headers, auth_h);
			if (rc != MLX_OK)
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
	}
	if (rc == MLX_OK) {
		x->url = url;
		x->method = call->method;
		x->headers = headers;
		rc = mlx_remote_curl_perform(&s->c, x, call->what, err);
		x->headers = NULL;
		x->url = NULL;
	}
	for (struct curl_slist *l = headers; l; l = l->next)
		OPENSSL_cleanse(l->data, strlen(l->data));
	curl_slist_free_all(headers);
	wipe(token_h);
	free(copy_h);
	free(authorization);
	free(auth_h);
	free(url);
	free(encoded);
	free(path);
	return rc;
}

static bool named(const xmlNode *n, const char *name)
{
	return n && n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0;
}

static const xmlNode *child(const xmlNode *n, const char *name)
{
	for (const xmlNode *c = n ? n->children : NULL; c; c = c->next)
		if (named(c, name))
			return c;
	return NULL;
}

/* The text of n's child name, copied into out (size n); "" if absent. */
static void child_text(const xmlNode *n, const char *name, char *out, size_t size)
{
	out[0] = '\0';
	const xmlNode *c = child(n, name);
	xmlChar *t = c ? xmlNodeGetContent(c) : NULL;
	if (t)
		snprintf(out, size, "%s", (const char *)t);
	xmlFree(t);
}

static xmlDoc *parse_xml(const char *text, size_t len)
{
	if (!text || len == 0)
		return NULL;
	return xmlReadMemory(text, (int)len, "s3.xml", NULL,
	                     XML_PARSE_NONET | XML_PARSE_NOWARNING | XML_PARSE_NOERROR);
}

/* Copies the Code of an S3 <Error> answer into code (if not NULL).
 * Returns whether the answer is one. */
static bool s3_error_code(const struct mlx_remote_exchange *x, char *code, size_t size)
{
	xmlDoc *doc = parse_xml(x->resp, x->resp_len);
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	bool is_error = named(root, "Error");
	if (is_error && code)
		child_text(root, "Code", code, size);
	xmlFreeDoc(doc);
	return is_error;
}

/* Turns a failed response into the interface's failure, reading S3's
 * error code from the body when there is one. */
static int s3_failed(struct s3 *s, const struct mlx_remote_exchange *x, const char *what, struct mlx_err *err)
{
	char code[128] = "";
	s3_error_code(x, code, sizeof code);
	if (strcmp(code, "NoSuchBucket") == 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: the bucket '%s' does not exist",
		                   s->c.remote, s->bucket);
	if (strcmp(code, "PermanentRedirect") == 0 || strcmp(code, "AuthorizationHeaderMalformed") == 0 ||
	    strcmp(code, "IllegalLocationConstraintException") == 0)
		return mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "remote %s: %s: the bucket '%s' is not in region %s (%s): set the option region",
		    s->c.remote, what, s->bucket, s->region, code);
	/* Names the credential and where this remote took it from. */
	const char *check = "the credentials (access_key_id and secret_access_key) and the bucket's policy";
	if (strcmp(code, "InvalidAccessKeyId") == 0)
		check = "access_key_id";
	else if (strcmp(code, "SignatureDoesNotMatch") == 0)
		check = "secret_access_key and the clock";
	else if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidToken") == 0)
		check = "session_token";
	char hint[480];
	snprintf(hint, sizeof hint, "check %s (from %s)", check, s->source);
	return mlx_remote_curl_status(&s->c, x, what, code[0] ? code : NULL, hint, err);
}

static bool ok_status(long status)
{
	return status >= 200 && status < 300;
}

static int s3_stat(void *state, const char *key, uint64_t *size, struct mlx_err *err)
{
	struct s3 *s = state;
	int rc = check_key(s, key, false, err);
	if (rc != MLX_OK)
		return rc;
	struct mlx_remote_exchange x = {.body_fd = -1, .out_fd = -1};
	struct s3_call call = {.method = "HEAD", .key = key, .payload_hash = EMPTY_SHA256, .what = key};
	rc = s3_perform(s, &call, &x, err);
	if (rc == MLX_OK && !ok_status(x.status))
		rc = s3_failed(s, &x, key, err);
	if (rc == MLX_OK && x.content_length < 0)
		rc = mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: %s: the server did not say its size",
		                 s->c.remote, key);
	if (rc == MLX_OK)
		*size = (uint64_t)x.content_length;
	mlx_remote_exchange_free(&x);
	return rc;
}

static int s3_get(void *state, const char *key, int fd, struct mlx_err *err)
{
	struct s3 *s = state;
	int rc = check_key(s, key, false, err);
	if (rc != MLX_OK)
		return rc;
	struct mlx_remote_exchange x = {.body_fd = -1, .out_fd = fd};
	struct s3_call call = {.method = "GET", .key = key, .payload_hash = EMPTY_SHA256, .what = key};
	rc = s3_perform(s, &call, &x, err);
	if (rc == MLX_OK && !ok_status(x.status))
		rc = s3_failed(s, &x, key, err);
	mlx_remote_exchange_free(&x);
	return rc;
}

static int s3_remove(void *state, const char *key, struct mlx_err *err)
{
	struct s3 *s = state;
	int rc = check_key(s, key, false, err);
	if (rc != MLX_OK)
		return rc;
	struct mlx_remote_exchange x = {.body_fd = -1, .out_fd = -1};
	struct s3_call call = {.method = "DELETE", .key = key, .payload_hash = EMPTY_SHA256, .what = key};
	rc = s3_perform(s, &call, &x, err);
	if (rc == MLX_OK && !ok_status(x.status) && x.status != 404)
		rc = s3_failed(s, &x, key, err);
	mlx_remote_exchange_free(&x);
	return rc;
}

/* ---- put: one PUT, or a multipart upload ---------------------------------- */

static int s3_remove(void *state, const char *key, struct mlx_err *err);

static int put_object(struct s3 *s, const char *key, int fd, uint64_t size, struct mlx_err *err)
{
	struct mlx_remote_exchange x = {.body_fd = fd, .body_size = size, .out_fd = -1};
	struct s3_call call = {
	    .method = "PUT", .key = key, .content_type = "application/octet-stream", .what = key};
	int rc = s3_perform(s, &call, &x, err);
	if (rc == MLX_OK && !ok_status(x.status))
		rc = s3_failed(s, &x, key, err);
	mlx_remote_exchange_free(&x);
	return rc;
}

/* CopyObject from the key tmp onto key: done by the server, whole,
 * whatever becomes of the client meanwhile. */
static int copy_object(struct s3 *s, const char *tmp, const char *key, struct mlx_err *err)
{
	struct mlx_remote_exchange x = {.body_fd = -1, .out_fd = -1};
	struct s3_call call = {
	    .method = "PUT", .key = key, .payload_hash = EMPTY_SHA256, .copy_source = tmp, .what = key};
	int rc = s3_perform(s, &call, &x, err);
	if (rc == MLX_OK && !ok_status(x.status))
		rc = s3_failed(s, &x, key, err);
	/* S3 may answer 200 and report the failure in the body */
	if (rc == MLX_OK) {
		xmlDoc *doc = parse_xml(x.resp, x.resp_len);
		const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (!named(root, "CopyObjectResult"))
			rc = mlx_err_set(err, MLX_ERR_IO, 0,
			                 "remote %s: %s: the server did not copy the upload", s->c.remote,
			                 key);
		xmlFreeDoc(doc);
	}
	mlx_remote_exchange_free(&x);
	return rc;
}

/* One request, or with publish=copy three: a PUT to tmp/, a copy onto the
 * key and a DELETE of the temp. For servers that write a PUT in place
 * (s3rver), where a killed upload would leave part of an object under its
 * key; S3 itself shows a PUT only once it is whole. Each temp key has a
 * folder of its own (tmp/RANDOM/NAME): s3rver removes a folder that a
 * DELETE leaves empty, and one shared by uploads in flight could vanish
 * under a concurrent PUT, which crashes s3rver. */
static int put_single(struct s3 *s, const char *key, int fd, uint64_t size, struct mlx_err *err)
{
	if (!s->publish_copy)
		return put_object(s, key, fd, size, err);
	unsigned char rnd[8];
	if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
		return mlx_err_sys(err, errno, "remote %s: cannot get random bytes", s->c.remote);
	const char *base = strrchr(key, '/');
	base = base ? base + 1 : key;
	char tmp[320];
	snprintf(tmp, sizeof tmp, "tmp/%02x%02x%02x%02x%02x%02x%02x%02x/%.200s", rnd[0], rnd[1], rnd[2],
	         rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], base);
	int rc = put_object(s, tmp, fd, size, err);
	if (rc == MLX_OK)
		rc = copy_object(s, tmp, key, err);
	struct mlx_err ignored;
	s3_remove(s, tmp, &ignored);
	return rc;
}

static int sha256_hex(const char *s, size_t n, char out[65], struct mlx_err *err)
{
	unsigned char md[32];
	unsigned int len = 0;
	if (!EVP_Digest(s, n, md, &len, EVP_sha256(), NULL))
		return mlx_err_set(err, MLX_ERR_CRYPTO, 0, "SHA-256 failed");
	for (int i = 0; i < 32; i++)
		sprintf(out + 2 * i, "%02x", md[i]);
	return MLX_OK;
}

/* A growing text for the CompleteMultipartUpload body. */
struct body {
	char *s;
	size_t len, cap;
};

static int body_add(struct body *b, const char *text)
{
	size_t n = strlen(text);
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (b->len + n + 1 > cap)
			cap *= 2;
		char *p = realloc(b->s, cap);
		if (!p)
			return MLX_ERR_NOMEM;
		b->s = p;
		b->cap = cap;
	}
	memcpy(b->s + b->len, text, n + 1);
	b->len += n;
	return MLX_OK;
}

static void abort_upload(struct s3 *s, const char *key, const char *upload_id)
{
	char *id = mlx_sigv4_encode(upload_id, 0);
	if (!id)
		return;
	size_t n = strlen(id) + 16;
	char *query = malloc(n);
	if (query) {
		snprintf(query, n, "uploadId=%s", id);
		struct mlx_remote_exchange x = {.body_fd = -1, .out_fd = -1};
		struct s3_call call = {.method = "DELETE",
		                       .key = key,
		                       .query = query,
		                       .payload_hash = EMPTY_SHA256,
		                       .what = key};
		struct mlx_err ignored;
		s3_perform(s, &call, &x, &ignored);
		mlx_remote_exchange_free(&x);
	}
	free(query);
	free(id);
}

static int put_multipart(struct s3 *s, const char *key, int fd, uint64_t size, struct mlx_err *err)
{
	/* S3 takes at most 10,000 parts: larger objects get larger parts. */
	uint64_t part = s->part_size;
	if ((size + part - 1) / part > 10000)
		part = ((size / 10000 + (1u << 20)) >> 20) << 20;
	uint64_t nparts = size == 0 ? 1 : (size + part - 1) / part;

	struct mlx_remote_exchange x = {.body_fd = -1, .out_fd = -1};
	struct s3_call call = {.method = "POST",
	                       .key = key,
	                       .query = "uploads=",
	                       .payload_hash = EMPTY_SHA256,
	                       .content_type = "application/octet-stream",
	                       .what = key};
	int rc = s3_perform(s, &call, &x, err);
	if (rc == MLX_OK && !ok_status(x.status))
		rc = s3_failed(s, &x, key, err);
	char upload_id[1024] = "";
	if (rc == MLX_OK) {
		xmlDoc *doc = parse_xml(x.resp, x.resp_len);
		const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
		if (named(root, "InitiateMultipartUploadResult"))
			child_text(root, "UploadId", upload_id, sizeof upload_id);
		xmlFreeDoc(doc);
		if (!upload_id[0])
			rc = mlx_err_set(err, MLX_ERR_IO, 0,
			                 "remote %s: %s: the server started no multipart upload", s->c.remote,
			                 key);
	}
	mlx_remote_exchange_free(&x);
	if (rc != MLX_OK)
		return rc;
	char *id = mlx_sigv4_encode(upload_id, 0);
	struct body done = {0};
	if (!id ||
	    body_add(&done, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"))
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	size_t qn = (id ? strlen(id) : 0) + 64;
	char *query = malloc(qn);
	if (rc == MLX_OK && !query)
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (uint64_t i = 0; rc == MLX_OK && i < nparts; i++) {
		uint64_t off = i * part, len = size - off < part ? size - off : part;
		snprintf(query, qn, "partNumber=%" PRIu64 "&uploadId=%s", i + 1, id);
		char what[400];
		snprintf(what, sizeof what, "%.300s (part %" PRIu64 " of %" PRIu64 ")", key, i + 1, nparts);
		struct mlx_remote_exchange px = {
		    .body_fd = fd, .body_offset = off, .body_size = len, .out_fd = -1};
		struct s3_call pc = {.method = "PUT", .key = key, .query = query, .what = what};
		rc = s3_perform(s, &pc, &px, err);
		if (rc == MLX_OK && !ok_status(px.status))
			rc = s3_failed(s, &px, what, err);
		if (rc == MLX_OK && !px.etag[0])
			rc = mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: %s: the server returned no ETag",
			                 s->c.remote, what);
		if (rc == MLX_OK) {
			char line[300];
			snprintf(line, sizeof line,
			         "<Part><PartNumber>%" PRIu64 "</PartNumber><ETag>%s</ETag></Part>", i + 1,
			         px.etag);
			if (body_add(&done, line) != MLX_OK)
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		mlx_remote_exchange_free(&px);
	}
	if (rc == MLX_OK && body_add(&done, "</CompleteMultipartUpload>") != MLX_OK)
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	char hash[65];
	if (rc == MLX_OK)
		rc = sha256_hex(done.s, done.len, hash, err);
	if (rc == MLX_OK) {
		snprintf(query, qn, "uploadId=%s", id);
		struct mlx_remote_exchange cx = {
		    .body = done.s, .body_len = done.len, .body_fd = -1, .out_fd = -1};
		struct s3_call cc = {.method = "POST",
		                     .key = key,
		                     .query = query,
		                     .payload_hash = hash,
		                     .content_type = "application/xml",
		                     .what = key};
		rc = s3_perform(s, &cc, &cx, err);
		if (rc == MLX_OK && !ok_status(cx.status))
			rc = s3_failed(s, &cx, key, err);
		/* S3 may answer 200 and report the failure in the body */
		if (rc == MLX_OK) {
			xmlDoc *doc = parse_xml(cx.resp, cx.resp_len);
			const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
			if (!named(root, "CompleteMultipartUploadResult")) {
				char code[128] = "";
				if (named(root, "Error"))
					child_text(root, "Code", code, sizeof code);
				rc = mlx_err_set(
				    err, MLX_ERR_IO, 0,
				    "remote %s: %s: completing the multipart upload failed%s%s%s",
				    s->c.remote, key, code[0] ? " (" : "", code, code[0] ? ")" : "");
			}
			xmlFreeDoc(doc);
		}
		mlx_remote_exchange_free(&cx);
	}
	if (rc != MLX_OK)
		abort_upload(s, key, upload_id);
	free(done.s);
	free(query);
	free(id);
	return rc;
}

static int s3_put(void *state, const char *key, const char *path, uint64_t size, struct mlx_err *err)
{
	struct s3 *s = state;
	int rc = check_key(s, key, false, err);
	if (rc != MLX_OK)
		return rc;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlx_err_sys(err, errno, "remote %s: cannot read %s", s->c.remote, path);
	if (size > s->threshold)
		rc = put_multipart(s, key, fd, size, err);
	else
		rc = put_single(s, key, fd, size, err);
	close(fd);
	return rc;
}

/* ---- list: ListObjectsV2, page after page ---------------------------------- */

int mlx_s3_parse_listing(const char *remote, const char *prefix, const char *xml, size_t len,
                         mlx_remote_list_fn fn, void *ctx, char **token, struct mlx_err *err)
{
	*token = NULL;
	xmlDoc *doc = parse_xml(xml, len);
	const xmlNode *root = doc ? xmlDocGetRootElement(doc) : NULL;
	if (!named(root, "ListBucketResult")) {
		xmlFreeDoc(doc);
		return mlx_err_set(err, MLX_ERR_IO, 0, "remote %s: the listing is not a ListBucketResult",
		                   remote);
	}
	int rc = MLX_OK;
	size_t plen = strlen(prefix);
	for (const xmlNode *c = root->children; rc == MLX_OK && c; c = c->next) {
		if (!named(c, "Contents"))
			continue;
		const xmlNode *k = child(c, "Key");
		xmlChar *key = k ? xmlNodeGetContent(k) : NULL;
		char size_text[32];
		child_text(c, "Size", size_text, sizeof size_text);
		/* keys outside the prefix, or that are not keys, are skipped */
		if (key && strncmp((const char *)key, prefix, plen) == 0 &&
		    mlx_remote_key_valid((const char *)key + plen, false))
			rc = fn(ctx, (const char *)key + plen, strtoull(size_text, NULL, 10));
		xmlFree(key);
	}
	char truncated[16], next[1024];
	child_text(root, "IsTruncated", truncated, sizeof truncated);
	child_text(root, "NextContinuationToken", next, sizeof next);
	xmlFreeDoc(doc);
	if (rc == MLX_OK && strcmp(truncated, "true") == 0) {
		if (!next[0])
			return mlx_err_set(err, MLX_ERR_IO, 0,
			                   "remote %s: a truncated listing without a continuation token",
			                   remote);
		if (!(*token = strdup(next)))
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	return rc;
}

static int s3_list(void *state, const char *prefix, mlx_remote_list_fn fn, void *ctx, struct mlx_err *err)
{
	struct s3 *s = state;
	int rc = check_key(s, prefix, true, err);
	if (rc != MLX_OK)
		return rc;
	if (prefix[strlen(prefix) - 1] != '/')
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "remote %s: a listed prefix ends with '/': %s",
		                   s->c.remote, prefix);
	size_t fn_len = strlen(s->prefix) + strlen(prefix) + 1;
	char *full = malloc(fn_len);
	if (!full)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	snprintf(full, fn_len, "%s%s", s->prefix, prefix);
	char *enc_prefix = mlx_sigv4_encode(full, 0), *token = NULL;
	free(full);
	if (!enc_prefix)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	do {
		char *enc_token = token ? mlx_sigv4_encode(token, 0) : NULL;
		size_t qn = strlen(enc_prefix) + (enc_token ? strlen(enc_token) : 0) + 64;
		char *query = malloc(qn);
		if (!query || (token && !enc_token)) {
			free(query);
			free(enc_token);
			rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			break;
		}
		/* in canonical order, so the URL is what was signed */
		snprintf(query, qn, "%s%s%slist-type=2&prefix=%s", enc_token ? "continuation-token=" : "",
		         enc_token ? enc_token : "", enc_token ? "&" : "", enc_prefix);
		struct mlx_remote_exchange x = {.body_fd = -1, .out_fd = -1};
		struct s3_call call = {
		    .method = "GET", .query = query, .payload_hash = EMPTY_SHA256, .what = prefix};
		rc = s3_perform(s, &call, &x, err);
		/* S3 answers a listing of a bucket that is not there with the
		 * error NoSuchBucket; a bare 404 comes from a server that is not
		 * S3 (or not at that path): a retry will not change it. */
		if (rc == MLX_OK && x.status == 404 && !s3_error_code(&x, NULL, 0))
			rc = mlx_err_set(
			    err, MLX_ERR_INVALID, 0,
			    "remote %s: %s: the server answered a listing of bucket '%s' with HTTP "
			    "404 and no S3 error: check the option endpoint (%s) and path_style",
			    s->c.remote, prefix, s->bucket, s->endpoint_shown);
		else if (rc == MLX_OK && !ok_status(x.status))
			rc = s3_failed(s, &x, prefix, err);
		free(token);
		token = NULL;
		if (rc == MLX_OK)
			rc = mlx_s3_parse_listing(s->c.remote, s->prefix, x.resp, x.resp_len, fn, ctx, &token,
			                          err);
		mlx_remote_exchange_free(&x);
		free(query);
		free(enc_token);
	} while (rc == MLX_OK && token);
	free(token);
	free(enc_prefix);
	return rc;
}

const struct mlx_remote_backend mlx_remote_s3 = {
    .name = "s3",
    .accepts = s3_accepts,
    .open = s3_open,
    .close = s3_close,
    .stat = s3_stat,
    .get = s3_get,
    .put = s3_put,
    .list = s3_list,
    .remove = s3_remove,
};
