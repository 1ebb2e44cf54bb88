--- mlx.pipeline.render: the graph as text, Graphviz dot, or Mermaid, for
--- `mlx dag`. Each returns a string; none fails.
local M = {}

local function edges(graph)
  local list = {}
  for _, step in ipairs(graph.order) do
    for _, up in ipairs(graph.upstream[step]) do
      list[#list + 1] = { up, step }
    end
  end
  return list
end

--- Text: each step in run order with the steps it waits for.
function M.text(graph)
  local lines = {}
  for _, step in ipairs(graph.order) do
    local ups = {}
    for _, up in ipairs(graph.upstream[step]) do ups[#ups + 1] = up.name end
    local kind = step.run and "lua" or "cmd"
    lines[#lines + 1] = ("%s  [%s]%s"):format(step.name, kind,
      #ups > 0 and ("  <- " .. table.concat(ups, ", ")) or "")
  end
  return table.concat(lines, "\n") .. "\n"
end

local function quoted(s)
  return '"' .. s:gsub('["\\]', "\\%0") .. '"'
end

--- Graphviz dot: `mlx dag FILE --dot | dot -Tsvg > dag.svg`.
function M.dot(graph, name)
  local lines = { "digraph " .. quoted(name) .. " {", "  rankdir=LR;", "  node [shape=box];" }
  for _, step in ipairs(graph.order) do lines[#lines + 1] = "  " .. quoted(step.name) .. ";" end
  for _, e in ipairs(edges(graph)) do
    lines[#lines + 1] = ("  %s -> %s;"):format(quoted(e[1].name), quoted(e[2].name))
  end
  lines[#lines + 1] = "}"
  return table.concat(lines, "\n") .. "\n"
end

--- Mermaid flowchart, for Markdown reports (GitHub renders it).
function M.mermaid(graph)
  local ids = {}
  local lines = { "flowchart LR" }
  for i, step in ipairs(graph.order) do
    ids[step] = "s" .. i
    lines[#lines + 1] = ('  s%d["%s"]'):format(i, step.name:gsub('"', "#quot;"))
  end
  for _, e in ipairs(edges(graph)) do
    lines[#lines + 1] = ("  %s --> %s"):format(ids[e[1]], ids[e[2]])
  end
  return table.concat(lines, "\n") .. "\n"
end

return M
