--- churn: the ML code of the churn example — a synthetic table of telecom
--- customers, a seeded split, logistic regression by gradient descent and
--- its evaluation. Plain Lua, no dependencies, so the example runs anywhere
--- mlx does; tests/test_churn.lua tests it with `mlx test`.
local M = {}

--- The columns of a customer row, in file order.
M.COLUMNS = { "customer_id", "tenure", "monthly_charges", "contract", "support_calls", "churned" }
M.CONTRACTS = { "month-to-month", "one-year", "two-year" }

--- Returns a seeded random generator: r() in [0, 1), r(n) in 1..n. A
--- 64-bit xorshift*, so the data is the same on every machine and Lua.
function M.random(seed)
  local s = seed * 2654435761 + 1
  local function next64()
    s = s ~ (s >> 12)
    s = s ~ (s << 25)
    s = s ~ (s >> 27)
    return s * 2685821657736338717
  end
  return function(n)
    local u = ((next64() >> 11) & ((1 << 53) - 1)) / (1 << 53)
    if n then return math.floor(u * n) + 1 end
    return u
  end
end

local function normal(r)
  local u1, u2 = r(), r()
  return math.sqrt(-2 * math.log(1 - u1)) * math.cos(2 * math.pi * u2)
end

--- Returns n customer rows (tables keyed by column) from seed. options:
--- charges_shift (added to every monthly charge: a drifted population),
--- first_id (default 1).
function M.generate(n, seed, options)
  options = options or {}
  local r = M.random(seed)
  local rows = {}
  for i = 1, n do
    local contract = M.CONTRACTS[r() < 0.55 and 1 or (r() < 0.5 and 2 or 3)]
    local tenure = math.max(0, math.min(72, math.floor(contract == "month-to-month" and 14 * r() ^ 1.5 * 4
      or 20 + 52 * r())))
    local charges = math.max(18.25, math.min(118.75, 65 + 25 * normal(r) + (options.charges_shift or 0)))
    local calls = math.min(10, math.floor(-math.log(1 - r()) * 1.5))
    local z = -1.2 + (contract == "month-to-month" and 1.6 or -1.1) - 0.045 * tenure + 0.022 * (charges - 65)
      + 0.35 * calls
    local churned = r() < 1 / (1 + math.exp(-z)) and 1 or 0
    rows[i] = { customer_id = (options.first_id or 1) + i - 1, tenure = tenure,
      monthly_charges = math.floor(charges * 100 + 0.5) / 100, contract = contract, support_calls = calls,
      churned = churned }
  end
  return rows
end

local function field_text(v)
  if v == nil then return "" end
  if math.type(v) == "float" then return ("%.2f"):format(v) end
  return tostring(v)
end

--- Writes rows as CSV with the header M.COLUMNS (a nil value is an empty
--- field). Raises if the file cannot be written.
function M.write_csv(path, rows)
  local f = assert(io.open(path, "w"))
  f:write(table.concat(M.COLUMNS, ","), "\n")
  local fields = {}
  for _, row in ipairs(rows) do
    for i, c in ipairs(M.COLUMNS) do fields[i] = field_text(row[c]) end
    f:write(table.concat(fields, ","), "\n")
  end
  assert(f:close())
end

--- Returns the rows of a CSV file written by write_csv (numbers as numbers,
--- empty fields nil). Raises naming the file if it cannot be read.
function M.read_csv(path)
  local f = assert(io.open(path, "r"))
  local header, rows = nil, {}
  for line in f:lines() do
    local fields = {}
    for v in (line .. ","):gmatch("([^,]*),") do fields[#fields + 1] = v end
    if not header then
      header = fields
    else
      local row = {}
      for i, c in ipairs(header) do
        local v = fields[i]
        if v ~= nil and v ~= "" then row[c] = tonumber(v) or v end
      end
      rows[#rows + 1] = row
    end
  end
  f:close()
  return rows
end

--- Splits rows into train and test: each row goes to test with
--- probability test_fraction, decided by its id and seed alone, so a row
--- stays on its side when others are added.
function M.split(rows, seed, test_fraction)
  local train, test = {}, {}
  for _, row in ipairs(rows) do
    local r = M.random(seed * 1000003 + row.customer_id)
    if r() < test_fraction then test[#test + 1] = row else train[#train + 1] = row end
  end
  return train, test
end

--- The model's inputs for a row: standardized numbers and the contract
--- one-hot (month-to-month is the baseline).
function M.features(row, scale)
  local x = { 1 }
  for _, c in ipairs({ "tenure", "monthly_charges", "support_calls" }) do
    x[#x + 1] = ((row[c] or scale[c].mean) - scale[c].mean) / scale[c].sd
  end
  x[#x + 1] = row.contract == "one-year" and 1 or 0
  x[#x + 1] = row.contract == "two-year" and 1 or 0
  return x
end

local function sigmoid(z) return 1 / (1 + math.exp(-z)) end

--- Trains logistic regression by full-batch gradient descent; calls
--- on_epoch(epoch, loss) when given. Returns the model {weights, scale}.
function M.train(rows, options, on_epoch)
  local scale = {}
  for _, c in ipairs({ "tenure", "monthly_charges", "support_calls" }) do
    local sum, sq, n = 0, 0, 0
    for _, row in ipairs(rows) do
      if row[c] then sum, sq, n = sum + row[c], sq + row[c] ^ 2, n + 1 end
    end
    local mean = sum / n
    scale[c] = { mean = mean, sd = math.sqrt(math.max(sq / n - mean ^ 2, 1e-12)) }
  end
  local xs, ys = {}, {}
  for i, row in ipairs(rows) do xs[i], ys[i] = M.features(row, scale), row.churned end
  local w = {}
  for j = 1, #xs[1] do w[j] = 0 end
  for epoch = 1, options.epochs do
    local grad, loss = {}, 0
    for j = 1, #w do grad[j] = 0 end
    for i, x in ipairs(xs) do
      local z = 0
      for j = 1, #w do z = z + w[j] * x[j] end
      local p = sigmoid(z)
      loss = loss - (ys[i] == 1 and math.log(p + 1e-12) or math.log(1 - p + 1e-12))
      for j = 1, #w do grad[j] = grad[j] + (p - ys[i]) * x[j] end
    end
    for j = 1, #w do w[j] = w[j] - options.lr * grad[j] / #xs end
    if on_epoch then on_epoch(epoch, loss / #xs) end
  end
  return { weights = w, scale = scale }
end

--- Returns the churn probability the model gives row.
function M.predict(model, row)
  local x, z = M.features(row, model.scale), 0
  for j, wj in ipairs(model.weights) do z = z + wj * x[j] end
  return sigmoid(z)
end

--- Returns {accuracy, precision, recall, log_loss, n} of the model on rows
--- (threshold 0.5).
function M.evaluate(model, rows)
  local tp, fp, tn, fn, loss = 0, 0, 0, 0, 0
  for _, row in ipairs(rows) do
    local p = M.predict(model, row)
    local yes = p >= 0.5
    if yes and row.churned == 1 then tp = tp + 1
    elseif yes then fp = fp + 1
    elseif row.churned == 1 then fn = fn + 1
    else tn = tn + 1 end
    loss = loss - (row.churned == 1 and math.log(p + 1e-12) or math.log(1 - p + 1e-12))
  end
  local n = #rows
  return { accuracy = (tp + tn) / n, precision = tp + fp > 0 and tp / (tp + fp) or 0,
    recall = tp + fn > 0 and tp / (tp + fn) or 0, log_loss = loss / n, n = n }
end

return M
