/* rundb_write.c — the write buffer of the tracking database.
 *
 * Logging a point costs a hash lookup and an append to an array; the points
 * reach SQLite in one transaction per batch, through one prepared INSERT,
 * with one latest_metrics upsert per metric per batch (not per point). A
 * thread started with the first buffered write flushes what has waited
 * longer than the flush interval, so points reach the database in time
 * even while the caller waits for a child process. */
#include "rundb_internal.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define KEY_MAX 250

static int valid_key(const char *key, const char *what, struct mlx_err *err)
{
	size_t len = strlen(key);
	if (len == 0)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s name is empty", what);
	if (len > KEY_MAX)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s name is longer than %d bytes: %.40s…", what,
		                   KEY_MAX, key);
	for (const unsigned char *p = (const unsigned char *)key; *p; p++)
		if (*p < 0x20 || *p == 0x7f)
			return mlx_err_set(err, MLX_ERR_INVALID, 0, "%s name has a control character: %.40s",
			                   what, key);
	return MLX_OK;
}

static int nomem(struct mlx_err *err)
{
	return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
}

/* Grows *items (of size elem) to hold at least need; 0 or -1. */
static int grow(void **items, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap * 2 : 64;
	while (n < need)
		n *= 2;
	void *p = realloc(*items, n * elem);
	if (!p)
		return -1;
	*items = p;
	*cap = n;
	return 0;
}

/* ---- series: one metric of one run -------------------------------------- */

static uint64_t fnv1a(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * UINT64_C(0x100000001b3);
	return h;
}

static uint64_t series_hash(const char *run, const char *key)
{
	return fnv1a(fnv1a(UINT64_C(0xcbf29ce484222325), run) ^ 0xff, key);
}

static int rehash(struct mlx_rundb *db, size_t nslots)
{
	uint32_t *slots = calloc(nslots, sizeof *slots);
	if (!slots)
		return -1;
	for (size_t i = 0; i < db->nseries; i++) {
		size_t j = db->series[i].hash & (nslots - 1);
		while (slots[j])
			j = (j + 1) & (nslots - 1);
		slots[j] = (uint32_t)i + 1;
	}
	free(db->slots);
	db->slots = slots;
	db->nslots = nslots;
	return 0;
}

/* Finds or adds the series (run, key); returns its index or -1 (no memory). */
static long find_series(struct mlx_rundb *db, const char *run, const char *key)
{
	uint64_t h = series_hash(run, key);
	if (db->nslots) {
		for (size_t j = h & (db->nslots - 1); db->slots[j]; j = (j + 1) & (db->nslots - 1)) {
			struct series *s = &db->series[db->slots[j] - 1];
			if (s->hash == h && strcmp(s->key, key) == 0 && strcmp(s->run, run) == 0)
				return (long)db->slots[j] - 1;
		}
	}
	if ((db->nseries + 1) * 2 > db->nslots && rehash(db, db->nslots ? db->nslots * 2 : 64) != 0)
		return -1;
	if (grow((void **)&db->series, &db->cap_series, db->nseries + 1, sizeof *db->series) != 0)
		return -1;
	struct series *s = &db->series[db->nseries];
	memset(s, 0, sizeof *s);
	s->run = strdup(run);
	s->key = strdup(key);
	if (!s->run || !s->key) {
		free(s->run);
		free(s->key);
		return -1;
	}
	s->hash = h;
	size_t j = h & (db->nslots - 1);
	while (db->slots[j])
		j = (j + 1) & (db->nslots - 1);
	db->slots[j] = (uint32_t)db->nseries + 1;
	return (long)db->nseries++;
}

