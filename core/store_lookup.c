/* store_lookup.c — which of many objects the store holds.
 *
 * Asking about every object of a directory of 20,000 files is what a no-op
 * pull or push does. A stat per object is a system call and a name lookup
 * each (about 3 µs here, most of a no-op pull); reading the shard's
 * directory instead returns hundreds of names per call. So the ids asked
 * about are sorted, and a shard asked about densely enough is read whole;
 * one asked about for a few of its many objects is looked up object by
 * object. The answers are the same either way: an object is present when
 * its name in its shard is a regular file, never a symlink. */
#include "store_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hash.h"

/* A shard is read whole while it holds at most this many entries per
 * object asked about in it: a name read costs a fraction of a stat. */
#define ENTRIES_PER_ASKED 8
/* Below this many objects asked in a shard, looking them up costs less
 * than opening the shard for reading. */
#define LIST_MIN_ASKED 4
/* Directory bytes per entry, at least, on the usual file systems (ext4
 * with half-full leaf blocks: ~146; btrfs: 124; tmpfs: 20): a shard whose
 * size says more entries than the bound is not read at all. */
#define DIR_BYTES_PER_ENTRY 160

#define SUFFIX_LEN (MLX_HASH_HEX_SIZE - 3) /* an object's name in its shard */

/* 1 if hex names a regular file in shard dfd (never a symlink). */
static int present_in(int dfd, const char *hex)
{
	struct stat st;
	return fstatat(dfd, hex + 2, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* The ids being looked up, and the order to take them in. */
struct lookup {
	const char *const *ids;
	size_t *order; /* indices into ids, sorted by id */
	unsigned char *present;
};

static int by_id(const void *a, const void *b, void *ids)
{
	const char *const *all = ids;
	return memcmp(all[*(const size_t *)a], all[*(const size_t *)b], MLX_HASH_HEX_SIZE - 1);
}

/* The position among the n sorted ids of shard run (of lk) whose name is
 * name (SUFFIX_LEN characters), or -1. */
static long find_in_run(const struct lookup *lk, const size_t *run, size_t n, const char *name)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(lk->ids[run[mid]] + 2, name, SUFFIX_LEN);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* Marks the ids of run (n of them, one shard's, sorted) that shard dfd
 * holds by reading the shard's names. Returns 1, or 0 when the shard turns
 * out to hold too many entries for that to pay (some may be marked: each
 * mark is true), or cannot be read. */
static int read_shard(const struct lookup *lk, int dfd, const size_t *run, size_t n)
{
	struct stat ds;
	size_t most = n * ENTRIES_PER_ASKED + 64;
	if (fstat(dfd, &ds) != 0 || (size_t)ds.st_size / DIR_BYTES_PER_ENTRY > most)
		return 0;
	/* A descriptor of its own: a DIR takes it over, and the caller's
	 * stays for the lookups. */
	int lfd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	DIR *d = lfd >= 0 ? fdopendir(lfd) : NULL;
	if (!d) {
		if (lfd >= 0)
			close(lfd);
		return 0;
	}
	size_t seen = 0;
	int whole = 1;
	struct dirent *e;
	while ((errno = 0, e = readdir(d))) {
		if (++seen > most) {
			whole = 0;
			break;
		}
		if (strlen(e->d_name) != SUFFIX_LEN)
			continue;
		long at = find_in_run(lk, run, n, e->d_name);
		if (at < 0)
			continue;
		size_t i = run[at];
		/* A file system that does not say an entry's type is asked. */
		lk->present[i] =
		    e->d_type == DT_REG || (e->d_type == DT_UNKNOWN && present_in(dfd, lk->ids[i]));
	}
	if (whole && errno != 0)
		whole = 0;
	closedir(d);
	return whole;
}

/* Looks up the n ids of run (one shard's), reading the shard whole when
 * that pays. */
static void look_up_shard(const struct mlx_store *s, const struct lookup *lk, const size_t *run, size_t n)
{
	const char *first = lk->ids[run[0]];
	char sub[3] = {first[0], first[1], '\0'};
	int dfd = mlx_store_open_shard(s, sub);
	if (dfd < 0)
		return; /* no shard (or not a directory): none of them */
	if (n < LIST_MIN_ASKED || !read_shard(lk, dfd, run, n)) {
		for (size_t k = 0; k < n; k++)
			if (!lk->present[run[k]])
				lk->present[run[k]] = (unsigned char)present_in(dfd, lk->ids[run[k]]);
	}
	close(dfd);
	/* An id asked about twice was found under one of its places: both
	 * passes carry the answer along each run of equal ids. */
	for (size_t k = 1; k < n; k++)
		if (memcmp(lk->ids[run[k]], lk->ids[run[k - 1]], MLX_HASH_HEX_SIZE - 1) == 0)
			lk->present[run[k]] |= lk->present[run[k - 1]];
	for (size_t k = n - 1; k > 0; k--)
		if (memcmp(lk->ids[run[k]], lk->ids[run[k - 1]], MLX_HASH_HEX_SIZE - 1) == 0)
			lk->present[run[k - 1]] |= lk->present[run[k]];
}

void mlx_store_has_many(const struct mlx_store *s, const char *const *ids, size_t n, unsigned char *present)
{
	memset(present, 0, n);
	struct lookup lk = {.ids = ids, .present = present, .order = malloc((n ? n : 1) * sizeof(size_t))};
	size_t valid = 0;
	for (size_t i = 0; i < n; i++) {
		if (!mlx_hash_is_id(ids[i]))
			continue;
		if (lk.order)
			lk.order[valid] = i;
		valid++;
	}
	if (!lk.order) {
		/* Without memory to sort: one lookup per object. */
		for (size_t i = 0; i < n; i++) {
			if (!mlx_hash_is_id(ids[i]))
				continue;
			char sub[3] = {ids[i][0], ids[i][1], '\0'};
			int dfd = mlx_store_open_shard(s, sub);
			present[i] = dfd >= 0 && present_in(dfd, ids[i]);
			if (dfd >= 0)
				close(dfd);
		}
		return;
	}
	qsort_r(lk.order, valid, sizeof *lk.order, by_id, (void *)ids);
	for (size_t a = 0; a < valid;) {
		size_t b = a + 1;
		while (b < valid && memcmp(ids[lk.order[a]], ids[lk.order[b]], 2) == 0)
			b++;
		look_up_shard(s, &lk, lk.order + a, b - a);
		a = b;
	}
	free(lk.order);
}
