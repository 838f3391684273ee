#!/usr/bin/env bash
# The benchmark command (README "Benchmarks"): the operator, built for release, on a local control plane
# whose API server writes an audit log, so that requests are counted by the server. Two runs: the
# first measures scale, load and schedule lag with kube-controller-manager's defaults (in 1.20 the
# CronJob controller is the old one), the second only the schedule lag with CronJobControllerV2 on.
# Results: printed, and appended to target/bench-results.md.
#
#   C8B_BENCH_CLUSTERS=1000 C8B_BENCH_RUNNING=100 C8B_BENCH_SCHEDULES=20 C8B_BENCH_LAG_MINUTES=3 scripts/bench.sh
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/control-plane.sh install
cargo bench --no-run --quiet --bench operator
audit=$(mktemp "${TMPDIR:-/tmp}/c8b-audit.XXXXXX.log")
trap 'rm -f "$audit"' EXIT
export C8B_AUDIT_LOG=$audit
C8B_KCM_FLAGS="" bash scripts/control-plane.sh run -- cargo bench --quiet --bench operator
: >"$audit"
C8B_BENCH_PHASES=lag C8B_KCM_FLAGS="--feature-gates=CronJobControllerV2=true" \
  bash scripts/control-plane.sh run -- cargo bench --quiet --bench operator
