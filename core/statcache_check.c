/* statcache_check.c — how does a tracked directory differ from its tree?
 *
 * The re-check of a directory of a million files: instead of walking it
 * into a list (a hundred-odd bytes and a path per file), merging the list
 * with the tree and building the manifest again, the directory is walked in
 * the order of the tree's entries and each file's fstatat, made with its
 * directory's descriptor, is compared with its entry in the mapped tree, as
 * git compares the lstat of each file with its index. The top directory is
 * read here; each subdirectory below it is compared by a thread of a pool
 * against its own range of entries (found by one pass over the tree), so
 * nothing is allocated per file, only per directory and per difference. A
 * subdirectory holding more than a share of the work (data/train/ of
 * data/) is read here too and its own subdirectories handed out instead,
 * so one large subdirectory does not leave the other CPUs idle.
 * A subdirectory whose stat is the one its directory record holds (and was
 * not racy when recorded) is not read: its names are the tree's, so only
 * its files are stat'ed, as git's untracked cache skips the directories
 * whose stat is unchanged. A comparison that finds no difference writes
 * the records of the directories it read again, when that lets the next
 * one skip them.
 * What differs (files added, files whose facts changed or are racy, entries
 * with no file) is collected up to a limit; anything the walk would refuse
 * or could not do (a symlink, a fifo, a directory that cannot be read) ends
 * the comparison, and the caller walks and hashes as usual, which names the
 * problem. */
#include "statcache_tree.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "path.h"
#include "pool.h"
#include "statcache.h"
#include "watch.h"

#define CHECK_THREADS 16 /* the fewest threads, as a walk (hash.c) */
#define SPLIT_FLOOR 4096 /* a subdirectory with fewer entries is never split */

/* Shared by the threads of one comparison. */
struct shared {
	atomic_int stop;    /* give up: too many differences, or something refused */
	atomic_size_t seen; /* differences so far */
	size_t limit;
	int dirs;       /* the tree may hold directory records */
	int watched;    /* only what the watcher reported is compared */
	int64_t now_ns; /* when the comparison started: before any stat */
};

/* The differences found by one thread, in path order, and the facts of
 * the directories it visited. */
struct found {
	struct mlx_filelist added, changed, was, deleted;
	struct mlx_tree_dir *dirs;
	size_t ndirs, cap_dirs;
	int better; /* a directory was read whose new record would spare that */
	int lost;   /* no memory for a record: none are written */
};

/* The entries of a tree still to be compared, and what matched so far. */
struct cursor {
	const unsigned char *p, *end;
	struct mlx_tree_entry last; /* the entry taken last (len 0: none yet) */
	uint64_t files, bytes;
	struct found *found;
	struct shared *shared;
};

static void found_free(struct found *f)
{
	mlx_filelist_free(&f->added);
	mlx_filelist_free(&f->changed);
	mlx_filelist_free(&f->was);
	mlx_filelist_free(&f->deleted);
	for (size_t i = 0; i < f->ndirs; i++)
		free(f->dirs[i].path);
	free(f->dirs);
	f->dirs = NULL;
	f->ndirs = f->cap_dirs = 0;
}

