#!/usr/bin/env python3
"""Dashboard load test: N SSE clients on `rackpong demo --dashboard` for the
whole fault window at a high ball rate. Each client parses every `state`
event; it is "behind" by now - (story.started_unix_ms + story.now_ms), the
age of the journal time the snapshot shows when the client has it, and its
gap is the longest time between two events. The controller's RSS is read
from /proc every second, the load average every 30 s.

Usage: dashboard_load.py RACKPONG_EXE OUT_DIR [CLIENTS] [SECONDS] [BALLS_PER_S]
Prints a JSON summary; exits 1 when a client fell behind by more than 1 s,
went 2 s without an event, RSS grew by more than 25 % after warm-up, or
(in a window of at least 240 s) RSS was not flat: the least-squares slope
of its second half above FLAT_MIB_PER_MIN. The first minute (allocator
warm-up, the broker's bounded logs filling) is never judged by the slope.
Standard library only.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import threading
import time

# A second half growing faster than this is "not flat": a plateau's noise
# (an allocator step of ~1 MiB) stays well below it. The release build grew
# 1.7-2.4 MiB/min here on 2026-12-02, the debug build 9-13 (docs/PERFORMANCE.md,
# "Where the controller's RSS goes").
FLAT_MIB_PER_MIN = 1.0
# The slope is judged only over a second half at least this long: over a
# shorter one a single step of the allocator reads as a slope.
FLAT_MIN_HALF_S = 120

PLAN = """name: dashboard-load
seed: 3
duration: {secs}s
steady-state:
  min-ready-workers: 1
  min-delivery-rate: 0.1
  window: 5s
safety:
  max-unavailable: 3
  opt-in-label: rackpong.dev/chaos=true
recovery-timeout: 30s
balls:
  rate-per-s: {rate}
  ttl: 48
  timeout: 3s
faults:
  - name: kill-one-worker
    at: 5s
    every: 10s
    times: {kills}
    pod-kill:
      count: 1
      mode: graceful
