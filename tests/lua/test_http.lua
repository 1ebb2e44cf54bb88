-- mlx.http against a real HTTP server on 127.0.0.1 (tests/helper/http_server.py).
local lu = require "luaunit"
local fs = require "mlx.fs"
local hash = require "mlx.hash"
local http = require "mlx.http"
package.path = (arg[0]:match("^(.*)/") or ".") .. "/?.lua;" .. package.path
local support = require "support"
local tempdir, read_file = support.tempdir, support.read_file

local HELPER = (arg[0]:match("^(.*)/") or ".") .. "/../helper/http_server.py"

local function write_file(path, s)
  local f = assert(io.open(path, "wb"))
  f:write(s)
  f:close()
end

local function now()
  -- os.clock() is CPU time; the server's delays are wall time.
  local f = assert(io.open("/proc/uptime"))
  local t = tonumber(f:read("a"):match("^(%S+)"))
  f:close()
  return t
end

--- Starts the helper server; returns {base, dir, stop}.
local function start_server(options, scheme)
  local dir = tempdir()
  local pipe = assert(io.popen(("exec python3 '%s' '%s' %s"):format(HELPER, dir, options or "")))
  local port = pipe:read("l")
  assert(port and port:match("^%d+$"), "the test server did not start")
  local server = { base = (scheme or "http") .. "://127.0.0.1:" .. port, dir = dir, port = port }
  function server.stop()
    http.get(server.base .. "/shutdown", { insecure = true, retries = 3, backoff = 0.1 })
    pipe:close()
    os.execute("rm -rf '" .. dir .. "'")
  end
  return server
end

local function peak_rss_kib()
  for line in io.lines("/proc/self/status") do
    local kib = line:match("^VmHWM:%s+(%d+)")
    if kib then return tonumber(kib) end
  end
end

local server = start_server()
local base = server.base
local unique = 0
local function key()
  unique = unique + 1
  return "k" .. unique
end

TestResponses = {}

