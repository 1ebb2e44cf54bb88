#!/usr/bin/python3
"""mlx ui in a real browser: headless Chromium driven by Selenium.

Makes a project with real runs (a pipeline recipe run twice with different
params, steps that log metrics through $MLX_EVENTS, a run tagged with a
script, a registered model with aliases), starts `mlx ui --port 0`, loads
each view and checks what it shows; then the safety rules over plain HTTP
(Host header, paths, methods, CORS), the page without Chart.js and an empty
project. Prints TAP.

Environment: MLX (the mlx under test). MLX_UI_SCREENSHOTS=DIR saves a
screenshot of each view into DIR (docs/images/ holds the ones docs/ui.md
shows: MLX_UI_SCREENSHOTS=docs/images meson test -C build --suite browser).
"""
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse

MLX = os.environ.get("MLX", "mlx")
SHOTS = os.environ.get("MLX_UI_SCREENSHOTS")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"

try:
    from selenium import webdriver
    from selenium.common.exceptions import NoAlertPresentException, NoSuchElementException, StaleElementReferenceException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait as SeleniumWait

    def WebDriverWait(driver, timeout):
        """A wait that looks again when the page has just redrawn the element
        it reads (live updates replace elements while a condition runs)."""
        return SeleniumWait(driver, timeout,
                            ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
except ImportError:
    print("1..0 # SKIP no python3-selenium")
    sys.exit(0)
if not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)):
    print("1..0 # SKIP no chromium or chromium-driver")
    sys.exit(0)

XSS = "<script>alert(1)</script>"

RECIPE = r"""
local p = require("mlx").pipeline "iris"
p:params { lr = 0.1, epochs = 30 }
p:step "prepare" {
  deps = { "data/iris.csv" }, outs = { "work/clean.csv" },
  cmd = "mkdir -p work && sort data/iris.csv > work/clean.csv",
}
p:step "train" {
  deps = { "work/clean.csv", "train.sh" }, outs = { "work/model.txt" }, params = { "lr", "epochs" },
  cmd = "sh train.sh ${lr} ${epochs}",
}
return p
"""

# A training step in shell: logs a loss and an accuracy curve per epoch.
TRAIN = r"""
lr=$1; epochs=$2
i=1
while [ $i -le $epochs ]; do
  loss=$(awk -v i=$i -v lr=$lr 'BEGIN { printf "%.5f", 1.5 * exp(-lr * i * 0.8) + 0.05 }')
  acc=$(awk -v i=$i -v lr=$lr 'BEGIN { printf "%.5f", 0.97 - 0.6 * exp(-lr * i) }')
  echo "{\"metric\":\"loss\",\"value\":$loss,\"step\":$i}" >> "$MLX_EVENTS"
  echo "{\"metric\":\"accuracy\",\"value\":$acc,\"step\":$i}" >> "$MLX_EVENTS"
  i=$((i + 1))
done
echo "{\"param\":\"optimizer\",\"value\":\"sgd\"}" >> "$MLX_EVENTS"
echo "trained with lr=$lr for $epochs epochs"
echo "model lr=$lr" > work/model.txt
"""

results = []


def ok(cond, name, detail=""):
    results.append((bool(cond), name, detail))
    line = ("ok" if cond else "not ok") + " %d - %s" % (len(results), name)
    print(line, flush=True)
    if not cond and detail:
        for d in str(detail).splitlines()[:20]:
            print("# " + d, flush=True)


