#!/usr/bin/env bash
# A real Kubernetes control plane (etcd + kube-apiserver + kube-controller-manager v1.20.2) on loopback,
# built from Debian bookworm's `kubernetes` source package, for the tests and the demo; and, on top of
# it, an optional real node (containerd + kubelet + kube-scheduler from the same build) that runs Pods
# from locally built images, for tests that need a kubelet (security context, probes, the operator's
# image). Each step's reason and each pitfall it avoids is noted where it is done.
#
#   scripts/control-plane.sh install               apt packages and the cached build (first run ~10 min)
#   scripts/control-plane.sh start DIR             start the control plane with its state in DIR; prints
#                                                  the kubeconfig path (no node: Pods stay Pending)
#   scripts/control-plane.sh start-node DIR        on the control plane started in DIR: containerd,
#                                                  kube-scheduler and kubelet as node "c8b-node"; waits
#                                                  until the Node is Ready (one node per machine)
#   scripts/control-plane.sh import-image DIR ARCHIVE
#                                                  import an OCI archive into the node's containerd
#   scripts/control-plane.sh stop-node DIR         stop the node only and undo its host changes
#   scripts/control-plane.sh stop DIR              stop the node (if any), then the control plane
#   scripts/control-plane.sh run [--node [--image ARCHIVE]] -- CMD   run CMD with KUBECONFIG set to a
#                                                  fresh control plane (and a real node, with the
#                                                  image imported), then stop everything
#
# The build is cached outside the checkout in $C8B_CACHE_DIR (default ~/.cache/camunda-backup-operator).
# The node changes the host while it runs, and stop-node undoes it: an address 10.254.254.1/32 on lo,
# a line in /etc/hosts, net.ipv4.ip_forward=1, the bridge cni0, kubelet's KUBE-* iptables chains,
# cgroups under kubepods. Test machines only: kubelet's API is open (anonymous, AlwaysAllow).
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

K8S_VERSION=1.20.2
CACHE_DIR=$(c8b_cache_dir)
K8S_CACHE=$CACHE_DIR/kubernetes-$K8S_VERSION
BIN_DIR=$K8S_CACHE/bin
APT_PACKAGES=(golang-1.19-go etcd-server jq rsync openssl curl unzip
  # the real node: container runtime, CNI plugins (/usr/lib/cni), image builds, the pause binary
  containerd runc containernetworking-plugins buildah busybox-static gcc libc6-dev iptables iproute2)

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
  # The whole new signature: a bare `it *hiter)` also matches `func mapiternext(it *hiter)`, unpatched.
  grep -q 'func mapiterinit(rtype unsafe.Pointer, m unsafe.Pointer, it \*hiter)$' "$dir/unsafe_link.go" \
    || { log "reflect2 patch did not apply to unsafe_link.go"; exit 1; }
  grep -q 'mapiterinit(type2.rtype, \*(\*unsafe.Pointer)(obj), &it)' "$dir/unsafe_map.go" \
    || { log "reflect2 patch did not apply to unsafe_map.go"; exit 1; }
}

# The four binaries one `make` builds and the cache keeps together. Layout 2 added kubelet and
# kube-scheduler (and pause.c for the node's sandbox image) to layout 1's two; a cache without the stamp
# of the current layout is rebuilt, all four at once (the extra two cost ~8 min, the old two ~2 min more).
K8S_BINARIES=(kube-apiserver kube-controller-manager kubelet kube-scheduler)
CACHE_LAYOUT="layout=2 ${K8S_BINARIES[*]} pause.c"

kubernetes_built() {
  [ "$(cat "$K8S_CACHE/layout" 2>/dev/null)" = "$CACHE_LAYOUT" ] || return 1
  local b
  for b in "${K8S_BINARIES[@]}"; do [ -x "$BIN_DIR/$b" ] || return 1; done
  [ -f "$K8S_CACHE/src/pause.c" ]
}

