/* l_json.c — mlx.json: JSON for recipes, the lock file and every file mlx
 * writes.
 *
 * Decoding uses jansson's parser (exact line/column errors, UTF-8 checks,
 * depth limit). Encoding is written here because the output must be
 * canonical — sorted keys, stable indentation, and each float in the
 * shortest form that reads back to the same double (jansson prints a fixed
 * %.17g, so 0.1 would become 0.10000000000000001).
 *
 * Lua has one table type for arrays and objects; decoded tables carry a
 * metatable saying which they were (json.array / json.object), so an empty
 * [] survives a round trip. JSON null is json.null, a light userdata. */
#include <jansson.h>
#include <lauxlib.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "fs.h"

#define ARRAY_MT "mlx.json.array"
#define OBJECT_MT "mlx.json.object"
#define MAX_DEPTH 1000

/* ---- decoding --------------------------------------------------------- */

/* A parsed jansson tree, and the text of a file being parsed, live in a box
 * while they are converted, so that a Lua memory error cannot leak them. */
struct parse_box {
	json_t *tree;
	char *text;
};

static void release_parse(void *contents)
{
	struct parse_box *box = contents;
	json_decref(box->tree);
	free(box->text);
}

static void push_value(lua_State *L, json_t *v)
{
	luaL_checkstack(L, 3, "JSON nested too deeply");
	switch (json_typeof(v)) {
	case JSON_OBJECT: {
		const char *key;
		json_t *item;
		lua_createtable(L, 0, (int)json_object_size(v));
		json_object_foreach(v, key, item) {
			lua_pushstring(L, key);
			push_value(L, item);
			lua_rawset(L, -3);
		}
		luaL_setmetatable(L, OBJECT_MT);
		break;
	}
	case JSON_ARRAY: {
		size_t n = json_array_size(v);
		lua_createtable(L, (int)n, 0);
		for (size_t i = 0; i < n; i++) {
			push_value(L, json_array_get(v, i));
			lua_rawseti(L, -2, (lua_Integer)i + 1);
		}
		luaL_setmetatable(L, ARRAY_MT);
		break;
	}
	case JSON_STRING:
		lua_pushlstring(L, json_string_value(v), json_string_length(v));
		break;
	case JSON_INTEGER:
		lua_pushinteger(L, (lua_Integer)json_integer_value(v));
		break;
	case JSON_REAL:
		lua_pushnumber(L, json_real_value(v));
		break;
	case JSON_TRUE:
		lua_pushboolean(L, 1);
		break;
	case JSON_FALSE:
		lua_pushboolean(L, 0);
		break;
	case JSON_NULL:
		lua_pushlightuserdata(L, NULL);
		break;
	}
}

/* jansson quotes the text near the error ("invalid escape near '...'"),
 * line breaks included: they are written as escapes, so that the message
 * stays the one line mlx prints. */
static void add_escaped(luaL_Buffer *b, const char *text)
{
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '\n')
			luaL_addstring(b, "\\n");
		else if (*c == '\r')
			luaL_addstring(b, "\\r");
		else if (*c == '\t')
			luaL_addstring(b, "\\t");
		else if (*c < 0x20 || *c == 0x7f) {
			char esc[8];
			snprintf(esc, sizeof esc, "\\%u", (unsigned)*c);
			luaL_addstring(b, esc);
		} else
			luaL_addchar(b, (char)*c);
	}
}

static int decode_failure(lua_State *L, const char *source, const json_error_t *error)
{
	lua_pushnil(L);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	if (source)
		lua_pushfstring(L, "%s:%d:%d: invalid JSON: ", source, error->line, error->column);
	else
		lua_pushfstring(L, "invalid JSON at line %d, column %d: ", error->line, error->column);
	luaL_addvalue(&b);
	add_escaped(&b, error->text);
	luaL_pushresult(&b);
	lua_pushliteral(L, "invalid");
	return 3;
}