def mlx(cwd, *args, check=True):
    r = subprocess.run([MLX, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=120)
    if check and r.returncode != 0:
        raise RuntimeError("mlx %s: exit %d: %s" % (" ".join(args), r.returncode, r.stderr))
    return r


def make_project(root):
    mlx(root, "init")
    os.makedirs(os.path.join(root, "data"))
    with open(os.path.join(root, "data/iris.csv"), "w") as f:
        f.write("".join("%d,%d,setosa\n" % (i, i * 7 % 13) for i in range(150)))
    with open(os.path.join(root, "pipeline.lua"), "w") as f:
        f.write(RECIPE)
    with open(os.path.join(root, "train.sh"), "w") as f:
        f.write(TRAIN)
    mlx(root, "recipe", "pipeline.lua", "-q", "-p", "lr=0.1")
    mlx(root, "recipe", "pipeline.lua", "-q", "-p", "lr=0.25")
    runs = json.loads(mlx(root, "runs", "--json", "--all").stdout)
    recipe_runs = [r for r in runs if r.get("parent") is None]
    train = [r for r in runs if r.get("step") == "train"]
    mlx(root, "runs", "tag", recipe_runs[0]["id"], "note=" + XSS)
    mlx(root, "runs", "tag", train[0]["id"], XSS + "=" + XSS)
    mlx(root, "model", "register", "iris", "work/model.txt", "-a", "staging")
    mlx(root, "model", "alias", "iris", "production", "1")
    return recipe_runs, train


class UI:
    """mlx ui --port 0 in a project, stopped with SIGTERM."""

    def __init__(self, root, env=None):
        e = dict(os.environ)
        e.update(env or {})
        self.proc = subprocess.Popen([MLX, "ui", "--port", "0"], cwd=root, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=e)
        self.url = self.proc.stdout.readline().strip()
        if not self.url.startswith("http://127.0.0.1:"):
            raise RuntimeError("mlx ui printed %r: %s" % (self.url, self.proc.stderr.read()))
        self.port = int(self.url.rsplit(":", 1)[1].strip("/"))

    def request(self, path, method="GET", host=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", host if host is not None else "127.0.0.1:%d" % self.port)
        for k, v in (headers or {}).items():
            conn.putheader(k, v)
        conn.endheaders()
        resp = conn.getresponse()
        body = resp.read()
        conn.close()
        return resp.status, dict((k.lower(), v) for k, v in resp.getheaders()), body

    def stop(self):
        self.proc.terminate()
        try:
            rc = self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc


def browser(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
              "--window-size=1400,1000", "--user-data-dir=" + profile]:
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def wait_ready(driver, view, timeout=30):
    WebDriverWait(driver, timeout).until(lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == view)


def shot(driver, name):
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        driver.save_screenshot(os.path.join(SHOTS, "ui-%s.png" % name))


def no_alert(driver):
    try:
        driver.switch_to.alert
        return False
    except NoAlertPresentException:
        return True


def charts_drawn(driver):
    # A canvas Chart.js drew on holds a chart instance and non-blank pixels.
    return driver.execute_script("""
      const cs = [...document.querySelectorAll('canvas[data-metric]')];
      return cs.filter(c => window.Chart && Chart.getChart(c) && c.width > 0 &&
        c.getContext('2d').getImageData(0, 0, c.width, c.height).data.some(v => v !== 0)).length;""")


def view_tests(root, ui, recipe_runs, train, profile):
    d = browser(profile)
    try:
        # Experiments: one row per recipe run, metrics as columns.
        d.get(ui.url)
        wait_ready(d, "exp")
        rows = d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")
        ok(len(rows) == 2, "experiments table: a row per recipe run", "rows: %d" % len(rows))
        heads = [h.text for h in d.find_elements(By.CSS_SELECTOR, "#runs-table th")]
        ok(any(h.startswith("metrics.accuracy") for h in heads) and any(h.startswith("params.lr") for h in heads),
           "experiments table: params and metrics are columns", heads)
        first_param = next((i for i, h in enumerate(heads) if h.startswith("params.")), len(heads))
        first_metric = next((i for i, h in enumerate(heads) if h.startswith("metrics.")), -1)
        ok(first_param < first_metric, "experiments table: the params come before the metrics", heads)
        ok("0.25" in d.find_element(By.ID, "runs-table").text, "experiments table: shows the params' values")
        WebDriverWait(d, 30).until(lambda _: "of" in d.find_element(By.ID, "count").text)
        ok(d.find_element(By.ID, "count").text == "1–2 of 2", "experiments table: the count of rows",
           d.find_element(By.ID, "count").text)
        shot(d, "experiments")

        # Sort by a metric, by clicking its header: descending first.
        header = [h for h in d.find_elements(By.CSS_SELECTOR, "#runs-table th") if h.text.startswith("params.lr")][0]
        header.click()
        wait_ready(d, "exp")
        first = d.find_element(By.CSS_SELECTOR, "#runs-table tbody tr").text
        ok("0.25" in first, "sort: clicking params.lr puts the largest first", first)

        # Filter with the grammar of mlx runs.
        box = d.find_element(By.ID, "filter")
        box.clear()
        box.send_keys("params.lr = 0.1\n")
        wait_ready(d, "exp")
        rows = d.find_elements(By.CSS_SELECTOR, "#runs-table tbody tr")
        ok(len(rows) == 1 and "0.1" in rows[0].text, "filter: params.lr = 0.1 leaves one row", [r.text for r in rows])
        box = d.find_element(By.ID, "filter")
        box.clear()
        box.send_keys("metrics.loss >>\n")
        wait_ready(d, "exp")
        err = d.find_elements(By.ID, "filter-error")
        ok(err and "column" in err[0].text, "filter: a bad filter shows the parser's message",
           err[0].text if err else "none")
        d.find_element(By.ID, "filter").clear()
        d.find_element(By.ID, "filter").send_keys("\n")
        wait_ready(d, "exp")

        # Choose columns: untick a metric, it goes away.
        d.find_element(By.CSS_SELECTOR, "details.columns summary").click()
        d.find_element(By.CSS_SELECTOR, "details.columns input[value='metrics.loss']").click()
        wait_ready(d, "exp")
        heads = [h.text for h in d.find_elements(By.CSS_SELECTOR, "#runs-table th")]
        ok(not any(h.startswith("metrics.loss") for h in heads), "choose columns: an unticked metric is hidden", heads)

        # XSS: the tag shows as text, no alert.
        ok(no_alert(d), "XSS: no alert on the experiments table")

        # Select two runs, compare.
        for b in d.find_elements(By.CSS_SELECTOR, "#runs-table input.select")[:2]:
            b.click()
        d.find_element(By.ID, "compare").click()
        wait_ready(d, "compare")
        text = d.find_element(By.ID, "main").text
        ok(all(r["id"][:12] in text for r in recipe_runs), "compare: shows both runs", text[:300])
        ok(charts_drawn(d) >= 2, "compare: metric curves drawn (loss, accuracy)", charts_drawn(d))
        series = d.execute_script("return Chart.getChart(document.querySelector('canvas[data-metric=loss]')).data.datasets.length")
        ok(series == 2, "compare: the two runs' curves are overlaid in one chart", series)
        deltas = d.find_elements(By.CSS_SELECTOR, "#compare-metrics .delta")
        ok(len(deltas) >= 2, "compare: metrics side by side with deltas", len(deltas))
        ok("lr" in d.find_element(By.ID, "compare-params").text, "compare: params side by side")
        shot(d, "compare")

        # A run: the train step of the second recipe run.
        d.get(ui.url + "#/run/" + train[0]["id"])
        wait_ready(d, "run")
        main = d.find_element(By.ID, "main").text
        ok("train" in main and "FINISHED" in main, "run: title and status")
        ok("lr" in d.find_element(By.TAG_NAME, "main").text and "optimizer" in main, "run: params, including logged ones")
        ok("accuracy" in d.find_element(By.ID, "metrics-table").text, "run: metric summary")
        ok(charts_drawn(d) == 2, "run: a chart per metric with a history", charts_drawn(d))
        art = d.find_element(By.ID, "artifacts").text
        ok("work/clean.csv" in art and "work/model.txt" in art, "run: inputs and outputs with hashes", art)
        links = d.find_elements(By.CSS_SELECTOR, "#artifacts a")
        ok(len(links) >= 1, "run: an input links to the run that produced it")
        ok("trained with lr=" in d.find_element(By.ID, "log").text, "run: the log tail")
        ok("peak memory" in d.find_element(By.ID, "info").text, "run: timings and peak memory")
        tags = d.find_element(By.ID, "tags").text
        ok(XSS in tags, "XSS: a tag key and value with a script show as text", tags)
        ok(no_alert(d) and not d.find_elements(By.CSS_SELECTOR, "#tags script"), "XSS: no script element, no alert")
        shot(d, "run")

        # Follow the input link to the producing step. The hash changes
        # after the click returns: clear the mark first, so the wait sees
        # the new page, not this one.
        d.execute_script("document.body.dataset.ready = ''")
        links[0].click()
        wait_ready(d, "run")
        ok("prepare" in d.find_element(By.TAG_NAME, "h1").text, "run: the lineage link opens the producing step")

        # Models.
        d.get(ui.url + "#/models")
        wait_ready(d, "models")
        text = d.find_element(By.ID, "main").text
        ok("iris:1" in text and "@staging" in text and "@production" in text, "models: versions and aliases", text[:300])
        ok("set" in d.find_element(By.CSS_SELECTOR, "table.history").text, "models: alias history")
        ok("data/iris.csv" in text or "work/clean.csv" in text, "models: lineage to the data")
        shot(d, "models")

        # Pipeline graph, drawn by Graphviz.
        d.get(ui.url + "#/graph")
        wait_ready(d, "graph")
        img = d.find_elements(By.CSS_SELECTOR, "section.graph img")
        WebDriverWait(d, 30).until(lambda _: d.execute_script("const i = document.querySelector('section.graph img'); return !i || (i.complete && i.naturalWidth > 0)"))
        if shutil.which("dot"):
            width = d.execute_script("return document.querySelector('section.graph img').naturalWidth")
            ok(img and width > 50, "graph: Graphviz's SVG is shown", width)
        else:
            ok(d.find_elements(By.CSS_SELECTOR, "pre.graph-text"), "graph: shown as text without Graphviz")
        steps = [r.get_attribute("data-step") for r in d.find_elements(By.CSS_SELECTOR, "tr[data-step]")]
        ok(steps == ["prepare", "train"], "graph: the lock's steps with their state", steps)

        # mlx verify re-runs train in copies of the workspace and records
        # its own step run, newer than the project's: the step's newest run
        # is still the project's, and the verification is shown apart.
        mlx(root, "verify", "pipeline.lua", "train")
        d.get("about:blank")
        d.get(ui.url + "#/graph")
        wait_ready(d, "graph")
        row = d.find_element(By.CSS_SELECTOR, "tr[data-step=train]")
        cells = row.find_elements(By.TAG_NAME, "td")
        ok(cells[2].text == train[0]["id"][:12], "graph: a step's newest run is the project's, not mlx verify's",
           "%r, expected %r" % (cells[2].text, train[0]["id"][:12]))
        ok(row.find_elements(By.CSS_SELECTOR, "td[data-verification=passed]") and "passed" in cells[3].text,
           "graph: the verification is shown in its own column", cells[3].text)
        shot(d, "graph")
        d.get(ui.url + "#/runs")
        wait_ready(d, "runs")
        labelled = [r.find_element(By.CSS_SELECTOR, "td:nth-child(3)").text
                    for r in d.find_elements(By.CSS_SELECTOR, "tr[data-id]") if r.find_elements(By.CSS_SELECTOR, ".verify-label")]
        ok(sorted(labelled) == ["pipeline.lua [verify]", "pipeline.lua:train [verify]"],
           "runs: mlx verify's runs are marked [verify], and only they", labelled)
        ok(no_alert(d), "XSS: no alert on any view")
    finally:
        d.quit()


def live_test(root, ui, profile):
    """A recipe running while the page is open: its metrics appear live. The
    step logs a point every 0.5 s until the test has seen it running and
    opened its page (it creates stop.flag; at most 120 s), then a last point
    of 999: a fixed duration lost the race on a loaded machine, where the
    browser alone can take longer to start."""
    slow = r"""
local p = require("mlx").pipeline "live"
p:step "slow" { outs = { "work/slow.txt" },
  cmd = "i=0; while [ ! -e stop.flag ] && [ $i -lt 240 ]; do i=$((i+1)); echo '{\"metric\":\"progress\",\"value\":'$i',\"step\":'$i'}' >> $MLX_EVENTS; sleep 0.5; done; echo '{\"metric\":\"progress\",\"value\":999,\"step\":'$((i+1))'}' >> $MLX_EVENTS; echo done > work/slow.txt" }
return p
"""
    with open(os.path.join(root, "live.lua"), "w") as f:
        f.write(slow)
    d = browser(profile)
    rec = subprocess.Popen([MLX, "recipe", "live.lua", "-q"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        run_id = None
        deadline = time.time() + 60
        while time.time() < deadline and not run_id and rec.poll() is None:
            status, _, body = ui.request("/api/runs?filter=" + urllib.parse.quote("step = 'slow' and status = 'RUNNING'"))
            runs = json.loads(body)["runs"]
            run_id = runs[0]["id"] if runs else None
            time.sleep(0.2)
        if not run_id:
            rec.wait(timeout=60)
            ok(False, "live: the running step is listed as RUNNING",
               "recipe exit %s: %s" % (rec.returncode, rec.stderr.read().decode(errors="replace")))
            return
        ok(True, "live: the running step is listed as RUNNING")
        # The pipeline view lists the running recipe's step, which no lock
        # pins yet (this pipeline's first run).
        d.get(ui.url + "#/graph")
        wait_ready(d, "graph")
        ok(d.find_elements(By.CSS_SELECTOR, "#running tr[data-running-step=slow]"),
           "live: the pipeline view lists a running recipe's step that no lock pins yet")
        d.get(ui.url + "#/run/" + run_id)
        wait_ready(d, "run")
        first = d.find_element(By.ID, "metrics-table").text if d.find_elements(By.ID, "metrics-table") else ""
        ok("RUNNING" in d.find_element(By.ID, "info").text, "live: the run page opens while the step runs")
        open(os.path.join(root, "stop.flag"), "w").close()
        # The page refreshes itself every 2 s while the run is RUNNING.
        WebDriverWait(d, 60).until(lambda _: "FINISHED" in d.find_element(By.ID, "info").text)
        last = d.find_element(By.ID, "metrics-table").text
        ok("progress" in last and " 999 " in " " + last.replace("\n", " ") + " ",
           "live: the page updated to the final metrics without a reload", "before: %r\nafter: %r" % (first, last))
    finally:
        open(os.path.join(root, "stop.flag"), "w").close()
        d.quit()
        rec.wait(timeout=60)


def safety_tests(ui):
    status, headers, body = ui.request("/api/runs")
    ok(status == 200 and "access-control-allow-origin" not in headers, "no CORS header on the API")
    status, headers, _ = ui.request("/api/runs", headers={"Origin": "http://evil.example"})
    ok("access-control-allow-origin" not in headers, "no CORS header even when an Origin asks")
    ok("script-src 'self'" in headers.get("content-security-policy", ""), "a Content-Security-Policy without inline scripts")
    for host in ["evil.example", "evil.example:%d" % ui.port, "127.0.0.1.evil.example", ""]:
        status, _, body = ui.request("/api/runs", host=host)
        ok(status == 421, "Host %r is refused (DNS rebinding)" % host, status)
    for host in ["localhost:%d" % ui.port, "127.0.0.1", "[::1]:%d" % ui.port]:
        status, _, _ = ui.request("/api/project", host=host)
        ok(status == 200, "Host %r is served" % host, status)
    for path in ["/../../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/app.js/../../../etc/passwd",
                 "/vendor/../../etc/passwd", "/vendor/chart.min.js/..%2f..%2fetc%2fpasswd", "//etc/passwd",
                 "/api/../../etc/passwd", "/.mlx/runs.db", "/pipeline.lua"]:
        status, _, body = ui.request(path)
        ok(status == 404 and b"root:" not in body and b"SQLite" not in body, "path %s is refused" % path, status)
    for method in ["POST", "PUT", "DELETE", "PATCH"]:
        status, headers, _ = ui.request("/api/runs", method=method)
        ok(status == 405 and headers.get("allow") == "GET, HEAD", "%s is refused: read-only" % method, status)
    status, _, body = ui.request("/api/runs?filter=" + urllib.parse.quote("metrics.loss >"))
    ok(status == 400 and b"filter: column" in body, "a bad filter is a 400 naming the column", body)
    status, _, body = ui.request("/api/runs/zzzzzzzz")
    ok(status == 404, "an unknown run is a 404", status)
    status, _, body = ui.request("/api/runs?limit=-1")
    ok(status == 400 and b"limit" in body, "a bad limit is a 400 naming it", body)


def api_tests(root, ui, recipe_runs):
    status, _, body = ui.request("/api/runs?all=1&limit=1000")
    api = json.loads(body)["runs"]
    cli = json.loads(mlx(root, "runs", "--json", "--all").stdout)
    ok([r["id"] for r in api] == [r["id"] for r in cli], "/api/runs: the same runs as mlx runs --json",
       "%d vs %d" % (len(api), len(cli)))
    ok(api[0].get("parent") == cli[0].get("parent"), "/api/runs: step runs carry their parent id")
    status, _, body = ui.request("/api/runs?limit=2&offset=1&all=1")
    page = json.loads(body)
    ok([r["id"] for r in page["runs"]] == [r["id"] for r in cli[1:3]] and page["total"] == len(cli),
       "/api/runs: offset and limit page the list; total counts all")
    status, _, body = ui.request("/api/count/runs?all=1")
    ok(json.loads(body)["total"] == len(cli), "/api/count/runs: how many runs match")
    status, _, body = ui.request("/api/count/exp?filter=" + urllib.parse.quote("params.lr = 0.1"))
    ok(json.loads(body)["total"] == 1, "/api/count/exp: how many rows match the filter")
    status, _, body = ui.request("/api/runs?count=0&limit=1")
    ok(json.loads(body)["total"] is None and len(json.loads(body)["runs"]) == 1, "/api/runs?count=0: the page without the total")
    status, _, body = ui.request("/api/exp?sort=" + urllib.parse.quote("-params.lr"))
    exp = json.loads(body)
    ok(exp["total"] == 2 and exp["runs"][0]["params"]["lr"] == "0.25", "/api/exp: rows sorted by a param", body[:200])
    train = [r for r in cli if r.get("step") == "train"][0]
    status, _, body = ui.request("/api/runs/%s/metrics/loss?points=10" % train["id"])
    m = json.loads(body)
    ok(m["total"] == 30 and len(m["steps"]) <= 10 and m["downsampled"] and m["steps"][0] == 1 and m["steps"][-1] == 30,
       "/api/runs/ID/metrics/KEY: downsampled, first and last kept", body[:300])


def main():
    tmp = tempfile.mkdtemp(prefix="mlx-ui-test-")
    try:
        root = os.path.join(tmp, "project")
        os.makedirs(root)
        recipe_runs, train = make_project(root)

        # Outside a project, and a port in use: exit 2 with one line.
        outside = os.path.join(tmp, "outside")
        os.makedirs(outside)
        r = mlx(outside, "ui", "--port", "0", check=False)
        ok(r.returncode == 2 and "not in an mlx project" in r.stderr, "outside a project: exit 2", r.stderr)
        # libmicrohttpd is loaded by mlx ui only, never linked into mlx.
        ldd = subprocess.run(["ldd", MLX], stdout=subprocess.PIPE, text=True).stdout
        ok("microhttpd" not in ldd, "the mlx binary does not link libmicrohttpd")
        env = dict(os.environ, LD_DEBUG="libs")
        r = subprocess.run([MLX, "runs"], cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env)
        ok(r.returncode == 0 and "libcurl" not in r.stderr and "microhttpd" not in r.stderr,
           "mlx runs loads neither libmicrohttpd nor libcurl")
        ui = UI(root)
        try:
            with open("/proc/%d/maps" % ui.proc.pid) as f:
                ok("libmicrohttpd" in f.read(), "mlx ui loads libmicrohttpd")
            r = mlx(root, "ui", "--port", str(ui.port), check=False)
            ok(r.returncode == 2 and ("port %d" % ui.port) in r.stderr and "--port" in r.stderr
               and len(r.stderr.strip().splitlines()) == 1, "a port in use: exit 2, one line naming it", r.stderr)
            r = mlx(root, "ui", "--port", "70000", check=False)
            ok(r.returncode == 2 and "--port" in r.stderr, "--port out of range: exit 2", r.stderr)

            api_tests(root, ui, recipe_runs)
            safety_tests(ui)
            view_tests(root, ui, recipe_runs, train, os.path.join(tmp, "profile1"))
            live_test(root, ui, os.path.join(tmp, "profile2"))
        finally:
            rc = ui.stop()
        ok(rc == 130, "mlx ui ends with 130 on SIGTERM", rc)

        # Without Chart.js: tables, and a note naming the package.
        ui = UI(root, {"MLX_WEB_CHARTJS": os.path.join(tmp, "no-chart.js")})
        d = browser(os.path.join(tmp, "profile3"))
        try:
            d.get(ui.url + "#/run/" + train[0]["id"])
            wait_ready(d, "run")
            note = d.find_elements(By.ID, "no-chartjs")
            ok(note and "libjs-chart.js" in note[0].text, "without Chart.js: a note names the package")
            ok("accuracy" in d.find_element(By.ID, "metrics-table").text and not d.find_elements(By.TAG_NAME, "canvas"),
               "without Chart.js: the metrics are a table")
        finally:
            d.quit()
            ui.stop()

        # An empty project: a page that says what to do.
        empty = os.path.join(tmp, "empty")
        os.makedirs(empty)
        mlx(empty, "init")
        ui = UI(empty)
        d = browser(os.path.join(tmp, "profile4"))
        try:
            d.get(ui.url)
            wait_ready(d, "exp")
            e = d.find_elements(By.ID, "empty")
            ok(e and "No runs yet" in e[0].text and "mlx recipe" in e[0].text, "empty project: a helpful page")
            shot(d, "empty")
            for view, marker in [("models", "no-models"), ("graph", "no-pipeline")]:
                d.get(ui.url + "#/" + view)
                wait_ready(d, view)
                ok(d.find_elements(By.ID, marker), "empty project: the %s view says what to do" % view)
            ok(not os.path.exists(os.path.join(empty, ".mlx/runs.db")), "empty project: serving it wrote nothing")

            # A lock arriving with a clone is data too: step names and paths
            # with markup show as text in the graph view and its SVG.
            evil = '<img src=x onerror="alert(2)">'
            with open(os.path.join(empty, "mlx.lock"), "w") as f:
                json.dump({"version": 1, "steps": {XSS: {
                    evil: {"key": "a" * 64, "deps": {},
                           "outs": {"out/" + XSS: {"type": "file", "hash": "b" * 64, "size": 1, "mode": "644"}}},
                    "next": {"key": "c" * 64, "deps": {"out/" + XSS: "b" * 64}, "outs": {}}}}}, f)
            d.get("about:blank")  # the graph view is open: load it anew
            d.get(ui.url + "#/graph")
            wait_ready(d, "graph")
            WebDriverWait(d, 30).until(lambda _: d.execute_script(
                "const i = document.querySelector('section.graph img'); return !i || (i.complete && i.naturalWidth > 0)"))
            text = d.find_element(By.ID, "main").text
            ok(XSS in text and evil in text and ("out/" + XSS) in text, "XSS: step names and paths of a lock show as text",
               text[:300])
            ok(no_alert(d) and not d.find_elements(By.CSS_SELECTOR, "main script, main img[onerror]"),
               "XSS: no script or handler from the lock runs")
            status, _, svg = ui.request("/api/graph.svg?pipeline=" + urllib.parse.quote(XSS))
            if shutil.which("dot"):
                ok(status == 200 and b"<script" not in svg and b"&lt;script&gt;" in svg and b"<img" not in svg,
                   "XSS: the SVG escapes what the lock names", svg[:400])

            # A model whose run logged many metrics, as an evaluation step
            # does (per-class precision and recall): its row wraps them
            # rather than widening the page past the window.
            with open(os.path.join(empty, "wide.lua"), "w") as f:
                f.write('for i = 1, 16 do require("mlx").log.metric(("precision.class_%02d"):format(i), i / 17) end\n')
            mlx(empty, "recipe", "wide.lua")
            wide = json.loads(mlx(empty, "runs", "--json", "--limit", "1").stdout)[0]["id"]
            mlx(empty, "model", "register", "wide", "wide.lua", "--run", wide)
            d.get(ui.url + "#/models")
            wait_ready(d, "models")
            text = d.find_element(By.ID, "main").text
            ok("precision.class_16=" in text, "models: a version's metrics", text[-300:])
            widths = d.execute_script("return [document.documentElement.scrollWidth, document.documentElement.clientWidth]")
            ok(widths[0] <= widths[1], "models: many metrics wrap instead of widening the page", widths)
        finally:
            d.quit()
            ui.stop()
    except Exception as e:  # a crash is a failed test, not a silent end
        import traceback
        ok(False, "the test ran to its end", traceback.format_exc())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("1..%d" % len(results))
    sys.exit(0 if all(r[0] for r in results) else 1)


if __name__ == "__main__":
    main()