build_kubernetes() {
  if kubernetes_built; then
    return 0
  fi
  local started work
  started=$(date +%s)
  work=$(mktemp -d "${TMPDIR:-/tmp}/c8b-k8s-build.XXXXXX")
  log "building ${K8S_BINARIES[*]} $K8S_VERSION from Debian's source with one make (~10 min on 2 cores, once; log: $work/build.log)"
  (
    cd "$work"
    apt-get source --download-only kubernetes >/dev/null 2>&1
    # A glob, not `tar tzf | head -1`: under pipefail, head closing the pipe early kills tar (exit 141).
    local origs=(kubernetes_*.orig.tar.*) orig
    orig=${origs[0]}
    mkdir -p gopath/src/k8s.io tree
    tar -xf "$orig" -C tree --strip-components=1
    patch_reflect2 "$work/tree"
    ln -s "$work/tree" gopath/src/k8s.io/kubernetes
    cd gopath/src/k8s.io/kubernetes
    # No GOCACHE here: hack/lib/golang.sh sets its own (_output/local/go/cache) inside the tree.
    local targets=() b
    for b in "${K8S_BINARIES[@]}"; do targets+=("cmd/$b"); done
    env GOPATH="$work/gopath" GO111MODULE=off GOFLAGS=-mod=vendor \
      PATH="/usr/lib/go-1.19/bin:$PATH" CGO_ENABLED=0 KUBE_GIT_VERSION="v$K8S_VERSION" \
      make WHAT="${targets[*]}" >"$work/build.log" 2>&1 \
      || { tail -n 40 "$work/build.log" >&2; log "the build failed; its tree is kept in $work"; exit 1; }
    # One rename per file: a control plane started from the cache meanwhile keeps running (and a layout-1
    # cache's two binaries are replaced by the same build's).
    mkdir -p "$BIN_DIR" "$K8S_CACHE/src"
    for b in "${K8S_BINARIES[@]}"; do
      install -m 0755 "_output/bin/$b" "$BIN_DIR/.$b.tmp"
      mv -f "$BIN_DIR/.$b.tmp" "$BIN_DIR/$b"
    done
    cp build/pause/linux/pause.c "$K8S_CACHE/src/pause.c"
  )
  printf '%s\n' "$CACHE_LAYOUT" >"$K8S_CACHE/layout"
  rm -rf "$work"
  log "built and cached in $BIN_DIR in $(( $(date +%s) - started ))s"
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
  # The serving certificate of the tests' OpenID provider (c8b_testkit::oidc), which the API server's
  # OIDC authenticator trusts through the same CA.
  openssl req -newkey rsa:2048 -nodes -subj "/CN=c8b-test-oidc" \
    -keyout "$d/oidc.key" -out "$d/oidc.csr" 2>/dev/null
  printf 'subjectAltName=IP:127.0.0.1\n' >"$d/oidc-san.ext"
  openssl x509 -req -in "$d/oidc.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 3650 \
    -extfile "$d/oidc-san.ext" -out "$d/oidc.crt" 2>/dev/null
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

  # OIDC, as a platform team would configure it for an identity provider they run: tokens with the
  # audience c8b-console-api from the issuer in $dir/oidc-issuer authenticate as "oidc:<sub>" in the
  # groups "oidc:<group>". Nothing serves that issuer until a test starts c8b_testkit::oidc there;
  # until then the authenticator retries its discovery quietly and other tokens are unaffected.
  # The port stays unbound until then, so it is taken below the kernel's ephemeral range, where no
  # listener on port 0 and no outgoing connection can take it in the meantime.
  local oidc_issuer
  oidc_issuer="https://127.0.0.1:$(python3 -c '
import random, socket
low = int(open("/proc/sys/net/ipv4/ip_local_port_range").read().split()[0])
for port in random.sample(range(max(1024, low - 12000), low), 200):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port)); print(port); break
    except OSError:
        pass
    finally:
        s.close()
')"
  printf '%s\n' "$oidc_issuer" >"$dir/oidc-issuer"

  local audit_args=()
  if [ -n "${C8B_AUDIT_LOG:-}" ]; then
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nrules:\n- level: Metadata\n' >"$dir/audit-policy.yaml"
    audit_args=(--audit-policy-file "$dir/audit-policy.yaml" --audit-log-path "$C8B_AUDIT_LOG")
  fi
  # --kubelet-preferred-address-types: `kubectl logs/exec` on a real node (start-node) dial its IP, not
  # its name (which no DNS resolves); without a node it changes nothing.
  "$BIN_DIR/kube-apiserver" --etcd-servers "http://127.0.0.1:$etcd_port" \
    --bind-address 127.0.0.1 --secure-port "$api_port" --advertise-address 127.0.0.1 \
    --tls-cert-file "$dir/server.crt" --tls-private-key-file "$dir/server.key" --client-ca-file "$dir/ca.crt" \
    --service-account-key-file "$dir/sa.pub" --service-account-signing-key-file "$dir/sa.key" \
    --service-account-issuer https://kubernetes.default.svc --token-auth-file "$dir/tokens.csv" \
    --authorization-mode RBAC --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=false \
    --kubelet-preferred-address-types InternalIP,Hostname \
    --enable-admission-plugins NamespaceLifecycle,ServiceAccount \
    --oidc-issuer-url "$oidc_issuer" --oidc-client-id c8b-console-api --oidc-ca-file "$dir/ca.crt" \
    --oidc-signing-algs ES256 --oidc-username-claim sub --oidc-username-prefix oidc: \
    --oidc-groups-claim groups --oidc-groups-prefix oidc: \
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
  [ ! -d "$dir/node" ] || stop_node "$dir"
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

