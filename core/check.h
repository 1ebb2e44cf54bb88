/* check.h — data validation of CSV (libcsv) and JSON Lines (jansson) files,
 * streamed: the per-field work of mlx.check (stdlib/mlx/check.lua declares
 * the rules and turns the counts into verdicts, drift statistics and
 * metrics).
 *
 * A checker holds one spec per checked column. mlx_check_csv and
 * mlx_check_jsonl read a file once, in blocks, and count per column: nulls,
 * values of the wrong type, below min, above max, not among the allowed
 * values, duplicates; with up to MLX_CHECK_EXAMPLES example rows for each.
 * For drift they also count values into bins (numeric), count distinct
 * values (categorical) or keep a uniform sample (numeric, for a reference).
 *
 * Memory: O(columns) for every rule but three, whose cost is stated where
 * they are declared: unique (8 bytes per distinct value, in a table at most
 * half full), categories (each distinct value once, up to a cap) and sample
 * (8 bytes per kept value). Nothing grows with the file otherwise; the
 * largest single row is buffered.
 *
 * Ownership: the checker owns copies of everything in its specs; stats
 * returned by mlx_check_stats point into the checker and live until
 * mlx_check_free. Functions return 0 or a negative enum mlx_status and
 * fill err; they never print. */
#ifndef MLX_CHECK_H
#define MLX_CHECK_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

#define MLX_CHECK_EXAMPLES 3
#define MLX_CHECK_EXAMPLE_BYTES 48

enum mlx_check_type {
	MLX_CHECK_ANY,    /* no type: nulls, allowed values, uniqueness only */
	MLX_CHECK_STRING, /* any text */
	MLX_CHECK_INT,    /* optional sign and decimal digits, within int64 */
	MLX_CHECK_NUMBER, /* a decimal or integer, with optional exponent */
	MLX_CHECK_BOOL,   /* true/false, True/False, TRUE/FALSE, 1/0 */
};

/* What a column's values are counted against; one counter each. */
enum mlx_check_rule {
	MLX_CHECK_NULL,    /* a null where nulls are not allowed */
	MLX_CHECK_TYPE,    /* not of the declared type */
	MLX_CHECK_MIN,     /* a number below min */
	MLX_CHECK_MAX,     /* a number above max */
	MLX_CHECK_ALLOWED, /* not one of the allowed values */
	MLX_CHECK_UNIQUE,  /* a value seen before in an earlier row */
	MLX_CHECK_NRULES,
};

struct mlx_check_spec {
	const char *name; /* the CSV header name or JSON key */
	enum mlx_check_type type;
	int nulls_allowed;
	int has_min, has_max;
	double min, max;
	const char *const *allowed; /* nallowed strings; NULL for any */
	size_t nallowed;
	int unique;          /* 8 bytes per distinct value */
	size_t categories;   /* count up to this many distinct values; 0: none */
	size_t sample;       /* keep a uniform sample of this many numbers */
	const double *edges; /* sorted bin edges for numbers; counts[i] holds */
	size_t nedges;       /* edges[i-1] < v <= edges[i], counts[nedges] the rest */
};

struct mlx_check_example {
	uint64_t row;                        /* 1-based data row (the header is row 0) */
	char value[MLX_CHECK_EXAMPLE_BYTES]; /* the value, cut with "…" */
};

struct mlx_check_count {
	uint64_t count;
	size_t nexamples;
	struct mlx_check_example examples[MLX_CHECK_EXAMPLES];
};

struct mlx_check_stats {
	int present;          /* the column is in the header (CSV) or in some row */
	uint64_t nulls;       /* null values, allowed or not */
	uint64_t numbers;     /* values parsed as numbers (int and number types) */
	double sum, min, max; /* of those numbers */
	struct mlx_check_count rules[MLX_CHECK_NRULES];
	uint64_t *bins; /* nedges + 1 counts, when edges were given */
	size_t nbins;
	double *sample; /* nsample numbers, sorted, when sample was asked */
	size_t nsample;
	size_t ncategories;        /* distinct values counted (see mlx_check_category) */
	uint64_t categories_other; /* values not counted: the cap was reached */
};

/* Row-level results. */
struct mlx_check_rows {
	uint64_t rows;                    /* data rows read */
	struct mlx_check_count ragged;    /* rows with another number of fields than the header */
	struct mlx_check_count malformed; /* JSON Lines: lines that are not a JSON object */
	char **header;                    /* CSV: the header's names (nheader), else NULL */
	size_t nheader;
};

/* Called once per data row when set: fields[i] and lens[i] are column i's
 * value (fields[i] NULL for a null), in spec order. Returns 0 to go on,
 * non-zero to stop the read (which then fails with MLX_ERR_INVALID and
 * the message the callback left in err). */
typedef int (*mlx_check_row_fn)(void *ctx, uint64_t row, const char *const *fields, const size_t *lens,
                                struct mlx_err *err);

struct mlx_check_options {
	char delimiter;        /* CSV: default ',' */
	const char *const *na; /* strings read as null (besides a missing value) */
	size_t nna;
	mlx_check_row_fn on_row; /* optional */
	void *ctx;
	int libcsv_only;             /* CSV: give every line to libcsv (see check.c) */
	int (*cancelled)(void *arg); /* optional: polled between blocks of */
	void *cancel_arg;            /* the file; non-zero stops the read */
};

struct mlx_check;

/* Returns a new checker of nspecs columns (copied), or NULL with err filled
 * (out of memory, a spec without a name, two specs of one name, unsorted
 * edges). */
struct mlx_check *mlx_check_new(const struct mlx_check_spec *specs, size_t nspecs, struct mlx_err *err);

/* Reads the CSV file at path (first row: the header) and counts. Returns 0;
 * MLX_ERR_NOTFOUND or MLX_ERR_IO when it cannot be read; MLX_ERR_INVALID
 * for a file libcsv cannot parse or a stopped read; MLX_ERR_NOMEM;
 * MLX_ERR_INTERRUPTED when o->cancelled said stop. A checker reads one
 * file. */
int mlx_check_csv(struct mlx_check *c, const char *path, const struct mlx_check_options *o,
                  struct mlx_err *err);

/* As mlx_check_csv for a JSON Lines file: one object per line, a key's
 * value its column's (strings as they are, numbers as their shortest text,
 * true/false, null or a missing key as null, arrays and objects as their
 * compact JSON). Blank lines are skipped. */
int mlx_check_jsonl(struct mlx_check *c, const char *path, const struct mlx_check_options *o,
                    struct mlx_err *err);

/* Returns the counts of column i (in spec order), valid until
 * mlx_check_free. */
const struct mlx_check_stats *mlx_check_stats(const struct mlx_check *c, size_t i);

/* Returns the row-level counts. */
const struct mlx_check_rows *mlx_check_rows(const struct mlx_check *c);

/* Sets *value, *len and *count to the j-th counted distinct value of column
 * i (0 <= j < ncategories, in no particular order). */
void mlx_check_category(const struct mlx_check *c, size_t i, size_t j, const char **value, size_t *len,
                        uint64_t *count);

/* Frees the checker and everything it returned; NULL is fine. */
void mlx_check_free(struct mlx_check *c);

#endif
