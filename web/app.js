// The page of `mlx ui`: a hash-routed view of the JSON API under /api/.
//
// Every string from the project (ids, tags, params, paths, logs) reaches the
// page through textContent or an attribute set with setAttribute, never as
// markup: a run tagged <script>…</script> shows those characters. The server's
// Content-Security-Policy forbids inline scripts as a second guard.
"use strict";

const main = document.getElementById("main");
const notes = document.getElementById("notes");
let project = null;
let timer = null; // the live refresh of the current view
let charts = []; // Chart.js instances of the current view, destroyed on leave

// ---- building blocks ----------------------------------------------------------

// el("td", {class: "num"}, "text", childNode…): an element; strings become text.
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "onclick" || k === "onchange" || k === "onkeydown") node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat()) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

async function api(path) {
  const resp = await fetch(path, { headers: { Accept: "application/json" } });
  const body = await resp.json().catch(() => ({ error: resp.statusText }));
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

function runLink(id, text) {
  return el("a", { href: "#/run/" + encodeURIComponent(id), class: "mono" }, text || id);
}

function status(s) {
  return el("span", { class: "status " + s }, s);
}

function fmtTime(ms) {
  if (ms === null || ms === undefined) return "";
  const d = new Date(ms);
  const p = (n) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())} ${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}`;
}

function fmtDuration(s) {
  if (s === null || s === undefined) return "";
  if (s < 1) return (s * 1000).toFixed(0) + " ms";
  if (s < 60) return s.toFixed(1) + " s";
  if (s < 3600) return Math.floor(s / 60) + " m " + Math.round(s % 60) + " s";
  return Math.floor(s / 3600) + " h " + Math.round((s % 3600) / 60) + " m";
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? n : n.toFixed(1)) + " " + units[i];
}

function fmtValue(v) {
  if (v === null || v === undefined) return "";
  if (typeof v === "number") {
    if (Number.isInteger(v)) return String(v);
    return Math.abs(v) >= 1e5 || Math.abs(v) < 1e-3 ? v.toPrecision(4) : String(+v.toPrecision(6));
  }
  return String(v);
}

function kvTable(obj, empty) {
  const keys = Object.keys(obj || {}).sort();
  if (keys.length === 0) return el("p", { class: "muted" }, empty || "none");
  return el("table", { class: "kv" }, keys.map((k) => el("tr", {}, el("td", {}, k), el("td", { class: "mono" }, fmtValue(obj[k])))));
}

// Replaces the view with nodes (arrays are flattened; null is nothing).
function show(...nodes) {
  main.replaceChildren(...nodes.flat(2).filter((n) => n !== null && n !== undefined && n !== false));
}

function showError(err) {
  show(el("p", { class: "error" }, String(err.message || err)));
  ready("error");
}

// Marks the view drawn: tests and bench/ui.sh wait for data-ready and read
// the time since the page started loading.
function ready(view) {
  document.body.dataset.renderedAt = String(Math.round(performance.now()));
  document.body.dataset.ready = view;
}

function live(fn, ms) {
  clearTimeout(timer);
  timer = setTimeout(fn, ms);
}

// Keys of params, metrics and tags go into filters and sorts in backticks,
// which take any character but a backtick.
function field(group, key) {
  return group + ".`" + key + "`";
}

// ---- charts -------------------------------------------------------------------

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

function chartsAvailable() {
  return typeof window.Chart === "function";
}

// Appends to parent a chart of metric key with one series per {label,
// steps, values}. The canvas is in the page before Chart.js sees it: a chart
// made on a detached canvas is never laid out.
function lineChart(parent, key, series) {
  const canvas = el("canvas", { "data-metric": key });
  const box = el("div", { class: "chart" }, el("h3", {}, key), el("div", { class: "canvas-box" }, canvas));
  parent.append(box);
  const datasets = series.map((s, i) => ({
    label: s.label,
    data: s.steps.map((x, j) => ({ x, y: s.values[j] })),
    borderColor: PALETTE[i % PALETTE.length],
    backgroundColor: PALETTE[i % PALETTE.length],
    borderWidth: 1.5,
    pointRadius: s.steps.length > 60 ? 0 : 2,
    spanGaps: true,
  }));
  const chart = new window.Chart(canvas, {
    type: "line",
    data: { datasets },
    options: {
      animation: false, parsing: false, normalized: true, responsive: true, maintainAspectRatio: false,
      interaction: { mode: "nearest", intersect: false },
      scales: { x: { type: "linear", title: { display: true, text: "step" } } },
      plugins: { legend: { display: series.length > 1 } },
    },
  });
  charts.push(chart);
  return chart;
}

function clearCharts() {
  for (const c of charts) c.destroy();
  charts = [];
}

// ---- experiments and runs tables ------------------------------------------------

const tableState = {
  exp: { filter: "", sort: "", offset: 0, limit: 50, selected: new Set(), columns: null },
  runs: { filter: "", sort: "", offset: 0, limit: 50, selected: new Set(), columns: null },
};

function savedColumns(kind) {
  try { return JSON.parse(localStorage.getItem("mlx.columns." + kind)); } catch (e) { return null; }
}

function emptyProject() {
  return el("div", { class: "empty", id: "empty" },
    el("h1", {}, "No runs yet"),
    el("p", {}, "This project has not recorded any run. Every ", el("code", {}, "mlx recipe"),
      " and every pipeline step is a run: run a recipe and its params, metrics and outputs appear here, live."),
    el("pre", {}, "mlx recipe pipeline.lua        # a recipe of this project\nmlx runs                       # the same runs in the terminal"),
    el("p", {}, "Steps log metrics by appending JSON lines to the file named by ", el("code", {}, "$MLX_EVENTS"),
      ", e.g. ", el("code", {}, '{"metric": "loss", "value": 0.31, "step": 12}'), "."));
}

async function tableView(kind) {
  const st = tableState[kind];
  if (!st.columns) st.columns = savedColumns(kind);
  // The rows first, the count after: counting every match costs more than
  // the page itself on a large project.
  const params = new URLSearchParams({ limit: st.limit, offset: st.offset, count: 0 });
  if (st.filter) params.set("filter", st.filter);
  if (st.sort) params.set("sort", st.sort);
  let data, error = null;
  try {
    data = await api((kind === "exp" ? "/api/exp?" : "/api/runs?") + params);
  } catch (e) {
    error = e.message;
    data = { total: 0, runs: [], columns: { params: [], metrics: [], tags: [] } };
  }
  if (!error && data.runs.length === 0 && st.offset === 0 && !st.filter && project && project.runs === 0) {
    show(emptyProject());
    ready(kind);
    live(() => route(), 3000);
    return;
  }
  // Columns: the chosen ones, else the first params and then the first
  // metrics: what was tried before what came of it, as mlx exp and
  // MLflow's table order them.
  const offered = [];
  for (const g of ["params", "metrics", "tags"]) for (const c of data.columns[g]) offered.push(g + "." + c.key);
  let chosen = st.columns;
  if (!chosen) {
    chosen = data.columns.params.slice(0, 6).map((c) => "params." + c.key)
      .concat(data.columns.metrics.slice(0, 8).map((c) => "metrics." + c.key));
  }
  const shown = chosen.filter((c) => offered.includes(c));

  const input = el("input", { type: "text", id: "filter", placeholder: "filter: metrics.acc > 0.9 and params.lr = '0.1'", value: st.filter });
  const apply = () => { st.filter = input.value.trim(); st.offset = 0; route(); };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  const compare = el("button", { class: "primary", id: "compare", disabled: st.selected.size < 2,
    onclick: () => { location.hash = "#/compare/" + [...st.selected].map(encodeURIComponent).join(","); } },
    `Compare selected (${st.selected.size})`);

  const chooser = el("details", { class: "columns" }, el("summary", {}, "Columns"),
    offered.map((c) => {
      const box = el("input", { type: "checkbox", value: c, checked: shown.includes(c) });
      box.addEventListener("change", () => {
        const now = new Set(shown);
        if (box.checked) now.add(c); else now.delete(c);
        st.columns = offered.filter((x) => now.has(x));
        localStorage.setItem("mlx.columns." + kind, JSON.stringify(st.columns));
        route();
      });
      return el("label", {}, box, " " + c);
    }));

  const sortKey = (name) => {
    const m = /^(metrics|params|tags)\.(.*)$/.exec(name);
    return m ? field(m[1], m[2]) : name;
  };
  const header = (label, name, cls) => {
    const key = sortKey(name);
    let mark = "";
    if (st.sort === key) mark = " ▲"; else if (st.sort === "-" + key) mark = " ▼";
    return el("th", { class: "sortable " + (cls || ""), title: "sort by " + name,
      onclick: () => { st.sort = st.sort === "-" + key ? key : "-" + key; st.offset = 0; route(); } }, label + mark);
  };

  const head = el("tr", {}, el("th", {}, ""), header("id", "id"),
    kind === "exp" ? header("recipe", "recipe") : header("run", "run_name"),
    header("status", "status"), header("start", "start_time"), header("duration", "duration", "num"),
    shown.map((c) => header(c, c, c.startsWith("metrics.") ? "num" : "")));
  const rows = data.runs.map((r) => {
    const box = el("input", { type: "checkbox", class: "select", value: r.id, checked: st.selected.has(r.id) });
    const tr = el("tr", { "data-id": r.id, class: st.selected.has(r.id) ? "selected" : "" },
      el("td", {}, box), el("td", {}, runLink(r.id, r.id.slice(0, 12))),
      el("td", {}, kind === "exp" ? (r.recipe || "") : (r.step ? (r.recipe || "") + ":" + r.step : (r.recipe || "")), verifyLabel(r)),
      el("td", {}, status(r.status)), el("td", {}, fmtTime(r.start_time)), el("td", { class: "num" }, fmtDuration(r.duration)),
      shown.map((c) => {
        const dot = c.indexOf(".");
        const v = r[c.slice(0, dot)][c.slice(dot + 1)];
        return el("td", { class: c.startsWith("metrics.") ? "num" : "" }, fmtValue(v));
      }));
    box.addEventListener("change", () => {
      if (box.checked) st.selected.add(r.id); else st.selected.delete(r.id);
      tr.className = box.checked ? "selected" : "";
      compare.disabled = st.selected.size < 2;
      compare.textContent = `Compare selected (${st.selected.size})`;
    });
    return tr;
  });

  const last = st.offset + data.runs.length;
  const range = data.runs.length === 0 ? (st.filter ? "no run matches the filter" : "no runs") : `${st.offset + 1}–${last}`;
  const pager = el("span", { class: "muted", id: "count" }, range);
  const prev = el("button", { disabled: st.offset === 0, onclick: () => { st.offset = Math.max(0, st.offset - st.limit); route(); } }, "‹ prev");
  const next = el("button", { disabled: data.runs.length < st.limit, onclick: () => { st.offset += st.limit; route(); } }, "next ›");
  if (!error && data.runs.length > 0) {
    const q = new URLSearchParams();
    if (st.filter) q.set("filter", st.filter);
    api("/api/count/" + kind + "?" + q).then((c) => {
      pager.textContent = `${range} of ${c.total}`;
      next.disabled = last >= c.total;
    }).catch(() => {});
  }

  show(
    el("h1", {}, kind === "exp" ? "Experiments" : "Runs"),
    el("p", { class: "muted" }, kind === "exp"
      ? "One row per recipe run, with its steps' params and final metrics."
      : "Every recipe and step run, as mlx runs lists them."),
    el("div", { class: "toolbar" }, input, el("button", { onclick: apply }, "Filter"),
      el("button", { onclick: () => { input.value = ""; apply(); } }, "Clear"), compare, prev, next, pager),
    error ? el("p", { class: "error", id: "filter-error" }, error) : null,
    chooser,
    el("div", { class: "table-wrap" }, el("table", { id: "runs-table" }, el("thead", {}, head), el("tbody", {}, rows))));
  ready(kind);
  if (data.runs.some((r) => r.status === "RUNNING")) live(() => route(), 3000);
}

// A run of mlx verify ran in a copy of the workspace: its FAILED means
// "did not reproduce", not that the pipeline failed (mlx runs marks it so).
function verifyLabel(r) {
  return r.tags && r.tags["mlx.verify"] !== undefined
    ? el("span", { class: "muted verify-label", title: "a run of mlx verify, in a copy of the workspace" }, " [verify]") : null;
}

// ---- one run --------------------------------------------------------------------

async function runView(id) {
  const run = await api("/api/runs/" + encodeURIComponent(id));
  const title = (run.step ? (run.recipe || "") + ":" + run.step : (run.recipe || "run"))
    + (run.tags && run.tags["mlx.verify"] !== undefined ? " [verify]" : "");
  const info = {
    status: run.status, command: run.command, started: fmtTime(run.start_time), ended: fmtTime(run.end_time),
    duration: fmtDuration(run.duration), "cpu time": run.cpu_seconds !== undefined ? fmtDuration(run.cpu_seconds) : undefined,
    "peak memory": fmtBytes(run.peak_rss), "exit code": run.exit_code, signal: run.signal, message: run.message,
    "git commit": run.git && run.git.commit, branch: run.git && run.git.branch,
    dirty: run.git && run.git.dirty !== undefined ? String(run.git.dirty) : undefined,
    host: run.host, user: run.user, "step key": run.step_key,
  };
  const infoRows = Object.entries(info).filter(([, v]) => v !== undefined && v !== null && v !== "")
    .map(([k, v]) => el("tr", {}, el("td", {}, k), el("td", { class: k === "status" ? "" : "mono" }, k === "status" ? status(v) : String(v))));
  if (run.parent) infoRows.push(el("tr", {}, el("td", {}, "part of"), el("td", {}, runLink(run.parent))));

  const summary = run.metric_summary || [];
  const metricsTable = summary.length === 0 ? el("p", { class: "muted" }, "no metrics") :
    el("table", { id: "metrics-table" }, el("tr", {}, ["metric", "latest", "step", "points", "min", "max"].map((h, i) => el("th", { class: i ? "num" : "" }, h))),
      summary.map((m) => el("tr", {}, el("td", {}, m.key), el("td", { class: "num" }, fmtValue(m.value)), el("td", { class: "num" }, m.step),
        el("td", { class: "num" }, m.count), el("td", { class: "num" }, fmtValue(m.min)), el("td", { class: "num" }, fmtValue(m.max)))));

  const artifacts = run.artifacts || [];
  const artTable = artifacts.length === 0 ? el("p", { class: "muted" }, "none recorded") :
    el("table", { id: "artifacts" }, el("tr", {}, ["", "path", "hash", "size", "from"].map((h) => el("th", {}, h))),
      artifacts.map((a) => el("tr", {}, el("td", {}, a.role), el("td", { class: "mono" }, a.path),
        el("td", { class: "mono", title: a.hash || "" }, (a.hash || "").slice(0, 16)),
        el("td", { class: "num" }, fmtBytes(a.size) + (a.nfiles > 1 ? ` (${a.nfiles} files)` : "")),
        el("td", {}, a.producer && a.producer !== run.id ? runLink(a.producer, a.producer.slice(0, 12)) : ""))));

  const steps = run.steps || [];
  const stepsTable = steps.length === 0 ? null : [el("h2", {}, "Steps"),
    el("table", { id: "steps" }, el("tr", {}, el("th", {}, "step"), el("th", {}, "status"), el("th", { class: "num" }, "duration")),
      steps.map((s) => el("tr", {}, el("td", {}, runLink(s.id, s.step || s.id)), el("td", {}, status(s.status)), el("td", { class: "num" }, fmtDuration(s.duration)))))];

  clearCharts();
  const chartBox = el("div", { class: "charts", id: "charts" });
  show(
    el("h1", {}, title, " ", el("span", { class: "muted mono" }, run.id)),
    el("div", { class: "grid2" },
      el("div", {}, el("h2", {}, "Run"), el("table", { class: "kv", id: "info" }, infoRows)),
      el("div", {}, el("h2", {}, "Params"), kvTable(run.params, "no params"), el("h2", {}, "Tags"), el("div", { id: "tags" }, kvTable(run.tags, "no tags")))),
    el("h2", {}, "Metrics"), metricsTable,
    run.joined && Object.keys(run.joined.metrics).length ? [el("h2", {}, "Final metrics of its steps"), kvTable(run.joined.metrics)] : null,
    chartBox,
    stepsTable,
    el("h2", {}, "Inputs and outputs"), artTable,
    el("h2", {}, "Log"), run.log ? el("pre", { id: "log" }, (run.log.truncated ? "…\n" : "") + run.log.text) : el("p", { class: "muted" }, "no log"));
  const curves = (run.curves || []).filter((m) => m.count > 1).slice(0, 24);
  if (curves.length > 0 && chartsAvailable()) {
    const histories = await Promise.all(curves.map((m) =>
      api(`/api/runs/${encodeURIComponent(m.run)}/metrics/${encodeURIComponent(m.key)}`)));
    histories.forEach((h, i) => lineChart(chartBox, curves[i].key, [{ label: curves[i].run.slice(0, 12), steps: h.steps, values: h.values }]));
  }
  ready("run");
  if (run.status === "RUNNING") live(() => route(), 2000);
}

// ---- compare --------------------------------------------------------------------

function delta(a, b) {
  if (typeof a !== "number" || typeof b !== "number") return "";
  const d = b - a;
  const pct = a !== 0 ? ` (${d >= 0 ? "+" : ""}${(100 * d / Math.abs(a)).toFixed(1)}%)` : "";
  return el("span", { class: "delta " + (d > 0 ? "up" : d < 0 ? "down" : "") }, (d >= 0 ? "+" : "") + fmtValue(d) + pct);
}

async function compareView(ids) {
  const runs = await Promise.all(ids.map((id) => api("/api/runs/" + encodeURIComponent(id))));
  const label = (r) => r.id.slice(0, 12) + (r.step ? " " + r.step : "");
  // A recipe run compares by its steps' params and final metrics.
  for (const r of runs) if (r.joined) { r.params = r.joined.params; r.metrics = r.joined.metrics; }
  const union = (f) => [...new Set(runs.flatMap((r) => Object.keys(r[f] || {})))].sort();
  const base = runs[0];
  const sideBySide = (f, withDelta) => {
    const keys = union(f);
    if (keys.length === 0) return el("p", { class: "muted" }, "none");
    return el("table", { id: "compare-" + f },
      el("tr", {}, el("th", {}, { params: "param", metrics: "metric", tags: "tag" }[f]), runs.map((r) => el("th", {}, runLink(r.id, label(r)))),
        withDelta ? runs.slice(1).map((r) => el("th", {}, "Δ " + r.id.slice(0, 8))) : null),
      keys.map((k) => {
        const vals = runs.map((r) => (r[f] || {})[k]);
        const differ = vals.some((v) => String(v) !== String(vals[0]));
        return el("tr", { class: differ ? "diff" : "" }, el("td", {}, k), vals.map((v) => el("td", { class: "num mono" }, fmtValue(v))),
          withDelta ? vals.slice(1).map((v) => el("td", { class: "num" }, delta(base[f][k], v))) : null);
      }));
  };
  clearCharts();
  const chartBox = el("div", { class: "charts", id: "charts" });
  show(
    el("h1", {}, `Compare ${runs.length} runs`),
    el("p", {}, runs.map((r, i) => el("span", { class: "pill", style: null }, String.fromCharCode(65 + i) + ": ", runLink(r.id, label(r)), " ", status(r.status)))),
    el("h2", {}, "Metrics"), sideBySide("metrics", true),
    chartBox,
    el("h2", {}, "Params"), sideBySide("params", false),
    el("h2", {}, "Tags"), sideBySide("tags", false));
  // Curves: the metrics with more than one point in any run, overlaid.
  const keys = [...new Set(runs.flatMap((r) => (r.curves || []).filter((m) => m.count > 1).map((m) => m.key)))].sort().slice(0, 24);
  if (keys.length > 0 && chartsAvailable()) {
    // One request per metric, for every run that has it.
    const histories = await Promise.all(keys.map((k) => {
      const having = runs.map((r) => [r, (r.curves || []).find((m) => m.key === k)]).filter(([, c]) => c);
      const q = new URLSearchParams({ key: k, runs: having.map(([, c]) => c.run).join(",") });
      return api("/api/history?" + q).then((h) => h.series.map((s, j) => ({ label: label(having[j][0]), steps: s.steps, values: s.values })));
    }));
    keys.forEach((k, i) => lineChart(chartBox, k, histories[i]));
  }
  ready("compare");
  if (runs.some((r) => r.status === "RUNNING")) live(() => route(), 2000);
}

// ---- models ---------------------------------------------------------------------

async function modelsView() {
  const models = await api("/api/models");
  if (models.length === 0) {
    show(el("h1", {}, "Models"), el("div", { class: "empty", id: "no-models" },
      el("p", {}, "No model is registered yet. A recipe registers one with ", el("code", {}, "mlx.registry.register{…}"),
        ", or from the terminal: ", el("code", {}, "mlx model register NAME PATH"), ".")));
    ready("models");
    return;
  }
  show(el("h1", {}, "Models"), models.map((m) => el("section", { class: "model", "data-model": m.name },
    el("h2", {}, m.name, " ", Object.entries(m.aliases).sort().map(([a, v]) => el("span", { class: "pill" }, `@${a} → ${v}`))),
    el("table", {}, el("tr", {}, ["version", "aliases", "created", "hash", "size", "run", "metrics", "trained on"].map((h) => el("th", {}, h))),
      m.versions.slice().reverse().map((v) => el("tr", {},
        el("td", {}, v.ref), el("td", {}, v.aliases.map((a) => el("span", { class: "pill" }, "@" + a))),
        el("td", {}, fmtTime(v.created)), el("td", { class: "mono", title: v.hash }, (v.hash || "").slice(0, 12)),
        el("td", { class: "num" }, fmtBytes(v.size)),
        el("td", {}, v.run ? runLink(v.run, v.run.slice(0, 12)) : "", v.recipe_run ? [" in ", runLink(v.recipe_run, v.recipe_run.slice(0, 12))] : ""),
        el("td", { class: "mono wrap" }, Object.keys(v.metrics).sort().map((k) => `${k}=${fmtValue(v.metrics[k])}`).join("  ")),
        el("td", {}, v.inputs.map((i) => el("div", { class: "mono" }, i.path + " ", i.producer ? ["← ", runLink(i.producer, i.producer.slice(0, 8))] : "")))))),
    el("h3", {}, "Alias history"),
    m.history.length === 0 ? el("p", { class: "muted" }, "no alias set yet") :
      el("table", { class: "history" }, el("tr", {}, ["time", "alias", "change", "version", "previous", "user"].map((h) => el("th", {}, h))),
        m.history.map((h) => el("tr", {}, el("td", {}, fmtTime(h.time)), el("td", {}, "@" + h.alias), el("td", {}, h.action),
          el("td", {}, h.version === undefined ? "—" : String(h.version)), el("td", {}, h.previous === undefined ? "—" : String(h.previous)),
          el("td", {}, h.user || "")))))));
  ready("models");
}

// ---- pipeline graph -------------------------------------------------------------

// The recipes running now, with their steps so far (a first run's steps
// are in no lock yet).
function runningRecipes(g) {
  if (g.running.length === 0) return null;
  return el("section", { id: "running" }, el("h2", {}, "Running now"),
    g.running.map((r) => el("div", {},
      el("p", {}, runLink(r.id, r.id.slice(0, 12)), " ", r.recipe || "",
        r.verification ? el("span", { class: "muted" }, " (mlx verify, in copies of the workspace)") : "",
        " started ", fmtTime(r.start_time)),
      el("table", {}, el("tr", {}, el("th", {}, "step"), el("th", {}, "status"), el("th", { class: "num" }, "duration")),
        r.steps.map((s) => el("tr", { "data-running-step": s.step || "" }, el("td", {}, runLink(s.id, s.step || s.id)),
          el("td", {}, status(s.status)), el("td", { class: "num" }, fmtDuration(s.duration))))))));
}

// What mlx verify last said of the step's locked key (its runs ran in
// copies of the workspace, so they are never the step's newest run), and
// the lock's marking of a step whose outs did not reproduce bit for bit.
function verificationCell(s) {
  const v = s.verification;
  const marked = s.deterministic === false ? el("div", { class: "muted" }, "not deterministic (mlx.lock)") : null;
  if (!v) return [marked || el("span", { class: "muted" }, "not verified")];
  return [el("span", { class: "status verify-" + v.result }, v.result), " ", runLink(v.id, fmtTime(v.start_time)), marked];
}

async function graphView() {
  const g = await api("/api/graph");
  if (g.running.length > 0) live(() => route(), 3000);
  if (g.pipelines.length === 0) {
    show(el("h1", {}, "Pipeline"), runningRecipes(g), el("div", { class: "empty", id: "no-pipeline" },
      el("p", {}, "mlx.lock pins no pipeline yet: run a pipeline recipe (", el("code", {}, "mlx recipe pipeline.lua"),
        ") and its steps appear here with their state.")));
    ready("graph");
    return;
  }
  const stamp = Date.now();
  show(el("h1", {}, "Pipeline"), runningRecipes(g),
    g.graphviz ? null : el("p", { class: "note" }, "Graphviz is not installed (apt-get install graphviz): the graph is shown as text."),
    g.pipelines.map((p) => el("section", { class: "graph", "data-pipeline": p.name },
      el("h2", {}, p.name),
      g.graphviz ? el("img", { src: "/api/graph.svg?pipeline=" + encodeURIComponent(p.name) + "&t=" + stamp, alt: "pipeline " + p.name })
        : el("pre", { class: "graph-text" }, p.steps.map((s) => {
          const waits = p.edges.filter((e) => e.to === s.name).map((e) => e.from);
          return `${s.name} [${s.latest ? s.latest.status : s.state}]` + (waits.length ? "  ← " + waits.join(", ") : "");
        }).join("\n")),
      el("table", {}, el("tr", {}, ["step", "state", "newest run", "verification", "deps", "outs"].map((h) => el("th", {}, h))),
        p.steps.map((s) => el("tr", { "data-step": s.name }, el("td", {}, s.name), el("td", {}, status(s.latest ? s.latest.status : s.state), " ", el("span", { class: "muted" }, s.state)),
          el("td", {}, s.latest ? runLink(s.latest.id, s.latest.id.slice(0, 12)) : ""),
          el("td", { "data-verification": s.verification ? s.verification.result : "" }, verificationCell(s)),
          el("td", { class: "mono" }, s.deps.map((p) => el("div", {}, p))), el("td", { class: "mono" }, s.outs.map((p) => el("div", {}, p)))))))));
  ready("graph");
}

// ---- routing --------------------------------------------------------------------

async function route() {
  clearTimeout(timer);
  const hash = location.hash.replace(/^#/, "") || "/";
  const parts = hash.split("/").filter(Boolean).map(decodeURIComponent);
  const view = parts[0] || "exp";
  for (const a of document.querySelectorAll("header nav a")) a.classList.toggle("active", a.dataset.view === view);
  document.body.dataset.ready = "";
  try {
    if (view === "exp" || view === "runs") {
      clearCharts();
      await tableView(view);
    } else if (view === "run" && parts[1]) await runView(parts[1]);
    else if (view === "compare" && parts[1]) await compareView(parts[1].split(",").filter(Boolean));
    else if (view === "models") { clearCharts(); await modelsView(); }
    else if (view === "graph") { clearCharts(); await graphView(); }
    else showError(new Error("no such view: " + hash));
  } catch (e) {
    showError(e);
  }
}

async function start() {
  try {
    project = await api("/api/project");
    document.getElementById("project").textContent = project.name + " · mlx " + project.version;
    document.title = project.name + " · mlx ui";
  } catch (e) {
    showError(e);
    return;
  }
  if (!chartsAvailable()) {
    notes.replaceChildren(el("p", { class: "note", id: "no-chartjs" },
      "Charts need Chart.js, which is not installed: apt-get install libjs-chart.js (tables are shown meanwhile)."));
  }
  window.addEventListener("hashchange", route);
  route();
}

start();
