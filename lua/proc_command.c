/* proc_command.c — reading a command table of mlx.proc (see proc_command.h). */
#include <lauxlib.h>
#include <math.h>
#include <string.h>

#include "binding.h"
#include "proc_command.h"

enum { LABEL_MAX = 60 };
#define DEFAULT_GRACE 5.0

static const char *const stream_names[] = {"stdout", "stderr"};

static const char *const spec_fields[] = {
    "shell", "cwd", "env", "clean_env", "stdin", "stdout", "stderr", "timeout", "grace", NULL,
};

static const char *const stdin_fields[] = {"file", "data", NULL};
static const char *const output_fields[] = {"capture", "on_line", "log", NULL};

#define TEXT "a string without NUL bytes"
#define STDIN_FORMS "\"null\", {file = PATH} or {data = STRING}"
#define STDIN_ONE "a table with exactly one of file = PATH and data = STRING"
#define OUTPUT_FORMS "\"inherit\", \"null\", \"capture\", a function or a table"

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

/* sub[key] of a table inside the command (stdin, stdout, stderr) as a
 * string, or NULL if nil; name is its path for messages ("stdin.file"). */
static const char *opt_subfield_text(lua_State *L, int spec, int sub, const char *key, const char *name)
{
	if (lua_getfield(L, sub, key) == LUA_TNIL) {
		lua_pop(L, 1);
		return NULL;
	}
	const char *s = lua_type(L, -1) == LUA_TSTRING ? text_at(L, -1) : NULL;
	if (!s)
		mlx_lua_field_error(L, spec, name, TEXT, -1);
	lua_pop(L, 1); /* the table keeps it alive */
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
			mlx_lua_field_error(L, spec, lua_pushfstring(L, "[%I]", i), TEXT, -2);
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
	bool clean = mlx_lua_optfield_boolean(L, spec, "clean_env", 0);
	int env = mlx_lua_optfield_table(L, spec, "env");
	if (!env && !clean)
		return NULL;
	if (!env) {
		lua_pushnil(L);
		env = lua_gettop(L);
	}
	int type = lua_type(L, env);
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
			const char *name = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
			if (!name || !*name || strchr(name, '=') || strlen(name) != lua_rawlen(L, -2))
				mlx_lua_field_error(L, spec, "env",
				                    "keyed by variable names (not empty, no '=')", -2);
			if (lua_type(L, -1) == LUA_TBOOLEAN && !lua_toboolean(L, -1)) {
				lua_pop(L, 1);
				continue; /* removed */
			}
			const char *value = text_at(L, -1);
			if (!value)
				mlx_lua_field_error(L, spec, lua_pushfstring(L, "env.%s", name),
				                    TEXT " or false", -2);
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
		mlx_lua_field_error(L, spec, "stdin", STDIN_FORMS, -1);
	int t = lua_gettop(L);
	mlx_lua_check_subfields(L, spec, t, "stdin", stdin_fields);
	const char *file = opt_subfield_text(L, spec, t, "file", "stdin.file");
	if (lua_getfield(L, t, "data") != LUA_TNIL) {
		if (file || lua_type(L, -1) != LUA_TSTRING)
			mlx_lua_field_error(L, spec, "stdin", STDIN_ONE, t);
		ps->stdin_mode = MLX_PROC_IN_DATA;
		ps->stdin_data = lua_tolstring(L, -1, &ps->stdin_len);
	} else if (file) {
		ps->stdin_mode = MLX_PROC_IN_FILE;
		ps->stdin_path = file;
	} else {
		mlx_lua_field_error(L, spec, "stdin", STDIN_ONE, t);
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
			mlx_lua_field_error(L, spec, field, OUTPUT_FORMS, -1);
	} else if (type == LUA_TFUNCTION) {
		o->mode = MLX_PROC_OUT_PIPE;
		o->lines = true;
		lua_pushvalue(L, -1);
		lua_setiuservalue(L, hidx, UV_ON_STDOUT + which);
	} else if (type == LUA_TTABLE) {
		int t = lua_gettop(L);
		mlx_lua_check_subfields(L, spec, t, field, output_fields);
		o->mode = MLX_PROC_OUT_PIPE;
		int capture = lua_getfield(L, t, "capture");
		if (capture != LUA_TNIL && capture != LUA_TBOOLEAN)
			mlx_lua_field_error(L, spec, lua_pushfstring(L, "%s.capture", field), "true or false",
			                    -2);
		o->capture = lua_toboolean(L, -1);
		int fn = lua_getfield(L, t, "on_line");
		if (fn == LUA_TFUNCTION) {
			o->lines = true;
			lua_pushvalue(L, -1);
			lua_setiuservalue(L, hidx, UV_ON_STDOUT + which);
		} else if (fn != LUA_TNIL) {
			mlx_lua_field_error(L, spec, lua_pushfstring(L, "%s.on_line", field), "a function",
			                    -2);
		}
		o->log_path = opt_subfield_text(L, spec, t, "log", lua_pushfstring(L, "%s.log", field));
	} else {
		mlx_lua_field_error(L, spec, field, OUTPUT_FORMS, -1);
	}
	return o->capture;
}

static double opt_seconds(lua_State *L, int spec, const char *field, double dflt, bool positive)
{
	double v = mlx_lua_optfield_number(L, spec, field, NAN); /* NaN: absent */
	if (isnan(v))
		return dflt;
	if (v < 0 || (positive && v == 0)) {
		lua_getfield(L, spec, field);
		mlx_lua_field_error(L, spec, field,
		                    positive ? "a positive number of seconds" : "zero or more seconds", -1);
	}
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
	mlx_lua_check_fields(L, t, spec_fields, nargs);
	ps->shell = mlx_lua_optfield_string(L, t, "shell", NULL);
	if (ps->shell && nargs > 0)
		luaL_argerror(L, t, "give either an argv or shell = STRING, not both");
	if (!ps->shell && nargs == 0)
		luaL_argerror(L, t, "a command is needed: {PROGRAM, ARGS...} or {shell = STRING}");
	if (!ps->shell)
		ps->argv = parse_argv(L, t, nargs, anchors);
	ps->cwd = mlx_lua_optfield_string(L, t, "cwd", NULL);
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
