/* pg.c — a PostgreSQL connection for the tracking database: connecting
 * into a project's schema, the dialect translation, statements, COPY and
 * the heartbeat thread (pg.h). */
#include "pg.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct mlx_pg {
	PGconn *conn;
};

/* Server notices (CREATE SCHEMA IF NOT EXISTS says it exists) are not
 * the user's business: core never prints. */
static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* libpq's messages end in a newline and may span lines; the first line
 * says what went wrong. */
static int fail_conn(struct mlx_err *err, int status, const char *doing, const char *msg)
{
	size_t n = strcspn(msg, "\n");
	while (n > 0 && (msg[n - 1] == ' ' || msg[n - 1] == '\r'))
		n--;
	return mlx_err_set(err, status, 0, "%s: %.*s", doing, (int)n, msg);
}

static int fail_result(struct mlx_pg *pg, PGresult *res, struct mlx_err *err, const char *doing)
{
	const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	const char *msg = res ? PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY) : NULL;
	if (!msg || !*msg)
		msg = PQerrorMessage(pg->conn);
	int status = MLX_ERR_INVALID;
	if (PQstatus(pg->conn) != CONNECTION_OK || !state)
		status = MLX_ERR_IO;
	else if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0 ||
	         strncmp(state, "55P03", 5) == 0)
		status = MLX_ERR_BUSY;
	else if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0 ||
	         strncmp(state, "57", 2) == 0 || strncmp(state, "58", 2) == 0 || strncmp(state, "XX", 2) == 0)
		status = MLX_ERR_IO;
	return fail_conn(err, status, doing, msg);
}

static int valid_schema(const char *schema)
{
	if (!schema || !*schema || strlen(schema) > 63)
		return 0;
	for (const char *p = schema; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
			return 0;
	return 1;
}

static int simple(struct mlx_pg *pg, const char *sql, struct mlx_err *err, const char *doing)
{
	PGresult *res = PQexec(pg->conn, sql);
	int ok = res && (PQresultStatus(res) == PGRES_COMMAND_OK || PQresultStatus(res) == PGRES_TUPLES_OK);
	int rc = ok ? MLX_OK : fail_result(pg, res, err, doing);
	PQclear(res);
	return rc;
}

/* Does uri carry a password: "password=" as a keyword or parameter, or
 * "user:password@" in a URI's authority? */
static int uri_has_password(const char *uri)
{
	if (strstr(uri, "password="))
		return 1;
	const char *authority = strstr(uri, "://");
	if (!authority)
		return 0;
	authority += 3;
	size_t len = strcspn(authority, "/?#");
	const char *at = memchr(authority, '@', len);
	return at && memchr(authority, ':', (size_t)(at - authority)) != NULL;
}

static int connect_raw(const char *uri, const char *password, PGconn **out, struct mlx_err *err)
{
	const char *keys[4] = {"dbname", NULL, NULL, NULL};
	const char *values[4] = {uri, NULL, NULL, NULL};
	int n = 1;
	keys[n] = "application_name";
	values[n++] = "mlx";
	/* PQconnectdbParams lets later keywords override what the URI says;
	 * the password is added only when neither the URI nor PGPASSWORD has
	 * one, so that those win over the project's local config (an empty
	 * PGPASSWORD gives none, as libpq takes it). */
	const char *env_password = getenv("PGPASSWORD");
	if (password && *password && !(env_password && *env_password) && !uri_has_password(uri)) {
		keys[n] = "password";
		values[n++] = password;
	}
	PGconn *conn = PQconnectdbParams(keys, values, 1);
	if (!conn)
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "cannot connect to PostgreSQL: out of memory");
	if (PQstatus(conn) != CONNECTION_OK) {
		char msg[MLX_ERR_MSG_MAX];
		snprintf(msg, sizeof msg, "%s", PQerrorMessage(conn));
		/* A login the server refused (no password, a wrong one, a role or
		 * database it does not have) is the configuration's fault: no
		 * retry cures it, so it is MLX_ERR_INVALID, and a missing
		 * password says so in words rather than libpq's "fe_sendauth".
		 * The server's words are matched as it sends them in English; in
		 * another language a refusal stays MLX_ERR_IO, with its message. A
		 * malformed URI fails before any connection is tried. */
		int needs_password = PQconnectionNeedsPassword(conn);
		int refused = strstr(msg, "authentication failed") || strstr(msg, "does not exist") ||
		              strstr(msg, "pg_hba.conf");
		int malformed = strstr(msg, "invalid") && !strstr(msg, "connection to server");
		PQfinish(conn);
		if (needs_password)
			return mlx_err_set(
			    err, MLX_ERR_INVALID, 0,
			    "cannot connect to PostgreSQL: the server wants a password and none was given");
		int status = refused || malformed ? MLX_ERR_INVALID : MLX_ERR_IO;
		return fail_conn(err, status, "cannot connect to PostgreSQL", msg);
	}
	PQsetNoticeProcessor(conn, ignore_notice, NULL);
	*out = conn;
	return MLX_OK;
}

