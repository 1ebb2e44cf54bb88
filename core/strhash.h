/* strhash.h — the hash of the open-addressing tables keyed by names and
 * paths (the lock index's step names, the prefetched file hashes). */
#ifndef MLX_STRHASH_H
#define MLX_STRHASH_H

#include <stddef.h>
#include <stdint.h>

/* Returns the 64-bit FNV-1a hash of the n bytes at s: cheap for short keys
 * and well spread in the low bits the tables mask. Never fails. */
static inline uint64_t mlx_strhash(const char *s, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	for (size_t i = 0; i < n; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

#endif
