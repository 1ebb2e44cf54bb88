/* rundb.h — the tracking database (DESIGN §5): runs, params, metrics,
 * latest_metrics, tags and artifacts in one SQLite file.
 *
 * Many processes may use one database at once: it runs in WAL mode, so
 * readers never block the writer, and every write is a short BEGIN
 * IMMEDIATE transaction that waits for another writer up to a busy timeout.
 * Metric points are buffered in memory and written in one transaction per
 * batch: when the batch is full, when its oldest point is older than the
 * flush interval (a background thread sees to that even while the caller is
 * busy elsewhere), and at every flush, finish, query and close.
 *
 * Schema changes are numbered migrations recorded in PRAGMA user_version;
 * opening a database applies the missing ones in one transaction.
 *
 * A handle is used by one thread at a time (the caller's); the flush thread
 * it may start shares it under an internal lock. Strings passed in are
 * copied or used only during the call; strings returned point into the
 * handle or the query and live as long as they do. */
#ifndef MLX_RUNDB_H
#define MLX_RUNDB_H

#include <stddef.h>
#include <stdint.h>

#include "err.h"

/* A run id: 16 characters of lowercase Crockford base32 (48 bits of
 * milliseconds since the epoch, then 32 random bits) and a NUL. Ids sort by
 * start time as strings and are unique across machines. */
#define MLX_RUN_ID_SIZE 17

/* The step of a metric point to let the database choose: one more than the
 * highest step of that metric in that run (0 for the first point). */
#define MLX_STEP_AUTO INT64_MIN

/* The number of the newest schema migration this build knows. */
int mlx_rundb_schema_latest(void);

struct mlx_rundb;

struct mlx_rundb_options {
	int busy_timeout_ms;   /* how long a write waits for another writer; 0: 10000 */
	size_t batch_rows;     /* metric points per write transaction; 0: 10000 */
	int flush_interval_ms; /* the longest a point waits in memory; 0: 1000 */
	int no_reap;           /* when set, open does not call mlx_rundb_reap */
	int read_only;         /* open for reading only: no migration, no reaping */
};

/* Opens (creating if needed) the database at path and brings its schema up
 * to date; then, unless opts->no_reap, marks the dead runs of this host
 * KILLED (mlx_rundb_reap). opts may be NULL for the defaults. With
 * opts->read_only the file must exist with the current schema, nothing is
 * written, and every write fails with MLX_ERR_IO (for a read-only mount,
 * a read-only file or a full disk). On success *out is a handle for
 * mlx_rundb_close. Returns 0; MLX_ERR_IO if the file cannot be opened or
 * written; MLX_ERR_CORRUPT if it is not an SQLite database; MLX_ERR_INVALID
 * if a newer mlx wrote its schema (or, read-only, an older one); MLX_ERR_BUSY
 * if another writer held it past the busy timeout. */
int mlx_rundb_open(const char *path, const struct mlx_rundb_options *opts, struct mlx_rundb **out,
                   struct mlx_err *err);

/* Writes what is buffered, stops the flush thread and frees db (even when
 * the last write fails). Safe on NULL. Returns 0 or the error of that last
 * write, whose points are then lost. */
int mlx_rundb_close(struct mlx_rundb *db, struct mlx_err *err);

/* The path db was opened with. */
const char *mlx_rundb_path(const struct mlx_rundb *db);

/* The schema version of the open database (PRAGMA user_version). */
int mlx_rundb_schema_version(struct mlx_rundb *db);

/* Marks KILLED every RUNNING run recorded by a process of this host that no
 * longer exists: its pid is gone, is a zombie, or belongs to a process
 * started at another time (pid reuse) or in another boot. Runs of other
 * hosts and other pid namespaces are left alone: their liveness cannot be
 * seen from here. A dead run whose process left an end marker (see
 * mlx_rundb_finish) ends as the marker says instead: FAILED (KILLED if it
 * was interrupted) with its message and why it could not be recorded; the
 * marker is then removed. The process group a dead run recorded
 * (mlx_rundb_set_group) is sent SIGKILL if its leader is still the process
 * recorded. If killed is not NULL it gets the number ended. */
