/* interrupt.h — SIGINT and SIGTERM become a Lua error "interrupted".
 *
 * As in Lua's own lua.c, the signal handler only sets a hook; the hook raises
 * the error at the next Lua instruction, where it is safe to unwind. A second
 * signal while the first is pending kills mlx the default way. */
#ifndef MLX_INTERRUPT_H
#define MLX_INTERRUPT_H

#include <lua.h>

/* The error value raised on interruption. */
#define MLX_INTERRUPTED_MESSAGE "interrupted"

/* Installs the handlers for SIGINT and SIGTERM, targeting L. Without
 * SA_RESTART, so a blocking system call in C returns EINTR to its caller,
 * which then returns to Lua where the hook fires. */
void mlx_interrupt_install(lua_State *L);

/* Returns the number of the signal received (SIGINT or SIGTERM), or 0. */
int mlx_interrupt_signal(void);

#endif
