#!/usr/bin/env python3
"""CPU cost of the node agents' LED catch flash: one `rackpong demo` of 4
nodes / 8 workers at BALLS_PER_S with no fault, run twice, with
`--led-catch-flash true` and `false`. Every node agent reads the rack-wide
`balls/caught` for its flash, so the flash fans the catch stream out N-fold
through the embedded broker (in the controller process).

Over a WINDOW of steady play (after 15 s of warm-up) it takes utime+stime
from /proc/<pid>/stat of the controller, each node agent and all workers,
and prints the CPU of each as % of one core, with the 1-min load average at
both ends of the window.

Usage: catch_flash_cpu.py RACKPONG_EXE OUT_DIR [WINDOW_S] [BALLS_PER_S] [ORDER]
ORDER is e.g. "on,off" (default) or "off,on,off,on". Standard library only.
"""
import http.client
import json
import os
import re
import subprocess
import sys
import time

PLAN = """name: catch-flash-cpu
seed: 5
duration: {secs}s
steady-state:
  min-ready-workers: 1
  min-delivery-rate: 0.1
  window: 5s
safety:
  max-unavailable: 1
  opt-in-label: rackpong.dev/chaos=true
recovery-timeout: 30s
balls:
  rate-per-s: {rate}
  ttl: 48
  timeout: 3s
faults: []
"""
WARMUP_S = 15
TICK = os.sysconf("SC_CLK_TCK")


def cpu_s(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime
    except OSError:
        return None


def children(root):
    """(pid, role) of every `agent node|worker` process below `root`."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
        except OSError:
            continue
        try:
            ours = b"agent" in argv and os.path.samefile(argv[0], root)
        except OSError:
            ours = False
        if ours:
            role = argv[argv.index(b"agent") + 1].decode()
            out.append((int(d), role))
    return out


def wait_for_faults_phase(port):
    t0 = time.time()
    while time.time() - t0 < 120:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            c.request("GET", "/api/state")
            st = json.loads(c.getresponse().read())
            if st.get("progress") and st["progress"]["phase"] == "faults":
                return True
        except OSError:
            pass
        time.sleep(0.5)
    return False


def one_run(exe, out_dir, flash, window, rate):
    d = os.path.join(out_dir, f"flash-{flash}-{int(time.time())}")
    os.makedirs(d)
    plan = os.path.join(d, "plan.yaml")
    with open(plan, "w") as f:
        f.write(PLAN.format(secs=WARMUP_S + window + 10, rate=rate))
    demo = subprocess.Popen(
        [exe, "demo", "--plan", plan, "--led-catch-flash", flash, "--dashboard", "127.0.0.1:0",
         "--runs-dir", os.path.join(d, "runs")],
        stdout=subprocess.PIPE, stderr=open(os.path.join(d, "demo.err"), "w"), text=True)
    port = None
    for line in demo.stdout:
        m = re.search(r"http://127\.0\.0\.1:(\d+)/", line)
        if m:
            port = int(m.group(1))
            break
    if port is None or not wait_for_faults_phase(port):
        demo.kill()
        raise SystemExit("the demo never reached its fault window")
    time.sleep(WARMUP_S)
    procs = [(demo.pid, "controller")] + children(exe)
    load0 = os.getloadavg()[0]
    t0, c0 = time.time(), {p: cpu_s(p) for p, _ in procs}
    time.sleep(window)
    t1, c1 = time.time(), {p: cpu_s(p) for p, _ in procs}
    load1 = os.getloadavg()[0]
    demo.wait(180)
    pct = {}
    for p, role in procs:
        if c0[p] is None or c1[p] is None:
            continue  # a worker replaced in the window (none should be: no fault)
        pct.setdefault(role, []).append(round(100 * (c1[p] - c0[p]) / (t1 - t0), 2))
    return {
        "flash": flash, "window_s": round(t1 - t0, 1), "balls_per_s": rate,
        "cpu_pct_of_one_core": {
            "controller": pct.get("controller", [None])[0],
            "node_agents": pct.get("node", []),
            "node_agents_sum": round(sum(pct.get("node", [])), 2),
            "workers_sum": round(sum(pct.get("worker", [])), 2),
        },
        "loadavg_1min": [round(load0, 2), round(load1, 2)],
        "exit": demo.returncode,
    }


def main():
    exe, out_dir = os.path.realpath(sys.argv[1]), sys.argv[2]
    window = int(sys.argv[3]) if len(sys.argv) > 3 else 60
    rate = int(sys.argv[4]) if len(sys.argv) > 4 else 200
    order = (sys.argv[5] if len(sys.argv) > 5 else "on,off").split(",")
    os.makedirs(out_dir, exist_ok=True)
    runs = [one_run(exe, out_dir, {"on": "true", "off": "false"}[o], window, rate) for o in order]
    print(json.dumps(runs, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
