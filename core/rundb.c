/* rundb.c — the tracking database: the connection, the schema and its
 * migrations, starting, finishing and reaping runs. The write buffer is in
 * rundb_write.c, reading in rundb_query.c. */
#include "rundb_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdbool.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/* ---- schema ------------------------------------------------------------ */

/* Migration n (1-based) brings the schema from version n-1 to n. Each runs
 * in the transaction that also sets PRAGMA user_version; a migration, once
 * released, is never edited: a change is a new entry. */
static const char *const migrations[] = {
    /* 1: runs and what they log. Times are milliseconds since the epoch. */
    "CREATE TABLE runs ("
    "  id TEXT PRIMARY KEY NOT NULL,"
    "  parent_id TEXT,"
    "  recipe TEXT,"
    "  recipe_hash TEXT,"
    "  step TEXT,"
    "  step_key TEXT,"
    "  status TEXT NOT NULL"
    "    CHECK (status IN ('RUNNING', 'FINISHED', 'FAILED', 'KILLED', 'CACHED')),"
    "  message TEXT,"
    "  start_time INTEGER NOT NULL,"
    "  end_time INTEGER,"
    "  exit_code INTEGER,"
    "  signal INTEGER,"
    "  git_commit TEXT,"
    "  git_branch TEXT,"
    "  git_dirty INTEGER,"
    "  host TEXT,"
    "  user TEXT,"
    "  pid INTEGER,"
    "  proc_start TEXT,"
    "  command TEXT,"
    "  log_path TEXT,"
    "  cpu_seconds REAL,"
    "  wall_seconds REAL,"
    "  peak_rss INTEGER);"
    "CREATE INDEX runs_by_start ON runs (start_time);"
    "CREATE INDEX runs_by_parent ON runs (parent_id) WHERE parent_id IS NOT NULL;"
    "CREATE INDEX runs_running ON runs (host) WHERE status = 'RUNNING';"
    "CREATE TABLE params ("
    "  run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, num REAL,"
    "  PRIMARY KEY (run_id, key)) WITHOUT ROWID;"
    "CREATE TABLE tags ("
    "  run_id TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (run_id, key)) WITHOUT ROWID;"
    /* value NULL is NaN, which SQLite cannot store as a REAL. */
    "CREATE TABLE metrics ("
    "  run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL, value REAL,"
    "  PRIMARY KEY (run_id, key, step)) WITHOUT ROWID;"
    "CREATE TABLE latest_metrics ("
    "  run_id TEXT NOT NULL, key TEXT NOT NULL, step INTEGER NOT NULL,"
    "  ts INTEGER NOT NULL, value REAL,"
    "  PRIMARY KEY (run_id, key)) WITHOUT ROWID;"
    "CREATE TABLE artifacts ("
    "  run_id TEXT NOT NULL, role TEXT NOT NULL CHECK (role IN ('in', 'out')),"
    "  path TEXT NOT NULL, hash TEXT, size INTEGER, nfiles INTEGER,"
    "  PRIMARY KEY (run_id, role, path)) WITHOUT ROWID;",
    /* 2: the model registry (core/registry.c). A version names an object
     * of the store in artifact_hash, the column mlx gc reads; the alias
     * history is append-only, a rollback row naming the change it undid
     * (reverts). Lineage finds the runs that wrote or read an object by
     * its hash. */
    "CREATE TABLE models ("
    "  name TEXT PRIMARY KEY NOT NULL, created INTEGER NOT NULL) WITHOUT ROWID;"
    "CREATE TABLE model_versions ("
    "  name TEXT NOT NULL,"
    "  version INTEGER NOT NULL CHECK (version > 0),"
    "  artifact_hash TEXT NOT NULL,"
    "  type TEXT NOT NULL CHECK (type IN ('file', 'dir')),"
    "  size INTEGER NOT NULL,"
    "  files INTEGER,"
    "  mode TEXT,"
    "  path TEXT,"
    "  run_id TEXT,"
    "  created INTEGER NOT NULL,"
    "  description TEXT,"
    "  PRIMARY KEY (name, version)) WITHOUT ROWID;"
    "CREATE INDEX model_versions_by_hash ON model_versions (artifact_hash);"
    "CREATE TABLE model_version_tags ("
    "  name TEXT NOT NULL, version INTEGER NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,"
    "  PRIMARY KEY (name, version, key)) WITHOUT ROWID;"
    "CREATE TABLE model_aliases ("
    "  name TEXT NOT NULL, alias TEXT NOT NULL, version INTEGER NOT NULL, updated INTEGER NOT NULL,"
    "  PRIMARY KEY (name, alias)) WITHOUT ROWID;"
    "CREATE TABLE model_alias_history ("
    "  id INTEGER PRIMARY KEY,"
    "  name TEXT NOT NULL, alias TEXT NOT NULL,"
    "  action TEXT NOT NULL CHECK (action IN ('set', 'delete', 'rollback')),"
    "  version INTEGER, previous INTEGER, reverts INTEGER,"
    "  time INTEGER NOT NULL, user TEXT, run_id TEXT);"
    "CREATE INDEX model_alias_history_by_alias ON model_alias_history (name, alias, id);"
    "CREATE INDEX artifacts_by_hash ON artifacts (hash) WHERE hash IS NOT NULL;",
    /* 3: the process group a step runs in and its leader's identity (as
     * proc_start), so that whoever marks the run KILLED can end what is
     * left of it (mlx_rundb_set_group, mlx_rundb_reap). */
    "ALTER TABLE runs ADD COLUMN pgid INTEGER;"
    "ALTER TABLE runs ADD COLUMN pgid_start TEXT;",
    /* 4: a step restored from the run-cache finds the run that produced
     * its outs by their common step key; the experiments table (mlx exp)
     * finds the newest step run of a recipe run that has a metric. */
    "CREATE INDEX IF NOT EXISTS runs_by_step_key ON runs (step_key) WHERE step_key IS NOT NULL;"
    "CREATE INDEX IF NOT EXISTS runs_by_parent_start ON runs (parent_id, start_time, id)"
    "  WHERE parent_id IS NOT NULL;",
    /* 5: runs_by_parent is a prefix of runs_by_parent_start, under the
     * same condition, and no query's plan used it any more (SQLite takes
     * the covering one); it cost every step's run a page of its start. */
    "DROP INDEX IF EXISTS runs_by_parent;",
};

