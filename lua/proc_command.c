/* proc_command.c — reading a command table of mlx.proc (see proc_command.h). */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "proc_command.h"

enum { LABEL_MAX = 60 };
#define DEFAULT_GRACE 5.0

static const char *const stream_names[] = {"stdout", "stderr"};

static const char *const spec_fields[] = {
    "shell", "cwd", "env", "clean_env", "stdin", "stdout", "stderr", "timeout", "grace", NULL,
};

static int field_error(lua_State *L, const char *fmt, const char *what)
{
	return luaL_argerror(L, 1, lua_pushfstring(L, fmt, what));
}

static void check_fields(lua_State *L, int spec, lua_Integer nargs)
{
	lua_pushnil(L);
	while (lua_next(L, spec)) {
		lua_pop(L, 1);
		if (lua_isinteger(L, -1)) {
			lua_Integer i = lua_tointeger(L, -1);
			if (i < 1 || i > nargs)
				field_error(L, "%s is not a position in the command's argv",
				            lua_pushfstring(L, "[%I]", i));
			continue;
		}
		const char *name = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : NULL;
		bool known = false;
		for (int i = 0; name && spec_fields[i]; i++)
			known = known || strcmp(name, spec_fields[i]) == 0;
		if (!known)
			field_error(L, "unknown field '%s' in the command",
			            name ? name : luaL_typename(L, -1));
	}
}

/* Returns the string (or number, converted in place) at idx, or NULL if it
 * is neither or holds a NUL byte, which no C string can carry. */
static const char *text_at(lua_State *L, int idx)
{
	int t = lua_type(L, idx);
	if (t != LUA_TSTRING && t != LUA_TNUMBER)
		return NULL;
	size_t len;
	const char *s = lua_tolstring(L, idx, &len);
	return strlen(s) == len ? s : NULL;
}

/* Pushes spec[name] and returns its string, or NULL if nil. The value stays
 * on the stack so the pointer stays valid. */
static const char *opt_text_field(lua_State *L, int spec, const char *name)
{
	if (lua_getfield(L, spec, name) == LUA_TNIL)
		return NULL;
	const char *s = text_at(L, -1);
	if (!s)
		field_error(L, "%s must be a string (without NUL bytes)", name);
	return s;
}

/* Keeps the value on top alive in the anchor table, popping it. */
static void anchor(lua_State *L, int anchors)
{
	lua_rawseti(L, anchors, (lua_Integer)lua_rawlen(L, anchors) + 1);
}

static const char *const *parse_argv(lua_State *L, int spec, lua_Integer n, int anchors)
{
	const char **argv = lua_newuserdatauv(L, ((size_t)n + 1) * sizeof *argv, 0);
	anchor(L, anchors);
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, spec, i);
		if (!(argv[i - 1] = text_at(L, -1)))
			field_error(L, "argv[%s] must be a string (without NUL bytes)",
			            lua_pushfstring(L, "%I", i));
		anchor(L, anchors);
	}
	argv[n] = NULL;
	return argv;
}

extern char **environ;

/* Builds the child's environment from spec.env (name = value, or false to
 * remove) over mlx's own, or over nothing with clean_env. NULL: inherit. */
static const char *const *parse_env(lua_State *L, int spec, int anchors)
{
	lua_getfield(L, spec, "clean_env");
	bool clean = lua_toboolean(L, -1);
	lua_pop(L, 1);
	int type = lua_getfield(L, spec, "env");
	if (type == LUA_TNIL && !clean) {
		lua_pop(L, 1);
		return NULL;
	}
	if (type != LUA_TNIL && type != LUA_TTABLE)
		field_error(L, "%s must be a table of name = value", "env");
	int env = lua_gettop(L);
	size_t count = 0;
	if (type == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, env)) {
			lua_pop(L, 1);
			count++;
		}
	}
	if (!clean)
		for (char **e = environ; *e; e++)
			count++;
	const char **envp = lua_newuserdatauv(L, (count + 1) * sizeof *envp, 0);
	anchor(L, anchors);
	size_t k = 0;
	if (!clean) {
		for (char **e = environ; *e; e++) {
			const char *eq = strchr(*e, '=');
			if (eq && type == LUA_TTABLE) {
				lua_pushlstring(L, *e, (size_t)(eq - *e));
				bool overridden = lua_rawget(L, env) != LUA_TNIL;
				lua_pop(L, 1);
				if (overridden)
					continue;
			}
			envp[k++] = *e;
		}
	}
	if (type == LUA_TTABLE) {
		lua_pushnil(L);
		while (lua_next(L, env)) {
			if (lua_type(L, -2) != LUA_TSTRING)
				field_error(L, "%s names must be strings", "env");
			const char *name = lua_tostring(L, -2);
			if (!*name || strchr(name, '=') || strlen(name) != lua_rawlen(L, -2))
				field_error(L, "env: bad variable name '%s'", name);
			if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
				lua_pop(L, 1);
				continue; /* removed */
			}
			const char *value = text_at(L, -1);
			if (!value)
				field_error(L, "env.%s must be a string (without NUL bytes) or false", name);
			lua_pushfstring(L, "%s=%s", name, value);
			envp[k++] = lua_tostring(L, -1);
			anchor(L, anchors);
			lua_pop(L, 1); /* the value */
		}
	}
	envp[k] = NULL;
	return envp;
}