/* json.decode(str) -> value | nil, message naming line and column, "invalid" */
static int api_decode(lua_State *L)
{
	size_t len;
	const char *s = luaL_checklstring(L, 1, &len);
	struct parse_box *box = mlx_lua_box(L, sizeof *box, release_parse);
	json_error_t error;
	box->tree = json_loadb(s, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
	if (!box->tree)
		return decode_failure(L, NULL, &error);
	push_value(L, box->tree);
	return 1;
}

/* json.load(path) -> value | nil, "path:line:column: invalid JSON: …" or an
 * open/read failure, code */
static int api_load(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	struct parse_box *box = mlx_lua_box(L, sizeof *box, release_parse);
	/* The whole file is read at once and parsed from memory: jansson's
	 * json_loadf reads a character at a time, which dominated loading a
	 * large mlx.lock. The buffer comes from malloc, owned by the box. */
	struct mlx_err err;
	size_t got;
	if (mlx_fs_read_all(path, SIZE_MAX, &box->text, &got, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	json_error_t error;
	box->tree = json_loadb(box->text, got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &error);
	if (!box->tree)
		return decode_failure(L, path, &error);
	push_value(L, box->tree);
	return 1;
}

/* ---- encoding ----------------------------------------------------------- */

/* The text being built. It lives in a box rather than a
 * luaL_Buffer because encoding pushes and pops values between appends, which
 * luaL_Buffer forbids, and an error raised half-way must not leak it. */
struct outbuf {
	char *data;
	size_t len, cap;
};

struct encoder {
	lua_State *L;
	struct outbuf *out;
	int indent;	/* spaces per level; 0 = compact */
	int sort_keys;
};

static void release_outbuf(void *contents)
{
	struct outbuf *out = contents;
	free(out->data);
}

static void add_bytes(struct encoder *e, const char *s, size_t n)
{
	struct outbuf *out = e->out;
	if (out->len + n > out->cap) {
		size_t cap = out->cap ? out->cap : 256;
		while (cap < out->len + n)
			cap *= 2;
		char *data = realloc(out->data, cap);
		if (!data)
			luaL_error(e->L, "json.encode: out of memory");
		out->data = data;
		out->cap = cap;
	}
	memcpy(out->data + out->len, s, n);
	out->len += n;
}

static void add_text(struct encoder *e, const char *s)
{
	add_bytes(e, s, strlen(s));
}

static void add_newline(struct encoder *e, int depth)
{
	if (!e->indent)
		return;
	add_bytes(e, "\n", 1);
	for (int i = 0; i < depth * e->indent; i++)
		add_bytes(e, " ", 1);
}

static int valid_utf8(const unsigned char *s, size_t len)
{
	for (size_t i = 0; i < len;) {
		unsigned char c = s[i];
		size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
		if (n == 0 || i + n > len)
			return 0;
		for (size_t k = 1; k < n; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
		i += n;
	}
	return 1;
}

/* The JSON escape of byte c (code is room for \u00XX), or NULL when c is
 * written as it is. */
static const char *escape_of(unsigned char c, char code[8])
{
	switch (c) {
	case '"': return "\\\"";
	case '\\': return "\\\\";
	case '\n': return "\\n";
	case '\r': return "\\r";
	case '\t': return "\\t";
	case '\b': return "\\b";
	case '\f': return "\\f";
	default:
		if (c >= 0x20)
			return NULL;
		snprintf(code, 8, "\\u%04x", c);
		return code;
	}
}

static void add_string(struct encoder *e, int idx)
{
	size_t len;
	const char *s = lua_tolstring(e->L, idx, &len);
	if (!valid_utf8((const unsigned char *)s, len))
		luaL_error(e->L, "json.encode: string is not valid UTF-8");
	add_bytes(e, "\"", 1);
	size_t plain = 0; /* start of the run of characters needing no escape */
	for (size_t i = 0; i < len; i++) {
		char code[8];
		const char *esc = escape_of((unsigned char)s[i], code);
		if (esc) {
			add_bytes(e, s + plain, i - plain);
			add_text(e, esc);
			plain = i + 1;
		}
	}
	add_bytes(e, s + plain, len - plain);
	add_bytes(e, "\"", 1);
}

/* The shortest form that reads back as the same double; a float that looks
 * integral keeps a ".0" so it decodes as a float again. */
static void add_float(struct encoder *e, double x)
{
	if (!isfinite(x))
		luaL_error(e->L, "json.encode: %f cannot be represented in JSON", x);
	char text[MLX_LUA_NUMBER_SIZE];
	add_text(e, mlx_lua_number_text(x, text));
	if (!strpbrk(text, ".eE"))
		add_text(e, ".0");
}

static int is_array(lua_State *L, int idx, lua_Integer *n)
{
	*n = (lua_Integer)lua_rawlen(L, idx);
	if (luaL_getmetafield(L, idx, "__name") != LUA_TNIL) {
		const char *name = lua_tostring(L, -1);
		int array = name && strcmp(name, ARRAY_MT) == 0;
		int object = name && strcmp(name, OBJECT_MT) == 0;
		lua_pop(L, 1);
		if (array || object)
			return array;
	}
	/* Unmarked: an array when its keys are exactly 1..n with n > 0. */
	lua_Integer count = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (!lua_isinteger(L, -1)) {
			lua_pop(L, 1);
			return 0;
		}
		count++;
	}
	return count > 0 && count == *n;
}

static int compare_keys(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void add_value(struct encoder *e, int idx, int depth);

static void add_object(struct encoder *e, int idx, int depth)
{
	lua_State *L = e->L;
	/* Collect the keys in a table (anchoring them), then sort their pointers. */
	lua_newtable(L);
	int keys = lua_gettop(L);
	lua_Integer n = 0;
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		lua_pop(L, 1);
		if (lua_type(L, -1) != LUA_TSTRING)
			luaL_error(L, "json.encode: object keys must be strings, not %s (a mixed table?)",
				   luaL_typename(L, -1));
		lua_pushvalue(L, -1);
		lua_rawseti(L, keys, ++n);
	}
	const char **names = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *names, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, keys, i);
		names[i - 1] = lua_tostring(L, -1); /* anchored in keys */
		lua_pop(L, 1);
	}
	if (e->sort_keys)
		qsort(names, (size_t)n, sizeof *names, compare_keys);
	add_bytes(e, "{", 1);
	for (lua_Integer i = 0; i < n; i++) {
		if (i > 0)
			add_bytes(e, ",", 1);
		add_newline(e, depth + 1);
		lua_pushstring(L, names[i]);
		add_string(e, lua_gettop(L));
		add_text(e, e->indent ? ": " : ":");
		lua_rawget(L, idx);
		add_value(e, lua_gettop(L), depth + 1);
		lua_pop(L, 1);
	}
	if (n > 0)
		add_newline(e, depth);
	add_bytes(e, "}", 1);
	lua_pop(L, 2); /* names, keys */
}

static void add_value(struct encoder *e, int idx, int depth)
{
	lua_State *L = e->L;
	if (depth > MAX_DEPTH)
		luaL_error(L, "json.encode: nested more than %d levels (a cycle?)", MAX_DEPTH);
	luaL_checkstack(L, 8, "json.encode: nested too deeply");
	switch (lua_type(L, idx)) {
	case LUA_TNIL:
		add_text(e, "null");
		break;
	case LUA_TLIGHTUSERDATA:
		if (lua_touserdata(L, idx) != NULL)
			luaL_error(L, "json.encode: cannot encode a light userdata other than json.null");
		add_text(e, "null");
		break;
	case LUA_TBOOLEAN:
		add_text(e, lua_toboolean(L, idx) ? "true" : "false");
		break;
	case LUA_TNUMBER:
		if (lua_isinteger(L, idx)) {
			char text[32];
			snprintf(text, sizeof text, LUA_INTEGER_FMT, lua_tointeger(L, idx));
			add_text(e, text);
		} else {
			add_float(e, lua_tonumber(L, idx));
		}
		break;
	case LUA_TSTRING:
		add_string(e, idx);
		break;
	case LUA_TTABLE: {
		lua_Integer n;
		if (!is_array(L, idx, &n)) {
			add_object(e, idx, depth);
			break;
		}
		add_bytes(e, "[", 1);
		for (lua_Integer i = 1; i <= n; i++) {
			if (i > 1)
				add_bytes(e, ",", 1);
			add_newline(e, depth + 1);
			lua_rawgeti(L, idx, i);
			add_value(e, lua_gettop(L), depth + 1);
			lua_pop(L, 1);
		}
		if (n > 0)
			add_newline(e, depth);
		add_bytes(e, "]", 1);
		break;
	}
	default:
		luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, idx));
	}
}

