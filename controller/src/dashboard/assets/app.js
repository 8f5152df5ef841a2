// rackpong live dashboard: renders the snapshots of GET /events (SSE).
// Vanilla JS, no network access beyond this server. The recovery story
// (fault cards, timeline, sparklines, verdict) comes from `state.story`,
// which the server folds from the run's journal lines.
"use strict";

const MAX_FLYING = 12;    // balls animated at once; the rest are counted only
const HOP_MS = 420;       // animation time per hop
const STALE_MS = 3500;    // no snapshot for this long (the server sends one a second): stale
const RECONNECT_MS = 6000; // ... and past this, a fresh EventSource
// The recovery milestones in the order they happen; any other name the
// journal brings is shown too, where it arrives.
const MILESTONES = ["detected", "replacement-created", "scheduled", "running", "ready", "serving", "service-restored"];

const $ = (id) => document.getElementById(id);
const kiosk = new URLSearchParams(location.search).has("kiosk");
let state = null;
let receivedAt = 0;
let seenBall = -1;
let flying = 0;
let stationKey = "";
const stationX = new Map();
const cards = new Map();   // fault id -> its element, kept so it is created once
const catches = new Map(); // node -> its LED report's catch count, to flash green once per rise
let events = null;

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function secs(ms) {
  if (ms == null) return "–";
  return ms < 60000 ? (ms / 1000).toFixed(1) + " s"
    : Math.floor(ms / 60000) + ":" + String(Math.floor(ms / 1000) % 60).padStart(2, "0");
}

function exact(ms) {
  return ms == null ? "–" : (ms / 1000).toFixed(3) + " s";
}

function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return Math.floor(s / 60) + ":" + String(s % 60).padStart(2, "0");
}

function pretty(name) {
  return name === "service-restored" ? "restored" : name === "replacement-created" ? "replaced" : name.replace(/-/g, " ");
}

// ---- connection ---------------------------------------------------------

function setLive(live) {
  document.body.classList.toggle("nodata", !live);
  const r = state && state.replay;
  $("conn").textContent = !live ? "STALE" : r ? "REPLAY ×" + r.speed + (r.done ? " · END" : "") : "LIVE";
}

function connect() {
  if (events) events.close();
  events = new EventSource("/events");
  events.addEventListener("state", (e) => show(e.data));
  events.onerror = () => setLive(false);
}

// A stream that stops without an error (a stalled proxy, a killed server)
// is noticed by the missing once-a-second snapshot; EventSource reconnects
// by itself after an error, this also after a silent stall.
function watchdog() {
  const quiet = performance.now() - receivedAt;
  if (quiet > STALE_MS) setLive(false);
  if (quiet > RECONNECT_MS && (!events || events.readyState !== EventSource.CONNECTING)) {
    receivedAt = performance.now() - STALE_MS;
    connect();
  }
}

// ---- header and stats ---------------------------------------------------

function renderHeader(s) {
  const p = s.progress;
  $("phase").textContent = p ? p.phase : (s.mqtt_connected === false ? "broker down" : "watching");
  $("bar").style.width = p && p.duration_ms ? Math.min(100, 100 * p.elapsed_ms / p.duration_ms) + "%" : "0";
  $("clock").textContent = p ? secs(p.elapsed_ms) + " / " + secs(p.duration_ms) : "no run";
  $("caught").textContent = s.caught;
  $("dropped").textContent = s.dropped;
  const total = s.caught + s.dropped;
  $("rate").textContent = total ? (100 * s.caught / total).toFixed(1) + "%" : "–";
  $("faults").textContent = p ? p.injected : (s.story ? s.story.faults.length : 0);
  $("refused").textContent = p ? p.refused : (s.story ? s.story.refused.length : 0);
  $("last").textContent = p && p.last ? p.last : "";
  const reasons = Object.entries(s.dropped_by_reason).map(([k, v]) => k + " " + v).join(" · ");
  $("meta").textContent = (reasons ? "drops: " + reasons + "   " : "") + (s.malformed ? "malformed " + s.malformed : "");
}

// ---- the recovery story -------------------------------------------------

