--- mlx.check.drift: the statistics of mlx.check's drift rules, from the
--- counts the C pass makes (mlx.datacheck): population stability index
--- (PSI), the two-sample Kolmogorov–Smirnov statistic and its asymptotic
--- p-value, and Pearson's chi-square test of a categorical column against
--- the reference's proportions.
---
--- Numeric columns: the reference is read once, keeping a uniform sample of
--- up to SAMPLE numbers per column (8 bytes each; the whole column when it
--- has fewer, which makes the results exact). Its quantiles give up to
--- GRID bin edges; the checked file's values are counted into those bins
--- (8 bytes per bin), so memory does not grow with either file. KS is
--- evaluated at the edges: between two edges both distribution functions
--- move by at most one bin's share of the reference, so the statistic is
--- within 1/GRID of the exact one (plus the sampling error of a reference
--- larger than SAMPLE, about 1/sqrt(SAMPLE)). PSI uses the reference's
--- deciles, which are among the edges.
local M = {}

M.SAMPLE = 100000
M.GRID = 1000
M.PSI_BINS = 10
-- A bin one side leaves empty counts as this share, so PSI stays finite.
local FLOOR = 1e-4

--- Returns the sorted, distinct quantile edges of the sorted sample:
--- grid edges (up to M.GRID - 1) and the PSI edges among them (deciles).
function M.edges(sample)
  local m = #sample
  local grid, psi = {}, {}
  if m == 0 then return grid, psi end
  local function q(j, k) return sample[math.max(1, math.min(m, math.ceil(j * m / k)))] end
  for j = 1, M.GRID - 1 do
    local e = q(j, M.GRID)
    if e ~= grid[#grid] then grid[#grid + 1] = e end
  end
  for j = 1, M.PSI_BINS - 1 do
    local e = q(j, M.PSI_BINS)
    if e ~= psi[#psi] then psi[#psi + 1] = e end
  end
  return grid, psi
end

-- Number of values of the sorted list <= x.
local function count_le(sorted, x)
  local lo, hi = 1, #sorted + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if sorted[mid] <= x then lo = mid + 1 else hi = mid end
  end
  return lo - 1
end

local function psi_of(expected, actual)
  local total = 0
  for i = 1, #expected do
    local e, a = math.max(expected[i], FLOOR), math.max(actual[i], FLOOR)
    total = total + (a - e) * math.log(a / e)
  end
  return total
end

--- Kolmogorov's limiting distribution: P(D > d) for n_eff = n·m/(n+m),
--- with Stephens' correction (as scipy's asymptotic mode and Numerical
--- Recipes' probks).
function M.ks_pvalue(d, n, m)
  if n == 0 or m == 0 then return 1 end
  local ne = n * m / (n + m)
  local lambda = (math.sqrt(ne) + 0.12 + 0.11 / math.sqrt(ne)) * d
  if lambda < 1e-3 then return 1 end
  local sum, sign = 0, 1
  for k = 1, 100 do
    local term = sign * math.exp(-2 * k * k * lambda * lambda)
    sum = sum + term
    if math.abs(term) < 1e-12 then break end
    sign = -sign
  end
  return math.max(0, math.min(1, 2 * sum))
end

--- Returns {psi, ks, ks_p, n, reference_n} for a numeric column: sample is
--- the reference's sorted sample, reference_n its count of numbers, grid
--- and psi_edges from M.edges, bins the checked file's counts over grid.
function M.numeric(sample, reference_n, grid, psi_edges, bins)
  local n = 0
  for _, c in ipairs(bins) do n = n + c end
  local m = #sample
  if n == 0 or m == 0 then return { psi = 0, ks = 0, ks_p = 1, n = n, reference_n = reference_n } end
  -- KS at every grid edge.
  local d, cum = 0, 0
  for i, e in ipairs(grid) do
    cum = cum + bins[i]
    d = math.max(d, math.abs(count_le(sample, e) / m - cum / n))
  end
  -- PSI over the deciles: fold the grid bins into them.
  local actual, expected = {}, {}
  for i = 1, #psi_edges + 1 do actual[i], expected[i] = 0, 0 end
  for i = 1, #bins do
    -- The grid bin (grid[i-1], grid[i]] lies in the decile bin whose
    -- upper edge is the first decile edge >= grid[i] (the last bin, above
    -- every edge, in the last).
    local upper = grid[i]
    local j = 1
    if upper then
      while j <= #psi_edges and psi_edges[j] < upper do j = j + 1 end
    else
      j = #psi_edges + 1
    end
    actual[j] = actual[j] + bins[i] / n
  end
  local below = 0
  for j = 1, #psi_edges do
    local le = count_le(sample, psi_edges[j])
    expected[j] = (le - below) / m
    below = le
  end
  expected[#psi_edges + 1] = (m - below) / m
  return { psi = psi_of(expected, actual), ks = d, ks_p = M.ks_pvalue(d, n, reference_n), n = n,
    reference_n = reference_n }
end

-- log Γ(x) for x > 0: shifted up to x >= 15 by Γ(x+1) = xΓ(x), then
-- Stirling's series, whose terms past 1/x^9 are below 1e-16 there.
local function log_gamma(x)
  local shift = 0
  while x < 15 do
    shift = shift + math.log(x)
    x = x + 1
  end
  local x2 = x * x
  local series = 1 / (12 * x) - 1 / (360 * x * x2) + 1 / (1260 * x * x2 * x2) - 1 / (1680 * x * x2 * x2 * x2)
    + 1 / (1188 * x * x2 * x2 * x2 * x2)
  return (x - 0.5) * math.log(x) - x + 0.5 * math.log(2 * math.pi) + series - shift
end

-- The regularized upper incomplete gamma function Q(a, x) (Numerical
-- Recipes' gammq: a series below a + 1, a continued fraction above).
local function gamma_q(a, x)
  if x <= 0 then return 1 end
  if x < a + 1 then
    local sum, del, ap = 1 / a, 1 / a, a
    for _ = 1, 1000 do
      ap = ap + 1
      del = del * x / ap
      sum = sum + del
      if math.abs(del) < math.abs(sum) * 1e-15 then break end
    end
    return 1 - sum * math.exp(-x + a * math.log(x) - log_gamma(a))
  end
  local b, c, d = x + 1 - a, 1 / 1e-300, 1 / (x + 1 - a)
  local h = d
  for i = 1, 1000 do
    local an = -i * (i - a)
    b = b + 2
    d = an * d + b
    if math.abs(d) < 1e-300 then d = 1e-300 end
    c = b + an / c
    if math.abs(c) < 1e-300 then c = 1e-300 end
    d = 1 / d
    local del = d * c
    h = h * del
    if math.abs(del - 1) < 1e-15 then break end
  end
  return math.exp(-x + a * math.log(x) - log_gamma(a)) * h
end
M.gamma_q = gamma_q

--- Returns {psi, chi2, chi2_p, df, n, reference_n} for a categorical
--- column: reference and current map each value to its count; other_* are
--- the values not counted (beyond the cap), pooled as one more category.
function M.categorical(reference, current, reference_other, current_other)
  local keys, seen = {}, {}
  for k in pairs(reference) do if not seen[k] then seen[k] = true keys[#keys + 1] = k end end
  for k in pairs(current) do if not seen[k] then seen[k] = true keys[#keys + 1] = k end end
  table.sort(keys)
  local ref, cur = {}, {}
  for i, k in ipairs(keys) do ref[i], cur[i] = reference[k] or 0, current[k] or 0 end
  if (reference_other or 0) + (current_other or 0) > 0 then
    ref[#ref + 1], cur[#cur + 1] = reference_other or 0, current_other or 0
  end
  local m, n = 0, 0
  for i = 1, #ref do m, n = m + ref[i], n + cur[i] end
  if m == 0 or n == 0 then return { psi = 0, chi2 = 0, chi2_p = 1, df = 0, n = n, reference_n = m } end
  local expected, actual = {}, {}
  local chi2 = 0
  for i = 1, #ref do
    expected[i], actual[i] = ref[i] / m, cur[i] / n
    -- Half a count for a category the reference lacks, so a new value
    -- weighs heavily instead of dividing by zero.
    local e = math.max(ref[i], 0.5) / m * n
    chi2 = chi2 + (cur[i] - e) ^ 2 / e
  end
  local df = math.max(#ref - 1, 1)
  return { psi = psi_of(expected, actual), chi2 = chi2, chi2_p = gamma_q(df / 2, chi2 / 2), df = df, n = n,
    reference_n = m }
end

return M
