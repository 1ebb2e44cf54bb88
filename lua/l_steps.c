/* l_steps.c — declaring a pipeline's steps (mlx.stepgraph, beside
 * l_graph.c): the step set, where a pipeline keeps its steps (the normal
 * form of their paths and the recipe line that declared them are
 * l_steppaths.c's, its pool of path lists l_steplists.c's).
 *
 * A recipe of 100,000 steps made a Lua table per step (a name, its line,
 * its index, its command or function, and lists of deps and outs: about
 * 250 bytes, and 150 more for the two lists) and a closure per
 * `p:step "name"`. Here a step is a row of ids in a C array and, for Lua,
 * a full userdata of 4 bytes (its index) whose fields are read through its
 * set's metatable: the name from the set's list of names, the line and the
 * command or function from a pool of values (steps declared on one line, or
 * sharing one function, share one entry), and the deps and outs from a pool
 * of path lists, where equal lists are one table (the deps of a chain's
 * step are the outs of the step before; a fan's steps share their deps).
 * The lists are real tables, so every reader (ipairs, #, json's C
 * encoders) reads them as before; they are shared and must not be changed.
 * Rare fields (desc, params, env, metrics, …) and fields a caller sets
 * live in a table of the step's own, made only for the steps that have
 * them; the others read as their defaults.
 *
 * `p:step "name" { … }` is declared here in one C call when it is the
 * common case (deps, outs, and a run function or a command without
 * ${…}, every path well-formed, a new name); anything else is handed to
 * the DSL's own checks in Lua (pipeline.lua, Pipeline:declare), which
 * raise every message as they always did and then add the step here. */
#include <ctype.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "path.h"
#include "stepset.h"
#include "steppaths.h"

#define STEP_NAME "mlx.Step"

/* ---- the step set ------------------------------------------------------ */

static int release_set(lua_State *L)
{
	struct stepset *set = luaL_checkudata(L, 1, STEPSET_MT);
	free(set->rows);
	free(set->slots);
	free(set->list_hash);
	free(set->list_plain);
	*set = (struct stepset){0};
	return 0;
}

static struct stepset *check_set(lua_State *L, int idx)
{
	return luaL_checkudata(L, idx, STEPSET_MT);
}

lua_Integer mlx_lua_step_view_index(lua_State *L, int idx)
{
	const uint32_t *view = lua_type(L, idx) == LUA_TUSERDATA ? lua_touserdata(L, idx) : NULL;
	return view && lua_rawlen(L, idx) == sizeof *view ? *view : 0;
}

int mlx_lua_is_step(lua_State *L, int idx)
{
	if (lua_istable(L, idx))
		return 1;
	if (lua_type(L, idx) != LUA_TUSERDATA || luaL_getmetafield(L, idx, "__name") == LUA_TNIL)
		return 0;
	int is = lua_type(L, -1) == LUA_TSTRING && strcmp(lua_tostring(L, -1), STEP_NAME) == 0;
	lua_pop(L, 1);
	return is;
}

/* The id of the value at idx in the set's pool. Functions and short
 * strings are added once (the line many steps share, their one function,
 * a command they share), and, when share_all, any string; other values (a
 * step's own long command, an argv list) each time, without the entry in
 * the map of shared values that would cost more than the value. */
static uint32_t value_id(lua_State *L, struct stepset *set, int setidx, int idx, int share_all)
{
	int type = lua_type(L, idx);
	int shared =
	    type == LUA_TFUNCTION || (type == LUA_TSTRING && (share_all || lua_rawlen(L, idx) <= 40));
	if (shared) {
		lua_getiuservalue(L, setidx, UV_VALUE_IDS);
		lua_pushvalue(L, idx);
		if (lua_rawget(L, -2) == LUA_TNUMBER) {
			uint32_t id = (uint32_t)lua_tointeger(L, -1);
			lua_pop(L, 2);
			return id;
		}
		lua_pop(L, 1);
	}
	if (set->nvalues >= UINT32_MAX / 4)
		luaL_error(L, "too many steps in one pipeline");
	uint32_t id = ++set->nvalues;
	lua_getiuservalue(L, setidx, UV_VALUES);
	lua_pushvalue(L, idx);
	lua_rawseti(L, -2, id);
	lua_pop(L, 1);
	if (shared) {
		lua_pushvalue(L, idx);
		lua_pushinteger(L, id);
		lua_rawset(L, -3);
		lua_pop(L, 1);
	}
	return id;
}

