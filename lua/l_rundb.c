/* l_rundb.c — mlx.rundb: the tracking database (core/rundb.h) for Lua.
 *
 * Two handles: a Db (mlx.RunDb) owns the connection and its write buffer;
 * a Run (mlx.Run) is one RUNNING run of a Db, kept alive by it. The policy
 * — where the database is, git context, the filter language — lives in
 * stdlib/mlx/track.lua; mlx.rundb.Run is the methods table of runs, which
 * that module extends. */
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "binding.h"
#include "rundb.h"

#define DB_MT "mlx.RunDb"
#define RUN_MT "mlx.Run"

struct db_handle {
	struct mlx_rundb *db; /* NULL once closed */
};

struct run_handle {
	struct db_handle *owner; /* the Db userdata, referenced by uservalue 1 */
	char id[MLX_RUN_ID_SIZE];
	char status[16];
};

/* ---- Db ----------------------------------------------------------------- */

static struct db_handle *check_db(lua_State *L, int idx)
{
	struct db_handle *h = luaL_checkudata(L, idx, DB_MT);
	if (!h->db)
		luaL_error(L, "attempt to use a closed runs database");
	return h;
}

struct mlx_rundb *mlx_lua_check_rundb(lua_State *L, int idx)
{
	return check_db(L, idx)->db;
}

