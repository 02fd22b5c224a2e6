import Foundation

/// The dashboard the coordinator serves at `/`: one self-contained HTML page (inline CSS and JS,
/// no CDN, works offline) that reads the operator API of the coordinator that served it and
/// refreshes itself every `refreshSeconds`:
/// - a price chart (SVG) of one symbol from its window summaries (`/v1/symbols/{symbol}/windows`),
///   with a marker per anomaly of that symbol, coloured by severity;
/// - the recent anomalies (`/v1/anomalies`), with severity colours and an Acknowledge button
///   (`POST /v1/anomalies/{id}/ack?by=dashboard`);
/// - workers and partitions (`/v1/status`), with the problems on top.
///
/// The symbol shown is the one in the URL's fragment (`#symbol=BTCUSDT`), else the one with the
/// most anomalies. After each refresh `body` carries `data-refreshes` (a count) and the chart's
/// line carries `data-points`, so a headless browser can tell the page rendered real data.
public enum DashboardPage {
    public static let refreshSeconds = 3

    public static let html = #"""
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Vigil</title>
<style>
  :root { --bg:#0f1419; --panel:#182029; --line:#2a3540; --text:#d8dee6; --muted:#8796a5; --accent:#4fb3ff;
          --critical:#e5484d; --high:#f08c2b; --medium:#e5c33c; --low:#4f9cf0; --ok:#3fb96d; }
  * { box-sizing: border-box; }
  body { margin:0; font:13px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; background:var(--bg); color:var(--text); }
  header { display:flex; flex-wrap:wrap; gap:18px; align-items:baseline; padding:12px 18px; border-bottom:1px solid var(--line); }
  header h1 { font-size:18px; margin:0; letter-spacing:.5px; }
  header .fact { color:var(--muted); } header .fact b { color:var(--text); font-weight:600; }
  #error { display:none; background:var(--critical); color:#fff; padding:6px 18px; }
  #problems { margin:0; padding:8px 18px 8px 36px; background:#3a1d1f; color:#ffb4b4; display:none; }
  main { display:grid; grid-template-columns: minmax(0, 3fr) minmax(0, 2fr); gap:14px; padding:14px 18px; }
  section { background:var(--panel); border:1px solid var(--line); border-radius:6px; padding:10px 12px; min-width:0; }
  section h2 { font-size:13px; text-transform:uppercase; letter-spacing:1px; color:var(--muted); margin:0 0 8px; display:flex; gap:10px; align-items:center; }
  #chart-panel { grid-column: 1 / 2; } #anomalies-panel { grid-column: 1 / 2; }
  #side { grid-column: 2 / 3; grid-row: 1 / span 2; display:flex; flex-direction:column; gap:14px; }
  select { background:var(--bg); color:var(--text); border:1px solid var(--line); border-radius:4px; padding:2px 6px; }
  svg { width:100%; height:300px; display:block; }
  svg .axis { stroke:var(--line); } svg .grid { stroke:#222c36; } svg text { fill:var(--muted); font-size:10px; }
  svg #price-line { fill:none; stroke:var(--accent); stroke-width:1.6; }
  svg .volume { fill:#2c4155; }
  svg .marker { stroke:#000; stroke-width:1; cursor:pointer; }
  table { width:100%; border-collapse:collapse; font-variant-numeric: tabular-nums; }
  th { text-align:left; color:var(--muted); font-weight:500; border-bottom:1px solid var(--line); padding:3px 6px; white-space:nowrap; }
  td { border-bottom:1px solid #202a34; padding:3px 6px; white-space:nowrap; }
  td.desc { white-space:normal; color:var(--muted); min-width:180px; max-width:340px; }
  #anomalies-panel, #workers-panel, #partitions-panel { overflow-x:auto; }
  .num { text-align:right; }
  .sev { display:inline-block; min-width:58px; text-align:center; border-radius:3px; padding:0 6px; font-weight:600; color:#111; }
  .sev.critical { background:var(--critical); color:#fff; } .sev.high { background:var(--high); }
  .sev.medium { background:var(--medium); } .sev.low { background:var(--low); color:#fff; }
  tr.acked td { opacity:.5; }
  button { background:#24303b; color:var(--text); border:1px solid var(--line); border-radius:4px; padding:1px 8px; cursor:pointer; }
  button:hover { border-color:var(--accent); }
  .state-up { color:var(--ok); } .state-suspect { color:var(--high); } .state-down { color:var(--critical); } .state-restored { color:var(--medium); }
  .symbol-link { color:var(--accent); cursor:pointer; }
  .empty { color:var(--muted); padding:8px 0; }
  #legend span { margin-right:10px; color:var(--muted); } #legend i { display:inline-block; width:9px; height:9px; border-radius:50%; margin-right:4px; }
  footer { color:var(--muted); padding:0 18px 14px; }
</style>
</head>
<body data-refreshes="0">
<header>
  <h1>VIGIL</h1>
  <span class="fact">cluster <b id="cluster">-</b></span>
  <span class="fact">coordinator <b id="coordinator">-</b></span>
  <span class="fact">up <b id="uptime">-</b></span>
  <span class="fact">workers <b id="members">-</b></span>
  <span class="fact">epoch <b id="epoch">-</b></span>
  <span class="fact">anomalies <b id="anomaly-count">-</b></span>
  <span class="fact">last 15 min <b id="recent">-</b></span>
  <span class="fact" id="refreshed"></span>
</header>
<div id="error"></div>
<ul id="problems"></ul>
<main>
  <section id="chart-panel">
    <h2>Price <select id="symbol"></select> <span id="chart-caption" style="text-transform:none;letter-spacing:0"></span>
      <span id="legend" style="margin-left:auto;text-transform:none;letter-spacing:0;white-space:nowrap">
        <span><i style="background:var(--critical)"></i>critical</span><span><i style="background:var(--high)"></i>high</span>
        <span><i style="background:var(--medium)"></i>medium</span><span><i style="background:var(--low)"></i>low</span></span></h2>
    <div id="chart"><div class="empty">waiting for the first closed windows…</div></div>
  </section>
  <section id="anomalies-panel">
    <h2>Recent anomalies</h2>
    <table id="anomalies"><thead><tr><th>window end (UTC)</th><th>symbol</th><th>kind</th><th>severity</th><th>quality</th>
      <th class="num">value</th><th class="num">expected</th><th></th><th>description</th></tr></thead><tbody></tbody></table>
  </section>
  <div id="side">
    <section id="workers-panel">
      <h2>Workers</h2>
      <table id="workers"><thead><tr><th>id</th><th>state</th><th>heartbeat</th><th>partitions</th><th class="num">in/s</th>
        <th class="num">processed/s</th><th class="num">lag</th><th class="num">CPU</th><th class="num">RSS</th></tr></thead><tbody></tbody></table>
    </section>
    <section id="partitions-panel">
      <h2>Partitions</h2>
      <table id="partitions"><thead><tr><th class="num">#</th><th>owner</th><th class="num">epoch</th><th class="num">offset</th>
        <th class="num">lag</th><th>watermark</th><th class="num">late 5m</th><th>checkpoint</th></tr></thead><tbody></tbody></table>
    </section>
  </div>
</main>
<footer>Refreshes every <span id="every"></span> s. JSON: <a style="color:var(--accent)" href="/v1/status">/v1/status</a>,
  <a style="color:var(--accent)" href="/v1/anomalies">/v1/anomalies</a>, <a style="color:var(--accent)" href="/metrics">/metrics</a>.</footer>
<script>
"use strict";
const REFRESH_MS = __REFRESH_SECONDS__ * 1000;
const SEVERITY_RANK = { critical: 3, high: 2, medium: 1, low: 0 };
let chosenSymbol = (location.hash.match(/symbol=([^&]+)/) || [])[1] || null;
let refreshes = 0;

const $ = (id) => document.getElementById(id);
function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v; else if (k.startsWith("on")) node.addEventListener(k.slice(2), v); else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c == null ? "" : String(c)));
  return node;
}
function svgEl(tag, attrs) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  return node;
}
async function getJSON(path) {
  const response = await fetch(path, { cache: "no-store" });
  if (!response.ok) throw new Error(`${path}: HTTP ${response.status} ${(await response.text()).trim()}`);
  return response.json();
}
function ago(ms) {
  if (ms == null) return "-";
  if (ms < 0) ms = 0;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s ago`;
  return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m ago`;
}
function duration(ms) { return ago(ms).replace(" ago", ""); }
function utc(ms) { return new Date(ms).toISOString().slice(11, 19); }
function num(x, digits) {
  if (x == null || !isFinite(x)) return "-";
  const a = Math.abs(x);
  if (digits != null) return x.toFixed(digits);
  if (a !== 0 && (a < 0.001 || a >= 1e7)) return x.toExponential(3);
  return a >= 100 ? x.toFixed(2) : x.toPrecision(4);
}
function rate(x) { return x == null ? "-" : x >= 100 ? Math.round(x).toString() : x.toFixed(1); }

function renderHeader(s) {
  $("cluster").textContent = s.clusterName;
  $("coordinator").textContent = s.coordinator;
  $("uptime").textContent = duration(s.nowMs - s.startedAtMs);
  const count = (st) => s.workers.filter((w) => w.state === st).length;
  $("members").textContent = `${count("up")} up, ${count("suspect")} suspect, ${count("down")} down`;
  $("epoch").textContent = Math.max(0, ...s.partitions.map((p) => p.epoch));
  $("anomaly-count").textContent = s.anomalyCount;
  const recent = s.recentAnomalies;
  if (recent) {
    const parts = ["critical", "high", "medium", "low"].filter((k) => recent.bySeverity[k]).map((k) => `${recent.bySeverity[k]} ${k}`);
    const top = recent.topSymbols.map((t) => `${t.symbol} ${t.count}`).join(", ");
    $("recent").textContent = (parts.length ? parts.join(", ") : "none") + (top ? ` (top ${top})` : "");
  }
  const problems = $("problems");
  problems.replaceChildren(...s.problems.map((p) => el("li", {}, p)));
  problems.style.display = s.problems.length ? "block" : "none";
}

function renderWorkers(s) {
  const rows = s.workers.map((w) => el("tr", { "data-worker": w.id },
    el("td", {}, w.id), el("td", { class: `state-${w.state}` }, w.state), el("td", {}, ago(s.nowMs - w.lastHeartbeatMs)),
    el("td", {}, w.partitions.length ? w.partitions.join(",") : "-"),
    el("td", { class: "num" }, rate(w.inPerSecond)), el("td", { class: "num" }, rate(w.processedPerSecond ?? w.recordsPerSecond)),
    el("td", { class: "num" }, w.lag == null ? "-" : w.lag), el("td", { class: "num" }, w.cpuPercent == null ? "-" : `${w.cpuPercent.toFixed(0)}%`),
    el("td", { class: "num" }, `${Math.round(w.rssBytes / 1048576)} MB`)));
  $("workers").tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 9, class: "empty" }, "no workers"))]));
}