/* Adds a step to the set at setidx and to pipeline p (its `steps` and
 * `by_name`): name, where (and its value id where_id, or 0 when not known),
 * its action (cmd or run, as run says) at action, list ids deps and outs,
 * and its own table of fields at own (0: none). Pushes the step's view. */
static void add_step(lua_State *L, int p, int setidx, int name, int where, uint32_t where_id, int action,
                     int run, uint32_t deps, uint32_t outs, int own)
{
	struct stepset *set = lua_touserdata(L, setidx);
	if (set->n >= INT32_MAX - 1)
		luaL_error(L, "too many steps in one pipeline");
	if (set->n == set->cap) {
		uint32_t cap = set->cap ? set->cap * 2 : 64;
		struct step_row *q = realloc(set->rows, (size_t)cap * sizeof *q);
		if (!q)
			luaL_error(L, "out of memory declaring steps");
		set->rows = q;
		set->cap = cap;
	}
	struct step_row row = {
	    .where = where_id ? where_id : value_id(L, set, setidx, where, 1),
	    .action = value_id(L, set, setidx, action, 0),
	    .deps = deps,
	    .outs = outs,
	    .flags = (uint8_t)((run ? STEP_RUN : 0) | (own ? STEP_OWN : 0)),
	};
	uint32_t index = set->n + 1;
	lua_getiuservalue(L, setidx, UV_NAMES);
	lua_pushvalue(L, name);
	lua_rawseti(L, -2, index);
	lua_pop(L, 1);
	if (own) {
		lua_getiuservalue(L, setidx, UV_OWN);
		lua_pushvalue(L, own);
		lua_rawseti(L, -2, index);
		lua_pop(L, 1);
	}
	set->rows[set->n++] = row;

	uint32_t *view = lua_newuserdatauv(L, sizeof *view, 0);
	*view = index;
	lua_getiuservalue(L, setidx, UV_META);
	lua_setmetatable(L, -2);
	int v = lua_gettop(L);
	if (lua_getfield(L, p, "steps") != LUA_TTABLE)
		luaL_error(L, "pipeline has no list of steps");
	lua_pushvalue(L, v);
	lua_rawseti(L, -2, (lua_Integer)lua_rawlen(L, -2) + 1);
	lua_pop(L, 1);
	if (lua_getfield(L, p, "by_name") != LUA_TTABLE)
		luaL_error(L, "pipeline has no table of steps by name");
	lua_pushvalue(L, name);
	lua_pushvalue(L, v);
	lua_rawset(L, -3);
	lua_pop(L, 1);
}

/* The index of the step view at idx in set, or 0 when it is not one (a
 * metamethod called by hand, or after the set was released). */
static uint32_t view_index(lua_State *L, const struct stepset *set, int idx)
{
	const uint32_t *view = lua_type(L, idx) == LUA_TUSERDATA ? lua_touserdata(L, idx) : NULL;
	if (!view || lua_rawlen(L, idx) != sizeof *view || *view == 0 || *view > set->n)
		return 0;
	return *view;
}

/* step[key]: the step's own table first (a rare field, or one set on it),
 * then its row, then the defaults: no metrics, plots, params, env or tools
 * (the shared read-only empty table, upvalue 6), not persisted, not always
 * run, cached. Upvalues: the set, its names, values, lists, own tables,
 * and that empty table. */