static int enter_schema(struct mlx_pg *pg, const char *schema, struct mlx_err *err)
{
	if (!schema)
		return MLX_OK;
	char sql[160];
	/* Another process may create it at the same moment: IF NOT EXISTS
	 * still races in the catalog, so a duplicate is taken as success. */
	snprintf(sql, sizeof sql, "CREATE SCHEMA IF NOT EXISTS \"%s\"", schema);
	PGresult *res = PQexec(pg->conn, sql);
	int ok = res && PQresultStatus(res) == PGRES_COMMAND_OK;
	if (!ok) {
		const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
		if (!state || (strcmp(state, "23505") != 0 && strcmp(state, "42P06") != 0)) {
			int rc = fail_result(pg, res, err, "cannot create the project's schema");
			PQclear(res);
			return rc;
		}
	}
	PQclear(res);
	/* A schema another role made, without a grant to this one, is left off
	 * the search path without a word, and the first CREATE TABLE says "no
	 * schema has been selected to create in": say what is wrong instead. */
	const char *params[1] = {schema};
	res = PQexecParams(pg->conn,
	                   "SELECT has_schema_privilege($1, 'USAGE') AND has_schema_privilege($1, 'CREATE'),"
	                   " pg_get_userbyid(nspowner), current_user FROM pg_namespace WHERE nspname = $1",
	                   1, NULL, params, NULL, NULL, 0);
	if (!res || PQresultStatus(res) != PGRES_TUPLES_OK) {
		int rc = fail_result(pg, res, err, "cannot read the project's schema");
		PQclear(res);
		return rc;
	}
	if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
		int rc = mlx_err_set(
		    err, MLX_ERR_INVALID, 0,
		    "role %s may not use the schema %s of this project (role %s made it): connect as"
		    " %s, or have it grant the schema to %s (docs/tracking.md, \"Projects\")",
		    PQgetvalue(res, 0, 2), schema, PQgetvalue(res, 0, 1), PQgetvalue(res, 0, 1),
		    PQgetvalue(res, 0, 2));
		PQclear(res);
		return rc;
	}
	PQclear(res);
	snprintf(sql, sizeof sql, "SET search_path TO \"%s\"", schema);
	return simple(pg, sql, err, "cannot enter the project's schema");
}

int mlx_pg_connect(const char *uri, const char *password, const char *schema, struct mlx_pg **out,
                   struct mlx_err *err)
{
	*out = NULL;
	if (schema && !valid_schema(schema))
		return mlx_err_set(err, MLX_ERR_INVALID, 0,
		                   "schema name %s: use 1 to 63 lowercase letters, digits or _", schema);
	struct mlx_pg *pg = calloc(1, sizeof *pg);
	if (!pg)
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory");
	int rc = connect_raw(uri, password, &pg->conn, err);
	if (rc == MLX_OK)
		rc = simple(pg, "SET client_min_messages = warning", err, "cannot set up the connection");
	if (rc == MLX_OK)
		rc = enter_schema(pg, schema, err);
	if (rc != MLX_OK) {
		mlx_pg_close(pg);
		return rc;
	}
	*out = pg;
	return MLX_OK;
}

