/* statcache_tree.c — trees of the stat cache as files, mapped to be read.
 *
 * Layout, integers little-endian:
 *     "mlxtree2"  u32 prefix length  prefix  32 bytes: manifest id or zeros
 *     entries:    u32 path length  path  u64 ino  u64 size  i64 mtime_ns
 *                 i64 ctime_ns  i64 hashed_ns  u32 mode  32 bytes of hash
 *     "mlxend2\n"  u64 number of file entries
 * Paths are relative to the prefix, unique and in increasing byte order. A
 * path ending in '/' is a directory record: the directory's ino, mtime_ns
 * and ctime_ns, read before its names were, size 0, hashed_ns the time
 * when they were read, mode MLX_TREE_DIR_MODE, a hash of zeros; it sorts
 * just before the entries below it. Version 1 ("mlxtree1", "mlxend1\n")
 * is the same without directory records, and is still read. A file that
 * breaks any of this is not used (as if there were none). */
#include "statcache_tree.h"

#include "statcache.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAGIC "mlxtree2"
#define END_MAGIC "mlxend2\n"
#define MAGIC_V1 "mlxtree1"
#define END_MAGIC_V1 "mlxend1\n"
#define ENTRY_FIXED (5 * 8 + 4 + 32)
#define ID 32
#define TRAILER (8 + 8)

#define get32 mlx_statcache_tree_get32
#define get64 mlx_statcache_tree_get64

static unsigned char *put32(unsigned char *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		*p++ = (unsigned char)(v >> (8 * i));
	return p;
}

static unsigned char *put64(unsigned char *p, uint64_t v)
{
	return put32(put32(p, (uint32_t)v), (uint32_t)(v >> 32));
}

/* <dir>/<SHA-256 of prefix> into path. */
static int tree_path(const char *dir, const char *prefix, char *path, size_t size, struct mlx_err *err)
{
	char id[MLX_HASH_HEX_SIZE];
	int rc = mlx_hash_bytes(prefix, strlen(prefix), id, err);
	if (rc != MLX_OK)
		return rc;
	if (snprintf(path, size, "%s/%s", dir, id) >= (int)size)
		return mlx_err_set(err, MLX_ERR_INVALID, ENAMETOOLONG, "path too long: %s", dir);
	return MLX_OK;
}

int mlx_statcache_tree_next(const unsigned char **p, const unsigned char *end, struct mlx_tree_entry *e)
{
	if (*p == end)
		return 0;
	if (end - *p < 4)
		return -1;
	size_t len = get32(*p);
	if (len == 0 || len >= PATH_MAX || (size_t)(end - *p) - 4 < len + ENTRY_FIXED)
		return -1;
	e->path = (const char *)*p + 4;
	e->len = len;
	e->facts = *p + 4 + len;
	*p += 4 + len + ENTRY_FIXED;
	return 1;
}

/* Checks the header and the trailer; on success *begin and *end delimit
 * the entries, *count is the number of files as written and *dirs tells
 * whether directory records may be among them (version 2). */
static int tree_frame(const unsigned char *map, size_t size, const char *prefix, const unsigned char **begin,
		      const unsigned char **end, uint64_t *count, int *dirs)
{
	size_t plen = strlen(prefix);
	if (size < 8 + 4 + plen + ID + TRAILER || get32(map + 8) != plen || memcmp(map + 12, prefix, plen) != 0)
		return 0;
	/* Both magics of one version: a tree is never read as the other. */
	if (memcmp(map, MAGIC, 8) == 0 && memcmp(map + size - TRAILER, END_MAGIC, 8) == 0)
		*dirs = 1;
	else if (memcmp(map, MAGIC_V1, 8) == 0 && memcmp(map + size - TRAILER, END_MAGIC_V1, 8) == 0)
		*dirs = 0;
	else
		return 0;
	*begin = map + 12 + plen + ID;
	*end = map + size - TRAILER;
	*count = get64(map + size - 8);
	return 1;
}

/* strcmp of a path (alen its length) and an entry's path. */
static int compare_path(const char *a, size_t alen, const struct mlx_tree_entry *e)
{
	int c = memcmp(a, e->path, alen < e->len ? alen : e->len);
	return c ? c : (alen > e->len) - (alen < e->len);
}

