#!/usr/bin/env bash
# CPU time (utime+stime from /proc/<pid>/stat) of `rackpong-agent node` at a 500 ms
# health interval over SECS seconds (default 60), against Debian's mosquitto.
# Usage: agent/benches/cpu500.sh BIN [SECS]   e.g. agent/benches/cpu500.sh target/debug/rackpong-agent 60
set -euo pipefail
BIN=${1:?agent binary}; SECS=${2:-60}
dir=$(mktemp -d)
port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
printf 'listener %s 127.0.0.1\nallow_anonymous true\npersistence false\n' "$port" > "$dir/m.conf"
mosquitto -c "$dir/m.conf" > "$dir/m.log" 2>&1 & mp=$!
trap 'kill $ap $mp 2>/dev/null || true' EXIT
for _ in $(seq 100); do mosquitto_pub -h 127.0.0.1 -p "$port" -t probe -m x 2>/dev/null && break; python3 -c 'import time;time.sleep(0.1)'; done
mosquitto_sub -h 127.0.0.1 -p "$port" -t 'rackpong/rack/nodes/+/health' > "$dir/health.log" & sp=$!
"$BIN" node --broker "mqtt://127.0.0.1:$port" --node-name cpu1 --interval 500ms --http-addr 127.0.0.1:0 > "$dir/agent.log" 2>&1 & ap=$!
tck=$(getconf CLK_TCK)
python3 -c 'import time;time.sleep(2)'   # warm-up: first samples, connection
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$ap/stat); t0=$(date +%s.%N)
python3 -c "import time;time.sleep($SECS)"
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$ap/stat); t1=$(date +%s.%N)
kill $sp 2>/dev/null || true
samples=$(wc -l < "$dir/health.log")
python3 - "$u0" "$s0" "$u1" "$s1" "$t0" "$t1" "$tck" "$samples" <<'PY'
import sys
u0,s0,u1,s1=map(int,sys.argv[1:5]); t0,t1=map(float,sys.argv[5:7]); tck=int(sys.argv[7]); n=int(sys.argv[8])
wall=t1-t0; user=(u1-u0)/tck; sys_=(s1-s0)/tck
print(f"wall {wall:.1f} s  user {user:.2f} s  sys {sys_:.2f} s  cpu {(user+sys_)/wall*100:.2f} % of one core  per sample {(user+sys_)/(wall/0.5)*1000:.2f} ms  (samples seen by mosquitto_sub: {n})")
PY
uptime