# ----------------------------------------------------------------------------------------------------
# The real node. One per machine: its address, hosts line, bridge and iptables chains are the host's.

NODE_NAME=c8b-node
NODE_IP=10.254.254.1
POD_SUBNET=10.88.0.0/16
CNI_NETWORK=c8b-node
CNI_BRIDGE=cni0
PAUSE_IMAGE=localhost/c8b/pause:3.4
PAUSE_ARCHIVE=$CACHE_DIR/images/pause-3.4.oci.tar
HOSTS_LINE="$NODE_IP $NODE_NAME # camunda-backup-operator test node"
# The state directory whose node holds the host's node resources right now.
NODE_OWNER=/run/c8b-node.owner
# Directories outside DIR that containerd, CNI, kubelet and mount create; stop-node removes those that
# were absent when the node started. (kubelet 1.20's device plugin socket is always under
# /var/lib/kubelet/device-plugins, whatever --root-dir says.)
NODE_HOST_DIRS=(/run/containerd /run/netns /var/lib/cni /var/log/pods /var/log/containers /var/lib/kubelet
  /run/mount)

require_root() {
  [ "$(id -u)" -eq 0 ] || { log "$1 needs root (mounts, iptables, /etc/hosts, cgroups)"; exit 1; }
}

# ctr against the node's containerd, in the namespace the CRI plugin uses.
node_ctr() {
  local dir=$1
  shift
  ctr --address "$dir/node/containerd/containerd.sock" --namespace k8s.io "$@"
}

node_kubectl() {
  local dir=$1
  shift
  kubectl --kubeconfig "$dir/kubeconfig" "$@"
}

# True if PIDFILE names a live process whose command line mentions DIR (a PID file that survived a
# reboot must not lead to killing whatever reuses the number).
pid_alive() {
  local pidfile=$1 dir=$2 pid
  [ -f "$pidfile" ] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null && tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir"
}