// Journal time now: the snapshot's, moved on by the time since it arrived.
function storyNow() {
  const st = state && state.story;
  if (!st) return 0;
  if (st.run_outcome) return st.now_ms;
  return st.now_ms + (performance.now() - receivedAt) * (st.speed || 1);
}

function steps(f) {
  const reached = new Map();
  for (const m of f.milestones) if (!reached.has(m.name)) reached.set(m.name, m.after_ms);
  const order = [...reached.keys()].sort((a, b) => reached.get(a) - reached.get(b));
  const pending = MILESTONES.filter((m) => !reached.has(m));
  let html = order.map((m) => `<span class="step done">✓ ${esc(pretty(m))} <b>+${secs(reached.get(m))}</b></span>`).join("");
  if (!f.outcome) {
    html += pending.map((m, i) => `<span class="step${i === 0 ? " now" : ""}">${i === 0 ? "… " : ""}${esc(pretty(m))}</span>`).join("");
  }
  return { html, current: order.length ? pretty(order[order.length - 1]) : "injected" };
}

function signals(f) {
  if (f.kind !== "node-kill" || f.action === "cordon-drain") return "";
  const rp = f.rackpong_detected_ms == null ? "…" : "+" + exact(f.rackpong_detected_ms);
  const k8s = f.not_ready_ms == null ? "…" : "+" + exact(f.not_ready_ms);
  return `<div class="signals"><span class="sig rp">◆ rackpong detected <b>${rp}</b></span>`
    + `<span class="sig k8s">▲ Kubernetes NotReady <b>${k8s}</b></span></div>`;
}

// Zombie windows and overlaps (real cuts of an isolated rack, or k3s).
function windows(f) {
  if (!f.windows || !f.windows.length) return "";
  const one = (w) => w.kind === "overlap"
    ? `<span class="sig overlap">⧉ overlap ${esc(w.worker)} → ${esc(w.other)} <b>${exact(w.duration_ms)}</b></span>`
    : `<span class="sig zombie">☠ zombie ${esc(w.worker)} on ${esc(w.other)} <b>${exact(w.duration_ms)}</b></span>`;
  return `<div class="signals windows">${f.windows.map(one).join("")}</div>`;
}

function result(f, slo) {
  if (!f.outcome) return "↻ RECOVERING";
  if (f.outcome === "recovered") {
    const flags = [];
    if (f.slo_breached) flags.push("✗ SLO BREACH" + (slo ? " (> " + secs(slo) + ")" : ""));
    if (f.over_prediction) flags.push("✗ OVER PREDICTION");
    return flags.length ? flags.join(" · ") : "✓ RECOVERED";
  }
  return f.outcome === "timed-out" ? "✗ NOT RECOVERED · SLO BREACH" : "✗ ABORTED";
}

function cardClass(f, big) {
  const bad = f.outcome && (f.slo_breached || f.over_prediction || f.outcome !== "recovered");
  return "card " + (!f.outcome ? "open" : bad ? "breach" : "ok") + (big ? "" : " small");
}

function cardHtml(f, st, big) {
  const what = `${esc(f.kind)} ${esc(f.action)} → ${esc(f.targets.join(", "))}${f.node && !f.targets.includes(f.node) ? " on " + esc(f.node) : ""}`;
  const timer = f.outcome ? (f.total_ms != null ? exact(f.total_ms) : "–") : secs(storyNow() - f.injected_ms);
  const prec = f.outcome && f.precision_ms != null ? "± " + exact(f.precision_ms) : "";
  const pred = f.predicted_ms != null ? "predicted ≤ " + exact(f.predicted_ms) : "no prediction";
  const s = steps(f);
  const head = `<div class="head"><span class="fid">${esc(f.fault_id)}</span><span class="what">${what}</span><span class="result">${result(f, st.recovery_timeout_ms)}</span></div>`;
  if (!big) {
    return `<div class="head"><span class="fid">${esc(f.fault_id)}</span><span class="timer">${timer}</span><span class="meta">${prec}</span><span class="what">${what}</span><span class="result">${result(f, st.recovery_timeout_ms)}</span></div>`;
  }
  return head + `<div class="body"><span class="timer" data-injected="${f.injected_ms}">${timer}</span>`
    + `<span class="meta">${f.outcome ? "total " + prec : "phase: " + esc(s.current)}<br>${pred}</span></div>`
    + `<div class="steps">${s.html}</div>` + signals(f) + windows(f);
}

