#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager v1.20.2) on loopback,
# built from Debian bookworm's `kubernetes` source package, for the tests and the demo.
#
#   scripts/control-plane.sh install   apt packages and the cached build (first run ~6 min, then seconds)
#   scripts/control-plane.sh start DIR start everything with its state in DIR; prints the kubeconfig path
#   scripts/control-plane.sh stop DIR  stop the processes started for DIR, by their PIDs
#   scripts/control-plane.sh run -- CMD  run CMD with KUBECONFIG set to a fresh control plane, then stop it
#
# The build is cached outside the checkout in $C8B_CACHE_DIR (default ~/.cache/camunda-backup-operator).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K8S_VERSION=1.20.2
CACHE_DIR=${C8B_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/camunda-backup-operator}
BIN_DIR=$CACHE_DIR/kubernetes-$K8S_VERSION/bin
APT_PACKAGES=(golang-1.19-go etcd-server jq rsync openssl curl unzip)

log() { printf '[control-plane] %s\n' "$*" >&2; }

sudo_if_needed() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  local src=/etc/apt/sources.list.d/bookworm-src.sources
  if [ ! -f "$src" ]; then
    log "adding a deb-src entry for bookworm main"
    sudo_if_needed tee "$src" >/dev/null <<'EOF'
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: bookworm
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    sudo_if_needed apt-get update -qq
  elif [ ${#missing[@]} -gt 0 ]; then
    sudo_if_needed apt-get update -qq
  fi
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing ${missing[*]}"
    sudo_if_needed env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
}

# Go 1.18+ crashes the 1.20 API server in json-iterator because the vendored reflect2 v1.0.1 calls the
# old runtime.mapiterinit signature. This rewrites it the way reflect2 v1.0.2 does.
patch_reflect2() {
  local dir=$1/vendor/github.com/modern-go/reflect2
  python3 - "$dir" <<'PY'
import pathlib, re, sys
d = pathlib.Path(sys.argv[1])
p = d / "unsafe_link.go"
s = p.read_text()
s = re.sub(r"func mapiterinit\(rtype unsafe\.Pointer, m unsafe\.Pointer\) \*hiter",
           "func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it *hiter)", s)
s = re.sub(r"type hiter struct \{.*?\n\}",
           """type hiter struct {
	key         unsafe.Pointer
	value       unsafe.Pointer
	t           unsafe.Pointer
	h           unsafe.Pointer
	buckets     unsafe.Pointer
	bptr        unsafe.Pointer
	overflow    *[]unsafe.Pointer
	oldoverflow *[]unsafe.Pointer
	startBucket uintptr
	offset      uint8
	wrapped     bool
	B           uint8
	i           uint8
	bucket      uintptr
	checkBucket uintptr
}""", s, flags=re.S)
p.write_text(s)
p = d / "unsafe_map.go"
s = p.read_text()
s = s.replace("""	return &UnsafeMapIterator{
		hiter:      mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj)),""",
"""	var it hiter
	mapiterinit(type2.rtype, *(*unsafe.Pointer)(obj), &it)
	return &UnsafeMapIterator{
		hiter:      &it,""")
p.write_text(s)
PY
  grep -q 'it \*hiter)' "$dir/unsafe_link.go" || { log "reflect2 patch did not apply"; exit 1; }
  grep -q 'mapiterinit(type2.rtype, \*(\*unsafe.Pointer)(obj), &it)' "$dir/unsafe_map.go" \
    || { log "reflect2 patch did not apply to unsafe_map.go"; exit 1; }
}

build_kubernetes() {
  if [ -x "$BIN_DIR/kube-apiserver" ] && [ -x "$BIN_DIR/kube-controller-manager" ]; then
    return 0
  fi
  log "building kube-apiserver and kube-controller-manager $K8S_VERSION from Debian's source (~6 min, once)"
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/c8b-k8s-build.XXXXXX")
  (
    cd "$work"
    apt-get source --download-only kubernetes >/dev/null 2>&1
    local orig
    orig=$(ls kubernetes_*.orig.tar.* | head -n 1)
    mkdir -p gopath/src/k8s.io tree
    tar -xf "$orig" -C tree --strip-components=1
    patch_reflect2 "$work/tree"
    ln -s "$work/tree" gopath/src/k8s.io/kubernetes
    cd gopath/src/k8s.io/kubernetes
    env GOPATH="$work/gopath" GO111MODULE=off GOFLAGS=-mod=vendor GOCACHE="$work/gocache" \
      PATH="/usr/lib/go-1.19/bin:$PATH" CGO_ENABLED=0 KUBE_GIT_VERSION="v$K8S_VERSION" \
      make WHAT="cmd/kube-apiserver cmd/kube-controller-manager" >"$work/build.log" 2>&1 \
      || { tail -n 40 "$work/build.log" >&2; exit 1; }
    mkdir -p "$BIN_DIR.tmp"
    cp _output/bin/kube-apiserver _output/bin/kube-controller-manager "$BIN_DIR.tmp/"
  )
  rm -rf "$BIN_DIR"
  mv "$BIN_DIR.tmp" "$BIN_DIR"
  rm -rf "$work"
  log "cached in $BIN_DIR"
}

wait_for() {
  local what=$1 deadline=$(( $(date +%s) + $2 )); shift 2
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s)" -ge "$deadline" ]; then log "timed out waiting for $what"; return 1; fi
    sleep 0.2
  done
}

