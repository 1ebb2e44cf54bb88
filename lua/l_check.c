/* l_check.c — mlx.datacheck: the counting pass of mlx.check over a CSV or
 * JSON Lines file (core/check.c), in mlx_data.so. stdlib/mlx/check.lua
 * declares the rules and judges the counts; this file converts.
 *
 *   datacheck.run(path, format, specs, options) -> result | nil, message, code
 *
 * format "csv" or "jsonl"; specs an array of column specs {name, type,
 * nulls, min, max, allowed, unique, categories, sample, edges}; options
 * {delimiter, na, on_row, libcsv_only}: libcsv_only gives every line to
 * libcsv, not only those with quotes (to compare). on_row(row, values) is called per data
 * row with the spec columns' values by name (strings; absent for a null)
 * and returns true to go on, or false/nil and a message to stop (the call
 * then fails with that message, "invalid"). */
#include <lauxlib.h>
#include <string.h>

#include "binding.h"
#include "check.h"

struct run_box {
	struct mlx_check *check;
};

static void release_run(void *contents)
{
	struct run_box *box = contents;
	mlx_check_free(box->check);
}

struct row_call {
	lua_State *L;
	int fn;    /* stack index of on_row */
	int names; /* stack index of the array of names */
	size_t ncols;
	lua_CFunction interrupted;
	/* the row being passed */
	uint64_t row;
	const char *const *fields;
	const size_t *lens;
};

/* Builds the row's table and calls on_row: under lua_pcall, as everything
 * that may allocate while the reader holds its file and buffers. */
static int call_on_row(lua_State *L)
{
	/* 1: the row_call, 2: on_row, 3: the names */
	struct row_call *rc = lua_touserdata(L, 1);
	lua_pushvalue(L, 2);
	lua_pushinteger(L, (lua_Integer)rc->row);
	lua_createtable(L, 0, (int)rc->ncols);
	for (size_t i = 0; i < rc->ncols; i++) {
		if (!rc->fields[i])
			continue;
		lua_rawgeti(L, 3, (lua_Integer)i + 1);
		lua_pushlstring(L, rc->fields[i], rc->lens[i]);
		lua_rawset(L, -3);
	}
	lua_call(L, 2, 2);
	return 2;
}

/* The stack has room for these pushes (lua_checkstack before the read),
 * so nothing here allocates outside the protected call. */
static int on_row(void *ctx, uint64_t row, const char *const *fields, const size_t *lens, struct mlx_err *err)
{
	struct row_call *rc = ctx;
	lua_State *L = rc->L;
	rc->row = row;
	rc->fields = fields;
	rc->lens = lens;
	lua_pushcfunction(L, call_on_row);
	lua_pushlightuserdata(L, rc);
	lua_pushvalue(L, rc->fn);
	lua_pushvalue(L, rc->names);
	if (lua_pcall(L, 3, 2, 0) != LUA_OK) {
		const char *msg =
		    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "error in a row predicate";
		mlx_err_set(err, strcmp(msg, "interrupted") == 0 ? MLX_ERR_INTERRUPTED : MLX_ERR_INVALID, 0,
		            "%s", msg);
		lua_pop(L, 1);
		return 1;
	}
	int go_on = lua_toboolean(L, -2);
	if (!go_on)
		mlx_err_set(err, MLX_ERR_INVALID, 0, "%s",
		            lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1)
		                                           : "a row predicate stopped the check");
	lua_pop(L, 2);
	return !go_on;
}

static int cancelled(void *arg)
{
	struct row_call *rc = arg;
	rc->interrupted(rc->L);
	int stop = lua_toboolean(rc->L, -1);
	lua_pop(rc->L, 1);
	return stop;
}

static const char *const type_names[] = {"any", "string", "int", "number", "bool", NULL};
static const char *const rule_names[] = {"null", "type", "min", "max", "allowed", "unique"};
static const char *const spec_fields[] = {"name",   "type",       "nulls",  "min",   "max", "allowed",
                                          "unique", "categories", "sample", "edges", NULL};

/* Reads a string array at stack index t into strings allocated as Lua
 * userdata (kept alive on the stack); returns the count. */