function renderPartitions(s) {
  const rows = s.partitions.map((p) => el("tr", { "data-partition": p.partition },
    el("td", { class: "num" }, p.partition), el("td", {}, p.owner || "-"), el("td", { class: "num" }, p.epoch),
    el("td", { class: "num" }, p.nextOffset < 0 ? "-" : p.nextOffset), el("td", { class: "num" }, p.lag < 0 ? "-" : p.lag),
    el("td", {}, p.watermarkMs <= -9007199254740000 ? "-" : ago(s.nowMs - p.watermarkMs)),
    el("td", { class: "num" }, p.lateRecent == null ? "-" : p.lateRecent),
    el("td", {}, p.checkpointAgeMs == null ? "-" : ago(p.checkpointAgeMs))));
  $("partitions").tBodies[0].replaceChildren(...rows);
}

async function acknowledge(id, button) {
  button.disabled = true;
  try {
    const response = await fetch(`/v1/anomalies/${encodeURIComponent(id)}/ack?by=dashboard`, { method: "POST" });
    if (!response.ok) throw new Error(`ack ${id}: HTTP ${response.status}`);
    await refresh();
  } catch (error) { showError(error); button.disabled = false; }
}

function renderAnomalies(list) {
  const rows = list.map((stored) => {
    const a = stored.anomaly;
    const action = stored.acknowledged
      ? el("span", { class: "acked-by" }, `acked by ${stored.acknowledgedBy || "?"}`)
      : el("button", { class: "ack", onclick: (event) => acknowledge(a.id, event.target) }, "Acknowledge");
    return el("tr", { "data-id": a.id, "data-severity": a.severity, class: stored.acknowledged ? "acked" : "" },
      el("td", {}, utc(a.windowEndMs)),
      el("td", {}, el("span", { class: "symbol-link", onclick: () => selectSymbol(a.symbol) }, a.symbol)),
      el("td", {}, a.kind.replace(/_/g, " ")), el("td", {}, el("span", { class: `sev ${a.severity}` }, a.severity + (a.suppressed ? "*" : ""))),
      el("td", {}, a.quality), el("td", { class: "num" }, num(a.value)), el("td", { class: "num" }, num(a.expected)),
      el("td", {}, action), el("td", { class: "desc" }, a.description));
  });
  $("anomalies").tBodies[0].replaceChildren(...(rows.length ? rows : [el("tr", {}, el("td", { colspan: 9, class: "empty" }, "no anomalies yet"))]));
}

