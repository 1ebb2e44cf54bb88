/* check_internal.h — what core/check.c (the counting) and core/check_read.c
 * (the CSV and JSON Lines readers) share; not for other files. */
#ifndef MLX_CHECK_INTERNAL_H
#define MLX_CHECK_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "check.h"

/* A set of 64-bit fingerprints (uniqueness), open addressing, at most half
 * full; 0 marks an empty slot, so a fingerprint of 0 is stored as 1. */
struct fpset {
	uint64_t *slots;
	size_t cap, used;
};

struct category {
	uint64_t hash;
	char *value; /* NULL: empty slot */
	size_t len;
	uint64_t count;
};

/* Distinct values with counts (categories), or a set (allowed values). */
struct catmap {
	struct category *slots;
	size_t cap, used;
};

struct column {
	struct mlx_check_spec spec; /* owns name, allowed, edges */
	struct mlx_check_stats st;
	int check_allowed;
	struct catmap allowed;
	struct catmap categories;
	struct fpset seen;
	size_t sample_cap;
	uint64_t sampled; /* numbers offered to the sample */
};

struct mlx_check {
	struct column *cols;
	size_t ncols;
	struct mlx_check_rows rows;
	const struct mlx_check_options *o;
	size_t *na_len, na_max;      /* lengths of o->na */
	unsigned char na_first[256]; /* first bytes of o->na */
	uint64_t rng;                /* xorshift64*, fixed seed: a check's sample is reproducible */
	int rc;                      /* first failure inside a callback */
	struct mlx_err *err;
	/* the current row's values, for on_row: offsets into rowbuf */
	char *rowbuf;
	size_t rowlen, rowcap;
	size_t *offs, *lens;
	const char **fields;
	unsigned char *have;
};

/* Counts one value of column col at data row row: v is NULL for a null.
 * A failure (out of memory) is left in c->rc and c->err. */
void mlx_check_field(struct mlx_check *c, struct column *col, const char *v, size_t len, uint64_t row);

/* Counts one violation with v as an example (the first few). */
void mlx_check_note(struct mlx_check_count *k, uint64_t row, const char *v, size_t len);

/* Measures o's null strings for a read; 0 or MLX_ERR_NOMEM. */
int mlx_check_prepare_na(struct mlx_check *c, const struct mlx_check_options *o, struct mlx_err *err);

/* Keeps column i's value of the current row for o->on_row. */
void mlx_check_keep(struct mlx_check *c, size_t i, const char *v, size_t len);

/* Ends a data row: calls o->on_row with the kept values. */
void mlx_check_end_row(struct mlx_check *c, uint64_t row);

/* After a successful read: sorts the samples, counts the categories. */
void mlx_check_finish(struct mlx_check *c);

#endif
