#!/usr/bin/env bash
# Makes the README's screenshots from a real `veer demo`:
#   docs/dashboard.png  the dashboard in the middle of the canary
#   docs/demo.png       the demo's terminal once the canary has promoted
# Needs what .ci/run installs (chromium, npm ci in tests/browser) and tmux.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build -q --release --bin veer
bin="${CARGO_TARGET_DIR:-target}/release"
session="veer-shots-$$"
capture=$(mktemp)
trap 'tmux kill-session -t "$session" 2>/dev/null || true; rm -f "$capture"' EXIT

tmux new-session -d -s "$session" -x 112 -y 24 \
  "env PATH=$PWD/$bin:\$PATH VEER_LOG=off PS1='\$ ' bash --norc --noprofile"
tmux send-keys -t "$session" "veer demo --interval 15s --v2-latency 5ms --keep" Enter

screen() { tmux capture-pane -t "$session" -p -e; }
wait_for() { # PATTERN SECONDS
  for _ in $(seq "$2"); do
    if screen | grep -q -- "$1"; then return 0; fi
    sleep 1
  done
  echo "no '$1' on the demo's screen within $2 s" >&2
  screen >&2
  exit 1
}

wait_for 'dashboard: http' 60
url=$(screen | grep -o 'dashboard: http://[^ ]*' | head -1 | cut -d' ' -f2)
# The page keeps its chart samples itself: open it at the start and shoot
# 40 s later, at step 3 (candidate at 50%).
node tests/browser/screenshot.mjs page "$url" docs/dashboard.png 40000

wait_for 'still serving' 120
screen > "$capture"
node tests/browser/screenshot.mjs terminal "$capture" docs/demo.png
tmux send-keys -t "$session" C-c
