/* statcache.c — the stat cache: rows keyed by path in SQLite, and the
 * trees of whole directories (statcache_tree.c). The database is opened on
 * first use: a re-check answered by a tree never opens it. */
#include "statcache.h"

#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "fs.h"
#include "statcache_tree.h"

#define SCHEMA_VERSION 1

struct mlx_statcache {
	sqlite3 *db;			/* NULL until first used */
	int db_failed;			/* opening it failed: do not retry */
	char *path;
	char *trees;			/* path-trees: the directory of trees */
	char *stale_prefix;		/* the prefix of the last whole fill */
	struct mlx_strlist stale;	/* keys found stale by it */
	struct mlx_tree_fill tree;	/* what its tree held */
	sqlite3_stmt *get_one;		/* the lookup of one path, prepared once: a
					 * pipeline checks thousands of single outs */
	struct row *rows;               /* rows of single files not yet written */
	size_t nrows, cap_rows;
};

/* A row waiting to be written (mlx_statcache_store of files that make no
 * tree): a pipeline stores its steps' outs one step at a time, and a
 * transaction each was a twentieth of mlx's own time in a run of 1,000
 * short steps. */
struct row {
	char *key; /* owned */
	uint64_t ino, size;
	int64_t mtime_ns, ctime_ns, hashed_ns;
	unsigned char hash[32];
};

/* Rows kept waiting at most; they are written before a long lookup and
 * when the cache is closed. A process killed before loses them: those
 * files are hashed again, which is all a lost row costs. */
#define ROWS_WAITING_MAX 256

static int db_fail(struct mlx_statcache *sc, sqlite3 *db, const char *what, struct mlx_err *err)
{
	int code = db ? sqlite3_errcode(db) : SQLITE_ERROR;
	int status = (code == SQLITE_BUSY || code == SQLITE_LOCKED) ? MLX_ERR_BUSY : MLX_ERR_IO;
	return mlx_err_set(err, status, 0, "stat cache %s: cannot %s: %s", sc->path, what,
			   db ? sqlite3_errmsg(db) : "out of memory");
}

