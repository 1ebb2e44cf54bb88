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

/* The one hex encoder: every byte value, in order, and nothing at all. */
static void hex_encode_writes_lowercase_pairs(void **state)
{
	(void)state;
	unsigned char bytes[256];
	char hex[2 * sizeof bytes + 1], want[3];
	for (int i = 0; i < 256; i++)
		bytes[i] = (unsigned char)i;
	memset(hex, 'x', sizeof hex);
	mlx_hex_encode(bytes, sizeof bytes, hex);
	assert_int_equal(strlen(hex), 2 * sizeof bytes);
	for (int i = 0; i < 256; i++) {
		snprintf(want, sizeof want, "%02x", i);
		assert_memory_equal(hex + 2 * i, want, 2);
	}
	hex[0] = 'x';
	mlx_hex_encode(bytes, 0, hex);
	assert_string_equal(hex, "");
}

/* A stream gives the digest of its parts joined, however they are cut,
 * and one stream serves many messages in turn. */
static void stream_of_parts_matches_the_whole(void **state)
{
	(void)state;
	struct mlx_err err;
	struct mlx_hash_stream h = {0};
	char hex[MLX_HASH_HEX_SIZE], whole[MLX_HASH_HEX_SIZE];
	assert_int_equal(mlx_hash_stream_start(&h, &err), MLX_OK);
	assert_int_equal(mlx_hash_stream_update(&h, "a", 1, &err), MLX_OK);
	assert_int_equal(mlx_hash_stream_update(&h, "", 0, &err), MLX_OK);
	assert_int_equal(mlx_hash_stream_update(&h, "bc", 2, &err), MLX_OK);
	assert_int_equal(mlx_hash_stream_finish(&h, hex, &err), MLX_OK);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	assert_int_equal(mlx_hash_stream_start(&h, &err), MLX_OK);
	assert_int_equal(mlx_hash_stream_finish(&h, hex, &err), MLX_OK);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");

	/* 300 KB cut at every block boundary and beside it. */
	size_t len = 300000;
	unsigned char *data = malloc(len);
	assert_non_null(data);
	for (size_t i = 0; i < len; i++)
		data[i] = (unsigned char)(i * 2654435761u >> 13);
	assert_int_equal(mlx_hash_bytes(data, len, whole, &err), MLX_OK);
	/* The same through OpenSSL, which a stream uses on a CPU without
	 * SHA-NI: both give the same digests. */
	static const size_t cuts[] = {1, 55, 56, 63, 64, 65, 4096, 65537};
	for (int openssl = 0; openssl <= 1; openssl++) {
		h.openssl = openssl;
		for (size_t c = 0; c < sizeof cuts / sizeof *cuts; c++) {
			assert_int_equal(mlx_hash_stream_start(&h, &err), MLX_OK);
			for (size_t at = 0; at < len; at += cuts[c]) {
				size_t n = len - at < cuts[c] ? len - at : cuts[c];
				assert_int_equal(mlx_hash_stream_update(&h, data + at, n, &err), MLX_OK);
			}
			assert_int_equal(mlx_hash_stream_finish(&h, hex, &err), MLX_OK);
			assert_string_equal(hex, whole);
		}
	}
	free(data);
	assert_non_null(h.ctx);
	mlx_hash_stream_free(&h);
	assert_null(h.ctx);
	mlx_hash_stream_free(&h); /* a zeroed stream: nothing to free */
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

static void write_file(const char *path, const unsigned char *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* Sizes around every boundary of the lanes: blocks, padding, the 128 KiB
 * read buffer; and many small files, so that lanes pair files of unequal
 * sizes and refill mid-way. */
static const size_t dir_sizes[] = {0, 1, 55, 56, 63, 64, 65, 119, 120, 4096, (128 << 10) - 1, 128 << 10,
				   (128 << 10) + 1, (128 << 10) + 63, 300000, (1 << 20) + 7};

static char *make_tree(size_t *count)
{
	char *dir = strdup(temp_path("tree"));
	char path[512];
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/sub", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	size_t nsizes = sizeof dir_sizes / sizeof *dir_sizes, n = 0;
	unsigned char *data = malloc((1 << 20) + 64);
	assert_non_null(data);
	uint32_t x = 12345;
	for (size_t i = 0; i < (1 << 20) + 64; i++) {
		x = x * 1103515245 + 12345;
		data[i] = (unsigned char)(x >> 16);
	}
	for (size_t i = 0; i < nsizes; i++, n++) {
		snprintf(path, sizeof path, "%s/b%02zu", dir, i);
		write_file(path, data + i, dir_sizes[i]);
	}
	for (size_t i = 0; i < 150; i++, n++) {
		snprintf(path, sizeof path, "%s/sub/s%03zu", dir, i);
		write_file(path, data + i, (i * 7919) % 70000);
	}
	free(data);
	*count = n;
	return dir;
}

static void remove_tree(char *dir)
{
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
	assert_int_equal(system(cmd), 0);
	free(dir);
}

/* One thread over 1 to 9 files of sizes that end in different blocks: the
 * lanes run four, three (as two, then one), two and one at a time, and
 * every file still gets its own digest. */
static void few_files_hash_in_every_lane_count(void **state)
{
	(void)state;
	unsigned char data[70000];
	for (size_t i = 0; i < sizeof data; i++)
		data[i] = (unsigned char)(i * 131 + 7);
	for (size_t count = 1; count <= 9; count++) {
		char *dir = strdup(temp_path("lanes"));
		assert_int_equal(mkdir(dir, 0755), 0);
		char path[600];
		for (size_t i = 0; i < count; i++) {
			snprintf(path, sizeof path, "%s/f%zu", dir, i);
			write_file(path, data + i, (i * 20011 + count * 977) % sizeof data);
		}
		struct mlx_err err;
		struct mlx_filelist got = {0};
		assert_int_equal(mlx_hash_walk(dir, NULL, MLX_WALK_TYPES_ONLY, &got, &err), MLX_OK);
		assert_int_equal(got.len, count);
		assert_int_equal(mlx_hash_files(dir, &got, 1, &err), MLX_OK);
		for (size_t i = 0; i < got.len; i++) {
			char want[MLX_HASH_HEX_SIZE];
			uint64_t size;
			snprintf(path, sizeof path, "%s/%s", dir, got.items[i].path);
			assert_int_equal(mlx_hash_file(path, want, &size, &err), MLX_OK);
			assert_string_equal(got.items[i].hex, want);
			assert_int_equal(got.items[i].size, size);
		}
		mlx_filelist_free(&got);
		remove_tree(dir);
	}
}

/* Four files at a time per thread (SHA-NI, where the CPU has it) or one
 * through OpenSSL: the same digests, sizes and facts as hashing each file
 * alone, for any number of threads. */
static void files_hash_as_each_file_alone(void **state)
{
	(void)state;
	size_t count;
	char *dir = make_tree(&count);
	struct mlx_err err;
	struct mlx_filelist want = {0};
	assert_int_equal(mlx_hash_walk(dir, NULL, 0, &want, &err), MLX_OK);
	assert_int_equal(want.len, count);
	char path[600];
	for (size_t i = 0; i < want.len; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, want.items[i].path);
		uint64_t size;
		assert_int_equal(mlx_hash_file(path, want.items[i].hex, &size, &err), MLX_OK);
		assert_int_equal(size, want.items[i].size);
	}
	for (int jobs = 1; jobs <= 3; jobs++) {
		for (int openssl = 0; openssl <= 1; openssl++) {
			struct mlx_filelist got = {0};
			assert_int_equal(mlx_hash_walk(dir, NULL, MLX_WALK_TYPES_ONLY, &got, &err), MLX_OK);
			int64_t before = mlx_hash_now_ns();
			if (openssl)
				assert_int_equal(mlx_hash_files_openssl(dir, &got, jobs, &err), MLX_OK);
			else
				assert_int_equal(mlx_hash_files(dir, &got, jobs, &err), MLX_OK);
			assert_int_equal(got.len, want.len);
			for (size_t i = 0; i < got.len; i++) {
				const struct mlx_file *g = &got.items[i], *w = &want.items[i];
				assert_string_equal(g->path, w->path);
				assert_string_equal(g->hex, w->hex);
				assert_int_equal(g->size, w->size);
				assert_int_equal(g->mode, w->mode);
				assert_int_equal(g->ino, w->ino);
				assert_int_equal(g->mtime_ns, w->mtime_ns);
				assert_int_equal(g->ctime_ns, w->ctime_ns);
				assert_true(g->hashed_ns >= before);
			}
			mlx_filelist_free(&got);
		}
	}
	mlx_filelist_free(&want);
	remove_tree(dir);
}

/* Files already known (hex set, as from the stat cache) are not read. */
static void known_files_are_not_read(void **state)
{
	(void)state;
	size_t count;
	char *dir = make_tree(&count);
	struct mlx_err err;
	struct mlx_filelist list = {0};
	assert_int_equal(mlx_hash_walk(dir, NULL, 0, &list, &err), MLX_OK);
	for (size_t i = 0; i < list.len; i += 2)
		memset(list.items[i].hex, 'a', 64);
	assert_int_equal(mlx_hash_files(dir, &list, 2, &err), MLX_OK);
	for (size_t i = 0; i < list.len; i++) {
		if (i % 2 == 0) {
			assert_int_equal(list.items[i].hashed_ns, 0);
			assert_int_equal(list.items[i].hex[0], 'a');
		} else {
			assert_true(list.items[i].hashed_ns > 0);
			assert_true(mlx_hash_is_id(list.items[i].hex));
		}
	}
	mlx_filelist_free(&list);
	remove_tree(dir);
}

/* A file that vanished or became a fifo after the walk is a failure naming
 * it; the fifo is never read from, so nothing hangs. */
static void files_changed_after_the_walk_fail_cleanly(void **state)
{
	(void)state;
	size_t count;
	char *dir = make_tree(&count);
	struct mlx_err err;
	char path[600];
	for (int openssl = 0; openssl <= 1; openssl++) {
		struct mlx_filelist list = {0};
		assert_int_equal(mlx_hash_walk(dir, NULL, MLX_WALK_TYPES_ONLY, &list, &err), MLX_OK);
		snprintf(path, sizeof path, "%s/sub/s077", dir);
		unlink(path);
		int rc = openssl ? mlx_hash_files_openssl(dir, &list, 2, &err) : mlx_hash_files(dir, &list, 2, &err);
		assert_int_equal(rc, MLX_ERR_NOTFOUND);
		assert_non_null(strstr(err.msg, "sub/s077"));
		assert_int_equal(mkfifo(path, 0644), 0);
		for (size_t i = 0; i < list.len; i++)
			list.items[i].hex[0] = '\0';
		rc = openssl ? mlx_hash_files_openssl(dir, &list, 2, &err) : mlx_hash_files(dir, &list, 2, &err);
		assert_int_equal(rc, MLX_ERR_INVALID);
		assert_non_null(strstr(err.msg, "sub/s077: not a regular file"));
		unlink(path);
		write_file(path, (const unsigned char *)"x", 1);
		mlx_filelist_free(&list);
	}
	remove_tree(dir);
}

/* Subdirectories are walked in parallel and merged: the result is still
 * in path byte order, where "a-b/y" and "a.txt" sort before "a/x". */
static void walk_sorts_by_path_bytes_across_directories(void **state)
{
	(void)state;
	char *dir = strdup(temp_path("order"));
	static const char *const dirs[] = {"a", "a-b", "a0", "a/b", "a/b-c", "Z"};
	static const char *const files[] = {"a/x", "a/b/1", "a/b-c/2", "a-b/y", "a0/z", "a.txt", "b", "A", "Z/q", "a/b.z"};
	static const char *const sorted[] = {"A", "Z/q", "a-b/y", "a.txt", "a/b-c/2", "a/b.z", "a/b/1", "a/x", "a0/z", "b"};
	char path[600];
	assert_int_equal(mkdir(dir, 0755), 0);
	for (size_t i = 0; i < sizeof dirs / sizeof *dirs; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, dirs[i]);
		assert_int_equal(mkdir(path, 0755), 0);
	}
	for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
		snprintf(path, sizeof path, "%s/%s", dir, files[i]);
		write_file(path, (const unsigned char *)files[i], strlen(files[i]));
	}
	for (int flags = 0; flags <= MLX_WALK_TYPES_ONLY; flags += MLX_WALK_TYPES_ONLY) {
		struct mlx_filelist list = {0};
		struct mlx_err err;
		assert_int_equal(mlx_hash_walk(dir, NULL, flags, &list, &err), MLX_OK);
		assert_int_equal(list.len, sizeof sorted / sizeof *sorted);
		for (size_t i = 0; i < list.len; i++)
			assert_string_equal(list.items[i].path, sorted[i]);
		mlx_filelist_free(&list);
	}
	remove_tree(dir);
}

