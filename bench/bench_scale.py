"""Scale benchmark: N simulated nodes, one Deployment of M replicas; time from create to all Running.

Run: `python bench/bench_scale.py [--nodes 1000] [--pods 10000]`. A fresh `skiff server --sim-nodes N` on
loopback with a temporary data dir; prints pods/s end to end and the server's peak memory (VmHWM).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skiff.testing import ServerProcess, free_port


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--nodes", type=int, default=1000)
    ap.add_argument("--pods", type=int, default=10000)
    ap.add_argument("--timeout", type=float, default=900.0)
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="skiff-scale-"))
    (tmp / "home").mkdir()
    srv = ServerProcess(tmp / "data", free_port(), extra_args=("--sim-nodes", str(args.nodes)))
    try:
        srv.start(timeout=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            _, nodes = srv.request("GET", "/api/v1/nodes?limit=1")
            if isinstance(nodes, dict) and nodes["metadata"].get("remainingItemCount", 0) + len(nodes["items"]) >= args.nodes:
                break
            time.sleep(0.5)
        deployment = {
            "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "scale"},
            "spec": {"replicas": args.pods, "selector": {"matchLabels": {"app": "scale"}},
                     "template": {"metadata": {"labels": {"app": "scale"}},
                                  "spec": {"containers": [{"name": "c", "image": "busybox",
                                                           "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}]}}},
        }
        t0 = time.monotonic()
        status, body = srv.request("POST", "/apis/apps/v1/namespaces/default/deployments", deployment)
        assert status == 201, body
        running = 0
        while time.monotonic() - t0 < args.timeout:
            _, d = srv.request("GET", "/apis/apps/v1/namespaces/default/deployments/scale")
            running = int((d.get("status") or {}).get("readyReplicas") or 0)
            if running >= args.pods:
                break
            time.sleep(0.5)
        elapsed = time.monotonic() - t0
        assert srv.proc is not None
        print(json.dumps({"nodes": args.nodes, "pods": args.pods, "ready": running,
                          "seconds_to_all_running": round(elapsed, 1),
                          "pods_per_second": round(running / elapsed, 1),
                          "server_peak_rss_mib": round(peak_rss_mib(srv.proc.pid), 1)}))
    finally:
        srv.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