static void parse_input(lua_State *L, int spec, struct mlx_proc_spec *ps)
{
	int type = lua_getfield(L, spec, "stdin");
	if (type == LUA_TNIL || (type == LUA_TSTRING && strcmp(lua_tostring(L, -1), "null") == 0))
		return;
	if (type != LUA_TTABLE)
		field_error(L, "%s must be \"null\", {file = PATH} or {data = STRING}", "stdin");
	int t = lua_gettop(L);
	lua_pushnil(L);
	while (lua_next(L, t)) {
		lua_pop(L, 1);
		const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
		if (strcmp(k, "file") != 0 && strcmp(k, "data") != 0)
			field_error(L, "unknown field '%s' in stdin", k);
	}
	const char *file = opt_text_field(L, t, "file");
	if (lua_getfield(L, t, "data") != LUA_TNIL) {
		if (file || lua_type(L, -1) != LUA_TSTRING)
			field_error(L, "%s needs exactly one of file = PATH or data = STRING", "stdin");
		ps->stdin_mode = MLX_PROC_IN_DATA;
		ps->stdin_data = lua_tolstring(L, -1, &ps->stdin_len);
	} else if (file) {
		ps->stdin_mode = MLX_PROC_IN_FILE;
		ps->stdin_path = file;
	} else {
		field_error(L, "%s needs exactly one of file = PATH or data = STRING", "stdin");
	}
}

/* Returns whether the stream is captured. */
static bool parse_output(lua_State *L, int spec, int hidx, int which, struct mlx_proc_output_spec *o)
{
	const char *field = stream_names[which];
	int type = lua_getfield(L, spec, field);
	memset(o, 0, sizeof *o);
	if (type == LUA_TNIL)
		return false;
	if (type == LUA_TSTRING) {
		const char *s = lua_tostring(L, -1);
		if (strcmp(s, "inherit") == 0)
			o->mode = MLX_PROC_OUT_INHERIT;
		else if (strcmp(s, "null") == 0)
			o->mode = MLX_PROC_OUT_NULL;
		else if (strcmp(s, "capture") == 0)
			o->mode = MLX_PROC_OUT_PIPE, o->capture = true;
		else if (strcmp(s, "stdout") == 0 && which == MLX_PROC_STDERR)
			o->mode = MLX_PROC_OUT_STDOUT;
		else
			field_error(L,
			            "%s: expected \"inherit\", \"null\", \"capture\", a function or a table",
			            field);
	} else if (type == LUA_TFUNCTION) {
		o->mode = MLX_PROC_OUT_PIPE;
		o->lines = true;
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, hidx, UV_ON_STDOUT + which);
	} else if (type == LUA_TTABLE) {
		int t = lua_gettop(L);
		lua_pushnil(L);
		while (lua_next(L, t)) {
			lua_pop(L, 1);
			const char *k = lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?";
			if (strcmp(k, "capture") != 0 && strcmp(k, "on_line") != 0 && strcmp(k, "log") != 0)
				field_error(L, "unknown field '%s' in an output", k);
		}
		o->mode = MLX_PROC_OUT_PIPE;
		lua_getfield(L, t, "capture");
		o->capture = lua_toboolean(L, -1);
		int fn = lua_getfield(L, t, "on_line");
		if (fn == LUA_TFUNCTION) {
			o->lines = true;
			lua_pushvalue(L, -1);
			lua_setiuservalue(L, hidx, UV_ON_STDOUT + which);
		} else if (fn != LUA_TNIL) {
			field_error(L, "%s: on_line must be a function", field);
		}
		o->log_path = opt_text_field(L, t, "log");
	} else {
		field_error(L, "%s: expected \"inherit\", \"null\", \"capture\", a function or a table",
		            field);
	}
	return o->capture;
}

