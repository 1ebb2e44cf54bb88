-- mlx hash: SHA-256 of files, printed exactly as sha256sum prints them, and
-- of directories (their manifest id).
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local ui = require "mlx.ui"

-- sha256sum's escaping: a name with a backslash or newline gets its line
-- prefixed with "\" and those characters escaped, so every line parses.
local function sha256sum_line(hex, path)
  if path:find("[\\\n\r]") then
    local escaped = path:gsub("\\", "\\\\"):gsub("\n", "\\n"):gsub("\r", "\\r")
    return "\\" .. hex .. "  " .. escaped
  end
  return hex .. "  " .. path
end

return {
  summary = "print SHA-256 digests of files (as sha256sum) and directories",
  usage = "mlx hash [-j N] [--manifest] PATH...",
  description = [[
Prints one line per file, "<sha256>  <path>", byte for byte as sha256sum
prints it (a name with a backslash or newline escaped as sha256sum does),
so sha256sum -c can check mlx's output and the other way round. For a directory it
prints the id of its manifest, "<sha256>  <path>/  (N files, B bytes)": the
SHA-256 of one line per regular file below it, sorted by path,
"<sha256> <size> <644|755> <relative path>" (--manifest prints that text
instead). Files of a directory are hashed in parallel threads. Symbolic
links, fifos and devices are refused, never followed or waited on. A path
that cannot be hashed is reported and the others are still hashed; the exit
code is then 2.]],
  options = {
    require("mlx.cli").option("jobs", { help = "hash with N threads (default: one per CPU)" }),
    { "manifest", help = "for a directory, print its manifest" },
  },
  args = { min = 1, name = "at least one PATH" },
  main = function(opts, paths)
    local code = ui.EXIT.OK
    for _, path in ipairs(paths) do
      local st = fs.stat(path)
      if st and st.type == "directory" then
        local bar <close> = require("mlx.progress").new("hashing")
        local id, size, files, manifest = hash.dir(path, { jobs = opts.jobs, progress = bar.report })
        bar:done()
        if not id then
          ui.error(size)
          code = ui.EXIT.USAGE
        elseif opts.manifest then
          io.stdout:write(manifest)
        else
          ui.out(("%s  %s/  (%d file%s, %d bytes)"):format(id, path:gsub("/+$", ""), files,
            files == 1 and "" or "s", size))
        end
      else
        local hex, err = hash.file(path)
        if hex then
          ui.out(sha256sum_line(hex, path))
        else
          ui.error(err)
          code = ui.EXIT.USAGE
        end
      end
    end
    return code
  end,
}
