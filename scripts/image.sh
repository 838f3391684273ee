#!/usr/bin/env bash
# The operator's container image, built on this machine from the same Dockerfile as the release, with
# buildah and no registry, daemon or internet: the release binary is built on the host
# (BINARY_STAGE=prebuilt) and the runtime base is a local stand-in for distroless/cc-debian12, built
# FROM scratch out of the Debian packages already installed here.
#
#   scripts/image.sh               release binary, local base, the image, an OCI archive; prints its path
#   scripts/image.sh base          only the base image localhost/c8b/distroless-cc:bookworm
#   scripts/image.sh simulator     the test image localhost/camunda-simulator:<version>-dev instead: the
#                                  camunda-simulator binary (a debug build is fine) on the same base, as
#                                  simulated Camunda brokers and apps for the real-node tests
#   scripts/image.sh --node DIR    also import the archive into the real node of DIR
#                                  (scripts/control-plane.sh start-node DIR); for the operator's image,
#                                  also run it there once as a restricted Job (`crdgen`), timing it
#
# The image is tagged localhost/camunda-backup-operator:<crate version>-dev (never `latest`: with it the
# default pull policy would be Always, with nowhere to pull from). Environment:
#   C8B_BUILDAH_STORE   buildah's storage (vfs), default <cache>/buildah
#   C8B_IMAGE_DIR       where the OCI archive goes, default <cache>/images
#   C8B_RELEASE_TARGET_DIR  cargo's target directory of the release build, default <cache>/release-target
#   C8B_SIMULATOR_BIN   the camunda-simulator binary of the simulator image, used as it is; default the
#                       debug build in cargo's normal target directory (`cargo build -p camunda-simulator
#                       --bin camunda-simulator` first)
# Log lines go to stderr; the archive's path is the last line on stdout.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$(dirname "$0")/.."
ROOT=$(pwd)

CACHE_DIR=$(c8b_cache_dir)
STORE=${C8B_BUILDAH_STORE:-$CACHE_DIR/buildah}
IMAGE_DIR=${C8B_IMAGE_DIR:-$CACHE_DIR/images}
BASE_IMAGE=localhost/c8b/distroless-cc:bookworm
REPOSITORY=localhost/camunda-backup-operator
# The release build keeps its own target directory in the cache, outside the checkout, so that a fresh
# clone on a machine that built it before (CI) rebuilds only what changed.
RELEASE_TARGET=${C8B_RELEASE_TARGET_DIR:-$CACHE_DIR/release-target}
BINARY=$RELEASE_TARGET/release/camunda-backup-operator

log() { printf '[image] %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

MODE=image
NODE_DIR=""
while [ $# -gt 0 ]; do
  case "$1" in
    base) MODE=base ;;
    simulator) MODE=simulator ;;
    --node) NODE_DIR=${2:?--node needs the state DIR of the control plane}; shift ;;
    -h | --help) sed -n '2,24p' "$0"; exit 0 ;;
    *) die "unknown argument: $1 (try --help)" ;;
  esac
  shift
done