#define NMIGRATIONS ((int)(sizeof migrations / sizeof migrations[0]))

int mlx_rundb_schema_latest(void)
{
	return NMIGRATIONS;
}

static const char *const stmt_sql[ST_COUNT] = {
    [ST_BEGIN] = "BEGIN IMMEDIATE",
    [ST_COMMIT] = "COMMIT",
    [ST_ROLLBACK] = "ROLLBACK",
    [ST_INSERT_METRIC] =
        "INSERT OR REPLACE INTO metrics (run_id, key, step, ts, value) VALUES (?1, ?2, ?3, ?4, ?5)",
    [ST_UPSERT_LATEST] =
        "INSERT INTO latest_metrics (run_id, key, step, ts, value) VALUES (?1, ?2, ?3, ?4, ?5)"
        " ON CONFLICT (run_id, key) DO UPDATE SET step = excluded.step, ts = excluded.ts,"
        " value = excluded.value WHERE excluded.step >= latest_metrics.step",
    [ST_MAX_STEP] = "SELECT max(step) FROM metrics WHERE run_id = ?1 AND key = ?2",
    [ST_UPSERT_PARAM] = "INSERT INTO params (run_id, key, value, num) VALUES (?1, ?2, ?3, ?4)"
                        " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value, num = excluded.num",
    [ST_UPSERT_TAG] = "INSERT INTO tags (run_id, key, value) VALUES (?1, ?2, ?3)"
                      " ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value",
    [ST_UPSERT_ARTIFACT] = "INSERT OR REPLACE INTO artifacts (run_id, role, path, hash, size, nfiles)"
                           " VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [ST_INSERT_RUN] = "INSERT INTO runs (id, parent_id, recipe, recipe_hash, step, step_key, status,"
                      " start_time, git_commit, git_branch, git_dirty, host, user, pid, proc_start, command,"
                      " log_path) VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'RUNNING', ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                      " ?14, ?15, ?16)",
    [ST_FINISH_RUN] = "UPDATE runs SET status = ?2, message = ?3, end_time = ?4, exit_code = ?5, signal = ?6,"
                      " cpu_seconds = ?7, wall_seconds = coalesce(?8, max(0, ?4 - start_time) / 1000.0),"
                      " peak_rss = ?9 WHERE id = ?1 AND status = 'RUNNING'",
    [ST_RUN_STATUS] = "SELECT status FROM runs WHERE id = ?1",
    [ST_RUNNING_HERE] = "SELECT id, pid, proc_start, pgid, pgid_start FROM runs"
                        " WHERE status = 'RUNNING' AND host = ?1",
    [ST_SET_GROUP] = "UPDATE runs SET pgid = ?2, pgid_start = ?3 WHERE id = ?1 AND status = 'RUNNING'",
    /* A dead run ends at its last sign of life: its start or latest point. */
    [ST_REAP] = "UPDATE runs SET status = ?3, message = ?2,"
                " end_time = max(start_time, coalesce((SELECT max(ts) FROM latest_metrics"
                "   WHERE run_id = runs.id), 0)),"
                " wall_seconds = (max(start_time, coalesce((SELECT max(ts) FROM latest_metrics"
                "   WHERE run_id = runs.id), 0)) - start_time) / 1000.0"
                " WHERE id = ?1 AND status = 'RUNNING'",
};

/* ---- errors and statements -------------------------------------------- */

static int status_of(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED: return MLX_ERR_BUSY;
	case SQLITE_CORRUPT:
	case SQLITE_NOTADB: return MLX_ERR_CORRUPT;
	case SQLITE_NOMEM: return MLX_ERR_NOMEM;
	case SQLITE_INTERRUPT: return MLX_ERR_INTERRUPTED;
	case SQLITE_ERROR:
	case SQLITE_CONSTRAINT:
	case SQLITE_MISMATCH:
	case SQLITE_RANGE: return MLX_ERR_INVALID;
	default: return MLX_ERR_IO;
	}
}

int rundb_fail(struct mlx_rundb *db, int rc, struct mlx_err *err, const char *doing)
{
	int status = status_of(rc);
	const char *why = db && db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(rc);
	const char *path = db ? db->path : "";
	if (status == MLX_ERR_BUSY)
		return mlx_err_set(err, status, 0,
		                   "%s: %s: the database is busy (another process kept it locked for %d ms)",
		                   path, doing, db ? db->busy_timeout_ms : 0);
	return mlx_err_set(err, status, 0, "%s: %s: %s", path, doing, why);
}

