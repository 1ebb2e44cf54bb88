-- release.lua — ship the model if it beats the baseline: compare metrics with
-- a git revision, wait for the model service to be healthy, upload the model
-- and fetch it back verified, register it with a JSON POST, tag the release.
--
--   mlx recipe recipes/examples/release.lua SERVICE_URL [BASELINE_REV]
--
-- Run it from the project (a git repository with metrics.json and
-- model.bin). DEPLOY_TOKEN, if set, is sent as a bearer token; mlx never
-- shows header values in its messages.
local mlx = require "mlx"
local git, hash, http, json = mlx.git, mlx.hash, mlx.http, mlx.json

local service = assert(arg[1], "usage: mlx recipe recipes/examples/release.lua SERVICE_URL [BASELINE_REV]")
local baseline = arg[2] or "main"
local headers = {}
if os.getenv("DEPLOY_TOKEN") then headers.Authorization = "Bearer " .. os.getenv("DEPLOY_TOKEN") end

-- 1. Better than the baseline? metrics.json now, and as it was on `baseline`.
local repo <close> = assert(git.open())
local current = assert(json.load("metrics.json"))
local previous = assert(json.decode(assert(repo:show(baseline, "metrics.json"))))
if current.accuracy < previous.accuracy then
  error(("accuracy %.3f is below %.3f on %s: not deploying"):format(current.accuracy, previous.accuracy, baseline), 0)
end

-- 2. Wait for the service: refused connections and 5xx are retried with
-- exponential backoff (and Retry-After) until it answers 200.
assert(http.get(service .. "/health", { retries = 8, backoff = 0.2, expect = 200 }))

-- 3. Upload the model, streamed from disk, and fetch it back verified by
-- sha256 (the file appears only once complete and matching).
local digest, size = assert(hash.file("model.bin"))
assert(http.put(service .. "/files/model.bin", { body_file = "model.bin", headers = headers, expect = { 200, 201 } }))
assert(http.get(service .. "/files/model.bin", { out_file = "model.check", sha256 = digest, expect = 200 }))
os.remove("model.check")

-- 4. Register the version: POST JSON and check the answer.
local reply = assert(http.post(service .. "/models", {
  json = { name = "iris", sha256 = digest, size = size, accuracy = current.accuracy },
  headers = headers, expect = 201,
}))
local model = assert(reply:json())
assert(model.sha256 == digest, "the service registered a different model")

-- 5. Tag the release in git.
local tag = ("model-v%d"):format(model.version)
assert(repo:tag(tag, {
  message = ("iris v%d: accuracy %.3f, sha256 %s"):format(model.version, current.accuracy, digest),
}))
print(("deployed iris v%d (%s), tagged %s on %s"):format(model.version, digest:sub(1, 12), tag, repo:head().short))
