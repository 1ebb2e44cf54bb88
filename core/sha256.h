/* sha256.h — the SHA-256 block function on one, two or four messages at once,
 * with the x86 SHA extensions (SHA-NI).
 *
 * SHA-256 is a chain: every 64-byte block starts from the state the one
 * before left, and within a block each SHA256RNDS2 instruction waits for the
 * previous one. A single message therefore runs at that instruction's
 * latency (OpenSSL reaches ~1.8 GB/s per core here, which is that bound)
 * while the unit could start one every cycle or two. Interleaving the blocks
 * of two independent messages fills those gaps: hashing many files two at a
 * time per thread runs ~1.9 times faster per core, four ~1.2 times faster
 * again (AMD Zen 5), with digests that are exactly SHA-256 (FIPS 180-4) —
 * nothing about the result changes, only the order in which the CPU does
 * independent work.
 *
 * Only the block function and the padding are here; mlx_sha256_available()
 * says whether they may be used. It is 0 on a CPU without SHA-NI, SSSE3 and
 * SSE4.1, or if the code fails its known-answer self-test when first asked;
 * callers then use OpenSSL (hash.h). Nothing here allocates or fails. */
#ifndef MLX_SHA256_H
#define MLX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define MLX_SHA256_BLOCK 64

/* 1 if this CPU runs the functions below and they passed the self-test
 * (done once per process, thread-safe, in microseconds); else 0. */
int mlx_sha256_available(void);

/* Sets h to the initial state. */
void mlx_sha256_init(uint32_t h[8]);

/* Runs the n blocks at p (64 bytes each) through state h. Only when
 * mlx_sha256_available(). */
void mlx_sha256_blocks(uint32_t h[8], const unsigned char *p, size_t n);

/* As mlx_sha256_blocks on two independent messages at once: n blocks at pa
 * through a, and n blocks at pb through b. */
void mlx_sha256_blocks2(uint32_t a[8], const unsigned char *pa, uint32_t b[8], const unsigned char *pb, size_t n);

/* As mlx_sha256_blocks on four independent messages at once: n blocks at
 * p[k] through h[k], for k = 0..3; the fastest per byte where four
 * messages are at hand. */
void mlx_sha256_blocks4(uint32_t *const h[4], const unsigned char *const p[4], size_t n);

/* Pads the last tail (< 64) bytes of a message of total bytes, which the
 * caller has put at block[0..tail), into the final blocks at block (room
 * for 128 bytes). Returns their number: 1, or 2 if tail > 55. */
size_t mlx_sha256_pad(unsigned char *block, size_t tail, uint64_t total);

/* Writes the digest in state h as 64 lowercase hex digits and a NUL. */
void mlx_sha256_hex(const uint32_t h[8], char hex[65]);

/* The SHA-256 of len bytes at p into hex, with the functions above. Only
 * when mlx_sha256_available(). */
void mlx_sha256_bytes(const void *p, size_t len, char hex[65]);

#endif