int rundb_stmt(struct mlx_rundb *db, enum rundb_stmt which, sqlite3_stmt **st, struct mlx_err *err)
{
	*st = db->stmts[which];
	if (*st) {
		sqlite3_reset(*st);
		return MLX_OK;
	}
	int rc = sqlite3_prepare_v3(db->sql, stmt_sql[which], -1, SQLITE_PREPARE_PERSISTENT, st, NULL);
	if (rc != SQLITE_OK)
		return rundb_fail(db, rc, err, "cannot prepare a statement");
	db->stmts[which] = *st;
	return MLX_OK;
}

int rundb_exec(struct mlx_rundb *db, sqlite3_stmt *st, struct mlx_err *err, const char *doing)
{
	int rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return rundb_fail(db, rc, err, doing);
	return MLX_OK;
}

int rundb_begin(struct mlx_rundb *db, struct mlx_err *err)
{
	sqlite3_stmt *st;
	int rc = rundb_stmt(db, ST_BEGIN, &st, err);
	return rc ? rc : rundb_exec(db, st, err, "cannot start a write");
}

int rundb_commit(struct mlx_rundb *db, struct mlx_err *err)
{
	sqlite3_stmt *st;
	int rc = rundb_stmt(db, ST_COMMIT, &st, err);
	return rc ? rc : rundb_exec(db, st, err, "cannot commit");
}

void rundb_rollback(struct mlx_rundb *db)
{
	if (sqlite3_get_autocommit(db->sql))
		return; /* SQLite rolled back already */
	struct mlx_err ignored;
	sqlite3_stmt *st;
	if (rundb_stmt(db, ST_ROLLBACK, &st, &ignored) == MLX_OK)
		rundb_exec(db, st, &ignored, "rollback");
}

int64_t rundb_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- this process ------------------------------------------------------ */

/* One read: the files read here are made by the kernel at the read, and
 * stdio's buffer and allocation were most of the cost of recording each
 * step's process group. */
static int read_small_file(const char *path, char *buf, size_t cap)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -1;
	ssize_t n;
	do
		n = read(fd, buf, cap - 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n < 0)
		return -1;
	buf[n] = '\0';
	return (int)n;
}

/* Reads the state and start time (clock ticks after boot, field 22) of pid
 * from /proc/<pid>/stat. Returns 0, or -1 if there is no such process. */
static int proc_stat(long pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%ld/stat", pid);
	if (read_small_file(path, buf, sizeof buf) <= 0)
		return -1;
	/* The command name (field 2) may hold spaces and parentheses. */
	char *p = strrchr(buf, ')');
	if (!p || sscanf(p + 1, " %c", state) != 1)
		return -1;
	p += 2;
	for (int field = 3; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -1;
		p++;
	}
	return sscanf(p, "%llu", start) == 1 ? 0 : -1;
}

static void boot_id(char out[64])
{
	if (read_small_file("/proc/sys/kernel/random/boot_id", out, 64) <= 0)
		strcpy(out, "-");
	out[strcspn(out, "\n")] = '\0';
}

static void pid_namespace(char out[32])
{
	char link[64];
	ssize_t n = readlink("/proc/self/ns/pid", link, sizeof link - 1);
	link[n > 0 ? n : 0] = '\0';
	const char *digits = strchr(link, '[');
	snprintf(out, 32, "%.*s", digits ? (int)strcspn(digits + 1, "]") : 1, digits ? digits + 1 : "-");
}

/* Writes the identity of process pid as "boot:pid-namespace:start" (the
 * form of proc_start); false if there is no such process. */
static bool process_ident(long pid, char *out, size_t cap)
{
	char boot[64], ns[32], state;
	unsigned long long start = 0;
	if (proc_stat(pid, &state, &start) != 0)
		return false;
	boot_id(boot);
	pid_namespace(ns);
	snprintf(out, cap, "%s:%s:%llu", boot, ns, start);
	return true;
}

static void describe_self(struct mlx_rundb *db)
{
	/* MLX_HOSTNAME stands for the host name where one machine plays two
	 * (tests of liveness across machines) or the name is not stable. */
	const char *name = getenv("MLX_HOSTNAME");
	if (name && *name)
		snprintf(db->host, sizeof db->host, "%s", name);
	else if (gethostname(db->host, sizeof db->host) != 0)
		strcpy(db->host, "unknown");
	db->host[sizeof db->host - 1] = '\0';
	const char *user = getenv("USER");
	if (!user || !*user) {
		struct passwd *pw = getpwuid(geteuid());
		user = pw ? pw->pw_name : "unknown";
	}
	snprintf(db->user, sizeof db->user, "%s", user);
	if (!process_ident((long)getpid(), db->proc_ident, sizeof db->proc_ident))
		snprintf(db->proc_ident, sizeof db->proc_ident, "-:-:0");
}

enum liveness { ALIVE, DEAD, UNKNOWN };

