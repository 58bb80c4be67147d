#!/usr/bin/env bash
# benches/compare.sh — side-by-side loopback benchmark: upstream direct vs veer
# vs nginx vs haproxy.
#
# Rows measured (same wrk parameters for each):
#   direct  wrk -> upstream nginx                        (the ceiling)
#   veer    wrk -> veer (1 worker, 90/10 weighted split) -> upstream
#   veer-nometrics  the same veer config with `[proxy] metrics = false`
#   nginx   wrk -> nginx proxy (1 worker, keepalive 64)  -> upstream
#   haproxy wrk -> haproxy (nbthread WORKERS, http-reuse always, 9:1) -> upstream
#   floor   wrk -> relay_floor (examples/relay_floor.rs) -> upstream: copies
#           bytes, parses nothing, one upstream connection per client
#           connection. No proxy can beat it here (keepalive, body64k,
#           openloop; not in close, where it cannot pool).
# Scenarios: keepalive (keep-alive clients), close (`Connection: close`, new
# TCP connection per request; proxy->upstream connections stay pooled),
# body64k (keep-alive, GET /64k: a 65536-byte static file), h2c (h2load, HTTP/2
# prior knowledge, -c CONNECTIONS -m H2_STREAMS, against veer, nginx, haproxy;
# upstream legs stay HTTP/1.1), openloop (oha at a fixed RATE with latency
# correction: latency at a load every target carries, and veer's added
# latency over direct).
#
# The two veer rows are measured ROUNDS times each, interleaved in ABBA order
# (on,off / off,on / ...), and report the mean; the line under each table
# gives the cost of metrics recording as veer/veer-nometrics (target >= 0.97).
#
# Usage:  benches/compare.sh [--build]
#   --build       run `cargo build --release` (and the relay_floor example) even if built
# Env:    DURATION=10s CONNECTIONS=50 THREADS=1   (wrk -d / -c / -t)
#         WARMUP=2s                               (unmeasured run first; 0 = off)
#         PROXY_CPU=0 LOAD_CPU=1 UPSTREAM_CPU=0   (taskset cores, see lib.sh)
#         WORKERS=1                               (veer workers, nginx worker_processes, haproxy nbthread)
#         VEER_BIN=path/to/veer                   (default target/release/veer)
#         SCENARIOS="keepalive close body64k h2c openloop" (which tables to print)
#         RATE=5000 OPEN_CONNECTIONS=50           (openloop: oha -q / -c)
#         H2_STREAMS=10                           (h2load -m)
#         ROUNDS=2                                (measured runs per veer row)
#
# Everything binds to 127.0.0.1 on fixed ports 18081-18091; the script fails
# if any of them is busy. Everything it starts is stopped on exit.
set -euo pipefail

# ---------------------------------------------------------------- parameters
LOG_TAG=compare
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ports, pinning, configs, helpers

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
WARMUP="${WARMUP:-2s}"   # unmeasured wrk run before each measured one; 0 = none
SCENARIOS="${SCENARIOS:-keepalive close body64k h2c openloop}"
RATE="${RATE:-5000}"
OPEN_CONNECTIONS="${OPEN_CONNECTIONS:-50}"
H2_STREAMS="${H2_STREAMS:-10}"
ROUNDS="${ROUNDS:-2}"    # measured runs per veer row (interleaved, ABBA order)

BUILD=0
for arg in "$@"; do
    case "$arg" in
        --build) BUILD=1 ;;
        -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done
[[ "$ROUNDS" =~ ^[1-9][0-9]*$ ]] || die "ROUNDS must be a positive integer"

lib_tools
lib_tools_more haproxy:haproxy h2load:nghttp2-client
HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
[ -x "$HAPROXY" ] || HAPROXY=""
H2LOAD="$(command -v h2load || true)"
OHA="$(command -v oha || true)"
if [ -z "$OHA" ] && [[ " $SCENARIOS " == *" openloop "* ]]; then
    log "installing oha from crates.io for the openloop table (cargo install, ~5 min once)"
    cargo install oha --locked --quiet >&2 || log "could not install oha (openloop skipped)"
    OHA="$(command -v oha || { [ -x "$HOME/.cargo/bin/oha" ] && echo "$HOME/.cargo/bin/oha"; } || true)"
