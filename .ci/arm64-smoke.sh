#!/usr/bin/env bash
# Builds the static aarch64 agent with Debian's cross gcc (no Docker), checks it
# is static, stripped and small, then runs it under qemu-aarch64-static: it must
# print its version and publish a real health sample that a subscriber reads back.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
target=aarch64-unknown-linux-musl
# The images step built it already (same profile, same features): no rebuild.
profile=${RACKPONG_IMAGE_PROFILE:-release}
cargo build --profile "$profile" --target "$target" -p rackpong-agent --bin rackpong-agent
bin="target/$target/$profile/rackpong-agent"

info=$(file "$bin"); echo "$info"
grep -q 'ARM aarch64' <<<"$info"
grep -q 'statically linked' <<<"$info"
grep -q 'stripped' <<<"$info" && ! grep -q 'not stripped' <<<"$info"
size=$(stat -c %s "$bin"); echo "size: $size bytes"
[ "$size" -le $((8 * 1024 * 1024)) ] || { echo "binary over 8 MiB" >&2; exit 1; }

qemu-aarch64-static "$bin" --version | grep -q "rackpong-agent"

start_mosquitto
out=$(mktemp)
mosquitto_sub -h 127.0.0.1 -p "$MOSQ_PORT" -t 'rackpong/ci/nodes/qemu-pi/health' -C 1 -W 60 > "$out" &
sub=$!
qemu-aarch64-static "$bin" node --broker "mqtt://127.0.0.1:$MOSQ_PORT" --rack ci \
  --node-name qemu-pi --interval 1s --http-addr 127.0.0.1:0 &
agent=$!
trap 'kill $agent $MOSQ_PID 2>/dev/null || true' EXIT
wait $sub
echo "health sample from qemu: $(cat "$out")"
jq -e '.v == 1 and .node == "qemu-pi" and .seq >= 0 and (.ts_ms > 0)' "$out" >/dev/null
kill -TERM $agent; wait $agent || true
echo "arm64 smoke test passed"
