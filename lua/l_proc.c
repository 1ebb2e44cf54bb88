/* l_proc.c — mlx.proc: running commands (core/proc.h).
 *
 * A handle is a full userdata "mlx.Proc" owning a struct mlx_proc; its user
 * values hold what C cannot: the line callbacks, the command's label for
 * messages and, once the child finished, the result table.
 *
 * No child may outlive mlx. A handle closed on purpose (:close(), a <close>
 * variable, run returning or raising) stops its child and waits for it. A
 * handle that is garbage-collected with its child still running must not
 * wait — lua_close collects every handle, one after the other — so it sends
 * SIGTERM and passes the child to the registry: a userdata kept in the Lua
 * registry, created before any handle and therefore finalized after all of
 * them. The registry reaps such children as mlx.proc is used, and when
 * finalized stops the rest together (SIGKILL after their grace period).
 *
 * Only a SIGKILL of mlx escapes all this: the registry also owns the
 * keeper (core/keeper.h), one process per mlx started at the first spawn,
 * which kills every group still running when mlx dies. Being finalized
 * last, the registry ends it after every handle has stopped its child. */
#include <errno.h>
#include <lauxlib.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binding.h"
#include "interrupt.h"
#include "proc.h"
#include "proc_command.h"

#define PROC_MT "mlx.Proc"
#define REGISTRY_MT "mlx.ProcRegistry"
#define REGISTRY_KEY "mlx.proc.registry"

struct proc_handle {
	struct mlx_proc *proc; /* NULL before the spawn and once closed */
	pid_t pid;
	bool captured[2];
	double timeout;
};

/* Children whose handle was collected while they ran: being stopped; and
 * the keeper of all children. */
struct proc_registry {
	struct mlx_proc **abandoned;
	size_t len, cap;
	struct mlx_keeper *keeper; /* NULL until the first spawn */
	bool closed;
};

static const char *const stream_names[] = {"stdout", "stderr"};

static const struct {
	const char *name;
	int number;
} signals[] = {
    {"HUP", SIGHUP},   {"INT", SIGINT},     {"QUIT", SIGQUIT}, {"ILL", SIGILL},   {"TRAP", SIGTRAP},
    {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},   {"KILL", SIGKILL}, {"USR1", SIGUSR1},
    {"SEGV", SIGSEGV}, {"USR2", SIGUSR2},   {"PIPE", SIGPIPE}, {"ALRM", SIGALRM}, {"TERM", SIGTERM},
    {"CHLD", SIGCHLD}, {"CONT", SIGCONT},   {"STOP", SIGSTOP}, {"TSTP", SIGTSTP}, {"TTIN", SIGTTIN},
    {"TTOU", SIGTTOU}, {"URG", SIGURG},     {"XCPU", SIGXCPU}, {"XFSZ", SIGXFSZ}, {"VTALRM", SIGVTALRM},
    {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},     {"SYS", SIGSYS},
};

static const char *signal_name(int sig)
{
	for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
		if (signals[i].number == sig)
			return signals[i].name;
	return NULL;
}

static int64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The registry */

static struct proc_registry *registry(lua_State *L)
{
	lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
	struct proc_registry *r = luaL_testudata(L, -1, REGISTRY_MT);
	lua_pop(L, 1);
	return r;
}

/* Frees the abandoned children that have finished; never blocks. */
static void sweep(lua_State *L)
{
	struct proc_registry *r = registry(L);
	if (!r || r->len == 0)
		return;
	struct mlx_err err;
	mlx_proc_wait(r->abandoned, r->len, 0, NULL, &err);
	size_t kept = 0;
	for (size_t i = 0; i < r->len; i++) {
		if (mlx_proc_finished(r->abandoned[i]))
			mlx_proc_free(r->abandoned[i]);
		else
			r->abandoned[kept++] = r->abandoned[i];
	}
	r->len = kept;
}

/* Takes over a running child: stops it, without waiting. Returns false if
 * the registry cannot take it (closed, or out of memory). */
