#!/usr/bin/env bash
# benches/compare.sh — side-by-side loopback benchmark: upstream direct vs veer vs nginx.
#
# Rows measured (same wrk parameters for each):
#   direct  wrk -> upstream nginx                        (the ceiling)
#   veer    wrk -> veer (1 worker, 90/10 weighted split) -> upstream
#   nginx   wrk -> nginx proxy (1 worker, keepalive 64)  -> upstream
# Scenarios: keep-alive clients, then `Connection: close` clients (new TCP
# connection per request; proxy->upstream connections stay pooled).
#
# Usage:  benches/compare.sh [--build]
#   --build       run `cargo build --release` even if target/release/veer exists
# Env:    DURATION=10s CONNECTIONS=50 THREADS=1   (wrk -d / -c / -t)
#         WARMUP=2s                               (unmeasured run first; 0 = off)
#         PROXY_CPU=0 LOAD_CPU=1 UPSTREAM_CPU=0   (taskset cores, see below)
#         VEER_BIN=path/to/veer                   (default target/release/veer)
#         SCENARIOS="keepalive close"             (which tables to print)
#
# Everything binds to 127.0.0.1 on fixed ports 18081-18089; the script fails
# if any of them is busy. Everything it starts is stopped on exit.
set -euo pipefail

# ---------------------------------------------------------------- parameters
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VEER="${VEER_BIN:-$REPO/target/release/veer}"

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2s}"   # unmeasured wrk run before each measured one; 0 = none
SCENARIOS="${SCENARIOS:-keepalive close}"

# Core pinning (the bench box has 2 cores). The proxy under test gets core 0,
# the load generator (wrk) gets core 1 so that it never steals CPU from the
# proxy. The upstream nginx (1 worker) shares core 0 with the proxy: wrk then
# has a core of its own and is never the bottleneck, and both proxies pay the
# same upstream cost on their core, so the veer/nginx comparison stays fair.
# (In the `direct` row the upstream has core 0 to itself.)
PROXY_CPU="${PROXY_CPU:-0}"
LOAD_CPU="${LOAD_CPU:-1}"
UPSTREAM_CPU="${UPSTREAM_CPU:-0}"

# Fixed loopback ports.
PORT_BLUE=18081      # upstream nginx, server block "blue"
PORT_GREEN=18084     # upstream nginx, server block "green" (same worker)
PORT_VEER=18082      # veer listener
PORT_NGINX=18083     # nginx reverse proxy
PORT_VEER_ADMIN=18089  # veer admin API (kept off the default 9901)
ALL_PORTS=("$PORT_BLUE" "$PORT_VEER" "$PORT_NGINX" "$PORT_GREEN" "$PORT_VEER_ADMIN")

BUILD=0
for arg in "$@"; do
    case "$arg" in
        --build) BUILD=1 ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done

log() { echo "[compare] $*" >&2; }
die() { echo "[compare] error: $*" >&2; exit 1; }

# ---------------------------------------------------------------- tools
# Install nginx and wrk from Debian if absent (apt-get update at most once).
need=()
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
command -v wrk   >/dev/null 2>&1 || need+=(wrk)
command -v curl  >/dev/null 2>&1 || need+=(curl)
if [ "${#need[@]}" -gt 0 ]; then
    log "installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

# Command prefixes for pinning (plain arrays, not functions, so that `cmd &`
# execs straight into the server and $! is the server's own pid).
if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
    ON_PROXY=(taskset -c "$PROXY_CPU")
    ON_UPSTREAM=(taskset -c "$UPSTREAM_CPU")
    ON_LOAD=(taskset -c "$LOAD_CPU")
    PINNING="proxy=cpu$PROXY_CPU upstream=cpu$UPSTREAM_CPU wrk=cpu$LOAD_CPU"
else
    ON_PROXY=(env) ON_UPSTREAM=(env) ON_LOAD=(env)
    PINNING="none (taskset missing or 1 core)"
fi

# ---------------------------------------------------------------- veer binary
if [ "$BUILD" = 1 ] || [ ! -x "$VEER" ]; then
    log "cargo build --release"
    (cd "$REPO" && cargo build --release)
fi
[ -x "$VEER" ] || die "$VEER not found after build"

# ---------------------------------------------------------------- ports
for p in "${ALL_PORTS[@]}"; do
    if ss -Htln "sport = :$p" | grep -q .; then
        die "port $p is already in use (needed: ${ALL_PORTS[*]}); stop whatever listens there"
    fi
done

