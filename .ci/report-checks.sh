#!/usr/bin/env bash
# Report checks (issue 5): renders the fixture journals with the built
# `rackpong report`, then checks what a person and a CI system would see:
#   - report.json validates against docs/report.schema.json (Python jsonschema);
#   - junit.xml validates against the Jenkins xunit junit-10.xsd (xmllint);
#   - report.md and compare.md pass markdownlint (markdownlint-cli);
#   - report.html opens in headless Debian chromium with no console error and
#     no network request; screenshots go to target/report-screenshots/;
#   - a file that is not a journal fails with its path and line.
# Installs what it needs itself. Exits non-zero on any failure.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CI_DIR=controller/tests/report_ci
FIXTURES=controller/tests/fixtures/journals
WORK=target/report-checks
SHOTS=target/report-screenshots
failed=0
fail() { echo "report-checks: FAIL: $*" >&2; failed=1; }

if ! command -v chromium >/dev/null || ! command -v xmllint >/dev/null; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium libxml2-utils >/dev/null
fi
python3 -c 'import jsonschema' 2>/dev/null || python3 -m pip install -q 'jsonschema>=4.18'
mkdir -p "$WORK/node"
if [ ! -x "$WORK/node/node_modules/.bin/markdownlint" ] || [ ! -d "$WORK/node/node_modules/playwright-core" ]; then
  npm install --no-save --no-audit --no-fund --prefix "$WORK/node" playwright-core@1.65.1 markdownlint-cli@0.45.0 >/dev/null
fi

cargo build -q -p rackpong-controller --bin rackpong
RACKPONG=$ROOT/target/debug/rackpong

rm -rf "$WORK/runs" && mkdir -p "$WORK/runs" "$SHOTS"
for dir in "$FIXTURES"/*/; do
  name=$(basename "$dir")
  [ "$name" = not-rackpong ] && continue
  mkdir -p "$WORK/runs/$name"
  cp "$dir/journal.jsonl" "$WORK/runs/$name/"
  "$RACKPONG" --log warn report "$WORK/runs/$name" >/dev/null || fail "rackpong report $name"
done

# Not a journal: must fail, naming the file and the line.
mkdir -p "$WORK/runs-bad/not-rackpong" && cp "$FIXTURES/not-rackpong/journal.jsonl" "$WORK/runs-bad/not-rackpong/"
if out=$("$RACKPONG" --log warn report "$WORK/runs-bad/not-rackpong" 2>&1); then
  fail "a non-journal file rendered"
elif ! grep -q "not-rackpong/journal.jsonl:1: not a rackpong journal" <<<"$out"; then
  fail "unclear error for a non-journal file: $out"
fi

"$RACKPONG" --log warn compare "$WORK/runs/slow" "$WORK/runs/clean" --out-dir "$WORK/runs" >/dev/null || fail "rackpong compare"

python3 "$CI_DIR/validate_schema.py" docs/report.schema.json "$WORK"/runs/*/report.json || fail "schema validation"
for x in "$WORK"/runs/*/junit.xml; do
  xmllint --noout --schema "$CI_DIR/junit-10.xsd" "$x" || fail "junit schema: $x"
done
"$WORK/node/node_modules/.bin/markdownlint" -c "$CI_DIR/markdownlint.json" "$WORK"/runs/*/report.md "$WORK/runs/compare.md" || fail "markdownlint"
# ESM resolves imports next to the script, so it runs beside node_modules.
cp "$CI_DIR/check_html.mjs" "$WORK/node/"
CHROMIUM=$(command -v chromium) node "$WORK/node/check_html.mjs" "$SHOTS" "$ROOT/$WORK"/runs/*/report.html || fail "headless chromium"

if [ "$failed" -ne 0 ]; then
  echo "report-checks: failed" >&2
  exit 1
fi
echo "report-checks: all passed (screenshots in $SHOTS)"