"""


def client(host, port, stop, out):
    behind, gaps, events, last = [], [], 0, None
    try:
        conn = http.client.HTTPConnection(host, port, timeout=10)
        conn.request("GET", "/events", headers={"Accept": "text/event-stream"})
        resp = conn.getresponse()
        data = []
        while not stop.is_set():
            line = resp.fp.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith("data:"):
                data.append(line[5:].lstrip())
            elif line == "" and data:
                now = time.time() * 1000
                snap = json.loads("\n".join(data))
                data = []
                events += 1
                if last is not None:
                    gaps.append(now - last)
                last = now
                st = snap.get("story")
                if st and st.get("started_unix_ms") and not st.get("run_outcome"):
                    behind.append(now - (st["started_unix_ms"] + st["now_ms"]))
        conn.close()
    except Exception as e:  # a dead client is a failure, reported below
        out["error"] = repr(e)
    out.update(events=events, behind=behind, gaps=gaps)


def rss_kib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            m = re.search(r"VmRSS:\s+(\d+)", f.read())
            return int(m.group(1)) if m else None
    except OSError:
        return None


def mib_per_min(points):
    """Least-squares slope of (seconds, KiB) points, in MiB per minute."""
    if len(points) < 4 or points[-1][0] <= points[0][0]:
        return None
    n = len(points)
    mt = sum(t for t, _ in points) / n
    mv = sum(v for _, v in points) / n
    var = sum((t - mt) ** 2 for t, _ in points)
    cov = sum((t - mt) * (v - mv) for t, v in points)
    return round(cov / var * 60 / 1024, 2)


def main():
    exe, out_dir = sys.argv[1], sys.argv[2]
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 20
    secs = int(sys.argv[4]) if len(sys.argv) > 4 else 60
    rate = int(sys.argv[5]) if len(sys.argv) > 5 else 200
    os.makedirs(out_dir, exist_ok=True)
    plan = os.path.join(out_dir, "plan-load.yaml")
    with open(plan, "w") as f:
        f.write(PLAN.format(secs=secs, rate=rate, kills=max(1, secs // 10 - 1)))
    log = open(os.path.join(out_dir, "load-demo.out"), "w")
    demo = subprocess.Popen([exe, "demo", "--plan", plan, "--dashboard", "127.0.0.1:0",
                             "--runs-dir", os.path.join(out_dir, "runs-load")],
                            stdout=subprocess.PIPE, stderr=open(os.path.join(out_dir, "load-demo.err"), "w"), text=True)
    url = None
    for line in demo.stdout:
        log.write(line)
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if m:
            url = int(m.group(1))
            break
    if url is None:
        print("the demo printed no dashboard URL", file=sys.stderr)
        return 1
    threading.Thread(target=lambda: [log.write(l) for l in demo.stdout], daemon=True).start()
    # Wait for the fault window (the story starts with the run).
    t0 = time.time()
    while time.time() - t0 < 120:
        try:
            c = http.client.HTTPConnection("127.0.0.1", url, timeout=5)
            c.request("GET", "/api/state")
            st = json.loads(c.getresponse().read())
            if st.get("progress") and st["progress"]["phase"] == "faults":
                break
        except OSError:
            pass
        time.sleep(0.5)
    stop = threading.Event()
    results = [dict() for _ in range(n)]
    threads = [threading.Thread(target=client, args=("127.0.0.1", url, stop, r), daemon=True) for r in results]
    for t in threads:
        t.start()
    rss, loads = [], []
    start = time.time()
    while time.time() - start < secs - 2 and demo.poll() is None:
        t = round(time.time() - start, 1)
        rss.append((t, rss_kib(demo.pid)))
        if len(rss) % 30 == 1:
            loads.append((t, round(os.getloadavg()[0], 2)))
        time.sleep(1)
    stop.set()
    for t in threads:
        t.join(15)
    try:
        demo.wait(300)
    except subprocess.TimeoutExpired:  # an overloaded machine: the figures still count
        demo.send_signal(2)
        demo.wait(60)
    load = [round(x, 2) for x in os.getloadavg()]
    failures = []
    worst_behind = max((max(r["behind"]) for r in results if r.get("behind")), default=None)
    worst_gap = max((max(r["gaps"]) for r in results if r.get("gaps")), default=None)
    for i, r in enumerate(results):
        if r.get("error"):
            failures.append(f"client {i}: {r['error']}")
        if not r.get("events"):
            failures.append(f"client {i} got no event")
    if worst_behind is not None and worst_behind > 1000:
        failures.append(f"a client fell behind by {worst_behind:.0f} ms")
    if worst_gap is not None and worst_gap > 2000:
        failures.append(f"a client went {worst_gap:.0f} ms without an event")
    vals = [v for _, v in rss if v]
    warm = vals[len(vals) // 4:] if len(vals) >= 8 else vals
    growth = None
    if len(warm) >= 4:
        first, last = sum(warm[:3]) / 3, sum(warm[-3:]) / 3
        growth = (last - first) / first
        if growth > 0.25:
            failures.append(f"controller RSS grew {100 * growth:.0f} % after warm-up")
    behind_all = sorted(b for r in results for b in r.get("behind", []))
    # Growth that levels off has a flat second half: its least-squares slope.
    half = [(t, v) for t, v in rss if v][len(vals) // 2:]
    slope = mib_per_min(half)
    judged = slope is not None and half[-1][0] - half[0][0] >= FLAT_MIN_HALF_S
    if judged and slope > FLAT_MIB_PER_MIN:
        failures.append(f"controller RSS not flat: {slope} MiB/min over the second half "
                        f"(bound {FLAT_MIB_PER_MIN})")
    summary = {
        "clients": n, "seconds": secs, "balls_per_s": rate,
        "events_per_client": [r.get("events", 0) for r in results],
        "behind_ms": {"p50": behind_all[len(behind_all) // 2] if behind_all else None,
                      "p99": behind_all[int(0.99 * (len(behind_all) - 1))] if behind_all else None,
                      "max": worst_behind},
        "max_gap_ms": worst_gap,
        "rss_kib": {"first": vals[0] if vals else None, "after_warmup": warm[:3], "end": vals[-3:],
                    "growth_after_warmup": growth,
                    "second_half_mib_per_min": slope,
                    "second_half_judged": judged,
                    "every_10s_mib": [round(v / 1024, 1) for t, v in rss if v][::10],
                    "every_30s_mib": [round(v / 1024, 1) for t, v in rss if v][::30]},
        "loadavg_1min_every_30s": [l for _, l in loads],
        "loadavg_at_end": load,
        "failures": failures,
    }
    print(json.dumps(summary, indent=1))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