/* Merges the entries with list in one pass. Only an exact path match can
 * fill a file, so entries out of order could only cost misses; entries cut
 * short or fewer than the trailer says (a damaged file) make *sound 0, and
 * the caller undoes what was filled. */
static int merge(const unsigned char *p, const unsigned char *end, uint64_t count, int dirs, const char *prefix,
		 struct mlx_filelist *list, size_t *hits, struct mlx_strlist *stale, struct mlx_tree_fill *out,
		 int *sound, struct mlx_err *err)
{
	size_t plen = strlen(prefix), i = 0, matched = 0, facts = 0;
	size_t ilen = list->len ? strlen(list->items[0].path) : 0;
	char key[PATH_MAX * 2];
	struct mlx_tree_entry e;
	uint64_t seen = 0;
	int r, extra = 0;
	while ((r = mlx_statcache_tree_next(&p, end, &e)) == 1) {
		if (dirs && mlx_statcache_tree_is_dir(&e))
			continue; /* no file of the list */
		seen++;
		int c = 1;
		while (i < list->len && (c = compare_path(list->items[i].path, ilen, &e)) < 0)
			if (++i < list->len)
				ilen = strlen(list->items[i].path);
		if (i < list->len && c == 0) {
			const unsigned char *f = e.facts;
			matched += (size_t)mlx_statcache_match(&list->items[i], get64(f), get64(f + 8),
							       (int64_t)get64(f + 16), (int64_t)get64(f + 24),
							       (int64_t)get64(f + 32), get32(f + 40), f + 44);
			if (++i < list->len)
				ilen = strlen(list->items[i].path);
			continue;
		}
		extra = 1;
		if (plen + 1 + e.len >= sizeof key)
			continue;
		snprintf(key, sizeof key, "%s%s%.*s", prefix, plen ? "/" : "", (int)e.len, e.path);
		int rc = mlx_strlist_push(stale, key, err);
		if (rc != MLX_OK)
			return rc;
	}
	*sound = r == 0 && seen == count;
	for (size_t k = 0; k < list->len; k++)
		facts += list->items[k].mtime_ns != 0;
	*hits += matched;
	out->fresh = !extra && matched == facts;
	out->whole = out->fresh && matched == list->len;
	return MLX_OK;
}

int mlx_statcache_tree_map(const char *dir, const char *prefix, struct mlx_tree_map *m)
{
	memset(m, 0, sizeof *m);
	char path[PATH_MAX];
	if (tree_path(dir, prefix, path, sizeof path, NULL) != MLX_OK)
		return 0;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	struct stat st;
	void *map = MAP_FAILED;
	/* Mapped, not read: its pages are the page cache's, with no copy and
	 * no fresh memory to fault in. A tree is replaced by rename, never
	 * truncated, so the mapping stays whole while it is read. Not
	 * populated: a reader maps in what it reads, and may let go of what
	 * it has read (mlx_statcache_tree_release). */
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size > 0 &&
	    mlx_watch_fileid(fd, &m->fid) == MLX_OK)
		map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (map == MAP_FAILED)
		return 0;
	if (!tree_frame(map, (size_t)st.st_size, prefix, &m->begin, &m->end, &m->count, &m->dirs)) {
		munmap(map, (size_t)st.st_size);
		memset(m, 0, sizeof *m);
		return 0;
	}
	m->map = map;
	m->size = (size_t)st.st_size;
	memcpy(m->path, path, strlen(path) + 1);
	m->id = m->begin - ID;
	return 1;
}

void mlx_statcache_tree_release(const unsigned char *from, const unsigned char *to)
{
	uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
	uintptr_t a = ((uintptr_t)from + page - 1) & ~(page - 1), b = (uintptr_t)to & ~(page - 1);
	/* The mapping is private and never written: its pages are the file's,
	 * mapped in again if read again. */
	if (a < b)
		madvise((void *)a, b - a, MADV_DONTNEED);
}