static int step_index(lua_State *L)
{
	struct stepset *set = lua_touserdata(L, lua_upvalueindex(1));
	uint32_t i = view_index(L, set, 1);
	if (!i)
		return 0;
	const struct step_row *row = &set->rows[i - 1];
	if (row->flags & STEP_OWN) {
		lua_rawgeti(L, lua_upvalueindex(5), i);
		lua_pushvalue(L, 2);
		if (lua_rawget(L, -2) != LUA_TNIL)
			return 1;
		lua_pop(L, 2);
	}
	size_t len;
	const char *k = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
	if (!k)
		return 0;
	switch (len) {
	case 3:
		if (memcmp(k, "run", 3) == 0) {
			if (row->flags & STEP_RUN)
				lua_rawgeti(L, lua_upvalueindex(3), row->action);
			else
				lua_pushnil(L);
			return 1;
		}
		if (memcmp(k, "cmd", 3) == 0 || memcmp(k, "env", 3) == 0) {
			if (k[0] == 'e')
				lua_pushvalue(L, lua_upvalueindex(6));
			else if (row->flags & STEP_RUN)
				lua_pushnil(L);
			else
				lua_rawgeti(L, lua_upvalueindex(3), row->action);
			return 1;
		}
		break;
	case 4:
		if (memcmp(k, "name", 4) == 0) {
			lua_rawgeti(L, lua_upvalueindex(2), i);
			return 1;
		}
		if (memcmp(k, "deps", 4) == 0 || memcmp(k, "outs", 4) == 0) {
			lua_rawgeti(L, lua_upvalueindex(4), k[0] == 'd' ? row->deps : row->outs);
			return 1;
		}
		break;
	case 5:
		if (memcmp(k, "where", 5) == 0) {
			lua_rawgeti(L, lua_upvalueindex(3), row->where);
			return 1;
		}
		if (memcmp(k, "index", 5) == 0) {
			lua_pushinteger(L, i);
			return 1;
		}
		if (memcmp(k, "plots", 5) == 0 || memcmp(k, "tools", 5) == 0) {
			lua_pushvalue(L, lua_upvalueindex(6));
			return 1;
		}
		if (memcmp(k, "cache", 5) == 0) {
			lua_pushboolean(L, 1);
			return 1;
		}
		break;
	case 6:
		if (memcmp(k, "params", 6) == 0) {
			lua_pushvalue(L, lua_upvalueindex(6));
			return 1;
		}
		if (memcmp(k, "always", 6) == 0) {
			lua_pushboolean(L, 0);
			return 1;
		}
		break;
	case 7:
		if (memcmp(k, "metrics", 7) == 0) {
			lua_pushvalue(L, lua_upvalueindex(6));
			return 1;
		}
		if (memcmp(k, "persist", 7) == 0) {
			lua_pushboolean(L, 0);
			return 1;
		}
		break;
	}
	return 0;
}

/* step[key] = value: kept in the step's own table (made at the first such
 * write), which is read before its row, as a table's field would be. */
static int step_newindex(lua_State *L)
{
	struct stepset *set = lua_touserdata(L, lua_upvalueindex(1));
	uint32_t i = view_index(L, set, 1);
	if (!i)
		return luaL_error(L, "not a step of this pipeline");
	struct step_row *row = &set->rows[i - 1];
	if (!(row->flags & STEP_OWN)) {
		lua_createtable(L, 0, 1);
		lua_rawseti(L, lua_upvalueindex(2), i);
		row->flags |= STEP_OWN;
	}
	lua_rawgeti(L, lua_upvalueindex(2), i);
	lua_pushvalue(L, 2);
	lua_pushvalue(L, 3);
	lua_rawset(L, -3);
	return 0;
}

/* tostring(step): "step 'NAME'". */
static int step_tostring(lua_State *L)
{
	lua_rawgeti(L, lua_upvalueindex(2), view_index(L, lua_touserdata(L, lua_upvalueindex(1)), 1));
	lua_pushfstring(L, "step '%s'", lua_tostring(L, -1));
	return 1;
}

/* mlx.stepgraph.stepset(none) -> an empty set of steps, whose views read
 * none (a read-only empty table) for the lists a step did not declare. */
