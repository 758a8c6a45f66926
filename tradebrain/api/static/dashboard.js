// tradebrain live dashboard: polls the REST API every 2 s with the bearer token.
// The token comes from the URL fragment (/#token=...; browsers never send fragments to the
// server), is kept in sessionStorage for this tab only, and is removed from the address bar.
// Every value from the API is written with textContent, never parsed as HTML.
"use strict";

const POLL_MS = 2000;
const VERSIONS_MS = 30000;
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

// The learning loop: which version trades, which one is judged in shadow, the gates' last
// verdict, the degradation watch, and the experience log (the service says "enabled: false"
// and a note when it is off).
function renderLearning(l) {
  const state = $("learning-state");
  state.textContent = l.enabled ? "on" : "off";
  state.className = "pill " + (l.enabled ? "learning-on" : "learning-off");
  state.dataset.enabled = String(l.enabled);
  const note = $("learning-note");
  note.hidden = l.enabled || !l.note;
  note.textContent = l.enabled ? "" : l.note || "";
  const trained = [
    ["since training", l.candles_since_training + " bars"],
    ["trained on", l.trained_on == null ? "—" : l.trained_on + " rows"],
    ["trained to", when(l.trained_at)],
  ];
  $("learning-checks").hidden = !l.enabled;
  $("shadow-panel").hidden = !l.enabled;
  if (!l.enabled) {
    kv("learning", trained);
    return;
  }
  kv("learning", [
    ["production", version(l.production_version), "learning-production"],
    ["candidate", candidateText(l), "learning-candidate"],
    ["retraining", l.retraining ? "running since " + when(l.retraining_since) : "no", "learning-retraining"],
    ["last retrain", retrainText(l.last_retrain), "learning-last-retrain"],
    ["next retrain in", l.next_retrain_in == null ? "—" : l.next_retrain_in + " bars"],
    ["retrain every", l.retrain_every_bars + " bars"],
    ...trained,
    ["promotion", l.auto_promote ? "automatic" : "by the operator"],
    ["rollback", l.auto_rollback ? "automatic" : "by the operator"],
    ["trials counted", l.trials ?? "—"],
  ]);
  renderVerdict(l.last_verdict);
  renderMonitor(l.monitor);
  const experience = l.experience || {};
  $("experience").replaceChildren(...(Object.keys(experience).length
    ? Object.entries(experience).map(([k, v]) => el("span", { class: "chip", "data-testid": "experience-" + k, text: `${v} ${k}` }))
    : [el("span", { class: "chip none", text: "not exported yet" })]));
  renderShadow(l.shadow);
}

const version = (v) => (v == null ? "—" : "v" + v);

function candidateText(l) {
  if (l.candidate_version != null) {
    const bars = l.shadow ? ` · ${l.shadow.bars} bars` : "";
    const waiting = l.awaiting_approval === l.candidate_version ? " · awaits approval" : "";
    return `${version(l.candidate_version)} in shadow${bars}${waiting}`;
  }
  if (l.pending_candidate != null) return `${version(l.pending_candidate)} (shadow starts next bar)`;
  return "none";
}

function retrainText(r) {
  if (!r) return "—";
  if (r.error) return `failed ${when(r.at)}: ${r.error}`;
  const took = isNum(r.seconds) ? ` in ${r.seconds.toFixed(1)} s` : "";
  return `${version(r.version)} · ${r.rows ?? "?"} rows${took} · ${when(r.at)}`;
}

const VERDICT_NUMBERS = [["p_value", "p"], ["dsr", "DSR"], ["t_stat", "t"], ["active", "active bars"]];

function renderVerdict(v) {
  const head = $("verdict");
  if (!v) {
    head.textContent = "no candidate judged yet";
    head.className = "verdict meta";
    $("verdict-reasons").replaceChildren();
    $("verdict-numbers").replaceChildren();
    return;
  }
  head.textContent = `${version(v.version)} after ${v.bars} bars: ${v.decision}`;
  head.className = "verdict decision-" + v.decision;
  head.dataset.decision = v.decision;
  $("verdict-reasons").replaceChildren(...(v.reasons || []).map((r) => el("li", { "data-testid": "verdict-reason", text: r })));
  const numbers = v.numbers || {};
  $("verdict-numbers").replaceChildren(...VERDICT_NUMBERS.filter(([k]) => isNum(numbers[k]))
    .map(([k, label]) => el("span", { class: "chip", text: `${label} ${Number.isInteger(numbers[k]) ? numbers[k] : numbers[k].toPrecision(3)}` })));
}

