/* pg.h — a PostgreSQL connection for the tracking database (DESIGN §5),
 * over libpq; built into mlx_pg.so only, so that mlx starts without
 * loading libpq.
 *
 * The tracking code writes its SQL once, in the dialect both backends
 * share; what differs is translated here and nowhere else: SQLite's
 * parameters ?, ?NNN become $N, and its schema prefixes main. and temp.
 * become the project's schema (on the search path) and pg_temp.
 *
 * A connection is used by one thread at a time. A heartbeat keeps its own
 * connection and thread, so that a run's liveness is written even while
 * the process that owns it is busy. Strings passed in are copied or used
 * only during the call; results are owned by the caller (mlx_pg_clear). */
#ifndef MLX_PG_H
#define MLX_PG_H

#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct mlx_pg;

/* Connects to uri (any libpq connection string or URI, passed through
 * unchanged) and, if schema is not NULL, creates that schema if missing
 * and puts it first on the search path. password, if not NULL, is used
 * when the URI and the environment (PGPASSWORD, ~/.pgpass) give none.
 * Returns 0 with *out set; MLX_ERR_IO if the server cannot be reached;
 * MLX_ERR_INVALID if it refuses the login (a password missing or wrong, a
 * role or database it lacks) or for a malformed URI or schema name (the
 * message is libpq's, which never holds the password). */
int mlx_pg_connect(const char *uri, const char *password, const char *schema, struct mlx_pg **out,
                   struct mlx_err *err);

/* Closes the connection and frees pg. Safe on NULL. */
void mlx_pg_close(struct mlx_pg *pg);

/* Translates sql from the shared dialect to PostgreSQL's (see above) into
 * a malloc'd string in *out; *nparams gets the number of parameters it
 * takes. Text in quotes and comments is left alone. Returns 0 or
 * MLX_ERR_NOMEM. */
int mlx_pg_translate(const char *sql, char **out, int *nparams, struct mlx_err *err);

/* A parameter: type is 0 (NULL), 'i' (integer), 'd' (double) or 's'
 * (text of len bytes). */
struct mlx_pg_param {
	int type;
	int64_t i;
	double d;
	const char *s;
	size_t len;
};

/* Runs one statement of the shared dialect with params[0..n) and sets *res
 * to its result (free with PQclear), rows or none. Returns 0;
 * MLX_ERR_INVALID for bad SQL, a violated constraint or wrong parameters
 * (the message is the server's); MLX_ERR_BUSY for a deadlock or a
 * serialization failure, which a retry may cure; MLX_ERR_IO when the
 * connection is lost. */
int mlx_pg_exec(struct mlx_pg *pg, const char *sql, const struct mlx_pg_param *params, int n, PGresult **res,
                struct mlx_err *err);

/* Sends data (len bytes of COPY text format) with copy_sql, a "COPY …
 * FROM STDIN" statement. Returns 0 or an error as for mlx_pg_exec. */
int mlx_pg_copy(struct mlx_pg *pg, const char *copy_sql, const char *data, size_t len, struct mlx_err *err);

/* ---- heartbeats ------------------------------------------------------- */

struct mlx_pg_heartbeat;

/* Starts a thread with its own connection (as mlx_pg_connect) that sets
 * runs.heartbeat to the time now, in milliseconds, of the RUNNING runs
 * added with mlx_pg_heartbeat_add, every interval_ms. Returns 0 with *out
 * set or an error as for mlx_pg_connect. Beats that fail are retried at
 * the next interval, reconnecting if needed: a run is only taken for dead
 * when no beat succeeded for the heartbeat limit. */
int mlx_pg_heartbeat_start(const char *uri, const char *password, const char *schema, int interval_ms,
                           struct mlx_pg_heartbeat **out, struct mlx_err *err);

/* Adds or removes run id (at most 31 bytes) from the runs beaten for.
 * Returns 0, MLX_ERR_INVALID for a longer id, or MLX_ERR_NOMEM. */
int mlx_pg_heartbeat_add(struct mlx_pg_heartbeat *hb, const char *id, struct mlx_err *err);
void mlx_pg_heartbeat_remove(struct mlx_pg_heartbeat *hb, const char *id);

/* Stops the thread, closes its connection and frees hb. Safe on NULL. */
void mlx_pg_heartbeat_stop(struct mlx_pg_heartbeat *hb);

#endif
