#!/usr/bin/env python3
"""Drives headless Chromium over the DevTools protocol against a running
`rackpong demo --dashboard` and measures what a speaker's audience sees:

- every fault of the journal appears on the page; event-to-screen latency is
  the journal's injection time (started_unix_ms + t_ms) to the moment the
  page created the fault's card (its data-seen, Date.now() in the page);
  p95 must be under 250 ms;
- an open fault's timer runs, and when the fault closes it shows the total
  report.json records for it (computed from the journal's milestones);
- killing the page's SSE connection (ss -K on the TCP socket) marks the page
  STALE, and it comes back LIVE by itself;
- at 1280x720 and 1920x1080 nothing scrolls and no tile is cut off;
  screenshots of both are saved.

- with CHECKS=replay, against `rackpong replay RUN_DIR` (RUN_DIR instead of
  RUN_DIR_PARENT): the recorded run plays to its end, every fault card shows
  the total report.json records, the header says REPLAY, node tiles draw
  LEDs and the ball counter ends at rack.jsonl's last totals.

Usage: dashboard_cdp.py URL RUN_DIR_PARENT OUT_DIR  (chromium on PATH)
Prints a JSON summary on stdout; exits 1 on any failed check.
"""
import json
import os
import glob
import shutil
import subprocess
import sys
import tempfile
import time
import base64
import urllib.request

import websocket  # websocket-client

SIZES = [(1280, 720), (1920, 1080)]
LATENCY_P95_MS = 250


class Cdp:
    def __init__(self, ws_url):
        self.ws = websocket.create_connection(ws_url, timeout=30)
        self.next_id = 0
        self.errors = []

    def call(self, method, **params):
        self.next_id += 1
        my = self.next_id
        self.ws.send(json.dumps({"id": my, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            m = msg.get("method")
            if m == "Runtime.exceptionThrown":
                self.errors.append(msg["params"]["exceptionDetails"].get("text", "exception"))
            elif m == "Runtime.consoleAPICalled" and msg["params"].get("type") == "error":
                self.errors.append(str(msg["params"].get("args")))
            if msg.get("id") == my:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})

    def js(self, expr):
        r = self.call("Runtime.evaluate", expression=expr, returnByValue=True)
        if "exceptionDetails" in r:
            raise RuntimeError(f"page error in {expr!r}: {r['exceptionDetails']}")
        return r["result"].get("value")


def start_chromium():
    prof = tempfile.mkdtemp(prefix="rackpong-cdp-")
    proc = subprocess.Popen(
        ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--remote-debugging-port=0", f"--user-data-dir={prof}",
         "about:blank"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(prof, "chromium.err"), "w"))
    port_file = os.path.join(prof, "DevToolsActivePort")
    for _ in range(300):
        if os.path.exists(port_file) and open(port_file).read().count("\n") >= 1:
            break
        time.sleep(0.1)
    port = open(port_file).read().split("\n")[0]
    targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
    page = next(t for t in targets if t["type"] == "page")
    return proc, prof, Cdp(page["webSocketDebuggerUrl"])


def journal_faults(run_dir):
    started, faults = None, {}
    with open(os.path.join(run_dir, "journal.jsonl")) as f:
        for line in f:
            try:
                j = json.loads(line)
            except ValueError:
                continue
            if j["type"] == "run-started":
                started = j["started_unix_ms"]
            elif j["type"] == "fault-injected":
                faults[j["fault_id"]] = j["t_ms"]
    return started, faults


def run_dir_of(parent):
    dirs = [d for d in glob.glob(os.path.join(parent, "*")) if os.path.exists(os.path.join(d, "journal.jsonl"))]
    return max(dirs, key=os.path.getmtime) if dirs else None


def set_size(cdp, w, h):
    cdp.call("Emulation.setDeviceMetricsOverride", width=w, height=h, deviceScaleFactor=1, mobile=False)
    time.sleep(0.6)  # a resize re-renders on the next frame and snapshot


