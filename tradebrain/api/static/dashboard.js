// tradebrain live dashboard: polls the REST API every 2 s with the bearer token.
// The token comes from the URL fragment (/#token=...; browsers never send fragments to the
// server), is kept in sessionStorage for this tab only, and is removed from the address bar.
// Every value from the API is written with textContent, never parsed as HTML.
"use strict";

const POLL_MS = 2000;
const TOKEN_KEY = "tradebrain.token";
const SVG = "http://www.w3.org/2000/svg";
const $ = (id) => document.getElementById(id);

let polling = null;
let inFlight = false;

// --- token -------------------------------------------------------------------------------
function tokenFromFragment() {
  const params = new URLSearchParams(window.location.hash.replace(/^#/, ""));
  const token = params.get("token");
  if (token) {
    sessionStorage.setItem(TOKEN_KEY, token);
    history.replaceState(null, "", window.location.pathname + window.location.search);
  }
}

function token() { return sessionStorage.getItem(TOKEN_KEY); }

function askForToken(message) {
  stopPolling();
  $("token-error").textContent = message || "";
  $("token-overlay").classList.add("show");
  $("token-input").focus();
}

class Unauthorized extends Error {}

async function api(path, method = "GET") {
  const response = await fetch(path, {
    method,
    cache: "no-store",
    headers: { Authorization: "Bearer " + token(), Accept: "application/json" },
  });
  if (response.status === 401) throw new Unauthorized();
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    const detail = typeof body.detail === "string" ? body.detail : response.statusText;
    throw new Error(`${method} ${path}: ${response.status} ${detail}`);
  }
  return body;
}

// --- formatting --------------------------------------------------------------------------
const isNum = (x) => typeof x === "number" && Number.isFinite(x);
function num(x, digits = 2) {
  if (!isNum(x)) return "—";
  const abs = Math.abs(x);
  const d = abs >= 1000 ? Math.min(digits, 2) : abs >= 1 ? Math.max(digits, 2) : Math.max(digits, 4);
  return x.toLocaleString("en-US", { minimumFractionDigits: d, maximumFractionDigits: d });
}
const pct = (x, d = 1) => (isNum(x) ? (100 * x).toFixed(d) + "%" : "—");
const signed = (x) => (isNum(x) ? (x >= 0 ? "+" : "") + num(x) : "—");
function when(text) {
  if (!text) return "—";
  const t = new Date(text);
  return isNaN(t) ? String(text) : t.toISOString().replace("T", " ").slice(0, 16) + " UTC";
}

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === "class") node.className = v;
    else if (k === "text") node.textContent = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child);
  return node;
}

function setText(id, text) { $(id).textContent = text; }

function emptyRow(tbody, columns, text) {
  tbody.replaceChildren(el("tr", { class: "empty" }, el("td", { colspan: columns, text })));
}

// --- rendering ---------------------------------------------------------------------------
function renderDecision(d) {
  const warming = !d || d.status === "warming_up";
  $("decision-warming").hidden = !warming;
  $("decision-body").hidden = warming;
  if (warming) {
    setText("decision-time", "");
    $("votes").replaceChildren(el("div", { class: "meta", text: "No votes yet: the service is warming up." }));
    $("family-weights").replaceChildren();
    return;
  }
  const action = $("decision-action");
  action.textContent = d.action;
  action.className = "action action-" + d.action;
  setText("decision-symbol", `${d.symbol} · ${d.timeframe}`);
  setText("decision-price", isNum(d.price) ? "close " + num(d.price) : "");
  setText("decision-time", when(d.timestamp));
  setText("decision-confidence", pct(d.confidence));
  $("decision-confidence-bar").style.width = pct(d.confidence, 2);
  setText("decision-regime", d.regime.replace(/_/g, " "));
  setText("decision-size", pct(d.size, 2));
  setText("decision-stop", num(d.stop));
  setText("decision-target", num(d.target));
  setText("decision-maker", d.maker ? "maker (passive)" : "taker");
  const filters = d.filters.length
    ? d.filters.map((f) => el("span", { class: "chip", "data-testid": "filter", text: f }))
    : [el("span", { class: "chip none", text: "none" })];
  $("filters").replaceChildren(...filters);
  $("reasons").replaceChildren(...d.reasons.map((r) => el("li", { "data-testid": "reason", text: r })));
  const rows = Object.entries(d.votes).map(([name, p]) => voteRow(name, p, "vote-" + name));
  rows.push(voteRow("fused", d.proba, "vote-fused", true));
  $("votes").replaceChildren(...rows);
  const weights = Object.entries(d.family_weights).sort((a, b) => b[1] - a[1]);
  $("family-weights").replaceChildren(
    ...weights.map(([family, w]) => el("span", { class: "chip", text: `${family} ${pct(w, 0)}` })),
  );
}

