/* l_store.c — mlx.store: the project's workspace (core/workspace.h): its
 * object store and stat cache, and the files mlx hashes and checks out.
 *
 *     local st = assert(store.open(root))
 *     local info = assert(st:put("data/images"))   -- staged
 *     assert(st:commit())                           -- durable, visible
 *
 * A Store handle owns one mlx_workspace; paths given to methods are
 * relative to the project root. */
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "filehashes.h"
#include "hash.h"
#include "idset.h"
#include "store.h"
#include "workspace.h"

#define STORE_MT "mlx.Store"

struct lstore {
	struct mlx_workspace *ws;
	lua_State *L;	  /* of the method running now, for progress reports */
	int progress_ref; /* the function of st:progress, or LUA_NOREF */
};

/* What a method builds in C lives in a box (binding.h) while Lua runs, so
 * that a memory error raised by Lua cannot leak it. */
struct work {
	struct mlx_filelist list;
	struct mlx_artifact art;
	struct mlx_strlist ids;
	struct mlx_dirdiff diff;
	char *text;
	unsigned char *verified; /* of a checkout: the entries not to hash again;
	                          * of st:missing: the files present */
	struct mlx_idset trusted; /* of st:checkout_manifest: the ids of a verified table */
};

static void release_work(void *contents)
{
	struct work *w = contents;
	mlx_filelist_free(&w->list);
	mlx_artifact_free(&w->art);
	mlx_strlist_free(&w->ids);
	mlx_dirdiff_free(&w->diff);
	free(w->text);
	w->text = NULL;
	free(w->verified);
	w->verified = NULL;
	mlx_idset_free(&w->trusted);
}

static struct work *new_work(lua_State *L)
{
	return mlx_lua_box(L, sizeof(struct work), release_work);
}

/* Frees the work's contents now; the box then holds nothing. */
static void free_work(struct work *w)
{
	release_work(w);
}

static struct lstore *check_open(lua_State *L)
{
	struct lstore *ls = luaL_checkudata(L, 1, STORE_MT);
	if (!ls->ws)
		luaL_error(L, "attempt to use a closed store");
	ls->L = L; /* progress reports run on the thread of the current call */
	return ls;
}

static int report(void *vls, size_t files, size_t nfiles, uint64_t bytes, uint64_t nbytes)
{
	struct lstore *ls = vls;
	return mlx_lua_report(ls->L, ls->progress_ref, (lua_Integer)files, (lua_Integer)nfiles, (lua_Integer)bytes,
			      (lua_Integer)nbytes);
}

/* st:progress(fn | nil): later hashing, storing, checkout and checks call
 * fn(files, nfiles, bytes, nbytes) about every 100 ms while they run (bytes
 * are 0 where sizes are not known beforehand); an error raised by fn stops
 * the call ("interrupted"). */
static int store_progress(lua_State *L)
{
	struct lstore *ls = check_open(L);
	if (!lua_isnoneornil(L, 2))
		luaL_checktype(L, 2, LUA_TFUNCTION);
	luaL_unref(L, LUA_REGISTRYINDEX, ls->progress_ref);
	ls->progress_ref = LUA_NOREF;
	if (lua_isfunction(L, 2)) {
		lua_settop(L, 2);
		ls->progress_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	}
	mlx_workspace_set_progress(ls->ws, ls->progress_ref == LUA_NOREF ? NULL : report, ls);
	return 0;
}

static struct mlx_store *store_of(lua_State *L)
{
	return mlx_workspace_store(check_open(L)->ws);
}

