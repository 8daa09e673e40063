#!/usr/bin/env bash
# tokenim and a Socket.IO 4 server (bench/socketio) side by side, same
# machine, same run: the server under test is pinned to core 0, the load
# generator to core 1. For every scenario each server runs RUNS times
# (3 by default), alternating Socket.IO and tokenim, each run against a
# freshly started server; the table gives the median and the spread
# (min–max) of each figure and the ratio tokenim / Socket.IO.
#
#   scripts/bench-socketio.sh                      # every scenario
#   scripts/bench-socketio.sh idle10k broadcast100 # some of them
#   BENCH_SUMMARY_ONLY=1 scripts/bench-socketio.sh # the table of the last results
#
# Scenarios: idle10k broadcast100 broadcast1000 storm
# The generator speaks Engine.IO 4 to Socket.IO (--target socketio: JSON
# text, no tokens, its own seq and send stamp in each message) and the
# tokenim protocol (JSON codec, header tokens) to tokenim.
# Results (one JSON file per run) go to target/bench-socketio/. Traffic
# stays on loopback; each run is bounded by its --duration.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

OUT=target/bench-socketio
RUNS=${BENCH_RUNS:-3}
GEN=(taskset -c 1 target/release/tokenim-loadtest)
SOURCES=(--source-ips 127.0.0.1-127.0.0.40)
mkdir -p "$OUT"

PIDS=()
stop_servers() {
  local pid
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
  PIDS=()
}
cleanup() {
  local gen
  for gen in $(jobs -p); do kill "$gen" 2>/dev/null || true; done
  stop_servers
}
trap cleanup EXIT
trap 'exit 130' INT TERM

SCENARIOS=("$@")
((${#SCENARIOS[@]})) || SCENARIOS=(idle10k broadcast100 broadcast1000 storm)
if [[ -z ${BENCH_SUMMARY_ONLY:-} ]]; then
command -v node >/dev/null || { echo "node is required for the Socket.IO server" >&2; exit 1; }
[[ -d bench/socketio/node_modules/socket.io ]] || npm ci --no-audit --no-fund --prefix bench/socketio
cargo build --release -p tokenim-gateway -p tokenim-loadtest
# Both servers and the generator get the hard open-file limit.
ulimit -n "$(ulimit -Hn)"

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_ready() {
  local url=$1
  for _ in $(seq 100); do
    curl -sf "$url" >/dev/null && return 0
    sleep 0.1
  done
  echo "$url never became ready" >&2
  return 1
}

# start_server KIND PORT: a fresh server on core 0; sets LAST_PID and URL.
start_server() {
  local kind=$1 port=$2
  case $kind in
    socketio)
      taskset -c 0 node bench/socketio/server.js 127.0.0.1 "$port" >"$OUT/server-$port.log" 2>&1 &
      LAST_PID=$!
      PIDS+=("$LAST_PID")
      URL="ws://127.0.0.1:$port/socket.io/?EIO=4&transport=websocket"
      wait_ready "http://127.0.0.1:$port/healthz"
      ;;
    tokenim)
      env TOKENIM_LIMITS__MAX_CONNECTIONS_PER_IP=100000 TOKENIM_LIMITS__PUBLISH_RATE=100000 \
        TOKENIM_LIMITS__PUBLISH_BURST=100000 TOKENIM_LOG__FILTER=warn \
        taskset -c 0 target/release/tokenim --listen "127.0.0.1:$port" >"$OUT/server-$port.log" 2>&1 &
      LAST_PID=$!
      PIDS+=("$LAST_PID")
      URL="ws://127.0.0.1:$port/ws"
      wait_ready "http://127.0.0.1:$port/readyz"
      ;;
  esac
}

# scenario NAME LOADTEST-ARGS...: RUNS runs per server, alternating.
scenario() {
  local name=$1 i kind port
  shift
  for i in $(seq "$RUNS"); do
    for kind in socketio tokenim; do
      port=$(free_port)
      start_server "$kind" "$port"
      echo "+ ${GEN[*]} $* --target $kind --url '$URL' ${SOURCES[*]} --gateway-pid $LAST_PID" \
        >"$OUT/$name-$kind-$i.txt"
      "${GEN[@]}" "$@" --target "$kind" --url "$URL" "${SOURCES[@]}" --gateway-pid "$LAST_PID" \
        --no-progress --json "$OUT/$name-$kind-$i.json" >>"$OUT/$name-$kind-$i.txt" 2>&1 ||
        echo "$name $kind run $i: the generator exited with $? (see $OUT/$name-$kind-$i.txt)" >&2
      stop_servers
      echo "$name $kind run $i done"
    done
  done
}

run() {
  case $1 in
    idle10k) scenario idle10k idle -n 10000 --rate 2000 --duration 20s --settle 3s ;;
    broadcast100) scenario broadcast100 broadcast -s 1000 -p 1 -r 100 --duration 10s ;;
    broadcast1000) scenario broadcast1000 broadcast -s 1000 -p 1 -r 1000 --duration 10s ;;
    storm) scenario storm connect -n 10000 --rate 0 --duration 10s ;;
    *) echo "unknown scenario $1" >&2; exit 2 ;;
  esac
}

