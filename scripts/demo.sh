#!/usr/bin/env bash
# The demo: one command from a fresh checkout to a backup of a (simulated) Camunda 8.7 cluster taken by
# the operator, installed by its Helm chart from its own image, on a real Kubernetes node on this
# machine: the operator and its snapshot steps run as Pods and Jobs (kubectl get pods, kubectl logs).
# Runs as root (the node needs it: containerd, network namespaces, iptables).
#
#   scripts/demo.sh          run it and keep everything running; Ctrl-C stops every process it started
#   scripts/demo.sh --ci     (or C8B_DEMO_NONINTERACTIVE=1) the same end to end, check that the backup
#                            Completed with every step Succeeded, stop everything, exit 0 (1 on failure)
#
# What it starts, with its state in .c8b/demo/ (git-ignored):
#   - the local control plane (etcd + kube-apiserver + kube-controller-manager 1.20) and a real node
#     (containerd + kubelet + kube-scheduler), scripts/control-plane.sh start / start-node
#   - the operator's image (scripts/image.sh), imported into the node, installed with the chart
#   - the Camunda simulator (`camunda-simulator`, crates/simulator) serving cluster "demo" (8.7.3) on the
#     node's address, where the step Pods reach it
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."
ROOT=$(pwd)

CI=${C8B_DEMO_NONINTERACTIVE:-0}
for arg in "$@"; do
  case "$arg" in
    --ci) CI=1 ;;
    -h | --help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg (try --help)" >&2; exit 2 ;;
  esac
done

STATE=$ROOT/.c8b/demo
NS=demo
CLUSTER=demo
BACKUP=demo-first-backup
SIMULATOR=$ROOT/target/debug/camunda-simulator
NODE_IP=10.254.254.1
RELEASE=c8b
BACKUP_TIMEOUT=${C8B_DEMO_TIMEOUT:-180}

started=$(date +%s)
phase_started=$started
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
info() { printf '   %s\n' "$*"; }
# Prints how long the previous phase took, so the first run's cost is visible.
took() {
  local now; now=$(date +%s)
  info "($1 took $(( now - phase_started ))s; $(( now - started ))s in total)"
  phase_started=$now
}

