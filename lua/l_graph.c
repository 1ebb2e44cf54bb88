/* l_graph.c — mlx.stepgraph: the DAG of a pipeline's steps, built by
 * core/graph.c for stdlib/mlx/pipeline/graph.lua, which words the problems
 * for the user, and the SHA-256 of a step's key from its pieces. Declaring
 * the steps (their paths, their recipe line, the step set) is l_steps.c,
 * registered into the same module. */
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "binding.h"
#include "graph.h"
#include "hash.h"
#include "stepset.h"

#define GRAPH_MT "mlx.StepGraph"

/* The graph of a build, kept while its views of the links (upstream and
 * downstream, below) are reachable. */
struct graph_box {
	struct mlx_graph *g; /* NULL once freed */
};

static int release_graph(lua_State *L)
{
	struct graph_box *box = luaL_checkudata(L, 1, GRAPH_MT);
	mlx_graph_free(box->g);
	box->g = NULL;
	return 0;
}

static const char *const KINDS[] = {NULL, "duplicate", "nested", "self", "cycle"};

typedef int (*add_path_fn)(struct mlx_graph *, const char *, size_t, struct mlx_err *);

/* Adds the string on top of the stack to g with add (raising its failure)
 * and pops it. */
static void add_top(lua_State *L, struct mlx_graph *g, add_path_fn add)
{
	struct mlx_err err;
	size_t len;
	const char *path = lua_tolstring(L, -1, &len);
	if (add(g, path, len, &err) != MLX_OK)
		luaL_error(L, "%s", err.msg);
	lua_pop(L, 1);
}

/* Adds the strings of list field `name` of the step at index idx (the step
 * number i for messages) through add. Raises for a value not a string. */
static void add_paths(lua_State *L, struct mlx_graph *g, int idx, lua_Integer i, const char *name,
                      add_path_fn add)
{
	if (lua_getfield(L, idx, name) != LUA_TTABLE)
		luaL_error(L, "step %d: field '%s' must be a list of paths", (int)i, name);
	for (lua_Integer k = 1;; k++) {
		int t = lua_rawgeti(L, -1, k);
		if (t == LUA_TNIL) {
			lua_pop(L, 1);
			break;
		}
		if (t != LUA_TSTRING)
			luaL_error(L, "step %d: %s[%d] must be a string", (int)i, name, (int)k);
		add_top(L, g, add);
	}
	lua_pop(L, 1);
}

/* Adds the paths of the list on top of the stack (a step set's list, read
 * as it is) to g with add, and pops it. */
static void add_list(lua_State *L, struct mlx_graph *g, add_path_fn add)
{
	lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
	for (lua_Integer k = 1; k <= n; k++) {
		lua_rawgeti(L, -1, k);
		add_top(L, g, add);
	}
	lua_pop(L, 1);
}

static void push_path(lua_State *L, const struct mlx_graph *g, uint32_t id)
{
	size_t len;
	const char *path = mlx_graph_path(g, id, &len);
	lua_pushlstring(L, path, len);
}

/* Sets field name of the table on top to a map step → list of steps, the
 * lists given by list(); steps without any share the table at index none. */
static void push_links(lua_State *L, const struct mlx_graph *g, int steps, int none, const char *name,
                       const uint32_t *(*list)(const struct mlx_graph *, uint32_t, size_t *))
{
	uint32_t n = mlx_graph_steps(g);
	lua_createtable(L, 0, (int)n);
	for (uint32_t s = 0; s < n; s++) {
		size_t count;
		const uint32_t *items = list(g, s, &count);
		lua_rawgeti(L, steps, (lua_Integer)s + 1);
		if (count == 0) {
			lua_pushvalue(L, none);
		} else {
			lua_createtable(L, (int)count, 0);
			for (size_t k = 0; k < count; k++) {
				lua_rawgeti(L, steps, (lua_Integer)items[k] + 1);
				lua_rawseti(L, -2, (lua_Integer)k + 1);
			}
		}
		lua_rawset(L, -3);
	}
	lua_setfield(L, -2, name);
}