for s in "${SCENARIOS[@]}"; do run "$s"; done
fi

python3 - "$OUT" "${SCENARIOS[@]}" <<'PY'
import json, statistics, sys
out, names = sys.argv[1], sys.argv[2:]

def load(name, kind):
    runs, i = [], 1
    while True:
        try:
            with open(f"{out}/{name}-{kind}-{i}.json") as f:
                runs.append(json.load(f))
        except FileNotFoundError:
            return runs
        i += 1

m = lambda k: (lambda r: r["metrics"].get(k, float("nan")))
lat = lambda which, p: (lambda r: r["latency_us"][which][p] / 1000.0)
def server_cores(r):
    # The server's CPU is read over the generator's metered phase
    # (publishing and drain); its wall time is the generator's CPU time
    # divided by the cores it used.
    g, u = r.get("gateway") or {}, r["generator"]
    wall = (u["cpu_user_s"] + u["cpu_system_s"]) / max(u["cpu_cores_used"], 1e-9)
    return g.get("cpu_s", float("nan")) / max(wall, 1e-9)
rss_kib = lambda r: r["metrics"].get("gateway_rss_per_connection_bytes", float("nan")) / 1024.0
gen_cores = lambda r: r["generator"]["cpu_cores_used"]

FIGURES = {
    "idle": [("server RSS per connection (KiB)", rss_kib), ("connections held", m("held")),
             ("failed", m("failed"))],
    "broadcast": [("deliveries per second", m("deliveries_per_s")), ("lost", m("lost")),
                  ("duplicates", m("duplicates")), ("out of order", m("out_of_order")),
                  ("delivery p50 (ms)", lat("delivery", "p50")),
                  ("delivery p99 (ms)", lat("delivery", "p99")),
                  ("delivery p99.9 (ms)", lat("delivery", "p999")),
                  ("delivery max (ms)", lat("delivery", "max")),
                  ("publishes acknowledged", m("acked")), ("publishes unacknowledged at the end", m("unacked")),
                  ("server cores used", server_cores), ("generator cores used", gen_cores)],
    "connect": [("connections per second", m("connects_per_s")), ("connected", m("connected")),
                ("failed", m("failed")), ("connect p50 (ms)", lat("connect", "p50")),
                ("connect p99 (ms)", lat("connect", "p99"))],
}

def fmt(v):
    if v != v:
        return "n/a"
    if abs(v) >= 100:
        return f"{v:,.0f}"
    return f"{v:,.2f}" if abs(v) < 10 else f"{v:,.1f}"

def cell(values):
    med = statistics.median(values)
    return med, f"{fmt(med)} ({fmt(min(values))}–{fmt(max(values))})"

for name in names:
    tok, sio = load(name, "tokenim"), load(name, "socketio")
    if not tok or not sio:
        print(f"\n{name}: missing results (tokenim {len(tok)}, socket.io {len(sio)} runs)")
        continue
    print(f"\n{name}: {tok[0]['scenario']} {json.dumps({k: v for k, v in tok[0]['params'].items() if k in ('connections', 'subscribers', 'publishers', 'rate', 'duration_s')})}"
          f" ({len(tok)} tokenim, {len(sio)} socket.io runs; median (min–max))")
    rows = [("figure", "tokenim", "socket.io", "tokenim/socket.io")]
    for label, get in FIGURES[tok[0]["scenario"]]:
        tm, tc = cell([get(r) for r in tok])
        sm, sc = cell([get(r) for r in sio])
        ratio = f"{tm / sm:.3g}" if sm and sm == sm and tm == tm else "–"
        rows.append((label, tc, sc, ratio))
    sat = lambda runs: sum(r["generator"]["saturated"] for r in runs)
    warned = lambda runs: sum(bool(r["warnings"]) for r in runs)
    rows.append(("generator saturated (runs)", str(sat(tok)), str(sat(sio)), ""))
    rows.append(("runs with warnings", str(warned(tok)), str(warned(sio)), ""))
    other = lambda runs: fmt(max(r["generator"]["other_cores_used"] for r in runs))
    rows.append(("other processes, most cores", other(tok), other(sio), ""))
    widths = [max(len(r[c]) for r in rows) for c in range(4)]
    for j, r in enumerate(rows):
        print("  " + " | ".join(r[c].ljust(widths[c]) if c == 0 else r[c].rjust(widths[c]) for c in range(4)))
        if j == 0:
            print("  " + "-+-".join("-" * w for w in widths))
PY