/* Whether the process recorded as pid with identity ident still runs. */
static enum liveness process_liveness(const struct mlx_rundb *db, long pid, const char *ident)
{
	char boot[64], ns[32], my_boot[64], my_ns[32];
	unsigned long long start, my_start, now_start;
	char state;
	if (!ident || sscanf(ident, "%63[^:]:%31[^:]:%llu", boot, ns, &start) != 3)
		return UNKNOWN;
	if (sscanf(db->proc_ident, "%63[^:]:%31[^:]:%llu", my_boot, my_ns, &my_start) != 3)
		return UNKNOWN;
	if (strcmp(boot, my_boot) != 0)
		return DEAD; /* the machine rebooted since */
	if (strcmp(ns, my_ns) != 0)
		return UNKNOWN; /* another container: its pids are not ours to see */
	if (proc_stat(pid, &state, &now_start) != 0)
		return DEAD;
	if (state == 'Z' || state == 'X' || now_start != start)
		return DEAD; /* exited, or the pid now belongs to another process */
	return ALIVE;
}

void mlx_rundb_describe_self(char host[256], char user[64], char ident[128])
{
	struct mlx_rundb self;
	describe_self(&self);
	memcpy(host, self.host, 256);
	memcpy(user, self.user, 64);
	memcpy(ident, self.proc_ident, 128);
}

int mlx_rundb_process_ident(long pid, char ident[128])
{
	return process_ident(pid, ident, 128) ? MLX_OK : MLX_ERR_NOTFOUND;
}

long mlx_rundb_end_group(long pgid, const char *ident)
{
	if (pgid <= 1 || mlx_rundb_process_liveness(pgid, ident) != 1)
		return 0;
	return kill(-(pid_t)pgid, SIGKILL) == 0 ? pgid : 0;
}

int mlx_rundb_process_liveness(long pid, const char *ident)
{
	struct mlx_rundb self;
	if (!process_ident((long)getpid(), self.proc_ident, sizeof self.proc_ident))
		return -1;
	enum liveness l = process_liveness(&self, pid, ident);
	return l == ALIVE ? 1 : l == DEAD ? 0 : -1;
}

/* ---- run ids ----------------------------------------------------------- */

static const char base32[] = "0123456789abcdefghjkmnpqrstvwxyz";

static void new_run_id(struct mlx_rundb *db, char id[MLX_RUN_ID_SIZE])
{
	uint64_t ms = (uint64_t)rundb_now_ms() & ((UINT64_C(1) << 48) - 1);
	uint32_t rnd;
	if ((int64_t)ms <= db->last_id_ms && db->last_id_rnd < UINT32_MAX) {
		/* Within one millisecond (or a clock step back) of the last id:
		 * count up from it, so that ids of one handle sort in order. */
		ms = (uint64_t)db->last_id_ms;
		rnd = db->last_id_rnd + 1;
	} else if (getrandom(&rnd, sizeof rnd, GRND_NONBLOCK) != (ssize_t)sizeof rnd) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		rnd = (uint32_t)ts.tv_nsec ^ ((uint32_t)getpid() << 16);
	}
	db->last_id_ms = (int64_t)ms;
	db->last_id_rnd = rnd;
	/* 80 bits, most significant first: 10 digits of time, 6 of randomness
	 * (the 10th digit holds the last 3 bits of time and 2 random bits). */
	for (int i = 0; i < 16; i++) {
		int shift = 75 - 5 * i; /* of the lowest bit of digit i */
		uint64_t v;
		if (shift >= 32)
			v = ms >> (shift - 32);
		else if (shift + 5 <= 32)
			v = (uint64_t)rnd >> shift;
		else
			v = (ms << (32 - shift)) | ((uint64_t)rnd >> shift);
		id[i] = base32[v & 31];
	}
	id[16] = '\0';
}

/* ---- opening ----------------------------------------------------------- */

static int user_version(struct mlx_rundb *db, int *version, struct mlx_err *err)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db->sql, "PRAGMA user_version", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*version = sqlite3_column_int(st, 0);
			rc = SQLITE_OK;
		}
		sqlite3_finalize(st);
	}
	return rc == SQLITE_OK ? MLX_OK : rundb_fail(db, rc, err, "cannot read the schema version");
}

static int migrate(struct mlx_rundb *db, struct mlx_err *err)
{
	int version = 0, rc;
	if ((rc = user_version(db, &version, err)) != MLX_OK)
		return rc;
	if (version == NMIGRATIONS)
		return MLX_OK;
	if ((rc = rundb_begin(db, err)) != MLX_OK)
		return rc;
	/* Read again under the write lock: another process may have migrated. */
	if ((rc = user_version(db, &version, err)) != MLX_OK)
		goto fail;
	if (version > NMIGRATIONS) {
		rc = mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "%s: written by a newer mlx (schema %d; this mlx knows up to %d): upgrade mlx", db->path,
		    version, NMIGRATIONS);
		goto fail;
	}
	for (; version < NMIGRATIONS; version++) {
		int sqlrc = sqlite3_exec(db->sql, migrations[version], NULL, NULL, NULL);
		if (sqlrc != SQLITE_OK) {
			char doing[64];
			snprintf(doing, sizeof doing, "schema migration %d failed", version + 1);
			rc = rundb_fail(db, sqlrc, err, doing);
			goto fail;
		}
	}
	char pragma[48];
	snprintf(pragma, sizeof pragma, "PRAGMA user_version = %d", NMIGRATIONS);
	int sqlrc = sqlite3_exec(db->sql, pragma, NULL, NULL, NULL);
	if (sqlrc != SQLITE_OK) {
		rc = rundb_fail(db, sqlrc, err, "cannot set the schema version");
		goto fail;
	}
	return rundb_commit(db, err);
fail:
	rundb_rollback(db);
	return rc;
}

