/* l_http.c — mlx.curl, the libcurl binding under mlx.http (the policy:
 * retries, backoff, JSON, response objects live in stdlib/mlx/http.lua).
 *
 * Built into mlx_http.so and loaded on first use (see stdlib/mlx/native.lua):
 * linking libcurl into the binary would cost every mlx start ~10 ms of
 * dynamic loading. */
#include <lauxlib.h>
#include <string.h>

#include "binding.h"
#include "http.h"

#define CLIENT_MT "mlx.HttpClient"

/* A client owns the response of its last exchange, so that a Lua memory
 * error while the response is copied into Lua cannot leak it. */
struct client {
	struct mlx_http_client *http;
	struct mlx_http_response resp;
	lua_CFunction interrupted; /* mlx.core.interrupted, if the host has it */
};

/* Where the cancel callback finds the Lua state of the running exchange. */
struct cancel_probe {
	lua_State *L;
	lua_CFunction interrupted;
};

static int probe_cancelled(void *arg)
{
	struct cancel_probe *probe = arg;
	probe->interrupted(probe->L);
	int stop = lua_toboolean(probe->L, -1);
	lua_pop(probe->L, 1);
	return stop;
}

static struct client *check_client(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
	luaL_argcheck(L, c->http != NULL, 1, "HTTP client is closed");
	return c;
}