void mlx_statcache_tree_unmap(struct mlx_tree_map *m)
{
	if (m->map)
		munmap(m->map, m->size);
	memset(m, 0, sizeof *m);
}

int mlx_statcache_tree_fill(const char *dir, const char *prefix, struct mlx_filelist *list, size_t *hits,
			    struct mlx_strlist *stale, struct mlx_tree_fill *out, struct mlx_err *err)
{
	memset(out, 0, sizeof *out);
	struct mlx_tree_map m;
	if (!mlx_statcache_tree_map(dir, prefix, &m))
		return MLX_OK;
	int rc = MLX_OK, sound = 0;
	size_t had_stale = stale->len, had_hits = *hits;
	rc = merge(m.begin, m.end, m.count, m.dirs, prefix, list, hits, stale, out, &sound, err);
	if (rc == MLX_OK && sound) {
		static const unsigned char none[ID];
		out->found = 1;
		if (out->whole && memcmp(m.id, none, ID) != 0)
			mlx_statcache_bin_to_hex(m.id, out->id);
	} else {
		/* Nothing from a damaged tree is kept. */
		for (size_t k = 0; k < list->len; k++)
			if (list->items[k].cached_ns) {
				list->items[k].hex[0] = '\0';
				list->items[k].cached_ns = 0;
			}
		while (stale->len > had_stale)
			free(stale->items[--stale->len]);
		*hits = had_hits;
		memset(out, 0, sizeof *out);
	}
	mlx_statcache_tree_unmap(&m);
	return rc;
}

/* A tree being written: a temp file beside its place, filled through a
 * buffer, so that memory does not grow with the number of entries. */
struct mlx_tree_writer {
	int fd;
	size_t id_at;    /* the offset of the manifest id in the file */
	uint64_t count;  /* file entries written */
	size_t prev_len; /* the last path written (0: none yet), to keep the order */
	char prev[PATH_MAX];
	char path[PATH_MAX]; /* where the tree goes */
	char tmp[PATH_MAX];
	/* With carry, the watch token of the tree base (if it has one) is
	 * kept for the new one: a tree rewritten from base with entries
	 * observed now is as true at that token as base was. */
	int carry;
	struct mlx_watch_fileid base;
	size_t used;
	unsigned char buf[1 << 16];
};

static int writer_flush(struct mlx_tree_writer *w, struct mlx_err *err)
{
	if (w->used && mlx_fs_write_all(w->fd, w->buf, w->used) != 0)
		return mlx_err_sys(err, errno, "cannot write %s", w->path);
	w->used = 0;
	return MLX_OK;
}

/* Room for n more bytes in the buffer (n <= its size). */
static int writer_room(struct mlx_tree_writer *w, size_t n, struct mlx_err *err)
{
	return w->used + n <= sizeof w->buf ? MLX_OK : writer_flush(w, err);
}

int mlx_statcache_tree_begin(const char *dir, const char *prefix, struct mlx_tree_writer **out,
                             struct mlx_err *err)
{
	*out = NULL;
	size_t plen = strlen(prefix);
	if (plen >= PATH_MAX)
		return mlx_err_set(err, MLX_ERR_INVALID, ENAMETOOLONG, "path too long: %.200s", prefix);
	struct mlx_tree_writer *w = malloc(sizeof *w);
	if (!w)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	w->fd = -1;
	w->count = w->used = w->prev_len = 0;
	w->carry = 0;
	int rc = tree_path(dir, prefix, w->path, sizeof w->path, err);
	/* The temp file sits beside the tree, named as mlx_fs_write_atomic
	 * names it, so that the rename cannot cross a file system. */
	if (rc == MLX_OK && snprintf(w->tmp, sizeof w->tmp, "%s/.%s.tmp-XXXXXX", dir,
	                             w->path + strlen(dir) + 1) >= (int)sizeof w->tmp)
		rc = mlx_err_set(err, MLX_ERR_INVALID, ENAMETOOLONG, "path too long: %s", dir);
	if (rc == MLX_OK)
		rc = mlx_fs_mkdirs(dir, 0755, err);
	if (rc == MLX_OK && (w->fd = mkstemp(w->tmp)) < 0)
		rc = mlx_err_sys(err, errno, "cannot write %s", w->path);
	if (rc != MLX_OK) {
		free(w);
		return rc;
	}
	/* The id is written as zeros here, and filled in by finish; the
	 * prefix (< PATH_MAX) fits the empty buffer. */
	memcpy(w->buf, MAGIC, 8);
	unsigned char *p = put32(w->buf + 8, (uint32_t)plen);
	memcpy(p, prefix, plen);
	memset(p + plen, 0, ID);
	w->id_at = 12 + plen;
	w->used = w->id_at + ID;
	*out = w;
	return MLX_OK;
}