FIT_JS = r"""(() => {
  const W = innerWidth, H = innerHeight, bad = [];
  const de = document.documentElement;
  if (de.scrollHeight > H + 1 || de.scrollWidth > W + 1) bad.push(`page scrolls: ${de.scrollWidth}x${de.scrollHeight}`);
  for (const el of document.querySelectorAll("header, .stat, .node, .card:not(.small), .charts, .lane, #verdict:not([hidden])")) {
    const r = el.getBoundingClientRect();
    if (r.bottom > H + 1 || r.right > W + 1) bad.push(`${el.className || el.id} cut off at ${Math.round(r.right)}x${Math.round(r.bottom)}`);
  }
  for (const el of document.querySelectorAll(".num, .timer, .node h2, .metrics")) {
    if (el.scrollWidth > el.clientWidth + 1) bad.push(`${el.id || el.className} overflows: "${el.textContent.trim()}"`);
    const lh = parseFloat(getComputedStyle(el).lineHeight) || parseFloat(getComputedStyle(el).fontSize) * 1.3;
    if (el.getBoundingClientRect().height > lh * 1.6 + 2 && el.classList.contains("num")) bad.push(`${el.id} wraps: "${el.textContent}"`);
  }
  return { bad, nodes: document.querySelectorAll(".node").length, workers: document.querySelectorAll(".node .worker").length };
})()"""


def main():
    url, runs_parent, out = sys.argv[1], sys.argv[2], sys.argv[3]
    want_faults = int(os.environ.get("WANT_FAULTS", "10"))
    # `story`: faults, latency, timers, stale and screenshots; `fit`: only
    # the projector fit and screenshots (a big rack on a loaded machine).
    mode = os.environ.get("CHECKS", "story")
    tag = os.environ.get("SHOT_TAG", "")
    deadline = time.time() + float(os.environ.get("CDP_TIMEOUT_S", "240"))
    proc, prof, cdp = start_chromium()
    failures, summary = [], {}
    try:
        cdp.call("Page.enable")
        cdp.call("Runtime.enable")
        set_size(cdp, *SIZES[0])
        cdp.call("Page.navigate", url=url)
        wait_loaded(cdp)
        if mode == "replay":
            replay_checks(cdp, runs_parent, out, tag, deadline, summary, failures)
            return report(proc, prof, cdp, summary, failures)
        if mode == "fit":
            want_workers = int(os.environ.get("FIT_WORKERS", "20"))
            for _ in range(1200):
                if cdp.js("document.querySelectorAll('.node .worker:not(.offline)').length") >= want_workers:
                    break
                time.sleep(0.1)
            fit_checks(cdp, url, out, tag, summary, failures)
            return report(proc, prof, cdp, summary, failures)
        # 1. Watch faults appear; sample running timers while they are open.
        shot_open = False
        running_seen = {}
        final = None
        port = url.rsplit(":", 1)[1].split("/")[0]
        stale_done = False
        while time.time() < deadline:
            st = cdp.js("""(() => { const out = {};
              for (const el of document.querySelectorAll('.card[data-fault]')) {
                const t = el.querySelector('.timer');
                out[el.dataset.fault] = { seen: Number(el.dataset.seen), outcome: el.dataset.outcome, timer: t ? t.textContent : null };
              }
              return { cards: out, live: document.getElementById('conn').textContent,
                       finished: !!(state && state.story && state.story.finished) }; })()""")
            if st is None:
                time.sleep(0.2)
                continue
            for fid, c in st["cards"].items():
                if c["outcome"] == "open" and c["timer"]:
                    running_seen.setdefault(fid, []).append(c["timer"])
                    if not shot_open:
                        shot_open = True
                        shot = cdp.call("Page.captureScreenshot", format="png")
                        with open(os.path.join(out, f"dashboard-1280x720-open-fault{tag}.png"), "wb") as f:
                            f.write(base64.b64decode(shot["data"]))
            # 2. Once some faults are in, kill the SSE stream once (mid-run).
            if mode == "story" and not stale_done and len(st["cards"]) >= 2:
                stale_done = True
                summary["stale"] = kill_stream_and_wait(cdp, port, failures)
            if st["finished"]:
                final = st
                break
            time.sleep(0.1)
        if final is None:
            failures.append("the run did not finish on the page in time")
            final = st or {"cards": {}}
        if mode == "story":
            story_checks(final, running_seen, runs_parent, want_faults, summary, failures)
        fit_checks(cdp, url, out, tag, summary, failures)
    except Exception:
        report(proc, prof, cdp, summary, failures)
        raise
    return report(proc, prof, cdp, summary, failures)


