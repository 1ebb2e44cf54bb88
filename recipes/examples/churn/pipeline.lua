-- The churn example: prepare → check → train → evaluate, with the data
-- validated and compared with last release's before any training.
--
--   mlx recipe pipeline.lua                 run what is stale
--   mlx recipe pipeline.lua check           only the data check (and prepare)
--   mlx test                                the tests in tests/ (TAP; --junit FILE)
--
-- Run from recipes/examples/churn/ (an mlx project); the ML code is
-- lib/churn.lua, the data data/customers.csv, last release's training data
-- (the drift reference) data/reference.csv.
local mlx = require "mlx"
local p = mlx.pipeline "churn"

p:params {
  seed = 7,             -- the split
  test_fraction = 0.25,
  lr = 0.5,             -- gradient descent step
  epochs = 300,
  max_psi = 0.2,        -- drift thresholds against data/reference.csv
  max_ks = 0.1,
}

-- What the data must be: declared once, checked in C over the whole file.
local function rules(params)
  return {
    name = "check",
    columns = {
      { "customer_id", type = "int", unique = true, nulls = false, min = 1 },
      { "tenure", type = "int", min = 0, max = 72, nulls = false },
      { "monthly_charges", type = "number", min = 0, max = 500, nulls = false },
      { "contract", type = "string", allowed = { "month-to-month", "one-year", "two-year" }, nulls = false },
      { "support_calls", type = "int", min = 0, max = 50, nulls = 0.01 },
      { "churned", type = "int", allowed = { 0, 1 }, nulls = false },
    },
    strict = true,
    rows = { min = 500 },
    predicates = {
      { "long contracts have a year of tenure", function(r)
        return r.contract == "month-to-month" or r.tenure == nil or r.tenure >= 12
      end },
    },
    drift = {
      reference = "data/reference.csv",
      columns = {
        tenure = { psi = params.max_psi, ks = params.max_ks },
        monthly_charges = { psi = params.max_psi, ks = params.max_ks },
        contract = { psi = params.max_psi },
      },
    },
  }
end

p:step "prepare" {
  desc = "seeded train/test split of the customers",
  deps = { "data/customers.csv", "lib/churn.lua" },
  outs = { "work/train.csv", "work/test.csv" },
  params = { "seed", "test_fraction" },
  run = function(ctx)
    local churn = require "churn"
    local train, test = churn.split(churn.read_csv("data/customers.csv"), ctx.params.seed, ctx.params.test_fraction)
    churn.write_csv("work/train.csv", train)
    churn.write_csv("work/test.csv", test)
  end,
}

p:step "check" {
  desc = "schema, ranges, nulls, uniqueness and drift of the training data",
  deps = { "work/train.csv", "data/reference.csv" },
  outs = { "work/check.json" },
  params = { "max_psi", "max_ks" },
  run = function(ctx)
    mlx.check.step("work/train.csv", rules(ctx.params), { report = "work/check.json" })
  end,
}

p:step "train" {
  desc = "logistic regression, loss logged per epoch",
  deps = { "work/train.csv", "work/check.json", "lib/churn.lua" },
  outs = { "work/model.json" },
  params = { "lr", "epochs" },
  run = function(ctx)
    local churn = require "churn"
    local model = churn.train(churn.read_csv("work/train.csv"), { lr = ctx.params.lr, epochs = ctx.params.epochs },
      function(epoch, loss) if epoch % 10 == 0 then ctx.log("loss", loss, epoch) end end)
    assert(mlx.json.save("work/model.json", model))
  end,
}

p:step "evaluate" {
  desc = "accuracy, precision, recall and log loss on the held-out customers",
  deps = { "work/model.json", "work/test.csv", "lib/churn.lua" },
  metrics = { "work/metrics.json" },
  run = function()
    local churn = require "churn"
    local m = churn.evaluate(assert(mlx.json.load("work/model.json")), churn.read_csv("work/test.csv"))
    assert(mlx.json.save("work/metrics.json", m))
  end,
}

return p
