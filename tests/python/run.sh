#!/usr/bin/env bash
# Build the gateway, start it on a free local port, and run the spec client test against it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
HERE=tests/python

cargo build -p tokenim-gateway

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
URL="http://127.0.0.1:$PORT"
LOG=$(mktemp -t tokenim-spec-client.XXXXXX.log)

target/debug/tokenim --listen "127.0.0.1:$PORT" >"$LOG" 2>&1 &
GATEWAY_PID=$!
cleanup() {
    kill "$GATEWAY_PID" 2>/dev/null || true
    wait "$GATEWAY_PID" 2>/dev/null || true
    rm -f "$LOG"
}
trap cleanup EXIT

ready=0
for _ in $(seq 1 100); do   # up to ~10 s
    if ! kill -0 "$GATEWAY_PID" 2>/dev/null; then
        echo "gateway exited early:" >&2; cat "$LOG" >&2; exit 1
    fi
    if python3 -c 'import sys, urllib.request as u
o = u.build_opener(u.ProxyHandler({}))
sys.exit(0 if o.open(sys.argv[1] + "/healthz", timeout=1).status == 200 else 1)' "$URL" 2>/dev/null; then
        ready=1; break
    fi
    sleep 0.1
done
if [ "$ready" != 1 ]; then
    echo "gateway not healthy at $URL/healthz within 10 s:" >&2; cat "$LOG" >&2; exit 1
fi

if ! python3 -c 'import websockets, msgpack' 2>/dev/null; then
    python3 -m pip install -r "$HERE/requirements.txt"
fi

status=0
TOKENIM_URL="$URL" timeout 60 python3 "$HERE/spec_client_test.py" || status=$?
if [ "$status" != 0 ]; then
    echo "--- gateway log (tail) ---" >&2; tail -n 40 "$LOG" >&2
fi
exit "$status"