# SIGTERM, up to SECONDS (default 10) for the exit, then SIGKILL; the PID file goes either way.
stop_pid() {
  local pidfile=$1 dir=$2 seconds=${3:-10}
  if pid_alive "$pidfile" "$dir"; then
    local pid
    pid=$(cat "$pidfile")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 $(( seconds * 10 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# The sandbox ("pause") image: build/pause/linux/pause.c of the same source, static, FROM scratch,
# built by buildah (vfs, chroot: no daemon, overlay or user namespace) into an OCI archive in the cache.
# No registry: containerd's sandbox_image points at the imported local tag.
build_pause_image() {
  if [ -f "$PAUSE_ARCHIVE" ] && [ "$PAUSE_ARCHIVE" -nt "$K8S_CACHE/src/pause.c" ]; then
    return 0
  fi
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/c8b-pause.XXXXXX")
  gcc -Os -Wall -Werror -static -DVERSION=v3.4-c8b -o "$work/pause" "$K8S_CACHE/src/pause.c"
  strip "$work/pause"
  printf 'FROM scratch\nCOPY pause /pause\nUSER 65535:65535\nENTRYPOINT ["/pause"]\n' >"$work/Containerfile"
  c8b_buildah "$work/store" bud --quiet -f "$work/Containerfile" -t "$PAUSE_IMAGE" "$work" >/dev/null
  mkdir -p "$(dirname "$PAUSE_ARCHIVE")"
  rm -f "$PAUSE_ARCHIVE.tmp"
  c8b_buildah "$work/store" push --quiet "$PAUSE_IMAGE" "oci-archive:$PAUSE_ARCHIVE.tmp:$PAUSE_IMAGE"
  mv "$PAUSE_ARCHIVE.tmp" "$PAUSE_ARCHIVE"
  rm -rf "$work"
  log "built the sandbox image $PAUSE_IMAGE ($(du -k "$PAUSE_ARCHIVE" | cut -f1) KB) into $PAUSE_ARCHIVE"
}

# containerd's default config with its paths under DIR/node/containerd (root, state, socket, runc state,
# the opt plugin's /opt/containerd), the CNI config under DIR and Debian's plugins in /usr/lib/cni, the
# local sandbox image, and restrict_oom_score_adj: these VMs lack CAP_SYS_RESOURCE even in PID 1's
# bounding set, so runc cannot give the sandbox its -998 ("can't get final child's PID from pipe: EOF");
# restricted, containerd clamps every score to its own (0).
write_containerd_config() {
  local nd=$1
  containerd config default >"$nd/containerd/config.default.toml"
  python3 - "$nd" "$PAUSE_IMAGE" >"$nd/containerd/config.toml" <<'PY'
import re, sys
nd, pause = sys.argv[1], sys.argv[2]
c = f"{nd}/containerd"
want = {
    ("", "root"): f'"{c}/root"',
    ("", "state"): f'"{c}/state"',
    ("grpc", "address"): f'"{c}/containerd.sock"',
    ('plugins."io.containerd.grpc.v1.cri"', "sandbox_image"): f'"{pause}"',
    ('plugins."io.containerd.grpc.v1.cri"', "restrict_oom_score_adj"): "true",
    ('plugins."io.containerd.grpc.v1.cri".cni', "bin_dir"): '"/usr/lib/cni"',
    ('plugins."io.containerd.grpc.v1.cri".cni', "conf_dir"): f'"{nd}/cni/net.d"',
    ('plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options', "Root"): f'"{c}/runc"',
    ('plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options', "SystemdCgroup"): "false",
    ('plugins."io.containerd.internal.v1.opt"', "path"): f'"{c}/opt"',
}
done, section, out = set(), "", []
for line in open(f"{c}/config.default.toml").read().splitlines():
    m = re.match(r"\s*\[(.*)\]\s*$", line)
    if m:
        section = m.group(1)
    m = re.match(r"(\s*)(\w+) = ", line)
    if m and (section, m.group(2)) in want:
        line = f"{m.group(1)}{m.group(2)} = {want[(section, m.group(2))]}"
        done.add((section, m.group(2)))
    out.append(line)
missing = set(want) - done
if missing:
    sys.exit(f"containerd config default lacks {sorted(missing)}")
print("\n".join(out))
PY
}

# A bridge on cni0 with the node as gateway and masquerading, host-local addresses (state under DIR),
# portmap for hostPort. containerd's CRI plugin loads the first conflist in conf_dir.
write_cni_config() {
  local nd=$1
  cat >"$nd/cni/net.d/10-$CNI_NETWORK.conflist" <<EOC
{
  "cniVersion": "0.4.0",
  "name": "$CNI_NETWORK",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$CNI_BRIDGE",
      "isGateway": true,
      "ipMasq": true,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{ "subnet": "$POD_SUBNET" }]],
        "routes": [{ "dst": "0.0.0.0/0" }],
        "dataDir": "$nd/cni/networks"
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
EOC
}

# KubeletConfiguration v1beta1. The API server has no kubelet client certificate, so kubelet's API is
# anonymous with AlwaysAllow (kubectl logs/exec; test machines only). oomScoreAdj 0 as for containerd.
# Eviction at 2% free and image GC at 99/98% so small test disks keep the imported images. Status
# every 2 s (default 10 s): the Node turns Ready at the first update after the runtime's network is
# ready, and with nodelifecycle off nothing else reads it.
write_kubelet_config() {
  local nd=$1
  cat >"$nd/kubelet-config.yaml" <<EOC
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
readOnlyPort: 0
cgroupDriver: cgroupfs
failSwapOn: false
oomScoreAdj: 0
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
evictionHard:
  memory.available: 100Mi
  nodefs.available: 2%
  imagefs.available: 2%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
nodeStatusUpdateFrequency: 2s
EOC
}

node_start_failed() {
  local rc=$? dir=$1
  [ "$rc" -eq 0 ] && return 0
  log "start-node failed; logs: $dir/containerd.log $dir/kubelet.log $dir/kube-scheduler.log"
  log "what was started stays for diagnosis; remove it with: $0 stop-node $dir"
  exit "$rc"
}

start_node() {
  local dir=${1:?usage: start-node DIR}
  require_root start-node
  dir=$(cd "$dir" && pwd)
  local nd=$dir/node kc=$dir/kubeconfig
  kubernetes_built || { log "kubelet and kube-scheduler are not built yet: run '$0 install' first"; exit 1; }
  local tool
  for tool in containerd ctr runc buildah gcc iptables-save ip; do
    command -v "$tool" >/dev/null || { log "$tool is missing: run '$0 install' first"; exit 1; }
  done
  [ -f "$kc" ] && node_kubectl "$dir" get --raw /readyz >/dev/null 2>&1 \
    || { log "no control plane answers in $dir: run '$0 start $dir' first"; exit 1; }
  # Unix socket paths (containerd's, its .ttrpc, kubelet's under its root dir) must fit in 108 bytes.
  [ "${#dir}" -le 60 ] || { log "DIR is too long for the sockets under it (${#dir} > 60 characters): $dir"; exit 1; }
  if [ -f "$NODE_OWNER" ]; then
    local owner
    owner=$(cat "$NODE_OWNER")
    if [ "$owner" != "$dir" ]; then
      log "the node of $owner holds this machine (running or not stopped): '$0 stop-node $owner' first"
      exit 1
    fi
    if pid_alive "$nd/kubelet.pid" "$dir" \
      && [ "$(node_kubectl "$dir" get node "$NODE_NAME" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null)" = True ]; then
      log "node $NODE_NAME is already running for $dir"
      echo "$kc"
      return 0
    fi
    log "a previous start-node for $dir did not finish: stopping what it left first"
    stop_node "$dir"
  fi
  # shellcheck disable=SC2064
  trap "node_start_failed '$dir'" EXIT
  local t0 t_containerd t_registered
  t0=$(now_ms)
  build_pause_image

  # Host changes, each recorded first so that stop-node undoes exactly these, even after a failure.
  mkdir -p "$nd/containerd" "$nd/cni/net.d" "$nd/cni/networks" "$nd/kubelet" "$nd/pki"
  printf '%s\n' "$dir" >"$NODE_OWNER"
  local d
  for d in "${NODE_HOST_DIRS[@]}"; do
    [ -e "$d" ] || grep -qxF "$d" "$nd/created-host-dirs" 2>/dev/null || echo "$d" >>"$nd/created-host-dirs"
  done
  local sub
  for sub in /sys/fs/cgroup/*/ /sys/fs/cgroup/; do
    [ -e "$sub/kubepods" ] || grep -qxF "${sub}kubepods" "$nd/created-cgroups" 2>/dev/null \
      || echo "${sub}kubepods" >>"$nd/created-cgroups"
  done
  iptables -t nat -S CNI-HOSTPORT-DNAT >/dev/null 2>&1 || touch "$nd/created-hostport-chains"
  command -v nft >/dev/null && [ ! -f "$nd/nft-tables.orig" ] && nft list tables >"$nd/nft-tables.orig"
  [ -f "$nd/ip_forward.orig" ] || sysctl -n net.ipv4.ip_forward >"$nd/ip_forward.orig"
  sysctl -qw net.ipv4.ip_forward=1
  # The node's address: kubelet refuses a loopback node IP and `dummy` links are missing here; a
  # private /32 on lo works. The hosts line lets the API server reach kubelet by the node's name.
  ip -o addr show dev lo | grep -qF " $NODE_IP/32 " || ip addr add "$NODE_IP/32" dev lo
  grep -qxF "$HOSTS_LINE" /etc/hosts || printf '%s\n' "$HOSTS_LINE" >>/etc/hosts

  # A Node left by an earlier kubelet would look Ready before this one has reported anything.
  node_kubectl "$dir" delete node "$NODE_NAME" --ignore-not-found >/dev/null
  write_containerd_config "$nd"
  write_cni_config "$nd"
  write_kubelet_config "$nd"
  setsid containerd --config "$nd/containerd/config.toml" >"$dir/containerd.log" 2>&1 </dev/null &
  echo $! >"$nd/containerd.pid"
  wait_for containerd 30 node_ctr "$dir" version
  node_ctr "$dir" images import "$PAUSE_ARCHIVE" >/dev/null
  t_containerd=$(now_ms)

  "$BIN_DIR/kube-scheduler" --kubeconfig "$kc" --authentication-kubeconfig "$kc" \
    --authorization-kubeconfig "$kc" --leader-elect=false --port 0 --secure-port 0 \
    >"$dir/kube-scheduler.log" 2>&1 </dev/null &
  echo $! >"$nd/kube-scheduler.pid"
  # kubelet registers after ~6 s, 5 of them cAdvisor asking a Docker daemon that is not there (five
  # tries a second apart, hard-coded in 1.20); Ready follows at the next status update (2 s).
  "$BIN_DIR/kubelet" --config "$nd/kubelet-config.yaml" --kubeconfig "$kc" \
    --container-runtime remote --container-runtime-endpoint "unix://$nd/containerd/containerd.sock" \
    --root-dir "$nd/kubelet" --cert-dir "$nd/pki" --hostname-override "$NODE_NAME" \
    --node-ip "$NODE_IP" --oom-score-adj 0 --volume-plugin-dir "$nd/volume-plugins" \
    --seccomp-profile-root "$nd/kubelet/seccomp" --v 1 >"$dir/kubelet.log" 2>&1 </dev/null &
  echo $! >"$nd/kubelet.pid"
  local deadline=$(( $(date +%s) + 60 ))
  until node_kubectl "$dir" get node "$NODE_NAME" >/dev/null 2>&1; do
    local name
    for name in containerd kubelet kube-scheduler; do
      pid_alive "$nd/$name.pid" "$dir" || { tail -n 15 "$dir/$name.log" >&2; log "$name exited"; exit 1; }
    done
    [ "$(date +%s)" -lt "$deadline" ] || { log "timed out waiting for Node $NODE_NAME to register"; exit 1; }
    sleep 0.2
  done
  t_registered=$(now_ms)
  # The TaintNodesByCondition admission plugin gives every new Node node.kubernetes.io/not-ready, and
  # only the nodelifecycle controller (off here) takes it away: remove it once; kubelet 1.20 does not
  # put it back.
  node_kubectl "$dir" taint node "$NODE_NAME" node.kubernetes.io/not-ready:NoSchedule- >/dev/null 2>&1 || true
  node_kubectl "$dir" wait --for condition=Ready --timeout 120s "node/$NODE_NAME" >/dev/null
  [ -z "$(node_kubectl "$dir" get node "$NODE_NAME" -o jsonpath='{.spec.taints}')" ] \
    || { log "node $NODE_NAME still has taints: $(node_kubectl "$dir" get node "$NODE_NAME" -o jsonpath='{.spec.taints}')"; exit 1; }
  trap - EXIT
  local t1
  t1=$(now_ms)
  log "node $NODE_NAME Ready in $(ms_to_s $(( t1 - t0 )))s (containerd up $(ms_to_s $(( t_containerd - t0 )))s," \
    "registered $(ms_to_s $(( t_registered - t0 )))s); logs: $dir/{containerd,kubelet,kube-scheduler}.log"
  echo "$kc"
}

ms_to_s() {
  printf '%d.%d' $(( $1 / 1000 )) $(( $1 % 1000 / 100 ))
}

import_image() {
  local dir=${1:?usage: import-image DIR ARCHIVE} archive=${2:?usage: import-image DIR ARCHIVE}
  require_root import-image
  dir=$(cd "$dir" && pwd)
  [ -f "$archive" ] || { log "no such archive: $archive"; exit 1; }
  pid_alive "$dir/node/containerd.pid" "$dir" || { log "no node runs for $dir: run '$0 start-node $dir' first"; exit 1; }
  # The CRI plugin (so kubelet) only sees namespace k8s.io. Tag images other than `latest`: the default
  # pull policy is then IfNotPresent and the imported image is used; with `latest` it is Always.
  node_ctr "$dir" images import "$archive" >&2
}

# Every mount at or under DIR, deepest first, lazily (kubelet's bind mount of its root dir onto itself,
# its tmpfs volumes, container root filesystems, sandbox shm), until none is left.
unmount_under() {
  local dir=$1 mounts
  for _ in 1 2 3 4 5; do
    mounts=$(awk -v d="$dir" 'index($2, d "/") == 1 { print $2 }' /proc/self/mounts | sort -r)
    [ -n "$mounts" ] || return 0
    local m
    while IFS= read -r m; do umount -l "$(printf '%b' "$m")" 2>/dev/null || true; done <<<"$mounts"
  done
  log "mounts left under $dir: $mounts"
}

# Rules that jump to a chain matching REGEX (from chains that do not match it), then the chains.
#   iptables_remove iptables-save iptables 'KUBE-[^ ]*'
iptables_remove() {
  local save=$1 cmd=$2 chains=$3 table rule chain
  command -v "$save" >/dev/null || return 0
  while IFS=' ' read -r table rule; do
    [ -n "$table" ] || continue
    eval "$cmd -w -t $table -D $rule" 2>/dev/null || true
  done < <("$save" | awk -v c="^($chains)\$" '
    /^\*/ { t = substr($0, 2) }
    /^-A / { for (i = 3; i < NF; i++) if (($i == "-j" || $i == "-g") && $(i + 1) ~ c && $2 !~ c) { print t, substr($0, 4); break } }')
  for action in -F -X; do
    while IFS=' ' read -r table chain; do
      [ -n "$table" ] || continue
      "$cmd" -w -t "$table" "$action" "$chain" 2>/dev/null || true
    done < <("$save" | awk -v c="^($chains)\$" '/^\*/ { t = substr($0, 2) } /^:/ { n = substr($1, 2); if (n ~ c) print t, n }')
  done
}

# Stops the node of DIR and undoes its host changes, in this order: Pods, processes, mounts and network
# namespaces, the bridge, the hosts line, the address and ip_forward, iptables, cgroups. Every step
# tolerates what a failed or partial start left (or did not get to).
stop_node() {
  local dir=${1:?usage: stop-node DIR}
  dir=$(cd "$dir" && pwd)
  local nd=$dir/node
  [ -d "$nd" ] || return 0
  require_root stop-node
  local t0
  t0=$(now_ms)

  # 1. Pods. The scheduler goes first, so replacements that controllers create stay Pending instead of
  #    starting again on the node; then every Pod bound to the node is deleted with a short grace
  #    period (a PID 1 without a SIGTERM handler would otherwise hold it 30 s), and kubelet stops each
  #    sandbox (CNI DEL) before the Pod disappears.
  stop_pid "$nd/kube-scheduler.pid" "$dir"
  if node_kubectl "$dir" get --raw /readyz >/dev/null 2>&1; then
    if pid_alive "$nd/kubelet.pid" "$dir"; then
      node_kubectl "$dir" delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
        --grace-period 1 --wait=false >/dev/null 2>&1 || true
      wait_for "the node's Pods to go" 60 node_pods_gone "$dir" || true
      wait_for "the sandboxes' network namespaces to go" 15 no_cni_netns || true
    fi
    # Without kubelet (or after the wait) nothing confirms a deletion: remove the objects; step 2 and 3
    # clean up what still runs. The Node goes too, so a later start-node waits for a fresh Ready.
    node_kubectl "$dir" delete pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" \
      --grace-period 0 --force >/dev/null 2>&1 || true
    node_kubectl "$dir" delete node "$NODE_NAME" --ignore-not-found --wait=false >/dev/null 2>&1 || true
  fi

  local t_pods
  t_pods=$(now_ms)

  # 2. Processes: kubelet, then what containerd still runs, then containerd; then what containerd did
  #    not get to (it died, say): container processes by the PIDs runc recorded, and their shims.
  stop_pid "$nd/kubelet.pid" "$dir"
  if pid_alive "$nd/containerd.pid" "$dir"; then
    local id
    for id in $(node_ctr "$dir" tasks list --quiet 2>/dev/null); do
      node_ctr "$dir" tasks kill --all --signal SIGKILL "$id" >/dev/null 2>&1 || true
      node_ctr "$dir" tasks delete --force "$id" >/dev/null 2>&1 || true
    done
    for id in $(node_ctr "$dir" containers list --quiet 2>/dev/null); do
      node_ctr "$dir" containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  stop_pid "$nd/containerd.pid" "$dir" 15
  local f pid
  for f in "$nd"/containerd/state/io.containerd.runtime.v2.task/*/*/init.pid; do
    if [ -f "$f" ]; then kill -9 "$(cat "$f")" 2>/dev/null || true; fi
  done
  for pid in $(node_shim_pids "$nd/containerd/containerd.sock"); do kill -9 "$pid" 2>/dev/null || true; done

  local t_procs
  t_procs=$(now_ms)

  # 3. Mounts under DIR; the sandboxes' network namespaces (with their veths); the bridge.
  unmount_under "$dir"
  local ns
  for ns in /run/netns/cni-*; do
    [ -e "$ns" ] || continue
    umount -l "$ns" 2>/dev/null || true
    rm -f "$ns"
  done
  ! ip link show "$CNI_BRIDGE" >/dev/null 2>&1 || ip link del "$CNI_BRIDGE"

  # 4. The hosts line, the address on lo, ip_forward as it was. (/etc/hosts is rewritten in place, not
  #    replaced: it may be a bind mount.)
  if grep -qxF "$HOSTS_LINE" /etc/hosts; then
    local hosts
    hosts=$(grep -vxF "$HOSTS_LINE" /etc/hosts || true)
    printf '%s\n' "$hosts" >/etc/hosts
  fi
  ! ip -o addr show dev lo | grep -qF " $NODE_IP/32 " || ip addr del "$NODE_IP/32" dev lo
  [ ! -f "$nd/ip_forward.orig" ] || sysctl -qw "net.ipv4.ip_forward=$(cat "$nd/ip_forward.orig")"

  # 5. iptables: kubelet's KUBE-* chains (KUBE-FIREWALL drops non-local traffic to 127/8) and the jumps
  #    to them; the bridge plugin's per-sandbox masquerading chains that a missed CNI DEL left; the
  #    portmap chains if the node created them. Then the tables the node created, if empty.
  local ours='KUBE-[^ ]*'
  [ ! -f "$nd/created-hostport-chains" ] || ours="$ours|CNI-HOSTPORT-[^ ]*|CNI-DN-[^ ]*"
  iptables_remove iptables-save iptables "$ours"
  iptables_remove ip6tables-save ip6tables "$ours"
  iptables_remove_cni_masq
  if [ -f "$nd/nft-tables.orig" ]; then
    local family name save
    while read -r _ family name; do
      grep -qxF "table $family $name" "$nd/nft-tables.orig" && continue
      case "$family" in ip) save=iptables-save ;; ip6) save=ip6tables-save ;; *) continue ;; esac
      # Created for the node and now without rules or chains of its own: only iptables' base chains.
      "$save" -t "$name" 2>/dev/null | grep -qE '^(-A |:[^ ]+ - )' || nft delete table "$family" "$name" 2>/dev/null || true
    done < <(nft list tables 2>/dev/null)
  fi

  # 6. The kubepods cgroups (cgroupfs driver) and the host directories the node created.
  local cg
  while IFS= read -r cg; do
    [ -d "$cg" ] && find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
  done <"$nd/created-cgroups" 2>/dev/null || true
  local d
  while IFS= read -r d; do
    case "$d" in
      /run/containerd) [ -S /run/containerd/containerd.sock ] || rm -rf /run/containerd ;;
      /run/netns) rmdir /run/netns 2>/dev/null || true ;;
      *) rm -rf "$d" ;;
    esac
  done <"$nd/created-host-dirs" 2>/dev/null || true

  [ "$(cat "$NODE_OWNER" 2>/dev/null)" != "$dir" ] || rm -f "$NODE_OWNER"
  rm -rf "$nd"
  log "node stopped and its host changes undone in $(ms_to_s $(( $(now_ms) - t0 )))s (Pods" \
    "$(ms_to_s $(( t_pods - t0 )))s, processes $(ms_to_s $(( t_procs - t_pods )))s, host $(ms_to_s $(( $(now_ms) - t_procs )))s)"
}

