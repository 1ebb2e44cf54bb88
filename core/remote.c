/* remote.c — the transfer engine over any backend (remote.h): parallel
 * pushes and fetches between the local store and a remote, with retries,
 * verification and progress. Which objects to move, the index and the
 * run-cache are the policy of stdlib/mlx/remote.lua. */
#include "remote.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "idset.h"
#include "pool.h"
#include "store.h"

#define DEFAULT_JOBS 8
#define MAX_JOBS 64
/* Objects moved per window: a push or fetch holds this many in memory
 * whatever its size, and a fetch commits the store after each window, so
 * an interrupted fetch keeps what it completed, at the price of one sync
 * per window. */
#define DEFAULT_WINDOW 4096
/* Objects up to this size are fetched through memory (read_small), the
 * others through a file; each worker holds one buffer of it. */
#define SMALL_OBJECT (256u << 10)

struct mlx_remote {
	const struct mlx_remote_backend *be;
	struct mlx_remote_config config;
	struct mlx_strlist options;
	char *name, *url;
	struct mlx_remote_policy policy;
	/* Raised (by the pool, from any thread) when a push or fetch stops,
	 * so that transfers in flight stop too; config.cancel points here. */
	atomic_int cancel;
	/* Backend instances: [0] for calls from the caller's thread, [1..jobs]
	 * for the workers of push and fetch; opened on first use. */
	void *instances[MAX_JOBS + 1];
};

static void *instance(struct mlx_remote *r, int slot, struct mlx_err *err)
{
	if (!r->instances[slot] && r->be->open(&r->config, &r->instances[slot], err) != MLX_OK)
		return NULL;
	return r->instances[slot];
}

int mlx_remote_open(const struct mlx_remote_config *config, const struct mlx_remote_policy *policy,
                    struct mlx_remote **out, struct mlx_err *err)
{
	*out = NULL;
	const struct mlx_remote_backend *be =
	    config->backend ? config->backend : mlx_remote_backend_for(config->url);
	if (!be)
		return mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "remote %s: no backend serves '%s' (a directory path, file://, https:// or s3://)",
		    config->name ? config->name : "", config->url ? config->url : "");
	struct mlx_remote *r = calloc(1, sizeof *r);
	if (!r)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	r->be = be;
	r->name = strdup(config->name ? config->name : config->url);
	r->url = strdup(config->url);
	int rc = r->name && r->url ? MLX_OK : mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (size_t i = 0; rc == MLX_OK && config->options && i < config->options->len; i++)
		rc = mlx_strlist_push(&r->options, config->options->items[i], err);
	r->config.name = r->name;
	r->config.url = r->url;
	r->config.options = &r->options;
	atomic_init(&r->cancel, 0);
	r->config.cancel = &r->cancel;
	r->policy = policy ? *policy : (struct mlx_remote_policy){0};
	if (r->policy.jobs <= 0)
		r->policy.jobs = DEFAULT_JOBS;
	if (r->policy.jobs > MAX_JOBS)
		r->policy.jobs = MAX_JOBS;
	if (r->policy.retries < 0)
		r->policy.retries = 0;
	if (!(r->policy.backoff > 0))
		r->policy.backoff = 0.5;
	if (!(r->policy.backoff_max > 0))
		r->policy.backoff_max = 60;
	if (r->policy.window == 0)
		r->policy.window = DEFAULT_WINDOW;
	/* Open the first instance now: a bad option is a usage error at once. */
	if (rc == MLX_OK && !instance(r, 0, err))
		rc = err->status ? err->status : MLX_ERR_INVALID;
	if (rc != MLX_OK) {
		mlx_remote_close(r);
		return rc;
	}
	*out = r;
	return MLX_OK;
}

void mlx_remote_close(struct mlx_remote *r)
{
	if (!r)
		return;
	for (int i = 0; i <= MAX_JOBS; i++)
		if (r->instances[i])
			r->be->close(r->instances[i]);
	mlx_strlist_free(&r->options);
	free(r->name);
	free(r->url);
	free(r);
}