static int db_close(lua_State *L)
{
	struct db_handle *h = luaL_checkudata(L, 1, DB_MT);
	struct mlx_err err;
	int rc = mlx_rundb_close(h->db, &err);
	h->db = NULL;
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* rundb.open(path[, {busy_timeout_ms, batch_rows, flush_interval_ms, reap, read_only}])
 * -> Db | nil, message, code */
static int rundb_open(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct mlx_rundb_options opts = {0};
	opts.busy_timeout_ms = (int)mlx_lua_optfield_integer(L, 2, "busy_timeout_ms", 0);
	opts.batch_rows = (size_t)mlx_lua_optfield_integer(L, 2, "batch_rows", 0);
	opts.flush_interval_ms = (int)mlx_lua_optfield_integer(L, 2, "flush_interval_ms", 0);
	opts.no_reap = !mlx_lua_optfield_boolean(L, 2, "reap", 1);
	opts.read_only = mlx_lua_optfield_boolean(L, 2, "read_only", 0);
	/* Created closed before the connection exists, so no path leaks it. */
	struct db_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->db = NULL;
	luaL_setmetatable(L, DB_MT);
	struct mlx_err err;
	if (mlx_rundb_open(path, &opts, &h->db, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

static int db_path(lua_State *L)
{
	lua_pushstring(L, mlx_rundb_path(check_db(L, 1)->db));
	return 1;
}

static int db_schema_version(lua_State *L)
{
	lua_pushinteger(L, mlx_rundb_schema_version(check_db(L, 1)->db));
	return 1;
}

/* db:reap() -> number of runs marked KILLED | nil, message, code */
static int db_reap(lua_State *L)
{
	struct db_handle *h = check_db(L, 1);
	int killed = 0;
	struct mlx_err err;
	if (mlx_rundb_reap(h->db, &killed, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, killed);
	return 1;
}

/* db:flush() -> true | nil, message, code */
static int db_flush(lua_State *L)
{
	struct mlx_err err;
	if (mlx_rundb_flush(check_db(L, 1)->db, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* A query lives in a box while its rows become Lua tables, so that a memory
 * error raised by Lua cannot leak the statement. */
static void release_query(void *contents)
{
	struct mlx_rundb_query **q = contents;
	mlx_rundb_query_close(*q);
}

/* Converts the value on top of the stack for binding to parameter i. */
static void bind_param(lua_State *L, int i, struct mlx_rundb_value *v)
{
	switch (lua_type(L, -1)) {
	case LUA_TNUMBER:
		if (lua_isinteger(L, -1)) {
			v->type = MLX_RUNDB_INT;
			v->i = lua_tointeger(L, -1);
		} else {
			v->type = MLX_RUNDB_REAL;
			v->d = lua_tonumber(L, -1);
		}
		break;
	case LUA_TSTRING:
		v->type = MLX_RUNDB_TEXT;
		v->s = lua_tolstring(L, -1, &v->len);
		break;
	case LUA_TBOOLEAN:
		v->type = MLX_RUNDB_INT;
		v->i = lua_toboolean(L, -1);
		break;
	case LUA_TNIL: v->type = MLX_RUNDB_NULL; break;
	default: luaL_error(L, "query parameter %d: cannot bind a %s", i, luaL_typename(L, -1));
	}
}

static void push_column(lua_State *L, const struct mlx_rundb_value *v)
{
	switch (v->type) {
	case MLX_RUNDB_INT: lua_pushinteger(L, (lua_Integer)v->i); break;
	case MLX_RUNDB_REAL: lua_pushnumber(L, v->d); break;
	case MLX_RUNDB_TEXT: lua_pushlstring(L, v->s, v->len); break;
	default: lua_pushnil(L); break;
	}
}

/* db:query(sql[, params]) -> {row…} | nil, message, code. A row is a table
 * keyed by column name (NULL columns are absent). params is an array of
 * values bound to ?1, ?2…; sql must be one read-only statement. */
static int db_query(lua_State *L)
{
	struct db_handle *h = check_db(L, 1);
	const char *sql = luaL_checkstring(L, 2);
	lua_Integer nparams = 0;
	if (!lua_isnoneornil(L, 3)) {
		luaL_checktype(L, 3, LUA_TTABLE);
		nparams = luaL_len(L, 3);
	}
	struct mlx_rundb_query **box = mlx_lua_box(L, sizeof *box, release_query);
	int box_idx = lua_gettop(L);
	struct mlx_err err;
	if (mlx_rundb_query_open(h->db, sql, box, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	for (lua_Integer i = 1; i <= nparams; i++) {
		struct mlx_rundb_value v;
		lua_geti(L, 3, i);
		bind_param(L, (int)i, &v);
		int rc = mlx_rundb_query_bind(*box, (int)i, &v, &err);
		lua_pop(L, 1);
		if (rc != MLX_OK) {
			mlx_lua_box_release(L, box_idx);
			return luaL_error(L, "%s", err.msg);
		}
	}
	int ncols = mlx_rundb_query_columns(*box);
	lua_newtable(L);
	lua_Integer n = 0;
	int rc;
	while ((rc = mlx_rundb_query_next(*box, &err)) == 1) {
		lua_createtable(L, 0, ncols);
		for (int c = 0; c < ncols; c++) {
			struct mlx_rundb_value v;
			mlx_rundb_query_column(*box, c, &v);
			if (v.type == MLX_RUNDB_NULL)
				continue;
			push_column(L, &v);
			lua_setfield(L, -2, mlx_rundb_query_name(*box, c));
		}
		lua_rawseti(L, -2, ++n);
	}
	mlx_lua_box_release(L, box_idx);
	if (rc < 0)
		return mlx_lua_fail(L, &err);
	return 1;
}

/* The strings of the list at idx as an array (a userdata left on the
 * stack; the strings stay alive in the list); *n gets their number. */
static const char **key_list(lua_State *L, int idx, size_t *n)
{
	luaL_checktype(L, idx, LUA_TTABLE);
	lua_Integer len = luaL_len(L, idx);
	luaL_argcheck(L, len >= 0 && len <= 10000, idx, "expected a list of at most 10000 keys");
	const char **keys = lua_newuserdatauv(L, (size_t)(len > 0 ? len : 1) * sizeof *keys, 0);
	for (lua_Integer i = 1; i <= len; i++) {
		if (lua_geti(L, idx, i) != LUA_TSTRING)
			luaL_error(L, "key %d is a %s, not a string", (int)i, luaL_typename(L, -1));
		keys[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	*n = (size_t)len;
	return keys;
}

/* db:exp_join({metric key…}, {param key…}) -> true | nil, message, code:
 * fills temp.exp_metrics and temp.exp_params (mlx_rundb_exp_join). */
static int db_exp_join(lua_State *L)
{
	struct db_handle *h = check_db(L, 1);
	size_t nmetrics, nparams;
	const char **metric_keys = key_list(L, 2, &nmetrics);
	const char **param_keys = key_list(L, 3, &nparams);
	struct mlx_err err;
	if (mlx_rundb_exp_join(h->db, metric_keys, nmetrics, param_keys, nparams, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* ---- starting runs ------------------------------------------------------- */

/* db:start_run{parent, recipe, recipe_hash, step, step_key, command,
 * log_path, git_commit, git_branch, git_dirty, start_ms, with_ends} -> Run |
 * nil, message, code */
static int db_start_run(lua_State *L)
{
	struct db_handle *h = check_db(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	struct mlx_run_start start = {
	    .parent_id = mlx_lua_optfield_string(L, 2, "parent", NULL),
	    .recipe = mlx_lua_optfield_string(L, 2, "recipe", NULL),
	    .recipe_hash = mlx_lua_optfield_string(L, 2, "recipe_hash", NULL),
	    .step = mlx_lua_optfield_string(L, 2, "step", NULL),
	    .step_key = mlx_lua_optfield_string(L, 2, "step_key", NULL),
	    .command = mlx_lua_optfield_string(L, 2, "command", NULL),
	    .log_path = mlx_lua_optfield_string(L, 2, "log_path", NULL),
	    .git_commit = mlx_lua_optfield_string(L, 2, "git_commit", NULL),
	    .git_branch = mlx_lua_optfield_string(L, 2, "git_branch", NULL),
	    .git_dirty = -1,
	    .start_ms = mlx_lua_optfield_integer(L, 2, "start_ms", 0),
	};
	start.git_dirty = mlx_lua_optfield_boolean(L, 2, "git_dirty", -1);
	start.with_ends = mlx_lua_optfield_boolean(L, 2, "with_ends", 0);
	struct run_handle *r = lua_newuserdatauv(L, sizeof *r, 1);
	r->owner = h;
	strcpy(r->status, "RUNNING");
	luaL_setmetatable(L, RUN_MT);
	lua_pushvalue(L, 1);
	lua_setiuservalue(L, -2, 1);
	struct mlx_err err;
	if (mlx_rundb_start(h->db, &start, r->id, &err) != MLX_OK) {
		strcpy(r->status, "NONE"); /* nothing for __gc to finish */
		return mlx_lua_fail(L, &err);
	}
	return 1;
}

/* ---- Run ----------------------------------------------------------------- */

static struct run_handle *check_run(lua_State *L)
{
	struct run_handle *r = luaL_checkudata(L, 1, RUN_MT);
	if (!r->owner->db)
		luaL_error(L, "run %s: its runs database is closed", r->id);
	return r;
}

static struct run_handle *check_running(lua_State *L)
{
	struct run_handle *r = check_run(L);
	if (strcmp(r->status, "RUNNING") != 0)
		luaL_error(L, "run %s is %s: it takes no more records", r->id, r->status);
	return r;
}

static int done(lua_State *L, int rc, const struct mlx_err *err)
{
	if (rc != MLX_OK)
		return mlx_lua_fail(L, err);
	lua_pushboolean(L, 1);
	return 1;
}

/* run:log_metric(key, value[, step[, ts_ms]]) -> step used | nil, message, code */
static int run_log_metric(lua_State *L)
{
	struct run_handle *r = check_running(L);
	const char *key = luaL_checkstring(L, 2);
	double value = luaL_checknumber(L, 3);
	int64_t step = lua_isnoneornil(L, 4) ? MLX_STEP_AUTO : (int64_t)luaL_checkinteger(L, 4);
	int64_t ts = (int64_t)luaL_optinteger(L, 5, 0);
	struct mlx_err err;
	int64_t used;
	int rc = mlx_rundb_log_metric(r->owner->db, r->id, key, step, value, ts, &used, &err);
	if (rc == MLX_ERR_INVALID)
		return luaL_error(L, "%s", err.msg);
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)used);
	return 1;
}

/* run:log_metrics({key = value…}[, step]) -> true | nil, message, code */
static int run_log_metrics(lua_State *L)
{
	struct run_handle *r = check_running(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	int64_t step = lua_isnoneornil(L, 3) ? MLX_STEP_AUTO : (int64_t)luaL_checkinteger(L, 3);
	int rc = MLX_OK;
	struct mlx_err err;
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TNUMBER)
			return luaL_error(L, "log_metrics: expected {name = number}, got a %s = %s",
			                  luaL_typename(L, -2), luaL_typename(L, -1));
		int r2 = mlx_rundb_log_metric(r->owner->db, r->id, lua_tostring(L, -2), step,
		                              lua_tonumber(L, -1), 0, NULL, &err);
		if (r2 == MLX_ERR_INVALID)
			return luaL_error(L, "%s", err.msg);
		if (r2 != MLX_OK && rc == MLX_OK)
			rc = r2; /* the points stay buffered; go on */
		lua_pop(L, 1);
	}
	return done(L, rc, &err);
}

/* A param or tag value as text: numbers in the shortest form that reads
 * back the same (0.1, not 0.10000000000000001), booleans as true/false. */
static const char *value_text(lua_State *L, int idx, char buf[MLX_LUA_NUMBER_SIZE])
{
	switch (lua_type(L, idx)) {
	case LUA_TSTRING: return lua_tostring(L, idx);
	case LUA_TBOOLEAN: return lua_toboolean(L, idx) ? "true" : "false";
	case LUA_TNUMBER:
		if (!lua_isinteger(L, idx))
			return mlx_lua_number_text(lua_tonumber(L, idx), buf);
		snprintf(buf, MLX_LUA_NUMBER_SIZE, LUA_INTEGER_FMT, lua_tointeger(L, idx));
		return buf;
	default:
		luaL_error(L, "a param or tag value must be a string, number or boolean, not a %s",
		           luaL_typename(L, idx));
		return NULL;
	}
}

typedef int (*kv_writer)(struct mlx_rundb *, const char *, const char *, const char *, struct mlx_err *);

static int write_kv(lua_State *L, struct run_handle *r, kv_writer write, int key_idx, int value_idx,
                    struct mlx_err *err)
{
	char buf[MLX_LUA_NUMBER_SIZE];
	const char *key = luaL_checkstring(L, key_idx);
	int rc = write(r->owner->db, r->id, key, value_text(L, value_idx, buf), err);
	if (rc == MLX_ERR_INVALID)
		return luaL_error(L, "%s", err->msg);
	return rc;
}

static int kv_one(lua_State *L, kv_writer write)
{
	struct run_handle *r = check_running(L);
	luaL_checkany(L, 3);
	struct mlx_err err;
	return done(L, write_kv(L, r, write, 2, 3, &err), &err);
}

static int kv_table(lua_State *L, kv_writer write)
{
	struct run_handle *r = check_running(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	struct mlx_err err;
	int rc = MLX_OK;
	lua_pushnil(L);
	while (lua_next(L, 2)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			return luaL_error(L, "expected {name = value}, got a %s key", luaL_typename(L, -2));
		int r2 = write_kv(L, r, write, -2, -1, &err);
		if (r2 != MLX_OK && rc == MLX_OK)
			rc = r2;
		lua_pop(L, 1);
	}
	return done(L, rc, &err);
}

/* run:log_param(key, value), run:log_params{key = value…},
 * run:set_tag(key, value), run:set_tags{…} -> true | nil, message, code */
static int run_log_param(lua_State *L)
{
	return kv_one(L, mlx_rundb_log_param);
}

static int run_log_params(lua_State *L)
{
	return kv_table(L, mlx_rundb_log_param);
}

static int run_set_tag(lua_State *L)
{
	return kv_one(L, mlx_rundb_set_tag);
}

static int run_set_tags(lua_State *L)
{
	return kv_table(L, mlx_rundb_set_tag);
}

/* ---- changing recorded runs --------------------------------------------- */

/* db:set_tag(id, key, value) -> true | nil, message, code: tags a run that
 * may have ended (no handle needed); written at once. */
static int db_set_tag(lua_State *L)
{
	struct db_handle *h = check_db(L, 1);
	const char *id = luaL_checkstring(L, 2);
	const char *key = luaL_checkstring(L, 3);
	luaL_checkany(L, 4);
	char buf[MLX_LUA_NUMBER_SIZE];
	const char *value = value_text(L, 4, buf);
	struct mlx_err err;
	int rc = mlx_rundb_set_tag(h->db, id, key, value, &err);
	if (rc == MLX_OK)
		rc = mlx_rundb_flush(h->db, &err);
	return done(L, rc, &err);
}

/* db:delete_tag(id, key) -> true | nil, message, code ("notfound" without
 * such a run or tag) */
static int db_delete_tag(lua_State *L)
{
	struct db_handle *h = check_db(L, 1);
	const char *id = luaL_checkstring(L, 2);
	const char *key = luaL_checkstring(L, 3);
	struct mlx_err err;
	return done(L, mlx_rundb_delete_tag(h->db, id, key, &err), &err);
}

/* db:delete_runs{id…} -> number of runs deleted (with the runs below them)
 * | nil, message, code; all or nothing, see mlx_rundb_delete_runs. */
static int db_delete_runs(lua_State *L)
{
	struct db_handle *h = check_db(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 2);
	luaL_argcheck(L, n > 0 && n <= 100000, 2, "expected a list of 1 to 100000 run ids");
	/* The strings stay alive in the table; the array is owned by Lua. */
	const char **ids = lua_newuserdatauv(L, (size_t)n * sizeof *ids, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_geti(L, 2, i) != LUA_TSTRING)
			return luaL_error(L, "delete_runs: run id %d is a %s, not a string", (int)i,
			                  luaL_typename(L, -1));
		ids[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	int deleted = 0;
	struct mlx_err err;
	if (mlx_rundb_delete_runs(h->db, ids, (size_t)n, &deleted, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, deleted);
	return 1;
}

/* db:copy_metrics(to_id, from_id) -> true | nil, message, code */
static int db_copy_metrics(lua_State *L)
{
	struct db_handle *h = check_db(L, 1);
	const char *to = luaL_checkstring(L, 2);
	const char *from = luaL_checkstring(L, 3);
	struct mlx_err err;
	return done(L, mlx_rundb_copy_metrics(h->db, to, from, &err), &err);
}

/* run:record_artifact{role, path, hash, size, nfiles} -> true | nil, message, code.
 * Records what the caller measured; mlx.track's log_artifact measures. */
static int run_record_artifact(lua_State *L)
{
	struct run_handle *r = check_running(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	struct mlx_run_artifact art = {
	    .role = mlx_lua_optfield_string(L, 2, "role", NULL),
	    .path = mlx_lua_optfield_string(L, 2, "path", NULL),
	    .hash = mlx_lua_optfield_string(L, 2, "hash", NULL),
	    .size = mlx_lua_optfield_integer(L, 2, "size", -1),
	    .nfiles = mlx_lua_optfield_integer(L, 2, "nfiles", -1),
	};
	struct mlx_err err;
	int rc = mlx_rundb_log_artifact(r->owner->db, r->id, &art, &err);
	if (rc == MLX_ERR_INVALID)
		return luaL_error(L, "%s", err.msg);
	return done(L, rc, &err);
}

/* run:set_group(pgid) -> true | nil, message, code. Records the process
 * group the run's command runs in, which is killed if the run is later
 * found dead (mlx_rundb_set_group). */
static int run_set_group(lua_State *L)
{
	struct run_handle *r = check_running(L);
	lua_Integer pgid = luaL_checkinteger(L, 2);
	luaL_argcheck(L, pgid > 1 && pgid <= INT32_MAX, 2, "not a process group id");
	struct mlx_err err;
	return done(L, mlx_rundb_set_group(r->owner->db, r->id, (long)pgid, &err), &err);
}

/* run:flush() -> true | nil, message, code */
static int run_flush(lua_State *L)
{
	struct run_handle *r = check_run(L);
	struct mlx_err err;
	return done(L, mlx_rundb_flush(r->owner->db, &err), &err);
}

static int finish(lua_State *L, struct run_handle *r, const struct mlx_run_end *end, int buffered)
{
	struct mlx_err err;
	int rc = buffered ? mlx_rundb_finish_buffered(r->owner->db, r->id, end, &err)
	                  : mlx_rundb_finish(r->owner->db, r->id, end, &err);
	/* Whatever the database said, this handle is done with the run. */
	snprintf(r->status, sizeof r->status, "%s", end->status);
	return rc == MLX_OK ? MLX_OK : (mlx_lua_fail(L, &err), rc);
}

/* run:finish([status[, {message, exit_code, signal, cpu_seconds,
 * wall_seconds, peak_rss, end_ms, buffered}]]) -> true | nil, message, code.
 * status: "FINISHED" (default), "FAILED", "KILLED" or "CACHED"; buffered:
 * written with the next batch (mlx_rundb_finish_buffered). */
static int run_finish(lua_State *L)
{
	static const char *const statuses[] = {"FINISHED", "FAILED", "KILLED", "CACHED", NULL};
	struct run_handle *r = check_running(L);
	int which = luaL_checkoption(L, 2, "FINISHED", statuses);
	struct mlx_run_end end = {statuses[which], NULL, -1, 0, -1, -1, -1, 0};
	size_t len; /* a message may hold a NUL byte; C reads up to it */
	end.message = mlx_lua_optfield_string(L, 3, "message", &len);
	end.exit_code = (int)mlx_lua_optfield_integer(L, 3, "exit_code", -1);
	end.signal = (int)mlx_lua_optfield_integer(L, 3, "signal", 0);
	end.cpu_seconds = mlx_lua_optfield_number(L, 3, "cpu_seconds", -1);
	end.wall_seconds = mlx_lua_optfield_number(L, 3, "wall_seconds", -1);
	end.peak_rss = mlx_lua_optfield_integer(L, 3, "peak_rss", -1);
	end.end_ms = mlx_lua_optfield_integer(L, 3, "end_ms", 0);
	int buffered = mlx_lua_optfield_boolean(L, 3, "buffered", 0);
	if (finish(L, r, &end, buffered) != MLX_OK)
		return 3;
	lua_pushboolean(L, 1);
	return 1;
}

/* __close(run, err): a run left by an error ends FAILED with the error as
 * its message, or KILLED if the error is the interruption; else FINISHED. */
static int run_close(lua_State *L)
{
	struct run_handle *r = luaL_checkudata(L, 1, RUN_MT);
	if (!r->owner->db || strcmp(r->status, "RUNNING") != 0)
		return 0;
	struct mlx_run_end end = {"FINISHED", NULL, -1, 0, -1, -1, -1, 0};
	if (!lua_isnoneornil(L, 2)) {
		end.message = luaL_tolstring(L, 2, NULL);
		end.status = strcmp(end.message, "interrupted") == 0 ? "KILLED" : "FAILED";
	}
	finish(L, r, &end, 0); /* a failure to record cannot be reported from here */
	return 0;
}

static int run_gc(lua_State *L)
{
	struct run_handle *r = luaL_checkudata(L, 1, RUN_MT);
	if (!r->owner->db || strcmp(r->status, "RUNNING") != 0)
		return 0;
	struct mlx_run_end end = {
	    "FAILED", "the run was never finished (its handle was garbage-collected)", -1, 0, -1, -1, -1, 0};
	finish(L, r, &end, 0);
	return 0;
}

static int run_tostring(lua_State *L)
{
	struct run_handle *r = luaL_checkudata(L, 1, RUN_MT);
	lua_pushfstring(L, "mlx.Run (%s, %s)", r->id, r->status);
	return 1;
}

/* run.id, run.status, then the methods (upvalue 1). */
static int run_index(lua_State *L)
{
	struct run_handle *r = luaL_checkudata(L, 1, RUN_MT);
	const char *key = lua_tostring(L, 2);
	if (key && strcmp(key, "id") == 0) {
		lua_pushstring(L, r->id);
	} else if (key && strcmp(key, "status") == 0) {
		lua_pushstring(L, r->status);
	} else {
		lua_pushvalue(L, 2);
		lua_gettable(L, lua_upvalueindex(1));
	}
	return 1;
}

/* rundb.resources() -> {cpu_seconds, peak_rss}: user and system CPU time of
 * this process and its waited-for children, and the larger of their peak
 * resident set sizes, in bytes. */
static int rundb_resources(lua_State *L)
{
	struct rusage self, children;
	getrusage(RUSAGE_SELF, &self);
	getrusage(RUSAGE_CHILDREN, &children);
	double cpu = 0;
	const struct rusage *both[] = {&self, &children};
	for (int i = 0; i < 2; i++)
		cpu += (double)both[i]->ru_utime.tv_sec + both[i]->ru_utime.tv_usec / 1e6 +
		       (double)both[i]->ru_stime.tv_sec + both[i]->ru_stime.tv_usec / 1e6;
	long rss = self.ru_maxrss > children.ru_maxrss ? self.ru_maxrss : children.ru_maxrss;
	lua_createtable(L, 0, 2);
	lua_pushnumber(L, cpu);
	lua_setfield(L, -2, "cpu_seconds");
	lua_pushinteger(L, (lua_Integer)rss * 1024);
	lua_setfield(L, -2, "peak_rss");
	return 1;
}

/* rundb.identity() -> {host, user, pid, proc_start}: what a run records
 * of the process that starts it (mlx_rundb_describe_self). */
static int rundb_identity(lua_State *L)
{
	char host[256], user[64], ident[128];
	mlx_rundb_describe_self(host, user, ident);
	lua_createtable(L, 0, 4);
	lua_pushstring(L, host);
	lua_setfield(L, -2, "host");
	lua_pushstring(L, user);
	lua_setfield(L, -2, "user");
	lua_pushinteger(L, (lua_Integer)getpid());
	lua_setfield(L, -2, "pid");
	lua_pushstring(L, ident);
	lua_setfield(L, -2, "proc_start");
	return 1;
}

/* rundb.process_ident(pid) -> the identity of process pid (as
 * runs.proc_start) | nil if there is none */
static int rundb_process_ident(lua_State *L)
{
	char ident[128];
	if (mlx_rundb_process_ident((long)luaL_checkinteger(L, 1), ident) != MLX_OK)
		return 0;
	lua_pushstring(L, ident);
	return 1;
}

/* rundb.end_group(pgid, ident) -> pgid if the group was killed, else 0 */
static int rundb_end_group(lua_State *L)
{
	lua_pushinteger(L, mlx_rundb_end_group((long)luaL_checkinteger(L, 1), luaL_optstring(L, 2, NULL)));
	return 1;
}

/* rundb.liveness(pid, proc_start) -> "alive" | "dead" | "unknown" */
static int rundb_liveness(lua_State *L)
{
	static const char *const names[] = {"unknown", "dead", "alive"};
	lua_Integer pid = luaL_checkinteger(L, 1);
	int l = mlx_rundb_process_liveness((long)pid, luaL_optstring(L, 2, NULL));
	lua_pushstring(L, names[l + 1]);
	return 1;
}

static const luaL_Reg db_methods[] = {
    {"close", db_close},
    {"path", db_path},
    {"schema_version", db_schema_version},
    {"reap", db_reap},
    {"flush", db_flush},
    {"query", db_query},
    {"start_run", db_start_run},
    {"set_tag", db_set_tag},
    {"delete_tag", db_delete_tag},
    {"delete_runs", db_delete_runs},
    {"copy_metrics", db_copy_metrics},
    {"exp_join", db_exp_join},
    {NULL, NULL},
};

static const luaL_Reg db_meta[] = {
    {"__gc", db_close},
    {"__close", db_close},
    {NULL, NULL},
};

static const luaL_Reg run_methods[] = {
    {"log_metric", run_log_metric},
    {"log_metrics", run_log_metrics},
    {"log_param", run_log_param},
    {"log_params", run_log_params},
    {"set_tag", run_set_tag},
    {"set_tags", run_set_tags},
    {"record_artifact", run_record_artifact},
    {"set_group", run_set_group},
    {"flush", run_flush},
    {"finish", run_finish},
    {NULL, NULL},
};

static const luaL_Reg run_meta[] = {
    {"__gc", run_gc},
    {"__close", run_close},
    {"__tostring", run_tostring},
    {NULL, NULL},
};

static const luaL_Reg rundb_functions[] = {
    {"open", rundb_open},
    {"resources", rundb_resources},
    {"identity", rundb_identity},
    {"liveness", rundb_liveness},
    {"process_ident", rundb_process_ident},
    {"end_group", rundb_end_group},
    {NULL, NULL},
};

int luaopen_mlx_rundb(lua_State *L)
{
	luaL_newlib(L, rundb_functions);
	lua_pushinteger(L, mlx_rundb_schema_latest());
	lua_setfield(L, -2, "schema_latest");

	luaL_newmetatable(L, DB_MT);
	luaL_setfuncs(L, db_meta, 0);
	luaL_newlib(L, db_methods);
	lua_pushvalue(L, -1);
	lua_setfield(L, -4, "Db");
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);

	luaL_newmetatable(L, RUN_MT);
	luaL_setfuncs(L, run_meta, 0);
	luaL_newlib(L, run_methods);
	lua_pushvalue(L, -1);
	lua_setfield(L, -4, "Run");
	lua_pushcclosure(L, run_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	return 1;
}
