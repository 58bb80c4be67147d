#!/usr/bin/env bash
# benches/soak.sh — memory stays flat: veer's RSS before/after millions of requests.
#
# Starts the upstream nginx (as compare.sh) and one veer (metrics on,
# 1 worker, 90/10 split), warms up with WARMUP_REQS requests, records veer's
# VmRSS, drives TOTAL proxied requests with repeated fixed-duration wrk runs
# (each sized to land near the next CHECKPOINT), prints RSS at every run, then
# before/after/diff% and PASS if RSS grew by less than LIMIT_PCT.
# Requests are counted from wrk's "N requests in" line.
#
# Usage:  benches/soak.sh [--build]
# Env:    TOTAL=5000000 WARMUP_REQS=200000 CHECKPOINT=1000000
#         TIME_CAP=600          (seconds for the measured phase; stops early -> INCOMPLETE)
#         LIMIT_PCT=5           (PASS if (after - before) / before < LIMIT_PCT %)
#         CONNECTIONS=50 THREADS=1
#         MODE=keepalive        (or close: `Connection: close`, new client connection per request)
#         VEER_BIN=path/to/veer PROXY_CPU=0 LOAD_CPU=1 UPSTREAM_CPU=0
#
# Loopback only, ports 18081/18082/18084/18089 (fails if busy); everything it
# starts is stopped on exit. Exit status: 0 PASS, 1 FAIL/INCOMPLETE/error.
set -euo pipefail

LOG_TAG=soak
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"   # ports, pinning, configs, helpers

TOTAL="${TOTAL:-5000000}"
WARMUP_REQS="${WARMUP_REQS:-200000}"
CHECKPOINT="${CHECKPOINT:-1000000}"
TIME_CAP="${TIME_CAP:-600}"
LIMIT_PCT="${LIMIT_PCT:-5}"
CONNECTIONS="${CONNECTIONS:-50}"
THREADS="${THREADS:-1}"
MODE="${MODE:-keepalive}"
MAX_RUN=60   # longest single wrk run, seconds

BUILD=0
for arg in "$@"; do
    case "$arg" in
        --build) BUILD=1 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done
case "$MODE" in keepalive) EXTRA=() ;; close) EXTRA=(-H "Connection: close") ;;
    *) die "MODE must be keepalive or close" ;; esac
for v in TOTAL WARMUP_REQS CHECKPOINT TIME_CAP CONNECTIONS THREADS; do
    [[ "${!v}" =~ ^[1-9][0-9]*$ ]] || die "$v must be a positive integer"
done

lib_tools
lib_veer_binary "$BUILD"
lib_check_ports "$PORT_BLUE" "$PORT_UPSTREAM_STATUS" "$PORT_VEER" "$PORT_GREEN" "$PORT_VEER_ADMIN"
lib_workdir

start_upstream
start_veer veer "$PORT_VEER" "$PORT_VEER_ADMIN" true
VEER_PID="$STARTED_PID"

rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$VEER_PID/status"; }
hwm_kb() { awk '/^VmHWM:/ {print $2}' "/proc/$VEER_PID/status"; }
alive() {
    local pid
    for pid in "$UPSTREAM_PID" "$VEER_PID"; do
        kill -0 "$pid" 2>/dev/null || {
            tail -20 "$WORK/veer/veer.log" >&2; die "a server process ($pid) died"; }
    done
}

# wrk_run SECONDS: one wrk run against veer; sets W_* (see lib.sh wrk_parse).
RUN=0
wrk_run() {
    RUN=$((RUN + 1))
    local out="$WORK/wrk-$RUN.txt"
    "${ON_LOAD[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${1}s" --latency \
        "${EXTRA[@]}" "http://127.0.0.1:$PORT_VEER/" >"$out" 2>&1 || {
        cat "$out" >&2; die "wrk failed"; }
    wrk_parse "$out"
    [ -n "$W_REQS" ] && [ -n "$W_RPS" ] || { cat "$out" >&2; die "could not parse wrk output"; }
    alive
}

# ---------------------------------------------------------------- warm-up
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
log "warm-up: $WARMUP_REQS requests"
warm=0 rate=0
while [ "$warm" -lt "$WARMUP_REQS" ]; do
    wrk_run 2
    warm=$((warm + W_REQS)); rate="$W_RPS"
