#!/usr/bin/env bash
# Start a local tokenim cluster on loopback: one private redis-server and N
# gateway nodes sharing it, for trying things out and for load tests.
#
#   deploy/cluster.sh                 # 3 nodes, production mode (dev_mode off)
#   deploy/cluster.sh --dev           # dev mode: demo chat page works on every node
#   deploy/cluster.sh --nodes 2 --base-port 9000 --no-build
#
# Everything listens on 127.0.0.1 only. Redis gets its own free port (never
# 6379, so a Redis already running there is left alone). Ctrl-C or SIGTERM
# drains the gateways, then stops Redis, and waits until every process this
# script started is gone. Logs stay in the temporary directory it prints.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: deploy/cluster.sh [--nodes N] [--base-port P] [--dev] [--no-build]

  --nodes N       gateway nodes to start (default 3)
  --base-port P   first node's port; nodes use P, P+1, ... which must be free
                  (default: the first run of N free ports from 18080 up)
  --dev           development mode on every node: /dev/token and the demo chat
                  page work (open node 1 in one tab and node 2 in another)
  --no-build      use the existing release binary instead of building it first
  -h, --help      this text

Environment:
  CLUSTER_BIN           gateway binary to run (default <target>/release/tokenim)
  CLUSTER_STOP_TIMEOUT  seconds to wait for the gateways to drain before
                        SIGKILL (default 20; drain_timeout is 10s)
  REDIS_SERVER          redis-server binary (default: redis-server on PATH)
  TOKENIM_<SETTING>     gateway settings are passed to every node, e.g.
                        TOKENIM_LIMITS__MAX_CONNECTIONS=50000 (listen, node_id,
                        dev_mode and redis.url are set per node by this script)
EOF
}

nodes=3
base_port=""
dev=false
build=true
while [[ $# -gt 0 ]]; do
    case "$1" in
        --nodes)
            nodes="${2:?--nodes needs a number}"
            shift 2
            ;;
        --base-port)
            base_port="${2:?--base-port needs a port}"
            shift 2
            ;;
        --dev)
            dev=true
            shift
            ;;
        --no-build)
            build=false
            shift
            ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "cluster.sh: unknown argument: $1" >&2
            usage >&2
            exit 2
            ;;
    esac
done
if ! [[ "$nodes" =~ ^[1-9][0-9]*$ ]]; then
    echo "cluster.sh: --nodes must be a positive number, got '$nodes'" >&2
    exit 2
fi
if [[ -n "$base_port" ]] && ! [[ "$base_port" =~ ^[0-9]+$ && "$base_port" -ge 1024 && $((base_port + nodes - 1)) -le 65535 ]]; then
    echo "cluster.sh: --base-port must be 1024..65535 with room for $nodes nodes, got '$base_port'" >&2
    exit 2
fi

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
redis_server="${REDIS_SERVER:-redis-server}"
if ! command -v "$redis_server" >/dev/null; then
    echo "cluster.sh: redis-server not found (Debian: apt-get install redis-server)" >&2
    exit 1
fi
if ! command -v curl >/dev/null; then
    echo "cluster.sh: curl not found (used to wait for /readyz)" >&2
    exit 1
fi

if $build; then
    echo "building: cargo build --release -p tokenim-gateway"
    (cd "$root" && cargo build --release -p tokenim-gateway)
fi
bin="${CLUSTER_BIN:-${CARGO_TARGET_DIR:-$root/target}/release/tokenim}"
if [[ ! -x "$bin" ]]; then
    echo "cluster.sh: no gateway binary at $bin (run without --no-build, or set CLUSTER_BIN)" >&2
    exit 1
fi

# A port is taken when something on 127.0.0.1 answers a TCP connect.
port_taken() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# First port >= $1 that starts a run of $2 free ports, skipping 6379.
free_run() {
    local p=$1 n=$2 i
    while ((p + n - 1 <= 65535)); do
        for ((i = 0; i < n; i++)); do
            if ((p + i == 6379)) || port_taken $((p + i)); then
                p=$((p + i + 1))
                continue 2
            fi
        done
        echo "$p"
        return 0
    done
    return 1
}

if [[ -n "$base_port" ]]; then
    for ((i = 0; i < nodes; i++)); do
        if ((base_port + i == 6379)) || port_taken $((base_port + i)); then
            echo "cluster.sh: port $((base_port + i)) is in use; pick another --base-port" >&2
            exit 1
        fi
    done
