#!/usr/bin/env bash
# Line coverage of the workspace (issue 16): installs cargo-llvm-cov (from
# crates.io) and rustup's llvm-tools-preview if missing, runs the README test
# command's tests instrumented (`cargo llvm-cov --workspace`), and prints the
# line coverage per crate and per module of the agent and of the
# controller's engine, timing, safety, plan and report (docs/quality.md
# records the figures and the plan for the least-covered modules).
# The instrumented build lives in target/llvm-cov-target and is deleted
# afterwards (KEEP_COVERAGE_BUILD=1 keeps it); the JSON summary stays in
# target/coverage/summary.json. Fails when a test fails or a goal is missed
# with COVERAGE_FAIL_UNDER=<percent> (off unless set).
set -euo pipefail
cd "$(dirname "$0")/.."
LLVM_COV_VERSION=0.9.1
if ! cargo llvm-cov --version >/dev/null 2>&1; then
  cargo install cargo-llvm-cov --locked --version "$LLVM_COV_VERSION"
fi
rustup component add llvm-tools-preview >/dev/null 2>&1 || rustup component add llvm-tools
export CARGO_LLVM_COV_TARGET_DIR="$PWD/target/llvm-cov-target"
# No incremental state: the instrumented build is built once and deleted.
export CARGO_INCREMENTAL=0
mkdir -p target/coverage
status=0
cargo llvm-cov --workspace --no-report --no-fail-fast || status=$?
cargo llvm-cov report --summary-only --json --output-path target/coverage/summary.json
python3 .ci/coverage_table.py target/coverage/summary.json "$PWD" ${COVERAGE_FAIL_UNDER:+--fail-under "$COVERAGE_FAIL_UNDER"} || status=$?
if [ "${KEEP_COVERAGE_BUILD:-0}" != 1 ]; then
  cargo llvm-cov clean --workspace >/dev/null 2>&1 || true
  rm -rf target/llvm-cov-target
fi
exit "$status"
