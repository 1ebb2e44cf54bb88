--- mlx.progress: a live line on a terminal while long work runs in C —
--- adding, checking out, hashing, checking the store — with files, bytes
--- and rate: `hashing 12345/20000 files, 1.2 GB of 2.3 GB, 340.0 MB/s`.
--- Nothing is shown for work that ends within half a second
--- (MLX_PROGRESS_AFTER seconds, if set), nor where output is not a live
--- terminal (ui.live_terminal: CI, NO_COLOR, TERM=dumb, not a TTY).
local core = require "mlx.core"
local ui = require "mlx.ui"

local M = {}

local Progress = {}
Progress.__index = Progress

--- Returns a progress line for work called verb ("hashing", "adding" …).
--- p.report is nil where no line is shown, else the function to hand to
--- st:progress or hash.dir's progress option; p:done() clears the line,
--- as closing p does.
function M.new(verb)
  local after = tonumber(os.getenv("MLX_PROGRESS_AFTER") or "") or 0.5
  local p = setmetatable({ verb = verb, began = core.clock(), after = after, shown = false }, Progress)
  if ui.live_terminal() then
    p.report = function(files, nfiles, bytes, nbytes) p:draw(files, nfiles, bytes, nbytes) end
  end
  return p
end

function Progress:draw(files, nfiles, bytes, nbytes)
  local elapsed = core.clock() - self.began
  if elapsed < self.after then return end
  local text = ("%s %d/%d files"):format(self.verb, files, nfiles)
  if nbytes > 0 then
    text = text .. (", %s of %s, %s/s"):format(ui.format_size(bytes), ui.format_size(nbytes),
      ui.format_size(math.floor(bytes / elapsed)))
  else
    text = text .. (", %d files/s"):format(math.floor(files / elapsed))
  end
  io.stderr:write("\r\27[K", text)
  io.stderr:flush()
  self.shown = true
end

--- Clears the line, if one was shown.
function Progress:done()
  if self.shown then
    io.stderr:write("\r\27[K")
    io.stderr:flush()
    self.shown = false
  end
end

-- Held as a to-be-closed variable (local bar <close> = progress.new(…)),
-- the line is cleared however the work ends: an error or Ctrl-C then
-- prints its message on a clean line, not after the half-drawn one.
Progress.__close = Progress.done

return M
