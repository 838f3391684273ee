#!/usr/bin/env bash
# The long fault-injection suite: 20 simulated clusters of both Camunda version families, 10 rounds of
# operator kills, 5xx answers, dropped connections, failed component backups and simulator restarts, with
# the invariants checked after every round. The short version (4 clusters, 3 rounds) runs in
# scripts/test.sh. Override with C8B_FAULT_CLUSTERS, C8B_FAULT_ROUNDS; replay with C8B_FAULT_SEED.
#
#   scripts/fault-suite.sh               step Jobs run by the test's node agent (fast)
#   scripts/fault-suite.sh --real-node   step Jobs run as containers of the operator's image on a real
#                                        node (kubelet, containerd); the operator is a process beside it,
#                                        SIGKILLed twice a round
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/control-plane.sh install
cargo build --tests --quiet
export C8B_FAULT_CLUSTERS=${C8B_FAULT_CLUSTERS:-20} C8B_FAULT_ROUNDS=${C8B_FAULT_ROUNDS:-10}
suite=(cargo test --quiet --test integration -- --include-ignored --nocapture faults::)
if [ "${1:-}" = "--real-node" ]; then
  archive=$(bash scripts/image.sh | tail -n 1)
  # The archive is named after the tag: camunda-backup-operator-<version>-dev.oci.tar.
  tag=$(basename "$archive" .oci.tar)
  export C8B_OPERATOR_IMAGE=localhost/camunda-backup-operator:${tag#camunda-backup-operator-}
  exec bash scripts/control-plane.sh run --node --image "$archive" -- "${suite[@]}"
fi
exec bash scripts/control-plane.sh run -- "${suite[@]}"
