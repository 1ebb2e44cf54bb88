--- iris: the quickstart's machine learning, in plain Lua — reading the CSV,
--- a seeded split, softmax regression trained by gradient descent, and the
--- evaluation metrics. Every function is deterministic: the same inputs give
--- the same bytes, which is what lets mlx prove a result reproduces.
local M = {}

--- Reads a CSV with a header whose last column is the label. Returns
--- {features = {names}, rows = {{x = {numbers}, label = string}}} or raises
--- naming the file and line.
function M.read_csv(path)
  local f = assert(io.open(path, "r"))
  local header = f:read("l")
  local names = {}
  for name in header:gmatch("[^,]+") do names[#names + 1] = name end
  table.remove(names) -- the label column
  local rows, line_no = {}, 1
  for line in f:lines() do
    line_no = line_no + 1
    if line ~= "" then
      local fields = {}
      for field in line:gmatch("[^,]+") do fields[#fields + 1] = field end
      if #fields ~= #names + 1 then
        f:close()
        error(("%s:%d: expected %d fields, found %d"):format(path, line_no, #names + 1, #fields), 0)
      end
      local x = {}
      for j = 1, #names do
        x[j] = tonumber(fields[j]) or error(("%s:%d: '%s' is not a number"):format(path, line_no, fields[j]), 0)
      end
      rows[#rows + 1] = { x = x, label = fields[#fields] }
    end
  end
  f:close()
  return { features = names, rows = rows }
end

--- Writes rows (as read_csv returns them) to path as CSV.
function M.write_csv(path, data)
  local f = assert(io.open(path, "w"))
  f:write(table.concat(data.features, ","), ",species\n")
  for _, row in ipairs(data.rows) do
    local fields = {}
    for j, v in ipairs(row.x) do fields[j] = ("%g"):format(v) end
    f:write(table.concat(fields, ","), ",", row.label, "\n")
  end
  assert(f:close())
end

-- xorshift64*: a tiny PRNG whose sequence is fixed by its definition, not by
-- the Lua version (math.random's algorithm may change between releases).
local function prng(seed)
  local state = seed ~= 0 and seed or 0x9E3779B97F4A7C15
  return function(n)
    state = state ~ (state >> 12)
    state = state ~ (state << 25)
    state = state ~ (state >> 27)
    local r = (state * 0x2545F4914F6CDD1D) >> 11 -- 53 random bits
    return r % n + 1
  end
end

--- Splits data into train and test sets: a seeded shuffle within each class
--- (so both sets keep the class proportions), then test_fraction of each class
--- to test. Returns train, test (same shape as data).
function M.split(data, seed, test_fraction)
  local by_class, classes = {}, {}
  for _, row in ipairs(data.rows) do
    if not by_class[row.label] then
      by_class[row.label] = {}
      classes[#classes + 1] = row.label
    end
    table.insert(by_class[row.label], row)
  end
  local random = prng(seed)
  local train = { features = data.features, rows = {} }
  local test = { features = data.features, rows = {} }
  for _, class in ipairs(classes) do
    local rows = by_class[class]
    for i = #rows, 2, -1 do
      local j = random(i)
      rows[i], rows[j] = rows[j], rows[i]
    end
    local n_test = math.floor(#rows * test_fraction + 0.5)
    for i, row in ipairs(rows) do
      table.insert(i <= n_test and test.rows or train.rows, row)
    end
  end
  return train, test
end

local function softmax(z)
  local max = -math.huge
  for _, v in ipairs(z) do if v > max then max = v end end
  local sum, p = 0, {}
  for k, v in ipairs(z) do
    p[k] = math.exp(v - max)
    sum = sum + p[k]
  end
  for k = 1, #p do p[k] = p[k] / sum end
  return p
end

local function standardized(model, x)
  local out = {}
  for j, v in ipairs(x) do out[j] = (v - model.mean[j]) / model.std[j] end
  return out
end

--- Returns the class probabilities of features x under model.
function M.probabilities(model, x)
  local z = standardized(model, x)
  local scores = {}
  for k = 1, #model.classes do
    local s = model.bias[k]
    for j = 1, #z do s = s + model.weights[k][j] * z[j] end
    scores[k] = s
  end
  return softmax(scores)
end

--- Returns the predicted class of features x.
function M.predict(model, x)
  local p = M.probabilities(model, x)
  local best = 1
  for k = 2, #p do if p[k] > p[best] then best = k end end
  return model.classes[best]
end

--- Trains softmax regression on data by full-batch gradient descent on the
--- mean cross-entropy (with a small L2 penalty), features standardized with
--- the training set's mean and std. on_epoch(epoch, loss) is called after
--- each epoch. Returns the model in the model server's format
--- {classes, features, weights, bias, mean, std}.
function M.train(data, opts, on_epoch)
  local lr, epochs, l2 = opts.lr, opts.epochs, opts.l2 or 1e-4
  local classes, index = {}, {}
  for _, row in ipairs(data.rows) do
    if not index[row.label] then
      classes[#classes + 1] = row.label
      index[row.label] = true
    end
  end
  table.sort(classes)
  for k, c in ipairs(classes) do index[c] = k end
  local d, n, K = #data.features, #data.rows, #classes
  local mean, std = {}, {}
  for j = 1, d do
    local s = 0
    for _, row in ipairs(data.rows) do s = s + row.x[j] end
    mean[j] = s / n
    local v = 0
    for _, row in ipairs(data.rows) do v = v + (row.x[j] - mean[j]) ^ 2 end
    std[j] = math.sqrt(v / n)
    if std[j] == 0 then std[j] = 1 end
  end
  local model = { classes = classes, features = data.features, mean = mean, std = std, weights = {}, bias = {} }
  for k = 1, K do
    model.weights[k] = {}
    for j = 1, d do model.weights[k][j] = 0.0 end
    model.bias[k] = 0.0
  end
  local zs = {}
  for i, row in ipairs(data.rows) do zs[i] = standardized(model, row.x) end
  for epoch = 1, epochs do
    local gw, gb, loss = {}, {}, 0
    for k = 1, K do
      gw[k] = {}
      for j = 1, d do gw[k][j] = 0 end
      gb[k] = 0
    end
    for i, row in ipairs(data.rows) do
      local z = zs[i]
      local scores = {}
      for k = 1, K do
        local s = model.bias[k]
        for j = 1, d do s = s + model.weights[k][j] * z[j] end
        scores[k] = s
      end
      local p = softmax(scores)
      local y = index[row.label]
      loss = loss - math.log(math.max(p[y], 1e-300))
      for k = 1, K do
        local g = p[k] - (k == y and 1 or 0)
        for j = 1, d do gw[k][j] = gw[k][j] + g * z[j] end
        gb[k] = gb[k] + g
      end
    end
    for k = 1, K do
      for j = 1, d do
        model.weights[k][j] = model.weights[k][j] - lr * (gw[k][j] / n + l2 * model.weights[k][j])
      end
      model.bias[k] = model.bias[k] - lr * gb[k] / n
    end
    if on_epoch then on_epoch(epoch, loss / n) end
  end
  return model
end

--- Evaluates model on data. Returns {accuracy, precision = {class = v},
--- recall = {class = v}, confusion = {{counts}} (rows: true class, columns:
--- predicted, in model.classes order), n}.
function M.evaluate(model, data)
  local K = #model.classes
  local index = {}
  for k, c in ipairs(model.classes) do index[c] = k end
  local confusion = {}
  for k = 1, K do
    confusion[k] = {}
    for l = 1, K do confusion[k][l] = 0 end
  end
  local correct = 0
  for _, row in ipairs(data.rows) do
    local predicted = M.predict(model, row.x)
    local t, p = index[row.label], index[predicted]
    confusion[t][p] = confusion[t][p] + 1
    if t == p then correct = correct + 1 end
  end
  local precision, recall = {}, {}
  for k, class in ipairs(model.classes) do
    local predicted_k, actual_k = 0, 0
    for l = 1, K do
      predicted_k = predicted_k + confusion[l][k]
      actual_k = actual_k + confusion[k][l]
    end
    precision[class] = predicted_k > 0 and confusion[k][k] / predicted_k or 0.0
    recall[class] = actual_k > 0 and confusion[k][k] / actual_k or 0.0
  end
  return { accuracy = correct / #data.rows, precision = precision, recall = recall,
    confusion = confusion, n = #data.rows }
end

return M