static bool abandon(lua_State *L, struct mlx_proc *p)
{
	struct proc_registry *r = registry(L);
	if (!r || r->closed)
		return false;
	if (r->len == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 8;
		struct mlx_proc **grown = realloc(r->abandoned, cap * sizeof *grown);
		if (!grown)
			return false;
		r->abandoned = grown;
		r->cap = cap;
	}
	mlx_proc_discard(p);
	mlx_proc_stop(p);
	r->abandoned[r->len++] = p;
	return true;
}

static int registry_gc(lua_State *L)
{
	struct proc_registry *r = luaL_checkudata(L, 1, REGISTRY_MT);
	if (r->len > 0)
		mlx_proc_terminate(r->abandoned, r->len);
	for (size_t i = 0; i < r->len; i++)
		mlx_proc_free(r->abandoned[i]);
	free(r->abandoned);
	r->abandoned = NULL;
	r->len = r->cap = 0;
	mlx_keeper_free(r->keeper);
	r->keeper = NULL;
	r->closed = true;
	return 0;
}

/* The keeper children are registered with, made on first use. Returns
 * 0, or MLX_ERR_NOMEM with err filled. */
static int keeper_of(lua_State *L, struct mlx_keeper **out, struct mlx_err *err)
{
	struct proc_registry *r = registry(L);
	*out = NULL;
	if (!r || r->closed)
		return MLX_OK; /* mlx is closing: children are stopped as their handles go */
	if (!r->keeper) {
		int rc = mlx_keeper_new(&r->keeper, err);
		if (rc != MLX_OK)
			return rc;
	}
	*out = r->keeper;
	return MLX_OK;
}

/* Handles */

static struct proc_handle *check_open(lua_State *L, int idx)
{
	struct proc_handle *h = luaL_checkudata(L, idx, PROC_MT);
	if (!h->proc)
		luaL_error(L, "attempt to use a closed process handle");
	return h;
}

/* The one close: with wait, stops the child if it runs and waits for it;
 * without (a collected handle), hands a running child to the registry. */
static void release(lua_State *L, struct proc_handle *h, bool wait)
{
	struct mlx_proc *p = h->proc;
	h->proc = NULL;
	if (!p)
		return;
	if (!wait && !mlx_proc_finished(p) && abandon(L, p))
		return;
	mlx_proc_free(p);
}

/* Starts the command described by the table at spec. Pushes the handle and
 * returns 1, or pushes nil, message, code and returns 3. */
static int start(lua_State *L, int spec)
{
	struct proc_handle *h = lua_newuserdatauv(L, sizeof *h, UV_COUNT);
	memset(h, 0, sizeof *h);
	luaL_setmetatable(L, PROC_MT);
	int hidx = lua_gettop(L);
	struct proc_command cmd;
	proc_command_read(L, spec, hidx, &cmd);
	memcpy(h->captured, cmd.captured, sizeof h->captured);
	h->timeout = cmd.timeout;

	sweep(L);
	struct mlx_err err;
	if (mlx_interrupt_signal()) {
		mlx_err_set(&err, MLX_ERR_INTERRUPTED, EINTR, "interrupted");
		return mlx_lua_fail(L, &err);
	}
	if (keeper_of(L, &cmd.spec.keeper, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	/* What Lua wrote before must come out before what the child writes. */
	fflush(stdout);
	fflush(stderr);
	if (mlx_proc_spawn(&cmd.spec, &h->proc, &err) != MLX_OK)
		return mlx_lua_fail(L, &err);
	h->pid = mlx_proc_pid(h->proc);
	lua_settop(L, hidx);
	return 1;
}

/* Waiting */

/* Calls the line callbacks of the handle at hidx for each queued line. A
 * callback may close the handle (or replace it in a wait_any list): the
 * loop then ends. */
static void deliver_lines(lua_State *L, int hidx)
{
	for (int s = 0; s < 2; s++) {
		for (;;) {
			struct proc_handle *h = luaL_testudata(L, hidx, PROC_MT);
			size_t len;
			const char *line;
			if (!h || !h->proc || !(line = mlx_proc_next_line(h->proc, s, &len)))
				break;
			lua_getiuservalue(L, hidx, UV_ON_STDOUT + s);
			lua_pushlstring(L, line, len);
			lua_pushstring(L, stream_names[s]);
			lua_call(L, 2, 0);
		}
	}
}

/* Waits until one of the n handles in the table at list has finished or
 * timeout seconds (negative: no limit) have passed, calling line callbacks
 * meanwhile. Returns the position of a finished handle, 0 on timeout, or a
 * negative status with err filled. */
static int wait_list(lua_State *L, int list, lua_Integer n, double timeout, struct mlx_err *err)
{
	int top = lua_gettop(L);
	int64_t deadline = timeout < 0 ? -1 : now_ns() + (int64_t)(timeout * 1e9);
	struct mlx_proc **procs = lua_newuserdatauv(L, (size_t)n * sizeof *procs, 0);
	bool waited = false;
	int rc = 0;
	for (;;) {
		sweep(L);
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, list, i);
			struct proc_handle *h = luaL_testudata(L, -1, PROC_MT);
			if (!h || !h->proc)
				luaL_error(L, "wait_any: item %d is not an open process handle", (int)i);
			lua_pop(L, 1);
			procs[i - 1] = h->proc;
			if (mlx_proc_finished(h->proc)) {
				lua_settop(L, top);
				return (int)i;
			}
		}
		int64_t now = now_ns();
		if (waited && deadline >= 0 && now >= deadline)
			break;
		int64_t remaining = deadline < 0 ? -1 : deadline > now ? deadline - now : 0;
		rc = mlx_proc_wait(procs, (size_t)n, remaining, mlx_interrupt_signal, err);
		waited = true;
		if (rc <= 0)
			break;
		for (lua_Integer i = 1; i <= n; i++) {
			lua_rawgeti(L, list, i);
			deliver_lines(L, lua_gettop(L));
			lua_pop(L, 1);
		}
	}
	lua_settop(L, top);
	return rc < 0 ? rc : 0;
}