done
sleep 1   # let the last connections close: both samples are taken idle
RSS_BEFORE="$(rss_kb)"
log "warm-up done: $warm requests, ${rate%.*} req/s, VmRSS $RSS_BEFORE KiB"

# ---------------------------------------------------------------- soak
pct() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%+.2f", (b > 0 ? (a - b) * 100 / b : 0) }'; }
ROWS=("| 0 (after warm-up) | 0 | ${rate%.*} | $RSS_BEFORE | +0.00% | 0 |")
done_reqs=0 errs=0
t0=$SECONDS
deadline=$((SECONDS + TIME_CAP))
while [ "$done_reqs" -lt "$TOTAL" ] && [ "$SECONDS" -lt "$deadline" ]; do
    # size the run to reach the next checkpoint (+5%) at the last rate seen
    target=$(( (done_reqs / CHECKPOINT + 1) * CHECKPOINT ))
    [ "$target" -gt "$TOTAL" ] && target="$TOTAL"
    secs=$(awk -v n=$((target - done_reqs)) -v r="$rate" \
        'BEGIN { s = (r > 0 ? n * 1.05 / r : 10); s = int(s) + (s > int(s)); print (s < 1 ? 1 : s) }')
    [ "$secs" -gt "$MAX_RUN" ] && secs=$MAX_RUN
    left=$((deadline - SECONDS)); [ "$secs" -gt "$left" ] && secs=$left
    [ "$secs" -ge 1 ] || break
    log "wrk ${secs}s (at $done_reqs / $TOTAL requests)"
    wrk_run "$secs"
    done_reqs=$((done_reqs + W_REQS)); errs=$((errs + W_ERRS)); rate="$W_RPS"
    rss="$(rss_kb)"
    ROWS+=("| $done_reqs | $((SECONDS - t0)) | ${W_RPS%.*} | $rss | $(pct "$rss" "$RSS_BEFORE")% | $W_ERRS |")
done
ELAPSED=$((SECONDS - t0))
sleep 1
RSS_AFTER="$(rss_kb)"
HWM="$(hwm_kb)"

# Cross-check with veer's own counters, if the admin API answers.
METRICS_SUM="$(curl -fsS --max-time 2 "http://127.0.0.1:$PORT_VEER_ADMIN/metrics" 2>/dev/null |
    awk '/^veer_requests_total[{ ]/ { s += $NF; n++ } END { if (n) printf "%.0f", s }' || true)"

# ---------------------------------------------------------------- report
DIFF="$(pct "$RSS_AFTER" "$RSS_BEFORE")"
if [ "$done_reqs" -lt "$TOTAL" ]; then
    VERDICT="INCOMPLETE (only $done_reqs of $TOTAL requests within ${TIME_CAP}s)"
elif awk -v d="$DIFF" -v l="$LIMIT_PCT" 'BEGIN { exit !(d < l) }'; then
    VERDICT="PASS"
else
    VERDICT="FAIL"
fi
[ "$errs" -gt 0 ] && [ "$VERDICT" = PASS ] && VERDICT="PASS (memory) but $errs request errors"
echo
echo "soak: veer metrics=on workers=1, wrk -t$THREADS -c$CONNECTIONS ($MODE), $done_reqs requests" \
     "in ${ELAPSED}s after a $warm-request warm-up; pinning: $PINNING; loadavg before: $LOAD_BEFORE"
echo
echo "| requests | elapsed (s) | req/s (run) | VmRSS (KiB) | vs before | errors (run) |"
echo "|---:|---:|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
echo
echo "VmRSS before: $RSS_BEFORE KiB, after: $RSS_AFTER KiB, diff: $DIFF% (limit < $LIMIT_PCT%)," \
     "peak VmHWM: $HWM KiB, errors: $errs -> $VERDICT"
if [ -n "$METRICS_SUM" ]; then
    echo "cross-check: veer_requests_total (all codes) = $METRICS_SUM; wrk counted $((warm + done_reqs)) incl. warm-up"
else
    echo "(admin /metrics not reachable; veer_requests_total cross-check skipped)"
fi
veer_log_errors veer
[ "$VERDICT" = PASS ]
