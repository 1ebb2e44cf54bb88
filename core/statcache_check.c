/* statcache_check.c — is a tracked directory exactly as its tree says?
 *
 * The no-op re-check of a directory of a million files: instead of walking
 * it into a list (a hundred-odd bytes and a path per file), merging the
 * list with the tree and building nothing from it, the directory is walked
 * in the order of the tree's entries and each file's fstatat, made with its
 * directory's descriptor, is compared with the next entry in the mapped
 * tree, as git compares the lstat of each file with its index. The top
 * directory is read here; each subdirectory below it is checked by a thread
 * of a pool against its own range of entries (found by one pass over the
 * tree), so nothing is allocated per file, only per directory. The first
 * difference of any kind (a file added, removed, changed, racy, of another
 * type, a directory that cannot be read) stops the check: the caller then
 * walks and hashes as usual, which also names what is wrong. */
#include "statcache_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "path.h"
#include "pool.h"
#include "statcache.h"

#define CHECK_THREADS 16 /* the fewest threads, as a walk (hash.c) */

/* One entry of a directory being checked: its name at off in the names. */
struct ref {
	size_t off, len;
	unsigned char type;
};

struct listing {
	struct ref *refs;
	size_t n, cap;
	char *names;
	size_t len, names_cap;
};

/* The entries of a tree still to be matched, and what matched so far. */
struct cursor {
	const unsigned char *p, *end;
	uint64_t files, bytes;
};

/* Orders entries as the walk does (hash.c): a directory's name is followed
 * by '/' in the paths of its files, so "a-b" comes before "a/x". */
static int compare_refs(const void *va, const void *vb, void *vnames)
{
	const struct ref *a = va, *b = vb;
	const unsigned char *x = (const unsigned char *)vnames + a->off,
	                    *y = (const unsigned char *)vnames + b->off;
	size_t n = a->len < b->len ? a->len : b->len;
	int c = memcmp(x, y, n);
	if (c != 0)
		return c;
	int cx = a->len > n ? x[n] : (a->type == DT_DIR ? '/' : 0);
	int cy = b->len > n ? y[n] : (b->type == DT_DIR ? '/' : 0);
	return cx - cy;
}

/* Lists d into l (emptied first), sorted as the walk sorts, skipping what
 * the walk skips. Returns 1, or 0 on any doubt: an entry whose type readdir
 * does not give, a name the walk would refuse, no memory, a read error. */
static int list_sorted(DIR *d, struct listing *l)
{
	l->n = l->len = 0;
	struct dirent *ent;
	for (errno = 0; (ent = readdir(d)) != NULL; errno = 0) {
		const char *n = ent->d_name;
		if (n[0] == '.' &&
		    (n[1] == '\0' || (n[1] == '.' && n[2] == '\0') || mlx_path_reserved_name(n)))
			continue;
		if ((ent->d_type != DT_REG && ent->d_type != DT_DIR) || strchr(n, '\n'))
			return 0;
		size_t nlen = strlen(n);
		if (l->n == l->cap) {
			size_t cap = l->cap ? l->cap * 2 : 64;
			struct ref *r = realloc(l->refs, cap * sizeof *r);
			if (!r)
				return 0;
			l->refs = r;
			l->cap = cap;
		}
		if (l->len + nlen + 1 > l->names_cap) {
			size_t cap = (l->names_cap ? l->names_cap * 2 : 4096) + nlen;
			char *b = realloc(l->names, cap);
			if (!b)
				return 0;
			l->names = b;
			l->names_cap = cap;
		}
		memcpy(l->names + l->len, n, nlen + 1);
		l->refs[l->n++] = (struct ref){.off = l->len, .len = nlen, .type = ent->d_type};
		l->len += nlen + 1;
	}
	if (errno != 0)
		return 0;
	if (l->n > 1)
		qsort_r(l->refs, l->n, sizeof *l->refs, compare_refs, l->names);
	return 1;
}

/* Does the next entry of c describe the regular file path (plen bytes),
 * whose lstat is st, as it is now, and not racily? */
static int matches(struct cursor *c, const char *path, size_t plen, const struct stat *st)
{
	struct mlx_tree_entry e;
	if (mlx_statcache_tree_next(&c->p, c->end, &e) != 1 || e.len != plen ||
	    memcmp(e.path, path, plen) != 0)
		return 0;
	const unsigned char *f = e.facts;
	int64_t mtime = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	int64_t ctime = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	int64_t hashed = (int64_t)mlx_statcache_tree_get64(f + 32);
	uint32_t mode = (st->st_mode & 0111) ? 0755 : 0644;
	if (mlx_statcache_tree_get64(f) != (uint64_t)st->st_ino ||
	    mlx_statcache_tree_get64(f + 8) != (uint64_t)st->st_size ||
	    (int64_t)mlx_statcache_tree_get64(f + 16) != mtime ||
	    (int64_t)mlx_statcache_tree_get64(f + 24) != ctime || mlx_statcache_tree_get32(f + 40) != mode ||
	    mtime > hashed - MLX_STATCACHE_RACY_NS || ctime > hashed - MLX_STATCACHE_RACY_NS)
		return 0;
	c->files++;
	c->bytes += (uint64_t)st->st_size;
	return 1;
}