/* view[step] -> the list of steps linked to step (upstream or downstream,
 * as upvalue 4 says), made from the graph's arrays at each lookup; the
 * table of upvalue 3 when there are none; nil for a value that is not a
 * step of the graph. Upvalues: the graph box, the list of steps, the
 * shared empty list, whether downstream, and the metatable of the steps
 * when they are views of a step set (nil otherwise), whose index is read
 * without a call of their __index: the scheduler asks for every step. */
static int links_index(lua_State *L)
{
	struct graph_box *box = lua_touserdata(L, lua_upvalueindex(1));
	int steps = lua_upvalueindex(2);
	lua_Integer i = 0;
	if (!box->g) {
		/* freed: no step has links */
	} else if (lua_type(L, 2) == LUA_TUSERDATA) {
		if (lua_getmetatable(L, 2)) {
			if (lua_rawequal(L, -1, lua_upvalueindex(5)))
				i = mlx_lua_step_view_index(L, 2);
			lua_pop(L, 1);
		}
	} else if (lua_istable(L, 2) && lua_getfield(L, 2, "index") == LUA_TNUMBER && lua_isinteger(L, -1)) {
		i = lua_tointeger(L, -1);
	}
	if (i < 1 || i > (lua_Integer)mlx_graph_steps(box->g) || lua_rawgeti(L, steps, i) == LUA_TNIL ||
	    !lua_rawequal(L, -1, 2)) {
		lua_pushnil(L);
		return 1;
	}
	size_t count;
	const uint32_t *items = lua_toboolean(L, lua_upvalueindex(4))
	                            ? mlx_graph_downstream(box->g, (uint32_t)(i - 1), &count)
	                            : mlx_graph_upstream(box->g, (uint32_t)(i - 1), &count);
	if (count == 0) {
		lua_pushvalue(L, lua_upvalueindex(3));
		return 1;
	}
	lua_createtable(L, (int)count, 0);
	for (size_t k = 0; k < count; k++) {
		lua_rawgeti(L, steps, (lua_Integer)items[k] + 1);
		lua_rawseti(L, -2, (lua_Integer)k + 1);
	}
	return 1;
}

static int links_newindex(lua_State *L)
{
	return luaL_error(L, "a graph's links are read-only");
}

/* Sets field name of the table on top to a read-only view step → list of
 * steps over the graph at index box (see links_index): a 100,000-step
 * graph then holds no Lua table per step and link. */
static void push_link_view(lua_State *L, int box, int steps, int none, const char *name, int downstream)
{
	lua_createtable(L, 0, 0);
	lua_createtable(L, 0, 2);
	lua_pushvalue(L, box);
	lua_pushvalue(L, steps);
	lua_pushvalue(L, none);
	lua_pushboolean(L, downstream);
	/* The metatable of the first step, if it is a view of a step set. */
	if (lua_rawgeti(L, steps, 1) != LUA_TUSERDATA || !lua_getmetatable(L, -1))
		lua_pushnil(L);
	lua_remove(L, -2);
	lua_pushcclosure(L, links_index, 5);
	lua_setfield(L, -2, "__index");
	lua_pushcfunction(L, links_newindex);
	lua_setfield(L, -2, "__newindex");
	lua_setmetatable(L, -2);
	lua_setfield(L, -2, name);
}

/* mlx.stepgraph.build(steps, none) -> result. steps is a list of step
 * tables, each with lists of normal paths `outs` and `deps`; none is the
 * table given to steps without upstream or downstream steps. Returns a
 * table: `unproduced` = { path, step, … } (the deps no step produces, each
 * once, with the first step naming it), and either `kind` ("duplicate",
 * "nested", "self" or "cycle") with `step`, `other`, `path`, `dir` or
 * `cycle` (a list of steps), or `order` (the steps in topological order),
 * `upstream` and `downstream` (step → list of steps). Steps are the values
 * of the list: tables, or the views of a step set (l_steps.c). When every
 * step's field `index` is its position in steps, upstream and downstream
 * are read-only views that make a step's list at each lookup from the
 * graph, which they keep; otherwise tables holding every list. Raises for
 * a malformed step. */