/* Runs a PRAGMA (a constant: nothing of the caller's goes into it). */
static int pragma(struct mlx_rundb *db, const char *sql, struct mlx_err *err)
{
	int rc = sqlite3_exec(db->sql, sql, NULL, NULL, NULL);
	return rc == SQLITE_OK ? MLX_OK : rundb_fail(db, rc, err, "cannot configure the database");
}

/* A WAL database opened read-only needs its -shm file, which a read-only
 * mount cannot create. Without a -wal file every commit is in the main
 * file, so it can be read as immutable, without -shm: nothing can change it
 * while its directory cannot be written. Returns 0 with db->sql reopened, or
 * MLX_ERR_IO (db->sql is then kept as it was). */
static int reopen_immutable(struct mlx_rundb *db, struct mlx_err *err)
{
	size_t len = strlen(db->path);
	char *wal = malloc(len + 5);
	if (!wal)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	snprintf(wal, len + 5, "%s-wal", db->path);
	int has_wal = access(wal, F_OK) == 0;
	free(wal);
	if (has_wal)
		return err ? err->status : MLX_ERR_IO;
	/* A URI: '%', '?' and '#' in the path are escaped. */
	char *uri = malloc(3 * len + 32), *p = uri;
	if (!uri)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	p += sprintf(p, "file:");
	for (const char *s = db->path; *s; s++)
		p += (*s == '%' || *s == '?' || *s == '#') ? sprintf(p, "%%%02X", (unsigned char)*s)
		                                           : sprintf(p, "%c", *s);
	sprintf(p, "?immutable=1");
	sqlite3 *sql = NULL;
	int sqlrc = sqlite3_open_v2(
	    uri, &sql, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE,
	    NULL);
	free(uri);
	if (sqlrc != SQLITE_OK) {
		sqlite3_close_v2(sql);
		return mlx_err_set(err, MLX_ERR_IO, 0, "cannot open %s: %s", db->path, sqlite3_errstr(sqlrc));
	}
	sqlite3_close_v2(db->sql);
	db->sql = sql;
	return MLX_OK;
}

/* The first connection to open a WAL database reads the whole WAL back to
 * rebuild its index (~1.5 us a page here), checkpointed or not, and every
 * mlx command is such a first connection: at SQLite's checkpoint past 1000
 * pages that read averaged ~0.75 ms of every command. So a handle whose
 * commits left more than WAL_KEEP_MAX pages checkpoints and empties the
 * WAL when it closes (three fsyncs, once in ~28 no-op recipes of 9 pages
 * each, or once at the end of a long run), which keeps that read at ~0.2
 * ms on average; the checkpoints while it writes stay at 1000 pages. */
#define WAL_KEEP_MAX 256
#define WAL_CHECKPOINT_PAGES 1000

/* After each commit of this handle, with the WAL's pages (every process's). */
static int wal_committed(void *arg, sqlite3 *sql, const char *name, int pages)
{
	struct mlx_rundb *db = arg;
	db->wal_pages = pages;
	/* SQLite's own rule, which a WAL hook replaces. */
	if (pages >= WAL_CHECKPOINT_PAGES)
		sqlite3_wal_checkpoint(sql, name);
	return SQLITE_OK;
}

int mlx_rundb_open(const char *path, const struct mlx_rundb_options *opts, struct mlx_rundb **out,
                   struct mlx_err *err)
{
	*out = NULL;
	struct mlx_rundb *db = calloc(1, sizeof *db);
	if (!db || !(db->path = strdup(path))) {
		free(db);
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	}
	db->busy_timeout_ms = opts && opts->busy_timeout_ms > 0 ? opts->busy_timeout_ms : 10000;
	db->flush_interval_ms = opts && opts->flush_interval_ms > 0 ? opts->flush_interval_ms : 1000;
	db->batch_rows = opts && opts->batch_rows > 0 ? opts->batch_rows : 10000;
	pthread_mutex_init(&db->lock, NULL);
	pthread_cond_init(&db->wake, NULL);
	describe_self(db);

