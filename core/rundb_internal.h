/* rundb_internal.h — what rundb.c (connection, schema, runs), rundb_write.c
 * (the write buffer and its flush thread) and rundb_query.c (reading)
 * share, with registry.c (the model registry's writes). Not for use
 * outside those files. */
#ifndef MLX_RUNDB_INTERNAL_H
#define MLX_RUNDB_INTERNAL_H

#include <pthread.h>
#include <sqlite3.h>

#include "rundb.h"

/* The prepared statements of a handle, made on first use. */
enum rundb_stmt {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_INSERT_METRIC,
	ST_UPSERT_LATEST,
	ST_MAX_STEP,
	ST_UPSERT_PARAM,
	ST_UPSERT_TAG,
	ST_UPSERT_ARTIFACT,
	ST_INSERT_RUN,
	ST_FINISH_RUN,
	ST_RUN_STATUS,
	ST_RUNNING_HERE,
	ST_REAP,
	ST_SET_GROUP,
	ST_COUNT
};

/* One metric of one run, as this handle knows it. */
struct series {
	char *run, *key; /* owned */
	uint64_t hash;
	int64_t last_step;        /* highest step logged through this handle */
	int has_last;             /* last_step is set */
	int checked_db;           /* last_step accounts for the steps already in the database */
	int touched;              /* the buffer holds points of this series */
	int64_t top_step, top_ts; /* the buffered point with the highest step */
	double top_value;
};

struct metric_row {
	uint32_t series;
	int64_t step, ts;
	double value;
};

enum pending_kind { PENDING_PARAM, PENDING_TAG, PENDING_ARTIFACT, PENDING_GROUP, PENDING_END };

/* A buffered param, tag, artifact, process group or end of a run; the
 * strings are owned. */
struct pending {
	enum pending_kind kind;
	char *run;
	char *key, *value;    /* param and tag; artifact: role, path; group: NULL, leader's identity;
	                         end: NULL, the message or NULL */
	char *hash;           /* artifact */
	int64_t size, nfiles; /* artifact; group: size is the group id */
	struct mlx_run_end end; /* end: its status is a constant, its message is value */
};

/* An end marker of a handle (rundb_end.c): "<db path>-end-slot-<pid>-<n>",
 * held by the run whose end it would keep, free when run is "". */
struct rundb_end_slot {
	char run[MLX_RUN_ID_SIZE];
	int n;
	int written; /* it holds an end that could not be recorded */
};

struct mlx_rundb {
	sqlite3 *sql;
	char *path;
	sqlite3_stmt *stmts[ST_COUNT];
	int busy_timeout_ms, flush_interval_ms;
	size_t batch_rows;

	/* Everything below, and the connection, is guarded by lock: the flush
	 * thread writes the buffer while the caller may be logging. */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t flusher;
	int flusher_started, stopping;
	int open_queries; /* the flush thread leaves a reading connection alone */

	struct series *series;
	size_t nseries, cap_series;
	uint32_t *slots; /* open addressing: series index + 1, 0 = empty */
	size_t nslots;

	struct metric_row *rows;
	size_t nrows, cap_rows;
	struct pending *pending;
	size_t npending, cap_pending;
	int64_t oldest_ms; /* when the oldest buffered write was made */

	int64_t last_id_ms;   /* the time and random part of the last run id made */
	uint32_t last_id_rnd; /* here, so ids of one handle always increase */

	char host[256];
	char user[64];
	char proc_ident[128]; /* boot id:pid namespace:start ticks of this process */
	struct rundb_end_slot *end_slots; /* the markers this handle made */
	int nend_slots, cap_end_slots, next_end_slot;
	int nends;     /* ends of runs in the buffer (PENDING_END) */
	int wal_pages; /* the WAL's pages after this handle's last commit */
};

/* Sets *st to the prepared statement `which`, reset. Returns 0 or the
 * error of preparing it. */
int rundb_stmt(struct mlx_rundb *db, enum rundb_stmt which, sqlite3_stmt **st, struct mlx_err *err);

/* Fills err from the last error of db's connection (or rc), prefixed with
 * what was being done; returns the mlx status. */
int rundb_fail(struct mlx_rundb *db, int rc, struct mlx_err *err, const char *doing);

/* Steps a statement that returns no rows and resets it. */
int rundb_exec(struct mlx_rundb *db, sqlite3_stmt *st, struct mlx_err *err, const char *doing);