void mlx_pg_close(struct mlx_pg *pg)
{
	if (!pg)
		return;
	if (pg->conn)
		PQfinish(pg->conn);
	free(pg);
}

/* ---- the dialect ------------------------------------------------------ */

static int is_ident(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static int prefix_at(const char *sql, const char *p, const char *word)
{
	size_t n = strlen(word);
	return strncmp(p, word, n) == 0 && (p == sql || !is_ident(p[-1]));
}

int mlx_pg_translate(const char *sql, char **out, int *nparams, struct mlx_err *err)
{
	size_t len = strlen(sql);
	/* "?" becomes at most "$NNNNN", "temp." "pg_temp.": 3 more each. */
	char *buf = malloc(len * 4 + 1);
	if (!buf)
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory");
	char *w = buf;
	int max = 0;
	for (const char *p = sql; *p;) {
		if (*p == '\'' || *p == '"') {
			char q = *p;
			*w++ = *p++;
			while (*p) {
				if (*p == q && p[1] == q) {
					*w++ = *p++;
					*w++ = *p++;
				} else if (*p == q) {
					*w++ = *p++;
					break;
				} else {
					*w++ = *p++;
				}
			}
		} else if (p[0] == '-' && p[1] == '-') {
			while (*p && *p != '\n')
				*w++ = *p++;
		} else if (*p == '?') {
			p++;
			int n;
			if (*p >= '0' && *p <= '9') {
				n = (int)strtol(p, (char **)&p, 10);
			} else {
				n = max + 1; /* as SQLite: one more than the largest so far */
			}
			if (n > max)
				max = n;
			w += sprintf(w, "$%d", n);
		} else if (prefix_at(sql, p, "main.")) {
			p += 5; /* the project's schema is first on the search path */
		} else if (prefix_at(sql, p, "temp.")) {
			memcpy(w, "pg_temp.", 8);
			w += 8;
			p += 5;
		} else {
			*w++ = *p++;
		}
	}
	*w = '\0';
	*out = buf;
	*nparams = max;
	return MLX_OK;
}

/* ---- statements ------------------------------------------------------- */

int mlx_pg_exec(struct mlx_pg *pg, const char *sql, const struct mlx_pg_param *params, int n, PGresult **res,
                struct mlx_err *err)
{
	*res = NULL;
	char *text;
	int want;
	int rc = mlx_pg_translate(sql, &text, &want, err);
	if (rc != MLX_OK)
		return rc;
	int given = n;
	if (n < want)
		n = want; /* missing parameters are NULL, as in SQLite */
	Oid *types = calloc((size_t)n + 1, sizeof *types);
	const char **values = calloc((size_t)n + 1, sizeof *values);
	int *lengths = calloc((size_t)n + 1, sizeof *lengths);
	char(*scratch)[32] = calloc((size_t)n + 1, sizeof *scratch);
	if (!types || !values || !lengths || !scratch) {
		rc = mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory");
		goto out;
	}
	for (int i = 0; i < n; i++) {
		const struct mlx_pg_param *v = params && i < given ? &params[i] : NULL;
		if (!v || v->type == 0)
			continue;
		if (v->type == 'i') {
			types[i] = 20; /* int8 */
			snprintf(scratch[i], sizeof scratch[i], "%" PRId64, v->i);
			values[i] = scratch[i];
		} else if (v->type == 'd') {
			types[i] = 701; /* float8 */
			if (isnan(v->d))
				strcpy(scratch[i], "NaN");
			else if (isinf(v->d))
				strcpy(scratch[i], v->d > 0 ? "Infinity" : "-Infinity");
			else
				snprintf(scratch[i], sizeof scratch[i], "%.17g", v->d);
			values[i] = scratch[i];
		} else {
			values[i] = v->s; /* untyped: the server infers it from its use */
			lengths[i] = (int)v->len;
		}
	}
	*res = PQexecParams(pg->conn, text, n, types, values, lengths, NULL, 0);
	ExecStatusType st = *res ? PQresultStatus(*res) : PGRES_FATAL_ERROR;
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
		rc = fail_result(pg, *res, err, "PostgreSQL");
		PQclear(*res);
		*res = NULL;
	}
out:
	free(text);
	free(types);
	free(values);
	free(lengths);
	free(scratch);
	return rc;
}

