#!/usr/bin/env bash
# Runs the agent's broker tests, and the emergency stop test, against Debian's
# mosquitto instead of the embedded rumqttd.
set -euo pipefail
cd "$(dirname "$0")/.."
source .ci/lib.sh
start_mosquitto
trap 'kill $MOSQ_PID 2>/dev/null || true' EXIT
export RACKPONG_TEST_BROKER="mqtt://127.0.0.1:$MOSQ_PORT"
echo "mosquitto on $RACKPONG_TEST_BROKER"
tests=()
for f in agent/tests/mqtt_*.rs agent/tests/node_*.rs agent/tests/worker_*.rs agent/tests/chaos_*.rs; do
  [ -e "$f" ] && tests+=(--test "$(basename "$f" .rs)")
done
cargo test -p rackpong-agent "${tests[@]}"
# The rack's emergency stop end to end over mosquitto: two agent processes,
# `rackpong estop` and `--clear`, an agent restarted under a retained stop.
cargo test -p rackpong-controller --test estop_rack
