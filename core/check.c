/* check.c — the counting of mlx.check (check.h): the checker, and
 * mlx_check_field, the per-value work of every rule, which the readers of
 * check_read.c call for each field of a checked column. Numbers are
 * parsed by a fast path exact for the decimals data files hold (a mantissa
 * of up to 19 digits and a power of ten a double holds exactly, Clinger's
 * fast path), and by strtod otherwise, so results equal strtod's. */
#include "check_internal.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* ---- small containers ----------------------------------------------------- */

static uint64_t hash_bytes(const char *p, size_t n)
{
	/* 64-bit multiply-xorshift over 8-byte words (as in wyhash's spirit):
	 * fast for short fields, well mixed for fingerprints. */
	uint64_t h = 0x9e3779b97f4a7c15ull ^ (n * 0xff51afd7ed558ccdull);
	while (n >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		h ^= w * 0x87c37b91114253d5ull;
		h = (h << 31 | h >> 33) * 0x4cf5ad432745937full;
		p += 8;
		n -= 8;
	}
	uint64_t w = 0;
	memcpy(&w, p, n);
	h ^= w * 0x87c37b91114253d5ull;
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	h *= 0xc4ceb9fe1a85ec53ull;
	h ^= h >> 33;
	return h;
}

/* Adds fp; returns 1 if it was new, 0 if present, -1 out of memory. */
static int fpset_add(struct fpset *s, uint64_t fp)
{
	if (fp == 0)
		fp = 1;
	if ((s->used + 1) * 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;
		uint64_t *slots = calloc(cap, sizeof *slots);
		if (!slots)
			return -1;
		for (size_t i = 0; i < s->cap; i++) {
			if (!s->slots[i])
				continue;
			size_t j = s->slots[i] & (cap - 1);
			while (slots[j])
				j = (j + 1) & (cap - 1);
			slots[j] = s->slots[i];
		}
		free(s->slots);
		s->slots = slots;
		s->cap = cap;
	}
	size_t j = fp & (s->cap - 1);
	while (s->slots[j]) {
		if (s->slots[j] == fp)
			return 0;
		j = (j + 1) & (s->cap - 1);
	}
	s->slots[j] = fp;
	s->used++;
	return 1;
}

static struct category *catmap_find(const struct catmap *m, const char *v, size_t len, uint64_t h)
{
	if (!m->cap)
		return NULL;
	size_t j = h & (m->cap - 1);
	while (m->slots[j].value) {
		struct category *e = &m->slots[j];
		if (e->hash == h && e->len == len && memcmp(e->value, v, len) == 0)
			return e;
		j = (j + 1) & (m->cap - 1);
	}
	return &m->slots[j]; /* the empty slot where it would go */
}

/* Counts v; returns 0, or -1 out of memory. A value beyond limit distinct
 * ones is not added: *dropped is set. */
static int catmap_add(struct catmap *m, const char *v, size_t len, size_t limit, int *dropped)
{
	uint64_t h = hash_bytes(v, len);
	struct category *e = catmap_find(m, v, len, h);
	if (e && e->value) {
		e->count++;
		return 0;
	}
	if (m->used >= limit) {
		*dropped = 1;
		return 0;
	}
	if ((m->used + 1) * 2 > m->cap) {
		size_t cap = m->cap ? m->cap * 2 : 64;
		struct category *slots = calloc(cap, sizeof *slots);
		if (!slots)
			return -1;
		struct catmap grown = {slots, cap, m->used};
		for (size_t i = 0; i < m->cap; i++) {
			if (!m->slots[i].value)
				continue;
			*catmap_find(&grown, m->slots[i].value, m->slots[i].len, m->slots[i].hash) =
			    m->slots[i];
		}
		free(m->slots);
		*m = grown;
		e = catmap_find(m, v, len, h);
	}
	char *copy = malloc(len + 1);
	if (!copy)
		return -1;
	memcpy(copy, v, len);
	copy[len] = '\0';
	*e = (struct category){h, copy, len, 1};
	m->used++;
	return 0;
}

