/* lockindex.c — the index of mlx.lock's steps in memory (lockindex.h). */
#include "lockindex.h"

#include "strhash.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

struct step_line {
	const char *name;
	const char *rest;
	size_t name_len;
	size_t rest_len;
};

struct mlx_lockindex {
	const char *text; /* the file's bytes, mapped: every name and rest points there */
	size_t text_len;
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

/* Maps the file at path read-only into *text (*len bytes, at least 1).
 * Mapped, not read: a 100,000-step index is 15 MB, which read() copied
 * into as many fresh pages, faulted in one by one. The file is only ever
 * replaced by a rename (stdlib/mlx/pipeline/lockindex.lua writes it with
 * mlx.fs.write), so the mapped bytes do not change under the reader. */
static int map_file(const char *path, const char **text, size_t *len, struct mlx_err *err)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot open %s", path);
	struct stat st;
	if (fstat(fd, &st) != 0) {
		int e = errno;
		close(fd);
		return mlx_err_sys(err, e, "cannot stat %s", path);
	}
	if (!S_ISREG(st.st_mode) || st.st_size <= 0 || (uint64_t)st.st_size > SIZE_MAX) {
		close(fd);
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s: not the index of this lock", path);
	}
	void *p = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	int e = errno;
	close(fd);
	if (p == MAP_FAILED)
		return mlx_err_sys(err, e, "cannot read %s", path);
	*text = p;
	*len = (size_t)st.st_size;
	return MLX_OK;
}

int mlx_lockindex_read(const char *path, const char *header, const char *pipeline, struct mlx_lockindex **out,
                       struct mlx_err *err)
{
	*out = NULL;
	const char *text = NULL;
	size_t len = 0;
	int rc = map_file(path, &text, &len, err);
	if (rc != MLX_OK)
		return rc;
	size_t header_len = strlen(header);
	if (len <= header_len || memcmp(text, header, header_len) != 0 || text[header_len] != '\n') {
		munmap((void *)text, len);
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s: not the index of this lock", path);
	}
	size_t lines = 0;
	for (const char *p = text + header_len + 1, *end = text + len; (p = memchr(p, '\n', (size_t)(end - p))); p++)
		lines++;
	struct mlx_lockindex *idx = calloc(1, sizeof *idx);
	size_t nslots = 16;
	while (nslots < 2 * lines + 2)
		nslots *= 2;
	if (idx) {
		idx->text = text;
		idx->text_len = len;
		idx->lines = malloc((lines + 1) * sizeof *idx->lines);
		idx->slots = calloc(nslots, sizeof *idx->slots);
		idx->mask = nslots - 1;
	}
	if (!idx || !idx->lines || !idx->slots || lines >= UINT32_MAX) {
		mlx_lockindex_free(idx);
		if (!idx)
			munmap((void *)text, len);
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory reading %s", path);
	}
	size_t plen = strlen(pipeline);
	const char *line = text + header_len + 1, *end = text + len;
	while (line < end) {
		const char *eol = memchr(line, '\n', (size_t)(end - line));
		if (!eol)
			eol = end;
		if ((size_t)(eol - line) > plen && memcmp(line, pipeline, plen) == 0 && line[plen] == '\t') {
			const char *name = line + plen + 1;
			const char *tab = memchr(name, '\t', (size_t)(eol - name));
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
	if (idx->text)
		munmap((void *)idx->text, idx->text_len);
	free(idx->lines);
	free(idx->slots);
	free(idx);
}
