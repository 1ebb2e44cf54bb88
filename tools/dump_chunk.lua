-- Compiles a Lua file to bytecode on stdout, keeping its debug information
-- and giving it the chunk name it would have as source, so tracebacks of
-- the embedded stdlib still name stdlib/mlx/....lua and their lines.
-- usage: lua5.4 tools/dump_chunk.lua FILE CHUNKNAME
local path, chunkname = arg[1], arg[2]
local f = assert(io.open(path, "rb"))
local source = f:read("a")
f:close()
local chunk = assert(load(source, chunkname, "t"))
io.stdout:write(string.dump(chunk, false))