function renderCards(st) {
  const box = $("cards");
  const open = st.faults.filter((f) => !f.outcome).reverse();
  const closed = st.faults.filter((f) => f.outcome).reverse();
  // The open faults large; the latest closed one large too while nothing is open.
  const order = open.concat(closed);
  if (!order.length) {
    const idle = box.querySelector(".idle");
    if (idle) idle.textContent = st.refused.length ? `no fault injected yet · ${st.refused.length} refused by the safety rules` : "no fault yet: the rack is settling";
    return;
  }
  const bigCount = Math.max(1, Math.min(2, open.length || 1));
  order.forEach((f, i) => {
    let el = cards.get(f.fault_id);
    if (!el) {
      el = document.createElement("div");
      el.dataset.fault = f.fault_id;
      // When the fault first reached the page (event-to-screen latency).
      el.dataset.seen = String(Date.now());
      cards.set(f.fault_id, el);
    }
    const big = i < bigCount;
    el.className = cardClass(f, big);
    el.dataset.outcome = f.outcome || "open";
    el.innerHTML = cardHtml(f, st, big);
    if (box.children[i] !== el) box.insertBefore(el, box.children[i] || null);
  });
  while (box.children.length > order.length) box.lastChild.remove();
}

function renderVerdict(s) {
  const st = s.story;
  const el = $("verdict");
  if (!st || (!st.finished && !st.run_outcome)) { el.hidden = true; return; }
  el.hidden = false;
  if (!st.finished) {
    el.className = "verdict wait";
    el.innerHTML = "run " + esc(st.run_outcome) + " · rendering the report…";
    return;
  }
  const v = st.verdict;
  if (!v) {
    el.className = "verdict fail";
    el.innerHTML = "✗ the report could not be rendered (see the terminal)";
    return;
  }
  el.className = "verdict " + (v.passed ? "pass" : "fail");
  const why = v.failures.map((f) => esc(f.detail)).join(" · ");
  el.innerHTML = (v.passed ? "✓ PASSED" : "✗ FAILED") + ` <a href="/report.html" target="_blank">report.html</a>`
    + (why ? `<span class="why">${why}</span>` : "");
}

// ---- charts (SVG sized to its box, so nothing is stretched) --------------

function domain(s) {
  const st = s.story;
  const now = storyNow();
  const p = s.progress;
  let end = now;
  if (p && !st.run_outcome && p.duration_ms > p.elapsed_ms) end = now + (p.duration_ms - p.elapsed_ms);
  return Math.max(end, 10000);
}

function box(svg) {
  const w = Math.max(10, svg.clientWidth), h = Math.max(10, svg.clientHeight);
  svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
  return { w, h };
}

function shading(st, x, h, now) {
  return st.faults.map((f) => {
    const a = x(f.injected_ms), b = x(f.ended_ms != null ? f.ended_ms : now);
    return `<rect x="${a}" y="0" width="${Math.max(2, b - a)}" height="${h}" fill="#ffd23f" opacity=".16"/>`;
  }).join("");
}

