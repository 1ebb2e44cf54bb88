/* binding.h — what every lua/l_*.c binding shares: the luaopen_* entry points
 * the host registers, and the conversion of a core failure into Lua's
 * "fail, message, code" convention (as luaL_fileresult). */
#ifndef MLX_BINDING_H
#define MLX_BINDING_H

#include <lua.h>

#include "err.h"

/* Pushes nil, err->msg and a short code string ("notfound", "io", "invalid",
 * "nomem", "crypto", "corrupt", "busy", "interrupted"); returns 3. */
int mlx_lua_fail(lua_State *L, const struct mlx_err *err);

/* The code string for an enum mlx_status, as pushed by mlx_lua_fail. */
const char *mlx_lua_status_name(int status);

/* Linked into the mlx binary (libc only). */
int luaopen_mlx_core(lua_State *L);
int luaopen_mlx_fs(lua_State *L);
int luaopen_mlx_proc(lua_State *L);

/* In mlx_data.so, loaded on first use (OpenSSL, SQLite, jansson). */
int luaopen_mlx_data(lua_State *L);
int luaopen_mlx_hash(lua_State *L);
int luaopen_mlx_json(lua_State *L);

/* In mlx_data.so: the open runs database of the mlx.RunDb at idx (raises if
 * it is not one, or is closed), for bindings sharing its connection. */
struct mlx_rundb;
struct mlx_rundb *mlx_lua_check_rundb(lua_State *L, int idx);
int luaopen_mlx_modeldb(lua_State *L);

#endif
