/* l_git.c — mlx.git, the libgit2 binding: a repository handle with what
 * recipes and run tracking ask of git (core/git.h does the work).
 *
 * Built into mlx_git.so and loaded on first use (see stdlib/mlx/native.lua):
 * linking libgit2 into the binary would cost every mlx start ~5 ms of
 * dynamic loading. */
#include <errno.h>
#include <lauxlib.h>
#include <stdlib.h>
#include <string.h>

#include "binding.h"
#include "git.h"

#define REPO_MT "mlx.GitRepo"

/* A repository handle. The results of its last call stay owned here until
 * they are copied into Lua, so a Lua memory error cannot leak them. */
struct repo {
	struct mlx_git *git;
	struct mlx_git_head head;
	struct mlx_strlist list;
	char *content;
	size_t content_len;
	struct mlx_git_log log;
};

static void clear_results(struct repo *r)
{
	mlx_git_head_free(&r->head);
	mlx_strlist_free(&r->list);
	free(r->content);
	r->content = NULL;
	r->content_len = 0;
	mlx_git_log_free(&r->log);
}

static struct repo *check_repo(lua_State *L)
{
	struct repo *r = luaL_checkudata(L, 1, REPO_MT);
	luaL_argcheck(L, r->git != NULL, 1, "git repository is closed");
	clear_results(r);
	return r;
}