/* Makes room for an entry of path (len bytes, 0 < len < PATH_MAX) after
 * the last one, which it must follow, counting it if it is a file's, and
 * sets *facts to where its facts go. Returns 0, MLX_ERR_INVALID (out of
 * order) or MLX_ERR_IO. */
static int writer_entry(struct mlx_tree_writer *w, const char *path, size_t len, int file, unsigned char **facts,
                        struct mlx_err *err)
{
	/* A reader merges the entries with a sorted walk: out of order, they
	 * would not be found. */
	if (w->prev_len > 0) {
		int c = memcmp(w->prev, path, w->prev_len < len ? w->prev_len : len);
		if (c > 0 || (c == 0 && w->prev_len >= len))
			return mlx_err_set(err, MLX_ERR_INVALID, 0, "stat cache tree %s: %.*s out of order",
			                   w->path, (int)(len < 200 ? len : 200), path);
	}
	int rc = writer_room(w, 4 + len + ENTRY_FIXED, err);
	if (rc != MLX_OK)
		return rc;
	memcpy(w->prev, path, len);
	w->prev_len = len;
	unsigned char *p = put32(w->buf + w->used, (uint32_t)len);
	memcpy(p, path, len);
	w->used += 4 + len + ENTRY_FIXED;
	w->count += file != 0;
	*facts = p + len;
	return MLX_OK;
}

/* Writes the entry of f if it has facts, a hash and a hash time (as a
 * store records it); else writes nothing. */
static int writer_file(struct mlx_tree_writer *w, const struct mlx_file *f, struct mlx_err *err)
{
	int64_t hashed = f->hashed_ns ? f->hashed_ns : f->cached_ns;
	size_t len = strlen(f->path);
	if (!f->hex[0] || f->mtime_ns == 0 || hashed == 0 || len == 0 || len >= PATH_MAX)
		return MLX_OK;
	unsigned char *p;
	int rc = writer_entry(w, f->path, len, 1, &p, err);
	if (rc != MLX_OK)
		return rc;
	p = put64(p, f->ino);
	p = put64(p, f->size);
	p = put64(p, (uint64_t)f->mtime_ns);
	p = put64(p, (uint64_t)f->ctime_ns);
	p = put64(p, (uint64_t)hashed);
	p = put32(p, f->mode);
	mlx_statcache_hex_to_bin(f->hex, p);
	return MLX_OK;
}

int mlx_statcache_tree_add(struct mlx_tree_writer *w, const struct mlx_filelist *list, struct mlx_err *err)
{
	for (size_t i = 0; i < list->len; i++) {
		int rc = writer_file(w, &list->items[i], err);
		if (rc != MLX_OK)
			return rc;
	}
	return MLX_OK;
}

void mlx_statcache_tree_abort(struct mlx_tree_writer *w)
{
	if (!w)
		return;
	if (w->fd >= 0) {
		close(w->fd);
		unlink(w->tmp);
	}
	free(w);
}