fi
lib_veer_binary "$BUILD"
lib_floor_binary "$BUILD"
lib_check_ports "$PORT_BLUE" "$PORT_UPSTREAM_STATUS" "$PORT_FLOOR" "$PORT_VEER" "$PORT_NGINX" "$PORT_GREEN" \
    "$PORT_VEER_NOM" "$PORT_VEER_NOM_ADMIN" "$PORT_VEER_ADMIN" \
    "$PORT_HAPROXY" "$PORT_NGINX_H2"
lib_workdir

# ---------------------------------------------------------------- start
start_upstream

write_nginx_proxy_conf
start nginx-proxy "$WORK/nginx-proxy/stderr.log" \
    "${ON_PROXY[@]}" "$NGINX" -p "$WORK/nginx-proxy" -c "$WORK/nginx-proxy/nginx.conf" -e "$WORK/nginx-proxy/error.log"
NGINX_PID="${PIDS[-1]}"
wait_http nginx-proxy "$PORT_NGINX" "$NGINX_PID" "$WORK/nginx-proxy/error.log"

HAPROXY_PID=""
if [ -n "$HAPROXY" ]; then
    write_haproxy_conf
    # -db: foreground, no daemon; the config has no `log` line: logging off
    start haproxy "$WORK/haproxy/stderr.log" \
        "${ON_PROXY[@]}" "$HAPROXY" -db -f "$WORK/haproxy/haproxy.cfg"
    HAPROXY_PID="${PIDS[-1]}"
    wait_http haproxy "$PORT_HAPROXY" "$HAPROXY_PID" "$WORK/haproxy/stderr.log"
else
    log "haproxy not available: haproxy rows skipped"
fi

# The floor: a byte relay on WORKERS current-thread runtimes (the flavour of
# veer's workers), straight to the blue upstream.
start floor "$WORK/floor.log" "${ON_PROXY[@]}" "$FLOOR" "127.0.0.1:$PORT_FLOOR" "127.0.0.1:$PORT_BLUE" "$WORKERS"
FLOOR_PID="${PIDS[-1]}"
wait_http floor "$PORT_FLOOR" "$FLOOR_PID" "$WORK/floor.log"

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
SPLIT_HAPROXY="n/a"
[ -n "$HAPROXY_PID" ] && SPLIT_HAPROXY="$(split_check "$PORT_HAPROXY")"

# ---------------------------------------------------------------- measure
# bench SCENARIO NAME PORT CPU_PID [RUN]: run wrk once, store
# "rps p50 p99 errors cpu_us_per_request" in RESULT. CPU is CPU_PID's
# utime+stime (all threads) over the measured run divided by wrk's request
# count: unlike requests/s it hardly depends on how much CPU other work on the
# box leaves to the proxy.
bench() {
    local scen="$1" name="$2" port="$3" cpu_pid="$4" run="${5:-1}"
    local out="$WORK/wrk-$scen-$name-$run.txt"
    local extra=() url="http://127.0.0.1:$port/"
    [ "$scen" = close ] && extra=(-H "Connection: close")
    [ "$scen" = body64k ] && url="http://127.0.0.1:$port/64k"
    # short unmeasured warm-up: fills connection pools, wakes up CPU frequency
    if [ "$WARMUP" != 0 ]; then
        "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" \
            "${extra[@]}" "$url" >/dev/null 2>&1 || true
    fi
    log "wrk [$scen] $name${5:+ (run $run)}: -t$THREADS -c$CONNECTIONS -d$DURATION"
    local u0; u0="$(upstream_counts)"
    local t0; t0="$(cpu_ticks "$cpu_pid")"
    "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency \
        "${extra[@]}" "$url" >"$out" 2>&1 || {
        cat "$out" >&2; die "wrk failed against $name"; }
    local t1; t1="$(cpu_ticks "$cpu_pid")"
    local u1; u1="$(upstream_counts)"
    wrk_parse "$out"
    [ -n "$W_RPS" ] || { cat "$out" >&2; die "could not parse wrk output for $name"; }
    local cpu
    cpu=$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" -v n="${W_REQS:-0}" \
        'BEGIN { printf "%.2f", (n > 0 ? t * 1e6 / hz / n : 0) }')
    RESULT="$W_RPS $W_P50 $W_P99 $W_ERRS $cpu $(reuse_pct "$u0" "$u1")"
    check_alive "$name"
}

