/* l_registry.c — mlx.modeldb: the model registry's writes (core/registry.h)
 * on an open runs database (an mlx.RunDb of mlx.rundb). The policy — refs,
 * the store, lineage, checkout — lives in stdlib/mlx/registry.lua; reads
 * are queries there. Version numbers cross as integers, 0 meaning none. */
#include <lauxlib.h>
#include <string.h>

#include "binding.h"
#include "registry.h"

static const char *opt_string(lua_State *L, int idx, const char *name)
{
	lua_getfield(L, idx, name);
	if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
		luaL_error(L, "field '%s' must be a string, not a %s", name, luaL_typename(L, -1));
	const char *s = lua_tostring(L, -1);
	lua_pop(L, 1); /* the string stays alive in the table */
	return s;
}

static lua_Integer opt_integer(lua_State *L, int idx, const char *name, lua_Integer dflt)
{
	lua_getfield(L, idx, name);
	int isint = 0;
	lua_Integer v = lua_tointegerx(L, -1, &isint);
	if (!isint && !lua_isnil(L, -1))
		luaL_error(L, "field '%s' must be an integer, not a %s", name, luaL_typename(L, -1));
	lua_pop(L, 1);
	return isint ? v : dflt;
}

/* Pushes the tags field of the table at idx as a userdata array of
 * key, value pointers (into the table's strings); returns it, count in *n. */
static const char **tag_pairs(lua_State *L, int idx, size_t *n)
{
	*n = 0;
	lua_getfield(L, idx, "tags");
	int tags = lua_gettop(L);
	if (lua_isnil(L, tags)) {
		lua_pop(L, 1);
		lua_pushnil(L);
		return NULL;
	}
	luaL_argcheck(L, lua_istable(L, tags), 2, "field 'tags' must be a table");
	size_t count = 0;
	lua_pushnil(L);
	while (lua_next(L, tags)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "field 'tags' must map names to strings");
		count++;
		lua_pop(L, 1);
	}
	const char **pairs = lua_newuserdatauv(L, (count ? count : 1) * 2 * sizeof *pairs, 0);
	lua_pushnil(L);
	while (lua_next(L, tags)) {
		pairs[2 * *n] = lua_tostring(L, -2);
		pairs[2 * *n + 1] = lua_tostring(L, -1);
		(*n)++;
		lua_pop(L, 1);
	}
	lua_remove(L, tags); /* the table stays referenced by argument idx */
	return pairs;
}

/* modeldb.check_name(name[, is_alias]) -> true | nil, message, "invalid" */
static int modeldb_check_name(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	struct mlx_err err;
	if (mlx_registry_check_name(name, lua_toboolean(L, 2), &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* modeldb.register(db, {name, hash, type, size, files, mode, path, run,
 * description, tags, force, created_ms}) -> version, existed | nil, message, code */
static int modeldb_register(lua_State *L)
{
	struct mlx_rundb *db = mlx_lua_check_rundb(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	struct mlx_model_version v = {
	    .name = opt_string(L, 2, "name"),
	    .hash = opt_string(L, 2, "hash"),
	    .type = opt_string(L, 2, "type"),
	    .size = opt_integer(L, 2, "size", -1),
	    .files = opt_integer(L, 2, "files", 0),
	    .mode = opt_string(L, 2, "mode"),
	    .path = opt_string(L, 2, "path"),
	    .run_id = opt_string(L, 2, "run"),
	    .description = opt_string(L, 2, "description"),
	    .created_ms = opt_integer(L, 2, "created_ms", 0),
	};
	lua_getfield(L, 2, "force");
	int force = lua_toboolean(L, -1);
	lua_pop(L, 1);
	v.tags = tag_pairs(L, 2, &v.ntags);
	int64_t version;
	int existed;
	struct mlx_err err;
	if (mlx_registry_register(db, &v, force, &version, &existed, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)version);
	lua_pushboolean(L, existed);
	return 2;
}

/* modeldb.set_alias(db, name, alias, version[, run]) -> previous | nil, message, code */
static int modeldb_set_alias(lua_State *L)
{
	struct mlx_rundb *db = mlx_lua_check_rundb(L, 1);
	const char *name = luaL_checkstring(L, 2), *alias = luaL_checkstring(L, 3);
	int64_t version = (int64_t)luaL_checkinteger(L, 4), previous;
	const char *run = luaL_optstring(L, 5, NULL);
	struct mlx_err err;
	if (mlx_registry_set_alias(db, name, alias, version, run, &previous, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)previous);
	return 1;
}

/* modeldb.delete_alias(db, name, alias[, run]) -> previous | nil, message, code */
static int modeldb_delete_alias(lua_State *L)
{
	struct mlx_rundb *db = mlx_lua_check_rundb(L, 1);
	const char *name = luaL_checkstring(L, 2), *alias = luaL_checkstring(L, 3);
	const char *run = luaL_optstring(L, 4, NULL);
	int64_t previous;
	struct mlx_err err;
	if (mlx_registry_delete_alias(db, name, alias, run, &previous, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)previous);
	return 1;
}

/* modeldb.rollback(db, name, alias[, run]) -> version (0: removed), previous | nil, message, code */
static int modeldb_rollback(lua_State *L)
{
	struct mlx_rundb *db = mlx_lua_check_rundb(L, 1);
	const char *name = luaL_checkstring(L, 2), *alias = luaL_checkstring(L, 3);
	const char *run = luaL_optstring(L, 4, NULL);
	int64_t version, previous;
	struct mlx_err err;
	if (mlx_registry_rollback(db, name, alias, run, &version, &previous, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)version);
	lua_pushinteger(L, (lua_Integer)previous);
	return 2;
}

static const luaL_Reg modeldb_functions[] = {
    {"check_name", modeldb_check_name},     {"register", modeldb_register}, {"set_alias", modeldb_set_alias},
    {"delete_alias", modeldb_delete_alias}, {"rollback", modeldb_rollback}, {NULL, NULL},
};

int luaopen_mlx_modeldb(lua_State *L)
{
	luaL_newlib(L, modeldb_functions);
	return 1;
}
