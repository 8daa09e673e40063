#!/usr/bin/env bash
# Builds the gateway, starts it on a free loopback port, and runs the
# headless-Chromium test of the demo chat page against it.
#
#   tests/browser/run.sh        (from anywhere; works from the repo root)
#
# Needs cargo, node + npm, curl, python3, redis-server and Debian's
# chromium at /usr/bin/chromium (CI installs them: apt-get install -y
# chromium redis-server).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

CHROMIUM=/usr/bin/chromium
if [[ ! -x $CHROMIUM ]]; then
  echo "run.sh: $CHROMIUM is missing; install Debian's chromium first (apt-get install -y chromium)" >&2
  exit 1
fi

cargo build -p tokenim-gateway

PORT="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')"
URL="http://127.0.0.1:$PORT"

# The gateway runs in a scratch directory so its embedded store starts empty
# and nothing is left in the checkout.
WORKDIR="$(mktemp -d)"
LOG="$WORKDIR/gateway.log"
GW_PID=
cleanup() {
  if [[ -n $GW_PID ]]; then
    kill "$GW_PID" 2>/dev/null || true
    wait "$GW_PID" 2>/dev/null || true
  fi
  rm -rf "$WORKDIR"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

GATEWAY="${CARGO_TARGET_DIR:-$ROOT/target}/debug/tokenim"
(cd "$WORKDIR" && exec "$GATEWAY" --listen "127.0.0.1:$PORT") >"$LOG" 2>&1 &
GW_PID=$!

gateway_log() {
  echo "--- gateway log (last 40 lines) ---" >&2
  tail -n 40 "$LOG" >&2 || true
}

# Wait up to 30 s for /healthz.
for ((i = 0; i < 150; i++)); do
  if curl -fs -o /dev/null --max-time 1 "$URL/healthz"; then
    break
  fi
  if ! kill -0 "$GW_PID" 2>/dev/null; then
    echo "run.sh: the gateway exited before answering $URL/healthz" >&2
    gateway_log
    exit 1
  fi
  sleep 0.2
done
if ! curl -fsS -o /dev/null --max-time 1 "$URL/healthz"; then
  echo "run.sh: the gateway did not answer $URL/healthz within 30 s" >&2
  gateway_log
  exit 1
fi

if [[ ! -d tests/browser/node_modules ]]; then
  npm ci --prefix tests/browser --no-audit --no-fund
fi

if ! DEMO_TEST_URL="$URL" DEMO_TEST_BIN="$GATEWAY" node tests/browser/chat.test.mjs; then
  gateway_log
  exit 1
fi
