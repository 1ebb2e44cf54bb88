-- recipes/deploy.lua: deploy the staging version of a model to a model
-- server, and make it production only if it passes every check.
--
--   mlx recipe recipes/deploy.lua -p model=iris -p url=http://127.0.0.1:8080 [-p KEY=VALUE...]
--   mlx recipe recipes/deploy.lua model=iris url=http://127.0.0.1:8080     (the same)
--
-- 1. gate: the staging version's metric (default accuracy, from the run
--    that produced it and the runs that evaluated it) must reach `min` and
--    be no worse than production's by more than `max_drop`;
-- 2. upload it (PUT URL/model; fetched first from the project's remote if
--    the store lacks it, as in a fresh clone) and wait until URL/health
--    reports its sha256;
-- 3. smoke-test the server with the cases of `smoke` (a JSON or Lua file;
--    default: MODEL.smoke.json next to this recipe);
-- 4. move the production alias (recorded in its history) and check that
--    the server still serves it.
-- If a check fails after the upload, everything is rolled back: the alias
-- goes back to its previous version and the previous production model is
-- uploaded again; the recipe then fails (exit 1). A gate failure changes
-- nothing. Run again when staging already is production, it only checks
-- that the server serves production (uploading it if not) and smoke-tests.
--
-- Parameters are declared with mlx.params (-p KEY=VALUE, --params-file);
-- KEY=VALUE words after the recipe set them too, and win. This recipe
-- declares no pipeline: it is plain automation.
local deploy = require "mlx.deploy"
local http = require "mlx.http"
local json = require "mlx.json"
local log = require "mlx.log"
local params = require "mlx.params"
local registry = require "mlx.registry"
local ui = require "mlx.ui"

local here = (arg and arg[0] or ""):match("^(.*)/[^/]*$") or "."

-- The defaults; "" means none. See docs/deploy.md.
local DEFAULTS = {
  model = "",                -- the model's name in the registry (required)
  url = "",                  -- the model server's base URL (required)
  from = "staging",          -- the alias whose version is deployed
  to = "production",         -- the alias moved once every check passed
  metric = "accuracy",       -- the metric the gate compares
  direction = "higher",      -- higher or lower: which values of metric are better
  min = "",                  -- the least (direction=lower: the most) value deployed
  max_drop = 0.0,            -- how much worse than production's the metric may be
  smoke = "",                -- the smoke cases; "": MODEL.smoke.json beside this recipe
  health = "/health",        -- the path of the health check
  upload = "/model",         -- the path a model file is PUT to
  timeout = 30.0,            -- seconds to wait for the server to be healthy
}

-- ---- parameters ---------------------------------------------------------------