/* client() -> a client whose requests share connections | nil, message, code */
static int http_client(lua_State *L)
{
	struct client *c = lua_newuserdatauv(L, sizeof *c, 0);
	memset(c, 0, sizeof *c);
	luaL_setmetatable(L, CLIENT_MT);
	c->interrupted = mlx_lua_find_interrupted(L);
	struct mlx_err err;
	if (mlx_http_client_new(&c->http, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	return 1;
}

static int client_close(lua_State *L)
{
	struct client *c = luaL_checkudata(L, 1, CLIENT_MT);
	mlx_http_response_free(&c->resp);
	mlx_http_client_free(c->http);
	c->http = NULL;
	return 0;
}

/* A time limit in seconds (0: none) as milliseconds for libcurl; a positive
 * limit never rounds down to 0, which would mean none. */
static long opt_millis(lua_State *L, int arg, const char *key)
{
	double seconds = mlx_lua_optfield_number(L, arg, key, 0);
	if (!(seconds >= 0 && seconds < 1e9)) {
		lua_getfield(L, arg, key);
		mlx_lua_field_error(L, arg, key, "zero or more seconds", -1);
	}
	long ms = (long)(seconds * 1000 + 0.5);
	return seconds > 0 && ms == 0 ? 1 : ms;
}

static void push_response(lua_State *L, const struct mlx_http_response *r)
{
	lua_createtable(L, 0, 9);
	lua_pushinteger(L, r->status);
	lua_setfield(L, -2, "status");
	lua_pushstring(L, r->reason);
	lua_setfield(L, -2, "reason");
	lua_pushstring(L, r->url);
	lua_setfield(L, -2, "url");
	lua_pushnumber(L, r->time);
	lua_setfield(L, -2, "time");
	lua_pushinteger(L, (lua_Integer)r->size);
	lua_setfield(L, -2, "size");
	if (r->body) {
		lua_pushlstring(L, r->body, r->body_len);
		lua_setfield(L, -2, "body");
	} else if (r->sha256[0]) {
		lua_pushstring(L, r->sha256);
		lua_setfield(L, -2, "sha256");
	}
	/* Names are lowercase; a repeated header's values are joined by ", "
	 * as RFC 9110 allows. */
	lua_createtable(L, 0, (int)(r->headers.len / 2));
	for (size_t i = 0; i + 1 < r->headers.len; i += 2) {
		const char *name = r->headers.items[i], *value = r->headers.items[i + 1];
		if (lua_getfield(L, -1, name) == LUA_TSTRING) {
			lua_pushliteral(L, ", ");
			lua_pushstring(L, value);
			lua_concat(L, 3);
		} else {
			lua_pop(L, 1);
			lua_pushstring(L, value);
		}
		lua_setfield(L, -2, name);
	}
	lua_setfield(L, -2, "headers");
}

/* client:perform(request) -> response | nil, message, code[, response]
 *
 * request: {method, url, headers = {"Name: value"…}, body | body_file,
 * out_file, sha256, user_agent, ca_file, insecure, timeout, connect_timeout
 * (seconds, 0 = none), max_redirects}. One attempt; see core/http.h. The
 * response is {status, reason, headers = {name = value}, body | sha256, url,
 * time, size}. A download that does not match sha256 also returns the
 * response, fourth. */
static int client_perform(lua_State *L)
{
	struct client *c = check_client(L);
	luaL_checktype(L, 2, LUA_TTABLE);
	struct mlx_http_request req = {0};
	req.method = mlx_lua_optfield_string(L, 2, "method", NULL);
	req.url = mlx_lua_optfield_string(L, 2, "url", NULL);
	luaL_argcheck(L, req.method && req.url, 2, "request needs method and url");
	req.body_file = mlx_lua_optfield_string(L, 2, "body_file", NULL);
	req.out_file = mlx_lua_optfield_string(L, 2, "out_file", NULL);
	req.sha256 = mlx_lua_optfield_string(L, 2, "sha256", NULL);
	req.user_agent = mlx_lua_optfield_string(L, 2, "user_agent", NULL);
	req.ca_file = mlx_lua_optfield_string(L, 2, "ca_file", NULL);
	req.body = mlx_lua_optfield_string(L, 2, "body", &req.body_len);
	luaL_argcheck(L, !(req.body && req.body_file), 2, "request has both body and body_file");
	req.timeout_ms = opt_millis(L, 2, "timeout");
	req.connect_timeout_ms = opt_millis(L, 2, "connect_timeout");
	req.max_redirects = (long)mlx_lua_optfield_integer(L, 2, "max_redirects", 0);
	req.insecure = mlx_lua_optfield_boolean(L, 2, "insecure", 0);

	/* The header array is a userdata, so a raised error cannot leak it. */
	int headers = mlx_lua_optfield_table(L, 2, "headers");
	if (headers) {
		size_t n = (size_t)luaL_len(L, headers);
		const char **lines = lua_newuserdatauv(L, (n ? n : 1) * sizeof *lines, 0);
		for (size_t i = 0; i < n; i++) {
			if (lua_geti(L, headers, (lua_Integer)i + 1) != LUA_TSTRING ||
			    strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1))
				return mlx_lua_field_error(L, 2,
				                           lua_pushfstring(L, "headers[%d]", (int)i + 1),
				                           "a string without NUL bytes", -2);
			lines[i] = lua_tostring(L, -1);
			lua_pop(L, 1); /* the headers table keeps it alive */
		}
		req.headers = lines;
		req.nheaders = n;
	}

	struct cancel_probe probe = {L, c->interrupted};
	if (c->interrupted) {
		req.cancelled = probe_cancelled;
		req.cancel_arg = &probe;
	}
	mlx_http_response_free(&c->resp);
	struct mlx_err err;
	mlx_err_clear(&err);
	int rc = mlx_http_perform(c->http, &req, &c->resp, &err);
	if (rc != MLX_OK) {
		enum mlx_http_failure f = c->resp.failure;
		lua_pushnil(L);
		lua_pushstring(L, err.msg);
		lua_pushstring(L, f == MLX_HTTP_FILE ? mlx_lua_status_name(rc) : mlx_http_failure_name(f));
		if (f != MLX_HTTP_DIGEST)
			return 3;
		push_response(L, &c->resp);
		mlx_http_response_free(&c->resp);
		return 4;
	}
	push_response(L, &c->resp);
	mlx_http_response_free(&c->resp);
	return 1;
}

/* parse_date(text) -> seconds since the epoch | nil (not an HTTP date) */
static int http_parse_date(lua_State *L)
{
	int64_t seconds;
	if (mlx_http_parse_date(luaL_checkstring(L, 1), &seconds, NULL) != MLX_OK)
		return 0;
	lua_pushinteger(L, (lua_Integer)seconds);
	return 1;
}

/* version() -> libcurl's version string */
static int http_version(lua_State *L)
{
	lua_pushstring(L, mlx_http_version());
	return 1;
}

static const luaL_Reg http_functions[] = {
    {"client", http_client},
    {"parse_date", http_parse_date},
    {"version", http_version},
    {NULL, NULL},
};

static const luaL_Reg client_methods[] = {
	{"perform", client_perform},
	{"close", client_close},
	{NULL, NULL},
};

static const luaL_Reg client_metamethods[] = {
	{"__gc", client_close},
	{"__close", client_close},
	{"__index", NULL},
	{NULL, NULL},
};

int luaopen_mlx_curl(lua_State *L)
{
	luaL_newmetatable(L, CLIENT_MT);
	luaL_setfuncs(L, client_metamethods, 0);
	luaL_newlib(L, client_methods);
	lua_setfield(L, -2, "__index");
	lua_pop(L, 1);
	luaL_newlib(L, http_functions);
	return 1;
}