int mlx_rundb_reap(struct mlx_rundb *db, int *killed, struct mlx_err *err);

/* Fills what a run records of the process that starts it: the host name
 * ($MLX_HOSTNAME if set, else gethostname), the user and this process's
 * identity ("boot:pid-namespace:start", as runs.proc_start). For other
 * backends of the tracking database. */
void mlx_rundb_describe_self(char host[256], char user[64], char ident[128]);

/* Whether the process recorded as pid with identity ident (as runs.proc_start)
 * still runs, seen from this process: 1 it does, 0 it is gone (exited, the
 * pid reused, or the machine rebooted), -1 cannot tell (another pid
 * namespace, or a malformed ident). */
int mlx_rundb_process_liveness(long pid, const char *ident);

/* Writes the identity of process pid (as runs.proc_start) into ident.
 * Returns 0, or MLX_ERR_NOTFOUND if there is no such process. */
int mlx_rundb_process_ident(long pid, char ident[128]);

/* Sends SIGKILL to process group pgid if its leader is still the process
 * of identity ident (what mlx_rundb_reap does for a dead run's group).
 * Returns pgid if it did, else 0. */
long mlx_rundb_end_group(long pgid, const char *ident);

/* Records that run id (RUNNING, owned by this process) runs its command in
 * process group pgid, led by process pgid, with that process's identity
 * (boot, pid namespace, start time). When the run is later found dead,
 * mlx_rundb_reap kills the group if its leader is still that process.
 * Buffered like a param: written within the flush interval, or at the
 * next flush or finish. Returns 0 (also when pgid is gone already:
 * nothing to record); MLX_ERR_INVALID for a pgid <= 1; MLX_ERR_NOMEM; or
 * the error of a batch write this call triggered. */
int mlx_rundb_set_group(struct mlx_rundb *db, const char *id, long pgid, struct mlx_err *err);

/* What is known when a run starts; every field may be NULL/0. */
struct mlx_run_start {
	const char *parent_id; /* the run this one is part of (a recipe's run) */
	const char *recipe;    /* the recipe file, relative to the project root */
	const char *recipe_hash;
	const char *step; /* the step name, for a step run */
	const char *step_key;
	const char *command;  /* the command line, as a user would type it */
	const char *log_path; /* where its output is captured */
	const char *git_commit, *git_branch;
	int git_dirty;    /* 1 dirty, 0 clean, -1 unknown (not a git work tree) */
	int64_t start_ms; /* 0: now */
	int with_ends;    /* 1: write the buffered ends of runs (and all that is
	                   * buffered) in the same transaction */
};

/* Records a new RUNNING run owned by this process (its host, user, pid and
 * process start time are recorded, so mlx_rundb_reap can tell when it dies)
 * and writes its id. With run->with_ends, the buffered ends are written in
 * the same transaction (a step started after steps it depends on ended
 * finds their runs ended). Returns 0 or an error as for a write. */
int mlx_rundb_start(struct mlx_rundb *db, const struct mlx_run_start *run, char id[MLX_RUN_ID_SIZE],
                    struct mlx_err *err);

/* How a run ended. Unknown numbers are negative (exit_code, cpu_seconds,
 * wall_seconds, peak_rss) or 0 (signal, end_ms: now). */
struct mlx_run_end {
	const char *status;  /* "FINISHED", "FAILED", "KILLED" or "CACHED" */
	const char *message; /* why it failed or was killed, or NULL */
	int exit_code;
	int signal;
	double cpu_seconds;
	double wall_seconds; /* < 0: end time minus start time */
	int64_t peak_rss;    /* bytes */
	int64_t end_ms;
};