static size_t read_strings(lua_State *L, int arg, int t, const char *what, const char ***out)
{
	size_t n = lua_rawlen(L, t);
	const char **list = lua_newuserdatauv(L, (n ? n : 1) * sizeof *list, 0);
	for (size_t j = 0; j < n; j++) {
		lua_rawgeti(L, t, (lua_Integer)j + 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			mlx_lua_field_error(L, arg, what, "an array of strings", -1);
		list[j] = lua_tostring(L, -1);
		lua_pop(L, 1); /* the table keeps it alive */
	}
	*out = list;
	return n;
}

static void push_count(lua_State *L, const struct mlx_check_count *k)
{
	lua_createtable(L, 0, 2);
	lua_pushinteger(L, (lua_Integer)k->count);
	lua_setfield(L, -2, "count");
	lua_createtable(L, (int)k->nexamples, 0);
	for (size_t e = 0; e < k->nexamples; e++) {
		lua_createtable(L, 0, 2);
		lua_pushinteger(L, (lua_Integer)k->examples[e].row);
		lua_setfield(L, -2, "row");
		lua_pushstring(L, k->examples[e].value);
		lua_setfield(L, -2, "value");
		lua_rawseti(L, -2, (lua_Integer)e + 1);
	}
	lua_setfield(L, -2, "examples");
}

static void push_column(lua_State *L, const struct mlx_check *check, size_t i)
{
	const struct mlx_check_stats *st = mlx_check_stats(check, i);
	lua_createtable(L, 0, 12);
	lua_pushboolean(L, st->present);
	lua_setfield(L, -2, "present");
	lua_pushinteger(L, (lua_Integer)st->nulls);
	lua_setfield(L, -2, "nulls");
	lua_pushinteger(L, (lua_Integer)st->numbers);
	lua_setfield(L, -2, "numbers");
	if (st->numbers) {
		lua_pushnumber(L, st->sum);
		lua_setfield(L, -2, "sum");
		lua_pushnumber(L, st->min);
		lua_setfield(L, -2, "min");
		lua_pushnumber(L, st->max);
		lua_setfield(L, -2, "max");
	}
	lua_createtable(L, 0, MLX_CHECK_NRULES);
	for (int r = 0; r < MLX_CHECK_NRULES; r++) {
		if (!st->rules[r].count)
			continue;
		push_count(L, &st->rules[r]);
		lua_setfield(L, -2, rule_names[r]);
	}
	lua_setfield(L, -2, "rules");
	if (st->bins) {
		lua_createtable(L, (int)st->nbins, 0);
		for (size_t b = 0; b < st->nbins; b++) {
			lua_pushinteger(L, (lua_Integer)st->bins[b]);
			lua_rawseti(L, -2, (lua_Integer)b + 1);
		}
		lua_setfield(L, -2, "bins");
	}
	if (st->sample) {
		lua_createtable(L, (int)st->nsample, 0);
		for (size_t s = 0; s < st->nsample; s++) {
			lua_pushnumber(L, st->sample[s]);
			lua_rawseti(L, -2, (lua_Integer)s + 1);
		}
		lua_setfield(L, -2, "sample");
	}
	lua_createtable(L, 0, (int)st->ncategories);
	for (size_t j = 0; j < st->ncategories; j++) {
		const char *v;
		size_t len;
		uint64_t count;
		mlx_check_category(check, i, j, &v, &len, &count);
		lua_pushlstring(L, v, len);
		lua_pushinteger(L, (lua_Integer)count);
		lua_rawset(L, -3);
	}
	lua_setfield(L, -2, "categories");
	lua_pushinteger(L, (lua_Integer)st->categories_other);
	lua_setfield(L, -2, "categories_other");
}

/* datacheck.run(path, format, specs, options) -> result | nil, message, code */
static int datacheck_run(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	static const char *const formats[] = {"csv", "jsonl", NULL};
	int format = luaL_checkoption(L, 2, NULL, formats);
	luaL_checktype(L, 3, LUA_TTABLE);
	static const char *const option_fields[] = {"delimiter", "na", "on_row", "libcsv_only", NULL};
	mlx_lua_check_fields(L, 4, option_fields, 0);
	size_t nspecs = lua_rawlen(L, 3);
	struct mlx_check_spec *specs = lua_newuserdatauv(L, (nspecs ? nspecs : 1) * sizeof *specs, 0);
	memset(specs, 0, (nspecs ? nspecs : 1) * sizeof *specs);
	lua_createtable(L, (int)nspecs, 0); /* names, for on_row */
	int names = lua_gettop(L);
	lua_createtable(L, 0, 0); /* keeps the C arrays made from the specs alive */
	int keep = lua_gettop(L);
	lua_Integer nkeep = 0;
	for (size_t i = 0; i < nspecs; i++) {
		struct mlx_check_spec *s = &specs[i];
		if (lua_rawgeti(L, 3, (lua_Integer)i + 1) != LUA_TTABLE)
			return luaL_argerror(L, 3, "expected an array of column specs (tables)");
		int t = lua_gettop(L);
		mlx_lua_check_subfields(L, 3, t, "spec", spec_fields);
		lua_getfield(L, t, "name");
		if (lua_type(L, -1) != LUA_TSTRING)
			return mlx_lua_field_error(L, 3, "name", "a string", -1);
		s->name = lua_tostring(L, -1);
		lua_pushvalue(L, -1);
		lua_rawseti(L, names, (lua_Integer)i + 1);
		lua_pop(L, 1);
		lua_getfield(L, t, "type");
		s->type = (enum mlx_check_type)luaL_checkoption(L, -1, "any", type_names);
		lua_pop(L, 1);
		lua_getfield(L, t, "nulls");
		s->nulls_allowed = lua_isnil(L, -1) || lua_toboolean(L, -1);
		lua_pop(L, 1);
		if (lua_getfield(L, t, "min") != LUA_TNIL) {
			s->has_min = 1;
			s->min = luaL_checknumber(L, -1);
		}
		if (lua_getfield(L, t, "max") != LUA_TNIL) {
			s->has_max = 1;
			s->max = luaL_checknumber(L, -1);
		}
		lua_pop(L, 2);
		lua_getfield(L, t, "unique");
		s->unique = lua_toboolean(L, -1);
		lua_getfield(L, t, "categories");
		s->categories = (size_t)luaL_optinteger(L, -1, 0);
		lua_getfield(L, t, "sample");
		s->sample = (size_t)luaL_optinteger(L, -1, 0);
		lua_pop(L, 3);
		if (lua_getfield(L, t, "allowed") == LUA_TTABLE) {
			const char **list;
			s->nallowed = read_strings(L, 3, lua_gettop(L), "allowed", &list);
			s->allowed = list;
			lua_rawseti(L, keep, ++nkeep);
		}
		lua_pop(L, 1);
		if (lua_getfield(L, t, "edges") == LUA_TTABLE) {
			size_t n = lua_rawlen(L, -1);
			double *edges = lua_newuserdatauv(L, (n ? n : 1) * sizeof *edges, 0);
			for (size_t j = 0; j < n; j++) {
				lua_rawgeti(L, -2, (lua_Integer)j + 1);
				edges[j] = luaL_checknumber(L, -1);
				lua_pop(L, 1);
			}
			s->edges = edges;
			s->nedges = n;
			lua_rawseti(L, keep, ++nkeep);
		}
		lua_pop(L, 2); /* edges, the spec (kept by the specs array) */
	}

	struct mlx_check_options o = {0};
	const char *delim = mlx_lua_optfield_string(L, 4, "delimiter", NULL);
	if (delim && strlen(delim) != 1)
		return luaL_argerror(L, 4, "field 'delimiter' must be one character");
	o.delimiter = delim ? delim[0] : ',';
	int na = mlx_lua_optfield_table(L, 4, "na");
	const char **na_list = NULL;
	if (na)
		o.nna = read_strings(L, 4, na, "na", &na_list);
	o.na = na_list;
	o.libcsv_only = mlx_lua_optfield_boolean(L, 4, "libcsv_only", 0);
	struct row_call call = {
	    .L = L, .names = names, .ncols = nspecs, .interrupted = mlx_lua_find_interrupted(L)};
	if (!lua_isnoneornil(L, 4) && lua_getfield(L, 4, "on_row") != LUA_TNIL) {
		luaL_checktype(L, -1, LUA_TFUNCTION);
		call.fn = lua_gettop(L);
		o.on_row = on_row;
		o.ctx = &call;
	}
	if (call.interrupted) {
		o.cancelled = cancelled;
		o.cancel_arg = &call;
	}

	luaL_checkstack(L, 8, "checking a file");
	struct mlx_err err;
	struct run_box *box = mlx_lua_box(L, sizeof *box, release_run);
	int boxi = lua_gettop(L);
	box->check = mlx_check_new(specs, nspecs, &err);
	if (!box->check)
		return mlx_lua_fail(L, &err);
	int rc = format == 0 ? mlx_check_csv(box->check, path, &o, &err)
	                     : mlx_check_jsonl(box->check, path, &o, &err);
	if (rc != MLX_OK) {
		mlx_lua_box_release(L, boxi);
		return mlx_lua_fail(L, &err);
	}
	const struct mlx_check_rows *rows = mlx_check_rows(box->check);
	lua_createtable(L, 0, 5);
	lua_pushinteger(L, (lua_Integer)rows->rows);
	lua_setfield(L, -2, "rows");
	push_count(L, &rows->ragged);
	lua_setfield(L, -2, "ragged");
	push_count(L, &rows->malformed);
	lua_setfield(L, -2, "malformed");
	if (rows->header) {
		lua_createtable(L, (int)rows->nheader, 0);
		for (size_t h = 0; h < rows->nheader; h++) {
			lua_pushstring(L, rows->header[h]);
			lua_rawseti(L, -2, (lua_Integer)h + 1);
		}
		lua_setfield(L, -2, "header");
	}
	lua_createtable(L, (int)nspecs, 0);
	for (size_t i = 0; i < nspecs; i++) {
		push_column(L, box->check, i);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	lua_setfield(L, -2, "columns");
	mlx_lua_box_release(L, boxi);
	return 1;
}

static const luaL_Reg datacheck_functions[] = {
    {"run", datacheck_run},
    {NULL, NULL},
};

int luaopen_mlx_datacheck(lua_State *L)
{
	luaL_newlib(L, datacheck_functions);
	return 1;
}
