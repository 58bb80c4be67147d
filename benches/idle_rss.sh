#!/usr/bin/env bash
# benches/idle_rss.sh — veer's resident memory idle and with N idle keep-alive
# client connections (issue 9: idle RSS ≤ 15 MiB, ≤ 10 KiB per idle connection).
#
# Starts the compare.sh upstream (nginx, ports 18081/18084) and one veer
# (release binary, `workers = 1`, metrics on, the 90/10 route; ports
# 18082/18089), sends WARM_REQS requests through it, waits 1 s and reads
# VmRSS ("idle"). Then benches/idle_conns.py opens CONNS keep-alive client
# connections (one GET / each, response read, then silent) and holds them;
# 1 s after they are all open it reads VmRSS again ("loaded"), counts the
# ESTABLISHED connections on veer's port with `ss`, and prints idle RSS and
# (loaded - idle) / open connections in KiB. It then closes them and reads
# VmRSS once more ("released"). veer's `idle_timeout` is 60 s: the whole
# loaded phase is capped at HOLD seconds (default 40) after the first
# connection opened, and the measurement fails if it could not be taken
# within that.
#
# Usage:  benches/idle_rss.sh [--build]
# Env:    CONNS=10000 WARM_REQS=20000 HOLD=40 VEER_BIN=path/to/veer
#         PROXY_CPU/UPSTREAM_CPU/LOAD_CPU as in lib.sh
# Needs `ulimit -n` of CONNS + 1000 (it raises the soft limit up to the hard
# one; fails if that is not enough). Loopback only; stops all it started.
set -euo pipefail

LOG_TAG=idle_rss
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CONNS="${CONNS:-10000}"
WARM_REQS="${WARM_REQS:-20000}"
HOLD="${HOLD:-40}"
BUILD=0
for arg in "$@"; do
    case "$arg" in
        --build) BUILD=1 ;;
        -h|--help) sed -n '2,22p' "$0"; exit 0 ;;
        *) echo "unknown argument: $arg" >&2; exit 2 ;;
    esac
done
[[ "$CONNS" =~ ^[1-9][0-9]*$ ]] || die "CONNS must be a positive integer"
[ "$HOLD" -lt 60 ] || die "HOLD must stay below veer's 60 s idle_timeout"

# fds: veer and the client each hold CONNS sockets (plus pools, logs, ...)
need_fds=$((CONNS + 1000))
hard="$(ulimit -Hn)"
if [ "$hard" != unlimited ] && [ "$hard" -lt "$need_fds" ]; then
    die "ulimit -Hn is $hard, need $need_fds for CONNS=$CONNS"
fi
ulimit -n "$need_fds"   # inherited by veer, nginx and the client

lib_tools
command -v python3 >/dev/null 2>&1 || die "python3 is needed for idle_conns.py"
lib_veer_binary "$BUILD"
lib_check_ports "$PORT_BLUE" "$PORT_UPSTREAM_STATUS" "$PORT_GREEN" "$PORT_VEER" "$PORT_VEER_ADMIN"
lib_workdir

rss_kib() { awk '$1 == "VmRSS:" { print $2 }' "/proc/$1/status"; }
hwm_kib() { awk '$1 == "VmHWM:" { print $2 }' "/proc/$1/status"; }
established() { ss -Htn state established "sport = :$PORT_VEER" | wc -l; }

start_upstream
start_veer veer "$PORT_VEER" "$PORT_VEER_ADMIN" true
VEER_PID="$STARTED_PID"
log "veer $("$VEER" --version 2>/dev/null || echo '?') pid $VEER_PID, fd limit $(awk '/Max open files/ {print $4}' "/proc/$VEER_PID/limits")"

RSS_START="$(rss_kib "$VEER_PID")"
# warm up (allocator arenas, upstream pool, metrics series), then idle
"${ON_LOAD[@]}" wrk -t1 -c50 -d2s "http://127.0.0.1:$PORT_VEER/" >/dev/null 2>&1 || true
sleep 1
RSS_IDLE="$(rss_kib "$VEER_PID")"
log "VmRSS fresh ${RSS_START} KiB, idle after warm-up ${RSS_IDLE} KiB"

CLIENT_OUT="$WORK/idle_conns.out"
"${ON_LOAD[@]}" python3 "$REPO/benches/idle_conns.py" 127.0.0.1 "$PORT_VEER" "$CONNS" "$HOLD" \
    >"$CLIENT_OUT" 2>"$WORK/idle_conns.err" &
CLIENT_PID=$!
PIDS+=("$CLIENT_PID")
T0=$SECONDS
while ! grep -q '^READY' "$CLIENT_OUT"; do
    kill -0 "$CLIENT_PID" 2>/dev/null || { cat "$WORK/idle_conns.err" >&2; die "idle_conns.py exited early"; }
    [ $((SECONDS - T0)) -lt $((HOLD - 5)) ] || die "connections not open within $((HOLD - 5)) s"
    sleep 0.2
done
READY="$(grep '^READY' "$CLIENT_OUT")"
log "client: $READY"
sleep 1
RSS_LOADED="$(rss_kib "$VEER_PID")"
HWM="$(hwm_kib "$VEER_PID")"
EST="$(established)"
ELAPSED=$((SECONDS - T0))
kill "$CLIENT_PID" 2>/dev/null || true
wait "$CLIENT_PID" 2>/dev/null || true
sleep 2
RSS_RELEASED="$(rss_kib "$VEER_PID")"
kill -0 "$VEER_PID" 2>/dev/null || die "veer died during the run"

OPEN="$(sed -n 's/.*open=\([0-9]*\).*/\1/p' <<<"$READY")"
FAILED="$(sed -n 's/.*failed=\([0-9]*\).*/\1/p' <<<"$READY")"
PER_CONN=$(awk -v a="$RSS_LOADED" -v b="$RSS_IDLE" -v n="$EST" 'BEGIN { printf "%.2f", (n > 0 ? (a - b) / n : 0) }')

echo
echo "veer $VEER (workers = 1, metrics on, 90/10 route); client: benches/idle_conns.py," \
     "$CONNS connections to 127.0.0.1:$PORT_VEER, one GET / each, then silent;" \
     "measured ${ELAPSED}s after the first connect (veer idle_timeout 60 s)"
echo
echo "| measure | value |"
echo "|---|---:|"
echo "| VmRSS fresh (after start + readiness probe) | $RSS_START KiB ($(awk -v k="$RSS_START" 'BEGIN{printf "%.1f", k/1024}') MiB) |"
echo "| VmRSS idle (after 2 s wrk warm-up, 1 s idle) | $RSS_IDLE KiB ($(awk -v k="$RSS_IDLE" 'BEGIN{printf "%.1f", k/1024}') MiB) |"
echo "| client connections opened / failed | $OPEN / $FAILED |"
echo "| ESTABLISHED on veer's port at measurement (ss) | $EST |"
echo "| VmRSS with the idle connections | $RSS_LOADED KiB ($(awk -v k="$RSS_LOADED" 'BEGIN{printf "%.1f", k/1024}') MiB) |"
echo "| per idle connection: (loaded - idle) / established | $PER_CONN KiB |"
echo "| VmHWM (peak) | $HWM KiB |"
echo "| VmRSS 2 s after the client closed them | $RSS_RELEASED KiB |"
echo
echo "targets (issue 9): idle RSS ≤ 15 MiB (15360 KiB); ≤ 10 KiB per idle client connection"
veer_log_errors veer