/* Writes everything buffered and ends the run, in one transaction. Returns
 * 0; MLX_ERR_INVALID for an unknown status or a run that is not RUNNING
 * (finished before, or marked KILLED); MLX_ERR_NOTFOUND for an unknown id;
 * an error as for a write. When the write fails (MLX_ERR_IO: a full disk,
 * a read-only file; MLX_ERR_BUSY), it leaves an end marker beside the
 * database, "<path>-end-<id>", holding the end (as much of it as the disk
 * takes), from which mlx_rundb_reap records it once the process is gone. */
int mlx_rundb_finish(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end,
                     struct mlx_err *err);

/* Ends run id as mlx_rundb_finish does, but with the next batch (a start
 * with_ends, the flush interval, 32 ends buffered, a flush, a query, a
 * finish or close) instead of a transaction of its own: a pipeline's steps
 * end hundreds a second, and a transaction each cost a tenth of mlx's own
 * time. The end
 * time is taken now. Until the batch is written the run reads as RUNNING;
 * if the write fails (MLX_ERR_IO, MLX_ERR_BUSY) each buffered end goes to
 * its run's end marker, as mlx_rundb_finish's own does. A run no longer
 * RUNNING when the batch is written keeps its status, unreported. Returns
 * 0; MLX_ERR_INVALID for an unknown status; MLX_ERR_NOMEM; or the error of
 * a batch write this call triggered. */
int mlx_rundb_finish_buffered(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end,
                              struct mlx_err *err);

/* Buffers one metric point of run id. step may be MLX_STEP_AUTO; ts_ms 0
 * means now; value may be NaN or infinite. The point of the highest step of
 * each metric is its latest value (latest_metrics). If step_out is not NULL
 * it gets the step used. Returns 0; MLX_ERR_INVALID for an empty key or a
 * key over 250 bytes; or the error of a batch write this call triggered —
 * the points stay buffered then and are written by a later flush. */
int mlx_rundb_log_metric(struct mlx_rundb *db, const char *id, const char *key, int64_t step, double value,
                         int64_t ts_ms, int64_t *step_out, struct mlx_err *err);

/* Buffers a parameter (a later value for the same key replaces it). A value
 * that reads entirely as a finite number is also kept as a number, so that
 * queries can compare it numerically. Returns 0 or MLX_ERR_INVALID (key as
 * for metrics). */
int mlx_rundb_log_param(struct mlx_rundb *db, const char *id, const char *key, const char *value,
                        struct mlx_err *err);

/* Buffers a tag (a later value for the same key replaces it). As log_param. */
int mlx_rundb_set_tag(struct mlx_rundb *db, const char *id, const char *key, const char *value,
                      struct mlx_err *err);

struct mlx_run_artifact {
	const char *role; /* "in" (read by the run) or "out" (written by it) */
	const char *path;
	const char *hash; /* SHA-256 hex of the file or manifest, or NULL */
	int64_t size;     /* bytes, or < 0 if unknown */
	int64_t nfiles;   /* files in a directory, 1 for a file, < 0 if unknown */
};

/* Buffers an artifact record (replacing one of the same run, role and
 * path). Returns 0 or MLX_ERR_INVALID for another role or an empty path. */
int mlx_rundb_log_artifact(struct mlx_rundb *db, const char *id, const struct mlx_run_artifact *art,
                           struct mlx_err *err);

/* Writes everything buffered in one transaction. Returns 0; MLX_ERR_BUSY if
 * another writer held the database past the busy timeout; MLX_ERR_IO. On
 * failure nothing is lost: the buffer is kept for the next flush. */
int mlx_rundb_flush(struct mlx_rundb *db, struct mlx_err *err);

/* ---- reading --------------------------------------------------------- */

enum mlx_rundb_type { MLX_RUNDB_NULL, MLX_RUNDB_INT, MLX_RUNDB_REAL, MLX_RUNDB_TEXT };

struct mlx_rundb_value {
	enum mlx_rundb_type type;
	int64_t i;
	double d;
	const char *s; /* TEXT: not NUL-terminated necessarily; use len */
	size_t len;
};

