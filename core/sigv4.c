/* sigv4.c — AWS Signature Version 4 over OpenSSL's HMAC and SHA-256. */
#include "sigv4.h"

#include <errno.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* A growing string; ok turns false on the first failed allocation, so
 * callers check once at the end. */
struct text {
	char *s;
	size_t len, cap;
	bool ok;
};

static void text_add(struct text *t, const char *s, size_t n)
{
	if (!t->ok)
		return;
	if (t->len + n + 1 > t->cap) {
		size_t cap = t->cap ? t->cap : 256;
		while (t->len + n + 1 > cap)
			cap *= 2;
		char *p = realloc(t->s, cap);
		if (!p) {
			t->ok = false;
			return;
		}
		t->s = p;
		t->cap = cap;
	}
	memcpy(t->s + t->len, s, n);
	t->len += n;
	t->s[t->len] = '\0';
}

static void text_puts(struct text *t, const char *s)
{
	text_add(t, s, strlen(s));
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
	       c == '.' || c == '_' || c == '~';
}

static void text_encode(struct text *t, const char *s, size_t n, bool keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c) || (keep_slash && c == '/')) {
			text_add(t, (const char *)&c, 1);
		} else {
			char e[3] = {'%', hex[c >> 4], hex[c & 15]};
			text_add(t, e, 3);
		}
	}
}

char *mlx_sigv4_encode(const char *s, int keep_slash)
{
	struct text t = {.ok = true};
	text_encode(&t, s, strlen(s), keep_slash != 0);
	text_add(&t, "", 0);
	if (!t.ok) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t mlx_sigv4_decode(const char *s, size_t n, char *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hexval(s[i + 1])) >= 0 &&
		    (lo = hexval(s[i + 2])) >= 0) {
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return o;
}

/* ---- the canonical query ----------------------------------------------- */

struct param {
	char *key, *value; /* encoded */
};

static int param_cmp(const void *a, const void *b)
{
	const struct param *x = a, *y = b;
	int c = strcmp(x->key, y->key);
	return c ? c : strcmp(x->value, y->value);
}

/* Encodes one half of a query parameter: decoded first, so a query that
 * was encoded already is not encoded twice. */
static char *encode_component(const char *s, size_t n)
{
	char *raw = malloc(n + 1);
	if (!raw)
		return NULL;
	size_t len = mlx_sigv4_decode(s, n, raw);
	struct text t = {.ok = true};
	text_encode(&t, raw, len, false);
	text_add(&t, "", 0);
	free(raw);
	if (!t.ok) {
		free(t.s);
		return NULL;
	}
	return t.s;
}