static int stepset_new(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	struct stepset *set = lua_newuserdatauv(L, sizeof *set, UV_COUNT);
	*set = (struct stepset){0};
	luaL_setmetatable(L, STEPSET_MT);
	int s = lua_gettop(L);
	for (int uv = UV_NAMES; uv < UV_META; uv++) {
		lua_newtable(L);
		lua_setiuservalue(L, s, uv);
	}
	lua_createtable(L, 0, 5);
	int meta = lua_gettop(L);
	lua_pushvalue(L, s);
	for (int uv = UV_NAMES; uv <= UV_OWN; uv++) {
		if (uv == UV_VALUE_IDS)
			continue;
		lua_getiuservalue(L, s, uv);
	}
	lua_pushvalue(L, 1);
	lua_pushcclosure(L, step_index, 6);
	lua_setfield(L, meta, "__index");
	lua_pushvalue(L, s);
	lua_getiuservalue(L, s, UV_OWN);
	lua_pushcclosure(L, step_newindex, 2);
	lua_setfield(L, meta, "__newindex");
	lua_pushvalue(L, s);
	lua_getiuservalue(L, s, UV_NAMES);
	lua_pushcclosure(L, step_tostring, 2);
	lua_setfield(L, meta, "__tostring");
	lua_pushliteral(L, STEP_NAME);
	lua_setfield(L, meta, "__name");
	/* How stepgraph.plain_run finds the set of a step. */
	lua_pushvalue(L, s);
	lua_setfield(L, meta, "__stepset");
	lua_setiuservalue(L, s, UV_META);
	return 1;
}

/* mlx.stepgraph.add(p, name, where, deps, outs, cmd, run, own) -> step.
 * Adds a step that Pipeline:declare has checked to pipeline p (its
 * `stepset`, `steps` and `by_name`): deps and outs are lists of normal
 * paths (kept, or an equal list already kept instead: they must not be
 * changed afterwards), exactly one of cmd and run, and own (or nil) the
 * table of its rare fields. Returns its view. Raises for a p without a
 * step set. */
static int stepset_add(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TSTRING);
	luaL_checktype(L, 3, LUA_TSTRING);
	luaL_checktype(L, 4, LUA_TTABLE);
	luaL_checktype(L, 5, LUA_TTABLE);
	lua_settop(L, 8);
	lua_getfield(L, 1, "stepset");
	struct stepset *set = check_set(L, 9);
	uint32_t deps = stepset_intern_table(L, set, 9, 4);
	uint32_t outs = stepset_intern_table(L, set, 9, 5);
	int run = lua_isnil(L, 6);
	add_step(L, 1, 9, 2, 3, 0, run ? 7 : 6, run, deps, outs, lua_istable(L, 8) ? 8 : 0);
	return 1;
}

static int has_metatable(lua_State *L, int idx)
{
	if (!lua_getmetatable(L, idx))
		return 0;
	lua_pop(L, 1);
	return 1;
}

/* Normalizes the list at idx onto the stack (a written list's paths also
 * checked as paths mlx may write) and interns it; returns its id, or 0
 * (stack as it was) when the list is not plain: not a list of strings, or
 * a path refused, which the Lua checks then report. */
static uint32_t fast_list(lua_State *L, struct stepset *set, int setidx, int idx, int written)
{
	if (!lua_istable(L, idx) || has_metatable(L, idx))
		return 0;
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
	if (n > 64 || !lua_checkstack(L, (int)n + 8))
		return 0;
	int top = lua_gettop(L);
	lua_Integer count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1) || ++count > n) {
			lua_settop(L, top);
			return 0;
		}
	}
	if (count != n)
		return 0;
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, idx, i) != LUA_TSTRING) {
			lua_settop(L, top);
			return 0;
		}
		size_t len;
		const char *path = lua_tolstring(L, -1, &len);
		int at = lua_gettop(L);
		if (steppaths_push_normal(L, path, len, at) != NULL) {
			lua_settop(L, top);
			return 0;
		}
		lua_replace(L, at);
		if (written) {
			struct mlx_err err;
			const char *normal = lua_tolstring(L, at, &len);
			if (normal[len - 1] == '/')
				len--;
			if (mlx_path_check(normal, len, &err) != MLX_OK) {
				lua_settop(L, top);
				return 0;
			}
		}
	}
	uint32_t id = stepset_intern_list(L, set, setidx, top + 1, (int)n, 0);
	lua_settop(L, top);
	return id;
}

