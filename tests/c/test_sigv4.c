/* test_sigv4.c — core/sigv4.c against AWS's published SigV4 test suite
 * (tests/data/aws-sig-v4-test-suite/): for each case, the canonical
 * request, the string to sign and the Authorization header, each compared
 * byte for byte with the suite's files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sigv4.h"

static const char *const cases[] = {
    "get-vanilla",
    "get-vanilla-query-order-key-case",
    "get-vanilla-query-order-value",
    "get-vanilla-query-order-key",
    "get-vanilla-empty-query-key",
    "get-vanilla-query-unreserved",
    "get-vanilla-utf8-query",
    "get-utf8",
    "get-unreserved",
    "get-header-value-trim",
    "get-header-key-duplicate",
    "get-header-value-order",
    "post-vanilla",
    "post-vanilla-query",
    "post-header-key-sort",
    "post-header-value-case",
    "post-x-www-form-urlencoded",
    "post-x-www-form-urlencoded-parameters",
    "post-sts-header-before",
};

static char *slurp(const char *name, const char *ext)
{
	char path[1024];
	snprintf(path, sizeof path, "%s/%s/%s.%s", getenv("MLX_SIGV4_SUITE"), name, name, ext);
	FILE *f = fopen(path, "rb");
	if (!f)
		fail_msg("cannot open %s", path);
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && buf[n - 1] == '\n') /* a trailing newline is not part of the text */
		buf[--n] = '\0';
	return buf;
}

/* A parsed .req: request line, header lines, optional body after a blank line. */
struct req {
	char *text;
	char method[16];
	char *path, *query;
	const char *headers[16];
	size_t nheaders;
	char payload_hash[65];
	char amz_date[17];
};

static void parse_req(const char *name, struct req *r)
{
	memset(r, 0, sizeof *r);
	r->text = slurp(name, "req");
	char *body = strstr(r->text, "\n\n");
	if (body) {
		*body = '\0';
		body += 2;
	} else {
		body = "";
	}
	unsigned char md[32];
	unsigned int len;
	assert_true(EVP_Digest(body, strlen(body), md, &len, EVP_sha256(), NULL));
	for (int i = 0; i < 32; i++)
		sprintf(r->payload_hash + 2 * i, "%02x", md[i]);
	char *line = r->text, *next = strchr(line, '\n');
	if (next)
		*next++ = '\0';
	char *sp = strchr(line, ' ');
	assert_non_null(sp);
	snprintf(r->method, sizeof r->method, "%.*s", (int)(sp - line), line);
	char *uri = sp + 1, *proto = strstr(uri, " HTTP/");
	assert_non_null(proto);
	*proto = '\0';
	char *q = strchr(uri, '?');
	if (q)
		*q++ = '\0';
	r->path = uri;
	r->query = q;
	for (line = next; line && *line; line = next) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		assert_true(r->nheaders < 16);
		r->headers[r->nheaders++] = line;
		if (strncmp(line, "X-Amz-Date:", 11) == 0)
			snprintf(r->amz_date, sizeof r->amz_date, "%s", line + 11);
	}
}

static struct mlx_sigv4_request to_request(struct req *r)
{
	return (struct mlx_sigv4_request){
	    .method = r->method,
	    .path = r->path,
	    .query = r->query,
	    .headers = r->headers,
	    .nheaders = r->nheaders,
	    .payload_hash = r->payload_hash,
	    .amz_date = r->amz_date,
	};
}

