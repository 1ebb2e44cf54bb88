/* l_web.c — mlx.httpd, the libmicrohttpd binding under mlx.web (the routes,
 * the API, the Host check and every header policy live in
 * stdlib/mlx/web.lua), and the UI's assets embedded in the build.
 *
 * Built into mlx_web.so and loaded on first use (stdlib/mlx/native.lua): only
 * `mlx ui` pays for libmicrohttpd. */
#include <lauxlib.h>
#include <string.h>

#include "binding.h"
#include "web.h"
#include "web_assets.h"

#define SERVER_MT "mlx.WebServer"

/* Extra response headers a handler may return. */
#define MAX_HEADERS 16

/* A server and the state of the request being answered: the Lua state and
 * the stack index of the handler, set by serve for its duration, and the
 * response headers as C strings pointing into the handler's results, which
 * stay on the stack until done() pops them. */
struct server {
	struct mlx_web_server *web;
	lua_State *L;
	int handler;
	int raised;  /* the handler raised; its error is on the stack */
	int results; /* values the request left on the stack, for done() */
	const char *headers[2 * MAX_HEADERS];
};

static struct server *check_server(lua_State *L)
{
	struct server *s = luaL_checkudata(L, 1, SERVER_MT);
	luaL_argcheck(L, s->web != NULL, 1, "web server is closed");
	return s;
}

/* Under lua_pcall, with the handler and the request (a light userdata):
 * builds the request table and calls the handler, so that an error — even
 * out of memory while the table is built — is caught before it could
 * unwind through libmicrohttpd. */
static int call_handler(lua_State *L)
{
	const struct mlx_web_request *req = lua_touserdata(L, 2);
	lua_settop(L, 1);
	lua_createtable(L, 0, 4);
	lua_pushstring(L, req->method);
	lua_setfield(L, -2, "method");
	lua_pushstring(L, req->path);
	lua_setfield(L, -2, "path");
	if (req->host) {
		lua_pushstring(L, req->host);
		lua_setfield(L, -2, "host");
	}
	lua_createtable(L, 0, (int)req->nargs);
	for (size_t i = 0; i < req->nargs; i++) {
		lua_pushstring(L, req->args[2 * i + 1]);
		lua_setfield(L, -2, req->args[2 * i]);
	}
	lua_setfield(L, -2, "query");
	lua_call(L, 1, 4);
	/* Headers as strings now, so reading them below cannot raise. */
	if (lua_istable(L, 4)) {
		lua_newtable(L);
		lua_pushnil(L);
		while (lua_next(L, 4)) {
			if (lua_type(L, -2) == LUA_TSTRING && lua_type(L, -1) == LUA_TSTRING) {
				lua_pushvalue(L, -2);
				lua_insert(L, -2);
				lua_rawset(L, -4);
			} else {
				lua_pop(L, 1);
			}
		}
		lua_replace(L, 4);
	}
	if (lua_type(L, 3) == LUA_TNUMBER)
		lua_tolstring(L, 3, NULL); /* a number body becomes its text here */
	return 4;
}

/* Called by core/web.c with a complete request: runs the Lua handler under
 * lua_pcall and leaves its four results (status, content type, body,
 * headers) on the stack until done(). An error it raised stays on the
 * stack, below whatever later requests push and pop, for serve to raise;
 * later requests are then closed unanswered. */
static int handle(void *arg, const struct mlx_web_request *req, struct mlx_web_response *resp)
{
	struct server *s = arg;
	lua_State *L = s->L;
	s->results = 0;
	if (s->raised || !lua_checkstack(L, 8))
		return -1;
	lua_pushcfunction(L, call_handler);
	lua_pushvalue(L, s->handler);
	lua_pushlightuserdata(L, (void *)req);
	if (lua_pcall(L, 2, 4, 0) != LUA_OK) {
		s->raised = 1;
		return -1;
	}
	s->results = 4;
	int top = lua_gettop(L), isnum;
	lua_Integer status = lua_tointegerx(L, top - 3, &isnum);
	resp->status = isnum ? (int)status : 500;
	resp->content_type = lua_type(L, top - 2) == LUA_TSTRING ? lua_tostring(L, top - 2) : NULL;
	resp->body = lua_type(L, top - 1) == LUA_TSTRING ? lua_tolstring(L, top - 1, &resp->body_len) : NULL;
	if (!resp->body)
		resp->body_len = 0;
	size_t n = 0;
	if (lua_istable(L, top)) {
		/* Only strings are left in it (call_handler): nothing here raises. */
		lua_pushnil(L);
		while (lua_next(L, top)) {
			if (n < MAX_HEADERS) {
				/* Both stay reachable: the key and value are in the table. */
				s->headers[2 * n] = lua_tostring(L, -2);
				s->headers[2 * n + 1] = lua_tostring(L, -1);
				n++;
			}
			lua_pop(L, 1);
		}
	}
	resp->headers = s->headers;
	resp->nheaders = n;
	return resp->status >= 100 && resp->status <= 599 ? 0 : -1;
}