make_certs() {
  local d=$1
  openssl req -x509 -newkey rsa:2048 -nodes -days 3650 -subj "/CN=c8b-local-ca" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  openssl req -newkey rsa:2048 -nodes -subj "/CN=kube-apiserver" \
    -keyout "$d/server.key" -out "$d/server.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1,DNS:localhost,IP:10.0.0.1,DNS:kubernetes.default.svc\n' >"$d/san.ext"
  openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
    -extfile "$d/san.ext" -out "$d/server.crt" 2>/dev/null
  openssl genrsa -out "$d/sa.key" 2048 2>/dev/null
  openssl rsa -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

start() {
  local dir=${1:?usage: start DIR}
  mkdir -p "$dir"
  dir=$(cd "$dir" && pwd)
  [ -x "$BIN_DIR/kube-apiserver" ] || { log "not built yet: run '$0 install' first"; exit 1; }
  make_certs "$dir"
  local admin_token etcd_port etcd_peer api_port
  admin_token=$(openssl rand -hex 24)
  etcd_port=$(free_port); etcd_peer=$(free_port); api_port=$(free_port)
  # Extra users for RBAC tests: lines "token,user,uid,groups" appended by the tests through this file.
  printf '%s,admin,admin,"system:masters"\n' "$admin_token" >"$dir/tokens.csv"
  printf 'c8b-rbac-user-token,c8b-rbac-user,c8b-rbac-user,"c8b-users"\n' >>"$dir/tokens.csv"
  # The operator's own identity for benchmarks, so the audit log tells its requests from the harness's.
  local operator_token
  operator_token=$(openssl rand -hex 24)
  printf '%s,c8b-operator,c8b-operator,"system:masters"\n' "$operator_token" >>"$dir/tokens.csv"

  etcd --name c8b --data-dir "$dir/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "c8b=http://127.0.0.1:$etcd_peer" --log-level warn >"$dir/etcd.log" 2>&1 &
  echo $! >"$dir/etcd.pid"
  wait_for etcd 30 curl -sf "http://127.0.0.1:$etcd_port/health"

  local audit_args=()
  if [ -n "${C8B_AUDIT_LOG:-}" ]; then
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n' >"$dir/audit-policy.yaml"
    audit_args=(--audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$C8B_AUDIT_LOG")
  fi
  "$BIN_DIR/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$api_port" --advertise-address 127.0.0.1 \
    --tls-cert-file "$dir/server.crt" --tls-private-key-file "$dir/server.key" --client-ca-file "$dir/ca.crt" \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --token-auth-file "$dir/tokens.csv" \
    --authorization-mode RBAC --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=false \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount \
    "${audit_args[@]}" --v 0 >"$dir/apiserver.log" 2>&1 &
  echo $! >"$dir/apiserver.pid"

  cat >"$dir/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://127.0.0.1:$api_port
    certificate-authority: $dir/ca.crt
users:
- name: admin
  user:
    token: $admin_token
contexts:
- name: local
  context: {cluster: local, user: admin, namespace: default}
current-context: local
EOF
  sed "s/token: $admin_token/token: $operator_token/" "$dir/kubeconfig" >"$dir/operator.kubeconfig"
  wait_for kube-apiserver 90 curl -sf --cacert "$dir/ca.crt" -H "Authorization: Bearer $admin_token" \
    "https://127.0.0.1:$api_port/readyz"

  "$BIN_DIR/kube-controller-manager" --kubeconfig "$dir/kubeconfig" \
    --authentication-kubeconfig "$dir/kubeconfig" --authorization-kubeconfig "$dir/kubeconfig" \
    --service-account-private-key-file "$dir/sa.key" --root-ca-file "$dir/ca.crt" \
    --use-service-account-credentials=false --controllers '*,-nodeipam,-nodelifecycle' \
    --leader-elect=false --port 0 --secure-port 0 ${C8B_KCM_FLAGS:-} >"$dir/controller-manager.log" 2>&1 &
  echo $! >"$dir/controller-manager.pid"
  # The default namespace's ServiceAccount appears once the token controllers run.
  wait_for "default ServiceAccount" 60 kubectl --kubeconfig "$dir/kubeconfig" get serviceaccount default
  echo "$dir/kubeconfig"
}

stop() {
  local dir=${1:?usage: stop DIR}
  for name in controller-manager apiserver etcd; do
    local pidfile=$dir/$name.pid
    [ -f "$pidfile" ] || continue
    local pid
    pid=$(cat "$pidfile")
    if kill "$pid" 2>/dev/null; then
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
  done
}

# Runs a command with KUBECONFIG pointing at a fresh control plane, then stops it, whatever the command did.
run_with() {
  # Global, not local: the EXIT trap runs after this function has returned.
  RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/c8b-cp.XXXXXX")
  trap 'stop "$RUN_DIR"; rm -rf "$RUN_DIR"' EXIT
  log "starting a control plane in $RUN_DIR"
  KUBECONFIG=$(start "$RUN_DIR")
  export KUBECONFIG
  "$@"
}

case "${1:-}" in
  install) install_packages; build_kubernetes ;;
  start) start "${2:-}" ;;
  stop) stop "${2:-}" ;;
  run) shift; [ "${1:-}" = "--" ] && shift; run_with "$@" ;;
  *) echo "usage: $0 install | start DIR | stop DIR | run -- COMMAND..." >&2; exit 2 ;;
esac
