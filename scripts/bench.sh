#!/usr/bin/env bash
# The benchmark command (README "Benchmarks"): the operator, built for release, on local control planes
# whose API server writes an audit log, so that requests are counted by the server. Three runs, each on
# a fresh control plane:
#   1. scale (C8B_BENCH_CLUSTERS, 1000 clusters), the exporting pause per procedure (C8B_BENCH_PER_PROCEDURE,
#      3 backups each), load (C8B_BENCH_RUNNING, 100 backups at once) and
#      schedule lag with kube-controller-manager's defaults (in 1.20 the CronJob controller is the old one);
#   2. scale at C8B_BENCH_LARGE clusters (10000; 0 skips it);
#   3. schedule lag with CronJobControllerV2 on.
# Prints one table of every figure beside its target and its value before issue 16, and appends it to
# target/bench-results.md.
#
#   C8B_BENCH_CLUSTERS=1000 C8B_BENCH_LARGE=10000 C8B_BENCH_RUNNING=100 C8B_BENCH_SCHEDULES=20 \
#     C8B_BENCH_LAG_MINUTES=3 scripts/bench.sh
# C8B_BENCH_PHASES (scale,pause,load,lag) picks the phases of the first run; the third runs only with lag.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/control-plane.sh install
cargo bench --no-run --quiet --bench operator
audit=$(mktemp "${TMPDIR:-/tmp}/c8b-audit.XXXXXX.log")
rows=$(mktemp "${TMPDIR:-/tmp}/c8b-bench-rows.XXXXXX.md")
trap 'rm -f "$audit" "$rows"' EXIT
export C8B_AUDIT_LOG=$audit C8B_BENCH_ROWS=$rows
phases=${C8B_BENCH_PHASES:-scale,pause,load,lag}
C8B_BENCH_PHASES=$phases C8B_KCM_FLAGS="" bash scripts/control-plane.sh run -- cargo bench --quiet --bench operator
large=${C8B_BENCH_LARGE:-10000}
if [ "$large" -gt 0 ]; then
  : >"$audit"
  C8B_BENCH_PHASES=scale C8B_BENCH_CLUSTERS=$large C8B_KCM_FLAGS="" \
    bash scripts/control-plane.sh run -- cargo bench --quiet --bench operator
fi
if [[ $phases == *lag* ]]; then
  : >"$audit"
  C8B_BENCH_PHASES=lag C8B_KCM_FLAGS="--feature-gates=CronJobControllerV2=true" \
    bash scripts/control-plane.sh run -- cargo bench --quiet --bench operator
fi
mkdir -p target
table=$(printf '\n### Benchmark %s\n\n| measure | value | target | before issue 16 |\n|---|---|---|---|\n%s\n' \
  "$(date -u '+%Y-%m-%d %H:%M UTC')" "$(cat "$rows")")
echo "$table"
echo "$table" >>target/bench-results.md