const char *mlx_remote_backend_name(const struct mlx_remote *r)
{
	return r->be->name;
}

/* Waits before retry number attempt (1-based), as mlx.http does. Returns
 * 0, or MLX_ERR_INTERRUPTED when a signal (caller's thread) or the pool's
 * stop (a worker) cut the wait short. */
static int backoff(const struct mlx_remote *r, int attempt, const struct mlx_pool *pool, unsigned *seed,
                   struct mlx_err *err)
{
	double delay = r->policy.backoff;
	for (int i = 1; i < attempt && delay < r->policy.backoff_max; i++)
		delay *= 2;
	if (delay > r->policy.backoff_max)
		delay = r->policy.backoff_max;
	delay *= 0.5 + 0.5 * ((double)rand_r(seed) / RAND_MAX);
	struct timespec until;
	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)delay;
	until.tv_nsec += (long)((delay - (double)(time_t)delay) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	for (;;) {
		if (pool && mlx_pool_stopping(pool))
			return mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "interrupted");
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec > until.tv_sec || (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec))
			return MLX_OK;
		/* Slices of 50 ms, so that a stopping pool is seen soon. */
		struct timespec slice = {0, 50 * 1000000L};
		if (!pool) {
			slice.tv_sec = until.tv_sec - now.tv_sec;
			slice.tv_nsec = until.tv_nsec - now.tv_nsec;
			if (slice.tv_nsec < 0) {
				slice.tv_sec--;
				slice.tv_nsec += 1000000000L;
			}
		}
		if (nanosleep(&slice, NULL) != 0 && errno == EINTR && !pool)
			return mlx_err_set(err, MLX_ERR_INTERRUPTED, EINTR, "interrupted");
	}
}

/* ---- single calls, from the caller's thread ---------------------------- */

int mlx_remote_stat(struct mlx_remote *r, const char *key, uint64_t *size, struct mlx_err *err)
{
	void *st = instance(r, 0, err);
	if (!st)
		return err->status;
	unsigned seed = (unsigned)getpid();
	for (int attempt = 0;; attempt++) {
		int rc = r->be->stat(st, key, size, err);
		if (rc != MLX_ERR_IO || attempt >= r->policy.retries)
			return rc;
		if ((rc = backoff(r, attempt + 1, NULL, &seed, err)) != MLX_OK)
			return rc;
	}
}

int mlx_remote_read(struct mlx_remote *r, const char *key, size_t max, char **data, size_t *len,
                    struct mlx_err *err)
{
	*data = NULL;
	*len = 0;
	void *st = instance(r, 0, err);
	if (!st)
		return err->status;
	unsigned seed = (unsigned)getpid();
	for (int attempt = 0;; attempt++) {
		int fd = memfd_create("mlx-remote", MFD_CLOEXEC);
		if (fd < 0)
			return mlx_err_sys(err, errno, "cannot create a memory file");
		int rc = r->be->get(st, key, fd, err);
		if (rc == MLX_OK && lseek(fd, 0, SEEK_SET) != 0)
			rc = mlx_err_sys(err, errno, "cannot read a memory file");
		if (rc == MLX_OK) {
			/* Messages name the key: the memory file is ours. */
			char what[PATH_MAX];
			snprintf(what, sizeof what, "remote %s: %s", r->name, key);
			rc = mlx_fs_read_fd(fd, what, max, data, len, err);
		}
		close(fd);
		if (rc != MLX_ERR_IO || attempt >= r->policy.retries)
			return rc;
		if ((rc = backoff(r, attempt + 1, NULL, &seed, err)) != MLX_OK)
			return rc;
	}
}