/* The step after the highest one of series s, here or in the database. */
static int next_step(struct mlx_rundb *db, struct series *s, int64_t *step, struct mlx_err *err)
{
	if (!s->checked_db) {
		sqlite3_stmt *st;
		int rc = rundb_stmt(db, ST_MAX_STEP, &st, err);
		if (rc != MLX_OK)
			return rc;
		sqlite3_bind_text(st, 1, s->run, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, s->key, -1, SQLITE_STATIC);
		int sqlrc = sqlite3_step(st);
		if (sqlrc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL) {
			int64_t stored = sqlite3_column_int64(st, 0);
			if (!s->has_last || stored > s->last_step)
				s->last_step = stored;
			s->has_last = 1;
		}
		sqlite3_reset(st);
		if (sqlrc != SQLITE_ROW)
			return rundb_fail(db, sqlrc, err, "cannot read the last step of a metric");
		s->checked_db = 1;
	}
	*step = s->has_last ? s->last_step + 1 : 0;
	return MLX_OK;
}

/* ---- the flush thread --------------------------------------------------- */

static int due(const struct mlx_rundb *db, int64_t now)
{
	return (db->nrows || db->npending) && now - db->oldest_ms >= db->flush_interval_ms;
}

static void *flusher_main(void *arg)
{
	struct mlx_rundb *db = arg;
	long period_ms = db->flush_interval_ms / 4;
	if (period_ms < 5)
		period_ms = 5;
	pthread_mutex_lock(&db->lock);
	while (!db->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		until.tv_nsec += (period_ms % 1000) * 1000000;
		until.tv_sec += period_ms / 1000 + until.tv_nsec / 1000000000;
		until.tv_nsec %= 1000000000;
		pthread_cond_timedwait(&db->wake, &db->lock, &until);
		/* A failure keeps the buffer; the caller's next flush reports it. */
		if (!db->stopping && !db->open_queries && due(db, rundb_now_ms())) {
			struct mlx_err ignored;
			rundb_flush_locked(db, &ignored);
		}
	}
	pthread_mutex_unlock(&db->lock);
	return NULL;
}

/* Starts the flush thread with the lock held; on failure the buffer is
 * still flushed by count and by the caller, only later. */
static void start_flusher(struct mlx_rundb *db)
{
	if (db->flusher_started)
		return;
	/* The thread must never take SIGINT or SIGTERM: their handler
	 * interrupts the caller's Lua state, on the caller's thread. */
	sigset_t all, saved;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &saved);
	if (pthread_create(&db->flusher, NULL, flusher_main, db) == 0)
		db->flusher_started = 1;
	pthread_sigmask(SIG_SETMASK, &saved, NULL);
}

void rundb_stop_flusher(struct mlx_rundb *db)
{
	pthread_mutex_lock(&db->lock);
	int started = db->flusher_started;
	db->stopping = 1;
	pthread_cond_signal(&db->wake);
	pthread_mutex_unlock(&db->lock);
	if (started)
		pthread_join(db->flusher, NULL);
	db->flusher_started = 0;
}

/* ---- buffering ---------------------------------------------------------- */

/* Ends of runs buffered at most: each holds its run's end marker until the
 * batch is written, and a batch this size already shares most pages of
 * the runs table and its indexes among its ends. */
#define MAX_ENDS 32

/* Notes a new buffered write; flushes if the batch is full or old. */
static int buffered(struct mlx_rundb *db, int64_t now, struct mlx_err *err)
{
	if (db->nrows + db->npending == 1)
		db->oldest_ms = now;
	start_flusher(db);
	if (db->nrows + db->npending >= db->batch_rows || db->nends >= MAX_ENDS ||
	    now - db->oldest_ms >= db->flush_interval_ms)
		return rundb_flush_locked(db, err);
	return MLX_OK;
}