def report(proc, prof, cdp, summary, failures):
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    shutil.rmtree(prof, ignore_errors=True)
    failures += [f"JavaScript error: {e}" for e in cdp.errors]
    # Timing figures depend on the machine's load: recorded with them.
    summary["loadavg_at_end"] = [round(x, 2) for x in os.getloadavg()]
    summary["failures"] = failures
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


def story_checks(final, running_seen, runs_parent, want_faults, summary, failures):
    # 3. Latency: journal injection -> card created.
    run_dir = run_dir_of(runs_parent)
    started, injected = journal_faults(run_dir)
    lat = []
    for fid, t_ms in injected.items():
        c = final["cards"].get(fid)
        if not c:
            failures.append(f"{fid} is in the journal but never reached the page")
            continue
        lat.append(c["seen"] - (started + t_ms))
    lat.sort()
    if lat:
        p95 = lat[min(len(lat) - 1, int(round(0.95 * (len(lat) - 1))))]
        summary["latency_ms"] = {"n": len(lat), "min": lat[0], "p50": lat[len(lat) // 2], "p95": p95, "max": lat[-1]}
        if p95 >= LATENCY_P95_MS:
            failures.append(f"event-to-screen p95 {p95} ms >= {LATENCY_P95_MS} ms: {lat}")
    if len(injected) < want_faults:
        failures.append(f"only {len(injected)} faults injected, wanted {want_faults}")
    # 4. Timers ran, and stopped at the report's totals.
    if not os.path.exists(os.path.join(run_dir, "report.json")):
        failures.append("no report.json: the run did not finish in time")
        return
    report = json.load(open(os.path.join(run_dir, "report.json")))
    checked = 0
    for f in report["faults"]:
        fid, total = f["fault_id"], f.get("total_ms")
        shown = final["cards"].get(fid, {}).get("timer")
        if total is not None:
            want = f"{total / 1000:.3f} s"
            checked += 1
            if shown != want:
                failures.append(f"{fid}: the page shows {shown!r}, report.json total {want!r}")
    kills = [f["fault_id"] for f in report["faults"] if f["kind"] == "pod-kill"]
    ran = [fid for fid in kills if len(set(running_seen.get(fid, []))) >= 2]
    summary["timers"] = {"totals_checked": checked, "pod_kills": len(kills), "seen_running": len(ran)}
    if kills and not ran:
        failures.append(f"no pod kill's timer was seen running: {running_seen}")


def replay_checks(cdp, run_dir, out, tag, deadline, summary, failures):
    """`rackpong replay RUN_DIR`: the recorded run plays to its end on the
    page, every fault card closes at the total report.json records, the
    header says REPLAY, the node tiles draw LEDs and the ball counter ends
    at the record's last totals."""
    report = json.load(open(os.path.join(run_dir, "report.json")))
    want_cards = {f["fault_id"]: (None if f.get("total_ms") is None else f"{f['total_ms'] / 1000:.3f} s")
                  for f in report["faults"]}
    totals = None
    with open(os.path.join(run_dir, "rack.jsonl")) as f:
        for line in f:
            j = json.loads(line)
            if j["type"] == "totals":
                totals = j
    want_caught = None if totals is None else str(totals["caught"])

    def settled(st):
        # The replay's end and its last snapshot rendered: every card at its
        # recorded total, the counter at the record's last totals.
        if not (st and st["done"]) or st["caught"] != want_caught:
            return False
        return all(fid in st["cards"] and (want is None or st["cards"][fid]["timer"] == want)
                   for fid, want in want_cards.items())

    t0 = time.time()
    st = None
    while time.time() < deadline:
        st = cdp.js("""(() => { const out = {};
          for (const el of document.querySelectorAll('.card[data-fault]')) {
            const t = el.querySelector('.timer');
            out[el.dataset.fault] = { outcome: el.dataset.outcome, timer: t ? t.textContent : null };
          }
          return { cards: out, conn: document.getElementById('conn').textContent,
                   caught: document.getElementById('caught').textContent,
                   leds: document.querySelectorAll('.node .led').length,
                   done: !!(state && state.replay && state.replay.done) }; })()""")
        if settled(st):
            break
        time.sleep(0.2)  # poll interval of the condition above
    if not st or not st["done"]:
        failures.append("the replay did not reach its end on the page in time")
        st = st or {"cards": {}, "conn": "", "caught": "", "leds": 0}
    summary["replay"] = {"played_s": round(time.time() - t0, 1), "conn": st["conn"], "cards": len(st["cards"]), "leds": st["leds"]}
    if not st["conn"].startswith("REPLAY"):
        failures.append(f"the header says {st['conn']!r}, not REPLAY")
    for fid, want in want_cards.items():
        shown = st["cards"].get(fid, {}).get("timer")
        if fid not in st["cards"]:
            failures.append(f"replay: {fid} never reached the page")
        elif want is not None and shown != want:
            failures.append(f"replay: {fid} shows {shown!r}, report.json total {want}")
    summary["replay"]["faults_checked"] = len(report["faults"])
    if want_caught is None or st["caught"] != want_caught:
        failures.append(f"replay: caught shows {st['caught']!r}, rack.jsonl's last totals {want_caught}")
    if st["leds"] < 2:
        failures.append("replay: no node tile draws LEDs")
    shot = cdp.call("Page.captureScreenshot", format="png")
    with open(os.path.join(out, f"dashboard-1280x720-replay{tag}.png"), "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def fit_checks(cdp, url, out, tag, summary, failures):
    # 5. Projector fit and screenshots.
    summary["fit"] = {}
    for w, h in SIZES:
        set_size(cdp, w, h)
        fit = cdp.js(FIT_JS)
        summary["fit"][f"{w}x{h}"] = fit
        for b in fit["bad"]:
            failures.append(f"{w}x{h}: {b}")
        shot = cdp.call("Page.captureScreenshot", format="png")
        with open(os.path.join(out, f"dashboard-{w}x{h}{tag}.png"), "wb") as f:
            f.write(base64.b64decode(shot["data"]))
    set_size(cdp, 1280, 720)
    cdp.call("Page.navigate", url=url + "?kiosk")
    wait_loaded(cdp)
    hidden = cdp.js("getComputedStyle(document.getElementById('stop')).display === 'none'")
    if not hidden:
        failures.append("?kiosk does not hide the stop control")
    estop = cdp.js("(() => { const e = document.getElementById('estop'); if (!e) return null; const r = e.getBoundingClientRect(); return getComputedStyle(e).display !== 'none' && r.width > 0 && r.right <= innerWidth && r.bottom <= innerHeight; })()")
    if estop is False:
        failures.append("?kiosk hides (or cuts off) the E-STOP")
    shot = cdp.call("Page.captureScreenshot", format="png")
    with open(os.path.join(out, f"dashboard-1280x720-kiosk{tag}.png"), "wb") as f:
        f.write(base64.b64decode(shot["data"]))


def wait_loaded(cdp):
    for _ in range(200):
        if cdp.js("document.readyState === 'complete' && !!document.getElementById('conn') && typeof state === 'object' && state !== null"):
            return
        time.sleep(0.1)
    raise RuntimeError("the page never loaded")


def kill_stream_and_wait(cdp, port, failures):
    """Kills the page's TCP connections to the dashboard, then waits for STALE and LIVE again."""
    t0 = time.time()
    r = subprocess.run(["ss", "-K", "dst", "127.0.0.1", "dport", "=", port],
                       capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"ss -K failed: {r.stderr.strip()}")
        return None
    stale_at = live_at = None
    while time.time() - t0 < 20:
        live = cdp.js("document.getElementById('conn').textContent")
        if stale_at is None and live == "STALE":
            stale_at = time.time() - t0
        if stale_at is not None and live == "LIVE":
            live_at = time.time() - t0
            break
        time.sleep(0.05)
    if stale_at is None:
        failures.append("a killed SSE stream did not mark the page STALE")
    elif live_at is None:
        failures.append("the page did not come back LIVE by itself within 20 s")
    return {"stale_after_s": stale_at, "live_again_after_s": live_at}


if __name__ == "__main__":
    sys.exit(main())
