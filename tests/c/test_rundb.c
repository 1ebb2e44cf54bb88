/* test_rundb.c — core/rundb*.c: schema, runs, buffered metrics, reaping,
 * concurrent writers, read-only queries and changes to ended runs, on
 * real SQLite files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "rundb.h"

struct fixture {
	char dir[64];
	char path[128];
};

static int make_db_dir(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	strcpy(f->dir, "/tmp/mlx-test-rundb-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->path, sizeof f->path, "%s/runs.db", f->dir);
	*state = f;
	return 0;
}

static int remove_db_dir(void **state)
{
	struct fixture *f = *state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	int rc = system(cmd);
	free(f);
	return rc == 0 ? 0 : -1;
}

static struct mlx_rundb *open_db(const char *path, const struct mlx_rundb_options *opts)
{
	struct mlx_rundb *db = NULL;
	struct mlx_err err;
	int rc = mlx_rundb_open(path, opts, &db, &err);
	if (rc != MLX_OK)
		fail_msg("open %s: %s", path, err.msg);
	return db;
}

/* Runs a one-value SQL query through a separate plain SQLite connection,
 * as another process would see the file. */
static double peek(const char *path, const char *sql)
{
	sqlite3 *raw;
	sqlite3_stmt *st;
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	sqlite3_busy_timeout(raw, 5000);
	assert_int_equal(sqlite3_prepare_v2(raw, sql, -1, &st, NULL), SQLITE_OK);
	double v = NAN;
	if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL)
		v = sqlite3_column_double(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(raw);
	return v;
}