static int canonical_query(const char *query, struct text *out, struct mlx_err *err)
{
	if (!query || !*query)
		return MLX_OK;
	size_t n = 1;
	for (const char *p = query; *p; p++)
		n += *p == '&';
	struct param *params = calloc(n, sizeof *params);
	if (!params)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	size_t count = 0;
	int rc = MLX_OK;
	for (const char *p = query; rc == MLX_OK && *p;) {
		const char *end = strchr(p, '&');
		if (!end)
			end = p + strlen(p);
		if (end > p) {
			const char *eq = memchr(p, '=', (size_t)(end - p));
			const char *kend = eq ? eq : end;
			params[count].key = encode_component(p, (size_t)(kend - p));
			params[count].value =
			    eq ? encode_component(eq + 1, (size_t)(end - eq - 1)) : encode_component("", 0);
			count++;
			if (!params[count - 1].key || !params[count - 1].value)
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		p = *end ? end + 1 : end;
	}
	if (rc == MLX_OK) {
		qsort(params, count, sizeof *params, param_cmp);
		for (size_t i = 0; i < count; i++) {
			if (i)
				text_puts(out, "&");
			text_puts(out, params[i].key);
			text_puts(out, "=");
			text_puts(out, params[i].value);
		}
	}
	for (size_t i = 0; i < count; i++) {
		free(params[i].key);
		free(params[i].value);
	}
	free(params);
	return rc;
}

/* ---- canonical headers -------------------------------------------------- */

struct header {
	char *name;   /* lowercase */
	char *value;  /* trimmed, inner runs of spaces folded */
	size_t order; /* position in the request, to keep repeated names in order */
};

static int header_cmp(const void *a, const void *b)
{
	const struct header *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static int parse_header(const char *line, size_t order, struct header *h, struct mlx_err *err)
{
	const char *colon = strchr(line, ':');
	if (!colon || colon == line)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "SigV4: header line without a name: %.40s", line);
	h->order = order;
	h->name = strndup(line, (size_t)(colon - line));
	h->value = malloc(strlen(colon + 1) + 1);
	if (!h->name || !h->value)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (char *p = h->name; *p; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p + 32);
	size_t o = 0;
	bool space = false;
	for (const char *p = colon + 1; *p; p++) {
		if (*p == ' ' || *p == '\t') {
			space = o > 0;
			continue;
		}
		if (space)
			h->value[o++] = ' ';
		space = false;
		h->value[o++] = *p;
	}
	h->value[o] = '\0';
	return MLX_OK;
}

static int canonical_headers(const struct mlx_sigv4_request *req, struct text *out, struct text *names,
                             struct mlx_err *err)
{
	struct header *hs = calloc(req->nheaders ? req->nheaders : 1, sizeof *hs);
	if (!hs)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	int rc = MLX_OK;
	size_t n = 0;
	for (; rc == MLX_OK && n < req->nheaders; n++)
		rc = parse_header(req->headers[n], n, &hs[n], err);
	if (rc == MLX_OK) {
		qsort(hs, n, sizeof *hs, header_cmp);
		for (size_t i = 0; i < n; i++) {
			bool repeat = i > 0 && strcmp(hs[i].name, hs[i - 1].name) == 0;
			if (repeat) {
				text_puts(out, ",");
			} else {
				if (i > 0) {
					text_puts(out, "\n");
					text_puts(names, ";");
				}
				text_puts(out, hs[i].name);
				text_puts(out, ":");
				text_puts(names, hs[i].name);
			}
			text_puts(out, hs[i].value);
		}
		if (n > 0)
			text_puts(out, "\n");
	}
	for (size_t i = 0; i < req->nheaders; i++) {
		free(hs[i].name);
		free(hs[i].value);
	}
	free(hs);
	return rc;
}

int mlx_sigv4_canonical_request(const struct mlx_sigv4_request *req, char **out, char **signed_headers,
                                struct mlx_err *err)
{
	*out = NULL;
	if (signed_headers)
		*signed_headers = NULL;
	if (!req->method || !req->path || !req->payload_hash)
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "SigV4: method, path and payload hash are required");
	struct text t = {.ok = true}, names = {.ok = true};
	text_puts(&t, req->method);
	text_puts(&t, "\n");
	text_encode(&t, req->path, strlen(req->path), true);
	if (!*req->path)
		text_puts(&t, "/");
	text_puts(&t, "\n");
	int rc = canonical_query(req->query, &t, err);
	text_puts(&t, "\n");
	if (rc == MLX_OK)
		rc = canonical_headers(req, &t, &names, err);
	text_puts(&t, "\n");
	text_add(&names, "", 0);
	text_puts(&t, names.s ? names.s : "");
	text_puts(&t, "\n");
	text_puts(&t, req->payload_hash);
	if (rc == MLX_OK && (!t.ok || !names.ok))
		rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	if (rc != MLX_OK) {
		free(t.s);
		free(names.s);
		return rc;
	}
	*out = t.s;
	if (signed_headers)
		*signed_headers = names.s;
	else
		free(names.s);
	return MLX_OK;
}

/* ---- signing ------------------------------------------------------------ */

static void to_hex(const unsigned char *b, size_t n, char *out)
{
	static const char hex[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = hex[b[i] >> 4];
		out[2 * i + 1] = hex[b[i] & 15];
	}
	out[2 * n] = '\0';
}

static int sha256_hex(const char *s, size_t n, char out[65], struct mlx_err *err)
{
	unsigned char md[32];
	unsigned int len = 0;
	if (!EVP_Digest(s, n, md, &len, EVP_sha256(), NULL) || len != 32)
		return mlx_err_set(err, MLX_ERR_CRYPTO, 0, "SigV4: SHA-256 failed");
	to_hex(md, 32, out);
	return MLX_OK;
}