int mlx_rundb_log_metric(struct mlx_rundb *db, const char *id, const char *key, int64_t step, double value,
                         int64_t ts_ms, int64_t *step_out, struct mlx_err *err)
{
	int rc = valid_key(key, "metric", err);
	if (rc != MLX_OK)
		return rc;
	int64_t now = rundb_now_ms();
	pthread_mutex_lock(&db->lock);
	long i = find_series(db, id, key);
	if (i < 0 || grow((void **)&db->rows, &db->cap_rows, db->nrows + 1, sizeof *db->rows) != 0) {
		rc = nomem(err);
		goto out;
	}
	struct series *s = &db->series[i];
	if (step == MLX_STEP_AUTO && (rc = next_step(db, s, &step, err)) != MLX_OK)
		goto out;
	if (!s->has_last || step > s->last_step) {
		s->last_step = step;
		s->has_last = 1;
	}
	int64_t ts = ts_ms > 0 ? ts_ms : now;
	if (!s->touched || step >= s->top_step) {
		s->top_step = step;
		s->top_ts = ts;
		s->top_value = value;
		s->touched = 1;
	}
	db->rows[db->nrows++] = (struct metric_row){(uint32_t)i, step, ts, value};
	if (step_out)
		*step_out = step;
	rc = buffered(db, now, err);
out:
	pthread_mutex_unlock(&db->lock);
	return rc;
}

static int push_pending(struct mlx_rundb *db, struct pending p, struct mlx_err *err)
{
	pthread_mutex_lock(&db->lock);
	if (grow((void **)&db->pending, &db->cap_pending, db->npending + 1, sizeof *db->pending) != 0) {
		pthread_mutex_unlock(&db->lock);
		free(p.run);
		free(p.key);
		free(p.value);
		free(p.hash);
		return nomem(err);
	}
	db->pending[db->npending++] = p; /* the buffer owns it now */
	if (p.kind == PENDING_END)
		db->nends++;
	int rc = buffered(db, rundb_now_ms(), err);
	pthread_mutex_unlock(&db->lock);
	return rc;
}

static int key_value(struct mlx_rundb *db, enum pending_kind kind, const char *id, const char *key,
                     const char *value, struct mlx_err *err)
{
	int rc = valid_key(key, kind == PENDING_PARAM ? "param" : "tag", err);
	if (rc != MLX_OK)
		return rc;
	struct pending p = {.kind = kind, .run = strdup(id), .key = strdup(key), .value = strdup(value)};
	if (!p.run || !p.key || !p.value) {
		free(p.run);
		free(p.key);
		free(p.value);
		return nomem(err);
	}
	return push_pending(db, p, err);
}

int mlx_rundb_log_param(struct mlx_rundb *db, const char *id, const char *key, const char *value,
                        struct mlx_err *err)
{
	return key_value(db, PENDING_PARAM, id, key, value, err);
}

int mlx_rundb_set_tag(struct mlx_rundb *db, const char *id, const char *key, const char *value,
                      struct mlx_err *err)
{
	return key_value(db, PENDING_TAG, id, key, value, err);
}

int mlx_rundb_log_artifact(struct mlx_rundb *db, const char *id, const struct mlx_run_artifact *art,
                           struct mlx_err *err)
{
	if (!art->role || (strcmp(art->role, "in") != 0 && strcmp(art->role, "out") != 0))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "artifact role must be \"in\" or \"out\", not \"%s\"",
		                   art->role ? art->role : "(null)");
	if (!art->path || !*art->path)
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "artifact path is empty");
	struct pending p = {.kind = PENDING_ARTIFACT,
	                    .run = strdup(id),
	                    .key = strdup(art->role),
	                    .value = strdup(art->path),
	                    .hash = art->hash ? strdup(art->hash) : NULL,
	                    .size = art->size,
	                    .nfiles = art->nfiles};
	if (!p.run || !p.key || !p.value || (art->hash && !p.hash)) {
		free(p.run);
		free(p.key);
		free(p.value);
		free(p.hash);
		return nomem(err);
	}
	return push_pending(db, p, err);
}

int rundb_buffer_group(struct mlx_rundb *db, const char *id, long pgid, const char *ident,
                       struct mlx_err *err)
{
	struct pending p = {.kind = PENDING_GROUP, .run = strdup(id), .value = strdup(ident), .size = pgid};
	if (!p.run || !p.value) {
		free(p.run);
		free(p.value);
		return nomem(err);
	}
	return push_pending(db, p, err);
}

