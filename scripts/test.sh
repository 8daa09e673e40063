#!/usr/bin/env bash
# The whole test suite: Rust unit, integration and doc tests, benchmarks
# compiled, the Python client written from docs/PROTOCOL.md, the server API
# fuzzed against docs/openapi.json, and the demo page driven in headless
# Chromium.
#
#   scripts/test.sh
#
# Needs: Rust with cargo-nextest, PostgreSQL on 127.0.0.1:5432 trusting
# user postgres (TEST_POSTGRES=postgres://user@host:port to use another;
# each test makes its own database) with its server binaries (some tests
# start their own server), python3 (with venv, for schemathesis from
# PyPI unless it is on PATH), node + npm, and Debian's chromium
# (/usr/bin/chromium). Without chromium the browser test is skipped with a
# note, unless REQUIRE_BROWSER_TEST=1 (as in CI), which makes it fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The load generator's Socket.IO tests start bench/socketio's server; install
# its packages once here, so parallel tests do not race to install them.
if command -v npm >/dev/null && [[ ! -d bench/socketio/node_modules/socket.io ]]; then
  echo "== npm ci (bench/socketio, for the Socket.IO comparison tests)"
  npm ci --no-audit --no-fund --prefix bench/socketio >/dev/null
fi

echo "== cargo nextest (unit + integration tests)"
cargo nextest run --workspace --no-fail-fast

echo "== the server API's tests again, each node on PostgreSQL"
TEST_STORE=postgres cargo nextest run -p tokenim-gateway --no-fail-fast -E 'test(/^api::/)'

echo "== doc tests"
cargo test --workspace --doc --quiet

echo "== benchmarks compile"
cargo bench --workspace --no-run --quiet

if [[ -x tests/python/run.sh ]]; then
  echo "== Python client written from docs/PROTOCOL.md"
  tests/python/run.sh
fi

echo "== server API fuzzed against docs/openapi.json (schemathesis)"
# A fixed seed, so a run is reproducible; ST_SEED= (empty) picks one.
ST_SEED=${ST_SEED-20261203} scripts/schemathesis.sh "${CARGO_TARGET_DIR:-target}/debug/tokenim"

echo "== demo page in headless Chromium"
if [[ -x /usr/bin/chromium ]]; then
  tests/browser/run.sh
elif [[ ${REQUIRE_BROWSER_TEST:-0} == 1 ]]; then
  echo "chromium is required (REQUIRE_BROWSER_TEST=1) but /usr/bin/chromium is missing" >&2
  exit 1
else
  echo "skipped: /usr/bin/chromium is missing (apt-get install -y chromium to run it)"
fi

echo "== all tests passed"
