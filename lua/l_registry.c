/* l_registry.c — mlx.modeldb: the model registry's writes (core/registry.h)
 * on an open runs database (an mlx.RunDb of mlx.rundb). The policy — refs,
 * the store, lineage, checkout — lives in stdlib/mlx/registry.lua; reads
 * are queries there. Version numbers cross as integers, 0 meaning none. */
#include <lauxlib.h>
#include <string.h>

#include "binding.h"
#include "registry.h"

/* Pushes the tags field of the table at idx as a userdata array of
 * key, value pointers (into the table's strings), or nil if there are none;
 * returns the array, its count in *n. */
static const char **tag_pairs(lua_State *L, int idx, size_t *n)
{
	*n = 0;
	int tags = mlx_lua_optfield_table(L, idx, "tags");
	if (!tags) {
		lua_pushnil(L);
		return NULL;
	}
	size_t count = 0;
	lua_pushnil(L);
	while (lua_next(L, tags)) {
		if (lua_type(L, -2) != LUA_TSTRING)
			mlx_lua_field_error(L, idx, "tags", "keyed by names (strings)", -2);
		if (lua_type(L, -1) != LUA_TSTRING)
			mlx_lua_field_error(L, idx, lua_pushfstring(L, "tags.%s", lua_tostring(L, -2)),
			                    "a string", -2);
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
	    .name = mlx_lua_optfield_string(L, 2, "name", NULL),
	    .hash = mlx_lua_optfield_string(L, 2, "hash", NULL),
	    .type = mlx_lua_optfield_string(L, 2, "type", NULL),
	    .size = mlx_lua_optfield_integer(L, 2, "size", -1),
	    .files = mlx_lua_optfield_integer(L, 2, "files", 0),
	    .mode = mlx_lua_optfield_string(L, 2, "mode", NULL),
	    .path = mlx_lua_optfield_string(L, 2, "path", NULL),
	    .run_id = mlx_lua_optfield_string(L, 2, "run", NULL),
	    .description = mlx_lua_optfield_string(L, 2, "description", NULL),
	    .created_ms = mlx_lua_optfield_integer(L, 2, "created_ms", 0),
	};
	int force = mlx_lua_optfield_boolean(L, 2, "force", 0);
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