# a proxy that died under load must not go unnoticed
check_alive() {
    local pid
    for pid in "$UPSTREAM_PID" "$NGINX_PID" "$VEER_PID" "$VEER_NOM_PID" "$FLOOR_PID" $HAPROXY_PID; do
        kill -0 "$pid" 2>/dev/null || {
            tail -20 "$WORK/veer/veer.log" "$WORK/veer-nometrics/veer.log" >&2
            die "a server process ($pid) died during $1"; }
    done
}

# h2_probe PORT: true if one h2c (prior knowledge) request succeeds.
h2_probe() {
    local out  # captured first: with pipefail, `| grep -q` could fail on SIGPIPE
    out="$(timeout 10 "$H2LOAD" -n1 -c1 -m1 "http://127.0.0.1:$1/" 2>&1 || true)"
    grep -q '^requests: 1 total.* 1 succeeded' <<<"$out"
}

# bench_h2 NAME PORT CPU_PID: one h2load run (after a WARMUP of the same
# shape), stores "rps mean_ms sd_ms max_ms errors cpu_us_per_request" in
# RESULT. h2load prints no percentiles: "time for request" min/max/mean/sd.
bench_h2() {
    local name="$1" port="$2" cpu_pid="$3"
    local out="$WORK/h2load-$name.txt"
    local args=(-t1 -c"$CONNECTIONS" -m"$H2_STREAMS")
    if [ "$WARMUP" != 0 ]; then
        "${ON_LOAD[@]}" "$H2LOAD" "${args[@]}" -D "$WARMUP" "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    fi
    log "h2load [h2c] $name: ${args[*]} -D $DURATION"
    local t0; t0="$(cpu_ticks "$cpu_pid")"
    "${ON_LOAD[@]}" "$H2LOAD" "${args[@]}" -D "$DURATION" "http://127.0.0.1:$port/" >"$out" 2>&1 || {
        cat "$out" >&2; die "h2load failed against $name"; }
    local t1; t1="$(cpu_ticks "$cpu_pid")"
    RESULT="$(awk -v t=$((t1 - t0)) -v hz="$CLK_TCK" '
        function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
        /^finished in/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^req\/s/) rps = $i + 0 }
        /^requests:/ { for (i = 1; i <= NF; i++) { if ($(i+1) ~ /^succeeded/) ok = $i; if ($(i+1) ~ /^(failed|errored|timeout)/) bad += $i } }
        /^status codes:/ { for (i = 1; i <= NF; i++) if ($(i+1) ~ /^[345]xx/) bad += $i }
        /^time for request:/ { mn = ms($4); mx = ms($5); mean = ms($6); sd = ms($7) }
        END { if (rps == "") exit 1;
              printf "%.2f %.3f %.3f %.3f %d %.2f", rps, mean, sd, mx, bad, (ok > 0 ? t * 1e6 / hz / ok : 0) }' "$out")" || {
        cat "$out" >&2; die "could not parse h2load output for $name"; }
    check_alive "$name"
}

# bench_open NAME PORT: oha at a fixed RATE for DURATION (after a WARMUP at
# the same rate), latency measured from when each request was due (coordinated
# omission corrected). Stores "rps p50_us p99_us p999_us errors" in RESULT.
bench_open() {
    local name="$1" port="$2" out="$WORK/oha-$1.json"
    local args=(-q "$RATE" -c "$OPEN_CONNECTIONS" --latency-correction --no-tui --worker-threads 1)
    if [ "$WARMUP" != 0 ]; then
        "${ON_LOAD[@]}" "$OHA" "${args[@]}" -z "$WARMUP" --output-format quiet \
            "http://127.0.0.1:$port/" >/dev/null 2>&1 || true
    fi
    log "oha [openloop] $name: ${args[*]} -z $DURATION"
    "${ON_LOAD[@]}" "$OHA" "${args[@]}" -z "$DURATION" --output-format json \
        "http://127.0.0.1:$port/" >"$out" 2>"$out.err" || {
        cat "$out.err" >&2; die "oha failed against $name"; }
    RESULT="$(python3 - "$out" <<'EOF'
import json, sys
d = json.load(open(sys.argv[1]))
p = d["latencyPercentiles"]
codes = d.get("statusCodeDistribution", {})
# "aborted due to deadline": requests still in flight when -z ran out, not failures
errors = {e: n for e, n in d.get("errorDistribution", {}).items() if e != "aborted due to deadline"}
bad = sum(n for c, n in codes.items() if not c.startswith("2")) + sum(errors.values())
us = lambda v: (v or 0) * 1e6
print(f'{d["summary"]["requestsPerSec"]:.0f} {us(p["p50"]):.0f} {us(p["p99"]):.0f} {us(p["p99.9"]):.0f} {bad}')
EOF
)" || die "could not parse oha output for $name"
    check_alive "$name"
}

