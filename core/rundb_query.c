/* rundb_query.c — reading the tracking database: read-only prepared
 * statements with bound values, and the temporary tables of the
 * experiments table that they may read. */
#include "rundb_internal.h"

#include <errno.h>
#include <stdlib.h>

struct mlx_rundb_query {
	struct mlx_rundb *db;
	sqlite3_stmt *st;
};

int mlx_rundb_query_open(struct mlx_rundb *db, const char *sql, struct mlx_rundb_query **out,
                         struct mlx_err *err)
{
	*out = NULL;
	struct mlx_rundb_query *q = calloc(1, sizeof *q);
	if (!q)
		return mlx_err_set(err, MLX_ERR_NOMEM, ENOMEM, "out of memory");
	q->db = db;
	pthread_mutex_lock(&db->lock);
	int rc = rundb_flush_locked(db, err);
	if (rc == MLX_OK) {
		const char *tail = NULL;
		int sqlrc = sqlite3_prepare_v2(db->sql, sql, -1, &q->st, &tail);
		if (sqlrc != SQLITE_OK)
			rc = rundb_fail(db, sqlrc, err, "invalid query");
		else if (!q->st)
			rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "empty query");
		else if (tail && *tail)
			rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "a query is one statement");
		else if (!sqlite3_stmt_readonly(q->st))
			rc = mlx_err_set(err, MLX_ERR_INVALID, 0, "a query may not change the database");
	}
	if (rc == MLX_OK)
		db->open_queries++;
	pthread_mutex_unlock(&db->lock);
	if (rc != MLX_OK) {
		sqlite3_finalize(q->st);
		free(q);
		return rc;
	}
	*out = q;
	return MLX_OK;
}

int mlx_rundb_query_bind(struct mlx_rundb_query *q, int index, const struct mlx_rundb_value *v,
                         struct mlx_err *err)
{
	if (index < 1 || index > sqlite3_bind_parameter_count(q->st))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "query parameter %d out of range (the query has %d)", index,
		                   sqlite3_bind_parameter_count(q->st));
	int rc;
	switch (v->type) {
	case MLX_RUNDB_INT: rc = sqlite3_bind_int64(q->st, index, v->i); break;
	case MLX_RUNDB_REAL: rc = sqlite3_bind_double(q->st, index, v->d); break;
	case MLX_RUNDB_TEXT:
		rc = sqlite3_bind_text64(q->st, index, v->s, v->len, SQLITE_TRANSIENT, SQLITE_UTF8);
		break;
	default: rc = sqlite3_bind_null(q->st, index); break;
	}
	return rc == SQLITE_OK ? MLX_OK : rundb_fail(q->db, rc, err, "cannot bind a query parameter");
}

int mlx_rundb_query_next(struct mlx_rundb_query *q, struct mlx_err *err)
{
	pthread_mutex_lock(&q->db->lock);
	int sqlrc = sqlite3_step(q->st);
	int rc = sqlrc == SQLITE_ROW    ? 1
	         : sqlrc == SQLITE_DONE ? 0
	                                : rundb_fail(q->db, sqlrc, err, "query failed");
	pthread_mutex_unlock(&q->db->lock);
	return rc;
}

int mlx_rundb_query_columns(struct mlx_rundb_query *q)
{
	return sqlite3_column_count(q->st);
}

const char *mlx_rundb_query_name(struct mlx_rundb_query *q, int i)
{
	return sqlite3_column_name(q->st, i);
}

void mlx_rundb_query_column(struct mlx_rundb_query *q, int i, struct mlx_rundb_value *v)
{
	switch (sqlite3_column_type(q->st, i)) {
	case SQLITE_INTEGER:
		v->type = MLX_RUNDB_INT;
		v->i = sqlite3_column_int64(q->st, i);
		break;
	case SQLITE_FLOAT:
		v->type = MLX_RUNDB_REAL;
		v->d = sqlite3_column_double(q->st, i);
		break;
	case SQLITE_TEXT:
	case SQLITE_BLOB:
		v->type = MLX_RUNDB_TEXT;
		v->s = (const char *)sqlite3_column_text(q->st, i);
		v->len = (size_t)sqlite3_column_bytes(q->st, i);
		break;
	default: v->type = MLX_RUNDB_NULL; break;
	}
}