static void raw_exec(const char *path, const char *sql)
{
	sqlite3 *raw;
	assert_int_equal(sqlite3_open(path, &raw), SQLITE_OK);
	sqlite3_busy_timeout(raw, 5000);
	assert_int_equal(sqlite3_exec(raw, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(raw);
}

static const struct mlx_run_end FINISHED = {"FINISHED", NULL, 0, 0, -1, -1, -1, 0};

static void open_creates_the_latest_schema_and_refuses_newer_ones(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	assert_int_equal(mlx_rundb_schema_version(db), mlx_rundb_schema_latest());
	assert_string_equal(mlx_rundb_path(db), f->path);
	assert_int_equal(mlx_rundb_close(db, NULL), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'latest_metrics'") == 1);

	db = open_db(f->path, NULL); /* reopening migrates nothing */
	assert_int_equal(mlx_rundb_schema_version(db), mlx_rundb_schema_latest());
	mlx_rundb_close(db, NULL);

	raw_exec(f->path, "PRAGMA user_version = 999");
	struct mlx_err err;
	assert_int_equal(mlx_rundb_open(f->path, NULL, &db, &err), MLX_ERR_INVALID);
	assert_null(db);
	assert_non_null(strstr(err.msg, "newer mlx (schema 999"));

	char junk[160];
	snprintf(junk, sizeof junk, "%s/junk.db", f->dir);
	FILE *fp = fopen(junk, "w");
	fputs("this is not a database, but it is long enough to have a header page ...........", fp);
	fclose(fp);
	assert_int_equal(mlx_rundb_open(junk, NULL, &db, &err), MLX_ERR_CORRUPT);
	assert_non_null(strstr(err.msg, "is not an mlx runs database"));

	assert_int_equal(mlx_rundb_open("/nonexistent-dir/runs.db", NULL, &db, &err), MLX_ERR_IO);
	assert_non_null(strstr(err.msg, "cannot open /nonexistent-dir/runs.db"));
}

/* A database made before migration 5 loses the index that the covering
 * runs_by_parent_start made redundant, and keeps its runs and the index
 * that finds a run's steps. */
static void migration_5_drops_the_redundant_parent_index(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	struct mlx_run_start start = {.git_dirty = -1};
	char parent[MLX_RUN_ID_SIZE], child[MLX_RUN_ID_SIZE];
	assert_int_equal(mlx_rundb_start(db, &start, parent, NULL), MLX_OK);
	start.parent_id = parent;
	assert_int_equal(mlx_rundb_start(db, &start, child, NULL), MLX_OK);
	assert_int_equal(mlx_rundb_close(db, NULL), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'runs_by_parent'") == 0);

	/* As version 4 left it. */
	raw_exec(f->path, "CREATE INDEX runs_by_parent ON runs (parent_id) WHERE parent_id IS NOT NULL;"
	                  " PRAGMA user_version = 4");
	db = open_db(f->path, NULL);
	assert_int_equal(mlx_rundb_schema_version(db), mlx_rundb_schema_latest());
	assert_int_equal(mlx_rundb_close(db, NULL), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM sqlite_master WHERE name = 'runs_by_parent'") == 0);
	assert_true(peek(f->path, "SELECT count(*) FROM runs") == 2);
	char sql[200];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE parent_id = '%s'", parent);
	assert_true(peek(f->path, sql) == 1);
	assert_true(peek(f->path, "SELECT count(*) FROM (SELECT 1 FROM pragma_index_list('runs')"
	                          " WHERE name = 'runs_by_parent_start')") == 1);
}

static void run_ids_are_short_unique_and_sort_by_time(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	struct mlx_run_start start = {.git_dirty = -1};
	enum { N = 2000 };
	static char ids[N][MLX_RUN_ID_SIZE];
	struct mlx_err err;
	assert_int_equal(mlx_rundb_start(db, &start, ids[0], &err), MLX_OK);
	struct timespec pause = {0, 3 * 1000000};
	nanosleep(&pause, NULL);
	for (int i = 1; i < N; i++)
		assert_int_equal(mlx_rundb_start(db, &start, ids[i], &err), MLX_OK);
	for (int i = 0; i < N; i++) {
		assert_int_equal(strlen(ids[i]), 16);
		assert_int_equal(strspn(ids[i], "0123456789abcdefghjkmnpqrstvwxyz"), 16);
	}
	assert_true(strcmp(ids[0], ids[1]) < 0); /* 3 ms later sorts later */
	assert_true(peek(f->path, "SELECT count(DISTINCT id) FROM runs") == N);
	mlx_rundb_close(db, NULL);
}

static void a_run_records_its_owner_and_ends_once(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	struct mlx_run_start start = {
	    .recipe = "train.lua", .command = "mlx recipe train.lua", .git_commit = "abc", .git_dirty = 1};
	char id[MLX_RUN_ID_SIZE], sql[256];
	struct mlx_err err;
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	snprintf(sql, sizeof sql,
	         "SELECT pid FROM runs WHERE id = '%s' AND status = 'RUNNING' AND git_dirty = 1", id);
	assert_true(peek(f->path, sql) == (double)getpid());

	struct mlx_run_end end = {"FAILED", "boom", 3, 0, 1.5, -1, 4096, 0};
	assert_int_equal(mlx_rundb_finish(db, id, &end, &err), MLX_OK);
	snprintf(sql, sizeof sql,
	         "SELECT exit_code + cpu_seconds + peak_rss FROM runs WHERE id = '%s' AND status = 'FAILED'"
	         " AND message = 'boom' AND wall_seconds >= 0 AND end_time >= start_time",
	         id);
	assert_true(peek(f->path, sql) == 3 + 1.5 + 4096);

	assert_int_equal(mlx_rundb_finish(db, id, &FINISHED, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "it is FAILED already"));
	assert_int_equal(mlx_rundb_finish(db, "0000000000000000", &FINISHED, &err), MLX_ERR_NOTFOUND);
	struct mlx_run_end bad = FINISHED;
	bad.status = "DONE";
	assert_int_equal(mlx_rundb_finish(db, id, &bad, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "invalid run status 'DONE'"));
	mlx_rundb_close(db, NULL);
}

static void metrics_keep_every_step_and_the_latest_value(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	char id[MLX_RUN_ID_SIZE], sql[256];
	struct mlx_err err;
	struct mlx_run_start start = {.git_dirty = -1};
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	int64_t step = -1;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(
		    mlx_rundb_log_metric(db, id, "loss", MLX_STEP_AUTO, 1.0 / (i + 1), 0, &step, &err),
		    MLX_OK);
		assert_int_equal(step, i);
	}
	assert_int_equal(mlx_rundb_log_metric(db, id, "acc", 10, 0.5, 0, NULL, &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_metric(db, id, "acc", 5, 0.9, 0, NULL, &err), MLX_OK); /* older step */
	assert_int_equal(mlx_rundb_log_metric(db, id, "acc", 10, 0.75, 0, NULL, &err), MLX_OK); /* replaces */
	assert_int_equal(mlx_rundb_log_metric(db, id, "nan", 0, NAN, 0, NULL, &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_metric(db, id, "", 0, 1, 0, NULL, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_rundb_log_metric(db, id, "a\nb", 0, 1, 0, NULL, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_rundb_finish(db, id, &FINISHED, &err), MLX_OK);

	snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics WHERE run_id = '%s' AND key = 'loss'", id);
	assert_true(peek(f->path, sql) == 3);
	snprintf(sql, sizeof sql, "SELECT value FROM latest_metrics WHERE run_id = '%s' AND key = 'loss'",
	         id);
	assert_true(peek(f->path, sql) == 1.0 / 3);
	snprintf(sql, sizeof sql,
	         "SELECT value FROM latest_metrics WHERE run_id = '%s' AND key = 'acc' AND step = 10", id);
	assert_true(peek(f->path, sql) == 0.75);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM metrics WHERE run_id = '%s' AND key = 'acc'", id);
	assert_true(peek(f->path, sql) == 2);
	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM metrics WHERE run_id = '%s' AND key = 'nan' AND value IS NULL", id);
	assert_true(peek(f->path, sql) == 1);
	mlx_rundb_close(db, NULL);

	/* Another handle continues the steps after those in the database. */
	db = open_db(f->path, NULL);
	assert_int_equal(mlx_rundb_log_metric(db, id, "loss", MLX_STEP_AUTO, 0.1, 0, &step, &err), MLX_OK);
	assert_int_equal(step, 3);
	mlx_rundb_close(db, NULL);
	snprintf(sql, sizeof sql, "SELECT value FROM latest_metrics WHERE run_id = '%s' AND key = 'loss'",
	         id);
	assert_true(peek(f->path, sql) == 0.1);
}

static void params_tags_and_artifacts(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	char id[MLX_RUN_ID_SIZE], sql[256];
	struct mlx_err err;
	struct mlx_run_start start = {.git_dirty = -1};
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_param(db, id, "lr", "0.1", &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_param(db, id, "lr", "0.05", &err), MLX_OK); /* replaces */
	assert_int_equal(mlx_rundb_log_param(db, id, "model", "resnet", &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_param(db, id, "pad", " 1", &err), MLX_OK);
	assert_int_equal(mlx_rundb_set_tag(db, id, "team", "vision", &err), MLX_OK);
	struct mlx_run_artifact art = {"out", "model.bin", "ab12", 10, 1};
	assert_int_equal(mlx_rundb_log_artifact(db, id, &art, &err), MLX_OK);
	art.role = "sideways";
	assert_int_equal(mlx_rundb_log_artifact(db, id, &art, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_rundb_flush(db, &err), MLX_OK);

	snprintf(sql, sizeof sql,
	         "SELECT num FROM params WHERE run_id = '%s' AND key = 'lr' AND value = '0.05'", id);
	assert_true(peek(f->path, sql) == 0.05);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM params WHERE run_id = '%s' AND num IS NULL", id);
	assert_true(peek(f->path, sql) == 2); /* "resnet" and " 1" are text only */
	snprintf(sql, sizeof sql, "SELECT count(*) FROM tags WHERE run_id = '%s' AND value = 'vision'", id);
	assert_true(peek(f->path, sql) == 1);
	snprintf(sql, sizeof sql,
	         "SELECT size FROM artifacts WHERE run_id = '%s' AND role = 'out' AND hash = 'ab12'", id);
	assert_true(peek(f->path, sql) == 10);
	mlx_rundb_close(db, NULL);
}

static void points_are_written_by_batch_and_by_age(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb_options opts = {.batch_rows = 3, .flush_interval_ms = 60000};
	struct mlx_rundb *db = open_db(f->path, &opts);
	char id[MLX_RUN_ID_SIZE];
	struct mlx_err err;
	struct mlx_run_start start = {.git_dirty = -1};
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	mlx_rundb_log_metric(db, id, "m", 0, 1, 0, NULL, &err);
	mlx_rundb_log_metric(db, id, "m", 1, 1, 0, NULL, &err);
	assert_true(peek(f->path, "SELECT count(*) FROM metrics") == 0); /* buffered */
	mlx_rundb_log_metric(db, id, "m", 2, 1, 0, NULL, &err);
	assert_true(peek(f->path, "SELECT count(*) FROM metrics") == 3); /* a full batch */
	mlx_rundb_close(db, NULL);

	/* A lone point reaches the file after the interval with no further call. */
	opts = (struct mlx_rundb_options){.flush_interval_ms = 40};
	db = open_db(f->path, &opts);
	mlx_rundb_log_metric(db, id, "lone", 0, 1, 0, NULL, &err);
	assert_true(peek(f->path, "SELECT count(*) FROM metrics WHERE key = 'lone'") == 0);
	struct timespec pause = {0, 300 * 1000000};
	nanosleep(&pause, NULL);
	assert_true(peek(f->path, "SELECT count(*) FROM metrics WHERE key = 'lone'") == 1);
	mlx_rundb_close(db, NULL);
}

static void dead_owners_are_reaped_live_ones_kept(void **state)
{
	struct fixture *f = *state;
	char live[MLX_RUN_ID_SIZE], sql[256];
	struct mlx_err err;
	struct mlx_run_start start = {.git_dirty = -1};

	/* A child starts a run, logs a point and ends without finishing it. */
	pid_t child = fork();
	if (child == 0) {
		struct mlx_rundb *cdb;
		char id[MLX_RUN_ID_SIZE];
		if (mlx_rundb_open(f->path, NULL, &cdb, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, id, NULL) != MLX_OK ||
		    mlx_rundb_log_metric(cdb, id, "loss", 0, 1, 0, NULL, NULL) != MLX_OK ||
		    mlx_rundb_close(cdb, NULL) != MLX_OK)
			_exit(1);
		_exit(0);
	}
	int status;
	waitpid(child, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);

	struct mlx_rundb_options opts = {.no_reap = 1};
	struct mlx_rundb *db = open_db(f->path, &opts);
	assert_int_equal(mlx_rundb_start(db, &start, live, &err), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'RUNNING'") == 2);

	/* A run whose pid is ours but whose start time differs: pid reuse. */
	snprintf(sql, sizeof sql,
	         "INSERT INTO runs (id, status, start_time, host, pid, proc_start)"
	         " SELECT '00000000000000zz', 'RUNNING', start_time, host, pid,"
	         " rtrim(proc_start, '0123456789') || '1' FROM runs WHERE id = '%s'",
	         live);
	raw_exec(f->path, sql);
	int killed = -1;
	assert_int_equal(mlx_rundb_reap(db, &killed, &err), MLX_OK);
	assert_int_equal(killed, 2);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE status = 'RUNNING' AND id = '%s'", live);
	assert_true(peek(f->path, sql) == 1);
	assert_true(peek(f->path,
	                 "SELECT count(*) FROM runs WHERE status = 'KILLED'"
	                 " AND message LIKE '%ended without finishing it' AND end_time >= start_time") == 2);
	assert_int_equal(mlx_rundb_reap(db, &killed, &err), MLX_OK);
	assert_int_equal(killed, 0);
	/* Runs of other hosts are not ours to judge. */
	raw_exec(f->path, "INSERT INTO runs (id, status, start_time, host, pid, proc_start)"
	                  " VALUES ('00000000000000yy', 'RUNNING', 0, 'elsewhere', 1, 'a:b:1')");
	assert_int_equal(mlx_rundb_reap(db, &killed, &err), MLX_OK);
	assert_int_equal(killed, 0);
	mlx_rundb_close(db, NULL);
}

static void an_end_that_cannot_be_written_is_recorded_later(void **state)
{
	struct fixture *f = *state;
	struct mlx_run_start start = {.git_dirty = -1};
	char marker[192];

	/* A child starts a run; when it ends, another connection holds the
	 * database (as a full disk would refuse it), and the child exits. */
	pid_t child = fork();
	if (child == 0) {
		struct mlx_rundb_options opts = {.busy_timeout_ms = 50};
		struct mlx_rundb *cdb;
		char id[MLX_RUN_ID_SIZE];
		sqlite3 *raw;
		if (mlx_rundb_open(f->path, &opts, &cdb, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, id, NULL) != MLX_OK ||
		    sqlite3_open(f->path, &raw) != SQLITE_OK ||
		    sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		struct mlx_run_end end = {"FAILED", "train.py: No space left on device", 1, 0, -1, -1, -1, 0};
		struct mlx_err err;
		if (mlx_rundb_finish(cdb, id, &end, &err) != MLX_ERR_BUSY)
			_exit(2);
		_exit(0); /* without closing: the process is gone */
	}
	int status;
	waitpid(child, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'RUNNING'") == 1);
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE status = 'RUNNING' AND pid = %ld",
	         (long)child);
	assert_true(peek(f->path, sql) == 1);

	/* The next writable open records it from the marker, and removes it. */
	struct mlx_rundb *db = open_db(f->path, NULL);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'FAILED' AND exit_code = 1"
	                          " AND message LIKE 'train.py: No space left on device"
	                          " (its end could not be recorded then: %busy%'") == 1);
	mlx_rundb_close(db, NULL);
	snprintf(marker, sizeof marker, "%s-end-", f->path);
	char cmd[256];
	snprintf(cmd, sizeof cmd, "ls '%s'* >/dev/null 2>&1", marker);
	assert_int_not_equal(system(cmd), 0);

	/* A run holds one of its handle's slots while it runs (a run killed
	 * before its end leaves it saying nothing); the slot waits for the
	 * next run once the end is recorded, and goes with the handle. */
	db = open_db(f->path, NULL);
	char id[MLX_RUN_ID_SIZE];
	struct mlx_err err;
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	snprintf(marker, sizeof marker, "%s-end-slot-%ld-0", f->path, (long)getpid());
	assert_int_equal(access(marker, F_OK), 0);
	assert_int_equal(mlx_rundb_finish(db, id, &FINISHED, &err), MLX_OK);
	assert_int_equal(access(marker, F_OK), 0);
	mlx_rundb_close(db, NULL);
	assert_int_not_equal(access(marker, F_OK), 0);
}

/* How many files named "<db path>-end-*" exist. */
static int end_files(const char *path)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "exit $(ls '%s'-end-* 2>/dev/null | wc -l)", path);
	return WEXITSTATUS(system(cmd));
}

static void a_runs_end_marker_is_a_slot_reused_by_the_next_run(void **state)
{
	struct fixture *f = *state;
	struct mlx_run_start start = {.git_dirty = -1};
	struct mlx_err err;
	char id[MLX_RUN_ID_SIZE], other[MLX_RUN_ID_SIZE], slot[192];
	snprintf(slot, sizeof slot, "%s-end-slot-%ld-0", f->path, (long)getpid());

	/* The slot of a finished run is the next run's marker: no new inode
	 * and no rename per run; a second run at once takes a second slot. */
	struct mlx_rundb *db = open_db(f->path, NULL);
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	struct stat st;
	assert_int_equal(stat(slot, &st), 0);
	ino_t ino = st.st_ino;
	assert_int_equal(st.st_size, 4096);
	assert_int_equal(mlx_rundb_finish(db, id, &FINISHED, &err), MLX_OK);
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	assert_int_equal(stat(slot, &st), 0);
	assert_true(st.st_ino == ino);
	assert_int_equal(end_files(f->path), 1);
	assert_int_equal(mlx_rundb_start(db, &start, other, &err), MLX_OK);
	assert_int_equal(end_files(f->path), 2);
	assert_int_equal(mlx_rundb_finish(db, id, &FINISHED, &err), MLX_OK);
	assert_int_equal(mlx_rundb_finish(db, other, &FINISHED, &err), MLX_OK);
	assert_int_equal(end_files(f->path), 2);
	/* Closing the handle removes its slots. */
	mlx_rundb_close(db, NULL);
	assert_int_equal(end_files(f->path), 0);

	/* A process killed with a free slot and a running run: whoever reaps
	 * the run removes both files. */
	pid_t child = fork();
	if (child == 0) {
		struct mlx_rundb *cdb;
		char cid[MLX_RUN_ID_SIZE];
		if (mlx_rundb_open(f->path, NULL, &cdb, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, cid, NULL) != MLX_OK ||
		    mlx_rundb_finish(cdb, cid, &FINISHED, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, cid, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, cid, NULL) != MLX_OK ||
		    mlx_rundb_finish(cdb, cid, &FINISHED, NULL) != MLX_OK)
			_exit(1);
		_exit(0); /* without closing: the process is gone */
	}
	int status;
	waitpid(child, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_int_equal(end_files(f->path), 2); /* the running run's slot and the free one */
	db = open_db(f->path, NULL);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'KILLED'") == 1);
	assert_int_equal(end_files(f->path), 0);
	mlx_rundb_close(db, NULL);

	/* A handle closed while its slot holds an end that could not be
	 * recorded leaves it under the run's own name, and the reaper of its
	 * process records it from there. */
	child = fork();
	if (child == 0) {
		struct mlx_rundb_options opts = {.busy_timeout_ms = 50};
		struct mlx_rundb *cdb;
		char cid[MLX_RUN_ID_SIZE];
		sqlite3 *raw;
		if (mlx_rundb_open(f->path, &opts, &cdb, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, cid, NULL) != MLX_OK ||
		    sqlite3_open(f->path, &raw) != SQLITE_OK ||
		    sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		struct mlx_run_end end = {"FAILED", "out of memory", 137, 0, -1, -1, -1, 0};
		if (mlx_rundb_finish(cdb, cid, &end, NULL) != MLX_ERR_BUSY)
			_exit(2);
		mlx_rundb_close(cdb, NULL);
		char named[192];
		snprintf(named, sizeof named, "%s-end-%s", f->path, cid);
		_exit(access(named, F_OK) == 0 && end_files(f->path) == 1 ? 0 : 3);
	}
	waitpid(child, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	db = open_db(f->path, NULL);
	assert_true(peek(f->path,
	                 "SELECT count(*) FROM runs WHERE status = 'FAILED' AND exit_code = 137"
	                 " AND message LIKE 'out of memory (its end could not be recorded then: %'") == 1);
	assert_int_equal(end_files(f->path), 0);
	mlx_rundb_close(db, NULL);
}

/* A pipeline's step runs end in batches: a buffered end is written with
 * the next flush or start (or once MAX_ENDS, 32, are waiting), its marker
 * kept meanwhile and its end time the moment it was given. */
static void buffered_ends_are_written_in_batches(void **state)
{
	struct fixture *f = *state;
	struct mlx_run_start start = {.git_dirty = -1};
	struct mlx_err err;
	char ids[40][MLX_RUN_ID_SIZE], marker[192];
	struct mlx_rundb *db = open_db(f->path, NULL);
	assert_int_equal(mlx_rundb_start(db, &start, ids[0], &err), MLX_OK);
	struct mlx_run_end end = {"FINISHED", NULL, 0, 0, 0.25, 1.5, 8192, 0};
	int64_t before = (int64_t)time(NULL) * 1000 - 1000;
	assert_int_equal(mlx_rundb_finish_buffered(db, ids[0], &end, &err), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'RUNNING'") == 1);
	snprintf(marker, sizeof marker, "%s-end-slot-%ld-0", f->path, (long)getpid());
	struct stat st;
	assert_int_equal(stat(marker, &st), 0);
	ino_t ino = st.st_ino;
	assert_int_equal(mlx_rundb_flush(db, &err), MLX_OK);
	char sql[256];
	snprintf(sql, sizeof sql,
	         "SELECT exit_code + cpu_seconds + wall_seconds + peak_rss FROM runs WHERE id = '%s'"
	         " AND status = 'FINISHED' AND end_time >= %lld",
	         ids[0], (long long)before);
	assert_true(peek(f->path, sql) == 0.25 + 1.5 + 8192);
	assert_int_equal(end_files(f->path), 1); /* the slot, free now */
	struct mlx_run_end bad = end;
	bad.status = "DONE";
	assert_int_equal(mlx_rundb_finish_buffered(db, ids[0], &bad, &err), MLX_ERR_INVALID);

	/* 40 runs: the 32nd end writes the batch, the rest wait. Their
	 * slots are free again, for the runs that start next. */
	for (int i = 0; i < 40; i++)
		assert_int_equal(mlx_rundb_start(db, &start, ids[i], &err), MLX_OK);
	assert_int_equal(end_files(f->path), 40);
	for (int i = 0; i < 40; i++)
		assert_int_equal(mlx_rundb_finish_buffered(db, ids[i], &end, &err), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'FINISHED'") == 33);
	assert_int_equal(end_files(f->path), 40); /* 32 free slots, 8 held */
	assert_int_equal(stat(marker, &st), 0);
	assert_true(st.st_ino == ino); /* the first slot, never made again */
	/* A start leaves them waiting; one with_ends writes them with it: a
	 * step started after those it depends on finds them ended. Neither
	 * makes a marker: both take a free slot. */
	assert_int_equal(mlx_rundb_start(db, &start, ids[1], &err), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'FINISHED'") == 33);
	assert_int_equal(mlx_rundb_finish_buffered(db, ids[1], &end, &err), MLX_OK);
	struct mlx_run_start after = start;
	after.with_ends = 1;
	assert_int_equal(mlx_rundb_start(db, &after, ids[0], &err), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'FINISHED'") == 42);
	assert_int_equal(end_files(f->path), 40);
	assert_int_equal(mlx_rundb_finish(db, ids[0], &FINISHED, &err), MLX_OK);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'RUNNING'") == 0);
	mlx_rundb_close(db, NULL);
	assert_int_equal(end_files(f->path), 0);

	/* A batch that cannot be written leaves each end in its marker; the
	 * next writable open records them once the process is gone. */
	pid_t child = fork();
	if (child == 0) {
		struct mlx_rundb_options opts = {.busy_timeout_ms = 50};
		struct mlx_rundb *cdb;
		char a[MLX_RUN_ID_SIZE], b[MLX_RUN_ID_SIZE];
		sqlite3 *raw;
		struct mlx_run_end failed = {"FAILED", "disk full", 3, 0, -1, -1, -1, 0};
		if (mlx_rundb_open(f->path, &opts, &cdb, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, a, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, b, NULL) != MLX_OK ||
		    mlx_rundb_finish_buffered(cdb, a, &FINISHED, NULL) != MLX_OK ||
		    mlx_rundb_finish_buffered(cdb, b, &failed, NULL) != MLX_OK ||
		    sqlite3_open(f->path, &raw) != SQLITE_OK ||
		    sqlite3_exec(raw, "BEGIN IMMEDIATE", NULL, NULL, NULL) != SQLITE_OK)
			_exit(1);
		struct mlx_err cerr;
		if (mlx_rundb_flush(cdb, &cerr) != MLX_ERR_BUSY)
			_exit(2);
		_exit(0); /* without closing: the process is gone */
	}
	int status;
	waitpid(child, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'RUNNING'") == 2);
	db = open_db(f->path, NULL);
	assert_true(peek(f->path,
	                 "SELECT count(*) FROM runs WHERE status = 'FAILED' AND message LIKE"
	                 " 'it ended FINISHED, but its end could not be recorded then: %busy%'") == 1);
	assert_true(peek(f->path,
	                 "SELECT count(*) FROM runs WHERE status = 'FAILED' AND exit_code = 3 AND"
	                 " message LIKE 'disk full (its end could not be recorded then: %busy%'") == 1);
	mlx_rundb_close(db, NULL);
	assert_int_equal(end_files(f->path), 0);
}

/* Every command reads the WAL back when it opens the database: a handle
 * that leaves it longer than 256 pages empties it when it closes, and one
 * that wrote a little (a no-op recipe) leaves it, without a checkpoint. */
static void a_long_wal_is_emptied_at_close(void **state)
{
	struct fixture *f = *state;
	struct mlx_run_start start = {.git_dirty = -1};
	struct mlx_err err;
	char id[MLX_RUN_ID_SIZE], wal[192];
	snprintf(wal, sizeof wal, "%s-wal", f->path);
	struct stat st;
	struct mlx_rundb *db = open_db(f->path, NULL);
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	assert_int_equal(mlx_rundb_finish(db, id, &FINISHED, &err), MLX_OK);
	mlx_rundb_close(db, NULL);
	assert_int_equal(stat(wal, &st), 0);
	long long one_run = st.st_size;
	assert_true(one_run > 0); /* kept: no checkpoint for a few pages */

	db = open_db(f->path, NULL);
	for (int i = 0; i < 60; i++) {
		assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
		assert_int_equal(mlx_rundb_finish(db, id, &FINISHED, &err), MLX_OK);
	}
	assert_int_equal(stat(wal, &st), 0);
	assert_true(st.st_size > 256 * (4096 + 24)); /* long while the handle writes */
	mlx_rundb_close(db, NULL);
	assert_int_equal(stat(wal, &st), 0);
	assert_int_equal(st.st_size, 0);
	assert_true(peek(f->path, "SELECT count(*) FROM runs") == 61);
}

static void read_only_opens_read_and_refuse_writes(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb_options ro = {.read_only = 1};
	struct mlx_rundb *db = NULL;
	struct mlx_err err;
	assert_int_not_equal(mlx_rundb_open(f->path, &ro, &db, &err), MLX_OK); /* never created */
	db = open_db(f->path, NULL);
	char id[MLX_RUN_ID_SIZE];
	struct mlx_run_start start = {.git_dirty = -1};
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	mlx_rundb_close(db, NULL); /* left RUNNING: a reaper would write */

	db = open_db(f->path, &ro);
	struct mlx_rundb_query *q;
	assert_int_equal(mlx_rundb_query_open(db, "SELECT count(*) FROM runs", &q, &err), MLX_OK);
	assert_int_equal(mlx_rundb_query_next(q, &err), 1);
	struct mlx_rundb_value v;
	mlx_rundb_query_column(q, 0, &v);
	assert_int_equal(v.i, 1);
	mlx_rundb_query_close(q);
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_ERR_IO);
	assert_non_null(strstr(err.msg, "readonly"));
	mlx_rundb_close(db, NULL);
}

/* Whether pid runs: it exists and is not a zombie nobody reaped yet. */
static bool running(pid_t pid)
{
	char path[64], buf[512] = "";
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return false;
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = '\0';
	fclose(f);
	const char *p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
}

/* Forks a process leading its own group, with one more member; returns the
 * group id and the member in *member. */
static pid_t fork_group(pid_t *member)
{
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t leader = fork();
	if (leader == 0) {
		/* Gone with the test, should an assertion fail before it kills them. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		setpgid(0, 0);
		pid_t m = fork();
		if (m == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			for (;;)
				pause();
		}
		if (write(fds[1], &m, sizeof m) != sizeof m)
			_exit(1);
		for (;;)
			pause();
	}
	setpgid(leader, leader);
	assert_int_equal(read(fds[0], member, sizeof *member), sizeof *member);
	close(fds[0]);
	close(fds[1]);
	return leader;
}

static void a_dead_runs_process_group_is_killed_unless_its_leader_changed(void **state)
{
	struct fixture *f = *state;
	struct mlx_err err;
	struct mlx_run_start start = {.git_dirty = -1};
	pid_t member, other_member;
	pid_t group = fork_group(&member);
	pid_t other = fork_group(&other_member);

	/* An owner records the two groups for two runs and dies with them
	 * running, as a killed mlx whose keeper was killed too. */
	pid_t owner = fork();
	if (owner == 0) {
		struct mlx_rundb *cdb;
		char a[MLX_RUN_ID_SIZE], b[MLX_RUN_ID_SIZE];
		if (mlx_rundb_open(f->path, NULL, &cdb, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, a, NULL) != MLX_OK ||
		    mlx_rundb_set_group(cdb, a, group, NULL) != MLX_OK ||
		    mlx_rundb_start(cdb, &start, b, NULL) != MLX_OK ||
		    mlx_rundb_set_group(cdb, b, other, NULL) != MLX_OK ||
		    mlx_rundb_close(cdb, NULL) != MLX_OK)
			_exit(1);
		_exit(0);
	}
	int status;
	waitpid(owner, &status, 0);
	assert_int_equal(WEXITSTATUS(status), 0);
	/* The second group's leader now looks like another process (a reused
	 * pid): its recorded start time is not its own. */
	char sql[256];
	snprintf(sql, sizeof sql,
	         "UPDATE runs SET pgid_start = rtrim(pgid_start, '0123456789') || '1' WHERE pgid = %d",
	         (int)other);
	raw_exec(f->path, sql);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE pgid IS NOT NULL") == 2);

	struct mlx_rundb *db = open_db(f->path, NULL); /* reaps */
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'KILLED'") == 2);
	snprintf(sql, sizeof sql,
	         "SELECT count(*) FROM runs WHERE message LIKE"
	         " '%%; its process group %d was still running and has been killed'",
	         (int)group);
	assert_true(peek(f->path, sql) == 1);
	for (int i = 0; i < 100 && (running(group) || running(member)); i++)
		usleep(10000);
	bool group_left = running(group) || running(member);
	bool other_left = running(other) && running(other_member);
	kill(-other, SIGKILL);
	kill(-group, SIGKILL);
	waitpid(group, NULL, 0);
	waitpid(other, NULL, 0);
	assert_false(group_left);
	assert_true(other_left);
	/* A group already gone is not recorded: nothing could be ended later. */
	char id[MLX_RUN_ID_SIZE];
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	assert_int_equal(mlx_rundb_set_group(db, id, group, &err), MLX_OK);
	snprintf(sql, sizeof sql, "SELECT count(*) FROM runs WHERE id = '%s' AND pgid IS NULL", id);
	assert_true(peek(f->path, sql) == 1);
	assert_int_equal(mlx_rundb_set_group(db, id, 1, &err), MLX_ERR_INVALID);
	mlx_rundb_close(db, NULL);
}

static void concurrent_writers_lose_nothing(void **state)
{
	struct fixture *f = *state;
	enum { WRITERS = 6, POINTS = 3000 };
	struct mlx_rundb *db = open_db(f->path, NULL);
	mlx_rundb_close(db, NULL);
	pid_t pids[WRITERS];
	for (int w = 0; w < WRITERS; w++) {
		if ((pids[w] = fork()) == 0) {
			struct mlx_rundb_options opts = {.batch_rows = 50};
			struct mlx_rundb *cdb;
			char id[MLX_RUN_ID_SIZE];
			struct mlx_run_start start = {.git_dirty = -1};
			if (mlx_rundb_open(f->path, &opts, &cdb, NULL) != MLX_OK ||
			    mlx_rundb_start(cdb, &start, id, NULL) != MLX_OK)
				_exit(1);
			for (int i = 0; i < POINTS; i++)
				if (mlx_rundb_log_metric(cdb, id, i % 2 ? "a" : "b", i, i, 0, NULL, NULL) !=
				    MLX_OK)
					_exit(2);
			if (mlx_rundb_finish(cdb, id, &FINISHED, NULL) != MLX_OK ||
			    mlx_rundb_close(cdb, NULL))
				_exit(3);
			_exit(0);
		}
	}
	for (int w = 0; w < WRITERS; w++) {
		int status;
		waitpid(pids[w], &status, 0);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	assert_true(peek(f->path, "SELECT count(*) FROM metrics") == WRITERS * POINTS);
	assert_true(peek(f->path, "SELECT count(*) FROM runs WHERE status = 'FINISHED'") == WRITERS);
	assert_true(peek(f->path, "SELECT sum(value) FROM latest_metrics") == WRITERS * (2999.0 + 2998.0));
}

static void queries_bind_values_and_never_write(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	char id[MLX_RUN_ID_SIZE];
	struct mlx_err err;
	struct mlx_run_start start = {.recipe = "a.lua", .git_dirty = -1};
	assert_int_equal(mlx_rundb_start(db, &start, id, &err), MLX_OK);
	mlx_rundb_log_metric(db, id, "acc", 0, 0.5, 0, NULL, &err); /* buffered: a query sees it */

	struct mlx_rundb_query *q;
	assert_int_equal(mlx_rundb_query_open(db,
	                                      "SELECT r.id, r.recipe, m.value, m.step FROM runs r"
	                                      " JOIN latest_metrics m ON m.run_id = r.id WHERE m.key = ?1",
	                                      &q, &err),
	                 MLX_OK);
	struct mlx_rundb_value key = {.type = MLX_RUNDB_TEXT, .s = "acc", .len = 3};
	assert_int_equal(mlx_rundb_query_bind(q, 1, &key, &err), MLX_OK);
	assert_int_equal(mlx_rundb_query_bind(q, 2, &key, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_rundb_query_columns(q), 4);
	assert_string_equal(mlx_rundb_query_name(q, 1), "recipe");
	assert_int_equal(mlx_rundb_query_next(q, &err), 1);
	struct mlx_rundb_value v;
	mlx_rundb_query_column(q, 0, &v);
	assert_int_equal(v.type, MLX_RUNDB_TEXT);
	assert_memory_equal(v.s, id, 16);
	mlx_rundb_query_column(q, 2, &v);
	assert_int_equal(v.type, MLX_RUNDB_REAL);
	assert_true(v.d == 0.5);
	mlx_rundb_query_column(q, 3, &v);
	assert_int_equal(v.type, MLX_RUNDB_INT);
	assert_int_equal(mlx_rundb_query_next(q, &err), 0);
	mlx_rundb_query_close(q);

	assert_int_equal(mlx_rundb_query_open(db, "DELETE FROM runs", &q, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "may not change"));
	assert_int_equal(mlx_rundb_query_open(db, "SELECT 1; DELETE FROM runs", &q, &err), MLX_ERR_INVALID);
	assert_int_equal(mlx_rundb_query_open(db, "SELECT nope FROM runs", &q, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "no such column: nope"));
	mlx_rundb_close(db, NULL);
	assert_true(peek(f->path, "SELECT count(*) FROM runs") == 1);
}

/* Counts the rows of table naming run id (column run_id, or id for runs). */
static double rows_of(const char *path, const char *table, const char *id)
{
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE %s = '%s'", table,
	         strcmp(table, "runs") == 0 ? "id" : "run_id", id);
	return peek(path, sql);
}

static void tags_are_removed_and_runs_deleted_with_their_steps(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	char parent[MLX_RUN_ID_SIZE], step[MLX_RUN_ID_SIZE], other[MLX_RUN_ID_SIZE];
	struct mlx_err err;
	struct mlx_run_start start = {.git_dirty = -1};
	assert_int_equal(mlx_rundb_start(db, &start, parent, &err), MLX_OK);
	start.parent_id = parent;
	assert_int_equal(mlx_rundb_start(db, &start, step, &err), MLX_OK);
	start.parent_id = NULL;
	assert_int_equal(mlx_rundb_start(db, &start, other, &err), MLX_OK);
	const char *all[] = {parent, step, other};
	for (int i = 0; i < 3; i++) {
		assert_int_equal(mlx_rundb_log_param(db, all[i], "lr", "0.1", &err), MLX_OK);
		assert_int_equal(mlx_rundb_set_tag(db, all[i], "team", "vision", &err), MLX_OK);
		assert_int_equal(mlx_rundb_log_metric(db, all[i], "loss", 0, 0.5, 0, NULL, &err), MLX_OK);
		struct mlx_run_artifact art = {"out", "model.bin", "ab12", 10, 1};
		assert_int_equal(mlx_rundb_log_artifact(db, all[i], &art, &err), MLX_OK);
	}

	/* A running run is still written to: it is not deleted. */
	const char *doomed[] = {parent};
	assert_int_equal(mlx_rundb_delete_runs(db, doomed, 1, NULL, &err), MLX_ERR_INVALID);
	assert_non_null(strstr(err.msg, "is still running: not deleted"));
	for (int i = 0; i < 3; i++)
		assert_int_equal(mlx_rundb_finish(db, all[i], &FINISHED, &err), MLX_OK);

	assert_int_equal(mlx_rundb_delete_tag(db, parent, "team", &err), MLX_OK);
	assert_true(rows_of(f->path, "tags", parent) == 0);
	assert_int_equal(mlx_rundb_delete_tag(db, parent, "team", &err), MLX_ERR_NOTFOUND);
	assert_non_null(strstr(err.msg, "has no tag 'team'"));
	assert_int_equal(mlx_rundb_delete_tag(db, "0000000000000000", "team", &err), MLX_ERR_NOTFOUND);

	/* A run that a model version names is kept, and so is everything else
	 * asked for in the same call. */
	char sql[256];
	snprintf(sql, sizeof sql,
	         "INSERT INTO model_versions (name, version, artifact_hash, type, size, run_id, created)"
	         " VALUES ('iris', 2, 'ab12', 'file', 10, '%s', 0)",
	         step);
	raw_exec(f->path, sql);
	const char *both[] = {other, parent};
	int deleted = -1;
	assert_int_equal(mlx_rundb_delete_runs(db, both, 2, &deleted, &err), MLX_ERR_INVALID);
	assert_int_equal(deleted, 0);
	char want[128];
	snprintf(want, sizeof want, "run %s is the run of model version iris:2: not deleted", step);
	assert_string_equal(err.msg, want);
	assert_true(rows_of(f->path, "runs", other) == 1);
	const char *unknown[] = {other, "0000000000000000"};
	assert_int_equal(mlx_rundb_delete_runs(db, unknown, 2, NULL, &err), MLX_ERR_NOTFOUND);
	assert_true(rows_of(f->path, "runs", other) == 1);

	raw_exec(f->path, "DELETE FROM model_versions");
	assert_int_equal(mlx_rundb_delete_runs(db, both, 2, &deleted, &err), MLX_OK);
	assert_int_equal(deleted, 3); /* the step run goes with its parent */
	const char *tables[] = {"runs", "params", "tags", "metrics", "latest_metrics", "artifacts"};
	for (int t = 0; t < 6; t++)
		for (int i = 0; i < 3; i++)
			assert_true(rows_of(f->path, tables[t], all[i]) == 0);
	mlx_rundb_close(db, NULL);
}

static void metrics_are_copied_to_a_run_that_stands_for_another(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	char from[MLX_RUN_ID_SIZE], to[MLX_RUN_ID_SIZE];
	struct mlx_err err;
	struct mlx_run_start start = {.git_dirty = -1};
	assert_int_equal(mlx_rundb_start(db, &start, from, &err), MLX_OK);
	for (int i = 0; i < 5; i++)
		assert_int_equal(mlx_rundb_log_metric(db, from, "loss", i, 1.0 / (i + 1), 0, NULL, &err),
		                 MLX_OK);
	assert_int_equal(mlx_rundb_log_metric(db, from, "acc", 0, 0.9, 0, NULL, &err), MLX_OK);
	assert_int_equal(mlx_rundb_finish(db, from, &FINISHED, &err), MLX_OK);
	assert_int_equal(mlx_rundb_start(db, &start, to, &err), MLX_OK);
	/* Still buffered when the copy starts: the copy writes it first. */
	assert_int_equal(mlx_rundb_log_param(db, to, "lr", "0.1", &err), MLX_OK);
	assert_int_equal(mlx_rundb_copy_metrics(db, to, from, &err), MLX_OK);
	assert_true(rows_of(f->path, "metrics", to) == 6);
	assert_true(rows_of(f->path, "params", to) == 1);
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT value FROM latest_metrics WHERE run_id = '%s' AND key = 'loss'",
	         to);
	assert_true(peek(f->path, sql) == 0.2);
	/* The series goes on after the copied steps. */
	int64_t step = -1;
	assert_int_equal(mlx_rundb_log_metric(db, to, "loss", MLX_STEP_AUTO, 0.1, 0, &step, &err), MLX_OK);
	assert_int_equal(step, 5);
	assert_int_equal(mlx_rundb_copy_metrics(db, to, "0000000000000000", &err), MLX_ERR_NOTFOUND);
	mlx_rundb_close(db, NULL);
}

/* Counts rows of a query on db's own connection (temp tables are per
 * connection, so a plain SQLite connection cannot see them). */
static int64_t own_count(struct mlx_rundb *db, const char *sql)
{
	struct mlx_rundb_query *q;
	struct mlx_err err;
	assert_int_equal(mlx_rundb_query_open(db, sql, &q, &err), MLX_OK);
	assert_int_equal(mlx_rundb_query_next(q, &err), 1);
	struct mlx_rundb_value v;
	mlx_rundb_query_column(q, 0, &v);
	mlx_rundb_query_close(q);
	return v.type == MLX_RUNDB_INT ? v.i : -1;
}

static double own_value(struct mlx_rundb *db, const char *sql)
{
	struct mlx_rundb_query *q;
	struct mlx_err err;
	assert_int_equal(mlx_rundb_query_open(db, sql, &q, &err), MLX_OK);
	double x = NAN;
	if (mlx_rundb_query_next(q, &err) == 1) {
		struct mlx_rundb_value v;
		mlx_rundb_query_column(q, 0, &v);
		x = v.type == MLX_RUNDB_REAL ? v.d : v.type == MLX_RUNDB_INT ? (double)v.i : NAN;
	}
	mlx_rundb_query_close(q);
	return x;
}

static void the_experiments_table_joins_steps_to_their_recipe_run(void **state)
{
	struct fixture *f = *state;
	struct mlx_rundb *db = open_db(f->path, NULL);
	char recipe[MLX_RUN_ID_SIZE], train[MLX_RUN_ID_SIZE], eval[MLX_RUN_ID_SIZE], alone[MLX_RUN_ID_SIZE];
	struct mlx_err err;
	struct mlx_run_start start = {.git_dirty = -1, .start_ms = 1000};
	assert_int_equal(mlx_rundb_start(db, &start, recipe, &err), MLX_OK);
	start.parent_id = recipe;
	start.start_ms = 2000;
	assert_int_equal(mlx_rundb_start(db, &start, train, &err), MLX_OK);
	start.start_ms = 3000;
	assert_int_equal(mlx_rundb_start(db, &start, eval, &err), MLX_OK);
	start.parent_id = NULL;
	assert_int_equal(mlx_rundb_start(db, &start, alone, &err), MLX_OK);
	/* The recipe run's own value of a metric loses to its steps'; of
	 * those, the step that started last wins. */
	assert_int_equal(mlx_rundb_log_metric(db, recipe, "acc", 0, 0.1, 0, NULL, &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_metric(db, train, "acc", 5, 0.8, 0, NULL, &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_metric(db, eval, "acc", 0, 0.9, 0, NULL, &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_metric(db, train, "loss", 0, 0.3, 0, NULL, &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_metric(db, alone, "acc", 0, 0.5, 0, NULL, &err), MLX_OK);
	/* A param: the recipe run's own wins; a step's fills in a missing one. */
	assert_int_equal(mlx_rundb_log_param(db, recipe, "lr", "0.1", &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_param(db, train, "lr", "0.5", &err), MLX_OK);
	assert_int_equal(mlx_rundb_log_param(db, train, "depth", "4", &err), MLX_OK);

	const char *metrics[] = {"acc", "loss"}, *params[] = {"lr", "depth"};
	assert_int_equal(mlx_rundb_exp_join(db, metrics, 2, params, 2, &err), MLX_OK);
	char sql[256];
	snprintf(sql, sizeof sql, "SELECT value FROM temp.exp_metrics WHERE run_id = '%s' AND key = 'acc'",
	         recipe);
	assert_true(own_value(db, sql) == 0.9);
	snprintf(sql, sizeof sql, "SELECT value FROM temp.exp_metrics WHERE run_id = '%s' AND key = 'loss'",
	         recipe);
	assert_true(own_value(db, sql) == 0.3);
	snprintf(sql, sizeof sql, "SELECT value FROM temp.exp_metrics WHERE run_id = '%s' AND key = 'acc'",
	         alone);
	assert_true(own_value(db, sql) == 0.5);
	snprintf(sql, sizeof sql, "SELECT num FROM temp.exp_params WHERE run_id = '%s' AND key = 'lr'",
	         recipe);
	assert_true(own_value(db, sql) == 0.1);
	snprintf(sql, sizeof sql, "SELECT num FROM temp.exp_params WHERE run_id = '%s' AND key = 'depth'",
	         recipe);
	assert_true(own_value(db, sql) == 4);

	/* Filled again, it holds only the keys asked for now. */
	assert_int_equal(mlx_rundb_exp_join(db, metrics, 1, NULL, 0, &err), MLX_OK);
	assert_int_equal(own_count(db, "SELECT count(*) FROM temp.exp_metrics WHERE key = 'loss'"), 0);
	assert_int_equal(own_count(db, "SELECT count(*) FROM temp.exp_params"), 0);
	/* The database file is not written. */
	assert_true(peek(f->path, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'exp_%'") == 0);
	mlx_rundb_close(db, NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test_setup_teardown(open_creates_the_latest_schema_and_refuses_newer_ones,
	                                    make_db_dir, remove_db_dir),
	    cmocka_unit_test_setup_teardown(migration_5_drops_the_redundant_parent_index, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(run_ids_are_short_unique_and_sort_by_time, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(a_run_records_its_owner_and_ends_once, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(metrics_keep_every_step_and_the_latest_value, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(params_tags_and_artifacts, make_db_dir, remove_db_dir),
	    cmocka_unit_test_setup_teardown(points_are_written_by_batch_and_by_age, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(a_dead_runs_process_group_is_killed_unless_its_leader_changed,
	                                    make_db_dir, remove_db_dir),
	    cmocka_unit_test_setup_teardown(dead_owners_are_reaped_live_ones_kept, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(an_end_that_cannot_be_written_is_recorded_later, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(a_runs_end_marker_is_a_slot_reused_by_the_next_run, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(buffered_ends_are_written_in_batches, make_db_dir, remove_db_dir),
	    cmocka_unit_test_setup_teardown(a_long_wal_is_emptied_at_close, make_db_dir, remove_db_dir),
	    cmocka_unit_test_setup_teardown(read_only_opens_read_and_refuse_writes, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(concurrent_writers_lose_nothing, make_db_dir, remove_db_dir),
	    cmocka_unit_test_setup_teardown(queries_bind_values_and_never_write, make_db_dir, remove_db_dir),
	    cmocka_unit_test_setup_teardown(tags_are_removed_and_runs_deleted_with_their_steps, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(metrics_are_copied_to_a_run_that_stands_for_another, make_db_dir,
	                                    remove_db_dir),
	    cmocka_unit_test_setup_teardown(the_experiments_table_joins_steps_to_their_recipe_run,
	                                    make_db_dir, remove_db_dir),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