function renderTimeline(s) {
  const st = s.story, svg = $("timeline");
  const { w, h } = box(svg);
  const end = domain(s), now = storyNow();
  const x = (t) => (w * Math.min(t, end)) / end;
  let out = `<line x1="0" y1="${h - 12}" x2="${w}" y2="${h - 12}" stroke="#3a4858" stroke-width="2"/>`;
  const step = end > 240000 ? 60000 : end > 60000 ? 30000 : 10000;
  for (let t = 0; t <= end; t += step) {
    out += `<text x="${x(t) + 2}" y="${h - 1}" fill="#a9b8c9" font-size="11">${clock(t)}</text>`;
  }
  out += `<line x1="${x(now)}" y1="0" x2="${x(now)}" y2="${h - 12}" stroke="#f4f7fb" stroke-width="2"/>`;
  const lanes = [];
  const barH = Math.max(8, (h - 16) / 2 - 2);
  for (const f of st.faults) {
    const fEnd = f.ended_ms != null ? f.ended_ms : now;
    let lane = lanes.findIndex((e) => e < f.injected_ms);
    if (lane < 0) { lane = Math.min(lanes.length, 1); }
    lanes[lane] = fEnd;
    const y = lane * (barH + 2);
    const bad = f.outcome && (f.slo_breached || f.over_prediction || f.outcome !== "recovered");
    const fill = !f.outcome ? "#ffd23f" : bad ? "#ff4d4d" : "#3ddc84";
    const a = x(f.injected_ms), b = Math.max(a + 4, x(fEnd));
    out += `<rect x="${a}" y="${y}" width="${b - a}" height="${barH}" rx="3" fill="${fill}"${bad ? ' stroke="#fff" stroke-dasharray="4 3"' : ""}/>`;
    if (b - a > 22) out += `<text x="${a + 3}" y="${y + barH - 3}" fill="#000" font-size="${Math.min(14, barH - 2)}" font-weight="700">${esc(f.fault_id)}</text>`;
    if (f.rackpong_detected_ms != null) out += diamond(x(f.injected_ms + f.rackpong_detected_ms), y + barH / 2, "#35c0ff");
    if (f.not_ready_ms != null) out += triangle(x(f.injected_ms + f.not_ready_ms), y + barH / 2, "#ff8a1f");
  }
  for (const r of st.refused) {
    out += `<text x="${x(r.t_ms) - 5}" y="${h - 14}" fill="#ff8a1f" font-size="14" font-weight="700">⊘</text>`;
  }
  svg.innerHTML = out;
}

function diamond(cx, cy, c) {
  return `<polygon points="${cx},${cy - 7} ${cx + 7},${cy} ${cx},${cy + 7} ${cx - 7},${cy}" fill="${c}" stroke="#000" stroke-width="1.5"/>`;
}

function triangle(cx, cy, c) {
  return `<polygon points="${cx},${cy - 7} ${cx + 7},${cy + 6} ${cx - 7},${cy + 6}" fill="${c}" stroke="#000" stroke-width="1.5"/>`;
}

function spark(id, s, pick, yMin, yMax, threshold, fmt) {
  const st = s.story, svg = $(id);
  const { w, h } = box(svg);
  const end = domain(s), now = storyNow();
  const x = (t) => (w * Math.min(t, end)) / end;
  const pts = st.service.filter((p) => pick(p) != null);
  let hi = yMax != null ? yMax : Math.max(1, ...pts.map(pick)) * 1.15;
  let lo = yMin != null ? Math.min(yMin, ...pts.map(pick)) : 0;
  if (hi - lo < 1e-9) hi = lo + 1;
  const y = (v) => h - 2 - ((h - 4) * (v - lo)) / (hi - lo);
  let out = shading(st, x, h, now);
  if (threshold != null) out += `<line x1="0" x2="${w}" y1="${y(threshold)}" y2="${y(threshold)}" stroke="#ff8a1f" stroke-dasharray="6 4" stroke-width="1.5"/>`;
  const line = pts.map((p) => `${x(p.t_ms).toFixed(1)},${y(pick(p)).toFixed(1)}`).join(" ");
  out += `<polyline points="${line}" fill="none" stroke="#35c0ff" stroke-width="2.5"/>`;
  svg.innerHTML = out;
  const last = pts.length ? pick(pts[pts.length - 1]) : null;
  $(id + "-now").textContent = last == null ? "–" : fmt(last);
}

