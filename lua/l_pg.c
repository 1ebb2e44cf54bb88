/* l_pg.c — mlx.pg: PostgreSQL connections (core/pg.h) for Lua, in
 * mlx_pg.so, loaded only when the tracking URI names PostgreSQL.
 *
 * Two handles: a Conn (mlx.PgConn) runs statements, returning rows as
 * mlx.rundb's query does (tables keyed by column name, NULL absent,
 * integers and floats as Lua numbers), and sends COPY data; a Heartbeat
 * (mlx.PgHeartbeat) owns the thread that keeps runs alive. The tracking
 * backend over them is stdlib/mlx/track/pg.lua. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "pg.h"

#define CONN_MT "mlx.PgConn"
#define HEARTBEAT_MT "mlx.PgHeartbeat"

struct conn_handle {
	struct mlx_pg *pg; /* NULL once closed */
};

struct heartbeat_handle {
	struct mlx_pg_heartbeat *hb; /* NULL once closed */
};

static struct conn_handle *check_conn(lua_State *L)
{
	struct conn_handle *h = luaL_checkudata(L, 1, CONN_MT);
	if (!h->pg)
		luaL_error(L, "attempt to use a closed PostgreSQL connection");
	return h;
}

/* pg.connect(uri[, {password, schema}]) -> Conn | nil, message, code */
static int pg_connect(lua_State *L)
{
	const char *uri = luaL_checkstring(L, 1);
	const char *password = mlx_lua_optfield_string(L, 2, "password", NULL);
	const char *schema = mlx_lua_optfield_string(L, 2, "schema", NULL);
	struct conn_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->pg = NULL;
	luaL_setmetatable(L, CONN_MT);
	struct mlx_err err;
	if (mlx_pg_connect(uri, password, schema, &h->pg, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

static int conn_close(lua_State *L)
{
	struct conn_handle *h = luaL_checkudata(L, 1, CONN_MT);
	mlx_pg_close(h->pg);
	h->pg = NULL;
	lua_pushboolean(L, 1);
	return 1;
}

static void release_result(void *contents)
{
	PGresult **res = contents;
	PQclear(*res);
}

/* The parameters in the table at idx, pointing into it (its strings stay
 * alive while it does), as a userdata array left on the stack. */
static struct mlx_pg_param *check_params(lua_State *L, int idx, int *n)
{
	*n = 0;
	if (lua_isnoneornil(L, idx)) {
		lua_pushnil(L);
		return NULL;
	}
	luaL_checktype(L, idx, LUA_TTABLE);
	/* The largest integer key, not the length: a NULL in the middle of the
	 * values is a nil there, and # may stop at any border. */
	lua_Integer len = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		if (lua_isinteger(L, -2) && lua_tointeger(L, -2) > len)
			len = lua_tointeger(L, -2);
		lua_pop(L, 1);
	}
	luaL_argcheck(L, len >= 0 && len <= 65535, idx, "at most 65535 parameters");
	struct mlx_pg_param *p = lua_newuserdatauv(L, (size_t)(len ? len : 1) * sizeof *p, 0);
	for (lua_Integer i = 1; i <= len; i++) {
		struct mlx_pg_param *v = &p[i - 1];
		memset(v, 0, sizeof *v);
		switch (lua_geti(L, idx, i)) {
		case LUA_TNUMBER:
			if (lua_isinteger(L, -1)) {
				v->type = 'i';
				v->i = lua_tointeger(L, -1);
			} else {
				v->type = 'd';
				v->d = lua_tonumber(L, -1);
			}
			break;
		case LUA_TBOOLEAN: /* as SQLite stores them: 1 and 0 */
			v->type = 'i';
			v->i = lua_toboolean(L, -1);
			break;
		case LUA_TSTRING:
			v->type = 's';
			v->s = lua_tolstring(L, -1, &v->len);
			break;
		case LUA_TNIL: break;
		default: luaL_error(L, "query parameter %d: cannot bind a %s", (int)i, luaL_typename(L, -1));
		}
		lua_pop(L, 1);
	}
	*n = (int)len;
	return p;
}

/* Pushes one value of a result as mlx.rundb would: integer types as
 * integers, float and numeric as numbers (integers when whole and
 * integral in the text), booleans as 1 and 0, the rest as strings. */
static void push_value(lua_State *L, PGresult *res, int row, int col)
{
	const char *s = PQgetvalue(res, row, col);
	size_t len = (size_t)PQgetlength(res, row, col);
	switch (PQftype(res, col)) {
	case 20:
	case 21:
	case 23:
	case 26: /* int8, int2, int4, oid */ lua_pushinteger(L, (lua_Integer)strtoll(s, NULL, 10)); break;
	case 1700: /* numeric: sum() of integers is one */
		if (!strpbrk(s, ".eEN"))
			lua_pushinteger(L, (lua_Integer)strtoll(s, NULL, 10));
		else
			lua_pushnumber(L, strtod(s, NULL));
		break;
	case 700:
	case 701: /* float4, float8: "NaN", "Infinity" read as such */
		lua_pushnumber(L, strtod(s, NULL));
		break;
	case 16: lua_pushinteger(L, s[0] == 't'); break;
	default: lua_pushlstring(L, s, len); break;
	}
}

/* conn:query(sql[, params]) -> {row…} | nil, message, code: one statement
 * of the shared dialect (pg.h), values bound to ?1, ?2…. A statement that
 * returns no rows gives an empty list. */
static int conn_query(lua_State *L)
{
	struct conn_handle *h = check_conn(L);
	const char *sql = luaL_checkstring(L, 2);
	int n;
	struct mlx_pg_param *params = check_params(L, 3, &n);
	PGresult **box = mlx_lua_box(L, sizeof *box, release_result);
	int box_idx = lua_gettop(L);
	struct mlx_err err;
	if (mlx_pg_exec(h->pg, sql, params, n, box, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	int rows = PQntuples(*box), cols = PQnfields(*box);
	lua_createtable(L, rows, 0);
	for (int r = 0; r < rows; r++) {
		lua_createtable(L, 0, cols);
		for (int c = 0; c < cols; c++) {
			if (PQgetisnull(*box, r, c))
				continue;
			push_value(L, *box, r, c);
			lua_setfield(L, -2, PQfname(*box, c));
		}
		lua_rawseti(L, -2, r + 1);
	}
	mlx_lua_box_release(L, box_idx);
	return 1;
}

/* conn:exec(sql[, params]) -> rows affected | nil, message, code */
static int conn_exec(lua_State *L)
{
	struct conn_handle *h = check_conn(L);
	const char *sql = luaL_checkstring(L, 2);
	int n;
	struct mlx_pg_param *params = check_params(L, 3, &n);
	PGresult *res;
	struct mlx_err err;
	if (mlx_pg_exec(h->pg, sql, params, n, &res, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)strtoll(PQcmdTuples(res), NULL, 10));
	PQclear(res);
	return 1;
}

/* conn:copy(copy_sql, data) -> true | nil, message, code: data in COPY's
 * text format, sent with a "COPY … FROM STDIN" statement. */
static int conn_copy(lua_State *L)
{
	struct conn_handle *h = check_conn(L);
	const char *sql = luaL_checkstring(L, 2);
	size_t len;
	const char *data = luaL_checklstring(L, 3, &len);
	struct mlx_err err;
	if (mlx_pg_copy(h->pg, sql, data, len, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* pg.translate(sql) -> the PostgreSQL text of a shared-dialect statement */
static int pg_translate(lua_State *L)
{
	char *out;
	int n;
	struct mlx_err err;
	if (mlx_pg_translate(luaL_checkstring(L, 1), &out, &n, &err) != MLX_OK)
		return luaL_error(L, "%s", err.msg);
	lua_pushstring(L, out);
	free(out);
	lua_pushinteger(L, n);
	return 2;
}

/* ---- Heartbeat ---------------------------------------------------------- */

static struct heartbeat_handle *check_heartbeat(lua_State *L)
{
	struct heartbeat_handle *h = luaL_checkudata(L, 1, HEARTBEAT_MT);
	if (!h->hb)
		luaL_error(L, "attempt to use a stopped heartbeat");
	return h;
}

/* pg.heartbeat(uri, {password, schema, interval_ms}) -> Heartbeat | nil, message, code */
static int pg_heartbeat(lua_State *L)
{
	const char *uri = luaL_checkstring(L, 1);
	const char *password = mlx_lua_optfield_string(L, 2, "password", NULL);
	const char *schema = mlx_lua_optfield_string(L, 2, "schema", NULL);
	int interval = (int)mlx_lua_optfield_integer(L, 2, "interval_ms", 10000);
	struct heartbeat_handle *h = lua_newuserdatauv(L, sizeof *h, 0);
	h->hb = NULL;
	luaL_setmetatable(L, HEARTBEAT_MT);
	struct mlx_err err;
	if (mlx_pg_heartbeat_start(uri, password, schema, interval, &h->hb, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

/* heartbeat:add(id) -> true | nil, message, code */
static int heartbeat_add(lua_State *L)
{
	struct heartbeat_handle *h = check_heartbeat(L);
	struct mlx_err err;
	if (mlx_pg_heartbeat_add(h->hb, luaL_checkstring(L, 2), &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static int heartbeat_remove(lua_State *L)
{
	mlx_pg_heartbeat_remove(check_heartbeat(L)->hb, luaL_checkstring(L, 2));
	return 0;
}

static int heartbeat_stop(lua_State *L)
{
	struct heartbeat_handle *h = luaL_checkudata(L, 1, HEARTBEAT_MT);
	mlx_pg_heartbeat_stop(h->hb);
	h->hb = NULL;
	return 0;
}

/* pg.version() -> the libpq version as a number (150020 for 15.20) */
static int pg_version(lua_State *L)
{
	lua_pushinteger(L, PQlibVersion());
	return 1;
}

static const luaL_Reg conn_methods[] = {
    {"query", conn_query}, {"exec", conn_exec}, {"copy", conn_copy}, {"close", conn_close}, {NULL, NULL},
};

static const luaL_Reg conn_meta[] = {
    {"__gc", conn_close},
    {"__close", conn_close},
    {NULL, NULL},
};

static const luaL_Reg heartbeat_methods[] = {
    {"add", heartbeat_add},
    {"remove", heartbeat_remove},
    {"stop", heartbeat_stop},
    {NULL, NULL},
};

static const luaL_Reg heartbeat_meta[] = {
    {"__gc", heartbeat_stop},
    {"__close", heartbeat_stop},
    {NULL, NULL},
};

static const luaL_Reg pg_functions[] = {
    {"connect", pg_connect},
    {"heartbeat", pg_heartbeat},
    {"translate", pg_translate},
    {"version", pg_version},
    {NULL, NULL},
};

int luaopen_mlx_pg(lua_State *L)
{
	luaL_newlib(L, pg_functions);
	luaL_newmetatable(L, CONN_MT);
	luaL_setfuncs(L, conn_meta, 0);
	luaL_newlib(L, conn_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newmetatable(L, HEARTBEAT_MT);
	luaL_setfuncs(L, heartbeat_meta, 0);
	luaL_newlib(L, heartbeat_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	return 1;
}