function TestResponses:test_get_returns_status_headers_body_and_time()
  local res = assert(http.get(base .. "/echo", { query = { q = "a b&c", n = { 1, 2.5 } } }))
  lu.assertEquals(res.status, 200)
  lu.assertEquals(res.reason, "OK")
  lu.assertEquals(res.headers["content-type"], "application/json")
  lu.assertEquals(tonumber(res.headers["content-length"]), #res.body)
  lu.assertTrue(res.time > 0 and res.time < 5)
  lu.assertEquals(res.url, base .. "/echo?n=1&n=2.5&q=a%20b%26c")
  local echo = assert(res:json())
  lu.assertEquals(echo.method, "GET")
  lu.assertEquals(echo.query, "n=1&n=2.5&q=a%20b%26c")
  res = assert(http.get(base .. "/echo", { query = { lr = 0.1, eps = 1e-8 } }))
  lu.assertEquals(assert(res:json()).query, "eps=1e-08&lr=0.1", "floats as their shortest text")
  lu.assertEquals(echo.headers["user-agent"], "mlx/" .. require("mlx").version)
end

function TestResponses:test_http_errors_are_responses_unless_expect_says_otherwise()
  local res, err = http.get(base .. "/status/404")
  lu.assertNil(err)
  lu.assertEquals(res.status, 404)
  lu.assertEquals(res.body, "status 404\n")

  local none, msg, code, failed = http.get(base .. "/status/500", { expect = 200 })
  lu.assertNil(none)
  lu.assertEquals(msg, "GET " .. base .. "/status/500: expected status 200, got 500 Internal Server Error")
  lu.assertEquals(code, "http")
  lu.assertEquals(failed.status, 500)

  res = assert(http.post(base .. "/files/x.txt", { body = "x", expect = { 200, 201 } }))
  lu.assertEquals(res.status, 201)
end

function TestResponses:test_post_json_and_decode_the_reply()
  local res = assert(http.post(base .. "/echo", {
    json = { model = "iris", version = 3, tags = { "a" } },
    headers = { ["X-Request-Id"] = 42 },
    expect = 200,
  }))
  local echo = assert(res:json())
  lu.assertEquals(echo.method, "POST")
  lu.assertEquals(echo.headers["content-type"], "application/json")
  lu.assertEquals(echo.headers["x-request-id"], "42")
  lu.assertEquals(echo.body, '{"model":"iris","tags":["a"],"version":3}')

  local text = assert(http.get(base .. "/text"))
  local value, err, code = text:json()
  lu.assertNil(value)
  lu.assertStrContains(err, base .. "/text: response is not JSON")
  lu.assertEquals(code, "invalid")
end

function TestResponses:test_put_and_delete_send_their_method_and_body()
  local echo = assert(http.put(base .. "/echo?x=1", { body = "payload", query = { y = 2 } })):json()
  lu.assertEquals(echo.method, "PUT")
  lu.assertEquals(echo.body, "payload")
  lu.assertEquals(echo.query, "x=1&y=2")
  echo = assert(http.delete(base .. "/echo")):json()
  lu.assertEquals(echo.method, "DELETE")
  echo = assert(http.request { method = "patch", url = base .. "/echo", body = "p" }):json()
  lu.assertEquals(echo.method, "PATCH")
end

function TestResponses:test_large_body_in_memory()
  local size = 3000000
  local res = assert(http.get(base .. "/large", { query = { size = size } }))
  lu.assertEquals(#res.body, size)
  lu.assertEquals(res.size, size)
  local pattern = {}
  for i = 0, 255 do pattern[#pattern + 1] = string.char(i) end
  pattern = table.concat(pattern):rep(256)
  local want = pattern:rep(size // #pattern) .. pattern:sub(1, size % #pattern)
  lu.assertEquals(hash.bytes(res.body), hash.bytes(want))
end

function TestResponses:test_redirects_are_followed_or_not()
  local res = assert(http.get(base .. "/redirect", { query = { to = "/echo" } }))
  lu.assertEquals(res.status, 200)
  lu.assertEquals(res.url, base .. "/echo")
  res = assert(http.get(base .. "/redirect?to=/echo&code=307", { follow = false }))
  lu.assertEquals(res.status, 307)
  lu.assertEquals(res.headers.location, "/echo")
  local none, err, code = http.get(base .. "/loop")
  lu.assertNil(none)
  lu.assertEquals(err, "GET " .. base .. "/loop: more than 10 redirects")
  lu.assertEquals(code, "redirects")
end

function TestResponses:test_requests_to_one_host_reuse_the_connection()
  local first = assert(http.get(base .. "/echo")):json()
  local second = assert(http.post(base .. "/echo", { body = "x" })):json()
  lu.assertEquals(second.client_port, first.client_port)
end

TestRetries = {}

function TestRetries:test_503_then_200_succeeds_respecting_retry_after()
  local k = key()
  local start = now()
  local res = assert(http.get(base .. "/flaky/" .. k .. "?fail=1&retry_after=1", {
    retries = 3, backoff = 0.01, expect = 200,
  }))
  local elapsed = now() - start
  lu.assertEquals(res.status, 200)
  lu.assertEquals(res.attempts, 2)
  lu.assertTrue(elapsed >= 0.95, "waited as Retry-After: 1 says, not the 0.01 s backoff: " .. elapsed)
  lu.assertEquals(assert(http.get(base .. "/hits/" .. k)):json().hits, 2)
end

function TestRetries:test_backoff_grows_exponentially_with_jitter_and_gives_up()
  local delays = {}
  local k = key()
  local res, err, code, last = http.get(base .. "/flaky/" .. k .. "?fail=9&status=429", {
    retries = 3, backoff = 0.02, expect = 200,
    on_retry = function(r) delays[#delays + 1] = r.delay; lu.assertEquals(r.status, 429) end,
  })
  lu.assertNil(res)
  lu.assertEquals(code, "http")
  lu.assertEquals(err, "GET " .. base .. "/flaky/" .. k .. "?fail=9&status=429: expected status 200, got 429 Too Many Requests (4 attempts)")
  lu.assertEquals(last.attempts, 4)
  lu.assertEquals(#delays, 3)
  for i, d in ipairs(delays) do
    local full = 0.02 * 2 ^ (i - 1)
    lu.assertTrue(d >= full / 2 and d <= full, ("delay %d: %g not in [%g, %g]"):format(i, d, full / 2, full))
  end
  lu.assertEquals(assert(http.get(base .. "/hits/" .. k)):json().hits, 4)
end

function TestRetries:test_client_errors_are_not_retried()
  local k = key()
  local res = assert(http.get(base .. "/flaky/" .. k .. "?fail=1&status=404", { retries = 3 }))
  lu.assertEquals(res.status, 404)
  lu.assertEquals(res.attempts, 1)
end

function TestRetries:test_waits_for_a_service_that_is_starting()
  local late = start_server("--delay 0.7")
  local refused = 0
  local res = assert(http.get(late.base .. "/echo", {
    retries = 20, backoff = 0.05, backoff_max = 0.2, expect = 200,
    on_retry = function(r) if r.code == "refused" then refused = refused + 1 end end,
  }))
  late.stop()
  lu.assertEquals(res.status, 200)
  lu.assertTrue(refused >= 1, "connection refused at first")
  lu.assertEquals(res.attempts, refused + 1)
end

function TestRetries:test_transport_failure_after_retries_says_how_many()
  local none, err, code = http.get("http://127.0.0.1:1/health", { retries = 2, backoff = 0.01 })
  lu.assertNil(none)
  lu.assertEquals(err, "GET http://127.0.0.1:1/health: connection refused (3 attempts)")
  lu.assertEquals(code, "refused")
end

TestTransport = {}

function TestTransport:test_each_failure_has_its_own_code_and_message()
  local cases = {
    { "http://127.0.0.1:1/", "refused", "connection refused" },
    { "http://nosuch.invalid/", "dns", "cannot resolve host name nosuch.invalid" },
    { base .. "/close", "connection", "connection lost: Empty reply from server" },
    { "ftp://127.0.0.1/", "invalid", "bad URL: " },
  }
  for _, case in ipairs(cases) do
    local none, err, code = http.get(case[1])
    lu.assertNil(none)
    lu.assertEquals(code, case[2])
    lu.assertStrContains(err, "GET " .. case[1] .. ": " .. case[3])
  end
end

function TestTransport:test_timeout()
  local start = now()
  local none, err, code = http.get(base .. "/slow?delay=3", { timeout = 0.3 })
  lu.assertNil(none)
  lu.assertEquals(code, "timeout")
  lu.assertEquals(err, "GET " .. base .. "/slow?delay=3: timed out: no complete response within 0.3 s")
  lu.assertTrue(now() - start < 2)
end

function TestTransport:test_tls_is_verified_by_default()
  local dir = tempdir()
  local cert, keyfile = dir .. "/cert.pem", dir .. "/key.pem"
  lu.assertTrue(os.execute(("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
    .. " -keyout '%s' -out '%s' -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -days 1"
    .. " >/dev/null 2>&1"):format(keyfile, cert)))
  local tls = start_server(("--tls '%s' '%s'"):format(cert, keyfile), "https")
  local none, err, code = http.get(tls.base .. "/echo")
  local trusted = http.get(tls.base .. "/echo", { ca_file = cert })
  local insecure = http.get(tls.base .. "/echo", { insecure = true })
  tls.stop()
  os.execute("rm -rf '" .. dir .. "'")
  lu.assertNil(none)
  lu.assertEquals(code, "tls")
  lu.assertStrContains(err, "GET " .. tls.base .. "/echo: TLS failed: ")
  lu.assertStrContains(err, "certificate")
  lu.assertEquals(trusted.status, 200)
  lu.assertEquals(insecure.status, 200)
end

function TestTransport:test_secrets_never_appear_in_messages()
  local headers = { Authorization = "Bearer s3cr3t-token", ["X-Api-Key"] = "k3y-value" }
  local _, refused = http.get("http://user:pa55word@127.0.0.1:1/", { headers = headers, retries = 1, backoff = 0 })
  local _, failed = http.get(base .. "/status/503", { headers = headers, expect = 200 })
  local _, lost = http.get(base .. "/close", { headers = headers })
  for _, msg in ipairs({ refused, failed, lost }) do
    lu.assertNotStrContains(msg, "s3cr3t")
    lu.assertNotStrContains(msg, "k3y-value")
    lu.assertNotStrContains(msg, "pa55word")
  end
  lu.assertStrContains(refused, "GET http://***@127.0.0.1:1/: connection refused")
  local ok, raised = pcall(http.get, base, { headers = { Authorization = "Bearer s3cr3t\r\nX: y" } })
  lu.assertFalse(ok)
  lu.assertNotStrContains(raised, "s3cr3t")
end

-- Verbosity is an option of the call (or of set_defaults, as the CLI passes
-- -v): mlx.http never reads the CLI's state.
function TestTransport:test_verbose_is_an_option_not_cli_state()
  local notes = {}
  local real_stderr = io.stderr
  io.stderr = { write = function(_, ...) notes[#notes + 1] = table.concat({ ... }) end }
  local cli = require "mlx.cli"
  local saved = cli.globals.verbose
  cli.globals.verbose = true
  local ok, err = pcall(function()
    http.get(base .. "/status/503", { retries = 1, backoff = 0.01 })
    lu.assertEquals(#notes, 0, "the CLI's -v is not read by mlx.http")
    http.get(base .. "/status/503", { retries = 1, backoff = 0.01, verbose = true })
    lu.assertEquals(#notes, 1)
    lu.assertStrMatches(notes[1], "mlx: GET " .. base:gsub("%p", "%%%0") ..
      "/status/503: 503 Service Unavailable; retry 1 of 1 in 0%.0 s\n")
    http.set_defaults { verbose = true }
    http.get(base .. "/status/503", { retries = 1, backoff = 0.01 })
    lu.assertEquals(#notes, 2, "set_defaults{verbose = true} applies to later requests")
    http.get(base .. "/status/503", { retries = 1, backoff = 0.01, verbose = false })
    lu.assertEquals(#notes, 2, "a request's own field wins")
  end)
  http.set_defaults { verbose = false }
  cli.globals.verbose = saved
  io.stderr = real_stderr
  assert(ok, err)
  lu.assertErrorMsgContains("'on_retry' has no default", http.set_defaults, { on_retry = print })
  lu.assertErrorMsgContains("field 'retries' must be >= 0", http.set_defaults, { retries = -1 })
  lu.assertErrorMsgContains("field 'verbose' must be a boolean, not a number", http.set_defaults, { verbose = 1 })
end

function TestTransport:test_misuse_raises()
  lu.assertErrorMsgContains("unknown request field 'tiemout'", http.get, base, { tiemout = 1 })
  lu.assertErrorMsgContains("at most one of body, body_file and json", http.post, base, { body = "a", json = {} })
  lu.assertErrorMsgContains("sha256 must be 64 hex digits", http.get, base, { sha256 = "abc" })
  lu.assertErrorMsgContains("expect must be a status code", http.get, base, { expect = "200" })
  lu.assertErrorMsgContains("url must be a string", http.get, nil)
  lu.assertErrorMsgContains("request needs a url", http.request, { method = "GET" })
end

TestFiles = {}

function TestFiles:test_download_is_renamed_only_when_complete_and_verified()
  local dir = tempdir()
  local source = server.dir .. "/model.bin"
  write_file(source, ("weights"):rep(100000))
  local digest = hash.file(source)
  local out = dir .. "/model.bin"

  local res = assert(http.get(base .. "/files/model.bin", { out_file = out, sha256 = digest }))
  lu.assertNil(res.body)
  lu.assertEquals(res.sha256, digest)
  lu.assertEquals(res.path, out)
  lu.assertEquals(hash.file(out), digest)
  lu.assertEquals(fs.list(dir), { "model.bin" })

  write_file(out, "old")
  local none, err, code, got = http.get(base .. "/files/model.bin", { out_file = out, sha256 = ("0"):rep(64) })
  lu.assertNil(none)
  lu.assertEquals(code, "corrupt")
  lu.assertStrContains(err, "does not match its sha256: expected " .. ("0"):rep(64) .. ", got " .. digest)
  lu.assertEquals(got.sha256, digest)
  lu.assertEquals(read_file(out), "old")
  lu.assertEquals(fs.list(dir), { "model.bin" })

  local missing = assert(http.get(base .. "/files/nothing.bin", { out_file = out }))
  lu.assertEquals(missing.status, 404)
  lu.assertEquals(missing.body, "no file\n")
  lu.assertEquals(read_file(out), "old")
  lu.assertEquals(fs.list(dir), { "model.bin" })
  os.execute("rm -rf '" .. dir .. "'")
end

function TestFiles:test_body_in_memory_is_checked_against_sha256()
  local body = assert(http.get(base .. "/text")).body
  lu.assertEquals(assert(http.get(base .. "/text", { sha256 = hash.bytes(body) })).body, body)
  local none, err, code, res = http.get(base .. "/text", { sha256 = ("ab"):rep(32) })
  lu.assertNil(none)
  lu.assertEquals(code, "corrupt")
  lu.assertStrContains(err, "response body does not match its sha256")
  lu.assertEquals(res.body, body)
end

function TestFiles:test_interrupted_download_leaves_no_file()
  local dir = tempdir()
  local none, _, code = http.get(base .. "/large?size=200000000", { out_file = dir .. "/x.bin", timeout = 0.2 })
  lu.assertNil(none)
  lu.assertEquals(code, "timeout")
  lu.assertEquals(fs.list(dir), {})
  os.execute("rm -rf '" .. dir .. "'")
end

function TestFiles:test_upload_missing_file_fails_with_notfound()
  local none, err, code = http.put(base .. "/files/x", { body_file = "/nonexistent/model.bin" })
  lu.assertNil(none)
  lu.assertEquals(code, "notfound")
  lu.assertStrContains(err, "cannot open /nonexistent/model.bin")
end

-- 100 MB up and back down with memory that does not grow with the file.
function TestFiles:test_100mb_upload_and_download_in_constant_memory()
  local dir = tempdir()
  local path, back = dir .. "/model.bin", dir .. "/back.bin"
  local size = 100 * 1024 * 1024
  lu.assertTrue(os.execute(("truncate -s %d '%s' && printf 'head' | dd of='%s' conv=notrunc status=none")
    :format(size, path, path)))
  local digest = hash.file(path)
  local before = peak_rss_kib()
  local up = assert(http.put(base .. "/files/model.bin", { body_file = path, expect = 201 }))
  local stored = assert(up:json())
  lu.assertEquals(stored.size, size)
  lu.assertEquals(stored.sha256, digest)
  local down = assert(http.get(base .. "/files/model.bin", { out_file = back, sha256 = stored.sha256 }))
  lu.assertEquals(down.size, size)
  local growth = peak_rss_kib() - before
  os.execute("rm -rf '" .. dir .. "'")
  lu.assertTrue(growth < 20 * 1024, ("peak RSS grew by %d KiB for a 100 MiB round trip"):format(growth))
end

local code = lu.LuaUnit.run("-o", "tap")
server.stop()
os.exit(code, true)