# mean_results "rps p50 p99 errs cpu reuse" ... -> means, summed errors
mean_results() {
    printf '%s\n' "$@" | awk '{ r += $1; a += $2; b += $3; e += $4; c += $5; u += $6; n++ }
        END { printf "%.2f %.3f %.3f %d %.2f %.3f", r / n, a / n, b / n, e, c / n, u / n }'
}

LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"   # other work on the box skews results
declare -A R RUNS
H2_TARGETS="veer nginx haproxy"
declare -A H2_PORT=([veer]="$PORT_VEER" [nginx]="$PORT_NGINX_H2" [haproxy]="$PORT_HAPROXY")
declare -A H2_CPU=([veer]="$VEER_PID" [nginx]="$NGINX_WORKER" [haproxy]="$HAPROXY_PID")
declare -A OPEN_PORT=([direct]="$PORT_BLUE" [veer]="$PORT_VEER" [nginx]="$PORT_NGINX" [haproxy]="$PORT_HAPROXY" [floor]="$PORT_FLOOR")
for scen in $SCENARIOS; do
    case "$scen" in keepalive|close|body64k|h2c|openloop) ;; *) die "unknown scenario $scen" ;; esac
    if [ "$scen" = openloop ]; then
        for name in direct veer nginx haproxy floor; do
            if [ -z "$OHA" ]; then
                R[openloop,$name]="skip:oha not installed"
            elif [ "$name" = haproxy ] && [ -z "$HAPROXY_PID" ]; then
                R[openloop,$name]="skip:haproxy not installed"
            else
                bench_open "$name" "${OPEN_PORT[$name]}"; R[openloop,$name]="$RESULT"
            fi
        done
        continue
    fi
    if [ "$scen" = h2c ]; then
        for name in $H2_TARGETS; do
            if [ -z "$H2LOAD" ]; then
                R[h2c,$name]="skip:h2load not installed"
            elif [ "$name" = haproxy ] && [ -z "$HAPROXY_PID" ]; then
                R[h2c,$name]="skip:haproxy not installed"
            elif ! h2_probe "${H2_PORT[$name]}"; then
                R[h2c,$name]="skip:no h2c (prior knowledge) on port ${H2_PORT[$name]}"
            else
                bench_h2 "$name" "${H2_PORT[$name]}" "${H2_CPU[$name]}"; R[h2c,$name]="$RESULT"
            fi
        done
        continue
    fi
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
    if [ -n "$HAPROXY_PID" ]; then
        bench "$scen" haproxy "$PORT_HAPROXY" "$HAPROXY_PID"; R[$scen,haproxy]="$RESULT"
    else
        R[$scen,haproxy]="skip:haproxy not installed"
    fi
    if [ "$scen" = close ]; then
        R[$scen,floor]="skip:not a floor here (it opens an upstream connection per client connection)"
    else
        bench "$scen" floor "$PORT_FLOOR" "$FLOOR_PID"; R[$scen,floor]="$RESULT"
    fi
done

# ---------------------------------------------------------------- report
# floor_ratio SCENARIO NAME: the floor's requests/s over NAME's ("-" if skipped)
floor_ratio() {
    local r="${R[$1,$2]}"
    if [[ "$r" == skip:* ]]; then echo "-"; return; fi
    awk -v a="${R[$1,floor]%% *}" -v b="${r%% *}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }'
}
echo
echo "wrk -t$THREADS -c$CONNECTIONS -d$DURATION --latency (warm-up $WARMUP); pinning: $PINNING;" \
     "$(nproc) cores; loadavg before: $LOAD_BEFORE"
echo "veer: workers=$WORKERS, route weights blue=90 green=10 (check: $SPLIT_VEER; nometrics: $SPLIT_VEER_NOM);" \
     "veer rows: mean of $ROUNDS interleaved runs;" \
     "nginx: worker_processes $WORKERS, keepalive 64, weights 9:1 (check: $SPLIT_NGINX);" \
     "haproxy ${HAPROXY:+$("$HAPROXY" -v | awk 'NR == 1 {print $3}')}: nbthread $WORKERS, http-reuse always, weights 9:1 (check: $SPLIT_HAPROXY)"