	int rc;
	int read_only = opts && opts->read_only;
	int flags = (read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) |
	            SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_EXRESCODE;
	int sqlrc = sqlite3_open_v2(path, &db->sql, flags, NULL);
	if (sqlrc != SQLITE_OK) {
		rc = sqlrc == SQLITE_NOMEM
		         ? mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory")
		         : mlx_err_set(err, MLX_ERR_IO, 0, "cannot open %s: %s", path,
		                       db->sql ? sqlite3_errmsg(db->sql) : sqlite3_errstr(sqlrc));
		goto fail;
	}
	sqlite3_busy_timeout(db->sql, db->busy_timeout_ms);
	/* Each mlx command opens the database once: checkpointing and
	 * deleting the WAL at every close would cost more than the command's
	 * own writes; a handle that leaves it long empties it (wal_committed). */
	sqlite3_db_config(db->sql, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
	/* WAL: readers never block the writer. NORMAL: a commit does not
	 * fsync (a power loss may drop the last commits, never corrupt). */
	if (read_only) {
		/* Nothing may be written: the schema must be current already. */
		int version = 0;
		if ((rc = user_version(db, &version, err)) != MLX_OK &&
		    (rc = reopen_immutable(db, err)) == MLX_OK)
			rc = user_version(db, &version, err);
		if (rc != MLX_OK)
			goto fail;
		if (version != NMIGRATIONS) {
			rc = mlx_err_set(
			    err, MLX_ERR_INVALID, 0,
			    "%s: schema %d, not %d: it must be opened writable once to be migrated", path,
			    version, NMIGRATIONS);
			goto fail;
		}
		*out = db;
		return MLX_OK;
	}
	if ((rc = pragma(db, "PRAGMA journal_mode = WAL", err)) != MLX_OK ||
	    (rc = pragma(db, "PRAGMA synchronous = NORMAL", err)) != MLX_OK ||
	    (rc = pragma(db, "PRAGMA journal_size_limit = 67108864", err)) != MLX_OK ||
	    (rc = migrate(db, err)) != MLX_OK)
		goto fail;
	sqlite3_wal_hook(db->sql, wal_committed, db);
	if ((!opts || !opts->no_reap) && (rc = mlx_rundb_reap(db, NULL, err)) != MLX_OK)
		goto fail;
	*out = db;
	return MLX_OK;
fail:
	if (rc == MLX_ERR_CORRUPT)
		mlx_err_set(err, MLX_ERR_CORRUPT, 0, "%s is not an mlx runs database (%s)", path,
		            sqlite3_errmsg(db->sql));
	struct mlx_err ignored;
	mlx_rundb_close(db, &ignored);
	return rc;
}

int mlx_rundb_close(struct mlx_rundb *db, struct mlx_err *err)
{
	if (!db)
		return MLX_OK;
	rundb_stop_flusher(db);
	int rc = MLX_OK;
	if (db->sql) {
		pthread_mutex_lock(&db->lock);
		rc = rundb_flush_locked(db, err);
		pthread_mutex_unlock(&db->lock);
		for (int i = 0; i < ST_COUNT; i++)
			sqlite3_finalize(db->stmts[i]);
		if (db->wal_pages > WAL_KEEP_MAX) {
			/* Never waiting for a reader: its WAL stays, for now. */
			sqlite3_busy_timeout(db->sql, 0);
			sqlite3_wal_checkpoint_v2(db->sql, NULL, SQLITE_CHECKPOINT_TRUNCATE, NULL, NULL);
		}
		sqlite3_close_v2(db->sql);
	}
	/* After the flush, which retires the markers of buffered ends. */
	rundb_end_slots_close(db);
	rundb_free_buffer(db);
	pthread_cond_destroy(&db->wake);
	pthread_mutex_destroy(&db->lock);
	free(db->path);
	free(db);
	return rc;
}

const char *mlx_rundb_path(const struct mlx_rundb *db)
{
	return db->path;
}

int mlx_rundb_schema_version(struct mlx_rundb *db)
{
	int version = -1;
	struct mlx_err ignored;
	pthread_mutex_lock(&db->lock);
	user_version(db, &version, &ignored);
	pthread_mutex_unlock(&db->lock);
	return version;
}

/* ---- reaping ----------------------------------------------------------- */

#define REAP_MAX 256 /* dead runs marked per call; the rest on the next */

/* The run of the row at st is dead: if it recorded a process group whose
 * leader is still the same process (same boot, namespace and start time:
 * never a reused pid), kills the group, for its mlx and keeper are gone
 * and it could overwrite what a newer run restores. Done whether or not
 * the run can then be marked. Returns the group killed, or 0. */
static long end_group(const struct mlx_rundb *db, sqlite3_stmt *st)
{
	long pgid = (long)sqlite3_column_int64(st, 3);
	const char *ident = (const char *)sqlite3_column_text(st, 4);
	if (pgid <= 1 || !ident || process_liveness(db, pgid, ident) != ALIVE)
		return 0;
	return kill(-(pid_t)pgid, SIGKILL) == 0 ? pgid : 0;
}

int mlx_rundb_set_group(struct mlx_rundb *db, const char *id, long pgid, struct mlx_err *err)
{
	char ident[128];
	if (pgid <= 1)
		return mlx_err_set(err, MLX_ERR_INVALID, EINVAL, "invalid process group %ld", pgid);
	/* Same boot and namespace as this process: only the start is read. */
	char state;
	unsigned long long start;
	if (proc_stat(pgid, &state, &start) != 0)
		return MLX_OK; /* already gone: nothing to end later */
	const char *colon = strrchr(db->proc_ident, ':');
	int prefix = colon ? (int)(colon - db->proc_ident) : 0;
	snprintf(ident, sizeof ident, "%.*s:%llu", prefix, db->proc_ident, start);
	/* Buffered: a transaction of its own would cost each step ~0.1 ms,
	 * for a guard needed only when mlx and its keeper die together. */
	return rundb_buffer_group(db, id, pgid, ident, err);
}

#define GROUP_KILLED "; its process group %ld was still running and has been killed"

/* Ends the dead run id in the open transaction: as its end marker says, if
 * its process wrote one (FAILED, or KILLED if it was interrupted: its end
 * could not be written, so what it logged last may be missing), else
 * KILLED. group, if not 0, is the process group of the run that was found
 * still running and killed (end_group): the message says so. Sets *marked
 * when there is a marker file to remove. */
static int end_dead_run(struct mlx_rundb *db, const char *id, long pid, long group, int *marked,
                        struct mlx_err *err)
{
	struct rundb_end_marker m;
	int found = rundb_end_marker_read(db, id, pid, &m);
	*marked = found >= 0;
	sqlite3_stmt *st;
	int rc;
	if (found == 1) {
		int interrupted = strcmp(m.status, "KILLED") == 0;
		size_t size = strlen(m.message) + strlen(m.why) + strlen(m.status) + 256;
		char *message = malloc(size);
		if (!message) {
			free(m.text);
			return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
		}
		if (m.message[0])
			snprintf(message, size, "%s (its end could not be recorded then: %s)", m.message,
			         m.why);
		else
			snprintf(message, size, "it ended %s, but its end could not be recorded then: %s",
			         m.status, m.why);
		if (group > 0)
			snprintf(message + strlen(message), size - strlen(message), GROUP_KILLED, group);
		if ((rc = rundb_stmt(db, ST_FINISH_RUN, &st, err)) == MLX_OK) {
			sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 2, interrupted ? "KILLED" : "FAILED", -1, SQLITE_STATIC);
			sqlite3_bind_text(st, 3, message, -1, SQLITE_TRANSIENT);
			sqlite3_bind_int64(st, 4, m.end_ms);
			if (m.exit_code >= 0)
				sqlite3_bind_int(st, 5, m.exit_code);
			if (m.signal > 0)
				sqlite3_bind_int(st, 6, m.signal);
			rc = rundb_exec(db, st, err, "cannot record the end of a dead run");
			sqlite3_clear_bindings(st);
		}
		free(message);
		free(m.text);
		return rc;
	}
	char message[384];
	int n = snprintf(message, sizeof message,
	                 "its mlx process (pid %ld on %s) ended without finishing it", pid, db->host);
	if (group > 0 && n > 0 && (size_t)n < sizeof message)
		snprintf(message + n, sizeof message - (size_t)n, GROUP_KILLED, group);
	if ((rc = rundb_stmt(db, ST_REAP, &st, err)) != MLX_OK)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, message, -1, SQLITE_TRANSIENT);
	sqlite3_bind_text(st, 3, "KILLED", -1, SQLITE_STATIC);
	return rundb_exec(db, st, err, "cannot mark a dead run KILLED");
}

