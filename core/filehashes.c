/* filehashes.c — the hashes of many single files by path (filehashes.h). */
#include "filehashes.h"

#include "strhash.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct mlx_filehashes {
	struct mlx_filelist paths; /* no items: the blocks holding the paths */
	struct mlx_filehash *files;
	size_t count;
	uint32_t *slots; /* open addressing: 1 + index into files, 0 = empty */
	size_t mask;
};

/* The slot of path: the one holding it, or the empty one where it goes. */
static uint32_t *slot_of(const struct mlx_filehashes *fh, const char *path, size_t len)
{
	size_t i = (size_t)mlx_strhash(path, len) & fh->mask;
	for (;;) {
		uint32_t *slot = &fh->slots[i];
		if (*slot == 0)
			return slot;
		const char *known = fh->files[*slot - 1].path;
		if (strnlen(known, len + 1) == len && memcmp(known, path, len) == 0)
			return slot;
		i = (i + 1) & fh->mask;
	}
}

int mlx_filehashes_index(struct mlx_filelist *list, struct mlx_filehashes **out, struct mlx_err *err)
{
	*out = NULL;
	struct mlx_filehashes *fh = calloc(1, sizeof *fh);
	size_t nslots = 16;
	while (nslots < 2 * list->len + 2)
		nslots *= 2;
	if (fh)
		fh->slots = calloc(nslots, sizeof *fh->slots);
	if (!fh || !fh->slots || list->len >= UINT32_MAX) {
		mlx_filehashes_free(fh);
		mlx_filelist_free(list);
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory indexing %zu file hashes",
		                   list->len);
	}
	fh->mask = nslots - 1;
	/* The records are written over the list's items, which are larger, so
	 * that the two arrays never take memory at once (100,000 items are
	 * 13 MB): record i ends before item i + 1 begins, and item i is read
	 * before record i is written. */
	_Static_assert(sizeof(struct mlx_filehash) <= sizeof(struct mlx_file), "records fit over items");
	unsigned char *bytes = (unsigned char *)list->items;
	fh->files = (struct mlx_filehash *)(void *)bytes;
	for (size_t i = 0; i < list->len; i++) {
		struct mlx_file f;
		memcpy(&f, bytes + i * sizeof f, sizeof f);
		struct mlx_filehash h = {.path = f.path, .size = f.size, .mode = f.mode};
		memcpy(h.hex, f.hex, sizeof h.hex);
		h.state = f.hex[0] ? MLX_FILEHASH_FILE : MLX_FILEHASH_ABSENT;
		uint32_t *slot = slot_of(fh, f.path, strlen(f.path));
		if (!*slot)
			*slot = (uint32_t)++fh->count;
		memcpy(bytes + (*slot - 1) * sizeof h, &h, sizeof h);
	}
	struct mlx_filehash *smaller = realloc(fh->files, (fh->count ? fh->count : 1) * sizeof *fh->files);
	if (smaller)
		fh->files = smaller;
	/* The paths stay in the list's blocks, now fh's. */
	fh->paths = *list;
	fh->paths.items = NULL;
	fh->paths.len = fh->paths.cap = 0;
	*list = (struct mlx_filelist){0};
	*out = fh;
	return MLX_OK;
}

const struct mlx_filehash *mlx_filehashes_find(const struct mlx_filehashes *fh, const char *path, size_t len)
{
	uint32_t slot = *slot_of(fh, path, len);
	if (!slot)
		return NULL;
	const struct mlx_filehash *f = &fh->files[slot - 1];
	return f->state == MLX_FILEHASH_FILE ? f : NULL;
}

int mlx_filehashes_absent(const struct mlx_filehashes *fh, const char *path, size_t len)
{
	uint32_t slot = *slot_of(fh, path, len);
	return slot && fh->files[slot - 1].state == MLX_FILEHASH_ABSENT;
}

void mlx_filehashes_forget(struct mlx_filehashes *fh, const char *path, size_t len)
{
	uint32_t slot = *slot_of(fh, path, len);
	/* A forgotten record keeps its slot, so that the probe chains of the
	 * others stay whole. */
	if (slot)
		fh->files[slot - 1].state = 0;
}

size_t mlx_filehashes_count(const struct mlx_filehashes *fh)
{
	return fh->count;
}

int mlx_filehashes_unique(const char **names, size_t *n, struct mlx_err *err)
{
	size_t nslots = 16;
	while (nslots < 2 * *n + 2)
		nslots *= 2;
	uint32_t *slots = *n < UINT32_MAX ? calloc(nslots, sizeof *slots) : NULL;
	if (!slots)
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory listing %zu paths", *n);
	size_t kept = 0;
	for (size_t i = 0; i < *n; i++) {
		const char *name = names[i];
		size_t len = strlen(name);
		if (len == 0 || name[len - 1] == '/')
			continue;
		size_t at = (size_t)mlx_strhash(name, len) & (nslots - 1);
		while (slots[at] && strcmp(names[slots[at] - 1], name) != 0)
			at = (at + 1) & (nslots - 1);
		if (slots[at])
			continue;
		names[kept++] = name;
		slots[at] = (uint32_t)kept;
	}
	free(slots);
	*n = kept;
	return MLX_OK;
}

void mlx_filehashes_free(struct mlx_filehashes *fh)
{
	if (!fh)
		return;
	mlx_filelist_free(&fh->paths);
	free(fh->files);
	free(fh->slots);
	free(fh);
}
