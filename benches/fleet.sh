#!/usr/bin/env bash
# Time to converge across a fleet: starts a real etcd (Debian's etcd-server)
# and N `veer run` replicas on 127.0.0.1, changes a route's weights 20 times
# (each change made on the next replica in turn) and prints p50/p99 of the
# time until every replica serves the new split (measured by polling each
# replica's status, so it includes that polling).
#   benches/fleet.sh 3 10 30
set -euo pipefail
cd "$(dirname "$0")/.."
command -v etcd >/dev/null || { echo "needs etcd (apt-get install etcd-server)"; exit 1; }
[ $# -gt 0 ] || set -- 3 10 30
cargo build --release --quiet
for n in "$@"; do
  FLEET_N="$n" cargo test --release --quiet --test it fleet::converge_bench -- --ignored --nocapture 2>/dev/null |
    grep '^FLEET' || echo "FLEET n=$n failed"
done