function renderMonitor(m) {
  const text = $("cusum"), bar = $("cusum-bar");
  const cusum = m && m.cusum;
  if (!cusum || !isNum(cusum.statistic) || !isNum(cusum.h)) {
    const held = m && isNum(m.burn_in_blocks) ? `: ${m.burn_in_blocks} blocks of burn-in so far` : "";
    text.textContent = m && m.version != null
      ? `${version(m.version)} has no expected profile yet${held}` : "nothing to watch yet";
    bar.style.width = "0%";
    bar.classList.remove("alarm");
    return;
  }
  text.textContent = `${version(m.version)}: statistic ${cusum.statistic.toFixed(2)} of threshold ${cusum.h.toFixed(2)}`
    + (cusum.alarmed ? " · ALARM" : "") + (isNum(cusum.n) ? ` · ${cusum.n} blocks` : "");
  text.dataset.statistic = String(cusum.statistic);
  bar.style.width = pct(Math.min(1, Math.max(0, cusum.statistic / cusum.h)), 2);
  bar.classList.toggle("alarm", Boolean(cusum.alarmed));
}

function renderShadow(shadow) {
  const chart = $("shadow-chart");
  const width = Math.max(chart.clientWidth, 260), height = 170;
  const pad = { left: 58, right: 10, top: 10, bottom: 22 };
  chart.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const production = shadow ? shadow.production_equity : [];
  const candidate = shadow ? shadow.candidate_equity : [];
  const values = [...production, ...candidate].filter(isNum);
  if (Math.max(production.length, candidate.length) < 2 || !values.length) {
    const text = shadow ? `shadow since ${when(shadow.since)}: ${shadow.bars} bars so far` : "no candidate in shadow";
    chart.replaceChildren(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, text));
    setText("shadow-production-return", ""); setText("shadow-candidate-return", "");
    return;
  }
  const scale = yScale([...values, 1], pad.top, height - pad.bottom);
  const path = (series) => series.map((v, i) => (isNum(v)
    ? `${(pad.left + (i / (series.length - 1)) * (width - pad.left - pad.right)).toFixed(1)},${scale.y(v).toFixed(1)}`
    : null)).filter(Boolean).join(" ");
  const nodes = gridLines(scale, pad.left, width - pad.right, (v) => (v >= 1 ? "+" : "") + pct(v - 1, 1));
  nodes.push(svg("line", { class: "base", x1: pad.left, x2: width - pad.right, y1: scale.y(1), y2: scale.y(1) }));
  nodes.push(svg("text", { x: pad.left, y: height - 6, "text-anchor": "start" }, when(shadow.since)));
  nodes.push(svg("text", { x: width - pad.right, y: height - 6, "text-anchor": "end" }, `${shadow.bars} bars`));
  nodes.push(svg("polyline", { class: "equity", points: path(production), "data-testid": "shadow-production-line" }));
  nodes.push(svg("polyline", { class: "candidate", points: path(candidate), "data-testid": "shadow-candidate-line" }));
  chart.replaceChildren(...nodes);
  showLogReturn("shadow-production-return", shadow.production_log_return);
  showLogReturn("shadow-candidate-return", shadow.candidate_log_return);
}

function showLogReturn(id, logReturn) {
  const node = $(id);
  if (!isNum(logReturn)) { node.textContent = ""; return; }
  const change = Math.exp(logReturn) - 1;
  node.textContent = (change >= 0 ? "+" : "") + pct(change, 2);
  node.className = change >= 0 ? "pos" : "neg";
}

function renderVersions(versions) {
  const body = $("versions");
  if (!versions.length) return emptyRow(body, 8, "no version registered yet");
  body.replaceChildren(...versions.map((v) => el("tr", { "data-testid": "version-" + v.version },
    el("td", { text: version(v.version) }),
    el("td", { class: "status-" + v.status, "data-testid": "version-status", text: v.status.replace("_", " ") }),
    el("td", { text: v.aliases.length ? v.aliases.join(", ") : "—" }),
    el("td", { text: when(v.created_at) }),
    el("td", { text: when(v.lineage.data_end) }),
    el("td", { class: "num", text: v.lineage.rows ?? "—" }),
    el("td", { text: version(v.lineage.parent) }),
    el("td", { text: v.lineage.source ?? "—" }))));
}