function voteRow(name, p, testid, fused = false) {
  const bar = el("div", { class: "bar", title: `down ${pct(p[0])} · flat ${pct(p[1])} · up ${pct(p[2])}` });
  ["p-down", "p-flat", "p-up"].forEach((cls, i) => {
    const part = el("div", { class: cls, "data-testid": cls, text: p[i] >= 0.12 ? pct(p[i], 0) : "" });
    part.style.width = pct(p[i], 2);
    bar.append(part);
  });
  return el("div", { class: fused ? "vote fused" : "vote", "data-testid": testid },
    el("span", { class: "name", text: name, title: name }), bar);
}

function renderControl(control) {
  const state = control ? control.state : "unknown";
  const pill = $("control-state");
  pill.textContent = state.replace("_", " ");
  pill.className = "pill state-" + state;
  pill.dataset.state = state;
  setText("control-reason", control && control.reason ? control.reason : "");
  // While trading is stopped the brain still decides, but no new position is opened.
  const held = $("decision-held");
  held.hidden = state === "running" || state === "unknown";
  held.textContent = state === "paused" ? "not acted on: paused"
    : state === "emergency_stop" ? "not acted on: emergency stop" : "";
  $("btn-pause").disabled = state !== "running";
  $("btn-resume").disabled = state === "running";
  $("btn-emergency").disabled = state === "emergency_stop";
}

function renderStatus(s) {
  const mode = $("mode");
  mode.textContent = s.mode;
  mode.className = "pill mode-" + s.mode;
  setText("feed", `${s.symbols.join(", ")} · ${s.timeframe} · feed ${s.feed}`);
  renderControl(s.control);
  const loaded = Object.entries(s.candles_loaded).map(([k, v]) => `${k} ${v}`).join(", ");
  kv("service", [
    ["warming up", s.warming_up ? "yes" : "no"],
    ["candles loaded", loaded || "—"],
    ["sequence length", s.sequence_length ?? "—"],
    ["decisions", s.decisions],
    ["trades processed", s.trades_processed],
    ["feed lag", isNum(s.feed_lag_s) ? s.feed_lag_s.toFixed(2) + " s" : "—"],
  ]);
}

function renderLearning(l) {
  kv("learning", [
    ["enabled", l.enabled ? "yes" : "no"],
    ["retrain every", l.retrain_every_bars + " bars"],
    ["since training", l.candles_since_training + " candles"],
    ["next retrain in", l.next_retrain_in == null ? "—" : l.next_retrain_in + " candles"],
    ["trained on", l.trained_on == null ? "—" : l.trained_on + " candles"],
    ["trained at", when(l.trained_at)],
  ]);
}

function kv(id, pairs) {
  $(id).replaceChildren(...pairs.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { text: String(v) })]));
}

function renderModels(models) {
  const body = $("models");
  if (!models.length) return emptyRow(body, 4, "no models loaded yet");
  body.replaceChildren(...models.map((m) => el("tr", { "data-testid": "model-" + m.id },
    el("td", {}, el("span", { class: "dot " + (m.ready ? "ready" : "not-ready"), title: m.ready ? "ready" : "not ready" }), m.id),
    el("td", { text: m.family }), el("td", { text: m.kind }),
    el("td", { class: "num", text: m.n_features ?? "—" }))));
}