/* Checks directory dfd (taken), whose files' paths start with path[0..plen),
 * against the entries of c in order. Returns 1 if every file matched. */
static int check_dir(int dfd, char *path, size_t plen, struct cursor *c, const atomic_int *differs)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return 0;
	}
	struct listing l = {0};
	int ok = list_sorted(d, &l);
	for (size_t i = 0; ok && i < l.n && !atomic_load_explicit(differs, memory_order_relaxed); i++) {
		const char *name = l.names + l.refs[i].off;
		size_t len = l.refs[i].len;
		if (plen + len + 2 > PATH_MAX) {
			ok = 0;
			break;
		}
		memcpy(path + plen, name, len);
		if (l.refs[i].type == DT_DIR) {
			int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
			path[plen + len] = '/';
			ok = sub >= 0 && check_dir(sub, path, plen + len + 1, c, differs);
		} else {
			struct stat st;
			ok = fstatat(dirfd(d), name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
			     matches(c, path, plen + len, &st);
		}
	}
	free(l.refs);
	free(l.names);
	closedir(d);
	return ok && !atomic_load_explicit(differs, memory_order_relaxed);
}

/* A subdirectory of the top, checked by one thread against its range. */
struct sub {
	const char *name;
	struct cursor c;
};

struct check_job {
	int dfd;
	struct sub *subs;
	atomic_int differs;
};

static int check_sub(void *vjob, size_t i, struct mlx_err *err)
{
	struct check_job *job = vjob;
	struct sub *s = &job->subs[i];
	char path[PATH_MAX];
	size_t len = strlen(s->name);
	int sub = openat(job->dfd, s->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	memcpy(path, s->name, len);
	path[len] = '/';
	if (sub >= 0 && check_dir(sub, path, len + 1, &s->c, &job->differs) && s->c.p == s->c.end)
		return MLX_OK;
	/* A failure stops the pool: no other subdirectory is started. */
	atomic_store(&job->differs, 1);
	return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s differs from its tree", s->name);
}

/* Moves c past the entries below name/ (len bytes), into range. */
static void take_range(struct cursor *c, const char *name, size_t len, struct cursor *range)
{
	range->p = c->p;
	struct mlx_tree_entry e;
	const unsigned char *at = c->p;
	while (mlx_statcache_tree_next(&at, c->end, &e) == 1 && e.len > len && e.path[len] == '/' &&
	       memcmp(e.path, name, len) == 0)
		c->p = at;
	range->end = c->p;
}

int mlx_statcache_tree_check(const char *trees, const char *prefix, const char *dir,
                             char hex[MLX_HASH_HEX_SIZE], uint64_t *files, uint64_t *bytes)
{
	static const unsigned char none[32];
	struct mlx_tree_map m;
	if (!mlx_statcache_tree_map(trees, prefix, &m))
		return 0;
	int rc = 0;
	struct listing l = {0};
	struct sub *subs = NULL;
	size_t nsubs = 0;
	int dfd = -1;
	DIR *d = NULL;
	struct cursor top = {.p = m.begin, .end = m.end};
	if (memcmp(m.id, none, sizeof none) == 0 ||
	    (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || !(d = fdopendir(dup(dfd))) ||
	    !list_sorted(d, &l) || !(subs = calloc(l.n ? l.n : 1, sizeof *subs)))
		goto out;
	/* The files at the top are compared here, in order; each
	 * subdirectory's entries are a contiguous range of the tree (its
	 * paths share the prefix "name/"), handed to a thread. */
	int ok = 1;
	char path[PATH_MAX];
	for (size_t i = 0; ok && i < l.n; i++) {
		const char *name = l.names + l.refs[i].off;
		size_t len = l.refs[i].len;
		if (l.refs[i].type == DT_DIR) {
			subs[nsubs].name = name;
			take_range(&top, name, len, &subs[nsubs++].c);
			continue;
		}
		struct stat st;
		if (len >= sizeof path) {
			ok = 0;
			break;
		}
		memcpy(path, name, len);
		ok = fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode) &&
		     matches(&top, path, len, &st);
	}
	if (!ok || top.p != top.end)
		goto out;
	if (nsubs > 0) {
		/* More threads than CPUs, as the walk: a stat waits on the
		 * inode cache and the scheduler more than it computes. */
		struct check_job job = {.dfd = dfd, .subs = subs};
		struct mlx_err err;
		int threads = mlx_pool_default_jobs() * 4;
		int prc = mlx_pool_run(nsubs, threads > CHECK_THREADS ? threads : CHECK_THREADS, check_sub,
		                       &job, &err);
		if (prc == MLX_ERR_INTERRUPTED)
			rc = prc;
		if (prc != MLX_OK)
			goto out;
	}
	uint64_t n = top.files, size = top.bytes;
	for (size_t i = 0; i < nsubs; i++) {
		n += subs[i].c.files;
		size += subs[i].c.bytes;
	}
	if (n == m.count) {
		mlx_statcache_bin_to_hex(m.id, hex);
		*files = n;
		*bytes = size;
		rc = 1;
	}
out:
	free(subs);
	free(l.refs);
	free(l.names);
	if (d)
		closedir(d);
	if (dfd >= 0)
		close(dfd);
	mlx_statcache_tree_unmap(&m);
	return rc;
}
