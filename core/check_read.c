/* check_read.c — the readers of mlx_check_csv and mlx_check_jsonl
 * (check.h): the file in blocks of 1 MB, rows and fields handed to the
 * counting of check.c. */
#include <csv.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check_internal.h"

#define BLOCK (1u << 20)

static FILE *open_data(const char *path, struct mlx_err *err)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		mlx_err_sys(err, errno, "cannot open %s", path);
	return f;
}

/* ---- CSV -------------------------------------------------------------------- */

struct csv_read {
	struct mlx_check *c;
	int header_done;
	size_t field;     /* index of the next field in the row */
	long *pos_to_col; /* header position -> column, or -1 */
	size_t npos, hcap;
};

static void csv_field(void *s, size_t len, void *data)
{
	struct csv_read *r = data;
	struct mlx_check *c = r->c;
	size_t pos = r->field++;
	if (c->rc)
		return;
	if (!r->header_done) {
		if (c->rows.nheader == r->hcap) {
			size_t cap = r->hcap ? r->hcap * 2 : 32;
			char **h = realloc(c->rows.header, cap * sizeof *h);
			if (!h) {
				c->rc = mlx_err_set(c->err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
				return;
			}
			c->rows.header = h;
			r->hcap = cap;
		}
		char *name = malloc(len + 1);
		if (!name) {
			c->rc = mlx_err_set(c->err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			return;
		}
		if (len)
			memcpy(name, s, len);
		name[len] = '\0';
		c->rows.header[c->rows.nheader++] = name;
		return;
	}
	if (pos >= r->npos || r->pos_to_col[pos] < 0)
		return;
	size_t i = (size_t)r->pos_to_col[pos];
	mlx_check_keep(c, i, s, len);
	mlx_check_field(c, &c->cols[i], s, len, c->rows.rows + 1);
}

static void csv_row(int ch, void *data)
{
	(void)ch;
	struct csv_read *r = data;
	struct mlx_check *c = r->c;
	size_t nfields = r->field;
	r->field = 0;
	if (c->rc)
		return;
	if (!r->header_done) {
		r->header_done = 1;
		r->npos = c->rows.nheader;
		r->pos_to_col = malloc((r->npos ? r->npos : 1) * sizeof *r->pos_to_col);
		if (!r->pos_to_col) {
			c->rc = mlx_err_set(c->err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			return;
		}
		for (size_t p = 0; p < r->npos; p++) {
			r->pos_to_col[p] = -1;
			for (size_t i = 0; i < c->ncols; i++)
				if (!c->cols[i].st.present &&
				    strcmp(c->cols[i].spec.name, c->rows.header[p]) == 0) {
					c->cols[i].st.present = 1;
					r->pos_to_col[p] = (long)i;
					break;
				}
		}
		return;
	}
	uint64_t row = ++c->rows.rows;
	if (nfields != r->npos) {
		char what[64];
		int n = snprintf(what, sizeof what, "%zu fields, the header has %zu", nfields, r->npos);
		mlx_check_note(&c->rows.ragged, row, what, (size_t)n);
		/* the fields a short row lacks are nulls */
		for (size_t p = nfields; p < r->npos; p++)
			if (r->pos_to_col[p] >= 0)
				mlx_check_field(c, &c->cols[r->pos_to_col[p]], NULL, 0, row);
	}
	mlx_check_end_row(c, row);
}

/* libcsv's state between rows (ROW_NOT_BEGUN in libcsv.c). */
#define CSV_BETWEEN_ROWS 0

static int is_blank(char ch, char delim)
{
	return (ch == ' ' || ch == '\t') && ch != delim;
}

/* A line that libcsv would read as plain fields split at the delimiter:
 * no quote, no carriage return but a last one, and libcsv between rows.
 * Such a line is split here (libcsv copies every byte into its buffer and
 * costs about as much as all the checks); any other goes to libcsv. The
 * results are the same: spaces and tabs around a field are trimmed, an
 * empty field is a null, a blank line is no row (tests/lua/test_check.lua
 * compares both on random files). */
static int plain_line(const char *s, size_t len, char quote)
{
	if (memchr(s, quote, len))
		return 0;
	const char *cr = memchr(s, '\r', len);
	return !cr || cr == s + len - 1;
}

static void split_line(struct csv_read *r, char *s, size_t len, char delim)
{
	if (len && s[len - 1] == '\r')
		len--;
	size_t a = 0;
	while (a < len && is_blank(s[a], delim))
		a++;
	if (a == len)
		return; /* blank: no row, as libcsv */
	char *end = s + len;
	char *p = s;
	for (;;) {
		char *q = memchr(p, delim, (size_t)(end - p));
		char *stop = q ? q : end;
		char *f = p, *e = stop;
		while (f < e && is_blank(*f, delim))
			f++;
		while (e > f && is_blank(e[-1], delim))
			e--;
		char saved = *e; /* the delimiter, a blank or the terminator */
		*e = '\0';
		csv_field(e == f ? NULL : f, (size_t)(e - f), r);
		*e = saved;
		if (!q)
			break;
		p = q + 1;
	}
	csv_row('\n', r);
}

int mlx_check_csv(struct mlx_check *c, const char *path, const struct mlx_check_options *o,
                  struct mlx_err *err)
{
	mlx_err_clear(err);
	if (mlx_check_prepare_na(c, o, err) != 0)
		return err->status;
	FILE *f = open_data(path, err);
	if (!f)
		return err->status;
	struct csv_parser parser;
	if (csv_init(&parser, CSV_APPEND_NULL | CSV_EMPTY_IS_NULL) != 0) {
		fclose(f);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	char delim = o->delimiter ? o->delimiter : ',';
	csv_set_delim(&parser, (unsigned char)delim);
	/* One byte more than is read, so a last line without a newline can be
	 * terminated in place. */
	size_t cap = 2 * (size_t)BLOCK, have = 0;
	char *buf = malloc(cap + 1);
	struct csv_read r = {.c = c};
	c->o = o;
	c->err = err;
	c->rc = 0;
	int rc = buf ? 0 : mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	int eof = 0;
	while (rc == 0 && !eof) {
		if (cap - have < BLOCK) {
			char *grown = realloc(buf, 2 * cap + 1); /* a line longer than a block */
			if (!grown) {
				rc = mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
				break;
			}
			buf = grown;
			cap *= 2;
		}
		size_t n = fread(buf + have, 1, cap - have, f);
		if (n == 0) {
			if (ferror(f)) {
				rc = mlx_err_sys(err, errno, "cannot read %s", path);
				break;
			}
			eof = 1;
		}
		have += n;
		size_t pos = 0;
		while (rc == 0) {
			char *nl = memchr(buf + pos, '\n', have - pos);
			if (!nl && !(eof && pos < have))
				break;
			size_t len = nl ? (size_t)(nl - (buf + pos)) : have - pos;
			size_t take = nl ? len + 1 : len;
			if (r.header_done && !o->libcsv_only && parser.pstate == CSV_BETWEEN_ROWS &&
			    plain_line(buf + pos, len, '"')) {
				split_line(&r, buf + pos, len, delim);
			} else if (csv_parse(&parser, buf + pos, take, csv_field, csv_row, &r) != take) {
				rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "%s: row %llu: %s", path,
				                 (unsigned long long)c->rows.rows + 1,
				                 csv_strerror(csv_error(&parser)));
			}
			pos += take;
			if (rc == 0 && c->rc)
				rc = c->rc;
		}
		memmove(buf, buf + pos, have - pos);
		have -= pos;
		if (rc == 0 && o->cancelled && o->cancelled(o->cancel_arg))
			rc = mlx_err_set(err, MLX_ERR_INTERRUPTED, 0, "interrupted");
	}
	if (rc == 0) {
		csv_fini(&parser, csv_field, csv_row, &r);
		rc = c->rc;
	}
	if (rc == 0 && !r.header_done)
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "%s: empty file, no header row", path);
	csv_free(&parser);
	free(buf);
	free(r.pos_to_col);
	fclose(f);
	if (rc == 0)
		mlx_check_finish(c);
	return rc;
}

/* ---- JSON Lines ------------------------------------------------------------- */

/* The text of a JSON value, as the CSV of the same data would hold it, in
 * buf (grown as needed); NULL for null. */
static const char *json_text(json_t *v, char **buf, size_t *cap, size_t *len)
{
	char tmp[40];
	const char *s = tmp;
	size_t n;
	char *dumped = NULL;
	switch (json_typeof(v)) {
	case JSON_NULL: return NULL;
	case JSON_STRING:
		s = json_string_value(v);
		n = json_string_length(v);
		break;
	case JSON_INTEGER:
		n = (size_t)snprintf(tmp, sizeof tmp, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
		break;
	case JSON_REAL: {
		double d = json_real_value(v);
		/* the shortest text that reads back as the same double */
		for (int prec = 15; prec <= 17; prec++) {
			n = (size_t)snprintf(tmp, sizeof tmp, "%.*g", prec, d);
			if (strtod(tmp, NULL) == d)
				break;
		}
		break;
	}
	case JSON_TRUE:
		s = "true";
		n = 4;
		break;
	case JSON_FALSE:
		s = "false";
		n = 5;
		break;
	default:
		dumped = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		s = dumped ? dumped : "";
		n = strlen(s);
		break;
	}
	if (n + 1 > *cap) {
		size_t c = *cap ? *cap : 64;
		while (c < n + 1)
			c *= 2;
		char *b = realloc(*buf, c);
		if (!b) {
			free(dumped);
			return NULL;
		}
		*buf = b;
		*cap = c;
	}
	memcpy(*buf, s, n);
	(*buf)[n] = '\0';
	*len = n;
	free(dumped);
	return *buf;
}

int mlx_check_jsonl(struct mlx_check *c, const char *path, const struct mlx_check_options *o,
                    struct mlx_err *err)
{
	mlx_err_clear(err);
	FILE *f = open_data(path, err);
	if (!f)
		return err->status;
	if (mlx_check_prepare_na(c, o, err) != 0) {
		fclose(f);
		return err->status;
	}
	c->o = o;
	c->err = err;
	c->rc = 0;
	char *line = NULL, *buf = NULL;
	size_t linecap = 0, bufcap = 0;
	ssize_t n;
	uint64_t lines = 0;
	int rc = 0;
	errno = 0;
	while (rc == 0 && (n = getline(&line, &linecap, f)) >= 0) {
		lines++;
		size_t len = (size_t)n;
		while (len && (line[len - 1] == '\n' || line[len - 1] == '\r' || line[len - 1] == ' '))
			len--;
		if (len == 0)
			continue;
		uint64_t row = ++c->rows.rows;
		json_error_t jerr;
		json_t *obj = json_loadb(line, len, JSON_DECODE_ANY, &jerr);
		if (!obj || !json_is_object(obj)) {
			mlx_check_note(&c->rows.malformed, row, line, len);
			json_decref(obj);
			for (size_t i = 0; i < c->ncols; i++)
				mlx_check_field(c, &c->cols[i], NULL, 0, row);
		} else {
			for (size_t i = 0; i < c->ncols; i++) {
				json_t *v = json_object_get(obj, c->cols[i].spec.name);
				size_t vlen = 0;
				const char *text = NULL;
				if (v) {
					c->cols[i].st.present = 1;
					text = json_text(v, &buf, &bufcap, &vlen);
				}
				mlx_check_keep(c, i, text, vlen);
				mlx_check_field(c, &c->cols[i], text, vlen, row);
			}
			json_decref(obj);
		}
		mlx_check_end_row(c, row);
		rc = c->rc;
		if (rc == 0 && (lines & 0xfff) == 0 && o->cancelled && o->cancelled(o->cancel_arg))
			rc = mlx_err_set(err, MLX_ERR_INTERRUPTED, 0, "interrupted");
	}
	if (rc == 0 && ferror(f))
		rc = mlx_err_sys(err, errno, "cannot read %s", path);
	free(line);
	free(buf);
	fclose(f);
	if (rc == 0)
		mlx_check_finish(c);
	return rc;
}