/* Many paths of one directory that do not exist (a fresh project's outs)
 * are answered from its listing: the few that exist are still files, with
 * their stat facts, also through a symlinked directory, and a directory or
 * a path under a missing directory is told as before. */
static void many_missing_paths_and_the_few_that_exist(void **state)
{
	(void)state;
	char *dir = strdup(temp_path("many"));
	char path[600];
	assert_int_equal(mkdir(dir, 0755), 0);
	snprintf(path, sizeof path, "%s/out", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/out/f100/", dir);
	assert_int_equal(mkdir(path, 0755), 0);
	snprintf(path, sizeof path, "%s/link", dir);
	assert_int_equal(symlink("out", path), 0);
	static const int existing[] = {0, 50, 150, 199};
	for (size_t k = 0; k < sizeof existing / sizeof *existing; k++) {
		snprintf(path, sizeof path, "%s/out/f%03d", dir, existing[k]);
		write_file(path, (const unsigned char *)"x", 1);
	}
	char names[3][200][16];
	const char *list[600];
	size_t n = 0;
	static const char *const dirs[] = {"out", "link", "none"};
	for (int d = 0; d < 3; d++)
		for (int i = 0; i < 200; i++) {
			snprintf(names[d][i], sizeof names[d][i], "%s/f%03d", dirs[d], i);
			list[n++] = names[d][i];
		}
	unsigned char found[600];
	struct mlx_filelist out = {0};
	struct mlx_err err;
	assert_int_equal(mlx_hash_stat_many(dir, list, n, NULL, &out, found, &err), MLX_OK);
	size_t files = 0;
	for (int d = 0; d < 3; d++)
		for (int i = 0; i < 200; i++) {
			int exists = d < 2 && (i == 0 || i == 50 || i == 150 || i == 199);
			unsigned char want = exists ? 1 : (d < 2 && i == 100) ? 0 : 2;
			assert_int_equal(found[d * 200 + i], want);
			if (exists) {
				assert_string_equal(out.items[files].path, names[d][i]);
				assert_int_equal(out.items[files].size, 1);
				assert_true(out.items[files].ino != 0);
				files++;
			}
		}
	assert_int_equal(out.len, files);
	mlx_filelist_free(&out);
	remove_tree(dir);
}

/* The manifest text and id, byte for byte as DESIGN §3 defines them. */
static void manifest_lines_are_exact(void **state)
{
	(void)state;
	struct mlx_filelist list = {0};
	struct mlx_err err;
	const char *h1 = "0000000000000000000000000000000000000000000000000000000000000001";
	const char *h2 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
	assert_int_equal(mlx_filelist_push(&list, "a b/c.txt", 0, 0644, h1, &err), MLX_OK);
	assert_int_equal(mlx_filelist_push(&list, "z", 18446744073709551615u, 0755, h2, &err), MLX_OK);
	char *text = NULL, hex[MLX_HASH_HEX_SIZE], want_hex[MLX_HASH_HEX_SIZE];
	size_t len = 0;
	assert_int_equal(mlx_hash_manifest(&list, &text, &len, hex, &err), MLX_OK);
	char want[300];
	snprintf(want, sizeof want, "%s 0 644 a b/c.txt\n%s 18446744073709551615 755 z\n", h1, h2);
	assert_string_equal(text, want);
	assert_int_equal(len, strlen(want));
	assert_int_equal(mlx_hash_bytes(want, strlen(want), want_hex, &err), MLX_OK);
	assert_string_equal(hex, want_hex);
	free(text);
	list.items[1].hex[0] = '\0';
	assert_int_equal(mlx_hash_manifest(&list, &text, &len, hex, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "z has not been hashed"));
	mlx_filelist_free(&list);
}

/* A size is read as mlx_hash_manifest writes it: canonical decimal that a
 * file can hold. Found by the manifest fuzz target: a 20-digit size wrapped
 * around and parsed as another number. */
static void manifest_sizes_parse_only_in_canonical_form(void **state)
{
	(void)state;
	static const char *const bad[] = {"18446744075097351615", "18446744073709551616", "9223372036854775808",
					  "02", "00"};
	static const struct {
		const char *text;
		uint64_t size;
	} good[] = {{"0", 0}, {"10", 10}, {"9223372036854775807", 9223372036854775807ull}};
	const char *hex = "87428fc522803d31065e7bce3cf03fe475096631e5e07bbd7a0fde60c4cf25c7";
	char text[256];
	struct mlx_filelist list = {0};
	struct mlx_err err;
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		int n = snprintf(text, sizeof text, "%s %s 644 a\n", hex, bad[i]);
		assert_int_equal(mlx_hash_manifest_parse(text, (size_t)n, &list, &err), MLX_ERR_CORRUPT);
		assert_string_equal(err.msg, "manifest line 1 is malformed");
		assert_int_equal(list.len, 0);
	}
	for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
		int n = snprintf(text, sizeof text, "%s %s 644 a\n", hex, good[i].text);
		assert_int_equal(mlx_hash_manifest_parse(text, (size_t)n, &list, &err), MLX_OK);
		assert_int_equal(list.len, 1);
		assert_true(list.items[0].size == good[i].size);
		mlx_filelist_free(&list);
	}
}

