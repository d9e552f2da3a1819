#!/usr/bin/env bash
# Sets everything up and runs a skiff cluster on the embedded store with a demo app; Ctrl-C stops it.
# As root, the server runs its own node agent (containerd) and the demo runs as real containers; otherwise
# it runs on three simulated nodes.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
DATA=${SKIFF_DATA_DIR:-/var/lib/skiff}
PORT=${SKIFF_PORT:-6443}
mkdir -p "$DATA"
if [ "$(id -u)" = 0 ]; then
  # The demo's image is built locally from busybox-static (no registry is needed) and loaded at startup.
  .venv/bin/python -m skiff.agent.images.testimages "$DATA/images" >/dev/null
  node_args=(--preload-image "$DATA/images/web.tar")
else
  echo "up: not root, so no node agent: the demo runs on simulated nodes" >&2
  node_args=(--no-agent --sim-nodes 3)
fi
.venv/bin/skiff server --data-dir "$DATA" --port "$PORT" "${node_args[@]}" &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid' INT TERM EXIT
for _ in $(seq 1 300); do
  curl -sf --cacert "$DATA/tls/ca.crt" "https://127.0.0.1:$PORT/readyz" >/dev/null 2>&1 && break
  kill -0 $pid 2>/dev/null || { echo "skiff server exited" >&2; exit 1; }
  sleep 0.1
done
export KUBECONFIG="$DATA/kubeconfig.yaml"
for _ in $(seq 1 120); do
  kubectl get nodes --no-headers 2>/dev/null | grep -q ' Ready ' && break
  sleep 0.5
done
kubectl apply -f examples/demo.yaml
kubectl -n demo rollout status deployment/web --timeout=120s
kubectl get nodes -o wide
kubectl -n demo get pods -o wide
echo
echo "skiff is running. In another shell: export KUBECONFIG=$KUBECONFIG; kubectl get all -A"
echo "Stop with Ctrl-C; 'skiff uninstall --data-dir $DATA/agent' removes the node's containers afterwards."
wait $pid
