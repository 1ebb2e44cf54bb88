/* workspace_present.c — whether every object of a tracked directory's
 * locked manifest is in the store, without a lookup per object where the
 * store has not changed.
 *
 * When all objects of a manifest were found, the status of each shard
 * directory of objects/ (inode, mtime, ctime) is recorded beside the stat
 * cache, in .mlx/state.db-shards/<SHA-256 of the directory's path>, with
 * the manifest's id and the time the shards were read. An object removed
 * from a shard (gc, fsck's quarantine, a manual rm) or put into it changes
 * the shard's mtime and ctime, so the objects of the manifest in a shard
 * whose status is still the recorded one are still there; only those in
 * the other shards are looked up. As git's racy index, a shard whose
 * mtime or ctime was not older than the reading by more than
 * MLX_STATCACHE_RACY_NS (two seconds where the file system keeps whole
 * seconds) is not trusted: a change in the same timestamp tick would
 * leave its status as recorded.
 *
 * The record is written after the objects it vouches for are committed
 * (mlx_workspace_commit), never before: a batch that fails leaves the old
 * record, for a manifest the lock still names or not at all. It is an
 * accelerator only: a missing, damaged (its own checksum), other-version
 * or other-manifest record means every object is looked up.
 *
 * Format (version 1, 8,336 bytes): "mlxshrd1", the manifest's id (64 hex
 * digits), the time the shards were read (ns, 8 bytes little-endian), 256
 * shards of dev, ino, mtime_ns and ctime_ns (8 bytes each, little-endian;
 * ino 0: not vouched for), then the SHA-256 (64 hex digits) of all that. */
#include "workspace.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "pool.h"
#include "statcache.h"
#include "workspace_internal.h"

#define MAGIC "mlxshrd1"
#define MAGIC_LEN 8
#define ID_LEN (MLX_HASH_HEX_SIZE - 1)
#define SHARD_LEN 32
#define BODY_LEN (MAGIC_LEN + ID_LEN + 8 + MLX_STORE_SHARDS * SHARD_LEN)
#define RECORD_LEN (BODY_LEN + ID_LEN)

struct mlx_present {
	struct mlx_present *next;
	char rel_id[MLX_HASH_HEX_SIZE]; /* the record's file name */
	char id[MLX_HASH_HEX_SIZE];     /* the manifest vouched for */
	int64_t read_ns;                /* when the shards were read */
	int verify;                     /* look up after the commit (see present_write) */
	struct mlx_store_shard shards[MLX_STORE_SHARDS];
};

static unsigned char *put64(unsigned char *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		*p++ = (unsigned char)(v >> (8 * i));
	return p;
}

static uint64_t get64(const unsigned char *p)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* root/.mlx/state.db-shards into dir (PATH_MAX bytes). */
static void records_dir(const struct mlx_workspace *ws, char *dir)
{
	if (snprintf(dir, PATH_MAX, "%s/.mlx/state.db-shards", mlx_workspace_root(ws)) >= PATH_MAX)
		dir[0] = '\0';
}

/* Reads the record named rel_id into *rec; 1 if it is whole, of this
 * version and vouches for manifest id, else 0. */
