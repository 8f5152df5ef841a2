#!/usr/bin/env bash
# Opens the live dashboard in headless chromium while a short demo runs, takes
# three screenshots during the fault window and fails on JavaScript console
# errors, a missing screenshot or a failed demo. (No --virtual-time-budget:
# virtual time stalls on the never-ending SSE request.)
# Usage: .ci/dashboard-check.sh [OUT_DIR]   (needs: chromium, a built target/debug/rackpong)
set -euo pipefail
out=${1:-$(mktemp -d)}
mkdir -p "$out"
exe=${RACKPONG_EXE:-target/debug/rackpong}
"$exe" demo --duration 45s --dashboard 127.0.0.1:0 --runs-dir "$out/runs" >"$out/demo.out" 2>"$out/demo.err" &
demo=$!
trap 'kill "$demo" 2>/dev/null || true' EXIT
url=""
for _ in $(seq 1 120); do
  url=$(grep -o 'http://127.0.0.1:[0-9]*/' "$out/demo.out" 2>/dev/null || true)
  [ -n "$url" ] && break
  sleep 0.5
done
[ -n "$url" ] || { echo "the demo never printed its dashboard URL" >&2; exit 1; }
# Wait until the fault window runs (progress shows up in the state API).
for _ in $(seq 1 120); do
  curl -sf "${url}api/state" | grep -q '"phase":"faults"' && break
  sleep 0.5
done
chrome() {
  chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$(mktemp -d)" --window-size=1600,900 --timeout=5000 \
    --enable-logging=stderr "$@" "$url"
}
fail=0
for shot in 1 2 3; do
  # The page must have rendered a live snapshot (headless may capture before
  # the first SSE event on a loaded machine: up to three tries).
  live=0
  for _ in 1 2 3; do
    if chrome --dump-dom 2>"$out/chromium$shot.dom.err" | grep -q 'class="conn">LIVE<'; then live=1; break; fi
  done
  [ "$live" = 1 ] || { echo "shot $shot: the page never showed LIVE" >&2; fail=1; }
  chrome --screenshot="$out/dash$shot.png" 2>"$out/chromium$shot.err" || fail=1
  if grep -E 'Uncaught|ERROR:CONSOLE' "$out/chromium$shot.err" "$out/chromium$shot.dom.err"; then fail=1; fi
  [ -s "$out/dash$shot.png" ] || fail=1
  sleep 5
done
wait "$demo" || { echo "the demo failed" >&2; fail=1; }
trap - EXIT
echo "screenshots: $out/dash[123].png"
exit $fail