static int graph_build(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TTABLE);
	struct graph_box *box = lua_newuserdatauv(L, sizeof *box, 0);
	box->g = NULL;
	luaL_setmetatable(L, GRAPH_MT);
	int box_idx = lua_gettop(L);
	/* Each step's field index is its position in steps (as mlx.pipeline
	 * numbers them): the views of the links then find a step's index
	 * without a table of all steps. Steps numbered otherwise get tables. */
	int indexed = 1;
	struct mlx_err err;
	if (mlx_graph_new(&box->g, &err) != MLX_OK)
		return luaL_error(L, "%s", err.msg);
	struct mlx_graph *g = box->g;
	lua_Integer nsteps = luaL_len(L, 1);
	/* The steps of a step set are read from their rows (its interned
	 * lists of normal paths), not through three fields each. */
	lua_pushnil(L); /* the metatable of the set's steps */
	int set_meta = lua_gettop(L);
	lua_pushnil(L); /* the set's lists */
	int set_lists = lua_gettop(L);
	const struct stepset *set = NULL;
	for (lua_Integer i = 1; i <= nsteps; i++) {
		lua_rawgeti(L, 1, i);
		uint32_t at;
		const struct step_row *row = stepset_row_of(L, lua_gettop(L), set_meta, set_lists, &set, &at);
		if (row) {
			if (mlx_graph_add_step(g, &err) != MLX_OK)
				return luaL_error(L, "%s", err.msg);
			indexed = indexed && at == i;
			lua_rawgeti(L, set_lists, row->outs);
			add_list(L, g, mlx_graph_add_out);
			lua_rawgeti(L, set_lists, row->deps);
			add_list(L, g, mlx_graph_add_dep);
			lua_pop(L, 1);
			continue;
		}
		if (!mlx_lua_is_step(L, -1))
			return luaL_error(L, "step %d is not a table", (int)i);
		if (mlx_graph_add_step(g, &err) != MLX_OK)
			return luaL_error(L, "%s", err.msg);
		int step = lua_gettop(L);
		if (indexed) {
			indexed = lua_getfield(L, step, "index") == LUA_TNUMBER && lua_isinteger(L, -1) &&
			          lua_tointeger(L, -1) == i;
			lua_pop(L, 1);
		}
		add_paths(L, g, step, i, "outs", mlx_graph_add_out);
		add_paths(L, g, step, i, "deps", mlx_graph_add_dep);
		lua_pop(L, 1);
	}
	lua_settop(L, set_meta - 1);
	struct mlx_graph_problem problem;
	if (mlx_graph_build(g, &problem, &err) != MLX_OK)
		return luaL_error(L, "%s", err.msg);

	lua_createtable(L, 0, 6);
	size_t n;
	const uint32_t *pairs = mlx_graph_unproduced(g, &n);
	lua_createtable(L, (int)(2 * n), 0);
	for (size_t k = 0; k < n; k++) {
		push_path(L, g, pairs[2 * k]);
		lua_rawseti(L, -2, (lua_Integer)(2 * k + 1));
		lua_rawgeti(L, 1, (lua_Integer)pairs[2 * k + 1] + 1);
		lua_rawseti(L, -2, (lua_Integer)(2 * k + 2));
	}
	lua_setfield(L, -2, "unproduced");
	if (problem.kind != MLX_GRAPH_OK) {
		lua_pushstring(L, KINDS[problem.kind]);
		lua_setfield(L, -2, "kind");
		lua_rawgeti(L, 1, (lua_Integer)problem.step + 1);
		lua_setfield(L, -2, "step");
		if (problem.kind == MLX_GRAPH_DUPLICATE || problem.kind == MLX_GRAPH_NESTED) {
			lua_rawgeti(L, 1, (lua_Integer)problem.other + 1);
			lua_setfield(L, -2, "other");
		}
		if (problem.kind != MLX_GRAPH_CYCLE) {
			push_path(L, g, problem.path);
			lua_setfield(L, -2, "path");
		}
		if (problem.kind == MLX_GRAPH_NESTED) {
			push_path(L, g, problem.dir);
			lua_setfield(L, -2, "dir");
		}
		if (problem.kind == MLX_GRAPH_CYCLE) {
			const uint32_t *cycle = mlx_graph_cycle(g, &n);
			lua_createtable(L, (int)n, 0);
			for (size_t k = 0; k < n; k++) {
				lua_rawgeti(L, 1, (lua_Integer)cycle[k] + 1);
				lua_rawseti(L, -2, (lua_Integer)k + 1);
			}
			lua_setfield(L, -2, "cycle");
		}
	} else {
		const uint32_t *order = mlx_graph_order(g, &n);
		lua_createtable(L, (int)n, 0);
		for (size_t k = 0; k < n; k++) {
			lua_rawgeti(L, 1, (lua_Integer)order[k] + 1);
			lua_rawseti(L, -2, (lua_Integer)k + 1);
		}
		lua_setfield(L, -2, "order");
		if (indexed) {
			push_link_view(L, box_idx, 1, 2, "upstream", 0);
			push_link_view(L, box_idx, 1, 2, "downstream", 1);
			return 1;
		}
		push_links(L, g, 1, 2, "upstream", mlx_graph_upstream);
		push_links(L, g, 1, 2, "downstream", mlx_graph_downstream);
	}
	mlx_graph_free(box->g);
	box->g = NULL;
	return 1;
}

