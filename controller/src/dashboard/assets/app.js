// rackpong live dashboard: renders the snapshots of GET /events (SSE).
// Vanilla JS, no network access beyond this server.
"use strict";

const MAX_FLYING = 12;   // balls animated at once; the rest are counted only
const HOP_MS = 420;      // animation time per hop

const $ = (id) => document.getElementById(id);
let state = null;
let receivedAt = 0;
let seenBall = -1;
let flying = 0;
let stationKey = "";
const stationX = new Map();

function esc(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function secs(ms) {
  if (ms == null) return "–";
  return ms < 60000 ? (ms / 1000).toFixed(1) + " s"
    : Math.floor(ms / 60000) + ":" + String(Math.floor(ms / 1000) % 60).padStart(2, "0");
}

function bytes(b) {
  return b == null ? "–" : (b / 1073741824).toFixed(1);
}

function setLive(live) {
  document.body.classList.toggle("nodata", !live);
  $("conn").textContent = live ? "LIVE" : "NO DATA";
}

function renderHeader(s) {
  const p = s.progress;
  $("phase").textContent = p ? p.phase : (s.mqtt_connected === false ? "broker down" : "watching");
  $("bar").style.width = p && p.duration_ms ? Math.min(100, 100 * p.elapsed_ms / p.duration_ms) + "%" : "0";
  $("clock").textContent = p ? secs(p.elapsed_ms) + " / " + secs(p.duration_ms) : "no run";
  $("caught").textContent = s.caught;
  $("dropped").textContent = s.dropped;
  const total = s.caught + s.dropped;
  $("rate").textContent = total ? (100 * s.caught / total).toFixed(1) + " %" : "–";
  $("faults").textContent = p ? p.injected : 0;
  $("refused").textContent = p ? p.refused : 0;
  $("last").textContent = p && p.last ? p.last : "";
  const reasons = Object.entries(s.dropped_by_reason).map(([k, v]) => k + " " + v).join(" · ");
  $("meta").textContent = (reasons ? "drops: " + reasons + "   " : "") + (s.malformed ? "malformed " + s.malformed : "");
}

function tickTimer() {
  const p = state && state.progress;
  const open = p && p.open > 0 && p.open_for_ms != null;
  $("timer").parentElement.classList.toggle("open", !!open);
  $("timer").textContent = open ? secs(p.open_for_ms + (performance.now() - receivedAt)) : "–";
  $("timer-label").textContent = open ? "recovering (" + p.open + ")" : "recovering";
}

function unit(v, u) {
  return v == null ? "" : "<small>" + u + "</small>";
}

function nodeCard(n) {
  const t = n.temp_c == null ? "–" : n.temp_c.toFixed(1);
  const c = n.cpu_pct == null ? "–" : n.cpu_pct.toFixed(0);
  const mem = n.mem_total_bytes ? (100 * n.mem_used_bytes / n.mem_total_bytes).toFixed(0) : "–";
  const memOf = n.mem_total_bytes ? "of " + bytes(n.mem_total_bytes) + " GiB" : "";
  const badges = n.throttle.map((b) => `<span class="badge ${b.now ? "now" : "past"}">${esc(b.label)}${b.now ? "" : " (since boot)"}</span>`).join("");
  const workers = n.workers.map((w) => `<span class="worker ${w.status}">${esc(w.name)}</span>`).join("");
  const age = n.health_age_ms == null ? "" : " · " + secs(n.health_age_ms) + " ago";
  return `<div class="node ${n.status}">
  <h2><span class="led ${n.status}"></span>${esc(n.name)}<span class="state ${n.status}">${n.status}</span></h2>
  <div class="metrics"><div><span class="label">temp</span><b>${t}${unit(n.temp_c, "°C")}</b></div>
  <div><span class="label">cpu</span><b>${c}${unit(n.cpu_pct, "%")}</b></div>
  <div><span class="label">mem</span><b>${mem}${unit(n.mem_total_bytes, "%")}</b><span class="sub">${memOf}</span></div></div>
  <div class="badges">${badges}</div>
  <div class="workers">${workers || '<span class="label">no workers seen</span>'}</div>
  <div class="age">health${age}</div></div>`;
}

function renderNodes(s) {
  const html = s.nodes.map(nodeCard).join("");
  $("nodes").innerHTML = html || '<div class="label">waiting for the rack…</div>';
  // Workers are placed on a node once a ball trail names it.
  $("unplaced").innerHTML = s.unplaced_workers.length
    ? '<span class="label">new, node not known yet:</span> '
      + s.unplaced_workers.map((w) => `<span class="worker ${w.status}">${esc(w.name)}</span>`).join(" ")
    : "";
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
  $("stations").innerHTML = ws.map((w, i) => {
    const x = (100 * (i + 0.5)) / ws.length;
    stationX.set(w.name, x);
    return `<div class="station ${w.status}" style="left:${x}%"><div class="pad"></div>${esc(w.name)}</div>`;
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
    if (i > 0) frames.push({ left: (xs[i - 1] + x) / 2 + "%", top: "22px" });
    frames.push({ left: x + "%", top: "130px" });
  });
  if (frames.length === 1) frames.push({ left: frames[0].left, top: "40px" }, frames[0]);
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
  renderHeader(state);
  renderNodes(state);
  renderStations(state);
  renderBalls(state);
  tickTimer();
}

function show(json) {
  state = JSON.parse(json);
  receivedAt = performance.now();
  setLive(true);
  render();
}

// The server embeds the snapshot of the moment the page was served, so the
// first paint already shows the rack; the SSE stream takes over from there.
show(document.getElementById("initial").textContent);
const events = new EventSource("/events");
events.addEventListener("state", (e) => show(e.data));
events.onerror = () => setLive(false);

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
setInterval(() => { if (state) tickTimer(); }, 100);
