/* lockindex.c — the index of mlx.lock's steps in memory (lockindex.h). */
#include "lockindex.h"

#include "fs.h"
#include "strhash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct step_line {
	const char *name;
	const char *rest;
	size_t name_len;
	size_t rest_len;
};

struct mlx_lockindex {
	char *text; /* the file's bytes, where every name and rest points */
	struct step_line *lines;
	size_t count;
	uint32_t *slots; /* open addressing: 1 + index into lines, 0 = empty */
	size_t mask;
};

/* The slot of name: the one holding it, or the empty one where it goes. */
static uint32_t *slot_of(const struct mlx_lockindex *idx, const char *name, size_t len)
{
	size_t i = (size_t)mlx_strhash(name, len) & idx->mask;
	for (;;) {
		uint32_t *slot = &idx->slots[i];
		if (*slot == 0)
			return slot;
		const struct step_line *l = &idx->lines[*slot - 1];
		if (l->name_len == len && memcmp(l->name, name, len) == 0)
			return slot;
		i = (i + 1) & idx->mask;
	}
}

int mlx_lockindex_read(const char *path, const char *header, const char *pipeline, struct mlx_lockindex **out,
                       struct mlx_err *err)
{
	*out = NULL;
	char *text = NULL;
	size_t len = 0;
	int rc = mlx_fs_read_all(path, SIZE_MAX, &text, &len, err);
	if (rc != MLX_OK)
		return rc;
	size_t header_len = strlen(header);
	if (len <= header_len || memcmp(text, header, header_len) != 0 || text[header_len] != '\n') {
		free(text);
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s: not the index of this lock", path);
	}
	size_t lines = 0;
	for (size_t i = header_len + 1; i < len; i++)
		lines += text[i] == '\n';
	struct mlx_lockindex *idx = calloc(1, sizeof *idx);
	size_t nslots = 16;
	while (nslots < 2 * lines + 2)
		nslots *= 2;
	if (idx) {
		idx->text = text;
		idx->lines = malloc((lines + 1) * sizeof *idx->lines);
		idx->slots = calloc(nslots, sizeof *idx->slots);
		idx->mask = nslots - 1;
	}
	if (!idx || !idx->lines || !idx->slots || lines >= UINT32_MAX) {
		mlx_lockindex_free(idx);
		if (!idx)
			free(text);
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory reading %s", path);
	}
	size_t plen = strlen(pipeline);
	char *line = text + header_len + 1, *end = text + len;
	while (line < end) {
		char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > plen && memcmp(line, pipeline, plen) == 0 && line[plen] == '\t') {
			char *name = line + plen + 1;
			char *tab = memchr(name, '\t', (size_t)(eol - name));
			if (tab) {
				struct step_line l = {name, tab + 1, (size_t)(tab - name),
				                      (size_t)(eol - tab - 1)};
				uint32_t *slot = slot_of(idx, l.name, l.name_len);
				if (*slot) {
					idx->lines[*slot - 1] = l;
				} else {
					idx->lines[idx->count] = l;
					*slot = (uint32_t)++idx->count;
				}
			}
		}
		line = eol + 1;
	}
	*out = idx;
	return MLX_OK;
}

const char *mlx_lockindex_find(const struct mlx_lockindex *idx, const char *name, size_t name_len,
                               size_t *len)
{
	uint32_t slot = *slot_of(idx, name, name_len);
	if (!slot)
		return NULL;
	*len = idx->lines[slot - 1].rest_len;
	return idx->lines[slot - 1].rest;
}

size_t mlx_lockindex_count(const struct mlx_lockindex *idx)
{
	return idx->count;
}

const char *mlx_lockindex_at(const struct mlx_lockindex *idx, size_t i, size_t *name_len, const char **rest,
                             size_t *rest_len)
{
	const struct step_line *l = &idx->lines[i];
	*name_len = l->name_len;
	*rest = l->rest;
	*rest_len = l->rest_len;
	return l->name;
}

void mlx_lockindex_free(struct mlx_lockindex *idx)
{
	if (!idx)
		return;
	free(idx->text);
	free(idx->lines);
	free(idx->slots);
	free(idx);
}
