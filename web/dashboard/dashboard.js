// eta's live dashboard: reads /admin/stream (server-sent events, one JSON snapshot per event)
// from the router that serves this page and draws it. No libraries; plots are <canvas>.
"use strict";

const HISTORY = 600;  // points kept per series (2.5 min at 4 Hz)
const COLORS = ["#1f8fd6", "#e8603c", "#2aa876", "#9b59b6", "#d99a1e", "#17a2b8", "#c0392b",
  "#5d6d7e", "#8e44ad", "#27ae60"];
const $ = (id) => document.getElementById(id);

const state = {
  colors: new Map(),   // replica url -> color
  p99: new Map(),      // replica url -> [[t, p99]]
  ttft: [],            // [t, predicted, actual]
  e2e: [],
  decisions: [],       // newest first
  last: null,          // previous snapshot (for decisions/s)
  updates: 0,
};

function colorOf(url) {
  if (!state.colors.has(url)) state.colors.set(url, COLORS[state.colors.size % COLORS.length]);
  return state.colors.get(url);
}
function shortUrl(url) { return url.replace(/^https?:\/\//, ""); }
function esc(s) {
  return String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
}
function secs(v) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  if (v < 0.001 && v > 0) return (v * 1e6).toFixed(0) + " µs";
  if (v < 1) return (v * 1000).toFixed(v < 0.01 ? 2 : v < 0.1 ? 1 : 0) + " ms";
  if (v < 100) return v.toFixed(2) + " s";
  return v.toFixed(0) + " s";
}
function num(v, digits = 1) {
  if (v === null || v === undefined || !isFinite(v)) return "–";
  return v >= 1000 ? Math.round(v).toLocaleString("en") : v.toFixed(digits);
}
function pct(v) { return v === null || v === undefined || !isFinite(v) ? "–" : (v * 100).toFixed(1) + " %"; }
function duration(s) {
  s = Math.floor(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  return (h ? h + "h " : "") + (h || m ? m + "m " : "") + r + "s";
}
function push(series, point) { series.push(point); if (series.length > HISTORY) series.shift(); }

// --- replicas table ----------------------------------------------------------------------------

function healthCell(r) {
  let cls = "", text = "healthy";
  if (!r.health_known) { cls = "warn"; text = "probing"; }
  else if (!r.healthy) { text = "unhealthy"; }
  else if (r.draining || r.removing) { cls = "warn"; text = r.removing ? "removing" : "draining"; }
  else if (!r.routable) { cls = "warn"; text = "not routable"; }
  else cls = "ok";
  const s = r.scrape;
  const fresh = s.fresh ? "metrics fresh" : "metrics stale";
  const age = s.age_s === null ? "never scraped" : fresh + ", " + secs(s.age_s) + " old";
  return `<span class="dot ${cls}"></span>${text}<span class="small">${esc(age)}</span>`;
}

function speedCell(r) {
  // Factors are against the profile in simulated time; eta vllm-sim runs time_scale times faster.
  const scale = r.time_scale || 1;
  const p = r.speed.prefill_factor / scale, d = r.speed.decode_factor / scale;
  const f = (x) => (x === null || !isFinite(x) ? "–" : "×" + x.toFixed(2));
  const note = r.time_scale ? `time scale ${r.time_scale}` : esc(r.gpu);
  return `${f(p)} / ${f(d)}<span class="small">${note}</span>`;
}

// Where the replica's prefix-cache estimate comes from (issue 15): its own KV-cache events once
// their first batch is in, else what this router sent there.
function prefixNote(r) {
  const k = r.kv_events;
  if (r.prefix_source === "kv_events" && k) {
    const lost = k.gaps_lost ? ` · ${k.gaps_lost} gaps lost` : "";
    return `prefix: KV events · ${k.cached_blocks} blocks${lost}`;
  }
  if (k) return "prefix: router index (KV events: none yet)";
  return "prefix: router index";
}

function renderReplicas(replicas) {
  const rows = replicas.map((r) => {
    const s = r.scrape, l = r.ledger, w = r.window, p = r.predicted_typical;
    const kv = s.valid && isFinite(s.kv_usage) ? Math.max(0, Math.min(1, s.kv_usage)) : 0;
    return `<tr data-url="${esc(r.url)}">
      <td><span class="swatch" style="background:${colorOf(r.url)}"></span>${esc(shortUrl(r.url))}<span class="small">${esc(r.gpu)} · ${esc(r.arch)}</span></td>
      <td>${healthCell(r)}</td>
      <td class="rw">${s.valid ? s.running + " / " + s.waiting : "–"}</td>
      <td class="kvc"><span class="bar"><i style="width:${(kv * 100).toFixed(1)}%"></i></span>${s.valid ? pct(s.kv_usage) : "–"}<span class="small">${esc(prefixNote(r))}</span></td>
      <td>${speedCell(r)}</td>
      <td class="rps">${num(w.requests_per_s)}</td>
      <td class="tps">${num(w.tokens_per_s, 0)}</td>
      <td class="inflight">${l.in_flight}<span class="small">${l.prefilling} prefill · ${l.decoding} decode</span></td>
      <td>${secs(p.ttft_s)} / ${secs(p.e2e_s)}<span class="small">${p.prompt_tokens} in · ${p.output_tokens} out</span></td>
      <td class="ttft">${secs(w.ttft_p50_s)} / ${secs(w.ttft_p99_s)}<span class="small">${w.ttft_samples} requests</span></td>
    </tr>`;
  });
  document.querySelector("#replicas tbody").innerHTML = rows.join("") ||
    `<tr><td colspan="10" class="empty">no replica</td></tr>`;
}

// --- decisions ---------------------------------------------------------------------------------

// Where the prompt's tokens came from when not the estimate: the replica's /tokenize (its wait),
// the router's cache of them, or the estimate after a timeout or an error.
function tokensNote(d) {
  const s = d.prompt_tokens_source;
  if (!s || s === "estimate") return "";
  if (s === "tokenize") return ` (tokenized in ${secs(d.tokenize_s)})`;
  return s === "cache" ? " (tokens cached)" : ` (estimate: tokenize ${esc(s)})`;
}

function renderDecisions() {
  if (!state.decisions.length) return;
  const html = state.decisions.slice(0, 6).map((d) => {
    const cands = d.candidates.slice();
    const key = (c) => (c.predicted_e2e_s ?? c.score ?? 0);
    cands.sort((a, b) => (a.replica === d.chosen ? -1 : b.replica === d.chosen ? 1 : key(a) - key(b)));
    const shown = cands.slice(0, 6);
    const max = Math.max(1e-9, ...shown.map((c) => c.predicted_e2e_s ?? 0));
    const rows = shown.map((c) => {
      const win = c.replica === d.chosen ? "win" : "";
      const w = c.predicted_e2e_s === null ? 0 : (100 * c.predicted_e2e_s) / max;
      return `<span class="${win ? "winner" : ""}">${esc(shortUrl(c.replica))}</span>
        <span class="cbar ${win}"><i style="width:${w.toFixed(1)}%"></i></span>
        <span>${secs(c.predicted_ttft_s)} / ${secs(c.predicted_e2e_s)}</span>`;
    }).join("");
    const more = cands.length > shown.length ? `<span class="meta">+${cands.length - shown.length} more</span><span></span><span></span>` : "";
    const t = new Date(d.time * 1000).toLocaleTimeString("en-GB");
    return `<div class="decision">
      <div class="meta"><b>#${d.request_id}</b>${d.attempt > 1 ? " (retry " + (d.attempt - 1) + ")" : ""} · ${t} ·
        → <b>${d.chosen ? esc(shortUrl(d.chosen)) : "shed"}</b> in ${secs(d.decision_s)}<br>
        ${esc(d.model)} · ${d.prompt_tokens} prompt${tokensNote(d)} (${d.cached_tokens} cached${d.prefix_source === "kv_events" ? ", KV events" : ""}) · ~${d.predicted_output_tokens} out</div>
      <div class="cands">${rows}${more}</div></div>`;
  }).join("");
  $("decisions").innerHTML = html;
}

// --- plots -------------------------------------------------------------------------------------

function plot(canvas, series, opts = {}) {
  const dpr = window.devicePixelRatio || 1;
  const W = canvas.clientWidth, H = canvas.clientHeight;
  if (canvas.width !== W * dpr || canvas.height !== H * dpr) { canvas.width = W * dpr; canvas.height = H * dpr; }
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, W, H);
  const L = 54, R = 8, T = 8, B = 20;
  let tmin = Infinity, tmax = -Infinity, vmax = 0;
  for (const s of series) for (const [t, v] of s.points) {
    tmin = Math.min(tmin, t); tmax = Math.max(tmax, t);
    if (isFinite(v)) vmax = Math.max(vmax, v);
  }
  g.font = "11px system-ui, sans-serif";
  g.fillStyle = "#6b7385";
  if (!isFinite(tmin) || vmax <= 0) { g.fillText("waiting for data…", L, T + 16); return; }
  tmin = Math.min(tmin, tmax - 30);
  vmax *= 1.1;
  const x = (t) => L + ((t - tmin) / (tmax - tmin || 1)) * (W - L - R);
  const y = (v) => T + (1 - v / vmax) * (H - T - B);
  g.strokeStyle = "#e3e6ec"; g.lineWidth = 1;
  for (let i = 0; i <= 4; i++) {
    const v = (vmax * i) / 4, yy = Math.round(y(v)) + 0.5;
    g.beginPath(); g.moveTo(L, yy); g.lineTo(W - R, yy); g.stroke();
    g.fillText(secs(v), 4, yy + 4);
  }
  g.fillText(`-${Math.round(tmax - tmin)} s`, L, H - 5);
  g.fillText("now", W - R - 22, H - 5);
  for (const s of series) {
    g.strokeStyle = s.color; g.lineWidth = 1.6; g.beginPath();
    let pen = false;
    for (const [t, v] of s.points) {
      if (!isFinite(v)) { pen = false; continue; }
      if (pen) g.lineTo(x(t), y(v)); else { g.moveTo(x(t), y(v)); pen = true; }
    }
    g.stroke();
  }
}

function renderPlots() {
  const p99 = [...state.p99.entries()].map(([url, pts]) => ({ color: colorOf(url), points: pts }));
  plot($("plot-p99"), p99);
  $("legend-p99").innerHTML = [...state.p99.keys()].map((u) =>
    `<span><span class="swatch" style="background:${colorOf(u)}"></span>${esc(shortUrl(u))}</span>`).join("");
  const css = getComputedStyle(document.documentElement);
  const pred = css.getPropertyValue("--pred").trim(), act = css.getPropertyValue("--act").trim();
  const two = (s) => [{ color: pred, points: s.map((p) => [p[0], p[1]]) }, { color: act, points: s.map((p) => [p[0], p[2]]) }];
  plot($("plot-ttft"), two(state.ttft));
  plot($("plot-e2e"), two(state.e2e));
}

// --- the stream --------------------------------------------------------------------------------

function onSnapshot(s) {
  state.updates++;
  const t = s.uptime_s;
  $("f-policy").textContent = s.policy;
  $("f-uptime").textContent = duration(s.uptime_s);
  $("f-inflight").textContent = s.in_flight;
  $("f-queued").textContent = s.queued;
  const sum = (k) => s.replicas.reduce((a, r) => a + (r.window[k] || 0), 0);
  $("f-rps").textContent = num(sum("requests_per_s"));
  $("f-tps").textContent = num(sum("tokens_per_s"), 0);
  $("f-decisions").textContent = s.decisions_total.toLocaleString("en");
  const acc = s.accuracy.recent;
  const err = (a) => (a.n ? `${pct(a.abs_rel_error_median)} (${pct(a.abs_rel_error_p90)})` : "–");
  $("f-ttft-err").textContent = err(acc.ttft);
  $("f-e2e-err").textContent = err(acc.e2e);

  renderReplicas(s.replicas);
  const live = new Set(s.replicas.map((r) => r.url));
  for (const url of [...state.p99.keys()]) if (!live.has(url)) state.p99.delete(url);
  for (const r of s.replicas) {
    if (!state.p99.has(r.url)) state.p99.set(r.url, []);
    push(state.p99.get(r.url), [t, r.window.ttft_p99_s ?? NaN]);
  }
  const tick = s.accuracy.tick;
  if (tick.ttft.n) push(state.ttft, [t, tick.ttft.predicted_median_s, tick.ttft.actual_median_s]);
  if (tick.e2e.n) push(state.e2e, [t, tick.e2e.predicted_median_s, tick.e2e.actual_median_s]);
  for (const d of s.decisions) state.decisions.unshift(d);
  state.decisions.length = Math.min(state.decisions.length, 20);
  renderDecisions();
  renderPlots();
  document.body.dataset.updates = state.updates;
  state.last = s;
}

function connect() {
  const params = new URLSearchParams(location.search);
  const q = new URLSearchParams();
  if (params.get("interval_ms")) q.set("interval_ms", params.get("interval_ms"));
  const es = new EventSource("/admin/stream" + (q.toString() ? "?" + q : ""));
  es.onopen = () => { $("status").textContent = "live"; $("status").className = "status on"; };
  es.onerror = () => { $("status").textContent = "disconnected, retrying…"; $("status").className = "status off"; };
  es.onmessage = (ev) => onSnapshot(JSON.parse(ev.data));
}

window.addEventListener("resize", renderPlots);
connect();