int mlx_statcache_tree_finish(struct mlx_tree_writer *w, const char *id, uint64_t files, struct mlx_err *err)
{
	int rc = writer_room(w, TRAILER, err);
	if (rc == MLX_OK) {
		memcpy(w->buf + w->used, END_MAGIC, 8);
		put64(w->buf + w->used + 8, w->count);
		w->used += TRAILER;
		rc = writer_flush(w, err);
	}
	/* The id stands for the manifest of all files: only if each is in
	 * the tree can a re-check that matches them all reuse it. */
	if (rc == MLX_OK && id && mlx_hash_is_id(id) && w->count == files) {
		unsigned char bin[ID];
		mlx_statcache_hex_to_bin(id, bin);
		if (pwrite(w->fd, bin, ID, (off_t)w->id_at) != ID)
			rc = mlx_err_sys(err, errno ? errno : EIO, "cannot write %s", w->path);
	}
	if (rc == MLX_OK && fchmod(w->fd, 0644) != 0)
		rc = mlx_err_sys(err, errno, "cannot set mode of %s", w->path);
	if (rc == MLX_OK && fsync(w->fd) != 0)
		rc = mlx_err_sys(err, errno, "cannot sync %s", w->path);
	char token[MLX_WATCH_TOKEN_MAX];
	int carry = rc == MLX_OK && w->carry && mlx_watch_token_get(w->path, &w->base, token);
	if (rc == MLX_OK && rename(w->tmp, w->path) != 0)
		rc = mlx_err_sys(err, errno, "cannot replace %s", w->path);
	/* The new file's id through its own descriptor, after the rename
	 * (which sets its ctime): never another writer's tree. */
	struct mlx_watch_fileid now;
	if (rc == MLX_OK && carry && mlx_watch_fileid(w->fd, &now) == MLX_OK)
		mlx_watch_token_put(w->path, &now, token); /* an accelerator */
	if (close(w->fd) != 0 && rc == MLX_OK)
		rc = mlx_err_sys(err, errno, "cannot write %s", w->path);
	w->fd = -1;
	if (rc == MLX_OK)
		rc = mlx_fs_sync_parent(w->path, err);
	else
		unlink(w->tmp);
	free(w);
	return rc;
}

int mlx_statcache_tree_write(const char *dir, const char *prefix, const struct mlx_filelist *list,
                             const char *id, struct mlx_err *err)
{
	struct mlx_tree_writer *w;
	int rc = mlx_statcache_tree_begin(dir, prefix, &w, err);
	if (rc == MLX_OK && (rc = mlx_statcache_tree_add(w, list, err)) != MLX_OK)
		mlx_statcache_tree_abort(w);
	if (rc == MLX_OK)
		rc = mlx_statcache_tree_finish(w, id, list->len, err);
	return rc;
}

/* Begins the writer of a tree that rewrites the mapped tree m of the same
 * prefix; it keeps m's watch token (the writer's carry). */
static int rewrite_begin(const char *dir, const char *prefix, const struct mlx_tree_map *m,
                         struct mlx_tree_writer **out, struct mlx_err *err)
{
	int rc = mlx_statcache_tree_begin(dir, prefix, out, err);
	if (rc == MLX_OK) {
		(*out)->carry = 1;
		(*out)->base = m->fid;
	}
	return rc;
}

