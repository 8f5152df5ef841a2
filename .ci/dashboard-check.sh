#!/usr/bin/env bash
# The live dashboard in headless Chromium, driven over the DevTools protocol
# (.ci/dashboard_cdp.py, websocket-client from PyPI in target/ci-venv-dash):
# first during a demo with eleven pod kills and a node kill (4 nodes, 8
# workers), then that run replayed (`rackpong replay`), then during a short demo on a projector-sized rack (8 nodes, 24
# workers) for the fit. Fails when:
#   - a fault of the journal does not reach the page, or the event-to-screen
#     latency (journal injection -> fault card in the DOM) has p95 >= 250 ms;
#   - no pod kill's timer is seen running, or a closed fault's timer does not
#     show the total report.json records;
#   - a killed SSE stream (ss -K on its TCP socket) does not mark the page
#     STALE, or the page does not come back LIVE by itself;
#   - at 1280x720 or 1920x1080 the page scrolls, a tile is cut off or a
#     figure overflows; ?kiosk does not hide the controls;
#   - the first demo's run, replayed with `rackpong replay --speed 4`, does
#     not reach its end on the page with every fault card at report.json's
#     total, REPLAY in the header, LEDs on the node tiles and the ball
#     counter at rack.jsonl's last totals;
#   - JavaScript logs an error, or the first demo fails.
# Screenshots (both sizes, kiosk, an open fault, the big rack) and the
# measured figures (summary*.json) go to OUT_DIR.
# Usage: .ci/dashboard-check.sh [OUT_DIR]
#   (needs: chromium, python3-venv, iproute2's ss, root for ss -K, a built target/debug/rackpong)
set -euo pipefail
out=${1:-target/dashboard-screenshots}
mkdir -p "$out"
out=$(cd "$out" && pwd)
exe=${RACKPONG_EXE:-target/debug/rackpong}
venv=target/ci-venv-dash
if ! { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c 'import websocket' 2>/dev/null; }; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q 'websocket-client==1.8.0'
fi

cat >"$out/plan.yaml" <<'PLAN'
# dashboard-check: eleven pod kills and a node kill.
name: dashboard-check
seed: 7
duration: 62s
steady-state:
  min-ready-workers: 6
  min-delivery-rate: 0.9
  window: 5s
safety:
  max-unavailable: 3
  opt-in-label: rackpong.dev/chaos=true
recovery-timeout: 30s
balls:
  rate-per-s: 100
  ttl: 48
  timeout: 3s
faults:
  - name: kill-one-worker
    at: 4s
    every: 5s
    times: 11
    pod-kill:
      count: 1
      mode: graceful
  - name: stop-a-node
    at: 31s
    node-kill:
      action: stop-k3s
      down-for: 8s
PLAN

cat >"$out/plan-fit.yaml" <<'PLAN'
# dashboard-check, projector fit: a short run on 8 nodes and 24 workers.
name: dashboard-fit
seed: 7
duration: 20s
steady-state:
  min-ready-workers: 1
  min-delivery-rate: 0.1
  window: 5s
safety:
  max-unavailable: 6
  opt-in-label: rackpong.dev/chaos=true
recovery-timeout: 30s
balls:
  rate-per-s: 50
  ttl: 48
  timeout: 3s
faults:
  - name: kill-one-worker
    at: 4s
    every: 6s
    times: 3
    pod-kill:
      count: 1
      mode: graceful
PLAN

fail=0
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null || true' EXIT
# check PLAN NODES WORKERS CHECKS TAG: one demo, its page checked by dashboard_cdp.py.
check() {
  local runs="$out/runs$5" url=""
  rm -rf "$runs"
  "$exe" demo --plan "$1" --nodes "$2" --workers "$3" \
    --dashboard 127.0.0.1:0 --dashboard-linger 60s --runs-dir "$runs" \
    >"$out/demo$5.out" 2>"$out/demo$5.err" &
  pid=$!
  for _ in $(seq 1 120); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$out/demo$5.out" 2>/dev/null | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.5
  done
  if [ -z "$url" ]; then
    echo "the demo never printed its dashboard URL" >&2
    cat "$out/demo$5.err" >&2
    fail=1
    return
  fi
  CHECKS=$4 SHOT_TAG=$5 WANT_FAULTS=${WANT_FAULTS:-10} \
    "$venv/bin/python" .ci/dashboard_cdp.py "$url" "$runs" "$out" >"$out/summary$5.json" || fail=1
  cat "$out/summary$5.json"
  # The page lingers after the run: end it (Ctrl-C), then the demo's verdict.
  kill -INT "$pid" 2>/dev/null || true
  if [ "$4" = story ]; then
    wait "$pid" || { echo "the demo failed (its verdict is in $out/demo$5.out)" >&2; fail=1; }
  else
    # The big rack on a loaded 2-core machine may miss its steady state: only the page counts.
    wait "$pid" || true
  fi
  pid=""
  cat "$out/demo$5.out"
}

# replay_check: the first demo's recorded run on `rackpong replay` at 4x.
replay_check() {
  local run url=""
  run=$(ls -td "$out/runs"/*/ 2>/dev/null | head -1)
  run=${run%/}
  if [ -z "$run" ]; then
    echo "no recorded run to replay" >&2
    fail=1
    return
  fi
  "$exe" replay "$run" --speed 4 --listen 127.0.0.1:0 >"$out/replay.out" 2>"$out/replay.err" &
  pid=$!
  for _ in $(seq 1 60); do
    url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$out/replay.out" 2>/dev/null | head -1 || true)
    [ -n "$url" ] && break
    sleep 0.5
  done
  if [ -z "$url" ]; then
    echo "rackpong replay never printed its URL" >&2
    cat "$out/replay.err" >&2
    fail=1
    return
  fi
  CHECKS=replay "$venv/bin/python" .ci/dashboard_cdp.py "$url" "$run" "$out" >"$out/summary-replay.json" || fail=1
  cat "$out/summary-replay.json"
  kill -INT "$pid" 2>/dev/null || true
  wait "$pid" || { echo "rackpong replay did not end cleanly on Ctrl-C" >&2; fail=1; }
  pid=""
}

check "$out/plan.yaml" "${NODES:-4}" "${WORKERS:-8}" story ""
replay_check
check "$out/plan-fit.yaml" 8 24 fit -8x24
for shot in 1280x720 1920x1080 1280x720-kiosk 1280x720-open-fault 1280x720-replay 1280x720-8x24 1920x1080-8x24; do
  [ -s "$out/dashboard-$shot.png" ] || { echo "no screenshot $shot" >&2; fail=1; }
done
echo "screenshots: $out/dashboard-*.png"
exit $fail