static void set_number(lua_State *L, const char *k, double v)
{
	lua_pushnumber(L, v);
	lua_setfield(L, -2, k);
}

static void set_integer(lua_State *L, const char *k, lua_Integer v)
{
	lua_pushinteger(L, v);
	lua_setfield(L, -2, k);
}

static void set_boolean(lua_State *L, const char *k, bool v)
{
	lua_pushboolean(L, v);
	lua_setfield(L, -2, k);
}

/* Pushes the result table of the finished handle at hidx (made once). */
static void push_result(lua_State *L, int hidx)
{
	if (lua_getiuservalue(L, hidx, UV_RESULT) == LUA_TTABLE)
		return;
	lua_pop(L, 1);
	struct proc_handle *h = lua_touserdata(L, hidx);
	const struct mlx_proc_result *r = mlx_proc_result(h->proc);
	lua_createtable(L, 0, 14);
	set_integer(L, "pid", r->pid);
	set_boolean(L, "ok", r->code == 0 && !r->timed_out);
	if (r->code >= 0)
		set_integer(L, "code", r->code);
	if (r->signal)
		set_integer(L, "signal", r->signal);
	set_boolean(L, "timed_out", r->timed_out);
	set_boolean(L, "leftovers", r->leftovers);
	set_number(L, "wall", r->wall);
	set_number(L, "user", r->user);
	set_number(L, "sys", r->sys);
	set_integer(L, "max_rss", r->max_rss);
	for (int s = 0; s < 2; s++) {
		if (!h->captured[s])
			continue;
		size_t len;
		const char *data = mlx_proc_captured(h->proc, s, &len);
		lua_pushlstring(L, data, len);
		lua_setfield(L, -2, stream_names[s]);
	}
	if (r->log_errno) {
		lua_pushstring(L, strerror(r->log_errno));
		lua_setfield(L, -2, "log_error");
	}
	lua_pushvalue(L, -1);
	lua_setiuservalue(L, hidx, UV_RESULT);
}

static double opt_timeout(lua_State *L, int idx)
{
	if (lua_isnoneornil(L, idx))
		return -1;
	double t = luaL_checknumber(L, idx);
	luaL_argcheck(L, t >= 0, idx, "a timeout must be zero or more seconds");
	return t > PROC_MAX_SECONDS ? PROC_MAX_SECONDS : t;
}

