#!/usr/bin/env bash
# Server API benchmarks behind BENCHMARKS.md ("Server API"): users per
# second through the batch endpoint (1,000 users per request, JSON, one
# request at a time and 4 at once; new users, or existing ones changed with
# ?mode=upsert or ?mode=merge), on the embedded store and on Redis; and a
# 1,000,000-user CSV import job: upload time, import time and the
# gateway's peak memory (VmHWM). The gateway (and Redis) run on core 0,
# the client on core 1. Traffic stays on loopback.
#
#   scripts/bench-api.sh                 # all
#   scripts/bench-api.sh batch-embedded merge-embedded import-embedded
#
# IMPORT_USERS (default 1000000) and BATCHES (default 200) scale the runs;
# GATEWAY_BIN runs another build of the gateway instead of this tree's.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=target/bench-api
mkdir -p "$OUT"
# GATEWAY_BIN (not TOKENIM_*: the gateway refuses unknown settings): another build to measure (e.g. the one before a change, for
# alternating before/after runs); default: this tree's release build.
if [[ -n ${GATEWAY_BIN:-} ]]; then
  BIN=$GATEWAY_BIN
else
  cargo build --release -p tokenim-gateway
  BIN=target/release/tokenim
fi
KEY_ID=ak_00000000000000b1
SECRET=bench-admin-secret-0123456789abcdef

PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_node PORT [ENV=VALUE...]: a gateway on core 0 with a fresh store.
start_node() {
  local port=$1
  shift
  local data="$OUT/store-$port"
  rm -rf "$data"
  env TOKENIM_LOG__FILTER=warn TOKENIM_STORE__PATH="$data" TOKENIM_API__ADMIN_KEY="$KEY_ID:$SECRET" "$@" \
    taskset -c 0 "$BIN" --listen "127.0.0.1:$port" >"$OUT/gateway-$port.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
  for _ in $(seq 100); do
    curl -sf "http://127.0.0.1:$port/readyz" >/dev/null && return 0
    sleep 0.1
  done
  echo "node on port $port never became ready" >&2
  return 1
}

start_redis() {
  RPORT=$(free_port)
  taskset -c 0 redis-server --port "$RPORT" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
  PIDS+=($!)
  until redis-cli -p "$RPORT" ping >/dev/null 2>&1; do sleep 0.05; done
}

client() {
  taskset -c 1 python3 scripts/bench_api_client.py --key "$KEY_ID:$SECRET" "$@"
}

# batch_mode SCENARIO: the batch's ?mode= (batch-* create new users).
batch_mode() {
  case $1 in
    upsert-*) echo upsert ;;
    merge-*) echo merge ;;
    *) echo create ;;
  esac
}

run() {
  local port
  port=$(free_port)
  case $1 in
    batch-embedded | upsert-embedded | merge-embedded)
      start_node "$port"
      client batch --url "http://127.0.0.1:$port" --batches "${BATCHES:-200}" --pid "$LAST_PID" --name "$1" \
        --batch-mode "$(batch_mode "$1")" ;;
    batch-redis | upsert-redis | merge-redis)
      start_redis
      start_node "$port" TOKENIM_REDIS__URL="redis://127.0.0.1:$RPORT"
      client batch --url "http://127.0.0.1:$port" --batches "${BATCHES:-200}" --pid "$LAST_PID" --name "$1" \
        --batch-mode "$(batch_mode "$1")" ;;
    import-embedded)
      start_node "$port"
      client import --url "http://127.0.0.1:$port" --users "${IMPORT_USERS:-1000000}" --pid "$LAST_PID" \
        --file "$OUT/users.csv" --name "$1" ;;
    import-redis)
      start_redis
      start_node "$port" TOKENIM_REDIS__URL="redis://127.0.0.1:$RPORT"
      client import --url "http://127.0.0.1:$port" --users "${IMPORT_USERS:-1000000}" --pid "$LAST_PID" \
        --file "$OUT/users.csv" --name "$1" ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
  cleanup
}

SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=(batch-embedded batch-redis upsert-embedded upsert-redis merge-embedded
  merge-redis import-embedded import-redis)
for s in "${SCENARIOS[@]}"; do run "$s"; done
