#!/usr/bin/env bash
# The long fault-injection suite: 20 simulated clusters of both Camunda version families, 10 rounds of
# operator kills, 5xx answers, dropped connections, failed component backups and simulator restarts, with
# the invariants checked after every round. The short version (4 clusters, 3 rounds) runs in
# scripts/test.sh. Override with C8B_FAULT_CLUSTERS, C8B_FAULT_ROUNDS; replay with C8B_FAULT_SEED.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/control-plane.sh install
cargo build --tests --quiet
export C8B_FAULT_CLUSTERS=${C8B_FAULT_CLUSTERS:-20} C8B_FAULT_ROUNDS=${C8B_FAULT_ROUNDS:-10}
exec bash scripts/control-plane.sh run -- \
  cargo test --quiet --test integration -- --include-ignored --nocapture faults::
