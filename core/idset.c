/* idset.c — sorted arrays of binary object ids (idset.h). */
#include "idset.h"

#include "hash.h"
#include "manifest.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

int mlx_id_from_hex(const char *hex, unsigned char id[32])
{
	for (int i = 0; i < 32; i++) {
		int hi = hex_digit(hex[2 * i]);
		if (hi < 0)
			return 0;
		int lo = hex_digit(hex[2 * i + 1]);
		if (lo < 0)
			return 0;
		id[i] = (unsigned char)(hi << 4 | lo);
	}
	return 1;
}

void mlx_id_to_hex(const unsigned char id[32], char hex[65])
{
	static const char digits[] = "0123456789abcdef";
	for (int i = 0; i < 32; i++) {
		hex[2 * i] = digits[id[i] >> 4];
		hex[2 * i + 1] = digits[id[i] & 15];
	}
	hex[64] = '\0';
}

void mlx_idset_free(struct mlx_idset *s)
{
	free(s->marks);
	free(s->items);
	*s = (struct mlx_idset)MLX_IDSET_INIT;
}

int mlx_idset_add(struct mlx_idset *s, const unsigned char id[32], uint64_t size, struct mlx_err *err)
{
	/* The marks name items by index, which a sort would move. */
	free(s->marks);
	s->marks = NULL;
	if (s->len == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 256;
		struct mlx_id_entry *items = realloc(s->items, cap * sizeof *items);
		if (!items)
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		s->items = items;
		s->cap = cap;
	}
	struct mlx_id_entry *e = &s->items[s->len];
	/* Appending in order (a sorted source, a set copied) keeps it sorted. */
	if (s->len > 0 && s->sorted && memcmp(s->items[s->len - 1].id, id, 32) >= 0)
		s->sorted = 0;
	memcpy(e->id, id, 32);
	e->size = size;
	s->len++;
	return MLX_OK;
}

int mlx_idset_add_hex(struct mlx_idset *s, const char *hex, uint64_t size, struct mlx_err *err)
{
	unsigned char id[32];
	if (!mlx_id_from_hex(hex, id) || hex[64] != '\0')
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "not an object id: '%.70s'", hex);
	return mlx_idset_add(s, id, size, err);
}

static int by_id(const void *a, const void *b)
{
	return memcmp(a, b, 32);
}

void mlx_idset_sort(struct mlx_idset *s)
{
	if (s->sorted || s->len == 0)
		return;
	qsort(s->items, s->len, sizeof *s->items, by_id);
	size_t k = 0;
	for (size_t i = 0; i < s->len; i++) {
		if (k > 0 && memcmp(s->items[k - 1].id, s->items[i].id, 32) == 0) {
			if (!s->items[k - 1].size)
				s->items[k - 1].size = s->items[i].size;
			continue;
		}
		s->items[k++] = s->items[i];
	}
	s->len = k;
	s->sorted = 1;
}

size_t mlx_idset_count(struct mlx_idset *s)
{
	mlx_idset_sort(s);
	return s->len;
}

const struct mlx_id_entry *mlx_idset_find(struct mlx_idset *s, const unsigned char id[32])
{
	mlx_idset_sort(s);
	if (s->len == 0)
		return NULL; /* items may be NULL, which bsearch must not get */
	return bsearch(id, s->items, s->len, sizeof *s->items, by_id);
}

int mlx_idset_minus(struct mlx_idset *a, struct mlx_idset *b, struct mlx_idset *out, struct mlx_err *err)
{
	mlx_idset_sort(a);
	mlx_idset_sort(b);
	size_t j = 0;
	for (size_t i = 0; i < a->len; i++) {
		int c = 1;
		while (j < b->len && (c = memcmp(b->items[j].id, a->items[i].id, 32)) < 0)
			j++;
		if (j < b->len && c == 0)
			continue;
		int rc = mlx_idset_add(out, a->items[i].id, a->items[i].size, err);
		if (rc != MLX_OK)
			return rc;
	}
	return MLX_OK;
}

int mlx_idset_merge(struct mlx_idset *s, struct mlx_idset *b, struct mlx_err *err)
{
	for (size_t i = 0; i < b->len; i++) {
		int rc = mlx_idset_add(s, b->items[i].id, b->items[i].size, err);
		if (rc != MLX_OK)
			return rc;
	}
	return MLX_OK;
}

int mlx_idset_mark(struct mlx_idset *s, const unsigned char id[32])
{
	const struct mlx_id_entry *e = mlx_idset_find(s, id);
	if (!e)
		return 0;
	if (!s->marks && !(s->marks = calloc(s->len / 8 + 1, 1)))
		return -1;
	size_t i = (size_t)(e - s->items);
	s->marks[i / 8] |= (unsigned char)(1u << (i % 8));
	return 1;
}

size_t mlx_idset_marked(const struct mlx_idset *s)
{
	size_t n = 0;
	for (size_t i = 0; s->marks && i < s->len / 8 + 1; i++)
		n += (size_t)__builtin_popcount(s->marks[i]);
	return n;
}

static int add_line(void *ctx, const char *hex, uint64_t size, uint32_t mode, const char *path, size_t plen,
                    struct mlx_err *err)
{
	(void)mode;
	(void)path;
	(void)plen;
	return mlx_idset_add_hex(ctx, hex, size, err);
}

struct except_ctx {
	struct mlx_idset *s, *except;
};

static int add_line_except(void *vctx, const char *hex, uint64_t size, uint32_t mode, const char *path,
                           size_t plen, struct mlx_err *err)
{
	(void)mode;
	(void)path;
	(void)plen;
	struct except_ctx *c = vctx;
	unsigned char id[32];
	if (!mlx_id_from_hex(hex, id))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "not an object id: '%.70s'", hex);
	int marked = mlx_idset_mark(c->except, id);
	if (marked < 0)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	return marked ? MLX_OK : mlx_idset_add(c->s, id, size, err);
}

int mlx_idset_add_manifest(struct mlx_idset *s, const char *text, size_t len, struct mlx_err *err)
{
	return mlx_hash_manifest_walk(text, len, add_line, s, err);
}

int mlx_idset_add_manifest_file(struct mlx_idset *s, const char *path, const char *hex, struct mlx_err *err)
{
	return mlx_idset_add_manifest_file_except(s, path, hex, NULL, err);
}

int mlx_idset_add_manifest_file_except(struct mlx_idset *s, const char *path, const char *hex,
                                       struct mlx_idset *except, struct mlx_err *err)
{
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ELOOP
		           ? mlx_err_set(err, MLX_ERR_NOTFOUND, errno, "object %.64s is not in the store",
		                         hex)
		           : mlx_err_sys(err, errno, "cannot open %s", path);
	/* Read in pieces, the ids added as they come; if the manifest turns
	 * out not to be what its id says, they are taken back. */
	size_t len = s->len;
	int sorted = s->sorted;
	struct except_ctx c = {s, except};
	int rc = except ? mlx_manifest_walk_fd(fd, path, hex, add_line_except, &c, NULL, NULL, err)
	                : mlx_manifest_walk_fd(fd, path, hex, add_line, s, NULL, NULL, err);
	close(fd);
	if (rc != MLX_OK) {
		s->len = len;
		s->sorted = sorted;
	}
	return rc;
}
