#!/usr/bin/env bash
# Start a local tokenim cluster on loopback: one private redis-server and N
# gateway nodes sharing it for fan-out, their records in one PostgreSQL
# database, for trying things out and for load tests.
#
#   deploy/cluster.sh                 # 3 nodes, production mode (dev_mode off)
#   deploy/cluster.sh --dev           # dev mode: demo chat page works on every node
#   deploy/cluster.sh --nodes 2 --base-port 9000 --no-build
#   deploy/cluster.sh --postgres postgres://tokenim:secret@127.0.0.1:5432/tokenim
#
# Everything listens on 127.0.0.1 only. Redis gets its own free port (never
# 6379, so a Redis already running there is left alone). The store is a
# fresh database created for this run on the local PostgreSQL
# (postgres@127.0.0.1:5432, see CLUSTER_PG_SERVER), or the existing one
# given with --postgres. Ctrl-C or SIGTERM drains the gateways, then stops
# Redis, waits until every process this script started is gone, and drops
# the database it created (unless --keep-db). Logs stay in the temporary
# directory it prints.
set -euo pipefail

usage() {
    cat <<'EOF'
Usage: deploy/cluster.sh [--nodes N] [--base-port P] [--dev] [--no-build]
                         [--postgres URL | --keep-db]

  --nodes N       gateway nodes to start (default 3)
  --base-port P   first node's port; nodes use P, P+1, ... which must be free
                  (default: the first run of N free ports from 18080 up)
  --dev           development mode on every node: /dev/token and the demo chat
                  page work (open node 1 in one tab and node 2 in another)
  --no-build      use the existing release binary instead of building it first
  --postgres URL  keep the store in this existing PostgreSQL database
                  (postgres://user:password@host:port/db; never created nor
                  dropped by this script). Default: a fresh database named
                  tokenim_cluster_<run id>, created on CLUSTER_PG_SERVER
  --keep-db       leave the database this script created when it stops
                  (default: dropped once every node has stopped)
  -h, --help      this text

Environment:
  CLUSTER_BIN           gateway binary to run (default <target>/release/tokenim)
  CLUSTER_STOP_TIMEOUT  seconds to wait for the gateways to drain before
                        SIGKILL (default 20; drain_timeout is 10s)
  REDIS_SERVER          redis-server binary (default: redis-server on PATH)
  CLUSTER_PG_SERVER     the PostgreSQL server the run's database is created
                        on, as a URL without a database (default
                        postgres://postgres@127.0.0.1:5432); its user must be
                        allowed to create databases
  PSQL                  psql binary (default: psql on PATH); needed to create
                        the database, optional with --postgres
  TOKENIM_STORE__URL    an existing database, as --postgres URL
  TOKENIM_<SETTING>     gateway settings are passed to every node, e.g.
                        TOKENIM_LIMITS__MAX_CONNECTIONS=50000 (listen, node_id,
                        dev_mode, redis.url and store.url are set per node by
                        this script)
EOF
}

nodes=3
base_port=""
dev=false
build=true
pg_url="${TOKENIM_STORE__URL:-}"
keep_db=false
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
        --postgres)
            pg_url="${2:?--postgres needs a URL}"
            shift 2
            ;;
        --keep-db)
            keep_db=true
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
if [[ -n "$pg_url" ]] && ! [[ "$pg_url" =~ ^postgres(ql)?:// ]]; then
    echo "cluster.sh: --postgres needs a postgres://user:password@host:port/database URL" >&2
    exit 2
fi
if [[ -n "$pg_url" ]] && $keep_db; then
    echo "cluster.sh: --keep-db is for the database the script creates; --postgres databases are never dropped" >&2
    exit 2
fi
pg_server="${CLUSTER_PG_SERVER:-postgres://postgres@127.0.0.1:5432}"
pg_server="${pg_server%/}"
if [[ -z "$pg_url" ]] && ! [[ "$pg_server" =~ ^postgres(ql)?://[^/?]+$ ]]; then
    echo "cluster.sh: CLUSTER_PG_SERVER must be postgres://user[:password]@host[:port], without a database or options, got '$pg_server'" >&2
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
psql="${PSQL:-psql}"
have_psql=false
if command -v "$psql" >/dev/null; then
    have_psql=true
elif [[ -z "$pg_url" ]]; then
    echo "cluster.sh: psql not found, needed to create the run's database (Debian: apt-get install postgresql-client), or pass --postgres URL" >&2
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
# The database this script created ("" when none, or with --postgres).
created_db=""
cleanup() {
    local status=$?
    # Finish stopping even if Ctrl-C is pressed again (SIGKILL still works).
    trap - EXIT
    trap '' INT TERM
    if [[ ${#pids[@]} -gt 0 ]]; then
        echo
        if [[ -n "$created_db" ]] && ! $keep_db; then
            echo "stopping: gateways drain (up to their drain_timeout), then redis; then database $created_db is dropped"
        else
            echo "stopping: gateways drain (up to their drain_timeout), then redis"
        fi
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
    # Every node has exited: nothing holds the database any more.
    # WITH (FORCE) (PostgreSQL 13+) also ends sessions someone left open
    # on it, e.g. a psql looking at the tables.
    if [[ -n "$created_db" ]]; then
        if $keep_db; then
            echo "database kept: $pg_server/$created_db"
            echo "  drop it with: $psql -d $pg_server/postgres -c 'DROP DATABASE \"$created_db\"'"
        elif pg_admin -c "DROP DATABASE IF EXISTS \"$created_db\" WITH (FORCE)" 2>/dev/null ||
            pg_admin -c "DROP DATABASE IF EXISTS \"$created_db\""; then
            echo "dropped database $created_db"
        else
            echo "cluster.sh: could not drop database $created_db on $pg_server; drop it by hand" >&2
        fi
    fi
    exit "$status"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

# --- PostgreSQL -------------------------------------------------------------
# psql on the server's maintenance database, quiet, ignoring any ~/.psqlrc.
pg_admin() {
    "$psql" -X -q -v ON_ERROR_STOP=1 -d "$pg_server/postgres" "$@" </dev/null
}
# The URL with its password (if any) hidden, for what is printed.
redact_url() {
    sed -E 's#^(postgres(ql)?://[^:/@]+):[^@/]*@#\1:***@#' <<<"$1"
}
if [[ -z "$pg_url" ]]; then
    # Named after the run (its directory's random suffix), so runs side by
    # side each get their own and a kept one is easy to tell.
    suffix="${dir##*.}"
    db="tokenim_cluster_${suffix,,}"
    if ! out="$(pg_admin -c "CREATE DATABASE \"$db\"" 2>&1)"; then
        echo "cluster.sh: could not create database $db on $pg_server:" >&2
        echo "$out" | sed 's/^/  /' >&2
        echo "(is PostgreSQL running there, and may its user create databases? Or pass --postgres URL)" >&2
        exit 1
    fi
    created_db="$db"
    pg_url="$pg_server/$db"
    echo "created database $db on $pg_server"
elif $have_psql; then
    if ! out="$("$psql" -X -q -At -d "$pg_url" -c 'SELECT 1' </dev/null 2>&1)"; then
        echo "cluster.sh: cannot reach the database $(redact_url "$pg_url"):" >&2
        echo "$out" | sed 's/^/  /' >&2
        exit 1
    fi
fi
# Each node opens up to store.pool_size (16) connections.
if $have_psql && max_conn="$("$psql" -X -q -At -d "$pg_url" -c 'SHOW max_connections' </dev/null 2>/dev/null)" &&
    [[ "$max_conn" =~ ^[0-9]+$ ]]; then
    pool="${TOKENIM_STORE__POOL_SIZE:-16}"
    if [[ "$pool" =~ ^[0-9]+$ ]] && ((nodes * pool > max_conn)); then
        echo "note: $nodes nodes x store.pool_size $pool = $((nodes * pool)) connections, above the server's max_connections ($max_conn); set TOKENIM_STORE__POOL_SIZE lower under load"
    fi
fi

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
        TOKENIM_LISTEN | TOKENIM_DEV_MODE | TOKENIM_DEV_MODE_PUBLIC | TOKENIM_NODE_ID | TOKENIM_DRAIN_TIMEOUT) ;;
        TOKENIM_USER_ROLE | TOKENIM_TRUSTED_PROXIES) ;;
        TOKENIM_LOG__* | TOKENIM_AUTH__* | TOKENIM_ORIGINS__* | TOKENIM_LIMITS__* | TOKENIM_HISTORY__*) ;;
        TOKENIM_REDIS__* | TOKENIM_STORE__* | TOKENIM_API__* | TOKENIM_AUDIT__*) ;;
        TOKENIM_TLS__*)
            echo "note: $var is not passed to the nodes (this script talks plain HTTP to them)"
            unset "$var"
            ;;
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
# The server API's bootstrap admin key, made by the first node on an empty
# database (unless TOKENIM_API__ADMIN_KEY gives one): into the run's
# directory, not the caller's working directory.
: "${TOKENIM_API__BOOTSTRAP_KEY_FILE:=$dir/bootstrap-admin-key}"
export TOKENIM_LIMITS__MAX_CONNECTIONS_PER_IP TOKENIM_ORIGINS__ALLOW_MISSING TOKENIM_API__BOOTSTRAP_KEY_FILE

# --- Gateways ---------------------------------------------------------------
for ((i = 1; i <= nodes; i++)); do
    port=$((base_port + i - 1))
    TOKENIM_LISTEN="127.0.0.1:$port" \
        TOKENIM_NODE_ID="node$i" \
        TOKENIM_DEV_MODE="$dev" \
        TOKENIM_REDIS__URL="$redis_url" \
        TOKENIM_STORE__URL="$pg_url" \
        "${detach[@]}" "$bin" "${config_args[@]}" serve \
        </dev/null >"$dir/node$i.log" 2>&1 &
    pids+=("$!")
    names+=("node$i")
done

# Wait until every node reports ready (store opened and migrated, Redis
# reached, listening).
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
if [[ -n "$created_db" ]]; then
    if $keep_db; then
        echo "store:    $pg_url (created for this run; kept after it stops)"
    else
        echo "store:    $pg_url (created for this run; dropped when it stops)"
    fi
else
    echo "store:    $(redact_url "$pg_url") (given; left as it is)"
fi
key_file="$TOKENIM_API__BOOTSTRAP_KEY_FILE"
if [[ -f "$key_file" ]]; then
    echo "admin key: $key_file (created at first start; all scopes)"
    echo "          curl -u \"\$(tail -n1 $key_file)\" http://127.0.0.1:$base_port/v1/users"
elif [[ -n "${TOKENIM_API__ADMIN_KEY:-}" ]]; then
    echo "admin key: TOKENIM_API__ADMIN_KEY"
else
    echo "admin key: none created (the database had one already)"
fi
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
