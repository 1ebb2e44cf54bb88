-- mlx hash: SHA-256 of files, printed exactly as sha256sum prints them.
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
  summary = "print SHA-256 digests of files, as sha256sum does",
  usage = "mlx hash PATH...",
  description = [[
Prints one line per file, "<sha256>  <path>", byte for byte as sha256sum
prints it, so either tool can check the other's output. A file that cannot be
read is reported and the others are still hashed; the exit code is then 2.]],
  args = { min = 1, name = "at least one PATH" },
  main = function(_, paths)
    local code = ui.EXIT.OK
    for _, path in ipairs(paths) do
      local hex, err = hash.file(path)
      if hex then
        ui.out(sha256sum_line(hex, path))
      else
        ui.error(err)
        code = ui.EXIT.USAGE
      end
    end
    return code
  end,
}