static int record_read(const struct mlx_workspace *ws, const char *rel_id, const char *id,
                       struct mlx_present *rec)
{
	char dir[PATH_MAX], path[PATH_MAX + MLX_HASH_HEX_SIZE + 1];
	records_dir(ws, dir);
	if (!dir[0] || snprintf(path, sizeof path, "%s/%s", dir, rel_id) >= (int)sizeof path)
		return 0;
	unsigned char buf[RECORD_LEN + 1];
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return 0;
	size_t got = 0;
	for (;;) {
		ssize_t r = read(fd, buf + got, sizeof buf - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		got += (size_t)r;
		if (got == sizeof buf)
			break;
	}
	close(fd);
	char sum[MLX_HASH_HEX_SIZE];
	if (got != RECORD_LEN || memcmp(buf, MAGIC, MAGIC_LEN) != 0 ||
	    mlx_hash_bytes(buf, BODY_LEN, sum, NULL) != MLX_OK || memcmp(sum, buf + BODY_LEN, ID_LEN) != 0 ||
	    memcmp(buf + MAGIC_LEN, id, ID_LEN) != 0)
		return 0;
	const unsigned char *p = buf + MAGIC_LEN + ID_LEN;
	rec->read_ns = (int64_t)get64(p);
	p += 8;
	for (int k = 0; k < MLX_STORE_SHARDS; k++, p += SHARD_LEN) {
		rec->shards[k].dev = get64(p);
		rec->shards[k].ino = get64(p + 8);
		rec->shards[k].mtime_ns = (int64_t)get64(p + 16);
		rec->shards[k].ctime_ns = (int64_t)get64(p + 24);
	}
	return 1;
}

/* Writes rec under its name, whole or not at all (a temp file renamed
 * over the old record). Failures are ignored: the record only spares
 * lookups. */
static void record_write(const struct mlx_workspace *ws, const struct mlx_present *rec)
{
	unsigned char buf[RECORD_LEN];
	memcpy(buf, MAGIC, MAGIC_LEN);
	memcpy(buf + MAGIC_LEN, rec->id, ID_LEN);
	unsigned char *p = put64(buf + MAGIC_LEN + ID_LEN, (uint64_t)rec->read_ns);
	for (int k = 0; k < MLX_STORE_SHARDS; k++) {
		p = put64(p, rec->shards[k].dev);
		p = put64(p, rec->shards[k].ino);
		p = put64(p, (uint64_t)rec->shards[k].mtime_ns);
		p = put64(p, (uint64_t)rec->shards[k].ctime_ns);
	}
	char sum[MLX_HASH_HEX_SIZE];
	if (mlx_hash_bytes(buf, BODY_LEN, sum, NULL) != MLX_OK)
		return;
	memcpy(buf + BODY_LEN, sum, ID_LEN);
	char dir[PATH_MAX], path[PATH_MAX + MLX_HASH_HEX_SIZE + 1], tmp[PATH_MAX + 2 * MLX_HASH_HEX_SIZE];
	records_dir(ws, dir);
	if (!dir[0] || snprintf(path, sizeof path, "%s/%s", dir, rec->rel_id) >= (int)sizeof path ||
	    snprintf(tmp, sizeof tmp, "%s/.%s.tmp-XXXXXX", dir, rec->rel_id) >= (int)sizeof tmp)
		return;
	if (mkdir(dir, 0755) != 0 && errno != EEXIST)
		return;
	int fd = mkstemp(tmp);
	if (fd < 0)
		return;
	int ok = fchmod(fd, 0644) == 0; /* as the trees beside it, not mkstemp's 0600 */
	for (size_t done = 0; ok && done < sizeof buf;) {
		ssize_t w = write(fd, buf + done, sizeof buf - done);
		if (w < 0 && errno == EINTR)
			continue;
		ok = w > 0;
		if (ok)
			done += (size_t)w;
	}
	if (close(fd) != 0)
		ok = 0;
	if (!ok || rename(tmp, path) != 0)
		unlink(tmp);
}

static int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The shard of the id at line, or -1 if it does not start with two hex
 * digits (it is looked up, and found missing). */
static int shard_index(const char *line)
{
	int hi = hex_value(line[0]), lo = hex_value(line[1]);
	return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

static int same_shard(const struct mlx_store_shard *a, const struct mlx_store_shard *b)
{
	return a->ino != 0 && a->ino == b->ino && a->dev == b->dev && a->mtime_ns == b->mtime_ns &&
	       a->ctime_ns == b->ctime_ns;
}

/* 1 if shard sh, read at read_ns, may have changed since without its
 * status showing it: changed itself within the timestamp tick before the
 * reading. A tick is under MLX_STATCACHE_RACY_NS on Linux's local file
 * systems; times in whole seconds mean a file system that keeps no more
 * (FAT, some network file systems), where two seconds are taken. */
static int racy(const struct mlx_store_shard *sh, int64_t read_ns)
{
	int64_t tick = sh->mtime_ns % 1000000000 == 0 && sh->ctime_ns % 1000000000 == 0
	                   ? 2000000000
	                   : MLX_STATCACHE_RACY_NS;
	return sh->mtime_ns >= read_ns - tick || sh->ctime_ns >= read_ns - tick;
}

/* The ids looked up in parts, a part per item of a pool: each lookup waits
 * on a stat of its own, and the CPUs share them. */
struct presence_job {
	struct mlx_store *store;
	const char **ids;
	unsigned char *present;
	size_t n, part;
};

static int look_up_part(void *vjob, size_t i, struct mlx_err *err)
{
	(void)err;
	struct presence_job *job = vjob;
	size_t from = i * job->part, to = from + job->part < job->n ? from + job->part : job->n;
	mlx_store_has_many(job->store, job->ids + from, to - from, job->present + from);
	return MLX_OK;
}

/* The shards now, read after the clock, for the record named rel_id, and
 * which of them rec (NULL: the record on disk, if it is for manifest
 * locked; locked NULL: none) vouches for as holding every object of
 * manifest locked that they should. NULL if there is no memory. */
static struct mlx_present *shards_now(struct mlx_workspace *ws, const char *rel_id, const char *locked,
                                      const struct mlx_present *rec, unsigned char trusted[MLX_STORE_SHARDS])
{
	memset(trusted, 0, MLX_STORE_SHARDS);
	struct mlx_present *now = calloc(1, sizeof *now), *read = NULL;
	if (!now)
		return NULL;
	memcpy(now->rel_id, rel_id, sizeof now->rel_id);
	/* The clock before the shards: a change after it leaves a later
	 * mtime, unless the shard changed within the racy margin before. */
	now->read_ns = now_ns();
	mlx_store_shard_stats(mlx_workspace_store(ws), now->shards);
	if (!rec && locked && (read = malloc(sizeof *read)) && record_read(ws, rel_id, locked, read))
		rec = read;
	for (int k = 0; rec && k < MLX_STORE_SHARDS; k++)
		trusted[k] =
		    same_shard(&now->shards[k], &rec->shards[k]) && !racy(&rec->shards[k], rec->read_ns);
	free(read);
	return now;
}

/* The name of rel's record into rel_id; 0 if it cannot be had. */
static int record_name(const char *rel, char rel_id[MLX_HASH_HEX_SIZE])
{
	return mlx_hash_bytes(rel, strlen(rel), rel_id, NULL) == MLX_OK;
}

struct mlx_present *mlx_workspace_present_carry(struct mlx_workspace *ws, const char *rel, const char *locked)
{
	unsigned char trusted[MLX_STORE_SHARDS];
	char rel_id[MLX_HASH_HEX_SIZE];
	struct mlx_present *now =
	    record_name(rel, rel_id) ? shards_now(ws, rel_id, locked, NULL, trusted) : NULL;
	int any = 0;
	for (int k = 0; now && k < MLX_STORE_SHARDS; k++) {
		if (!trusted[k])
			now->shards[k] = (struct mlx_store_shard){0};
		any |= trusted[k];
	}
	if (!any) {
		free(now);
		return NULL;
	}
	return now;
}

struct mlx_present *mlx_workspace_present_start(struct mlx_workspace *ws, const char *rel)
{
	unsigned char trusted[MLX_STORE_SHARDS];
	char rel_id[MLX_HASH_HEX_SIZE];
	struct mlx_present *now =
	    record_name(rel, rel_id) ? shards_now(ws, rel_id, NULL, NULL, trusted) : NULL;
	if (now)
		now->verify = 1;
	return now;
}

/* mlx_workspace_objects_present for the record named rel_id, trusting
 * rec (NULL: the record on disk). */
static int objects_present(struct mlx_workspace *ws, const char *rel_id, const char *locked, char *text,
                           size_t len, const struct mlx_present *rec, struct mlx_present **out)
{
	*out = NULL;
	struct mlx_store *store = mlx_workspace_store(ws);
	unsigned char trusted[MLX_STORE_SHARDS];
	struct mlx_present *now = shards_now(ws, rel_id, locked, rec, trusted);
	if (!now)
		return 0;
	/* The ids of the lines in shards not vouched for, cut in place at the
	 * space after them (put back below) and looked up, one open per
	 * shard and part. */
	size_t lines = 0;
	for (const char *at = text, *end = text + len; at < end; lines++) {
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		if (!nl)
			break;
		at = nl + 1;
	}
	const char **ids = malloc((lines ? lines : 1) * sizeof *ids);
	unsigned char *present = malloc(lines ? lines : 1);
	int all = ids && present;
	size_t n = 0;
	for (char *at = text, *end = text + len; all && at < end;) {
		char *nl = memchr(at, '\n', (size_t)(end - at));
		if (!nl || nl - at <= ID_LEN || at[ID_LEN] != ' ') {
			all = 0;
			break;
		}
		int k = shard_index(at);
		if (k < 0 || !trusted[k]) {
			at[ID_LEN] = '\0';
			ids[n++] = at;
		}
		at = nl + 1;
	}
	if (all && n > 0) {
		/* Parts of 16,384: a part opens each shard once. */
		struct presence_job job = {
		    .store = store, .ids = ids, .present = present, .n = n, .part = 16384};
		struct mlx_err err;
		if (mlx_pool_run((n + job.part - 1) / job.part, mlx_workspace_jobs(ws), look_up_part, &job,
		                 &err) != MLX_OK)
			all = 0;
		for (size_t i = 0; all && i < n; i++)
			all = present[i];
	}
	for (size_t i = 0; ids && i < n; i++)
		((char *)ids[i])[ID_LEN] = ' ';
	free(present);
	free(ids);
	if (!all) {
		free(now);
		return 0;
	}
	*out = now;
	return 1;
}

int mlx_workspace_objects_present(struct mlx_workspace *ws, const char *rel, const char *locked, char *text,
                                  size_t len, struct mlx_present **out)
{
	char rel_id[MLX_HASH_HEX_SIZE];
	*out = NULL;
	return record_name(rel, rel_id) && objects_present(ws, rel_id, locked, text, len, NULL, out);
}

void mlx_workspace_present_keep(struct mlx_workspace *ws, struct mlx_present *p, const char *id)
{
	if (!p)
		return;
	memcpy(p->id, id, sizeof p->id);
	struct mlx_present **list = mlx_workspace_pending_present(ws);
	p->next = *list;
	*list = p;
}

void mlx_workspace_present_free(struct mlx_present *p)
{
	while (p) {
		struct mlx_present *next = p->next;
		free(p);
		p = next;
	}
}

/* A directory of this many files or more waits out the racy margin of
 * the shards its whole put wrote into before they are read for its
 * record: at most MLX_STATCACHE_RACY_NS, against lookups of thousands of
 * objects at its next add. */
#define WAIT_MIN_FILES 4096

/* Sleeps until every shard's mtime and ctime are older than the racy
 * margin, so that a record made next trusts them. */
static void wait_out_racy(struct mlx_workspace *ws)
{
	struct mlx_store_shard shards[MLX_STORE_SHARDS];
	mlx_store_shard_stats(mlx_workspace_store(ws), shards);
	int64_t newest = 0;
	for (int k = 0; k < MLX_STORE_SHARDS; k++) {
		newest = shards[k].mtime_ns > newest ? shards[k].mtime_ns : newest;
		newest = shards[k].ctime_ns > newest ? shards[k].ctime_ns : newest;
	}
	int64_t wait = newest + MLX_STATCACHE_RACY_NS + 1000000 - now_ns();
	if (wait > 0 && wait <= MLX_STATCACHE_RACY_NS + 1000000) {
		struct timespec ts = {.tv_sec = 0, .tv_nsec = (long)wait};
		while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
			;
	}
}

/* Writes the record p, now that what it vouches for is committed. A
 * record of a whole put (verify) vouches only for the shards its commit
 * did not write into: every shard, for a directory's first add. Its
 * objects in the others are looked up now, and the record then vouches
 * for every shard: the lookups are paid by the add that stored a whole
 * directory, not by the add of one changed file after it. */
static void present_write(struct mlx_workspace *ws, const struct mlx_present *p)
{
	char *text = NULL;
	size_t len = 0, lines = 0;
	struct mlx_present *all = NULL;
	int read = p->verify && mlx_store_read(mlx_workspace_store(ws), p->id, &text, &len, NULL) == MLX_OK;
	for (const char *at = text, *end = text + len; read && at < end && lines < WAIT_MIN_FILES; lines++) {
		const char *nl = memchr(at, '\n', (size_t)(end - at));
		at = nl ? nl + 1 : end;
	}
	if (lines >= WAIT_MIN_FILES)
		wait_out_racy(ws);
	if (read && objects_present(ws, p->rel_id, p->id, text, len, p, &all)) {
		memcpy(all->id, p->id, sizeof all->id);
		record_write(ws, all);
	} else {
		record_write(ws, p);
	}
	free(all);
	free(text);
}

void mlx_workspace_present_write(struct mlx_workspace *ws)
{
	struct mlx_present **list = mlx_workspace_pending_present(ws);
	for (struct mlx_present *p = *list; p; p = p->next)
		present_write(ws, p);
	mlx_workspace_present_free(*list);
	*list = NULL;
}
