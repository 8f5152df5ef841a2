#!/bin/bash
# Instructions of one worker_hops rate under callgrind, counted only over the
# measured window: counters are zeroed once the table header is printed
# (after the workers are ready) and dumped once the rate's row is printed,
# so readiness polling under valgrind's slowdown is not counted.
#   agent/benches/callgrind_window.sh BENCH_BINARY OUT SECONDS [RATE]
# writes OUT.txt (the row, with the forwarded hops), OUT.out.1 (the window)
# and OUT.out (from the row to the exit).
set -eu
BIN=$1 OUT=$2 SECS=$3 RATE=${4:-15}
WAIT_READY_S=900 valgrind --tool=callgrind --callgrind-out-file="$OUT.out" \
    "$BIN" --bench "$RATE" "$SECS" 8 >"$OUT.txt" 2>"$OUT.err" &
vg=$!
until grep -q '^|---' "$OUT.txt" 2>/dev/null; do sleep 0.1; done
callgrind_control -z "$vg" >"$OUT.ctl"
until grep -q "^| $RATE " "$OUT.txt" 2>/dev/null; do sleep 0.1; done
# The bench exits right after its last row; a dump request that arrives
# after the exit waits forever, so it is bounded. Then OUT.out (the dump at
# exit) holds the whole window: count OUT.out.1 + OUT.out, which is right in
# both cases (the part after the row is the teardown, ~2 M instructions).
timeout 60 callgrind_control -d "$vg" >>"$OUT.ctl" || echo "dump at the row missed" >>"$OUT.ctl"
wait "$vg"
grep "^| $RATE " "$OUT.txt"