/* True if the string at idx holds "${" (a param, or the shell's). */
static int has_param(lua_State *L, int idx)
{
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	for (size_t i = 0; i + 1 < len; i++)
		if (s[i] == '$' && s[i + 1] == '{')
			return 1;
	return 0;
}

/* Pushes "file:line: ", the recipe line that called the DSL, as
 * steppaths_push_where(L, 1) does, and returns its value id in set (at
 * setidx), or 0 when not known (no set, a call from the stdlib). The steps
 * of a loop come from one line of one function: the set keeps the function
 * (values[0], so that it stays the same one) and the line of the last
 * declaration, whose where is then neither formatted nor looked up. */
static uint32_t push_where(lua_State *L, struct stepset *set, int setidx)
{
	lua_Debug ar;
	if (set && lua_getstack(L, 1, &ar) && lua_getinfo(L, "Slf", &ar)) {
		int fn = lua_gettop(L);
		if (ar.currentline > 0 && strncmp(ar.source, "@stdlib/", 8) != 0 &&
		    strcmp(ar.what, "C") != 0) {
			lua_getiuservalue(L, setidx, UV_VALUES);
			lua_rawgeti(L, -1, 0);
			if (set->where_id && set->where_line == ar.currentline && lua_rawequal(L, -1, fn)) {
				lua_rawgeti(L, -2, set->where_id);
				lua_replace(L, fn);
				lua_settop(L, fn);
				return set->where_id;
			}
			lua_pop(L, 1);
			lua_pushvalue(L, fn);
			lua_rawseti(L, -2, 0);
			lua_pushfstring(L, "%s:%d: ", ar.short_src, ar.currentline);
			lua_replace(L, fn);
			lua_settop(L, fn);
			set->where_id = value_id(L, set, setidx, fn, 1);
			set->where_line = ar.currentline;
			return set->where_id;
		}
		lua_settop(L, fn - 1);
	}
	steppaths_push_where(L, 1);
	return 0;
}

/* The closure `p:step "name"` returns (upvalues p and name): declares the
 * step with the fields given and returns its view. The common case is done
 * here; any other goes to p:declare(name, fields, where), the DSL's checks
 * in Lua, which raise the declaration's errors or add the step. */
static int declare_step(lua_State *L)
{
	lua_settop(L, 1);
	int p = lua_upvalueindex(1), name = lua_upvalueindex(2);
	lua_getfield(L, p, "stepset"); /* 2, then 3 */
	struct stepset *set = luaL_testudata(L, 2, STEPSET_MT);
	uint32_t where = push_where(L, set, 2);
	lua_rotate(L, 2, 1); /* 2: where, 3: the set */
	lua_pushnil(L);      /* 4: its cmd or run */
	int fast = set && lua_istable(L, 1) && !has_metatable(L, 1);
	if (fast) {
		lua_getfield(L, p, "by_name");
		lua_pushvalue(L, name);
		fast = lua_istable(L, -2) && lua_rawget(L, -2) == LUA_TNIL;
		lua_settop(L, 4);
	}
	uint32_t deps = 0, outs = 0;
	int run = -1; /* no cmd or run yet */
	if (fast) {
		/* Only deps, outs, and either a function run or a command string
		 * without "${": the fields of almost every generated step. */
		lua_pushnil(L);
		while (lua_next(L, 1)) {
			int value = lua_gettop(L);
			size_t klen = 0;
			const char *k = lua_type(L, -2) == LUA_TSTRING ? lua_tolstring(L, -2, &klen) : "";
			int field = klen == 4   ? (memcmp(k, "deps", 4) == 0   ? 'd'
			                           : memcmp(k, "outs", 4) == 0 ? 'o'
			                                                       : 0)
			            : klen == 3 ? (memcmp(k, "run", 3) == 0   ? 'r'
			                           : memcmp(k, "cmd", 3) == 0 ? 'c'
			                                                      : 0)
			                        : 0;
			int type = lua_type(L, value);
			if (field == 'd') {
				fast = (deps = fast_list(L, set, 3, value, 0)) != 0;
			} else if (field == 'o') {
				fast = (outs = fast_list(L, set, 3, value, 1)) != 0;
			} else if (run < 0 && field == 'r' && type == LUA_TFUNCTION) {
				run = 1;
			} else if (run < 0 && field == 'c' && type == LUA_TSTRING && !has_param(L, value)) {
				run = 0;
			} else {
				fast = 0;
			}
			if (!fast)
				break;
			if (field == 'r' || field == 'c')
				lua_replace(L, 4);
			else
				lua_pop(L, 1);
		}
		fast = fast && run >= 0;
	}
	if (!fast) {
		lua_settop(L, 2);
		lua_getfield(L, p, "declare");
		lua_pushvalue(L, p);
		lua_pushvalue(L, name);
		lua_pushvalue(L, 1);
		lua_pushvalue(L, 2);
		lua_call(L, 4, 1);
		return 1;
	}
	lua_settop(L, 4);
	if (!deps)
		deps = stepset_intern_list(L, set, 3, 5, 0, 0);
	if (!outs)
		outs = stepset_intern_list(L, set, 3, 5, 0, 0);
	add_step(L, p, 3, name, 2, where, 4, run, deps, outs, 0);
	return 1;
}