int mlx_pg_copy(struct mlx_pg *pg, const char *copy_sql, const char *data, size_t len, struct mlx_err *err)
{
	PGresult *res = PQexec(pg->conn, copy_sql);
	if (!res || PQresultStatus(res) != PGRES_COPY_IN) {
		int rc = fail_result(pg, res, err, "cannot start COPY");
		PQclear(res);
		return rc;
	}
	PQclear(res);
	/* In pieces: PQputCopyData takes an int length. */
	const size_t piece = 1 << 20;
	for (size_t off = 0; off < len; off += piece) {
		size_t n = len - off < piece ? len - off : piece;
		if (PQputCopyData(pg->conn, data + off, (int)n) != 1) {
			PQputCopyEnd(pg->conn, "send failed");
			break;
		}
	}
	if (PQputCopyEnd(pg->conn, NULL) != 1)
		return fail_conn(err, MLX_ERR_IO, "COPY", PQerrorMessage(pg->conn));
	int rc = MLX_OK;
	while ((res = PQgetResult(pg->conn)) != NULL) {
		if (PQresultStatus(res) != PGRES_COMMAND_OK && rc == MLX_OK)
			rc = fail_result(pg, res, err, "COPY");
		PQclear(res);
	}
	return rc;
}

/* ---- heartbeats ------------------------------------------------------- */

#define HB_ID_MAX 32