# ---------------------------------------------------------------- cleanup
WORK="$(mktemp -d -t veer-bench.XXXXXX)"
chmod 755 "$WORK"   # nginx workers run as nobody when started by root
cd "$WORK"          # nothing relative (e.g. veer's state dir) lands in the repo
PIDS=()
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------- configs
# Shared nginx boilerplate: foreground master, logs and temp files in $WORK.
nginx_common() {  # $1 = instance dir
    cat <<EOF
daemon off;
master_process on;
worker_processes 1;
pid $1/nginx.pid;
error_log $1/error.log warn;
events { worker_connections 4096; }
EOF
}
nginx_http_common() {  # $1 = instance dir
    cat <<EOF
    access_log off;
    client_body_temp_path $1/client_body;
    proxy_temp_path $1/proxy;
    fastcgi_temp_path $1/fastcgi;
    uwsgi_temp_path $1/uwsgi;
    scgi_temp_path $1/scgi;
    keepalive_requests 100000;
    keepalive_timeout 60s;
EOF
}

# Upstream: one nginx, ONE worker, two server blocks (blue/green) answering a
# fixed 6-byte body over keep-alive.
mkdir -p "$WORK/upstream"
{
    nginx_common "$WORK/upstream"
    echo "http {"
    nginx_http_common "$WORK/upstream"
    for side in "blue $PORT_BLUE" "green $PORT_GREEN"; do
        set -- $side
        cat <<EOF
    server {
        listen 127.0.0.1:$2;
        add_header X-Side $1;   # lets the split check below see where a request went
        location / { default_type text/plain; return 200 "hello\n"; }
    }
EOF
    done
    echo "}"
} >"$WORK/upstream/nginx.conf"

# nginx as reverse proxy: one worker, pooled HTTP/1.1 upstream connections,
# and the same 90/10 split as veer (weights 9:1 over the two server blocks).
mkdir -p "$WORK/nginx-proxy"
{
    nginx_common "$WORK/nginx-proxy"
    echo "http {"
    nginx_http_common "$WORK/nginx-proxy"
    cat <<EOF
    upstream app {
        server 127.0.0.1:$PORT_BLUE weight=9;
        server 127.0.0.1:$PORT_GREEN weight=1;
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$PORT_NGINX;
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
} >"$WORK/nginx-proxy/nginx.conf"

# veer: one worker, one listener, two pools, a weighted 90/10 route.
mkdir -p "$WORK/veer"
cat >"$WORK/veer/veer.toml" <<EOF
[proxy]
workers = 1
state_dir = "$WORK/veer/state"

[admin]
listen = "127.0.0.1:$PORT_VEER_ADMIN"

[[listener]]
name = "public"
listen = "127.0.0.1:$PORT_VEER"

[[pool]]
name = "blue"
endpoints = ["127.0.0.1:$PORT_BLUE"]

[[pool]]
name = "green"
endpoints = ["127.0.0.1:$PORT_GREEN"]

[[route]]
name = "bench"
path_prefix = "/"
pool = "blue"
weights = { blue = 90, green = 10 }
EOF

# ---------------------------------------------------------------- start
# start NAME LOGFILE cmd... : start in background, remember the pid.
start() {
    local name="$1" logf="$2"; shift 2
    "$@" >"$logf" 2>&1 &
    PIDS+=("$!")
    log "started $name (pid $!)"
}

# wait_http NAME PORT PID LOGFILE: poll until GET / answers 200, at most 10 s.
wait_http() {
    local name="$1" port="$2" pid="$3" logf="$4"
    local deadline=$((SECONDS + 10))
    while :; do
        if curl -fsS -o /dev/null --max-time 1 "http://127.0.0.1:$port/" 2>/dev/null; then
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "---- $name log ($logf) ----" >&2; tail -20 "$logf" >&2 || true
            die "$name exited before answering on port $port"
        fi
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "---- $name log ($logf) ----" >&2; tail -20 "$logf" >&2 || true
            die "$name did not answer 200 on 127.0.0.1:$port within 10s"
        fi
        sleep 0.1
    done
}

start upstream "$WORK/upstream/stderr.log" \
    "${ON_UPSTREAM[@]}" "$NGINX" -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" -e "$WORK/upstream/error.log"
UPSTREAM_PID="${PIDS[-1]}"
wait_http upstream-blue "$PORT_BLUE" "$UPSTREAM_PID" "$WORK/upstream/error.log"
wait_http upstream-green "$PORT_GREEN" "$UPSTREAM_PID" "$WORK/upstream/error.log"

start nginx-proxy "$WORK/nginx-proxy/stderr.log" \
    "${ON_PROXY[@]}" "$NGINX" -p "$WORK/nginx-proxy" -c "$WORK/nginx-proxy/nginx.conf" -e "$WORK/nginx-proxy/error.log"
NGINX_PID="${PIDS[-1]}"
wait_http nginx-proxy "$PORT_NGINX" "$NGINX_PID" "$WORK/nginx-proxy/error.log"

VEER_LOG="$WORK/veer/veer.log"
start veer "$VEER_LOG" \
    "${ON_PROXY[@]}" env VEER_LOG="${VEER_LOG_LEVEL:-warn}" "$VEER" run -c "$WORK/veer/veer.toml"
VEER_PID="${PIDS[-1]}"
wait_http veer "$PORT_VEER" "$VEER_PID" "$VEER_LOG"

# Sanity check: both proxies really split ~90/10 (200 requests, one
# keep-alive connection); printed under the tables.
split_check() {  # PORT -> "green N/200"
    local urls=() i
    for i in $(seq 200); do urls+=("http://127.0.0.1:$1/"); done
    curl -s -o /dev/null -D - "${urls[@]}" | tr -d '\r' |
        awk 'tolower($1) == "x-side:" { n++; if ($2 == "green") g++ }
             END { printf "green %d/%d", g, n }'
}
SPLIT_VEER="$(split_check "$PORT_VEER")"
SPLIT_NGINX="$(split_check "$PORT_NGINX")"

# ---------------------------------------------------------------- measure
# to_ms "1.23ms" -> 1.230 ; accepts us/ms/s as printed by wrk.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.3f", n }'
}

