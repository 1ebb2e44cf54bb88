-- Writes the example's data: a synthetic table of telecom customers.
--
--   mlx lua generate.lua data/customers.csv 3000 1       (what is committed)
--   mlx lua generate.lua data/reference.csv 3000 2       (last release's training data)
--   mlx lua generate.lua OUT N SEED [CHARGES_SHIFT]      (a drifted population)
--
-- The same arguments write the same bytes on every machine.
package.path = "lib/?.lua;" .. package.path
local churn = require "churn"
local out, n, seed, shift = arg[1], tonumber(arg[2]), tonumber(arg[3]), tonumber(arg[4] or "0")
if not (out and n and seed and shift) then
  io.stderr:write("usage: mlx lua generate.lua OUT N SEED [CHARGES_SHIFT]\n")
  os.exit(2)
end
churn.write_csv(out, churn.generate(math.tointeger(n), math.tointeger(seed), { charges_shift = shift }))