PIDS=()
NAMES=()
CP_STARTED=0
stop_all() {
  local rc=$?
  trap - EXIT INT TERM
  if [ ${#PIDS[@]} -gt 0 ]; then
    say "stopping the demo"
    local i
    for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
      if kill "${PIDS[$i]}" 2>/dev/null; then
        info "stopped ${NAMES[$i]} (pid ${PIDS[$i]})"
      fi
    done
    for (( i=${#PIDS[@]}-1; i>=0; i-- )); do
      for _ in $(seq 1 50); do kill -0 "${PIDS[$i]}" 2>/dev/null || break; sleep 0.1; done
      kill -9 "${PIDS[$i]}" 2>/dev/null || true
    done
  fi
  if [ "$CP_STARTED" = 1 ]; then
    bash scripts/control-plane.sh stop "$STATE/cp"
    info "stopped the control plane"
  fi
  exit "$rc"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Starts "$@" in the background with its output in $STATE/$name.log and remembers its PID.
spawn() {
  local name=$1; shift
  "$@" >"$STATE/$name.log" 2>&1 &
  PIDS+=("$!")
  NAMES+=("$name")
  info "started $name (pid $!), log: $STATE/$name.log"
}

# Waits up to $2 seconds for "$3..." to succeed, or fails naming $1.
wait_until() {
  local what=$1 deadline=$(( $(date +%s) + $2 )); shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then echo "timed out waiting for $what" >&2; return 1; fi
    sleep 0.2
  done
}

fail() {
  echo >&2
  echo "DEMO FAILED: $*" >&2
  if [ -n "${KUBECONFIG:-}" ]; then
    echo "--- the operator's log (kubectl logs) ---" >&2
    kubectl logs -n "$NS" "deployment/$RELEASE-camunda-backup-operator" --tail 40 >&2 2>/dev/null || true
    kubectl get pods,jobs -n "$NS" -o wide >&2 2>/dev/null || true
    echo "--- kubectl get clusterbackup $BACKUP -o yaml (status) ---" >&2
    kubectl get clusterbackup "$BACKUP" -n "$NS" -o jsonpath='{.status}' >&2 2>/dev/null || true
    echo >&2
  fi
  exit 1
}

trap 'fail "a command failed at line $LINENO"' ERR

say "1/7 installing what the demo needs (apt packages and the Kubernetes 1.20 build: ~9 min once, then cached)"
bash scripts/control-plane.sh install
took "install"

say "2/7 building the simulator and the operator's image (scripts/image.sh; a few minutes on the first run)"
cargo build --quiet --bin camunda-simulator
ARCHIVE=$(bash scripts/image.sh | tail -n 1)
tag=$(basename "$ARCHIVE" .oci.tar)
IMAGE_TAG=${tag#camunda-backup-operator-}
info "image localhost/camunda-backup-operator:$IMAGE_TAG ($(du -h "$ARCHIVE" | cut -f1) archive)"
took "build"

say "3/7 starting the local control plane and a real node (state in .c8b/demo/)"
# A previous demo that was killed hard may have left its processes: stop them by their recorded PIDs.
if [ -d "$STATE/cp" ]; then bash scripts/control-plane.sh stop "$STATE/cp"; fi
rm -rf "$STATE"
mkdir -p "$STATE"
CP_STARTED=1
KUBECONFIG=$(bash scripts/control-plane.sh start "$STATE/cp")
export KUBECONFIG
info "kubeconfig: $KUBECONFIG"
bash scripts/control-plane.sh start-node "$STATE/cp" >/dev/null
bash scripts/control-plane.sh import-image "$STATE/cp" "$ARCHIVE"
kubectl get nodes -o wide | sed 's/^/   /'
took "control plane and node start"

say "4/7 installing the CRDs and namespace $NS"
# A 1.20 server rejects the CRDs' CEL rules on (server-side) apply; a plain create accepts them and
# drops the rules (real clusters keep them: use kubectl apply --server-side there). --validate=false
# because kubectl's own validation against the 1.20 schema refuses the unknown field too.
kubectl create --validate=false -f crds/ >/dev/null
kubectl wait --for condition=established --timeout=60s crd/camundaclusters.c8backup.dev \
  crd/clusterbackups.c8backup.dev crd/backupschedules.c8backup.dev >/dev/null
kubectl create namespace "$NS" >/dev/null
info "CRDs established: $(kubectl get crd -o name | grep -c c8backup.dev) of 3"
took "CRDs"

say "5/7 starting the Camunda simulator and installing the operator with its chart"
spawn simulator "$SIMULATOR" --listen "$NODE_IP:0" --cluster "$CLUSTER=8.7.3" \
  --backup-duration 1s --state-file "$STATE/simulator.json"
wait_until "the simulator's address" 30 test -s "$STATE/simulator.log" || fail "the simulator did not start"
wait_until "the simulator's address" 30 grep -Eq '^[0-9.]+:[0-9]+$' "$STATE/simulator.log" \
  || fail "the simulator did not print its address"
SIM=$(grep -Em1 '^[0-9.]+:[0-9]+$' "$STATE/simulator.log")
info "simulator at http://$SIM (cluster $CLUSTER, Camunda 8.7.3)"
HTTP_PORT=$(free_port)
API_PORT=$(sed -n 's#.*server: https://127.0.0.1:\([0-9]*\).*#\1#p' "$KUBECONFIG" | head -n 1)
# The local API server listens on the node's loopback only: the operator Pod joins the node's network
# (hostNetwork) and reaches it at 127.0.0.1; a real cluster needs none of these values. Without Service
# routing the API server could not call the admission webhook either, so the demo leaves it off.
"$(bash scripts/tools.sh)" install "$RELEASE" charts/camunda-backup-operator --namespace "$NS" --skip-crds \
  --set image.repository=localhost/camunda-backup-operator --set "image.tag=$IMAGE_TAG" \
  --set watchNamespace="$NS" --set hostNetwork=true --set "http.port=$HTTP_PORT" --set logFormat=text \
  --set webhook.enabled=false \
  --set 'extraEnv[0].name=KUBERNETES_SERVICE_HOST' --set 'extraEnv[0].value=127.0.0.1' \
  --set 'extraEnv[1].name=KUBERNETES_SERVICE_PORT' --set-string "extraEnv[1].value=$API_PORT" \
  --wait --timeout 180s >/dev/null || fail "helm install did not get the operator Ready"
kubectl get pods -n "$NS" -o wide | sed 's/^/   /'
info "operator Ready through its own probes; /livez, /readyz and /metrics on http://127.0.0.1:$HTTP_PORT"
took "simulator and operator"

say "6/7 creating a CamundaCluster, a ClusterBackup and a BackupSchedule"
kubectl apply -n "$NS" -f - <<EOF
apiVersion: c8backup.dev/v1alpha1
kind: CamundaCluster
metadata:
  name: $CLUSTER
spec:
  version: "8.7.3"
  zeebe: { url: "http://$SIM/$CLUSTER/zeebe" }
  operate: { url: "http://$SIM/$CLUSTER/operate" }
  tasklist: { url: "http://$SIM/$CLUSTER/tasklist" }
  optimize: { url: "http://$SIM/$CLUSTER/optimize" }
  elasticsearch:
    url: "http://$SIM/$CLUSTER/elasticsearch"
    snapshotRepository: camunda
  backup:
    maxRetained: 3
    minInterval: 5h
---
apiVersion: c8backup.dev/v1alpha1
kind: ClusterBackup
metadata:
  name: $BACKUP
spec:
  clusterRef: { name: $CLUSTER }
---
apiVersion: c8backup.dev/v1alpha1
kind: BackupSchedule
metadata:
  name: $CLUSTER-nightly
spec:
  clusterRef: { name: $CLUSTER }
  schedule: "30 2 * * *"
  timeZone: Europe/Berlin
EOF

say "7/7 the backup, step by step (what kubectl get c8bk -w and the status show)"
printf '   %-8s  %-10s  %-9s  %-10s  %s\n' TIME PHASE BACKUP-ID EXPORTING "STEPS (name=phase)"
last=""
deadline=$(( $(date +%s) + BACKUP_TIMEOUT ))
final=""
while :; do
  json=$(kubectl get clusterbackup "$BACKUP" -n "$NS" -o json 2>/dev/null) || json='{}'
  line=$(jq -r '[
      (.status.phase // "-"),
      ((.status.backupId // "-") | tostring),
      (.status.exporting.state // "-"),
      ([.status.steps[]? | "\(.name)=\(.phase)"] | join(" "))
    ] | @tsv' <<<"$json")
  if [ "$line" != "$last" ]; then
    IFS=$'\t' read -r p id exp steps <<<"$line"
    printf '   %-8s  %-10s  %-9s  %-10s  %s\n' "$(date +%H:%M:%S)" "$p" "$id" "$exp" "$steps"
    last=$line
  fi
  phase=$(jq -r '.status.phase // ""' <<<"$json")
  case "$phase" in
    Completed | Failed | Rejected) final=$phase; break ;;
  esac
  if [ "$(date +%s)" -ge "$deadline" ]; then fail "the backup did not finish within ${BACKUP_TIMEOUT}s"; fi
  sleep 0.5
done
took "backup"

echo
kubectl get c8c,c8bk,c8bs -n "$NS"
echo
info "The step Jobs (the web-app snapshots, before the pause) and their Pods, which ran as containers on the node:"
kubectl get jobs,pods -n "$NS" -l c8backup.dev/backup="$BACKUP" | sed 's/^/   /'
echo
info "The operator's log (kubectl logs deployment/$RELEASE-camunda-backup-operator), last lines:"
kubectl logs -n "$NS" "deployment/$RELEASE-camunda-backup-operator" --tail 8 | sed 's/^/   /'
echo
info "Events of the backup:"
kubectl get events.events.k8s.io -n "$NS" --field-selector "regarding.name=$BACKUP" \
  -o custom-columns='TIME:.metadata.creationTimestamp,TYPE:.type,REASON:.reason,NOTE:.note' 2>/dev/null \
  | sed 's/^/   /' || true

[ "$final" = Completed ] || fail "the backup ended $final"
not_ok=$(kubectl get clusterbackup "$BACKUP" -n "$NS" -o json \
  | jq -r '[.status.steps[] | select(.phase != "Succeeded") | "\(.name)=\(.phase)"] | join(" ")')
steps=$(kubectl get clusterbackup "$BACKUP" -n "$NS" -o json | jq '.status.steps | length')
[ "$steps" -gt 0 ] && [ -z "$not_ok" ] || fail "not every step Succeeded: ${not_ok:-no steps}"
say "backup $BACKUP Completed, all $steps steps Succeeded ($(( $(date +%s) - started ))s since the demo started)"

if [ "$CI" = 1 ]; then
  exit 0
fi

cat <<EOF

Everything keeps running. In another terminal:

  export KUBECONFIG=$KUBECONFIG
  kubectl get c8c,c8bk,c8bs -n $NS                 # clusters, backups, schedules
  kubectl get c8bk $BACKUP -n $NS -o yaml          # the backup's status, step by step
  kubectl get jobs,pods -n $NS                     # the operator's Pod and one Job per snapshot step before the pause
  kubectl logs -n $NS deployment/$RELEASE-camunda-backup-operator          # the operator's log
  kubectl get events.events.k8s.io -n $NS          # what the operator did
  curl -s http://127.0.0.1:$HTTP_PORT/metrics       # the operator's metrics

  # another backup (refused by the 5h rate limit unless you delete a completed one first):
  kubectl create -n $NS -f - <<<'{"apiVersion":"c8backup.dev/v1alpha1","kind":"ClusterBackup","metadata":{"name":"second"},"spec":{"clusterRef":{"name":"$CLUSTER"}}}'

Logs: kubectl logs (above), $STATE/simulator.log, $STATE/cp/*.log
Press Ctrl-C to stop every process the demo started.
EOF
while :; do
  for i in "${!PIDS[@]}"; do
    kill -0 "${PIDS[$i]}" 2>/dev/null || fail "${NAMES[$i]} exited (see $STATE/${NAMES[$i]}.log)"
  done
  sleep 2
done