function renderPositions(positions) {
  const body = $("positions");
  if (!positions.length) return emptyRow(body, 8, "no open positions");
  body.replaceChildren(...positions.map((p) => el("tr", { "data-testid": "position" },
    el("td", { text: p.symbol }), el("td", { class: p.side === "long" ? "pos" : "neg", text: p.side }),
    el("td", { class: "num", text: num(p.quantity, 4) }), el("td", { class: "num", text: num(p.entry_price) }),
    el("td", { class: "num", text: num(p.mark_price) }), el("td", { class: "num", text: num(p.stop_price) }),
    el("td", { class: "num", text: num(p.target_price) }),
    el("td", { class: "num " + pnlClass(p.unrealized_pnl), text: signed(p.unrealized_pnl) }))));
}

function renderTrades(trades) {
  const body = $("trades");
  if (!trades.length) return emptyRow(body, 8, "no closed trades yet");
  body.replaceChildren(...trades.map((t) => el("tr", { "data-testid": "trade" },
    el("td", { text: when(t.exit_time) }), el("td", { text: t.symbol }), el("td", { text: t.side }),
    el("td", { class: "num", text: num(t.entry_price) }), el("td", { class: "num", text: num(t.exit_price) }),
    el("td", { class: "num " + pnlClass(t.pnl), text: signed(t.pnl) }),
    el("td", { class: "num " + pnlClass(t.r_multiple), text: isNum(t.r_multiple) ? t.r_multiple.toFixed(2) : "—" }),
    el("td", { text: String(t.exit_reason).replace("_", " ") }))));
}

function renderTop(decisions) {
  const body = $("top");
  if (!decisions.length) return emptyRow(body, 5, "no decisions yet");
  body.replaceChildren(...decisions.map((d) => el("tr", { "data-testid": "top-" + d.symbol },
    el("td", { text: d.symbol }), el("td", { class: "act action-" + d.action, text: d.action }),
    el("td", { class: "num", text: pct(d.confidence) }), el("td", { text: d.regime.replace(/_/g, " ") }),
    el("td", { class: "num", text: num(d.price) }))));
}

const pnlClass = (x) => (isNum(x) ? (x >= 0 ? "pos" : "neg") : "");

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function renderEquity(e) {
  const chart = $("equity-chart");
  const width = Math.max(chart.clientWidth, 300), height = 260;
  const pad = { left: 70, right: 16, top: 12, bottom: 26 };
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const values = [...e.equity, ...e.buy_and_hold].filter(isNum);
  if (e.timestamps.length < 2 || !values.length) {
    chart.replaceChildren(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "no equity recorded yet"));
    setText("equity-return", ""); setText("hold-return", "");
    return;
  }
  let lo = Math.min(...values), hi = Math.max(...values);
  const margin = (hi - lo) * 0.08 || Math.abs(hi) * 0.01 || 1;
  lo -= margin; hi += margin;
  const n = e.timestamps.length;
  const x = (i) => pad.left + (i / (n - 1)) * (width - pad.left - pad.right);
  const y = (v) => pad.top + (1 - (v - lo) / (hi - lo)) * (height - pad.top - pad.bottom);
  const path = (series) => series.map((v, i) => (isNum(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : null))
    .filter(Boolean).join(" ");
  const nodes = [];
  const defs = svg("defs");
  const gradient = svg("linearGradient", { id: "equity-fill", x1: 0, y1: 0, x2: 0, y2: 1 });
  gradient.append(svg("stop", { offset: "0%", "stop-color": "#58a6ff", "stop-opacity": 0.28 }),
    svg("stop", { offset: "100%", "stop-color": "#58a6ff", "stop-opacity": 0 }));
  defs.append(gradient);
  nodes.push(defs);
  for (let k = 0; k <= 4; k++) {
    const v = lo + (k / 4) * (hi - lo);
    nodes.push(svg("line", { class: "grid", x1: pad.left, x2: width - pad.right, y1: y(v), y2: y(v) }));
    nodes.push(svg("text", { x: pad.left - 8, y: y(v) + 4, "text-anchor": "end" }, num(v, 0)));
  }
  const labels = [0, Math.floor((n - 1) / 2), n - 1];
  labels.forEach((i, k) => nodes.push(svg("text", {
    x: x(i), y: height - 8, "text-anchor": ["start", "middle", "end"][k],
  }, when(e.timestamps[i]).slice(0, 16))));
  const line = path(e.equity);
  const first = line.split(" ")[0], last = line.split(" ").slice(-1)[0];
  const bottom = y(lo).toFixed(1);
  nodes.push(svg("polygon", { class: "area", points: `${first.split(",")[0]},${bottom} ${line} ${last.split(",")[0]},${bottom}` }));
  nodes.push(svg("polyline", { class: "hold", points: path(e.buy_and_hold), "data-testid": "hold-line" }));
  nodes.push(svg("polyline", { class: "equity", points: line, "data-testid": "equity-line" }));
  chart.replaceChildren(...nodes);
  showReturn("equity-return", e.equity);
  showReturn("hold-return", e.buy_and_hold);
}