function selectSymbol(symbol) {
  chosenSymbol = symbol;
  history.replaceState(null, "", `#symbol=${encodeURIComponent(symbol)}`);
  $("symbol").value = symbol;
  refresh();
}

function renderSymbols(symbols) {
  const select = $("symbol");
  if (!chosenSymbol && symbols.length) {
    chosenSymbol = symbols.slice().sort((a, b) => b.anomalies - a.anomalies || a.symbol.localeCompare(b.symbol))[0].symbol;
  }
  const wanted = symbols.map((s) => s.symbol).join(",");
  if (select.dataset.symbols !== wanted) {
    select.replaceChildren(...symbols.map((s) => el("option", { value: s.symbol }, `${s.symbol} (${s.anomalies})`)));
    select.dataset.symbols = wanted;
  }
  if (chosenSymbol) select.value = chosenSymbol;
}

function renderChart(symbol, windows, anomalies) {
  const box = $("chart");
  const points = windows.filter((w) => w.close != null);
  if (points.length < 2) {
    box.replaceChildren(el("div", { class: "empty" }, symbol ? `no closed windows of ${symbol} yet` : "waiting for the first closed windows…"));
    return;
  }
  const W = 900, H = 300, left = 64, right = 12, top = 10, priceBottom = 220, volTop = 236, bottom = 280;
  const t0 = points[0].endMs, t1 = points[points.length - 1].endMs;
  let lo = Math.min(...points.map((p) => p.low ?? p.close)), hi = Math.max(...points.map((p) => p.high ?? p.close));
  if (hi === lo) { hi += Math.abs(hi) * 0.001 || 1; lo -= Math.abs(lo) * 0.001 || 1; }
  const pad = (hi - lo) * 0.05; lo -= pad; hi += pad;
  const x = (t) => left + (t1 === t0 ? 0 : (t - t0) / (t1 - t0)) * (W - left - right);
  const y = (v) => top + (1 - (v - lo) / (hi - lo)) * (priceBottom - top);
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: "none", "data-symbol": symbol });
  for (let i = 0; i <= 4; i++) {
    const v = lo + (hi - lo) * i / 4;
    svg.append(svgEl("line", { class: "grid", x1: left, x2: W - right, y1: y(v), y2: y(v) }));
    const label = svgEl("text", { x: left - 6, y: y(v) + 3, "text-anchor": "end" }); label.textContent = num(v); svg.append(label);
  }
  for (let i = 0; i <= 5; i++) {
    const t = t0 + (t1 - t0) * i / 5;
    const label = svgEl("text", { x: x(t), y: H - 4, "text-anchor": i === 0 ? "start" : i === 5 ? "end" : "middle" });
    label.textContent = new Date(t).toISOString().slice(11, 16); svg.append(label);
  }
  const maxVolume = Math.max(...windows.map((w) => w.quoteVolume || 0)) || 1;
  const barWidth = Math.max(1, (W - left - right) / windows.length - 1);
  for (const w of windows) {
    const h = ((w.quoteVolume || 0) / maxVolume) * (bottom - volTop);
    svg.append(svgEl("rect", { class: "volume", x: x(w.endMs) - barWidth / 2, y: bottom - h, width: barWidth, height: h }));
  }
  svg.append(svgEl("line", { class: "axis", x1: left, x2: left, y1: top, y2: bottom }));
  const d = points.map((p, i) => `${i ? "L" : "M"}${x(p.endMs).toFixed(1)},${y(p.close).toFixed(1)}`).join("");
  svg.append(svgEl("path", { id: "price-line", d, "data-points": points.length }));
  const byEnd = new Map(points.map((p) => [p.endMs, p]));
  let markers = 0;
  for (const stored of anomalies.slice().sort((a, b) => SEVERITY_RANK[a.anomaly.severity] - SEVERITY_RANK[b.anomaly.severity])) {
    const a = stored.anomaly;
    if (a.windowEndMs < t0 || a.windowEndMs > t1) continue;
    const at = byEnd.get(a.windowEndMs) || points.reduce((best, p) => Math.abs(p.endMs - a.windowEndMs) < Math.abs(best.endMs - a.windowEndMs) ? p : best);
    const marker = svgEl("circle", { class: `marker ${a.severity}`, cx: x(a.windowEndMs), cy: y(at.close), r: 3 + SEVERITY_RANK[a.severity],
      fill: `var(--${a.severity})`, "data-id": a.id });
    const title = svgEl("title", {}); title.textContent = `${utc(a.windowEndMs)} ${a.severity} ${a.kind}: ${a.description}`;
    marker.append(title); svg.append(marker); markers++;
  }
  $("chart-caption").textContent = `close of ${points.length} windows, ${utc(t0)}–${utc(t1)} UTC, ${markers} anomalies marked`;
  box.replaceChildren(svg);
}

