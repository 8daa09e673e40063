#!/usr/bin/env bash
# System benchmarks behind BENCHMARKS.md. The gateway (and Redis, for the
# cluster run) is pinned to core 0, the load generator to core 1; every
# scenario runs three times against a freshly started gateway, and the
# summary gives the median and the spread (min–max) of each figure.
#
#   scripts/bench.sh                       # every scenario
#   scripts/bench.sh idle10k broadcast1000 # some of them
#
# Scenarios: idle10k idle19k storm broadcast100 broadcast1000
# broadcast1000-nohistory redis1node redis2nodes redis2nodes-delay5ms
# broadcast1000-delay5ms idle19k-tls broadcast1000-tls (the last two over wss:// with a
# throwaway test CA)
# Results (one JSON file per run) go to target/bench/. Traffic stays on
# loopback; each run is bounded by its --duration.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=target/bench
RUNS=${BENCH_RUNS:-3}
GEN=(taskset -c 1 target/release/tokenim-loadtest)
SOURCES=(--source-ips 127.0.0.1-127.0.0.40)
mkdir -p "$OUT"
cargo build --release -p tokenim-gateway -p tokenim-loadtest

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

wait_ready() {
  for _ in $(seq 100); do
    if [[ -n ${TLS_CA:-} ]]; then
      curl -sf --cacert "$TLS_CA" "https://127.0.0.1:$1/readyz" >/dev/null && return 0
    else
      curl -sf "http://127.0.0.1:$1/readyz" >/dev/null && return 0
    fi
    sleep 0.1
  done
  echo "node on port $1 never became ready" >&2
  return 1
}

# fresh NAME: forget earlier results of NAME, so the summary covers this run.
fresh() {
  rm -f "$OUT/$1"-*.json "$OUT/$1"-*.txt
}

# start_node PORT [ENV=VALUE...]: a gateway with load-test limits on core 0.
start_node() {
  local port=$1
  shift
  env TOKENIM_LIMITS__MAX_CONNECTIONS_PER_IP=100000 TOKENIM_LIMITS__PUBLISH_RATE=100000 \
    TOKENIM_LIMITS__PUBLISH_BURST=100000 TOKENIM_LOG__FILTER=warn \
    TOKENIM_STORE__PATH="$OUT/store-$port-$RANDOM" "$@" \
    taskset -c 0 target/release/tokenim --listen "127.0.0.1:$port" >"$OUT/gateway-$port.log" 2>&1 &
  PIDS+=($!)
  LAST_PID=$!
  wait_ready "$port"
}

# single NAME LOADTEST-ARGS...: RUNS runs against one fresh node each
# (NODE_ENV, if set, holds extra ENV=VALUE settings for the node).
# A throwaway CA and a certificate for 127.0.0.1 signed by it, for the
# TLS scenarios (made once per run of this script, never committed).
make_test_cert() {
  local dir=$OUT/tls
  mkdir -p "$dir"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=bench-ca -keyout "$dir/ca.key" -out "$dir/ca.pem" 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=127.0.0.1 \
    -keyout "$dir/key.pem" -out "$dir/node.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$dir/ext.cnf"
  openssl x509 -req -in "$dir/node.csr" -CA "$dir/ca.pem" -CAkey "$dir/ca.key" -CAcreateserial \
    -days 1 -extfile "$dir/ext.cnf" -out "$dir/cert.pem" 2>/dev/null
  TLS_MADE=$dir/ca.pem
  TLS_ENV="TOKENIM_TLS__CERT=$dir/cert.pem TOKENIM_TLS__KEY=$dir/key.pem"
}

single() {
  local name=$1
  shift
  fresh "$name"
  local scheme=ws tls_args=()
  if [[ -n ${TLS_CA:-} ]]; then
    scheme=wss
    tls_args=(--tls-ca "$TLS_CA")
  fi
  for i in $(seq "$RUNS"); do
    local port
    port=$(free_port)
    # shellcheck disable=SC2086
    start_node "$port" ${NODE_ENV:-}
    "${GEN[@]}" "$@" --url "$scheme://127.0.0.1:$port/ws" "${tls_args[@]}" "${SOURCES[@]}" --gateway-pid "$LAST_PID" \
      --no-progress --json "$OUT/$name-$i.json" >"$OUT/$name-$i.txt" 2>&1
    cleanup
    echo "$name run $i done"
  done
}

