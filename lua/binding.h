/* binding.h — the helper layer of the lua/l_*.c bindings, as lauxlib is for
 * Lua's own libraries: the luaopen_* entry points the host registers, the
 * conversion of a core failure into Lua's "fail, message, code" convention
 * (as luaL_fileresult), readers of table fields with one error wording, the
 * box that owns C memory while Lua may raise, and number formatting.
 *
 * binding.c is compiled into the binary and into each lazily loaded module
 * (mlx_data.so, mlx_http.so, mlx_git.so); it keeps no state of its own
 * outside the Lua registry. */
#ifndef MLX_BINDING_H
#define MLX_BINDING_H

#include <lua.h>
#include <stddef.h>

#include "err.h"

/* ---- failures of the world ------------------------------------------------ */

/* Pushes nil, err->msg and a short code string ("notfound", "io", "invalid",
 * "nomem", "crypto", "corrupt", "busy", "interrupted"); returns 3. */
int mlx_lua_fail(lua_State *L, const struct mlx_err *err);

/* The code string for an enum mlx_status, as pushed by mlx_lua_fail. */
const char *mlx_lua_status_name(int status);

/* Prints "mlx: warning: MESSAGE" as mlx.ui.warn does (stderr). Cannot
 * fail. */
void mlx_lua_warn(lua_State *L, const char *message);

/* ---- table fields --------------------------------------------------------- *
 *
 * Options and records cross from Lua as tables. The readers below read field
 * key of the table that is argument number arg of the running C function
 * (an index from the bottom of the stack, as luaL_check* take). A nil field
 * gives the default; an absent or nil argument reads as a table without
 * fields (an omitted options table); any other argument that is not a table
 * raises luaL_checktype's error. A field of the wrong type raises, always in
 * the same words (see mlx_lua_field_error):
 *
 *     bad argument #2 to 'open' (field 'jobs' must be an integer, not 'four')
 *
 * Strings are returned as pointers into the table, valid while the table is
 * reachable (the caller's argument, for the call's duration); nothing is left
 * on the stack. */

/* Raises "bad argument #arg to 'FN' (field 'name' must be WHAT, not VALUE)",
 * VALUE describing the value at stack index idx: nil, true, 42, 'text' (cut
 * at 40 bytes), or "a table", "a function"… name may be a path such as
 * "stdin.file" or "argv[2]" for a value found below the field itself. Never
 * returns (declared int to be used as "return mlx_lua_field_error(…)"). */
int mlx_lua_field_error(lua_State *L, int arg, const char *name, const char *what, int idx);

/* t.key as a string, or NULL when nil. With len NULL the string must not
 * hold a NUL byte ("a string without NUL bytes"): C would cut it short. */
const char *mlx_lua_optfield_string(lua_State *L, int arg, const char *key, size_t *len);

/* t.key as an integer (a float with an exact integer value is accepted, as
 * lua_tointegerx does), or dflt when nil. */
lua_Integer mlx_lua_optfield_integer(lua_State *L, int arg, const char *key, lua_Integer dflt);

/* t.key as a number, or dflt when nil. NaN is refused ("a number"). */
lua_Number mlx_lua_optfield_number(lua_State *L, int arg, const char *key, lua_Number dflt);

/* t.key as 0 or 1, or dflt when nil. Only true and false are booleans: a
 * string "false" or a number is refused rather than read as true. */
int mlx_lua_optfield_boolean(lua_State *L, int arg, const char *key, int dflt);

/* If t.key is a table, pushes it and returns its (absolute) stack index; if
 * nil, pushes nothing and returns 0. */
int mlx_lua_optfield_table(lua_State *L, int arg, const char *key);

/* Raises "bad argument #arg to 'FN' (unknown field 'name')" for the first
 * key of the table at arg that is not in known (a NULL-terminated list) and
 * is not an integer from 1 to npositional (the array part a table such as
 * {PROGRAM, ARG…, cwd = …} carries). Does nothing if arg is none or nil. */
void mlx_lua_check_fields(lua_State *L, int arg, const char *const known[], lua_Integer npositional);

/* The same for a table found inside argument arg, at stack index t, whose
 * path is name ("stdin"): raises "… (unknown field 'stdin.tee')". */
void mlx_lua_check_subfields(lua_State *L, int arg, int t, const char *name, const char *const known[]);