/* An id is exactly 64 lowercase hex digits; anything shorter is checked
 * without reading past its end (ASan catches a read beyond a short one). */
static void ids_are_64_lowercase_hex_digits(void **state)
{
	(void)state;
	char id[65];
	memset(id, 'a', 64);
	id[64] = '\0';
	assert_true(mlx_hash_is_id(id));
	id[10] = 'A';
	assert_false(mlx_hash_is_id(id));
	id[10] = 'g';
	assert_false(mlx_hash_is_id(id));
	id[10] = '9';
	assert_true(mlx_hash_is_id(id));
	char *shorter = strndup(id, 63);
	assert_non_null(shorter);
	assert_false(mlx_hash_is_id(shorter));
	free(shorter);
	char *empty = strdup("");
	assert_non_null(empty);
	assert_false(mlx_hash_is_id(empty));
	free(empty);
	char longer[66];
	memcpy(longer, id, 64);
	longer[64] = 'a';
	longer[65] = '\0';
	assert_false(mlx_hash_is_id(longer));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(bytes_match_published_vectors),
		cmocka_unit_test(hex_encode_writes_lowercase_pairs),
		cmocka_unit_test(stream_of_parts_matches_the_whole),
		cmocka_unit_test(file_spanning_many_reads_matches_vector),
		cmocka_unit_test(missing_file_is_notfound_with_its_name),
		cmocka_unit_test(directory_and_fifo_are_refused_without_hanging),
		cmocka_unit_test(files_hash_as_each_file_alone),
		cmocka_unit_test(few_files_hash_in_every_lane_count),
		cmocka_unit_test(known_files_are_not_read),
		cmocka_unit_test(files_changed_after_the_walk_fail_cleanly),
		cmocka_unit_test(walk_sorts_by_path_bytes_across_directories),
		cmocka_unit_test(many_missing_paths_and_the_few_that_exist),
		cmocka_unit_test(manifest_lines_are_exact),
		cmocka_unit_test(manifest_sizes_parse_only_in_canonical_form),
		cmocka_unit_test(ids_are_64_lowercase_hex_digits),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