void mlx_rundb_query_close(struct mlx_rundb_query *q)
{
	if (!q)
		return;
	pthread_mutex_lock(&q->db->lock);
	sqlite3_finalize(q->st);
	q->db->open_queries--;
	pthread_mutex_unlock(&q->db->lock);
	free(q);
}

/* ---- the experiments table ---------------------------------------------- */

/* Per key, rows in rising priority: INSERT OR REPLACE keeps the last, so
 * each (recipe run, key) ends with the winner. A metric: the recipe run's
 * own, then its step runs by start. A param: its step runs by start, then
 * the recipe run's own (-p and the recipe's values win). */
static const char *const exp_fill_sql[] = {
    "INSERT OR REPLACE INTO temp.exp_metrics (run_id, key, step, ts, value)"
    " SELECT coalesce(s.parent_id, s.id), m.key, m.step, m.ts, m.value"
    " FROM main.latest_metrics m JOIN main.runs s ON s.id = m.run_id WHERE m.key = ?1"
    " ORDER BY coalesce(s.parent_id, s.id), s.parent_id IS NOT NULL, s.start_time, s.id",
    "INSERT OR REPLACE INTO temp.exp_params (run_id, key, value, num)"
    " SELECT coalesce(s.parent_id, s.id), p.key, p.value, p.num"
    " FROM main.params p JOIN main.runs s ON s.id = p.run_id WHERE p.key = ?1"
    " ORDER BY coalesce(s.parent_id, s.id), s.parent_id IS NULL, s.start_time, s.id",
};

static int exp_exec(struct mlx_rundb *db, const char *sql, const char *key, struct mlx_err *err)
{
	sqlite3_stmt *st;
	int sqlrc = sqlite3_prepare_v2(db->sql, sql, -1, &st, NULL);
	if (sqlrc != SQLITE_OK)
		return rundb_fail(db, sqlrc, err, "cannot prepare the experiments table");
	if (key)
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlrc = sqlite3_step(st);
	sqlite3_finalize(st);
	return sqlrc == SQLITE_DONE || sqlrc == SQLITE_ROW
	           ? MLX_OK
	           : rundb_fail(db, sqlrc, err, "cannot fill the experiments table");
}

int mlx_rundb_exp_join(struct mlx_rundb *db, const char *const *metric_keys, size_t nmetrics,
                       const char *const *param_keys, size_t nparams, struct mlx_err *err)
{
	static const char *const setup[] = {
	    "CREATE TEMP TABLE IF NOT EXISTS exp_metrics (run_id TEXT NOT NULL, key TEXT NOT NULL,"
	    " step INTEGER, ts INTEGER, value REAL, PRIMARY KEY (run_id, key)) WITHOUT ROWID",
	    "CREATE TEMP TABLE IF NOT EXISTS exp_params (run_id TEXT NOT NULL, key TEXT NOT NULL,"
	    " value TEXT NOT NULL, num REAL, PRIMARY KEY (run_id, key)) WITHOUT ROWID",
	    "DELETE FROM temp.exp_metrics",
	    "DELETE FROM temp.exp_params",
	};
	pthread_mutex_lock(&db->lock);
	/* Written first, so the table holds the caller's own points. */
	int rc = rundb_flush_locked(db, err);
	for (size_t i = 0; rc == MLX_OK && i < sizeof setup / sizeof setup[0]; i++)
		rc = exp_exec(db, setup[i], NULL, err);
	for (size_t i = 0; rc == MLX_OK && i < nmetrics; i++)
		rc = exp_exec(db, exp_fill_sql[0], metric_keys[i], err);
	for (size_t i = 0; rc == MLX_OK && i < nparams; i++)
		rc = exp_exec(db, exp_fill_sql[1], param_keys[i], err);
	pthread_mutex_unlock(&db->lock);
	return rc;
}
