/* binding.c — the helper layer of the bindings (see binding.h). */
#include "binding.h"

#include <float.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Registry name of the boxes' metatable, shared by every copy of this file
 * in one Lua state (their __gc functions are the same code). */
#define BOX_MT "mlx.Box"

/* How much of a string an error message quotes. */
enum { QUOTED_MAX = 40 };

const char *mlx_lua_status_name(int status)
{
	switch (status) {
	case MLX_ERR_NOTFOUND: return "notfound";
	case MLX_ERR_INVALID: return "invalid";
	case MLX_ERR_NOMEM: return "nomem";
	case MLX_ERR_CRYPTO: return "crypto";
	case MLX_ERR_CORRUPT: return "corrupt";
	case MLX_ERR_BUSY: return "busy";
	case MLX_ERR_INTERRUPTED: return "interrupted";
	default: return "io";
	}
}

int mlx_lua_fail(lua_State *L, const struct mlx_err *err)
{
	lua_pushnil(L);
	lua_pushstring(L, err->msg);
	lua_pushstring(L, mlx_lua_status_name(err->status));
	return 3;
}

void mlx_lua_warn(lua_State *L, const char *message)
{
	/* Through mlx.ui, so that a warning looks and is redacted as every
	 * other; on stderr directly if that module cannot be had. */
	lua_getglobal(L, "require");
	lua_pushliteral(L, "mlx.ui");
	if (lua_pcall(L, 1, 1, 0) == LUA_OK && lua_istable(L, -1)) {
		lua_getfield(L, -1, "warn");
		lua_pushstring(L, message);
		if (lua_pcall(L, 1, 0, 0) == LUA_OK) {
			lua_pop(L, 1);
			return;
		}
	}
	lua_pop(L, 1);
	fprintf(stderr, "mlx: warning: %s\n", message);
}

/* ---- table fields ---------------------------------------------------------- */

/* Pushes a short description of the value at idx for an error message. */
static void push_description(lua_State *L, int idx)
{
	size_t len;
	const char *s;
	switch (lua_type(L, idx)) {
	case LUA_TNIL: lua_pushliteral(L, "nil"); break;
	case LUA_TBOOLEAN: lua_pushstring(L, lua_toboolean(L, idx) ? "true" : "false"); break;
	case LUA_TNUMBER:
		lua_pushvalue(L, idx);
		lua_tolstring(L, -1, NULL); /* converts the copy, not the original */
		break;
	case LUA_TSTRING:
		s = lua_tolstring(L, idx, &len);
		if (strlen(s) != len)
			lua_pushliteral(L, "a string with a NUL byte");
		else
			lua_pushfstring(L, "'%s%s'", len > QUOTED_MAX ? lua_pushlstring(L, s, QUOTED_MAX) : s,
			                len > QUOTED_MAX ? "..." : "");
		break;
	default: lua_pushfstring(L, "a %s", luaL_typename(L, idx)); break;
	}
}

int mlx_lua_field_error(lua_State *L, int arg, const char *name, const char *what, int idx)
{
	idx = lua_absindex(L, idx);
	push_description(L, idx);
	return luaL_argerror(
	    L, arg, lua_pushfstring(L, "field '%s' must be %s, not %s", name, what, lua_tostring(L, -1)));
}

/* Pushes t.key for the options table at arg (nil if arg is none or nil). */
static int push_field(lua_State *L, int arg, const char *key)
{
	if (lua_isnoneornil(L, arg)) {
		lua_pushnil(L);
		return LUA_TNIL;
	}
	luaL_checktype(L, arg, LUA_TTABLE);
	return lua_getfield(L, arg, key);
}

const char *mlx_lua_optfield_string(lua_State *L, int arg, const char *key, size_t *len)
{
	int type = push_field(L, arg, key);
	const char *s = NULL;
	if (type == LUA_TSTRING) {
		size_t n;
		s = lua_tolstring(L, -1, &n);
		if (len)
			*len = n;
		else if (strlen(s) != n)
			mlx_lua_field_error(L, arg, key, "a string without NUL bytes", -1);
	} else if (type != LUA_TNIL) {
		mlx_lua_field_error(L, arg, key, "a string", -1);
	} else if (len) {
		*len = 0;
	}
	lua_pop(L, 1); /* the table keeps the string alive */
	return s;
}

lua_Integer mlx_lua_optfield_integer(lua_State *L, int arg, const char *key, lua_Integer dflt)
{
	int type = push_field(L, arg, key);
	lua_Integer v = dflt;
	if (type != LUA_TNIL) {
		int isint = 0;
		if (type == LUA_TNUMBER)
			v = lua_tointegerx(L, -1, &isint);
		if (!isint)
			mlx_lua_field_error(L, arg, key, "an integer", -1);
	}
	lua_pop(L, 1);
	return v;
}

lua_Number mlx_lua_optfield_number(lua_State *L, int arg, const char *key, lua_Number dflt)
{
	int type = push_field(L, arg, key);
	lua_Number v = dflt;
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER || isnan(lua_tonumber(L, -1)))
			mlx_lua_field_error(L, arg, key, "a number", -1);
		v = lua_tonumber(L, -1);
	}
	lua_pop(L, 1);
	return v;
}