function renderStory(s) {
  const st = s.story;
  if (!st) {
    const idle = $("cards").querySelector(".idle");
    if (idle) idle.textContent = s.progress ? "the run is starting…" : "no run: watching the rack";
    return;
  }
  renderVerdict(s);
  renderCards(st);
  renderTimeline(s);
  const min = st.min_delivery_rate;
  spark("spark-rate", s, (p) => p.delivery_rate, min != null ? Math.max(0, min - 0.1) : 0.8, 1, min, (v) => (100 * v).toFixed(1) + "%");
  spark("spark-lat", s, (p) => p.p95_ms, null, null, null, (v) => v.toFixed(0) + " ms");
}

// Open faults' timers and the "now" line move between snapshots.
function tick() {
  if (!state || !state.story) return;
  const now = storyNow();
  for (const el of document.querySelectorAll(".card.open .timer[data-injected]")) {
    el.textContent = secs(now - Number(el.dataset.injected));
  }
}

// ---- nodes, workers and the ball lane ------------------------------------

// Worker names share a long prefix on k3s (and "worker-" locally): show the rest.
function shortener(names) {
  if (names.length < 2) return (n) => n;
  let p = names[0];
  for (const n of names) while (!n.startsWith(p)) p = p.slice(0, -1);
  const cut = p.lastIndexOf("-") + 1;
  return cut > 0 ? (n) => n.slice(cut) : (n) => n;
}

// The node's two LEDs as its agent drives them; a word too when red is lit
// (the pattern must not be told by colour alone). Not drawn when the node
// is not online: the retained report is the last one it sent, not what its
// LEDs show now (and the tile's title row needs the room for the state).
function ledsOf(n) {
  const l = n.leds;
  if (!l) return "";
  const before = catches.get(n.name);
  catches.set(n.name, l.catches);
  const flash = before != null && l.catches > before && l.green === "on" ? " flash" : "";
  const word = l.pattern === "ok" ? "" : `<span class="ledword">${esc(l.pattern)}</span>`;
  return `<span class="leds${n.status === "online" ? "" : " dim"}" title="LEDs: ${esc(l.pattern)}, ${l.catches} caught">${word}` +
    `<span class="led green ${l.green}${flash}"></span><span class="led red ${l.red}"></span></span>`;
}

function nodeCard(n, short) {
  const t = n.temp_c == null ? "–" : n.temp_c.toFixed(0) + "°C";
  const c = n.cpu_pct == null ? "–" : n.cpu_pct.toFixed(0) + "%";
  const mem = n.mem_total_bytes ? (100 * n.mem_used_bytes / n.mem_total_bytes).toFixed(0) + "%" : "–";
  const badges = n.throttle.map((b) => `<span class="badge ${b.now ? "now" : "past"}">${esc(b.label)}${b.now ? "" : " (boot)"}</span>`).join("");
  const workers = n.workers.map((w) => `<span class="worker ${w.status}" title="${esc(w.name)}">${w.status === "offline" ? "✗ " : ""}${esc(short(w.name))}</span>`).join("");
  const word = n.status === "online" ? "" : n.status === "offline" ? "✗ offline" : n.status === "stale" ? "⚠ stale " + secs(n.health_age_ms) : n.status;
  return `<div class="node ${n.status}">
  <h2><span class="dot ${n.status}"></span><span class="nm">${esc(n.name)}</span>${ledsOf(n)}<span class="state ${n.status}">${esc(word)}</span></h2>
  <div class="metrics"><span>temp <b>${t}</b></span><span>cpu <b>${c}</b></span><span>mem <b>${mem}</b></span></div>
  <div class="badges">${badges}</div>
  <div class="workers">${workers || '<span class="label">no workers</span>'}</div></div>`;
}

function renderNodes(s) {
  const short = shortener(allWorkers(s).map((w) => w.name));
  const el = $("nodes");
  el.classList.toggle("one", s.nodes.length <= 1);
  el.classList.toggle("few", s.nodes.length <= 4);
  el.innerHTML = s.nodes.map((n) => nodeCard(n, short)).join("") || '<div class="label">waiting for the rack…</div>';
  $("unplaced").textContent = s.unplaced_workers.length ? "new workers: " + s.unplaced_workers.map((w) => short(w.name)).join(" ") : "";
}

function allWorkers(s) {
  const out = [];
  for (const n of s.nodes) for (const w of n.workers) out.push(w);
  return out.concat(s.unplaced_workers);
}