else
    base_port="$(free_run 18080 "$nodes")" || {
        echo "cluster.sh: no run of $nodes free ports from 18080" >&2
        exit 1
    }
fi
# Redis: the first free port from 16379 up that is not one of the nodes'.
redis_port=16379
while true; do
    redis_port="$(free_run "$redis_port" 1)" || {
        echo "cluster.sh: no free port for redis-server" >&2
        exit 1
    }
    ((redis_port >= base_port && redis_port < base_port + nodes)) || break
    redis_port=$((base_port + nodes))
done

dir="$(mktemp -d "${TMPDIR:-/tmp}/tokenim-cluster.XXXXXX")"
echo "logs and config: $dir"

# Each child runs in its own session (setsid), so a Ctrl-C in the terminal
# reaches only this script, which then stops them in order: gateways first
# (they drain and tell clients to reconnect), Redis last.
detach=()
if command -v setsid >/dev/null; then
    detach=(setsid)
fi

pids=()
names=()
cleanup() {
    local status=$?
    # Finish stopping even if Ctrl-C is pressed again (SIGKILL still works).
    trap - EXIT
    trap '' INT TERM
    if [[ ${#pids[@]} -gt 0 ]]; then
        echo
        echo "stopping: gateways drain (up to their drain_timeout), then redis"
        local i deadline
        # Gateways (every pid but the first, which is Redis).
        for ((i = 1; i < ${#pids[@]}; i++)); do
            kill -TERM "${pids[i]}" 2>/dev/null || true
        done
        # drain_timeout is 10s by default; give a little more, then force.
        deadline=$((SECONDS + ${CLUSTER_STOP_TIMEOUT:-20}))
        for ((i = 1; i < ${#pids[@]}; i++)); do
            while kill -0 "${pids[i]}" 2>/dev/null && ((SECONDS < deadline)); do
                sleep 0.2
            done
            if kill -0 "${pids[i]}" 2>/dev/null; then
                echo "${names[i]} (pid ${pids[i]}) still running after the deadline: SIGKILL"
                kill -KILL "${pids[i]}" 2>/dev/null || true
            fi
            wait "${pids[i]}" 2>/dev/null || true
        done
        kill -TERM "${pids[0]}" 2>/dev/null || true
        deadline=$((SECONDS + 10))
        while kill -0 "${pids[0]}" 2>/dev/null && ((SECONDS < deadline)); do
            sleep 0.2
        done
        kill -KILL "${pids[0]}" 2>/dev/null || true
        wait "${pids[0]}" 2>/dev/null || true
        echo "stopped ${#pids[@]} processes; logs kept in $dir"
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# --- Redis ------------------------------------------------------------------
"${detach[@]}" "$redis_server" \
    --bind 127.0.0.1 --port "$redis_port" \
    --save "" --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" --daemonize no \
    </dev/null >/dev/null 2>&1 &
pids+=("$!")
names+=("redis")
for ((t = 0; t < 50; t++)); do
    if port_taken "$redis_port"; then
        break
    fi
    if ! kill -0 "${pids[0]}" 2>/dev/null; then
        echo "cluster.sh: redis-server exited; see $dir/redis.log" >&2
        exit 1
    fi
    sleep 0.1
done
if ! port_taken "$redis_port"; then
    echo "cluster.sh: redis-server did not listen on $redis_port; see $dir/redis.log" >&2
    exit 1
fi
redis_url="redis://127.0.0.1:$redis_port"

# --- Gateway settings -------------------------------------------------------
# Without --dev: production mode, with a fresh random HS256 key for this run.
config_args=()
secret=""
if ! $dev; then
    secret="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    umask_before="$(umask)"
    umask 077
    cat >"$dir/gateway.toml" <<EOF
# Written by cluster.sh for one local run; the key is random and disposable.
[[auth.keys]]
kid = "local"
alg = "HS256"
secret = "$secret"
EOF
    umask "$umask_before"
    config_args=(--config "$dir/gateway.toml")
fi

# The gateway reads every TOKENIM_* variable as a setting and refuses to
# start on one it does not know (TOKENIM_CONFIG included, and the load
# generator's TOKENIM_LOADTEST_*): pass on only those naming a setting.
while IFS= read -r var; do
    case "$var" in
        TOKENIM_LISTEN | TOKENIM_DEV_MODE | TOKENIM_NODE_ID | TOKENIM_DRAIN_TIMEOUT) ;;
        TOKENIM_LOG__* | TOKENIM_AUTH__* | TOKENIM_ORIGINS__* | TOKENIM_LIMITS__* | TOKENIM_REDIS__* | TOKENIM_STORE__* | TOKENIM_API__*) ;;
        TOKENIM_*)
            echo "note: $var is not passed to the nodes (not a gateway setting)"
            unset "$var"
            ;;
    esac
done < <(compgen -e)

# Loopback load tests open many connections from 127.0.0.1: raise the file
# limit as far as allowed, and the per-IP cap unless the caller set it.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
: "${TOKENIM_LIMITS__MAX_CONNECTIONS_PER_IP:=100000}"
# Native clients (the Rust client, loadtest, scripts) send no Origin header.
: "${TOKENIM_ORIGINS__ALLOW_MISSING:=true}"
export TOKENIM_LIMITS__MAX_CONNECTIONS_PER_IP TOKENIM_ORIGINS__ALLOW_MISSING

# --- Gateways ---------------------------------------------------------------
for ((i = 1; i <= nodes; i++)); do
    port=$((base_port + i - 1))
    TOKENIM_LISTEN="127.0.0.1:$port" \
        TOKENIM_NODE_ID="node$i" \
        TOKENIM_DEV_MODE="$dev" \
        TOKENIM_REDIS__URL="$redis_url" \
        "${detach[@]}" "$bin" "${config_args[@]}" serve \
        </dev/null >"$dir/node$i.log" 2>&1 &
    pids+=("$!")
    names+=("node$i")
done

# Wait until every node reports ready (Redis reached, listening).
deadline=$((SECONDS + 30))
for ((i = 1; i <= nodes; i++)); do
    port=$((base_port + i - 1))
    until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
        if ! kill -0 "${pids[i]}" 2>/dev/null; then
            echo "cluster.sh: node$i exited during start-up; last lines of $dir/node$i.log:" >&2
            tail -n 20 "$dir/node$i.log" >&2 || true
            exit 1
        fi
        if ((SECONDS >= deadline)); then
            echo "cluster.sh: node$i not ready after 30s; see $dir/node$i.log" >&2
            exit 1
        fi
        sleep 0.2
    done
done

# --- Summary ----------------------------------------------------------------
echo
echo "tokenim cluster: $nodes node(s), redis $redis_url (pid ${pids[0]}), dev mode $dev"
urls=()
for ((i = 1; i <= nodes; i++)); do
    port=$((base_port + i - 1))
    urls+=("--url ws://127.0.0.1:$port/ws")
    echo "  node$i  pid ${pids[i]}"
    echo "         demo     http://127.0.0.1:$port/"
    echo "         ws       ws://127.0.0.1:$port/ws"
    echo "         metrics  http://127.0.0.1:$port/metrics   ready http://127.0.0.1:$port/readyz"
    echo "         log      $dir/node$i.log"
done
echo
if $dev; then
    echo "dev mode: open node1's demo page in one tab and node2's in another, join the same room and chat."
    echo "token:    curl 'http://127.0.0.1:$base_port/dev/token?user=alice'"
    echo "loadtest: cargo run --release -p tokenim-loadtest -- <scenario> ${urls[*]}"
else
    echo "production mode: tokens must be signed with this run's key (kid \"local\", in $dir/gateway.toml)."
    echo "token:    $bin --config $dir/gateway.toml token --user alice"
    echo "loadtest: TOKENIM_LOADTEST_HS256_SECRET=$secret \\"
    echo "            cargo run --release -p tokenim-loadtest -- <scenario> --kid local --claim-channels '*' ${urls[*]}"
    echo "(production mode denies channels by default: tokens need channel claims, or users roles or grants)"
    echo "(the demo page needs /dev/token: start with --dev to chat in a browser)"
fi
echo
echo "Ctrl-C (or SIGTERM to pid $$) stops everything."

# Wait for a signal. A node that dies on its own (or is killed to try
# failover) is reported; the rest keep running.
reported=()
while true; do
    alive=0
    for ((i = 0; i < ${#pids[@]}; i++)); do
        if kill -0 "${pids[i]}" 2>/dev/null; then
            alive=$((alive + 1))
        elif [[ -z "${reported[i]:-}" ]]; then
            reported[i]=1
            status=0
            wait "${pids[i]}" 2>/dev/null || status=$?
            echo "$(date +%T) ${names[i]} (pid ${pids[i]}) exited with status $status; see $dir/${names[i]}.log"
        fi
    done
    if ((alive == 0)); then
        echo "every process has exited"
        exit 1
    fi
    sleep 1
done
