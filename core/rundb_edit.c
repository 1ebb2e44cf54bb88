/* rundb_edit.c — changing runs after they ended: removing a tag, deleting
 * runs with everything recorded of them, and giving a run the metrics of
 * another (a step restored from the run-cache carries the metrics of the
 * run that produced its outs). Each is one write transaction that also
 * writes what is buffered, so it sees the caller's own writes. */
#include "rundb_internal.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* Prepared per call: these run a few times per command, not per point. */
static int prepare(struct mlx_rundb *db, const char *sql, sqlite3_stmt **st, struct mlx_err *err)
{
	int rc = sqlite3_prepare_v2(db->sql, sql, -1, st, NULL);
	return rc == SQLITE_OK ? MLX_OK : rundb_fail(db, rc, err, "cannot prepare a statement");
}

/* Runs sql with text parameters 1..n bound (NULL: SQL NULL); *changes, if
 * not NULL, gets the number of rows it changed. */
static int exec_texts(struct mlx_rundb *db, const char *sql, const char *const *texts, int n, int *changes,
                      struct mlx_err *err, const char *doing)
{
	sqlite3_stmt *st;
	int rc = prepare(db, sql, &st, err);
	if (rc != MLX_OK)
		return rc;
	for (int i = 0; i < n; i++)
		sqlite3_bind_text(st, i + 1, texts[i], -1, SQLITE_STATIC);
	int sqlrc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (sqlrc != SQLITE_DONE && sqlrc != SQLITE_ROW)
		return rundb_fail(db, sqlrc, err, doing);
	if (changes)
		*changes = sqlite3_changes(db->sql);
	return MLX_OK;
}

/* Takes the lock, starts a write transaction and writes the buffer in it. */
static int begin(struct mlx_rundb *db, struct mlx_err *err)
{
	pthread_mutex_lock(&db->lock);
	int rc = rundb_begin(db, err);
	if (rc == MLX_OK && (rc = rundb_write_buffer(db, err)) != MLX_OK)
		rundb_rollback(db);
	if (rc != MLX_OK)
		pthread_mutex_unlock(&db->lock);
	return rc;
}

/* Commits if rc is MLX_OK (then the buffer is written), else rolls back;
 * releases the lock. Returns rc or the error of the commit. */
static int end(struct mlx_rundb *db, int rc, struct mlx_err *err)
{
	if (rc == MLX_OK)
		rc = rundb_commit(db, err);
	if (rc == MLX_OK)
		rundb_clear_buffer(db);
	else
		rundb_rollback(db);
	pthread_mutex_unlock(&db->lock);
	return rc;
}

static int run_exists(struct mlx_rundb *db, const char *id, struct mlx_err *err)
{
	sqlite3_stmt *st;
	int rc = prepare(db, "SELECT 1 FROM runs WHERE id = ?1", &st, err);
	if (rc != MLX_OK)
		return rc;
	sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
	int sqlrc = sqlite3_step(st);
	sqlite3_finalize(st);
	if (sqlrc == SQLITE_ROW)
		return MLX_OK;
	if (sqlrc == SQLITE_DONE)
		return mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "no run with id '%s'", id);
	return rundb_fail(db, sqlrc, err, "cannot read a run");
}

int mlx_rundb_delete_tag(struct mlx_rundb *db, const char *id, const char *key, struct mlx_err *err)
{
	int rc = begin(db, err);
	if (rc != MLX_OK)
		return rc;
	if ((rc = run_exists(db, id, err)) == MLX_OK) {
		int changes = 0;
		const char *texts[] = {id, key};
		rc = exec_texts(db, "DELETE FROM tags WHERE run_id = ?1 AND key = ?2", texts, 2, &changes,
		                err, "cannot delete a tag");
		if (rc == MLX_OK && changes == 0)
			rc = mlx_err_set(err, MLX_ERR_NOTFOUND, 0, "run %s has no tag '%s'", id, key);
	}
	return end(db, rc, err);
}

/* The rows that name a run, deleted with it; runs itself comes last. */
static const char *const run_tables[] = {"metrics", "latest_metrics", "params", "tags", "artifacts", "runs"};

/* Fills temp.doomed with ids[] and every run below them; fails, naming the
 * first, for an unknown id, a RUNNING run (its process still writes to it)
 * or a run that a model version names as its run. */