static void catmap_free(struct catmap *m)
{
	for (size_t i = 0; i < m->cap; i++)
		free(m->slots[i].value);
	free(m->slots);
	memset(m, 0, sizeof *m);
}

/* ---- values --------------------------------------------------------------- */

static const double pow10_exact[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,  1e8,  1e9,  1e10, 1e11,
                                     1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

/* Parses v (NUL-terminated, len bytes) as a whole number; returns 1 and
 * sets *x, or 0 when it is not one. */
static int parse_number(const char *v, size_t len, double *x)
{
	const char *p = v, *end = v + len;
	int neg = 0;
	if (p < end && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	uint64_t mant = 0;
	int digits = 0, scale = 0, any = 0;
	while (p < end && *p >= '0' && *p <= '9') {
		if (digits < 19) {
			mant = mant * 10 + (uint64_t)(*p - '0');
			if (mant)
				digits++;
		} else {
			scale++;
		}
		any = 1;
		p++;
	}
	if (p < end && *p == '.') {
		p++;
		while (p < end && *p >= '0' && *p <= '9') {
			if (digits < 19) {
				mant = mant * 10 + (uint64_t)(*p - '0');
				if (mant)
					digits++;
				scale--;
			}
			any = 1;
			p++;
		}
	}
	if (!any)
		goto slow;
	if (p < end && (*p == 'e' || *p == 'E')) {
		p++;
		int eneg = 0, e = 0, edigits = 0;
		if (p < end && (*p == '-' || *p == '+'))
			eneg = *p++ == '-';
		while (p < end && *p >= '0' && *p <= '9') {
			if (e < 10000)
				e = e * 10 + (*p - '0');
			edigits++;
			p++;
		}
		if (!edigits)
			return 0;
		scale += eneg ? -e : e;
	}
	if (p != end)
		goto slow;
	if (mant < (1ull << 53) && scale >= -22 && scale <= 22) {
		double d = (double)mant;
		d = scale < 0 ? d / pow10_exact[-scale] : d * pow10_exact[scale];
		*x = neg ? -d : d;
		return 1;
	}
slow:
	/* strtod for the rest: long mantissas, large exponents, inf. NaN is
	 * not a number here (list it among the nulls to accept it). */
	if (len == 0)
		return 0;
	errno = 0;
	char *stop;
	double d = strtod(v, &stop);
	if (stop != end || d != d)
		return 0;
	for (const char *q = v; q < end; q++)
		if (*q == ' ' || *q == '\t' || *q == 'x' || *q == 'X' || *q == 'p' || *q == 'P')
			return 0; /* no padding, no hexadecimal floats */
	*x = d;
	return 1;
}

static int parse_int(const char *v, size_t len, double *x)
{
	const char *p = v, *end = v + len;
	int neg = 0;
	if (p < end && (*p == '-' || *p == '+'))
		neg = *p++ == '-';
	if (p == end || end - p > 19)
		return 0;
	uint64_t n = 0;
	for (; p < end; p++) {
		if (*p < '0' || *p > '9')
			return 0;
		n = n * 10 + (uint64_t)(*p - '0');
	}
	if (n > (uint64_t)INT64_MAX + (uint64_t)neg)
		return 0;
	*x = neg ? -(double)n : (double)n;
	return 1;
}

static int is_bool(const char *v, size_t len)
{
	static const char *const words[] = {"true", "false", "True", "False", "TRUE", "FALSE", "1", "0"};
	for (size_t i = 0; i < sizeof words / sizeof *words; i++)
		if (strlen(words[i]) == len && memcmp(words[i], v, len) == 0)
			return 1;
	return 0;
}

static int is_na(const struct mlx_check *c, const char *v, size_t len)
{
	/* Most values cannot be a null string by their first byte or length. */
	if (len > c->na_max || (len && !c->na_first[(unsigned char)v[0]]))
		return 0;
	for (size_t i = 0; i < c->o->nna; i++)
		if (c->na_len[i] == len && memcmp(c->o->na[i], v, len) == 0)
			return 1;
	return 0;
}

/* Measures the null strings once per read, not once per field. */
int mlx_check_prepare_na(struct mlx_check *c, const struct mlx_check_options *o, struct mlx_err *err)
{
	free(c->na_len);
	c->na_len = calloc(o->nna ? o->nna : 1, sizeof *c->na_len);
	if (!c->na_len)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	c->na_max = 0;
	memset(c->na_first, 0, sizeof c->na_first);
	for (size_t i = 0; i < o->nna; i++) {
		c->na_len[i] = strlen(o->na[i]);
		c->na_first[(unsigned char)o->na[i][0]] = 1;
		if (c->na_len[i] > c->na_max)
			c->na_max = c->na_len[i];
	}
	return 0;
}

void mlx_check_note(struct mlx_check_count *k, uint64_t row, const char *v, size_t len)
{
	k->count++;
	if (k->nexamples >= MLX_CHECK_EXAMPLES)
		return;
	struct mlx_check_example *ex = &k->examples[k->nexamples++];
	ex->row = row;
	size_t max = sizeof ex->value - 1;
	if (len > max) {
		/* cut at a character boundary and mark it */
		size_t cut = max - 3;
		while (cut > 0 && ((unsigned char)v[cut] & 0xc0) == 0x80)
			cut--;
		memcpy(ex->value, v, cut);
		memcpy(ex->value + cut, "\xe2\x80\xa6", 4);
	} else {
		memcpy(ex->value, v, len);
		ex->value[len] = '\0';
	}
}

static uint64_t next_random(struct mlx_check *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * 0x2545f4914f6cdd1dull;
}

static void count_number(struct mlx_check *c, struct column *col, double x, uint64_t row, const char *v,
                         size_t len)
{
	struct mlx_check_stats *st = &col->st;
	if (st->numbers == 0 || x < st->min)
		st->min = x;
	if (st->numbers == 0 || x > st->max)
		st->max = x;
	st->numbers++;
	st->sum += x;
	if (col->spec.has_min && x < col->spec.min)
		mlx_check_note(&st->rules[MLX_CHECK_MIN], row, v, len);
	if (col->spec.has_max && x > col->spec.max)
		mlx_check_note(&st->rules[MLX_CHECK_MAX], row, v, len);
	if (st->bins) {
		size_t lo = 0, hi = col->spec.nedges; /* first edge >= x */
		while (lo < hi) {
			size_t mid = (lo + hi) / 2;
			if (col->spec.edges[mid] < x)
				lo = mid + 1;
			else
				hi = mid;
		}
		st->bins[lo]++;
	}
	if (col->sample_cap) {
		/* reservoir sampling (Vitter's algorithm R) */
		col->sampled++;
		if (st->nsample < col->sample_cap) {
			st->sample[st->nsample++] = x;
		} else {
			uint64_t j = next_random(c) % col->sampled;
			if (j < col->sample_cap)
				st->sample[j] = x;
		}
	}
}

/* The work of every rule on one value of col; v is NULL for a null. */
void mlx_check_field(struct mlx_check *c, struct column *col, const char *v, size_t len, uint64_t row)
{
	struct mlx_check_stats *st = &col->st;
	if (!v || is_na(c, v, len)) {
		st->nulls++;
		if (!col->spec.nulls_allowed)
			mlx_check_note(&st->rules[MLX_CHECK_NULL], row, "", 0);
		return;
	}
	double x;
	switch (col->spec.type) {
	case MLX_CHECK_INT:
		if (parse_int(v, len, &x))
			count_number(c, col, x, row, v, len);
		else
			mlx_check_note(&st->rules[MLX_CHECK_TYPE], row, v, len);
		break;
	case MLX_CHECK_NUMBER:
		if (parse_number(v, len, &x))
			count_number(c, col, x, row, v, len);
		else
			mlx_check_note(&st->rules[MLX_CHECK_TYPE], row, v, len);
		break;
	case MLX_CHECK_BOOL:
		if (!is_bool(v, len))
			mlx_check_note(&st->rules[MLX_CHECK_TYPE], row, v, len);
		break;
	default: break;
	}
	if (col->check_allowed) {
		struct category *e = catmap_find(&col->allowed, v, len, hash_bytes(v, len));
		if (!e || !e->value)
			mlx_check_note(&st->rules[MLX_CHECK_ALLOWED], row, v, len);
	}
	if (col->spec.unique) {
		int added = fpset_add(&col->seen, hash_bytes(v, len));
		if (added < 0 && !c->rc)
			c->rc = mlx_err_set(c->err, MLX_ERR_NOMEM, ENOMEM,
			                    "out of memory checking uniqueness of %s", col->spec.name);
		else if (added == 0)
			mlx_check_note(&st->rules[MLX_CHECK_UNIQUE], row, v, len);
	}
	if (col->spec.categories) {
		int dropped = 0;
		if (catmap_add(&col->categories, v, len, col->spec.categories, &dropped) < 0 && !c->rc)
			c->rc = mlx_err_set(c->err, MLX_ERR_NOMEM, ENOMEM,
			                    "out of memory counting values of %s", col->spec.name);
		st->categories_other += (uint64_t)dropped;
	}
}

/* ---- the checker ------------------------------------------------------------ */

static char *dup_string(const char *s)
{
	size_t n = strlen(s) + 1;
	char *d = malloc(n);
	return d ? memcpy(d, s, n) : NULL;
}

struct mlx_check *mlx_check_new(const struct mlx_check_spec *specs, size_t nspecs, struct mlx_err *err)
{
	struct mlx_check *c = calloc(1, sizeof *c);
	if (!c)
		goto nomem;
	c->rng = 0x853c49e6748fea9bull;
	c->cols = calloc(nspecs ? nspecs : 1, sizeof *c->cols);
	c->offs = calloc(nspecs ? nspecs : 1, sizeof *c->offs);
	c->lens = calloc(nspecs ? nspecs : 1, sizeof *c->lens);
	c->fields = calloc(nspecs ? nspecs : 1, sizeof *c->fields);
	c->have = calloc(nspecs ? nspecs : 1, 1);
	if (!c->cols || !c->offs || !c->lens || !c->fields || !c->have)
		goto nomem;
	for (size_t i = 0; i < nspecs; i++) {
		const struct mlx_check_spec *s = &specs[i];
		struct column *col = &c->cols[i];
		c->ncols = i + 1;
		if (!s->name || !*s->name) {
			mlx_err_set(err, MLX_ERR_INVALID, 0, "column %zu has no name", i + 1);
			goto fail;
		}
		for (size_t j = 0; j < i; j++)
			if (strcmp(specs[j].name, s->name) == 0) {
				mlx_err_set(err, MLX_ERR_INVALID, 0, "column %s is declared twice", s->name);
				goto fail;
			}
		for (size_t j = 1; j < s->nedges; j++)
			if (!(s->edges[j - 1] < s->edges[j])) {
				mlx_err_set(err, MLX_ERR_INVALID, 0, "column %s: bin edges must increase",
				            s->name);
				goto fail;
			}
		col->spec = *s;
		col->spec.edges = NULL;
		col->spec.allowed = NULL;
		if (!(col->spec.name = dup_string(s->name)))
			goto nomem;
		if (s->allowed) {
			col->check_allowed = 1;
			int dropped = 0;
			for (size_t j = 0; j < s->nallowed; j++)
				if (catmap_add(&col->allowed, s->allowed[j], strlen(s->allowed[j]), SIZE_MAX,
				               &dropped) < 0)
					goto nomem;
		}
		if (s->nedges) {
			double *edges = malloc(s->nedges * sizeof *edges);
			col->st.bins = calloc(s->nedges + 1, sizeof *col->st.bins);
			if (!edges || !col->st.bins) {
				free(edges);
				goto nomem;
			}
			memcpy(edges, s->edges, s->nedges * sizeof *edges);
			col->spec.edges = edges;
			col->st.nbins = s->nedges + 1;
		}
		if (s->sample) {
			if (!(col->st.sample = malloc(s->sample * sizeof *col->st.sample)))
				goto nomem;
			col->sample_cap = s->sample;
		}
	}
	return c;
nomem:
	mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
fail:
	mlx_check_free(c);
	return NULL;
}

void mlx_check_free(struct mlx_check *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ncols; i++) {
		struct column *col = &c->cols[i];
		free((char *)col->spec.name);
		free((double *)col->spec.edges);
		free(col->st.bins);
		free(col->st.sample);
		catmap_free(&col->allowed);
		catmap_free(&col->categories);
		free(col->seen.slots);
	}
	for (size_t i = 0; i < c->rows.nheader; i++)
		free(c->rows.header[i]);
	free(c->rows.header);
	free(c->cols);
	free(c->rowbuf);
	free(c->offs);
	free(c->lens);
	free(c->fields);
	free(c->have);
	free(c->na_len);
	free(c);
}

const struct mlx_check_stats *mlx_check_stats(const struct mlx_check *c, size_t i)
{
	return &c->cols[i].st;
}

const struct mlx_check_rows *mlx_check_rows(const struct mlx_check *c)
{
	return &c->rows;
}

void mlx_check_category(const struct mlx_check *c, size_t i, size_t j, const char **value, size_t *len,
                        uint64_t *count)
{
	const struct catmap *m = &c->cols[i].categories;
	for (size_t k = 0; k < m->cap; k++) {
		if (!m->slots[k].value)
			continue;
		if (j-- == 0) {
			*value = m->slots[k].value;
			*len = m->slots[k].len;
			*count = m->slots[k].count;
			return;
		}
	}
	*value = "";
	*len = 0;
	*count = 0;
}

static int compare_doubles(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

void mlx_check_finish(struct mlx_check *c)
{
	for (size_t i = 0; i < c->ncols; i++) {
		struct column *col = &c->cols[i];
		col->st.ncategories = col->categories.used;
		if (col->st.nsample)
			qsort(col->st.sample, col->st.nsample, sizeof *col->st.sample, compare_doubles);
	}
}

/* Keeps a copy of column i's value of the current row for on_row. */
void mlx_check_keep(struct mlx_check *c, size_t i, const char *v, size_t len)
{
	if (!c->o->on_row || c->rc)
		return;
	c->have[i] = v != NULL;
	if (!v)
		return;
	if (c->rowlen + len + 1 > c->rowcap) {
		size_t cap = (c->rowcap ? c->rowcap : 256);
		while (cap < c->rowlen + len + 1)
			cap *= 2;
		char *buf = realloc(c->rowbuf, cap);
		if (!buf) {
			c->rc = mlx_err_set(c->err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			return;
		}
		c->rowbuf = buf;
		c->rowcap = cap;
	}
	memcpy(c->rowbuf + c->rowlen, v, len);
	c->rowbuf[c->rowlen + len] = '\0';
	c->offs[i] = c->rowlen;
	c->lens[i] = len;
	c->rowlen += len + 1;
}

void mlx_check_end_row(struct mlx_check *c, uint64_t row)
{
	if (!c->o->on_row || c->rc)
		return;
	for (size_t i = 0; i < c->ncols; i++)
		c->fields[i] = c->have[i] ? c->rowbuf + c->offs[i] : NULL;
	if (c->o->on_row(c->o->ctx, row, c->fields, c->lens, c->err) != 0)
		c->rc = c->err->status ? c->err->status
		                       : mlx_err_set(c->err, MLX_ERR_INVALID, 0, "stopped at row %llu",
		                                     (unsigned long long)row);
	c->rowlen = 0;
	memset(c->have, 0, c->ncols);
}