int mlx_rundb_reap(struct mlx_rundb *db, int *killed, struct mlx_err *err)
{
	char dead[REAP_MAX][MLX_RUN_ID_SIZE];
	long dead_pid[REAP_MAX], dead_group[REAP_MAX];
	int ndead = 0, rc = MLX_OK;
	if (killed)
		*killed = 0;
	pthread_mutex_lock(&db->lock);
	sqlite3_stmt *st;
	if ((rc = rundb_stmt(db, ST_RUNNING_HERE, &st, err)) != MLX_OK)
		goto out;
	sqlite3_bind_text(st, 1, db->host, -1, SQLITE_STATIC);
	int sqlrc;
	while (ndead < REAP_MAX && (sqlrc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *id = (const char *)sqlite3_column_text(st, 0);
		long pid = (long)sqlite3_column_int64(st, 1);
		const char *ident = (const char *)sqlite3_column_text(st, 2);
		if (id && strlen(id) < MLX_RUN_ID_SIZE && process_liveness(db, pid, ident) == DEAD) {
			strcpy(dead[ndead], id);
			dead_pid[ndead] = pid;
			dead_group[ndead++] = end_group(db, st);
		}
	}
	if (ndead < REAP_MAX && sqlrc != SQLITE_DONE)
		rc = rundb_fail(db, sqlrc, err, "cannot look for dead runs");
	sqlite3_reset(st);
	if (rc != MLX_OK || ndead == 0)
		goto out;
	if ((rc = rundb_begin(db, err)) != MLX_OK)
		goto out;
	int marked[REAP_MAX];
	for (int i = 0; i < ndead; i++) {
		if ((rc = end_dead_run(db, dead[i], dead_pid[i], dead_group[i], &marked[i], err)) != MLX_OK)
			break;
		if (killed)
			*killed += sqlite3_changes(db->sql);
	}
	if (rc == MLX_OK)
		rc = rundb_commit(db, err);
	if (rc != MLX_OK) {
		rundb_rollback(db);
		if (killed)
			*killed = 0;
	} else {
		/* Only once the ends are committed: a marker is the only record. */
		for (int i = 0; i < ndead; i++) {
			if (marked[i])
				rundb_end_marker_remove(db, dead[i]);
			int seen = 0; /* each dead process's slots once */
			for (int j = 0; j < i && !seen; j++)
				seen = dead_pid[j] == dead_pid[i];
			if (!seen)
				rundb_end_slots_remove(db, dead_pid[i]);
		}
	}
out:
	pthread_mutex_unlock(&db->lock);
	return rc;
}

/* ---- starting and finishing runs ---------------------------------------- */

static void bind_text_or_null(sqlite3_stmt *st, int i, const char *s)
{
	if (s)
		sqlite3_bind_text(st, i, s, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

void rundb_bind_end(sqlite3_stmt *st, const char *id, const struct mlx_run_end *end)
{
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, end->status, -1, SQLITE_STATIC);
	bind_text_or_null(st, 3, end->message);
	sqlite3_bind_int64(st, 4, end->end_ms > 0 ? end->end_ms : rundb_now_ms());
	if (end->exit_code >= 0)
		sqlite3_bind_int(st, 5, end->exit_code);
	if (end->signal > 0)
		sqlite3_bind_int(st, 6, end->signal);
	if (end->cpu_seconds >= 0)
		sqlite3_bind_double(st, 7, end->cpu_seconds);
	if (end->wall_seconds >= 0)
		sqlite3_bind_double(st, 8, end->wall_seconds);
	if (end->peak_rss >= 0)
		sqlite3_bind_int64(st, 9, end->peak_rss);
}

int mlx_rundb_start(struct mlx_rundb *db, const struct mlx_run_start *run, char id[MLX_RUN_ID_SIZE],
                    struct mlx_err *err)
{
	int rc;
	pthread_mutex_lock(&db->lock);
	new_run_id(db, id);
	/* Buffered ends go in the same transaction: the step started now finds
	 * the runs it waited for ended, with all they logged, at no
	 * transaction of their own. */
	int with_buffer = run->with_ends && db->nends > 0;
	if (with_buffer && (rc = rundb_begin(db, err)) != MLX_OK)
		goto out;
	if (with_buffer && (rc = rundb_write_buffer(db, err)) != MLX_OK)
		goto out;
	sqlite3_stmt *st;
	if ((rc = rundb_stmt(db, ST_INSERT_RUN, &st, err)) != MLX_OK)
		goto out;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	bind_text_or_null(st, 2, run->parent_id);
	bind_text_or_null(st, 3, run->recipe);
	bind_text_or_null(st, 4, run->recipe_hash);
	bind_text_or_null(st, 5, run->step);
	bind_text_or_null(st, 6, run->step_key);
	sqlite3_bind_int64(st, 7, run->start_ms > 0 ? run->start_ms : rundb_now_ms());
	bind_text_or_null(st, 8, run->git_commit);
	bind_text_or_null(st, 9, run->git_branch);
	if (run->git_dirty >= 0)
		sqlite3_bind_int(st, 10, run->git_dirty != 0);
	sqlite3_bind_text(st, 11, db->host, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 12, db->user, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 13, (sqlite3_int64)getpid());
	sqlite3_bind_text(st, 14, db->proc_ident, -1, SQLITE_STATIC);
	bind_text_or_null(st, 15, run->command);
	bind_text_or_null(st, 16, run->log_path);
	rc = rundb_exec(db, st, err, "cannot record a new run");
	sqlite3_clear_bindings(st);
	/* The slots of the ends just written are free for the new run's. */
	if (rc == MLX_OK && with_buffer && (rc = rundb_commit(db, err)) == MLX_OK)
		rundb_clear_buffer(db);
	if (rc == MLX_OK)
		rundb_end_marker_reserve(db, id);
out:
	if (rc != MLX_OK && with_buffer) {
		rundb_rollback(db);
		rundb_buffer_unwritten(db, rc, err ? err->msg : "the database could not be written");
	}
	pthread_mutex_unlock(&db->lock);
	return rc;
}

static int valid_end_status(const char *s)
{
	static const char *const statuses[] = {"FINISHED", "FAILED", "KILLED", "CACHED"};
	for (size_t i = 0; s && i < sizeof statuses / sizeof statuses[0]; i++)
		if (strcmp(s, statuses[i]) == 0)
			return 1;
	return 0;
}

/* After an UPDATE that matched no RUNNING run: says why. */
static int not_running(struct mlx_rundb *db, const char *id, struct mlx_err *err)
{
	sqlite3_stmt *st;
	int rc = rundb_stmt(db, ST_RUN_STATUS, &st, err);
	if (rc != MLX_OK)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	if (sqlite3_step(st) == SQLITE_ROW)
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "run %s is not running: it is %s already", id,
		                 (const char *)sqlite3_column_text(st, 0));
	else
		rc = mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "no run %s in %s", id, db->path);
	sqlite3_reset(st);
	return rc;
}

