/* sigv4.h — AWS Signature Version 4 for requests signed in the
 * Authorization header, as a pure function of the request.
 *
 * mlx signs S3 requests itself rather than through libcurl's
 * CURLOPT_AWS_SIGV4: Debian 12's libcurl 7.88 signs the query string as
 * given, without sorting or re-encoding it, so listings, multipart uploads
 * and part numbers would be refused by a server that checks signatures.
 * The steps follow AWS's published description and are tested against its
 * test suite (tests/data/aws-sig-v4-test-suite/).
 *
 * Ownership: every char ** out is allocated here and freed by the caller
 * with free(); nothing of the request is kept. */
#ifndef MLX_SIGV4_H
#define MLX_SIGV4_H

#include <stddef.h>

#include "err.h"

/* What is signed. */
struct mlx_sigv4_request {
	const char *method; /* "GET", "PUT", … */
	/* The path as bytes, not yet percent-encoded ("/bucket/a b"); it is
	 * encoded once, as S3 expects, without dot-segment removal. */
	const char *path;
	/* The query as sent, without '?', in any order, percent-encoded or
	 * not ("Param2=value2&Param1=value1"); NULL or "" for none. */
	const char *query;
	/* "Name:value" lines: every header to sign, which must include Host
	 * and X-Amz-Date. Values are trimmed and inner runs of spaces folded;
	 * repeated names are joined with ',' in the order given. */
	const char *const *headers;
	size_t nheaders;
	/* Lowercase hex SHA-256 of the body, or "UNSIGNED-PAYLOAD". */
	const char *payload_hash;
	const char *amz_date; /* "20150830T123600Z", as in X-Amz-Date */
};

/* Who signs, and for what. */
struct mlx_sigv4_scope {
	const char *access_key_id;
	const char *secret_access_key;
	const char *region;  /* "us-east-1" */
	const char *service; /* "s3" */
};

/* Percent-encodes s as SigV4 and S3 want it: every byte but A-Z a-z 0-9
 * '-' '.' '_' '~' becomes %XX (uppercase hex); '/' is kept when keep_slash
 * is non-zero. Returns a new string, or NULL when out of memory. */
char *mlx_sigv4_encode(const char *s, int keep_slash);

/* Decodes the %XX escapes of s[0..n) into out (room for n + 1 bytes; out
 * may be s, to decode in place); a '%' not followed by two hex digits
 * stays as it is. Returns the decoded length; out is NUL-terminated. */
size_t mlx_sigv4_decode(const char *s, size_t n, char *out);

/* Fills *out with the canonical request of req and *signed_headers (may be
 * NULL) with its list of signed header names ("host;x-amz-date"). Returns 0,
 * MLX_ERR_INVALID for a header line without ':' or a missing field, or
 * MLX_ERR_NOMEM. */
int mlx_sigv4_canonical_request(const struct mlx_sigv4_request *req, char **out, char **signed_headers,
                                struct mlx_err *err);

/* Fills *out with the string to sign for a canonical request. Returns 0,
 * MLX_ERR_INVALID for an amz_date that is not "YYYYMMDDTHHMMSSZ",
 * MLX_ERR_CRYPTO or MLX_ERR_NOMEM. */
int mlx_sigv4_string_to_sign(const char *amz_date, const char *region, const char *service,
                             const char *canonical_request, char **out, struct mlx_err *err);

/* Fills *out with the value of the Authorization header for req signed in
 * scope ("AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…").
 * Returns 0 or the failures of the two functions above. Messages never
 * contain the secret. */
int mlx_sigv4_authorization(const struct mlx_sigv4_request *req, const struct mlx_sigv4_scope *scope,
                            char **out, struct mlx_err *err);

/* Writes the X-Amz-Date form of the time t (seconds since the epoch, UTC)
 * into out, which holds at least 17 bytes. */
void mlx_sigv4_date(long long t, char out[17]);

#endif