/* ---- C memory while Lua may raise ------------------------------------------ */

/* Frees what a box holds. It gets the box's contents, which are all zero if
 * nothing was put there, and must then do nothing. */
typedef void (*mlx_lua_release)(void *contents);

/* Pushes a box — a userdata of size bytes, zeroed — that owns C memory while
 * Lua runs: core results put in it (lists, text, a query) are freed by
 * release when the box is collected or closed, so that an error raised by
 * Lua (out of memory while copying them into tables, a type error) cannot
 * leak them. Returns the contents. Raises only on out of memory, before
 * anything is owned. */
void *mlx_lua_box(lua_State *L, size_t size, mlx_lua_release release);

/* Releases the contents of the box at idx now and zeroes them, so the box
 * can be filled again; it releases once more only if it was. */
void mlx_lua_box_release(lua_State *L, int idx);

/* ---- progress of long core calls ------------------------------------------- */

/* Calls the Lua function registered as ref (luaL_ref in the registry) with
 * (files, nfiles, bytes, nbytes), from C code running on L's thread while a
 * long core call waits for its workers (a progress report, pool.h). Runs it
 * under lua_pcall, so that nothing unwinds through the waiting C code, and
 * leaves the stack as it was. Returns 0, or 1 when the function raised (an
 * interruption among others): the core call should then stop. */
int mlx_lua_report(lua_State *L, int ref, lua_Integer files, lua_Integer nfiles, lua_Integer bytes,
		   lua_Integer nbytes);

/* Returns mlx.core.interrupted, found in package.loaded without loading
 * anything (NULL in a state without mlx.core), for long core calls to poll
 * between blocks of work: calling it pushes a boolean and allocates
 * nothing, so it is safe while C holds memory or descriptors. */
lua_CFunction mlx_lua_find_interrupted(lua_State *L);

/* ---- numbers as text -------------------------------------------------------- */

/* Enough for any number mlx_lua_number_text writes, with its NUL. */
#define MLX_LUA_NUMBER_SIZE 32

/* Writes x in the shortest form that reads back as the same double ("0.1",
 * not "0.10000000000000001"; "1e+100"), as text for files and records that
 * people read and tools parse. NaN and infinities as "nan", "inf", "-inf".
 * Returns buf. */
const char *mlx_lua_number_text(double x, char buf[MLX_LUA_NUMBER_SIZE]);

/* ---- entry points ------------------------------------------------------------ */

/* Linked into the mlx binary (libc only). */
int luaopen_mlx_core(lua_State *L);
int luaopen_mlx_fs(lua_State *L);
int luaopen_mlx_proc(lua_State *L);
int luaopen_mlx_stepgraph(lua_State *L);
int luaopen_mlx_watchd(lua_State *L);

/* l_steps.c: adds the functions that declare steps (paths, recipe lines,
 * step sets) to the mlx.stepgraph table on top of the stack. */
void mlx_lua_steps_register(lua_State *L);

/* l_steps.c: true if the value at idx is a step: a table, or a view of a
 * step set. */
int mlx_lua_is_step(lua_State *L, int idx);

/* l_steps.c: the index of the step view at idx (the caller has checked its
 * metatable is its set's), or 0 for a value that is not one. */
lua_Integer mlx_lua_step_view_index(lua_State *L, int idx);

/* In mlx_data.so, loaded on first use (OpenSSL, SQLite, jansson). */
int luaopen_mlx_data(lua_State *L);
int luaopen_mlx_hash(lua_State *L);
int luaopen_mlx_json(lua_State *L);

/* In mlx_data.so: the open runs database of the mlx.RunDb at idx (raises if
 * it is not one, or is closed), for bindings sharing its connection. */
struct mlx_rundb;
struct mlx_rundb *mlx_lua_check_rundb(lua_State *L, int idx);
int luaopen_mlx_modeldb(lua_State *L);

/* In mlx_data.so: pushes an mlx.FileHashes (mlx.lockindex) indexing the
 * hashed files of list, whose contents it takes (list is left empty).
 * Returns 1, or what mlx_lua_fail pushes when memory runs out. */
struct mlx_filelist;
int mlx_lua_push_filehashes(lua_State *L, struct mlx_filelist *list);

/* In mlx_data.so: the counting pass of mlx.check (libcsv). */
int luaopen_mlx_datacheck(lua_State *L);

#endif
