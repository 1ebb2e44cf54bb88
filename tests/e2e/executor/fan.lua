-- A 3x3 fan-out with a select step, as tests/e2e/test_slurm.sh and
-- test_executor.sh run it on each executor.
local mlx = require "mlx"
local p = mlx.pipeline "fan"
p:step "prep" { deps = { "data/nums.txt" }, outs = { "work/prep.txt" },
  cmd = "mkdir -p work && awk '{ s += $1 } END { print s }' data/nums.txt > work/prep.txt" }
local outs = {}
for _, a in ipairs({ 1, 2, 3 }) do
  for _, b in ipairs({ 1, 2, 3 }) do
    local name = ("train-%d-%d"):format(a, b)
    local out = ("work/%s.json"):format(name)
    outs[#outs + 1] = out
    p:step(name) {
      deps = { "work/prep.txt" }, outs = { out },
      -- $SLURM_JOB_ID and ${MLX_STEP} are the shell's, not params.
      cmd = ([[s=$(cat work/prep.txt)
echo "job ${SLURM_JOB_ID:-none} step ${MLX_STEP}"
echo '{"metric":"loss","value":%d}' >> "$MLX_EVENTS"
echo "{\"score\": $((s * %d + %d))}" > %s]]):format(a + b, a, b, out),
    }
  end
end
p:step "select" {
  deps = outs, outs = { "work/best.txt" }, metrics = { "work/select.json" },
  cmd = "cat work/train-*.json | sort | tail -1 > work/best.txt && echo '{\"best\": 5053}' > work/select.json",
}
return p