for scen in $SCENARIOS; do
    echo
    case "$scen" in
        keepalive) echo "### keep-alive clients" ;;
        close)     echo "### Connection: close (new client connection per request)" ;;
        body64k)   echo "### 64 KiB response body (GET /64k, keep-alive clients)" ;;
        openloop)  echo "### open loop: fixed $RATE requests/s (latency corrected)"
            echo
            echo "oha -q $RATE -c $OPEN_CONNECTIONS --latency-correction -z $DURATION (warm-up -z $WARMUP)" \
                 "http://127.0.0.1:PORT/ — latency counted from when each request was due; added = target - direct"
            echo
            echo "| target | requests/s | p50 (µs) | p99 (µs) | p99.9 (µs) | errors | added p50 (µs) | added p99 (µs) |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|"
            d50="" d99=""
            [[ "${R[openloop,direct]}" == skip:* ]] || read -r _ d50 d99 _ <<<"${R[openloop,direct]}"
            for name in direct veer nginx haproxy floor; do
                if [[ "${R[openloop,$name]}" == skip:* ]]; then
                    echo "| $name | skipped: ${R[openloop,$name]#skip:} | | | | | | |"
                    continue
                fi
                read -r rps p50 p99 p999 errs <<<"${R[openloop,$name]}"
                printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$p999" "$errs" \
                    "$([ "$name" = direct ] && echo - || echo $((p50 - d50)))" \
                    "$([ "$name" = direct ] && echo - || echo $((p99 - d99)))"
            done
            continue ;;
        h2c)       echo "### h2c (HTTP/2 prior knowledge, proxy->upstream HTTP/1.1)"
            echo
            echo "h2load -t1 -c$CONNECTIONS -m$H2_STREAMS -D $DURATION (warm-up -D $WARMUP)" \
                 "http://127.0.0.1:PORT/ — veer :$PORT_VEER, nginx :$PORT_NGINX_H2 (listen http2), haproxy :$PORT_HAPROXY;" \
                 "h2load reports no percentiles, so: mean / sd / max of 'time for request'"
            echo
            echo "| target | requests/s | mean (ms) | sd (ms) | max (ms) | errors | veer ratio | server CPU µs/req |"
            echo "|---|---:|---:|---:|---:|---:|---:|---:|"
            veer_rps=0
            [[ "${R[h2c,veer]}" == skip:* ]] || read -r veer_rps _ <<<"${R[h2c,veer]}"
            for name in $H2_TARGETS; do
                if [[ "${R[h2c,$name]}" == skip:* ]]; then
                    echo "| $name | skipped: ${R[h2c,$name]#skip:} | | | | | | |"
                    continue
                fi
                read -r rps mean sd mx errs cpu <<<"${R[h2c,$name]}"
                ratio=$(awk -v a="$veer_rps" -v b="$rps" 'BEGIN { printf "%.2f", (b > 0 && a > 0 ? a / b : 0) }')
                printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$mean" "$sd" "$mx" "$errs" "$ratio" "$cpu"
            done
            continue ;;
    esac
    echo
    echo "| target | requests/s | p50 (ms) | p99 (ms) | errors | veer ratio | server CPU µs/req | upstream conn reuse % |"
    echo "|---|---:|---:|---:|---:|---:|---:|---:|"
    read -r veer_rps _ <<<"${R[$scen,veer]}"
    for name in direct veer veer-nometrics nginx haproxy floor; do
        if [[ "${R[$scen,$name]}" == skip:* ]]; then
            echo "| $name | skipped: ${R[$scen,$name]#skip:} | | | | | | |"
            continue
        fi
        read -r rps p50 p99 errs cpu reuse <<<"${R[$scen,$name]}"
        [ "$name" = direct ] && reuse="-"   # wrk's own connections, not a proxy's pool
        ratio=$(awk -v a="$veer_rps" -v b="$rps" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')
        printf '| %s | %.0f | %s | %s | %s | %s | %s | %s |\n' "$name" "$rps" "$p50" "$p99" "$errs" "$ratio" "$cpu" "$reuse"
    done
    if [[ "${R[$scen,floor]}" != skip:* ]]; then
        echo
        echo "floor: the byte relay reaches $(floor_ratio "$scen" nginx)x nginx and $(floor_ratio "$scen" haproxy)x haproxy;" \
             "no proxy can beat that ratio on this box and topology"
    fi
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
