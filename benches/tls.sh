#!/usr/bin/env bash
# benches/tls.sh — TLS termination side by side: veer vs nginx, same certificate.
#
# Both proxies: one worker, TLS 1.3 (1.2 allowed), the same ECDSA P-256
# certificate, pooled HTTP/1.1 to the same upstream nginx. Rows:
#   handshakes   wrk with `Connection: close`: one full TLS handshake per
#                request (no resumption), so requests/s = handshakes/s
#   keep-alive   wrk over long-lived TLS connections: requests/s
# Each row runs veer then nginx back to back, ROUNDS times interleaved
# (ABBA), and reports the mean and the ratio veer/nginx.
#
# Usage:  benches/tls.sh [--build]
# Env:    DURATION=10s CONNECTIONS=50 THREADS=1 ROUNDS=2 WARMUP=2s
#         PROXY_CPU=0 LOAD_CPU=1 UPSTREAM_CPU=0 (see lib.sh)
# Ports:  18081 upstream, 18086 veer (TLS), 18087 nginx (TLS), 18089 veer admin.
set -euo pipefail

LOG_TAG=tls
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DURATION="${DURATION:-10s}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
ROUNDS="${ROUNDS:-2}"
WARMUP="${WARMUP:-2s}"
PORT_VEER_TLS=18086
PORT_NGINX_TLS=18087
BUILD=0
[ "${1:-}" = "--build" ] && BUILD=1

lib_tools
command -v openssl >/dev/null 2>&1 || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; }
lib_veer_binary "$BUILD"
lib_check_ports "$PORT_BLUE" "$PORT_UPSTREAM_STATUS" "$PORT_GREEN" "$PORT_VEER_TLS" "$PORT_NGINX_TLS" "$PORT_VEER_ADMIN"
lib_workdir

# One certificate for both, ECDSA P-256 (what most sites serve today).
mkdir -p "$WORK/certs"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=bench.test" -addext "subjectAltName=DNS:bench.test,IP:127.0.0.1" \
    -keyout "$WORK/certs/key.pem" -out "$WORK/certs/cert.pem" 2>/dev/null

start_upstream

mkdir -p "$WORK/veer"
cat >"$WORK/veer/veer.toml" <<CONF
[proxy]
workers = 1
state_dir = "$WORK/veer/state"

[admin]
listen = "127.0.0.1:$PORT_VEER_ADMIN"

[[listener]]
name = "tls"
listen = "127.0.0.1:$PORT_VEER_TLS"
tls = { cert = "$WORK/certs/cert.pem", key = "$WORK/certs/key.pem" }

[[pool]]
name = "blue"
endpoints = ["127.0.0.1:$PORT_BLUE"]

[[route]]
name = "bench"
pool = "blue"
CONF

mkdir -p "$WORK/nginx-tls"
{
    nginx_common "$WORK/nginx-tls"
    echo "http {"
    nginx_http_common "$WORK/nginx-tls"
    cat <<CONF
    upstream blue { server 127.0.0.1:$PORT_BLUE; keepalive 64; }
    server {
        listen 127.0.0.1:$PORT_NGINX_TLS ssl;
        ssl_certificate $WORK/certs/cert.pem;
        ssl_certificate_key $WORK/certs/key.pem;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        location / {
            proxy_pass http://blue;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-Proto https;
        }
    }
}
CONF
} >"$WORK/nginx-tls/nginx.conf"

wait_https() {  # NAME PORT PID LOG
    local deadline=$((SECONDS + 10))
    until curl -kfsS -o /dev/null --max-time 1 "https://127.0.0.1:$2/"; do
        kill -0 "$3" 2>/dev/null || { tail -20 "$4" >&2; die "$1 exited"; }
        [ "$SECONDS" -lt "$deadline" ] || { tail -20 "$4" >&2; die "$1 not answering on $2"; }
        sleep 0.1
    done
}

start veer "$WORK/veer/veer.log" "${ON_PROXY[@]}" env VEER_LOG=warn "$VEER" run -c "$WORK/veer/veer.toml"
wait_https veer "$PORT_VEER_TLS" "${PIDS[-1]}" "$WORK/veer/veer.log"
start nginx-tls "$WORK/nginx-tls/stderr.log" "${ON_PROXY[@]}" "$NGINX" -p "$WORK/nginx-tls" \
    -c "$WORK/nginx-tls/nginx.conf" -e "$WORK/nginx-tls/error.log"
wait_https nginx "$PORT_NGINX_TLS" "${PIDS[-1]}" "$WORK/nginx-tls/error.log"

# measure PORT SCENARIO -> prints requests/s
measure() {
    local port="$1" scenario="$2" hdr=()
    [ "$scenario" = handshakes ] && hdr=(-H "Connection: close")
    if [ "$WARMUP" != 0 ]; then
        "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" "${hdr[@]}" "https://127.0.0.1:$port/" >/dev/null 2>&1 || true
    fi
    "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency "${hdr[@]}" \
        "https://127.0.0.1:$port/" >"$WORK/wrk.out" 2>&1
    wrk_parse "$WORK/wrk.out"
    [ "$W_ERRS" -gt 0 ] && log "port $port $scenario: $W_ERRS errors"
    echo "${W_RPS:-0} $W_P50 $W_P99"
}

log "pinning: $PINNING; wrk -t$THREADS -c$CONNECTIONS -d$DURATION, $ROUNDS rounds (ABBA)"
printf '%-11s %12s %12s %8s   %s\n' scenario "veer req/s" "nginx req/s" ratio "p99 ms veer/nginx"
for scenario in handshakes keep-alive; do
    v_sum=0 n_sum=0 v_p99=0 n_p99=0
    for round in $(seq 1 "$ROUNDS"); do
        if [ $((round % 2)) = 1 ]; then order="veer nginx"; else order="nginx veer"; fi
        for who in $order; do
            if [ "$who" = veer ]; then
                read -r rps _ p99 < <(measure "$PORT_VEER_TLS" "$scenario")
                v_sum=$(awk -v a="$v_sum" -v b="$rps" 'BEGIN{print a+b}'); v_p99=$p99
            else
                read -r rps _ p99 < <(measure "$PORT_NGINX_TLS" "$scenario")
                n_sum=$(awk -v a="$n_sum" -v b="$rps" 'BEGIN{print a+b}'); n_p99=$p99
            fi
        done
    done
    awk -v s="$scenario" -v v="$v_sum" -v n="$n_sum" -v r="$ROUNDS" -v vp="$v_p99" -v np="$n_p99" \
        'BEGIN { printf "%-11s %12.0f %12.0f %8.2f   %s/%s\n", s, v/r, n/r, (n > 0 ? v/n : 0), vp, np }'
done
veer_log_errors veer