function kv(id, rows) {
  $(id).replaceChildren(...rows.flatMap(([k, v, testid]) => [
    el("dt", { text: k }), el("dd", testid ? { "data-testid": testid, text: String(v) } : { text: String(v) })]));
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

// The vertical scale of a chart: the values' range with 8% to spare, drawn from top to bottom.
function yScale(values, top, bottom) {
  let lo = Math.min(...values), hi = Math.max(...values);
  const margin = (hi - lo) * 0.08 || Math.abs(hi) * 0.01 || 1;
  lo -= margin; hi += margin;
  return { lo, hi, y: (v) => top + (1 - (v - lo) / (hi - lo)) * (bottom - top) };
}

// Five horizontal grid lines across [left, right], each labelled on the left with label(value).
function gridLines(scale, left, right, label) {
  const nodes = [];
  for (let k = 0; k <= 4; k++) {
    const v = scale.lo + (k / 4) * (scale.hi - scale.lo);
    nodes.push(svg("line", { class: "grid", x1: left, x2: right, y1: scale.y(v), y2: scale.y(v) }));
    nodes.push(svg("text", { x: left - 8, y: scale.y(v) + 4, "text-anchor": "end" }, label(v)));
  }
  return nodes;
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
  const scale = yScale(values, pad.top, height - pad.bottom);
  const { lo, y } = scale;
  const n = e.timestamps.length;
  const x = (i) => pad.left + (i / (n - 1)) * (width - pad.left - pad.right);
  const path = (series) => series.map((v, i) => (isNum(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : null))
    .filter(Boolean).join(" ");
  const nodes = [];
  const defs = svg("defs");
  const gradient = svg("linearGradient", { id: "equity-fill", x1: 0, y1: 0, x2: 0, y2: 1 });
  gradient.append(svg("stop", { offset: "0%", "stop-color": "#58a6ff", "stop-opacity": 0.28 }),
    svg("stop", { offset: "100%", "stop-color": "#58a6ff", "stop-opacity": 0 }));
  defs.append(gradient);
  nodes.push(defs, ...gridLines(scale, pad.left, width - pad.right, (v) => num(v, 0)));
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
const LEARNING_STATUS = "/api/ai/learning_status";
const SOURCES = [
  ["/api/ai/live", renderDecision],
  ["/api/ai/status", renderStatus],
  ["/predict/top?limit=20", renderTop],
  [LEARNING_STATUS, renderLearning],
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
    const learning = results[SOURCES.findIndex(([path]) => path === LEARNING_STATUS)];
    if (learning.status === "fulfilled") {
      try {
        await refreshVersions(learning.value);
      } catch (err) {
        if (err instanceof Unauthorized) {
          askForToken("The token was refused (401). Paste the right one.");
          return;
        }
        problems.push(err.message);
      }
    }
    showProblems(problems);
    setText("connection", "updated " + new Date().toLocaleTimeString());
  } finally {
    inFlight = false;
  }
}

// The registry changes seldom and reading it costs the server more than a status: the versions
// are read again when the learning status shows a change, or every VERSIONS_MS (the operator may
// change the registry from the command line), and not at all while the learning loop is off.
let versionsRead = { key: null, at: 0 };

async function refreshVersions(l) {
  $("versions-panel").hidden = !l.enabled;
  if (!l.enabled) {
    versionsRead = { key: null, at: 0 };
    return;
  }
  const retrained = l.last_retrain ? [l.last_retrain.at, l.last_retrain.version] : null;
  const verdict = l.last_verdict ? [l.last_verdict.version, l.last_verdict.decision] : null;
  const key = JSON.stringify([l.production_version, l.candidate_version, l.pending_candidate,
    l.awaiting_approval, l.retraining, retrained, verdict]);
  if (key === versionsRead.key && Date.now() - versionsRead.at < VERSIONS_MS) return;
  renderVersions(await api("/models/versions"));
  versionsRead = { key, at: Date.now() };
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