int rundb_buffer_end(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end, struct mlx_err *err)
{
	struct pending p = {.kind = PENDING_END, .run = strdup(id), .end = *end};
	p.value = end->message ? strdup(end->message) : NULL;
	if (!p.run || (end->message && !p.value)) {
		free(p.run);
		free(p.value);
		return nomem(err);
	}
	p.end.message = p.value;
	if (p.end.end_ms <= 0)
		p.end.end_ms = rundb_now_ms();
	return push_pending(db, p, err);
}

void rundb_buffer_unwritten(struct mlx_rundb *db, int rc, const char *why)
{
	if (rc != MLX_ERR_IO && rc != MLX_ERR_BUSY)
		return;
	for (size_t i = 0; i < db->npending; i++)
		if (db->pending[i].kind == PENDING_END)
			rundb_end_marker_write(db, db->pending[i].run, &db->pending[i].end, why);
}

/* ---- writing ------------------------------------------------------------ */

/* A param kept as a number too when all of it reads as a finite number. */
static int param_number(const char *value, double *num)
{
	char *end;
	errno = 0;
	*num = strtod(value, &end);
	return *value && !*end && end != value && errno == 0 && isfinite(*num) && !strchr(" \t\n", *value);
}

static int write_pending(struct mlx_rundb *db, const struct pending *p, struct mlx_err *err)
{
	sqlite3_stmt *st;
	if (p->kind == PENDING_END) {
		/* A run that is no longer RUNNING (reaped as dead meanwhile)
		 * keeps what it says: an UPDATE that changes nothing. */
		int rc = rundb_stmt(db, ST_FINISH_RUN, &st, err);
		if (rc != MLX_OK)
			return rc;
		rundb_bind_end(st, p->run, &p->end);
		rc = rundb_exec(db, st, err, "cannot record the end of a run");
		sqlite3_clear_bindings(st);
		return rc;
	}
	if (p->kind == PENDING_GROUP) {
		int rc = rundb_stmt(db, ST_SET_GROUP, &st, err);
		if (rc != MLX_OK)
			return rc;
		sqlite3_bind_text(st, 1, p->run, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, p->size);
		sqlite3_bind_text(st, 3, p->value, -1, SQLITE_STATIC);
		return rundb_exec(db, st, err, "cannot record a run's process group");
	}
	enum rundb_stmt which = p->kind == PENDING_PARAM ? ST_UPSERT_PARAM
	                        : p->kind == PENDING_TAG ? ST_UPSERT_TAG
	                                                 : ST_UPSERT_ARTIFACT;
	int rc = rundb_stmt(db, which, &st, err);
	if (rc != MLX_OK)
		return rc;
	sqlite3_bind_text(st, 1, p->run, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, p->key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, p->value, -1, SQLITE_STATIC);
	if (p->kind == PENDING_PARAM) {
		double num;
		if (param_number(p->value, &num))
			sqlite3_bind_double(st, 4, num);
		else
			sqlite3_bind_null(st, 4);
	} else if (p->kind == PENDING_ARTIFACT) {
		if (p->hash)
			sqlite3_bind_text(st, 4, p->hash, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 4);
		if (p->size >= 0)
			sqlite3_bind_int64(st, 5, p->size);
		else
			sqlite3_bind_null(st, 5);
		if (p->nfiles >= 0)
			sqlite3_bind_int64(st, 6, p->nfiles);
		else
			sqlite3_bind_null(st, 6);
	}
	return rundb_exec(db, st, err, "cannot write a run record");
}

static void bind_value(sqlite3_stmt *st, int i, double value)
{
	if (isnan(value))
		sqlite3_bind_null(st, i); /* SQLite would store NULL anyway */
	else
		sqlite3_bind_double(st, i, value);
}

