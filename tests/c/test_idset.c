/* test_idset.c — sets of object ids (core/idset.h): sorting and
 * deduplication, differences, manifests and their bad lines. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "hash.h"
#include "idset.h"

/* The id whose 32 bytes are all b, as hex. */
static void hex_of(unsigned char b, char hex[65])
{
	unsigned char id[32];
	memset(id, b, sizeof id);
	mlx_id_to_hex(id, hex);
}

static void test_hex_round_trip_and_bad_ids(void **state)
{
	(void)state;
	char hex[65];
	unsigned char id[32];
	hex_of(0xab, hex);
	assert_int_equal(strlen(hex), 64);
	assert_int_equal(hex[0], 'a');
	assert_int_equal(mlx_id_from_hex(hex, id), 1);
	assert_int_equal(id[31], 0xab);
	hex[5] = 'A'; /* ids are lowercase */
	assert_int_equal(mlx_id_from_hex(hex, id), 0);

	struct mlx_idset s = MLX_IDSET_INIT;
	struct mlx_err err;
	assert_int_equal(mlx_idset_add_hex(&s, "abc", 0, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "not an object id: 'abc'"));
	hex_of(1, hex);
	char longer[70];
	snprintf(longer, sizeof longer, "%s00", hex);
	assert_int_equal(mlx_idset_add_hex(&s, longer, 0, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_idset_count(&s), 0);
	mlx_idset_free(&s);
}

static void test_duplicates_are_one_and_keep_a_size(void **state)
{
	(void)state;
	struct mlx_idset s = MLX_IDSET_INIT;
	struct mlx_err err;
	char hex[65];
	/* 3000 adds in a scrambled order, of 1000 distinct ids. */
	for (unsigned i = 0; i < 3000; i++) {
		unsigned char id[32] = {0};
		unsigned k = (i * 7919u) % 1000u;
		id[0] = (unsigned char)(k >> 8);
		id[1] = (unsigned char)k;
		assert_int_equal(mlx_idset_add(&s, id, i < 1000 ? 0 : k + 1, &err), MLX_OK);
	}
	assert_int_equal(mlx_idset_count(&s), 1000);
	for (size_t i = 1; i < s.len; i++)
		assert_true(memcmp(s.items[i - 1].id, s.items[i].id, 32) < 0);
	unsigned char probe[32] = {0};
	probe[0] = 500 >> 8;
	probe[1] = 500 & 255;
	const struct mlx_id_entry *e = mlx_idset_find(&s, probe);
	assert_non_null(e);
	assert_int_equal(e->size, 501); /* the known size wins over 0 */
	probe[2] = 1;
	assert_null(mlx_idset_find(&s, probe));
	hex_of(0, hex);
	mlx_idset_free(&s);
	assert_int_equal(s.len, 0);
}

static void test_minus_and_merge(void **state)
{
	(void)state;
	struct mlx_idset a = MLX_IDSET_INIT, b = MLX_IDSET_INIT, out = MLX_IDSET_INIT;
	struct mlx_err err;
	for (unsigned char i = 0; i < 10; i++) {
		unsigned char id[32];
		memset(id, i, sizeof id);
		assert_int_equal(mlx_idset_add(&a, id, i, &err), MLX_OK);
		if (i % 2 == 0 || i == 9)
			assert_int_equal(mlx_idset_add(&b, id, 0, &err), MLX_OK);
	}
	unsigned char other[32];
	memset(other, 0xee, sizeof other);
	assert_int_equal(mlx_idset_add(&b, other, 0, &err), MLX_OK); /* only in b */
	assert_int_equal(mlx_idset_minus(&a, &b, &out, &err), MLX_OK);
	assert_int_equal(mlx_idset_count(&out), 4); /* 1, 3, 5, 7 */
	assert_int_equal(out.items[0].id[0], 1);
	assert_int_equal(out.items[3].id[0], 7);
	assert_int_equal(out.items[3].size, 7);
	assert_int_equal(mlx_idset_merge(&out, &b, &err), MLX_OK);
	assert_int_equal(mlx_idset_count(&out), 4 + 7);
	mlx_idset_free(&a);
	mlx_idset_free(&b);
	mlx_idset_free(&out);
}

/* Manifests are data: checked as mlx_hash_manifest_parse checks them
 * (format, sorted unique paths, the path rule), line 2 named. */
static void test_manifests(void **state)
{
	(void)state;
	struct mlx_idset s = MLX_IDSET_INIT;
	struct mlx_err err;
	char a[65], b[65], text[512];
	hex_of(0xaa, a);
	hex_of(0xbb, b);
	snprintf(text, sizeof text, "%s 12 644 again\n%s 0 755 two words\n%s 12 644 x/one\n", a, b, a);
	assert_int_equal(mlx_idset_add_manifest(&s, text, strlen(text), &err), MLX_OK);
	assert_int_equal(mlx_idset_count(&s), 2);
	assert_int_equal(s.items[0].size, 12);
	mlx_idset_free(&s);

	const char *bad[] = {"%s 12 644 \n",   "%s 12 64 p\n",     "%s x 644 p\n",
	                     "%s  12 644 p\n", "%.63s 12 644 p\n", "%s 99999999999999999999 644 p\n",
	                     "garbage\n",      "%s 1 644 ../x\n",  "%s 1 644 a\n"};
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
		char line[256];
		snprintf(text, sizeof text, "%s 1 644 fine\n", b);
		snprintf(line, sizeof line, bad[i], a);
		strncat(text, line, sizeof text - strlen(text) - 1);
		assert_int_equal(mlx_idset_add_manifest(&s, text, strlen(text), &err), MLX_ERR_CORRUPT);
		assert_non_null(strstr(err.msg, "manifest line 2"));
		mlx_idset_free(&s);
	}
}

