#!/usr/bin/env bash
# Installs what deploy/checks/run_all.sh needs on a Debian 12 machine: Debian packages (the same
# ones scripts/install-deps.sh installs) and the npm devDependencies pinned by package-lock.json.
# kubectl (for `kubectl kustomize`) and Node.js >= 20 are not Debian 12 packages: they must already
# be on the machine (the project's machine image has both).
set -euo pipefail
CHECKS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi

PACKAGES=(prometheus python3-grpcio python3-grpc-tools python3-protobuf grpc-proto curl)
if ! dpkg -s "${PACKAGES[@]}" >/dev/null 2>&1; then
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"
fi

command -v kubectl >/dev/null || command -v kustomize >/dev/null ||
  { echo "install.sh: kubectl or kustomize is required to render deploy/k8s (not in Debian 12)" >&2; exit 1; }
node_major=$(node --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/')
[[ ${node_major:-0} -ge 20 ]] || { echo "install.sh: Node.js >= 20 is required" >&2; exit 1; }

cd "$CHECKS"
npm ci --no-audit --no-fund --loglevel=error
cat package.json package-lock.json | sha1sum | cut -c1-16 >node_modules/.allot-stamp
echo "install.sh: done"