int mlx_statcache_tree_refresh(const char *dir, const char *prefix, const struct mlx_filelist *same,
                               struct mlx_err *err)
{
	struct mlx_tree_map m;
	if (!mlx_statcache_tree_map(dir, prefix, &m))
		return MLX_OK;
	struct mlx_tree_writer *w;
	int rc = rewrite_begin(dir, prefix, &m, &w, err);
	if (rc != MLX_OK) {
		mlx_statcache_tree_unmap(&m);
		return rc;
	}
	const unsigned char *p = m.begin, *held = m.begin;
	struct mlx_tree_entry e;
	size_t i = 0, ilen = same->len ? strlen(same->items[0].path) : 0, replaced = 0;
	int r = 1;
	while (rc == MLX_OK) {
		/* The entries copied already are let go a megabyte at a time:
		 * the pass holds a little of the tree, not all of it. */
		if (p - held > (1 << 20)) {
			mlx_statcache_tree_release(held, p);
			held = p;
		}
		if ((r = mlx_statcache_tree_next(&p, m.end, &e)) != 1)
			break;
		int c = 1;
		while (i < same->len && (c = compare_path(same->items[i].path, ilen, &e)) < 0)
			if (++i < same->len)
				ilen = strlen(same->items[i].path);
		unsigned char *q;
		int file = !(m.dirs && mlx_statcache_tree_is_dir(&e));
		if ((rc = writer_entry(w, e.path, e.len, file, &q, err)) != MLX_OK)
			break;
		const struct mlx_file *f = file && i < same->len && c == 0 ? &same->items[i] : NULL;
		int64_t hashed = f ? (f->hashed_ns ? f->hashed_ns : f->cached_ns) : 0;
		unsigned char bin[32];
		if (f && f->hex[0])
			mlx_statcache_hex_to_bin(f->hex, bin);
		/* Only the facts of a file whose hash and mode are the entry's
		 * are taken: the manifest id recorded with the tree stays true. */
		if (f && f->hex[0] && f->mtime_ns && hashed && memcmp(bin, e.facts + 44, 32) == 0 &&
		    f->mode == get32(e.facts + 40)) {
			q = put64(q, f->ino);
			q = put64(q, f->size);
			q = put64(q, (uint64_t)f->mtime_ns);
			q = put64(q, (uint64_t)f->ctime_ns);
			q = put64(q, (uint64_t)hashed);
			memcpy(q, e.facts + 40, 4 + 32);
			replaced++;
		} else {
			memcpy(q, e.facts, ENTRY_FIXED);
		}
	}
	/* Nothing to change, or a damaged tree (left to the walk, which
	 * writes it again): the tree stays as it is. */
	if (rc != MLX_OK || r != 0 || replaced == 0) {
		mlx_statcache_tree_abort(w);
		mlx_statcache_tree_unmap(&m);
		return rc;
	}
	static const unsigned char none[ID];
	char id[MLX_HASH_HEX_SIZE] = "";
	if (memcmp(m.id, none, ID) != 0)
		mlx_statcache_bin_to_hex(m.id, id);
	uint64_t count = m.count;
	mlx_statcache_tree_unmap(&m);
	return mlx_statcache_tree_finish(w, id[0] ? id : NULL, count, err);
}

/* Byte order of a directory record's path and an entry's path. */
static int compare_dir_path(const struct mlx_tree_dir *d, const struct mlx_tree_entry *e)
{
	int c = memcmp(d->path, e->path, d->len < e->len ? d->len : e->len);
	return c ? c : (d->len > e->len) - (d->len < e->len);
}

static int put_dir(struct mlx_tree_writer *w, const struct mlx_tree_dir *d, struct mlx_err *err)
{
	unsigned char *q;
	if (d->len < 2 || d->len >= PATH_MAX || d->path[d->len - 1] != '/')
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "stat cache tree %s: not a directory record", w->path);
	int rc = writer_entry(w, d->path, d->len, 0, &q, err);
	if (rc != MLX_OK)
		return rc;
	q = put64(q, d->ino);
	q = put64(q, 0);
	q = put64(q, (uint64_t)d->mtime_ns);
	q = put64(q, (uint64_t)d->ctime_ns);
	q = put64(q, (uint64_t)d->listed_ns);
	q = put32(q, MLX_TREE_DIR_MODE);
	memset(q, 0, 32);
	return MLX_OK;
}

int mlx_statcache_tree_put_dirs(const char *dir, const char *prefix, const struct mlx_tree_map *m,
                                const struct mlx_tree_dir *dirs, size_t n, struct mlx_err *err)
{
	struct mlx_tree_writer *w;
	int rc = rewrite_begin(dir, prefix, m, &w, err);
	if (rc != MLX_OK)
		return rc;
	const unsigned char *p = m->begin, *held = m->begin;
	struct mlx_tree_entry e;
	size_t i = 0;
	int r = 1;
	while (rc == MLX_OK) {
		/* As a refresh: a little of the tree held at a time. */
		if (p - held > (1 << 20)) {
			mlx_statcache_tree_release(held, p);
			held = p;
		}
		if ((r = mlx_statcache_tree_next(&p, m->end, &e)) != 1)
			break;
		if (m->dirs && mlx_statcache_tree_is_dir(&e))
			continue; /* replaced by dirs */
		/* A record sorts just before the entries below its directory. */
		while (rc == MLX_OK && i < n && compare_dir_path(&dirs[i], &e) < 0)
			rc = put_dir(w, &dirs[i++], err);
		unsigned char *q;
		if (rc == MLX_OK && (rc = writer_entry(w, e.path, e.len, 1, &q, err)) == MLX_OK)
			memcpy(q, e.facts, ENTRY_FIXED);
	}
	while (rc == MLX_OK && i < n)
		rc = put_dir(w, &dirs[i++], err);
	if (rc == MLX_OK && (r != 0 || w->count != m->count))
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "stat cache tree %s is damaged", w->path);
	if (rc != MLX_OK) {
		mlx_statcache_tree_abort(w);
		return rc;
	}
	static const unsigned char none[ID];
	char id[MLX_HASH_HEX_SIZE] = "";
	if (memcmp(m->id, none, ID) != 0)
		mlx_statcache_bin_to_hex(m->id, id);
	return mlx_statcache_tree_finish(w, id[0] ? id : NULL, m->count, err);
}

