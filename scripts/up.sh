#!/usr/bin/env bash
# Sets everything up and runs a skiff cluster on the embedded store with a demo app; Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${SKIFF_DATA_DIR:-/var/lib/skiff}
PORT=${SKIFF_PORT:-6443}
.venv/bin/skiff server --data-dir "$DATA" --port "$PORT" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM EXIT
for _ in $(seq 1 100); do
  curl -sf --cacert "$DATA/tls/ca.crt" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { echo "skiff server exited" >&2; exit 1; }
  sleep 0.1
done
export KUBECONFIG="$DATA/kubeconfig.yaml"
kubectl apply -f examples/demo.yaml
kubectl get all -n demo
echo
echo "skiff is running. In another shell: export KUBECONFIG=$KUBECONFIG; kubectl get all -A"
wait $pid