# The PIDs of the shims (containerd-shim-runc-v2) of the containerd listening on SOCKET: each has
# `-address SOCKET` in its command line. They outlive containerd until their tasks are deleted.
node_shim_pids() {
  local sock=$1 p
  for p in /proc/[0-9]*; do
    case "$(readlink "$p/exe" 2>/dev/null)" in */containerd-shim*) ;; *) continue ;; esac
    tr '\0' '\n' <"$p/cmdline" 2>/dev/null | grep -qxF -- "$sock" && echo "${p#/proc/}"
  done
  return 0
}

node_pods_gone() {
  [ -z "$(node_kubectl "$1" get pods --all-namespaces --field-selector "spec.nodeName=$NODE_NAME" -o name 2>/dev/null)" ]
}

no_cni_netns() {
  ! compgen -G '/run/netns/cni-*' >/dev/null
}

# The bridge plugin's masquerading for a sandbox: a nat chain CNI-<hash> and a POSTROUTING rule, both
# commented with the network's name. CNI DEL removes them; this is for when it did not run.
iptables_remove_cni_masq() {
  local rule chain
  while IFS= read -r rule; do
    [ -n "$rule" ] || continue
    chain=$(awk '{ for (i = 1; i < NF; i++) if ($i == "-j") print $(i + 1) }' <<<"$rule")
    eval "iptables -w -t nat -D ${rule#-A }" 2>/dev/null || true
    iptables -w -t nat -F "$chain" 2>/dev/null || true
    iptables -w -t nat -X "$chain" 2>/dev/null || true
  done < <(iptables-save -t nat 2>/dev/null | grep -F "name: \\\"$CNI_NETWORK\\\"" | grep '^-A POSTROUTING ' || true)
}