int mlx_remote_put_file(struct mlx_remote *r, const char *key, const char *path, struct mlx_err *err)
{
	void *st = instance(r, 0, err);
	if (!st)
		return err->status;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return mlx_err_sys(err, errno, "cannot stat %s", path);
	unsigned seed = (unsigned)getpid();
	for (int attempt = 0;; attempt++) {
		int rc = r->be->put(st, key, path, (uint64_t)sb.st_size, err);
		if (rc != MLX_ERR_IO || attempt >= r->policy.retries)
			return rc;
		if ((rc = backoff(r, attempt + 1, NULL, &seed, err)) != MLX_OK)
			return rc;
	}
}

int mlx_remote_write(struct mlx_remote *r, const char *key, const void *data, size_t len, const char *tmpdir,
                     struct mlx_err *err)
{
	char path[PATH_MAX];
	int n = snprintf(path, sizeof path, "%s/remote-XXXXXX", tmpdir);
	if (n < 0 || (size_t)n >= sizeof path)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "path too long: %s", tmpdir);
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0)
		return mlx_err_sys(err, errno, "cannot create a temp file in %s", tmpdir);
	int rc = MLX_OK;
	if (mlx_fs_write_all(fd, data, len) != 0)
		rc = mlx_err_sys(err, errno, "cannot write %s", path);
	if (close(fd) != 0 && rc == MLX_OK)
		rc = mlx_err_sys(err, errno, "cannot write %s", path);
	if (rc == MLX_OK)
		rc = mlx_remote_put_file(r, key, path, err);
	unlink(path);
	return rc;
}

int mlx_remote_list(struct mlx_remote *r, const char *prefix, mlx_remote_list_fn fn, void *ctx,
                    struct mlx_err *err)
{
	void *st = instance(r, 0, err);
	if (!st)
		return err->status;
	/* A listing is not retried: fn has seen part of it. */
	return r->be->list(st, prefix, fn, ctx, err);
}

int mlx_remote_remove(struct mlx_remote *r, const char *key, struct mlx_err *err)
{
	void *st = instance(r, 0, err);
	if (!st)
		return err->status;
	unsigned seed = (unsigned)getpid();
	for (int attempt = 0;; attempt++) {
		int rc = r->be->remove(st, key, err);
		if (rc != MLX_ERR_IO || attempt >= r->policy.retries)
			return rc;
		if ((rc = backoff(r, attempt + 1, NULL, &seed, err)) != MLX_OK)
			return rc;
	}
}

/* ---- parallel transfers ------------------------------------------------- */

/* One object of a window of a push or fetch. */
struct transfer_item {
	char hex[65];
	uint64_t size; /* in: expected (progress); out: bytes moved, if SENT */
	int outcome;   /* enum mlx_remote_outcome */
};

struct transfer {
	struct mlx_remote *r;
	struct mlx_store *store;
	struct transfer_item *items; /* the window being moved */
	int check;
	atomic_int next_slot; /* instance slots handed to this run's workers */
	atomic_size_t done;   /* items finished, over every window */
	atomic_uint_fast64_t bytes;
	size_t total;
	uint64_t total_bytes;
	const struct mlx_remote_progress *progress;
};

static void object_key(const char *hex, char key[80])
{
	snprintf(key, 80, "objects/%.2s/%s", hex, hex + 2);
}