int mlx_statcache_tree_patch(const char *dir, const char *prefix, const char *was,
                             const struct mlx_filelist *now, const struct mlx_filelist *gone, const char *id,
                             uint64_t files, struct mlx_err *err)
{
	struct mlx_tree_map m;
	if (!mlx_statcache_tree_map(dir, prefix, &m))
		return MLX_OK;
	/* Only a tree of the manifest that was changed becomes one of the new
	 * manifest: another one's entries are not its files. */
	char had[MLX_HASH_HEX_SIZE];
	mlx_statcache_bin_to_hex(m.id, had);
	if (strcmp(had, was) != 0) {
		mlx_statcache_tree_unmap(&m);
		return MLX_OK;
	}
	struct mlx_tree_writer *w;
	int rc = rewrite_begin(dir, prefix, &m, &w, err);
	if (rc != MLX_OK) {
		mlx_statcache_tree_unmap(&m);
		return rc;
	}
	const unsigned char *p = m.begin, *held = m.begin;
	struct mlx_tree_entry e;
	size_t j = 0, k = 0;
	size_t jlen = now->len ? strlen(now->items[0].path) : 0;
	size_t klen = gone->len ? strlen(gone->items[0].path) : 0;
	int r = 1;
	while (rc == MLX_OK) {
		if (p - held > (1 << 20)) {
			mlx_statcache_tree_release(held, p);
			held = p;
		}
		if ((r = mlx_statcache_tree_next(&p, m.end, &e)) != 1)
			break;
		/* The new files that sort before this entry come first. */
		int c = 1;
		while (rc == MLX_OK && j < now->len && (c = compare_path(now->items[j].path, jlen, &e)) < 0) {
			rc = writer_file(w, &now->items[j], err);
			if (++j < now->len)
				jlen = strlen(now->items[j].path);
		}
		if (rc != MLX_OK)
			break;
		unsigned char *q;
		if (m.dirs && mlx_statcache_tree_is_dir(&e)) {
			/* As it was: a directory whose names changed has another
			 * stat now, so its record is not trusted. */
			if ((rc = writer_entry(w, e.path, e.len, 0, &q, err)) == MLX_OK)
				memcpy(q, e.facts, ENTRY_FIXED);
			continue;
		}
		if (j < now->len && c == 0) {
			rc = writer_file(w, &now->items[j], err);
			if (++j < now->len)
				jlen = strlen(now->items[j].path);
			continue;
		}
		int g = 1;
		while (k < gone->len && (g = compare_path(gone->items[k].path, klen, &e)) < 0)
			if (++k < gone->len)
				klen = strlen(gone->items[k].path);
		if (k < gone->len && g == 0)
			continue;
		if ((rc = writer_entry(w, e.path, e.len, 1, &q, err)) == MLX_OK)
			memcpy(q, e.facts, ENTRY_FIXED);
	}
	for (; rc == MLX_OK && j < now->len; j++)
		rc = writer_file(w, &now->items[j], err);
	/* A damaged tree is left to the walk, which writes it again. */
	if (rc != MLX_OK || r != 0) {
		mlx_statcache_tree_abort(w);
		mlx_statcache_tree_unmap(&m);
		return rc;
	}
	mlx_statcache_tree_unmap(&m);
	return mlx_statcache_tree_finish(w, id, files, err);
}
