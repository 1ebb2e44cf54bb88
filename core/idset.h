/* idset.h — a set of object ids in flat memory, for transfers of any size.
 *
 * A push or pull of 200,000 files names 200,000 ids several times over
 * (what the targets need, what the remote's index holds, what is left to
 * send). As Lua tables each id costs a string and a table slot, hundreds
 * of bytes; here it is 32 binary bytes and its size, in one sorted array,
 * so memory grows with the count but stays small.
 *
 * Ids are added in any order (amortised O(1)); the first query sorts and
 * removes duplicates (keeping a known size over 0). A set owns its array;
 * it is used by one thread at a time. */
#ifndef MLX_IDSET_H
#define MLX_IDSET_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct mlx_id_entry {
	unsigned char id[32];
	uint64_t size; /* bytes, 0: unknown */
};

struct mlx_idset {
	struct mlx_id_entry *items;
	size_t len, cap;
	int sorted; /* items are sorted and unique */
	unsigned char *marks; /* one bit per item (mlx_idset_mark), or NULL */
};

/* An empty set; MLX_IDSET_INIT is the same as a zeroed struct. */
#define MLX_IDSET_INIT                                                                                       \
	{                                                                                                    \
		NULL, 0, 0, 1, NULL                                                                          \
	}

/* Frees the array; s is then empty. */
void mlx_idset_free(struct mlx_idset *s);

/* Adds the id written as 64 lowercase hex digits (hex need not be
 * NUL-terminated after them), with size. Returns 0, MLX_ERR_INVALID (not
 * an id: the message quotes it) or MLX_ERR_NOMEM. */
int mlx_idset_add_hex(struct mlx_idset *s, const char *hex, uint64_t size, struct mlx_err *err);

/* Adds a binary id. Returns 0 or MLX_ERR_NOMEM. */
int mlx_idset_add(struct mlx_idset *s, const unsigned char id[32], uint64_t size, struct mlx_err *err);

/* Sorts and removes duplicates (the queries below do it when needed). */
void mlx_idset_sort(struct mlx_idset *s);

/* The number of distinct ids. */
size_t mlx_idset_count(struct mlx_idset *s);

/* The entry of id, or NULL. */
const struct mlx_id_entry *mlx_idset_find(struct mlx_idset *s, const unsigned char id[32]);

/* Sets out (empty) to the ids of a that are not in b. Returns 0 or
 * MLX_ERR_NOMEM. */
int mlx_idset_minus(struct mlx_idset *a, struct mlx_idset *b, struct mlx_idset *out, struct mlx_err *err);

/* Adds every id of b to s. Returns 0 or MLX_ERR_NOMEM. */
int mlx_idset_merge(struct mlx_idset *s, struct mlx_idset *b, struct mlx_err *err);

/* Adds the files of a directory's manifest (text, len bytes; checked as
 * mlx_hash_manifest_parse checks it: format, order and every path) with
 * their sizes. Returns 0, MLX_ERR_CORRUPT naming the bad line, or
 * MLX_ERR_NOMEM. What was added before a bad line stays. */
int mlx_idset_add_manifest(struct mlx_idset *s, const char *text, size_t len, struct mlx_err *err);

/* As mlx_idset_add_manifest, for the manifest object hex in the file at
 * path (in a store): read in pieces and verified as it is read
 * (manifest.h), so memory does not grow with the manifest; on any failure
 * nothing of it stays in s. Returns 0, MLX_ERR_NOTFOUND (no such file, or
 * a symlink), MLX_ERR_CORRUPT (its bytes do not hash to hex, or a bad
 * line), MLX_ERR_IO or MLX_ERR_NOMEM. */
int mlx_idset_add_manifest_file(struct mlx_idset *s, const char *path, const char *hex, struct mlx_err *err);

/* If id is in s, marks it (once) and returns 1; else returns 0. Marks
 * count, without a second set, which ids of s something named (e.g. what a
 * push needs that the remote's index already lists); adding to s clears
 * them. Returns -1 out of memory. */
int mlx_idset_mark(struct mlx_idset *s, const unsigned char id[32]);

/* The number of marked ids of s. */
size_t mlx_idset_marked(const struct mlx_idset *s);

/* As mlx_idset_add_manifest_file, leaving out the ids that are in except
 * (NULL: none), which are marked there instead (mlx_idset_mark). */
int mlx_idset_add_manifest_file_except(struct mlx_idset *s, const char *path, const char *hex,
                                       struct mlx_idset *except, struct mlx_err *err);

/* Parses the id written as 64 lowercase hex digits at hex into id.
 * Returns 1, or 0 when it is not one. */
int mlx_id_from_hex(const char *hex, unsigned char id[32]);

/* Writes id as 64 lowercase hex digits and a NUL into hex. */
void mlx_id_to_hex(const unsigned char id[32], char hex[65]);

#endif
