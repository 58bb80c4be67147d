#!/usr/bin/env bash
# benches/compare.sh — side-by-side loopback benchmark: upstream direct vs veer vs nginx.
#
# Rows measured (same wrk parameters for each):
#   direct  wrk -> upstream nginx                        (the ceiling)
#   veer    wrk -> veer (1 worker, 90/10 weighted split) -> upstream
#   veer-nometrics  the same veer config with `[proxy] metrics = false`
#   nginx   wrk -> nginx proxy (1 worker, keepalive 64)  -> upstream
# Scenarios: keep-alive clients, then `Connection: close` clients (new TCP
# connection per request; proxy->upstream connections stay pooled).
#
# The two veer rows are measured ROUNDS times each, interleaved in ABBA order
# (on,off / off,on / ...), and report the mean; the line under each table
# gives the cost of metrics recording as veer/veer-nometrics (target >= 0.97).
#
# Usage:  benches/compare.sh [--build]
#   --build       run `cargo build --release` even if target/release/veer exists
# Env:    DURATION=10s CONNECTIONS=50 THREADS=1   (wrk -d / -c / -t)
#         WARMUP=2s                               (unmeasured run first; 0 = off)
#         PROXY_CPU=0 LOAD_CPU=1 UPSTREAM_CPU=0   (taskset cores, see lib.sh)
#         VEER_BIN=path/to/veer                   (default target/release/veer)
#         SCENARIOS="keepalive close"             (which tables to print)
#         ROUNDS=2                                (measured runs per veer row)
#
# Everything binds to 127.0.0.1 on fixed ports 18081-18089; the script fails
# if any of them is busy. Everything it starts is stopped on exit.
set -euo pipefail

# ---------------------------------------------------------------- parameters
LOG_TAG=compare
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ports, pinning, configs, helpers

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2s}"   # unmeasured wrk run before each measured one; 0 = none
SCENARIOS="${SCENARIOS:-keepalive close}"
ROUNDS="${ROUNDS:-2}"    # measured runs per veer row (interleaved, ABBA order)

BUILD=0
for arg in "$@"; do
    case "$arg" in
        --build) BUILD=1 ;;
        -h|--help) sed -n '2,26p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"

lib_tools
lib_veer_binary "$BUILD"
lib_check_ports "$PORT_BLUE" "$PORT_VEER" "$PORT_NGINX" "$PORT_GREEN" \
    "$PORT_VEER_NOM" "$PORT_VEER_NOM_ADMIN" "$PORT_VEER_ADMIN"
lib_workdir

# ---------------------------------------------------------------- start
start_upstream

write_nginx_proxy_conf
start nginx-proxy "$WORK/nginx-proxy/stderr.log" \
    "${ON_PROXY[@]}" "$NGINX" -p "$WORK/nginx-proxy" -c "$WORK/nginx-proxy/nginx.conf" -e "$WORK/nginx-proxy/error.log"
NGINX_PID="${PIDS[-1]}"
wait_http nginx-proxy "$PORT_NGINX" "$NGINX_PID" "$WORK/nginx-proxy/error.log"

# Two veer instances, identical but for ports, state dir and `metrics`.
# Both stay up for the whole run (pinned to the same core); the idle one costs
# nothing measurable.
UPSTREAM_WORKER="$(worker_pid "$UPSTREAM_PID")"
NGINX_WORKER="$(worker_pid "$NGINX_PID")"
CLK_TCK="$(getconf CLK_TCK)"

start_veer veer "$PORT_VEER" "$PORT_VEER_ADMIN" true
VEER_PID="$STARTED_PID"
start_veer veer-nometrics "$PORT_VEER_NOM" "$PORT_VEER_NOM_ADMIN" false
VEER_NOM_PID="$STARTED_PID"

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
SPLIT_VEER_NOM="$(split_check "$PORT_VEER_NOM")"

# ---------------------------------------------------------------- measure
# bench SCENARIO NAME PORT CPU_PID [RUN]: run wrk once, store
# "rps p50 p99 errors cpu_us_per_request" in RESULT. CPU is CPU_PID's
# utime+stime (all threads) over the measured run divided by wrk's request
# count: unlike requests/s it hardly depends on how much CPU other work on the
# box leaves to the proxy.
bench() {
    local scen="$1" name="$2" port="$3" cpu_pid="$4" run="${5:-1}"
    local out="$WORK/wrk-$scen-$name-$run.txt"
    local extra=()
    [ "$scen" = close ] && extra=(-H "Connection: close")
    # short unmeasured warm-up: fills connection pools, wakes up CPU frequency
    if [ "$WARMUP" != 0 ]; then
        "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" \
            "${extra[@]}" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    fi
    log "wrk [$scen] $name${5:+ (run $run)}: -t$THREADS -c$CONNECTIONS -d$DURATION"
    local t0; t0="$(cpu_ticks "$cpu_pid")"
    "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        "${extra[@]}" "http://127.0.0.1:$port/" >"$out" 2>&1 || {
        cat "$out" >&2; die "wrk failed against $name"; }
    local t1; t1="$(cpu_ticks "$cpu_pid")"
    wrk_parse "$out"
    [ -n "$W_RPS" ] || { cat "$out" >&2; die "could not parse wrk output for $name"; }
    local cpu
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="${W_REQS:-0}" \
        'BEGIN { printf "%.2f", (n > 0 ? t * 1e6 / hz / n : 0) }')
    RESULT="$W_RPS $W_P50 $W_P99 $W_ERRS $cpu"
    # a proxy that died under load must not go unnoticed
    local pid
    for pid in "$UPSTREAM_PID" "$NGINX_PID" "$VEER_PID" "$VEER_NOM_PID"; do
        kill -0 "$pid" 2>/dev/null || {
            tail -20 "$WORK/veer/veer.log" "$WORK/veer-nometrics/veer.log" >&2
            die "a server process ($pid) died during $name"; }
    done
}