static int setup(struct mlx_statcache *sc, struct mlx_err *err)
{
	sqlite3_busy_timeout(sc->db, 10000);
	/* The cache can always be rebuilt: a commit lost to a power cut only
	 * costs re-hashing, so NORMAL (no fsync per commit) is right here. */
	if (sqlite3_exec(sc->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(sc, sc->db, "open it", err);
	/* Keep the -wal and -shm files when closing (the WAL emptied: a
	 * journal_size_limit truncates it to nothing after the last
	 * checkpoint) instead of deleting them for the next command to make
	 * again: a new inode costs up to a millisecond on a busy ext4, twice
	 * per command that looks a file up. */
	int persist = 1;
	sqlite3_file_control(sc->db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
	if (sqlite3_exec(sc->db, "PRAGMA journal_size_limit = 67108864;", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(sc, sc->db, "open it", err);
	sqlite3_stmt *st;
	int version = -1;
	if (sqlite3_prepare_v2(sc->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
		return db_fail(sc, sc->db, "read it", err);
	if (sqlite3_step(st) == SQLITE_ROW)
		version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version == SCHEMA_VERSION)
		return MLX_OK;
	/* New, or written by another mlx version: a cache is simply rebuilt. */
	const char *schema = "BEGIN IMMEDIATE;"
			     "DROP TABLE IF EXISTS files;"
			     "CREATE TABLE files(path TEXT PRIMARY KEY, ino INTEGER NOT NULL,"
			     " size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, ctime_ns INTEGER NOT NULL,"
			     " hashed_ns INTEGER NOT NULL, hash BLOB NOT NULL) WITHOUT ROWID;"
			     "PRAGMA user_version=1;"
			     "COMMIT;";
	if (sqlite3_exec(sc->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		int rc = db_fail(sc, sc->db, "create its table", err);
		sqlite3_exec(sc->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	return MLX_OK;
}

static void set_aside(const char *path)
{
	char aside[PATH_MAX], side[PATH_MAX];
	snprintf(aside, sizeof aside, "%s.broken", path);
	rename(path, aside);
	snprintf(side, sizeof side, "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof side, "%s-shm", path);
	unlink(side);
}

/* Opens the database, setting a broken one aside. */
static int db_open(struct mlx_statcache *sc, struct mlx_err *err)
{
	if (sc->db)
		return MLX_OK;
	if (sc->db_failed)
		return mlx_err_set(err, MLX_ERR_IO, 0, "stat cache %s: cannot open it", sc->path);
	int rc = MLX_ERR_IO;
	for (int attempt = 0; attempt < 2; attempt++) {
		int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
		if (sqlite3_open_v2(sc->path, &sc->db, flags, NULL) != SQLITE_OK)
			rc = db_fail(sc, sc->db, "open it", err);
		else if ((rc = setup(sc, err)) == MLX_OK)
			return MLX_OK;
		int code = sc->db ? sqlite3_errcode(sc->db) : SQLITE_ERROR;
		sqlite3_close(sc->db);
		sc->db = NULL;
		if (code != SQLITE_NOTADB && code != SQLITE_CORRUPT)
			break;
		set_aside(sc->path);
	}
	sc->db_failed = 1;
	return rc;
}

int mlx_statcache_open(const char *path, struct mlx_statcache **out, struct mlx_err *err)
{
	struct mlx_statcache *sc = calloc(1, sizeof *sc);
	size_t n = strlen(path) + sizeof "-trees";
	if (!sc || !(sc->path = strdup(path)) || !(sc->trees = malloc(n))) {
		if (sc)
			free(sc->path);
		free(sc);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	snprintf(sc->trees, n, "%s-trees", path);
	*out = sc;
	return MLX_OK;
}

static int write_rows(struct mlx_statcache *sc, const char *prefix, int forget,
                      const struct mlx_filelist *list, struct mlx_err *err);

static void free_rows(struct mlx_statcache *sc)
{
	for (size_t i = 0; i < sc->nrows; i++)
		free(sc->rows[i].key);
	sc->nrows = 0;
}

/* Writes the rows waiting, if any (before a read, and at close). */
static int write_waiting(struct mlx_statcache *sc, struct mlx_err *err)
{
	return sc->nrows ? write_rows(sc, "", 0, NULL, err) : MLX_OK;
}

void mlx_statcache_close(struct mlx_statcache *sc)
{
	if (!sc)
		return;
	/* Best effort: a row not written is a file hashed again. */
	write_waiting(sc, NULL);
	free_rows(sc);
	free(sc->rows);
	sqlite3_finalize(sc->get_one);
	sqlite3_close(sc->db);
	mlx_strlist_free(&sc->stale);
	free(sc->stale_prefix);
	free(sc->trees);
	free(sc->path);
	free(sc);
}

void mlx_statcache_bin_to_hex(const unsigned char bin[32], char hex[MLX_HASH_HEX_SIZE])
{
	/* This runs for every file of a re-check: 16 bytes at a time where
	 * SSE2 is there (every x86-64), else two digits per byte from a table. */
#if defined(__SSE2__)
	const __m128i low = _mm_set1_epi8(0x0f), nine = _mm_set1_epi8(9);
	const __m128i zero = _mm_set1_epi8('0'), letters = _mm_set1_epi8('a' - '0' - 10);
	for (int i = 0; i < 2; i++) {
		__m128i in = _mm_loadu_si128((const __m128i *)(bin + 16 * i));
		__m128i hi = _mm_and_si128(_mm_srli_epi16(in, 4), low), lo = _mm_and_si128(in, low);
		__m128i a = _mm_unpacklo_epi8(hi, lo), b = _mm_unpackhi_epi8(hi, lo);
		a = _mm_add_epi8(_mm_add_epi8(a, zero), _mm_and_si128(_mm_cmpgt_epi8(a, nine), letters));
		b = _mm_add_epi8(_mm_add_epi8(b, zero), _mm_and_si128(_mm_cmpgt_epi8(b, nine), letters));
		_mm_storeu_si128((__m128i *)(hex + 32 * i), a);
		_mm_storeu_si128((__m128i *)(hex + 32 * i + 16), b);
	}
#else
	static const char pairs[] =
		"000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f"
		"202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
		"404142434445464748494a4b4c4d4e4f505152535455565758595a5b5c5d5e5f"
		"606162636465666768696a6b6c6d6e6f707172737475767778797a7b7c7d7e7f"
		"808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"
		"a0a1a2a3a4a5a6a7a8a9aaabacadaeafb0b1b2b3b4b5b6b7b8b9babbbcbdbebf"
		"c0c1c2c3c4c5c6c7c8c9cacbcccdcecfd0d1d2d3d4d5d6d7d8d9dadbdcdddedf"
		"e0e1e2e3e4e5e6e7e8e9eaebecedeeeff0f1f2f3f4f5f6f7f8f9fafbfcfdfeff";
	for (int i = 0; i < 32; i++)
		memcpy(hex + 2 * i, pairs + 2 * bin[i], 2);
#endif
	hex[64] = '\0';
}

void mlx_statcache_hex_to_bin(const char *hex, unsigned char bin[32])
{
	for (int i = 0; i < 32; i++) {
		int hi = hex[2 * i] <= '9' ? hex[2 * i] - '0' : hex[2 * i] - 'a' + 10;
		int lo = hex[2 * i + 1] <= '9' ? hex[2 * i + 1] - '0' : hex[2 * i + 1] - 'a' + 10;
		bin[i] = (unsigned char)(hi << 4 | lo);
	}
}

int mlx_statcache_match(struct mlx_file *f, uint64_t ino, uint64_t size, int64_t mtime_ns, int64_t ctime_ns,
			int64_t hashed_ns, uint32_t mode, const unsigned char hash[32])
{
	if (f->hex[0] || f->mtime_ns == 0 || (mode && mode != f->mode))
		return 0;
	if (ino != f->ino || size != f->size || mtime_ns != f->mtime_ns || ctime_ns != f->ctime_ns ||
	    f->mtime_ns > hashed_ns - MLX_STATCACHE_RACY_NS || f->ctime_ns > hashed_ns - MLX_STATCACHE_RACY_NS)
		return 0;
	mlx_statcache_bin_to_hex(hash, f->hex);
	f->cached_ns = hashed_ns;
	return 1;
}

/* Copies the row's hash into f if the row describes f as it is now. */
static int row_matches(sqlite3_stmt *st, int col, struct mlx_file *f)
{
	if (sqlite3_column_bytes(st, col + 5) != 32)
		return 0;
	return mlx_statcache_match(f, (uint64_t)sqlite3_column_int64(st, col),
				   (uint64_t)sqlite3_column_int64(st, col + 1), sqlite3_column_int64(st, col + 2),
				   sqlite3_column_int64(st, col + 3), sqlite3_column_int64(st, col + 4), 0,
				   sqlite3_column_blob(st, col + 5));
}

static int key_of(const char *prefix, const char *path, char *key, size_t size)
{
	return snprintf(key, size, "%s%s%s", prefix, *prefix ? "/" : "", path) < (int)size;
}

/* Lists up to this long look among the waiting rows (fill_each). */
#define WAITING_LOOKUP_MAX 16

/* The newest waiting row of key, or NULL: it is newer than the database's. */
static const struct row *waiting_row(const struct mlx_statcache *sc, const char *key)
{
	for (size_t i = sc->nrows; i-- > 0;)
		if (strcmp(sc->rows[i].key, key) == 0)
			return &sc->rows[i];
	return NULL;
}

/* Lists at least this long are read by one ordered scan (fill_ordered). */
#define ORDERED_FILL_MIN 64
/* Rows the scan steps over without a match before it seeks instead: a
 * step costs about a tenth of a seek, and rows of other files (a tracked
 * directory's, say) are skipped in bulk. */
#define ORDERED_SKIP_MAX 8

/* A file to sort, with the first 8 bytes of its path as a number that
 * orders as they do: most comparisons then read no string. */
struct sort_file {
	uint64_t head;
	struct mlx_file *file;
};

static int compare_sort_files(const void *va, const void *vb)
{
	const struct sort_file *a = va, *b = vb;
	if (a->head != b->head)
		return a->head < b->head ? -1 : 1;
	return strcmp(a->file->path, b->file->path);
}

static uint64_t path_head(const char *path)
{
	uint64_t head = 0;
	for (int k = 0; k < 8 && path[k]; k++)
		head |= (uint64_t)(unsigned char)path[k] << (56 - 8 * k);
	return head;
}

/* The files of list with a key, in key order (the paths share prefix, so
 * their order is the keys' order), in a new array of *n that the caller
 * frees; NULL when out of memory. */
static struct sort_file *sorted_files(const char *prefix, struct mlx_filelist *list, size_t *n)
{
	struct sort_file *files = malloc((list->len ? list->len : 1) * sizeof *files);
	if (!files)
		return NULL;
	size_t plen = strlen(prefix), kept = 0;
	int sorted = 1;
	for (size_t i = 0; i < list->len; i++) {
		const char *path = list->items[i].path;
		/* What key_of would refuse is left out, as fill_each skips it. */
		if (plen + (plen > 0) + strlen(path) >= PATH_MAX * 2)
			continue;
		files[kept] = (struct sort_file){path_head(path), &list->items[i]};
		sorted = sorted && (kept == 0 || compare_sort_files(&files[kept - 1], &files[kept]) <= 0);
		kept++;
	}
	if (!sorted)
		qsort(files, kept, sizeof *files, compare_sort_files);
	*n = kept;
	return files;
}

/* fill_each for a long list: one statement stepping through the rows in
 * key order, merged with the sorted keys of the list, and seeking again
 * only past a run of rows the list does not name. A pipeline's prefetch of
 * 100,000 paths cost a query each (about 7,000 instructions), most of it
 * the seek that the next row of a scan does not need. */
static int fill_ordered(struct mlx_statcache *sc, const char *prefix, struct mlx_filelist *list, size_t *hits,
			struct mlx_err *err)
{
	size_t n;
	struct sort_file *files = sorted_files(prefix, list, &n);
	if (!files)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	sqlite3_stmt *st;
	if (sqlite3_prepare_v2(sc->db,
			       "SELECT path, ino, size, mtime_ns, ctime_ns, hashed_ns, hash FROM files"
			       " WHERE path >= ?1 ORDER BY path",
			       -1, &st, NULL) != SQLITE_OK) {
		free(files);
		return db_fail(sc, sc->db, "read it", err);
	}
	/* One read transaction, as fill_each: each seek resets the statement. */
	int batch = sqlite3_get_autocommit(sc->db) && sqlite3_exec(sc->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	int rc = MLX_OK, s = SQLITE_DONE;
	char want[PATH_MAX * 2], seek[PATH_MAX * 2];
	const char *row = NULL; /* the current row's key, or NULL: seek */
	size_t i = 0, skipped = 0;
	/* want is the key of files[i]: prefix, '/' and its path (which fits,
	 * as sorted_files checked), written without a format per file. */
	size_t plen = strlen(prefix), at = plen + (plen > 0);
	memcpy(want, prefix, plen);
	want[plen] = '/';
	if (n > 0)
		strcpy(want + at, files[0].file->path);
	while (i < n) {
		if (!row) {
			/* The bound key must stay as it is until the next reset. */
			memcpy(seek, want, strlen(want) + 1);
			sqlite3_reset(st);
			sqlite3_bind_text(st, 1, seek, -1, SQLITE_STATIC);
			skipped = 0;
			if ((s = sqlite3_step(st)) != SQLITE_ROW)
				break;
			row = (const char *)sqlite3_column_text(st, 0);
		}
		int c = strcmp(want, row);
		if (c <= 0) {
			/* The row is this file's, or this file has none; the
			 * row stays for the next file, which may repeat it. */
			if (c == 0)
				*hits += (size_t)row_matches(st, 1, files[i].file);
			if (++i < n)
				strcpy(want + at, files[i].file->path);
			continue;
		}
		if (++skipped > ORDERED_SKIP_MAX) {
			row = NULL;
			continue;
		}
		if ((s = sqlite3_step(st)) != SQLITE_ROW)
			break;
		row = (const char *)sqlite3_column_text(st, 0);
	}
	if (s != SQLITE_ROW && s != SQLITE_DONE)
		rc = db_fail(sc, sc->db, "read it", err);
	sqlite3_finalize(st);
	if (batch)
		sqlite3_exec(sc->db, "COMMIT", NULL, NULL, NULL);
	free(files);
	return rc;
}

static int fill_each(struct mlx_statcache *sc, const char *prefix, struct mlx_filelist *list, size_t *hits,
		     struct mlx_err *err)
{
	int rc = db_open(sc, err);
	if (rc != MLX_OK)
		return rc;
	if (list->len >= ORDERED_FILL_MIN) {
		if ((rc = write_waiting(sc, err)) != MLX_OK)
			return rc;
		return fill_ordered(sc, prefix, list, hits, err);
	}
	/* A short list (a pipeline's dep or out, asked for one at a time)
	 * looks among the waiting rows too, or each lookup would write them;
	 * a long one is looked up after they are written. */
	int look_waiting = sc->nrows > 0 && list->len <= WAITING_LOOKUP_MAX;
	if (sc->nrows > 0 && !look_waiting && (rc = write_waiting(sc, err)) != MLX_OK)
		return rc;
	if (!sc->get_one &&
	    sqlite3_prepare_v2(sc->db,
			       "SELECT ino, size, mtime_ns, ctime_ns, hashed_ns, hash FROM files WHERE path = ?1",
			       -1, &sc->get_one, NULL) != SQLITE_OK)
		return db_fail(sc, sc->db, "read it", err);
	sqlite3_stmt *st = sc->get_one;
	/* One read transaction for a batch: without it SQLite takes and drops
	 * its WAL read lock around every lookup. */
	int batch = list->len > 1 && sqlite3_get_autocommit(sc->db) &&
		    sqlite3_exec(sc->db, "BEGIN", NULL, NULL, NULL) == SQLITE_OK;
	char key[PATH_MAX * 2];
	for (size_t i = 0; i < list->len; i++) {
		if (!key_of(prefix, list->items[i].path, key, sizeof key))
			continue;
		const struct row *r = look_waiting ? waiting_row(sc, key) : NULL;
		if (r) {
			*hits += (size_t)mlx_statcache_match(&list->items[i], r->ino, r->size, r->mtime_ns,
			                                     r->ctime_ns, r->hashed_ns, 0, r->hash);
			continue;
		}
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		int s = sqlite3_step(st);
		if (s == SQLITE_ROW)
			*hits += (size_t)row_matches(st, 0, &list->items[i]);
		else if (s != SQLITE_DONE) {
			rc = db_fail(sc, sc->db, "read it", err);
			break;
		}
		sqlite3_reset(st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (batch)
		sqlite3_exec(sc->db, "COMMIT", NULL, NULL, NULL);
	return rc;
}

int mlx_statcache_fill(struct mlx_statcache *sc, const char *prefix, int whole, struct mlx_filelist *list,
		       size_t *hits, struct mlx_err *err)
{
	size_t count = 0;
	if (!hits)
		hits = &count;
	*hits = 0;
	if (!whole)
		return fill_each(sc, prefix, list, hits, err);

	mlx_strlist_free(&sc->stale);
	free(sc->stale_prefix);
	memset(&sc->tree, 0, sizeof sc->tree);
	if (!(sc->stale_prefix = strdup(prefix)))
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	int rc = mlx_statcache_tree_fill(sc->trees, prefix, list, hits, &sc->stale, &sc->tree, err);
	if (rc != MLX_OK || sc->tree.found)
		return rc;
	/* No tree yet: the rows below prefix, in one ordered query. */
	if ((rc = db_open(sc, err)) != MLX_OK || (rc = write_waiting(sc, err)) != MLX_OK)
		return rc;
	/* Keys below "prefix/" sort between "prefix/" and "prefix0" ('/' + 1). */
	size_t plen = strlen(prefix);
	char lo[PATH_MAX], hi[PATH_MAX];
	snprintf(lo, sizeof lo, "%s/", prefix);
	snprintf(hi, sizeof hi, "%s0", prefix);
	sqlite3_stmt *st;
	const char *sql = plen ? "SELECT path, ino, size, mtime_ns, ctime_ns, hashed_ns, hash FROM files"
				 " WHERE path >= ?1 AND path < ?2 ORDER BY path"
			       : "SELECT path, ino, size, mtime_ns, ctime_ns, hashed_ns, hash FROM files ORDER BY path";
	if (sqlite3_prepare_v2(sc->db, sql, -1, &st, NULL) != SQLITE_OK)
		return db_fail(sc, sc->db, "read it", err);
	if (plen) {
		sqlite3_bind_text(st, 1, lo, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, hi, -1, SQLITE_STATIC);
	}
	size_t skip = plen ? plen + 1 : 0;
	size_t i = 0;
	int s;
	while ((s = sqlite3_step(st)) == SQLITE_ROW) {
		const char *key = (const char *)sqlite3_column_text(st, 0);
		const char *rel = key + skip;
		int c = 1;
		while (i < list->len && (c = strcmp(list->items[i].path, rel)) < 0)
			i++;
		if (i < list->len && c == 0) {
			*hits += (size_t)row_matches(st, 1, &list->items[i]);
			i++;
		} else if ((rc = mlx_strlist_push(&sc->stale, key, err)) != MLX_OK) {
			break;
		}
	}
	if (rc == MLX_OK && s != SQLITE_DONE)
		rc = db_fail(sc, sc->db, "read it", err);
	sqlite3_finalize(st);
	return rc;
}

/* Binds and steps put, the INSERT of one row. */
static int put_row(sqlite3_stmt *put, const char *key, const struct row *r)
{
	sqlite3_bind_text(put, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(put, 2, (sqlite3_int64)r->ino);
	sqlite3_bind_int64(put, 3, (sqlite3_int64)r->size);
	sqlite3_bind_int64(put, 4, r->mtime_ns);
	sqlite3_bind_int64(put, 5, r->ctime_ns);
	sqlite3_bind_int64(put, 6, r->hashed_ns);
	sqlite3_bind_blob(put, 7, r->hash, sizeof r->hash, SQLITE_TRANSIENT);
	int ok = sqlite3_step(put) == SQLITE_DONE;
	sqlite3_reset(put);
	return ok;
}

/* Fills r (but its key) from f; 0 if f was not hashed here. */
static int row_of(const struct mlx_file *f, struct row *r)
{
	if (f->hashed_ns == 0 || f->mtime_ns == 0 || !f->hex[0])
		return 0;
	*r = (struct row){NULL, f->ino, f->size, f->mtime_ns, f->ctime_ns, f->hashed_ns, {0}};
	mlx_statcache_hex_to_bin(f->hex, r->hash);
	return 1;
}

/* Keeps the rows of list's hashed files waiting; writes them all once
 * ROWS_WAITING_MAX wait. */
static int keep_rows(struct mlx_statcache *sc, const char *prefix, const struct mlx_filelist *list,
                     struct mlx_err *err)
{
	char key[PATH_MAX * 2];
	for (size_t i = 0; i < list->len; i++) {
		struct row r;
		if (!row_of(&list->items[i], &r) || !key_of(prefix, list->items[i].path, key, sizeof key))
			continue;
		if (sc->nrows == sc->cap_rows) {
			size_t cap = sc->cap_rows ? sc->cap_rows * 2 : 64;
			struct row *rows = realloc(sc->rows, cap * sizeof *rows);
			if (!rows)
				return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
			sc->rows = rows;
			sc->cap_rows = cap;
		}
		if (!(r.key = strdup(key)))
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		sc->rows[sc->nrows++] = r;
	}
	return sc->nrows >= ROWS_WAITING_MAX ? write_waiting(sc, err) : MLX_OK;
}

/* Writes the rows waiting, deletes the stale rows (if forget) and writes
 * the rows of the files of list (if any) hashed here, in one transaction,
 * in that order: the order in which they were found. */
static int write_rows(struct mlx_statcache *sc, const char *prefix, int forget,
                      const struct mlx_filelist *list, struct mlx_err *err)
{
	int rc = db_open(sc, err);
	if (rc != MLX_OK)
		return rc;
	sqlite3_stmt *del = NULL, *put = NULL;
	if (sqlite3_exec(sc->db, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
		return db_fail(sc, sc->db, "write it", err);
	if (sqlite3_prepare_v2(sc->db, "DELETE FROM files WHERE path = ?1", -1, &del, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(sc->db,
			       "INSERT OR REPLACE INTO files(path, ino, size, mtime_ns, ctime_ns, hashed_ns, hash)"
			       " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
			       -1, &put, NULL) != SQLITE_OK) {
		rc = db_fail(sc, sc->db, "write it", err);
		goto out;
	}
	for (size_t i = 0; i < sc->nrows; i++)
		if (!put_row(put, sc->rows[i].key, &sc->rows[i])) {
			rc = db_fail(sc, sc->db, "write it", err);
			goto out;
		}
	for (size_t i = 0; forget && i < sc->stale.len; i++) {
		sqlite3_bind_text(del, 1, sc->stale.items[i], -1, SQLITE_STATIC);
		if (sqlite3_step(del) != SQLITE_DONE) {
			rc = db_fail(sc, sc->db, "write it", err);
			goto out;
		}
		sqlite3_reset(del);
	}
	char key[PATH_MAX * 2];
	for (size_t i = 0; list && i < list->len; i++) {
		struct row r;
		if (!row_of(&list->items[i], &r) || !key_of(prefix, list->items[i].path, key, sizeof key))
			continue;
		if (!put_row(put, key, &r)) {
			rc = db_fail(sc, sc->db, "write it", err);
			goto out;
		}
	}
	if (sqlite3_exec(sc->db, "COMMIT", NULL, NULL, NULL) != SQLITE_OK)
		rc = db_fail(sc, sc->db, "write it", err);
out:
	sqlite3_finalize(del);
	sqlite3_finalize(put);
	if (rc != MLX_OK) {
		sqlite3_exec(sc->db, "ROLLBACK", NULL, NULL, NULL);
	} else {
		free_rows(sc);
		if (forget)
			mlx_strlist_free(&sc->stale);
	}
	return rc;
}

int mlx_statcache_id(const struct mlx_statcache *sc, const char *prefix, char hex[MLX_HASH_HEX_SIZE])
{
	if (!sc->stale_prefix || strcmp(sc->stale_prefix, prefix) != 0 || !sc->tree.id[0])
		return 0;
	memcpy(hex, sc->tree.id, MLX_HASH_HEX_SIZE);
	return 1;
}

void mlx_statcache_changes_free(struct mlx_statcache_changes *c)
{
	mlx_filelist_free(&c->added);
	mlx_filelist_free(&c->changed);
	mlx_filelist_free(&c->was);
	mlx_filelist_free(&c->deleted);
}

int mlx_statcache_changes(struct mlx_statcache *sc, const char *prefix, const char *dir, size_t limit,
			  struct mlx_statcache_changes *out)
{
	return mlx_statcache_tree_changes(sc->trees, prefix, dir, limit, out);
}

int mlx_statcache_unchanged(struct mlx_statcache *sc, const char *prefix, const char *dir,
			    char hex[MLX_HASH_HEX_SIZE], uint64_t *files, uint64_t *bytes)
{
	struct mlx_statcache_changes c;
	int rc = mlx_statcache_tree_changes(sc->trees, prefix, dir, 0, &c);
	if (rc == 1) {
		memcpy(hex, c.id, MLX_HASH_HEX_SIZE);
		*files = c.files;
		*bytes = c.bytes;
		mlx_statcache_changes_free(&c);
	}
	return rc;
}

int mlx_statcache_store(struct mlx_statcache *sc, const char *prefix, int whole, const struct mlx_filelist *list,
			const char *id, struct mlx_err *err)
{
	whole = whole && sc->stale_prefix && strcmp(sc->stale_prefix, prefix) == 0;
	int forget = whole && sc->stale.len > 0;
	size_t todo = 0;
	for (size_t i = 0; i < list->len; i++)
		todo += list->items[i].hashed_ns != 0 && list->items[i].mtime_ns != 0;
	/* A tree that matched every file is written again only to record the
	 * manifest id it lacks. */
	int tree_current = sc->tree.fresh && (sc->tree.id[0] || !id || !sc->tree.whole);
	if (todo == 0 && !forget && (!whole || tree_current))
		return MLX_OK;
	int rc = MLX_OK;
	if (todo > 0 && !whole)
		rc = keep_rows(sc, prefix, list, err);
	else if (todo > 0 || forget)
		rc = write_rows(sc, prefix, forget, list, err);
	/* The tree after the rows: both only ever hold true entries, so a
	 * crash between them costs at most re-hashing. */
	if (rc == MLX_OK && whole && (rc = mlx_statcache_tree_write(sc->trees, prefix, list, id, err)) == MLX_OK) {
		sc->tree.fresh = 1;
		sc->tree.whole = 0;
		sc->tree.id[0] = '\0';
	}
	return rc;
}

int mlx_statcache_tree_start(struct mlx_statcache *sc, const char *prefix, struct mlx_tree_writer **out,
                             struct mlx_err *err)
{
	/* What a fill of prefix found out about its tree will not hold for
	 * the new one: a later whole store writes it again. */
	if (sc->stale_prefix && strcmp(sc->stale_prefix, prefix) == 0)
		memset(&sc->tree, 0, sizeof sc->tree);
	return mlx_statcache_tree_begin(sc->trees, prefix, out, err);
}

int mlx_statcache_refresh(struct mlx_statcache *sc, const char *prefix, const struct mlx_filelist *same,
                          struct mlx_err *err)
{
	if (sc->stale_prefix && strcmp(sc->stale_prefix, prefix) == 0)
		memset(&sc->tree, 0, sizeof sc->tree);
	return mlx_statcache_tree_refresh(sc->trees, prefix, same, err);
}

int mlx_statcache_patch(struct mlx_statcache *sc, const char *prefix, const char *was,
                        const struct mlx_filelist *now, const struct mlx_filelist *gone, const char *id,
                        uint64_t files, struct mlx_err *err)
{
	if (sc->stale_prefix && strcmp(sc->stale_prefix, prefix) == 0)
		memset(&sc->tree, 0, sizeof sc->tree);
	return mlx_statcache_tree_patch(sc->trees, prefix, was, now, gone, id, files, err);
}
