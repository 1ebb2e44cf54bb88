/* test_sha256.c — core/sha256.c gives exactly SHA-256: published vectors,
 * and OpenSSL's digest for every length class, alone and in pairs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha256.h"

static void openssl_hex(const unsigned char *p, size_t len, char hex[65])
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned mdlen = 0;
	assert_true(EVP_Digest(p, len, md, &mdlen, EVP_sha256(), NULL));
	assert_int_equal(mdlen, 32);
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Deterministic bytes that are not a repeating block. */
static unsigned char *pattern(size_t len, unsigned seed)
{
	unsigned char *p = malloc(len + 2 * MLX_SHA256_BLOCK);
	assert_non_null(p);
	uint32_t x = seed * 2654435761u + 1;
	for (size_t i = 0; i < len; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		p[i] = (unsigned char)x;
	}
	return p;
}

static void published_vectors(void **state)
{
	(void)state;
	char hex[65];
	mlx_sha256_bytes("", 0, hex);
	assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
	mlx_sha256_bytes("abc", 3, hex);
	assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
	mlx_sha256_bytes(two, strlen(two), hex);
	assert_string_equal(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
	char *million = malloc(1000000);
	assert_non_null(million);
	memset(million, 'a', 1000000);
	mlx_sha256_bytes(million, 1000000, hex);
	free(million);
	assert_string_equal(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

/* Every length up to 3 blocks and more, every tail length and both padding
 * cases, one message at a time. */
static void one_message_matches_openssl_at_every_length(void **state)
{
	(void)state;
	for (size_t len = 0; len <= 1100; len++) {
		unsigned char *p = pattern(len, (unsigned)len);
		char want[65], got[65];
		openssl_hex(p, len, want);
		mlx_sha256_bytes(p, len, got);
		assert_string_equal(got, want);
		free(p);
	}
}

/* Hashes a and b (lengths la, lb) together as the file lanes do: pairs of
 * blocks while both have some, then the longer one alone. */
static void hash_pair(const unsigned char *a, size_t la, const unsigned char *b, size_t lb, char ha[65],
		      char hb[65])
{
	unsigned char *pa = malloc(la + 2 * MLX_SHA256_BLOCK), *pb = malloc(lb + 2 * MLX_SHA256_BLOCK);
	assert_non_null(pa);
	assert_non_null(pb);
	memcpy(pa, a, la);
	memcpy(pb, b, lb);
	size_t na = la / 64 + mlx_sha256_pad(pa + la / 64 * 64, la % 64, la);
	size_t nb = lb / 64 + mlx_sha256_pad(pb + lb / 64 * 64, lb % 64, lb);
	uint32_t sa[8], sb[8];
	mlx_sha256_init(sa);
	mlx_sha256_init(sb);
	size_t n = na < nb ? na : nb;
	mlx_sha256_blocks2(sa, pa, sb, pb, n);
	mlx_sha256_blocks(sa, pa + n * 64, na - n);
	mlx_sha256_blocks(sb, pb + n * 64, nb - n);
	mlx_sha256_hex(sa, ha);
	mlx_sha256_hex(sb, hb);
	free(pa);
	free(pb);
}

static void two_messages_at_once_match_openssl(void **state)
{
	(void)state;
	static const size_t lens[] = {0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 129, 4096, 65536 + 17, 200000};
	const size_t count = sizeof lens / sizeof *lens;
	for (size_t i = 0; i < count; i++) {
		for (size_t k = 0; k < count; k++) {
			unsigned char *a = pattern(lens[i], (unsigned)(2 * i)), *b = pattern(lens[k], (unsigned)(2 * k + 1));
			char want_a[65], want_b[65], got_a[65], got_b[65];
			openssl_hex(a, lens[i], want_a);
			openssl_hex(b, lens[k], want_b);
			hash_pair(a, lens[i], b, lens[k], got_a, got_b);
			assert_string_equal(got_a, want_a);
			assert_string_equal(got_b, want_b);
			free(a);
			free(b);
		}
	}
}

/* Four messages of lengths len[0..3] hashed as the file lanes do: four at
 * once while all have blocks, then each alone; each must be OpenSSL's
 * digest, whatever the mix of lengths and offsets. */
static void four_messages_at_once_match_openssl(void **state)
{
	(void)state;
	static const size_t lens[] = {0, 55, 56, 64, 65, 120, 4096 + 3, 65536 + 17, 200000};
	const size_t count = sizeof lens / sizeof *lens;
	for (size_t i = 0; i < count; i++) {
		size_t len[4] = {lens[i], lens[(i + 3) % count], lens[(i + 5) % count],
		                 lens[(i + 7) % count]};
		unsigned char *msg[4];
		uint32_t h[4][8];
		size_t blocks[4], common = SIZE_MAX;
		for (int k = 0; k < 4; k++) {
			msg[k] = pattern(len[k], (unsigned)(4 * i + k));
			blocks[k] =
			    len[k] / 64 + mlx_sha256_pad(msg[k] + len[k] / 64 * 64, len[k] % 64, len[k]);
			common = blocks[k] < common ? blocks[k] : common;
			mlx_sha256_init(h[k]);
		}
		uint32_t *const states[4] = {h[0], h[1], h[2], h[3]};
		const unsigned char *const at[4] = {msg[0], msg[1], msg[2], msg[3]};
		mlx_sha256_blocks4(states, at, common);
		for (int k = 0; k < 4; k++) {
			unsigned char *copy = pattern(len[k], (unsigned)(4 * i + k));
			char want[65], got[65];
			openssl_hex(copy, len[k], want);
			mlx_sha256_blocks(h[k], msg[k] + common * 64, blocks[k] - common);
			mlx_sha256_hex(h[k], got);
			assert_string_equal(got, want);
			free(copy);
			free(msg[k]);
		}
	}
}

/* Unaligned input, as a lane's blocks are after a carried tail. */
static void unaligned_blocks_hash_the_same(void **state)
{
	(void)state;
	unsigned char *p = pattern(4096 + 8, 3);
	char want[65], got[65];
	for (size_t off = 1; off < 8; off++) {
		openssl_hex(p + off, 4096, want);
		mlx_sha256_bytes(p + off, 4096, got);
		assert_string_equal(got, want);
	}
	free(p);
}

int main(void)
{
	/* Without SHA-NI (or under valgrind, which does not emulate it) the
	 * code is never used: OpenSSL hashes instead (tested in test_hash). */
	if (!mlx_sha256_available()) {
		printf("1..0 # SKIP SHA-NI is not available on this CPU\n");
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(published_vectors),
		cmocka_unit_test(one_message_matches_openssl_at_every_length),
		cmocka_unit_test(two_messages_at_once_match_openssl),
		cmocka_unit_test(four_messages_at_once_match_openssl),
		cmocka_unit_test(unaligned_blocks_hash_the_same),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