/* open([path]) -> repository | nil, "not a git repository: PATH", "notfound" */
static int git_open(lua_State *L)
{
	const char *path = luaL_optstring(L, 1, ".");
	struct repo *r = lua_newuserdatauv(L, sizeof *r, 0);
	memset(r, 0, sizeof *r);
	luaL_setmetatable(L, REPO_MT);
	struct mlx_err err;
	if (mlx_git_open(path, &r->git, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

static int repo_close(lua_State *L)
{
	struct repo *r = luaL_checkudata(L, 1, REPO_MT);
	clear_results(r);
	mlx_git_close(r->git);
	r->git = NULL;
	return 0;
}

/* repo:root() -> the work tree's directory */
static int repo_root(lua_State *L)
{
	struct repo *r = check_repo(L);
	lua_pushstring(L, mlx_git_root(r->git));
	return 1;
}

/* repo:head() -> {commit, short, branch, detached, unborn} | nil, message, code */
static int repo_head(lua_State *L)
{
	struct repo *r = check_repo(L);
	struct mlx_err err;
	if (mlx_git_head(r->git, &r->head, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_createtable(L, 0, 5);
	if (!r->head.unborn) {
		lua_pushstring(L, r->head.commit);
		lua_setfield(L, -2, "commit");
		lua_pushlstring(L, r->head.commit, 7);
		lua_setfield(L, -2, "short");
	}
	if (r->head.branch) {
		lua_pushstring(L, r->head.branch);
		lua_setfield(L, -2, "branch");
	}
	lua_pushboolean(L, r->head.detached);
	lua_setfield(L, -2, "detached");
	lua_pushboolean(L, r->head.unborn);
	lua_setfield(L, -2, "unborn");
	clear_results(r);
	return 1;
}

static void push_list(lua_State *L, const struct mlx_strlist *list)
{
	lua_createtable(L, (int)list->len, 0);
	for (size_t i = 0; i < list->len; i++) {
		lua_pushstring(L, list->items[i]);
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
}

/* repo:is_dirty([{untracked = bool}]) -> dirty, {changed path…} | nil, message, code */
static int repo_is_dirty(lua_State *L)
{
	static const char *const known[] = {"untracked", NULL};
	struct repo *r = check_repo(L);
	mlx_lua_check_fields(L, 2, known, 0);
	bool untracked = mlx_lua_optfield_boolean(L, 2, "untracked", 0);
	struct mlx_err err;
	if (mlx_git_status(r->git, untracked, &r->list, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, r->list.len > 0);
	push_list(L, &r->list);
	clear_results(r);
	return 2;
}

/* repo:show(rev, path) -> content | nil, message, code */
static int repo_show(lua_State *L)
{
	struct repo *r = check_repo(L);
	const char *rev = luaL_checkstring(L, 2);
	const char *path = luaL_checkstring(L, 3);
	struct mlx_err err;
	if (mlx_git_show(r->git, rev, path, &r->content, &r->content_len, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushlstring(L, r->content, r->content_len);
	clear_results(r);
	return 1;
}

/* repo:tags([{points_at = rev}]) -> {name…} sorted | nil, message, code */
static int repo_tags(lua_State *L)
{
	static const char *const known[] = {"points_at", NULL};
	struct repo *r = check_repo(L);
	mlx_lua_check_fields(L, 2, known, 0);
	const char *points_at = mlx_lua_optfield_string(L, 2, "points_at", NULL);
	struct mlx_err err;
	if (mlx_git_tags(r->git, points_at, &r->list, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	push_list(L, &r->list);
	clear_results(r);
	return 1;
}

/* repo:tag(name[, {message, rev}]) -> the tagged commit's id
 * | nil, message, code ("exists" if the tag is there already) */
static int repo_tag(lua_State *L)
{
	static const char *const known[] = {"message", "rev", NULL};
	struct repo *r = check_repo(L);
	const char *name = luaL_checkstring(L, 2);
	mlx_lua_check_fields(L, 3, known, 0);
	const char *message = mlx_lua_optfield_string(L, 3, "message", NULL);
	const char *rev = mlx_lua_optfield_string(L, 3, "rev", NULL);
	char commit[MLX_GIT_OID_HEX];
	struct mlx_err err;
	if (mlx_git_tag(r->git, name, rev, message, commit, &err) != MLX_OK) {
		if (err.sys_errno == EEXIST) {
			lua_pushnil(L);
			lua_pushstring(L, err.msg);
			lua_pushliteral(L, "exists");
			return 3;
		}
		return mlx_lua_fail(L, &err);
	}
	lua_pushstring(L, commit);
	return 1;
}

/* repo:log([{path, limit, rev}]) -> {{commit, short, author, email, time,
 * summary}…} newest first | nil, message, code */
static int repo_log(lua_State *L)
{
	static const char *const known[] = {"path", "limit", "rev", NULL};
	struct repo *r = check_repo(L);
	mlx_lua_check_fields(L, 2, known, 0);
	const char *path = mlx_lua_optfield_string(L, 2, "path", NULL);
	const char *rev = mlx_lua_optfield_string(L, 2, "rev", NULL);
	lua_Integer limit = mlx_lua_optfield_integer(L, 2, "limit", 0);
	if (limit < 0) {
		lua_getfield(L, 2, "limit");
		mlx_lua_field_error(L, 2, "limit", "0 (all) or more", -1);
	}
	struct mlx_err err;
	if (mlx_git_log(r->git, rev, path, (size_t)limit, &r->log, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_createtable(L, (int)r->log.len, 0);
	for (size_t i = 0; i < r->log.len; i++) {
		const struct mlx_git_commit *c = &r->log.items[i];
		lua_createtable(L, 0, 6);
		lua_pushstring(L, c->id);
		lua_setfield(L, -2, "commit");
		lua_pushlstring(L, c->id, 7);
		lua_setfield(L, -2, "short");
		lua_pushstring(L, c->author);
		lua_setfield(L, -2, "author");
		lua_pushstring(L, c->email);
		lua_setfield(L, -2, "email");
		lua_pushinteger(L, (lua_Integer)c->time);
		lua_setfield(L, -2, "time");
		lua_pushstring(L, c->summary);
		lua_setfield(L, -2, "summary");
		lua_rawseti(L, -2, (lua_Integer)i + 1);
	}
	clear_results(r);
	return 1;
}

static int repo_tostring(lua_State *L)
{
	struct repo *r = luaL_checkudata(L, 1, REPO_MT);
	if (r->git)
		lua_pushfstring(L, "mlx.GitRepo (%s)", mlx_git_root(r->git));
	else
		lua_pushliteral(L, "mlx.GitRepo (closed)");
	return 1;
}

/* version() -> libgit2's version as "major.minor.rev" */
static int git_version(lua_State *L)
{
	char buf[32];
	mlx_git_version(buf, sizeof buf);
	lua_pushstring(L, buf);
	return 1;
}

static const luaL_Reg git_functions[] = {
	{"open", git_open},
	{"version", git_version},
	{NULL, NULL},
};

static const luaL_Reg repo_methods[] = {
	{"root", repo_root},
	{"head", repo_head},
	{"is_dirty", repo_is_dirty},
	{"show", repo_show},
	{"tags", repo_tags},
	{"tag", repo_tag},
	{"log", repo_log},
	{"close", repo_close},
	{NULL, NULL},
};

static const luaL_Reg repo_metamethods[] = {
	{"__gc", repo_close},
	{"__close", repo_close},
	{"__tostring", repo_tostring},
	{"__index", NULL},
	{NULL, NULL},
};

int luaopen_mlx_git(lua_State *L)
{
	luaL_newmetatable(L, REPO_MT);
	luaL_setfuncs(L, repo_metamethods, 0);
	luaL_newlib(L, repo_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, git_functions);
	return 1;
}
