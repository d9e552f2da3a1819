#!/usr/bin/env bash
# Installs what skiff needs on a fresh Debian machine (run as root): apt packages and a venv with skiff.
# Idempotent: a second run installs nothing new.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v python3 >/dev/null || need+=(python3)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
command -v kubectl >/dev/null || need+=(kubectl)
command -v curl >/dev/null || need+=(curl)
# The node agent's runtime (containerd + runc + CNI plugins), the busybox the local images are built from,
# and what the end-to-end tests use: a local registry with htpasswd auth, the packet filter, iproute2.
for pkg in containerd runc containernetworking-plugins busybox-static docker-registry apache2-utils \
           iptables nftables iproute2; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || need+=("$pkg")
done
if ((${#need[@]})); then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  if ! apt-get install -y -qq "${need[@]}"; then
    # Debian itself has no current kubectl; without a Kubernetes apt source the kubectl tests skip.
    apt-get install -y -qq "${need[@]/kubectl/}" || true
    echo "setup: could not install kubectl from the configured apt sources; kubectl tests will be skipped" >&2
  fi
fi

if [ ! -x .venv/bin/python ]; then
  python3 -m venv .venv
fi
stamp=.venv/.skiff-installed
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ skiff/agent/cri/api.proto -nt "$stamp" ] \
   || [ ! -f skiff/agent/cri/api_pb2.py ]; then
  .venv/bin/pip install -q --disable-pip-version-check -e '.[dev]'
  touch "$stamp"
fi
