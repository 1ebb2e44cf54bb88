/* l_remote.c — mlx.transfer, the binding of the remote transfer engine
 * (core/remote.h). The policy (which remote, what to move, the index, the
 * run-cache) is stdlib/mlx/remote.lua.
 *
 *     local r = assert(transfer.open{ name = "origin", url = "/srv/store" })
 *     local res = assert(r:push(root, { id1, id2 }, { check = true }))
 *
 * Built into mlx_remote.so (the engine, the directory backend and the
 * core), loaded on first use (stdlib/mlx/native.lua); the backends over
 * HTTP come from mlx.transfer_http when a URL needs them. */
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binding.h"
#include "hash.h"
#include "idset.h"
#include "remote.h"
#include "store.h"

#define REMOTE_MT "mlx.Remote"
#define IDSET_MT "mlx.IdSet"

struct lremote {
	struct mlx_remote *r;
};

/* What a call builds in C, owned by a box while Lua may raise. */
struct work {
	struct mlx_strlist options;
	struct mlx_store *store;
	char *data;
};

static void release_work(void *contents)
{
	struct work *w = contents;
	mlx_strlist_free(&w->options);
	mlx_store_close(w->store);
	w->store = NULL;
	free(w->data);
	w->data = NULL;
}

static struct work *new_work(lua_State *L)
{
	return mlx_lua_box(L, sizeof(struct work), release_work);
}

static struct lremote *check_open(lua_State *L)
{
	struct lremote *lr = luaL_checkudata(L, 1, REMOTE_MT);
	if (!lr->r)
		luaL_error(L, "attempt to use a closed remote");
	return lr;
}

/* The backend of mlx.transfer_http (WebDAV, S3) that serves url, or NULL.
 * That module, and libcurl with it, is loaded at the first URL that no
 * backend of this one serves. Raises only if mlx is broken (the module
 * cannot be loaded). */
static const struct mlx_remote_backend *http_backend(lua_State *L, const char *url)
{
	lua_getglobal(L, "require");
	lua_pushliteral(L, "mlx.transfer_http");
	lua_call(L, 1, 1);
	const struct mlx_remote_backend *const *list = lua_touserdata(L, -1);
	lua_pop(L, 1);
	for (; list && *list; list++)
		if ((*list)->accepts(url))
			return *list;
	return NULL;
}

/* open{name, url, options = {k = v}, jobs, retries, backoff, backoff_max}
 * -> Remote | nil, message, code ("invalid": no backend or a bad option) */