static int64_t stat_mtime(const struct stat *st)
{
	return (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

static int64_t stat_ctime(const struct stat *st)
{
	return (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
}

/* Keeps the facts of directory path[0..plen) (ending in '/'), whose names
 * were read (or, from a record, known) at listed_ns. On no memory, marks
 * the records lost: a partial set must not be written, as a directory
 * with no record of its own would be skipped in its parent's. */
static void keep_dir(struct found *f, const char *path, size_t plen, const struct stat *st, int64_t listed_ns)
{
	if (f->lost)
		return;
	if (f->ndirs == f->cap_dirs) {
		size_t cap = f->cap_dirs ? f->cap_dirs * 2 : 16;
		struct mlx_tree_dir *dirs = realloc(f->dirs, cap * sizeof *dirs);
		if (!dirs) {
			f->lost = 1;
			return;
		}
		f->dirs = dirs;
		f->cap_dirs = cap;
	}
	char *copy = malloc(plen);
	if (!copy) {
		f->lost = 1;
		return;
	}
	memcpy(copy, path, plen);
	f->dirs[f->ndirs++] = (struct mlx_tree_dir){.path = copy,
	                                            .len = plen,
	                                            .ino = (uint64_t)st->st_ino,
	                                            .mtime_ns = stat_mtime(st),
	                                            .ctime_ns = stat_ctime(st),
	                                            .listed_ns = listed_ns};
}

/* Opens directory dfd (taken) and lists it into l, sorted as the walk
 * sorts, skipping what the walk skips. Returns the open directory, or NULL
 * (dfd closed, l empty) on any doubt: an entry that is neither a regular
 * file nor a directory (or whose type readdir does not give), a name the
 * walk would refuse, no memory, a read error; the walk then names the
 * problem. */
static DIR *open_listed(int dfd, struct mlx_dirlist *l)
{
	DIR *d = fdopendir(dfd);
	if (!d) {
		close(dfd);
		return NULL;
	}
	if (mlx_fs_list_walk(d, MLX_FS_LIST_STRICT, l, "", NULL, NULL) != MLX_OK) {
		mlx_dirlist_free(l);
		closedir(d);
		return NULL;
	}
	return d;
}

/* Byte order of an entry's path and key (klen bytes). */
static int compare_entry(const struct mlx_tree_entry *e, const char *key, size_t klen)
{
	int c = memcmp(e->path, key, e->len < klen ? e->len : klen);
	return c ? c : (e->len > klen) - (e->len < klen);
}

/* Takes entry e, which ends at at: 1, or 0 if it does not come after the
 * last one taken (a tree is written sorted; one that is not is damaged,
 * and what it says of differences would be wrong). */
static int take(struct cursor *c, const struct mlx_tree_entry *e, const unsigned char *at)
{
	if (c->last.len && compare_entry(e, c->last.path, c->last.len) <= 0)
		return 0;
	c->last = *e;
	c->p = at;
	return 1;
}

/* Counts one more difference; 0 once there are more than the limit. */
static int one_more(struct cursor *c)
{
	if (atomic_fetch_add(&c->shared->seen, 1) + 1 > c->shared->limit) {
		atomic_store(&c->shared->stop, 1);
		return 0;
	}
	return 1;
}

/* Appends the file an entry describes to list; its path, which reaches
 * the caller's lists (and a checkout), must obey the path rule. */
static int push_entry(struct mlx_filelist *list, const struct mlx_tree_entry *e)
{
	char path[PATH_MAX], hex[MLX_HASH_HEX_SIZE];
	if (mlx_path_check(e->path, e->len, NULL) != MLX_OK)
		return 0;
	memcpy(path, e->path, e->len); /* e->len < PATH_MAX (mlx_statcache_tree_next) */
	path[e->len] = '\0';
	mlx_statcache_bin_to_hex(e->facts + 44, hex);
	return mlx_filelist_push(list, path, mlx_statcache_tree_get64(e->facts + 8),
	                         mlx_statcache_tree_get32(e->facts + 40), hex, NULL) == MLX_OK;
}

/* Appends the file path (NUL-terminated), whose lstat is st, to list. */
static int push_stat(struct mlx_filelist *list, const char *path, const struct stat *st)
{
	if (mlx_filelist_push(list, path, (uint64_t)st->st_size, (st->st_mode & 0111) ? 0755 : 0644, NULL,
	                      NULL) != MLX_OK)
		return 0;
	struct mlx_file *f = &list->items[list->len - 1];
	f->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
	f->ctime_ns = (int64_t)st->st_ctim.tv_sec * 1000000000 + st->st_ctim.tv_nsec;
	f->ino = (uint64_t)st->st_ino;
	return 1;
}

/* Takes the entries that sort before key (klen bytes) as deleted, or, with
 * below set, those whose paths start with key. Returns 1, or 0 to give up. */
static int take_deleted(struct cursor *c, const char *key, size_t klen, int below)
{
	struct mlx_tree_entry e;
	const unsigned char *at = c->p;
	int r;
	while ((r = mlx_statcache_tree_next(&at, c->end, &e)) == 1) {
		int gone = below ? e.len >= klen && memcmp(e.path, key, klen) == 0
		                 : compare_entry(&e, key, klen) < 0;
		if (!gone)
			break;
		if (c->shared->dirs && mlx_statcache_tree_is_dir(&e)) {
			/* A directory gone, or a record of this one: no file. */
			if (!take(c, &e, at))
				return 0;
			continue;
		}
		if (!take(c, &e, at) || !one_more(c) || !push_entry(&c->found->deleted, &e))
			return 0;
	}
	return r >= 0;
}

/* Compares file name of directory dfd, whose path is path (plen bytes,
 * NUL-terminated), with the tree. Returns 1, or 0 to give up (it cannot be
 * lstat'ed, or is not a regular file). */
static int compare_file(struct cursor *c, int dfd, const char *name, const char *path, size_t plen)
{
	struct stat sb, *st = &sb;
	if (fstatat(dfd, name, st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st->st_mode))
		return 0;
	/* A file with another name may have changed through that one, with
	 * no event at this one's path: only a whole comparison can tell. */
	if (c->shared->watched && st->st_nlink > 1)
		return 0;
	if (!take_deleted(c, path, plen, 0))
		return 0;
	struct mlx_tree_entry e;
	const unsigned char *at = c->p;
	int r = mlx_statcache_tree_next(&at, c->end, &e);
	if (r < 0)
		return 0;
	if (r == 0 || compare_entry(&e, path, plen) != 0)
		return one_more(c) && push_stat(&c->found->added, path, st);
	if (!take(c, &e, at))
		return 0;
	const unsigned char *f = e.facts;
	int64_t mtime = stat_mtime(st), ctime = stat_ctime(st);
	int64_t hashed = (int64_t)mlx_statcache_tree_get64(f + 32);
	uint32_t mode = (st->st_mode & 0111) ? 0755 : 0644;
	if (mlx_statcache_tree_get64(f) == (uint64_t)st->st_ino &&
	    mlx_statcache_tree_get64(f + 8) == (uint64_t)st->st_size &&
	    (int64_t)mlx_statcache_tree_get64(f + 16) == mtime &&
	    (int64_t)mlx_statcache_tree_get64(f + 24) == ctime && mlx_statcache_tree_get32(f + 40) == mode &&
	    mtime <= hashed - MLX_STATCACHE_RACY_NS && ctime <= hashed - MLX_STATCACHE_RACY_NS) {
		c->files++;
		c->bytes += (uint64_t)st->st_size;
		return 1;
	}
	/* Its facts changed (or are racy): its bytes may not have. */
	return one_more(c) && push_stat(&c->found->changed, path, st) && push_entry(&c->found->was, &e);
}

/* Takes the directory record of path[0..plen) (ending in '/') if it is
 * the next entry of c, into *e: 1, else 0. */
static int take_record(struct cursor *c, const char *path, size_t plen, struct mlx_tree_entry *e)
{
	const unsigned char *at = c->p;
	if (!c->shared->dirs || plen == 0 || mlx_statcache_tree_next(&at, c->end, e) != 1 ||
	    !mlx_statcache_tree_is_dir(e) || compare_entry(e, path, plen) != 0)
		return 0;
	return take(c, e, at);
}

/* 1 if record e holds st (the stat of its directory now) and was not
 * racy when recorded: no name has come or gone since its names were
 * read, as any would have set the directory's mtime and ctime to a later
 * time than both (its ctime, unlike its mtime, cannot be set back). */
static int record_holds(const struct mlx_tree_entry *e, const struct stat *st)
{
	const unsigned char *f = e->facts;
	int64_t mtime = stat_mtime(st), ctime = stat_ctime(st);
	int64_t listed = (int64_t)mlx_statcache_tree_get64(f + 32);
	return mlx_statcache_tree_get32(f + 40) == MLX_TREE_DIR_MODE &&
	       mlx_statcache_tree_get64(f) == (uint64_t)st->st_ino &&
	       (int64_t)mlx_statcache_tree_get64(f + 16) == mtime &&
	       (int64_t)mlx_statcache_tree_get64(f + 24) == ctime && mtime <= listed - MLX_STATCACHE_RACY_NS &&
	       ctime <= listed - MLX_STATCACHE_RACY_NS;
}

/* 1 if name (len bytes) cannot be a name in a directory. */
static int not_a_name(const char *name, size_t len)
{
	return len == 0 || len > NAME_MAX || (name[0] == '.' && (len == 1 || (len == 2 && name[1] == '.')));
}

static int compare_dir(int dfd, char *path, size_t plen, struct cursor *c);

/* Compares directory dfd, whose record holds, with the entries below it
 * (path[0..plen)) without reading it: its names are the tree's. Each file
 * right below it is stat'ed, each subdirectory (which has its record)
 * compared in turn. Returns 1, or 0 to give up. */
static int compare_recorded(int dfd, char *path, size_t plen, struct cursor *c)
{
	struct mlx_tree_entry e;
	int r;
	for (;;) {
		if (atomic_load_explicit(&c->shared->stop, memory_order_relaxed))
			return 0;
		const unsigned char *at = c->p;
		if ((r = mlx_statcache_tree_next(&at, c->end, &e)) != 1)
			return r == 0;
		if (e.len <= plen || memcmp(e.path, path, plen) != 0)
			return 1;
		const char *name = e.path + plen;
		size_t len = e.len - plen;
		const char *slash = memchr(name, '/', len);
		memcpy(path + plen, name, len); /* e.len < PATH_MAX */
		if (!slash) {
			path[e.len] = '\0';
			if (not_a_name(name, len) || !compare_file(c, dfd, path + plen, path, e.len))
				return 0;
			continue;
		}
		/* Every directory below a record has its own (they are written
		 * all together): an entry deeper without one cannot be told. */
		if (slash != name + len - 1 || not_a_name(name, len - 1))
			return 0;
		path[e.len - 1] = '\0';
		int sub = openat(dfd, path + plen, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		path[e.len - 1] = '/';
		if (sub < 0 || !compare_dir(sub, path, e.len, c))
			return 0;
	}
}

/* Compares directory dfd (taken), whose files' paths start with
 * path[0..plen), with the entries of c in order. Returns 1, or 0 to give
 * up. */
static int compare_dir(int dfd, char *path, size_t plen, struct cursor *c)
{
	struct stat ds;
	struct mlx_tree_entry rec;
	/* The stat before the names: a name that comes after it changes the
	 * directory's mtime past what is recorded now. */
	if (fstat(dfd, &ds) != 0) {
		close(dfd);
		return 0;
	}
	int has = take_record(c, path, plen, &rec);
	if (has && record_holds(&rec, &ds)) {
		int held = compare_recorded(dfd, path, plen, c);
		close(dfd);
		keep_dir(c->found, path, plen, &ds, (int64_t)mlx_statcache_tree_get64(rec.facts + 32));
		return held && take_deleted(c, path, plen, 1);
	}
	if (plen > 0) {
		keep_dir(c->found, path, plen, &ds, c->shared->now_ns);
		/* Written again, its record would spare the next comparison
		 * this read (unless the directory is racy now too); one that
		 * lacks a record keeps its parent from being spared. */
		if (!has || (stat_mtime(&ds) <= c->shared->now_ns - MLX_STATCACHE_RACY_NS &&
		             stat_ctime(&ds) <= c->shared->now_ns - MLX_STATCACHE_RACY_NS))
			c->found->better = 1;
	}
	struct mlx_dirlist l = {0};
	DIR *d = open_listed(dfd, &l);
	if (!d)
		return 0;
	int ok = 1;
	for (size_t i = 0; ok && i < l.len && !atomic_load_explicit(&c->shared->stop, memory_order_relaxed);
	     i++) {
		const char *name = l.names + l.items[i].off;
		size_t len = l.items[i].len;
		if (plen + len + 2 > PATH_MAX) {
			ok = 0;
			break;
		}
		memcpy(path + plen, name, len);
		if (l.items[i].type == DT_DIR) {
			path[plen + len] = '/';
			int sub = -1;
			ok = take_deleted(c, path, plen + len + 1, 0) &&
			     (sub = openat(dirfd(d), name,
			                   O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) >= 0 &&
			     compare_dir(sub, path, plen + len + 1, c);
		} else {
			path[plen + len] = '\0';
			ok = compare_file(c, dirfd(d), name, path, plen + len);
		}
	}
	mlx_dirlist_free(&l);
	closedir(d);
	/* What is left below this directory has no file any more. */
	return ok && take_deleted(c, path, plen, 1) &&
	       !atomic_load_explicit(&c->shared->stop, memory_order_relaxed);
}

/* A subdirectory, compared by one thread against its range of entries. */
struct sub {
	char *path; /* below the top, with a '/' at the end */
	size_t len;
	const unsigned char *begin; /* its range of the tree: begin to c.end */
	struct cursor c;
	struct found found;
};

struct check_job {
	int dfd;
	struct sub *subs;
	struct shared *shared;
};

static int check_sub(void *vjob, size_t i, struct mlx_err *err)
{
	struct check_job *job = vjob;
	struct sub *s = &job->subs[i];
	char path[PATH_MAX];
	memcpy(path, s->path, s->len - 1);
	path[s->len - 1] = '\0';
	/* Below the top, following no symlink in any component: the path of
	 * a subdirectory of a split one has several. */
	int sub = -1;
	mlx_path_open_dir(job->dfd, path, 0, &sub, NULL);
	path[s->len - 1] = '/';
	s->c.found = &s->found;
	s->c.shared = job->shared;
	int ok = sub >= 0 && compare_dir(sub, path, s->len, &s->c) && s->c.p == s->c.end;
	mlx_statcache_tree_release(s->begin, s->c.end);
	if (ok)
		return MLX_OK;
	/* A failure stops the pool: no other subdirectory is started. */
	atomic_store(&job->shared->stop, 1);
	return mlx_err_set(err, MLX_ERR_INVALID, 0, "%.*s cannot be compared with its tree", (int)s->len - 1,
	                   s->path);
}

/* The subdirectories handed to the threads of one comparison. */
struct plan {
	struct sub *subs;
	size_t n, cap;
	size_t big; /* a subdirectory with more entries is split further */
};

/* Moves c past the entries below path[0..plen) (which ends in '/'), and
 * its record, into range; returns how many there are. */
static size_t take_range(struct cursor *c, const char *path, size_t plen, struct cursor *range)
{
	size_t n = 0;
	range->p = c->p;
	struct mlx_tree_entry e;
	const unsigned char *at = c->p;
	while (mlx_statcache_tree_next(&at, c->end, &e) == 1 && e.len >= plen &&
	       memcmp(e.path, path, plen) == 0) {
		c->p = at;
		n++;
	}
	range->end = c->p;
	return n;
}

/* Hands the subdirectory path[0..plen) and its range to a thread. Returns
 * 1, or 0 without memory. */
static int plan_sub(struct plan *pl, const char *path, size_t plen, const struct cursor *range)
{
	if (pl->n == pl->cap) {
		size_t cap = pl->cap ? pl->cap * 2 : 64;
		struct sub *subs = realloc(pl->subs, cap * sizeof *subs);
		if (!subs)
			return 0;
		pl->subs = subs;
		pl->cap = cap;
	}
	char *copy = malloc(plen);
	if (!copy)
		return 0;
	memcpy(copy, path, plen);
	pl->subs[pl->n++] = (struct sub){.path = copy, .len = plen, .begin = range->p, .c = *range};
	/* Read again by its thread: until then, not held. */
	mlx_statcache_tree_release(range->p, range->end);
	return 1;
}

/* Compares the files of directory dfd (taken), whose paths start with
 * path[0..plen), with the entries of c here, and hands each subdirectory
 * with its range of entries to a thread (pl); one of more than pl->big
 * entries is split the same way here instead, so that a tree whose files
 * are all below one or two subdirectories still keeps every CPU busy.
 * Returns 1, or 0 to give up. */
static int plan_dir(int dfd, char *path, size_t plen, struct cursor *c, struct plan *pl)
{
	/* Always read, as the work is shared out from here; recorded all
	 * the same, since each directory below the top has its record. */
	struct stat ds;
	struct mlx_tree_entry rec;
	if (fstat(dfd, &ds) != 0) {
		close(dfd);
		return 0;
	}
	take_record(c, path, plen, &rec);
	if (plen > 0)
		keep_dir(c->found, path, plen, &ds, c->shared->now_ns);
	struct mlx_dirlist l = {0};
	DIR *d = open_listed(dfd, &l);
	if (!d)
		return 0;
	int ok = 1;
	for (size_t i = 0; ok && i < l.len; i++) {
		const char *name = l.names + l.items[i].off;
		size_t len = l.items[i].len, sublen = plen + len + 1;
		if (sublen + 1 > PATH_MAX) {
			ok = 0;
			break;
		}
		memcpy(path + plen, name, len);
		if (l.items[i].type != DT_DIR) {
			path[plen + len] = '\0';
			ok = compare_file(c, dirfd(d), name, path, plen + len);
			continue;
		}
		/* Each subdirectory's entries are a contiguous range of the
		 * tree: its paths share the prefix "name/". */
		path[sublen - 1] = '/';
		struct cursor range = {.found = c->found, .shared = c->shared};
		if (!(ok = take_deleted(c, path, sublen, 0)))
			break;
		if (take_range(c, path, sublen, &range) <= pl->big) {
			ok = plan_sub(pl, path, sublen, &range);
			continue;
		}
		int sub = openat(dirfd(d), name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		ok = sub >= 0 && plan_dir(sub, path, sublen, &range, pl) && range.p == range.end;
		c->files += range.files;
		c->bytes += range.bytes;
	}
	mlx_dirlist_free(&l);
	closedir(d);
	/* What is left below this directory has no file any more. */
	return ok && take_deleted(c, path, plen, 1);
}

/* Appends the files of from to to. Returns 1, or 0 without memory. */
static int append(struct mlx_filelist *to, const struct mlx_filelist *from)
{
	for (size_t i = 0; i < from->len; i++) {
		const struct mlx_file *f = &from->items[i];
		if (mlx_filelist_push(to, f->path, f->size, f->mode, f->hex, NULL) != MLX_OK)
			return 0;
		struct mlx_file *g = &to->items[to->len - 1];
		g->mtime_ns = f->mtime_ns;
		g->ctime_ns = f->ctime_ns;
		g->ino = f->ino;
	}
	return 1;
}

/* Byte order of two directory records' paths, for qsort. */
static int compare_dirs(const void *a, const void *b)
{
	const struct mlx_tree_dir *x = a, *y = b;
	int c = memcmp(x->path, y->path, x->len < y->len ? x->len : y->len);
	return c ? c : (x->len > y->len) - (x->len < y->len);
}

/* After a comparison that found no difference: writes the tree again with
 * the records of every directory visited (top's and subs'), if one of
 * them was read where a record would spare that. Only an accelerator: a
 * failure leaves the tree as it was. */
static void record_dirs(const char *trees, const char *prefix, const struct mlx_tree_map *m, struct found *top,
                        struct plan *pl)
{
	int better = top->better, lost = top->lost;
	size_t n = top->ndirs;
	for (size_t i = 0; i < pl->n; i++) {
		better |= pl->subs[i].found.better;
		lost |= pl->subs[i].found.lost;
		n += pl->subs[i].found.ndirs;
	}
	if (!better || lost)
		return;
	struct mlx_tree_dir *all = malloc((n ? n : 1) * sizeof *all);
	if (!all)
		return;
	/* The paths stay their lists' (freed with them). A list of no
	 * directories may have no array: memcpy from NULL is undefined. */
	size_t k = 0;
	if (top->ndirs)
		memcpy(all, top->dirs, top->ndirs * sizeof *all);
	k = top->ndirs;
	for (size_t i = 0; i < pl->n; i++) {
		if (pl->subs[i].found.ndirs)
			memcpy(all + k, pl->subs[i].found.dirs, pl->subs[i].found.ndirs * sizeof *all);
		k += pl->subs[i].found.ndirs;
	}
	qsort(all, n, sizeof *all, compare_dirs);
	mlx_statcache_tree_put_dirs(trees, prefix, m, all, n, NULL);
	free(all);
}

/* What the project's watcher said, if one answered. */
struct watch_look {
	int live;
	char root[PATH_MAX];
	struct mlx_watch_answer answer;
};

/* Asks the watcher of the project whose stat cache's trees are in trees
 * (<root>/.mlx/state.db-trees) what changed since the token of the tree
 * mapped in m. Returns 1 with wl filled (wl->answer to free), or 0: no
 * watcher answered, or the trees are not a project's. */
static int watch_ask(const char *trees, const struct mlx_tree_map *m, struct watch_look *wl)
{
	memset(wl, 0, sizeof *wl);
	char mlxdir[PATH_MAX], token[MLX_WATCH_TOKEN_MAX];
	size_t len = strlen(trees);
	const char *slash = memrchr(trees, '/', len);
	if (!slash || slash - trees < 5 || (size_t)(slash - trees) >= sizeof mlxdir ||
	    strcmp(slash, "/state.db-trees") != 0 || memcmp(slash - 5, "/.mlx", 5) != 0)
		return 0;
	memcpy(mlxdir, trees, (size_t)(slash - trees));
	mlxdir[slash - trees] = '\0';
	memcpy(wl->root, trees, (size_t)(slash - trees - 5));
	wl->root[slash - trees - 5] = '\0';
	if (!wl->root[0])
		return 0;
	int has = mlx_watch_token_get(m->path, &m->fid, token);
	if (mlx_watch_changed(mlxdir, wl->root, has ? token : NULL, &wl->answer, NULL) != MLX_OK)
		return 0;
	wl->live = 1;
	return 1;
}

/* byte order of two strings, for qsort and bsearch over char *. */
static int compare_strings(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A path of the watcher's list below the tracked directory, relative to
 * it, with what the tree holds at it: the entry of a file there, and the
 * range of entries below it (one range: they share the prefix "path/"). */
struct region {
	const char *path;
	size_t len;
	const unsigned char *file, *file_end;   /* the file's entry, or NULL */
	const unsigned char *below, *below_end; /* the entries below, or NULL */
};

/* The index in r (n regions, sorted) of the one whose path is key (len
 * bytes), or -1. */
static long find_region(const struct region *r, size_t n, const char *key, size_t len)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = (lo + hi) / 2;
		int c = memcmp(r[mid].path, key, r[mid].len < len ? r[mid].len : len);
		if (c == 0)
			c = (r[mid].len > len) - (r[mid].len < len);
		if (c == 0)
			return (long)mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The region whose path is key[0..len) or one of its directories, or -1. */
static long region_above(const struct region *r, size_t n, const char *key, size_t len)
{
	for (size_t i = 0; i <= len; i++) {
		if (i < len && key[i] != '/')
			continue;
		long k = find_region(r, n, key, i);
		if (k >= 0)
			return k;
	}
	return -1;
}

/* The paths the watcher reported below prefix, relative to it, sorted,
 * each once and none below another (a path stands for all below it), as
 * regions into *out (pointing into paths). Returns the count, or -1 when
 * the answer cannot serve: prefix itself (or above it) was reported, a
 * path the path rule refuses, more than limit, no memory. */
static long watch_regions(const struct mlx_strlist *paths, const char *prefix, size_t limit,
                          struct region **out)
{
	size_t plen = strlen(prefix), n = 0;
	*out = NULL;
	const char **rel = malloc((paths->len ? paths->len : 1) * sizeof *rel);
	if (!rel)
		return -1;
	for (size_t i = 0; i < paths->len; i++) {
		const char *p = paths->items[i];
		size_t len = strlen(p);
		if (len <= plen) {
			if (len > 0 && memcmp(prefix, p, len) == 0 &&
			    (prefix[len] == '/' || prefix[len] == '\0'))
				goto fail; /* the directory itself, or one above it */
			continue;
		}
		if (memcmp(p, prefix, plen) != 0 || p[plen] != '/')
			continue;
		/* From another process: obeys the path rule like any data. */
		if (mlx_path_check(p + plen + 1, len - plen - 1, NULL) != MLX_OK)
			goto fail;
		rel[n++] = p + plen + 1;
	}
	if (n > limit)
		goto fail;
	qsort(rel, n, sizeof *rel, compare_strings);
	struct region *r = malloc((n ? n : 1) * sizeof *r);
	if (!r)
		goto fail;
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(rel[i]);
		if (k > 0 && region_above(r, k, rel[i], len) >= 0)
			continue; /* the same path, or one below a path kept */
		r[k++] = (struct region){.path = rel[i], .len = len};
	}
	free(rel);
	*out = r;
	return (long)k;
fail:
	free(rel);
	return -1;
}

/* A cursor over the entries from p to end. */
static struct cursor span(const unsigned char *p, const unsigned char *end, struct found *f,
                          struct shared *sh)
{
	return (struct cursor){.p = p, .end = end, .found = f, .shared = sh};
}

/* Compares region g (its file's entry and the entries below it) with what
 * is at its path now, below the directory dfd. Returns 1, or 0 to give
 * up (a symlink, a fifo, anything the walk would refuse or name). */
static int compare_region(int dfd, const struct region *g, struct found *f, struct shared *sh,
                          uint64_t *files, uint64_t *bytes)
{
	char path[PATH_MAX];
	if (g->len + 2 > PATH_MAX)
		return 0;
	memcpy(path, g->path, g->len);
	path[g->len] = '\0';
	const char *slash = strrchr(path, '/'), *name = slash ? slash + 1 : path;
	int pfd = -1, gone = 0;
	struct stat st;
	if (slash) {
		path[slash - path] = '\0';
		int rc = mlx_path_open_dir(dfd, path, 0, &pfd, NULL);
		path[slash - path] = '/';
		if (rc == MLX_ERR_NOTFOUND)
			gone = 1;
		else if (rc != MLX_OK)
			return 0;
	} else if ((pfd = dup(dfd)) < 0) {
		return 0;
	}
	if (!gone && fstatat(pfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno != ENOENT) {
			close(pfd);
			return 0;
		}
		gone = 1;
	}
	int ok = 1;
	struct cursor fc = span(g->file ? g->file : g->below, g->file ? g->file_end : g->below, f, sh);
	struct cursor bc = span(g->below, g->below_end, f, sh);
	if (!gone && S_ISDIR(st.st_mode)) {
		/* A directory: compared whole with the entries below it, as
		 * the walk would (its record, if it still holds, spares reading
		 * it); a file's entry at its path is gone. */
		ok = !g->file || (take_deleted(&fc, path, g->len, 1) && fc.p == fc.end);
		path[g->len] = '/';
		path[g->len + 1] = '\0';
		int sub = openat(pfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		ok = ok && sub >= 0 && compare_dir(sub, path, g->len + 1, &bc) && bc.p == bc.end;
	} else if (!gone && S_ISREG(st.st_mode)) {
		/* A file: compared with its entry (or added); whatever was
		 * below its path is gone. */
		ok = compare_file(&fc, pfd, name, path, g->len) && fc.p == fc.end;
		path[g->len] = '/';
		ok = ok && (!g->below || take_deleted(&bc, path, g->len + 1, 1)) && bc.p == bc.end;
	} else if (gone) {
		ok = (!g->file || take_deleted(&fc, path, g->len, 1)) && fc.p == fc.end;
		path[g->len] = '/';
		ok = ok && (!g->below || take_deleted(&bc, path, g->len + 1, 1)) && bc.p == bc.end;
	} else {
		ok = 0; /* a symlink, fifo, socket or device: the walk names it */
	}
	if (pfd >= 0)
		close(pfd);
	*files += fc.files + bc.files;
	*bytes += fc.bytes + bc.bytes;
	return ok && !atomic_load(&sh->stop);
}

/* The comparison of dir with the tree m (of prefix) when the watcher
 * listed what changed since the tree was found true: the tree's entries at
 * paths not listed are trusted as they are, the listed paths compared.
 * Fills out and returns 1; returns -1 (out empty) when there are more
 * differences than limit, or 0 when it cannot tell, and the caller
 * compares the whole directory. */
static int changes_since(const struct watch_look *wl, const char *prefix, const struct mlx_tree_map *m,
                         size_t limit, struct mlx_statcache_changes *out)
{
	struct region *r = NULL;
	long nr = watch_regions(&wl->answer.paths, prefix, limit < 10000 ? 10000 : limit, &r);
	if (nr < 0)
		return 0;
	size_t n = (size_t)nr;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct shared sh = {.limit = limit,
	                    .dirs = m->dirs,
	                    .watched = 1,
	                    .now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec};
	struct found f = {0};
	uint64_t files = 0, bytes = 0;
	int ok = 1, rootfd = -1, dfd = -1;
	/* One pass over the tree: the entries of no region are counted and
	 * trusted; each region's are found. A run of entries of one directory
	 * asks about that directory once. */
	const unsigned char *p = m->begin, *at = p;
	struct mlx_tree_entry e;
	const char *dir_of = NULL;
	size_t dir_len = 0;
	long dir_region = -1;
	const unsigned char *held = m->begin;
	int rr;
	for (;;) {
		/* What was passed is let go a megabyte at a time (mapped in
		 * again if a region's entries are read): the pass holds a
		 * little of the tree, not all of it. */
		if (p - held > (1 << 20)) {
			mlx_statcache_tree_release(held, p);
			held = p;
		}
		at = p;
		if ((rr = mlx_statcache_tree_next(&p, m->end, &e)) != 1)
			break;
		int rec = m->dirs && mlx_statcache_tree_is_dir(&e);
		size_t klen = rec ? e.len - 1 : e.len;
		const char *cut = memrchr(e.path, '/', klen);
		size_t plen = cut ? (size_t)(cut - e.path) : 0;
		if (n > 0 && (!dir_of || plen != dir_len || memcmp(dir_of, e.path, plen) != 0)) {
			dir_of = e.path;
			dir_len = plen;
			dir_region = cut ? region_above(r, n, e.path, plen) : -1;
		}
		long g = n > 0 ? dir_region : -1;
		if (n > 0 && g < 0)
			g = find_region(r, n, e.path, klen);
		if (g < 0) {
			if (!rec) {
				files++;
				bytes += mlx_statcache_tree_get64(e.facts + 8);
			}
			continue;
		}
		struct region *rg = &r[g];
		if (!rec && klen == rg->len) {
			rg->file = at;
			rg->file_end = p;
		} else {
			if (!rg->below)
				rg->below = at;
			else if (rg->below_end != at)
				ok = 0; /* not one range: a damaged tree */
			rg->below_end = p;
		}
	}
	if (rr != 0)
		ok = 0;
	/* Always, even with nothing reported: a tracked directory reached
	 * through a symlink is not watched (the watcher follows none). */
	if (ok) {
		ok = (rootfd = open(wl->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) >= 0 &&
		     mlx_path_open_dir(rootfd, prefix, 0, &dfd, NULL) == MLX_OK;
		for (size_t i = 0; ok && i < n; i++)
			ok = compare_region(dfd, &r[i], &f, &sh, &files, &bytes);
	}
	if (dfd >= 0)
		close(dfd);
	if (rootfd >= 0)
		close(rootfd);
	free(r);
	if (!ok) {
		found_free(&f);
		/* More differences than the limit: as the whole comparison
		 * would say, without it. */
		return atomic_load(&sh.seen) > sh.limit ? -1 : 0;
	}
	mlx_filelist_sort(&f.added);
	mlx_filelist_sort(&f.changed);
	mlx_filelist_sort(&f.was);
	mlx_filelist_sort(&f.deleted);
	for (size_t i = 0; i < f.was.len; i++)
		bytes += f.was.items[i].size;
	for (size_t i = 0; i < f.deleted.len; i++)
		bytes += f.deleted.items[i].size;
	files += f.was.len + f.deleted.len;
	if (files != m->count) {
		found_free(&f);
		return 0;
	}
	out->files = files;
	out->bytes = bytes;
	mlx_statcache_bin_to_hex(m->id, out->id);
	out->added = f.added;
	out->changed = f.changed;
	out->was = f.was;
	out->deleted = f.deleted;
	memset(&f.added, 0, sizeof f.added);
	memset(&f.changed, 0, sizeof f.changed);
	memset(&f.was, 0, sizeof f.was);
	memset(&f.deleted, 0, sizeof f.deleted);
	found_free(&f);
	return 1;
}

int mlx_statcache_tree_changes(const char *trees, const char *prefix, const char *dir, size_t limit,
                               struct mlx_statcache_changes *out)
{
	static const unsigned char none[32];
	memset(out, 0, sizeof *out);
	struct mlx_tree_map m;
	if (!mlx_statcache_tree_map(trees, prefix, &m))
		return 0;
	int rc = 0;
	struct plan pl = {0};
	int dfd = -1, pdfd;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	struct shared shared = {.limit = limit,
	                        .dirs = m.dirs,
	                        .now_ns = (int64_t)now.tv_sec * 1000000000 + now.tv_nsec};
	struct found top_found = {0};
	struct cursor top = {.p = m.begin, .end = m.end, .found = &top_found, .shared = &shared};
	/* The files at the top are compared here, in order, and each
	 * subdirectory by a thread; where one holds more than a share of the
	 * CPUs' work, its own subdirectories are. */
	int jobs = mlx_pool_default_jobs();
	pl.big = m.count / (2 * (size_t)jobs);
	if (pl.big < SPLIT_FLOOR)
		pl.big = SPLIT_FLOOR;
	char path[PATH_MAX];
	/* With a watcher that knows what changed since this tree was found
	 * true, only that is compared; else the whole directory. */
	struct watch_look wl;
	int watched = memcmp(m.id, none, sizeof none) != 0 && watch_ask(trees, &m, &wl);
	int since = watched && !wl.answer.everything ? changes_since(&wl, prefix, &m, limit, out) : 0;
	if (since != 0) {
		rc = since > 0;
		if (rc && out->added.len + out->changed.len + out->deleted.len == 0)
			mlx_watch_token_put(m.path, &m.fid, wl.answer.token); /* found true at that token */
		goto out;
	}
	if (memcmp(m.id, none, sizeof none) == 0 ||
	    (dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0 || (pdfd = dup(dfd)) < 0 ||
	    !plan_dir(pdfd, path, 0, &top, &pl))
		goto out;
	if (pl.n > 0) {
		/* More threads than CPUs, as the walk: a stat waits on the
		 * inode cache and the scheduler more than it computes. */
		struct check_job job = {.dfd = dfd, .subs = pl.subs, .shared = &shared};
		struct mlx_err err;
		int threads = jobs * 4;
		int prc = mlx_pool_run(pl.n, threads > CHECK_THREADS ? threads : CHECK_THREADS, check_sub,
		                       &job, &err);
		if (prc == MLX_ERR_INTERRUPTED)
			rc = prc;
		if (prc != MLX_OK)
			goto out;
	}
	/* The differences, in path order: the top's and each
	 * subdirectory's, sorted once (they are few). */
	out->files = top.files;
	out->bytes = top.bytes;
	struct found *all = &top_found;
	for (size_t i = 0; i < pl.n; i++) {
		struct found *f = &pl.subs[i].found;
		out->files += pl.subs[i].c.files;
		out->bytes += pl.subs[i].c.bytes;
		if (!append(&all->added, &f->added) || !append(&all->changed, &f->changed) ||
		    !append(&all->was, &f->was) || !append(&all->deleted, &f->deleted))
			goto out;
	}
	mlx_filelist_sort(&all->added);
	mlx_filelist_sort(&all->changed);
	mlx_filelist_sort(&all->was);
	mlx_filelist_sort(&all->deleted);
	out->added = all->added;
	out->changed = all->changed;
	out->was = all->was;
	out->deleted = all->deleted;
	/* Now out's; the directories' facts stay for record_dirs. */
	memset(&all->added, 0, sizeof all->added);
	memset(&all->changed, 0, sizeof all->changed);
	memset(&all->was, 0, sizeof all->was);
	memset(&all->deleted, 0, sizeof all->deleted);
	/* The tree's id and counts describe it as written, before the
	 * differences: the files that matched, and those changed or gone. */
	for (size_t i = 0; i < out->was.len; i++)
		out->bytes += out->was.items[i].size;
	for (size_t i = 0; i < out->deleted.len; i++)
		out->bytes += out->deleted.items[i].size;
	out->files += out->was.len + out->deleted.len;
	if (out->files == m.count) {
		mlx_statcache_bin_to_hex(m.id, out->id);
		rc = 1;
		if (out->added.len + out->changed.len + out->deleted.len == 0) {
			/* True now, and at the token asked before the first stat
			 * (the records' rewrite keeps it). */
			if (watched)
				mlx_watch_token_put(m.path, &m.fid, wl.answer.token);
			record_dirs(trees, prefix, &m, &top_found, &pl);
		}
	} else {
		mlx_statcache_changes_free(out);
	}
out:
	for (size_t i = 0; i < pl.n; i++) {
		found_free(&pl.subs[i].found);
		free(pl.subs[i].path);
	}
	found_free(&top_found);
	free(pl.subs);
	if (dfd >= 0)
		close(dfd);
	if (watched)
		mlx_watch_answer_free(&wl.answer);
	mlx_statcache_tree_unmap(&m);
	return rc;
}