int rundb_write_buffer(struct mlx_rundb *db, struct mlx_err *err)
{
	int rc;
	for (size_t i = 0; i < db->npending; i++)
		if ((rc = write_pending(db, &db->pending[i], err)) != MLX_OK)
			return rc;
	if (db->nrows == 0)
		return MLX_OK;
	sqlite3_stmt *st;
	if ((rc = rundb_stmt(db, ST_INSERT_METRIC, &st, err)) != MLX_OK)
		return rc;
	for (size_t i = 0; i < db->nrows; i++) {
		const struct metric_row *r = &db->rows[i];
		const struct series *s = &db->series[r->series];
		sqlite3_bind_text(st, 1, s->run, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, s->key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, r->step);
		sqlite3_bind_int64(st, 4, r->ts);
		bind_value(st, 5, r->value);
		int sqlrc = sqlite3_step(st);
		sqlite3_reset(st);
		if (sqlrc != SQLITE_DONE)
			return rundb_fail(db, sqlrc, err, "cannot write metrics");
	}
	if ((rc = rundb_stmt(db, ST_UPSERT_LATEST, &st, err)) != MLX_OK)
		return rc;
	for (size_t i = 0; i < db->nseries; i++) {
		const struct series *s = &db->series[i];
		if (!s->touched)
			continue;
		sqlite3_bind_text(st, 1, s->run, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, s->key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, s->top_step);
		sqlite3_bind_int64(st, 4, s->top_ts);
		bind_value(st, 5, s->top_value);
		if ((rc = rundb_exec(db, st, err, "cannot write the latest metrics")) != MLX_OK)
			return rc;
	}
	return MLX_OK;
}

/* Forgets the buffer; committed: it was written, so the end markers of
 * the ends in it are retired. */
static void drop_buffer(struct mlx_rundb *db, int committed)
{
	for (size_t i = 0; i < db->npending; i++) {
		/* Its end is recorded: the marker is out of date now, and an
		 * empty one serves a later run. */
		if (committed && db->pending[i].kind == PENDING_END)
			rundb_end_marker_retire(db, db->pending[i].run);
		free(db->pending[i].run);
		free(db->pending[i].key);
		free(db->pending[i].value);
		free(db->pending[i].hash);
	}
	db->npending = 0;
	db->nends = 0;
	if (db->nrows)
		for (size_t i = 0; i < db->nseries; i++)
			db->series[i].touched = 0;
	db->nrows = 0;
}

void rundb_clear_buffer(struct mlx_rundb *db)
{
	drop_buffer(db, 1);
}

int rundb_flush_locked(struct mlx_rundb *db, struct mlx_err *err)
{
	if (db->nrows == 0 && db->npending == 0)
		return MLX_OK;
	int rc = rundb_begin(db, err);
	if (rc == MLX_OK &&
	    ((rc = rundb_write_buffer(db, err)) != MLX_OK || (rc = rundb_commit(db, err)) != MLX_OK))
		rundb_rollback(db);
	if (rc != MLX_OK) {
		rundb_buffer_unwritten(db, rc, err ? err->msg : "the database could not be written");
		return rc;
	}
	rundb_clear_buffer(db);
	return MLX_OK;
}

int mlx_rundb_flush(struct mlx_rundb *db, struct mlx_err *err)
{
	pthread_mutex_lock(&db->lock);
	int rc = rundb_flush_locked(db, err);
	pthread_mutex_unlock(&db->lock);
	return rc;
}

void rundb_free_buffer(struct mlx_rundb *db)
{
	drop_buffer(db, 0); /* what is left was not written: its markers say so */
	for (size_t i = 0; i < db->nseries; i++) {
		free(db->series[i].run);
		free(db->series[i].key);
	}
	free(db->series);
	free(db->slots);
	free(db->rows);
	free(db->pending);
	db->series = NULL;
	db->slots = NULL;
	db->rows = NULL;
	db->pending = NULL;
	db->nseries = db->nslots = db->cap_series = db->cap_rows = db->cap_pending = 0;
}
