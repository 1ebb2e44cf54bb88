-- The documentation's links and the commands it tells users to type from a
-- checkout resolve: every relative link of README.md and docs/*.md names a
-- file that exists (and, with #anchor, a heading of it), and every repository
-- path on a `build/mlx` line of a shell example exists. One TAP line per file.
-- Run by the built mlx: mlx lua tests/docs/test_links.lua SOURCE_ROOT
local fs = require "mlx.fs"

local root = assert(arg[1], "usage: mlx lua tests/docs/test_links.lua SOURCE_ROOT")

local function read(path)
  local f = assert(io.open(path, "rb"))
  local text = f:read("a")
  f:close()
  return text
end

local function exists(path)
  return fs.stat(path) ~= nil
end

local function dir_of(path)
  return path:match("^(.*)/[^/]*$") or "."
end

-- The anchor GitHub gives a heading: lower case, punctuation dropped,
-- spaces as dashes; repeated headings get -1, -2 ...
local function anchors(text)
  local set, seen = {}, {}
  local in_fence = false
  for line in (text .. "\n"):gmatch("(.-)\n") do
    if line:match("^```") then in_fence = not in_fence end
    local heading = not in_fence and line:match("^#+%s+(.-)%s*#*%s*$")
    if heading then
      local slug = heading:lower():gsub("`", ""):gsub("[^%w%s_%-]", ""):gsub("%s", "-")
      local n = seen[slug]
      set[n and (slug .. "-" .. n) or slug] = true
      seen[slug] = (n or 0) + 1
    end
  end
  return set
end

-- The top-level entries of the repository, so that a path on a build/mlx
-- line is told from a file the example itself creates (count.lua, data/).
local top = {}
for _, name in ipairs(fs.list(root) or {}) do top[name] = true end

local function is_repo_path(token)
  local first = token:match("^([^/]+)/")
  return first ~= nil and first ~= "build" and top[first] == true and not token:find("[*?]")
end

-- Returns a list of problems of one markdown file.
local function check(rel)
  local path = root .. "/" .. rel
  local text = read(path)
  local problems = {}
  local in_fence, fence_lang = false, nil
  local n = 0
  for line in (text .. "\n"):gmatch("(.-)\n") do
    n = n + 1
    local fence = line:match("^```(%S*)")
    if fence then
      in_fence = not in_fence
      fence_lang = in_fence and fence or nil
    elseif in_fence then
      if (fence_lang == "sh" or fence_lang == "bash" or fence_lang == "") and line:find("build/mlx", 1, true) then
        local words = {}
        for w in line:gsub("#.*$", ""):gmatch("%S+") do words[#words + 1] = w end
        local dir = "."
        for i, w in ipairs(words) do
          if w == "-C" and words[i + 1] then dir = words[i + 1] end
        end
        for i, w in ipairs(words) do
          if is_repo_path(w) and not exists(root .. "/" .. w) then
            problems[#problems + 1] = ("%s:%d: %s does not exist"):format(rel, n, w)
          end
          -- The FILE of `build/mlx -C DIR recipe FILE`, inside DIR.
          if words[i - 1] == "recipe" and dir ~= "." and is_repo_path(dir) then
            local file = dir .. "/" .. w
            if not exists(root .. "/" .. file) then
              problems[#problems + 1] = ("%s:%d: %s does not exist"):format(rel, n, file)
            end
          end
        end
      end
    else
      -- Links outside code spans: [text](target).
      local plain = line:gsub("`[^`]*`", "")
      for target in plain:gmatch("%]%(([^)%s]+)%)") do
        if not target:match("^%a[%w+.-]*:") then -- not https:, mailto: ...
          local file, anchor = target:match("^([^#]*)#?(.*)$")
          local resolved = file == "" and path or (dir_of(path) .. "/" .. file)
          if not exists(resolved) then
            problems[#problems + 1] = ("%s:%d: link to %s: no such file"):format(rel, n, target)
          elseif anchor ~= "" and resolved:match("%.md$") and not anchors(read(resolved))[anchor] then
            problems[#problems + 1] = ("%s:%d: link to %s: no such heading"):format(rel, n, target)
          end
        end
      end
    end
  end
  return problems
end

local files = { "README.md" }
local docs = {}
for _, name in ipairs(fs.list(root .. "/docs") or {}) do
  if name:match("%.md$") then docs[#docs + 1] = "docs/" .. name end
end
table.sort(docs)
for _, f in ipairs(docs) do files[#files + 1] = f end

print("1.." .. #files)
local failed = 0
for i, rel in ipairs(files) do
  local problems = check(rel)
  if #problems == 0 then
    print(("ok %d - %s: links and paths resolve"):format(i, rel))
  else
    failed = failed + 1
    print(("not ok %d - %s"):format(i, rel))
    for _, p in ipairs(problems) do print("#   " .. p) end
  end
end
os.exit(failed == 0 and 0 or 1)
