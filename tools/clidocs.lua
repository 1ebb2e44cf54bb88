-- tools/clidocs.lua: docs/cli.md's command reference and the man page, made
-- from the command declarations (stdlib/mlx/cli/*.lua), so that usage and
-- options are written once. Run by the built mlx:
--
--   mlx lua tools/clidocs.lua build SRC_CLI_MD OUT_CLI_MD OUT_MAN   (meson, at build time)
--   mlx lua tools/clidocs.lua check DOCS_DIR    (a TAP test: the committed files are current)
--   mlx lua tools/clidocs.lua update DOCS_DIR   (rewrite docs/cli.md and docs/mlx.1)
--
-- docs/cli.md is hand-written except between the two markers below: the
-- text before them (title, synopsis, conventions) and after them (exit
-- codes, environment, renamed options) is kept, and it is also what the man
-- page says in DESCRIPTION and in the sections after COMMANDS.
local cli = require "mlx.cli"
local core = require "mlx.core"
local fs = require "mlx.fs"

local BEGIN = "<!-- Generated from the command declarations (stdlib/mlx/cli/*.lua) by tools/clidocs.lua:"
  .. " edit those, then run 'meson compile -C build clidocs-update'. -->"
local END = "<!-- End of the generated reference. -->"

-- ---- the declarations as blocks of text -----------------------------------

-- The description of a declaration as blocks: {kind = "text"|"pre", lines}.
-- Lines indented by two spaces or more are preformatted (examples, lists);
-- the others are running text, re-flowed by each output format.
local function blocks(description)
  local out = {}
  if not description then return out end
  local current
  for line in (description:gsub("%s+$", "") .. "\n"):gmatch("(.-)\n") do
    if line:match("^%s*$") then
      current = nil
    else
      local kind = line:match("^  ") and "pre" or "text"
      if not current or current.kind ~= kind then
        current = { kind = kind, lines = {} }
        out[#out + 1] = current
      end
      current.lines[#current.lines + 1] = line
    end
  end
  return out
end

-- A summary as a sentence: "store files" → "Store files."
local function sentence(text)
  text = text:gsub("^%l", string.upper)
  if not text:match("[.!?]$") then text = text .. "." end
  return text
end

-- Every command and subcommand, in the order the reference lists them.
local function entries()
  local out = {}
  for _, name in ipairs(cli.builtin_names()) do
    local command = cli.find(name)
    out[#out + 1] = { path = name, decl = command, level = 3 }
    for _, sub in ipairs(command.subcommands or {}) do
      out[#out + 1] = { path = name .. " " .. sub.name, decl = sub, level = 4 }
    end
  end
  return out
end

-- ---- Markdown ------------------------------------------------------------------

-- Escapes running text for Markdown, leaving `code spans` as they are.
local function md_escape(text, in_table)
  local out = {}
  local i = 1
  while i <= #text do
    local a, b = text:find("`[^`]+`", i)
    local plain = text:sub(i, (a or #text + 1) - 1)
    plain = plain:gsub("\\", "\\\\"):gsub("%*", "\\*"):gsub("<", "\\<")
    -- An underscore inside a word (MLX_PATH) is never emphasis.
    plain = plain:gsub("()_()", function(p)
      local before, after = plain:sub(p - 1, p - 1), plain:sub(p + 1, p + 1)
      if before:match("%w") and after:match("%w") then return "_" end
      return "\\_"
    end)
    if in_table then plain = plain:gsub("|", "\\|") end
    out[#out + 1] = plain
    if not a then break end
    local code = text:sub(a, b)
    if in_table then code = code:gsub("|", "\\|") end
    out[#out + 1] = code
    i = b + 1
  end
  return table.concat(out)
end

local function md_spelling(spec)
  if spec.retired then return "`-" .. spec.short .. "` (retired)" end
  local value = spec.arg and (" " .. spec.arg) or ""
  local long = "`--" .. spec[1] .. value .. "`"
  return spec.short and ("`-" .. spec.short .. value .. "`, " .. long) or long
end

local function md_options(lines, specs)
  if not specs or #specs == 0 then return end
  lines[#lines + 1] = "| option | meaning |"
  lines[#lines + 1] = "|---|---|"
  for _, spec in ipairs(specs) do
    lines[#lines + 1] = ("| %s | %s |"):format(md_spelling(spec), md_escape(spec.retired or spec.help or "", true))
  end
  lines[#lines + 1] = ""
end

local function md_entry(lines, e)
  lines[#lines + 1] = ("%s mlx %s"):format(("#"):rep(e.level), e.path)
  lines[#lines + 1] = ""
  for _, usage in ipairs(cli.usage_lines(e.path, e.decl)) do lines[#lines + 1] = "    " .. usage end
  lines[#lines + 1] = ""
  if e.decl.summary then
    lines[#lines + 1] = md_escape(sentence(e.decl.summary))
    lines[#lines + 1] = ""
  end
  for _, block in ipairs(blocks(e.decl.description)) do
    if block.kind == "pre" then
      for _, line in ipairs(block.lines) do lines[#lines + 1] = "  " .. line end
    else
      -- Line by line, as declared; a line must not start a list, a
      -- heading or a quote.
      for _, line in ipairs(block.lines) do
        line = md_escape(line)
        if line:match("^[-+#>=]") then
          line = "\\" .. line
        elseif line:match("^%d+[.)]") then
          line = line:gsub("^(%d+)([.)])", "%1\\%2")
        end
        lines[#lines + 1] = line
      end
    end
    lines[#lines + 1] = ""
  end
  md_options(lines, e.decl.options)
end

-- The generated part of docs/cli.md, between the markers.
local function markdown_reference()
  local lines = { "## Global options", "" }
  md_options(lines, cli.global_options)
  lines[#lines + 1] = "Every command also takes `-h`/`--help` (its help, as `mlx help COMMAND` prints it) and"
  lines[#lines + 1] = "`--debug` after its name (`mlx recipe --debug FILE`), unless it gives `--debug` a meaning of its own."
  lines[#lines + 1] = ""
  lines[#lines + 1] = "## Commands"
  lines[#lines + 1] = ""
  for _, e in ipairs(entries()) do md_entry(lines, e) end
  while lines[#lines] == "" do lines[#lines] = nil end
  return table.concat(lines, "\n") .. "\n"
end

-- Splits docs/cli.md into the hand-written text before and after the markers.
local function split(text, where)
  local a, b = text:find(BEGIN, 1, true)
  local c, d = text:find(END, 1, true)
  if not a or not c or c < b then
    error(("%s: the markers of the generated reference are missing:\n%s\n...\n%s"):format(where, BEGIN, END), 0)
  end
  return text:sub(1, a - 1), text:sub(d + 1)
end

local function markdown(source, where)
  local head, tail = split(source, where)
  return head .. BEGIN .. "\n\n" .. markdown_reference() .. "\n" .. END .. tail
end

-- ---- the man page ----------------------------------------------------------

local function roff_escape(text)
  return (text:gsub("\\", "\\e"):gsub("%-", "\\-"))
end

-- A line of roff text; one starting with . or ' would be a request.
local function roff_line(text)
  if text:match("^[.']") then return "\\&" .. text end
  return text
end

-- Hand-written Markdown inline text as roff: `code` bold, [text](link) text.
local function roff_inline(text)
  local out = {}
  local i = 1
  while i <= #text do
    local a, b = text:find("`[^`]+`", i)
    local plain = text:sub(i, (a or #text + 1) - 1)
    plain = plain:gsub("%[([^%]]+)%]%([^)]+%)", "%1"):gsub("%*%*([^*]+)%*%*", "%1")
    plain = plain:gsub("\\([%p])", "%1")
    out[#out + 1] = roff_escape(plain)
    if not a then break end
    out[#out + 1] = "\\fB" .. roff_escape(text:sub(a + 1, b - 1)) .. "\\fR"
    i = b + 1
  end
  return table.concat(out)
end

-- Hand-written Markdown (paragraphs, tables, indented code, ## headings) as
-- roff; a "## Heading" becomes a section named in capitals.
local function roff_from_markdown(lines, text)
  local paragraph = {}
  local function flush()
    if #paragraph > 0 then
      lines[#lines + 1] = ".PP"
      lines[#lines + 1] = roff_line(roff_inline(table.concat(paragraph, " ")))
      paragraph = {}
    end
  end
  local in_code = false
  for line in (text .. "\n"):gmatch("(.-)\n") do
    local heading = line:match("^##+ (.+)$")
    if heading then
      flush()
      lines[#lines + 1] = ('.SH "%s"'):format(roff_escape(heading:upper()))
    elseif line:match("^|%-") then
      -- the separator row of a table
    elseif line:match("^|") then
      flush()
      local cells = {}
      for cell in line:gsub("\\|", "\1"):gmatch("|%s*([^|]-)%s*%f[|]") do cells[#cells + 1] = cell:gsub("\1", "|") end
      local first = cells[1] or ""
      if first ~= "option" and first ~= "code" and first ~= "variable" and first ~= "old" then
        lines[#lines + 1] = ".TP"
        lines[#lines + 1] = roff_line(roff_inline(first))
        lines[#lines + 1] = roff_line(roff_inline(table.concat(cells, "; ", 2)))
      end
    elseif line:match("^    ") then
      flush()
      if not in_code then lines[#lines + 1] = ".PP" lines[#lines + 1] = ".nf" end
      in_code = true
      lines[#lines + 1] = roff_line(roff_escape(line:sub(5)))
    elseif line:match("^%s*$") then
      flush()
      if in_code then lines[#lines + 1] = ".fi" in_code = false end
    else
      if in_code then lines[#lines + 1] = ".fi" in_code = false end
      paragraph[#paragraph + 1] = line
    end
  end
  flush()
  if in_code then lines[#lines + 1] = ".fi" end
end

local function roff_option(lines, spec)
  if spec.retired then
    lines[#lines + 1] = ".TP"
    lines[#lines + 1] = ("\\fB\\-%s\\fR (retired)"):format(spec.short)
    lines[#lines + 1] = roff_line(roff_escape(spec.retired))
    return
  end
  local value = spec.arg and (" \\fI" .. roff_escape(spec.arg) .. "\\fR") or ""
  local long = "\\fB\\-\\-" .. roff_escape(spec[1]) .. "\\fR" .. value
  lines[#lines + 1] = ".TP"
  lines[#lines + 1] = spec.short and ("\\fB\\-%s\\fR%s, %s"):format(spec.short, value, long) or long
  lines[#lines + 1] = roff_line(roff_escape(spec.help or ""))
end

local function roff_entry(lines, e)
  lines[#lines + 1] = ('.SS "mlx %s"'):format(e.path)
  lines[#lines + 1] = ".nf"
  for _, usage in ipairs(cli.usage_lines(e.path, e.decl)) do lines[#lines + 1] = roff_line(roff_escape(usage)) end
  lines[#lines + 1] = ".fi"
  if e.decl.summary then
    lines[#lines + 1] = ".PP"
    lines[#lines + 1] = roff_line(roff_escape(sentence(e.decl.summary)))
  end
  for _, block in ipairs(blocks(e.decl.description)) do
    lines[#lines + 1] = ".PP"
    if block.kind == "pre" then
      lines[#lines + 1] = ".nf"
      for _, line in ipairs(block.lines) do lines[#lines + 1] = roff_line(roff_escape(line)) end
      lines[#lines + 1] = ".fi"
    else
      lines[#lines + 1] = roff_line(roff_escape(table.concat(block.lines, " ")))
    end
  end
  for _, spec in ipairs(e.decl.options or {}) do roff_option(lines, spec) end
end

local function man(source, where)
  local head, tail = split(source, where)
  -- DESCRIPTION: the hand-written text before the reference, without its
  -- title and the synopsis (which SYNOPSIS says).
  head = head:gsub("^# [^\n]*\n", ""):gsub("^%s*\n", ""):gsub("^    [^\n]*\n", "")
  local version = core.versions().mlx
  local lines = {
    ".\\\" Generated from the command declarations by tools/clidocs.lua; do not edit.",
    ('.TH MLX 1 "" "mlx %s" "User Commands"'):format(version),
    ".SH NAME",
    "mlx \\- a scriptable MLOps engine: recipes in Lua over a fast C core",
    ".SH SYNOPSIS",
    ".B mlx",
    "[\\fIGLOBAL OPTIONS\\fR]",
    ".I COMMAND",
    "[\\fISUBCOMMAND\\fR] [\\fIOPTIONS\\fR] [\\fIARGS\\fR...]",
    ".SH DESCRIPTION",
  }
  roff_from_markdown(lines, head)
  lines[#lines + 1] = ".SH OPTIONS"
  for _, spec in ipairs(cli.global_options) do roff_option(lines, spec) end
  lines[#lines + 1] = ".PP"
  lines[#lines + 1] = "Every command also takes \\fB\\-h\\fR, \\fB\\-\\-help\\fR and, after its name, \\fB\\-\\-debug\\fR."
  lines[#lines + 1] = ".SH COMMANDS"
  for _, e in ipairs(entries()) do roff_entry(lines, e) end
  roff_from_markdown(lines, tail)
  return table.concat(lines, "\n") .. "\n"
end

-- ---- the three ways to run it --------------------------------------------

-- The text of path, or nil and a message.
local function slurp(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text = f:read("a")
  f:close()
  return text
end

local function read(path)
  local text, err = slurp(path)
  if not text then error(err, 0) end
  return text
end

local function write(path, text)
  local ok, err = fs.write(path, text)
  if not ok then error(err, 0) end
end

local mode = arg[1]
if mode == "build" and #arg == 4 then
  local source = read(arg[2])
  write(arg[3], markdown(source, arg[2]))
  write(arg[4], man(source, arg[2]))
elseif mode == "update" and #arg == 2 then
  local md, page = arg[2] .. "/cli.md", arg[2] .. "/mlx.1"
  local source = read(md)
  local new_md, new_page = markdown(source, md), man(source, md)
  for path, text in pairs({ [md] = new_md, [page] = new_page }) do
    local old = slurp(path)
    if old ~= text then
      write(path, text)
      print("updated " .. path)
    end
  end
elseif mode == "check" and #arg == 2 then
  local md, page = arg[2] .. "/cli.md", arg[2] .. "/mlx.1"
  local source = read(md)
  print("1..2")
  local failed = 0
  for i, t in ipairs({ { md, markdown(source, md) }, { page, man(source, md) } }) do
    local committed = slurp(t[1])
    if committed == t[2] then
      print(("ok %d - %s matches the command declarations"):format(i, t[1]))
    else
      failed = failed + 1
      print(("not ok %d - %s differs from what the command declarations make"):format(i, t[1]))
      -- The first line that differs, so that the test log says where.
      local a, b = {}, {}
      for line in ((committed or "") .. "\n"):gmatch("(.-)\n") do a[#a + 1] = line end
      for line in (t[2] .. "\n"):gmatch("(.-)\n") do b[#b + 1] = line end
      for n = 1, math.max(#a, #b) do
        if a[n] ~= b[n] then
          print(("#   line %d, committed: %s"):format(n, a[n] or "(end of file)"))
          print(("#   line %d, generated: %s"):format(n, b[n] or "(end of file)"))
          break
        end
      end
      print("#   run 'meson compile -C build clidocs-update' and commit the result")
    end
  end
  os.exit(failed == 0 and 0 or 1)
else
  io.stderr:write("usage: mlx lua tools/clidocs.lua build SRC_CLI_MD OUT_CLI_MD OUT_MAN | check DOCS_DIR | update DOCS_DIR\n")
  os.exit(2)
end
