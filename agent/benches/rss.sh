#!/usr/bin/env bash
# Resident memory and CPU time of the release `rackpong-agent node` after a
# long run (default 5 minutes), next to Debian's prometheus-node-exporter
# run at the same time and scraped at the same interval the agent samples.
#
#   cargo build --release -p rackpong-agent
#   agent/benches/rss.sh                 # DURATION=300 INTERVAL=2 by default
#
# Needs: mosquitto (the broker the agent publishes to), curl, and
# /usr/bin/prometheus-node-exporter (EXPORTER=... to override; skipped if absent).
set -euo pipefail

DURATION=${DURATION:-300}
INTERVAL=${INTERVAL:-2}
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${BIN:-$ROOT/target/release/rackpong-agent}
EXPORTER=${EXPORTER:-/usr/bin/prometheus-node-exporter}
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_file() { for _ in $(seq 100); do [ -s "$1" ] && return 0; sleep 0.1; done; echo "no $1" >&2; exit 1; }
rss_kib() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
hwm_kib() { awk '/^VmHWM/ {print $2}' "/proc/$1/status"; }
cpu_ms() { # utime + stime of a pid in ms
  local tck; tck=$(getconf CLK_TCK)
  awk -v t="$tck" '{ sub(/.*\) /, ""); print ($12 + $13) * 1000 / t }' "/proc/$1/stat"
}

mport=$(free_port)
mosquitto -p "$mport" >"$work/mosquitto.log" 2>&1 &
pids+=($!)
sleep 0.5

"$BIN" node --broker "mqtt://127.0.0.1:$mport" --node-name bench --interval "${INTERVAL}s" \
  --http-addr 127.0.0.1:0 --announce-file "$work/addr" --log warn >"$work/agent.log" 2>&1 &
agent=$!
pids+=("$agent")
wait_file "$work/addr"
agent_http=$(cat "$work/addr")

exporter=""
if [ -x "$EXPORTER" ]; then
  eport=$(free_port)
  "$EXPORTER" --web.listen-address="127.0.0.1:$eport" >"$work/exporter.log" 2>&1 &
  exporter=$!
  pids+=("$exporter")
fi

samples_now() { curl -fsS "http://$agent_http/metrics" | awk '/^rackpong_node_samples_total/ {print $2}'; }

echo "# $(date -u +%FT%TZ) $(uname -m), $(nproc) cores; ${DURATION}s, agent interval ${INTERVAL}s" >&2
sleep "$INTERVAL"
# Steady state from here: start-up CPU (loading, first sysinfo scan) is reported apart.
agent_cpu0=$(cpu_ms "$agent")
samples0=$(samples_now)
exporter_cpu0=0
[ -n "$exporter" ] && exporter_cpu0=$(cpu_ms "$exporter")
start=$(date +%s)
while [ $(( $(date +%s) - start )) -lt "$DURATION" ]; do
  # The exporter works only when scraped: scrape it as often as the agent samples.
  [ -n "$exporter" ] && curl -fsS "http://127.0.0.1:$eport/metrics" >/dev/null
  sleep "$INTERVAL"
  elapsed=$(( $(date +%s) - start ))
  if [ $(( elapsed % 60 )) -lt "$INTERVAL" ]; then
    echo "t=${elapsed}s agent RSS $(rss_kib "$agent") KiB${exporter:+, node-exporter RSS $(rss_kib "$exporter") KiB}" >&2
  fi
done

samples=$(( $(samples_now) - samples0 ))
agent_cpu=$(cpu_ms "$agent")
echo "| process | RSS after ${DURATION}s (KiB) | peak RSS (KiB) | start-up CPU (ms) | steady CPU (ms) | per sample/scrape (ms) |"
echo "|---|---|---|---|---|---|"
printf '| rackpong-agent node | %s | %s | %s | %s | %s |\n' "$(rss_kib "$agent")" "$(hwm_kib "$agent")" \
  "$agent_cpu0" "$(awk -v a="$agent_cpu" -v b="$agent_cpu0" 'BEGIN { print a - b }')" \
  "$(awk -v a="$agent_cpu" -v b="$agent_cpu0" -v n="$samples" 'BEGIN { printf "%.3f", (a - b) / n }')"
if [ -n "$exporter" ]; then
  scrapes=$(( DURATION / INTERVAL ))
  ecpu=$(cpu_ms "$exporter")
  printf '| prometheus-node-exporter | %s | %s | %s | %s | %s |\n' "$(rss_kib "$exporter")" "$(hwm_kib "$exporter")" \
    "$exporter_cpu0" "$(awk -v a="$ecpu" -v b="$exporter_cpu0" 'BEGIN { print a - b }')" \
    "$(awk -v a="$ecpu" -v b="$exporter_cpu0" -v n="$scrapes" 'BEGIN { printf "%.3f", (a - b) / n }')"
fi
echo "samples taken by the agent during the run: $samples (CPU times have 1/CLK_TCK = $((1000 / $(getconf CLK_TCK))) ms resolution)" >&2