/* BEGIN IMMEDIATE, COMMIT, and a ROLLBACK that ignores errors. */
int rundb_begin(struct mlx_rundb *db, struct mlx_err *err);
int rundb_commit(struct mlx_rundb *db, struct mlx_err *err);
void rundb_rollback(struct mlx_rundb *db);

/* Milliseconds since the epoch. */
int64_t rundb_now_ms(void);

/* Buffers the process group of run id and its leader's identity, written
 * with the next batch (rundb_write.c). Returns 0 or MLX_ERR_NOMEM. */
int rundb_buffer_group(struct mlx_rundb *db, const char *id, long pgid, const char *ident,
                       struct mlx_err *err);

/* Buffers the end of run id (mlx_rundb_finish_buffered), its end time
 * taken now (rundb_write.c). Returns 0, MLX_ERR_NOMEM or the error of the
 * batch write it triggered. */
int rundb_buffer_end(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end,
                     struct mlx_err *err);

/* A write of the buffer failed with rc: for an MLX_ERR_IO or MLX_ERR_BUSY,
 * the buffered ends go to their runs' end markers (why: the error), as
 * mlx_rundb_finish does for its own. The buffer is kept. */
void rundb_buffer_unwritten(struct mlx_rundb *db, int rc, const char *why);

/* Writes the buffer in the open transaction (rundb_write.c). On failure the
 * buffer is unchanged. */
int rundb_write_buffer(struct mlx_rundb *db, struct mlx_err *err);

/* After a successful commit: forgets what rundb_write_buffer wrote, and
 * retires the end markers of the runs whose ends it wrote. */
void rundb_clear_buffer(struct mlx_rundb *db);

/* Flushes with the lock held (rundb_write.c). */
int rundb_flush_locked(struct mlx_rundb *db, struct mlx_err *err);

/* Binds the end of run id to the prepared ST_FINISH_RUN statement st. */
void rundb_bind_end(sqlite3_stmt *st, const char *id, const struct mlx_run_end *end);

/* Frees the buffer and the series (rundb_write.c). */
void rundb_free_buffer(struct mlx_rundb *db);

/* Stops and joins the flush thread, if started; lock not held. */
void rundb_stop_flusher(struct mlx_rundb *db);

/* The end of a run that could not be recorded, as its end marker holds it
 * (rundb_end.c). Strings point into text, which the caller frees. */
struct rundb_end_marker {
	char *text;
	const char *status;  /* "FINISHED", "FAILED", "KILLED" or "CACHED" */
	const char *why;     /* the error that kept it from being recorded */
	const char *message; /* the run's own message, "" for none */
	int exit_code, signal;
	int64_t end_ms;
};

/* Gives the new run id an end marker with space reserved for its end: a
 * free slot of the handle, else a new one, else (past SLOTS_MAX) a file of
 * its own name, "<db path>-end-<id>". Best effort: without it a run whose
 * end cannot be written is taken for a killed one. */
void rundb_end_marker_reserve(struct mlx_rundb *db, const char *id);

/* Writes the end of run id and why it could not be recorded into its end
 * marker, as much as the disk takes. Best effort. */
void rundb_end_marker_write(struct mlx_rundb *db, const char *id, const struct mlx_run_end *end,
                            const char *why);

/* Reads the end of run id, whose process was pid, from its marker: its own
 * name, else one of pid's slots. Returns 1 and fills m (free m->text) if
 * one holds its end; 0 if its named marker exists but holds none (its
 * process died before its end); -1 if there is none. */
int rundb_end_marker_read(struct mlx_rundb *db, const char *id, long pid, struct rundb_end_marker *m);

/* Removes the marker of run id's own name, if there is one. */
void rundb_end_marker_remove(struct mlx_rundb *db, const char *id);

/* The end of run id is recorded: its slot is free again (made bare if an
 * end had been written into it); a marker of its own name is removed. */
void rundb_end_marker_retire(struct mlx_rundb *db, const char *id);

/* At close: removes the handle's slots, but renames one holding an
 * unrecorded end to its run's own name, for the reaper. */
void rundb_end_slots_close(struct mlx_rundb *db);

/* Removes the slots of process pid (a dead process's, when its runs are
 * reaped). */
void rundb_end_slots_remove(struct mlx_rundb *db, long pid);

#endif