# mean_results "rps p50 p99 errs cpu" ... -> mean rps/p50/p99/cpu, summed errors
mean_results() {
    printf '%s\n' "$@" | awk '{ r += $1; a += $2; b += $3; e += $4; c += $5; n++ }
        END { printf "%.2f %.3f %.3f %d %.2f", r / n, a / n, b / n, e, c / n }'
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"   # other work on the box skews results
declare -A R RUNS
for scen in $SCENARIOS; do
    case "$scen" in keepalive|close) ;; *) die "unknown scenario $scen" ;; esac
    bench "$scen" direct "$PORT_BLUE" "$UPSTREAM_WORKER";  R[$scen,direct]="$RESULT"
    # veer with and without metrics, interleaved in ABBA order
    # (on,off / off,on / on,off ...) so that slow drift on the box hits both
    # rows alike; each row reports the mean of its ROUNDS runs.
    on=() off=()
    for ((i = 1; i <= ROUNDS; i++)); do
        if ((i % 2)); then order="veer veer-nometrics"; else order="veer-nometrics veer"; fi
        for name in $order; do
            if [ "$name" = veer ]; then
                bench "$scen" veer "$PORT_VEER" "$VEER_PID" "$i"; on+=("$RESULT")
            else
                bench "$scen" veer-nometrics "$PORT_VEER_NOM" "$VEER_NOM_PID" "$i"; off+=("$RESULT")
            fi
        done
    done
    R[$scen,veer]="$(mean_results "${on[@]}")"
    R[$scen,veer-nometrics]="$(mean_results "${off[@]}")"
    # "rps/cpu" per run, for the line under the table
    RUNS[$scen,veer]="$(printf '%s\n' "${on[@]}" | awk '{printf "%s%.0f/%s", (NR > 1 ? " " : ""), $1, $5}')"
    RUNS[$scen,veer-nometrics]="$(printf '%s\n' "${off[@]}" | awk '{printf "%s%.0f/%s", (NR > 1 ? " " : ""), $1, $5}')"
    bench "$scen" nginx  "$PORT_NGINX" "$NGINX_WORKER"; R[$scen,nginx]="$RESULT"
done

# ---------------------------------------------------------------- report
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP); pinning: $PINNING;" \
     "$(nproc) cores; loadavg before: $LOAD_BEFORE"
echo "veer: workers=1, route weights blue=90 green=10 (check: $SPLIT_VEER; nometrics: $SPLIT_VEER_NOM);" \
     "veer rows: mean of $ROUNDS interleaved runs;" \
     "nginx: worker_processes 1, keepalive 64, weights 9:1 (check: $SPLIT_NGINX)"
for scen in $SCENARIOS; do
    echo
    if [ "$scen" = keepalive ]; then
        echo "### keep-alive clients"
    else
        echo "### Connection: close (new client connection per request)"
    fi
    echo
    echo "| target | requests/s | p50 (ms) | p99 (ms) | errors | veer ratio | server CPU µs/req |"
    echo "|---|---:|---:|---:|---:|---:|---:|"
    read -r veer_rps _ <<<"${R[$scen,veer]}"
    for name in direct veer veer-nometrics nginx; do
        read -r rps p50 p99 errs cpu <<<"${R[$scen,$name]}"
        ratio=$(awk -v a="$veer_rps" -v b="$rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        printf '| %s | %.0f | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$errs" "$ratio" "$cpu"
    done
    echo
    read -r _ _ _ _ on_cpu <<<"${R[$scen,veer]}"
    read -r nom_rps _ _ _ nom_cpu <<<"${R[$scen,veer-nometrics]}"
    cost=$(awk -v a="$veer_rps" -v b="$nom_rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    cpu_cost=$(awk -v a="$nom_cpu" -v b="$on_cpu" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
    echo "metrics cost: veer/veer-nometrics = $cost (target ≥ 0.97)"
    echo "  by CPU per request: veer-nometrics/veer = $cpu_cost;" \
         "runs (req/s / CPU µs/req): veer ${RUNS[$scen,veer]}; veer-nometrics ${RUNS[$scen,veer-nometrics]}"
done
echo
veer_log_errors veer
veer_log_errors veer-nometrics
