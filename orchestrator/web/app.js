// orchestrator dashboard. Rules (docs/dashboard.md):
// - everything from the supervisor or a child goes into the page as text (textContent), never as HTML;
// - the token lives in this tab's sessionStorage and goes out only in an Authorization header;
// - live data comes over Server-Sent Events (/api/live, /api/logs/NAME?follow=true): no polling.
"use strict";

const TOKEN_KEY = "orchestrator-token";
const MAX_EVENTS = 200;      // event feed entries kept in the page
const MAX_LOG_LINES = 5000;  // log lines kept in the pane (scroll back)
const LOG_TAIL = 300;        // lines asked for when a log pane opens
const SPAN_S = 1800;         // the charts' window: 30 minutes

const $ = (id) => document.getElementById(id);
const state = { services: new Map(), order: [], comfy: null, history: null, lastEventId: 0, received: 0 };

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

// ---- formatting -------------------------------------------------------------------------------------
function bytes(n) {
  if (n === null || n === undefined) return "–";
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i += 1; }
  return `${n.toFixed(i && n < 10 ? 1 : 0)} ${units[i]}`;
}
function duration(s) {
  if (s === null || s === undefined) return "–";
  s = Math.max(0, Math.floor(s));
  const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s % 60}s`;
  return `${s}s`;
}
function clock(epoch) { return new Date(epoch * 1000).toLocaleTimeString(); }

// ---- notices and the token --------------------------------------------------------------------------
function notice(text, kind) {
  const box = $("notice");
  box.hidden = false;
  box.dataset.kind = kind || "info";
  box.textContent = text;
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function askToken(why) {
  return new Promise((resolve) => {
    const dialog = $("token-dialog");
    $("token-why").textContent = why || "";
    $("token-input").value = "";
    dialog.onclose = () => {
      const value = $("token-input").value.trim();
      $("token-input").value = "";
      if (dialog.returnValue === "ok" && value) {
        sessionStorage.setItem(TOKEN_KEY, value);
        $("forget-token").hidden = false;
        resolve(value);
      } else {
        resolve(null);
      }
    };
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// A mutation: asks for the token once, sends it in the header, and asks again if it was refused (401).
async function act(method, path, label) {
  let tok = token() || await askToken("");
  if (!tok) return { ok: false, status: 0, body: { error: "no token given" } };
  for (;;) {
    let response;
    try {
      response = await fetch(path, { method, headers: { Authorization: `Bearer ${tok}` }, cache: "no-store" });
    } catch (err) {
      return { ok: false, status: 0, body: { error: `the supervisor did not answer (${err.message})` } };
    }
    const body = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
    if (response.status !== 401) return { ok: response.ok, status: response.status, body };
    sessionStorage.removeItem(TOKEN_KEY);
    $("forget-token").hidden = true;
    notice(`${label}: refused (401): ${body.error || "wrong token"}`, "error");
    tok = await askToken(`Refused: ${body.error || "wrong token"}`);
    if (!tok) return { ok: false, status: 401, body };
  }
}

function failure(label, result) {
  const why = result.body && result.body.error ? result.body.error : `HTTP ${result.status}`;
  const code = result.status ? ` (${result.status})` : "";
  notice(`${label}: refused${code}: ${why}`, "error");
}

async function serviceAction(name, action, button) {
  const row = state.services.get(name);
  const label = `${action} ${name}`;
  const busy = row ? row.cells.working : null;
  const buttons = row ? row.tr.querySelectorAll("button") : [];
  buttons.forEach((b) => { b.disabled = true; });
  if (busy) busy.textContent = `${action}…`;
  notice(`${label}…`, "info");
  const path = action === "drain"
    ? `/api/system/${encodeURIComponent(name)}/restart?drain=true`
    : `/api/system/${encodeURIComponent(name)}/${action}`;
  const before = row ? row.data.pid : null;
  try {
    const result = await act("POST", path, label);
    if (!result.ok) { failure(label, result); return; }
    applyStatus(result.body);
    const pid = result.body.pid;
    const pids = before !== pid && (before || pid) ? ` (pid ${before ?? "–"} → ${pid ?? "–"})` : "";
    notice(`${label}: done, now ${result.body.state}${pids}`, "ok");
  } finally {
    buttons.forEach((b) => { b.disabled = false; });
    if (busy) busy.textContent = "";
    void button;
  }
}

async function ignite() {
  const button = $("ignite");
  button.disabled = true;
  notice("start all…", "info");
  try {
    const result = await act("POST", "/api/system/ignite", "start all");
    if (!result.ok) { failure("start all", result); return; }
    result.body.services.forEach(applyStatus);
    notice(`start all: done (${result.body.services.length} services)`, "ok");
  } finally { button.disabled = false; }
}

async function reload() {
  const button = $("reload");
  button.disabled = true;
  notice("reload: planning…", "info");
  try {
    let response, body;
    try {
      response = await fetch("/api/reload/plan", { cache: "no-store", headers: authHeaderForReads() });
      body = await response.json();
    } catch (err) { notice(`reload: the supervisor did not answer (${err.message})`, "error"); return; }
    if (!response.ok) {
      const issues = body.issues ? `: ${body.issues.join("; ")}` : "";
      notice(`reload: ${body.error || `HTTP ${response.status}`}${issues}`, "error");
      return;
    }
    if (!await showPlan(body.plan)) { notice("reload: cancelled, nothing changed", "info"); return; }
    notice("reload: applying…", "info");
    const result = await act("POST", "/api/reload", "reload");
    if (!result.ok) {
      const issues = result.body.issues ? `: ${result.body.issues.join("; ")}` : "";
      notice(`reload: refused (${result.status}): ${result.body.error || ""}${issues}`, "error");
      return;
    }
    const outcomes = Object.entries(result.body.outcomes || {}).map(([k, v]) => `${k}: ${v}`);
    const failures = result.body.failures || [];
    notice(`reload: ${result.body.ok ? "done" : "failed"}, ${result.body.plan.summary}` +
           (outcomes.length ? `; ${outcomes.join("; ")}` : "") + (failures.length ? `; ${failures.join("; ")}` : ""),
           result.body.ok ? "ok" : "error");
  } finally { button.disabled = false; }
}

function authHeaderForReads() {
  // Reads are open on loopback; elsewhere the API wants the token for them too.
  const tok = token();
  return tok ? { Authorization: `Bearer ${tok}` } : {};
}

function showPlan(plan) {
  return new Promise((resolve) => {
    const dialog = $("plan-dialog");
    $("plan-summary").textContent = plan.summary;
    const list = $("plan-lines");
    list.replaceChildren();
    for (const s of plan.services) list.append(el("li", { "data-action": s.action }, s.text));
    for (const g of plan.globals || []) list.append(el("li", {}, typeof g === "string" ? g : g.text || JSON.stringify(g)));
    for (const w of plan.warnings || []) list.append(el("li", { class: "warning" }, w));
    const changes = plan.services.some((s) => s.action !== "keep") || (plan.globals || []).length > 0;
    $("plan-apply").textContent = changes ? "Apply" : "Apply (nothing to change)";
    dialog.onclose = () => resolve(dialog.returnValue === "apply");
    dialog.returnValue = "";
    dialog.showModal();
  });
}

// ---- the services table -----------------------------------------------------------------------------
const LIVE = new Set(["starting", "running", "stopping", "draining"]);
const IDLE = new Set(["stopped", "exited", "fatal"]);
const COLUMNS = ["name", "state", "health", "pid", "uptime", "restarts", "cpu", "memory", "ports",
                 "cpu-chart", "mem-chart", "reason", "actions"];

function makeRow(name) {
  const tr = el("tr", { "data-service": name });
  const cells = {};
  for (const col of COLUMNS) {
    const td = el("td", { "data-col": col });
    if (["pid", "uptime", "restarts", "cpu", "memory"].includes(col)) td.className = "num";
    if (col === "reason") td.className = "reason";
    tr.append(td);
    cells[col] = td;
  }
  cells.name.className = "name";
  cells.name.textContent = name;
  cells.name.title = "show its log";
  cells.name.addEventListener("click", () => selectLog(name));
  cells.badge = el("span", { class: "badge" });
  cells.state.append(cells.badge);
  cells.cpuChart = chart("cpu");
  cells["cpu-chart"].append(cells.cpuChart);
  cells.memChart = chart("mem");
  cells["mem-chart"].append(cells.memChart);
  cells.buttons = {};
  for (const action of ["start", "stop", "restart", "drain"]) {
    const b = el("button", { type: "button", "data-action": action }, action === "drain" ? "drain+restart" : action);
    b.title = action === "drain" ? "restart once ComfyUI's queue is empty" : `${action} ${name}`;
    b.addEventListener("click", () => serviceAction(name, action, b));
    cells.buttons[action] = b;
    cells.actions.append(b);
  }
  cells.working = el("span", { class: "working" });
  cells.actions.className = "actions";
  cells.actions.append(cells.working);
  return { tr, cells, data: null, at: 0 };
}

function applyStatus(s) {
  let row = state.services.get(s.name);
  if (!row) {
    row = makeRow(s.name);
    state.services.set(s.name, row);
    $("services").tBodies[0].append(row.tr);
    addLogOption(s.name);
  }
  row.data = s;
  row.at = performance.now();
  const c = row.cells;
  c.badge.textContent = s.state;
  c.badge.className = `badge ${s.state}`;
  c.health.textContent = s.health === "none" ? "-" : s.health;  // none: no health check
  c.health.className = `health ${s.health}`;
  c.health.title = s.health_detail || "";
  c.pid.textContent = s.pid ?? "–";
  c.restarts.textContent = s.restarts;
  c.restarts.title = Object.entries(s.restarts_by_reason || {}).map(([k, v]) => `${k}: ${v}`).join(", ");
  const alive = s.pid !== null;
  c.cpu.textContent = alive ? `${s.cpu_percent.toFixed(1)} %` : "–";
  c.memory.textContent = alive ? bytes(s.rss_bytes) : "–";
  c.ports.textContent = (s.ports || []).join(", ") || "–";
  c.reason.textContent = s.waiting_for ? `waiting for ${s.waiting_for}` : s.reason;
  c.buttons.drain.hidden = !(state.comfy && state.comfy.service === s.name) || !LIVE.has(s.state);
  c.buttons.start.hidden = LIVE.has(s.state);  // only what can apply: start an idle one, stop a live one
  c.buttons.stop.hidden = IDLE.has(s.state);
  tickUptime(row);
}

function tickUptime(row) {
  const s = row.data;
  const running = s.uptime_s !== null && s.pid !== null;
  row.cells.uptime.textContent = running ? duration(s.uptime_s + (performance.now() - row.at) / 1000) : "–";
}

function applySnapshot(snap) {
  state.comfy = snap.comfy;
  const names = new Set(snap.services.map((s) => s.name));
  for (const [name, row] of state.services) {
    if (!names.has(name)) { row.tr.remove(); state.services.delete(name); removeLogOption(name); }
  }
  snap.services.forEach(applyStatus);
  renderChecks(snap.system);
  renderComfy(snap.comfy);
}

function renderChecks(system) {
  const list = $("checks");
  list.replaceChildren();
  const checks = [...(system.disk || []), ...(system.memory ? [system.memory] : [])];
  if (!checks.length) list.append(el("li", { class: "muted" }, "no checks configured (checks.disk, checks.memory)"));
  for (const c of checks) {
    const li = el("li", { "data-kind": c.kind });
    let text;
    if (c.kind === "disk") {
      text = `disk ${c.path}: ${bytes(c.free_bytes)} free (min ${bytes(c.min_free_bytes)}) `;
    } else {
      text = `memory: ${c.used_percent === null ? "–" : c.used_percent.toFixed(1)} % used (max ${c.max_percent} %) `;
    }
    li.append(document.createTextNode(text), el("span", { class: `state ${c.state}` }, c.error ? `${c.state}: ${c.error}` : c.state));
    list.append(li);
  }
}

function renderComfy(comfy) {
  $("comfy").hidden = !comfy;
  if (!comfy) return;
  $("comfy-queue").textContent = comfy.queue ? `${comfy.queue.running} running, ${comfy.queue.pending} pending` : (comfy.error || "–");
  $("comfy-vram").textContent = comfy.vram_total_bytes
    ? `${bytes(comfy.vram_used_bytes)} of ${bytes(comfy.vram_total_bytes)}` : "–";
}

// ---- charts (inline SVG, drawn from the history) ----------------------------------------------------
const SVG = "http://www.w3.org/2000/svg";
function chart(kind) {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("viewBox", "0 0 120 26");
  svg.setAttribute("preserveAspectRatio", "none");
  const line = document.createElementNS(SVG, "polyline");
  line.setAttribute("class", kind);
  svg.append(line);
  const title = document.createElementNS(SVG, "title");
  svg.append(title);
  return svg;
}

function draw(svg, times, values, format) {
  const w = 120, h = 26;
  const line = svg.querySelector("polyline");
  const now = Date.now() / 1000;
  // The last 30 minutes, or since the first point when the supervisor has not run that long yet.
  const span = Math.min(SPAN_S, Math.max(10, now - (times.length ? times[0] : now)));
  const max = Math.max(1e-9, ...values.filter((v) => v !== null));
  const points = [];
  times.forEach((t, i) => {
    const v = values[i];
    if (v === null || v === undefined || t < now - span) return;
    const x = w - ((now - t) / span) * w;
    points.push(`${x.toFixed(1)},${(h - 1 - (v / max) * (h - 2)).toFixed(1)}`);
  });
  line.setAttribute("points", points.join(" "));
  const last = values.length ? values[values.length - 1] : null;
  svg.querySelector("title").textContent = last === null ? "no data yet" : `now ${format(last)}, max ${format(max)} (last ${duration(span)})`;
}

function drawCharts() {
  const h = state.history;
  if (!h) return;
  for (const [name, row] of state.services) {
    const series = h.services[name] || { t: [], cpu_percent: [], rss_bytes: [] };
    draw(row.cells.cpuChart, series.t, series.cpu_percent, (v) => `${v.toFixed(1)} %`);
    draw(row.cells.memChart, series.t, series.rss_bytes, bytes);
  }
  if (h.comfy) {
    const queue = h.comfy.queue_running.map((r, i) => (r === null ? null : r + h.comfy.queue_pending[i]));
    draw($("comfy-queue-chart"), h.comfy.t, queue, (v) => `${v}`);
    draw($("comfy-vram-chart"), h.comfy.t, h.comfy.vram_used_bytes, bytes);
  }
}

function addSample(sample) {
  const h = state.history;
  if (!h) return;
  const cut = sample.t - SPAN_S;
  for (const [name, v] of Object.entries(sample.services)) {
    const s = h.services[name] || (h.services[name] = { t: [], cpu_percent: [], rss_bytes: [] });
    s.t.push(sample.t); s.cpu_percent.push(v.cpu_percent); s.rss_bytes.push(v.rss_bytes);
    while (s.t.length && s.t[0] < cut) { s.t.shift(); s.cpu_percent.shift(); s.rss_bytes.shift(); }
  }
  if (sample.comfy) {
    const c = h.comfy || (h.comfy = { t: [], queue_running: [], queue_pending: [], vram_used_bytes: [] });
    c.t.push(sample.t);
    for (const k of ["queue_running", "queue_pending", "vram_used_bytes"]) c[k].push(sample.comfy[k]);
    while (c.t.length && c.t[0] < cut) { for (const k of ["t", "queue_running", "queue_pending", "vram_used_bytes"]) c[k].shift(); }
  }
  drawCharts();
}

// ---- the event feed ---------------------------------------------------------------------------------
function addEvents(events) {
  const list = $("events");
  for (const e of events) {
    if (e.id <= state.lastEventId) continue;
    state.lastEventId = e.id;
    const li = el("li", { "data-kind": e.kind });
    li.append(el("time", {}, clock(e.at)), el("span", { class: "kind" }, e.kind));
    li.append(document.createTextNode(e.service ? `${e.service}: ${e.message}` : e.message));
    list.prepend(li);
  }
  while (list.children.length > MAX_EVENTS) list.lastElementChild.remove();
}

// ---- the live stream --------------------------------------------------------------------------------
function connectLive() {
  const conn = $("conn");
  const source = new EventSource("/api/live");
  source.addEventListener("open", () => { conn.dataset.state = "live"; conn.textContent = "live"; });
  source.addEventListener("error", () => {
    conn.dataset.state = "lost";
    conn.textContent = "reconnecting…";  // EventSource retries by itself and resumes after Last-Event-ID
  });
  source.addEventListener("status", (m) => applySnapshot(JSON.parse(m.data)));
  source.addEventListener("events", (m) => addEvents(JSON.parse(m.data).events));
  source.addEventListener("history", (m) => { state.history = JSON.parse(m.data); drawCharts(); });
  source.addEventListener("sample", (m) => addSample(JSON.parse(m.data)));
}

// ---- the log pane -----------------------------------------------------------------------------------
const log = { name: null, sources: [], paused: false, held: [], filter: "" };

function addLogOption(name) {
  const select = $("log-service");
  select.append(el("option", { value: name }, name));
  if (!log.name) selectLog(name);
}
function removeLogOption(name) {
  const option = [...$("log-service").options].find((o) => o.value === name);
  if (option) option.remove();
}

function selectLog(name) {
  if (log.name === name && log.sources.length) return;
  for (const s of log.sources) s.close();
  log.sources = [];
  log.held = [];
  log.name = name;
  $("log-service").value = name;
  for (const [n, row] of state.services) row.tr.classList.toggle("selected", n === name);
  $("log").replaceChildren();
  for (const stream of ["stdout", "stderr"]) follow(name, stream, LOG_TAIL);
}

function follow(name, stream, lines) {
  const url = `/api/logs/${encodeURIComponent(name)}?stream=${stream}&lines=${lines}&follow=true`;
  const source = new EventSource(url);
  source.addEventListener("message", (m) => logLine(stream, m.data));
  source.addEventListener("skipped", (m) => logLine("note", m.data));
  source.addEventListener("error", () => {
    // The stream ended (the supervisor stopped or restarted its API): follow again without the tail.
    source.close();
    log.sources = log.sources.filter((s) => s !== source);
    if (log.name !== name) return;
    setTimeout(() => {
      if (log.name === name) log.sources.push(follow(name, stream, 0));
    }, 3000);
  });
  log.sources.push(source);
  return source;
}

function logLine(stream, text) {
  if (log.paused) {
    log.held.push([stream, text]);
    if (log.held.length > MAX_LOG_LINES) log.held.shift();
    $("log-status").textContent = `paused, ${log.held.length} new lines held`;
    return;
  }
  appendLines([[stream, text]]);
}

function appendLines(items) {
  const pane = $("log");
  const atBottom = pane.scrollHeight - pane.scrollTop - pane.clientHeight < 24;
  const filter = log.filter;
  for (const [stream, text] of items) {
    const div = el("div", { class: `line ${stream}`, "data-stream": stream === "note" ? "" : stream === "stderr" ? "err" : "out" }, text);
    if (filter && !text.toLowerCase().includes(filter)) div.classList.add("hidden");
    pane.append(div);
  }
  while (pane.children.length > MAX_LOG_LINES) pane.firstElementChild.remove();
  if (atBottom) pane.scrollTop = pane.scrollHeight;  // follow unless the reader scrolled back
}

function setupLogBar() {
  $("log-service").addEventListener("change", (e) => selectLog(e.target.value));
  $("log-filter").addEventListener("input", (e) => {
    log.filter = e.target.value.toLowerCase();
    for (const div of $("log").children) {
      div.classList.toggle("hidden", !!log.filter && !div.textContent.toLowerCase().includes(log.filter));
    }
  });
  $("log-pause").addEventListener("click", (e) => {
    log.paused = !log.paused;
    e.target.textContent = log.paused ? "Resume" : "Pause";
    e.target.setAttribute("aria-pressed", String(log.paused));
    if (!log.paused) {
      appendLines(log.held);
      log.held = [];
      $("log-status").textContent = "";
    } else {
      $("log-status").textContent = "paused";
    }
  });
  $("log-clear").addEventListener("click", () => $("log").replaceChildren());
}

// ---- start ------------------------------------------------------------------------------------------
function main() {
  $("ignite").addEventListener("click", ignite);
  $("reload").addEventListener("click", reload);
  $("forget-token").hidden = !token();
  $("forget-token").addEventListener("click", () => {
    sessionStorage.removeItem(TOKEN_KEY);
    $("forget-token").hidden = true;
    notice("token forgotten", "info");
  });
  setupLogBar();
  connectLive();
  // Uptime moves with the clock: redrawn here, from the last status, without asking the supervisor.
  setInterval(() => { for (const row of state.services.values()) if (row.data) tickUptime(row); }, 1000);
  setInterval(drawCharts, 60000);  // slide the 30-minute window even when no sample arrives
}

document.addEventListener("DOMContentLoaded", main);
