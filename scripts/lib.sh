# shellcheck shell=bash
# Shell helpers shared by the project's scripts; sourced, never run.

# A TCP port on loopback that is free right now.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# The cache outside the checkout (Kubernetes build, helm, buildah storage, image archives).
c8b_cache_dir() {
  echo "${C8B_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/camunda-backup-operator}"
}

# buildah as it works on these machines: no daemon, no overlay, no user namespace. vfs storage in
# STORE/root and STORE/runroot, and chroot isolation for RUN steps and `bud`.
#   c8b_buildah STORE bud -t IMAGE -f FILE CONTEXT
c8b_buildah() {
  local store=$1
  shift
  BUILDAH_ISOLATION=chroot buildah --storage-driver vfs --root "$store/root" --runroot "$store/runroot" "$@"
}

# Milliseconds since the epoch, for the timings the scripts print.
now_ms() {
  date +%s%3N
}
