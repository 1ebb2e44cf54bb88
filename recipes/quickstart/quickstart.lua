-- The quickstart, end to end: data → split → train → evaluate → gate →
-- register → deploy → verify → promote, reproducibly.
--
--   build/mlx -C recipes/quickstart recipe quickstart.lua [-p lr=0.1] [-p min_accuracy=0.9]
--
-- 1. runs the training pipeline (pipeline.lua): only the steps whose inputs
--    changed run; the rest is up to date or restored from the run-cache;
-- 2. starts the model server (serve.py) on 127.0.0.1, on a free port;
-- 3. deploys the staging model with ../deploy.lua: gate against production,
--    upload, health check, smoke test, promote — or roll back;
-- 4. prints the production version and a sample prediction, and stops the
--    server.
-- This recipe is automation (no pipeline of its own): every step above is a
-- process it runs and checks, so a failure stops it with exit 1.
local mlx = require "mlx"

local params = mlx.params.declare {
  lr = 0.5,             -- the training pipeline's learning rate
  epochs = 500,
  min_accuracy = 0.9,   -- the pipeline's quality gate
  max_drop = 0.02,      -- how much worse than production a deploy may be
}

local MLX = mlx.core.exe_dir .. "/mlx"
local function heading(text) print(("\n== %s"):format(text)) end

heading("train, evaluate, gate and register (pipeline.lua)")
local ok, err = mlx.proc.run {
  MLX, "recipe", "pipeline.lua",
  "-p", "lr=" .. params.lr, "-p", "epochs=" .. params.epochs, "-p", "min_accuracy=" .. params.min_accuracy,
}
if not ok then mlx.ui.fail(mlx.ui.EXIT.FAILED, "the training pipeline failed: %s", err) end

heading("start the model server (serve.py)")
local port
local server <close> = assert(mlx.proc.spawn {
  "python3", "serve.py", "0",
  stdout = function(line) port = port or tonumber(line) end,
  stderr = "null",
})
for _ = 1, 100 do
  if port then break end
  local finished = server:wait(0.1)
  if finished then mlx.ui.fail(mlx.ui.EXIT.FAILED, "the model server exited at start (status %s)", finished.code) end
end
if not port then mlx.ui.fail(mlx.ui.EXIT.FAILED, "the model server did not start within 10 s") end
local url = "http://127.0.0.1:" .. port
print("serving on " .. url)

heading("deploy the staging model (../deploy.lua)")
ok, err = mlx.proc.run {
  MLX, "recipe", "../deploy.lua", "-p", "model=iris", "-p", "url=" .. url,
  "-p", "min=" .. params.min_accuracy, "-p", "max_drop=" .. params.max_drop,
}
if not ok then mlx.ui.fail(mlx.ui.EXIT.FAILED, "the deploy failed: %s", err) end

heading("production")
local production = assert(mlx.registry.get("iris@production"))
local sample = { 6.3, 3.3, 6.0, 2.5 }
local answer = assert(mlx.http.post(url .. "/predict", { json = { features = { sample } }, expect = 200 }))
local prediction = assert(answer:json())
print(("production model: %s (sha256 %s…)"):format(production.ref, production.hash:sub(1, 12)))
print(("sample prediction: %s -> %s"):format(table.concat(sample, ", "), prediction.predictions[1]))