/* Reads {indent = n | true, sort_keys = bool} at idx into e. */
static void read_options(lua_State *L, int idx, struct encoder *e, int default_indent)
{
	e->L = L;
	e->indent = default_indent;
	e->sort_keys = mlx_lua_optfield_boolean(L, idx, "sort_keys", 1);
	if (lua_isnoneornil(L, idx))
		return;
	int t = lua_getfield(L, idx, "indent");
	if (t == LUA_TBOOLEAN)
		e->indent = lua_toboolean(L, -1) ? 2 : 0;
	else if (lua_isinteger(L, -1) && lua_tointeger(L, -1) >= 0 && lua_tointeger(L, -1) <= 16)
		e->indent = (int)lua_tointeger(L, -1);
	else if (t != LUA_TNIL)
		mlx_lua_field_error(L, idx, "indent", "true, false or an integer from 0 to 16", -1);
	lua_pop(L, 1);
}

/* Encodes the value at index value_idx into a new outbuf box, which is
 * left on the stack top. */
static struct outbuf *encode(lua_State *L, struct encoder *e, int value_idx)
{
	struct outbuf *out = mlx_lua_box(L, sizeof *out, release_outbuf);
	e->out = out;
	add_value(e, value_idx, 0);
	return out;
}

/* json.encode(value[, {indent = n | true, sort_keys = true}]) -> string.
 * Keys are sorted unless sort_keys is false. Raises on a value JSON cannot
 * hold (function, NaN, a key that is not a string, invalid UTF-8, a cycle). */