int mlx_rundb_finish(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end, struct mlx_err *err)
{
	if (!valid_end_status(end->status))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "invalid run status '%s' (FINISHED, FAILED, KILLED or CACHED)",
		                   end->status ? end->status : "(null)");
	int rc;
	pthread_mutex_lock(&db->lock);
	if ((rc = rundb_begin(db, err)) != MLX_OK)
		goto unrecorded;
	if ((rc = rundb_write_buffer(db, err)) != MLX_OK)
		goto fail;
	sqlite3_stmt *st;
	if ((rc = rundb_stmt(db, ST_FINISH_RUN, &st, err)) != MLX_OK)
		goto fail;
	rundb_bind_end(st, id, end);
	rc = rundb_exec(db, st, err, "cannot record the end of a run");
	sqlite3_clear_bindings(st);
	if (rc != MLX_OK)
		goto fail;
	int changed = sqlite3_changes(db->sql);
	/* The points are worth keeping even if the run was not RUNNING. */
	if ((rc = rundb_commit(db, err)) != MLX_OK)
		goto fail;
	rundb_clear_buffer(db);
	/* A marker left by an earlier attempt is out of date now; an empty
	 * one serves the next run. */
	rundb_end_marker_retire(db, id);
	if (!changed)
		rc = not_running(db, id, err);
	goto out;
fail:
	rundb_rollback(db);
unrecorded:
	if (rc == MLX_ERR_IO || rc == MLX_ERR_BUSY) {
		const char *why = err ? err->msg : "the database could not be written";
		rundb_end_marker_write(db, id, end, why);
		rundb_buffer_unwritten(db, rc, why);
	}
out:
	pthread_mutex_unlock(&db->lock);
	return rc;
}

int mlx_rundb_finish_buffered(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end,
                              struct mlx_err *err)
{
	if (!valid_end_status(end->status))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "invalid run status '%s' (FINISHED, FAILED, KILLED or CACHED)",
		                   end->status ? end->status : "(null)");
	return rundb_buffer_end(db, id, end, err);
}
