#!/usr/bin/env bash
# Server API benchmarks behind BENCHMARKS.md ("Server API"): users per
# second through the batch endpoint (1,000 users per request, JSON, one
# request at a time and 4 at once; new users, or existing ones changed with
# ?mode=upsert or ?mode=merge), on the embedded store, PostgreSQL and
# Redis; a 1,000,000-user CSV import job: upload time, import time and the
# gateway's (and PostgreSQL's) peak memory; and audit queries over
# 1,000,000 records (loaded with `tokenim store import`, which is timed):
# p50/p99 by actor, action, target and time range. The gateway (and Redis)
# run on core 0, the client on core 1; PostgreSQL is the machine's server
# on 127.0.0.1:5432 (a fresh database per run, dropped after; PG_SERVER
# for another), not pinned. Traffic stays on loopback.
#
#   scripts/bench-api.sh                 # all
#   scripts/bench-api.sh batch-embedded merge-embedded import-embedded
#
# IMPORT_USERS (default 1000000), AUDIT_RECORDS (default 1000000) and
# BATCHES (default 200) scale the runs;
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
DBS=()
PG_SERVER=${PG_SERVER:-postgres://postgres@127.0.0.1:5432}
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
  for db in "${DBS[@]}"; do psql -q "$PG_SERVER/postgres" -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" || true; done
  DBS=()
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

# start_pg: a fresh database; its URL in PG_URL.
start_pg() {
  local db="tokenim_bench_$$_$RANDOM"
  psql -q "$PG_SERVER/postgres" -c "CREATE DATABASE $db ENCODING 'UTF8' TEMPLATE template0"
  DBS+=("$db")
  PG_URL="$PG_SERVER/$db"
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
      start_node "$port" TOKENIM_REDIS__URL="redis://127.0.0.1:$RPORT" TOKENIM_STORE__ALLOW_VOLATILE_REDIS=true
      client batch --url "http://127.0.0.1:$port" --batches "${BATCHES:-200}" --pid "$LAST_PID" --name "$1" \
        --batch-mode "$(batch_mode "$1")" ;;
    batch-postgres | upsert-postgres | merge-postgres)
      start_pg
      start_node "$port" TOKENIM_STORE__URL="$PG_URL"
      client batch --url "http://127.0.0.1:$port" --batches "${BATCHES:-200}" --pid "$LAST_PID" --name "$1" \
        --batch-mode "$(batch_mode "$1")" ;;
    import-postgres)
      start_pg
      start_node "$port" TOKENIM_STORE__URL="$PG_URL"
      client import --url "http://127.0.0.1:$port" --users "${IMPORT_USERS:-1000000}" --pid "$LAST_PID" \
        --file "$OUT/users.csv" --name "$1" --pg ;;
    audit-embedded | audit-postgres)
      local records=${AUDIT_RECORDS:-1000000} store
      local file="$OUT/audit-$records.jsonl"
      [[ -s $file ]] || client audit-file --url x --pid 0 --name x --records "$records" --file "$file"
      if [[ $1 == audit-postgres ]]; then
        start_pg
        store=(TOKENIM_STORE__URL="$PG_URL")
      else
        rm -rf "$OUT/store-$port"
        store=(TOKENIM_STORE__BACKEND=embedded TOKENIM_STORE__PATH="$OUT/store-$port")
      fi
      # Queries come faster than the default per-key rate limit.
      store+=(TOKENIM_API__RATE_LIMITS__PER_KEY=1000000 TOKENIM_API__RATE_LIMITS__PER_KEY_BURST=1000000
        TOKENIM_API__RATE_LIMITS__PER_IP=1000000 TOKENIM_API__RATE_LIMITS__PER_IP_BURST=1000000)
      local t0=$EPOCHREALTIME
      env TOKENIM_LOG__FILTER=warn "${store[@]}" taskset -c 0 "$BIN" store import --in "$file"
      echo "{\"name\": \"$1-load\", \"records\": $records, \"store_import_s\": $(python3 -c "print(round($EPOCHREALTIME - $t0, 2))")}" \
        | tee -a "$OUT/results.jsonl"
      if [[ $1 == audit-postgres ]]; then
        start_node "$port" "${store[@]}" TOKENIM_AUDIT__MAX_RECORDS=10000000 TOKENIM_AUDIT__MAX_AGE=100y
      else
        # start_node would empty the store it names: start it on this one.
        env TOKENIM_LOG__FILTER=warn TOKENIM_API__ADMIN_KEY="$KEY_ID:$SECRET" "${store[@]}" \
          TOKENIM_AUDIT__MAX_RECORDS=10000000 TOKENIM_AUDIT__MAX_AGE=100y \
          taskset -c 0 "$BIN" --listen "127.0.0.1:$port" >"$OUT/gateway-$port.log" 2>&1 &
        PIDS+=($!)
        LAST_PID=$!
        until curl -sf "http://127.0.0.1:$port/readyz" >/dev/null; do sleep 0.1; done
      fi
      client audit --url "http://127.0.0.1:$port" --pid "$LAST_PID" --name "$1" --records "$records" ;;
    import-embedded)
      start_node "$port"
      client import --url "http://127.0.0.1:$port" --users "${IMPORT_USERS:-1000000}" --pid "$LAST_PID" \
        --file "$OUT/users.csv" --name "$1" ;;
    import-redis)
      start_redis
      start_node "$port" TOKENIM_REDIS__URL="redis://127.0.0.1:$RPORT" TOKENIM_STORE__ALLOW_VOLATILE_REDIS=true
      client import --url "http://127.0.0.1:$port" --users "${IMPORT_USERS:-1000000}" --pid "$LAST_PID" \
        --file "$OUT/users.csv" --name "$1" ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
  cleanup
}

SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=(batch-embedded batch-postgres batch-redis upsert-embedded upsert-postgres
  upsert-redis merge-embedded merge-postgres merge-redis import-embedded import-postgres import-redis
  audit-embedded audit-postgres)
for s in "${SCENARIOS[@]}"; do run "$s"; done
