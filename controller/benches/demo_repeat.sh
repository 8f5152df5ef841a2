#!/usr/bin/env bash
# Runs the default demo N times and tabulates, per run and fault, the total,
# its precision, the prediction and the node signals from each report.json:
# the issue-10 figures (every recovered fault within its prediction, total
# precision <= 10 ms). Prints the load average before and after.
# Usage: controller/benches/demo_repeat.sh BIN [N] [demo flags...]
#   e.g. controller/benches/demo_repeat.sh target/release/rackpong 10
set -euo pipefail
BIN=${1:?rackpong binary}; N=${2:-10}; shift $(( $# >= 2 ? 2 : 1 ))
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)  ($(nproc) cores)"
printf '%-4s %-4s %-10s %-12s %9s %6s %10s %6s  %s\n' run id kind action total_ms ±ms predicted within "signals stale/will/notready ms"
ok_runs=0
for i in $(seq "$N"); do
  "$BIN" demo --runs-dir "$dir/runs$i" "$@" > "$dir/out$i" 2>&1 || { echo "run $i: demo failed:"; grep -Ev "^ *[0-9]+: |^ +at " "$dir/out$i" | tail -8; continue; }
  report=$(ls "$dir/runs$i"/*/report.json)
  jq -r --arg run "$i" '.faults[] | [$run, .fault_id, .kind, .action, (.total_ms // "-"), .precision_ms, (.predicted_ms // "-"), (.within_prediction | tostring),
      (if .node_signals then "\(.node_signals.health_stale_ms // "-")/\(.node_signals.last_will_ms // "-")/\(.node_signals.not_ready_ms // "-")" else "" end)] | @tsv' "$report" |
    while IFS=$'\t' read -r run id kind action total prec pred within sig; do
      printf '%-4s %-4s %-10s %-12s %9s %6s %10s %6s  %s\n' "$run" "$id" "$kind" "$action" "$total" "$prec" "$pred" "$within" "$sig"
    done
  if jq -e '[.faults[] | select(.outcome == "recovered")] as $r | ($r | length) == (.faults | length)
        and all($r[]; .within_prediction == true and .precision_ms <= 10)' "$report" > /dev/null; then
    ok_runs=$((ok_runs + 1))
  fi
done
echo "runs with every fault recovered, within its prediction and ±<=10 ms: $ok_runs of $N"
echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)"