# Runs a command with KUBECONFIG pointing at a fresh control plane (with --node, and a real node), then
# stops everything, whatever the command did.
run_with() {
  local node=0 image=""
  if [ "${1:-}" = "--node" ]; then node=1; shift; fi
  if [ "${1:-}" = "--image" ]; then image=${2:?usage: run --node --image ARCHIVE -- CMD}; shift 2; fi
  if [ "${1:-}" = "--" ]; then shift; fi
  # Global, not local: the EXIT trap runs after this function has returned.
  RUN_DIR=$(mktemp -d "${TMPDIR:-/tmp}/c8b-cp.XXXXXX")
  trap 'stop "$RUN_DIR"; rm -rf "$RUN_DIR"' EXIT
  log "starting a control plane in $RUN_DIR"
  KUBECONFIG=$(start "$RUN_DIR")
  export KUBECONFIG
  # In a subshell: its own EXIT trap reports a failed start, and this one still stops everything.
  if [ "$node" = 1 ]; then (start_node "$RUN_DIR" >/dev/null); fi
  if [ -n "$image" ]; then import_image "$RUN_DIR" "$image"; fi
  "$@"
}

case "${1:-}" in
  install) install_packages; build_kubernetes ;;
  start) start "${2:-}" ;;
  start-node) start_node "${2:-}" ;;
  import-image) import_image "${2:-}" "${3:-}" ;;
  stop-node) stop_node "${2:-}" ;;
  stop) stop "${2:-}" ;;
  run) shift; run_with "$@" ;;
  *) echo "usage: $0 install | start DIR | start-node DIR | import-image DIR ARCHIVE | stop-node DIR | stop DIR | run [--node] -- COMMAND..." >&2; exit 2 ;;
esac
