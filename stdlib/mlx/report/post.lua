--- mlx.report.post: one comment of `mlx report --post` on a GitHub pull
--- request or a GitLab merge request, created the first time and updated
--- after: the comment is found by a hidden marker in its body. Everything
--- comes from CI's standard environment; the forge's REST API is reached
--- through mlx.http. The token is sent in a header only, and never said.
local http = require "mlx.http"
local json = require "mlx.json"

local M = {}

--- The hidden marker that identifies mlx's comment.
M.MARKER = "<!-- mlx-report -->"

-- Pages of comments read at most while looking for the marker.
local MAX_PAGES = 50
local PER_PAGE = 100

local function github_pr(getenv)
  local n = getenv("MLX_PR_NUMBER")
  if n then return n end
  local event = getenv("GITHUB_EVENT_PATH")
  if event then
    local doc = json.load(event)
    local pr = type(doc) == "table" and (doc.pull_request or (doc.issue and doc.issue.pull_request and doc.issue))
    if type(pr) == "table" and math.tointeger(pr.number) then return tostring(math.tointeger(pr.number)) end
  end
  return (getenv("GITHUB_REF") or ""):match("^refs/pull/(%d+)/")
end

--- Returns where to post from the environment (getenv, default os.getenv):
--- {forge = "github"|"gitlab", api, token, thread (the URL of the
--- comments), comment (a function id → the URL of one comment), headers};
--- nil and a message naming the missing variable, "invalid". GitHub:
--- GITHUB_TOKEN, GITHUB_REPOSITORY, the pull request's number from
--- GITHUB_EVENT_PATH or GITHUB_REF (MLX_PR_NUMBER wins), GITHUB_API_URL
--- (default https://api.github.com). GitLab: GITLAB_TOKEN, CI_API_V4_URL,
--- CI_PROJECT_ID, CI_MERGE_REQUEST_IID. forge: "github", "gitlab" or nil
--- (GitHub Actions when GITHUB_ACTIONS or GITHUB_REPOSITORY is set, else
--- GitLab CI when GITLAB_CI or CI_PROJECT_ID is).
function M.target(forge, getenv)
  getenv = getenv or os.getenv
  if not forge then
    if getenv("GITHUB_ACTIONS") or getenv("GITHUB_REPOSITORY") then
      forge = "github"
    elseif getenv("GITLAB_CI") or getenv("CI_PROJECT_ID") then
      forge = "gitlab"
    else
      return nil, "--post: not in GitHub Actions or GitLab CI (set GITHUB_REPOSITORY or CI_PROJECT_ID; "
        .. "see docs/reports.md)", "invalid"
    end
  end
  local function need(name)
    local v = getenv(name)
    if v == nil or v == "" then error({ missing = name }) end
    return v
  end
  local ok, t = pcall(function()
    if forge == "github" then
      local api = (getenv("GITHUB_API_URL") or "https://api.github.com"):gsub("/+$", "")
      local repo = need("GITHUB_REPOSITORY")
      local token = need("GITHUB_TOKEN")
      local pr = github_pr(getenv) or error({ missing = "the pull request number (GITHUB_EVENT_PATH, GITHUB_REF "
        .. "refs/pull/N/merge or MLX_PR_NUMBER; is this a pull_request event?)" })
      local base = ("%s/repos/%s"):format(api, repo)
      return {
        forge = forge, api = api, token = token, number = pr,
        thread = ("%s/issues/%s/comments"):format(base, pr),
        comment = function(id) return ("%s/issues/comments/%s"):format(base, id) end,
        update_method = "PATCH",
        headers = { Authorization = "Bearer " .. token, Accept = "application/vnd.github+json",
          ["X-GitHub-Api-Version"] = "2022-11-28" },
      }
    end
    local api = need("CI_API_V4_URL"):gsub("/+$", "")
    local project = need("CI_PROJECT_ID")
    local iid = need("CI_MERGE_REQUEST_IID")
    local token = need("GITLAB_TOKEN")
    local thread = ("%s/projects/%s/merge_requests/%s/notes"):format(api, project, iid)
    return {
      forge = forge, api = api, token = token, number = iid, thread = thread,
      comment = function(id) return ("%s/%s"):format(thread, id) end,
      update_method = "PUT",
      headers = { ["PRIVATE-TOKEN"] = token },
    }
  end)
  if not ok then
    if type(t) == "table" and t.missing then
      return nil, ("--post to %s: %s is not set"):format(forge == "github" and "GitHub" or "GitLab", t.missing),
        "invalid"
    end
    error(t, 0)
  end
  return t
end

-- What to check when the forge refuses a request, by forge and status.
local ADVICE = {
  github = {
    [401] = "check GITHUB_TOKEN",
    [403] = "the token may not write comments: give the job 'permissions: pull-requests: write'",
    [404] = "check GITHUB_REPOSITORY and the pull request's number (MLX_PR_NUMBER)",
  },
  gitlab = {
    [401] = "check GITLAB_TOKEN (a project or personal access token with the api scope)",
    [403] = "GITLAB_TOKEN may not write notes: it needs the api scope (a job token cannot)",
    [404] = "check CI_PROJECT_ID and CI_MERGE_REQUEST_IID",
  },
}

-- A failed request as one line, without the token even if the forge
-- quoted it back.
local function failure(t, what, res, err, code)
  local message
  if res then
    local doc = res:json()
    local said = type(doc) == "table" and type(doc.message) == "string" and doc.message or ""
    message = ("%s: %d %s%s"):format(what, res.status, res.reason or "", said ~= "" and (": " .. said) or "")
    code = (res.status == 401 or res.status == 403 or res.status == 404) and "invalid" or "http"
    local advice = ADVICE[t.forge] and ADVICE[t.forge][res.status]
    if advice then message = message .. "; " .. advice end
  else
    message = ("%s: %s"):format(what, err)
  end
  local plain = t.token:gsub("%p", "%%%0")
  return nil, (message:gsub(plain, "***")), code
end

--- Finds the comment holding M.MARKER in thread t (from M.target). Returns
--- its id, or false when there is none; nil, message, code on failure.
function M.find(t)
  for page = 1, MAX_PAGES do
    local res, err, code = http.get(t.thread, { headers = t.headers, query = { per_page = PER_PAGE, page = page },
      timeout = 30 })
    if not res or res.status ~= 200 then return failure(t, "listing the comments", res, err, code) end
    local list = res:json()
    if type(list) ~= "table" then return nil, "listing the comments: the answer is not a JSON array", "http" end
    for _, c in ipairs(list) do
      if type(c) == "table" and type(c.body) == "string" and c.body:find(M.MARKER, 1, true) then return c.id end
    end
    -- The forge says whether there is a next page (GitHub: a Link header
    -- with rel="next"; GitLab: X-Next-Page), whatever page size it chose.
    local link, next_page = res.headers["link"] or "", res.headers["x-next-page"] or ""
    if #list == 0 or not (link:find('rel="next"', 1, true) or next_page:match("%d")) then break end
  end
  return false
end

--- Posts body (Markdown; M.MARKER is added if missing) to thread t: updates
--- the comment that holds the marker, else creates one. Returns {action =
--- "created"|"updated", id, url (the comment's web page, when the forge
--- says)}; nil, message, code ("invalid" for a rejected token or an
--- unknown thread).
function M.post(t, body)
  if not body:find(M.MARKER, 1, true) then body = M.MARKER .. "\n" .. body end
  local id, err, code = M.find(t)
  if id == nil then return nil, err, code end
  local res
  if id then
    res, err, code = http.request { method = t.update_method, url = t.comment(id), headers = t.headers,
      json = { body = body }, timeout = 30 }
    if not res or res.status ~= 200 then return failure(t, "updating comment " .. tostring(id), res, err, code) end
  else
    res, err, code = http.post(t.thread, { headers = t.headers, json = { body = body }, timeout = 30 })
    if not res or res.status ~= 201 then return failure(t, "creating the comment", res, err, code) end
  end
  local doc = res:json()
  return { action = id and "updated" or "created", id = type(doc) == "table" and doc.id or id,
    url = type(doc) == "table" and doc.html_url or nil }
end

return M