/* A manifest object in a file: verified against its id before it is read. */
static void test_manifest_files(void **state)
{
	(void)state;
	char a[65], text[256], path[] = "/tmp/mlx-test-idset-XXXXXX", id[65];
	struct mlx_err err;
	hex_of(0xaa, a);
	snprintf(text, sizeof text, "%s 5 644 x\n", a);
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	assert_int_equal(mlx_hash_bytes(text, strlen(text), id, &err), MLX_OK);
	struct mlx_idset s = MLX_IDSET_INIT;
	assert_int_equal(mlx_idset_add_manifest_file(&s, path, id, &err), MLX_OK);
	assert_int_equal(mlx_idset_count(&s), 1);
	assert_int_equal(s.items[0].size, 5);
	/* Named by another id: corrupt, nothing added. */
	mlx_idset_free(&s);
	assert_int_equal(mlx_idset_add_manifest_file(&s, path, a, &err), MLX_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "is corrupt"));
	assert_int_equal(mlx_idset_count(&s), 0);
	/* Ids already in another set are marked there, not added. */
	struct mlx_idset known = MLX_IDSET_INIT;
	unsigned char bin[32], other[32];
	assert_true(mlx_id_from_hex(a, bin));
	memset(other, 0x11, sizeof other);
	assert_int_equal(mlx_idset_add(&known, bin, 0, &err), MLX_OK);
	assert_int_equal(mlx_idset_add(&known, other, 0, &err), MLX_OK);
	assert_int_equal(mlx_idset_add_manifest_file_except(&s, path, id, &known, &err), MLX_OK);
	assert_int_equal(mlx_idset_count(&s), 0);
	assert_int_equal(mlx_idset_marked(&known), 1);
	assert_int_equal(mlx_idset_mark(&known, bin), 1); /* once: still one */
	assert_int_equal(mlx_idset_marked(&known), 1);
	assert_int_equal(mlx_idset_mark(&known, other), 1);
	assert_int_equal(mlx_idset_marked(&known), 2);
	unsigned char absent[32] = {0};
	assert_int_equal(mlx_idset_mark(&known, absent), 0);
	/* A change to the set clears its marks. */
	assert_int_equal(mlx_idset_add(&known, absent, 0, &err), MLX_OK);
	assert_int_equal(mlx_idset_marked(&known), 0);
	mlx_idset_free(&known);
	unlink(path);
	assert_int_equal(mlx_idset_add_manifest_file(&s, path, id, &err), MLX_ERR_NOTFOUND);
	mlx_idset_free(&s);
}