static int gather_doomed(struct mlx_rundb *db, const char *const *ids, size_t n, struct mlx_err *err)
{
	int rc = exec_texts(
	    db, "CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY NOT NULL) WITHOUT ROWID", NULL,
	    0, NULL, err, "cannot delete runs");
	if (rc == MLX_OK)
		rc = exec_texts(db, "DELETE FROM temp.doomed", NULL, 0, NULL, err, "cannot delete runs");
	for (size_t i = 0; rc == MLX_OK && i < n; i++) {
		if ((rc = run_exists(db, ids[i], err)) != MLX_OK)
			break;
		rc = exec_texts(db,
		                "INSERT OR IGNORE INTO temp.doomed (id)"
		                " WITH RECURSIVE below(id) AS (SELECT ?1"
		                "   UNION SELECT r.id FROM runs r JOIN below b ON r.parent_id = b.id)"
		                " SELECT id FROM below",
		                &ids[i], 1, NULL, err, "cannot delete runs");
	}
	if (rc != MLX_OK)
		return rc;
	sqlite3_stmt *st;
	if ((rc = prepare(
	         db,
	         "SELECT r.id FROM runs r JOIN temp.doomed d ON d.id = r.id WHERE r.status = 'RUNNING'"
	         " ORDER BY r.id LIMIT 1",
	         &st, err)) != MLX_OK)
		return rc;
	int sqlrc = sqlite3_step(st);
	if (sqlrc == SQLITE_ROW)
		rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "run %s is still running: not deleted",
		                 (const char *)sqlite3_column_text(st, 0));
	else if (sqlrc != SQLITE_DONE)
		rc = rundb_fail(db, sqlrc, err, "cannot read runs");
	sqlite3_finalize(st);
	if (rc != MLX_OK)
		return rc;
	if ((rc = prepare(db,
	                  "SELECT v.name, v.version, v.run_id FROM model_versions v"
	                  " JOIN temp.doomed d ON d.id = v.run_id ORDER BY v.name, v.version LIMIT 1",
	                  &st, err)) != MLX_OK)
		return rc;
	sqlrc = sqlite3_step(st);
	if (sqlrc == SQLITE_ROW)
		rc = mlx_err_set(
		    err, MLX_ERR_INVALID, 0, "run %s is the run of model version %s:%" PRId64 ": not deleted",
		    (const char *)sqlite3_column_text(st, 2), (const char *)sqlite3_column_text(st, 0),
		    (int64_t)sqlite3_column_int64(st, 1));
	else if (sqlrc != SQLITE_DONE)
		rc = rundb_fail(db, sqlrc, err, "cannot read the model registry");
	sqlite3_finalize(st);
	return rc;
}

int mlx_rundb_delete_runs(struct mlx_rundb *db, const char *const *ids, size_t n, int *deleted,
                          struct mlx_err *err)
{
	if (deleted)
		*deleted = 0;
	int rc = begin(db, err);
	if (rc != MLX_OK)
		return rc;
	rc = gather_doomed(db, ids, n, err);
	int changes = 0;
	for (size_t i = 0; rc == MLX_OK && i < sizeof run_tables / sizeof run_tables[0]; i++) {
		char sql[128];
		snprintf(sql, sizeof sql, "DELETE FROM %s WHERE %s IN (SELECT id FROM temp.doomed)",
		         run_tables[i], strcmp(run_tables[i], "runs") == 0 ? "id" : "run_id");
		rc = exec_texts(db, sql, NULL, 0, &changes, err, "cannot delete runs");
	}
	rc = end(db, rc, err);
	if (rc == MLX_OK && deleted)
		*deleted = changes; /* of the last statement: the runs */
	return rc;
}

int mlx_rundb_copy_metrics(struct mlx_rundb *db, const char *to_id, const char *from_id, struct mlx_err *err)
{
	int rc = begin(db, err);
	if (rc != MLX_OK)
		return rc;
	if ((rc = run_exists(db, to_id, err)) == MLX_OK && (rc = run_exists(db, from_id, err)) == MLX_OK) {
		const char *texts[] = {to_id, from_id};
		rc = exec_texts(db,
		                "INSERT OR REPLACE INTO metrics (run_id, key, step, ts, value)"
		                " SELECT ?1, key, step, ts, value FROM metrics WHERE run_id = ?2",
		                texts, 2, NULL, err, "cannot copy metrics");
		if (rc == MLX_OK)
			rc = exec_texts(
			    db,
			    "INSERT OR REPLACE INTO latest_metrics (run_id, key, step, ts, value)"
			    " SELECT ?1, key, step, ts, value FROM latest_metrics WHERE run_id = ?2",
			    texts, 2, NULL, err, "cannot copy metrics");
	}
	return end(db, rc, err);
}
