# benches/lib.sh — helpers shared by compare.sh and soak.sh. Source it, don't run it.
#
# Provides: ports, core pinning, tool install, veer binary check, a temp work
# dir with cleanup of every process started via `start`, config writers for
# the upstream nginx, the nginx proxy and veer, `wait_http`, `to_ms`, and
# `wrk_parse`. The caller sets LOG_TAG and `set -euo pipefail` first.

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VEER="${VEER_BIN:-$REPO/target/release/veer}"
LOG_TAG="${LOG_TAG:-bench}"

# Fixed loopback ports (all on 127.0.0.1, range 18081-18091).
PORT_BLUE=18081        # upstream nginx, server block "blue"
PORT_VEER=18082        # veer listener (metrics on)
PORT_NGINX=18083       # nginx reverse proxy
PORT_GREEN=18084       # upstream nginx, server block "green" (same worker)
PORT_VEER_NOM=18085    # second veer listener (metrics = false)
PORT_VEER_NOM_ADMIN=18088  # its admin API
PORT_VEER_ADMIN=18089  # veer admin API (kept off the default 9901)
PORT_HAPROXY=18086     # haproxy reverse proxy (HTTP/1.1, and h2c by preface)
PORT_NGINX_H2=18087    # nginx reverse proxy, h2c listener (`listen ... http2`)
PORT_UPSTREAM_STATUS=18090  # upstream nginx stub_status (accepted connections, requests)
PORT_FLOOR=18091       # relay_floor: a byte relay, no HTTP (the floor under any proxy)
# (tls.sh reuses 18086/18087 for its own TLS listeners; never run both at once)

# Core pinning (the bench box has 2 cores). The proxy under test gets core 0,
# the load generator (wrk) gets core 1 so that it never steals CPU from the
# proxy. The upstream nginx (1 worker) shares core 0 with the proxy: wrk then
# has a core of its own and is never the bottleneck, and both proxies pay the
# same upstream cost on their core, so the veer/nginx comparison stays fair.
# (In the `direct` row the upstream has core 0 to itself.)
PROXY_CPU="${PROXY_CPU:-0}"
# Worker count of every proxy under test (veer workers, nginx
# worker_processes, haproxy nbthread); the upstream nginx keeps one.
WORKERS="${WORKERS:-1}"
LOAD_CPU="${LOAD_CPU:-1}"
UPSTREAM_CPU="${UPSTREAM_CPU:-0}"

log() { echo "[$LOG_TAG] $*" >&2; }
die() { echo "[$LOG_TAG] error: $*" >&2; exit 1; }

# Install nginx, wrk, curl from Debian if absent (apt-get update at most once).
lib_tools() {
    local need=()
    command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
    command -v wrk   >/dev/null 2>&1 || need+=(wrk)
    command -v curl  >/dev/null 2>&1 || need+=(curl)
    if [ "${#need[@]}" -gt 0 ]; then
        log "installing ${need[*]}"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
    fi
    NGINX="$(command -v nginx || echo /usr/sbin/nginx)"

    # Command prefixes for pinning (plain arrays, not functions, so that
    # `cmd &` execs straight into the server and $! is the server's own pid).
    if command -v taskset >/dev/null 2>&1 && [ "$(nproc)" -ge 2 ]; then
        ON_PROXY=(taskset -c "$PROXY_CPU")
        ON_UPSTREAM=(taskset -c "$UPSTREAM_CPU")
        ON_LOAD=(taskset -c "$LOAD_CPU")
        PINNING="proxy=cpu$PROXY_CPU upstream=cpu$UPSTREAM_CPU wrk=cpu$LOAD_CPU"
    else
        ON_PROXY=(env) ON_UPSTREAM=(env) ON_LOAD=(env)
        PINNING="none (taskset missing or 1 core)"
    fi
}

# lib_tools_more CMD:PACKAGE...: install the Debian PACKAGE of each missing CMD
# (e.g. haproxy:haproxy h2load:nghttp2-client). Never fatal: the caller checks
# `command -v` afterwards and skips what is still missing.
lib_tools_more() {
    local need=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
    done
    if [ "${#need[@]}" -gt 0 ]; then
        log "installing ${need[*]}"
        { apt-get update -qq &&
          DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null; } ||
            log "could not install ${need[*]} (rows needing them are skipped)"
    fi
}

# lib_veer_binary BUILD(0|1): build if asked or missing.
lib_veer_binary() {
    if [ "$1" = 1 ] || [ ! -x "$VEER" ]; then
        log "cargo build --release"
        (cd "$REPO" && cargo build --release)
    fi
    [ -x "$VEER" ] || die "$VEER not found after build"
}

