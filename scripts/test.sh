#!/usr/bin/env bash
# The one test command (README "Testing"): installs what it needs, checks formatting and lints, and runs
# every test — unit, contract and integration tests — the integration tests against a local control plane
# (etcd + kube-apiserver + kube-controller-manager 1.20) started here and stopped at the end.
#
#   scripts/test.sh                      everything
#   C8B_TEST_KUBECONFIG=~/.kube/x scripts/test.sh
#                                        run the integration tests against that cluster instead
#   scripts/test.sh -- NAME              pass a filter to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n=== %s\n' "$*" >&2; }
started=$(date +%s)

step "installing the toolchain components, helm and the local control plane (cached after the first run)"
rustup component add rustfmt clippy >/dev/null 2>&1 || true
bash scripts/control-plane.sh install
bash scripts/tools.sh >/dev/null
# Camunda's JS SDK for the Console API test (node and npm from apt if missing).
bash scripts/tools.sh camunda-sdk >/dev/null

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "helm lint and helm template"
bash scripts/chart-check.sh

step "building the tests"
cargo test --no-run --quiet

if [ -n "${C8B_TEST_KUBECONFIG:-}" ]; then
  export KUBECONFIG=$C8B_TEST_KUBECONFIG
  step "integration tests use $KUBECONFIG"
else
  state=$(mktemp -d "${TMPDIR:-/tmp}/c8b-test.XXXXXX")
  trap 'if [ -n "$state" ]; then bash scripts/control-plane.sh stop "$state"; rm -rf "$state"; fi' EXIT
  step "starting the local control plane in $state"
  KUBECONFIG=$(bash scripts/control-plane.sh start "$state")
  export KUBECONFIG
fi

step "cargo test (unit, contract and integration tests; --include-ignored runs the ones that need a server)"
filter=()
if [ "${1:-}" = "--" ]; then shift; filter=("$@"); fi
# Integration tests mostly wait (on Jobs, on per-minute schedule slots): run more of them at once than
# there are cores. The real-node tests run below, on a cluster of their own: the fake node agent of
# these tests must never share a cluster with a real kubelet.
cargo test -- --include-ignored --test-threads "${C8B_TEST_THREADS:-6}" --skip real_node:: "${filter[@]}"

if [ ${#filter[@]} -eq 0 ] && [ -z "${C8B_TEST_KUBECONFIG:-}" ]; then
  bash scripts/control-plane.sh stop "$state"
  rm -rf "$state"
  state=""
  step "the operator's image (scripts/image.sh: release build, local base, buildah)"
  archive=$(bash scripts/image.sh | tail -n 1)
  # The simulated Camunda releases' image, from the debug simulator binary the test build above made
  # (named, so that no build with other features runs).
  target_dir=$(cargo metadata --no-deps --format-version 1 --offline \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')
  simulator_archive=$(C8B_SIMULATOR_BIN=$target_dir/debug/camunda-simulator bash scripts/image.sh simulator | tail -n 1)
  node_state=$(mktemp -d "${TMPDIR:-/tmp}/c8b-node.XXXXXX")
  trap 'bash scripts/control-plane.sh stop "$node_state"; rm -rf "$node_state"' EXIT
  step "a second control plane with a real node (kubelet, containerd, kube-scheduler) in $node_state"
  node_kubeconfig=$(bash scripts/control-plane.sh start "$node_state")
  bash scripts/control-plane.sh start-node "$node_state" >/dev/null
  bash scripts/control-plane.sh import-image "$node_state" "$archive"
  bash scripts/control-plane.sh import-image "$node_state" "$simulator_archive"
  step "the real-node tests: the chart installs the image, step Jobs run as containers, simulated releases"
  # The archives are named after the tags: camunda-backup-operator-<version>-dev.oci.tar and
  # camunda-simulator-<version>-dev.oci.tar.
  tag=$(basename "$archive" .oci.tar)
  simulator_tag=$(basename "$simulator_archive" .oci.tar)
  C8B_OPERATOR_IMAGE=localhost/camunda-backup-operator:${tag#camunda-backup-operator-} \
    C8B_SIMULATOR_IMAGE=localhost/camunda-simulator:${simulator_tag#camunda-simulator-} KUBECONFIG=$node_kubeconfig \
    cargo test -p camunda-backup-operator --test integration -- --include-ignored --test-threads 2 real_node::
  bash scripts/control-plane.sh stop "$node_state"
  rm -rf "$node_state"
fi

if [ ${#filter[@]} -eq 0 ]; then
  step "the demo, non-interactively (scripts/demo.sh --ci)"
  bash scripts/demo.sh --ci
fi

step "all checks passed in $(( $(date +%s) - started ))s"