command -v buildah >/dev/null || die "buildah is missing: run scripts/control-plane.sh install"
# The crate version and cargo's normal target directory (CARGO_TARGET_DIR or the workspace's target/).
read -r VERSION TARGET_DIR < <(cargo metadata --no-deps --format-version 1 --offline | python3 -c '
import json, sys
m = json.load(sys.stdin)
print(next(p["version"] for p in m["packages"] if p["name"] == "camunda-backup-operator"), m["target_directory"])')
if [ -z "$VERSION" ] || [ -z "$TARGET_DIR" ]; then die "cargo metadata told no version or target directory"; fi
if [ "$MODE" = simulator ]; then
  REPOSITORY=localhost/camunda-simulator
  BINARY=${C8B_SIMULATOR_BIN:-$TARGET_DIR/debug/camunda-simulator}
fi
TAG=$REPOSITORY:$VERSION-dev
ARCHIVE=$IMAGE_DIR/${REPOSITORY#localhost/}-$VERSION-dev.oci.tar
WORK=$(mktemp -d "${TMPDIR:-/tmp}/c8b-image.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
mkdir -p "$STORE" "$IMAGE_DIR"

build_binary() {
  local started
  started=$(now_ms)
  log "cargo build --release --locked -p camunda-backup-operator"
  CARGO_TARGET_DIR=$RELEASE_TARGET cargo build --release --locked --quiet -p camunda-backup-operator
  log "release binary built in $(( ($(now_ms) - started) / 1000 ))s: $(du -h "$BINARY" | cut -f1)"
}

# The simulator's binary: the one C8B_SIMULATOR_BIN names as it is, else the debug build, which cargo
# leaves alone when it is up to date (a release build would take minutes for a test image). It links
# the same glibc libraries as the operator's release binary, so the same base serves both.
build_simulator_binary() {
  if [ -z "${C8B_SIMULATOR_BIN:-}" ]; then
    log "cargo build --locked -p camunda-simulator --bin camunda-simulator"
    cargo build --locked --quiet -p camunda-simulator --bin camunda-simulator
  fi
  [ -x "$BINARY" ] || die "no camunda-simulator binary at $BINARY"
}

# The files of the host's Debian packages the binary needs at run time, under the same paths: the
# dynamic loader and the shared libraries (ldd of the release binary, plus libc, libm and libgcc_s that
# a Rust binary on glibc may load), the CA bundle, passwd/group with nonroot (65532), nsswitch.conf so
# /etc/hosts is read before DNS, /tmp (1777); and, for scanners, each package's dpkg status and
# copyright. No shell, no package manager.
build_base() {
  [ -x "$BINARY" ] || die "no binary at $BINARY (scripts/image.sh builds it)"
  local rootfs=$WORK/base/rootfs multiarch interp
  multiarch=$(gcc -dumpmachine)
  mkdir -p "$rootfs"/{etc/ssl/certs,tmp,home/nonroot,var/lib/dpkg/status.d,usr/share/doc}
  chmod 1777 "$rootfs/tmp"
  interp=$(readelf -l "$BINARY" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')
  [ -n "$interp" ] || die "$BINARY is not dynamically linked"
  local libs=() lib
  mapfile -t libs < <(ldd "$BINARY" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }')
  for lib in libc.so.6 libm.so.6 libgcc_s.so.1; do libs+=("/lib/$multiarch/$lib"); done
  local packages=()
  for lib in "${libs[@]}" "$interp"; do
    [ -e "$lib" ] || die "no $lib on this machine"
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
    # dpkg knows the path the package ships (/lib/..., before the /usr merge), not the resolved one.
    packages+=("$( { dpkg -S "$lib" 2>/dev/null || dpkg -S "$(readlink -f "$lib")" 2>/dev/null || true; } \
      | sed -n '1s/:.*//p')")
  done
  cp -L /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
  packages+=(ca-certificates)
  cat >"$rootfs/etc/passwd" <<'EOF'
root:x:0:0:root:/root:/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin
nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin
EOF
  cat >"$rootfs/etc/group" <<'EOF'
root:x:0:
nobody:x:65534:
nonroot:x:65532:
EOF
  printf 'passwd: files\ngroup: files\nhosts: files dns\n' >"$rootfs/etc/nsswitch.conf"
  local pkg
  for pkg in $(printf '%s\n' "${packages[@]}" | sort -u); do
    [ -n "$pkg" ] || continue
    dpkg-query -s "$pkg" >"$rootfs/var/lib/dpkg/status.d/${pkg%%:*}"
    if [ -f "/usr/share/doc/${pkg%%:*}/copyright" ]; then
      mkdir -p "$rootfs/usr/share/doc/${pkg%%:*}"
      cp "/usr/share/doc/${pkg%%:*}/copyright" "$rootfs/usr/share/doc/${pkg%%:*}/"
    fi
  done
  # The loader must find the libraries without /etc/ld.so.cache, as it will in the image.
  if [ "$(id -u)" -eq 0 ]; then
    cp "$BINARY" "$rootfs/probe"
    chroot "$rootfs" /probe --version >/dev/null || die "the binary does not start on the base's libraries"
    rm "$rootfs/probe"
  fi
  cat >"$WORK/base/Containerfile" <<'EOF'
FROM scratch
COPY rootfs/ /
COPY --chown=65532:65532 rootfs/home/nonroot /home/nonroot
ENV SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
USER 65532:65532
EOF
  # --timestamp 0: the same packages give the same image ID.
  c8b_buildah "$STORE" bud --quiet --timestamp 0 --layers=false -f "$WORK/base/Containerfile" \
    -t "$BASE_IMAGE" "$WORK/base" >/dev/null
  log "base $BASE_IMAGE: $(du -sh "$rootfs" | cut -f1) from $(printf '%s\n' "${packages[@]}" | sort -u | tr '\n' ' ')"
}

build_image() {
  # The build context holds only the stripped binary at the path the `prebuilt` stage copies.
  local ctx=$WORK/context started
  mkdir -p "$ctx/target/release"
  strip -o "$ctx/target/release/camunda-backup-operator" "$BINARY"
  started=$(now_ms)
  c8b_buildah "$STORE" bud --quiet --layers=false --pull=never -f "$ROOT/Dockerfile" \
    --build-arg BINARY_STAGE=prebuilt --build-arg RUNTIME_IMAGE="$BASE_IMAGE" \
    --build-arg VERSION="$VERSION-dev" --build-arg REVISION="$(git rev-parse HEAD 2>/dev/null || echo unknown)" \
    -t "$TAG" "$ctx" >/dev/null
  # buildah 1.28 keeps a working container of the stage that `COPY --from` reads (a full vfs copy):
  # remove those of untagged images (the prebuilt stage's), then the untagged images themselves.
  local id image
  while IFS='|' read -r id image; do
    if [ -n "$id" ] && [ -z "$image" ]; then c8b_buildah "$STORE" rm "$id" >/dev/null; fi
  done < <(c8b_buildah "$STORE" containers --all --format '{{.ContainerID}}|{{.ImageName}}')
  c8b_buildah "$STORE" rmi --prune >/dev/null
  rm -f "$ARCHIVE.tmp"
  c8b_buildah "$STORE" push --quiet "$TAG" "oci-archive:$ARCHIVE.tmp:$TAG"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  local size
  size=$(c8b_buildah "$STORE" images --format '{{.Size}}' "$TAG" 2>/dev/null || echo '?')
  log "image $TAG built in $(( ($(now_ms) - started) / 1000 ))s"
  log "  binary $(du -h "$ctx/target/release/camunda-backup-operator" | cut -f1) stripped ($(du -h "$BINARY" | cut -f1) unstripped)"
  log "  image $size (uncompressed); archive $ARCHIVE: $(du -h "$ARCHIVE" | cut -f1)"
  # Start-up, measured on the host as a proxy for the image: the same binary and libraries.
  local t0 runs=20
  t0=$(now_ms)
  for _ in $(seq 1 $runs); do "$ctx/target/release/camunda-backup-operator" --version >/dev/null; done
  log "  start-up: \`camunda-backup-operator --version\` takes $(( ($(now_ms) - t0) / runs )) ms on the host (mean of $runs)"
}

# The simulator's image: the binary in both homes a Camunda image has (8.7's /usr/local/zeebe, 8.8's
# /usr/local/camunda), with links named `restore` and `broker` beside it. The program tells its role and
# its home from the path it was started as, so `/usr/local/zeebe/bin/restore --backupId=N` is 8.7's
# restore program and `/usr/local/camunda/bin/restore` 8.8's. Each home has an empty `config` (the
# chart mounts application.yaml there) and a `data` directory owned by the chart's user and group
# (1001, its fsGroup) and writable by any user, so that a restricted Pod with another UID (the base's
# 65532) can use it too when no volume is mounted there. Runs as 1001, as the chart's Pods do.
build_simulator_image() {
  local ctx=$WORK/simulator started home
  # The data directories sit in a folder of their own, copied with its entries: COPY keeps the mode of
  # the entries it copies, not of the folder it copies from.
  mkdir -p "$ctx/rootfs/etc" "$ctx/writable/data"
  chmod 0777 "$ctx/writable/data"
  strip -o "$ctx/camunda-simulator" "$BINARY"
  for home in zeebe camunda; do
    mkdir -p "$ctx/rootfs/usr/local/$home/bin" "$ctx/rootfs/usr/local/$home/config"
    ln -s camunda-simulator "$ctx/rootfs/usr/local/$home/bin/restore"
    ln -s camunda-simulator "$ctx/rootfs/usr/local/$home/bin/broker"
  done
  # One copy of the binary: 8.8's home links to 8.7's (the program sees the path it was started as).
  ln -s ../../zeebe/bin/camunda-simulator "$ctx/rootfs/usr/local/camunda/bin/camunda-simulator"
  printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' 'nobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' 'camunda:x:1001:1001:camunda:/usr/local/camunda:/sbin/nologin' \
    >"$ctx/rootfs/etc/passwd"
  printf '%s\n' 'root:x:0:' 'nobody:x:65534:' 'nonroot:x:65532:' 'camunda:x:1001:' >"$ctx/rootfs/etc/group"
  {
    echo "FROM $BASE_IMAGE"
    echo "COPY rootfs/ /"
    echo "COPY camunda-simulator /usr/local/zeebe/bin/camunda-simulator"
    echo "COPY --chown=1001:1001 writable/ /usr/local/zeebe/"
    echo "COPY --chown=1001:1001 writable/ /usr/local/camunda/"
    echo "LABEL org.opencontainers.image.title=camunda-simulator org.opencontainers.image.version=$VERSION-dev"
    echo "USER 1001:1001"
    echo 'ENTRYPOINT ["/usr/local/zeebe/bin/camunda-simulator"]'
  } >"$ctx/Containerfile"
  started=$(now_ms)
  c8b_buildah "$STORE" bud --quiet --layers=false --pull=never -f "$ctx/Containerfile" -t "$TAG" "$ctx" >/dev/null
  c8b_buildah "$STORE" rmi --prune >/dev/null
  rm -f "$ARCHIVE.tmp"
  c8b_buildah "$STORE" push --quiet "$TAG" "oci-archive:$ARCHIVE.tmp:$TAG"
  mv "$ARCHIVE.tmp" "$ARCHIVE"
  log "image $TAG built in $(( ($(now_ms) - started) / 1000 ))s from $BINARY" \
    "($(du -h "$ctx/camunda-simulator" | cut -f1) stripped); archive $ARCHIVE: $(du -h "$ARCHIVE" | cut -f1)"
}

# Runs the image once on the real node as a Job with the restricted Pod security the chart uses, and
# reports created → Pod running → Complete.
run_on_node() {
  local dir=$1 kc=$1/kubeconfig ns=c8b-image-check
  bash "$ROOT/scripts/control-plane.sh" import-image "$dir" "$ARCHIVE" >/dev/null
  kubectl --kubeconfig "$kc" delete namespace "$ns" --ignore-not-found --wait=true >/dev/null
  kubectl --kubeconfig "$kc" create namespace "$ns" >/dev/null
  wait_sa() { kubectl --kubeconfig "$kc" -n "$ns" get serviceaccount default >/dev/null 2>&1; }
  for _ in $(seq 1 100); do wait_sa && break; sleep 0.1; done
  local t0 t_running="" t_done="" phase state
  t0=$(now_ms)
  kubectl --kubeconfig "$kc" -n "$ns" apply -f - >/dev/null <<EOF
apiVersion: batch/v1
kind: Job
metadata:
  name: crdgen
spec:
  backoffLimit: 0
  template:
    spec:
      restartPolicy: Never
      automountServiceAccountToken: false
      securityContext:
        runAsNonRoot: true
        runAsUser: 65532
        runAsGroup: 65532
        seccompProfile: { type: RuntimeDefault }
      containers:
        - name: operator
          image: $TAG
          args: ["crdgen"]
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities: { drop: ["ALL"] }
EOF
  while [ "$(( $(now_ms) - t0 ))" -lt 120000 ]; do
    state=$(kubectl --kubeconfig "$kc" -n "$ns" get pods -l job-name=crdgen \
      -o jsonpath='{.items[0].status.containerStatuses[0].state}' 2>/dev/null || true)
    if [ -z "$t_running" ] && { [[ $state == *running* ]] || [[ $state == *terminated* ]]; }; then t_running=$(now_ms); fi
    phase=$(kubectl --kubeconfig "$kc" -n "$ns" get job crdgen \
      -o jsonpath='{range .status.conditions[?(@.status=="True")]}{.type}{end}' 2>/dev/null || true)
    case "$phase" in
      Complete) t_done=$(now_ms); break ;;
      Failed) kubectl --kubeconfig "$kc" -n "$ns" logs job/crdgen >&2 || true; die "the Job failed on the node" ;;
    esac
    sleep 0.1
  done
  [ -n "$t_done" ] || die "the Job did not complete within 120 s"
  # A container that exits at once may go from waiting to done between two polls.
  [ -n "$t_running" ] || t_running=$t_done
  local lines
  lines=$(kubectl --kubeconfig "$kc" -n "$ns" logs job/crdgen | grep -c '^kind: CustomResourceDefinition' || true)
  log "on the node: Job created → container started $(( t_running - t0 )) ms → Complete $(( t_done - t0 )) ms;" \
    "crdgen printed $lines CRDs"
  kubectl --kubeconfig "$kc" delete namespace "$ns" --wait=false >/dev/null
}

if [ "$MODE" = simulator ]; then
  build_simulator_binary
  # The same base, from the simulator's libraries (the same as the operator's).
  build_base
  build_simulator_image
  if [ -n "$NODE_DIR" ]; then
    bash "$ROOT/scripts/control-plane.sh" import-image "$(cd "$NODE_DIR" && pwd)" "$ARCHIVE" >/dev/null
  fi
  echo "$ARCHIVE"
  exit 0
fi
build_binary
build_base
if [ "$MODE" = base ]; then
  exit 0
fi
build_image
if [ -n "$NODE_DIR" ]; then
  run_on_node "$(cd "$NODE_DIR" && pwd)"
fi
echo "$ARCHIVE"