struct mlx_pg_heartbeat {
	char *uri, *password, *schema;
	int interval_ms;
	struct mlx_pg *pg; /* the thread's own; NULL while disconnected */
	pthread_mutex_t lock;
	pthread_cond_t wake;
	pthread_t thread;
	int stopping;
	char (*ids)[HB_ID_MAX];
	size_t nids, cap;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One beat: with the lock held, the ids as a PostgreSQL array literal. */
static void beat(struct mlx_pg_heartbeat *hb)
{
	if (hb->nids == 0)
		return;
	size_t cap = hb->nids * (HB_ID_MAX + 3) + 3;
	char *list = malloc(cap), *w = list;
	if (!list)
		return;
	*w++ = '{';
	for (size_t i = 0; i < hb->nids; i++)
		w += sprintf(w, "%s\"%s\"", i ? "," : "", hb->ids[i]);
	*w++ = '}';
	*w = '\0';
	pthread_mutex_unlock(&hb->lock);
	struct mlx_err err;
	if (!hb->pg)
		mlx_pg_connect(hb->uri, hb->password, hb->schema, &hb->pg, &err);
	if (hb->pg) {
		struct mlx_pg_param p[2] = {{.type = 'i', .i = now_ms()},
		                            {.type = 's', .s = list, .len = strlen(list)}};
		PGresult *res;
		if (mlx_pg_exec(hb->pg,
		                "UPDATE runs SET heartbeat = ?1 WHERE id = ANY (CAST(?2 AS text[]))"
		                " AND status = 'RUNNING'",
		                p, 2, &res, &err) == MLX_OK)
			PQclear(res);
		else if (err.status == MLX_ERR_IO) {
			mlx_pg_close(hb->pg); /* reconnect at the next beat */
			hb->pg = NULL;
		}
	}
	free(list);
	pthread_mutex_lock(&hb->lock);
}

static void *heartbeat_main(void *arg)
{
	struct mlx_pg_heartbeat *hb = arg;
	pthread_mutex_lock(&hb->lock);
	while (!hb->stopping) {
		struct timespec until;
		clock_gettime(CLOCK_REALTIME, &until);
		int64_t ns = until.tv_nsec + (int64_t)hb->interval_ms * 1000000;
		until.tv_sec += (time_t)(ns / 1000000000);
		until.tv_nsec = (long)(ns % 1000000000);
		while (!hb->stopping && pthread_cond_timedwait(&hb->wake, &hb->lock, &until) != ETIMEDOUT)
			;
		if (!hb->stopping)
			beat(hb);
	}
	pthread_mutex_unlock(&hb->lock);
	return NULL;
}

static void heartbeat_free(struct mlx_pg_heartbeat *hb)
{
	mlx_pg_close(hb->pg);
	free(hb->uri);
	free(hb->password);
	free(hb->schema);
	free(hb->ids);
	pthread_mutex_destroy(&hb->lock);
	pthread_cond_destroy(&hb->wake);
	free(hb);
}

int mlx_pg_heartbeat_start(const char *uri, const char *password, const char *schema, int interval_ms,
                           struct mlx_pg_heartbeat **out, struct mlx_err *err)
{
	*out = NULL;
	struct mlx_pg_heartbeat *hb = calloc(1, sizeof *hb);
	if (!hb)
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory");
	pthread_mutex_init(&hb->lock, NULL);
	pthread_cond_init(&hb->wake, NULL);
	hb->interval_ms = interval_ms > 0 ? interval_ms : 10000;
	hb->uri = strdup(uri);
	hb->password = password ? strdup(password) : NULL;
	hb->schema = schema ? strdup(schema) : NULL;
	if (!hb->uri || (password && !hb->password) || (schema && !hb->schema)) {
		heartbeat_free(hb);
		return mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory");
	}
	int rc = mlx_pg_connect(uri, password, schema, &hb->pg, err);
	if (rc != MLX_OK) {
		heartbeat_free(hb);
		return rc;
	}
	if ((rc = pthread_create(&hb->thread, NULL, heartbeat_main, hb)) != 0) {
		heartbeat_free(hb);
		return mlx_err_sys(err, rc, "cannot start the heartbeat thread");
	}
	*out = hb;
	return MLX_OK;
}

int mlx_pg_heartbeat_add(struct mlx_pg_heartbeat *hb, const char *id, struct mlx_err *err)
{
	if (strlen(id) >= HB_ID_MAX || strpbrk(id, "\"\\{},"))
		return mlx_err_set(err, MLX_ERR_INVALID, 0, "not a run id: %s", id);
	pthread_mutex_lock(&hb->lock);
	int rc = MLX_OK;
	if (hb->nids == hb->cap) {
		size_t cap = hb->cap ? hb->cap * 2 : 8;
		void *ids = realloc(hb->ids, cap * sizeof *hb->ids);
		if (!ids)
			rc = mlx_err_set(err, MLX_ERR_NOMEM, 0, "out of memory");
		else {
			hb->ids = ids;
			hb->cap = cap;
		}
	}
	if (rc == MLX_OK)
		snprintf(hb->ids[hb->nids++], HB_ID_MAX, "%s", id);
	pthread_mutex_unlock(&hb->lock);
	return rc;
}

void mlx_pg_heartbeat_remove(struct mlx_pg_heartbeat *hb, const char *id)
{
	pthread_mutex_lock(&hb->lock);
	for (size_t i = 0; i < hb->nids; i++)
		if (strcmp(hb->ids[i], id) == 0) {
			memmove(hb->ids[i], hb->ids[i + 1], (hb->nids - i - 1) * sizeof *hb->ids);
			hb->nids--;
			break;
		}
	pthread_mutex_unlock(&hb->lock);
}

void mlx_pg_heartbeat_stop(struct mlx_pg_heartbeat *hb)
{
	if (!hb)
		return;
	pthread_mutex_lock(&hb->lock);
	hb->stopping = 1;
	pthread_cond_signal(&hb->wake);
	pthread_mutex_unlock(&hb->lock);
	pthread_join(hb->thread, NULL);
	heartbeat_free(hb);
}