function renderStations(s) {
  const ws = allWorkers(s);
  const key = ws.map((w) => w.name + ":" + w.status).join(",");
  if (key === stationKey) return;
  stationKey = key;
  stationX.clear();
  const short = shortener(ws.map((w) => w.name));
  $("stations").innerHTML = ws.map((w, i) => {
    const x = (100 * (i + 0.5)) / ws.length;
    stationX.set(w.name, x);
    return `<div class="station ${w.status}" style="left:${x}%"><div class="pad"></div>${esc(short(w.name))}</div>`;
  }).join("");
}

function fly(ball) {
  const xs = ball.hops.map((w) => stationX.get(w)).filter((x) => x != null);
  if (xs.length === 0 || flying >= MAX_FLYING) return;
  const el = document.createElement("div");
  el.className = "ball" + (ball.caught ? "" : " dropped");
  $("lane").appendChild(el);
  flying += 1;
  const frames = [];
  xs.forEach((x, i) => {
    if (i > 0) frames.push({ left: (xs[i - 1] + x) / 2 + "%", top: "15%" });
    frames.push({ left: x + "%", top: "60%" });
  });
  if (frames.length === 1) frames.push({ left: frames[0].left, top: "20%" }, frames[0]);
  const anim = el.animate(frames, { duration: HOP_MS * Math.max(1, xs.length), easing: "linear" });
  anim.onfinish = () => { el.remove(); flying -= 1; };
}

function renderBalls(s) {
  const fresh = s.balls.filter((b) => b.seq > seenBall);
  if (seenBall < 0) fresh.splice(0, Math.max(0, fresh.length - 3));
  for (const b of fresh) fly(b);
  if (s.balls.length) seenBall = s.balls[s.balls.length - 1].seq;
}

function render() {
  // The story first: a new fault reaches the DOM before anything else is redrawn.
  renderStory(state);
  renderHeader(state);
  renderNodes(state);
  renderStations(state);
  renderBalls(state);
}

function show(json) {
  state = JSON.parse(json);
  receivedAt = performance.now();
  setLive(true);
  render();
}

// ---- start ----------------------------------------------------------------

if (kiosk) document.body.classList.add("kiosk");
// The server embeds the snapshot of the moment the page was served, so the
// first paint already shows the rack; the SSE stream takes over from there.
show(document.getElementById("initial").textContent);
connect();

// Stopping needs the token printed with the URL; the run aborts and rolls back.
$("stop").addEventListener("click", async () => {
  const token = window.prompt("Stop token (printed with the dashboard URL):");
  if (!token) return;
  const r = await fetch("/api/stop", { method: "POST", headers: { Authorization: "Bearer " + token.trim() } });
  const body = await r.json().catch(() => ({}));
  $("last").textContent = r.ok ? "stop requested: rolling back…" : "stop refused: " + (body.error || r.status);
});
// Emergency stop for the whole rack (POST /api/estop, same token).
async function estop(engaged) {
  const token = window.prompt((engaged ? "EMERGENCY STOP" : "Clear the emergency stop") + " — token:");
  if (!token) return;
  const r = await fetch("/api/estop", { method: "POST", body: JSON.stringify({ engaged }),
    headers: { Authorization: "Bearer " + token.trim(), "Content-Type": "application/json" } });
  const body = await r.json().catch(() => ({}));
  const acks = (body.acks || []).map((a) => a.node + (a.accepted ? " ok" : " FAILED")).join(", ");
  $("last").textContent = r.ok
    ? "e-stop " + (engaged ? "engaged" : "cleared") + " (seq " + body.seq + "): " + (acks || "no ack yet")
    : "e-stop refused: " + (body.error || r.status);
}
$("estop").addEventListener("click", () => estop(true));
$("estop-clear").addEventListener("click", () => estop(false));
setInterval(() => { tick(); watchdog(); }, 100);
setInterval(() => { if (state && state.story) { renderTimeline(state); } }, 1000);
window.addEventListener("resize", () => { if (state) render(); });