static void set_int(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static void set_str(lua_State *L, const char *k, const char *v)
{
	lua_pushstring(L, v);
	lua_setfield(L, -2, k);
}

/* Pushes the record of one file: {[path,] type = "file" unless path is
 * given, hash, size, mode = "644"|"755"}. */
static void push_file(lua_State *L, const char *path, const char *hex, uint64_t size, uint32_t mode)
{
	lua_createtable(L, 0, 4);
	if (path)
		set_str(L, "path", path);
	else
		set_str(L, "type", "file");
	set_str(L, "hash", hex);
	set_int(L, "size", (lua_Integer)size);
	set_str(L, "mode", mode == 0755 ? "755" : "644");
}

/* Pushes what w->art says of a file or a directory, as st:hash gives it,
 * and frees the work. With MLX_WS_PUT in flags, a directory's manifest is
 * left out: it is in the store (st:manifest), and a copy of it as a Lua
 * string costs its size again (95 MB at a million files). */
static int push_artifact(lua_State *L, struct work *w, int flags)
{
	const struct mlx_artifact *a = &w->art;
	if (!a->is_dir) {
		push_file(L, NULL, a->hex, a->size, a->mode);
		free_work(w);
		return 1;
	}
	lua_createtable(L, 0, 5);
	set_str(L, "type", "dir");
	set_str(L, "hash", a->hex);
	set_int(L, "size", (lua_Integer)a->size);
	set_int(L, "files", (lua_Integer)a->files);
	if (a->manifest && !(flags & MLX_WS_PUT)) {
		lua_pushlstring(L, a->manifest, a->manifest_len);
		lua_setfield(L, -2, "manifest");
	}
	free_work(w);
	return 1;
}

/* Shared by :hash and :put. */
static int scan(lua_State *L, int flags)
{
	struct lstore *ls = check_open(L);
	const char *rel = luaL_checkstring(L, 2);
	luaL_argcheck(L, *rel && rel[0] != '/', 2, "expected a path relative to the project root");
	struct work *w = new_work(L);
	struct mlx_err err;
	if (mlx_workspace_hash(ls->ws, rel, flags, &w->art, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return push_artifact(L, w, flags);
}

/* st:hash(path[, {manifest = false}]) -> {type = "file"|"dir", hash, size,
 * mode (file), files and manifest (dir)} | nil, message, code. Uses and
 * updates the stat cache; stores nothing. With manifest = false, a
 * directory's manifest text may be left out (when the stat cache already
 * knows its id): for callers that only compare ids. */
static int store_hash(lua_State *L)
{
	int want_manifest = mlx_lua_optfield_boolean(L, 3, "manifest", 1);
	lua_settop(L, 2);
	return scan(L, want_manifest ? 0 : MLX_WS_NO_MANIFEST);
}

/* Pushes the paths of list as a sequence. */
static void push_paths(lua_State *L, const struct mlx_filelist *list)
{
	lua_createtable(L, (int)list->len, 0);
	for (size_t i = 0; i < list->len; i++) {
		lua_pushstring(L, list->items[i].path);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* Sets [path] = {path, hash, size, mode} in the table on top for each file
 * of list. */
static void index_files(lua_State *L, const struct mlx_filelist *list)
{
	for (size_t i = 0; i < list->len; i++) {
		const struct mlx_file *f = &list->items[i];
		push_file(L, f->path, f->hex, f->size, f->mode);
		lua_setfield(L, -2, f->path);
	}
}

/* st:diff(path, locked_id) -> info, diff | info, nil, message, code | nil,
 * message, code. Hashes path as st:hash does; if it is a directory whose
 * id is not locked_id (the id of its locked manifest), diff = {added,
 * modified, deleted (sorted paths), locked = {[path] = {path, hash, size,
 * mode}} of the modified and deleted files, now = {[path] = ...} of the
 * added and modified ones}; otherwise diff is false. Only what differs
 * crosses into Lua. When the locked manifest cannot be read, the diff is
 * nil followed by why. */
static int store_diff(lua_State *L)
{
	struct lstore *ls = check_open(L);
	const char *rel = luaL_checkstring(L, 2);
	const char *locked = luaL_checkstring(L, 3);
	luaL_argcheck(L, *rel && rel[0] != '/', 2, "expected a path relative to the project root");
	struct work *w = new_work(L);
	struct mlx_err err;
	if (mlx_workspace_diff(ls->ws, rel, locked, &w->art, &w->diff, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	const struct mlx_artifact *a = &w->art;
	if (!a->is_dir) {
		push_file(L, NULL, a->hex, a->size, a->mode);
	} else {
		lua_createtable(L, 0, 4);
		set_str(L, "type", "dir");
		set_str(L, "hash", a->hex);
		set_int(L, "size", (lua_Integer)a->size);
		set_int(L, "files", (lua_Integer)a->files);
	}
	const struct mlx_dirdiff *d = &w->diff;
	if (d->unread) {
		err.status = d->unread;
		int n = mlx_lua_fail(L, &err); /* nil, message, code */
		free_work(w);
		return 1 + n;
	}
	if (!a->is_dir || strcmp(a->hex, locked) == 0) {
		lua_pushboolean(L, 0);
		free_work(w);
		return 2;
	}
	lua_createtable(L, 0, 5);
	push_paths(L, &d->added);
	lua_setfield(L, -2, "added");
	push_paths(L, &d->modified);
	lua_setfield(L, -2, "modified");
	push_paths(L, &d->deleted);
	lua_setfield(L, -2, "deleted");
	lua_createtable(L, 0, (int)(d->was.len + d->deleted.len));
	index_files(L, &d->was);
	index_files(L, &d->deleted);
	lua_setfield(L, -2, "locked");
	lua_createtable(L, 0, (int)(d->added.len + d->modified.len));
	index_files(L, &d->added);
	index_files(L, &d->modified);
	lua_setfield(L, -2, "now");
	free_work(w);
	return 2;
}

/* Hashes the single files named by the list at index 2 (relative paths)
 * through the stat cache into w->list, setting found[i] for each that is a
 * file; with unique, only the first of each distinct name not ending in
 * '/' (found then follows that shorter list, of *count names). The names
 * stay anchored in that table while C uses them. Returns the names (in a
 * userdata on the stack), or raises for a path that is not relative, or
 * returns NULL with err filled. */
static const char **hash_named_files(lua_State *L, struct lstore *ls, struct work *w, lua_Integer n,
                                     int unique, unsigned char **found, size_t *count, struct mlx_err *err)
{
	const char **names = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1) * sizeof *names, 0);
	*found = lua_newuserdatauv(L, (size_t)(n > 0 ? n : 1), 0);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, 2, i);
		const char *p = lua_tostring(L, -1);
		if (!p || !*p || p[0] == '/')
			luaL_error(L, "path %d must be relative to the project root", (int)i);
		names[i - 1] = p;
		lua_pop(L, 1);
	}
	*count = (size_t)n;
	if (unique && mlx_filehashes_unique(names, count, err) != MLX_OK)
		return NULL;
	if (mlx_workspace_hash_files(ls->ws, names, *count, &w->list, *found, err) != MLX_OK)
		return NULL;
	return names;
}

/* st:hash_files(paths) -> {[path] = {type = "file", hash, size, mode} | false}
 * | nil, message, code. Hashes many single files (relative paths) at once,
 * through the stat cache like st:hash: one directory open, one read
 * transaction, unchanged files not read. A path that does not exist or is a
 * directory maps to false (hash a directory with st:hash). */
static int store_hash_files(lua_State *L)
{
	struct lstore *ls = check_open(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 2);
	struct work *w = new_work(L);
	unsigned char *found;
	size_t count;
	struct mlx_err err;
	const char **names = hash_named_files(L, ls, w, n, 0, &found, &count, &err);
	if (!names) {
		free_work(w);
		return mlx_lua_fail(L, &err);
	}
	lua_createtable(L, 0, (int)n);
	size_t next = 0;
	for (lua_Integer i = 1; i <= n; i++) {
		if (found[i - 1] != 1) {
			lua_pushboolean(L, 0);
		} else {
			const struct mlx_file *f = &w->list.items[next++];
			push_file(L, NULL, f->hex, f->size, f->mode);
		}
		lua_setfield(L, -2, names[i - 1]);
	}
	free_work(w);
	return 1;
}

/* st:file_hashes(paths) -> hashes (an mlx.FileHashes: hashes:get(path) ->
 * info as st:hash_files gives it, or false, followed by st:hash's message
 * when the path did not exist) | nil, message, code. Hashes
 * as st:hash_files does, but keeps the answers in C: the prefetch of a
 * 100,000-step pipeline then makes no Lua table per path, and its no-op
 * compares them in place (mlx.lockindex.same_step). paths may repeat and
 * hold directories (ending in '/'), which are left out, so that the caller
 * needs no set of them. */
static int store_file_hashes(lua_State *L)
{
	struct lstore *ls = check_open(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	lua_Integer n = luaL_len(L, 2);
	struct work *w = new_work(L);
	unsigned char *found;
	struct mlx_err err;
	size_t count;
	const char **names = hash_named_files(L, ls, w, n, 1, &found, &count, &err);
	if (!names) {
		free_work(w);
		return mlx_lua_fail(L, &err);
	}
	/* Paths that did not exist join the list without a hash. */
	for (size_t i = 0; i < count; i++) {
		if (found[i] == 2 && mlx_filelist_push(&w->list, names[i], 0, 0, "", &err) != MLX_OK) {
			free_work(w);
			return mlx_lua_fail(L, &err);
		}
	}
	int pushed = mlx_lua_push_filehashes(L, &w->list);
	free_work(w);
	return pushed;
}

/* st:put(path[, locked_id[, {track = true}]]) -> info as st:hash,
 * without a directory's manifest text | nil, message, code. Stages the
 * file or directory (and its manifest); st:commit() makes it durable and
 * visible. With locked_id, the id of the directory's locked manifest, a
 * directory that differs from it in a few files (as the stat cache's tree
 * tells) has only those read and staged. A directory given a locked_id or
 * track = true (mlx add) has the store's shards recorded at the commit,
 * so that its next add need not look its objects up one by one. */
static int store_put(lua_State *L)
{
	const char *locked = luaL_optstring(L, 3, NULL);
	int track = locked || mlx_lua_optfield_boolean(L, 4, "track", 0);
	lua_settop(L, 2);
	if (locked) {
		struct lstore *ls = check_open(L);
		const char *rel = luaL_checkstring(L, 2);
		luaL_argcheck(L, *rel && rel[0] != '/', 2, "expected a path relative to the project root");
		struct work *w = new_work(L);
		struct mlx_err err;
		int rc = mlx_workspace_put_tree(ls->ws, rel, locked, &w->art, &err);
		if (rc < 0)
			return mlx_lua_fail(L, &err);
		if (rc == 1)
			return push_artifact(L, w, MLX_WS_PUT);
		lua_settop(L, 2);
	}
	/* Put whole (a first add, a missing object, no tree): the shards
	 * are recorded for the next add all the same. */
	return scan(L, MLX_WS_PUT | (track ? MLX_WS_PRESENT : 0));
}

/* st:put_members(dir, locked_id, {paths}) -> info as st:put | nil,
 * message, code. Stages the files at paths (relative to dir; files or
 * directories) and a new manifest of dir: its locked manifest with the
 * lines of those paths replaced by what they hold now. */
static int store_put_members(lua_State *L)
{
	struct lstore *ls = check_open(L);
	const char *rel = luaL_checkstring(L, 2);
	const char *locked = luaL_checkstring(L, 3);
	luaL_checktype(L, 4, LUA_TTABLE);
	luaL_argcheck(L, *rel && rel[0] != '/', 2, "expected a path relative to the project root");
	lua_Integer n = luaL_len(L, 4);
	luaL_argcheck(L, n > 0, 4, "expected at least one path");
	/* The names stay anchored in the table at index 4 while C uses them. */
	const char **names = lua_newuserdatauv(L, (size_t)n * sizeof *names, 0);
	for (lua_Integer i = 1; i <= n; i++) {
		if (lua_geti(L, 4, i) != LUA_TSTRING)
			return luaL_error(L, "path %d must be a string", (int)i);
		names[i - 1] = lua_tostring(L, -1);
		lua_pop(L, 1);
	}
	struct work *w = new_work(L);
	struct mlx_err err;
	if (mlx_workspace_put_members(ls->ws, rel, locked, names, (size_t)n, &w->art, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return push_artifact(L, w, MLX_WS_PUT);
}

/* st:commit() -> true | nil, message, code */
static int store_commit(lua_State *L)
{
	struct lstore *ls = check_open(L);
	struct mlx_err err;
	if (mlx_workspace_commit(ls->ws, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static uint32_t parse_mode(lua_State *L, int idx)
{
	const char *m = lua_tostring(L, idx);
	if (!m || strcmp(m, "644") == 0)
		return 0644;
	if (strcmp(m, "755") == 0)
		return 0755;
	luaL_error(L, "bad mode '%s' (expected \"644\" or \"755\")", m);
	return 0;
}

/* st:checkout(dir, entries[, link[, verified]]) -> true | nil, message, code.
 * entries: array of {path = relative to dir, hash = id, mode = "644"|"755"};
 * dir: relative to the project root, or absolute (a place outside the
 * project, which the stat cache does not record); link: "copy" (default),
 * "hardlink" or "symlink". Each object is verified as it is placed, except
 * copies of the ids in the set verified ({id = true}, or an mlx.transfer.ids
 * set: objects this process fetched and verified just before); a corrupt one is quarantined and
 * reported ("corrupt"). */
static int store_checkout(lua_State *L)
{
	static const char *const links[] = {"copy", "hardlink", "symlink", NULL};
	struct lstore *ls = check_open(L);
	const char *dir = luaL_checkstring(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	enum mlx_link link = (enum mlx_link)luaL_checkoption(L, 4, "copy", links);
	/* verified: {id = true}, or an mlx.transfer.ids set (read through its
	 * __index, as a table is) */
	if (!lua_isnoneornil(L, 5) && !lua_istable(L, 5) && !lua_isuserdata(L, 5))
		luaL_typeerror(L, 5, "table or mlx.IdSet");
	int has_verified = !lua_isnoneornil(L, 5);
	lua_Integer n = luaL_len(L, 3);
	struct work *w = new_work(L);
	struct mlx_err err;
	if (has_verified && !(w->verified = calloc(n > 0 ? (size_t)n : 1, 1)))
		return luaL_error(L, "out of memory");
	for (lua_Integer i = 1; i <= n; i++) {
		lua_geti(L, 3, i);
		luaL_checktype(L, -1, LUA_TTABLE);
		lua_getfield(L, -1, "path");
		lua_getfield(L, -2, "hash");
		lua_getfield(L, -3, "mode");
		lua_getfield(L, -4, "size"); /* optional: for progress reports */
		const char *path = lua_tostring(L, -4), *hex = lua_tostring(L, -3);
		if (!path || !*path || !hex || !mlx_hash_is_id(hex))
			return luaL_error(L, "entry %d needs a path and a hash (64 hex digits)", (int)i);
		uint32_t mode = parse_mode(L, -2);
		lua_Integer size = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : 0;
		if (mlx_filelist_push(&w->list, path, size > 0 ? (uint64_t)size : 0, mode, hex, &err) != MLX_OK)
			return luaL_error(L, "out of memory");
		if (has_verified) {
			w->verified[i - 1] = lua_getfield(L, 5, hex) == LUA_TBOOLEAN && lua_toboolean(L, -1);
			lua_pop(L, 1);
		}
		lua_pop(L, 5);
	}
	int rc = mlx_workspace_checkout(ls->ws, dir, &w->list, link, w->verified, &err);
	free_work(w);
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* st:manifest_count(id) -> files, bytes | nil, message, code: the number
 * of files of manifest id and their bytes, read in pieces and verified
 * ("corrupt" if it does not match, or a line is bad), without a list. */
static int store_manifest_count(lua_State *L)
{
	struct lstore *ls = check_open(L);
	const char *hex = luaL_checkstring(L, 2);
	uint64_t files, bytes;
	struct mlx_err err;
	if (mlx_workspace_manifest_count(ls->ws, hex, &files, &bytes, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)files);
	lua_pushinteger(L, (lua_Integer)bytes);
	return 2;
}

/* st:checkout_manifest(dir, id[, link[, verified]]) -> files | nil,
 * message, code: checks out every file of manifest id below dir (relative
 * to the project root) as st:checkout would, reading the manifest in
 * pieces and placing its files a window at a time, so memory does not
 * grow with the directory (mlx_workspace_checkout_manifest). verified:
 * {id = true} or an mlx.transfer.ids set, as st:checkout takes it. */
static int store_checkout_manifest(lua_State *L)
{
	static const char *const links[] = {"copy", "hardlink", "symlink", NULL};
	struct lstore *ls = check_open(L);
	const char *dir = luaL_checkstring(L, 2);
	const char *hex = luaL_checkstring(L, 3);
	enum mlx_link link = (enum mlx_link)luaL_checkoption(L, 4, "copy", links);
	struct mlx_idset *verified = NULL;
	struct work *w = new_work(L);
	struct mlx_err err;
	if (!lua_isnoneornil(L, 5) && !(verified = luaL_testudata(L, 5, "mlx.IdSet"))) {
		luaL_checktype(L, 5, LUA_TTABLE);
		verified = &w->trusted;
		lua_pushnil(L);
		while (lua_next(L, 5)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_toboolean(L, -1)) {
				int rc = mlx_idset_add_hex(verified, lua_tostring(L, -2), 0, &err);
				if (rc == MLX_ERR_NOMEM)
					return luaL_error(L, "out of memory");
			}
			lua_pop(L, 1);
		}
	}
	if (verified)
		mlx_idset_sort(verified); /* here: the lookups run on this thread alone */
	size_t files;
	int rc =
	    mlx_workspace_checkout_manifest(ls->ws, dir, hex, link, verified, 0,
	                                    ls->progress_ref == LUA_NOREF ? NULL : report, ls, &files, &err);
	free_work(w);
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushinteger(L, (lua_Integer)files);
	return 1;
}

/* st:manifest(id) -> {{path, hash, size, mode}…} | nil, message, code.
 * The manifest object is verified first ("corrupt" if it does not match). */
static int store_manifest(lua_State *L)
{
	struct lstore *ls = check_open(L);
	const char *hex = luaL_checkstring(L, 2);
	struct work *w = new_work(L);
	struct mlx_err err;
	if (mlx_workspace_manifest(ls->ws, hex, &w->list, &err) != MLX_OK) {
		free_work(w);
		return mlx_lua_fail(L, &err);
	}
	lua_createtable(L, (int)w->list.len, 0);
	for (size_t i = 0; i < w->list.len; i++) {
		const struct mlx_file *f = &w->list.items[i];
		push_file(L, f->path, f->hex, f->size, f->mode);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	free_work(w);
	return 1;
}

/* st:missing(id, seen[, have]) -> {{path, hash, size, mode}…}, n | nil,
 * message, code: the files of manifest id whose objects the store lacks
 * (with have, a set {id = true}: that are not in have, e.g. what a
 * remote's index lists, and the store is not asked); the ids of the others
 * are added to the set seen ({id = true}) without a table per file, and n
 * counts the ones that were not in it yet. */
static int store_missing(lua_State *L)
{
	struct lstore *ls = check_open(L);
	const char *hex = luaL_checkstring(L, 2);
	luaL_checktype(L, 3, LUA_TTABLE);
	int have = !lua_isnoneornil(L, 4);
	if (have)
		luaL_checktype(L, 4, LUA_TTABLE);
	struct work *w = new_work(L);
	struct mlx_err err;
	int rc = have ? mlx_workspace_manifest(ls->ws, hex, &w->list, &err)
	              : mlx_workspace_manifest_present(ls->ws, hex, &w->list, &w->verified, &err);
	if (rc != MLX_OK) {
		free_work(w);
		return mlx_lua_fail(L, &err);
	}
	lua_newtable(L);
	lua_Integer n = 0, added = 0;
	for (size_t i = 0; i < w->list.len; i++) {
		const struct mlx_file *f = &w->list.items[i];
		int there;
		if (have) {
			there = lua_getfield(L, 4, f->hex) != LUA_TNIL;
			lua_pop(L, 1);
		} else {
			there = w->verified[i];
		}
		if (!there) {
			push_file(L, f->path, f->hex, f->size, f->mode);
			lua_rawseti(L, -2, ++n);
		} else if (i == 0 || strcmp(f->hex, w->list.items[i - 1].hex) != 0) {
			if (lua_getfield(L, 3, f->hex) == LUA_TNIL) {
				lua_pushboolean(L, 1);
				lua_setfield(L, 3, f->hex);
				added++;
			}
			lua_pop(L, 1);
		}
	}
	lua_pushinteger(L, added);
	free_work(w);
	return 2;
}

/* st:read(id) -> content | nil, message, code (verified) */
static int store_read(lua_State *L)
{
	struct mlx_store *s = store_of(L);
	const char *hex = luaL_checkstring(L, 2);
	struct work *w = new_work(L);
	struct mlx_err err;
	size_t len;
	if (mlx_store_read(s, hex, &w->text, &len, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushlstring(L, w->text, len);
	free_work(w);
	return 1;
}

/* st:has(id) -> boolean */
static int store_has(lua_State *L)
{
	lua_pushboolean(L, mlx_store_has(store_of(L), luaL_checkstring(L, 2)));
	return 1;
}

/* st:path(id) -> the object's file path | nil, message, "invalid" */
static int store_path(lua_State *L)
{
	struct mlx_store *s = store_of(L);
	char path[PATH_MAX];
	struct mlx_err err;
	if (mlx_store_object_path(s, luaL_checkstring(L, 2), path, sizeof path, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushstring(L, path);
	return 1;
}

typedef int (*id_fn)(const struct mlx_store *, const char *, struct mlx_err *);

static int by_id(lua_State *L, id_fn fn)
{
	struct mlx_store *s = store_of(L);
	struct mlx_err err;
	if (fn(s, luaL_checkstring(L, 2), &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

/* st:verify(id) -> true | nil, message, "corrupt"|"notfound"|"io" */
static int store_verify(lua_State *L)
{
	return by_id(L, mlx_store_verify);
}

/* st:remove(id) -> true | nil, message, code */
static int store_remove(lua_State *L)
{
	return by_id(L, mlx_store_remove);
}

/* st:quarantine(id) -> true | nil, message, code */
static int store_quarantine(lua_State *L)
{
	return by_id(L, mlx_store_quarantine);
}

/* st:objects() -> {{id, size}…} sorted by id | nil, message, code */
static int store_objects(lua_State *L)
{
	struct mlx_store *s = store_of(L);
	struct work *w = new_work(L);
	struct mlx_err err;
	if (mlx_store_list(s, &w->list, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_createtable(L, (int)w->list.len, 0);
	for (size_t i = 0; i < w->list.len; i++) {
		lua_createtable(L, 0, 2);
		set_str(L, "id", w->list.items[i].path);
		set_int(L, "size", (lua_Integer)w->list.items[i].size);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	free_work(w);
	return 1;
}

/* st:check() -> checked, {{id, size, got}…} of objects whose bytes do not
 * match their id (got is "" if unreadable) | nil, message, code */
static int store_check(lua_State *L)
{
	struct lstore *ls = check_open(L);
	struct work *w = new_work(L);
	struct mlx_err err;
	if (mlx_workspace_check_store(ls->ws, &w->list, &err) != MLX_OK) {
		free_work(w);
		return mlx_lua_fail(L, &err);
	}
	lua_pushinteger(L, (lua_Integer)w->list.len);
	lua_newtable(L);
	lua_Integer bad = 0;
	for (size_t i = 0; i < w->list.len; i++) {
		const struct mlx_file *f = &w->list.items[i];
		if (strcmp(f->path, f->hex) == 0)
			continue;
		lua_createtable(L, 0, 3);
		set_str(L, "id", f->path);
		set_int(L, "size", (lua_Integer)f->size);
		set_str(L, "got", f->hex);
		lua_rawseti(L, -2, ++bad);
	}
	free_work(w);
	return 2;
}

/* st:objects_dir() -> absolute path of .mlx/cache/objects */
static int store_objects_dir(lua_State *L)
{
	lua_pushstring(L, mlx_store_objects_dir(store_of(L)));
	return 1;
}

/* st:close(): discards staged objects not committed, releases the gc lock.
 * Idempotent; also __gc and __close. */
static int store_close(lua_State *L)
{
	struct lstore *ls = luaL_checkudata(L, 1, STORE_MT);
	mlx_workspace_close(ls->ws);
	ls->ws = NULL;
	luaL_unref(L, LUA_REGISTRYINDEX, ls->progress_ref);
	ls->progress_ref = LUA_NOREF;
	return 0;
}

static int store_tostring(lua_State *L)
{
	struct lstore *ls = luaL_checkudata(L, 1, STORE_MT);
	if (ls->ws)
		lua_pushfstring(L, "mlx.Store (%s)", mlx_workspace_root(ls->ws));
	else
		lua_pushliteral(L, "mlx.Store (closed)");
	return 1;
}

/* store.open(root[, {exclusive = bool, wait = bool, jobs = n}]) -> Store
 * | nil, message, code. exclusive is for gc; with wait = false a held lock
 * fails at once with code "busy". */
static int store_open(lua_State *L)
{
	const char *root = luaL_checkstring(L, 1);
	if (root[0] != '/')
		luaL_argerror(L, 1, "expected the absolute path of the project root");
	int flags = (mlx_lua_optfield_boolean(L, 2, "exclusive", 0) ? MLX_STORE_EXCLUSIVE : 0) |
		    (mlx_lua_optfield_boolean(L, 2, "wait", 1) ? 0 : MLX_STORE_NOWAIT);
	int jobs = (int)mlx_lua_optfield_integer(L, 2, "jobs", 0);
	struct lstore *ls = lua_newuserdatauv(L, sizeof *ls, 0);
	ls->ws = NULL;
	ls->L = L;
	ls->progress_ref = LUA_NOREF;
	luaL_setmetatable(L, STORE_MT);
	struct mlx_err err;
	if (mlx_workspace_open(root, flags, jobs, &ls->ws, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	char note[512];
	if (mlx_store_recovery_note(mlx_workspace_store(ls->ws), note, sizeof note))
		mlx_lua_warn(L, note);
	return 1;
}

/* store.db_ids(db_path, table, column) -> {id…}, found | nil, message, code.
 * found is false when the database, table or column does not exist. */
static int store_db_ids(lua_State *L)
{
	const char *db = luaL_checkstring(L, 1);
	const char *table = luaL_checkstring(L, 2);
	const char *column = luaL_checkstring(L, 3);
	struct work *w = new_work(L);
	struct mlx_strlist *ids = &w->ids;
	int found = 0;
	struct mlx_err err;
	if (mlx_store_db_ids(db, table, column, ids, &found, &err) != MLX_OK) {
		free_work(w);
		return mlx_lua_fail(L, &err);
	}
	lua_createtable(L, (int)ids->len, 0);
	for (size_t i = 0; i < ids->len; i++) {
		lua_pushstring(L, ids->items[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	free_work(w);
	lua_pushboolean(L, found);
	return 2;
}

static const luaL_Reg store_methods[] = {
    {"hash", store_hash},
    {"hash_files", store_hash_files},
    {"file_hashes", store_file_hashes},
    {"diff", store_diff},
    {"put", store_put},
    {"put_members", store_put_members},
    {"commit", store_commit},
    {"checkout", store_checkout},
    {"manifest", store_manifest},
    {"manifest_count", store_manifest_count},
    {"checkout_manifest", store_checkout_manifest},
    {"missing", store_missing},
    {"read", store_read},
    {"has", store_has},
    {"path", store_path},
    {"verify", store_verify},
    {"remove", store_remove},
    {"quarantine", store_quarantine},
    {"objects", store_objects},
    {"check", store_check},
    {"objects_dir", store_objects_dir},
    {"progress", store_progress},
    {"close", store_close},
    {NULL, NULL},
};

static const luaL_Reg store_metamethods[] = {
	{"__gc", store_close},
	{"__close", store_close},
	{"__tostring", store_tostring},
	{"__index", NULL},
	{NULL, NULL},
};

static const luaL_Reg store_functions[] = {
	{"open", store_open},
	{"db_ids", store_db_ids},
	{NULL, NULL},
};

int luaopen_mlx_store(lua_State *L)
{
	luaL_newmetatable(L, STORE_MT);
	luaL_setfuncs(L, store_metamethods, 0);
	luaL_newlibtable(L, store_methods);
	luaL_setfuncs(L, store_methods, 0);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, store_functions);
	return 1;
}