struct mlx_rundb_query;

/* Prepares one read-only SQL statement (anything that would write is
 * refused) after writing the buffer, so the caller reads its own writes.
 * Values are bound with mlx_rundb_query_bind, never spliced into sql.
 * Returns 0 with *out set; MLX_ERR_INVALID for bad SQL (the message is
 * SQLite's) or a statement that writes; MLX_ERR_BUSY; MLX_ERR_IO. */
int mlx_rundb_query_open(struct mlx_rundb *db, const char *sql, struct mlx_rundb_query **out,
                         struct mlx_err *err);

/* Binds v to parameter index (1-based). Returns 0 or MLX_ERR_INVALID for an
 * index out of range. TEXT is copied. */
int mlx_rundb_query_bind(struct mlx_rundb_query *q, int index, const struct mlx_rundb_value *v,
                         struct mlx_err *err);

/* Steps to the next row. Returns 1 for a row, 0 at the end, or a negative
 * error (MLX_ERR_BUSY, MLX_ERR_CORRUPT, MLX_ERR_IO). */
int mlx_rundb_query_next(struct mlx_rundb_query *q, struct mlx_err *err);

/* The number of result columns, and the name of column i (0-based). */
int mlx_rundb_query_columns(struct mlx_rundb_query *q);
const char *mlx_rundb_query_name(struct mlx_rundb_query *q, int i);

/* Column i of the current row; TEXT and BLOB point into the query until the
 * next step. */
void mlx_rundb_query_column(struct mlx_rundb_query *q, int i, struct mlx_rundb_value *v);

/* Frees q. Safe on NULL. */
void mlx_rundb_query_close(struct mlx_rundb_query *q);

/* Fills this connection's temporary tables exp_metrics (run_id, key, step,
 * ts, value) and exp_params (run_id, key, value, num), replacing what they
 * held, with the values of the experiments table for the given keys: for
 * each run, a metric's latest value from the step run (a run whose parent
 * it is) that started last, else its own; a param's own value, else that
 * of the step run that started last. Queries then read them as
 * temp.exp_metrics and temp.exp_params, one index lookup per value, which
 * is what makes sorting and filtering 10,000 runs fast. Returns 0 or an
 * error as for a query (MLX_ERR_BUSY, MLX_ERR_IO). */
int mlx_rundb_exp_join(struct mlx_rundb *db, const char *const *metric_keys, size_t nmetrics,
                       const char *const *param_keys, size_t nparams, struct mlx_err *err);

/* ---- changing runs after the fact (rundb_edit.c) ------------------------ */

/* Deletes the tag key of run id. Returns 0; MLX_ERR_NOTFOUND for an unknown
 * run or a run without that tag; an error as for a write. */
int mlx_rundb_delete_tag(struct mlx_rundb *db, const char *id, const char *key, struct mlx_err *err);

/* Deletes the runs ids[0..n) and every run below them (their step runs, and
 * theirs), with their params, metrics, latest metrics, tags and artifacts,
 * in one transaction: all or nothing. Refuses, deleting nothing, with
 * MLX_ERR_NOTFOUND for an unknown id, and MLX_ERR_INVALID for a run still
 * RUNNING or one that a model version names as its run (the message names
 * the first such run and the version, NAME:VERSION). If deleted is not NULL
 * it gets the number of runs deleted. */
int mlx_rundb_delete_runs(struct mlx_rundb *db, const char *const *ids, size_t n, int *deleted,
                          struct mlx_err *err);

/* Copies every metric point of run from_id, and its latest values, to run
 * to_id (same keys, steps and times), replacing points of to_id with the
 * same key and step: for a run that stands for another, as a step restored
 * from the run-cache stands for the run that produced its outs. Returns 0;
 * MLX_ERR_NOTFOUND for an unknown run; an error as for a write. */
int mlx_rundb_copy_metrics(struct mlx_rundb *db, const char *to_id, const char *from_id, struct mlx_err *err);

#endif
