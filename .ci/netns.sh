#!/usr/bin/env bash
# The isolated local rack (issue 14, docs/local-rack.md "Isolation"): a short
# demo with --isolation netns (plans/netns.yaml: a net-drop, a partition),
# then checks what report.json says, all from observed traffic and events:
#   - the detection settings name the isolation (netns);
#   - the net-drop's node went NotReady, a replacement served (a ball was
#     caught by it), and the old worker overlapped it (non-empty window);
#   - nothing of the run is left: `ip netns list` and `ip link` show the
#     same names as before the run.
# Needs root (CI runs as root). Prints the measured figures.
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=target/netns-check
failed=0
fail() { echo "netns: FAIL: $*" >&2; failed=1; }

if [ "$(id -u)" != 0 ]; then
  echo "netns: SKIP: not root (network namespaces need CAP_NET_ADMIN)"; exit 0
fi
command -v jq >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq jq >/dev/null; }
cargo build -q -p rackpong-controller --bin rackpong
RACKPONG=$PWD/target/debug/rackpong

names() { { ip netns list | awk '{print $1}'; ip -o link show | awk -F': ' '{print $2}' | cut -d@ -f1; } | sort; }
rm -rf "$WORK" && mkdir -p "$WORK"
names > "$WORK/before.txt"
rc=0
timeout 240 "$RACKPONG" --log warn demo --isolation netns --nodes 4 --workers 4 \
  --plan plans/netns.yaml --runs-dir "$WORK/runs" > "$WORK/demo.out" 2>&1 || rc=$?
tail -n 25 "$WORK/demo.out"
echo "netns: demo exit code $rc"
names > "$WORK/after.txt"
if ! diff -u "$WORK/before.txt" "$WORK/after.txt"; then fail "namespaces or links left behind (above)"; fi

report=$(ls -d "$WORK"/runs/*/ 2>/dev/null | head -1)report.json
if [ ! -f "$report" ]; then
  fail "no report.json under $WORK/runs"; exit 1
fi
[ "$(jq -r '.run.detection.extra.isolation' "$report")" = netns ] || fail "detection does not name the isolation netns"
drop=$(jq -c '[.faults[] | select(.action == "net-drop")][0]' "$report")
[ "$drop" != null ] || { fail "no net-drop fault in the report"; exit 1; }
id=$(jq -r '.fault_id' <<<"$drop")
not_ready=$(jq -r '.node_signals.not_ready_ms // empty' <<<"$drop")
serving=$(jq -r '[.milestones[] | select(.milestone == "serving")][0].t_ms // empty' <<<"$drop")
injected=$(jq -r '.injected_ms' <<<"$drop")
overlap=$(jq -c --arg id "$id" '[.overlaps[] | select(.fault_id == $id and .duration_ms > 0)]' "$report")
[ -n "$not_ready" ] || fail "net-drop $id: no NotReady of its node"
[ -n "$serving" ] || fail "net-drop $id: no replacement serving"
[ "$(jq length <<<"$overlap")" -gt 0 ] || fail "net-drop $id: no overlap window"
echo "netns: net-drop $id on $(jq -r .node <<<"$drop"): NotReady after ${not_ready:-?} ms, replacement serving after $(( ${serving:-0} - injected )) ms"
jq -r '.overlaps[] | "netns: overlap \(.worker) -> \(.other) (\(.fault_id)): \(.duration_ms) ms"' "$report"
jq -r '.zombies[] | "netns: zombie \(.worker) on \(.other) (\(.fault_id)): \(.duration_ms) ms"' "$report"
jq -r '.faults[] | "netns: \(.fault) (\(.action)): \(.outcome), total \(.total_ms) ms"' "$report"
exit "$failed"
