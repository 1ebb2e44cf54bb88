/* test_hash.c — core/hash.c against published SHA-256 vectors and sha256sum. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"

/* FIPS 180-2 test vectors. */
static void bytes_match_published_vectors(void **state)
{
	(void)state;
	char hex[MLX_HASH_HEX_SIZE];
	struct mlx_err err;
	assert_int_equal(mlx_hash_bytes("", 0, hex, &err), MLX_OK);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	assert_int_equal(mlx_hash_bytes("abc", 3, hex, &err), MLX_OK);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two_blocks = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	assert_int_equal(mlx_hash_bytes(two_blocks, strlen(two_blocks), hex, &err), MLX_OK);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

static char *temp_path(const char *name)
{
	static char path[256];
	snprintf(path, sizeof path, "%s/mlx-test-hash-%d-%s", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp",
		 (int)getpid(), name);
	return path;
}

/* One million 'a' spans several read chunks; its digest is published. */
static void file_spanning_many_reads_matches_vector(void **state)
{
	(void)state;
	const size_t n = 1000000;
	char *data = malloc(n);
	assert_non_null(data);
	memset(data, 'a', n);
	char *path = temp_path("million");
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, n, f), n);
	fclose(f);
	free(data);

	char hex[MLX_HASH_HEX_SIZE];
	uint64_t size = 0;
	struct mlx_err err;
	assert_int_equal(mlx_hash_file(path, hex, &size, &err), MLX_OK);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
	assert_int_equal(size, n);
	unlink(path);
}

static void missing_file_is_notfound_with_its_name(void **state)
{
	(void)state;
	char hex[MLX_HASH_HEX_SIZE];
	struct mlx_err err;
	assert_int_equal(mlx_hash_file("/nonexistent/data.csv", hex, NULL, &err), MLX_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "/nonexistent/data.csv"));
	assert_non_null(strstr(err.msg, "No such file"));
}

static void directory_and_fifo_are_refused_without_hanging(void **state)
{
	(void)state;
	char hex[MLX_HASH_HEX_SIZE];
	struct mlx_err err;
	assert_int_equal(mlx_hash_file("/", hex, NULL, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "is a directory"));

	char *fifo = temp_path("fifo");
	assert_int_equal(mkfifo(fifo, 0600), 0);
	assert_int_equal(mlx_hash_file(fifo, hex, NULL, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "not a regular file"));
	unlink(fifo);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bytes_match_published_vectors),
		cmocka_unit_test(file_spanning_many_reads_matches_vector),
		cmocka_unit_test(missing_file_is_notfound_with_its_name),
		cmocka_unit_test(directory_and_fifo_are_refused_without_hanging),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