static void done(void *arg)
{
	struct server *s = arg;
	lua_pop(s->L, s->results);
	s->results = 0;
}

/* listen{host, port} -> a server | nil, message, code. host defaults to
 * "127.0.0.1", port to 0 (any free port: see server:port()). */
static int web_listen(lua_State *L)
{
	static const char *const known[] = {"host", "port", NULL};
	mlx_lua_check_fields(L, 1, known, 0);
	const char *host = mlx_lua_optfield_string(L, 1, "host", NULL);
	lua_Integer port = mlx_lua_optfield_integer(L, 1, "port", 0);
	if (port < 0 || port > 65535) {
		lua_getfield(L, 1, "port");
		return mlx_lua_field_error(L, 1, "port", "a port from 0 to 65535", -1);
	}
	struct server *s = lua_newuserdatauv(L, sizeof *s, 0);
	memset(s, 0, sizeof *s);
	luaL_setmetatable(L, SERVER_MT);
	struct mlx_err err;
	if (mlx_web_start(&s->web, host ? host : "127.0.0.1", (int)port, handle, done, s, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

/* server:port() -> the port it listens on */
static int server_port(lua_State *L)
{
	lua_pushinteger(L, mlx_web_port(check_server(L)->web));
	return 1;
}

/* server:serve(seconds, handler) -> true | nil, message, code: answers what
 * arrives within seconds, calling handler(request) for each request, where
 * request = {method, path, host, query = {name = value}}; the handler
 * returns status, content type, body and a table of extra headers. An error
 * the handler raises is raised here, after the connection is closed. */
static int server_serve(lua_State *L)
{
	struct server *s = check_server(L);
	lua_Number seconds = luaL_checknumber(L, 2);
	luaL_checktype(L, 3, LUA_TFUNCTION);
	lua_settop(L, 3);
	s->L = L;
	s->handler = 3;
	s->raised = 0;
	struct mlx_err err;
	int rc = mlx_web_run(s->web, seconds < 0 ? -1 : (int)(seconds * 1000), &err);
	s->L = NULL;
	if (s->raised)
		return lua_error(L); /* the handler's error, left at the top */
	if (rc == MLX_ERR_INTERRUPTED) {
		lua_pushboolean(L, 1); /* the interrupt hook raises at once */
		return 1;
	}
	if (rc != MLX_OK)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, 1);
	return 1;
}

static int server_close(lua_State *L)
{
	struct server *s = luaL_checkudata(L, 1, SERVER_MT);
	mlx_web_stop(s->web);
	s->web = NULL;
	return 0;
}

/* asset(name) -> the bytes of the embedded UI file name ("app.js"), or nil */
static int web_asset(lua_State *L)
{
	const char *name = luaL_checkstring(L, 1);
	for (const struct mlx_web_asset *a = mlx_web_assets; a->name; a++) {
		if (strcmp(a->name, name) == 0) {
			lua_pushlstring(L, a->data, a->size);
			return 1;
		}
	}
	lua_pushnil(L);
	return 1;
}

static const luaL_Reg web_functions[] = {
    {"listen", web_listen},
    {"asset", web_asset},
    {NULL, NULL},
};

static const luaL_Reg server_methods[] = {
    {"port", server_port},
    {"serve", server_serve},
    {"close", server_close},
    {NULL, NULL},
};

static const luaL_Reg server_metamethods[] = {
    {"__gc", server_close},
    {"__close", server_close},
    {"__index", NULL},
    {NULL, NULL},
};

int luaopen_mlx_httpd(lua_State *L)
{
	luaL_newmetatable(L, SERVER_MT);
	luaL_setfuncs(L, server_metamethods, 0);
	luaL_newlib(L, server_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, web_functions);
	return 1;
}
