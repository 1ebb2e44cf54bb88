-- The quickstart pipeline: data → split → train → evaluate → gate → register.
--
--   mlx recipe pipeline.lua                 run what is stale
--   mlx recipe pipeline.lua -p lr=0.05      a new learning rate: a new model version
--   mlx status pipeline.lua                 what would run, and why
--
-- Run from recipes/quickstart/ (an mlx project); the ML code is lib/iris.lua.
local mlx = require "mlx"
local p = mlx.pipeline "iris"

p:params {
  seed = 42,            -- the split's shuffle
  test_fraction = 0.3,  -- share of each class held out
  lr = 0.5,             -- gradient descent step
  epochs = 500,
  min_accuracy = 0.9,   -- the quality gate
}

p:step "split" {
  desc = "seeded, stratified train/test split",
  deps = { "data/iris.csv", "lib/iris.lua" },
  outs = { "work/train.csv", "work/test.csv" },
  params = { "seed", "test_fraction" },
  run = function(ctx)
    local iris = require "iris"
    local train, test = iris.split(iris.read_csv("data/iris.csv"), ctx.params.seed, ctx.params.test_fraction)
    iris.write_csv("work/train.csv", train)
    iris.write_csv("work/test.csv", test)
  end,
}

p:step "train" {
  desc = "softmax regression, loss logged per epoch",
  deps = { "work/train.csv", "lib/iris.lua" },
  outs = { "work/model.json" },
  params = { "lr", "epochs" },
  run = function(ctx)
    local iris = require "iris"
    local model = iris.train(iris.read_csv("work/train.csv"),
      { lr = ctx.params.lr, epochs = ctx.params.epochs },
      function(epoch, loss) ctx.log("loss", loss, epoch) end)
    assert(mlx.json.save("work/model.json", model))
  end,
}

p:step "evaluate" {
  desc = "accuracy, per-class precision and recall, confusion matrix",
  deps = { "work/model.json", "work/test.csv", "lib/iris.lua" },
  metrics = { "work/metrics.json" },
  run = function(ctx)
    local iris = require "iris"
    local model = assert(mlx.json.load("work/model.json"))
    local m = iris.evaluate(model, iris.read_csv("work/test.csv"))
    assert(mlx.json.save("work/metrics.json", m))
  end,
}

p:step "gate" {
  desc = "fails the recipe when the model is not good enough",
  deps = { "work/metrics.json" },
  outs = { "work/gate.json" },
  params = { "min_accuracy" },
  run = function(ctx)
    local m = assert(mlx.json.load("work/metrics.json"))
    if m.accuracy < ctx.params.min_accuracy then
      error(("accuracy %.3f is below the gate (min_accuracy = %g)"):format(m.accuracy, ctx.params.min_accuracy), 0)
    end
    assert(mlx.json.save("work/gate.json", { accuracy = m.accuracy, min_accuracy = ctx.params.min_accuracy, passed = true }))
  end,
}

p:step "register" {
  desc = "registers the model and points the staging alias at it",
  deps = { "work/model.json", "work/gate.json" },
  outs = { "work/registered.json" },
  -- It acts on the registry: never restored from the run-cache (which only
  -- puts files back), so after any change and revert of the params it runs
  -- again and staging names the model the current params produce.
  cache = false,
  run = function(ctx)
    local registry = mlx.registry
    -- The version's run is found from the model's hash: the train step that
    -- wrote it, whose inputs lead back to the data (mlx model show).
    local version, new = assert(registry.register {
      name = "iris", path = "work/model.json",
      description = "softmax regression on the Iris data",
    })
    assert(registry.set_alias("iris", "staging", version.version))
    print(("model iris version %d %s (staging)"):format(version.version, new and "registered" or "already registered"))
    assert(mlx.json.save("work/registered.json", { name = "iris", version = version.version, hash = version.hash }))
  end,
}

return p
