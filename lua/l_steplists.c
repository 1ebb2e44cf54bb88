/* l_steplists.c — the step set's pool of path lists (part of
 * mlx.stepgraph, beside l_steps.c): a step's deps and outs are list ids,
 * and equal lists are one table, found by the hash of their paths (the deps
 * of a chain's step are the outs of the step before; a fan's steps share
 * their deps). Each list is also flagged when json writes its paths as they
 * are, which stepgraph.plain_run reads. */
#include <lauxlib.h>
#include <lua.h>
#include <stdint.h>
#include <stdlib.h>

#include "stepset.h"

#define FNV_OFFSET 2166136261u
#define FNV_PRIME 16777619u

/* The hash of the n strings at stack index first… (a list's paths); *plain
 * is set when json writes every one as it is: no control character, quote,
 * backslash or byte of a multibyte character (key.lua's NEEDS_ENCODER), so
 * that the key text of a step with such lists cannot fail on them. */
static uint32_t hash_strings(lua_State *L, int first, int n, uint8_t *plain)
{
	uint32_t h = FNV_OFFSET;
	int escapes = 0;
	for (int i = 0; i < n; i++) {
		size_t len;
		const char *s = lua_tolstring(L, first + i, &len);
		for (size_t k = 0; k < len; k++) {
			unsigned char c = (unsigned char)s[k];
			escapes |= c < 0x20 || c >= 0x80 || c == '"' || c == '\\';
			h = (h ^ c) * FNV_PRIME;
		}
		h = (h ^ 0xffu) * FNV_PRIME; /* no path holds this byte alone: a separator */
	}
	*plain = !escapes;
	return h;
}

/* True if the list at index list holds exactly the n strings at first…. */
static int same_list(lua_State *L, int list, int first, int n)
{
	if (lua_rawlen(L, list) != (lua_Unsigned)n)
		return 0;
	for (int i = 0; i < n; i++) {
		lua_rawgeti(L, list, i + 1);
		int same = lua_rawequal(L, -1, first + i);
		lua_pop(L, 1);
		if (!same)
			return 0;
	}
	return 1;
}

static int grow_slots(struct stepset *set)
{
	uint32_t size = set->slots ? (set->mask + 1) * 2 : 256;
	uint32_t *slots = calloc(size, sizeof *slots);
	if (!slots)
		return -1;
	for (uint32_t id = 1; id <= set->nlists; id++) {
		uint32_t i = set->list_hash[id - 1] & (size - 1);
		while (slots[i])
			i = (i + 1) & (size - 1);
		slots[i] = id;
	}
	free(set->slots);
	set->slots = slots;
	set->mask = size - 1;
	return 0;
}

/* Makes room for one more list's hash and flag. Raises when out of memory. */
static void reserve_list(lua_State *L, struct stepset *set)
{
	if (set->nlists >= UINT32_MAX / 4)
		luaL_error(L, "too many steps in one pipeline");
	if (set->nlists + 1 <= set->hash_cap)
		return;
	uint32_t cap = set->hash_cap ? set->hash_cap * 2 : 256;
	uint32_t *q = realloc(set->list_hash, (size_t)cap * sizeof *q);
	if (!q)
		luaL_error(L, "out of memory declaring steps");
	set->list_hash = q;
	uint8_t *f = realloc(set->list_plain, cap);
	if (!f)
		luaL_error(L, "out of memory declaring steps");
	set->list_plain = f;
	set->hash_cap = cap;
}

uint32_t stepset_intern_list(lua_State *L, struct stepset *set, int setidx, int first, int n, int given)
{
	uint8_t plain;
	uint32_t h = hash_strings(L, first, n, &plain);
	lua_getiuservalue(L, setidx, UV_LISTS);
	int lists = lua_gettop(L);
	if (set->slots) {
		for (uint32_t i = h & set->mask; set->slots[i]; i = (i + 1) & set->mask) {
			uint32_t id = set->slots[i];
			if (set->list_hash[id - 1] != h)
				continue;
			lua_rawgeti(L, lists, id);
			int same = same_list(L, lua_gettop(L), first, n);
			lua_pop(L, 1);
			if (same) {
				lua_pop(L, 1);
				return id;
			}
		}
	}
	if ((!set->slots || (set->nlists + 1) * 2 > set->mask + 1) && grow_slots(set) != 0)
		luaL_error(L, "out of memory declaring steps");
	reserve_list(L, set);
	if (given) {
		lua_pushvalue(L, given);
	} else {
		lua_createtable(L, n, 0);
		for (int i = 0; i < n; i++) {
			lua_pushvalue(L, first + i);
			lua_rawseti(L, -2, i + 1);
		}
	}
	uint32_t id = ++set->nlists;
	lua_rawseti(L, lists, id);
	lua_pop(L, 1);
	set->list_hash[id - 1] = h;
	set->list_plain[id - 1] = plain;
	uint32_t i = h & set->mask;
	while (set->slots[i])
		i = (i + 1) & set->mask;
	set->slots[i] = id;
	return id;
}

/* Most lists are compared and hashed on the stack; a longer one (a step
 * reading thousands of files) is kept as it is, unshared. */
#define SHARED_LIST_MAX 4096

uint32_t stepset_intern_table(lua_State *L, struct stepset *set, int setidx, int idx)
{
	idx = lua_absindex(L, idx);
	lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
	if (n > SHARED_LIST_MAX || !lua_checkstack(L, (int)n + 8)) {
		reserve_list(L, set);
		lua_getiuservalue(L, setidx, UV_LISTS);
		lua_pushvalue(L, idx);
		lua_rawseti(L, -2, ++set->nlists);
		lua_pop(L, 1);
		/* Its hash is never looked up: no slot names it; nor are its
		 * paths read for the flag. */
		set->list_hash[set->nlists - 1] = 0;
		set->list_plain[set->nlists - 1] = 0;
		return set->nlists;
	}
	int first = lua_gettop(L) + 1;
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, idx, i) != LUA_TSTRING)
			luaL_error(L, "a step's paths must be strings");
	}
	uint32_t id = stepset_intern_list(L, set, setidx, first, (int)n, idx);
	lua_settop(L, first - 1);
	return id;
}