local function known_params()
  local names = {}
  for name in pairs(DEFAULTS) do names[#names + 1] = name end
  table.sort(names)
  return table.concat(names, ", ")
end

local function read_params(words)
  local p = params.declare(DEFAULTS)
  for _, word in ipairs(words) do
    local key, value = word:match("^([%w_]+)=(.*)$")
    if not key then ui.usage_error("deploy.lua: expected KEY=VALUE, not '%s' (keys: %s)", word, known_params()) end
    if DEFAULTS[key] == nil then ui.usage_error("deploy.lua: unknown parameter '%s' (keys: %s)", key, known_params()) end
    local typed, why = params.coerce(value, DEFAULTS[key])
    if typed == nil then ui.usage_error("deploy.lua: %s=%s: %s", key, value, why) end
    p[key] = typed
  end
  if p.model == "" or p.url == "" then
    ui.usage_error("deploy.lua: give model=NAME and url=URL (-p or words; keys: %s)", known_params())
  end
  if p.direction ~= "higher" and p.direction ~= "lower" then
    ui.usage_error("deploy.lua: direction must be higher or lower, not '%s'", p.direction)
  end
  if p.min == "" then
    p.min = nil
  else
    p.min = tonumber(p.min) or ui.usage_error("deploy.lua: min must be a number, not '%s'", p.min)
  end
  p.url = p.url:gsub("/+$", "")
  if p.smoke == "" then p.smoke = here .. "/" .. p.model .. ".smoke.json" end
  return p
end

local function load_cases(path)
  local cases, err
  if path:match("%.lua$") then
    local chunk
    chunk, err = loadfile(path)
    if chunk then cases = chunk() end
  else
    cases, err = json.load(path)
  end
  if not cases then ui.usage_error("deploy.lua: cannot read the smoke cases: %s", err) end
  if type(cases) ~= "table" or #cases == 0 then ui.usage_error("deploy.lua: %s holds no smoke cases", path) end
  return cases
end

local P = read_params(arg or {})
local reg, rerr = registry.default()
if not reg then ui.usage_error("deploy.lua: %s", rerr) end
-- A mistyped model name is bad input, said as such: not as a missing
-- smoke file named after it, nor as "nothing to deploy".
local _, merr, mcode = reg:get(P.model)
if mcode == "notfound" or mcode == "invalid" then ui.usage_error("deploy.lua: %s", merr) end
local cases = load_cases(P.smoke)
-- The server's URL may carry a token: what the recipe prints hides it.
local function say(fmt, ...) print(http.redact(fmt:format(...))) end

-- ---- what to deploy -------------------------------------------------------------

local candidate, err, code = reg:get(P.model .. "@" .. P.from)
if not candidate then ui.fail(ui.EXIT.FAILED, "nothing to deploy: %s", err) end
if candidate.type ~= "file" then
  ui.fail(ui.EXIT.FAILED, "%s is a directory; this recipe uploads one model file", candidate.ref)
end
local current
current, err, code = reg:get(P.model .. "@" .. P.to)
if not current and code ~= "notfound" then ui.fail(ui.EXIT.FAILED, "%s", err) end
local redeploy = current ~= nil and current.version == candidate.version
log.params { model = P.model, url = P.url, candidate = candidate.ref, current = current and current.ref or "none" }
say("deploy %s: %s is %s, %s is %s", P.model, P.from, candidate.ref, P.to, current and current.ref or "not set")

-- ---- 1. the gate ------------------------------------------------------------------

-- The gate is mlx.deploy's, the one mlx.gate uses too.
local function gate(c, cur)
  return deploy.gate_check { metric = P.metric, direction = P.direction, min = P.min, max_drop = P.max_drop,
    candidate = c.ref, value = c.metrics[P.metric], run = c.run, baseline = cur and cur.ref,
    base = cur and cur.metrics[P.metric] }
end

if not redeploy then
  for _, v in ipairs({ candidate, current or false }) do
    if v then v.metrics = assert(reg:metrics(v)) end
  end
  local passed, why = gate(candidate, current)
  if not passed then ui.fail(ui.EXIT.FAILED, "gate: %s: not deploying", why) end
  say("gate: passed (%s)", why)
end

-- ---- 2. upload and health -------------------------------------------------------------

local function serving(v)
  return function(res)
    local doc = res:json()
    if doc and doc.sha256 == v.hash then return true end
    return false, ("the server serves %s, not %s"):format(doc and doc.sha256 or "no model", v.hash)
  end
end

-- Makes sure the object of version v is in the local store: a fresh clone
-- (CI) sees the registry through a shared tracking database but holds no
-- objects; they come from the project's default remote, each verified on
-- arrival (mlx.remote.fetch). Returns true or nil, message.
local function ensure_local(v)
  local st <close> = assert(require("mlx.store").open(reg.root))
  if st:has(v.hash) then return true end
  local res, ferr = require("mlx.remote").fetch(reg.root, { targets = { v.ref } })
  if not res then return nil, ("%s is not in the store and cannot be fetched: %s"):format(v.ref, ferr) end
  if #res.missing > 0 or #res.corrupt > 0 then
    return nil, ("%s: the remote %s lacks its object or holds a corrupt one"):format(v.ref, res.remote)
  end
  say("fetched %s from remote %s (%d objects, verified)", v.ref, res.remote, res.sent)
  return true
end

-- Uploads version v and waits until the server says it serves it. Returns
-- the health response; or nil, message, and whether the server took it.
local function upload(v)
  local here_ok, herr = ensure_local(v)
  if not here_ok then return nil, herr, false end
  local file = os.tmpname()
  local ok, uerr = reg:checkout(v.ref, file)
  if ok then
    ok, uerr = http.put(P.url .. P.upload, { body_file = file, headers = { ["X-Model-Version"] = tostring(v.version) },
      expect = 200, timeout = 60 })
  end
  os.remove(file)
  if not ok then return nil, uerr, false end
  local res, herr = deploy.wait_healthy(P.url .. P.health, { timeout = P.timeout, check = serving(v) })
  if not res then return nil, herr, true end
  return res
end

local changed_server, moved_alias = false, false

-- Puts back what this run changed, then fails the recipe.
local function roll_back(reason)
  say("rolling back: %s", reason)
  local problems = {}
  if moved_alias then
    local back, berr = deploy.rollback { name = P.model, alias = P.to }
    if back then
      say("%s: back to %s", P.to, back.version and (P.model .. ":" .. back.version) or "not set")
    else
      problems[#problems + 1] = berr
    end
  end
  if changed_server then
    if current then
      local ok, rerr = upload(current)
      if ok then say("server: serves %s again", current.ref) else problems[#problems + 1] = rerr end
    else
      problems[#problems + 1] = ("no earlier %s model to put back on the server"):format(P.to)
    end
  end
  log.tag("deploy", "rolled back")
  ui.fail(ui.EXIT.FAILED, "%s%s", reason, #problems > 0 and ("; rollback incomplete: " .. table.concat(problems, "; "))
    or " (rolled back)")
end

local health = http.get(P.url .. P.health, { timeout = 10 })
local doc = health and health.status == 200 and health:json()
if doc and doc.sha256 == candidate.hash then
  say("server: already serves %s", candidate.ref)
else
  local ok, uerr, taken = upload(candidate)
  changed_server = ok ~= nil or taken
  if not ok then roll_back(("uploading %s: %s"):format(candidate.ref, uerr)) end
  say("server: serves %s (healthy after %.1f s)", candidate.ref, ok.waited)
end

-- ---- 3. smoke tests -------------------------------------------------------------------

local report = deploy.smoke(P.url, cases)
if not report.ok then
  for _, why in ipairs(report.failures) do say("smoke: FAILED %s", why) end
  roll_back(("smoke tests: %d of %d failed"):format(report.failed, report.total))
end
say("smoke: %d of %d cases passed", report.passed, report.total)

-- ---- 4. promote -------------------------------------------------------------------------

local promoted, perr = deploy.promote { name = P.model, from = P.from, to = P.to, gate = function(c, cur)
  if c.version ~= candidate.version then return false, P.from .. " moved to " .. c.ref .. " meanwhile" end
  return gate(c, cur)
end }
if not promoted then roll_back("promotion failed: " .. perr) end
moved_alias = promoted.moved
local final, ferr = deploy.wait_healthy(P.url .. P.health, { timeout = P.timeout, check = serving(candidate) })
if not final then roll_back("after the promotion: " .. ferr) end
log.tag("deploy", promoted.moved and "promoted" or "unchanged")
if promoted.moved then
  say("%s: %s -> %s", P.to, current and current.ref or "not set", candidate.ref)
else
  say("%s: already %s", P.to, candidate.ref)
end
-- The answer to the first case that sent JSON, as far as the case checked it.
for i, result in ipairs(report.cases) do
  local case = cases[i]
  if case.json ~= nil and type(result.answer) == "table" then
    local shown = result.answer
    if type(case.expect) == "table" then
      shown = {}
      for k in pairs(case.expect) do shown[k] = result.answer[k] end
    end
    say("sample: %s %s -> %s", case.path or "/", json.encode(case.json), json.encode(shown):sub(1, 300))
    break
  end
end
say("deployed %s (sha256 %s) at %s", candidate.ref, candidate.hash:sub(1, 12), P.url)