# bench SCENARIO NAME PORT: run wrk once, store "rps p50 p99 errors" in RESULT.
bench() {
    local scen="$1" name="$2" port="$3"
    local out="$WORK/wrk-$scen-$name.txt"
    local extra=()
    [ "$scen" = close ] && extra=(-H "Connection: close")
    # short unmeasured warm-up: fills connection pools, wakes up CPU frequency
    if [ "$WARMUP" != 0 ]; then
        "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" \
            "${extra[@]}" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    fi
    log "wrk [$scen] $name: -t$THREADS -c$CONNECTIONS -d$DURATION"
    "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        "${extra[@]}" "http://127.0.0.1:$port/" >"$out" 2>&1 || {
        cat "$out" >&2; die "wrk failed against $name"; }
    local rps p50 p99 non2xx sock
    rps=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    # "Socket errors: connect 0, read 0, write 0, timeout 0" -> sum
    sock=$(awk -F'[ ,]+' '/Socket errors:/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+$/) s+=$i; print s}' "$out")
    [ -n "$rps" ] || { cat "$out" >&2; die "could not parse wrk output for $name"; }
    RESULT="$rps $(to_ms "${p50:-0us}") $(to_ms "${p99:-0us}") $(( ${non2xx:-0} + ${sock:-0} ))"
    # a proxy that died under load must not go unnoticed
    for pid in "$UPSTREAM_PID" "$NGINX_PID" "$VEER_PID"; do
        kill -0 "$pid" 2>/dev/null || { tail -20 "$VEER_LOG" >&2; die "a server process ($pid) died during $name"; }
    done
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"   # other work on the box skews results
declare -A R
for scen in $SCENARIOS; do
    case "$scen" in keepalive|close) ;; *) die "unknown scenario $scen" ;; esac
    bench "$scen" direct "$PORT_BLUE";  R[$scen,direct]="$RESULT"
    bench "$scen" veer   "$PORT_VEER";  R[$scen,veer]="$RESULT"
    bench "$scen" nginx  "$PORT_NGINX"; R[$scen,nginx]="$RESULT"
done

# ---------------------------------------------------------------- report
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP); pinning: $PINNING;" \
     "$(nproc) cores; loadavg before: $LOAD_BEFORE"
echo "veer: workers=1, route weights blue=90 green=10 (check: $SPLIT_VEER);" \
     "nginx: worker_processes 1, keepalive 64, weights 9:1 (check: $SPLIT_NGINX)"
for scen in $SCENARIOS; do
    echo
    if [ "$scen" = keepalive ]; then
        echo "### keep-alive clients"
    else
        echo "### Connection: close (new client connection per request)"
    fi
    echo
    echo "| target | requests/s | p50 (ms) | p99 (ms) | errors | veer ratio |"
    echo "|---|---:|---:|---:|---:|---:|"
    read -r veer_rps _ <<<"${R[$scen,veer]}"
    for name in direct veer nginx; do
        read -r rps p50 p99 errs <<<"${R[$scen,$name]}"
        ratio=$(awk -v a="$veer_rps" -v b="$rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        printf '| %s | %.0f | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$errs" "$ratio"
    done
done
echo
if [ -s "$VEER_LOG" ] && grep -qiE 'error|panic' "$VEER_LOG"; then
    log "veer logged errors (first lines of $VEER_LOG):"
    grep -iE 'error|panic' "$VEER_LOG" | head -5 >&2
fi
