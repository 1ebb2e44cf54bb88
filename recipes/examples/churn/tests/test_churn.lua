-- Unit tests of lib/churn.lua, the example's ML code: `mlx test` runs them
-- from the project root, where require finds lib/.
local lu = require "luaunit"
local churn = require "churn"

TestData = {}

function TestData:test_generation_is_deterministic_and_in_range()
  local a, b = churn.generate(200, 5), churn.generate(200, 5)
  lu.assertEquals(a, b)
  lu.assertNotEquals(churn.generate(200, 6), a)
  for _, row in ipairs(a) do
    lu.assertTrue(row.tenure >= 0 and row.tenure <= 72)
    lu.assertTrue(row.monthly_charges >= 18.25 and row.monthly_charges <= 118.75)
    lu.assertTrue(row.churned == 0 or row.churned == 1)
  end
end

function TestData:test_csv_round_trip_keeps_values_and_nulls()
  local path = os.tmpname()
  local rows = churn.generate(20, 3)
  rows[4].tenure = nil
  churn.write_csv(path, rows)
  local back = churn.read_csv(path)
  os.remove(path)
  lu.assertEquals(#back, 20)
  lu.assertNil(back[4].tenure)
  lu.assertEquals(back[5], rows[5])
end

function TestData:test_split_is_stable_per_customer()
  local rows = churn.generate(1000, 1)
  local train, test = churn.split(rows, 7, 0.25)
  lu.assertEquals(#train + #test, 1000)
  lu.assertTrue(#test > 180 and #test < 320, "about a quarter: " .. #test)
  -- Adding customers leaves everyone already there on the same side.
  local more = churn.generate(1100, 1)
  local _, test2 = churn.split(more, 7, 0.25)
  local in_test = {}
  for _, r in ipairs(test2) do in_test[r.customer_id] = true end
  for _, r in ipairs(test) do lu.assertTrue(in_test[r.customer_id]) end
end

TestModel = {}

function TestModel:test_training_lowers_the_loss_and_beats_the_base_rate()
  local train, test = churn.split(churn.generate(1500, 2), 7, 0.25)
  local losses = {}
  local model = churn.train(train, { lr = 0.5, epochs = 150 }, function(epoch, loss) losses[epoch] = loss end)
  lu.assertTrue(losses[150] < losses[1] * 0.8, ("loss %g -> %g"):format(losses[1], losses[150]))
  local m = churn.evaluate(model, test)
  local churned = 0
  for _, r in ipairs(test) do churned = churned + r.churned end
  local base = math.max(churned, #test - churned) / #test
  lu.assertTrue(m.accuracy > base + 0.05, ("accuracy %.3f, base rate %.3f"):format(m.accuracy, base))
end

function TestModel:test_evaluate_counts_by_hand()
  local model = { weights = { -10, 0, 0, 0, 20, 0 }, scale = {
    tenure = { mean = 0, sd = 1 }, monthly_charges = { mean = 0, sd = 1 }, support_calls = { mean = 0, sd = 1 } } }
  -- Only the one-year indicator counts: one-year customers are predicted to churn.
  local rows = {
    { tenure = 1, monthly_charges = 1, support_calls = 0, contract = "one-year", churned = 1 },
    { tenure = 1, monthly_charges = 1, support_calls = 0, contract = "one-year", churned = 0 },
    { tenure = 1, monthly_charges = 1, support_calls = 0, contract = "two-year", churned = 0 },
    { tenure = 1, monthly_charges = 1, support_calls = 0, contract = "month-to-month", churned = 1 },
  }
  local m = churn.evaluate(model, rows)
  lu.assertEquals(m.accuracy, 0.5)
  lu.assertEquals(m.precision, 0.5)
  lu.assertEquals(m.recall, 0.5)
end