static int api_encode(lua_State *L)
{
	luaL_checkany(L, 1);
	struct encoder e;
	read_options(L, 2, &e, 0);
	struct outbuf *out = encode(L, &e, 1);
	lua_pushlstring(L, out->data ? out->data : "", out->len);
	return 1;
}

/* json.save(path, value[, opts]) -> true | nil, message, code.
 * Writes atomically (temp, fsync, rename) with indent 2 by default and a
 * final newline, so files kept in git diff cleanly. */
static int api_save(lua_State *L)
{
	const char *path = luaL_checkstring(L, 1);
	luaL_checkany(L, 2);
	struct encoder e;
	read_options(L, 3, &e, 2);
	struct outbuf *out = encode(L, &e, 2);
	add_bytes(&e, "\n", 1);
	struct mlx_err err;
	if (mlx_fs_write_atomic(path, out->data, out->len, 0644, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* Appends string s (len bytes, valid UTF-8) to b, quoted and escaped as
 * add_string writes it. */
static void buffer_string(luaL_Buffer *b, const char *s, size_t len)
{
	luaL_addchar(b, '"');
	size_t plain = 0;
	for (size_t i = 0; i < len; i++) {
		char code[8];
		const char *esc = escape_of((unsigned char)s[i], code);
		if (esc) {
			luaL_addlstring(b, s + plain, i - plain);
			luaL_addstring(b, esc);
			plain = i + 1;
		}
	}
	luaL_addlstring(b, s + plain, len - plain);
	luaL_addchar(b, '"');
}

/* Writes the object of encode_fields into an encoder's boxed buffer: the
 * general case (a value that is a table may nest to any depth). */
static int encode_fields_boxed(lua_State *L, const char **names, lua_Integer n, int skip_nil)
{
	struct encoder e = {.L = L, .indent = 0, .sort_keys = 1};
	e.out = mlx_lua_box(L, sizeof *e.out, release_outbuf);
	add_bytes(&e, "{", 1);
	int written = 0;
	for (lua_Integer i = 0; i < n; i++) {
		lua_pushstring(L, names[i]);
		int name = lua_gettop(L);
		lua_pushvalue(L, name);
		int type = lua_gettable(L, 2);
		if (type == LUA_TNIL && skip_nil) {
			lua_pop(L, 2);
			continue;
		}
		if (written++)
			add_bytes(&e, ",", 1);
		add_string(&e, name);
		add_bytes(&e, ":", 1);
		if (type == LUA_TNIL || (type == LUA_TBOOLEAN && !lua_toboolean(L, -1) && !skip_nil))
			add_text(&e, "null");
		else
			add_value(&e, lua_gettop(L), 1);
		lua_pop(L, 2);
	}
	add_bytes(&e, "}", 1);
	lua_pushlstring(L, e.out->data, e.out->len);
	return 1;
}

/* json.encode_fields(names, values[, skip_nil]) -> string: the compact
 * JSON object {name -> values[name]} over the strings of the list names,
 * keys sorted bytewise and each once: the bytes json.encode makes of that
 * object, without building it (a step key encodes several per step). A
 * nil or false value is null, or with skip_nil a nil value leaves its name
 * out (false stays false). Raises as json.encode does, and on a name that
 * is not a string. */
static int api_encode_fields(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_checktype(L, 2, LUA_TTABLE);
	int skip_nil = lua_toboolean(L, 3);
	lua_settop(L, 2);
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	/* The names stay anchored by the list at index 1, which is not changed;
	 * a few (a step's deps) fit here, more go in a userdata. */
	const char *few[16];
	const char **names = few;
	if (n > 16)
		names = lua_newuserdatauv(L, (size_t)n * sizeof *names, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_rawgeti(L, 1, i) != LUA_TSTRING)
			return luaL_error(L, "json.encode_fields: name %d is a %s, not a string", (int)i,
					  luaL_typename(L, -1));
		names[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	qsort(names, (size_t)n, sizeof *names, compare_keys);
	lua_Integer unique = 0;
	for (lua_Integer i = 0; i < n; i++)
		if (i == 0 || strcmp(names[i], names[i - 1]) != 0)
			names[unique++] = names[i];
	/* The values, on the stack above base, are checked before anything is
	 * written: a raise then leaves nothing behind. Any table among them
	 * goes the general way. */
	luaL_checkstack(L, (int)unique + LUA_MINSTACK, "json.encode_fields: too many names");
	int base = lua_gettop(L);
	for (lua_Integer i = 0; i < unique; i++) {
		size_t len;
		lua_pushstring(L, names[i]);
		const char *name = lua_tolstring(L, -1, &len);
		if (!valid_utf8((const unsigned char *)name, len))
			return luaL_error(L, "json.encode: string is not valid UTF-8");
		int type = lua_gettable(L, 2);
		if (type == LUA_TTABLE) {
			lua_settop(L, base);
			return encode_fields_boxed(L, names, unique, skip_nil);
		}
		if (type == LUA_TSTRING) {
			const char *v = lua_tolstring(L, -1, &len);
			if (!valid_utf8((const unsigned char *)v, len))
				return luaL_error(L, "json.encode: string is not valid UTF-8");
		} else if (type == LUA_TNUMBER && !lua_isinteger(L, -1) && !isfinite(lua_tonumber(L, -1))) {
			return luaL_error(L, "json.encode: %f cannot be represented in JSON",
			                  lua_tonumber(L, -1));
		} else if (type == LUA_TLIGHTUSERDATA && lua_touserdata(L, -1) != NULL) {
			return luaL_error(L,
			                  "json.encode: cannot encode a light userdata other than json.null");
		} else if (type != LUA_TNIL && type != LUA_TBOOLEAN && type != LUA_TNUMBER &&
		           type != LUA_TLIGHTUSERDATA) {
			return luaL_error(L, "json.encode: cannot encode a %s", luaL_typename(L, -1));
		}
	}
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addchar(&b, '{');
	int written = 0;
	for (lua_Integer i = 0; i < unique; i++) {
		int v = base + 1 + (int)i;
		int type = lua_type(L, v);
		if (type == LUA_TNIL && skip_nil)
			continue;
		if (written++)
			luaL_addchar(&b, ',');
		buffer_string(&b, names[i], strlen(names[i]));
		luaL_addchar(&b, ':');
		if (type == LUA_TSTRING) {
			size_t len;
			const char *s = lua_tolstring(L, v, &len);
			buffer_string(&b, s, len);
		} else if (type == LUA_TNUMBER && lua_isinteger(L, v)) {
			char text[32];
			snprintf(text, sizeof text, LUA_INTEGER_FMT, lua_tointeger(L, v));
			luaL_addstring(&b, text);
		} else if (type == LUA_TNUMBER) {
			char text[MLX_LUA_NUMBER_SIZE];
			luaL_addstring(&b, mlx_lua_number_text(lua_tonumber(L, v), text));
			if (!strpbrk(text, ".eE"))
				luaL_addstring(&b, ".0");
		} else if (type == LUA_TBOOLEAN && (lua_toboolean(L, v) || skip_nil)) {
			luaL_addstring(&b, lua_toboolean(L, v) ? "true" : "false");
		} else {
			luaL_addstring(&b, "null"); /* nil, false, json.null */
		}
	}
	luaL_addchar(&b, '}');
	luaL_pushresult(&b);
	return 1;
}

static int mark(lua_State *L, const char *mt)
{
	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	}
	luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	luaL_setmetatable(L, mt);
	return 1;
}

/* json.array([t]) -> t marked to encode as a JSON array (even when empty) */
static int api_array(lua_State *L)
{
	return mark(L, ARRAY_MT);
}

/* json.object([t]) -> t marked to encode as a JSON object (even when empty) */
static int api_object(lua_State *L)
{
	return mark(L, OBJECT_MT);
}

static const luaL_Reg json_functions[] = {
	{"decode", api_decode},
	{"encode", api_encode},
	{"encode_fields", api_encode_fields},
	{"load", api_load},
	{"save", api_save},
	{"array", api_array},
	{"object", api_object},
	{NULL, NULL},
};

int luaopen_mlx_json(lua_State *L)
{
	luaL_newmetatable(L, ARRAY_MT);
	lua_pop(L, 1);
	luaL_newmetatable(L, OBJECT_MT);
	lua_pop(L, 1);
	luaL_newlib(L, json_functions);
	lua_pushlightuserdata(L, NULL);
	lua_setfield(L, -2, "null");
	return 1;
}