#define DIGEST_MT "mlx.KeyDigest"

/* The SHA-256 context that digest keeps for every key it makes (an
 * upvalue of digest), freed with the Lua state. */
static int release_stream(lua_State *L)
{
	mlx_hash_stream_free(luaL_checkudata(L, 1, DIGEST_MT));
	return 0;
}

/* mlx.stepgraph.digest(piece...) -> the SHA-256 (64 hex digits) of the
 * strings given, joined: a step's key from the pieces of its key text
 * (mlx.pipeline.key), without making the joined text a Lua string. Raises
 * for a piece that is not a string, or when SHA-256 fails. */
static int graph_digest(lua_State *L)
{
	int top = lua_gettop(L);
	for (int i = 1; i <= top; i++)
		luaL_checktype(L, i, LUA_TSTRING);
	struct mlx_hash_stream *stream = lua_touserdata(L, lua_upvalueindex(1));
	struct mlx_err err;
	char hex[MLX_HASH_HEX_SIZE];
	int rc = mlx_hash_stream_start(stream, &err);
	for (int i = 1; rc == MLX_OK && i <= top; i++) {
		size_t len;
		const char *piece = lua_tolstring(L, i, &len);
		rc = mlx_hash_stream_update(stream, piece, len, &err);
	}
	if (rc == MLX_OK)
		rc = mlx_hash_stream_finish(stream, hex, &err);
	if (rc != MLX_OK)
		return luaL_error(L, "%s", err.msg);
	lua_pushlstring(L, hex, MLX_HASH_HEX_SIZE - 1);
	return 1;
}

static const luaL_Reg graph_functions[] = {
    {"build", graph_build},
    {NULL, NULL},
};

int luaopen_mlx_stepgraph(lua_State *L)
{
	luaL_newmetatable(L, GRAPH_MT);
	lua_pushcfunction(L, release_graph);
	lua_setfield(L, -2, "__gc");
	lua_pop(L, 1);
	luaL_newlib(L, graph_functions);
	mlx_lua_steps_register(L);
	struct mlx_hash_stream *stream = lua_newuserdatauv(L, sizeof *stream, 0);
	*stream = (struct mlx_hash_stream){0};
	luaL_newmetatable(L, DIGEST_MT);
	lua_pushcfunction(L, release_stream);
	lua_setfield(L, -2, "__gc");
	lua_setmetatable(L, -2);
	lua_pushcclosure(L, graph_digest, 1);
	lua_setfield(L, -2, "digest");
	return 1;
}