static double opt_seconds(lua_State *L, int spec, const char *field, double dflt, bool positive)
{
	int type = lua_getfield(L, spec, field);
	double v = dflt;
	if (type != LUA_TNIL) {
		if (type != LUA_TNUMBER)
			field_error(L, "%s must be a number of seconds", field);
		v = lua_tonumber(L, -1);
		if (isnan(v) || v < 0 || (positive && v == 0))
			field_error(L,
			            positive ? "%s must be a positive number of seconds"
			                     : "%s must be zero or more seconds",
			            field);
	}
	lua_pop(L, 1);
	return v > PROC_MAX_SECONDS ? PROC_MAX_SECONDS : v;
}

/* What messages call the command: its program, or its shell string. */
static void push_label(lua_State *L, const struct mlx_proc_spec *ps)
{
	if (!ps->shell) {
		lua_pushstring(L, ps->argv[0]);
		return;
	}
	size_t len = strlen(ps->shell);
	lua_pushlstring(L, ps->shell, len > LABEL_MAX ? LABEL_MAX : len);
	lua_pushfstring(L, "'%s%s'", lua_tostring(L, -1), len > LABEL_MAX ? "..." : "");
	lua_remove(L, -2);
}

void proc_command_read(lua_State *L, int t, int hidx, struct proc_command *cmd)
{
	luaL_checktype(L, t, LUA_TTABLE);
	luaL_checkstack(L, 40, "command table");
	lua_newtable(L);
	int anchors = lua_gettop(L);
	memset(cmd, 0, sizeof *cmd);
	struct mlx_proc_spec *ps = &cmd->spec;
	lua_Integer nargs = (lua_Integer)lua_rawlen(L, t);
	check_fields(L, t, nargs);
	ps->shell = opt_text_field(L, t, "shell");
	if (ps->shell && nargs > 0)
		field_error(L, "%s", "give either an argv or shell = STRING, not both");
	if (!ps->shell && nargs == 0)
		field_error(L, "%s", "a command is needed: {PROGRAM, ARGS...} or {shell = STRING}");
	if (!ps->shell)
		ps->argv = parse_argv(L, t, nargs, anchors);
	ps->cwd = opt_text_field(L, t, "cwd");
	ps->envp = parse_env(L, t, anchors);
	parse_input(L, t, ps);
	cmd->captured[MLX_PROC_STDOUT] = parse_output(L, t, hidx, MLX_PROC_STDOUT, &ps->out);
	cmd->captured[MLX_PROC_STDERR] = parse_output(L, t, hidx, MLX_PROC_STDERR, &ps->err);
	cmd->timeout = opt_seconds(L, t, "timeout", 0, true);
	ps->timeout_ns = (int64_t)(cmd->timeout * 1e9);
	ps->grace_ns = (int64_t)(opt_seconds(L, t, "grace", DEFAULT_GRACE, false) * 1e9);
	push_label(L, ps);
	lua_setiuservalue(L, hidx, UV_LABEL);
}

/* Pushes s single-quoted for a POSIX shell: 'it'\''s'. */
static void push_quoted(lua_State *L, int idx)
{
	const char *s = text_at(L, idx);
	if (!s)
		luaL_error(L, "quote: expected strings (without NUL bytes), got %s", luaL_typename(L, idx));
	size_t len = lua_rawlen(L, idx);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	luaL_addchar(&b, '\'');
	for (size_t i = 0; i < len; i++) {
		if (s[i] == '\'')
			luaL_addlstring(&b, "'\\''", 4);
		else
			luaL_addchar(&b, s[i]);
	}
	luaL_addchar(&b, '\'');
	luaL_pushresult(&b);
}

/* mlx.proc.quote(string | {strings}) -> the string(s) quoted for sh,
 * separated by spaces */
int proc_quote(lua_State *L)
{
	if (lua_type(L, 1) != LUA_TTABLE) {
		push_quoted(L, 1);
		return 1;
	}
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	luaL_Buffer b;
	luaL_buffinit(L, &b);
	for (lua_Integer i = 1; i <= n; i++) {
		if (i > 1)
			luaL_addchar(&b, ' ');
		lua_rawgeti(L, 1, i);
		push_quoted(L, lua_gettop(L));
		lua_remove(L, -2);
		luaL_addvalue(&b);
	}
	luaL_pushresult(&b);
	return 1;
}