function showReturn(id, series) {
  const finite = series.filter(isNum);
  const node = $(id);
  if (finite.length < 2) { node.textContent = ""; return; }
  const change = finite[finite.length - 1] / finite[0] - 1;
  node.textContent = (change >= 0 ? "+" : "") + pct(change, 2);
  node.className = change >= 0 ? "pos" : "neg";
}

// --- polling and control -----------------------------------------------------------------
const SOURCES = [
  ["/api/ai/live", renderDecision],
  ["/api/ai/status", renderStatus],
  ["/predict/top?limit=20", renderTop],
  ["/api/ai/learning_status", renderLearning],
  ["/models/list", renderModels],
  ["/api/positions", renderPositions],
  ["/api/trades?limit=15", renderTrades],
  ["/api/equity?limit=1000", renderEquity],
];

async function refresh() {
  if (inFlight || !token()) return;
  inFlight = true;
  try {
    const results = await Promise.allSettled(SOURCES.map(([path]) => api(path)));
    if (results.some((r) => r.status === "rejected" && r.reason instanceof Unauthorized)) {
      askForToken("The token was refused (401). Paste the right one.");
      return;
    }
    const problems = [];
    results.forEach((r, i) => {
      if (r.status === "fulfilled") {
        try { SOURCES[i][1](r.value); } catch (err) { problems.push(`${SOURCES[i][0]}: ${err.message}`); }
      } else problems.push(r.reason.message);
    });
    showProblems(problems);
    setText("connection", "updated " + new Date().toLocaleTimeString());
  } finally {
    inFlight = false;
  }
}

function showProblems(problems) {
  const banner = $("error-banner");
  banner.textContent = problems.length ? "Could not load: " + problems.join(" · ") : "";
  banner.classList.toggle("show", problems.length > 0);
}

async function control(action) {
  if (action === "emergency_stop" && !window.confirm(
    "Emergency stop: close EVERY position at the next price, cancel open orders and stop trading?")) return;
  try {
    renderControl(await api("/api/control/" + action, "POST"));
    refresh();
  } catch (err) {
    if (err instanceof Unauthorized) askForToken("The token was refused (401). Paste the right one.");
    else showProblems([err.message]);
  }
}

function startPolling() {
  stopPolling();
  $("token-overlay").classList.remove("show");
  refresh();
  polling = setInterval(refresh, POLL_MS);
}

function stopPolling() {
  if (polling !== null) clearInterval(polling);
  polling = null;
}

document.addEventListener("DOMContentLoaded", () => {
  tokenFromFragment();
  renderControl(null);
  $("btn-pause").addEventListener("click", () => control("pause"));
  $("btn-resume").addEventListener("click", () => control("resume"));
  $("btn-emergency").addEventListener("click", () => control("emergency_stop"));
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    sessionStorage.setItem(TOKEN_KEY, $("token-input").value.trim());
    $("token-input").value = "";
    startPolling();
  });
  $("forget-token").addEventListener("click", (event) => {
    event.preventDefault();
    sessionStorage.removeItem(TOKEN_KEY);
    askForToken("");
  });
  window.addEventListener("hashchange", () => { tokenFromFragment(); if (token()) startPolling(); });
  window.addEventListener("resize", () => refresh());
  if (token()) startPolling(); else askForToken("");
});