static int transfer_open(lua_State *L)
{
	static const char *const known[] = {"name",    "url",     "options",     "jobs",
	                                    "retries", "backoff", "backoff_max", NULL};
	luaL_checktype(L, 1, LUA_TTABLE);
	mlx_lua_check_fields(L, 1, known, 0);
	struct mlx_remote_config config = {0};
	config.name = mlx_lua_optfield_string(L, 1, "name", NULL);
	config.url = mlx_lua_optfield_string(L, 1, "url", NULL);
	if (!config.url)
		luaL_argerror(L, 1, "field 'url' is required");
	if (!mlx_remote_backend_for(config.url))
		config.backend = http_backend(L, config.url);
	struct mlx_remote_policy policy = {
	    .jobs = (int)mlx_lua_optfield_integer(L, 1, "jobs", 0),
	    .retries = (int)mlx_lua_optfield_integer(L, 1, "retries", 5),
	    .backoff = mlx_lua_optfield_number(L, 1, "backoff", 0.5),
	    .backoff_max = mlx_lua_optfield_number(L, 1, "backoff_max", 60),
	};
	struct work *w = new_work(L);
	struct mlx_err err;
	if (mlx_lua_optfield_table(L, 1, "options")) {
		lua_getfield(L, 1, "options");
		int t = lua_gettop(L);
		lua_pushnil(L);
		while (lua_next(L, t)) {
			if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
				luaL_argerror(L, 1, "field 'options' must map names to strings");
			if (mlx_strlist_push(&w->options, lua_tostring(L, -2), &err) != MLX_OK ||
			    mlx_strlist_push(&w->options, lua_tostring(L, -1), &err) != MLX_OK)
				return luaL_error(L, "out of memory");
			lua_pop(L, 1);
		}
		lua_pop(L, 1);
	}
	config.options = &w->options;
	struct lremote *lr = lua_newuserdatauv(L, sizeof *lr, 0);
	lr->r = NULL;
	luaL_setmetatable(L, REMOTE_MT);
	if (mlx_remote_open(&config, &policy, &lr->r, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

static int remote_close(lua_State *L)
{
	struct lremote *lr = luaL_checkudata(L, 1, REMOTE_MT);
	mlx_remote_close(lr->r);
	lr->r = NULL;
	return 0;
}

/* r:backend() -> "dir" | "webdav" | "s3" */
static int remote_backend(lua_State *L)
{
	lua_pushstring(L, mlx_remote_backend_name(check_open(L)->r));
	return 1;
}

/* r:read(key [, max bytes = 64 MiB]) -> string | nil, message, code */
static int remote_read(lua_State *L)
{
	struct lremote *lr = check_open(L);
	const char *key = luaL_checkstring(L, 2);
	lua_Integer max = luaL_optinteger(L, 3, 64 << 20);
	luaL_argcheck(L, max >= 0, 3, "must be zero or more");
	struct work *w = new_work(L);
	struct mlx_err err;
	size_t len;
	if (mlx_remote_read(lr->r, key, (size_t)max, &w->data, &len, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushlstring(L, w->data, len);
	return 1;
}

/* r:write(key, data, tmpdir) -> true | nil, message, code */
static int remote_write(lua_State *L)
{
	struct lremote *lr = check_open(L);
	const char *key = luaL_checkstring(L, 2);
	size_t len;
	const char *data = luaL_checklstring(L, 3, &len);
	const char *tmpdir = luaL_checkstring(L, 4);
	struct mlx_err err;
	if (mlx_remote_write(lr->r, key, data, len, tmpdir, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* r:put_file(key, path) -> true | nil, message, code: uploads the file at
 * path as key, atomically (remote.h, mlx_remote_put_file). */
static int remote_put_file(lua_State *L)
{
	struct lremote *lr = check_open(L);
	struct mlx_err err;
	if (mlx_remote_put_file(lr->r, luaL_checkstring(L, 2), luaL_checkstring(L, 3), &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* r:stat(key) -> size | nil, message, code ("notfound") */
static int remote_stat(lua_State *L)
{
	struct lremote *lr = check_open(L);
	struct mlx_err err;
	uint64_t size;
	if (mlx_remote_stat(lr->r, luaL_checkstring(L, 2), &size, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)size);
	return 1;
}

/* r:remove(key) -> true | nil, message, code */
static int remote_remove(lua_State *L)
{
	struct lremote *lr = check_open(L);
	struct mlx_err err;
	if (mlx_remote_remove(lr->r, luaL_checkstring(L, 2), &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

struct listing {
	lua_State *L;
	int t;
};

static int add_key(void *vctx, const char *key, uint64_t size)
{
	struct listing *l = vctx;
	if (!lua_checkstack(l->L, 2))
		return MLX_ERR_NOMEM;
	lua_pushinteger(l->L, (lua_Integer)size);
	lua_setfield(l->L, l->t, key);
	return MLX_OK;
}

/* r:list(prefix) -> {key = size} | nil, message, code. The keys are data
 * from the remote, checked by the caller. */
static int remote_list(lua_State *L)
{
	struct lremote *lr = check_open(L);
	const char *prefix = luaL_checkstring(L, 2);
	lua_newtable(L);
	struct listing l = {L, lua_gettop(L)};
	struct mlx_err err;
	int rc = mlx_remote_list(lr->r, prefix, add_key, &l, &err);
	if (rc == MLX_ERR_NOMEM)
		return luaL_error(L, "out of memory");
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_settop(L, l.t);
	return 1;
}

/* ---- sets of ids (core/idset.h) -------------------------------------------- */

static struct mlx_idset *check_ids(lua_State *L, int i)
{
	return luaL_checkudata(L, i, IDSET_MT);
}

/* Pushes a new empty set, owned by Lua. */
static struct mlx_idset *new_ids(lua_State *L)
{
	struct mlx_idset *s = lua_newuserdatauv(L, sizeof *s, 0);
	*s = (struct mlx_idset)MLX_IDSET_INIT;
	luaL_setmetatable(L, IDSET_MT);
	return s;
}

static void nomem_unless_ok(lua_State *L, int rc)
{
	if (rc != MLX_OK)
		luaL_error(L, "out of memory");
}

/* ids([list of ids]) -> IdSet: a set of object ids in flat C memory (32
 * bytes and a size each, not a Lua string per id), read as a Lua set is
 * (set[id] is true or nil) and through its methods. Raises if an element
 * is not an id. */
static int transfer_ids(lua_State *L)
{
	int list = !lua_isnoneornil(L, 1);
	if (list)
		luaL_checktype(L, 1, LUA_TTABLE);
	lua_settop(L, 1);
	struct mlx_idset *s = new_ids(L);
	if (!list)
		return 1;
	struct mlx_err err;
	lua_Integer n = luaL_len(L, 1);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, 1, i);
		const char *hex = lua_tostring(L, -1);
		int rc = hex ? mlx_idset_add_hex(s, hex, 0, &err) : MLX_ERR_INVALID;
		if (rc == MLX_ERR_INVALID)
			luaL_argerror(L, 1, "must be a list of object ids");
		nomem_unless_ok(L, rc);
		lua_pop(L, 1);
	}
	return 1;
}

/* set:add(id [, size]) -> set. Raises if id is not an object id. */
static int ids_add(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	const char *hex = luaL_checkstring(L, 2);
	lua_Integer size = luaL_optinteger(L, 3, 0);
	struct mlx_err err;
	int rc = mlx_idset_add_hex(s, hex, size > 0 ? (uint64_t)size : 0, &err);
	if (rc == MLX_ERR_INVALID)
		luaL_argerror(L, 2, "not an object id");
	nomem_unless_ok(L, rc);
	lua_settop(L, 1);
	return 1;
}

/* set:has(id) -> boolean (false for what is not an id) */
static int ids_has(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	size_t len;
	const char *hex = luaL_checklstring(L, 2, &len);
	unsigned char id[32];
	lua_pushboolean(L, len == 64 && mlx_id_from_hex(hex, id) && mlx_idset_find(s, id));
	return 1;
}

/* #set -> the number of distinct ids */
static int ids_len(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)mlx_idset_count(check_ids(L, 1)));
	return 1;
}

/* set:bytes() -> the sum of the known sizes */
static int ids_bytes(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	mlx_idset_sort(s);
	lua_Integer total = 0;
	for (size_t i = 0; i < s->len; i++)
		total += (lua_Integer)s->items[i].size;
	lua_pushinteger(L, total);
	return 1;
}

/* set:mark(id) -> boolean: true if id is in set, which then counts it as
 * marked (once); false otherwise (also for what is not an id). */
static int ids_mark(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	size_t len;
	const char *hex = luaL_checklstring(L, 2, &len);
	unsigned char id[32];
	int marked = len == 64 && mlx_id_from_hex(hex, id) ? mlx_idset_mark(s, id) : 0;
	if (marked < 0)
		return luaL_error(L, "out of memory");
	lua_pushboolean(L, marked);
	return 1;
}

/* set:marked() -> the number of ids marked (set:mark, add_manifest_object's
 * except) since the set last changed */
static int ids_marked(lua_State *L)
{
	lua_pushinteger(L, (lua_Integer)mlx_idset_marked(check_ids(L, 1)));
	return 1;
}

/* set:clear() -> set, empty: its memory is freed now, not when the
 * collector (which does not see C memory) gets to it. */
static int ids_clear(lua_State *L)
{
	mlx_idset_free(check_ids(L, 1));
	lua_settop(L, 1);
	return 1;
}

/* set:minus(other) -> a new set: the ids of set not in other */
static int ids_minus(lua_State *L)
{
	struct mlx_idset *a = check_ids(L, 1), *b = check_ids(L, 2);
	struct mlx_idset *out = new_ids(L);
	struct mlx_err err;
	nomem_unless_ok(L, mlx_idset_minus(a, b, out, &err));
	return 1;
}

/* set:merge(other) -> set, with every id of other added */
static int ids_merge(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1), *b = check_ids(L, 2);
	struct mlx_err err;
	nomem_unless_ok(L, mlx_idset_merge(s, b, &err));
	lua_settop(L, 1);
	return 1;
}

/* set:add_manifest(text) -> true | nil, message, "corrupt": adds the files
 * of a directory's manifest, with their sizes. */
static int ids_add_manifest(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	size_t len;
	const char *text = luaL_checklstring(L, 2, &len);
	struct mlx_err err;
	int rc = mlx_idset_add_manifest(s, text, len, &err);
	if (rc == MLX_ERR_NOMEM)
		return luaL_error(L, "out of memory");
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* set:add_manifest_object(path, id[, except]) -> true | nil, message,
 * code: as add_manifest, for the manifest object id in the store file at
 * path (st:path(id)), read in pieces and verified, without a Lua copy of
 * its text; ids in the set except are not added but marked there
 * (except:mark). */
static int ids_add_manifest_object(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	const char *path = luaL_checkstring(L, 2);
	const char *hex = luaL_checkstring(L, 3);
	struct mlx_idset *except = lua_isnoneornil(L, 4) ? NULL : check_ids(L, 4);
	struct mlx_err err;
	int rc = mlx_idset_add_manifest_file_except(s, path, hex, except, &err);
	if (rc == MLX_ERR_NOMEM)
		return luaL_error(L, "out of memory");
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static const char segment_header[] = "mlx-index 1\n";

/* Adds the line of a segment at p (67 bytes: "o <id>\n" or "r <key>\n")
 * to s or to the table at index runs. Returns 1, 0 if it is not such a
 * line, or -1 out of memory. */
static int segment_line(lua_State *L, struct mlx_idset *s, const char *p, int runs)
{
	unsigned char id[32];
	if ((p[0] != 'o' && p[0] != 'r') || p[1] != ' ' || p[66] != '\n' || !mlx_id_from_hex(p + 2, id))
		return 0;
	if (p[0] == 'o') {
		struct mlx_err err;
		return mlx_idset_add(s, id, 0, &err) == MLX_OK ? 1 : -1;
	}
	lua_pushlstring(L, p + 2, 64);
	lua_pushboolean(L, 1);
	lua_rawset(L, runs);
	return 1;
}

/* set:add_segment_file(path, runs) -> true | false | nil: adds the object
 * ids of the index segment in the file at path (mlx.remote.index: "mlx-index
 * 1", then lines "o <id>" and "r <key>") to set and sets runs[key] = true
 * for its run-cache keys; false when the file is not a segment (what came
 * before the bad line stays); nil if there is no such file. Read in pieces:
 * an index of millions of objects never becomes one string. */
static int ids_add_segment_file(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	const char *path = luaL_checkstring(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	FILE *f = fopen(path, "rbe");
	if (!f) {
		lua_pushnil(L);
		return 1;
	}
	char line[67];
	size_t hl = sizeof segment_header - 1;
	int ok = fread(line, 1, hl, f) == hl && memcmp(line, segment_header, hl) == 0;
	while (ok == 1) {
		size_t got = fread(line, 1, sizeof line, f);
		if (got == 0 && feof(f))
			break;
		ok = got == sizeof line ? segment_line(L, s, line, 3) : 0;
	}
	if (ferror(f))
		ok = 0;
	fclose(f);
	if (ok < 0)
		return luaL_error(L, "out of memory");
	lua_pushboolean(L, ok);
	return 1;
}

/* Writes len bytes at p to f and to the digest h. Returns 0, or -1 with
 * errno set. */
static int put_segment_bytes(FILE *f, struct mlx_hash_stream *h, const char *p, size_t len)
{
	struct mlx_err err;
	if (fwrite(p, 1, len, f) != len)
		return -1;
	if (mlx_hash_stream_update(h, p, len, &err) != MLX_OK) {
		errno = EIO;
		return -1;
	}
	return 0;
}

/* set:write_segment(runs, dir) -> name, path | nil, message, code: writes
 * the index segment naming the ids of set and the run-cache keys of the
 * list runs, each sorted, to a new file in dir, line by line (no string of
 * megabytes), and returns its name (the SHA-256 of its bytes, as
 * mlx.remote.index names segments) and the file's path, which the caller
 * renames or removes. */
static int ids_write_segment(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	luaL_checktype(L, 2, LUA_TTABLE);
	const char *dir = luaL_checkstring(L, 3);
	lua_Integer nruns = luaL_len(L, 2);
	for (lua_Integer i = 1; i <= nruns; i++) {
		size_t len;
		lua_geti(L, 2, i);
		if (!lua_tolstring(L, -1, &len) || len != 64)
			luaL_argerror(L, 2, "must be a sorted list of run-cache keys");
		lua_pop(L, 1);
	}
	mlx_idset_sort(s);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addstring(&b, dir);
	luaL_addstring(&b, "/segment-XXXXXX");
	luaL_pushresult(&b);
	char *path = (char *)lua_tostring(L, -1); /* a fresh string, owned here: mkostemp fills it */
	struct mlx_err err;
	int fd = mkostemp(path, O_CLOEXEC);
	if (fd < 0) {
		mlx_err_sys(&err, errno, "cannot create a temp file in %s", dir);
		return mlx_lua_fail(L, &err);
	}
	FILE *f = fdopen(fd, "wb");
	struct mlx_hash_stream h = {0};
	int rc = f ? mlx_hash_stream_start(&h, &err) : mlx_err_sys(&err, errno, "cannot write %s", path);
	char line[68] = "o ";
	if (rc == MLX_OK && put_segment_bytes(f, &h, segment_header, sizeof segment_header - 1) != 0)
		rc = mlx_err_sys(&err, errno, "cannot write %s", path);
	for (size_t i = 0; rc == MLX_OK && i < s->len; i++) {
		mlx_id_to_hex(s->items[i].id, line + 2);
		line[66] = '\n';
		if (put_segment_bytes(f, &h, line, 67) != 0)
			rc = mlx_err_sys(&err, errno, "cannot write %s", path);
	}
	line[0] = 'r';
	for (lua_Integer i = 1; rc == MLX_OK && i <= nruns; i++) {
		lua_geti(L, 2, i); /* checked above: 64 bytes */
		memcpy(line + 2, lua_tostring(L, -1), 64);
		lua_pop(L, 1);
		line[66] = '\n';
		if (put_segment_bytes(f, &h, line, 67) != 0)
			rc = mlx_err_sys(&err, errno, "cannot write %s", path);
	}
	char name[MLX_HASH_HEX_SIZE];
	if (rc == MLX_OK)
		rc = mlx_hash_stream_finish(&h, name, &err);
	mlx_hash_stream_free(&h);
	if (f ? fclose(f) != 0 : close(fd) != 0)
		if (rc == MLX_OK)
			rc = mlx_err_sys(&err, errno, "cannot write %s", path);
	if (rc != MLX_OK) {
		unlink(path);
		return mlx_lua_fail(L, &err);
	}
	lua_pushstring(L, name);
	lua_pushvalue(L, -2);
	return 2;
}

/* set:list() -> {ids}, sorted: for small sets (Lua strings cost memory). */
static int ids_list(lua_State *L)
{
	struct mlx_idset *s = check_ids(L, 1);
	mlx_idset_sort(s);
	lua_createtable(L, (int)(s->len < INT32_MAX ? s->len : 0), 0);
	char hex[65];
	for (size_t i = 0; i < s->len; i++) {
		mlx_id_to_hex(s->items[i].id, hex);
		lua_pushlstring(L, hex, 64);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	return 1;
}

/* set[id] -> true | nil, as a Lua set of ids reads; set.name -> a method. */
static int ids_index(lua_State *L)
{
	lua_pushvalue(L, 2);
	if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
		return 1;
	struct mlx_idset *s = check_ids(L, 1);
	size_t len = 0;
	const char *hex = lua_type(L, 2) == LUA_TSTRING ? lua_tolstring(L, 2, &len) : NULL;
	unsigned char id[32];
	if (hex && len == 64 && mlx_id_from_hex(hex, id) && mlx_idset_find(s, id))
		lua_pushboolean(L, 1);
	else
		lua_pushnil(L);
	return 1;
}

static int ids_free(lua_State *L)
{
	mlx_idset_free(check_ids(L, 1));
	return 0;
}

static int ids_tostring(lua_State *L)
{
	lua_pushfstring(L, "mlx.IdSet (%I ids)", (lua_Integer)mlx_idset_count(check_ids(L, 1)));
	return 1;
}

struct id_listing {
	struct mlx_idset *s;
	int nomem;
};

static int add_object_key(void *vctx, const char *key, uint64_t size)
{
	struct id_listing *l = vctx;
	/* objects/ab/<62 hex>: anything else below objects/ is not an object. */
	unsigned char id[32];
	char hex[65];
	if (strlen(key) != 8 + 2 + 1 + 62 || key[10] != '/')
		return MLX_OK;
	memcpy(hex, key + 8, 2);
	memcpy(hex + 2, key + 11, 63);
	if (!mlx_id_from_hex(hex, id))
		return MLX_OK;
	struct mlx_err err;
	if (mlx_idset_add(l->s, id, size, &err) != MLX_OK) {
		l->nomem = 1;
		return MLX_ERR_NOMEM;
	}
	return MLX_OK;
}

/* r:list_objects(set) -> set | nil, message, code: adds the id of every
 * object below objects/ on the remote to set (keys that are not objects
 * are data, and skipped), without a Lua string per key. */
static int remote_list_objects(lua_State *L)
{
	struct lremote *lr = check_open(L);
	struct mlx_idset *s = check_ids(L, 2);
	struct id_listing l = {s, 0};
	struct mlx_err err;
	int rc = mlx_remote_list(lr->r, "objects/", add_object_key, &l, &err);
	if (l.nomem)
		return luaL_error(L, "out of memory");
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_settop(L, 2);
	return 1;
}

struct reporter {
	lua_State *L;
	int ref;
};

static int report(void *vctx, size_t files, size_t nfiles, uint64_t bytes, uint64_t nbytes)
{
	struct reporter *rp = vctx;
	return mlx_lua_report(rp->L, rp->ref, (lua_Integer)files, (lua_Integer)nfiles, (lua_Integer)bytes,
	                      (lua_Integer)nbytes);
}

/* The ids of argument 3: an IdSet, or a list of strings or {hash = id,
 * size = n} (the size only sizes the progress line), read into a new set
 * pushed on the stack. Returns NULL (err set) if an element is not an id. */
static struct mlx_idset *read_ids(lua_State *L, struct mlx_err *err)
{
	struct mlx_idset *s = luaL_testudata(L, 3, IDSET_MT);
	if (s)
		return s;
	luaL_checktype(L, 3, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 3);
	s = new_ids(L);
	for (lua_Integer i = 1; i <= n; i++) {
		int t = lua_geti(L, 3, i);
		const char *id = NULL;
		uint64_t size = 0;
		if (t == LUA_TSTRING) {
			id = lua_tostring(L, -1);
		} else if (t == LUA_TTABLE) {
			lua_getfield(L, -1, "size");
			size =
			    (uint64_t)(lua_isinteger(L, -1) && lua_tointeger(L, -1) > 0 ? lua_tointeger(L, -1)
			                                                                : 0);
			lua_pop(L, 1);
			lua_getfield(L, -1, "hash");
			lua_replace(L, -2);
			id = lua_tostring(L, -1);
		}
		if (!id)
			luaL_argerror(L, 3, "must be a list of object ids");
		int rc = mlx_idset_add_hex(s, id, size, err);
		if (rc == MLX_ERR_INVALID)
			return NULL;
		nomem_unless_ok(L, rc);
		lua_pop(L, 1);
	}
	return s;
}

/* Pushes the ids of s as a list of strings (few: those that failed). */
static void push_id_list(lua_State *L, struct mlx_idset *s)
{
	size_t n = mlx_idset_count(s);
	lua_createtable(L, n < INT32_MAX ? (int)n : 0, 0);
	char hex[65];
	for (size_t i = 0; i < n; i++) {
		mlx_id_to_hex(s->items[i].id, hex);
		lua_pushlstring(L, hex, 64);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* What a transfer holds in C while Lua may raise: its result. */
static void release_result(void *contents)
{
	mlx_remote_result_free(contents);
}

/* Pushes {sent, present, bytes, missing = {ids}, corrupt = {ids}} and,
 * for a fetch, verified: the ids fetched, each hashed as it arrived, so a
 * checkout right after need not read them again; a set in C memory, as a
 * pull of many files would otherwise hold a Lua string per object. */
static void push_result(lua_State *L, struct mlx_remote_result *res, int fetch)
{
	lua_createtable(L, 0, 6);
	if (fetch) {
		struct mlx_idset *verified = new_ids(L);
		*verified = res->verified; /* moved: the userdata owns it now */
		res->verified = (struct mlx_idset)MLX_IDSET_INIT;
		lua_setfield(L, -2, "verified");
	}
	push_id_list(L, &res->missing);
	lua_setfield(L, -2, "missing");
	push_id_list(L, &res->corrupt);
	lua_setfield(L, -2, "corrupt");
	lua_pushinteger(L, (lua_Integer)res->sent);
	lua_setfield(L, -2, "sent");
	lua_pushinteger(L, (lua_Integer)res->present);
	lua_setfield(L, -2, "present");
	lua_pushinteger(L, (lua_Integer)res->bytes);
	lua_setfield(L, -2, "bytes");
}

static int transfer(lua_State *L, int push)
{
	static const char *const known[] = {"check", "progress", NULL};
	struct lremote *lr = check_open(L);
	const char *root = luaL_checkstring(L, 2);
	mlx_lua_check_fields(L, 4, known, 0);
	int check = mlx_lua_optfield_boolean(L, 4, "check", 0);
	if (lua_istable(L, 4)) {
		lua_getfield(L, 4, "progress");
		if (!lua_isnil(L, -1) && !lua_isfunction(L, -1))
			mlx_lua_field_error(L, 4, "progress", "a function", -1);
		lua_pop(L, 1);
	}
	struct mlx_err err;
	lua_settop(L, 4);
	struct mlx_idset *ids = read_ids(L, &err);
	if (!ids)
		return mlx_lua_fail(L, &err);
	struct mlx_remote_result *res = mlx_lua_box(L, sizeof *res, release_result);
	*res = (struct mlx_remote_result)MLX_REMOTE_RESULT_INIT;
	struct work *w = new_work(L);
	int box = lua_gettop(L);
	/* The reporter's function is referenced last: nothing raises between
	 * its luaL_ref and its luaL_unref. */
	struct reporter rp = {L, LUA_NOREF};
	if (lua_istable(L, 4)) {
		lua_getfield(L, 4, "progress");
		if (lua_isfunction(L, -1))
			rp.ref = luaL_ref(L, LUA_REGISTRYINDEX);
		else
			lua_pop(L, 1);
	}
	int rc = mlx_store_open(root, 0, &w->store, &err);
	char note[512];
	if (rc == MLX_OK && mlx_store_recovery_note(w->store, note, sizeof note))
		mlx_lua_warn(L, note);
	struct mlx_remote_progress progress = {report, &rp};
	const struct mlx_remote_progress *pr = rp.ref == LUA_NOREF ? NULL : &progress;
	if (rc == MLX_OK)
		rc = push ? mlx_remote_push(lr->r, w->store, ids, check, pr, res, &err)
		          : mlx_remote_fetch(lr->r, w->store, ids, pr, res, &err);
	luaL_unref(L, LUA_REGISTRYINDEX, rp.ref);
	mlx_lua_box_release(L, box);
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	push_result(L, res, !push);
	return 1;
}

/* r:push(root, ids, {check, progress}) -> {sent, present, bytes, missing,
 * corrupt} | nil, message, code: sends objects of the store of the project
 * at root to the remote (remote.h, mlx_remote_push). */
static int remote_push(lua_State *L)
{
	return transfer(L, 1);
}

/* r:fetch(root, ids, {progress}) -> as push, with verified = an IdSet of
 * the objects fetched: brings objects into the store of the project at
 * root, each verified (mlx_remote_fetch). */
static int remote_fetch(lua_State *L)
{
	return transfer(L, 0);
}

static int remote_tostring(lua_State *L)
{
	struct lremote *lr = luaL_checkudata(L, 1, REMOTE_MT);
	lua_pushfstring(L, "mlx.Remote (%s)", lr->r ? mlx_remote_backend_name(lr->r) : "closed");
	return 1;
}

static const luaL_Reg remote_methods[] = {
    {"backend", remote_backend},
    {"read", remote_read},
    {"write", remote_write},
    {"put_file", remote_put_file},
    {"stat", remote_stat},
    {"remove", remote_remove},
    {"list", remote_list},
    {"push", remote_push},
    {"fetch", remote_fetch},
    {"close", remote_close},
    {"list_objects", remote_list_objects},
    {NULL, NULL},
};

static const luaL_Reg ids_methods[] = {
    {"add", ids_add},
    {"has", ids_has},
    {"bytes", ids_bytes},
    {"minus", ids_minus},
    {"merge", ids_merge},
    {"clear", ids_clear},
    {"mark", ids_mark},
    {"marked", ids_marked},
    {"add_manifest", ids_add_manifest},
    {"add_manifest_object", ids_add_manifest_object},
    {"add_segment_file", ids_add_segment_file},
    {"write_segment", ids_write_segment},
    {"list", ids_list},
    {NULL, NULL},
};

static const luaL_Reg ids_metamethods[] = {
    {"__gc", ids_free},           {"__close", ids_free}, {"__len", ids_len},
    {"__tostring", ids_tostring}, {"__index", NULL},     {NULL, NULL},
};

static const luaL_Reg remote_metamethods[] = {
    {"__gc", remote_close}, {"__close", remote_close}, {"__tostring", remote_tostring}, {"__index", NULL},
    {NULL, NULL},
};

static const luaL_Reg transfer_functions[] = {
    {"open", transfer_open},
    {"ids", transfer_ids},
    {NULL, NULL},
};

int luaopen_mlx_transfer(lua_State *L)
{
	luaL_newmetatable(L, REMOTE_MT);
	luaL_setfuncs(L, remote_metamethods, 0);
	luaL_newlib(L, remote_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newmetatable(L, IDSET_MT);
	luaL_setfuncs(L, ids_metamethods, 0);
	luaL_newlib(L, ids_methods);
	lua_pushcclosure(L, ids_index, 1);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, transfer_functions);
	return 1;
}