static int hmac(const unsigned char *key, size_t key_len, const char *msg, unsigned char out[32],
                struct mlx_err *err)
{
	unsigned int len = 0;
	if (!HMAC(EVP_sha256(), key, (int)key_len, (const unsigned char *)msg, strlen(msg), out, &len) ||
	    len != 32)
		return mlx_err_set(err, MLX_ERR_CRYPTO, 0, "SigV4: HMAC-SHA256 failed");
	return MLX_OK;
}

static bool valid_date(const char *d)
{
	if (!d || strlen(d) != 16 || d[8] != 'T' || d[15] != 'Z')
		return false;
	for (int i = 0; i < 15; i++)
		if (i != 8 && (d[i] < '0' || d[i] > '9'))
			return false;
	return true;
}

int mlx_sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
                             const char *canonical_request, char **out, struct mlx_err *err)
{
	*out = NULL;
	if (!valid_date(amz_date))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "SigV4: not an X-Amz-Date (YYYYMMDDTHHMMSSZ): %s",
		                   amz_date ? amz_date : "(none)");
	char digest[65];
	int rc = sha256_hex(canonical_request, strlen(canonical_request), digest, err);
	if (rc != MLX_OK)
		return rc;
	size_t n = 64 + strlen(region) + strlen(service) + 64 + 64;
	char *s = malloc(n);
	if (!s)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	snprintf(s, n, "AWS4-HMAC-SHA256\n%s\n%.8s/%s/%s/aws4_request\n%s", amz_date, amz_date, region,
	         service, digest);
	*out = s;
	return MLX_OK;
}

int mlx_sigv4_authorization(const struct mlx_sigv4_request *req, const struct mlx_sigv4_scope *scope,
                            char **out, struct mlx_err *err)
{
	*out = NULL;
	if (!scope->access_key_id || !scope->secret_access_key || !scope->region || !scope->service)
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "SigV4: credentials, region and service are required");
	char *creq = NULL, *names = NULL, *sts = NULL;
	int rc = mlx_sigv4_canonical_request(req, &creq, &names, err);
	if (rc == MLX_OK)
		rc = mlx_sigv4_string_to_sign(req->amz_date, scope->region, scope->service, creq, &sts, err);
	unsigned char k[32];
	char date[9], signature[65];
	if (rc == MLX_OK) {
		/* kSecret = "AWS4" + secret; then date, region, service,
		 * "aws4_request" in turn; the signature is HMAC(kSigning, sts). */
		size_t slen = strlen(scope->secret_access_key);
		unsigned char *secret = malloc(slen + 4);
		if (!secret) {
			rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		} else {
			memcpy(secret, "AWS4", 4);
			memcpy(secret + 4, scope->secret_access_key, slen);
			memcpy(date, req->amz_date, 8);
			date[8] = '\0';
			rc = hmac(secret, slen + 4, date, k, err);
			OPENSSL_cleanse(secret, slen + 4);
			free(secret);
		}
	}
	if (rc == MLX_OK)
		rc = hmac(k, 32, scope->region, k, err);
	if (rc == MLX_OK)
		rc = hmac(k, 32, scope->service, k, err);
	if (rc == MLX_OK)
		rc = hmac(k, 32, "aws4_request", k, err);
	unsigned char sig[32];
	if (rc == MLX_OK)
		rc = hmac(k, 32, sts, sig, err);
	OPENSSL_cleanse(k, sizeof k);
	if (rc == MLX_OK) {
		to_hex(sig, 32, signature);
		size_t n = 128 + strlen(scope->access_key_id) + strlen(scope->region) +
		           strlen(scope->service) + strlen(names) + 64;
		*out = malloc(n);
		if (!*out)
			rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		else
			snprintf(*out, n,
			         "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, SignedHeaders=%s, "
			         "Signature=%s",
			         scope->access_key_id, date, scope->region, scope->service, names, signature);
	}
	free(creq);
	free(names);
	free(sts);
	return rc;
}

void mlx_sigv4_date(long long t, char out[17])
{
	time_t tt = (time_t)t;
	struct tm tm;
	gmtime_r(&tt, &tm);
	strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}