static void test_suite_case(void **state)
{
	const char *name = *state;
	struct req r;
	parse_req(name, &r);
	struct mlx_sigv4_request req = to_request(&r);
	struct mlx_sigv4_scope scope = {
	    .access_key_id = "AKIDEXAMPLE",
	    .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
	    .region = "us-east-1",
	    .service = "service",
	};
	struct mlx_err err;
	char *creq = NULL, *names = NULL, *sts = NULL, *authz = NULL;
	assert_int_equal(mlx_sigv4_canonical_request(&req, &creq, &names, &err), 0);
	char *want = slurp(name, "creq");
	assert_string_equal(creq, want);
	free(want);
	assert_int_equal(mlx_sigv4_string_to_sign(r.amz_date, "us-east-1", "service", creq, &sts, &err), 0);
	want = slurp(name, "sts");
	assert_string_equal(sts, want);
	free(want);
	assert_int_equal(mlx_sigv4_authorization(&req, &scope, &authz, &err), 0);
	want = slurp(name, "authz");
	assert_string_equal(authz, want);
	free(want);
	free(creq);
	free(names);
	free(sts);
	free(authz);
	free(r.text);
}

/* The query S3 requests carry (a listing with a continuation token that
 * holds '=' and '/') comes out sorted and encoded once, whether it was
 * given encoded or not. */
static void test_query_encoded_once(void **state)
{
	(void)state;
	const char *headers[] = {"Host:h", "X-Amz-Date:20150830T123600Z"};
	struct mlx_sigv4_request a = {.method = "GET",
	                              .path = "/b",
	                              .headers = headers,
	                              .nheaders = 2,
	                              .payload_hash = "UNSIGNED-PAYLOAD",
	                              .amz_date = "20150830T123600Z",
	                              .query = "prefix=objects/&list-type=2&continuation-token=a%2Fb%3D%3D"};
	struct mlx_sigv4_request b = a;
	b.query = "continuation-token=a/b==&list-type=2&prefix=objects%2F";
	struct mlx_err err;
	char *ca, *cb;
	assert_int_equal(mlx_sigv4_canonical_request(&a, &ca, NULL, &err), 0);
	assert_int_equal(mlx_sigv4_canonical_request(&b, &cb, NULL, &err), 0);
	assert_string_equal(ca, cb);
	assert_non_null(strstr(ca, "\ncontinuation-token=a%2Fb%3D%3D&list-type=2&prefix=objects%2F\n"));
	free(ca);
	free(cb);
	char *e = mlx_sigv4_encode("objects/ab/c d+", 1);
	assert_string_equal(e, "objects/ab/c%20d%2B");
	free(e);
}

static void test_bad_input(void **state)
{
	(void)state;
	const char *headers[] = {"no colon here"};
	struct mlx_sigv4_request r = {.method = "GET",
	                              .path = "/",
	                              .headers = headers,
	                              .nheaders = 1,
	                              .payload_hash = "UNSIGNED-PAYLOAD",
	                              .amz_date = "20150830T123600Z"};
	struct mlx_sigv4_scope scope = {"AK", "SECRETVALUE", "us-east-1", "s3"};
	struct mlx_err err;
	char *out = NULL;
	assert_int_equal(mlx_sigv4_authorization(&r, &scope, &out, &err), MLX_ERR_INVALID);
	assert_null(out);
	headers[0] = "Host:h";
	r.amz_date = "2015-08-30";
	assert_int_equal(mlx_sigv4_authorization(&r, &scope, &out, &err), MLX_ERR_INVALID);
	assert_null(strstr(err.msg, "SECRETVALUE"));
	char date[17];
	mlx_sigv4_date(1440938160, date);
	assert_string_equal(date, "20150830T123600Z");
}

int main(void)
{
	if (!getenv("MLX_SIGV4_SUITE")) {
		fprintf(stderr, "MLX_SIGV4_SUITE is not set\n");
		return 1;
	}
	struct CMUnitTest tests[sizeof cases / sizeof *cases + 2];
	size_t n = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
		tests[n++] = (struct CMUnitTest){cases[i], test_suite_case, NULL, NULL, (void *)cases[i]};
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_query_encoded_once);
	tests[n++] = (struct CMUnitTest)cmocka_unit_test(test_bad_input);
	return _cmocka_run_group_tests("sigv4", tests, n, NULL, NULL);
}