/* Writes text (len bytes) to a new temp file; its path goes to path. */
static void write_temp(char path[], const char *text, size_t len)
{
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
}

/* A manifest of megabytes is read in pieces: lines that straddle two
 * pieces, the order check across them, and the verdict on its bytes. */
static void test_large_manifest_files(void **state)
{
	(void)state;
	enum { N = 20000 }; /* ~2 MB: several pieces of 256 KiB */
	size_t cap = (size_t)N * 120, len = 0;
	char *text = malloc(cap), id[65], hex[65];
	assert_non_null(text);
	for (int i = 0; i < N; i++) {
		snprintf(hex, sizeof hex, "%08x%056x", (unsigned)i, 0);
		len += (size_t)snprintf(text + len, cap - len, "%s %d 644 dir/f%07d.bin\n", hex, i, i);
	}
	struct mlx_err err;
	assert_int_equal(mlx_hash_bytes(text, len, id, &err), MLX_OK);
	char path[] = "/tmp/mlx-test-idset-XXXXXX";
	write_temp(path, text, len);
	struct mlx_idset s = MLX_IDSET_INIT;
	assert_int_equal(mlx_idset_add_manifest_file(&s, path, id, &err), MLX_OK);
	assert_int_equal(mlx_idset_count(&s), N);
	assert_int_equal(s.items[N - 1].size, N - 1);
	unlink(path);

	/* Two lines swapped far from the start (in a later piece): refused,
	 * naming the line, and nothing of it stays in the set. */
	char *l1 = strstr(text, " 15000 644 "), *l2 = strstr(text, " 15001 644 ");
	assert_non_null(l1);
	assert_non_null(l2);
	l1 -= 64;
	l2 -= 64;
	size_t n1 = (size_t)(l2 - l1), n2 = (size_t)(strchr(l2, '\n') + 1 - l2);
	char *swap = malloc(n1 + n2);
	memcpy(swap, l2, n2);
	memcpy(swap + n2, l1, n1);
	memcpy(l1, swap, n1 + n2);
	free(swap);
	assert_int_equal(mlx_hash_bytes(text, len, id, &err), MLX_OK);
	char path2[] = "/tmp/mlx-test-idset-XXXXXX";
	write_temp(path2, text, len);
	struct mlx_idset t = MLX_IDSET_INIT;
	assert_int_equal(
	    mlx_idset_add(&t, (const unsigned char *)"0123456789abcdef0123456789abcdef", 0, &err), MLX_OK);
	assert_int_equal(mlx_idset_add_manifest_file(&t, path2, id, &err), MLX_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "manifest line 15002 is malformed"));
	assert_int_equal(mlx_idset_count(&t), 1);
	/* The same bytes under another id: the hash is the verdict. */
	assert_int_equal(mlx_idset_add_manifest_file(&t, path2, hex, &err), MLX_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "is corrupt: its bytes hash to"));
	assert_int_equal(mlx_idset_count(&t), 1);
	unlink(path2);
	mlx_idset_free(&s);
	mlx_idset_free(&t);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_hex_round_trip_and_bad_ids),
	    cmocka_unit_test(test_duplicates_are_one_and_keep_a_size),
	    cmocka_unit_test(test_minus_and_merge),
	    cmocka_unit_test(test_manifests),
	    cmocka_unit_test(test_manifest_files),
	    cmocka_unit_test(test_large_manifest_files),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
