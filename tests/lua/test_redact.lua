-- mlx.redact: secrets in URLs hidden in any text, by name, case-insensitively.
local lu = require "luaunit"
local redact = require "mlx.redact"

TestRedact = {}

function TestRedact:test_listed_names_are_hidden_whatever_their_case()
  lu.assertEquals(redact.text("https://h/p?API_KEY=abc&page=2&Token=t1#access_token=t2"),
    "https://h/p?API_KEY=***&page=2&Token=***#access_token=***")
  lu.assertEquals(redact.text("https://b.s3.example/o?X-Amz-Credential=AK%2F2024&X-Amz-Signature=ff00&x=1"),
    "https://b.s3.example/o?X-Amz-Credential=***&X-Amz-Signature=***&x=1")
end

function TestRedact:test_names_containing_a_secret_word_are_hidden()
  lu.assertEquals(redact.text("http://h/?github_token=g&db_password=p&author=a"),
    "http://h/?github_token=***&db_password=***&author=a")
end

function TestRedact:test_passwords_are_hidden()
  lu.assertEquals(redact.text("fetching https://ada:pw@h.example/x"), "fetching https://***@h.example/x")
end

function TestRedact:test_urls_inside_text_keep_the_text_around_them()
  lu.assertEquals(redact.text("GET http://h/?sig=abc: connection refused"), "GET http://h/?sig=***: connection refused")
  lu.assertEquals(redact.text("curl 'https://h/?key=k1' -o out && echo key=shown"),
    "curl 'https://h/?key=***' -o out && echo key=shown")
end

function TestRedact:test_text_without_secrets_is_unchanged()
  for _, s in ipairs({ "", "plain text", "http://h/?page=2&q=x", "a & b = c", "user@host", "?key=" }) do
    lu.assertEquals(redact.text(s), s)
  end
  lu.assertEquals(redact.text(42), 42)
  lu.assertNil(redact.text(nil))
end

function TestRedact:test_added_names_are_hidden()
  lu.assertEquals(redact.text("http://h/?my_param=v"), "http://h/?my_param=v")
  redact.add({ "My_Param" })
  lu.assertEquals(redact.text("http://h/?my_param=v&MY_PARAM=w"), "http://h/?my_param=***&MY_PARAM=***")
  lu.assertErrorMsgContains("non-empty strings", redact.add, { 1 })
end

os.exit(lu.LuaUnit.run("-o", "tap"), true)