static int push_timeout(lua_State *L, double timeout)
{
	lua_pushnil(L);
	lua_pushfstring(L, "still running after %f s", timeout);
	lua_pushliteral(L, "timeout");
	return 3;
}

/* h:wait([seconds]) -> result | nil, message, "timeout" | nil, message, code */
static int proc_wait(lua_State *L)
{
	check_open(L, 1);
	double timeout = opt_timeout(L, 2);
	lua_settop(L, 1);
	lua_createtable(L, 1, 0);
	lua_pushvalue(L, 1);
	lua_rawseti(L, -2, 1);
	struct mlx_err err;
	int rc = wait_list(L, 2, 1, timeout, &err);
	if (rc < 0)
		return mlx_lua_fail(L, &err);
	if (rc == 0)
		return push_timeout(L, timeout);
	push_result(L, 1);
	return 1;
}

/* mlx.proc.wait_any(handles[, seconds]) -> handle, result, position |
 * nil, message, "timeout" | nil, message, code */
static int proc_wait_any(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	double timeout = opt_timeout(L, 2);
	lua_Integer n = (lua_Integer)lua_rawlen(L, 1);
	luaL_argcheck(L, n > 0, 1, "no process handles to wait for");
	lua_settop(L, 1);
	struct mlx_err err;
	int rc = wait_list(L, 1, n, timeout, &err);
	if (rc < 0)
		return mlx_lua_fail(L, &err);
	if (rc == 0)
		return push_timeout(L, timeout);
	lua_rawgeti(L, 1, rc);
	push_result(L, 2);
	lua_pushinteger(L, rc);
	return 3;
}

/* Pushes nil, message, code, result for a command that did not succeed. */
static int push_failure(lua_State *L, int hidx, int result)
{
	struct proc_handle *h = lua_touserdata(L, hidx);
	const struct mlx_proc_result *r = mlx_proc_result(h->proc);
	lua_pushnil(L);
	lua_getiuservalue(L, hidx, UV_LABEL);
	const char *label = lua_tostring(L, -1);
	const char *name = signal_name(r->signal);
	if (r->timed_out) {
		lua_pushfstring(L, "%s timed out after %f s and was %s", label, h->timeout,
		                r->signal == SIGKILL ? "killed (SIGKILL)" : "stopped (SIGTERM)");
		lua_pushliteral(L, "timeout");
	} else if (r->signal) {
		lua_pushfstring(L, "%s was killed by signal %d (SIG%s)", label, r->signal, name ? name : "?");
		lua_pushliteral(L, "signal");
	} else {
		lua_pushfstring(L, "%s exited with status %d", label, r->code);
		lua_pushliteral(L, "exit");
	}
	lua_remove(L, -3); /* the label */
	lua_pushvalue(L, result);
	return 4;
}

/* mlx.proc.run(command) -> result | nil, message, code[, result] */
static int proc_run(lua_State *L)
{
	lua_settop(L, 1);
	int n = start(L, 1);
	if (n != 1)
		return n;
	int hidx = lua_gettop(L);
	lua_pushcfunction(L, proc_wait);
	lua_pushvalue(L, hidx);
	int status = lua_pcall(L, 1, 3, 0);
	struct proc_handle *h = lua_touserdata(L, hidx);
	if (status != LUA_OK) {
		/* A callback raised, or mlx was interrupted: the child goes too. */
		release(L, h, true);
		return lua_error(L);
	}
	if (lua_isnil(L, -3)) {
		release(L, h, true);
		return 3;
	}
	lua_pop(L, 2);
	int result = lua_gettop(L);
	lua_getfield(L, result, "ok");
	bool ok = lua_toboolean(L, -1);
	lua_pop(L, 1);
	int nret = ok ? 1 : push_failure(L, hidx, result);
	release(L, h, true);
	return nret;
}

/* mlx.proc.spawn(command) -> handle | nil, message, code */
static int proc_spawn(lua_State *L)
{
	lua_settop(L, 1);
	return start(L, 1);
}