static int push_one(struct transfer *t, void *st, struct mlx_pool *pool, unsigned *seed,
                    struct transfer_item *it, struct mlx_err *err)
{
	struct mlx_err local;
	char path[PATH_MAX], key[80];
	int rc = mlx_store_verify(t->store, it->hex, &local);
	if (rc == MLX_ERR_NOTFOUND || rc == MLX_ERR_CORRUPT) {
		it->outcome = rc == MLX_ERR_NOTFOUND ? MLX_REMOTE_MISSING : MLX_REMOTE_CORRUPT;
		return MLX_OK;
	}
	if (rc != MLX_OK) {
		*err = local;
		return rc;
	}
	if ((rc = mlx_store_object_path(t->store, it->hex, path, sizeof path, err)) != MLX_OK)
		return rc;
	struct stat sb;
	if (stat(path, &sb) != 0)
		return mlx_err_sys(err, errno, "cannot stat %s", path);
	object_key(it->hex, key);
	for (int attempt = 0;; attempt++) {
		rc = MLX_OK;
		if (t->check) {
			uint64_t have;
			rc = t->r->be->stat(st, key, &have, err);
			if (rc == MLX_OK && have == (uint64_t)sb.st_size) {
				it->outcome = MLX_REMOTE_PRESENT;
				return MLX_OK;
			}
			if (rc == MLX_OK || rc == MLX_ERR_NOTFOUND)
				rc = MLX_OK;
		}
		if (rc == MLX_OK)
			rc = t->r->be->put(st, key, path, (uint64_t)sb.st_size, err);
		if (rc == MLX_OK) {
			it->outcome = MLX_REMOTE_SENT;
			it->size = (uint64_t)sb.st_size;
			atomic_fetch_add(&t->bytes, it->size);
			return MLX_OK;
		}
		if (rc != MLX_ERR_IO || attempt >= t->r->policy.retries)
			return rc;
		if ((rc = backoff(t->r, attempt + 1, pool, seed, err)) != MLX_OK)
			return rc;
	}
}

struct fill_ctx {
	const struct mlx_remote_backend *be;
	void *st;
	const char *key;
};

static int fill_from_remote(void *vctx, int fd, struct mlx_err *err)
{
	struct fill_ctx *c = vctx;
	return c->be->get(c->st, c->key, fd, err);
}

/* Fetches one object. buf (SMALL_OBJECT bytes, or NULL) is the worker's:
 * with a backend that reads small keys into memory, an object that fits
 * is read once, hashed there and written to the store from it. */
static int fetch_one(struct transfer *t, void *st, struct mlx_pool *pool, unsigned *seed,
                     struct transfer_item *it, void *buf, struct mlx_err *err)
{
	/* The store lacked it a moment ago; one stored meanwhile (by another
	 * process) is met by the commit, which keeps the first copy. */
	char key[80];
	object_key(it->hex, key);
	struct fill_ctx c = {t->r->be, st, key};
	for (int attempt = 0;; attempt++) {
		uint64_t size = 0;
		size_t small = SIZE_MAX;
		int rc = MLX_OK;
		if (buf && t->r->be->read_small)
			rc = t->r->be->read_small(st, key, buf, SMALL_OBJECT, &small, err);
		if (rc == MLX_OK && small <= SMALL_OBJECT) {
			rc = mlx_store_stage_verified_bytes(t->store, it->hex, buf, small, err);
			size = small;
		} else if (rc == MLX_OK) {
			rc = mlx_store_stage_verified(t->store, it->hex, fill_from_remote, &c, &size, err);
		}
		if (rc == MLX_OK) {
			it->outcome = MLX_REMOTE_SENT;
			it->size = size;
			atomic_fetch_add(&t->bytes, size);
			return MLX_OK;
		}
		if (rc == MLX_ERR_NOTFOUND || rc == MLX_ERR_CORRUPT) {
			it->outcome = rc == MLX_ERR_NOTFOUND ? MLX_REMOTE_MISSING : MLX_REMOTE_CORRUPT;
			return MLX_OK;
		}
		if (rc != MLX_ERR_IO || attempt >= t->r->policy.retries)
			return rc;
		if ((rc = backoff(t->r, attempt + 1, pool, seed, err)) != MLX_OK)
			return rc;
	}
}

