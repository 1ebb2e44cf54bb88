-- The pipeline in a temporary copy of the project (mlx.testing), run by the
-- real mlx: the check step passes on the committed data and fails, naming
-- the column and the rule, on injected nulls and on drifted data; the whole
-- pipeline trains a model that beats the base rate.
local lu = require "luaunit"
local testing = require "mlx.testing"
local churn = require "churn"

local FILES = { "pipeline.lua", "lib", "data" }

TestPipeline = {}

function TestPipeline:test_the_pipeline_runs_and_logs_metrics()
  local p <close> = testing.project { copy = FILES }
  p:recipe("pipeline.lua")
  p:assert_out("work/model.json")
  local m = p:json("work/metrics.json")
  lu.assertTrue(m.accuracy > 0.75, "accuracy " .. m.accuracy)
  local check = p:metrics("check")
  lu.assertEquals(check["check.failures"], 0)
  lu.assertEquals(check["check.rows"], p:json("work/check.json").rows)
  lu.assertTrue(check["drift.monthly_charges.psi"] < 0.2)
  lu.assertEquals(p:metrics("evaluate").accuracy, m.accuracy)
end

function TestPipeline:test_injected_nulls_fail_the_check_naming_column_and_rule()
  local p <close> = testing.project { copy = FILES }
  local rows = churn.read_csv(p:path("data/customers.csv"))
  for i = 10, #rows, 100 do rows[i].contract = nil end
  churn.write_csv(p:path("data/customers.csv"), rows)
  local r = p:step("pipeline.lua", "check", { expect = 1 })
  lu.assertStrContains(r.stderr, "step 'check' failed")
  lu.assertStrContains(r.stderr, "column 'contract': nulls:")
  lu.assertStrContains(r.stderr, "null where nulls are not allowed (row ")
  lu.assertEquals(#p:runs { filter = "step = 'train'" }, 0, "nothing trained on bad data")
end

function TestPipeline:test_drifted_data_fails_the_check_naming_column_and_rule()
  local p <close> = testing.project { copy = FILES }
  churn.write_csv(p:path("data/customers.csv"), churn.generate(3000, 1, { charges_shift = 25 }))
  local r = p:step("pipeline.lua", "check", { expect = 1 })
  lu.assertStrContains(r.stderr, "column 'monthly_charges': drift psi: psi ")
  lu.assertStrContains(r.stderr, "> 0.2 against data/reference.csv")
  lu.assertNotStrContains(r.stderr, "column 'tenure'")
  lu.assertTrue(p:metrics("check")["drift.monthly_charges.psi"] > 0.2)
end