function showError(error) {
  const box = $("error");
  box.textContent = error ? `cannot refresh: ${error.message || error}` : "";
  box.style.display = error ? "block" : "none";
}

let running = false;
async function refresh() {
  if (running) return;
  running = true;
  try {
    const [status, anomalies, symbols] = await Promise.all([getJSON("/v1/status"), getJSON("/v1/anomalies?limit=50"), getJSON("/v1/symbols")]);
    renderHeader(status); renderWorkers(status); renderPartitions(status); renderAnomalies(anomalies); renderSymbols(symbols);
    if (chosenSymbol) {
      const symbol = encodeURIComponent(chosenSymbol);
      const [windows, marked] = await Promise.all([getJSON(`/v1/symbols/${symbol}/windows?limit=360`), getJSON(`/v1/anomalies?symbol=${symbol}&limit=500`)]);
      renderChart(chosenSymbol, windows, marked);
    } else {
      renderChart(null, [], []);
    }
    $("refreshed").textContent = `refreshed ${new Date().toISOString().slice(11, 19)} UTC`;
    showError(null);
    document.body.dataset.refreshes = String(++refreshes);
  } catch (error) {
    showError(error);
  } finally {
    running = false;
  }
}

$("every").textContent = REFRESH_MS / 1000;
$("symbol").addEventListener("change", (event) => selectSymbol(event.target.value));
refresh();
setInterval(refresh, REFRESH_MS);
</script>
</body>
</html>
"""#.replacingOccurrences(of: "__REFRESH_SECONDS__", with: String(refreshSeconds))
}
