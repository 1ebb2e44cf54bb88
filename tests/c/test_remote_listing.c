/* test_remote_listing.c — the readers of remote listings (a WebDAV
 * PROPFIND answer, an S3 ListObjectsV2 page), which are untrusted: a
 * server may name anything, and only valid keys below the listed prefix
 * may come out. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "remote_http.h"

struct seen {
	struct mlx_strlist keys; /* "key size" or "key/ dir" lines */
};

static int on_entry(void *ctx, const char *key, int collection, uint64_t size)
{
	struct seen *s = ctx;
	char line[1024];
	if (collection)
		snprintf(line, sizeof line, "%s dir", key);
	else
		snprintf(line, sizeof line, "%s %llu", key, (unsigned long long)size);
	struct mlx_err err;
	return mlx_strlist_push(&s->keys, line, &err);
}

static int on_key(void *ctx, const char *key, uint64_t size)
{
	return on_entry(ctx, key, 0, size);
}

#define RESPONSE(href, type, length)                                                                         \
	"<D:response><D:href>" href "</D:href><D:propstat><D:prop><D:resourcetype>" type                     \
	"</D:resourcetype><D:getcontentlength>" length "</D:getcontentlength></D:prop>"                      \
	"<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>"
#define DIR "<D:collection/>"

static void test_multistatus(void **unused)
{
	(void)unused;
	const char xml[] =
	    "<?xml version=\"1.0\" encoding=\"utf-8\" ?><D:multistatus xmlns:D=\"DAV:\">" RESPONSE(
	        "/base/objects/", DIR, "")                   /* the collection itself */
	    RESPONSE("/base/objects/ab/", DIR, "")           /* a sub-collection */
	    RESPONSE("/base/objects/a%20b", "", "12")        /* encoded */
	    RESPONSE("http://h:1/base/objects/cd", "", "7")  /* as a URL */
	    RESPONSE("/base/objects/..%2F..%2Fetc", "", "1") /* climbs out once decoded */
	    RESPONSE("/base/objects/x/../../y", "", "1")     /* climbs out */
	    RESPONSE("/other/objects/z", "", "1")            /* outside the base */
	    RESPONSE("/base/index/s1", "", "1")              /* outside the listed dir */
	    RESPONSE("/base/objects/%01ctl", "", "1")        /* a control character */
	    RESPONSE("/base/objects//double", "", "1")       /* an empty segment */
	    "<D:response><D:href>/base/objects/gone</D:href><D:propstat><D:prop/>"
	    "<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>"
	    "</D:multistatus>";
	struct seen s = {0};
	struct mlx_err err;
	assert_int_equal(
	    mlx_webdav_parse_multistatus("r", "/base/", "objects/", xml, sizeof xml - 1, on_entry, &s, &err),
	    0);
	assert_int_equal(s.keys.len, 4);
	assert_string_equal(s.keys.items[0], "objects/ab/ dir");
	assert_string_equal(s.keys.items[1], "objects/a b 12");
	assert_string_equal(s.keys.items[2], "objects/cd 7");
	assert_string_equal(s.keys.items[3], "objects/gone 0"); /* no 200 propstat: a file of unknown size */
	mlx_strlist_free(&s.keys);
	assert_int_equal(mlx_webdav_parse_multistatus("r", "/", "objects/", "<html>", 6, on_entry, &s, &err),
	                 MLX_ERR_IO);
	assert_non_null(strstr(err.msg, "not XML"));
	const char other[] = "<?xml version=\"1.0\"?><multistatus/>"; /* not in the DAV: namespace */
	assert_int_equal(
	    mlx_webdav_parse_multistatus("r", "/", "objects/", other, sizeof other - 1, on_entry, &s, &err),
	    MLX_ERR_IO);
	assert_int_equal(s.keys.len, 0);
}

static void test_listing(void **unused)
{
	(void)unused;
	const char xml[] =
	    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
	    "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	    "<IsTruncated>true</IsTruncated><NextContinuationToken>tok/en==</NextContinuationToken>"
	    "<Contents><Key>p/objects/aa/1</Key><Size>5</Size></Contents>"
	    "<Contents><Key>p/objects/../../x</Key><Size>1</Size></Contents>"
	    "<Contents><Key>q/objects/aa/2</Key><Size>1</Size></Contents>"
	    "<Contents><Key>p//objects/aa/3</Key><Size>1</Size></Contents>"
	    "<Contents><Key>p/objects/dir/</Key><Size>0</Size></Contents>"
	    "<Contents><Key>p/objects/bb/4</Key><Size>77</Size></Contents>"
	    "</ListBucketResult>";
	struct seen s = {0};
	struct mlx_err err;
	char *token = NULL;
	assert_int_equal(mlx_s3_parse_listing("r", "p/", xml, sizeof xml - 1, on_key, &s, &token, &err), 0);
	assert_int_equal(s.keys.len, 2);
	assert_string_equal(s.keys.items[0], "objects/aa/1 5");
	assert_string_equal(s.keys.items[1], "objects/bb/4 77");
	assert_string_equal(token, "tok/en==");
	free(token);
	mlx_strlist_free(&s.keys);
	const char last[] = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
	assert_int_equal(mlx_s3_parse_listing("r", "", last, sizeof last - 1, on_key, &s, &token, &err), 0);
	assert_null(token);
	const char broken[] = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";
	assert_int_equal(mlx_s3_parse_listing("r", "", broken, sizeof broken - 1, on_key, &s, &token, &err),
	                 MLX_ERR_IO);
	assert_null(token);
	const char error[] = "<Error><Code>AccessDenied</Code></Error>";
	assert_int_equal(mlx_s3_parse_listing("r", "", error, sizeof error - 1, on_key, &s, &token, &err),
	                 MLX_ERR_IO);
	assert_int_equal(s.keys.len, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_multistatus),
	    cmocka_unit_test(test_listing),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