/* True if the value at idx is a step name: letters, digits and _ . - : /,
 * not starting with . - : or / (the DSL's pattern ^[%w_][%w_.%-:/]*$). */
static int is_step_name(lua_State *L, int idx)
{
	size_t len;
	if (lua_type(L, idx) != LUA_TSTRING)
		return 0;
	const char *s = lua_tolstring(L, idx, &len);
	if (len == 0 || !(isalnum((unsigned char)s[0]) || s[0] == '_'))
		return 0;
	for (size_t i = 1; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!isalnum(c) && c != '_' && c != '.' && c != '-' && c != ':' && c != '/')
			return 0;
	}
	return 1;
}

/* mlx.stepgraph.step(p, name) -> the function that declares step name of
 * pipeline p from its fields (Pipeline:step: p:step "name" { … }). A name
 * that is not one goes to p:refuse_step_name(name, where), which raises. */
/* mlx.stepgraph.plain_run(step) -> function, name, deps, outs | nil: the
 * function of a Lua step of a step set that declares no rare field (no
 * env, params or tools: its key text's other pieces are its function's and
 * its paths') and whose deps and outs json writes as they are, with the
 * step's name and its (shared, read-only) deps and outs lists; nil for any
 * other step (a table, a command step, one with a table of its own).
 * key.cannot_raise asks it for each never-run step of a dry run, and
 * state.unsure_steps for each step of a no-op, in one call instead of
 * reading their fields one by one through __index. */
static int steps_plain_run(lua_State *L)
{
	if (lua_type(L, 1) != LUA_TUSERDATA || !lua_getmetatable(L, 1))
		return 0;
	lua_getfield(L, -1, "__stepset");
	struct stepset *set = luaL_testudata(L, -1, STEPSET_MT);
	uint32_t i = set ? view_index(L, set, 1) : 0;
	if (!i)
		return 0;
	const struct step_row *row = &set->rows[i - 1];
	if ((row->flags & (STEP_RUN | STEP_OWN)) != STEP_RUN || !set->list_plain[row->deps - 1] ||
	    !set->list_plain[row->outs - 1])
		return 0;
	int setidx = lua_gettop(L);
	lua_getiuservalue(L, setidx, UV_VALUES);
	lua_rawgeti(L, -1, row->action);
	lua_getiuservalue(L, setidx, UV_NAMES);
	lua_rawgeti(L, -1, i);
	lua_replace(L, -2);
	lua_getiuservalue(L, setidx, UV_LISTS);
	lua_rawgeti(L, -1, row->deps);
	lua_rawgeti(L, -2, row->outs);
	lua_remove(L, -3);
	return 4;
}