int mlx_lua_optfield_boolean(lua_State *L, int arg, const char *key, int dflt)
{
	int type = push_field(L, arg, key);
	int v = dflt;
	if (type == LUA_TBOOLEAN)
		v = lua_toboolean(L, -1);
	else if (type != LUA_TNIL)
		mlx_lua_field_error(L, arg, key, "true or false", -1);
	lua_pop(L, 1);
	return v;
}

int mlx_lua_optfield_table(lua_State *L, int arg, const char *key)
{
	int type = push_field(L, arg, key);
	if (type == LUA_TTABLE)
		return lua_gettop(L);
	if (type != LUA_TNIL)
		mlx_lua_field_error(L, arg, key, "a table", -1);
	lua_pop(L, 1);
	return 0;
}

static void check_keys(lua_State *L, int arg, int t, const char *prefix, const char *const known[],
                       lua_Integer npositional)
{
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		if (lua_isinteger(L, -1)) {
			lua_Integer i = lua_tointeger(L, -1);
			if (i >= 1 && i <= npositional)
				continue;
		}
		int ok = 0;
		if (lua_type(L, -1) == LUA_TSTRING)
			for (int i = 0; known[i] && !ok; i++)
				ok = strcmp(lua_tostring(L, -1), known[i]) == 0;
		if (!ok) {
			/* An integer key is named as the user wrote it: [3]. */
			const char *key = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
			                  : lua_isinteger(L, -1)
			                      ? lua_pushfstring(L, "[%I]", lua_tointeger(L, -1))
			                      : luaL_typename(L, -1);
			luaL_argerror(L, arg,
			              lua_pushfstring(L, "unknown field '%s%s%s'", prefix ? prefix : "",
			                              prefix ? "." : "", key));
		}
	}
}

void mlx_lua_check_fields(lua_State *L, int arg, const char *const known[], lua_Integer npositional)
{
	if (lua_isnoneornil(L, arg))
		return;
	luaL_checktype(L, arg, LUA_TTABLE);
	check_keys(L, arg, arg, NULL, known, npositional);
}

void mlx_lua_check_subfields(lua_State *L, int arg, int t, const char *name, const char *const known[])
{
	check_keys(L, arg, lua_absindex(L, t), name, known, 0);
}

/* ---- boxes -------------------------------------------------------------------- */

/* The contents are aligned as Lua aligns a userdata's memory (LUAI_MAXALIGN
 * in luaconf.h), which is all a box's contents ask for. */
union box_align {
	void *p;
	double d;
	long l;
	lua_Integer i;
};

struct box {
	mlx_lua_release release;
	size_t size;
	union box_align contents[];
};

static int box_gc(lua_State *L)
{
	mlx_lua_box_release(L, 1);
	return 0;
}

void *mlx_lua_box(lua_State *L, size_t size, mlx_lua_release release)
{
	struct box *b = lua_newuserdatauv(L, offsetof(struct box, contents) + size, 0);
	b->release = release;
	b->size = size;
	memset(b->contents, 0, size);
	if (luaL_newmetatable(L, BOX_MT)) {
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__gc");
		lua_pushcfunction(L, box_gc);
		lua_setfield(L, -2, "__close");
	}
	lua_setmetatable(L, -2);
	return b->contents;
}

void mlx_lua_box_release(lua_State *L, int idx)
{
	struct box *b = luaL_checkudata(L, idx, BOX_MT);
	b->release(b->contents);
	memset(b->contents, 0, b->size);
}

/* ---- numbers ------------------------------------------------------------------ */

const char *mlx_lua_number_text(double x, char buf[MLX_LUA_NUMBER_SIZE])
{
	if (!isfinite(x)) {
		snprintf(buf, MLX_LUA_NUMBER_SIZE, "%s", isnan(x) ? "nan" : x > 0 ? "inf" : "-inf");
		return buf;
	}
	/* A normal double has 15 to 17 significant digits; when 15 read back,
	 * they print as the shortest form, as %.15g drops trailing zeros. Only
	 * subnormals (fewer digits of precision) need the search from 1. */
	int first = fabs(x) >= DBL_MIN || x == 0 ? 15 : 1;
	for (int precision = first; precision <= 17; precision++) {
		snprintf(buf, MLX_LUA_NUMBER_SIZE, "%.*g", precision, x);
		if (strtod(buf, NULL) == x)
			break;
	}
	return buf;
}

int mlx_lua_report(lua_State *L, int ref, lua_Integer files, lua_Integer nfiles, lua_Integer bytes,
		   lua_Integer nbytes)
{
	if (!lua_checkstack(L, 6))
		return 0;
	int top = lua_gettop(L);
	lua_rawgeti(L, LUA_REGISTRYINDEX, ref);
	lua_pushinteger(L, files);
	lua_pushinteger(L, nfiles);
	lua_pushinteger(L, bytes);
	lua_pushinteger(L, nbytes);
	int rc = lua_pcall(L, 4, 0, 0);
	lua_settop(L, top);
	return rc != LUA_OK;
}

lua_CFunction mlx_lua_find_interrupted(lua_State *L)
{
	lua_CFunction fn = NULL;
	lua_getfield(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
	if (lua_getfield(L, -1, "mlx.core") == LUA_TTABLE) {
		lua_getfield(L, -1, "interrupted");
		fn = lua_tocfunction(L, -1);
		lua_pop(L, 1);
	}
	lua_pop(L, 2);
	return fn;
}
