--- mlx.redact: hides the secrets that URLs carry, in every message mlx
--- shows and every record it writes (runs.db: a run's command line, params,
--- tags and message). One function, M.text, serves them all; mlx.http's
--- redact is this one.
---
--- Hidden: the password (and user name) of a URL ("https://***@host/"), and
--- the value of each query or fragment parameter whose name is a secret's
--- ("?api_key=***&page=2"). A name is a secret's, compared without regard to
--- case, when it is one of M.NAMES, contains one of M.CONTAINS, or is listed
--- by the project's configuration: `redact = { "my_param" }` in
--- .mlx/config.lua or .mlx/config.local.lua. What a step prints itself (its
--- log, its own events) is its business; what mlx records of it is not.
local M = {}

--- Parameter names that are secrets, whole (lower case).
M.NAMES = {
  "access_token", "api_key", "api-key", "apikey", "auth", "auth_token", "client_secret", "code_verifier",
  "credential", "id_token", "key", "passwd", "password", "private_token", "pwd", "refresh_token", "secret",
  "session", "sessionid", "sig", "signature", "token", "x-amz-credential", "x-amz-security-token",
  "x-amz-signature", "x-api-key", "x-goog-credential", "x-goog-signature",
}

--- Parts of names that make any name containing them a secret's
--- ("github_token", "db_password", "X-Goog-Signature" …).
M.CONTAINS = { "token", "secret", "password", "passwd", "signature", "credential", "api_key", "apikey" }

local MASK = "***"

local secret -- {[lower-case name] = true}, built on first use
local project_names_read = false

local function add_names(list)
  for _, name in ipairs(list) do secret[name:lower()] = true end
end

-- The names the project's configuration adds. The configuration is read
-- as mlx reads it elsewhere: a Lua chunk without access to anything,
-- returning a table. A broken file is reported where it is used for its
-- other settings; a wrong `redact` field is warned about here, once.
local function project_names()
  local root = require("mlx.project").find_root()
  if not root then return {} end
  local names = {}
  for _, file in ipairs({ "config.lua", "config.local.lua" }) do
    local path = root .. "/.mlx/" .. file
    local chunk = loadfile(path, "t", {})
    local ok, config = false, nil
    if chunk then ok, config = pcall(chunk) end
    if ok and type(config) == "table" and config.redact ~= nil then
      local list = config.redact
      local valid = type(list) == "table"
      for _, name in ipairs(valid and list or {}) do
        if type(name) ~= "string" or name == "" then valid = false else names[#names + 1] = name end
      end
      if not valid then
        io.stderr:write("mlx: warning: ", path, ": redact must be a list of parameter names,",
          " e.g. redact = { \"my_param\" }; the valid names in it are used\n")
      end
    end
  end
  return names
end

local function is_secret(name)
  if not secret then
    secret = {}
    add_names(M.NAMES)
  end
  if not project_names_read then
    project_names_read = true
    add_names(project_names())
  end
  name = name:lower()
  if secret[name] then return true end
  for _, part in ipairs(M.CONTAINS) do
    if name:find(part, 1, true) then return true end
  end
  return false
end

--- Adds parameter names (a list of strings, any case) to the secrets of
--- this process, beside M.NAMES and the project's `redact`. Returns nothing;
--- a name that is not a non-empty string raises.
function M.add(names)
  assert(type(names) == "table", "redact.add: expected a list of names")
  for _, name in ipairs(names) do
    assert(type(name) == "string" and name ~= "", "redact.add: names must be non-empty strings")
  end
  is_secret("")
  add_names(names)
end

-- Punctuation that ends a value is kept: in "GET …?token=abc: refused" the
-- colon belongs to the message (a value's own ':' or ',' is %-encoded).
local function mask_param(sep, name, value)
  local tail = value:match("[:,.)%]]*$")
  if #value > #tail and is_secret(name) then return sep .. name .. "=" .. MASK .. tail end
end

--- Returns s with the secrets of every URL in it hidden: user names and
--- passwords ("scheme://***@host"), and the values of secret parameters
--- after "?", "&", "#" or ";" ("?token=***"), where a value ends at "&",
--- "#", ";", white space or a quote (trailing ":,.)]" are kept). Any text may be given (a URL, a command
--- line, an error message); text without such parts is returned as it is.
--- A non-string is returned unchanged. Never fails.
function M.text(s)
  if type(s) ~= "string" or not s:find("[?&#;@]") then return s end
  s = s:gsub("(%a[%w+.-]*://)[^/?#@%s\"']*@", "%1" .. MASK .. "@")
  s = s:gsub("([?&#;])([^=&#;?%s\"'<>]+)=([^&#;%s\"'<>]*)", mask_param)
  return s
end

--- Returns url with its secrets hidden, as M.text.
M.url = M.text

return M
