--- mlx.testing.report: the results of `mlx test` as TAP (version 13, one
--- line per test as each file finishes) and as JUnit XML (the Ant/Jenkins
--- format that GitHub and GitLab test reporters read).
local M = {}

local function test_name(t)
  return t.class and t.class ~= "" and t.name:find(t.class .. ".", 1, true) ~= 1
    and (t.class .. "." .. t.name) or t.name
end

--- Returns an object with :suite(suite) (writes the TAP lines of one file's
--- tests with out, a function taking a line) and :finish() (writes the
--- plan line); counts what it wrote in .counts {tests, failures, errors,
--- skipped}.
function M.tap(out)
  local self = { counts = { tests = 0, failures = 0, errors = 0, skipped = 0 } }
  out("TAP version 13")
  function self.suite(_, suite)
    out("# " .. suite.file)
    for _, t in ipairs(suite.tests) do
      local c = self.counts
      c.tests = c.tests + 1
      local name = test_name(t):gsub("#", "\\#")
      if t.status == "SUCCESS" then
        out(("ok %d - %s"):format(c.tests, name))
      elseif t.status == "SKIP" then
        c.skipped = c.skipped + 1
        out(("ok %d - %s # SKIP %s"):format(c.tests, name, (t.message or ""):gsub("\n", " ")))
      else
        if t.status == "FAIL" then c.failures = c.failures + 1 else c.errors = c.errors + 1 end
        out(("not ok %d - %s"):format(c.tests, name))
        out("  ---")
        out("  file: " .. suite.file)
        out("  status: " .. t.status)
        for line in ((t.message or "") .. "\n" .. (t.trace or "")):gmatch("[^\n]+") do
          out("  # " .. line)
        end
        out("  ...")
      end
    end
  end
  function self.finish(_)
    out("1.." .. self.counts.tests)
  end
  return self
end

-- XML 1.0 allows tab, LF, CR and characters from U+0020; anything else
-- from a test's output (an escape sequence) is replaced, so the file
-- always parses.
local function xml_text(s)
  s = tostring(s or "")
  s = s:gsub("[%z\1-\8\11\12\14-\31]", "?")
  return (s:gsub("[&<>\"]", { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;" }))
end

-- LuaUnit names a method "Class.method"; JUnit has the class beside it.
local function method_name(t)
  local prefix = (t.class or "") .. "."
  return t.name:sub(1, #prefix) == prefix and t.name:sub(#prefix + 1) or t.name
end

local function seconds(x)
  return ("%.3f"):format(x or 0)
end

--- Returns the JUnit XML text of suites (as mlx.testing.runner.run_file
--- returns them): <testsuites> holding one <testsuite> per file (name =
--- the file), one <testcase> per test (classname = the LuaUnit class,
--- name = the method), <failure> for a failed assertion, <error> for an
--- error, <skipped/> for a skip, and what the file printed in the suite's
--- <system-out>.
---@param suites table[]
---@param info table {name, timestamp (ISO 8601), hostname}
function M.junit(suites, info)
  local out = { '<?xml version="1.0" encoding="UTF-8"?>' }
  local total = { tests = 0, failures = 0, errors = 0, skipped = 0, time = 0 }
  local body = {}
  for i, suite in ipairs(suites) do
    local c = { tests = 0, failures = 0, errors = 0, skipped = 0 }
    local cases = {}
    for _, t in ipairs(suite.tests) do
      c.tests = c.tests + 1
      local open = ('    <testcase classname="%s" name="%s" file="%s" time="%s"'):format(
        xml_text(t.class or suite.file), xml_text(method_name(t)), xml_text(suite.file), seconds(t.time))
      if t.status == "SUCCESS" then
        cases[#cases + 1] = open .. "/>"
      elseif t.status == "SKIP" then
        c.skipped = c.skipped + 1
        cases[#cases + 1] = open .. ('>\n      <skipped message="%s"/>\n    </testcase>'):format(xml_text(t.message))
      else
        local tag = t.status == "FAIL" and "failure" or "error"
        c[tag == "failure" and "failures" or "errors"] = c[tag == "failure" and "failures" or "errors"] + 1
        cases[#cases + 1] = open .. ('>\n      <%s type="%s" message="%s">%s</%s>\n    </testcase>'):format(
          tag, t.status == "FAIL" and "AssertionError" or "Error", xml_text((t.message or ""):match("^[^\n]*")),
          xml_text((t.message or "") .. "\n" .. (t.trace or "")), tag)
      end
    end
    body[#body + 1] = ('  <testsuite name="%s" id="%d" tests="%d" failures="%d" errors="%d" skipped="%d" time="%s" timestamp="%s" hostname="%s">')
      :format(xml_text(suite.file), i - 1, c.tests, c.failures, c.errors, c.skipped, seconds(suite.time),
        xml_text(info.timestamp), xml_text(info.hostname))
    table.move(cases, 1, #cases, #body + 1, body)
    body[#body + 1] = "    <system-out>" .. xml_text(suite.output) .. "</system-out>"
    body[#body + 1] = "  </testsuite>"
    for k in pairs(c) do total[k] = total[k] + c[k] end
    total.time = total.time + (suite.time or 0)
  end
  out[#out + 1] = ('<testsuites name="%s" tests="%d" failures="%d" errors="%d" skipped="%d" time="%s">')
    :format(xml_text(info.name or "mlx test"), total.tests, total.failures, total.errors, total.skipped, seconds(total.time))
  table.move(body, 1, #body, #out + 1, out)
  out[#out + 1] = "</testsuites>"
  return table.concat(out, "\n") .. "\n"
end

return M