const struct step_row *stepset_row_of(lua_State *L, int idx, int meta, int lists, const struct stepset **set,
                                      uint32_t *index)
{
	if (lua_type(L, idx) != LUA_TUSERDATA || !lua_getmetatable(L, idx))
		return NULL;
	/* The steps of one pipeline share their set's metatable: the set is
	 * looked up again only for another one. */
	if (!lua_rawequal(L, -1, meta)) {
		lua_getfield(L, -1, "__stepset");
		const struct stepset *found = luaL_testudata(L, -1, STEPSET_MT);
		if (found) {
			*set = found;
			lua_getiuservalue(L, -1, UV_LISTS);
			lua_replace(L, lists);
			lua_pushvalue(L, -2);
			lua_replace(L, meta);
		}
		lua_pop(L, 1);
	}
	uint32_t at = lua_rawequal(L, -1, meta) ? view_index(L, *set, idx) : 0;
	lua_pop(L, 1);
	/* A step with a table of its own may have had its deps or outs set
	 * there: it is read through __index. */
	if (!at || ((*set)->rows[at - 1].flags & STEP_OWN))
		return NULL;
	*index = at;
	return &(*set)->rows[at - 1];
}

/* mlx.stepgraph.paths_of(steps) -> list: the deps and then the outs of each
 * step of the list steps, in its order, as one new list (the pipeline's
 * prefetch hashes them in one call, keeping the first of each path). A
 * step of a step set without a table of its own is read from its row, not
 * through its __index, and a list of the set already given is not given
 * again: a chain's deps are the outs of the step before, and a fan's steps
 * share one list of deps, so 100,000 steps give 100,000 paths, not twice
 * as many. Any other step is read from its fields, repeats included.
 * Raises for a step without a deps or outs list. */
static int steps_paths_of(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	lua_settop(L, 1);
	lua_createtable(L, n > 0 && n < INT32_MAX / 2 ? (int)(n + 1) : 0, 0); /* 2 */
	lua_pushnil(L); /* 3: the metatable of set's steps */
	lua_pushnil(L); /* 4: set's lists */
	lua_pushnil(L); /* 5: which lists of seen_set were given, a byte each */
	const struct stepset *set = NULL, *seen_set = NULL;
	uint8_t *seen = NULL;
	lua_Integer count = 0;
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, 1, i); /* 6: the step */
		uint32_t at;
		const struct step_row *row = stepset_row_of(L, 6, 3, 4, &set, &at);
		if (row && !seen_set) {
			seen_set = set;
			seen = lua_newuserdatauv(L, (size_t)set->nlists + 1, 0);
			memset(seen, 0, (size_t)set->nlists + 1);
			lua_replace(L, 5);
		}
		for (int outs = 0; outs <= 1; outs++) {
			if (row) {
				uint32_t id = outs ? row->outs : row->deps;
				if (set == seen_set && id <= seen_set->nlists) {
					if (seen[id])
						continue;
					seen[id] = 1;
				}
				lua_rawgeti(L, 4, id);
			} else if (lua_getfield(L, 6, outs ? "outs" : "deps") != LUA_TTABLE) {
				return luaL_error(L, "step %d has no list of %s", (int)i, outs ? "outs" : "deps");
			}
			lua_Integer m = (lua_Integer)lua_rawlen(L, -1);
			for (lua_Integer k = 1; k <= m; k++) {
				lua_rawgeti(L, -1, k);
				lua_rawseti(L, 2, ++count);
			}
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	lua_settop(L, 2);
	return 1;
}

static int pipeline_step(lua_State *L)
{
	lua_settop(L, 2);
	if (!is_step_name(L, 2)) {
		lua_getfield(L, 1, "refuse_step_name");
		lua_pushvalue(L, 1);
		lua_pushvalue(L, 2);
		steppaths_push_where(L, 1);
		lua_call(L, 3, 0);
		return luaL_error(L, "step name refused");
	}
	lua_pushcclosure(L, declare_step, 2);
	return 1;
}

static const luaL_Reg steps_functions[] = {
    {"stepset", stepset_new},       {"add", stepset_add},         {"step", pipeline_step},
    {"plain_run", steps_plain_run}, {"paths_of", steps_paths_of}, {NULL, NULL},
};

void mlx_lua_steps_register(lua_State *L)
{
	luaL_newmetatable(L, STEPSET_MT);
	lua_pushcfunction(L, release_set);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	luaL_setfuncs(L, steps_functions, 0);
	steppaths_register(L);
}