static int check_signal(lua_State *L, int idx)
{
	if (lua_type(L, idx) == LUA_TSTRING) {
		const char *name = lua_tostring(L, idx);
		if (strncmp(name, "SIG", 3) == 0)
			name += 3;
		for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
			if (strcmp(name, signals[i].name) == 0)
				return signals[i].number;
		luaL_argerror(L, idx, lua_pushfstring(L, "unknown signal '%s'", lua_tostring(L, idx)));
	}
	lua_Integer sig = luaL_checkinteger(L, idx);
	luaL_argcheck(L, sig > 0 && sig < NSIG, idx, "not a signal number");
	return (int)sig;
}

/* h:kill([signal]) -> true if it was running | false | nil, message, code.
 * Without a signal: SIGTERM now, SIGKILL after the grace period. */
static int proc_kill(lua_State *L)
{
	struct proc_handle *h = check_open(L, 1);
	if (lua_isnoneornil(L, 2)) {
		lua_pushboolean(L, mlx_proc_stop(h->proc));
		return 1;
	}
	struct mlx_err err;
	int rc = mlx_proc_signal(h->proc, check_signal(L, 2), &err);
	if (rc < 0)
		return mlx_lua_fail(L, &err);
	lua_pushboolean(L, rc);
	return 1;
}

/* h:pid() -> the child's process id, which is also its process group id */
static int proc_pid(lua_State *L)
{
	struct proc_handle *h = luaL_checkudata(L, 1, PROC_MT);
	lua_pushinteger(L, h->pid);
	return 1;
}

/* h:finished() -> true once the child and the rest of its group are gone
 * and reaped (its group id may then be another's), or once the handle is
 * closed; false while something of it runs. Never waits. */
static int proc_finished(lua_State *L)
{
	struct proc_handle *h = luaL_checkudata(L, 1, PROC_MT);
	lua_pushboolean(L, !h->proc || mlx_proc_finished(h->proc));
	return 1;
}

/* h:close() -> true; stops the child if it runs and waits for it */
static int proc_close(lua_State *L)
{
	release(L, luaL_checkudata(L, 1, PROC_MT), true);
	lua_pushboolean(L, 1);
	return 1;
}

static int proc_gc(lua_State *L)
{
	release(L, luaL_checkudata(L, 1, PROC_MT), false);
	return 0;
}

static int proc_tostring(lua_State *L)
{
	struct proc_handle *h = luaL_checkudata(L, 1, PROC_MT);
	if (!h->proc)
		lua_pushliteral(L, "mlx.Proc (closed)");
	else
		lua_pushfstring(L, "mlx.Proc (pid %d, %s)", (int)h->pid,
		                mlx_proc_finished(h->proc) ? "finished" : "running");
	return 1;
}

static const luaL_Reg proc_functions[] = {
	{"run", proc_run},
	{"spawn", proc_spawn},
	{"wait_any", proc_wait_any},
	{"quote", proc_quote},
	{NULL, NULL},
};

static const luaL_Reg proc_methods[] = {
	{"wait", proc_wait},
	{"kill", proc_kill},
	{"pid", proc_pid},
	{"finished", proc_finished},
	{"close", proc_close},
	{NULL, NULL},
};

static const luaL_Reg proc_metamethods[] = {
	{"__gc", proc_gc},
	{"__close", proc_close},
	{"__tostring", proc_tostring},
	{"__index", NULL},
	{NULL, NULL},
};

int luaopen_mlx_proc(lua_State *L)
{
	if (luaL_newmetatable(L, PROC_MT)) {
		luaL_setfuncs(L, proc_metamethods, 0);
		luaL_newlib(L, proc_methods);
		lua_setfield(L, -2, "__index");
	}
	lua_pop(L, 1);
	if (lua_getfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY) == LUA_TNIL) {
		struct proc_registry *r = lua_newuserdatauv(L, sizeof *r, 0);
		memset(r, 0, sizeof *r);
		if (luaL_newmetatable(L, REGISTRY_MT)) {
			lua_pushcfunction(L, registry_gc);
			lua_setfield(L, -2, "__gc");
		}
		lua_setmetatable(L, -2);
		lua_setfield(L, LUA_REGISTRYINDEX, REGISTRY_KEY);
	}
	lua_pop(L, 1);
	luaL_newlib(L, proc_functions);
	return 1;
}