static int transfer_worker(void *vt, struct mlx_pool *pool, struct mlx_err *err, int push)
{
	struct transfer *t = vt;
	int slot = 1 + atomic_fetch_add(&t->next_slot, 1);
	if (slot > MAX_JOBS)
		slot = MAX_JOBS; /* not reached: the pool starts at most jobs threads */
	void *st = instance(t->r, slot, err);
	if (!st)
		return err->status;
	unsigned seed = (unsigned)(getpid() ^ (slot * 2654435761u));
	/* Without memory for it, a fetch copies through files as for a large
	 * object: slower, not wrong. */
	void *buf = !push && t->r->be->read_small ? malloc(SMALL_OBJECT) : NULL;
	size_t i;
	int rc = MLX_OK;
	while (rc == MLX_OK && mlx_pool_take(pool, &i)) {
		struct transfer_item *it = &t->items[i];
		rc = push ? push_one(t, st, pool, &seed, it, err)
		          : fetch_one(t, st, pool, &seed, it, buf, err);
		if (rc == MLX_OK)
			atomic_fetch_add(&t->done, 1);
	}
	free(buf);
	return rc;
}

static int push_worker(void *vt, struct mlx_pool *pool, struct mlx_err *err)
{
	return transfer_worker(vt, pool, err, 1);
}

static int fetch_worker(void *vt, struct mlx_pool *pool, struct mlx_err *err)
{
	return transfer_worker(vt, pool, err, 0);
}

static int report(void *vt, size_t started, size_t n)
{
	(void)started;
	(void)n;
	struct transfer *t = vt;
	if (!t->progress)
		return 0;
	return t->progress->report(t->progress->ctx, atomic_load(&t->done), t->total, atomic_load(&t->bytes),
	                           t->total_bytes);
}

/* Moves the window t->items[0..n) in parallel. */
static int run_window(struct transfer *t, size_t n, mlx_pool_worker_fn fn, struct mlx_err *err)
{
	atomic_store(&t->next_slot, 0);
	atomic_store(&t->r->cancel, 0);
	/* Always with a progress: the work then runs in worker threads, and
	 * the waiting thread, which receives the signals, raises cancel. */
	struct mlx_progress pr = {report, t, &t->r->cancel};
	return mlx_pool_run_workers_progress(n, t->r->policy.jobs, fn, t, &pr, err);
}

/* Adds the outcomes of a window of n items to res (verified: fetched ones,
 * when want_verified). Returns 0 or MLX_ERR_NOMEM. */
static int tally(struct mlx_remote_result *res, const struct transfer_item *items, size_t n,
                 int want_verified, struct mlx_err *err)
{
	int rc = MLX_OK;
	for (size_t i = 0; rc == MLX_OK && i < n; i++) {
		const struct transfer_item *it = &items[i];
		switch (it->outcome) {
		case MLX_REMOTE_SENT:
			res->sent++;
			res->bytes += it->size;
			if (want_verified)
				rc = mlx_idset_add_hex(&res->verified, it->hex, 0, err);
			break;
		case MLX_REMOTE_PRESENT: res->present++; break;
		case MLX_REMOTE_MISSING: rc = mlx_idset_add_hex(&res->missing, it->hex, 0, err); break;
		case MLX_REMOTE_CORRUPT: rc = mlx_idset_add_hex(&res->corrupt, it->hex, 0, err); break;
		default: break;
		}
	}
	return rc;
}

void mlx_remote_result_free(struct mlx_remote_result *res)
{
	mlx_idset_free(&res->missing);
	mlx_idset_free(&res->corrupt);
	mlx_idset_free(&res->verified);
	*res = (struct mlx_remote_result)MLX_REMOTE_RESULT_INIT;
}

static struct transfer_item *new_window(const struct mlx_remote *r, struct mlx_err *err)
{
	struct transfer_item *items = malloc(r->policy.window * sizeof *items);
	if (!items)
		mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	return items;
}

