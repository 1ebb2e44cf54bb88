/* interrupt.c — turning signals into a Lua error.
 *
 * A signal handler can reach nothing but globals, so this file holds the
 * only two mutable globals of the program: the state to interrupt and the
 * signal received. */
#include "interrupt.h"

#include <signal.h>
#include <string.h>

static lua_State *volatile target_state;
static volatile sig_atomic_t received_signal;

static void raise_interrupted(lua_State *L, lua_Debug *ar)
{
	(void)ar;
	lua_sethook(L, NULL, 0, 0);
	lua_pushliteral(L, MLX_INTERRUPTED_MESSAGE);
	lua_error(L);
}

static void on_signal(int sig)
{
	received_signal = sig;
	/* The next signal of this kind ends the process as it normally would. */
	signal(sig, SIG_DFL);
	/* lua_sethook is async-signal-safe by design (see lua.c's laction). */
	lua_sethook(target_state, raise_interrupted, LUA_MASKCALL | LUA_MASKRET | LUA_MASKCOUNT, 1);
}

void mlx_interrupt_install(lua_State *L)
{
	target_state = L;
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = 0; /* no SA_RESTART: blocking calls return EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
}

int mlx_interrupt_signal(void)
{
	return received_signal;
}
