#!/usr/bin/env bash
# Build the gateway, start two dev gateways on free local ports, and run the spec client test
# against them:
#   * the main one, default configuration plus one entry in origins.allowed;
#   * a small one (2 connections per node, 1 per client address, origins.allow_missing = true)
#     for the 429/503 refusals and allow_missing.
# Strict: a place where the server contradicts docs/PROTOCOL.md (a DOC-GAP line) fails the run;
# TOKENIM_STRICT_DOC=0 only reports it.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."
HERE=tests/python

cargo build -p tokenim-gateway
GATEWAY="${CARGO_TARGET_DIR:-target}/debug/tokenim"

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

ALLOWED_ORIGIN_CONFIGURED="https://App.Example.test"   # the test sends it in lower case
PIDS=()
LOGS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    rm -rf "${LOGS[@]}"
}
trap cleanup EXIT

# start_gateway <port> [VAR=value ...]: starts the gateway with only the given TOKENIM_*
# settings (the test's own TOKENIM_* variables would be unknown configuration fields to it).
start_gateway() {
    local port=$1; shift
    local log
    log=$(mktemp -t tokenim-spec-client.XXXXXX.log)
    LOGS+=("$log")
    local data
    data=$(mktemp -d -t tokenim-spec-store.XXXXXX)
    LOGS+=("$data")
    env -u TOKENIM_URL -u TOKENIM_STRICT_DOC -u TOKENIM_SPEC_ALLOWED_ORIGIN -u TOKENIM_SPEC_LIMITED_URL \
        TOKENIM_STORE__PATH="$data" "$@" "$GATEWAY" --listen "127.0.0.1:$port" >"$log" 2>&1 &
    local pid=$!
    PIDS+=("$pid")
    for _ in $(seq 1 100); do   # up to ~10 s
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "gateway on port $port exited early:" >&2; cat "$log" >&2; exit 1
        fi
        if python3 -c 'import sys, urllib.request as u
o = u.build_opener(u.ProxyHandler({}))
sys.exit(0 if o.open(sys.argv[1] + "/healthz", timeout=1).status == 200 else 1)' "http://127.0.0.1:$port" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "gateway not healthy at http://127.0.0.1:$port/healthz within 10 s:" >&2; cat "$log" >&2; exit 1
}

PORT=$(free_port)
start_gateway "$PORT" "TOKENIM_ORIGINS__ALLOWED=[\"$ALLOWED_ORIGIN_CONFIGURED\"]"
LIMITED_PORT=$(free_port)
start_gateway "$LIMITED_PORT" TOKENIM_LIMITS__MAX_CONNECTIONS=2 TOKENIM_LIMITS__MAX_CONNECTIONS_PER_IP=1 \
    TOKENIM_ORIGINS__ALLOW_MISSING=true

if ! python3 -c 'import websockets, msgpack' 2>/dev/null; then
    python3 -m pip install -r "$HERE/requirements.txt"
fi

status=0
TOKENIM_URL="http://127.0.0.1:$PORT" \
TOKENIM_SPEC_ALLOWED_ORIGIN="${ALLOWED_ORIGIN_CONFIGURED,,}" \
TOKENIM_SPEC_LIMITED_URL="http://127.0.0.1:$LIMITED_PORT" \
TOKENIM_STRICT_DOC="${TOKENIM_STRICT_DOC:-1}" \
    timeout 60 python3 "$HERE/spec_client_test.py" || status=$?
if [ "$status" != 0 ]; then
    for log in "${LOGS[@]}"; do
        echo "--- gateway log (tail): $(basename "$log") ---" >&2; tail -n 40 "$log" >&2
    done
fi
exit "$status"