# redis_nodes NAME N: N nodes joined by a redis-server, all on core 0;
# subscribers alternate between the nodes, the publisher is on the first.
redis_nodes() {
  local name=$1 nodes=$2
  fresh "$name"
  for i in $(seq "$RUNS"); do
    local rport urls=()
    rport=$(free_port)
    taskset -c 0 redis-server --port "$rport" --bind 127.0.0.1 --save "" --appendonly no >"$OUT/redis.log" 2>&1 &
    PIDS+=($!)
    until redis-cli -p "$rport" ping >/dev/null 2>&1; do sleep 0.05; done
    for _ in $(seq "$nodes"); do
      local port
      port=$(free_port)
      # shellcheck disable=SC2086
      start_node "$port" TOKENIM_REDIS__URL="redis://127.0.0.1:$rport" TOKENIM_STORE__ALLOW_VOLATILE_REDIS=true ${NODE_ENV:-}
      urls+=(--url "ws://127.0.0.1:$port/ws")
    done
    "${GEN[@]}" broadcast -s 1000 -p 1 -r 1000 --duration 10s "${urls[@]}" "${SOURCES[@]}" \
      --no-progress --json "$OUT/$name-$i.json" >"$OUT/$name-$i.txt" 2>&1
    cleanup
    echo "$name run $i done"
  done
}

# Runs a scenario against TLS-serving nodes (wss://, trusting the test CA).
with_tls() {
  [[ -n ${TLS_MADE:-} ]] || make_test_cert
  TLS_CA=$TLS_MADE NODE_ENV="${NODE_ENV:-} $TLS_ENV" "$@"
}

run() {
  case $1 in
    idle10k) single idle10k idle -n 10000 --rate 2000 --duration 20s --settle 3s ;;
    idle19k) single idle19k idle -n 19000 --rate 2000 --duration 25s --settle 3s ;;
    storm) single storm connect -n 10000 --rate 0 --duration 10s ;;
    broadcast100) single broadcast100 broadcast -s 1000 -p 1 -r 100 --duration 10s ;;
    broadcast1000) single broadcast1000 broadcast -s 1000 -p 1 -r 1000 --duration 10s ;;
    broadcast1000-nohistory)
      NODE_ENV=TOKENIM_HISTORY__SIZE=0 single broadcast1000-nohistory broadcast -s 1000 -p 1 -r 1000 --duration 10s ;;
    redis1node) redis_nodes redis1node 1 ;;
    redis2nodes) redis_nodes redis2nodes 2 ;;
    redis2nodes-delay5ms) NODE_ENV=TOKENIM_LIMITS__WRITE_DELAY=5ms redis_nodes redis2nodes-delay5ms 2 ;;
    idle19k-tls) with_tls single idle19k-tls idle -n 19000 --rate 2000 --duration 25s --settle 3s ;;
    broadcast1000-tls) with_tls single broadcast1000-tls broadcast -s 1000 -p 1 -r 1000 --duration 10s ;;
    broadcast1000-delay5ms)
      NODE_ENV=TOKENIM_LIMITS__WRITE_DELAY=5ms single broadcast1000-delay5ms broadcast -s 1000 -p 1 -r 1000 --duration 10s ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=(idle10k idle19k storm broadcast100 broadcast1000 broadcast1000-nohistory redis2nodes)
for s in "${SCENARIOS[@]}"; do run "$s"; done

python3 - "$OUT" "${SCENARIOS[@]}" <<'PY'
import json, statistics, sys
out, names = sys.argv[1], sys.argv[2:]
def load(name):
    runs = []
    i = 1
    while True:
        try:
            runs.append(json.load(open(f"{out}/{name}-{i}.json")))
        except FileNotFoundError:
            return runs
        i += 1
def figure(runs, get, unit, scale=1.0):
    values = [get(r) * scale for r in runs]
    med = statistics.median(values)
    return f"{med:,.1f} {unit} (range {min(values):,.1f}–{max(values):,.1f})"
for name in names:
    runs = load(name)
    if not runs:
        continue
    m = lambda k: (lambda r: r["metrics"][k])
    lat = lambda which, p: (lambda r: r["latency_us"][which][p])
    print(f"{name} ({len(runs)} runs)")
    if name.startswith("idle"):
        print("  gateway RSS per connection:", figure(runs, m("gateway_rss_per_connection_bytes"), "B"))
    elif name == "storm":
        print("  connections per second:", figure(runs, m("connects_per_s"), "/s"))
        print("  connect p99:", figure(runs, lat("connect", "p99"), "ms", 1e-3))
    else:
        print("  deliveries per second:", figure(runs, m("deliveries_per_s"), "/s"))
        print("  lost:", figure(runs, m("lost"), ""))
        for p in ("p50", "p99", "p999"):
            print(f"  delivery {p}:", figure(runs, lat("delivery", p), "ms", 1e-3))
        print("  generator saturated in", sum(r["generator"]["saturated"] for r in runs), "of", len(runs), "runs")
PY