int mlx_remote_push(struct mlx_remote *r, struct mlx_store *store, struct mlx_idset *ids, int check,
                    const struct mlx_remote_progress *progress, struct mlx_remote_result *res,
                    struct mlx_err *err)
{
	struct transfer t = {.r = r, .store = store, .check = check, .progress = progress};
	t.total = mlx_idset_count(ids);
	for (size_t i = 0; i < t.total; i++)
		t.total_bytes += ids->items[i].size;
	if (!(t.items = new_window(r, err)))
		return MLX_ERR_NOMEM;
	int rc = MLX_OK;
	const size_t window = r->policy.window;
	for (size_t base = 0; rc == MLX_OK && base < t.total; base += window) {
		size_t n = t.total - base < window ? t.total - base : window;
		for (size_t i = 0; i < n; i++) {
			mlx_id_to_hex(ids->items[base + i].id, t.items[i].hex);
			t.items[i].size = ids->items[base + i].size;
			t.items[i].outcome = MLX_REMOTE_PENDING;
		}
		rc = run_window(&t, n, push_worker, err);
		/* What was sent stays sent, also when the push stopped. */
		struct mlx_err terr;
		int trc = tally(res, t.items, n, 0, &terr);
		if (rc == MLX_OK && trc != MLX_OK) {
			*err = terr;
			rc = trc;
		}
	}
	free(t.items);
	return rc;
}

int mlx_remote_fetch(struct mlx_remote *r, struct mlx_store *store, struct mlx_idset *ids,
                     const struct mlx_remote_progress *progress, struct mlx_remote_result *res,
                     struct mlx_err *err)
{
	struct transfer t = {.r = r, .store = store, .progress = progress};
	size_t n = mlx_idset_count(ids);
	const size_t window = r->policy.window;
	const char **hexes = malloc(window * sizeof *hexes);
	unsigned char *present = malloc(window);
	/* One bit per id: which ones the store lacks, found in a first pass so
	 * that the progress knows the total (and a no-op stops there). */
	unsigned char *lacks = calloc(n / 8 + 1, 1);
	t.items = new_window(r, err);
	int rc = t.items && hexes && present && lacks
	             ? MLX_OK
	             : mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	for (size_t base = 0; rc == MLX_OK && base < n; base += window) {
		size_t k = n - base < window ? n - base : window;
		for (size_t i = 0; i < k; i++) {
			mlx_id_to_hex(ids->items[base + i].id, t.items[i].hex);
			hexes[i] = t.items[i].hex;
		}
		mlx_store_has_many(store, hexes, k, present);
		for (size_t i = 0; i < k; i++) {
			if (present[i])
				continue;
			lacks[(base + i) / 8] |= (unsigned char)(1u << ((base + i) % 8));
			t.total++;
			t.total_bytes += ids->items[base + i].size;
		}
	}
	res->present += n - t.total;
	/* The remote keeps every object fetched: they are published without
	 * waiting for the disk, which was most of a pull's time, and checked
	 * if the machine restarts before the kernel wrote them (store.h). */
	mlx_store_defer_durability(store, 1);
	for (size_t next = 0; rc == MLX_OK && next < n;) {
		size_t w = 0;
		for (; w < window && next < n; next++) {
			if (!(lacks[next / 8] & (1u << (next % 8))))
				continue;
			mlx_id_to_hex(ids->items[next].id, t.items[w].hex);
			t.items[w].size = ids->items[next].size;
			t.items[w].outcome = MLX_REMOTE_PENDING;
			w++;
		}
		if (w == 0)
			break;
		rc = run_window(&t, w, fetch_worker, err);
		/* Keep what arrived whole, also when interrupted. The window is
		 * moved into the store while the next one arrives. Its ids are
		 * counted as verified now; a commit that fails fails the fetch,
		 * whose result is then not used. */
		struct mlx_err cerr;
		int crc = mlx_store_commit_start(store, &cerr);
		if (crc == MLX_OK)
			crc = tally(res, t.items, w, 1, &cerr);
		if (rc == MLX_OK && crc != MLX_OK) {
			*err = cerr;
			rc = crc;
		}
	}
	struct mlx_err cerr;
	int crc = mlx_store_commit_wait(store, &cerr);
	mlx_store_defer_durability(store, 0);
	if (rc == MLX_OK && crc != MLX_OK) {
		*err = cerr;
		rc = crc;
	}
	free(lacks);
	free(present);
	free(hexes);
	free(t.items);
	return rc;
}