# lib_floor_binary BUILD(0|1): the relay_floor example of this checkout
# (examples/relay_floor.rs), built if asked or missing; sets FLOOR.
lib_floor_binary() {
    FLOOR="$REPO/target/release/examples/relay_floor"
    if [ "$1" = 1 ] || [ ! -x "$FLOOR" ]; then
        log "cargo build --release --example relay_floor"
        (cd "$REPO" && cargo build --release --example relay_floor)
    fi
    [ -x "$FLOOR" ] || die "$FLOOR not found after build"
}

# lib_check_ports PORT...: fail if any is listening already.
lib_check_ports() {
    local p
    for p in "$@"; do
        if ss -Htln "sport = :$p" | grep -q .; then
            die "port $p is already in use (needed: $*); stop whatever listens there"
        fi
    done
}

# lib_workdir: temp dir (cwd from now on), EXIT trap stops everything in PIDS.
PIDS=()
lib_workdir() {
    WORK="$(mktemp -d -t veer-bench.XXXXXX)"
    chmod 755 "$WORK"   # nginx workers run as nobody when started by root
    cd "$WORK"          # nothing relative (e.g. veer's state dir) lands in the repo
    trap lib_cleanup EXIT
    trap 'exit 130' INT TERM
}
lib_cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}

# ---------------------------------------------------------------- configs
# Shared nginx boilerplate: foreground master, logs and temp files in DIR.
nginx_common() {  # $1 = instance dir, $2 = worker processes (default 1)
    cat <<EOF
daemon off;
master_process on;
worker_processes ${2:-1};
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
# fixed 6-byte body over keep-alive, and /64k: a static 65536-byte file
# (sendfile on). Writes $WORK/upstream/nginx.conf and $WORK/upstream/64k.bin.
write_upstream_conf() {
    mkdir -p "$WORK/upstream"
    head -c 65536 /dev/zero | tr '\0' 'x' >"$WORK/upstream/64k.bin"
    {
        nginx_common "$WORK/upstream"
        echo "http {"
        nginx_http_common "$WORK/upstream"
        local side
        cat <<EOF
    server {   # counters for the upstream connection reuse column
        listen 127.0.0.1:$PORT_UPSTREAM_STATUS;
        location = /status { stub_status; }
    }
EOF
        for side in "blue $PORT_BLUE" "green $PORT_GREEN"; do
            set -- $side
            cat <<EOF
    server {
        listen 127.0.0.1:$2;
        add_header X-Side $1;   # lets the split check see where a request went
        location / { default_type text/plain; return 200 "hello\n"; }
        location = /64k { default_type application/octet-stream; sendfile on; alias $WORK/upstream/64k.bin; }
    }
EOF
        done
        echo "}"
    } >"$WORK/upstream/nginx.conf"
}

# nginx as reverse proxy: one worker, pooled HTTP/1.1 upstream connections,
# and the same 90/10 split as veer (weights 9:1). Writes $WORK/nginx-proxy/nginx.conf.
write_nginx_proxy_conf() {
    mkdir -p "$WORK/nginx-proxy"
    {
        nginx_common "$WORK/nginx-proxy" "$WORKERS"
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
        listen 127.0.0.1:$PORT_NGINX_H2 http2;   # h2c, prior knowledge only
        location / {
            proxy_pass http://app;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
EOF
    } >"$WORK/nginx-proxy/nginx.conf"
}

# HAProxy as reverse proxy: one thread, no logging (no `log` line), keep-alive
# both sides, `http-reuse always`, the same 9:1 split (weighted round robin).
# The plain bind also serves h2c: HAProxy switches a connection to HTTP/2
# when it starts with the h2 preface. Writes $WORK/haproxy/haproxy.cfg.
write_haproxy_conf() {
    mkdir -p "$WORK/haproxy"
    cat >"$WORK/haproxy/haproxy.cfg" <<EOF
global
    nbthread $WORKERS
    maxconn 4096   # like nginx worker_connections; needs ~2x fds

defaults
    mode http
    option http-keep-alive
    http-reuse always
    timeout connect 5s
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s

frontend public
    bind 127.0.0.1:$PORT_HAPROXY
    default_backend app

backend app
    balance roundrobin
    server blue 127.0.0.1:$PORT_BLUE weight 9
    server green 127.0.0.1:$PORT_GREEN weight 1
EOF
}

# write_veer_conf DIR PORT ADMIN_PORT METRICS(true|false): one worker, one
# listener, two pools, a weighted 90/10 route. Writes DIR/veer.toml. Two
# instances differ only in ports, state dir and the metrics switch.
write_veer_conf() {
    local dir="$1" port="$2" admin="$3" metrics="$4"
    mkdir -p "$dir"
    cat >"$dir/veer.toml" <<EOF
[proxy]
workers = $WORKERS
state_dir = "$dir/state"
metrics = $metrics

[admin]
listen = "127.0.0.1:$admin"

[[listener]]
name = "public"
listen = "127.0.0.1:$port"

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
}

# ---------------------------------------------------------------- processes
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

# start_upstream: writes the config, starts it, sets UPSTREAM_PID.
start_upstream() {
    write_upstream_conf
    start upstream "$WORK/upstream/stderr.log" \
        "${ON_UPSTREAM[@]}" "$NGINX" -p "$WORK/upstream" -c "$WORK/upstream/nginx.conf" -e "$WORK/upstream/error.log"
    UPSTREAM_PID="${PIDS[-1]}"
    wait_http upstream-blue "$PORT_BLUE" "$UPSTREAM_PID" "$WORK/upstream/error.log"
    wait_http upstream-green "$PORT_GREEN" "$UPSTREAM_PID" "$WORK/upstream/error.log"
}

# start_veer NAME PORT ADMIN_PORT METRICS: config in $WORK/NAME, log in
# $WORK/NAME/veer.log; sets STARTED_PID.
start_veer() {
    local name="$1" port="$2" admin="$3" metrics="$4"
    write_veer_conf "$WORK/$name" "$port" "$admin" "$metrics"
    start "$name" "$WORK/$name/veer.log" \
        "${ON_PROXY[@]}" env VEER_LOG="${VEER_LOG_LEVEL:-warn}" "$VEER" run -c "$WORK/$name/veer.toml"
    STARTED_PID="${PIDS[-1]}"
    wait_http "$name" "$port" "$STARTED_PID" "$WORK/$name/veer.log"
}

# veer_log_errors NAME: print the first error/panic lines of a veer log, if any.
veer_log_errors() {
    local logf="$WORK/$1/veer.log"
    if [ -s "$logf" ] && grep -qiE 'error|panic' "$logf"; then
        log "$1 logged errors (first lines of $logf):"
        grep -iE 'error|panic' "$logf" | head -5 >&2
    fi
}

# cpu_ticks "PID..." : utime + stime of all their threads, in clock ticks.
cpu_ticks() {
    local pid
    # fields after the ")" that ends the comm field: utime = 12th, stime = 13th
    for pid in $*; do sed 's/.*) //' "/proc/$pid/stat"; done | awk '{ t += $12 + $13 } END { print t }'
}

# worker_pid MASTER_PID: the workers of an nginx master ("PID PID..."), else the master.
worker_pid() {
    local kids
    kids="$(cat /proc/"$1"/task/*/children 2>/dev/null | tr ' ' '\n' | grep . | tr '\n' ' ' || true)"
    kids="${kids% }"
    echo "${kids:-$1}"
}

# upstream_counts: "ACCEPTED_CONNECTIONS REQUESTS" of the upstream nginx
# (stub_status; both include this status request itself).
upstream_counts() {
    curl -fsS --max-time 2 "http://127.0.0.1:$PORT_UPSTREAM_STATUS/status" |
        awk 'prev ~ /accepts handled requests/ { print $1, $3 } { prev = $0 }'
}

# reuse_pct "A0 R0" "A1 R1": share of upstream requests (between two
# upstream_counts) that went over an already open connection, in percent.
# The later status request's own connection and request are taken out.
reuse_pct() {
    local a0 r0 a1 r1
    read -r a0 r0 <<<"$1"; read -r a1 r1 <<<"$2"
    awk -v a=$((a1 - a0 - 1)) -v r=$((r1 - r0 - 1)) \
        'BEGIN { if (r > 0) printf "%.3f", 100 * (1 - a / r); else print "n/a" }'
}

# ---------------------------------------------------------------- wrk output
# to_ms "1.23ms" -> 1.230 ; accepts us/ms/s/m as printed by wrk.
to_ms() {
    awk -v v="$1" 'BEGIN {
        n = v; sub(/[a-z]+$/, "", n); u = v; sub(/^[0-9.]+/, "", u);
        if (u == "us") n /= 1000; else if (u == "s") n *= 1000; else if (u == "m") n *= 60000;
        printf "%.3f", n }'
}

# wrk_parse FILE: sets W_RPS W_P50 W_P99 (ms) W_REQS (completed requests)
# W_ERRS (non-2xx/3xx + socket errors). W_RPS empty if unparsable.
wrk_parse() {
    local out="$1" p50 p99 non2xx sock
    W_RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    W_REQS=$(awk '/ requests in / {print $1}' "$out")
    p50=$(awk '$1 == "50%" {print $2}' "$out")
    p99=$(awk '$1 == "99%" {print $2}' "$out")
    non2xx=$(awk '/Non-2xx or 3xx responses:/ {print $NF}' "$out")
    # "Socket errors: connect 0, read 0, write 0, timeout 0" -> sum
    sock=$(awk -F'[ ,]+' '/Socket errors:/ {s=0; for (i=1;i<=NF;i++) if ($i ~ /^[0-9]+$/) s+=$i; print s}' "$out")
    W_P50=$(to_ms "${p50:-0us}")
    W_P99=$(to_ms "${p99:-0us}")
    W_ERRS=$(( ${non2xx:-0} + ${sock:-0} ))
}
